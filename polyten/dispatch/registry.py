"""Plugin discovery and the table of known backends.

Discovery is lazy: ``import polyten`` reads no entry points and imports no plugin.  The first
call that needs a backend (creating a tensor, ``polyten.backends()``, ...) loads the entry
points of the ``polyten`` group, one at a time, so that a plugin whose import raises is
recorded and warned about once while the others load normally.

``POLYTEN_PLUGINS`` (comma-separated entry-point names) limits which plugins load; unset means
all, an empty string means none.  Plugins registered in-process with :func:`register_plugin`
(tests, notebooks) are always loaded.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from typing import Any, Dict, List, NamedTuple, Optional

import pluggy

from . import hookspecs
from .backend import Backend, BackendSpec
from .errors import (BackendUnavailableError, PluginWarning, UnknownBackendError)

__all__ = ["BackendInfo", "backends", "get", "register_plugin", "unregister_plugin",
           "plugin_errors", "ENV_PLUGINS"]

ENV_PLUGINS = "POLYTEN_PLUGINS"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class BackendInfo:
    """One row of ``polyten.backends()``.

    ``available`` is ``False`` with a human ``reason`` when the backend cannot run here, or
    when its plugin failed (``error`` then holds what went wrong).  ``capabilities`` is the
    backend's capability manifest (op -> native / default / fallback / missing, with dtypes),
    computed on first access (it loads the backend); ``None`` for a backend that cannot load.
    """

    # a plain class, not a dataclass: `dataclasses` costs ~10 ms of `import polyten`
    _FIELDS = ("name", "distribution", "version", "plugin", "available", "reason",
               "description", "error", "loaded")
    __slots__ = _FIELDS + ("spec", "backend")

    def __init__(self, name: str, distribution: str = "", version: str = "", plugin: str = "",
                 available: bool = False, reason: str = "", description: str = "",
                 error: str = "", loaded: bool = False, spec: Optional[BackendSpec] = None,
                 backend: Optional[Backend] = None):
        self.name, self.distribution, self.version, self.plugin = (name, distribution,
                                                                   version, plugin)
        self.available, self.reason, self.description = available, reason, description
        self.error, self.loaded, self.spec, self.backend = error, loaded, spec, backend

    def __repr__(self) -> str:
        return "BackendInfo(" + ", ".join(f"{k}={getattr(self, k)!r}"
                                          for k in self._FIELDS) + ")"

    def __eq__(self, other) -> bool:
        if other.__class__ is not BackendInfo:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    @property
    def capabilities(self):
        """``{op: polyten.dispatch.dispatcher.Capability}`` for this backend, or ``None``."""
        if not self.available:
            return None
        try:
            backend = get(self.name)
        except Exception:
            return None
        from .dispatcher import manifest
        return manifest(backend)

    def __str__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.reason}"
        dist = f"{self.distribution} {self.version}".strip()
        return f"{self.name} ({dist or 'in-process'}): {state}"


class PluginError(NamedTuple):
    """A plugin that failed to load or registered something invalid."""

    plugin: str
    distribution: str
    message: str


class _Registry:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("polyten")
        self.pm.add_hookspecs(hookspecs)
        self.lock = threading.RLock()
        self.discovered = False
        self.infos: Dict[str, BackendInfo] = {}
        self.errors: List[PluginError] = []
        self.plugin_dist: Dict[str, tuple] = {}
        self._warned: set = set()

    # -- discovery ------------------------------------------------------------------------
    def discover(self) -> None:
        if self.discovered:
            return
        with self.lock:
            if self.discovered:
                return
            self._load_entry_points()
            for name, plugin in list(self.pm.list_name_plugin()):
                self._run_register_hook(name, plugin)
            self.discovered = True

    def _entry_points(self):
        try:
            import importlib_metadata as md  # the maintained backport: same API everywhere
        except ImportError:  # pragma: no cover - stdlib fallback
            import importlib.metadata as md
        return md.entry_points(group="polyten")

    def _load_entry_points(self) -> None:
        allow = os.environ.get(ENV_PLUGINS)
        allowed = None if allow is None else {p.strip() for p in allow.split(",") if p.strip()}
        seen = set()
        for ep in self._entry_points():
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            if allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = getattr(dist, "name", "") or ""
            dist_version = getattr(dist, "version", "") or ""
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must never break polyten
                self._error(ep.name, dist_name,
                            f"importing entry point {ep.value!r} failed: "
                            f"{type(exc).__name__}: {exc}")
                continue
            self.plugin_dist[ep.name] = (dist_name, dist_version)

    def _run_register_hook(self, plugin_name: str, plugin: Any) -> None:
        dist_name, dist_version = self.plugin_dist.get(plugin_name, ("", ""))
        impls = [i for i in self.pm.hook.polyten_register_backends.get_hookimpls()
                 if i.plugin is plugin]

        def register(spec):
            self._add(spec, plugin_name, dist_name, dist_version)

        for impl in impls:
            try:
                returned = impl.function(register=register)
            except Exception as exc:
                self._error(plugin_name, dist_name,
                            f"hook polyten_register_backends raised "
                            f"{type(exc).__name__}: {exc}")
                continue
            if returned is not None:
                # a common slip: returning the spec instead of passing it to register()
                self._error(plugin_name, dist_name,
                            f"hook polyten_register_backends returned "
                            f"{type(returned).__name__} {returned!r:.80}, which is ignored: "
                            f"call register(BackendSpec(...)) for each backend instead")

    def _add(self, spec, plugin_name, dist_name, dist_version) -> None:
        who = f"plugin {plugin_name!r}" + (f" (distribution {dist_name!r})" if dist_name else "")
        if isinstance(spec, Backend):
            backend = spec
            spec = BackendSpec(spec.name, load=lambda b=backend: b)
        if not isinstance(spec, BackendSpec):
            self._error(plugin_name, dist_name,
                        f"{who} registered {type(spec).__name__} {spec!r}, which is not a "
                        f"polyten.dispatch.BackendSpec or Backend")
            return
        name = spec.name
        if not isinstance(name, str) or not _NAME_RE.match(name):
            self._error(plugin_name, dist_name,
                        f"{who} registered a backend named {name!r}; names are lower-case "
                        f"letters, digits and underscores, starting with a letter")
            return
        if name in self.infos and plugin_name == name and \
                self.infos[name].plugin != name and self.infos[name].backend is None:
            # the plugin whose entry point is named after the backend owns the name, whatever
            # order the entry points load in: another plugin cannot shadow "cpu"
            other = self.infos.pop(name)
            self._error(other.plugin, other.distribution,
                        f"plugin {other.plugin!r}"
                        f"{' (distribution ' + repr(other.distribution) + ')' if other.distribution else ''}"
                        f" registered backend {name!r}, which plugin {plugin_name!r} "
                        f"({dist_name or 'in-process'}) provides under its own name; that one "
                        f"is kept")
        if name in self.infos:
            other = self.infos[name]
            self._error(plugin_name, dist_name,
                        f"{who} registered backend {name!r}, which plugin {other.plugin!r} "
                        f"({other.distribution or 'in-process'}) already provides; the first "
                        f"registration is kept")
            return
        self.infos[name] = BackendInfo(name=name, distribution=dist_name, version=dist_version,
                                       plugin=plugin_name, description=spec.description,
                                       spec=spec)

    def _error(self, plugin: str, dist: str, message: str) -> None:
        self.errors.append(PluginError(plugin, dist, message))
        key = (plugin, message)
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"polyten: plugin {plugin!r} "
                          f"{'(' + dist + ') ' if dist else ''}was skipped: {message}",
                          PluginWarning, stacklevel=4)

    # -- queries --------------------------------------------------------------------------
    def probe(self, info: BackendInfo) -> None:
        if info.error:
            return
        try:
            ok, reason = info.spec.probe()
        except Exception as exc:
            ok, reason = False, f"availability probe raised {type(exc).__name__}: {exc}"
        info.available, info.reason = bool(ok), ("" if ok else str(reason or "unavailable"))

    def get(self, name: str) -> Backend:
        """The loaded backend ``name``; loads it on first use.  Raises a helpful error."""
        self.discover()
        info = self.infos.get(name)
        if info is None:
            raise UnknownBackendError(self._unknown_message(name))
        if info.backend is not None:
            return info.backend
        with self.lock:
            if info.backend is not None:
                return info.backend
            self.probe(info)
            if not info.available:
                raise BackendUnavailableError(
                    f"backend {name!r} is installed ({info.distribution or 'in-process'}) but "
                    f"unavailable: {info.reason}")
            try:
                backend = info.spec.load()
                if not isinstance(backend, Backend):
                    raise TypeError(f"load() returned {type(backend).__name__}, "
                                    f"not a polyten.dispatch.Backend")
                if backend.name != name:
                    raise ValueError(f"load() returned backend {backend.name!r}, "
                                     f"expected {name!r}")
                from .optable import validate_kernels
                problems = validate_kernels(backend)
            except Exception as exc:
                info.available = False
                info.error = info.reason = f"loading failed: {type(exc).__name__}: {exc}"
                self._error(info.plugin, info.distribution,
                            f"backend {name!r} {info.reason}")
                raise BackendUnavailableError(
                    f"backend {name!r} ({info.distribution or 'in-process'}) "
                    f"{info.reason}") from exc
            for p in problems:
                self._error(info.plugin, info.distribution, p)
            backend.distribution = info.distribution
            backend.distribution_version = info.version
            from . import determinism, precision
            precision.apply_at_load(backend)  # the settings made before it loaded
            determinism.apply_at_load(backend)
            info.backend = backend
            info.loaded = True
            return backend

    def _unknown_message(self, name: str) -> str:
        lines = [f"unknown backend {name!r}."]
        if not self.infos:
            lines.append("No backend is installed: pip install polyten-cpu")
        else:
            lines.append("Installed backends:")
            for info in self.infos.values():
                self.probe(info)
                lines.append(f"  - {info}")
        lines.append("Install a plugin that provides it, or pick one of the above.")
        return "\n".join(lines)

    def backends(self) -> List[BackendInfo]:
        self.discover()
        for info in self.infos.values():
            self.probe(info)
        return list(self.infos.values())

    # -- in-process plugins ---------------------------------------------------------------
    def register_plugin(self, plugin: Any, name: Optional[str] = None) -> str:
        self.discover()
        with self.lock:
            name = self.pm.register(plugin, name=name)
            if name is None:
                raise ValueError(f"plugin {plugin!r} is blocked or already registered")
            before = set(self.infos)
            self._run_register_hook(name, plugin)
            self._plugin_backends.setdefault(name, set()).update(set(self.infos) - before)
            return name

    _plugin_backends: Dict[str, set] = {}

    def unregister_plugin(self, name: str) -> None:
        with self.lock:
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self.pm.unregister(plugin, name=name)
            for bname in self._plugin_backends.pop(name, ()):
                info = self.infos.pop(bname, None)
                if info is not None and info.backend is not None:
                    from . import dispatcher
                    dispatcher.forget_backend(info.backend)
            from .device import forget_devices
            forget_devices()


REGISTRY = _Registry()


def backends() -> List[BackendInfo]:
    """List every discovered backend: name, distribution and version, availability and reason.

    Returns
    -------
    list of BackendInfo
        One row per backend; a plugin that failed to import or registered something invalid
        appears in :func:`plugin_errors` (and was warned about once).
    """
    return REGISTRY.backends()


def loaded_backends() -> List["Backend"]:
    """The backends loaded so far in this process (never loads one)."""
    return [i.backend for i in list(REGISTRY.infos.values()) if i.backend is not None]


def plugin_errors() -> List[PluginError]:
    """Problems met while loading plugins: which plugin, which distribution, what went wrong."""
    REGISTRY.discover()
    return list(REGISTRY.errors)


def get(name: str) -> Backend:
    """The loaded :class:`Backend` called ``name`` (loading it on first use)."""
    return REGISTRY.get(name)


def register_plugin(plugin: Any, name: Optional[str] = None) -> str:
    """Register a plugin object in-process (no installation needed) and run its hooks.

    ``plugin`` is any object or module with ``@hookimpl`` functions, e.g. a class with a
    ``polyten_register_backends(register)`` method.  Returns the plugin's name, which
    :func:`unregister_plugin` takes to remove it and the backends it registered.
    """
    return REGISTRY.register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove an in-process plugin and the backends it registered."""
    REGISTRY.unregister_plugin(name)
