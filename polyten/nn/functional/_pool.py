"""Pooling (``torch.nn.functional`` names, signatures and output sizes).

``max_pool`` is a composite op of the op table (values and int64 indices; one node whose rule
adds the gradient back at the picked positions).  Its default runs a maximum over the kernel
offsets with strided slices of the padded input -- K vectorised passes, no loop over output
positions -- and the cpu backend fuses it (as_strided windows, and a backward that scatters
with one ``bincount``, or one assignment when the windows are disjoint).  Average pooling is
a sum of the K strided slices divided by PyTorch's divisor: already K vectorised adds whose
gradients are strided views, so it stays in plain polyten ops; adaptive average pooling is one
small averaging-matrix product per pooled dim.
"""

from __future__ import annotations

import itertools

from ...api._core import Tensor, describe
from ...api import dtypes as _dt
from ...api.dtypes import iinfo
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape
from ._conv import _ntuple, _prod, _spatial_pads, _windows, _xs

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_pool3d_with_indices", "adaptive_avg_pool3d", "adaptive_max_pool3d",
           "lp_pool1d", "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d",
           "max_unpool3d"]

_LAYOUT = {1: "L", 2: "H, W", 3: "D, H, W"}


# the pools' constant tensors (averaging matrices, window offsets, divisors) by what they
# hold and the device and backend of the input (a reloaded backend gets its own): built from
# Python lists, each is a host-to-device copy on a GPU, which a training step should not wait
# for on every call
_CONSTANTS: dict = {}
_MAX_CONSTANTS = 256


def _constant(what: tuple, x, build):
    key = what + (x._device, x._device.backend)
    t = _CONSTANTS.get(key)
    if t is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        t = _CONSTANTS[key] = build()
    return t


def _input(op, input, m, kinds="iuf", empty=False):
    """The (N, C, *spatial) tensor and whether ``input`` was batched.  Only N may be 0
    unless ``empty`` (PyTorch's rule for every pooling but adaptive average pooling)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    if input.ndim not in (m + 1, m + 2):
        raise ValueError(f"{op}: expected a {m + 1}-D (unbatched: C, {_LAYOUT[m]}) or {m + 2}-D "
                         f"(batched: N, C, {_LAYOUT[m]}) input, got shape "
                         f"{fmt_shape(input.shape)}")
    if input.dtype.kind not in kinds:
        need = "floating-point" if kinds == "f" else "real"
        raise TypeError(f"{op}: expected a {need} tensor, got {input.dtype.name} (shape "
                        f"{fmt_shape(input.shape)}); cast first, e.g. x.to(polyten.float32)")
    batched = input.ndim == m + 2
    if not empty and 0 in input.shape[input.ndim - m - 1:]:
        raise ValueError(f"{op}: input of shape {fmt_shape(input.shape)} has an empty "
                         f"{'channel' if input.shape[-m - 1] == 0 else 'spatial'} dim; only "
                         "the batch dim may be empty (drop the empty input before pooling)")
    return (input if batched else input.unsqueeze(0)), batched


def _pool_sizes(op, x, kernel, stride, padding, dilation, ceil_mode):
    """Output sizes and (lo, hi) paddings (hi includes ceil_mode's extension), with
    PyTorch's checks."""
    size = tuple(x.shape[2:])
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(f"{op}: pad should be at most half of effective kernel size, but "
                             f"got padding={padding}, kernel_size={kernel} and dilation="
                             f"{dilation}")
    out = []
    for L, k, s, p, d in zip(size, kernel, stride, padding, dilation):
        num = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
        o = num // s + 1
        if ceil_mode and (o - 1) * s >= L + p:
            o -= 1  # the last window must start inside the input or its left padding
        out.append(o)
    out = tuple(out)
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: input {fmt_shape(x.shape)} is too small for kernel_size="
                         f"{kernel}, stride={stride}, padding={padding}, dilation={dilation}: "
                         f"the output size would be {_xs(out)}; use a smaller kernel or pad")
    pairs = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - L - p))
                  for L, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, out))
    return out, pairs


def _stride(op, stride, kernel, m):
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        return kernel  # PyTorch's default: non-overlapping windows
    return _ntuple(op, "stride", stride, m, 1)


# ------------------------------------------------------------------------ max_pool op ---
def _lowest(dt):
    return float("-inf") if dt.kind == "f" else iinfo(dt).min


def _picked_index(arg, kernel, stride, pairs, dilation, size, device):
    """Flat input positions (per (n, c) plane) of the winners ``arg`` (kernel offset indices,
    row-major); a winner in the padding (nothing beat the lowest value) becomes the window's
    first element inside the input, as PyTorch."""
    from ...api.creation import arange
    from ...api.elementwise import where
    m = len(kernel)
    out = tuple(arg.shape[2:])
    sstr = [_prod(size[j + 1:]) for j in range(m)]
    idx = bad = None
    rest = arg
    for j in reversed(range(m)):
        ij = rest % kernel[j]
        rest = rest // kernel[j]
        shape = (out[j],) + (1,) * (m - 1 - j)
        start = (arange(out[j], device=device) * stride[j] - pairs[j][0]).reshape(shape)
        pos = start + ij * dilation[j]
        if pairs[j] != (0, 0):
            o = (pos < 0) | (pos >= size[j])
            bad = o if bad is None else bad | o
        idx = pos * sstr[j] if idx is None else idx + pos * sstr[j]
    if bad is not None and bool(bad.any()):
        first = None
        for j in range(m):
            o = arange(out[j], device=device) * stride[j] - pairs[j][0]
            i0 = ((dilation[j] - 1 - o) // dilation[j]).clamp(min=0)  # ceil(-o / d), >= 0
            term = ((o + i0 * dilation[j]) * sstr[j]).reshape((out[j],) + (1,) * (m - 1 - j))
            first = term if first is None else first + term
        idx = where(bad, first, idx)
    return idx.expand(tuple(arg.shape)).contiguous()


def _max_pool_default(x, kernel, stride, pairs, dilation):
    from ...api.creation import zeros
    from ...api.elementwise import isnan, where
    xp = _spatial_pads(pairs, _lowest(x.dtype))(x)
    out = tuple((p - d * (k - 1) - 1) // s + 1
                for p, k, s, d in zip(xp.shape[2:], kernel, stride, dilation))
    floating = x.dtype.kind == "f"
    best = arg = None
    for t, v in enumerate(_windows(xp, kernel, stride, dilation, out)):
        if best is None:
            best = v.clone()
            arg = zeros(tuple(v.shape), dtype="int64", device=x.device)
            continue
        # strict '>' keeps the first maximum; NaN always wins (the last NaN), as PyTorch
        take = v > best
        if floating:
            take = take | isnan(v)
        best = where(take, v, best)
        arg = where(take, t, arg)
    idx = _picked_index(arg, kernel, stride, pairs, dilation, tuple(x.shape[2:]), x.device)
    return best, idx


register_default("max_pool", _max_pool_default)
_max_pool_k = kernels("max_pool")
_max_pool_rule = _rule("max_pool")


def _max_pool_op(x, kernel, stride, pairs, dilation):
    from ...api.tensor import wrap
    from ...api.dtypes import int64
    dev, dt = x._device, x._dtype
    k = _max_pool_k[dev.backend]
    if k is None:
        v, i = _max_pool_default(wrap(x._data, dev, dt), kernel, stride, pairs, dilation)
        values, indices = wrap(v._data, dev, dt), wrap(i._data, dev, int64)
    else:
        v, i = k(x._data, kernel, stride, pairs, dilation)
        values, indices = wrap(v, dev, dt), wrap(i, dev, int64)
    if x._ag is not None and _grad_on():
        overlap = any(s < d * (kk - 1) + 1 for s, d, kk in zip(stride, dilation, kernel))
        # "pool": the window geometry, for backward kernels that walk the windows (CUDA)
        _record(_max_pool_rule, values, (x,), {
            "indices": indices._data, "shape": tuple(x.shape), "overlap": overlap,
            "pool": {"kernel_size": tuple(kernel), "stride": tuple(stride),
                     "lo": tuple(lo for lo, _ in pairs), "dilation": tuple(dilation)}})
    return values, indices


def _max_pool_nd(op, m, input, kernel_size, stride, padding, dilation, ceil_mode,
                 return_indices):
    x, batched = _input(op, input, m)
    kernel = _ntuple(op, "kernel_size", kernel_size, m, 1)
    stride = _stride(op, stride, kernel, m)
    padding = _ntuple(op, "padding", padding, m, 0)
    dilation = _ntuple(op, "dilation", dilation, m, 1)
    _, pairs = _pool_sizes(op, x, kernel, stride, padding, dilation, bool(ceil_mode))
    values, indices = _max_pool_op(x, kernel, stride, pairs, dilation)
    if not batched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return (values, indices) if return_indices else values


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling of ``input`` (N, C, L) or (C, L): the maximum of each window of
    ``kernel_size`` elements (``dilation`` apart), every ``stride`` (default: kernel_size)
    elements, over an input padded by ``padding`` on both sides (the padding never wins).

    ``ceil_mode``: round the output length up (a last, partial window).  With
    ``return_indices`` also the position of each maximum in the input (as PyTorch: the first
    maximum of the window, NaN propagates).
    """
    return _max_pool_nd("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                        ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling of ``input`` (N, C, H, W) or (C, H, W); see :func:`max_pool1d`.
    Indices are flat positions ``h * W + w`` in each (n, c) plane of the input."""
    return _max_pool_nd("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                        ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling of ``input`` (N, C, D, H, W) or (C, D, H, W); see :func:`max_pool1d`.
    Indices are flat positions ``(d * H + h) * W + w`` in each (n, c) volume of the input."""
    return _max_pool_nd("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                        ceil_mode, return_indices)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """:func:`max_pool3d` returning ``(values, indices)``."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """:func:`max_pool1d` returning ``(values, indices)``."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """:func:`max_pool2d` returning ``(values, indices)``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ----------------------------------------------------------------------------- avg_pool ---
def _avg_pool_nd(op, m, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    from ...api.creation import tensor
    x, batched = _input(op, input, m, "f")
    kernel = _ntuple(op, "kernel_size", kernel_size, m, 1)
    stride = _stride(op, stride, kernel, m)
    padding = _ntuple(op, "padding", padding, m, 0)
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise ValueError(f"{op}: pad should be at most half of kernel size, but got "
                             f"padding={padding} and kernel_size={kernel}")
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, int) or
                                         divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int or None, got "
                         f"{divisor_override!r}")
    ones = (1,) * m
    out, pairs = _pool_sizes(op, x, kernel, stride, padding, ones, bool(ceil_mode))
    xp = _spatial_pads(pairs)(x)
    acc = None
    for v in _windows(xp, kernel, stride, ones, out):
        acc = v if acc is None else acc + v
    if divisor_override is not None:
        res = acc / divisor_override
    else:
        # PyTorch's divisor: the window clipped to the padded input (count_include_pad) or
        # to the input itself; rectangular, so one factor per dim
        counts = []
        for L, k, s, p, o in zip(x.shape[2:], kernel, stride, padding, out):
            c = []
            for i in range(o):
                start = i * s - p
                end = min(start + k, L + p)
                c.append(end - start if count_include_pad
                         else min(end, L) - max(start, 0))
            counts.append(c)
        if all(len(set(c)) == 1 for c in counts):
            res = acc / _prod(c[0] for c in counts)
        else:
            div = None
            for j, c in enumerate(counts):
                t = _constant(("count", tuple(c), x._dtype), x,
                              lambda c=c: tensor(c, dtype=x.dtype, device=x.device)).reshape(
                    (len(c),) + (1,) * (m - 1 - j))
                div = t if div is None else div * t
            res = acc / div
    return res if batched else res.squeeze(0)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """1-D average pooling of ``input`` (N, C, L) or (C, L); windows as :func:`max_pool1d`
    (no dilation).  ``count_include_pad``: the zero padding counts in the divisor."""
    return _avg_pool_nd("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """2-D average pooling of ``input`` (N, C, H, W) or (C, H, W).  The divisor is the window
    size clipped to the padded input (``count_include_pad=True``) or to the input, or
    ``divisor_override``."""
    return _avg_pool_nd("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """3-D average pooling of ``input`` (N, C, D, H, W) or (C, D, H, W); see
    :func:`avg_pool2d`."""
    return _avg_pool_nd("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override)


# ----------------------------------------------------------------------------- adaptive ---
def _output_size(op, output_size, size, m):
    """``output_size`` (an int, or a tuple whose None entries keep the input's size)."""
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        out = (output_size,) * m
    else:
        try:
            out = tuple(output_size)
        except TypeError:
            out = ()
        if len(out) != m:
            raise TypeError(f"{op}: output_size must be an int or a tuple of {m} ints (None "
                            f"keeps the input's size), got {output_size!r}")
        out = tuple(s if o is None else o for o, s in zip(out, size))
    if not all(isinstance(o, int) and not isinstance(o, bool) and o >= 1 for o in out):
        raise ValueError(f"{op}: output_size must hold positive ints, got {output_size!r}")
    return out


def _windows_1d(L, o):
    """PyTorch's adaptive windows: [floor(i L / o), ceil((i + 1) L / o))."""
    return [((i * L) // o, -(-((i + 1) * L) // o)) for i in range(o)]


def _adaptive_avg(op, m, input, output_size):
    from ...api.creation import tensor
    x, batched = _input(op, input, m, "f", empty=True)
    size = tuple(x.shape[2:])
    out = _output_size(op, output_size, size, m)
    if any(s == 0 for s in size):
        raise ValueError(f"{op}: input {fmt_shape(input.shape)} has an empty spatial dim")
    for j in range(m):
        L, o = size[j], out[j]
        if L == o:
            continue
        # one (o, L) averaging matrix per dim: a BLAS product instead of o window means
        def build(L=L, o=o):
            rows = [[1.0 / (b - a) if a <= i < b else 0.0 for i in range(L)]
                    for a, b in _windows_1d(L, o)]
            return tensor(rows, dtype=x.dtype, device=x.device)
        A = _constant(("avg", L, o, x._dtype), x, build)
        d = 2 + j
        if d == x.ndim - 1:
            x = x @ A.mT
        else:
            x = (A @ x.movedim(d, -2)).movedim(-2, d)
    return x if batched else x.squeeze(0)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average pooling of ``input`` (N, C, L) or (C, L) to length ``output_size``: window i
    covers ``[floor(i L / out), ceil((i + 1) L / out))``, as PyTorch."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling of ``input`` (N, C, H, W) or (C, H, W) to ``output_size`` (an int, a
    pair, None entries keep that dim); windows as :func:`adaptive_avg_pool1d` per dim."""
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def _adaptive_max(op, m, input, output_size, return_indices):
    from ...api.creation import tensor, zeros
    from ...api.elementwise import isnan, where
    from ...api.indexing import index_select
    x, batched = _input(op, input, m)
    size = tuple(x.shape[2:])
    out = _output_size(op, output_size, size, m)
    if any(s == 0 for s in size):
        raise ValueError(f"{op}: input {fmt_shape(input.shape)} has an empty spatial dim")
    if all(L % o == 0 for L, o in zip(size, out)):
        # equal windows: plain max pooling (the fused op)
        kernel = tuple(L // o for L, o in zip(size, out))
        values, indices = _max_pool_op(x, kernel, kernel, ((0, 0),) * m, (1,) * m)
    else:
        # windows of different lengths: for each offset t < the longest window, the element
        # min(start + t, end - 1) of every window (a repeat of the last one never wins: '>')
        wins = [_windows_1d(L, o) for L, o in zip(size, out)]
        kmax = [max(b - a for a, b in w) for w in wins]
        sstr = [_prod(size[j + 1:]) for j in range(m)]
        values = indices = None
        for ts in itertools.product(*[range(k) for k in kmax]):
            v = x
            pos = None
            for j, t in enumerate(ts):
                r = _constant(("max", size[j], out[j], t), x, lambda w=wins[j], t=t:
                              tensor([min(a + t, b - 1) for a, b in w], dtype="int64",
                                     device=x.device))
                v = index_select(v, 2 + j, r)
                term = (r * sstr[j]).reshape((out[j],) + (1,) * (m - 1 - j))
                pos = term if pos is None else pos + term
            if values is None:
                values = v
                indices = pos.expand(tuple(v.shape)) + zeros(tuple(v.shape), dtype="int64",
                                                             device=x.device)
                continue
            take = v > values
            if x.dtype.kind == "f":
                take = take | isnan(v)
            values = where(take, v, values)
            indices = where(take, pos, indices)
    if not batched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return (values, indices) if return_indices else values


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of ``input`` (N, C, L) or (C, L) to length ``output_size`` (PyTorch's
    adaptive windows); with ``return_indices`` also the positions of the maxima."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of ``input`` (N, C, H, W) or (C, H, W) to ``output_size``; indices are
    flat ``h * W + w`` positions in each (n, c) plane."""
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average pooling of ``input`` (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (an
    int or a triple, None entries keep that dim)."""
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling of ``input`` (N, C, D, H, W) or (C, D, H, W) to ``output_size``; indices
    are flat ``(d * H + h) * W + w`` positions in each (n, c) volume."""
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)


# ---------------------------------------------------------------------------- lp_pool ---
def _lp_pool(op, m, input, norm_type, kernel_size, stride, ceil_mode):
    from ...api.elementwise import abs as _abs, relu, sign
    kernel = _ntuple(op, "kernel_size", kernel_size, m, 1)
    p = float(norm_type)
    out = _avg_pool_nd(op, m, input ** p, kernel, stride, 0, ceil_mode, True, None)
    # PyTorch's form: sign(out) * relu(|out|) keeps the negative averages (odd p) at 0
    return (sign(out) * relu(_abs(out))).mul(_prod(kernel)) ** (1.0 / p)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """Power-average pooling: ``(sum over the window of x**p) ** (1 / p)``."""
    return _lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """2-D :func:`lp_pool1d`."""
    return _lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """3-D :func:`lp_pool1d`."""
    return _lp_pool("lp_pool3d", 3, input, norm_type, kernel_size, stride, ceil_mode)


# ------------------------------------------------------------------------- max_unpool ---
def _max_unpool(op, m, input, indices, kernel_size, stride, padding, output_size):
    from ...api.creation import zeros
    x, batched = _input(op, input, m)
    if not isinstance(indices, Tensor) or tuple(indices.shape) != tuple(input.shape):
        raise ValueError(f"{op}: indices must be a tensor of the input's shape "
                         f"{fmt_shape(input.shape)} (from max_pool{m}d(return_indices=True))")
    idx = indices if batched else indices.unsqueeze(0)
    kernel = _ntuple(op, "kernel_size", kernel_size, m, 1)
    stride = _stride(op, stride, kernel, m)
    padding = _ntuple(op, "padding", padding, m, 0)
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in
                    zip(x.shape[2:], stride, padding, kernel))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)[-m:]
        if len(size) != m:
            raise ValueError(f"{op}: output_size must have {m} (or {m + 2}) entries, got "
                             f"{output_size!r}")
        for d, (o, dflt, s) in enumerate(zip(size, default, stride)):
            if not dflt - s < o < dflt + s:
                raise ValueError(f"{op}: output_size {tuple(size)} is invalid: dim {d} must "
                                 f"be within ({dflt - s}, {dflt + s})")
    n, c = x.shape[0], x.shape[1]
    plane = _prod(size)
    flat = zeros((n, c, plane), dtype=x.dtype, device=x.device)
    per = _prod(x.shape[2:])  # not -1: a batch of 0 makes -1 ambiguous
    out = flat.scatter(2, idx.reshape(n, c, per).to(_dt.int64), x.reshape(n, c, per))
    out = out.reshape((n, c) + tuple(size))
    return out if batched else out.squeeze(0)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of :func:`max_pool1d`: each value put back at its index, zeros
    elsewhere."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of :func:`max_pool2d` (see :func:`max_unpool1d`)."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of :func:`max_pool3d` (see :func:`max_unpool1d`)."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding,
                       output_size)
