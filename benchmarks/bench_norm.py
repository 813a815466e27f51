"""Normalisation layers, forward + backward: polyten (fused cpu kernels, and the
backend-agnostic default on a clone without them) vs PyTorch CPU (one thread) vs a hand-written
NumPy forward/backward (the limit of a NumPy backend), side by side in one process.

Run:  .venv/bin/python benchmarks/bench_norm.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit

import numpy as np

import polyten as pt
import polyten.nn.functional as F

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the NumPy and polyten columns still run
    torch = None

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def med(fn, number, repeat):
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number


# ------------------------------------------------------------------ NumPy references -----
def np_layer_norm_step(x, w, b, g, eps=1e-5):
    mean = x.mean(1, keepdims=True)
    xc = x - mean
    rstd = 1.0 / np.sqrt((xc * xc).mean(1, keepdims=True) + eps)
    xhat = xc * rstd
    out = xhat * w + b
    gw = (g * xhat).sum(0)
    gb = g.sum(0)
    gh = g * w
    gx = rstd * (gh - gh.mean(1, keepdims=True) - xhat * (gh * xhat).mean(1, keepdims=True))
    return out, gx, gw, gb


_NP_RM, _NP_RV = np.zeros(16, np.float32), np.ones(16, np.float32)


def np_batch_norm_step(x, w, b, g, eps=1e-5, momentum=0.1):
    axes = (0, 2, 3)
    mean = x.mean(axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axes, keepdims=True)
    n = x.size // x.shape[1]
    _NP_RM[...] = (1 - momentum) * _NP_RM + momentum * mean.reshape(-1)
    _NP_RV[...] = (1 - momentum) * _NP_RV + momentum * n / (n - 1) * var.reshape(-1)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    wc = w.reshape(1, -1, 1, 1)
    out = xhat * wc + b.reshape(1, -1, 1, 1)
    gw = (g * xhat).sum(axes)
    gb = g.sum(axes)
    gh = g * wc
    gx = rstd * (gh - gh.mean(axes, keepdims=True) -
                 xhat * (gh * xhat).mean(axes, keepdims=True))
    return out, gx, gw, gb


# -------------------------------------------------------------------------- cases -----
def case(name, shape, wshape, pt_fn, torch_fn, np_fn, number, repeat, extra_devices):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    b = rng.standard_normal(wshape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    times = {}

    def polyten_on(device):
        px = pt.tensor(x, device=device, requires_grad=True)
        pw = pt.tensor(w, device=device, requires_grad=True)
        pb = pt.tensor(b, device=device, requires_grad=True)
        pg = pt.tensor(g, device=device)

        def step():
            px.grad = pw.grad = pb.grad = None
            pt_fn(px, pw, pb).backward(pg)
        return step

    times["polyten"] = med(polyten_on("cpu"), number, repeat)
    for label, dev in extra_devices:
        times[label] = med(polyten_on(dev), number, repeat)
    times["numpy"] = med(lambda: np_fn(x, w, b, g), number, repeat)
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tg = torch.tensor(g)

        def tstep():
            tx.grad = tw.grad = tb.grad = None
            torch_fn(tx, tw, tb).backward(tg)
        times["torch"] = med(tstep, number, repeat)
    else:
        times["torch"] = float("nan")
    cols = ["polyten"] + [lbl for lbl, _ in extra_devices] + ["torch", "numpy"]
    print(f"{name:38s} " + " ".join(f"{times[c] * 1e6:10.1f}" for c in cols) +
          f" {times['polyten'] / times['torch']:9.2f} {times['polyten'] / times['numpy']:9.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    number, repeat = (50, 5) if args.quick else (200, 9)
    from conftest import cpu_clone  # a cpu backend without the fused kernels
    with cpu_clone("nofused", drop=("layer_norm", "batch_norm")) as dev:
        extra = [("default", dev)]
        print("\nforward + backward, float32, median us per step (default = polyten without "
              "the fused kernels)")
        print(f"{'case':38s} {'polyten':>10s} {'default':>10s} {'torch':>10s} {'numpy':>10s} "
              f"{'pt/torch':>9s} {'pt/numpy':>9s}")
        case("layer_norm (64, 256)", (64, 256), (256,),
             lambda x, w, b: F.layer_norm(x, (256,), w, b),
             lambda x, w, b: torch.nn.functional.layer_norm(x, (256,), w, b),
             np_layer_norm_step, number, repeat, extra)
        # with running statistics, as BatchNorm2d in training
        stats = {}

        def pt_bn(x, w, b):
            if x.device not in stats:
                stats[x.device] = (pt.zeros(16, device=x.device), pt.ones(16, device=x.device))
            return F.batch_norm(x, *stats[x.device], w, b, True)
        trm, trv = (torch.zeros(16), torch.ones(16)) if torch is not None else (None, None)
        case("batch_norm2d train (64, 16, 8, 8)", (64, 16, 8, 8), (16,), pt_bn,
             lambda x, w, b: torch.nn.functional.batch_norm(x, trm, trv, w, b, True),
             np_batch_norm_step, number, repeat, extra)


if __name__ == "__main__":
    main()
