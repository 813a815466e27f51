"""The session's long subprocess work, run in a background thread while the other tests run.

Two pieces of the suite are minutes of work in subprocesses whose results only a few tests
read: the conformance suite on the CuPy stand-in (``tests/test_cuda_standin.py``) and the
NVRTC compile of every kernel the cuda backend makes CuPy build (``tests/test_cuda_nvrtc.py``,
whose workload includes that same conformance run).  The tests themselves run one at a time
in the pytest process, on one core; this work goes on the other.  ``tests/conftest.py`` starts
a :class:`Pipeline` at the end of collection with the steps the selected tests need and moves
those tests to the end of the run, so that nobody waits for it while it is still going.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Callable, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests")
WORKLOAD = os.path.join(HERE, "nvrtc_workload.py")

# the steps a fixture's result comes from (conftest moves the tests that use them last)
FIXTURE_STEPS = {
    "cuda_standin_conformance": ("conformance",),
    "nvrtc_kernel_log": ("conformance", "nvrtc_workload"),
    "nvrtc_compiled": ("conformance", "nvrtc_workload", "nvrtc_compile"),
}
ORDER = ("conformance", "nvrtc_workload", "nvrtc_compile")


def nvrtc_python() -> str:
    """The Python with the real CuPy and NVRTC (``scripts/test.sh`` sets it), or ''."""
    py = os.environ.get("POLYTEN_NVRTC_PYTHON", "")
    return py if py and os.access(py, os.X_OK) else ""


class StepFailed(RuntimeError):
    pass


class Pipeline:
    """Named steps run one after another in a daemon thread, each a function of the
    pipeline that runs subprocesses through :meth:`call`; :meth:`result` waits for one."""

    def __init__(self, steps: List[Tuple[str, Callable[["Pipeline"], object]]]):
        self.dir = tempfile.mkdtemp(prefix="polyten_background_")
        self._functions = steps
        self.steps = [name for name, _ in steps]
        self._done = {s: threading.Event() for s in self.steps}
        self._results: Dict[str, object] = {}
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="polyten-background",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for name, fn in self._functions:
            try:
                self._results[name] = fn(self)
            except BaseException as e:  # handed to the test that waits for it
                self._results[name] = e
            finally:
                self._done[name].set()

    def call(self, args, *, env=None, timeout: float) -> subprocess.CompletedProcess:
        """``subprocess.run(args, capture_output=True, text=True)`` that :meth:`stop` kills."""
        with self._lock:
            if self._stopped:
                raise StepFailed("the test session ended before this step ran")
            self._proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
            out += f"\n[killed after {timeout} s]"
        return subprocess.CompletedProcess(args, self._proc.returncode, out, "")

    def result(self, name: str):
        """The step's result once it is done (its exception re-raised)."""
        if name not in self._done:
            raise StepFailed(f"step {name!r} was not planned for this session "
                             f"(planned: {self.steps})")
        self._done[name].wait()
        r = self._results[name]
        if isinstance(r, BaseException):
            raise r
        return r

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
        self._thread.join(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def _standin_env(log: str) -> dict:
    env = dict(os.environ, POLYTEN_STANDIN_KERNEL_LOG=log)
    env.pop("POLYTEN_SYNC_CHECKS", None)
    return env


def _conformance(p: Pipeline) -> subprocess.CompletedProcess:
    """The conformance suite on ``cuda`` with the CuPy stand-in (two GPUs), logging every
    kernel it makes CuPy build to ``.log``."""
    log = os.path.join(p.dir, "conformance_kernels.jsonl")
    r = p.call([sys.executable, WORKLOAD, "--parts", "conformance"], env=_standin_env(log),
               timeout=1200)
    r.log = log
    return r


def _nvrtc_workload(p: Pipeline) -> str:
    """The kernel log of the whole NVRTC workload: its other parts, then the conformance
    run's kernels, then ``unreached`` over both (it logs what neither launched)."""
    log = os.path.join(p.dir, "kernels.jsonl")
    env = _standin_env(log)

    def workload(*args):
        r = p.call([sys.executable, WORKLOAD, *args], env=env, timeout=1200)
        if r.returncode:
            raise StepFailed(f"nvrtc_workload.py {' '.join(args)} failed:\n"
                             + r.stdout[-5000:])

    workload("--skip", "conformance,unreached")
    conf = p.result("conformance")
    if conf.returncode:
        raise StepFailed("the conformance suite on the stand-in failed:\n" + conf.stdout[-5000:])
    with open(conf.log) as src, open(log, "a") as dst:
        dst.write(src.read())
    workload("--parts", "unreached")
    return log


def nvrtc_cache() -> str:
    """The folder of NVRTC compilations already done (``nvrtc_compile.py --cache``):
    ``POLYTEN_NVRTC_CACHE``, or ``polyten/nvrtc`` in the user's cache folder; '' (the
    variable set empty) compiles everything."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME")
                           or os.path.join(os.path.expanduser("~"), ".cache"), "polyten", "nvrtc")
    return os.environ.get("POLYTEN_NVRTC_CACHE", default)


def compile_logs(*logs, extra: Tuple[str, ...] = (), call: Optional[Callable] = None,
                 cache: Optional[str] = None) -> subprocess.CompletedProcess:
    """``tests/nvrtc_compile.py`` over kernel logs, under the NVRTC Python, with the cache
    folder ``cache`` (default :func:`nvrtc_cache`; '' for none)."""
    cache = nvrtc_cache() if cache is None else cache
    args = [nvrtc_python(), os.path.join(HERE, "nvrtc_compile.py"), *map(str, logs),
            "--jobs", str(os.cpu_count() or 1), *(("--cache", cache) if cache else ()), *extra]
    if call is not None:
        return call(args, timeout=1200)
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT)


def _nvrtc_compile(p: Pipeline) -> subprocess.CompletedProcess:
    return compile_logs(p.result("nvrtc_workload"), call=p.call)


_STEPS = {"conformance": _conformance, "nvrtc_workload": _nvrtc_workload,
          "nvrtc_compile": _nvrtc_compile}


def start(steps) -> Pipeline:
    """The session's pipeline: the named steps (of :data:`ORDER`), in that order."""
    return Pipeline([(name, _STEPS[name]) for name in ORDER if name in steps])
