"""Fused-looking arithmetic that optimizers use: ``addcmul``, ``addcdiv``, ``lerp`` and their
in-place forms (``torch`` names, semantics and argument names).

They are composites of elementwise ops (so autograd and every backend come for free); their
checks run here, once, so that an error names the call the user made (``addcmul_``), not the
``mul`` inside it.  In-place forms keep the tensor's identity and memory (an optimizer's
parameters and state are updated through them) and take part in autograd like ``add_``.
"""

from __future__ import annotations

import builtins

from . import elementwise as _ew
from ._core import Tensor, check_broadcast, describe, is_scalar, same_device, scalar_value

__all__ = ["addcmul", "addcdiv", "lerp"]

_int, _float, _bool = builtins.int, builtins.float, builtins.bool


def _tensor(op: str, name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {describe(x)}")
    return x


def _number(op: str, name: str, v):
    if isinstance(v, _bool) or not is_scalar(v):
        raise TypeError(f"{op}: {name} must be a number, got {describe(v)}")
    return scalar_value(v)


def _check_shapes(op: str, *tensors) -> tuple:
    shape = tuple(tensors[0]._data.shape)
    for t in tensors[1:]:
        s = tuple(t._data.shape)
        if s != shape:
            shape = tuple(check_broadcast(op, shape, s))
    return shape


def _check(op: str, input, tensor1, tensor2, value, divide: bool):
    _tensor(op, "input", input)
    _tensor(op, "tensor1", tensor1)
    _tensor(op, "tensor2", tensor2)
    value = _number(op, "value", value)
    same_device(op, input, tensor1, tensor2)
    integral = all(t._dtype.kind in "biu" for t in (tensor1, tensor2))
    if divide and integral:
        raise TypeError(f"{op}: integer division of tensor1 by tensor2 ({tensor1._dtype.name} "
                        f"/ {tensor2._dtype.name}) is not supported; cast them to a floating "
                        f"dtype first")
    if integral and input._dtype.kind in "biu" and not isinstance(value, _int):
        raise TypeError(f"{op}: value={value!r} must be an integer for integral tensors "
                        f"({input._dtype.name}, {tensor1._dtype.name}, {tensor2._dtype.name})")
    return _check_shapes(op, input, tensor1, tensor2), value


def _term(op, tensor1, tensor2, value):
    """``value * tensor1 (op) tensor2``, scaling the smaller side where that is free."""
    t = op(tensor1, tensor2)
    if value.__class__ is _int and value == 1:
        return t
    return t.mul_(value) if t._ag is None and t._dtype.kind in "fc" else t * value


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    """``input + value * tensor1 * tensor2``, broadcasting all three (``torch.addcmul``)."""
    _, value = _check("addcmul", input, tensor1, tensor2, value, False)
    return _ew.add(input, _term(_ew.mul, tensor1, tensor2, value))


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    """``input + value * tensor1 / tensor2``, broadcasting all three (``torch.addcdiv``;
    integer ``tensor1 / tensor2`` is refused, as in PyTorch)."""
    _, value = _check("addcdiv", input, tensor1, tensor2, value, True)
    return _ew.add(input, _term(_ew.div, tensor1, tensor2, value))


def _check_lerp(op: str, input, end, weight):
    _tensor(op, "input", input)
    _tensor(op, "end", end)
    if end._dtype is not input._dtype:
        raise TypeError(f"{op}: expected end to have the dtype of input ({input._dtype.name}), "
                        f"got {end._dtype.name}; cast it with end.to({input._dtype.name})")
    if input._dtype.kind not in "fc":
        raise TypeError(f"{op}: input must be a floating-point or complex tensor, got "
                        f"{describe(input)}")
    if isinstance(weight, Tensor):
        if weight._dtype is not input._dtype:
            raise TypeError(f"{op}: expected weight to have the dtype of input "
                            f"({input._dtype.name}), got {weight._dtype.name}")
        same_device(op, input, end, weight)
        return _check_shapes(op, input, end, weight), weight
    weight = _number(op, "weight", weight)
    same_device(op, input, end)
    return _check_shapes(op, input, end), weight


def _lerp(input, end, weight):
    # PyTorch's two-sided form: exact at weight 0 and at weight 1
    diff = _ew.sub(end, input)
    if isinstance(weight, Tensor):
        low = _ew.add(input, _ew.mul(weight, diff))
        high = _ew.sub(end, _ew.mul(_ew.rsub(weight, 1), diff))
        return _ew.where(_ew.abs(weight) < 0.5, low, high)
    if abs(weight) < 0.5:
        return _ew.add(input, diff.mul_(weight) if diff._ag is None else diff * weight)
    return _ew.sub(end, diff.mul_(1 - weight) if diff._ag is None else diff * (1 - weight))


def lerp(input, end, weight) -> Tensor:
    """Linear interpolation ``input + weight * (end - input)`` (``torch.lerp``); ``weight`` is
    a number or a tensor, broadcast with the others."""
    _, weight = _check_lerp("lerp", input, end, weight)
    return _lerp(input, end, weight)


# ------------------------------------------------------------------------- in place ---
def _grad_involved(*xs) -> bool:
    from ..autograd.grad_mode import grad_enabled
    return any(getattr(x, "_ag", None) is not None for x in xs) and grad_enabled()


def _fits(op: str, self: Tensor, shape: tuple) -> None:
    if shape != tuple(self._data.shape):
        raise _ew._shape_error(op, tuple(self._data.shape), shape)


def addcmul_(self, tensor1, tensor2, *, value=1) -> Tensor:
    """In-place :func:`addcmul`: ``self += value * tensor1 * tensor2``."""
    shape, value = _check("addcmul_", self, tensor1, tensor2, value, False)
    _fits("addcmul_", self, shape)
    if _grad_involved(self, tensor1, tensor2):
        r = _ew._graph_inplace("addcmul_", self, addcmul, (tensor1, tensor2), {"value": value})
        if r is not None:
            return r
    return self.add_(_term(_ew.mul, tensor1, tensor2, value))


def addcdiv_(self, tensor1, tensor2, *, value=1) -> Tensor:
    """In-place :func:`addcdiv`: ``self += value * tensor1 / tensor2``."""
    shape, value = _check("addcdiv_", self, tensor1, tensor2, value, True)
    _fits("addcdiv_", self, shape)
    if _grad_involved(self, tensor1, tensor2):
        r = _ew._graph_inplace("addcdiv_", self, addcdiv, (tensor1, tensor2), {"value": value})
        if r is not None:
            return r
    return self.add_(_term(_ew.div, tensor1, tensor2, value))


def lerp_(self, end, weight) -> Tensor:
    """In-place :func:`lerp`: ``self += weight * (end - self)``."""
    shape, weight = _check_lerp("lerp_", self, end, weight)
    _fits("lerp_", self, shape)
    if _grad_involved(self, end, weight):
        r = _ew._graph_inplace("lerp_", self, lerp, (end, weight))
        if r is not None:
            return r
    if isinstance(weight, Tensor) or abs(weight) >= 0.5:
        return _ew._assign_result("lerp_", self, _lerp(self, end, weight))
    return self.add_(_ew.sub(end, self).mul_(weight))


TENSOR_METHODS = {"addcmul": addcmul, "addcdiv": addcdiv, "lerp": lerp,
                  "addcmul_": addcmul_, "addcdiv_": addcdiv_, "lerp_": lerp_}
