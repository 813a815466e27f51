"""nn layers: polyten vs PyTorch CPU vs raw NumPy, side by side in one process.

Each case of ``CASES`` builds three callables (polyten, torch, numpy; None where a column does
not apply) doing the same work; the table shows medians and ratios.  Cases so far: the
convolutions and max-pooling of a small CNN on digits-like 8x8 images (forward + backward),
one training step of that CNN, dropout, embedding_bag's 'max' mode, and attention
(``scaled_dot_product_attention``, plain and causal).  Append new cases
(e.g. normalisation layers) to ``CASES``.

BLAS runs on one thread in every column (``torch.set_num_threads(1)``, and
``OPENBLAS_NUM_THREADS=1`` unless set): single-thread numbers compare like with like, and a
multi-threaded OpenBLAS on a small busy machine can stall for tens of milliseconds.

Run:  .venv/bin/python benchmarks/bench_nn.py [--quick] [--cases conv,pool]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

import polyten as pt  # noqa: E402
import polyten.nn as nn  # noqa: E402
import polyten.nn.functional as F  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the NumPy and polyten columns still run
    torch = None

N = 64  # digits-like batch: 64 images of 8x8
STEPS_PER_EPOCH = 23  # 1437 training images of sklearn's digits (80 %), batch 64


def medians(fns, number, repeat):
    """Median time per call of each callable (None -> nan), the columns measured in turns
    (round r times every column once) so that a busy machine slows them alike."""
    live = [f for f in fns if f is not None]
    for f in live:
        f()
    times = {id(f): [] for f in live}
    for _ in range(repeat):
        for f in live:
            times[id(f)].append(timeit.timeit(f, number=number) / number)
    return [statistics.median(times[id(f)]) if f is not None else float("nan") for f in fns]


# ------------------------------------------------------------------ raw NumPy references ---
def np_conv_fwd_bwd(x, w, b, g, need_x):
    """im2col conv2d (3x3, padding 1) forward and backward in plain NumPy."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (n, c, h, w, kh, kw)
    cols = cols.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * h * wd)
    out = (w.reshape(o, -1) @ cols).reshape(o, n, h, wd).transpose(1, 0, 2, 3) + \
        b[:, None, None]
    out = np.ascontiguousarray(out)
    g2 = g.transpose(1, 0, 2, 3).reshape(o, -1)
    gw = (g2 @ cols.T).reshape(w.shape)
    gb = g.sum(axis=(0, 2, 3))
    gx = None
    if need_x:
        gcols = (w.reshape(o, -1).T @ g2).reshape(c, kh, kw, n, h, wd)
        gxp = np.zeros_like(xp)
        for i in range(kh):
            for j in range(kw):
                gxp[:, :, i:i + h, j:j + wd] += gcols[:, i, j].transpose(1, 0, 2, 3)
        gx = gxp[:, :, 1:-1, 1:-1]
    return out, gx, gw, gb


def np_pool_fwd_bwd(x, g):
    """2x2 max pooling forward (reshape + argmax) and backward (one assignment)."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    arg = win.argmax(-1)
    out = np.take_along_axis(win, arg[..., None], -1)[..., 0]
    gwin = np.zeros_like(win)
    np.put_along_axis(gwin, arg[..., None], g[..., None], -1)
    gx = gwin.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    return out, gx


# ----------------------------------------------------------------------------- cases ---
def case_conv(cin, cout):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, cin, 8, 8)).astype(np.float32)
    w_np = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
    b_np = np.zeros(cout, np.float32)
    g_np = rng.standard_normal((N, cout, 8, 8)).astype(np.float32)
    need_x = cin > 1  # the first layer's input (the images) needs no gradient
    x = pt.tensor(x_np, requires_grad=need_x)
    w, b = pt.tensor(w_np, requires_grad=True), pt.tensor(b_np, requires_grad=True)
    g = pt.tensor(g_np)

    def f_pt():
        F.conv2d(x, w, b, padding=1).backward(g)

    f_t = None
    if torch is not None:
        tx = torch.tensor(x_np, requires_grad=need_x)
        tw, tb = torch.tensor(w_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
        tg = torch.tensor(g_np)

        def f_t():
            torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(tg)
    return (f"conv2d {cin}->{cout} 3x3 pad 1, (64, {cin}, 8, 8), fwd+bwd", f_pt, f_t,
            lambda: np_conv_fwd_bwd(x_np, w_np, b_np, g_np, need_x))


def case_pool():
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((N, 32, 8, 8)).astype(np.float32)
    g_np = rng.standard_normal((N, 32, 4, 4)).astype(np.float32)
    x, g = pt.tensor(x_np, requires_grad=True), pt.tensor(g_np)

    def f_pt():
        F.max_pool2d(x, 2).backward(g)

    f_t = None
    if torch is not None:
        tx, tg = torch.tensor(x_np, requires_grad=True), torch.tensor(g_np)

        def f_t():
            torch.nn.functional.max_pool2d(tx, 2).backward(tg)
    return ("max_pool2d 2x2, (64, 32, 8, 8), fwd+bwd", f_pt, f_t,
            lambda: np_pool_fwd_bwd(x_np, g_np))


def case_dropout():
    """dropout p=0.1 on (256, 1024) float32, forward + backward; NumPy: draw, mask, scale."""
    rng = np.random.default_rng(3)
    x_np = rng.standard_normal((256, 1024)).astype(np.float32)
    g_np = rng.standard_normal((256, 1024)).astype(np.float32)
    x, g = pt.tensor(x_np, requires_grad=True), pt.tensor(g_np)
    gen = np.random.default_rng(0)

    def f_np():
        m = (gen.random(x_np.shape, dtype=np.float32) >= 0.1).astype(np.float32)
        m *= np.float32(1 / 0.9)
        return x_np * m, g_np * m

    f_t = None
    if torch is not None:
        tx, tg = torch.tensor(x_np, requires_grad=True), torch.tensor(g_np)

        def f_t():
            torch.nn.functional.dropout(tx, 0.1).backward(tg)
    return ("dropout p=0.1, (256, 1024), fwd+bwd", lambda: F.dropout(x, 0.1).backward(g), f_t,
            f_np)


def case_embedding_bag_max():
    """embedding_bag 'max' over 1000 bags of 20000 indices (1-D input, offsets), fwd+bwd."""
    rng = np.random.default_rng(4)
    idx_np = rng.integers(0, 5000, 20000)
    offs_np = np.sort(rng.integers(0, 20000, 1000))
    offs_np[0] = 0
    w_np = rng.standard_normal((5000, 64)).astype(np.float32)
    w, idx, offs = pt.tensor(w_np, requires_grad=True), pt.tensor(idx_np), pt.tensor(offs_np)

    def f_pt():
        F.embedding_bag(idx, w, offs, mode="max").sum().backward()

    f_t = None
    if torch is not None:
        tw = torch.tensor(w_np, requires_grad=True)
        ti, to = torch.tensor(idx_np), torch.tensor(offs_np)

        def f_t():
            torch.nn.functional.embedding_bag(ti, tw, to, mode="max").sum().backward()
    return ("embedding_bag max, 20000 indices in 1000 bags, dim 64, fwd+bwd", f_pt, f_t, None)


def np_attention_fwd_bwd(q, k, v, g, causal):
    """softmax(q @ k^T / sqrt(E)) @ v and its three gradients in plain NumPy."""
    scale = 1.0 / np.sqrt(q.shape[-1])
    s = q @ k.swapaxes(-1, -2)
    s *= scale
    if causal:
        s += np.triu(np.full(s.shape[-2:], -np.inf, dtype=s.dtype), 1)
    s -= s.max(-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(-1, keepdims=True)
    out = s @ v
    gv = s.swapaxes(-1, -2) @ g
    gs = g @ v.swapaxes(-1, -2)
    gs -= (gs * s).sum(-1, keepdims=True)
    gs *= s
    gs *= scale
    return out, gs @ k, gs.swapaxes(-1, -2) @ q, gv


def case_attention(causal):
    """scaled_dot_product_attention, (8, 4, 64, 32) float32 (a small transformer's heads),
    forward + backward of q, k and v."""
    rng = np.random.default_rng(5)
    q_np, k_np, v_np, g_np = (rng.standard_normal((8, 4, 64, 32)).astype(np.float32)
                              for _ in range(4))
    q, k, v = (pt.tensor(a, requires_grad=True) for a in (q_np, k_np, v_np))
    g = pt.tensor(g_np)

    def f_pt():
        for t in (q, k, v):
            t.grad = None
        F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(g)

    f_t = None
    if torch is not None:
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q_np, k_np, v_np))
        tg = torch.tensor(g_np)

        def f_t():
            for t in (tq, tk, tv):
                t.grad = None
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv,
                                                             is_causal=causal).backward(tg)
    return (f"scaled_dot_product_attention{' causal' if causal else ''}, (8, 4, 64, 32), "
            f"fwd+bwd", f_pt, f_t, lambda: np_attention_fwd_bwd(q_np, k_np, v_np, g_np, causal))


def _cnn(m):
    return m.Sequential(m.Conv2d(1, 16, 3, padding=1), m.ReLU(), m.Conv2d(16, 32, 3, padding=1),
                        m.ReLU(), m.MaxPool2d(2), m.Flatten(), m.Linear(32 * 4 * 4, 10))


def case_cnn_step():
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((N, 1, 8, 8)).astype(np.float32)
    y_np = rng.integers(0, 10, N)
    pt.manual_seed(0)
    model = _cnn(nn)
    params = list(model.parameters())
    x, y = pt.tensor(x_np), pt.tensor(y_np)

    def f_pt():
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), y).backward()
        with pt.no_grad():
            for p in params:
                p.sub_(p.grad * 0.05)

    f_t = None
    if torch is not None:
        tmodel = _cnn(torch.nn)
        tparams = list(tmodel.parameters())
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)

        def f_t():
            for p in tparams:
                p.grad = None
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            with torch.no_grad():
                for p in tparams:
                    p.sub_(p.grad * 0.05)
    return ("CNN train step (conv16-relu-conv32-relu-pool-linear, CE, SGD), batch 64",
            f_pt, f_t, None)


CASES = [
    ("conv", lambda: case_conv(1, 16)),
    ("conv", lambda: case_conv(16, 32)),
    ("pool", case_pool),
    ("cnn", case_cnn_step),
    ("dropout", case_dropout),
    ("embedding_bag", case_embedding_bag_max),
    ("attention", lambda: case_attention(False)),
    ("attention", lambda: case_attention(True)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--cases", default="", help="comma-separated case groups (default: all)")
    args = ap.parse_args()
    repeat, number = (5, 5) if args.quick else (15, 10)
    wanted = set(filter(None, args.cases.split(",")))
    print(f"polyten {pt.__version__ if hasattr(pt, '__version__') else ''} numpy "
          f"{np.__version__} torch {torch.__version__ if torch else '-'}; one BLAS thread; "
          f"times in ms (median of {repeat} x {number})")
    print(f"{'case':78s} {'polyten':>8s} {'torch':>8s} {'numpy':>8s} {'pt/torch':>8s} "
          f"{'pt/numpy':>8s}")
    for group, make in CASES:
        if wanted and group not in wanted:
            continue
        name, f_pt, f_t, f_np = make()
        t_pt, t_t, t_np = medians([f_pt, f_t, f_np], number, repeat)
        print(f"{name:78s} {t_pt * 1e3:8.3f} {t_t * 1e3:8.3f} {t_np * 1e3:8.3f} "
              f"{t_pt / t_t:8.2f} {t_pt / t_np:8.2f}")
        if group == "cnn":
            print(f"{'  -> digits epoch (' + str(STEPS_PER_EPOCH) + ' steps), ms':78s} "
                  f"{t_pt * STEPS_PER_EPOCH * 1e3:8.1f} {t_t * STEPS_PER_EPOCH * 1e3:8.1f}")


if __name__ == "__main__":
    main()
