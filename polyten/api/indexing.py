"""Indexing (being written)."""

from __future__ import annotations

from ..dispatch.dispatcher import kernels
from ._core import Tensor

__all__ = []

_setitem = kernels("setitem")


def _assign_all(dst: Tensor, src: Tensor) -> None:
    """Write ``src`` (same dtype, broadcastable) into all of ``dst``, in place."""
    _setitem[dst._device.backend](dst._data, (Ellipsis,), src._data)


TENSOR_METHODS = {}
