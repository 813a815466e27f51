"""Pooling layers and ``Unfold`` / ``Fold`` (``torch.nn`` signatures, attributes and reprs).
"""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Unfold", "Fold",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


class _Wrapped(Module):
    """A layer whose functional call's errors are re-raised prefixed with the layer's repr
    (which names the layer and its settings)."""

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{self!r}: {exc}") from None


class _MaxPoolNd(_Wrapped):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L) or (C, L) inputs; see
    :func:`polyten.nn.functional.max_pool1d`."""

    def forward(self, input):
        return self._call(F.max_pool1d, input, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W) or (C, H, W) inputs; see
    :func:`polyten.nn.functional.max_pool2d`."""

    def forward(self, input):
        return self._call(F.max_pool2d, input, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (N, C, D, H, W) or (C, D, H, W) inputs; see
    :func:`polyten.nn.functional.max_pool3d`."""

    def forward(self, input):
        return self._call(F.max_pool3d, input, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)


def _single(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class AvgPool1d(_Wrapped):
    """Average pooling over (N, C, L) or (C, L) inputs (sizes kept as 1-tuples, as
    PyTorch)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        return self._call(F.avg_pool1d, input, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad)


class AvgPool2d(_Wrapped):
    """Average pooling over (N, C, H, W) or (C, H, W) inputs; see
    :func:`polyten.nn.functional.avg_pool2d`."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        return self._call(F.avg_pool2d, input, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad, self.divisor_override)


class AvgPool3d(AvgPool2d):
    """Average pooling over (N, C, D, H, W) or (C, D, H, W) inputs; see
    :func:`polyten.nn.functional.avg_pool3d`."""

    def forward(self, input):
        return self._call(F.avg_pool3d, input, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad, self.divisor_override)


class _Adaptive(_Wrapped):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_Adaptive):
    """Average pooling to a fixed output length (PyTorch's adaptive windows)."""

    def forward(self, input):
        return self._call(F.adaptive_avg_pool1d, input, self.output_size)


class AdaptiveAvgPool2d(_Adaptive):
    """Average pooling to a fixed output size (an int, a pair, None keeps that dim)."""

    def forward(self, input):
        return self._call(F.adaptive_avg_pool2d, input, self.output_size)


class _AdaptiveMax(_Adaptive):
    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices


class AdaptiveMaxPool1d(_AdaptiveMax):
    """Max pooling to a fixed output length; ``return_indices`` also gives the positions."""

    def forward(self, input):
        return self._call(F.adaptive_max_pool1d, input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMax):
    """Max pooling to a fixed output size; ``return_indices`` also gives the positions."""

    def forward(self, input):
        return self._call(F.adaptive_max_pool2d, input, self.output_size, self.return_indices)


class Unfold(_Wrapped):
    """Sliding local blocks (im2col): (N, C, H, W) -> (N, C * kH * kW, L); see
    :func:`polyten.nn.functional.unfold`."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")

    def forward(self, input):
        return self._call(F.unfold, input, self.kernel_size, self.dilation, self.padding,
                          self.stride)


class Fold(_Wrapped):
    """The adjoint of :class:`Unfold` (col2im): (N, C * kH * kW, L) -> (N, C,
    *output_size), overlapping blocks summed."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")

    def forward(self, input):
        return self._call(F.fold, input, self.output_size, self.kernel_size, self.dilation,
                          self.padding, self.stride)


class AdaptiveAvgPool3d(_Adaptive):
    """Average pooling of (N, C, D, H, W) inputs to a fixed output size."""

    def forward(self, input):
        return self._call(F.adaptive_avg_pool3d, input, self.output_size)


class AdaptiveMaxPool3d(_AdaptiveMax):
    """Max pooling of (N, C, D, H, W) inputs to a fixed output size."""

    def forward(self, input):
        return self._call(F.adaptive_max_pool3d, input, self.output_size, self.return_indices)


class _LPPoolNd(_Wrapped):
    _fn = None

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        return self._call(type(self)._fn, input, self.norm_type, self.kernel_size, self.stride,
                          self.ceil_mode)


class LPPool1d(_LPPoolNd):
    """Power-average pooling over (N, C, L) inputs; see :func:`polyten.nn.functional.lp_pool1d`."""

    _fn = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """Power-average pooling over (N, C, H, W) inputs."""

    _fn = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """Power-average pooling over (N, C, D, H, W) inputs."""

    _fn = staticmethod(F.lp_pool3d)


class _MaxUnpoolNd(_Wrapped):
    _m = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        m = self._m
        tup = (lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * m)
        self.kernel_size = tup(kernel_size)
        self.stride = tup(stride if stride is not None else kernel_size)
        self.padding = tup(padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input, indices, output_size=None):
        fn = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self._m - 1]
        return self._call(fn, input, indices, self.kernel_size, self.stride, self.padding,
                          output_size)


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool1d` (values back at their indices, zeros
    elsewhere)."""

    _m = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool2d`."""

    _m = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool3d`."""

    _m = 3
