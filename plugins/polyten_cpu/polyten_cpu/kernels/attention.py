"""Fused ``scaled_dot_product_attention`` (attention without an explicit mask) and its backward.

The composite's polyten ops are five dispatches forward (scale, product, softmax, dropout,
product) and five nodes whose backward is seven more; here the forward is two products and
a softmax done in place on the scores, and the backward two products per input pair around one
softmax backward, with the scale applied once to each product.  float16 and bfloat16 are
computed in float32 and rounded once per output (the weights, the dropped weights and the
result), as PyTorch accumulates half precision.
"""

from __future__ import annotations

from ._util import low_precision, row_reducers


def kernels(xp, **ctx) -> dict:
    low, f32 = low_precision(xp), xp.dtype("float32")
    matmul, exp = xp.matmul, xp.exp
    max_reduce, sum_reduce = row_reducers(xp)

    def scaled_dot_product_attention(q, k, v, keep, scale, is_causal):
        dt = q.dtype
        half = dt in low
        if half:
            q, k, v = q.astype(f32), k.astype(f32), v.astype(f32)
        s = matmul(q, xp.swapaxes(k, -1, -2))
        s *= scale
        if is_causal:
            # -inf above the diagonal (query i sees keys j <= i): key 0 is always left, so
            # no row is all -inf
            L, S = s.shape[-2:]
            s += xp.triu(xp.full((L, S), float("-inf"), dtype=s.dtype), 1)
        s -= max_reduce(s, axis=-1, keepdims=True)
        exp(s, out=s)
        s /= sum_reduce(s, axis=-1, keepdims=True)
        w = s.astype(dt) if half else s
        dropped = None if keep is None else w * keep
        p = w if dropped is None else dropped
        out = matmul(p.astype(f32) if half else p, v)
        return (out.astype(dt) if half else out), w, dropped

    return {"scaled_dot_product_attention": scaled_dot_product_attention}


def backward_kernels(xp, **ctx) -> dict:
    """The backward of the three inputs from the saved weights (``outputs[1]``) and dropped
    weights (``outputs[2]``); the formulas of ``polyten.autograd.derivatives``."""
    low, f32 = low_precision(xp), xp.dtype("float32")
    matmul = xp.matmul
    sum_reduce = row_reducers(xp)[1]

    def up(a):
        return a if a is None or a.dtype not in low else a.astype(f32)

    def scaled_dot_product_attention(grads, inputs, outputs, params):
        g, g_w, g_d = grads
        if g is None or g_w is not None or g_d is not None:  # a double backward's: formulas
            return NotImplemented
        dt = g.dtype
        q, k, v = inputs
        w, dropped = outputs[1], outputs[2]
        keep, scale, needs = params["keep"], params["scale"], params["needs"]
        g, w, p = up(g), up(w), up(w if dropped is None else dropped)
        gq = gk = gv = None
        if needs[2]:
            gv = matmul(xp.swapaxes(p, -1, -2), g)
        if needs[0] or needs[1]:
            gs = matmul(g, xp.swapaxes(up(v), -1, -2))
            if keep is not None:
                gs *= up(keep)
            # softmax's backward: w * (gs - sum(gs * w))
            gs -= sum_reduce(gs * w, axis=-1, keepdims=True)
            gs *= w
            gs *= scale
            if needs[0]:
                gq = matmul(gs, up(k))
            if needs[1]:
                gk = matmul(xp.swapaxes(gs, -1, -2), up(q))
        return tuple(None if r is None else r.astype(dt, copy=False) for r in (gq, gk, gv))

    return {"scaled_dot_product_attention": scaled_dot_product_attention}
