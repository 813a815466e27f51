"""The float32 matrix-product precision (``torch.set_float32_matmul_precision``): one
process-wide setting, handed to every backend that can act on it.

``"highest"`` (the default) asks for float32 products computed in float32.  ``"high"`` allows
TensorFloat-32 tensor cores (10-bit significands for the products, float32 accumulation: a
GPU's float32 GEMM several times faster) and ``"medium"`` allows bfloat16 ones.  A backend acts
on it through ``Backend.float32_matmul_precision`` (``cuda``: CuPy's cuBLAS compute type); one
that has no such modes (the cpu backend: NumPy's BLAS) ignores it, as PyTorch's CPU does for
``"high"``.  Backends loaded later get the setting when they load.
"""

from __future__ import annotations

import threading
from typing import List

__all__ = ["set_float32_matmul_precision", "get_float32_matmul_precision", "PRECISIONS"]

PRECISIONS = ("highest", "high", "medium")
_current: List[str] = ["highest"]
_lock = threading.Lock()


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
    """
    if precision not in PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: precision must be one of "
                         f"{', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}")
    from .registry import loaded_backends
    with _lock:
        _current[0] = precision
        for backend in loaded_backends():
            apply(backend)


def get_float32_matmul_precision() -> str:
    """The current float32 matrix-product precision: ``"highest"``, ``"high"`` or
    ``"medium"``."""
    return _current[0]


def apply(backend) -> None:
    """Hand the current setting to ``backend`` (a no-op for backends without the hook)."""
    hook = getattr(backend, "float32_matmul_precision", None)
    if hook is not None:
        hook(_current[0])
