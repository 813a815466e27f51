"""Layers and containers of polyten.nn."""

from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .module import Module, RemovableHandle

__all__ = ["Module", "RemovableHandle", "Sequential", "ModuleList", "ModuleDict",
           "ParameterList", "ParameterDict"]

# activations, linear layers, dropout, flatten, embedding, losses
from . import activation, dropout, flatten, linear, loss, sparse  # noqa: E402
from .activation import *  # noqa: F401,F403,E402
from .dropout import *  # noqa: F401,F403,E402
from .flatten import *  # noqa: F401,F403,E402
from .linear import *  # noqa: F401,F403,E402
from .loss import *  # noqa: F401,F403,E402
from .sparse import *  # noqa: F401,F403,E402

__all__ += (activation.__all__ + dropout.__all__ + flatten.__all__ + linear.__all__ +
            loss.__all__ + sparse.__all__)
