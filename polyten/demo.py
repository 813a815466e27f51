"""``polyten demo``: fit a logistic-regression classifier with hand-written gradients.

Runs on the default backend (``$POLYTEN_BACKEND`` or cpu): every op below goes through the
dispatcher to the backend's kernels.  (The nn/autograd demo on real data replaces this once
``polyten.nn`` lands.)
"""

from __future__ import annotations

import time

import polyten as pt


def make_data(n: int, d: int, seed: int = 0):
    """Two Gaussian blobs in ``d`` dimensions, labels 0/1."""
    pt.manual_seed(seed)
    w_true = pt.randn(d)
    x = pt.randn(n, d)
    logits = x @ w_true
    y = (pt.sigmoid(logits * 3.0) > pt.rand(n)).to(pt.float32)
    return x, y


def main(epochs: int = 200, lr: float = 0.5) -> int:
    rows = pt.backends()
    print("polyten", pt.__version__, "| backends:",
          ", ".join(f"{b.name}{'' if b.available else ' (unavailable: ' + b.reason + ')'}"
                    for b in rows))
    print(f"default backend: {pt.get_backend()}")
    x, y = make_data(4096, 16)
    x_train, y_train, x_test, y_test = x[:3072], y[:3072], x[3072:], y[3072:]
    w = pt.zeros(16)
    b = pt.zeros(())
    t0 = time.perf_counter()
    for epoch in range(epochs):
        p = pt.sigmoid(x_train @ w + b)
        loss = -(y_train * pt.log(p + 1e-7) + (1 - y_train) * pt.log(1 - p + 1e-7)).mean()
        err = p - y_train
        w -= lr * (x_train.T @ err) / x_train.shape[0]
        b -= lr * err.mean()
        if epoch % 50 == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}")
    elapsed = time.perf_counter() - t0
    acc = ((pt.sigmoid(x_test @ w + b) > 0.5).to(pt.float32) == y_test).to(pt.float32).mean()
    print(f"test accuracy {acc.item() * 100:.1f}% ({elapsed:.2f} s on {w.device})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
