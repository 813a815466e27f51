"""Where a cuda training step spends its GPU time, kernel by kernel (run on a device machine).

``bench_cuda.py`` gives a step's synchronised time and the host's time to queue it; this
script says what the GPU does meanwhile.  Per case (default: the steps still above their
target, ``cnn``, ``transformer``, ``mlp_bf16``), polyten's step and then PyTorch's run under
``torch.profiler`` with CUDA activity: CUPTI records every kernel the process launches,
whichever library launched it (CuPy's RawKernels, ElementwiseKernels, cuBLAS's GEMMs,
PyTorch's own), with its device time.  Printed per side: kernels per step, their summed
device time per step against the synchronised step time (near 1: the GPU is the limit; far
below: the host is), and the kernels that take the most device time, with their counts --
so a slow kernel (a GEMM that runs on a few SMs without split-K, a copy nobody needed) shows
by name.

Usage: python scripts/gpu_kernels.py [case ...] [--steps N] [--top K]

Without a GPU (or without PyTorch) it says so and exits with status 0: nothing to measure.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))


def kernel_table(events, steps: int):
    """``(kernels per step, device us per step, [(name, us per step, count per step)])`` of
    the CUDA kernel ``events`` (objects with ``name`` and a self device time in us, as
    ``torch.profiler``'s ``FunctionEvent``) of ``steps`` steps, most device time first."""
    total = collections.Counter()
    count = collections.Counter()
    for e in events:
        total[e.name] += device_us(e)
        count[e.name] += 1
    rows = [(name, us / steps, count[name] / steps) for name, us in total.most_common()]
    return sum(count.values()) / steps, sum(total.values()) / steps, rows


def device_us(event) -> float:
    """A device event's time in microseconds: its own device time (``self_device_time_total``
    since PyTorch 2.4, ``self_cuda_time_total`` before), else the length of its time range
    (what that property returns for a device event)."""
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        v = getattr(event, attr, None)
        if v:
            return float(v)
    span = getattr(event, "time_range", None)
    return float(span.elapsed_us()) if span is not None else 0.0


def is_kernel(event, cuda_type) -> bool:
    """Whether a profiler event is work on the GPU (a kernel, a memcpy / memset) rather than
    a host-side call."""
    return getattr(event, "device_type", None) == cuda_type


def short(name: str, width: int = 96) -> str:
    """A kernel name cut to ``width`` (template arguments make cuBLAS's names long)."""
    return name if len(name) <= width else name[:width - 3] + "..."


def profile(step, sync, steps: int):
    """``(synchronised ms per step, kernel events)`` of ``steps`` steps of ``step``."""
    import torch
    for _ in range(3):  # warm: lazily built kernels, the memory pool, cuBLAS's workspace
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    ms = (time.perf_counter() - t0) * 1e3 / steps
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync()
    cuda = torch.autograd.DeviceType.CUDA
    return ms, [e for e in prof.events() if is_kernel(e, cuda)]


def report(label: str, ms: float, events, steps: int, top: int) -> None:
    n, us, rows = kernel_table(events, steps)
    if not events:
        print(f"{label}: {ms:.3f} ms per step; CUPTI recorded no kernel (nothing to break "
              "down)", flush=True)
        return
    print(f"{label}: {ms:.3f} ms per step (synchronised), {n:.0f} kernels per step, "
          f"{us / 1e3:.3f} ms of kernel time per step ({us / 1e3 / ms:.0%} of the step)",
          flush=True)
    for name, k_us, k_n in rows[:top]:
        print(f"    {k_us:9.1f} us  x{k_n:<5.1f} {short(name)}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", default=["cnn", "transformer", "mlp_bf16"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_kernels: needs PyTorch (its profiler reads the GPU's kernel times)")
        return 0
    import polyten as pt
    if not (torch.cuda.is_available() and pt.cuda.is_available()):
        print("gpu_kernels: needs a GPU with PyTorch CUDA and polyten's cuda backend "
              f"(torch.cuda: {torch.cuda.is_available()}, polyten.cuda: "
              f"{pt.cuda.is_available()}); nothing measured")
        return 0
    import bench_cuda as bc
    for case in args.cases:
        pstep, tstep, desc = bc._step_pair(case, True)
        ms, events = profile(pstep, pt.cuda.synchronize, args.steps)
        report(f"{case} polyten ({desc})", ms, events, args.steps, args.top)
        if tstep is not None:
            ms, events = profile(tstep, torch.cuda.synchronize, args.steps)
            report(f"{case} torch", ms, events, args.steps, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
