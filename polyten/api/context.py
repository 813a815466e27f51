"""Backend selection: which backend new tensors go to.

The default device lives in a :class:`contextvars.ContextVar` (``polyten.dispatch.device``), so
``set_backend``, ``set_default_device``, ``with polyten.backend(...)`` and
``with polyten.device(...)`` are local to the current thread / asyncio task: a worker thread or
a concurrent task does not see another's choice.  Threads start from the process default,
``$POLYTEN_BACKEND`` or ``"cpu"``.  Tensors always carry their own device; the default only
decides where *new* tensors are created.
"""

from __future__ import annotations

import contextlib

from ..dispatch.device import Device, default_device, device as _device, set_default

__all__ = ["set_backend", "get_backend", "backend", "get_default_device", "set_default_device",
           "default_device"]


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
    set_default(_device(name))


def set_default_device(device) -> None:
    """PyTorch's ``torch.set_default_device``: new tensors go to ``device`` (``"cuda"``,
    ``"cuda:1"``, ``"cpu"`` or a :class:`Device`) in the current thread / asyncio task.
    ``None`` goes back to the process default (``$POLYTEN_BACKEND``, else ``"cpu"``).
    Calls that name a device, and tensors made from another tensor, are unaffected.

    Examples
    --------
    >>> polyten.set_default_device("cpu")
    >>> polyten.ones(2).device
    device(type='cpu')

    Raises
    ------
    UnknownBackendError / BackendUnavailableError
        As :func:`set_backend`.
    """
    set_default(None if device is None else _device(device))


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
    with _device(name) as dev:
        yield dev


def resolve_device(dev) -> Device:
    """``None`` -> the context default; anything else through the one device grammar."""
    if dev is None:
        return default_device()
    if isinstance(dev, Device):
        return dev
    return _device(dev)
