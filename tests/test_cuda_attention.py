"""``polyten_cuda.attention``: attention without an explicit mask as two GEMMs and a row kernel
forward, four GEMMs and a row kernel backward, without a GPU.

Runs polyten on the cuda backend over the CuPy stand-in (``tests/cupy_standin.py``: its
``cublasGemmStridedBatchedEx`` follows cuBLAS's column-major semantics with alpha, and the row
kernels are compiled for the host and run thread by thread) in a child process, and checks
the output and every gradient against float64 NumPy computed there from the same (rounded)
operands, in float64, float32, float16 and bfloat16, causal or not, with rows for a warp and
rows for a block; dropout against the composed ops under the same seed; and the launches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_PRELUDE = """
import sys; sys.path.insert(0, HERE)
import cupy_standin as cs; cs.install()
import math
import numpy as np
import polyten as pt
import polyten.nn.functional as F
pt.set_backend("cuda")

def ref(q, k, v, g, scale, causal, keep=None):
    # float64 attention and its backward, written out here (softmax's Jacobian-vector
    # product: w * (gw - sum(gw * w)))
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        L, S = s.shape[-2:]
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    p = w if keep is None else w * keep
    out = p @ v
    gv = np.swapaxes(p, -1, -2) @ g
    gw = g @ np.swapaxes(v, -1, -2)
    if keep is not None:
        gw = gw * keep
    gs = w * (gw - (gw * w).sum(-1, keepdims=True)) * scale
    return out, gs @ k, np.swapaxes(gs, -1, -2) @ q, gv

def host(t):
    return np.asarray(t.detach().cpu().numpy(), dtype=np.float64)
"""


def _run(body: str) -> str:
    code = f"HERE = {HERE!r}\n" + textwrap.dedent(_PRELUDE) + textwrap.dedent(body)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
    return r.stdout


def test_forward_and_backward_against_float64_with_launch_counts():
    """Every dtype, causal or not, a row for a warp (S = 6) and for a block (S = 1100):
    output and gradients within the dtype's error of the float64 reference; the forward is
    three launches (two GEMMs, one row kernel) and the backward five."""
    _run("""
        rng = np.random.default_rng(0)
        tol = {"float64": 1e-12, "float32": 3e-6, "float16": 4e-3, "bfloat16": 3e-2}
        for dtype in tol:
            dt = getattr(pt, dtype)
            for causal in (False, True):
                for S in (6, 1100):
                    shapes = ((2, 3, 5, 7), (2, 3, S, 7), (2, 3, S, 4))
                    q, k, v = (pt.tensor(rng.standard_normal(s), dtype=dt, device="cuda",
                                         requires_grad=True) for s in shapes)
                    g = pt.tensor(rng.standard_normal((2, 3, 5, 4)), dtype=dt, device="cuda")
                    cs.STATS.clear()
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    assert cs.STATS["launch"] == 3, (dtype, cs.STATS["launch"])
                    assert out.grad_fn.name() == "ScaledDotProductAttentionBackward0"
                    assert out.dtype == dt
                    cs.STATS.clear()
                    out.backward(g)
                    assert cs.STATS["launch"] == 5, (dtype, cs.STATS["launch"])
                    want = ref(*(host(t) for t in (q, k, v, g)), 1 / math.sqrt(7), causal)
                    got = [host(out)] + [host(t.grad) for t in (q, k, v)]
                    t = tol[dtype] * (3 if S > 100 else 1)
                    for name, a, b in zip(("out", "q", "k", "v"), got, want):
                        err = np.abs(a - b).max() / max(1.0, np.abs(b).max())
                        assert err < t, (dtype, causal, S, name, err)
        print("ok")
    """)


def test_dropout_matches_the_composed_ops_and_the_reference():
    """The keep mask is what the composed ops' dropout draws under the same seed (4 launches
    forward with its Philox draw, 5 backward); values and gradients against float64 with that
    mask."""
    _run("""
        rng = np.random.default_rng(1)
        shapes = ((2, 2, 8, 5), (2, 2, 9, 5), (2, 2, 9, 3))
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        g = rng.standard_normal((2, 2, 8, 3)).astype(np.float32)
        for causal in (False, True):
            res = []
            for fused in (True, False):
                q, k, v = (pt.tensor(a, device="cuda", requires_grad=True) for a in arrays)
                mask = None
                if not fused:
                    mask = pt.ones((8, 9), dtype=pt.bool, device="cuda")
                    mask = pt.tril(mask) if causal else mask
                pt.manual_seed(7)
                cs.STATS.clear()
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.3,
                                                     is_causal=causal and fused)
                if fused:
                    assert cs.STATS["launch"] == 4, cs.STATS["launch"]
                    cs.STATS.clear()
                out.backward(pt.tensor(g, device="cuda"))
                if fused:
                    assert cs.STATS["launch"] == 5, cs.STATS["launch"]
                res.append([host(out)] + [host(t.grad) for t in (q, k, v)])
            for a, b in zip(*res):
                np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
            pt.manual_seed(7)
            keep = host(pt.nn.functional.dropout(pt.ones(2, 2, 8, 9, device="cuda"), 0.3))
            assert 0.15 < np.mean(keep == 0) < 0.45
            want = ref(*(a.astype(np.float64) for a in arrays + [g]), 1 / math.sqrt(5),
                       causal, keep)
            for a, b in zip(res[0], want):
                np.testing.assert_allclose(a, b, rtol=3e-5, atol=3e-6)
        print("ok")
    """)


def test_multi_head_attention_layout_and_strided_gradient():
    """The layout nn.MultiheadAttention hands over (heads split by views of the projection,
    a permuted gradient coming back): the GEMMs take the strided operands, and the values
    and gradients match float64."""
    _run("""
        rng = np.random.default_rng(2)
        x = rng.standard_normal((6, 2, 3, 4)).astype(np.float32)  # (L, N, heads, E)
        X = pt.tensor(x, device="cuda", requires_grad=True)
        q = X.permute(1, 2, 0, 3)  # (N, heads, L, E), not contiguous
        out = F.scaled_dot_product_attention(q, q, q)
        y = out.permute(2, 0, 1, 3).reshape(6, 24)
        gy = rng.standard_normal((6, 24)).astype(np.float32)
        y.backward(pt.tensor(gy, device="cuda"))
        q64 = np.transpose(x.astype(np.float64), (1, 2, 0, 3))
        g64 = np.transpose(gy.astype(np.float64).reshape(6, 2, 3, 4), (1, 2, 0, 3))
        o, gq, gk, gv = ref(q64, q64, q64, g64, 0.5, False)
        np.testing.assert_allclose(host(out), o, rtol=2e-5, atol=2e-6)
        gx = np.transpose(gq + gk + gv, (2, 0, 1, 3))
        np.testing.assert_allclose(host(X.grad), gx, rtol=2e-5, atol=2e-5)
        print("ok")
    """)
