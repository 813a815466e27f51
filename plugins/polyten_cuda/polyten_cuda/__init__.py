"""polyten_cuda: the CuPy backend of polyten (``polyten.set_backend("cuda")``).

This module is what the ``polyten`` entry point imports: it must not import CuPy.  The probe
answers "is cuda usable here, and if not, why" with ``importlib.util.find_spec`` and, only when
CuPy is installed, a device count from the CUDA runtime.
"""

from __future__ import annotations

import importlib.util

from polyten.dispatch import BackendSpec, hookimpl

__version__ = "0.1.0"


def _driver_cuda_version():
    """The CUDA version the NVIDIA driver supports, ``(major, minor)``, or ``None`` when no
    driver is installed.  Asks libcuda directly (``cuDriverGetVersion`` needs no ``cuInit``
    and no GPU context), so the probe stays cheap and never imports CuPy."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        lib = ctypes.CDLL(name)
        v = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(v)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return v.value // 1000, (v.value % 1000) // 10


def install_hint() -> str:
    """The install command that fits this machine's driver (``polyten backends`` shows it)."""
    ver = _driver_cuda_version()
    if ver is None:
        return ("no NVIDIA driver found; on a GPU machine: pip install 'polyten-cuda[cuda12]' "
                "(CUDA 12 drivers) or 'polyten-cuda[cuda13]' (CUDA 13)")
    extra = {11: "cuda11", 12: "cuda12"}.get(ver[0], "cuda13" if ver[0] >= 13 else None)
    if extra is None:
        return f"the driver supports CUDA {ver[0]}.{ver[1]}, older than CuPy needs (11.2+)"
    return f"the driver supports CUDA {ver[0]}.{ver[1]}: pip install 'polyten-cuda[{extra}]'"


def probe():
    """``(available, reason)`` for the cuda backend."""
    if importlib.util.find_spec("cupy") is None:
        return False, f"cupy is not installed ({install_hint()})"
    try:
        import cupy  # only reached when CuPy is installed
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device, broken install
        return False, f"no usable CUDA device: {type(exc).__name__}: {exc}"
    if count < 1:
        return False, "no CUDA device found"
    return True, ""


def _load():
    from .backend import make_backend
    return make_backend()


@hookimpl
def polyten_register_backends(register):
    register(BackendSpec("cuda", load=_load, probe=probe,
                         description="CuPy on NVIDIA GPUs"))
