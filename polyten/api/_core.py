"""Shared rules of the API layer: dims, broadcasting, devices, casting, wrapping.

One place for each rule, so every op validates the same way and words its errors the same way.
"""

from __future__ import annotations

import builtins
import operator
from typing import Dict, Optional, Sequence, Tuple

from ..dispatch.dispatcher import dtype_not_stored, kernels
from ..dispatch.errors import DeviceMismatchError, fmt_shape
from .dtypes import DTYPES, dtype, get_default_dtype, to_dtype
from .tensor import Size, Tensor, wrap

__all__ = ["normalize_dim", "normalize_dims", "broadcast_shapes", "check_broadcast",
           "same_device", "cast", "wrap_native", "describe", "is_scalar", "Tensor", "wrap",
           "Size", "shape_tuple", "as_operand"]

_SCALAR_TYPES = (builtins.bool, builtins.int, builtins.float, builtins.complex)
_astype = kernels("astype")


def is_scalar(x) -> builtins.bool:
    """A Python (or NumPy) number that acts as a weak scalar in an op."""
    if isinstance(x, _SCALAR_TYPES):
        return True
    return (type(x).__module__ == "numpy" and getattr(x, "shape", None) == ()
            and not hasattr(x, "__len__"))


def scalar_value(x):
    """NumPy scalars become the Python number of the same kind."""
    if isinstance(x, _SCALAR_TYPES):
        return x
    return x.item()


def describe(x) -> str:
    """``float32 tensor of shape (3, 4) on cpu``: how errors name an operand."""
    if isinstance(x, Tensor):
        return f"{x._dtype.name} tensor of shape {fmt_shape(x._data.shape)} on {x._device}"
    return f"{type(x).__name__} {x!r}"


def normalize_dim(dim, ndim: int, op: str) -> int:
    """A dim in ``[-ndim, ndim)`` (0-d tensors accept -1 and 0) -> non-negative int."""
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__} {dim!r}") from None
    n = ndim if ndim > 0 else 1
    if not -n <= d < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return d + n if d < 0 else d


def normalize_dims(dim, ndim: int, op: str) -> Optional[Tuple[int, ...]]:
    """``None`` (all dims) or an int / sequence of ints -> sorted tuple of unique dims."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        dims = tuple(normalize_dim(d, ndim, op) for d in dim)
        if len(set(dims)) != len(dims):
            raise ValueError(f"{op}: dim {tuple(dim)} names a dimension more than once")
        if ndim == 0:
            return ()
        return tuple(sorted(dims))
    d = normalize_dim(dim, ndim, op)
    return () if ndim == 0 else (d,)


def dim_or_axis(dim, axis, op: str):
    """Accept PyTorch's ``dim=`` and the Array API's ``axis=`` (not both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim={dim!r} and axis={axis!r}; pass one of them")
        return axis
    return dim


_BCAST_CACHE: Dict[Tuple[tuple, tuple], tuple] = {}


def _broadcast_pair(a: tuple, b: tuple, op: str) -> tuple:
    key = (a, b)
    r = _BCAST_CACHE.get(key)
    if r is not None:
        return r
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(
                f"{op}: cannot broadcast shapes {fmt_shape(a)} and {fmt_shape(b)}: dimension "
                f"{i - n} is {x} in the first and {y} in the second (sizes must be equal, or "
                f"one of them 1)")
    r = tuple(out)
    if len(_BCAST_CACHE) < 4096:
        _BCAST_CACHE[key] = r
    return r


def broadcast_shapes(*shapes, op: str = "broadcast_shapes") -> Size:
    """The shape that ``shapes`` broadcast to; a ValueError naming the op and shapes if none."""
    out: tuple = ()
    for s in shapes:
        s = tuple(s)
        out = _broadcast_pair(out, s, op) if out != s else out
    return Size(out)


def check_broadcast(op: str, a: tuple, b: tuple) -> tuple:
    return _broadcast_pair(a, b, op)


def device_mismatch(op: str, tensors) -> DeviceMismatchError:
    devs = []
    for t in tensors:
        if isinstance(t, Tensor) and t._device not in devs:
            devs.append(t._device)
    first, second = devs[0], devs[1]
    return DeviceMismatchError(
        f"{op}: expected all tensors on the same device, but found tensors on {first} and "
        f"{second}. Move them to one device first, e.g. other.to('{first}') "
        f"(or x.to('{second}')).")


def same_device(op: str, *tensors):
    """The common device of the tensors among the arguments; DeviceMismatchError otherwise."""
    dev = None
    for t in tensors:
        if isinstance(t, Tensor):
            if dev is None:
                dev = t._device
            elif t._device is not dev:
                raise device_mismatch(op, tensors)
    return dev


def cast(t: Tensor, dt: dtype):
    """``t``'s native data in dtype ``dt`` (no copy if already so)."""
    if t._dtype is dt:
        return t._data
    backend = t._device.backend
    if dt.name not in backend.dtypes:  # e.g. a complex result on a backend without complex
        raise dtype_not_stored(backend, dt.name)
    return _astype[backend](t._data, dt.name)


def wrap_native(data, device) -> Tensor:
    """Wrap a native array whose dtype the backend reports (slow path: creation/interop)."""
    name = device.backend.dtype_name(data)
    if name is None or name not in DTYPES:
        raise TypeError(f"backend {device.type!r} returned an array of a dtype polyten does "
                        f"not support ({getattr(data, 'dtype', type(data).__name__)})")
    return wrap(data, device, DTYPES[name])


def shape_tuple(shape, op: str) -> Tuple[int, ...]:
    """``(2, 3)``, ``[2, 3]``, ``2, 3`` (varargs, passed as a tuple) or a Size -> tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = shape[0]
    elif len(shape) == 1 and isinstance(shape[0], Tensor):
        shape = shape[0].tolist()
        if isinstance(shape, int):
            shape = (shape,)
    out = []
    for s in shape:
        try:
            v = operator.index(s)
        except TypeError:
            raise TypeError(f"{op}: shape entries must be ints, got {type(s).__name__} "
                            f"{s!r} in {tuple(shape)!r}") from None
        if v < 0:
            raise ValueError(f"{op}: negative dimension {v} in shape {tuple(shape)!r}")
        out.append(v)
    return tuple(out)


def as_operand(x, like: Tensor, op: str) -> Tensor:
    """Turn a non-tensor operand (NumPy array, list) into a tensor on ``like``'s device."""
    from .creation import asarray
    try:
        return asarray(x, device=like._device)
    except Exception as exc:
        raise TypeError(f"{op}: unsupported operand {describe(x)}: {exc}") from None


def default_float() -> dtype:
    return get_default_dtype()


resolve_dtype = to_dtype


def bump_version(t: Tensor) -> None:
    """Count an in-place write to ``t`` (and so to every view sharing its counter)."""
    v = t._version
    if v is not None:
        v[0] += 1


def share_version(base: Tensor, view: Tensor) -> Tensor:
    """Make ``view`` share ``base``'s version counter (it aliases base's memory)."""
    v = base._version
    if v is None:
        v = base._version = [0]
    view._version = v
    return view


def check_inplace(op: str, t: Tensor, other=None) -> None:
    """In-place writes and autograd: refuse what would silently corrupt gradients, and count
    the write in ``t``'s version counter.

    Ops that can record themselves in place (elementwise ``add_``, ``+=``, ...) handle graph
    tensors before calling this; everything else refuses them here.
    """
    ag = t._ag
    if ag is not None and ag.requires_grad:
        from ..autograd.grad_mode import grad_enabled
        if grad_enabled():
            if ag.grad_fn is None:
                raise RuntimeError(
                    f"{op}: a leaf tensor that requires grad ({describe(t)}) is being used in "
                    f"an in-place operation; do it under polyten.no_grad() (e.g. a parameter "
                    f"update) or on a clone()")
            raise RuntimeError(
                f"{op}: in-place modification of a tensor that is part of an autograd graph "
                f"({describe(t)}, produced by {ag.grad_fn.name()}) is not supported by this "
                f"op yet; use the out-of-place form")
    if other is not None and getattr(other, "_ag", None) is not None and \
            other._ag.requires_grad:
        from ..autograd.grad_mode import grad_enabled
        if grad_enabled():
            raise RuntimeError(
                f"{op}: writing a tensor that requires grad into {describe(t)} in place is not "
                f"supported by this op yet (the gradient would be lost); use the out-of-place "
                f"form")
    v = t._version
    if v is not None:
        v[0] += 1
