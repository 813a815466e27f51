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
    "OutOfMemoryError",
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


class OutOfMemoryError(PolytenError, RuntimeError, MemoryError):
    """A device ran out of memory (``torch.OutOfMemoryError``; also a MemoryError, as the
    array libraries' own out-of-memory errors).  Backends raise it through
    :func:`out_of_memory`."""


def _fmt_bytes(n) -> str:
    if n is None:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} bytes"


def out_of_memory(what: str, device: str, requested=None, in_use=None, reserved=None,
                  free=None, total=None, limit=None) -> OutOfMemoryError:
    """The out-of-memory error of ``what`` (the op or kernel) on ``device``: what it asked for,
    what the backend's tensors and memory pool hold, what the device has left, the pool's
    limit where the process set one (``limit`` in bytes, None or 0 for none), and what to
    do."""
    asked = f"tried to allocate {_fmt_bytes(requested)}; " if requested is not None else ""
    held = ""
    if in_use is not None or reserved is not None:
        held = (f"{_fmt_bytes(in_use)} in use by tensors, {_fmt_bytes(reserved)} reserved by "
                f"the memory pool; ")
    left = (f"{_fmt_bytes(free)} free of {_fmt_bytes(total)} on the device. "
            if total is not None else "")
    capped = (f"This process may use at most {_fmt_bytes(limit)} of it (its memory pool's "
              f"limit: polyten.cuda.set_per_process_memory_fraction raises it). "
              if limit else "")
    return OutOfMemoryError(
        f"{what}: out of memory on {device}: {asked}{held}{left}{capped}Delete tensors you no "
        f"longer need and call polyten.cuda.empty_cache() to return the pool's free blocks, "
        f"reduce the batch size, or compute in lower precision (polyten.autocast)")


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
