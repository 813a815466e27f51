"""The float32 precision of matrix products and of convolutions (``torch``'s
``set_float32_matmul_precision`` and ``backends.cudnn.allow_tf32``): two process-wide settings,
handed to every backend that can act on them.

``"highest"`` asks for float32 products computed in float32.  ``"high"`` allows TensorFloat-32
tensor cores (10-bit significands for the products, float32 accumulation: a GPU's float32 GEMM
several times faster) and ``"medium"`` allows bfloat16 ones.  As in PyTorch, matrix products
default to ``"highest"`` and convolutions to ``"high"`` (``torch.backends.cudnn.allow_tf32`` is
True by default: float32 convolutions take TensorFloat-32 on GPUs that have it).

A backend acts on them through ``Backend.float32_matmul_precision`` and
``Backend.float32_conv_precision`` (``cuda``: cuBLAS compute types); one that has no such modes
(the cpu backend: NumPy's BLAS) ignores them, as PyTorch's CPU does.  Backends loaded later get
the settings when they load.
"""

from __future__ import annotations

import threading
from typing import Dict

__all__ = ["set_float32_matmul_precision", "get_float32_matmul_precision",
           "set_float32_conv_precision", "get_float32_conv_precision", "PRECISIONS"]

PRECISIONS = ("highest", "high", "medium")
# setting -> the Backend hook that takes it; a backend starts at "highest" for both
_HOOKS = {"matmul": "float32_matmul_precision", "conv": "float32_conv_precision"}
_current: Dict[str, str] = {"matmul": "highest", "conv": "high"}
_lock = threading.Lock()


def _set(which: str, precision: str, caller: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{caller}: precision must be one of "
                         f"{', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}")
    from .registry import loaded_backends
    with _lock:
        _current[which] = precision
        for backend in loaded_backends():
            hook = getattr(backend, _HOOKS[which], None)
            if hook is not None:
                hook(precision)


def set_float32_matmul_precision(precision: str) -> None:
    """Set the internal precision of float32 matrix products (``torch`` semantics).

    Parameters
    ----------
    precision : {"highest", "high", "medium"}
        ``"highest"``: float32 throughout (the default).  ``"high"``: TensorFloat-32 where a
        backend has it (``cuda`` on compute capability 8.0 and later).  ``"medium"``: bfloat16
        products with float32 accumulation where a backend has them, else as ``"high"``
        (``cuda``: TensorFloat-32, CuPy has no bfloat16 compute for float32 products).

    Applies to every loaded backend that supports it, and to backends loaded later.
    Convolutions have their own setting (:func:`set_float32_conv_precision`).
    """
    _set("matmul", precision, "set_float32_matmul_precision")


def get_float32_matmul_precision() -> str:
    """The current float32 matrix-product precision: ``"highest"``, ``"high"`` or
    ``"medium"``."""
    return _current["matmul"]


def set_float32_conv_precision(precision: str) -> None:
    """Set the internal precision of float32 convolutions (their matrix products, forward
    and backward): ``polyten.backends.cudnn.allow_tf32`` and
    ``polyten.backends.cudnn.conv.fp32_precision`` set it as in PyTorch.

    Parameters
    ----------
    precision : {"highest", "high", "medium"}
        As for :func:`set_float32_matmul_precision`, but the default is ``"high"``:
        PyTorch's ``backends.cudnn.allow_tf32`` is True by default, so a float32 CNN takes
        TensorFloat-32 tensor cores on a GPU that has them (``cuda``, compute capability 8.0
        and later).  ``"highest"`` gives float32 convolutions computed in float32.
    """
    _set("conv", precision, "set_float32_conv_precision")


def get_float32_conv_precision() -> str:
    """The current float32 convolution precision (``"high"`` by default)."""
    return _current["conv"]


def apply_at_load(backend) -> None:
    """Hand a backend that has just loaded every setting other than ``"highest"`` (the
    precision a backend starts at) through its hooks.  Called by the registry under its own
    lock, so it takes none here (a setter holds this module's lock while it lists the loaded
    backends)."""
    for which, hook_name in _HOOKS.items():
        hook = getattr(backend, hook_name, None)
        if hook is not None and _current[which] != "highest":
            hook(_current[which])
