"""Linear-algebra kernels: matmul, einsum, tensordot, diagonal, and the ``linalg`` tier.

The core has validated shapes and cast the operands to one dtype.  LAPACK has no float16 or
bfloat16, so those inputs are computed in float32 and the result cast back; float32 stays
float32.
Failures that depend on the values (a singular matrix, one that is not positive-definite) are
reported through an ``info`` array -- nonzero for each bad matrix of the batch -- so that the
core, not the array library, raises the error in the user's terms.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as _np

from ._util import low_precision, upcast_products


def kernels(xp, **ctx) -> dict:
    nd = xp.ndarray
    asarray = xp.asarray
    is_numpy = xp.__name__ == "numpy"
    _errstate = getattr(xp, "errstate", None)
    lin_error = getattr(getattr(xp, "linalg", None), "LinAlgError", _np.linalg.LinAlgError)

    def quiet():
        if _errstate is None:
            return contextlib.nullcontext()
        return _errstate(divide="ignore", invalid="ignore", over="ignore")

    def arr(r):
        return r if r.__class__ is nd else asarray(r)

    LOW, PRODUCTS = low_precision(xp), upcast_products(xp)

    def up(x):
        """(array to compute with, dtype to return)."""
        if x.dtype in LOW:
            return x.astype("float32"), x.dtype
        return x, None

    def down(r, dt):
        r = arr(r)
        return r if dt is None else r.astype(dt)

    def matmul(x, y):
        if x.dtype in PRODUCTS:
            # NumPy's float16 matmul has no BLAS and accumulates in float16 (ml_dtypes'
            # bfloat16 one returns float32)
            return arr(xp.matmul(x.astype("float32"), y.astype("float32"))).astype(x.dtype)
        if is_numpy and x.ndim == 2 and y.ndim == 2:
            # ndarray.dot: the same BLAS product as the matmul ufunc for matrices, with about
            # 0.35 us less overhead per call (a third of a 16x16 product)
            return x.dot(y)
        r = x @ y  # the operator slot: cheaper than the xp.matmul call for small matrices
        return r if r.__class__ is nd else asarray(r)

    def einsum(equation, xs):
        if xs and xs[0].dtype in LOW:
            r = einsum(equation, [a.astype("float32") for a in xs])
            return r.astype(xs[0].dtype)
        if is_numpy:
            # the contraction path (BLAS via tensordot) pays off for big or many operands;
            # for small ones its planning costs more than it saves
            big = len(xs) > 2 or sum(a.size for a in xs) > 4096
            return arr(xp.einsum(equation, *xs, optimize=big))
        return arr(xp.einsum(equation, *xs))

    def tensordot(x, y, dims_x, dims_y):
        x, dt = up(x)
        if dt is not None:
            y = y.astype("float32")
        return down(xp.tensordot(x, y, axes=(list(dims_x), list(dims_y))), dt)

    def diagonal(x, offset, dim1, dim2):
        d = xp.diagonal(x, offset, dim1, dim2)
        flags = getattr(d, "flags", None)
        if flags is not None and not getattr(flags, "writeable", True):
            # NumPy returns a read-only view; PyTorch's diagonal is writable.  A read-only
            # input stays read-only (NumPy refuses, and that is right).
            try:
                flags.writeable = True
            except ValueError:
                pass
        return d

    def cross(x, y, dim):
        return arr(xp.cross(x, y, axis=dim))

    def _batch_info(shape):
        return xp.zeros(shape[:-2], dtype="int32")

    def _per_matrix(fn, x, out_shape, out_dtype):
        """Run ``fn`` on each matrix of a batch (after the batched call failed): the results,
        and an info array marking the matrices ``fn`` failed on."""
        batch = x.shape[:-2]
        out = xp.full(out_shape, xp.nan, dtype=out_dtype)
        info = xp.zeros(batch, dtype="int32")
        for idx in itertools.product(*(range(b) for b in batch)):
            try:
                out[idx] = fn(x[idx])
            except lin_error:
                info[idx] = 1
        return out, info

    def _nonfinite_info(x, r):
        # array libraries that do not raise (CuPy) leave inf/nan where the factorisation failed
        axes = (-2, -1)
        bad = ~xp.all(xp.isfinite(r), axis=axes) & xp.all(xp.isfinite(x), axis=axes)
        return bad.astype("int32")

    def linalg_inv(x):
        x, dt = up(x)
        if is_numpy:
            try:
                r = xp.linalg.inv(x)
            except lin_error:
                r, info = _per_matrix(xp.linalg.inv, x, x.shape, x.dtype)
                return down(r, dt), info
            return down(r, dt), _batch_info(x.shape)
        r = xp.linalg.inv(x)
        return down(r, dt), _nonfinite_info(x, r)

    def linalg_solve(a, b):
        a, dt = up(a)
        if dt is not None:
            b = b.astype("float32")
        batch = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2]) if hasattr(
            xp, "broadcast_shapes") else _np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = xp.broadcast_to(a, batch + a.shape[-2:])
        b = xp.broadcast_to(b, batch + b.shape[-2:])
        if is_numpy:
            try:
                r = xp.linalg.solve(a, b)
            except lin_error:
                out_shape = batch + b.shape[-2:]
                r = xp.full(out_shape, xp.nan, dtype=a.dtype)
                info = xp.zeros(batch, dtype="int32")
                for idx in itertools.product(*(range(s) for s in batch)):
                    try:
                        r[idx] = xp.linalg.solve(a[idx], b[idx])
                    except lin_error:
                        info[idx] = 1
                return down(r, dt), info
            return down(r, dt), xp.zeros(batch, dtype="int32")
        r = xp.linalg.solve(a, b)
        return down(r, dt), _nonfinite_info(a, r)

    def linalg_det(x):
        x, dt = up(x)
        return down(xp.linalg.det(x), dt)

    def linalg_slogdet(x):
        x, dt = up(x)
        sign, logabsdet = xp.linalg.slogdet(x)
        return down(sign, dt), down(logabsdet, dt)

    def _conj_t(m):
        m = xp.swapaxes(m, -1, -2)
        return xp.conj(m) if m.dtype.kind == "c" else m

    def linalg_cholesky(x, upper):
        x, dt = up(x)
        if x.shape[-1] == 0:
            return down(x.copy(), dt), _batch_info(x.shape)
        if is_numpy:
            try:
                r = xp.linalg.cholesky(x)
                info = _batch_info(x.shape)
            except lin_error:
                r, info = _per_matrix(xp.linalg.cholesky, x, x.shape, x.dtype)
        else:
            r = xp.linalg.cholesky(x)
            # CuPy's potrf stops at the first pivot that is not positive, leaves it on the
            # diagonal and the later columns finite but unfactored: a valid factor's diagonal
            # is positive (a NaN pivot fails the test too)
            d = xp.diagonal(r, 0, -2, -1)
            info = _nonfinite_info(x, r) | xp.any(~(d.real > 0), axis=-1).astype("int32")
        if upper:
            r = _conj_t(r)
        return down(xp.ascontiguousarray(r), dt), info

    def linalg_qr(x, mode):
        x, dt = up(x)
        if mode == "r":
            return None, down(xp.linalg.qr(x, mode="r"), dt)
        q, r = xp.linalg.qr(x, mode=mode)
        return down(q, dt), down(r, dt)

    def linalg_eigh(x, upper):
        x, dt = up(x)
        w, v = xp.linalg.eigh(x, UPLO="U" if upper else "L")
        return down(w, dt), down(v, dt)

    def linalg_svd(x, full_matrices, compute_uv):
        x, dt = up(x)
        m, n = x.shape[-2], x.shape[-1]
        if m == 0 or n == 0:
            # LAPACK refuses empty matrices; the factors are identities / empty
            k = min(m, n)
            s = xp.zeros(x.shape[:-2] + (k,), dtype=x.real.dtype)
            if not compute_uv:
                return None, down(s, dt), None
            um = m if full_matrices else k
            vn = n if full_matrices else k
            u = xp.broadcast_to(xp.eye(m, um, dtype=x.dtype), x.shape[:-2] + (m, um)).copy()
            vh = xp.broadcast_to(xp.eye(vn, n, dtype=x.dtype), x.shape[:-2] + (vn, n)).copy()
            return down(u, dt), down(s, dt), down(vh, dt)
        if not compute_uv:
            return None, down(xp.linalg.svd(x, compute_uv=False), dt), None
        u, s, vh = xp.linalg.svd(x, full_matrices=full_matrices)
        return down(u, dt), down(s, dt), down(vh, dt)

    def linalg_lu_factor(x, pivot):
        # getrf's unblocked right-looking algorithm (getf2), one step per column vectorised
        # over the batch: NumPy has no LU, and written on xp it runs on CuPy as it is, with
        # no host read (cuSOLVER's getrf is one matrix per call in CuPy)
        x, dt = up(x)
        batch, (m, n) = x.shape[:-2], x.shape[-2:]
        k = min(m, n)
        nb = 1
        for s in batch:
            nb *= s
        a = xp.array(x.reshape((nb, m, n)), copy=True)
        piv = xp.broadcast_to(xp.arange(1, k + 1, dtype="int32"), (nb, k)).copy()
        info = xp.zeros((nb,), dtype="int32")
        rows = xp.arange(nb)
        for j in range(k):
            if pivot and j + 1 < m:
                col = a[:, j:, j]
                # LAPACK's i?amax: the first largest |re| + |im| (the modulus for reals)
                mag = xp.abs(col.real) + xp.abs(col.imag) if col.dtype.kind == "c" else \
                    xp.abs(col)
                p = xp.argmax(mag, axis=1) + j
                piv[:, j] = (p + 1).astype("int32")
                top = a[:, j, :].copy()
                a[:, j, :] = a[rows, p, :]
                a[rows, p, :] = top
            d = a[:, j, j]
            zero = d == 0
            info = xp.where((info == 0) & zero, j + 1, info).astype("int32")
            if j + 1 < m:
                # a zero pivot leaves its column unscaled (getf2); with pivoting the column
                # is all zeros then
                l = a[:, j + 1:, j] / xp.where(zero, 1, d)[:, None]
                a[:, j + 1:, j] = l
                if j + 1 < n:
                    a[:, j + 1:, j + 1:] -= l[:, :, None] * a[:, j, None, j + 1:]
        return (down(a.reshape(batch + (m, n)), dt), piv.reshape(batch + (k,)),
                info.reshape(batch))

    def linalg_eig(x, compute_v):
        # LAPACK's geev through numpy.linalg.eig / cupy.linalg.eig (cuSOLVER's Xgeev); both
        # give unit-norm eigenvectors.  NumPy returns real arrays for a real matrix whose
        # eigenvalues are all real, CuPy complex ones: the cast makes both complex.  The
        # core refuses float16 / bfloat16 (as torch); up() only keeps a direct call working.
        x, _ = up(x)
        cdt = "complex128" if x.dtype in ("float64", "complex128") else "complex64"
        if not compute_v:
            return arr(xp.linalg.eigvals(x)).astype(cdt, copy=False), None
        w, v = xp.linalg.eig(x)
        return arr(w).astype(cdt, copy=False), arr(v).astype(cdt, copy=False)

    k = {"matmul": matmul, "einsum": einsum, "tensordot": tensordot, "diagonal": diagonal,
         "cross": cross, "linalg_inv": linalg_inv, "linalg_solve": linalg_solve,
         "linalg_det": linalg_det, "linalg_slogdet": linalg_slogdet,
         "linalg_cholesky": linalg_cholesky, "linalg_qr": linalg_qr,
         "linalg_eigh": linalg_eigh, "linalg_svd": linalg_svd,
         "linalg_lu_factor": linalg_lu_factor, "linalg_eig": linalg_eig}

    if is_numpy:
        def matrix_norm(x, ord, dims, keepdim):
            a, dt = up(x)
            if ord in ("nuc", 2, -2) and (a.shape[dims[0]] == 0 or a.shape[dims[1]] == 0):
                # numpy.linalg.norm's SVD refuses empty matrices; the nuclear norm is 0
                r = xp.sum(xp.abs(a), axis=dims, keepdims=keepdim)
            else:
                with quiet():
                    r = _np.linalg.norm(a, ord=ord, axis=dims, keepdims=keepdim)
            r = arr(r)
            return r.astype(dt if dt is not None else x.real.dtype, copy=False)
        k["matrix_norm"] = matrix_norm
    return k
