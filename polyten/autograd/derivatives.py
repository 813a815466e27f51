"""The table of derivative rules: one formula per input, written in polyten ops.

``define(op, f_input0, f_input1, ..., inputs=..., output=...)``; each formula is
``f(node, g)`` where ``node.inputs`` are the op's inputs (tensors or Python scalars),
``node.output(0)`` its output (when ``output=True``), ``node.params`` its parameters, and ``g``
the incoming gradient (a tuple for multi-output ops).  Because formulas are polyten ops, the
backward pass is itself recorded under ``create_graph=True`` (double backward) and runs on
every backend.  The engine undoes broadcasting and casts to the input dtype afterwards, so a
formula may return a gradient of the broadcast output's shape.
"""

from __future__ import annotations

import math

import polyten as pt

from .rules import define

__all__ = []


def _x(n):
    return n.inputs[0]


def _y(n):
    return n.inputs[1]


def _out(n):
    return n.output(0)


def _zero(n, g):
    return pt.zeros_like(g)


# --- unary elementwise ------------------------------------------------------------------------
define("neg", lambda n, g: -g, inputs=False)
define("positive", lambda n, g: g, inputs=False)
define("abs", lambda n, g: g * pt.sign(_x(n)))
for _name in ("sign", "floor", "ceil", "trunc", "round"):
    define(_name, _zero, inputs=False)
define("exp", lambda n, g: g * _out(n), inputs=False, output=True)
define("expm1", lambda n, g: g * (_out(n) + 1), inputs=False, output=True)
define("exp2", lambda n, g: g * _out(n) * math.log(2.0), inputs=False, output=True)
define("log", lambda n, g: g / _x(n))
define("log1p", lambda n, g: g / (_x(n) + 1))
define("log2", lambda n, g: g / (_x(n) * math.log(2.0)))
define("log10", lambda n, g: g / (_x(n) * math.log(10.0)))
define("sqrt", lambda n, g: g / (2 * _out(n)), inputs=False, output=True)
define("rsqrt", lambda n, g: -0.5 * g * _out(n) ** 3, inputs=False, output=True)
define("sin", lambda n, g: g * pt.cos(_x(n)))
define("cos", lambda n, g: -g * pt.sin(_x(n)))
define("tan", lambda n, g: g * (1 + _out(n) ** 2), inputs=False, output=True)
define("asin", lambda n, g: g / pt.sqrt(1 - _x(n) ** 2))
define("acos", lambda n, g: -g / pt.sqrt(1 - _x(n) ** 2))
define("atan", lambda n, g: g / (1 + _x(n) ** 2))
define("sinh", lambda n, g: g * pt.cosh(_x(n)))
define("cosh", lambda n, g: g * pt.sinh(_x(n)))
define("tanh", lambda n, g: g * (1 - _out(n) ** 2), inputs=False, output=True)
define("asinh", lambda n, g: g / pt.sqrt(_x(n) ** 2 + 1))
define("acosh", lambda n, g: g / pt.sqrt(_x(n) ** 2 - 1))
define("atanh", lambda n, g: g / (1 - _x(n) ** 2))
define("sigmoid", lambda n, g: g * _out(n) * (1 - _out(n)), inputs=False, output=True)
define("erf", lambda n, g: g * (2.0 / math.sqrt(math.pi)) * pt.exp(-_x(n) ** 2))
define("square", lambda n, g: 2 * g * _x(n))
define("reciprocal", lambda n, g: -g * _out(n) ** 2, inputs=False, output=True)
# a mask product, not where(): NumPy's where on a random mask is ~8x slower than a multiply
# (the only difference is a nan/inf incoming gradient at x <= 0, which stays nan here)
define("relu", lambda n, g: g * (_x(n) > 0))
define("nan_to_num", lambda n, g: pt.where(pt.isfinite(_x(n)), g, 0.0))
define("conj", lambda n, g: pt.conj(g), inputs=False)


# --- binary elementwise (inputs may be Python scalars: they get no gradient) -------------------
define("add", lambda n, g: g, lambda n, g: g, inputs=False)
define("sub", lambda n, g: g, lambda n, g: -g, inputs=False)
define("mul", lambda n, g: g * _y(n), lambda n, g: g * _x(n))
define("div", lambda n, g: g / _y(n), lambda n, g: -g * _out(n) / _y(n), output=True)


def _pow_base(n, g):
    x, y = n.inputs
    if y.__class__ is int or y.__class__ is float:
        if y == 2:
            return g * (2 * x)  # the common square: no pow in the backward
        if y == 1:
            return g
    return g * y * x ** (y - 1)


def _pow_exponent(n, g):
    x = n.inputs[0]
    # d/dy x**y = x**y log x; defined as 0 where x == 0 (as PyTorch), never nan from log(0)
    safe = pt.where(x == 0, 1.0, x) if isinstance(x, pt.Tensor) else (x if x != 0 else 1.0)
    logx = pt.log(safe) if isinstance(safe, pt.Tensor) else math.log(safe)
    return g * _out(n) * logx


define("pow", _pow_base, _pow_exponent, output=True)


def _max_grad(first):
    def f(n, g):
        x, y = n.inputs
        mine, other = (x, y) if first else (y, x)
        # ties split the gradient evenly, as PyTorch
        return pt.where(mine > other, g, pt.where(mine == other, g / 2, 0.0))
    return f


def _min_grad(first):
    def f(n, g):
        x, y = n.inputs
        mine, other = (x, y) if first else (y, x)
        return pt.where(mine < other, g, pt.where(mine == other, g / 2, 0.0))
    return f


define("maximum", _max_grad(True), _max_grad(False))
define("minimum", _min_grad(True), _min_grad(False))


def _hyp(n):
    x, y = n.inputs
    return x * x + y * y


define("atan2", lambda n, g: g * _y(n) / _hyp(n), lambda n, g: -g * _x(n) / _hyp(n))
define("hypot", lambda n, g: g * _x(n) / _out(n), lambda n, g: g * _y(n) / _out(n),
       output=True)
define("logaddexp", lambda n, g: g * pt.exp(_x(n) - _out(n)),
       lambda n, g: g * pt.exp(_y(n) - _out(n)), output=True)
define("copysign", lambda n, g: g * pt.sign(_x(n)) * pt.sign(_out(n)), _zero, output=True)
define("floor_divide", _zero, _zero, inputs=False)
define("remainder", lambda n, g: g, lambda n, g: -g * pt.floor_divide(_x(n), _y(n)))
define("fmod", lambda n, g: g, lambda n, g: -g * pt.trunc(_x(n) / _y(n)))
define("where", None, lambda n, g: pt.where(n.inputs[0], g, 0.0),
       lambda n, g: pt.where(n.inputs[0], 0.0, g))


def _clamp_x(n, g):
    x, lo, hi = n.inputs
    keep = None
    if lo is not None:
        keep = x >= lo
    if hi is not None:
        keep = (x <= hi) if keep is None else keep & (x <= hi)
    return pt.where(keep, g, 0.0)


define("clamp", _clamp_x,
       lambda n, g: pt.where(n.inputs[0] < n.inputs[1], g, 0.0),
       lambda n, g: pt.where(n.inputs[0] > n.inputs[2], g, 0.0))


# --- reductions ---------------------------------------------------------------------------------
def _expand_back(g, shape, dims, keepdim):
    """Broadcast a reduced gradient back to the input's ``shape``."""
    shape = tuple(shape)
    if dims is None:
        g = g.reshape((1,) * len(shape))
    elif not keepdim:
        for d in dims:  # sorted ascending by the core
            g = g.unsqueeze(d)
    return g.expand(shape)


def _count(shape, dims):
    c = 1
    for d in (range(len(shape)) if dims is None else dims):
        c *= shape[d]
    return c


define("sum", lambda n, g: _expand_back(g, n.shapes[0][0], n.params["dims"],
                                        n.params["keepdim"]), inputs=False)
# divide the small reduced gradient, then broadcast (not the other way round)
define("mean", lambda n, g: _expand_back(g / max(_count(n.shapes[0][0], n.params["dims"]), 1),
                                         n.shapes[0][0], n.params["dims"],
                                         n.params["keepdim"]), inputs=False)


# --- linear algebra -------------------------------------------------------------------------------
def _matmul_grads(n, g, which):
    x, y = n.inputs
    x2 = x.unsqueeze(0) if x.ndim == 1 else x
    y2 = y.unsqueeze(-1) if y.ndim == 1 else y
    if x.ndim == 1 and y.ndim == 1:
        g2 = g.reshape(1, 1)
    elif x.ndim == 1:
        g2 = g.unsqueeze(-2)
    elif y.ndim == 1:
        g2 = g.unsqueeze(-1)
    else:
        g2 = g
    if which == 0:
        r = g2 @ y2.mT
        from .engine import sum_to
        r = sum_to(r, x2.shape)
        return r.reshape(x.shape)
    r = x2.mT @ g2
    from .engine import sum_to
    r = sum_to(r, y2.shape)
    return r.reshape(y.shape)


define("matmul", lambda n, g: _matmul_grads(n, g, 0), lambda n, g: _matmul_grads(n, g, 1))


# --- shape ----------------------------------------------------------------------------------------
define("reshape", lambda n, g: g.reshape(n.shapes[0][0]), inputs=False)


def _inverse_perm(dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


define("permute", lambda n, g: g.permute(_inverse_perm(n.params["dims"])), inputs=False)
define("expand", lambda n, g: g, inputs=False)  # the engine's sum_to undoes the expansion
define("astype", lambda n, g: g, inputs=False)  # the engine casts back to the input dtype
define("to_device", lambda n, g: g.to(n.params["device"]), inputs=False)
define("copy", lambda n, g: g, inputs=False)
