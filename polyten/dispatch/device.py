"""Devices: the one grammar for device strings, and the interned :class:`Device` objects.

Grammar: ``TYPE`` or ``TYPE:INDEX`` where ``TYPE`` is a backend name (``cpu``, ``cuda``,
``mybackend``) and ``INDEX`` a non-negative integer.  A backend with numbered devices (CUDA)
resolves a bare ``"cuda"`` to its current device, so every tensor's device is concrete
(``cuda:0``); a backend without numbered devices (CPU) has the single device ``cpu``.

The default device -- where new tensors go when no device is given -- lives here too, in a
:class:`contextvars.ContextVar`: local to the current thread / asyncio task, falling back to the
process default (``$POLYTEN_BACKEND`` or ``"cpu"``).  ``polyten.set_backend`` /
``set_default_device`` set it; ``with polyten.device("cuda:1"):`` sets it for a block.
"""

from __future__ import annotations

import contextvars
import os
import re
from typing import Dict, Optional, Tuple

from . import registry
from .errors import UnknownBackendError

__all__ = ["Device", "device", "parse_device_string", "forget_devices", "default_device",
           "set_default", "reset_process_default"]

_DEVICE_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*(?::\s*(\d+)\s*)?$")


class Device:
    """A device: a backend name and, for backends with numbered devices, an index.

    Devices are interned: ``polyten.device("cuda:0") is polyten.device("cuda:0")``.  Compare
    them with ``==`` or against strings (``t.device == "cpu"``).
    """

    __slots__ = ("type", "index", "backend", "_str", "__weakref__")

    def __init__(self, *a, **k):  # pragma: no cover - use polyten.device(...)
        raise TypeError("use polyten.device('cpu') / polyten.device('cuda:1') to get a device")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __str__(self) -> str:
        return self._str

    def __eq__(self, other) -> bool:
        if isinstance(other, Device):
            return self is other or (self.type == other.type and self.index == other.index)
        if isinstance(other, str):
            try:
                t, i = parse_device_string(other)
            except ValueError:
                return False
            return t == self.type and (i is None or i == self.index)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self._str,))

    def __enter__(self) -> "Device":
        """``with polyten.device("cuda:1"):`` -- new tensors go to this device inside the
        block, as with ``torch.device``; the previous default comes back after it.  Calls
        that name a device, and tensors made from another tensor (``zeros_like``,
        ``x.new_ones``), are unaffected."""
        _ENTERED.set(_ENTERED.get() + (_DEFAULT.set(self),))
        return self

    def __exit__(self, *exc) -> None:
        tokens = _ENTERED.get()
        _ENTERED.set(tokens[:-1])
        _DEFAULT.reset(tokens[-1])


_INTERNED: Dict[Tuple[str, Optional[int]], Device] = {}

_DEFAULT: contextvars.ContextVar = contextvars.ContextVar("polyten_default_device", default=None)
# the tokens of the `with device:` blocks open in this context, innermost last
_ENTERED: contextvars.ContextVar = contextvars.ContextVar("polyten_device_blocks", default=())
_PROCESS_DEFAULT = [None]


def _process_default() -> Device:
    dev = _PROCESS_DEFAULT[0]
    if dev is None:
        dev = _PROCESS_DEFAULT[0] = device(os.environ.get("POLYTEN_BACKEND", "cpu") or "cpu")
    return dev


def default_device() -> Device:
    """The device new tensors are created on in this context (hot path: no validation)."""
    dev = _DEFAULT.get()
    return dev if dev is not None else _process_default()


def set_default(dev: Optional[Device]) -> contextvars.Token:
    """Make ``dev`` this context's default (``None``: back to the process default)."""
    return _DEFAULT.set(dev)


def reset_process_default() -> None:
    """Read ``$POLYTEN_BACKEND`` again at the next use (a DataLoader worker process)."""
    _PROCESS_DEFAULT[0] = None


def parse_device_string(text: str) -> Tuple[str, Optional[int]]:
    """Split ``"cuda:1"`` into ``("cuda", 1)`` and ``"cpu"`` into ``("cpu", None)``.

    Raises ``ValueError`` naming the grammar for anything else.
    """
    m = _DEVICE_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"invalid device string {text!r}: expected 'TYPE' or 'TYPE:INDEX', "
                         f"e.g. 'cpu', 'cuda' or 'cuda:1'")
    return m.group(1).lower(), (int(m.group(2)) if m.group(2) is not None else None)


def _make(type_: str, index: Optional[int]) -> Device:
    key = (type_, index)
    dev = _INTERNED.get(key)
    if dev is None:
        backend = registry.get(type_)  # raises a clear unknown / unavailable error
        dev = object.__new__(Device)
        dev.type, dev.index, dev.backend = type_, index, backend
        dev._str = type_ if index is None else f"{type_}:{index}"
        _INTERNED[key] = dev
    return dev


def device(spec, index: Optional[int] = None) -> Device:
    """Return the :class:`Device` for ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``("cuda", 1)`` or a Device.

    A bare name of a backend with numbered devices means its current device.  An index past
    the backend's device count raises, naming how many devices there are.
    """
    if isinstance(spec, Device):
        if index is None or index == spec.index:
            return spec
        spec = spec.type
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:1', or a "
                        f"polyten.device, got {type(spec).__name__} {spec!r}")
    type_, idx = parse_device_string(spec)
    if index is not None:
        if idx is not None and idx != index:
            raise ValueError(f"device: {spec!r} already names index {idx}, got index={index}")
        idx = index
    cached = _INTERNED.get((type_, idx))
    if cached is not None:
        return cached
    backend = registry.get(type_)
    if not backend.indexed:
        if idx not in (None, 0):
            raise ValueError(f"device: backend {type_!r} has a single device; "
                             f"use {type_!r}, not {spec!r}")
        return _make(type_, None)
    if idx is None:
        idx = backend.current_device()
    count = backend.device_count()
    if not 0 <= idx < count:
        raise UnknownBackendError(f"device: {type_}:{idx} does not exist; backend {type_!r} "
                                  f"has {count} device(s) ({type_}:0 to {type_}:{count - 1})")
    return _make(type_, idx)


def forget_devices() -> None:
    """Drop interned devices of backends that are no longer registered (tests)."""
    for key, dev in list(_INTERNED.items()):
        if registry.REGISTRY.infos.get(dev.type) is None or \
                registry.REGISTRY.infos[dev.type].backend is not dev.backend:
            del _INTERNED[key]
