"""The gamma family (``lgamma``, ``digamma``, ``polygamma``) on the array module's ufuncs.

The formulas are the kernel-level defaults' (``polyten.dispatch.defaults``), written once on
an object with the kernels' names; here that object maps them straight to ufuncs (constants
stay Python floats), and the elements are split by branch first, so that each branch runs
only on its own elements (the defaults compute every branch everywhere and select with
``where``: a kernel there cannot read values on the host).  Narrower floats are computed in
float64 and rounded once: never less accurate than PyTorch's float32 computation of
float16 / bfloat16 / float32.

Why not ``math.lgamma`` per element (as ``erf`` falls back to ``math.erf``): on 1e6 float64
elements it took as long as the all-branches formula (~0.2 s through Python floats) and
several times longer than this; ``math`` has no digamma or polygamma, and SciPy is not a
dependency.
"""

from __future__ import annotations

from polyten.dispatch.defaults import (_lgamma_pos, _lgamma_reflect, _polygamma_scale,
                                       _psi_pos, _psi_reflect, _zeta_neg, _zeta_pos)


class _Ufuncs:
    """``k.add`` ... for the shared formulas: the array module's ufuncs."""

    def __init__(self, xp):
        self.add, self.sub, self.mul, self.div = xp.add, xp.subtract, xp.multiply, xp.divide
        self.neg, self.abs, self.log, self.log1p = xp.negative, xp.abs, xp.log, xp.log1p
        self.sin, self.cos, self.floor = xp.sin, xp.cos, xp.floor
        self.where, self.lt, self.eq, self.isnan = xp.where, xp.less, xp.equal, xp.isnan
        self.logical_or, self.logical_and = xp.logical_or, xp.logical_and
        self.logical_not = xp.logical_not

    @staticmethod
    def const(like, value):
        return value


def kernels(xp, **ctx) -> dict:
    k = _Ufuncs(xp)
    f64 = xp.dtype("float64")
    nan, inf = float("nan"), float("inf")
    # the formulas' inf and NaN are results (log(0) at the poles, 1 / 0), and their ufuncs
    # are called from polyten.dispatch.defaults, outside quiet_fp_warnings' module filter
    quiet = getattr(xp, "errstate", None)

    def run(compute, x, *args):
        d = x.dtype
        w = (x if d == f64 else x.astype(f64)).reshape(-1)
        if quiet is None:
            r = compute(w, *args)
        else:
            with quiet(all="ignore"):
                r = compute(w, *args)
        r = r.reshape(x.shape)
        return r if r.dtype == d else r.astype(d)

    def split_pos(fn, y, out, idx):
        """out[idx] = fn(y) for y >= 0 / NaN, each of the "small" and "big" branches on its
        own elements."""
        small = y < 10.0
        if small.all():
            out[idx] = fn(k, y, "small")
            return
        if not small.any():
            out[idx] = fn(k, y, "big")
            return
        sub = out[idx]
        sub[small] = fn(k, y[small], "small")
        big = ~small
        sub[big] = fn(k, y[big], "big")
        out[idx] = sub

    def with_reflection(pos_fn, reflect):
        def compute(w):
            out = xp.empty_like(w)
            neg = w < 0.0
            if not neg.any():
                split_pos(pos_fn, w, out, slice(None))
                return out
            xn = w[neg]
            fwd = ~neg
            split_pos(pos_fn, w[fwd], out, fwd)
            tmp = xp.empty_like(xn)
            split_pos(pos_fn, 1.0 - xn, tmp, slice(None))
            out[neg] = reflect(k, xn, tmp)
            return out
        return compute

    lgamma_c = with_reflection(_lgamma_pos, _lgamma_reflect)
    digamma_c = with_reflection(_psi_pos, _psi_reflect)

    def polygamma_c(w, n):
        s = n + 1
        scale = _polygamma_scale(n)
        pos = w > 0.0
        out = xp.empty_like(w)
        if pos.all():
            out[...] = _zeta_pos(k, s, w)
        else:
            out[pos] = _zeta_pos(k, s, w[pos])
            rest = ~pos
            xr = w[rest]
            pole = xr == xp.floor(xr)  # 0, the negative integers and -inf
            vals = xp.full(xr.shape, inf)
            ok = ~(pole | xp.isnan(xr))
            vals[ok] = _zeta_neg(k, s, xr[ok])
            vals[xp.isnan(xr) | (xr == -inf)] = nan
            out[rest] = vals
        out *= scale
        return out

    def lgamma(x):
        return run(lgamma_c, x)

    def digamma(x):
        return run(digamma_c, x)

    def polygamma(x, n):
        if n == 0:
            return digamma(x)
        return run(polygamma_c, x, n)

    return {"lgamma": lgamma, "digamma": digamma, "polygamma": polygamma}
