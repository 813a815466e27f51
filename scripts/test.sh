#!/usr/bin/env bash
# Set up a virtual environment with polyten, its plugins and the conformance suite, then run
# the tests.  Extra arguments go to pytest.  Works on a fresh machine with Python >= 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip_install() {  # quiet unless it fails
    if ! .venv/bin/python -m pip install -q "$@" > .venv/pip.log 2>&1; then
        cat .venv/pip.log; return 1
    fi
}
pip_install -e ".[test]" -e plugins/polyten_cpu -e plugins/polyten_cuda -e conformance
# the template backend (core tier only): tests/test_template_backend.py runs the suite on it
pip_install -e examples/polyten_template
# PyTorch is an independent reference in the tests (its comparisons skip without it).  Only a
# locally provided CPU wheel is used: never pull the multi-GB CUDA build from an index.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-2.13.0*cp3*.whl >/dev/null 2>&1; then
        pip_install "torch==2.13.0" \
            || echo "note: torch 2.13.0 could not be installed; torch comparisons will skip"
    else
        echo "note: no local torch 2.13.0 CPU wheel; torch comparisons will skip"
    fi
fi
# A second environment with the real CuPy, NVRTC and cuBLAS (no GPU needed):
# tests/test_cuda_nvrtc.py compiles every kernel of the cuda backend as CuPy builds it on a
# GPU, and checks polyten against the real CuPy (cuda unavailable with its reason, the cuBLAS
# binding gemm.py calls).  Pinned: the compile script follows CuPy 14.2's internal code
# generators.  POLYTEN_REQUIRE_NVRTC=1 (CI) makes a failed install an error instead of
# skipped tests.
if [ -z "${POLYTEN_NVRTC_PYTHON:-}" ]; then
    [ -x .venv-nvrtc/bin/python ] || "$PY" -m venv .venv-nvrtc
    if .venv-nvrtc/bin/python -m pip install -q "cupy-cuda13x==14.2.0" \
            "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cublas==13.*" \
            ml_dtypes -e . -e plugins/polyten_cpu -e plugins/polyten_cuda \
            > .venv-nvrtc/pip.log 2>&1; then
        export POLYTEN_NVRTC_PYTHON="$PWD/.venv-nvrtc/bin/python"
    elif [ "${POLYTEN_REQUIRE_NVRTC:-0}" = 1 ]; then
        cat .venv-nvrtc/pip.log; exit 1
    else
        echo "note: CuPy and NVRTC could not be installed (.venv-nvrtc/pip.log); the NVRTC" \
             "compile test will skip"
    fi
fi
exec .venv/bin/python -m pytest "$@"
