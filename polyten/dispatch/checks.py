"""Value checks: errors that depend on the values of a tensor, on any backend.

Some of the core's checks need one device value on the host -- "is any class target out of
range?" (``cross_entropy``, ``nll_loss``), "is any index out of range?" (advanced indexing,
``gather``, ``scatter``, ``index_select``, ``take``, ``embedding``).  On the cpu that read is
free.  On a GPU it waits for every kernel queued before it, so one check per training step
would stall the step on the device.  A backend whose host reads wait for the device declares
``deferred_checks=True``; there the core computes the check's flag on the device and
:func:`check` / :func:`check_range` only queue it.  The queued flags are read, and the first
failing check raised, at the backend's next host read
(its ``to_host`` kernel: ``.item()``, ``.numpy()``, ``.tolist()``, printing, ``.cpu()``) or
``synchronize()`` -- moments that wait for the device anyway -- so a wrong target is still
reported with the message of the op that received it, naming the line of the user's call, only
later (as CUDA reports its own asynchronous errors).  ``POLYTEN_SYNC_CHECKS=1`` (or
:func:`set_sync_checks`) checks at the call instead, for debugging.

Each queued entry holds a *running* flag -- its check's flag OR-ed, on the device, with the
running flag of the entries queued before it on that device -- so a host read costs one extra
value however many checks are queued; only when the last running flag is set are the entries
read in order, and the first one set names the first failing call.

The queue is per thread, so an error surfaces in the thread whose call was wrong (a data
loader's pinning thread or another user thread reading values never raises it), and bounded:
every ``MAX_PENDING`` checks it is read even without a host read, so a loop that never reads a
value synchronises once per that many checks (a few hundred training steps) rather than
holding every step's flag.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, List, Optional, Tuple

__all__ = ["check", "check_range", "discard", "flush", "indices_checked", "pending",
           "set_sync_checks", "wrap_host_reads", "MAX_PENDING"]

MAX_PENDING = 1024
_SYNC = [os.environ.get("POLYTEN_SYNC_CHECKS", "") not in ("", "0")]


class _Queue(threading.local):
    def __init__(self):
        # (backend, 0-d bool native, error factory, "file:line" of the user's call)
        self.items: List[Tuple[object, object, Callable[[], BaseException], str]] = []
        # (backend, device index, stream) -> the OR of its queued flags, computed on the
        # device as they are queued, so that a flush reads one value per device and stream,
        # not one per check (one chain per stream: flags of streams that do not wait for each
        # other must not be OR-ed, or a check could read a flag before it is written)
        self.any: dict = {}
        self.count: dict = {}  # backend -> how many of its checks are queued


_QUEUE = _Queue()


class _Checked(threading.local):
    """``with indices_checked:`` -- the ops in the block take indices that were already
    checked (the forward's, in a built-in backward rule; a target the loss checked before
    gathering with it), so their bounds checks are skipped: on a GPU each costs a few kernel
    launches.  Re-entrant, per thread."""

    depth = 0

    def __enter__(self):
        self.depth += 1

    def __exit__(self, *exc):
        self.depth -= 1
        return False


indices_checked = _Checked()


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
    _queue(backend, flag, lambda acc: flag if acc is None else _or_kernel()[backend](acc, flag),
           error)


def check_range(backend, data, low: int, high: int, ignore: Optional[int],
                error: Callable[[], BaseException]) -> None:
    """Raise ``error()`` if an element of the non-empty integer native array ``data`` that is
    not ``ignore`` (``None``: no exception) lies outside ``[low, high)`` -- index bounds and
    class targets.  The flag is the backend's ``index_check`` op, which also folds in the
    flags queued before it: on CUDA one reduction launch per check."""
    k = _index_check_kernel()[backend]
    if not getattr(backend, "deferred_checks", False) or _SYNC[0]:
        if _truth(backend, k(data, low, high, ignore, None)):
            raise error()
        return
    _queue(backend, data, lambda acc: k(data, low, high, ignore, acc), error)


def _queue(backend, on, running_flag, error) -> None:
    """Queue a check.  Each entry keeps the *running* flag, ``running_flag(acc)``: this
    check's flag OR-ed with ``acc``, the running flag of the checks queued before it on the
    device of the native array ``on`` (``None`` for the first) -- so the last entry's flag
    says whether any check failed, and the first entry whose flag is set is the first failing
    call."""
    q = _QUEUE
    dev = backend.device_of(on) if backend.indexed else None
    stream = backend.current_stream
    key = (backend, dev, None if stream is None else stream(dev))
    running = q.any[key] = running_flag(q.any.get(key))
    q.items.append((backend, running, error, _user_line()))
    n = q.count[backend] = q.count.get(backend, 0) + 1
    if n >= MAX_PENDING:
        flush(backend)


def _or_kernel():
    from .dispatcher import kernels
    return kernels("logical_or")


def _index_check_kernel():
    from .dispatcher import kernels
    return kernels("index_check")


def pending(backend=None) -> int:
    """How many deferred checks this thread has queued (for ``backend``, or all)."""
    count = _QUEUE.count
    return sum(count.values()) if backend is None else count.get(backend, 0)


def discard(backend=None) -> int:
    """Drop this thread's queued checks (of ``backend``, or all) unread; returns how many.

    For harnesses that run unrelated calls in one thread (a test suite, a REPL after an
    error): a check left queued by one call would otherwise fail a later call's host read.
    """
    return len(_take(backend))


def _take(backend) -> list:
    """Remove and return this thread's queued checks of ``backend`` (or all), with their
    accumulated flags."""
    q = _QUEUE
    mine = [p for p in q.items if backend is None or p[0] is backend]
    if mine:
        q.items[:] = [p for p in q.items if not (backend is None or p[0] is backend)]
        for key in [k for k in q.any if backend is None or k[0] is backend]:
            del q.any[key]
        if backend is None:
            q.count.clear()
        else:
            q.count.pop(backend, None)
    return mine


def flush(backend=None) -> None:
    """Read this thread's queued flags of ``backend`` (or of every backend) and raise the first
    failing check's error; those queued entries are dropped either way."""
    q = _QUEUE
    if not q.items:
        return
    chains = [(key, acc) for key, acc in q.any.items() if backend is None or key[0] is backend]
    # a host read waits for the current stream only: a flag queued on another stream needs
    # its device synchronised first
    for dev_backend, dev in {(k[0], k[1]) for k, _ in chains
                             if k[0].current_stream is not None
                             and k[2] != k[0].current_stream(k[1])}:
        getattr(dev_backend, "raw_synchronize", dev_backend.synchronize)(dev)
    failed = [key for key, acc in chains if _truth(key[0], acc)]
    mine = _take(backend)
    if not failed:
        return
    # the error path: read the flags one by one to name the first failing call
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
    backend.raw_synchronize = raw_sync

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
