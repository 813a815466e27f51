"""Backend selection: which backend new tensors go to.

The default device lives in a :class:`contextvars.ContextVar`, so ``set_backend`` and
``with polyten.backend(...)`` are local to the current thread / asyncio task: a worker thread or
a concurrent task does not see another's choice.  Threads start from the process default,
``$POLYTEN_BACKEND`` or ``"cpu"``.  Tensors always carry their own device; the default only
decides where *new* tensors are created.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Optional

from ..dispatch.device import Device, device as _device

__all__ = ["set_backend", "get_backend", "backend", "get_default_device", "default_device"]

_DEFAULT: contextvars.ContextVar = contextvars.ContextVar("polyten_default_device", default=None)
_PROCESS_DEFAULT = [None]


def _process_default() -> Device:
    dev = _PROCESS_DEFAULT[0]
    if dev is None:
        dev = _PROCESS_DEFAULT[0] = _device(os.environ.get("POLYTEN_BACKEND", "cpu") or "cpu")
    return dev


def default_device() -> Device:
    """The device new tensors are created on in this context (hot path: no validation)."""
    dev = _DEFAULT.get()
    return dev if dev is not None else _process_default()


def set_backend(name) -> None:
    """Make ``name`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, or a device) the default for new tensors
    in the current thread / asyncio task.

    Raises
    ------
    UnknownBackendError
        ``name`` is not installed; the message lists the installed backends.
    BackendUnavailableError
        The backend is installed but cannot run here; the message says why.
    """
    _DEFAULT.set(_device(name))


def get_backend() -> str:
    """Name of the default backend of the current context, e.g. ``"cpu"``."""
    return default_device().type


def get_default_device() -> Device:
    """The default :class:`Device` of the current context (``device(type='cpu')``)."""
    return default_device()


@contextlib.contextmanager
def backend(name):
    """Context manager: new tensors go to ``name`` inside the block; the previous default after.

    Examples
    --------
    >>> with polyten.backend("cpu"):
    ...     x = polyten.ones(3)
    """
    token = _DEFAULT.set(_device(name))
    try:
        yield default_device()
    finally:
        _DEFAULT.reset(token)


def resolve_device(dev) -> Device:
    """``None`` -> the context default; anything else through the one device grammar."""
    if dev is None:
        return default_device()
    if isinstance(dev, Device):
        return dev
    return _device(dev)
