"""polyten.dispatch: plugin discovery, the op table and kernel lookup.

This is the contract a backend plugin programs against: :class:`BackendSpec`,
:class:`Backend`, ``hookimpl`` and the op table (``optable.OPS``).  It imports no array
library.
"""

from .backend import Backend, BackendSpec
from .device import Device, device, parse_device_string
from .dispatcher import kernel_for, kernels, register_default
from .dispatcher import (Capability, DtypeNotStoredError, FallbackWarning,
                         KernelContractError, fallback_counts,
                         fallback_policy, manifest, reset_fallback_counts, set_fallback_policy,
                         set_validation, validation)
from .errors import (BackendError, BackendUnavailableError, DeviceMismatchError,
                     KernelNotFoundError, OutOfMemoryError, PluginWarning, PolytenError,
                     UnknownBackendError)
from .hookspecs import hookimpl, hookspec
from .optable import OPS, OpDef, op
from .registry import (BackendInfo, backends, get, plugin_errors, register_plugin,
                       unregister_plugin)

get_backend_object = get

__all__ = ["Backend", "BackendSpec", "BackendInfo", "Device", "device", "parse_device_string",
           "hookimpl", "hookspec", "OPS", "OpDef", "op", "kernels", "kernel_for",
           "register_default", "backends", "plugin_errors", "register_plugin",
           "unregister_plugin", "get_backend_object", "PolytenError", "BackendError",
           "BackendUnavailableError", "UnknownBackendError", "DeviceMismatchError",
           "KernelNotFoundError", "OutOfMemoryError", "PluginWarning",
           # issue 6: fallback policy, kernel validation, capability manifest
           "set_fallback_policy", "fallback_policy", "fallback_counts", "reset_fallback_counts",
           "FallbackWarning", "set_validation", "validation", "KernelContractError",
           "DtypeNotStoredError",
           "manifest", "Capability"]
