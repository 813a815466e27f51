"""Where a cuda training step spends its time (run by hand on a device machine): per case,
the step time with a sync after each step, the host's time to queue a step (no sync), and
a cProfile of the host side.  Usage: python scripts/gpu_profile.py [case ...]"""
import cProfile
import io
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import bench_cuda as B  # noqa: E402
import polyten as pt  # noqa: E402


def measure(label, fn, n=30):
    for _ in range(3):
        fn()
    pt.cuda.synchronize()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        pt.cuda.synchronize()
        t.append(time.perf_counter() - t0)
    t.sort()
    synced = t[n // 2]
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    host = (time.perf_counter() - t0) / n
    pt.cuda.synchronize()
    print(f"{label}: synced median {synced * 1e3:.3f} ms, host queue {host * 1e3:.3f} ms/call",
          flush=True)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(10):
        fn()
    pr.disable()
    pt.cuda.synchronize()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(22)
    print("\n".join(s.getvalue().splitlines()[:40]), flush=True)


def main(cases):
    for case in cases:
        if case.startswith("rows_"):
            import numpy as np
            op = case[5:]
            shape = (2048, 1000) if op == "cross_entropy" else (4096, 256)
            rng = np.random.default_rng(0)
            x = pt.tensor(rng.standard_normal(shape).astype("float32"), device="cuda",
                          requires_grad=True)
            t = pt.tensor(rng.integers(0, shape[-1], shape[0]), device="cuda")
            fwd, _ = B._row_fns(pt, op, shape, x, t)
            measure(case, fwd, 50)
            continue
        pstep, tstep, desc = B._step_pair(case, True)
        measure(f"{case} polyten ({desc})", pstep)
        if tstep is not None:
            measure(f"{case} torch", tstep)


if __name__ == "__main__":
    main(sys.argv[1:] or ["cnn", "transformer", "rows_cross_entropy", "rows_layer_norm"])
