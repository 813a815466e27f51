"""Kernel launches and host traffic of one CUDA training step, counted without a GPU.

On a GPU, a small model's step costs mostly host time per kernel launch (CuPy spends several
microseconds in Python per launch), so the number of launches per step is the figure to keep
down between GPU runs.  This script runs the training steps of ``benchmarks/bench_cuda.py``
(digits MLP, larger MLP, CNN, small transformer LM) on the real cuda plugin over the CuPy
stand-in of the tests (``tests/cupy_standin.py``: NumPy underneath, the fused CUDA kernels
compiled for the host),
and prints, per step: kernel launches (calls that launch a kernel on CuPy: views and
allocations do not count), device-to-host reads, synchronous host-to-device copies and
value-dependent shapes (each of which would make the host wait), and the call sites that
launch the most.

Run:  python benchmarks/cuda_launches.py [--cases digits,cnn] [--top 8]

Counts, not times: deterministic, and comparable run to run.  The larger MLP runs at
``--quick`` size (batch 512) on NumPy, so it takes a few seconds.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="digits,mlp,cnn,transformer")
    ap.add_argument("--top", type=int, default=8, help="call sites to list per case")
    args = ap.parse_args(argv)

    import cupy_standin as cs
    cs.install()
    import bench_cuda as bc

    sites = collections.Counter()
    tracing = [False]

    class Counting(collections.Counter):
        def __setitem__(self, key, value):
            if key == "launch" and tracing[0]:
                frames = [f for f in traceback.extract_stack(limit=12)[:-1]
                          if "cupy_standin" not in f.filename]
                if frames:
                    f = frames[-1]
                    sites[f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"] += 1
            super().__setitem__(key, value)

    cs.STATS.__class__ = Counting
    bc._torch = lambda: None  # polyten only: PyTorch CUDA is not here
    print(f"{'case':<40} {'launches':>9} {'d2h':>5} {'h2d':>5} {'sync':>5}")
    for case in args.cases.split(","):
        step, _, desc = bc._step_pair(case.strip(), True)
        step()
        step()  # warm: lazily built kernels and buffers
        cs.STATS.clear()
        sites.clear()
        tracing[0] = True
        step()
        tracing[0] = False
        t = cs.traffic()
        print(f"{desc:<40} {cs.STATS['launch']:>9} {t.get('d2h', 0):>5} {t.get('h2d', 0):>5} "
              f"{t.get('sync', 0):>5}")
        for site, n in sites.most_common(args.top):
            print(f"    {n:4d}  {site}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
