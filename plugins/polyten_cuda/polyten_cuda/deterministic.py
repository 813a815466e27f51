"""``scatter_add``, ``scatter`` and ``setitem`` in source order, for
``polyten.use_deterministic_algorithms(True)``.

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

Writes to repeated positions (``scatter``, ``x[idx] = v`` with an integer index that repeats,
and what is built on them, such as ``index_copy``) are the same problem: on CuPy which value
lands is whichever thread writes last.  Here the last one in source order wins (one thread
per position writes its run's last value, moved as raw bytes of the dtype's size) -- NumPy's
and the cpu backend's result.
"""

from __future__ import annotations

from typing import Callable

from . import atomic_add as _atomic_add
from .multi_tensor import C_TYPES, PRELUDE, GridStrideKernels

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


# the same positions, the last value of each run written (any dtype: U is an unsigned type of
# the element's size)
SET_SRC = r"""
extern "C" __global__ void polyten_scatter_set_U(const long long* keys, const long long* order,
    const U* src, U* out, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    if (i + 1 < n && keys[i + 1] == keys[i]) continue;  // the last of its run wins
    out[keys[i]] = src[order[i]];
  }
}
"""
_UNSIGNED = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int",
             8: "unsigned long long", 16: "polyten_u128"}


def set_source(itemsize: int) -> tuple:
    """``(kernel name, CUDA C source)`` of the ordered scatter-write for elements of
    ``itemsize`` bytes (1, 2, 4, 8 or 16)."""
    name = f"polyten_scatter_set_{itemsize}"
    return name, ("struct polyten_u128 { unsigned long long lo, hi; };\n"
                  f"typedef {_UNSIGNED[itemsize]} U;\n"
                  + SET_SRC.replace("polyten_scatter_set_U", name))


def source(dtype: str) -> tuple:
    """``(kernel name, CUDA C source)`` of the ordered scatter-add for ``float16`` /
    ``bfloat16`` / ``float32`` / ``float64``."""
    name = f"polyten_scatter_add_{dtype}"
    return name, (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n"
                  "typedef polyten_acc<T>::type A;\n"
                  + SRC.replace("polyten_scatter_add_T", name))


def _sorted(cp, keys):
    """(sorted keys, the source index of each): a stable sort, so equal keys keep their
    source order."""
    order = cp.argsort(keys, kind="stable")
    return keys[order], order


def _positions(cp, out_shape, dim, index):
    """The flat C-order position in ``out`` of each element of ``index`` (wrapped into range,
    as CuPy's scatters wrap: the value checks report bad indices separately)."""
    i64 = cp.int64
    n = index.ndim
    strides = [1] * n
    for d in range(n - 2, -1, -1):
        strides[d] = strides[d + 1] * out_shape[d + 1]
    keys = cp.remainder(index.astype(i64, copy=False), out_shape[dim]) * strides[dim]
    for d in range(n):
        if d != dim and index.shape[d] > 1:
            shp = [1] * n
            shp[d] = index.shape[d]
            keys = keys + (cp.arange(index.shape[d], dtype=i64) * strides[d]).reshape(shp)
    return cp.ascontiguousarray(cp.broadcast_to(keys, index.shape)).ravel()


def _source_part(cp, src, index, dtype):
    """``src`` as the flat values of ``index``'s elements (its leading part when larger, a
    fill for a scalar: no host-to-device copy)."""
    if not hasattr(src, "shape"):
        return cp.full(index.size, src, dtype=dtype)
    if src.shape != index.shape:
        src = src[tuple(slice(0, s) for s in index.shape)]
    return cp.ascontiguousarray(src.astype(dtype, copy=False)).ravel()


def make(cp, dtype_names, atomic: Callable) -> Callable:
    """``scatter_add(x, dim, index, src)`` (the op-table kernel) that sums in source order;
    ``atomic`` (the shared kernel) takes what it does not: 0-d and integer / bool inputs.
    ``dtype_names``: ``{dtype: name}`` of the floating dtypes the kernel is built for."""
    raw = GridStrideKernels(cp, lambda dt: source(dtype_names[dt]))
    i64 = cp.int64

    def ordered(x, dim, index, src):
        out = cp.array(x, order="C")  # a contiguous copy: the kernel writes flat positions
        if index.size == 0 or out.size == 0:
            return out
        part = _source_part(cp, src, index, x.dtype)
        keys, order = _sorted(cp, _positions(cp, out.shape, dim, index))
        raw.launch(raw.get(x.dtype), keys.size, (keys, order, part, out, i64(keys.size)))
        return out

    def scatter_add(x, dim, index, src):
        if x.ndim == 0 or x.dtype.kind not in "fcV" or (
                x.dtype.kind != "c" and x.dtype not in dtype_names):
            return atomic(x, dim, index, src)
        if x.dtype.kind == "c":  # its real and imaginary parts, in one launch
            pairs, idx, s = _atomic_add.as_pairs(cp, x, index, src)
            return _atomic_add.from_pairs(cp, ordered(pairs, dim, idx, s), x)
        return ordered(x, dim, index, src)

    return scatter_add


def make_writes(cp, scatter: Callable, setitem: Callable):
    """``(scatter(x, dim, index, src), setitem(x, key, value))`` (the op-table kernels) where
    the last write to a repeated position in source order wins; ``scatter`` / ``setitem`` (the
    backend's own) take what cannot repeat a position: 0-d inputs, keys without an integer
    array, and broadcast views (whose error they raise)."""
    raw = GridStrideKernels(cp, set_source)
    i64 = cp.int64
    nd = cp.ndarray

    def write(out, keys, values):
        """``out.ravel()[keys] = values`` (flat positions of the C-contiguous ``out``), the
        last of repeated keys winning."""
        keys, order = _sorted(cp, keys)
        raw.launch(raw.get(out.itemsize), keys.size,
                   (keys, order, values, out, i64(keys.size)))

    def ordered_scatter(x, dim, index, src):
        if x.ndim == 0 or index.size == 0 or x.dtype.itemsize not in _UNSIGNED:
            return scatter(x, dim, index, src)
        out = cp.array(x, order="C")
        if out.size == 0:  # every index is out of range (the value checks say so): no writes
            return out
        write(out, _positions(cp, out.shape, dim, index), _source_part(cp, src, index, x.dtype))
        return out

    def repeats_possible(key):
        parts = key if key.__class__ is tuple else (key,)
        return any(p.__class__ is nd and p.dtype.kind in "iu" and p.size > 1 for p in parts)

    def addressed(shape, key):
        """The flat C-order position of each element ``key`` addresses in an array of
        ``shape``, in the key's order: the sum over dims of ``arange(n) * stride`` broadcast
        to ``shape`` (a view with zero strides, no memory) and indexed by the key, so memory
        goes only to the addressed elements."""
        keys, stride = None, 1
        for d in range(len(shape) - 1, -1, -1):
            axis = [1] * len(shape)
            axis[d] = shape[d]
            term = cp.broadcast_to((cp.arange(shape[d], dtype=i64) * stride).reshape(axis),
                                   shape)[key]
            keys = term if keys is None else keys + term
            stride *= shape[d]
        return keys

    def ordered_setitem(x, key, value):
        if (x.ndim == 0 or x.size == 0 or x.dtype.itemsize not in _UNSIGNED
                or not repeats_possible(key)
                or any(s == 0 and n > 1 for n, s in zip(x.shape, x.strides))):
            return setitem(x, key, value)
        flat = cp.ascontiguousarray(x)
        keys = addressed(flat.shape, key)
        if value.__class__ is nd:
            values = cp.ascontiguousarray(cp.broadcast_to(
                value.astype(x.dtype, copy=False), keys.shape)).ravel()
            if cp.may_share_memory(values, flat):  # x[i] = x: read before any write, as NumPy
                values = values.copy()
        else:
            values = cp.full(keys.size, value, dtype=x.dtype)
        if keys.size:
            write(flat, cp.ascontiguousarray(keys).ravel(), values)
        if flat is not x:
            x[...] = flat
        return None

    return ordered_scatter, ordered_setitem
