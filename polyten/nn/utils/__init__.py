"""polyten.nn.utils: gradient clipping and parameter/vector conversion."""

from .clip_grad import *  # noqa: F401,F403
from .convert_parameters import *  # noqa: F401,F403
