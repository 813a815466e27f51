"""Convolutions, ``unfold`` / ``fold`` and ``pad`` (``torch.nn.functional`` names and
signatures).

``conv`` and ``conv_transpose`` are composite ops of the op table, N-d over 1 to 3 spatial
dims: one node with its own derivative rule is recorded whichever kernel runs.  Their
backend-agnostic defaults below are written in polyten ops -- im2col by strided slicing (one
slice per kernel offset, stacked) and one batched ``matmul``; col2im by zero-insertion and
padding -- so every backend runs them and double backward works.  The two ops are each other's
input gradient (PyTorch's ``convolution_backward``); the weight gradient is the im2col product
:func:`_weight_grad`.  The cpu backend fuses both directions (``polyten_cpu.kernels.conv``).

Argument checks live here, once, so every backend reports the same errors, naming the call
(``conv2d``, ``conv_transpose1d``), the shapes and the fix.
"""

from __future__ import annotations

import itertools

from ...api import dtypes as _dt
from ...api import autocast as _amp
from ...api._core import Tensor, cast, describe, device_mismatch, wrap
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape

_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "unfold", "fold", "pad"]

_PROMOTE = _dt._PROMOTE
_ALL = slice(None)


# ------------------------------------------------------------------- argument parsing ---
def _ntuple(op: str, name: str, value, m: int, minimum: int) -> tuple:
    """An int or a sequence of ``m`` ints, each at least ``minimum``, as an ``m``-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        out = (value,) * m
    else:
        try:
            out = tuple(value)
        except TypeError:
            out = None
        if (out is None or len(out) != m or
                not all(isinstance(v, int) and not isinstance(v, bool) for v in out)):
            raise TypeError(f"{op}: {name} must be an int or a tuple of {m} ints, got "
                            f"{value!r}")
    if any(v < minimum for v in out):
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return out


def _prod(values) -> int:
    p = 1
    for v in values:
        p *= v
    return p


def _xs(s) -> str:
    """``(5 x 5)``: a spatial size as PyTorch's messages write it."""
    return "(" + " x ".join(str(v) for v in s) + ")"


def _sl(x, dim: int, start, stop, step=None):
    """``x[..., start:stop:step, ...]`` along ``dim`` (a view, recorded by getitem)."""
    return x[(_ALL,) * dim + (slice(start, stop, step),)]


def _pad_dims(x, pads: dict, value=0.0):
    """``x`` with ``pads[dim] = (lo, hi)`` elements of ``value`` around each listed dim; a
    negative amount crops instead.  Built with slicing and ``cat`` so that it differentiates
    (twice) on every backend."""
    from ...api.creation import full
    from ...api.shape import cat
    for d, (lo, hi) in pads.items():
        size = x.shape[d]
        if lo < 0 or hi < 0:
            x = _sl(x, d, max(-lo, 0), size - max(-hi, 0))
            lo, hi = max(lo, 0), max(hi, 0)
        if not lo and not hi:
            continue
        shape = tuple(x.shape)
        parts = []
        if lo:
            parts.append(full(shape[:d] + (lo,) + shape[d + 1:], value, dtype=x.dtype,
                              device=x.device))
        parts.append(x)
        if hi:
            parts.append(full(shape[:d] + (hi,) + shape[d + 1:], value, dtype=x.dtype,
                              device=x.device))
        x = cat(parts, d)
    return x


def _spatial_pads(pairs, value=0.0):
    return lambda x: _pad_dims(x, {2 + j: p for j, p in enumerate(pairs)}, value)


# ------------------------------------------------------------ im2col / col2im in ops ---
def _offsets(kernel):
    return itertools.product(*[range(k) for k in kernel])


def _windows(xp, kernel, stride, dilation, out):
    """For each kernel offset, the (N, C, *out) strided view of the padded ``xp`` that it
    reads (im2col without the copy)."""
    for kk in _offsets(kernel):
        key = (_ALL, _ALL) + tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                                   for i, d, s, o in zip(kk, dilation, stride, out))
        yield xp[key]


def _im2col(xp, kernel, stride, dilation, out):
    """Columns (N, C, K, *out) of the padded input ``xp``."""
    from ...api.shape import stack
    return stack(list(_windows(xp, kernel, stride, dilation, out)), 2)


def _dilate(t, stride):
    """Zeros inserted between the spatial elements of ``t`` (N, C, *s): (N, C, *((s-1)*st+1))."""
    from ...api.creation import zeros_like
    from ...api.shape import stack
    for j, s in enumerate(stride):
        if s == 1:
            continue
        d = 2 + j
        n = t.shape[d]
        z = zeros_like(t)
        t = stack([t] + [z] * (s - 1), d + 1)
        shape = tuple(t.shape)
        t = _sl(t.reshape(shape[:d] + (n * s,) + shape[d + 2:]), d, 0, (n - 1) * s + 1)
    return t


def _col2im(cols, full, kernel, stride, dilation):
    """The adjoint of :func:`_im2col`: columns (N, C, K, *out) summed onto zeros of
    (N, C, *full)."""
    acc = None
    for t, kk in enumerate(_offsets(kernel)):
        part = _dilate(cols[:, :, t], stride)
        pads = {2 + j: (i * d, f - i * d - part.shape[2 + j])
                for j, (i, d, f) in enumerate(zip(kk, dilation, full))}
        part = _pad_dims(part, pads)
        acc = part if acc is None else acc + part
    return acc


def _weight_grad(a, src, kernel, stride, dilation, groups):
    """``sum over n, l of a[n, i, l] * cols(src)[n, j, l]`` per group: the weight gradient of
    conv (a = grad output, src = padded input) and of conv_transpose (a = input, src = the
    padded grad output).  Result (A, B / groups, *kernel)."""
    n, ca = a.shape[:2]
    cb = src.shape[1]
    out = tuple(a.shape[2:])
    L = _prod(out)
    K = _prod(kernel)
    cols = _im2col(src, kernel, stride, dilation, out).reshape(n, groups, (cb // groups) * K, L)
    aa = a.reshape(n, groups, ca // groups, L)
    return (aa @ cols.mT).sum(dim=0).reshape((ca, cb // groups) + tuple(kernel))


def _bias_grad(g):
    return g.sum(dim=(0,) + tuple(range(2, g.ndim)))


# ------------------------------------------------------------------------- the ops ---
def _conv_default(x, weight, bias, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    o = weight.shape[0]
    kernel = tuple(weight.shape[2:])
    xp = _spatial_pads(padding)(x)
    out = tuple((p - d * (k - 1) - 1) // s + 1
                for p, k, s, d in zip(xp.shape[2:], kernel, stride, dilation))
    cols = _im2col(xp, kernel, stride, dilation, out)
    cols = cols.reshape(n, groups, (c // groups) * _prod(kernel), _prod(out))
    res = (weight.reshape(groups, o // groups, -1) @ cols).reshape((n, o) + out)
    if bias is not None:
        res = res + bias.reshape((o,) + (1,) * len(out))
    return res


def _full_size(insize, kernel, stride, dilation):
    return tuple((i - 1) * s + d * (k - 1) + 1
                 for i, k, s, d in zip(insize, kernel, stride, dilation))


def _conv_transpose_default(x, weight, bias, stride, padding, output_size, dilation, groups):
    n, cin = x.shape[:2]
    kernel = tuple(weight.shape[2:])
    cout = weight.shape[1] * groups
    insize = tuple(x.shape[2:])
    wm = weight.reshape(groups, cin // groups, -1)
    cols = (wm.mT @ x.reshape(n, groups, cin // groups, _prod(insize)))
    cols = cols.reshape((n, cout, _prod(kernel)) + insize)
    full = _full_size(insize, kernel, stride, dilation)
    res = _col2im(cols, full, kernel, stride, dilation)
    res = _spatial_pads([(-p, o - (f - p)) for p, o, f in zip(padding, output_size, full)])(res)
    if bias is not None:
        res = res + bias.reshape((cout,) + (1,) * len(insize))
    return res


register_default("conv", _conv_default)
register_default("conv_transpose", _conv_transpose_default)
_conv_k = kernels("conv")
_conv_transpose_k = kernels("conv_transpose")
_conv_rule = _rule("conv")
_conv_transpose_rule = _rule("conv_transpose")


def _needs(x, weight, bias):
    return (x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)


def _conv_op(x, weight, bias, stride, padding, dilation, groups):
    """The ``conv`` op on checked tensors of one device and dtype (also the input gradient of
    ``conv_transpose``, so that double backward records itself)."""
    dev, dt = x._device, x._dtype
    k = _conv_k[dev.backend]
    if k is None:
        out = _conv_default(wrap(x._data, dev, dt), wrap(weight._data, dev, dt),
                            None if bias is None else wrap(bias._data, dev, dt),
                            stride, padding, dilation, groups)
        out = wrap(out._data, dev, dt)
    else:
        out = wrap(k(x._data, weight._data, None if bias is None else bias._data, stride,
                     padding, dilation, groups), dev, dt)
    if (x._ag is not None or weight._ag is not None or
            (bias is not None and bias._ag is not None)) and _grad_on():
        _record(_conv_rule, out, (x, weight, bias),
                {"stride": stride, "padding": padding, "dilation": dilation,
                 "groups": groups, "needs": _needs(x, weight, bias)})
    return out


def _conv_transpose_op(x, weight, bias, stride, padding, output_size, dilation, groups):
    """The ``conv_transpose`` op on checked tensors (also conv's input gradient)."""
    dev, dt = x._device, x._dtype
    k = _conv_transpose_k[dev.backend]
    if k is None:
        out = _conv_transpose_default(wrap(x._data, dev, dt), wrap(weight._data, dev, dt),
                                      None if bias is None else wrap(bias._data, dev, dt),
                                      stride, padding, output_size, dilation, groups)
        out = wrap(out._data, dev, dt)
    else:
        out = wrap(k(x._data, weight._data, None if bias is None else bias._data, stride,
                     padding, output_size, dilation, groups), dev, dt)
    if (x._ag is not None or weight._ag is not None or
            (bias is not None and bias._ag is not None)) and _grad_on():
        _record(_conv_transpose_rule, out, (x, weight, bias),
                {"stride": stride, "padding": padding, "output_size": output_size,
                 "dilation": dilation, "groups": groups, "needs": _needs(x, weight, bias)})
    return out


# ---------------------------------------------------- derivative formulas (see derivatives) ---
def conv_grad_input(n, g):
    """conv's input gradient: conv_transpose of ``g`` back onto the input's size."""
    x, w = n.inputs[0], n.inputs[1]
    p = n.params
    return _conv_transpose_op(g, w, None, p["stride"], tuple(lo for lo, _ in p["padding"]),
                              tuple(x.shape[2:]), p["dilation"], p["groups"])


def conv_grad_weight(n, g):
    x, w = n.inputs[0], n.inputs[1]
    p = n.params
    return _weight_grad(g, _spatial_pads(p["padding"])(x), tuple(w.shape[2:]), p["stride"],
                        p["dilation"], p["groups"])


def _full_grad(n, g):
    """conv_transpose's ``g`` placed back on the full (uncropped) result."""
    x, w = n.inputs[0], n.inputs[1]
    p = n.params
    full = _full_size(tuple(x.shape[2:]), tuple(w.shape[2:]), p["stride"], p["dilation"])
    return [(q, f - q - o) for q, f, o in zip(p["padding"], full, g.shape[2:])]


def conv_transpose_grad_input(n, g):
    """conv_transpose's input gradient: conv of ``g`` (on the full result) with the weight."""
    w = n.inputs[1]
    p = n.params
    pairs = _full_grad(n, g)
    # the part of g past the full result (output_padding) reads nothing: crop it first
    g = _spatial_pads([(0, min(hi, 0)) for _, hi in pairs])(g)
    return _conv_op(g, w, None, p["stride"], tuple((lo, max(hi, 0)) for lo, hi in pairs),
                    p["dilation"], p["groups"])


def conv_transpose_grad_weight(n, g):
    x, w = n.inputs[0], n.inputs[1]
    p = n.params
    gfull = _spatial_pads(_full_grad(n, g))(g)
    return _weight_grad(x, gfull, tuple(w.shape[2:]), p["stride"], p["dilation"], p["groups"])


def conv_grad_bias(n, g):
    return _bias_grad(g)


# ------------------------------------------------------------------------ checking ---
def _operands(op, input, weight, bias, m):
    """Type, rank, device and dtype checks shared by the convolutions; returns the tensors
    cast to one computation dtype and whether the input was batched."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(t)}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a tensor or None, got {describe(bias)}")
    layout = ("L",) if m == 1 else ("H", "W") if m == 2 else ("D", "H", "W")
    sx, sw = tuple(input.shape), tuple(weight.shape)
    if len(sx) not in (m + 1, m + 2):
        raise ValueError(f"{op}: expected a {m + 1}-D (unbatched: C, {', '.join(layout)}) or "
                         f"{m + 2}-D (batched: N, C, {', '.join(layout)}) input, got shape "
                         f"{fmt_shape(sx)}")
    if len(sw) != m + 2:
        raise ValueError(f"{op}: weight must be {m + 2}-D, got shape {fmt_shape(sw)}")
    dev = input._device
    if weight._device is not dev or (bias is not None and bias._device is not dev):
        raise device_mismatch(op, (input, weight, bias))
    dt = input._dtype
    for t in (weight, bias):
        if t is not None and t._dtype is not dt:
            dt = _PROMOTE[(dt, t._dtype)]
    if dt.kind not in "iuf":
        raise TypeError(f"{op}: {dt.name} tensors are not supported (input {input._dtype.name}"
                        f", weight {weight._dtype.name}); cast first, e.g. "
                        f"x.to(polyten.float32)")

    def as_dt(t):
        return t if t is None or t._dtype is dt else _recast(t, dt)
    return as_dt(input), as_dt(weight), as_dt(bias), len(sx) == m + 2


def _recast(t, dt):
    """``t`` in dtype ``dt``, keeping its graph (a recorded cast) when it needs a gradient."""
    if t._ag is not None:
        return t.to(dt)
    return wrap(cast(t, dt), t._device, dt)


def _check_groups(op, groups):
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def _conv_padding(op, padding, kernel, stride, dilation, m):
    """(lo, hi) pairs from an int, a tuple, 'valid' or 'same' (PyTorch: the extra element of
    an odd total goes to the end)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * m
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}); use stride=1, or give the "
                                 f"padding as numbers")
            return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                         for k, d in zip(kernel, dilation))
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple of {m} "
                         f"ints, got {padding!r}")
    p = _ntuple(op, "padding", padding, m, 0)
    return tuple((v, v) for v in p)


def _check_conv(op, x, w, bias, padding, dilation, groups):
    sx, sw = tuple(x.shape), tuple(w.shape)
    c, o = sx[1], sw[0]
    if c % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input's {c} channels "
                         f"(input {fmt_shape(sx)})")
    if o % groups:
        raise ValueError(f"{op}: groups={groups} must divide the weight's {o} output "
                         f"channels (weight {fmt_shape(sw)})")
    if sw[1] * groups != c:
        raise ValueError(f"{op}: input has {c} channels but weight expects {sw[1] * groups} "
                         f"(groups={groups}): input {fmt_shape(sx)}, weight {fmt_shape(sw)} "
                         f"(out_channels, in_channels/groups, *kernel); give the input "
                         f"{sw[1] * groups} channels or the weight shape ({o}, {c // groups}, "
                         f"...)")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"{op}: bias must have shape ({o},) (out_channels), got "
                         f"{fmt_shape(bias.shape)}")
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(sx[2:], padding))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(sw[2:], dilation))
    if any(p < e for p, e in zip(padded, eff)):
        raise ValueError(f"{op}: the padded input {_xs(padded)} is smaller than the "
                         f"(dilated) kernel {_xs(eff)}: input {fmt_shape(sx)}, weight "
                         f"{fmt_shape(sw)}, padding {tuple(padding)}, dilation {dilation}; "
                         f"pad the input or use a smaller kernel")


def _conv_nd(op, m, input, weight, bias, stride, padding, dilation, groups):
    if _AMP[0]:
        input, weight, bias = _amp.lower(input, weight, bias)
    x, w, b, batched = _operands(op, input, weight, bias, m)
    _check_groups(op, groups)
    stride = _ntuple(op, "stride", stride, m, 1)
    dilation = _ntuple(op, "dilation", dilation, m, 1)
    pairs = _conv_padding(op, padding, tuple(w.shape[2:]), stride, dilation, m)
    if not batched:
        x = x.unsqueeze(0)
    _check_conv(op, x, w, b, pairs, dilation, groups)
    out = _conv_op(x, w, b, stride, pairs, dilation, groups)
    return out if batched else out.squeeze(0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution (cross-correlation, as PyTorch) of ``input`` (N, C_in, L) or
    (C_in, L) with ``weight`` (C_out, C_in / groups, kL), plus ``bias`` (C_out,).

    ``padding``: an int, a 1-tuple, ``'valid'`` (none) or ``'same'`` (output length = input
    length; stride 1 only).  The result is (N, C_out, L_out) with
    ``L_out = (L + 2 padding - dilation (kL - 1) - 1) // stride + 1``.
    """
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) of ``input`` (N, C_in, H, W) or
    (C_in, H, W) with ``weight`` (C_out, C_in / groups, kH, kW), plus ``bias`` (C_out,).

    ``stride``, ``dilation``: an int or a pair; ``padding``: an int, a pair, ``'valid'`` or
    ``'same'`` (output size = input size; stride 1 only; an odd total padding puts the extra
    element at the end, as PyTorch); ``groups`` splits the channels into independent
    convolutions.  Computed by im2col and one BLAS product (no loop over output positions).
    """
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D convolution of ``input`` (N, C_in, D, H, W) or (C_in, D, H, W) with ``weight``
    (C_out, C_in / groups, kD, kH, kW), plus ``bias`` (C_out,); arguments as
    :func:`conv2d` with triples."""
    return _conv_nd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose_nd(op, m, input, weight, bias, stride, padding, output_padding, groups,
                       dilation):
    if _AMP[0]:
        input, weight, bias = _amp.lower(input, weight, bias)
    x, w, b, batched = _operands(op, input, weight, bias, m)
    _check_groups(op, groups)
    stride = _ntuple(op, "stride", stride, m, 1)
    dilation = _ntuple(op, "dilation", dilation, m, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {m} ints (PyTorch has "
                         f"no string padding for transposed convolutions), got {padding!r}")
    pad = _ntuple(op, "padding", padding, m, 0)
    opad = _ntuple(op, "output_padding", output_padding, m, 0)
    if not batched:
        x = x.unsqueeze(0)
    sx, sw = tuple(x.shape), tuple(w.shape)
    c = sx[1]
    if c % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input's {c} channels "
                         f"(input {fmt_shape(sx)})")
    if sw[0] != c:
        raise ValueError(f"{op}: input has {c} channels but weight expects {sw[0]} "
                         f"(groups={groups}): input {fmt_shape(sx)}, weight {fmt_shape(sw)} "
                         f"(in_channels, out_channels/groups, *kernel); give the input "
                         f"{sw[0]} channels or the weight shape ({c}, ...)")
    cout = sw[1] * groups
    if b is not None and tuple(b.shape) != (cout,):
        raise ValueError(f"{op}: bias must have shape ({cout},) (out_channels), got "
                         f"{fmt_shape(b.shape)}")
    for op_, s, d in zip(opad, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding={opad}, stride={stride}, "
                             f"dilation={dilation}")
    full = _full_size(sx[2:], sw[2:], stride, dilation)
    size = tuple(f - 2 * p + q for f, p, q in zip(full, pad, opad))
    if any(s < 1 for s in size):
        raise ValueError(f"{op}: the output size {_xs(size)} is too small (input "
                         f"{fmt_shape(sx)}, weight {fmt_shape(sw)}, stride {stride}, padding "
                         f"{pad}, dilation {dilation}); reduce the padding")
    out = _conv_transpose_op(x, w, b, stride, pad, size, dilation, groups)
    return out if batched else out.squeeze(0)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """1-D transposed convolution (the gradient of :func:`conv1d` with respect to its input)
    of ``input`` (N, C_in, L) or (C_in, L) with ``weight`` (C_in, C_out / groups, kL).

    The result has length ``(L - 1) stride - 2 padding + dilation (kL - 1) + output_padding
    + 1``; ``output_padding`` (smaller than stride or dilation) picks among the input sizes
    that a strided conv1d maps to ``L``.
    """
    return _conv_transpose_nd("conv_transpose1d", 1, input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """2-D transposed convolution (the gradient of :func:`conv2d` with respect to its input)
    of ``input`` (N, C_in, H, W) or (C_in, H, W) with ``weight`` (C_in, C_out / groups, kH,
    kW); see :func:`conv_transpose1d` for the output size."""
    return _conv_transpose_nd("conv_transpose2d", 2, input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """3-D transposed convolution of ``input`` (N, C_in, D, H, W) or (C_in, D, H, W) with
    ``weight`` (C_in, C_out / groups, kD, kH, kW); see :func:`conv_transpose1d`."""
    return _conv_transpose_nd("conv_transpose3d", 3, input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


# --------------------------------------------------------------------- unfold / fold ---
def _fold_args(op, kernel_size, dilation, padding, stride):
    return (_ntuple(op, "kernel_size", kernel_size, 2, 1), _ntuple(op, "dilation", dilation, 2, 1),
            _ntuple(op, "padding", padding, 2, 0), _ntuple(op, "stride", stride, 2, 1))


def _blocks(op, size, kernel, dilation, padding, stride, what):
    blocks = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                   for s, k, d, p, st in zip(size, kernel, dilation, padding, stride))
    if any(b < 1 for b in blocks):
        padded = tuple(s + 2 * p for s, p in zip(size, padding))
        eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ValueError(f"{op}: the padded {what} {_xs(padded)} is smaller than the (dilated) "
                         f"kernel {_xs(eff)}; pad more or use a smaller kernel")
    return blocks


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks (im2col): ``input`` (N, C, H, W) or (C, H, W) becomes (N, C * kH * kW,
    L), one column per block position (L blocks, row-major), as ``torch.nn.functional.unfold``.
    """
    op = "unfold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    k, d, p, s = _fold_args(op, kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                         f"shape {fmt_shape(input.shape)}")
    batched = input.ndim == 4
    x = input if batched else input.unsqueeze(0)
    n, c = x.shape[:2]
    out = _blocks(op, tuple(x.shape[2:]), k, d, p, s, "input")
    cols = _im2col(_spatial_pads(((p[0], p[0]), (p[1], p[1])))(x), k, s, d, out)
    cols = cols.reshape(n, c * k[0] * k[1], out[0] * out[1])
    return cols if batched else cols.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of :func:`unfold` (col2im): ``input`` (N, C * kH * kW, L) or (C * kH * kW,
    L) summed into (N, C, *output_size); overlapping blocks add up."""
    op = "fold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    size = _ntuple(op, "output_size", output_size, 2, 1)
    k, d, p, s = _fold_args(op, kernel_size, dilation, padding, stride)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D (C * kH * kW, L) or 3-D (N, C * kH * kW, L) "
                         f"input, got shape {fmt_shape(input.shape)}")
    batched = input.ndim == 3
    cols = input if batched else input.unsqueeze(0)
    n, ck, L = cols.shape
    K = k[0] * k[1]
    if ck % K:
        raise ValueError(f"{op}: expected size of input's dimension 1 to be divisible by the "
                         f"product of kernel_size {k} = {K}, but got input of shape "
                         f"{fmt_shape(input.shape)}")
    blocks = _blocks(op, size, k, d, p, s, "output_size")
    if L != blocks[0] * blocks[1]:
        raise ValueError(f"{op}: expected the input's last dimension to match the number of "
                         f"sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]} "
                         f"(output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
                         f"stride={s}), but got input of shape {fmt_shape(input.shape)}")
    full = tuple(v + 2 * q for v, q in zip(size, p))
    res = _col2im(cols.reshape((n, ck // K, K) + blocks), full, k, s, d)
    res = _spatial_pads(((-p[0], -p[0]), (-p[1], -p[1])))(res)
    return res if batched else res.squeeze(0)


# ------------------------------------------------------------------------------ pad ---
_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad ``input`` (``torch.nn.functional.pad``).

    ``pad`` lists (left, right) amounts from the last dim backwards: ``(1, 1)`` pads the last
    dim, ``(1, 1, 2, 0)`` also the one before.  ``mode``: ``'constant'`` (``value``, default
    0; any dims; negative amounts crop), ``'reflect'`` (mirror without repeating the edge;
    each amount smaller than the dim), ``'replicate'`` (repeat the edge) or ``'circular'``
    (wrap around; each amount at most the dim).  The non-constant modes pad the last 1 to 3
    dims of a batched or unbatched input, as PyTorch.
    """
    op = "pad"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    try:
        amounts = tuple(pad)
    except TypeError:
        amounts = None
    if (amounts is None or len(amounts) % 2 or
            not all(isinstance(v, int) and not isinstance(v, bool) for v in amounts)):
        raise TypeError(f"{op}: pad must be a sequence of ints of even length (left, right "
                        f"for the last dim, then the dim before, ...), got {pad!r}")
    nd = input.ndim
    npad = len(amounts) // 2
    if npad > nd:
        raise ValueError(f"{op}: pad {amounts} has {npad} (left, right) pairs but the input "
                         f"has only {nd} dims (shape {fmt_shape(input.shape)})")
    if mode not in _PAD_MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(repr(m) for m in _PAD_MODES)}"
                         f", got {mode!r}")
    pairs = {nd - 1 - i: (amounts[2 * i], amounts[2 * i + 1]) for i in range(npad)}
    if mode == "constant":
        return _pad_dims(input, pairs, 0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"{op}: padding mode {mode!r} doesn't take in value argument")
    if npad > 3 or nd not in (npad + 1, npad + 2):
        raise NotImplementedError(
            f"{op}: {mode} padding of {npad} dims needs a {npad + 1}-D (unbatched) or "
            f"{npad + 2}-D (batched) input, got shape {fmt_shape(input.shape)} (only the last "
            f"1 to 3 dims of such inputs can be padded in this mode, as PyTorch)")
    from ...api.shape import cat, flip
    x = input
    for d, (lo, hi) in pairs.items():
        size = x.shape[d]
        if lo < 0 or hi < 0:
            raise ValueError(f"{op}: {mode} padding takes non-negative amounts, got {amounts}; "
                             f"crop with slicing first")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(f"{op}: reflect padding must be smaller than the padded dim: "
                             f"padding ({lo}, {hi}) on dim {d} of size {size} (input shape "
                             f"{fmt_shape(input.shape)})")
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError(f"{op}: circular padding can be at most the padded dim: padding "
                             f"({lo}, {hi}) on dim {d} of size {size} (input shape "
                             f"{fmt_shape(input.shape)})")
        if not lo and not hi:
            continue
        parts = []
        if mode == "reflect":
            left = flip(_sl(x, d, 1, lo + 1), (d,)) if lo else None
            right = flip(_sl(x, d, size - 1 - hi, size - 1), (d,)) if hi else None
        elif mode == "replicate":
            def edge(a, b, n):
                e = _sl(x, d, a, b)
                shape = list(e.shape)
                shape[d] = n
                return e.expand(tuple(shape))
            left = edge(0, 1, lo) if lo else None
            right = edge(size - 1, size, hi) if hi else None
        else:
            left = _sl(x, d, size - lo, size) if lo else None
            right = _sl(x, d, 0, hi) if hi else None
        if left is not None:
            parts.append(left)
        parts.append(x)
        if right is not None:
            parts.append(right)
        x = cat(parts, d)
    return x
