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

import cmath
import math

import polyten as pt

from ..api.dtypes import LOW_PRECISION as _LOW
from .engine import sum_to
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
def _abs_grad(n, g):
    x = _x(n)
    if x._dtype.is_complex:  # PyTorch: g * sgn(x), sgn(x) = x / |x| (0 at 0)
        a = pt.abs(x)
        return g * pt.where(a == 0, 0, x / pt.where(a == 0, 1, a))
    return g * pt.sign(x)


define("abs", _abs_grad, holomorphic=False)
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
# the gamma family: each derivative is the next member, itself differentiable (double backward)
define("lgamma", lambda n, g: g * pt.digamma(_x(n)))
define("digamma", lambda n, g: g * pt.polygamma(1, _x(n)))
define("polygamma", lambda n, g: g * pt.polygamma(n.params["n"] + 1, _x(n)))
# dropout (nn.functional): the scaled keep mask is a param (a plain tensor); x is not kept
define("dropout", lambda n, g: g * n.params["mask"], inputs=False)
define("square", lambda n, g: 2 * g * _x(n))
define("reciprocal", lambda n, g: -g * _out(n) ** 2, inputs=False, output=True)
# where(), not a mask product: an inf / NaN gradient at x <= 0 gives 0, as PyTorch's
# threshold_backward (sqrt(relu(x)) at 0); the cpu and cuda backends fuse it
define("relu", lambda n, g: pt.where(_x(n) > 0, g, pt.zeros((), dtype=g.dtype, device=g.device)))
define("nan_to_num", lambda n, g: pt.where(pt.isfinite(_x(n)), g, 0.0))
define("conj", lambda n, g: pt.conj(g), inputs=False, holomorphic=False)
# PyTorch's convention for a complex input z = x + iy: the gradient is dL/dx + i dL/dy, so
# real(z) gives g and imag(z) gives i g; on a real input real is the identity and imag a zero
define("real", lambda n, g: g, inputs=False, holomorphic=False)
define("imag", lambda n, g: g * 1j if n.shapes[0][1].is_complex else pt.zeros_like(g),
       inputs=False, holomorphic=False)


# --- binary elementwise (inputs may be Python scalars: they get no gradient) -------------------
define("add", lambda n, g: g, lambda n, g: g, inputs=False)
define("sub", lambda n, g: g, lambda n, g: -g, inputs=False)
define("mul", lambda n, g: g * _y(n), lambda n, g: g * _x(n)).reads = ((1,), (0,))
define("div", lambda n, g: g / _y(n), lambda n, g: -g * _out(n) / _y(n),
       output=True).reads = ((1,), (1,))


def _pow_base(n, g):
    x, y = n.inputs
    if y.__class__ is int or y.__class__ is float:
        if y == 2:
            return g * (2 * x)  # the common square: no pow in the backward
        if y == 1:
            return g
        if y == 0:
            return pt.zeros_like(g)  # x ** 0 is constant (0 * 0 ** -1 would be nan at 0)
        return g * y * x ** (y - 1)
    # as PyTorch's pow_backward_self: 0 where the exponent is 0
    return pt.where(y == 0, 0.0, g * y * x ** (y - 1))


def _pow_exponent(n, g):
    x, y = n.inputs
    # d/dy x**y = x**y log x, defined as 0 where x == 0 and y >= 0 (PyTorch's
    # pow_backward_exponent): never 0 * log(0); x == 0 with y < 0 keeps inf * -inf
    yr = y.real if y.dtype.is_complex else y
    if isinstance(x, pt.Tensor):
        zero = (x == 0) & (yr >= 0)
        safe = pt.where(zero, 1.0, x)
        return g * pt.where(zero, 0.0, _out(n) * pt.log(safe))
    if x == 0:
        return g * pt.where(yr >= 0, 0.0, _out(n) * float("-inf"))
    return g * _out(n) * (cmath.log(x) if isinstance(x, complex) else math.log(x))


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
    if x._data.ndim == 2 and y._data.ndim == 2:  # the common case: no reshapes, no sum_to
        return g @ y.mT if which == 0 else x.mT @ g
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
        return sum_to(g2 @ y2.mT, x2.shape).reshape(x.shape)
    return sum_to(x2.mT @ g2, y2.shape).reshape(y.shape)


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


# =================================================================================================
# Shape, indexing, reduction and linear-algebra rules.
#
# Helpers first.  Ops with any number of tensor inputs (cat, stack, einsum) register one
# formula ``f(node, g, i)`` for every input (:func:`_define_variadic`).  Gradients of ops that
# pick elements of their input (indexing, gather, diagonal, sort values, ...) put ``g`` back at
# the picked positions: with ``scatter_add`` (repeated positions accumulate) or, for basic
# (view) indexing, by writing into zeros (:func:`_embed`); both record themselves, so double
# backward works.
# =================================================================================================
from ..dispatch.checks import indices_checked as _INDICES_CHECKED  # noqa: E402
from ..dispatch.dispatcher import kernels as _kernels  # noqa: E402
from .grad_mode import grad_enabled as _grad_on  # noqa: E402
from .graph import record as _record  # noqa: E402

_setitem_k = _kernels("setitem")


def _define_variadic(name, fn, inputs=True, output=False):
    from .rules import define_variadic
    return define_variadic(name, fn, inputs=inputs, output=output)


def _shape0(n):
    return tuple(n.shapes[0][0])


def _numel(shape) -> int:
    k = 1
    for s in shape:
        k *= s
    return k


def _zeros(shape, g):
    return pt.zeros(tuple(shape), dtype=g.dtype, device=g.device)


def _keep(t, shape, dims, keepdim):
    """A reduced tensor with the reduced dims present (size 1), so it broadcasts to ``shape``."""
    if dims is None:
        return t.reshape((1,) * len(shape))
    if not keepdim:
        for d in dims:  # sorted ascending by the core
            t = t.unsqueeze(d)
    return t


def _rdims(dims):
    """``dims`` for a keepdim reduction call (``None``: all dims)."""
    return None if dims is None else tuple(dims)


_EMBED = define("embed", lambda n, g: g[n.params["key"]], inputs=False)


def _embed(g, shape, key):
    """Zeros of ``shape`` with ``g`` written at the basic (view) ``key``: the adjoint of
    ``x[key]``, recorded as ``embed`` (whose gradient is ``g[key]`` again)."""
    z = _zeros(shape, g)
    _setitem_k[z._device.backend](z._data, key, g._data)
    if _grad_on():
        _record(_EMBED, z, (g,), {"key": key})
    return z


def _forward_indices(f):
    """A formula that indexes with the indices its forward already bounds-checked (or with
    indices it computed): their checks are skipped (``checks.indices_checked``)."""
    def formula(n, g):
        with _INDICES_CHECKED:
            return f(n, g)
    formula.__name__ = getattr(f, "__name__", "formula")
    return formula


def _scatter_positions(g, shape, pos):
    """Zeros of ``shape`` plus ``g`` added at the flat positions ``pos`` (an int64 tensor of
    ``g``'s shape); repeated positions accumulate."""
    shape = tuple(shape)
    flat = _zeros((_numel(shape),), g).scatter_add(0, pos.reshape(-1), g.reshape(-1))
    return flat.reshape(shape)


def _arange_like(shape, device):
    return pt.arange(_numel(shape), dtype=pt.int64, device=device).reshape(tuple(shape))


def _pad_dim(g, d, start, size):
    """``g`` placed at ``start`` along dim ``d`` of a zero tensor whose dim ``d`` has ``size``:
    the adjoint of ``narrow`` (written with ``cat`` so that it records itself)."""
    gs = tuple(g.shape)
    after = size - start - gs[d]
    if not start and not after:
        return g
    parts = []
    if start:
        parts.append(_zeros(gs[:d] + (start,) + gs[d + 1:], g))
    parts.append(g)
    if after:
        parts.append(_zeros(gs[:d] + (after,) + gs[d + 1:], g))
    return pt.cat(parts, d)


def _gather_src(g, d, index, src_shape):
    """``g.gather(d, index)`` padded with zeros to ``src_shape`` (scatter's src may be larger
    than its index)."""
    r = g.gather(d, index)
    if tuple(r.shape) != tuple(src_shape):
        r = _embed(r, src_shape, tuple(slice(0, s) for s in r.shape) + (Ellipsis,))
    return r


# --- shape ------------------------------------------------------------------------------------
def _cat_grad(n, g, i):
    span = n.params["spans"][i]
    if span is None:  # an empty 1-D input skipped by cat's legacy rule
        return _zeros(n.shapes[i][0], g)
    return g.narrow(n.params["dim"], span[0], span[1])


_define_variadic("cat", _cat_grad, inputs=False)
_define_variadic("stack", lambda n, g, i: g[(slice(None),) * n.params["dim"] + (i,)],
                 inputs=False)
define("narrow", lambda n, g: _pad_dim(g, n.params["dim"], n.params["start"],
                                       _shape0(n)[n.params["dim"]]), inputs=False)


def _split_grad(n, g):
    d = n.params["dim"]
    spans = n.params["spans"]
    size = _shape0(n)[d]
    pos = 0
    for a, b in spans:
        if a != pos:
            break
        pos = b
    else:
        if pos == size:  # the pieces tile the dim in order: one cat
            return pt.cat(list(g), d)
    total = None
    for gi, (a, b) in zip(g, spans):
        if b > a:
            part = _pad_dim(gi, d, a, size)
            total = part if total is None else total + part
    return total if total is not None else _zeros(_shape0(n), g[0])


define("split", _split_grad, inputs=False)
# a node with one output (unbind over a dim of size 1) gets its gradient bare, not in a tuple
define("unbind", lambda n, g: pt.stack(list(g) if isinstance(g, (tuple, list)) else [g],
                                       n.params["dim"]), inputs=False)
define("flip", lambda n, g: pt.flip(g, n.params["dims"]), inputs=False)


def _roll_grad(n, g):
    shifts, dims = n.params["shifts"], n.params["dims"]
    back = tuple(-s for s in shifts)
    if dims is None:
        return pt.roll(g, back[0])
    return pt.roll(g, back, dims)


define("roll", _roll_grad, inputs=False)


def _tile_grad(n, g):
    shape = _shape0(n)
    reps = n.params["reps"]
    m = len(reps)
    if m == 0:
        return g
    padded = (1,) * (m - len(shape)) + shape
    inter = []
    for r, s in zip(reps, padded):
        inter += [r, s]
    return g.reshape(tuple(inter)).sum(dim=tuple(range(0, 2 * m, 2))).reshape(shape)


define("tile", _tile_grad, inputs=False)
define("tril", lambda n, g: pt.tril(g, n.params["k"]), inputs=False)
define("triu", lambda n, g: pt.triu(g, n.params["k"]), inputs=False)


# --- indexing ---------------------------------------------------------------------------------
define("getitem", lambda n, g: _embed(g, _shape0(n), n.params["key"]), inputs=False)


def _positions_grad(n, g):
    """Advanced indexing, take, masked_select: add ``g`` back at the picked positions."""
    from ..api.indexing import _flat_positions
    shape = _shape0(n)
    p = n.params
    pos = _flat_positions(shape, g._device, p.get("k1"), p.get("k2"), p.get("flat", False),
                          p.get("expand"))
    return _scatter_positions(g, shape, pos)


for _name in ("index", "take", "masked_select"):
    define(_name, _forward_indices(_positions_grad), inputs=False)
define("gather", _forward_indices(lambda n, g: _zeros(_shape0(n), g).scatter_add(
    n.params["dim"], n.params["index"], g)), inputs=False)
define("take_along_dim", _forward_indices(lambda n, g: _zeros(n.params["shape"], g).scatter_add(
    n.params["dim"], n.params["index"], g)), inputs=False)
define("scatter_add", lambda n, g: g, _forward_indices(
    lambda n, g: _gather_src(g, n.params["dim"], n.params["index"], n.shapes[1][0])),
       inputs=False)
# with repeated indices the value that lands is unspecified; as PyTorch, src gets the gradient
# of every position it was written to
define("scatter", _forward_indices(lambda n, g: pt.scatter(g, n.params["dim"],
                                                           n.params["index"], 0)),
       _forward_indices(
           lambda n, g: _gather_src(g, n.params["dim"], n.params["index"], n.shapes[1][0])),
       inputs=False)


def _src_part(n):
    """scatter_reduce's src cut to its index's shape (the part it reads)."""
    src, idx = n.inputs[1], n.params["index"]
    if tuple(src.shape) == tuple(idx.shape):
        return src
    return src[tuple(slice(0, s) for s in idx.shape)]


def _prod_others(v, zeros, p1):
    """d (product of a group) / d v, for a member ``v`` of a group with ``zeros`` zero members
    and product ``p1`` of its nonzero ones: exact where v or others are 0 (no 0 / 0)."""
    is0 = v == 0
    return pt.where(is0, (zeros == 1) * p1, (zeros == 0) * p1 / pt.where(is0, 1, v))


def _scatter_reduce_weights(n):
    """(d out / d input, d out[index] / d src[:index.shape]) of scatter_reduce, elementwise
    (the gradients are g times the first, and g.gather(dim, index) times the second)."""
    x, p = n.inputs[0], n.params
    d, idx, reduce = p["dim"], p["index"], p["reduce"]
    s = _src_part(n)
    ones = pt.ones(tuple(idx.shape), dtype=x.dtype, device=x.device)
    count = None
    self_in = 1.0
    if not p["include_self"]:
        count = _zeros(x.shape, x).scatter_add(d, idx, ones)
        self_in = (count == 0).to(x.dtype)  # x's value stays only where nothing is written
    if reduce == "sum":
        return self_in, 1.0
    if reduce == "mean":
        if count is None:
            count = _zeros(x.shape, x).scatter_add(d, idx, ones)
        inv = 1.0 / (count + self_in)
        return self_in * inv, inv.gather(d, idx)
    if reduce == "prod":
        xin = x if count is None else pt.where(self_in == 1, x, 1.0)
        zeros = (xin == 0).to(x.dtype) + _zeros(x.shape, x).scatter_add(d, idx,
                                                                       (s == 0).to(x.dtype))
        p1 = pt.scatter_reduce(pt.where(xin == 0, 1.0, xin), d, idx, pt.where(s == 0, 1.0, s),
                               "prod")
        return (self_in * _prod_others(xin, zeros, p1),
                _prod_others(s, zeros.gather(d, idx), p1.gather(d, idx)))
    # amax / amin: the gradient is shared evenly among the values equal to the result
    r = _out(n)
    hit_x = (x == r).to(x.dtype) * self_in
    hit_s = (s == r.gather(d, idx)).to(x.dtype)
    ties = hit_x + _zeros(x.shape, x).scatter_add(d, idx, hit_s)
    ties = pt.where(ties == 0, 1.0, ties)
    return hit_x / ties, hit_s / ties.gather(d, idx)


def _scatter_reduce_x(n, g):
    return g * _scatter_reduce_weights(n)[0]


def _scatter_reduce_src(n, g):
    d, idx = n.params["dim"], n.params["index"]
    r = g.gather(d, idx) * _scatter_reduce_weights(n)[1]
    src_shape = tuple(n.shapes[1][0])
    if tuple(r.shape) != src_shape:
        r = _embed(r, src_shape, tuple(slice(0, s) for s in r.shape) + (Ellipsis,))
    return r


define("scatter_reduce", _forward_indices(_scatter_reduce_x),
       _forward_indices(_scatter_reduce_src), output=True)
define("index_select", _forward_indices(lambda n, g: pt.index_add(
    _zeros(_shape0(n), g), n.params["dim"], n.params["index"], g)), inputs=False)
define("masked_fill", lambda n, g: pt.where(n.params["mask"], 0.0, g), inputs=False)


def _select_grad(n, g):
    """Values picked by indices along a dim (max/min with dim, sort, topk, median)."""
    shape = _shape0(n)
    if not shape:
        return g.reshape(())
    d = n.params["dim"]
    idx = n.params["indices"]
    if not n.params["keepdim"]:
        g = g.unsqueeze(d)
        idx = idx.unsqueeze(d)
    return _zeros(shape, g).scatter_add(d, idx, g)


for _name in ("max_dim", "min_dim", "sort", "topk", "median"):
    define(_name, _forward_indices(_select_grad), inputs=False)


# --- reductions -------------------------------------------------------------------------------
def _prod_grad(n, g):
    x = _x(n)
    dims, keep = n.params["dims"], n.params["keepdim"]
    shape = tuple(x.shape)
    gk = _keep(g, shape, dims, keep)
    out = _keep(_out(n), shape, dims, keep)
    zero = x == 0
    safe = pt.where(zero, 1.0, x)
    # where x != 0 the product of the others is out / x (differentiable through out, so double
    # backward is exact too); at a zero it is the product of the non-zeros if that zero is the
    # only one of its slice, else 0.  (Second derivatives at slices with several zeros are 0.)
    others = pt.prod(safe, dim=_rdims(dims), keepdim=True)
    nz = zero.sum(dim=_rdims(dims), keepdim=True)
    at_zero = pt.where(nz == 1, gk * others, 0.0)
    return pt.where(zero, at_zero, gk * out / safe)


define("prod", _prod_grad, output=True)


def _extreme_grad(n, g):
    """amax/amin (and max/min without dim): the gradient is shared evenly among the ties."""
    x = _x(n)
    dims, keep = n.params["dims"], n.params["keepdim"]
    shape = tuple(x.shape)
    mask = (x == _keep(_out(n), shape, dims, keep)).to(x.dtype)
    count = mask.sum(dim=_rdims(dims), keepdim=True)
    return _keep(g, shape, dims, keep) * mask / count


define("amax", _extreme_grad, output=True)
define("amin", _extreme_grad, output=True)
define("median_all", _extreme_grad, output=True)  # median() without dim: ties share too


def _count_over(shape, dims) -> int:
    return _numel(shape) if dims is None else _numel([shape[d] for d in dims])


def _var_core(x, gk, dims, correction):
    denom = _count_over(tuple(x.shape), dims) - correction
    scale = (2.0 / denom) if denom != 0 else math.inf
    return gk * scale * (x - pt.mean(x, dim=_rdims(dims), keepdim=True))


def _var_grad(n, g):
    x = _x(n)
    p = n.params
    return _var_core(x, _keep(g, tuple(x.shape), p["dims"], p["keepdim"]), p["dims"],
                     p["correction"])


def _std_grad(n, g):
    out = _out(n)
    zero = out == 0
    # d std = d var / (2 std); 0 where the std is 0 (as PyTorch), without dividing by 0
    g = pt.where(zero, 0.0, g / (2 * pt.where(zero, 1.0, out)))
    return _var_grad(n, g)


define("var", _var_grad)
define("std", _std_grad, output=True)


def _lse_grad(n, g):
    x = _x(n)
    dims, keep = n.params["dims"], n.params["keepdim"]
    shape = tuple(x.shape)
    return _keep(g, shape, dims, keep) * pt.exp(x - _keep(_out(n), shape, dims, keep))


define("logsumexp", _lse_grad, output=True)


def _sgn(x):
    """sign(x) for real x; x / |x| (0 at 0) for complex."""
    if not x.dtype.is_complex:
        return pt.sign(x)
    a = pt.abs(x)
    return pt.where(a == 0, 0.0, x / pt.where(a == 0, 1.0, a))


def _vnorm_grad(n, g):
    x = _x(n)
    p = n.params["ord"]
    dims, keep = n.params["dims"], n.params["keepdim"]
    shape = tuple(x.shape)
    if p == 0:
        return pt.zeros_like(x)
    gk = _keep(g, shape, dims, keep)
    if p == 1:
        return gk * _sgn(x)
    out = _keep(_out(n), shape, dims, keep)
    zero = out == 0
    safe = pt.where(zero, 1.0, out)
    if p == 2:
        return x * pt.where(zero, 0.0, gk / safe)
    a = pt.abs(x)
    if math.isinf(p):
        mask = (a == out).to(a.dtype)
        return gk * _sgn(x) * mask / mask.sum(dim=_rdims(dims), keepdim=True)
    r = gk * _sgn(x) * (a / safe) ** (p - 1)
    # 0 where the norm is 0, and (p < 1) where x is 0, as PyTorch
    return pt.where(zero | (a == 0), 0.0, r)


define("vector_norm", _vnorm_grad, output=True)


def _rev_cumsum(t, d):
    return pt.flip(pt.cumsum(pt.flip(t, (d,)), d), (d,))


define("cumsum", lambda n, g: g if g.ndim == 0 else _rev_cumsum(g, n.params["dim"]),
       inputs=False)


def _cumprod_grad(n, g):
    x = _x(n)
    if x.ndim == 0:
        return g
    d = n.params["dim"]
    out = _out(n)
    zero = x == 0
    safe = pt.where(zero, 1.0, x)
    # where x_i != 0: sum_{j >= i} g_j out_j / x_i (exact, also when a zero comes before or
    # after i).  At the first zero k of a slice: prod_{l<k} x_l * sum_{j>=k} g_j prod_{k<l<=j}
    # x_l.  Later zeros get 0.
    nonzero_part = _rev_cumsum(g * out, d) / safe
    zc = pt.cumsum(zero, d)
    before = zc == 0
    first = zero & (zc == 1)
    after = pt.logical_not(before | first)
    head = pt.cumprod(pt.where(before, x, 1.0), d)
    tail = pt.cumprod(pt.where(after, x, 1.0), d)
    at_first = head * _rev_cumsum(pt.where(before, 0.0, g * tail), d)
    return pt.where(zero, pt.where(first, at_first, 0.0), nonzero_part)


define("cumprod", _cumprod_grad, output=True)


# --- linear algebra ---------------------------------------------------------------------------
def _diag_positions_grad(n, g):
    shape = _shape0(n)
    p = n.params
    pos = pt.diagonal(_arange_like(shape, g.device), p["offset"], p["dim1"], p["dim2"])
    return _scatter_positions(g, shape, pos)


define("diagonal", _diag_positions_grad, inputs=False)


def _diag_grad(n, g):
    shape = _shape0(n)
    k = n.params["k"]
    if len(shape) == 1:
        return pt.diagonal(g, k, 0, 1)
    pos = pt.diagonal(_arange_like(shape, g.device), k, 0, 1)
    return _scatter_positions(g, shape, pos)


define("diag", _diag_grad, inputs=False)


def _einsum_grad(n, g, i):
    lhs, out = n.params["plan"].split("->")
    terms = lhs.split(",")
    ops = n.inputs
    mine = terms[i]
    shape = tuple(n.shapes[i][0])
    others = [j for j in range(len(terms)) if j != i]
    avail = set(out)
    for j in others:
        avail.update(terms[j])
    uniq = "".join(dict.fromkeys(mine))
    keep = "".join(c for c in uniq if c in avail)
    eq = ",".join([out] + [terms[j] for j in others]) + "->" + keep
    G = pt.einsum(eq, g, *[ops[j] for j in others])
    size = dict(zip(mine, shape))
    for k, c in enumerate(keep):
        if G.shape[k] != size[c]:  # a size-1 dim of this operand that broadcast in the forward
            G = G.sum(dim=k, keepdim=True)
    for k, c in enumerate(uniq):  # labels summed over in this operand alone: broadcast back
        if c not in avail:
            G = G.unsqueeze(k)
    G = G.expand(tuple(size[c] for c in uniq))
    if len(uniq) == len(mine):
        return G
    # repeated labels ("ii->i"): only the diagonal takes part; put G back on it
    pos = pt.einsum(mine + "->" + uniq, _arange_like(shape, g.device))
    return _scatter_positions(G, shape, pos)


_define_variadic("einsum", _einsum_grad)


def _td_free(nd, dims):
    return [d for d in range(nd) if d not in dims]


def _tensordot_x(n, g):
    x, y = n.inputs
    dx, dy = n.params["dims_x"], n.params["dims_y"]
    fx, fy = _td_free(x.ndim, dx), _td_free(y.ndim, dy)
    r = pt.tensordot(g, y, ([len(fx) + j for j in range(len(fy))], fy))
    order = fx + [dx[dy.index(b)] for b in sorted(dy)]
    return r.permute(tuple(order.index(a) for a in range(x.ndim)))


def _tensordot_y(n, g):
    x, y = n.inputs
    dx, dy = n.params["dims_x"], n.params["dims_y"]
    fx, fy = _td_free(x.ndim, dx), _td_free(y.ndim, dy)
    r = pt.tensordot(x, g, (fx, list(range(len(fx)))))
    order = [dy[dx.index(a)] for a in sorted(dx)] + fy
    return r.permute(tuple(order.index(b) for b in range(y.ndim)))


define("tensordot", _tensordot_x, _tensordot_y)
define("cross", lambda n, g: pt.cross(_y(n), g, dim=n.params["dim"]),
       lambda n, g: pt.cross(g, _x(n), dim=n.params["dim"]))


def _mat(g):
    return g.unsqueeze(-1).unsqueeze(-1)


define("linalg_inv", lambda n, g: -(_out(n).mT @ g @ _out(n).mT), inputs=False, output=True)
def _prod_of_others(s):
    """``p[..., i] = prod_{j != i} s[..., j]`` without dividing (zeros allowed): exclusive
    cumulative products from both ends."""
    one = pt.ones_like(s[..., :1])
    left = pt.cat([one, pt.cumprod(s[..., :-1], dim=-1)], dim=-1)
    right = pt.cat([one, pt.cumprod(s.flip(-1)[..., :-1], dim=-1)], dim=-1).flip(-1)
    return left * right


def _det_grad(n, g):
    """d det(A) / dA = adj(A)^T.  First order: from the SVD, A = U S Vh, adj(A)^T =
    det(U) det(Vh) conj(U) diag(prod_{j != i} s_j) conj(Vh) -- defined for singular matrices
    too (PyTorch's linalg_det_backward falls back to the SVD there); under create_graph the
    differentiable det * A^-T (non-singular matrices), whose derivative the SVD's would not
    give at repeated singular values."""
    x = _x(n)
    if _grad_on():
        return _mat(g * _out(n)) * pt.linalg.inv(x).mT
    u, s, vh = pt.linalg.svd(x)
    alpha = pt.linalg.det(u) * pt.linalg.det(vh)
    if x.dtype.is_complex:
        u, vh = u.conj(), vh.conj()
    adj_t = (u * _prod_of_others(s).to(x.dtype).unsqueeze(-2)) @ vh
    return _mat(g * alpha) * adj_t


define("linalg_det", _det_grad, output=True)
define("matrix_power_zero", lambda n, g: pt.zeros_like(g), inputs=False, output=False)
define("linalg_slogdet", lambda n, g: _mat(g) * pt.linalg.inv(_x(n)).mT)


def _solve_b(n, g):
    return pt.linalg.solve(_x(n).mT, g)


define("linalg_solve", lambda n, g: -(_solve_b(n, g) @ _out(n).mT), _solve_b, output=True)


def _cholesky_grad(n, g):
    L = _out(n)
    if n.params["upper"]:
        L, g = L.mT, g.mT
    # A = L L^T:  gA = L^-T Phi(L^T gL) L^-1, symmetrised (Phi: lower triangle, halved diagonal)
    P = L.mT @ g
    P = pt.tril(P) - 0.5 * pt.tril(pt.triu(P))
    Linv = pt.linalg.inv(L)
    S = Linv.mT @ P @ Linv
    return 0.5 * (S + S.mT)


define("linalg_cholesky", _cholesky_grad, inputs=False, output=True)


# --- eigh, svd, qr: PyTorch's formulas (linalg_eigh_backward, svd_backward,
# linalg_qr_backward), written in PyTorch's complex convention (holomorphic=False): the
# factorisations are not holomorphic, and the gauge checks read the incoming gradients as
# PyTorch receives them.  Each reads only its outputs, so a double backward differentiates
# through the outputs' own node.
def _set_diag(X, d):
    """``X`` with its diagonal replaced by ``d`` (out of place, so it records)."""
    return X - pt.diag_embed(X.diagonal(0, -2, -1)) + pt.diag_embed(d.to(X.dtype))


def _gauge_check(op, what, im):
    # the check is PyTorch's (lax tolerances, so it never fires on a rounding error); it
    # reads the device once, and only for complex inputs
    im = im.detach()
    if not pt.allclose(im, pt.zeros_like(im), rtol=1e-2, atol=1e-2):
        raise RuntimeError(
            f"{op} backward: the {what} of a complex matrix are defined only up to a phase "
            f"e^(i phi) each, and the loss depends on that phase (the imaginary part of "
            f"diag(V^H grad_V) is not 0, largest {float(im.abs().max().item()):.3g}), so its "
            f"gradient is ill-defined. Use a loss that does not change when a column is "
            f"multiplied by e^(i phi), e.g. one of V.abs(), V @ diag(f(L)) @ V.mH or U @ Vh")


def _eigh_grad(n, g):
    gL, gV = g
    L, V = n.output(0), n.output(1)
    VH = V.mH
    if gV is None:  # eigenvalues only (eigvalsh): V diag(gL) V^H
        return (V * gL.unsqueeze(-2).to(V.dtype)) @ VH
    VhgV = VH @ gV
    if V.dtype.is_complex:
        _gauge_check("linalg.eigh", "eigenvectors", VhgV.diagonal(0, -2, -1).imag)
    VhgV = 0.5 * (VhgV - VhgV.mH)  # onto the skew-Hermitian matrices (tangent of U(n))
    E = L.unsqueeze(-2) - L.unsqueeze(-1)
    E = E + pt.diag_embed(pt.ones_like(L))  # any nonzero on the diagonal: 0 / 1 there
    gA = VhgV / E
    if gL is not None:
        gA = _set_diag(gA, gL)
    return V @ (gA @ VH)


define("linalg_eigh", _eigh_grad, inputs=False, output=True, holomorphic=False,
       none_grads=True)


def _eig_grad(n, g):
    # PyTorch's linalg_eig_backward (A = V diag(L) V^-1, V's columns of norm 1):
    # gA = V^-H (diag(gL) + (V^H gV - V^H V diag(re(diag(V^H gV)))) / conj(E)) V^H with
    # E_ij = L_j - L_i (1 on the diagonal).  A real A takes the real part (the engine).
    gL, gV = g
    L, V = n.output(0), n.output(1)
    VH = V.mH
    if gV is None:  # eigenvalues only (eigvals): V^-H diag(gL) V^H
        return pt.linalg.solve(VH, gL.unsqueeze(-1) * VH)
    VhgV = VH @ gV
    d = VhgV.diagonal(0, -2, -1)
    # V is complex even for a real A, so the phase check always runs (as torch's)
    im = d.imag.detach()
    if not pt.allclose(im, pt.zeros_like(im), rtol=1e-2, atol=1e-2):
        raise RuntimeError(
            f"linalg.eig backward: the eigenvectors are defined only up to a phase e^(i phi) "
            f"each, and the loss depends on that phase (the imaginary part of diag(V^H "
            f"grad_V) is not 0, largest {float(im.abs().max().item()):.3g}), so its gradient "
            f"is ill-defined. Use a loss that does not change when a column of V is "
            f"multiplied by e^(i phi), e.g. one of V.abs() or V @ diag(f(L)) @ "
            f"linalg.inv(V)")
    # the norm-1 constraint: remove the component along each column's own direction
    VhgV = VhgV - VH @ (V * d.real.to(V.dtype).unsqueeze(-2))
    Lc = L.conj()
    E = Lc.unsqueeze(-2) - Lc.unsqueeze(-1)
    E = E + pt.diag_embed(pt.ones_like(L))  # 0 on the diagonal: 1 there
    gA = VhgV / E
    if gL is not None:
        gA = _set_diag(gA, gL)
    return pt.linalg.solve(VH, gA @ VH)


define("linalg_eig", _eig_grad, inputs=False, output=True, holomorphic=False, none_grads=True)


def _svd_grad(n, g):
    gU, gS, gVh = g
    U, S, Vh = n.output(0), n.output(1), n.output(2)
    k = S.shape[-1]
    if n.params["full_matrices"]:
        # the columns past min(m, n) are an arbitrary basis: their gradients are ignored, as
        # in PyTorch (torch.linalg.svd's documentation)
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        gU = None if gU is None else gU[..., :, :k]
        gVh = None if gVh is None else gVh[..., :k, :]
    m, nn = U.shape[-2], Vh.shape[-1]
    dt = U.dtype
    if gU is None and gVh is None:  # singular values only (svdvals): U diag(gS) Vh
        gS = gS.to(dt)
        return U @ (gS.unsqueeze(-1) * Vh) if m >= nn else (U * gS.unsqueeze(-2)) @ Vh
    Sc = S.to(dt)
    UhgU = VhgV = None
    if gU is not None:
        UhgU = U.mH @ gU
        UhgU = UhgU - UhgU.mH
    if gVh is not None:
        VhgV = Vh @ gVh.mH
        VhgV = VhgV - VhgV.mH
    if dt.is_complex:
        im_u = pt.zeros_like(S) if UhgU is None else UhgU.diagonal(0, -2, -1).imag
        im_v = pt.zeros_like(S) if VhgV is None else VhgV.diagonal(0, -2, -1).imag
        _gauge_check("linalg.svd", "singular vectors", im_u + im_v)
    S2 = S * S
    E = S2.unsqueeze(-2) - S2.unsqueeze(-1)
    E = E + pt.diag_embed(pt.ones_like(S))
    if UhgU is not None and VhgV is not None:
        gA = (UhgU * Sc.unsqueeze(-2) + Sc.unsqueeze(-1) * VhgV) / E
    elif UhgU is not None:
        gA = (UhgU / E) * Sc.unsqueeze(-2)
    else:
        gA = Sc.unsqueeze(-1) * (VhgV / E)
    if gS is not None:
        gA = gA + pt.diag_embed(gS.to(dt))
    if dt.is_complex and UhgU is not None and VhgV is not None:
        gA = gA + pt.diag_embed(UhgU.diagonal(0, -2, -1) / (2 * Sc))
    if m > nn and gU is not None:
        gA = U @ gA
        gUSinv = gU / Sc.unsqueeze(-2)
        gA = gA + gUSinv - U @ (U.mH @ gUSinv)
        return gA @ Vh
    if m < nn and gVh is not None:
        gA = gA @ Vh
        SinvgVh = gVh / Sc.unsqueeze(-1)
        gA = gA + SinvgVh - (SinvgVh @ Vh.mH) @ Vh
        return U @ gA
    return U @ (gA @ Vh) if m >= nn else (U @ gA) @ Vh


define("linalg_svd", _svd_grad, inputs=False, output=True, holomorphic=False, none_grads=True)


def _qr_grad(n, g):
    gQ, gR = g
    mode = n.params["mode"]
    if mode == "r":
        raise RuntimeError("linalg.qr backward: the derivative of linalg.qr depends on Q, "
                           "which mode='r' does not compute. Use linalg.qr(A, "
                           "mode='reduced') if you differentiate through linalg.qr")
    Q, R = n.output(0), n.output(1)
    m, nn = Q.shape[-2], R.shape[-1]
    if mode == "complete" and m > nn:
        raise RuntimeError(f"linalg.qr backward: the QR decomposition is not differentiable "
                           f"with mode='complete' and more rows than columns (A is {m} by "
                           f"{nn}): the last {m - nn} columns of Q are an arbitrary basis. "
                           f"Use mode='reduced'")
    if gQ is not None:
        gA = gR @ R.mH - Q.mH @ gQ if gR is not None else -(Q.mH @ gQ)
    else:
        gA = gR @ R.mH
    la = pt.linalg
    if m >= nn:
        X = pt.triu(gA)
        # the adjoint of syminv: X + X^H with the real part of the diagonal halved
        X = X + X.mH
        d = X.diagonal(0, -2, -1)
        X = _set_diag(X, d - 0.5 * d.real.to(d.dtype))
        gA = Q @ X
        if gQ is not None:
            gA = gA + gQ
        return la.solve_triangular(R.mH, gA, upper=False, left=False)
    Y = -gA
    X = pt.tril(Y - Y.mH)
    if X.dtype.is_complex:  # halve the imaginary part of the diagonal
        d = X.diagonal(0, -2, -1)
        X = _set_diag(X, d - 0.5j * d.imag.to(d.dtype))
    gA = la.solve_triangular(R[..., :, :m].mH, Q @ X, upper=False, left=False)
    gA = pt.cat([gA, pt.zeros(tuple(R.shape[:-1]) + (nn - m,), dtype=gA.dtype,
                              device=gA.device)], -1)
    if gR is not None:
        gA = gA + Q @ gR
    return gA


define("linalg_qr", _qr_grad, inputs=False, output=True, holomorphic=False, none_grads=True)


def _lu_factor_grad(n, g):
    """PyTorch's linalg_lu_backward for A = P L U (m by n, k = min(m, n)), the gradient g of
    the packed LU split into gL = tril(g, -1) (m by k) and gU = triu(g) (k by n).

    Square: gA = P L^-H (tril(L^H gL, -1) + triu(gU U^H)) U^-H.  Wide (m < n, U = [U1 U2]):
    A2 = P L U2 makes U2 = L^-1 P^T A2, so U2's gradient adds L^-H gU2 to A2's and moves
    -gU2 U2^H into L's: gA = P L^-H [(tril(L^H gL - gU2 U2^H, -1) + triu(gU1 U1^H)) U1^-H,
    gU2].  Tall (m > n, L = [L1; L2]): L2 = A2 U^-1 likewise, gA = P [L1^-H (tril(L1^H gL1,
    -1) + triu(gU U^H - L2^H gL2)); gL2] U^-H."""
    LU = n.output(0)
    m, nn = LU.shape[-2], LU.shape[-1]
    from ..api.linalg_more import _perm_matrix, _unpack
    L, U = _unpack(LU)
    k = min(m, nn)
    gL = pt.tril(g, -1)[..., :, :k]
    gU = pt.triu(g)[..., :k, :]
    solve = pt.linalg.solve_triangular
    if m <= nn:  # square or wide
        U1, gU1 = U[..., :, :m], gU[..., :, :m]
        inner = pt.tril(L.mH @ gL, -1) + pt.triu(gU1 @ U1.mH)
        if m < nn:
            U2, gU2 = U[..., :, m:], gU[..., :, m:]
            inner = inner - pt.tril(gU2 @ U2.mH, -1)
        gA = solve(U1.mH, inner, upper=False, left=False)
        if m < nn:
            gA = pt.cat([gA, gU2], -1)
        gA = solve(L.mH, gA, upper=True, unitriangular=True)
    else:  # tall
        L1, L2 = L[..., :nn, :], L[..., nn:, :]
        gL1, gL2 = gL[..., :nn, :], gL[..., nn:, :]
        inner = pt.tril(L1.mH @ gL1, -1) + pt.triu(gU @ U.mH - L2.mH @ gL2)
        gA = pt.cat([solve(L1.mH, inner, upper=True, unitriangular=True), gL2], -2)
        gA = solve(U.mH, gA, upper=False, left=False)
    if n.params["pivot"]:
        gA = _perm_matrix(n.params["pivots"], m, LU.dtype) @ gA
    return gA


define("linalg_lu_factor", _lu_factor_grad, inputs=False, output=True, holomorphic=False)


# --- ctc_loss's recursion (nn.functional._ctc): the backends' alpha-beta kernel, or this ---
def _ctc_alpha_grad(n, g):
    from ..nn.functional._ctc import ctc_alpha_vjp
    p = n.params
    return ctc_alpha_vjp(n.inputs[0], p["skip"], p["input_lengths"], p["target_lengths"],
                         _out(n), g)


define("ctc_alpha", _ctc_alpha_grad, output=True)


# --- tensor[key] = value on graph tensors (recorded out of place as index_put, then rebased) ---
def _index_put_x(n, g):
    """The written region gets no gradient: ``g`` with that region zeroed (``masked_fill``,
    not a product with a 0/1 mask, whose 0 * inf would give NaN there; PyTorch gives 0)."""
    p = n.params
    shape = tuple(n.shapes[0][0])
    m = pt.zeros(shape, dtype=pt.bool, device=g.device)
    target = m._data
    backend = m._device.backend
    key = p["k1"]
    if p["k2"] is not None:
        target = _kernels("getitem")[backend](target, key)
        key = p["k2"]
    _setitem_k[backend](target, key, True)
    return g.masked_fill(m, 0)


def _index_put_value(n, g):
    """The value gets the gradient of the region it was written to, reduced to its shape."""
    from ..api.indexing import _flat_positions
    from .engine import sum_to
    p = n.params
    if p["adv"]:
        pos = _flat_positions(tuple(n.shapes[0][0]), g._device, p["k1"], p["k2"])
        r = g.reshape(-1)[pos]
    else:
        r = g[p["k1"]]
    vshape = tuple(n.shapes[1][0])
    stripped = vshape
    while len(stripped) > r.ndim and stripped[0] == 1:
        stripped = stripped[1:]
    return sum_to(r, stripped).reshape(vshape)


define("index_put", _forward_indices(_index_put_x), _forward_indices(_index_put_value),
       inputs=False)


# --- nn: activations and linear layers (polyten.nn.functional) --------------------------------
def _softmax_grad(n, g):
    y = _out(n)
    d = n.params["dim"]
    return y * (g - (g * y).sum(dim=d, keepdim=True))


def _log_softmax_grad(n, g):
    d = n.params["dim"]
    return g - pt.exp(_out(n)) * g.sum(dim=d, keepdim=True)


def _linear_x(n, g):
    return g @ n.inputs[1]


def _linear_w(n, g):
    x = n.inputs[0]
    # every leading dim of x is a batch dim: fold them, one (out, in) matmul
    return g.reshape(-1, g.shape[-1]).mT @ x.reshape(-1, x.shape[-1])


define("softmax", _softmax_grad, inputs=False, output=True)
define("log_softmax", _log_softmax_grad, inputs=False, output=True)
# the bias gets g itself: the engine's sum_to reduces it over the batch dims
define("linear", _linear_x, _linear_w, lambda n, g: g)


# Pointwise activation composites: PyTorch's backward formulas (gelu_backward, elu_backward,
# softplus_backward ...), including the kinks (the gradient at x = 0 is the x <= 0 branch's).
# Exponentials take a clamped argument where ``where`` discards the branch, so that a double
# backward never meets 0 * inf.  float16 is computed in float32 (the engine casts the gradient
# back), as PyTorch does and the fused kernels do: the tanh form's x^3 alone overflows float16
# at |x| > 40.
_GELU_BETA = math.sqrt(0.5) * 2.0 / math.sqrt(math.pi) * 0.5  # 1 / sqrt(2 pi)
_GELU_TANH_BETA = math.sqrt(2.0) * 2.0 / math.sqrt(math.pi) * 0.5  # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


def _x32(n):
    x = _x(n)
    return x.to(pt.float32) if x.dtype in _LOW else x


def _gelu_grad(n, g):
    x = _x32(n)
    if n.params["approximate"] == "tanh":
        x_sq = x * x
        inner = (x + x_sq * x * _GELU_KAPPA) * _GELU_TANH_BETA
        t = pt.tanh(inner)
        left = x * 0.5
        right = t + 1.0
        right_d = left * (1.0 - t * t) * ((x_sq * (3.0 * _GELU_KAPPA) + 1.0) * _GELU_TANH_BETA)
        return g * (right * 0.5 + right_d)
    cdf = (pt.erf(x * math.sqrt(0.5)) + 1.0) * 0.5
    pdf = pt.exp(x * x * -0.5) * _GELU_BETA
    return g * (cdf + x * pdf)


def _silu_grad(n, g):
    x = _x32(n)
    s = pt.sigmoid(x)
    return g * (s * (x * (1.0 - s) + 1.0))


def _leaky_relu_grad(n, g):
    return pt.where(_x(n) > 0, g, g * n.params["negative_slope"])


def _elu_grad(n, g):
    x = _x32(n)
    p = n.params
    alpha, scale, input_scale = p["alpha"], p["scale"], p["input_scale"]
    neg = pt.exp(pt.clamp(x, None, 0.0) * input_scale) * (input_scale * alpha * scale)
    # NaN takes the exp branch (a NaN gradient), as PyTorch's vectorised elu_backward
    return g * pt.where(x > 0, scale, neg)


def _softplus_grad(n, g):
    x = _x32(n)
    p = n.params
    bx = x * p["beta"]
    return pt.where(bx > p["threshold"], g, g * pt.sigmoid(bx))


define("gelu", _gelu_grad)
define("silu", _silu_grad)
define("leaky_relu", _leaky_relu_grad)
define("elu", _elu_grad)
define("softplus", _softplus_grad)


def _nll_loss_grad(n, g):
    return _nll_onehot(n.params, g, n.shapes[0][1])


def _nll_onehot(p, g, dtype):
    """nll_loss's input gradient: -w[t] * g / (summed weights, for 'mean') at each target's
    class, 0 elsewhere (and 0 for ignored targets, also when every target is ignored)."""
    from ..api.tensor import wrap
    cdim = p["cdim"]
    dev = g.device
    target = wrap(p["target"], dev, pt.int64)  # params hold natives (see nll_loss)
    weight = None if p["weight"] is None else wrap(p["weight"], dev, dtype)
    valid = target != p["ignore_index"]
    if weight is None:
        w = valid.to(g.dtype)
    else:
        # 0 for an ignored target even where class 0's weight is inf (0 * inf is NaN)
        w = pt.where(valid, weight[pt.where(valid, target, 0)], 0.0)
    if p["reduction"] == "mean":
        d = w.sum()
        w = w / pt.where(d == 0, 1.0, d)  # all ignored: w is all 0, so is the gradient
    shape = p["shape"]
    # a one-hot mask (an ignored target matches no class), not scatter: no index checks
    classes = pt.arange(shape[cdim], device=g.device).reshape(
        (shape[cdim],) + (1,) * (len(shape) - cdim - 1))
    return (classes == target.unsqueeze(cdim)) * (-w * g).unsqueeze(cdim)


# params (no gradient): target and weight (natives), ignore_index, reduction, the class dim
# and the input's shape
define("nll_loss", _nll_loss_grad, inputs=False)


def _cross_entropy_grad(n, g):
    """log_softmax's backward of (nll_loss's backward of the loss's gradient, plus the
    gradient of the log-probabilities output, which only a double backward sends)."""
    g_loss, g_logp = g
    p = n.params
    gl = None if g_loss is None else _nll_onehot(p, g_loss, n.shapes[0][1])
    if g_logp is not None:
        gl = g_logp if gl is None else gl + g_logp
    # output 1 (the log-probabilities) has this node as grad_fn: a double backward
    # differentiates through it again
    return gl - pt.exp(n.output(1)) * gl.sum(dim=p["cdim"], keepdim=True)


# outputs: (loss, log-probabilities); the second is kept internal by nn.functional, so its
# gradient is None in a first-order backward (not zeros: none_grads)
define("cross_entropy", _cross_entropy_grad, inputs=False, output=True, none_grads=True)


# --- attention --------------------------------------------------------------------------
def _sdpa_weights_grad(n, g):
    """The gradient of the scores ``q @ k^T * scale`` (softmax's backward of the weights'
    gradient), or None.  Outputs: (out, weights, dropped); ``dropped = weights * keep``
    (output 2, None without dropout) is what multiplied ``v``.  Outputs 1 and 2 are internal:
    only a double backward, which differentiates through them, sends their gradients."""
    from ..api.tensor import wrap
    g_out, g_w, g_d = g
    w = n.output(1)
    keep = n.params["keep"]
    gd = None if g_out is None else g_out @ n.inputs[2].mT
    if keep is None:
        gw = gd
    else:
        if g_d is not None:
            gd = g_d if gd is None else gd + g_d
        gw = None if gd is None else gd * wrap(keep, w.device, w.dtype)
    if g_w is not None:
        gw = g_w if gw is None else gw + g_w
    if gw is None:
        return None
    return w * (gw - (gw * w).sum(-1, keepdim=True))


def _sdpa_q(n, g):
    gs = _sdpa_weights_grad(n, g)
    return None if gs is None else (gs @ n.inputs[1]) * n.params["scale"]


def _sdpa_k(n, g):
    gs = _sdpa_weights_grad(n, g)
    return None if gs is None else (gs.mT @ n.inputs[0]) * n.params["scale"]


def _sdpa_v(n, g):
    if g[0] is None:
        return None
    dropped = n.output(1 if n.params["keep"] is None else 2)
    return dropped.mT @ g[0]


# inputs (q, k, v); params: keep (dropout's scaled keep mask, a native, or None), scale,
# is_causal (its zero weights give zero gradients: nothing to mask here)
define("scaled_dot_product_attention", _sdpa_q, _sdpa_k, _sdpa_v, output=True,
       none_grads=True)


# --- nn losses with PyTorch's own gradient formulas (recorded by polyten.nn.functional) ------
def _bce_input(n, g):
    # PyTorch's: (x - t) / max(x (1 - x), 1e-12), finite where x saturates at 0 or 1
    x, t = n.inputs
    return g * (x - t) / pt.clamp((1 - x) * x, 1e-12)


def _bce_target(n, g):
    # PyTorch's (unclamped, unlike the forward): inf where the input saturates
    x = n.inputs[0]
    return g * (pt.log1p(-x) - pt.log(x))


# inputs: (input, target) of one shape; the unweighted elementwise loss
define("binary_cross_entropy", _bce_input, _bce_target)


# --- nn: normalisation (polyten.nn.functional._norm) ----------------------------------------
# The statistics are recomputed from the saved input (not read from the forward's saved
# natives), so these formulas are differentiable in x and double backward is right; the cpu
# backend's fused backward kernels use the saved statistics instead.
def _normalized(n, dims):
    """``(xhat, rstd)`` of the node's input over ``dims`` (float32 for float16 / bfloat16
    inputs)."""
    x = n.inputs[0]
    if x.dtype in _LOW:
        x = x.float()
    xc = x - x.mean(dim=dims, keepdim=True)
    rstd = pt.rsqrt((xc * xc).mean(dim=dims, keepdim=True) + n.params["eps"])
    return xc * rstd, rstd


def _normalized_x_grad(n, g, dims, w):
    """Gradient of ``xhat * w`` through the normalisation over ``dims``."""
    xhat, rstd = _normalized(n, dims)
    gh = g if w is None else g * w
    return rstd * (gh - gh.mean(dim=dims, keepdim=True)
                   - xhat * (gh * xhat).mean(dim=dims, keepdim=True))


def _ln_dims(n):
    nd = len(n.shapes[0][0])
    return tuple(range(nd - n.params["ndim"], nd))


def _bn_dims(n):
    return (0,) + tuple(range(2, len(n.shapes[0][0])))


def _bn_channels(n, t):
    """A (C,) tensor shaped to broadcast against the (N, C, ...) input."""
    nd = len(n.shapes[0][0])
    return t.reshape((t.shape[0],) + (1,) * (nd - 2))


def _layer_norm_x(n, g):
    return _normalized_x_grad(n, g, _ln_dims(n), n.inputs[1])


def _layer_norm_w(n, g):
    return g * _normalized(n, _ln_dims(n))[0]  # the engine sums it to the weight's shape


def _batch_norm_x(n, g):
    w = n.inputs[1]
    return _normalized_x_grad(n, g, _bn_dims(n), None if w is None else _bn_channels(n, w))


def _batch_norm_w(n, g):
    return (g * _normalized(n, _bn_dims(n))[0]).sum(dim=_bn_dims(n))


# inputs (x, weight, bias); params: eps, ndim (layer_norm), the forward's statistics
define("layer_norm", _layer_norm_x, _layer_norm_w, lambda n, g: g)
define("batch_norm", _batch_norm_x, _batch_norm_w, lambda n, g: g.sum(dim=_bn_dims(n)))


# --- nn: convolution and max-pooling (polyten.nn.functional._conv / _pool) ------------------
# conv and conv_transpose are each other's input gradient; the weight gradient is an im2col
# product; the formulas live beside the ops (they share their geometry helpers).
def _conv_formula(name):
    def f(n, g):
        from ..nn.functional import _conv
        return getattr(_conv, name)(n, g)
    f.__name__ = name
    return f


define("conv", _conv_formula("conv_grad_input"), _conv_formula("conv_grad_weight"),
       _conv_formula("conv_grad_bias"))
define("conv_transpose", _conv_formula("conv_transpose_grad_input"),
       _conv_formula("conv_transpose_grad_weight"), _conv_formula("conv_grad_bias"))


def _max_pool_grad(n, g):
    """g added at the input position each window picked (params: the native int64 indices,
    flat per (n, c) plane, and the input's shape)."""
    from ..api.tensor import wrap
    p = n.params
    shape = tuple(p["shape"])
    b, c = shape[0], shape[1]
    idx = wrap(p["indices"], g.device, pt.int64).reshape(b, c, -1)
    flat = _zeros((b, c, _numel(shape[2:])), g).scatter_add(2, idx, g.reshape(b, c, -1))
    return flat.reshape(shape)


define("max_pool", _forward_indices(_max_pool_grad), inputs=False)


# --- discrete Fourier transforms (polyten.fft) -----------------------------------------------
# PyTorch's rules (derivatives.yaml: _fft_c2c, fft_r2c_backward, fft_c2r_backward), written in
# its complex convention directly (holomorphic=False).  Each transform is linear, so its
# gradient is its adjoint: the transform in the other direction with the other normalisation
# ('backward' <-> 'forward', 'ortho' stays).  The helpers of polyten.api.fft record their own
# nodes, so double backward works; that module is imported lazily because `import polyten`
# must not load it (the forward that recorded the node has).
def _fft():
    from ..api import fft
    return fft


def _fft_c2c_grad(n, g):
    f = _fft()
    p = n.params
    if not g._dtype.is_complex:
        g = g.to(n.shapes[0][1])
    return f.c2c(g, p["dims"], f.SWAP[p["norm"]], not p["forward"])


def _fft_r2c_grad(n, g):
    # a onesided r2c is c2c of the real input with the negative frequencies of the last dim
    # dropped: the adjoint zero-fills them, runs the inverse c2c and keeps the real part
    f = _fft()
    p = n.params
    dims = p["dims"]
    shape, dt = n.shapes[0]
    if not g._dtype.is_complex:
        g = g.to(dt.to_complex())
    if p["onesided"]:
        g = f._resize(g, dims[-1], shape[dims[-1]])
    return pt.real(f.c2c(g, tuple(sorted(dims)), f.SWAP[p["norm"]], False))


def _fft_c2r_grad(n, g):
    # c2r fills the negative frequencies of the last dim from their mirror images (conjugate
    # symmetry), runs the inverse c2c and drops the imaginary part: the adjoint is a onesided
    # r2c of the gradient with the entries that were mirrored counted twice -- 1 .. N - m for
    # N outputs and m = N // 2 + 1 inputs (0 and, for even N, N / 2 are their own mirrors)
    f = _fft()
    p = n.params
    dims = p["dims"]
    if g._dtype.is_complex:
        g = pt.real(g)
    gi = f.r2c(g, dims, f.SWAP[p["norm"]], True)
    d = dims[-1]
    m = gi._data.shape[d]
    twice = p["last_dim_size"] - m
    if twice > 0:
        idx = pt.arange(m, device=g.device)
        w = ((idx >= 1) & (idx <= twice)).to(g.dtype) + 1
        shape = [1] * gi.ndim
        shape[d] = m
        gi = gi * w.reshape(shape)
    return gi


define("fft_c2c", _fft_c2c_grad, inputs=False, holomorphic=False)
define("fft_r2c", _fft_r2c_grad, inputs=False, holomorphic=False)
define("fft_c2r", _fft_c2r_grad, inputs=False, holomorphic=False)
