"""polyten-conformance: does a backend do what polyten's op table says?

Run it with ``polyten conformance NAME`` (the CLI calls :func:`run`), from Python with
``polyten_conformance.run("cpu")``, or with pytest directly::

    pytest --pyargs polyten_conformance.tests --polyten-backend cpu

Every public op is described once in :mod:`polyten_conformance.opdb` (name, callable, op-table
kernel, NumPy reference, dtypes, samples, error inputs); the generic tests in
``polyten_conformance/tests`` run them all against the chosen backend, and the pytest plugin
(:mod:`polyten_conformance.plugin`) prints a per-tier / per-area summary: passed, failed,
missing (a function or kernel that is not there), expected failures (``xfails/all.txt`` for
polyten's own, ``xfails/<backend>.txt``).  The "gradients" area (:mod:`.gradients`) checks
first and second derivatives of every differentiable op through the backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

__version__ = "0.1.0"
__all__ = ["run", "merge_reports", "TESTS_DIR", "__version__"]

PACKAGE_DIR = Path(__file__).resolve().parent
TESTS_DIR = PACKAGE_DIR / "tests"


def _plugin_autoloaded() -> bool:
    """Whether pytest will load our plugin by itself (entry point installed, autoload on)."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    try:
        from importlib.metadata import entry_points
        eps = entry_points(group="pytest11")
    except Exception:
        return False
    return any(ep.value.startswith("polyten_conformance.plugin") for ep in eps)


def pytest_args(backend: str, ops: Optional[str] = None, tier: Optional[str] = None,
                report: Optional[str] = None, extra_args: Sequence[str] = (),
                area: Optional[str] = None) -> list:
    """The pytest command line :func:`run` uses (handy to run the suite in a subprocess)."""
    args = [str(TESTS_DIR), "-c", str(PACKAGE_DIR / "pytest.ini"),
            "--rootdir", str(PACKAGE_DIR), f"--polyten-backend={backend}", "-q"]
    if not _plugin_autoloaded():
        args += ["-p", "polyten_conformance.plugin"]
    if ops:
        args.append(f"--polyten-ops={ops}")
    if tier:
        args.append(f"--polyten-tier={tier}")
    if area:
        args.append(f"--polyten-area={area}")
    if report:
        args.append(f"--polyten-report={os.path.abspath(report)}")
    args += [str(a) for a in extra_args]
    return args


def run(backend: str, ops: Optional[str] = None, tier: Optional[str] = None,
        report: Optional[str] = None, extra_args: Sequence[str] = (), *,
        area: Optional[str] = None) -> int:
    """Run the conformance suite against ``backend`` and return pytest's exit status.

    Parameters
    ----------
    backend : str
        The backend (device type) to test, e.g. ``"cpu"``, ``"cuda"`` or a third-party name.
        Backends registered in-process with ``polyten.dispatch.register_plugin`` work too:
        the suite runs in this process.
    ops : str, optional
        Only ops matching this pattern: comma- or ``|``-separated globs matched against the
        public op name and its op-table kernel (``"add,mul"``, ``"linalg.*"``, ``"*sum*"``).
    tier : str, optional
        Only ops of this op-table tier: ``core``, ``linalg``, ``random``, ``transfer``,
        ``complex``, ``bitwise``.
    report : str, optional
        Write a JSON report (totals, per tier/area, per op, every failure with its reproducer,
        every missing op with the reason) to this file.
    extra_args : sequence of str
        More pytest arguments, e.g. ``["-x", "-k", "float32"]``.
    area : str, optional
        Only one area (elementwise, reduction, linalg, shape, indexing, creation, random,
        transfer, promotion, views, kernels, gradients, nn, models).

    Returns
    -------
    int
        0 when every selected test passed (missing ops and known failures don't fail a run
        unless ``--polyten-strict`` is among ``extra_args``), 1 when some failed, >1 for usage
        or internal errors (as pytest).
    """
    import pytest
    # Hypothesis keeps a cache under ./.hypothesis; don't litter the user's directory with it
    key = "HYPOTHESIS_STORAGE_DIRECTORY"
    had = key in os.environ
    if not had:
        import tempfile
        os.environ[key] = os.path.join(tempfile.gettempdir(), "polyten-conformance-hypothesis")
    try:
        with _terminate_as_interrupt():
            return int(pytest.main(pytest_args(backend, ops, tier, report, extra_args, area)))
    finally:
        if not had:
            os.environ.pop(key, None)


class _terminate_as_interrupt:
    """While running, SIGTERM (``timeout``, a job scheduler's time limit) stops the suite as
    Ctrl-C does: pytest then still prints the summary and the plugin writes the report of
    the tests run so far (``"interrupted": true``) instead of the process dying with nothing
    written -- on a borrowed GPU with minutes to spare, that partial report is the result."""

    def __enter__(self):
        import signal
        import threading
        self._old = None
        if threading.current_thread() is threading.main_thread():
            def stop(signum, frame):
                raise KeyboardInterrupt(f"stopped by signal {signum} (SIGTERM)")
            self._old = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            import signal
            signal.signal(signal.SIGTERM, self._old)
        return False


def merge_reports(paths: Sequence[str], out: Optional[str] = None) -> dict:
    """Combine the JSON reports of a run split into shards (``--polyten-shard I/N`` in N
    processes, e.g. to use every core while a GPU compiles kernels) into one report of the
    same layout, written to ``out`` when given.

    Counts are summed per tier / area and per op, failures and missing ops concatenated;
    ``exit_status`` is the worst shard's and ``interrupted`` is true when any shard was
    stopped early.  A shard whose report is missing (killed before writing it) is listed in
    ``"missing_shards"`` and makes the merged run interrupted.
    """
    import json
    from collections import Counter
    reports, absent = [], []
    for p in paths:
        try:
            with open(p) as f:
                reports.append(json.load(f))
        except FileNotFoundError:
            absent.append(str(p))
    if not reports:
        raise ValueError(f"merge_reports: none of the {len(absent)} reports exists: {absent}")
    groups, ops, tests = {}, {}, {}
    totals = Counter()
    for r in reports:
        totals.update(r["totals"])
        for g in r["groups"]:
            key = (g["tier"], g["area"])
            acc = groups.setdefault(key, Counter())
            acc.update({k: v for k, v in g.items() if k not in ("tier", "area")})
        for name, rec in r["ops"].items():
            acc = ops.setdefault(name, {k: ([] if isinstance(v, list) else
                                            0 if isinstance(v, int) else v)
                                        for k, v in rec.items()})
            for k, v in rec.items():
                if isinstance(v, list):
                    acc[k] += [x for x in v if x not in acc[k]]
                elif isinstance(v, int) and not isinstance(v, bool):
                    acc[k] += v
        tests.update(r["tests"])
    first = reports[0]
    merged = {
        "backend": first["backend"], "backend_info": first["backend_info"],
        "exit_status": max(r["exit_status"] for r in reports) if not absent else 2,
        "interrupted": bool(absent) or any(r.get("interrupted") for r in reports),
        "duration_s": max(r["duration_s"] for r in reports),
        "selection": {**first["selection"], "shard": None,
                      "shards": [r["selection"].get("shard") for r in reports]},
        "totals": dict(totals),
        "groups": [{"tier": t, "area": a, **dict(c)} for (t, a), c in sorted(groups.items())],
        "ops": ops,
        "failures": [f for r in reports for f in r["failures"]],
        "missing": [m for r in reports for m in r["missing"]],
        "tests": tests,
        "missing_shards": absent,
    }
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(merged, indent=1))
    return merged
