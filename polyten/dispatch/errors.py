"""One place for polyten's error classes and for the wording of its messages.

Every message names the user's call (the public op or module), the shapes, dtypes and
backends involved, and what to do about it.  Helpers here build those messages so that
every backend reports the same error in the same words: the core raises them, never a
kernel's own exception.
"""

from __future__ import annotations

__all__ = [
    "PolytenError",
    "BackendError",
    "BackendUnavailableError",
    "UnknownBackendError",
    "DeviceMismatchError",
    "KernelNotFoundError",
    "PluginWarning",
    "fmt_shape",
    "shape_error",
    "dtype_error",
]


class PolytenError(Exception):
    """Base class of polyten's own errors."""


class BackendError(PolytenError, RuntimeError):
    """A backend could not be found, loaded or used."""


class UnknownBackendError(BackendError, ValueError):
    """A backend name or device string names no installed backend."""


class BackendUnavailableError(BackendError):
    """The backend is installed but cannot run here (e.g. no GPU)."""


class DeviceMismatchError(PolytenError, RuntimeError):
    """An op received tensors that live on different devices/backends."""


class KernelNotFoundError(PolytenError, NotImplementedError):
    """The backend implements no kernel for the op and the op has no default."""


class PluginWarning(UserWarning):
    """A plugin failed to load or registered something invalid; others keep working."""


def fmt_shape(shape) -> str:
    """``(3, 4)``, ``(5,)`` or ``()``: the form used in every message."""
    shape = tuple(shape)
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def shape_error(op: str, detail: str) -> ValueError:
    return ValueError(f"{op}: {detail}")


def dtype_error(op: str, detail: str) -> TypeError:
    return TypeError(f"{op}: {detail}")
