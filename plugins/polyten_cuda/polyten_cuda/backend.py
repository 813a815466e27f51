"""Builds the ``cuda`` :class:`polyten.dispatch.Backend` on CuPy.

The kernels are the cpu backend's NumPy-API kernels instantiated with ``xp=cupy``; this module
overrides only what differs on the GPU: transfers (host <-> device, device <-> device), creation
and random kernels that must run under the target device, per-device random generators, and
``erf`` (from ``cupyx.scipy.special``).
"""

from __future__ import annotations

import cupy
import numpy as np

from polyten.dispatch import Backend
from polyten_cpu.backend import DTYPE_NAMES
from polyten_cpu.kernels import all_kernels

_NATIVE = {n: np.dtype(n) for n in DTYPE_NAMES}
_NAMES = {np.dtype(n): n for n in DTYPE_NAMES}

# creation and random kernels receive ``device_index`` as their last argument
_ON_DEVICE = ("full", "empty", "arange", "linspace", "eye", "asarray", "from_host",
              "from_dlpack", "random_uniform", "random_normal", "random_integers",
              "random_permutation")


class _DeviceRNG:
    """One generator per device, all reseeded by ``polyten.manual_seed``.

    ``gen`` is the generator of the current device, so kernels written for NumPy's Generator
    API (``random``, ``standard_normal``, ``integers``, ``permutation``) work unchanged.
    """

    def __init__(self):
        self._seed = None
        self._gens = {}

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._gens.clear()

    @property
    def gen(self):
        dev = cupy.cuda.Device().id
        g = self._gens.get(dev)
        if g is None:
            # distinct, reproducible streams per device from one user seed
            seed = None if self._seed is None else self._seed + 1_000_003 * dev
            g = self._gens[dev] = cupy.random.default_rng(seed)
        return g


def _guarded(fn):
    def kernel(*args):
        index = args[-1]
        if index is None:
            return fn(*args)
        with cupy.cuda.Device(index):
            return fn(*args)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


def make_backend() -> Backend:
    rng = _DeviceRNG()
    kernels = all_kernels(cupy, rng=rng, native_dtype=_NATIVE.__getitem__)

    def to_host(x):
        return cupy.asnumpy(x)

    def from_host(array, device_index):
        return cupy.asarray(array)

    def from_dlpack(obj, device_index):
        return cupy.from_dlpack(obj)

    def is_contiguous(x):
        return bool(x.flags.c_contiguous)

    kernels.update(to_host=to_host, from_host=from_host, from_dlpack=from_dlpack,
                   is_contiguous=is_contiguous)
    try:
        from cupyx.scipy.special import erf as _erf

        kernels["erf"] = lambda x: _erf(x)
    except ImportError:  # cupyx ships with CuPy; keep the generic kernel if it does not
        pass
    for name in _ON_DEVICE:
        if name in kernels:
            kernels[name] = _guarded(kernels[name])

    return Backend(
        "cuda", kernels,
        dtypes=DTYPE_NAMES,
        native_dtype=_NATIVE.__getitem__,
        dtype_name=lambda a: _NAMES.get(getattr(a, "dtype", None)),
        is_native=lambda obj: isinstance(obj, cupy.ndarray),
        seed=rng.seed,
        indexed=True,
        device_count=cupy.cuda.runtime.getDeviceCount,
        current_device=lambda: cupy.cuda.Device().id,
        device_of=lambda a: a.device.id,
        device_guard=cupy.cuda.Device,
        synchronize=lambda index=None: (cupy.cuda.Device(index).synchronize()
                                        if index is not None
                                        else cupy.cuda.get_current_stream().synchronize()),
        version=f"cupy {cupy.__version__}",
    )
