"""``polyten.cuda``: the CUDA devices behind the ``cuda`` backend (``torch.cuda``'s names).

Importing this module imports no array library; each function loads the ``cuda`` backend
(and so CuPy) only when CUDA is available.  Without CuPy or without a GPU,
:func:`is_available` is ``False`` and :func:`device_count` ``0``; the memory functions return
``0`` and :func:`empty_cache` / :func:`manual_seed_all` do nothing (as PyTorch's, before CUDA is
initialised); the others raise a ``RuntimeError`` that says why CUDA is unavailable.

Streams and events (PyTorch's API)
----------------------------------
polyten queues every kernel on the *current stream* of the device it runs on and never waits
for the GPU in the middle of a computation; :func:`synchronize` waits for all the work queued
on a device.  A :class:`Stream` is another queue of one device: work on two streams may run
concurrently (a non-blocking copy overlapping compute), work on one stream runs in order.
``with polyten.cuda.stream(s):`` makes ``s`` the current stream -- and ``s``'s device the
current device -- for the block, so every polyten op launched inside (kernels, and
``.to("cuda", non_blocking=True)`` from pinned memory) is queued on ``s``.  An :class:`Event`
marks a point in a stream: another stream can wait for it without the host waiting
(:meth:`Event.wait`, :meth:`Stream.wait_stream`), the host can wait for it
(:meth:`Event.synchronize`), and two timing events measure the GPU time between them::

    start, end = polyten.cuda.Event(enable_timing=True), polyten.cuda.Event(enable_timing=True)
    start.record(); y = x @ x; end.record()
    end.synchronize(); ms = start.elapsed_time(end)

As in PyTorch, streams made by :class:`Stream` do not synchronise with the default stream:
join them (``polyten.cuda.current_stream().wait_stream(s)``, or an event) before another
stream uses their results, and keep a tensor that a stream still reads referenced until its
work is joined (its memory returns to the pool of the stream it was allocated on; PyTorch's
``record_stream`` has no CuPy counterpart).  The deferred value checks (out-of-range class
targets or indices, see :func:`set_sync_checks`) are kept per stream and still raised at the
next host read; while checks of another stream than the current one are pending, that read
first waits for the whole device, so no flag is read before it is written.
:meth:`Stream.synchronize` and :meth:`Event.synchronize` wait but read no check.
"""

from __future__ import annotations

import threading
from typing import Optional

__all__ = ["is_available", "device_count", "current_device", "set_device", "synchronize",
           "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats",
           "memory_reserved", "empty_cache", "get_device_name", "manual_seed_all",
           "manual_seed", "get_device_properties", "get_device_capability", "mem_get_info",
           "max_memory_reserved", "memory_stats", "is_bf16_supported", "is_initialized",
           "init", "device",
           "set_sync_checks", "Stream", "Event", "StreamContext", "stream", "current_stream",
           "default_stream", "OutOfMemoryError", "seed", "seed_all", "initial_seed",
           "reset_max_memory_allocated", "memory_summary", "set_stream", "get_rng_state",
           "set_rng_state", "get_rng_state_all", "set_rng_state_all",
           "set_per_process_memory_fraction", "get_per_process_memory_fraction"]

from ..dispatch.errors import OutOfMemoryError  # noqa: E402  (torch.cuda.OutOfMemoryError)


def _info():
    from ..dispatch import registry
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
    from ..dispatch import registry
    return registry.get("cuda").runtime


def _index(fn: str, device) -> Optional[int]:
    """``None`` (current device), an int, ``"cuda:1"`` or a polyten device -> an index."""
    if device is None:
        return None
    if isinstance(device, int) and not isinstance(device, bool):
        index = device
    else:
        from ..dispatch.device import Device, parse_device_string
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
    from ..dispatch import checks, registry
    checks.flush(registry.get("cuda"))


def set_sync_checks(enabled: bool) -> None:
    """Check values that need a read on the host (class targets of ``cross_entropy`` /
    ``nll_loss``, indices of indexing, ``gather``, ``embedding``, ... out of range) at the op, synchronising with the GPU there (``True``), or --
    the default -- at the next host read (``.item()``, printing, ``.cpu()``) or
    :func:`synchronize`, so that a training step never waits for the GPU.  The environment
    variable ``POLYTEN_SYNC_CHECKS=1`` sets ``True`` at start-up."""
    from ..dispatch.checks import set_sync_checks as _set
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


def reset_max_memory_allocated(device=None) -> None:
    """Deprecated spelling of :func:`reset_peak_memory_stats` (as in torch)."""
    import warnings
    warnings.warn("polyten.cuda.reset_max_memory_allocated now calls "
                  "polyten.cuda.reset_peak_memory_stats, which resets all peak memory stats.",
                  FutureWarning, stacklevel=2)
    reset_peak_memory_stats(device)


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A printable table of :func:`memory_stats` for ``device`` (``torch.cuda.memory_summary``;
    CuPy's pool keeps fewer counters than PyTorch's allocator, so the table is shorter)."""
    _runtime("memory_summary")  # raises with the reason where CUDA is not available
    stats = memory_stats(device)
    free, total = mem_get_info(device)
    index = _index("memory_summary", device)
    index = current_device() if index is None else index

    def mib(n):
        return f"{n / (1 << 20):12.2f} MiB"
    rows = [("Allocated memory (current)", stats["allocated_bytes.all.current"]),
            ("Allocated memory (peak)", stats["allocated_bytes.all.peak"]),
            ("Reserved by the pool", stats["reserved_bytes.all.current"]),
            ("Free on the device", free), ("Device total", total)]
    width = 60
    lines = ["=" * width, f" polyten.cuda memory summary, device {index} (CuPy's pool)".ljust(
        width), "-" * width]
    lines += [f" {name:<34}{mib(value)}" for name, value in rows]
    lines.append("=" * width)
    return "\n".join(lines) + "\n"


def set_per_process_memory_fraction(fraction, device=None) -> None:
    """Cap the GPU memory this process may hold on ``device`` at ``fraction`` of its total
    (``torch.cuda.set_per_process_memory_fraction``): past it an allocation raises
    :class:`OutOfMemoryError`, naming the cap, as if the GPU were that small.  The cap counts
    the memory pool's cached blocks too (call :func:`empty_cache` to drop them).

    Parameters
    ----------
    fraction : float
        In ``[0, 1]``; 1 lifts the cap.
    device : int, str or polyten.device, optional
        The device (default: the current one).
    """
    fn = "set_per_process_memory_fraction"
    if isinstance(fraction, bool) or not isinstance(fraction, (float, int)):
        raise TypeError(f"polyten.cuda.{fn}: fraction must be a float in [0, 1], got "
                        f"{type(fraction).__name__} {fraction!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"polyten.cuda.{fn}: fraction must be in [0, 1] (a share of the "
                         f"device's memory), got {fraction!r}")
    rt = _runtime(fn)
    rt.set_memory_fraction(_device_index(fn, rt, device), float(fraction))


def get_per_process_memory_fraction(device=None) -> float:
    """The share of ``device``'s memory this process may hold
    (:func:`set_per_process_memory_fraction`; 1.0 when uncapped)."""
    fn = "get_per_process_memory_fraction"
    rt = _runtime(fn)
    return rt.memory_fraction(_device_index(fn, rt, device))


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


class _CudaDeviceProperties:
    """What :func:`get_device_properties` returns (``torch.cuda``'s fields)."""

    __slots__ = ("name", "major", "minor", "total_memory", "multi_processor_count",
                 "L2_cache_size")

    def __init__(self, props: dict):
        for k in self.__slots__:
            setattr(self, k, props[k])

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // (1 << 20)}MB, "
                f"multi_processor_count={self.multi_processor_count}, "
                f"L2_cache_size={self.L2_cache_size // (1 << 20)}MB)")


def _properties(fn: str, device) -> _CudaDeviceProperties:
    rt = _runtime(fn)
    return _CudaDeviceProperties(rt.device_properties(_device_index(fn, rt, device)))


def get_device_properties(device=None) -> _CudaDeviceProperties:
    """The GPU's name, compute capability (``major``, ``minor``), ``total_memory`` in bytes,
    ``multi_processor_count`` and ``L2_cache_size``."""
    return _properties("get_device_properties", device)


def get_device_capability(device=None):
    """``(major, minor)``: the GPU's compute capability, e.g. ``(9, 0)`` for an H100."""
    p = _properties("get_device_capability", device)
    return p.major, p.minor


def mem_get_info(device=None):
    """``(free, total)``: bytes of GPU memory free on ``device`` and its total, as CUDA
    reports them (memory CuPy's pool caches counts as used: :func:`empty_cache` frees it)."""
    rt = _runtime("mem_get_info")
    return rt.mem_get_info(_device_index("mem_get_info", rt, device))


def max_memory_reserved(device=None) -> int:
    """The peak of :func:`memory_reserved` since the last :func:`empty_cache`: CuPy's pool
    only grows until then, so this is its size now (PyTorch's figure also remembers peaks
    from before an ``empty_cache``)."""
    return memory_reserved(device)


def memory_stats(device=None) -> dict:
    """A few of ``torch.cuda.memory_stats``' counters, in bytes: ``allocated_bytes.all.current``
    / ``.peak`` and ``reserved_bytes.all.current`` / ``.peak``."""
    reserved = memory_reserved(device)
    return {"allocated_bytes.all.current": memory_allocated(device),
            "allocated_bytes.all.peak": max_memory_allocated(device),
            "reserved_bytes.all.current": reserved, "reserved_bytes.all.peak": reserved}


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether bfloat16 tensors work on the current GPU: the ``cuda`` backend stores bfloat16
    (CuPy 14 or later with ml_dtypes installed) and, with ``including_emulation=False``, the
    GPU computes it natively (compute capability 8.0 or later, as PyTorch asks)."""
    if not is_available():
        return False
    from ..dispatch import registry
    if "bfloat16" not in registry.get("cuda").dtypes:
        return False
    return including_emulation or get_device_capability()[0] >= 8


def is_initialized() -> bool:
    """Whether the ``cuda`` backend (and so CuPy) has been loaded in this process."""
    info = _info()
    return info is not None and info.backend is not None


def init() -> None:
    """Load the ``cuda`` backend now (it loads on first use otherwise); raises if CUDA is not
    available."""
    _runtime("init")


class device:
    """``with polyten.cuda.device(1):`` -- make a GPU the current device for the block and
    restore the previous one after (``torch.cuda.device``).  ``None`` or ``-1`` do nothing."""

    def __init__(self, device):
        self._target = None if device is None or device == -1 else device
        self._prev = None

    def __enter__(self):
        if self._target is not None:
            rt = _runtime("device")
            index = _device_index("device", rt, self._target)
            self._prev = rt.current_device()
            if index != self._prev:
                rt.set_device(index)
        return self

    def __exit__(self, *exc):
        if self._prev is not None:
            _runtime("device").set_device(self._prev)
            self._prev = None
        return False


def _seeding_runtime(fn: str):
    """The runtime, once the backend has taken ``polyten.manual_seed``'s seed (which it takes
    lazily, at its first draw): a seed given here afterwards must not be overridden by it."""
    rt = _runtime(fn, required=False)
    if rt is not None:
        from ..api.random import ensure_seeded
        from ..dispatch import registry
        ensure_seeded(registry.get("cuda"))  # ``polyten.manual_seed``'s seed, if pending
    return rt


def manual_seed(seed: int) -> None:
    """Reseed the random generator of the current GPU only (``torch.cuda.manual_seed``):
    it then draws what :func:`manual_seed_all` with the same seed makes it draw."""
    import operator
    from ..api.random import _LOCK
    seed = operator.index(seed)
    rt = _seeding_runtime("manual_seed")
    if rt is not None:
        with _LOCK:  # not while another thread's generator= state is in the backend
            rt.seed_device(rt.current_device(), seed)


def manual_seed_all(seed: int) -> None:
    """Reseed the generators of every GPU (``polyten.manual_seed`` does this too)."""
    import operator
    from ..api.random import _LOCK
    seed = operator.index(seed)
    rt = _seeding_runtime("manual_seed_all")
    if rt is not None:
        with _LOCK:
            rt.seed_all(seed)


def _random_seed() -> int:
    import secrets
    return secrets.randbits(63)


def seed() -> None:
    """Reseed the current GPU's generator with a random (non-reproducible) seed, which
    :func:`initial_seed` then returns (``torch.cuda.seed``)."""
    manual_seed(_random_seed())


def seed_all() -> None:
    """Reseed every GPU's generator with one random seed (``torch.cuda.seed_all``)."""
    manual_seed_all(_random_seed())


def initial_seed() -> int:
    """The seed the current GPU's generator was last seeded with (by :func:`manual_seed`,
    :func:`manual_seed_all`, ``polyten.manual_seed``, :func:`seed` or :func:`seed_all`), or
    the random one it drew for itself (``torch.cuda.initial_seed``)."""
    rt = _seeding_runtime("initial_seed")
    if rt is None:
        _runtime("initial_seed")  # raises with the reason CUDA is unavailable
    return rt.initial_seed(rt.current_device())


def _rng_device(fn: str, device):
    """``"cuda"`` (the current GPU), ``"cuda:N"``, an index or a polyten device -> the device
    whose generator ``fn`` reads or writes."""
    return _cuda_device(_device_index(fn, _runtime(fn), device))


def get_rng_state(device="cuda"):
    """The state of a GPU's random generator as a uint8 cpu tensor
    (``torch.cuda.get_rng_state``): its Philox key, offset and seed, read without waiting
    for the GPU.  :func:`set_rng_state` restores it, on that GPU or another.

    Parameters
    ----------
    device : int, str or polyten.device
        ``"cuda"`` (the current GPU, the default), ``"cuda:N"`` or ``N``.
    """
    from ..api.random import device_rng_state
    return device_rng_state("polyten.cuda.get_rng_state", _rng_device("get_rng_state", device))


def set_rng_state(new_state, device="cuda") -> None:
    """Restore a state of :func:`get_rng_state` on a GPU (``torch.cuda.set_rng_state``): it
    then draws what the saved generator drew after the state was taken."""
    from ..api.random import set_device_rng_state
    set_device_rng_state("polyten.cuda.set_rng_state", _rng_device("set_rng_state", device),
                         new_state)


def get_rng_state_all() -> list:
    """:func:`get_rng_state` of every GPU, in device order (``torch.cuda.get_rng_state_all``)."""
    return [get_rng_state(i) for i in range(_runtime("get_rng_state_all").device_count())]


def set_rng_state_all(new_states) -> None:
    """Restore :func:`get_rng_state_all`'s states, the i-th on ``cuda:i``."""
    states = list(new_states)
    count = _runtime("set_rng_state_all").device_count()
    if len(states) > count:
        raise ValueError(f"polyten.cuda.set_rng_state_all: {len(states)} states for {count} "
                         f"GPU(s); pass at most one per device, as get_rng_state_all() returns")
    for i, state in enumerate(states):
        set_rng_state(state, i)


# ==================================================================================================
# Streams and events
# ==================================================================================================
# The CuPy objects behind them stay opaque here: every call that needs CuPy goes through the
# cuda backend's ``runtime`` (``polyten_cuda.backend.CudaRuntime``).

def _device_index(fn: str, rt, device) -> int:
    index = _index(fn, device)
    return rt.current_device() if index is None else index


def _cuda_device(index: int):
    from ..dispatch.device import device
    return device(f"cuda:{index}")


def _what(obj) -> str:
    return f"{type(obj).__name__} {obj!r}"


def _stream_arg(fn: str, stream) -> "Stream":
    """``None`` (the current stream of the current device) or a :class:`Stream`."""
    if stream is None:
        return current_stream()
    if not isinstance(stream, Stream):
        raise TypeError(f"polyten.cuda.{fn}: expected a polyten.cuda.Stream (or None for the "
                        f"current stream), got {_what(stream)}")
    return stream


class Stream:
    """A CUDA stream: an ordered queue of GPU work on one device (``torch.cuda.Stream``).

    Work queued on one stream runs in order; work on different streams may run concurrently.
    Queue polyten ops on it with ``with polyten.cuda.stream(s):`` (or ``with s:``).

    Parameters
    ----------
    device : int, str or polyten.device, optional
        The device the stream belongs to: an index, ``"cuda:N"`` or a device (default: the
        current device).
    priority : int, default 0
        Scheduling priority; a lower number runs first when the GPU has a choice.  CUDA maps a
        value outside the device's range (usually -5 to 0) to the nearest end, as in PyTorch.

    Raises
    ------
    RuntimeError
        If CUDA is not available (the message says why).
    TypeError, ValueError
        If ``device`` is not a CUDA device of this machine or ``priority`` is not an int.

    Notes
    -----
    As PyTorch's, the stream does not synchronise with the default stream (it is created
    non-blocking): join it with :meth:`wait_stream` or an :class:`Event` before another stream
    uses its results, and keep the tensors it reads referenced until then.

    Examples
    --------
    >>> s = polyten.cuda.Stream()
    >>> with polyten.cuda.stream(s):
    ...     xb = batch.to("cuda", non_blocking=True)   # copied on s, overlapping other work
    >>> polyten.cuda.current_stream().wait_stream(s)   # later work waits for the copy
    """

    __slots__ = ("_rt", "_native", "_index")

    def __init__(self, device=None, priority: int = 0):
        import operator
        rt = _runtime("Stream")
        index = _device_index("Stream", rt, device)
        try:
            priority = operator.index(priority)
        except TypeError:
            raise TypeError(f"polyten.cuda.Stream: priority must be an int (lower runs first), "
                            f"got {_what(priority)}") from None
        self._rt, self._index = rt, index
        self._native = rt.new_stream(index, priority)

    @classmethod
    def _of(cls, rt, native, index: int) -> "Stream":
        """A Stream around an existing CuPy stream of device ``index``."""
        s = object.__new__(cls)
        s._rt, s._native, s._index = rt, native, index
        return s

    @property
    def device(self):
        """The device the stream belongs to (a ``polyten.device``)."""
        return _cuda_device(self._index)

    @property
    def cuda_stream(self) -> int:
        """The raw ``cudaStream_t`` handle as an int (``0``: the legacy default stream)."""
        return self._rt.stream_handle(self._native)

    @property
    def priority(self) -> int:
        """The stream's priority, after CUDA clamped it to the device's range."""
        return self._rt.stream_priority(self._native, self._index)

    def query(self) -> bool:
        """Whether all the work queued on the stream has finished (never waits)."""
        return self._rt.stream_query(self._native, self._index)

    def synchronize(self) -> None:
        """Wait on the host until all the work queued on the stream has finished.

        Unlike :func:`polyten.cuda.synchronize`, this reads no deferred value check: they are
        raised at the next host read."""
        self._rt.stream_synchronize(self._native, self._index)

    def wait_event(self, event: "Event") -> None:
        """Make all work queued on this stream from now on wait for ``event``.

        Returns at once: the GPU waits, not the host.  An event never recorded is already
        complete (no wait).

        Parameters
        ----------
        event : polyten.cuda.Event
            The event to wait for (recorded on a stream of any device).
        """
        if not isinstance(event, Event):
            raise TypeError(f"polyten.cuda.Stream.wait_event: expected a polyten.cuda.Event, "
                            f"got {_what(event)}")
        event.wait(self)

    def wait_stream(self, stream: "Stream") -> None:
        """Make all work queued on this stream from now on wait for the work queued on
        ``stream`` so far (an event recorded there); the host does not wait.

        Parameters
        ----------
        stream : polyten.cuda.Stream
            The stream to wait for (of any device).

        Examples
        --------
        >>> side = polyten.cuda.Stream()
        >>> with polyten.cuda.stream(side):
        ...     y = x @ w
        >>> polyten.cuda.current_stream().wait_stream(side)
        >>> z = y + 1   # ordered after the matmul
        """
        if not isinstance(stream, Stream):
            raise TypeError(f"polyten.cuda.Stream.wait_stream: expected a polyten.cuda.Stream, "
                            f"got {_what(stream)}")
        if stream == self:
            return  # a stream's work is already in order
        self.wait_event(stream.record_event())

    def record_event(self, event: Optional["Event"] = None) -> "Event":
        """Record ``event`` (default: a new :class:`Event` without timing) on this stream and
        return it: it completes when the work queued on the stream so far has finished."""
        if event is None:
            event = Event()
        elif not isinstance(event, Event):
            raise TypeError(f"polyten.cuda.Stream.record_event: expected a polyten.cuda.Event "
                            f"or None, got {_what(event)}")
        event.record(self)
        return event

    def __eq__(self, other):
        if not isinstance(other, Stream):
            return NotImplemented
        return self._index == other._index and self.cuda_stream == other.cuda_stream

    def __hash__(self):
        return hash((self.cuda_stream, self._index))

    def __repr__(self):
        return f"<polyten.cuda.Stream device=cuda:{self._index} cuda_stream={self.cuda_stream:#x}>"

    def __cuda_stream__(self):
        """The CUDA stream protocol: ``(0, handle)``, e.g. for
        ``cupy.cuda.Stream.from_external``."""
        return (0, self.cuda_stream)

    def __enter__(self):
        ctx = StreamContext(self)
        ctx.__enter__()
        _entered().append(ctx)
        return self

    def __exit__(self, *exc):
        return _entered().pop().__exit__(*exc)


class Event:
    """A CUDA event: a marker in a stream's queue of work (``torch.cuda.Event``).

    The event belongs to the device of the stream it is first recorded on; it completes when
    the work queued on that stream before the record has finished.

    Parameters
    ----------
    enable_timing : bool, default False
        Record GPU timestamps, for :meth:`elapsed_time` (costs a little at each record).
    blocking : bool, default False
        :meth:`synchronize` lets the host thread sleep instead of spinning while it waits.
    interprocess : bool, default False
        Create a CUDA interprocess event (it cannot time; polyten exports no IPC handle).

    Raises
    ------
    RuntimeError
        If CUDA is not available (the message says why).
    TypeError, ValueError
        If a flag is not a bool, or ``interprocess`` is combined with ``enable_timing``.

    Examples
    --------
    >>> start = polyten.cuda.Event(enable_timing=True)
    >>> end = polyten.cuda.Event(enable_timing=True)
    >>> start.record()
    >>> y = x @ x
    >>> end.record()
    >>> end.synchronize()
    >>> start.elapsed_time(end)     # milliseconds of GPU time
    0.41
    """

    __slots__ = ("_rt", "_native", "_index", "_timing", "_blocking", "_interprocess")

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        rt = _runtime("Event")
        flags = {"enable_timing": enable_timing, "blocking": blocking,
                 "interprocess": interprocess}
        for name, value in flags.items():
            if not isinstance(value, (bool, int)):
                raise TypeError(f"polyten.cuda.Event: {name} must be a bool, got "
                                f"{_what(value)}")
        if interprocess and enable_timing:
            raise ValueError("polyten.cuda.Event: an interprocess event cannot measure time "
                             "(CUDA requires timing disabled on interprocess events); pass "
                             "enable_timing=False, or use another event for timing")
        self._rt, self._native, self._index = rt, None, None
        self._timing, self._blocking = bool(enable_timing), bool(blocking)
        self._interprocess = bool(interprocess)

    @property
    def device(self):
        """The device of the stream the event was first recorded on (``None`` before)."""
        return None if self._index is None else _cuda_device(self._index)

    @property
    def cuda_event(self) -> int:
        """The raw ``cudaEvent_t`` handle as an int (``0`` until the first record creates it)."""
        return 0 if self._native is None else self._rt.event_handle(self._native)

    def record(self, stream: Optional[Stream] = None) -> None:
        """Record the event on ``stream`` (default: the current stream of the current device).

        The event then completes when the work queued on ``stream`` so far has finished.
        After the first record, only streams of the same device may record it.
        """
        stream = _stream_arg("Event.record", stream)
        if self._native is None:
            self._native = self._rt.new_event(stream._index, self._timing, self._blocking,
                                              self._interprocess)
            self._index = stream._index
        elif stream._index != self._index:
            raise RuntimeError(
                f"polyten.cuda.Event.record: the event belongs to cuda:{self._index} (first "
                f"recorded there) but the stream is on cuda:{stream._index}; record it on a "
                f"stream of cuda:{self._index}, or use one Event per device (any device's "
                f"stream can wait for it)")
        self._rt.event_record(self._native, stream._native, stream._index)

    def wait(self, stream: Optional[Stream] = None) -> None:
        """Make all work queued on ``stream`` (default: the current stream) from now on wait for
        this event; returns at once (the GPU waits, not the host).  Does nothing if the event
        was never recorded.  ``stream`` may belong to another device."""
        stream = _stream_arg("Event.wait", stream)
        if self._native is not None:
            self._rt.stream_wait_event(stream._native, stream._index, self._native)

    def query(self) -> bool:
        """Whether the work before the last record has finished (``True`` if never recorded);
        never waits."""
        return True if self._native is None else self._rt.event_query(self._native, self._index)

    def synchronize(self) -> None:
        """Wait on the host until the work before the last record has finished (returns at
        once if the event was never recorded).  Reads no deferred value check."""
        if self._native is not None:
            self._rt.event_synchronize(self._native, self._index)

    def elapsed_time(self, end_event: "Event") -> float:
        """GPU time in milliseconds from this event's record to ``end_event``'s.

        Both events must be created with ``enable_timing=True``, recorded on streams of the
        same device, and completed (call ``end_event.synchronize()`` first).

        Raises
        ------
        TypeError
            If ``end_event`` is not an :class:`Event`.
        ValueError
            If either event was created without timing, was never recorded, or the two were
            recorded on different devices.
        RuntimeError
            If the work before either record has not finished yet.
        """
        fn = "polyten.cuda.Event.elapsed_time"
        if not isinstance(end_event, Event):
            raise TypeError(f"{fn}: expected a polyten.cuda.Event, got {_what(end_event)}")
        pair = ((self, "start event (self)"), (end_event, "end event"))
        untimed = [name for e, name in pair if not e._timing]
        if untimed:
            raise ValueError(f"{fn}: the {' and the '.join(untimed)} "
                             f"{'were' if len(untimed) > 1 else 'was'} created without timing; "
                             f"create both with polyten.cuda.Event(enable_timing=True)")
        unrecorded = [name for e, name in pair if e._native is None]
        if unrecorded:
            raise ValueError(f"{fn}: the {' and the '.join(unrecorded)} "
                             f"{'were' if len(unrecorded) > 1 else 'was'} never recorded; call "
                             f"start.record() before the work and end.record() after it")
        if self._index != end_event._index:
            raise ValueError(f"{fn}: the start event was recorded on cuda:{self._index} and the "
                             f"end event on cuda:{end_event._index}; time the work of one "
                             f"device with two events recorded on streams of that device")
        if not (self.query() and end_event.query()):
            raise RuntimeError(f"{fn}: the work before the events has not finished yet; call "
                               f"end_event.synchronize() before elapsed_time")
        return self._rt.elapsed_time(self._native, end_event._native, self._index)

    def __repr__(self):
        timing = " timing" if self._timing else ""
        if self._native is None:
            return f"<polyten.cuda.Event{timing} (not recorded)>"
        return f"<polyten.cuda.Event{timing} device=cuda:{self._index} " \
               f"cuda_event={self.cuda_event:#x}>"


class StreamContext:
    """Context manager that makes ``stream`` the current stream, and its device the current
    device, for the duration of the block (``torch.cuda.StreamContext``); see :func:`stream`.

    Parameters
    ----------
    stream : polyten.cuda.Stream or None
        The stream; ``None`` makes the block change nothing.
    """

    __slots__ = ("stream", "_saved")

    def __init__(self, stream: Optional[Stream]):
        if stream is not None and not isinstance(stream, Stream):
            raise TypeError(f"polyten.cuda.stream: expected a polyten.cuda.Stream (make one "
                            f"with polyten.cuda.Stream(device)) or None, got {_what(stream)}")
        self.stream = stream
        self._saved: list = []

    def __enter__(self) -> Optional[Stream]:
        s = self.stream
        if s is None:
            self._saved.append(None)
            return None
        use = s._rt.stream_use(s._native, s._index)
        use.__enter__()
        self._saved.append(use)
        return s

    def __exit__(self, *exc) -> bool:
        use = self._saved.pop()
        if use is not None:
            use.__exit__(*exc)
        return False


def stream(stream: Optional[Stream]) -> StreamContext:
    """``with polyten.cuda.stream(s):`` queues every polyten op of the block on ``s``.

    For the duration of the block ``s`` is the current stream of its device and that device
    the current device (``"cuda"`` means it), as ``torch.cuda.stream``; both are restored at
    the end.  ``None`` changes nothing.

    Parameters
    ----------
    stream : polyten.cuda.Stream or None

    Examples
    --------
    >>> s = polyten.cuda.Stream()
    >>> with polyten.cuda.stream(s):
    ...     y = model(x)
    >>> polyten.cuda.current_stream().wait_stream(s)
    """
    return StreamContext(stream)


def set_stream(stream: Optional[Stream]) -> None:
    """Make ``stream`` the current stream of its device in this thread, until another one is
    set (``torch.cuda.set_stream``; a :func:`stream` block is the safer form: it restores the
    previous stream).  ``None`` changes nothing."""
    if stream is None:
        return
    s = _stream_arg("set_stream", stream)
    s._rt.stream_set(s._native, s._index)


def current_stream(device=None) -> Stream:
    """The current stream of ``device`` (default: the current device) in this thread: the
    default stream unless a :func:`stream` block (or CuPy's ``with cupy.cuda.Stream()``) made
    another one current."""
    rt = _runtime("current_stream")
    index = _device_index("current_stream", rt, device)
    return Stream._of(rt, rt.current_stream(index), index)


def default_stream(device=None) -> Stream:
    """The default stream of ``device`` (default: the current device): CUDA's legacy default
    stream, ``cuda_stream == 0`` (the per-thread default stream when CuPy runs with
    ``CUPY_CUDA_PER_THREAD_DEFAULT_STREAM=1``)."""
    rt = _runtime("default_stream")
    index = _device_index("default_stream", rt, device)
    return Stream._of(rt, rt.default_stream(index), index)


_ENTERED = threading.local()


def _entered() -> list:
    """This thread's stack of the contexts entered by ``with s:`` on a :class:`Stream`."""
    stack = getattr(_ENTERED, "stack", None)
    if stack is None:
        stack = _ENTERED.stack = []
    return stack




def __getattr__(name):
    if name in ("amp", "nvtx"):  # torch.cuda.amp's older spellings, NVTX; on first use
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
