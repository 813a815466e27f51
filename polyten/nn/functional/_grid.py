"""Spatial-transformer sampling: ``affine_grid`` and ``grid_sample`` (PyTorch's names,
signatures, coordinate rules and warnings).

``grid_sample`` is a composite of public ops, so it runs on every backend and differentiates
through autograd: the sampling positions are unnormalised and padded with elementwise ops, the
integer corner positions (``floor`` / ``round``, no gradient) become flat indices into each
(n, c) plane, every corner's values are fetched with one ``gather``, and the result is the sum
of the values times their interpolation weights.  The gradient with respect to the input is
``gather``'s (a scatter-add), and the one with respect to the grid flows through the weights,
which are the only differentiable functions of the grid -- the same quantities PyTorch's
backward kernel computes, including its conventions at the clipping boundaries (zero gradient
where a coordinate is clipped, also exactly at the boundary).
"""

from __future__ import annotations

import itertools
import warnings

from ...api import dtypes as _dt
from ...api._core import describe
from ...api.tensor import Tensor
from ...dispatch.errors import fmt_shape

__all__ = ["affine_grid", "grid_sample"]

_DEFAULT_CHANGED = ("Default grid_sample and affine_grid behavior has changed to "
                    "align_corners=False since 1.3.0. Please specify align_corners=True if "
                    "the old behavior is desired. See the documentation of grid_sample for "
                    "details.")

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")


def _pt():
    import polyten
    return polyten


def _align(align_corners) -> bool:
    if align_corners is None:
        warnings.warn(_DEFAULT_CHANGED, UserWarning, stacklevel=3)
        return False
    return bool(align_corners)


# ------------------------------------------------------------------------- affine_grid ---
def _base_coords(pt, n, align_corners, like):
    """PyTorch's normalised pixel centres along a dim of ``n`` pixels: ``linspace(-1, 1, n)``,
    shrunk by ``(n - 1) / n`` without ``align_corners``; a single pixel sits at 0."""
    if n <= 1:
        return pt.zeros(n, dtype=like.dtype, device=like.device)
    lin = pt.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return lin if align_corners else lin * ((n - 1) / n)


def affine_grid(theta, size, align_corners=None) -> Tensor:
    """Sampling grid of an affine transform, for :func:`grid_sample`.

    Parameters
    ----------
    theta : Tensor
        A batch of affine matrices: ``(N, 2, 3)`` for a 2-D output ``size = (N, C, H, W)``,
        ``(N, 3, 4)`` for a 3-D one ``size = (N, C, D, H, W)``; floating point.
    size : sequence of int
        The target output size (4 or 5 entries, all positive).
    align_corners : bool, optional
        ``True``: -1 and 1 are the centres of the corner pixels; ``False``: their outer edges.
        ``None`` (the default) means ``False`` and warns, as PyTorch's.

    Returns
    -------
    Tensor
        ``(N, H, W, 2)`` (or ``(N, D, H, W, 3)``) normalised ``(x, y[, z])`` source positions:
        ``theta @ [x, y, (z,) 1]`` at every output pixel centre.  Differentiable in ``theta``.
    """
    pt = _pt()
    align = _align(align_corners)
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid: theta must be a tensor, got {describe(theta)}")
    if theta.dtype.kind != "f":
        raise ValueError(f"affine_grid: expected theta to have a floating-point dtype, got "
                         f"{theta.dtype.name}; cast it, e.g. theta.to(polyten.float32)")
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"affine_grid: size must be a sequence of ints (N, C, H, W) or "
                        f"(N, C, D, H, W), got {size!r}") from None
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid: only 4-D and 5-D sizes are supported, for 2-D "
                                  f"and 3-D affine transforms respectively; got size {size}")
    m = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (m, m + 1):
        raise ValueError(f"affine_grid: expected a batch of {m}-D affine matrices of shape "
                         f"(N, {m}, {m + 1}) for size {size}, got theta of shape "
                         f"{fmt_shape(theta.shape)}")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: expected a positive output size, got {size}")
    if theta.shape[0] != size[0]:
        raise ValueError(f"affine_grid: theta holds {theta.shape[0]} matrices but size asks for "
                         f"a batch of {size[0]}; they must match")
    spatial = size[2:]
    if align and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size "
                      "grids when align_corners=True. This is not an intended use case of "
                      "affine_grid. See the documentation of affine_grid for details.",
                      UserWarning, stacklevel=2)
    axes = [_base_coords(pt, n, align, theta) for n in spatial]  # (D,) H, W
    mesh = pt.meshgrid(*axes, indexing="ij")
    ones = pt.ones(tuple(spatial), dtype=theta.dtype, device=theta.device)
    # the homogeneous coordinates in (x, y[, z], 1) order: x runs along W, the last dim
    base = pt.stack(list(reversed(mesh)) + [ones], -1).reshape(-1, m + 1)
    grid = base @ theta.mT
    return grid.reshape((size[0],) + tuple(spatial) + (m,))


# ------------------------------------------------------------------------- grid_sample ---
def _clip(pt, c, n):
    """``c`` clipped to ``[0, n - 1]``; NaN goes to 0 and the gradient is zero at and beyond
    the limits, as PyTorch's kernels."""
    return pt.where(c > 0, pt.where(c < n - 1, c, float(n - 1)), 0.0)


def _reflect(pt, c, twice_low, twice_high):
    """``c`` reflected off the bounds ``twice_low / 2`` and ``twice_high / 2`` until inside."""
    if twice_low == twice_high:
        return c * 0.0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    d = c - lo
    a = pt.where(d < 0, -d, d)  # not abs: its slope at 0 is +1 in PyTorch's kernel
    extra = pt.fmod(a, span)
    flips = pt.floor((a / span).detach())
    even = pt.fmod(flips, 2.0) == 0
    return pt.where(even, extra + lo, span - extra + lo)


def _pad_coords(pt, c, n, padding_mode, align):
    if padding_mode == "border":
        return _clip(pt, c, n)
    if padding_mode == "reflection":
        c = _reflect(pt, c, 0, 2 * (n - 1)) if align else _reflect(pt, c, -1, 2 * n - 1)
        return _clip(pt, c, n)
    return c


def _unnormalize(c, n, align):
    return (c + 1) / 2 * (n - 1) if align else ((c + 1) * n - 1) / 2


def _cubic_coeffs(t):
    """The four cubic-convolution weights (a = -0.75) of the samples at offsets -1, 0, 1, 2
    from ``floor(x)``, for ``t = x - floor(x)``, in PyTorch's form."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    u = 1.0 - t
    return far(t + 1.0), near(t), near(u), far(u + 1.0)


def _check_sample_args(input, grid, mode, padding_mode):
    if mode not in _MODES:
        raise ValueError(f"grid_sample: expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: {mode!r}")
    if padding_mode not in _PADDINGS:
        raise ValueError(f"grid_sample: expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: {padding_mode!r}")
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample: {name} must be a tensor, got {describe(t)}")
    if input.ndim not in (4, 5):
        raise ValueError(f"grid_sample: expected a 4-D (N, C, H, W) or 5-D (N, C, D, H, W) "
                         f"input, got shape {fmt_shape(input.shape)}")
    m = input.ndim - 2
    if mode == "bicubic" and m != 2:
        raise ValueError(f"grid_sample: bicubic interpolation only supports 4-D input, got "
                         f"shape {fmt_shape(input.shape)}; use mode='bilinear' (trilinear) for "
                         "volumes")
    if grid.ndim != input.ndim:
        raise ValueError(f"grid_sample: expected grid of {input.ndim} dims for an input of "
                         f"shape {fmt_shape(input.shape)}, got grid of shape "
                         f"{fmt_shape(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample: expected grid and input to have the same batch size, "
                         f"got input of shape {fmt_shape(input.shape)} and grid of shape "
                         f"{fmt_shape(grid.shape)}")
    if grid.shape[-1] != m:
        raise ValueError(f"grid_sample: expected grid to have size {m} in its last dim (the "
                         f"{'(x, y)' if m == 2 else '(x, y, z)'} positions), got grid of shape "
                         f"{fmt_shape(grid.shape)}")
    if input.dtype.kind != "f" or grid.dtype != input.dtype:
        raise TypeError(f"grid_sample: expected input and grid of the same floating-point "
                        f"dtype, got {input.dtype.name} and {grid.dtype.name}; cast the grid "
                        f"with grid.to(input.dtype)")
    if grid.device != input.device:
        raise ValueError(f"grid_sample: input is on {input.device} but grid is on "
                         f"{grid.device}; move the grid with grid.to(input.device)")
    for d in range(2, input.ndim):
        if input.shape[d] == 0:
            raise ValueError(f"grid_sample: expected input to have non-empty spatial dims, but "
                             f"input has shape {fmt_shape(input.shape)} with dim {d} empty")
    return m


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``input`` at the normalised positions ``grid`` (the spatial transformer's
    sampler).

    Parameters
    ----------
    input : Tensor
        ``(N, C, H_in, W_in)`` or ``(N, C, D_in, H_in, W_in)``, floating point.
    grid : Tensor
        ``(N, H_out, W_out, 2)`` or ``(N, D_out, H_out, W_out, 3)`` of the input's dtype:
        ``(x, y[, z])`` positions, ``x`` along W; -1 and 1 are the input's extreme pixels
        (their centres with ``align_corners=True``, their outer edges otherwise).
    mode : {'bilinear', 'nearest', 'bicubic'}
        ``'bilinear'`` is trilinear for 5-D input; ``'bicubic'`` (4-D only) is cubic
        convolution with ``a = -0.75``; ``'nearest'`` rounds half to even.
    padding_mode : {'zeros', 'border', 'reflection'}
        Values outside the input: zero, the nearest border value, or the input reflected at
        its border (positions are clipped into range afterwards).
    align_corners : bool, optional
        See ``grid``.  ``None`` (the default) means ``False`` and warns, as PyTorch's.

    Returns
    -------
    Tensor
        ``(N, C, H_out, W_out)`` (or ``(N, C, D_out, H_out, W_out)``).  Differentiable in
        ``input`` and in ``grid`` (the ``grid`` gradient is zero for ``'nearest'``).
        Non-finite grid positions sample zeros under ``'nearest'`` and give NaN under
        ``padding_mode='zeros'`` otherwise; ``'border'`` and ``'reflection'`` move a NaN
        position to 0, as PyTorch's cpu kernels.
    """
    pt = _pt()
    m = _check_sample_args(input, grid, mode, padding_mode)
    align = _align(align_corners)
    n, c = input.shape[0], input.shape[1]
    spatial = tuple(input.shape[2:])
    out_spatial = tuple(grid.shape[1:-1])
    q = 1
    for s in out_spatial:
        q *= s
    p = 1
    for s in spatial:
        p *= s
    flat = input.reshape(n, c, p)
    g = grid.reshape(n, q, m)
    # per coordinate k (x, y, z): the input dim it indexes, its size and its flat stride
    sizes = [spatial[m - 1 - k] for k in range(m)]
    strides = []
    for k in range(m):
        st = 1
        for s in spatial[m - k:]:
            st *= s
        strides.append(st)
    coords = [_unnormalize(g[..., k], sizes[k], align) for k in range(m)]

    def fetch(idx):
        """The values at integer float positions ``idx`` (one (n, q) tensor per coordinate),
        and a (n, q) mask of those inside the input; outside positions read element 0."""
        valid = None
        pos = None
        for k in range(m):
            inside = (idx[k] >= 0) & (idx[k] <= sizes[k] - 1)
            valid = inside if valid is None else valid & inside
        for k in range(m):
            i = pt.where(valid, idx[k], 0.0).to(_dt.int64) * strides[k]
            pos = i if pos is None else pos + i
        vals = flat.gather(2, pos.unsqueeze(1).expand(n, c, q))
        return vals, valid

    if mode == "bicubic":
        out = _bicubic(pt, coords, sizes, padding_mode, align, fetch)
    elif mode == "nearest":
        idx = [pt.round(_pad_coords(pt, x, L, padding_mode, align).detach())
               for x, L in zip(coords, sizes)]
        vals, valid = fetch(idx)
        if grid.requires_grad and _grad_enabled():
            # PyTorch's grid gradient is zeros here, not absent: keep the grid in the graph
            keep = pt.where(valid, coords[0] * 0.0 + 1.0, 0.0)
            out = vals * keep.unsqueeze(1)
        else:
            out = pt.where(valid.unsqueeze(1), vals, 0.0)
    else:
        xs = [_pad_coords(pt, x, L, padding_mode, align) for x, L in zip(coords, sizes)]
        lo = [pt.floor(x.detach()) for x in xs]
        # weights (lo + 1 - x) and (x - lo) per coordinate, products in x, y, z order
        wts = [((l + 1) - x, x - l) for x, l in zip(xs, lo)]
        out = None
        # corners in PyTorch's order (z, then y, then x slowest to fastest)
        for corner in itertools.product((0, 1), repeat=m):
            bits = corner[::-1]  # bits[k]: the offset along coordinate k
            idx = [lo[k] + bits[k] if bits[k] else lo[k] for k in range(m)]
            vals, valid = fetch(idx)
            w = None
            for k in range(m):
                w = wts[k][bits[k]] if w is None else w * wts[k][bits[k]]
            w = w * valid.to(w.dtype)  # 0 * NaN stays NaN, as PyTorch's
            term = vals * w.unsqueeze(1)
            out = term if out is None else out + term
    return out.reshape((n, c) + out_spatial)


def _grad_enabled():
    from ...autograd.grad_mode import grad_enabled
    return grad_enabled()


def _bicubic(pt, coords, sizes, padding_mode, align, fetch):
    x, y = coords
    x0, y0 = pt.floor(x.detach()), pt.floor(y.detach())
    cx, cy = _cubic_coeffs(x - x0), _cubic_coeffs(y - y0)

    def column(v, L):
        # the padding rule applied to each integer sample position on its own
        if padding_mode == "zeros":
            return v
        return pt.trunc(_pad_coords(pt, v, L, padding_mode, align))
    xi = [column(x0 + (j - 1), sizes[0]) for j in range(4)]
    out = None
    for i in range(4):
        yi = column(y0 + (i - 1), sizes[1])
        row = None
        for j in range(4):
            vals, valid = fetch([xi[j], yi])
            term = pt.where(valid.unsqueeze(1), vals, 0.0) * cx[j].unsqueeze(1)
            row = term if row is None else row + term
        term = row * cy[i].unsqueeze(1)
        out = term if out is None else out + term
    return out
