"""``linalg_lu_factor`` on cuSOLVER's ``getrf`` for the matrices it serves better than the
shared kernel.

The shared kernel (``polyten_cpu.kernels.linalg``) runs LAPACK's unblocked ``getf2`` one column
at a time, vectorised over the batch: about ten launches a column whatever the batch, which
suits many small matrices and is hopeless for one large one (a 4096 x 4096 matrix is ~40,000
launches).  cuSOLVER's ``getrf`` is blocked and runs on the GPU's BLAS, but CuPy binds it one
matrix per call.  So this takes ``getrf`` when there are no more matrices than columns to
eliminate (``batch <= min(m, n)``: fewer calls than the shared kernel's column steps), and the
shared kernel otherwise.  The rule counts launches; it has not been tuned on a GPU.

No host read: ``cupyx.scipy.linalg.lu_factor`` reads ``devInfo`` back after every call (a
synchronisation), so this calls the binding itself and returns ``info`` as a device array, as
the op's contract says.  float16 / bfloat16 (no ``getrf``) and empty matrices stay on the
shared kernel.
"""

from __future__ import annotations

_GETRF = {"float32": "s", "float64": "d", "complex64": "c", "complex128": "z"}


def use_getrf(batch: int, m: int, n: int) -> bool:
    """Whether a batch of ``batch`` ``m x n`` matrices goes to cuSOLVER (see the module)."""
    k = min(m, n)
    return k > 0 and batch <= k


def build(cp, shared_lu_factor):
    """``linalg_lu_factor(x, pivot) -> (lu, pivots, info)`` taking ``getrf`` where
    :func:`use_getrf` says so and CuPy can load cuSOLVER (checked at the first call: a CuPy
    without the cuSOLVER library keeps the shared kernel)."""
    solver = []  # [cusolver module or None], resolved once

    def cusolver():
        if not solver:
            try:
                solver.append(cp.cuda.cusolver)
            except ImportError:  # no libcusolver beside CuPy: the shared kernel does it all
                solver.append(None)
        return solver[0]

    def linalg_lu_factor(x, pivot):
        m, n = x.shape[-2:]
        batch = 1
        for s in x.shape[:-2]:
            batch *= s
        prefix = _GETRF.get(x.dtype.name)
        if prefix is None or not use_getrf(batch, m, n) or cusolver() is None:
            return shared_lu_factor(x, pivot)
        return _getrf(cp, cusolver(), prefix, x, pivot, batch, m, n)

    return linalg_lu_factor


def _getrf(cp, lib, prefix, x, pivot, batch, m, n):
    k = min(m, n)
    # getrf is column-major: matrix b's columns, one after another, are a[b] of this (n, m)
    # C-ordered buffer; always a copy (getrf overwrites it with L and U), also where x is a
    # transposed view whose swapped axes are C-contiguous already
    a = cp.array(cp.swapaxes(x.reshape((batch, m, n)), -1, -2), order="C", copy=True)
    piv = cp.empty((batch, k), dtype="int32")
    info = cp.empty((batch,), dtype="int32")
    handle = cp.cuda.device.get_cusolver_handle()
    getrf = getattr(lib, prefix + "getrf")
    lwork = getattr(lib, prefix + "getrf_bufferSize")(handle, m, n, a.data.ptr, m)
    work = cp.empty((max(lwork, 1),), dtype=x.dtype)
    size, ipiv_size, info_size = m * n * a.itemsize, k * 4, 4
    for b in range(batch):
        # a null devIpiv asks getrf not to pivot
        ipiv = piv.data.ptr + b * ipiv_size if pivot else 0
        getrf(handle, m, n, a.data.ptr + b * size, m, work.data.ptr, ipiv,
              info.data.ptr + b * info_size)
    if not pivot:
        piv[...] = cp.arange(1, k + 1, dtype="int32")
    lu = cp.ascontiguousarray(cp.swapaxes(a, -1, -2))
    return lu.reshape(x.shape), piv.reshape(x.shape[:-2] + (k,)), info.reshape(x.shape[:-2])
