"""CUDA: polyten (cuda backend, CuPy) vs PyTorch CUDA vs raw CuPy, side by side in one process.

Cases
-----
* ``matmul``: large square matmuls (float32, float32 with TensorFloat-32, float16, bfloat16
  where CuPy stores it -- polyten multiplies bfloat16 in float32, CuPy natively): TFLOP/s of
  polyten, raw CuPy and torch;
  target: polyten >= 95 % of raw CuPy.
* ``digits``: one training step of the digits MLP (64-128-10, batch 64, Adam, cross-entropy).
* ``mlp``: a larger MLP (1024-4096-4096-1000, batch 2048, Adam, cross-entropy).
* ``cnn``: a CNN on 3x32x32 images (conv 3->64->128 with ReLU and max-pool, linear, batch 256,
  SGD with momentum, cross-entropy); float32 convolutions in TensorFloat-32 on both sides
  (both libraries' default ``backends.cudnn.allow_tf32``; the header line shows the flags).
  ``cnn_ieee`` (any step with ``_ieee``): the same with ``allow_tf32 = False`` on both sides.
  Target for the training steps: polyten <= 1.3x PyTorch CUDA's time.
* ``transformer``: a small language-model step (embedding 1000x256, two pre-norm
  ``TransformerEncoderLayer``s with 4 heads, GELU and dropout 0.1, a 1000-way head; batch
  32 x 64 tokens, AdamW and ``clip_grad_norm_(1.0)``, cross-entropy over the tokens):
  LayerNorm, attention, GELU, dropout, gradient clipping.
* ``mlp_amp``, ``cnn_amp`` (and ``digits_amp``, ``transformer_amp``): the same steps in mixed
  precision (``autocast`` + ``GradScaler`` on both sides): float16 matmuls and convolutions,
  float32 parameters and losses.  polyten's GradScaler reads nothing on the host (the
  optimizers skip overflowed steps on the device); torch's, with its default (foreach)
  optimizers, reads one flag per step.
* ``mlp_bf16``, ``transformer_bf16`` (any step with ``_bf16``): autocast with
  ``dtype=bfloat16`` and no GradScaler (bfloat16 has float32's range), on both sides; polyten
  runs its fused kernels on bfloat16 (computed in float32), torch natively.
* ``mlp_bf16w``, ``transformer_bf16w`` (any step with ``_bf16w``): the model and its float
  inputs in bfloat16, no autocast (bfloat16 fine-tuning): bfloat16 parameters, gradients and
  optimizer states; polyten's optimizer steps are its multi-tensor kernels on bfloat16.
* ``rows``: softmax, cross-entropy, LayerNorm and BatchNorm2d, one launch each way on polyten
  (``polyten_cuda.rows``): forward against torch and against the same forward composed of raw
  CuPy reductions and elementwise calls, and forward + backward against torch.
* ``sums``: the bias gradients' sums (a Linear's column sums, a convolution's channel
  sums) as polyten's row kernels against CuPy's ``sum`` and torch's, synchronised and host
  time.
* ``convk``: the convolution's own kernels (im2col, product grid to output, output gradient
  to grid, col2im) on the bench CNN's layers: time and GB/s against a CuPy copy of as many
  bytes; and the weight gradient's GEMM (small output, long K) as one GEMM, split-K by hand
  and torch's cuDNN weight gradient.
* ``attention``: ``scaled_dot_product_attention`` forward + backward (the bench transformer's
  heads and a 1024-token sequence; float32, float16, float16 causal): polyten's op against the
  same attention composed of polyten ops and torch's SDPA, synchronised and host time.
* ``random``: polyten's Philox draws (uniform, normal) and dropout forward + backward against
  CuPy's generator (curand) and torch's, as times and GB/s written.
* ``overhead``: host microseconds per call on tiny arrays -- CuPy's ``a + b``, a fused
  ``ElementwiseKernel``, a multi-tensor ``RawKernel`` step, polyten's ``a + b`` and torch's --
  the per-launch cost that bounds a small model's step.
* ``sync``: does a training step wait for the GPU?  A kernel spinning for one second is queued
  first; a step that returns before the spin ends (host clock, and the spin's event not done)
  never synchronised -- any device-to-host read, stream/device sync or pageable host-to-device
  copy would have waited for it.  Checked with an MSE loss, with cross-entropy, and with
  cross-entropy under autocast + GradScaler.

Times are medians over repeats, each measured between ``synchronize()`` calls (the work is
queued asynchronously).  Synthetic data, sized to keep the GPU busy.

Run (GPU only):  python benchmarks/bench_cuda.py [--quick] [--cases matmul,mlp] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np

import polyten as pt


def _need_gpu():
    if not pt.cuda.is_available():
        info = {b.name: b for b in pt.backends()}.get("cuda")
        reason = info.reason if info is not None else "the polyten-cuda plugin is not installed"
        print(f"bench_cuda: needs a GPU with the cuda backend; it is unavailable here: "
              f"{reason}", file=sys.stderr)
        raise SystemExit(2)


def _timeit(fn, sync, repeat, number=1, queue_only=False):
    """Median seconds per call of ``fn``, synchronised after each batch of ``number`` calls;
    ``queue_only``: the host's time to *queue* them (the clock stops before the sync; the GPU
    catches up after it) -- next to the synchronised time, a step whose host time is about its
    synchronised time is host-bound (launch overhead), one well below it is bound by the GPU."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if not queue_only:
            sync()
        times.append((time.perf_counter() - t0) / number)
        sync()
    return statistics.median(times)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


# ------------------------------------------------------------------------------ matmul ----
def bench_matmul(quick, size=None):
    import cupy
    torch = _torch()
    rows = []
    n = size or (4096 if quick else 8192)
    cases = [("float32", "highest"), ("float32", "high"), ("float16", "highest")]
    if "bfloat16" in pt.device("cuda").backend.dtypes:  # CuPy 14 with ml_dtypes
        cases.append(("bfloat16", "highest"))
    for dtype, precision in cases:
        pa = pt.from_dlpack(cupy.random.standard_normal((n, n), dtype="float32"))
        pb = pt.from_dlpack(cupy.random.standard_normal((n, n), dtype="float32"))
        pa, pb = pa.to(getattr(pt, dtype)), pb.to(getattr(pt, dtype))
        a, b = pa._data, pb._data  # the same device arrays, as raw CuPy sees them
        sync = cupy.cuda.Device().synchronize
        flops = 2 * n ** 3
        # "high": TensorFloat-32 for float32 products, in polyten (CuPy's cuBLAS compute type,
        # so the raw CuPy column gets it too) and in torch
        pt.set_float32_matmul_precision(precision)
        try:
            t_pt = _timeit(lambda: pa @ pb, sync, 5 if quick else 10, 3)
            t_cp = _timeit(lambda: a @ b, sync, 5 if quick else 10, 3)
            t_th = float("nan")
            if torch is not None:
                torch.backends.cuda.matmul.allow_tf32 = precision == "high"
                ta = torch.from_dlpack(pa.float()._data).to(getattr(torch, dtype))
                tb = torch.from_dlpack(pb.float()._data).to(getattr(torch, dtype))
                t_th = _timeit(lambda: ta @ tb, torch.cuda.synchronize, 5 if quick else 10, 3)
        finally:
            pt.set_float32_matmul_precision("highest")
            if torch is not None:
                torch.backends.cuda.matmul.allow_tf32 = False
        label = f"{dtype} tf32" if precision == "high" else dtype
        rows.append({"case": f"matmul {label} {n}x{n}", "polyten_tflops": flops / t_pt / 1e12,
                     "cupy_tflops": flops / t_cp / 1e12, "torch_tflops": flops / t_th / 1e12,
                     "polyten_vs_cupy": t_cp / t_pt})
    rows += _bench_batched(quick, cases, torch, size)
    return rows


def _bench_batched(quick, cases, torch, size=None):
    """Attention scores ``q @ k.mT``: (batch*heads, T, 64) by a transposed view, the product
    polyten_cuda.gemm sends to cuBLAS as one strided-batched GEMM; raw ``cupy.matmul`` of the
    same arrays (it copies the transposed operand; before cupy/cupy#10317 it also casts
    float16 to float32 and raises on bfloat16: nan then) and torch.  ``size``: T of a tiny
    smoke run."""
    import cupy
    sync = cupy.cuda.Device().synchronize
    bh, t, d = (2, size, 16) if size else (64, 1024, 64) if quick else (128, 2048, 64)
    flops = 2 * bh * t * t * d
    rows = []
    for dtype, precision in cases:
        if precision != "highest":
            continue
        q = pt.from_dlpack(cupy.random.standard_normal((bh, t, d), dtype="float32"))
        k = pt.from_dlpack(cupy.random.standard_normal((bh, t, d), dtype="float32"))
        q, k = q.to(getattr(pt, dtype)), k.to(getattr(pt, dtype))
        a, b = q._data, k._data
        t_pt = _timeit(lambda: q @ k.mT, sync, 5 if quick else 10, 3)
        try:
            t_cp = _timeit(lambda: a @ b.swapaxes(-1, -2), sync, 5 if quick else 10, 3)
        except Exception as e:  # noqa: BLE001 - CuPy's own limitation, reported as nan
            print(f"    cupy.matmul, batched {dtype}: {type(e).__name__}: {e}")
            t_cp = float("nan")
        t_th = float("nan")
        if torch is not None:
            tq = torch.from_dlpack(q.float()._data).to(getattr(torch, dtype))
            tk = torch.from_dlpack(k.float()._data).to(getattr(torch, dtype))
            t_th = _timeit(lambda: tq @ tk.mT, torch.cuda.synchronize, 5 if quick else 10, 3)
        rows.append({"case": f"bmm {dtype} {bh}x({t}x{d} @ {d}x{t}) q@k.mT",
                     "polyten_tflops": flops / t_pt / 1e12, "cupy_tflops": flops / t_cp / 1e12,
                     "torch_tflops": flops / t_th / 1e12, "polyten_vs_cupy": t_cp / t_pt})
    return rows


# ----------------------------------------------------------------------- training steps ----
def _mlp(nnmod, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nnmod.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nnmod.ReLU())
    return nnmod.Sequential(*layers)


def _cnn(nnmod, flatten):
    return nnmod.Sequential(
        nnmod.Conv2d(3, 64, 3, padding=1), nnmod.ReLU(), nnmod.MaxPool2d(2),
        nnmod.Conv2d(64, 128, 3, padding=1), nnmod.ReLU(), nnmod.MaxPool2d(2),
        flatten(), nnmod.Linear(128 * 8 * 8, 10))


# precision modes of the training steps, by case suffix
_MODES = {"_ieee": "float32 convolutions without TF32", "_amp": "autocast + GradScaler",
          "_bf16": "autocast bfloat16",
          "_bf16w": "bfloat16 weights"}


def _split_mode(case):
    """``("mlp", "_amp")`` for ``"mlp_amp"``; ``(case, None)`` without a mode suffix."""
    for suffix in sorted(_MODES, key=len, reverse=True):
        if case.endswith(suffix):
            return case[:-len(suffix)], suffix
    return case, None


def _make_step(lib, mode, opt, loss_fn, clip=None):
    """One training step in ``lib`` (polyten or torch): plain float32 (``mode`` None, and
    ``"_ieee"``, whose flags :func:`bench_steps` sets), autocast float16 with a GradScaler
    (``"_amp"``), or autocast bfloat16 without one (``"_bf16"``: bfloat16 has float32's
    range), or a model already in bfloat16 (``"_bf16w"``, no autocast); ``clip()`` clips the
    unscaled gradients."""
    scaler = lib.amp.GradScaler("cuda")
    low = lib.bfloat16 if mode == "_bf16" else lib.float16

    def step():
        opt.zero_grad()
        if mode in (None, "_bf16w", "_ieee"):
            loss = loss_fn()
        else:
            with lib.autocast("cuda", dtype=low):
                loss = loss_fn()
        if mode != "_amp":
            loss.backward()
            if clip is not None:
                clip()
            opt.step()
            return
        scaler.scale(loss).backward()
        if clip is not None:
            scaler.unscale_(opt)
            clip()
        scaler.step(opt)
        scaler.update()
    return step


def _weights(lib, mode):
    """The parameters' (and float inputs') dtype of a step: bfloat16 for ``"_bf16w"``."""
    return lib.bfloat16 if mode == "_bf16w" else lib.float32


def _step_pair(case, quick):
    """(polyten step, torch step or None, description)."""
    torch = _torch()
    case, mode = _split_mode(case)
    if case == "transformer":
        return _transformer_pair(mode, quick, torch)
    if case == "digits":
        sizes, batch, opt = (64, 128, 10), 64, "adam"
        xshape = (batch, 64)
    elif case == "mlp":
        sizes, batch, opt = (1024, 4096, 4096, 1000), 512 if quick else 2048, "adam"
        xshape = (batch, 1024)
    else:
        sizes, batch, opt = None, 64 if quick else 256, "sgd"
        xshape = (batch, 3, 32, 32)
    classes = 10 if sizes is None else sizes[-1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xshape).astype(np.float32)
    y = rng.integers(0, classes, size=(batch,))

    def make_opt(lib, params):
        if opt == "adam":
            return lib.optim.Adam(params, lr=1e-3)
        return lib.optim.SGD(params, lr=0.01, momentum=0.9)

    desc = f"{case} (batch {batch}, {opt}{', ' + _MODES[mode] if mode else ''})"
    pmodel = (_mlp(pt.nn, sizes) if sizes else _cnn(pt.nn, pt.nn.Flatten)).to(
        device="cuda", dtype=_weights(pt, mode))
    px = pt.tensor(x, device="cuda", dtype=_weights(pt, mode))
    py = pt.tensor(y, device="cuda")
    pstep = _make_step(pt, mode, make_opt(pt, pmodel.parameters()),
                       lambda: pt.nn.functional.cross_entropy(pmodel(px), py))
    if torch is None:
        return pstep, None, desc
    tmodel = (_mlp(torch.nn, sizes) if sizes else _cnn(torch.nn, torch.nn.Flatten)).to(
        device="cuda", dtype=_weights(torch, mode))
    tx = torch.tensor(x, device="cuda", dtype=_weights(torch, mode))
    ty = torch.tensor(y, device="cuda")
    tstep = _make_step(torch, mode, make_opt(torch, tmodel.parameters()),
                       lambda: torch.nn.functional.cross_entropy(tmodel(tx), ty))
    return pstep, tstep, desc


def _lm(nnmod, vocab=1000, d=256):
    class LM(nnmod.Module):
        def __init__(self):
            super().__init__()
            self.emb = nnmod.Embedding(vocab, d)
            # dropout 0.1, PyTorch's default: both sides draw masks (torch's fused dropout,
            # polyten's one-launch Philox dropout)
            layer = nnmod.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.1, activation="gelu",
                                                  batch_first=True, norm_first=True)
            self.enc = nnmod.TransformerEncoder(layer, 2)
            self.head = nnmod.Linear(d, vocab)

        def forward(self, tokens):
            return self.head(self.enc(self.emb(tokens)))
    return LM()


def _transformer_pair(mode, quick, torch):
    batch, seq, vocab = (16 if quick else 32), 64, 1000
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab, size=(batch, seq))
    targets = rng.integers(0, vocab, size=(batch * seq,))
    desc = (f"transformer (batch {batch}x{seq}, adamw, clip"
            f"{', ' + _MODES[mode] if mode else ''})")

    def make(lib, model, x, y):
        F = lib.nn.functional
        return _make_step(lib, mode, lib.optim.AdamW(model.parameters(), lr=1e-3),
                          lambda: F.cross_entropy(model(x).reshape(-1, vocab), y),
                          clip=lambda: lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0))

    pstep = make(pt, _lm(pt.nn).to(device="cuda", dtype=_weights(pt, mode)),
                 pt.tensor(tokens, device="cuda"), pt.tensor(targets, device="cuda"))
    if torch is None:
        return pstep, None, desc
    tstep = make(torch, _lm(torch.nn).to(device="cuda", dtype=_weights(torch, mode)),
                 torch.tensor(tokens, device="cuda"), torch.tensor(targets, device="cuda"))
    return pstep, tstep, desc


def bench_steps(cases, quick):
    torch = _torch()
    rows = []
    for case in cases:
        pstep, tstep, desc = _step_pair(case, quick)
        repeat = 5 if quick else 15
        number = 20 if case == "digits" else 3
        ieee = _split_mode(case)[1] == "_ieee"
        libs = [lib for lib in (pt, torch) if lib is not None]
        before = [lib.backends.cudnn.allow_tf32 for lib in libs]
        for lib in libs:  # "_ieee": both sides' convolutions float32 throughout
            lib.backends.cudnn.allow_tf32 = lib.backends.cudnn.allow_tf32 and not ieee
        try:
            t_pt = _timeit(pstep, pt.cuda.synchronize, repeat, number)
            h_pt = _timeit(pstep, pt.cuda.synchronize, repeat, number, queue_only=True)
            t_th = h_th = float("nan")
            if tstep is not None:
                t_th = _timeit(tstep, torch.cuda.synchronize, repeat, number)
                h_th = _timeit(tstep, torch.cuda.synchronize, repeat, number, queue_only=True)
        finally:
            for lib, flag in zip(libs, before):
                lib.backends.cudnn.allow_tf32 = flag
        rows.append({"case": f"train step {desc}", "polyten_ms": t_pt * 1e3,
                     "torch_ms": t_th * 1e3, "polyten_over_torch": t_pt / t_th,
                     "polyten_host_ms": h_pt * 1e3, "torch_host_ms": h_th * 1e3})
    return rows


# ----------------------------------------------------------------------------- attention ----
def bench_attention(quick):
    """scaled_dot_product_attention forward + backward (no mask, causal or not): polyten's
    op (two GEMMs and a row kernel forward, four and one backward) against the same attention
    composed of polyten ops (what ran before the op existed) and torch's SDPA (its fused
    flash / memory-efficient kernels), synchronised and host time to queue."""
    torch = _torch()
    F = pt.nn.functional
    rows = []
    repeat, number = (5, 5) if quick else (15, 10)
    # the bench transformer's heads (batch 16, 4 heads, 64 tokens, 64 features), and a
    # longer sequence
    for shape in ((16, 4, 64, 64), (4, 8, 1024, 64)):
        for dtype, causal in (("float32", False), ("float16", False), ("float16", True)):
            rng = np.random.default_rng(0)
            arrays = [rng.standard_normal(shape).astype(dtype) for _ in range(4)]
            q, k, v = (pt.tensor(a, device="cuda", requires_grad=True) for a in arrays[:3])
            g = pt.tensor(arrays[3], device="cuda")
            scale = 1.0 / math.sqrt(shape[-1])
            keep = pt.tril(pt.ones(shape[-2], shape[-2], dtype=pt.bool, device="cuda"))

            def fused():
                F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(g)

            def composed():
                s = q @ k.mT * scale
                if causal:
                    s = s.masked_fill(~keep, float("-inf"))
                (F.softmax(s, -1) @ v).backward(g)

            fns = [("polyten op", fused, pt.cuda.synchronize),
                   ("polyten composed ops", composed, pt.cuda.synchronize)]
            if torch is not None:
                tq, tk, tv = (torch.tensor(a, device="cuda", requires_grad=True)
                              for a in arrays[:3])
                tg = torch.tensor(arrays[3], device="cuda")
                fns.append(("torch", lambda: torch.nn.functional.scaled_dot_product_attention(
                    tq, tk, tv, is_causal=causal).backward(tg), torch.cuda.synchronize))
            row = {"case": f"attention fwd+bwd {shape} {dtype}{' causal' if causal else ''}"}
            for name, fn, sync in fns:
                row[f"{name} ms"] = _timeit(fn, sync, repeat, number) * 1e3
                row[f"{name} host ms"] = _timeit(fn, sync, repeat, number,
                                                 queue_only=True) * 1e3
            if torch is not None:
                row["polyten_over_torch"] = row["polyten op ms"] / row["torch ms"]
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------ overhead ----
def bench_overhead(quick):
    """Host microseconds per call on tiny (64-element) float32 arrays: where a small model's
    step time goes.  Each loop queues ``n`` calls and synchronises once, so the figure is the
    host cost of a launch (the GPU work is far shorter)."""
    import cupy
    from polyten_cuda import fused_src, multi_tensor
    torch = _torch()
    n = 2000 if quick else 10000
    a = cupy.ones(64, dtype="float32")
    b = cupy.ones(64, dtype="float32")
    pa, pb = pt.from_dlpack(a), pt.from_dlpack(b)
    src = fused_src.ELEMENTWISE["relu_backward"]
    ew = cupy.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name,
                                preamble=fused_src.PREAMBLE)
    adam = fused_src.ELEMENTWISE["adam_step"]
    step = multi_tensor.MultiTensorStep(cupy, adam, None)
    state = [cupy.zeros(64, dtype="float32") for _ in range(4)]
    call = (state[0], 0.9, 0.1, 0.999, 0.01, 1e-8, -1e-3, 0.0, 1.0, False, False,
            state[1], state[2], state[3])
    # a Linear's forward: CuPy's general matmul and an add (what polyten ran before
    # polyten_cuda.linear), against polyten's (one GEMM, the bias its C) and torch's addmm
    x, w, bias = (cupy.ones(s, dtype="float32") for s in ((8, 64), (64, 64), (64,)))
    px, pw, pbias = (pt.from_dlpack(v) for v in (x, w, bias))
    linear = pt.nn.functional.linear
    cases = [("cupy a + b", lambda: a + b),
             ("cupy ElementwiseKernel (fused relu_backward)", lambda: ew(a, b)),
             ("cupy RawKernel (multi-tensor Adam, 1 tensor)", lambda: step([call])),
             ("polyten a + b", lambda: pa + pb),
             ("cupy x @ w.T + b (8x64, 64x64)", lambda: x @ w.T + bias),
             ("polyten linear (8x64, 64x64, bias)", lambda: linear(px, pw, pbias))]
    if torch is not None:
        ta, tb = torch.ones(64, device="cuda"), torch.ones(64, device="cuda")
        tx, tw, tbias = (torch.ones(s, device="cuda") for s in ((8, 64), (64, 64), (64,)))
        cases += [("torch a + b", lambda: ta + tb),
                  ("torch linear (8x64, 64x64, bias)",
                   lambda: torch.nn.functional.linear(tx, tw, tbias))]
    sync = cupy.cuda.Device().synchronize
    rows = []
    for name, fn in cases:
        t = _timeit(fn, sync, 5, n)
        rows.append({"case": f"host cost per call: {name}", "us": t * 1e6})
    rows.extend(_allocation_cost(cupy, sync, n))
    return rows


def _allocation_cost(cupy, sync, n):
    """An allocation through polyten's peak-tracking allocator (a Python function around
    the pool that reads ``used_bytes()``, which some CuPy versions compute by walking every
    live block) against CuPy's pool directly, with 64 and 4096 arrays alive: the price of
    ``polyten.cuda.max_memory_allocated``."""
    tracked = cupy.cuda.get_allocator()
    plain = cupy.get_default_memory_pool().malloc
    rows = []
    for live in (64, 4096):
        keep = [cupy.empty(64, dtype="float32") for _ in range(live)]
        for name, alloc in (("CuPy's pool", plain), ("polyten's peak tracker", tracked)):
            cupy.cuda.set_allocator(alloc)
            try:
                t = _timeit(lambda: cupy.empty(64, dtype="float32"), sync, 5, n)
            finally:
                cupy.cuda.set_allocator(tracked)
            rows.append({"case": f"host cost per allocation ({live} arrays alive): {name}",
                         "us": t * 1e6})
        del keep
    return rows


# ---------------------------------------------------------------------------------- rows ----
_ROW_CASES = (("softmax", (8192, 64)), ("softmax", (2048, 1000)), ("softmax", (64, 32000)),
              ("softmax", (1, 256000)),  # a language model's logits at batch 1: row chunks
              ("cross_entropy", (2048, 1000)), ("layer_norm", (4096, 256)),
              ("layer_norm", (2048, 4096)), ("batch_norm", (64, 64, 32, 32)),
              ("batch_norm", (256, 64, 32, 32)))  # the last in row chunks (rows.channel_chunks)
_ROW_CASES_TINY = (("softmax", (8, 64)), ("softmax", (2, 1500)), ("cross_entropy", (8, 100)),
                   ("layer_norm", (8, 32)), ("batch_norm", (4, 3, 4, 4)))


def _row_fns(lib, op, shape, x, target):
    """``(forward, loss)`` closures of ``op`` for ``lib`` (polyten or torch): ``forward()``
    the op's output, ``loss(y)`` a scalar whose backward runs the op's backward."""
    nn = lib.nn
    if op == "softmax":
        return (lambda: lib.softmax(x, -1)), (lambda y: (y * y).sum())
    if op == "cross_entropy":
        return (lambda: nn.functional.cross_entropy(x, target)), (lambda y: y)
    layer = (nn.LayerNorm(shape[-1]) if op == "layer_norm" else nn.BatchNorm2d(shape[1]))
    layer = layer.to("cuda")
    return (lambda: layer(x)), (lambda y: (y * y).sum())


def _cupy_composed(cupy, op, c, t):
    """The forward as raw CuPy calls (reductions, then elementwise passes): what the row
    kernels replace."""
    if op in ("softmax", "cross_entropy"):
        m = c.max(-1, keepdims=True)
        e = cupy.exp(c - m)
        if op == "softmax":
            return e / e.sum(-1, keepdims=True)
        logp = (c - m) - cupy.log(e.sum(-1, keepdims=True))
        return -cupy.take_along_axis(logp, t[:, None], -1).mean()
    axes = -1 if op == "layer_norm" else (0, 2, 3)
    mu = c.mean(axes, keepdims=True)
    var = ((c - mu) ** 2).mean(axes, keepdims=True)
    return (c - mu) / cupy.sqrt(var + 1e-5)


def bench_rows(quick, tiny=False):
    """softmax, cross-entropy, LayerNorm and BatchNorm2d (training) in float32, whose
    forward and backward are one launch each on polyten's cuda backend (``rows.py``): forward
    time against torch and against the same forward composed of raw CuPy calls, and forward +
    backward against torch."""
    import cupy
    torch = _torch()
    repeat, number = (5, 5) if quick else (15, 20)
    sync = pt.cuda.synchronize
    rng = np.random.default_rng(0)
    rows = []
    for op, shape in (_ROW_CASES_TINY if tiny else _ROW_CASES):
        xn = rng.standard_normal(shape).astype("float32")
        tn = rng.integers(0, shape[-1], shape[0])
        times = {}
        for name, lib in (("polyten", pt), ("torch", torch)):
            if lib is None:
                times[name] = (float("nan"), float("nan"))
                continue
            if lib is pt:
                x = pt.tensor(xn, device="cuda", requires_grad=True)
                t = pt.tensor(tn, device="cuda")
            else:
                x = torch.tensor(xn, device="cuda", requires_grad=True)
                t = torch.tensor(tn, device="cuda")
            fwd, loss = _row_fns(lib, op, shape, x, t)

            def both(fwd=fwd, loss=loss, x=x):
                x.grad = None
                loss(fwd()).backward()

            times[name] = (_timeit(fwd, sync, repeat, number), _timeit(both, sync, repeat,
                                                                        number))
        c, ct = cupy.asarray(xn), cupy.asarray(tn)
        t_cp = _timeit(lambda: _cupy_composed(cupy, op, c, ct), sync, repeat, number)
        label = f"rows {op} {'x'.join(map(str, shape))}"
        (pf, pb), (tf, tb) = times["polyten"], times["torch"]
        rows.append({"case": f"{label} forward", "polyten_us": pf * 1e6, "torch_us": tf * 1e6,
                     "cupy_composed_us": t_cp * 1e6, "polyten_over_torch": pf / tf,
                     "polyten_over_cupy_composed": pf / t_cp})
        rows.append({"case": f"{label} forward+backward", "polyten_us": pb * 1e6,
                     "torch_us": tb * 1e6, "polyten_over_torch": pb / tb})
    return rows


# ---------------------------------------------------------------------------------- sums ----
# (kind, shape): a Linear's bias gradient (column sums of (rows, features): the bench
# transformer's, the MLP's, a tall narrow one that polyten leaves to CuPy's sum) and a
# convolution's (channel sums of (N, C, H, W): the bench CNN's two, few channels of a large
# image)
_SUM_CASES = (("column", (1024, 256)), ("column", (2048, 4096)), ("column", (65536, 16)),
              ("column", (16384, 768)), ("channel", (64, 64, 32, 32)),
              ("channel", (256, 64, 32, 32)), ("channel", (256, 128, 16, 16)),
              ("channel", (16, 3, 256, 256)))
# the second column case is past COLUMN_SUM_ROWS: its rows are cut into chunks (two launches)
_SUM_CASES_TINY = (("column", (40, 70)), ("column", (9000, 40)), ("channel", (2, 3, 5, 5)))


def bench_sums(quick, tiny=False):
    """The bias gradients' sums, float32: polyten's row kernels (``Rows.column_sum`` /
    ``Rows.channel_sum``, one ``RawKernel`` launch each -- two for a column sum of more than
    ``COLUMN_SUM_ROWS`` rows, cut into row chunks -- the training steps' path) against
    CuPy's ``sum`` (a reduction call: what the steps called before) and torch's, synchronised
    and the host's time to queue one (the reduction call's host work is what the kernels
    avoid; whether they are also as fast on the GPU is what this measures)."""
    import cupy
    from polyten_cuda.rows import Rows
    torch = _torch()
    rows_k = Rows(cupy)
    repeat, number = (5, 10) if quick else (15, 20)
    sync = cupy.cuda.Device().synchronize
    rng = np.random.default_rng(0)
    out = []
    for kind, shape in (_SUM_CASES_TINY if tiny else _SUM_CASES):
        xn = rng.standard_normal(shape).astype("float32")
        x = cupy.asarray(xn)
        if kind == "column":
            axes = (0,)
            ours = lambda x=x: rows_k.column_sum(x)  # noqa: E731
        else:
            axes = (0,) + tuple(range(2, len(shape)))
            n, c = shape[:2]
            x3 = x.reshape(n, c, -1)
            ours = lambda x3=x3: rows_k.channel_sum(x3)  # noqa: E731
        theirs = lambda x=x, axes=axes: x.sum(axis=axes)  # noqa: E731
        t_pt = _timeit(ours, sync, repeat, number)
        h_pt = _timeit(ours, sync, repeat, number, queue_only=True)
        t_cp = _timeit(theirs, sync, repeat, number)
        h_cp = _timeit(theirs, sync, repeat, number, queue_only=True)
        t_th = float("nan")
        if torch is not None:
            tx = torch.tensor(xn, device="cuda")
            t_th = _timeit(lambda: tx.sum(dim=axes), torch.cuda.synchronize, repeat, number)
        out.append({"case": f"sum {kind} {'x'.join(map(str, shape))}",
                    "polyten_us": t_pt * 1e6, "cupy_us": t_cp * 1e6, "torch_us": t_th * 1e6,
                    "polyten_host_us": h_pt * 1e6, "cupy_host_us": h_cp * 1e6,
                    "polyten_over_cupy": t_pt / t_cp, "polyten_over_torch": t_pt / t_th})
    return out


# --------------------------------------------------------------------------------- convk ----
# (N, C_in, H, W, C_out): the bench CNN's two 3x3 convolutions (padding 1) at batch 256
_CONVK_CASES = ((256, 3, 32, 32, 64), (256, 64, 16, 16, 128))
_CONVK_CASES_TINY = ((2, 3, 6, 5, 4),)


def bench_convk(quick, tiny=False):
    """The convolution's own kernels (``polyten_cuda.conv``: im2col, the product grid to the
    output with the bias, the output gradient to the grid, col2im of the input gradient),
    float32, on the bench CNN's layers: synchronised time and GB/s of the bytes each must
    read and write, against a CuPy copy of as many bytes (the memory system's limit for such
    a pass).  Near the copy's GB/s: bound by memory; far below: by the index arithmetic (the
    32-bit kernels divide by magic numbers, ``fused_src.DIVIDER``)."""
    import cupy
    from polyten_cpu.kernels.conv import _Geometry
    from polyten_cuda import conv as cuda_conv
    raw = cuda_conv.raw_kernels(cupy)
    im2col, col2im = cuda_conv.make_im2col(cupy, raw), cuda_conv.make_col2im(cupy, raw)
    from_grid, to_grid = cuda_conv.make_grid_kernels(cupy, raw)
    repeat, number = (5, 10) if quick else (15, 20)
    sync = cupy.cuda.Device().synchronize
    rng = np.random.default_rng(0)
    out = []
    for n, c, h, w, o in (_CONVK_CASES_TINY if tiny else _CONVK_CASES):
        pads = ((1, 1), (1, 1))
        geo = _Geometry((h + 2, w + 2), (h, w), (3, 3), (1, 1), (1, 1), flat_waste=1.0)
        x = cupy.asarray(rng.standard_normal((n, c, h, w), dtype=np.float32))
        cols = im2col(x, pads, geo, 1)
        res = cupy.asarray(rng.standard_normal((o, n * geo.L), dtype=np.float32))
        bias = cupy.asarray(rng.standard_normal(o, dtype=np.float32))
        g = cupy.asarray(rng.standard_normal((n, o, h, w), dtype=np.float32))
        y = from_grid(res, geo, n, bias, res.dtype)
        kernels = (("im2col", lambda: im2col(x, pads, geo, 1), x.nbytes + cols.nbytes),
                   ("from_grid", lambda: from_grid(res, geo, n, bias, res.dtype),
                    res.nbytes + y.nbytes),
                   ("to_grid", lambda: to_grid(g, geo, 1), g.nbytes + res.nbytes),
                   ("col2im", lambda: col2im(cols, geo, n, c, crop=((1, 1), (h, w))),
                    cols.nbytes + x.nbytes))
        for name, fn, moved in kernels:
            t = _timeit(fn, sync, repeat, number)
            src = cupy.empty(moved // 8, dtype=np.float32)
            dst = cupy.empty_like(src)
            t_copy = _timeit(lambda: cupy.copyto(dst, src), sync, repeat, number)
            gbps, copy_gbps = moved / t / 1e9, 2 * src.nbytes / t_copy / 1e9
            out.append({"case": f"conv kernel {name} {n}x{c}x{h}x{w} -> {o}",
                        "polyten_us": t * 1e6, "polyten_gbps": gbps, "copy_gbps": copy_gbps,
                        "fraction_of_copy": gbps / copy_gbps})
        out.extend(_bench_wgrad(cupy, to_grid(g, geo, 1), cols, g, x, repeat, number, sync))
    return out


def _bench_wgrad(cupy, grid, cols, g, x, repeat, number, sync):
    """A convolution's weight gradient ``grid @ cols^T`` ((O, N * L) @ (N * L, C * K), a small
    product over a long K): one strided-batched GEMM as the steps run it, against split-K by
    hand -- S GEMMs of K / S in one strided-batched call, then one column-sum launch of their
    float32 partials -- and torch's cuDNN weight gradient, in TF32 on all sides.  The
    training steps split as ``polyten_cuda.conv.split_k`` says (64 and 16 parts for the two
    layers here): these rows tell whether that beats cuBLAS's own choice for the shape."""
    from polyten_cuda import gemm as _gemm
    from polyten_cuda.rows import Rows
    bmm, rows_k = _gemm.build(cupy), Rows(cupy)
    torch = _torch()
    o, nl = grid.shape[1:]
    ck = cols.shape[1]
    cols2 = cols.reshape(ck, nl)
    n = x.shape[0]
    name = f"conv wgrad {'x'.join(map(str, x.shape))} -> {o} ({o}x{ck}, K={nl})"

    def one():
        return bmm(grid, cols.transpose(0, 2, 1), precision="high")

    def split(parts):
        a = grid.reshape(o, parts, nl // parts).transpose(1, 0, 2)
        b = cols2.reshape(ck, parts, nl // parts).transpose(1, 2, 0)
        return rows_k.column_sum(bmm(a, b, precision="high").reshape(parts, o * ck))

    ref = cupy.asnumpy(one()).reshape(o * ck).astype(np.float64)
    scale = max(float(np.abs(ref).max()), 1e-30)
    t_one = _timeit(one, sync, repeat, number)
    t_th = float("nan")
    if torch is not None:
        tx = torch.tensor(cupy.asnumpy(x), device="cuda")
        tg = torch.tensor(cupy.asnumpy(g), device="cuda")
        tw = torch.empty((o, x.shape[1], 3, 3), device="cuda")
        t_th = _timeit(lambda: torch.ops.aten.convolution_backward(
            tg, tx, tw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
            [False, True, False]), torch.cuda.synchronize, repeat, number)
    rows = [{"case": f"{name} one GEMM", "polyten_us": t_one * 1e6, "torch_us": t_th * 1e6,
             "polyten_over_torch": t_one / t_th}]
    for parts in [s for s in (4, 16, 64) if n % s == 0] or [n]:
        diff = np.abs(cupy.asnumpy(split(parts)).astype(np.float64) - ref).max() / scale
        t = _timeit(lambda parts=parts: split(parts), sync, repeat, number)
        rows.append({"case": f"{name} split-K {parts}", "polyten_us": t * 1e6,
                     "torch_us": t_th * 1e6, "polyten_over_torch": t / t_th,
                     "over_one_gemm": t / t_one, "max_diff_rel": diff})
    return rows


# -------------------------------------------------------------------------------- random ----
def bench_random(quick, size=None):
    """polyten's Philox kernels against CuPy's generator (curand XORWOW, state on the device)
    and torch's (Philox): uniform and normal float32 draws and a dropout forward + backward,
    as GB/s of output written (the bound is the GPU's memory bandwidth)."""
    import cupy
    torch = _torch()
    n = size or (1 << 24 if quick else 1 << 26)
    sync = cupy.cuda.Device().synchronize
    gen = cupy.random.default_rng(0)
    x = pt.randn(n, device="cuda").requires_grad_()
    g = pt.ones(n, device="cuda")
    F = pt.nn.functional
    repeat, number = (5, 3) if quick else (10, 5)
    cases = [("uniform float32", lambda: pt.rand(n, device="cuda"),
              lambda: gen.random(n, dtype="float32"),
              (lambda: torch.rand(n, device="cuda")) if torch else None, 4),
             ("normal float32", lambda: pt.randn(n, device="cuda"),
              lambda: gen.standard_normal(n, dtype="float32"),
              (lambda: torch.randn(n, device="cuda")) if torch else None, 4),
             ("dropout p=0.1 fwd+bwd float32", lambda: F.dropout(x, 0.1).backward(g), None,
              None, 12)]
    if torch is not None:
        tx = torch.randn(n, device="cuda", requires_grad=True)
        tg = torch.ones(n, device="cuda")
        cases[2] = cases[2][:3] + (lambda: torch.nn.functional.dropout(tx, 0.1).backward(tg),
                                   12)
    rows = []
    for name, f_pt, f_cp, f_th, bytes_per in cases:
        t_pt = _timeit(f_pt, sync, repeat, number)
        t_cp = _timeit(f_cp, sync, repeat, number) if f_cp else float("nan")
        t_th = _timeit(f_th, torch.cuda.synchronize, repeat, number) if f_th else float("nan")
        rows.append({"case": f"random {name} {n}", "polyten_ms": t_pt * 1e3,
                     "cupy_ms": t_cp * 1e3, "torch_ms": t_th * 1e3,
                     "polyten_gbps": n * bytes_per / t_pt / 1e9,
                     "polyten_vs_torch": t_pt / t_th})
    return rows


# ---------------------------------------------------------------------------------- sync ----
_SPIN = r"""
extern "C" __global__ void polyten_spin(long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
"""


def bench_sync():
    import cupy
    spin = cupy.RawKernel(_SPIN, "polyten_spin")
    rows = []
    for loss in ("mse", "cross_entropy", "cross_entropy, autocast + GradScaler"):
        pt.manual_seed(0)
        model = _mlp(pt.nn, (256, 512, 10)).to(device="cuda")
        opt = pt.optim.Adam(model.parameters(), lr=1e-3)
        x = pt.randn(512, 256, device="cuda")
        y = (pt.randn(512, 10, device="cuda") if loss == "mse"
             else pt.randint(0, 10, (512,), device="cuda"))
        F = pt.nn.functional
        amp = "GradScaler" in loss
        scaler = pt.amp.GradScaler("cuda", enabled=amp)

        def step():
            opt.zero_grad()
            with pt.autocast("cuda", enabled=amp):
                out = model(x)
                value = ((out - y) ** 2).mean() if loss == "mse" else F.cross_entropy(out, y)
            scaler.scale(value).backward()
            scaler.step(opt)
            scaler.update()
        step()
        pt.cuda.synchronize()
        spin((1,), (1,), (np.int64(1_000_000_000),))
        ev = cupy.cuda.Event()
        ev.record()
        t0 = time.perf_counter()
        step()
        host = time.perf_counter() - t0
        waited = ev.done
        pt.cuda.synchronize()
        rows.append({"case": f"host sync in an Adam step ({loss})",
                     "synchronised": bool(waited or host > 0.5), "host_s": host})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    p.add_argument("--cases", default="matmul,overhead,random,rows,sums,convk,attention,"
                                      "digits,mlp,"
                                      "cnn,"
                                      "cnn_ieee,"
                                      "transformer,"
                                      "mlp_amp,cnn_amp,transformer_amp,mlp_bf16,"
                                      "transformer_bf16,mlp_bf16w,transformer_bf16w,sync")
    p.add_argument("--tiny-rows", action="store_true",
                   help="tiny shapes in the rows, sums and convk cases (a smoke run)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--matmul-size", type=int, default=None,
                   help="n of the n x n matmuls (default 8192, 4096 with --quick)")
    args = p.parse_args(argv)
    _need_gpu()
    cases = args.cases.split(",")
    torch = _torch()
    print(f"device: {pt.cuda.get_device_name()}; {pt.device('cuda').backend.version}; "
          f"torch: {(torch.__version__ if torch else 'not available')}")
    # the float32 steps compare the same arithmetic: both libraries' defaults, float32
    # products and TensorFloat-32 convolutions (torch's cuDNN, polyten's im2col GEMMs)
    print(f"float32 convolutions in TF32: polyten {pt.backends.cudnn.allow_tf32}, torch "
          f"{torch.backends.cudnn.allow_tf32 if torch else '-'}; float32 products in TF32: "
          f"polyten {pt.backends.cuda.matmul.allow_tf32}, torch "
          f"{torch.backends.cuda.matmul.allow_tf32 if torch else '-'}")
    rows = []

    def emit(new_rows):
        """Print rows as they come and rewrite the JSON file, so that a run cut short by a
        time limit (device time is scarce) keeps what it measured."""
        for r in new_rows:
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in r.items()), flush=True)
        rows.extend(new_rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)

    if "matmul" in cases:
        emit(bench_matmul(args.quick, args.matmul_size))
    if "sync" in cases:  # early: a run cut short by a time limit still answers it
        emit(bench_sync())
    for case in cases:
        if _split_mode(case)[0] in ("digits", "mlp", "cnn", "transformer"):
            emit(bench_steps([case], args.quick))
    if "overhead" in cases:
        emit(bench_overhead(args.quick))
    if "random" in cases:
        emit(bench_random(args.quick, args.matmul_size and args.matmul_size ** 2))
    if "rows" in cases:
        emit(bench_rows(args.quick, args.tiny_rows))
    if "sums" in cases:
        emit(bench_sums(args.quick, args.tiny_rows))
    if "convk" in cases:
        emit(bench_convk(args.quick, args.tiny_rows))
    if "attention" in cases:
        emit(bench_attention(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
