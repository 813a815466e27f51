"""``Adamax``, ``NAdam`` and ``RAdam`` (``torch.optim``'s): Adam with the infinity norm, with
Nesterov momentum, and with a rectified adaptive step."""

from __future__ import annotations

from typing import Optional

from ..api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["Adamax", "NAdam", "RAdam"]


class _AdamLike(Optimizer):
    _algorithm = ""
    _state_keys = ("exp_avg", "exp_avg_sq")

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)
        self._check_betas(group, index)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)

    def _init_state(self, st, p):
        st["step"] = 0
        for key in self._state_keys:
            st[key] = zeros_like(p)

    def _gather(self, group, params, flag=None, on_device=False):
        state = self.state
        lists = {key: [] for key in self._state_keys}
        for p in params:
            st = state[p]
            if not st:
                self._init_state(st, p)
            for key in self._state_keys:
                lists[key].append(st[key])
        steps = F.count_steps([state[p] for p in params], params, flag, on_device)
        return lists, steps


class Adamax(_AdamLike):
    """Adamax (``torch.optim.Adamax``), Adam with the infinity norm.

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p``::

        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    maximize : bool, default False
    """

    _state_keys = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, capturable=capturable))

    def step(self, closure=None):
        """One Adamax step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Adamax.step")
                if not params:
                    continue
                route = flag.route("adamax", params, group)
                if route is None:
                    continue
                impl, on_device = route
                lists, steps = self._gather(group, params, flag, on_device)
                beta1, beta2 = group["betas"]
                impl(params, grads, lists["exp_avg"], lists["exp_inf"], steps, beta1=beta1,
                     beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
                     eps=group["eps"], maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)


class NAdam(_AdamLike):
    """NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum and the momentum schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``.

    With ``g`` the gradient (negated when ``maximize``; plus ``weight_decay * p``, or with
    ``decoupled_weight_decay`` ``p *= 1 - lr * weight_decay`` first) and ``P_t`` the product
    of ``mu_1 .. mu_t`` (the state's ``mu_product``)::

        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P_t) * g / d
              - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum_decay : float, default 4e-3
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, *,
                 decoupled_weight_decay: bool = False, foreach: Optional[bool] = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "momentum_decay", "momentum_decay value",
                           minimum=0.0)

    def _init_state(self, st, p):
        st["step"] = 0
        st["mu_product"] = 1.0
        for key in self._state_keys:
            st[key] = zeros_like(p)

    def step(self, closure=None):
        """One NAdam step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "NAdam.step")
                if not params:
                    continue
                route = flag.route("nadam", params, group)
                if route is None:
                    continue
                impl, on_device = route
                lists, steps = self._gather(group, params, flag, on_device)
                # the product of the momentum schedule: a float64 device scalar when the
                # implementation advances it on the device, else a Python float
                mus = [F.step_counter(self.state[p]["mu_product"], p, "float64") if on_device
                       else float(self.state[p]["mu_product"]) for p in params]
                beta1, beta2 = group["betas"]
                impl(params, grads, lists["exp_avg"], lists["exp_avg_sq"], mus, steps,
                     beta1=beta1, beta2=beta2, lr=group["lr"],
                     weight_decay=group["weight_decay"], eps=group["eps"],
                     momentum_decay=group["momentum_decay"],
                     decoupled_weight_decay=group["decoupled_weight_decay"],
                     maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
                for p, mu in zip(params, mus):
                    self.state[p]["mu_product"] = mu
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)


class RAdam(_AdamLike):
    """RAdam (``torch.optim.RAdam``): Adam with a rectified adaptive step.

    With ``rho_inf = 2 / (1 - beta2) - 1`` and ``rho_t = rho_inf - 2 t beta2**t / (1 -
    beta2**t)``, the step is ``lr * m / (1 - beta1**t)`` scaled by ``r_t * sqrt(1 -
    beta2**t) / (sqrt(v) + eps)`` once ``rho_t > 5`` (``r_t`` the variance rectification),
    plain momentum SGD before.

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, decoupled_weight_decay: bool = False,
                 foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def step(self, closure=None):
        """One RAdam step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "RAdam.step")
                if not params:
                    continue
                route = flag.route("radam", params, group)
                if route is None:
                    continue
                impl, on_device = route
                lists, steps = self._gather(group, params, flag, on_device)
                beta1, beta2 = group["betas"]
                impl(params, grads, lists["exp_avg"], lists["exp_avg_sq"], steps, beta1=beta1,
                     beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
                     eps=group["eps"],
                     decoupled_weight_decay=group["decoupled_weight_decay"],
                     maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)
