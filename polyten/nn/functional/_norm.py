"""Normalisation layers as functions (``torch.nn.functional`` names, signatures and defaults).

``layer_norm`` and the training-mode normalisation of ``batch_norm`` are composite ops of the
op table (the cpu backend fuses them, forward and backward): one node with the op's own
derivative rule is recorded whichever runs.  Their kernels also return the statistics (mean
and biased variance, in float32 for float16 and bfloat16 inputs), which the fused backward
reuses and from which ``batch_norm`` updates the running statistics in place (with the
*unbiased* variance, as PyTorch).  ``group_norm`` and ``instance_norm`` are ``layer_norm``
over a reshaped input plus a per-channel affine map; eval-mode batch norm is that affine map
with the running statistics.
``rms_norm``, ``normalize`` and ``local_response_norm`` are plain compositions of polyten ops.
"""

from __future__ import annotations

import math
import numbers

from ...api import autocast as _amp
from ...api import dtypes as _dt
from ...api import elementwise as _ew
from ...api import reduction as _red
from ...api._core import Tensor, bump_version, describe, device_mismatch, wrap
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.grad_mode import no_grad
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm", "normalize",
           "local_response_norm"]

_PROMOTE = _dt._PROMOTE


# ------------------------------------------------------------------------- validation -----
def _input(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a tensor as input, got {describe(x)}")
    if x._dtype.kind != "f":
        raise TypeError(f"{op}: expected a real floating-point input, got {x._dtype.name} "
                        f"tensor of shape {fmt_shape(x._data.shape)}; cast first, e.g. "
                        f"x.to(polyten.float32)")


def _optional(op: str, name: str, t, shape, x, what: str):
    """Check an optional per-feature tensor (weight, bias, running statistic) of ``shape``."""
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor or None, got {describe(t)}")
    if tuple(t._data.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {fmt_shape(shape)} ({what}) for input "
                         f"of shape {fmt_shape(x._data.shape)}, got {fmt_shape(t._data.shape)}")
    if t._device is not x._device:
        raise device_mismatch(op, (x, t))
    if t._dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got {t._dtype.name}")
    return t


def _per_channel(op: str, x, **tensors) -> tuple:
    """``_optional`` for each of ``tensors`` (name=tensor or None), all of shape (C,)."""
    C = x._data.shape[1]
    what = f"one value per channel, C={C}"
    return tuple(_optional(op, name, t, (C,), x, what) for name, t in tensors.items())


def _eps(op: str, eps, training: bool = True) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{op}: eps must be a number, got {describe(eps)}")
    eps = float(eps)
    if training and eps <= 0.0:
        raise ValueError(f"{op}: eps must be positive (it keeps 1 / sqrt(var + eps) finite for "
                         f"constant inputs), got {eps}")
    if eps < 0.0:
        raise ValueError(f"{op}: eps must be non-negative, got {eps}")
    return eps


def _common_dtype(x, *ts):
    """``x`` and the tensors ``ts`` in their promoted dtype (casts are recorded)."""
    dt = x._dtype
    for t in ts:
        if t is not None and t._dtype is not dt:
            dt = _PROMOTE[(dt, t._dtype)]
    if dt is x._dtype and all(t is None or t._dtype is dt for t in ts):
        return (x,) + ts
    return tuple(None if t is None else (t if t._dtype is dt else t.to(dt)) for t in (x,) + ts)


def _mixed_half(input, *params) -> bool:
    """PyTorch's mixed-precision norms: a float16 (bfloat16) input with float32 parameters or
    running statistics (what autocast leaves a BatchNorm with) is normalised in float32 and the
    result is float16 (bfloat16), where promotion would give float32."""
    dt = input._dtype
    if dt not in _dt.LOW_PRECISION:
        return False
    mixed = False
    for p in params:
        if p is not None:
            if p._dtype is _dt.float32:
                mixed = True
            elif p._dtype is not dt:
                return False
    return mixed


def _stat_dtype(dt):
    return _dt.float32 if dt in _dt.LOW_PRECISION else dt


def _size_list(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


# --------------------------------------------------------------- the fused composites -----
def _layer_norm_default(x, weight, bias, ndim, eps):
    """Default of the ``layer_norm`` composite: polyten ops on plain (unrecorded) tensors."""
    shape = tuple(x.shape)
    dims = tuple(range(len(shape) - ndim, len(shape)))
    n = max(math.prod(shape[len(shape) - ndim:]), 1)
    xa = x.to(_dt.float32) if x._dtype in _dt.LOW_PRECISION else x
    mean = _red.sum(xa, dims, True) / n
    xc = xa - mean
    var = _red.sum(xc * xc, dims, True) / n
    out = xc * _ew.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.to(x._dtype), mean, var


def _batch_norm_default(x, weight, bias, eps):
    """Default of the ``batch_norm`` composite (training-mode normalisation)."""
    shape = tuple(x.shape)
    C = shape[1]
    dims = (0,) + tuple(range(2, len(shape)))
    n = max(math.prod(shape) // max(C, 1), 1)
    cshape = (C,) + (1,) * (len(shape) - 2)
    xa = x.to(_dt.float32) if x._dtype in _dt.LOW_PRECISION else x
    mean = _red.sum(xa, dims, True) / n
    xc = xa - mean
    var = _red.sum(xc * xc, dims, True) / n
    scale = _ew.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.reshape(cshape)
    out = xc * scale
    if bias is not None:
        out = out + bias.reshape(cshape)
    return out.to(x._dtype), mean.reshape(C), var.reshape(C)


register_default("layer_norm", _layer_norm_default)
register_default("batch_norm", _batch_norm_default)
_layer_norm_k = kernels("layer_norm")
_batch_norm_k = kernels("batch_norm")
_layer_norm_rule = _rule("layer_norm")
_batch_norm_rule = _rule("batch_norm")


def _run(cache, default, rule, x, weight, bias, args: tuple, params: dict):
    """Run a normalisation composite (fused kernel or default) and record its node.

    Returns ``(out, mean, var)``: the output tensor and the statistics as natives.
    """
    dev, dt = x._device, x._dtype
    wd = None if weight is None else weight._data
    bd = None if bias is None else bias._data
    k = cache[dev.backend]
    if k is None:
        # the default on plain aliases: no nodes of its own, the op's rule is recorded below
        o, m, v = default(wrap(x._data, dev, dt), None if wd is None else wrap(wd, dev, dt),
                          None if bd is None else wrap(bd, dev, dt), *args)
        od, md, vd = o._data, m._data, v._data
    else:
        od, md, vd = k(x._data, wd, bd, *args)
    out = wrap(od, dev, dt)
    if (x._ag is not None or (weight is not None and weight._ag is not None) or
            (bias is not None and bias._ag is not None)) and _grad_on():
        # the statistics as natives in params: the fused backward reads them (the polyten-op
        # rule recomputes them from x, so that double backward is right)
        params["mean"], params["var"] = md, vd
        params["needs"] = (x.requires_grad, weight is not None and weight.requires_grad,
                           bias is not None and bias.requires_grad)
        _record(rule, out, (x, weight, bias), params)
    return out, md, vd


def _layer_norm_stats(x, weight, bias, ndim: int, eps: float):
    return _run(_layer_norm_k, _layer_norm_default, _layer_norm_rule, x, weight, bias,
                (ndim, eps), {"ndim": ndim, "eps": eps})


def _channel_affine(x, scale, shift):
    """``x * scale + shift`` with (C,) ``scale`` / ``shift`` broadcast along dim 1."""
    cshape = (x.shape[1],) + (1,) * (x.ndim - 2)
    out = x if scale is None else x * scale.reshape(cshape)
    return out if shift is None else out + shift.reshape(cshape)


def _fused_running(running_mean, running_var, mean, var, dev, sdt, momentum: float,
                   var_factor: float) -> bool:
    """Both running statistics in one backend call (``fused_optimizers["batch_norm_running"]``:
    one launch on a GPU instead of six, or eleven for half buffers) when both are given on
    the statistics' device with one dtype: the statistics' or -- float32 statistics, as a
    float16 / bfloat16 BatchNorm has -- float16 or bfloat16; False to leave them to
    :func:`_update_running`."""
    if running_mean is None or running_var is None:
        return False
    rdt = running_mean._dtype
    if rdt is not sdt and not (rdt in _dt.LOW_PRECISION and sdt is _dt.float32):
        return False
    for r in (running_mean, running_var):
        if r._device is not dev or r._dtype is not rdt:
            return False
    kernel = dev.backend.fused_optimizers.get("batch_norm_running")
    if kernel is None or kernel(running_mean._data, running_var._data, mean, var, momentum,
                                var_factor) is NotImplemented:
        return False
    bump_version(running_mean)
    bump_version(running_var)
    return True


def _update_running(running, stat, momentum: float, factor: float = 1.0) -> None:
    """``running = (1 - momentum) * running + momentum * factor * stat``, in place."""
    with no_grad():
        running.mul_(1.0 - momentum).add_(stat, alpha=momentum * factor)


# ---------------------------------------------------------------------------- batch_norm ---
def _verify_batch_size(op: str, shape, hint: str) -> None:
    """PyTorch's check: statistics of a single value per channel are meaningless."""
    size = shape[0]
    for s in shape[2:]:
        size *= s
    if size == 1:
        raise ValueError(f"{op}: Expected more than 1 value per channel when training, got "
                         f"input size {_size_list(shape)}; {hint}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over dim 1 of an (N, C, ...) input (``torch.nn.functional``).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel.  With ``training=True``
    the mean and biased variance of the batch (over every dim but 1) are used and, when
    given, ``running_mean`` / ``running_var`` are updated in place:
    ``running = (1 - momentum) * running + momentum * stat`` with the *unbiased* batch
    variance.  With ``training=False`` the running statistics are used (they are required).

    Parameters
    ----------
    input : Tensor
        (N, C) or (N, C, *), floating point.
    running_mean, running_var : Tensor or None
        (C,) buffers.
    weight, bias : Tensor or None
        (C,) affine parameters.
    training : bool
    momentum : float
        Weight of the new statistics (``None`` -- a cumulative average -- is the modules'
        business: they pass ``1 / num_batches_tracked``).
    eps : float
    """
    op = "batch_norm"
    _input(op, input)
    shape = tuple(input._data.shape)
    if len(shape) < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, ...), got "
                         f"shape {fmt_shape(shape)}")
    C = shape[1]
    weight, bias, running_mean, running_var = _per_channel(
        op, input, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    if _mixed_half(input, weight, bias, running_mean, running_var):
        return batch_norm(input.to(_dt.float32), running_mean, running_var, weight, bias,
                          training, momentum, eps).to(input._dtype)
    if momentum is None or isinstance(momentum, bool) or not isinstance(momentum,
                                                                        numbers.Real):
        raise TypeError(f"{op}: momentum must be a number, got {describe(momentum)}; "
                        f"momentum=None (a cumulative average) is handled by the BatchNorm "
                        f"modules, which pass 1 / num_batches_tracked")
    eps = _eps(op, eps, training)
    if training:
        _verify_batch_size(op, shape, "use a batch of more than one sample (or more than one "
                                      "value per channel), or normalise with the running "
                                      "statistics: model.eval() / training=False")
        x, w, b = _common_dtype(input, weight, bias)
        out, mean, var = _run(_batch_norm_k, _batch_norm_default, _batch_norm_rule, x, w, b,
                              (eps,), {"eps": eps})
        n = math.prod(shape) // C if C else 0
        if n > 0:  # an empty batch leaves the running statistics as they are (PyTorch)
            dev, sdt = x._device, _stat_dtype(x._dtype)
            if _fused_running(running_mean, running_var, mean, var, dev, sdt,
                              float(momentum), n / (n - 1)):
                return out
            if running_mean is not None:
                _update_running(running_mean, wrap(mean, dev, sdt), float(momentum))
            if running_var is not None:
                # the unbiased variance (n > 1 here: checked above)
                _update_running(running_var, wrap(var, dev, sdt), float(momentum),
                                n / (n - 1))
        return out
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given in evaluation mode "
                         f"(training=False); pass training=True to normalise with the batch "
                         f"statistics")
    return _running_affine(input, running_mean, running_var, weight, bias, eps)


def _running_affine(x, running_mean, running_var, weight, bias, eps):
    """Normalisation with fixed statistics: a per-channel ``x * scale + shift`` (also
    differentiable in the statistics, should they require grad)."""
    rstd = _ew.rsqrt(running_var + eps)
    scale = rstd if weight is None else rstd * weight
    shift = -(running_mean * scale)
    if bias is not None:
        shift = shift + bias
    return _channel_affine(x, scale, shift)


# ------------------------------------------------------------------------- instance_norm ---
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Instance normalisation: each channel of each sample of an (N, C, *) input is normalised
    over its own spatial dims (``torch.nn.functional.instance_norm``).

    With ``use_input_stats=True`` (default) the per-instance statistics are used and, when
    given, the running statistics are updated with their average over the batch (unbiased
    variance), as PyTorch; otherwise the running statistics normalise the input.
    """
    op = "instance_norm"
    _input(op, input)
    shape = tuple(input._data.shape)
    if len(shape) < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dimensions (N, C, *spatial), "
                         f"got shape {fmt_shape(shape)}; an unbatched input (C, *spatial) "
                         f"needs input.unsqueeze(0)")
    C = shape[1]
    weight, bias, running_mean, running_var = _per_channel(
        op, input, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    if _mixed_half(input, weight, bias, running_mean, running_var):
        return instance_norm(input.to(_dt.float32), running_mean, running_var, weight, bias,
                             use_input_stats, momentum, eps).to(input._dtype)
    eps = _eps(op, eps, use_input_stats)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var must be given when "
                             f"use_input_stats=False")
        return _running_affine(input, running_mean, running_var, weight, bias, eps)
    spatial = math.prod(shape[2:])
    if spatial == 1:
        raise ValueError(f"{op}: Expected more than 1 spatial element when training, got input "
                         f"size {_size_list(shape)}; instance statistics need at least two "
                         f"values per channel")
    x, w, b = _common_dtype(input, weight, bias)
    out, mean, var = _layer_norm_stats(x, None, None, len(shape) - 2, eps)
    if w is not None or b is not None:
        out = _channel_affine(out, w, b)
    if shape[0] and spatial and (running_mean is not None or running_var is not None):
        # PyTorch's: the batch average of the per-instance updates
        m = float(momentum)
        dev, sdt = x._device, _stat_dtype(x._dtype)
        with no_grad():
            if running_mean is not None:
                _update_running(running_mean,
                                _red.mean(wrap(mean, dev, sdt).reshape(shape[0], C), 0), m)
            if running_var is not None:
                _update_running(running_var,
                                _red.mean(wrap(var, dev, sdt).reshape(shape[0], C), 0), m,
                                spatial / (spatial - 1))
    return out


# ---------------------------------------------------------------------------- layer_norm ---
def _shape_arg(op: str, normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape,
                                                                           bool):
        return (int(normalized_shape),)
    try:
        s = tuple(int(d) for d in normalized_shape)
    except TypeError:
        raise TypeError(f"{op}: normalized_shape must be an int or a sequence of ints, got "
                        f"{describe(normalized_shape)}") from None
    return s


def _normalized_shape(op: str, input, normalized_shape) -> tuple:
    """``normalized_shape`` as a tuple, checked to be the input's last dims."""
    ns = _shape_arg(op, normalized_shape)
    shape = tuple(input._data.shape)
    k = len(ns)
    if k == 0 or k > len(shape) or shape[len(shape) - k:] != ns:
        fix = (f"; pass normalized_shape={fmt_shape(shape[-k:] if k else shape[-1:])} "
               f"(input.shape[-{k or 1}:])" if shape else "")
        raise ValueError(f"{op}: Given normalized_shape={fmt_shape(ns)}, expected input with "
                         f"shape (*, {', '.join(str(d) for d in ns)}), but got input of shape "
                         f"{fmt_shape(shape)}{fix}")
    return ns


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last ``len(normalized_shape)`` dims: ``(x - mean) /
    sqrt(var + eps) * weight + bias`` with the mean and biased variance of each sample
    (``torch.nn.functional.layer_norm``).  ``weight`` and ``bias`` have ``normalized_shape``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, weight, bias = _amp.fp32(input, weight, bias)
    op = "layer_norm"
    _input(op, input)
    ns = _normalized_shape(op, input, normalized_shape)
    what = "normalized_shape"
    weight = _optional(op, "weight", weight, ns, input, what)
    bias = _optional(op, "bias", bias, ns, input, what)
    if _mixed_half(input, weight, bias):
        return layer_norm(input.to(_dt.float32), ns, weight, bias, eps).to(input._dtype)
    eps = _eps(op, eps, False)
    x, w, b = _common_dtype(input, weight, bias)
    return _layer_norm_stats(x, w, b, len(ns), eps)[0]


# ---------------------------------------------------------------------------- group_norm ---
def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Group normalisation: the channels of an (N, C, *) input are split into ``num_groups``
    groups, each normalised over its channels and spatial dims, then ``weight`` / ``bias``
    (C,) scale and shift each channel (``torch.nn.functional.group_norm``)."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input, weight, bias = _amp.fp32(input, weight, bias)
    op = "group_norm"
    _input(op, input)
    shape = tuple(input._data.shape)
    if len(shape) < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, *), got "
                         f"shape {fmt_shape(shape)}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or \
            num_groups <= 0:
        raise ValueError(f"{op}: num_groups must be a positive int, got {num_groups!r}")
    N, C = shape[0], shape[1]
    if C % num_groups:
        divisors = [d for d in range(1, C + 1) if C % d == 0]
        raise ValueError(f"{op}: num_groups={num_groups} must divide the number of channels "
                         f"C={C} of input of shape {fmt_shape(shape)}; choose num_groups among "
                         f"{divisors}")
    _verify_batch_size(op, [N * C // num_groups, num_groups] + list(shape[2:]),
                       "use more samples, more channels per group or spatial dims")
    weight, bias = _per_channel(op, input, weight=weight, bias=bias)
    if _mixed_half(input, weight, bias):
        return group_norm(input.to(_dt.float32), num_groups, weight, bias, eps).to(
            input._dtype)
    eps = _eps(op, eps, False)
    x, w, b = _common_dtype(input, weight, bias)
    out = _layer_norm_stats(x.reshape(N, num_groups, C // num_groups * math.prod(shape[2:])),
                            None, None, 1, eps)[0]
    out = out.reshape(shape)
    if w is not None or b is not None:
        out = _channel_affine(out, w, b)
    return out


# ------------------------------------------------------------------------------ rms_norm ---
def rms_norm(input, normalized_shape, weight=None, eps=None) -> Tensor:
    """Root-mean-square normalisation over the last ``len(normalized_shape)`` dims:
    ``x / sqrt(mean(x ** 2) + eps) * weight`` (``torch.nn.functional.rms_norm``).

    ``eps=None`` uses the machine epsilon of the computation dtype (float32 for float16 and
    bfloat16 inputs, which are computed in float32 and rounded once, as PyTorch).
    """
    op = "rms_norm"
    _input(op, input)
    ns = _normalized_shape(op, input, normalized_shape)
    shape, k = tuple(input._data.shape), len(ns)
    weight = _optional(op, "weight", weight, ns, input, "normalized_shape")
    dt = input._dtype
    xa = input.to(_dt.float32) if dt in _dt.LOW_PRECISION else input
    if eps is None:
        eps = _dt.finfo(xa._dtype).eps
    eps = _eps(op, eps, False)
    dims = tuple(range(len(shape) - k, len(shape)))
    out = xa * _ew.rsqrt(_red.mean(xa * xa, dims, True) + eps)
    if out._dtype is not dt:
        out = out.to(dt)
    return out if weight is None else out * weight


# ----------------------------------------------------------------------------- normalize ---
def normalize(input, p: float = 2.0, dim=1, eps: float = 1e-12, out=None) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim`` (``torch.nn.functional.normalize``).

    ``out``: write the result into this tensor as well (not differentiable, as PyTorch).
    """
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input = _amp.fp32(input)
    from ...api.linalg import vector_norm
    op = "normalize"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): expected a tensor as input, got {describe(input)}")
    if input._dtype.kind not in "fc":
        raise TypeError(f"{op}: expected a floating-point input, got {input._dtype.name}; cast "
                        f"first, e.g. x.to(polyten.float32)")
    denom = _ew.clamp(vector_norm(input, p, dim=dim, keepdim=True), eps)
    res = input / denom
    if out is not None:
        with no_grad():
            out.copy_(res)
        return out
    return res


# ------------------------------------------------------------------- local_response_norm ---
def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (dim 1) of an (N, C, *) input:
    ``x / (k + alpha * mean of x^2 over a window of size channels) ** beta``, the window
    zero-padded by ``size // 2`` before and ``(size - 1) // 2`` after, as PyTorch."""
    from ...api.creation import zeros
    from ...api.shape import cat
    op = "local_response_norm"
    _input(op, input)
    shape = tuple(input._data.shape)
    if len(shape) < 3:
        raise ValueError(f"{op}: expected an input of 3 or more dimensions (N, C, *), got "
                         f"shape {fmt_shape(shape)}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    C = shape[1]
    sq = input * input
    before, after = size // 2, (size - 1) // 2
    pads = []
    if before:
        pads.append(zeros((shape[0], before) + shape[2:], dtype=input._dtype,
                          device=input._device))
    pads.append(sq)
    if after:
        pads.append(zeros((shape[0], after) + shape[2:], dtype=input._dtype,
                          device=input._device))
    padded = cat(pads, 1) if len(pads) > 1 else sq
    # a sum of `size` shifted channel slices: one vectorised op per window offset
    acc = padded.narrow(1, 0, C)
    for i in range(1, size):
        acc = acc + padded.narrow(1, i, C)
    div = _ew.pow(acc * (alpha / size) + k, beta)
    return input / div
