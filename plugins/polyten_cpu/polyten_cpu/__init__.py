"""polyten_cpu: the NumPy backend of polyten, registered through the ``polyten`` entry point.

This module is what the entry point imports, so it stays light: NumPy is imported only when
the backend is first used (:func:`polyten_cpu.backend.make_backend`).
"""

from polyten.dispatch import BackendSpec, hookimpl

__version__ = "0.1.0"


def _probe():
    import importlib.util
    if importlib.util.find_spec("numpy") is None:
        return False, "numpy is not installed (pip install numpy)"
    return True, ""


def _load():
    from .backend import make_backend
    return make_backend()


@hookimpl
def polyten_register_backends(register):
    register(BackendSpec("cpu", load=_load, probe=_probe,
                         description="NumPy on the host CPU"))
