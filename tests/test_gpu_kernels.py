"""``scripts/gpu_kernels.py`` (a cuda step's GPU time kernel by kernel, for a device machine):
its table from profiler events, and its behaviour without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import gpu_kernels as gk  # noqa: E402


class _Span:
    def __init__(self, us):
        self.us = us

    def elapsed_us(self):
        return self.us


def _event(name, us, attr="self_device_time_total"):
    e = types.SimpleNamespace(name=name, time_range=_Span(us))
    setattr(e, attr, us)
    return e


def test_kernel_table_sums_per_step_most_time_first():
    """Per step over 2 steps: kernel counts and device time, names ranked by time."""
    events = [_event("gemm", 40.0), _event("relu", 5.0), _event("gemm", 60.0),
              _event("relu", 5.0), _event("copy", 30.0), _event("relu", 10.0)]
    n, us, rows = gk.kernel_table(events, steps=2)
    assert n == 3.0 and us == 75.0
    assert rows == [("gemm", 50.0, 1.0), ("copy", 15.0, 0.5), ("relu", 10.0, 1.5)]
    assert gk.kernel_table([], steps=3) == (0.0, 0.0, [])


def test_device_time_of_each_torch_naming():
    """``self_device_time_total`` (PyTorch >= 2.4), ``self_cuda_time_total`` (before), and
    the event's time range where the property gives 0."""
    assert gk.device_us(_event("k", 12.5)) == 12.5
    assert gk.device_us(_event("k", 7.0, attr="self_cuda_time_total")) == 7.0
    e = _event("k", 0.0)
    e.time_range = _Span(3.0)
    assert gk.device_us(e) == 3.0
    assert gk.device_us(types.SimpleNamespace(name="k")) == 0.0


def test_short_names_and_kernel_filter():
    long = "sm90_xmma_gemm_f32f32_tf32f32_f32_nt_n_tilesize128x128x32" * 3
    assert len(gk.short(long)) == 96 and gk.short(long).endswith("...")
    assert gk.short("relu") == "relu"
    cuda, cpu = object(), object()
    assert gk.is_kernel(types.SimpleNamespace(device_type=cuda), cuda)
    assert not gk.is_kernel(types.SimpleNamespace(device_type=cpu), cuda)


def test_report_prints_the_share_of_the_step(capsys):
    gk.report("cnn polyten", 2.0, [_event("gemm", 600.0), _event("relu", 400.0)], 1, top=1)
    out = capsys.readouterr().out
    assert "2 kernels per step" in out and "1.000 ms of kernel time" in out
    assert "(50% of the step)" in out and "gemm" in out and "relu" not in out
    gk.report("cnn torch", 1.0, [], 1, top=5)
    assert "recorded no kernel" in capsys.readouterr().out


def test_without_a_gpu_it_says_so_and_succeeds():
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gpu_kernels.py"),
                        "cnn", "--steps", "1"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "needs a GPU" in r.stdout and "nothing measured" in r.stdout
