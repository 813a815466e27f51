"""Kernel lookup: (op, backend) -> callable, resolved once and cached.

The API layer holds one :class:`KernelCache` per op (``kernels("add")``) and indexes it with a
backend object: a plain dict hit on the hot path, the resolution below on the first call.

Resolution order for ``(op, backend)``:

1. the backend's own kernel (``backend.kernels[op]``);
2. for a composite op: ``None``, meaning "run the op's backend-agnostic default" (the API layer
   registered it with :func:`register_default` and calls it on tensors);
3. otherwise :class:`KernelNotFoundError` naming the op, the backend and its distribution.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from .errors import KernelNotFoundError
from .optable import OPS, op as _op

__all__ = ["KernelCache", "kernels", "register_default", "default", "forget_backend",
           "kernel_for"]

_CACHES: Dict[str, "KernelCache"] = {}
_DEFAULTS: Dict[str, Callable] = {}


class KernelCache(dict):
    """``cache[backend] -> kernel`` for one op; ``None`` means "use the composite default"."""

    __slots__ = ("opdef",)

    def __init__(self, opdef):
        super().__init__()
        self.opdef = opdef

    def __missing__(self, backend):
        kernel = _resolve(self.opdef, backend)
        self[backend] = kernel
        return kernel


def _resolve(opdef, backend) -> Optional[Callable]:
    k = backend.kernels.get(opdef.name)
    if k is not None:
        return k
    if opdef.kind == "composite":
        return None
    dist = f" (from {backend.distribution})" if getattr(backend, "distribution", "") else ""
    raise KernelNotFoundError(
        f"{opdef.name}: backend {backend.name!r}{dist} has no kernel for this op "
        f"({opdef.tier} tier primitive '{opdef.signature}'). Move the tensors to a backend "
        f"that has it, e.g. .to('cpu'), or add the kernel to the backend "
        f"(see docs/backends.md).")


def kernels(name: str) -> KernelCache:
    """The cache for op ``name`` (created on first request)."""
    cache = _CACHES.get(name)
    if cache is None:
        cache = _CACHES[name] = KernelCache(_op(name))
    return cache


def kernel_for(name: str, backend) -> Optional[Callable]:
    """The kernel op ``name`` runs on ``backend`` (``None``: the composite default)."""
    return kernels(name)[backend]


def register_default(name: str, fn: Callable) -> Callable:
    """Register the backend-agnostic default of composite op ``name`` (written in polyten ops)."""
    if OPS[name].kind != "composite":
        raise ValueError(f"{name} is a primitive; only composites have defaults")
    _DEFAULTS[name] = fn
    return fn


def default(name: str) -> Callable:
    return _DEFAULTS[name]


def forget_backend(backend) -> None:
    """Drop cached kernels of a backend (it was unregistered or its kernels changed)."""
    for cache in _CACHES.values():
        cache.pop(backend, None)
