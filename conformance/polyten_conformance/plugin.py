"""The pytest plugin of the conformance suite (entry point ``pytest11: polyten_conformance``).

It adds the ``--polyten-*`` options, runs each conformance test with the backend under test as
polyten's default (``with polyten.backend(NAME)``), applies the known failures of polyten itself
(``xfails/all.txt``) and of the backend (``xfails/<backend>.txt``, ``--polyten-xfails FILE``),
and at the end prints a summary per op-table tier and area -- passed, failed, missing, expected
failures -- and writes a JSON report when asked.  Tests of other projects are left alone: the
plugin only acts on items that carry the ``polyten_conformance`` marker.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import pytest

MARKER = "polyten_conformance"
MISSING_TAG = "[missing] "
NA_TAG = "[n/a] "
COLUMNS = ("passed", "failed", "missing", "xfailed", "xpassed", "skipped")
_STATE = pytest.StashKey()


def pytest_addoption(parser):
    g = parser.getgroup("polyten", "polyten conformance suite")
    g.addoption("--polyten-backend", default=None, metavar="NAME",
                help="backend to test (default: $POLYTEN_BACKEND or cpu)")
    g.addoption("--polyten-ops", default=None, metavar="PATTERN",
                help="only ops matching PATTERN: comma- or |-separated globs matched against "
                     "the public op name and its op-table kernel, e.g. 'add,mul' or 'linalg.*'")
    g.addoption("--polyten-tier", default=None, metavar="TIER",
                help="only ops of this op-table tier (core, linalg, random, transfer)")
    g.addoption("--polyten-area", default=None, metavar="AREA",
                help="only ops of this area (elementwise, reduction, linalg, shape, indexing, "
                     "creation, random, transfer, nn, fft, promotion, kernels, views, "
                     "models, optim, gradients)")
    g.addoption("--polyten-report", default=None, metavar="FILE",
                help="write a JSON report of the conformance run to FILE")
    g.addoption("--polyten-xfails", action="append", default=[], metavar="FILE",
                help="extra known-failure file (test-id patterns, one per line)")
    g.addoption("--polyten-strict", action="store_true", default=False,
                help="count missing ops and kernels as failures (exit status 1)")
    g.addoption("--polyten-shard", default=None, metavar="I/N",
                help="run only every N-th selected test, starting at the I-th (0 <= I < N): "
                     "N processes with shards 0/N .. N-1/N run the whole selection in "
                     "parallel; polyten_conformance.merge_reports combines their reports")


class _State:
    def __init__(self, config):
        self.config = config
        self.backend: Optional[str] = None
        self.meta: Dict[str, dict] = {}
        self.outcomes: Dict[str, str] = {}
        self.details: Dict[str, str] = {}
        self.xfail_patterns: List[tuple] = []
        self.xfail_used: set = set()
        self.started = time.time()
        self.deselected = 0
        self.validation_was: Optional[bool] = None


def _state(config) -> _State:
    st = config.stash.get(_STATE, None)
    if st is None:
        st = _State(config)
        config.stash[_STATE] = st
    return st


def backend_name(config) -> str:
    """The backend under test (resolved once)."""
    st = _state(config)
    if st.backend is None:
        name = config.getoption("--polyten-backend", default=None)
        if not name:
            name = os.environ.get("POLYTEN_BACKEND", "cpu") or "cpu"
        st.backend = name
    return st.backend


def load_backend(config):
    """The loaded backend object; a usage error with polyten's own message if it can't load."""
    from polyten.dispatch import get
    name = backend_name(config)
    try:
        return get(name.split(":")[0])
    except Exception as exc:
        raise pytest.UsageError(f"polyten conformance: cannot use backend {name!r}: "
                                f"{type(exc).__name__}: {exc}") from None


def pytest_sessionstart(session):
    # an explicit --polyten-backend that cannot load is a usage error, reported up front
    if session.config.getoption("--polyten-backend", default=None):
        load_backend(session.config)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{MARKER}(op, area, tier, kernel): a polyten conformance test "
                   f"(used for selection, xfails and the summary)")
    _state(config)
    config.pluginmanager.register(_Recorder(config), "polyten_conformance_recorder")


# ------------------------------------------------------------------------------ selection ---
def _op_matches(pattern: str, meta: dict) -> bool:
    names = {meta.get("op") or "", meta.get("kernel") or ""}
    for pat in pattern.replace("|", ",").split(","):
        pat = pat.strip()
        if pat and any(fnmatch.fnmatchcase(n, pat) for n in names if n):
            return True
    return False


def _literal_brackets(pattern: str) -> str:
    """xfail patterns use ``*`` and ``?`` only: brackets are the test id's own."""
    return "".join("[[]" if c == "[" else "[]]" if c == "]" else c for c in pattern)


def wanted(config, meta: dict) -> bool:
    """Whether a test with this marker metadata is selected by --polyten-ops/-tier/-area."""
    ops = config.getoption("--polyten-ops", default=None)
    tier = config.getoption("--polyten-tier", default=None)
    area = config.getoption("--polyten-area", default=None)
    return (not ops or _op_matches(ops, meta)) and (not tier or meta.get("tier") == tier) \
        and (not area or meta.get("area") == area)


def _read_xfails(path: Path) -> List[tuple]:
    out = []
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        body, _, reason = line.partition("#")
        body = body.strip()
        if body:
            out.append((_literal_brackets(body), reason.strip() or "known failure",
                        f"{path.name}:{n}"))
    return out


def _shard(config):
    """``(i, n)`` of ``--polyten-shard I/N``, or None."""
    spec = config.getoption("--polyten-shard", default=None)
    if not spec:
        return None
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        i = n = -1
    if not 0 <= i < n:
        raise pytest.UsageError(f"polyten conformance: --polyten-shard {spec!r}: expected I/N "
                                f"with 0 <= I < N, e.g. 0/4")
    return i, n


def pytest_collection_modifyitems(session, config, items):
    st = _state(config)
    conf_items = [it for it in items if it.get_closest_marker(MARKER)]
    if not conf_items:
        return
    backend = backend_name(config)
    keep, drop = [], []
    tests_dir = Path(__file__).resolve().parent / "tests"
    for it in items:
        m = it.get_closest_marker(MARKER)
        if m is None:
            # our own tests all carry the marker, except pytest's placeholder for a
            # parametrisation that the selection left empty
            (drop if tests_dir in Path(str(it.path)).resolve().parents else keep).append(it)
            continue
        meta = dict(m.kwargs)
        if wanted(config, meta):
            st.meta[it.nodeid] = meta
            keep.append(it)
        else:
            drop.append(it)
    shard = _shard(config)
    if shard is not None:  # the collection order is the same in every process
        i, n = shard
        mine = [it for it in keep if it.nodeid in st.meta]
        others = {id(it) for k, it in enumerate(mine) if k % n != i}
        drop += [it for it in keep if id(it) in others]
        keep = [it for it in keep if id(it) not in others]
        for it in drop:
            st.meta.pop(it.nodeid, None)
    if drop:
        st.deselected += len(drop)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    # every kernel's result is checked against the op table during the run, so a kernel that
    # returns the wrong dtype or shape fails with a message naming it (restored at the end)
    from polyten.dispatch import dispatcher
    st.validation_was = dispatcher.validation()
    dispatcher.set_validation(True)
    # known failures, as data: polyten's own (all.txt: e.g. a derivative rule not written
    # yet, the same on every backend), the backend's, and the user's
    here = Path(__file__).parent / "xfails"
    files = [here / "all.txt", here / f"{backend.split(':')[0]}.txt"] + [
        Path(p) for p in config.getoption("--polyten-xfails")]
    for f in files:
        if str(f) not in ("",) and not f.is_file() and f.parent != here:
            raise pytest.UsageError(f"polyten conformance: xfails file {f} does not exist")
        st.xfail_patterns += _read_xfails(f)
    if st.xfail_patterns:
        for it in items:
            if it.nodeid not in st.meta:
                continue
            short = it.nodeid.split("::", 1)[-1]
            for pat, reason, where in st.xfail_patterns:
                if fnmatch.fnmatchcase(short, pat) or fnmatch.fnmatchcase(it.nodeid, pat):
                    st.xfail_used.add(where)
                    it.add_marker(pytest.mark.xfail(reason=f"{reason} ({where})", strict=False))
                    break


# ------------------------------------------------------------------------------- running ---
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if item.get_closest_marker(MARKER) is None:
        yield
        return
    import polyten
    with polyten.backend(backend_name(item.config)):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if item.get_closest_marker(MARKER) is None:
        return
    rep = outcome.get_result()
    exc = call.excinfo.value if call.excinfo is not None else None
    from .harness import ConformanceFailure
    from polyten.dispatch import KernelNotFoundError
    if isinstance(exc, KernelNotFoundError) and rep.failed:
        # a kernel the backend lacks (an optional tier, or a missing core primitive that the
        # kernels area reports as a failure): missing capability, not a wrong result
        path, line, _ = item.location
        rep.outcome = "skipped"
        rep.longrepr = (str(path), (line or 0) + 1, f"Skipped: {MISSING_TAG}kernel: {exc}")
        return
    if isinstance(exc, ConformanceFailure) and rep.failed:
        # the message is the whole story (reproducer included); the suite's own frames are noise
        rep.longrepr = str(exc)


def _skip_reason(rep) -> str:
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        msg = lr[2]
        return msg[len("Skipped: "):] if msg.startswith("Skipped: ") else msg
    return str(lr or "")


class _Recorder:
    """Records each conformance test's outcome (registered per config in pytest_configure)."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        st = _state(self.config)
        if report.nodeid not in st.meta:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                kind = "xfailed" if report.skipped else "xpassed"
                st.details[report.nodeid] = report.wasxfail
            elif report.passed:
                kind = "passed"
            elif report.failed:
                kind = "failed"
                st.details[report.nodeid] = report.longreprtext
            else:
                reason = _skip_reason(report)
                kind = "missing" if reason.startswith(MISSING_TAG) else "skipped"
                st.details[report.nodeid] = reason
            st.outcomes[report.nodeid] = kind
        elif report.when == "teardown" and report.failed:
            st.outcomes[report.nodeid] = "failed"
            st.details[report.nodeid] = report.longreprtext


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    """Missing ops show as 'M' / MISSING rather than as plain skips."""
    if report.skipped and not hasattr(report, "wasxfail") and \
            _skip_reason(report).startswith(MISSING_TAG) and \
            report.nodeid in _state(config).meta:
        return "missing", "M", ("MISSING", {"yellow": True})
    return None


# ------------------------------------------------------------------------------- summary ---
def _tally(st: _State):
    groups: Dict[tuple, Counter] = defaultdict(Counter)
    ops: Dict[str, dict] = {}
    for nodeid, kind in st.outcomes.items():
        meta = st.meta.get(nodeid, {})
        key = (meta.get("tier", "?"), meta.get("area", "?"))
        groups[key][kind] += 1
        op = meta.get("op") or "?"
        rec = ops.setdefault(op, {"area": meta.get("area"), "tier": meta.get("tier"),
                                  "kernel": meta.get("kernel"), **{c: 0 for c in COLUMNS},
                                  "failed_tests": [], "missing_reasons": []})
        if rec["area"] == "gradients" and meta.get("area") not in (None, "gradients"):
            rec["area"] = meta["area"]  # an op's own area, not the cross-cutting one
        rec[kind] += 1
        if kind == "failed":
            rec["failed_tests"].append(nodeid.split("::", 1)[-1])
        elif kind == "missing":
            why = st.details.get(nodeid, "")[len(MISSING_TAG):]
            if why not in rec["missing_reasons"]:
                rec["missing_reasons"].append(why)
    return groups, ops


def _backend_line(name: str) -> str:
    try:
        from polyten.dispatch import backends, get
        info = {b.name: b for b in backends()}.get(name.split(":")[0])
        be = get(name.split(":")[0])
        dist = f"{info.distribution} {info.version}".strip() if info else ""
        extra = ", ".join(x for x in (dist or "in-process", be.version) if x)
        return f"backend {name!r} ({extra})"
    except Exception:
        return f"backend {name!r}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = _state(config)
    if not st.outcomes:
        return
    groups, ops = _tally(st)
    tr = terminalreporter
    tr.section(f"polyten conformance: {_backend_line(st.backend or backend_name(config))}")
    head = f"{'tier':<10}{'area':<13}" + "".join(f"{c:>9}" for c in COLUMNS)
    tr.write_line(head)
    total = Counter()
    for (tier, area) in sorted(groups, key=lambda k: (_TIER_ORDER.get(k[0], 9), k[1])):
        c = groups[(tier, area)]
        total.update(c)
        tr.write_line(f"{tier:<10}{area:<13}" + "".join(f"{c[k]:>9}" for k in COLUMNS))
    tr.write_line(f"{'TOTAL':<23}" + "".join(f"{total[k]:>9}" for k in COLUMNS))
    try:
        from .promotion import DTYPE_NAMES
        stored = load_backend(config).dtypes
        absent = [d for d in DTYPE_NAMES if d not in stored]
        if absent:
            tr.write_line(f"dtypes the backend does not store (not tested): {', '.join(absent)}")
    except Exception:
        pass
    failed = sorted((op, r) for op, r in ops.items() if r["failed"])
    if failed:
        tr.write_line("")
        tr.write_line("failed ops: " + ", ".join(
            f"{op} ({r['failed']})" for op, r in failed))
    miss = sorted((op, r) for op, r in ops.items() if r["missing"])
    if miss:
        tr.write_line("")
        tr.write_line(f"missing ops ({len(miss)}; tests reported missing): " + ", ".join(
            f"{op} ({r['missing']})" for op, r in miss))
        for op, r in miss[:40] if config.getoption("verbose") > 0 else miss[:8]:
            tr.write_line(f"  {op}: {r['missing_reasons'][0][:160]}")
        if len(miss) > 8 and config.getoption("verbose") <= 0:
            tr.write_line("  ... (-v lists every reason; --polyten-report writes them all)")
    if total["xpassed"]:
        xp = [n.split("::", 1)[-1] for n, k in st.outcomes.items() if k == "xpassed"]
        tr.write_line("")
        tr.write_line("now passing, remove from the xfails file: " + ", ".join(xp[:20]))
    stale = [w for _, _, w in st.xfail_patterns if w not in st.xfail_used]
    if stale and not (config.getoption("--polyten-ops") or config.getoption("--polyten-tier")
                      or config.getoption("--polyten-area")):
        tr.write_line(f"xfail patterns that matched no test: {', '.join(stale)}")
    if config.getoption("--polyten-strict") and total["missing"]:
        tr.write_line(f"--polyten-strict: {total['missing']} missing count as failures")


_TIER_ORDER = {"core": 0, "linalg": 1, "random": 2, "transfer": 3, "complex": 4, "bitwise": 5,
               "fft": 6}


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    st = _state(config)
    if getattr(st, "validation_was", None) is not None:
        from polyten.dispatch import dispatcher
        dispatcher.set_validation(st.validation_was)
        st.validation_was = None
    # a run stopped before its first test still writes its (empty, interrupted) report
    interrupted = int(session.exitstatus) == int(pytest.ExitCode.INTERRUPTED)
    if not st.outcomes and not (interrupted and config.getoption("--polyten-report")):
        return
    groups, ops = _tally(st)
    total = Counter()
    for c in groups.values():
        total.update(c)
    if config.getoption("--polyten-strict") and total["missing"] and session.exitstatus == 0:
        session.exitstatus = 1
    path = config.getoption("--polyten-report")
    if not path:
        return
    failures = [{"test": n.split("::", 1)[-1], "op": st.meta.get(n, {}).get("op"),
                 "message": st.details.get(n, "")}
                for n, k in st.outcomes.items() if k == "failed"]
    missing = [{"test": n.split("::", 1)[-1], "op": st.meta.get(n, {}).get("op"),
                "reason": st.details.get(n, "")[len(MISSING_TAG):]}
               for n, k in st.outcomes.items() if k == "missing"]
    report = {
        "backend": st.backend or backend_name(config),
        "backend_info": _backend_line(st.backend or ""),
        "exit_status": int(session.exitstatus),
        # stopped early (Ctrl-C, or SIGTERM under polyten_conformance.run): partial results
        "interrupted": interrupted,
        "duration_s": round(time.time() - st.started, 3),
        "selection": {"ops": config.getoption("--polyten-ops"),
                      "tier": config.getoption("--polyten-tier"),
                      "area": config.getoption("--polyten-area"),
                      "shard": config.getoption("--polyten-shard"),
                      "deselected": st.deselected},
        "totals": {c: total[c] for c in COLUMNS},
        "groups": [{"tier": t, "area": a, **{c: groups[(t, a)][c] for c in COLUMNS}}
                   for (t, a) in sorted(groups)],
        "ops": ops,
        "failures": failures,
        "missing": missing,
        "tests": {n.split("::", 1)[-1]: k for n, k in st.outcomes.items()},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=False))
    os.replace(tmp, p)  # never leave a half-written report behind
