"""Per-op time: raw NumPy vs polyten (cpu) vs PyTorch CPU, side by side in one process.

Run:  .venv/bin/python benchmarks/bench_ops.py [--quick]

Prints the median time per call of each op and the ratios polyten/NumPy and polyten/PyTorch.
Tiny tensors measure dispatch overhead; large ones measure whether polyten adds anything to
the kernels (NumPy is the physical limit of the cpu backend).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import timeit

import numpy as np

import polyten as pt

try:
    import torch
    torch.set_num_threads(1)  # NumPy's elementwise ops are single-threaded too
except ImportError:  # the benchmark still compares with NumPy
    torch = None


def median_time(fn, number: int, repeat: int) -> float:
    """Median seconds per call over ``repeat`` runs of ``number`` calls."""
    fn()
    gc.collect()
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number


def interleaved(fns, number: int, repeat: int) -> list:
    """Median seconds per call of each of ``fns``, timed in turns (one run of each per round):
    on a machine whose speed drifts (a shared VM), sequential medians would compare different
    machines."""
    for f in fns:
        f()
    gc.collect()
    runs = [[] for _ in fns]
    for _ in range(repeat):
        for f, r in zip(fns, runs):
            r.append(timeit.timeit(f, number=number) / number)
    return [statistics.median(r) for r in runs]


def cases(size: str):
    if size == "tiny":
        a_np = np.random.default_rng(0).standard_normal(16).astype(np.float32)
        b_np = np.random.default_rng(1).standard_normal(16).astype(np.float32)
        m_np = np.random.default_rng(2).standard_normal((16, 16)).astype(np.float32)
    else:
        a_np = np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32)
        b_np = np.random.default_rng(1).standard_normal(1_000_000).astype(np.float32)
        m_np = np.random.default_rng(2).standard_normal((1024, 1024)).astype(np.float32)
    a, b, m = pt.asarray(a_np), pt.asarray(b_np), pt.asarray(m_np)
    ta = tb = tm = None
    if torch is not None:
        ta, tb, tm = torch.from_numpy(a_np), torch.from_numpy(b_np), torch.from_numpy(m_np)
    n = a_np.shape[0]
    yield "add", (lambda: a_np + b_np), (lambda: a + b), (lambda: ta + tb)
    yield "mul scalar", (lambda: a_np * 2.0), (lambda: a * 2.0), (lambda: ta * 2.0)
    yield "sum", (lambda: a_np.sum()), (lambda: a.sum()), (lambda: ta.sum())
    yield "exp", (lambda: np.exp(a_np)), (lambda: pt.exp(a)), (lambda: torch.exp(ta))
    yield "relu", (lambda: np.maximum(a_np, 0)), (lambda: pt.relu(a)), \
        (lambda: torch.relu(ta))
    yield "matmul", (lambda: m_np @ m_np), (lambda: m @ m), (lambda: tm @ tm)
    # scatter_reduce amax of every value into n / 16 targets (graph pooling); NumPy's
    # reference is maximum.at on a copy
    t_np = np.zeros(max(1, n // 16), np.float32)
    i_np = np.random.default_rng(3).integers(0, t_np.shape[0], n)
    t_pt, i_pt = pt.asarray(t_np), pt.asarray(i_np)
    t_t = i_t = None
    if torch is not None:
        t_t, i_t = torch.from_numpy(t_np), torch.from_numpy(i_np)

    def np_scatter_amax():
        out = t_np.copy()
        np.maximum.at(out, i_np, a_np)
        return out
    yield "scatter amax", np_scatter_amax, (lambda: pt.scatter_reduce(t_pt, 0, i_pt, a, "amax")), \
        (lambda: t_t.scatter_reduce(0, i_t, ta, "amax"))
    yield "slice", (lambda: a_np[2:n - 2]), (lambda: a[2:n - 2]), (lambda: ta[2:n - 2])
    yield "reshape", (lambda: a_np.reshape(4, -1)), (lambda: a.reshape(4, -1)), \
        (lambda: ta.reshape(4, -1))


def _timed_import(code: str) -> float:
    # as installed for users: bytecode caches allowed (PYTHONDONTWRITEBYTECODE would make every
    # run recompile the sources), first run warms them
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    run = lambda: float(subprocess.run([sys.executable, "-c", code], capture_output=True,  # noqa
                                       text=True, check=True, env=env).stdout)
    run()
    return statistics.median(run() for _ in range(7))


def import_time() -> float:
    return _timed_import("import time; t=time.perf_counter(); import polyten; "
                         "polyten.ones(1); print(time.perf_counter()-t)")


def import_only_time() -> float:
    return _timed_import("import time; t=time.perf_counter(); import polyten; "
                         "print(time.perf_counter()-t)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 5 if args.quick else 15
    print(f"numpy {np.__version__}; torch {torch.__version__ if torch else 'not installed'}; "
          f"polyten {pt.__version__} on {pt.get_backend()}")
    print(f"median time per call; ratios < 1 mean polyten is faster")
    for size, number in (("tiny", 20000 if not args.quick else 5000),
                         ("large", 20 if not args.quick else 5)):
        print(f"\n{size} tensors ({'(16,) / 16x16' if size == 'tiny' else '1e6 / 1024x1024'}"
              f" float32)")
        print(f"{'op (us)':12s} {'numpy':>10s} {'polyten':>10s} {'torch':>10s} "
              f"{'pt/np':>7s} {'pt/torch':>9s}")
        for name, f_np, f_pt, f_t in cases(size):
            num = number if not (size == "large" and name == "matmul") else max(2, number // 4)
            fns = [f_np, f_pt] + ([f_t] if torch is not None else [])
            t_np, t_pt, t_t = (interleaved(fns, num, repeat) + [float("nan")])[:3]
            print(f"{name:12s} {t_np * 1e6:10.2f} {t_pt * 1e6:10.2f} {t_t * 1e6:10.2f} "
                  f"{t_pt / t_np:7.2f} {t_pt / t_t:9.2f}")
    print(f"\nimport polyten: {import_only_time() * 1e3:.1f} ms; "
          f"import + first tensor on cpu (loads NumPy and the plugin): "
          f"{import_time() * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
