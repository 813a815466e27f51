"""Reductions: sums, means, extrema, variance, norms, logical reductions and scans.

Every function takes PyTorch's ``dim=`` / ``keepdim=`` and the Array API's ``axis=`` /
``keepdims=``.  ``dim`` is an int, a tuple of ints or ``None`` (all dims).  One difference
between the two spellings is kept on purpose: ``dim=()`` reduces over *all* dims (PyTorch),
``axis=()`` over *none* (the Array API).

Result dtypes follow PyTorch: ``sum``/``prod``/``cumsum``/``cumprod`` of bool or integer
tensors accumulate in int64, ``mean``/``var``/``std`` need a floating (or complex) input,
``var``/``std``/norms of complex tensors are real, ``argmax``/``argmin`` are int64 and
``all``/``any`` are bool.  ``var`` and ``std`` default to ``correction=1`` (PyTorch; the Array
API's default is 0 -- pass ``correction=0``).
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import fmt_shape
from ..dispatch.optable import OPS
from . import dtypes as _dt
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.grad_mode import no_grad as _no_grad
from ..autograd.graph import record_unary as _record1
from ..autograd.rules import rule as _rule
from ._core import Tensor, cast, describe, normalize_dim, normalize_dims, wrap
from . import autocast as _amp
from . import elementwise as _ew
from .elementwise import maximum as _maximum, minimum as _minimum, unsupported

__all__ = ["sum", "prod", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "var",
           "std", "var_mean", "std_mean", "logsumexp", "norm", "all", "any", "cumsum",
           "cumprod", "cumulative_sum", "cumulative_prod", "count_nonzero", "nansum", "nanmean",
           "median", "vector_norm", "return_types"]

_bool = _dt.bool
_int64 = _dt.int64
_LOW = _dt.LOW_PRECISION
_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere


def _amp32(x):
    """``x`` in float32 when it is float16 / bfloat16 inside an autocast region (the FP32
    reductions)."""
    if _AMP[0] and isinstance(x, Tensor) and x._dtype in _LOW:
        return _amp.fp32(x)
    return x
_DEFAULT = _dt._default_float


class return_types:
    """Named tuples returned by reductions that give values and indices (``torch.return_types``)."""

    max = namedtuple("max", ["values", "indices"])
    min = namedtuple("min", ["values", "indices"])
    median = namedtuple("median", ["values", "indices"])


for _c in (return_types.max, return_types.min, return_types.median):
    _c.__module__ = "polyten.return_types"


def _accepted(name):
    return frozenset(_dt.DTYPES[n] for n in OPS[name].accepted)


# ----------------------------------------------------------------------------- helpers ----
def _tensor(input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): expected a tensor, got {describe(input)}")
    return input


def _dims(input, dim, axis, op):
    """Normalised dims: ``None`` (all), or a sorted tuple (``()``: reduce nothing)."""
    if dim.__class__ is builtins.int and axis is None:  # the common case, quickly
        nd = len(input._data.shape)
        if 0 <= dim < nd:
            return (dim,)
        if -nd <= dim < 0:
            return (dim + nd,)
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}(): got both dim={dim!r} and axis={axis!r}; pass one of them")
        if isinstance(axis, (tuple, list)) and not axis:
            return ()  # Array API: an empty tuple of axes reduces nothing
        return normalize_dims(axis, len(input._data.shape), op)
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)) and not dim:
        return None  # PyTorch: dim=() reduces everything
    if isinstance(dim, Tensor):
        raise TypeError(f"{op}(): dim must be an int or a tuple of ints, got a tensor")
    return normalize_dims(dim, len(input._data.shape), op)


def _keep(keepdim, keepdims):
    return builtins.bool(keepdim if keepdims is None else keepdims)


def _reduced_size(shape, dims):
    n = 1
    for d in (range(len(shape)) if dims is None else dims):
        n *= shape[d]
    return n


def _check_nonempty(op, input, dims, what):
    """An error like PyTorch's when a reduction without identity meets an empty dimension."""
    shape = input._data.shape
    if dims is None:
        if 0 in shape:
            raise RuntimeError(
                f"{op}(): cannot reduce a tensor with no elements (shape {fmt_shape(shape)}) "
                f"to one value: {what} of no elements is undefined. Specify the reduction dim "
                f"with dim=... (a non-empty one), or check that the input is not empty")
        return
    for d in dims:
        if shape[d] == 0:
            raise IndexError(
                f"{op}(): Expected reduction dim {d} to have non-zero size (input shape "
                f"{fmt_shape(shape)}): {what} of no elements is undefined")


def _result_dtype(op, input, dtype):
    """Accumulation dtype of sum/prod/cumsum/cumprod: PyTorch's int64 for bool and integers."""
    if dtype is None:
        dt = input._dtype
        return _int64 if dt.kind in "bui" else dt
    dt = _dt.to_dtype(dtype)
    if input._dtype.is_complex and not dt.is_complex:
        raise TypeError(f"{op}(): cannot accumulate a {input._dtype.name} tensor in "
                        f"{dt.name}, which would drop the imaginary part; take .real or .abs() "
                        f"first")
    if dt.kind in "bui" and input._ag is not None and input._ag.requires_grad and _grad_on():
        # as PyTorch ("Autograd not support dtype"): an integer result has no gradient
        raise RuntimeError(f"{op}(): dtype={dt.name} on a tensor that requires grad: autograd "
                           f"does not support integer results; use a floating dtype, or "
                           f"{op} the detached tensor (x.detach())")
    return dt


def _input_in(input, dt):
    """The input's data for an accumulation in dtype ``dt`` (a user-given dtype casts first)."""
    if dt is input._dtype or (input._dtype.kind in "bui" and dt is _int64):
        return input._data
    return cast(input, dt)


# ----------------------------------------------------------------------------- sum/prod ---
_sum_k = kernels("sum")
_prod_k = kernels("prod")
_SUM_RULE = _rule("sum")
_ALL_DIMS = {"dims": None, "keepdim": False}  # the params of x.sum() / x.mean(): shared, read-only
_MEAN_RULE = _rule("mean")


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Sum of the elements over ``dim`` (all dims when ``None``).

    Parameters
    ----------
    input : Tensor
    dim, axis : int or tuple of ints, optional
        The dims to reduce (``axis`` is the Array API spelling).
    keepdim, keepdims : bool
        Keep the reduced dims with size 1.
    dtype : polyten.dtype, optional
        Accumulation and result dtype; the input is cast to it first.  By default bool and
        integer inputs accumulate in int64 (as PyTorch), other dtypes in their own.

    The sum of no elements is 0.
    """
    if dim is None and axis is None and dtype is None and not keepdim and keepdims is None \
            and input.__class__ is Tensor:
        # the common x.sum(): every dim, the input's own dtype unless it is bool/integer
        dev = input._device
        dt = input._dtype
        if dt.kind in "bui":
            dt = _int64
        elif dt in _LOW and _AMP[0]:
            up = _amp.fp32(input)
            if up is not input:
                return sum(up)
        out = wrap(_sum_k[dev.backend](input._data, None, False, dt.name), dev, dt)
        if input._ag is not None and _grad_on():
            _record1(_SUM_RULE, out, input, _ALL_DIMS)
        return out
    if _AMP[0] and dtype is None:
        input = _amp32(input)
    try:
        dev = input._device
        data = input._data
    except AttributeError:
        _tensor(input, "sum")
    if dim is None and axis is None:
        dims = None
    else:
        dims = _dims(input, dim, axis, "sum")
    if dtype is None:
        dt = input._dtype
        rd = _int64 if dt.kind in "bui" else dt
    else:
        rd = _result_dtype("sum", input, dtype)
        data = _input_in(input, rd)
    keep = keepdim if keepdims is None else keepdims
    out = wrap(_sum_k[dev.backend](data, dims, keep, rd.name), dev, rd)
    if input._ag is not None and _grad_on():
        _record1(_SUM_RULE, out, input,
                 _ALL_DIMS if dims is None and not keep else {"dims": dims, "keepdim": keep})
    return out


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Product of the elements over ``dim`` (all dims when ``None``); see :func:`sum` for the
    parameters and dtypes.  The product of no elements is 1."""
    _tensor(input, "prod")
    if dtype is None:
        input = _amp32(input)
    dims = _dims(input, dim, axis, "prod")
    rd = _result_dtype("prod", input, dtype)
    data = _input_in(input, rd)
    keep = _keep(keepdim, keepdims)
    out = wrap(_prod_k[input._device.backend](data, dims, keep, rd.name), input._device, rd)
    if input._ag is not None and _grad_on():
        _record(_rule("prod"), out, (input,), {"dims": dims, "keepdim": keep})
    return out


def nansum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """:func:`sum` treating NaN as zero (``torch.nansum``)."""
    _tensor(input, "nansum")
    if input._dtype.is_floating_point or input._dtype.is_complex:
        input = _ew.where(_ew.isnan(input), 0, input)
    return sum(input, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)


# --------------------------------------------------------------------------------- mean ---
_mean_k = kernels("mean")
_mean_ok = _accepted("mean")


def _float_input(op, input, dtype):
    """The input converted for a floating-only reduction (mean, var, ...): ``dtype`` casts
    first; integers are refused, as in PyTorch."""
    if dtype is not None:
        dt = _dt.to_dtype(dtype)
        if not (dt.is_floating_point or dt.is_complex):
            raise TypeError(f"{op}(): dtype must be a floating point or complex dtype, got "
                            f"{dt.name}")
        if dt is input._dtype:
            return input
        if input._ag is not None:
            return input.to(dt)  # recorded, so gradients flow back through the cast
        return wrap(cast(input, dt), input._device, dt)
    if input._dtype not in _mean_ok:
        raise TypeError(
            f"{op}(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {input._dtype.name}. Cast first, e.g. "
            f"x.float().{op}(), or pass dtype=polyten.float32")
    return input


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Arithmetic mean over ``dim`` (all dims when ``None``).

    The input must be floating point or complex (as in PyTorch): cast integer tensors first
    (``x.float().mean()``) or pass ``dtype=``.  The mean of no elements is NaN.
    """
    _tensor(input, "mean")
    input = _float_input("mean", input, dtype)
    dims = None if dim is None and axis is None else _dims(input, dim, axis, "mean")
    dev = input._device
    keep = _keep(keepdim, keepdims)
    out = wrap(_mean_k[dev.backend](input._data, dims, keep), dev, input._dtype)
    if input._ag is not None and _grad_on():
        _record1(_MEAN_RULE, out, input,
                 _ALL_DIMS if dims is None and not keep else {"dims": dims, "keepdim": keep})
    return out


def nanmean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Mean of the non-NaN elements (``torch.nanmean``); NaN where all are NaN."""
    _tensor(input, "nanmean")
    input = _float_input("nanmean", input, dtype)
    nan = _ew.isnan(input)
    total = sum(_ew.where(nan, 0, input), dim, keepdim, axis=axis, keepdims=keepdims)
    n = sum(_ew.logical_not(nan), dim, keepdim, axis=axis, keepdims=keepdims)
    # no 0/0: slices with no numbers get NaN explicitly
    mean_ = _ew.div(total, _ew.maximum(n, 1).to(input._dtype.to_real()))
    return _ew.where(_ew.eq(n, 0), float("nan"), mean_)


# ---------------------------------------------------------------------- extrema: values ---
_amax_k = kernels("amax")
_amin_k = kernels("amin")
_minmax_ok = _accepted("amax")


def _extreme(k, op, input, dims, keep, what):
    dt = input._dtype
    if dt not in _minmax_ok:
        raise unsupported(op, OPS["amax"], dt)
    _check_nonempty(op, input, dims, what)
    out = wrap(k[input._device.backend](input._data, dims, keep), input._device, dt)
    if input._ag is not None and _grad_on():
        _record(_rule("amax" if k is _amax_k else "amin"), out, (input,),
                {"dims": dims, "keepdim": keep})
    return out


def amax(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The maximum over ``dim`` (a dim or a tuple of dims; all when ``None``); NaN propagates.

    Unlike :func:`max` with a dim, returns only the values.  Reducing over an empty dimension
    raises ``IndexError`` (the maximum of nothing is undefined).
    """
    if dim is None and axis is None:
        return _whole(_amax_k, "amax", input, keepdim, keepdims, "the maximum")
    _tensor(input, "amax")
    return _extreme(_amax_k, "amax", input, _dims(input, dim, axis, "amax"),
                    _keep(keepdim, keepdims), "the maximum")


def amin(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The minimum over ``dim`` (a dim or a tuple of dims; all when ``None``); NaN propagates."""
    if dim is None and axis is None:
        return _whole(_amin_k, "amin", input, keepdim, keepdims, "the minimum")
    _tensor(input, "amin")
    return _extreme(_amin_k, "amin", input, _dims(input, dim, axis, "amin"),
                    _keep(keepdim, keepdims), "the minimum")


# --------------------------------------------------------------------- extrema: indices ---
_argmax_k = kernels("argmax")
_argmin_k = kernels("argmin")


def _arg(k, op, input, dim, axis, keepdim, keepdims):
    _tensor(input, op)
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}(): got both dim={dim!r} and axis={axis!r}; pass one of them")
        dim = axis
    dt = input._dtype
    if dt not in _minmax_ok:
        raise unsupported(op, OPS["argmax"], dt)
    keep = _keep(keepdim, keepdims)
    if dim is None:
        _check_nonempty(op, input, None, f"the {op}")
        return wrap(k[input._device.backend](input._data, None, keep), input._device, _int64)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}(): dim must be a single int (the index is along one "
                        f"dimension), got {dim!r}")
    d = normalize_dim(dim, len(input._data.shape), op)
    if input._data.shape:
        _check_nonempty(op, input, (d,), f"the {op}")
    return wrap(k[input._device.backend](input._data, d, keep), input._device, _int64)


def argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Index of the maximum along ``dim`` (int64); with ``dim=None``, the index into the
    flattened tensor.  Ties give the first occurrence; NaN counts as the maximum."""
    return _arg(_argmax_k, "argmax", input, dim, axis, keepdim, keepdims)


def argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Index of the minimum along ``dim`` (int64); see :func:`argmax`."""
    return _arg(_argmin_k, "argmin", input, dim, axis, keepdim, keepdims)


# ------------------------------------------------------------------ max/min with a dim ---
_max_dim_k = kernels("max_dim")
_min_dim_k = kernels("min_dim")


def _max_dim_default(input, dim, keepdim):
    return amax(input, dim, keepdim), argmax(input, dim, keepdim)


def _min_dim_default(input, dim, keepdim):
    return amin(input, dim, keepdim), argmin(input, dim, keepdim)


register_default("max_dim", _max_dim_default)
register_default("min_dim", _min_dim_default)


def _max_min(op, input, dim, keepdim, axis, keepdims, value_k, dim_k, default, other_fn,
             rtype, what):
    _tensor(input, op)
    if isinstance(dim, Tensor):
        if keepdim is not False:
            raise TypeError(f"{op}(input, other): keepdim is not an argument of the "
                            f"elementwise form")
        return other_fn(input, dim)
    keep = _keep(keepdim, keepdims)
    if axis is not None:  # Array API: max(x, axis=...) returns the values only
        return _extreme(value_k, op, input, _dims(input, None, axis, op), keep, what)
    if dim is None:
        return _extreme(value_k, op, input, None, keep, what)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}(): dim must be an int to get (values, indices), got {dim!r}; "
                        f"use amax/amin(x, dim={tuple(dim)!r}) or {op}(x, axis="
                        f"{tuple(dim)!r}) to reduce several dims")
    dt = input._dtype
    if dt not in _minmax_ok:
        raise unsupported(op, OPS["max_dim"], dt)
    d = normalize_dim(dim, len(input._data.shape), op)
    if input._data.shape:
        _check_nonempty(op, input, (d,), what)
    dev = input._device
    k = dim_k[dev.backend]
    if k is None:
        values, indices = default(input, d, keep)
    else:
        values, indices = k(input._data, d, keep)
        values, indices = wrap(values, dev, dt), wrap(indices, dev, _int64)
    if input._ag is not None and _grad_on():
        # the gradient goes to the element the index names (as PyTorch), not to every tie
        _record(_rule("max_dim" if dim_k is _max_dim_k else "min_dim"), values, (input,),
                {"dim": d, "indices": indices, "keepdim": keep})
    return rtype(values, indices)


def _whole(k, op, input, keepdim, keepdims, what):
    """``max(x)`` / ``min(x)``: the hot path, one check and one kernel call."""
    try:
        dt = input._dtype
        data = input._data
    except AttributeError:
        _tensor(input, op)
    if dt not in _minmax_ok:
        raise unsupported(op, OPS["amax"], dt)
    if 0 in data.shape:
        _check_nonempty(op, input, None, what)
    keep = keepdim if keepdims is None else keepdims
    out = wrap(k[input._device.backend](data, None, keep), input._device, dt)
    if input._ag is not None and _grad_on():
        _record(_rule("amax" if k is _amax_k else "amin"), out, (input,),
                {"dims": None, "keepdim": keep})
    return out


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None, other=None):
    """The maximum.

    * ``max(x)``: the largest element (a 0-d tensor); NaN propagates.
    * ``max(x, dim, keepdim=False)``: a named tuple ``(values, indices)`` along ``dim``
      (``polyten.return_types.max``), as ``torch.max``.
    * ``max(x, other)``: the elementwise :func:`maximum`.
    * ``max(x, axis=..., keepdims=...)``: the Array API form; the values only (``axis`` may
      be a tuple).

    The maximum of an empty tensor (or along an empty dim) raises.
    """
    if other is not None:  # torch.max(input, other=t)
        if dim is not None:
            raise TypeError("max(): got both dim and other; pass one of them")
        dim = other
    if dim is None and axis is None:
        return _whole(_amax_k, "max", input, keepdim, keepdims, "the maximum")
    return _max_min("max", input, dim, keepdim, axis, keepdims, _amax_k, _max_dim_k,
                    _max_dim_default, _maximum, return_types.max, "the maximum")


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None, other=None):
    """The minimum; the forms of :func:`max` (``polyten.return_types.min`` with a dim)."""
    if other is not None:  # torch.min(input, other=t)
        if dim is not None:
            raise TypeError("min(): got both dim and other; pass one of them")
        dim = other
    if dim is None and axis is None:
        return _whole(_amin_k, "min", input, keepdim, keepdims, "the minimum")
    return _max_min("min", input, dim, keepdim, axis, keepdims, _amin_k, _min_dim_k,
                    _min_dim_default, _minimum, return_types.min, "the minimum")


def median(input, dim=None, keepdim=False):
    """The median (the lower of the two middle values for an even count, as ``torch.median``).

    ``median(x)`` returns a 0-d tensor; ``median(x, dim)`` a named tuple ``(values, indices)``.
    NaN propagates: a slice holding NaN has median NaN (its index is the first NaN's).
    """
    _tensor(input, "median")
    dt = input._dtype
    if dt not in _minmax_ok:
        raise unsupported("median", OPS["amax"], dt)
    shape = input._data.shape
    if dim is None:
        _check_nonempty("median", input, None, "the median")
        with _no_grad():
            mv = _median_along(_reshape(input, (input.numel(),)), 0, False)[0]
        if input._ag is not None and _grad_on():
            # ties share the gradient evenly, as PyTorch's median() (max() alike)
            _record(_rule("median_all"), mv, (input,), {"dims": None, "keepdim": False})
        return mv
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"median(): dim must be a single int, got {dim!r}")
    d = normalize_dim(dim, len(shape), "median")
    if not shape:
        return return_types.median(input, wrap(_zeros_int64((), input), input._device, _int64))
    _check_nonempty("median", input, (d,), "the median")
    return return_types.median(*_median_along(input, d, builtins.bool(keepdim)))


def _zeros_int64(shape, like):
    return kernels("full")[like._device.backend](shape, 0, "int64", like._device.index)


def _median_along(x, d, keep):
    dev = x._device
    b = dev.backend
    values, indices = kernels("sort")[b](x._data, d, False, True)
    n = x._data.shape[d]
    # with NaN the sort puts NaN last; the median is then NaN (the first NaN's position)
    pos = (n - 1) // 2
    key = (slice(None),) * d + (slice(pos, pos + 1),)
    getitem = kernels("getitem")[b]
    mv = wrap(getitem(values, key), dev, x._dtype)
    mi = wrap(getitem(indices, key), dev, _int64)
    if x._dtype.is_floating_point:
        nans = _ew.isnan(x)
        has_nan = any(nans, d, keepdim=True)
        first_nan = argmax(nans.to(_dt.uint8), d, keepdim=True)
        mv = _ew.where(has_nan, float("nan"), mv)
        mi = _ew.where(has_nan, first_nan, mi)
    if not keep:
        out = x._data.shape[:d] + x._data.shape[d + 1:]
        mv, mi = _reshape(mv, out), _reshape(mi, out)
    if x._ag is not None and _grad_on():
        _record(_rule("median"), mv, (x,), {"dim": d, "indices": mi, "keepdim": keep})
    return mv, mi


_reshape_k = kernels("reshape")


def _reshape(t, shape):
    out = wrap(_reshape_k[t._device.backend](t._data, tuple(shape)), t._device, t._dtype)
    if t._ag is not None and _grad_on():
        _record(_rule("reshape"), out, (t,))
    return out


# --------------------------------------------------------------------------- var / std ---
_var_k = kernels("var")
_std_k = kernels("std")


def _correction(op, dim, unbiased, correction):
    if isinstance(dim, builtins.bool):  # legacy var(x, unbiased)
        if unbiased is not None:
            raise TypeError(f"{op}(): got unbiased twice")
        unbiased, dim = dim, None
    if unbiased is not None:
        if correction is not None:
            raise TypeError(f"{op}(): pass either unbiased= or correction=, not both")
        correction = 1 if unbiased else 0
    if correction is None:
        correction = 1
    if isinstance(correction, Tensor):
        correction = correction.item()
    # a negative correction is allowed, as PyTorch (a divisor N - correction above N)
    if isinstance(correction, builtins.bool) or not isinstance(correction,
                                                              (builtins.int, builtins.float)):
        raise ValueError(f"{op}(): correction must be a number, got {correction!r}")
    return dim, correction


def _var_std(op, k, input, dim, unbiased, keepdim, correction, axis, keepdims):
    _tensor(input, op)
    dt = input._dtype
    if not (dt.is_floating_point or dt.is_complex):
        raise TypeError(f"{op}(): std and var only support floating point and complex dtypes, "
                        f"got {dt.name}; cast first, e.g. x.float().{op}()")
    dim, correction = _correction(op, dim, unbiased, correction)
    dims = _dims(input, dim, axis, op)
    keep = _keep(keepdim, keepdims)
    dev = input._device
    kern = k[dev.backend] if k is not None else _var_k[dev.backend]
    if kern is None:  # std without a fused kernel
        return _std_default(input, dims, correction, keep)
    out = wrap(kern(input._data, dims, correction, keep), dev, dt.to_real())
    if input._ag is not None and _grad_on():
        _record(_rule(op), out, (input,), {"dims": dims, "correction": correction,
                                           "keepdim": keep})
    return out


def _std_default(input, dims, correction, keepdim):
    v = wrap(_var_k[input._device.backend](input._data, dims, correction, keepdim),
             input._device, input._dtype.to_real())
    if input._ag is not None and _grad_on():
        _record(_rule("var"), v, (input,), {"dims": dims, "correction": correction,
                                            "keepdim": keepdim})
    return _ew.sqrt(v)


register_default("std", _std_default)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    """Variance over ``dim``: ``sum(|x - mean|**2) / (N - correction)``.

    ``correction`` defaults to 1 (Bessel's correction, as PyTorch; the Array API default is 0).
    ``unbiased=True/False`` is PyTorch's older spelling of ``correction=1/0``.  When
    ``N - correction <= 0`` the result is inf or NaN, as in PyTorch.  Complex inputs give a
    real result.
    """
    return _var_std("var", None, input, dim, unbiased, keepdim, correction, axis, keepdims)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    """Standard deviation, ``sqrt(var(...))``; the parameters of :func:`var`."""
    return _var_std("std", _std_k, input, dim, unbiased, keepdim, correction, axis, keepdims)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var(...), mean(...))`` in one call (``torch.var_mean``)."""
    v = var(input, dim, unbiased, keepdim, correction=correction)
    d = None if isinstance(dim, builtins.bool) else dim
    return v, mean(input, d, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std(...), mean(...))`` in one call (``torch.std_mean``)."""
    s = std(input, dim, unbiased, keepdim, correction=correction)
    d = None if isinstance(dim, builtins.bool) else dim
    return s, mean(input, d, keepdim)


# --------------------------------------------------------------------------- logsumexp ---
_lse_k = kernels("logsumexp")


def _logsumexp_default(input, dims, keepdim):
    if _reduced_size(input._data.shape, dims) == 0:
        return _ew.add(sum(input, dims, keepdim), float("-inf"))  # log(0), without a warning
    m = amax(input, dims, True)
    m = _ew.where(_ew.isfinite(m), m, 0)  # inf - inf would be nan
    s = sum(_ew.exp(_ew.sub(input, m)), dims, keepdim)
    return _ew.add(_ew.log(s), m if keepdim else amax(m, dims, False))


register_default("logsumexp", _logsumexp_default)


def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log(sum(exp(input)))`` over ``dim``, computed stably (shifted by the maximum).

    Integer and bool inputs are computed in the default float dtype (as PyTorch).  Over no
    elements the result is ``-inf``.
    """
    _tensor(input, "logsumexp")
    dt = input._dtype
    if dt.kind in "bui":
        dt = _DEFAULT[0]
        input = wrap(cast(input, dt), input._device, dt)
    elif dt.is_complex:
        raise TypeError("logsumexp(): complex inputs are not supported (a maximum is not "
                        "defined for them); use real tensors")
    dims = _dims(input, dim, axis, "logsumexp")
    keep = _keep(keepdim, keepdims)
    k = _lse_k[input._device.backend]
    if k is None:
        out = _logsumexp_default(input, dims, keep)
    else:
        out = wrap(k(input._data, dims, keep), input._device, dt)
    if input._ag is not None and _grad_on():
        # one node (exp(x - out)), also over the default's recorded steps
        _record(_rule("logsumexp"), out, (input,), {"dims": dims, "keepdim": keep})
    return out


# ------------------------------------------------------------------------------- norms ---
_vnorm_k = kernels("vector_norm")


def _norm_float_input(op, input, dtype):
    if dtype is not None:
        dt = _dt.to_dtype(dtype)
        if not (dt.is_floating_point or dt.is_complex):
            raise TypeError(f"{op}: dtype must be a floating point or complex dtype, got "
                            f"{dt.name}")
        if dt is input._dtype:
            return input
        if input._ag is not None:
            return input.to(dt)  # recorded, so gradients flow back through the cast
        return wrap(cast(input, dt), input._device, dt)
    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        raise TypeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                        f"{input._dtype.name}; cast first, e.g. x.float()")
    return input


def _ord_value(op, ord):
    if isinstance(ord, str) or isinstance(ord, builtins.bool) or \
            not isinstance(ord, (builtins.int, builtins.float)):
        if isinstance(ord, Tensor) and ord.numel() == 1:
            return builtins.float(ord.item())
        raise ValueError(f"{op}: ord must be a number (a float, inf or -inf) for a vector "
                         f"norm, got {ord!r}")
    return builtins.float(ord)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """The vector ``ord``-norm over ``dim`` (all elements when ``None``): ``sum(|x|**ord) **
    (1/ord)``; ``inf``/``-inf`` give max/min of ``|x|``, ``0`` the count of non-zeros.

    The input must be floating point or complex (or pass ``dtype=``); the result is real.
    """
    op = "linalg.vector_norm"
    _tensor(x, op)
    if dtype is None:
        x = _amp32(x)
    x = _norm_float_input(op, x, dtype)
    o = _ord_value(op, ord)
    dims = _dims(x, dim, axis, op)
    if (o < 0 or math.isinf(o)) and _reduced_size(x._data.shape, dims) == 0:
        raise RuntimeError(f"{op}: cannot compute the {ord} norm on an empty tensor (shape "
                           f"{fmt_shape(x._data.shape)}) because the operation does not "
                           f"have an identity")
    dev = x._device
    keep = _keep(keepdim, keepdims)
    out = wrap(_vnorm_k[dev.backend](x._data, o, dims, keep), dev, x._dtype.to_real())
    if x._ag is not None and _grad_on():
        _record(_rule("vector_norm"), out, (x,), {"ord": o, "dims": dims, "keepdim": keep})
    return out


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """``torch.norm``: a vector or matrix norm of ``input``.

    ``p`` a number (or ``inf``/``-inf``): the vector norm over ``dim`` (all elements when
    ``None``).  ``p='fro'``: the Frobenius norm, i.e. the vector 2-norm over ``dim``.
    ``p='nuc'``: the nuclear norm over the two dims ``dim`` (default the last two).
    See :mod:`polyten.linalg` for ``linalg.norm``/``vector_norm``/``matrix_norm``.
    """
    _tensor(input, "norm")
    if isinstance(p, str):
        if p == "fro":
            if dim is not None and isinstance(dim, (tuple, list)) and len(dim) > 2:
                raise ValueError(f"norm: p='fro' takes at most two dims, got dim={dim!r}")
            return _named(vector_norm, "norm", input, 2, dim, keepdim, dtype=dtype)
        if p == "nuc":
            from .linalg import matrix_norm
            d = (-2, -1) if dim is None else dim
            return matrix_norm(input, "nuc", d, keepdim, dtype=dtype)
        raise ValueError(f"norm: p must be a number, 'fro' or 'nuc', got {p!r}")
    if p is None:
        p = 2
    return _named(vector_norm, "norm", input, p, dim, keepdim, dtype=dtype)


def _named(fn, op, *args, **kwargs):
    """Run ``fn`` and re-word its errors with the user's op name."""
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        msg = str(exc).replace("linalg.vector_norm", op)
        raise type(exc)(msg) from None


# ------------------------------------------------------------------------ all / any ---
_all_k = kernels("all")
_any_k = kernels("any")


def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether all elements over ``dim`` are true (non-zero); bool.  True over no elements."""
    _tensor(input, "all")
    dims = None if dim is None and axis is None else _dims(input, dim, axis, "all")
    return wrap(_all_k[input._device.backend](input._data, dims, _keep(keepdim, keepdims)),
                input._device, _bool)


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether any element over ``dim`` is true (non-zero); bool.  False over no elements."""
    _tensor(input, "any")
    dims = None if dim is None and axis is None else _dims(input, dim, axis, "any")
    return wrap(_any_k[input._device.backend](input._data, dims, _keep(keepdim, keepdims)),
                input._device, _bool)


def count_nonzero(input, dim=None, *, keepdim=False, axis=None, keepdims=None):
    """Number of non-zero elements over ``dim`` (all when ``None``), int64."""
    _tensor(input, "count_nonzero")
    dims = _dims(input, dim, axis, "count_nonzero")
    nz = _ew.ne(input, False if input._dtype is _bool else 0)
    return wrap(_sum_k[input._device.backend](nz._data, dims, _keep(keepdim, keepdims),
                                              "int64"), input._device, _int64)


# ------------------------------------------------------------------------------ scans ---
_cumsum_k = kernels("cumsum")
_cumprod_k = kernels("cumprod")


def _scan(op, k, input, dim, dtype, axis):
    _tensor(input, op)
    if dtype is None:
        input = _amp32(input)
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}(): got both dim={dim!r} and axis={axis!r}; pass one of them")
        dim = axis
    if dim is None:
        raise TypeError(f"{op}(): missing the required argument 'dim' (the dimension to "
                        f"accumulate along), e.g. x.{op}(dim=0)")
    d = normalize_dim(dim, len(input._data.shape), op)
    rd = _result_dtype(op, input, dtype)
    out = wrap(k[input._device.backend](_input_in(input, rd), d, rd.name), input._device, rd)
    if input._ag is not None and _grad_on():
        _record(_rule("cumsum" if k is _cumsum_k else "cumprod"), out, (input,), {"dim": d})
    return out


def cumsum(input, dim=None, *, dtype=None, axis=None):
    """Cumulative sum along ``dim`` (required, as in PyTorch); bool/int accumulate in int64."""
    return _scan("cumsum", _cumsum_k, input, dim, dtype, axis)


def cumprod(input, dim=None, *, dtype=None, axis=None):
    """Cumulative product along ``dim`` (required); bool/int accumulate in int64."""
    return _scan("cumprod", _cumprod_k, input, dim, dtype, axis)


def _cumulative(op, k, identity, x, axis, dtype, include_initial):
    _tensor(x, op)
    nd = len(x._data.shape)
    if nd == 0:
        raise ValueError(f"{op}(): expected a tensor of at least one dimension, got a 0-d "
                         f"tensor")
    if axis is None:
        if nd != 1:
            raise ValueError(f"{op}(): axis is required for a {nd}-d tensor (shape "
                             f"{fmt_shape(x._data.shape)}); pass axis=...")
        axis = 0
    out = _scan(op, k, x, axis, dtype, None)
    if not include_initial:
        return out
    d = normalize_dim(axis, nd, op)
    shape = list(out._data.shape)
    shape[d] = 1
    b = x._device.backend
    first = kernels("full")[b](tuple(shape), identity, out._dtype.name, x._device.index)
    if out._ag is not None:
        from .shape import cat  # recorded
        return cat([wrap(first, x._device, out._dtype), out], d)
    return wrap(kernels("concat")[b]([first, out._data], d), x._device, out._dtype)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_sum``: :func:`cumsum`; ``axis`` may be omitted for 1-D input;
    ``include_initial=True`` prepends the zero."""
    return _cumulative("cumulative_sum", _cumsum_k, 0, x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_prod``: :func:`cumprod`; ``include_initial=True`` prepends one."""
    return _cumulative("cumulative_prod", _cumprod_k, 1, x, axis, dtype, include_initial)


# ----------------------------------------------------------------------- Tensor methods ---
TENSOR_METHODS = {
    "sum": sum, "prod": prod, "mean": mean, "nansum": nansum, "nanmean": nanmean,
    "max": max, "min": min, "amax": amax, "amin": amin, "argmax": argmax, "argmin": argmin,
    "median": median, "var": var, "std": std, "logsumexp": logsumexp, "norm": norm,
    "all": all, "any": any, "count_nonzero": count_nonzero, "cumsum": cumsum,
    "cumprod": cumprod,
}
