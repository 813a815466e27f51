"""col2im in one CUDA launch, for the shared convolution kernels (``polyten_cpu.kernels.conv``).

The shared col2im (the adjoint of im2col: the input gradient of a convolution and the forward
of a transposed one) fills the padded image with zeros and adds the columns of each kernel
offset with one strided in-place add: ``K + 1`` launches (10 for a 3x3 kernel), each a pass over
the image.  Here one thread per element of the padded image *gathers* the column entries that
land on it, in the same kernel-offset order, so the result is bit-identical to the shared
version, with no atomics, no zero fill and one pass.  The geometry (flat or exact layout, see
``polyten_cpu.kernels.conv._Geometry``) arrives as kernel parameters, padded to three spatial
dims at the front.
"""

from __future__ import annotations

_BLOCK = 256
_MAX_BLOCKS = 1 << 16  # the grid-stride loop covers larger images

# cols: (C, K, N, L) contiguous (the (G, C/G * K, N * L) columns); out: (N, C, P0, P1, P2)
COL2IM_SRC = r"""
extern "C" __global__ void polyten_col2im_T(const T* cols, T* out, long long total,
    long long n, long long c, long long K, long long L, bool flat,
    long long P0, long long P1, long long P2, long long O0, long long O1, long long O2,
    long long k0, long long k1, long long k2, long long s0, long long s1, long long s2,
    long long d0, long long d1, long long d2) {
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    long long r = e;
    const long long p2 = r % P2; r /= P2;
    const long long p1 = r % P1; r /= P1;
    const long long p0 = r % P0; r /= P0;
    const long long ci = r % c;
    const long long ni = r / c;
    const long long pf = (p0 * P1 + p1) * P2 + p2;
    const T* base = cols + (ci * K * n + ni) * L;
    T acc = (T)0;
    long long t = 0;
    for (long long i0 = 0; i0 < k0; ++i0)
    for (long long i1 = 0; i1 < k1; ++i1)
    for (long long i2 = 0; i2 < k2; ++i2, ++t) {
      long long q;
      if (flat) {  // a column is one run of the flat padded image, shifted per offset
        q = pf - ((i0 * d0 * P1 + i1 * d1) * P2 + i2 * d2);
        if (q < 0 || q >= L) continue;
      } else {     // output position o with p = o * stride + i * dilation, per dim
        long long a0 = p0 - i0 * d0, a1 = p1 - i1 * d1, a2 = p2 - i2 * d2;
        if (a0 < 0 || a1 < 0 || a2 < 0 || a0 % s0 || a1 % s1 || a2 % s2) continue;
        a0 /= s0; a1 /= s1; a2 /= s2;
        if (a0 >= O0 || a1 >= O1 || a2 >= O2) continue;
        q = (a0 * O1 + a1) * O2 + a2;
      }
      acc = acc + base[t * n * L + q];
    }
    out[e] = acc;
  }
}
"""

_C_TYPES = {"float32": "float", "float64": "double"}


def source(dtype: str) -> tuple:
    """``(kernel name, CUDA C source)`` of col2im for ``float32`` / ``float64``."""
    name = f"polyten_col2im_{dtype}"
    return name, (f"typedef {_C_TYPES[dtype]} T;\n"
                  + COL2IM_SRC.replace("polyten_col2im_T", name))


def _front3(values, fill=1):
    values = tuple(values)
    return (fill,) * (3 - len(values)) + values


def make_col2im(cp):
    """``col2im(cols, geo, n, c) -> (N, C, *P)`` as the shared kernels call it, or ``None``
    for a geometry or dtype it does not take (the shared version runs then)."""
    kernels = {}
    i64 = cp.int64

    def col2im(cols, geo, n, c):
        dtype = cols.dtype.name
        m = len(geo.P)
        if dtype not in _C_TYPES or m > 3 or not cols.flags.c_contiguous:
            return None
        k = kernels.get(dtype)
        if k is None:
            name, code = source(dtype)
            k = kernels[dtype] = cp.RawKernel(code, name)
        out = cp.empty((n, c) + tuple(geo.P), dtype=cols.dtype)
        total = out.size
        if total == 0:
            return out
        pstr = [1] * m  # row-major strides of the padded image, in elements
        for d in range(m - 2, -1, -1):
            pstr[d] = pstr[d + 1] * geo.P[d + 1]
        dil = [ks // ps for ks, ps in zip(geo.kstr, pstr)]
        flat = geo.ostr is not None
        stride = [1] * m if flat else [gs // ps for gs, ps in zip(geo.gstr, pstr)]
        args = (cols, out, i64(total), i64(n), i64(c), i64(geo.K), i64(geo.L), cp.bool_(flat))
        args += tuple(i64(v) for v in _front3(geo.P) + _front3(geo.O) + _front3(geo.k)
                      + _front3(stride) + _front3(dil))
        blocks = min(_MAX_BLOCKS, -(-total // _BLOCK))
        k((blocks,), (_BLOCK,), args)
        return out

    return col2im
