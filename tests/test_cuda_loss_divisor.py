"""The 'mean' divisor of cross_entropy's and nll_loss's backward on cuda as one row-kernel launch
(``polyten_cuda.rows.Rows.divisor``) instead of a CuPy ``ReductionKernel`` call, without a GPU.

Runs polyten on the cuda backend over the CuPy stand-in in a child process: the gradients of
both losses, with and without class weights, with ignored targets (-100, and a class index), with targets for a warp
(5) and for a block (3000), in float64, float32 and float16, against float64 NumPy computed
there; the backward calls no ``ReductionKernel``; and a batch whose every target is ignored
still gives zero gradients (0 / 0 is not read: the divisor 0 is replaced on the device).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_mean_divisor_is_one_row_launch_checked_against_float64():
    code = f"HERE = {HERE!r}\n" + textwrap.dedent("""
        import sys; sys.path.insert(0, HERE)
        import cupy_standin as cs; cs.install()
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        reductions = []
        _call = cs.ReductionKernel.__call__
        def counted(self, *a, **k):
            reductions.append(1)
            return _call(self, *a, **k)
        cs.ReductionKernel.__call__ = counted

        def ref_grad(x, t, w, ignore, log_input):
            # d(mean loss)/dx in float64: per row, coef * (softmax - onehot) (or -onehot for
            # nll_loss), coef = w[t] / sum of the counted weights, 0 for an ignored target
            n, c = x.shape
            valid = t != ignore
            wt = np.where(valid, (np.ones(c) if w is None else w)[np.where(valid, t, 0)], 0.0)
            coef = wt / wt.sum()
            onehot = np.zeros((n, c))
            onehot[np.arange(n)[valid], t[valid]] = 1.0
            if log_input:
                return -coef[:, None] * onehot
            p = np.exp(x - x.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            return coef[:, None] * (p - onehot)

        rng = np.random.default_rng(0)
        tol = {"float64": 1e-12, "float32": 2e-6, "float16": 2e-3}
        for dtype in tol:
            for n in (5, 3000):
                for weighted, ignore in ((False, -100), (True, -100), (True, 1), (False, 1)):
                    for loss in ("cross_entropy", "nll_loss"):
                        x64 = rng.standard_normal((n, 4))
                        t = rng.integers(0, 4, n)
                        t[1] = ignore
                        w = np.abs(rng.standard_normal(4)) + 0.5 if weighted else None
                        x = pt.tensor(x64, dtype=getattr(pt, dtype), device="cuda",
                                      requires_grad=True)
                        wt = None if w is None else pt.tensor(w, dtype=x.dtype, device="cuda")
                        out = getattr(F, loss)(x, pt.tensor(t, device="cuda"), weight=wt,
                                               ignore_index=ignore)
                        reductions.clear()
                        out.backward()
                        assert not reductions, (dtype, n, loss, "ReductionKernel called")
                        xr = x.detach().cpu().numpy().astype(np.float64)
                        wr = None if w is None else wt.cpu().numpy().astype(np.float64)
                        want = ref_grad(xr, t, wr, ignore, loss == "nll_loss")
                        got = x.grad.cpu().numpy().astype(np.float64)
                        err = np.abs(got - want).max() / np.abs(want).max()
                        assert err < tol[dtype], (dtype, n, weighted, loss, err)
        # every target ignored: the loss is nan, the gradient zero
        x = pt.tensor(rng.standard_normal((3, 4)), device="cuda", requires_grad=True)
        out = F.cross_entropy(x, pt.tensor([-100, -100, -100], device="cuda"))
        out.backward()
        assert np.isnan(out.item()) and not x.grad.cpu().numpy().any()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]
