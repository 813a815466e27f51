"""Shape functions: reshaping, permuting, broadcasting, joining, splitting, flipping.

Views share memory with their input exactly where PyTorch's do: ``reshape`` (when the memory
layout allows), ``view``, ``permute``/``transpose``/``T``/``mT``, ``squeeze``/``unsqueeze``,
``flatten``/``unflatten`` (when the layout allows), ``expand``/``broadcast_to``, ``narrow``,
and the pieces of ``split``/``chunk``/``tensor_split``/``unbind``.  Writing through such a
view (``v[...] = 0``, ``v.add_(1)``) changes the base tensor.  Expanded (broadcast) views are
read-only, as in-place writes to them would hit one memory location several times.

Both spellings work: PyTorch's (``cat``, ``permute``, ``dim=``) and the Python Array API's
(``concat``, ``permute_dims``, ``axis=``).  Where the two standards disagree on one name, the
docstring says which one polyten follows (``squeeze``, ``repeat``, ``meshgrid``).
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings

from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from ..autograd.views import note_view as _note_view
from ._core import (Size, Tensor, broadcast_shapes as _broadcast_shapes, cast, check_inplace,
                    describe, device_mismatch, dim_or_axis, normalize_dim, normalize_dims, wrap)

__all__ = [
    "clone", "reshape", "permute", "permute_dims", "transpose", "swapaxes", "swapdims", "t",
    "squeeze", "unsqueeze", "expand_dims", "flatten", "unflatten", "ravel", "broadcast_to",
    "broadcast_tensors", "broadcast_arrays", "broadcast_shapes", "cat", "concat",
    "concatenate", "stack", "hstack", "vstack", "dstack", "atleast_1d", "atleast_2d",
    "atleast_3d", "split", "chunk", "tensor_split", "unbind", "unstack", "flip", "fliplr",
    "flipud", "roll", "tile", "repeat", "repeat_interleave", "movedim", "moveaxis", "narrow",
    "tril", "triu", "meshgrid", "select",
]

_copy = kernels("copy")
_reshape_k = kernels("reshape")
_permute_k = kernels("permute")
_expand_k = kernels("expand")
_concat_k = kernels("concat")
_stack_k = kernels("stack")
_flip_k = kernels("flip")
_roll_k = kernels("roll")
_tile_k = kernels("tile")
_tril_k = kernels("tril")
_triu_k = kernels("triu")
_getitem_k = kernels("getitem")
_is_contig = kernels("is_contiguous")
_PROMOTE = _dt._PROMOTE
_index = operator.index
_prod = math.prod
_SEQ = (tuple, list)


def _check(x, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _ints(values, op: str, what: str) -> tuple:
    """A varargs or single-sequence argument (``f(2, 3)``, ``f((2, 3))``) -> tuple of ints."""
    if len(values) == 1:
        v = values[0]
        if isinstance(v, _SEQ):
            values = v
        elif isinstance(v, Tensor):
            v = v.tolist()
            values = v if isinstance(v, list) else (v,)
    for v in values:
        if v.__class__ is not int:
            break
    else:  # the common case: plain ints, no conversion
        return values if values.__class__ is tuple else tuple(values)
    try:
        return tuple(v if v.__class__ is int else _index(v) for v in values)
    except TypeError:
        bad = next(v for v in values if not hasattr(v, "__index__"))
        raise TypeError(f"{op}: {what} must be ints, got {type(bad).__name__} {bad!r} in "
                        f"{tuple(values)!r}") from None


def _dim_of(x: Tensor, dim, op: str) -> int:
    """``dim`` of a tensor that must have one (split, narrow, ...: not 0-d)."""
    n = len(x._data.shape)
    if n == 0:
        raise ValueError(f"{op}: expects a tensor with at least 1 dimension, got a 0-d tensor")
    return normalize_dim(dim, n, op)


def _view(x: Tensor, data, step=None) -> Tensor:
    """``data`` (of x's backend) as a tensor that shares x's version counter; ``step``: the
    view step that made it (autograd/views.py), ``None`` for a result that may be a copy."""
    t = wrap(data, x._device, x._dtype)
    v = x._version
    if v is None:
        v = x._version = [0]
    t._version = v  # a view: in-place writes through either are counted for both
    if step is not None and _grad_on():
        _note_view(x, t, step)
    return t


def _grad(name: str, out: Tensor, x: Tensor, params=None) -> Tensor:
    """Record a shape op for autograd (only when ``x`` takes part in a graph)."""
    if x._ag is not None and _grad_on():
        _record(_rule(name), out, (x,), params)
    return out


# ------------------------------------------------------------------------------ reshaping ---
def clone(input, *, memory_format=None) -> Tensor:
    """A copy of ``input`` with its own (C-contiguous) memory (``torch.clone``)."""
    return _grad("copy", wrap(_copy[input._device.backend](input._data), input._device,
                              input._dtype), input)


_RESOLVED: dict = {}  # (shape, old) -> resolved shape: a program reshapes alike every step


def _resolve_shape(shape: tuple, old: tuple, op: str) -> tuple:
    """Fill in one ``-1`` and check the element count; the error names both shapes."""
    key = (shape, old)
    r = _RESOLVED.get(key)
    if r is None:
        r = _resolve_uncached(shape, old, op)
        if len(_RESOLVED) > 4096:  # bounded: shapes that vary without end don't pile up
            _RESOLVED.clear()
        _RESOLVED[key] = r
    return r


def _resolve_uncached(shape: tuple, old: tuple, op: str) -> tuple:
    numel = _prod(old)
    if -1 not in shape:
        if _prod(shape) == numel and (not shape or min(shape) >= 0):
            return shape
    else:
        # one -1 among positive sizes makes the product negative: -product is the known part
        known = -_prod(shape)
        if known > 0 and numel % known == 0 and min(shape) == -1 and shape.count(-1) == 1:
            r = list(shape)
            r[shape.index(-1)] = numel // known
            return tuple(r)
    return _resolve_slow(shape, numel, old, op)


def _resolve_slow(shape: tuple, numel: int, old: tuple, op: str) -> tuple:
    known = 1
    infer = -1
    for i, s in enumerate(shape):
        if s == -1:
            if infer >= 0:
                raise ValueError(f"{op}: only one dimension can be inferred (-1), got shape "
                                 f"{fmt_shape(shape)}")
            infer = i
        elif s < 0:
            raise ValueError(f"{op}: invalid size {s} in shape {fmt_shape(shape)}; sizes must "
                             f"be non-negative (or -1 to infer one)")
        else:
            known *= s
    if infer >= 0:
        if known == 0:
            if numel == 0:
                raise ValueError(f"{op}: cannot reshape tensor of 0 elements into shape "
                                 f"{fmt_shape(shape)} because the size of the -1 dimension "
                                 f"is ambiguous (any value fits)")
        elif numel % known == 0:
            return shape[:infer] + (numel // known,) + shape[infer + 1:]
    elif known == numel:
        return shape
    raise ValueError(f"{op}: cannot reshape tensor of {numel} elements (shape "
                     f"{fmt_shape(old)}) into shape {fmt_shape(shape)}")


def _reshape(x: Tensor, shape: tuple, op: str) -> Tensor:
    old = x._data.shape
    if shape != old:
        shape = _resolve_shape(shape, old, op)
        if shape != old:
            return _grad("reshape", _view(x, _reshape_k[x._device.backend](x._data, shape),
                                          _reshape_step(x, shape)), x)
    return _grad("reshape", _view(x, x._data, ("reshape", old)), x)


def _reshape_step(x: Tensor, shape: tuple):
    """The view step of a reshape, or None where the kernel may copy (a non-contiguous
    input) -- and outside grad mode, where views are not tracked (one kernel call saved)."""
    if not _grad_on():
        return None
    return ("reshape", shape) if _is_contig[x._device.backend](x._data) else None


def _reshape_exact(x: Tensor, shape: tuple) -> Tensor:
    """Reshape to a shape the caller computed (same element count, no -1)."""
    return _grad("reshape", _view(x, _reshape_k[x._device.backend](x._data, shape),
                                  _reshape_step(x, shape)), x)


def _viewable(x: Tensor, shape: tuple) -> builtins.bool:
    """Whether a reshape to ``shape`` is surely a view: contiguous input, or only size-1 dims
    inserted/removed.  (PyTorch also views some strided layouts that polyten cannot prove
    viewable without strides; those raise here and need ``reshape``.)"""
    if _is_contig[x._device.backend](x._data):
        return True
    return [s for s in x._data.shape if s != 1] == [s for s in shape if s != 1]


def _view_error(x: Tensor, shape: tuple, op: str) -> RuntimeError:
    return RuntimeError(f"{op}: view size {fmt_shape(shape)} is not compatible with the input "
                        f"tensor's size {fmt_shape(x._data.shape)} and memory layout (it is "
                        f"not contiguous, e.g. a transpose or a strided slice). Use "
                        f".reshape(...) instead, or .contiguous().view(...)")


def reshape(input, shape, *, copy=None) -> Tensor:
    """``input`` with shape ``shape``; a view when the memory layout allows, else a copy.

    One entry of ``shape`` may be ``-1``: it is inferred from the number of elements.
    ``copy`` (Array API): ``True`` always copies, ``False`` raises when a view is not
    possible, ``None`` (default) views when it can.  ``tensor.reshape(2, 3)`` and
    ``tensor.reshape((2, 3))`` both work.
    """
    _check(input, "reshape")
    shape = _ints((shape,), "reshape", "shape entries")
    if copy is None:
        return _reshape(input, shape, "reshape")
    shape = _resolve_shape(shape, input._data.shape, "reshape")
    if copy:
        return clone(_reshape(input, shape, "reshape"))
    if not _viewable(input, shape):
        raise ValueError(f"reshape: copy=False but reshaping {describe(input)} to "
                         f"{fmt_shape(shape)} needs a copy (the tensor is not contiguous)")
    return _reshape(input, shape, "reshape")


def _reshape_method(self, *shape) -> Tensor:
    return _reshape(self, _ints(shape, "reshape", "shape entries"), "reshape")


def view(self, *shape) -> Tensor:
    """A view of ``self`` with another shape (one entry may be ``-1``); never copies.

    Raises ``RuntimeError`` (as PyTorch) when the memory layout cannot be viewed so: polyten
    views contiguous tensors, and any tensor when only size-1 dimensions change.  Use
    :meth:`reshape` for the others.
    """
    if len(shape) == 1 and isinstance(shape[0], _dt.dtype):
        raise TypeError("view(dtype) (reinterpreting the bits) is not supported; use "
                        ".to(dtype) to convert the values")
    shape = _ints(shape, "view", "shape entries")
    old = self._data.shape
    if shape != old:
        shape = _resolve_shape(shape, old, "view")
        if shape != old:
            if not _viewable(self, shape):
                raise _view_error(self, shape, "view")
            return _reshape_exact(self, shape)
    return _grad("reshape", wrap(self._data, self._device, self._dtype), self)


def view_as(self, other) -> Tensor:
    """``self.view(other.shape)``."""
    return view(self, tuple(other._data.shape))


def reshape_as(self, other) -> Tensor:
    """``self.reshape(other.shape)``."""
    return _reshape(self, tuple(other._data.shape), "reshape_as")


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (a view when the layout allows).

    A 0-d tensor becomes shape ``(1,)``, as in PyTorch.
    """
    _check(input, "flatten")
    shape = input._data.shape
    n = len(shape)
    if n == 0:
        return _reshape(input, (1,), "flatten")
    s = normalize_dim(start_dim, n, "flatten")
    e = normalize_dim(end_dim, n, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim "
                         f"({end_dim}) for a tensor of shape {fmt_shape(shape)}")
    if s == e:
        return _reshape(input, shape, "flatten")
    return _reshape(input, shape[:s] + (_numel(shape[s:e + 1]),) + shape[e + 1:], "flatten")


def unflatten(input, dim, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be ``-1``); the inverse of :func:`flatten`."""
    _check(input, "unflatten")
    shape = input._data.shape
    d = _dim_of(input, dim, "unflatten")
    sizes = _ints((sizes,), "unflatten", "sizes")
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    try:
        sizes = _resolve_shape(sizes, (shape[d],), "unflatten")
    except ValueError:
        raise ValueError(f"unflatten: sizes {fmt_shape(sizes)} don't multiply up to the size "
                         f"of dim {d} ({shape[d]}) of the input of shape "
                         f"{fmt_shape(shape)}") from None
    return _reshape(input, shape[:d] + sizes + shape[d + 1:], "unflatten")


def ravel(input) -> Tensor:
    """The elements as a 1-D tensor (a view when the layout allows)."""
    _check(input, "ravel")
    return _reshape(input, (-1,), "ravel")


def squeeze(input, dim=None, *, axis=None) -> Tensor:
    """Remove dimensions of size 1 (all of them, or those in ``dim``; a view).

    PyTorch semantics for ``dim=``: a named dim whose size is not 1 is left alone.  With the
    Array API's ``axis=``, a named axis whose size is not 1 is an error, as the standard says.
    """
    _check(input, "squeeze")
    shape = input._data.shape
    if axis is not None:
        if dim is not None:
            raise TypeError(f"squeeze: got both dim={dim!r} and axis={axis!r}; pass one")
        dims = normalize_dims(axis, len(shape), "squeeze")
        for d in dims:
            if shape[d] != 1:
                raise ValueError(f"squeeze: axis {d} has size {shape[d]}; only dimensions of "
                                 f"size 1 can be squeezed (shape {fmt_shape(shape)})")
    elif dim is None:
        return _reshape_exact(input, tuple(s for s in shape if s != 1))
    else:
        dims = normalize_dims(dim, len(shape), "squeeze")
    return _reshape_exact(input, tuple(s for i, s in enumerate(shape)
                                       if s != 1 or i not in dims))


def unsqueeze(input, dim) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (in ``[-ndim-1, ndim]``; a view)."""
    _check(input, "unsqueeze")
    shape = input._data.shape
    n = len(shape)
    d = dim if dim.__class__ is int and 0 <= dim <= n else normalize_dim(dim, n + 1, "unsqueeze")
    return _reshape_exact(input, shape[:d] + (1,) + shape[d:])


def expand_dims(x, /, *, axis=0) -> Tensor:
    """Array API ``expand_dims``: insert size-1 dims at ``axis`` (an int or a tuple of ints,
    positions in the result)."""
    _check(x, "expand_dims")
    shape = x._data.shape
    if isinstance(axis, _SEQ):
        out_nd = len(shape) + len(axis)
        axes = normalize_dims(tuple(axis), out_nd, "expand_dims")
        it = iter(shape)
        return _reshape(x, tuple(1 if i in axes else next(it) for i in range(out_nd)),
                        "expand_dims")
    d = normalize_dim(axis, len(shape) + 1, "expand_dims")
    return _reshape(x, shape[:d] + (1,) + shape[d:], "expand_dims")


# ------------------------------------------------------------------------------ permuting ---
_PERMS: set = set()  # permutations already validated (of their own length)


def _permute(x: Tensor, dims: tuple, op: str) -> Tensor:
    if dims in _PERMS:  # the common case: a permutation of 0..n-1 seen before
        if len(dims) == len(x._data.shape):
            return _grad("permute", _view(x, _permute_k[x._device.backend](x._data, dims),
                                          ("permute", dims)), x,
                         {"dims": dims})
    n = len(x._data.shape)
    if len(dims) != n:
        raise ValueError(f"{op}: dims {tuple(dims)} has {len(dims)} entries but the tensor has "
                         f"{n} dimensions (shape {fmt_shape(x._data.shape)}); name every "
                         f"dimension once")
    p = tuple(normalize_dim(d, n, op) for d in dims)
    if len(set(p)) != n:
        raise ValueError(f"{op}: dims {tuple(dims)} names a dimension more than once; it must "
                         f"be a permutation of 0..{n - 1}")
    if len(_PERMS) < 4096 and p == dims:
        _PERMS.add(p)
    return _grad("permute", _view(x, _permute_k[x._device.backend](x._data, p),
                                  ("permute", p)), x,
                 {"dims": p})


def permute(input, *dims) -> Tensor:
    """Reorder the dimensions (a view): ``permute(x, (1, 0))``, ``x.permute(1, 0)``."""
    _check(input, "permute")
    return _permute(input, _ints(dims, "permute", "dims"), "permute")


def permute_dims(x, /, axes) -> Tensor:
    """Array API name of :func:`permute`."""
    _check(x, "permute_dims")
    return _permute(x, _ints((axes,), "permute_dims", "axes"), "permute_dims")


def _swap(x: Tensor, d0, d1, op: str) -> Tensor:
    n = len(x._data.shape)
    a = normalize_dim(d0, n, op)
    b = normalize_dim(d1, n, op)
    if a == b:
        return _grad("reshape", _view(x, x._data, ("reshape", x._data.shape)), x)
    p = list(range(n))
    p[a], p[b] = b, a
    return _grad("permute", _view(x, _permute_k[x._device.backend](x._data, tuple(p)),
                                  ("permute", tuple(p))), x,
                 {"dims": tuple(p)})


def transpose(input, dim0, dim1) -> Tensor:
    """Swap dims ``dim0`` and ``dim1`` (a view)."""
    _check(input, "transpose")
    return _swap(input, dim0, dim1, "transpose")


def swapaxes(input, axis0, axis1) -> Tensor:
    """NumPy's name of :func:`transpose`."""
    _check(input, "swapaxes")
    return _swap(input, axis0, axis1, "swapaxes")


def swapdims(input, dim0, dim1) -> Tensor:
    """Alias of :func:`transpose`."""
    _check(input, "swapdims")
    return _swap(input, dim0, dim1, "swapdims")


def t(input) -> Tensor:
    """Transpose a tensor of at most 2 dimensions (0-d and 1-d are returned as views)."""
    _check(input, "t")
    n = len(input._data.shape)
    if n > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, but got shape "
                         f"{fmt_shape(input._data.shape)}; use transpose(dim0, dim1) or .mT")
    if n == 2:
        return _swap(input, 0, -1, "t")
    return _grad("reshape", _view(input, input._data, ("reshape", input._data.shape)), input)


def _T(self) -> Tensor:
    n = len(self._data.shape)
    if n == 2:
        return _grad("permute", _view(self, _permute_k[self._device.backend](self._data, (1, 0)),
                                      ("permute", (1, 0))),
                     self, {"dims": (1, 0)})
    if n > 2:
        # what torch 2.x does: reverse the dims, with a deprecation warning
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their "
                      "shape is deprecated; use x.mT to transpose batches of matrices or "
                      "x.permute(*range(x.ndim - 1, -1, -1)) to reverse the dimensions",
                      UserWarning, stacklevel=2)
        rev = tuple(range(n - 1, -1, -1))
        return _grad("permute", _view(self, _permute_k[self._device.backend](self._data, rev),
                                      ("permute", rev)),
                     self, {"dims": rev})
    return _grad("reshape", _view(self, self._data, ("reshape", self._data.shape)), self)


def _mT(self) -> Tensor:
    if len(self._data.shape) < 2:
        raise ValueError(f"mT: tensor must have at least 2 dimensions, got shape "
                         f"{fmt_shape(self._data.shape)}")
    return _swap(self, -2, -1, "mT")


def _conj(x: Tensor) -> Tensor:
    if x._dtype.is_complex:
        from .elementwise import conj
        return conj(x)
    return x


def _mH(self) -> Tensor:
    """Conjugate transpose of the last two dims (a copy for complex tensors)."""
    return _conj(_mT(self))


def _H(self) -> Tensor:
    if len(self._data.shape) not in (0, 2):
        raise ValueError(f"H: tensor must be a matrix or a scalar, got shape "
                         f"{fmt_shape(self._data.shape)}; use .mH for batches of matrices")
    return _conj(t(self))


def movedim(input, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or equal-length sequences);
    the other dims keep their order (a view)."""
    _check(input, "movedim")
    n = len(input._data.shape)
    src = source if isinstance(source, _SEQ) else (source,)
    dst = destination if isinstance(destination, _SEQ) else (destination,)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {tuple(src)} and destination {tuple(dst)} must have "
                         f"the same number of dims")
    s = [normalize_dim(d, n, "movedim") for d in src]
    e = [normalize_dim(d, n, "movedim") for d in dst]
    if len(set(s)) != len(s):
        raise ValueError(f"movedim: repeated dim in source {tuple(src)}")
    if len(set(e)) != len(e):
        raise ValueError(f"movedim: repeated dim in destination {tuple(dst)}")
    rest = iter([d for d in range(n) if d not in s])
    where = dict(zip(e, s))
    return _permute(input, tuple(where[i] if i in where else next(rest) for i in range(n)),
                    "movedim")


moveaxis = movedim


# --------------------------------------------------------------------------- broadcasting ---
def _expand(x: Tensor, sizes: tuple, op: str) -> Tensor:
    shape = x._data.shape
    n, m = len(shape), len(sizes)
    if m < n:
        raise ValueError(f"{op}: the number of sizes provided ({m}) must be greater or equal "
                         f"to the number of dimensions in the tensor ({n}); target "
                         f"{fmt_shape(sizes)}, tensor {fmt_shape(shape)}")
    out = list(sizes)
    lead = m - n
    for i in range(m):
        s = sizes[i]
        if i < lead:
            if s < 0:
                raise ValueError(f"{op}: the expanded size {s} isn't allowed in a leading, "
                                 f"non-existing dimension {i} (target {fmt_shape(sizes)})")
            continue
        old = shape[i - lead]
        if s == -1:
            out[i] = old
        elif s != old:
            if old != 1 or s < 0:
                raise ValueError(
                    f"{op}: the expanded size of the tensor ({s}) must match the existing size "
                    f"({old}) at non-singleton dimension {i}. Target sizes: "
                    f"{fmt_shape(sizes)}. Tensor sizes: {fmt_shape(shape)}")
    out = tuple(out)
    if out == shape:
        return _grad("reshape", _view(x, x._data, ("reshape", x._data.shape)), x)
    return _grad("expand", _view(x, _expand_k[x._device.backend](x._data, out),
                                 ("expand", tuple(out))), x)


def expand(self, *sizes) -> Tensor:
    """A broadcast view with shape ``sizes`` (``-1`` keeps a dim; new dims go in front).

    The result is read-only: writing into it would hit one element several times.
    """
    return _expand(self, _ints(sizes, "expand", "sizes"), "expand")


def expand_as(self, other) -> Tensor:
    """``self.expand(other.shape)``."""
    return _expand(self, tuple(other._data.shape), "expand_as")


def broadcast_to(input, shape) -> Tensor:
    """A read-only broadcast view of ``input`` with shape ``shape`` (``torch.broadcast_to``,
    Array API ``broadcast_to``)."""
    _check(input, "broadcast_to")
    return _expand(input, _ints((shape,), "broadcast_to", "shape entries"), "broadcast_to")


def broadcast_shapes(*shapes) -> Size:
    """The shape that tensors of ``shapes`` broadcast to (ints count as 1-D shapes)."""
    return _broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s) for s in shapes],
                             op="broadcast_shapes")


def _tensor_list(tensors, op: str) -> list:
    if len(tensors) == 1 and isinstance(tensors[0], _SEQ):
        tensors = tensors[0]
    out = list(tensors)
    for i, x in enumerate(out):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: expected tensors, but element {i} is {describe(x)}")
    dev = out[0]._device if out else None
    for x in out:
        if x._device is not dev:
            raise device_mismatch(op, out)
    return out


def broadcast_tensors(*tensors) -> tuple:
    """Broadcast views of ``tensors`` with their common shape (read-only where expanded)."""
    ts = _tensor_list(tensors, "broadcast_tensors")
    shape = tuple(_broadcast_shapes(*[x._data.shape for x in ts], op="broadcast_tensors"))
    return tuple(_expand(x, shape, "broadcast_tensors") for x in ts)


def broadcast_arrays(*arrays) -> list:
    """Array API name of :func:`broadcast_tensors` (returns a list)."""
    return list(broadcast_tensors(*arrays))


# -------------------------------------------------------------------------------- joining ---
def _sequence(tensors, op: str) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: expected a sequence of tensors, got a single tensor; pass a "
                        f"list, e.g. {op}([a, b])")
    try:
        ts = list(tensors)
    except TypeError:
        raise TypeError(f"{op}: expected a sequence of tensors, got {describe(tensors)}") \
            from None
    if not ts:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    return _tensor_list((ts,), op)


def _common_dtype(ts) -> _dt.dtype:
    cd = ts[0]._dtype
    for x in ts:
        if x._dtype is not cd:
            cd = _PROMOTE[(cd, x._dtype)]
    return cd


_NOTSET = object()


def cat(tensors, dim=0, *, axis=_NOTSET) -> Tensor:
    """Concatenate tensors along an existing dim (``torch.cat``; Array API ``concat``).

    Inputs are promoted to a common dtype.  All must have the same number of dims and equal
    sizes except along ``dim``; 1-D empty tensors are skipped, as in PyTorch.  ``axis=None``
    (Array API) concatenates the flattened inputs.
    """
    op = "cat"
    if axis is not _NOTSET:
        if dim not in (0, None) and axis is not None:
            raise TypeError(f"cat: got both dim={dim!r} and axis={axis!r}; pass one")
        dim = axis
    ts = tensors if tensors.__class__ is list or tensors.__class__ is tuple else \
        _sequence(tensors, op)
    if not ts:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = ts[0]
    if not isinstance(first, Tensor):
        ts = _sequence(ts, op)  # raises, naming the element
    dev = first._device
    cd = first._dtype
    ag = False
    for x in ts:
        if x.__class__ is not Tensor and not isinstance(x, Tensor):
            ts = _sequence(ts, op)
        if x._device is not dev:
            raise device_mismatch(op, ts)
        if x._dtype is not cd:
            cd = _PROMOTE[(cd, x._dtype)]
        if x._ag is not None:
            ag = True
    if dim is None:
        flat = [_reshape(x, (-1,), op) for x in ts]
        out = wrap(_concat_k[dev.backend]([cast(x, cd) for x in flat], 0), dev, cd)
        if ag and _grad_on():
            _record_cat(out, flat, 0, [x._data.shape[0] for x in flat])
        return out
    ref = 0
    rshape = first._data.shape
    if rshape == (0,):
        ref = next((i for i, x in enumerate(ts) if x._data.shape != (0,)), 0)
        rshape = ts[ref]._data.shape
    n = len(rshape)
    if n == 0:
        raise ValueError(f"cat: zero-dimensional tensor (at position {ref}) cannot be "
                         f"concatenated; use stack, or unsqueeze it first")
    d = dim if dim.__class__ is int and 0 <= dim < n else normalize_dim(dim, n, op)
    rest = rshape[:d] + rshape[d + 1:]
    parts = []
    for i, x in enumerate(ts):
        s = x._data.shape
        if s[:d] + s[d + 1:] != rest or len(s) != n:
            if s == (0,) and n != 1:
                continue  # PyTorch's legacy rule: 1-D empty tensors join anything
            _cat_shape_error(ref, rshape, i, s, d)
        parts.append(x._data if x._dtype is cd else cast(x, cd))
    out = wrap(_concat_k[dev.backend](parts, d), dev, cd)
    if ag and _grad_on():
        _record_cat(out, ts, d, [None if (x._data.shape == (0,) and n != 1) else
                                 x._data.shape[d] for x in ts])
    return out


def _record_cat(out: Tensor, ts, d: int, sizes) -> None:
    """Record cat: input i's gradient is ``g.narrow(d, start_i, size_i)`` (``None``: an
    empty 1-D input that cat skipped)."""
    spans = []
    pos = 0
    for s in sizes:
        if s is None:
            spans.append(None)
        else:
            spans.append((pos, s))
            pos += s
    _record(_rule("cat"), out, tuple(ts), {"dim": d, "spans": spans})


def _cat_shape_error(ref: int, rshape: tuple, i: int, s: tuple, d: int):
    if len(s) != len(rshape):
        raise ValueError(f"cat: tensors must have the same number of dimensions: tensor "
                         f"{ref} has shape {fmt_shape(rshape)} but tensor {i} has shape "
                         f"{fmt_shape(s)}")
    j = next(j for j in range(len(s)) if j != d and s[j] != rshape[j])
    raise ValueError(f"cat: sizes of tensors must match except in dimension {d}: "
                     f"tensor {ref} has shape {fmt_shape(rshape)} but tensor {i} "
                     f"has shape {fmt_shape(s)} (size {rshape[j]} vs {s[j]} at "
                     f"dimension {j})")


def concat(arrays, /, *, axis=0) -> Tensor:
    """Array API ``concat``: :func:`cat` along ``axis``; ``axis=None`` flattens first."""
    return cat(arrays, axis=axis)


concatenate = cat


def _stack_default(xs, dim):
    return cat([unsqueeze(x, dim) for x in xs], dim)


register_default("stack", _stack_default)


def stack(tensors, dim=0, *, axis=None) -> Tensor:
    """Join equally shaped tensors along a new dim ``dim`` (in ``[-ndim-1, ndim]``);
    inputs are promoted to a common dtype."""
    if axis is not None:
        if dim != 0:
            raise TypeError(f"stack: got both dim={dim!r} and axis={axis!r}; pass one")
        dim = axis
    ts = _sequence(tensors, "stack")
    shape = ts[0]._data.shape
    for i, x in enumerate(ts):
        if x._data.shape != shape:
            raise ValueError(f"stack: expects each tensor to be equal size, but got "
                             f"{fmt_shape(shape)} at entry 0 and {fmt_shape(x._data.shape)} "
                             f"at entry {i}")
    d = normalize_dim(dim, len(shape) + 1, "stack")
    cd = _common_dtype(ts)
    dev = ts[0]._device
    k = _stack_k[dev.backend]
    if k is None:
        return _stack_default([x if x._dtype is cd else x.to(cd) for x in ts], d)
    out = wrap(k([x._data if x._dtype is cd else cast(x, cd) for x in ts], d), dev, cd)
    if _grad_on():
        for x in ts:
            if x._ag is not None:
                _record(_rule("stack"), out, tuple(ts), {"dim": d})
                break
    return out


def _atleast(n: int, op: str, tensors):
    ts = _tensor_list(tensors, op) if tensors else []
    out = []
    for x in ts:
        s = x._data.shape
        if len(s) >= n:
            out.append(_grad("reshape", _view(x, x._data, ("reshape", x._data.shape)), x))
        elif n == 1:
            out.append(_reshape(x, (1,), op))
        elif n == 2:
            out.append(_reshape(x, (1,) * (2 - len(s)) + s, op))
        else:
            new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)]
            out.append(_reshape(x, new, op))
    if len(tensors) == 1 and isinstance(tensors[0], Tensor):
        return out[0]
    return tuple(out)


def atleast_1d(*tensors):
    """Views with at least 1 dim (a tensor for one input, else a tuple)."""
    return _atleast(1, "atleast_1d", tensors)


def atleast_2d(*tensors):
    """Views with at least 2 dims (1-D ``(n,)`` becomes ``(1, n)``)."""
    return _atleast(2, "atleast_2d", tensors)


def atleast_3d(*tensors):
    """Views with at least 3 dims (``(n,)`` -> ``(1, n, 1)``, ``(m, n)`` -> ``(m, n, 1)``)."""
    return _atleast(3, "atleast_3d", tensors)


def hstack(tensors) -> Tensor:
    """Concatenate column-wise: along dim 0 for 1-D inputs, else dim 1."""
    ts = _atleast(1, "hstack", (_sequence(tensors, "hstack"),))
    return cat(ts, 0 if len(ts[0]._data.shape) == 1 else 1)


def vstack(tensors) -> Tensor:
    """Concatenate row-wise (inputs made at least 2-D first)."""
    return cat(_atleast(2, "vstack", (_sequence(tensors, "vstack"),)), 0)


def dstack(tensors) -> Tensor:
    """Concatenate depth-wise, along dim 2 (inputs made at least 3-D first)."""
    return cat(_atleast(3, "dstack", (_sequence(tensors, "dstack"),)), 2)


# ------------------------------------------------------------------------------ splitting ---
def _slice_dim(x: Tensor, d: int, start: int, stop: int) -> Tensor:
    key = (slice(None),) * d + (slice(start, stop), Ellipsis)
    return _view(x, _getitem_k[x._device.backend](x._data, key), ("key", key))


def narrow(input, dim, start, length) -> Tensor:
    """Elements ``start .. start+length`` of dim ``dim`` (a view); ``start`` may be negative."""
    _check(input, "narrow")
    shape = input._data.shape
    d = _dim_of(input, dim, "narrow")
    size = shape[d]
    start, length = _index(start), _index(length)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for dimension {d} with size "
                         f"{size} (expected to be in range of [{-size}, {size}])")
    if start < 0:
        start += size
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start + length > size:
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                         f"({size}) of dimension {d} (shape {fmt_shape(shape)})")
    return _grad("narrow", _slice_dim(input, d, start, start + length), input,
                 {"dim": d, "start": start})


def select(input, dim, index) -> Tensor:
    """The slice at ``index`` of dimension ``dim``, that dimension removed (a view;
    ``torch.select``): ``x.select(1, 2)`` is ``x[:, 2]``."""
    _check(input, "select")
    shape = input._data.shape
    if not shape:
        raise IndexError("select: a 0-d tensor has no dimension to select from")
    d = _dim_of(input, dim, "select")
    i = _index(index)
    if not -shape[d] <= i < shape[d]:
        raise IndexError(f"select: index {i} is out of range for dimension {d} with size "
                         f"{shape[d]} (shape {fmt_shape(shape)})")
    return input[(slice(None),) * d + (i,)]


def _pieces(x: Tensor, d: int, spans: list) -> tuple:
    """The views ``x[start:stop]`` along ``d`` for each span, recorded as one node."""
    out = tuple(_slice_dim(x, d, a, b) for a, b in spans)
    if x._ag is not None and _grad_on():
        _record(_rule("split"), out, (x,), {"dim": d, "spans": spans})
    return out


def _split_points(x: Tensor, d: int, sizes) -> tuple:
    spans = []
    pos = 0
    for s in sizes:
        spans.append((pos, pos + s))
        pos += s
    return _pieces(x, d, spans)


def split(tensor, split_size_or_sections, dim=0) -> tuple:
    """Split into views along ``dim`` (``torch.split``).

    An int ``n`` gives pieces of ``n`` elements (the last may be smaller); a list gives the
    exact sizes, which must add up to the size of ``dim``.
    """
    _check(tensor, "split")
    shape = tensor._data.shape
    d = _dim_of(tensor, dim, "split")
    size = shape[d]
    if isinstance(split_size_or_sections, _SEQ):
        sizes = _ints((split_size_or_sections,), "split", "split sizes")
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise ValueError(f"split: split sizes {list(sizes)} must be non-negative and sum "
                             f"exactly to {size} (the input's size at dimension {d}, shape "
                             f"{fmt_shape(shape)})")
        return _split_points(tensor, d, sizes)
    n = _index(split_size_or_sections)
    if n < 0 or (n == 0 and size != 0):
        raise ValueError(f"split: split_size must be positive (0 only if the dimension size is "
                         f"0), got {n} for dimension {d} of size {size}")
    if size == 0:
        return _pieces(tensor, d, [(0, 0)])
    return _split_points(tensor, d, [min(n, size - p) for p in range(0, size, n)])


def chunk(input, chunks, dim=0) -> tuple:
    """Split into at most ``chunks`` views of ``ceil(size / chunks)`` elements (``torch.chunk``)."""
    _check(input, "chunk")
    chunks = _index(chunks)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be greater than 0, got {chunks}")
    shape = input._data.shape
    d = _dim_of(input, dim, "chunk")
    size = shape[d]
    if size == 0:
        return _pieces(input, d, [(0, 0)] * chunks)
    return split(input, -(-size // chunks), d)


def tensor_split(input, indices_or_sections, dim=0) -> tuple:
    """Split into views at ``indices`` or into ``sections`` nearly equal parts (NumPy's
    ``array_split`` rule: the first ``size % sections`` parts are one longer)."""
    _check(input, "tensor_split")
    shape = input._data.shape
    d = _dim_of(input, dim, "tensor_split")
    size = shape[d]
    if isinstance(indices_or_sections, _SEQ) or (isinstance(indices_or_sections, Tensor)
                                                  and indices_or_sections.ndim == 1):
        idx = _ints((indices_or_sections,), "tensor_split", "indices")
        bounds = [0] + [max(0, min(size, i if i >= 0 else i + size)) for i in idx] + [size]
        return _pieces(input, d, [(bounds[j], max(bounds[j], bounds[j + 1]))
                                  for j in range(len(bounds) - 1)])
    n = _index(indices_or_sections)
    if n <= 0:
        raise ValueError(f"tensor_split: number of sections must be greater than 0, got {n}")
    q, r = divmod(size, n)
    return _split_points(input, d, [q + 1] * r + [q] * (n - r))


def unbind(input, dim=0) -> tuple:
    """The slices along ``dim`` as a tuple of views (each without that dim)."""
    _check(input, "unbind")
    shape = input._data.shape
    d = _dim_of(input, dim, "unbind")
    k = _getitem_k[input._device.backend]
    pre = (slice(None),) * d
    out = tuple(_view(input, k(input._data, pre + (i, Ellipsis)), ("key", pre + (i, Ellipsis)))
                for i in range(shape[d]))
    if input._ag is not None and _grad_on() and out:
        _record(_rule("unbind"), out, (input,), {"dim": d})
    return out


def unstack(x, /, *, axis=0) -> tuple:
    """Array API name of :func:`unbind`."""
    return unbind(x, axis)


# --------------------------------------------------------------------- reordering, tiling ---
def flip(input, dims=None, *, axis=None) -> Tensor:
    """Reverse the order of elements along ``dims`` (all dims if ``None``); a copy, as in
    PyTorch (NumPy's flip is a view)."""
    _check(input, "flip")
    dims = dim_or_axis(dims, axis, "flip")
    n = len(input._data.shape)
    if dims is None:
        dims = tuple(range(n))
    else:
        dims = normalize_dims(dims, n, "flip")
    return _grad("flip", _view(input, _flip_k[input._device.backend](input._data, dims)), input,
                 {"dims": dims})


def _flip_method(self, *dims, **kw):
    if kw:
        if set(kw) - {"dims"} or dims:
            raise TypeError(f"flip(): unexpected arguments {sorted(kw)}")
        dims = (kw["dims"],)
    if not dims:
        raise TypeError("flip(): missing the dims to flip, e.g. x.flip(0)")
    return flip(self, dims[0] if len(dims) == 1 else dims)


def fliplr(input) -> Tensor:
    """Flip dim 1 (left/right); needs at least 2 dims."""
    _check(input, "fliplr")
    if len(input._data.shape) < 2:
        raise ValueError(f"fliplr: input must be at least 2-D, got shape "
                         f"{fmt_shape(input._data.shape)}")
    return flip(input, (1,))


def flipud(input) -> Tensor:
    """Flip dim 0 (up/down); needs at least 1 dim."""
    _check(input, "flipud")
    if len(input._data.shape) < 1:
        raise ValueError("flipud: input must be at least 1-D, got a 0-d tensor")
    return flip(input, (0,))


def roll(input, shifts=None, dims=None, *, shift=None, axis=None) -> Tensor:
    """Shift elements circularly by ``shifts`` along ``dims`` (the flattened tensor if
    ``dims`` is None).  Array API spelling: ``roll(x, shift, axis=None)``."""
    _check(input, "roll")
    if shift is not None:
        if shifts is not None:
            raise TypeError("roll: got both shifts and shift; pass one")
        shifts = shift
    if shifts is None:
        raise TypeError("roll: missing the shifts argument")
    dims = dim_or_axis(dims, axis, "roll")
    sh = _ints((shifts,) if not isinstance(shifts, _SEQ) else (tuple(shifts),), "roll",
               "shifts")
    n = len(input._data.shape)
    if dims is None:
        if len(sh) != 1:
            raise ValueError(f"roll: shifts {sh} needs dims of the same length; without dims "
                             f"pass a single shift (the tensor is rolled flattened)")
        if n == 0:
            return clone(input)
        return _grad("roll", _view(input, _roll_k[input._device.backend](input._data, sh, None)),
                     input, {"shifts": sh, "dims": None})
    ds = dims if isinstance(dims, _SEQ) else (dims,)
    if len(ds) != len(sh):
        raise ValueError(f"roll: shifts and dims must align: got shifts {sh} ({len(sh)}) and "
                         f"dims {tuple(ds)} ({len(ds)})")
    ds = tuple(normalize_dim(d, n, "roll") for d in ds)
    if n == 0:
        return clone(input)
    return _grad("roll", _view(input, _roll_k[input._device.backend](input._data, sh, ds)),
                 input, {"shifts": sh, "dims": ds})


def tile(input, dims) -> Tensor:
    """Repeat the whole tensor ``dims[i]`` times along each dim (``torch.tile``; ``np.tile``).

    Fewer reps than dims are padded with 1s in front; more reps add leading dims.
    """
    _check(input, "tile")
    reps = _ints((dims,) if not isinstance(dims, _SEQ) else (tuple(dims),), "tile",
                 "repetitions")
    return _tile(input, reps, "tile")


def _tile(x: Tensor, reps: tuple, op: str) -> Tensor:
    for r in reps:
        if r < 0:
            raise ValueError(f"{op}: repeats must be non-negative, got {reps}")
    n = len(x._data.shape)
    if len(reps) < n:
        reps = (1,) * (n - len(reps)) + reps
    return _grad("tile", _view(x, _tile_k[x._device.backend](x._data, reps)), x, {"reps": reps})


def _repeat_method(self, *sizes) -> Tensor:
    """``Tensor.repeat`` (PyTorch): tile the tensor, ``len(sizes) >= ndim``.  Not the Array
    API's ``polyten.repeat`` function, which repeats each element (see :func:`repeat`)."""
    reps = _ints(sizes, "repeat", "repeats")
    n = len(self._data.shape)
    if len(reps) < n:
        raise ValueError(f"repeat: the number of repeat dims ({len(reps)}) can not be smaller "
                         f"than the number of dimensions of the tensor ({n}, shape "
                         f"{fmt_shape(self._data.shape)})")
    return _tile(self, reps, "repeat")


def repeat_interleave(input, repeats, dim=None, *, output_size=None) -> Tensor:
    """Repeat each element ``repeats`` times along ``dim`` (the flattened tensor if None).

    ``repeats`` is an int or a 1-D integer tensor/list with one count per element of ``dim``.
    """
    return _repeat_each(input, repeats, dim, "repeat_interleave")


def repeat(x, repeats, /, *, axis=None) -> Tensor:
    """Array API ``repeat``: each element repeated ``repeats`` times along ``axis``
    (``torch.repeat_interleave``).  ``Tensor.repeat(*sizes)`` is PyTorch's tiling method."""
    return _repeat_each(x, repeats, axis, "repeat")


def _repeat_each(x, repeats, dim, op: str) -> Tensor:
    _check(x, op)
    if dim is None:
        x = _reshape(x, (-1,), op)
        d = 0
    else:
        d = normalize_dim(dim, len(x._data.shape), op)
        if not x._data.shape:
            x = _reshape(x, (1,), op)
    shape = x._data.shape
    if isinstance(repeats, Tensor):
        if repeats._dtype.kind not in "iu":
            raise TypeError(f"{op}: repeats must be an integer tensor, got "
                            f"{repeats._dtype.name}")
        repeats = repeats.tolist()
    if isinstance(repeats, _SEQ) and len(repeats) == 1:
        repeats = repeats[0]
    if isinstance(repeats, _SEQ):
        reps = _ints((repeats,), op, "repeats")
        if len(reps) != shape[d]:
            raise ValueError(f"{op}: repeats has {len(reps)} entries but dimension {d} has size "
                             f"{shape[d]}; give one count per element (or a single int)")
        if any(r < 0 for r in reps):
            raise ValueError(f"{op}: repeats must be non-negative, got {list(reps)}")
        from .creation import asarray
        from .indexing import index_select
        idx = asarray([i for i, r in enumerate(reps) for _ in range(r)], dtype=_dt.int64,
                      device=x._device)
        return index_select(x, d, idx)
    r = _index(repeats)
    if r < 0:
        raise ValueError(f"{op}: repeats must be non-negative, got {r}")
    big = _expand(unsqueeze(x, d + 1), shape[:d + 1] + (r,) + shape[d + 1:], op)
    # clone first: reshaping the broadcast view itself could yield a read-only alias
    return _reshape(clone(big), shape[:d] + (shape[d] * r,) + shape[d + 1:], op)


def tril(input, diagonal=0, *, k=None) -> Tensor:
    """The lower triangle of the last two dims (elements above ``diagonal`` zeroed); a copy."""
    return _tri(input, diagonal, k, "tril", _tril_k)


def triu(input, diagonal=0, *, k=None) -> Tensor:
    """The upper triangle of the last two dims (elements below ``diagonal`` zeroed); a copy."""
    return _tri(input, diagonal, k, "triu", _triu_k)


def _tri(x, diagonal, k, op, cache) -> Tensor:
    _check(x, op)
    if k is not None:
        diagonal = k
    if len(x._data.shape) < 2:
        raise ValueError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                         f"{fmt_shape(x._data.shape)}")
    k = _index(diagonal)
    return _grad(op, _view(x, cache[x._device.backend](x._data, k)), x, {"k": k})


def meshgrid(*tensors, indexing="ij") -> tuple:
    """Coordinate grids from 1-D tensors (broadcast views, read-only).

    ``indexing='ij'`` (the default, as in PyTorch) gives outputs of shape ``(len(t0),
    len(t1), ...)``; ``'xy'`` (NumPy's and the Array API's default) swaps the first two dims.
    Pass ``indexing`` explicitly in code meant for both conventions.
    """
    ts = _tensor_list(tensors, "meshgrid")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not ts:
        return ()
    for i, x in enumerate(ts):
        if len(x._data.shape) > 1:
            raise ValueError(f"meshgrid: expects 0-d or 1-d tensors, but tensor {i} has shape "
                             f"{fmt_shape(x._data.shape)}")
        if x._dtype is not ts[0]._dtype:
            raise TypeError(f"meshgrid: expects all tensors to have the same dtype, got "
                            f"{ts[0]._dtype.name} and {x._dtype.name} (tensor {i})")
    sizes = [_numel(x._data.shape) for x in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    n = len(ts)
    out = []
    for i, x in enumerate(ts):
        pos = (1 - i if i < 2 else i) if swap else i
        shp = [1] * n
        shp[pos] = sizes[pos]
        out.append(_expand(_reshape(x, tuple(shp), "meshgrid"), tuple(sizes), "meshgrid"))
    return tuple(out)


# ------------------------------------------------------------------------ in-place (meta) ---
def _set_view(self, other: Tensor, op: str) -> Tensor:
    ag = self._ag
    if ag is not None and ag.requires_grad and _grad_on():
        if ag.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad ({describe(self)}) is "
                               f"being used in an in-place operation; use the out-of-place "
                               f"form, or do it under polyten.no_grad()")
        # the tensor now is the (recorded) view: it takes over that node (PyTorch's rebase)
        ag.grad_fn = other._ag.grad_fn
        ag.output_nr = other._ag.output_nr
    self._data = other._data
    return self


def _squeeze_(self, dim=None):
    return _set_view(self, squeeze(self, dim), "squeeze_")


def _unsqueeze_(self, dim):
    return _set_view(self, unsqueeze(self, dim), "unsqueeze_")


def _transpose_(self, dim0, dim1):
    return _set_view(self, transpose(self, dim0, dim1), "transpose_")


def _t_(self):
    return _set_view(self, t(self), "t_")


def _tri_(self, diagonal, fn, op):
    from .indexing import _assign_all, _graph_inplace
    if self._ag is not None and _grad_on() and \
            _graph_inplace(op, self, fn, (diagonal,)) is not None:
        return self
    check_inplace(op, self)
    _assign_all(self, fn(self, diagonal), op)
    return self


def _tril_(self, diagonal=0):
    return _tri_(self, diagonal, tril, "tril_")


def _triu_(self, diagonal=0):
    return _tri_(self, diagonal, triu, "triu_")


TENSOR_METHODS = {
    "clone": clone, "reshape": _reshape_method, "view": view, "view_as": view_as,
    "reshape_as": reshape_as, "flatten": flatten, "unflatten": unflatten, "ravel": ravel,
    "squeeze": squeeze, "unsqueeze": unsqueeze, "permute": permute, "transpose": transpose,
    "swapaxes": swapaxes, "swapdims": swapdims, "t": t, "T": property(_T), "mT": property(_mT),
    "mH": property(_mH), "H": property(_H), "movedim": movedim, "moveaxis": movedim,
    "expand": expand, "expand_as": expand_as, "broadcast_to": broadcast_to, "split": split,
    "chunk": chunk, "tensor_split": tensor_split, "unbind": unbind, "narrow": narrow,
    "flip": _flip_method, "fliplr": fliplr, "flipud": flipud, "roll": roll, "tile": tile,
    "repeat": _repeat_method, "repeat_interleave": repeat_interleave, "tril": tril,
    "triu": triu, "squeeze_": _squeeze_, "unsqueeze_": _unsqueeze_, "transpose_": _transpose_,
    "t_": _t_, "tril_": _tril_, "triu_": _triu_, "select": select,
}
