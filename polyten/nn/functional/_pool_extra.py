"""Fractional max pooling, the ``adaptive_max_pool*d_with_indices`` spellings and
``channel_shuffle``.

Fractional max pooling (Graham, 2014) uses pseudo-random, overlapping windows of a fixed
``kernel_size`` whose starts follow PyTorch's interval rule, computed in the input's dtype
from one uniform sample per (n, c) plane and spatial dim, so that with the same
``_random_samples`` the windows -- and the results -- are PyTorch's exactly.  The maxima are
found without recording a graph (a running maximum over the kernel offsets, one ``gather`` per
offset), and the values are then read with one differentiable ``gather`` at the winning
positions, whose backward is the scatter-add PyTorch's backward performs.
"""

from __future__ import annotations

import itertools

from ...api import dtypes as _dt
from ...api._core import describe
from ...api.tensor import Tensor
from ...dispatch.errors import fmt_shape
from ._pool import adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d

__all__ = ["adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
           "adaptive_max_pool3d_with_indices", "fractional_max_pool2d",
           "fractional_max_pool2d_with_indices", "fractional_max_pool3d",
           "fractional_max_pool3d_with_indices", "channel_shuffle", "native_channel_shuffle"]


def _pt():
    import polyten
    return polyten


# ------------------------------------------------------------ adaptive_max_pool*d_with_indices
def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool1d` returning ``(values, indices)`` whatever
    ``return_indices`` says (PyTorch's signature, where the flag is ignored)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool2d` returning ``(values, indices)`` (flat ``h * W + w``
    positions in each (n, c) plane) whatever ``return_indices`` says."""
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool3d` returning ``(values, indices)`` (flat ``(d * H + h) * W +
    w`` positions in each (n, c) volume) whatever ``return_indices`` says."""
    return adaptive_max_pool3d(input, output_size, True)


# -------------------------------------------------------------------- fractional_max_pool ---
_DIMS = {2: ("height", "width"), 3: ("time", "height", "width")}


def _tuple(op, name, v, m, kind):
    vals = (v,) * m if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    try:
        vals = tuple(vals)
    except TypeError:
        vals = ()
    if len(vals) != m or not all(isinstance(e, kind) and not isinstance(e, bool)
                                 for e in vals):
        what = "int" if kind is int else "number"
        raise TypeError(f"{op}: {name} must be an {what} or a tuple of {m} {what}s, got {v!r}")
    return vals


def _intervals(pt, u, L, o, k):
    """Window starts (an int64 (..., o) tensor) along a dim of ``L`` for ``o`` windows of
    ``k``, from the samples ``u`` (..., in the input's dtype): ``trunc((i + u) * alpha) -
    trunc(u * alpha)`` with ``alpha = (L - k) / (o - 1)``, the last window flush with the end
    -- each product rounded in ``u``'s dtype, as PyTorch's kernel."""
    last = pt.full(tuple(u.shape) + (1,), L - k, dtype=_dt.int64, device=u.device)
    if o <= 1:
        return last[..., :o]
    alpha = pt.tensor(float(L - k), dtype=u.dtype, device=u.device) / float(o - 1)
    i = pt.arange(o - 1, dtype=u.dtype, device=u.device)
    starts = (pt.trunc((i + u.unsqueeze(-1)) * alpha).to(_dt.int64) -
              pt.trunc(u * alpha).to(_dt.int64).unsqueeze(-1))
    return pt.cat([starts, last], -1)


def _fractional(op, m, input, kernel_size, output_size, output_ratio, samples):
    pt = _pt()
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    if input.ndim not in (m + 1, m + 2):
        layout = "H, W" if m == 2 else "T, H, W"
        raise ValueError(f"{op}: expected a {m + 1}-D (C, {layout}) or {m + 2}-D (N, C, "
                         f"{layout}) input, got shape {fmt_shape(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype.name}; cast "
                        "it first, e.g. x.to(polyten.float32)")
    kernel = _tuple(op, "kernel_size", kernel_size, m, int)
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel_size must be positive, got {kernel_size!r}")
    size = tuple(input.shape[-m:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{op} requires specifying either an output_size or an "
                             "output_ratio")
        ratio = _tuple(op, "output_ratio", output_ratio, m, (int, float))
        out = tuple(int(s * r) for s, r in zip(size, ratio))
    else:
        out = _tuple(op, "output_size", output_size, m, int)
    if min(out) < 0:
        raise ValueError(f"{op}: output_size must be non-negative, got {out}")
    names = _DIMS[m]
    for name, L, o, k in zip(names, size, out, kernel):
        if o + k - 1 > L:
            raise ValueError(f"{op}: pool {name} {k} too large relative to input {name} {L} "
                             f"(output {name} {o} needs output + kernel_size - 1 <= input)")
    batched = input.ndim == m + 2
    x = input if batched else input.unsqueeze(0)
    n, c = x.shape[0], x.shape[1]
    if samples is None:
        samples = pt.rand(n, c, m, dtype=x.dtype, device=x.device)
    else:
        if not isinstance(samples, Tensor):
            raise TypeError(f"{op}: _random_samples must be a tensor, got {describe(samples)}")
        if samples.ndim != 3 or samples.shape[0] < n or samples.shape[1] != c or \
                samples.shape[2] != m:
            raise ValueError(f"{op}: _random_samples must have shape (N, C, {m}) = ({n}, {c}, "
                             f"{m}) (N may be larger) for input of shape "
                             f"{fmt_shape(input.shape)}, got {fmt_shape(samples.shape)}")
        if samples.dtype != x.dtype:
            raise TypeError(f"{op}: _random_samples must have the input's dtype "
                            f"{x.dtype.name}, got {samples.dtype.name}")
        samples = samples[:n].detach()
    # samples[..., j] drives spatial dim j for 3-D pooling (t, h, w) but PyTorch's 2-D
    # kernel reads them as (w, h)
    order = [1, 0] if m == 2 else [0, 1, 2]
    starts = [_intervals(pt, samples[..., order[j]], size[j], out[j], kernel[j])
              for j in range(m)]
    plane = 1
    for s in size:
        plane *= s
    strides = [1] * m
    for j in range(m - 2, -1, -1):
        strides[j] = strides[j + 1] * size[j + 1]
    flat = x.reshape(n, c, plane)
    ref = flat.detach()
    n_out = 1
    for o in out:
        n_out *= o

    def positions(offsets):
        pos = None
        for j in range(m):
            s = (starts[j] + offsets[j]) * strides[j]
            s = s.reshape((n, c) + tuple(out[j] if d == j else 1 for d in range(m)))
            pos = s if pos is None else pos + s
        return pos.expand((n, c) + out).reshape(n, c, n_out)

    best = best_pos = None
    for offsets in itertools.product(*[range(k) for k in kernel]):
        pos = positions(offsets)
        v = ref.gather(2, pos)
        if best is None:
            best, best_pos = v, pos
            continue
        # '>' keeps the first maximum in window order; a NaN always replaces
        take = (v > best) | pt.isnan(v)
        best = pt.where(take, v, best)
        best_pos = pt.where(take, pos, best_pos)
    values = flat.gather(2, best_pos).reshape((n, c) + out)
    indices = best_pos.reshape((n, c) + out)
    if not batched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return values, indices


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """:func:`fractional_max_pool2d` returning ``(values, indices)`` whatever
    ``return_indices`` says."""
    return _fractional("fractional_max_pool2d", 2, input, kernel_size, output_size,
                       output_ratio, _random_samples)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """2-D fractional max pooling of ``input`` (N, C, H, W) or (C, H, W).

    Parameters
    ----------
    kernel_size : int or (int, int)
        The window size ``(kH, kW)``.
    output_size : int or (int, int), optional
        The output ``(oH, oW)``; ``oH + kH - 1 <= H`` (and likewise W) is required.
    output_ratio : float or (float, float), optional
        Instead of ``output_size``: ``int(H * ratio)`` rows, ``int(W * ratio)`` columns.
        (PyTorch's functional form needs a tuple here; a number is taken as both.)
    return_indices : bool
        Also return the flat ``h * W + w`` positions of the maxima (for
        :func:`max_unpool2d`).
    _random_samples : Tensor, optional
        ``(N, C, 2)`` uniform samples in ``[0, 1)`` of the input's dtype (``[..., 0]`` for W,
        ``[..., 1]`` for H, as PyTorch); drawn from polyten's generator when absent.  With
        the same samples the windows are PyTorch's.

    Returns
    -------
    Tensor or (Tensor, Tensor)
        The maxima ``(N, C, oH, oW)``, and their int64 positions with ``return_indices``.
    """
    values, indices = fractional_max_pool2d_with_indices(
        input, kernel_size, output_size, output_ratio, True, _random_samples)
    return (values, indices) if return_indices else values


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """:func:`fractional_max_pool3d` returning ``(values, indices)`` whatever
    ``return_indices`` says."""
    return _fractional("fractional_max_pool3d", 3, input, kernel_size, output_size,
                       output_ratio, _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """3-D fractional max pooling of ``input`` (N, C, T, H, W) or (C, T, H, W); as
    :func:`fractional_max_pool2d` with triples, ``_random_samples`` of shape ``(N, C, 3)``
    (``[..., 0]`` for T, ``[..., 1]`` for H, ``[..., 2]`` for W) and indices
    ``(t * H + h) * W + w``."""
    values, indices = fractional_max_pool3d_with_indices(
        input, kernel_size, output_size, output_ratio, True, _random_samples)
    return (values, indices) if return_indices else values


# ---------------------------------------------------------------------- channel_shuffle ---
def _channel_shuffle(op, input, groups):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {describe(input)}")
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"{op}: groups must be an int, got {describe(groups)}")
    if groups <= 0:
        raise ValueError(f"{op}: the number of groups must be positive, got groups={groups}")
    if input.ndim <= 2:
        raise ValueError(f"{op}: expected an input with more than 2 dims (N, C, *), got shape "
                         f"{fmt_shape(input.shape)}")
    shape = tuple(input.shape)
    ch = shape[1]
    if ch % groups:
        raise ValueError(f"{op}: the number of channels must be divisible by groups, got {ch} "
                         f"channels (input shape {fmt_shape(shape)}) and {groups} groups")
    rest = shape[2:]
    x = input.reshape((shape[0], groups, ch // groups) + rest)
    return x.transpose(1, 2).reshape(shape)


def channel_shuffle(input, groups) -> Tensor:
    """Interleave the channels of ``input`` (N, C, *) across ``groups`` groups: channel
    ``g * (C / groups) + j`` of the input becomes channel ``j * groups + g`` (ShuffleNet).

    Parameters
    ----------
    input : Tensor
        At least 3-D; ``C`` must be divisible by ``groups``.
    groups : int
        The number of groups, positive.
    """
    return _channel_shuffle("channel_shuffle", input, groups)


def native_channel_shuffle(input, groups) -> Tensor:
    """``torch.native_channel_shuffle``: the same as :func:`channel_shuffle`."""
    return _channel_shuffle("native_channel_shuffle", input, groups)
