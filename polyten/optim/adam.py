"""``Adam`` and ``AdamW`` (``torch.optim.Adam`` / ``AdamW``), with ``amsgrad``, weight decay
(L2 for Adam, decoupled for AdamW) and ``maximize``."""

from __future__ import annotations

from typing import Optional

from ..api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``).

    With ``g`` the gradient (negated when ``maximize``; plus ``weight_decay * p``, or with
    ``decoupled_weight_decay`` ``p *= 1 - lr * weight_decay`` first, as AdamW)::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                        (amsgrad: v below is vmax)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v / (1 - beta2**t)) + eps)

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters to optimize, or parameter groups.
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
        Use the maximum of past second moments (AMSGrad).
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        Apply weight decay to the parameters directly (AdamW) instead of to the gradient.
    """

    _algorithm = "adam"

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused)
        if type(self) is Adam:
            defaults["decoupled_weight_decay"] = decoupled_weight_decay
        super().__init__(params, defaults)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)
        self._check_betas(group, index)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)

    def step(self, closure=None):
        """One Adam step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        name = type(self).__name__
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, f"{name}.step")
                if not params:
                    continue
                decoupled = (self._algorithm == "adamw"
                             or group.get("decoupled_weight_decay", False))
                route = flag.route("adamw" if decoupled else "adam", params, group)
                if route is None:
                    continue
                impl, on_device = route
                amsgrad = group["amsgrad"]
                exp_avgs, exp_avg_sqs, max_sqs = [], [], []
                for p in params:
                    st = state[p]
                    if not st:
                        st["step"] = 0
                        st["exp_avg"] = zeros_like(p)
                        st["exp_avg_sq"] = zeros_like(p)
                    if amsgrad and "max_exp_avg_sq" not in st:
                        st["max_exp_avg_sq"] = zeros_like(p)
                    exp_avgs.append(st["exp_avg"])
                    exp_avg_sqs.append(st["exp_avg_sq"])
                    if amsgrad:
                        max_sqs.append(st["max_exp_avg_sq"])
                steps = F.count_steps([state[p] for p in params], params, flag, on_device)
                beta1, beta2 = group["betas"]
                extra = flag.kwargs(on_device, params)
                impl(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, amsgrad=amsgrad,
                     beta1=beta1, beta2=beta2, lr=group["lr"],
                     weight_decay=group["weight_decay"], eps=group["eps"],
                     maximize=group["maximize"], **extra)
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay, ``p *= 1 - lr *
    weight_decay`` before the Adam update.  Same parameters as :class:`Adam`, with
    ``weight_decay`` defaulting to 1e-2."""

    _algorithm = "adamw"

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, capturable=capturable, differentiable=differentiable,
                         fused=fused)
