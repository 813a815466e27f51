"""Losses on embeddings and margins: ``triplet_margin_loss`` (and its ``with_distance``
form), ``cosine_embedding_loss``, ``multi_margin_loss``, ``multilabel_margin_loss`` and
``multilabel_soft_margin_loss`` -- PyTorch's formulas in polyten ops (they differentiate
through those ops and run on every backend)."""

from __future__ import annotations

from ...api import autocast as _amp
from ...api import dtypes as _dt
from ...api.tensor import Tensor
from ...dispatch.checks import check_range as _check_range
from ...dispatch.errors import fmt_shape
from ._loss import _reduce, _reduction, _softplus0

__all__ = ["triplet_margin_loss", "triplet_margin_with_distance_loss", "cosine_embedding_loss",
           "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss"]


def _pt():
    import polyten
    return polyten


def _tensors(op, **named):
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")


def _triplet(op, anchor, positive, negative, distance, margin, swap, reduction):
    _tensors(op, anchor=anchor, positive=positive, negative=negative)
    nd = anchor.ndim
    if not (positive.ndim == nd and negative.ndim == nd) or nd not in (1, 2):
        raise ValueError(f"{op}: anchor, positive and negative must all be 1-D (D) or 2-D "
                         f"(N, D), got shapes {fmt_shape(anchor.shape)}, "
                         f"{fmt_shape(positive.shape)} and {fmt_shape(negative.shape)}")
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    d_ap = distance(anchor, positive)
    d_an = distance(anchor, negative)
    if swap:
        d_an = _pt().minimum(d_an, distance(positive, negative))
    return _reduce(_pt().clamp(margin + d_ap - d_an, min=0.0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` the pairwise ``p``-norm distance
    (``swap``: ``d(a, n)`` is replaced by ``d(p, n)`` when that is smaller)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        anchor, positive, negative = _amp.fp32(anchor, positive, negative)
    op = "triplet_margin_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    from ._sampling import pairwise_distance
    return _triplet(op, anchor, positive, negative,
                    lambda a, b: pairwise_distance(a, b, p, eps), margin, swap, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """:func:`triplet_margin_loss` with any ``distance_function(x1, x2)`` (default: the
    pairwise Euclidean distance)."""
    op = "triplet_margin_with_distance_loss"
    reduction = _reduction(op, reduction)
    from ._sampling import pairwise_distance
    return _triplet(op, anchor, positive, negative, distance_function or pairwise_distance,
                    margin, swap, reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1`` (the cosine along the last dim, PyTorch's 1e-12 guard)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input1, input2, target = _amp.fp32(input1, input2, target)
    op = "cosine_embedding_loss"
    _tensors(op, input1=input1, input2=input2, target=target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ValueError(f"{op}: input1 and input2 must have one shape, (N, D) or (D), got "
                         f"{fmt_shape(input1.shape)} and {fmt_shape(input2.shape)}")
    if tuple(target.shape) != tuple(input1.shape[:-1]):
        raise ValueError(f"{op}: target must have shape {fmt_shape(input1.shape[:-1])}, got "
                         f"{fmt_shape(target.shape)}")
    pt = _pt()
    prod = (input1 * input2).sum(-1)
    m1 = (input1 * input1).sum(-1) + 1e-12
    m2 = (input2 * input2).sum(-1) + 1e-12
    cos = prod / pt.sqrt(m1 * m2)
    zeros = pt.zeros_like(cos)
    loss = pt.where(target == 1, 1 - cos, zeros) + \
        pt.where(target == -1, pt.clamp(cos - margin, min=0.0), zeros)
    return _reduce(loss, reduction)


def _class_targets(op, input, target):
    _tensors(op, input=input, target=target)
    if input.ndim not in (1, 2):
        raise ValueError(f"{op}: input must be (N, C) or (C), got {fmt_shape(input.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got "
                        f"{target.dtype.name}")


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``sum_{i != y} max(0, margin - x[y] + x[i])**p / C`` per sample (``weight[y]``
    scaling each term), for ``p`` 1 or 2."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    op = "multi_margin_loss"
    _class_targets(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got {p}")
    pt = _pt()
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = target.reshape(-1).to(_dt.int64)
    n, c = x.shape
    if y.shape[0] != n:
        raise ValueError(f"{op}: target must have {n} entries (one class per sample), got "
                         f"shape {fmt_shape(target.shape)}")
    if n:
        _check_range(y._device.backend, y._data, 0, c, None,
                     lambda: IndexError(f"{op}: a target class is out of range [0, {c})"))
    xy = pt.gather(x, 1, y.unsqueeze(1).clamp(0, c - 1))
    terms = pt.clamp(margin - xy + x, min=0.0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * weight.to(x.dtype)[y.clamp(0, c - 1)].unsqueeze(1)
    not_y = pt.arange(c, device=x.device)[None, :] != y[:, None]
    loss = pt.where(not_y, terms, pt.zeros_like(terms)).sum(1) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """For the target classes ``j`` (the leading entries of each row of ``target`` before the
    first -1) and every other class ``i``: ``sum max(0, 1 - (x[j] - x[i])) / C``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    op = "multilabel_margin_loss"
    _class_targets(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target must have the input's shape {fmt_shape(input.shape)}, "
                         f"got {fmt_shape(target.shape)}")
    pt = _pt()
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(x.shape).to(_dt.int64)
    n, c = x.shape
    if x.numel():
        _check_range(t._device.backend, t._data, -1, c, None,
                     lambda: IndexError(f"{op}: a target class is out of range [-1, {c})"))
    # the entries before the first -1 of each row are the targets
    valid = pt.cumsum((t < 0).to(_dt.int64), 1) == 0
    tc = pt.where(valid, t, pt.zeros_like(t)).clamp(0, c - 1)
    hit = pt.zeros((n, c), dtype=x.dtype, device=x.device).scatter_add(
        1, tc, valid.to(x.dtype))
    is_target = hit > 0
    xt = pt.gather(x, 1, tc)  # (n, c): x at each target slot
    margins = pt.clamp(1 - xt[:, :, None] + x[:, None, :], min=0.0)
    keep = valid[:, :, None] & ~is_target[:, None, :]
    loss = pt.where(keep, margins, pt.zeros_like(margins)).sum((1, 2)) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """``-mean_c(y log sigmoid(x) + (1 - y) log sigmoid(-x))`` per sample (``weight``
    scaling each class)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    op = "multilabel_soft_margin_loss"
    _tensors(op, input=input, target=target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target must have the input's shape {fmt_shape(input.shape)}, "
                         f"got {fmt_shape(target.shape)}")
    y = target.to(input.dtype)
    loss = y * _softplus0(-input) + (1 - y) * _softplus0(input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.mean(-1), reduction)
