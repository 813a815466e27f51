"""Moving tensors between backends, dtypes and the outside world (NumPy, DLPack, Python).

``t.to(...)`` is the single transfer path: source backend ``to_host`` -> NumPy array ->
destination backend ``from_host``.  Host arrays are only touched inside these functions, and
NumPy is imported lazily here, never at ``import polyten`` time.
"""

from __future__ import annotations

import builtins

from ..dispatch.device import Device
from ..dispatch.dispatcher import kernels
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from ._core import Tensor, cast, describe, wrap, wrap_native
from .context import resolve_device
from .pinning import upload

__all__ = ["from_dlpack", "to_numpy"]

_to_host = kernels("to_host")
_from_host = kernels("from_host")
_from_dlpack = kernels("from_dlpack")
_copy = kernels("copy")
_is_contig = kernels("is_contiguous")


def _parse_to_args(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    non_blocking = builtins.bool(kwargs.pop("non_blocking", False))
    if kwargs:
        raise TypeError(f"to(): unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, _dt.dtype):
            dtype = a
        elif isinstance(a, (str, Device)):
            try:
                dtype = _dt.to_dtype(a) if isinstance(a, str) and a in _dt.DTYPES else dtype
                if not (isinstance(a, str) and a in _dt.DTYPES):
                    device = a
            except TypeError:
                device = a
        elif isinstance(a, Tensor):
            device, dtype = a._device, a._dtype
        elif isinstance(a, builtins.bool):
            copy = a
        else:
            try:
                dtype = _dt.to_dtype(a)
            except TypeError:
                raise TypeError(f"to(): expected a device, a dtype or a tensor, got "
                                f"{describe(a)}") from None
    return device, dtype, copy, non_blocking


def to(self, *args, **kwargs) -> Tensor:
    """Move and/or cast: ``t.to("cuda")``, ``t.to(polyten.float64)``, ``t.to("cpu", polyten.int32)``,
    ``t.to(other)`` (other's device and dtype).  Returns ``self`` when nothing changes (unless
    ``copy=True``).

    ``non_blocking=True`` on a tensor in page-locked memory (``pin_memory()``, or a batch of a
    ``DataLoader(pin_memory=True)``) copies it to the accelerator asynchronously, as PyTorch:
    the call returns at once, and the host must not write into the source until the device
    has read it.  Other copies are synchronous."""
    device, dtype, copy, non_blocking = _parse_to_args(list(args), dict(kwargs))
    dev = self._device if device is None else resolve_device(device)
    dt = self._dtype if dtype is None else _dt.to_dtype(dtype)
    out = self
    if dev is not self._device:
        out = _transfer(out, dev, non_blocking)
        copy = False
    if dt is not out._dtype:
        src = out
        out = wrap(cast(out, dt), out._device, dt)
        if src._ag is not None and _grad_on() and dt.kind in "fc":
            _record(_rule("astype"), out, (src,))
        copy = False
    if copy:  # nothing moved or cast: a recorded copy, as torch's to(copy=True)
        from .shape import clone
        out = clone(out)
    return out




def _transfer(t: Tensor, dev: Device, non_blocking: builtins.bool = False) -> Tensor:
    src = t._device
    peer = getattr(dev.backend, "copy_between_devices", None)  # cuda:i -> cuda:j (issue 7)
    if peer is not None and src.backend is dev.backend:
        return _transferred(t, wrap(peer(t._data, dev.index), dev, t._dtype), src)
    host = _to_host[src.backend](t._data)
    with dev.backend.device_guard(dev.index if dev.index is not None else 0):
        # the asynchronous path only for a host tensor's own memory, already page-locked
        data = upload(host, dev, non_blocking and host is t._data)
        if _host_alias(data, t._data):
            # two host backends hand the same NumPy memory through: .to() must copy, as it
            # does between real devices
            data = _copy[dev.backend](data)
    return _transferred(t, wrap(data, dev, t._dtype), src)


def _transferred(t: Tensor, out: Tensor, src: Device) -> Tensor:
    if t._ag is not None and _grad_on():
        _record(_rule("to_device"), out, (t,), {"device": src})
    return out


def _host_alias(a, b) -> builtins.bool:
    import numpy as np  # host arrays only: lazily
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
        np.may_share_memory(a, b)


def cpu(self) -> Tensor:
    """This tensor on the ``cpu`` backend."""
    return to(self, "cpu")


def cuda(self, device=None, non_blocking: builtins.bool = False) -> Tensor:
    """This tensor on ``cuda`` (or ``cuda:device``); see :meth:`to` for ``non_blocking``."""
    return to(self, "cuda" if device is None else f"cuda:{int(getattr(device, 'index', device))}",
              non_blocking=non_blocking)


def to_numpy(t: Tensor, force: builtins.bool = False):
    """A NumPy array with ``t``'s values (shares memory on the cpu backend, as PyTorch)."""
    if t.requires_grad and not force:
        raise RuntimeError("numpy(): can't call numpy() on a tensor that requires grad; use "
                           "t.detach().numpy()")
    return _to_host[t._device.backend](t._data)


def numpy(self, *, force=False):
    """The tensor's values as a ``numpy.ndarray`` (copied to the host from accelerators)."""
    return to_numpy(self, force=True if force else False)


def item(self):
    """The value of a one-element tensor as a Python number."""
    n = self.numel()
    if n != 1:
        raise ValueError(f"item(): a tensor with {n} elements cannot be converted to a Python "
                         f"scalar (shape {fmt_shape(self._data.shape)}); index it first")
    return _to_host[self._device.backend](self._data).reshape(()).item()


def tolist(self):
    """Nested Python lists of numbers (a number for a 0-d tensor)."""
    return _to_host[self._device.backend](self._data).tolist()


def __array__(self, dtype=None, copy=None):
    a = to_numpy(self, force=True)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    if copy:
        a = a.copy()
    return a


def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    data = self._data
    kwargs = {}
    if stream is not None:
        kwargs["stream"] = stream
    if max_version is not None:
        kwargs["max_version"] = max_version
    if dl_device is not None:
        kwargs["dl_device"] = dl_device
    if copy is not None:
        kwargs["copy"] = copy
    try:
        return data.__dlpack__(**kwargs)
    except TypeError:
        return data.__dlpack__(stream=stream) if stream is not None else data.__dlpack__()


def __dlpack_device__(self):
    return self._data.__dlpack_device__()


def from_dlpack(x, *, device=None, copy=None) -> Tensor:
    """A tensor sharing memory with ``x``, any object with ``__dlpack__`` (Array API ``from_dlpack``).

    With ``device`` unset, the data stays where it is: the backend is chosen from ``x``'s
    DLPack device type (1 = CPU -> ``cpu``, 2 = CUDA -> ``cuda``).
    """
    if isinstance(x, Tensor):
        return x if device is None else to(x, device)
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"from_dlpack: {type(x).__name__} does not implement __dlpack__")
    if device is None:
        dl_type, dl_index = x.__dlpack_device__()
        name = {1: "cpu", 3: "cpu", 2: "cuda", 13: "cuda"}.get(int(dl_type))
        if name is None:
            raise ValueError(f"from_dlpack: DLPack device type {dl_type} has no polyten backend "
                             f"by default; pass device=")
        device = name if name == "cpu" else f"{name}:{dl_index}"
    dev = resolve_device(device)
    data = _from_dlpack[dev.backend](x, dev.index)
    t = wrap_native(data, dev)
    if copy:
        t = wrap(_copy[dev.backend](t._data), dev, t._dtype)
    return t


def from_foreign(obj, dev: Device, dt, copy) -> Tensor:
    """asarray() for objects of other libraries: DLPack first, then the NumPy protocols."""
    import numpy as np  # host conversion only: lazily, never at import time
    if type(obj).__module__.startswith("numpy") or hasattr(obj, "__array__") or \
            hasattr(obj, "__array_interface__"):
        try:
            host = np.asarray(obj)
        except TypeError as exc:
            if "bfloat16" not in str(getattr(obj, "dtype", "")).lower():
                raise
            raise TypeError(f"asarray: a bfloat16 {type(obj).__name__} cannot be read through "
                            f"NumPy or DLPack (neither has bfloat16); pass it as float32 and "
                            f"cast, e.g. polyten.asarray(t.float()).to(polyten.bfloat16), which "
                            f"is exact (every bfloat16 value is a float32)") from exc
    elif hasattr(obj, "__dlpack__"):
        host = None
        t = from_dlpack(obj)
        return asarray_after(t, dev, dt, copy)
    elif not isinstance(obj, (str, bytes, bytearray)) and _has_buffer(obj):
        host = np.asarray(obj)  # buffer protocol: array.array, memoryview, ...
    else:
        raise TypeError(f"asarray: cannot convert {type(obj).__name__} {obj!r} to a tensor; "
                        f"pass numbers, nested lists of numbers, a tensor or an array")
    if host.dtype.kind in "OSUV" and host.dtype.name not in _dt.DTYPES:  # bfloat16 is "V"
        raise TypeError(f"asarray: cannot convert an array of dtype {host.dtype} "
                        f"({type(obj).__name__}) to a tensor; only bool, integer, floating and "
                        f"complex data are supported")
    name = host.dtype.name
    if name not in _dt.DTYPES:
        # e.g. uint16/uint32: widen to the next signed type that holds them
        wider = {"uint16": "int32", "uint32": "int64", "uint64": "int64",
                 "longdouble": "float64", "clongdouble": "complex128"}.get(name)
        if wider is None:
            raise TypeError(f"asarray: NumPy dtype {name} is not supported")
        host = host.astype(wider)
    if dt is not None and host.dtype.name != dt.name:
        host = host.astype(dt.name)
        copy = False if copy is None else copy
    with dev.backend.device_guard(dev.index if dev.index is not None else 0):
        if copy:
            host = host.copy()
        data = _from_host[dev.backend](host, dev.index)
    return wrap(data, dev, _dt.DTYPES[host.dtype.name])


def _has_buffer(obj) -> builtins.bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def asarray_after(t, dev, dt, copy):
    from .creation import asarray
    return asarray(t, dtype=dt, device=dev, copy=copy)


# ----------------------------------------------------------------- Python protocol methods --
def __len__(self):
    shape = self._data.shape
    if not shape:
        raise TypeError("len() of a 0-d tensor")
    return shape[0]


def __iter__(self):
    shape = self._data.shape
    if not shape:  # raised by iter() itself, as PyTorch, not at the first next()
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(shape[0]))


def __bool__(self):
    n = self.numel()
    if n != 1:
        raise RuntimeError(f"Boolean value of a tensor with {n} elements is ambiguous "
                           f"(shape {fmt_shape(self._data.shape)}); use .any() or .all()")
    return builtins.bool(item(self))


def __float__(self):
    return builtins.float(item(self))


def __int__(self):
    return builtins.int(item(self))


def __complex__(self):
    return builtins.complex(item(self))


def __index__(self):
    if self._dtype.kind not in "uib" or self.numel() != 1:
        raise TypeError(f"only integer tensors of a single element can be converted to an "
                        f"index, got {describe(self)}")
    return builtins.int(item(self))


def __format__(self, spec):
    if self.numel() == 1 and self.ndim == 0:
        return format(item(self), spec)
    return format(str(self), spec)


def contiguous(self) -> Tensor:
    """``self`` if its memory is C-contiguous, else a contiguous copy (recorded by autograd
    like :func:`polyten.clone`: the gradient passes through unchanged)."""
    if _is_contig[self._device.backend](self._data):
        return self
    from .shape import clone
    return clone(self)


def is_contiguous(self) -> builtins.bool:
    return builtins.bool(_is_contig[self._device.backend](self._data))


def _type_method(dt):
    def method(self):
        return to(self, dt)
    method.__name__ = dt.name
    return method


def type_(self, dtype=None):
    """With no argument, the type name (``'polyten.FloatTensor'``); else ``to(dtype)``."""
    names = {"float32": "Float", "float64": "Double", "float16": "Half",
             "bfloat16": "BFloat16", "int64": "Long",
             "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
             "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}
    if dtype is None:
        return f"polyten.{names[self._dtype.name]}Tensor"
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        # t.type("polyten.IntTensor") / ("torch.IntTensor"), as PyTorch's type strings
        kind = dtype.rsplit(".", 1)[-1][:-len("Tensor")]
        by_kind = {v: k for k, v in names.items()}
        if kind not in by_kind:
            raise TypeError(f"type(): unknown tensor type {dtype!r}; use e.g. "
                            f"'polyten.FloatTensor' or a dtype such as polyten.float32")
        dtype = by_kind[kind]
    return to(self, dtype)


def type_as(self, other) -> Tensor:
    """This tensor with ``other``'s dtype and on its device (``torch.Tensor.type_as``, whose
    type strings include the device)."""
    if not isinstance(other, Tensor):
        raise TypeError(f"type_as: expected a tensor, got {describe(other)}")
    return to(self, other._device, other._dtype)


def __array_namespace__(self, *, api_version=None):
    if api_version not in (None, "2021.12", "2022.12", "2023.12", "2024.12"):
        raise ValueError(f"__array_namespace__: unsupported api_version {api_version!r}")
    import polyten
    return polyten


def __repr__(self) -> str:
    from .printing import tensor_repr
    return tensor_repr(self)


def __str__(self) -> str:
    from .printing import tensor_repr
    return tensor_repr(self)


def _rebuild(host, device, dtype_name):
    from .creation import asarray
    return asarray(host, dtype=_dt.DTYPES[dtype_name], device=device)


def __reduce__(self):
    # Pickling is for inter-process transport (DataLoader workers, multiprocessing): the
    # payload is a host array plus device and dtype names.  Checkpoints never use pickle:
    # see polyten.save / polyten.load.
    return (_rebuild, (to_numpy(self, force=True), str(self._device), self._dtype.name))


TENSOR_METHODS = {
    "to": to, "cpu": cpu, "cuda": cuda, "numpy": numpy, "item": item, "tolist": tolist,
    "__array__": __array__, "__dlpack__": __dlpack__, "__dlpack_device__": __dlpack_device__,
    "__len__": __len__, "__iter__": __iter__, "__bool__": __bool__, "__float__": __float__,
    "__int__": __int__, "__complex__": __complex__, "__index__": __index__,
    "__format__": __format__, "contiguous": contiguous, "is_contiguous": is_contiguous,
    "type": type_, "type_as": type_as, "__array_namespace__": __array_namespace__,
    "__repr__": __repr__,
    "__str__": __str__, "__reduce__": __reduce__,
    "float": _type_method(_dt.float32), "double": _type_method(_dt.float64),
    "half": _type_method(_dt.float16), "bfloat16": _type_method(_dt.bfloat16),
    "long": _type_method(_dt.int64),
    "int": _type_method(_dt.int32), "short": _type_method(_dt.int16),
    "char": _type_method(_dt.int8), "byte": _type_method(_dt.uint8),
    "bool": _type_method(_dt.bool), "cfloat": _type_method(_dt.complex64),
    "cdouble": _type_method(_dt.complex128),
}
