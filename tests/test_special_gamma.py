"""The gamma family: lgamma, digamma, polygamma, mvlgamma (and torch.special's names) against
float64 references computed here (math.lgamma, mpmath) and PyTorch, on the cpu backend's
kernels and on the kernel-level defaults (a cpu clone without the three kernels), with
gradients to second order and the error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.special as sps
from conftest import cpu_clone
from polyten.autograd.gradcheck import gradcheck, gradgradcheck

mpmath = pytest.importorskip("mpmath")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
GAMMA = ("lgamma", "digamma", "polygamma")
INF, NAN = math.inf, math.nan

POS = [1e-300, 1e-10, 1e-3, 0.1, 0.5, 0.9, 0.999, 1.0, 1.001, 1.1, 1.4616321449683622, 1.5,
       1.999, 2.0, 2.001, 2.5, 3.0, 4.5, 7.25, 9.99, 10.0, 10.01, 12.5, 33.3, 100.0, 1e5,
       1e10, 1e15]
NEG = [-1e-10, -0.1, -0.5, -0.9, -1.5, -2.457024738220800, -2.5, -3.7, -7.25, -20.5,
       -100.3, -12345.75]
GRID = np.array(POS + NEG)


@pytest.fixture(params=["native", "default"])
def dev(request):
    """The cpu backend's kernels, and the kernel-level defaults (a clone without them)."""
    if request.param == "native":
        yield pt.device("cpu")
        return
    with cpu_clone("gammadefaults", drop=GAMMA) as d:
        yield d


def _check(got, ref, rtol=1e-13, atol=1e-300):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    same_special = np.isnan(got) == np.isnan(ref)
    assert same_special.all(), (got, ref)
    fin = np.isfinite(ref)
    assert np.array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)]), (got, ref)
    err = np.abs(got[fin] - ref[fin]) / np.maximum(np.abs(ref[fin]), atol / rtol)
    assert err.max(initial=0) <= rtol, (err.max(initial=0), got, ref)


def _mp(fn, xs):
    mpmath.mp.dps = 40
    return np.array([float(fn(mpmath.mpf(float(v)))) for v in xs])


def test_lgamma_values(dev):
    x = pt.tensor(GRID, device=dev)
    ref = _mp(lambda v: mpmath.log(abs(mpmath.gamma(v))), GRID)
    # absolute 1e-15 near the roots at 1 and 2 (and the negative ones), relative elsewhere
    _check(pt.lgamma(x).cpu().numpy(), ref, rtol=1e-14, atol=1e-15)
    _check(pt.lgamma(x).cpu().numpy()[:len(POS)], [math.lgamma(v) for v in POS], rtol=2e-15,
           atol=1e-15)
    special = pt.tensor([0.0, -0.0, -1.0, -2.0, -1e300, INF, -INF, NAN, 1e300, 3e305],
                        dtype=pt.float64, device=dev)
    want = [INF, INF, INF, INF, INF, INF, INF, NAN, math.lgamma(1e300), INF]
    got = pt.lgamma(special).cpu().numpy()
    _check(got, want)


def test_digamma_values(dev):
    x = pt.tensor(GRID, device=dev)
    _check(pt.digamma(x).cpu().numpy(), _mp(mpmath.digamma, GRID), rtol=1e-14, atol=1e-15)
    got = pt.digamma(pt.tensor([0.0, -0.0, -1.0, -3.0, -1e300, INF, -INF, NAN, 1e300],
                               dtype=pt.float64, device=dev)).cpu().numpy()
    _check(got, [-INF, INF, NAN, NAN, NAN, INF, NAN, NAN, math.log(1e300)])
    # psi and psi's root
    root = pt.digamma(pt.tensor([1.4616321449683622], dtype=pt.float64, device=dev)).item()
    assert abs(root) < 1e-15


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_polygamma_values(dev, n):
    xs = GRID[np.abs(GRID) < 1e6]
    x = pt.tensor(xs, device=dev)
    ref = _mp(lambda v: mpmath.polygamma(n, v), xs)
    _check(pt.polygamma(n, x).cpu().numpy(), ref, rtol=1e-12)
    sign = 1 if n % 2 else -1
    got = pt.polygamma(n, pt.tensor([0.0, -0.0, -1.0, -4.0, INF, -INF, NAN],
                                    dtype=pt.float64, device=dev))
    _check(got.cpu().numpy(), [sign * INF] * 4 + [0.0, NAN, NAN])
    # trigamma far out: the leading 1/x survives where x^-2 underflows
    if n == 1:
        big = pt.tensor([1e300], dtype=pt.float64, device=dev)
        assert pt.polygamma(1, big).item() == pytest.approx(1e-300)


def test_polygamma_zero_is_digamma(dev):
    x = pt.tensor(GRID, device=dev)
    assert np.array_equal(pt.polygamma(0, x).cpu().numpy(), pt.digamma(x).cpu().numpy())


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_low_precision_rounds_the_float64_value_once(dev, dt):
    xs = np.array([0.3, 1.5, 2.5, 4.0, 7.5, -1.5, -0.25, 20.0])
    x = pt.tensor(xs, device=dev).to(getattr(pt, dt))
    exact = pt.tensor(x.to(pt.float64).cpu().numpy(), device=dev)
    for fn in (pt.lgamma, pt.digamma, lambda t: pt.polygamma(2, t)):
        got = fn(x)
        assert got.dtype == getattr(pt, dt)
        assert np.array_equal(got.to(pt.float64).cpu().numpy(),
                              fn(exact).to(getattr(pt, dt)).to(pt.float64).cpu().numpy())


def test_integers_and_bool_give_the_default_float(dev):
    for v in ([1, 2, 3], [True, False]):
        t = pt.tensor(v, device=dev)
        for fn in (pt.lgamma, pt.digamma, lambda s: pt.polygamma(1, s)):
            assert fn(t).dtype == pt.get_default_dtype()
    assert pt.lgamma(pt.tensor([3], device=dev)).item() == pytest.approx(math.log(2))


def test_against_torch():
    torch = pytest.importorskip("torch")
    xs = np.concatenate([GRID, [0.0, -0.0, -1.0, -2.0, 1e300, INF, -INF, NAN]])
    tx = torch.tensor(xs)
    x = pt.tensor(xs)
    for name in ("lgamma", "digamma"):
        got = getattr(pt, name)(x).numpy()
        want = getattr(torch, name)(tx).numpy()
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        fin = np.isfinite(want)
        assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-13, atol=1e-14)
    for n in (0, 1, 2, 3, 5):
        sel = np.isfinite(xs) & ~((xs <= 0) & (xs == np.floor(xs))) & (np.abs(xs) < 1e6)
        got = pt.polygamma(n, x).numpy()[sel]
        want = torch.polygamma(n, tx).numpy()[sel]
        # torch's trigamma is a short series (~1e-9) and its direct sum for x < 0 cancels
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-14)
    for p in (1, 2, 3, 5):
        v = np.array([2.5, 3.0, 7.25, 40.0])
        np.testing.assert_allclose(pt.mvlgamma(pt.tensor(v), p).numpy(),
                                   torch.mvlgamma(torch.tensor(v), p).numpy(), rtol=1e-13)
    for dt in ("float32", "float16", "bfloat16"):
        v = np.array([0.3, 1.5, 2.5, 4.0, 7.5, -1.5, -0.25])
        a = pt.tensor(v).to(getattr(pt, dt))
        b = torch.tensor(v).to(getattr(torch, dt))
        for name in ("lgamma", "digamma"):
            g = getattr(pt, name)(a).to(pt.float64).numpy()
            w = getattr(torch, name)(b).double().numpy()
            # computed in float64 here, in float32 by torch: one rounding apart at most
            tol = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3}[dt]
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_methods_inplace_and_special_names():
    x = pt.tensor([0.7, 2.5, 9.0], dtype=pt.float64)
    for name in ("lgamma", "digamma"):
        assert np.array_equal(getattr(x, name)().numpy(), getattr(pt, name)(x).numpy())
        y = x.clone()
        assert getattr(y, f"{name}_")() is y
        assert np.array_equal(y.numpy(), getattr(pt, name)(x).numpy())
    assert np.array_equal(x.polygamma(2).numpy(), pt.polygamma(2, x).numpy())
    y = x.clone()
    y.polygamma_(1)
    assert np.array_equal(y.numpy(), pt.polygamma(1, x).numpy())
    z = x + 2
    assert np.array_equal(z.mvlgamma(3).numpy(), pt.mvlgamma(z, 3).numpy())
    w = z.clone()
    w.mvlgamma_(3)
    assert np.array_equal(w.numpy(), pt.mvlgamma(z, 3).numpy())
    assert sps.gammaln is pt.lgamma and sps.psi is pt.digamma and sps.digamma is pt.digamma
    assert sps.polygamma is pt.polygamma
    assert np.array_equal(sps.multigammaln(z, 2).numpy(), pt.mvlgamma(z, 2).numpy())
    for name in ("gammaln", "digamma", "psi", "polygamma", "multigammaln"):
        assert name in sps.__all__
    # mvlgamma(x, p) = p (p - 1) / 4 log(pi) + sum_j lgamma(x - j / 2)
    want = 3 * 2 / 4 * math.log(math.pi) + sum(math.lgamma(3.0 - j / 2) for j in range(3))
    assert pt.mvlgamma(pt.tensor([3.0], dtype=pt.float64), 3).item() == pytest.approx(
        want, rel=1e-14)


def test_errors_name_the_call():
    x = pt.tensor([1.5, 2.5])
    with pytest.raises(ValueError, match=r"polygamma\(n, input\).*non-negative.*n=-1"):
        pt.polygamma(-1, x)
    with pytest.raises(TypeError, match=r"polygamma\(n, input\): n must be an int"):
        pt.polygamma(1.5, x)
    with pytest.raises(ValueError, match=r"polygamma"):
        x.polygamma(-2)
    with pytest.raises(ValueError, match=r"mvlgamma\(input, p=3\).*greater than \(p - 1\) / 2 "
                                         r"= 1.0.*0.5"):
        pt.mvlgamma(pt.tensor([0.5, 3.0]), 3)
    with pytest.raises(ValueError, match=r"mvlgamma.*nan"):
        pt.mvlgamma(pt.tensor([NAN, 3.0]), 1)
    with pytest.raises(ValueError, match=r"mvlgamma\(input, p\): p must be >= 1"):
        pt.mvlgamma(x, 0)
    with pytest.raises(TypeError, match="lgamma"):
        pt.lgamma(pt.tensor([1 + 1j]))
    with pytest.raises(TypeError, match="lgamma"):
        pt.lgamma([1.0])


@pytest.mark.parametrize("fn", [pt.lgamma, pt.digamma, lambda t: pt.polygamma(1, t),
                                lambda t: pt.polygamma(3, t), lambda t: pt.mvlgamma(t * t + 2, 3)],
                         ids=["lgamma", "digamma", "trigamma", "polygamma3", "mvlgamma"])
def test_gradients_first_and_second_order(fn):
    x = pt.tensor([0.35, 1.7, 4.2, -1.3, -2.6], dtype=pt.float64, requires_grad=True)
    assert gradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradients_are_the_next_member():
    x = pt.tensor([0.6, 3.3, -0.4], dtype=pt.float64, requires_grad=True)
    g, = pt.autograd.grad(pt.lgamma(x).sum(), x, create_graph=True)
    assert np.allclose(g.detach().numpy(), pt.digamma(x.detach()).numpy(), rtol=1e-15)
    h, = pt.autograd.grad(g.sum(), x)
    assert np.allclose(h.numpy(), pt.polygamma(1, x.detach()).numpy(), rtol=1e-15)
    g3, = pt.autograd.grad(pt.polygamma(2, x).sum(), x)
    assert np.allclose(g3.numpy(), pt.polygamma(3, x.detach()).numpy(), rtol=1e-15)


def test_defaults_are_what_the_clone_uses():
    """The clone really runs the kernel-level defaults (not the cpu kernels)."""
    from polyten.dispatch import dispatcher
    with cpu_clone("gammadefaults2", drop=GAMMA) as d:
        rows = dispatcher.manifest(d.backend) if hasattr(d, "backend") else None
        x = pt.tensor([0.5, -2.5, 12.0], dtype=pt.float64, device=d)
        assert np.allclose(pt.lgamma(x).cpu().numpy(), pt.lgamma(x.cpu()).numpy(), rtol=1e-14)
        if rows is not None:
            for name in GAMMA:
                assert "default" in str(rows.get(name, "default"))


# ------------------------------------------------------------- gammainc / gammaincc ---
INC_A = [1e-3, 0.5, 1.0, 2.5, 30.0, 3.0, 1e4, 150.0, 7.0]
INC_X = [1e-3, 1e-8, 0.7, 2.5, 10.0, 60.0, 1e4 + 50, 140.0, 7.5]


def test_incomplete_gamma_matches_mpmath():
    mpmath = pytest.importorskip("mpmath")
    a, x = pt.tensor(INC_A, dtype=pt.float64), pt.tensor(INC_X, dtype=pt.float64)
    p = pt.special.gammainc(a, x).numpy()
    q = pt.special.gammaincc(a, x).numpy()
    for i, (ai, xi) in enumerate(zip(INC_A, INC_X)):
        want_p = float(mpmath.gammainc(ai, 0, xi, regularized=True))
        want_q = float(mpmath.gammainc(ai, xi, mpmath.inf, regularized=True))
        # relative accuracy, also of the small tail (Q = 1.6e-23 at a = 3, x = 60)
        tol = 1e-13 if ai < 1000 else 1e-11  # a log x - lgamma(a) cancels for large a
        assert p[i] == pytest.approx(want_p, rel=tol, abs=1e-300), (ai, xi)
        assert q[i] == pytest.approx(want_q, rel=tol, abs=1e-300), (ai, xi)


def test_incomplete_gamma_edges_dtypes_and_torch():
    torch = pytest.importorskip("torch")
    a = [0.0, -1.0, 2.0, 2.0, 2.0, 2.0, math.inf, 0.5]
    x = [1.0, 1.0, 0.0, -1.0, math.inf, math.nan, 1.0, 2.0]
    for fn in ("gammainc", "gammaincc"):
        got = getattr(pt.special, fn)(pt.tensor(a, dtype=pt.float64),
                                      pt.tensor(x, dtype=pt.float64)).numpy()
        want = getattr(torch.special, fn)(torch.tensor(a, dtype=torch.float64),
                                          torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-14)
    # a number and a tensor, and float32 / float16 results
    r = pt.special.gammainc(2.0, pt.tensor([1.0, 3.0]))
    assert r.dtype == pt.float32
    np.testing.assert_allclose(r.numpy(), [1 - 2 / math.e, 1 - 4 * math.exp(-3)], rtol=1e-6)
    h = pt.special.gammaincc(pt.tensor([2.0], dtype=pt.float16), 1.0)
    assert h.dtype == pt.float16 and abs(h.item() - 2 / math.e) < 1e-3
    with pytest.raises(TypeError, match="special.gammainc: expected a tensor"):
        pt.special.gammainc(1.0, 2.0)


def test_incomplete_gamma_gradients():
    from polyten.autograd import gradcheck
    a = pt.tensor([0.7, 2.5, 30.0], dtype=pt.float64, requires_grad=True)
    x = pt.tensor([0.3, 4.0, 25.0], dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda a, x: pt.special.gammainc(a, x), (a, x))
    assert gradcheck(lambda a, x: pt.special.gammaincc(a, x), (a, x))
    # d P / d x is the Gamma(a, 1) density
    pt.special.gammainc(a.detach(), x).sum().backward()
    av, xv = a.detach().numpy(), x.detach().numpy()
    dens = np.exp((av - 1) * np.log(xv) - xv - np.array([math.lgamma(v) for v in av]))
    np.testing.assert_allclose(x.grad.numpy(), dens, rtol=1e-12)
