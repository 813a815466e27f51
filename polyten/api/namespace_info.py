"""The Array API inspection namespace: ``polyten.__array_namespace_info__()`` (2024.12).

>>> info = polyten.__array_namespace_info__()
>>> info.default_dtypes()["real floating"]
polyten.float32
>>> sorted(info.dtypes(kind="real floating"))
['float32', 'float64']

Answers are per backend where the standard asks for a device: a backend lists the dtypes it
stores natively.  ``dtypes()`` lists the Array API dtypes only (polyten's float16 is an
extension the standard does not define).
"""

from __future__ import annotations

from ..dispatch import registry as _registry
from ..dispatch.errors import BackendError
from . import dtypes as _dt
from .context import default_device, resolve_device

__all__ = ["__array_namespace_info__"]

# Array API dtypes, in the standard's order
_STANDARD = ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64",
             "complex64", "complex128")


class __array_namespace_info__:
    """Facts about polyten's Array API namespace: capabilities, devices and dtypes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "polyten.__array_namespace_info__()"

    def capabilities(self) -> dict:
        """``{"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}``.

        Boolean-mask indexing and ops whose output shape depends on values (``nonzero``,
        ``unique``) are supported; arrays have at most 64 dimensions (NumPy's and CuPy's
        limit).
        """
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        """The device new tensors go to in this context (``polyten.get_default_device()``)."""
        return default_device()

    def devices(self) -> list:
        """Every device of every available backend (``cpu``, ``cuda:0``, ``cuda:1``, ...).

        Backends that are installed but cannot run here are left out.
        """
        from ..dispatch.device import device as _device
        out = []
        for info in _registry.backends():
            if not info.available:
                continue
            try:
                backend = _registry.get(info.name)
                if backend.indexed:
                    out.extend(_device(info.name, i) for i in range(backend.device_count()))
                else:
                    out.append(_device(info.name))
            except BackendError:
                continue
        return out

    def default_dtypes(self, *, device=None) -> dict:
        """The dtypes polyten picks when none is given: ``"real floating"`` (the default float
        dtype, see ``polyten.set_default_dtype``), ``"complex floating"``, ``"integral"`` and
        ``"indexing"`` (int64)."""
        resolve_device(device)  # validates the device
        real = _dt.get_default_dtype()
        return {"real floating": real, "complex floating": real.to_complex(),
                "integral": _dt.int64, "indexing": _dt.int64}

    def dtypes(self, *, device=None, kind=None) -> dict:
        """The Array API dtypes available on ``device`` (default: the default device), as
        ``{name: dtype}``, optionally only those of ``kind`` (``"bool"``, ``"signed integer"``,
        ``"unsigned integer"``, ``"integral"``, ``"real floating"``, ``"complex floating"``,
        ``"numeric"``, or a tuple of these, as in ``isdtype``)."""
        dev = resolve_device(device)
        supported = dev.backend.dtypes
        out = {}
        for name in _STANDARD:
            if name not in supported:
                continue
            d = _dt.DTYPES[name]
            if kind is None or _dt.isdtype(d, kind):
                out[name] = d
        return out
