"""polyten.nn: modules, layers, losses and init, written once above autograd.

Everything here computes with polyten ops, so it runs (and differentiates) on every backend.
"""

from .modules import (Module, ModuleDict, ModuleList, ParameterDict, ParameterList,
                      RemovableHandle, Sequential)
from .parameter import Buffer, Parameter
from . import functional, init, utils  # noqa: E402

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Parameter", "Buffer", "RemovableHandle"]

# activations, linear layers, dropout, flatten, embedding, losses
from .modules import activation as _act, dropout as _drop, flatten as _flat  # noqa: E402
from .modules import linear as _lin, loss as _loss, sparse as _sparse  # noqa: E402
from .modules.activation import *  # noqa: F401,F403,E402
from .modules.dropout import *  # noqa: F401,F403,E402
from .modules.flatten import *  # noqa: F401,F403,E402
from .modules.linear import *  # noqa: F401,F403,E402
from .modules.loss import *  # noqa: F401,F403,E402
from .modules.sparse import *  # noqa: F401,F403,E402

__all__ += (_act.__all__ + _drop.__all__ + _flat.__all__ + _lin.__all__ + _loss.__all__ +
            _sparse.__all__)
