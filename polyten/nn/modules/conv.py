"""Convolution layers: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d``
(``torch.nn`` signatures, attributes, reprs and default initialisation)."""

from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ..parameter import Parameter
from .linear import _empty
from .pooling import _Wrapped

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(cls, name, value, m, minimum):
    from ..functional._conv import _ntuple
    return _ntuple(cls, name, value, m, minimum)


class _ConvNd(_Wrapped):
    """What the convolution layers share: argument checks, parameters, initialisation, repr
    and wrapping errors with the layer's repr."""

    _m = 0
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        cls = type(self).__name__
        m = self._m
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by groups "
                             f"({groups})")
        kernel_size = _tuple(cls, "kernel_size", kernel_size, m, 1)
        stride = _tuple(cls, "stride", stride, m, 1)
        dilation = _tuple(cls, "dilation", dilation, m, 1)
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                allowed = "an int or a tuple" if self._transposed else "'same', 'valid'"
                raise ValueError(f"{cls}: invalid padding string {padding!r}, should be one of "
                                 f"{allowed}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{cls}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}); use stride=1 or a numeric "
                                 f"padding")
        else:
            padding = _tuple(cls, "padding", padding, m, 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of "
                             f"{', '.join(repr(p) for p in _PADDING_MODES)}, got "
                             f"{padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{cls}: only 'zeros' padding mode is supported, got "
                             f"{padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = self._transposed
        self.output_padding = _tuple(cls, "output_padding", output_padding, m, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's amounts for padding_mode != 'zeros' (last dim first; 'same' puts the odd
        # element at the end, as PyTorch)
        if padding == "same":
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                    for k, d in zip(kernel_size, dilation)]
        elif padding == "valid":
            pads = [(0, 0)] * m
        else:
            pads = [(p, p) for p in padding]
        self._reversed_padding_repeated_twice = tuple(v for lo, hi in reversed(pads)
                                                      for v in (lo, hi))
        if self._transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(_empty(shape, device, dtype))
        if bias:
            self.bias = Parameter(_empty((out_channels,), device, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight ``kaiming_uniform_(a=sqrt(5))`` (U(-1/sqrt(fan_in),
        1/sqrt(fan_in))), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] *
        kernel elements."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        m = self._m
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * m:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * m:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * m:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input, weight, bias):
        fn = (F.conv1d, F.conv2d, F.conv3d)[self._m - 1]
        if self.padding_mode != "zeros":
            padded = self._call(F.pad, input, self._reversed_padding_repeated_twice,
                                self.padding_mode)
            return self._call(fn, padded, weight, bias, self.stride, 0, self.dilation,
                              self.groups)
        return self._call(fn, input, weight, bias, self.stride, self.padding, self.dilation,
                          self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L) or (C_in, L) inputs: weight (out_channels,
    in_channels / groups, kernel_size), bias (out_channels,).

    ``padding``: an int, ``'valid'`` or ``'same'``; ``padding_mode``: ``'zeros'``,
    ``'reflect'``, ``'replicate'`` or ``'circular'``.  See :func:`polyten.nn.functional.conv1d`.
    """

    _m = 1


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) inputs: weight (out_channels,
    in_channels / groups, kH, kW), bias (out_channels,).

    ``kernel_size``, ``stride``, ``dilation``: an int or a pair; ``padding``: an int, a pair,
    ``'valid'`` or ``'same'``; ``padding_mode``: ``'zeros'``, ``'reflect'``, ``'replicate'`` or
    ``'circular'``.  Initialised as PyTorch (see :meth:`reset_parameters`).
    """

    _m = 2


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W) inputs: weight
    (out_channels, in_channels / groups, kD, kH, kW), bias (out_channels,); arguments as
    :class:`Conv2d` with triples."""

    _m = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """The output_padding that gives ``output_size`` (PyTorch's rule: it must lie within
        [min, min + stride - 1] of the sizes this layer can produce)."""
        if output_size is None:
            return self.output_padding
        m = self._m
        size = tuple(output_size)
        if len(size) == m + 2 or len(size) == m + 1:
            size = size[-m:]
        if len(size) != m:
            raise ValueError(f"{self!r}: output_size must have {m} or {m + 2} elements (got "
                             f"{len(tuple(output_size))})")
        insize = tuple(input.shape[-m:])
        out = []
        for j in range(m):
            lo = ((insize[j] - 1) * self.stride[j] - 2 * self.padding[j] +
                  self.dilation[j] * (self.kernel_size[j] - 1) + 1)
            hi = lo + self.stride[j] - 1
            if not lo <= size[j] <= hi:
                raise ValueError(f"{self!r}: requested an output size of {size}, but valid "
                                 f"sizes for input {tuple(input.shape)} range from "
                                 f"{lo} to {hi} in dim {j} (for an input of {insize})")
            out.append(size[j] - lo)
        return tuple(out)

    def forward(self, input, output_size=None):
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self._m - 1]
        opad = self._output_padding(input, output_size)
        return self._call(fn, input, self.weight, self.bias, self.stride, self.padding, opad,
                          self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (the gradient of :class:`Conv1d` w.r.t. its input): weight
    (in_channels, out_channels / groups, kernel_size).  ``forward(input, output_size=None)``
    may ask for one of the output sizes a strided Conv1d maps back to the input's."""

    _m = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution: weight (in_channels, out_channels / groups, kH, kW); the
    output size is ``(in - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1``."""

    _m = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution: weight (in_channels, out_channels / groups, kD, kH, kW);
    see :class:`ConvTranspose2d` for the output size."""

    _m = 3
