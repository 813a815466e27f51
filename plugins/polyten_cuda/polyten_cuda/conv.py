"""im2col and col2im in one CUDA launch each, for the shared convolution kernels
(``polyten_cpu.kernels.conv``).

The shared im2col pads the input (a zero fill and a copy) and then copies the columns out of
the padded image: three launches and two extra passes.  Here each column entry reads its input
element (or 0 in the padding) directly: one launch, and no padded image.

The shared col2im (the adjoint of im2col: the input gradient of a convolution and the forward
of a transposed one) fills the padded image with zeros and adds the columns of each kernel
offset with one strided in-place add: ``K + 1`` launches (10 for a 3x3 kernel), each a pass over
the image.  Here one thread per element of the padded image *gathers* the column entries that
land on it, in the same kernel-offset order, so the result is bit-identical to the shared
version, with no atomics, no zero fill and one pass.  The geometry (flat or exact layout, see
``polyten_cpu.kernels.conv._Geometry``) arrives as kernel parameters, padded to three spatial
dims at the front.  Both are bit-identical to the shared versions (a test checks).

float16 and bfloat16 too: the shared convolution keeps them on this backend (its ``half``
context: cuBLAS multiplies them on tensor cores with float32 accumulation, see
:func:`conv_context`), so im2col copies half values and col2im sums half columns in float32
and rounds once -- as PyTorch's own (non-cuDNN) CUDA convolution accumulates its col2im.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import fused_src as src
from .multi_tensor import C_TYPES, HALF, PRELUDE, GridStrideKernels, dtype_names

# The kernels below divide by a launch's sizes and strides through
# ``fused_src.DIVIDER`` (magic numbers with 32-bit indices); their divisor parameters are
# ``U``, packed on the host by :func:`divisor`.
DIVIDER = ("typedef unsigned long long U;\n" + src.DIVIDER
           + "typedef polyten_divider<I> Div;\n")

# cols: (C, K, N, L) contiguous (the (G, C/G * K, N * L) columns); out: (N, C, P0, P1, P2)
COL2IM_SRC = r"""
extern "C" __global__ void polyten_col2im_T(const T* cols, T* out, I total,
    I n, U c_, I K, I L, bool flat,
    I P0, I P1, I P2, I O0, I O1, I O2,
    I k0, I k1, I k2, U s0_, U s1_, U s2_,
    I d0, I d1, I d2, U S0_, U S1_, U S2_,
    I lo0, I lo1, I lo2) {
  // out: (N, C, S0, S1, S2), the padded image's block from (lo0, lo1, lo2) on (the whole
  // image: S = P, lo = 0; a convolution's input gradient: the unpadded input's block)
  const Div c(c_), s0(s0_), s1(s1_), s2(s2_), S0(S0_), S1(S1_), S2(S2_);
  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (I)gridDim.x * blockDim.x) {
    I r = e;
    const I p2 = S2.next(r) + lo2;
    const I p1 = S1.next(r) + lo1;
    const I p0 = S0.next(r) + lo0;
    const I ci = c.next(r);
    const I ni = r;
    const I pf = (p0 * P1 + p1) * P2 + p2;
    const T* base = cols + (ci * K * n + ni) * L;
    A acc = (A)0;
    I t = 0;
    for (I i0 = 0; i0 < k0; ++i0)
    for (I i1 = 0; i1 < k1; ++i1)
    for (I i2 = 0; i2 < k2; ++i2, ++t) {
      I q;
      if (flat) {  // a column is one run of the flat padded image, shifted per offset
        q = pf - ((i0 * d0 * P1 + i1 * d1) * P2 + i2 * d2);
        if (q < 0 || q >= L) continue;
      } else {     // output position o with p = o * stride + i * dilation, per dim
        I a0 = p0 - i0 * d0, a1 = p1 - i1 * d1, a2 = p2 - i2 * d2;
        if (a0 < 0 || a1 < 0 || a2 < 0) continue;
        // a: now o (a stride of 1, a stride-1 convolution's input gradient on cuda's exact
        // layout, divides nothing: the branch is the same for every thread)
        if ((s0.d != 1 && s0.next(a0)) || (s1.d != 1 && s1.next(a1))
            || (s2.d != 1 && s2.next(a2))) continue;
        if (a0 >= O0 || a1 >= O1 || a2 >= O2) continue;
        q = (a0 * O1 + a1) * O2 + a2;
      }
      acc = acc + (A)base[t * n * L + q];
    }
    out[e] = (T)acc;
  }
}
"""

# x: (N, C, S0, S1, S2) unpadded; cols: (C, K, N, L) -- the columns of x padded by lo (and
# whatever hi), read without materialising the padded image: positions in the padding are 0
IM2COL_SRC = r"""
extern "C" __global__ void polyten_im2col_T(const T* x, T* cols, I total,
    U n_, I c, U K_, U L_, bool flat,
    I S0, I S1, I S2, U P1_, U P2_,
    U O1_, U O2_, U k1_, U k2_,
    I s0, I s1, I s2, I d0, I d1, I d2,
    I lo0, I lo1, I lo2) {
  const Div n(n_), K(K_), L(L_), P1(P1_), P2(P2_), O1(O1_), O2(O2_), k1(k1_), k2(k2_);
  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (I)gridDim.x * blockDim.x) {
    I r = e;
    const I q = L.next(r);
    const I ni = n.next(r);
    I t = K.next(r);
    const I ci = r;
    const I i2 = k2.next(t);
    const I i1 = k1.next(t);
    const I i0 = t;
    I p0, p1, p2;
    if (flat) {  // grid position q of the flat layout: a flat padded index, shifted
      I pf = q + (i0 * d0 * P1.d + i1 * d1) * P2.d + i2 * d2;
      p2 = P2.next(pf);
      p1 = P1.next(pf);
      p0 = pf;
    } else {
      I o = q;
      const I o2 = O2.next(o);
      const I o1 = O1.next(o);
      const I o0 = o;
      p0 = o0 * s0 + i0 * d0; p1 = o1 * s1 + i1 * d1; p2 = o2 * s2 + i2 * d2;
    }
    const I a0 = p0 - lo0, a1 = p1 - lo1, a2 = p2 - lo2;
    T v = (T)0.0f;
    if (a0 >= 0 && a0 < S0 && a1 >= 0 && a1 < S1 && a2 >= 0 && a2 < S2)
      v = x[(((ni * c + ci) * S0 + a0) * S1 + a1) * S2 + a2];
    cols[e] = v;
  }
}
"""

# res: (C, N, L) product grid in A (float32 for the half dtypes: the product unrounded);
# y: (N, C, O0, O1, O2), each value res at the output position's grid index plus the
# channel's bias, rounded once.  Output position o sits at o0 * os0 + o1 * os1 + o2 * os2.
FROM_GRID_SRC = r"""
extern "C" __global__ void polyten_from_grid_T(const A* res, const T* bias, T* y,
    I total, I n, U c_, I L, bool has_bias,
    U O0_, U O1_, U O2_, I os0, I os1, I os2) {
  const Div c(c_), O0(O0_), O1(O1_), O2(O2_);
  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (I)gridDim.x * blockDim.x) {
    I r = e;
    const I o2 = O2.next(r);
    const I o1 = O1.next(r);
    const I o0 = O0.next(r);
    const I ci = c.next(r);
    const I ni = r;
    A v = res[(ci * n + ni) * L + o0 * os0 + o1 * os1 + o2 * os2];
    if (has_bias) v = v + (A)bias[ci];
    y[e] = (T)v;
  }
}
"""

# g: (N, C, O0, O1, O2) C-contiguous; grid: (C, N, L), g's value at each grid index that is
# an output position (the mixed-radix digits of q by os0 > os1 > 1 -- the last dim's stride
# is 1 in both layouts -- within O), else 0
TO_GRID_SRC = r"""
extern "C" __global__ void polyten_to_grid_T(const T* g, T* grid, I total,
    U n_, I c, U L_,
    I O0, I O1, I O2, U os0_, U os1_) {
  const Div n(n_), L(L_), os0(os0_), os1(os1_);
  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (I)gridDim.x * blockDim.x) {
    I r = e;
    const I q = L.next(r);
    const I ni = n.next(r);
    const I ci = r;
    I o0 = q;
    I o1 = os0.next(o0);        // o0 = q / os0, o1 = q % os0
    const I o2 = os1.next(o1);  // o1 = (q % os0) / os1
    T v = (T)0.0f;
    if (o0 < O0 && o1 < O1 && o2 < O2)
      v = g[(((ni * c + ci) * O0 + o0) * O1 + o1) * O2 + o2];
    grid[e] = v;
  }
}
"""

_SOURCES = {"col2im": COL2IM_SRC, "im2col": IM2COL_SRC, "from_grid": FROM_GRID_SRC,
            "to_grid": TO_GRID_SRC}


# 32-bit index arithmetic while every index of a launch stays below this: CUDA's 64-bit
# integer division is a long software sequence, and each thread divides a dozen times.  The
# headroom covers the grid-stride loop's last step (at most 65536 blocks of 256 threads).
I32_LIMIT = 2 ** 31 - 2 ** 25


def source(dtype: str, which: str = "col2im", index: str = "int64") -> tuple:
    """``(kernel name, CUDA C source)`` of ``col2im``, ``im2col``, ``from_grid`` or
    ``to_grid`` for ``float16`` / ``bfloat16`` / ``float32`` / ``float64`` (``T``; col2im
    sums in ``A``, float32 for the half dtypes, and from_grid reads ``A``), with ``int64``
    or ``int32`` indices and size parameters (``I``; the divisors ``U``, see
    :func:`divisor`)."""
    name = f"polyten_{which}_{dtype}" + ("_i32" if index == "int32" else "")
    code = _SOURCES[which]
    return name, (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n"
                  "typedef polyten_acc<T>::type A;\n"
                  f"typedef {'int' if index == 'int32' else 'long long'} I;\n"
                  + DIVIDER + code.replace(f"polyten_{which}_T", name))


@functools.lru_cache(maxsize=4096)  # a launch packs up to 12: 0.13 us each from here, not 1
def divisor(d: int, index: str):
    """The kernel argument (``U``, a NumPy uint64) that carries the divisor ``d`` of a launch
    with ``index`` (``"int32"`` / ``"int64"``) arithmetic: ``d`` and, for 32-bit indices, its
    magic number ``m = 2**32 * (2**s - d) // d + 1`` (``s = ceil(log2(d))``) in the high 32
    bits -- ``polyten_divider<int>`` then divides any ``n < 2**31`` as
    ``(umulhi(n, m) + n) >> s``."""
    d = int(d)
    if index == "int64":
        if d < 1:
            raise ValueError(f"conv index kernels: divisor {d} (a size or stride) must be >= 1")
        return np.uint64(d)
    if not 1 <= d < 2 ** 31:
        raise ValueError(f"conv index kernels: 32-bit divisor {d} outside [1, 2**31)")
    s = (d - 1).bit_length()
    m = ((1 << 32) * ((1 << s) - d)) // d + 1
    return np.uint64(d | (m << 32))


def _strides(geo):
    """``(flat, stride, dilation)`` per spatial dim of a geometry (in padded-image steps)."""
    m = len(geo.P)
    pstr = [1] * m  # row-major strides of the padded image, in elements
    for d in range(m - 2, -1, -1):
        pstr[d] = pstr[d + 1] * geo.P[d + 1]
    dil = [ks // ps for ks, ps in zip(geo.kstr, pstr)]
    flat = geo.ostr is not None
    stride = [1] * m if flat else [gs // ps for gs, ps in zip(geo.gstr, pstr)]
    return flat, stride, dil


def _front3(values, fill=1):
    values = tuple(values)
    return (fill,) * (3 - len(values)) + values


def raw_kernels(cp) -> GridStrideKernels:
    """The RawKernels of :func:`source` on ``cp``, by ``(which, dtype, index)``, compiled on
    first use."""
    return GridStrideKernels(cp, lambda which, dtype, index: source(dtype, which, index))


def narrow_index(*sizes) -> bool:
    """Whether a launch whose indices stay below the largest of ``sizes`` takes 32-bit index
    arithmetic (the conv kernels here, the max-pool kernels of ``fused``)."""
    return max(sizes) < I32_LIMIT


def _index_type(cp, *sizes):
    """``(NumPy type, name)`` of the index arithmetic of such a launch."""
    return (cp.int32, "int32") if narrow_index(*sizes) else (cp.int64, "int64")


def make_col2im(cp, kernels=None):
    """``col2im(cols, geo, n, c) -> (N, C, *P)`` as the shared kernels call it, or ``None``
    for a geometry or dtype it does not take (the shared version runs then)."""
    kernels = kernels or raw_kernels(cp)

    def col2im(cols, geo, n, c, crop=None):
        """``crop``: ``(lo, shape)`` -- only the block of the padded image from ``lo`` on of
        spatial ``shape`` (a convolution's input gradient without its padding: no copy)."""
        dtype = cols.dtype.name
        if dtype not in C_TYPES or len(geo.P) > 3 or not cols.flags.c_contiguous:
            return None
        lo, shape = ((0,) * len(geo.P), geo.P) if crop is None else crop
        out = cp.empty((n, c) + tuple(shape), dtype=cols.dtype)
        total = out.size
        if total == 0:
            return out
        flat, stride, dil = _strides(geo)
        ix, index = _index_type(cp, cols.size, total, n * c * math.prod(geo.P))
        args = (cols, out, ix(total), ix(n), divisor(c, index), ix(geo.K), ix(geo.L),
                cp.bool_(flat))
        args += tuple(ix(v) for v in _front3(geo.P) + _front3(geo.O) + _front3(geo.k))
        args += tuple(divisor(v, index) for v in _front3(stride))
        args += tuple(ix(v) for v in _front3(dil))
        args += tuple(divisor(v, index) for v in _front3(shape))
        args += tuple(ix(v) for v in _front3(lo, 0))
        kernels.launch(kernels.get("col2im", dtype, index), total, args)
        return out

    return col2im


def make_im2col(cp, kernels=None):
    """``im2col(x, pads, geo, groups) -> (G, C/G * K, N * L)``: the columns of ``x`` (N, C,
    *S) zero-padded by ``pads`` ((lo, hi) per dim; ``geo`` is the padded geometry) in one
    launch, without the padded copy, or ``None`` where it declines."""
    kernels = kernels or raw_kernels(cp)

    def im2col(x, pads, geo, groups):
        dtype = x.dtype.name
        if dtype not in C_TYPES or len(geo.P) > 3:
            return None
        n, c = x.shape[:2]
        x = cp.ascontiguousarray(x)
        cols = cp.empty((groups, (c // groups) * geo.K, n * geo.L), dtype=x.dtype)
        total = cols.size
        if total == 0:
            return cols
        flat, stride, dil = _strides(geo)
        P = _front3(geo.P)
        ix, index = _index_type(cp, x.size, total, n * c * math.prod(geo.P))
        args = (x, cols, ix(total), divisor(n, index), ix(c), divisor(geo.K, index),
                divisor(geo.L, index), cp.bool_(flat))
        args += tuple(ix(v) for v in _front3(x.shape[2:]))
        args += tuple(divisor(v, index) for v in P[1:] + _front3(geo.O)[1:]
                      + _front3(geo.k)[1:])
        args += tuple(ix(v) for v in _front3(stride) + _front3(dil)
                      + _front3([lo for lo, _ in pads], 0))
        kernels.launch(kernels.get("im2col", dtype, index), total, args)
        return cols

    return im2col


def _out_strides(geo):
    """Where each output position sits in the product grid: per spatial dim (front-padded to
    three; a padded dim's stride is the grid's length, so its digit is 0).  The last is 1 in
    both layouts (flat: the padded image's strides; exact: the outputs in C order)."""
    if geo.ostr is not None:
        ostr = tuple(geo.ostr)
    else:  # exact layout: the grid is the outputs in C order
        ostr, acc = (), 1
        for o in reversed(geo.O):
            ostr, acc = (acc,) + ostr, acc * o
    return (max(geo.L, 1),) * (3 - len(ostr)) + ostr


def make_grid_kernels(cp, kernels=None):
    """``(from_grid, to_grid)`` as the shared convolution kernels call them, one launch
    each, or ``None`` where they decline (another dtype, more than three spatial dims):

    * ``from_grid(res, geo, n, bias, dtype) -> (N, C, *O)`` of ``dtype``: the product grid
      ``res`` (C, N * L) -- float32 for the half dtypes, the product unrounded -- gathered to
      the output layout, plus the channel's bias (``None``: none; else of ``dtype``),
      rounded once: the shared version's transposing copy and in-place bias add in one pass;
    * ``to_grid(g, geo, groups) -> (G, C/G, N * L)``: the output gradient scattered to the
      grid layout, zero at the grid positions that are no output: the shared version's
      zero fill and strided copy in one pass."""
    kernels = kernels or raw_kernels(cp)
    names = dtype_names(cp, C_TYPES)
    f32 = cp.dtype("float32")

    def from_grid(res, geo, n, bias, dtype):
        name = names.get(dtype)
        acc = f32 if name in HALF else dtype
        c = res.shape[0]
        if (name is None or len(geo.O) > 3 or res.dtype != acc or not res.flags.c_contiguous
                or (bias is not None and (bias.dtype != dtype or bias.size != c
                                          or not bias.flags.c_contiguous))):
            return None
        y = cp.empty((n, c) + tuple(geo.O), dtype=dtype)
        total = y.size
        if total == 0:
            return y
        ix, index = _index_type(cp, res.size, total)
        args = (res, res if bias is None else bias, y, ix(total), ix(n), divisor(c, index),
                ix(geo.L), cp.bool_(bias is not None))
        args += tuple(divisor(v, index) for v in _front3(geo.O))
        args += tuple(ix(v) for v in _out_strides(geo))
        kernels.launch(kernels.get("from_grid", name, index), total, args)
        return y

    def to_grid(g, geo, groups):
        dtype = names.get(g.dtype)
        if dtype is None or len(geo.O) > 3:
            return None
        n, c = g.shape[:2]
        g = cp.ascontiguousarray(g)
        grid = cp.empty((groups, c // groups, n * geo.L), dtype=g.dtype)
        total = grid.size
        if total == 0:
            return grid
        ix, index = _index_type(cp, g.size, total)
        args = (g, grid, ix(total), divisor(n, index), ix(c), divisor(geo.L, index))
        args += tuple(ix(v) for v in _front3(geo.O))
        args += tuple(divisor(v, index) for v in _out_strides(geo)[:2])
        kernels.launch(kernels.get("to_grid", dtype, index), total, args)
        return grid

    return from_grid, to_grid


def make_channel_sum(rows):
    """``channel_sum(g) -> (C,)``: the sums over every dim but dim 1 of an (N, C, ...)
    gradient in its dtype, the half dtypes summed in float32 and rounded once (the shared
    kernels' ``spatial_sum`` then rounding), or ``None`` for a view or a dtype the row kernels
    do not take."""
    def channel_sum(g):
        if g.ndim < 2 or not g.flags.c_contiguous or not rows.fits(g):
            return None
        n, c = g.shape[:2]
        return rows.channel_sum(g.reshape(n, c, g.size // (n * c)))  # fits: not empty
    return channel_sum


# Split-K for a weight gradient ``grid @ cols^T``: (O, N * L) @ (N * L, C * K) is a small
# product over a long K (bench_cuda's CNN: 64 x 27 over K = 262144, 128 x 576 over 65536 at
# batch 256).  Without a split, a GEMM's thread blocks tile only the M x N output (one or a
# few blocks of 128 x 128) and each walks all of K while most SMs idle.  Whether cuBLAS
# splits K itself for such shapes is not known here (no GPU yet: bench_cuda's convk case
# measures it); the split costs one more launch and S * M * N float32 partials, where an
# unsplit GEMM that idles the GPU would cost milliseconds.  So: past SPLIT_K_MIN of K and
# below SPLIT_K_TILES output tiles of 128 x 128, K is cut into S equal parts (S divides K,
# each at least SPLIT_K_PART long) for about SPLIT_K_BLOCKS tiles in all -- one
# strided-batched GEMM of S products into float32 partials -- then one launch adds the
# partials in order and rounds once (``Rows.sum_parts``).
SPLIT_K_MIN = 8192
SPLIT_K_TILES = 32
SPLIT_K_PART = 4096
SPLIT_K_BLOCKS = 256


def split_k(m: int, n: int, k: int) -> int:
    """How many parts (1: none) a product of ``m x n`` over ``k`` is split into."""
    tiles = -(-m // 128) * -(-n // 128)
    if k < SPLIT_K_MIN or tiles >= SPLIT_K_TILES:
        return 1
    want = min(-(-SPLIT_K_BLOCKS // tiles), k // SPLIT_K_PART)
    for parts in range(want, 1, -1):  # the most parts up to ``want`` that divide k
        if k % parts == 0:
            return parts
    return 1


def make_split_k(cp, bmm, rows, setting):
    """``product(a, b)`` of one (1, M, K) @ (1, K, N) -- ``b`` a transposed view of C-contiguous
    (1, N, K) columns, as a weight gradient's -- split over K (see :func:`split_k`), or None
    where it does not apply."""
    def product(a, b):
        if a.ndim != 3 or a.shape[0] != 1 or b.ndim != 3 or b.shape[0] != 1:
            return None
        dt = a.dtype
        if b.dtype != dt or not rows.takes(dt) or not a.flags.c_contiguous:
            return None
        _, m, k = a.shape
        n = b.shape[2]
        bt = b[0].T  # the (N, K) columns
        if not bt.flags.c_contiguous:
            return None
        parts = split_k(m, n, k)
        if parts == 1:
            return None
        kp = k // parts
        # part s: a's columns s * kp ... as (m, kp) with row stride k (batch stride kp), and
        # b's rows likewise (the columns' transpose): one strided-batched GEMM
        a_s = a[0].reshape(m, parts, kp).transpose(1, 0, 2)
        b_s = bt.reshape(n, parts, kp).transpose(1, 2, 0)
        part = cp.empty((parts, m, n), dtype=rows.acc(dt))
        if bmm(a_s, b_s, out=part, precision=setting[0]) is None:
            return None
        return rows.sum_parts(part, dt).reshape(1, m, n)
    return product


def conv_context(cp, raw, bmm, precision=None, rows=None) -> dict:
    """The shared convolution kernels' context on CuPy (``polyten_cpu.kernels.conv``):
    one-launch ``im2col`` / ``col2im``, ``channel_sum`` (the bias gradient: one row-kernel
    launch of ``rows``, a :class:`polyten_cuda.rows.Rows`, instead of CuPy's reduction call),
    ``flat_waste`` 1.0 (the exact column layout: see the comment below),
    ``matmul`` -- the batched GEMMs of
    :mod:`polyten_cuda.gemm` (no copy of the transposed grid of the weight gradient; float16
    on tensor cores; a weight gradient's small product over a long K split over K with
    ``rows``, see :func:`split_k`), else ``cupy.matmul`` -- and ``half``: the dtypes kept as
    they are (float16, and bfloat16 where CuPy multiplies it) instead of computed in float32.

    ``precision``: a one-item list holding the float32 convolution precision
    (``Backend.float32_conv_precision`` writes it), or None to follow the matrix products'
    setting.  The ``cupy.matmul`` fallback (shapes past cuBLAS's 32-bit sizes, or a dtype
    cuBLAS refused) follows the matrix products' setting."""
    ctx = {"col2im": make_col2im(cp, raw), "im2col": make_im2col(cp, raw)}
    # The flat layout's long contiguous runs save NumPy's per-run overhead; these kernels
    # compute every column position anyway, so here its extra columns (12% for a 16 x 16
    # image padded by 1 under a 3 x 3 kernel) would only add GEMM work and bytes.
    ctx["flat_waste"] = 1.0
    ctx["from_grid"], ctx["to_grid"] = make_grid_kernels(cp, raw)
    if rows is not None:
        ctx["channel_sum"] = make_channel_sum(rows)
    if bmm is None:
        return ctx
    matmul = cp.matmul
    setting = precision if precision is not None else [None]

    split = make_split_k(cp, bmm, rows, setting) if rows is not None else None

    def product(a, b, out=None):
        if out is None and split is not None:  # a weight gradient: no out given
            r = split(a, b)
            if r is not None:
                return r
        r = bmm(a, b, out=out, precision=setting[0])
        return matmul(a, b, out=out) if r is None else r
    ctx["matmul"] = product
    ctx["half"] = bmm.half_dtypes  # im2col / col2im take every one of them
    return ctx
