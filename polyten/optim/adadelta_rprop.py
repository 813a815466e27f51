"""``Adadelta`` and ``Rprop`` (``torch.optim``'s)."""

from __future__ import annotations

from typing import Optional

from ..api.creation import full_like, zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import Optimizer

__all__ = ["Adadelta", "Rprop"]


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``).

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p``::

        v = rho * v + (1 - rho) * g * g
        delta = sqrt(a + eps) / sqrt(v + eps) * g
        a = rho * a + (1 - rho) * delta * delta
        p = p - lr * delta

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 1.0
    rho : float, default 0.9
        Decay of the running averages, in [0, 1].
    eps : float, default 1e-6
    weight_decay : float, default 0
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: Optional[bool] = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _check_group(self, group, index):
        super()._check_group(group, index)
        rho = self._check_number(group, index, "rho", "rho value", minimum=0.0)
        if rho > 1.0:
            raise ValueError(f"Adadelta: invalid rho value: rho={rho!r}{self._where(index)}; "
                             f"it must be in [0, 1]")
        self._check_number(group, index, "eps", "epsilon value", minimum=0.0)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)

    def step(self, closure=None):
        """One Adadelta step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Adadelta.step")
                if not params:
                    continue
                route = flag.route("adadelta", params, group)
                if route is None:
                    continue
                impl, on_device = route
                sqs, accs = [], []
                for p in params:
                    st = state[p]
                    if not st:
                        st["step"] = 0
                        st["square_avg"] = zeros_like(p)
                        st["acc_delta"] = zeros_like(p)
                    sqs.append(st["square_avg"])
                    accs.append(st["acc_delta"])
                F.count_steps([state[p] for p in params], params, flag, on_device)
                impl(params, grads, sqs, accs, lr=group["lr"], rho=group["rho"],
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)


class Rprop(Optimizer):
    """Rprop (``torch.optim.Rprop``): resilient backpropagation, per-element step sizes.

    Each element's step size (starting at ``lr``) is multiplied by ``etas[1]`` while its
    gradient keeps its sign and by ``etas[0]`` when the sign flips (the step then skipped and
    the gradient forgotten), clamped to ``step_sizes``; ``p -= sign(g) * step_size``.

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float, default 1e-2
    etas : (float, float), default (0.5, 1.2)
        ``(etaminus, etaplus)``, with ``0 < etaminus < 1 < etaplus``.
    step_sizes : (float, float), default (1e-6, 50)
        Smallest and largest step size.
    maximize : bool, default False
    """

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable: bool = False, foreach: Optional[bool] = None,
                 maximize: bool = False, differentiable: bool = False):
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _check_group(self, group, index):
        super()._check_group(group, index)
        etas = group["etas"]
        if not (isinstance(etas, (tuple, list)) and len(etas) == 2 and
                0.0 < etas[0] < 1.0 < etas[1]):
            raise ValueError(f"Rprop: invalid eta values: {etas!r}{self._where(index)}; "
                             f"expected (etaminus, etaplus) with 0 < etaminus < 1 < etaplus")
        sizes = group["step_sizes"]
        if not (isinstance(sizes, (tuple, list)) and len(sizes) == 2 and
                0.0 <= sizes[0] <= sizes[1]):
            raise ValueError(f"Rprop: invalid step_sizes: {sizes!r}{self._where(index)}; "
                             f"expected (min, max) with 0 <= min <= max")
        group["etas"], group["step_sizes"] = tuple(etas), tuple(sizes)

    def step(self, closure=None):
        """One Rprop step over all parameter groups (see the class docstring)."""
        loss = self._closure_loss(closure)
        state = self.state
        flag = F.ScalerFlag(getattr(self, "found_inf", None))
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "Rprop.step")
                if not params:
                    continue
                route = flag.route("rprop", params, group)
                if route is None:
                    continue
                impl, on_device = route
                prevs, sizes = [], []
                for p in params:
                    st = state[p]
                    if not st:
                        st["step"] = 0
                        st["prev"] = zeros_like(p)
                        st["step_size"] = full_like(p, group["lr"])
                    prevs.append(st["prev"])
                    sizes.append(st["step_size"])
                F.count_steps([state[p] for p in params], params, flag, on_device)
                (etaminus, etaplus), (lo, hi) = group["etas"], group["step_sizes"]
                impl(params, grads, prevs, sizes, etaminus=etaminus, etaplus=etaplus,
                     step_size_min=lo, step_size_max=hi, maximize=group["maximize"],
                     **flag.kwargs(on_device, params))
        return loss

    _amp_step = step  # it handles GradScaler's found_inf (Optimizer._step_supports_amp_scaling)
