"""polyten.nn: modules, layers, losses and init, written once above autograd.

Everything here computes with polyten ops, so it runs (and differentiates) on every backend.
"""

from .modules import (Module, ModuleDict, ModuleList, ParameterDict, ParameterList,
                      RemovableHandle, Sequential)
from .parameter import Buffer, Parameter
from . import functional, init, utils  # noqa: E402

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Parameter", "Buffer", "RemovableHandle"]
