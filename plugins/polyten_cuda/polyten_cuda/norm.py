"""Fused ``layer_norm`` and ``batch_norm`` (training-mode statistics) on CUDA, forward and
backward.

The shared kernels (``polyten_cpu.kernels.norm``) are written for NumPy: each step is an array
operation, so on CuPy a LayerNorm forward and backward cost about thirty launches and as many
passes over temporaries of the input's size.  Here:

* layer_norm: one launch for the forward (a warp or a block per row computes the mean, the
  variance and the output, ``rows.py``), one for the input gradient and one for the weight
  and bias gradients (column sums);
* batch_norm: the same per channel of (N, C, L) -- one launch for the forward and one for
  all three gradients (its weight and bias gradients are the per-channel sums the input
  gradient needs anyway);
* affine parameters of another dtype than the input's, and batch_norm when the input needs
  no gradient: the statistics are two ``ReductionKernel`` launches (the mean, then the mean
  squared deviation: the cpu kernels' two-pass variance, each division by n in the
  reduction's post-map), the output one ``ElementwiseKernel``, and each gradient a reduction
  or two and one elementwise kernel.

Every formula is the cpu kernel's, in the same order (``fused_src``).  float16 and bfloat16
are computed in float32 (statistics included) and rounded once.
"""

from __future__ import annotations

from .multi_tensor import C_TYPES

_FLOAT = frozenset(C_TYPES)  # the storage dtypes of the CUDA sources


def _fused(x) -> bool:
    """Floating and not empty (empty inputs keep the shared kernels' conventions)."""
    return x.dtype.name in _FLOAT and x.size > 0


def build(cp, ew, red, row_kernels, shared, shared_backward):
    """``(forward, backward)`` kernels ``layer_norm`` / ``batch_norm`` with the op table's and
    ``Backend.backward_kernels``' signatures; other dtypes take ``shared`` /
    ``shared_backward``."""
    acc = row_kernels.acc

    def reduce(kernel, args, like, axes, s):
        """``kernel`` over ``axes`` of arrays shaped like ``like``, kept as size-1 dims."""
        shape = tuple(1 if d in axes else n for d, n in enumerate(like.shape))
        return kernel(*args, out=cp.empty(shape, dtype=s), axis=axes, keepdims=True)

    def stats(x, axes, n, s):
        mean = reduce(red["mean_cast"], (x, n), x, axes, s)
        return mean, reduce(red["var_dev"], (x, mean, n), x, axes, s)

    def rows(x, ndim):
        k = x.ndim - ndim
        m = 1
        for d in x.shape[:k]:
            m *= d
        return cp.ascontiguousarray(x).reshape(m, x.size // m), x.shape[:k] + (1,) * ndim

    def channels(x):
        return cp.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)

    def affine(name, weight, bias, shape):
        """The kernel variant for the affine parameters present, and them (broadcastable)."""
        args = tuple(p.reshape(shape) for p in (weight, bias) if p is not None)
        return ew[name + ("_w" if weight is not None else "") +
                  ("_b" if bias is not None else "")], args

    # ------------------------------------------------------------------ forward ----------
    def layer_norm(x, weight, bias, ndim, eps):
        if not _fused(x):
            return shared["layer_norm"](x, weight, bias, ndim, eps)
        if (ndim == 1 and x.flags.c_contiguous
                and row_kernels.affine_fits(x.dtype, x.shape[-1], weight, bias)):
            # the usual LayerNorm(d): x's rows are its last dim as it is, so the kernel takes
            # x, the parameters and the outputs in their own shapes (no reshape calls)
            return row_kernels.layer_norm(x, weight, bias, eps, x.shape[:-1] + (1,))
        x2, stat = rows(x, ndim)
        if row_kernels.affine_fits(x.dtype, x2.shape[1], weight, bias):
            y, mean, var = row_kernels.layer_norm(
                x2, *(None if p is None else p.reshape(-1) for p in (weight, bias)), eps)
            return y.reshape(x.shape), mean.reshape(stat), var.reshape(stat)
        s = acc(x.dtype)
        mean, var = stats(x2, (1,), x2.shape[1], s)
        kernel, wb = affine("layer_norm_out", weight, bias, (-1,))
        y = kernel(x2, mean, var, eps, *wb)
        return y.reshape(x.shape), mean.reshape(stat), var.reshape(stat)

    def batch_norm(x, weight, bias, eps):
        if not _fused(x):
            return shared["batch_norm"](x, weight, bias, eps)
        x3 = channels(x)
        c = x.shape[1]
        if row_kernels.affine_fits(x.dtype, c, weight, bias):
            y, mean, var = row_kernels.batch_norm(x3, weight, bias, eps)
            return y.reshape(x.shape), mean, var
        s = acc(x.dtype)
        mean, var = stats(x3, (0, 2), x3.shape[0] * x3.shape[2], s)
        kernel, wb = affine("batch_norm_out", weight, bias, (1, -1, 1))
        y = kernel(x3, mean, var, eps, *wb)
        return y.reshape(x.shape), mean.reshape(c), var.reshape(c)

    # ----------------------------------------------------------------- backward ----------
    def layer_norm_bw(grads, inputs, outputs, params):
        x, weight, bias = inputs
        if not _fused(x):
            return shared_backward["layer_norm"](grads, inputs, outputs, params)
        needs, eps = params["needs"], params["eps"]
        if params["ndim"] == 1 and x.flags.c_contiguous and row_kernels.affine_fits(
                x.dtype, x.shape[-1], weight, bias):
            return _layer_norm_rows_bw(grads[0], x, weight, params, needs, eps)
        x2, _ = rows(x, params["ndim"])
        g2 = cp.ascontiguousarray(grads[0]).reshape(x2.shape)
        s = acc(x.dtype)
        m, d = x2.shape
        mean = params["mean"].reshape(m, 1)
        var = params["var"].reshape(m, 1)
        gx = gw = gb = None
        if (needs[1] or needs[2]) and row_kernels.affine_fits(x.dtype, d, weight, bias):
            gw, gb = row_kernels.layer_norm_param_grads(g2, x2, mean, var, eps)
            gw = gw.reshape(weight.shape) if needs[1] else None
            gb = gb.reshape(bias.shape) if needs[2] else None
        elif needs[1]:
            gw = reduce(red["sum_g_xhat"], (g2, x2, mean, var, eps), x2, (0,), s)
            gw = gw.reshape(weight.shape).astype(weight.dtype, copy=False)
        if needs[2] and gb is None:
            gb = reduce(red["sum_cast"], (g2,), x2, (0,), s)
            gb = gb.reshape(bias.shape).astype(bias.dtype, copy=False)
        if needs[0] and row_kernels.affine_fits(x.dtype, d, weight):
            gx = row_kernels.layer_norm_backward(
                g2, x2, mean, var, None if weight is None else weight.reshape(-1), eps)
            gx = gx.reshape(x.shape)
        elif needs[0]:
            if weight is None:
                c1 = reduce(red["sum_g_xhat"], (g2, x2, mean, var, eps), x2, (1,), s)
                c2 = reduce(red["sum_cast"], (g2,), x2, (1,), s)
            else:
                w = weight.reshape(-1)
                c1 = reduce(red["sum_gw_xhat"], (g2, w, x2, mean, var, eps), x2, (1,), s)
                c2 = reduce(red["sum_prod_w"], (g2, w), x2, (1,), s)
            kernel, wb = affine("layer_norm_backward_out", weight, None, (-1,))
            gx = kernel(g2, x2, mean, var, eps, c1, c2, d, *wb).reshape(x.shape)
        return (gx, gw, gb)

    def _layer_norm_rows_bw(g, x, weight, params, needs, eps):
        """The backward of a LayerNorm over the last dim of C-contiguous ``x`` whose
        parameters the row kernels read as they are: every array in its own shape."""
        if not g.flags.c_contiguous:  # a broadcast gradient (of a sum) is common
            g = cp.ascontiguousarray(g)
        mean, var = params["mean"], params["var"]
        gx = gw = gb = None
        if needs[1] or needs[2]:
            gw, gb = row_kernels.layer_norm_param_grads(g, x, mean, var, eps)
            gw = gw if needs[1] else None
            gb = gb if needs[2] else None
        if needs[0]:
            gx = row_kernels.layer_norm_backward(g, x, mean, var, weight, eps)
        return (gx, gw, gb)

    def batch_norm_bw(grads, inputs, outputs, params):
        x, weight, bias = inputs
        if not _fused(x):
            return shared_backward["batch_norm"](grads, inputs, outputs, params)
        needs, eps = params["needs"], params["eps"]
        x3 = channels(x)
        g3 = cp.ascontiguousarray(grads[0]).reshape(x3.shape)
        s = acc(x.dtype)
        c = x3.shape[1]
        if needs[0] and row_kernels.affine_fits(x.dtype, c, weight):
            gx, gw, gb = row_kernels.batch_norm_backward(g3, x3, params["mean"], params["var"],
                                                         weight, eps)
            return (gx.reshape(x.shape),
                    gw.reshape(weight.shape) if needs[1] else None,
                    gb.reshape(bias.shape).astype(bias.dtype, copy=False) if needs[2] else None)
        mean = params["mean"].reshape(1, c, 1)
        var = params["var"].reshape(1, c, 1)
        gx = gw = gb = None
        dot = gsum = None
        if needs[0] or needs[1]:
            dot = reduce(red["sum_g_xc"], (g3, x3, mean), x3, (0, 2), s)
        if needs[0] or needs[2]:
            gsum = reduce(red["sum_cast"], (g3,), x3, (0, 2), s)
        if needs[1]:
            gw = ew["batch_norm_weight_grad"](dot, var, eps)
            gw = gw.reshape(weight.shape).astype(weight.dtype, copy=False)
        if needs[2]:
            gb = gsum.reshape(bias.shape).astype(bias.dtype, copy=False)
        if needs[0]:
            kernel, wb = affine("batch_norm_backward_out", weight, None, (1, c, 1))
            gx = kernel(g3, x3, mean, var, eps, dot, gsum, x3.shape[0] * x3.shape[2], *wb)
            gx = gx.reshape(x.shape)
        return (gx, gw, gb)

    return ({"layer_norm": layer_norm, "batch_norm": batch_norm},
            {"layer_norm": layer_norm_bw, "batch_norm": batch_norm_bw})
