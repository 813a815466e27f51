"""The private CuPy modules polyten reads, in one place (CuPy has no public API for these):

* ``cupy._core._scalar.get_typename`` -- whether this CuPy has a C type for bfloat16
  (:mod:`polyten_cuda.bfloat16`);
* ``cupy._core._routines_linalg.set_compute_type`` -- cuBLAS's compute type for float32
  products (TensorFloat-32 or bfloat16 tensor cores), which CuPy otherwise reads once from
  ``CUPY_TF32`` at the first product (:func:`matmul_precision`).

Each lookup returns None where the module or name is missing, and the caller then leaves the
feature out (a clear "not stored" or "no effect"), never failing the backend's load.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Optional


def core_module(cp, name: str) -> Optional[Any]:
    """``cp._core.<name>`` (imported if needed), or None."""
    mod = getattr(getattr(cp, "_core", None), name, None)
    if mod is None:
        try:
            mod = importlib.import_module(f"{cp.__name__}._core.{name}")
        except ImportError:
            return None
    return mod


# cupy/_core/_routines_linalg.pxd's COMPUTE_TYPE_* values, used where the module lacks them.
# "medium" is TensorFloat-32 as "high": CuPy's GEMMs map COMPUTE_TYPE_BF16 to plain float32
# compute (tensordot_core_v11 has no CUBLAS_COMPUTE_32F_FAST_16BF), which would make "medium"
# the most precise setting; torch's "medium" is "high" where no bfloat16 kernel is available.
_COMPUTE_TYPES = {"highest": ("COMPUTE_TYPE_DEFAULT", 1), "high": ("COMPUTE_TYPE_TF32", 7),
                  "medium": ("COMPUTE_TYPE_TF32", 7)}


def matmul_precision(cp, float32) -> Optional[Callable[[str], None]]:
    """``Backend.float32_matmul_precision`` for CuPy: "highest" is cuBLAS's default float32
    compute, "high" and "medium" TensorFloat-32 (CuPy has no bfloat16 compute for float32
    products).
    The setting is CuPy's, for the process; below compute capability 8.0 (of the current
    device when it is set) CuPy keeps the default, silently here as in torch.  None where
    this CuPy has no ``set_compute_type``."""
    linalg = core_module(cp, "_routines_linalg")
    setter = getattr(linalg, "set_compute_type", None)
    if setter is None:
        return None
    types = {p: getattr(linalg, name, value) for p, (name, value) in _COMPUTE_TYPES.items()}

    def set_precision(precision: str) -> None:
        with warnings.catch_warnings():
            # torch ignores the TF32 flags on GPUs without TensorFloat-32, silently; CuPy
            # warns there (and keeps its default compute, which is what polyten wants)
            warnings.filterwarnings("ignore", message="COMPUTE_TYPE_BF16 and COMPUTE_TYPE_TF32")
            setter(float32, types[precision])
    return set_precision
