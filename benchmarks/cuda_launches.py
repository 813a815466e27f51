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

With ``--calls``, it also counts the step's calls of CuPy's API (module functions, ndarray
methods, indexing, kernel objects), by name: each costs host time on a GPU machine whether
or not it launches (on an H200 host: about 9 us an ``ElementwiseKernel``, 18 us a ufunc, 20 us
a ``RawKernel`` with many arguments, a few us a view or an allocation).

Run:  python benchmarks/cuda_launches.py [--cases digits,cnn] [--top 8] [--calls]

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
    ap.add_argument("--calls", action="store_true", help="also count calls of CuPy's API")
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
                          if "cupy_standin" not in f.filename and f.name != "counted"]
                if frames:
                    f = frames[-1]
                    sites[f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"] += 1
            super().__setitem__(key, value)

    cs.STATS.__class__ = Counting
    api = collections.Counter()
    if args.calls:
        _count_api_calls(cs, api, tracing)
    bc._torch = lambda: None  # polyten only: PyTorch CUDA is not here
    print(f"{'case':<40} {'launches':>9} {'d2h':>5} {'h2d':>5} {'sync':>5}")
    for case in args.cases.split(","):
        step, _, desc = bc._step_pair(case.strip(), True)
        step()
        step()  # warm: lazily built kernels and buffers
        cs.STATS.clear()
        sites.clear()
        api.clear()
        tracing[0] = True
        step()
        tracing[0] = False
        t = cs.traffic()
        print(f"{desc:<40} {cs.STATS['launch']:>9} {t.get('d2h', 0):>5} {t.get('h2d', 0):>5} "
              f"{t.get('sync', 0):>5}")
        for site, n in sites.most_common(args.top):
            print(f"    {n:4d}  {site}")
        if args.calls:
            print(f"    CuPy API calls: {sum(api.values())}: " + ", ".join(
                f"{name} {n}" for name, n in api.most_common()))
    return 0


def _count_api_calls(cs, api, tracing):
    """Count, while ``tracing[0]``, each call of the stand-in's CuPy API into ``api``."""
    def hook(cls, attr, label):
        orig = getattr(cls, attr)

        def counted(self, *a, **k):
            if tracing[0]:
                api[label(self)] += 1
            return orig(self, *a, **k)
        setattr(cls, attr, counted)
    hook(cs._Function, "__call__", lambda f: f.qualname)
    hook(cs.DeviceArray, "__getitem__", lambda a: "ndarray.__getitem__")
    hook(cs.DeviceArray, "__setitem__", lambda a: "ndarray.__setitem__")
    for kind in ("RawKernel", "ElementwiseKernel", "ReductionKernel"):
        hook(getattr(cs, kind), "__call__", lambda k, kind=kind: kind)


if __name__ == "__main__":
    raise SystemExit(main())
