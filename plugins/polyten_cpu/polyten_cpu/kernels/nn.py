"""Fused kernels of nn composites: ``softmax``, ``log_softmax``, ``linear``, ``nll_loss``,
``cross_entropy``.

Each is one pass of array-library calls working in place on one temporary, instead of the
default's chain of polyten ops (one allocation and one dispatch per step).  The core has
checked shapes and dtypes and handles empty inputs; float16 and bfloat16 are computed in
float32 and rounded once at the end (as PyTorch accumulates half precision).
"""

from __future__ import annotations

from ._util import low_precision, row_reducers, upcast_products

_BIG = 1 << 20  # elements: above this a second temporary costs more than an extra pass


def kernels(xp, **ctx) -> dict:
    # NumPy: host values may be read (not on CuPy: a synchronisation), ndarray.dot is cheaper
    # per call than the matmul ufunc
    host = xp.__name__ == "numpy"
    nd = xp.ndarray
    asarray = xp.asarray
    low, f32 = low_precision(xp), xp.dtype("float32")
    exp, log = xp.exp, xp.log
    subtract, divide = xp.subtract, xp.divide

    def arr(r):
        return r if r.__class__ is nd else asarray(r)

    max_reduce, sum_reduce = row_reducers(xp)

    def softmax(x, dim):
        dt = x.dtype
        half = dt in low
        if half:
            x = x.astype(f32)
        z = subtract(x, max_reduce(x, axis=dim, keepdims=True))
        exp(z, out=z)
        divide(z, sum_reduce(z, axis=dim, keepdims=True), out=z)
        return arr(z.astype(dt) if half else z)

    def log_softmax(x, dim):
        dt = x.dtype
        half = dt in low
        if half:
            x = x.astype(f32)
        m = max_reduce(x, axis=dim, keepdims=True)
        z = subtract(x, m)
        if z.size < _BIG:
            s = sum_reduce(exp(z), axis=dim, keepdims=True)
        else:
            # large: recompute x - m over the exponentials rather than allocate (and fault
            # in) a second temporary of x's size
            s = sum_reduce(exp(z, out=z), axis=dim, keepdims=True)
            subtract(x, m, out=z)
        subtract(z, log(s, out=s), out=z)  # (x - m) - log(s), rounded as PyTorch's
        return arr(z.astype(dt) if half else z)

    products = upcast_products(xp)

    def linear(x, weight, bias):
        if x.dtype in products:  # accumulated in float32 and rounded once, as PyTorch
            dt = x.dtype
            return linear(x.astype(f32), weight.astype(f32),
                          None if bias is None else bias.astype(f32)).astype(dt)
        if x.ndim > 2:
            # one (batch, in) @ (in, out) product instead of a matmul per leading index
            lead = x.shape[:-1]
            out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(lead + (weight.shape[0],))
        elif host:
            out = x.dot(weight.T)  # as the matmul kernel: ndarray.dot costs less per call
        else:
            out = arr(x @ weight.T)
        if bias is not None:
            out += bias  # in place: the matmul result is a fresh array
        return out

    take_along_axis = xp.take_along_axis
    arange = xp.arange
    count_nonzero = xp.count_nonzero

    def nll_loss(x, target, weight, ignore_index, reduction):
        if x.ndim == 1:
            cdim = 0
        else:
            cdim = 1
        valid = target != ignore_index
        every = host and count_nonzero(valid) == valid.size  # no target ignored
        t = target if every else xp.where(valid, target, 0)
        if x.ndim == 2:
            picked = x[arange(x.shape[0]), t]
        elif x.ndim == 1:
            picked = x[t]
        else:
            picked = take_along_axis(x, xp.expand_dims(t, cdim), cdim).squeeze(cdim)
        acc = f32 if x.dtype in low else x.dtype
        picked = picked.astype(acc, copy=False)
        if every and weight is None:  # the common case: no mask, no weights
            if reduction == "none":
                return arr(xp.negative(picked).astype(x.dtype, copy=False))
            total = -sum_reduce(picked, axis=None, keepdims=False)
            if reduction == "mean":
                total = total / picked.size if picked.size else float("nan")
            return asarray(total, dtype=x.dtype)
        w = valid.astype(acc) if weight is None else \
            xp.where(valid, weight[t], 0).astype(acc, copy=False)
        loss = arr(-(picked * w))
        if not every:
            # an ignored target contributes 0, whatever its stand-in class 0 holds (a -inf
            # log-probability or an infinite weight made 0 * inf = NaN; torch skips it)
            loss = arr(xp.where(valid, loss, 0).astype(acc, copy=False))
        if reduction == "none":
            return arr(loss.astype(x.dtype))
        total = loss.sum()
        if reduction == "mean":
            d = w.sum()
            # every target ignored: nan (0 / 0), as PyTorch -- on the device without reading
            # d on the host (CuPy's 0 / 0 is nan and silent)
            if host:
                total = total / d if d else xp.asarray(float("nan"), acc)
            else:
                total = total / d
        return asarray(total, dtype=x.dtype)

    def cross_entropy(x, target, weight, ignore_index, reduction):
        logp = log_softmax(x, 1 if x.ndim >= 2 else 0)
        return nll_loss(logp, target, weight, ignore_index, reduction), logp

    return {"softmax": softmax, "log_softmax": log_softmax, "linear": linear,
            "nll_loss": nll_loss, "cross_entropy": cross_entropy}


def backward_kernels(xp, **ctx) -> dict:
    """Fused backward of the nn composites (``Backend.backward_kernels``): native arrays in
    and out, used when no graph of the backward is needed.  Same formulas as the polyten-op
    rules in ``polyten.autograd.derivatives``."""
    nd = xp.ndarray
    asarray = xp.asarray
    low, f32 = low_precision(xp), xp.dtype("float32")
    products = upcast_products(xp)
    sum_reduce = row_reducers(xp)[1]

    def arr(r):
        return r if r.__class__ is nd else asarray(r)

    def softmax(grads, inputs, outputs, params):
        g, y = grads[0], outputs[0]
        dim = params["dim"]
        t = g * y
        xp.subtract(g, sum_reduce(t, axis=dim, keepdims=True), out=t)
        t *= y
        return (arr(t),)

    def log_softmax(grads, inputs, outputs, params):
        g, y = grads[0], outputs[0]
        dim = params["dim"]
        e = xp.exp(y)
        e *= sum_reduce(g, axis=dim, keepdims=True)
        xp.subtract(g, e, out=e)
        return (arr(e),)

    host = xp.__name__ == "numpy"

    def target_coef(g, params, acc):
        """(targets with ignored ones at 0, each target's loss weight times ``g``: 0 for the
        ignored ones, divided by the summed weights for 'mean').  The second is 0-d when it
        is the same for every target; never ``g`` itself, so callers may write it."""
        target, weight = params["target"], params["weight"]
        valid = target != params["ignore_index"]
        if weight is None and host and xp.count_nonzero(valid) == valid.size:
            # no target ignored, no weights (the common case): g over the count for 'mean'
            if params["reduction"] == "mean":
                return target, arr(xp.true_divide(g, max(valid.size, 1), dtype=acc))
            return target, g.astype(acc)  # a copy
        t = xp.where(valid, target, 0)
        # arr: 0-d comparisons give NumPy scalars, which in-place operations cannot write
        # an ignored target's weight is 0 even where class 0's is inf (0 * inf is NaN)
        w = arr(valid.astype(acc) if weight is None else
                xp.where(valid, weight[t], 0).astype(acc, copy=False))
        if params["reduction"] == "mean":
            d = w.sum()
            # w * (g / d), as PyTorch; every target ignored: w is 0, and so the gradient
            if host:
                if d:
                    g = g / d
            else:  # no host read of d (CuPy): divide by 1 where d is 0
                g = g / xp.where(d != 0, d, 1)
        w *= g
        return t, w

    def nll_loss(grads, inputs, outputs, params):
        g = grads[0]
        cdim, shape = params["cdim"], params["shape"]
        dt = g.dtype
        t, coef = target_coef(g, params, f32 if dt in low else dt)
        xp.negative(coef, out=coef)
        if coef.ndim != t.ndim:
            coef = xp.broadcast_to(coef, t.shape)
        out = xp.zeros(shape, dtype=dt)
        if len(shape) == 2:
            out[xp.arange(shape[0]), t] = coef
        elif len(shape) == 1:
            out[t] = coef
        else:
            xp.put_along_axis(out, xp.expand_dims(t, cdim), xp.expand_dims(
                xp.asarray(coef, dtype=dt), cdim), cdim)
        return (out,)

    def linear(grads, inputs, outputs, params):
        g = grads[0]
        x, weight, bias = inputs
        needs = params["needs"]  # the engine ignores the others: don't compute them
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        xdt, wdt = x.dtype, weight.dtype
        if g2.dtype in products:  # products and the bias sum in float32 (no half BLAS)
            g2, x, weight = g2.astype(f32), x.astype(f32), weight.astype(f32)
        gx = gw = gb = None
        if needs[0]:
            gx = (g2.dot(weight) if host else g2 @ weight).reshape(x.shape).astype(
                xdt, copy=False)
        if needs[1]:
            x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
            gw = arr((g2.T.dot(x2) if host else g2.T @ x2).astype(wdt, copy=False))
        if needs[2]:
            gb = sum_reduce(g2, axis=0, keepdims=False)
            gb = arr((gb.sum() if bias.ndim == 0 else gb).astype(bias.dtype, copy=False))
        return (gx, gw, gb)

    def cross_entropy(grads, inputs, outputs, params):
        g, g_logp = grads
        if g_logp is not None:  # only a double backward sends it: the formulas do that
            return NotImplemented
        logp = outputs[1]
        cdim = params["cdim"]
        dt = logp.dtype
        acc = f32 if dt in low else dt
        t, coef = target_coef(g, params, acc)
        # softmax * coef, minus coef at each target's class
        p = xp.exp(logp.astype(acc) if dt != acc else logp)
        if p.ndim == 2:
            p *= coef[:, None] if coef.ndim else coef
            p[xp.arange(p.shape[0]), t] -= coef
        elif p.ndim == 1:
            p *= coef
            p[t] -= coef
        else:
            c = xp.expand_dims(coef, cdim) if coef.ndim else coef
            p *= c
            ti = xp.expand_dims(t, cdim)
            xp.put_along_axis(p, ti, xp.take_along_axis(p, ti, cdim) - c, cdim)
        return (arr(p.astype(dt, copy=False)),)

    return {"softmax": softmax, "log_softmax": log_softmax, "nll_loss": nll_loss,
            "linear": linear, "cross_entropy": cross_entropy}
