"""``ChannelShuffle`` and the fractional max-pooling layers ``FractionalMaxPool2d`` /
``FractionalMaxPool3d`` (``torch.nn`` signatures, attributes and reprs)."""

from __future__ import annotations

from .. import functional as F
from .pooling import _Wrapped

__all__ = ["ChannelShuffle", "FractionalMaxPool2d", "FractionalMaxPool3d"]


class ChannelShuffle(_Wrapped):
    """Interleave the channels of an (N, C, *) input across ``groups`` groups; see
    :func:`polyten.nn.functional.channel_shuffle`.

    Parameters
    ----------
    groups : int
        The number of groups; the channel count must be divisible by it.
    """

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return self._call(F.channel_shuffle, input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _ntuple(v, m):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * m


class _FractionalMaxPoolNd(_Wrapped):
    _m = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None):
        super().__init__()
        name = type(self).__name__
        m = self._m
        self.kernel_size = _ntuple(kernel_size, m)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _ntuple(output_size, m) if output_size is not None else None
        self.output_ratio = _ntuple(output_ratio, m) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling "
                             "ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError(f"{name}: only one of output_size and output_ratio may be "
                             "specified")
        if self.output_ratio is not None:
            for r in self.output_ratio:
                if not 0 < r < 1:
                    raise ValueError(f"{name}: output_ratio must be between 0 and 1 (got "
                                     f"{output_ratio})")


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling over (N, C, H, W) or (C, H, W) inputs; see
    :func:`polyten.nn.functional.fractional_max_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    output_size : int or (int, int), optional
    output_ratio : float or (float, float), optional
        Exactly one of ``output_size`` and ``output_ratio`` (each ratio in (0, 1)).
    return_indices : bool
        Also return the positions of the maxima.
    _random_samples : Tensor, optional
        Fixed ``(N, C, 2)`` samples (a buffer); fresh ones per call when absent.
    """

    _m = 2

    def forward(self, input):
        return self._call(F.fractional_max_pool2d, input, self.kernel_size, self.output_size,
                          self.output_ratio, self.return_indices, self._random_samples)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling over (N, C, T, H, W) or (C, T, H, W) inputs; see
    :class:`FractionalMaxPool2d` (triples, samples of shape ``(N, C, 3)``)."""

    _m = 3

    def forward(self, input):
        return self._call(F.fractional_max_pool3d, input, self.kernel_size, self.output_size,
                          self.output_ratio, self.return_indices, self._random_samples)
