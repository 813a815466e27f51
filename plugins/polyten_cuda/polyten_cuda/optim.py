"""Fused optimizer steps on CUDA for every optimizer of ``polyten.optim`` (Adam, AdamW, SGD,
RMSprop, Adagrad, Adamax, NAdam, RAdam, Adadelta, Rprop) and GradScaler's unscale, update and
step counters.

The generic steps of ``polyten.optim._functional`` dispatch 10 to 15 polyten ops per parameter
(each a kernel launch and a temporary); these read the gradient and the state once and write
the parameter and the state once, and one launch updates up to 64 parameters
(:mod:`polyten_cuda.multi_tensor`; non-contiguous parameters take one kernel each, with the
same arithmetic).  They are the backend's ``fused_optimizers``
(``polyten.dispatch.Backend``): native arrays in, updated in place, the same arithmetic as the
generic functions up to rounding (float16 and bfloat16 are computed in float32, each stored
value rounded once, as PyTorch's fused and foreach steps).  The core creates the
state, keeps the first SGD step and complex parameters, and counts the writes.  The
step-dependent constants are folded on the host from Python numbers, so a step never reads a
device value.  Under GradScaler (``found_inf=``, PyTorch's fused optimizers' protocol) every
step skips an overflowed step on the device instead: the flag is read by the
kernels, the step counters live on the device (``amp_step_count``: one launch advances them)
and each thread folds the step constants from its parameter's counter, so a mixed-precision
step never reads the device either.
"""

from __future__ import annotations

import math

from . import bfloat16 as _bf16
from .half_retry import decline_on_gap
from . import fused_src, multi_tensor
from .rows import Rows


def make(cp, ew):
    """``{algorithm: fused step}`` for ``Backend.fused_optimizers``, from the elementwise
    kernels of :func:`polyten_cuda.fused.build`."""
    mt = multi_tensor.build(cp, ew, fused_src.ELEMENTWISE)
    adam_k, ams_k = mt["adam_step"], mt["adam_amsgrad_step"]
    adam_amp_k, ams_amp_k = mt["adam_step_amp"], mt["adam_amsgrad_step_amp"]
    sgd_k, sgd_m_k = mt["sgd_step"], mt["sgd_momentum_step"]
    sgd_amp_k, sgd_m_amp_k = mt["sgd_step_amp"], mt["sgd_momentum_step_amp"]
    count_k = mt["amp_step_count"]

    def amp_step_count(counters, found_inf):
        """The device step counters (0-d float32) plus one unless GradScaler's flag is set:
        one launch per 64 of them."""
        found = found_inf.reshape(1)
        count_k([(found, c.reshape(1)) for c in counters])

    def adam_like(decoupled):
        def step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *,
                 amsgrad, beta1, beta2, lr, weight_decay, eps, maximize, found_inf=None):
            if found_inf is not None:  # GradScaler's flag: skip on the device; the counters
                found = found_inf.reshape(1)  # (advanced already) fold the constants there
                steps = [s.reshape(1) for s in state_steps]
                calls = []
                for i, p in enumerate(params):
                    args = (grads[i], beta1, beta2, weight_decay, decoupled, maximize, found,
                            steps[i], lr, eps, p, exp_avgs[i], exp_avg_sqs[i])
                    calls.append(args + (max_exp_avg_sqs[i],) if amsgrad else args)
                (ams_amp_k if amsgrad else adam_amp_k)(calls)
                return
            one_m_b1 = 1.0 - beta1
            v_coef = (1.0 - beta2) / (1.0 - beta1)
            decay = 1.0 - lr * weight_decay
            calls = []
            for i, p in enumerate(params):
                step_n = state_steps[i]
                bc1 = 1.0 - beta1 ** step_n
                bc2_sqrt = math.sqrt(1.0 - beta2 ** step_n)
                args = (grads[i], beta1, one_m_b1, beta2, v_coef, eps * bc2_sqrt,
                        -lr * bc2_sqrt / bc1, weight_decay, decay, decoupled, maximize,
                        p, exp_avgs[i], exp_avg_sqs[i])
                calls.append(args + (max_exp_avg_sqs[i],) if amsgrad else args)
            (ams_k if amsgrad else adam_k)(calls)
        step.takes_found_inf = True
        return step

    def sgd(params, grads, momentum_buffers, *, lr, weight_decay, momentum, dampening,
            nesterov, maximize, found_inf=None):
        extra = () if found_inf is None else (found_inf.reshape(1),)
        if momentum == 0:
            (sgd_k if found_inf is None else sgd_amp_k)(
                [(g, 1.0 - lr * weight_decay, lr if maximize else -lr) + extra + (p,)
                 for p, g in zip(params, grads)])
            return
        # the core runs the first step (it creates the buffers)
        (sgd_m_k if found_inf is None else sgd_m_amp_k)(
            [(g, lr, weight_decay, momentum, dampening, nesterov, maximize, False) + extra
             + (p, buf) for p, g, buf in zip(params, grads, momentum_buffers)])
    sgd.takes_found_inf = True

    def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps,
                weight_decay, momentum, centered, maximize, found_inf=None):
        name = ("rmsprop_step" + ("_centered" if centered else "")
                + ("_momentum" if momentum > 0 else ""))
        skip = () if found_inf is None else (found_inf.reshape(1),)
        calls = []
        for i, p in enumerate(params):
            outs = (p, square_avgs[i])
            if centered:
                outs += (grad_avgs[i],)
            if momentum > 0:
                outs += (momentum_buffers[i],)
            calls.append((grads[i], alpha, eps, weight_decay, momentum, lr, maximize) + skip
                         + outs)
        mt[name if found_inf is None else name + "_amp"](calls)

    def adagrad(params, grads, state_sums, state_steps, *, lr, weight_decay, lr_decay, eps,
                maximize, found_inf=None):
        if found_inf is not None:
            found = found_inf.reshape(1)
            mt["adagrad_step_amp"]([
                (grads[i], eps, weight_decay, maximize, found, state_steps[i].reshape(1), lr,
                 lr_decay, p, state_sums[i]) for i, p in enumerate(params)])
            return
        mt["adagrad_step"]([
            (grads[i], lr / (1 + (state_steps[i] - 1) * lr_decay), eps, weight_decay,
             maximize, p, state_sums[i]) for i, p in enumerate(params)])

    def adamax(params, grads, exp_avgs, exp_infs, state_steps, *, beta1, beta2, lr,
               weight_decay, eps, maximize, found_inf=None):
        if found_inf is not None:
            found = found_inf.reshape(1)
            mt["adamax_step_amp"]([
                (grads[i], beta1, beta2, eps, weight_decay, maximize, found,
                 state_steps[i].reshape(1), lr, p, exp_avgs[i], exp_infs[i])
                for i, p in enumerate(params)])
            return
        mt["adamax_step"]([
            (grads[i], beta1, beta2, eps, lr / (1.0 - beta1 ** state_steps[i]), weight_decay,
             maximize, p, exp_avgs[i], exp_infs[i]) for i, p in enumerate(params)])

    def nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps, *, beta1,
              beta2, lr, weight_decay, eps, momentum_decay, decoupled_weight_decay,
              maximize, found_inf=None):
        if found_inf is not None:  # mu_products: float64 device scalars, advanced here
            found = found_inf.reshape(1)
            steps = [s.reshape(1) for s in state_steps]
            prods = [m.reshape(1) for m in mu_products]
            mt["nadam_mu_product"]([(found, steps[i], beta1, momentum_decay, prods[i])
                                    for i in range(len(params))])
            mt["nadam_step_amp"]([
                (grads[i], beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize,
                 found, steps[i], prods[i], lr, momentum_decay, p, exp_avgs[i],
                 exp_avg_sqs[i]) for i, p in enumerate(params)])
            return
        decay = 1.0 - lr * weight_decay
        calls = []
        for i, p in enumerate(params):
            t = state_steps[i]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            prod = mu_products[i] * mu
            mu_products[i] = prod  # the caller stores it (the generic function does the same)
            calls.append((grads[i], beta1, beta2, eps, 1.0 - beta2 ** t,
                          -lr * (1.0 - mu) / (1.0 - prod),
                          -lr * mu_next / (1.0 - prod * mu_next), weight_decay,
                          decay, decoupled_weight_decay, maximize, p, exp_avgs[i],
                          exp_avg_sqs[i]))
        mt["nadam_step"](calls)

    def radam(params, grads, exp_avgs, exp_avg_sqs, state_steps, *, beta1, beta2, lr,
              weight_decay, eps, decoupled_weight_decay, maximize, found_inf=None):
        if found_inf is not None:
            found = found_inf.reshape(1)
            mt["radam_step_amp"]([
                (grads[i], beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize,
                 found, state_steps[i].reshape(1), lr, p, exp_avgs[i], exp_avg_sqs[i])
                for i, p in enumerate(params)])
            return
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        decay = 1.0 - lr * weight_decay
        calls = []
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
            calls.append((grads[i], beta1, beta2, eps, adaptive, c_adapt, -lr / bc1,
                          weight_decay, decay, decoupled_weight_decay, maximize, p,
                          exp_avgs[i], exp_avg_sqs[i]))
        mt["radam_step"](calls)

    def adadelta(params, grads, square_avgs, acc_deltas, *, lr, rho, eps, weight_decay,
                 maximize, found_inf=None):
        skip = () if found_inf is None else (found_inf.reshape(1),)
        mt["adadelta_step" if found_inf is None else "adadelta_step_amp"](
            [(grads[i], rho, eps, lr, weight_decay, maximize) + skip
             + (p, square_avgs[i], acc_deltas[i]) for i, p in enumerate(params)])

    def rprop(params, grads, prevs, step_sizes, *, etaminus, etaplus, step_size_min,
              step_size_max, maximize, found_inf=None):
        skip = () if found_inf is None else (found_inf.reshape(1),)
        mt["rprop_step" if found_inf is None else "rprop_step_amp"](
            [(grads[i], etaminus, etaplus, step_size_min, step_size_max, maximize) + skip
             + (p, prevs[i], step_sizes[i]) for i, p in enumerate(params)])

    for _step in (rmsprop, adagrad, adamax, nadam, radam, adadelta, rprop):
        _step.takes_found_inf = True  # PyTorch's fused-optimizer protocol (GradScaler)

    def amp_unscale(grads, inv_scale, found):
        """GradScaler's unscale: every gradient times ``inv_scale`` (a one-element float32
        array on their device) in place, one launch per 64 of them, and ``found[0]`` (ditto)
        set on an inf/NaN."""
        inv, found = inv_scale.reshape(1), found.reshape(1)
        mt["amp_unscale"]([(inv, g, found) for g in grads])

    update_k = ew["amp_update_scale"]

    def amp_update_scale(scale, inv_scale, growth_tracker, found_inf, growth_factor,
                         backoff_factor, growth_interval):
        """GradScaler.update on the device (one launch, no host read): PyTorch's
        ``_amp_update_scale_``, writing the reciprocal of the new scale as well."""
        multi_tensor.on_device(
            cp, multi_tensor.device_id(scale),
            lambda: update_k(found_inf.reshape(1), growth_factor, backoff_factor,
                             growth_interval, scale, inv_scale, growth_tracker))

    norm = multi_tensor.MultiTensorNorm(cp, Rows(cp))  # the partials' total: one launch

    def total_norm(grads, norm_type):
        """clip_grad_norm_'s total norm of all ``grads`` together (2 or inf): a 0-d array of
        their dtype, or None (the core's generic path)."""
        return norm(grads, norm_type)

    def clip_grads(grads, max_norm, total):
        """``g *= min(max_norm / (total + 1e-6), 1)`` for every gradient, ``total`` a 0-d
        array of their dtype on their device: one launch per 64 gradients, no host read."""
        total = total.reshape(1)  # a raw operand: one element, indexed [0] in the kernel
        mt["grad_clip_step"]([(total, max_norm, g) for g in grads])

    def clamp_grads(grads, lo, hi):
        """clip_grad_value_: every gradient clamped to ``[lo, hi]`` in place, one launch per
        64 gradients."""
        mt["grad_clamp_step"]([(lo, hi, g) for g in grads])

    running_k = ew["batch_norm_running"]

    def batch_norm_running(running_mean, running_var, mean, var, momentum, var_factor):
        """Both running statistics of a batch_norm in one launch (on their device)."""
        multi_tensor.on_device(
            cp, multi_tensor.device_id(running_mean),
            lambda: running_k(mean, var, momentum, var_factor, running_mean, running_var))

    steps = {"amp_unscale": amp_unscale, "amp_update_scale": amp_update_scale,
             "amp_step_count": amp_step_count,
             "total_norm": total_norm, "clip_grads": clip_grads,
             "batch_norm_running": batch_norm_running, "clamp_grads": clamp_grads,
             "adam": adam_like(False), "adamw": adam_like(True), "sgd": sgd,
             "rmsprop": rmsprop, "adagrad": adagrad, "adamax": adamax, "nadam": nadam,
             "radam": radam, "adadelta": adadelta, "rprop": rprop}
    bf16 = _bf16.supported(cp)
    if bf16 is not None:
        # every hook takes bfloat16 itself (computed in float32, each stored value rounded
        # once); the one-launch ones decline a call CuPy refuses
        steps.update(decline_on_gap(steps, _bf16.DECLINABLE, (bf16,)))
    return steps
