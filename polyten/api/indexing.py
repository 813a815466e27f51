"""Indexing: ``tensor[key]``, ``tensor[key] = value``, gather/scatter, masks, sort, unique.

Keys are normalised here, in one function (:func:`_parse_key`), for every backend: ints and
slices are checked (PyTorch forbids negative steps), index tensors are bounds-checked and
cast to int64, bool masks are checked against the dims they cover, and the getitem/setitem
kernels receive native arrays only.  Semantics are PyTorch's, which differ from NumPy's in
one place: ints are applied first (as ``select``), so ``x[0, :, idx]`` has shape
``(x.shape[1], len(idx))`` -- NumPy would put ``len(idx)`` first.

Basic indexing (ints, slices, ``None``, ``...``) returns views; indexing with tensors or
lists returns copies, as in PyTorch.  In-place writes (``x[k] = v``, ``scatter_``,
``masked_fill_``, ``x.add_(y)``) write into the tensor's memory, so they are visible through
every view of it.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections import namedtuple

from ..dispatch.checks import check_range as _check_range
from ..dispatch.checks import indices_checked as _INDICES_CHECKED
from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.views import note_view as _note_view
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from ._core import (check_inplace, Tensor, as_operand, broadcast_shapes, cast, describe, device_mismatch,
                    dim_or_axis, is_scalar, normalize_dim, scalar_value, wrap)

__all__ = ["gather", "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add",
           "index_put", "masked_fill",
           "masked_select", "take", "take_along_dim", "take_along_axis", "nonzero", "argwhere",
           "one_hot", "sort", "argsort", "topk", "unique", "unique_values", "unique_counts",
           "unique_inverse", "unique_all", "searchsorted", "isin"]

_getitem = kernels("getitem")
_setitem = kernels("setitem")
_gather = kernels("gather")
_scatter = kernels("scatter")
_scatter_add = kernels("scatter_add")
_scatter_reduce = kernels("scatter_reduce")
_nonzero = kernels("nonzero")
_sort = kernels("sort")
_topk = kernels("topk")
_unique = kernels("unique")
_masked_fill = kernels("masked_fill")
_reshape = kernels("reshape")
_expand = kernels("expand")
_amin = kernels("amin")
_amax = kernels("amax")
_to_host = kernels("to_host")
_full = kernels("full")
_searchsorted = kernels("searchsorted")
_isin = kernels("isin")
_astype_k = kernels("astype")
_copy_k = kernels("copy")

_int64 = _dt.int64
_bool = _dt.bool
_index = operator.index
_SEQ = (tuple, list)
_ELL = (Ellipsis,)
_FULL = slice(None)

SortResult = namedtuple("sort", ("values", "indices"))
TopkResult = namedtuple("topk", ("values", "indices"))
UniqueAllResult = namedtuple("UniqueAllResult", ("values", "indices", "inverse_indices",
                                                 "counts"))
UniqueCountsResult = namedtuple("UniqueCountsResult", ("values", "counts"))
UniqueInverseResult = namedtuple("UniqueInverseResult", ("values", "inverse_indices"))

_GETITEM = _rule("getitem")  # basic (view) keys
_INDEX = _rule("index")  # keys with index tensors or masks


def _grad(rule, out: Tensor, x: Tensor, params) -> Tensor:
    """Record ``out = op(x)`` for autograd (only when ``x`` takes part in a graph)."""
    if x._ag is not None and _grad_on():
        _record(rule, out, (x,), params)
    return out


def _flat_positions(shape, device, k1=None, k2=None, flat=False, expand=None) -> Tensor:
    """The flat positions (int64) of the elements an indexing op picks from a tensor of
    ``shape``: the same key applied to ``arange(numel).reshape(shape)`` (used by the
    gradients of advanced indexing, take and masked_select)."""
    from .creation import arange
    backend = device.backend
    pos = arange(_numel(shape), dtype=_int64, device=device)._data
    if not flat:
        pos = _reshape[backend](pos, tuple(shape))
    if expand is not None:
        pos = _expand[backend](pos, tuple(expand))
    if k1 is not None:
        pos = _getitem[backend](pos, k1)
    if k2 is not None:
        pos = _getitem[backend](pos, k2)
    return wrap(pos, device, _int64)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _check(x, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")


def _same_device(op: str, x: Tensor, *others) -> None:
    for o in others:
        if isinstance(o, Tensor) and o._device is not x._device:
            raise device_mismatch(op, (x,) + others)


# --------------------------------------------------------------------------- index values ---
def _index_range(data, backend):
    """(min, max) of a non-empty native integer array, as Python ints."""
    lo = _to_host[backend](_amin[backend](data, None, False)).item()
    hi = _to_host[backend](_amax[backend](data, None, False)).item()
    return builtins.int(lo), builtins.int(hi)


def _bounds(data, size: int, dim: int, backend, op: str, negative: bool):
    """Check every index in ``data`` addresses dim ``dim`` of ``size``; returns the min (or,
    on a backend that defers value checks, a bound on it: -1 when negatives are allowed).

    ``negative`` allows ``-size <= i < 0`` (tensor[...], take); gather/scatter/index_select
    do not, as in PyTorch.  On a backend with ``deferred_checks`` (a GPU, whose array library
    wraps out-of-range indices around rather than reading out of bounds -- CuPy does) the
    check is a flag computed on the device and raised at the next host read
    (``polyten.dispatch.checks``), so indexing never waits for the device.
    """
    if _numel(data.shape) == 0:
        return 0
    if _INDICES_CHECKED.depth:  # checked before (polyten.dispatch.checks.indices_checked)
        return -1 if negative else 0
    if backend.deferred_checks:
        low = -size if negative else 0
        _check_range(backend, data, low, size, None,
                     lambda: _bounds_error(data, size, dim, backend, op, low))
        return -1 if negative else 0  # unknown here: callers normalise negative indices
    lo, hi = _index_range(data, backend)
    if hi < size and lo >= (-size if negative else 0):
        return lo
    raise _bounds_error(data, size, dim, backend, op, -size if negative else 0, lo, hi)


def _bounds_error(data, size, dim, backend, op, low, lo=None, hi=None) -> IndexError:
    if lo is None:
        lo, hi = _index_range(data, backend)
    bad = hi if hi >= size else lo
    return IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size "
                      f"{size}")


def _int_index(index, like: Tensor, op: str, what: str = "index") -> Tensor:
    """An integer index tensor (lists and arrays converted) on ``like``'s device."""
    if not isinstance(index, Tensor):
        if isinstance(index, _SEQ) and _empty_seq(index):
            from .creation import asarray
            index = asarray(index, dtype=_int64, device=like._device)
        else:
            index = as_operand(index, like, op)
    elif index._device is not like._device:
        raise device_mismatch(op, (like, index))
    if index._dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer tensor (int64 or int32), got "
                        f"{describe(index)}; cast it with .long()")
    return index


def _empty_seq(obj) -> builtins.bool:
    while isinstance(obj, _SEQ):
        if not obj:
            return True
        obj = obj[0]
    return False


def _as_int64(index: Tensor):
    return index._data if index._dtype is _int64 else cast(index, _int64)


# ------------------------------------------------------------------------ key normalising ---
# parsed key entries: (kind, value) with kind one of
#   "i" int (non-negative), "s" slice, "n" None, "e" Ellipsis, "a" int64 array, "m" bool mask
def _convert_entry(k, x: Tensor, op: str):
    if k is None:
        return "n", None
    if k is Ellipsis:
        return "e", Ellipsis
    c = k.__class__
    if c is slice:
        try:
            start, stop, step = (v if v is None else _index(v) for v in (k.start, k.stop, k.step))
        except TypeError:
            raise TypeError(f"{op}: slice indices must be integers or None, got {k!r}") from None
        if step is not None and step <= 0:
            raise ValueError(f"{op}: step must be greater than zero, got {step} (negative "
                             f"steps are not supported, as in PyTorch; use flip())")
        return "s", slice(start, stop, step)
    if c is builtins.bool:
        from .creation import asarray
        return "m", asarray(k, device=x._device)._data
    if c is builtins.int:
        return "i", k
    if isinstance(k, Tensor):
        if k._device is not x._device:
            raise device_mismatch(op, (x, k))
        kind = k._dtype.kind
        if kind == "b":
            return "m", k._data
        if kind == "i":
            return "a", _as_int64(k)
        if kind == "u":
            raise IndexError(f"{op}: uint8 index tensors are ambiguous (PyTorch reads them as "
                             f"masks, NumPy as indices); use .bool() for a mask or .long() "
                             f"for indices")
        raise IndexError(f"{op}: tensors used as indices must be integer (int64/int32) or bool "
                         f"tensors, got {describe(k)}")
    if isinstance(k, _SEQ):
        if _empty_seq(k):
            from .creation import asarray
            return _convert_entry(asarray(k, dtype=_int64, device=x._device), x, op)
        if all(isinstance(v, (builtins.int, builtins.bool)) for v in k) or \
                any(isinstance(v, (_SEQ, Tensor)) for v in k):
            return _convert_entry(as_operand(k, x, op), x, op)
    if hasattr(k, "__index__") and getattr(k, "ndim", 0) == 0:
        return "i", _index(k)  # NumPy integers select, as Python ints do
    if hasattr(k, "__array__") or hasattr(k, "__dlpack__"):
        return _convert_entry(as_operand(k, x, op), x, op)
    raise TypeError(f"{op}: only integers, slices (:), None, ellipsis (...), and integer or "
                    f"bool tensors are valid indices, got {type(k).__name__} {k!r}")


def _fast_basic(shape: tuple, key: tuple):
    """The native key for a tuple of in-range ints, plain slices, None and one ``...``; None
    when anything needs the full treatment (including every error) in :func:`_parse_key`."""
    consumed = 0
    ell = False
    for k in key:
        c = k.__class__
        if c is builtins.int:
            consumed += 1
        elif c is slice:
            st, sp, stp = k.start, k.stop, k.step
            if not ((st is None or st.__class__ is builtins.int)
                    and (sp is None or sp.__class__ is builtins.int)
                    and (stp is None or (stp.__class__ is builtins.int and stp > 0))):
                return None
            consumed += 1
        elif k is Ellipsis:
            if ell:
                return None
            ell = True
        elif k is not None:
            return None
    n = len(shape)
    if consumed > n:
        return None
    out = list(key)
    d = 0
    for j, k in enumerate(key):
        if k.__class__ is builtins.int:
            s = shape[d]
            if k < 0:
                k += s
                if k < 0:
                    return None
                out[j] = k
            elif k >= s:
                return None
            d += 1
        elif k is Ellipsis:
            d += n - consumed
        elif k is not None:
            d += 1
    if not ell:
        out.append(Ellipsis)
    return tuple(out)


def _parse_key(x: Tensor, key, op: str):
    """Normalise ``key`` for ``x``: returns ``(items, key1, key2)``.

    ``key1`` is the native key for the getitem/setitem kernel.  When the key mixes ints with
    index tensors, PyTorch applies the ints first: then ``key1`` is the basic part (a view)
    and ``key2`` the advanced part, applied to that view; otherwise ``key2`` is None.
    """
    if key.__class__ is not tuple:
        key = (key,)
    shape = x._data.shape
    ndim = len(shape)
    items = [_convert_entry(k, x, op) for k in key]
    consumed = 0
    n_ell = 0
    has_int = has_adv = False
    for kind, v in items:
        if kind == "i" or kind == "s":
            consumed += 1
            has_int = has_int or kind == "i"
        elif kind == "a":
            consumed += 1
            has_adv = True
        elif kind == "m":
            consumed += len(v.shape)
            has_adv = True
        elif kind == "e":
            n_ell += 1
    if n_ell > 1:
        raise IndexError(f"{op}: an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        if ndim == 0 and has_int:
            raise IndexError(f"{op}: invalid index of a 0-dim tensor; use tensor.item() to get "
                             f"its value")
        raise IndexError(f"{op}: too many indices for tensor of dimension {ndim} (shape "
                         f"{fmt_shape(shape)}): the key indexes {consumed} dimensions")
    backend = x._device.backend
    d = 0
    out = []
    for j, (kind, v) in enumerate(items):
        if kind == "i":
            size = shape[d]
            if v < -size or v >= size:
                raise IndexError(f"{op}: index {v} is out of bounds for dimension {d} with "
                                 f"size {size}")
            if v < 0:
                v += size
                items[j] = ("i", v)
            d += 1
        elif kind == "s":
            d += 1
        elif kind == "e":
            d += ndim - consumed
        elif kind == "a":
            _bounds(v, shape[d], d, backend, op, True)
            d += 1
        elif kind == "m":
            k = len(v.shape)
            if tuple(v.shape) != tuple(shape[d:d + k]):
                raise IndexError(f"{op}: the shape of the mask {fmt_shape(v.shape)} at index "
                                 f"{j} does not match the shape of the indexed tensor "
                                 f"{fmt_shape(shape)} at dimension {d}")
            d += k
        out.append(v)
    if not has_adv:
        if n_ell == 0:
            out.append(Ellipsis)  # so that all-int keys give 0-d views, not scalars
        return items, tuple(out), None
    if sum(1 for kind, _ in items if kind in "am") > 1:
        _adv_shape(items, backend, op)  # the index tensors must broadcast together
    if not has_int:
        # no trailing Ellipsis here: advanced indexing always returns arrays, and NumPy's
        # fast path for a lone mask does not take (mask, ...)
        return items, tuple(out), None
    k1, k2 = [], []
    for kind, v in items:
        if kind == "i":
            k1.append(v)
        elif kind == "s" or kind == "n":
            k1.append(v)
            k2.append(_FULL)
        elif kind == "e":
            k1.append(v)
            k2.append(v)
        elif kind == "a":
            k1.append(_FULL)
            k2.append(v)
        else:
            k1.extend((_FULL,) * len(v.shape))
            k2.append(v)
    if n_ell == 0:
        k1.append(Ellipsis)
    return items, tuple(k1), tuple(k2)


def _mask_count(mask, backend) -> int:
    return _nonzero[backend](mask).shape[0]


def _adv_shape(items, backend, op: str) -> tuple:
    shapes = []
    for kind, v in items:
        if kind == "a":
            shapes.append(tuple(v.shape))
        elif kind == "m":
            shapes.append((_mask_count(v, backend),))
    try:
        return tuple(broadcast_shapes(*shapes, op=op))
    except ValueError:
        raise IndexError(f"{op}: shape mismatch: indexing tensors could not be broadcast "
                         f"together with shapes {', '.join(fmt_shape(s) for s in shapes)}") \
            from None


def _region_shape(items, shape: tuple, backend, op: str) -> tuple:
    """The shape ``x[key]`` has (PyTorch semantics), without computing it."""
    ndim = len(shape)
    consumed = sum(1 if kind in "isa" else (len(v.shape) if kind == "m" else 0)
                   for kind, v in items)
    out = []
    adv_pos = []
    d = 0
    saw_ell = False
    for kind, v in items:
        if kind == "i":
            d += 1
        elif kind == "s":
            out.append(len(range(*v.indices(shape[d]))))
            d += 1
        elif kind == "n":
            out.append(1)
        elif kind == "e":
            k = ndim - consumed
            out.extend(shape[d:d + k])
            d += k
            saw_ell = True
        else:
            adv_pos.append(len(out))
            out.append(None)
            d += 1 if kind == "a" else len(v.shape)
    if not saw_ell:
        out.extend(shape[d:])
    if not adv_pos:
        return tuple(out)
    b = _adv_shape(items, backend, op)
    adjacent = adv_pos == list(range(adv_pos[0], adv_pos[0] + len(adv_pos)))
    rest = [s for s in out if s is not None]
    if adjacent:
        first = adv_pos[0]
        return tuple(rest[:first]) + b + tuple(rest[first:])
    return b + tuple(rest)


def _write_error(op: str, exc: Exception) -> RuntimeError:
    msg = str(exc)
    if "read-only" in msg or "readonly" in msg:
        return RuntimeError(f"{op}: unsupported operation: the tensor written to is a broadcast "
                            f"(expanded) view in which several elements share one memory "
                            f"location. Please clone() the tensor before writing to it")
    return RuntimeError(f"{op}: the backend could not write the values: {msg}")


def _assign_all(dst: Tensor, src: Tensor, op: str = "in-place operation") -> None:
    """Write ``src`` (same dtype, broadcastable) into all of ``dst``, in place."""
    try:
        _setitem[dst._device.backend](dst._data, _ELL, src._data)
    except ValueError as exc:
        raise _write_error(op, exc) from None


def _scalar_for(value, dt, op: str):
    """A Python scalar of ``dt``'s kind, as PyTorch converts values written into a tensor."""
    v = scalar_value(value)
    k = dt.kind
    if k == "b":
        return builtins.bool(v)
    if isinstance(v, builtins.complex) and k != "c":
        raise TypeError(f"{op}: can't write the complex value {v!r} into a {dt.name} tensor; "
                        f"take .real first or use a complex tensor")
    if k in "iu":
        if isinstance(v, builtins.float):
            if not math.isfinite(v):
                raise ValueError(f"{op}: cannot write {v} into a {dt.name} tensor (integers "
                                 f"have no nan/inf)")
            v = builtins.int(v)
        v = builtins.int(v)
        info = _dt.iinfo(dt)
        if not info.min <= v <= info.max:
            raise OverflowError(f"{op}: value {v} cannot be converted to type {dt.name} without "
                                f"overflow (range {info.min}..{info.max})")
        return v
    if k == "f":
        return builtins.float(v)
    return builtins.complex(v)


# ----------------------------------------------------------------- __getitem__/__setitem__ ---
_GET = "tensor[...]"
_PY_SCALARS = frozenset((builtins.int, builtins.float, builtins.bool, builtins.complex))
_SET = "tensor[...] = value"


def _new_counter(t):
    v = t._version = [0]
    return v


def __getitem__(self, key):
    """``tensor[key]``: views for ints, slices, ``None`` and ``...``; copies for index tensors,
    lists and bool masks.  Negative steps raise ``ValueError`` (use :func:`flip`)."""
    c = key.__class__
    data = self._data
    if c is builtins.int:
        shape = data.shape
        if shape:
            n = shape[0]
            if -n <= key < n:
                out = wrap(_getitem[self._device.backend](data, (key, Ellipsis)),
                           self._device, self._dtype)
                out._version = self._version or _new_counter(self)
                if _grad_on():
                    _note_view(self, out, ("key", (key, Ellipsis)))
                if self._ag is not None and _grad_on():
                    _record(_GETITEM, out, (self,), {"key": (key, Ellipsis)})
                return out
    elif c is slice:
        st, sp, stp = key.start, key.stop, key.step
        if ((st is None or st.__class__ is builtins.int)
                and (sp is None or sp.__class__ is builtins.int)
                and (stp is None or (stp.__class__ is builtins.int and stp > 0)) and data.shape):
            out = wrap(_getitem[self._device.backend](data, (key, Ellipsis)), self._device,
                       self._dtype)
            out._version = self._version or _new_counter(self)
            if _grad_on():
                _note_view(self, out, ("key", (key, Ellipsis)))
            if self._ag is not None and _grad_on():
                _record(_GETITEM, out, (self,), {"key": (key, Ellipsis)})
            return out
    elif c is tuple:
        k = _fast_basic(data.shape, key)
        if k is not None:
            out = wrap(_getitem[self._device.backend](data, k), self._device, self._dtype)
            out._version = self._version or _new_counter(self)
            if _grad_on():
                _note_view(self, out, ("key", k))
            if self._ag is not None and _grad_on():
                _record(_GETITEM, out, (self,), {"key": k})
            return out
    items, k1, k2 = _parse_key(self, key, _GET)
    backend = self._device.backend
    out = _getitem[backend](data, k1)
    if k2 is not None:
        out = _getitem[backend](out, k2)
    out = wrap(out, self._device, self._dtype)
    if k2 is None and not any(kind == "a" or kind == "m" for kind, _ in items):
        out._version = self._version or _new_counter(self)  # basic indexing: a view
        if _grad_on():
            _note_view(self, out, ("key", k1))
    if self._ag is not None and _grad_on():
        if k2 is None and not any(kind == "a" or kind == "m" for kind, _ in items):
            _record(_GETITEM, out, (self,), {"key": k1})
        else:
            _record(_INDEX, out, (self,), {"k1": k1, "k2": k2})
    return out


def __setitem__(self, key, value):
    """``tensor[key] = value``, in place: ``value`` is a number or a tensor (cast to this
    tensor's dtype) broadcastable to the indexed region."""
    if (self._ag is not None or (value.__class__ not in _PY_SCALARS and
                                 getattr(value, "_ag", None) is not None)) and _grad_on():
        if _graph_inplace(_SET, self, _index_put, (key, value)) is not None:
            return
    check_inplace("__setitem__", self)
    _setitem_raw(self, key, value)


def _graph_inplace(iname: str, t: Tensor, fn, args: tuple, kwargs=None):
    """An in-place op where autograd may be involved (PyTorch's rebase, see
    ``elementwise._graph_inplace``); ``None`` when no operand requires grad.  Only floating
    tensors take part in a graph: writing into an integer tensor keeps no gradient."""
    if t._dtype.kind not in "fc":
        return None
    from .elementwise import _graph_inplace as rebase
    return rebase(iname, t, fn, args, kwargs)


_INDEX_PUT = _rule("index_put")


def _index_put(x: Tensor, key, value) -> Tensor:
    """``x`` with ``x[key] = value`` applied to a copy, recorded for autograd: the out-of-place
    form of ``__setitem__`` that the in-place write of a graph tensor is rebased on."""
    backend = x._device.backend
    out = wrap(_copy_k[backend](x._data), x._device, x._dtype)
    _setitem_raw(out, key, value)
    if _grad_on():
        items, k1, k2 = _parse_key(x, key, _SET)
        adv = k2 is not None or any(kind == "a" or kind == "m" for kind, _ in items)
        v = value if isinstance(value, Tensor) else None
        _record(_INDEX_PUT, out, (x, v), {"k1": k1, "k2": k2, "adv": adv})
    return out


def _value_shape(vshape: tuple, region: tuple):
    """The shape a written value of shape ``vshape`` takes to broadcast to the indexed
    ``region`` (leading 1s dropped, as PyTorch allows), or ``None`` if it does not."""
    stripped = vshape
    while len(stripped) > len(region) and stripped[0] == 1:
        stripped = stripped[1:]
    ok = len(stripped) <= len(region) and all(
        a == b or a == 1 for a, b in zip(stripped[::-1], region[::-1]))
    return stripped if ok else None


def _setitem_raw(self, key, value):
    dt = self._dtype
    backend = self._device.backend
    if value.__class__ in _PY_SCALARS:
        k = key if key.__class__ is tuple else (key,)
        k = _fast_basic(self._data.shape, k)
        if k is not None:  # hot path: x[i, :] = number
            v = _scalar_for(value, dt, _SET)
            try:
                _setitem[backend](self._data, k, v)
            except ValueError as exc:
                raise _write_error(_SET, exc) from None
            return
    items, k1, k2 = _parse_key(self, key, _SET)
    if isinstance(value, Tensor) or not is_scalar(value):
        if not isinstance(value, Tensor):
            value = as_operand(value, self, _SET)
        elif value._device is not self._device:
            raise device_mismatch(_SET, (self, value))
        if value._dtype.is_complex and not dt.is_complex:
            raise TypeError(f"{_SET}: can't write a complex tensor into a {dt.name} tensor; "
                            f"take .real first")
        region = _region_shape(items, self._data.shape, backend, _SET)
        vshape = tuple(value._data.shape)
        v = cast(value, dt)
        stripped = _value_shape(vshape, region)
        if stripped is None:
            raise ValueError(f"{_SET}: shape mismatch: value tensor of shape {fmt_shape(vshape)} "
                             f"cannot be broadcast to indexing result of shape "
                             f"{fmt_shape(region)}")
        if stripped != vshape:
            v = _reshape[backend](v, stripped)
    else:
        v = _scalar_for(value, dt, _SET)
    target = self._data
    if k2 is not None:
        target = _getitem[backend](target, k1)
        k1 = k2
    try:
        _setitem[backend](target, k1, v)
    except ValueError as exc:
        raise _write_error(_SET, exc) from None


# ------------------------------------------------------------------------- gather/scatter ---
def _dim_index(x: Tensor, dim, index, op: str):
    """Common checks of gather/scatter: (dim, int64 native index)."""
    _check(x, op)
    index = _int_index(index, x, op)
    n = len(x._data.shape)
    d = normalize_dim(dim, n, op)
    ishape = index._data.shape
    if len(ishape) != n:
        raise ValueError(f"{op}: index tensor must have the same number of dimensions as the "
                         f"input: index has shape {fmt_shape(ishape)}, input "
                         f"{fmt_shape(x._data.shape)}")
    return d, index


def gather(input, dim, index, *, sparse_grad=False) -> Tensor:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` (for ``dim == 1``): values of ``input``
    picked along ``dim`` by ``index``, which has ``input``'s number of dims and no larger sizes
    except along ``dim``."""
    op = "gather"
    d, index = _dim_index(input, dim, index, op)
    xs, ishape = input._data.shape, index._data.shape
    for j in range(len(xs)):
        if j != d and ishape[j] > xs[j]:
            raise ValueError(f"gather: index of shape {fmt_shape(ishape)} must be no larger "
                             f"than the input {fmt_shape(xs)} apart from dimension {d} (size "
                             f"{ishape[j]} > {xs[j]} at dimension {j})")
    backend = input._device.backend
    idx = _as_int64(index)
    _bounds(idx, xs[d] if xs else 1, d, backend, op, False)
    out = wrap(_gather[backend](input._data, d, idx), input._device, input._dtype)
    if input._ag is not None and _grad_on():
        _record(_rule("gather"), out, (input,),
                {"dim": d, "index": wrap(idx, input._device, _int64)})
    return out


def _scatter_args(input, dim, index, src, value, op: str):
    d, index = _dim_index(input, dim, index, op)
    if src is None:
        src = value
    elif value is not None:
        raise TypeError(f"{op}: pass either src or value, not both")
    if src is None:
        raise TypeError(f"{op}: missing src (a tensor) or value (a number)")
    xs, ishape = input._data.shape, index._data.shape
    backend = input._device.backend
    if isinstance(src, Tensor):
        if src._device is not input._device:
            raise device_mismatch(op, (input, index, src))
        if src._dtype is not input._dtype:
            raise TypeError(f"{op}: src dtype {src._dtype.name} must match the input's dtype "
                            f"{input._dtype.name}; cast it with src.to({input._dtype!r})")
        ss = src._data.shape
        if len(ss) != len(xs):
            raise ValueError(f"{op}: src must have the same number of dimensions as the input: "
                             f"src has shape {fmt_shape(ss)}, input {fmt_shape(xs)}")
        for j in range(len(xs)):
            if ishape[j] > ss[j] or (j != d and ishape[j] > xs[j]):
                raise ValueError(f"{op}: index of shape {fmt_shape(ishape)} must be no larger "
                                 f"than the input {fmt_shape(xs)} apart from dimension {d}, "
                                 f"and no larger than src {fmt_shape(ss)} (dimension {j})")
        sv = src._data
    else:
        if not is_scalar(src):
            raise TypeError(f"{op}: src must be a tensor or a number, got {describe(src)}")
        for j in range(len(xs)):
            if j != d and ishape[j] > xs[j]:
                raise ValueError(f"{op}: index of shape {fmt_shape(ishape)} must be no larger "
                                 f"than the input {fmt_shape(xs)} apart from dimension {d}")
        sv = _scalar_for(src, input._dtype, op)
    idx = _as_int64(index)
    _bounds(idx, xs[d] if xs else 1, d, backend, op, False)
    return d, idx, sv


def scatter(input, dim, index, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of ``input`` with ``src`` (a tensor, or a number ``value``) written at ``index``
    along ``dim`` (``torch.scatter``): ``out[i][index[i][j]] = src[i][j]`` for ``dim == 1``.

    ``reduce='add'`` accumulates instead (see :func:`scatter_add`), ``reduce='multiply'``
    multiplies (``scatter_reduce(..., 'prod')``).  With repeated indices, which value lands is
    unspecified (as in PyTorch).
    """
    if reduce is not None:
        if reduce == "multiply":
            return _scatter_multiply(input, dim, index, src, value)
        if reduce != "add":
            raise ValueError(f"scatter: reduce must be None, 'add' or 'multiply', got "
                             f"{reduce!r} (scatter_reduce has 'sum', 'prod', 'mean', 'amax' "
                             f"and 'amin')")
        return _scatter_add_impl(input, dim, index, src if src is not None else value,
                                 "scatter")
    d, idx, sv = _scatter_args(input, dim, index, src, value, "scatter")
    out = wrap(_scatter[input._device.backend](input._data, d, idx, sv), input._device,
               input._dtype)
    return _scatter_record("scatter", out, input, src, d, idx)


def _scatter_record(name, out, input, src, d, idx):
    if (input._ag is not None or getattr(src, "_ag", None) is not None) and _grad_on():
        _record(_rule(name), out, (input, src if isinstance(src, Tensor) else None),
                {"dim": d, "index": wrap(idx, input._device, _int64)})
    return out


def _scatter_add_impl(input, dim, index, src, op) -> Tensor:
    _check(input, op)
    if not isinstance(src, Tensor) and not is_scalar(src):
        raise TypeError(f"{op}: src must be a tensor, got {describe(src)}")
    if input._dtype is _bool:
        raise TypeError(f"{op}: not supported for bool tensors; cast first, e.g. "
                        f"x.to(polyten.int64)")
    d, idx, sv = _scatter_args(input, dim, index, src, None, op)
    out = wrap(_scatter_add[input._device.backend](input._data, d, idx, sv), input._device,
               input._dtype)
    return _scatter_record("scatter_add", out, input, src, d, idx)


def scatter_add(input, dim, index, src) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim``; repeated indices
    accumulate (``torch.scatter_add``)."""
    return _scatter_add_impl(input, dim, index, src, "scatter_add")


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True) -> Tensor:
    """A copy of ``input`` with the values of ``src`` reduced into it at ``index`` along
    ``dim`` (``torch.scatter_reduce``): for ``dim == 1``, ``out[i][index[i][j]]`` combines
    ``src[i][j]`` for every ``j`` that points there.

    Parameters
    ----------
    input : Tensor
        The tensor written into (a copy is returned); real, not bool.
    dim : int
        The dimension ``index`` indexes.
    index : Tensor
        int64 (or any integer) indices, with ``input``'s number of dims; along the other dims
        no larger than ``input``, and no larger than ``src`` in every dim.
    src : Tensor
        The values, of ``input``'s dtype.
    reduce : str
        ``'sum'``, ``'prod'``, ``'mean'`` (integers round down, as PyTorch), ``'amax'`` or
        ``'amin'`` (a NaN among the values gives NaN).
    include_self : bool, optional
        Whether ``input``'s own values at the written positions take part in the reduction
        (default ``True``).  Positions no index points to keep ``input``'s value either way.

    Gradients flow to ``input`` and ``src`` for every reduction: ``amax`` / ``amin`` share
    it evenly among the values equal to the result, ``prod`` is exact with zeros.
    """
    return _scatter_reduce_impl(input, dim, index, src, reduce, include_self,
                                "scatter_reduce")


def _scatter_reduce_impl(input, dim, index, src, reduce, include_self, op) -> Tensor:
    _check(input, op)
    if reduce not in _REDUCTIONS:
        raise ValueError(f"{op}: reduce must be one of {', '.join(map(repr, _REDUCTIONS))}, "
                         f"got {reduce!r}")
    if not isinstance(src, Tensor):
        raise TypeError(f"{op}: src must be a tensor of the input's dtype, got "
                        f"{describe(src)}; for one value everywhere pass "
                        f"polyten.full(index.shape, value, dtype=input.dtype)")
    if input._dtype is _bool or input._dtype.is_complex:
        raise TypeError(f"{op}: not supported for {input._dtype.name} tensors; cast first, "
                        f"e.g. x.to(polyten.int64) or x.to(polyten.float32)")
    d, idx, sv = _scatter_args(input, dim, index, src, None, op)
    include_self = builtins.bool(include_self)
    out = wrap(_scatter_reduce[input._device.backend](input._data, d, idx, sv, reduce,
                                                      include_self),
               input._device, input._dtype)
    if (input._ag is not None or src._ag is not None) and _grad_on():
        _record(_rule("scatter_reduce"), out, (input, src),
                {"dim": d, "index": wrap(idx, input._device, _int64), "reduce": reduce,
                 "include_self": include_self})
    return out


def _scatter_multiply(input, dim, index, src, value) -> Tensor:
    """``scatter(..., reduce='multiply')`` (PyTorch's older spelling of a product)."""
    if src is not None and value is not None:
        raise TypeError("scatter: pass either src or value, not both")
    if src is None:
        src = value
    if not isinstance(src, Tensor):
        _check(input, "scatter")
        if not is_scalar(src):
            raise TypeError(f"scatter: src must be a tensor or a number, got {describe(src)}")
        index = _int_index(index, input, "scatter")
        from .creation import full
        src = full(tuple(index._data.shape), src, dtype=input._dtype, device=input._device)
    return _scatter_reduce_impl(input, dim, index, src, "prod", True, "scatter")


def _scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    if _inplace_grad(self, src) and _graph_inplace(
            "scatter_reduce_", self, scatter_reduce, (dim, index, src, reduce),
            {"include_self": include_self}) is not None:
        return self
    check_inplace("scatter_reduce_", self)
    _assign_all(self, _scatter_reduce_impl(self, dim, index, src, reduce, include_self,
                                           "scatter_reduce_"), "scatter_reduce_")
    return self


def _inplace_grad(self, other) -> builtins.bool:
    """Whether an in-place op on ``self`` with operand ``other`` involves autograd."""
    return (self._ag is not None or getattr(other, "_ag", None) is not None) and _grad_on()


def _scatter_(self, dim, index, src=None, *, value=None, reduce=None):
    if _inplace_grad(self, src) and _graph_inplace(
            "scatter_", self, scatter, (dim, index, src),
            {"value": value, "reduce": reduce}) is not None:
        return self
    check_inplace("scatter_", self)
    _assign_all(self, scatter(self, dim, index, src, value=value, reduce=reduce), "scatter_")
    return self


def _scatter_add_(self, dim, index, src):
    if _inplace_grad(self, src) and _graph_inplace("scatter_add_", self, scatter_add,
                                                   (dim, index, src)) is not None:
        return self
    check_inplace("scatter_add_", self)
    _assign_all(self, _scatter_add_impl(self, dim, index, src, "scatter_add_"), "scatter_add_")
    return self


def index_select(input, dim, index) -> Tensor:
    """The entries of ``input`` at ``index`` (a 1-D integer tensor) along ``dim``; a copy."""
    op = "index_select"
    _check(input, op)
    index = _int_index(index, input, op)
    xs = input._data.shape
    d = normalize_dim(dim, len(xs), op)
    ishape = index._data.shape
    if len(ishape) > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-D, got shape {fmt_shape(ishape)}")
    backend = input._device.backend
    idx = _as_int64(index)
    _bounds(idx, xs[d] if xs else 1, d, backend, op, False)
    if not xs:
        from .shape import clone
        return clone(input)
    if not ishape:
        idx = _reshape[backend](idx, (1,))
    key = (_FULL,) * d + (idx, Ellipsis)
    out = wrap(_getitem[backend](input._data, key), input._device, input._dtype)
    if input._ag is not None and _grad_on():
        _record(_rule("index_select"), out, (input,),
                {"dim": d, "index": wrap(idx, input._device, _int64)})
    return out


def index_add(input, dim, index, source, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added at ``index`` (1-D) along ``dim``;
    repeated indices accumulate."""
    op = "index_add"
    _check(input, op)
    _check(source, op)
    index = _int_index(index, input, op)
    xs, ss, ishape = input._data.shape, source._data.shape, index._data.shape
    d = normalize_dim(dim, len(xs), op)
    if len(ishape) > 1:
        raise ValueError(f"index_add: index must be 0-d or 1-D, got shape {fmt_shape(ishape)}")
    n = _numel(ishape)
    want = xs[:d] + (n,) + xs[d + 1:] if xs else ()
    if tuple(ss) != tuple(want):
        raise ValueError(f"index_add: source of shape {fmt_shape(ss)} must have the input's "
                         f"shape {fmt_shape(xs)} except along dimension {d}, where its size must "
                         f"be the number of indices ({n}); expected {fmt_shape(want)}")
    if alpha != 1:
        from .elementwise import mul
        source = mul(source, alpha)
    if source._dtype is not input._dtype:
        source = source.to(input._dtype)
    backend = input._device.backend
    idx = _as_int64(index)
    if xs:
        shp = [1] * len(xs)
        shp[d] = n
        idx = _expand[backend](_reshape[backend](idx, tuple(shp)), tuple(ss))
    return _scatter_add_impl(input, d, wrap(idx, input._device, _int64), source, op)


def _index_add_(self, dim, index, source, *, alpha=1):
    if _inplace_grad(self, source) and _graph_inplace(
            "index_add_", self, index_add, (dim, index, source), {"alpha": alpha}) is not None:
        return self
    check_inplace("index_add_", self)
    _assign_all(self, index_add(self, dim, index, source, alpha=alpha), "index_add_")
    return self


def _index_put_key(indices, op: str) -> tuple:
    """``index_put``'s ``indices`` (a tuple or list of index tensors, ``None`` for a whole
    dim) as an indexing key."""
    if isinstance(indices, Tensor) or not isinstance(indices, _SEQ):
        raise TypeError(f"{op}: indices must be a tuple of tensors, one per indexed dim (None "
                        f"for a whole dim), got {describe(indices)}; for one index tensor "
                        f"pass (index,)")
    key = []
    for i, t in enumerate(indices):
        if t is None:
            key.append(_FULL)
        elif isinstance(t, Tensor):
            key.append(t)
        else:
            raise TypeError(f"{op}: indices[{i}] must be a tensor or None, got {describe(t)}")
    return tuple(key)


def _index_put_values(x: Tensor, values, op: str):
    if isinstance(values, Tensor):
        if values._device is not x._device:
            raise device_mismatch(op, (x, values))
        if values._dtype is not x._dtype:
            raise TypeError(f"{op}: values dtype {values._dtype.name} must match the input's "
                            f"dtype {x._dtype.name}; cast them with "
                            f"values.to({x._dtype!r})")
    elif not is_scalar(values):
        raise TypeError(f"{op}: values must be a tensor or a number, got {describe(values)}")
    return values


def index_put(input, indices, values, accumulate=False) -> Tensor:
    """A copy of ``input`` with ``values`` written at ``indices`` (``torch.index_put``):
    ``out[indices] = values``, or with ``accumulate=True``, ``out[indices] += values`` where
    every repeated position accumulates (``x[idx] += v`` keeps only one of them).

    Parameters
    ----------
    input : Tensor
    indices : tuple of Tensor or None
        One integer or bool index tensor per indexed dim, from the first (``None`` takes a
        whole dim), as in ``input[indices]``.
    values : Tensor or number
        Of ``input``'s dtype, broadcastable to the shape of ``input[indices]``.
    accumulate : bool, optional
        Add instead of writing (default ``False``).
    """
    op = "index_put"
    _check(input, op)
    return _index_put_impl(input, _index_put_key(indices, op), values, accumulate, op)


def _index_put_impl(input, key, values, accumulate, op) -> Tensor:
    values = _index_put_values(input, values, op)
    if not accumulate:
        from .shape import clone
        out = clone(input)
        out[key] = values
        return out
    from .creation import arange
    pos = arange(_numel(input._data.shape), device=input._device).reshape(
        tuple(input._data.shape))[key]
    shape = tuple(pos._data.shape)
    if isinstance(values, Tensor):
        vs = tuple(values._data.shape)
        stripped = _value_shape(vs, shape)
        if stripped is None:
            raise ValueError(f"{op}: values of shape {fmt_shape(vs)} cannot be broadcast to "
                             f"the indexed shape {fmt_shape(shape)}")
        values = values.reshape(stripped).expand(shape).reshape(-1)
    flat = input.reshape(-1)
    out = _scatter_add_impl(flat, 0, pos.reshape(-1), values, op)
    return out.reshape(tuple(input._data.shape))


def _index_put_(self, indices, values, accumulate=False):
    op = "index_put_"
    _check(self, op)
    key = _index_put_key(indices, op)
    if not accumulate:
        self[key] = _index_put_values(self, values, op)
        return self
    if _inplace_grad(self, values) and _graph_inplace(
            op, self, index_put, (indices, values), {"accumulate": True}) is not None:
        return self
    check_inplace(op, self)
    _assign_all(self, _index_put_impl(self, key, values, True, op), op)
    return self


# ------------------------------------------------------------------------------- masking ---
def _mask_arg(x: Tensor, mask, op: str):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: mask must be a bool tensor, got {describe(mask)}")
    if mask._device is not x._device:
        raise device_mismatch(op, (x, mask))
    if mask._dtype is not _bool:
        raise TypeError(f"{op}: mask must be a bool tensor, got {mask._dtype.name}; use a "
                        f"comparison (x > 0) or mask.bool()")
    return mask


def _fill_value(x: Tensor, value, op: str):
    if isinstance(value, Tensor):
        if value._data.shape != ():
            raise ValueError(f"{op}: only supports a 0-dimensional value tensor, but got a "
                             f"tensor of shape {fmt_shape(value._data.shape)}")
        value = value.item()
    elif not is_scalar(value):
        raise TypeError(f"{op}: value must be a number or a 0-d tensor, got {describe(value)}")
    return _scalar_for(value, x._dtype, op)


def _device_value(x: Tensor, value) -> bool:
    """Whether a 0-d tensor ``value`` should stay on the device: it lives with ``x`` on a
    backend whose host reads wait for the device (a GPU), and converting it needs none of
    the checks a number gets (its kind is ``x``'s, or an integer / bool into a float)."""
    if not isinstance(value, Tensor) or value._device is not x._device or \
            not x._device.backend.deferred_checks or value._data.shape != ():
        return False
    vk, xk = value._dtype.kind, x._dtype.kind
    return vk == xk or (xk == "f" and vk in "iub")


def _mask_to(x: Tensor, mask: Tensor, op: str):
    xs, ms = x._data.shape, mask._data.shape
    if ms == xs:
        return mask._data
    try:
        b = broadcast_shapes(xs, ms, op=op)
    except ValueError:
        b = None
    if b is None or tuple(b) != tuple(xs):
        raise ValueError(f"{op}: mask of shape {fmt_shape(ms)} cannot be broadcast to the "
                         f"input's shape {fmt_shape(xs)}")
    return _expand[x._device.backend](mask._data, tuple(xs))


def _masked_fill_default(x, mask, value):
    from .creation import full
    from .elementwise import where
    return where(mask, full((), value, dtype=x._dtype, device=x._device), x)


register_default("masked_fill", _masked_fill_default)


def masked_fill(input, mask, value) -> Tensor:
    """A copy of ``input`` with ``value`` where ``mask`` (bool, broadcastable to ``input``) is
    true; ``value`` is a number or a 0-d tensor, converted to ``input``'s dtype."""
    op = "masked_fill"
    _check(input, op)
    mask = _mask_arg(input, mask, op)
    on_device = _device_value(input, value)
    if on_device or (isinstance(value, Tensor) and value._ag is not None and _grad_on() and
                     value.requires_grad):
        # a value that requires grad gets its gradient too, and a value on a GPU is not read
        # on the host: the (recorded) where form
        if not on_device:
            _fill_value(input, value, op)  # the checks a number gets (one host read)
        from .elementwise import where
        _mask_to(input, mask, op)
        return where(mask, value.to(input._dtype), input)
    v = _fill_value(input, value, op)
    m = _mask_to(input, mask, op)
    k = _masked_fill[input._device.backend]
    if k is None:
        return _masked_fill_default(input, wrap(m, input._device, _bool), v)
    return _grad(_rule("masked_fill"), wrap(k(input._data, m, v), input._device, input._dtype),
                 input, {"mask": wrap(m, input._device, _bool)})


def _masked_fill_(self, mask, value):
    op = "masked_fill_"
    if _inplace_grad(self, value) and \
            _graph_inplace(op, self, masked_fill, (mask, value)) is not None:
        return self
    check_inplace(op, self)
    mask = _mask_arg(self, mask, op)
    # a 0-d value on a GPU is written from the device (the backend's setitem with a mask and
    # a 0-d array), not read on the host
    v = cast(value, self._dtype) if _device_value(self, value) else \
        _fill_value(self, value, op)
    m = _mask_to(self, mask, op)
    try:
        _setitem[self._device.backend](self._data, (m,), v)
    except ValueError as exc:
        raise _write_error(op, exc) from None
    return self


def masked_select(input, mask) -> Tensor:
    """The elements of ``input`` where ``mask`` is true, as a 1-D tensor (``input`` and
    ``mask`` broadcast together)."""
    op = "masked_select"
    _check(input, op)
    mask = _mask_arg(input, mask, op)
    xs, ms = input._data.shape, mask._data.shape
    backend = input._device.backend
    x, m = input._data, mask._data
    b = xs
    if xs != ms:
        b = tuple(broadcast_shapes(xs, ms, op=op))
        if b != xs:
            x = _expand[backend](x, b)
        if b != ms:
            m = _expand[backend](m, b)
    return _grad(_rule("masked_select"), wrap(_getitem[backend](x, (m,)), input._device,
                                              input._dtype),
                 input, {"k1": (m,), "expand": None if b == xs else b})


def take(input, index, *, axis=None) -> Tensor:
    """Elements of ``input`` at ``index``.

    Without ``axis`` (PyTorch): ``input`` is read as 1-D and the result has ``index``'s shape.
    With ``axis`` (Array API): entries along ``axis``, like :func:`index_select`.  Negative
    indices count from the end in both.
    """
    op = "take"
    _check(input, op)
    index = _int_index(index, input, op)
    backend = input._device.backend
    idx = _as_int64(index)
    xs = input._data.shape
    if axis is None:
        n = _numel(xs)
        _bounds(idx, n, 0, backend, op, True)
        flat = _reshape[backend](input._data, (n,))
        return _grad(_rule("take"), wrap(_getitem[backend](flat, (idx,)), input._device,
                                         input._dtype), input, {"k1": (idx,), "flat": True})
    d = normalize_dim(axis, len(xs), op)
    if not xs:
        raise ValueError("take: axis= needs a tensor with at least 1 dimension")
    _bounds(idx, xs[d], d, backend, op, True)
    key = (_FULL,) * d + (idx, Ellipsis)
    return _grad(_rule("take"), wrap(_getitem[backend](input._data, key), input._device,
                                     input._dtype), input, {"k1": key})


def _take_along(input, indices, dim, op: str, negative: bool) -> Tensor:
    _check(input, op)
    indices = _int_index(indices, input, op, "indices")
    backend = input._device.backend
    if dim is None:
        from .shape import ravel
        return _take_along(ravel(input), ravel(indices), 0, op, negative)
    xs, ishape = tuple(input._data.shape), tuple(indices._data.shape)
    if len(xs) != len(ishape):
        raise ValueError(f"{op}: input and indices should have the same number of dimensions, "
                         f"got shapes {fmt_shape(xs)} and {fmt_shape(ishape)}")
    d = normalize_dim(dim, len(xs), op)
    if not xs:
        return gather(input, 0, indices)
    s = list(xs)
    s[d] = ishape[d]
    try:
        b = tuple(broadcast_shapes(tuple(s), ishape, op=op))
    except ValueError:
        raise ValueError(f"{op}: input of shape {fmt_shape(xs)} and indices of shape "
                         f"{fmt_shape(ishape)} don't broadcast (apart from dimension "
                         f"{d})") from None
    idx = _as_int64(indices)
    lo = _bounds(idx, xs[d], d, backend, op, negative)
    if lo < 0:
        from .elementwise import add, lt, where
        t = wrap(idx, input._device, _int64)
        idx = where(lt(t, 0), add(t, xs[d]), t)._data
    if b != ishape:
        idx = _expand[backend](idx, b)
    xb = list(b)
    xb[d] = xs[d]
    xb = tuple(xb)
    x = input._data if xb == xs else _expand[backend](input._data, xb)
    return _grad(_rule("take_along_dim"), wrap(_gather[backend](x, d, idx), input._device,
                                               input._dtype),
                 input, {"dim": d, "index": wrap(idx, input._device, _int64), "shape": xb})


def take_along_dim(input, indices, dim=None) -> Tensor:
    """Values of ``input`` at ``indices`` along ``dim`` (the flattened input if None); the two
    broadcast apart from ``dim`` (``torch.take_along_dim``)."""
    return _take_along(input, indices, dim, "take_along_dim", False)


def take_along_axis(x, indices, /, *, axis=-1) -> Tensor:
    """Array API ``take_along_axis``: :func:`take_along_dim` along ``axis``; negative
    indices count from the end."""
    return _take_along(x, indices, axis, "take_along_axis", True)


# --------------------------------------------------------------------------------- search ---
def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements.

    PyTorch's form (default): an int64 tensor of shape ``(n, ndim)``, one row per element in
    C order.  ``as_tuple=True`` gives a tuple of ``ndim`` 1-D index tensors, which is what the
    Array API's ``nonzero`` returns (and what ``x[nonzero(m, as_tuple=True)]`` indexes with).
    """
    _check(input, "nonzero")
    dev = input._device
    data = input._data
    if as_tuple and not data.shape:
        data = _reshape[dev.backend](data, (1,))
    res = _nonzero[dev.backend](data)
    if not as_tuple:
        return wrap(res, dev, _int64)
    k = _getitem[dev.backend]
    return tuple(wrap(k(res, (_FULL, j)), dev, _int64) for j in range(res.shape[1]))


def argwhere(input) -> Tensor:
    """``nonzero(input)``: the ``(n, ndim)`` int64 indices of the non-zero elements."""
    return nonzero(input)


def one_hot(tensor, num_classes=-1) -> Tensor:
    """int64 one-hot encoding: shape ``tensor.shape + (num_classes,)``; ``num_classes=-1``
    uses ``max + 1`` (``torch.nn.functional.one_hot``)."""
    op = "one_hot"
    _check(tensor, op)
    if tensor._dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got "
                        f"{describe(tensor)}; cast with .long()")
    dev = tensor._device
    backend = dev.backend
    idx = _as_int64(tensor)
    shape = tuple(idx.shape)
    empty = _numel(shape) == 0
    if num_classes == -1:
        if empty:
            raise ValueError("one_hot: can not infer the number of classes from an empty "
                             "tensor; pass num_classes")
        lo, hi = _index_range(idx, backend)  # the class count needs the largest value
        num_classes = hi + 1
        _one_hot_check(lo, hi, num_classes)
    else:
        num_classes = _index(num_classes)
        if not empty and backend.deferred_checks:
            # a GPU: checked at the next host read (the scatter wraps what it would reject)
            _check_range(backend, idx, 0, num_classes, None,
                         lambda: _one_hot_error(*_index_range(idx, backend), num_classes))
        elif not empty:
            _one_hot_check(*_index_range(idx, backend), num_classes)
    zeros = _full[backend](shape + (num_classes,), 0, "int64", dev.index)
    if empty or num_classes == 0:
        return wrap(zeros, dev, _int64)
    idx = _reshape[backend](idx, shape + (1,))
    return wrap(_scatter[backend](zeros, len(shape), idx, 1), dev, _int64)


def _one_hot_error(lo: int, hi: int, num_classes: int) -> ValueError:
    if lo < 0:
        return ValueError(f"one_hot: class values must be non-negative, got {lo}")
    return ValueError(f"one_hot: class values must be smaller than num_classes "
                      f"({num_classes}), got {hi}")


def _one_hot_check(lo: int, hi: int, num_classes: int) -> None:
    if lo < 0 or hi >= num_classes:
        raise _one_hot_error(lo, hi, num_classes)


def _real_check(x: Tensor, op: str) -> None:
    if x._dtype.is_complex:
        raise TypeError(f"{op}: complex tensors have no order; sort x.real or x.abs() instead")


def sort(input, dim=-1, descending=False, stable=False, *, axis=None):
    """Sorted values and their indices along ``dim``: a named tuple ``(values, indices)``,
    as ``torch.sort`` (the Array API's ``sort`` returns the values only: use ``.values``).

    ``stable=True`` keeps equal elements in their original order (also when descending);
    otherwise their order is unspecified, as in PyTorch.  NaN sorts as the largest value.
    """
    vals, idx, d = _sort_impl(input, dim, descending, stable, axis, "sort")
    values, indices = wrap(vals, input._device, input._dtype), wrap(idx, input._device, _int64)
    if input._ag is not None and _grad_on():
        _record(_rule("sort"), values, (input,), {"dim": d, "indices": indices,
                                                  "keepdim": True})
    return SortResult(values, indices)


def _sort_impl(input, dim, descending, stable, axis, op: str):
    _check(input, op)
    _real_check(input, op)
    d = normalize_dim(dim_or_axis(dim if axis is None else None, axis, op), input.ndim, op)
    vals, idx = _sort[input._device.backend](input._data, d, builtins.bool(descending),
                                             builtins.bool(stable))
    return vals, idx, d


def argsort(input, dim=-1, descending=False, stable=False, *, axis=None) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (``stable=True``: ties keep their
    order)."""
    idx = _sort_impl(input, dim, descending, stable, axis, "argsort")[1]
    return wrap(idx, input._device, _int64)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices, as a named
    tuple ``(values, indices)``, in sorted order."""
    op = "topk"
    _check(input, op)
    _real_check(input, op)
    xs = input._data.shape
    d = normalize_dim(dim, len(xs), op)
    size = xs[d] if xs else 1
    k = _index(k)
    if not 0 <= k <= size:
        raise ValueError(f"topk: k ({k}) is out of range for dimension {d} with size {size} "
                         f"(input shape {fmt_shape(xs)})")
    vals, idx = _topk[input._device.backend](input._data, k, d, builtins.bool(largest),
                                             builtins.bool(sorted))
    values, indices = wrap(vals, input._device, input._dtype), wrap(idx, input._device, _int64)
    if input._ag is not None and _grad_on():
        _record(_rule("topk"), values, (input,), {"dim": d, "indices": indices,
                                                  "keepdim": True})
    return TopkResult(values, indices)


def _unique_raw(x: Tensor, inverse: builtins.bool, counts: builtins.bool, op: str):
    _check(x, op)
    _real_check(x, op)
    dev = x._device
    v, inv, cnt = _unique[dev.backend](x._data, inverse, counts)
    values = wrap(v, dev, x._dtype)
    if inv is not None:
        inv = wrap(_reshape[dev.backend](inv, tuple(x._data.shape)), dev, _int64)
    if cnt is not None:
        cnt = wrap(cnt, dev, _int64)
    return values, inv, cnt


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The sorted unique elements of ``input`` (flattened), and optionally the inverse indices
    (``input``'s shape) and the counts (``torch.unique``)."""
    if dim is not None:
        raise NotImplementedError("unique: dim= is not supported; unique works on the "
                                  "flattened tensor (dim=None)")
    values, inv, cnt = _unique_raw(input, builtins.bool(return_inverse),
                                   builtins.bool(return_counts), "unique")
    if not return_inverse and not return_counts:
        return values
    out = (values,)
    if return_inverse:
        out += (inv,)
    if return_counts:
        out += (cnt,)
    return out


def unique_values(x, /) -> Tensor:
    """Array API ``unique_values``: the sorted unique elements."""
    return _unique_raw(x, False, False, "unique_values")[0]


def unique_counts(x, /):
    """Array API ``unique_counts``: ``(values, counts)``."""
    v, _, c = _unique_raw(x, False, True, "unique_counts")
    return UniqueCountsResult(v, c)


def unique_inverse(x, /):
    """Array API ``unique_inverse``: ``(values, inverse_indices)``; ``inverse_indices`` has
    ``x``'s shape."""
    v, i, _ = _unique_raw(x, True, False, "unique_inverse")
    return UniqueInverseResult(v, i)


def unique_all(x, /):
    """Array API ``unique_all``: ``(values, indices, inverse_indices, counts)``; ``indices``
    are the flat positions of each value's first occurrence."""
    v, inv, cnt = _unique_raw(x, True, True, "unique_all")
    dev = x._device
    backend = dev.backend
    flat_inv = _reshape[backend](inv._data, (_numel(inv._data.shape),))
    _, order = _sort[backend](flat_inv, 0, False, True)
    starts, pos = [], 0
    for c in cnt.tolist():
        starts.append(pos)
        pos += c
    from .creation import asarray
    s = asarray(starts, dtype=_int64, device=dev)._data
    first = _getitem[backend](order, (s,))
    return UniqueAllResult(v, wrap(first, dev, _int64), inv, cnt)


# ------------------------------------------------------------------ searchsorted / isin ---
def _weak_operand(v, like: Tensor, op: str, what: str):
    """A tensor operand on ``like``'s device, or a Python number (kept: it is weak)."""
    if isinstance(v, Tensor):
        if v._device is not like._device:
            raise device_mismatch(op, (like, v))
        return v
    if is_scalar(v):
        return scalar_value(v)
    try:
        return as_operand(v, like, op)
    except TypeError:
        raise TypeError(f"{op}: {what} must be a tensor or a Python number, got "
                        f"{describe(v)}") from None


def _scalar_tensor(s, dt, dev, op: str) -> Tensor:
    """The weak Python number ``s`` as a 0-d tensor of ``dt`` (the dtype chosen with it)."""
    if dt.kind in "iu" and s.__class__ is builtins.int:
        info = _dt.iinfo(dt)
        if not info.min <= s <= info.max:
            raise OverflowError(f"{op}: the Python int {s} is out of range for {dt.name} "
                                f"({info.min} to {info.max}); cast the tensor to a wider "
                                f"dtype first, e.g. x.to(polyten.int64)")
    return wrap(_full[dev.backend]((), s, dt.name, dev.index), dev, dt)


def searchsorted(x1, x2, /, *, side="left", sorter=None, right=False, out_int32=False):
    """Indices at which to insert ``x2``'s values into the sorted ``x1`` to keep it sorted.

    Both the Array API form ``searchsorted(x1, x2, side='left', sorter=None)`` and PyTorch's
    ``searchsorted(sorted_sequence, input, right=False, side=None, out_int32=False,
    sorter=None)`` work (``right=True`` is ``side='right'``; ``side=None`` is ``'left'``).

    Parameters
    ----------
    x1 : Tensor
        The sorted sequence (ascending; NaN last, as :func:`sort` puts it): 1-D -- then ``x2``
        may have any shape -- or ``(..., n)`` with ``x2`` of shape ``(..., m)`` and the same
        leading dims, one sorted row per leading index (PyTorch's batched form).
    x2 : Tensor or number
        The values to search for.  A Python number is weak (it takes ``x1``'s kind).
    side : {'left', 'right'}
        ``'left'``: the first suitable index ``i`` (``x1[i-1] < v <= x1[i]``); ``'right'``:
        the last (``x1[i-1] <= v < x1[i]``).
    sorter : Tensor of ints, optional
        Indices that sort an unsorted ``x1`` along its last dim (e.g. ``argsort(x1)``).
    out_int32 : bool
        Return int32 instead of int64 (PyTorch).

    Returns
    -------
    Tensor
        int64 indices of ``x2``'s shape.  The two inputs are compared in their promoted dtype;
        complex inputs are refused (they have no order).
    """
    op = "searchsorted"
    if not isinstance(x1, Tensor):
        raise TypeError(f"{op}: the sorted sequence x1 must be a tensor, got {describe(x1)}")
    if side is None:
        side = "left"  # PyTorch's default spelling: right= decides
    elif side not in ("left", "right"):
        raise ValueError(f"{op}: side must be 'left' or 'right', got {side!r}")
    dev = x1._device
    backend = dev.backend
    v = _weak_operand(x2, x1, op, "the values x2")
    _real_check(x1, op)
    if isinstance(v, Tensor):
        _real_check(v, op)
        cd = _dt._PROMOTE[(x1._dtype, v._dtype)]
    else:
        if isinstance(v, builtins.complex):
            raise TypeError(f"{op}: complex values have no order; search v.real instead")
        cd = _dt.scalar_dtype_for(v, x1._dtype)
        v = _scalar_tensor(v, cd, dev, op)
    s1, s2 = tuple(x1._data.shape), tuple(v._data.shape)
    if not s1:
        raise ValueError(f"{op}: the sorted sequence x1 must have at least 1 dimension, got a "
                         f"0-d tensor; use x1.reshape(1)")
    if len(s1) > 1 and (len(s2) != len(s1) or s1[:-1] != s2[:-1]):
        lead = "".join(f"{d}, " for d in s1[:-1])
        raise ValueError(f"{op}: a sorted sequence of shape {fmt_shape(s1)} searches values "
                         f"of shape ({lead}m) (the same leading dims), got values of shape "
                         f"{fmt_shape(s2)}; use a 1-D sorted sequence to search values of any "
                         f"shape")
    seq = cast(x1, cd)
    if sorter is not None:
        sorter = _int_index(sorter, x1, op, "sorter")
        if tuple(sorter._data.shape) != s1:
            raise ValueError(f"{op}: sorter must have the shape of the sorted sequence "
                             f"{fmt_shape(s1)}, got {fmt_shape(sorter._data.shape)}")
        si = _as_int64(sorter)
        _bounds(si, s1[-1], len(s1) - 1, backend, op + " (sorter)", False)
        seq = _gather[backend](seq, len(s1) - 1, si)
    out = _searchsorted[backend](seq, cast(v, cd), builtins.bool(right) or side == "right")
    if out_int32:
        return wrap(_astype_k[backend](out, "int32"), dev, _dt.int32)
    return wrap(out, dev, _int64)


def isin(x1, x2, /, *, assume_unique=False, invert=False):
    """Whether each element of ``x1`` equals some element of ``x2`` (``torch.isin``;
    Array API ``isin``).

    ``x2`` may have any shape (its elements form the test set); either input may be a Python
    number (weak, as in :func:`eq`).  The result is a bool tensor of ``x1``'s shape, the
    comparison is ``==`` in the promoted dtype (so ``-0.0`` is in ``[0.0]`` and NaN is in
    nothing), ``invert=True`` negates it.  ``assume_unique`` is accepted for PyTorch
    compatibility; it changes nothing.  Complex inputs are refused.
    """
    op = "isin"
    like = x1 if isinstance(x1, Tensor) else x2
    if not isinstance(like, Tensor):
        raise TypeError(f"{op}: expected at least one tensor operand, got {describe(x1)} and "
                        f"{describe(x2)}")
    a = _weak_operand(x1, like, op, "x1")
    b = _weak_operand(x2, like, op, "x2")
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        cd = _dt._PROMOTE[(a._dtype, b._dtype)]
    else:
        t, s = (a, b) if ta else (b, a)
        cd = _dt.scalar_dtype_for(s, t._dtype)
        if cd.kind in "iu" and s.__class__ is builtins.int and \
                not _dt.iinfo(cd).min <= s <= _dt.iinfo(cd).max and -2 ** 63 <= s < 2 ** 63:
            cd = _int64  # compared exactly, as eq does
    if cd.is_complex:
        raise TypeError(f"{op}: not supported for {cd.name}; isin takes real (non-complex) "
                        f"dtypes. Compare x.real and x.imag, or use (x1[..., None] == "
                        f"x2.flatten()).any(-1)")
    dev = like._device
    a = wrap(cast(a, cd), dev, cd) if ta else _scalar_tensor(a, cd, dev, op)
    b = wrap(cast(b, cd), dev, cd) if tb else _scalar_tensor(b, cd, dev, op)
    k = _isin[dev.backend]
    if k is None:
        return _isin_default(a, b, builtins.bool(invert))
    return wrap(k(a._data, b._data, builtins.bool(invert)), dev, _bool)


def _isin_default(x, y, invert):
    """Default of the composite ``isin``: binary search of ``x`` in the sorted ``y``."""
    from .elementwise import clamp, eq, logical_not
    dev = x._device
    backend = dev.backend
    n = _numel(y._data.shape)
    if n == 0:
        return wrap(_full[backend](tuple(x._data.shape), invert, "bool", dev.index), dev, _bool)
    flat = wrap(_reshape[backend](y._data, (n,)), dev, y._dtype)
    s = sort(flat).values
    pos = clamp(searchsorted(s, x), max=n - 1)  # values past the end compare with the last
    found = eq(take(s, pos), x)
    return logical_not(found) if invert else found


register_default("isin", _isin_default)


TENSOR_METHODS = {
    "__getitem__": __getitem__, "__setitem__": __setitem__, "gather": gather,
    "scatter": scatter, "scatter_": _scatter_, "scatter_add": scatter_add,
    "scatter_add_": _scatter_add_, "scatter_reduce": scatter_reduce,
    "scatter_reduce_": _scatter_reduce_, "index_put": index_put, "index_put_": _index_put_,
    "index_select": index_select, "index_add": index_add,
    "index_add_": _index_add_, "masked_fill": masked_fill, "masked_fill_": _masked_fill_,
    "masked_select": masked_select, "take": take, "take_along_dim": take_along_dim,
    "nonzero": nonzero, "argwhere": argwhere, "sort": sort, "argsort": argsort, "topk": topk,
    "unique": unique,
}
