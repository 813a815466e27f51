"""polyten-template: the smallest complete polyten backend (see docs/writing-a-backend.md).

This module is what the ``polyten`` entry point loads: keep it light (no NumPy import here).
"""

import importlib.util

from polyten.dispatch import BackendSpec, hookimpl


def _probe():
    if importlib.util.find_spec("numpy") is None:
        return False, "numpy is not installed"
    return True, ""


def _load():
    from .backend import make_backend  # imports NumPy, on first use only
    return make_backend()


@hookimpl
def polyten_register_backends(register):
    register(BackendSpec("template", load=_load, probe=_probe,
                         description="core tier on NumPy; the rest from polyten's defaults"))
