"""``BatchNorm1d/2d/3d`` and their base ``_NormBase`` (shared with the instance norms):
``torch.nn`` signatures, defaults, buffers (``running_mean``, ``running_var``,
``num_batches_tracked``, so state dicts have PyTorch's keys) and reprs."""

from __future__ import annotations

import numbers

from ...dispatch.errors import fmt_shape
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .linear import _empty
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


def _register_affine(module: Module, affine: bool, shape: tuple, bias: bool, device,
                     dtype) -> None:
    """``weight`` and (unless ``bias=False``) ``bias`` parameters of ``shape`` when ``affine``;
    the missing ones registered as ``None`` so state dicts and attributes are PyTorch's."""
    if affine:
        module.weight = Parameter(_empty(shape, device, dtype))
        if bias:
            module.bias = Parameter(_empty(shape, device, dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: Module, affine: bool) -> None:
    """The affine parameters' defaults: weight 1, bias 0."""
    if affine:
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)


class _NormBase(Module):
    """Per-channel affine parameters and running statistics of the batch and instance norms.

    ``weight`` (ones) and ``bias`` (zeros) of shape (num_features,) when ``affine``;
    buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (an
    int64 0-d tensor) when ``track_running_stats``, else registered as ``None``.
    """

    # a state dict without it loads (PyTorch's checkpoints before 0.4.1 had none)
    _optional_state = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features < 0:
            raise ValueError(f"{name}: num_features must be a non-negative int (the number of "
                             f"channels C, dim 1 of the input), got {num_features!r}")
        if momentum is not None and (isinstance(momentum, bool) or
                                     not isinstance(momentum, numbers.Real)):
            raise TypeError(f"{name}: momentum must be a number or None (cumulative average), "
                            f"got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _register_affine(self, affine, (num_features,), bias, device, dtype)
        if track_running_stats:
            from ...api.creation import ones, tensor, zeros
            from ...api.dtypes import int64
            self.register_buffer("running_mean", zeros((num_features,), dtype=dtype,
                                                       device=device))
            self.register_buffer("running_var", ones((num_features,), dtype=dtype,
                                                     device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to 0, running variance to 1, ``num_batches_tracked`` to 0."""
        if self.track_running_stats:
            from ...autograd.grad_mode import no_grad
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics and the affine parameters (weight 1, bias 0)."""
        self.reset_running_stats()
        _reset_affine(self, self.affine)

    def _check_input_dim(self, input) -> None:
        raise NotImplementedError

    def _check_channels(self, input, dim: int) -> None:
        if input.shape[dim] != self.num_features:
            raise ValueError(
                f"{self._get_name()}({self.num_features}): expected an input with "
                f"num_features={self.num_features} channels in dim {dim}, got input of shape "
                f"{fmt_shape(input.shape)} ({input.shape[dim]} channels); create the layer "
                f"with num_features={input.shape[dim]} or check the previous layer's output")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _dims = ()  # accepted input ndims

    def _check_input_dim(self, input) -> None:
        from ...api._core import Tensor
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()}: expected a tensor as input, got "
                            f"{type(input).__name__}")
        if input.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"{self._get_name()}: expected {want} input (got {input.ndim}D "
                             f"input of shape {fmt_shape(input.shape)})")
        self._check_channels(input, 1)

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            from ...autograd.grad_mode import no_grad
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # batch statistics in training, and in eval mode when no running statistics exist
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of an (N, C) or (N, C, L) input over the batch (and length) dims.

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias`` per channel, with the batch's mean
    and biased variance in training (the running variance is updated with the unbiased one:
    ``running = (1 - momentum) * running + momentum * stat``; ``momentum=None`` makes it a
    cumulative average) and the running statistics in eval mode (``model.eval()``) when
    ``track_running_stats``.  Arguments as ``torch.nn.BatchNorm1d``.
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of an (N, C, H, W) input per channel; see :class:`BatchNorm1d`."""

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of an (N, C, D, H, W) input per channel; see :class:`BatchNorm1d`."""

    _dims = (5,)
