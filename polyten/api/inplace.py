"""Whole-tensor in-place writes: ``copy_``, ``fill_``, ``zero_`` (used by nn.init, optimizers
and ``load_state_dict``).  They keep the tensor's identity and memory, so views see the change,
bump its version counter, and take part in autograd as PyTorch's do."""

from __future__ import annotations

import math

from ..dispatch.dispatcher import kernels
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from .elementwise import where
from ._core import Tensor, cast, check_broadcast, check_inplace, describe, is_scalar

__all__ = []

_setitem = kernels("setitem")
_full = kernels("full")
_ELL = (Ellipsis,)


def _write(dst: Tensor, native, op: str) -> None:
    try:
        _setitem[dst._device.backend](dst._data, _ELL, native)
    except ValueError as exc:  # a read-only (expanded or foreign) array
        raise RuntimeError(f"{op}: can't write into this {describe(dst)}: {exc}; clone() "
                           f"it first") from None


def copy_(self, src, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values into this tensor in place (broadcasting ``src``, converting its
    dtype and moving it from another device as needed).  Returns ``self``."""
    if not isinstance(src, Tensor):
        if is_scalar(src):
            return fill_(self, src)
        raise TypeError(f"copy_: expected a tensor, got {describe(src)}")
    if tuple(src._data.shape) != tuple(self._data.shape):
        out = check_broadcast("copy_", self._data.shape, src._data.shape)
        if tuple(out) != tuple(self._data.shape):
            raise ValueError(f"copy_: the source of shape {fmt_shape(src._data.shape)} does not "
                             f"broadcast to the destination's shape "
                             f"{fmt_shape(self._data.shape)}")
    from ..autograd.grad_mode import grad_enabled
    if grad_enabled() and (src.requires_grad or self.requires_grad):
        from .elementwise import _graph_inplace

        def result(t, s):
            r = s.to(t._device, t._dtype) if (s._device is not t._device or
                                              s._dtype is not t._dtype) else s
            if tuple(r._data.shape) != tuple(t._data.shape):
                r = r.expand(tuple(t._data.shape))
            if not r.requires_grad:
                # a constant over a graph tensor: t's old value gets a zero gradient, as
                # PyTorch's CopyBackwards (where() keeps the values exact, -0.0 included)
                from .creation import ones_like
                return where(ones_like(t, dtype="bool"), r, t)
            return r * 1 if r is s else r  # a node of its own, never the source's
        out = _graph_inplace("copy_", self, result, (src,))
        if out is not None:
            return out
    check_inplace("copy_", self)
    s = src if src._device is self._device else src.to(self._device)
    _write(self, cast(s, self._dtype), "copy_")
    return self


def fill_(self, value) -> Tensor:
    """Set every element to ``value`` (a number or a one-element tensor), in place."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"fill_: the value must be a number or a one-element tensor, got "
                             f"{describe(value)}")
        if value.requires_grad:
            return copy_(self, value.reshape(()))
        value = value.item()
    if not is_scalar(value):
        raise TypeError(f"fill_: expected a number, got {describe(value)}")
    ag = self._ag
    if ag is not None and ag.requires_grad and ag.grad_fn is not None:
        from ..autograd.grad_mode import grad_enabled
        if grad_enabled():
            # a graph tensor (or a view of one): recorded as masked_fill of every element,
            # whose gradient to the old value is 0, as PyTorch's FillBackward
            from .elementwise import _graph_inplace
            from .creation import ones_like

            def result(t):
                return t.masked_fill(ones_like(t, dtype="bool"), value)
            out = _graph_inplace("fill_", self, result, ())
            if out is not None:
                return out
    check_inplace("fill_", self)
    if self._dtype.kind in "iu" and isinstance(value, float) and math.isfinite(value):
        value = int(value)  # truncated towards zero, as PyTorch
    native = _full[self._device.backend]((), value, self._dtype.name, self._device.index)
    _write(self, native, "fill_")
    return self


def zero_(self) -> Tensor:
    """Set every element to zero, in place."""
    return fill_(self, False if self._dtype is _dt.bool else 0)


TENSOR_METHODS = {"copy_": copy_, "fill_": fill_, "zero_": zero_}
