"""Shared fixtures: in-process backends for tests that need more than the installed ones."""

from __future__ import annotations

import contextlib

import pytest

import polyten
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, unregister_plugin


def make_cpu_clone(name: str, drop=(), **overrides) -> Backend:
    """A backend named ``name`` with the cpu backend's kernels (minus ``drop``)."""
    from polyten_cpu.backend import make_backend
    base = make_backend()
    kernels = {k: v for k, v in base.kernels.items() if k not in drop}
    kernels.update(overrides)
    return Backend(name, kernels, dtypes=base.dtypes, native_dtype=base.native_dtype,
                   dtype_name=base.dtype_name, is_native=base.is_native, seed=base.seed)


class _ClonePlugin:
    def __init__(self, name, **kw):
        self.name, self.kw = name, kw

    @hookimpl
    def polyten_register_backends(self, register):
        register(BackendSpec(self.name, load=lambda: make_cpu_clone(self.name, **self.kw)))


@contextlib.contextmanager
def cpu_clone(name: str, drop=(), **overrides):
    """Register a cpu clone called ``name`` (minus the kernels in ``drop``) for a block."""
    pname = register_plugin(_ClonePlugin(name, drop=drop, **overrides), name=f"test-{name}")
    try:
        yield polyten.device(name)
    finally:
        unregister_plugin(pname)


@pytest.fixture
def cpu2():
    """A second, independent backend ("cpu2") registered in-process for the test."""
    pname = register_plugin(_ClonePlugin("cpu2"), name="test-cpu2")
    try:
        yield polyten.device("cpu2")
    finally:
        unregister_plugin(pname)
