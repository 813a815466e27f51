"""The update arithmetic of each optimizer, one function per algorithm over lists of tensors
(``torch.optim``'s functional form: ``adam(params, grads, exp_avgs, ...)``).

The optimizer classes only gather lists and call these.  They run under ``no_grad`` and update
parameters and state in place with polyten ops, so they work on every backend; each is written
with as few ops per parameter as the formula allows (constants are folded into Python floats,
``a - lr * b / c`` becomes ``a += (b / c) * -lr``), because at the sizes of small models the cost
of an optimizer step is the number of ops it dispatches.  Results equal PyTorch's formulas up to
rounding.

A backend may replace an algorithm with a fused step on native arrays
(``Backend.fused_optimizers``), and code may register a tensor-level replacement with
:func:`register_fused`; :func:`resolve` picks one when all the parameters of a group live on
one device.  A fused implementation must give the same results.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional

from ..api._core import Tensor

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "radam",
           "adadelta", "rprop", "register_fused", "resolve"]

_FUSED: Dict[str, Dict[str, Callable]] = {}


def register_fused(algorithm: str, backend: str, fn: Optional[Callable]) -> None:
    """Use ``fn`` (same signature as the function ``algorithm`` of this module) for groups
    whose parameters all live on ``backend``; ``fn=None`` removes it."""
    if algorithm not in _GENERIC:
        raise ValueError(f"register_fused: unknown algorithm {algorithm!r}; expected one of "
                         f"{sorted(_GENERIC)}")
    table = _FUSED.setdefault(algorithm, {})
    if fn is None:
        table.pop(backend, None)
    else:
        table[backend] = fn


def resolve(algorithm: str, params: List[Tensor], group=None) -> Callable:
    """The implementation of ``algorithm`` for these parameters: a fused one when registered
    for their backend (:func:`register_fused`) or offered by it (``Backend.fused_optimizers``)
    and all of them live there, else the generic one written in polyten ops.  A parameter
    group with ``foreach=False`` (and ``fused`` not True) gets the generic one, as PyTorch's
    for-loop implementation."""
    if not params or (group is not None and group.get("foreach") is False
                      and not group.get("fused")):
        return _GENERIC[algorithm]
    dev = params[0]._device
    real = True
    # plain loops: once per optimizer step, and cheaper than any()/all() over generators
    for p in params:
        if p._device is not dev:
            return _GENERIC[algorithm]
        if p._dtype.kind != "f":
            real = False
    table = _FUSED.get(algorithm)
    if table:
        fn = table.get(dev.type)
        if fn is not None:
            return fn
    kernel = dev.backend.fused_optimizers.get(algorithm)
    if kernel is not None and real:
        step = _NATIVE_STEPS.get((algorithm, kernel))
        if step is None:
            step = _NATIVE_STEPS[(algorithm, kernel)] = _native_step(algorithm, kernel)
        return step
    return _GENERIC[algorithm]


_NATIVE_STEPS: Dict = {}


# where an algorithm's state lists hold the step counters (a GradScaler fallback reads them)
_COUNTERS = {"adam": -1, "adamw": -1, "adagrad": -1, "adamax": -1, "radam": -1, "nadam": -1}
# and where they hold other device scalars: NAdam's mu_products (read back into the same list,
# which the generic step updates and the optimizer stores)
_SCALARS = {"nadam": 2}


def _native_step(algorithm: str, kernel: Callable) -> Callable:
    """A backend's fused step on native arrays, behind the generic signature: the core keeps
    the first SGD step (it creates the momentum buffers) and counts the in-place writes.
    With ``found_inf=`` (GradScaler's flag, for a kernel with ``takes_found_inf``) the step
    counters are device tensors and the kernel skips an overflowed step on the device; a
    call it declines reads the flag on the host instead."""
    generic = _GENERIC[algorithm]
    sgd = algorithm == "sgd"

    def fallback(params, grads, states, hyper, found_inf):
        if found_inf is not None:
            if bool(found_inf):  # the one host read: an inf/NaN gradient, skip the step
                return
            states = list(states)
            at = _COUNTERS.get(algorithm)
            if at is not None:  # the device counters (already advanced) as host ints
                states[at] = [step_count(s) for s in states[at]]
            at = _SCALARS.get(algorithm)
            if at is not None:
                values = states[at]
                for i, v in enumerate(values):
                    values[i] = v.item() if isinstance(v, Tensor) else v
        return generic(params, grads, *states, **hyper)

    def step(params, grads, *states, found_inf=None, **hyper):
        if sgd and hyper["momentum"] != 0:
            for b in states[0]:
                if b is None:
                    return fallback(params, grads, states, hyper, found_inf)
        pd, gd = [], []
        for p, g in zip(params, grads):
            if g._dtype is not p._dtype:
                return fallback(params, grads, states, hyper, found_inf)
            pd.append(p._data)
            gd.append(g._data)
        tensors = [s for s in states if s and isinstance(s[0], Tensor)]
        if found_inf is not None:
            hyper["found_inf"] = found_inf._data
        declined = kernel(pd, gd, *[[t._data for t in s] if s and isinstance(s[0], Tensor)
                                    else s for s in states], **hyper) is NotImplemented
        hyper.pop("found_inf", None)
        if declined:  # a dtype the kernel leaves
            return fallback(params, grads, states, hyper, found_inf)
        for group in [params] + tensors:
            for t in group:
                v = t._version
                if v is not None:
                    v[0] += 1
    step.__name__ = f"{algorithm}_fused"
    step.takes_found_inf = bool(getattr(kernel, "takes_found_inf", False))
    return step


# ------------------------------------------------------- GradScaler without a host read ---
class ScalerFlag:
    """GradScaler's ``found_inf`` for one optimizer step (PyTorch's protocol: the scaler sets
    it on optimizers whose ``_step_supports_amp_scaling`` is true), or ``None``.

    An implementation with ``takes_found_inf`` gets the flag itself and skips an overflowed
    step on the device (:meth:`on_device`); for the others the flag is read on the host, once
    per step (:meth:`skips`), and the step is skipped before any state is created."""

    __slots__ = ("tensor", "_value")

    def __init__(self, found_inf: Optional[Tensor]):
        self.tensor = found_inf
        self._value = None

    def on_device(self, impl: Callable) -> bool:
        return self.tensor is not None and getattr(impl, "takes_found_inf", False)

    def skips(self) -> bool:
        if self.tensor is None:
            return False
        if self._value is None:
            self._value = bool(self.tensor)  # the host read
        return self._value

    def route(self, algorithm: str, params: List[Tensor], group):
        """``(implementation, on_device)`` of ``algorithm`` for this group (:func:`resolve`),
        or None when the flag -- read on the host for an implementation that cannot skip
        itself -- says to skip the step."""
        impl = resolve(algorithm, params, group)
        on_device = self.on_device(impl)
        if not on_device and self.skips():
            return None
        return impl, on_device

    def kwargs(self, on_device: bool, params: List[Tensor]) -> dict:
        """The implementation's extra keyword: the flag on the group's device, if it skips on
        the device."""
        return {"found_inf": self.tensor.to(params[0]._device)} if on_device else {}


def step_counter(step, p: Tensor, dtype: str = "float32") -> Tensor:
    """``p``'s step counter (or another per-parameter scalar of the state) as a 0-d device
    tensor -- float32 for a counter, PyTorch's fused optimizers' ``state["step"]`` -- for an
    implementation that reads it on the device."""
    if isinstance(step, Tensor):
        if step._device is p._device and step._dtype.name == dtype and step.ndim == 0:
            return step
        step = step.item()
    from ..api.creation import full
    return full((), float(step), dtype=dtype, device=p._device)


def step_count(step) -> int:
    """A step counter as a host int (reads a device counter once)."""
    if isinstance(step, Tensor):
        step = step.item()
    return int(step)


def count_steps(states: List[dict], params: List[Tensor], flag: ScalerFlag,
                on_device: bool) -> list:
    """Advance each parameter's ``state["step"]`` and return the counters: host ints plus one,
    or -- for an implementation that skips on the device -- float32 0-d device counters
    advanced on the device unless GradScaler's flag is set (the backend's
    ``fused_optimizers["amp_step_count"]``: one launch on CUDA; else two polyten ops per
    counter), so that a skipped step never counts."""
    if not on_device:
        out = []
        for st in states:
            st["step"] = step_count(st["step"]) + 1
            out.append(st["step"])
        return out
    counters = []
    for st, p in zip(states, params):
        st["step"] = step_counter(st["step"], p)
        counters.append(st["step"])
    dev = params[0]._device
    found = flag.tensor.to(dev)
    hook = dev.backend.fused_optimizers.get("amp_step_count")
    if hook is not None and hook([c._data for c in counters], found._data) is not NotImplemented:
        for c in counters:
            v = c._version
            if v is not None:
                v[0] += 1
        return counters
    keep = (found == 0).to("float32")
    for c in counters:
        c.add_(keep.to(c._device))
    return counters


def _signed(g: Tensor, p: Tensor, weight_decay: float, maximize: bool) -> Tensor:
    """The gradient the update uses: ``-g`` when maximizing, plus ``weight_decay * p``
    (a new tensor whenever it differs from ``g``; ``g`` itself is never written)."""
    if weight_decay != 0:
        d = p * weight_decay
        return d.sub_(g) if maximize else d.add_(g)
    return -g if maximize else g


def sgd(params: List[Tensor], grads: List[Tensor], momentum_buffers: List[Optional[Tensor]],
        *, lr: float, weight_decay: float, momentum: float, dampening: float, nesterov: bool,
        maximize: bool) -> None:
    """SGD with momentum (PyTorch's algorithm).  ``momentum_buffers[i]`` is ``None`` before
    the first step and is then replaced by the new buffer (the caller stores it)."""
    for i, p in enumerate(params):
        g = grads[i]
        if momentum == 0:
            if weight_decay != 0:  # p - lr * (g + wd * p), as one scale and one add
                p.mul_(1.0 - lr * weight_decay)
            p.add_(g * (lr if maximize else -lr))
            continue
        d = _signed(g, p, weight_decay, maximize)
        buf = momentum_buffers[i]
        if buf is None:
            buf = momentum_buffers[i] = d.clone() if d is g else d
        else:
            buf.mul_(momentum)
            buf.add_(d if dampening == 0 else d * (1.0 - dampening))
        if nesterov:
            u = buf * momentum
            p.add_(u.add_(d).mul_(-lr))
        else:
            p.add_(buf * -lr)


def _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, amsgrad,
          beta1, beta2, lr, weight_decay, eps, maximize, decoupled):
    for i, p in enumerate(params):
        g = grads[i]
        m = exp_avgs[i]
        v = exp_avg_sqs[i]
        step = state_steps[i]
        if weight_decay != 0 and decoupled:
            p.mul_(1.0 - lr * weight_decay)
            g = -g if maximize else g
        else:
            g = _signed(g, p, weight_decay, maximize)
        # m = beta1 m + (1 - beta1) g ;  v = beta2 v + (1 - beta2) g^2, with one temporary
        t = g * (1.0 - beta1)
        m.mul_(beta1)
        m.add_(t)
        t.mul_(g)
        t.mul_((1.0 - beta2) / (1.0 - beta1))
        v.mul_(beta2)
        v.add_(t)
        if amsgrad:
            vmax = max_exp_avg_sqs[i]
            vmax.maximum_(v)
            v = vmax
        bc1 = 1.0 - beta1 ** step
        bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
        # p -= lr/bc1 * m / (sqrt(v)/bc2_sqrt + eps)  ==  p -= c * m / (sqrt(v) + eps*bc2_sqrt)
        denom = v.sqrt()
        denom.add_(eps * bc2_sqrt)
        u = m / denom
        p.add_(u.mul_(-lr * bc2_sqrt / bc1))


def adam(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
         exp_avg_sqs: List[Tensor], max_exp_avg_sqs: List[Tensor], state_steps: List[int], *,
         amsgrad: bool, beta1: float, beta2: float, lr: float, weight_decay: float, eps: float,
         maximize: bool, decoupled_weight_decay: bool = False) -> None:
    """Adam (PyTorch's algorithm; L2 weight decay added to the gradient, or decoupled as
    AdamW when ``decoupled_weight_decay``).  ``state_steps[i]`` is the step number being
    taken (1 for the first step)."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad,
          beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps,
          maximize=maximize, decoupled=decoupled_weight_decay)


def adamw(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
          exp_avg_sqs: List[Tensor], max_exp_avg_sqs: List[Tensor], state_steps: List[int], *,
          amsgrad: bool, beta1: float, beta2: float, lr: float, weight_decay: float,
          eps: float, maximize: bool) -> None:
    """AdamW: Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` first)."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad,
          beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps,
          maximize=maximize, decoupled=True)


def rmsprop(params: List[Tensor], grads: List[Tensor], square_avgs: List[Tensor],
            grad_avgs: List[Optional[Tensor]], momentum_buffers: List[Optional[Tensor]], *,
            lr: float, alpha: float, eps: float, weight_decay: float, momentum: float,
            centered: bool, maximize: bool) -> None:
    """RMSprop (PyTorch's algorithm; ``grad_avgs`` used when ``centered``,
    ``momentum_buffers`` when ``momentum > 0``)."""
    for i, p in enumerate(params):
        g = _signed(grads[i], p, weight_decay, maximize)
        v = square_avgs[i]
        v.mul_(alpha)
        v.add_((g * (1.0 - alpha)).mul_(g))
        if centered:
            ga = grad_avgs[i]
            ga.mul_(alpha)
            ga.add_(g * (1.0 - alpha))
            avg = (ga * ga).neg_().add_(v).sqrt_()
        else:
            avg = v.sqrt()
        avg.add_(eps)
        if momentum > 0:
            buf = momentum_buffers[i]
            buf.mul_(momentum)
            buf.add_(g / avg)
            p.add_(buf * -lr)
        else:
            p.add_((g / avg).mul_(-lr))


def adagrad(params: List[Tensor], grads: List[Tensor], state_sums: List[Tensor],
            state_steps: List[int], *, lr: float, weight_decay: float, lr_decay: float,
            eps: float, maximize: bool) -> None:
    """Adagrad (PyTorch's algorithm, dense gradients).  ``state_steps[i]`` is the step
    number being taken (1 for the first step)."""
    for i, p in enumerate(params):
        g = _signed(grads[i], p, weight_decay, maximize)
        clr = lr / (1 + (state_steps[i] - 1) * lr_decay)
        s = state_sums[i]
        s.add_(g * g)
        std = s.sqrt()
        std.add_(eps)
        p.add_((g / std).mul_(-clr))


def _decay(g, p, lr, weight_decay, maximize, decoupled):
    """The gradient the update uses, with L2 (added to it) or decoupled (``p *= 1 - lr *
    wd``, applied here) weight decay."""
    if weight_decay != 0 and decoupled:
        p.mul_(1.0 - lr * weight_decay)
        return -g if maximize else g
    return _signed(g, p, weight_decay, maximize)


def adamax(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
           exp_infs: List[Tensor], state_steps: List[int], *, beta1: float, beta2: float,
           lr: float, weight_decay: float, eps: float, maximize: bool) -> None:
    """Adamax (PyTorch's algorithm): Adam with the infinity norm,
    ``u = max(beta2 u, |g| + eps)``, ``p -= lr / (1 - beta1**t) * m / u``."""
    for i, p in enumerate(params):
        g = _signed(grads[i], p, weight_decay, maximize)
        m, u = exp_avgs[i], exp_infs[i]
        m.mul_(beta1)
        m.add_(g * (1.0 - beta1))
        u.mul_(beta2)
        u.maximum_(g.abs().add_(eps))
        p.add_((m / u).mul_(-lr / (1.0 - beta1 ** state_steps[i])))


def nadam(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
          exp_avg_sqs: List[Tensor], mu_products: List[float], state_steps: List[int], *,
          beta1: float, beta2: float, lr: float, weight_decay: float, eps: float,
          momentum_decay: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """NAdam (PyTorch's algorithm: Nesterov momentum with the momentum schedule
    ``mu_t = beta1 (1 - 0.5 * 0.96**(t psi))``).  ``mu_products[i]`` is the running product
    of the ``mu`` before this step; the caller stores the updated one."""
    for i, p in enumerate(params):
        g = _decay(grads[i], p, lr, weight_decay, maximize, decoupled_weight_decay)
        step = state_steps[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        prod = mu_products[i] * mu
        mu_products[i] = prod
        m.mul_(beta1)
        m.add_(g * (1.0 - beta1))
        v.mul_(beta2)
        v.add_((g * g).mul_(1.0 - beta2))
        denom = (v / (1.0 - beta2 ** step)).sqrt_().add_(eps)
        p.add_((g / denom).mul_(-lr * (1.0 - mu) / (1.0 - prod)))
        p.add_((m / denom).mul_(-lr * mu_next / (1.0 - prod * mu_next)))


def radam(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
          exp_avg_sqs: List[Tensor], state_steps: List[int], *, beta1: float, beta2: float,
          lr: float, weight_decay: float, eps: float, decoupled_weight_decay: bool,
          maximize: bool) -> None:
    """RAdam (PyTorch's algorithm): Adam whose adaptive step is switched on, with a
    variance rectification, once the approximated SMA length exceeds 5."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    for i, p in enumerate(params):
        g = _decay(grads[i], p, lr, weight_decay, maximize, decoupled_weight_decay)
        step = state_steps[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]
        m.mul_(beta1)
        m.add_(g * (1.0 - beta1))
        v.mul_(beta2)
        v.add_((g * g).mul_(1.0 - beta2))
        bc1 = 1.0 - beta1 ** step
        bc2 = 1.0 - beta2 ** step
        rho_t = rho_inf - 2.0 * step * (beta2 ** step) / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            denom = v.sqrt().add_(eps)
            p.add_((m / denom).mul_(-lr * rect * math.sqrt(bc2) / bc1))
        else:
            p.add_(m * (-lr / bc1))


def adadelta(params: List[Tensor], grads: List[Tensor], square_avgs: List[Tensor],
             acc_deltas: List[Tensor], *, lr: float, rho: float, eps: float,
             weight_decay: float, maximize: bool) -> None:
    """Adadelta (PyTorch's algorithm): ``delta = sqrt(acc + eps) / sqrt(v + eps) * g``."""
    for i, p in enumerate(params):
        g = _signed(grads[i], p, weight_decay, maximize)
        v, acc = square_avgs[i], acc_deltas[i]
        v.mul_(rho)
        v.add_((g * g).mul_(1.0 - rho))
        delta = (acc + eps).sqrt_().div_((v + eps).sqrt_()).mul_(g)
        acc.mul_(rho)
        acc.add_((delta * delta).mul_(1.0 - rho))
        p.add_(delta.mul_(-lr))


def rprop(params: List[Tensor], grads: List[Tensor], prevs: List[Tensor],
          step_sizes: List[Tensor], *, etaminus: float, etaplus: float, step_size_min: float,
          step_size_max: float, maximize: bool) -> None:
    """Rprop (PyTorch's algorithm): per-element step sizes grown by ``etaplus`` while the
    gradient keeps its sign and shrunk by ``etaminus`` (that step skipped) when it flips."""
    from ..api.creation import full_like, zeros_like
    from ..api.elementwise import where
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        prod = g * prevs[i]
        flip = prod < 0
        # the factors in the parameter's dtype (a Python-scalar where would be float32)
        factor = where(prod > 0, full_like(p, etaplus),
                       where(flip, full_like(p, etaminus), full_like(p, 1.0)))
        sz = step_sizes[i]
        sz.mul_(factor)
        sz.clamp_(step_size_min, step_size_max)
        g = where(flip, zeros_like(g), g)
        p.add_(g.sign().mul_(sz).neg_())
        prevs[i].copy_(g)


_GENERIC = {"sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop, "adagrad": adagrad,
            "adamax": adamax, "nadam": nadam, "radam": radam, "adadelta": adadelta,
            "rprop": rprop}
