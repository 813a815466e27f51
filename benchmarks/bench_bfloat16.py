"""bfloat16 on the cpu, side by side in one process: polyten vs NumPy (ml_dtypes) vs PyTorch.

Run:  .venv/bin/python benchmarks/bench_bfloat16.py [--quick]

NumPy has no bfloat16 arithmetic of its own: ml_dtypes' ufunc loops convert each element to
float32 and back, and its reductions accumulate in bfloat16.  polyten computes bfloat16 in
float32 and rounds once (PyTorch's rule), so the NumPy column is that computation written by
hand (cast to float32, compute, cast back) -- the limit of a NumPy backend.  PyTorch has native
bfloat16 CPU kernels.  Each figure is the median of repeated timings; ratios are polyten's time
over the other column's.  BLAS and PyTorch run on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _median_us(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        print("note: threadpoolctl missing, NumPy's BLAS threads not limited")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeat = 5 if args.quick else 30
    _limit_threads()
    import ml_dtypes

    import polyten as pt
    import polyten.nn as nn
    import polyten.nn.functional as F
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("note: PyTorch not installed; its column is empty")
    bf = np.dtype(ml_dtypes.bfloat16)
    f32 = np.float32
    rng = np.random.default_rng(0)

    def arr(*shape):
        return rng.standard_normal(shape).astype(f32)

    a, b, v = arr(256, 256), arr(256, 256), arr(1 << 20)
    ab, bb, vb = a.astype(bf), b.astype(bf), v.astype(bf)
    pa, pb, pv = (pt.tensor(z, dtype=pt.bfloat16) for z in (a, b, v))
    ta = tb = tv = None
    if torch is not None:
        ta, tb, tv = (torch.tensor(z).bfloat16() for z in (a, b, v))

    cases = [
        ("matmul 256x256x256", lambda: pa @ pb,
         lambda: (ab.astype(f32) @ bb.astype(f32)).astype(bf), lambda: ta @ tb),
        ("exp, 1M elements", lambda: pv.exp(), lambda: np.exp(vb.astype(f32)).astype(bf),
         lambda: tv.exp()),
        ("sum, 1M elements", lambda: pv.sum(),
         lambda: np.asarray(vb.sum(dtype=f32)).astype(bf), lambda: tv.sum()),
        ("softmax 256x256", lambda: F.softmax(pa, dim=1),
         lambda: _np_softmax(ab.astype(f32)).astype(bf), lambda: ta.softmax(1)),
    ]

    print(f"{'case':32s} {'polyten us':>11s} {'numpy us':>10s} {'torch us':>10s} "
          f"{'pt/numpy':>9s} {'pt/torch':>9s}")
    for name, p_fn, n_fn, t_fn in cases:
        tp = _median_us(p_fn, repeat)
        tn = _median_us(n_fn, repeat)
        tt = _median_us(t_fn, repeat) if torch is not None else float("nan")
        print(f"{name:32s} {tp:11.1f} {tn:10.1f} {tt:10.1f} {tp / tn:9.2f} {tp / tt:9.2f}")

    # a training step: MLP 64-256-256-10, batch 64, AdamW, in bfloat16 and in float32
    x, y = arr(64, 64), rng.integers(0, 10, 64)
    for dt_name in ("bfloat16", "float32"):
        pdt = getattr(pt, dt_name)
        pt.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                              nn.Linear(256, 10)).to(dtype=pdt)
        opt = pt.optim.AdamW(model.parameters(), lr=1e-3)
        px, py = pt.tensor(x).to(pdt), pt.tensor(y)

        def p_step():
            opt.zero_grad()
            F.cross_entropy(model(px), py).backward()
            opt.step()
        tp = _median_us(p_step, repeat)
        tt = float("nan")
        if torch is not None:
            tdt = getattr(torch, dt_name)
            tm = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                     torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                     torch.nn.Linear(256, 10)).to(tdt)
            topt = torch.optim.AdamW(tm.parameters(), lr=1e-3)
            tx, ty = torch.tensor(x).to(tdt), torch.tensor(y)

            def t_step():
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tm(tx), ty).backward()
                topt.step()
            tt = _median_us(t_step, repeat)
        print(f"{'MLP step, ' + dt_name:32s} {tp:11.1f} {'':>10s} {tt:10.1f} {'':>9s} "
              f"{tp / tt:9.2f}")


def _np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


if __name__ == "__main__":
    main()
