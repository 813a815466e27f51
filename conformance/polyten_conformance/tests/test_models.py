"""End to end on the backend under test: small networks train, checkpoints round-trip.

The models are initialised on the cpu backend with a fixed seed and moved to the backend
under test, so these tests need no random tier and start from the same weights everywhere;
the data are fixed NumPy arrays.  A network "trains" when its loss after a few optimizer
steps is well below the loss it started from (a broken kernel or derivative rule anywhere in
the forward or backward pass stops that).  The checkpoint test writes with ``polyten.save``
and reads back onto the backend with ``polyten.load(map_location=...)``.
"""

from __future__ import annotations

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

STEPS = 25


def _m(op):
    return mark(op=op, area="models", tier="core", kernel=None)


def _blobs(rng, n, dim, classes):
    """Linearly separable clusters: ``(features float32 (n, dim), labels int64 (n,))``."""
    centers = rng.normal(0, 3, (classes, dim))
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0, 0.5, (n, dim))
    return x.astype("float32"), y.astype("int64")


def _train(conf, build, x_np, y_np, lr, what):
    pt = conf.pt
    nn, F, optim = conf.need("nn"), conf.need("nn.functional"), conf.need("optim")
    with pt.backend("cpu"):
        pt.manual_seed(0)
        model = build(nn)
    model = model.to(conf.device)
    x = pt.asarray(x_np, device=conf.device)
    y = pt.asarray(y_np, device=conf.device)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for name, p in model.named_parameters():
        if p.device.type != conf.device_type or p.grad is None or \
                p.grad.device.type != conf.device_type:
            raise ConformanceFailure(
                f"{what}: parameter {name!r} is on {p.device} with gradient on "
                f"{None if p.grad is None else p.grad.device}; both must stay on the backend "
                f"under test ({conf.backend!r})")
    first, last = losses[0], losses[-1]
    if not (np.isfinite(last) and last < 0.5 * first):
        raise ConformanceFailure(
            f"{what} does not train on backend {conf.backend!r}: cross-entropy went from "
            f"{first:.4f} to {last:.4f} in {STEPS} SGD steps (expected below half).\n"
            f"  losses: {', '.join(f'{v:.4f}' for v in losses)}")
    return model


@_m("nn.MLP")
def test_mlp_trains(conf):
    """Linear -> ReLU -> Linear on separable clusters: the loss falls below half."""
    x, y = _blobs(np.random.default_rng(1), 64, 4, 3)
    _train(conf, lambda nn: nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)),
           x, y, 0.05, "a small MLP (Linear(4, 16), ReLU, Linear(16, 3))")


@_m("nn.CNN")
def test_cnn_trains(conf):
    """Conv2d -> ReLU -> MaxPool2d -> Linear on two image classes (bright top or bottom)."""
    nn = conf.need("nn")
    for cls in ("Conv2d", "MaxPool2d", "Flatten"):
        conf.need(f"nn.{cls}")
    rng = np.random.default_rng(2)
    y = (np.arange(32) % 2).astype("int64")
    x = rng.normal(0, 0.3, (32, 1, 8, 8)).astype("float32")
    x[y == 0, :, :4, :] += 1.0
    x[y == 1, :, 4:, :] += 1.0
    del nn
    _train(conf, lambda nn: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 2)), x, y, 0.05,
        "a small CNN (Conv2d(1, 4, 3), ReLU, MaxPool2d(2), Linear(64, 2))")


@_m("checkpoint")
def test_checkpoint_round_trip(conf, backend_obj, tmp_path):
    """``polyten.save`` then ``polyten.load(map_location=backend)``: same values, dtypes,
    devices; a model restored from it computes the same outputs."""
    pt = conf.pt
    save, load = conf.need("save"), conf.need("load")
    nn = conf.need("nn")
    rng = np.random.default_rng(3)
    dtypes = [d for d in ("bool", "uint8", "int32", "int64", "float16", "float32", "float64",
                          "complex64") if d in backend_obj.dtypes]
    arrays = {d: (rng.normal(0, 3, (2, 3)) > 0 if d == "bool" else
                  rng.normal(0, 3, (2, 3))).astype(d) for d in dtypes}
    tensors = {d: pt.asarray(a, device=conf.device) for d, a in arrays.items()}
    with pt.backend("cpu"):
        pt.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    model = model.to(conf.device)
    path = tmp_path / "ckpt.pt"
    save({"tensors": tensors, "model": model.state_dict()}, path)
    back = load(path, map_location=conf.device)
    problems = []
    for d, t in tensors.items():
        r = back["tensors"][d]
        problems += H.compare(r, arrays[d], d, conf.device_type, what=f"tensor {d}")
    with pt.backend("cpu"):
        fresh = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    fresh = fresh.to(conf.device)
    fresh.load_state_dict(back["model"])
    x = pt.asarray(rng.normal(0, 1, (4, 3)).astype("float32"), device=conf.device)
    with pt.no_grad():
        want = H.to_host(model(x))
        problems += H.compare(fresh(x), want, "float32", conf.device_type,
                              what="restored model output")
    if problems:
        raise ConformanceFailure(
            f"checkpoint round trip on backend {conf.backend!r} (polyten.save, then "
            f"polyten.load(path, map_location={conf.device!r})):\n  " + "\n  ".join(problems))
