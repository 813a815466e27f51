"""``linalg.lstsq`` and the LU family against NumPy (float64) and PyTorch, with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
DRIVERS = ["gels", "gelsy", "gelsd", "gelss"]


def _rand(shape, complex_=False):
    a = RNG.standard_normal(shape)
    return a + 1j * RNG.standard_normal(shape) if complex_ else a


# --- lstsq -------------------------------------------------------------------------------
LSTSQ_SHAPES = [((5, 3), (5, 2)), ((3, 5), (3, 2)), ((4, 4), (4, 3)), ((2, 5, 3), (2, 5, 2)),
                ((1, 5, 3), (3, 5, 2)), ((5, 3), (5,)), ((2, 5, 3), (2, 5)), ((0, 3), (0, 2))]


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("shapes", LSTSQ_SHAPES, ids=str)
def test_lstsq_matches_torch_and_numpy(shapes, driver, complex_):
    a, b = _rand(shapes[0], complex_), _rand(shapes[1], complex_)
    r = pt.linalg.lstsq(pt.tensor(a), pt.tensor(b), driver=driver)
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for field in ("solution", "residuals", "rank", "singular_values"):
        x, y = getattr(r, field).numpy(), getattr(t, field).numpy()
        assert x.shape == y.shape and x.dtype == y.dtype, (field, x.shape, y.shape)
        np.testing.assert_allclose(x, y, atol=1e-10, err_msg=field)
    if a.ndim == 2 and b.ndim == 2 and 0 not in a.shape:
        x, res, rank, s = np.linalg.lstsq(a, b, rcond=None)
        np.testing.assert_allclose(r.solution.numpy(), x, atol=1e-12)
        if r.residuals.numel():
            np.testing.assert_allclose(r.residuals.numpy(), res, rtol=1e-10)


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss"])
def test_lstsq_rank_deficient(driver):
    a = _rand((2, 6, 4))
    a[0, :, 3] = a[0, :, 1] + a[0, :, 2]
    b = _rand((2, 6, 2))
    r = pt.linalg.lstsq(pt.tensor(a), pt.tensor(b), driver=driver)
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    assert r.rank.tolist() == [3, 4] == t.rank.tolist()
    assert r.residuals.shape == t.residuals.shape == (0,)  # not every matrix has full rank
    np.testing.assert_allclose(r.solution.numpy(), t.solution.numpy(), atol=1e-10)
    np.testing.assert_allclose(r.solution[0].numpy(), np.linalg.lstsq(a[0], b[0])[0],
                               atol=1e-12)


def test_lstsq_rcond_and_default_driver():
    a, b = _rand((5, 3)), _rand((5, 2))
    r = pt.linalg.lstsq(pt.tensor(a), pt.tensor(b), 0.5, driver="gelsd")
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), 0.5, driver="gelsd")
    assert r.rank.item() == t.rank.item()
    np.testing.assert_allclose(r.solution.numpy(), t.solution.numpy(), atol=1e-12)
    d = pt.linalg.lstsq(pt.tensor(a), pt.tensor(b))  # gelsy on cpu, as torch
    assert d.rank.shape == () and d.residuals.shape == (0,) and d.singular_values.shape == (0,)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("shapes", [((5, 3), (5, 2)), ((3, 5), (3, 2)), ((2, 4, 3), (4,))],
                         ids=str)
def test_lstsq_gradcheck(shapes, driver):
    a = pt.tensor(_rand(shapes[0]), requires_grad=True)
    b = pt.tensor(_rand(shapes[1]), requires_grad=True)

    def f(a, b):
        r = pt.linalg.lstsq(a, b, driver=driver)
        return (r.solution, r.residuals) if r.residuals.numel() else r.solution
    assert gradcheck(f, (a, b))
    assert gradgradcheck(f, (a, b))


@pytest.mark.parametrize("driver", ["gels", "gelsd"])
def test_lstsq_grad_matches_torch(driver):
    a, b = _rand((2, 6, 3)), _rand((2, 6, 2))
    pa, pb = pt.tensor(a, requires_grad=True), pt.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    r = pt.linalg.lstsq(pa, pb, driver=driver)
    t = torch.linalg.lstsq(ta, tb, driver=driver)
    ((r.solution ** 3).sum() + r.residuals.sum()).backward()
    ((t.solution ** 3).sum() + t.residuals.sum()).backward()
    np.testing.assert_allclose(pa.grad.numpy(), ta.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(pb.grad.numpy(), tb.grad.numpy(), atol=1e-10)


def test_lstsq_errors():
    a = pt.randn(4, 3, dtype=pt.float64)
    with pytest.raises(ValueError, match=r"linalg.lstsq: .*\(4, 3\).*4 rows.*\(5, 2\)"):
        pt.linalg.lstsq(a, pt.randn(5, 2, dtype=pt.float64))
    with pytest.raises(ValueError, match="driver must be one of"):
        pt.linalg.lstsq(a, pt.randn(4, 2, dtype=pt.float64), driver="gelsx")
    with pytest.raises(TypeError, match="linalg.lstsq: .*int64"):
        pt.linalg.lstsq(pt.ones(4, 3, dtype=pt.int64), pt.randn(4, 2))


# --- LU ------------------------------------------------------------------------------------
LU_SHAPES = [(4, 4), (2, 3, 3), (5, 3), (3, 5), (1, 1), (2, 0, 0), (6, 6)]


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", LU_SHAPES, ids=str)
def test_lu_factor_and_lu_match_torch(shape, complex_):
    a = _rand(shape, complex_)
    LU, piv = pt.linalg.lu_factor_ex(pt.tensor(a))[:2]
    tLU, tpiv = torch.linalg.lu_factor_ex(torch.tensor(a))[:2]
    assert piv.dtype == pt.int32 and piv.numpy().tolist() == tpiv.numpy().tolist()
    np.testing.assert_allclose(LU.numpy(), tLU.numpy(), atol=1e-12)
    P, L, U = pt.linalg.lu(pt.tensor(a))
    for mine, theirs in zip((P, L, U), torch.linalg.lu(torch.tensor(a))):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-12)
    np.testing.assert_allclose((P @ L @ U).numpy(), a, atol=1e-12)


def test_lu_factor_singular():
    a = pt.ones(3, 3, dtype=pt.float64)
    LU, piv, info = pt.linalg.lu_factor_ex(a)
    t = torch.linalg.lu_factor_ex(torch.ones(3, 3, dtype=torch.float64))
    assert info.item() == t.info.item() == 2
    np.testing.assert_allclose(LU.numpy(), t.LU.numpy())
    with pytest.raises(pt.linalg.LinAlgError, match="linalg.lu_factor: .*singular"):
        pt.linalg.lu_factor(a)
    with pytest.raises(pt.linalg.LinAlgError, match="lu_factor_ex"):
        pt.linalg.lu_factor_ex(a, check_errors=True)


def test_lu_without_pivoting():
    a = _rand((2, 4, 4)) + 4 * np.eye(4)
    P, L, U = pt.linalg.lu(pt.tensor(a), pivot=False)
    np.testing.assert_array_equal(P.numpy(), np.broadcast_to(np.eye(4), (2, 4, 4)))
    np.testing.assert_allclose((L @ U).numpy(), a, atol=1e-12)
    assert pt.linalg.lu_factor(pt.tensor(a), pivot=False).pivots.numpy().tolist() == \
        [[1, 2, 3, 4]] * 2


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_matches_torch_and_numpy(left, adjoint, complex_):
    a, b = _rand((2, 4, 4), complex_), _rand((2, 4, 3) if left else (2, 3, 4), complex_)
    LU, piv = pt.linalg.lu_factor(pt.tensor(a))
    x = pt.linalg.lu_solve(LU, piv, pt.tensor(b), left=left, adjoint=adjoint).numpy()
    tLU, tpiv = torch.linalg.lu_factor(torch.tensor(a))
    tx = torch.linalg.lu_solve(tLU, tpiv, torch.tensor(b), left=left, adjoint=adjoint)
    np.testing.assert_allclose(x, tx.resolve_conj().numpy(), atol=1e-12)
    op = np.conj(np.swapaxes(a, -1, -2)) if adjoint else a
    ref = np.linalg.solve(op, b) if left else np.swapaxes(
        np.linalg.solve(np.swapaxes(op, -1, -2), np.swapaxes(b, -1, -2)), -1, -2)
    np.testing.assert_allclose(x, ref, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_grad_matches_torch(complex_):
    a = _rand((2, 4, 4), complex_)
    pa, ta = pt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss = lambda P, L, U: (L.abs() ** 2).sum() + (U.abs() ** 3).sum()  # noqa: E731
    loss(*pt.linalg.lu(pa)).backward()
    loss(*torch.linalg.lu(ta)).backward()
    np.testing.assert_allclose(pa.grad.numpy(), ta.grad.resolve_conj().numpy(), atol=1e-10)


def test_lu_gradcheck():
    a = pt.tensor(_rand((3, 3)), requires_grad=True)
    b = pt.tensor(_rand((3, 2)), requires_grad=True)
    f = lambda a: pt.linalg.lu(a)[1:]  # noqa: E731
    assert gradcheck(f, (a,)) and gradgradcheck(f, (a,))
    g = lambda a, b: pt.linalg.lu_solve(*pt.linalg.lu_factor(a), b)  # noqa: E731
    assert gradcheck(g, (a, b)) and gradgradcheck(g, (a, b))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 6), (2, 6, 4)],
                         ids=["tall", "wide", "batched-wide", "batched-tall"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_rectangular_grad_matches_torch_and_gradcheck(shape, complex_):
    """Rectangular A = P L U: the wide case moves U2's gradient through L, the tall case
    L2's through U (PyTorch's linalg_lu_backward)."""
    a = _rand(shape, complex_)
    pa, ta = pt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss = lambda P, L, U: (L.abs() ** 2).sum() + (U.abs() ** 3).sum()  # noqa: E731
    loss(*pt.linalg.lu(pa)).backward()
    loss(*torch.linalg.lu(ta)).backward()
    np.testing.assert_allclose(pa.grad.numpy(), ta.grad.resolve_conj().numpy(), atol=1e-10)
    if not complex_:
        x = pt.tensor(a, requires_grad=True)
        f = lambda a: pt.linalg.lu(a)[1:]  # noqa: E731
        assert gradcheck(f, (x,)) and gradgradcheck(f, (x,))


def test_lu_solve_errors():
    LU, piv = pt.linalg.lu_factor(pt.tensor(_rand((3, 3))))
    with pytest.raises(ValueError, match=r"lu_solve: .*3 by 3.*\(4, 2\)"):
        pt.linalg.lu_solve(LU, piv, pt.tensor(_rand((4, 2))))
    with pytest.raises(ValueError, match="lu_solve: pivots must be int32"):
        pt.linalg.lu_solve(LU, piv.to(pt.int64), pt.tensor(_rand((3, 2))))
