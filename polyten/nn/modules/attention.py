"""Attention layers: ``MultiheadAttention``, ``TransformerEncoderLayer`` and
``TransformerEncoder`` (``torch.nn`` signatures, parameter names, defaults, initialisation and
reprs).

They compute with :mod:`polyten.nn.functional` (``multi_head_attention_forward``,
``scaled_dot_product_attention``, ``linear``, ``layer_norm``), so they differentiate and run on
every backend.  PyTorch's inference "fast paths" (nested tensors, fused encoder kernels) give
the same values, so there is nothing to mirror: one path serves training and evaluation.
"""

from __future__ import annotations

import copy

from ...api._core import Tensor, describe
from ...autograd.grad_mode import no_grad
from ...dispatch.errors import fmt_shape
from .. import functional as F
from .. import init
from ..functional._attention import _mha_forward
from ..parameter import Parameter
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear, _empty
from .module import Module

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]


class NonDynamicallyQuantizableLinear(Linear):
    """The ``out_proj`` of :class:`MultiheadAttention`: a plain :class:`Linear` under PyTorch's
    class name (so reprs and checkpoints read the same)."""


class MultiheadAttention(Module):
    r"""Multi-head attention: ``Concat(head_1, ..., head_h) W_O`` with
    ``head_i = softmax(Q W_Q^i (K W_K^i)^T / sqrt(d)) V W_V^i``.

    Parameters
    ----------
    embed_dim : int
        Model width ``E`` (queries' features); split over ``num_heads`` heads of
        ``E // num_heads`` features each (``embed_dim`` must be divisible by ``num_heads``).
    num_heads : int
    dropout : float
        Dropout probability on the attention weights (training mode only).
    bias : bool
        Whether the in- and out-projections have biases.
    add_bias_kv : bool
        Append the learned ``bias_k``/``bias_v`` (1, 1, E) to the keys and values.
    add_zero_attn : bool
        Append a zero key and value.
    kdim, vdim : int, optional
        Features of key and value (default ``embed_dim``).  When either differs, the
        projections are the separate ``q_proj_weight``, ``k_proj_weight`` and
        ``v_proj_weight``; otherwise one packed ``in_proj_weight`` (3E, E).
    batch_first : bool
        Inputs and output are (N, L, E) instead of (L, N, E).

    Call ``mha(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)``; returns ``(attn_output, attn_weights)``.
    Bool masks are True where attention is *not* allowed; float masks are added to the scores.
    ``key_padding_mask`` is (N, S); ``attn_mask`` (L, S) or (N * num_heads, L, S).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"MultiheadAttention: {name} must be a positive int, got "
                                 f"{v!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads}); each head gets embed_dim // "
                             f"num_heads features")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"MultiheadAttention: dropout probability has to be between 0 and "
                             f"1, but got {dropout!r}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(_empty((embed_dim, embed_dim), device, dtype))
            self.k_proj_weight = Parameter(_empty((embed_dim, self.kdim), device, dtype))
            self.v_proj_weight = Parameter(_empty((embed_dim, self.vdim), device, dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(_empty((3 * embed_dim, embed_dim), device, dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(_empty((3 * embed_dim,), device, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(_empty((1, 1, embed_dim), device, dtype))
            self.bias_v = Parameter(_empty((1, 1, embed_dim), device, dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform projections, zero biases, Xavier-normal ``bias_k/v``;
        ``out_proj.weight`` keeps :class:`Linear`'s initialisation."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _describe(self) -> str:
        return f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        me = self._describe()
        for name, t, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{me}: {name} must be a tensor, got {describe(t)}")
            if t.ndim in (2, 3) and t.shape[-1] != size:
                what = {"query": "embed_dim", "key": "kdim", "value": "vdim"}[name]
                raise ValueError(f"{me}: expected {name} with {what}={size} features in its "
                                 f"last dimension, got {name} of shape {fmt_shape(t.shape)}")
        batched = query.ndim == 3
        if self.batch_first and batched:
            # transpose keeping the identities that select the fused in-projections
            if key is value:
                if query is key:
                    query = key = value = query.transpose(1, 0)
                else:
                    query, key = query.transpose(1, 0), key.transpose(1, 0)
                    value = key
            else:
                query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = _mha_forward(
            me, query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, self.training, key_padding_mask,
            need_weights, attn_mask, separate, self.q_proj_weight, self.k_proj_weight,
            self.v_proj_weight, None, None, average_attn_weights, is_causal)
        if self.batch_first and batched:
            return out.transpose(1, 0), weights
        return out, weights


def _activation_fn(activation):
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ValueError(f"TransformerEncoderLayer: activation should be 'relu' or 'gelu' (or "
                         f"a callable), not {activation!r}")
    if not callable(activation):
        raise TypeError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                        f"callable, got {describe(activation)}")
    return activation


def _layer_norm_class():
    from .. import LayerNorm  # written in its own module; looked up when first needed
    return LayerNorm


def _causal_float_mask(size, like):
    from ...api.creation import full
    from ...api.shape import triu
    return triu(full((size, size), float("-inf"), dtype=like._dtype, device=like._device), 1)


def _mask_is_causal(mask, size) -> bool:
    """Whether ``mask`` equals the (size, size) causal mask (PyTorch's detection, used when
    ``is_causal`` is None)."""
    if mask is None or tuple(mask.shape) != (size, size):
        return False
    with no_grad():
        if mask._dtype.kind == "b":
            from ...api.creation import ones
            from ...api.shape import triu
            ref = triu(ones((size, size), dtype=mask._dtype, device=mask._device), 1)
        else:
            ref = _causal_float_mask(size, mask)
        return bool((mask == ref).all().item())


class TransformerEncoderLayer(Module):
    r"""Self-attention and a feed-forward network, each in a residual block with layer norm
    (``torch.nn.TransformerEncoderLayer``)::

        norm_first=False:  x = norm1(x + sa(x));        x = norm2(x + ff(x))
        norm_first=True:   x = x + sa(norm1(x));        x = x + ff(norm2(x))

    with ``sa`` = :class:`MultiheadAttention` + dropout and ``ff(x) =
    dropout(linear2(dropout(activation(linear1(x)))))``.

    Parameters
    ----------
    d_model, nhead : int
        Model width and number of attention heads.
    dim_feedforward : int
        Hidden width of the feed-forward network.
    dropout : float
    activation : 'relu', 'gelu' or callable
    layer_norm_eps : float
    batch_first : bool
        ``src`` is (N, L, E) instead of (L, N, E).
    norm_first : bool
        Pre-norm (``True``) or post-norm (``False``, the original Transformer).
    bias : bool
        Biases in the linear layers and layer norms.

    Call ``layer(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``; masks as
    :class:`MultiheadAttention`'s (bool True = not allowed).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        layer_norm = _layer_norm_class()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = layer_norm(d_model, eps=layer_norm_eps, bias=bias, device=device,
                                dtype=dtype)
        self.norm2 = layer_norm(d_model, eps=layer_norm_eps, bias=bias, device=device,
                                dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation_fn(activation)

    def _describe(self) -> str:
        return (f"TransformerEncoderLayer(d_model={self.self_attn.embed_dim}, "
                f"nhead={self.self_attn.num_heads})")

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        me = self._describe()
        if not isinstance(src, Tensor):
            raise TypeError(f"{me}: src must be a tensor, got {describe(src)}")
        d = self.self_attn.embed_dim
        if src.ndim not in (2, 3) or src.shape[-1] != d:
            layout = "(N, L, E)" if self.self_attn.batch_first else "(L, N, E)"
            raise ValueError(f"{me}: expected src of shape {layout} (or unbatched (L, E)) with "
                             f"E = d_model = {d}, got shape {fmt_shape(src.shape)}")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    r"""A stack of ``num_layers`` copies of ``encoder_layer`` (each with its own parameters),
    optionally followed by ``norm``.

    ``enable_nested_tensor`` and ``mask_check`` are accepted for PyTorch compatibility; they
    select PyTorch's nested-tensor inference path, which gives the same values, so polyten
    ignores them.

    Call ``encoder(src, mask=None, src_key_padding_mask=None, is_causal=None)``; with
    ``is_causal=None`` a ``mask`` equal to the causal mask is detected (as PyTorch).
    """

    def __init__(self, encoder_layer, num_layers: int, norm=None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got "
                            f"{describe(encoder_layer)}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"TransformerEncoder: num_layers must be a non-negative int, got "
                             f"{num_layers!r}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        if is_causal is None:
            batch_first = bool(self.layers) and getattr(
                getattr(self.layers[0], "self_attn", None), "batch_first", False)
            seq = None
            if isinstance(src, Tensor) and src.ndim in (2, 3):
                seq = src.shape[1] if (batch_first and src.ndim == 3) else src.shape[0]
            is_causal = seq is not None and _mask_is_causal(mask, seq)
        out = src
        for mod in self.layers:
            out = mod(out, src_mask=mask, is_causal=is_causal,
                      src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            out = self.norm(out)
        return out


class TransformerDecoderLayer(Module):
    r"""Self-attention, attention over the encoder's output (``memory``) and a feed-forward
    network, each in a residual block with layer norm (``torch.nn.TransformerDecoderLayer``)::

        norm_first=False:  x = norm1(x + sa(x));  x = norm2(x + mha(x, mem));
                           x = norm3(x + ff(x))
        norm_first=True:   x = x + sa(norm1(x));  x = x + mha(norm2(x), mem);
                           x = x + ff(norm3(x))

    Parameters as :class:`TransformerEncoderLayer`.  Call ``layer(tgt, memory, tgt_mask=None,
    memory_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    tgt_is_causal=False, memory_is_causal=False)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        layer_norm = _layer_norm_class()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = layer_norm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = layer_norm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = layer_norm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(activation)

    def _check(self, name, x):
        me = (f"TransformerDecoderLayer(d_model={self.self_attn.embed_dim}, "
              f"nhead={self.self_attn.num_heads})")
        if not isinstance(x, Tensor):
            raise TypeError(f"{me}: {name} must be a tensor, got {describe(x)}")
        d = self.self_attn.embed_dim
        if x.ndim not in (2, 3) or x.shape[-1] != d:
            layout = "(N, L, E)" if self.self_attn.batch_first else "(L, N, E)"
            raise ValueError(f"{me}: expected {name} of shape {layout} (or unbatched (L, E)) "
                             f"with E = d_model = {d}, got shape {fmt_shape(x.shape)}")

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False):
        self._check("tgt", tgt)
        self._check("memory", memory)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask,
                                              tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask,
                                               memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, is_causal=is_causal,
                                need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


class TransformerDecoder(Module):
    r"""A stack of ``num_layers`` copies of ``decoder_layer`` (each with its own parameters),
    optionally followed by ``norm``.

    Call ``decoder(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)``; with
    ``tgt_is_causal=None`` a ``tgt_mask`` equal to the causal mask is detected (as PyTorch).
    """

    def __init__(self, decoder_layer, num_layers: int, norm=None):
        super().__init__()
        if not isinstance(decoder_layer, Module):
            raise TypeError(f"TransformerDecoder: decoder_layer must be a Module, got "
                            f"{describe(decoder_layer)}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"TransformerDecoder: num_layers must be a non-negative int, got "
                             f"{num_layers!r}")
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        if tgt_is_causal is None:
            batch_first = bool(self.layers) and getattr(
                getattr(self.layers[0], "self_attn", None), "batch_first", False)
            seq = None
            if isinstance(tgt, Tensor) and tgt.ndim in (2, 3):
                seq = tgt.shape[1] if (batch_first and tgt.ndim == 3) else tgt.shape[0]
            tgt_is_causal = seq is not None and _mask_is_causal(tgt_mask, seq)
        out = tgt
        for mod in self.layers:
            out = mod(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            out = self.norm(out)
        return out


class Transformer(Module):
    r"""The encoder-decoder Transformer (``torch.nn.Transformer``): ``num_encoder_layers``
    :class:`TransformerEncoderLayer` and ``num_decoder_layers`` :class:`TransformerDecoderLayer`,
    each stack ending in a layer norm; the parameters with more than one dim are initialised
    with Xavier-uniform.  ``custom_encoder`` / ``custom_decoder`` replace the stacks.

    Call ``transformer(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    src_is_causal=None, tgt_is_causal=None, memory_is_causal=False)``.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None):
        super().__init__()
        layer_norm = _layer_norm_class()
        kw = dict(device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                              layer_norm(d_model, eps=layer_norm_eps,
                                                         bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                              layer_norm(d_model, eps=layer_norm_eps,
                                                         bias=bias, **kw))
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        from .. import init
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        for name, x in (("src", src), ("tgt", tgt)):
            if not isinstance(x, Tensor):
                raise TypeError(f"Transformer: {name} must be a tensor, got {describe(x)}")
        if src.ndim == 3 and tgt.ndim == 3:
            b = 0 if self.batch_first else 1
            if src.shape[b] != tgt.shape[b]:
                raise ValueError(f"Transformer: the batch size of src ({src.shape[b]}) and tgt "
                                 f"({tgt.shape[b]}) must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: the feature size of src ({src.shape[-1]}) and tgt "
                             f"({tgt.shape[-1]}) must equal d_model ({self.d_model})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None):
        """The (sz, sz) causal mask: ``-inf`` above the diagonal, 0 elsewhere."""
        from ...api.creation import full
        from ...api.shape import triu
        return triu(full((sz, sz), float("-inf"), dtype=dtype, device=device), 1)
