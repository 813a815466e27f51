"""Fused kernels of the normalisation composites: ``layer_norm`` and ``batch_norm``.

Forward: the statistics (mean and biased variance) and the normalised, scaled and shifted
output in one pass over one temporary.  Backward: the three gradients from the statistics the
forward saved, with the two per-row (per-channel) sums as ``einsum`` contractions (cheaper
than NumPy's multi-axis reductions).  The core has checked shapes and dtypes and handles empty
inputs; float16 and bfloat16 are computed in float32 (statistics included) and rounded once
at the end.
"""

from __future__ import annotations

from ._util import low_precision


def _common(xp):
    low, f32 = low_precision(xp), xp.dtype("float32")
    einsum = xp.einsum

    def acc(a):
        """The computation array: float32 for float16 and bfloat16 (statistics in at least
        float32)."""
        return a.astype(f32) if a.dtype in low else a

    def rows_dot(a, b):  # sum over the last axis of a * b, (M, D) -> (M, 1)
        return einsum("ij,ij->i", a, b)[:, None]

    def chan_sum(a):  # (N, C, S) -> (C,)
        return einsum("ncs->c", a)

    def chan_dot(a, b):  # (N, C, S), (N, C, S) -> (C,)
        return einsum("ncs,ncs->c", a, b)

    return low, acc, rows_dot, chan_sum, chan_dot


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _rows(shape, ndim):
    """``(M, D)``: the input as M rows of the D normalised elements (explicit, not -1, so
    that empty inputs reshape too)."""
    k = len(shape) - ndim
    return _prod(shape[:k]), _prod(shape[k:])


def _channels(shape):
    """``(N, C, S)``: a batch-norm input with its spatial dims flattened."""
    return shape[0], shape[1], _prod(shape[2:])


def kernels(xp, **ctx) -> dict:
    low, acc, rows_dot, chan_sum, chan_dot = _common(xp)
    sqrt = xp.sqrt

    def layer_norm(x, weight, bias, ndim, eps):
        shape = x.shape
        M, D = _rows(shape, ndim)
        x2 = acc(x).reshape(M, D)
        mean = x2.sum(axis=1, keepdims=True)
        mean /= max(D, 1)
        xc = x2 - mean
        var = rows_dot(xc, xc)
        var /= max(D, 1)
        rstd = var + eps  # (M, 1): a few small ops
        sqrt(rstd, out=rstd)
        xp.divide(1.0, rstd, out=rstd)
        xc *= rstd
        if weight is not None:
            xc *= acc(weight).reshape(D)
        if bias is not None:
            xc += acc(bias).reshape(D)
        out = xc.reshape(shape)
        stat = shape[:len(shape) - ndim] + (1,) * ndim
        return (out.astype(x.dtype) if x.dtype in low else out), mean.reshape(stat), \
            var.reshape(stat)

    def batch_norm(x, weight, bias, eps):
        shape = x.shape
        N, C, S = _channels(shape)
        x3 = acc(x).reshape(N, C, S)
        n = max(N * S, 1)
        mean = chan_sum(x3)
        mean /= n
        xc = x3 - mean[:, None]
        var = chan_dot(xc, xc)
        var /= n
        scale = 1.0 / sqrt(var + eps)
        if weight is not None:
            scale *= acc(weight)
        xc *= scale[:, None]
        if bias is not None:
            xc += acc(bias)[:, None]
        out = xc.reshape(shape)
        return (out.astype(x.dtype) if x.dtype in low else out), mean, var

    return {"layer_norm": layer_norm, "batch_norm": batch_norm}


def backward_kernels(xp, **ctx) -> dict:
    """Fused backward of ``layer_norm`` / ``batch_norm`` (``Backend.backward_kernels``): the
    formulas of the polyten-op rules in ``polyten.autograd.derivatives``, with the forward's
    saved statistics (``params["mean"]``, ``params["var"]``) instead of recomputing them.
    Inputs that need no gradient (``params["needs"]``) are skipped."""
    low, acc, rows_dot, chan_sum, chan_dot = _common(xp)
    sqrt = xp.sqrt

    def layer_norm(grads, inputs, outputs, params):
        x, weight, bias = inputs
        needs = params["needs"]
        shape = x.shape
        M, D = _rows(shape, params["ndim"])
        g2 = acc(grads[0]).reshape(M, D)
        mean = params["mean"].reshape(M, 1)
        rstd = 1.0 / sqrt(params["var"].reshape(M, 1) + params["eps"])
        xhat = acc(x).reshape(M, D) - mean
        xhat *= rstd
        gx = gw = gb = None
        if needs[1]:
            gw = xp.einsum("ij,ij->j", g2, xhat).reshape(weight.shape).astype(weight.dtype)
        if needs[2]:
            gb = g2.sum(axis=0).reshape(bias.shape).astype(bias.dtype)
        if needs[0]:
            gh = g2 * acc(weight).reshape(D) if weight is not None else g2.copy()
            c = rows_dot(gh, xhat)
            c /= max(D, 1)
            xhat *= c
            gh -= gh.sum(axis=1, keepdims=True) / max(D, 1)
            gh -= xhat
            gh *= rstd
            gx = gh.reshape(shape).astype(x.dtype, copy=False)
        return (gx, gw, gb)

    def batch_norm(grads, inputs, outputs, params):
        x, weight, bias = inputs
        needs = params["needs"]
        shape = x.shape
        N, C, S = _channels(shape)
        g3 = acc(grads[0]).reshape(N, C, S)
        n = max(N * S, 1)
        rstd = 1.0 / sqrt(params["var"] + params["eps"])
        xc = acc(x).reshape(N, C, S) - params["mean"][:, None]
        dot = chan_dot(g3, xc)  # sum(g * (x - mean)) per channel
        gx = gw = gb = None
        gsum = chan_sum(g3) if (needs[0] or needs[2]) else None
        if needs[1]:
            gw = (dot * rstd).astype(weight.dtype)
        if needs[2]:
            gb = gsum.astype(bias.dtype)
        if needs[0]:
            # gx = (g - gsum / n - xc * dot * rstd^2 / n) * rstd * w, built in xc's memory
            xc *= (dot * rstd * rstd / n)[:, None]
            xc += (gsum / n)[:, None]
            xp.subtract(g3, xc, out=xc)
            xc *= (rstd * acc(weight) if weight is not None else rstd)[:, None]
            gx = xc.reshape(shape).astype(x.dtype, copy=False)
        return (gx, gw, gb)

    return {"layer_norm": layer_norm, "batch_norm": batch_norm}
