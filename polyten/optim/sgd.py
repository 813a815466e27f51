"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov momentum, weight
decay and ``maximize`` (``torch.optim.SGD``)."""

from __future__ import annotations

from typing import Optional

from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD``).

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p``::

        b = g                                 (first step)
        b = momentum * b + (1 - dampening) * g
        d = g + momentum * b if nesterov else b      (d = g without momentum)
        p = p - lr * d

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters to optimize, or parameter groups.
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False,
                 fused: Optional[bool] = None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "momentum", "momentum value", minimum=0.0)
        self._check_number(group, index, "dampening", "dampening value")
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires a momentum > 0 and zero "
                             f"dampening, got momentum={group['momentum']!r}, dampening="
                             f"{group['dampening']!r}{self._where(index)}")

    def step(self, closure=None):
        """One SGD step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "SGD.step")
                if not params:
                    continue
                route = flag.route("sgd", params, group)
                if route is None:
                    continue
                impl, on_device = route
                momentum = group["momentum"]
                bufs = ([state[p].get("momentum_buffer") for p in params] if momentum != 0
                        else [None] * len(params))
                extra = flag.kwargs(on_device, params)
                impl(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
                     momentum=momentum, dampening=group["dampening"],
                     nesterov=group["nesterov"], maximize=group["maximize"], **extra)
                if momentum != 0:
                    for p, b in zip(params, bufs):
                        state[p]["momentum_buffer"] = b
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)
