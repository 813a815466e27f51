"""polyten: PyTorch-style tensors whose every op runs on a backend plugin.

>>> import polyten as pt
>>> x = pt.tensor([1.0, 2.0, 3.0])
>>> (x * 2).sum()
tensor(12.)

``import polyten`` imports no array library and no plugin: backends are discovered through the
``polyten`` entry-point group the first time one is needed.
"""

import builtins as _builtins

from .api import creation as _creation
from .api import elementwise as _elementwise
from .api import indexing as _indexing
from .api import interop as _interop
from .api import linalg as _linalg_mod
from .api import random as _random
from .api import reduction as _reduction
from .api import shape as _shape
from .api.context import (backend, get_backend, get_default_device, set_backend,
                          set_default_device)
from .api.arrayapi import *  # noqa: F401,F403
from .api.creation import *  # noqa: F401,F403
from .api.derived import *  # noqa: F401,F403
from .api.derived_more import *  # noqa: F401,F403
from .api.derived_extra import *  # noqa: F401,F403
from .api.derived_special import *  # noqa: F401,F403
from .api.dtypes import (bfloat16, bool, can_cast, cdouble, cfloat, complex64, complex128,  # noqa
                         double, dtype, finfo, float, float16, float32, float64,
                         get_default_dtype, half, iinfo, int, int8, int16, int32, int64,
                         is_complex, is_floating_point, isdtype, long, promote_types, result_type,
                         set_default_dtype, short, uint8)
from .api.elementwise import *  # noqa: F401,F403
from .api.indexing import *  # noqa: F401,F403
from .api.inplace_ops import *  # noqa: F401,F403  (optim, issue 4)
from .api.interop import from_dlpack  # noqa: F401
from .api.namespace_info import __array_namespace_info__  # noqa: F401
from .api.printing import get_printoptions, printoptions, set_printoptions  # noqa: F401
from .api.linalg import *  # noqa: F401,F403
from .api.random import *  # noqa: F401,F403
from .api.reduction import *  # noqa: F401,F403
from .api.shape import *  # noqa: F401,F403
from .api.tensor import Size, Tensor
from .dispatch import (BackendError, BackendUnavailableError, DeviceMismatchError,  # noqa
                       KernelNotFoundError, OutOfMemoryError, PolytenError,
                       UnknownBackendError, device)
from .dispatch.device import Device
from .dispatch.precision import (get_float32_matmul_precision,  # noqa: F401
                                 set_float32_matmul_precision)
from .dispatch.determinism import (are_deterministic_algorithms_enabled,  # noqa: F401
                                   get_deterministic_debug_mode,
                                   is_deterministic_algorithms_warn_only_enabled,
                                   set_deterministic_debug_mode, use_deterministic_algorithms)
from ._backends import backends  # callable, with torch.backends' flags as attributes
from . import autograd  # noqa: E402
from . import linalg  # noqa: E402
from . import nn  # noqa: E402
from . import optim  # noqa: E402
from . import random  # noqa: E402  (torch.random: fork_rng, generator states)
# checkpoints (issue 4): the module imports json/hashlib/NumPy inside its functions only
from . import serialization  # noqa: E402
from .serialization import load, save  # noqa: E402,F401
from .autograd.functions import TENSOR_METHODS as _AG_METHODS
from .autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: E402
                                 no_grad, set_grad_enabled)
from .autograd.meta import requires_grad_ as _requires_grad_

Tensor.requires_grad_ = _requires_grad_
for _k, _v in _AG_METHODS.items():
    setattr(Tensor, _k, _v)
del _k, _v
from .autograd import derivatives as _derivatives  # noqa: E402,F401  (fills the rule table)
# softmax / log_softmax as torch.softmax and Tensor.softmax: one implementation, in nn.functional
from .nn.functional import log_softmax, softmax  # noqa: E402,F401
from .nn.functional._activation import TENSOR_METHODS as _ACT_METHODS  # noqa: E402
for _k, _v in _ACT_METHODS.items():
    setattr(Tensor, _k, _v)
del _k, _v
# torch.conv2d, torch.layer_norm, torch.kl_div, ...: nn.functional under torch's top-level
# signatures (api/derived_nn.py, imported here because it needs polyten.nn)
from .api.derived_nn import *  # noqa: E402,F401,F403
from .api.derived_nn import TENSOR_METHODS as _NN_METHODS  # noqa: E402
for _k, _v in _NN_METHODS.items():
    setattr(Tensor, _k, _v)
del _k, _v

# --- data loading (issue 5): Generator, Tensor.pin_memory; polyten.data and polyten.utils are
# imported on first attribute access (module __getattr__) so that `import polyten` stays cheap
from .api.generator import Generator  # noqa: E402,F401
from .api import pinning as _pinning  # noqa: E402
for _k, _v in _pinning.TENSOR_METHODS.items():
    setattr(Tensor, _k, _v)
del _k, _v


_AMP_NAMES = ("amp", "autocast", "is_autocast_enabled", "get_autocast_dtype",
              "is_autocast_available")


def __getattr__(name):
    # submodules loaded on first use (cuda: so that `import polyten` never imports CuPy)
    if name in ("data", "utils", "cuda", "special", "fft", "distributions", "func"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    if name in _AMP_NAMES:  # torch.autocast and friends live at the top level too
        import importlib
        amp = importlib.import_module(f"{__name__}.amp")
        return amp if name == "amp" else getattr(amp, name)
    raise AttributeError(f"module 'polyten' has no attribute {name!r}")
# --- end data loading

__version__ = "0.1.0"
__array_api_version__ = "2024.12"
e = 2.718281828459045
pi = 3.141592653589793
inf = _builtins.float("inf")
nan = _builtins.float("nan")
newaxis = None
