"""``ASGD`` (``torch.optim.ASGD``): averaged stochastic gradient descent (Polyak-Juditsky),
with PyTorch's step-size schedule and averaging start."""

from __future__ import annotations

import struct
from typing import Optional

from ..api.creation import zeros_like
from ..api.tensor import Tensor
from ..autograd.grad_mode import no_grad
from .optimizer import Optimizer

__all__ = ["ASGD"]


def _scalar(x: float) -> float:
    """``x`` at the precision PyTorch keeps ASGD's ``eta`` and ``mu`` in (its scalar dtype:
    float32, float64 when that is the default dtype), so trajectories match torch's."""
    from ..api.dtypes import get_default_dtype
    if get_default_dtype().name == "float64":
        return float(x)
    return struct.unpack("f", struct.pack("f", x))[0]


def _number(v) -> float:
    return v.item() if isinstance(v, Tensor) else float(v)


class ASGD(Optimizer):
    """Averaged stochastic gradient descent (``torch.optim.ASGD``).

    With ``g`` the gradient (negated when ``maximize``) plus ``weight_decay * p`` and ``t``
    the step number, each step uses the ``eta`` and ``mu`` of the previous one (``eta = lr``
    and ``mu = 1`` at first)::

        p = p * (1 - lambd * eta) - eta * g
        ax = p                       if mu == 1
        ax = ax + mu * (p - ax)      otherwise      (the running average of the iterates)
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / max(1, t - t0)

    so averaging starts once ``t`` exceeds ``t0 + 1``; the average is ``state[p]["ax"]``.

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters to optimize, or parameter groups.
    lr : float, default 1e-2
    lambd : float, default 1e-4
        Decay term.
    alpha : float, default 0.75
        Power of the ``eta`` schedule.
    t0 : float, default 1e6
        Step after which averaging starts.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    foreach : bool, optional
        Accepted for PyTorch compatibility (polyten runs the same ops either way).
    maximize : bool, default False
    differentiable, capturable : bool, default False
        Only False is supported (as for every polyten optimizer).

    Notes
    -----
    The state holds ``step`` (a Python int), ``eta`` and ``mu`` (Python floats, rounded to
    float32 -- float64 under a float64 default dtype -- as PyTorch stores them) and ``ax``.
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: Optional[bool] = None,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        self._check_number(group, index, "weight_decay", "weight_decay value", minimum=0.0)
        self._check_number(group, index, "lambd", "decay term lambd")
        self._check_number(group, index, "alpha", "eta power alpha")
        self._check_number(group, index, "t0", "averaging start t0")

    def step(self, closure=None):
        """One ASGD step over all parameter groups (see the class docstring); returns the
        closure's loss, if a closure is given."""
        loss = self._closure_loss(closure)
        state = self.state
        with no_grad():
            for group in self.param_groups:
                params, grads = self._grads(group, "ASGD.step")
                lr, lambd, alpha = group["lr"], group["lambd"], group["alpha"]
                t0, wd, maximize = group["t0"], group["weight_decay"], group["maximize"]
                for p, g in zip(params, grads):
                    st = state[p]
                    if not st:
                        st["step"] = 0
                        st["eta"] = _scalar(lr)
                        st["mu"] = 1.0
                        st["ax"] = zeros_like(p)
                    if maximize:
                        g = -g
                    if wd != 0:
                        g = g + p * wd
                    eta, mu = _number(st["eta"]), _number(st["mu"])
                    step = int(_number(st["step"])) + 1
                    p.mul_(1.0 - lambd * eta)
                    p.add_(g * -eta)
                    ax = st["ax"]
                    if mu != 1:
                        ax.add_((p - ax).mul_(mu))
                    else:
                        ax.copy_(p)
                    st["step"] = step
                    st["eta"] = _scalar(lr / ((1 + lambd * lr * step) ** alpha))
                    st["mu"] = _scalar(1 / max(1, step - t0))
        return loss
