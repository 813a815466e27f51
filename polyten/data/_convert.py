"""Where batches go: host data -> polyten tensors on the delivery device.

One rule, used by ``default_collate``/``default_convert`` in the main process, by the result
transport of worker processes and by the ``TensorDataset`` fast path: NumPy arrays become
tensors on the *delivery device* (the current backend, unless a DataLoader says otherwise),
through pinned memory when the loader has ``pin_memory=True``; polyten tensors on another device
are moved there.

The delivery target lives in a ``ContextVar`` set by the loader around collation and around
unpickling a worker's batch, so a tensor rebuilt from a worker lands directly on the consumer's
device.  Worker processes set their own target to the host backend (``cpu``): a worker never
touches a GPU backend.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import pickle
from multiprocessing.reduction import ForkingPickler

from ..api import dtypes as _dt
from ..api._core import Tensor, wrap
from ..api.context import default_device, resolve_device
from ..api.pinning import host_to_native, pin_for_accelerator
from ..dispatch.dispatcher import kernels

_to_host = kernels("to_host")

# (device or None, pin, dataset indices of the batch being collated or None)
_TARGET: contextvars.ContextVar = contextvars.ContextVar("polyten_data_target",
                                                         default=(None, False, None))


@contextlib.contextmanager
def delivery(device=None, pin=False, indices=None):
    """Collate / rebuild tensors onto ``device`` (None: the current backend) inside the block."""
    token = _TARGET.set((device, pin, indices))
    try:
        yield
    finally:
        _TARGET.reset(token)


def batch_indices():
    """Dataset indices of the batch being collated (for error messages), or None."""
    return _TARGET.get()[2]


def host_to_tensor(array) -> Tensor:
    """A polyten tensor on the delivery device with the values of the NumPy array ``array``."""
    dev, pin, _ = _TARGET.get()
    if dev is None:
        dev = default_device()
    name = dev.backend.dtype_name(array)
    if name is None:
        # a dtype the backend does not hold natively (e.g. uint16, non-native byte order):
        # the general conversion path casts it or says what is unsupported
        from ..api.creation import asarray
        return asarray(array, device=dev)
    return wrap(host_to_native(array, dev, pin), dev, _dt.DTYPES[name])


def to_target(t: Tensor) -> Tensor:
    """``t`` on the delivery device (itself when it is already there)."""
    dev, pin, _ = _TARGET.get()
    if dev is None:
        dev = default_device()
    if t._device is dev:
        if pin and t._ag is None:
            host = _to_host[dev.backend](t._data)
            if host is t._data:  # a host tensor: page-locked for the accelerator, as PyTorch
                pinned = pin_for_accelerator(host)
                if pinned is not None and dev.backend.is_native(pinned):
                    return wrap(pinned, dev, t._dtype)
        return t
    if pin and t._ag is None:
        return wrap(host_to_native(_to_host[t._device.backend](t._data), dev, True), dev,
                    t._dtype)
    return t.to(dev)


# ------------------------------------------------------------------ process transport ----
def _rebuild_tensor(host, requires_grad):
    t = host_to_tensor(host)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_tensor(t: Tensor):
    host = _to_host[t._device.backend](t._data)
    return _rebuild_tensor, (host, bool(t.requires_grad and t.is_leaf))


class TransportPickler(ForkingPickler):
    """multiprocessing's pickler, with polyten tensors sent as host arrays that are rebuilt on
    the receiver's delivery device (a worker's ``cpu``, the main process's current backend)."""

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return _reduce_tensor(obj)
        return NotImplemented


def dumps(obj, prefix: bytes = b""):
    """``prefix`` + the pickle of ``obj`` (a bytes-like object; tensors as host arrays)."""
    buf = io.BytesIO()
    buf.write(prefix)
    TransportPickler(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getbuffer()


def resolve(device):
    return None if device in (None, "") else resolve_device(device)
