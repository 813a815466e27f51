"""``scaled_dot_product_attention`` (no explicit mask) and its backward on cuBLAS and one row
kernel.

Forward: ``q @ k^T`` as one strided-batched GEMM with the scale as cuBLAS's alpha (``k^T`` by
its transpose flag), the softmax (causal or not, and the dropout mask's product) in place on
the scores by one row kernel (:meth:`polyten_cuda.rows.Rows.attention_softmax`), and the
product with ``v``: three launches, where the composed ops were five with dropout (the
scaling, the two products, softmax and dropout) and a causal mask added eight more.
Backward: ``dropped^T @ g`` for ``v``; ``g @ v^T``, softmax's backward in place on it (with
the keep mask's product), and the two products with ``k`` and ``q`` scaled by alpha: five
launches where the composed ops' nodes took seven with dropout.  The GEMMs accumulate float16 / bfloat16 in float32, as PyTorch's.

What ``bmm`` or the row kernels do not take (a dtype cuBLAS refused, complex) goes to the
shared kernels.
"""

from __future__ import annotations


def build(cp, bmm, rows, shared, shared_bw):
    """``(forward, backward)`` with the shared kernels' signatures (``polyten_cpu.kernels.
    attention``) on ``bmm`` (:func:`polyten_cuda.gemm.build`) and ``rows`` (a
    :class:`polyten_cuda.rows.Rows`)."""
    types = bmm.data_types

    def fits(x):
        return x.dtype in types and rows.fits(x)

    def scaled_dot_product_attention(q, k, v, keep, scale, is_causal):
        if not fits(q) or (keep is not None and not keep.flags.c_contiguous):
            return shared(q, k, v, keep, scale, is_causal)
        scores = bmm(q, k.mT, alpha=scale)
        if scores is None:
            return shared(q, k, v, keep, scale, is_causal)
        w, dropped = rows.attention_softmax(scores, keep, q.shape[-2], is_causal)
        out = bmm(w if dropped is None else dropped, v)
        if out is None:
            return shared(q, k, v, keep, scale, is_causal)
        return out, w, dropped

    def scaled_dot_product_attention_backward(grads, inputs, outputs, params):
        g = grads[0]
        q, k, v = inputs
        w, dropped = outputs[1], outputs[2]
        keep = params["keep"]
        if (g is None or grads[1] is not None or grads[2] is not None or not fits(g)
                or not w.flags.c_contiguous):
            return shared_bw(grads, inputs, outputs, params)
        needs, scale = params["needs"], params["scale"]
        gq = gk = gv = None
        if needs[2]:
            gv = bmm((w if dropped is None else dropped).mT, g)
            if gv is None:
                return shared_bw(grads, inputs, outputs, params)
        if needs[0] or needs[1]:
            gs = bmm(g, v.mT)  # a fresh C-contiguous array: the row kernel works in place
            if gs is None:
                return shared_bw(grads, inputs, outputs, params)
            rows.attention_softmax_backward(gs, w, keep)
            if needs[0]:
                gq = bmm(gs, k, alpha=scale)
            if needs[1]:
                gk = bmm(gs.mT, q, alpha=scale)
            if (needs[0] and gq is None) or (needs[1] and gk is None):
                return shared_bw(grads, inputs, outputs, params)
        return gq, gk, gv

    return scaled_dot_product_attention, scaled_dot_product_attention_backward
