"""Lazy modules: layers whose input size (``in_features``, ``in_channels``, ``num_features``)
is inferred from the first input (``torch.nn.modules.lazy``).

A lazy module holds :class:`~polyten.nn.UninitializedParameter` s (and buffers) until its first
call: a forward pre-hook then materialises them from the input's shape, initialises them as
the regular layer's ``reset_parameters`` does, and the module's class becomes the regular one
(``LazyLinear`` -> ``Linear``, torch's ``cls_to_become``).  The parameter objects are the same
before and after, so an optimizer built over a lazy module keeps working.  ``.to(device /
dtype)`` before the first call decides where and in what dtype they materialise, and
``load_state_dict`` materialises them with the loaded shapes.
"""

from __future__ import annotations

import itertools

from ...api.tensor import Tensor
from ...dispatch.errors import fmt_shape
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, _NormBase
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear, _features
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["LazyModuleMixin", "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d",
           "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
           "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d"]


def _no_grad():
    from ...autograd.grad_mode import no_grad
    return no_grad()


class LazyModuleMixin:
    """Mixin of the lazy modules (``torch.nn.modules.lazy.LazyModuleMixin``).

    A subclass lists the mixin first, then the regular layer, sets ``cls_to_become`` to that
    layer, replaces the shape-dependent parameters by :class:`UninitializedParameter` in its
    ``__init__`` and implements :meth:`initialize_parameters`, which materialises them from the
    forward's arguments.

    Put the model on its device and dtype first, then run one forward ("dry run") to
    initialise every lazy module before relying on parameter shapes.
    """

    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # registered after the regular layer's __init__: its reset_parameters (below) sees no
        # hook yet and leaves the placeholder parameters alone
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters,
                                                               with_kwargs=True)

    def reset_parameters(self) -> None:
        if "_initialize_hook" in self.__dict__ and not self.has_uninitialized_params():
            super().reset_parameters()

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer of this module is still uninitialised."""
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(),
                                                       self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        """Materialise and initialise the parameters from the forward's arguments."""
        raise NotImplementedError(f"initialize_parameters is not implemented for "
                                  f"{type(self).__name__}")

    def _infer_parameters(self, module, args, kwargs=None):
        module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {module._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        del module.__dict__["_initialize_hook"]
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _lazy_load_hook(self, state_dict, prefix: str) -> None:
        """Called by ``Module.load_state_dict`` before it checks shapes: materialise each
        uninitialised parameter / buffer that the state dict holds a regular tensor for, with
        that tensor's shape (the values are copied afterwards)."""
        with _no_grad():
            for name, t in itertools.chain(self._parameters.items(), self._buffers.items()):
                key = prefix + name
                value = state_dict[key] if t is not None and key in state_dict else None
                if is_lazy(t) and isinstance(value, Tensor) and not is_lazy(value):
                    t.materialize(value.shape)

    _lazy_names = ("weight", "bias")

    def _check_not_partial(self) -> None:
        """Refuse a module that load_state_dict (strict=False) materialised in part: the shapes
        of the rest would be guessed and reset_parameters would overwrite the loaded values."""
        done = [n for n in self._lazy_names
                if getattr(self, n) is not None and not is_lazy(getattr(self, n))]
        if done:
            lazy = [n for n in self._lazy_names if is_lazy(getattr(self, n))]
            raise RuntimeError(f"{self._get_name()}: load_state_dict loaded "
                               f"{', '.join(done)} but not {', '.join(lazy)}; load every "
                               f"parameter and buffer of a lazy module, or none")

    def _input(self, input) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()}: expected a tensor as input, got "
                            f"{type(input).__name__}")
        return input


# ---------------------------------------------------------------------------- linear -----
class LazyLinear(LazyModuleMixin, Linear):
    """:class:`Linear` with ``in_features`` inferred from the first input's last dim
    (``torch.nn.LazyLinear``); it becomes a :class:`Linear` after the first call.

    Parameters
    ----------
    out_features : int
    bias : bool, default True
    device, dtype : optional
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        _features("LazyLinear", out_features=out_features)
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        input = self._input(input)
        if self.has_uninitialized_params():
            self._check_not_partial()
            if input.ndim < 1:
                raise ValueError(f"LazyLinear(out_features={self.out_features}): expected an "
                                 f"input of shape (..., in_features), got a 0-d tensor")
            with _no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()
        if self.in_features == 0:  # materialised by load_state_dict
            self.in_features = self.weight.shape[1]


# ------------------------------------------------------------------------------ conv -----
class _LazyConvMixin(LazyModuleMixin):
    def __init__(self, out_channels, kernel_size, stride, padding, dilation, output_padding,
                 groups, bias, padding_mode, device, dtype):
        # the regular layer needs in_channels >= 1: groups passes its checks, and the weight
        # it allocates is replaced below (reset_parameters leaves it alone until then)
        if self._transposed:
            super().__init__(groups, out_channels, kernel_size, stride, padding,
                             output_padding, groups, False, dilation, padding_mode)
        else:
            super().__init__(groups, out_channels, kernel_size, stride, padding, dilation,
                             groups, False, padding_mode)
        self.in_channels = 0
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def _in_channels(self, input) -> int:
        m = self._m
        if input.ndim not in (m + 1, m + 2):
            raise ValueError(f"{self._get_name()}: expected {m + 1}D (unbatched) or {m + 2}D "
                             f"(batched) input, got input of shape {fmt_shape(input.shape)}")
        return input.shape[1] if input.ndim == m + 2 else input.shape[0]

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        input = self._input(input)
        g = self.groups
        if self.has_uninitialized_params():
            self._check_not_partial()
            c = self._in_channels(input)
            if c % g:
                raise ValueError(f"{self._get_name()}: in_channels inferred from the input "
                                 f"({c}, input of shape {fmt_shape(input.shape)}) must be "
                                 f"divisible by groups ({g})")
            with _no_grad():
                self.in_channels = c
                if self._transposed:
                    shape = (c, self.out_channels // g) + self.kernel_size
                else:
                    shape = (self.out_channels, c // g) + self.kernel_size
                self.weight.materialize(shape)
                if self.bias is not None:
                    self.bias.materialize((self.out_channels,))
                self.reset_parameters()
        if self.in_channels == 0:  # materialised by load_state_dict
            w = self.weight.shape
            self.in_channels = w[0] if self._transposed else w[1] * g


def _conv_doc(regular: str) -> str:
    return (f":class:`{regular}` with ``in_channels`` inferred from the first input's channel "
            f"dim (``torch.nn.Lazy{regular}``); it becomes a :class:`{regular}` after the first "
            f"call.  Arguments as :class:`{regular}` without ``in_channels``.")


class _LazyConv(_LazyConvMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, device, dtype)


class _LazyConvTranspose(_LazyConvMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, output_padding,
                         groups, bias, padding_mode, device, dtype)


class LazyConv1d(_LazyConv, Conv1d):
    __doc__ = _conv_doc("Conv1d")
    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    __doc__ = _conv_doc("Conv2d")
    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    __doc__ = _conv_doc("Conv3d")
    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    __doc__ = _conv_doc("ConvTranspose1d")
    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    __doc__ = _conv_doc("ConvTranspose2d")
    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    __doc__ = _conv_doc("ConvTranspose3d")
    cls_to_become = ConvTranspose3d


# ---------------------------------------------------------------------- normalisation -----
class _LazyNormBase(LazyModuleMixin, _NormBase):
    _lazy_names = ("weight", "bias", "running_mean", "running_var")

    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        # no tensors from the regular __init__: they would be replaced right away
        super().__init__(0, eps, momentum, False, False, device, dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            from ...api.creation import tensor
            from ...api.dtypes import int64
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=int64, device=device)

    def _channel_dim(self, input) -> int:
        if input.ndim < 2:
            raise ValueError(f"{self._get_name()}: expected an input with a channel dim (N, C, "
                             f"...), got input of shape {fmt_shape(input.shape)}")
        return 1

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        input = self._input(input)
        if self.has_uninitialized_params():
            self._check_not_partial()
            with _no_grad():
                self.num_features = input.shape[self._channel_dim(input)]
                shape = (self.num_features,)
                for t in (self.weight, self.bias, self.running_mean, self.running_var):
                    if is_lazy(t):
                        t.materialize(shape)
                self.reset_parameters()
        if self.num_features == 0:
            # materialised by load_state_dict, or nothing to materialise (affine=False and no
            # running statistics): torch keeps 0 there, and its instance norms then warn on
            # every call that the input's channels differ from num_features
            t = self.weight if self.weight is not None else self.running_mean
            self.num_features = (t.shape[0] if t is not None
                                 else input.shape[self._channel_dim(input)])


class _LazyInstanceNorm(_LazyNormBase):
    # affine=True and track_running_stats=True by default, as torch's lazy instance norms
    # (the regular ones default to False)

    def _channel_dim(self, input) -> int:
        # unbatched (C, *spatial) input: channels in dim 0 (torch reads dim 1 there)
        return 0 if input.ndim == self._nobatch else super()._channel_dim(input)


def _norm_doc(regular: str, dims: str) -> str:
    return (f":class:`{regular}` with ``num_features`` inferred from the first input's channel "
            f"dim ({dims}; ``torch.nn.Lazy{regular}``); it becomes a :class:`{regular}` after "
            f"the first call.  Arguments as :class:`{regular}` without ``num_features``.")


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    __doc__ = _norm_doc("BatchNorm1d", "(N, C) or (N, C, L) input")
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    __doc__ = _norm_doc("BatchNorm2d", "(N, C, H, W) input")
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    __doc__ = _norm_doc("BatchNorm3d", "(N, C, D, H, W) input")
    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    __doc__ = _norm_doc("InstanceNorm1d", "(N, C, L) or (C, L) input")
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    __doc__ = _norm_doc("InstanceNorm2d", "(N, C, H, W) or (C, H, W) input")
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    __doc__ = _norm_doc("InstanceNorm3d", "(N, C, D, H, W) or (C, D, H, W) input")
    cls_to_become = InstanceNorm3d
