"""Autograd overhead and an MLP training step: polyten vs PyTorch CPU (and a hand-written NumPy
forward/backward, the limit of a NumPy backend), side by side in one process.

Run:  .venv/bin/python benchmarks/bench_autograd.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
import tracemalloc

import numpy as np

import polyten as pt

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the NumPy and polyten columns still run
    torch = None
try:  # NumPy's BLAS single-threaded too: the columns compare work, not two thread pools
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
except ImportError:
    print("note: threadpoolctl is not installed; NumPy's BLAS may use several threads")


def med(fn, number, repeat):
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number


def interleaved(fns, number, repeat):
    """Median seconds per call of each of ``fns``, timed in turns (one run of each per round)
    so that a machine whose speed drifts -- a shared VM -- slows every column alike."""
    for f in fns:
        f()
    runs = [[] for _ in fns]
    for _ in range(repeat):
        for f, r in zip(fns, runs):
            r.append(timeit.timeit(f, number=number) / number)
    return [statistics.median(r) for r in runs]


def tiny_ops(repeat):
    a_np = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    a = pt.tensor(a_np, requires_grad=True)
    b = pt.tensor(a_np, requires_grad=True)
    rows = [("a + b", lambda: a + b), ("a * b", lambda: a * b), ("exp(a)", lambda: pt.exp(a)),
            ("a.sum()", lambda: a.sum())]
    trows = []
    if torch is not None:
        ta = torch.tensor(a_np, requires_grad=True)
        tb = torch.tensor(a_np, requires_grad=True)
        trows = [lambda: ta + tb, lambda: ta * tb, lambda: torch.exp(ta), lambda: ta.sum()]
    print("\nper-op time with requires_grad=True inputs, (16,) float32 (us)")
    print(f"{'op':10s} {'polyten':>9s} {'torch':>9s} {'pt/torch':>9s}")
    for i, (name, f) in enumerate(rows):
        if trows:
            t_pt, t_t = interleaved([f, trows[i]], 20000, repeat)
        else:
            t_pt, t_t = med(f, 20000, repeat), float("nan")
        print(f"{name:10s} {t_pt * 1e6:9.2f} {t_t * 1e6:9.2f} {t_pt / t_t:9.2f}")


def mlp_step_numpy(x, y, w1, w2):
    h = np.maximum(x @ w1, 0)
    out = h @ w2
    d = 2 * (out - y) / out.size
    gw2 = h.T @ d
    dh = (d @ w2.T) * (h > 0)
    gw1 = x.T @ dh
    return gw1, gw2


def mlp(repeat):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 64)).astype(np.float32)
    y_np = rng.standard_normal((64, 10)).astype(np.float32)
    w1_np = (rng.standard_normal((64, 256)) * 0.1).astype(np.float32)
    w2_np = (rng.standard_normal((256, 10)) * 0.1).astype(np.float32)
    x, y = pt.tensor(x_np), pt.tensor(y_np)
    w1 = pt.tensor(w1_np, requires_grad=True)
    w2 = pt.tensor(w2_np, requires_grad=True)

    def step_pt():
        w1.grad = None
        w2.grad = None
        out = pt.relu(x @ w1) @ w2
        loss = ((out - y) ** 2).mean()
        loss.backward()

    def step_np():
        mlp_step_numpy(x_np, y_np, w1_np, w2_np)

    step_t = None
    if torch is not None:
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)
        tw1 = torch.tensor(w1_np, requires_grad=True)
        tw2 = torch.tensor(w2_np, requires_grad=True)

        def step_t():
            tw1.grad = None
            tw2.grad = None
            out = torch.relu(tx @ tw1) @ tw2
            loss = ((out - ty) ** 2).mean()
            loss.backward()
    fns = [step_np, step_pt] + ([step_t] if step_t else [])
    t_np, t_pt, t_t = (interleaved(fns, 200, repeat) + [float("nan")])[:3]
    print("\nMLP 64-256-10, batch 64, forward + backward (us)")
    print(f"numpy (by hand) {t_np * 1e6:9.1f}   polyten {t_pt * 1e6:9.1f}   torch "
          f"{t_t * 1e6:9.1f}   pt/numpy {t_pt / t_np:5.2f}   pt/torch {t_pt / t_t:5.2f}")
    # memory must not grow with the number of steps
    tracemalloc.start()
    for _ in range(20):
        step_pt()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(200):
        step_pt()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"traced Python memory after 20 steps {base / 1e3:.1f} kB, after 220 steps "
          f"{after / 1e3:.1f} kB")


def mlp_modules(repeat):
    """The same 2-layer MLP written as a PyTorch user does: nn.Linear (with bias), ReLU and
    MSELoss, forward + backward; polyten's linear is one fused node."""
    import polyten.nn as pnn
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 64)).astype(np.float32)
    y_np = rng.standard_normal((64, 10)).astype(np.float32)
    pt.manual_seed(0)
    pm = pnn.Sequential(pnn.Linear(64, 256), pnn.ReLU(), pnn.Linear(256, 10))
    x, y = pt.tensor(x_np), pt.tensor(y_np)
    loss_pt = pnn.MSELoss()

    def step_pt():
        pm.zero_grad()
        loss_pt(pm(x), y).backward()

    step_t = None
    if torch is not None:
        tm = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 10))
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)
        loss_t = torch.nn.MSELoss()

        def step_t():
            tm.zero_grad()
            loss_t(tm(tx), ty).backward()
    t_pt, t_t = (interleaved([step_pt] + ([step_t] if step_t else []), 200, repeat)
                 + [float("nan")])[:2]
    print("\nthe same MLP with nn.Linear + ReLU + MSELoss, forward + backward (us)")
    print(f"polyten {t_pt * 1e6:9.1f}   torch {t_t * 1e6:9.1f}   pt/torch {t_pt / t_t:5.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 5 if args.quick else 15
    print(f"numpy {np.__version__}; torch {torch.__version__ if torch else 'not installed'}")
    tiny_ops(repeat)
    mlp(repeat)
    mlp_modules(repeat)


if __name__ == "__main__":
    main()
