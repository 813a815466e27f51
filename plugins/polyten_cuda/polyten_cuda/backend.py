"""Builds the ``cuda`` :class:`polyten.dispatch.Backend` on CuPy.

Streams and synchronisation
---------------------------
* Every kernel is queued on CuPy's *current stream* of the current device (the legacy default
  stream unless the user enters ``polyten.cuda.stream(s)`` or a ``cupy.cuda.Stream()``); polyten
  creates no stream unless asked (``polyten.cuda.Stream()``), so user code that works with CuPy
  streams works with polyten tensors.
* Nothing in a training step waits for the GPU: kernels never read a device value on the host
  (data-dependent choices -- ignored targets, an all-ignored mean, integer powers -- are made on
  the device), scalars are passed as kernel arguments (never ``cupy.asarray(number)``, a
  host-to-device copy), and the optimizer steps fold their step-dependent constants from Python
  numbers.  The host waits only when the user asks for a value: ``.item()``, ``.tolist()``,
  ``.numpy()``, ``.cpu()``, printing, ``bool(t)``, and the core's checks of index values (see
  ``docs/architecture.md``, "CUDA").
* Transfers: host -> device copies from pageable memory are synchronous (CUDA stages them);
  ``pin_memory`` + ``from_pinned`` (``DataLoader(pin_memory=True)``) copy asynchronously on the
  current stream from page-locked memory, the buffer kept alive until an event says the copy
  is done.  Device -> device copies go peer to peer (enabled once per pair when the GPUs allow
  it), ordered after the work queued on the source device and before any later work there.
* ``polyten.cuda.synchronize()`` waits for all the work of a device.
* ``polyten.cuda.Stream`` / ``Event`` / ``stream(s)`` (PyTorch's API) are CuPy streams and
  events behind :class:`CudaRuntime`'s stream and event methods.  A stream made by
  ``polyten.cuda.Stream`` is created non-blocking (``cudaStreamNonBlocking``, as PyTorch's), so
  its work overlaps the legacy default stream's; every call on a stream or event runs with its
  device current (the legacy default stream, ``ptr`` 0, means the current device's).

Devices: creation and random kernels run under ``cupy.cuda.Device(index)``; one Philox
generator per device (``philox.py``), all reseeded by ``polyten.manual_seed`` (device ``d``
draws under the key ``seed + 1000003 * d``), whose state ``get_rng_state`` / ``set_rng_state``
save and restore without touching the GPU.  Memory statistics come from CuPy's default
memory pool; polyten installs an allocator that draws from that pool and records the peak per
device (``max_memory_allocated``).
"""

from __future__ import annotations

import os

import cupy
import numpy as np

from polyten.dispatch import Backend
from polyten_cpu.backend import DTYPE_NAMES as _CPU_DTYPES

from . import bfloat16 as _bf16
from . import cupy_internals as _internals
from . import kernels as _kernels
from . import optim as _optim
from . import philox as _philox

# bfloat16 only where this CuPy stores it (ml_dtypes installed, CuPy 14 or later)
DTYPE_NAMES = tuple(d for d in _CPU_DTYPES
                    if d != "bfloat16" or _bf16.supported(cupy) is not None)
_NATIVE = {n: np.dtype(n) for n in DTYPE_NAMES}
# CuPy's default stream is the per-thread one when this is set at its import
_PTDS = os.environ.get("CUPY_CUDA_PER_THREAD_DEFAULT_STREAM", "0") == "1"
_NAMES = {np.dtype(n): n for n in DTYPE_NAMES}


class _DeviceRNG:
    """One Philox generator per device (:mod:`polyten_cuda.philox`), all reseeded by
    ``polyten.manual_seed``; device ``d`` draws under the key ``seed + 1000003 * d``, so the
    devices draw distinct, reproducible streams from one user seed.

    ``gen`` is the generator of the current device, so kernels written for NumPy's Generator
    API (``random``, ``standard_normal``, ``integers``) work unchanged.  A generator's state is
    three host integers (key, offset, seed): saving or restoring it never touches the GPU.
    """

    def __init__(self):
        self._seed = None
        self._device_seeds = {}  # polyten.cuda.manual_seed: one device reseeded
        self._gens = {}
        self._kernels = None     # compiled lazily: CuPy compiles at the first launch anyway

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._device_seeds.clear()
        self._gens.clear()

    def seed_device(self, dev: int, seed: int) -> None:
        """Reseed device ``dev`` alone, as :meth:`seed` would have (so ``manual_seed(s)`` on
        device 0 draws what ``manual_seed_all(s)`` makes device 0 draw)."""
        self._device_seeds[dev] = int(seed)
        self._gens.pop(dev, None)

    def initial_seed(self, dev: int) -> int:
        """The seed device ``dev`` draws from (``torch.cuda.initial_seed``): the last one
        given for it or for all devices (or restored with its state), else one drawn from the
        OS once per process."""
        g = self._gens.get(dev)
        if g is not None:
            return g.seed
        seed = self._device_seeds.get(dev, self._seed)
        if seed is None:
            import secrets
            seed = self._seed = secrets.randbits(63)
        return seed

    def _compiled(self):
        if self._kernels is None:
            self._kernels = _philox.compile_kernels(cupy)
        return self._kernels

    def generator(self, dev: int) -> "_philox.PhiloxGenerator":
        g = self._gens.get(dev)
        if g is None:
            seed = self.initial_seed(dev)
            g = self._gens[dev] = _philox.PhiloxGenerator(cupy, self._compiled(),
                                                          key=seed + 1_000_003 * dev, seed=seed)
        return g

    @property
    def gen(self):
        return self.generator(cupy.cuda.runtime.getDevice())

    def get_state(self, dev: int) -> bytes:
        """Device ``dev``'s generator state (``polyten.cuda.get_rng_state``)."""
        return self.generator(dev).state_bytes()

    def set_state(self, dev: int, raw: bytes) -> None:
        """Restore a state of :meth:`get_state` on device ``dev``: it then draws what the
        saved generator would have drawn next (whichever device it was saved on)."""
        self._gens[dev] = _philox.PhiloxGenerator.from_bytes(cupy, self._compiled(), raw)


class CudaRuntime:
    """Device services behind ``polyten.cuda`` (memory statistics, devices, peer copies)."""

    def __init__(self, rng):
        self._rng = rng
        self._pool = cupy.get_default_memory_pool()
        self._peak = {}
        self._fraction = {}  # device index -> set_per_process_memory_fraction's value
        pool, peak = self._pool, self._peak
        oom = cupy.cuda.memory.OutOfMemoryError

        def malloc(size):
            try:
                mem = pool.malloc(size)
            except oom:
                # A capped pool (set_per_process_memory_fraction) counts its cached free
                # blocks and refuses what would pass the cap without releasing them (CuPy
                # does that only when cudaMalloc fails); PyTorch's allocator releases its
                # cache and tries again, and so do we.
                if not pool.get_limit() or not pool.free_bytes():
                    raise
                pool.free_all_blocks()
                mem = pool.malloc(size)
            used = pool.used_bytes()  # of the current device, which is mem's
            dev = mem.device_id
            if used > peak.get(dev, 0):
                peak[dev] = used
            return mem

        # the peak is only ever reached right after an allocation: record it there
        cupy.cuda.set_allocator(malloc)

    # --- devices -----------------------------------------------------------------------
    def device_count(self) -> int:
        return cupy.cuda.runtime.getDeviceCount()

    def current_device(self) -> int:
        return cupy.cuda.runtime.getDevice()

    def set_device(self, index: int) -> None:
        cupy.cuda.Device(index).use()

    def device_name(self, index: int) -> str:
        name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def device_properties(self, index: int) -> dict:
        """``torch.cuda.get_device_properties``' fields, from CUDA's device properties."""
        p = cupy.cuda.runtime.getDeviceProperties(index)
        name = p["name"]
        return {"name": name.decode() if isinstance(name, bytes) else str(name),
                "major": int(p["major"]), "minor": int(p["minor"]),
                "total_memory": int(p["totalGlobalMem"]),
                "multi_processor_count": int(p["multiProcessorCount"]),
                "L2_cache_size": int(p.get("l2CacheSize", 0))}

    def mem_get_info(self, index: int):
        """``(free, total)`` bytes of the device, as CUDA reports them."""
        with cupy.cuda.Device(index):
            free, total = cupy.cuda.runtime.memGetInfo()
        return int(free), int(total)

    def seed_device(self, index: int, seed: int) -> None:
        self._rng.seed_device(index, seed)

    def initial_seed(self, index: int) -> int:
        return self._rng.initial_seed(index)

    def synchronize(self, index=None) -> None:
        cupy.cuda.Device(self.current_device() if index is None else index).synchronize()

    # --- memory ------------------------------------------------------------------------
    def _on(self, index, fn):
        with cupy.cuda.Device(self.current_device() if index is None else index):
            return fn()

    def memory_allocated(self, index=None) -> int:
        return self._on(index, self._pool.used_bytes)

    def memory_reserved(self, index=None) -> int:
        return self._on(index, self._pool.total_bytes)

    def max_memory_allocated(self, index=None) -> int:
        dev = self.current_device() if index is None else index
        return max(self._peak.get(dev, 0), self.memory_allocated(dev))

    def reset_peak_memory_stats(self, index=None) -> None:
        dev = self.current_device() if index is None else index
        self._peak[dev] = self.memory_allocated(dev)

    def set_memory_fraction(self, index: int, fraction: float) -> None:
        """Cap CuPy's pool on device ``index`` at ``fraction`` of its memory (CuPy's
        ``set_limit``, which counts cached blocks too, as PyTorch's allocator does).  CuPy
        reads a limit of 0 as none: a fraction of 0 is a 1-byte limit, so that every
        allocation fails as in PyTorch, and 1 is no limit."""
        with cupy.cuda.Device(index):
            if fraction >= 1:
                self._pool.set_limit(size=0)
            else:
                # in whole bytes, at least one: CuPy keeps fraction * total as a size_t, and
                # a fraction so small that it truncates to 0 would lift the limit
                total = cupy.cuda.runtime.memGetInfo()[1]
                self._pool.set_limit(size=max(1, int(fraction * total)))
        self._fraction[index] = fraction

    def memory_fraction(self, index: int) -> float:
        return self._fraction.get(index, 1.0)

    def empty_cache(self) -> None:
        """Release the cached blocks of every device the pool has allocated on, as
        ``torch.cuda.empty_cache`` (CuPy's ``free_all_blocks`` releases the current
        device's only); devices never used are not touched (entering one would create its
        CUDA context)."""
        for index in sorted(set(self._peak) | {self.current_device()}):
            with cupy.cuda.Device(index):
                self._pool.free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()

    def seed_all(self, seed: int) -> None:
        self._rng.seed(seed)

    # --- streams and events (polyten.cuda.Stream / Event; the objects stay opaque there) ---
    # Every call runs under its device: the legacy default stream (ptr 0) and a cudaEvent
    # are the current device's, and CuPy refuses to enter a stream of another device.
    def new_stream(self, index: int, priority: int):
        """A new CuPy stream on device ``index``: non-blocking (it does not synchronise with
        the legacy default stream, as PyTorch's streams), ``priority`` clamped by CUDA."""
        with cupy.cuda.Device(index):
            return cupy.cuda.Stream(non_blocking=True, priority=priority)

    def default_stream(self, index: int):
        """The default stream (of every device: CuPy's singleton, ``device_id`` -1)."""
        return cupy.cuda.Stream.ptds if _PTDS else cupy.cuda.Stream.null

    def current_stream(self, index: int):
        """CuPy's current stream of device ``index`` in this thread."""
        return cupy.cuda.get_current_stream(index)

    @staticmethod
    def stream_handle(stream) -> int:
        return int(stream.ptr)

    def stream_priority(self, stream, index: int) -> int:
        with cupy.cuda.Device(index):
            return int(stream.priority)

    def stream_query(self, stream, index: int) -> bool:
        with cupy.cuda.Device(index):
            return bool(stream.done)

    def stream_synchronize(self, stream, index: int) -> None:
        with cupy.cuda.Device(index):
            stream.synchronize()

    def stream_wait_event(self, stream, index: int, event) -> None:
        """Later work on ``stream`` (of device ``index``) waits for ``event`` (of any device):
        ``cudaStreamWaitEvent``, no host wait."""
        with cupy.cuda.Device(index):
            stream.wait_event(event)

    # --- NVTX (polyten.cuda.nvtx): True when recorded; never an error ---------------------
    @staticmethod
    def _nvtx(fn: str, *args) -> bool:
        try:
            from cupy.cuda import nvtx
            if not getattr(nvtx, "available", True):
                return False
            getattr(nvtx, fn)(*args)
        except Exception:  # no NVTX library: an annotation must not break the program
            return False
        return True

    def nvtx_range_push(self, msg: str) -> bool:
        return self._nvtx("RangePush", msg)

    def nvtx_range_pop(self) -> bool:
        return self._nvtx("RangePop")

    def nvtx_mark(self, msg: str) -> bool:
        return self._nvtx("Mark", msg)

    def stream_set(self, stream, index: int) -> None:
        """``stream`` current on device ``index`` in this thread (``cupy.cuda.Stream.use``)."""
        with cupy.cuda.Device(index):
            stream.use()

    def stream_use(self, stream, index: int):
        """A context manager: device ``index`` and ``stream`` current for its duration."""
        return _StreamUse(stream, index)

    def new_event(self, index: int, enable_timing: bool, blocking: bool, interprocess: bool):
        with cupy.cuda.Device(index):
            return cupy.cuda.Event(block=blocking, disable_timing=not enable_timing,
                                   interprocess=interprocess)

    @staticmethod
    def event_handle(event) -> int:
        return int(event.ptr)

    def event_record(self, event, stream, index: int) -> None:
        with cupy.cuda.Device(index):
            event.record(stream)

    def event_query(self, event, index: int) -> bool:
        with cupy.cuda.Device(index):
            return bool(event.done)

    def event_synchronize(self, event, index: int) -> None:
        with cupy.cuda.Device(index):
            event.synchronize()

    def elapsed_time(self, start, end, index: int) -> float:
        """Milliseconds between two completed timing events of device ``index``."""
        with cupy.cuda.Device(index):
            return float(cupy.cuda.get_elapsed_time(start, end))

    # --- device -> device ----------------------------------------------------------------
    def copy_between_devices(self, x, index: int):
        """``x`` (on another GPU) copied to device ``index``, peer to peer when possible
        (``MemoryPointer.copy_from_device_async`` enables peer access between the two GPUs
        when they allow it; ``cudaMemcpyPeerAsync`` stages through the host otherwise).

        The copy waits for the work queued on the source device (an event), and later work
        there waits for the copy, so neither side needs a host synchronisation.
        """
        src = x.device.id
        if src == index:
            with cupy.cuda.Device(index):
                return x.copy(order="C")
        with cupy.cuda.Device(src):
            # not ascontiguousarray: like NumPy's it makes a 0-d array 1-d
            xs = x if x.flags.c_contiguous else x.copy(order="C")
            src_stream = cupy.cuda.get_current_stream()
            ready = cupy.cuda.Event(block=False, disable_timing=True)
            ready.record(src_stream)
        with cupy.cuda.Device(index):
            stream = cupy.cuda.get_current_stream()
            stream.wait_event(ready)
            out = cupy.empty(xs.shape, dtype=xs.dtype)
            if xs.nbytes:
                out.data.copy_from_device_async(xs.data, xs.nbytes, stream)
            done = cupy.cuda.Event(block=False, disable_timing=True)
            done.record(stream)
        with cupy.cuda.Device(src):
            # xs returns to the source's pool when this function ends: work queued there
            # later (which may reuse its memory) must wait until the copy has read it
            src_stream.wait_event(done)
        return out


class _StreamUse:
    """``with cupy.cuda.Device(index), stream:`` as one object that ``polyten.cuda`` can enter
    and leave (``StreamContext``)."""

    __slots__ = ("_stream", "_device")

    def __init__(self, stream, index: int):
        self._stream, self._device = stream, cupy.cuda.Device(index)

    def __enter__(self):
        self._device.__enter__()
        try:
            self._stream.__enter__()
        except BaseException:
            self._device.__exit__(None, None, None)
            raise
        return self._stream

    def __exit__(self, *exc):
        try:
            self._stream.__exit__(*exc)
        finally:
            self._device.__exit__(*exc)
        return False


def make_backend() -> Backend:
    rng = _DeviceRNG()
    count = cupy.cuda.runtime.getDeviceCount()
    # the float32 convolution precision, read by every convolution's GEMMs (a backend starts
    # at "highest"; polyten hands it PyTorch's default, "high", at load)
    conv_precision = ["highest"]
    # polyten.use_deterministic_algorithms: scatter_add / scatter / setitem in source order
    deterministic = [False]
    kernels, backward, ew = _kernels.build(cupy, rng, _NATIVE.__getitem__, count,
                                           conv_precision, deterministic)
    runtime = CudaRuntime(rng)

    backend = Backend(
        "cuda", kernels,
        dtypes=DTYPE_NAMES,
        native_dtype=_NATIVE.__getitem__,
        dtype_name=lambda a: _NAMES.get(getattr(a, "dtype", None)),
        is_native=lambda obj: isinstance(obj, cupy.ndarray),
        seed=rng.seed,
        get_rng_state=rng.get_state,
        set_rng_state=rng.set_state,
        indexed=True,
        device_count=runtime.device_count,
        current_device=runtime.current_device,
        device_of=lambda a: a.device.id,
        device_guard=cupy.cuda.Device,
        synchronize=runtime.synchronize,
        version=f"cupy {cupy.__version__}",
        backward_kernels=backward,
        fused_optimizers=_kernels.guard_out_of_memory(cupy, _optim.make(cupy, ew)),
        # a host read waits for the queued kernels: value checks wait for the next one
        deferred_checks=True,
        # ... one chain of them per stream (polyten.cuda.stream(s) switches streams)
        current_stream=lambda index: int(cupy.cuda.get_current_stream(index).ptr),
        # polyten.set_float32_matmul_precision / backends.cuda.matmul.allow_tf32
        float32_matmul_precision=_internals.matmul_precision(cupy, np.float32),
        # polyten.backends.cudnn.allow_tf32: the convolutions' own (polyten_cuda.conv)
        float32_conv_precision=lambda p: conv_precision.__setitem__(0, p),
        deterministic_algorithms=lambda on, warn_only: deterministic.__setitem__(0, on),
    )
    # services beyond the Backend contract: polyten.cuda reads `runtime`, and the core's
    # .to() uses `copy_between_devices` for cuda:i -> cuda:j instead of a trip through the host
    backend.runtime = runtime
    backend.copy_between_devices = runtime.copy_between_devices
    return backend
