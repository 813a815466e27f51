"""``torch.linalg`` functions composed from the primitives of :mod:`polyten.api.linalg`:
the non-raising ``inv_ex`` / ``solve_ex`` / ``cholesky_ex``, ``solve_triangular``,
``vander``, ``tensorinv`` / ``tensorsolve``, ``cond`` and ``matrix_exp``.  They differentiate
through their parts and run on every backend."""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from . import dtypes as _dt
from ._core import Tensor, describe, wrap

__all__ = ["inv_ex", "solve_ex", "cholesky_ex", "solve_triangular", "vander", "tensorinv",
           "tensorsolve", "cond", "matrix_exp"]

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


LINALG_MORE = {name: globals()[name] for name in __all__}
