"""Shared fixtures: in-process backends for tests that need more than the installed ones, and
the session's one run of the conformance suite on the CuPy stand-in."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

import polyten
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, unregister_plugin

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


class _Background:
    """A subprocess started now and waited for by whichever test needs its result first; its
    output goes to a file (a pipe nobody reads would block it)."""

    def __init__(self, args, env, out_path, timeout):
        self.out_path, self.timeout, self._result = out_path, timeout, None
        self._out = open(out_path, "w")
        self._proc = subprocess.Popen(args, env=env, cwd=_ROOT, stdout=self._out,
                                      stderr=subprocess.STDOUT, text=True)

    def wait(self) -> subprocess.CompletedProcess:
        if self._result is None:
            try:
                rc = self._proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                rc = self._proc.wait()
            self._out.close()
            with open(self.out_path) as f:
                self._result = subprocess.CompletedProcess(self._proc.args, rc, f.read(), "")
        return self._result


@pytest.fixture(scope="session")
def cuda_standin_conformance(tmp_path_factory):
    """The conformance suite on ``cuda`` with the CuPy stand-in (two GPUs), run once per
    session in a background process: ``tests/nvrtc_workload.py --parts conformance``, logging
    every kernel it makes CuPy build to the file named by the returned object's ``log``
    (``wait()`` gives the process's result).  ``tests/test_cuda_standin.py`` asserts
    that it passes; ``tests/test_cuda_nvrtc.py`` compiles its kernels with NVRTC and runs its
    other workload parts meanwhile (one run of the suite, on both cores, instead of two)."""
    pytest.importorskip("polyten_conformance")
    d = tmp_path_factory.mktemp("standin_conformance")
    log = d / "kernels.jsonl"
    env = dict(os.environ, POLYTEN_STANDIN_KERNEL_LOG=str(log))
    env.pop("POLYTEN_SYNC_CHECKS", None)
    run = _Background([sys.executable, os.path.join(_ROOT, "tests", "nvrtc_workload.py"),
                       "--parts", "conformance"], env, d / "output.txt", timeout=900)
    run.log = log
    yield run
    run.wait()
