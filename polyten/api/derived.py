"""Functions of the ``torch`` namespace that are compositions of other polyten ops.

Each is written in public polyten ops, so it runs on every backend and differentiates through
those ops' rules (no derivative rule of its own), with PyTorch's signature, defaults and result
dtypes.  They are thin: a function here that showed up in a profile would earn a fused kernel
in the op table instead.
"""

from __future__ import annotations

import builtins
import itertools
import math
import operator
from collections import namedtuple

from . import dtypes as _dt
from ..autograd.grad_mode import no_grad as _no_grad
from ._core import Tensor, describe, normalize_dim
from . import autocast as _amp

_AMP = _amp.ACTIVE

__all__ = ["addmm", "addmv", "addbmm", "baddbmm", "frac", "sgn", "logit", "xlogy", "sinc",
           "heaviside", "rot90", "aminmax", "msort", "kthvalue", "quantile", "trapezoid",
           "cumulative_trapezoid", "cov", "corrcoef", "tril_indices", "triu_indices",
           "bincount", "bucketize", "histc", "index_fill", "masked_scatter", "renorm",
           "cartesian_prod", "combinations", "block_diag", "vander", "diagflat", "diag_embed",
           "hsplit", "vsplit", "dsplit", "cdist", "cummax", "cummin", "logcumsumexp",
           "nanmedian", "unique_consecutive", "fmax", "fmin", "deg2rad", "rad2deg", "ldexp",
           "complex", "polar"]

AminmaxResult = namedtuple("aminmax", ("min", "max"))
KthvalueResult = namedtuple("kthvalue", ("values", "indices"))
CummaxResult = namedtuple("cummax", ("values", "indices"))
CumminResult = namedtuple("cummin", ("values", "indices"))
NanmedianResult = namedtuple("nanmedian", ("values", "indices"))


def _pt():
    import polyten
    return polyten


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")
    return x


def _scaled(beta, base: Tensor, alpha, product: Tensor) -> Tensor:
    if _AMP[0]:  # the add*mm family is a lower-precision op under autocast, all of it
        base, product = _amp.lower(base, product)
    # beta == 0 ignores base entirely (nan and inf included), as PyTorch
    out = product if alpha == 1 else product * alpha
    if beta == 0:
        # nan and inf in base do not propagate, yet base gets a (zero) gradient, as PyTorch
        pt = _pt()
        return out + pt.where(pt.zeros_like(base, dtype=_dt.bool), base, 0)
    return out + (base if beta == 1 else base * beta)


# --- products with an added term ---------------------------------------------------------------
def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices (``input`` broadcasts)."""
    for t, name in ((mat1, "mat1"), (mat2, "mat2")):
        if _tensor(t, "addmm").ndim != 2:
            raise ValueError(f"addmm: {name} must be a matrix, got shape {tuple(t.shape)}")
    return _scaled(beta, _tensor(input, "addmm"), alpha, mat1 @ mat2)


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``: a matrix times a vector."""
    if _tensor(mat, "addmv").ndim != 2 or _tensor(vec, "addmv").ndim != 1:
        raise ValueError(f"addmv: expected a matrix and a vector, got shapes "
                         f"{tuple(mat.shape)} and {tuple(vec.shape)}")
    return _scaled(beta, _tensor(input, "addmv"), alpha, mat @ vec)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices ``(b, n, m)``."""
    if _tensor(batch1, "baddbmm").ndim != 3 or _tensor(batch2, "baddbmm").ndim != 3:
        raise ValueError(f"baddbmm: expected 3-D batches, got shapes {tuple(batch1.shape)} and "
                         f"{tuple(batch2.shape)}")
    return _scaled(beta, _tensor(input, "baddbmm"), alpha, batch1 @ batch2)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    if _tensor(batch1, "addbmm").ndim != 3 or _tensor(batch2, "addbmm").ndim != 3:
        raise ValueError(f"addbmm: expected 3-D batches, got shapes {tuple(batch1.shape)} and "
                         f"{tuple(batch2.shape)}")
    return _scaled(beta, _tensor(input, "addbmm"), alpha, (batch1 @ batch2).sum(0))


# --- elementwise ------------------------------------------------------------------------------
def frac(input) -> Tensor:
    """The fractional part, ``x - trunc(x)`` (sign of x kept)."""
    x = _tensor(input, "frac")
    if not x.dtype.is_floating_point:
        raise TypeError(f"frac: expected a floating-point tensor, got {x.dtype.name}")
    return x - _pt().trunc(x)


def sgn(input) -> Tensor:
    """``sign`` for real tensors; ``x / |x|`` (0 at 0) for complex ones (``torch.sgn``)."""
    x = _tensor(input, "sgn")
    pt = _pt()
    if not x.dtype.is_complex:
        return pt.sign(x)
    a = x.abs()
    zero = a == 0
    return pt.where(zero, pt.zeros_like(x), x / pt.where(zero, pt.ones_like(a), a))


def logit(input, eps=None) -> Tensor:
    """``log(p / (1 - p))``; with ``eps``, p is clamped to ``[eps, 1 - eps]`` first."""
    x = _tensor(input, "logit")
    if not x.dtype.is_floating_point:
        x = x.to(_dt.get_default_dtype())
    if eps is not None:
        x = x.clamp(eps, 1 - eps)
    return _pt().log(x / (1 - x))


def xlogy(input, other) -> Tensor:
    """``x * log(y)``, 0 where x is 0 (unless y is NaN), as ``torch.xlogy``."""
    pt = _pt()
    x = input if isinstance(input, Tensor) else pt.asarray(input, device=other.device)
    y = other if isinstance(other, Tensor) else pt.asarray(other, device=x.device)
    dt = _dt.result_type(x.dtype, y.dtype)
    if not dt.is_floating_point:
        dt = _dt.get_default_dtype()
    x, y = x.to(dt), y.to(dt)
    # only where log(y) is not finite does 0 * log(y) need replacing (torch masks the same
    # entries in the gradient); elsewhere x * log(y) is already 0 with the right gradient
    zero = (x == 0) & ~pt.isnan(y) & ((y <= 0) | pt.isinf(y))
    safe = pt.where(zero, pt.ones_like(y), y)
    return pt.where(zero, pt.zeros_like(x * safe), x * pt.log(safe))


def sinc(input) -> Tensor:
    """The normalised sinc, ``sin(pi x) / (pi x)``, 1 at 0."""
    x = _tensor(input, "sinc")
    pt = _pt()
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(_dt.get_default_dtype())
    zero = x == 0
    px = math.pi * pt.where(zero, pt.ones_like(x), x)
    return pt.where(zero, pt.ones_like(x), pt.sin(px) / px)


def heaviside(input, values) -> Tensor:
    """0 where x < 0, ``values`` where x == 0, 1 where x > 0."""
    x = _tensor(input, "heaviside")
    v = _tensor(values, "heaviside")
    if x.dtype is not v.dtype:
        raise TypeError(f"heaviside: input and values must have one dtype, got {x.dtype.name} "
                        f"and {v.dtype.name}")
    pt = _pt()
    one, zero = pt.ones_like(x), pt.zeros_like(x)
    return pt.where(x == 0, v.expand(x.shape) if v.ndim <= x.ndim else v,
                    pt.where(x > 0, one, zero))


# --- shape ------------------------------------------------------------------------------------
def rot90(input, k=1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first towards the
    second axis), as ``torch.rot90``."""
    x = _tensor(input, "rot90")
    if len(dims) != 2:
        raise ValueError(f"rot90: dims must name two dimensions, got {dims!r}")
    d0, d1 = (normalize_dim(d, x.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: the two dims must differ, got {dims!r}")
    k = operator.index(k) % 4
    if k == 0:
        return x.clone()
    if k == 2:
        return x.flip((d0, d1))
    if k == 1:
        return x.flip(d1).transpose(d0, d1)
    return x.transpose(d0, d1).flip(d1)


def diagflat(input, offset=0) -> Tensor:
    """The input, flattened, on diagonal ``offset`` of a square matrix."""
    return _pt().diag(_tensor(input, "diagflat").reshape(-1), offset)


def diag_embed(input, offset=0, dim1=-2, dim2=-1) -> Tensor:
    """Batches of diagonal matrices: the last dim of ``input`` on diagonal ``offset`` of the
    plane ``(dim1, dim2)`` of the result (one more dim than the input)."""
    x = _tensor(input, "diag_embed")
    pt = _pt()
    n = x.shape[-1] + builtins.abs(offset)
    nd = x.ndim + 1
    d1, d2 = normalize_dim(dim1, nd, "diag_embed"), normalize_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    # (..., n, n) with the diagonal at the end, then moved to (dim1, dim2)
    ar = pt.arange(n, device=x.device)
    on_diag = (ar[:, None] + offset == ar[None, :]).to(x.dtype)
    idx = pt.arange(x.shape[-1], device=x.device) + builtins.max(-offset, 0)
    rows = pt.zeros(x.shape[:-1] + (n,), dtype=x.dtype, device=x.device)
    rows = rows.index_add(-1, idx, x)  # the diagonal's values at their row positions
    out = rows.unsqueeze(-1) * on_diag
    return out.movedim((nd - 2, nd - 1), (d1, d2)) if (d1, d2) != (nd - 2, nd - 1) else out


def _split_dim(op: str, x: Tensor, dim: int, sections):
    if isinstance(sections, int) and x.shape[dim] % sections:
        raise ValueError(f"{op}: dimension {dim} of size {x.shape[dim]} is not divisible into "
                         f"{sections} equal parts; pass split indices instead")
    return _pt().tensor_split(x, sections, dim)


def hsplit(input, sections):
    """Split along dim 1 (dim 0 for 1-D tensors), as ``torch.hsplit``."""
    x = _tensor(input, "hsplit")
    if x.ndim == 0:
        raise ValueError("hsplit: a 0-d tensor cannot be split")
    return _split_dim("hsplit", x, 1 if x.ndim > 1 else 0, sections)


def vsplit(input, sections):
    """Split along dim 0 of a tensor with at least 2 dims, as ``torch.vsplit``."""
    x = _tensor(input, "vsplit")
    if x.ndim < 2:
        raise ValueError(f"vsplit: needs at least 2 dims, got shape {tuple(x.shape)}")
    return _split_dim("vsplit", x, 0, sections)


def dsplit(input, sections):
    """Split along dim 2 of a tensor with at least 3 dims, as ``torch.dsplit``."""
    x = _tensor(input, "dsplit")
    if x.ndim < 3:
        raise ValueError(f"dsplit: needs at least 3 dims, got shape {tuple(x.shape)}")
    return _split_dim("dsplit", x, 2, sections)


# --- reductions and order statistics -------------------------------------------------------
def aminmax(input, *, dim=None, keepdim=False):
    """``(min, max)`` in one call (a named tuple), over ``dim`` or the whole tensor."""
    x = _tensor(input, "aminmax")
    if dim is None:
        if keepdim:
            return AminmaxResult(x.amin().reshape((1,) * x.ndim), x.amax().reshape((1,) * x.ndim))
        return AminmaxResult(x.amin(), x.amax())
    return AminmaxResult(x.amin(dim, keepdim), x.amax(dim, keepdim))


def msort(input) -> Tensor:
    """Sorted along dim 0 (``torch.msort``)."""
    return _pt().sort(_tensor(input, "msort"), dim=0).values


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest value along ``dim`` (1-based) and its index, as a named tuple."""
    x = _tensor(input, "kthvalue")
    d = normalize_dim(dim, builtins.max(x.ndim, 1), "kthvalue")
    n = x.shape[d] if x.ndim else 1
    k = operator.index(k)
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue: k ({k}) is out of range for dimension {d} of size {n}")
    if x.ndim == 0:
        return KthvalueResult(x.clone(), _pt().zeros((), dtype=_dt.int64, device=x.device))
    s = _pt().sort(x, dim=d, stable=True)
    v, i = s.values.select(d, k - 1), s.indices.select(d, k - 1)
    if keepdim:
        v, i = v.unsqueeze(d), i.unsqueeze(d)
    return KthvalueResult(v, i)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear") -> Tensor:
    """Quantiles ``q`` (a number or a 1-D tensor in [0, 1]) along ``dim`` (all elements when
    None), as ``torch.quantile``: a NaN in a slice makes its quantiles NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, "quantile", False)


def _quantile(input, q, dim, keepdim, interpolation, op: str, skip_nan: bool) -> Tensor:
    """quantile (``skip_nan`` False: a NaN makes the slice's quantiles NaN) and nanquantile
    (True: each slice's quantiles are those of its non-NaN values, NaN where it has none)."""
    pt = _pt()
    x = _tensor(input, op)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a float32 or float64 input, got {x.dtype.name}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{op}: interpolation must be one of {_INTERPOLATIONS}, got "
                         f"{interpolation!r}")
    scalar_q = not isinstance(q, Tensor)
    # a number is filled in on the device (no host-to-device copy)
    qt = pt.full((1,), float(q), dtype=x.dtype, device=x.device) if scalar_q else q.to(x.dtype)
    if qt.ndim > 1:
        raise ValueError(f"{op}: q must be a number or a 1-D tensor, got shape "
                         f"{tuple(qt.shape)}")
    qt = qt.reshape(-1)
    if scalar_q and not 0 <= float(q) <= 1:
        raise ValueError(f"{op}: q must be in the range [0, 1], got {q}")
    if not scalar_q and bool(((qt < 0) | (qt > 1)).any()):
        raise ValueError(f"{op}: q values must be in the range [0, 1]")
    if dim is None:
        src, d = x.reshape(-1), 0
    else:
        d = normalize_dim(dim, builtins.max(x.ndim, 1), op)
        src = x if x.ndim else x.reshape(1)
    n = src.shape[d]
    if n == 0:
        raise ValueError(f"{op}: input is empty along the reduced dimension")
    srt = pt.sort(src, dim=d).values  # NaN sorts last
    srt = srt.movedim(d, -1)
    if skip_nan:  # each slice's own count of values: positions (..., nq)
        valid = (~pt.isnan(srt)).sum(-1, keepdim=True)
        pos = qt * (valid - 1).clamp(0, n - 1).to(srt.dtype)
    else:
        pos = qt * (n - 1)
    lo = pt.floor(pos).to(_dt.int64).clamp(0, n - 1)
    hi = pt.ceil(pos).to(_dt.int64).clamp(0, n - 1)
    if interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    elif interpolation == "nearest":
        # round half to even, as torch (and numpy's 'nearest')
        lo = hi = pt.round(pos).to(_dt.int64).clamp(0, n - 1)
    shape = srt.shape[:-1] + (qt.shape[0],)
    a = pt.take_along_dim(srt, lo.expand(shape), -1)
    b = pt.take_along_dim(srt, hi.expand(shape), -1)
    if interpolation == "midpoint":
        out = a + (b - a) * 0.5
    elif interpolation == "linear":
        out = pt.lerp(a, b, (pos - pt.floor(pos)).expand(shape))
    else:
        out = a
    empty = (valid == 0) if skip_nan else pt.isnan(srt[..., -1:])
    out = pt.where(empty, pt.full_like(out, float("nan")), out)
    out = out.movedim(-1, 0)  # q first, as torch
    if keepdim:
        if dim is None:
            out = out.reshape((out.shape[0],) + (1,) * x.ndim)
        else:
            out = out.unsqueeze(d + 1)
    return out[0] if scalar_q else out


def trapezoid(y, x=None, *, dx=None, dim=-1) -> Tensor:
    """The trapezoidal rule along ``dim``, with sample points ``x`` or spacing ``dx``."""
    y = _tensor(y, "trapezoid")
    d = normalize_dim(dim, y.ndim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    mid = y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)
    if x is not None:
        if dx is not None:
            raise ValueError("trapezoid: pass x or dx, not both")
        xx = _tensor(x, "trapezoid")
        dxs = xx.diff(dim=-1 if xx.ndim == 1 else d)
        if xx.ndim == 1:
            shape = [1] * y.ndim
            shape[d] = n - 1
            dxs = dxs.reshape(shape)
        return (mid * dxs).sum(d) / 2
    return mid.sum(d) * ((1 if dx is None else dx) / 2)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1) -> Tensor:
    """The running trapezoidal integral along ``dim`` (one element shorter)."""
    y = _tensor(y, "cumulative_trapezoid")
    d = normalize_dim(dim, y.ndim, "cumulative_trapezoid")
    n = y.shape[d]
    if n == 0:
        return y
    mid = y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)
    if x is not None:
        if dx is not None:
            raise ValueError("cumulative_trapezoid: pass x or dx, not both")
        xx = _tensor(x, "cumulative_trapezoid")
        dxs = xx.diff(dim=-1 if xx.ndim == 1 else d)
        if xx.ndim == 1:
            shape = [1] * y.ndim
            shape[d] = n - 1
            dxs = dxs.reshape(shape)
        return (mid * dxs).cumsum(d) / 2
    return mid.cumsum(d) * ((1 if dx is None else dx) / 2)


def cov(input, *, correction=1, fweights=None, aweights=None) -> Tensor:
    """Covariance of the variables in the rows of ``input`` (observations in columns), as
    ``torch.cov``, with optional integer frequency and float observation weights."""
    pt = _pt()
    x = _tensor(input, "cov")
    if x.ndim > 2:
        raise ValueError(f"cov: expected a 1-D or 2-D input, got shape {tuple(x.shape)}")
    if x.ndim < 2:
        x = x.reshape(1, -1)
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(_dt.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        fw = _tensor(fweights, "cov")
        if fw.dtype.kind not in "iu":
            raise TypeError(f"cov: fweights must be integral, got {fw.dtype.name}")
        if fw.ndim > 1 or fw.shape[0] != n:
            raise ValueError(f"cov: fweights must be 1-D with {n} entries, got shape "
                             f"{tuple(fw.shape)}")
        w = fw.to(x.dtype.to_real())
    if aweights is not None:
        aw = _tensor(aweights, "cov")
        if aw.ndim > 1 or aw.shape[0] != n:
            raise ValueError(f"cov: aweights must be 1-D with {n} entries, got shape "
                             f"{tuple(aw.shape)}")
        aw = aw.to(x.dtype.to_real())
        w = aw if w is None else w * aw
    if w is None:
        avg = x.mean(1, keepdim=True)
        norm = n - correction
        xc = x - avg
        c = xc @ xc.conj().T
        return (c / builtins.max(norm, 0)).squeeze() if x.shape[0] == 1 else \
            c / builtins.max(norm, 0)
    wsum = w.sum()
    avg = (x * w).sum(1, keepdim=True) / wsum
    if correction == 0:
        norm = wsum
    elif aweights is None:
        norm = wsum - correction
    else:
        norm = wsum - correction * (w * aw).sum() / wsum
    xc = x - avg
    c = (xc * w) @ xc.conj().T
    out = c / pt.clamp(norm, min=0)
    return out.squeeze() if x.shape[0] == 1 else out


def corrcoef(input) -> Tensor:
    """Pearson correlation coefficients of the rows of ``input``, clipped to [-1, 1]."""
    pt = _pt()
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = pt.diagonal(c)
    std = pt.sqrt(d.real if c.dtype.is_complex else d)
    c = c / std[:, None] / std[None, :]
    if c.dtype.is_complex:  # clip the parts, as numpy and torch
        return c.real.clamp(-1, 1) + 1j * c.imag.clamp(-1, 1)
    return c.clamp(-1, 1)


# --- index construction and counting -----------------------------------------------------------
def _tri_indices(op, row, col, offset, lower, dtype, device):
    import numpy as np  # index construction on the host, as torch's tril_indices (no data)
    row, col, offset = operator.index(row), operator.index(col), operator.index(offset)
    if row < 0 or col < 0:
        raise ValueError(f"{op}: row and col must be non-negative, got {row} and {col}")
    fn = np.tril_indices if lower else np.triu_indices
    r, c = fn(row, offset, col)
    return _pt().asarray(np.stack([r, c]).astype(np.int64), dtype=dtype or _dt.int64,
                         device=device)


def tril_indices(row, col, offset=0, *, dtype=None, device=None) -> Tensor:
    """The ``(2, N)`` coordinates of the lower triangle (diagonal ``offset``) of a
    ``row x col`` matrix, row by row."""
    return _tri_indices("tril_indices", row, col, offset, True, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None) -> Tensor:
    """The ``(2, N)`` coordinates of the upper triangle (diagonal ``offset``) of a
    ``row x col`` matrix, row by row."""
    return _tri_indices("triu_indices", row, col, offset, False, dtype, device)


def bincount(input, weights=None, minlength=0) -> Tensor:
    """Occurrences of each non-negative integer of the 1-D ``input`` (weighted: the summed
    weights), length ``max(input) + 1`` or ``minlength``.  Reads the largest value on the host,
    as ``torch.bincount``."""
    pt = _pt()
    x = _tensor(input, "bincount")
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise ValueError(f"bincount: input must be a 1-D integer tensor, got {x.dtype.name} of "
                         f"shape {tuple(x.shape)}")
    minlength = operator.index(minlength)
    if minlength < 0:
        raise ValueError(f"bincount: minlength must be non-negative, got {minlength}")
    if x.shape[0] and int(x.amin().item()) < 0:
        raise ValueError("bincount: input must contain non-negative integers only")
    n = builtins.max(minlength, int(x.amax().item()) + 1 if x.shape[0] else 0)
    idx = x.to(_dt.int64)
    if weights is None:
        return pt.zeros(n, dtype=_dt.int64, device=x.device).index_add(
            0, idx, pt.ones(x.shape[0], dtype=_dt.int64, device=x.device))
    w = _tensor(weights, "bincount")
    if w.shape != x.shape:
        raise ValueError(f"bincount: weights must have the input's shape {tuple(x.shape)}, got "
                         f"{tuple(w.shape)}")
    wd = w.dtype if w.dtype.is_floating_point else _dt.float64
    return pt.zeros(n, dtype=wd, device=x.device).index_add(0, idx, w.to(wd))


def bucketize(input, boundaries, *, out_int32=False, right=False) -> Tensor:
    """The bucket of each value given sorted 1-D ``boundaries``: ``i`` with
    ``b[i-1] < x <= b[i]`` (``right=True``: ``b[i-1] <= x < b[i]``)."""
    pt = _pt()
    b = _tensor(boundaries, "bucketize")
    if b.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D, got shape {tuple(b.shape)}")
    scalar = not isinstance(input, Tensor)
    x = pt.asarray(input, device=b.device) if scalar else input
    out = pt.searchsorted(b, x.reshape(-1), right=right).reshape(x.shape)
    return out.to(_dt.int32) if out_int32 else out


def histc(input, bins=100, min=0, max=0) -> Tensor:
    """Histogram of ``bins`` equal-width bins over ``[min, max]`` (the data's range when both
    are 0); values outside are ignored, as ``torch.histc``."""
    pt = _pt()
    x = _tensor(input, "histc")
    if not x.dtype.is_floating_point:
        raise TypeError(f"histc: expected a floating-point tensor, got {x.dtype.name}")
    bins = operator.index(bins)
    if bins <= 0:
        raise ValueError(f"histc: bins must be positive, got {bins}")
    lo, hi = float(min), float(max)
    flat = x.reshape(-1)
    if lo == hi and flat.shape[0]:
        lo, hi = float(flat.amin().item()), float(flat.amax().item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ValueError(f"histc: max must be larger than min, got min={min} and max={max}")
    inside = (flat >= lo) & (flat <= hi)
    pos = ((flat - lo) * (bins / (hi - lo))).floor().to(_dt.int64).clamp(0, bins - 1)
    return pt.zeros(bins, dtype=x.dtype, device=x.device).index_add(
        0, pt.where(inside, pos, 0), inside.to(x.dtype))


# --- masked and indexed writes ----------------------------------------------------------------
def index_fill(input, dim, index, value) -> Tensor:
    """A copy of ``input`` with the entries at ``index`` along ``dim`` set to ``value`` (a
    number or a 0-d tensor)."""
    pt = _pt()
    x = _tensor(input, "index_fill")
    d = normalize_dim(dim, builtins.max(x.ndim, 1), "index_fill")
    idx = _tensor(index, "index_fill")
    if idx.ndim > 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"index_fill: index must be a 0-d or 1-D integer tensor, got "
                         f"{idx.dtype.name} of shape {tuple(idx.shape)}")
    n = x.shape[d] if x.ndim else 1
    hit = pt.zeros(n, dtype=_dt.int64, device=x.device).index_add(
        0, idx.reshape(-1), pt.ones(idx.numel(), dtype=_dt.int64, device=x.device)) > 0
    shape = [1] * x.ndim
    if x.ndim:
        shape[d] = n
    hit = hit.reshape(shape)
    v = value if isinstance(value, Tensor) else pt.asarray(value, dtype=x.dtype,
                                                             device=x.device)
    if v.ndim:
        raise ValueError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                         f"{tuple(v.shape)}")
    return pt.where(hit, v.to(x.dtype), x)


def masked_scatter(input, mask, source) -> Tensor:
    """A copy of ``input`` with the positions where ``mask`` is True filled, in order, from
    the first elements of ``source`` -- without reading the mask on the host."""
    pt = _pt()
    x = _tensor(input, "masked_scatter")
    m = _tensor(mask, "masked_scatter")
    src = _tensor(source, "masked_scatter")
    if m.dtype is not _dt.bool:
        raise TypeError(f"masked_scatter: mask must be a bool tensor, got {m.dtype.name}")
    if src.dtype is not x.dtype:
        raise TypeError(f"masked_scatter: source must have the input's dtype {x.dtype.name}, "
                        f"got {src.dtype.name}")
    m = m.expand(x.shape) if tuple(m.shape) != tuple(x.shape) else m
    flat_m = m.reshape(-1)
    pos = flat_m.to(_dt.int64).cumsum(0) - 1
    s = src.reshape(-1)
    if s.shape[0] == 0:
        pos_ok = pt.zeros_like(pos)
        picked = pt.zeros_like(x.reshape(-1))
    else:
        pos_ok = pos.clamp(0, s.shape[0] - 1)
        picked = s[pos_ok]
    return pt.where(flat_m, picked, x.reshape(-1)).reshape(x.shape)


def renorm(input, p, dim, maxnorm) -> Tensor:
    """Each slice along ``dim`` scaled down so that its ``p``-norm is at most ``maxnorm``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input = _amp.fp32(input)
    pt = _pt()
    x = _tensor(input, "renorm")
    d = normalize_dim(dim, x.ndim, "renorm")
    others = tuple(i for i in range(x.ndim) if i != d)
    norms = pt.linalg.vector_norm(x, p, dim=others, keepdim=True)
    scale = pt.where(norms > maxnorm, maxnorm / (norms + 1e-7), pt.ones_like(norms))
    return x * scale


# --- combinatorics and constructions ----------------------------------------------------------
def cartesian_prod(*tensors) -> Tensor:
    """All combinations of one element from each 1-D tensor: ``(N, len(tensors))`` (1-D for a
    single tensor), as ``itertools.product``."""
    pt = _pt()
    if len(tensors) == 1:
        return _tensor(tensors[0], "cartesian_prod").clone()
    grids = pt.meshgrid(*tensors, indexing="ij")
    return pt.stack([g.reshape(-1) for g in grids], 1)


def combinations(input, r=2, with_replacement=False) -> Tensor:
    """The length-``r`` combinations of the 1-D ``input``'s elements, as
    ``itertools.combinations`` (``with_replacement``: ``combinations_with_replacement``)."""
    pt = _pt()
    x = _tensor(input, "combinations")
    if x.ndim != 1:
        raise ValueError(f"combinations: expected a 1-D tensor, got shape {tuple(x.shape)}")
    r = operator.index(r)
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative, got {r}")
    gen = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = list(gen(range(x.shape[0]), r))  # positions only: no data read
    if r == 0 or not idx:
        return pt.empty((0,) if r <= 1 else (0, r), dtype=x.dtype, device=x.device)
    flat = pt.tensor([i for c in idx for i in c], dtype=_dt.int64, device=x.device)
    out = x[flat].reshape(len(idx), r)
    return out.reshape(-1) if r == 1 else out


def block_diag(*tensors) -> Tensor:
    """The tensors (0-, 1- or 2-D) on the diagonal of one matrix, zeros elsewhere."""
    pt = _pt()
    if not tensors:
        return pt.empty((1, 0))
    mats = []
    for t in tensors:
        t = _tensor(t, "block_diag")
        if t.ndim > 2:
            raise ValueError(f"block_diag: inputs must have at most 2 dims, got shape "
                             f"{tuple(t.shape)}")
        mats.append(t.reshape(1, -1) if t.ndim < 2 else t)
    dt = mats[0].dtype
    for m in mats[1:]:
        dt = _dt.result_type(dt, m.dtype)
    total = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        r, c = m.shape
        parts = []
        if left:
            parts.append(pt.zeros((r, left), dtype=dt, device=m.device))
        parts.append(m.to(dt))
        if total - left - c:
            parts.append(pt.zeros((r, total - left - c), dtype=dt, device=m.device))
        rows.append(pt.cat(parts, 1) if len(parts) > 1 else parts[0])
        left += c
    return pt.cat(rows, 0)


def vander(x, N=None, increasing=False) -> Tensor:
    """The Vandermonde matrix of the 1-D ``x``: columns ``x**(N-1) .. x**0`` (or increasing)."""
    pt = _pt()
    x = _tensor(x, "vander")
    if x.ndim != 1:
        raise ValueError(f"vander: x must be 1-D, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else operator.index(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {n}")
    if x.dtype is _dt.bool:
        x = x.to(_dt.int64)
    if n == 0:
        return pt.empty((x.shape[0], 0), dtype=x.dtype, device=x.device)
    cols = [pt.ones_like(x)]
    for _ in range(n - 1):
        cols.append(cols[-1] * x)
    if not increasing:
        cols.reverse()
    return pt.stack(cols, 1)


# --- scans, distances, windows ------------------------------------------------------------
def _shifted(x, d, s, fill):
    """``x`` shifted by ``s`` along ``d`` (towards higher indices), ``fill`` in front."""
    pt = _pt()
    n = x.shape[d]
    front = pt.full(x.shape[:d] + (builtins.min(s, n),) + x.shape[d + 1:], fill,
                    dtype=x.dtype, device=x.device)
    return pt.cat([front, x.narrow(d, 0, n - s)], d) if s < n else front


def _cum_extreme(op, input, dim, larger: bool):
    """Running max (min) and its index -- the latest position on ties, NaN propagating (the
    latest NaN's position), as torch -- by log-step doubling over ``dim``; the values are
    gathered at the indices, so the gradient goes to the chosen element."""
    pt = _pt()
    x = _tensor(input, op)
    if x.dtype.is_complex:
        raise TypeError(f"{op}: complex tensors have no order")
    if x.ndim == 0:
        return x.clone(), pt.zeros((), dtype=_dt.int64, device=x.device)
    d = normalize_dim(dim, x.ndim, op)
    n = x.shape[d]
    shape = [1] * x.ndim
    shape[d] = n
    with _no_grad():
        v = x.detach()
        idx = pt.arange(n, device=x.device).reshape(shape).expand(x.shape).clone()
        floating = v.dtype.is_floating_point
        s = 1
        while s < n:
            pv = _shifted(v, d, s, float("nan") if floating else 0)
            pi = _shifted(idx, d, s, -1)
            valid = pi >= 0
            # keep the current pair unless the earlier one wins: a NaN against a number,
            # or a strictly better number (a later NaN, like a later tie, replaces it)
            better = (pv > v) if larger else (pv < v)
            if floating:
                nan_p, nan_v = pt.isnan(pv), pt.isnan(v)
                earlier_wins = valid & ~nan_v & (nan_p | better)
            else:
                earlier_wins = valid & better
            v = pt.where(earlier_wins, pv, v)
            idx = pt.where(earlier_wins, pi, idx)
            s *= 2
    return pt.take_along_dim(x, idx, d), idx


def cummax(input, dim):
    """The running maximum along ``dim`` and where it was found (the latest position among
    equal values; NaN propagates), as a named tuple ``(values, indices)``."""
    v, i = _cum_extreme("cummax", input, dim, True)
    return CummaxResult(v, i)


def cummin(input, dim):
    """The running minimum along ``dim`` and where it was found (see :func:`cummax`)."""
    v, i = _cum_extreme("cummin", input, dim, False)
    return CumminResult(v, i)


def logcumsumexp(input, dim) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``dim`` without overflow: pairwise ``logaddexp`` by
    log-step doubling (differentiable through it)."""
    pt = _pt()
    x = _tensor(input, "logcumsumexp")
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(_dt.get_default_dtype())
    if x.ndim == 0:
        return x.clone()
    d = normalize_dim(dim, x.ndim, "logcumsumexp")
    n = x.shape[d]
    y = x
    s = 1
    while s < n:
        y = pt.cat([y.narrow(d, 0, s), pt.logaddexp(y.narrow(d, s, n - s),
                                                    y.narrow(d, 0, n - s))], d)
        s *= 2
    return y


def cdist(x1, x2, p: float = 2.0, compute_mode=None) -> Tensor:
    """Pairwise ``p``-norm distances between the rows of ``x1`` (..., P, M) and ``x2`` (...,
    R, M): (..., P, R).  Computed from the differences (exact; memory P R M), with the
    gradient 0 at distance 0, as torch."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        x1, x2 = _amp.fp32(x1, x2)
    pt = _pt()
    a, b = _tensor(x1, "cdist"), _tensor(x2, "cdist")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cdist: x1 (..., P, M) and x2 (..., R, M) must have the same last "
                         f"dim, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    diff = a.unsqueeze(-2) - b.unsqueeze(-3)
    return pt.linalg.vector_norm(diff, p, dim=-1)


def nanmedian(input, dim=None, keepdim=False):
    """The median ignoring NaN (the lower of the two middle values), over all elements or
    along ``dim`` (then a named tuple ``(values, indices)``); all-NaN slices give NaN."""
    pt = _pt()
    x = _tensor(input, "nanmedian")
    if dim is None:
        flat = x.reshape(-1)
        if not flat.shape[0]:
            return pt.full((), float("nan"), dtype=x.dtype, device=x.device)
        r = nanmedian(flat, 0)
        return r.values
    d = normalize_dim(dim, builtins.max(x.ndim, 1), "nanmedian")
    src = x if x.ndim else x.reshape(1)
    s = pt.sort(src, dim=d, stable=True)  # NaN last
    valid = (~pt.isnan(src)).to(_dt.int64).sum(d, keepdim=True)
    k = ((valid - 1).clamp(min=0)) // 2
    v = pt.take_along_dim(s.values, k, d)
    i = pt.take_along_dim(s.indices, k, d)
    if not keepdim or x.ndim == 0:
        v, i = v.squeeze(d), i.squeeze(d)
    return NanmedianResult(v, i)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of equal consecutive elements (of the flattened input, or slices along
    ``dim``), as ``torch.unique_consecutive``; the output size depends on the values, so they
    are read on the host."""
    pt = _pt()
    x = _tensor(input, "unique_consecutive")
    if dim is None:
        flat = x.reshape(-1)
        n = flat.shape[0]
        change = pt.ones(n, dtype=_dt.bool, device=x.device)
        if n > 1:
            change = pt.cat([change[:1], flat[1:] != flat[:-1]])
        values = flat[change]
    else:
        d = normalize_dim(dim, x.ndim, "unique_consecutive")
        n = x.shape[d]
        change = pt.ones(n, dtype=_dt.bool, device=x.device)
        if n > 1:
            other = tuple(i for i in range(x.ndim) if i != d)
            neq = x.narrow(d, 1, n - 1) != x.narrow(d, 0, n - 1)
            change = pt.cat([change[:1], neq.any(other) if other else neq])
        values = x.index_select(d, pt.nonzero(change).reshape(-1))
    out = [values]
    if return_inverse or return_counts:
        group = pt.cumsum(change.to(_dt.int64), 0) - 1
        if return_inverse:
            out.append(group.reshape(x.shape) if dim is None else group)
        if return_counts:
            m = values.shape[0] if dim is None else values.shape[d]
            out.append(pt.zeros(m, dtype=_dt.int64, device=x.device).index_add(
                0, group, pt.ones_like(group)))
    return out[0] if len(out) == 1 else tuple(out)


def _unfold(self, dimension, size, step) -> Tensor:
    """All windows of ``size`` elements, every ``step``, along ``dimension``: that dim becomes
    the number of windows and a new last dim of ``size`` holds each window
    (``torch.Tensor.unfold``)."""
    pt = _pt()
    x = self
    d = normalize_dim(dimension, builtins.max(x.ndim, 1), "unfold")
    n = x.shape[d] if x.ndim else 1
    size, step = operator.index(size), operator.index(step)
    if size > n or size < 0:
        raise ValueError(f"unfold: size ({size}) must be in [0, {n}] (the size of dimension "
                         f"{d})")
    if step <= 0:
        raise ValueError(f"unfold: step must be positive, got {step}")
    if x.ndim == 0:
        return x.reshape(1)
    count = (n - size) // step + 1
    idx = (pt.arange(count, device=x.device)[:, None] * step +
           pt.arange(size, device=x.device)[None, :]).reshape(-1)
    picked = x.index_select(d, idx)
    picked = picked.reshape(x.shape[:d] + (count, size) + x.shape[d + 1:])
    return picked.movedim(d + 1, -1)


# --- small elementwise compositions -----------------------------------------------------------
def _operands(op, a, b):
    pt = _pt()
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one tensor, got {describe(a)} and "
                        f"{describe(b)}")
    if not isinstance(a, Tensor):
        a = pt.asarray(a, device=b.device)
    if not isinstance(b, Tensor):
        b = pt.asarray(b, device=a.device)
    return a, b


def fmax(input, other) -> Tensor:
    """The elementwise maximum, a NaN ignored when the other value is a number (NumPy's
    ``fmax``; ``maximum`` propagates NaN instead)."""
    pt = _pt()
    a, b = _operands("fmax", input, other)
    m = pt.maximum(a, b)
    return pt.where(pt.isnan(a), b.to(m.dtype), pt.where(pt.isnan(b), a.to(m.dtype), m))


def fmin(input, other) -> Tensor:
    """The elementwise minimum, a NaN ignored when the other value is a number."""
    pt = _pt()
    a, b = _operands("fmin", input, other)
    m = pt.minimum(a, b)
    return pt.where(pt.isnan(a), b.to(m.dtype), pt.where(pt.isnan(b), a.to(m.dtype), m))


def _floating(op, x):
    x = _tensor(x, op)
    return x if x.dtype.is_floating_point else x.to(_dt.get_default_dtype())


def deg2rad(input) -> Tensor:
    """Degrees to radians."""
    return _floating("deg2rad", input) * (math.pi / 180.0)


def rad2deg(input) -> Tensor:
    """Radians to degrees."""
    return _floating("rad2deg", input) * (180.0 / math.pi)


def ldexp(input, other) -> Tensor:
    """``input * 2 ** other``."""
    pt = _pt()
    a, b = _operands("ldexp", input, other)
    a = a if a.dtype.is_floating_point or a.dtype.is_complex else \
        a.to(_dt.get_default_dtype())
    return a * pt.pow(2.0, b.to(a.dtype if a.dtype.is_floating_point else
                                a.dtype.to_real()))


def complex(real, imag) -> Tensor:
    """The complex tensor ``real + 1j * imag`` (both float32 -> complex64, float64 ->
    complex128, one dtype)."""
    r, i = _tensor(real, "complex"), _tensor(imag, "complex")
    if r.dtype is not i.dtype or r.dtype.name not in ("float32", "float64"):
        raise TypeError(f"complex: real and imag must both be float32 or both float64, got "
                        f"{r.dtype.name} and {i.dtype.name}")
    c = _dt.complex64 if r.dtype.name == "float32" else _dt.complex128
    return r.to(c) + i.to(c) * 1j


def polar(abs, angle) -> Tensor:  # noqa: A002 -- torch's argument names
    """The complex tensor with modulus ``abs`` and argument ``angle``."""
    pt = _pt()
    return complex(abs * pt.cos(angle), abs * pt.sin(angle))


TENSOR_METHODS = {
    "fmax": fmax, "fmin": fmin, "deg2rad": deg2rad, "rad2deg": rad2deg, "ldexp": ldexp,
    "cummax": cummax, "cummin": cummin, "logcumsumexp": logcumsumexp,
    "nanmedian": nanmedian, "unique_consecutive": unique_consecutive, "unfold": _unfold,
    "addmm": addmm, "addmv": addmv, "addbmm": addbmm, "baddbmm": baddbmm, "frac": frac,
    "sgn": sgn, "logit": logit, "xlogy": xlogy, "sinc": sinc, "heaviside": heaviside,
    "rot90": rot90, "aminmax": aminmax, "msort": msort, "kthvalue": kthvalue,
    "quantile": quantile, "index_fill": index_fill, "masked_scatter": masked_scatter,
    "renorm": renorm, "diagflat": diagflat, "diag_embed": diag_embed, "hsplit": hsplit,
    "vsplit": vsplit, "dsplit": dsplit, "bincount": bincount, "histc": histc,
}
