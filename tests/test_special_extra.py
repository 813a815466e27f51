"""polyten.special: erfcx, log_ndtr, ndtri, Bessel / Airy functions, Hurwitz zeta, the
orthogonal polynomials, and torch.igamma / igammac, against SciPy / mpmath (float64) and
PyTorch (float32 and edge cases)."""

import math

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck

sps = pytest.importorskip("scipy.special")
mp = pytest.importorskip("mpmath")

EPS = np.finfo(np.float64).eps


def _f64(a):
    return pt.asarray(np.asarray(a, dtype=np.float64))


def _run(name, x):
    return getattr(pt.special, name)(_f64(x)).numpy()


def _ulps(got, ref, scale):
    """The largest error in units of ``EPS * scale`` (scale: the size the error is measured
    against, e.g. |ref|, or an envelope near zeros)."""
    return np.max(np.abs(got - ref) / scale / EPS)


RNG = np.random.default_rng(1234)
WIDE = np.concatenate([np.linspace(-40, 40, 2001), RNG.uniform(-30, 30, 1000),
                       np.geomspace(1e-300, 1e300, 301), -np.geomspace(1e-300, 1e300, 301)])


# --- erfcx, log_ndtr, ndtri ------------------------------------------------------------------
def test_erfcx_scipy_and_mpmath():
    x = WIDE[WIDE > -25.0]
    ref = sps.erfcx(x)
    # negative x: exp(x^2) has the condition number 2 x^2 (SciPy rounds x^2 too)
    assert _ulps(_run("erfcx", x), ref, np.abs(ref) * np.where(x < 0, 1 + 2 * x * x, 1.0)) < 16
    mp.mp.dps = 40
    pts = np.array([-26.0, -10.0, -1.0, -1e-20, 0.0, 0.5, 1.2, 1.87, 2.0, 3.5, 50.0, 1e5])
    ref = np.array([float(mp.exp(mp.mpf(v) ** 2) * mp.erfc(mp.mpf(v))) for v in pts])
    # the negative side inherits the condition number 2 x^2 of exp(x^2)
    assert _ulps(_run("erfcx", pts), ref, np.abs(ref) * (1 + 2 * pts ** 2 * (pts < 0))) < 16


def test_erfcx_edges():
    out = _run("erfcx", [-np.inf, -30.0, 0.0, np.inf, np.nan])
    np.testing.assert_allclose(out[:4], [np.inf, np.inf, 1.0, 0.0], rtol=4 * EPS)
    assert np.isnan(out[4])


def test_log_ndtr_accurate_tails():
    x = np.concatenate([np.linspace(-60, 12, 2001), -np.geomspace(1, 1e150, 200)])
    ref = sps.log_ndtr(x)
    # for x > 0 SciPy rounds x / sqrt(2) inside erfc: an error of up to x^2 ulps of its own
    assert _ulps(_run("log_ndtr", x), ref, np.abs(ref) * np.where(x > 0, 1 + x * x, 1.0)) < 32
    mp.mp.dps = 40
    pts = np.array([-1e5, -300.0, -38.0, -5.0, -1.0, 0.0, 3.0, 9.9, 25.0])
    ref = np.array([float(mp.log(mp.ncdf(mp.mpf(v))) if v < 0 else mp.log1p(-mp.ncdf(-mp.mpf(v))))
                    for v in pts])
    assert _ulps(_run("log_ndtr", pts), ref, np.abs(ref)) < 16
    out = _run("log_ndtr", [-np.inf, np.inf, np.nan])
    assert out[0] == -np.inf and out[1] == 0 and np.isnan(out[2])


def test_ndtri_including_subnormal_tail():
    p = np.concatenate([np.linspace(1e-4, 1 - 1e-4, 2001), np.geomspace(5e-324, 0.5, 600),
                        1 - np.geomspace(1e-16, 0.5, 200)])
    ref = sps.ndtri(p)
    assert _ulps(_run("ndtri", p), ref, np.maximum(np.abs(ref), 1e-300)) < 16
    mp.mp.dps = 60
    pts = [1e-300, 1e-100, 0.2, 0.5 - 2 ** -30]
    with mp.workdps(400):
        ref = np.array([float(-mp.sqrt(2) * mp.erfinv(1 - 2 * mp.mpf(v))) for v in pts])
    assert _ulps(_run("ndtri", pts), ref, np.abs(ref)) < 16
    out = _run("ndtri", [0.0, 1.0, 0.5, -0.1, 1.1, np.nan])
    assert out[0] == -np.inf and out[1] == np.inf and out[2] == 0
    assert np.isnan(out[3:]).all()


# --- Bessel and Airy -------------------------------------------------------------------------
def _envelope(x):
    return np.minimum(1.0, np.sqrt(2 / (np.pi * np.abs(x) + 1e-300)))


@pytest.mark.parametrize("name,ref,scale", [
    ("bessel_j0", sps.j0, _envelope),
    ("bessel_j1", sps.j1, lambda x: np.minimum(_envelope(x), np.abs(x) / 2 + 1e-300)),
])
def test_bessel_j(name, ref, scale):
    x = WIDE[np.abs(WIDE) < 200]  # SciPy loses digits of the phase beyond (mpmath: below)
    assert _ulps(_run(name, x), ref(x), scale(x)) < 16


@pytest.mark.parametrize("name,ref,scale", [
    ("bessel_y0", sps.y0, lambda x: np.maximum(_envelope(x), np.abs(np.log(x)))),
    ("bessel_y1", sps.y1, lambda x: np.maximum(_envelope(x), 1 / x)),
])
def test_bessel_y(name, ref, scale):
    x = WIDE[(WIDE > 1e-300) & (WIDE < 200)]
    assert _ulps(_run(name, x), ref(x), scale(x)) < 32


def test_bessel_mpmath_extremes():
    mp.mp.dps = 30
    x = np.concatenate([[1e-300, 1e-8, 0.5, 1.999, 2.0, 2.405, 7.5, 25.0, 1e4, 1e300],
                        np.geomspace(200, 1e200, 40)])
    for name, f in [("bessel_j0", lambda v: mp.besselj(0, v)),
                    ("bessel_j1", lambda v: mp.besselj(1, v)),
                    ("bessel_y0", lambda v: mp.bessely(0, v)),
                    ("bessel_y1", lambda v: mp.bessely(1, v))]:
        ref = np.array([float(f(mp.mpf(v))) for v in x])
        scale = np.maximum(np.abs(ref), _envelope(x))
        assert _ulps(_run(name, x), ref, scale) < 16, name


@pytest.mark.parametrize("name,ref", [
    ("modified_bessel_k0", sps.k0), ("modified_bessel_k1", sps.k1),
    ("scaled_modified_bessel_k0", sps.k0e), ("scaled_modified_bessel_k1", sps.k1e),
    ("modified_bessel_i0", sps.i0), ("modified_bessel_i1", sps.i1),
])
def test_modified_bessel(name, ref):
    x = WIDE[(WIDE > 1e-300) & (WIDE < 700)] if "_k" in name else WIDE[np.abs(WIDE) < 700]
    r = ref(x)
    ok = (np.abs(r) > 1e-300) & np.isfinite(r)
    assert _ulps(_run(name, x)[ok], r[ok], np.abs(r[ok])) < 32


def test_modified_bessel_k_mpmath_and_edges():
    mp.mp.dps = 30
    x = np.array([1e-300, 1e-10, 0.3, 1.99, 2.0, 10.0, 600.0, 1e8, 1e300])
    ref = np.array([float(mp.besselk(1, v) * mp.exp(v)) for v in x])
    assert _ulps(_run("scaled_modified_bessel_k1", x), ref, ref) < 16
    for name in ("modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0",
                 "scaled_modified_bessel_k1"):
        out = _run(name, [0.0, -1.0, np.inf, np.nan])
        assert out[0] == np.inf and np.isnan(out[1]) and out[2] == 0 and np.isnan(out[3])


def test_bessel_edges():
    j0, j1 = _run("bessel_j0", [0.0, -np.inf, np.inf]), _run("bessel_j1", [0.0, -3.0, 3.0])
    np.testing.assert_array_equal(j0, [1.0, 0.0, 0.0])
    assert j1[0] == 0 and j1[1] == -j1[2]
    for name in ("bessel_y0", "bessel_y1"):
        out = _run(name, [0.0, -1.0, np.nan, np.inf])
        assert out[0] == -np.inf and np.isnan(out[1:3]).all() and out[3] == 0


def test_spherical_bessel_j0_and_airy():
    x = WIDE[np.abs(WIDE) < 1e15]
    assert _ulps(_run("spherical_bessel_j0", x), sps.spherical_jn(0, x),
                 np.minimum(1, 1 / np.abs(x))) < 8
    assert _run("spherical_bessel_j0", [0.0])[0] == 1.0
    xa = np.concatenate([np.linspace(-40, 40, 2001), -np.geomspace(1, 1e5, 200),
                         np.geomspace(1, 100, 100)])
    ai = sps.airy(xa)[0]
    zeta = 2 / 3 * np.abs(xa) ** 1.5
    env = np.where(xa < 0, np.abs(xa) ** -0.25 / np.sqrt(np.pi), np.abs(ai))
    # Ai's phase (x < 0) or exponent (x > 0) carries the condition number ~zeta
    assert _ulps(_run("airy_ai", xa), ai, env * (4 + 2 * zeta)) < 16
    mp.mp.dps = 30
    pts = np.array([-2.1, -2.09, 0.0, 1.0, 1.75, 1.76, 5.0])
    ref = np.array([float(mp.airyai(mp.mpf(v))) for v in pts])
    assert _ulps(_run("airy_ai", pts), ref, np.abs(ref)) < 32


# --- zeta ------------------------------------------------------------------------------------
def test_zeta_against_mpmath():
    mp.mp.dps = 30
    s = np.concatenate([1 + np.geomspace(1e-10, 60, 300), RNG.uniform(1, 10, 300)])
    q = np.concatenate([np.geomspace(1e-3, 1e6, 300), RNG.uniform(0.01, 30, 300)])
    ref = np.array([float(mp.zeta(mp.mpf(a), mp.mpf(b))) for a, b in zip(s, q)])
    got = pt.special.zeta(_f64(s), _f64(q)).numpy()
    ok = np.abs(ref) > 1e-290
    assert _ulps(got[ok], ref[ok], np.abs(ref[ok])) < 32


def test_zeta_edges_and_broadcast_match_torch():
    torch = pytest.importorskip("torch")
    xs = [0.5, 1.0, 1.5, 2.0, 3.0, np.inf, np.nan, -2.0]
    qs = [1.0, 0.0, -1.0, -1.5, -2.5, 0.5, np.inf, -np.inf, np.nan, 1e-300, 2.0]
    x, q = np.array(xs)[:, None], np.array(qs)[None, :]
    got = pt.special.zeta(_f64(x), _f64(q)).numpy()
    ref = torch.special.zeta(torch.tensor(x), torch.tensor(q)).numpy()
    ref[5, 10] = 0.0  # zeta(inf, 2) = sum of 2^-inf, 3^-inf, ... = 0 (PyTorch: NaN)
    np.testing.assert_allclose(got, ref, rtol=1e-13, equal_nan=True)
    assert got.shape == (8, 11)
    assert abs(pt.special.zeta(2.0, _f64([1.0])).item() - math.pi ** 2 / 6) < 4e-16
    assert pt.special.zeta(pt.asarray([2, 3]), 1).dtype == pt.get_default_dtype()


# --- polynomials -----------------------------------------------------------------------------
POLYS = {
    "chebyshev_polynomial_t": sps.eval_chebyt, "chebyshev_polynomial_u": sps.eval_chebyu,
    "chebyshev_polynomial_v": lambda n, x: mp_cheb(n, x, "v"),
    "chebyshev_polynomial_w": lambda n, x: mp_cheb(n, x, "w"),
    "shifted_chebyshev_polynomial_t": lambda n, x: sps.eval_chebyt(n, 2 * x - 1),
    "shifted_chebyshev_polynomial_u": lambda n, x: sps.eval_chebyu(n, 2 * x - 1),
    "shifted_chebyshev_polynomial_v": lambda n, x: mp_cheb(n, 2 * x - 1, "v"),
    "shifted_chebyshev_polynomial_w": lambda n, x: mp_cheb(n, 2 * x - 1, "w"),
    "hermite_polynomial_h": sps.eval_hermite, "hermite_polynomial_he": sps.eval_hermitenorm,
    "laguerre_polynomial_l": sps.eval_laguerre, "legendre_polynomial_p": sps.eval_legendre,
}


def mp_cheb(n, x, kind):
    # V_n = U_n - U_{n-1}, W_n = U_n + U_{n-1} (U_{-1} = 0)
    un = sps.eval_chebyu(n, x)
    um = np.where(n > 0, sps.eval_chebyu(np.maximum(n - 1, 0), x), 0.0)
    return un - um if kind == "v" else un + um


@pytest.mark.parametrize("name", sorted(POLYS))
def test_polynomials_against_scipy_and_torch(name):
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-1.5, 1.5, 61), [-1.0, 1.0, 0.0, 1e-3]])[:, None]
    n = np.array([-3, 0, 1, 2, 3, 6, 7, 9, 15, 30])[None, :]
    got = getattr(pt.special, name)(_f64(x), _f64(n)).numpy()
    xb, nb = np.broadcast_arrays(x, n)
    ref = np.where(nb < 0, 0.0, POLYS[name](np.maximum(nb, 0), xb))
    scale = np.maximum(1.0, np.abs(ref)) * 1e-12
    assert np.all(np.abs(got - ref) <= scale), name
    tref = getattr(torch.special, name)(torch.tensor(x), torch.tensor(n)).numpy()
    np.testing.assert_allclose(got, tref, rtol=1e-11, atol=1e-11)
    # scalar n, float n truncated, float32 vs torch
    x32 = np.linspace(-1.2, 1.2, 25).astype(np.float32)
    got32 = getattr(pt.special, name)(pt.asarray(x32), 4.7)
    assert got32.dtype == pt.float32
    t32 = getattr(torch.special, name)(torch.tensor(x32), 4.7).numpy()
    np.testing.assert_allclose(got32.numpy(), t32, rtol=2e-5, atol=2e-5)


def test_polynomial_dtype_and_grad():
    x = _f64([-0.7, 0.2, 1.3]).requires_grad_()
    assert gradcheck(lambda t: pt.special.legendre_polynomial_p(t, 5), (x,))
    assert gradcheck(lambda t: pt.special.chebyshev_polynomial_t(t, 9), (x,))
    assert pt.special.hermite_polynomial_h(pt.asarray([1, 2]), pt.asarray([2, 3])).dtype == \
        pt.get_default_dtype()
    with pytest.raises(TypeError, match="chebyshev_polynomial_t"):
        pt.special.chebyshev_polynomial_t(0.5, 3)


# --- float32 / low precision vs PyTorch ------------------------------------------------------
UNARY = ["erfcx", "log_ndtr", "ndtri", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
         "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
         "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
         "airy_ai"]


@pytest.mark.parametrize("name", UNARY)
def test_float32_matches_torch(name):
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-20, 20, 401), np.linspace(0.001, 0.999, 50)])
    x = x.astype(np.float32)
    got = getattr(pt.special, name)(pt.asarray(x))
    assert got.dtype == pt.float32
    ref = getattr(torch.special, name)(torch.tensor(x)).numpy()
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(ref))
    # oscillating functions: errors measured against an O(1e-2) floor near their zeros
    scale = np.maximum(np.abs(ref[fin]), 1e-2 if "bessel_j" in name or "y" in name
                       or "airy" in name else 1e-30)
    assert np.max(np.abs(got.numpy()[fin] - ref[fin]) / scale) < 3e-4
    # integers give the default dtype; float16 is computed in float32 and rounded
    assert getattr(pt.special, name)(pt.asarray([1, 2])).dtype == pt.get_default_dtype()
    h = getattr(pt.special, name)(pt.asarray(x[:50]).to(pt.float16))
    assert h.dtype == pt.float16


# --- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,points", [
    ("erfcx", [-3.0, -0.5, 0.7, 1.9, 2.5, 8.0]), ("log_ndtr", [-30.0, -2.0, -0.5, 1.0, 6.0]),
    ("ndtri", [1e-10, 0.1, 0.3, 0.5, 0.9]),
    ("bessel_j0", [-3.0, 0.5, 1.9, 2.1, 10.0]), ("bessel_j1", [-3.0, 0.0, 0.5, 2.1, 10.0]),
    ("bessel_y0", [0.5, 1.9, 2.1, 10.0]), ("bessel_y1", [0.5, 1.9, 2.1, 10.0]),
    ("modified_bessel_k0", [0.5, 1.9, 2.1, 10.0]), ("modified_bessel_k1", [0.5, 2.1, 10.0]),
    ("scaled_modified_bessel_k0", [0.5, 2.1, 10.0]),
    ("scaled_modified_bessel_k1", [0.5, 2.1, 10.0]),
    ("spherical_bessel_j0", [-2.0, 0.0, 0.3, 0.6, 5.0]),
])
def test_gradients(name, points):
    x = _f64(points).requires_grad_()
    assert gradcheck(getattr(pt.special, name), (x,), rtol=1e-5)


def test_second_derivative_and_reference_values():
    x = _f64([0.5, 3.0]).requires_grad_()
    (g,) = pt.autograd.grad(pt.special.bessel_j0(x).sum(), (x,), create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), -sps.j1([0.5, 3.0]), rtol=1e-14)
    (h,) = pt.autograd.grad(g.sum(), (x,))
    # J0'' = -J1' = -(J0 - J1 / x)
    ref = -(sps.j0([0.5, 3.0]) - sps.j1([0.5, 3.0]) / np.array([0.5, 3.0]))
    np.testing.assert_allclose(h.numpy(), ref, rtol=1e-13)


def test_missing_derivatives_raise():
    x = _f64([0.5]).requires_grad_()
    with pytest.raises(RuntimeError, match="airy_ai"):
        pt.special.airy_ai(x).sum().backward()
    s = _f64([2.5]).requires_grad_()
    with pytest.raises(RuntimeError, match="zeta"):
        pt.special.zeta(s, 1.5).sum().backward()
    q = _f64([1.5, 3.0]).requires_grad_()
    assert gradcheck(lambda t: pt.special.zeta(2.5, t), (q,))


def test_bad_inputs():
    with pytest.raises(TypeError, match="erfcx"):
        pt.special.erfcx(1.0)
    with pytest.raises(TypeError, match="bessel_j0.*complex"):
        pt.special.bessel_j0(pt.asarray([1 + 1j]))
    with pytest.raises(TypeError, match="zeta"):
        pt.special.zeta(2.0, 1.0)


# --- igamma / igammac ------------------------------------------------------------------------
def test_igamma_igammac_and_methods():
    a = _f64([0.5, 2.0, 10.0])
    x = _f64([0.3, 2.5, 12.0])
    np.testing.assert_allclose(pt.igamma(a, x).numpy(), sps.gammainc(a.numpy(), x.numpy()),
                               rtol=1e-13)
    np.testing.assert_allclose(a.igammac(x).numpy(), sps.gammaincc(a.numpy(), x.numpy()),
                               rtol=1e-13)
    b = a.clone()
    b.igamma_(x)
    np.testing.assert_array_equal(b.numpy(), pt.igamma(a, x).numpy())
    c = a.clone()
    c.igammac_(x)
    np.testing.assert_array_equal(c.numpy(), pt.igammac(a, x).numpy())
    xr = x.clone().requires_grad_()
    assert gradcheck(lambda t: pt.igamma(a, t), (xr,))
