"""Kernel lookup: (op, backend) -> callable, resolved once and cached.

The API layer holds one :class:`KernelCache` per op (``kernels("add")``) and indexes it with a
backend object: a plain dict hit on the hot path, the resolution below on the first call.

Resolution order for ``(op, backend)``:

1. the backend's own kernel (``backend.kernels[op]``);
2. for a composite with a kernel-level default (``polyten.dispatch.defaults``): that default,
   built from the same backend's resolved kernels (recursively, cached like any kernel);
3. for a composite whose default is written in polyten ops: ``None``, meaning "run the op's
   backend-agnostic default" (the API layer registered it with :func:`register_default`);
4. otherwise the backend's fallback policy (:func:`set_fallback_policy`): ``error`` (the
   default) raises :class:`KernelNotFoundError` naming the op, the backend and its
   distribution; ``warn`` and ``silent`` run the op on the cpu backend (copy in, compute,
   copy back), counted in :func:`fallback_counts`.

With :func:`set_validation` on (the conformance suite turns it on), every kernel is wrapped so
that a result of the wrong dtype or shape raises :class:`KernelContractError` naming the kernel.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Callable, Dict, Optional, Tuple

from .errors import BackendError, KernelNotFoundError
from .optable import OPS, op as _op

__all__ = ["KernelCache", "kernels", "register_default", "default", "has_default",
           "forget_backend",
           "kernel_for", "set_fallback_policy", "fallback_policy", "fallback_counts",
           "reset_fallback_counts", "FallbackWarning", "set_validation", "validation",
           "KernelContractError", "DtypeNotStoredError", "dtype_not_stored", "ENV_FALLBACK",
           "Capability", "manifest"]

_CACHES: Dict[str, "KernelCache"] = {}
_DEFAULTS: Dict[str, Callable] = {}
_DEFAULT_USES: Dict[str, Tuple[str, ...]] = {}  # the kernels a default calls directly


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
    if k is None:
        k = _build_default(opdef, backend)
    if k is None:
        if opdef.kind == "composite":
            return None
        k = _fallback(opdef, backend)
    return _validated(opdef, backend, k) if _VALIDATE[0] else k


def _build_default(opdef, backend) -> Optional[Callable]:
    from .defaults import KERNEL_DEFAULTS, Kernels
    entry = KERNEL_DEFAULTS.get(opdef.name)
    if entry is None:
        return None
    kernel = entry[0](Kernels(backend, _dependency, opdef.name))
    kernel.polyten_default = opdef.name  # the capability manifest tells defaults apart
    return kernel


def _dependency(name: str, backend, needed_by: str) -> Callable:
    try:
        k = kernels(name)[backend]
    except KernelNotFoundError as exc:
        raise KernelNotFoundError(f"{needed_by}: backend {backend.name!r} has no kernel for "
                                  f"it, and polyten's default for it needs {name!r}: {exc}"
                                  ) from None
    if k is None:  # a composite with a polyten-op default cannot serve a kernel-level one
        raise KernelNotFoundError(f"{needed_by}: polyten's default needs a kernel for "
                                  f"{name!r}, which backend {backend.name!r} lacks")
    return k


def _not_found(opdef, backend) -> KernelNotFoundError:
    dist = f" (from {backend.distribution})" if getattr(backend, "distribution", "") else ""
    optional = "" if opdef.tier == "core" else (
        f" The {opdef.tier!r} tier is optional: this backend does not provide it.")
    return KernelNotFoundError(
        f"{opdef.name}: backend {backend.name!r}{dist} has no kernel for this op "
        f"({opdef.tier} tier primitive '{opdef.signature}').{optional} Move the tensors to a "
        f"backend that has it, e.g. .to('cpu'), run it on the cpu backend with "
        f"polyten.dispatch.set_fallback_policy('warn', backend={backend.name!r}), or add the "
        f"kernel to the backend (see docs/backends.md).")


def kernels(name: str) -> KernelCache:
    """The cache for op ``name`` (created on first request)."""
    cache = _CACHES.get(name)
    if cache is None:
        cache = _CACHES[name] = KernelCache(_op(name))
    return cache


def kernel_for(name: str, backend) -> Optional[Callable]:
    """The kernel op ``name`` runs on ``backend`` (``None``: the composite default)."""
    return kernels(name)[backend]


def register_default(name: str, fn: Callable, uses: Tuple[str, ...] = ()) -> Callable:
    """Register the backend-agnostic default of composite op ``name`` (written in polyten ops).

    ``uses`` names the op-table kernels it calls directly (not through polyten ops, which
    have their own defaults): a backend lacking one of them lacks ``name`` too (the
    capability manifest says so)."""
    if OPS[name].kind != "composite":
        raise ValueError(f"{name} is a primitive; only composites have defaults")
    _DEFAULTS[name] = fn
    _DEFAULT_USES[name] = tuple(uses)
    return fn


def default(name: str) -> Callable:
    return _DEFAULTS[name]


def has_default(name: str) -> bool:
    """Whether composite ``name`` has a default (kernel-level, or written in polyten ops)."""
    from .defaults import KERNEL_DEFAULTS
    return name in KERNEL_DEFAULTS or name in _DEFAULTS


def forget_backend(backend) -> None:
    """Drop cached kernels of a backend (it was unregistered or its kernels changed)."""
    for cache in _CACHES.values():
        cache.pop(backend, None)


def _forget_all(predicate=lambda kernel: True) -> None:
    for cache in _CACHES.values():
        for backend, kernel in list(cache.items()):
            if predicate(kernel):
                cache.pop(backend, None)


# --- issue 6: the fallback policy ---------------------------------------------------------------
ENV_FALLBACK = "POLYTEN_FALLBACK"
_POLICIES = ("error", "warn", "silent")
_POLICY: Dict[Optional[str], str] = {}
_COUNTS: Dict[str, Dict[str, int]] = {}
_WARNED: set = set()
_LOCK = threading.Lock()
# ops that write into their argument: a copy on the cpu cannot write through
_NO_FALLBACK = frozenset(("setitem", "inplace", "to_host", "from_host"))


class FallbackWarning(UserWarning):
    """An op ran on the cpu backend because its backend lacks it (policy ``warn``)."""


def _check_policy(policy: str, where: str) -> str:
    if policy not in _POLICIES:
        raise ValueError(f"{where}: fallback policy must be one of {', '.join(_POLICIES)}, "
                         f"got {policy!r}")
    return policy


def fallback_policy(backend: Optional[str] = None) -> str:
    """The fallback policy for ``backend`` (its own, else the global one; ``None``: global)."""
    if backend is not None and backend in _POLICY:
        return _POLICY[backend]
    if None not in _POLICY:
        env = os.environ.get(ENV_FALLBACK, "").strip().lower() or "error"
        _POLICY[None] = _check_policy(env, f"${ENV_FALLBACK}")
    return _POLICY[None]


def set_fallback_policy(policy: Optional[str], backend: Optional[str] = None) -> None:
    """What to do when a backend lacks an op entirely (no kernel and no default).

    Parameters
    ----------
    policy : {"error", "warn", "silent"}
        ``error`` (the default): raise :class:`KernelNotFoundError` naming the op and the
        backend.  ``warn``: run the op on the cpu backend -- copy the inputs to the host,
        compute, copy the results back -- and warn once per op and backend
        (:class:`FallbackWarning`).  ``silent``: the same without the warning.  Every fallback
        call is counted (:func:`fallback_counts`), so a slow path is never invisible.
    backend : str, optional
        Set the policy of this backend only (``policy=None`` removes it again); ``None`` sets
        the global policy, which backends without their own follow.  The process starts with
        ``$POLYTEN_FALLBACK`` or ``error``.
    """
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"set_fallback_policy: backend must be a backend name (str) or None, "
                        f"got {type(backend).__name__}")
    if not (policy is None and backend is not None):
        _check_policy(policy, "set_fallback_policy")
    with _LOCK:
        fallback_policy()  # read the environment before it is overridden
        if policy is None:
            _POLICY.pop(backend, None)
        else:
            _POLICY[backend] = policy
        _WARNED.clear()
    _forget_all(lambda kernel: isinstance(kernel, _Fallback) or
                isinstance(getattr(kernel, "kernel", None), _Fallback))


def fallback_counts() -> Dict[str, Dict[str, int]]:
    """How many calls ran on the cpu backend instead: ``{backend: {op: calls}}``."""
    with _LOCK:
        return {b: dict(ops) for b, ops in _COUNTS.items()}


def reset_fallback_counts() -> None:
    with _LOCK:
        _COUNTS.clear()


def _fallback(opdef, backend) -> Callable:
    policy = fallback_policy(backend.name)
    if policy == "error" or backend.name == "cpu" or opdef.name in _NO_FALLBACK:
        raise _not_found(opdef, backend)
    from . import registry
    try:
        cpu = registry.get("cpu")
    except BackendError as exc:
        raise KernelNotFoundError(f"{_not_found(opdef, backend)} The fallback policy is "
                                  f"{policy!r} but the cpu backend cannot be used: {exc}"
                                  ) from None
    if kernels(opdef.name)[cpu] is None:
        raise _not_found(opdef, backend)
    return _Fallback(opdef, backend, cpu)


class _Fallback:
    """A kernel that runs ``opdef`` on the cpu backend for ``backend``."""

    def __init__(self, opdef, backend, cpu):
        self.opdef, self.backend, self.cpu = opdef, backend, cpu
        params = [p.strip() for p in opdef.signature.split("(", 1)[1].split(")", 1)[0]
                  .split(",")]
        self.index_pos = params.index("device_index") if "device_index" in params else None

    def _in(self, a, found):
        b = self.backend
        if isinstance(a, (list, tuple)):
            return type(a)(self._in(v, found) for v in a)
        if b.is_native(a):
            if not found:
                found.append(b.device_of(a) if b.indexed else None)
            return self.cpu.kernels["from_host"](b.kernels["to_host"](a), None)
        return a

    def _out(self, r, index):
        if isinstance(r, (list, tuple)):
            return type(r)(self._out(v, index) for v in r)
        if r is not None and not isinstance(r, (bool, int, float, complex)) and \
                self.cpu.is_native(r):
            return self.backend.kernels["from_host"](self.cpu.kernels["to_host"](r), index)
        return r

    def __call__(self, *args):
        name, bname = self.opdef.name, self.backend.name
        with _LOCK:
            ops = _COUNTS.setdefault(bname, {})
            ops[name] = ops.get(name, 0) + 1
            first = (bname, name) not in _WARNED
            _WARNED.add((bname, name))
        if first and fallback_policy(bname) == "warn":
            warnings.warn(f"{name}: backend {bname!r} has no kernel for this op; it runs on the "
                          f"cpu backend (inputs copied to the host and the result back). "
                          f"polyten.dispatch.fallback_counts() counts these calls.",
                          FallbackWarning, stacklevel=3)
        found = []
        args = list(args)
        for i, a in enumerate(args):
            if i != self.index_pos:
                args[i] = self._in(a, found)
        index = found[0] if found else None
        if self.index_pos is not None:
            index = args[self.index_pos]
            args[self.index_pos] = None
        out = kernels(name)[self.cpu](*args)
        return self._out(out, index)


# --- issue 6: kernel validation ---------------------------------------------------------------
_VALIDATE = [False]
_REAL_OF = {"complex64": "float32", "complex128": "float64"}


class KernelContractError(BackendError):
    """A kernel returned a result of the wrong dtype or shape (see :func:`set_validation`)."""


class DtypeNotStoredError(KernelNotFoundError, TypeError):
    """A call needs a dtype its backend does not store (missing capability, like a kernel)."""


def dtype_not_stored(backend, dtype_name: str, op: str = "") -> DtypeNotStoredError:
    """The error for a tensor of ``dtype_name`` on ``backend``, which does not store it."""
    stored = ", ".join(d for d in _DTYPE_ORDER if d in backend.dtypes)
    return DtypeNotStoredError(
        f"{op + ': ' if op else ''}backend {backend.name!r} does not store {dtype_name} (it "
        f"stores {stored}), and this call would make a {dtype_name} tensor on it. Use a dtype "
        f"it stores, or move the tensors to a backend that does, e.g. .to('cpu').")


def validation() -> bool:
    return _VALIDATE[0]


def set_validation(on: bool = True) -> None:
    """Check every kernel's result against the op table (debugging and the conformance suite).

    When on, each kernel is wrapped: its result must be a native array of the backend whose
    dtype follows the op's rule where that is computable from the inputs (``same``, ``bool``,
    ``int64``, ``real``, and ``float`` / ``promote`` on already-cast inputs), and elementwise
    ops must return the broadcast shape of their inputs.  A violation raises
    :class:`KernelContractError` naming the kernel, the backend and what was expected.  It
    costs a few attribute reads per call: leave it off in production.
    """
    _VALIDATE[0] = bool(on)
    _forget_all()


def _params(opdef):
    return [p.strip() for p in opdef.signature.split("(", 1)[1].split(")", 1)[0].split(",")]


def _broadcast(a, b):
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(x if y == 1 else y for x, y in zip(a, b))


# setitem returns nothing; to_host returns a host (NumPy) array, native only on host backends
# (it is a core primitive, so the transfer-tier exemption does not cover it)
_UNCHECKED_RESULT = frozenset({"setitem", "to_host"})


class _Validated:
    __slots__ = ("kernel", "opdef", "backend", "rule", "elementwise", "what", "dtype_pos")

    def __init__(self, opdef, backend, kernel):
        self.kernel, self.opdef, self.backend = kernel, opdef, backend
        params = _params(opdef)
        self.rule = opdef.result
        # reductions and scans that take the result dtype (sum, prod, cumsum, cumprod)
        self.dtype_pos = (params.index("dtype") if "dtype" in params and opdef.arity == 1
                          and opdef.tier == "core" else None)
        self.elementwise = (params in (["x"], ["x", "y"]) and "->" not in opdef.signature
                            and opdef.name != "nonzero" and opdef.tier != "transfer")
        src = ("polyten's default kernel" if getattr(kernel, "polyten_default", None) else
               "cpu fallback kernel" if isinstance(kernel, _Fallback) else "kernel")
        self.what = (f"{src} {opdef.name!r} of backend {backend.name!r}"
                     + (f" ({backend.distribution})" if getattr(backend, "distribution", "")
                        else ""))

    def __call__(self, *args):
        out = self.kernel(*args)
        b = self.backend
        x = args[0] if args else None
        if self.dtype_pos is not None and b.is_native(out):
            want, got = args[self.dtype_pos], b.dtype_name(out)
            if want not in b.dtypes:
                raise KernelContractError(f"{self.what}: asked for {want}, a dtype the backend "
                                          f"does not store (Backend.dtypes: "
                                          f"{', '.join(sorted(b.dtypes))})")
            if got != want:
                raise KernelContractError(f"{self.what}: the kernel returned {got} data for a "
                                          f"{want} result (dtype={want!r} was asked)")
            return out
        if self.rule == "custom" or self.opdef.arity == 0 or "->" in self.opdef.signature \
                or self.opdef.tier == "transfer" or self.opdef.name in _UNCHECKED_RESULT:
            return out
        if self.opdef.name == "where":
            x = args[1] if b.is_native(args[1]) else args[2]
        if not b.is_native(out):
            raise KernelContractError(f"{self.what}: the kernel returned "
                                      f"{type(out).__name__}, not a native array of the "
                                      f"backend")
        got = b.dtype_name(out)
        want = None
        if b.is_native(x):
            xd = b.dtype_name(x)
            want = {"bool": "bool", "int64": "int64", "same": xd, "float": xd,
                    "promote": xd, "real": _REAL_OF.get(xd, xd)}.get(self.rule)
        if want is not None and got != want:
            raise KernelContractError(f"{self.what}: the kernel returned {got} data for a "
                                      f"{want} result (op rule {self.rule!r}: "
                                      f"{self.opdef.signature})")
        if self.elementwise and b.is_native(x):
            shape = tuple(x.shape)
            y = args[1] if len(args) > 1 else None
            if y is not None and b.is_native(y):
                shape = _broadcast(shape, y.shape)
            if tuple(out.shape) != shape:
                raise KernelContractError(f"{self.what}: shape is {tuple(out.shape)}, "
                                          f"expected {shape} (elementwise: the broadcast "
                                          f"shape of its inputs)")
        return out


def _validated(opdef, backend, kernel):
    return _Validated(opdef, backend, kernel)


# --- issue 6: the capability manifest ---------------------------------------------------------
class Capability:
    """How one op runs on one backend (a row of :func:`manifest`).

    ``source`` is ``"native"`` (the backend's own kernel), ``"default"`` (polyten's default,
    built from the backend's other kernels or written in polyten ops), ``"fallback"`` (on the
    cpu backend, per the fallback policy) or ``"missing"``; ``dtypes`` are the dtypes it runs
    on there (the op's accepted dtypes the backend stores; empty when missing).
    """

    __slots__ = ("op", "tier", "kind", "source", "dtypes", "reason")

    def __init__(self, op, tier, kind, source, dtypes, reason=""):
        self.op, self.tier, self.kind, self.source = op, tier, kind, source
        self.dtypes, self.reason = dtypes, reason

    def __repr__(self) -> str:
        return f"Capability({self.op!r}, {self.source}, tier={self.tier!r})"


def manifest(backend) -> Dict[str, Capability]:
    """The capability manifest of a loaded backend: op name -> :class:`Capability`.

    Computed from the backend's kernels and the op table without running anything: an op
    whose kernel-level default needs an op the backend lacks is ``missing`` (with the reason).
    """
    from .defaults import DEFAULT_DTYPES, KERNEL_DEFAULTS
    stored = backend.dtypes
    memo: Dict[str, tuple] = {}

    def source(name, stack=()):
        if name in memo:
            return memo[name]
        o = OPS[name]
        if name in backend.kernels:
            r = ("native", "")
        elif name in KERNEL_DEFAULTS or o.kind == "composite":
            # a default lacks what a kernel it calls directly lacks
            uses = KERNEL_DEFAULTS[name][1] if name in KERNEL_DEFAULTS else \
                _DEFAULT_USES.get(name, ())
            lacking = [d for d in uses if d not in stack and d != name
                       and source(d, stack + (name,))[0] == "missing"]
            r = ("default", "") if not lacking else (
                "missing", f"its default needs {', '.join(lacking)}")
        elif name not in _NO_FALLBACK and backend.name != "cpu" and \
                fallback_policy(backend.name) != "error":
            r = ("fallback", f"runs on the cpu backend (policy "
                             f"{fallback_policy(backend.name)!r})")
        else:
            r = ("missing", f"no kernel ({o.tier} tier primitive)")
        memo[name] = r
        return r

    out = {}
    for name, o in OPS.items():
        src, why = source(name)
        dts = () if src == "missing" else tuple(
            d for d in sorted(o.accepted & stored, key=_DTYPE_ORDER.index)
            if src != "default" or name not in DEFAULT_DTYPES or d in DEFAULT_DTYPES[name])
        out[name] = Capability(name, o.tier, o.kind, src, dts, why)
    return out


_DTYPE_ORDER = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
                "float32", "float64", "complex64", "complex128"]
