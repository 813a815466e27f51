"""``scripts/gpu_check.sh`` and ``scripts/dev_install.py``: the set-up of the GPU check, on
the CPU.

Device time is scarce (one short lease, with no registry on the machine), so the parts of the
script that can go wrong without a GPU are checked here: installing into a Python that is
itself a venv (the device machine's python3 is /opt/torch/.venv; a venv made from it would
not see its CuPy), the fallback install with no build backend, stopping early when the cuda
backend is unavailable, and returning few enough files (the device tool brings back 8).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")


def _venv(path, see_this_python: bool):
    """A venv with no packages of its own; with ``see_this_python`` it also sees every site
    directory of the interpreter running the tests (as the device's venv sees its CuPy,
    pytest and numpy)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    py = os.path.join(path, "bin", "python")
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if see_this_python:
        dirs = [p for p in sys.path if os.path.isdir(p) and
                os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
        with open(os.path.join(purelib, "_parent.pth"), "w") as f:
            f.write("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs)
                    + "\n")
    return py, purelib


def test_dev_install_registers_the_entry_points(tmp_path):
    py, purelib = _venv(tmp_path / "venv", see_this_python=False)
    r = subprocess.run([py, os.path.join(ROOT, "scripts", "dev_install.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "polyten, polyten-cpu, polyten-cuda, polyten-conformance" in r.stdout
    probe = textwrap.dedent("""
        import importlib.metadata as md, importlib.util
        groups = {g: sorted(e.name + '=' + e.value for e in md.entry_points(group=g))
                  for g in ('polyten', 'pytest11', 'console_scripts')}
        print(groups)
        print(md.version('polyten-cuda'), md.metadata('polyten')['Name'])
        print(importlib.util.find_spec('polyten_cuda').origin)
        print(importlib.util.find_spec('polyten_conformance').origin)
    """)
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    groups, versions, cuda_origin, conf_origin = r.stdout.splitlines()
    assert eval(groups) == {"polyten": ["cpu=polyten_cpu", "cuda=polyten_cuda"],
                            "pytest11": ["polyten_conformance=polyten_conformance.plugin"],
                            "console_scripts": ["polyten=polyten.cli:main"]}
    assert versions == "0.1.0 polyten"
    assert cuda_origin.startswith(os.path.join(ROOT, "plugins", "polyten_cuda"))
    assert conf_origin.startswith(os.path.join(ROOT, "conformance"))
    # rerunning rewrites the same files (the device may run the check twice)
    r = subprocess.run([py, os.path.join(ROOT, "scripts", "dev_install.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(purelib)) == [
        "_polyten_checkout.pth", "polyten-0.1.0.dist-info", "polyten_conformance-0.1.0.dist-info",
        "polyten_cpu-0.1.0.dist-info", "polyten_cuda-0.1.0.dist-info"]


def _gpu_check(tmp_path, *, standin: bool, steps: str):
    py, _ = _venv(tmp_path / "venv", see_this_python=True)
    env = dict(os.environ, PYTHON=py, OUT=str(tmp_path / "out"), GPU_CHECK_STEPS=steps,
               PIP_NO_INDEX="1", GPU_CHECK_BUDGET="120")
    env.pop("PYTHONPATH", None)
    if standin:
        # every process of the check gets the CuPy stand-in as `cupy` (one GPU)
        sc = tmp_path / "sitecustomize"
        sc.mkdir()
        (sc / "sitecustomize.py").write_text(textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {TESTS!r})
            try:
                import cupy_standin
                cupy_standin.install(devices=1)
            except ImportError:  # before polyten_cuda is on the path
                pass
        """))
        env["PYTHONPATH"] = str(sc)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh")], env=env,
                       capture_output=True, text=True, timeout=600)
    out = tmp_path / "out"
    summary = (out / "summary.txt").read_text()
    with tarfile.open(out / "logs.tar.gz") as tar:
        logs = sorted(tar.getnames())
    return r, summary, sorted(os.listdir(out)), logs


def test_gpu_check_installs_into_a_venv_python_and_finds_the_gpu(tmp_path):
    """The set-up on the stand-in, and the kernel-profile step (which, with PyTorch's CPU
    wheel here, says there is no GPU to profile and succeeds; its log joins the summary)."""
    r, summary, files, logs = _gpu_check(tmp_path, standin=True, steps="kernels")
    assert r.returncode == 0, summary + r.stderr
    assert "kernels: rc=0" in summary
    if importlib.util.find_spec("torch") is not None:
        assert "gpu_kernels: needs a GPU with PyTorch CUDA" in summary
    assert "(a venv; polyten goes in it)" in summary
    assert "cuda available: 1 device(s); CuPy stand-in" in summary
    assert "numpy " in summary and "cupy-cuda13x " in summary  # versions, for the record
    assert summary.rstrip().endswith("overall: PASS")
    assert files == ["logs.tar.gz", "summary.txt"]  # the device tool returns 8 files at most
    assert {"backends.log", "cuda.log"} <= set(logs)


def test_gpu_check_stops_when_cuda_is_unavailable(tmp_path):
    r, summary, files, logs = _gpu_check(tmp_path, standin=False, steps="test_cuda")
    assert r.returncode == 1
    assert "cuda backend NOT available: " in summary
    assert summary.rstrip().endswith(
        "overall: FAIL (the cuda backend is not available; nothing else was run)")
    assert "test_cuda.log" not in logs and "test_cuda:" not in summary
    assert files == ["logs.tar.gz", "summary.txt"]
