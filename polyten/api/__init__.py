"""polyten.api: the backend-agnostic tensor API.

Each area module defines its public functions (``__all__``) and a ``TENSOR_METHODS`` table of
methods and operators; they are installed on :class:`Tensor` here, once, so a method and its
function are the same dispatching code.
"""

from . import (arrayapi, creation, elementwise, indexing, inplace, interop, linalg,  # noqa
               random, reduction, shape)
from .tensor import Tensor

AREAS = (elementwise, reduction, linalg, shape, indexing, creation, random, interop, arrayapi,
         inplace)

# --- optim (issue 4): addcmul / addcdiv / lerp and their in-place forms ---
from . import inplace_ops  # noqa: E402
AREAS = AREAS + (inplace_ops,)
# --- PyTorch functions composed from the ops above (addmm, quantile, bincount, ...) ---
from . import derived  # noqa: E402
AREAS = AREAS + (derived,)
from . import derived_more  # noqa: E402  (erfc, gcd, windows, *_scatter, gradient, ...)
AREAS = AREAS + (derived_more,)
from . import derived_extra, derived_special  # noqa: E402  (stop 35)
AREAS = AREAS + (derived_extra, derived_special)


def _install_methods() -> None:
    seen = {}
    for mod in AREAS:
        for name, fn in getattr(mod, "TENSOR_METHODS", {}).items():
            if name in seen and seen[name] is not mod:
                raise RuntimeError(f"Tensor.{name} is defined by both {seen[name].__name__} and "
                                   f"{mod.__name__}")
            seen[name] = mod
            setattr(Tensor, name, fn)


_install_methods()
