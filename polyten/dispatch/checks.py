"""Value checks: errors that depend on the values of a tensor, on any backend.

Some of the core's checks need one device value on the host -- "is any class target out of
range?" (``cross_entropy``, ``nll_loss``), "is any index out of range?" (advanced indexing,
``gather``, ``scatter``, ``index_select``, ``take``, ``embedding``).  On the cpu that read is
free.  On a GPU it waits for every kernel queued before it, so one check per training step
would stall the step on the device.  A backend whose host reads wait for the device declares ``deferred_checks=True``;
there the core computes the check's flag on the device and :func:`check` only queues it.  The
queued flags are read, and the first failing check raised, at the backend's next host read
(its ``to_host`` kernel: ``.item()``, ``.numpy()``, ``.tolist()``, printing, ``.cpu()``) or
``synchronize()`` -- moments that wait for the device anyway -- so a wrong target is still
reported with the message of the op that received it, naming the line of the user's call, only
later (as CUDA reports its own asynchronous errors).  ``POLYTEN_SYNC_CHECKS=1`` (or
:func:`set_sync_checks`) checks at the call instead, for debugging.

The queue is per thread, so an error surfaces in the thread whose call was wrong (a data
loader's pinning thread or another user thread reading values never raises it), and bounded:
every ``MAX_PENDING`` checks it is read even without a host read, so a loop that never reads a
value synchronises once per that many steps rather than holding every step's flag.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, List, Optional, Tuple

__all__ = ["check", "flush", "pending", "set_sync_checks", "wrap_host_reads", "MAX_PENDING"]

MAX_PENDING = 64
_SYNC = [os.environ.get("POLYTEN_SYNC_CHECKS", "") not in ("", "0")]


class _Queue(threading.local):
    def __init__(self):
        # (backend, 0-d bool native, error factory, "file:line" of the user's call)
        self.items: List[Tuple[object, object, Callable[[], BaseException], str]] = []


_QUEUE = _Queue()


def set_sync_checks(enabled: bool) -> None:
    """Check values at the op on every backend (``True``), or defer them on backends that
    declare ``deferred_checks`` (``False``, the default unless ``POLYTEN_SYNC_CHECKS=1``)."""
    _SYNC[0] = bool(enabled)


def check(backend, flag, error: Callable[[], BaseException]) -> None:
    """Raise ``error()`` if the 0-d boolean native array ``flag`` (on ``backend``) is true: at
    once, or -- on a backend with ``deferred_checks`` -- at its next host read or
    synchronize."""
    if not getattr(backend, "deferred_checks", False) or _SYNC[0]:
        if _truth(backend, flag):
            raise error()
        return
    items = _QUEUE.items
    items.append((backend, flag, error, _user_line()))
    if sum(1 for p in items if p[0] is backend) >= MAX_PENDING:
        flush(backend)


def pending(backend=None) -> int:
    """How many deferred checks this thread has queued (for ``backend``, or all)."""
    return sum(1 for p in _QUEUE.items if backend is None or p[0] is backend)


def flush(backend=None) -> None:
    """Read this thread's queued flags of ``backend`` (or of every backend) and raise the first
    failing check's error; those queued entries are dropped either way."""
    items = _QUEUE.items
    if not items:
        return
    mine = [p for p in items if backend is None or p[0] is backend]
    items[:] = [p for p in items if not (backend is None or p[0] is backend)]
    for b, flag, error, where in mine:
        if _truth(b, flag):
            exc = error()
            note = (f"(detected at the first host read after the call at {where}: "
                    f"{b.name} checks values asynchronously; set POLYTEN_SYNC_CHECKS=1 to "
                    f"check at the call)")
            raise type(exc)(f"{exc} {note}") from None


def wrap_host_reads(backend) -> None:
    """Make ``backend``'s ``to_host`` kernel and ``synchronize`` flush its deferred checks
    first (called by ``Backend`` for backends with ``deferred_checks``)."""
    raw_to_host = backend.kernels.get("to_host")
    raw_sync = backend.synchronize
    backend.raw_to_host = raw_to_host

    def to_host(array):
        if _QUEUE.items:
            flush(backend)
        return raw_to_host(array)

    def synchronize(index=None):
        raw_sync(index)
        if _QUEUE.items:
            flush(backend)

    if raw_to_host is not None:
        backend.kernels["to_host"] = to_host
    backend.synchronize = synchronize


def _truth(backend, flag) -> bool:
    read = getattr(backend, "raw_to_host", None) or backend.kernels["to_host"]
    return bool(read(flag).reshape(()).item())


def _user_line() -> str:
    """``file:line`` of the innermost frame outside polyten (the user's call)."""
    f: Optional[object] = sys._getframe(2)
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if not (name == "polyten" or name.startswith(("polyten.", "polyten_"))):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "(unknown)"
