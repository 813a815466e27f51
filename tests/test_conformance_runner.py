"""The conformance suite (conformance/, distribution polyten-conformance) as a tool.

Runs it through ``polyten_conformance.run`` in subprocesses: on ``cpu`` for a few ops (summary
and JSON report), and on a deliberately broken in-process backend (a copy of the cpu kernels
where ``add`` returns the wrong dtype, ``mul`` the wrong shape and ``exp`` is missing) to check
that the suite catches each fault, names the op and kernel, prints a runnable reproducer, and
reports a missing kernel as "missing" rather than as a crash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("polyten_conformance")

from polyten_conformance import opdb  # noqa: E402
from polyten_conformance import promotion as P  # noqa: E402

BROKEN_PLUGIN = '''
import numpy as np
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin


def make_broken():
    from polyten_cpu.backend import make_backend
    base = make_backend()
    kernels = dict(base.kernels)
    good_add, good_mul = kernels["add"], kernels["mul"]
    kernels["add"] = lambda x, y: np.asarray(good_add(x, y)).astype(np.float64)  # wrong dtype
    kernels["mul"] = lambda x, y: np.asarray(good_mul(x, y)).reshape(-1)          # wrong shape
    del kernels["exp"]                                                           # missing
    return Backend("broken", kernels, dtypes=base.dtypes, native_dtype=base.native_dtype,
                   dtype_name=base.dtype_name, is_native=base.is_native, seed=base.seed)


class BrokenPlugin:
    @hookimpl
    def polyten_register_backends(self, register):
        register(BackendSpec("broken", load=make_broken, description="deliberately wrong"))


register_plugin(BrokenPlugin(), name="broken-test-plugin")
'''


def run_script(code: str, cwd, timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("POLYTEN_BACKEND", None)
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(cwd / ".hypothesis")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


XFAILS = """# known failures of the broken backend
test_values[add-*]   # add returns float64 (deliberate)
test_method[add-*]   # same
test_values[nosuchop-*]  # a stale entry
"""


@pytest.fixture(scope="module")
def broken_runs(tmp_path_factory):
    """The suite on the broken backend for add, mul and exp: once plain, once with a known
    failures file (two runs in one process: ``run`` can be called again)."""
    d = tmp_path_factory.mktemp("broken")
    report, report_x, xf = d / "report.json", d / "report-xfails.json", d / "broken.txt"
    xf.write_text(XFAILS)
    r = run_script(BROKEN_PLUGIN + f"""
import polyten_conformance
rc = polyten_conformance.run("broken", ops="add,mul,exp", report={str(report)!r})
print("RC", rc)
rc = polyten_conformance.run("broken", ops="add", report={str(report_x)!r},
                             extra_args=["--polyten-xfails", {str(xf)!r}])
print("RC-XFAILS", rc)
""", d)
    assert report.exists() and report_x.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    return r, json.loads(report.read_text()), json.loads(report_x.read_text())


def test_sigterm_stops_the_suite_with_a_partial_report(tmp_path):
    """SIGTERM (``timeout``, a scheduler's limit) during ``run`` ends the suite as Ctrl-C
    does: the summary is printed and the report holds the tests run so far, marked
    interrupted.  Here a plugin sends the signal once three tests are done."""
    report = tmp_path / "partial.json"
    (tmp_path / "killer.py").write_text(textwrap.dedent("""
        import os, signal
        done = []
        def pytest_runtest_logreport(report):
            if report.when == "call":
                done.append(report.nodeid)
                if len(done) == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
    """))
    code = ("import sys, polyten_conformance as c\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            f"raise SystemExit(c.run('cpu', ops='add', report={str(report)!r}, "
            "extra_args=('-p', 'killer', '-p', 'no:cacheprovider')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=240,
                       env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path)})
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]  # pytest's "interrupted"
    assert "KeyboardInterrupt" in r.stdout and "stopped by signal" in r.stdout
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["exit_status"] == 2
    assert 3 <= sum(data["totals"].values()) < 10, data["totals"]


def test_shards_run_the_whole_selection_and_merge_into_one_report(tmp_path):
    """``--polyten-shard I/N`` in N processes (run side by side to use every core) covers
    the selection exactly once; ``merge_reports`` gives the single run's report back."""
    def run(name, extra):
        code = ("import polyten_conformance as c\n"
                f"raise SystemExit(c.run('cpu', ops='add,sum,matmul', report={name!r}, "
                f"extra_args=('-p', 'no:cacheprovider') + {extra!r}))\n")
        return subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path)})
    procs = [run(f"r{i}.json", ("--polyten-shard", f"{i}/3")) for i in range(3)]
    procs.append(run("full.json", ()))
    procs.append(run("bad.json", ("--polyten-shard", "3/3")))
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs[:4]] == [0, 0, 0, 0], outs[0][-3000:]
    assert procs[4].returncode == 4 and "expected I/N with 0 <= I < N" in outs[4]
    import polyten_conformance
    shards = [str(tmp_path / f"r{i}.json") for i in range(3)]
    parts = [json.loads(open(p).read()) for p in shards]
    assert all(sum(r["totals"].values()) > 10 for r in parts)  # each shard did its share
    assert not set(parts[0]["tests"]) & set(parts[1]["tests"])
    merged = polyten_conformance.merge_reports(shards, tmp_path / "merged.json")
    full = json.loads((tmp_path / "full.json").read_text())
    assert merged["tests"] == full["tests"] and merged["totals"] == full["totals"]
    assert merged["groups"] == full["groups"] and not merged["interrupted"]
    assert {k: v["passed"] for k, v in merged["ops"].items()} == \
        {k: v["passed"] for k, v in full["ops"].items()}
    assert json.loads((tmp_path / "merged.json").read_text())["totals"] == full["totals"]
    # a shard killed before writing its report: the merged run says so
    partial = polyten_conformance.merge_reports(shards[:2] + [str(tmp_path / "gone.json")])
    assert partial["interrupted"] and partial["missing_shards"] == [str(tmp_path / "gone.json")]


@pytest.fixture(scope="module")
def broken_run(broken_runs):
    r, data, _ = broken_runs
    return r, data


def test_cpu_run_of_a_few_ops_passes_and_reports(tmp_path):
    """``polyten conformance cpu --ops ... --report FILE`` (the CLI calls ``run``)."""
    report = tmp_path / "sub" / "cpu.json"
    r = subprocess.run([sys.executable, "-m", "polyten.cli", "conformance", "cpu", "--ops",
                        "add,sum,matmul,linalg.*", "--report", str(report)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=240,
                       env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path)})
    out = r.stdout
    assert r.returncode == 0, out[-4000:] + r.stderr[-2000:]
    assert "polyten conformance: backend 'cpu' (polyten-cpu" in out
    assert re.search(r"core\s+elementwise\s+\d+\s+0\s+0", out), out[-2000:]
    assert re.search(r"linalg\s+linalg\s+\d+\s+0", out), out[-2000:]
    data = json.loads(report.read_text())
    assert data["backend"] == "cpu" and data["exit_status"] == 0 and not data["interrupted"]
    assert data["totals"]["failed"] == 0 and data["totals"]["passed"] > 50
    ops = set(data["ops"])
    assert {"add", "sum", "matmul", "linalg.inv", "linalg.solve", "linalg.det"} <= ops
    # selection: only matching ops (by public name or kernel) ran
    assert all(op in ("add", "sum", "matmul") or op.startswith("linalg") or
               data["ops"][op]["kernel"] in ("add", "sum", "matmul") for op in ops), ops
    assert data["selection"]["ops"] == "add,sum,matmul,linalg.*"
    assert not (tmp_path / ".pytest_cache").exists()


def test_broken_backend_wrong_dtype_is_caught_and_named(broken_run):
    r, data = broken_run
    assert "RC 1" in r.stdout and data["exit_status"] == 1
    fails = {f["test"]: f["message"] for f in data["failures"]}
    msg = fails["test_values[add-float32]"]
    assert "polyten.add -> kernel 'add'" in msg and "backend 'broken'" in msg
    assert "the kernel returned float64 data for a float32 result" in msg
    assert "reproducer:" in msg and "polyten.add(x0, x1)" in msg
    assert data["ops"]["add"]["failed"] > 0


def test_broken_backend_wrong_shape_is_caught_and_named(broken_run):
    r, data = broken_run
    fails = {f["test"]: f["message"] for f in data["failures"]}
    msg = fails["test_values[mul-float32]"]
    assert "kernel 'mul'" in msg and "shape is (6,), expected (2, 3)" in msg
    assert "polyten.mul(x0, x1)" in msg
    assert "FAILED" in r.stdout and "test_values[mul-float32]" in r.stdout


def test_broken_backend_missing_kernel_is_reported_as_missing(broken_run):
    r, data = broken_run
    exp = data["ops"]["exp"]
    # exp is a core primitive: its absence fails the kernels check once (the core tier is the
    # contract); every test that calls it is missing, not failed
    assert exp["failed"] == 1 and exp["missing"] > 0  # (its error-input test still passes)
    assert any("no kernel" in m and "exp" in m for m in exp["missing_reasons"]), exp
    assert data["tests"]["test_kernel_present[exp]"] == "failed"
    assert data["tests"]["test_values[exp-float32]"] == "missing"
    assert "missing ops" in r.stdout and "exp (" in r.stdout
    assert data["totals"]["missing"] > 0
    first_run = r.stdout.split("RC 1")[0]
    assert " error" not in first_run.split("short test summary")[-1]  # missing, not crashed


def test_reproducer_is_runnable(broken_run, tmp_path):
    """The snippet printed for a failure runs as is (here on cpu, where it is correct)."""
    _, data = broken_run
    msg = {f["test"]: f["message"] for f in data["failures"]}["test_values[add-float32]"]
    block = msg.split("reproducer:\n", 1)[1]
    lines = []
    for line in block.split("\n"):
        if not line.startswith("    "):
            break
        lines.append(line[4:])
    code = "\n".join(lines).replace("'broken'", "'cpu'")
    code += "\nassert out.dtype.name == 'float32', out.dtype\nprint('ran', tuple(out.shape))"
    r = run_script(code, tmp_path)
    assert r.returncode == 0, code + "\n" + r.stderr
    assert "ran " in r.stdout


def test_known_failures_file_turns_failures_into_xfails(broken_runs):
    r, _, data = broken_runs
    assert data["totals"]["xfailed"] > 5
    assert data["tests"]["test_values[add-float32]"] == "xfailed"
    assert data["tests"]["test_method[add-Tensor.add]"] == "xfailed"
    # an active selection does not flag the entries it did not reach as stale
    assert "xfail patterns that matched no test" not in r.stdout.split("RC 1")[-1]


def test_missing_public_function_is_missing_and_strict_fails(tmp_path):
    report = tmp_path / "r.json"
    code = f"""
import polyten, polyten_conformance
del polyten.tanh          # as if the function had not been written yet
rc = polyten_conformance.run("cpu", ops="tanh,sinh", report={str(report)!r})
print("RC", rc)
rc2 = polyten_conformance.run("cpu", ops="tanh", extra_args=["--polyten-strict"])
print("STRICT", rc2)
"""
    r = run_script(code, tmp_path)
    assert "RC 0" in r.stdout and "STRICT 1" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["ops"]["tanh"]["missing"] > 0 and data["ops"]["tanh"]["failed"] == 0
    assert any("polyten.tanh is not defined" in m
               for m in data["ops"]["tanh"]["missing_reasons"])
    assert data["ops"]["sinh"]["passed"] > 0


def test_unknown_backend_is_a_usage_error(tmp_path):
    r = run_script("""
import polyten_conformance
raise SystemExit(polyten_conformance.run("nosuchbackend", ops="add"))
""", tmp_path)
    assert r.returncode == 4  # pytest's usage error
    assert "nosuchbackend" in r.stdout + r.stderr


def test_promotion_table_matches_pytorch():
    torch = pytest.importorskip("torch")
    for a in P.DTYPE_NAMES:
        for b in P.DTYPE_NAMES:
            want = str(torch.promote_types(getattr(torch, a), getattr(torch, b)))
            assert P.promote(a, b) == want.replace("torch.", ""), (a, b)
    for a in P.DTYPE_NAMES:
        for s in (True, 3, 2.5, 1j):
            if a == "float16" and isinstance(s, complex):
                continue  # PyTorch gives complex32, which polyten does not have
            got = (torch.ones(2, dtype=getattr(torch, a)) + s).dtype
            assert P.scalar_result(a, s) == str(got).replace("torch.", ""), (a, s)


def test_every_op_of_the_op_table_has_an_opinfo():
    """A new op in the table needs an OpInfo (asarray / is_contiguous: the transfer tests)."""
    assert set(opdb.uncovered_ops()) <= {"asarray", "is_contiguous"}, opdb.uncovered_ops()
