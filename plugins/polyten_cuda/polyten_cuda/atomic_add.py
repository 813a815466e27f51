"""``scatter_add`` for every dtype, on the dtypes CuPy's atomic add takes.

The shared ``scatter_add`` (``polyten_cpu.kernels.indexing``) is ``cupy.add.at``, whose CUDA
atomics take int32, uint32, uint64, float16, float32 and float64 only: CuPy raises TypeError
for the others (``_scatter_op_single``).  ``index_add`` on int64 -- and with it
``bincount``, ``unique(return_counts=True)`` and ``histc`` -- and on complex, 8- and 16-bit
integer, bool or bfloat16 tensors would stop there.  So those go through a dtype it takes:

* int64 as uint64: the same bits, and two's-complement sums wrap as unsigned ones do;
* int8 / int16 / uint8 / uint16 in int32 and cast back: the sum modulo 2**8 or 2**16 is the
  one NumPy's and torch's stepwise wrapping sums give (the core refuses bool);
* complex64 / complex128 as pairs of float32 / float64 (a trailing dim of 2: one launch);
* bfloat16 in float32, rounded back once (torch's atomics round at every step, in no fixed
  order; ``polyten.use_deterministic_algorithms`` sums bfloat16 in source order instead,
  rounding each step as NumPy does: :mod:`polyten_cuda.deterministic`).
"""

from __future__ import annotations

from typing import Callable, Optional

__all__ = ["NATIVE", "any_dtype", "as_pairs", "from_pairs"]

NATIVE = ("int32", "uint32", "uint64", "float16", "float32", "float64")
_WIDENED = ("int8", "int16", "uint8", "uint16")


def _as_array(cp, src, index, dt):
    """``src`` in ``dt``; a number as an array of the index's shape (the shared kernel fills
    one too)."""
    if hasattr(src, "shape"):
        return src.astype(dt, copy=False)
    return cp.full(index.shape, src, dtype=dt)


def as_pairs(cp, x, index, src):
    """A scatter into complex ``x`` as one into its (real, imaginary) float pairs:
    ``(x, index, src)`` with a trailing dim of 2 (``x`` and ``src`` contiguous copies or
    views, ``index`` broadcast).  A sum onto repeated positions adds the real parts in one
    run and the imaginary parts in another, as a complex sum does."""
    part = cp.dtype("float32") if x.dtype == cp.dtype("complex64") else cp.dtype("float64")
    pairs = cp.ascontiguousarray(x).view(part).reshape(x.shape + (2,))
    s = cp.ascontiguousarray(_as_array(cp, src, index, x.dtype))
    s = s.view(part).reshape(s.shape + (2,))
    return pairs, cp.broadcast_to(index[..., None], index.shape + (2,)), s


def from_pairs(cp, pairs, like):
    """The complex array of ``like``'s dtype and shape whose parts are ``pairs``."""
    return cp.ascontiguousarray(pairs).view(like.dtype).reshape(like.shape)


def any_dtype(cp, scatter_add: Callable, bf16: Optional[object]) -> Callable:
    """``scatter_add(x, dim, index, src)`` (the op-table kernel) for every dtype, calling
    ``scatter_add`` -- ``cupy.add.at`` underneath -- only with the dtypes it takes."""
    native = {cp.dtype(n) for n in NATIVE}
    widened = {cp.dtype(n) for n in _WIDENED}
    int32, int64, uint64 = cp.dtype("int32"), cp.dtype("int64"), cp.dtype("uint64")
    complex_parts = {cp.dtype("complex64"), cp.dtype("complex128")}
    float32 = cp.dtype("float32")

    def kernel(x, dim, index, src):
        dt = x.dtype
        if dt in native or x.ndim == 0:  # a 0-d x is one in-place add, no atomics
            return scatter_add(x, dim, index, src)
        if dt == int64:
            return scatter_add(x.view(uint64), dim, index,
                               _as_array(cp, src, index, int64).view(uint64)).view(int64)
        if dt in widened:
            return scatter_add(x.astype(int32), dim, index,
                               _as_array(cp, src, index, int32)).astype(dt)
        if dt in complex_parts:
            pairs, idx, s = as_pairs(cp, x, index, src)
            return from_pairs(cp, scatter_add(pairs, dim, idx, s), x)
        if bf16 is not None and dt == bf16:
            return scatter_add(x.astype(float32), dim, index,
                               _as_array(cp, src, index, float32)).astype(dt)
        return scatter_add(x, dim, index, src)  # CuPy's own error names the dtype

    kernel.__name__ = "scatter_add"
    return kernel
