"""The core's deferred index and class-target check (op ``index_check``) as one small
``RawKernel``.

``fused_src``'s ``index_check`` is a ``ReductionKernel``: right for any dtype, layout and
size, but CuPy's reduction call does much host work (axes, output shape, launch shape, a
kernel lookup) before its launch, and a training step makes one or two such checks -- the
targets of its loss, the indices of its embedding -- each a few thousand elements.  Here a
single block of :data:`THREADS` threads walks a C-contiguous int32 / int64 array of at most
:data:`MAX_ELEMENTS` elements, ORs what it finds in shared memory and writes the running flag
(the flag of the checks queued before it, OR any element outside ``[low, high)`` that is not
the ignored value): one launch with the reduction's result.  Anything else (other dtypes,
strided or larger arrays) keeps the reduction.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

THREADS = 256
MAX_ELEMENTS = 1 << 16  # 256 elements a thread at most: longer arrays take the reduction
_C_TYPES = {"int64": "long long", "int32": "int"}

SRC = r"""
extern "C" __global__ void NAME(const X* x, long long n, const bool* acc, bool has_acc,
    long long low, long long high, long long ignore, bool use_ignore, bool* out) {
  __shared__ int bad;
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  bool mine = false;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) {
    const long long v = (long long)x[j];
    mine = mine || ((!use_ignore || v != ignore) && (v < low || v >= high));
  }
  if (mine) bad = 1;  // every writer writes 1
  __syncthreads();
  if (threadIdx.x == 0) out[0] = bad != 0 || (has_acc && acc[0]);
}
"""


def source(dtype: str) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` for an ``int64`` or ``int32`` array."""
    name = f"polyten_index_check_block_{dtype}"
    return name, (f"typedef {_C_TYPES[dtype]} X;\n" + SRC.replace("NAME", name))


def build(cp) -> Callable:
    """``index_check(x, low, high, ignore, acc)`` -> a 0-d bool array, or None where it
    declines (the caller's reduction runs then)."""
    names = {cp.dtype(d): d for d in _C_TYPES}
    kernels: dict = {}
    i64, bool_, empty, nd = cp.int64, cp.bool_, cp.empty, cp.ndarray
    flag = cp.dtype(bool)

    def index_check(x, low, high, ignore, acc) -> Optional[object]:
        name = names.get(x.dtype)
        if (name is None or not 0 < x.size <= MAX_ELEMENTS or not x.flags.c_contiguous
                or (acc is not None and (acc.__class__ is not nd or acc.dtype != flag
                                         or acc.size != 1))):
            return None
        k = kernels.get(name)
        if k is None:
            kname, code = source(name)
            k = kernels[name] = cp.RawKernel(code, kname)
        out = empty((), dtype=flag)
        k((1,), (THREADS,), (x, i64(x.size), out if acc is None else acc,
                             bool_(acc is not None), i64(low), i64(high),
                             i64(0 if ignore is None else ignore), bool_(ignore is not None),
                             out))
        return out

    return index_check
