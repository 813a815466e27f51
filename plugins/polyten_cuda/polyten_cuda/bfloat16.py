"""bfloat16 on CUDA: which CuPy stores it, and which kernels decline a call CuPy refuses.

CuPy 14 and later store ``ml_dtypes.bfloat16`` arrays (when ml_dtypes is installed) and run
their casts, ufuncs, reductions and matrix products on them.  polyten's own CUDA C takes
bfloat16 as it takes float16: erf, the fused activations, softmax, losses, norms and max_pool
(``ElementwiseKernel`` / ``ReductionKernel`` bodies with CuPy's bfloat16 type, the row kernels
with the prelude's), the optimizer steps, GradScaler's unscale, the total gradient norm and
the gradient clipping (multi-tensor kernels), the batch_norm running statistics, and im2col /
col2im (so a bfloat16 convolution stays bfloat16 on tensor cores, :mod:`polyten_cuda.conv`)
-- each computed in float32 (``polyten_acc``) and rounded once.  ``tests/test_cuda_nvrtc.py``
compiles those sources as CuPy generates them.  The shared products (``matmul``, ``linear``
and their backward) use cuBLAS's bfloat16 GEMM when one small product, tried when the
kernels are built, gives a right bfloat16 result, and multiply in float32 otherwise
(``polyten_cpu.kernels._util.upcast_products``).  A batched bfloat16 ``matmul`` is one
strided-batched cuBLAS GEMM (:mod:`polyten_cuda.gemm`; ``cupy.matmul`` raises on it in the
CuPy releases before cupy/cupy#10317), and the shared kernel's product only where cuBLAS
refuses the dtype; with a native product, ``linear`` with a bias is one GEMM with the bias as
its C (one rounding).

Where CuPy has no bfloat16 loop for a function a kernel calls, the call runs again in float32
(:mod:`polyten_cuda.half_retry`); the in-place optimizer hooks of :data:`DECLINABLE` (the
batch_norm running statistics) decline a refused call instead.
"""

from __future__ import annotations

from typing import Any, Optional

from polyten_cpu.kernels._util import bfloat16_dtype

from .cupy_internals import core_module

# fused_optimizers hooks of one CuPy ElementwiseKernel launch on bfloat16 (types resolved, and
# so a refusal raised, before anything is written): a refusal returns NotImplemented and the
# core takes its generic path (polyten_cuda.half_retry.decline_on_gap)
DECLINABLE = ("batch_norm_running",)


def supported(cp) -> Optional[Any]:
    """``cp``'s bfloat16 dtype when this CuPy stores it (ml_dtypes installed and a CuPy that
    knows its C type), else None."""
    bf = bfloat16_dtype(cp)
    if bf is None:
        return None
    scalar = core_module(cp, "_scalar")
    if scalar is None:
        return None
    try:
        scalar.get_typename(bf)  # CuPy 13 and older: no C type for it (a KeyError)
    except Exception:
        return None
    return bf


# kernels that take a Python number beside an array operand and compute in the array's dtype
# (floor_divide and remainder turn the number into a 0-d array of that dtype themselves)
WEAK_FLOAT_KERNELS = ("add", "sub", "mul", "div", "fmod",
                      "maximum", "minimum", "atan2", "hypot", "logaddexp", "copysign",
                      "nextafter", "eq", "ne", "lt", "le", "gt", "ge", "clamp")


def weak_floats(cp, kernels, bf) -> dict:
    """``kernels`` (those named in :data:`WEAK_FLOAT_KERNELS`) taking a Python float beside a
    bfloat16 array as a bfloat16 number, as NumPy (ml_dtypes) and torch take it.

    CuPy 14 reads a Python float as unable to cast to bfloat16 and runs the float32 loop,
    returning float32 data (an H200 with CuPy 14.2: ``bf16 + 2.5`` and ``maximum(bf16, 2.5)``
    were float32; a Python int and a bfloat16 NumPy scalar keep bfloat16).  A NumPy bfloat16
    scalar is a kernel argument, passed by value: no host-to-device copy."""
    nd = cp.ndarray
    scalar = bf.type

    def binary(fn):
        def kernel(x, y):
            if y.__class__ is float:
                if x.__class__ is nd and x.dtype == bf:
                    y = scalar(y)
            elif x.__class__ is float and y.__class__ is nd and y.dtype == bf:
                x = scalar(x)
            return fn(x, y)
        kernel.__name__ = getattr(fn, "__name__", "kernel")
        return kernel

    def clamp(fn):
        def kernel(x, lo, hi):
            if x.dtype == bf:
                if lo.__class__ is float:
                    lo = scalar(lo)
                if hi.__class__ is float:
                    hi = scalar(hi)
            return fn(x, lo, hi)
        kernel.__name__ = getattr(fn, "__name__", "clamp")
        return kernel

    def inplace(fn):
        def kernel(op, x, y):
            if y.__class__ is float and x.dtype == bf:
                y = scalar(y)
            return fn(op, x, y)
        kernel.__name__ = getattr(fn, "__name__", "inplace")
        return kernel

    out = {name: (clamp if name == "clamp" else binary)(kernels[name])
           for name in WEAK_FLOAT_KERNELS if name in kernels}
    out["inplace"] = inplace(kernels["inplace"])  # x += 2.5: CuPy's float32 loop, cast back
    return out
