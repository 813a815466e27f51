"""``polyten.linalg`` functions composed from the primitives (``inv_ex``, ``solve_ex``,
``cholesky_ex``, ``solve_triangular``, ``vander``, ``tensorinv``, ``tensorsolve``, ``cond``,
``matrix_exp``): values and gradients against PyTorch in float64."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt

torch = pytest.importorskip("torch")


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _grad_check(fp, ft, *arrays, rtol=1e-9):
    pa = [pt.tensor(a, requires_grad=True) for a in arrays]
    ta = [torch.tensor(a, requires_grad=True) for a in arrays]
    po, to = fp(*pa), ft(*ta)
    np.testing.assert_allclose(po.detach().numpy(), to.detach().numpy(), rtol=rtol,
                               atol=1e-12)
    w = _r(*tuple(to.shape), seed=7)
    (po * pt.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for a, b in zip(pa, ta):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-10)


def test_ex_forms_report_failures_without_raising():
    a = np.stack([np.eye(3) * 2, np.zeros((3, 3)), _r(3, 3) @ _r(3, 3).T + np.eye(3)])
    A, T = pt.tensor(a), torch.tensor(a)
    r, info = pt.linalg.inv_ex(A)
    tr, tinfo = torch.linalg.inv_ex(T)
    assert info.dtype == pt.int32 and info.tolist()[1] != 0
    np.testing.assert_array_equal(info.numpy() != 0, tinfo.numpy() != 0)
    np.testing.assert_allclose(r.numpy()[[0, 2]], tr.numpy()[[0, 2]], rtol=1e-10)
    with pytest.raises(pt.linalg.LinAlgError, match=r"matrix \(1,\) of the batch"):
        pt.linalg.inv_ex(A, check_errors=True).inverse.tolist()  # a GPU reports at the read
    b = _r(3, 3, 2)
    x, info = pt.linalg.solve_ex(A, pt.tensor(b))
    tx, tinfo = torch.linalg.solve_ex(T, torch.tensor(b))
    np.testing.assert_array_equal(info.numpy() != 0, tinfo.numpy() != 0)
    np.testing.assert_allclose(x.numpy()[[0, 2]], tx.numpy()[[0, 2]], rtol=1e-10)
    spd = np.stack([a[2], -np.eye(3)])
    L, info = pt.linalg.cholesky_ex(pt.tensor(spd))
    tL, tinfo = torch.linalg.cholesky_ex(torch.tensor(spd))
    np.testing.assert_array_equal(info.numpy() != 0, tinfo.numpy() != 0)
    np.testing.assert_allclose(L.numpy()[0], tL.numpy()[0], rtol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(upper, left, unit):
    a = _r(2, 4, 4) + 4 * np.eye(4)
    b = _r(2, 4, 3) if left else _r(2, 3, 4)
    _grad_check(lambda A, B: pt.linalg.solve_triangular(A, B, upper=upper, left=left,
                                                        unitriangular=unit),
                lambda A, B: torch.linalg.solve_triangular(A, B, upper=upper, left=left,
                                                           unitriangular=unit), a, b)


def test_vander_tensorinv_tensorsolve():
    x = _r(2, 4)
    _grad_check(lambda t: pt.linalg.vander(t), lambda t: torch.linalg.vander(t), x)
    _grad_check(lambda t: pt.linalg.vander(t, N=6), lambda t: torch.linalg.vander(t, N=6), x)
    a = _r(4, 6, 8, 3)
    _grad_check(lambda t: pt.linalg.tensorinv(t, ind=2),
                lambda t: torch.linalg.tensorinv(t, ind=2), a, rtol=1e-8)
    a2, b2 = _r(2, 3, 6), _r(2, 3)
    _grad_check(lambda A, B: pt.linalg.tensorsolve(A, B),
                lambda A, B: torch.linalg.tensorsolve(A, B), a2, b2, rtol=1e-8)
    a3 = _r(6, 2, 3)
    _grad_check(lambda A, B: pt.linalg.tensorsolve(A, B, dims=(0,)),
                lambda A, B: torch.linalg.tensorsolve(A, B, dims=(0,)), a3, b2, rtol=1e-8)
    with pytest.raises(ValueError, match="must equal that of the rest"):
        pt.linalg.tensorinv(pt.tensor(_r(2, 3, 4)), ind=1)


@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", float("inf"), -float("inf"), 1, -1])
def test_cond(p):
    a = _r(3, 4, 4)
    np.testing.assert_allclose(pt.linalg.cond(pt.tensor(a), p).numpy(),
                               torch.linalg.cond(torch.tensor(a), p).numpy(), rtol=1e-10)


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_matrix_exp(scale):
    a = _r(2, 5, 5) * scale / 3
    _grad_check(pt.linalg.matrix_exp, torch.linalg.matrix_exp, a, rtol=1e-8)


def test_matrix_exp_complex_and_identities():
    a = _r(4, 4) + 1j * _r(4, 4, seed=1)
    np.testing.assert_allclose(pt.linalg.matrix_exp(pt.tensor(a)).numpy(),
                               torch.linalg.matrix_exp(torch.tensor(a)).numpy(), rtol=1e-10)
    z = pt.linalg.matrix_exp(pt.zeros(3, 3, dtype=pt.float64))
    np.testing.assert_allclose(z.numpy(), np.eye(3), atol=1e-15)
    with pytest.raises(ValueError, match="square matrix"):
        pt.linalg.matrix_exp(pt.zeros(2, 3))
