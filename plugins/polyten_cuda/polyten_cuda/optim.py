"""Fused optimizer steps on CUDA: one kernel per parameter for Adam, AdamW and SGD.

The generic steps of ``polyten.optim._functional`` dispatch 10 to 15 polyten ops per parameter
(each a kernel launch and a temporary); these read the gradient and the state once and write
the parameter and the state once.  They are registered with
``polyten.optim._functional.register_fused`` when the cuda backend loads, take the same
arguments as the generic functions and give the same results up to rounding (half precision is
computed in float32).  The step-dependent constants are folded on the host from Python numbers,
so a step never reads a device value.
"""

from __future__ import annotations

import math

_FLOAT = frozenset(("float16", "float32", "float64"))


def make(cp, ew):
    """``{algorithm: fused function}`` for ``register_fused``, from the elementwise kernels of
    :func:`polyten_cuda.fused.build`."""
    from polyten.api._core import bump_version
    from polyten.api.tensor import wrap
    from polyten.optim import _functional as F

    adam_k, ams_k = ew["adam_step"], ew["adam_amsgrad_step"]
    sgd_k, sgd_m_k = ew["sgd_step"], ew["sgd_momentum_step"]
    current = cp.cuda.runtime.getDevice
    Device = cp.cuda.Device

    def fusable(p, g):
        return p._dtype.name in _FLOAT and g._dtype is p._dtype

    def on_device(p, fn):
        dev = p._device.index
        if dev == current():
            return fn()
        with Device(dev):  # multi-GPU: launch where the parameter lives
            return fn()

    def adam_like(decoupled):
        def step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *,
                 amsgrad, beta1, beta2, lr, weight_decay, eps, maximize,
                 decoupled_weight_decay=False):
            dec = decoupled or decoupled_weight_decay
            rest = [i for i, (p, g) in enumerate(zip(params, grads)) if not fusable(p, g)]
            skip = set(rest)
            one_m_b1 = 1.0 - beta1
            v_coef = (1.0 - beta2) / (1.0 - beta1)
            decay = 1.0 - lr * weight_decay
            for i, p in enumerate(params):
                if i in skip:
                    continue
                step_n = state_steps[i]
                bc1 = 1.0 - beta1 ** step_n
                bc2_sqrt = math.sqrt(1.0 - beta2 ** step_n)
                args = (grads[i]._data, beta1, one_m_b1, beta2, v_coef, eps * bc2_sqrt,
                        -lr * bc2_sqrt / bc1, weight_decay, decay, dec, maximize,
                        p._data, exp_avgs[i]._data, exp_avg_sqs[i]._data)
                if amsgrad:
                    vmax = max_exp_avg_sqs[i]
                    on_device(p, lambda: ams_k(*args, vmax._data))
                    bump_version(vmax)
                else:
                    on_device(p, lambda: adam_k(*args))
                bump_version(p)
                bump_version(exp_avgs[i])
                bump_version(exp_avg_sqs[i])
            if rest:  # complex parameters: the generic polyten-op formulas
                F._adam([params[i] for i in rest], [grads[i] for i in rest],
                        [exp_avgs[i] for i in rest], [exp_avg_sqs[i] for i in rest],
                        [max_exp_avg_sqs[i] for i in rest] if amsgrad else [],
                        [state_steps[i] for i in rest], amsgrad=amsgrad, beta1=beta1,
                        beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps,
                        maximize=maximize, decoupled=dec)
        return step

    def sgd(params, grads, momentum_buffers, *, lr, weight_decay, momentum, dampening,
            nesterov, maximize):
        rest = []
        for i, p in enumerate(params):
            g = grads[i]
            if not fusable(p, g):
                rest.append(i)
                continue
            if momentum == 0:
                on_device(p, lambda: sgd_k(g._data, 1.0 - lr * weight_decay,
                                           lr if maximize else -lr, p._data))
                bump_version(p)
                continue
            buf = momentum_buffers[i]
            first = buf is None
            if first:
                def alloc():
                    return cp.empty(p._data.shape, dtype=p._data.dtype)
                buf = momentum_buffers[i] = wrap(on_device(p, alloc), p._device, p._dtype)
            on_device(p, lambda: sgd_m_k(g._data, lr, weight_decay, momentum, dampening,
                                         nesterov, maximize, first, p._data, buf._data))
            bump_version(p)
            if not first:
                bump_version(buf)
        if rest:
            sub = [momentum_buffers[i] for i in rest]
            F.sgd([params[i] for i in rest], [grads[i] for i in rest], sub, lr=lr,
                  weight_decay=weight_decay, momentum=momentum, dampening=dampening,
                  nesterov=nesterov, maximize=maximize)
            for i, b in zip(rest, sub):
                momentum_buffers[i] = b

    return {"adam": adam_like(False), "adamw": adam_like(True), "sgd": sgd}


def register(fns) -> None:
    from polyten.optim._functional import register_fused
    for name, fn in fns.items():
        register_fused(name, "cuda", fn)
