"""``polyten_cuda.linear``: Linear's forward and backward as direct cuBLAS GEMMs, without a GPU.

Runs polyten on the cuda backend over the CuPy stand-in (``tests/cupy_standin.py``, whose
``cublasGemmStridedBatchedEx`` follows cuBLAS's documented column-major semantics) in a child
process, and checks each result against NumPy's float64 products of the same (rounded)
operands computed there, and the calls made: one GEMM for a forward with its bias, two for a
backward, and no ``cupy.matmul`` (whose host work the direct GEMMs skip).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _run(body: str) -> str:
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {HERE!r})
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        import cupy
        matmuls = []
        _mm = cupy.matmul
        def counting_matmul(*a, **k):
            matmuls.append(1)
            return _mm(*a, **k)
        cupy.matmul = counting_matmul
        cupy.ndarray.__matmul__ = lambda a, b: counting_matmul(a, b)
        sums = []  # CuPy's reduction calls (ndarray.sum), by the stand-in's API layer
        _fcall = cs._Function.__call__
        def counting_call(self, *a, **k):
            if self.qualname == "ndarray.sum":
                sums.append(1)
            return _fcall(self, *a, **k)
        cs._Function.__call__ = counting_call
    """) + textwrap.dedent(body)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
    return r.stdout


def test_linear_forward_and_backward_are_gemms_checked_against_float64():
    """float32 and float64, 2-d and 3-d inputs, with and without a bias: forward and every
    gradient within the dtype's error of the float64 reference; a forward is one GEMM (the
    bias is its C), a backward two and the bias gradient's column-sum kernel (no CuPy
    reduction), and neither calls ``cupy.matmul``."""
    _run("""
        rng = np.random.default_rng(0)
        tol = {"float32": 2e-6, "float64": 1e-14}
        for dtype in ("float32", "float64"):
            for xshape in ((5, 7), (2, 3, 7)):
                for with_bias in (True, False):
                    x, w, b = (rng.standard_normal(s).astype(dtype)
                               for s in (xshape, (4, 7), (4,)))
                    g = rng.standard_normal(xshape[:-1] + (4,)).astype(dtype)
                    X, W = pt.tensor(x, requires_grad=True), pt.tensor(w, requires_grad=True)
                    B = pt.tensor(b, requires_grad=True) if with_bias else None
                    cs.CUBLAS_CALLS.clear(); matmuls.clear()
                    y = F.linear(X, W, B)
                    assert len(cs.CUBLAS_CALLS) == 1, cs.CUBLAS_CALLS
                    cs.CUBLAS_CALLS.clear()
                    G = pt.tensor(g)
                    cs.STATS.clear()
                    y.backward(G)
                    assert len(cs.CUBLAS_CALLS) == 2, cs.CUBLAS_CALLS
                    # the bias gradient: one column-sum launch, no CuPy reduction
                    assert cs.STATS["launch"] == 2 + with_bias and not sums, (cs.STATS, sums)
                    assert not matmuls
                    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
                    want = x64 @ w64.T + (b.astype(np.float64) if with_bias else 0)
                    g2, x2 = g64.reshape(-1, 4), x64.reshape(-1, 7)
                    mag = np.abs(x64) @ np.abs(w64).T + (np.abs(b) if with_bias else 0)
                    checks = [(y, want, mag), (X.grad, g64 @ w64, np.abs(g64) @ np.abs(w64)),
                              (W.grad, g2.T @ x2, np.abs(g2).T @ np.abs(x2))]
                    if with_bias:
                        checks.append((B.grad, g2.sum(0), np.abs(g2).sum(0)))
                    for got, ref, scale in checks:
                        got = got.detach().cpu().numpy()
                        assert got.dtype == np.dtype(dtype) and got.shape == ref.shape
                        assert np.all(np.abs(got - ref) <= tol[dtype] * scale + 1e-30), (
                            dtype, xshape, with_bias)
        print("ok")
    """)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_linear_backward_accumulates_in_float32(dtype):
    """float16 / bfloat16: the weight and input gradients are GEMMs with float32 accumulation
    and the bias gradient a float32 column sum, each rounded once -- within one ulp of the
    float64 value (a half-precision sum of 64 rows drifts further: the test can tell)."""
    _run(f"""
        rng = np.random.default_rng(1)
        dt = getattr(pt, {dtype!r})
        x, w, b = (rng.standard_normal(s) for s in ((64, 8), (3, 8), (3,)))
        g = rng.standard_normal((64, 3)) + 4.0  # one sign: a half-precision sum would drift
        X, W, B = (pt.tensor(a).to(dt).requires_grad_() for a in (x, w, b))
        G = pt.tensor(g).to(dt)
        F.linear(X, W, B).backward(G)
        assert not matmuls
        x64, w64, g64 = (t.detach().double().cpu().numpy() for t in (X, W, G))
        np_dt = X.detach().cpu().numpy().dtype
        for got, ref in ((B.grad, g64.sum(0)), (W.grad, g64.T @ x64), (X.grad, g64 @ w64)):
            got = got.detach().double().cpu().numpy()
            ulp = np.spacing(np.abs(ref).astype(np_dt)).astype(np.float64)
            assert np.all(np.abs(got - ref) <= ulp + 2.0 ** -20 * np.abs(ref)), (got, ref)
        # the same bias gradient summed in the half dtype, as a check that the test can tell
        acc = np.zeros(3, dtype=np_dt)
        for row in g64.astype(np_dt):
            acc = (acc + row).astype(np_dt)
        ref = g64.sum(0)
        ulp = np.spacing(np.abs(ref).astype(np_dt)).astype(np.float64)
        assert np.any(np.abs(acc.astype(np.float64) - ref) > ulp)
        print("ok")
    """)


def test_linear_falls_back_where_the_gemm_does_not_apply():
    """A vector input and an input of another dtype than the weight's (cast by polyten first)
    still give NumPy's float64 values; the vector takes the shared kernel; a 2-d gradient
    that is a transposed view sums its bias gradient with CuPy's reduction."""
    _run("""
        rng = np.random.default_rng(2)
        x, w, b = rng.standard_normal(7), rng.standard_normal((4, 7)), rng.standard_normal(4)
        X = pt.tensor(x.astype("float32"), requires_grad=True)
        W = pt.tensor(w.astype("float32"), requires_grad=True)
        B = pt.tensor(b.astype("float32"), requires_grad=True)
        y = F.linear(X, W, B)
        y.sum().backward()
        x32, w32, b32 = (a.astype("float32").astype(np.float64) for a in (x, w, b))
        np.testing.assert_allclose(y.detach().cpu().numpy(), w32 @ x32 + b32, rtol=2e-6)
        np.testing.assert_allclose(X.grad.cpu().numpy(), w32.sum(0), rtol=2e-6)
        np.testing.assert_allclose(W.grad.cpu().numpy(), np.tile(x32, (4, 1)), rtol=2e-6)
        # a 2-d gradient that is a view: the GEMMs take it as it is, the bias gradient is
        # CuPy's column sum of the view (no copy for the column-sum kernel)
        X2, W2, B2 = (pt.tensor(a, requires_grad=True) for a in (
            rng.standard_normal((6, 7)), w, b))
        gt = rng.standard_normal((4, 6))
        F.linear(X2, W2, B2).backward(pt.tensor(gt).t())
        assert sums
        np.testing.assert_allclose(B2.grad.cpu().numpy(), gt.sum(1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(W2.grad.cpu().numpy(), gt @ X2.detach().cpu().numpy(),
                                   rtol=1e-12, atol=1e-12)
        Xd = pt.tensor(rng.standard_normal((3, 7)))  # float64 input, float32 weight
        yd = F.linear(Xd, W.detach(), B.detach())
        assert yd.dtype == pt.float64
        ref = Xd.cpu().numpy() @ w32.T + b32
        np.testing.assert_allclose(yd.cpu().numpy(), ref, rtol=1e-12)
        print("ok")
    """)


def test_linear_backward_of_a_strided_gradient():
    """A 3-d gradient that is a transposed view (the backward of a transpose after the
    Linear): the same float64 values, two GEMMs, and the gradient copied once for both."""
    _run("""
        rng = np.random.default_rng(3)
        x, w, b = (rng.standard_normal(s) for s in ((2, 3, 5), (4, 5), (4,)))
        gt = rng.standard_normal((3, 2, 4))
        X, W, B = (pt.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.linear(X, W, B)
        G = pt.tensor(gt).transpose(0, 1)
        assert not G.is_contiguous()
        copies = []
        _asc = cupy.ascontiguousarray
        def counting_asc(a, *args, **kw):
            if not a.flags.c_contiguous:
                copies.append(a.shape)
            return _asc(a, *args, **kw)
        cupy.ascontiguousarray = counting_asc
        cs.CUBLAS_CALLS.clear()
        cs.STATS.clear()
        y.backward(G)
        cupy.ascontiguousarray = _asc
        assert len(cs.CUBLAS_CALLS) == 2 and copies == [(2, 3, 4)], (cs.CUBLAS_CALLS, copies)
        assert cs.STATS["launch"] == 4, cs.STATS  # the copy, two GEMMs, the bias sum
        g = gt.transpose(1, 0, 2)
        np.testing.assert_allclose(X.grad.cpu().numpy(), g @ w, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(W.grad.cpu().numpy(), g.reshape(-1, 4).T @ x.reshape(-1, 5),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(B.grad.cpu().numpy(), g.sum((0, 1)), rtol=1e-12, atol=1e-12)
        print("ok")
    """)
