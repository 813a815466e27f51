"""NumPy-API kernels, written against an array module ``xp``.

Each submodule exposes ``kernels(xp, **ctx) -> dict`` so that another NumPy-compatible library
(CuPy in ``polyten_cuda``) can reuse them and override only where it differs.  Conventions are
those of ``polyten.dispatch.optable``: inputs are already cast and validated by the core;
kernels return arrays (never NumPy scalars) of exactly the result dtype.
"""

from __future__ import annotations

from . import creation, elementwise, indexing, linalg, random, reduction, shape, transfer

MODULES = (elementwise, reduction, linalg, shape, indexing, creation, random, transfer)
from . import nn  # noqa: E402  (fused nn composites: softmax, log_softmax, linear, nll_loss)
MODULES += (nn,)
from . import backward  # noqa: E402  (fused backward of the hottest primitives)
MODULES += (backward,)
from . import norm  # noqa: E402  (fused normalisation composites: layer_norm, batch_norm)
MODULES += (norm,)
from . import conv  # noqa: E402  (fused conv, conv_transpose, max_pool and their backward)
MODULES += (conv,)
from . import activation  # noqa: E402  (fused gelu, silu, leaky_relu, elu, softplus + backward)
MODULES += (activation,)
from . import attention  # noqa: E402  (fused scaled_dot_product_attention + backward)
MODULES += (attention,)
from . import fft  # noqa: E402  (the optional fft tier: fft_c2c, fft_r2c, fft_c2r on xp.fft)
MODULES += (fft,)
from . import ctc  # noqa: E402  (CTC's alpha recursion and its alpha-beta backward)
MODULES += (ctc,)


def all_kernels(xp, **ctx) -> dict:
    out = {}
    for mod in MODULES:
        out.update(mod.kernels(xp, **ctx))
    return out


def all_backward_kernels(xp, **ctx) -> dict:
    """Fused backward kernels (``Backend.backward_kernels``) of the modules that have some."""
    out = {}
    for mod in MODULES:
        if hasattr(mod, "backward_kernels"):
            out.update(mod.backward_kernels(xp, **ctx))
    return out
