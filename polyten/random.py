"""``polyten.random``: seeding and generator states (``torch.random``'s names).

``manual_seed``, ``seed`` and ``initial_seed`` act on every backend; ``get_rng_state`` /
``set_rng_state`` on the cpu generator (``polyten.cuda.get_rng_state`` and its siblings on the
GPUs'); :func:`fork_rng` runs a block of code and puts the generators back as they were.
"""

from __future__ import annotations

import contextlib
import warnings

from .api.random import (device_rng_state, get_rng_state, initial_seed, manual_seed, seed,
                         set_device_rng_state, set_rng_state)

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "fork_rng"]

_WARNED = set()


def _devices_of(device_type: str, devices):
    """``[polyten.device]`` to fork for ``device_type``: ``devices`` (indices or devices),
    else every device of the backend when it is available, else none."""
    from .dispatch import registry
    from .dispatch.device import Device, device
    if devices is None:
        info = next((i for i in registry.backends() if i.name == device_type), None)
        if info is None or not info.available:
            return []
        backend = registry.get(device_type)
        if not backend.indexed:
            return [device(device_type)]
        count = backend.device_count()
        if count > 1 and device_type not in _WARNED:
            _WARNED.add(device_type)
            warnings.warn(f"polyten.random.fork_rng: {device_type} has {count} devices; the "
                          f"generators of all of them are saved and restored, which costs a "
                          f"little each time.  Pass devices=[...] with the ones the block uses "
                          f"(or devices=[]) to silence this warning.", UserWarning, stacklevel=3)
        return [device(f"{device_type}:{i}") for i in range(count)]
    out = []
    for d in devices:
        if isinstance(d, Device):
            out.append(d)
        elif isinstance(d, int) and not isinstance(d, bool):
            out.append(device(f"{device_type}:{d}"))
        else:
            out.append(device(d))
    return out


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, device_type: str = "cuda"):
    """Run a block with the random generators forked: on exit, the cpu generator and those of
    ``devices`` draw again what they would have drawn had the block never run
    (``torch.random.fork_rng``).

    Parameters
    ----------
    devices : iterable of int or device, optional
        The ``device_type`` devices whose generators to save (indices or devices).  By default
        all of them when that backend is available (with a warning when there are several).
    enabled : bool
        ``False`` runs the block with nothing forked.
    device_type : str
        The backend of ``devices`` (``"cuda"``, or a third-party backend's name).

    Examples
    --------
    >>> polyten.manual_seed(0)
    >>> with polyten.random.fork_rng():
    ...     noise = polyten.randn(3)      # draws here do not shift the stream outside
    >>> after = polyten.rand(2)           # the same as without the block
    """
    if not enabled:
        yield
        return
    cpu = get_rng_state()
    saved = [(d, device_rng_state("fork_rng", d)) for d in _devices_of(device_type, devices)
             if d.type != "cpu"]
    try:
        yield
    finally:
        set_rng_state(cpu)
        for d, state in saved:
            set_device_rng_state("fork_rng", d, state)
