"""``LayerNorm``, ``GroupNorm``, ``RMSNorm``, ``LocalResponseNorm`` and ``InstanceNorm1d/2d/3d``
(``torch.nn`` signatures, defaults -- weights 1, biases 0 -- state-dict keys and reprs)."""

from __future__ import annotations

import numbers
import warnings

from ...dispatch.errors import fmt_shape
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .batchnorm import _NormBase, _register_affine, _reset_affine
from .linear import _empty
from .module import Module

__all__ = ["LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm", "InstanceNorm1d",
           "InstanceNorm2d", "InstanceNorm3d"]


def _normalized_shape(cls: str, normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape,
                                                                           bool):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(int(d) for d in normalized_shape)
    except TypeError:
        raise TypeError(f"{cls}: normalized_shape must be an int or a sequence of ints, got "
                        f"{normalized_shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{cls}: normalized_shape must hold non-negative sizes, got {shape}")
    return shape


class LayerNorm(Module):
    """Layer normalisation over the last ``len(normalized_shape)`` dims of the input:
    ``(x - mean) / sqrt(var + eps) * weight + bias`` with each sample's mean and biased
    variance.  ``weight`` (ones) and ``bias`` (zeros) have ``normalized_shape`` when
    ``elementwise_affine`` (``bias=False`` drops the bias)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _normalized_shape("LayerNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _register_affine(self, elementwise_affine, self.normalized_shape, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self, self.elementwise_affine)

    def forward(self, input):
        shape = tuple(getattr(input, "shape", ()))
        k = len(self.normalized_shape)
        if hasattr(input, "shape") and (k > len(shape) or
                                        shape[len(shape) - k:] != self.normalized_shape):
            raise ValueError(
                f"LayerNorm({self.normalized_shape}): expected an input of shape (*, "
                f"{', '.join(str(d) for d in self.normalized_shape)}) (its last {k} dim(s) "
                f"equal to normalized_shape), got {fmt_shape(shape)}; create the layer with "
                f"normalized_shape=input.shape[-{k}:] = {fmt_shape(shape[-k:])}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation: the ``num_channels`` channels (dim 1) are split into
    ``num_groups`` groups, each normalised over its channels and spatial dims; ``weight``
    (ones) and ``bias`` (zeros) of shape (num_channels,) when ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        for name, v in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"GroupNorm: {name} must be a positive int, got {v!r}")
        if num_channels % num_groups != 0:
            divisors = [d for d in range(1, num_channels + 1) if num_channels % d == 0]
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups}); choose num_groups among {divisors}")
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = eps
        self.affine = affine
        _register_affine(self, affine, (num_channels,), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self, self.affine)

    def forward(self, input):
        shape = tuple(getattr(input, "shape", ()))
        if len(shape) >= 2 and shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm({self.num_groups}, {self.num_channels}): expected an input with "
                f"{self.num_channels} channels in dim 1, got input of shape {fmt_shape(shape)}; "
                f"create the layer with num_channels={shape[1]}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the last ``len(normalized_shape)`` dims:
    ``x / sqrt(mean(x ** 2) + eps) * weight``; ``weight`` (ones) has ``normalized_shape`` when
    ``elementwise_affine``.  ``eps=None``: the machine epsilon of the computation dtype."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _normalized_shape("RMSNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_empty(self.normalized_shape, device, dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """Local response normalisation across channels (see
    :func:`polyten.nn.functional.local_response_norm`)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class _InstanceNorm(_NormBase):
    """Instance normalisation: each channel of each sample normalised over its spatial dims.

    Defaults as PyTorch: ``affine=False``, ``track_running_stats=False``; with tracking,
    eval mode normalises with the running statistics.
    """

    _nobatch = 0  # ndim of an unbatched input (C, *spatial)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _apply_instance_norm(self, input):
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight,
                               self.bias, self.training or not self.track_running_stats,
                               self.momentum if self.momentum is not None else 0.0, self.eps)

    def forward(self, input):
        from ...api._core import Tensor
        name = self._get_name()
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a tensor as input, got {type(input).__name__}")
        nb = self._nobatch
        if input.ndim not in (nb, nb + 1):
            raise ValueError(f"{name}: expected {nb}D (unbatched) or {nb + 1}D (batched) input "
                             f"(got {input.ndim}D input of shape {fmt_shape(input.shape)})")
        fdim = input.ndim - nb
        if input.shape[fdim] != self.num_features:
            if self.affine or self.track_running_stats:
                self._check_channels(input, fdim)
            # PyTorch only warns: without affine parameters num_features is not used
            warnings.warn(f"{name}: input's size at dim={fdim} ({input.shape[fdim]}) does not "
                          f"match num_features ({self.num_features}); num_features is not "
                          f"used because affine=False", stacklevel=2)
        if input.ndim == nb:
            return self._apply_instance_norm(input.unsqueeze(0)).squeeze(0)
        return self._apply_instance_norm(input)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of an (N, C, L) or (C, L) input (``torch.nn.InstanceNorm1d``)."""

    _nobatch = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of an (N, C, H, W) or (C, H, W) input."""

    _nobatch = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of an (N, C, D, H, W) or (C, D, H, W) input."""

    _nobatch = 4
