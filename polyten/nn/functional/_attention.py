"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``
(``torch.nn.functional`` names, signatures and semantics).

Written with polyten ops (batched matmul, softmax, where), so both differentiate and run on
every backend.  Mask conventions follow PyTorch, which uses two opposite ones:

* ``scaled_dot_product_attention``: a bool ``attn_mask`` is True where a query may attend
  (False positions are excluded); a float mask is added to the scores.  A query row whose
  every key is excluded gets zero weights (PyTorch's "safe softmax"), not NaN.
* ``multi_head_attention_forward`` / ``nn.MultiheadAttention``: a bool ``attn_mask`` or
  ``key_padding_mask`` is True where a key is *excluded*; float masks are added.
"""

from __future__ import annotations

import math

from ...api import autocast as _amp
from ...api import elementwise as _ew
from ...api._core import Tensor, broadcast_shapes, describe, device_mismatch, wrap
from ...api.dtypes import bool as _bool
from ...api.linalg import matmul
from ...api.shape import cat, tril
from ...api.random import dropout_mask
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.grad_mode import no_grad
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape
from ._activation import softmax
from ._misc import dropout, linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

_NEG_INF = float("-inf")
_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere


def _zeros(shape, like, dtype=None):
    from ...api.creation import zeros
    return zeros(shape, dtype=like._dtype if dtype is None else dtype, device=like._device)


def _ones_bool(shape, like):
    from ...api.creation import ones
    return ones(shape, dtype=_bool, device=like._device)


def _mask_kind(op: str, name: str, mask) -> str:
    """'bool' or 'float'; a TypeError for anything else."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor or None, got {describe(mask)}")
    if mask._dtype is _bool:
        return "bool"
    if mask._dtype.kind == "f":
        return "float"
    raise TypeError(f"{op}: only bool and floating-point {name} are supported, got "
                    f"{mask._dtype.name}; use a bool mask or mask.to(query.dtype)")


# ------------------------------------------------------------------------------ sdpa --------
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None,
                                 enable_gqa: bool = False) -> Tensor:
    r"""``softmax(query @ key^T * scale + mask) @ value``.

    Parameters
    ----------
    query : Tensor (..., L, E)
    key : Tensor (..., S, E)
    value : Tensor (..., S, Ev)
        The leading (batch, head) dimensions broadcast.
    attn_mask : Tensor, optional
        Broadcastable to (..., L, S).  Bool: True where the query may attend to the key.
        Float: added to the scores (``-inf`` excludes).
    dropout_p : float
        Dropout probability applied to the attention weights (always, when > 0: pass 0.0 in
        evaluation).
    is_causal : bool
        Query ``i`` attends only to keys ``j <= i`` (the top-left aligned lower triangle of
        (L, S)); cannot be combined with ``attn_mask``.
    scale : float, optional
        Defaults to ``1 / sqrt(E)``.
    enable_gqa : bool
        Grouped-query attention: ``key``/``value`` with fewer heads (dim -3) than ``query``
        are repeated to match (the query heads must be a multiple of them).

    Returns
    -------
    Tensor (..., L, Ev)
        Query rows that may attend to no key at all get zeros (as PyTorch).
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(t)}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions (..., seq, "
                             f"features), got shape {fmt_shape(t.shape)}")
        if t._dtype.kind not in "fc":
            raise TypeError(f"{op}: expected floating-point query, key and value, got {name} "
                            f"of dtype {t._dtype.name}")
    if query._device is not key._device or query._device is not value._device:
        raise device_mismatch(op, (query, key, value))
    qs, ks, vs = tuple(query.shape), tuple(key.shape), tuple(value.shape)
    if qs[-1] != ks[-1]:
        raise ValueError(f"{op}: query {fmt_shape(qs)} and key {fmt_shape(ks)} must have the "
                         f"same embedding size (last dimension)")
    if ks[-2] != vs[-2]:
        raise ValueError(f"{op}: key {fmt_shape(ks)} and value {fmt_shape(vs)} must have the "
                         f"same sequence length (dimension -2)")
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or \
            not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be a number in [0, 1], got {dropout_p!r}")
    if enable_gqa and len(qs) >= 3 and len(ks) >= 3 and qs[-3] != ks[-3]:
        hq, hk, hv = qs[-3], ks[-3], vs[-3] if len(vs) >= 3 else None
        if hk != hv or hk == 0 or hq % hk:
            raise ValueError(f"{op}: with enable_gqa=True the number of query heads ({hq}) "
                             f"must be a multiple of the key/value heads ({hk}, {hv}), "
                             f"which must be equal")
        key = key.repeat_interleave(hq // hk, dim=-3)
        value = value.repeat_interleave(hq // hk, dim=-3)
        ks, vs = tuple(key.shape), tuple(value.shape)
    L, S = qs[-2], ks[-2]
    try:
        batch = broadcast_shapes(qs[:-2], ks[:-2], vs[:-2], op=op)
    except ValueError:
        raise ValueError(f"{op}: the batch dimensions of query {fmt_shape(qs)}, key "
                         f"{fmt_shape(ks)} and value {fmt_shape(vs)} do not broadcast") from None
    if attn_mask is None and qs[:-2] == ks[:-2] == vs[:-2] and dropout_p < 1.0:
        out = _fused(query, key, value, dropout_p, is_causal, scale)
        if out is not None:
            return out
    kind = None
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: explicit attn_mask should not be set when is_causal=True "
                             f"(pass one or the other)")
        with no_grad():
            attn_mask = tril(_ones_bool((L, S), query))
        kind = "bool"
    elif attn_mask is not None:
        kind = _mask_kind(op, "attn_mask", attn_mask)
        if attn_mask._device is not query._device:
            raise device_mismatch(op, (query, attn_mask))
        try:
            broadcast_shapes(tuple(attn_mask.shape), tuple(batch) + (L, S), op=op)
        except ValueError:
            raise ValueError(f"{op}: attn_mask of shape {fmt_shape(attn_mask.shape)} does not "
                             f"broadcast to the attention weights' shape "
                             f"{fmt_shape(tuple(batch) + (L, S))} (..., L, S)") from None
        if len(attn_mask.shape) > len(batch) + 2:
            raise ValueError(f"{op}: attn_mask of shape {fmt_shape(attn_mask.shape)} has more "
                             f"dimensions than the attention weights "
                             f"{fmt_shape(tuple(batch) + (L, S))}")
    s = 1.0 / math.sqrt(qs[-1]) if scale is None else float(scale)
    scores = matmul(query * s, key.mT)
    if kind == "bool":
        scores = scores.masked_fill(_ew.logical_not(attn_mask), _NEG_INF)
    elif kind == "float":
        scores = scores + attn_mask
    empty_rows = None
    if kind is not None:
        # rows without any admissible key: softmax would give NaN (and NaN gradients);
        # PyTorch returns zeros for them, so they are computed on zeros and zeroed after.
        # Whether there are any is read on the host where that read is free; a backend whose
        # host reads wait for the device (a GPU) masks every call instead of waiting
        from ...api.reduction import amax
        with no_grad():
            rows = amax(scores, -1, True) == _NEG_INF
            if query._device.backend.deferred_checks or bool(rows.any().item()):
                empty_rows = rows
        if empty_rows is not None:
            scores = scores.masked_fill(empty_rows, 0.0)
    weights = softmax(scores, -1)
    if empty_rows is not None:
        weights = weights.masked_fill(empty_rows, 0.0)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return matmul(weights, value)


def _fused(q, k, v, p: float, is_causal: bool, scale):
    """Attention without an explicit mask as the op-table composite: one kernel and one node
    (``ScaledDotProductAttentionBackward0``), instead of five ops forward and their nodes.
    None where it does not apply (operands of several dtypes, complex, empty): the caller
    composes the ops instead.  Dropout's keep mask is what ``dropout`` of the weights would
    draw (``dropout_mask`` of their shape, next from the same generator)."""
    if _AMP[0]:  # autocast: attention runs in the region's dtype, as PyTorch's
        q, k, v = _amp.lower(q, k, v)
    dt = q._dtype
    if k._dtype is not dt or v._dtype is not dt or dt.kind != "f":
        return None
    qd, kd, vd = q._data, k._data, v._data
    if not (qd.size and kd.size and vd.size):
        return None
    dev = q._device
    s = 1.0 / math.sqrt(qd.shape[-1]) if scale is None else float(scale)
    keep = None
    if p > 0.0:
        keep = dropout_mask(tuple(qd.shape[:-1]) + (kd.shape[-2],), p, dt, dev)._data
    kern = _sdpa_k[dev.backend]
    if kern is None:
        out, w, dropped = _sdpa_default(wrap(qd, dev, dt), wrap(kd, dev, dt), wrap(vd, dev, dt),
                                        None if keep is None else wrap(keep, dev, dt), s,
                                        is_causal)
    else:
        o, w, d = kern(qd, kd, vd, keep, s, is_causal)
        out, w, dropped = wrap(o, dev, dt), wrap(w, dev, dt), None if d is None else wrap(
            d, dev, dt)
    if (q._ag is not None or k._ag is not None or v._ag is not None) and _grad_on():
        # the weights (and the dropped weights) are the node's internal outputs: its
        # backward reads them, and a double backward differentiates through them
        _record(_sdpa_rule, (out, w, dropped), (q, k, v),
                {"keep": keep, "scale": s, "is_causal": is_causal})
    return out


def _sdpa_default(q, k, v, keep, scale: float, is_causal: bool):
    """Default of the ``scaled_dot_product_attention`` composite in polyten ops, on tensors
    without graph (the caller records the op's rule): ``(out, weights, dropped)``."""
    scores = matmul(q, k.mT) * scale
    if is_causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(_ew.logical_not(tril(_ones_bool((L, S), q))), _NEG_INF)
    w = softmax(scores, -1, dtype=scores.dtype)  # dtype: no float32 under autocast
    dropped = None if keep is None else w * keep
    return matmul(w if dropped is None else dropped, v), w, dropped


register_default("scaled_dot_product_attention", _sdpa_default)
_sdpa_k = kernels("scaled_dot_product_attention")
_sdpa_rule = _rule("scaled_dot_product_attention")


# --------------------------------------------------------------- multi-head attention -------
def _canonical_mask(op, name, mask, dtype):
    """A float mask (0 where kept, -inf where excluded) from a bool (True = excluded) or float
    one; None stays None."""
    if mask is None:
        return None
    if _mask_kind(op, name, mask) == "bool":
        with no_grad():
            return _zeros(tuple(mask.shape), mask, dtype).masked_fill(mask, _NEG_INF)
    return mask


def _pad_last(mask, like):
    """``mask`` with one more column of zeros (PyTorch's ``pad(mask, (0, 1))``)."""
    return cat([mask, _zeros(tuple(mask.shape[:-1]) + (1,), like, mask._dtype)], -1)


def _check_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """PyTorch's shape rules for batched (3-D) and unbatched (2-D) inputs; returns whether
    the inputs are batched."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(t)}")
    for name, m in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
        if m is not None:
            _mask_kind(op, name, m)
    qd, kd, vd = query.ndim, key.ndim, value.ndim
    if qd == 3:
        if kd != 3 or vd != 3:
            raise ValueError(f"{op}: for batched (3-D) query, expected key and value to be "
                             f"3-D but found {kd}-D and {vd}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ValueError(f"{op}: for batched (3-D) query, expected key_padding_mask to be "
                             f"None or 2-D (N, S), but found a {key_padding_mask.ndim}-D tensor")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise ValueError(f"{op}: for batched (3-D) query, expected attn_mask to be None, "
                             f"2-D or 3-D, but found a {attn_mask.ndim}-D tensor")
        return True
    if qd == 2:
        if kd != 2 or vd != 2:
            raise ValueError(f"{op}: for unbatched (2-D) query, expected key and value to be "
                             f"2-D but found {kd}-D and {vd}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ValueError(f"{op}: for unbatched (2-D) query, expected key_padding_mask to "
                             f"be None or 1-D (S,), but found a {key_padding_mask.ndim}-D "
                             f"tensor")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise ValueError(f"{op}: for unbatched (2-D) query, expected attn_mask to be "
                                 f"None, 2-D or 3-D, but found a {attn_mask.ndim}-D tensor")
            if attn_mask.ndim == 3:
                expected = (num_heads, query.shape[0], key.shape[0])
                if tuple(attn_mask.shape) != expected:
                    raise ValueError(f"{op}: expected the 3-D attn_mask of an unbatched query "
                                     f"to have shape {expected} (num_heads, L, S), got "
                                     f"{fmt_shape(attn_mask.shape)}")
        return False
    raise ValueError(f"{op}: query should be an unbatched 2-D (L, E) or batched 3-D (L, N, E) "
                     f"tensor, but received a {qd}-D query of shape {fmt_shape(query.shape)}")


def _in_projection(query, key, value, in_proj_weight, in_proj_bias, separate, qw, kw, vw, E):
    if separate:
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.split(E, 0)
        return linear(query, qw, bq), linear(key, kw, bk), linear(value, vw, bv)
    if key is value and query is key:  # self-attention: one matmul for q, k and v
        q, k, v = linear(query, in_proj_weight, in_proj_bias).split(E, -1)
        return q, k, v
    w_q, w_kv = in_proj_weight.split((E, 2 * E), 0)
    b_q = b_kv = None
    if in_proj_bias is not None:
        b_q, b_kv = in_proj_bias.split((E, 2 * E), 0)
    q = linear(query, w_q, b_q)
    if key is value:  # encoder-decoder attention: one matmul for k and v
        k, v = linear(key, w_kv, b_kv).split(E, -1)
        return q, k, v
    w_k, w_v = w_kv.split(E, 0)
    b_k = b_v = None
    if b_kv is not None:
        b_k, b_v = b_kv.split(E, 0)
    return q, linear(key, w_k, b_k), linear(value, w_v, b_v)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False):
    r"""Multi-head attention as ``torch.nn.functional.multi_head_attention_forward``.

    Shapes: ``query`` (L, N, E), ``key`` (S, N, E_k), ``value`` (S, N, E_v) (unbatched:
    without N); ``key_padding_mask`` (N, S) / (S,); ``attn_mask`` (L, S) or
    (N * num_heads, L, S).  Bool masks are True where attention is *not* allowed; float masks
    are added to the scores.  ``is_causal`` is a hint that ``attn_mask`` (required) is the
    causal mask.

    Returns ``(attn_output, attn_weights)``: (L, N, E) and, when ``need_weights``, the
    softmax weights (N, L, S) averaged over heads (``average_attn_weights``) or
    (N, num_heads, L, S); else None.
    """
    return _mha_forward("multi_head_attention_forward", query, key, value, embed_dim_to_check,
                        num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                        dropout_p, out_proj_weight, out_proj_bias, training, key_padding_mask,
                        need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
                        k_proj_weight, v_proj_weight, static_k, static_v,
                        average_attn_weights, is_causal)


def _mha_forward(op, query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                 out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
                 use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight,
                 static_k, static_v, average_attn_weights, is_causal):
    """:func:`multi_head_attention_forward` with errors prefixed by ``op`` (the caller's name,
    e.g. the module's)."""
    batched = _check_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = _unsqueeze_same(query, key, value)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = tuple(query.shape)
    src_len = key.shape[0]
    dt = query._dtype
    key_padding_mask = _canonical_mask(op, "key_padding_mask", key_padding_mask, dt)
    if is_causal and attn_mask is None:
        raise ValueError(f"{op}: is_causal=True is a hint that attn_mask is the causal mask, so "
                         f"attn_mask is required; build one with polyten.triu(polyten.full((L, "
                         f"L), float('-inf')), diagonal=1)")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the causal hint alone tells scaled_dot_product_attention
    else:
        attn_mask = _canonical_mask(op, "attn_mask", attn_mask, dt)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise ValueError(f"{op}: expected query with embed_dim={embed_dim_to_check} features "
                         f"in its last dimension, got query of shape "
                         f"{fmt_shape(query.shape)}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"{op}: embed_dim ({embed_dim}) must be divisible by num_heads "
                         f"({num_heads})")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise ValueError(f"{op}: key's sequence and batch dims {tuple(key.shape[:2])} do "
                             f"not match value's {tuple(value.shape[:2])}")
    elif tuple(key.shape) != tuple(value.shape):
        raise ValueError(f"{op}: key shape {fmt_shape(key.shape)} does not match value shape "
                         f"{fmt_shape(value.shape)}")
    if tuple(key.shape[1:2]) != (bsz,):
        raise ValueError(f"{op}: query {fmt_shape(query.shape)} and key "
                         f"{fmt_shape(key.shape)} must have the same batch size (dim 1)")
    q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight, embed_dim)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise ValueError(f"{op}: the 2-D attn_mask has shape "
                                 f"{fmt_shape(attn_mask.shape)}, but should be (L, S) = "
                                 f"{(tgt_len, src_len)}")
            attn_mask = attn_mask.unsqueeze(0)
        elif tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise ValueError(f"{op}: the 3-D attn_mask has shape {fmt_shape(attn_mask.shape)}, "
                             f"but should be (N * num_heads, L, S) = "
                             f"{(bsz * num_heads, tgt_len, src_len)}")
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{op}: bias_k/bias_v cannot be added to a static key or value")
        k = cat([k, bias_k.expand(1, bsz, embed_dim)], 0)
        v = cat([v, bias_v.expand(1, bsz, embed_dim)], 0)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask, q)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask, q)
    elif (bias_k is None) != (bias_v is None):
        raise ValueError(f"{op}: bias_k and bias_v must both be set or both be None")
    bh = bsz * num_heads
    q = q.reshape(tgt_len, bh, head_dim).transpose(0, 1)
    k = _heads(op, "static_k", static_k, k, bh, head_dim)
    v = _heads(op, "static_v", static_v, v, bh, head_dim)
    if add_zero_attn:
        k = cat([k, _zeros((bh, 1, head_dim), k)], 1)
        v = cat([v, _zeros((bh, 1, head_dim), v)], 1)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask, q)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask, q)
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise ValueError(f"{op}: expected key_padding_mask of shape (N, S) = "
                             f"{(bsz, src_len)}, got {fmt_shape(key_padding_mask.shape)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bh, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = matmul(q * (1.0 / math.sqrt(head_dim)), k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p, True)
        out = matmul(weights, v)  # (N * heads, L, head_dim)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0)
        return out, weights
    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not batched:
        out = out.squeeze(1)
    return out, None


def _unsqueeze_same(query, key, value):
    """Add the batch dim (1) keeping the identities ``query is key`` / ``key is value``
    that select the fused in-projections."""
    q = query.unsqueeze(1)
    k = q if key is query else key.unsqueeze(1)
    v = k if value is key else (q if value is query else value.unsqueeze(1))
    return q, k, v


def _heads(op, name, static, t, bh, head_dim):
    """(S, N, E) -> (N * heads, S, head_dim), or the given static key/value."""
    if static is None:
        return t.reshape(t.shape[0], bh, head_dim).transpose(0, 1)
    if static.ndim != 3 or static.shape[0] != bh or static.shape[2] != head_dim:
        raise ValueError(f"{op}: expected {name} of shape (N * num_heads, S, head_dim) with "
                         f"N * num_heads = {bh} and head_dim = {head_dim}, got "
                         f"{fmt_shape(static.shape)}")
    return static
