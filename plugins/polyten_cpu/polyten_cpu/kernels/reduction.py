"""Reduction kernels: sums, means, extrema, variance, norms, scans.

Conventions (``polyten.dispatch.optable``): ``dims`` is ``None`` (all dims) or a sorted tuple of
non-negative dims (``()`` reduces nothing); the core has checked dtypes and shapes (for example
that a max is not taken over an empty dimension).  Results are arrays, never NumPy scalars, of
exactly the documented dtype: float16 and bfloat16 inputs are accumulated in float32 (as
PyTorch does) and the result cast back, and float32 stays float32.
"""

from __future__ import annotations

import contextlib
import math

from ._util import low_precision


def _acc(x, d):
    """The ``dtype=`` of a sum / product / scan into ``d``: None (the array module's default,
    the same) for floating ``x`` already of ``d``; ``d`` itself for bool and integers, whose
    default NumPy and CuPy widen to int64 -- an explicit int8 sum wraps in int8, as torch's."""
    return None if d is x.dtype and x.dtype.kind not in "biu" else d


def kernels(xp, **ctx) -> dict:
    nd = xp.ndarray
    asarray = xp.asarray
    _errstate = getattr(xp, "errstate", None)

    def quiet():
        # NumPy warns on 0/0, log(0) and the like; the results (nan, inf) are the contract
        if _errstate is None:
            return contextlib.nullcontext()
        return _errstate(divide="ignore", invalid="ignore", over="ignore")

    def arr(r):
        return r if r.__class__ is nd else asarray(r)

    def count(shape, dims):
        n = 1
        for d in (range(len(shape)) if dims is None else dims):
            n *= shape[d]
        return n

    def squeeze(r, dims, ndim):
        if dims is None:
            return r.reshape(())
        return r.reshape(tuple(s for i, s in enumerate(r.shape) if i not in dims))

    dtypes = {}

    def native(name):
        d = dtypes.get(name)
        if d is None:
            d = dtypes[name] = xp.dtype(name)
        return d

    LOW, F32 = low_precision(xp), native("float32")

    def ax(dims):
        # an int axis takes a faster path than a 1-tuple in NumPy
        return dims[0] if dims is not None and len(dims) == 1 else dims

    # array methods, not the module functions: they skip NumPy's __array_function__ dispatch
    # (half the cost of a small reduction) and exist on CuPy arrays too
    # ufunc.reduce directly: NumPy's ndarray.sum is a Python wrapper around add.reduce that
    # costs about 1 us per call on small arrays (CuPy: ndarray.sum is already direct)
    add_reduce = getattr(xp.add, "reduce", None) if xp.__name__ == "numpy" else None

    empty = xp.empty
    short = {F32: {}, native("float64"): {}}  # dtype -> {n: read-only ones}, for sums below

    def sum_(x, dims, keepdim, dtype):
        d = dtypes.get(dtype) or native(dtype)
        if d in LOW:
            return arr(x.sum(axis=ax(dims), dtype=F32, keepdims=keepdim)).astype(d)
        if add_reduce is not None:
            ones = short.get(d)
            if ones is not None and x.ndim == 1 and not keepdim and x.dtype is d and \
                    x.shape[0] <= 128 and dims != ():
                # a short float vector: BLAS dot with ones costs a third of ufunc.reduce's
                # set-up, and sums in the same accuracy class (NumPy's pairwise sum only
                # starts above 128 elements; below, both keep a few SIMD partial sums)
                n = x.shape[0]
                o = ones.get(n)
                if o is None:
                    o = ones[n] = xp.ones(n, d)
                    o.flags.writeable = False
                return asarray(x.dot(o))
            if dims is None and not keepdim:
                # into a 0-d array: NumPy would return a scalar, to be wrapped again
                return add_reduce(x, None, _acc(x, d), empty((), d), False)
            r = add_reduce(x, ax(dims), _acc(x, d), None, keepdim)
        else:
            r = x.sum(axis=ax(dims), dtype=_acc(x, d), keepdims=keepdim)
        return r if r.__class__ is nd else asarray(r)

    def prod(x, dims, keepdim, dtype):
        d = native(dtype)
        with quiet():
            if d in LOW:
                return arr(x.prod(axis=ax(dims), dtype=F32, keepdims=keepdim)).astype(d)
            return arr(x.prod(axis=ax(dims), dtype=_acc(x, d),
                              keepdims=keepdim))

    def mean(x, dims, keepdim):
        n = count(x.shape, dims)
        acc = F32 if x.dtype in LOW else None
        s = x.sum(axis=ax(dims), dtype=acc, keepdims=keepdim)
        if n == 0:
            with quiet():  # the mean of nothing is nan (0/0), as in PyTorch
                r = s / 0
        else:
            r = s / n
        r = r if r.__class__ is nd else asarray(r)
        return r if acc is None else r.astype(x.dtype)

    def amax(x, dims, keepdim):
        r = x.max(axis=ax(dims), keepdims=keepdim)
        return r if r.__class__ is nd else asarray(r)

    def amin(x, dims, keepdim):
        r = x.min(axis=ax(dims), keepdims=keepdim)
        return r if r.__class__ is nd else asarray(r)

    def argmax(x, dim, keepdim):
        if x.ndim == 0:
            return xp.zeros((), dtype="int64")
        return arr(x.argmax(axis=dim, keepdims=keepdim)).astype("int64", copy=False)

    def argmin(x, dim, keepdim):
        if x.ndim == 0:
            return xp.zeros((), dtype="int64")
        return arr(x.argmin(axis=dim, keepdims=keepdim)).astype("int64", copy=False)

    def _extreme_dim(values_method, index_method):
        # two fast reductions beat argmax + take_along_axis (a gather) in NumPy; both see NaN
        # as the extreme, so values and indices agree
        def k(x, dim, keepdim):
            if x.ndim == 0:
                return x.copy(), xp.zeros((), dtype="int64")
            v = getattr(x, values_method)(axis=dim, keepdims=keepdim)
            i = getattr(x, index_method)(axis=dim, keepdims=keepdim)
            return arr(v), arr(i).astype("int64", copy=False)
        return k

    def _var(x, dims, correction, keepdim):
        # two-pass (mean, then squared deviations): stable, and exact for constant inputs
        if x.dtype in LOW:
            x = x.astype(F32)
        n = count(x.shape, dims)
        a = ax(dims)
        d = x - x.sum(axis=a, keepdims=True) / n if n > 0 else x
        sq = d.real * d.real + d.imag * d.imag if d.dtype.kind == "c" else d * d
        s = sq.sum(axis=a, keepdims=keepdim)
        denom = n - correction
        with quiet():
            return s / (denom if denom > 0 else 0)

    def var(x, dims, correction, keepdim):
        return arr(_var(x, dims, correction, keepdim)).astype(x.real.dtype, copy=False)

    def std(x, dims, correction, keepdim):
        return arr(xp.sqrt(_var(x, dims, correction, keepdim))).astype(x.real.dtype,
                                                                         copy=False)

    def logsumexp(x, dims, keepdim):
        out_dtype = x.dtype
        if x.dtype in LOW:
            x = x.astype("float32")
        with quiet():
            if count(x.shape, dims) == 0:
                r = xp.log(xp.sum(xp.exp(x), axis=dims, keepdims=keepdim))
                return arr(r).astype(out_dtype, copy=False)
            m = xp.amax(x, axis=dims, keepdims=True)
            # an infinite max would give inf - inf = nan below; shift by 0 instead
            m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
            s = xp.sum(xp.exp(x - m), axis=dims, keepdims=keepdim)
            r = xp.log(s)
            r += m if keepdim else squeeze(m, dims, x.ndim)
        return arr(r).astype(out_dtype, copy=False)

    def vector_norm(x, ord, dims, keepdim):
        a = xp.abs(x)
        out_dtype = a.dtype
        if a.dtype in LOW:
            a = a.astype("float32")
        with quiet():
            if ord == 2:
                r = xp.sqrt(xp.sum(a * a, axis=dims, keepdims=keepdim))
            elif ord == math.inf:
                r = xp.amax(a, axis=dims, keepdims=keepdim)
            elif ord == -math.inf:
                r = xp.amin(a, axis=dims, keepdims=keepdim)
            elif ord == 0:
                r = xp.sum(a != 0, axis=dims, keepdims=keepdim).astype(a.dtype)
            elif ord == 1:
                r = xp.sum(a, axis=dims, keepdims=keepdim)
            else:
                r = xp.sum(a ** ord, axis=dims, keepdims=keepdim) ** (1.0 / ord)
        return arr(r).astype(out_dtype, copy=False)

    def all_(x, dims, keepdim):
        r = x.all(axis=ax(dims), keepdims=keepdim)
        return r if r.__class__ is nd else asarray(r)

    def any_(x, dims, keepdim):
        r = x.any(axis=ax(dims), keepdims=keepdim)
        return r if r.__class__ is nd else asarray(r)

    def _scan(fn):
        def k(x, dim, dtype):
            d = native(dtype)
            if x.ndim == 0:
                return x.astype(d)
            with quiet():
                if d in LOW:
                    return fn(x, axis=dim, dtype=F32).astype(d)
                return fn(x, axis=dim, dtype=_acc(x, d))
        return k

    return {"sum": sum_, "prod": prod, "mean": mean, "amax": amax, "amin": amin,
            "argmax": argmax, "argmin": argmin, "max_dim": _extreme_dim("max", "argmax"),
            "min_dim": _extreme_dim("min", "argmin"), "var": var, "std": std,
            "logsumexp": logsumexp, "vector_norm": vector_norm, "all": all_, "any": any_,
            "cumsum": _scan(xp.cumsum), "cumprod": _scan(xp.cumprod)}
