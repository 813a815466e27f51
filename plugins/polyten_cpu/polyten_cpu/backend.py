"""Builds the ``cpu`` :class:`polyten.dispatch.Backend` from the NumPy kernels."""

from __future__ import annotations

import numpy as np

from polyten.dispatch import Backend
from polyten.dispatch.rng_codec import pcg64_decode, pcg64_to_bytes

from .kernels import all_backward_kernels, all_kernels
from .kernels._util import bfloat16_dtype
from .kernels.optim import optimizer_kernels

DTYPE_NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
               "float64", "complex64", "complex128")
_NATIVE = {n: np.dtype(n) for n in DTYPE_NAMES}
if bfloat16_dtype(np) is not None:  # NumPy has no bfloat16; ml_dtypes (a dependency) adds it
    DTYPE_NAMES += ("bfloat16",)
    _NATIVE["bfloat16"] = bfloat16_dtype(np)
_NAMES = {v: k for k, v in _NATIVE.items()}


class _RNG:
    """The backend's generator: one ``numpy.random.Generator`` (PCG64), reseedable, whose
    state ``get_state`` / ``set_state`` save and restore as bytes (``polyten.get_rng_state``)."""

    def __init__(self, seed=None):
        self._seed = 0 if seed is None else int(seed)
        self.gen = np.random.default_rng(seed)

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self.gen = np.random.default_rng(self._seed)

    def get_state(self, index: int) -> bytes:
        return pcg64_to_bytes(self._seed, self.gen.bit_generator)

    def set_state(self, index: int, raw: bytes) -> None:
        # in place: generator= swaps states twice per call, and a new PCG64 costs ~7 us
        self._seed, state = pcg64_decode(raw)
        self.gen.bit_generator.state = state


def make_backend() -> Backend:
    rng = _RNG()
    kernels = all_kernels(np, rng=rng, native_dtype=_NATIVE.__getitem__)
    return Backend(
        "cpu", kernels,
        dtypes=DTYPE_NAMES,
        native_dtype=_NATIVE.__getitem__,
        dtype_name=lambda a: _NAMES.get(getattr(a, "dtype", None)),
        is_native=lambda obj: isinstance(obj, (np.ndarray, np.generic)),
        seed=rng.seed,
        get_rng_state=rng.get_state,
        set_rng_state=rng.set_state,
        indexed=False,
        version=f"numpy {np.__version__}",
        backward_kernels=all_backward_kernels(np),
        fused_optimizers=optimizer_kernels(np),
    )
