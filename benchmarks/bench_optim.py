"""One optimizer step for the parameters of a 64-256-256-10 MLP (float32): polyten vs PyTorch
CPU (one thread) vs a hand-written NumPy step (in-place ufuncs with ``out=``, the limit of a
NumPy backend), side by side in one process.  Also counts the polyten ops one step dispatches.

Run:  .venv/bin/python benchmarks/bench_optim.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import timeit

import numpy as np

import polyten as pt
from polyten import optim

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the NumPy and polyten columns still run
    torch = None

SHAPES = [(256, 64), (256,), (256, 256), (256,), (10, 256), (10,)]


def med(fn, number, repeat):
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number


class NumpySGD:
    """SGD with momentum, written directly with NumPy ufuncs (no temporaries but one)."""

    def __init__(self, params, grads, lr, momentum):
        self.p, self.g, self.lr, self.m = params, grads, lr, momentum
        self.bufs = [None] * len(params)
        self.tmp = [np.empty_like(p) for p in params]

    def step(self):
        for i, (p, g) in enumerate(zip(self.p, self.g)):
            b = self.bufs[i]
            if b is None:
                b = self.bufs[i] = g.copy()
            else:
                np.multiply(b, self.m, out=b)
                np.add(b, g, out=b)
            t = self.tmp[i]
            np.multiply(b, -self.lr, out=t)
            np.add(p, t, out=p)


class NumpyAdam:
    """Adam (PyTorch's formula) with NumPy ufuncs and preallocated temporaries."""

    def __init__(self, params, grads, lr, betas=(0.9, 0.999), eps=1e-8):
        self.p, self.g, self.lr, self.eps = params, grads, lr, eps
        self.b1, self.b2 = betas
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t1 = [np.empty_like(p) for p in params]
        self.t2 = [np.empty_like(p) for p in params]
        self.step_n = 0

    def step(self):
        self.step_n += 1
        b1, b2, n = self.b1, self.b2, self.step_n
        bc2_sqrt = math.sqrt(1 - b2 ** n)
        c = -self.lr * bc2_sqrt / (1 - b1 ** n)
        for p, g, m, v, t1, t2 in zip(self.p, self.g, self.m, self.v, self.t1, self.t2):
            np.multiply(m, b1, out=m)
            np.multiply(g, 1 - b1, out=t1)
            np.add(m, t1, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(g, 1 - b2, out=t1)
            np.multiply(t1, g, out=t1)
            np.add(v, t1, out=v)
            np.sqrt(v, out=t2)
            np.add(t2, self.eps * bc2_sqrt, out=t2)
            np.divide(m, t2, out=t1)
            np.multiply(t1, c, out=t1)
            np.add(p, t1, out=p)


def count_ops(step):
    """Polyten kernel calls during one call of ``step`` (through the dispatcher's caches)."""
    from polyten.dispatch import dispatcher
    counts = {}
    caches = [(name, c) for name, c in vars(dispatcher).get("_CACHES", {}).items()]
    if not caches:
        return None
    originals = {}
    for name, cache in caches:
        for backend, fn in list(cache.items()):
            if fn is None:
                continue

            def wrapped(*a, _fn=fn, _name=name, **k):
                counts[_name] = counts.get(_name, 0) + 1
                return _fn(*a, **k)
            originals[(name, backend)] = (cache, fn)
            cache[backend] = wrapped
    try:
        step()
    finally:
        for (name, backend), (cache, fn) in originals.items():
            cache[backend] = fn
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeat = 3 if args.quick else 7
    number = 100 if args.quick else 300
    rng = np.random.default_rng(0)
    init = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in SHAPES]
    grads = [(rng.standard_normal(s) * 0.01).astype(np.float32) for s in SHAPES]
    n_params = sum(a.size for a in init)
    print(f"one optimizer step, MLP 64-256-256-10 ({len(SHAPES)} tensors, {n_params} float32 "
          f"parameters); median of {repeat} x {number} steps; torch threads = 1")
    print(f"{'optimizer':22s} {'polyten':>9s} {'torch':>9s} {'numpy':>9s} {'pt/torch':>9s} "
          f"{'pt/numpy':>9s}  (us per step)")

    configs = [("SGD momentum=0.9", lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9),
                (lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9)) if torch else None,
                lambda ps, gs: NumpySGD(ps, gs, 0.01, 0.9)),
               ("Adam", lambda ps: optim.Adam(ps, lr=1e-3),
                (lambda ps: torch.optim.Adam(ps, lr=1e-3)) if torch else None,
                lambda ps, gs: NumpyAdam(ps, gs, 1e-3))]
    def ready(lib, make):
        """An optimizer (one warm-up step taken) over ``lib``'s parameters, grads set."""
        ps = [lib.nn.Parameter(lib.tensor(a.copy())) for a in init]
        for p, g in zip(ps, grads):
            p.grad = lib.tensor(g)
        opt = make(ps)
        opt.step()
        return opt

    for name, make_pt, make_t, make_np in configs:
        opt = ready(pt, make_pt)
        t_pt = med(opt.step, number, repeat)
        ops = count_ops(opt.step)
        t_t = float("nan")
        if make_t is not None:
            t_t = med(ready(torch, make_t).step, number, repeat)
        nps = [a.copy() for a in init]
        nopt = make_np(nps, grads)
        nopt.step()
        t_np = med(nopt.step, number, repeat)
        print(f"{name:22s} {t_pt * 1e6:9.1f} {t_t * 1e6:9.1f} {t_np * 1e6:9.1f} "
              f"{t_pt / t_t:9.2f} {t_pt / t_np:9.2f}")
        if ops:
            total = sum(ops.values())
            print(f"{'':22s} polyten kernel calls per step: {total} "
                  f"({total / len(SHAPES):.1f} per parameter tensor: "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(ops.items()))})")


if __name__ == "__main__":
    main()
