"""polyten.nn: modules, layers, losses and init, written once above autograd.

Everything here computes with polyten ops, so it runs (and differentiates) on every backend.
"""

from .modules import (Module, ModuleDict, ModuleList, ParameterDict, ParameterList,
                      RemovableHandle, Sequential)
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter
from . import functional, init, utils  # noqa: E402

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer",
           "RemovableHandle"]

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

# normalisation layers (BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm, LRN)
from .modules import batchnorm as _bn, normalization as _norm  # noqa: E402
from .modules.batchnorm import *  # noqa: F401,F403,E402
from .modules.normalization import *  # noqa: F401,F403,E402

__all__ += _bn.__all__ + _norm.__all__

# recurrent layers (RNN, LSTM, GRU and cells), attention and the transformer encoder
from .modules import attention as _attn, rnn as _rnn  # noqa: E402
from .modules.attention import *  # noqa: F401,F403,E402
from .modules.rnn import *  # noqa: F401,F403,E402

__all__ += _attn.__all__ + _rnn.__all__

# convolution and pooling layers (Conv*, ConvTranspose*, *Pool*, Unfold, Fold)
from .modules import conv as _conv, pooling as _pool  # noqa: E402
from .modules.conv import *  # noqa: F401,F403,E402
from .modules.pooling import *  # noqa: F401,F403,E402

__all__ += _conv.__all__ + _pool.__all__

# padding layers, Upsample, PixelShuffle / PixelUnshuffle, CosineSimilarity, PairwiseDistance
from .modules import sampling as _sampling  # noqa: E402
from .modules.sampling import *  # noqa: F401,F403,E402

__all__ += _sampling.__all__

# lazy modules: in_features / in_channels / num_features inferred on the first call
from .modules import lazy as _lazy  # noqa: E402
from .modules.lazy import *  # noqa: F401,F403,E402

__all__ += [n for n in _lazy.__all__ if n != "LazyModuleMixin"]

# ChannelShuffle, FractionalMaxPool2d / 3d, AdaptiveLogSoftmaxWithLoss
from .modules import adaptive as _adaptive, channelshuffle as _cshuffle  # noqa: E402
from .modules.adaptive import *  # noqa: F401,F403,E402
from .modules.channelshuffle import *  # noqa: F401,F403,E402

__all__ += _adaptive.__all__ + _cshuffle.__all__
