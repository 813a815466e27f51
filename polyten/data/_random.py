"""Host-side randomness for samplers, ``random_split`` and worker seeds.

Index permutations are host data, so they are drawn with NumPy (PCG64) on the host, never on
an accelerator.  Without an explicit :class:`polyten.Generator` a fresh seed is drawn from
polyten's global generator (the ``cpu`` backend's), so ``polyten.manual_seed`` makes shuffling
reproducible, as ``torch.manual_seed`` does for PyTorch's samplers.
"""

from __future__ import annotations

from ..api.generator import Generator
from ._host import np

_INT63 = 2 ** 63 - 1


def global_seed() -> int:
    """A seed in ``[0, 2**63 - 1)`` drawn from polyten's global generator."""
    from ..api.random import randint
    return int(randint(0, _INT63, (1,), device="cpu").item())


def check_generator(owner: str, generator) -> None:
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{owner}: generator must be a polyten.Generator or None, got "
                        f"{type(generator).__name__}; create one with "
                        f"polyten.Generator().manual_seed(seed)")


def host_rng(generator=None) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s stream, or a freshly seeded one."""
    if generator is None:
        return np.random.Generator(np.random.PCG64(global_seed()))
    check_generator("sampler", generator)
    return generator._numpy()


def draw_seed(generator=None) -> int:
    """A 63-bit seed from ``generator`` (or from polyten's global generator)."""
    if generator is None:
        return global_seed()
    return int(host_rng(generator).integers(0, _INT63))
