"""Autocast (mixed precision) state and cast policy: the one place that says which ops run in
the autocast dtype and which in float32.

``polyten.amp.autocast`` (the user-facing context manager) opens and closes regions here; the
ops named in ``LOWER`` and ``FP32`` call :func:`lower` / :func:`fp32` on entry, guarded by the
module-level counter ``ACTIVE[0]`` so that an op costs one list read while no thread has a
region open.  The policy follows PyTorch's autocast op lists:

* ``LOWER``: matrix products and convolutions -- their floating inputs are cast to the
  autocast dtype (float16 or bfloat16), where tensor cores and half-width memory traffic pay
  off.
* ``FP32``: ops whose half-precision result would lose range or precision (exp/log family,
  pow, reductions that accumulate, softmax, norms and the losses) -- float16 and bfloat16
  inputs are cast to float32, so their results are float32.
* everything else runs in the dtype of its inputs, and the usual promotion settles mixed
  inputs (``float16 + float32`` is float32), as PyTorch's "promote" ops do.

The casts are ordinary differentiable casts: gradients reach float32 parameters in float32.
Within a region, the casts of leaf tensors that require grad (parameters) are cached until
the outermost region of the thread closes, so a weight used at every step of a loop is cast
once (``cache_enabled``).
"""

from __future__ import annotations

import threading
from typing import Dict, Optional

from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from . import dtypes as _dt
from ._core import Tensor, cast, wrap

__all__ = ["ACTIVE", "LOWER", "FP32", "lower", "fp32", "state", "enter", "leave", "unsafe"]

# ops whose floating inputs are cast to the autocast dtype
LOWER = frozenset({
    "matmul", "mm", "bmm", "mv", "addmm", "addbmm", "baddbmm", "addmv", "einsum",
    "linear", "prelu", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d",
    # the recurrent modules (cuDNN's RNNs under PyTorch's autocast): input, states, weights
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_cell",
})
# ops whose float16 / bfloat16 inputs are cast to float32
FP32 = frozenset({
    "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt", "acos", "asin",
    "cosh", "sinh", "tan", "pow", "softplus", "sum", "prod", "cumsum", "cumprod",
    "softmax", "log_softmax", "softmin", "layer_norm", "group_norm", "norm", "vector_norm",
    "normalize", "renorm", "cdist", "cosine_similarity", "cross_entropy",
    "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
    "binary_cross_entropy_with_logits", "poisson_nll_loss", "gaussian_nll_loss",
    "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
    "soft_margin_loss", "triplet_margin_loss",
})

# > 0 while some thread has an autocast region open (enabled or not): the ops' only cost
# outside regions is reading this
ACTIVE = [0]
_lock = threading.Lock()
_local = threading.local()
_LOW = _dt.LOW_PRECISION
_F32 = _dt.float32


class _Region:
    __slots__ = ("dtype", "enabled", "cache_enabled")

    def __init__(self, dtype, enabled, cache_enabled):
        self.dtype = dtype
        self.enabled = enabled
        self.cache_enabled = cache_enabled


def _regions() -> Dict[str, list]:
    r = getattr(_local, "regions", None)
    if r is None:
        r = _local.regions = {}
        _local.cache = {}
        _local.depth = 0
    return r


def state(device_type: str) -> Optional[_Region]:
    """The innermost region of this thread for ``device_type`` (None outside any)."""
    stack = _regions().get(device_type)
    return stack[-1] if stack else None


def enter(device_type: str, dtype, enabled: bool, cache_enabled: bool) -> None:
    _regions().setdefault(device_type, []).append(_Region(dtype, enabled, cache_enabled))
    _local.depth += 1
    with _lock:
        ACTIVE[0] += 1


def leave(device_type: str) -> None:
    _regions()[device_type].pop()
    _local.depth -= 1
    if _local.depth == 0:
        _local.cache.clear()  # cached casts live until the outermost region closes
    with _lock:
        ACTIVE[0] -= 1


def _cast(t: Tensor, dt, region: _Region) -> Tensor:
    """A differentiable cast; a leaf that requires grad is cast once per outermost region."""
    ag = t._ag
    key = None
    if region.cache_enabled and ag is not None and ag.requires_grad and ag.grad_fn is None \
            and _grad_on():
        key = (id(t), dt)
        if t._version is None:
            t._version = [0]  # counters are lazy: start one, so in-place writes are counted
        hit = _local.cache.get(key)
        # the version guards against an in-place update (an optimizer step) inside the region
        if hit is not None and hit[0] is t and hit[1] == t._version_value:
            return hit[2]
    out = wrap(cast(t, dt), t._device, dt)
    if ag is not None and _grad_on():
        _record(_rule("astype"), out, (t,))
    if key is not None:
        _local.cache[key] = (t, t._version_value, out)
    return out


def _region_of(tensors) -> Optional[_Region]:
    for t in tensors:
        if isinstance(t, Tensor):
            stack = _regions().get(t._device.type)
            if stack:
                r = stack[-1]
                return r if r.enabled else None
            return None
    return None


def lower(*tensors):
    """``tensors`` with every floating tensor cast to the region's dtype (a LOWER op's entry).

    Returns the arguments unchanged outside an enabled region of their device type; non-tensors
    (None, numbers) pass through.  With one argument, returns it alone."""
    region = _region_of(tensors)
    if region is not None:
        dt = region.dtype
        tensors = tuple(_cast(t, dt, region)
                        if isinstance(t, Tensor) and t._dtype.kind == "f" and t._dtype is not dt
                        else t for t in tensors)
    return tensors[0] if len(tensors) == 1 else tensors


def fp32(*tensors):
    """``tensors`` with every float16 / bfloat16 tensor cast to float32 (an FP32 op's entry);
    see :func:`lower`."""
    region = _region_of(tensors)
    if region is not None:
        tensors = tuple(_cast(t, _F32, region)
                        if isinstance(t, Tensor) and t._dtype in _LOW else t for t in tensors)
    return tensors[0] if len(tensors) == 1 else tensors


def unsafe(op: str, fix: str, *tensors) -> None:
    """Refuse an op that has no safe autocast form (PyTorch refuses the same ones)."""
    if _region_of(tensors) is not None:
        raise RuntimeError(f"{op}: unsafe to autocast (its float16 form saturates and it has "
                           f"no float32 policy); {fix}, or run it outside the region with "
                           f"polyten.autocast(device_type=..., enabled=False)")

