"""Loss functions (``torch.nn.functional`` names, signatures, defaults and semantics).

Every loss takes ``reduction`` = ``'none'`` | ``'mean'`` | ``'sum'`` (``kl_div`` also
``'batchmean'``) and PyTorch's deprecated ``size_average`` / ``reduce`` flags.  Weighted means
follow PyTorch exactly: ``nll_loss`` / ``cross_entropy`` with class indices divide by the sum of
the weights of the (non-ignored) targets; with class probabilities by the number of samples.

Errors name the loss and the shapes (``cross_entropy: expected target of shape (4,) with class
indices, got (4, 3)``); class indices out of range are reported with the offending value.
"""

from __future__ import annotations

import warnings

from ...api import autocast as _amp
from ...api import elementwise as _ew
from ...api import reduction as _red
from ...api._core import Tensor, broadcast_shapes, describe, wrap
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.checks import check as _value_check
from ...dispatch.checks import check_range as _check_range
from ...dispatch.checks import indices_checked as _INDICES_CHECKED
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape
from ._activation import log_softmax

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
           "poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss", "margin_ranking_loss",
           "hinge_embedding_loss"]

_where = _ew.where
_REDUCTIONS = ("none", "mean", "sum")
_nll_k = kernels("nll_loss")
_nll_rule = _rule("nll_loss")
_ce_k = kernels("cross_entropy")
_ce_rule = _rule("cross_entropy")
_amin_k, _amax_k = kernels("amin"), kernels("amax")
_to_host_k = kernels("to_host")


# ----------------------------------------------------------------------------- helpers ---
def _legacy(op: str, size_average, reduce) -> str:
    warnings.warn(f"{op}: size_average and reduce args will be deprecated, please use "
                  f"reduction='...' instead.", UserWarning, stacklevel=4)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduction(op: str, reduction, size_average=None, reduce=None, allowed=_REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        return _legacy(op, size_average, reduce)
    if reduction not in allowed:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; expected "
                         f"one of {', '.join(repr(a) for a in allowed)}")
    return reduction


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return _red.mean(loss)
    if reduction == "sum":
        return _red.sum(loss)
    return loss


def _tensors(op: str, **named) -> None:
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(t)}")


def _two_tensors(op: str, input, target) -> None:
    """``_tensors(op, input=input, target=target)`` without building a dict (every loss)."""
    if not isinstance(input, Tensor):
        _tensors(op, input=input)
    if not isinstance(target, Tensor):
        _tensors(op, target=target)


def _shape(t) -> str:
    return fmt_shape(tuple(t.shape))


def _pair(op: str, input, target) -> None:
    """Input and target of a pointwise loss: tensors whose shapes broadcast (a different
    shape warns, as PyTorch, because it is usually a mistake) and a floating result."""
    _two_tensors(op, input, target)
    si, st = tuple(input._data.shape), tuple(target._data.shape)
    if si != st:
        try:
            b = broadcast_shapes(si, st, op=op)
        except ValueError:
            raise ValueError(f"{op}: input of shape {fmt_shape(si)} and target of shape "
                             f"{fmt_shape(st)} do not broadcast; give them the same shape") \
                from None
        warnings.warn(f"{op}: using a target size {fmt_shape(st)} that is different to the "
                      f"input size {fmt_shape(si)}; they broadcast to {fmt_shape(tuple(b))}, "
                      f"which is likely to give incorrect results. Please ensure they have "
                      f"the same size.", UserWarning, stacklevel=3)
    if input._dtype.kind != "f" and target._dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point input and target, got "
                        f"{input._dtype.name} and {target._dtype.name}; cast first, e.g. "
                        f"x.to(polyten.float32)")
    if input._dtype.kind == "c" or target._dtype.kind == "c":
        raise TypeError(f"{op}: complex tensors are not supported")


def _elementwise_weight(op: str, input, weight) -> None:
    if weight is None:
        return
    _tensors(op, weight=weight)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {_shape(weight)} must have the input's shape "
                         f"{_shape(input)} (one weight per element)")


def _weighted(loss, weight, reduction: str):
    """PyTorch's weighted mse/l1: the mean is divided by the sum of the weights."""
    loss = loss * weight
    if reduction == "mean":
        return _red.sum(loss) / _red.sum(weight)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- regression ---------
def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """Mean squared error ``(input - target) ** 2`` (optionally weighted per element)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    _pair("mse_loss", input, target)
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    _elementwise_weight("mse_loss", input, weight)
    loss = _ew.square(input - target)
    if weight is not None:
        return _weighted(loss, weight, reduction)
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """Mean absolute error ``|input - target|`` (optionally weighted per element)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    _pair("l1_loss", input, target)
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    _elementwise_weight("l1_loss", input, weight)
    loss = _ew.abs(input - target)
    if weight is not None:
        return _weighted(loss, weight, reduction)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input -
    target``); ``beta=0`` is the L1 loss."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    _pair("smooth_l1_loss", input, target)
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = input - target
    ad = _ew.abs(d)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = _where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    _pair("huber_loss", input, target)
    reduction = _reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    _elementwise_weight("huber_loss", input, weight)
    d = input - target
    ad = _ew.abs(d)
    loss = _where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight  # PyTorch: a plain mean of the weighted losses
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- classification -----------
def _class_target_shape(input) -> tuple:
    s = tuple(input._data.shape)
    return () if len(s) == 1 else (s[0],) + s[2:]


def _class_weight(op: str, weight, C: int, input):
    if weight is None:
        return None
    _tensors(op, weight=weight)
    if tuple(weight.shape) != (C,):
        raise ValueError(f"{op}: weight must be a 1-D tensor of {C} class weights (one per "
                         f"class of input {_shape(input)}), got shape {_shape(weight)}")
    if weight._device is not input._device:
        from ...api._core import device_mismatch
        raise device_mismatch(op, (input, weight))
    return weight


def _indices_error(op: str, target, C: int, ignore_index: int) -> IndexError:
    valid = target != ignore_index
    lo = int(_red.amin(_where(valid, target, 0)).item())
    hi = int(_red.amax(_where(valid, target, 0)).item())
    bad = lo if lo < 0 else hi
    return IndexError(f"{op}: target {bad} is out of bounds: class indices must be in "
                      f"[0, {C - 1}] for input with {C} classes (or equal ignore_index="
                      f"{ignore_index})")


def _host_int(b, native) -> int:
    return int(_to_host_k[b](native).reshape(()).item())


def _check_targets(op: str, target, C: int, ignore_index: int) -> None:
    """Every target is a class index in [0, C) or ignore_index: one or two reductions read on
    the host, or -- on a backend that defers value checks (a GPU) -- a flag computed on the
    device and checked at the next host read (``polyten.dispatch.checks``)."""
    d = target._data
    if 0 in d.shape:
        return
    b = target._device.backend
    deferred = b.deferred_checks
    if not deferred and _host_int(b, _amin_k[b](d, None, False)) >= 0 and \
            _host_int(b, _amax_k[b](d, None, False)) < C:
        return
    _check_range(b, d, 0, C, ignore_index, lambda: _indices_error(op, target, C, ignore_index))


def _nll_default(x, target, weight, ignore_index, reduction):
    """Default of the ``nll_loss`` composite: polyten ops on plain (unrecorded) tensors."""
    from ...api.indexing import gather
    cdim = 1 if x.ndim >= 2 else 0
    valid = target != ignore_index
    t = _where(valid, target, 0)
    with _INDICES_CHECKED:  # the caller checked the targets (_nll_args)
        picked = gather(x, cdim, t.unsqueeze(cdim)).squeeze(cdim)
        w = valid.to(x._dtype) if weight is None else weight[t] * valid
    loss = -picked * w
    if reduction == "none":
        return loss
    total = _red.sum(loss)
    if reduction == "sum":
        return total
    return total / _red.sum(w)  # nan when every target is ignored


register_default("nll_loss", _nll_default)


def _nll_args(op, x, target, weight, ignore_index):
    """Targets bounds-checked and int64, the weight in ``x``'s dtype, and the class dim."""
    cdim = 1 if x.ndim >= 2 else 0
    _check_targets(op, target, x.shape[cdim], ignore_index)
    if target._dtype.name != "int64":
        target = target.to("int64")
    if weight is not None and weight._dtype is not x._dtype:
        weight = weight.to(x._dtype)
    return target, weight, cdim


def _nll_params(x, target, weight, ignore_index, reduction, cdim):
    # natives: the rule and a backend's fused backward kernel both read them
    return {"target": target._data, "weight": None if weight is None else weight._data,
            "ignore_index": ignore_index, "reduction": reduction, "cdim": cdim,
            "shape": tuple(x._data.shape)}


def _nll_plain(logp, target, weight, ignore_index, reduction):
    """The ``nll_loss`` kernel (or its default) on checked arguments, nothing recorded."""
    dev, dt = logp._device, logp._dtype
    k = _nll_k[dev.backend]
    if k is None:
        return _nll_default(wrap(logp._data, dev, dt), target,
                            None if weight is None else wrap(weight._data, dev, dt),
                            ignore_index, reduction)
    return wrap(k(logp._data, target._data, None if weight is None else weight._data,
                  ignore_index, reduction), dev, dt)


def _nll(op, logp, target, weight, ignore_index, reduction):
    """``nll_loss`` on log-probabilities ``logp`` (N, C, ...) / (C,): the op-table composite
    (fused on cpu), recorded as one node."""
    target, weight, cdim = _nll_args(op, logp, target, weight, ignore_index)
    out = _nll_plain(logp, target, weight, ignore_index, reduction)
    if logp._ag is not None and _grad_on():
        _record(_nll_rule, out, (logp,),
                _nll_params(logp, target, weight, ignore_index, reduction, cdim))
    return out


def _ce_default(x, target, weight, ignore_index, reduction):
    """Default of the ``cross_entropy`` composite: log_softmax, then nll_loss (polyten ops
    on plain, unrecorded tensors)."""
    logp = log_softmax(x, 1 if x.ndim >= 2 else 0)
    return _nll_plain(logp, target, weight, ignore_index, reduction), logp


register_default("cross_entropy", _ce_default)


def _cross_entropy(op, x, target, weight, ignore_index, reduction):
    """Cross entropy of logits ``x`` with class-index targets: the op-table composite (one
    kernel and one node; its backward is ``softmax - one_hot``, fused on cpu)."""
    target, weight, cdim = _nll_args(op, x, target, weight, ignore_index)
    dev, dt = x._device, x._dtype
    k = _ce_k[dev.backend]
    if k is None or 0 in x._data.shape:  # the default handles empty inputs
        loss, logp = _ce_default(wrap(x._data, dev, dt), target, weight, ignore_index,
                                 reduction)
    else:
        loss, logp = k(x._data, target._data, None if weight is None else weight._data,
                       ignore_index, reduction)
        loss, logp = wrap(loss, dev, dt), wrap(logp, dev, dt)
    if x._ag is not None and _grad_on():
        # the log-probabilities are the node's second output, kept for the backward and
        # never returned
        _record(_ce_rule, (loss, logp), (x,),
                _nll_params(x, target, weight, ignore_index, reduction, cdim))
    return loss


def _smoothed_nll(op, logp, target, weight, ignore_index, reduction, smoothing):
    """cross_entropy with label smoothing, in polyten ops: PyTorch's
    ``(1 - e) * nll + e / C * sum_c(-w_c logp_c)``, sharing nll's weighted mean."""
    from ...api.indexing import gather
    ndim = logp.ndim
    cdim = 1 if ndim >= 2 else 0
    C = logp.shape[cdim]
    _check_targets(op, target, C, ignore_index)
    valid = target != ignore_index
    t = _where(valid, target, 0)
    if t._dtype.name != "int64":
        t = t.to("int64")
    with _INDICES_CHECKED:  # the targets were just checked: t is in [0, C)
        picked = gather(logp, cdim, t.unsqueeze(cdim)).squeeze(cdim)
        vmask = valid.to(logp._dtype)
        w = vmask if weight is None else weight[t] * vmask  # each target's weight, 0 if ignored
    if weight is not None:
        shape = [1] * ndim
        shape[cdim] = C
        smooth = -_red.sum(logp * weight.reshape(tuple(shape)), cdim)
    else:
        smooth = -_red.sum(logp, cdim)
    loss = -picked * w * (1.0 - smoothing) + smooth * vmask * (smoothing / C)
    if reduction == "none":
        return loss
    total = _red.sum(loss)
    if reduction == "sum":
        return total
    denom = _red.sum(w)
    # every target ignored: the mean is nan (0 / 0) but the gradient is 0, as PyTorch's
    none = denom == 0
    return _where(none, float("nan"), total / _where(none, 1.0, denom))


def _class_input(op: str, input):
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension: (C,), (N, C) or (N, C, d1, "
                         f"...), got a 0-d tensor")
    if input._dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input._dtype.name}; cast "
                        f"first, e.g. x.to(polyten.float32)")


def _index_target(op: str, input, target) -> None:
    expected = _class_target_shape(input)
    if target._dtype.kind not in "iu":
        raise TypeError(f"{op}: expected a target of class indices (an integer dtype such as "
                        f"int64) of shape {fmt_shape(expected)}, got a {target._dtype.name} "
                        f"tensor of shape {_shape(target)}")
    if tuple(target._data.shape) != expected:
        hint = ""
        if tuple(target.shape) == tuple(input.shape) and op == "cross_entropy":
            hint = (f"; a target of the input's shape {_shape(input)} must hold floating class "
                    f"probabilities")
        raise ValueError(f"{op}: expected target of shape {fmt_shape(expected)} with class "
                         f"indices, got {_shape(target)} (input has shape {_shape(input)}){hint}")
    if target._device is not input._device:
        from ...api._core import device_mismatch
        raise device_mismatch(op, (input, target))


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: ``-input[n, target[n]]`` (times the class weight), for
    log-probabilities ``input`` (N, C), (C,) or (N, C, d1, ...) and class indices ``target``
    (N,), () or (N, d1, ...).  Targets equal to ``ignore_index`` contribute nothing; the mean
    divides by the sum of the weights of the other targets."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    op = "nll_loss"
    _two_tensors(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    _class_input(op, input)
    _index_target(op, input, target)
    C = input.shape[1 if input.ndim >= 2 else 0]
    weight = _class_weight(op, weight, C, input)
    return _nll(op, input, target, weight, ignore_index, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of unnormalised logits ``input`` (N, C), (C,) or (N, C, d1, ...) with
    ``target`` either class indices (N,), () or (N, d1, ...) or class probabilities of the
    input's shape (a floating tensor).

    ``weight``: one weight per class; ``ignore_index``: class-index targets to skip;
    ``label_smoothing``: mix the target with the uniform distribution (PyTorch's formula).
    """
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    op = "cross_entropy"
    _two_tensors(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    _class_input(op, input)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
            not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number in [0, 1], got "
                         f"{label_smoothing!r}")
    cdim = 1 if input.ndim >= 2 else 0
    C = input.shape[cdim]
    weight = _class_weight(op, weight, C, input)
    if target._dtype.kind in "fc":
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"{op}: a floating target holds class probabilities and must have "
                             f"the input's shape {_shape(input)}, got {_shape(target)}; for "
                             f"class indices of shape {fmt_shape(_class_target_shape(input))} "
                             f"use an integer target")
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported for floating point target "
                             f"(class probabilities)")
        return _prob_cross_entropy(input, target, weight, reduction, label_smoothing, cdim, C)
    _index_target(op, input, target)
    if label_smoothing:
        return _smoothed_nll(op, log_softmax(input, cdim), target, weight, ignore_index,
                             reduction, float(label_smoothing))
    return _cross_entropy(op, input, target, weight, ignore_index, reduction)


def _prob_cross_entropy(input, target, weight, reduction, smoothing, cdim, C):
    logp = log_softmax(input, cdim)
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / C
    prod = logp * target
    if weight is not None:
        shape = [1] * input.ndim
        shape[cdim] = C
        prod = prod * weight.reshape(tuple(shape))
    if reduction == "none":
        return -_red.sum(prod, cdim)
    total = -_red.sum(prod)
    if reduction == "sum":
        return total
    n = input.numel() // C if C else 0
    return total / n if n else total * float("nan")


_bce_rule = _rule("binary_cross_entropy")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``-(t log(x) + (1 - t) log(1 - x))`` for probabilities ``input`` in [0, 1] (the logs
    are clamped at -100, as PyTorch).  ``weight`` broadcasts to the input's shape."""
    op = "binary_cross_entropy"
    _two_tensors(op, input, target)
    if _amp.ACTIVE[0]:
        _amp.unsafe(op, "use binary_cross_entropy_with_logits (or nn.BCEWithLogitsLoss) on "
                    "the logits, which combines the sigmoid and the loss safely", input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target of shape {_shape(target)} must have the input's shape "
                         f"{_shape(input)}")
    if input._dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input of probabilities, got "
                        f"{input._dtype.name}")
    if target._dtype is not input._dtype:
        target = target.to(input._dtype)
    if input._device is not target._device:
        from ...api._core import device_mismatch
        raise device_mismatch(op, (input, target))
    dev, dt = input._device, input._dtype
    x = wrap(input._data, dev, dt)  # plain aliases: the loss records one node of its own
    t = wrap(target._data, dev, dt)
    # a value check: at once on the cpu, at the next host read on a GPU (as PyTorch's
    # device-side assert), so that the step does not wait for the device
    _value_check(dev.backend, _ew.logical_not(_red.all((x >= 0) & (x <= 1)))._data,
                 lambda: ValueError(f"{op}: all elements of input should be between 0 and 1 "
                                    f"(input of shape {_shape(input)} has values outside "
                                    f"[0, 1] or NaN); apply sigmoid first, or use "
                                    f"binary_cross_entropy_with_logits"))
    lx = _ew.clamp(_ew.log(x), -100.0)
    l1x = _ew.clamp(_ew.log1p(-x), -100.0)
    loss = (t - 1.0) * l1x - t * lx
    if (input._ag is not None or target._ag is not None) and _grad_on():
        _record(_bce_rule, loss, (input, target))
    if weight is not None:
        _tensors(op, weight=weight)
        loss = loss * weight
        if tuple(loss.shape) != tuple(input.shape):
            raise ValueError(f"{op}: weight of shape {_shape(weight)} must broadcast to the "
                             f"input's shape {_shape(input)}")
    return _reduce(loss, reduction)


def _softplus0(x):
    """``log(1 + exp(x))`` without overflow; its gradient at 0 is exactly 1/2 (``maximum``
    splits ties evenly)."""
    return _ew.maximum(x, 0.0) + _ew.log1p(_ew.exp(-_ew.abs(x)))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from the logits.

    ``pos_weight`` weighs the positive term (broadcast along the last dim, one per class);
    ``weight`` broadcasts to the input's shape.
    """
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, weight = _amp.fp32(input, target, weight)
    op = "binary_cross_entropy_with_logits"
    _two_tensors(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {_shape(target)} must be the same as input size "
                         f"{_shape(input)}")
    if input._dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point logits, got {input._dtype.name}")
    if target._dtype.kind != "f":
        target = target.to(input._dtype)
    # loss = (1 - t) x + lw * softplus(-x), lw = 1 + (pos_weight - 1) t
    sp = _softplus0(-input)
    if pos_weight is not None:
        _tensors(op, pos_weight=pos_weight)
        try:
            broadcast_shapes(tuple(pos_weight.shape), tuple(input.shape), op=op)
        except ValueError:
            raise ValueError(f"{op}: pos_weight of shape {_shape(pos_weight)} must broadcast "
                             f"to the input's shape {_shape(input)} (e.g. one weight per "
                             f"class, the last dim)") from None
        sp = sp * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + sp
    if weight is not None:
        _tensors(op, weight=weight)
        try:
            broadcast_shapes(tuple(weight.shape), tuple(input.shape), op=op)
        except ValueError:
            raise ValueError(f"{op}: weight of shape {_shape(weight)} must broadcast to the "
                             f"input's shape {_shape(input)}") from None
        loss = loss * weight
    return _reduce(loss, reduction)


_KL_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the "
                    "support size.'batchmean' divides only by the batch size, and aligns with "
                    "the KL div math definition.'mean' will be changed to behave the same as "
                    "'batchmean' in the next major release.")


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)`` of log-probabilities
    ``input`` (``target`` in log space too when ``log_target``).

    ``reduction='batchmean'`` divides the sum by the batch size (``input.shape[0]``), the KL
    divergence's definition; ``'mean'`` divides by the number of elements (and warns, as
    PyTorch).
    """
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    op = "kl_div"
    _two_tensors(op, input, target)
    if size_average is not None or reduce is not None:
        reduction = _legacy(op, size_average, reduce)
    else:
        reduction = _reduction(op, reduction, allowed=_REDUCTIONS + ("batchmean",))
        if reduction == "mean":
            warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=2)
    try:
        broadcast_shapes(tuple(input.shape), tuple(target.shape), op=op)
    except ValueError:
        raise ValueError(f"{op}: input of shape {_shape(input)} and target of shape "
                         f"{_shape(target)} do not broadcast; give them the same shape") from None
    if input._dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point log-probabilities, got "
                        f"{input._dtype.name}")
    if log_target:
        loss = _ew.exp(target) * (target - input)
    else:
        zero = target == 0
        # xlogy(t, t): 0 where t == 0 (log of a safe 1 there, so no 0 * -inf in backward)
        loss = target * _ew.log(_where(zero, 1.0, target)) - target * input
    if reduction == "batchmean":
        total = _red.sum(loss)
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


# ------------------------------------------------------------------------- others ----------
def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``), else
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    op = "poisson_nll_loss"
    _pair(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if log_input:
        loss = _ew.exp(input) - target * input
    else:
        loss = input - target * _ew.log(input + eps)
    if full:
        import math
        st = target * _ew.log(_where(target > 1, target, 1.0)) - target + \
            _ew.log(target * (2 * math.pi)) * 0.5
        loss = loss + _where(target > 1, st, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood ``0.5 (log(var) + (input - target)**2 / var)`` (plus
    ``0.5 log(2 pi)`` when ``full``); ``var`` is clamped at ``eps`` (without gradient there)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target, var = _amp.fp32(input, target, var)
    import math
    op = "gaussian_nll_loss"
    _pair(op, input, target)
    reduction = _reduction(op, reduction)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        from ...api.creation import full
        var = full((), float(var), dtype=input.dtype, device=input.device)
    _tensors(op, var=var)
    vs, s = tuple(var.shape), tuple(input.shape)
    if vs != s:
        if vs == s[:-1] or vs == s[:-1] + (1,):
            var = var.reshape(s[:-1] + (1,))
        elif not (len(vs) == 0 or (len(vs) == 1 and vs[0] == 1)):
            raise ValueError(f"{op}: var of shape {fmt_shape(vs)} must have the input's shape "
                             f"{fmt_shape(s)}, or that shape with the last dim 1 or removed")
    _value_check(var._device.backend, _red.any(var < 0)._data,  # deferred on a GPU
                 lambda: ValueError(f"{op}: var has negative entry/entries"))
    with_grad = var
    from ...autograd.grad_mode import no_grad
    with no_grad():
        clamped = _ew.clamp(var, eps)
    # the clamp is not differentiated (PyTorch): var keeps its gradient where it is >= eps
    v = with_grad + (clamped - with_grad).detach()
    loss = (_ew.log(v) + _ew.square(input - target) / v) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-target * input))`` for targets in {-1, 1}."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    _pair("soft_margin_loss", input, target)
    reduction = _reduction("soft_margin_loss", reduction, size_average, reduce)
    return _reduce(_softplus0(-target * input), reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input1, input2, target = _amp.fp32(input1, input2, target)
    op = "margin_ranking_loss"
    _tensors(op, input1=input1, input2=input2, target=target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ValueError(f"{op}: all input tensors should have same dimension but got sizes: "
                         f"input1 {_shape(input1)}, input2 {_shape(input2)}, target "
                         f"{_shape(target)}")
    return _reduce(_ew.clamp(-target * (input1 - input2) + margin, 0.0), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, target = _amp.fp32(input, target)
    op = "hinge_embedding_loss"
    _pair(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    margin_clamp = _ew.clamp(margin - input, 0.0)
    loss = _where(target == 1, 0.0, margin_clamp) + _where(target == -1, 0.0, input)
    return _reduce(loss, reduction)
