"""``polyten.Generator``: an explicit random generator (``torch.Generator``).

A cpu generator draws *host* data (sampler index permutations, ``random_split``, the base
seed of DataLoader workers) from NumPy's PCG64, created lazily on first use (``import
polyten`` must not import NumPy), and cpu tensors when passed as ``generator=``.  A generator
of another device keeps that backend's state bytes; the sampling functions swap them into the
backend for the call (``api/random.py``).  ``polyten.manual_seed`` reseeds the backends'
default generators only: a ``Generator`` is reproducible from its own ``manual_seed`` alone.
"""

from __future__ import annotations

import operator
import os

__all__ = ["Generator"]

from ..dispatch.rng_codec import pcg64_decode, pcg64_from_bytes, pcg64_to_bytes

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
    """A random generator with its own seed and state (``torch.Generator``).

    A ``cpu`` generator draws host-side values (sampler permutations, ``random_split``, the
    DataLoader's worker seeds) and cpu tensors; a generator of another device (``"cuda"``,
    ``"cuda:1"``, a third-party backend's) draws that device's tensors.  Pass it as
    ``generator=`` to the sampling functions (``rand``, ``randn``, ``randint``, ``randperm``,
    ``normal``, ``bernoulli``, ``multinomial``, the ``*_like`` forms, ``Tensor.uniform_`` and
    its family, ``nn.init``): they then draw from it instead of the backend's default
    generator, which they leave untouched.

    Parameters
    ----------
    device : str or polyten.device, optional
        ``"cpu"`` (the default), or the device whose tensors it draws; ``"cuda"`` means the
        current GPU when the generator is made.

    Examples
    --------
    >>> g = polyten.Generator().manual_seed(0)
    >>> sampler = polyten.data.RandomSampler(range(10), generator=g)
    >>> noise = polyten.randn(4, generator=polyten.Generator().manual_seed(1))
    """

    __slots__ = ("_seed", "_rng", "_device", "_raw")

    def __init__(self, device="cpu"):
        from ..dispatch.device import Device, device as make_device
        dev = device if isinstance(device, Device) else make_device(str(device))
        if dev.type != "cpu" and dev.index is None:
            b = dev.backend  # loads the backend: fails here, with its reason, if unavailable
            if b.indexed:
                dev = make_device(f"{dev.type}:{b.current_device()}")
        self._device = dev
        self._seed = None
        self._rng = None   # cpu: the numpy.random.Generator of the stream
        self._raw = None   # other devices: the backend's state bytes

    @property
    def device(self):
        return self._device

    def manual_seed(self, seed) -> "Generator":
        """Reseed; returns ``self`` (so ``Generator().manual_seed(0)`` chains)."""
        self._seed = _check_seed("Generator.manual_seed", seed)
        self._rng = None
        self._raw = None
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
        if self._device.type != "cpu":
            raise RuntimeError(f"a polyten.Generator(device='{self._device}') draws "
                               f"{self._device.type} tensors; host-side draws (samplers, "
                               f"random_split, DataLoader seeds) need a cpu generator: "
                               f"polyten.Generator().manual_seed(seed)")
        rng = self._rng
        if rng is None:
            import numpy as np
            rng = self._rng = np.random.Generator(np.random.PCG64(self.initial_seed()))
        return rng

    # --- the stream as the backend's state bytes (the sampling functions swap them in) -----
    def _state_bytes(self) -> bytes:
        if self._device.type == "cpu":  # the cpu backend keeps this very layout
            return pcg64_to_bytes(self.initial_seed(), self._numpy().bit_generator)
        if self._raw is None:
            from .random import seeded_state
            self._raw = seeded_state(self._device, self.initial_seed())
        return self._raw

    def _store(self, raw: bytes) -> None:
        if self._device.type == "cpu":
            if self._rng is None:
                import numpy as np
                self._seed, bitgen = pcg64_from_bytes(raw)
                self._rng = np.random.Generator(bitgen)
            else:  # in place: a sampler holding this stream's numpy generator follows it
                self._seed, state = pcg64_decode(raw)
                self._rng.bit_generator.state = state
        else:
            self._raw = bytes(raw)

    def get_state(self):
        """The generator's state as a uint8 cpu tensor (pass it to :meth:`set_state`)."""
        from .creation import asarray
        return asarray(list(self._state_bytes()), dtype="uint8", device="cpu")

    def set_state(self, new_state) -> "Generator":
        """Restore a state returned by :meth:`get_state`; returns ``self``."""
        from .tensor import Tensor
        size = len(self._state_bytes())
        if not isinstance(new_state, Tensor) or new_state.dtype.name != "uint8" or \
                tuple(new_state.shape) != (size,):
            got = (f"a {new_state.dtype.name} tensor of shape {tuple(new_state.shape)}"
                   if isinstance(new_state, Tensor) else type(new_state).__name__)
            raise ValueError(f"Generator.set_state: expected the uint8 tensor of shape "
                             f"({size},) returned by Generator.get_state() of a "
                             f"{self._device.type} generator, got {got}")
        self._store(bytes(new_state.cpu().tolist()))
        return self

    def __repr__(self) -> str:
        return f"<polyten.Generator device='{self._device}'>"
