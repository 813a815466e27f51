#!/usr/bin/env bash
# Set up polyten with its CPU backend and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -e ".[demo]" -e plugins/polyten_cpu > .venv/pip.log 2>&1 || { cat .venv/pip.log; exit 1; }
exec .venv/bin/polyten demo "$@"
