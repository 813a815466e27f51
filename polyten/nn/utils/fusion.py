"""Folding an eval-mode batch norm into the convolution or linear layer before it
(``torch.nn.utils.fusion``): ``bn(conv(x)) == fused_conv(x)`` with the running statistics.
"""

from __future__ import annotations

import copy

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]


def _check_eval(op, layer, bn):
    if layer.training or bn.training:
        raise ValueError(f"{op}: fusion is only for eval mode; call .eval() on both modules "
                         f"first (got {type(layer).__name__}.training={layer.training}, "
                         f"{type(bn).__name__}.training={bn.training})")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{op}: the batch norm has no running statistics "
                         "(track_running_stats=False); it cannot be folded into the layer")


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` whose weight and bias absorb the eval-mode batch norm ``bn``.

    Parameters
    ----------
    conv : Conv1d, Conv2d, Conv3d or ConvTranspose*d
        In eval mode (``conv.training`` False).
    bn : BatchNorm*d
        In eval mode, with running statistics; ``bn.num_features`` the conv's output
        channels.
    transpose : bool
        ``conv`` is a transposed convolution (output channels in weight dim 1).

    Returns
    -------
    Module
        A deep copy of ``conv`` (the inputs are untouched) computing ``bn(conv(x))``.
    """
    _check_eval("fuse_conv_bn_eval", conv, bn)
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b,
                         transpose: bool = False):
    """The weight and bias of a convolution followed by an eval-mode batch norm.

    ``w' = w * (bn_w / sqrt(bn_rv + bn_eps))`` per output channel (weight dim 0, dim 1 with
    ``transpose``) and ``b' = (b - bn_rm) * bn_w / sqrt(bn_rv + bn_eps) + bn_b``; a missing
    ``conv_b`` / ``bn_b`` counts as zeros and a missing ``bn_w`` as ones.

    Returns
    -------
    (Parameter, Parameter)
        In ``conv_w``'s / ``conv_b``'s dtypes; each ``requires_grad`` as ``conv_w`` /
        ``conv_b`` (a missing ``conv_b`` gives a bias that does not require grad, as
        PyTorch's).
    """
    import polyten as pt
    from ..parameter import Parameter
    w_dtype = conv_w.dtype
    b_dtype = conv_b.dtype if conv_b is not None else w_dtype
    if conv_b is None:
        conv_b = pt.zeros_like(bn_rm)
    if bn_w is None:
        bn_w = pt.ones_like(bn_rm)
    if bn_b is None:
        bn_b = pt.zeros_like(bn_rm)
    out_dim = 1 if transpose else 0
    if bn_rm.shape[0] != conv_w.shape[out_dim]:
        extra = (" (a grouped transposed convolution keeps out_channels / groups there; "
                 "it cannot be fused)" if transpose else "")
        raise ValueError(f"fuse_conv_bn_weights: the batch norm has {bn_rm.shape[0]} features "
                         f"but the convolution weight {tuple(conv_w.shape)} has "
                         f"{conv_w.shape[out_dim]} output channels in dim {out_dim}{extra}")
    scale = pt.rsqrt(bn_rv + bn_eps)
    if transpose:
        shape = (1, -1) + (1,) * (conv_w.ndim - 2)
    else:
        shape = (-1,) + (1,) * (conv_w.ndim - 1)
    w = (conv_w * (bn_w * scale).reshape(shape)).to(w_dtype)
    b = ((conv_b - bn_rm) * scale * bn_w + bn_b).to(b_dtype)
    return (Parameter(w.detach(), conv_w.requires_grad),
            Parameter(b.detach(), conv_b.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` whose weight and bias absorb the eval-mode batch norm ``bn``
    (``BatchNorm1d`` over the linear's outputs).

    ``bn.num_features`` must equal ``linear.out_features``, or be 1 (broadcast over them).
    """
    _check_eval("fuse_linear_bn_eval", linear, bn)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise ValueError(f"fuse_linear_bn_eval: to fuse, linear.out_features "
                         f"({linear.out_features}) must equal bn.num_features "
                         f"({bn.num_features}), or bn.num_features must be 1")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The weight and bias of a linear layer followed by an eval-mode batch norm:
    ``w' = w * s[:, None]``, ``b' = (b - bn_rm) * s + bn_b`` with ``s = bn_w / sqrt(bn_rv +
    bn_eps)`` (a missing ``linear_b`` counts as zeros).

    Returns
    -------
    (Parameter, Parameter)
        Each ``requires_grad`` as ``linear_w`` / ``linear_b`` (a missing ``linear_b`` gives a
        bias that does not require grad, as PyTorch's).
    """
    import polyten as pt
    from ..parameter import Parameter
    if linear_b is None:
        linear_b = pt.zeros_like(bn_rm)
    scale = bn_w * pt.rsqrt(bn_rv + bn_eps)
    w = linear_w * scale.unsqueeze(-1)
    b = (linear_b - bn_rm) * scale + bn_b
    return (Parameter(w.detach(), linear_w.requires_grad),
            Parameter(b.detach(), linear_b.requires_grad))
