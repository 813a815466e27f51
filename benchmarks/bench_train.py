"""Training on the digits, side by side: polyten (cpu) vs PyTorch CPU vs hand-written NumPy.

Run:  .venv/bin/python benchmarks/bench_train.py [--quick]

* Digits MLP 64-256-256-10, batch 64, SGD with momentum: median epoch time (each framework's
  own DataLoader over a TensorDataset, shuffled), and a NumPy forward/backward/SGD written by
  hand (the limit of a NumPy backend).
* Small CNN (two 3x3 convolutions with max-pooling, a linear head): median epoch time.
* Peak memory of training, each framework in fresh subprocesses (median of three) so neither
  sees the other's allocations: the peak resident memory of training above the set-up
  (model, optimizer, loader), and its growth after the first epoch (see _memory_child).

BLAS and PyTorch are limited to one thread, so the figures compare the frameworks' work and
not how two thread pools share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np


def _digits():
    from sklearn.datasets import load_digits
    b = load_digits()
    return (b.data / 16.0).astype(np.float32), b.target.astype(np.int64)


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # numpy may then use several BLAS threads: said in the output
        print("note: threadpoolctl missing, NumPy's BLAS threads not limited")


# ------------------------------------------------------------------------ the frameworks ---
def polyten_epoch(kind, x, y):
    import polyten as pt
    import polyten.nn as nn
    from polyten.data import DataLoader, TensorDataset
    from polyten.demo import make_model
    pt.manual_seed(0)
    model = make_model(kind)
    if kind == "mlp":  # the benchmark's MLP has no dropout (the demo's has)
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                              nn.Linear(256, 10))
    opt = pt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(pt.from_numpy(x), pt.from_numpy(y)), batch_size=64,
                        shuffle=True)
    return _epoch_fn(model, opt, nn.CrossEntropyLoss(), loader)


def _epoch_fn(model, opt, loss_fn, loader):
    """One epoch of the same training loop, written once for both frameworks."""
    def epoch():
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return epoch


def torch_epoch(kind, x, y):
    import torch
    import torch.nn as nn
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                              nn.Linear(256, 10))
    else:
        model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)),
                              nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=64, shuffle=True)
    return _epoch_fn(model, opt, nn.CrossEntropyLoss(), loader)


def numpy_epoch(kind, x, y):
    """The MLP by hand: forward, softmax cross-entropy, backward, SGD with momentum."""
    assert kind == "mlp"
    rng = np.random.default_rng(0)
    sizes = [(64, 256), (256, 256), (256, 10)]
    ws = [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) for s in sizes]
    bs = [np.zeros(s[1], np.float32) for s in sizes]
    params = ws + bs
    bufs = [np.zeros_like(p) for p in params]

    def epoch():
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            xb, yb = x[idx], y[idx]
            h1 = np.maximum(xb @ ws[0] + bs[0], 0)
            h2 = np.maximum(h1 @ ws[1] + bs[1], 0)
            z = h2 @ ws[2] + bs[2]
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            d3 = p / len(yb)
            g = [None] * 6
            g[2], g[5] = h2.T @ d3, d3.sum(0)
            d2 = (d3 @ ws[2].T) * (h2 > 0)
            g[1], g[4] = h1.T @ d2, d2.sum(0)
            d1 = (d2 @ ws[1].T) * (h1 > 0)
            g[0], g[3] = xb.T @ d1, d1.sum(0)
            for prm, buf, gr in zip(params, bufs, g):
                buf *= 0.9
                buf += gr
                prm -= 0.05 * buf
    return epoch


RUNNERS = {"polyten": polyten_epoch, "torch": torch_epoch, "numpy": numpy_epoch}


# ------------------------------------------------------------------------ peak memory -----
def _memory_child(framework: str, kind: str, epochs: int) -> None:
    """In a fresh process, two figures (bytes):

    * ``training``: the peak resident memory while training (a first epoch, then ``epochs``)
      above the resident memory once the model, optimizer and loader are set up -- what
      training costs on top of the framework, the model and the data;
    * ``growth``: the peak over the later epochs above the resident memory after the first
      one -- whether training keeps taking more (a leak, a growing cache).  At this scale
      (tenths of a MB) it also shows how the allocator trims and regrows its heap.
    """
    _limit_threads()
    x, y = _digits()
    epoch = RUNNERS[framework](kind, x, y)
    base = _status("VmRSS")
    _reset_peak()
    epoch()  # imports, first-call caches
    first_peak = _status("VmHWM")
    rss = _status("VmRSS")
    _reset_peak()
    for _ in range(epochs):
        epoch()
    peak = _status("VmHWM")
    print(json.dumps({"growth": peak - rss, "training": max(first_peak, peak) - base}))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak) to the current RSS


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def peak_memory(framework, kind, epochs, runs=3):
    """Median over ``runs`` fresh processes of each figure of :func:`_memory_child`."""
    got = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, __file__, "--memory-child", framework, kind,
                              str(epochs)], capture_output=True, text=True, check=True)
        got.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(g[k] for g in got) for k in got[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-child", nargs=3, metavar=("FRAMEWORK", "KIND", "EPOCHS"))
    args = parser.parse_args()
    if args.memory_child:
        fw, kind, ep = args.memory_child
        _memory_child(fw, kind, int(ep))
        return
    _limit_threads()
    x, y = _digits()
    try:
        import torch
        frameworks = ["numpy", "polyten", "torch"]
        print(f"numpy {np.__version__}; torch {torch.__version__}; single-threaded")
    except ImportError:
        torch = None
        frameworks = ["numpy", "polyten"]
        print(f"numpy {np.__version__}; torch not installed")
    epochs = 3 if args.quick else 9
    for kind in ("mlp", "cnn"):
        # epochs of the frameworks in turns (one of each per round): this VM's speed drifts,
        # and sequential runs would compare different machines
        fns = {fw: RUNNERS[fw](kind, x, y) for fw in frameworks
               if not (fw == "numpy" and kind == "cnn")}
        times = {fw: [] for fw in fns}
        for fn in fns.values():
            fn()  # the first epoch warms up
        for _ in range(epochs):
            for fw, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[fw].append(time.perf_counter() - t0)
        med = {fw: statistics.median(t) for fw, t in times.items()}
        row = "  ".join(f"{fw} {t * 1e3:7.1f} ms" for fw, t in med.items())
        ratios = []
        if "torch" in med:
            ratios.append(f"polyten/torch {med['polyten'] / med['torch']:.2f}")
        if "numpy" in med:
            ratios.append(f"polyten/numpy {med['polyten'] / med['numpy']:.2f}")
        print(f"digits {kind.upper()} epoch (1797 images, batch 64, SGD momentum): {row}   "
              f"{'   '.join(ratios)}")
    if sys.platform.startswith("linux"):
        for kind in ("mlp", "cnn"):
            mem = {fw: peak_memory(fw, kind, 2 if args.quick else 4, 1 if args.quick else 3)
                   for fw in frameworks if not (fw == "numpy" and kind == "cnn")}
            for key, what in (("training", "peak memory of training above set-up"),
                              ("growth", "peak memory growth after the first epoch")):
                row = "  ".join(f"{fw} {m[key] / 1e6:6.2f} MB" for fw, m in mem.items())
                extra = (f"   polyten/torch {mem['polyten'][key] / max(mem['torch'][key], 1):.2f}"
                         if "torch" in mem else "")
                print(f"{what}, {kind.upper()} (median of runs): {row}{extra}")


if __name__ == "__main__":
    main()
