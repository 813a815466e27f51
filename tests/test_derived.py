"""PyTorch functions composed from other polyten ops (``polyten/api/derived.py``): values and
gradients against PyTorch, in float64, and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt

torch = pytest.importorskip("torch")


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _both(*arrays, grad=False):
    p = [pt.tensor(a, requires_grad=grad and np.issubdtype(np.asarray(a).dtype, np.floating))
         for a in arrays]
    t = [torch.tensor(a, requires_grad=grad and np.issubdtype(np.asarray(a).dtype, np.floating))
         for a in arrays]
    return p, t


def _np(x):
    if isinstance(x, (tuple, list)):
        return [_np(v) for v in x]
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _check(fn_pt, fn_t, arrays, grad=True, rtol=1e-10, atol=1e-12):
    """Values, and gradients of sum(out * w) with respect to every float input."""
    p, t = _both(*arrays, grad=grad)
    op, ot = fn_pt(*p), fn_t(*t)
    for a, b in zip(*(_np(o) if isinstance(o, (tuple, list)) else [_np(o)]
                      for o in (op, ot))):
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if not grad:
        return
    outs_p = op if isinstance(op, (tuple, list)) else (op,)
    outs_t = ot if isinstance(ot, (tuple, list)) else (ot,)
    w = _r(*outs_p[0].shape, seed=9) if outs_p[0].ndim else np.array(0.7)
    (outs_p[0] * pt.tensor(w)).sum().backward()
    (outs_t[0] * torch.tensor(w)).sum().backward()
    for a, b in zip(p, t):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)


CASES = {
    "addmm": (lambda i, a, b: pt.addmm(i, a, b, beta=0.5, alpha=2.0),
              lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0),
              (_r(3, 4), _r(3, 5, seed=1), _r(5, 4, seed=2))),
    "addmm_beta0": (lambda i, a, b: pt.addmm(i * np.nan, a, b, beta=0),
                    lambda i, a, b: torch.addmm(i * np.nan, a, b, beta=0),
                    (_r(3, 4), _r(3, 5, seed=1), _r(5, 4, seed=2))),
    "addmv": (lambda i, a, v: pt.addmv(i, a, v, alpha=3), lambda i, a, v: torch.addmv(
        i, a, v, alpha=3), (_r(3), _r(3, 5, seed=1), _r(5, seed=2))),
    "baddbmm": (lambda i, a, b: pt.baddbmm(i, a, b, beta=2), lambda i, a, b: torch.baddbmm(
        i, a, b, beta=2), (_r(2, 3, 4), _r(2, 3, 5, seed=1), _r(2, 5, 4, seed=2))),
    "addbmm": (lambda i, a, b: pt.addbmm(i, a, b), lambda i, a, b: torch.addbmm(i, a, b),
               (_r(3, 4), _r(2, 3, 5, seed=1), _r(2, 5, 4, seed=2))),
    "frac": (pt.frac, torch.frac, (_r(4, 5) * 3,)),
    "sgn_complex": (pt.sgn, torch.sgn, (_r(5) + 1j * _r(5, seed=1),)),
    "logit": (lambda x: pt.logit(x, eps=1e-3), lambda x: torch.logit(x, eps=1e-3),
              (np.random.default_rng(0).uniform(0, 1, (4, 5)),)),
    "xlogy": (pt.xlogy, torch.xlogy, (np.array([0.0, 1.5, 2.0, 0.0]),
                                      np.array([0.0, 2.0, np.nan, np.nan]))),
    "xlogy_grad": (pt.xlogy, torch.xlogy, (np.array([0.0, 1.5, 2.0]), np.array([2.0, 0.5, 3.0]))),
    "sinc": (pt.sinc, torch.sinc, (np.array([0.0, 0.5, -1.25, 3.0]),)),
    "rot90": (lambda x: pt.rot90(x, 1, (0, 2)), lambda x: torch.rot90(x, 1, (0, 2)),
              (_r(2, 3, 4),)),
    "rot90_k3": (lambda x: x.rot90(-1), lambda x: x.rot90(-1), (_r(3, 4),)),
    "kthvalue": (lambda x: pt.kthvalue(x, 2, 1, keepdim=True), lambda x: torch.kthvalue(
        x, 2, 1, keepdim=True), (_r(3, 5),)),
    "msort": (pt.msort, lambda x: torch.sort(x, 0).values, (_r(4, 3),)),
    "quantile": (lambda x: pt.quantile(x, pt.tensor([0.1, 0.5, 0.9], dtype=pt.float64), 1),
                 lambda x: torch.quantile(x, torch.tensor([0.1, 0.5, 0.9],
                                                          dtype=torch.float64), 1),
                 (_r(3, 7),)),
    "quantile_all": (lambda x: pt.quantile(x, 0.3), lambda x: torch.quantile(x, 0.3),
                     (_r(3, 7),)),
    "trapezoid": (lambda y, x: pt.trapezoid(y, x), lambda y, x: torch.trapezoid(y, x),
                  (_r(3, 6), np.cumsum(np.abs(_r(6, seed=1))))),
    "cumulative_trapezoid": (lambda y: pt.cumulative_trapezoid(y, dx=0.5, dim=0),
                             lambda y: torch.cumulative_trapezoid(y, dx=0.5, dim=0),
                             (_r(5, 3),)),
    "cov": (pt.cov, torch.cov, (_r(3, 8),)),
    "cov_weights": (lambda x, a: pt.cov(x, fweights=pt.tensor([1, 2, 1, 3, 1, 1]),
                                        aweights=a, correction=1),
                    lambda x, a: torch.cov(x, fweights=torch.tensor([1, 2, 1, 3, 1, 1]),
                                           aweights=a, correction=1),
                    (_r(2, 6), np.abs(_r(6, seed=3)) + 0.1)),
    "corrcoef": (pt.corrcoef, torch.corrcoef, (_r(3, 8),)),
    "index_fill": (lambda x: pt.index_fill(x, 1, pt.tensor([0, 2, 2]), -1.5),
                   lambda x: torch.index_fill(x, 1, torch.tensor([0, 2, 2]), -1.5),
                   (_r(3, 4),)),
    "masked_scatter": (lambda x, s: pt.masked_scatter(x, pt.tensor(_MASK), s),
                       lambda x, s: torch.masked_scatter(x, torch.tensor(_MASK), s),
                       (_r(3, 4), _r(12, seed=1))),
    "renorm": (lambda x: pt.renorm(x, 2, 0, 1.0), lambda x: torch.renorm(x, 2, 0, 1.0),
               (_r(3, 4) * 2,)),
    "block_diag": (pt.block_diag, torch.block_diag, (_r(2, 3), _r(1, seed=1),
                                                     _r(3, 2, seed=2))),
    "vander": (lambda x: pt.vander(x, 4), lambda x: torch.linalg.vander(x, N=4).flip(1),
               (_r(5),)),
    "diag_embed": (lambda x: pt.diag_embed(x, 1, 0, 2), lambda x: torch.diag_embed(
        x, 1, 0, 2), (_r(2, 3),)),
    "diagflat": (lambda x: pt.diagflat(x, -1), lambda x: torch.diagflat(x, -1), (_r(2, 2),)),
    "aminmax": (lambda x: pt.aminmax(x, dim=1), lambda x: torch.aminmax(x, dim=1), (_r(3, 4),)),
    "cartesian_prod": (pt.cartesian_prod, torch.cartesian_prod, (_r(2), _r(3, seed=1))),
    "combinations": (lambda x: pt.combinations(x, 2), lambda x: torch.combinations(x, 2),
                     (_r(4),)),
    "combinations_r": (lambda x: pt.combinations(x, 3, with_replacement=True),
                       lambda x: torch.combinations(x, 3, with_replacement=True), (_r(3),)),
}
_MASK = np.random.default_rng(5).random((3, 4)) > 0.5


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch(name):
    fp, ft, arrays = CASES[name]
    # xlogy: the values at x == 0 (y == 0 or nan); its gradient (torch's is nan at 0 / 0) is
    # checked away from there by xlogy_grad
    _check(fp, ft, arrays, grad=name not in ("aminmax", "sgn_complex", "xlogy"))


def test_quantile_interpolations_and_nan():
    a = _r(4, 9)
    a[1, 3] = np.nan
    q = [0.0, 0.25, 0.5, 0.77, 1.0]
    for mode in ("linear", "lower", "higher", "midpoint", "nearest"):
        got = pt.quantile(pt.tensor(a), pt.tensor(q, dtype=pt.float64), dim=1, keepdim=True,
                          interpolation=mode)
        want = torch.quantile(torch.tensor(a), torch.tensor(q, dtype=torch.float64), dim=1,
                              keepdim=True, interpolation=mode)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="q must be in the range"):
        pt.quantile(pt.tensor(a), 1.5)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        pt.quantile(pt.tensor(a), 0.5, interpolation="cubic")
    with pytest.raises(TypeError, match="float32 or float64"):
        pt.quantile(pt.tensor([1, 2]), 0.5)


def test_counting_and_index_construction():
    x = np.array([0, 3, 1, 3, 3, 7])
    w = _r(6)
    np.testing.assert_array_equal(pt.bincount(pt.tensor(x)).numpy(),
                                  torch.bincount(torch.tensor(x)).numpy())
    np.testing.assert_allclose(pt.bincount(pt.tensor(x), pt.tensor(w), minlength=10).numpy(),
                               torch.bincount(torch.tensor(x), torch.tensor(w),
                                              minlength=10).numpy(), rtol=1e-12)
    assert pt.bincount(pt.tensor(x)).dtype == pt.int64
    with pytest.raises(ValueError, match="non-negative"):
        pt.bincount(pt.tensor([1, -1]))
    b = np.array([1.0, 3.0, 5.0, 7.0])
    v = np.array([[0.5, 3.0, 6.0], [7.0, 8.0, 1.0]])
    for right in (False, True):
        np.testing.assert_array_equal(
            pt.bucketize(pt.tensor(v), pt.tensor(b), right=right).numpy(),
            torch.bucketize(torch.tensor(v), torch.tensor(b), right=right).numpy())
    assert pt.bucketize(pt.tensor(v), pt.tensor(b), out_int32=True).dtype == pt.int32
    h = _r(200)
    np.testing.assert_allclose(pt.histc(pt.tensor(h), bins=7, min=-1, max=2).numpy(),
                               torch.histc(torch.tensor(h), bins=7, min=-1, max=2).numpy())
    np.testing.assert_allclose(pt.histc(pt.tensor(h), bins=5).numpy(),
                               torch.histc(torch.tensor(h), bins=5).numpy())
    for args in [(4, 4), (3, 5, 1), (5, 3, -2), (0, 3)]:
        np.testing.assert_array_equal(pt.tril_indices(*args).numpy(),
                                      torch.tril_indices(*args).numpy())
        np.testing.assert_array_equal(pt.triu_indices(*args).numpy(),
                                      torch.triu_indices(*args).numpy())


def test_splits_and_heaviside():
    a = _r(4, 6, 2)
    x, t = pt.tensor(a), torch.tensor(a)
    for fp, ft, arg in [(pt.hsplit, torch.hsplit, 3), (pt.vsplit, torch.vsplit, [1, 3]),
                        (pt.dsplit, torch.dsplit, 2)]:
        got, want = fp(x, arg), ft(t, arg)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    with pytest.raises(ValueError, match="not divisible into 4 equal parts"):
        pt.hsplit(x, 4)
    v = np.array([-1.5, 0.0, 2.0, 0.0])
    np.testing.assert_array_equal(
        pt.heaviside(pt.tensor(v), pt.tensor([0.5], dtype=pt.float64)).numpy(),
        torch.heaviside(torch.tensor(v), torch.tensor([0.5], dtype=torch.float64)).numpy())


def test_methods_and_errors():
    x = pt.tensor(_r(3, 4))
    assert x.kthvalue(1).values.shape == (3,)
    assert x.aminmax().min.item() == x.min().item()
    assert x.frac().shape == x.shape and x.rot90().shape == (4, 3)
    with pytest.raises(IndexError, match=r"kthvalue: k \(5\) is out of range"):
        x.kthvalue(5)
    with pytest.raises(ValueError, match="addmm: mat1 must be a matrix"):
        pt.addmm(x, pt.ones(3), x)
    with pytest.raises(ValueError, match="the two dims must differ"):
        x.rot90(1, (1, 1))
    with pytest.raises(TypeError, match="masked_scatter: mask must be a bool tensor"):
        x.masked_scatter(pt.ones(3, 4), x)
    with pytest.raises(ValueError, match="combinations: expected a 1-D"):
        pt.combinations(x)


@pytest.mark.parametrize("fn", ["cummax", "cummin"])
def test_cummax_cummin(fn):
    a = np.array([[1.0, 3.0, 2.0, 3.0, 0.5, np.nan, 4.0, np.nan, -1.0],
                  [2.0, 2.0, 1.0, 5.0, 5.0, 0.0, 7.0, 7.0, 6.0]])
    pv, pi = getattr(pt, fn)(pt.tensor(a), 1)
    tv, ti = getattr(torch, fn)(torch.tensor(a), 1)
    np.testing.assert_array_equal(pv.numpy(), tv.numpy())
    np.testing.assert_array_equal(pi.numpy(), ti.numpy())
    ints = np.random.default_rng(3).integers(0, 4, (3, 17))
    for d in (0, 1):
        pv, pi = getattr(pt, fn)(pt.tensor(ints), d)
        tv, ti = getattr(torch, fn)(torch.tensor(ints), d)
        np.testing.assert_array_equal(pv.numpy(), tv.numpy())
        np.testing.assert_array_equal(pi.numpy(), ti.numpy())
    x = _r(4, 6)
    _check(lambda t: getattr(t, fn)(0).values, lambda t: getattr(t, fn)(0).values, (x,))


def test_logcumsumexp_is_stable_and_differentiable():
    a = np.array([[-1000.0, 0.0, 1000.0, 1.0, -5.0]])
    np.testing.assert_allclose(pt.logcumsumexp(pt.tensor(a), 1).numpy(),
                               torch.logcumsumexp(torch.tensor(a), 1).numpy(), rtol=1e-12)
    _check(lambda t: pt.logcumsumexp(t, 0), lambda t: torch.logcumsumexp(t, 0),
           (_r(7, 3),))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_cdist(p):
    a, b = _r(2, 5, 3), _r(2, 4, 3, seed=1)
    b[0, 0] = a[0, 1]  # a zero distance: gradient 0 there, as torch
    _check(lambda x, y: pt.cdist(x, y, p), lambda x, y: torch.cdist(x, y, p), (a, b))


def test_nanmedian():
    a = np.array([[3.0, np.nan, 1.0, 2.0], [np.nan, np.nan, np.nan, np.nan],
                  [4.0, 1.0, 2.0, 3.0]])
    pv, pi = pt.nanmedian(pt.tensor(a), 1)
    tv, ti = torch.nanmedian(torch.tensor(a), 1)
    np.testing.assert_array_equal(pv.numpy(), tv.numpy())
    np.testing.assert_array_equal(pi.numpy()[[0, 2]], ti.numpy()[[0, 2]])
    assert pt.nanmedian(pt.tensor(a)).item() == torch.nanmedian(torch.tensor(a)).item()
    assert pt.nanmedian(pt.tensor(a), 1, keepdim=True).values.shape == (3, 1)
    _check(lambda t: t.nanmedian(0).values, lambda t: t.nanmedian(0).values, (_r(5, 3),))


def test_unique_consecutive():
    a = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    for kw in ({}, {"return_inverse": True}, {"return_counts": True},
               {"return_inverse": True, "return_counts": True}):
        got = pt.unique_consecutive(pt.tensor(a), **kw)
        want = torch.unique_consecutive(torch.tensor(a), **kw)
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    m = np.array([[1, 1, 2, 2, 2], [0, 0, 1, 1, 3]])
    for d in (0, 1):
        got = pt.unique_consecutive(pt.tensor(m), return_counts=True, dim=d)
        want = torch.unique_consecutive(torch.tensor(m), return_counts=True, dim=d)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_tensor_unfold():
    a = _r(3, 10)
    for dim, size, step in [(1, 4, 2), (0, 2, 1), (1, 10, 3), (-1, 1, 4)]:
        _check(lambda t: t.unfold(dim, size, step), lambda t: t.unfold(dim, size, step),
               (a,))
    with pytest.raises(ValueError, match=r"unfold: size \(11\) must be in \[0, 10\]"):
        pt.tensor(a).unfold(1, 11, 1)


def test_small_elementwise_compositions():
    a = np.array([1.0, np.nan, 3.0, np.nan, -0.5])
    b = np.array([2.0, 1.0, np.nan, np.nan, -0.7])
    for fn in ("fmax", "fmin"):
        np.testing.assert_array_equal(getattr(pt, fn)(pt.tensor(a), pt.tensor(b)).numpy(),
                                      getattr(torch, fn)(torch.tensor(a), torch.tensor(b)))
    e = np.array([3, -1, 0, 10])
    np.testing.assert_array_equal(pt.ldexp(pt.tensor(b[:4] * 0 + 1.5), pt.tensor(e)).numpy(),
                                  torch.ldexp(torch.tensor(b[:4] * 0 + 1.5),
                                              torch.tensor(e)).numpy())
    d = np.array([0.0, 90.0, -180.0, 45.5])
    np.testing.assert_allclose(pt.deg2rad(pt.tensor(d)).numpy(),
                               torch.deg2rad(torch.tensor(d)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(pt.rad2deg(pt.tensor(d)).numpy(),
                               torch.rad2deg(torch.tensor(d)).numpy(), rtol=1e-15)
    r, i = _r(4), _r(4, seed=1)
    c = pt.complex(pt.tensor(r), pt.tensor(i))
    assert c.dtype == pt.complex128
    np.testing.assert_array_equal(c.numpy(), torch.complex(torch.tensor(r),
                                                           torch.tensor(i)).numpy())
    np.testing.assert_allclose(pt.polar(pt.tensor(np.abs(r)), pt.tensor(i)).numpy(),
                               torch.polar(torch.tensor(np.abs(r)), torch.tensor(i)).numpy(),
                               rtol=1e-14)
    with pytest.raises(TypeError, match="both be float32 or both float64"):
        pt.complex(pt.tensor([1.0]), pt.tensor([1.0], dtype=pt.float64))
    _check(pt.fmax, torch.fmax, (_r(3, 4), _r(3, 4, seed=2)))
