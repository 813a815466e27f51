"""``Adagrad`` (``torch.optim.Adagrad``): learning-rate decay, weight decay and an initial
accumulator value."""

from __future__ import annotations

from typing import Optional

from ..api.creation import full_like
from ..nn.parameter import is_lazy
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``).

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p`` and ``t``
    the step number::

        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                      (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: Optional[bool] = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)
        # the accumulators exist from the start (PyTorch's behaviour), so a state_dict taken
        # before the first step already holds them
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if is_lazy(p):
                    raise ValueError(f"Adagrad: parameter {i} of a group is uninitialized (a "
                                     f"lazy module's); Adagrad fills its state now, so run a "
                                     f"forward with an example batch before creating it")
                st = self.state[p]
                st["step"] = 0
                st["sum"] = full_like(p, group["initial_accumulator_value"])

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "lr_decay", "lr_decay value", minimum=0.0)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)
        self._check_number(group, index, "initial_accumulator_value",
                           "initial_accumulator_value", minimum=0.0)
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)

    def step(self, closure=None):
        """One Adagrad step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Adagrad.step")
                if not params:
                    continue
                route = flag.route("adagrad", params, group)
                if route is None:
                    continue
                impl, on_device = route
                sums = []
                for p in params:
                    st = state[p]
                    if not st:  # a group added after construction
                        st["step"] = 0
                        st["sum"] = full_like(p, group["initial_accumulator_value"])
                    sums.append(st["sum"])
                steps = F.count_steps([state[p] for p in params], params, flag, on_device)
                impl(params, grads, sums, steps, lr=group["lr"],
                     weight_decay=group["weight_decay"], lr_decay=group["lr_decay"],
                     eps=group["eps"], maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)
