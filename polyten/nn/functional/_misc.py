"""Linear maps, dropout and embeddings (``torch.nn.functional`` names and signatures).

``linear`` is a composite op of the op table (a backend may fuse it; the cpu backend does):
one node with its own derivative rule is recorded whichever runs.  ``dropout`` draws its mask
with :func:`polyten.rand_like`, so :func:`polyten.manual_seed` makes it reproducible.
"""

from __future__ import annotations

from ...api import dtypes as _dt
from ...api import autocast as _amp
from ...api import elementwise as _ew
from ...api._core import Tensor, cast, describe, device_mismatch, wrap
from ...api.indexing import one_hot
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.grad_mode import no_grad
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape

_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere

__all__ = ["linear", "bilinear", "identity", "dropout", "dropout1d", "dropout2d", "dropout3d",
           "alpha_dropout", "feature_alpha_dropout", "embedding", "embedding_bag", "one_hot"]

_PROMOTE = _dt._PROMOTE


# ------------------------------------------------------------------------------ linear -----
def _linear_default(x, weight, bias):
    from ...api.linalg import matmul
    out = matmul(x, weight.mT)
    return out if bias is None else out + bias


register_default("linear", _linear_default)
_linear_k = kernels("linear")
_segment_argmax_k = kernels("segment_argmax")
_linear_rule = _rule("linear")


def _linear_error(input, weight, bias):
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            return TypeError(f"linear: {name} must be a tensor, got {describe(t)}")
    if bias is not None and not isinstance(bias, Tensor):
        return TypeError(f"linear: bias must be a tensor or None, got {describe(bias)}")
    sx, sw = input._data.shape, weight._data.shape
    if len(sw) != 2:
        return ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                          f"{fmt_shape(sw)}")
    if len(sx) == 0:
        return ValueError("linear: input must have at least 1 dimension (..., in_features), "
                          "got a 0-d tensor")
    if sx[-1] != sw[1]:
        return ValueError(f"linear: input of shape {fmt_shape(sx)} has {sx[-1]} features in "
                          f"its last dimension, but weight of shape {fmt_shape(sw)} expects "
                          f"in_features={sw[1]}")
    if bias is not None and tuple(bias._data.shape) not in ((sw[0],), ()):
        return ValueError(f"linear: bias must have shape ({sw[0]},) (out_features), got "
                          f"{fmt_shape(bias._data.shape)}")
    return None


def linear(input, weight, bias=None) -> Tensor:
    """``input @ weight.T + bias``: ``input`` (..., in_features), ``weight`` (out_features,
    in_features), ``bias`` (out_features,) or None; the result is (..., out_features)."""
    if _AMP[0]:
        input, weight, bias = _amp.lower(input, weight, bias)
    try:
        sx = input._data.shape
        sw = weight._data.shape
        ok = (len(sw) == 2 and sx and sx[-1] == sw[1] and
              (bias is None or bias._data.shape == (sw[0],)))
    except AttributeError:
        ok = False
    if not ok:
        err = _linear_error(input, weight, bias)
        if err is not None:
            raise err
    dev = input._device
    dt = input._dtype
    if weight._device is not dev or (bias is not None and bias._device is not dev):
        raise device_mismatch("linear", (input, weight, bias))
    xd, wd = input._data, weight._data
    bd = None if bias is None else bias._data
    if weight._dtype is not dt or (bias is not None and bias._dtype is not dt):
        cd = _PROMOTE[(dt, weight._dtype)]
        if bias is not None:
            cd = _PROMOTE[(cd, bias._dtype)]
        if dt is not cd:
            xd = cast(input, cd)
        if weight._dtype is not cd:
            wd = cast(weight, cd)
        if bias is not None and bias._dtype is not cd:
            bd = cast(bias, cd)
        dt = cd
    if dt.kind == "b":
        raise TypeError("linear: bool tensors are not supported; cast first, e.g. "
                        "x.to(polyten.float32)")
    k = _linear_k[dev.backend]
    if k is None:
        out = _linear_default(wrap(xd, dev, dt), wrap(wd, dev, dt),
                              None if bd is None else wrap(bd, dev, dt))
    else:
        out = wrap(k(xd, wd, bd), dev, dt)
    if (input._ag is not None or weight._ag is not None or
            (bias is not None and bias._ag is not None)) and _grad_on():
        # a fused backward kernel reads which inputs need a gradient from params["needs"]
        # (the engine passes the node's) and skips the others: the input of a first layer
        # needs none, and its matmul is the largest
        _record(_linear_rule, out, (input, weight, bias))
    return out


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """``y_k = x1 @ weight[k] @ x2 + bias[k]``: ``input1`` (..., in1), ``input2`` (..., in2),
    ``weight`` (out, in1, in2), ``bias`` (out,) or None; the result is (..., out)."""
    from ...api.linalg import einsum
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"bilinear: {name} must be a tensor, got {describe(t)}")
    s1, s2, sw = tuple(input1.shape), tuple(input2.shape), tuple(weight.shape)
    if len(sw) != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out_features, in1_features, "
                         f"in2_features), got shape {fmt_shape(sw)}")
    if not s1 or not s2 or s1[:-1] != s2[:-1]:
        raise ValueError(f"bilinear: input1 {fmt_shape(s1)} and input2 {fmt_shape(s2)} must be "
                         f"at least 1-D with the same batch dimensions")
    if s1[-1] != sw[1] or s2[-1] != sw[2]:
        raise ValueError(f"bilinear: inputs with {s1[-1]} and {s2[-1]} features do not match "
                         f"weight of shape {fmt_shape(sw)} (out, in1={sw[1]}, in2={sw[2]})")
    if bias is not None and tuple(bias.shape) != (sw[0],):
        raise ValueError(f"bilinear: bias must have shape ({sw[0]},), got "
                         f"{fmt_shape(bias.shape)}")
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out if bias is None else out + bias


def identity(input) -> Tensor:
    """``input`` itself."""
    return input


# ----------------------------------------------------------------------------- dropout -----
def _check_p(op: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{op}: p must be a number, got {describe(p)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _keep_mask(op, input, p, shape):
    """``1 / (1 - p)`` where kept and 0 where dropped, of ``input``'s (real) dtype, no graph:
    the op table's ``dropout_mask``, one kernel where the backend fuses it."""
    from ...api.random import dropout_mask
    dt = input._dtype.to_real() if input._dtype.kind == "c" else input._dtype
    return dropout_mask(shape, p, dt, input._device)


_dropout_rule = _rule("dropout")


def _fused_dropout(input, p):
    """Dropout over every element: the op table's ``dropout`` (one kernel where the backend
    fuses it), recorded as one node that keeps the mask only."""
    from ...api.random import dropout as _dropout
    y, m = _dropout(input, p)
    if input._ag is not None and _grad_on():
        _record(_dropout_rule, y, (input,), {"mask": m})
    return y


def _apply_mask(input, m, inplace):
    if inplace:
        return input.mul_(m)
    return input * m


def _dropout_common(op, input, p, training, inplace, shape_fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): expected a tensor as input, got {describe(input)}")
    p = _check_p(op, p)
    if not training or p == 0.0:
        return input
    if input._dtype.kind not in "fc":
        raise TypeError(f"{op}: expected a floating-point tensor, got {input._dtype.name}")
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    shape = shape_fn(tuple(input.shape))
    if not inplace and input._dtype.kind == "f" and shape == tuple(input.shape):
        return _fused_dropout(input, p)
    return _apply_mask(input, _keep_mask(op, input, p, shape), inplace)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the others by ``1 / (1 - p)``
    (only when ``training``; otherwise ``input`` is returned)."""
    return _dropout_common("dropout", input, p, training, inplace, lambda s: s)


def _channels(op, lo, hi):
    def shape_fn(s):
        if len(s) not in (lo, hi):
            raise ValueError(f"{op}: expected a {lo}-D (unbatched) or {hi}-D (batched) input, "
                             f"got shape {fmt_shape(s)}")
        # one draw per (batch, channel): the mask broadcasts over the feature dims
        feat = hi - 2
        return s[:len(s) - feat] + (1,) * feat
    return shape_fn


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, L) or (C, L) input with probability ``p``."""
    return _dropout_common("dropout1d", input, p, training, inplace, _channels("dropout1d", 2, 3))


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) or (C, H, W) input with probability ``p``."""
    return _dropout_common("dropout2d", input, p, training, inplace, _channels("dropout2d", 3, 4))


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input with probability ``p``."""
    return _dropout_common("dropout3d", input, p, training, inplace, _channels("dropout3d", 4, 5))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_P = -_SELU_ALPHA * _SELU_SCALE


def _alpha_dropout(op, input, p, training, inplace, shape_fn):
    from ...api.random import rand
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): expected a tensor as input, got {describe(input)}")
    p = _check_p(op, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    # keeps mean and variance of a SELU-normalised input: dropped values become alpha', then
    # an affine map a * x + b restores the moments
    a = (1.0 / ((1.0 - p) * (1.0 + p * _ALPHA_P ** 2))) ** 0.5
    b = -a * _ALPHA_P * p
    with no_grad():
        keep = rand(shape_fn(tuple(input.shape)), dtype=input._dtype,
                    device=input._device) >= p
        scale = keep.to(input._dtype) * a
        shift = _ew.where(keep, b, _ALPHA_P * a + b).to(input._dtype)
    out = input * scale + shift
    return input.copy_(out) if inplace else out


def alpha_dropout(input, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: keeps the input's mean and variance."""
    return _alpha_dropout("alpha_dropout", input, p, training, inplace, lambda s: s)


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels (dim 1)."""
    def shape_fn(s):
        if len(s) < 2:
            raise ValueError(f"feature_alpha_dropout: expected at least a 2-D input (N, C, "
                             f"...), got shape {fmt_shape(s)}")
        return s[:2] + (1,) * (len(s) - 2)
    return _alpha_dropout("feature_alpha_dropout", input, p, training, inplace, shape_fn)


# --------------------------------------------------------------------------- embedding -----
def _padding_index(padding_idx, num: int, op: str = "embedding"):
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
        raise TypeError(f"{op}: padding_idx must be an int or None, got {describe(padding_idx)}")
    if not -num <= padding_idx < num:
        raise ValueError(f"{op}: padding_idx must be within num_embeddings ({num}), i.e. in "
                         f"[{-num}, {num - 1}], got {padding_idx}")
    return padding_idx + num if padding_idx < 0 else padding_idx


def _out_of_range(flat, num: int) -> IndexError:
    from ...api.reduction import amax, amin
    lo, hi = int(amin(flat).item()), int(amax(flat).item())
    bad = lo if lo < 0 else hi
    return IndexError(f"embedding: index {bad} is out of range for an embedding table of "
                      f"{num} rows (num_embeddings={num}); indices must be in [0, {num - 1}]")


def _renorm_rows(weight, flat, max_norm, norm_type):
    """Rescale, in place, the rows of ``weight`` that ``flat`` looks up and whose
    ``norm_type``-norm exceeds ``max_norm`` (``torch.embedding_renorm_``)."""
    from ...api.indexing import index_select, unique
    from ...api.linalg import vector_norm
    with no_grad():
        rows = unique(flat)
        sel = index_select(weight, 0, rows)
        norms = vector_norm(sel, norm_type, dim=1, keepdim=True)
        scale = _ew.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).to(weight._dtype)
        weight[rows] = sel * scale


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) at the integer indices ``input``:
    the result has shape ``input.shape + (embedding_dim,)``.

    ``padding_idx``: that row gets no gradient.  ``max_norm``: looked-up rows whose
    ``norm_type``-norm exceeds it are rescaled in place first (as PyTorch).
    ``scale_grad_by_freq``: gradients are divided by how often each index occurs in ``input``.
    """
    from ...api.indexing import index_select
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        bad = input if not isinstance(input, Tensor) else weight
        raise TypeError(f"embedding: input and weight must be tensors, got {describe(bad)}")
    if input._dtype.kind not in "iu":
        raise TypeError(f"embedding: expected indices of an integer dtype (int64 or int32), "
                        f"got {input._dtype.name} tensor of shape {fmt_shape(input.shape)}; "
                        f"cast first, e.g. idx.to(polyten.int64)")
    ws = tuple(weight.shape)
    if len(ws) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {fmt_shape(ws)}")
    if input._device is not weight._device:
        raise device_mismatch("embedding", (input, weight))
    if sparse:
        raise NotImplementedError("embedding: sparse=True (sparse gradients) is not supported "
                                  "by polyten; use sparse=False (dense gradients)")
    num = ws[0]
    pidx = _padding_index(padding_idx, num)
    shape = tuple(input.shape)
    flat = input.reshape(-1)
    if max_norm is not None:
        if shape and 0 not in shape:
            try:
                _renorm_rows(weight, flat, float(max_norm), float(norm_type))
            except IndexError:
                raise _out_of_range(flat, num) from None
    try:
        out = index_select(weight, 0, flat)
    except IndexError:
        raise _out_of_range(flat, num) from None
    track = out._ag is not None and _grad_on()
    if track and pidx is not None:
        # the padding row's looked-up values flow forward but take no gradient
        keep = (flat != pidx).unsqueeze(-1)
        out = _ew.where(keep, out, out.detach())
    if track and scale_grad_by_freq:
        from ...api.creation import ones, zeros
        from ...api.indexing import index_add
        with no_grad():
            counts = index_add(zeros(num, dtype=weight._dtype, device=weight._device), 0, flat,
                               ones(flat.shape, dtype=weight._dtype, device=weight._device))
            s = (1.0 / index_select(counts, 0, flat)).unsqueeze(-1)
        d = out.detach()
        out = d + (out - d) * s  # the same values; the gradient is divided by the count
    return out.reshape(shape + (ws[1],))


def _bag_of_each_index(starts, n):
    """The bag of each of the ``n`` indices of a 1-D embedding_bag input (int64, (n,)): the
    last bag starting at or before it (indices before the first start go to bag 0)."""
    from ...api.creation import arange
    from ...api.indexing import searchsorted
    return (searchsorted(starts, arange(n, device=starts.device), right=True) - 1).clamp(min=0)


def _bag_max_1d(emb, keep, bag, starts, n):
    """embedding_bag's 'max' over the bags of a 1-D input: the op table's
    ``segment_argmax`` picks each bag's row per column in one pass (no host read: the cuda
    backend runs it as one kernel, the cpu backend with ``ufunc.reduceat``; other backends
    get its default of two stable sorts), and a gather takes the values, so the backward sends
    the gradient to the chosen entry, as PyTorch's."""
    from ...api.creation import arange, zeros
    from ...api.shape import cat
    n_bag, dim = starts.shape[0], emb.shape[-1]
    w = emb._dtype
    if n == 0:  # every bag empty: zeros, still connected to the graph as PyTorch's
        return zeros((n_bag, dim), dtype=w, device=emb.device).index_add(0, bag, emb)
    vals = emb if keep is None else _ew.where(keep.unsqueeze(-1), emb, float("-inf"))
    with no_grad():
        begin = cat([zeros((1,), dtype=_dt.int64, device=bag.device), starts[1:]])
        end = cat([starts[1:], arange(n, n + 1, device=bag.device)])
        full = end > begin
        if keep is not None:  # a bag of padding entries only is empty too
            kept = zeros((n_bag,), dtype=w, device=emb.device).index_add(0, bag, keep.to(w))
            full = full & (kept > 0)
        b = vals._device.backend
        rows = wrap(_segment_argmax_k[b](vals._data, starts.contiguous()._data), vals._device,
                    _dt.int64)
    return _ew.where(full.unsqueeze(-1), vals.gather(0, rows), 0.0)


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights=None, include_last_offset: bool = False,
                  padding_idx=None) -> Tensor:
    """Sums, means or maxima of bags of embeddings, without building the per-index
    embeddings' tensor of bags first (``torch.nn.functional.embedding_bag``).

    ``input`` is (B, L) -- B bags of L indices -- or 1-D with ``offsets`` (B,) the start of
    each bag (``include_last_offset``: B + 1 entries, the last one the end).  Entries equal to
    ``padding_idx`` are left out (and out of a mean's count); an empty bag gives zeros.
    ``per_sample_weights`` (``input``'s shape) scale each entry, with ``mode='sum'`` only.
    On backends whose host reads wait for the device (GPUs), no mode reads one.
    """
    from ...api.creation import zeros
    op = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be tensors")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"{op}: per_sample_weights are only supported with "
                                  f"mode='sum', got mode={mode!r}")
    pidx = _padding_index(padding_idx, weight.shape[0], op) if weight.ndim == 2 else None
    emb = embedding(input, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    w = emb._dtype
    keep = None if pidx is None else (input != pidx)
    if per_sample_weights is not None:
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"{op}: per_sample_weights must have the input's shape "
                             f"{fmt_shape(input.shape)}, got "
                             f"{fmt_shape(per_sample_weights.shape)}")
        emb = emb * per_sample_weights.to(w).unsqueeze(-1)
    if keep is not None:
        emb = emb * keep.to(w).unsqueeze(-1)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None with a 2-D input (each row is a "
                             f"bag), got a tensor")
        n_bag, length = input.shape
        count = keep.to(w).sum(1) if keep is not None else None
        if mode == "sum":
            return emb.sum(1)
        if mode == "mean":
            if count is None:
                return emb.mean(1) if length else zeros((n_bag, weight.shape[1]), dtype=w,
                                                        device=weight.device)
            return emb.sum(1) / count.clamp(min=1).unsqueeze(-1)
        if length == 0:
            return zeros((n_bag, weight.shape[1]), dtype=w, device=weight.device)
        vals = emb if keep is None else _ew.where(keep.unsqueeze(-1), emb, float("-inf"))
        best = vals.amax(1)
        return _ew.where(_ew.isinf(best) & (best < 0), 0.0, best) if keep is not None \
            else best
    if input.ndim != 1 or offsets is None or not isinstance(offsets, Tensor) or \
            offsets.ndim != 1:
        raise ValueError(f"{op}: a 1-D input needs 1-D offsets (the start of each bag); got "
                         f"input of shape {fmt_shape(input.shape)} and offsets "
                         f"{'None' if offsets is None else fmt_shape(offsets.shape)}")
    n = input.shape[0]
    offs = offsets.to(_dt.int64)
    # as PyTorch: bag b holds the indices from starts[b] to the next start, the last bag up to
    # the end of input (include_last_offset's final entry is not an end of its own)
    starts = offs[:-1] if include_last_offset else offs
    n_bag = starts.shape[0]
    dim = weight.shape[1]
    if n_bag == 0:
        return zeros((0, dim), dtype=w, device=weight.device)
    bag = _bag_of_each_index(starts, n)
    if mode in ("sum", "mean"):
        total = zeros((n_bag, dim), dtype=w, device=weight.device).index_add(0, bag, emb)
        if mode == "sum":
            return total
        ones = keep.to(w) if keep is not None else emb.new_ones((n,))
        count = zeros((n_bag,), dtype=w, device=weight.device).index_add(0, bag, ones)
        return total / count.clamp(min=1).unsqueeze(-1)
    return _bag_max_1d(emb, keep, bag, starts, n)
