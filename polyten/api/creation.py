"""Creating tensors: from data, filled, ranges, identity matrices, and ``*_like``.

Each function resolves its device once (``device=None`` -> the context's default backend), its
dtype once (``dtype=None`` -> inferred, Python floats -> the default float dtype), validates its
arguments in user terms, and calls one creation kernel of that backend.

Both spellings work: PyTorch's (``arange(start, end, step)``, ``linspace(start, end, steps)``,
``zeros(2, 3)``) and the Python Array API's (``arange(start, stop=, step=)``,
``linspace(start, stop, num, endpoint=)``, ``eye(n_rows, n_cols, k=)``, ``zeros(shape)``).
"""

from __future__ import annotations

import builtins
import math
import operator

from ..dispatch.dispatcher import dtype_not_stored, kernels, register_default
from . import dtypes as _dt
from ._core import Tensor, describe, shape_tuple, wrap, wrap_native
from .context import resolve_device

__all__ = ["tensor", "asarray", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty",
           "zeros_like", "ones_like", "full_like", "empty_like", "arange", "linspace",
           "logspace", "eye"]

_asarray_k = kernels("asarray")
_full_k = kernels("full")
_empty_k = kernels("empty")
_arange_k = kernels("arange")
_linspace_k = kernels("linspace")
_logspace_k = kernels("logspace")
_eye_k = kernels("eye")
_astype_k = kernels("astype")
_SCALARS = (builtins.bool, builtins.int, builtins.float, builtins.complex)
_PY_TOKEN = {builtins.bool: "b", builtins.int: "i", builtins.float: "f", builtins.complex: "c"}
_PY_SCALAR_SET = frozenset(_PY_TOKEN)
_SEQ_TYPES = (list, tuple, range)
_SEQ_SET = frozenset(_SEQ_TYPES)
# NumPy dtypes polyten has no counterpart for, widened as from_foreign does
_NUMPY_WIDER = {"uint16": "int32", "uint32": "int64", "uint64": "int64",
                "longdouble": "float64", "float128": "float64", "clongdouble": "complex128",
                "complex256": "complex128"}


def _finish(t: Tensor, requires_grad: builtins.bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _is_numpy(x) -> builtins.bool:
    return type(x).__module__ == "numpy"


# ------------------------------------------------------------- nested Python data -> tensor --
class _Scan:
    """What a walk over nested sequences found: shape, element kinds, integer range."""

    __slots__ = ("op", "shape", "ndim", "kinds", "lo", "hi")

    def __init__(self, op):
        self.op = op
        self.shape = []
        self.ndim = None
        self.kinds = set()   # "b"/"i"/"f"/"c" for Python scalars, polyten dtypes for typed data
        self.lo = None
        self.hi = None

    def ints(self, lo, hi):
        if self.lo is None or lo < self.lo:
            self.lo = lo
        if self.hi is None or hi > self.hi:
            self.hi = hi


def _at(path) -> str:
    return f" at index {list(path)}" if path else ""


def _leaf_dim(st: _Scan, dim: int, value, path) -> None:
    """A number was found at ``dim``: every number must sit at the same depth."""
    if st.ndim is None:
        if len(st.shape) != dim:
            raise ValueError(f"{st.op}: expected a sequence at dim {dim} but found "
                             f"{type(value).__name__} {value!r}{_at(path)}; nested lists must "
                             f"have the same depth everywhere")
        st.ndim = dim
    elif st.ndim != dim:
        raise ValueError(f"{st.op}: expected a sequence at dim {dim} but found "
                         f"{type(value).__name__} {value!r}{_at(path)}; nested lists must have "
                         f"the same depth everywhere")


def _numpy_token(op, dtype_name, what, path):
    name = _NUMPY_WIDER.get(dtype_name, dtype_name)
    d = _dt.DTYPES.get(name)
    if d is None:
        raise TypeError(f"{op}: cannot convert {what} of dtype {dtype_name}{_at(path)} to a "
                        f"tensor; only bool, integer, floating and complex data are supported")
    return d


def _walk(seq, depth: int, st: _Scan, path: tuple, typed: builtins.bool):
    """Check ``seq`` (length = dim ``depth``) and record kinds; returns ``seq`` or a converted
    copy where tensors, NumPy arrays/scalars or ranges had to become Python data."""
    if type(seq) is range:
        seq = list(seq)
    if st.ndim is not None and depth >= st.ndim:
        raise ValueError(f"{st.op}: expected a number at dim {depth} but found a "
                         f"{type(seq).__name__}{_at(path)}; nested lists must have the same "
                         f"depth everywhere")
    n = len(seq)
    shape = st.shape
    if depth < len(shape):
        if shape[depth] != n:
            raise ValueError(f"{st.op}: expected a sequence of length {shape[depth]} at dim "
                             f"{depth} (got {n}{_at(path)}); nested lists must be "
                             f"rectangular (the same length at each depth)")
    else:
        shape.append(n)
    if n == 0:
        return seq
    types = set(map(type, seq))
    if types <= _PY_SCALAR_SET:
        _leaf_dim(st, depth + 1, seq[0], path + (0,))
        if not typed:
            for t in types:
                st.kinds.add(_PY_TOKEN[t])
        if builtins.int in types:
            ints = seq if builtins.complex not in types and builtins.float not in types \
                else [v for v in seq if type(v) is builtins.int]
            st.ints(builtins.min(ints), builtins.max(ints))
        return seq
    if types <= _SEQ_SET:
        out = None
        for i, s in enumerate(seq):
            r = _walk(s, depth + 1, st, path + (i,), typed)
            if r is not s:
                if out is None:
                    out = list(seq)
                out[i] = r
        return seq if out is None else out
    out = list(seq)
    for i, v in enumerate(seq):
        tv = type(v)
        if tv in _PY_TOKEN:
            _leaf_dim(st, depth + 1, v, path + (i,))
            if not typed:
                st.kinds.add(_PY_TOKEN[tv])
            if tv is builtins.int:
                st.ints(v, v)
        elif tv in _SEQ_SET:
            out[i] = _walk(v, depth + 1, st, path + (i,), typed)
        else:
            out[i] = _special(v, depth + 1, st, path + (i,))
    return out


def _special(v, dim: int, st: _Scan, path: tuple):
    """A tensor, NumPy array or NumPy scalar inside nested data (or something unconvertible)."""
    if isinstance(v, Tensor):
        st.kinds.add(v._dtype)
        data = v.tolist()
    elif _is_numpy(v) and hasattr(v, "dtype"):
        st.kinds.add(_numpy_token(st.op, v.dtype.name, type(v).__name__, path))
        data = v.tolist()
    elif isinstance(v, _SCALARS):  # subclasses of Python numbers (IntEnum, ...)
        data = next(c(v) for c in (builtins.bool, builtins.int, builtins.float, builtins.complex)
                    if isinstance(v, c))
        st.kinds.add(_PY_TOKEN[type(data)])
    else:
        raise TypeError(f"{st.op}: cannot convert {type(v).__name__} {v!r}{_at(path)} to a "
                        f"tensor element; elements must be numbers (bool, int, float, complex), "
                        f"tensors or NumPy arrays, in nested lists/tuples")
    if isinstance(data, list):
        return _walk(data, dim, st, path, True)
    _leaf_dim(st, dim, data, path)
    if type(data) is builtins.int:
        st.ints(data, data)
    return data


def _infer(kinds) -> _dt.dtype:
    """PyTorch's inference: each element's dtype (Python ints int64, floats the default float
    dtype, ...; tensors and NumPy values their own), promoted together."""
    default = _dt.get_default_dtype()
    out = None
    for k in kinds:
        d = k if isinstance(k, _dt.dtype) else {"b": _dt.bool, "i": _dt.int64, "f": default,
                                                 "c": default.to_complex()}[k]
        out = d if out is None else _dt.promote_types(out, d)
    return default if out is None else out  # empty: torch.tensor([]) is float32


def _leaves(obj):
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, (list, tuple)):
            stack.extend(o)
        else:
            yield o


def _check_values(op: str, st: _Scan, obj, target: _dt.dtype) -> None:
    """Values that cannot be represented in ``target`` raise (NumPy would wrap, or fail with
    its own words)."""
    k = target.kind
    kinds = st.kinds
    has_complex = "c" in kinds or builtins.any(isinstance(d, _dt.dtype) and d.kind == "c"
                                               for d in kinds)
    if k in "fui" and has_complex:
        raise TypeError(f"{op}: cannot convert complex values to {target.name}; pass a complex "
                        f"dtype (polyten.complex64) or take the real part first")
    if k not in "ui":
        return
    info = _dt.iinfo(target)
    if st.lo is not None and (st.lo < info.min or st.hi > info.max):
        bad = st.lo if st.lo < info.min else st.hi
        raise OverflowError(f"{op}: value {bad} is out of range for {target.name} "
                            f"({info.min} to {info.max}); pass a wider dtype such as "
                            f"dtype=polyten.float64")
    has_float = "f" in kinds or builtins.any(isinstance(d, _dt.dtype) and d.kind == "f"
                                             for d in kinds)
    if has_float:
        for v in _leaves(obj):
            if type(v) is builtins.float:
                if not math.isfinite(v):
                    raise ValueError(f"{op}: cannot convert {v} to {target.name}; integer "
                                     f"dtypes have no nan or inf")
                if not info.min <= math.trunc(v) <= info.max:
                    raise OverflowError(f"{op}: value {v} is out of range for {target.name} "
                                        f"({info.min} to {info.max})")


def _check_scalar(op: str, value, target: _dt.dtype):
    """A Python scalar about to be stored in ``target`` (``tensor(3.5, dtype=int64)``)."""
    if target.kind in "ui" or (target.kind == "f" and isinstance(value, builtins.complex)):
        st = _Scan(op)
        st.kinds.add(_PY_TOKEN.get(type(value), "f"))
        if type(value) is builtins.int:
            st.ints(value, value)
        _check_values(op, st, [value], target)


def _from_python(obj, dt, dev, op):
    if type(obj) in _PY_TOKEN:
        target = dt or _dt.python_scalar_dtype(obj)
        _check_scalar(op, obj, target)
        data = obj
    else:
        st = _Scan(op)
        data = _walk(obj, 0, st, (), False)
        target = dt or _infer(st.kinds)
        _check_values(op, st, data, target)
    try:
        native = _asarray_k[dev.backend](data, target.name, True, dev.index)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _conversion_error(op, data, target, exc) from None
    return wrap(native, dev, target)


def _conversion_error(op, obj, target, exc) -> Exception:
    msg = str(exc)
    if "out of bounds" in msg or "too large" in msg or "overflow" in msg.lower():
        return OverflowError(f"{op}: a value of {_outline(obj)} does not fit {target.name} "
                             f"({msg})")
    return TypeError(f"{op}: cannot convert {_outline(obj)} to a {target.name} tensor: {msg}")


def _outline(obj, depth=0) -> str:
    if isinstance(obj, (list, tuple)) and depth < 2:
        inner = ", ".join(_outline(o, depth + 1) for o in list(obj)[:4])
        more = ", ..." if len(obj) > 4 else ""
        return f"[{inner}{more}]"
    if isinstance(obj, (list, tuple)):
        return f"[{len(obj)} items]"
    return repr(obj)


def _convert(obj, dtype, device, copy, op) -> Tensor:
    dt = None if dtype is None else _dt.to_dtype(dtype)
    if isinstance(obj, Tensor):
        dev = obj._device if device is None else resolve_device(device)
        out = obj
        if dev is not obj._device:
            if copy is False:
                raise ValueError(f"{op}: copy=False but {describe(obj)} must be copied to "
                                 f"{dev}")
            out = obj.to(dev)
        if dt is not None and dt is not out._dtype:
            if copy is False:
                raise ValueError(f"{op}: copy=False but converting {obj._dtype.name} to "
                                 f"{dt.name} needs a copy")
            out = out.to(dt)
        elif copy and out is obj:
            out = obj.clone()
        return out
    dev = resolve_device(device)
    backend = dev.backend
    if isinstance(obj, _SEQ_TYPES) or (isinstance(obj, _SCALARS) and not _is_numpy(obj)):
        if copy is False:
            raise ValueError(f"{op}: copy=False, but a Python {type(obj).__name__} is always "
                             f"copied into a new tensor; use copy=None")
        if type(obj) not in _PY_TOKEN and not isinstance(obj, _SEQ_TYPES):
            obj = _special(obj, 0, _Scan(op), ())  # int/float subclasses -> plain numbers
        return _from_python(obj, dt, dev, op)
    if backend.is_native(obj):
        name = backend.dtype_name(obj)
        if name is not None and name in _dt.DTYPES:
            if copy is False and dt is not None and dt.name != name:
                raise ValueError(f"{op}: copy=False but converting {name} to {dt.name} needs "
                                 f"a copy")
            data = _asarray_k[backend](obj, None if dt is None else dt.name, copy, dev.index)
            return wrap_native(data, dev)
    if _is_numpy(obj) and hasattr(obj, "dtype"):
        _numpy_token(op, obj.dtype.name, f"a NumPy {type(obj).__name__}", ())
    elif isinstance(obj, (str, bytes, bytearray)) or not (
            hasattr(obj, "__array__") or hasattr(obj, "__array_interface__")
            or hasattr(obj, "__dlpack__") or _has_buffer(obj)):
        text = repr(obj)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise TypeError(f"{op}: cannot convert {type(obj).__name__} {text} to a tensor; pass "
                        f"a number, nested lists/tuples of numbers, a tensor, or an array "
                        f"(NumPy, or any object with __dlpack__ / __array__)")
    from .interop import from_foreign
    return from_foreign(obj, dev, dt, copy)


def _has_buffer(obj) -> builtins.bool:
    """Supports the buffer protocol (``array.array``, ``memoryview``): NumPy reads those."""
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def asarray(obj, /, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor:
    """Convert ``obj`` to a tensor (Array API ``asarray``; also ``torch.asarray``).

    Parameters
    ----------
    obj : tensor, nested sequence of numbers, Python scalar, NumPy array, or any object with
        ``__dlpack__`` / ``__array__``.
    dtype : polyten.dtype, optional
        Defaults to ``obj``'s dtype; Python floats become the default float dtype, Python ints
        int64, bools bool; nested data promotes its elements' dtypes (as ``torch.tensor``).
    device : str or polyten.device, optional
        Defaults to the current backend (``polyten.get_backend()``).
    copy : bool, optional
        ``True`` always copies; ``False`` never copies (raises ``ValueError`` if it would
        have to); ``None`` copies only when needed.

    Raises
    ------
    TypeError
        ``obj`` holds something that is not a number (a string, a dict, ``None``).
    ValueError
        Nested lists are ragged or of uneven depth.
    OverflowError
        A value does not fit the dtype (``tensor([300], dtype=polyten.uint8)``).
    """
    return _finish(_convert(obj, dtype, device, copy, "asarray"), requires_grad)


def tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``).

    Python floats give the default float dtype (float32), ints int64, bools bool; NumPy arrays
    and scalars keep their dtype; nested lists of tensors promote the tensors' dtypes.  Use
    :func:`asarray` to avoid the copy.  Errors as :func:`asarray`.
    """
    if isinstance(data, Tensor):
        out = _convert(data, dtype, device, True, "tensor")
        return _finish(out.detach() if hasattr(out, "detach") else out, requires_grad)
    return _finish(_convert(data, dtype, device, True, "tensor"), requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor` but shares memory when it can (``torch.as_tensor``)."""
    return _convert(data, dtype, device, None, "as_tensor")


def from_numpy(ndarray) -> Tensor:
    """A CPU tensor sharing memory with the NumPy array ``ndarray`` (``torch.from_numpy``).

    The result lives on the ``cpu`` backend whatever the default backend is.
    """
    if not _is_numpy(ndarray) or not hasattr(ndarray, "dtype") or not hasattr(ndarray, "ndim"):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return _convert(ndarray, None, "cpu", False, "from_numpy")


# ------------------------------------------------------------------------ filled tensors --
def _shape(args, op):
    if len(args) == 1 and type(args[0]) is builtins.int:
        n = args[0]
        if n < 0:
            raise ValueError(f"{op}: negative dimension {n} in shape ({n},)")
        return (n,)
    if not args:
        raise TypeError(f"{op}: a shape is required, e.g. {op}(2, 3) or {op}((2, 3)); "
                        f"use {op}(()) for a 0-d tensor")
    return shape_tuple(args, op)


def _size_kw(args, size, op):
    if args:
        raise TypeError(f"{op}: pass the shape once, positionally or as size=")
    return (size,)


def _resolve(dtype, device):
    dev = resolve_device(device)
    dt = _dt.get_default_dtype() if dtype is None else _dt.to_dtype(dtype)
    if dt.name not in dev.backend.dtypes:
        raise dtype_not_stored(dev.backend, dt.name)
    return dev, dt


def _fill_value(op: str, value, dt=None):
    """``value`` as a plain Python number fit for ``dt`` (checked as PyTorch does: no nan in
    integers, no value outside the dtype's range, no complex with an imaginary part in a real
    dtype).  With ``dt=None`` only the type is checked."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{op}: fill_value must be a number or a one-element tensor, got "
                             f"{describe(value)}")
        value = value.item()
    elif type(value) not in _PY_TOKEN:
        if _is_numpy(value) and getattr(value, "shape", None) == ():
            value = value.item()
        elif isinstance(value, _SCALARS):
            value = _special(value, 0, _Scan(op), ())
        else:
            raise TypeError(f"{op}: fill_value must be a number (bool, int, float, complex), "
                            f"got {type(value).__name__} {value!r}")
    if dt is None:
        return value
    k = dt.kind
    if k == "b":
        return builtins.bool(value)
    if k == "c":
        return builtins.complex(value)
    if isinstance(value, builtins.complex):
        if value.imag != 0:
            raise TypeError(f"{op}: cannot fill a {dt.name} tensor with the complex value "
                            f"{value!r}; pass a complex dtype or a real value")
        value = value.real
    if k == "f":
        fmax = _FLOAT_MAX[dt.name]
        if type(value) is builtins.float:
            if -fmax <= value <= fmax or value != value or value in (math.inf, -math.inf):
                return value
        else:
            try:
                v = builtins.float(value)
            except OverflowError:
                v = math.inf
            if -fmax <= v <= fmax:
                return v
        raise OverflowError(f"{op}: fill value {value} is out of range for {dt.name} "
                            f"(largest finite value {fmax:g})")
    if isinstance(value, builtins.float):
        if not math.isfinite(value):
            raise ValueError(f"{op}: cannot fill a {dt.name} tensor with {value}; integer "
                             f"dtypes have no nan or inf")
        value = math.trunc(value)
    lo, hi = _INT_RANGE[dt.name]
    value = builtins.int(value)
    if not lo <= value <= hi:
        raise OverflowError(f"{op}: fill value {value} is out of range for {dt.name} "
                            f"({lo} to {hi})")
    return value


_FLOAT_MAX = {n: _dt.finfo(n).max for n in (
    "float16", "bfloat16", "float32", "float64")}
_INT_RANGE = {n: (_dt.iinfo(n).min, _dt.iinfo(n).max)
              for n in ("uint8", "int8", "int16", "int32", "int64")}


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (``torch.full``; Array API ``full``).

    The dtype defaults to the value's: bool, int64, the default float dtype or the default
    complex dtype.  A value the dtype cannot hold (``300`` in uint8, ``nan`` in int64) raises.
    """
    shape = _shape((size,), "full")
    dev = resolve_device(device)
    if dtype is None:
        value = _fill_value("full", fill_value)
        dt = _dt.python_scalar_dtype(value)
        if dt.kind == "i":
            value = _fill_value("full", value, dt)  # only ints can overflow their own dtype
    else:
        dt = _dt.to_dtype(dtype)
        value = _fill_value("full", fill_value, dt)
    data = _full_k[dev.backend](shape, value, dt.name, dev.index)
    return _finish(wrap(data, dev, dt), requires_grad)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))`` (Array API ``zeros(shape)``) and
    ``zeros(size=(2, 3))`` all work."""
    shape = _shape(shape if size is None else _size_kw(shape, size, "zeros"), "zeros")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_full_k[dev.backend](shape, 0, dt.name, dev.index), dev, dt),
                   requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: ``ones(2, 3)``, ``ones((2, 3))`` (Array API ``ones(shape)``) and
    ``ones(size=(2, 3))`` all work."""
    shape = _shape(shape if size is None else _size_kw(shape, size, "ones"), "ones")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_full_k[dev.backend](shape, 1, dt.name, dev.index), dev, dt),
                   requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor (its values are whatever memory held); shapes as :func:`zeros`."""
    shape = _shape(shape if size is None else _size_kw(shape, size, "empty"), "empty")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_empty_k[dev.backend](shape, dt.name, dev.index), dev, dt),
                   requires_grad)


def _like(name, x, dtype, device):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor, got {describe(x)}")
    dev = x._device if device is None else resolve_device(device)
    dt = x._dtype if dtype is None else _dt.to_dtype(dtype)
    return dev, dt


def zeros_like(input, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("zeros_like", input, dtype, device)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), 0, dt.name, dev.index),
                        dev, dt), requires_grad)


def ones_like(input, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("ones_like", input, dtype, device)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), 1, dt.name, dev.index),
                        dev, dt), requires_grad)


def full_like(input, /, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``fill_value`` everywhere, with the shape (and by default dtype, device) of ``input``."""
    dev, dt = _like("full_like", input, dtype, device)
    value = _fill_value("full_like", fill_value, dt)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), value, dt.name,
                                             dev.index), dev, dt), requires_grad)


def empty_like(input, /, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised, with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("empty_like", input, dtype, device)
    return _finish(wrap(_empty_k[dev.backend](tuple(input._data.shape), dt.name, dev.index),
                        dev, dt), requires_grad)


# ------------------------------------------------------------------------------- ranges ---
def _number(op: str, name: str, v, allow_complex: builtins.bool = False):
    """A range bound as a Python number (one-element tensors and NumPy scalars accepted)."""
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ValueError(f"{op}: {name} must be a number or a one-element tensor, got "
                             f"{describe(v)}")
        v = v.item()
    elif type(v) not in _PY_TOKEN:
        if _is_numpy(v) and getattr(v, "shape", None) == ():
            v = v.item()
        elif isinstance(v, _SCALARS):
            v = _special(v, 0, _Scan(op), ())
        else:
            raise TypeError(f"{op}: {name} must be a number, got {type(v).__name__} {v!r}")
    if type(v) is builtins.bool:
        v = builtins.int(v)
    if type(v) is builtins.complex and not allow_complex:
        raise TypeError(f"{op}: {name} must be a real number, got complex {v!r}")
    return v


def arange(start=0, end=None, step=1, *, stop=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) spaced by ``step``.

    ``arange(5)``, ``arange(2, 5)``, ``arange(0, 1, 0.1)`` (``torch.arange``) and the Array API
    ``arange(start, stop=None, step=1)`` (``stop=`` is ``end``).  The length is
    ``ceil((end - start) / step)``.

    Parameters
    ----------
    dtype : polyten.dtype, optional
        int64 when ``start``, ``end`` and ``step`` are all integers, else the default float
        dtype.  With an integer dtype the bounds are truncated to integers first (as PyTorch).

    Raises
    ------
    ValueError
        ``step`` is zero, its sign cannot reach ``end`` from ``start``, or a bound is not
        finite.
    TypeError
        A bound is not a real number, or ``dtype`` is bool/complex.
    """
    if stop is not None:
        if end is not None:
            raise TypeError("arange: got both end= and stop= (the PyTorch and Array API names "
                            "of the same argument); pass one")
        end = stop
    if end is None:
        start, end = 0, start
    _int = builtins.int
    all_int = type(start) is _int and type(end) is _int and type(step) is _int
    if not all_int:
        start = _number("arange", "start", start)
        end = _number("arange", "end", end)
        step = _number("arange", "step", step)
        all_int = type(start) is _int and type(end) is _int and type(step) is _int
        if not all_int and not (math.isfinite(start) and math.isfinite(end)
                                and math.isfinite(step)):
            raise ValueError(f"arange: unsupported range: {start} -> {end} with step {step}; "
                             f"start, end and step must be finite")
    if dtype is None:
        dt = _dt.int64 if all_int else _dt.get_default_dtype()
    else:
        dt = _dt.to_dtype(dtype)
    if dt.kind not in "uif":
        raise TypeError(f"arange: dtype {dt.name} is not supported; arange makes integer or "
                        f"real floating ranges (e.g. dtype=polyten.int64 or polyten.float32)")
    integral = dt.kind in "ui"
    if integral:
        if not all_int:
            start, end, step = _int(start), _int(end), _int(step)
    else:
        start, end, step = builtins.float(start), builtins.float(end), builtins.float(step)
    if step == 0:
        raise ValueError(f"arange: step must be nonzero (got step={step}"
                         f"{' after truncation to ' + dt.name if integral else ''})")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise ValueError(f"arange: upper bound and lower bound inconsistent with step sign: "
                         f"start={start}, end={end}, step={step}; use "
                         f"step={'-' if step > 0 else ''}{abs(step)} or swap start and end")
    if integral:
        q, r = divmod(end - start, step)
        n = q + (r != 0)
        if n:
            lo, hi = _INT_RANGE[dt.name]
            last = start + (n - 1) * step
            for v in (start, last):
                if not lo <= v <= hi:
                    raise OverflowError(f"arange: value {v} of the range is out of range for "
                                        f"{dt.name} ({lo} to {hi})")
    dev = resolve_device(device)
    data = _arange_k[dev.backend](start, end, step, dt.name, dev.index)
    return _finish(wrap(data, dev, dt), requires_grad)


def _steps(op, steps, num):
    if num is not None:
        if steps is not None:
            raise TypeError(f"{op}: got both steps= and num= (the PyTorch and Array API names "
                            f"of the same argument); pass one")
        steps = num
    if steps is None:
        raise TypeError(f"{op}: the number of points (steps, or num in the Array API) is "
                        f"required, e.g. {op}(0, 1, steps=5)")
    if isinstance(steps, Tensor):
        steps = steps.item()
    try:
        n = operator.index(steps)
    except TypeError:
        raise TypeError(f"{op}: steps must be an int, got {type(steps).__name__} "
                        f"{steps!r}") from None
    if n < 0:
        raise ValueError(f"{op}: number of steps must be non-negative, got {n}")
    return n


def _range_dtypes(op, dtype, start, end):
    """(result dtype, dtype the kernel computes in)."""
    is_complex = type(start) is builtins.complex or type(end) is builtins.complex
    if dtype is None:
        dt = _dt.get_default_dtype()
        if is_complex:
            dt = dt.to_complex()
    else:
        dt = _dt.to_dtype(dtype)
    if dt.kind == "b":
        raise TypeError(f"{op}: dtype bool is not supported; use a floating, complex or "
                        f"integer dtype")
    if is_complex and dt.kind != "c":
        raise TypeError(f"{op}: complex start/end need a complex dtype, got {dt.name}")
    if dt.kind in "ui":
        info = _dt.iinfo(dt)
        for v in (start, end):
            if not math.isfinite(v):
                raise ValueError(f"{op}: cannot make {dt.name} values from {v}; integer "
                                 f"dtypes have no nan or inf")
            if not info.min <= math.trunc(v) <= info.max:
                raise OverflowError(f"{op}: value {v} is out of range for {dt.name} "
                                    f"({info.min} to {info.max})")
        return dt, _dt.float64
    return dt, dt


def linspace(start, end=None, steps=None, *, stop=None, num=None, endpoint=True, dtype=None,
             device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included by default).

    ``linspace(0, 1, 5)`` / ``linspace(0, 1, steps=5)`` as ``torch.linspace``, and the Array
    API ``linspace(start, stop, num, endpoint=True)``; ``endpoint=False`` leaves ``stop`` out.
    The dtype defaults to the default float dtype (complex if a bound is complex); with an
    integer dtype the values are computed in float64 and truncated (as PyTorch).
    """
    if stop is not None:
        if end is not None:
            raise TypeError("linspace: got both end= and stop= (the PyTorch and Array API "
                            "names of the same argument); pass one")
        end = stop
    if end is None:
        raise TypeError("linspace: end (stop) is required, e.g. linspace(0, 1, steps=5)")
    n = _steps("linspace", steps, num)
    start = _number("linspace", "start", start, True)
    end = _number("linspace", "end", end, True)
    dt, work = _range_dtypes("linspace", dtype, start, end)
    if not endpoint and n > 0:
        end = start + (end - start) * (n - 1) / n
    dev = resolve_device(device)
    b = dev.backend
    data = _linspace_k[b](start, end, n, work.name, dev.index)
    if work is not dt:
        data = _astype_k[b](data, dt.name)
    return _finish(wrap(data, dev, dt), requires_grad)


def _logspace_default(start, stop, num, base, dtype, device) -> Tensor:
    """``base ** linspace(start, stop, num)`` in polyten ops (float64/complex128 accuracy)."""
    from .elementwise import pow as _pow
    work = _dt.complex128 if dtype.kind == "c" else _dt.float64
    lin = linspace(start, stop, num, dtype=work, device=device)
    out = _pow(base, lin)
    return out if out._dtype is dtype else out.to(dtype)


register_default("logspace", _logspace_default)


def logspace(start, end=None, steps=None, base=10.0, *, stop=None, num=None, dtype=None,
             device=None, requires_grad=False) -> Tensor:
    """``base ** linspace(start, end, steps)`` (``torch.logspace``).

    Computed in float64 (complex128 for complex bounds) and rounded once to ``dtype``; with an
    integer dtype the values are truncated.
    """
    if stop is not None:
        if end is not None:
            raise TypeError("logspace: got both end= and stop=; pass one")
        end = stop
    if end is None:
        raise TypeError("logspace: end is required, e.g. logspace(0, 3, steps=4)")
    n = _steps("logspace", steps, num)
    start = _number("logspace", "start", start, True)
    end = _number("logspace", "end", end, True)
    base = _number("logspace", "base", base, True)
    dt, work = _range_dtypes("logspace", dtype, start, end)
    dev = resolve_device(device)
    b = dev.backend
    k = _logspace_k[b]
    if k is None:
        out = _logspace_default(start, end, n, base, work, dev)
        data = out._data
    else:
        data = k(start, end, n, base, work.name, dev.index)
    if work is not dt:
        data = _astype_k[b](data, dt.name)
    return _finish(wrap(data, dev, dt), requires_grad)


def eye(n, m=None, *, k=0, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A 2-D tensor with ones on the ``k``-th diagonal and zeros elsewhere.

    ``eye(n)``, ``eye(n, m)`` (``torch.eye``) and the Array API ``eye(n_rows, n_cols, k=0)``.
    """
    def count(v, name):
        if isinstance(v, Tensor):
            v = v.item()
        try:
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"eye: {name} must be an int, got {type(v).__name__} "
                            f"{v!r}") from None
        if v < 0:
            raise ValueError(f"eye: {name} must be greater or equal to 0, got {v}")
        return v

    rows = count(n, "n")
    cols = rows if m is None else count(m, "m")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"eye: k must be an int, got {type(k).__name__} {k!r}") from None
    dev, dt = _resolve(dtype, device)
    data = _eye_k[dev.backend](rows, cols, k, dt.name, dev.index)
    return _finish(wrap(data, dev, dt), requires_grad)


# ------------------------------------------------------------------- Tensor.new_* methods --
def _new_kw(self, dtype, device):
    return (self._dtype if dtype is None else dtype,
            self._device if device is None else device)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor from ``data`` with this tensor's dtype and device unless given."""
    dt, dev = _new_kw(self, dtype, device)
    return tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros of shape ``size`` with this tensor's dtype and device unless given."""
    dt, dev = _new_kw(self, dtype, device)
    return zeros(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones of shape ``size`` with this tensor's dtype and device unless given."""
    dt, dev = _new_kw(self, dtype, device)
    return ones(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised, of shape ``size``, with this tensor's dtype and device unless given."""
    dt, dev = _new_kw(self, dtype, device)
    return empty(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``fill_value`` everywhere, with this tensor's dtype and device unless given."""
    dt, dev = _new_kw(self, dtype, device)
    return full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


TENSOR_METHODS = {"new_tensor": new_tensor, "new_zeros": new_zeros, "new_ones": new_ones,
                  "new_empty": new_empty, "new_full": new_full}
