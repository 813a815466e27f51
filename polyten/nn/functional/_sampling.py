"""Resampling and rearranging: ``interpolate`` (``upsample``), ``pixel_shuffle`` /
``pixel_unshuffle``, and the distances ``cosine_similarity`` / ``pairwise_distance``.

Written in polyten ops (gathers along one spatial dim at a time, weighted sums), so they run on
every backend and differentiate through those ops; the coordinate rules are PyTorch's.
"""

from __future__ import annotations

import math

from ...api import autocast as _amp
from ...api import dtypes as _dt
from ...api.tensor import Tensor

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
           "pixel_unshuffle", "cosine_similarity", "pairwise_distance"]

_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "bicubic": 2,
          "trilinear": 3, "area": None}


def _pt():
    import polyten
    return polyten


def _check_tensor(op: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {type(x).__name__}")
    return x


def _out_sizes(op, x, size, scale_factor, m):
    spatial = tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        sizes = (size,) * m if isinstance(size, int) else tuple(size)
        if len(sizes) != m:
            raise ValueError(f"{op}: size must have {m} entries for a {x.ndim}-D input, got "
                             f"{size!r}")
        return tuple(int(s) for s in sizes), None
    scales = (scale_factor,) * m if isinstance(scale_factor, (int, float)) else \
        tuple(scale_factor)
    if len(scales) != m:
        raise ValueError(f"{op}: scale_factor must have {m} entries for a {x.ndim}-D input, "
                         f"got {scale_factor!r}")
    return tuple(int(math.floor(s * f)) for s, f in zip(spatial, scales)), tuple(
        float(f) for f in scales)


def _source(n_out, n_in, scale, align_corners, mode, dev):
    """Source coordinates (float64 tensor) of the ``n_out`` output positions."""
    pt = _pt()
    dst = pt.arange(n_out, dtype=_dt.float64, device=dev)
    if mode in ("nearest", "nearest-exact"):
        s = (n_in / n_out) if scale is None else 1.0 / scale
        pos = (dst + 0.5) * s if mode == "nearest-exact" else dst * s
        return pt.floor(pos).clamp(max=n_in - 1)
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0.0
    s = (n_in / n_out) if scale is None else 1.0 / scale
    src = (dst + 0.5) * s - 0.5
    return src if mode == "bicubic" else src.clamp(min=0.0)


def _along(x, dim, idx):
    return x.index_select(dim, idx)


def _cubic_weights(t):
    a = -0.75  # PyTorch's (and OpenCV's) cubic convolution coefficient
    t1 = t + 1.0
    w0 = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    u = 1.0 - t
    w2 = ((a + 2) * u - (a + 3)) * u * u + 1
    w3 = 1.0 - w0 - w1 - w2
    return (w0, w1, w2, w3)


def _resample_dim(x, d, n_out, scale, align_corners, mode):
    pt = _pt()
    n_in = x.shape[d]
    src = _source(n_out, n_in, scale, align_corners, mode, x.device)
    shape = [1] * x.ndim
    shape[d] = n_out
    if mode in ("nearest", "nearest-exact"):
        return _along(x, d, src.to(_dt.int64))
    i0f = pt.floor(src)
    t = (src - i0f).to(x.dtype).reshape(shape)
    i0 = i0f.to(_dt.int64)
    if mode == "bicubic":
        out = None
        for k, w in zip((-1, 0, 1, 2), _cubic_weights(t)):
            term = _along(x, d, (i0 + k).clamp(0, n_in - 1)) * w
            out = term if out is None else out + term
        return out
    lo = _along(x, d, i0.clamp(0, n_in - 1))
    hi = _along(x, d, (i0 + 1).clamp(0, n_in - 1))
    return lo + (hi - lo) * t


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims of ``input`` (N, C, *spatial) to ``size`` or by
    ``scale_factor``, as ``torch.nn.functional.interpolate``.

    Modes: ``'nearest'`` (PyTorch's floor rule), ``'nearest-exact'``, ``'linear'`` (3-D
    input), ``'bilinear'`` / ``'bicubic'`` (4-D), ``'trilinear'`` (5-D), ``'area'`` (adaptive
    average pooling; 3-D and 4-D inputs).  ``align_corners`` (linear and cubic modes) maps the
    corner pixels' centres onto each other.  With ``scale_factor`` the coordinate transform
    uses that factor, unless ``recompute_scale_factor=True`` (then the output size's ratio).
    """
    op = "interpolate"
    x = _check_tensor(op, input)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if x.ndim < 3 or x.ndim > 5:
        raise ValueError(f"{op}: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got shape "
                         f"{tuple(x.shape)}")
    m = x.ndim - 2
    need = _MODES[mode]
    if need is not None and need != m:
        raise ValueError(f"{op}: mode {mode!r} needs a {need + 2}-D input, got shape "
                         f"{tuple(x.shape)}")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners applies only to the linear and cubic modes, "
                             f"not {mode!r}")
    elif align_corners is None:
        align_corners = False
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported; downsample with 'area' mode "
                         f"or an avg_pool first")
    if x.dtype.kind != "f" and mode not in ("nearest", "nearest-exact"):
        raise TypeError(f"{op}: mode {mode!r} needs a floating-point input, got {x.dtype.name}")
    sizes, scales = _out_sizes(op, x, size, scale_factor, m)
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{op}: the output size {sizes} must be positive")
    if recompute_scale_factor:
        scales = None
    if mode == "area":
        from . import _pool
        fn = {1: _pool.adaptive_avg_pool1d, 2: _pool.adaptive_avg_pool2d}.get(m)
        if fn is None:
            raise ValueError(f"{op}: mode 'area' supports 3-D and 4-D inputs, got shape "
                             f"{tuple(x.shape)}")
        return fn(x, sizes)
    out = x
    for j in range(m):
        out = _resample_dim(out, 2 + j, sizes[j], None if scales is None else scales[j],
                            align_corners, mode)
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated spelling of :func:`interpolate` (kept for PyTorch code that uses it)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """:func:`interpolate` with ``mode='nearest'``."""
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """:func:`interpolate` with ``mode='bilinear'`` and ``align_corners=True`` (as PyTorch's
    deprecated ``upsample_bilinear``)."""
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


def pixel_shuffle(input, upscale_factor: int):
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r
    block of pixels."""
    op = "pixel_shuffle"
    x = _check_tensor(op, input)
    r = int(upscale_factor)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dims (*, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    lead, (c, h, w) = tuple(x.shape[:-3]), tuple(x.shape[-3:])
    if r <= 0 or c % (r * r):
        raise ValueError(f"{op}: the channels ({c}) must be divisible by upscale_factor**2 "
                         f"({r}**2 = {r * r})")
    k = len(lead)
    y = x.reshape(lead + (c // (r * r), r, r, h, w))
    y = y.permute(tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return y.reshape(lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor: int):
    """The inverse of :func:`pixel_shuffle`: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    op = "pixel_unshuffle"
    x = _check_tensor(op, input)
    r = int(downscale_factor)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dims (*, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    lead, (c, h, w) = tuple(x.shape[:-3]), tuple(x.shape[-3:])
    if r <= 0 or h % r or w % r:
        raise ValueError(f"{op}: height ({h}) and width ({w}) must be divisible by "
                         f"downscale_factor ({r})")
    k = len(lead)
    y = x.reshape(lead + (c, h // r, r, w // r, r))
    y = y.permute(tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return y.reshape(lead + (c * r * r, h // r, w // r))


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """``x1 . x2 / (max(|x1|, eps) max(|x2|, eps))`` along ``dim`` (the operands broadcast),
    as ``torch.nn.functional.cosine_similarity``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        x1, x2 = _amp.fp32(x1, x2)
    pt = _pt()
    a, b = _check_tensor("cosine_similarity", x1), _check_tensor("cosine_similarity", x2)
    a, b = pt.broadcast_tensors(a, b)

    def norm(v):
        # clamped in value only, as PyTorch (its clamp_min_ runs under no_grad): a norm below
        # eps still passes its own gradient, so gradients match torch's there too
        n = pt.linalg.vector_norm(v, dim=dim, keepdim=True)
        return n + (pt.clamp(n, min=eps) - n).detach()
    return ((a / norm(a)) * (b / norm(b))).sum(dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``|x1 - x2 + eps|_p`` along the last dim (the operands broadcast)."""
    pt = _pt()
    a = _check_tensor("pairwise_distance", x1)
    b = _check_tensor("pairwise_distance", x2)
    return pt.linalg.vector_norm(a - b + eps, p, dim=-1, keepdim=keepdim)
