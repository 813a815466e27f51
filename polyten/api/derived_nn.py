"""The ``torch`` namespace's aliases of ``torch.nn.functional`` ops (``torch.conv2d``,
``torch.layer_norm``, ``torch.kl_div``, ...), with the top-level signatures, which differ
from the functional ones in places: ``dropout(input, p, train)``, ``embedding(weight,
indices, ...)``, ``batch_norm(input, weight, bias, running_mean, running_var, ...)``, and the
losses take ``reduction`` as torch's enum (0 'none', 1 'mean', 2 'sum'; polyten also takes
the strings).  Each calls :mod:`polyten.nn.functional`, so it is the same code.

Imported by ``polyten/__init__.py`` after ``polyten.nn`` (not by ``polyten.api``, which
``nn`` itself imports).
"""

from __future__ import annotations

import warnings

from ..nn import functional as F
from ._core import describe

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "pixel_shuffle", "pixel_unshuffle", "prelu", "hardshrink",
           "bilinear", "cosine_similarity", "pairwise_distance", "rms_norm", "dropout",
           "embedding", "layer_norm", "group_norm", "batch_norm", "instance_norm", "selu",
           "celu", "rrelu", "threshold", "cosine_embedding_loss", "margin_ranking_loss",
           "hinge_embedding_loss", "triplet_margin_loss", "kl_div", "poisson_nll_loss",
           "binary_cross_entropy_with_logits", "ctc_loss", "relu_", "selu_", "celu_", "rrelu_",
           "threshold_", "dropout_", "alpha_dropout", "alpha_dropout_", "feature_dropout",
           "feature_dropout_", "feature_alpha_dropout", "feature_alpha_dropout_",
           "adaptive_avg_pool1d", "adaptive_max_pool1d", "avg_pool1d", "max_pool1d",
           "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "constant_pad_nd",
           "embedding_bag", "channel_shuffle", "native_channel_shuffle"]

# the same signature at the top level as in nn.functional: the functional itself
conv1d, conv2d, conv3d = F.conv1d, F.conv2d, F.conv3d
conv_transpose1d, conv_transpose2d = F.conv_transpose1d, F.conv_transpose2d
conv_transpose3d = F.conv_transpose3d
pixel_shuffle, pixel_unshuffle = F.pixel_shuffle, F.pixel_unshuffle
prelu, hardshrink, bilinear = F.prelu, F.hardshrink, F.bilinear
cosine_similarity, pairwise_distance, rms_norm = (F.cosine_similarity, F.pairwise_distance,
                                                  F.rms_norm)
adaptive_avg_pool1d, avg_pool1d = F.adaptive_avg_pool1d, F.avg_pool1d
channel_shuffle, native_channel_shuffle = F.channel_shuffle, F.native_channel_shuffle

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(op: str, reduction) -> str:
    """torch's top-level losses take ``reduction`` as an enum int; the strings are kept too."""
    if isinstance(reduction, str) and reduction in ("none", "mean", "sum"):
        return reduction
    if isinstance(reduction, int) and not isinstance(reduction, bool) and \
            reduction in _REDUCTIONS:
        return _REDUCTIONS[reduction]
    got = repr(reduction) if isinstance(reduction, (int, str)) else describe(reduction)
    raise ValueError(f"{op}: reduction must be 0 ('none'), 1 ('mean') or 2 ('sum'), got {got}")


def dropout(input, p, train):
    """``torch.dropout(input, p, train)``: :func:`polyten.nn.functional.dropout`."""
    return F.dropout(input, p, train)


def dropout_(input, p, train):
    """``torch.dropout_``: :func:`dropout` in place."""
    return F.dropout(input, p, train, inplace=True)


def alpha_dropout(input, p, train):
    """``torch.alpha_dropout(input, p, train)``: :func:`polyten.nn.functional.alpha_dropout`."""
    return F.alpha_dropout(input, p, train)


def alpha_dropout_(input, p, train):
    """``torch.alpha_dropout_``: :func:`alpha_dropout` in place."""
    return F.alpha_dropout(input, p, train, inplace=True)


def _channel_dropout(op, input, p, train, inplace):
    # torch.feature_dropout: whole channels (dim 1) of an (N, C, *) input, any number of
    # trailing dims -- F.dropout2d's mask, shaped (N, C, 1, ..., 1)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dims (N, C, *), got shape "
                         f"{tuple(input.shape)}")
    shape = tuple(input.shape)
    flat = input.reshape(shape[:2] + (1, -1)) if input.ndim != 4 else input
    out = F.dropout2d(flat, p, train, inplace=inplace)
    return input if inplace else out.reshape(shape)


def feature_dropout(input, p, train):
    """``torch.feature_dropout``: each channel (dim 1) of ``(N, C, *)`` zeroed with
    probability ``p`` as a whole, the rest scaled by ``1 / (1 - p)``."""
    return _channel_dropout("feature_dropout", input, p, train, False)


def feature_dropout_(input, p, train):
    """``torch.feature_dropout_``: :func:`feature_dropout` in place."""
    return _channel_dropout("feature_dropout_", input, p, train, True)


def feature_alpha_dropout(input, p, train):
    """``torch.feature_alpha_dropout(input, p, train)``."""
    return F.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input, p, train):
    """``torch.feature_alpha_dropout_``: :func:`feature_alpha_dropout` in place."""
    return F.feature_alpha_dropout(input, p, train, inplace=True)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """``torch.embedding(weight, indices, ...)`` (weight first; ``padding_idx=-1`` means
    none): :func:`polyten.nn.functional.embedding`."""
    return F.embedding(indices, weight, None if padding_idx < 0 else padding_idx,
                       scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    """``torch.layer_norm`` (``cudnn_enable`` is accepted and ignored)."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    """``torch.group_norm`` (``cudnn_enabled`` is accepted and ignored)."""
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
               cudnn_enabled):
    """``torch.batch_norm``: every argument positional, weight and bias before the running
    statistics (``cudnn_enabled`` is ignored)."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum,
                  eps, cudnn_enabled):
    """``torch.instance_norm``: every argument positional (``cudnn_enabled`` is ignored)."""
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                           momentum, eps)


def selu(input):
    """``torch.selu``: :func:`polyten.nn.functional.selu`."""
    return F.selu(input)


def celu(input, alpha=1.0):
    """``torch.celu``: :func:`polyten.nn.functional.celu`."""
    return F.celu(input, alpha)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """``torch.rrelu``: :func:`polyten.nn.functional.rrelu` (the slopes come from the global
    generator; a ``generator`` argument is refused rather than ignored)."""
    if generator is not None:
        raise TypeError("rrelu: a generator is not supported; seed the global one with "
                        "polyten.manual_seed() instead")
    return F.rrelu(input, lower, upper, training)


def threshold(input, threshold, value):
    """``torch.threshold``: ``value`` where ``input <= threshold``, else ``input``."""
    return F.threshold(input, threshold, value)


relu_, selu_, celu_, rrelu_, threshold_ = F.relu_, F.selu_, F.celu_, F.rrelu_, F.threshold_


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    """``torch.cosine_embedding_loss`` (``reduction``: 0, 1, 2 or the string)."""
    return F.cosine_embedding_loss(input1, input2, target, margin,
                                   reduction=_reduction("cosine_embedding_loss", reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    """``torch.margin_ranking_loss`` (``reduction``: 0, 1, 2 or the string)."""
    return F.margin_ranking_loss(input1, input2, target, margin,
                                 reduction=_reduction("margin_ranking_loss", reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    """``torch.hinge_embedding_loss`` (``reduction``: 0, 1, 2 or the string)."""
    return F.hinge_embedding_loss(input, target, margin,
                                  reduction=_reduction("hinge_embedding_loss", reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False,
                        reduction=1):
    """``torch.triplet_margin_loss`` (``reduction``: 0, 1, 2 or the string)."""
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 reduction=_reduction("triplet_margin_loss", reduction))


def kl_div(input, target, reduction=1, *, log_target=False):
    """``torch.kl_div``: the pointwise KL divergence, ``reduction`` 1 ('mean', the mean over
    all elements) by default, as torch's top-level function."""
    with warnings.catch_warnings():  # F.kl_div's 'mean' warning is nn.functional's, not torch's
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
        return F.kl_div(input, target, reduction=_reduction("kl_div", reduction),
                        log_target=log_target)


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    """``torch.poisson_nll_loss``: every argument required, as torch's."""
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps,
                              reduction=_reduction("poisson_nll_loss", reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    """``torch.binary_cross_entropy_with_logits`` (``pos_weight`` before ``reduction``)."""
    return F.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction("binary_cross_entropy_with_logits",
                                                    reduction), pos_weight=pos_weight)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
             zero_infinity=False):
    """``torch.ctc_loss`` (``reduction``: 0, 1, 2 or the string)."""
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                      _reduction("ctc_loss", reduction), zero_infinity)


def adaptive_max_pool1d(input, output_size):
    """``torch.adaptive_max_pool1d``: always ``(values, indices)``, unlike the functional's
    default."""
    return F.adaptive_max_pool1d(input, output_size, True)


def _stride(stride):
    # the top-level functions' default stride is an empty list: the kernel size
    return None if stride is None or (isinstance(stride, (list, tuple)) and not stride) \
        else stride


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``torch.max_pool1d``: the values only (``stride=()``: the kernel size)."""
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1,
                            ceil_mode=False):
    """``torch.max_pool1d_with_indices``: ``(values, indices)``."""
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode, True)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``torch.max_pool2d``: the values only (``stride=()``: the kernel size)."""
    return F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``torch.max_pool3d``: the values only (``stride=()``: the kernel size)."""
    return F.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def constant_pad_nd(input, pad, value=0):
    """``torch.constant_pad_nd``: :func:`polyten.nn.functional.pad` in ``'constant'`` mode
    (``pad`` lists (before, after) amounts from the last dim backwards; negative ones
    crop)."""
    if isinstance(pad, (list, tuple)) and len(pad) % 2:
        raise ValueError(f"constant_pad_nd: the length of pad must be even (a (before, after) "
                         f"pair per dim), got {len(pad)} entries: {tuple(pad)}")
    return F.pad(input, tuple(pad), "constant", value)


_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}


def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """``torch.embedding_bag`` (weight first, ``mode`` 0 'sum', 1 'mean', 2 'max' or the
    string): ``(output, offset2bag, bag_size, max_indices)``.

    ``output`` is :func:`polyten.nn.functional.embedding_bag`'s, the public result.  The
    other three are PyTorch's bookkeeping outputs, given here in one well-defined form for
    every mode: ``offset2bag`` the bag of each index (int64, ``indices``' length),
    ``bag_size`` the number of non-padding indices in each bag, and ``max_indices`` the
    weight row each maximum came from (``(B, D)``, 0 for an empty bag) with ``mode='max'``,
    else ``bag_size``.  PyTorch's own 'sum' path returns an empty ``offset2bag`` and zeros
    for the last two -- values nothing public depends on.  A 2-D ``indices`` with ``offsets``
    None (one bag per row) is accepted as by the functional.
    """
    import polyten as pt
    if isinstance(mode, str):
        name = mode
    elif isinstance(mode, int) and not isinstance(mode, bool) and mode in _BAG_MODES:
        name = _BAG_MODES[mode]
    else:
        raise ValueError(f"embedding_bag: mode must be 0 ('sum'), 1 ('mean') or 2 ('max'), "
                         f"got {mode!r}")
    output = F.embedding_bag(indices, weight, offsets, scale_grad_by_freq=scale_grad_by_freq,
                             mode=name, sparse=sparse, per_sample_weights=per_sample_weights,
                             include_last_offset=include_last_offset, padding_idx=padding_idx)
    idx = indices.to(pt.int64)
    dev = weight.device
    if idx.ndim == 2:
        n_bag, length = idx.shape
        bag = pt.arange(n_bag, device=dev).repeat_interleave(length)
        idx = idx.reshape(-1)
    else:
        from ..nn.functional._misc import _bag_of_each_index
        starts = offsets.to(pt.int64)
        starts = starts[:-1] if include_last_offset else starts
        n_bag = starts.shape[0]
        bag = _bag_of_each_index(starts, idx.shape[0])
    n = idx.shape[0]
    keep = pt.ones(n, dtype=pt.int64, device=dev)
    if padding_idx is not None:
        pad = padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx
        keep = (idx != pad).to(pt.int64)
    bag_size = pt.zeros(n_bag, dtype=pt.int64, device=dev).index_add(0, bag, keep)
    if name != "max":
        return output, bag, bag_size, bag_size.clone()
    # the first index of each bag whose row equals the bag's maximum, per column
    rows = weight.detach().index_select(0, idx)
    best = output.detach().index_select(0, bag)
    hit = (rows == best) & (keep == 1).unsqueeze(1)
    pos = pt.where(hit, pt.arange(n, device=dev).unsqueeze(1), n)
    first = pt.full((n_bag, weight.shape[1]), n, dtype=pt.int64, device=dev).scatter_reduce(
        0, bag.unsqueeze(1).expand(n, weight.shape[1]), pos, "amin")
    if n == 0:
        return output, bag, bag_size, pt.zeros_like(first)
    src = idx.index_select(0, first.clamp(max=n - 1).reshape(-1)).reshape(first.shape)
    return output, bag, bag_size, pt.where(first < n, src, 0)


TENSOR_METHODS = {"prelu": prelu, "hardshrink": hardshrink}
