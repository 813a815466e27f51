"""polyten_cuda: the CuPy backend of polyten (``polyten.set_backend("cuda")``).

This module is what the ``polyten`` entry point imports: it must not import CuPy.  The probe
answers "is cuda usable here, and if not, why" with ``importlib.util.find_spec`` and, only when
CuPy is installed, a device count from the CUDA runtime.
"""

from __future__ import annotations

import importlib.util

from polyten.dispatch import BackendSpec, hookimpl

__version__ = "0.1.0"


def probe():
    """``(available, reason)`` for the cuda backend."""
    if importlib.util.find_spec("cupy") is None:
        return False, ("cupy is not installed (pip install 'polyten-cuda[cuda12]' or "
                       "'polyten-cuda[cuda13]' to match your CUDA driver)")
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
