"""Fused kernels of the pointwise activation composites ``gelu``, ``silu``, ``leaky_relu``,
``elu`` (behind ``elu``, ``selu`` and ``celu``) and ``softplus``, forward and backward.

Each is one pass of array-library calls working in place on one temporary, instead of the
polyten-op default's chain of ops (one allocation, one dispatch and one recorded node per
step).  The formulas are PyTorch's (``x / (1 + exp(-x))`` for silu, ``gelu_backward``,
``elu_backward``, ``softplus_backward``), with its choices at the kinks (the gradient at 0 is
the ``x <= 0`` branch's); NaN gives NaN, except leaky_relu's gradient (``g * slope``, as
PyTorch's).  float16 and bfloat16 are computed in float32 and rounded once at the end, as
PyTorch computes half precision.  The core has checked the dtypes (floating only); 0-d inputs
are computed as shape (1,) because NumPy's ufuncs return scalars for them, which the in-place
steps cannot write.

The CUDA backend instantiates these with ``xp=cupy`` and replaces them with its own
``ElementwiseKernel`` versions (``polyten_cuda.fused_src``), which follow the same formulas in
the same order of operations.
"""

from __future__ import annotations

import math

from ._util import low_precision
from .elementwise import _erf

SQRT1_2 = math.sqrt(0.5)
# PyTorch's constants (ATen's GeluKernel / gelu_backward)
GELU_BETA = math.sqrt(0.5) * 2.0 / math.sqrt(math.pi) * 0.5  # 1 / sqrt(2 pi): the pdf's
GELU_TANH_BETA = math.sqrt(2.0) * 2.0 / math.sqrt(math.pi) * 0.5  # sqrt(2 / pi)
GELU_KAPPA = 0.044715


def _add_x_pdf(xp, t, x):
    """``t += x * phi(x)`` in place (phi: the standard normal density), the second term of
    the exact gelu's derivative."""
    p = xp.multiply(x, x)
    p *= -0.5
    xp.exp(p, out=p)
    p *= GELU_BETA
    p *= x
    t += p


def _half_in_float(xp, fn):
    """``fn`` computing float16 and bfloat16 arrays in float32 (rounded once) and 0-d arrays as
    (1,)."""
    low, f32 = low_precision(xp), xp.dtype("float32")

    def k(*args):
        x = args[0]
        if x.ndim == 0:
            return k(*((a.reshape(1) if hasattr(a, "ndim") else a) for a in args)).reshape(())
        dt = x.dtype
        if dt in low:
            r = fn(*((a.astype(f32) if getattr(a, "dtype", None) == dt else a)
                     for a in args))
            return r.astype(dt)
        return fn(*args)
    k.__name__ = fn.__name__
    return k


def _factor(xp):
    """``slope_factor(x, slope)``: a new array of x's dtype, 1 where ``x > 0`` and ``slope``
    elsewhere (NaN included), computed as ``m + (1 - m) * slope`` from the 0/1 mask ``m``:
    exact (``1 + 0`` or ``0 + slope``) and, unlike NumPy's where/copyto on a random sign
    mask, free of mispredicted branches (about 10x faster on 16k elements)."""
    greater, negative = xp.greater, xp.negative

    def slope_factor(x, slope):
        m = greater(x, 0).astype(x.dtype)
        f = negative(m)
        f += 1.0
        f *= slope
        f += m
        return f
    return slope_factor


def _forward(xp):
    erf = _erf(xp)
    exp, tanh, expm1, log1p = xp.exp, xp.tanh, xp.expm1, xp.log1p
    multiply, negative, minimum, divide = xp.multiply, xp.negative, xp.minimum, xp.divide
    maximum, copyto, greater = xp.maximum, xp.copyto, xp.greater
    _slope_factor = _factor(xp)

    def gelu(x, approximate):
        if approximate == "tanh":
            # (tanh(sqrt(2/pi) * (x + 0.044715 x^3)) + 1) * x * 0.5
            t = multiply(x, x)
            t *= x
            t *= GELU_KAPPA
            t += x
            t *= GELU_TANH_BETA
            tanh(t, out=t)
        else:
            # (erf(x / sqrt(2)) + 1) * x * 0.5
            t = erf(multiply(x, SQRT1_2))
        t += 1.0
        t *= x
        t *= 0.5
        return t

    def silu(x):
        t = negative(x)
        exp(t, out=t)
        t += 1.0
        return divide(x, t, out=t)

    def leaky_relu(x, negative_slope):
        f = _slope_factor(x, negative_slope)
        f *= x  # x * 1 or x * slope: exact, and NaN * slope is NaN
        return f

    def elu(x, alpha, scale, input_scale):
        # expm1 of min(x, 0): no overflow in the branch that x > 0 replaces; that branch is 0
        # there (expm1(0) * alpha), so adding max(x, 0) selects exactly, without a select
        # (NumPy's where/copyto on a random sign mask are 10x slower than arithmetic)
        # (NumPy's minimum / maximum return the second operand of a tie, so x = -0.0 keeps
        # its sign through both terms: elu(-0.0) is -0.0, as torch's x > 0 ? x : ...)
        t = minimum(0.0, x)
        if input_scale != 1.0:
            t *= input_scale
        expm1(t, out=t)
        t *= alpha
        t += maximum(-0.0, x)  # NaN stays NaN (both terms are)
        if scale != 1.0:
            t *= scale
        return t

    def softplus(x, beta, threshold):
        t = multiply(x, beta)
        linear = greater(t, threshold)
        minimum(t, threshold, out=t)  # exp never overflows in the linear branch
        exp(t, out=t)
        log1p(t, out=t)
        if beta != 1.0:
            t /= beta
        copyto(t, x, where=linear)
        return t

    return {"gelu": gelu, "silu": silu, "leaky_relu": leaky_relu, "elu": elu,
            "softplus": softplus}


def _backward(xp):
    erf = _erf(xp)
    exp, tanh = xp.exp, xp.tanh
    multiply, negative, minimum, divide = xp.multiply, xp.negative, xp.minimum, xp.divide
    copyto, greater = xp.copyto, xp.greater
    _slope_factor = _factor(xp)

    def gelu(g, x, approximate):
        if approximate == "tanh":
            # g * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 kappa x^2)),
            # t = tanh(sqrt(2/pi) (x + kappa x^3)): PyTorch's gelu_backward
            x_sq = multiply(x, x)
            t = multiply(x_sq, x)
            t *= GELU_KAPPA
            t += x
            t *= GELU_TANH_BETA
            tanh(t, out=t)
            d = multiply(t, t)  # 1 - t^2, times x / 2, times the inner derivative
            negative(d, out=d)
            d += 1.0
            d *= x
            d *= 0.5
            x_sq *= 3.0 * GELU_KAPPA
            x_sq += 1.0
            x_sq *= GELU_TANH_BETA
            d *= x_sq
            t += 1.0
            t *= 0.5
            t += d
        else:
            # g * (Phi(x) + x * phi(x))
            t = erf(multiply(x, SQRT1_2))
            t += 1.0
            t *= 0.5
            _add_x_pdf(xp, t, x)
        t *= g
        return t

    def silu(g, x):
        # g * s * (1 + x * (1 - s)), s = sigmoid(x)
        s = negative(x)
        exp(s, out=s)
        s += 1.0
        divide(1.0, s, out=s)
        t = negative(s)
        t += 1.0
        t *= x
        t += 1.0
        t *= s
        t *= g
        return t

    def leaky_relu(g, x, negative_slope):
        f = _slope_factor(x, negative_slope)  # NaN: g * slope, as PyTorch
        f *= g
        return f

    def elu(g, x, alpha, scale, input_scale):
        # x > 0: g * scale; else g * input_scale * alpha * scale * exp(x * input_scale)
        t = minimum(x, 0.0)
        if input_scale != 1.0:
            t *= input_scale
        exp(t, out=t)
        t *= input_scale * alpha * scale  # finite where x > 0 (exp(0)): t * 0 below is 0
        m = greater(x, 0).astype(t.dtype)
        scale_m = multiply(m, scale)
        negative(m, out=m)
        m += 1.0
        t *= m  # t where x <= 0 (or NaN), 0 where x > 0
        t += scale_m  # ... plus scale where x > 0: exact, no select
        t *= g
        return t

    def softplus(g, x, beta, threshold):
        # beta x > threshold: g; else g * sigmoid(beta x) = g / (1 + exp(-beta x))
        t = multiply(x, beta)
        linear = greater(t, threshold)
        negative(t, out=t)
        exp(t, out=t)
        t += 1.0
        divide(g, t, out=t)
        copyto(t, g, where=linear)
        return t

    return {"gelu": gelu, "silu": silu, "leaky_relu": leaky_relu, "elu": elu,
            "softplus": softplus}


def kernels(xp, **ctx) -> dict:
    return {name: _half_in_float(xp, fn) for name, fn in _forward(xp).items()}


_PARAMS = {"gelu": ("approximate",), "silu": (), "leaky_relu": ("negative_slope",),
           "elu": ("alpha", "scale", "input_scale"), "softplus": ("beta", "threshold")}


def backward_kernels(xp, **ctx) -> dict:
    """``Backend.backward_kernels`` of the activations: the gradient of the one input from the
    incoming gradient and the saved input (cast to the input's dtype when they differ).

    The exact gelu's is marked ``wants_output``: the core then passes the forward's output
    (``params["output"]``: the native, its version counter and the version it had), and while
    that output is unmodified Phi(x) is read off it as ``y / x`` (0.5 at x = 0) instead of a
    second erf -- SciPy's erf costs about 20 times NumPy's exp.  float16 and bfloat16 recompute
    (their outputs are rounded to 11 and 8 bits)."""
    out = {}
    for name, fn in _backward(xp).items():
        out[name] = _backward_kernel(_half_in_float(xp, fn), _PARAMS[name])
    recompute = out["gelu"]
    low = low_precision(xp)
    divide, copyto = xp.divide, xp.copyto

    def gelu(grads, inputs, outputs, params):
        saved = params.get("output")
        if saved is not None and params["approximate"] != "tanh":
            y, version, at = saved
            g, x = grads[0], inputs[0]
            if version[0] == at and x.dtype not in low and x.ndim and y.shape == x.shape:
                if g.dtype != x.dtype:
                    g = g.astype(x.dtype)
                t = divide(y, x)  # Phi(x), from y = x * Phi(x)
                copyto(t, 0.5, where=x == 0)
                _add_x_pdf(xp, t, x)
                t *= g
                return (t,)
        return recompute(grads, inputs, outputs, params)
    gelu.wants_output = True
    out["gelu"] = gelu
    return out


def _backward_kernel(fn, names):
    if not names:
        def k(grads, inputs, outputs, params):
            g, x = grads[0], inputs[0]
            if g.dtype != x.dtype:
                g = g.astype(x.dtype)
            return (fn(g, x),)
    else:
        def k(grads, inputs, outputs, params):
            g, x = grads[0], inputs[0]
            if g.dtype != x.dtype:
                g = g.astype(x.dtype)
            return (fn(g, x, *[params[n] for n in names]),)
    return k
