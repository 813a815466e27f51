"""``autocast``: regions in which ops pick their own precision (see ``polyten.api.autocast``
for the op lists)."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Optional

from ..api import autocast as _state
from ..api import dtypes as _dt
from ..api._core import Tensor, describe

__all__ = ["autocast", "custom_fwd", "custom_bwd", "is_autocast_enabled", "get_autocast_dtype",
           "is_autocast_available"]

# the lower-precision dtype each device type gets when autocast is not told one (PyTorch's
# defaults; float16 for other backends)
_DEFAULT_DTYPE = {"cpu": _dt.bfloat16, "cuda": _dt.float16}
_ALLOWED = ("float16", "bfloat16", "float32")


def _check_device_type(device_type, where: str) -> str:
    if not isinstance(device_type, str):
        raise TypeError(f"{where}: device_type must be a string such as 'cuda' or 'cpu', got "
                        f"{describe(device_type)}")
    if ":" in device_type:
        raise ValueError(f"{where}: device_type is a device type without an index, e.g. "
                         f"'cuda', got {device_type!r} (autocast applies to every device of "
                         f"that type)")
    return device_type


def _backend_state(device_type: str):
    """(known, available, reason) of the backend named ``device_type``."""
    from ..dispatch import backends
    for info in backends():
        if info.name == device_type:
            return True, info.available, info.reason
    return False, False, ""


def is_autocast_available(device_type: str) -> bool:
    """Whether ``device_type`` names an installed backend that is available here."""
    _check_device_type(device_type, "is_autocast_available")
    return _backend_state(device_type)[1]


def get_autocast_dtype(device_type: str):
    """The dtype autocast uses for ``device_type``: the innermost region's, else the default
    (bfloat16 for ``cpu``, float16 for ``cuda`` and other backends, as PyTorch)."""
    _check_device_type(device_type, "get_autocast_dtype")
    region = _state.state(device_type)
    if region is not None:
        return region.dtype
    return _DEFAULT_DTYPE.get(device_type, _dt.float16)


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether this thread is inside an enabled autocast region for ``device_type``."""
    _check_device_type(device_type, "is_autocast_enabled")
    region = _state.state(device_type)
    return region is not None and region.enabled


class autocast:
    """Mixed precision in a region (a context manager, or a decorator), as ``torch.autocast``.

    Inside the region, on tensors of ``device_type``: matrix products and convolutions
    (``matmul``, ``mm``, ``bmm``, ``linear``, ``conv*d``, ``addmm``, ``einsum`` ...) cast their
    floating inputs to ``dtype`` and return ``dtype``; precision-sensitive ops (``exp``,
    ``log``, ``pow``, ``sum``, ``prod``, ``cumsum``, ``softmax``, ``log_softmax``, norms,
    ``layer_norm``, ``group_norm`` and the losses) cast float16 and bfloat16 inputs to
    float32; all other ops run in their inputs' dtype, with the usual promotion.  The casts are
    differentiable: float32 parameters get float32 gradients.  ``binary_cross_entropy`` (and
    ``BCELoss``) is refused inside a region, as in PyTorch: use
    ``binary_cross_entropy_with_logits``.

    Parameters
    ----------
    device_type : str
        The backend name the region applies to: ``"cuda"``, ``"cpu"``, or a plugin's.
    dtype : polyten.dtype, optional
        The lower precision: ``float16`` or ``bfloat16``; by default bfloat16 for ``cpu`` and
        float16 for ``cuda`` (PyTorch's defaults) and other backends.  ``float32`` turns the
        lower-precision casts into casts to float32.
    enabled : bool
        ``False`` opens a region in which autocast is off (e.g. around a loss computed in
        float32 inside a larger region).
    cache_enabled : bool, optional
        Cast each parameter (a leaf that requires grad) once per outermost region and reuse
        the cast, e.g. in a recurrent loop (default True).

    Notes
    -----
    Regions are per thread, as in PyTorch: a thread started inside a region does not inherit
    it.  Run the backward pass and the optimizer step outside the region.  A backend that is
    installed but unavailable (cuda without a GPU) gives a warning and a disabled region.

    Examples
    --------
    >>> with polyten.autocast("cuda"):
    ...     logits = model(x)                      # float16 matmuls
    ...     loss = F.cross_entropy(logits, y)      # float32
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: Optional[bool] = None):
        _check_device_type(device_type, "autocast")
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: enabled must be a bool, got {describe(enabled)}")
        self.device_type = device_type
        self.fast_dtype = _DEFAULT_DTYPE.get(device_type, _dt.float16) if dtype is None \
            else _dt.to_dtype(dtype)
        if self.fast_dtype.name not in _ALLOWED:
            raise ValueError(f"autocast: dtype must be polyten.float16 or polyten.bfloat16 "
                             f"(or float32), got {self.fast_dtype}")
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._enabled = enabled
        if enabled:
            known, available, reason = _backend_state(device_type)
            if not known:
                from ..dispatch import backends
                names = ", ".join(repr(i.name) for i in backends()) or "none"
                raise ValueError(f"autocast: unknown device_type {device_type!r}; installed "
                                 f"backends: {names}")
            if not available:
                warnings.warn(f"autocast: backend {device_type!r} is unavailable ({reason}); "
                              f"the region is disabled", UserWarning, stacklevel=2)
                self._enabled = False
            else:
                from ..dispatch import registry
                stored = registry.get(device_type).dtypes
                if self.fast_dtype.name not in stored:
                    raise TypeError(
                        f"autocast: backend {device_type!r} does not store "
                        f"{self.fast_dtype.name} (it stores {', '.join(stored)}); pass "
                        f"dtype=polyten.float16, or install what the backend needs for "
                        f"{self.fast_dtype.name} (bfloat16: ml_dtypes, and CuPy 14 on cuda)")
        self._entered = 0

    def __enter__(self):
        _state.enter(self.device_type, self.fast_dtype, self._enabled, self._cache_enabled)
        self._entered += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._entered -= 1
        _state.leave(self.device_type)
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def decorated(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled,
                          self._cache_enabled):
                return fn(*args, **kwargs)
        return decorated

    def __repr__(self) -> str:
        return (f"autocast(device_type={self.device_type!r}, dtype={self.fast_dtype}, "
                f"enabled={self._enabled})")


def _cast_inputs(value, dtype):
    if isinstance(value, Tensor):
        return value.to(dtype) if value.dtype.is_floating_point and value.dtype != dtype \
            else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_inputs(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast_inputs(v, dtype) for k, v in value.items()}
    return value


def custom_fwd(fwd: Optional[Callable] = None, *, device_type: str, cast_inputs=None):
    """Decorate the ``forward`` of a ``polyten.autograd.Function`` for autocast.

    With ``cast_inputs=None`` the forward runs under the caller's autocast state, and
    :func:`custom_bwd` makes the backward run under the same state.  With a dtype, inside an
    enabled region the forward's floating tensor arguments are cast to it and the forward runs
    with autocast off (for a custom op that only supports one precision); outside a region
    the forward runs unchanged.
    """
    _check_device_type(device_type, "custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    target = None if cast_inputs is None else _dt.to_dtype(cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(ctx, *args, **kwargs):
        region = _state.state(device_type)
        enabled = region is not None and region.enabled
        ctx._autocast = (device_type, enabled,
                         region.dtype if region is not None else get_autocast_dtype(device_type))
        if target is None or not enabled:
            return fwd(ctx, *args, **kwargs)
        ctx._autocast = (device_type, False, ctx._autocast[2])
        with autocast(device_type, enabled=False):
            return fwd(ctx, *_cast_inputs(args, target), **_cast_inputs(kwargs, target))

    return decorate_fwd


def custom_bwd(bwd: Optional[Callable] = None, *, device_type: Optional[str] = None):
    """Decorate the ``backward`` of a ``polyten.autograd.Function`` whose forward has
    :func:`custom_fwd`: the backward runs with the autocast state the forward ran with."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(ctx, *args: Any, **kwargs: Any):
        saved = getattr(ctx, "_autocast", None)
        if saved is None:
            raise RuntimeError(f"custom_bwd: {bwd.__qualname__} has no autocast state from "
                               f"the forward; decorate the forward with "
                               f"polyten.amp.custom_fwd(device_type=...)")
        dev, enabled, dtype = saved
        with autocast(dev, dtype=dtype, enabled=enabled):
            return bwd(ctx, *args, **kwargs)

    return decorate_bwd
