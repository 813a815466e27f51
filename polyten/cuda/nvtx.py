"""``polyten.cuda.nvtx`` (``torch.cuda.nvtx``): NVTX ranges and marks for NVIDIA's profilers
(Nsight Systems shows them on the timeline next to the kernels they enclose).

They go to CuPy's NVTX bindings through the cuda backend's runtime.  Profiling annotations
must never change what a program does, so where the cuda backend or NVTX is not available
every function here does nothing (and ``range_push`` / ``range_pop`` return -1, torch's
"not recorded").  Importing this module imports no array library.

Examples
--------
>>> with polyten.cuda.nvtx.range("forward"):
...     loss = model(x)
>>> polyten.cuda.nvtx.range_push("backward"); loss.backward(); polyten.cuda.nvtx.range_pop()
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["range_push", "range_pop", "mark", "range"]

_DEPTH = threading.local()  # NVTX ranges nest per thread


def _runtime():
    from . import _runtime as runtime
    return runtime("nvtx", required=False)


def _message(fn: str, msg) -> str:
    if not isinstance(msg, str):
        raise TypeError(f"polyten.cuda.nvtx.{fn}: msg must be a str, got "
                        f"{type(msg).__name__}")
    return msg


def range_push(msg: str) -> int:
    """Open a nested range named ``msg`` on this thread; returns its zero-based depth, or -1
    where nothing is recorded."""
    msg = _message("range_push", msg)
    rt = _runtime()
    if rt is None or not rt.nvtx_range_push(msg):
        return -1
    depth = getattr(_DEPTH, "n", 0)
    _DEPTH.n = depth + 1
    return depth


def range_pop() -> int:
    """Close the innermost range this thread opened; returns the depth of the range closed,
    or -1 where none is open or nothing is recorded."""
    depth = getattr(_DEPTH, "n", 0)
    rt = _runtime()
    if depth == 0 or rt is None or not rt.nvtx_range_pop():
        return -1
    _DEPTH.n = depth - 1
    return depth - 1


def mark(msg: str) -> None:
    """An instantaneous event named ``msg`` on the timeline."""
    msg = _message("mark", msg)
    rt = _runtime()
    if rt is not None:
        rt.nvtx_mark(msg)


@contextlib.contextmanager
def range(msg: str, *args, **kwargs):
    """``with polyten.cuda.nvtx.range("step {}", i):`` -- a range around the block;
    ``msg`` is formatted with ``args`` / ``kwargs`` (``str.format``) as in torch."""
    name = _message("range", msg).format(*args, **kwargs) if args or kwargs else msg
    pushed = range_push(name) >= 0
    try:
        yield
    finally:
        if pushed:
            range_pop()
