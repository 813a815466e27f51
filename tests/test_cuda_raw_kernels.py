"""The cuda backend's ``RawKernel`` kernels without a GPU: the multi-tensor optimizer steps
(``polyten_cuda.multi_tensor``) and the one-launch im2col / col2im (``polyten_cuda.conv``).

Their CUDA sources compile with ``nvcc``; run on the host (the stand-in's ``RawKernel``
compiles them with g++ and runs every thread of every block), each gives exactly the result
of the code it replaces (the per-parameter kernel; the shared im2col / col2im) and, for
im2col / col2im, of a direct NumPy gather / scatter; and the launches are what the modules
promise (one per 64 tensors of one device, dtype and set of step constants; non-contiguous
tensors on the per-parameter path)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from _nvcc import compile_only
from cupy_standin import CXX, RawKernel, StandinError, fake_cupy
from polyten_cuda import fused_src, multi_tensor

pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) to run the "
                                                    "CUDA kernels on the CPU")

STEPS = sorted(n for n in fused_src.ELEMENTWISE if multi_tensor.is_step(n))


class _Counting:
    """Wraps a kernel object to count its calls."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.k(*args, **kw)


def _counting_cupy():
    """``(fake cupy, names of the RawKernels it launched, in order)``."""
    cp = fake_cupy()
    raw = []

    class CountingRaw(RawKernel):
        def __call__(self, *a, **kw):
            raw.append(self.name)
            return super().__call__(*a, **kw)

    cp.RawKernel = CountingRaw
    return cp, raw


def _nvcc_compiles(tmp_path, sources):
    """``sources`` (``(kernel name, CUDA C)`` pairs) compiled for sm_80, each in its own
    namespace, with C++ linkage (compile only, no GPU needed)."""
    compile_only(tmp_path, [f"namespace {name} {{\n{code}\n}}\n".replace('extern "C" ', "")
                            for name, code in sources])


def _setup():
    cp, raw = _counting_cupy()
    ew = {k: _Counting(cp.ElementwiseKernel(s.in_params, s.out_params, s.operation, s.name,
                                            preamble=fused_src.PREAMBLE))
          for k, s in fused_src.ELEMENTWISE.items()}
    return cp, ew, multi_tensor.build(cp, ew, fused_src.ELEMENTWISE), raw


def _call_args(name, arrays, rng, shared_found=None, shared_total=None):
    """One parameter's positional arguments for the step ``name``: its arrays (fresh copies)
    and scalars drawn once per test so that the tensors share them."""
    spec = fused_src.ELEMENTWISE[name]
    arr_pos = {pos for pos, _, _ in multi_tensor.split(spec)[0]}
    params = fused_src.params(spec.in_params) + fused_src.params(spec.out_params)
    it = iter(arrays)
    out = []
    for pos, (ty, pname, raw) in enumerate(params):
        if pos in arr_pos:
            out.append(next(it))
        elif raw and ty == "float64":  # NAdam's running product, one per tensor
            out.append(np.full(1, 0.5))
        elif raw:
            out.append(shared_total if ty == "T" else shared_found)
        elif ty == "bool":
            out.append(bool(rng[pname] > 0.5))
        else:
            out.append(float(rng[pname]))
    return tuple(out)


def _state(n_arrays, size, dtype, seed):
    r = np.random.default_rng(seed)
    arrs = [r.standard_normal(size).astype(dtype) for _ in range(n_arrays)]
    # second moments, sums of squares and step sizes are non-negative in real use
    return [np.abs(a) if k >= 2 else a for k, a in enumerate(arrs)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", STEPS)
def test_multi_tensor_matches_the_per_parameter_kernel(name, dtype, monkeypatch):
    """Bit-identical to the per-parameter kernel, for 7 tensors of sizes 1 to 2500 with at
    most 2 blocks per tensor (so that the grid-stride loop runs several rounds)."""
    monkeypatch.setattr(multi_tensor, "_MAX_BLOCKS_X", 2)
    cp, ew, mt, raw = _setup()
    spec = fused_src.ELEMENTWISE[name]
    n_arrays = len(multi_tensor.split(spec)[0])
    gen = np.random.default_rng(1)
    scal = {pname: gen.uniform(0.05, 0.95) for _, pname, _ in
            fused_src.params(spec.in_params) + fused_src.params(spec.out_params)}
    sizes = [1, 7, 256, 257, 600, 2500, 33]
    ref = [_state(n_arrays, s, dtype, i) for i, s in enumerate(sizes)]
    got = [[a.copy() for a in arrs] for arrs in ref]
    found_ref, found_got = np.zeros(1, np.float32), np.zeros(1, np.float32)
    total = np.array(3.5, dtype)  # grad_clip_step's total norm
    for arrs in ref:
        ew[name](*_call_args(name, arrs, scal, found_ref, total))
    ew[name].calls = 0
    mt[name]([_call_args(name, arrs, scal, found_got, total) for arrs in got])
    # 7 tensors: the 8-slot kernel (one unused slot)
    assert raw == [multi_tensor.kernel_name(spec, dtype, 8)] and ew[name].calls == 0
    for a, b in zip(ref, got):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(found_ref, found_got)


def test_groups_chunks_and_fallbacks():
    """One launch per 64 tensors sharing device, dtype and constants; tensors at another step
    count form their own group; float16, non-contiguous and broadcast operands take the
    per-parameter kernel; empty tensors launch nothing."""
    cp, ew, mt, raw = _setup()
    name = "sgd_step"
    step = mt[name]

    def call(p, g, lr=-0.1):
        return (g, 1.0, lr, p)

    ps = [np.ones(i + 1) for i in range(70)]
    step([call(p, np.full_like(p, 2.0)) for p in ps])
    assert raw == [multi_tensor.kernel_name(fused_src.ELEMENTWISE[name], "float64", 64),
                   multi_tensor.kernel_name(fused_src.ELEMENTWISE[name], "float64", 8)]
    assert all(np.all(p == 0.8) for p in ps)

    raw.clear()
    a, b = np.ones(5), np.ones(5, np.float32)
    step([call(a, np.ones(5)), call(b, np.ones(5, np.float32)), call(np.ones(3), np.ones(3),
                                                                       lr=-0.5)])
    one = [multi_tensor.kernel_name(fused_src.ELEMENTWISE[name], dt, 1)
           for dt in ("float64", "float64", "float32")]
    assert sorted(raw) == sorted(one)
    raw.clear()
    ew[name].calls = 0
    h = np.ones(4, np.float16)  # float16: multi-tensor too, computed in float32
    t = np.ones((3, 4))
    gt = np.ones((4, 3)).T  # non-contiguous gradient
    step([call(h, np.ones(4, np.float16)), call(t, gt), call(np.ones(0), np.ones(0))])
    assert raw == [multi_tensor.kernel_name(fused_src.ELEMENTWISE[name], "float16", 1)]
    assert ew[name].calls == 1
    assert np.all(h == np.float16(0.9)) and np.all(t == 0.9)


def test_adam_state_steps_split_groups():
    """Parameters at different step counts (one skipped a step without a gradient) get their
    own bias corrections: two launches, each matching the per-parameter kernel."""
    from polyten_cuda import optim as copt
    cp, ew, _, raw = _setup()
    adam = copt.make(cp, ew)["adam"]
    ref_adam = copt.make(cp, ew)["adam"]
    ps = [np.linspace(-1, 1, 10), np.linspace(0, 2, 4), np.linspace(1, 3, 6)]
    gs = [np.cos(p) for p in ps]
    kw = dict(amsgrad=False, beta1=0.9, beta2=0.99, lr=0.01, weight_decay=0.0, eps=1e-8,
              maximize=False)
    got = [p.copy() for p in ps]
    adam(got, gs, [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps], [None] * 3,
         [3, 1, 3], **kw)
    assert len(raw) == 2
    for i, p in enumerate(ps):  # one at a time: a launch each, then compare
        want = p.copy()
        ref_adam([want], [gs[i]], [np.zeros_like(p)], [np.zeros_like(p)], [None], [[3, 1, 3][i]],
                 **kw)
        np.testing.assert_array_equal(got[i], want)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the generated CUDA "
                    "sources are only compiled for the host")
def test_generated_sources_compile_with_nvcc(tmp_path):
    """Every multi-tensor kernel, for float16 (its PTX conversions), float32 and float64,
    with one, eight and its largest number of slots, compiles as device code (compile only:
    no GPU needed)."""
    parts = []
    for name in STEPS:
        spec = fused_src.ELEMENTWISE[name]
        top = multi_tensor.max_slots(spec)
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            for slots in sorted({1, 8, top}):  # the code differs only in the count
                parts.append(multi_tensor.source(spec, dtype, slots))
    _nvcc_compiles(tmp_path, parts)


def test_parameter_space_fits_every_launch():
    """Kernel parameters stay under CUDA's 4 KiB for the largest slot count of each step."""
    for name in STEPS:
        spec = fused_src.ELEMENTWISE[name]
        arrays, each, shared = multi_tensor.split(spec)
        slots = multi_tensor.max_slots(spec)
        assert slots >= 16
        assert slots * 8 * (1 + len(arrays) + len(each)) + 8 * len(shared) <= 4096


def test_stand_in_raw_kernel_passes_arguments_as_cupy_does():
    """The emulated RawKernel refuses what real CuPy would pass with the wrong width (a Python
    bool goes as int64), so a wrong argument fails here, not first on a GPU."""
    code = ('extern "C" __global__ void k(long long n, double* x, double a, bool neg) {\n'
            "  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;"
            " i += gridDim.x * blockDim.x) x[i] = neg ? -a * x[i] : a * x[i];\n}\n")
    k = RawKernel(code, "k")
    x = np.arange(10.0)
    k((2,), (3,), (np.int64(10), x, np.float64(2.0), np.bool_(True)))
    np.testing.assert_array_equal(x, -2.0 * np.arange(10.0))
    k((1,), (4,), (10, x, 0.5, np.bool_(False)))  # Python int -> int64, float -> float64: fine
    np.testing.assert_array_equal(x, -np.arange(10.0))
    with pytest.raises(StandinError, match="CuPy passes as int64.*numpy.bool"):
        k((1,), (4,), (10, x, 0.5, True))
    with pytest.raises(StandinError, match="pointer parameter"):
        k((1,), (4,), (10, 0, 0.5, np.bool_(False)))
    with pytest.raises(StandinError, match="3 arguments for 4"):
        k((1,), (4,), (10, x, 0.5))
    with pytest.raises(StandinError, match="no extern"):
        RawKernel(code, "missing")


# --- col2im in one launch (polyten_cuda.conv) ------------------------------------------------
_CONV_CASES = [  # x shape, weight shape, stride, padding, dilation, groups
    ((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),      # flat layout
    ((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),      # exact, groups
    ((1, 2, 11), (3, 2, 4), (3,), ((2, 1),), (2,), 1),                      # 1-d, strided
    ((1, 2, 5, 6, 4), (2, 2, 2, 3, 2), (1, 2, 1), ((0, 1), (1, 1), (0, 0)), (2, 1, 1), 1),
    # 3-d, flat layout
    ((1, 2, 4, 5, 4), (2, 2, 2, 2, 2), (1, 1, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 1), 1),
]


@pytest.mark.parametrize("index", ["int32", "int64"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("case", range(len(_CONV_CASES)))
def test_native_im2col_col2im_are_bit_identical_to_the_shared_ones(case, dtype, index,
                                                                    monkeypatch):
    """conv forward and backward and conv_transpose forward and backward with the one-launch
    im2col, col2im (the input gradient's unpadded block too), product grid to output (with
    the bias) and output gradient to grid equal the shared versions (padded copy + strided
    copy; K strided adds; transposing copy + bias add; zero fill + strided copy) exactly
    (same elements, same order of additions); float16 goes through them too (computed in
    float32).  Both index widths: 32-bit arithmetic below ``I32_LIMIT`` (every launch here),
    64-bit above it (the limit lowered to 0)."""
    from polyten_cpu.kernels import conv as shared_conv
    from polyten_cuda import conv as cuda_conv
    if index == "int64":
        monkeypatch.setattr(cuda_conv, "I32_LIMIT", 0)
    xs, ws, stride, pad, dil, groups = _CONV_CASES[case]
    fake = fake_cupy()
    raw = cuda_conv.raw_kernels(fake)
    native_c2i, native_i2c = cuda_conv.make_col2im(fake, raw), cuda_conv.make_im2col(fake, raw)
    native_from, native_to = cuda_conv.make_grid_kernels(fake, raw)
    used = []

    def col2im(cols, geo, n, c, crop=None):
        out = native_c2i(cols, geo, n, c, crop=crop)
        used.append(("col2im" if crop is None else "col2im crop", out is not None))
        return out

    def im2col(x, pads, geo, groups):
        out = native_i2c(x, pads, geo, groups)
        used.append(("im2col", out is not None))
        return out

    def from_grid(res, geo, n, bias, dtype):
        out = native_from(res, geo, n, bias, dtype)
        used.append(("from_grid", out is not None))
        return out

    def to_grid(g, geo, groups):
        out = native_to(g, geo, groups)
        used.append(("to_grid", out is not None))
        return out
    ref = shared_conv._ops(np)
    nat = shared_conv._ops(np, col2im, im2col, native_from_grid=from_grid,
                           native_to_grid=to_grid)
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y = ref["conv"](x, w, b, stride, pad, dil, groups)
    for bias in (b, None):
        yn = nat["conv"](x, w, bias, stride, pad, dil, groups)
        assert yn.dtype == y.dtype
        np.testing.assert_array_equal(yn, ref["conv"](x, w, bias, stride, pad, dil, groups))
    g = rng.standard_normal(y.shape).astype(dtype)
    params = {"needs": (True, True, True), "stride": stride, "padding": pad, "dilation": dil,
              "groups": groups}
    for a, e in zip(nat["conv_backward"]([g], [x, w, b], [y], params),
                    ref["conv_backward"]([g], [x, w, b], [y], params)):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)
    # conv_transpose: weight (C_in, C_out / groups, *k); its output is conv's input
    wt = rng.standard_normal((ws[0], ws[1]) + ws[2:]).astype(dtype)
    tpad = tuple(lo for lo, _ in pad)
    out_size = xs[2:]
    args = (g, wt, None, stride, tpad, out_size, dil, groups)
    yt, et = nat["conv_transpose"](*args), ref["conv_transpose"](*args)
    np.testing.assert_array_equal(yt, et)
    assert yt.shape == xs[:1] + (ws[1] * groups,) + xs[2:]
    tparams = dict(params, needs=(True, True, False), padding=tpad, output_size=out_size)
    gt = rng.standard_normal(yt.shape).astype(dtype)
    for a, e in zip(nat["conv_transpose_backward"]([gt], [g, wt, None], [yt], tparams),
                    ref["conv_transpose_backward"]([gt], [g, wt, None], [yt], tparams)):
        np.testing.assert_array_equal(a, e)
    assert {k for k, _ in used} == {"col2im", "col2im crop", "im2col", "from_grid",
                                    "to_grid"} and all(ok for _, ok in used)
    # every kernel ran with the index width asked for, and only with it
    assert {key[2] for key in raw.cache} == {index} and len(raw.cache) == 4


def test_cuda_convolutions_take_the_exact_column_layout():
    """cuda's convolution context bounds the flat layout's waste at 1.0: a stride-1 padded
    convolution's columns are the exact layout there (L = 256 output positions per sample of
    a 16 x 16 image padded by 1 under a 3 x 3 kernel; the shared default, flat, computes 286),
    and forward and backward still match the default's results."""
    from polyten_cpu.kernels import conv as shared_conv
    from polyten_cuda import conv as cuda_conv
    fake = fake_cupy()
    ctx = cuda_conv.conv_context(fake, cuda_conv.raw_kernels(fake), None)
    assert ctx["flat_waste"] == 1.0
    lengths = []

    def spy(im2col):
        def run(x, pads, geo, groups):
            lengths.append(geo.L)
            return im2col(x, pads, geo, groups)
        return run
    flat_ctx = dict(ctx, flat_waste=shared_conv._FLAT_WASTE)
    ctx["im2col"], flat_ctx["im2col"] = spy(ctx["im2col"]), spy(flat_ctx["im2col"])
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 16, 16)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    args = (x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    exact = shared_conv._ctx_ops(np, ctx)
    flat = shared_conv._ctx_ops(np, flat_ctx)
    y, yf = exact["conv"](*args), flat["conv"](*args)
    assert lengths == [256, 286]
    np.testing.assert_allclose(y, yf, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    params = {"needs": (True, True, True), "stride": (1, 1), "padding": ((1, 1), (1, 1)),
              "dilation": (1, 1), "groups": 1}
    for a, e in zip(exact["conv_backward"]([g], [x, w, b], [y], params),
                    flat["conv_backward"]([g], [x, w, b], [y], params)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_index_width_follows_the_largest_index():
    """32-bit index arithmetic exactly while every index of a launch (and the grid-stride
    loop's last step past it) stays below 2**31."""
    from polyten_cuda import conv as cuda_conv
    fake = fake_cupy()
    limit = cuda_conv.I32_LIMIT
    assert limit + 65536 * 256 <= 2 ** 31 - 1
    assert cuda_conv._index_type(fake, 10, limit - 1)[1] == "int32"
    assert cuda_conv._index_type(fake, limit, 3)[1] == "int64"


_DIVMOD_SRC = r"""
extern "C" __global__ void polyten_divmod_check(const I* n, const U* d, I* q, I* r, I total) {
  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (I)gridDim.x * blockDim.x) {
    const Div div(d[e]);
    I v = n[e];
    r[e] = div.next(v);
    q[e] = v;
  }
}
"""


@pytest.mark.parametrize("index", ["int32", "int64"])
def test_conv_index_division_is_exact_for_every_index_below_2_31(index):
    """The conv kernels' ``polyten_divider`` (magic-number multiply-high with 32-bit indices,
    plain division with 64-bit ones; compiled for the host as the stand-in compiles the
    kernels, with CUDA's ``__umulhi`` / ``__clz``) against NumPy's integer division: every
    divisor up to 4096, the powers of two and their neighbours up to 2**31 - 1, large primes
    and random ones, each with the dividends where a wrong magic number shows first (0, the
    multiples of d and their neighbours, the largest multiple below 2**31, 2**31 - 1 itself:
    above ``I32_LIMIT`` plus the grid-stride loop's overshoot) and random ones."""
    from polyten_cuda import conv as cuda_conv
    rng = np.random.default_rng(7)
    top = 2 ** 31 - 1
    ds = set(range(1, 4097)) | {2 ** 31 - 1, 2147483629, 1000000007, 65537, 46341}
    ds |= {v for j in range(1, 31) for v in (2 ** j - 1, 2 ** j, 2 ** j + 1)}
    ds |= {int(v) for v in rng.integers(1, 2 ** 31, 2000)}
    ns, dd = [], []
    for d in sorted(ds):
        k = top // d
        cand = {0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, k * d - 1, k * d, k * d + 1,
                (k - 1) * d + d // 2, top, top - 1}
        cand |= {int(v) for v in rng.integers(0, top, 4, endpoint=True)}
        for n in cand:
            if 0 <= n <= top:
                ns.append(n)
                dd.append(d)
    n = np.array(ns, dtype=np.int64)
    d = np.array(dd, dtype=np.int64)
    it = np.int32 if index == "int32" else np.int64
    code = (f"typedef {'int' if index == 'int32' else 'long long'} I;\n" + cuda_conv.DIVIDER
            + _DIVMOD_SRC)
    packed = np.array([cuda_conv.divisor(v, index) for v in dd], dtype=np.uint64)
    q, r = np.empty(n.size, it), np.empty(n.size, it)
    RawKernel(code, "polyten_divmod_check")((64,), (256,),
                                            (n.astype(it), packed, q, r, it(n.size)))
    bad = np.flatnonzero((q != n // d) | (r != n % d))
    assert bad.size == 0, [(int(n[i]), int(d[i]), int(q[i]), int(r[i])) for i in bad[:5]]
    for wrong in (0, -3) + ((2 ** 31,) if index == "int32" else ()):
        with pytest.raises(ValueError, match="divisor"):
            cuda_conv.divisor(wrong, index)


def _cublas_half_matmul(a, b, out=None):
    """cuBLAS's half GEMM (CUBLAS_COMPUTE_32F): products summed in float32, rounded once into
    the output's dtype (the operands' or float32)."""
    r = np.matmul(a.astype(np.float32), b.astype(np.float32))
    if out is None:
        return r.astype(a.dtype)
    out[...] = r.astype(out.dtype)
    return out


_HALF_CONV = {"float16": 4e-3, "bfloat16": 3e-2}  # dtype -> tolerance (relative to max)


@pytest.mark.parametrize("dtype", sorted(_HALF_CONV))
@pytest.mark.parametrize("case", range(len(_CONV_CASES)))
def test_half_convolution_kept_in_half_matches_torch_float64(case, dtype):
    """With the cuda backend's context (``half``: its GEMMs and col2im accumulate float16 and
    bfloat16 in float32) a half convolution stays half -- im2col, the products and the
    gradient grids move half the bytes -- and its forward and every gradient are within the
    dtype's rounding of torch's float64 convolution of the same operands; conv_transpose
    within the same of the float64 path."""
    torch = pytest.importorskip("torch")
    half = np.dtype(dtype) if dtype == "float16" else np.dtype(
        pytest.importorskip("ml_dtypes").bfloat16)
    tol = _HALF_CONV[dtype]
    import torch.nn.functional as tF
    from polyten_cpu.kernels import conv as shared_conv
    from polyten_cuda import conv as cuda_conv
    xs, ws, stride, pad, dil, groups = _CONV_CASES[case]
    fake = fake_cupy()
    c2i, i2c = cuda_conv.make_col2im(fake), cuda_conv.make_im2col(fake)
    from_grid, to_grid = cuda_conv.make_grid_kernels(fake)
    seen = []

    def col2im(cols, geo, n, c, crop=None):
        seen.append(("col2im", cols.dtype.name))
        return c2i(cols, geo, n, c, crop=crop)

    def im2col(x, pads, geo, groups):
        seen.append(("im2col", x.dtype.name))
        return i2c(x, pads, geo, groups)

    def from_grid_seen(res, geo, n, bias, dtype):
        seen.append(("from_grid", res.dtype.name))
        return from_grid(res, geo, n, bias, dtype)
    bias_sum = cuda_conv.make_channel_sum(row_mod.Rows(fake))

    def channel_sum(g):
        seen.append(("channel_sum", g.dtype.name))
        return bias_sum(g)
    ops = shared_conv._ops(np, col2im, im2col, _cublas_half_matmul, frozenset({half}),
                           from_grid_seen, to_grid, channel_sum)
    ref = shared_conv._ops(np)
    rng = np.random.default_rng(10 + case)
    x, w, b = (rng.standard_normal(s).astype(half) for s in (xs, ws, ws[:1]))
    y = ops["conv"](x, w, b, stride, pad, dil, groups)
    g = rng.standard_normal(y.shape).astype(half)
    params = {"needs": (True, True, True), "stride": stride, "padding": pad, "dilation": dil,
              "groups": groups}
    got = (y,) + tuple(ops["conv_backward"]([g], [x, w, b], [y], params))
    assert all(a.dtype == half for a in got)
    # col2im sums the unrounded float32 products of the input gradient, the bias is added to
    # the unrounded float32 product of the forward, and its gradient is summed from the half
    # output gradient (in float32, by the row kernel)
    assert set(seen) == {("im2col", dtype), ("col2im", "float32"), ("from_grid", "float32"),
                         ("channel_sum", dtype)}
    tx, tw, tb = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b))
    flat_pad = [p for lo_hi in reversed(pad) for p in lo_hi]
    conv = {1: tF.conv1d, 2: tF.conv2d, 3: tF.conv3d}[len(xs) - 2]
    ty = conv(tF.pad(tx, flat_pad), tw, tb, stride, 0, dil, groups)
    ty.backward(torch.tensor(g.astype(np.float64)))
    for a, t in zip(got, (ty, tx.grad, tw.grad, tb.grad)):
        t = t.detach().numpy()
        np.testing.assert_allclose(a.astype(np.float64), t, rtol=tol, atol=tol * np.abs(t).max())
    wt = rng.standard_normal((ws[0], ws[1]) + ws[2:]).astype(half)
    args = (g, wt, None, stride, tuple(lo for lo, _ in pad), xs[2:], dil, groups)
    yt = ops["conv_transpose"](*args)
    et = ref["conv_transpose"](*((g.astype(np.float64), wt.astype(np.float64)) + args[2:]))
    assert yt.dtype == half
    np.testing.assert_allclose(yt.astype(np.float64), et, rtol=tol, atol=tol * np.abs(et).max())


def test_native_col2im_against_a_direct_sum():
    """Independent of the shared code: the gathered image equals a direct NumPy scatter of
    every column entry onto the position it came from (float64)."""
    from polyten_cpu.kernels.conv import _Geometry
    from polyten_cuda import conv as cuda_conv
    P, k, stride, dil = (7, 9), (2, 3), (2, 1), (2, 2)
    O = tuple((p - d * (kk - 1) - 1) // s + 1 for p, kk, s, d in zip(P, k, stride, dil))
    geo = _Geometry(P, O, k, stride, dil)
    assert geo.ostr is None  # strided: the exact layout
    n, c, K, L = 2, 3, 6, O[0] * O[1]
    cols = np.random.default_rng(0).standard_normal((1, c * K, n * L))
    got = cuda_conv.make_col2im(fake_cupy())(cols, geo, n, c)
    want = np.zeros((n, c) + P)
    parts = cols.reshape(c, k[0], k[1], n, O[0], O[1])
    for i0 in range(k[0]):
        for i1 in range(k[1]):
            for o0 in range(O[0]):
                for o1 in range(O[1]):
                    want[:, :, o0 * stride[0] + i0 * dil[0], o1 * stride[1] + i1 * dil[1]] += \
                        parts[:, i0, i1, :, o0, o1].T
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_native_im2col_against_a_direct_gather():
    """Independent of the shared code: every column entry is the input element it stands for,
    or 0 in the padding (float64, strided and dilated, asymmetric padding)."""
    from polyten_cpu.kernels.conv import _Geometry
    from polyten_cuda import conv as cuda_conv
    S, k, stride, dil, pads = (5, 6), (2, 3), (2, 1), (2, 2), ((1, 2), (0, 3))
    P = tuple(s + lo + hi for s, (lo, hi) in zip(S, pads))
    O = tuple((p - d * (kk - 1) - 1) // st + 1 for p, kk, st, d in zip(P, k, stride, dil))
    geo = _Geometry(P, O, k, stride, dil)
    n, c = 2, 3
    x = np.random.default_rng(1).standard_normal((n, c) + S)
    cols = cuda_conv.make_im2col(fake_cupy())(x, pads, geo, 1)
    got = cols.reshape(c, k[0], k[1], n, O[0], O[1])
    xp_ = np.pad(x, ((0, 0), (0, 0)) + pads)
    for i0 in range(k[0]):
        for i1 in range(k[1]):
            for o0 in range(O[0]):
                for o1 in range(O[1]):
                    want = xp_[:, :, o0 * stride[0] + i0 * dil[0], o1 * stride[1] + i1 * dil[1]]
                    np.testing.assert_array_equal(got[:, i0, i1, :, o0, o1], want.T)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the conv sources "
                    "are only compiled for the host")
def test_conv_sources_compile_with_nvcc(tmp_path):
    from polyten_cuda import conv as cuda_conv
    parts = []
    for which in ("col2im", "im2col", "from_grid", "to_grid"):
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            for index in ("int64", "int32"):
                parts.append(cuda_conv.source(dtype, which, index))
    _nvcc_compiles(tmp_path, parts)


# --- the norm of many tensors together (clip_grad_norm_) -------------------------------------
@pytest.mark.parametrize("total", ["row-kernel", "cupy"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_multi_tensor_norm_against_numpy(dtype, total, monkeypatch, simt_order):
    """The 2-norm and inf-norm of 70 arrays together (two partial launches, the blocks capped
    at 2 per tensor so the grid-stride loop runs several rounds) against NumPy in float64;
    float16 and bfloat16 summed in float32 and rounded once (within half an ulp of the dtype,
    plus float32's error); an inf or NaN anywhere propagates as in PyTorch; views, mixed
    dtypes, other norms: None.  The partials' total is one row-kernel launch (``Rows``, as
    the backend builds it) or CuPy's reduction."""
    monkeypatch.setattr(multi_tensor, "_NORM_BLOCKS_X", 2)
    cp, raw = _counting_cupy()
    norm = multi_tensor.MultiTensorNorm(cp, row_mod.Rows(cp) if total == "row-kernel" else None)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(int(n)).astype(dtype) for n in rng.integers(0, 1500, 70)]
    flat = np.concatenate([a.astype(np.float64) for a in arrays])
    eps = float(np.finfo(np.dtype(dtype)).eps)
    tol = {"float64": 1e-13, "float32": 1e-5}.get(dtype, eps / 2 + 1e-5)
    got = norm(arrays, 2.0)
    assert got.dtype == np.dtype(dtype) and got.shape == ()
    assert raw[:2] == [f"polyten_mt_norm_l2_{dtype}_64", f"polyten_mt_norm_l2_{dtype}_8"]
    assert raw[2:] == ([f"polyten_row_norm_total_l2_{dtype}_block"]
                       if total == "row-kernel" else [])
    np.testing.assert_allclose(float(got), np.sqrt(np.sum(flat ** 2)), rtol=tol)
    assert float(norm(arrays, float("inf"))) == np.abs(flat).max()
    arrays[5][0] = -np.inf
    assert float(norm(arrays, 2.0)) == np.inf and float(norm(arrays, float("inf"))) == np.inf
    arrays[40][-1] = np.nan
    assert np.isnan(float(norm(arrays, 2.0))) and np.isnan(float(norm(arrays, float("inf"))))
    assert norm(arrays, 1.0) is None and norm([], 2.0) is None
    assert norm([np.ones((3, 4), dtype)[:, ::2]], 2.0) is None
    assert norm([np.ones(3, dtype), np.ones(3, "float64" if dtype != "float64" else
                                            "float32")], 2.0) is None
    assert float(norm([np.zeros(0, dtype)], 2.0)) == 0.0
    assert norm([np.zeros(0, dtype), np.ones(2, dtype)], float("inf")) is None


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the norm sources "
                    "are only compiled for the host")
def test_norm_sources_compile_with_nvcc(tmp_path):
    parts = []
    for mode in ("l2", "inf"):
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            for slots in (1, 64):
                parts.append(multi_tensor.norm_source(mode, dtype, slots))
    _nvcc_compiles(tmp_path, parts)


# --- the stand-in's threads as fibers (kernels that synchronise) -----------------------------
_BLOCK_SUM = r"""
extern "C" __global__ void block_sum(const double* x, double* out, long long n) {
  __shared__ double part[32];
  double v = 0;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) v += x[blockIdx.x * n + i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    double w = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_down_sync(0xffffffffu, w, o);
    if (threadIdx.x == 0) out[blockIdx.x] = w;
  }
}
"""


@pytest.fixture(params=[False, True], ids=["thread-order", "reverse-order"])
def simt_order(request, monkeypatch):
    """Runs a test under both fiber schedules of the stand-in."""
    import cupy_standin
    monkeypatch.setattr(cupy_standin, "SIMT_REVERSE", request.param)
    return request.param


def test_stand_in_runs_shuffles_shared_memory_and_barriers(simt_order):
    """A block reduction (warp butterflies, shared memory, ``__syncthreads``, a shuffle-down
    in warp 0 only) gives NumPy's sums: the fibers meet at every barrier."""
    x = np.random.default_rng(0).standard_normal((5, 1000))
    out = np.zeros(5)
    RawKernel(_BLOCK_SUM, "block_sum")((5,), (256,), (x, out, 1000))
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-12)


def test_stand_in_reports_divergent_shuffles_and_partial_warps():
    """What hangs or is undefined on a GPU fails here with the reason: a shuffle that half
    the warp skips, and a shuffle over a warp of fewer than 32 threads."""
    divergent = ('extern "C" __global__ void k(double* x) {\n'
                 "  if (threadIdx.x < 16) x[threadIdx.x] = "
                 "__shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);\n}\n")
    with pytest.raises(StandinError, match="not every thread of its warp"):
        RawKernel(divergent, "k")((1,), (32,), (np.zeros(32),))
    partial = ('extern "C" __global__ void k(double* x) {\n'
               "  x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);\n}\n")
    with pytest.raises(StandinError, match="partial warp"):
        RawKernel(partial, "k")((1,), (16,), (np.zeros(16),))


def test_stand_in_runs_a_kernel_correctly_after_its_failed_launch(simt_order):
    """The fibers a failed launch left mid-kernel (a thread that returned before a barrier)
    are not resumed by the next launch: it starts every thread afresh.  Its blocks of
    different sizes than the failed one's, and more than one block, read their own shared
    memory."""
    src = ('extern "C" __global__ void k(int flag, float* out) {\n'
           "  __shared__ float s[64];\n"
           "  const int t = threadIdx.x;\n"
           "  s[t] = (float)(t + 100 * blockIdx.x);\n"
           "  if (flag && t == 3) return;\n"
           "  __syncthreads();\n"
           "  out[blockIdx.x * blockDim.x + t] = s[blockDim.x - 1 - t];\n}\n")
    kernel = RawKernel(src, "k")
    with pytest.raises(StandinError, match="not every thread"):
        kernel((2,), (64,), (np.int32(1), np.zeros(128, np.float32)))
    for threads in (64, 32, 64):
        out = np.zeros(3 * threads, np.float32)
        kernel((3,), (threads,), (np.int32(0), out))
        want = [100 * b + threads - 1 - t for b in range(3) for t in range(threads)]
        np.testing.assert_array_equal(out, np.array(want, np.float32))


def test_stand_in_shared_memory_is_garbage_at_every_block_start(simt_order):
    """Each block starts with its ``__shared__`` arrays poisoned (0xff bytes: NaN, -1), as a
    GPU's shared memory is garbage then: a read before the block's own write shows, in every
    block and every launch, instead of finding what an earlier block or launch left.  The
    block's own writes persist across the calls of a device function that declares them."""
    src = ('__device__ double keep(int i, double v) {\n'
           "  __shared__ double s[32];\n"
           "  const double before = s[i];\n"
           "  s[i] = v;\n"
           "  return before;\n}\n"
           'extern "C" __global__ void k(double* first, double* second, int* flag) {\n'
           "  __shared__ int f[1];\n"
           "  const int t = blockIdx.x * 32 + threadIdx.x;\n"
           "  if (threadIdx.x == 0) flag[blockIdx.x] = f[0];\n"
           "  __syncthreads();\n"
           "  if (threadIdx.x == 0) f[0] = 7;\n"
           "  first[t] = keep(threadIdx.x, t + 1.0);\n"
           "  second[t] = keep(threadIdx.x, 0.0);\n}\n")
    kernel = RawKernel(src, "k")
    for _ in range(2):  # a second launch finds garbage again, not the first one's values
        first, second, flag = np.zeros(96), np.zeros(96), np.zeros(3, dtype=np.int32)
        kernel((3,), (32,), (first, second, flag))
        assert np.isnan(first).all()  # read before this block wrote
        np.testing.assert_array_equal(second, np.arange(1.0, 97.0))  # this block's writes
        np.testing.assert_array_equal(flag, -1)


def test_stand_in_catches_a_missing_barrier_in_one_of_the_orders(monkeypatch):
    """Thread t reads what thread 63 - t wrote, with no ``__syncthreads`` between: a race.
    Run in thread order, half of the reads come before the writes."""
    race = ('extern "C" __global__ void k(double* x) {\n'
            "  __shared__ double s[64];\n"
            "  s[threadIdx.x] = threadIdx.x + 1;\n"
            "  x[threadIdx.x] = s[63 - threadIdx.x];\n}\n")
    fenced = race.replace("  x[threadIdx.x]", "  __syncthreads();\n  x[threadIdx.x]")
    want = np.arange(64, 0, -1.0)
    import cupy_standin
    y = np.zeros(64)
    RawKernel(race, "k")((1,), (64,), (y,))
    # the first half read before thread 63 - t wrote: the block's garbage (NaN), not the
    # previous launch's values
    assert np.isnan(y[:32]).all() and np.array_equal(y[32:], want[32:])
    for order in (False, True):
        monkeypatch.setattr(cupy_standin, "SIMT_REVERSE", order)
        y = np.zeros(64)
        RawKernel(fenced, "k")((1,), (64,), (y,))
        np.testing.assert_array_equal(y, want)


# --- row kernels: one warp per row (polyten_cuda.rows) ---------------------------------------
from polyten_cuda import rows as row_mod  # noqa: E402

_ROW_SHAPES = [(1, 1), (3, 5), (9, 32), (4, 33), (6, 100), (2, 1024), (3, 1025), (2, 5000)]
_ROW_TOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-13}


def _row_kernels():
    cp, raw = _counting_cupy()
    return row_mod.Rows(cp), raw


def _softmax64(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _close(got, want, dtype):
    assert got.dtype == np.dtype(dtype)
    tol = _ROW_TOL[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def _check_softmax_family(rk, shape, dtype):
    """softmax, log_softmax and both backward passes of random rows against float64 NumPy."""
    r = np.random.default_rng(sum(shape))
    x = (3 * r.standard_normal(shape)).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    p = _softmax64(x)
    _close(rk.softmax(x), p, dtype)
    logp = np.log(p)
    _close(rk.softmax(x, log=True), logp, dtype)
    y, ly = p.astype(dtype), logp.astype(dtype)
    y64, ly64, g64 = y.astype(np.float64), ly.astype(np.float64), g.astype(np.float64)
    _close(rk.softmax_backward(g, y), (g64 - (g64 * y64).sum(-1, keepdims=True)) * y64, dtype)
    _close(rk.softmax_backward(g, ly, log=True),
           g64 - np.exp(ly64) * g64.sum(-1, keepdims=True), dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", _ROW_SHAPES, ids=str)
def test_row_softmax_kernels_match_numpy_float64(shape, dtype, simt_order):
    """softmax, log_softmax and both backward passes against float64 NumPy, one launch each,
    for rows shorter than, equal to and longer than a warp, row counts that leave warps of
    the last block idle, and rows past ROW_MAX (a block per row: 256 and 1024 threads)."""
    rk, raw = _row_kernels()
    _check_softmax_family(rk, shape, dtype)
    assert len(raw) == 4 and all(n.startswith("polyten_row_") for n in raw)
    assert all(n.endswith("_block") == (shape[1] > row_mod.ROW_MAX) for n in raw)


def test_row_softmax_propagates_nan_and_handles_infinities(simt_order):
    """A NaN anywhere in a row makes the row NaN (as NumPy's max); -inf gives exact zeros
    (and -inf in log_softmax); a row of -inf, or with +inf, is NaN, as in NumPy and
    PyTorch."""
    rk, _ = _row_kernels()
    x = np.zeros((4, 40), np.float32)
    x[0, 37] = np.nan
    x[1, :] = -np.inf
    x[2, ::2] = -np.inf
    x[3, 5] = np.inf
    y = rk.softmax(x)
    assert np.isnan(y[0]).all() and np.isnan(y[1]).all()
    np.testing.assert_array_equal(y[2, ::2], 0)
    np.testing.assert_allclose(y[2, 1::2], 1 / 20, rtol=1e-6)
    assert np.isnan(y[3]).all()  # inf - inf in the sum, as NumPy
    ly = rk.softmax(x, log=True)
    assert np.isneginf(ly[2, ::2]).all() and np.isnan(ly[0]).all()
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(_softmax64(x)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("affine", ["none", "w", "w_b", "b"])
@pytest.mark.parametrize("shape", [(3, 5), (5, 64), (70, 40), (2, 1000), (2, 3000)],
                         ids=str)
def test_row_layer_norm_matches_numpy_float64(shape, affine, dtype, simt_order):
    """layer_norm's output, per-row mean and biased variance, its input gradient (with and
    without a weight) and its weight and bias gradients (column tiles of 32, a partial last
    one, rows past the block's 32 strides) against float64 NumPy: one launch each."""
    rk, raw = _row_kernels()
    r = np.random.default_rng(shape[1])
    x = (2 + 3 * r.standard_normal(shape)).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    w = r.uniform(0.5, 1.5, shape[1]).astype(dtype) if "w" in affine else None
    b = r.standard_normal(shape[1]).astype(dtype) if "b" in affine else None
    eps = 1e-5
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x64 - mu) * rstd
    want = xhat * (1 if w is None else w.astype(np.float64)) + (
        0 if b is None else b.astype(np.float64))
    y, mean, v = rk.layer_norm(x, w, b, eps)
    _close(y, want, dtype)
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype
    _close(mean, mu[:, 0], acc)
    _close(v, var[:, 0], acc)
    gh = g64 * (1 if w is None else w.astype(np.float64))
    d = shape[1]
    want_gx = (gh - gh.sum(-1, keepdims=True) / d
               - xhat * (gh * xhat).sum(-1, keepdims=True) / d) * rstd
    _close(rk.layer_norm_backward(g, x, mean, v, w, eps), want_gx, dtype)
    gw, gb = rk.layer_norm_param_grads(g, x, mean, v, eps)
    _close(gw, (g64 * xhat).sum(0), dtype)
    _close(gb, g64.sum(0), dtype)
    mode = "_block" if shape[1] > row_mod.ROW_MAX else ""
    assert raw == [
        f"polyten_row_layer_norm{'' if affine == 'none' else '_' + affine}_{dtype}{mode}",
        f"polyten_row_layer_norm_backward{'_w' if w is not None else ''}_{dtype}{mode}",
        f"polyten_layer_norm_param_grads_{dtype}"]


def test_rows_fit_last_dim_rows():
    """Other reductions keep the ReductionKernels: a dim other than the last, empty and
    integer arrays, 0-d.  A view is copied to C order first.  Block mode's thread count is a
    power of two from 64 to 1024."""
    rk, raw = _row_kernels()
    x = np.ones((4, 8), np.float32)
    assert rk.fits(x, 1) and rk.fits(x, -1) and rk.fits(np.ones((2, 100_000)))
    assert not rk.fits(x, 0)
    v = np.random.default_rng(0).standard_normal((40, 6)).T  # rows strided by 6
    assert rk.fits(v, 1)
    _close(rk.softmax(v), _softmax64(v), "float64")
    y = np.asfortranarray(_softmax64(v))  # not C order: the backward copies it too
    assert not y.flags.c_contiguous
    _close(rk.softmax_backward(v, y), (v - (v * y).sum(-1, keepdims=True)) * y, "float64")
    assert not rk.fits(np.ones((0, 8))) and not rk.fits(np.ones((4, 8), np.int64))
    assert not rk.fits(np.ones(()), 0)
    assert rk.affine_fits(x.dtype, 8, np.ones(8, np.float32), None)
    assert not rk.affine_fits(x.dtype, 8, np.ones(8, np.float64), None)
    assert not rk.affine_fits(x.dtype, 8, np.ones(16, np.float32)[::2])
    assert [row_mod.block_threads(d) for d in (1025, 2048, 2049, 5000, 10 ** 6)] == [
        256, 256, 512, 1024, 1024]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the generated CUDA "
                    "sources are only compiled for the host")
def test_row_kernel_sources_compile_with_nvcc(tmp_path):
    """Every row kernel, warp and block mode, for float16 (its PTX conversions), float32 and
    float64 compiles as device code (shuffles, shared memory and barriers included)."""
    dtypes = ("float16", "float32", "float64")
    _nvcc_compiles(tmp_path, [row_mod.source(op, dt, mode) for op in row_mod.KERNELS
                              for dt in dtypes for mode in ("warp", "block")]
                   + [row_mod.param_grads_source(dt) for dt in dtypes]
                   + [row_mod.column_sum_source(dt) for dt in dtypes]
                   + [row_mod.column_finish_source(dt) for dt in dtypes])


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the generated CUDA "
                    "sources are only compiled for the host")
def test_kernels_of_1024_thread_blocks_fit_64_registers_without_spilling(tmp_path):
    """A block of 1024 threads gets at most 64 registers a thread (65536 per SM), or its
    launch fails ("too many resources requested"): every block-mode row kernel and both
    column kernels, for sm_90, as ptxas allocates them with no bound in the source (as they
    are built unless the driver says otherwise, see the test below), within 64 and without
    spilling to local memory (``__launch_bounds__(1024)`` held 38 of them to 32 registers
    and 20 of those spilled)."""
    import re
    dtypes = ("float16", "bfloat16", "float32", "float64")
    sources = ([row_mod.source(op, dt, "block") for op in row_mod.KERNELS for dt in dtypes]
               + [row_mod.param_grads_source(dt) for dt in dtypes]
               + [row_mod.column_sum_source(dt) for dt in dtypes])
    printed = compile_only(tmp_path, [f"namespace {name} {{\n{code}\n}}\n".replace(
        'extern "C" ', "") for name, code in sources], arch="sm_90", stem="bounds",
        flags=("--resource-usage",))
    used = {}
    for entry, spills, regs in re.findall(
            r"Function properties for (\S+)\s+\d+ bytes stack frame, (\d+) bytes spill stores"
            r"[\s\S]*?Used (\d+) registers", printed):
        used[entry] = (int(spills), int(regs))
    for name, _ in sources:
        mine = [r for entry, r in used.items() if name in entry]
        assert len(mine) == 1, (name, sorted(used)[:5])
        spills, regs = mine[0]
        assert regs <= 64 and spills == 0, (name, regs, spills)


def test_kernels_whose_block_cannot_launch_are_rebuilt_with_launch_bounds(monkeypatch):
    """A compiler may give a kernel more than 64 registers a thread, and then a block of
    1024 threads fails to launch (the stand-in refuses it as CUDA does).  The row and column
    kernels ask the driver (``max_threads_per_block``) and rebuild such a kernel with
    ``__launch_bounds__``: a block-mode softmax and a column sum still match float64 NumPy,
    and a kernel that fits is left as compiled."""
    monkeypatch.setattr(RawKernel, "REGISTERS", {"polyten_row_softmax_float32_block": 72,
                                                 "polyten_column_sum_float32": 80})
    cp, _ = _counting_cupy()
    built = {}

    class Recording(cp.RawKernel):
        def __init__(self, code, name, **kw):
            super().__init__(code, name, **kw)
            built.setdefault(name, []).append(code)

    cp.RawKernel = Recording
    rk = row_mod.Rows(cp)
    r = np.random.default_rng(0)
    x = r.standard_normal((3, 5000)).astype(np.float32)  # block mode, 1024 threads
    _close(rk.softmax(x), _softmax64(x), "float32")
    g = r.standard_normal((100, 70)).astype(np.float32)
    _close(rk.column_sum(g), g.astype(np.float64).sum(axis=0), "float32")
    y = rk.softmax(x, log=True)  # fits: compiled once, as it is
    _close(y, np.log(_softmax64(x)), "float32")
    for name in ("polyten_row_softmax_float32_block", "polyten_column_sum_float32"):
        assert len(built[name]) == 2 and "__launch_bounds__" not in built[name][0]
        assert "__launch_bounds__(1024) " + name in built[name][1]
    assert [("__launch_bounds__" in c) for c in built["polyten_row_log_softmax_float32_block"]
            ] == [False]
    with pytest.raises(StandinError, match="too many resources"):
        Recording(built["polyten_column_sum_float32"][0], "polyten_column_sum_float32")(
            (1,), (32, 32), (g, g, g, np.int64(100), np.int64(100), np.int64(70)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(7, 10), (5, 100), (3, 1500)], ids=str)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_row_cross_entropy_and_loss_total_match_numpy_float64(shape, weighted, dtype,
                                                              simt_order):
    """The cross-entropy row kernel (log-probabilities, per-row weighted loss and target
    weight; an ignored target weighs 0, an out-of-range one gives NaN) and the one-launch
    'mean' / 'sum' of the per-row losses against float64 NumPy."""
    rk, raw = _row_kernels()
    m, c = shape
    r = np.random.default_rng(c)
    x = (2 * r.standard_normal(shape)).astype(dtype)
    t = r.integers(0, c, m).astype(np.int64)
    t[1] = -100  # ignored
    w = r.uniform(0.5, 2.0, c).astype(dtype) if weighted else None
    logp, loss, wt = rk.cross_entropy(x, t, w, -100)
    want = np.log(_softmax64(x))
    _close(logp, want, dtype)
    w64 = np.ones(c) if w is None else w.astype(np.float64)
    valid = t != -100
    want_wt = np.where(valid, w64[np.where(valid, t, 0)], 0.0)
    # picked from the stored (rounded) log-probabilities, as nll_loss over log_softmax
    stored = want.astype(dtype).astype(np.float64)
    want_loss = -stored[np.arange(m), np.where(valid, t, 0)] * want_wt
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype
    _close(wt, want_wt, acc)
    _close(loss, want_loss, acc)
    mean = rk.loss_total(loss, wt, True, np.dtype(dtype))
    assert mean.shape == () and mean.dtype == np.dtype(dtype)
    _close(mean, want_loss.sum() / want_wt.sum(), dtype)
    _close(rk.loss_total(loss, wt, False, np.dtype(dtype)), want_loss.sum(), dtype)
    assert len(raw) == 3
    t[0] = c  # out of range (the core's deferred check reports it): NaN, no read outside
    _, loss, _ = rk.cross_entropy(x, t, w, -100)
    assert np.isnan(loss[0]) and not np.isnan(loss[2:]).any()


def test_row_loss_total_of_all_ignored_targets_is_nan():
    """'mean' over targets that are all ignored is 0 / 0: NaN, as PyTorch, on the device."""
    rk, _ = _row_kernels()
    x = np.zeros((4, 80), np.float32)
    _, loss, wt = rk.cross_entropy(x, np.full(4, -1, np.int64), None, -1)
    assert np.isnan(rk.loss_total(loss, wt, True, np.dtype("float32")))
    assert rk.loss_total(loss, wt, False, np.dtype("float32")) == 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("affine", ["none", "w_b", "w"])
@pytest.mark.parametrize("shape", [(4, 3, 5), (6, 2, 1), (3, 2, 700), (5, 2, 7001)], ids=str)
def test_channel_batch_norm_kernels_match_numpy_float64(shape, affine, dtype, simt_order,
                                                        monkeypatch):
    """Training-mode batch_norm over (N, C, L) with per-channel statistics (a warp per
    channel, a block past 1024 elements, blocks per chunk of a channel for few channels of
    many elements -- chunk statistics merged by Chan's rule), and its backward -- input,
    weight and bias gradients in one launch, two for chunks -- against float64 NumPy."""
    # chunks from 2 * CHANNEL_CHUNK_MIN elements (not CHANNEL_SPLIT_MIN): a smaller array
    monkeypatch.setattr(row_mod, "CHANNEL_SPLIT_MIN", 2 * row_mod.CHANNEL_CHUNK_MIN)
    rk, raw = _row_kernels()
    n, c, length = shape
    r = np.random.default_rng(length)
    x = (1 + 2 * r.standard_normal(shape)).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    w = r.uniform(0.5, 1.5, c).astype(dtype) if "w" in affine else None
    b = r.standard_normal(c).astype(dtype) if "b" in affine else None
    eps = 1e-5
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mu = x64.mean(axis=(0, 2), keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=(0, 2), keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x64 - mu) * rstd
    w64 = np.ones((1, c, 1)) if w is None else w.astype(np.float64).reshape(1, c, 1)
    y, mean, v = rk.batch_norm(x, w, b, eps)
    _close(y, xhat * w64 + (0 if b is None else b.astype(np.float64).reshape(1, c, 1)), dtype)
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype
    _close(mean, mu.reshape(c), acc)
    _close(v, var.reshape(c), acc)
    gx, gw, gb = rk.batch_norm_backward(g, x, mean, v, w, eps)
    m = n * length
    want_gx = (g64 - g64.sum((0, 2), keepdims=True) / m
               - xhat * (g64 * xhat).sum((0, 2), keepdims=True) / m) * rstd * w64
    _close(gx, want_gx, dtype)
    _close(gw, (g64 * xhat).sum((0, 2)), dtype)
    _close(gb, g64.sum((0, 2)), dtype)
    mode = "_block" if m > row_mod.ROW_MAX else ""
    fwd, bwd = "_" + affine if affine != "none" else "", "_w" if w is not None else ""
    if row_mod.channel_chunks(c, m) == 1:
        assert raw == [f"polyten_row_batch_norm{fwd}_{dtype}{mode}",
                       f"polyten_row_batch_norm_backward{bwd}_{dtype}{mode}"]
    else:
        assert raw == [f"polyten_row_batch_norm_stats_part_{dtype}_block",
                       f"polyten_row_batch_norm_apply{fwd}_{dtype}_block",
                       f"polyten_row_batch_norm_backward_part_{dtype}_block",
                       f"polyten_row_batch_norm_backward_apply{bwd}_{dtype}_block"]


def _close_sum(got, g, axis):
    """``got`` is the sum of ``g`` over ``axis`` in g's dtype, within the dtype's error
    relative to the sum of the magnitudes (a sum's error scales with its terms, not its
    result)."""
    assert got.dtype == g.dtype
    g64 = g.astype(np.float64)
    bound = _ROW_TOL[g.dtype.name] * np.abs(g64).sum(axis)
    err = np.abs(got.astype(np.float64) - g64.sum(axis))
    assert (err <= bound).all(), (err.max(), bound[err.argmax()] if err.size else None)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 5), (6, 2, 1), (3, 2, 700), (2, 5, 0),
                                   (5, 2, 7001)], ids=str)
def test_channel_sum_matches_numpy_float64(shape, dtype, simt_order, monkeypatch):
    """A convolution's bias gradient: the sum of each channel of (N, C, L) -- a warp per
    channel, a block past 1024 elements, blocks per chunk of a channel and the chunks'
    sums added for few channels of many elements -- against float64 NumPy, in the input's
    dtype; empty channels sum to 0."""
    # chunks from 2 * CHANNEL_CHUNK_MIN elements (not CHANNEL_SPLIT_MIN): a smaller array
    monkeypatch.setattr(row_mod, "CHANNEL_SPLIT_MIN", 2 * row_mod.CHANNEL_CHUNK_MIN)
    rk, raw = _row_kernels()
    g = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)
    _close_sum(rk.channel_sum(g), g, (0, 2))
    mode = "_block" if shape[0] * shape[2] > row_mod.ROW_MAX else ""
    if row_mod.channel_chunks(shape[1], shape[0] * shape[2]) == 1:
        assert raw == [f"polyten_row_channel_sum_{dtype}{mode}"]
    else:
        assert raw == [f"polyten_row_channel_sum_part_{dtype}_block",
                       f"polyten_column_finish_{dtype}"]


def test_channel_chunks_fill_the_grid_without_empty_chunks():
    """One block per channel from SPLIT_BLOCKS channels on, or below CHANNEL_SPLIT_MIN
    elements; else chunks of at least CHANNEL_CHUNK_MIN until about SPLIT_BLOCKS blocks,
    none empty: the bench CNN's first bias gradient (64 channels of 256 * 32 * 32) gets 256
    blocks, its second (128 of 256 * 16 * 16) a block per channel."""
    chunks, low, split = row_mod.channel_chunks, row_mod.CHANNEL_CHUNK_MIN, \
        row_mod.CHANNEL_SPLIT_MIN
    assert chunks(row_mod.SPLIT_BLOCKS, 10 ** 7) == 1 and chunks(3, split - 1) == 1
    assert chunks(64, 256 * 1024) == 4 and chunks(128, 256 * 256) == 1
    assert chunks(1, split) == split // low
    for c in (1, 3, 64, 200):
        for d in (split, 350005, 10 ** 6 + 7):
            parts = chunks(c, d)
            chunk = -(-d // parts)
            assert (parts - 1) * chunk < d <= parts * chunk and chunk >= low, (c, d)
            assert c * parts <= row_mod.SPLIT_BLOCKS + c, (c, d)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (33, 32), (70, 40), (300, 65), (4, 0),
                                   (0, 3)], ids=str)
def test_column_sum_matches_numpy_float64(shape, dtype, simt_order):
    """A linear layer's bias gradient: the sum of each column of (m, d) -- column tiles of
    32 with a partial last one, rows past the block's 32 strides, no rows -- against float64
    NumPy, in the input's dtype, one launch."""
    rk, raw = _row_kernels()
    g = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)
    _close_sum(rk.column_sum(g), g, 0)
    assert raw == ([f"polyten_column_sum_{dtype}"] if shape[1] else [])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_sums_accumulate_in_float32_and_round_once(dtype):
    """float16 / bfloat16 are summed in float32 and rounded once, as PyTorch: 4096 ones sum
    to 4096 (a float16 accumulator stops at 2048, a bfloat16 one at 256), and 0.1 added 3000
    times is float32's 300.0 rounded once."""
    rk, _ = _row_kernels()
    ones = np.ones((4096, 3), dtype)
    np.testing.assert_array_equal(rk.column_sum(ones).astype(np.float64), 4096.0)
    np.testing.assert_array_equal(
        rk.channel_sum(ones.T.reshape(1, 3, 4096).copy()).astype(np.float64), 4096.0)
    tenth = np.full((3000, 2), 0.1, dtype)
    want = np.float32(np.float32(tenth[0, 0]) * 3000).astype(dtype)
    got = rk.column_sum(tenth)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got.astype(np.float64), float(want),
                               rtol=_ROW_TOL[dtype] / 2)


def test_column_chunks_fill_the_grid_without_empty_chunks():
    """Up to COLUMN_SUM_ROWS rows, or SPLIT_BLOCKS column blocks and more: one chunk (one
    launch).  Past that, chunks of at least CHUNK_MIN rows until the grid has about
    SPLIT_BLOCKS blocks, none of them empty."""
    chunks, R = row_mod.column_chunks, row_mod.COLUMN_SUM_ROWS
    assert chunks(R, 8) == 1 and chunks(10 ** 6, 32 * row_mod.SPLIT_BLOCKS) == 1
    assert chunks(16384, 256) == 32  # 8 column blocks: 32 chunks of 512 rows
    assert chunks(16384, 768) == 11  # 24 column blocks: 264 blocks
    assert chunks(R + 1, 8) == (R + 1) // row_mod.CHUNK_MIN  # too few rows for more
    for m in (R + 1, 9000, 12345, 65537, 10 ** 6 + 3):
        for d in (1, 40, 768, 4000):
            parts = chunks(m, d)
            chunk = -(-m // parts)
            assert (parts - 1) * chunk < m <= parts * chunk, (m, d)
            assert parts == 1 or chunk >= row_mod.CHUNK_MIN, (m, d)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_tall_column_sums_add_their_row_chunks(dtype, simt_order):
    """Past COLUMN_SUM_ROWS rows the column kernels cut the rows into chunks (grid y) and a
    second launch adds the chunks' sums in order, rounded once: a linear layer's bias
    gradient and layer_norm's weight and bias gradients against float64 NumPy; half dtypes
    accumulate in float32 across the chunks (ones sum to the row count exactly)."""
    rk, raw = _row_kernels()
    m, d = row_mod.COLUMN_SUM_ROWS + 1500, 37
    assert row_mod.column_chunks(m, d) > 1
    g = np.random.default_rng(3).standard_normal((m, d)).astype(dtype)
    _close_sum(rk.column_sum(g), g, 0)
    ones = np.ones((m, 3), dtype)
    np.testing.assert_array_equal(rk.column_sum(ones).astype(np.float64), float(
        np.float32(m).astype(dtype)))
    assert raw == [f"polyten_column_sum_{dtype}", f"polyten_column_finish_{dtype}"] * 2
    raw.clear()
    x = np.random.default_rng(4).standard_normal((m, d)).astype(dtype)
    eps = 1e-5
    _, mean, v = rk.layer_norm(x, None, None, eps)
    raw.clear()
    gw, gb = rk.layer_norm_param_grads(g, x, mean, v, eps)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    xhat = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(-1, keepdims=True) + eps)
    _close_sum(gb, g, 0)
    terms = g64 * xhat
    err = np.abs(gw.astype(np.float64) - terms.sum(0))
    assert gw.dtype == x.dtype and (err <= _ROW_TOL[dtype] * np.abs(terms).sum(0)).all()
    assert raw == [f"polyten_layer_norm_param_grads_{dtype}", f"polyten_column_finish_{dtype}"]


def test_prelude_bfloat16_rounds_as_ml_dtypes():
    """The RawKernel prelude's bfloat16 (integer rounding, any architecture) converts float32
    as ml_dtypes does -- nearest even on ties, overflow to inf, subnormals, signed zeros, NaN
    kept NaN -- and back exactly."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    code = (multi_tensor.PRELUDE +
            'extern "C" __global__ void k(const float* x, bfloat16* y, float* back, '
            "long long n) {\n"
            "  for (long long i = threadIdx.x; i < n; i += blockDim.x) {\n"
            "    y[i] = bfloat16(x[i]);\n"
            "    back[i] = (float)y[i];\n  }\n}\n")
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2 ** 32, 20000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2 ** 16, 2000, dtype=np.uint64).astype(np.uint32) << 16) | 0x8000
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4e38, -3.4e38, 1e-40, -1e-45,
                        1.0, 1.00390625, 1.005859375], dtype=np.float32)
    x = np.concatenate([bits.view(np.float32), ties.view(np.float32), special])
    y = np.empty(x.size, dtype=ml_dtypes.bfloat16)
    back = np.empty(x.size, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(ml_dtypes.bfloat16)
    RawKernel(code, "k")((1,), (256,), (x, y, back, np.int64(x.size)))
    nan = np.isnan(want.astype(np.float32))
    assert np.array_equal(np.isnan(y.astype(np.float32)), nan)
    assert np.array_equal(y.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    assert np.array_equal(back[~nan], want.astype(np.float32)[~nan])


# --- scatter_add in source order (polyten.use_deterministic_algorithms) ----------------------
def _det_scatter_add(cp):
    from polyten_cuda import deterministic
    atomic_calls = []

    def atomic(*args):
        atomic_calls.append(args)
        return "atomic"
    return deterministic.make(cp, multi_tensor.dtype_names(cp, multi_tensor.C_TYPES),
                              atomic), atomic_calls


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "complex64"])
def test_ordered_scatter_add_is_numpys_sequential_sum_bit_for_bit(dtype):
    """The sorted, one-thread-per-position sum gives ``numpy.add.at``'s result exactly (the
    same order, each step rounded to the dtype): many repeats per position, every dim of a
    3-D tensor, a source larger than the index, a scalar source, indices out of range
    (wrapped, as CuPy's scatters wrap them).  One RawKernel launch per call (complex: on
    its (real, imaginary) float pairs)."""
    from cupy_standin import _bf16
    cp, raw = _counting_cupy()
    scatter_add, atomic_calls = _det_scatter_add(cp)
    np_dt = _bf16() if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(5)

    def draw(shape):
        a = rng.standard_normal(shape) * 3
        if dtype.startswith("complex"):
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(np_dt)

    x = draw((4, 5, 6))
    for dim in range(3):
        shape = [4, 5, 6]
        shape[dim] = 40  # 40 source elements onto 4-6 positions: long runs
        index = rng.integers(-8, 8, size=shape)
        index[..., :1] = 100  # out of range: wrapped
        src = draw([s + 1 for s in shape])  # larger than the index: its leading part counts
        grid = [np.arange(n).reshape([-1 if d == i else 1 for i in range(3)])
                for d, n in enumerate(shape)]
        grid[dim] = np.remainder(index, x.shape[dim])
        want = x.copy()
        np.add.at(want, tuple(grid), src[tuple(slice(0, s) for s in shape)])
        raw.clear()
        got = cp.asnumpy(scatter_add(cp.asarray(x), dim, cp.asarray(index), cp.asarray(src)))
        assert got.dtype == x.dtype and np.array_equal(got.view(np.uint8), want.view(np.uint8))
        name = f"polyten_scatter_add_{'float32' if dtype == 'complex64' else dtype}"
        assert raw == [name]
        got = cp.asnumpy(scatter_add(cp.asarray(x), dim, cp.asarray(index), 1.5))
        want = x.copy()
        np.add.at(want, tuple(grid), np.full(shape, 1.5, dtype=np_dt))
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    assert not atomic_calls


def test_ordered_scatter_add_leaves_exact_sums_to_the_atomic_kernel():
    cp, raw = _counting_cupy()
    scatter_add, atomic_calls = _det_scatter_add(cp)
    index = cp.asarray(np.array([0, 1, 1]))
    assert scatter_add(cp.zeros(3, dtype="int64"), 0, index, cp.ones(3, dtype="int64")) == \
        "atomic"  # integer sums do not depend on the order
    assert scatter_add(cp.zeros((), dtype="float32"), 0, index, 1.0) == "atomic"  # 0-d
    assert len(atomic_calls) == 2 and not raw
    empty = scatter_add(cp.ones(3, dtype="float32"), 0, cp.asarray(np.zeros(0, np.int64)),
                        cp.ones(0, dtype="float32"))
    assert cp.asnumpy(empty).tolist() == [1, 1, 1] and not raw


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the scatter-add "
                    "source is only compiled for the host")
def test_ordered_scatter_add_sources_compile_with_nvcc(tmp_path):
    from polyten_cuda import deterministic
    _nvcc_compiles(tmp_path, [deterministic.source(dt) for dt in multi_tensor.C_TYPES])


@pytest.mark.parametrize("dtype", ["bool", "int8", "float16", "int32", "float64", "complex128"])
def test_ordered_writes_let_the_last_repeat_win_as_numpy(dtype):
    """``scatter`` and ``x[key] = value`` with repeated positions: the last write in source
    order wins (NumPy's and the cpu backend's result), in any dtype (moved as raw bytes of
    its size): integer keys mixed with slices, a transposed target, scalar and broadcast
    values.  One RawKernel launch per write; what cannot repeat a position goes to the
    backend's own kernels."""
    cp, raw = _counting_cupy()
    from polyten_cuda import deterministic
    fallback = []

    def own(name):
        def kernel(*args):
            fallback.append(name)
            return "own"
        return kernel
    scatter, setitem = deterministic.make_writes(cp, own("scatter"), own("setitem"))
    rng = np.random.default_rng(9)
    size = np.dtype(dtype).itemsize

    def draw(shape):
        a = rng.standard_normal(shape) * 50
        if dtype == "complex128":
            a = a + 1j * rng.standard_normal(shape)
        return (a > 0) if dtype == "bool" else a.astype(dtype)

    x = draw((6, 7))
    idx = rng.integers(0, 6, size=20)  # 20 writes onto 6 rows
    for key, value in (((idx,), draw((20, 7))), ((idx, slice(1, 5)), draw((20, 4))),
                       ((slice(None), idx % 7), draw((6, 20))), ((idx, idx % 7), draw(20)),
                       ((idx,), draw(7)), ((idx,), draw(()).item())):
        want = x.copy()
        want[key] = value
        got = cp.asarray(x.copy())
        raw.clear()
        setitem(got, key, value if np.ndim(value) == 0 and not isinstance(value, np.ndarray)
                else cp.asarray(value))
        assert np.array_equal(cp.asnumpy(got), want), key
        assert raw == [f"polyten_scatter_set_{size}"]
    xt = cp.asarray(x.copy()).T  # a transposed view: written through
    want = x.T.copy()
    value = draw((7, 20))
    want[:, idx] = value
    setitem(xt, (slice(None), idx), cp.asarray(value))
    assert np.array_equal(cp.asnumpy(xt), want)
    index = rng.integers(0, 6, size=(15, 7))
    src = draw((16, 7))
    want = x.copy()
    np.put_along_axis(want, index, src[:15], 0)
    assert np.array_equal(cp.asnumpy(scatter(cp.asarray(x), 0, cp.asarray(index),
                                             cp.asarray(src))), want)
    assert not fallback
    assert setitem(cp.asarray(x), (slice(1, 3),), cp.asarray(draw(7))) == "own"
    assert setitem(cp.asarray(x), (cp.asarray(np.array([2])),), cp.asarray(draw(7))) == "own"
    assert setitem(cp.broadcast_to(cp.asarray(x[:1]), (6, 7)), (idx,), cp.asarray(draw(7))) \
        == "own"  # a broadcast view: the backend's own kernel raises its error
    assert fallback == ["setitem"] * 3


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the scatter-write "
                    "sources are only compiled for the host")
def test_ordered_write_sources_compile_with_nvcc(tmp_path):
    from polyten_cuda import deterministic
    _nvcc_compiles(tmp_path, [deterministic.set_source(n) for n in (1, 2, 4, 8, 16)])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 20000), (3, 16385), (2, 40000)], ids=str)
def test_row_softmax_of_few_long_rows_by_chunks_matches_numpy_float64(shape, dtype, simt_order,
                                                                     monkeypatch):
    """A few long rows: a block per chunk of a row, the chunks' max and sum of exponentials
    (the backward's sums) merged in chunk order by the second launch -- softmax, log_softmax
    and both backward passes against float64 NumPy, two launches each."""
    # chunks from 2 * CHANNEL_CHUNK_MIN elements (not ROW_SPLIT_MIN): a smaller array
    monkeypatch.setattr(row_mod, "ROW_SPLIT_MIN", 2 * row_mod.CHANNEL_CHUNK_MIN)
    assert row_mod.row_chunks(*shape) > 1
    rk, raw = _row_kernels()
    _check_softmax_family(rk, shape, dtype)
    assert raw == [f"polyten_row_{op}_{dtype}_block" for op in (
        "softmax_part", "softmax_apply", "softmax_part", "log_softmax_apply",
        "softmax_backward_part", "softmax_backward_apply", "log_softmax_backward_part",
        "log_softmax_backward_apply")]


def test_row_softmax_by_chunks_keeps_nan_and_infinities_of_one_block(simt_order, monkeypatch):
    """The chunked merge gives the one-block kernel's special values: a chunk of -inf alone
    adds nothing, a row of -inf or with +inf or NaN is NaN."""
    monkeypatch.setattr(row_mod, "ROW_SPLIT_MIN", 2 * row_mod.CHANNEL_CHUNK_MIN)
    rk, raw = _row_kernels()
    d = 3 * row_mod.CHANNEL_CHUNK_MIN
    x = np.zeros((4, d), np.float32)
    x[0, :d // 2] = -np.inf  # whole chunks of -inf
    x[1, :] = -np.inf
    x[2, 7] = np.inf
    x[3, d - 3] = np.nan
    y = rk.softmax(x)
    assert raw[0] == "polyten_row_softmax_part_float32_block"
    np.testing.assert_array_equal(y[0, :d // 2], 0)
    np.testing.assert_allclose(y[0, d // 2:], 1 / (d - d // 2), rtol=1e-5)
    assert np.isnan(y[1:]).all()
    ly = rk.softmax(x, log=True)
    assert np.isneginf(ly[0, :d // 2]).all() and np.isnan(ly[1:]).all()


def test_row_chunks_only_for_few_long_rows():
    """One chunk from SPLIT_BLOCKS rows on or below ROW_SPLIT_MIN elements; else about
    SPLIT_BLOCKS blocks in all, chunks of at least CHANNEL_CHUNK_MIN, none empty."""
    split, low = row_mod.ROW_SPLIT_MIN, row_mod.CHANNEL_CHUNK_MIN
    assert row_mod.row_chunks(row_mod.SPLIT_BLOCKS, 10 ** 7) == 1
    assert row_mod.row_chunks(1, split - 1) == 1
    for rows, d in ((1, split), (1, 256000), (7, 10 ** 6), (200, 3 * split)):
        parts = row_mod.row_chunks(rows, d)
        chunk = -(-d // parts)
        assert parts > 1 and -(-d // chunk) == parts and chunk >= low // 2
        assert rows * parts <= row_mod.SPLIT_BLOCKS + rows
