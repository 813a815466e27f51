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
exec .venv/bin/python -m pytest "$@"
