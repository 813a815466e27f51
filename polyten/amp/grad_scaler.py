"""``GradScaler``: loss scaling for float16 training, as ``torch.amp.GradScaler``."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..api._core import Tensor, describe

__all__ = ["GradScaler"]

_READY, _UNSCALED, _STEPPED = 0, 1, 2


class _OptState:
    __slots__ = ("stage", "found_inf")

    def __init__(self):
        self.stage = _READY
        self.found_inf = None  # {device: tensor, true when an inf/NaN was found}, on the device


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
    The scale is a Python number, so scaling and unscaling are kernels with a scalar argument
    and never copy a value to the device.  Deciding whether to skip the step reads one flag
    per optimizer from the device in ``step`` -- the only host synchronisation GradScaler adds
    (PyTorch's reads the same flag).  The check of every gradient stays on the device.
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
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer: Dict[int, _OptState] = {}

    # ------------------------------------------------------------------------ scaling ---
    def scale(self, outputs):
        """``outputs`` (a tensor, or lists/tuples/dicts of tensors) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
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
        """Unscale in place; ``{device: tensor}`` whose truth says "an inf/NaN was found"."""
        inv = 1.0 / self._scale
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
        return {dev: self._unscale_on(dev, grads, inv) for dev, grads in by_device.items()}

    @staticmethod
    def _unscale_on(dev, grads, inv):
        from ..api._core import bump_version
        from ..api.creation import zeros
        from ..api.elementwise import isfinite, logical_not, logical_or
        from ..api.reduction import all as all_
        kernel = dev.backend.fused_optimizers.get("amp_unscale")
        real = [g for g in grads if g._dtype.kind == "f"]
        found = None
        if kernel is not None and real:
            # the backend's fused unscale: one kernel per gradient, one flag per device (a
            # kernel may decline the call: NotImplemented, nothing written)
            flag = zeros((1,), dtype="float32", device=dev)
            if kernel([g._data for g in real], inv, flag._data) is not NotImplemented:
                found = flag
                for g in real:
                    bump_version(g)
                grads = [g for g in grads if g._dtype.kind != "f"]  # complex: generic path
        for g in grads:
            g.mul_(inv)
            bad = logical_not(all_(isfinite(g)))
            found = bad if found is None else logical_or(found, bad)
        return found

    def step(self, optimizer, *args: Any, **kwargs: Any):
        """Unscale the gradients (unless ``unscale_`` did) and run ``optimizer.step(*args,
        **kwargs)`` if they are all finite; returns its result, or None when skipped."""
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
        # the one host read: whether every gradient was finite
        if not any(bool(f) for f in st.found_inf.values()):
            result = optimizer.step(*args, **kwargs)
            st.found_inf = False
        else:
            st.found_inf = True
        st.stage = _STEPPED
        return result

    def update(self, new_scale: Optional[float] = None) -> None:
        """Adjust the scale after this iteration's steps (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                new_scale = new_scale.item()
            if not (isinstance(new_scale, (int, float)) and new_scale > 0):
                raise ValueError(f"GradScaler.update: new_scale must be a positive number, "
                                 f"got {new_scale!r}")
            self._scale = float(new_scale)
        else:
            found = []
            for st in self._per_optimizer.values():
                if st.stage == _UNSCALED:  # unscale_ without step: read the flag now
                    found.append(any(bool(f) for f in st.found_inf.values()))
                elif st.stage == _STEPPED:
                    found.append(st.found_inf)
            if not found:
                raise RuntimeError("GradScaler.update: no inf checks were recorded since the "
                                   "last update(); call scaler.step(optimizer) first")
            if any(found):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    # ---------------------------------------------------------------------- accessors ---
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

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
        """The scale and growth state, with PyTorch's keys (empty when disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

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
        self._scale = float(scale.item() if isinstance(scale, Tensor) else scale)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        tracker = state_dict["_growth_tracker"]
        self._growth_tracker = int(tracker.item() if isinstance(tracker, Tensor) else tracker)

    def __repr__(self) -> str:
        return (f"GradScaler(device={self._device!r}, scale={self._scale}, "
                f"enabled={self._enabled})")
