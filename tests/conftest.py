"""Shared fixtures: in-process backends for tests that need more than the installed ones, and
the session's background work (``_background``: the conformance suite on the CuPy stand-in and
the NVRTC compile of the cuda backend's kernels), with the hooks that start it at the end of
collection and run the tests that read it last."""

from __future__ import annotations

import contextlib
import subprocess

import pytest

import polyten
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, unregister_plugin

import _background
from _background import FIXTURE_STEPS, ORDER

_PIPELINES = pytest.StashKey[list]()


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


def _skipped(item) -> bool:
    """Whether a ``skip`` mark, or a ``skipif`` with a plain bool condition, skips the item
    (a string condition is not evaluated here: counted as running)."""
    if item.get_closest_marker("skip"):
        return True
    for m in item.iter_markers("skipif"):
        cond = m.args[0] if m.args else m.kwargs.get("condition")
        if isinstance(cond, bool) and cond:
            return True
    return False


def _background_steps(item) -> set:
    if _skipped(item):
        return set()
    return {s for f in getattr(item, "fixturenames", ()) for s in FIXTURE_STEPS.get(f, ())}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The tests that read the background work's results go last (see ``_background``), in
    the order that work finishes."""
    def done_at(item):  # the index of the last step the item waits for (-1: none)
        return max((ORDER.index(s) for f in getattr(item, "fixturenames", ())
                    for s in FIXTURE_STEPS.get(f, ())), default=-1)

    items.sort(key=done_at)  # stable: the other tests keep their order


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    steps = set().union(*map(_background_steps, session.items)) if session.items else set()
    session.config.stash[_PIPELINES] = [_background.start(steps)] if steps else []


def pytest_sessionfinish(session):
    for p in session.config.stash.get(_PIPELINES, []):
        p.stop()


def _background_result(request, fixture: str):
    steps = FIXTURE_STEPS[fixture]
    pipelines = request.config.stash.setdefault(_PIPELINES, [])
    p = next((p for p in pipelines if steps[-1] in p.steps), None)
    if p is None:  # not planned at collection: its own pipeline, started now
        p = _background.start(steps)
        pipelines.append(p)
    return p.result(steps[-1])


@pytest.fixture(scope="session")
def cuda_standin_conformance(request) -> subprocess.CompletedProcess:
    """The conformance suite on ``cuda`` with the CuPy stand-in (two GPUs), run once per
    session in the background (``tests/nvrtc_workload.py --parts conformance``); ``.log``
    names the file where it logged every kernel it made CuPy build.
    ``tests/test_cuda_standin.py`` asserts that it passes; ``tests/test_cuda_nvrtc.py``
    compiles its kernels with NVRTC."""
    pytest.importorskip("polyten_conformance")
    return _background_result(request, "cuda_standin_conformance")


@pytest.fixture(scope="session")
def nvrtc_kernel_log(request) -> str:
    """The NVRTC workload's kernel log (``tests/nvrtc_workload.py``, every part), made in
    the background."""
    return _background_result(request, "nvrtc_kernel_log")


@pytest.fixture(scope="session")
def nvrtc_compiled(request) -> subprocess.CompletedProcess:
    """``tests/nvrtc_compile.py`` over :func:`nvrtc_kernel_log`, run in the background."""
    return _background_result(request, "nvrtc_compiled")
