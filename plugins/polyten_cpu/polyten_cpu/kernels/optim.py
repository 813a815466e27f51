"""Fused optimizer steps (``Backend.fused_optimizers``): SGD, Adam and AdamW on native arrays,
GradScaler's unscale and update, and clip_grad_norm_'s total norm and scaling.  The steps do not
take GradScaler's ``found_inf`` (``takes_found_inf``): on the cpu reading the flag on the host
costs nothing, so the core reads it and keeps the step counters as host ints.

The generic steps of ``polyten.optim._functional`` are the definition; these do the same
arithmetic, in the same order and dtypes (so the results are identical), with in-place NumPy
operations instead of polyten ops: at the sizes of small models an optimizer step costs the
number of ops it dispatches (three or four per parameter for SGD with momentum, a dozen for
Adam), and each polyten op pays its checks in Python.  The core creates the state, keeps the
cases these do not cover (the first SGD step, complex parameters) and counts the writes.

bfloat16 parameters are the exception: they are stepped in float32 on copies, and the parameter
and each state array are rounded once at the end, as PyTorch's fused steps do, because
ml_dtypes' bfloat16 loops run about ten times slower than float32's and would round every
intermediate.  (float16 keeps the generic arithmetic: NumPy's float16 loops are native.)
"""

from __future__ import annotations

import math

from ._util import bfloat16_dtype


def _in_float32(xp, step):
    """``step`` run on float32 copies of the bfloat16 arrays of its list arguments, the
    results written back (rounded once) into the arrays it updates in place."""
    bf16, f32 = bfloat16_dtype(xp), xp.dtype("float32")
    copyto = xp.copyto
    if bf16 is None:
        return step

    def run(params, grads, *states, **hyper):
        if not any(p.dtype == bf16 for p in params):
            return step(params, grads, *states, **hyper)
        back = []

        def up(arrays, write_back):
            out = []
            for a in arrays:
                if getattr(a, "dtype", None) == bf16:
                    c = a.astype(f32)
                    if write_back:
                        back.append((a, c))
                    a = c
                out.append(a)
            return out
        ps = up(params, True)
        gs = up(grads, False)
        ss = [up(s, True) if isinstance(s, list) else s for s in states]
        result = step(ps, gs, *ss, **hyper)
        for a, c in back:
            copyto(a, c, casting="unsafe")
        return result
    return run


def optimizer_kernels(xp) -> dict:
    maximum_, sqrt_ = xp.maximum, xp.sqrt

    def signed(g, p, weight_decay, maximize):
        """The gradient the update uses (as ``_functional._signed``): never writes ``g``."""
        if weight_decay != 0:
            d = p * weight_decay
            if maximize:
                d -= g
            else:
                d += g
            return d
        return -g if maximize else g

    def sgd(params, grads, momentum_buffers, *, lr, weight_decay, momentum, dampening,
            nesterov, maximize):
        for p, g, buf in zip(params, grads, momentum_buffers):
            if momentum == 0:
                if weight_decay != 0:
                    p *= 1.0 - lr * weight_decay
                p += g * (lr if maximize else -lr)
                continue
            d = signed(g, p, weight_decay, maximize)
            buf *= momentum
            buf += d if dampening == 0 else d * (1.0 - dampening)
            if nesterov:
                u = buf * momentum
                u += d
                u *= -lr
                p += u
            else:
                p += buf * -lr

    def adam_like(decoupled):
        def step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *,
                 amsgrad, beta1, beta2, lr, weight_decay, eps, maximize):
            for i, p in enumerate(params):
                g = grads[i]
                m = exp_avgs[i]
                v = exp_avg_sqs[i]
                if weight_decay != 0 and decoupled:
                    p *= 1.0 - lr * weight_decay
                    g = -g if maximize else g
                else:
                    g = signed(g, p, weight_decay, maximize)
                t = g * (1.0 - beta1)
                m *= beta1
                m += t
                t *= g
                t *= (1.0 - beta2) / (1.0 - beta1)
                v *= beta2
                v += t
                if amsgrad:
                    vmax = max_exp_avg_sqs[i]
                    maximum_(vmax, v, out=vmax)
                    v = vmax
                step = state_steps[i]
                bc1 = 1.0 - beta1 ** step
                bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
                denom = sqrt_(v)
                denom += eps * bc2_sqrt
                u = m / denom
                u *= -lr * bc2_sqrt / bc1
                p += u
        return step

    isfinite, multiply = xp.isfinite, xp.multiply

    def amp_unscale(grads, inv_scale, found):
        """GradScaler's unscale: ``g *= inv_scale`` (a float32 array of one element) in place
        for each gradient, and ``found`` (ditto) set to 1 when any result is inf or NaN."""
        for g in grads:
            multiply(g, inv_scale, out=g)
            if not isfinite(g).all():
                found.fill(1.0)

    def amp_update_scale(scale, inv_scale, growth_tracker, found_inf, growth_factor,
                         backoff_factor, growth_interval):
        """GradScaler.update (PyTorch's ``_amp_update_scale_``) on one-element arrays, in
        place: float32 scale and reciprocal, int32 count of finite steps in a row."""
        s = float(scale.reshape(-1)[0])
        if float(found_inf.reshape(-1)[0]) != 0.0:
            s = float(f32.type(s * backoff_factor))
            tracker = 0
        else:
            tracker = int(growth_tracker.reshape(-1)[0]) + 1
            if tracker == growth_interval:
                grown = f32.type(s * growth_factor)
                if math.isfinite(grown):
                    s = float(grown)
                tracker = 0
        scale.fill(s)
        inv_scale.fill(float(f32.type(1.0 / s)))
        growth_tracker.fill(tracker)

    f32, f64 = xp.dtype("float32"), xp.dtype("float64")
    dot, amax, asarray = xp.dot, xp.max, xp.asarray

    def total_norm(grads, norm_type):
        """clip_grad_norm_'s total: PyTorch's norm of the per-gradient norms, each computed in
        the gradients' dtype (float32 / float64; else None, the generic path)."""
        dt = grads[0].dtype
        if dt != f32 and dt != f64 or norm_type not in (2.0, math.inf):
            return None
        if norm_type == 2.0:
            norms = asarray([sqrt_(dot(g.ravel(), g.ravel())) for g in grads], dtype=dt)
            return asarray(sqrt_(dot(norms, norms)), dtype=dt)
        if any(g.size == 0 for g in grads):
            return None  # the generic path raises, as vector_norm: inf has no identity
        norms = asarray([amax(abs(g)) for g in grads], dtype=dt)
        return asarray(amax(norms), dtype=dt)

    def clip_grads(grads, max_norm, total):
        """``g *= min(max_norm / (total + 1e-6), 1)`` in the gradients' dtype (a NaN total
        makes NaN gradients, as PyTorch)."""
        t = grads[0].dtype.type
        coef = xp.minimum(t(max_norm) / (total + t(1e-6)), t(1.0))
        for g in grads:
            multiply(g, coef, out=g)

    clip = xp.clip

    def clamp_grads(grads, lo, hi):
        """clip_grad_value_: every gradient clamped to ``[lo, hi]`` in place (NaN stays)."""
        for g in grads:
            clip(g, lo, hi, out=g)

    copyto = xp.copyto

    def batch_norm_running(running_mean, running_var, mean, var, momentum, var_factor):
        """``running = running * (1 - m) + stat * (m * factor)`` for both statistics, in
        place, in the statistics' dtype with the generic mul_ / add_(alpha)'s roundings
        (half buffers with float32 statistics: computed in float32, rounded once into the
        buffer); both are computed before either is written, so a call the array library
        refuses writes nothing."""
        new = []
        for r, st, f in ((running_mean, mean, 1.0), (running_var, var, var_factor)):
            t = multiply(r, 1.0 - momentum, dtype=st.dtype)
            t += st * (momentum * f)
            new.append(t)
        copyto(running_mean, new[0])
        copyto(running_var, new[1])

    return {"sgd": _in_float32(xp, sgd), "adam": _in_float32(xp, adam_like(False)),
            "adamw": _in_float32(xp, adam_like(True)),
            "amp_unscale": amp_unscale, "amp_update_scale": amp_update_scale,
            "total_norm": total_norm, "clip_grads": clip_grads,
            "batch_norm_running": batch_norm_running, "clamp_grads": clamp_grads}
