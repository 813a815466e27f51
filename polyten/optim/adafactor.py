"""``Adafactor`` (``torch.optim.Adafactor``): Adam-like steps whose second moment of a matrix
is kept factored as row and column means, with relative step sizes and update clipping."""

from __future__ import annotations

from typing import Optional

from ..api._core import Tensor, describe
from ..api.creation import zeros, zeros_like
from ..api.dtypes import finfo
from ..autograd.grad_mode import no_grad
from .optimizer import Optimizer, _is_number

__all__ = ["Adafactor"]


def _factor_shapes(shape):
    """The shapes of the row and column factors of a parameter of ``shape`` (>= 2 dims)."""
    rows, cols = list(shape), list(shape)
    rows[-1] = 1
    cols[-2] = 1
    return tuple(rows), tuple(cols)


class Adafactor(Optimizer):
    """Adafactor (``torch.optim.Adafactor``; Shazeer & Stern, 2018, with PyTorch's use of
    ``lr`` and ``eps``).

    With ``G`` the gradient (negated when ``maximize``), ``t`` the step number,
    ``w = t ** beta2_decay``, ``rho = min(lr, 1 / sqrt(t))`` and ``RMS(x) = |x|_2 /
    sqrt(numel)``::

        a = max(eps2, RMS(p)) * rho
        p = p * (1 - lr * weight_decay)
        if p.dim() >= 2:   (factored over the last two dims)
            R = R + w * (mean(G*G, dim=-1) - R);  C = C + w * (mean(G*G, dim=-2) - C)
            V = R C / max(mean(R, dim=-2), eps1)
        else:
            V = V + w * (G*G - V)
        U = G / sqrt(max(V, eps1**2))
        p = p - a * U / max(1, RMS(U) / d)

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters to optimize, or parameter groups.
    lr : float, default 1e-2
        Maximum of the relative step size ``rho`` and the factor of the weight decay.
    beta2_decay : float, default -0.8
        Decay rate of beta2 (``<= 0``): the running average's weight is ``t ** beta2_decay``.
    eps : (float or None, float), default (None, 1e-3)
        ``eps1`` guards the variance estimate (None: the parameter dtype's machine epsilon);
        ``eps2`` is the smallest parameter scale of the step.
    d : float, default 1.0
        Clipping threshold on the update's RMS (``>= 1``).
    weight_decay : float, default 0.0
        Decoupled weight decay coefficient (times ``lr``).
    foreach : bool, optional
        Accepted for PyTorch compatibility (polyten runs the same ops either way).
    maximize : bool, default False

    Notes
    -----
    The state of a parameter holds ``step`` (a Python int) and ``row_var`` / ``col_var``
    (shapes ``(..., m, 1)`` and ``(..., 1, n)``) for parameters of two or more dims, else
    ``variance``.  The step sizes are computed on the device (no host reads).  ``eps1=None``
    takes the machine epsilon of each parameter's dtype.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps=(None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach: Optional[bool] = None, maximize: bool = False):
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        where = self._where(index)
        if self._check_number(group, index, "beta2_decay", "beta2 decay rate") > 0:
            raise ValueError(f"Adafactor: invalid beta2 decay rate: beta2_decay="
                             f"{group['beta2_decay']!r}{where}; it must be <= 0")
        eps = group["eps"]
        if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
            raise TypeError(f"Adafactor: eps must be a pair (eps1, eps2), eps1 a number or "
                            f"None, got {describe(eps)}{where}")
        for i, e in enumerate(eps):
            if e is None and i == 0:
                continue
            if not _is_number(e) or e != e:
                raise TypeError(f"Adafactor: eps[{i}] must be a number"
                                f"{' or None' if i == 0 else ''}, got {describe(e)}{where}")
            if e < 0:
                raise ValueError(f"Adafactor: invalid epsilon{i + 1}: eps[{i}]={e!r}{where}; "
                                 f"it must be >= 0")
        group["eps"] = tuple(eps)
        self._check_number(group, index, "d", "clipping threshold", minimum=1.0)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)

    def step(self, closure=None):
        """One Adafactor step over all parameter groups (see the class docstring); returns
        the closure's loss, if a closure is given."""
        loss = self._closure_loss(closure)
        state = self.state
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Adafactor.step")
                lr, d, wd = group["lr"], group["d"], group["weight_decay"]
                eps1, eps2 = group["eps"]
                decay, maximize = group["beta2_decay"], group["maximize"]
                for p, g in zip(params, grads):
                    st = state[p]
                    factored = p.ndim >= 2
                    if not st:
                        st["step"] = 0
                        if factored:
                            rows, cols = _factor_shapes(p.shape)
                            st["row_var"] = zeros(rows, dtype=g.dtype, device=g.device)
                            st["col_var"] = zeros(cols, dtype=g.dtype, device=g.device)
                        else:
                            st["variance"] = zeros_like(g)
                    if maximize:
                        g = -g
                    step = int(st["step"]) + 1
                    st["step"] = step
                    e1 = finfo(p.dtype).eps if eps1 is None else eps1
                    w = step ** decay
                    rho = min(lr, 1 / (step ** 0.5))
                    n = p.numel()
                    scale = (p.norm() / (n ** 0.5)).clamp_(min=eps2).mul_(rho)
                    if wd != 0:
                        p.mul_(1 - lr * wd)
                    gg = g * g
                    if factored:
                        row_var, col_var = st["row_var"], st["col_var"]
                        row_var.lerp_(gg.mean(dim=-1, keepdim=True), w)
                        col_var.lerp_(gg.mean(dim=-2, keepdim=True), w)
                        # the rank-1 estimate R C / mean(R): a broadcast outer product
                        v = (row_var * col_var).div_(
                            row_var.mean(dim=-2, keepdim=True).clamp_(min=e1))
                    else:
                        variance = st["variance"]
                        variance.lerp_(gg, w)
                        v = variance.clone()
                    u = v.clamp_(min=e1 * e1).rsqrt_().mul_(g)
                    clip = (u.norm() / ((u.numel() ** 0.5) * d)).clamp_(min=1.0)
                    p.sub_(u.mul_(scale.div_(clip)))
        return loss

    def _state_shape(self, p: Tensor, key):
        if key in ("row_var", "col_var"):  # only a parameter of >= 2 dims has factors
            return _factor_shapes(p.shape)[key == "col_var"] if p.ndim >= 2 else (0,)
        return tuple(p.shape)
