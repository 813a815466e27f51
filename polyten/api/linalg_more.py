"""``torch.linalg`` functions composed from the primitives of :mod:`polyten.api.linalg`:
the non-raising ``inv_ex`` / ``solve_ex`` / ``cholesky_ex``, ``solve_triangular``,
``vander``, ``tensorinv`` / ``tensorsolve``, ``cond``, ``matrix_exp``, ``lstsq``, the LU
family (``lu_factor`` / ``lu_factor_ex`` / ``lu`` over the ``linalg_lu_factor`` op, ``lu_solve``)
the general eigendecomposition (``eig`` / ``eigvals`` over the ``linalg_eig`` op) and
``householder_product`` (LAPACK's ``orgqr`` / ``ungqr``, a loop of rank-1 updates).
They differentiate through their parts and run on every backend that has the ops."""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from . import dtypes as _dt
from ._core import Tensor, describe, wrap

__all__ = ["inv_ex", "solve_ex", "cholesky_ex", "solve_triangular", "vander", "tensorinv",
           "tensorsolve", "cond", "matrix_exp", "lstsq", "lu_factor", "lu_factor_ex", "lu",
           "lu_solve", "eig", "eigvals", "householder_product"]

InvExResult = namedtuple("inv_ex", ("inverse", "info"))
SolveExResult = namedtuple("solve_ex", ("result", "info"))
CholeskyExResult = namedtuple("cholesky_ex", ("L", "info"))


def _la():
    from . import linalg
    return linalg


def _pt():
    import polyten
    return polyten


def _ex(result_cls, fn, A, check_errors, *args):
    """An ``_ex`` form: the result and the per-matrix ``info`` (int32, 0 where the
    factorisation succeeded, 1 where it failed -- not LAPACK's pivot position), raising only
    with ``check_errors``; no host read otherwise, so it suits GPU code."""
    out, info = fn(A, *args, check_errors)
    return result_cls(out, wrap(info, A._device, _dt.int32))


def inv_ex(A, *, check_errors: bool = False):
    """``(inverse, info)``: :func:`polyten.linalg.inv` that reports a singular matrix in
    ``info`` instead of raising (unless ``check_errors``)."""
    return _ex(InvExResult, _la()._inv, A, check_errors)


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False):
    """``(result, info)``: :func:`polyten.linalg.solve` reporting a singular ``A`` in ``info``
    instead of raising (unless ``check_errors``)."""
    out, info = _la()._solve(A, B, left, check_errors)
    return SolveExResult(out, wrap(info, A._device, _dt.int32))


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):
    """``(L, info)``: :func:`polyten.linalg.cholesky` reporting a matrix that is not
    positive-definite in ``info`` instead of raising (unless ``check_errors``)."""
    return _ex(CholeskyExResult, lambda a, c: _la()._cholesky(a, upper, c), A, check_errors)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):
    """Solve ``A X = B`` (``left=False``: ``X A = B``) for a triangular ``A`` (the other
    triangle is ignored; ``unitriangular``: the diagonal is taken as ones)."""
    pt = _pt()
    la = _la()
    if not isinstance(A, Tensor) or not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve_triangular: A and B must be tensors, got "
                        f"{describe(A)} and {describe(B)}")
    if B.ndim < 2:
        raise ValueError(f"linalg.solve_triangular: B must be a matrix (..., n, k), got shape "
                         f"{tuple(B.shape)}")
    T = pt.triu(A) if upper else pt.tril(A)
    if unitriangular:
        n = A.shape[-1]
        eye = pt.eye(n, dtype=A.dtype, device=A.device)
        T = T * (1 - eye) + eye
    return la.solve(T, B, left=left)


def vander(x, *, N=None):
    """The Vandermonde matrix with increasing powers: ``x (..., n)`` -> ``(..., n, N)`` with
    columns ``x**0 .. x**(N-1)`` (``torch.linalg.vander``)."""
    pt = _pt()
    if not isinstance(x, Tensor) or x.ndim < 1:
        raise ValueError(f"linalg.vander: x must be a tensor of at least 1 dim, got "
                         f"{describe(x)}")
    n = x.shape[-1] if N is None else int(N)
    if n <= 1 and N is not None and n < 1:
        raise ValueError(f"linalg.vander: N must be at least 1, got {N}")
    cols = [pt.ones_like(x)]
    for _ in range(n - 1):
        cols.append(cols[-1] * x)
    return pt.stack(cols[:n], -1)


def _prod(shape):
    p = 1
    for s in shape:
        p *= s
    return p


def tensorinv(A, ind: int = 2):
    """The inverse of ``A`` seen as a linear map from its last dims to its first ``ind``:
    ``tensordot(tensorinv(A), A, ind)`` is the identity (``torch.linalg.tensorinv``)."""
    la = _la()
    if ind <= 0:
        raise ValueError(f"linalg.tensorinv: ind must be a positive integer, got {ind}")
    out_shape, in_shape = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    if _prod(out_shape) != _prod(in_shape):
        raise ValueError(f"linalg.tensorinv: the product of the first {ind} dims "
                         f"{out_shape} must equal that of the rest {in_shape}")
    m = la.inv(A.reshape(_prod(out_shape), _prod(in_shape)))
    return m.reshape(in_shape + out_shape)


def tensorsolve(A, B, dims=None):
    """``X`` with ``tensordot(A, X, X.ndim) == B`` (``dims``: dims of ``A`` moved to the end
    first), as ``torch.linalg.tensorsolve``."""
    la = _la()
    if dims is not None:
        nd = A.ndim
        dims = [d % nd for d in dims]
        A = A.permute([d for d in range(nd) if d not in dims] + dims)
    rest = tuple(A.shape[B.ndim:])
    if _prod(tuple(A.shape[:B.ndim])) != _prod(rest) or tuple(A.shape[:B.ndim]) != \
            tuple(B.shape):
        raise ValueError(f"linalg.tensorsolve: A of shape {tuple(A.shape)} must start with B's "
                         f"shape {tuple(B.shape)} and be square once reshaped")
    x = la.solve(A.reshape(_prod(B.shape), _prod(rest)), B.reshape(-1))
    return x.reshape(rest)


def cond(A, p=None):
    """The condition number of ``A`` in the ``p`` norm: the ratio of the extreme singular
    values for ``p`` None, 2 or -2, else ``norm(A, p) * norm(inv(A), p)``."""
    la = _la()
    if p in (None, 2, -2):
        s = la.svdvals(A)
        big, small = s[..., 0], s[..., -1]
        return big / small if p != -2 else small / big
    if p not in ("fro", "nuc", float("inf"), float("-inf"), 1, -1):
        raise ValueError(f"linalg.cond: p must be None, 2, -2, 'fro', 'nuc', inf, -inf, 1 or "
                         f"-1, got {p!r}")
    return la.matrix_norm(A, p) * la.matrix_norm(la.inv(A), p)


# Pade 13 coefficients of exp (Higham 2005, "The scaling and squaring method revisited")
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def matrix_exp(A):
    """The matrix exponential of each matrix of ``A`` (..., n, n), by scaling and squaring
    with the [13/13] Pade approximant (Higham 2005); differentiable through its products
    and solve.  The scaling reads the largest 1-norm of the batch on the host."""
    pt = _pt()
    la = _la()
    if not isinstance(A, Tensor) or A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.matrix_exp: A must be a square matrix or a batch of them, "
                         f"got {describe(A)}")
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        A = A.to(_dt.get_default_dtype())
    n = A.shape[-1]
    if n == 0:
        return A.clone()
    norm1 = float(la.matrix_norm(A.detach(), 1).amax().item()) if A.numel() else 0.0
    s = builtins.max(0, int(math.ceil(math.log2(norm1 / _THETA13)))) if norm1 > 0 else 0
    X = A / (2.0 ** s) if s else A
    b = _PADE13
    eye = pt.eye(n, dtype=A.dtype, device=A.device)
    X2 = X @ X
    X4 = X2 @ X2
    X6 = X4 @ X2
    U = X @ (X6 @ (b[13] * X6 + b[11] * X4 + b[9] * X2) + b[7] * X6 + b[5] * X4 + b[3] * X2
             + b[1] * eye)
    V = X6 @ (b[12] * X6 + b[10] * X4 + b[8] * X2) + b[6] * X6 + b[4] * X4 + b[2] * X2 + \
        b[0] * eye
    R = la.solve(V - U, V + U)
    for _ in range(s):
        R = R @ R
    return R


LstsqResult = namedtuple("lstsq", ("solution", "residuals", "rank", "singular_values"))
_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """Least-squares solution of ``A X = B`` (``torch.linalg.lstsq``).

    Parameters
    ----------
    A : Tensor
        ``(*, m, n)``, floating or complex.
    B : Tensor
        ``(*, m, k)``, or a vector ``(m,)`` / batch of vectors ``(*, m)`` (the solution is then
        a vector too); the batch dims of ``A`` and ``B`` broadcast.
    rcond : float, optional
        Singular values ``<= rcond * largest`` count as zero when the driver determines the
        rank (default ``eps(dtype) * max(m, n)``, as torch).
    driver : {'gels', 'gelsy', 'gelsd', 'gelss'}, optional
        torch's LAPACK names, kept for their contract: ``'gels'`` assumes every matrix has
        full rank (QR of ``A``, or of ``A^H`` when ``m < n``: the minimum-norm solution);
        the others determine the rank and return the minimum-norm solution for
        rank-deficient ``A`` (here all three through the SVD).  Default: ``'gelsy'``, and
        ``'gels'`` on cuda (torch's defaults; polyten runs every driver on every backend).

    Returns
    -------
    (solution, residuals, rank, singular_values)
        ``solution`` ``(*, n, k)``.  As in torch: ``residuals`` (real, ``(*, k)``: the
        squared column norms of ``A X - B``) is filled when ``m > n``, the driver is not
        ``'gelsy'`` and every matrix has full rank -- otherwise it is an empty tensor;
        ``rank`` (int64, ``(*,)``) for 'gelsy', 'gelsd' and 'gelss'; ``singular_values``
        (real, ``(*, min(m, n))``) for 'gelsd' and 'gelss'.  The parts not computed are
        empty tensors.

    Gradients flow through the solution and the residuals (for full-rank ``A``; for a
    rank-deficient one they are as ill-defined as the SVD's).  Filling ``residuals`` for a
    rank-revealing driver reads the ranks on the host (the result's shape depends on them).
    """
    pt = _pt()
    la = _la()
    op = "linalg.lstsq"
    if not isinstance(A, Tensor) or not isinstance(B, Tensor):
        raise TypeError(f"{op}: A and B must be tensors, got {describe(A)} and {describe(B)}")
    if A.ndim < 2:
        raise ValueError(f"{op}: A must have at least 2 dimensions (a matrix or a batch of "
                         f"matrices), got shape {tuple(A.shape)}")
    if driver is None:
        driver = "gels" if A.device.type == "cuda" else "gelsy"
    if driver not in _LSTSQ_DRIVERS:
        raise ValueError(f"{op}: driver must be one of {', '.join(_LSTSQ_DRIVERS)} (or None), "
                         f"got {driver!r}")
    if B.ndim == 0:
        raise ValueError(f"{op}: B must have at least 1 dimension, got a 0-d tensor")
    m, n = A.shape[-2], A.shape[-1]
    vector = B.ndim == 1 or tuple(B.shape) == tuple(A.shape[:-1])
    if vector:
        B = B.unsqueeze(-1)
    if B.shape[-2] != m:
        raise ValueError(f"{op}: A of shape {tuple(A.shape)} has {m} rows but B of shape "
                         f"{tuple(B.shape[:-1]) if vector else tuple(B.shape)} has "
                         f"{B.shape[-2]}; A X = B needs as many rows in B as in A")
    for name, t in (("A", A), ("B", B)):
        if not (t.dtype.is_floating_point or t.dtype.is_complex):
            raise TypeError(f"{op}: expected floating point or complex tensors, got {name} of "
                            f"dtype {t.dtype.name}; cast first, e.g. {name}.to(polyten.float64)")
    dt = pt.result_type(A, B)
    A, B = A.to(dt), B.to(dt)
    rd = dt.to_real()
    try:
        batch = tuple(pt.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2])))
    except ValueError:
        raise ValueError(f"{op}: the batch dims of A {tuple(A.shape)} and B {tuple(B.shape)} "
                         f"do not broadcast (sizes must be equal, or one of them 1)") from None
    k = B.shape[-1]
    if rcond is None:
        rcond = _dt.finfo(rd).eps * builtins.max(m, n)
    empty_int = pt.zeros((0,), dtype=_dt.int64, device=A.device)
    empty_real = pt.zeros((0,), dtype=rd, device=A.device)
    rank = S = None
    if m == 0 or n == 0:
        X = pt.zeros(batch + (n, k), dtype=dt, device=A.device)
        if driver != "gels":
            rank = pt.zeros(tuple(A.shape[:-2]), dtype=_dt.int64, device=A.device)
        if driver in ("gelsd", "gelss"):
            S = pt.zeros(tuple(A.shape[:-2]) + (0,), dtype=rd, device=A.device)
    elif driver == "gels":
        # LAPACK's gels: QR of A (m >= n) or of A^H (m < n, the minimum-norm solution);
        # composed of differentiable ops, so the gradient is the composition's
        if m >= n:
            Q, R = la.qr(A)
            X = solve_triangular(R, Q.mH @ B, upper=True)
        else:
            Q, R = la.qr(A.mH)
            X = Q @ solve_triangular(R.mH, B, upper=False)
    else:
        # the rank-revealing drivers through the SVD: gelsd / gelss are SVD-based in LAPACK
        # (the same cut-off), gelsy's complete orthogonal factorisation gives the same
        # minimum-norm solution and, away from ties at the cut-off, the same rank
        U, S, Vh = la.svd(A, full_matrices=False)
        keep = S > rcond * S.amax(-1, keepdim=True)
        s_inv = pt.where(keep, 1 / pt.where(keep, S, 1), 0).to(dt)
        X = Vh.mH @ (s_inv.unsqueeze(-1) * (U.mH @ B))
        rank = pt.count_nonzero(keep, -1)  # A's batch shape, not the broadcast one (torch)
    residuals = empty_real
    if m > n and driver != "gelsy" and n > 0:
        full = True if rank is None else bool((rank == n).all().item())
        if full:
            residuals = ((A @ X - B).abs() ** 2).sum(-2)
    if vector:
        X = X.squeeze(-1)
    return LstsqResult(X, residuals, empty_int if rank is None else rank,
                       S if driver in ("gelsd", "gelss") else empty_real)


LUFactorResult = namedtuple("lu_factor", ("LU", "pivots"))
LUFactorExResult = namedtuple("lu_factor_ex", ("LU", "pivots", "info"))
LUResult = namedtuple("lu", ("P", "L", "U"))


def _lu_factor(op, A, pivot):
    """(LU, pivots, info) from the op-table kernel, recorded for autograd."""
    from ..dispatch.dispatcher import kernels
    la = _la()
    la._float_matrix(op, A, square=False)
    lu, piv, info = kernels("linalg_lu_factor")[A._device.backend](A._data, builtins.bool(pivot))
    dev = A._device
    pivots = wrap(piv, dev, _dt.int32)
    LU = la._grad("linalg_lu_factor", wrap(lu, dev, A._dtype), (A,),
                  {"pivots": pivots, "pivot": builtins.bool(pivot)})
    return LU, pivots, wrap(info, dev, _dt.int32)


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False):
    """``(LU, pivots, info)``: the LU factorisation with partial pivoting, ``A = P L U``
    (``torch.linalg.lu_factor_ex``; LAPACK's ``getrf`` conventions).

    Parameters
    ----------
    A : Tensor
        ``(*, m, n)``, floating or complex.
    pivot : bool
        Partial pivoting (default).  ``False`` factors without row swaps (it fails on a zero
        pivot; torch offers it on CUDA only, polyten on every backend).
    check_errors : bool
        Raise :class:`LinAlgError` when ``info`` is nonzero (on a GPU at the next host read).

    Returns
    -------
    LU : ``(*, m, n)``: ``U`` on and above the diagonal, ``L`` below it (its unit diagonal
    implied).  pivots : int32 ``(*, min(m, n))``: row ``i`` was swapped with row
    ``pivots[i] - 1`` (1-based, as LAPACK and torch).  info : int32 ``(*)``: 0, or the
    1-based index of the first zero on ``U``'s diagonal (the factorisation is complete, but
    ``U`` is singular).
    """
    LU, piv, info = _lu_factor("linalg.lu_factor_ex", A, pivot)
    if check_errors:
        _la()._raise_info("linalg.lu_factor_ex", info._data, A, "has a zero on U's diagonal "
                          "(it is singular)", "info gives the 1-based index of the first one.")
    return LUFactorExResult(LU, piv, info)


def lu_factor(A, *, pivot: bool = True):
    """``(LU, pivots)``: :func:`lu_factor_ex` that raises :class:`LinAlgError` for a matrix
    whose ``U`` has a zero on the diagonal (``lu_solve`` would divide by it), as
    ``torch.linalg.lu_factor``; :func:`lu` and :func:`lu_factor_ex` do not raise."""
    LU, piv, info = _lu_factor("linalg.lu_factor", A, pivot)
    _la()._raise_info("linalg.lu_factor", info._data, A, "is singular: U has a zero on its "
                      "diagonal, and lu_solve would divide by it", "To factor it anyway, call "
                      "linalg.lu(A) or linalg.lu_factor_ex(A).")
    return LUFactorResult(LU, piv)


def _permutation(pivots, m):
    """The row order ``perm`` (int64, ``(*, m)``) with ``(P^T A)[i] = A[perm[i]]``: the swaps
    of ``pivots`` applied in order to ``arange(m)``, one small step per pivot."""
    pt = _pt()
    perm = pt.arange(m, device=pivots.device).expand(tuple(pivots.shape[:-1]) + (m,)).clone()
    piv = pivots.to(_dt.int64) - 1
    for i in range(pivots.shape[-1]):
        p = piv[..., i:i + 1]
        a = perm[..., i:i + 1].clone()
        b = pt.gather(perm, -1, p)
        perm = pt.scatter(perm, -1, p, a)
        perm[..., i:i + 1] = b
    return perm


def _perm_matrix(pivots, m, dtype):
    """``P`` ``(*, m, m)`` of ``A = P L U``: ``P[perm[i], i] = 1``."""
    pt = _pt()
    perm = _permutation(pivots, m)
    rows = pt.arange(m, device=pivots.device).unsqueeze(-1)
    return (perm.unsqueeze(-2) == rows).to(dtype)


def _unpack(LU):
    """``L`` (unit lower, ``(*, m, k)``) and ``U`` (upper, ``(*, k, n)``) of a packed LU."""
    pt = _pt()
    m, n = LU.shape[-2], LU.shape[-1]
    k = builtins.min(m, n)
    L = pt.tril(LU[..., :, :k], -1) + pt.eye(m, k, dtype=LU.dtype, device=LU.device)
    U = pt.triu(LU[..., :k, :])
    return L, U


def lu(A, *, pivot: bool = True):
    """``(P, L, U)`` with ``A = P L U`` (``torch.linalg.lu``): ``P`` ``(*, m, m)`` a
    permutation matrix of ``A``'s dtype, ``L`` ``(*, m, k)`` unit lower triangular, ``U``
    ``(*, k, n)`` upper triangular, ``k = min(m, n)``.  Does not raise for a singular ``A``.
    Differentiable for square ``A`` (through :func:`lu_factor_ex`'s rule)."""
    LU, piv, _ = _lu_factor("linalg.lu", A, pivot)
    L, U = _unpack(LU)
    m = A.shape[-2]
    if pivot:
        P = _perm_matrix(piv, m, A.dtype)
    else:
        P = _pt().eye(m, dtype=A.dtype, device=A.device).expand(tuple(A.shape[:-2]) + (m, m))
    return LUResult(P, L, U)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False):
    """Solve ``A X = B`` given ``(LU, pivots)`` from :func:`lu_factor` of a square ``A``
    (``torch.linalg.lu_solve``): ``left=False`` solves ``X A = B``, ``adjoint=True`` uses
    ``A^H``.  Batch dims broadcast.  Two triangular solves and a row permutation, so it
    differentiates with respect to ``LU`` and ``B``."""
    op = "linalg.lu_solve"
    for name, t in (("LU", LU), ("pivots", pivots), ("B", B)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(t)}")
    if LU.ndim < 2 or LU.shape[-1] != LU.shape[-2]:
        raise ValueError(f"{op}: LU must be batches of square matrices, got shape "
                         f"{tuple(LU.shape)}")
    n = LU.shape[-1]
    if tuple(pivots.shape) != tuple(LU.shape[:-1]) or pivots.dtype != _dt.int32:
        raise ValueError(f"{op}: pivots must be int32 of shape {tuple(LU.shape[:-1])} (from "
                         f"linalg.lu_factor), got {pivots.dtype.name} {tuple(pivots.shape)}")
    if B.ndim < 2:
        raise ValueError(f"{op}: B must be a matrix (*, n, k), got shape {tuple(B.shape)}")
    if not left:  # X A = B  <=>  A^H X^H = B^H
        return lu_solve(LU, pivots, B.mH, left=True, adjoint=not adjoint).mH
    if B.shape[-2] != n:
        raise ValueError(f"{op}: LU of shape {tuple(LU.shape)} is {n} by {n} but B of shape "
                         f"{tuple(B.shape)} has {B.shape[-2]} rows")
    L, U = _unpack(LU)
    P = _perm_matrix(pivots, n, LU.dtype)
    if not adjoint:  # A = P L U:  X = U^-1 L^-1 P^T B
        Y = solve_triangular(L, P.mT @ B, upper=False, unitriangular=True)
        return solve_triangular(U, Y, upper=True)
    # A^H = U^H L^H P^T:  X = P L^-H U^-H B
    Y = solve_triangular(U.mH, B, upper=False)
    return P @ solve_triangular(L.mH, Y, upper=True, unitriangular=True)


def _eig(op, A, compute_v):
    """``(eigenvalues, eigenvectors or None)`` from the ``linalg_eig`` kernel, checked and
    recorded for autograd (both outputs: the backward reads the eigenvectors)."""
    from ..dispatch.dispatcher import kernels
    la = _la()
    la._float_matrix(op, A)
    if A._dtype in (_dt.float16, _dt.bfloat16):
        # LAPACK's geev has no half-precision routine and torch refuses these dtypes too;
        # computing in float32 here would hide a precision loss the caller did not ask for
        raise TypeError(f"{op}: {A._dtype.name} is not supported (no half-precision "
                        f"eigensolver; torch.{op} refuses it too); cast first, e.g. "
                        f"{op}(A.to(polyten.float32))")
    # geev does not converge on inf / NaN (torch raises, NumPy raises its own error, cuSOLVER
    # returns NaN): LinAlgError naming the call, deferred to the next host read on a GPU
    la._finite_input(op, A)
    dev = A._device
    grad = A._ag is not None and la._grad_on()
    w, v = kernels("linalg_eig")[dev.backend](A._data, builtins.bool(compute_v or grad))
    cdt = A._dtype.to_complex()
    L = wrap(w, dev, cdt)
    V = None if v is None else wrap(v, dev, cdt)
    if grad:
        la._grad("linalg_eig", (L, V), (A,))
    return L, V


EigResult = namedtuple("eig", ("eigenvalues", "eigenvectors"))
EigResult.__module__ = "polyten.return_types"


def eig(A):
    """Eigenvalues and eigenvectors of square matrices (``torch.linalg.eig``): ``A V = V
    diag(L)``.

    Parameters
    ----------
    A : Tensor
        ``(*, n, n)``, float32, float64, complex64 or complex128, finite (float16 and
        bfloat16 raise :class:`TypeError`, as in torch; inf or NaN raise
        :class:`LinAlgError`).

    Returns
    -------
    (eigenvalues, eigenvectors)
        Always complex (complex64 for float32 / complex64 ``A``, complex128 for float64 /
        complex128), even when every eigenvalue is real.  ``eigenvalues`` ``(*, n)`` in no
        particular order (LAPACK's ``geev``); ``eigenvectors`` ``(*, n, n)``, column ``i``
        the eigenvector of ``eigenvalues[..., i]``, normalised to norm 1 (its phase is
        LAPACK's choice and may differ between backends).

    Gradients flow from both outputs (PyTorch's ``linalg_eig_backward``); they are defined
    only for losses that do not depend on the eigenvectors' phases (``V -> V e^(i phi)``),
    and the backward raises otherwise, as torch's.  Repeated eigenvalues make the gradient
    infinite or NaN, as in torch.
    """
    L, V = _eig("linalg.eig", A, True)
    return EigResult(L, V)


def eigvals(A):
    """The eigenvalues of square matrices (``torch.linalg.eigvals``): complex, ``(*, n)``,
    in the order :func:`eig` gives them.  Without a gradient to track only the eigenvalues
    are computed; with one, :func:`eig`'s node is recorded (the backward needs the
    eigenvectors, as torch's)."""
    return _eig("linalg.eigvals", A, False)[0]


def householder_product(A, tau):
    """The product ``H_1 H_2 ... H_k`` of Householder reflectors, its first ``n`` columns
    (``torch.linalg.householder_product``, LAPACK's ``orgqr`` / ``ungqr``).

    ``H_i = I - tau_i v_i v_i^H``, where ``v_i`` is column ``i`` of ``A`` below the diagonal
    with an implicit 1 on it (the entries on and above the diagonal are not read): the form
    in which LAPACK's ``geqrf`` (``torch.geqrf``) stores the ``Q`` of a QR factorisation.

    Parameters
    ----------
    A : Tensor
        ``(*, m, n)`` with ``m >= n``, floating or complex.
    tau : Tensor
        ``(*, k)`` with ``k <= n``, the same batch shape and dtype as ``A``.

    Returns
    -------
    Tensor
        ``(*, m, n)``, ``A``'s dtype.  Differentiable in ``A`` and ``tau`` (the reflectors are
        applied one at a time with polyten ops, so autograd traces them).
    """
    pt = _pt()
    op = "linalg.householder_product"
    for name, t in (("input", A), ("tau", tau)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a polyten tensor as {name}, got {describe(t)}")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: input must have at least 2 dimensions, got {describe(A)}; "
                           f"pass a matrix (*, m, n)")
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise RuntimeError(f"{op}: input must be floating point or complex, got "
                           f"{describe(A)}; cast it first, e.g. A.to(polyten.float64)")
    if tau.dtype != A.dtype:
        raise RuntimeError(f"{op}: tau dtype {tau.dtype.name} does not match input dtype "
                           f"{A.dtype.name}; cast tau first, e.g. tau.to(A.dtype)")
    m, n = A.shape[-2], A.shape[-1]
    if m < n:
        raise RuntimeError(f"{op}: input.shape[-2] must be greater than or equal to "
                           f"input.shape[-1], got input of shape {tuple(A.shape)}")
    if tau.ndim != A.ndim - 1:
        raise RuntimeError(f"{op}: expected tau to have one dimension less than input, got "
                           f"tau of shape {tuple(tau.shape)} and input of shape "
                           f"{tuple(A.shape)}")
    k = tau.shape[-1]
    if k > n:
        raise RuntimeError(f"{op}: input.shape[-1] must be greater than or equal to "
                           f"tau.shape[-1], got input of shape {tuple(A.shape)} and tau of "
                           f"shape {tuple(tau.shape)}")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"{op}: expected the batch dimensions of tau to equal "
                           f"input.shape[:-2] = {tuple(A.shape[:-2])}, got tau of shape "
                           f"{tuple(tau.shape)}")
    eye = pt.eye(m, n, dtype=A.dtype, device=A.device)
    V = pt.tril(A, -1) + eye  # column i is v_i: the implicit unit diagonal, zeros above
    Q = pt.broadcast_to(eye, tuple(A.shape)).clone()
    # H_1 (... (H_k I)): applying from the last reflector keeps each step a rank-1 update of
    # the (m, n) block instead of an (m, m) product
    for i in builtins.range(k - 1, -1, -1):
        v = V[..., :, i:i + 1]
        w = v.conj().mT @ Q
        Q = Q - tau[..., i:i + 1].unsqueeze(-1) * (v @ w)
    return Q


LINALG_MORE = {name: globals()[name] for name in __all__}
