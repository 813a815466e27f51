"""Fused CUDA kernels: ``cupy.ElementwiseKernel`` / ``cupy.ReductionKernel`` built from the
sources of :mod:`polyten_cuda.fused_src`, wrapped with the kernel signatures of the op table and
of ``Backend.backward_kernels``.

Composing NumPy-style calls costs one kernel launch and one temporary array per step; these do
each op in one to three launches and never allocate a temporary of the input's size.  No
function here reads a device value on the host: every data-dependent choice (ignored targets,
an all-ignored mean, NaN) is made inside the kernels, so nothing here synchronises the stream.
CuPy compiles each kernel on its first call per dtype and device and caches the binary.
"""

from __future__ import annotations

from . import conv as _conv
from . import fused_src as src
from . import index_check as _index_check
from . import norm as _norm
from .multi_tensor import C_TYPES
from .rows import Rows

_FLOAT = frozenset(C_TYPES)  # the storage dtypes of the CUDA sources
# 2-D cross_entropy over at most this many classes runs as one thread per row (a serial loop
# over the classes); with more, or more dims, a warp or block per row (rows.py)
CE_ROW_CLASSES = 64


def elementwise(cp, name):
    """The ``ElementwiseKernel`` of ``fused_src``'s source ``name`` (CuPy compiles it on the
    first call, once per argument types, and caches it by its source)."""
    s = src.ELEMENTWISE[name]
    return cp.ElementwiseKernel(s.in_params, s.out_params, s.operation, s.name,
                                preamble=src.PREAMBLE)


def build(cp, shared, shared_backward, row_kernels=None):
    """``(forward, backward, elementwise)``: the fused kernels (op name -> kernel, with the
    op table's and ``Backend.backward_kernels``' signatures) for the array module ``cp``, and
    the raw ``ElementwiseKernel`` objects by source name (the optimizer steps use them).

    ``shared`` / ``shared_backward`` are the generic kernels the fused ones fall back to for
    dtypes the CUDA sources do not cover (integers, complex).  ``row_kernels``: the
    backend's :class:`polyten_cuda.rows.Rows` (a new one when None).  ``cp`` is CuPy; the
    tests pass a stand-in that records the kernels instead."""
    ew = {k: elementwise(cp, k) for k in src.ELEMENTWISE}
    red = {k: cp.ReductionKernel(s.in_params, s.out_params, s.map_expr, s.reduce_expr,
                                 s.post_map_expr, s.identity, s.name, preamble=src.PREAMBLE)
           for k, s in src.REDUCTION.items()}
    if row_kernels is None:
        row_kernels = Rows(cp)
    i64 = cp.dtype("int64")

    acc = row_kernels.acc  # the reduction type S of a storage dtype

    def floating(x):
        return x.dtype.name in _FLOAT

    def reduce_to(kernel, args, x, dim):
        shape = list(x.shape)
        shape[dim] = 1
        out = cp.empty(tuple(shape), dtype=acc(x.dtype))
        return kernel(*args, out=out, axis=dim, keepdims=True)

    # ------------------------------------------------------------------- forward ----------
    def sigmoid(x):
        if not floating(x):  # the core casts integers first; complex keeps the generic path
            return fallback["sigmoid"](x)
        return ew["sigmoid"](x)

    def softmax(x, dim):
        if row_kernels.fits(x, dim):
            return row_kernels.softmax(x)
        m = x.max(axis=dim, keepdims=True)
        s = reduce_to(red["sum_exp_shifted"], (x, m), x, dim)
        return ew["softmax_out"](x, m, s)

    def log_softmax(x, dim):
        if row_kernels.fits(x, dim):
            return row_kernels.softmax(x, log=True)
        m = x.max(axis=dim, keepdims=True)
        s = reduce_to(red["sum_exp_shifted"], (x, m), x, dim)
        return ew["log_softmax_out"](x, m, s)

    # pointwise activations (real floating dtypes only: the op table's category)
    def gelu(x, approximate):
        return ew["gelu_tanh" if approximate == "tanh" else "gelu"](x)

    def silu(x):
        return ew["silu"](x)

    def leaky_relu(x, negative_slope):
        return ew["leaky_relu"](x, negative_slope)

    def elu(x, alpha, scale, input_scale):
        return ew["elu"](x, alpha, scale, input_scale)

    def softplus(x, beta, threshold):
        return ew["softplus"](x, beta, threshold)

    def _rows(x, target):
        """``x`` as C-contiguous (M, C) rows and ``target`` as (M,): class dim last."""
        if x.ndim == 1:
            return cp.ascontiguousarray(x.reshape(1, -1)), target.reshape(1)
        if x.ndim == 2:
            return cp.ascontiguousarray(x), target
        perm = (0,) + tuple(range(2, x.ndim)) + (1,)
        rows = cp.ascontiguousarray(x.transpose(perm)).reshape(-1, x.shape[1])
        return rows, target.reshape(-1)

    def _unrows(a, shape):
        """(M, C) rows (``_rows``' layout) back to ``shape``, the class dim second."""
        if len(shape) <= 2:
            return a.reshape(shape)
        lead = (shape[0],) + tuple(shape[2:]) + (shape[1],)
        perm = (0, len(shape) - 1) + tuple(range(1, len(shape) - 1))
        return cp.ascontiguousarray(a.reshape(lead).transpose(perm))

    def reduce_loss(loss, wt, target, reduction, dtype):
        if reduction == "none":
            return loss.reshape(target.shape).astype(dtype, copy=False)
        if loss.size and dtype.name in _FLOAT:  # one launch: both sums, the division, the cast
            return row_kernels.loss_total(loss, wt, reduction == "mean", dtype)
        total = loss.sum()
        if reduction == "mean":
            total = total / wt.sum()  # 0 / 0 -> nan on the device when every target is ignored
        return total.astype(dtype, copy=False)

    def nll_loss(x, target, weight, ignore_index, reduction):
        rows, t = _rows(x, target)
        s = acc(x.dtype)
        loss = cp.empty(t.shape, dtype=s)
        wt = cp.empty(t.shape, dtype=s)
        w = rows if weight is None else cp.ascontiguousarray(weight)
        ew["nll_pick"](t, rows, w, rows.shape[1], ignore_index, weight is not None, loss, wt)
        return reduce_loss(loss, wt, target, reduction, x.dtype)

    def cross_entropy(x, target, weight, ignore_index, reduction):
        if not floating(x) or x.size == 0 or target.dtype != i64 or (
                weight is not None and weight.dtype != x.dtype):
            logp = log_softmax(x, 1 if x.ndim >= 2 else 0)
            return nll_loss(logp, target, weight, ignore_index, reduction), logp
        rows, t = _rows(x, target)
        if x.ndim > 2 or rows.shape[1] > CE_ROW_CLASSES:
            # a warp (block) per row does log_softmax and the pick in one launch
            w = None if weight is None else cp.ascontiguousarray(weight)
            logp, loss, wt = row_kernels.cross_entropy(rows, t, w, ignore_index)
            return reduce_loss(loss, wt, target, reduction, x.dtype), _unrows(logp, x.shape)
        # few classes: one thread per row does log_softmax and the pick in one launch
        s = acc(x.dtype)
        loss = cp.empty(t.shape, dtype=s)
        wt = cp.empty(t.shape, dtype=s)
        logp = cp.empty(rows.shape, dtype=x.dtype)
        w = rows if weight is None else cp.ascontiguousarray(weight)
        ew["ce_rows"](t, rows, w, rows.shape[1], ignore_index, weight is not None, loss, wt,
                      logp)
        return reduce_loss(loss, wt, target, reduction, x.dtype), logp.reshape(x.shape)

    # ------------------------------------------------------------------ backward ----------
    def divisor(t, w, has_w, n_cls, ignore, reduction, s):
        """The loss's divisor on the device (no host read, one launch): the summed
        weights of the targets that count for 'mean', else 1 -- a row kernel where the
        targets are contiguous int64 (``Rows.divisor``: a ``ReductionKernel`` call costs the
        host several times a ``RawKernel``'s), else the reduction."""
        if reduction != "mean":
            return cp.ones((), dtype=s)
        if t.size and t.dtype == i64 and t.flags.c_contiguous and w.dtype.name in _FLOAT:
            return row_kernels.divisor(t, w if has_w else None, n_cls, ignore, w.dtype)
        return red["nll_divisor"](t, w, n_cls, ignore, has_w, out=cp.empty((), dtype=s),
                                  axis=None)

    def sigmoid_bw(grads, inputs, outputs, params):
        y = outputs[0]
        if not floating(y):
            return fallback_bw["sigmoid"](grads, inputs, outputs, params)
        return (ew["sigmoid_backward"](grads[0], y),)

    def tanh_bw(grads, inputs, outputs, params):
        y = outputs[0]
        if not floating(y):
            return fallback_bw["tanh"](grads, inputs, outputs, params)
        return (ew["tanh_backward"](grads[0], y),)

    def relu_bw(grads, inputs, outputs, params):
        x = inputs[0]
        g = grads[0]
        if not floating(x) or g.dtype != x.dtype:
            return fallback_bw["relu"](grads, inputs, outputs, params)
        return (ew["relu_backward"](g, x),)

    def _gx(grads, inputs):
        g, x = grads[0], inputs[0]
        return (g if g.dtype == x.dtype else g.astype(x.dtype)), x

    def gelu_bw(grads, inputs, outputs, params):
        g, x = _gx(grads, inputs)
        tanh_form = params["approximate"] == "tanh"
        return (ew["gelu_tanh_backward" if tanh_form else "gelu_backward"](g, x),)

    def silu_bw(grads, inputs, outputs, params):
        g, x = _gx(grads, inputs)
        return (ew["silu_backward"](g, x),)

    def leaky_relu_bw(grads, inputs, outputs, params):
        g, x = _gx(grads, inputs)
        return (ew["leaky_relu_backward"](g, x, params["negative_slope"]),)

    def elu_bw(grads, inputs, outputs, params):
        g, x = _gx(grads, inputs)
        alpha, scale, input_scale = params["alpha"], params["scale"], params["input_scale"]
        return (ew["elu_backward"](g, x, input_scale * alpha * scale, scale, input_scale),)

    def erf_bw(grads, inputs, outputs, params):
        g, x = grads[0], inputs[0]
        if not floating(x) or g.dtype != x.dtype:
            return NotImplemented  # the formula (an integer input is cast before erf)
        return (ew["erf_backward"](g, x),)

    def softplus_bw(grads, inputs, outputs, params):
        g, x = _gx(grads, inputs)
        return (ew["softplus_backward"](g, x, params["beta"], params["threshold"]),)

    def softmax_bw(grads, inputs, outputs, params):
        g, y = grads[0], outputs[0]
        dim = params["dim"]
        if row_kernels.fits(y, dim):
            return (row_kernels.softmax_backward(g, y),)
        s = reduce_to(red["sum_prod"], (g, y), y, dim)
        return (ew["softmax_backward_out"](g, y, s),)

    def log_softmax_bw(grads, inputs, outputs, params):
        g, y = grads[0], outputs[0]
        dim = params["dim"]
        if row_kernels.fits(y, dim):
            return (row_kernels.softmax_backward(g, y, log=True),)
        s = reduce_to(red["sum_cast"], (g,), y, dim)
        return (ew["log_softmax_backward_out"](g, y, s),)

    def nll_loss_bw(grads, inputs, outputs, params):
        g = grads[0]
        target, weight, cdim = params["target"], params["weight"], params["cdim"]
        shape = params["shape"]
        ignore = params["ignore_index"]
        dt = g.dtype
        s = acc(dt)
        ndim = len(shape)
        # the gradient in the (M, C) row layout of the forward, then back to x's layout
        n_cls = shape[cdim] if ndim > 1 else shape[0]
        t = target.reshape(-1)
        out = cp.zeros((t.shape[0], n_cls), dtype=dt)
        has_w = weight is not None
        w = cp.ascontiguousarray(weight) if has_w else out
        d = divisor(t, w, has_w, n_cls, ignore, params["reduction"], s)
        gg = g.reshape(t.shape) if g.ndim else g
        ew["nll_scatter"](t, gg, d, w, n_cls, ignore, has_w, out)
        return (_unrows(out, shape),)

    def cross_entropy_bw(grads, inputs, outputs, params):
        g, g_logp = grads
        if g_logp is not None:  # only a double backward sends it: the formulas do that
            return NotImplemented
        y = outputs[1]  # the log-probabilities
        target, weight = params["target"], params["weight"]
        ignore = params["ignore_index"]
        s = acc(y.dtype)
        rows, t = _rows(y, target)
        has_w = weight is not None
        w = cp.ascontiguousarray(weight) if has_w else rows
        d = divisor(t, w, has_w, rows.shape[1], ignore, params["reduction"], s)
        gg = cp.ascontiguousarray(g.reshape(-1) if g.ndim else g.reshape(1))
        gx = ew["ce_backward"](rows, t, gg, d, w, rows.shape[1], ignore, has_w, g.ndim > 0)
        return (_unrows(gx, y.shape),)

    def _pool_dims(spatial, out, kernel_size, stride, lo, dilation, index):
        """The 18 size arguments of the max_pool kernels for ``index`` (``"int32"`` /
        ``"int64"``) arithmetic, spatial dims padded to three: the sizes, strides and
        dilations the kernels divide by packed by :func:`polyten_cuda.conv.divisor`, the
        kernel size and padding as integers of that width."""
        pad = 3 - len(spatial)
        one, zero = (1,) * pad, (0,) * pad
        ix = cp.int32 if index == "int32" else cp.int64

        def div(values):
            return tuple(_conv.divisor(v, index) for v in one + tuple(values))
        return (div(spatial) + div(out) + tuple(ix(v) for v in one + tuple(kernel_size)) +
                div(stride) + tuple(ix(v) for v in zero + tuple(lo)) + div(dilation))

    def max_pool(x, kernel_size, stride, padding, dilation):
        if not floating(x):
            return fallback["max_pool"](x, kernel_size, stride, padding, dilation)
        S = x.shape[2:]
        O = tuple((s + lo + hi - d * (k - 1) - 1) // st + 1 for s, (lo, hi), k, st, d
                  in zip(S, padding, kernel_size, stride, dilation))
        val = cp.empty(x.shape[:2] + O, dtype=x.dtype)
        idx = cp.empty(x.shape[:2] + O, dtype=cp.int64)
        if val.size == 0:
            return val, idx
        narrow = _conv.narrow_index(x.size, val.size)
        dims = _pool_dims(S, O, kernel_size, stride, [lo for lo, _ in padding], dilation,
                          "int32" if narrow else "int64")
        ew["max_pool_i32" if narrow else "max_pool"](cp.ascontiguousarray(x), *dims, val, idx)
        return val, idx

    def max_pool_bw(grads, inputs, outputs, params):
        g = grads[0]
        shape = tuple(params["shape"])
        if not floating(g):
            return fallback_bw["max_pool"](grads, inputs, outputs, params)
        gx = cp.empty(shape, dtype=g.dtype)
        if gx.size == 0:
            return (gx,)
        if g.size == 0:
            gx.fill(0)
            return (gx,)
        p = params["pool"]
        narrow = _conv.narrow_index(gx.size, g.size)
        dims = _pool_dims(shape[2:], g.shape[2:], p["kernel_size"], p["stride"], p["lo"],
                          p["dilation"], "int32" if narrow else "int64")
        ew["max_pool_backward_i32" if narrow else "max_pool_backward"](
            cp.ascontiguousarray(g), params["indices"], *dims, gx)
        return (gx,)

    block_check = _index_check.build(cp)

    def index_check(x, low, high, ignore, acc):
        # a small contiguous index array: one block, one launch, little host work
        flag = block_check(x, low, high, ignore, acc)
        if flag is not None:
            return flag
        # one reduction launch instead of five (lt, ge, or, any, and the running OR)
        return red["index_check"](x, False if acc is None else acc, low, high,
                                  0 if ignore is None else ignore, ignore is not None,
                                  out=cp.empty((), dtype=bool), axis=None)

    fallback, fallback_bw = shared, shared_backward
    forward = {"sigmoid": sigmoid, "softmax": softmax, "log_softmax": log_softmax,
               "index_check": index_check, "max_pool": max_pool,
               "nll_loss": nll_loss, "cross_entropy": cross_entropy, "gelu": gelu,
               "silu": silu, "leaky_relu": leaky_relu, "elu": elu, "softplus": softplus}
    backward = {"sigmoid": sigmoid_bw, "tanh": tanh_bw, "relu": relu_bw,
                "softmax": softmax_bw, "log_softmax": log_softmax_bw,
                "nll_loss": nll_loss_bw, "cross_entropy": cross_entropy_bw, "gelu": gelu_bw,
                "silu": silu_bw, "leaky_relu": leaky_relu_bw, "elu": elu_bw,
                "softplus": softplus_bw, "max_pool": max_pool_bw, "erf": erf_bw}
    norm_fwd, norm_bwd = _norm.build(cp, ew, red, row_kernels, shared, shared_backward)
    forward.update(norm_fwd)
    backward.update(norm_bwd)
    return forward, backward, ew
