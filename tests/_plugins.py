"""A plugin whose backend is the cpu backend's kernels plus the ``Backend`` hooks a test
passes: how the settings tests (precision, determinism) see what reaches a backend."""

from __future__ import annotations

from polyten.dispatch import Backend, BackendSpec, hookimpl


def recording_plugin(name: str, **hooks):
    """A plugin registering backend ``name`` (the cpu kernels) with ``hooks`` as extra
    ``Backend`` arguments (e.g. ``float32_matmul_precision=seen.append``)."""
    from polyten_cpu.backend import make_backend
    base = make_backend()

    class Plugin:
        @hookimpl
        def polyten_register_backends(self, register):
            register(BackendSpec(name, load=lambda: Backend(
                name, base.kernels, dtypes=base.dtypes, native_dtype=base.native_dtype,
                dtype_name=base.dtype_name, is_native=base.is_native, seed=base.seed,
                **hooks)))
    return Plugin()
