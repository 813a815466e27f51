"""``linear`` and its backward as direct cuBLAS GEMMs (:mod:`polyten_cuda.gemm`).

The shared kernels (``polyten_cpu.kernels.nn``) write ``linear`` for NumPy: reshape the input
to rows, ``x @ weight.T``, reshape back and add the bias; the backward reshapes the gradient,
casts each operand (``astype``, a no-op call for float32), and calls ``@`` twice.  On CuPy every
one of those is a Python call with host cost, and ``@`` is CuPy's general ``matmul`` (shape
checks, dtype resolution, copies of non-contiguous operands) before its GEMM: a Linear layer's
forward and backward were about fifteen CuPy calls, a transformer step's linears about 150.

Here the forward is PyTorch's ``addmm``: the bias broadcast into the output, then one GEMM
with beta = 1 (the product and the bias summed in the compute type and rounded once); an input
of more than two dims is one GEMM over all its rows, without a reshape; the transposed
weight is passed with cuBLAS's transpose flag.  The backward is two GEMMs on the gradient as
it is (``g @ weight``, and ``g2.T @ x2`` over the rows) and the bias gradient a column sum,
in float32 for float16 / bfloat16 (PyTorch's accumulation) and rounded once: one launch of
:meth:`polyten_cuda.rows.Rows.column_sum` (CuPy's ``sum(axis=0)`` is a reduction call, whose
host time is several times a ``RawKernel``'s; a step has one per Linear layer; a very tall
gradient takes a second launch that adds the row chunks' sums), or CuPy's sum for a strided
gradient.

Whatever :func:`polyten_cuda.gemm.build`'s ``bmm`` does not take (a vector input, operands of
two dtypes, a dtype cuBLAS refused on this GPU) goes to the shared kernel, as before.
"""

from __future__ import annotations


def build(cp, bmm, rows, shared_linear, shared_linear_bw, low):
    """``(linear, linear_backward)`` with the shared kernels' signatures, on ``bmm`` and the
    row kernels ``rows`` (:class:`polyten_cuda.rows.Rows`: the bias gradient).  ``low``: the
    half dtypes, whose bias gradient is summed in float32 (where CuPy's sum runs: float16 by
    CuPy's own sum, whose reduction type is float; the others as float32, then cast)."""
    types = bmm.data_types
    f32 = cp.dtype("float32")
    wide_sum = frozenset(d for d in low if d != cp.dtype("float16"))
    empty = cp.empty

    def linear(x, weight, bias):
        dt = x.dtype
        if (dt not in types or x.ndim < 2 or weight.dtype != dt or weight.ndim != 2
                or (bias is not None and (bias.dtype != dt or bias.ndim != 1))):
            return shared_linear(x, weight, bias)
        if bias is None:
            r = bmm(x, weight.T)
        else:
            out = empty(x.shape[:-1] + (weight.shape[0],), dtype=dt)
            out[...] = bias
            r = bmm(x, weight.T, out=out, accumulate=True)
        return shared_linear(x, weight, bias) if r is None else r

    def linear_backward(grads, inputs, outputs, params):
        g = grads[0]
        x, weight, bias = inputs
        dt = g.dtype
        if (dt not in types or x.ndim < 2 or x.dtype != dt or weight.dtype != dt
                or g.ndim != x.ndim
                or (bias is not None and (bias.dtype != dt or bias.ndim != 1))):
            return shared_linear_bw(grads, inputs, outputs, params)
        needs = params["needs"]  # the engine ignores the others: don't compute them
        if g.ndim > 2 and not g.flags.c_contiguous:
            g = cp.ascontiguousarray(g)  # once, for both products (each would copy it)
        gx = gw = gb = None
        if needs[0]:
            gx = bmm(g, weight)  # (..., out) @ (out, in): one GEMM over all rows
            if gx is None:
                return shared_linear_bw(grads, inputs, outputs, params)
        if needs[1] or needs[2]:
            g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
            if needs[1]:
                x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
                gw = bmm(g2.T, x2)  # the transposed rows are passed with cuBLAS's flag
                if gw is None:
                    return shared_linear_bw(grads, inputs, outputs, params)
            if needs[2]:
                # float16 / bfloat16 summed in float32 and rounded once, as PyTorch: the
                # column-sum kernel does that; so does CuPy's float16 sum (its reduction type
                # is float), and bfloat16 is summed there as float32 and cast
                gb = rows.column_sum(g2) if g2.flags.c_contiguous else None
                if gb is None:
                    gb = g2.sum(axis=0, dtype=f32 if dt in wide_sum else None)
                    if gb.dtype != dt:
                        gb = gb.astype(dt)
        return (gx, gw, gb)

    return linear, linear_backward
