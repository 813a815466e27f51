"""``polyten.cuda.amp`` (``torch.cuda.amp``): the CUDA-only spellings of mixed precision.

PyTorch deprecated them for ``torch.amp.autocast("cuda")`` / ``torch.amp.GradScaler("cuda")``;
they stay here, with the same FutureWarning, so that existing training scripts run unchanged.
Importing this module imports no array library.
"""

from __future__ import annotations

import functools
import warnings

from .. import amp as _amp

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"polyten.cuda.amp.{old} is deprecated (as torch.cuda.amp's); use {new} "
                  f"instead", FutureWarning, stacklevel=3)


class autocast(_amp.autocast):
    """``polyten.amp.autocast("cuda", ...)`` under its older name."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        _deprecated("autocast(args...)", 'polyten.amp.autocast("cuda", args...)')
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """``polyten.amp.GradScaler("cuda", ...)`` under its older name."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        _deprecated("GradScaler(args...)", 'polyten.amp.GradScaler("cuda", args...)')
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)


def custom_fwd(fwd=None, *, cast_inputs=None):
    """``polyten.amp.custom_fwd(device_type="cuda", ...)`` under its older name."""
    _deprecated("custom_fwd(args...)", 'polyten.amp.custom_fwd(args..., device_type="cuda")')
    if fwd is None:
        return functools.partial(_amp.custom_fwd, device_type="cuda", cast_inputs=cast_inputs)
    return _amp.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd=None):
    """``polyten.amp.custom_bwd(device_type="cuda")`` under its older name."""
    _deprecated("custom_bwd(args...)", 'polyten.amp.custom_bwd(args..., device_type="cuda")')
    if bwd is None:
        return functools.partial(_amp.custom_bwd, device_type="cuda")
    return _amp.custom_bwd(bwd, device_type="cuda")
