"""``GradScaler``: loss scaling for float16 training, as ``torch.amp.GradScaler``."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..api._core import Tensor, bump_version, describe
from ..api.creation import full, zeros
from ..api.elementwise import isfinite, logical_and, logical_not, logical_or, where
from ..api.reduction import all as all_
from ..autograd.grad_mode import no_grad

__all__ = ["GradScaler"]

_READY, _UNSCALED, _STEPPED = 0, 1, 2


class _OptState:
    __slots__ = ("stage", "found_inf")

    def __init__(self):
        self.stage = _READY
        # {device: float32 0-d tensor on it, nonzero when an inf/NaN gradient was found}
        self.found_inf: Dict[Any, Tensor] = {}


class GradScaler:
    """Scale the loss so that float16 gradients keep their small values, then unscale the
    gradients and skip the optimizer steps whose gradients overflowed.

    ``scale(loss).backward()`` multiplies the loss, hence every gradient, by the scale;
    ``step(optimizer)`` divides the gradients by it (unless ``unscale_`` did already, e.g.
    before gradient clipping), and runs ``optimizer.step()`` only when every gradient is
    finite; ``update()`` halves the scale after a skipped step and doubles it after
    ``growth_interval`` finite steps in a row.

    Parameters
    ----------
    device : str
        The device type of the parameters ("cuda", "cpu", ...); kept for PyTorch's signature.
    init_scale : float
        Initial scale (65536.0).
    growth_factor, backoff_factor : float
        Multipliers of the scale after ``growth_interval`` finite steps (> 1) and after a step
        with an inf/NaN gradient (in (0, 1)).
    growth_interval : int
        Finite steps in a row before the scale grows.
    enabled : bool
        ``False`` makes every method a no-op (``scale`` returns its input), so one training
        loop serves both precisions.

    Notes
    -----
    As PyTorch's, the scale, its growth tracker and the inf/NaN flags live on the device (the
    scale is created on the device of the first tensor scaled), and ``update`` adjusts the
    scale there, so a step never waits for the GPU to decide anything -- with every optimizer
    of ``polyten.optim`` (``_step_supports_amp_scaling``), whose fused steps on CUDA read the
    flag and skip themselves on the device.  With another optimizer, ``step`` reads
    the flag on the host (one wait per step, as PyTorch's for its non-fused optimizers).
    ``get_scale()``, ``state_dict()`` and printing the scaler read the scale: values the user
    asked for.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if not isinstance(device, str):
            raise TypeError(f"GradScaler: device must be a device type string such as 'cuda', "
                            f"got {describe(device)}")
        if not (isinstance(init_scale, (int, float)) and init_scale > 0):
            raise ValueError(f"GradScaler: init_scale must be a positive number, got "
                             f"{init_scale!r}")
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor!r}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got "
                             f"{backoff_factor!r}")
        if not (isinstance(growth_interval, int) and growth_interval > 0):
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval!r}")
        self._device = device
        self._enabled = bool(enabled)
        self._init_scale = float(init_scale)
        self._init_growth_tracker = 0
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        # created on the device of the first tensor scaled (PyTorch's lazy init): float32
        # 0-d tensors (the scale and its reciprocal, which unscales) and an int32 one
        self._scale: Optional[Tensor] = None
        self._inv_scale: Optional[Tensor] = None
        self._growth_tracker: Optional[Tensor] = None
        self._per_optimizer: Dict[int, _OptState] = {}

    def _lazy_init(self, dev) -> None:
        self._scale = full((), self._init_scale, dtype="float32", device=dev)
        with no_grad():
            self._inv_scale = self._reciprocal()
        self._growth_tracker = full((), self._init_growth_tracker, dtype="int32", device=dev)

    def _reciprocal(self) -> Tensor:
        """``1 / scale`` computed in double and rounded to float32, as PyTorch's unscale."""
        return self._scale.double().reciprocal().float()

    # ------------------------------------------------------------------------ scaling ---
    def scale(self, outputs):
        """``outputs`` (a tensor, or lists/tuples/dicts of tensors) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs._device)
            return outputs * self._scale.to(outputs._device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        raise TypeError(f"GradScaler.scale: expected a tensor or a list/tuple/dict of tensors, "
                        f"got {describe(outputs)}")

    def _state(self, optimizer) -> _OptState:
        st = self._per_optimizer.get(id(optimizer))
        if st is None:
            st = self._per_optimizer[id(optimizer)] = _OptState()
        return st

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place (call it before clipping
        them); ``step`` then does not unscale again.  At most once per ``update``."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st.stage == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: already called on this optimizer since "
                               "the last update(); call it once per step, between backward() "
                               "and step()")
        if st.stage == _STEPPED:
            raise RuntimeError("GradScaler.unscale_: step() was already called on this "
                               "optimizer; call update() before the next unscale_()")
        st.found_inf = self._unscale_grads(optimizer)
        st.stage = _UNSCALED

    def _unscale_grads(self, optimizer):
        """Unscale in place; ``{device: flag}``, each flag a float32 0-d tensor on its device,
        nonzero when an inf/NaN was found."""
        by_device = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.dtype.name == "float16":
                    raise ValueError(f"GradScaler.unscale_: a parameter of shape "
                                     f"{tuple(p.shape)} has a float16 gradient; keep the "
                                     f"parameters in float32 (autocast casts them for the "
                                     f"float16 ops) so the unscaled gradients do not "
                                     f"underflow")
                by_device.setdefault(g._device, []).append(g)
        if by_device and self._scale is None:  # no scale() yet: the initial scale applies
            self._lazy_init(next(iter(by_device)))
        return {dev: self._unscale_on(dev, grads, self._inv_scale.to(dev))
                for dev, grads in by_device.items()}

    @staticmethod
    def _unscale_on(dev, grads, inv):
        kernel = dev.backend.fused_optimizers.get("amp_unscale")
        real = [g for g in grads if g._dtype.kind == "f"]
        found = zeros((), dtype="float32", device=dev)
        if kernel is not None and real:
            # the backend's fused unscale: one kernel per gradient (per 64 on CUDA), one flag
            # per device (a kernel may decline the call: NotImplemented, nothing written)
            if kernel([g._data for g in real], inv._data, found._data) is not NotImplemented:
                for g in real:
                    bump_version(g)
                grads = [g for g in grads if g._dtype.kind != "f"]  # complex: generic path
        for g in grads:
            g.mul_(inv)
            found.add_(logical_not(all_(isfinite(g))))
        return found

    def step(self, optimizer, *args: Any, **kwargs: Any):
        """Unscale the gradients (unless ``unscale_`` did) and run ``optimizer.step(*args,
        **kwargs)`` if they are all finite; returns its result, or None when skipped.

        An optimizer with ``_step_supports_amp_scaling`` (all of ``polyten.optim``) gets the
        flag as ``optimizer.found_inf`` during its step and skips itself (on the device, with
        fused steps); for any other the flag is read here, on the host."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closures are not supported (the scaled "
                               "loss would be recomputed unscaled); call backward() on "
                               "scaler.scale(loss) before step()")
        st = self._state(optimizer)
        if st.stage == _STEPPED:
            raise RuntimeError("GradScaler.step: already called on this optimizer since the "
                               "last update()")
        if st.stage == _READY:
            self.unscale_(optimizer)
        if not st.found_inf:
            raise RuntimeError("GradScaler.step: no gradient was found for this optimizer; "
                               "call scaler.scale(loss).backward() first")
        result = None
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            # PyTorch's protocol: the optimizer reads the flag (and would unscale by
            # grad_scale, None here: the gradients are unscaled already)
            optimizer.grad_scale = None
            optimizer.found_inf = self._combined(st.found_inf.values(),
                                                 next(iter(st.found_inf)))
            try:
                result = optimizer.step(*args, **kwargs)
            finally:
                del optimizer.grad_scale, optimizer.found_inf
        elif not any(bool(f) for f in st.found_inf.values()):  # the host read
            result = optimizer.step(*args, **kwargs)
        st.stage = _STEPPED
        return result

    def _combined(self, flags, dev) -> Tensor:
        """The flags summed on ``dev`` (nonzero: an inf/NaN on some device)."""
        flags = [f.to(dev) for f in flags]
        total = flags[0]
        for f in flags[1:]:
            total = total + f
        return total

    def update(self, new_scale: Optional[float] = None) -> None:
        """Adjust the scale after this iteration's steps (or set it to ``new_scale``), on the
        device: backed off after an inf/NaN, grown after ``growth_interval`` finite steps."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._set_scale(new_scale)
        else:
            flags = [f for st in self._per_optimizer.values() for f in st.found_inf.values()]
            if not flags:
                raise RuntimeError("GradScaler.update: no inf checks were recorded since the "
                                   "last update(); call scaler.step(optimizer) first")
            found = self._combined(flags, self._scale._device)
            kernel = self._scale._device.backend.fused_optimizers.get("amp_update_scale")
            if kernel is None or kernel(
                    self._scale._data, self._inv_scale._data, self._growth_tracker._data,
                    found._data, self._growth_factor, self._backoff_factor,
                    self._growth_interval) is NotImplemented:
                self._update_generic(found)
            for t in (self._scale, self._inv_scale, self._growth_tracker):
                bump_version(t)
        self._per_optimizer.clear()

    def _update_generic(self, found: Tensor) -> None:
        """``update`` in polyten ops (a backend without ``amp_update_scale``): PyTorch's
        ``_amp_update_scale_`` -- the products in double, rounded to float32, a growth that
        overflows float32 not applied."""
        with no_grad():
            scale, tracker = self._scale, self._growth_tracker
            bad = found != 0
            counted = tracker + 1
            grown = (scale.double() * self._growth_factor).float()
            grow = logical_and(logical_not(bad), counted == self._growth_interval)
            backed = (scale.double() * self._backoff_factor).float()
            new_scale = where(bad, backed,
                              where(logical_and(grow, isfinite(grown)), grown, scale))
            new_tracker = where(logical_or(bad, grow), 0, counted).to("int32")
            scale.copy_(new_scale)
            tracker.copy_(new_tracker)
            self._inv_scale.copy_(self._reciprocal())

    def _set_scale(self, new_scale) -> None:
        if isinstance(new_scale, Tensor):
            if new_scale.numel() != 1 or new_scale.dtype.kind != "f":
                raise ValueError(f"GradScaler.update: new_scale must be a float tensor of one "
                                 f"element, got {describe(new_scale)}")
        elif not (isinstance(new_scale, (int, float)) and new_scale > 0):
            raise ValueError(f"GradScaler.update: new_scale must be a positive number, got "
                             f"{new_scale!r}")
        if self._scale is None:  # no scale() yet: it becomes the initial scale
            self._init_scale = float(new_scale.item() if isinstance(new_scale, Tensor)
                                     else new_scale)
            return
        with no_grad():
            if isinstance(new_scale, Tensor):
                self._scale.copy_(new_scale.reshape(()))
            else:
                self._scale.fill_(float(new_scale))
            self._inv_scale.copy_(self._reciprocal())

    # ---------------------------------------------------------------------- accessors ---
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled): a read of the device's value."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def _get_growth_tracker(self) -> int:
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._growth_tracker.item())

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> Dict[str, Any]:
        """The scale and growth state, with PyTorch's keys and Python numbers (empty when
        disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty (it was "
                               "saved from a disabled GradScaler)")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                   "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {sorted(missing)}")
        scale = state_dict["scale"]
        tracker = state_dict["_growth_tracker"]
        self._init_scale = float(scale.item() if isinstance(scale, Tensor) else scale)
        self._init_growth_tracker = int(tracker.item() if isinstance(tracker, Tensor)
                                        else tracker)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        if self._scale is not None:
            self._lazy_init(self._scale._device)

    def __repr__(self) -> str:
        return (f"GradScaler(device={self._device!r}, scale={self.get_scale()}, "
                f"enabled={self._enabled})")
