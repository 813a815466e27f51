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

# normalisation layers (BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm, LRN)
from . import batchnorm, normalization  # noqa: E402
from .batchnorm import *  # noqa: F401,F403,E402
from .normalization import *  # noqa: F401,F403,E402

__all__ += batchnorm.__all__ + normalization.__all__

# recurrent layers (RNN, LSTM, GRU and cells), attention and the transformer encoder
from . import attention, rnn  # noqa: E402
from .attention import *  # noqa: F401,F403,E402
from .rnn import *  # noqa: F401,F403,E402

__all__ += attention.__all__ + rnn.__all__

# convolution and pooling layers (Conv*, ConvTranspose*, *Pool*, Unfold, Fold)
from . import conv, pooling  # noqa: E402
from .conv import *  # noqa: F401,F403,E402
from .pooling import *  # noqa: F401,F403,E402

__all__ += conv.__all__ + pooling.__all__

# --- padding layers, Upsample, PixelShuffle, distances ---
from . import sampling  # noqa: E402
from .sampling import *  # noqa: F401,F403,E402

__all__ += sampling.__all__

# lazy modules (LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*)
from . import lazy  # noqa: E402
from .lazy import *  # noqa: F401,F403,E402

__all__ += [n for n in lazy.__all__ if n != "LazyModuleMixin"]

# ChannelShuffle, FractionalMaxPool2d / 3d, AdaptiveLogSoftmaxWithLoss
from . import adaptive, channelshuffle  # noqa: E402
from .adaptive import *  # noqa: F401,F403,E402
from .channelshuffle import *  # noqa: F401,F403,E402

__all__ += adaptive.__all__ + channelshuffle.__all__
