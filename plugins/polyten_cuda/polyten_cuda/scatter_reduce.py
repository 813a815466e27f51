"""``scatter_reduce`` on the GPU without a host read: one launch of atomic compare-and-swap
loops for ``prod`` / ``amax`` / ``amin``, the backend's ``scatter_add`` for ``sum`` / ``mean``.

The op's kernel-level default (``polyten.dispatch.defaults``) reduces by a sort and a
segmented scan; on CuPy it reads two sizes on the host (``nonzero``, the longest run), so a
training step with graph pooling would wait for the GPU.  Here each source element combines
itself into its target with a CAS loop on the element's bits (CUDA has native atomics only for
some of these reductions and dtypes): float32 / float64 / int32 / int64 directly, the narrower
dtypes through the 32-bit one of their kind (float16 / bfloat16 in float32 -- rounded once at
the end, as the cpu kernel -- int8 / int16 / uint8 in int32, whose wrapped products agree
modulo 2^8 and 2^16).  amax / amin propagate NaN, as PyTorch.  Integer sums (and so means)
wrap in their own dtype, as the cpu kernel's and PyTorch's.

With ``use_deterministic_algorithms(True)`` a floating-point ``prod`` depends on the order
the threads arrive in; it then multiplies each target's values in source order instead
(sorted positions, one thread per target, :mod:`polyten_cuda.deterministic`'s scheme), which
is NumPy's ``multiply.at`` and so the cpu backend's result bit for bit.  amax / amin and
integer products are exact in any order.
"""

from __future__ import annotations

from .deterministic import _positions, _sorted, _source_part
from .multi_tensor import GridStrideKernels

# the C type of each dtype the CAS kernel runs on, and the dtype each other dtype goes through
_C = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long"}
_VIA = {"float16": "float32", "bfloat16": "float32", "int8": "int32", "int16": "int32",
        "uint8": "int32"}

SRC = r"""
#ifdef __CUDACC__
__device__ __forceinline__ unsigned polyten_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ float polyten_from_bits(unsigned u, float) {
  return __uint_as_float(u);
}
__device__ __forceinline__ unsigned long long polyten_bits(double v) {
  return (unsigned long long)__double_as_longlong(v);
}
__device__ __forceinline__ double polyten_from_bits(unsigned long long u, double) {
  return __longlong_as_double((long long)u);
}
#else
#include <string.h>
static inline unsigned polyten_bits(float v) { unsigned u; memcpy(&u, &v, 4); return u; }
static inline float polyten_from_bits(unsigned u, float) { float v; memcpy(&v, &u, 4); return v; }
static inline unsigned long long polyten_bits(double v) {
  unsigned long long u; memcpy(&u, &v, 8); return u;
}
static inline double polyten_from_bits(unsigned long long u, double) {
  double v; memcpy(&v, &u, 8); return v;
}
// the host emulation runs the threads one after another: a plain compare-and-swap is atomic
static inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned value) {
  const unsigned old = *p; if (old == expected) *p = value; return old;
}
static inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected,
                                           unsigned long long value) {
  const unsigned long long old = *p; if (old == expected) *p = value; return old;
}
#endif
__device__ __forceinline__ unsigned polyten_bits(int v) { return (unsigned)v; }
__device__ __forceinline__ int polyten_from_bits(unsigned u, int) { return (int)u; }
__device__ __forceinline__ unsigned long long polyten_bits(long long v) {
  return (unsigned long long)v;
}
__device__ __forceinline__ long long polyten_from_bits(unsigned long long u, long long) {
  return (long long)u;
}
template <typename T> struct polyten_word {};
template <> struct polyten_word<float> { typedef unsigned type; };
template <> struct polyten_word<int> { typedef unsigned type; };
template <> struct polyten_word<double> { typedef unsigned long long type; };
template <> struct polyten_word<long long> { typedef unsigned long long type; };
// products wrap as unsigned arithmetic (signed overflow is undefined in C++)
__device__ __forceinline__ float polyten_prod(float a, float b) { return a * b; }
__device__ __forceinline__ double polyten_prod(double a, double b) { return a * b; }
__device__ __forceinline__ int polyten_prod(int a, int b) {
  return (int)((unsigned)a * (unsigned)b);
}
__device__ __forceinline__ long long polyten_prod(long long a, long long b) {
  return (long long)((unsigned long long)a * (unsigned long long)b);
}
// a NaN on either side wins (x != x only for NaN; never for integers)
template <typename V> __device__ __forceinline__ V polyten_amax(V a, V b) {
  return a != a ? a : (b != b ? b : (b > a ? b : a));
}
template <typename V> __device__ __forceinline__ V polyten_amin(V a, V b) {
  return a != a ? a : (b != b ? b : (b < a ? b : a));
}

extern "C" __global__ void polyten_scatter_reduce_K(const long long* pos, const T* vals,
    T* out, long long n) {
  typedef polyten_word<T>::type U;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    U* addr = (U*)(out + pos[i]);
    const T v = vals[i];
    U old = *addr;
    for (;;) {
      const U next = polyten_bits(polyten_OP(polyten_from_bits(old, v), v));
      if (next == old) break;  // nothing to change (a NaN already there, a smaller value)
      const U seen = atomicCAS(addr, old, next);
      if (seen == old) break;
      old = seen;  // another thread wrote first: combine with its value
    }
  }
}
"""

# the ordered product (deterministic mode): the first of each run of equal sorted positions
# multiplies the run in source order, rounding each step as numpy.multiply.at
ORDERED_SRC = r"""
extern "C" __global__ void polyten_scatter_prod_ordered_K(const long long* keys,
    const long long* order, const T* src, T* out, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    const long long k = keys[i];
    if (i > 0 && keys[i - 1] == k) continue;
    T acc = out[k];
    for (long long j = i; j < n && keys[j] == k; ++j) acc = acc * src[order[j]];
    out[k] = acc;
  }
}
"""


def source(op: str, dtype: str) -> tuple:
    """``(kernel name, CUDA C source)`` of the CAS reduction ``op`` (prod, amax, amin) for
    ``dtype`` (float32, float64, int32, int64)."""
    name = f"polyten_scatter_reduce_{op}_{dtype}"
    return name, (f"typedef {_C[dtype]} T;\n"
                  + SRC.replace("polyten_scatter_reduce_K", name).replace("polyten_OP",
                                                                          f"polyten_{op}"))


def ordered_source(dtype: str) -> tuple:
    """``(kernel name, CUDA C source)`` of the source-order product for float32 / float64."""
    name = f"polyten_scatter_prod_ordered_{dtype}"
    return name, (f"typedef {_C[dtype]} T;\n"
                  + ORDERED_SRC.replace("polyten_scatter_prod_ordered_K", name))


def build(cp, kernels: dict, deterministic) -> callable:
    """``scatter_reduce(x, dim, index, src, reduce, include_self)`` (the op-table kernel).
    ``kernels`` is the backend's table, read at call time (its ``scatter_add``, which takes
    every dtype and follows the deterministic mode); ``deterministic`` the backend's
    one-item list for ``use_deterministic_algorithms``, or ``None``."""
    cas = GridStrideKernels(cp, source)
    ordered = GridStrideKernels(cp, ordered_source)
    i64 = cp.int64

    def identity(reduce, dt):
        if reduce == "prod":
            return 1
        if dt.kind == "f":
            return -cp.inf if reduce == "amax" else cp.inf
        info = cp.iinfo(dt)
        return info.min if reduce == "amax" else info.max

    def scatter_reduce(x, dim, index, src, reduce, include_self):
        if x.ndim == 0:
            one = (1,)
            return scatter_reduce(x.reshape(one), 0, index.reshape(one), src.reshape(one),
                                  reduce, include_self).reshape(())
        dt = x.dtype
        acc = cp.dtype(_VIA.get(dt.name, dt.name))
        if reduce in ("sum", "mean") and acc.kind != "f":
            acc = dt  # integer sums wrap in their own dtype, as the cpu kernel and PyTorch
        out = x.astype(acc, order="C")  # a contiguous copy: the kernels write flat positions
        if index.size == 0:
            return out.astype(dt, copy=False)
        pos = _positions(cp, out.shape, dim, index)
        flat = out.reshape(-1)
        if reduce in ("sum", "mean"):
            if not include_self:
                flat[pos] = 0
            out = kernels["scatter_add"](out, dim, index, src.astype(acc, copy=False))
            if reduce == "mean":
                count = cp.full(x.shape, int(include_self), dtype=i64)
                count = kernels["scatter_add"](count, dim, index,
                                               cp.ones(index.shape, dtype=i64))
                cp.maximum(count, 1, out=count)
                if acc.kind == "f":
                    out = out / count.astype(acc)
                else:  # PyTorch: floor division for integers
                    out = (out.astype(i64) // count).astype(acc)
            return out.astype(dt, copy=False)
        part = _source_part(cp, src, index, acc)
        if not include_self:
            flat[pos] = identity(reduce, acc)
        if reduce == "prod" and acc.kind == "f" and deterministic is not None \
                and deterministic[0]:
            keys, order = _sorted(cp, pos)
            ordered.launch(ordered.get(acc.name), keys.size,
                           (keys, order, part, flat, i64(keys.size)))
        else:
            cas.launch(cas.get(reduce, acc.name), pos.size, (pos, part, flat, i64(pos.size)))
        return out.astype(dt, copy=False)

    return scatter_reduce
