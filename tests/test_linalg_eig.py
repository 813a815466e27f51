"""``polyten.linalg.eig`` / ``eigvals`` (the ``linalg_eig`` op) and their gradients.

Values against NumPy in float64 (the eigen-equation, unit-norm eigenvectors, eigenvalues
sorted: geev's order is not specified) and against PyTorch; gradients of losses that do not
depend on the eigenvectors' phases (``V -> V e^(i phi)`` per column) against PyTorch's and by
``gradcheck`` / ``gradgradcheck`` (complex inputs through their real and imaginary parts), on
matrices with distinct eigenvalues; the error paths.
"""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(11)


def _rand(shape, complex_=False):
    a = RNG.standard_normal(shape)
    if complex_:
        a = a + 1j * RNG.standard_normal(shape)
    return a


def _residual(a, L, V):
    """max |A V - V diag(L)| / max |A|, and max | |v_i| - 1 |."""
    res = np.abs(a @ V - V * L[..., None, :]).max() / max(np.abs(a).max(), 1e-300)
    return res, np.abs(np.linalg.norm(V, axis=-2) - 1).max()


def _matched(w, ref):
    """``w`` reordered to ``ref``'s order per matrix (the nearest unused eigenvalue): sorting
    is fragile where eigenvalues share a real part up to rounding (conjugate pairs)."""
    return np.take_along_axis(w, _order(w, ref), -1)


def _order(w, ref):
    """Indices ``p`` with ``w[..., p]`` closest to ``ref`` (see :func:`_matched`)."""
    out = np.empty(ref.shape, np.int64)
    for idx in np.ndindex(*ref.shape[:-1]):
        left = list(range(w.shape[-1]))
        for j, r in enumerate(ref[idx]):
            out[idx + (j,)] = left.pop(int(np.argmin([abs(w[idx + (k,)] - r) for k in left])))
    return out


# --- values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,cdtype,tol", [
    ("float32", "complex64", 2e-6), ("float64", "complex128", 1e-14),
    ("complex64", "complex64", 2e-6), ("complex128", "complex128", 1e-14)])
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (6, 6), (2, 3, 5, 5)], ids=str)
def test_eig_matches_numpy(shape, dtype, cdtype, tol):
    a = _rand(shape, dtype.startswith("complex")).astype(dtype)
    L, V = pt.linalg.eig(pt.tensor(a))
    assert L.dtype.name == cdtype and V.dtype.name == cdtype
    assert tuple(L.shape) == shape[:-1] and tuple(V.shape) == shape
    Lh, Vh = L.numpy(), V.numpy()
    wide = a.astype(np.complex128)
    res, norm = _residual(wide, Lh.astype(np.complex128), Vh.astype(np.complex128))
    assert res < 20 * tol and norm < 10 * tol, (res, norm)
    ref = np.linalg.eigvals(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64))
    np.testing.assert_allclose(_matched(Lh.astype(np.complex128), ref), ref,
                               rtol=100 * tol, atol=100 * tol)
    # eigvals: the same eigenvalues, in the same order
    w = pt.linalg.eigvals(pt.tensor(a))
    assert w.dtype.name == cdtype
    np.testing.assert_allclose(w.numpy(), Lh, rtol=10 * tol, atol=10 * tol)


def test_real_input_with_real_eigenvalues_is_still_complex():
    # NumPy returns real arrays here; torch (and polyten) complex ones
    a = np.array([[2.0, 1.0], [0.0, 3.0]])
    L, V = pt.linalg.eig(pt.tensor(a))
    assert L.dtype == pt.complex128 and V.dtype == pt.complex128
    np.testing.assert_allclose(np.sort(L.numpy().real), [2.0, 3.0])
    assert np.all(L.numpy().imag == 0)
    a32 = pt.tensor(a, dtype=pt.float32)
    assert pt.linalg.eigvals(a32).dtype == pt.complex64


def test_complex_pair_of_a_real_matrix():
    a = np.array([[0.0, 1.0], [-1.0, 0.0]])
    L, V = pt.linalg.eig(pt.tensor(a))
    np.testing.assert_allclose(np.sort_complex(L.numpy()), [-1j, 1j], atol=1e-15)
    res, norm = _residual(a, L.numpy(), V.numpy())
    assert res < 1e-15 and norm < 1e-15


def test_non_contiguous_and_empty_inputs():
    a = _rand((4, 4))
    L, V = pt.linalg.eig(pt.tensor(a).mT)
    res, _ = _residual(a.T, L.numpy(), V.numpy())
    assert res < 1e-14
    for shape in [(0, 0), (3, 0, 0), (0, 2, 2)]:
        L, V = pt.linalg.eig(pt.zeros(shape))
        assert tuple(L.shape) == shape[:-1] and tuple(V.shape) == shape
        assert L.dtype == pt.complex64 and V.dtype == pt.complex64
        assert tuple(pt.linalg.eigvals(pt.zeros(shape, dtype=pt.float64)).shape) == shape[:-1]


def test_result_is_a_named_tuple():
    r = pt.linalg.eig(pt.eye(2))
    L, V = r
    assert r.eigenvalues is L and r.eigenvectors is V
    assert type(r).__module__ == "polyten.return_types"



def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_eigenvalues_match_torch(complex_):
    torch = _torch()
    a = _rand((3, 5, 5), complex_)
    got = pt.linalg.eigvals(pt.tensor(a)).numpy()
    want = torch.linalg.eigvals(torch.tensor(a)).numpy()
    np.testing.assert_allclose(_matched(got, want), want, rtol=1e-12, atol=1e-12)
    L, V = pt.linalg.eig(pt.tensor(a))
    tL, tV = torch.linalg.eig(torch.tensor(a))
    # the same eigenvectors up to their phases: |V| column by column, matched by eigenvalue
    p = _order(L.numpy(), tL.numpy())
    np.testing.assert_allclose(np.take_along_axis(L.numpy(), p, -1), tL.numpy(), rtol=1e-12,
                               atol=1e-12)
    vp = np.take_along_axis(V.numpy(), p[..., None, :], -1)
    np.testing.assert_allclose(np.abs(vp), np.abs(tV.numpy()), atol=1e-12)


# --- gradients: phase-invariant losses ----------------------------------------------------
def _values(A, m):
    return (m.linalg.eig(A).eigenvalues ** 2).sum().real


def _abs2(A, m):
    L, V = m.linalg.eig(A)
    w = m.arange(V.shape[-1], dtype=L.real.dtype) + 1
    return (V.abs() ** 2 * w).sum() + (L ** 2).sum().real + L.imag.abs().sum()


def _vectors_only(A, m):
    return (m.linalg.eig(A).eigenvectors.abs() ** 3).sum()


def _matfun(A, m):  # V f(L) V^-1 does not depend on the eigenvectors' phases nor norms
    L, V = m.linalg.eig(A)
    return (V @ (m.exp(L / 4).unsqueeze(-1) * m.linalg.inv(V))).real.sum()


def _eigvals(A, m):
    w = m.linalg.eigvals(A)
    return (w ** 3).sum().real + w.imag.abs().sum()


LOSSES = [_values, _abs2, _vectors_only, _matfun, _eigvals]


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_gradients_match_torch(loss, complex_):
    torch = _torch()
    a = _rand((2, 4, 4), complex_)
    p = pt.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    loss(p, pt).backward()
    loss(t, torch).backward()
    assert p.grad.dtype == p.dtype
    np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)


def _check(fn, a, complex_):
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
@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_gradcheck(loss, complex_):
    _check(loss, _rand((3, 3), complex_), complex_)


def test_gradcheck_batched_outputs():
    # several outputs at once (L's parts and |V|), a batch of two
    a = pt.tensor(_rand((2, 3, 3)), requires_grad=True)

    def f(x):
        L, V = pt.linalg.eig(x)
        return L.real, L.imag, V.abs()
    assert gradcheck(f, (a,))
    assert gradgradcheck(f, (a,))


def test_eigvals_records_the_eig_node_only_with_grad():
    a = pt.tensor(_rand((3, 3)), requires_grad=True)
    w = pt.linalg.eigvals(a)
    assert w.requires_grad and w.grad_fn is not None
    with pt.no_grad():
        assert not pt.linalg.eigvals(a).requires_grad
    assert not pt.linalg.eigvals(a.detach()).requires_grad


# --- errors -------------------------------------------------------------------------------------
def test_phase_dependent_loss_raises():
    for a in (_rand((3, 3)), _rand((3, 3), True)):
        A = pt.tensor(a, requires_grad=True)
        V = pt.linalg.eig(A).eigenvectors
        with pytest.raises(RuntimeError, match=r"linalg.eig backward: .*phase"):
            V.imag.sum().backward()


@pytest.mark.parametrize("fn", ["eig", "eigvals"])
def test_errors(fn):
    f = getattr(pt.linalg, fn)
    with pytest.raises(ValueError, match=rf"linalg.{fn}: .*square.*2 by 3.*\(2, 3\)"):
        f(pt.zeros(2, 3))
    with pytest.raises(ValueError, match=rf"linalg.{fn}: .*at least 2 dimensions"):
        f(pt.zeros(3))
    for dt in (pt.float16, pt.bfloat16):
        with pytest.raises(TypeError, match=rf"linalg.{fn}: {dt.name} is not supported.*"
                                            r"float32"):
            f(pt.eye(3, dtype=dt))
    with pytest.raises(TypeError, match=rf"linalg.{fn}: .*int64"):
        f(pt.ones(3, 3, dtype=pt.int64))
    with pytest.raises(TypeError, match=rf"linalg.{fn}"):
        f(np.eye(3))
    for bad in (np.nan, np.inf):
        a = np.stack([np.eye(2), [[1.0, bad], [0.0, 1.0]]])
        with pytest.raises(pt.linalg.LinAlgError,
                           match=rf"linalg.{fn}: matrix \(1,\) of the batch .*non-finite"):
            f(pt.tensor(a))


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_torch_refuses_what_polyten_refuses():
    torch = _torch()
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.linalg.eig(torch.eye(2, dtype=torch.float16))
    with pytest.raises(RuntimeError, match="infs or NaNs"):
        torch.linalg.eig(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


def test_cuda_without_cupy_linalg_eig_reports_the_op_missing():
    # CuPy 13 has no cupy.linalg.eig: the cuda backend drops the kernel (the capability
    # manifest then says the op is missing) instead of a host round trip
    import types
    kernels = pytest.importorskip("polyten_cuda.kernels")
    assert kernels._eig_kernel(types.SimpleNamespace(linalg=types.SimpleNamespace()),
                               None) is None


def test_cuda_eig_on_a_cusolver_without_geev_says_what_to_do():
    """CuPy 14 keeps cupy.linalg.eig where the loaded cuSOLVER predates Xgeev: the call's
    CUSOLVER_STATUS_NOT_SUPPORTED becomes an error naming the requirement and the fix."""
    import types
    kernels = pytest.importorskip("polyten_cuda.kernels")

    def old_cusolver(x, compute_v):
        raise RuntimeError("CUSOLVER_STATUS_NOT_SUPPORTED")
    cp = types.SimpleNamespace(linalg=types.SimpleNamespace(eig=None))
    eig = kernels._eig_kernel(cp, old_cusolver)
    with pytest.raises(RuntimeError, match=r"linalg.eig on cuda needs cuSOLVER 11.7 .*"
                                           r"A\.cpu\(\)"):
        eig(None, True)
