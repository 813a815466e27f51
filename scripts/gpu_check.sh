#!/usr/bin/env bash
# GPU check of the cuda backend, for a machine with an NVIDIA GPU (the device machine of a
# session that has one).  Lean enough for a 10-minute limit:
#   1. a fresh venv that sees the system's packages (CuPy, PyTorch, pytest, numpy); CuPy is
#      installed only when missing (cupy-cuda13x for CUDA 13 drivers, else cupy-cuda12x; that
#      needs a package registry), then polyten, its plugins and the conformance suite from
#      this checkout (editable, no network);
#   2. `polyten backends -v`;
#   3. tests/test_cuda.py and tests/test_cuda_kernels_static.py;
#   4. benchmarks/bench_cuda.py --quick (JSON rows);
#   5. the conformance suite on cuda, with the time that is left, in $GPU_CHECK_SHARDS
#      (default 8) processes side by side, merged into one JSON report (stopped by
#      `timeout`'s SIGTERM, each shard still writes the report of the tests it ran, and the
#      merged one says "interrupted").
# Each step's summary also names the float16 / bfloat16 kernels this CuPy refused (no loop for
# the dtype) and polyten ran in float32 (polyten_cuda.half_retry.retried).
# The whole script stays under $GPU_CHECK_BUDGET seconds (default 570).  To rerun only some
# checks (device time is scarce), list them: GPU_CHECK_STEPS="conformance bench" (any of
# test_cuda, bench, conformance; set-up and `polyten backends` always run).
# Results go under $OUT (default ./gpu_check_out): summary.txt plus one log/JSON per step.
# Usage: bash scripts/gpu_check.sh     (exit status: 0 when every step passed)
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export POLYTEN_CUDA_REPORT_RETRIES=1  # print the half kernels CuPy refused, at exit
PY=${PYTHON:-python3}
VENV=/tmp/polyten_gpu_venv
status=0
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME TIMEOUT_S COMMAND...
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && status=1
    summary "$name: rc=$rc ($((SECONDS - t0)) s)"
    grep -v "retried in float32" "$OUT/$name.log" | tail -n 3 | sed 's/^/    /' \
        | tee -a "$OUT/summary.txt"
    # which half-precision kernels this CuPy refused (no loop) and polyten ran in float32
    grep -h "retried in float32" "$OUT/$name.log" | tail -n 1 | sed 's/^/    /' \
        | tee -a "$OUT/summary.txt"
}

: >"$OUT/summary.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >>"$OUT/summary.txt" 2>&1 || summary "nvidia-smi: not available"

"$PY" -m venv --system-site-packages "$VENV" || { summary "venv: failed"; exit 1; }
V="$VENV/bin/python"
if ! "$V" -c "import cupy" 2>/dev/null; then
    drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
    major=${drv%%.*}
    wheel=cupy-cuda12x
    [ "${major:-0}" -ge 580 ] && wheel=cupy-cuda13x
    step install_cupy 120 "$V" -m pip install -q "$wheel"
fi
BUDGET=${GPU_CHECK_BUDGET:-570}
step install 90 "$V" -m pip install -q --no-index --no-deps --no-build-isolation \
    -e . -e plugins/polyten_cpu -e plugins/polyten_cuda -e conformance
step backends 40 "$V" -m polyten.cli backends -v
STEPS=" ${GPU_CHECK_STEPS:-test_cuda bench conformance} "
wanted() { [[ "$STEPS" == *" $1 "* ]]; }
wanted test_cuda && step test_cuda 150 "$V" -m pytest -q -p no:cacheprovider -rs \
    tests/test_cuda.py tests/test_cuda_kernels_static.py
wanted bench && step bench 180 "$V" benchmarks/bench_cuda.py --quick --json "$OUT/bench.json"
# The conformance suite in $SHARDS processes side by side (--polyten-shard i/N): a fresh
# machine spends most of the suite compiling CuPy kernels with NVRTC, one core per process.
# Each shard writes its report (a partial one if `timeout` stops it); they are merged into
# conformance.json.
conformance_shards() {  # conformance_shards LIMIT_S
    local limit=$1 n=${GPU_CHECK_SHARDS:-8} t0=$SECONDS pids=() i rc=0
    for ((i = 0; i < n; i++)); do
        timeout "$limit" "$V" -c "import polyten_conformance as c; raise SystemExit(c.run(\
'cuda', report='$OUT/conformance_$i.json', extra_args=('-q', '-p', 'no:cacheprovider', \
'--polyten-shard', '$i/$n')))" >"$OUT/conformance_$i.log" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    [ $rc -ne 0 ] && status=1
    "$V" -c "import glob, polyten_conformance as c
m = c.merge_reports(['$OUT/conformance_%d.json' % i for i in range($n)], '$OUT/conformance.json')
t = m['totals']
print('conformance (%d shards): %s%s' % ($n, ', '.join('%s %d' % kv for kv in t.items()),
      ' -- INTERRUPTED (partial)' if m['interrupted'] else ''))
for f in m['failures'][:15]:
    print('    FAILED', f['test'], '|', f['message'].strip().splitlines()[0][:150] if f['message'].strip() else '')
" >"$OUT/conformance.log" 2>&1 || status=1
    summary "conformance: rc=$rc ($((SECONDS - t0)) s)"
    sed 's/^/    /' "$OUT/conformance.log" | head -n 20 | tee -a "$OUT/summary.txt"
    grep -h "retried in float32" "$OUT"/conformance_*.log | tail -n 1 | sed 's/^/    /' \
        | tee -a "$OUT/summary.txt"
}
left=$((BUDGET - SECONDS))
if ! wanted conformance; then
    :
elif [ $left -gt 30 ]; then
    conformance_shards $left
else
    summary "conformance: not run (only $left s left of the budget)"; status=1
fi
cat "$OUT/bench.log" >>"$OUT/summary.txt" 2>/dev/null
summary "overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
