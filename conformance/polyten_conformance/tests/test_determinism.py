"""``polyten.use_deterministic_algorithms(True)`` on the backend under test: sums with many
terms per position (``index_add``, ``scatter_add``, an embedding gradient) and writes to
repeated positions (``x[i] = v``, ``scatter``) give the same bits on every run; the sums stay
within float32's error of a float64 NumPy reference, and each written value is one of the
values written there.  (Off, a GPU
backend may sum with atomics in any order; nothing is asserted about that.)"""

from __future__ import annotations

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark


@mark(op="index_add", area="indexing", tier="core", kernel="scatter_add")
def test_scatter_sums_repeat_bit_for_bit_in_deterministic_mode(conf):
    pt = conf.pt
    conf.need("use_deterministic_algorithms")
    nn = conf.need("nn")
    rng = np.random.default_rng(H.seed_for("determinism", "scatter"))
    idx = rng.integers(0, 16, size=4000)  # ~250 terms per row
    src = rng.standard_normal((4000, 8)).astype(np.float32)
    tokens = rng.integers(0, 16, size=(40, 25))
    g = rng.standard_normal((40, 25, 8)).astype(np.float32)

    def run():
        i = pt.tensor(idx, device=conf.device)
        s = pt.tensor(src, device=conf.device)
        added = pt.zeros((16, 8), device=conf.device).index_add(0, i, s)
        scattered = pt.zeros((16, 8), device=conf.device).scatter_add(
            0, i[:, None].expand(-1, 8), s)
        with pt.backend("cpu"):
            pt.manual_seed(0)
            emb = nn.Embedding(16, 8)
        emb = emb.to(conf.device)
        (emb(pt.tensor(tokens, device=conf.device)) * pt.tensor(g, device=conf.device)).sum() \
            .backward()
        written = pt.zeros((16, 8), device=conf.device)
        written[i] = s
        put = pt.zeros((16, 8), device=conf.device).scatter(0, i[:, None].expand(-1, 8), s)
        return {"index_add": H.to_host(added), "scatter_add": H.to_host(scattered),
                "embedding gradient": H.to_host(emb.weight.grad),
                "x[i] = v": H.to_host(written), "scatter": H.to_host(put)}

    before = pt.are_deterministic_algorithms_enabled()
    pt.use_deterministic_algorithms(True)
    try:
        runs = [run() for _ in range(3)]
    finally:
        pt.use_deterministic_algorithms(before)
    ref = np.zeros((16, 8))
    np.add.at(ref, idx, src.astype(np.float64))
    scale = np.zeros((16, 8))
    np.add.at(scale, idx, np.abs(src.astype(np.float64)))
    emb_ref = np.zeros((16, 8))
    np.add.at(emb_ref, tokens.ravel(), g.reshape(-1, 8).astype(np.float64))
    emb_scale = np.zeros((16, 8))
    np.add.at(emb_scale, tokens.ravel(), np.abs(g.reshape(-1, 8).astype(np.float64)))
    refs = {"index_add": (ref, scale), "scatter_add": (ref, scale),
            "embedding gradient": (emb_ref, emb_scale)}
    for name in runs[0]:
        values = [r[name] for r in runs]
        if not all(np.array_equal(values[0].view(np.uint32), v.view(np.uint32))
                   for v in values[1:]):
            worst = max(np.abs(values[0] - v).max() for v in values[1:])
            raise ConformanceFailure(
                f"{name} (float32, 4000 values onto 16 rows) on backend {conf.backend!r} with "
                f"polyten.use_deterministic_algorithms(True): three runs differ (by up to "
                f"{worst:.3g}).  With the mode on a backend must sum and write in a fixed order "
                f"(Backend.deterministic_algorithms switches to such kernels; one without "
                f"any calls polyten.dispatch.determinism.alert_not_deterministic)")
        if name not in refs:  # a write: the value landed must be one written there
            for row in range(16):
                candidates = src[idx == row] if (idx == row).any() else np.zeros((1, 8))
                if not any(np.array_equal(values[0][row], c) for c in candidates):
                    raise ConformanceFailure(
                        f"{name} (4000 writes onto 16 rows) on backend {conf.backend!r}: row "
                        f"{row} holds {values[0][row]!r}, none of the rows written to it")
            continue
        want, sc = refs[name]
        err = np.abs(values[0] - want) / np.maximum(sc, 1e-30)
        if err.max() > 4000 * 2.0 ** -24:
            raise ConformanceFailure(
                f"{name} (float32, 4000 terms onto 16 rows) on backend {conf.backend!r}: off "
                f"by {err.max():.3g} of sum |terms| from the float64 reference, past float32's "
                f"worst-case bound")
