"""DataLoader: polyten.data vs torch.utils.data, side by side in one process.

Run:  .venv/bin/python benchmarks/bench_data.py [--quick]

(a) Parallel workers: a map-style dataset whose ``__getitem__`` does about 1 ms of busy CPU
    work (a pure-Python arithmetic loop calibrated at start-up: it holds the GIL and a core,
    no sleeping).  Median epoch time with ``num_workers=0`` and ``num_workers=2``, with worker
    start-up included (a fresh loader iterator per epoch) and with persistent workers.
    Target: workers=2 / workers=0 <= 0.6 on a 2-core machine.
(b) Per-batch overhead in the main process (``num_workers=0``) on a ``TensorDataset``:
    median time per batch for polyten and PyTorch on the same data, shuffled and not.
    Target: polyten <= PyTorch.  polyten gathers a TensorDataset batch with one indexing op
    per tensor; PyTorch indexes and stacks sample by sample.

All numbers are medians of repeated epochs.  The machine may be shared: compare ratios taken
in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import polyten as pt
from polyten.data import DataLoader, Dataset, TensorDataset

try:
    import torch
    import torch.utils.data as tud
    torch.set_num_threads(1)
except ImportError:
    torch = None


def _calibrate(target_s: float = 1e-3) -> int:
    """Loop length of ``_busy`` that takes about ``target_s`` seconds here."""
    n = 10_000
    while True:
        t = time.perf_counter()
        _busy(n)
        dt = time.perf_counter() - t
        if dt > 0.02:
            return max(1, int(n * target_s / dt))
        n *= 2


def _busy(n: int) -> int:
    acc = 0
    for k in range(n):
        acc = (acc + k * k) % 1_000_003
    return acc


class BusyDataset(Dataset):
    """Sample i costs ~1 ms of CPU work and is a small float32 vector."""

    def __init__(self, n: int, work: int):
        self.n, self.work = n, work

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        v = _busy(self.work)
        return np.full(16, float(v % 7 + i), dtype=np.float32), i


if torch is not None:
    class TorchBusyDataset(tud.Dataset):
        def __init__(self, n, work):
            self.n, self.work = n, work

        __len__ = BusyDataset.__len__
        __getitem__ = BusyDataset.__getitem__


def _epoch(loader) -> float:
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def _busy_share(n: int, work: int) -> None:
    for _ in range(n):
        _busy(work)


def _machine_epoch(n: int, work: int) -> float:
    """The same work split over two plain processes: the parallel speed this machine allows
    right now (other programs share the cores)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_busy_share, args=(n // 2, work)) for _ in range(2)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - t


def bench_workers(quick: bool):
    work = _calibrate()
    n = 200 if quick else 400
    repeat = 3 if quick else 7
    print(f"(a) epoch of {n} samples, ~1 ms busy CPU work each (loop of {work}), batch_size=8, "
          f"{os.cpu_count()} CPUs; medians of {repeat} rounds, every configuration once per "
          f"round")
    libs = {"polyten": (DataLoader, BusyDataset)}
    if torch is not None:
        libs["torch"] = (tud.DataLoader, TorchBusyDataset)
    persistent = {}
    for name, (loader, ds) in libs.items():
        persistent[name] = loader(ds(n, work), batch_size=8, num_workers=2,
                                  persistent_workers=True)
        _epoch(persistent[name])            # start its workers outside the timed epochs
    times = {(name, cfg): [] for name in libs for cfg in ("0", "2", "2p")}
    machine = []
    for _ in range(repeat):
        for name, (loader, ds) in libs.items():
            times[name, "0"].append(_epoch(loader(ds(n, work), batch_size=8)))
            times[name, "2"].append(_epoch(loader(ds(n, work), batch_size=8, num_workers=2)))
            times[name, "2p"].append(_epoch(persistent[name]))
        t0 = time.perf_counter()
        _busy_share(n, work)
        serial = time.perf_counter() - t0
        machine.append(_machine_epoch(n, work) / serial)
    print(f"    {'':34s}" + "".join(f"{k:>10s}" for k in libs))
    for cfg, label in (("0", "num_workers=0"), ("2", "num_workers=2 (incl. start)"),
                       ("2p", "num_workers=2 (persistent)")):
        print(f"    {label:34s}" + "".join(
            f"{statistics.median(times[k, cfg]) * 1e3:8.1f}ms" for k in libs))
    for cfg, label in (("2", "ratio 2 workers (incl. start) / 0"),
                       ("2p", "ratio 2 workers (persistent) / 0")):
        print(f"    {label:34s}" + "".join(
            f"{statistics.median(a / b for a, b in zip(times[k, cfg], times[k, '0'])):10.2f}"
            for k in libs) + "   (target <= 0.6)")
    print(f"    {'machine: 2 plain processes / 1':34s}{statistics.median(machine):10.2f}"
          f"   (the best any loader can do now)")


def _per_batch(loader, repeat: int) -> float:
    n_batches = len(loader)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in loader:
            pass
        times.append((time.perf_counter() - t) / n_batches)
    return statistics.median(times)


def bench_overhead(quick: bool):
    n, d = 4096, 32
    repeat = 5 if quick else 15
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, d)).astype(np.float32)
    y_np = rng.integers(0, 10, n)
    ds = TensorDataset(pt.asarray(x_np), pt.asarray(y_np))
    tds = tud.TensorDataset(torch.from_numpy(x_np), torch.from_numpy(y_np)) \
        if torch is not None else None
    print(f"\n(b) per-batch time, num_workers=0, TensorDataset of ({n}, {d}) float32 + ({n},) "
          f"int64")
    print(f"    {'':26s}{'polyten':>10s}{'torch':>10s}{'ratio':>8s}")
    for bs in (1, 64, 512):
        for shuffle in (False, True):
            ours = _per_batch(DataLoader(ds, batch_size=bs, shuffle=shuffle), repeat)
            theirs = _per_batch(tud.DataLoader(tds, batch_size=bs, shuffle=shuffle), repeat) \
                if torch is not None else float("nan")
            label = f"batch_size={bs}, shuffle={shuffle}"
            print(f"    {label:26s}{ours * 1e6:8.1f}us{theirs * 1e6:8.1f}us"
                  f"{ours / theirs:8.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    args = p.parse_args()
    bench_workers(args.quick)
    bench_overhead(args.quick)


if __name__ == "__main__":
    main()
