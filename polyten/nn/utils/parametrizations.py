"""Parametrizations built on :mod:`.parametrize` (``torch.nn.utils.parametrizations``):
``weight_norm``, ``spectral_norm`` and ``orthogonal``.

All are polyten ops (every backend, differentiable).  Their state lives where PyTorch keeps
it, so state dicts carry over under the same keys: ``parametrizations.weight.original0`` /
``original1`` (weight norm's g and v), ``parametrizations.weight.original`` plus
``parametrizations.weight.0._u`` / ``_v`` (spectral norm's power-iteration vectors) and
``parametrizations.weight.0.base`` (orthogonal).
"""

from __future__ import annotations

import numbers

from ...api import dtypes as _dt
from ...api._core import Tensor, describe
from ...autograd.grad_mode import no_grad
from .. import functional as F
from ..modules.module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# --------------------------------------------------------------------------- weight norm ---
def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """The 2-norm of ``v`` over every dim but ``dim``, kept as size-1 dims (``dim=-1``: over
    all of ``v``, a 0-d tensor), as ``torch.norm_except_dim(v, 2, dim)``."""
    from ...api.linalg import vector_norm
    if dim == -1:
        return vector_norm(v)
    nd = v.ndim
    d = dim + nd if dim < 0 else dim
    if not 0 <= d < nd:
        raise IndexError(f"weight_norm: dim {dim} is out of range for a weight of shape "
                         f"{tuple(v.shape)}; use a dim in [{-nd}, {nd - 1}] (or None: one norm "
                         f"over the whole weight)")
    if nd == 1:
        return v.abs()  # one element per slice; vector_norm(dim=()) would reduce everything
    return vector_norm(v, 2, dim=tuple(i for i in range(nd) if i != d), keepdim=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int) -> Tensor:
    """``v * (g / ||v||)``, the norm taken over every dim but ``dim`` (``torch._weight_norm``)."""
    return v * (g / _norm_except_dim(v, dim))


def _check_dim(op: str, dim) -> int:
    if dim is None:
        return -1
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int or None, got {type(dim).__name__} {dim!r}")
    return int(dim)


class _WeightNorm(Module):
    """``weight = g * v / ||v||`` (norm over every dim but ``dim``); originals ``(g, v)``."""

    def __init__(self, dim=0) -> None:
        super().__init__()
        self.dim = _check_dim("weight_norm", dim)

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim), weight

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _names(store: dict) -> str:
    return ", ".join(n for n, t in store.items() if t is not None) or "none"


def _tensor_named(op: str, module, name: str) -> Tensor:
    weight = getattr(module, name, None) if isinstance(name, str) else None
    if not isinstance(weight, Tensor):
        raise ValueError(f"{op}: Module '{type(module).__name__}' has no parameter or buffer "
                         f"with name {name!r} (parameters: {_names(module._parameters)}; "
                         f"buffers: {_names(module._buffers)})")
    return weight


def weight_norm(module: Module, name: str = "weight", dim=0) -> Module:
    r"""Weight normalisation: ``module.<name>`` becomes ``g * v / ||v||``.

    The magnitude ``g`` and direction ``v`` are the parametrization's originals,
    ``module.parametrizations.<name>.original0`` (``g``, the norms, shaped like the weight
    with size-1 dims but ``dim``) and ``original1`` (``v``, initially the weight), as in
    PyTorch, so state dicts load across.

    Parameters
    ----------
    module : Module
    name : str
        The parameter to normalise.
    dim : int or None
        The dim that keeps one norm per slice (0: one per output row of a ``Linear``);
        ``None`` (or -1): one norm over the whole tensor.

    Returns
    -------
    Module
        ``module``, parametrized.

    Notes
    -----
    A state dict of the older hook-based API (``<name>_g`` / ``<name>_v``) loads into a
    module parametrized this way: a load-state-dict pre-hook renames those keys to
    ``parametrizations.<name>.original0`` / ``original1``, as PyTorch's.
    """
    _tensor_named("weight_norm", module, name)
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def compat(mod, state_dict, prefix, local_metadata, strict, missing_keys,
               unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(compat)
    return module


# ------------------------------------------------------------------------- spectral norm ---
class _SpectralNorm(Module):
    """``weight / sigma``, ``sigma`` the largest singular value of the weight (read as a
    matrix with ``dim`` first), estimated by power iteration on the buffers ``_u`` / ``_v``
    (updated in place by ``n_power_iterations`` steps at each read in training mode)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"spectral_norm: Dimension out of range (expected to be in range "
                             f"of [-{ndim}, {ndim - 1}] but got {dim}) for a weight of shape "
                             f"{tuple(weight.shape)}")
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) \
                or n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations!r}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            # a 1-D weight needs no estimate (see forward)
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            with no_grad():
                u = weight_mat.new_empty(h).normal_(0, 1)
                v = weight_mat.new_empty(w).normal_(0, 1)
                self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            # start from a reasonable estimate, as PyTorch does
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        from ...api.linalg import mv
        with no_grad():
            for _ in range(n_power_iterations):
                # u and v converge to the first left/right singular vectors, so that
                # sigma = u^T W v; they are updated in place (they are buffers)
                F.normalize(mv(weight_mat, self._v), dim=0, eps=self.eps, out=self._u)
                F.normalize(mv(weight_mat.mH, self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: Tensor) -> Tensor:
        from ...api.linalg import mv, vdot
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        # copies: the buffers change in place at the next training read, and this graph
        # must keep the values it used (else its backward would refuse the modified tensors)
        u = self._u.clone()
        v = self._v.clone()
        sigma = vdot(u, mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim=None) -> Module:
    r"""Spectral normalisation: ``module.<name>`` becomes ``W / sigma(W)``.

    ``sigma`` is the spectral norm (largest singular value) of the weight viewed as a matrix
    (``dim`` first, the other dims flattened), estimated by power iteration: every read in
    training mode runs ``n_power_iterations`` steps that update the buffers
    ``module.parametrizations.<name>[0]._u`` / ``_v`` in place; in evaluation mode they are
    only read.  Registration runs 15 steps from random vectors (plus one training read for
    the consistency check), as PyTorch.

    Parameters
    ----------
    module : Module
    name : str
    n_power_iterations : int
        Power-iteration steps per training-mode read (positive).
    eps : float
        Floor of the norms when normalising ``u`` and ``v``.
    dim : int, optional
        The output dim: 1 for ``ConvTranspose*``, else 0 (the default, None, picks it).

    Returns
    -------
    Module
        ``module``, parametrized (state: ``parametrizations.<name>.original``,
        ``parametrizations.<name>.0._u`` and ``._v``).
    """
    weight = _tensor_named("spectral_norm", module, name)
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) \
            else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# ---------------------------------------------------------------------------- orthogonal ---
_ORTH_MAPS = ("matrix_exp", "cayley", "householder")


def _eye_like(n: int, k: int, like: Tensor) -> Tensor:
    from ...api.creation import eye
    return eye(n, k, dtype=like.dtype, device=like.device)


def _householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first k columns of ``H_0 H_1 ... H_{k-1}``, ``H_i = I - tau_i v_i v_i^T`` with
    ``v_i`` column i of ``A`` below the diagonal and 1 on it (LAPACK's orgqr,
    ``torch.linalg.householder_product``), for real A (..., n, k); differentiable."""
    n, k = A.shape[-2], A.shape[-1]
    V = A.tril(-1) + _eye_like(n, k, A)
    Q = _eye_like(n, k, A).expand(*A.shape)
    for i in range(k - 1, -1, -1):
        v = V[..., :, i:i + 1]  # (..., n, 1)
        Q = Q - (tau[..., i:i + 1].unsqueeze(-1) * v) * (v.mT @ Q)
    return Q


def _geqrf(A: Tensor):
    """LAPACK's geqrf for real A (..., m, n): R on and above the diagonal, the Householder
    vectors (unit first entry implied) below it, and their ``tau`` (..., min(m, n))."""
    from ...api.creation import ones
    from ...api.elementwise import sqrt, where
    from ...api.linalg import vector_norm
    from ...api.shape import cat, stack
    A = A.clone()
    m, n = A.shape[-2], A.shape[-1]
    taus = []
    for j in range(min(m, n)):
        alpha = A[..., j, j]
        x = A[..., j + 1:, j]
        xnorm = vector_norm(x, dim=-1) if m - j > 1 else alpha * 0
        flat = xnorm == 0  # nothing to reflect: H = I
        norm = sqrt(alpha * alpha + xnorm * xnorm)
        beta = where(alpha >= 0, -norm, norm)
        safe = where(flat, 1.0, alpha - beta)
        tau = where(flat, 0.0, (beta - alpha) / where(flat, 1.0, beta))
        A[..., j + 1:, j] = where(flat.unsqueeze(-1), x, x / safe.unsqueeze(-1))
        A[..., j, j] = where(flat, alpha, beta)
        if j + 1 < n:
            v = cat([ones(*alpha.shape, 1, dtype=A.dtype, device=A.device),
                     A[..., j + 1:, j]], -1).unsqueeze(-1)  # (..., m - j, 1)
            sub = A[..., j:, j + 1:]
            A[..., j:, j + 1:] = sub - tau.unsqueeze(-1).unsqueeze(-1) * v * (v.mT @ sub)
        taus.append(tau)
    return A, stack(taus, -1)


def _make_orthogonal(A: Tensor) -> Tensor:
    """The Q of A's QR decomposition with R's diagonal made non-negative."""
    from ...api.linalg import qr
    Q, R = qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sgn().unsqueeze(-2)


def _is_orthogonal(Q: Tensor) -> bool:
    from ...api.dtypes import finfo
    from ...api.elementwise import allclose
    n, k = Q.shape[-2], Q.shape[-1]
    eps = 10.0 * n * finfo(Q.dtype).eps
    return allclose(Q.mH @ Q, _eye_like(k, k, Q), atol=eps)


class _Orthogonal(Module):
    """Maps an unconstrained matrix (or batch) to an orthogonal / unitary one (columns or
    rows orthonormal for a non-square one) by the matrix exponential, the Cayley map or
    Householder reflectors; ``base`` (with ``use_trivialization``) is the orthogonal matrix
    the map starts from."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *,
                 use_trivialization: bool = True) -> None:
        super().__init__()
        if weight.is_complex() and orthogonal_map == "householder":
            raise ValueError("orthogonal: The householder parametrization does not support "
                             "complex tensors; use orthogonal_map='matrix_exp' or 'cayley'")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        from ...api.linalg import solve
        from ...api.linalg_more import matrix_exp
        from ...api.shape import cat
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], -1)
            A = X - X.mH
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:
                eye = _eye_like(n, n, A)
                Q = solve(eye - 0.5 * A, eye + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = _householder_product(A, tau)
            # the sign of each reflector; X's diagonal holds it as +-1 (see right_inverse)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if "base" in self._buffers:
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        from ...api.creation import zeros_like
        from ...api.random import randn
        from ...api.elementwise import where
        from ...api.shape import cat
        if tuple(Q.shape) != self.shape:
            raise ValueError(f"orthogonal: Expected a matrix or batch of matrices of shape "
                             f"{self.shape}. Got a tensor of shape {tuple(Q.shape)}.")
        with no_grad():
            q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            transpose = n < k
            if transpose:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley "
                        "parametrizations when use_trivialization=False.")
                A, tau = _geqrf(Q)
                # the diagonal records each reflector's sign (forward reads it back)
                d = A.diagonal(dim1=-2, dim2=-1).sign() * where(tau == 0.0, -1.0, 1.0)
                A = where(_eye_like(n, k, A).to(_dt.bool), d.unsqueeze(-2), A)
                return A.mT if transpose else A
            if n == k:
                Q = _make_orthogonal(Q) if not _is_orthogonal(Q) else Q.clone()
            else:
                N = randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(cat([Q, N], -1))
            self.base = Q
            # forward maps -Id to Id, so the weight starts as base @ Id = Q
            return zeros_like(q_init) - _eye_like(q_init.shape[-2], q_init.shape[-1], q_init)

    def extra_repr(self) -> str:
        return f"orthogonal_map={self.orthogonal_map!r}"


def orthogonal(module: Module, name: str = "weight", orthogonal_map=None, *,
               use_trivialization: bool = True) -> Module:
    r"""Orthogonal (unitary) parametrization of a matrix or batch of matrices.

    ``module.<name>`` (..., n, k) becomes orthogonal: ``Q^H Q = I`` when n >= k, ``Q Q^H = I``
    otherwise.  Assigning a matrix to ``module.<name>`` projects it (QR) onto the orthogonal
    ones.

    Parameters
    ----------
    module : Module
    name : str
    orthogonal_map : {'matrix_exp', 'cayley', 'householder'}, optional
        Default: ``matrix_exp`` for square or complex matrices, ``householder`` otherwise.
        ``matrix_exp`` reads the largest 1-norm of the batch on the host at each read (its
        scaling step).
    use_trivialization : bool
        Keep the map's starting point in a buffer ``base`` (PyTorch's "dynamic
        trivialization"); without it only ``householder`` can be assigned to.

    Returns
    -------
    Module
        ``module``, parametrized (state: ``parametrizations.<name>.original`` and, with
        ``use_trivialization``, ``parametrizations.<name>.0.base``).
    """
    weight = _tensor_named("orthogonal", module, name)
    if weight.ndim < 2:
        raise ValueError(f"orthogonal: Expected a matrix or batch of matrices. Got a tensor of "
                         f"{weight.ndim} dimensions ({describe(weight)}).")
    if orthogonal_map is None:
        orthogonal_map = ("matrix_exp" if weight.shape[-2] == weight.shape[-1]
                          or weight.is_complex() else "householder")
    if orthogonal_map not in _ORTH_MAPS:
        raise ValueError(f'orthogonal: orthogonal_map has to be one of "matrix_exp", "cayley", '
                         f'"householder". Got: {orthogonal_map!r}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
