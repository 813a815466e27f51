"""``polyten.fft.hfft2`` / ``hfftn`` / ``ihfft2`` / ``ihfftn`` and
``polyten.linalg.householder_product`` against PyTorch (float64 / complex128, computed here),
with gradchecks and the error paths."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck

NORMS = [None, "backward", "ortho", "forward"]


def _rng(*parts):
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def _parts(out):
    return (out.real, out.imag) if out.dtype.is_complex else (out,)


# ------------------------------------------------------------------------------ fft ---
FFT_CASES = [
    ("hfftn", (3, 4, 5), dict()),
    ("hfftn", (3, 4, 5), dict(s=(5, 7))),
    ("hfftn", (4, 6), dict(dim=(1, 0))),
    ("hfftn", (2, 3, 4), dict(s=(3, -1, 6), dim=(0, 2, 1))),
    ("hfftn", (5,), dict(s=(9,))),
    ("hfft2", (2, 4, 5), dict()),
    ("hfft2", (4, 5), dict(s=(3, 4), dim=(-1, -2))),
    ("ihfftn", (3, 4, 5), dict()),
    ("ihfftn", (3, 4, 6), dict(s=(5, 7))),
    ("ihfftn", (4, 6), dict(dim=(1, 0))),
    ("ihfftn", (2, 3, 4), dict(s=(3, -1, 6), dim=(0, 2, 1))),
    ("ihfft2", (2, 4, 5), dict()),
    ("ihfft2", (4, 5), dict(s=(3, 8), dim=(-1, -2))),
]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, shape, kw", FFT_CASES)
def test_hermitian_nd_matches_torch(name, shape, kw, norm):
    torch = pytest.importorskip("torch")
    rng = _rng(name, shape, kw)
    x = rng.standard_normal(shape)
    if not name.startswith("i"):
        x = x + 1j * rng.standard_normal(shape)
    got = getattr(pt.fft, name)(pt.asarray(x), norm=norm, **kw).numpy()
    want = getattr(torch.fft, name)(torch.from_numpy(x), norm=norm, **kw).numpy()
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm", NORMS)
def test_hfftn_inverts_ihfftn(norm):
    x = _rng("roundtrip").standard_normal((3, 4, 7))
    y = pt.fft.hfftn(pt.fft.ihfftn(pt.asarray(x), norm=norm), s=x.shape, norm=norm)
    np.testing.assert_allclose(y.numpy(), x, rtol=1e-12, atol=1e-12)


def test_ihfftn_is_conj_rfftn_over_n():
    x = _rng("def").standard_normal((3, 4, 6))
    want = np.conj(np.fft.rfftn(x)) / x.size
    np.testing.assert_allclose(pt.fft.ihfftn(pt.asarray(x)).numpy(), want, rtol=1e-12,
                               atol=1e-14)


def test_float32_dtypes():
    x = pt.asarray(_rng("f32").standard_normal((3, 4)).astype(np.float32))
    assert pt.fft.ihfft2(x).dtype == pt.complex64
    assert pt.fft.hfftn(pt.fft.ihfftn(x)).dtype == pt.float32


def test_gradcheck_ihfftn():
    x = pt.tensor(_rng("g1").standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda t: _parts(pt.fft.ihfftn(t, s=(3, 5), norm="ortho")), (x,))
    assert gradcheck(lambda t: _parts(pt.fft.ihfft2(t)), (x,))


def test_gradcheck_hfftn_complex_input():
    rng = _rng("g2")
    re = pt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    im = pt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda a, b: pt.fft.hfftn(pt.complex(a, b), s=(3, 5)), (re, im))
    assert gradcheck(lambda a, b: pt.fft.hfft2(pt.complex(a, b), norm="forward"), (re, im))


def test_hfftn_grad_matches_torch():
    torch = pytest.importorskip("torch")
    rng = _rng("g3")
    x = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    w = rng.standard_normal((3, 6))
    xp = pt.tensor(x, requires_grad=True)
    (pt.fft.hfftn(xp) * pt.asarray(w)).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    (torch.fft.hfftn(xt) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(xp.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_fft_errors():
    z = pt.asarray(np.ones((3, 4), dtype=np.complex128))
    with pytest.raises(TypeError, match=r"fft\.ihfftn: expects a real input"):
        pt.fft.ihfftn(z)
    with pytest.raises(TypeError, match=r"fft\.ihfft2: expects a real input"):
        pt.fft.ihfft2(z)
    with pytest.raises(ValueError, match=r"fft\.hfftn: must transform at least one"):
        pt.fft.hfftn(z, dim=())
    with pytest.raises(ValueError, match=r"fft\.hfft2: s and dim must have the same length"):
        pt.fft.hfft2(z, s=(3,))
    with pytest.raises(ValueError, match=r"fft\.hfftn: invalid number of data points"):
        pt.fft.hfftn(pt.asarray(np.ones((3, 1), dtype=np.complex128)))
    with pytest.raises(ValueError, match=r"fft\.ihfftn: invalid normalization mode"):
        pt.fft.ihfftn(z.real, norm="bad")


# ------------------------------------------------------------------- householder ---
def _hh_data(shape, k, cplx, *key):
    rng = _rng("hh", shape, k, cplx, *key)
    A = rng.standard_normal(shape)
    tau = rng.standard_normal(shape[:-2] + (k,))
    if cplx:
        A = A + 1j * rng.standard_normal(shape)
        tau = tau + 1j * rng.standard_normal(tau.shape)
    return A, tau


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("shape, k", [((4, 3), 3), ((5, 5), 5), ((2, 6, 4), 2),
                                      ((2, 3, 5, 3), 3), ((3, 2), 0), ((4, 1), 1)])
def test_householder_product_matches_torch(shape, k, cplx):
    torch = pytest.importorskip("torch")
    A, tau = _hh_data(shape, k, cplx)
    got = pt.linalg.householder_product(pt.asarray(A), pt.asarray(tau))
    want = torch.linalg.householder_product(torch.from_numpy(A), torch.from_numpy(tau))
    assert got.dtype == (pt.complex128 if cplx else pt.float64)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_householder_product_explicit_reflectors():
    """Against the definition, with explicit (m, m) reflectors built in NumPy."""
    A, tau = _hh_data((5, 3), 2, True, "explicit")
    m, n = A.shape
    Q = np.eye(m, dtype=complex)
    for i in range(2):
        v = np.zeros(m, dtype=complex)
        v[i] = 1
        v[i + 1:] = A[i + 1:, i]
        Q = Q @ (np.eye(m) - tau[i] * np.outer(v, v.conj()))
    got = pt.linalg.householder_product(pt.asarray(A), pt.asarray(tau)).numpy()
    np.testing.assert_allclose(got, Q[:, :n], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cplx", [False, True])
def test_householder_product_of_geqrf_is_qr_q(cplx):
    torch = pytest.importorskip("torch")
    A, _ = _hh_data((2, 6, 4), 4, cplx, "qr")
    a, tau = torch.geqrf(torch.from_numpy(A))
    Q = pt.linalg.householder_product(pt.asarray(a.numpy()), pt.asarray(tau.numpy()))
    want = torch.linalg.qr(torch.from_numpy(A)).Q.numpy()
    np.testing.assert_allclose(Q.numpy(), want, rtol=1e-10, atol=1e-12)
    R = np.triu(a.numpy())[..., :4, :]
    np.testing.assert_allclose(Q.numpy() @ R, A, rtol=1e-10, atol=1e-12)


def test_householder_product_gradcheck_real():
    A, tau = _hh_data((2, 4, 3), 2, False, "grad")
    a = pt.tensor(A, requires_grad=True)
    t = pt.tensor(tau, requires_grad=True)
    assert gradcheck(pt.linalg.householder_product, (a, t))


def test_householder_product_gradcheck_complex_and_torch_grad():
    torch = pytest.importorskip("torch")
    A, tau = _hh_data((4, 3), 3, True, "gradc")
    parts = [pt.tensor(p, requires_grad=True) for p in (A.real, A.imag, tau.real, tau.imag)]

    def f(ar, ai, tr, ti):
        return _parts(pt.linalg.householder_product(pt.complex(ar, ai), pt.complex(tr, ti)))

    assert gradcheck(f, tuple(parts))
    w = _rng("w").standard_normal((4, 3))
    ap, tp = pt.tensor(A, requires_grad=True), pt.tensor(tau, requires_grad=True)
    (pt.linalg.householder_product(ap, tp).real * pt.asarray(w)).sum().backward()
    at, tt = torch.tensor(A, requires_grad=True), torch.tensor(tau, requires_grad=True)
    (torch.linalg.householder_product(at, tt).real * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(ap.grad.numpy(), at.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tp.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_householder_product_errors():
    A = pt.asarray(np.ones((4, 3)))
    op = r"linalg\.householder_product: "
    with pytest.raises(RuntimeError, match=op + r"input\.shape\[-1\] must be greater"):
        pt.linalg.householder_product(A, pt.asarray(np.ones(4)))
    with pytest.raises(RuntimeError, match=op + r"input\.shape\[-2\] must be greater"):
        pt.linalg.householder_product(pt.asarray(np.ones((3, 4))), pt.asarray(np.ones(2)))
    with pytest.raises(RuntimeError, match=op + "tau dtype float32 does not match"):
        pt.linalg.householder_product(A, pt.asarray(np.ones(2, dtype=np.float32)))
    with pytest.raises(RuntimeError, match=op + "expected tau to have one dimension less"):
        pt.linalg.householder_product(A, pt.asarray(np.ones((2, 2))))
    with pytest.raises(RuntimeError, match=op + "input must have at least 2 dimensions"):
        pt.linalg.householder_product(pt.asarray(np.ones(4)), pt.asarray(np.ones(2)))
    with pytest.raises(RuntimeError, match=op + "expected the batch dimensions of tau"):
        pt.linalg.householder_product(pt.asarray(np.ones((2, 4, 3))),
                                      pt.asarray(np.ones((5, 2))))
    with pytest.raises(RuntimeError, match=op + "input must be floating point or complex"):
        pt.linalg.householder_product(pt.asarray(np.ones((4, 3), dtype=np.int64)),
                                      pt.asarray(np.ones(2, dtype=np.int64)))
    with pytest.raises(TypeError, match=op + "expected a polyten tensor as tau"):
        pt.linalg.householder_product(A, [1.0, 2.0])


def test_orgqr_is_householder_product():
    """``torch.orgqr`` / ``Tensor.orgqr``: the legacy names of ``householder_product``."""
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((5, 3))
    ta = torch.tensor(a)
    h, tau = torch.geqrf(ta)
    q = pt.orgqr(pt.tensor(h.numpy()), pt.tensor(tau.numpy()))
    np.testing.assert_allclose(q.numpy(), torch.orgqr(h, tau).numpy(), rtol=1e-12, atol=1e-12)
    q2 = pt.tensor(h.numpy()).orgqr(pt.tensor(tau.numpy()))
    np.testing.assert_array_equal(q2.numpy(), q.numpy())
