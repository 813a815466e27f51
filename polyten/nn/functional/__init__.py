"""polyten.nn.functional: the stateless forms of the layers, losses and activations.

Each area lives in its own private module; this package re-exports their public names.
Everything is written with polyten ops (so autograd and every backend come for free); a
backend may replace composite ops with fused kernels through the op table.
"""

from ._activation import *  # noqa: F401,F403
from ._conv import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._pool import *  # noqa: F401,F403
from ._misc import *  # noqa: F401,F403
from ._attention import *  # noqa: F401,F403  (scaled_dot_product_attention, mha forward)
from ._sampling import *  # noqa: F401,F403  (interpolate, pixel_shuffle, distances)
from ._margin_losses import *  # noqa: F401,F403  (triplet, cosine embedding, multi-margin)
from ._ctc import *  # noqa: F401,F403  (ctc_loss)
from ...api.derived_more import pdist  # noqa: E402,F401  (torch.nn.functional.pdist)
from ._grid import *  # noqa: E402,F401,F403  (affine_grid, grid_sample)
from ._pool_extra import *  # noqa: E402,F401,F403  (fractional max pooling, channel_shuffle)
