"""``polyten_cuda.gemm``: batched ``matmul`` as one cuBLAS strided-batched GEMM, without a GPU.

The CuPy stand-in emulates ``cublasGemmStridedBatchedEx`` from cuBLAS's documented semantics
(column-major matrices, transpose flags, leading dimensions, batch strides, its argument
checks) on the stand-in's host memory.  Each product is checked against NumPy's float64
product of the same (rounded) operands, computed in the test, for every layout ``bmm`` passes
to cuBLAS as it is (transposed, row-sliced, broadcast over the batch) and every one it copies;
the launch counts show which operands were copied.  What the stand-in cannot show -- cuBLAS's
own numerics and speed, tensor-core kernels -- is left to ``scripts/gpu_check.sh`` (the
conformance suite and ``tests/test_cuda.py`` multiply batched float16 / bfloat16 there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
import zlib

import numpy as np
import pytest

import cupy_standin as cs
from polyten_cuda import gemm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a test dependency
    BF16 = None

DTYPES = ["float16", "float32", "float64"] + (["bfloat16"] if BF16 is not None else [])
# relative error per term of the sum: the output's rounding dominates (float32 accumulation)
TOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-14}


def _dt(name):
    return BF16 if name == "bfloat16" else np.dtype(name)


@pytest.fixture(scope="module")
def cp():
    return cs.strict_cupy()


@pytest.fixture()
def bmm(cp):
    cs.CUBLAS_CALLS.clear()
    cs.STATS.clear()
    yield gemm.build(cp)
    cs.STATS.clear()


def _close(got, a, b, dtype):
    """``got`` against NumPy's float64 product of ``a`` and ``b`` (host arrays of ``dtype``),
    each element within TOL of the sum of |terms|, plus half the dtype's smallest subnormal
    (a result that small is rounded to a multiple of it)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.matmul(a64, b64)
    tiny = float(np.finfo(_dt(dtype)).smallest_subnormal) / 2
    bound = TOL[dtype] * np.matmul(np.abs(a64), np.abs(b64)) + tiny
    got = np.asarray(got).astype(np.float64)
    assert got.shape == want.shape
    err = np.abs(got - want)
    assert np.all(err <= bound), (err / bound).max()


def _host(rng, shape, dtype):
    return rng.standard_normal(shape).astype(_dt(dtype))


# (name, a maker, b maker, launches): each maker takes (cp, rng, dtype) and returns
# (device operand, host copy); launches is 1 when cuBLAS reads both operands as they are
def _plain(shape):
    def make(cp, rng, dtype):
        h = _host(rng, shape, dtype)
        return cp.asarray(h), h
    return make


def _transposed(shape):  # shape of the result; stored transposed (q @ k.mT)
    def make(cp, rng, dtype):
        h = _host(rng, shape[:-2] + shape[-2:][::-1], dtype)
        return cp.asarray(h).swapaxes(-1, -2), h.swapaxes(-1, -2)
    return make


def _sliced(shape, extra=3):  # columns of a wider array (one head of a fused qkv)
    def make(cp, rng, dtype):
        h = _host(rng, shape[:-1] + (shape[-1] + extra,), dtype)
        return cp.asarray(h)[..., 1:1 + shape[-1]], h[..., 1:1 + shape[-1]]
    return make


def _expanded(shape):  # one matrix broadcast over the batch by a stride-0 view
    def make(cp, rng, dtype):
        h = _host(rng, (1,) + shape[1:], dtype)
        return cp.broadcast_to(cp.asarray(h), shape), np.broadcast_to(h, shape)
    return make


def _permuted(shape):  # batch dims in another order: no single batch stride
    def make(cp, rng, dtype):
        h = _host(rng, (shape[1], shape[0]) + shape[2:], dtype)
        return cp.asarray(h).swapaxes(0, 1), h.swapaxes(0, 1)
    return make


def _reversed(shape):  # a negative batch stride
    def make(cp, rng, dtype):
        h = _host(rng, shape, dtype)
        return cp.asarray(h)[::-1], h[::-1]
    return make


CASES = [
    ("batched", _plain((3, 4, 5)), _plain((3, 5, 6)), 1),
    ("4-d", _plain((2, 3, 4, 5)), _plain((2, 3, 5, 6)), 1),
    ("right transposed", _plain((3, 4, 5)), _transposed((3, 5, 6)), 1),
    ("left transposed", _transposed((3, 4, 5)), _plain((3, 5, 6)), 1),
    ("both transposed", _transposed((2, 3, 4, 5)), _transposed((2, 3, 5, 6)), 1),
    ("row slices", _sliced((3, 4, 5)), _sliced((3, 5, 6)), 1),
    ("sliced and transposed", _sliced((3, 4, 5)), _transposed((3, 5, 6)), 1),
    ("right 2-d", _plain((3, 4, 5)), _plain((5, 6)), 1),
    ("left 2-d", _plain((4, 5)), _plain((3, 5, 6)), 1),
    ("size-1 batch", _plain((1, 4, 5)), _plain((3, 5, 6)), 1),
    ("expanded", _expanded((3, 4, 5)), _plain((3, 5, 6)), 1),
    ("right transposed 2-d", _plain((2, 3, 4, 5)), _transposed((5, 6)), 1),
    ("m = 1", _plain((3, 1, 5)), _plain((3, 5, 6)), 1),
    ("n = 1", _plain((3, 4, 5)), _plain((3, 5, 1)), 1),
    ("k = 1", _plain((3, 4, 1)), _transposed((3, 1, 6)), 1),
    ("partial broadcast", _plain((2, 1, 4, 5)), _plain((1, 3, 5, 6)), 3),
    ("permuted batch", _permuted((3, 2, 4, 5)), _plain((3, 2, 5, 6)), 2),
    ("reversed batch", _reversed((3, 4, 5)), _plain((3, 5, 6)), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,make_a,make_b,launches", CASES, ids=[c[0] for c in CASES])
def test_products_match_numpy_float64(cp, bmm, dtype, name, make_a, make_b, launches):
    # a seed of the case (Python's str hash changes per process: a flaky draw)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{dtype}".encode()))
    a, ha = make_a(cp, rng, dtype)
    b, hb = make_b(cp, rng, dtype)
    cs.STATS.clear()
    got = bmm(a, b)
    assert got.dtype == _dt(dtype)
    # the GEMM and the copies of operands cuBLAS cannot read as they are, nothing else
    assert cs.STATS["launch"] == launches, cs.STATS
    _close(got.get(), ha, hb, dtype)
    call = cs.CUBLAS_CALLS[-1][1]
    assert call["dtype"] == dtype
    assert call["computeType"] == ("64F" if dtype == "float64" else "32F")


def test_a_batch_times_one_matrix_is_one_gemm_of_all_rows(cp, bmm):
    """(B, T, k) @ (k, n) with contiguous rows: one (B*T, k) @ (k, n) GEMM, as PyTorch folds
    it; a transposed left operand keeps the batch (its rows are not evenly spaced)."""
    rng = np.random.default_rng(1)
    a, ha = _plain((4, 7, 5))(cp, rng, "float32")
    b, hb = _plain((5, 3))(cp, rng, "float32")
    _close(bmm(a, b).get(), ha, hb, "float32")
    call = cs.CUBLAS_CALLS[-1][1]
    assert (call["batchCount"], call["n"], call["strideA"]) == (1, 28, 0)
    a, ha = _transposed((4, 7, 5))(cp, rng, "float32")
    _close(bmm(a, b).get(), ha, hb, "float32")
    assert cs.CUBLAS_CALLS[-1][1]["batchCount"] == 4


def test_transposed_operands_are_passed_with_their_flag(cp, bmm):
    rng = np.random.default_rng(2)
    a, ha = _transposed((3, 4, 5))(cp, rng, "float32")
    b, hb = _transposed((3, 5, 6))(cp, rng, "float32")
    _close(bmm(a, b).get(), ha, hb, "float32")
    call = cs.CUBLAS_CALLS[-1][1]
    # C^T = B^T A^T: B's flag first; a transposed view is read column by column
    assert (call["transa"], call["transb"], call["lda"], call["ldb"]) == (1, 1, 5, 4)


def test_float32_follows_cupys_compute_type(cp, bmm):
    """polyten.set_float32_matmul_precision reaches batched products too: CuPy's compute type
    for float32, mapped as CuPy's 2-D products map it (its own batched float32 path ignores
    it)."""
    rng = np.random.default_rng(3)
    a, ha = _plain((2, 4, 5))(cp, rng, "float32")
    b, hb = _plain((2, 5, 6))(cp, rng, "float32")
    linalg = cp._core._routines_linalg
    try:
        for setting, want in ((linalg.COMPUTE_TYPE_TF32, "32F_FAST_TF32"),
                              (linalg.COMPUTE_TYPE_PEDANTIC, "32F_PEDANTIC"),
                              (linalg.COMPUTE_TYPE_DEFAULT, "32F")):
            linalg.set_compute_type(np.float32, setting)
            bmm(a, b)
            assert cs.CUBLAS_CALLS[-1][1]["computeType"] == want
    finally:
        cs.COMPUTE_TYPES.clear()
    # float16 accumulates in float32 whatever float32's setting
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
    try:
        bmm(a.astype("float16"), b.astype("float16"))
        assert cs.CUBLAS_CALLS[-1][1]["computeType"] == "32F"
    finally:
        cs.COMPUTE_TYPES.clear()


def test_batches_past_the_grid_limit_are_split(cp, bmm, monkeypatch):
    monkeypatch.setattr(gemm, "MAX_BATCH", 2)
    rng = np.random.default_rng(4)
    for make_b in (_plain((5, 3, 4)), _transposed((5, 3, 4)), _plain((3, 4))):
        a, ha = _transposed((5, 2, 3))(cp, rng, "float32")  # no fold: keeps 5 matrices
        b, hb = make_b(cp, rng, "float32")
        cs.CUBLAS_CALLS.clear()
        _close(bmm(a, b).get(), ha, hb, "float32")
        assert [c[1]["batchCount"] for c in cs.CUBLAS_CALLS] == [2, 2, 1]


def test_empty_and_zero_k(cp, bmm):
    z = bmm(cp.ones((0, 4, 5), dtype="float32"), cp.ones((0, 5, 6), dtype="float32"))
    assert z.shape == (0, 4, 6)
    z = bmm(cp.ones((3, 4, 0), dtype="float16"), cp.ones((3, 0, 6), dtype="float16"))
    assert z.shape == (3, 4, 6) and z.dtype == np.float16 and not z.get().any()
    assert not cs.CUBLAS_CALLS


def test_what_it_leaves_to_cupy(cp, bmm):
    f32 = "float32"
    assert bmm(cp.ones(5, dtype=f32), cp.ones((3, 5, 6), dtype=f32)) is None  # a vector
    assert bmm(cp.ones((3, 4, 5), dtype="int64"), cp.ones((3, 5, 6), dtype="int64")) is None
    assert bmm(cp.ones((3, 4, 5), dtype=f32), cp.ones((3, 5, 6), dtype="float64")) is None
    assert bmm(cp.ones((3, 4, 5), dtype=f32), cp.ones((3, 4, 6), dtype=f32)) is None
    assert bmm(cp.ones((2, 4, 5), dtype=f32), cp.ones((3, 5, 6), dtype=f32)) is None
    assert not cs.CUBLAS_CALLS


def test_an_invalid_argument_is_raised_not_taken_for_a_refusal(cp, monkeypatch):
    """cuBLAS's INVALID_VALUE means a wrong leading dimension or stride (a bug): raised, not
    hidden behind the cupy.matmul fallback."""
    def invalid(*args):
        raise cs.CUBLASError(7)
    monkeypatch.setattr(cs._CUBLAS, "gemmStridedBatchedEx", invalid)
    bmm = gemm.build(cp)
    with pytest.raises(cs.CUBLASError, match="INVALID_VALUE"):
        bmm(cp.ones((2, 3, 4), dtype="float32"), cp.ones((2, 4, 5), dtype="float32"))


def test_a_refused_dtype_goes_to_cupy_from_then_on(cp, bmm, monkeypatch):
    """A GPU whose cuBLAS has no GEMM for the dtype (bfloat16 before sm_80): one warning
    naming the error, then ``None`` at once for that dtype (the caller's cupy.matmul)."""
    calls = []

    def refuse(*args):
        calls.append(args)
        raise cs.CUBLASError(15)
    monkeypatch.setattr(cs._CUBLAS, "gemmStridedBatchedEx", refuse)
    refusing = gemm.build(cp)
    a, b = cp.ones((2, 3, 4), dtype="float16"), cp.ones((2, 4, 5), dtype="float16")
    with pytest.warns(RuntimeWarning, match=r"matmul: cuBLAS refused a strided-batched "
                                            r"float16 GEMM on this GPU "
                                            r"\(CUBLAS_STATUS_NOT_SUPPORTED\)"):
        assert refusing(a, b) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert refusing(a, b) is None
    assert len(calls) == 1


def test_the_emulated_gemm_is_cublas_column_major(cp):
    """The stand-in's cublasGemmStridedBatchedEx against a direct reading of cuBLAS's
    definition: column-major A (lda >= m) and B, C = alpha A^T-or-A B + beta C."""
    rng = np.random.default_rng(5)
    m, n, k, lda, ldb, ldc = 3, 4, 2, 5, 2, 3
    A = rng.standard_normal((k, lda))  # column j of the stored m x k matrix is row j here
    B = rng.standard_normal((n, ldb))
    C = rng.standard_normal((n, ldc))
    alpha, beta = np.array(2.0), np.array(0.5)
    want = alpha * (A[:, :m].T @ B[:, :k].T) + beta * C[:, :m].T
    dA, dB, dC = (cp.asarray(x) for x in (A, B, C))
    cs._CUBLAS.gemmStridedBatchedEx(0, 0, 0, m, n, k, alpha.ctypes.data, dA.data.ptr, 1, lda,
                                    0, dB.data.ptr, 1, ldb, 0, beta.ctypes.data, dC.data.ptr,
                                    1, ldc, 0, 1, cs._CUBLAS.CUBLAS_COMPUTE_64F, -1)
    np.testing.assert_allclose(dC.get()[:, :m].T, want, rtol=1e-14)
    with pytest.raises(cs.CUBLASError, match="INVALID_VALUE"):  # lda < m
        cs._CUBLAS.gemmStridedBatchedEx(0, 0, 0, m, n, k, alpha.ctypes.data, dA.data.ptr, 1, 2,
                                        0, dB.data.ptr, 1, ldb, 0, beta.ctypes.data,
                                        dC.data.ptr, 1, ldc, 0, 1, 70, -1)


def test_polyten_batched_products_and_gradients_on_cuda():
    """Through polyten on cuda: attention-shaped products (``q @ k.mT``, then ``@ v``) and a
    batch times a weight, forward and backward, against NumPy float64 in the same process;
    each product (the backward's transposed ones included) is one GEMM launch."""
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {HERE!r})
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        pt.set_backend("cuda")
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
        w = rng.standard_normal((4, 6))
        Q, K, V, W = (pt.tensor(x, requires_grad=True) for x in (q, k, v, w))
        s = Q @ K.mT
        y = s @ V
        z = y @ W
        g = rng.standard_normal(z.shape)
        cs.CUBLAS_CALLS.clear()
        z.backward(pt.tensor(g))
        backward_gemms = len(cs.CUBLAS_CALLS)
        S = q @ k.swapaxes(-1, -2)
        Y = S @ v
        gy = g @ w.T
        gw = Y.reshape(-1, 4).T @ g.reshape(-1, 6)
        gs = gy @ v.swapaxes(-1, -2)
        gv = S.swapaxes(-1, -2) @ gy
        gq = gs @ k
        gk = gs.swapaxes(-1, -2) @ q
        for got, want in ((z, Y @ w), (W.grad, gw), (V.grad, gv), (Q.grad, gq),
                          (K.grad, gk)):
            np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=1e-12,
                                       atol=1e-12)
        Qh, Kh = Q.detach().half(), K.detach().half()
        cs.STATS.clear()
        r = Qh @ Kh.mT
        assert cs.STATS["launch"] == 1, cs.STATS  # no copy of the transposed view
        assert cs.CUBLAS_CALLS[-1][1]["dtype"] == "float16"
        print("ok", backward_gemms)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
    # dW (the one 2-D product goes to cupy.matmul's gemm), dV, dS, dQ, dK: the batched ones
    assert int(r.stdout.split()[-1]) >= 4


@pytest.mark.parametrize("dtype", ["float16"] + (["bfloat16"] if BF16 is not None else []))
def test_half_convolution_multiplies_half_on_cuda(dtype):
    """A float16 / bfloat16 Conv2d on cuda (as under autocast) keeps its dtype through im2col
    and the GEMMs -- each product one cuBLAS GEMM of the dtype with float32 accumulation, the
    weight gradient's transposed grid read as it is -- and matches torch's float64
    convolution of the same operands within the dtype's rounding, forward and every
    gradient."""
    torch = pytest.importorskip("torch")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {HERE!r})
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        dt = getattr(pt, {dtype!r})
        rng = np.random.default_rng(0)
        X, W, B, G = (pt.tensor(rng.standard_normal(s)).to(dt)
                      for s in ((4, 3, 10, 10), (8, 3, 3, 3), (8,), (4, 8, 10, 10)))
        for t in (X, W, B):
            t.requires_grad_()
        cs.CUBLAS_CALLS.clear()
        y = F.conv2d(X, W, B, padding=1)
        y.backward(G)
        calls = [c[1] for c in cs.CUBLAS_CALLS]
        assert len(calls) == 3 and all(c["dtype"] == {dtype!r} and c["computeType"] == "32F"
                                       for c in calls), calls
        assert sum(c["transa"] or c["transb"] for c in calls) == 2  # no transposed copies
        assert all(t.dtype == dt for t in (y, X.grad, W.grad, B.grad))
        out = {{k: t.detach().double().cpu().numpy() for k, t in dict(
            y=y, gx=X.grad, gw=W.grad, gb=B.grad, x=X, w=W, b=B, g=G).items()}}
        np.savez(sys.argv[1], **out)
        print("ok")
    """)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conv.npz")
        r = subprocess.run([sys.executable, "-c", code, path], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
        got = dict(np.load(path))
    tx, tw, tb = (torch.tensor(got[k], requires_grad=True) for k in ("x", "w", "b"))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(got["g"]))
    tol = {"float16": 4e-3, "bfloat16": 3e-2}[dtype]
    for name, t in (("y", ty), ("gx", tx.grad), ("gw", tw.grad), ("gb", tb.grad)):
        t = t.detach().numpy()
        np.testing.assert_allclose(got[name], t, rtol=tol, atol=tol * np.abs(t).max(),
                                   err_msg=name)


def test_split_k_parts():
    """A weight gradient's product is split over K past SPLIT_K_MIN while its output has
    fewer than SPLIT_K_TILES tiles of 128 x 128: into the most parts up to about
    SPLIT_K_BLOCKS tiles in all, each at least SPLIT_K_PART long, that divide K -- the bench
    CNN's two weight gradients at batch 256 into 64 and 16 -- else not at all."""
    from polyten_cuda import conv
    assert conv.split_k(64, 27, 256 * 1024) == 64 and conv.split_k(128, 576, 256 * 256) == 16
    assert conv.split_k(64, 27, conv.SPLIT_K_MIN - 1) == 1
    assert conv.split_k(1024, 1024, 1 << 20) == 1  # 64 tiles: the GPU is busy already
    assert conv.split_k(64, 27, 7 * 3511) == 1  # no divisor up to the 6 parts it may take
    for k in (8192, 12288, 100000, 1 << 20):
        parts = conv.split_k(64, 64, k)
        assert k % parts == 0 and (parts == 1 or k // parts >= conv.SPLIT_K_PART)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_convolution_weight_gradient_split_over_k_on_cuda(dtype):
    """Past the split-K thresholds (lowered here to fit a small convolution) the weight
    gradient is one strided-batched GEMM of S products over K / S into float32 (float64)
    partials, added in order and rounded once by one launch: against NumPy's float64
    weight gradient of the same operands; the input gradient and the forward are
    unchanged."""
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {HERE!r})
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        from polyten_cuda import conv
        conv.SPLIT_K_MIN, conv.SPLIT_K_PART = 256, 128
        pt.backends.cudnn.allow_tf32 = False  # IEEE float32 products: a tight check
        pt.set_backend("cuda")
        dt = getattr(pt, {dtype!r})
        rng = np.random.default_rng(0)
        X, W, G = (pt.tensor(rng.standard_normal(s)).to(dt)
                   for s in ((8, 3, 12, 12), (4, 3, 3, 3), (8, 4, 12, 12)))
        X.requires_grad_(); W.requires_grad_()
        cs.CUBLAS_CALLS.clear()
        cs.STATS.clear()
        y = F.conv2d(X, W, padding=1)
        y.backward(G)
        calls = [c[1] for c in cs.CUBLAS_CALLS]
        # K = 8 * 144 = 1152 in 9 parts of 128 (column-major: m = 27, n = 4)
        split = [c for c in calls if c["batchCount"] == 9]
        assert len(split) == 1 and split[0]["k"] == 128 and split[0]["m"] == 27, calls
        x, g = (t.detach().double().cpu().numpy() for t in (X, G))
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        want, size = np.empty((4, 3, 3, 3)), np.empty((4, 3, 3, 3))  # and sum of |terms|
        for i in range(3):
            for j in range(3):
                win = xp[:, :, i:i + 12, j:j + 12]
                want[:, :, i, j] = np.einsum("noyx,ncyx->oc", g, win)
                size[:, :, i, j] = np.einsum("noyx,ncyx->oc", np.abs(g), np.abs(win))
        got = W.grad.detach().double().cpu().numpy()
        assert W.grad.dtype == dt
        tol = {{"float32": 2e-6, "float64": 1e-13, "float16": 2e-3}}[{dtype!r}]
        err = np.abs(got - want)
        assert (err <= tol * size).all(), (err.max(), (err / size).max())
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


def test_accumulate_adds_into_out_once(cp, bmm):
    """``accumulate=True``: ``out + a @ b`` with cuBLAS's beta = 1 (one rounding)."""
    rng = np.random.default_rng(6)
    a, ha = _plain((3, 4, 5))(cp, rng, "float32")
    b, hb = _transposed((3, 5, 6))(cp, rng, "float32")
    c0 = rng.standard_normal((3, 4, 6)).astype(np.float32)
    out = cp.asarray(c0)
    assert bmm(a, b, out=out, accumulate=True) is out
    want = c0.astype(np.float64) + ha.astype(np.float64) @ hb.astype(np.float64)
    np.testing.assert_allclose(out.get(), want, rtol=1e-5, atol=1e-5)
    assert bmm(a, b, accumulate=True) is None  # nothing to accumulate into


@pytest.mark.parametrize("dtype", ["float16"] + (["bfloat16"] if BF16 is not None else []))
def test_half_linear_rounds_once_as_torch_addmm(dtype):
    """A float16 / bfloat16 Linear with bias on cuda: the bias is the GEMM's C (beta = 1), so
    each output is the float32 sum rounded once -- within half an ulp of the exact value, as
    torch's addmm -- where a product rounded and then a bias add rounded again is not."""
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {HERE!r})
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        rng = np.random.default_rng(0)
        x, w, b = (rng.standard_normal(s) for s in ((2, 64, 48), (96, 48), (96,)))
        X, W, B = (pt.tensor(a).to(getattr(pt, {dtype!r})) for a in (x, w, b))
        cs.CUBLAS_CALLS.clear()
        y = F.linear(X, W, B)
        assert len(cs.CUBLAS_CALLS) == 1 and cs.CUBLAS_CALLS[0][1]["m"] == 96
        np.save(sys.argv[1], y.double().cpu().numpy())
        np.savez(sys.argv[2], x=X.double().cpu().numpy(), w=W.double().cpu().numpy(),
                 b=B.double().cpu().numpy())
        print("ok")
    """)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, n) for n in ("y.npy", "ops.npz")]
        r = subprocess.run([sys.executable, "-c", code] + paths, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
        got = np.load(paths[0])
        ops = dict(np.load(paths[1]))
    exact = ops["x"] @ ops["w"].T + ops["b"]
    dt = _dt(dtype)
    # half an ulp of the dtype at each value, plus the float32 sum's own error
    ulp = np.spacing(np.abs(exact).astype(dt)).astype(np.float64)
    bound = 0.5 * ulp + 2.0 ** -22 * (np.abs(ops["x"]) @ np.abs(ops["w"]).T + np.abs(ops["b"]))
    assert np.all(np.abs(got - exact) <= bound)
    double = ((ops["x"] @ ops["w"].T).astype(dt).astype(np.float64) + ops["b"]).astype(dt)
    assert np.any(np.abs(double.astype(np.float64) - exact) > bound)  # the test can tell
