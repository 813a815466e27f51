"""Fused optimizer steps on CUDA: one kernel per parameter for every optimizer of
``polyten.optim`` (Adam, AdamW, SGD, RMSprop, Adagrad, Adamax, NAdam, RAdam, Adadelta,
Rprop).

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

    def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps,
                weight_decay, momentum, centered, maximize):
        name = ("rmsprop_step" + ("_centered" if centered else "")
                + ("_momentum" if momentum > 0 else ""))
        k = ew[name]
        for i, p in enumerate(params):
            outs = [p, square_avgs[i]]
            if centered:
                outs.append(grad_avgs[i])
            if momentum > 0:
                outs.append(momentum_buffers[i])
            on_device(p, lambda: k(grads[i], alpha, eps, weight_decay, momentum, lr, maximize,
                                   *outs))

    def adagrad(params, grads, state_sums, state_steps, *, lr, weight_decay, lr_decay, eps,
                maximize):
        k = ew["adagrad_step"]
        for i, p in enumerate(params):
            clr = lr / (1 + (state_steps[i] - 1) * lr_decay)
            on_device(p, lambda: k(grads[i], clr, eps, weight_decay, maximize, p,
                                   state_sums[i]))

    def adamax(params, grads, exp_avgs, exp_infs, state_steps, *, beta1, beta2, lr,
               weight_decay, eps, maximize):
        k = ew["adamax_step"]
        for i, p in enumerate(params):
            clr = lr / (1.0 - beta1 ** state_steps[i])
            on_device(p, lambda: k(grads[i], beta1, beta2, eps, clr, weight_decay, maximize,
                                   p, exp_avgs[i], exp_infs[i]))

    def nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps, *, beta1,
              beta2, lr, weight_decay, eps, momentum_decay, decoupled_weight_decay,
              maximize):
        k = ew["nadam_step"]
        decay = 1.0 - lr * weight_decay
        for i, p in enumerate(params):
            t = state_steps[i]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            prod = mu_products[i] * mu
            mu_products[i] = prod  # the caller stores it (the generic function does the same)
            on_device(p, lambda: k(grads[i], beta1, beta2, eps, 1.0 - beta2 ** t,
                                   -lr * (1.0 - mu) / (1.0 - prod),
                                   -lr * mu_next / (1.0 - prod * mu_next), weight_decay,
                                   decay, decoupled_weight_decay, maximize, p, exp_avgs[i],
                                   exp_avg_sqs[i]))

    def radam(params, grads, exp_avgs, exp_avg_sqs, state_steps, *, beta1, beta2, lr,
              weight_decay, eps, decoupled_weight_decay, maximize):
        k = ew["radam_step"]
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        decay = 1.0 - lr * weight_decay
        for i, p in enumerate(params):
            t = state_steps[i]
            bc1, bc2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
            rho_t = rho_inf - 2.0 * t * (beta2 ** t) / bc2
            adaptive = rho_t > 5.0
            c_adapt = 0.0
            if adaptive:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                c_adapt = -lr * rect * math.sqrt(bc2) / bc1
            on_device(p, lambda: k(grads[i], beta1, beta2, eps, adaptive, c_adapt, -lr / bc1,
                                   weight_decay, decay, decoupled_weight_decay, maximize, p,
                                   exp_avgs[i], exp_avg_sqs[i]))

    def adadelta(params, grads, square_avgs, acc_deltas, *, lr, rho, eps, weight_decay,
                 maximize):
        k = ew["adadelta_step"]
        for i, p in enumerate(params):
            on_device(p, lambda: k(grads[i], rho, eps, lr, weight_decay, maximize, p,
                                   square_avgs[i], acc_deltas[i]))

    def rprop(params, grads, prevs, step_sizes, *, etaminus, etaplus, step_size_min,
              step_size_max, maximize):
        k = ew["rprop_step"]
        for i, p in enumerate(params):
            on_device(p, lambda: k(grads[i], etaminus, etaplus, step_size_min, step_size_max,
                                   maximize, p, prevs[i], step_sizes[i]))

    unscale_k = ew["amp_unscale"]

    def amp_unscale(grads, inv_scale, found):
        """GradScaler's unscale: one kernel per gradient, scaling it in place and setting
        ``found[0]`` (a float32 array on the gradients' device) on an inf/NaN."""
        for g in grads:
            on_device(g, lambda: unscale_k(inv_scale, g, found))

    return {"amp_unscale": amp_unscale,
            "adam": adam_like(False), "adamw": adam_like(True), "sgd": sgd,
            "rmsprop": rmsprop, "adagrad": adagrad, "adamax": adamax, "nadam": nadam,
            "radam": radam, "adadelta": adadelta, "rprop": rprop}
