"""``Muon`` (``torch.optim.Muon``): momentum SGD for 2-D parameters whose update is
orthogonalized by a Newton-Schulz iteration in bfloat16."""

from __future__ import annotations

import math

from ..api._core import describe
from ..api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from ..dispatch.errors import fmt_shape
from .optimizer import Optimizer, _is_number

__all__ = ["Muon"]

_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
_ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def _orthogonalize(g, coefficients, steps: int, eps: float):
    """Approximately ``U V^T`` of ``g = U S V^T`` by ``steps`` iterations of the quintic
    Newton-Schulz map ``X <- a X + (b A + c A^2) X``, ``A = X X^T``, on ``X = g / |g|_F``
    in bfloat16, with the short side first (so that ``A`` is the smaller Gram matrix).
    Each matrix product and the sum it feeds are computed in float32 and rounded to
    bfloat16 once, as a bfloat16 ``addmm`` does in PyTorch."""
    a, b, c = coefficients
    x = g.bfloat16()
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = (x @ x.T).float()
        poly = (gram @ gram).mul_(c).add_(gram * b).bfloat16()
        xf = x.float()
        x = (poly.float() @ xf).add_(xf * a).bfloat16()
    return x.T if tall else x


def _adjusted_lr(lr: float, fn, shape) -> float:
    """The learning rate scaled for the matrix's shape ``(A, B)``: ``sqrt(max(1, A / B))``
    (``"original"``, Keller Jordan's) or ``0.2 sqrt(max(A, B))`` (``"match_rms_adamw"``,
    Moonshot's, matching AdamW's update RMS)."""
    rows, cols = shape[0], shape[1]
    if fn is None or fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    return lr * 0.2 * math.sqrt(max(rows, cols))


class Muon(Optimizer):
    """Muon (``torch.optim.Muon``), for the 2-D weights of hidden layers.

    With ``G`` the gradient, the momentum buffer ``B`` (zeros at first) and ``NS`` the
    Newton-Schulz orthogonalization (``ns_steps`` iterations with ``ns_coefficients``, in
    bfloat16)::

        B = momentum * B + (1 - momentum) * G
        U = (1 - momentum) * G + momentum * B      (nesterov; else U = B)
        p = p * (1 - lr * weight_decay) - adjusted_lr * NS(U)

    ``adjusted_lr`` is ``lr * sqrt(max(1, A / B))`` for an ``A x B`` parameter
    (``adjust_lr_fn=None`` or ``"original"``) or ``lr * 0.2 * sqrt(max(A, B))``
    (``"match_rms_adamw"``).  Other parameters (biases, embeddings, ...) should be given to
    another optimizer such as :class:`AdamW`.

    Parameters
    ----------
    params : iterable of 2-D tensors or dicts
        Parameters to optimize, or parameter groups.
    lr : float, default 1e-3
    weight_decay : float, default 0.1
        Decoupled weight decay (times ``lr``).
    momentum : float, default 0.95
    nesterov : bool, default True
    ns_coefficients : (float, float, float), default (3.4445, -4.7750, 2.0315)
        ``(a, b, c)`` of the Newton-Schulz polynomial.
    eps : float, default 1e-7
        Floor of the Frobenius norm the update is divided by.
    ns_steps : int, default 5
        Newton-Schulz iterations (fewer than 100).
    adjust_lr_fn : None, "original" or "match_rms_adamw", default None
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients=_NS_COEFFICIENTS, eps: float = 1e-7, ns_steps: int = 5,
                 adjust_lr_fn=None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps,
                        ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)

    def _check_param(self, p, group, i):
        super()._check_param(p, group, i)
        if p.ndim != 2:
            raise ValueError(f"Muon only supports 2-D parameters, but parameter {i} of group "
                             f"{group} has shape {fmt_shape(p.shape)}; optimize biases, "
                             f"embeddings and other non-matrix parameters with another "
                             f"optimizer such as AdamW")

    def _check_group(self, group, index):
        super()._check_group(group, index)
        where = self._where(index)
        self._check_number(group, index, "momentum", "momentum value", minimum=0.0)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)
        fn = group["adjust_lr_fn"]
        if fn not in _ADJUST_LR_FNS:
            raise ValueError(f"Muon: adjust_lr_fn={fn!r} is not supported{where}; use None, "
                             f"'original' or 'match_rms_adamw'")
        steps = group["ns_steps"]
        if not (isinstance(steps, int) and not isinstance(steps, bool)) or steps < 0:
            raise TypeError(f"Muon: ns_steps must be a non-negative int, got "
                            f"{describe(steps)}{where}")
        if steps >= 100:
            raise ValueError(f"Muon: ns_steps={steps}{where}; the number of Newton-Schulz "
                             f"steps must be less than 100 (5 is the usual choice)")
        coef = group["ns_coefficients"]
        if not (isinstance(coef, (tuple, list)) and len(coef) == 3
                and all(_is_number(v) for v in coef)):
            raise ValueError(f"Muon: ns_coefficients must be a tuple of exactly 3 numbers "
                             f"(a, b, c), got {describe(coef)}{where}")
        group["ns_coefficients"] = tuple(coef)

    def step(self, closure=None):
        """One Muon step over all parameter groups (see the class docstring); returns the
        closure's loss, if a closure is given."""
        loss = self._closure_loss(closure)
        state = self.state
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Muon.step")
                lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
                for p, g in zip(params, grads):
                    st = state[p]
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = zeros_like(g)
                    buf = st["momentum_buffer"]
                    buf.lerp_(g, 1 - momentum)
                    u = g.lerp(buf, momentum) if group["nesterov"] else buf
                    u = _orthogonalize(u, group["ns_coefficients"], group["ns_steps"],
                                       group["eps"])
                    step = _adjusted_lr(lr, group["adjust_lr_fn"], p.shape)
                    p.mul_(1 - lr * wd)
                    p.add_(u.to(p.dtype).mul_(-step))
        return loss
