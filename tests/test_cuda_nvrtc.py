"""The cuda backend's kernels compile with NVRTC as real CuPy builds them, without a GPU.

The CuPy stand-in runs polyten's kernels on the host; the GPU build is a different compiler
(NVRTC, CuPy's headers and options, CuPy's code generation around each ElementwiseKernel and
ReductionKernel body).  Here the workload ``tests/nvrtc_workload.py`` (the conformance suite on
cuda, the benchmark training steps in float32 / float16 AMP / bfloat16 autocast / bfloat16
weights, the norm and optimizer fallbacks, every RawKernel source generator) logs each kernel
the backend makes CuPy build, and ``tests/nvrtc_compile.py``, under a Python with the real
CuPy 14 and NVRTC 13 (``POLYTEN_NVRTC_PYTHON``; ``scripts/test.sh`` installs them in
``.venv-nvrtc``), regenerates each source with CuPy's own code generators and compiles it for
sm_90 (H100 / H200).  Both run in the background while the rest of the suite runs
(``tests/_background.py``); the tests that read them run last.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from _background import compile_logs, nvrtc_python

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NVRTC_PY = nvrtc_python()

pytestmark = pytest.mark.skipif(
    not NVRTC_PY,
    reason="POLYTEN_NVRTC_PYTHON does not name a Python with CuPy 14 and NVRTC: scripts/test.sh "
           "sets it to .venv-nvrtc/bin/python (pip install cupy-cuda13x nvidia-cuda-nvrtc "
           "nvidia-cuda-runtime; no GPU needed)")


def _entries(log):
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_every_kernel_compiles_with_nvrtc(nvrtc_compiled):
    """The workload's log (``conftest.nvrtc_kernel_log``) compiled in the background while
    the rest of the suite ran (``conftest.nvrtc_compiled``)."""
    res = nvrtc_compiled
    print(res.stdout[-3000:])
    assert res.returncode == 0, (res.stdout + res.stderr)[-8000:]
    assert " 0 failed, 0 with warnings" in res.stdout, res.stdout[-8000:]


def test_the_workload_reaches_every_kernel_source(nvrtc_kernel_log):
    """Every fused kernel, Philox draw, row / conv / scatter-add / multi-tensor source and
    dtype the plugin can build is in the log (a kernel added without a way to reach it here
    shows)."""
    from polyten_cuda import (conv, deterministic, fused_src, index_check, multi_tensor,
                              philox, rows)
    entries = _entries(nvrtc_kernel_log)
    names = {e["name"] for e in entries}
    dts = tuple(multi_tensor.C_TYPES)
    want = ({s.name for s in fused_src.ELEMENTWISE.values()}
            | {s.name for s in fused_src.REDUCTION.values()}
            | {f"polyten_philox_{k}" for k in philox.KERNELS}
            | {rows.source(op, dt, mode)[0] for op in rows.KERNELS for dt in dts
               for mode in ("warp", "block")}
            | {rows.param_grads_source(dt)[0] for dt in dts}
            | {conv.source(dt, w, ix)[0] for w in ("im2col", "col2im", "from_grid", "to_grid")
               for dt in dts for ix in ("int64", "int32")}
            | {deterministic.source(dt)[0] for dt in dts}
            | {index_check.source(dt)[0] for dt in ("int64", "int32")}
            | {deterministic.set_source(n)[0] for n in (1, 2, 4, 8, 16)}
            | {multi_tensor.source(spec, dt, 1)[0] for n, spec in fused_src.ELEMENTWISE.items()
               if multi_tensor.is_step(n) for dt in dts}
            | {multi_tensor.norm_source(m, dt, 1)[0] for m in ("l2", "inf") for dt in dts})
    assert want <= names, sorted(want - names)
    # the kernels the backend launched itself, not only logged sources: half and bfloat16 too
    launched = {(e["name"], a[1]) for e in entries if e["kind"] != "raw" for a in e["args"]}
    assert {d for _, d in launched} >= {"float16", "float32", "float64", "int64", "bool"}
    assert any(e["kind"] == "raw" and "bfloat16" in e["name"] for e in entries)
    # fused kernels launched on bfloat16 (CuPy's bfloat16 type, its header): a pointwise one
    # and the per-parameter optimizer step
    assert {("polyten_gelu", "bfloat16"), ("polyten_adam_step", "bfloat16")} <= launched


def test_a_kernel_only_the_host_compiler_accepts_fails(tmp_path):
    """The check is not vacuous: a RawKernel that g++ (the stand-in) accepts but NVRTC cannot
    (a host-only header), and an ElementwiseKernel body naming an undeclared function, are
    each reported with NVRTC's log, and the run fails."""
    raw = ('#include <vector>\nextern "C" __global__ void polyten_bad_raw(float* x) '
           '{ std::vector<float> v; x[0] = 1.0f; }\n')
    entries = [
        {"kind": "raw", "name": "polyten_bad_raw", "code": raw, "options": []},
        {"kind": "elementwise", "name": "polyten_bad_ew", "in_params": "T x",
         "out_params": "T y", "operation": "y = polyten_undeclared(x);", "preamble": "",
         "options": [], "loop_prep": "", "after_loop": "",
         "args": [["nd", "float16", 1, True], ["nd", "float16", 1, True]], "indexer": 1},
        {"kind": "elementwise", "name": "polyten_good_ew", "in_params": "T x, S a",
         "out_params": "T y", "operation": "y = (T)((S)x * a);", "preamble": "",
         "options": [], "loop_prep": "", "after_loop": "",
         "args": [["nd", "bfloat16", 1, True], ["nd", "float32", 1, True],
                  ["nd", "bfloat16", 1, True]], "indexer": 1},
    ]
    log = tmp_path / "bad.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    res = compile_logs(log)
    assert res.returncode == 1, res.stdout
    assert "FAIL RawKernel polyten_bad_raw for sm_90" in res.stdout
    assert "FAIL ElementwiseKernel polyten_bad_ew (float16,float16) for sm_90" in res.stdout
    assert "polyten_undeclared" in res.stdout and "vector" in res.stdout
    assert "polyten_good_ew" not in res.stdout
    assert "2 failed" in res.stdout


def test_only_successful_compilations_are_cached_and_a_changed_source_compiles(tmp_path):
    """``--cache``: a compilation that succeeded is skipped on the next run (its warnings
    kept), a source changed by one character is compiled again, and a failing one is compiled
    and reported on every run, never cached."""
    def raw(name, body):
        return {"kind": "raw", "name": name, "options": [],
                "code": f'extern "C" __global__ void {name}(float* x) {{ {body} }}\n'}

    def run(*entries):
        log = tmp_path / "k.jsonl"
        log.write_text("".join(json.dumps(e) + "\n" for e in entries))
        return compile_logs(log, cache=str(tmp_path / "cache"))

    good, bad = raw("polyten_ok", "x[0] = 1.0f;"), raw("polyten_bad", "x[0] = undeclared;")
    first = run(good, bad)
    assert first.returncode == 1 and "(0 found in the cache)" in first.stdout, first.stdout
    assert len(os.listdir(tmp_path / "cache")) == 1  # the good one only
    again = run(good, bad)
    assert again.returncode == 1 and "(1 found in the cache)" in again.stdout, again.stdout
    assert "FAIL RawKernel polyten_bad for sm_90" in again.stdout and "undeclared" in again.stdout
    changed = run(raw("polyten_ok", "x[0] = 2.0f;"))
    assert changed.returncode == 0 and "(0 found in the cache)" in changed.stdout
    assert " 0 failed, 0 with warnings" in changed.stdout
    assert len(os.listdir(tmp_path / "cache")) == 2


# --- the real CuPy 14.2 without a GPU: what polyten reads from it ------------------------------
def _real(code: str) -> dict:
    """Run ``code`` under the NVRTC environment's Python (polyten installed there by
    scripts/test.sh) and return the JSON it prints last."""
    res = subprocess.run([NVRTC_PY, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_real_cupy_without_a_gpu_leaves_cuda_unavailable_with_the_reason():
    """With CuPy installed and no GPU (no driver): ``import polyten`` does not import CuPy,
    ``polyten backends`` lists cuda as unavailable with CuPy's error, ``polyten.cuda``
    reports no device, and a cuda tensor raises naming the backend and the reason."""
    got = _real(
        "import json, subprocess, sys, os\n"
        "import polyten as pt\n"
        "imported = 'cupy' in sys.modules\n"
        "cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'polyten'),"
        " 'backends'], capture_output=True, text=True)\n"
        "try:\n"
        "    pt.ones(2, device='cuda'); err = None\n"
        "except Exception as e:\n"
        "    err = [type(e).__name__, str(e)]\n"
        "print(json.dumps({'imported': imported, 'cli': cli.stdout, 'rc': cli.returncode,"
        " 'available': pt.cuda.is_available(), 'count': pt.cuda.device_count(), 'err': err}))")
    assert got["imported"] is False
    assert got["rc"] == 0
    line = next(ln for ln in got["cli"].splitlines() if ln.startswith("cuda"))
    assert "polyten-cuda" in line and "unavailable: no usable CUDA device" in line, got["cli"]
    assert "cudaError" in line  # CuPy's own reason (no driver here), not a generic message
    assert got["available"] is False and got["count"] == 0
    name, msg = got["err"]
    assert name == "BackendUnavailableError"
    assert "'cuda'" in msg and "unavailable" in msg and "cudaError" in msg


def test_the_cublas_binding_is_the_one_gemm_calls():
    """``polyten_cuda.gemm`` calls ``cupy.cuda.cublas.gemmStridedBatchedEx`` with the
    parameters of the stand-in's emulation (which the bmm tests check every call against):
    the real binding has the same parameters in the same order, the same data-type and
    compute-type constants (gemm's fallback tables and the stand-in's agree with them), and
    ``gemm.build`` finds everything it needs in the real CuPy."""
    import inspect
    import cupy_standin as cs
    from polyten_cuda import gemm
    got = _real(
        "import json, re, cupy\n"
        "from cupy.cuda import cublas\n"
        "import cupy._core._routines_linalg as L\n"
        "from polyten_cuda import gemm\n"
        "doc = cublas.gemmStridedBatchedEx.__doc__.splitlines()[0]\n"
        "params = [p.split()[-1] for p in re.search(r'\\((.*)\\)', doc).group(1).split(',')]\n"
        "rt = cupy.cuda.runtime\n"
        "bmm = gemm.build(cupy)\n"
        "print(json.dumps({'params': params,"
        " 'compute': {n: getattr(cublas, n) for n in dir(cublas)"
        " if n.startswith('CUBLAS_COMPUTE_')},"
        " 'data': {n: getattr(rt, n) for n in ('CUDA_R_16F', 'CUDA_R_16BF', 'CUDA_R_32F',"
        " 'CUDA_R_64F')},"
        " 'linalg': {n: getattr(L, n) for n in dir(L) if n.startswith('COMPUTE_TYPE_')},"
        " 'ops': [cublas.CUBLAS_OP_N, cublas.CUBLAS_OP_T],"
        " 'status': cublas.CUBLASError(15).status,"
        " 'bmm': bmm is not None and sorted(str(d) for d in bmm.data_types)}))")
    assert got["params"] == list(inspect.signature(cs._gemm_strided_batched_ex).parameters)
    assert got["bmm"] == ["bfloat16", "float16", "float32", "float64"]
    for name, value in gemm._COMPUTE.items():
        assert got["compute"]["CUBLAS_COMPUTE_" + name] == value, name
    for const, value in gemm._DATA_TYPES.values():
        assert got["data"][const] == value, const
    assert {f"CUDA_R_{r}": c for c, (r, _) in cs._CUDA_R.items()} == got["data"]
    assert [gemm.OP_N, gemm.OP_T] == got["ops"]
    assert got["linalg"]["COMPUTE_TYPE_PEDANTIC"] == gemm._PEDANTIC
    assert got["linalg"]["COMPUTE_TYPE_TF32"] == gemm._TF32
    assert got["status"] == 15 and 15 in gemm._NO_GEMM_FOR_DTYPE
    stand_in = {n: getattr(cs._CUBLAS, n) for n in vars(cs._CUBLAS)
                if n.startswith("CUBLAS_COMPUTE_")}
    assert stand_in.items() <= got["compute"].items()
    from polyten_cuda import cupy_internals
    for name, value in cupy_internals._COMPUTE_TYPES.values():  # float32 matmul precision
        assert got["linalg"][name] == value, name


def test_every_cupy_name_the_plugin_spells_out_exists_in_real_cupy():
    """Each dotted ``cp.cuda.*`` / ``cupy._core.*`` / ``cupyx.*`` path in the cuda plugin's
    (and the shared kernels') source resolves in the real CuPy 14.2 -- the names the
    stand-in's API manifest does not cover (it records the public array modules), which only a
    GPU run would otherwise reach."""
    import glob
    import re
    pattern = re.compile(r"\b(?:cp|cupy)\.((?:cuda|_core)(?:\.[A-Za-z_]\w*)+)|"
                         r"\b(cupyx(?:\.[A-Za-z_]\w*)+)")
    paths = set()
    for src in glob.glob(os.path.join(ROOT, "plugins", "polyten_cu*", "polyten_cu*", "*.py")) + \
            glob.glob(os.path.join(ROOT, "plugins", "polyten_cpu", "polyten_cpu", "kernels",
                                   "*.py")):
        with open(src) as f:
            for m in pattern.finditer(f.read()):
                paths.add(m.group(1) or m.group(2))
    assert {"cuda.cublas", "_core._scalar.get_typename", "cuda.Stream.ptds",
            "cupyx.empty_pinned"} <= paths, sorted(paths)
    paths.add("cuda.polyten_no_such_name")  # the check finds what is missing
    got = _real(
        "import importlib, json, sys\n"
        "import cupy, cupyx\n"
        f"paths = {sorted(paths)!r}\n"
        "missing, unloadable = [], []\n"
        "for p in paths:\n"
        "    parts = p.split('.')\n"
        "    obj = cupyx if parts[0] == 'cupyx' else cupy\n"
        "    for part in parts[1:] if parts[0] == 'cupyx' else parts:\n"
        "        try:\n"
        "            obj = getattr(obj, part)\n"
        "        except ImportError:\n"  # a library CuPy knows (cusolver) but cannot load here
        "            unloadable.append(p); break\n"
        "        except AttributeError:\n"
        "            try:\n"
        "                obj = importlib.import_module(obj.__name__ + '.' + part)\n"
        "            except Exception:\n"
        "                missing.append(p); break\n"
        "print(json.dumps({'missing': missing, 'unloadable': unloadable, 'n': len(paths)}))")
    assert got["n"] >= 16 and got["missing"] == ["cuda.polyten_no_such_name"], got
    # the NVRTC environment installs no cuSOLVER: CuPy names the module, its load fails
    assert set(got["unloadable"]) <= {"cuda.cusolver"}, got
