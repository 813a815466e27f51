"""Page-locked ("pinned") host memory through the backend contract.

Two composite ops of the ``transfer`` tier (see ``polyten/dispatch/optable.py``):

* ``pin_memory(array)``: a NumPy array -> the same values in host memory the backend's device
  can read by DMA.  Default: the array itself (a backend with nothing to pin does nothing).
* ``from_pinned(array, device_index)``: a pinned NumPy array -> a native array, copied
  asynchronously on the device's current stream.  Default: ``from_host``.
* ``is_pinned(array)``: whether the backend page-locked that NumPy array.  Default: False.

The DataLoader (``pin_memory=True``) sends every host batch through both, so on CUDA the
host-to-device copy of a batch overlaps with the kernels already queued.  ``Tensor.pin_memory()``
and ``Tensor.is_pinned()`` expose the first and last op for tensors that live in host memory.
"""

from __future__ import annotations

from ..dispatch import registry as _registry
from ..dispatch.dispatcher import kernels, register_default
from ._core import Tensor, wrap
from .context import default_device, resolve_device

__all__ = ["host_to_native", "pin_for_accelerator", "pinning_backend", "upload"]

_to_host = kernels("to_host")
_from_host = kernels("from_host")
_pin = kernels("pin_memory")
_from_pinned = kernels("from_pinned")
_is_pinned = kernels("is_pinned")


def _pin_default(array):
    return array


def _from_pinned_default(backend, array, device_index):
    return _from_host[backend](array, device_index)


def _is_pinned_default(array):
    return False


register_default("pin_memory", _pin_default)
register_default("from_pinned", _from_pinned_default)
register_default("is_pinned", _is_pinned_default)


def host_to_native(host, dev, pin: bool):
    """A native array of ``dev`` from the NumPy array ``host``; through pinned memory and an
    asynchronous copy when ``pin`` is true and the backend can pin.

    For a device that lives in host memory (``cpu``), ``pin`` page-locks the array for the
    accelerator that will read it (:func:`pinning_backend`), so that a later
    ``.to("cuda", non_blocking=True)`` is asynchronous, as with PyTorch's pinned batches.
    """
    b = dev.backend
    if pin:
        k = _pin[b]
        if k is not None:
            copy = _from_pinned[b]
            pinned = k(host)
            return copy(pinned, dev.index) if copy is not None else \
                _from_host[b](pinned, dev.index)
        pinned = pin_for_accelerator(host)
        if pinned is not None and b.is_native(pinned):
            return pinned
    return _from_host[b](host, dev.index)


def pin_for_accelerator(host):
    """``host`` (a NumPy array) copied into page-locked memory for the backend that pins
    (:func:`pinning_backend`), or ``None`` when no loaded backend pins."""
    target = pinning_backend()
    return None if target is None else _pin[target](host)


def upload(host, dev, non_blocking: bool):
    """A native array of ``dev`` from the NumPy array ``host``: an asynchronous copy when
    ``non_blocking`` and ``host`` is page-locked for ``dev``'s backend, else ``from_host``."""
    b = dev.backend
    if non_blocking:
        k = _is_pinned[b]
        copy = _from_pinned[b]
        if k is not None and copy is not None and k(host):
            return copy(host, dev.index)
    return _from_host[b](host, dev.index)


def pinning_backend(device=None):
    """The backend that pins host memory for ``device`` (default: the current device, else
    any loaded backend that can pin), or ``None`` when there is nothing to pin for."""
    if device is not None:
        b = resolve_device(device).backend
        return b if _pin[b] is not None else None
    b = default_device().backend
    if _pin[b] is not None:
        return b
    for info in list(_registry.REGISTRY.infos.values()):
        if info.backend is not None and _pin[info.backend] is not None:
            return info.backend
    return None


def pin_memory(self, device=None) -> Tensor:
    """This tensor's values in page-locked host memory, ready for an asynchronous copy to an
    accelerator (``torch.Tensor.pin_memory``).

    ``device`` names the accelerator that will read it (default: the current backend, else any
    loaded backend that can pin).  Where no backend has anything to pin (a cpu-only install),
    the tensor itself is returned.  The result does not record autograd history.

    Raises
    ------
    RuntimeError
        The tensor is not in host memory (e.g. it is on ``cuda``): only host tensors are pinned.
    """
    b = self._device.backend
    host = _to_host[b](self._data)
    if host is not self._data:
        raise RuntimeError(f"pin_memory: only tensors in host memory can be pinned, but this "
                           f"tensor is on {self._device}; pin the host tensor before moving "
                           f"it, e.g. t.cpu().pin_memory()")
    target = pinning_backend(device)
    if target is None:
        return self
    pinned = _pin[target](host)
    if not b.is_native(pinned):
        return self
    return wrap(pinned, self._device, self._dtype)


def is_pinned(self, device=None) -> bool:
    """Whether this tensor's memory is page-locked (``torch.Tensor.is_pinned``): asks the
    backend that pins for ``device`` (see :meth:`pin_memory`); ``False`` for tensors that are
    not in host memory and where no backend pins."""
    b = self._device.backend
    host = _to_host[b](self._data)
    if host is not self._data:
        return False
    target = pinning_backend(device)
    if target is None:
        return False
    k = _is_pinned[target]
    return bool(k(host)) if k is not None else False


TENSOR_METHODS = {"pin_memory": pin_memory, "is_pinned": is_pinned}
