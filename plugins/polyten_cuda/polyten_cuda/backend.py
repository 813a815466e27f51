"""Builds the ``cuda`` :class:`polyten.dispatch.Backend` on CuPy.

The kernels are the cpu backend's NumPy-API kernels instantiated with ``xp=cupy``; this module
overrides only what differs on the GPU: transfers (host <-> device, device <-> device), creation
and random kernels that must run under the target device, per-device random generators, and
``erf`` (from ``cupyx.scipy.special``).
"""

from __future__ import annotations

import collections

import cupy
import numpy as np

from polyten.dispatch import Backend
from polyten_cpu.backend import DTYPE_NAMES
from polyten_cpu.kernels import all_kernels

_NATIVE = {n: np.dtype(n) for n in DTYPE_NAMES}
_NAMES = {np.dtype(n): n for n in DTYPE_NAMES}

# creation and random kernels receive ``device_index`` as their last argument
_ON_DEVICE = ("full", "empty", "arange", "linspace", "eye", "asarray", "from_host",
              "from_dlpack", "random_uniform", "random_normal", "random_integers",
              "random_permutation")


class _DeviceRNG:
    """One generator per device, all reseeded by ``polyten.manual_seed``.

    ``gen`` is the generator of the current device, so kernels written for NumPy's Generator
    API (``random``, ``standard_normal``, ``integers``, ``permutation``) work unchanged.
    """

    def __init__(self):
        self._seed = None
        self._gens = {}

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._gens.clear()

    @property
    def gen(self):
        dev = cupy.cuda.Device().id
        g = self._gens.get(dev)
        if g is None:
            # distinct, reproducible streams per device from one user seed
            seed = None if self._seed is None else self._seed + 1_000_003 * dev
            g = self._gens[dev] = cupy.random.default_rng(seed)
        return g


def _guarded(fn):
    def kernel(*args):
        index = args[-1]
        if index is None:
            return fn(*args)
        with cupy.cuda.Device(index):
            return fn(*args)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


# --- data loading (issue 5): page-locked staging for DataLoader(pin_memory=True) -----------
_ON_DEVICE += ("from_pinned",)


class _InFlight:
    """Pinned host buffers whose asynchronous host-to-device copy may still be running.

    CuPy returns a freed pinned buffer to its pool at once, so a buffer must stay referenced
    until the copy reading it has finished: each copy records an event, and buffers are
    released once their event is done (checked on every new copy, so the list stays short).
    """

    def __init__(self):
        self._items = collections.deque()

    def add(self, event, buffer) -> None:
        items = self._items
        items.append((event, buffer))
        while items and items[0][0].done:
            items.popleft()


def _pinned_transfer_kernels() -> dict:
    import cupyx

    inflight = _InFlight()

    def pin_memory(array):
        if array.size == 0:
            return array
        out = cupyx.empty_pinned(array.shape, dtype=array.dtype)
        np.copyto(out, array, casting="no")
        return out

    def from_pinned(array, device_index):
        out = cupy.empty(array.shape, dtype=array.dtype)
        if array.size == 0:
            return out
        src = np.ascontiguousarray(array)   # pin_memory results already are: no copy
        stream = cupy.cuda.get_current_stream()
        out.set(src, stream=stream)             # DMA from page-locked memory, asynchronous
        event = cupy.cuda.Event(block=False, disable_timing=True)
        event.record(stream)
        inflight.add(event, src)
        return out

    def is_pinned(array):
        # pin_memory's arrays are views of CuPy pinned allocations: follow the base chain
        base = array
        while base is not None:
            if isinstance(base, cupy.cuda.PinnedMemoryPointer):
                return True
            base = getattr(base, "base", None)
        return False

    return {"pin_memory": pin_memory, "from_pinned": from_pinned, "is_pinned": is_pinned}
# --- end data loading


def make_backend() -> Backend:
    rng = _DeviceRNG()
    kernels = all_kernels(cupy, rng=rng, native_dtype=_NATIVE.__getitem__)

    def to_host(x):
        return cupy.asnumpy(x)

    def from_host(array, device_index):
        return cupy.asarray(array)

    def from_dlpack(obj, device_index):
        return cupy.from_dlpack(obj)

    def is_contiguous(x):
        return bool(x.flags.c_contiguous)

    kernels.update(to_host=to_host, from_host=from_host, from_dlpack=from_dlpack,
                   is_contiguous=is_contiguous)
    kernels.update(_pinned_transfer_kernels())  # data loading (issue 5): pin_memory=True
    try:
        from cupyx.scipy.special import erf as _erf

        kernels["erf"] = lambda x: _erf(x)
    except ImportError:  # cupyx ships with CuPy; keep the generic kernel if it does not
        pass
    for name in _ON_DEVICE:
        if name in kernels:
            kernels[name] = _guarded(kernels[name])

    return Backend(
        "cuda", kernels,
        dtypes=DTYPE_NAMES,
        native_dtype=_NATIVE.__getitem__,
        dtype_name=lambda a: _NAMES.get(getattr(a, "dtype", None)),
        is_native=lambda obj: isinstance(obj, cupy.ndarray),
        seed=rng.seed,
        indexed=True,
        device_count=cupy.cuda.runtime.getDeviceCount,
        current_device=lambda: cupy.cuda.Device().id,
        device_of=lambda a: a.device.id,
        device_guard=cupy.cuda.Device,
        synchronize=lambda index=None: (cupy.cuda.Device(index).synchronize()
                                        if index is not None
                                        else cupy.cuda.get_current_stream().synchronize()),
        version=f"cupy {cupy.__version__}",
    )
