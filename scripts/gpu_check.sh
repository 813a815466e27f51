#!/usr/bin/env bash
# GPU check of the cuda backend, for a machine with an NVIDIA GPU (the device machine of a
# session that has one).  Lean enough for a 10-minute limit:
#   1. the environment of $PYTHON (default python3) when that is a venv, as the device
#      machine's python3 is (/opt/torch/.venv), else a fresh venv that sees the system's
#      packages (CuPy, PyTorch, pytest, numpy); CuPy is
#      installed only when missing (cupy-cuda13x for CUDA 13 drivers, else cupy-cuda12x; that
#      needs a package registry), then polyten, its plugins and the conformance suite from
#      this checkout (editable, no network; scripts/dev_install.py where that cannot build);
#   2. `polyten backends -v`;
#   3. the conformance suite on cuda in $GPU_CHECK_SHARDS (default 8) processes side by
#      side, merged into one JSON report (stopped by `timeout`'s SIGTERM at the end of its
#      time, each shard still writes the report of the tests it ran, and the merged one
#      says "interrupted"), while
#   4. tests/test_cuda.py runs (tests/test_cuda_kernels_static.py is host-only, compiles with
#      g++ from a cold cache and gains nothing from a GPU: CI runs it);
#   5. benchmarks/bench_cuda.py --quick (JSON rows), alone on the GPU;
#   6. scripts/gpu_kernels.py: the device time of every kernel of the training steps still
#      above their target (polyten's and torch's, through torch.profiler), last.
# Each step's summary also names the float16 / bfloat16 kernels this CuPy refused (no loop for
# the dtype) and polyten ran in float32 (polyten_cuda.half_retry.retried).
# The whole script stays under $GPU_CHECK_BUDGET seconds (default 570).  To rerun only some
# checks (device time is scarce), list them: GPU_CHECK_STEPS="conformance bench" (any of
# test_cuda, bench, conformance, kernels; set-up and `polyten backends` always run).
# GPU_CHECK_BENCH_CASES (comma-separated) picks the benchmark's cases (default: all of them);
# GPU_CHECK_KERNEL_CASES (space-separated) the kernel profile's (default: cnn transformer
# mlp_bf16).
# Results go under $OUT (default ./gpu_check_out): summary.txt, bench.json, conformance.json
# and logs.tar.gz (every step's log and each shard's report).
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
    return $rc
}

: >"$OUT/summary.txt"
# The device tool brings back at most 8 files from $OUT: at exit, every per-step log and shard
# report goes into logs.tar.gz beside summary.txt, bench.json and conformance.json.
pack() {
    (cd "$OUT" && shopt -s nullglob && files=(*.log *.json) && keep=(summary.txt bench.json
     conformance.json logs.tar.gz) && [ ${#files[@]} -gt 0 ] \
     && tar czf logs.tar.gz "${files[@]}" \
     && for f in "${files[@]}"; do [[ " ${keep[*]} " == *" $f "* ]] || rm -f "$f"; done)
}
trap pack EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >>"$OUT/summary.txt" 2>&1 || summary "nvidia-smi: not available"

# A venv made from a venv with --system-site-packages sees the base interpreter's packages,
# not that venv's: on the device machine, no CuPy, no PyTorch and nothing to fetch them from.
# So a Python that is already a venv (a throwaway machine's) takes polyten itself.
if "$PY" -c "import sys; raise SystemExit(sys.prefix == sys.base_prefix)"; then
    V="$PY"
    summary "environment: $("$PY" -c "import sys; print(sys.prefix)") (a venv; polyten goes in it)"
else
    "$PY" -m venv --system-site-packages "$VENV" || { summary "venv: failed"; exit 1; }
    V="$VENV/bin/python"
fi
if ! "$V" -c "import cupy" 2>/dev/null; then
    drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
    major=${drv%%.*}
    wheel=cupy-cuda12x
    [ "${major:-0}" -ge 580 ] && wheel=cupy-cuda13x
    step install_cupy 120 "$V" -m pip install -q "$wheel"
fi
BUDGET=${GPU_CHECK_BUDGET:-570}
# Editable installs need a setuptools there that builds wheels (>= 70.1, or `wheel`); where
# that fails, scripts/dev_install.py writes what they would have (dist-info with the entry
# points, a .pth) with no build at all.
if ! timeout 90 "$V" -m pip install -q --no-index --no-deps --no-build-isolation \
        -e . -e plugins/polyten_cpu -e plugins/polyten_cuda -e conformance \
        >"$OUT/install.log" 2>&1; then
    summary "install: pip install -e failed ($(grep -m1 -i "error" "$OUT/install.log"));" \
        "falling back to scripts/dev_install.py"
    step install 30 "$V" scripts/dev_install.py
fi
step backends 40 "$V" -m polyten.cli backends -v
# Without a usable cuda backend every later step would only skip (and the run would look
# green): stop here with the reason, and keep the device time.
if ! step cuda 60 "$V" -c "import sys, polyten
import importlib.metadata as md
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return 'not installed'
print('python', sys.version.split()[0], '| ' + ', '.join('%s %s' % (n, version(n)) for n in (
    'numpy', 'cupy-cuda13x', 'cupy-cuda12x', 'torch')))
if not polyten.cuda.is_available():
    sys.exit('cuda backend NOT available: ' + polyten.cuda._unavailable_reason())
print('cuda available:', polyten.cuda.device_count(), 'device(s);',
      polyten.cuda.get_device_name(0), polyten.cuda.get_device_capability(0))"; then
    summary "overall: FAIL (the cuda backend is not available; nothing else was run)"
    exit 1
fi
STEPS=" ${GPU_CHECK_STEPS:-test_cuda bench conformance kernels} "
wanted() { [[ "$STEPS" == *" $1 "* ]]; }
# The conformance suite in $GPU_CHECK_SHARDS processes side by side (--polyten-shard i/N): a
# fresh machine spends most of the suite compiling CuPy kernels with NVRTC, one core per
# process.  The shards start first and run while tests/test_cuda.py does (correctness only,
# so sharing the GPU is harmless); the benchmark runs last, alone on the GPU, with the time
# kept for it.  Each shard writes its report (a partial one if `timeout` stops it); they are
# merged into conformance.json.
SHARDS=${GPU_CHECK_SHARDS:-8}
SHARD_PIDS=()
conformance_start() {  # conformance_start LIMIT_S
    local limit=$1 i
    CONF_T0=$SECONDS
    for ((i = 0; i < SHARDS; i++)); do
        timeout "$limit" "$V" -c "import polyten_conformance as c; raise SystemExit(c.run(\
'cuda', report='$OUT/conformance_$i.json', extra_args=('-q', '-p', 'no:cacheprovider', \
'--polyten-shard', '$i/$SHARDS')))" >"$OUT/conformance_$i.log" 2>&1 &
        SHARD_PIDS+=($!)
    done
}
conformance_finish() {
    local rc=0 pid
    for pid in "${SHARD_PIDS[@]}"; do wait "$pid" || rc=1; done
    [ $rc -ne 0 ] && status=1
    "$V" -c "import polyten_conformance as c
m = c.merge_reports(['$OUT/conformance_%d.json' % i for i in range($SHARDS)],
                    '$OUT/conformance.json')
print('conformance (%d shards): %s%s' % ($SHARDS, ', '.join('%s %d' % kv for kv in
      m['totals'].items()), ' -- INTERRUPTED (partial)' if m['interrupted'] else ''))
for f in m['failures'][:15]:
    lines = f['message'].strip().splitlines()
    print('    FAILED', f['test'], '|', lines[0][:150] if lines else '')
" >"$OUT/conformance.log" 2>&1 || status=1
    summary "conformance: rc=$rc ($((SECONDS - CONF_T0)) s)"
    sed 's/^/    /' "$OUT/conformance.log" | head -n 20 | tee -a "$OUT/summary.txt"
    grep -h "retried in float32" "$OUT"/conformance_*.log | tail -n 1 | sed 's/^/    /' \
        | tee -a "$OUT/summary.txt"
}
BENCH_TIME=0
wanted bench && BENCH_TIME=180
KERNEL_TIME=0
wanted kernels && KERNEL_TIME=90
if wanted conformance; then
    left=$((BUDGET - SECONDS - BENCH_TIME - KERNEL_TIME - 10))
    if [ $left -gt 60 ]; then
        conformance_start $left
    else
        summary "conformance: not run (only $left s left of the budget)"; status=1
    fi
fi
wanted test_cuda && step test_cuda 210 "$V" -m pytest -q -p no:cacheprovider -rs \
    tests/test_cuda.py
[ ${#SHARD_PIDS[@]} -gt 0 ] && conformance_finish
if wanted bench; then
    left=$((BUDGET - SECONDS - KERNEL_TIME))
    step bench $((left < BENCH_TIME ? left : BENCH_TIME)) "$V" benchmarks/bench_cuda.py \
        --quick --json "$OUT/bench.json" \
        ${GPU_CHECK_BENCH_CASES:+--cases "$GPU_CHECK_BENCH_CASES"}
fi
if wanted kernels; then
    left=$((BUDGET - SECONDS))
    if [ $left -ge 20 ]; then  # (`timeout 0` would mean no limit at all)
        # shellcheck disable=SC2086  # the cases are words
        step kernels $((left < KERNEL_TIME ? left : KERNEL_TIME)) "$V" scripts/gpu_kernels.py \
            ${GPU_CHECK_KERNEL_CASES:-}
    else
        summary "kernels: not run (only $left s left of the budget)"; status=1
    fi
fi
cat "$OUT/bench.log" >>"$OUT/summary.txt" 2>/dev/null
cat "$OUT/kernels.log" >>"$OUT/summary.txt" 2>/dev/null
summary "overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
