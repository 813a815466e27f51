"""``RMSprop`` (``torch.optim.RMSprop``): centered or not, with momentum and weight decay."""

from __future__ import annotations

from typing import Optional

from ..api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p``::

        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g            (centered: v below is v - a * a)
        s = sqrt(v) + eps
        b = momentum * b + g / s;  p = p - lr * b  (momentum > 0)
        p = p - lr * g / s                         (otherwise)

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average.
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
        Normalize by an estimate of the gradient's variance.
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize,
                        capturable=capturable, foreach=foreach,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)
        self._check_number(group, index, "momentum", "momentum value", minimum=0.0)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)
        self._check_number(group, index, "alpha", "alpha value", minimum=0.0)

    def step(self, closure=None):
        """One RMSprop step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "RMSprop.step")
                if not params:
                    continue
                route = flag.route("rmsprop", params, group)
                if route is None:
                    continue
                impl, on_device = route
                momentum, centered = group["momentum"], group["centered"]
                square_avgs, grad_avgs, bufs = [], [], []
                for p in params:
                    st = state[p]
                    if not st:
                        st["step"] = 0
                        st["square_avg"] = zeros_like(p)
                    if momentum > 0 and "momentum_buffer" not in st:
                        st["momentum_buffer"] = zeros_like(p)
                    if centered and "grad_avg" not in st:
                        st["grad_avg"] = zeros_like(p)
                    square_avgs.append(st["square_avg"])
                    grad_avgs.append(st.get("grad_avg"))
                    bufs.append(st.get("momentum_buffer"))
                F.count_steps([state[p] for p in params], params, flag, on_device)
                impl(params, grads, square_avgs, grad_avgs, bufs, lr=group["lr"],
                     alpha=group["alpha"], eps=group["eps"],
                     weight_decay=group["weight_decay"], momentum=momentum,
                     centered=centered, maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)
