"""Padding layers, ``Upsample``, ``PixelShuffle`` / ``PixelUnshuffle`` and the distance
modules ``CosineSimilarity`` / ``PairwiseDistance`` -- thin modules over
:mod:`polyten.nn.functional`."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
           "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d", "Upsample", "UpsamplingNearest2d",
           "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "CosineSimilarity",
           "PairwiseDistance"]


class _PadNd(Module):
    """Pads the last ``_m`` dims: ``padding`` an int (all sides) or a ``2 * _m``-tuple
    ``(left, right, top, bottom, front, back)`` as :func:`polyten.nn.functional.pad`."""

    _m = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        n = 2 * self._m
        pad = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(pad) != n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a {n}-tuple, "
                             f"got {padding!r}")
        self.padding = pad
        self.value = value

    def forward(self, input):
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _pad_class(name, m, mode, doc, constant=False):
    def __init__(self, padding, value=0.0):
        _PadNd.__init__(self, padding, value if constant else 0.0)
    init = __init__ if constant else (lambda self, padding: _PadNd.__init__(self, padding))
    return type(name, (_PadNd,), {"_m": m, "_mode": mode, "__init__": init,
                                  "__doc__": doc.format(n=m)})


_Z = "Pads the last {n} dim(s) with zeros."
_C = "Pads the last {n} dim(s) with ``value``."
_R = "Pads the last {n} dim(s) with the reflection of the input (the edge not repeated)."
_P = "Pads the last {n} dim(s) by repeating the edge values."
_O = "Pads the last {n} dim(s) circularly (wrapping around)."
ZeroPad1d, ZeroPad2d, ZeroPad3d = (_pad_class(f"ZeroPad{m}d", m, "constant", _Z)
                                   for m in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (
    _pad_class(f"ConstantPad{m}d", m, "constant", _C, constant=True) for m in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (
    _pad_class(f"ReflectionPad{m}d", m, "reflect", _R) for m in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (
    _pad_class(f"ReplicationPad{m}d", m, "replicate", _P) for m in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (
    _pad_class(f"CircularPad{m}d", m, "circular", _O) for m in (1, 2, 3))
for _cls in (ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
             ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
             ReplicationPad2d, ReplicationPad3d, CircularPad1d, CircularPad2d, CircularPad3d):
    _cls.__module__ = __name__
del _cls


class Upsample(Module):
    """Resizes (N, C, *spatial) inputs to ``size`` or by ``scale_factor``; see
    :func:`polyten.nn.functional.interpolate` for the modes."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            else (tuple(float(f) for f in scale_factor) if scale_factor is not None else None)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode,
                             self.align_corners, self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """:class:`Upsample` with ``mode='nearest'`` for 4-D inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    """:class:`Upsample` with ``mode='bilinear'`` and ``align_corners=True``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r); see :func:`polyten.nn.functional.pixel_shuffle`."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of :class:`PixelShuffle`."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class CosineSimilarity(Module):
    """Cosine similarity of two inputs along ``dim``."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``|x1 - x2 + eps|_p`` along the last dim."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
