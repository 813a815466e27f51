"""Gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_`` (``torch.nn.utils`` names and
semantics), and ``get_total_norm`` / ``clip_grads_with_norm_``, the two halves of
``clip_grad_norm_``."""

from __future__ import annotations

import math

from ...api._core import Tensor, describe
from ...autograd.grad_mode import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]


def _params(parameters, op: str) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(f"{op}: parameters must be a tensor or an iterable of tensors, got "
                        f"{describe(parameters)}") from None
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameters must be tensors, got {describe(p)}")
    return params


def _number(op: str, name: str, v) -> float:
    if isinstance(v, Tensor):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{op}: {name} must be a number, got {describe(v)}")
    return float(v)


def _fused(tensors, name: str):
    """``(kernel, device, dtype)``: the backend's ``fused_optimizers[name]`` when every tensor
    is real floating, of one dtype, on one device (what those kernels take), else None."""
    t0 = tensors[0]
    dev, dt = t0._device, t0._dtype
    if dt.kind != "f":
        return None
    for t in tensors:
        if t._device is not dev or t._dtype is not dt:
            return None
    kernel = dev.backend.fused_optimizers.get(name)
    return None if kernel is None else (kernel, dev, dt)


def _in_place(kernel, grads, *args) -> bool:
    """Run a fused in-place kernel on the gradients' arrays and count the writes; False when
    the kernel declined the call (``NotImplemented``, nothing written)."""
    from ...api._core import bump_version
    if kernel([g._data for g in grads], *args) is NotImplemented:
        return False
    for g in grads:
        bump_version(g)
    return True


def _fused_total_norm(tensors, norm_type):
    """The backend's total norm (``Backend.fused_optimizers["total_norm"]``: one or two
    launches on a GPU instead of three per tensor), or None."""
    from ...api.tensor import wrap
    fused = _fused(tensors, "total_norm")
    if fused is None:
        return None
    kernel, dev, dt = fused
    out = kernel([t._data for t in tensors], norm_type)
    return None if out is None or out is NotImplemented else wrap(out, dev, dt)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together (as if concatenated); ``inf`` is the
    largest absolute value.  A 0-d tensor on the first tensor's device."""
    from ...api.creation import tensor as _tensor
    from ...api.linalg import vector_norm
    from ...api.shape import stack
    op = "get_total_norm"
    tensors = _params(tensors, op)
    norm_type = _number(op, "norm_type", norm_type)
    if not tensors:
        return _tensor(0.0)
    dev = tensors[0].device
    total = _fused_total_norm(tensors, norm_type)
    if total is None:
        with no_grad():
            norms = [vector_norm(t, norm_type) for t in tensors]
            norms = [n if n.device == dev else n.to(dev) for n in norms]
            dt = norms[0].dtype
            norms = [n if n.dtype is dt else n.to(dt) for n in norms]
            total = vector_norm(stack(norms), norm_type)
    if error_if_nonfinite and not bool(total.isfinite().item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite ({total.item()}), so it cannot be "
                           f"clipped. To disable this error and scale the gradients by the "
                           f"non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients in place by ``max_norm / (total_norm + 1e-6)`` when that is below
    1 (otherwise they are left as they are)."""
    op = "clip_grads_with_norm_"
    params = _params(parameters, op)
    max_norm = _number(op, "max_norm", max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    fused = _fused(grads, "clip_grads")
    if fused is not None and isinstance(total_norm, Tensor) and \
            total_norm._device is fused[1] and total_norm._dtype is fused[2] and \
            total_norm.ndim == 0 and \
            _in_place(fused[0], grads, max_norm, total_norm._data):
        return  # one launch per 64 gradients, the coefficient on the device
    with no_grad():
        coef = (max_norm / (total_norm + 1e-6)).clamp(None, 1.0)
        for g in grads:
            c = coef if coef.device == g.device else coef.to(g.device)
            g.mul_(c if c.dtype is g.dtype else c.to(g.dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Rescale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    (all gradients together) is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor).  ``error_if_nonfinite``: raise if
    that norm is nan or inf instead of scaling by it.
    """
    op = "clip_grad_norm_"
    params = _params(parameters, op)
    max_norm = _number(op, "max_norm", max_norm)
    norm_type = _number(op, "norm_type", norm_type)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Deprecated spelling of :func:`clip_grad_norm_`."""
    import warnings
    warnings.warn("nn.utils.clip_grad_norm is now deprecated in favor of "
                  "nn.utils.clip_grad_norm_.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` in place to ``[-clip_value, clip_value]``."""
    op = "clip_grad_value_"
    params = _params(parameters, op)
    clip_value = _number(op, "clip_value", clip_value)
    if math.isnan(clip_value):
        raise ValueError(f"{op}: clip_value must not be nan")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    fused = _fused(grads, "clamp_grads")
    if fused is not None and _in_place(fused[0], grads, -clip_value, clip_value):
        return  # one launch per 64 gradients on a GPU
    with no_grad():
        for g in grads:
            g.clamp_(-clip_value, clip_value)
