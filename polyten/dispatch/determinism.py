"""Deterministic algorithms (``torch.use_deterministic_algorithms``): one process-wide setting,
handed to every backend that can act on it.

Off (the default), a backend may use kernels whose floating-point results vary from run to run
in the last bits -- on a GPU, sums taken with atomic additions in whatever order threads
arrive.  On, it must use kernels that give the same bits on every run, or, for an op that
has none, raise (:func:`alert_not_deterministic`; only warn with ``warn_only=True``).

A backend acts on it through ``Backend.deterministic_algorithms(enabled, warn_only)``
(``cuda``: ``scatter_add`` -- behind ``index_add`` and the backward of indexing, ``gather``
and ``embedding`` -- sums in source order instead of with atomics, and ``scatter`` /
``setitem`` let the last write to a repeated position win).  One whose kernels are
all deterministic (the cpu backend) has no hook.  Backends loaded later get the setting when
they load.
"""

from __future__ import annotations

import threading
import warnings
from typing import List, Union

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode", "alert_not_deterministic"]

_state: List[bool] = [False, False]  # enabled, warn_only
_lock = threading.Lock()
_MODES = {"default": 0, "warn": 1, "error": 2}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Make every op use a deterministic algorithm: the same inputs give the same bits on
    every run (``torch.use_deterministic_algorithms``).

    Parameters
    ----------
    mode : bool
        True: ops use their deterministic kernels (``cuda``: ``scatter_add`` and everything
        built on it -- ``index_add``, the backward of indexing, ``gather`` and
        ``embedding`` -- sum in a fixed order instead of with atomic
        additions, and of writes to a repeated position -- ``x[idx] = v``, ``scatter`` --
        the last one wins); an op a backend has no deterministic kernel for raises
        RuntimeError.
        False (the default): backends may use faster, non-deterministic kernels.
    warn_only : bool, optional
        With ``mode`` True, an op without a deterministic kernel warns instead of raising.
    """
    for name, value in (("mode", mode), ("warn_only", warn_only)):
        if not isinstance(value, bool):
            raise TypeError(f"use_deterministic_algorithms: {name} must be True or False, got "
                            f"{type(value).__name__} {value!r}")
    from .registry import loaded_backends
    with _lock:
        _state[0], _state[1] = mode, warn_only  # torch keeps warn_only while off too
        for backend in loaded_backends():
            _apply(backend)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` is on."""
    return _state[0]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """The ``warn_only`` last given (as torch, whether or not the mode is on)."""
    return _state[1]


def set_deterministic_debug_mode(debug_mode: Union[str, int]) -> None:
    """torch's other spelling: ``"default"`` / 0 (off), ``"warn"`` / 1 (on, warn only),
    ``"error"`` / 2 (on)."""
    if isinstance(debug_mode, str) and debug_mode in _MODES:
        level = _MODES[debug_mode]
    elif isinstance(debug_mode, int) and not isinstance(debug_mode, bool) and \
            debug_mode in _MODES.values():
        level = debug_mode
    else:
        raise ValueError(f"set_deterministic_debug_mode: expected 'default' (0), 'warn' (1) "
                         f"or 'error' (2), got {debug_mode!r}")
    use_deterministic_algorithms(level > 0, warn_only=level == 1)


def get_deterministic_debug_mode() -> int:
    """0 (off), 1 (on, warn only) or 2 (on)."""
    return 0 if not _state[0] else 1 if _state[1] else 2


def alert_not_deterministic(caller: str, backend: str) -> None:
    """For a backend's kernel that has no deterministic algorithm: raise RuntimeError (warn,
    with ``warn_only``) when deterministic algorithms are on; nothing otherwise."""
    if not _state[0]:
        return
    msg = (f"{caller} does not have a deterministic implementation on backend {backend!r}, "
           f"but polyten.use_deterministic_algorithms(True) is on. Turn it off for this "
           f"call, or pass warn_only=True to be warned instead, or run the op on a backend "
           f"that has one (the cpu backend is deterministic throughout)")
    if _state[1]:  # warn_only
        warnings.warn(msg, UserWarning, stacklevel=3)
    else:
        raise RuntimeError(msg)


def _apply(backend) -> None:
    hook = getattr(backend, "deterministic_algorithms", None)
    if hook is not None:
        hook(_state[0], _state[1])


def apply_at_load(backend) -> None:
    """Hand a backend that has just loaded the setting when it is on (a backend starts off).
    Called by the registry under its own lock, so it takes none."""
    if _state[0]:
        _apply(backend)
