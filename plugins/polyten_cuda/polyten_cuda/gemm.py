"""Batched matrix products (``matmul`` with a batch dim) as one cuBLAS strided-batched GEMM.

``cupy.matmul`` with more than two dims has four costs that a training step pays on every
attention product and its backward (read in CuPy's ``_routines_linalg.matmul``; cupy/cupy#10317
describes and fixes the first two, for the CuPy releases after it):

* float16 operands are cast to float32, multiplied in float32 without tensor cores, and the
  result cast back: three extra launches, and CUDA cores instead of tensor cores;
* bfloat16 operands reach the integer GEMM kernel and raise TypeError, so a bfloat16 batched
  product could only run in float32;
* an operand that is not C-contiguous -- ``k.mT`` in ``q @ k.mT``, or every ``x.mT @ g`` of a
  backward -- is copied first, although cuBLAS reads a transposed matrix as it is;
* an operand broadcast over the batch takes the pointer-array GEMM: three extra launches to
  build the pointer arrays, and float32 there ignores the TensorFloat-32 setting.

:func:`build` returns ``bmm(a, b, out=None, accumulate=False)``: one
``cublasGemmStridedBatchedEx`` call (per 65535
matrices) with float32 accumulation for float16 and bfloat16 -- what PyTorch's ``bmm`` calls.
A transposed or row-sliced operand is passed with its transpose flag and leading dimension; an
operand broadcast over the batch gets batch stride 0, and when that operand is the right one
and the left one's matrices are evenly spaced rows, the whole batch is one GEMM of
``batch * m`` rows.  Only operands whose layout cuBLAS cannot describe are copied (a partial
broadcast, a batch that no single stride steps through).  The compute type is CuPy's for the
dtype (``cupy._core._routines_linalg.get_compute_type``), mapped as CuPy maps it for its 2-D
products, so ``polyten.set_float32_matmul_precision`` governs batched products too; a caller
may pass a float32 product's own precision instead (convolutions follow
``polyten.backends.cudnn.allow_tf32``, as PyTorch's cuDNN convolutions do).

``bmm`` returns None where it does not apply (a vector operand, another dtype, sizes past
cuBLAS's 32-bit arguments) and where cuBLAS refused the dtype once (NOT_SUPPORTED or
ARCH_MISMATCH: a GPU without bfloat16 GEMM); the caller then uses ``cupy.matmul``.  Any other
cuBLAS error (an invalid argument) is raised.
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import numpy as np

from polyten_cpu.kernels._util import bfloat16_dtype, upcast_products

from .cupy_internals import core_module

OP_N, OP_T = 0, 1
# cuBLAS's strided-batched kernels put the batch on the grid's z dimension
MAX_BATCH = 65535
_INT_MAX = 2 ** 31 - 1
# cudaDataType_t and cublasComputeType_t (library_types.h, cublas_api.h), for a CuPy whose
# modules lack a name
_DATA_TYPES = {"float16": ("CUDA_R_16F", 2), "bfloat16": ("CUDA_R_16BF", 14),
               "float32": ("CUDA_R_32F", 0), "float64": ("CUDA_R_64F", 1)}
_COMPUTE = {"32F": 68, "32F_PEDANTIC": 69, "32F_FAST_TF32": 77, "64F": 70,
            "64F_PEDANTIC": 71}
# cublasStatus_t values meaning "no such GEMM on this GPU": NOT_SUPPORTED, ARCH_MISMATCH
_NO_GEMM_FOR_DTYPE = (15, 8)
# CuPy's COMPUTE_TYPE_* (cupy/_core/_routines_linalg.pxd)
_PEDANTIC, _TF32 = 2, 7


def layout(rows: int, cols: int, row_stride: int, col_stride: int):
    """``(op, ld)`` under which cuBLAS's column-major view of a row-major ``rows x cols``
    matrix with these element strides is its transpose: ``OP_N`` for rows of adjacent
    elements (C order, rows possibly apart: a slice), ``OP_T`` for columns of adjacent
    elements (a transposed view); None when neither holds."""
    if (cols == 1 or col_stride == 1) and (rows == 1 or row_stride >= cols):
        return OP_N, row_stride if rows > 1 else max(cols, 1)
    if (rows == 1 or row_stride == 1) and (cols == 1 or col_stride >= rows):
        return OP_T, col_stride if cols > 1 else max(rows, 1)
    return None


def batch_stride(shape, strides) -> Optional[int]:
    """One element stride that steps through the batch dims ``shape`` in C order (0 when
    every dim of more than one index has stride 0 or there is none), or None."""
    stride = expect = None
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 1:
            continue
        if expect is None:
            stride, expect = s, s * n
        elif s != expect:
            return None
        else:
            expect *= n
    if stride is None:
        return 0
    return stride if stride >= 0 else None


def _compute_types(cp, cublas) -> Callable:
    """``compute_type(dtype, precision=None)``: the cublasComputeType_t of a product.  With
    ``precision`` None, the one CuPy's 2-D products use for the dtype (CuPy's setting, which
    ``polyten.set_float32_matmul_precision`` sets); a float32 product given ``"highest"`` /
    ``"high"`` / ``"medium"`` (a convolution's, :mod:`polyten.dispatch.precision`) gets float32
    or TensorFloat-32 compute, TensorFloat-32 only from compute capability 8.0 on (as CuPy's
    own setting: older GPUs have no TF32 tensor cores)."""
    linalg = core_module(cp, "_routines_linalg")
    get = getattr(linalg, "get_compute_type", None)
    pedantic = getattr(linalg, "COMPUTE_TYPE_PEDANTIC", _PEDANTIC)
    tf32 = getattr(linalg, "COMPUTE_TYPE_TF32", _TF32)
    runtime = cp.cuda.runtime
    has_tf32: dict = {}  # device index -> compute capability >= 8.0

    def const(name):
        return getattr(cublas, "CUBLAS_COMPUTE_" + name, _COMPUTE[name])

    def tf32_here() -> bool:
        index = runtime.getDevice()
        found = has_tf32.get(index)
        if found is None:
            found = has_tf32[index] = int(runtime.getDeviceProperties(index)["major"]) >= 8
        return found

    def compute_type(dt, precision=None) -> int:
        if precision is not None and dt.name == "float32":
            return const("32F_FAST_TF32" if precision != "highest" and tf32_here() else "32F")
        setting = get(dt) if get is not None else None
        key = (dt, setting)
        found = known.get(key)
        if found is None:
            found = known[key] = from_setting(dt, setting)
        return found

    def from_setting(dt, setting) -> int:
        if dt.name == "float64":
            return const("64F_PEDANTIC" if setting == pedantic else "64F")
        if setting == pedantic:
            return const("32F_PEDANTIC")
        if setting == tf32 and dt.name == "float32":
            return const("32F_FAST_TF32")
        return const("32F")
    known: dict = {}  # (dtype, CuPy's setting) -> compute type: a dict read per product
    return compute_type


def build(cp) -> Optional[Callable]:
    """``bmm(a, b)`` for CuPy arrays (see the module docstring), or None when this CuPy has
    no strided-batched GEMM binding."""
    try:
        cublas = cp.cuda.cublas
        gemm = cublas.gemmStridedBatchedEx
        handle_of = cp.cuda.get_cublas_handle
    except (AttributeError, ImportError):
        return None
    refusal = getattr(cublas, "CUBLASError", RuntimeError)
    runtime = cp.cuda.runtime
    bf16 = bfloat16_dtype(cp)
    data_types = {}
    for name, (const, value) in _DATA_TYPES.items():
        dt = bf16 if name == "bfloat16" else np.dtype(name)
        if dt is not None:
            data_types[dt] = getattr(runtime, const, value)
    compute_type = _compute_types(cp, cublas)
    # alpha and beta live in host memory for the handle's default pointer mode; their
    # addresses are taken once (``ndarray.ctypes`` builds an object per access)
    scalars = [np.ones((), np.float32), np.zeros((), np.float32), np.ones((), np.float64),
               np.zeros((), np.float64)]
    one = {"32": scalars[0].ctypes.data, "64": scalars[2].ctypes.data}
    zero = {"32": scalars[1].ctypes.data, "64": scalars[3].ctypes.data}
    alphas: dict = {}  # (width, value) -> (host scalar, its address): other alphas, by value

    def alpha_of(width, value):
        hit = alphas.get((width, value))
        if hit is None:
            if len(alphas) >= 64:  # cuBLAS reads host scalars during the call: safe to drop
                alphas.clear()
            host = np.array(value, np.float64 if width == "64" else np.float32)
            hit = alphas[(width, value)] = (host, host.ctypes.data)
        return hit[1]

    refused: set = set()  # dtypes cuBLAS refused on this machine
    f32 = np.dtype("float32")
    ascontiguous, broadcast_to, empty, zeros = (cp.ascontiguousarray, cp.broadcast_to,
                                                cp.empty, cp.zeros)

    def operand(x, out_batch, nb):
        """(x or a copy, op, ld, batch stride) in elements."""
        size = x.itemsize
        if x.ndim == 2:  # one matrix (a weight, a linear's rows): no batch to look at
            r, c = x.shape
            sr, sc = x.strides
            if not (sr % size or sc % size):
                lay = layout(r, c, sr // size, sc // size)
                if lay is not None:
                    return x, lay[0], lay[1], 0
        r, c = x.shape[-2:]
        lead = (1,) * (nb - (x.ndim - 2)) + x.shape[:-2]
        if lead != out_batch and any(n != 1 for n in lead):  # a partial broadcast
            x = ascontiguous(broadcast_to(x, out_batch + (r, c)))
        st = [s // size for s in x.strides]
        lay = layout(r, c, st[-2], st[-1]) if all(s % size == 0 for s in x.strides) else None
        bs = batch_stride(x.shape[:-2], st[:-2]) if lay is not None else None
        if lay is None or bs is None:
            x = ascontiguous(x)
            lay = (OP_N, max(c, 1))
            bs = batch_stride(x.shape[:-2], [s // size for s in x.strides[:-2]])
        return x, lay[0], lay[1], bs

    def bmm(a, b, out=None, accumulate=False, precision=None, alpha=None):
        """``a @ b`` (into ``out`` when given: it must not overlap the operands; a float32
        ``out`` takes a float16 / bfloat16 product unrounded), or None where this path does
        not apply.  ``accumulate``: ``out + a @ b`` into a C-contiguous ``out`` (cuBLAS's
        beta = 1: the sum in the compute type, rounded once -- PyTorch's ``addmm``).
        ``precision``: a float32 product's own ``"highest"`` / ``"high"`` / ``"medium"``
        instead of CuPy's setting (convolutions: ``polyten.backends.cudnn.allow_tf32``).
        ``alpha``: a float the product is scaled by before its one rounding (cuBLAS's alpha;
        attention's ``q @ k^T * scale``)."""
        dt = a.dtype
        if accumulate and (out is None or not out.flags.c_contiguous):
            return None
        if (b.dtype != dt or dt not in data_types or dt in refused or a.ndim < 2
                or b.ndim < 2):
            return None
        m, k = a.shape[-2:]
        k2, n = b.shape[-2:]
        if k != k2:
            return None
        if b.ndim == 2:  # a batch (or one matrix) times a matrix: no broadcast to work out
            out_batch = a.shape[:-2]
        elif a.ndim == 2 or a.shape[:-2] == b.shape[:-2]:
            out_batch = b.shape[:-2]
        else:
            try:
                out_batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
            except ValueError:
                return None
        count = 1
        for d in out_batch:
            count *= d
        shape = out_batch + (m, n)
        out_dt = dt if out is None else out.dtype
        if out is not None and (out.shape != shape or not (
                out_dt == dt or (out_dt == f32 and dt.itemsize == 2))):
            return None
        if count == 0 or m == 0 or n == 0:
            return empty(shape, dtype=dt) if out is None else out
        if k == 0:
            if out is None:
                return zeros(shape, dtype=dt)
            if not accumulate:
                out.fill(0)
            return out
        nb = len(out_batch)
        a, op_a, ld_a, st_a = operand(a, out_batch, nb)
        b, op_b, ld_b, st_b = operand(b, out_batch, nb)
        rows = m
        if st_b == 0 and op_a == OP_N and count > 1 and st_a == m * ld_a:
            rows, count = m * count, 1  # one GEMM: the batch's rows are evenly spaced
        if max(rows, n, k, ld_a, ld_b) > _INT_MAX:
            return None
        target = out
        if out is None or not out.flags.c_contiguous:
            out = empty(shape, dtype=out_dt)
        code = data_types[dt]
        ctype = compute_type(dt, precision)
        width = "64" if dt.name == "float64" else "32"
        alpha = one[width] if alpha is None else alpha_of(width, alpha)
        beta = (one if accumulate else zero)[width]
        size, out_size, out_code = dt.itemsize, out_dt.itemsize, data_types[out_dt]
        pa, pb, pc = a.data.ptr, b.data.ptr, out.data.ptr
        handle = handle_of()
        start = 0
        try:
            # row-major C = A @ B is column-major C^T = B^T A^T: B's matrix goes first
            for start in range(0, count, MAX_BATCH):
                chunk = min(MAX_BATCH, count - start)
                gemm(handle, op_b, op_a, n, rows, k, alpha,
                     pb + start * st_b * size, code, ld_b, st_b,
                     pa + start * st_a * size, code, ld_a, st_a, beta,
                     pc + start * rows * n * out_size, out_code, n, rows * n,
                     chunk, ctype, -1)  # CUBLAS_GEMM_DEFAULT
        except refusal as e:
            # NOT_SUPPORTED / ARCH_MISMATCH before anything ran: no GEMM of this dtype here
            # (bfloat16 before sm_80); any other status is a wrong argument: raised
            if start or getattr(e, "status", None) not in _NO_GEMM_FOR_DTYPE:
                raise
            refused.add(dt)
            warnings.warn(f"matmul: cuBLAS refused a strided-batched {dt.name} GEMM on "
                          f"this GPU ({e}); {dt.name} products take cupy.matmul from now on",
                          RuntimeWarning, stacklevel=2)
            return None
        if target is not None and target is not out:
            target[...] = out
            return target
        return out

    bmm.host_scalars = scalars  # alpha and beta: alive as long as bmm, whose pointers these are
    bmm.data_types = frozenset(data_types)
    # the half dtypes CuPy's 2-D products multiply natively too (bfloat16: CuPy 14's gemmEx,
    # tried once by upcast_products): the ones a caller may keep in their dtype end to end
    upcast = upcast_products(cp)
    bmm.half_dtypes = frozenset(d for d in data_types if d.itemsize == 2 and d not in upcast)
    return bmm
