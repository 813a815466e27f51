"""Recurrent and attention layers, forward + backward: polyten vs PyTorch CPU (one thread) and,
for the LSTM, a hand-written NumPy forward/backward (the limit of a NumPy backend), side by
side in one process.

* LSTM: 2 layers, hidden 128, input 128, sequence 32, batch 16.
* TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512, dropout=0) on
  (16, 32, 128) with batch_first=True.

Run:  .venv/bin/python benchmarks/bench_rnn.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import polyten as pt  # noqa: E402
import polyten.nn as nn  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the NumPy and polyten columns still run
    torch = None

L, N, H, LAYERS = 32, 16, 128, 2


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


# ---------------------------------------------------------------- NumPy reference LSTM -----
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _np_lstm_layer(x, w_ih, w_hh, b):
    xw = (x.reshape(L * N, -1) @ w_ih.T + b).reshape(L, N, 4 * H)
    w_hh_t = np.ascontiguousarray(w_hh.T)  # BLAS is slower on the transposed view
    h = np.zeros((N, H), x.dtype)
    c = np.zeros((N, H), x.dtype)
    hs = np.empty((L, N, H), x.dtype)
    cache = []
    for t in range(L):
        g = xw[t] + h @ w_hh_t
        i, f, o = _sigmoid(g[:, :H]), _sigmoid(g[:, H:2 * H]), _sigmoid(g[:, 3 * H:])
        gg = np.tanh(g[:, 2 * H:3 * H])
        c_prev = c
        c = f * c + i * gg
        tc = np.tanh(c)
        h_prev = h
        h = o * tc
        hs[t] = h
        cache.append((i, f, gg, o, c_prev, tc, h_prev))
    return hs, cache


def _np_lstm_layer_backward(x, cache, gy, w_ih, w_hh):
    dh = np.zeros((N, H), x.dtype)
    dc = np.zeros((N, H), x.dtype)
    dg = np.empty((L, N, 4 * H), x.dtype)
    hprev = np.empty((L, N, H), x.dtype)
    for t in reversed(range(L)):
        i, f, gg, o, c_prev, tc, h_prev = cache[t]
        dh = dh + gy[t]
        dct = dc + dh * o * (1 - tc * tc)
        d = dg[t]
        d[:, :H] = dct * gg * i * (1 - i)
        d[:, H:2 * H] = dct * c_prev * f * (1 - f)
        d[:, 2 * H:3 * H] = dct * i * (1 - gg * gg)
        d[:, 3 * H:] = dh * tc * o * (1 - o)
        dc = dct * f
        dh = d @ w_hh
        hprev[t] = h_prev
    g2 = dg.reshape(L * N, 4 * H)
    grads = (g2.T @ x.reshape(L * N, -1), g2.T @ hprev.reshape(L * N, H), g2.sum(0))
    return (g2 @ w_ih).reshape(L, N, -1), grads


def numpy_lstm_step(x, weights):
    h1, c1 = _np_lstm_layer(x, *weights[0])
    h2, c2 = _np_lstm_layer(h1, *weights[1])
    dx, _ = _np_lstm_layer_backward(h1, c2, np.ones_like(h2), weights[1][0], weights[1][1])
    _np_lstm_layer_backward(x, c1, dx, weights[0][0], weights[0][1])


# ------------------------------------------------------------------------------ cases -----
def bench_lstm(repeat):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((L, N, H)).astype(np.float32)
    pm = nn.LSTM(H, H, LAYERS)
    px = pt.tensor(x_np)

    def step_pt():
        pm.zero_grad()
        out, _ = pm(px)
        out.sum().backward()

    weights = [(getattr(pm, f"weight_ih_l{k}").detach().numpy(),
                getattr(pm, f"weight_hh_l{k}").detach().numpy(),
                (getattr(pm, f"bias_ih_l{k}") + getattr(pm, f"bias_hh_l{k}")).detach().numpy())
               for k in range(LAYERS)]
    rows = {"polyten": median_ms(step_pt, repeat),
            "numpy": median_ms(lambda: numpy_lstm_step(x_np, weights), repeat)}
    if torch is not None:
        tm = torch.nn.LSTM(H, H, LAYERS)
        tx = torch.tensor(x_np)

        def step_t():
            tm.zero_grad()
            out, _ = tm(tx)
            out.sum().backward()
        rows["torch"] = median_ms(step_t, repeat)
    return rows


def bench_transformer(repeat):
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((16, 32, 128)).astype(np.float32)
    pm = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
    px = pt.tensor(x_np)

    def step_pt():
        pm.zero_grad()
        pm(px).sum().backward()

    rows = {"polyten": median_ms(step_pt, repeat)}
    if torch is not None:
        tm = torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
                                              batch_first=True)
        tx = torch.tensor(x_np)

        def step_t():
            tm.zero_grad()
            tm(tx).sum().backward()
        rows["torch"] = median_ms(step_t, repeat)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    repeat = 5 if args.quick else 25
    print("forward + backward, float32, CPU, one thread; median of", repeat, "runs (ms)")
    print(f"{'case':34s} {'polyten':>9s} {'numpy':>9s} {'torch':>9s} {'pt/torch':>9s} "
          f"{'pt/numpy':>9s}")
    for name, fn in ((f"LSTM {LAYERS}x{H}, L={L}, N={N}", bench_lstm),
                     ("TransformerEncoderLayer 128/4 (16,32)", bench_transformer)):
        r = fn(repeat)
        p, n, t = r["polyten"], r.get("numpy", float("nan")), r.get("torch", float("nan"))
        print(f"{name:34s} {p:9.2f} {n:9.2f} {t:9.2f} {p / t:9.2f} {p / n:9.2f}")


if __name__ == "__main__":
    main()
