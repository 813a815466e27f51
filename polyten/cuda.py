"""``polyten.cuda``: the CUDA devices behind the ``cuda`` backend (``torch.cuda``'s names).

Importing this module imports no array library; each function loads the ``cuda`` backend
(and so CuPy) only when CUDA is available.  Without CuPy or without a GPU,
:func:`is_available` is ``False`` and :func:`device_count` ``0``; the memory functions return
``0`` and :func:`empty_cache` / :func:`manual_seed_all` do nothing (as PyTorch's, before CUDA is
initialised); the others raise a ``RuntimeError`` that says why CUDA is unavailable.

Streams: polyten queues every kernel on CuPy's current stream and never waits for the GPU in
the middle of a computation; :func:`synchronize` waits for all the work queued on a device
(what a benchmark needs before reading a clock).
"""

from __future__ import annotations

from typing import Optional

__all__ = ["is_available", "device_count", "current_device", "set_device", "synchronize",
           "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats",
           "memory_reserved", "empty_cache", "get_device_name", "manual_seed_all",
           "set_sync_checks"]


def _info():
    from .dispatch import registry
    for info in registry.backends():
        if info.name == "cuda":
            return info
    return None


def _unavailable_reason() -> str:
    info = _info()
    if info is None:
        return "the polyten-cuda plugin is not installed (pip install 'polyten-cuda[cuda12]')"
    return info.reason or info.error or "unknown reason"


def is_available() -> bool:
    """Whether the ``cuda`` backend can run here (CuPy installed and at least one GPU)."""
    info = _info()
    return bool(info is not None and info.available)


def _runtime(fn: str, required: bool = True):
    if not is_available():
        if not required:
            return None
        raise RuntimeError(f"polyten.cuda.{fn}: CUDA is not available: "
                           f"{_unavailable_reason()}")
    from .dispatch import registry
    return registry.get("cuda").runtime


def _index(fn: str, device) -> Optional[int]:
    """``None`` (current device), an int, ``"cuda:1"`` or a polyten device -> an index."""
    if device is None:
        return None
    if isinstance(device, int) and not isinstance(device, bool):
        index = device
    else:
        from .dispatch.device import Device, parse_device_string
        if isinstance(device, Device):
            kind, index = device.type, device.index
        elif isinstance(device, str):
            kind, index = parse_device_string(device)
        else:
            raise TypeError(f"polyten.cuda.{fn}: expected a device index, 'cuda:N' or a "
                            f"polyten.device, got {type(device).__name__} {device!r}")
        if kind != "cuda":
            raise ValueError(f"polyten.cuda.{fn}: expected a cuda device, got {device!r}")
        if index is None:
            return None
    count = device_count()
    if not 0 <= index < count:
        raise ValueError(f"polyten.cuda.{fn}: device {index} does not exist; there are "
                         f"{count} CUDA device(s) (0 to {count - 1})")
    return index


def device_count() -> int:
    """The number of GPUs (``0`` when CUDA is not available)."""
    rt = _runtime("device_count", required=False)
    return 0 if rt is None else rt.device_count()


def current_device() -> int:
    """The index of the current device (where ``"cuda"`` tensors go)."""
    return _runtime("current_device").current_device()


def set_device(device) -> None:
    """Make ``device`` (an index, ``"cuda:N"`` or a device) the current device of this thread."""
    rt = _runtime("set_device")
    index = _index("set_device", device)
    if index is not None:
        rt.set_device(index)


def synchronize(device=None) -> None:
    """Wait until all the work queued on ``device`` (default: the current one) has finished,
    then raise the first failing deferred value check, if any (a class target out of range
    given to ``cross_entropy`` since the last host read; see :func:`set_sync_checks`)."""
    rt = _runtime("synchronize")
    rt.synchronize(_index("synchronize", device))
    from .dispatch import checks, registry
    checks.flush(registry.get("cuda"))


def set_sync_checks(enabled: bool) -> None:
    """Check values that need a read on the host (class targets of ``cross_entropy`` /
    ``nll_loss``, indices of indexing, ``gather``, ``embedding``, ... out of range) at the op, synchronising with the GPU there (``True``), or --
    the default -- at the next host read (``.item()``, printing, ``.cpu()``) or
    :func:`synchronize`, so that a training step never waits for the GPU.  The environment
    variable ``POLYTEN_SYNC_CHECKS=1`` sets ``True`` at start-up."""
    from .dispatch.checks import set_sync_checks as _set
    _set(enabled)


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by tensors on ``device`` (CuPy's pool: used bytes)."""
    rt = _runtime("memory_allocated", required=False)
    return 0 if rt is None else rt.memory_allocated(_index("memory_allocated", device))


def memory_reserved(device=None) -> int:
    """Bytes of GPU memory CuPy's pool holds on ``device``, in use or cached."""
    rt = _runtime("memory_reserved", required=False)
    return 0 if rt is None else rt.memory_reserved(_index("memory_reserved", device))


def max_memory_allocated(device=None) -> int:
    """The peak of :func:`memory_allocated` since the backend loaded or the last
    :func:`reset_peak_memory_stats`."""
    rt = _runtime("max_memory_allocated", required=False)
    return 0 if rt is None else rt.max_memory_allocated(_index("max_memory_allocated", device))


def reset_peak_memory_stats(device=None) -> None:
    """Restart :func:`max_memory_allocated` from the memory allocated now."""
    rt = _runtime("reset_peak_memory_stats", required=False)
    if rt is not None:
        rt.reset_peak_memory_stats(_index("reset_peak_memory_stats", device))


def empty_cache() -> None:
    """Return the cached, unused blocks of CuPy's memory pools (device and pinned) to CUDA."""
    rt = _runtime("empty_cache", required=False)
    if rt is not None:
        rt.empty_cache()


def get_device_name(device=None) -> str:
    """The GPU's name, e.g. ``"NVIDIA H100 80GB HBM3"``."""
    rt = _runtime("get_device_name")
    index = _index("get_device_name", device)
    return rt.device_name(rt.current_device() if index is None else index)


def manual_seed_all(seed: int) -> None:
    """Reseed the generators of every GPU (``polyten.manual_seed`` does this too)."""
    import operator
    seed = operator.index(seed)
    rt = _runtime("manual_seed_all", required=False)
    if rt is not None:
        rt.seed_all(seed)
