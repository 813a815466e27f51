"""Fused kernels of the convolution and pooling composites: ``conv``, ``conv_transpose``,
``max_pool`` (forward here, backward in :func:`backward_kernels`).

Convolution is im2col + one batched BLAS product per call, never a loop over output
positions.  The columns are gathered by ``as_strided`` views (one copy) in a channel-major
layout ``(groups, C/groups * K, N * L)`` so that the forward, the weight gradient and the
input gradient are each a single ``matmul`` over the groups; the input gradient scatters the
columns back (col2im) with one strided in-place add per kernel offset (K adds, no ``add.at``).

Stride-1 convolutions of 2-D/3-D inputs use the *flat* layout: the padded image is read as one
flat row per (sample, channel), where kernel offset ``(i, j)`` is a constant shift of
``i * d * Wp + j * d``.  A column is then one contiguous run of ``L = (H_out - 1) * Wp + W_out``
elements instead of ``H_out`` runs of ``W_out``: the im2col copy and the col2im adds become
long contiguous copies (NumPy's per-run overhead dominates small images such as 8x8), at the
cost of computing ``Wp - W_out`` unused columns per row (used only when that waste is small).

Everything is written against ``xp`` (NumPy or CuPy: both have ``lib.stride_tricks.as_strided``,
``matmul`` over stacked matrices, ``copyto(where=)`` and ``bincount(weights=)``).  float16 and
bfloat16 are computed in float32 and rounded once.
"""

from __future__ import annotations

import itertools
import threading

from ._util import is_floating, low_precision

# flat layout only while it computes at most 1.5x the needed columns (a backend's context may
# lower it: ``ctx["flat_waste"]``)
_FLAT_WASTE = 1.5
# NumPy: the temporaries of a kernel (padded images, column matrices, product grids) are the
# largest allocations of a training step.  Fresh ones per call land on pages that glibc has
# just returned to the system (faulting them in costs several times the copy), and the heap
# they leave behind is trimmed and regrown whenever the shapes change (the short last batch
# of an epoch, layers of different sizes).  So each thread keeps one buffer per role, grown to
# the largest request so far (up to this size) and never shrunk: the steady state allocates
# no temporaries, and its working set is the largest step's, held.
SCRATCH_LIMIT = 1 << 24  # bytes per role and thread
_scratch = threading.local()


def _row_major(shape):
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


class _Geometry:
    """Where the columns of a convolution come from, in elements of the padded spatial block.

    ``P`` padded spatial shape, ``O`` output spatial shape, ``k`` kernel shape; ``gshape`` /
    ``gstr`` the grid of column positions (flat: ``(L,)`` / ``(1,)``; exact: ``O`` / strided),
    ``kstr`` the shift of each kernel offset, ``ostr`` where output position ``o`` sits in the
    grid (flat layout only).
    """

    __slots__ = ("P", "O", "k", "K", "gshape", "gstr", "kstr", "ostr", "L")

    def __init__(self, P, O, k, stride, dilation, flat_waste=_FLAT_WASTE):
        pstr = _row_major(P)
        self.P, self.O, self.k = tuple(P), tuple(O), tuple(k)
        K = 1
        for kk in k:
            K *= kk
        self.K = K
        self.kstr = tuple(d * ps for d, ps in zip(dilation, pstr))
        n_out = 1
        for o in O:
            n_out *= o
        flat_len = 1 + sum((o - 1) * ps for o, ps in zip(O, pstr))
        if (len(P) > 1 and all(s == 1 for s in stride) and n_out > 0
                and flat_len <= flat_waste * n_out):
            self.gshape, self.gstr, self.ostr, self.L = (flat_len,), (1,), pstr, flat_len
        else:
            self.gshape = self.O
            self.gstr = tuple(s * ps for s, ps in zip(stride, pstr))
            self.ostr, self.L = None, n_out


def _ctx_ops(xp, ctx) -> dict:
    return _ops(xp, ctx.get("col2im"), ctx.get("im2col"), ctx.get("matmul"),
                ctx.get("half", frozenset()), ctx.get("from_grid"), ctx.get("to_grid"),
                ctx.get("channel_sum"), ctx.get("flat_waste", _FLAT_WASTE))


def kernels(xp, **ctx) -> dict:
    """``ctx["col2im"]`` / ``ctx["im2col"]``: a backend's own col2im (``(cols, geo, n, c) ->
    (N, C, *P)``) and im2col of a zero-padded input (``(x, pads, geo, groups) -> (G, C/G * K,
    N * L)``), each returning ``None`` where it declines, used instead of the versions here
    (K strided adds; a padded copy then a strided copy).  ``ctx["matmul"]``: the products
    (``(a, b, out=None)``, ``xp.matmul``'s signature); ``ctx["half"]``: the half dtypes that
    this matmul and the backend's col2im accumulate in float32 themselves -- kept as they are
    instead of computed in float32 (im2col, the products and the gradient grids then move
    half the bytes); this matmul also takes a float32 ``out`` for half operands (the input
    gradient's columns, summed by col2im before one rounding), and the bias gradient sums in
    float32.  ``ctx["from_grid"]`` / ``ctx["to_grid"]``: a backend's own product grid to
    output layout with the bias added (``(res, geo, n, bias, dtype) -> (N, C, *O)``, ``res``
    in float32 for a kept half ``dtype``: the bias added before the one rounding) and output
    gradient to grid layout (``(g, geo, groups) -> (G, C/G, N * L)``), each returning
    ``None`` where it declines; with them, col2im is also asked for the unpadded block of the
    image (``crop=(lo, shape)``) and the weight gradient is the product ``grid @ cols^T``
    (no transposing copy).  ``ctx["channel_sum"]``: a backend's own bias gradient (``(g) ->
    (C,)``, the sum over every dim but 1 in g's dtype, the half dtypes summed in float32 and
    rounded once), returning ``None`` where it declines.  ``ctx["flat_waste"]``: the most
    columns, relative to the outputs, that the flat layout may compute (1.5 here; a backend
    whose im2col computes every column position anyway gains nothing from the flat layout's
    long runs and passes 1.0: the exact layout then, but where they coincide)."""
    ops = _ctx_ops(xp, ctx)
    return {"conv": ops["conv"], "conv_transpose": ops["conv_transpose"],
            "max_pool": ops["max_pool"]}


def backward_kernels(xp, **ctx) -> dict:
    """Fused backward of ``conv``, ``conv_transpose`` and ``max_pool`` (native arrays in and
    out, used when no graph of the backward is needed); the same formulas as the polyten-op
    rules in ``polyten.autograd.derivatives``."""
    ops = _ctx_ops(xp, ctx)
    return {"conv": ops["conv_backward"], "conv_transpose": ops["conv_transpose_backward"],
            "max_pool": ops["max_pool_backward"]}


def _ops(xp, native_col2im=None, native_im2col=None, native_matmul=None,
         half=frozenset(), native_from_grid=None, native_to_grid=None,
         native_channel_sum=None, flat_waste=_FLAT_WASTE) -> dict:
    as_strided = xp.lib.stride_tricks.as_strided
    matmul = native_matmul or xp.matmul
    ascontiguous = xp.ascontiguousarray
    f32 = xp.dtype("float32")
    # computed in float32 and rounded once: the half dtypes but those the backend's products
    # and col2im accumulate in float32 themselves (``half``)
    low = low_precision(xp) - frozenset(half)
    kept = frozenset(half)

    def compute(a):
        return a.astype(f32) if a.dtype in low else a

    reuse = xp.__name__ == "numpy"  # CuPy has its own memory pool

    def scratch(role, shape, dtype, fill=None):
        """An array for a temporary that never leaves the kernel (uninitialised, or filled
        with ``fill``): a view of this thread's buffer for ``role``, valid until the next
        request for the same role.  A kernel uses each role for one temporary at a time:
        ``"image"`` (padded input, col2im sums), ``"cols"`` (column matrices, pooling
        windows), ``"grid"`` (products and gradients on the column grid), ``"index"``
        (pooling indices)."""
        dtype = xp.dtype(dtype)
        size = dtype.itemsize
        for q in shape:
            size *= q
        if not reuse or size > SCRATCH_LIMIT:
            if fill is None:
                return xp.empty(shape, dtype=dtype)
            return xp.full(shape, fill, dtype=dtype)
        cache = getattr(_scratch, "arrays", None)
        if cache is None:
            cache = _scratch.arrays = {}
        buf = cache.get(role)
        if buf is None or buf.nbytes < size:
            buf = cache[role] = xp.empty(size, dtype=xp.uint8)
        a = buf[:size].view(dtype).reshape(shape)
        if fill is not None:
            a.fill(fill)
        return a

    def padded(x, pads, value=0):
        """``x`` (N, C, *S) as a C-contiguous array with ``pads`` ((lo, hi) per dim) of
        ``value`` around its spatial dims (``x`` itself or scratch: read-only to the caller,
        and valid until the next ``"image"`` scratch)."""
        if not any(lo or hi for lo, hi in pads):
            return ascontiguous(x)
        shape = x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))
        z = scratch("image", shape, x.dtype, fill=value)
        z[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for s, (lo, _) in
                                             zip(x.shape[2:], pads))] = x
        return z

    def im2col(zp, geo, groups, role="cols"):
        """Columns of the C-contiguous padded ``zp`` (N, C, *P): (G, C/G * K, N * L)."""
        n, c = zp.shape[:2]
        isz = zp.itemsize
        sn, sc = zp.strides[:2]
        view = as_strided(zp, (c,) + geo.k + (n,) + geo.gshape,
                          (sc,) + tuple(s * isz for s in geo.kstr) + (sn,) +
                          tuple(s * isz for s in geo.gstr))
        cols = scratch(role, (groups, (c // groups) * geo.K, n * geo.L), zp.dtype)
        cols.reshape(view.shape)[...] = view
        return cols

    def padded_cols(x, pads, geo, groups):
        """Columns of ``x`` zero-padded by ``pads`` (``geo`` is the padded geometry)."""
        if native_im2col is not None:
            cols = native_im2col(x, pads, geo, groups)
            if cols is not None:
                return cols
        return im2col(padded(x, pads), geo, groups)

    def adjoint_cols(wm, gbuf):
        """``wm^T @ gbuf`` (G, C/G * K, N * L) into a scratch array, for col2im (float32 for
        a kept half dtype: col2im then sums unrounded products, and its caller rounds once)."""
        dt = xp.result_type(wm.dtype, gbuf.dtype)
        out = scratch("cols", (wm.shape[0], wm.shape[2], gbuf.shape[2]),
                      f32 if dt in kept else dt)
        return matmul(wm.transpose(0, 2, 1), gbuf, out=out)

    def col2im(cols, geo, n, c):
        """The adjoint of :func:`im2col`: ``cols`` (G, C/G * K, N * L) summed back onto zeros
        of (N, C, *P), one strided add per kernel offset (into ``"image"`` scratch)."""
        if native_col2im is not None:
            zb = native_col2im(cols, geo, n, c)
            if zb is not None:
                return zb
        # a kept half dtype's K-term sums in float32 (the callers round the result once)
        zb = scratch("image", (n, c) + geo.P, f32 if cols.dtype in kept else cols.dtype,
                     fill=0)
        size = 1
        for q in geo.P:
            size *= q
        flat = zb.reshape(n, c, size)
        isz = zb.itemsize
        sn, sc = flat.strides[:2]
        shape = (c, n) + geo.gshape
        strides = (sc, sn) + tuple(s * isz for s in geo.gstr)
        parts = cols.reshape((c, geo.K, n) + geo.gshape)
        for t, kk in enumerate(itertools.product(*[range(k) for k in geo.k])):
            off = sum(i * s for i, s in zip(kk, geo.kstr))
            target = as_strided(flat[:, :, off:], shape, strides)
            target += parts[:, t]
        return zb

    def from_grid(res, geo, n):
        """(C, N * L) grid values -> the (N, C, *O) result, a new C-contiguous array (``res``
        may be scratch)."""
        c = res.shape[0]
        m = len(geo.O)
        perm = (1, 0) + tuple(range(2, 2 + m))
        if geo.ostr is None:
            view = res.reshape((c, n) + geo.O)
        else:
            isz = res.itemsize
            view = as_strided(res, (c, n) + geo.O, (n * geo.L * isz, geo.L * isz) +
                              tuple(s * isz for s in geo.ostr))
        return view.transpose(perm).copy()

    def to_grid(g, geo, groups):
        """(N, C, *O) values -> (G, C/G, N * L) grid values (zero at the unused flat
        positions), in ``"grid"`` scratch."""
        if native_to_grid is not None:
            buf = native_to_grid(g, geo, groups)
            if buf is not None:
                return buf
        n, c = g.shape[:2]
        m = len(geo.O)
        perm = (1, 0) + tuple(range(2, 2 + m))
        if geo.ostr is None:
            buf = scratch("grid", (c, n) + geo.O, g.dtype)
            buf[...] = g.transpose(perm)
            return buf.reshape(groups, c // groups, n * geo.L)
        buf = scratch("grid", (c, n, geo.L), g.dtype, fill=0)
        isz = buf.itemsize
        view = as_strided(buf, (c, n) + geo.O, (n * geo.L * isz, geo.L * isz) +
                          tuple(s * isz for s in geo.ostr))
        view[...] = g.transpose(perm)
        return buf.reshape(groups, c // groups, n * geo.L)

    def conv_geometry(x_shape, w_shape, stride, padding, dilation):
        P = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], padding))
        k = tuple(w_shape[2:])
        O = tuple((p - d * (kk - 1) - 1) // s + 1
                  for p, kk, s, d in zip(P, k, stride, dilation))
        return _Geometry(P, O, k, stride, dilation, flat_waste)

    def add_bias(out, b):
        if b is not None:
            out += b.reshape((-1,) + (1,) * (out.ndim - 2))
        return out

    def spatial_sum(g):
        if native_channel_sum is not None:
            r = native_channel_sum(g)
            if r is not None:
                return r
        axes = (0,) + tuple(range(2, g.ndim))
        return g.sum(axis=axes, dtype=f32) if g.dtype in kept else g.sum(axis=axes)

    def finish(out, dtype):
        return out if out.dtype == dtype else out.astype(dtype)

    def conv_params(params):
        return (params["needs"], params["stride"], params["padding"], params["dilation"],
                params["groups"])

    def weight_grad(cols, grid, weight):
        """``(cols @ grid^T)^T`` of the (G, *, N * L) columns and grid, in weight's shape
        (OpenBLAS is faster with the long dim as the product's rows; a backend's own GEMM
        computes ``grid @ cols^T``, which is in weight's layout already: no copy)."""
        if native_matmul is not None:
            gw = matmul(grid, cols.transpose(0, 2, 1))
            return finish(gw.reshape(weight.shape), weight.dtype)
        gw = matmul(cols, grid.transpose(0, 2, 1)).transpose(0, 2, 1)
        return finish(ascontiguous(gw).reshape(weight.shape), weight.dtype)

    # ---------------------------------------------------------------------------- conv ----
    def conv_core(x, weight, bias, stride, padding, dilation, groups):
        """im2col + one product per group, plus the bias: (N, O, *out) in x's (computation)
        dtype, or float32 for a kept half dtype that the backend's grid kernel declined."""
        n = x.shape[0]
        o = weight.shape[0]
        geo = conv_geometry(x.shape, weight.shape, stride, padding, dilation)
        cols = padded_cols(x, padding, geo, groups)
        dt = xp.result_type(weight.dtype, cols.dtype)
        # the backend's grid kernel adds the bias to the unrounded product and rounds once
        grid_dt = f32 if native_from_grid is not None and dt in kept else dt
        res = scratch("grid", (groups, o // groups, cols.shape[2]), grid_dt)
        matmul(weight.reshape(groups, o // groups, -1), cols, out=res)
        res = res.reshape(o, -1)
        if native_from_grid is not None:
            out = native_from_grid(res, geo, n, bias, dt)
            if out is not None:
                return out
        return add_bias(from_grid(res, geo, n), bias)

    def conv(x, weight, bias, stride, padding, dilation, groups):
        dt = x.dtype
        out = conv_core(compute(x), compute(weight), None if bias is None else compute(bias),
                        stride, padding, dilation, groups)
        return finish(out, dt)

    def conv_backward(grads, inputs, outputs, params):
        x, weight, bias = inputs
        needs, stride, padding, dilation, groups = conv_params(params)
        g, xc, wc = compute(grads[0]), compute(x), compute(weight)
        n, c = x.shape[:2]
        o = weight.shape[0]
        geo = conv_geometry(x.shape, weight.shape, stride, padding, dilation)
        gbuf = to_grid(g, geo, groups)  # (G, O/G, N * L)
        gx = gw = gb = None
        if needs[0]:
            wm = wc.reshape(groups, o // groups, -1)
            cols = adjoint_cols(wm, gbuf)
            gx = None
            if native_col2im is not None and native_to_grid is not None:
                # the unpadded block only: no padded image and no cropping copy
                gx = native_col2im(cols, geo, n, c,
                                   crop=(tuple(lo for lo, _ in padding), x.shape[2:]))
            if gx is None:
                zb = col2im(cols, geo, n, c)
                crop = (slice(None), slice(None)) + tuple(
                    slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))
                gx = zb[crop].copy()
            gx = finish(gx, x.dtype)
        if needs[1]:
            gw = weight_grad(padded_cols(xc, padding, geo, groups), gbuf, weight)
        if needs[2]:
            gb = finish(spatial_sum(g), bias.dtype)
        return (gx, gw, gb)

    # ------------------------------------------------------------------ conv_transpose ----
    def transpose_geometry(x_shape, w_shape, stride, dilation):
        k = tuple(w_shape[2:])
        I = tuple(x_shape[2:])
        full = tuple((i - 1) * s + d * (kk - 1) + 1
                     for i, kk, s, d in zip(I, k, stride, dilation))
        return _Geometry(full, I, k, stride, dilation, flat_waste)

    def crop_or_extend(zb, padding, output_size):
        """``zb[..., p : p + out]`` per spatial dim, zero-extended where ``out`` runs past
        the end (output_padding)."""
        src = tuple(slice(p, min(p + s, f)) for p, s, f in zip(padding, output_size,
                                                               zb.shape[2:]))
        if all(p + s <= f for p, s, f in zip(padding, output_size, zb.shape[2:])):
            return zb[(slice(None), slice(None)) + src].copy()  # zb is scratch
        out = xp.zeros(zb.shape[:2] + tuple(output_size), dtype=zb.dtype)
        dst = tuple(slice(0, sl.stop - sl.start) for sl in src)
        out[(slice(None), slice(None)) + dst] = zb[(slice(None), slice(None)) + src]
        return out

    def conv_transpose(x, weight, bias, stride, padding, output_size, dilation, groups):
        dt = x.dtype
        x, weight = compute(x), compute(weight)
        n, cin = x.shape[:2]
        cout = weight.shape[1] * groups
        geo = transpose_geometry(x.shape, weight.shape, stride, dilation)
        wm = weight.reshape(groups, cin // groups, -1)
        zb = col2im(adjoint_cols(wm, to_grid(x, geo, groups)), geo, n, cout)
        out = crop_or_extend(zb, padding, output_size)
        return finish(add_bias(out, None if bias is None else compute(bias)), dt)

    def conv_transpose_backward(grads, inputs, outputs, params):
        x, weight, bias = inputs
        needs, stride, padding, dilation, groups = conv_params(params)
        g, xc, wc = compute(grads[0]), compute(x), compute(weight)
        n, cin = x.shape[:2]
        cout = g.shape[1]
        geo = transpose_geometry(x.shape, weight.shape, stride, dilation)
        # g placed back on the full (uncropped) output: the conv of the forward's adjoint
        gfull = scratch("image", (n, cout) + geo.P, g.dtype, fill=0)
        src = tuple(slice(0, min(s, f - p)) for p, s, f in zip(padding, g.shape[2:], geo.P))
        dst = tuple(slice(p, p + sl.stop) for p, sl in zip(padding, src))
        gfull[(slice(None), slice(None)) + dst] = g[(slice(None), slice(None)) + src]
        cols = im2col(gfull, geo, groups)  # (G, Cout/G * K, N * L)
        gx = gw = gb = None
        if needs[0]:  # res is copied out before to_grid below reuses the "grid" buffer
            res = scratch("grid", (groups, cin // groups, cols.shape[2]),
                          xp.result_type(wc.dtype, cols.dtype))
            matmul(wc.reshape(groups, cin // groups, -1), cols, out=res)
            gx = finish(from_grid(res.reshape(cin, -1), geo, n), x.dtype)
        if needs[1]:
            gw = weight_grad(cols, to_grid(xc, geo, groups), weight)
        if needs[2]:
            gb = finish(spatial_sum(g), bias.dtype)
        return (gx, gw, gb)

    # ------------------------------------------------------------------------ max_pool ----
    def lowest(dtype):
        if is_floating(xp, dtype):
            return float("-inf")
        return xp.iinfo(dtype).min

    def max_pool(x, kernel_size, stride, padding, dilation):
        """Running maximum over the K kernel offsets (strict ``>``, NaN always taken: the
        window's first maximum, its last NaN, as PyTorch): K passes over the output, on an
        offset-major copy of the windows while that is small, else on strided views."""
        n, c = x.shape[:2]
        S = x.shape[2:]
        m = len(S)
        zp = padded(x, padding, lowest(x.dtype))
        P = zp.shape[2:]
        O = tuple((p - d * (k - 1) - 1) // s + 1
                  for p, k, s, d in zip(P, kernel_size, stride, dilation))
        st = zp.strides
        win = as_strided(zp, (n, c) + O + tuple(kernel_size),
                         st[:2] + tuple(s * t for s, t in zip(stride, st[2:])) +
                         tuple(d * t for d, t in zip(dilation, st[2:])))
        floating = is_floating(xp, x.dtype)
        K, n_out = 1, n * c
        for q in kernel_size:
            K *= q
        for q in O:
            n_out *= q
        if (reuse and (stride[-1] != 1 or O[-1] < 16)
                and K * n_out * zp.itemsize <= SCRATCH_LIMIT):
            # NumPy: on the strided views below each pass runs short or unvectorised inner
            # loops (the digits CNN's 2x2 pools take 1.4x as long); one copy of the windows,
            # offset-major, makes every pass contiguous.  Not for unit-stride windows with
            # long rows (the copy is then the extra pass) nor past the scratch size (K times
            # the output).
            m2 = 2 + m
            buf = scratch("cols", tuple(kernel_size) + (n, c) + O, zp.dtype)
            buf[...] = win.transpose(tuple(range(m2, m2 + m)) + tuple(range(m2)))
            views = list(buf.reshape((K, n, c) + O))
        else:
            views = [win[(Ellipsis,) + kk]
                     for kk in itertools.product(*[range(k) for k in kernel_size])]
        # values: a running maximum (NaN propagates); winners: the first offset equal to the
        # maximum, counted as "offsets seen before the first match" -- plain ufunc passes,
        # about 8x faster than masked copies (or a where-chain) per offset
        best = views[0].copy()
        for v in views[1:]:
            xp.maximum(best, v, out=best)
        found = views[0] == best
        arg = xp.zeros(best.shape, dtype=xp.int32)
        for v in views[1:]:
            arg += ~found
            found |= v == best
        if floating and (xp.__name__ != "numpy" or bool(xp.isnan(best).any())):
            # a NaN window: PyTorch takes its last NaN (no value equals NaN, so redo these
            # with the explicit rule; CuPy always does, since asking would wait for the device)
            nan_arg = xp.full(best.shape, -1, dtype=xp.int32)
            for t, v in enumerate(views):
                nan_arg = xp.where(xp.isnan(v), t, nan_arg)
            arg = xp.where(nan_arg >= 0, nan_arg, arg).astype(xp.int32)
        # flat input index of the winner: the window's base (o*s - lo per dim) plus the
        # winning offset's shift, looked up in a K-entry table (two passes over the output)
        def offset_table(coefs):
            # sum_j kk[j] * coefs[j] for each window offset kk, in itertools.product order,
            # built by kernels from arange: a table copied from a Python list would be a
            # synchronous host-to-device copy on a GPU, in every training step
            t = None
            for j, (k, c) in enumerate(zip(kernel_size, coefs)):
                a = (xp.arange(k, dtype=xp.int64) * c).reshape(
                    (1,) * j + (k,) + (1,) * (m - 1 - j))
                t = a if t is None else t + a
            return xp.ascontiguousarray(xp.broadcast_to(t, tuple(kernel_size))).reshape(-1)

        sstr = _row_major(S)
        shift = offset_table([d * q for d, q in zip(dilation, sstr)])
        base = None
        for j in range(m):
            start = (xp.arange(O[j], dtype=xp.int64) * stride[j] - padding[j][0]) * sstr[j]
            start = start.reshape((O[j],) + (1,) * (m - 1 - j))
            base = start if base is None else base + start
        idx = shift.take(arg)
        idx += base
        if any(lo or hi for lo, hi in padding):
            bad = None
            for j in range(m):
                # the winner's position along dim j: outside the input means a padding element
                # won (nothing in the window beats the lowest value); PyTorch then names the
                # window's first element inside the input
                o = xp.arange(O[j], dtype=xp.int64) * stride[j] - padding[j][0]
                pos = offset_table([dilation[i] if i == j else 0
                                    for i in range(m)]).take(arg)
                pos += o.reshape((O[j],) + (1,) * (m - 1 - j))
                out_of = (pos < 0) | (pos >= S[j])
                bad = out_of if bad is None else (bad | out_of)
            # NumPy: skip the fix-up when no padding element won; other array modules
            # (CuPy) always apply it, since asking would wait for the device
            if xp.__name__ != "numpy" or bool(bad.any()):
                first = None
                for j in range(m):
                    o = xp.arange(O[j], dtype=xp.int64) * stride[j] - padding[j][0]
                    i0 = xp.maximum(0, (dilation[j] - 1 - o) // dilation[j])  # ceil(-o / d)
                    p0 = (o + i0 * dilation[j]).reshape((O[j],) + (1,) * (m - 1 - j))
                    term = p0 * sstr[j]
                    first = term if first is None else first + term
                idx = xp.where(bad, first, idx)
        return best, idx

    def max_pool_backward(grads, inputs, outputs, params):
        g = grads[0]
        idx = params["indices"]
        shape = params["shape"]
        n, c = shape[:2]
        size = 1
        for s in shape[2:]:
            size *= s
        if n * c * size == 0:
            return (xp.zeros(shape, dtype=g.dtype),)
        # a window wholly outside the input (starting in the low padding, its dilated steps
        # past the end) names a position past the plane, as PyTorch, and passes no gradient
        if any(params.get("pool", {}).get("lo", (1,))):
            outside = idx >= size
            if xp.__name__ != "numpy" or bool(outside.any()):
                g = xp.where(outside, xp.zeros((), dtype=g.dtype), g)
                idx = xp.where(outside, 0, idx)
        pos = scratch("index", (n * c, idx.size // (n * c)), xp.int64)
        xp.add(idx.reshape(n * c, -1), (xp.arange(n * c, dtype=xp.int64) * size)[:, None],
               out=pos)
        pos = pos.ravel()
        if params["overlap"]:
            gx = xp.bincount(pos, weights=g.ravel(), minlength=n * c * size)
            gx = gx.astype(g.dtype, copy=False)
        else:  # disjoint windows: every input element is picked at most once
            gx = xp.zeros(n * c * size, dtype=g.dtype)
            gx[pos] = g.ravel()
        return (gx.reshape(shape),)

    return {"conv": conv, "conv_backward": conv_backward, "conv_transpose": conv_transpose,
            "conv_transpose_backward": conv_transpose_backward, "max_pool": max_pool,
            "max_pool_backward": max_pool_backward}
