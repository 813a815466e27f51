"""Automatic mixed precision, as ``torch.amp``.

* :class:`autocast` -- a context manager / decorator: inside it, matrix products and
  convolutions run in float16 and precision-sensitive ops (exp/log, softmax, reductions,
  norms, losses) in float32 (the policy is in ``polyten.api.autocast``).
* :class:`GradScaler` -- scales the loss so float16 gradients do not underflow, unscales the
  gradients before the optimizer step and skips the steps whose gradients hold an inf/NaN.
* :func:`custom_fwd` / :func:`custom_bwd` -- for ``polyten.autograd.Function`` subclasses.

Typical loop::

    scaler = polyten.amp.GradScaler("cuda")
    for x, y in loader:
        opt.zero_grad()
        with polyten.autocast("cuda"):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
"""

from .autocast_mode import (autocast, custom_bwd, custom_fwd, get_autocast_dtype,
                            is_autocast_available, is_autocast_enabled)
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_enabled",
           "get_autocast_dtype", "is_autocast_available"]
