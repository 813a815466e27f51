"""Gradients of the factorisations (eigh, svd, qr) and what is built on them.

First and second derivatives by ``gradcheck`` / ``gradgradcheck`` in float64 on
well-conditioned inputs (distinct eigenvalues / singular values), with losses that do not
depend on the factors' gauge (signs of real eigenvectors, phases of complex ones); complex
inputs are checked through their real and imaginary parts.  Every gradient is also compared
with PyTorch's for the same loss.
"""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def _rand(shape, complex_=False):
    a = RNG.standard_normal(shape)
    if complex_:
        a = a + 1j * RNG.standard_normal(shape)
    return a


def _hermitian(shape, complex_=False):
    """A Hermitian matrix with well separated eigenvalues (Q diag(1..n) Q^H)."""
    n = shape[-1]
    q, _ = np.linalg.qr(_rand(shape, complex_))
    w = np.arange(1.0, n + 1) * 1.5
    return (q * w[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def _sym(x):
    return (x + x.mH) / 2


def _vs_torch(a, fn_pt, fn_torch=None, atol=1e-10):
    """The gradient of ``fn(A)`` (a real scalar) w.r.t. ``A`` on both frameworks."""
    fn_torch = fn_torch or fn_pt
    p = pt.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    fn_pt(p, pt).backward()
    fn_torch(t, torch).backward()
    diff = np.abs(p.grad.numpy() - t.grad.numpy()).max()
    assert diff < atol, diff
    return diff


# --- losses that are gauge-invariant ------------------------------------------------------
def _eigh_matfun(A, m):
    L, V = m.linalg.eigh(_sym(A))
    return ((V * m.exp(L / 4).unsqueeze(-2).to(V.dtype)) @ V.mH).abs().sum()


def _eigh_abs2(A, m):
    L, V = m.linalg.eigh(_sym(A))
    return (V.abs() ** 2 * m.arange(V.shape[-1], dtype=L.dtype)).sum() + (L ** 2).sum()


def _eigh_values(A, m):
    return (m.linalg.eigh(_sym(A)).eigenvalues ** 3).sum()


def _eigh_vectors_only(A, m):
    return (m.linalg.eigh(_sym(A)).eigenvectors.abs() ** 4).sum()


def _svd_uvh(A, m, full=False):
    U, S, Vh = m.linalg.svd(A, full_matrices=full)
    k = S.shape[-1]
    return (U[..., :, :k] @ Vh[..., :k, :]).abs().sum() + (S ** 2).sum()


def _svd_abs(A, m, full=False):
    U, S, Vh = m.linalg.svd(A, full_matrices=full)
    return (U.abs() ** 2 * 0.5).sum() + (Vh.abs() ** 3).sum()


def _svd_u_only(A, m, full=False):
    U, S, Vh = m.linalg.svd(A, full_matrices=full)
    return (U.abs() ** 3).sum()


def _svd_vh_only(A, m, full=False):
    U, S, Vh = m.linalg.svd(A, full_matrices=full)
    return (Vh.abs() ** 3).sum()


def _qr_both(A, m, mode="reduced"):
    Q, R = m.linalg.qr(A, mode=mode)
    return (Q * Q).real.sum() + (R.abs() ** 2).sum() + R.real.sum()


def _qr_q(A, m, mode="reduced"):
    return (m.linalg.qr(A, mode=mode).Q.real ** 3).sum()


def _qr_r(A, m, mode="reduced"):
    return (m.linalg.qr(A, mode=mode).R.real ** 3).sum()


EIGH_LOSSES = [_eigh_matfun, _eigh_abs2, _eigh_values, _eigh_vectors_only]
SVD_LOSSES = [_svd_uvh, _svd_abs, _svd_u_only, _svd_vh_only]
QR_LOSSES = [_qr_both, _qr_q, _qr_r]
SHAPES = [(4, 4), (5, 3), (3, 5), (2, 4, 3)]


# --- against PyTorch -----------------------------------------------------------------------
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("loss", EIGH_LOSSES, ids=lambda f: f.__name__)
def test_eigh_grad_matches_torch(loss, complex_):
    _vs_torch(_hermitian((2, 4, 4), complex_), loss)


@pytest.mark.parametrize("full", [False, True], ids=["reduced", "full"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("loss", SVD_LOSSES, ids=lambda f: f.__name__)
def test_svd_grad_matches_torch(loss, shape, complex_, full):
    _vs_torch(_rand(shape, complex_), lambda A, m: loss(A, m, full))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("loss", QR_LOSSES, ids=lambda f: f.__name__)
def test_qr_grad_matches_torch(loss, shape, complex_):
    _vs_torch(_rand(shape, complex_), loss)


@pytest.mark.parametrize("shape", [(3, 5), (4, 4)], ids=str)
def test_qr_complete_wide_matches_torch(shape):
    _vs_torch(_rand(shape), lambda A, m: _qr_both(A, m, "complete"))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("name", ["svdvals", "pinv", "eigvalsh", "matrix_norm_nuc", "cond"])
def test_built_on_the_factorisations_match_torch(name, complex_):
    fns = {
        "svdvals": lambda A, m: (m.linalg.svdvals(A) ** 2).sum(),
        "pinv": lambda A, m: m.linalg.pinv(A).abs().sum(),
        "eigvalsh": lambda A, m: (m.linalg.eigvalsh(_sym(A)) ** 3).sum(),
        "matrix_norm_nuc": lambda A, m: m.linalg.matrix_norm(A, "nuc").sum(),
        "cond": lambda A, m: m.linalg.cond(A).sum(),
    }
    shape = (2, 4, 4) if name in ("eigvalsh", "cond") else (2, 5, 3)
    a = _hermitian(shape, complex_) if name == "eigvalsh" else _rand(shape, complex_)
    _vs_torch(a, fns[name])


# --- gradcheck / gradgradcheck -------------------------------------------------------------
def _check(fn, a, complex_):
    """gradcheck and gradgradcheck of the real loss ``fn`` (complex: through re and im)."""
    if complex_:
        re = pt.tensor(a.real.copy(), requires_grad=True)
        im = pt.tensor(a.imag.copy(), requires_grad=True)
        f = lambda x, y: fn(pt.complex(x, y), pt)  # noqa: E731
        inputs = (re, im)
    else:
        f = lambda x: fn(x, pt)  # noqa: E731
        inputs = (pt.tensor(a, requires_grad=True),)
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("loss", EIGH_LOSSES, ids=lambda f: f.__name__)
def test_eigh_gradcheck(loss, complex_):
    _check(loss, _hermitian((3, 3), complex_), complex_)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4)], ids=str)
@pytest.mark.parametrize("loss", [_svd_uvh, _svd_abs], ids=lambda f: f.__name__)
def test_svd_gradcheck(loss, shape, complex_):
    _check(loss, _rand(shape, complex_), complex_)


def test_svd_full_matrices_gradcheck():
    # the columns past min(m, n) get no gradient (as torch): only losses that ignore them
    # are functions of A, so the check uses U_k Vh_k and S
    _check(lambda A, m: _svd_uvh(A, m, full=True), _rand((4, 2)), False)
    _check(lambda A, m: _svd_uvh(A, m, full=True), _rand((2, 4)), False)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4)], ids=str)
@pytest.mark.parametrize("loss", QR_LOSSES, ids=lambda f: f.__name__)
def test_qr_gradcheck(loss, shape, complex_):
    _check(loss, _rand(shape, complex_), complex_)


@pytest.mark.parametrize("name", ["svdvals", "pinv", "eigvalsh"])
def test_built_on_gradcheck(name):
    fns = {"svdvals": lambda A, m: (m.linalg.svdvals(A) ** 2).sum(),
           "pinv": lambda A, m: (m.linalg.pinv(A) ** 2).sum(),
           "eigvalsh": lambda A, m: (m.linalg.eigvalsh(_sym(A)) ** 3).sum()}
    a = _hermitian((3, 3)) if name == "eigvalsh" else _rand((4, 3))
    _check(fns[name], a, False)


def test_outputs_that_are_not_used_get_no_gradient_paths():
    # gradients from one output only: the others pass None to the formulas, not zeros
    a = pt.tensor(_rand((4, 3)), requires_grad=True)
    (g,) = pt.autograd.grad(pt.linalg.svd(a, full_matrices=False).S.sum(), [a])
    U, S, Vh = np.linalg.svd(a.detach().numpy(), full_matrices=False)
    np.testing.assert_allclose(g.numpy(), U @ Vh, atol=1e-12)


# --- errors --------------------------------------------------------------------------------
def test_complex_eigenvectors_phase_dependent_loss_raises():
    A = pt.tensor(_hermitian((3, 3), True), requires_grad=True)
    V = pt.linalg.eigh(A).eigenvectors
    with pytest.raises(RuntimeError, match=r"linalg.eigh backward: .*phase"):
        V.real.sum().backward()


def test_complex_singular_vectors_phase_dependent_loss_raises():
    A = pt.tensor(_rand((3, 3), True), requires_grad=True)
    U = pt.linalg.svd(A).U
    with pytest.raises(RuntimeError, match=r"linalg.svd backward: .*phase"):
        U.real.sum().backward()


def test_qr_mode_r_backward_raises():
    A = pt.tensor(_rand((3, 3)), requires_grad=True)
    R = pt.linalg.qr(A, mode="r").R
    assert R.requires_grad
    with pytest.raises(RuntimeError, match="mode='r'"):
        R.sum().backward()


def test_qr_complete_tall_backward_raises():
    A = pt.tensor(_rand((4, 2)), requires_grad=True)
    Q, R = pt.linalg.qr(A, mode="complete")
    with pytest.raises(RuntimeError, match=r"mode='complete'.*4 by 2"):
        (Q.sum() + R.sum()).backward()
