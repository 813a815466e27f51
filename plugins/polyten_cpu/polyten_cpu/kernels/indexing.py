"""Indexing kernels: item access, gather/scatter, nonzero, sort/topk, unique, searchsorted, isin.

Keys and index arrays arrive normalised and bounds-checked by the core (see
``polyten/api/indexing.py``), so nothing here validates; out-of-range indices never reach a
kernel (CuPy would wrap them silently).
"""

from __future__ import annotations

from ._util import bfloat16_or_void, full_signed, negative_zero


def kernels(xp, **ctx) -> dict:
    nd = xp.ndarray
    is_numpy = xp.__name__ == "numpy"
    asarray = xp.asarray
    take_along_axis = xp.take_along_axis
    int64 = xp.int64
    BF16 = bfloat16_or_void(xp)
    # NaNs are distinct in unique (torch.unique, the Array API); NumPy merges them by default
    # and older CuPy has no equal_nan (and then never merges them)
    try:
        import inspect
        nan_distinct = ({"equal_nan": False}
                        if "equal_nan" in inspect.signature(xp.unique).parameters else {})
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        nan_distinct = {}
    add_at = getattr(xp.add, "at", None)
    if add_at is None:  # CuPy spells ufunc.at as cupyx.scatter_add
        try:
            from cupyx import scatter_add as add_at  # noqa: F811
        except ImportError:  # pragma: no cover
            add_at = None

    def getitem(x, key):
        r = x[key]
        # the core always puts an Ellipsis in the key, so basic indexing yields a 0-d view
        # rather than a NumPy scalar; the asarray is for libraries that differ
        return r if r.__class__ is nd else asarray(r)

    def setitem(x, key, value):
        if key.__class__ is tuple:
            for k in key:
                if k.__class__ is nd and k.dtype.kind in "iu" and not k.flags.c_contiguous:
                    # NumPy writes through such an index array in its memory order; in C
                    # order the last write to a repeated position is the one that stays
                    # (torch's deterministic order, and the cuda backend's)
                    key = tuple(xp.ascontiguousarray(p) if p.__class__ is nd
                                and p.dtype.kind in "iu" else p for p in key)
                    break
        if not is_numpy and negative_zero(value):
            value = full_signed(xp, (), value, x.dtype)  # CuPy fills a zero by memset
        x[key] = value

    def _grid(index, dim):
        # open index grid: index along `dim`, aranges elsewhere (scatter's coordinates)
        n = index.ndim
        out = []
        for d in range(n):
            if d == dim:
                out.append(index)
            else:
                shp = [1] * n
                shp[d] = index.shape[d]
                out.append(xp.arange(index.shape[d], dtype=int64).reshape(shp))
        return tuple(out)

    def _clip_to(a, index, dim):
        # the part of `a` an index of smaller extent addresses (dims other than `dim`)
        if a.shape == index.shape:
            return a
        return a[tuple(slice(0, index.shape[d]) if d != dim else slice(None)
                       for d in range(index.ndim))]

    def gather(x, dim, index):
        if x.ndim == 0:
            return x.copy()
        return take_along_axis(_clip_to(x, index, dim), index, axis=dim)

    def _src_part(src, index):
        if not hasattr(src, "shape") or src.shape == index.shape:
            return src
        return src[tuple(slice(0, s) for s in index.shape)]

    def scatter(x, dim, index, src):
        out = x.copy()
        if x.ndim == 0:
            out[...] = src
            return out
        out[_grid(index, dim)] = _src_part(src, index)
        return out

    def scatter_add(x, dim, index, src):
        out = x.copy()
        if x.ndim == 0:
            out[...] += src
            return out
        part = _src_part(src, index)
        if not hasattr(part, "shape"):
            part = xp.full(index.shape, part, dtype=x.dtype)
        add_at(out, _grid(index, dim), part)
        return out

    reduce_ufuncs = {"sum": xp.add, "mean": xp.add, "prod": xp.multiply, "amax": xp.maximum,
                     "amin": xp.minimum}

    def _identity(reduce, dt):
        """The value that leaves a reduction unchanged (written over x's values at the
        scattered positions when include_self is False)."""
        if reduce in ("sum", "mean"):
            return 0
        if reduce == "prod":
            return 1
        big = xp.inf if dt.kind == "f" else (xp.iinfo(dt).max if reduce == "amin"
                                              else xp.iinfo(dt).min)
        return -big if reduce == "amax" and dt.kind == "f" else big

    def scatter_reduce(x, dim, index, src, reduce, include_self):
        if x.ndim == 0:
            one = (1,)
            return scatter_reduce(x.reshape(one), 0, index.reshape(one), src.reshape(one),
                                  reduce, include_self).reshape(())
        dt = x.dtype
        # float16 / bfloat16 accumulate in float32 and round once (ufunc.at would round
        # after every element; ml_dtypes has no ufunc.at loops)
        acc = xp.dtype(xp.float32) if dt == xp.float16 or dt == BF16 else dt
        out = x.astype(acc, copy=True)
        grid = _grid(index, dim)
        part = _src_part(src, index).astype(acc, copy=False)
        if not include_self:
            out[grid] = _identity(reduce, acc)
        reduce_ufuncs[reduce].at(out, grid, part)  # maximum / minimum propagate NaN
        if reduce == "mean":
            count = xp.full(x.shape, int(include_self), dtype=int64)
            add_at(count, grid, 1)
            xp.maximum(count, 1, out=count)
            if acc.kind == "f":
                out /= count.astype(acc)
            else:  # PyTorch: floor division for integers
                out = (out.astype(int64) // count).astype(acc)
        return out.astype(dt, copy=False)

    def nonzero(x):
        return xp.argwhere(x).astype(int64, copy=False)

    def sortable(a):
        """``a`` as an array the sorts and searches order right: bfloat16 as float32 (exact
        and order-preserving; ml_dtypes' bfloat16 sort does not put NaN last, and CuPy's
        sorts are compiled for the standard types)."""
        return a.astype("float32") if a.dtype == BF16 else a

    radix_key = ctx.get("radix_key")  # the cuda backend's (fused_src's radix_key)
    radix_prone = frozenset((xp.dtype("float32"), xp.dtype("float64")))

    def sort_key(a, zero=True):
        """``sortable(a)`` for a sort.  With a ``radix_key`` (CuPy sorts a 1-D float32 /
        float64 array with a radix sort, by the bits), a 1-D array gets one positive NaN and,
        with ``zero``, 0.0 for -0.0, so that NaN sorts last and the zeros keep their order,
        as NumPy and torch sort."""
        if radix_key is not None and a.ndim == 1 and a.dtype in radix_prone:
            return radix_key(a, zero)
        return sortable(a)

    def _argsort(x, dim, descending, stable=True):
        # descending sorts the reversed array and maps the indices back, so that with a
        # stable sort equal elements keep their original order (torch's stable=True) and NaN
        # comes first when descending, last when ascending (as torch.sort)
        kind = "stable" if stable else None
        x = sort_key(x)
        if not descending:
            return xp.argsort(x, axis=dim, kind=kind).astype(int64, copy=False)
        n = x.shape[dim]
        idx = xp.argsort(xp.flip(x, dim), axis=dim, kind=kind)
        return ((n - 1) - xp.flip(idx, dim)).astype(int64, copy=False)

    def sort(x, dim, descending, stable):
        if x.ndim == 0:
            return x.copy(), xp.zeros((), dtype=int64)
        idx = _argsort(x, dim, descending, stable)
        if x.dtype.kind in "biu":
            # equal integers are indistinguishable: sorting the values directly is cheaper
            # than gathering them, and gives the same array
            vals = xp.sort(x, axis=dim)
            return (xp.flip(vals, dim).copy() if descending else vals), idx
        return take_along_axis(x, idx, axis=dim), idx

    def topk(x, k, dim, largest, sorted):
        if x.ndim == 0:
            return x.copy(), xp.zeros((), dtype=int64)
        n = x.shape[dim]
        if 0 < k and 4 * k < n:
            # partition first: O(n) to find the k candidates, then sort only those
            kth = n - k if largest else k - 1
            part = xp.argpartition(sort_key(x), kth, axis=dim)
            sl = [slice(None)] * x.ndim
            sl[dim] = slice(n - k, None) if largest else slice(0, k)
            cand = part[tuple(sl)]
            vals = take_along_axis(x, cand, axis=dim)
            order = _argsort(vals, dim, largest)
            idx = take_along_axis(cand, order, axis=dim).astype(int64, copy=False)
        else:
            sl = [slice(None)] * x.ndim
            sl[dim] = slice(0, k)
            idx = _argsort(x, dim, largest)[tuple(sl)]
        return take_along_axis(x, idx, axis=dim), idx

    def unique(x, return_inverse, return_counts):
        # the values are read from the keyed array: NaNs keep no sign bit, zeros keep theirs
        res = xp.unique(sort_key(x.reshape(-1), zero=False), return_inverse=return_inverse,
                        return_counts=return_counts, **nan_distinct)
        if not (return_inverse or return_counts):
            return res.astype(x.dtype, copy=False), None, None
        res = list(res)
        values = res.pop(0).astype(x.dtype, copy=False)
        inverse = res.pop(0).reshape(-1).astype(int64, copy=False) if return_inverse else None
        counts = res.pop(0).astype(int64, copy=False) if return_counts else None
        return values, inverse, counts

    def masked_fill(x, mask, value):
        return asarray(xp.where(mask, value, x)).astype(x.dtype, copy=False)

    def searchsorted(x, y, right):
        side = "right" if right else "left"
        x, y = sortable(x), sortable(y)
        if x.ndim == 1:
            return asarray(xp.searchsorted(x, y, side=side)).astype(int64, copy=False)
        # one sorted row per leading index (the core checked that the leading dims agree);
        # the array modules search 1-D sequences only
        rows = 1
        for s in x.shape[:-1]:
            rows *= s
        xr, yr = x.reshape(rows, x.shape[-1]), y.reshape(rows, y.shape[-1])
        out = xp.empty(yr.shape, dtype=int64)
        for i in range(rows):
            out[i] = xp.searchsorted(xr[i], yr[i], side=side)
        return out.reshape(y.shape)

    def segment_argmax(x, starts):
        # one pass per reduction over the rows (ufunc.reduceat), instead of padding every
        # segment to the longest one
        n, d = x.shape
        m = starts.shape[0]
        out = xp.zeros((m, d), dtype=int64)
        if m == 0 or n == 0:
            return out
        begin = xp.maximum.accumulate(xp.clip(starts.astype(int64), 0, n))
        begin[0] = 0
        end = xp.append(begin[1:], n)
        out[...] = xp.minimum(begin, n - 1)[:, None]
        full = end > begin
        b = begin[full]
        v = sortable(x)
        best = xp.maximum.reduceat(v, b, axis=0)           # NaN propagates, as argmax
        rows = xp.repeat(xp.arange(b.shape[0]), xp.diff(xp.append(b, n)))
        top = best[rows]
        hit = v == top
        if v.dtype.kind == "f":
            hit |= (v != v) & (top != top)
        first = xp.where(hit, xp.arange(n, dtype=int64)[:, None], n)
        out[full] = xp.minimum.reduceat(first, b, axis=0)
        return out

    def isin(x, y, invert):
        if is_numpy or x.dtype.kind not in "fcV":
            return asarray(xp.isin(sortable(x), sortable(y), invert=invert))
        # CuPy's in1d sorts y and counts x between searchsorted's left and right ends, where
        # a NaN query lands on y's NaNs and is found; NaN is in nothing (NumPy, torch).  The
        # sort is a radix sort: y by the sort key, so that a NaN with the sign bit does not
        # come first and break the search
        xs = sortable(x)
        r = xp.isin(xs, sort_key(y.reshape(-1)))
        nan = xs != xs
        return asarray(~r | nan if invert else r & ~nan)

    return {"getitem": getitem, "setitem": setitem, "gather": gather, "scatter": scatter,
            "scatter_add": scatter_add, "nonzero": nonzero, "sort": sort, "topk": topk,
            "unique": unique, "masked_fill": masked_fill, "searchsorted": searchsorted,
            "segment_argmax": segment_argmax, "isin": isin,
            # CuPy's ufunc.at has no multiply and takes few dtypes for maximum / minimum
            # (atomics): there the op's default (a sort and a segmented scan) runs instead
            **({"scatter_reduce": scatter_reduce} if is_numpy else {})}
