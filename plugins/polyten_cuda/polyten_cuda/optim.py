"""Fused optimizer steps on CUDA: one kernel per parameter for Adam, AdamW and SGD.

The generic steps of ``polyten.optim._functional`` dispatch 10 to 15 polyten ops per parameter
(each a kernel launch and a temporary); these read the gradient and the state once and write
the parameter and the state once.  They are the backend's ``fused_optimizers``
(``polyten.dispatch.Backend``): native arrays in, updated in place, the same arithmetic as the
generic functions up to rounding (half precision is computed in float32).  The core creates the
state, keeps the first SGD step and complex parameters, and counts the writes.  The
step-dependent constants are folded on the host from Python numbers, so a step never reads a
device value.
"""

from __future__ import annotations

import math


def make(cp, ew):
    """``{algorithm: fused step}`` for ``Backend.fused_optimizers``, from the elementwise
    kernels of :func:`polyten_cuda.fused.build`."""
    adam_k, ams_k = ew["adam_step"], ew["adam_amsgrad_step"]
    sgd_k, sgd_m_k = ew["sgd_step"], ew["sgd_momentum_step"]
    current = cp.cuda.runtime.getDevice
    Device = cp.cuda.Device

    def on_device(p, fn):
        dev = getattr(getattr(p, "device", None), "id", None)
        if dev is None or dev == current():
            return fn()
        with Device(dev):  # multi-GPU: launch where the parameter lives
            return fn()

    def adam_like(decoupled):
        def step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *,
                 amsgrad, beta1, beta2, lr, weight_decay, eps, maximize):
            one_m_b1 = 1.0 - beta1
            v_coef = (1.0 - beta2) / (1.0 - beta1)
            decay = 1.0 - lr * weight_decay
            for i, p in enumerate(params):
                step_n = state_steps[i]
                bc1 = 1.0 - beta1 ** step_n
                bc2_sqrt = math.sqrt(1.0 - beta2 ** step_n)
                args = (grads[i], beta1, one_m_b1, beta2, v_coef, eps * bc2_sqrt,
                        -lr * bc2_sqrt / bc1, weight_decay, decay, decoupled, maximize,
                        p, exp_avgs[i], exp_avg_sqs[i])
                if amsgrad:
                    on_device(p, lambda: ams_k(*args, max_exp_avg_sqs[i]))
                else:
                    on_device(p, lambda: adam_k(*args))
        return step

    def sgd(params, grads, momentum_buffers, *, lr, weight_decay, momentum, dampening,
            nesterov, maximize):
        for i, p in enumerate(params):
            g = grads[i]
            if momentum == 0:
                on_device(p, lambda: sgd_k(g, 1.0 - lr * weight_decay,
                                           lr if maximize else -lr, p))
                continue
            buf = momentum_buffers[i]  # the core runs the first step (it creates the buffer)
            on_device(p, lambda: sgd_m_k(g, lr, weight_decay, momentum, dampening,
                                         nesterov, maximize, False, p, buf))

    return {"adam": adam_like(False), "adamw": adam_like(True), "sgd": sgd}
