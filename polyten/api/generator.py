"""``polyten.Generator``: an explicit, host-side random generator (``torch.Generator``).

It exists for the code that draws *host* data: sampler index permutations, ``random_split``
and the base seed of DataLoader workers.  Its stream is NumPy's PCG64, created lazily on first
use (``import polyten`` must not import NumPy).  The backends' tensor generators are separate:
``polyten.manual_seed`` reseeds those, and a ``Generator`` is reproducible from its own
``manual_seed`` alone.
"""

from __future__ import annotations

import operator
import os

__all__ = ["Generator"]

from ..dispatch.rng_codec import PCG64_STATE_BYTES as _STATE_BYTES
from ..dispatch.rng_codec import pcg64_from_bytes, pcg64_to_bytes

_UINT64 = 2 ** 64


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


def _check_seed(op, seed) -> int:
    from .tensor import Tensor
    if isinstance(seed, Tensor):
        seed = seed.item()
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"{op}: seed must be an int, got {type(seed).__name__} {seed!r}") from None
    if not -2 ** 63 <= s < _UINT64:
        raise ValueError(f"{op}: seed must be in [-2**63, 2**64), got {s}")
    return s % _UINT64


class Generator:
    """A host random generator with its own seed (``torch.Generator``).

    Parameters
    ----------
    device : str, optional
        Only ``"cpu"``: the generator draws host-side values (indices, seeds).

    Examples
    --------
    >>> g = polyten.Generator().manual_seed(0)
    >>> sampler = polyten.data.RandomSampler(range(10), generator=g)
    """

    __slots__ = ("_seed", "_rng")

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: device {str(device)!r} is not supported; a "
                             f"polyten.Generator draws host values (sampler indices, seeds), use "
                             f"device='cpu'")
        self._seed = None
        self._rng = None

    @property
    def device(self):
        from ..dispatch.device import device
        return device("cpu")

    def manual_seed(self, seed) -> "Generator":
        """Reseed; returns ``self`` (so ``Generator().manual_seed(0)`` chains)."""
        self._seed = _check_seed("Generator.manual_seed", seed)
        self._rng = None
        return self

    def seed(self) -> int:
        """Reseed from ``os.urandom`` and return the new seed."""
        s = _fresh_seed()
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed this generator was (last) seeded with."""
        if self._seed is None:
            self._seed = _fresh_seed()
        return self._seed

    def _numpy(self):
        """The ``numpy.random.Generator`` drawing this generator's stream (created lazily)."""
        rng = self._rng
        if rng is None:
            import numpy as np
            rng = self._rng = np.random.Generator(np.random.PCG64(self.initial_seed()))
        return rng

    def get_state(self):
        """The generator's state as a uint8 tensor (pass it to :meth:`set_state`)."""
        import numpy as np
        from .creation import asarray
        raw = pcg64_to_bytes(self.initial_seed(), self._numpy().bit_generator)
        return asarray(np.frombuffer(raw, dtype=np.uint8).copy(), device="cpu")

    def set_state(self, new_state) -> "Generator":
        """Restore a state returned by :meth:`get_state`; returns ``self``."""
        import numpy as np
        from .tensor import Tensor
        if not isinstance(new_state, Tensor) or new_state.dtype.name != "uint8" or \
                tuple(new_state.shape) != (_STATE_BYTES,):
            got = (f"a {new_state.dtype.name} tensor of shape {tuple(new_state.shape)}"
                   if isinstance(new_state, Tensor) else type(new_state).__name__)
            raise ValueError(f"Generator.set_state: expected the uint8 tensor of shape "
                             f"({_STATE_BYTES},) returned by Generator.get_state(), got {got}")
        raw = bytes(np.asarray(new_state.cpu().numpy(), dtype=np.uint8))
        seed, bitgen = pcg64_from_bytes(raw)
        self._seed = seed
        self._rng = np.random.Generator(bitgen)
        return self

    def __repr__(self) -> str:
        return "<polyten.Generator device='cpu'>"
