"""``scatter_add`` without atomics, for ``polyten.use_deterministic_algorithms(True)``.

The shared ``scatter_add`` (``polyten_cpu.kernels.indexing``) is ``cupy.add.at`` on CuPy: one
``atomicAdd`` per source element, so where several elements land on one position their
floating-point sum is taken in whatever order the threads arrive -- results that change from
run to run in the last bits.  Every accumulation that polyten routes through ``scatter_add``
inherits that: ``index_add``, and the backward of indexing, ``gather``, ``take_along_dim``,
``embedding``, ``embedding_bag``, adaptive max-pooling and ``interpolate``.

Here the target positions are sorted (CuPy's sort is stable: equal positions keep their
source order) and one thread per position adds its run of source values in that order,
rounding to the dtype after each addition -- exactly ``numpy.add.at``'s sequential sum, so the
result is the cpu backend's, bit for bit, on every run.  It costs a sort and a few gathers
more than the atomics (which is why it is not the default, as in PyTorch).  Integer and bool
sums are exact in any order and keep the atomic path; complex ones run on their real and
imaginary parts.
"""

from __future__ import annotations

from typing import Callable

from .multi_tensor import C_TYPES, PRELUDE

_BLOCK = 256
_MAX_BLOCKS = 1 << 16  # the grid-stride loop covers more positions

# keys: the sorted flat positions in out; order: the source index of each sorted key
SRC = r"""
extern "C" __global__ void polyten_scatter_add_T(const long long* keys, const long long* order,
    const T* src, T* out, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    const long long k = keys[i];
    if (i > 0 && keys[i - 1] == k) continue;  // the first of its run sums the run
    A acc = (A)out[k];
    for (long long j = i; j < n && keys[j] == k; ++j)
      acc = (A)(T)(acc + (A)src[order[j]]);   // rounded as numpy.add.at rounds each step
    out[k] = (T)acc;
  }
}
"""


def source(dtype: str) -> tuple:
    """``(kernel name, CUDA C source)`` of the ordered scatter-add for ``float16`` /
    ``bfloat16`` / ``float32`` / ``float64``."""
    name = f"polyten_scatter_add_{dtype}"
    return name, (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n"
                  "typedef polyten_acc<T>::type A;\n"
                  + SRC.replace("polyten_scatter_add_T", name))


def make(cp, dtype_names, atomic: Callable) -> Callable:
    """``scatter_add(x, dim, index, src)`` (the op-table kernel) that sums in source order;
    ``atomic`` (the shared kernel) takes what it does not: 0-d and integer / bool inputs.
    ``dtype_names``: ``{dtype: name}`` of the floating dtypes the kernel is built for."""
    cache = {}
    i64 = cp.int64

    def kernel(dt):
        k = cache.get(dt)
        if k is None:
            name, code = source(dtype_names[dt])
            k = cache[dt] = cp.RawKernel(code, name)
        return k

    def positions(out_shape, dim, index):
        """The flat C-order position in ``out`` of each element of ``index`` (wrapped into
        range, as CuPy's scatters wrap: the value checks report bad indices separately)."""
        n = index.ndim
        strides = [1] * n
        for d in range(n - 2, -1, -1):
            strides[d] = strides[d + 1] * out_shape[d + 1]
        keys = cp.remainder(index, out_shape[dim]) * strides[dim]
        for d in range(n):
            if d != dim and index.shape[d] > 1:
                shp = [1] * n
                shp[d] = index.shape[d]
                keys = keys + (cp.arange(index.shape[d], dtype=i64) * strides[d]).reshape(shp)
        return cp.ascontiguousarray(cp.broadcast_to(keys, index.shape)).ravel()

    def ordered(x, dim, index, src):
        out = cp.array(x, order="C")  # a contiguous copy: the kernel writes flat positions
        if index.size == 0 or out.size == 0:
            return out
        part = src
        if not hasattr(part, "shape"):
            part = cp.full(index.shape, part, dtype=x.dtype)
        elif part.shape != index.shape:
            part = part[tuple(slice(0, s) for s in index.shape)]
        part = cp.ascontiguousarray(part.astype(x.dtype, copy=False)).ravel()
        keys = positions(out.shape, dim, index.astype(i64, copy=False))
        order = cp.argsort(keys, kind="stable")
        keys = keys[order]
        total = keys.size
        kernel(x.dtype)((min(_MAX_BLOCKS, -(-total // _BLOCK)),), (_BLOCK,),
                        (keys, order, part, out, i64(total)))
        return out

    def scatter_add(x, dim, index, src):
        if x.ndim == 0 or x.dtype.kind not in "fcV" or (
                x.dtype.kind != "c" and x.dtype not in dtype_names):
            return atomic(x, dim, index, src)
        if x.dtype.kind == "c":
            re = src.real if hasattr(src, "real") else src
            im = src.imag if hasattr(src, "imag") else 0
            out = cp.empty(x.shape, dtype=x.dtype)
            out.real = ordered(x.real, dim, index, re)
            out.imag = ordered(x.imag, dim, index, im)
            return out
        return ordered(x, dim, index, src)

    return scatter_add
