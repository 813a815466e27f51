"""Creating tensors: from data, filled, ranges, and ``*_like``.

Each function resolves its device once (``device=None`` -> the context's default backend), its
dtype once (``dtype=None`` -> inferred, Python floats -> the default float dtype), and calls
one creation kernel of that backend.
"""

from __future__ import annotations

import builtins
import operator

from ..dispatch.dispatcher import kernels
from . import dtypes as _dt
from ._core import Tensor, shape_tuple, wrap, wrap_native, describe
from .context import resolve_device

__all__ = ["tensor", "asarray", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty",
           "zeros_like", "ones_like", "full_like", "empty_like"]

_asarray_k = kernels("asarray")
_full_k = kernels("full")
_empty_k = kernels("empty")
_SCALARS = (builtins.bool, builtins.int, builtins.float, builtins.complex)


def _finish(t: Tensor, requires_grad: builtins.bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_from_python(obj):
    """The polyten dtype PyTorch would give a Python scalar / nested sequence (None: unknown)."""
    kinds = set()
    stack = [obj]
    count = 0
    while stack:
        o = stack.pop()
        if isinstance(o, (list, tuple)):
            stack.extend(o)
            continue
        if isinstance(o, Tensor):
            kinds.add(o._dtype)
            continue
        if isinstance(o, builtins.bool):
            kinds.add("b")
        elif isinstance(o, builtins.int):
            kinds.add("i")
        elif isinstance(o, builtins.float):
            kinds.add("f")
        elif isinstance(o, builtins.complex):
            kinds.add("c")
        else:
            return None
        count += 1
    strong = [k for k in kinds if isinstance(k, _dt.dtype)]
    if strong:
        d = strong[0]
        for k in strong[1:]:
            d = _dt.promote_types(d, k)
        return d
    if "c" in kinds:
        return _dt.get_default_dtype().to_complex()
    if "f" in kinds:
        return _dt.get_default_dtype()
    if "i" in kinds:
        return _dt.int64
    if "b" in kinds:
        return _dt.bool
    return _dt.get_default_dtype()  # empty list: torch.tensor([]) is float32


def _unwrap_nested(obj):
    if isinstance(obj, Tensor):
        return obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [_unwrap_nested(o) for o in obj]
    return obj


def asarray(obj, /, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor:
    """Convert ``obj`` to a tensor (Array API ``asarray``; also ``torch.as_tensor``).

    Parameters
    ----------
    obj : tensor, nested sequence of numbers, Python scalar, NumPy array, or any object with
        ``__dlpack__`` / ``__array__``.
    dtype : polyten.dtype, optional
        Defaults to ``obj``'s dtype; Python floats become the default float dtype, Python ints
        int64, bools bool.
    device : str or polyten.device, optional
        Defaults to the current backend (``polyten.get_backend()``).
    copy : bool, optional
        ``True`` always copies; ``False`` never copies (raises if it would have to);
        ``None`` copies only when needed.
    """
    dt = None if dtype is None else _dt.to_dtype(dtype)
    if isinstance(obj, Tensor):
        dev = obj._device if device is None else resolve_device(device)
        out = obj
        if dev is not obj._device:
            if copy is False:
                raise ValueError(f"asarray: copy=False but {describe(obj)} must be copied to "
                                 f"{dev}")
            out = obj.to(dev)
        if dt is not None and dt is not out._dtype:
            if copy is False:
                raise ValueError(f"asarray: copy=False but converting {obj._dtype.name} to "
                                 f"{dt.name} needs a copy")
            out = out.to(dt)
        elif copy and out is obj:
            out = obj.clone()
        return _finish(out, requires_grad)
    dev = resolve_device(device)
    backend = dev.backend
    py_data = isinstance(obj, _SCALARS) or isinstance(obj, (list, tuple))
    if py_data:
        inferred = _infer_from_python(obj)
        if inferred is None:
            bad = _first_bad(obj)
            raise TypeError(f"asarray: cannot convert {type(bad).__name__} {bad!r} to a tensor "
                            f"element; elements must be numbers (bool, int, float, complex) "
                            f"or tensors in nested lists/tuples")
        if isinstance(obj, (list, tuple)):
            obj = _unwrap_nested(obj)
        target = dt or inferred
        try:
            data = _asarray_k[backend](obj, target.name, True, dev.index)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _conversion_error(obj, exc) from None
        return _finish(wrap(data, dev, target), requires_grad)
    if backend.is_native(obj):
        data = _asarray_k[backend](obj, None if dt is None else dt.name, copy, dev.index)
        return _finish(wrap_native(data, dev), requires_grad)
    from .interop import from_foreign
    t = from_foreign(obj, dev, dt, copy)
    return _finish(t, requires_grad)


def _first_bad(obj):
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, (list, tuple)):
            stack.extend(reversed(o))
        elif not isinstance(o, _SCALARS + (Tensor,)):
            return o
    return obj


def _conversion_error(obj, exc) -> Exception:
    msg = str(exc)
    if "inhomogeneous" in msg or "sequence" in msg:
        return ValueError(f"tensor: nested sequences have ragged lengths; every inner list at "
                          f"one depth must have the same length (got {_outline(obj)})")
    if "out of bounds" in msg or "overflow" in msg.lower():
        return OverflowError(f"tensor: a value does not fit the dtype: {msg}")
    return TypeError(f"tensor: cannot convert {_outline(obj)} to a tensor: {msg}")


def _outline(obj, depth=0) -> str:
    if isinstance(obj, (list, tuple)) and depth < 2:
        inner = ", ".join(_outline(o, depth + 1) for o in list(obj)[:4])
        more = ", ..." if len(obj) > 4 else ""
        return f"[{inner}{more}]"
    if isinstance(obj, (list, tuple)):
        return f"[{len(obj)} items]"
    return repr(obj)


def tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``).

    Python floats give the default float dtype (float32), ints int64, bools bool; NumPy arrays
    keep their dtype.  Use :func:`asarray` to avoid the copy.
    """
    if isinstance(data, Tensor):
        out = asarray(data, dtype=dtype, device=device, copy=True)
        return _finish(out.detach() if hasattr(out, "detach") else out, requires_grad)
    return asarray(data, dtype=dtype, device=device, copy=True, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor` but shares memory when it can (``torch.as_tensor``)."""
    return asarray(data, dtype=dtype, device=device)


def from_numpy(ndarray) -> Tensor:
    """A CPU tensor sharing memory with the NumPy array ``ndarray`` (``torch.from_numpy``).

    The result lives on the ``cpu`` backend whatever the default backend is.
    """
    if type(ndarray).__module__ != "numpy" or not hasattr(ndarray, "dtype"):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return asarray(ndarray, device="cpu", copy=False)


def _resolve(dtype, device, fill=None):
    dev = resolve_device(device)
    if dtype is None:
        dt = _dt.python_scalar_dtype(fill) if fill is not None else _dt.get_default_dtype()
    else:
        dt = _dt.to_dtype(dtype)
    return dev, dt


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``; dtype from the value if not given."""
    shape = shape_tuple((size,) if isinstance(size, int) else tuple(size), "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dev, dt = _resolve(dtype, device, fill_value)
    data = _full_k[dev.backend](shape, fill_value, dt.name, dev.index)
    return _finish(wrap(data, dev, dt), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` and ``zeros((2, 3))`` both work."""
    shape = shape_tuple(size, "zeros")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_full_k[dev.backend](shape, 0, dt.name, dev.index), dev, dt),
                   requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones; ``ones(2, 3)`` and ``ones((2, 3))`` both work."""
    shape = shape_tuple(size, "ones")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_full_k[dev.backend](shape, 1, dt.name, dev.index), dev, dt),
                   requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor (its values are whatever memory held)."""
    shape = shape_tuple(size, "empty")
    dev, dt = _resolve(dtype, device)
    return _finish(wrap(_empty_k[dev.backend](shape, dt.name, dev.index), dev, dt),
                   requires_grad)


def _like(name, x, dtype, device):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor, got {describe(x)}")
    dev = x._device if device is None else resolve_device(device)
    dt = x._dtype if dtype is None else _dt.to_dtype(dtype)
    return dev, dt


def zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("zeros_like", input, dtype, device)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), 0, dt.name, dev.index),
                        dev, dt), requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("ones_like", input, dtype, device)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), 1, dt.name, dev.index),
                        dev, dt), requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``fill_value`` everywhere, with the shape (and by default dtype, device) of ``input``."""
    dev, dt = _like("full_like", input, dtype, device)
    return _finish(wrap(_full_k[dev.backend](tuple(input._data.shape), fill_value, dt.name,
                                             dev.index), dev, dt), requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised, with the shape (and by default dtype and device) of ``input``."""
    dev, dt = _like("empty_like", input, dtype, device)
    return _finish(wrap(_empty_k[dev.backend](tuple(input._data.shape), dt.name, dev.index),
                        dev, dt), requires_grad)
