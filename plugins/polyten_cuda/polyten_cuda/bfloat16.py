"""bfloat16 on CUDA: which CuPy stores it, and the few kernels that hand it to the shared ones.

CuPy 14 and later store ``ml_dtypes.bfloat16`` arrays (when ml_dtypes is installed) and run
their casts, ufuncs, reductions and matrix products on them.  polyten's own CUDA C takes
bfloat16 as it takes float16: the fused activations, softmax, losses, norms and max_pool
(``ElementwiseKernel`` / ``ReductionKernel`` bodies with CuPy's bfloat16 type, the row kernels
with the prelude's), the optimizer steps, the total gradient norm and the gradient clipping
(multi-tensor kernels), and im2col / col2im (so a bfloat16 convolution stays bfloat16 on
tensor cores, :mod:`polyten_cuda.conv`) -- each computed in float32 (``polyten_acc``) and
rounded once.  ``tests/test_cuda_nvrtc.py`` compiles those sources as CuPy generates them.
``erf`` hands a bfloat16 call to the shared array-module kernel (``polyten_cpu.kernels`` with
``xp=cupy``: ``cupyx.scipy.special`` has no bfloat16 loops), which computes it in float32.
The shared products (``matmul``, ``linear`` and their backward) use cuBLAS's bfloat16 GEMM
when one small product, tried when the kernels are built, gives a right bfloat16 result, and
multiply in float32 otherwise
(``polyten_cpu.kernels._util.upcast_products``).  A batched bfloat16 ``matmul`` is one
strided-batched cuBLAS GEMM (:mod:`polyten_cuda.gemm`; ``cupy.matmul`` raises on it in the
CuPy releases before cupy/cupy#10317), and the shared kernel's product only where cuBLAS
refuses the dtype; with a native product, ``linear`` with a bias is one GEMM with the bias as
its C (one rounding).

Where CuPy has no bfloat16 loop for a function a shared kernel calls, the call runs again in
float32 (:mod:`polyten_cuda.half_retry`); the in-place optimizer hooks of :data:`DECLINABLE`
decline such a call instead, and GradScaler's bfloat16 unscale
(:func:`amp_unscale_float32`) needs no bfloat16 loop at all.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from polyten_cpu.kernels._util import bfloat16_dtype

from .cupy_internals import core_module
from .half_retry import holds, named_like

# fused_optimizers hooks whose bfloat16 calls go to the shared kernels: the batch_norm running
# statistics and GradScaler's unscale (:func:`amp_unscale_float32`, which also catches a
# product that overflows only when rounded); the optimizer steps, the total norm and the
# gradient clipping run their own multi-tensor kernels on bfloat16 (polyten_cuda.multi_tensor)
OPTIM_SHARED = ("batch_norm_running", "amp_unscale")
# fused_optimizers hooks of the shared kernels that compute in bfloat16, and whose first call
# CuPy could refuse comes before their first write: a refusal leaves everything unwritten
# (polyten_cuda.half_retry.decline_on_gap)
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


def route(own: Mapping[str, Callable], shared: Mapping[str, Callable], dt) -> Dict[str, Callable]:
    """``own``'s kernels, each handing a call whose first argument holds ``dt`` arrays to the
    kernel of the same name in ``shared``; where ``shared`` has none, the call returns
    ``NotImplemented`` (the core then takes its generic path, as for a backward kernel)."""
    out = {}
    for name, kernel in own.items():
        out[name] = _routed(kernel, shared.get(name), dt)
    return out


def amp_unscale_float32(cp, dt) -> Callable:
    """GradScaler's unscale for ``dt`` (bfloat16) gradients, written with casts, float32
    arithmetic and copies only (no bfloat16 loop needed): each gradient times ``inv_scale`` in
    float32, rounded once into the gradient, and ``found[0]`` set from the rounded values
    (a product that overflows bfloat16 only when rounded is caught), on the device."""
    f32 = np.dtype("float32")
    isfinite, maximum = cp.isfinite, cp.maximum

    def amp_unscale(grads, inv_scale, found):
        for g in grads:
            if g.dtype != dt:
                t = g
                t *= inv_scale
            else:
                t = g.astype(f32)
                t *= inv_scale
                g[...] = t
                t = g.astype(f32)
            bad = (~isfinite(t).all()).astype(found.dtype)
            maximum(found, bad, out=found)
    return amp_unscale


def _routed(kernel: Callable, alternative: Optional[Callable], dt) -> Callable:
    dts = (dt,)

    def routed(*args, **kwargs):
        if args and holds(args[0], dts):
            if alternative is None or (kwargs.get("found_inf") is not None and not getattr(
                    alternative, "takes_found_inf", False)):
                return NotImplemented
            return alternative(*args, **kwargs)
        return kernel(*args, **kwargs)
    return named_like(routed, kernel)
