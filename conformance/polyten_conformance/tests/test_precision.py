"""Float32 precision modes: ``polyten.backends.cudnn.allow_tf32`` (convolutions) and
``polyten.set_float32_matmul_precision`` (matrix products) on the backend under test.

Off (``allow_tf32 = False``, ``"highest"``), a float32 convolution or product must be as
accurate as float32 arithmetic allows: within ``K * 2**-24 * sum |a| |b|`` of the float64 result
for sums of ``K`` products (the worst-case bound of a float32 dot product).  On (the
convolutions' default, and ``"high"``), a backend may read the operands as TensorFloat-32
(10 significand bits): each product may then be off by ``2**-9`` relative (two truncated
operands), and no more -- a backend that went to float16 or bfloat16 products fails.  A
backend without reduced-precision modes passes both.  The rest of the suite runs with both
off (``conftest._ieee_float32``).  References are computed here in float64 NumPy.
"""

from __future__ import annotations

import contextlib

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

_FP32 = 2.0 ** -24  # float32's unit roundoff
_TF32 = 2.0 ** -9   # a product of two operands truncated to 10 significand bits


@contextlib.contextmanager
def _precision(pt, conv_tf32: bool, matmul: str):
    cudnn = pt.backends.cudnn
    before = (cudnn.allow_tf32, pt.get_float32_matmul_precision())
    cudnn.allow_tf32 = conv_tf32
    pt.set_float32_matmul_precision(matmul)
    try:
        yield
    finally:
        cudnn.allow_tf32 = before[0]
        pt.set_float32_matmul_precision(before[1])


def _windows(x, k):
    """(N, C, H', W', k, k) windows of the already padded float64 ``x`` (stride 1)."""
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))


def _conv_reference(x, w, g, pad):
    """Forward, input and weight gradients of ``conv2d(x, w, padding=pad)`` under the loss
    ``sum(y * g)``, and the same sums over absolute values (the error bounds' scale), all in
    float64.  Returns ``{name: (value, scale, K)}``."""
    k = w.shape[-1]
    out = {}
    for name, f in (("value", lambda a: a), ("scale", np.abs)):
        xp = np.pad(f(x), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = _windows(xp, k)
        y = np.einsum("nchwij,ocij->nohw", win, f(w))
        gw = np.einsum("nohw,nchwij->ocij", f(g), win)
        gxp = np.zeros_like(xp)
        h, wd = g.shape[2:]
        for i in range(k):
            for j in range(k):
                gxp[:, :, i:i + h, j:j + wd] += np.einsum("nohw,oc->nchw", f(g),
                                                          f(w)[:, :, i, j])
        gx = gxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
        out[name] = (y, gx, gw)
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    ks = (c * k * k, o * k * k, n * g.shape[2] * g.shape[3])
    return {name: (out["value"][i], out["scale"][i], ks[i])
            for i, name in enumerate(("conv2d output", "input gradient", "weight gradient"))}


def _check(conf, what, results, reference, rel, setting, fix):
    for name, got in results.items():
        value, scale, k = reference[name]
        bound = (rel + k * _FP32) * scale + 1e-30
        err = np.abs(got.astype(np.float64) - value)
        bad = err > bound
        if bad.any():
            i = tuple(int(v) for v in np.unravel_index(np.argmax(err / bound), err.shape))
            raise ConformanceFailure(
                f"{what} on backend {conf.backend!r}, float32, {setting}: the {name} "
                f"(shape {value.shape}, sums of {k} products) is off by up to "
                f"{(err / np.maximum(scale, 1e-30)).max():.3g} of sum |a||b| "
                f"({int(bad.sum())} of {bad.size} elements past the bound); at index {i}: "
                f"{float(got[i])!r} against {float(value[i])!r} (float64), bound "
                f"{bound[i]:.3g}.\n  {fix}")


@mark(op="conv2d", area="nn", tier="core", kernel="conv")
def test_conv2d_float32_follows_allow_tf32(conf):
    """conv2d forward and both gradients, float32, with ``allow_tf32`` off (float32
    accuracy) and on (TensorFloat-32 at most)."""
    pt = conf.pt
    F = conf.need("nn.functional")
    conf.need("nn.functional.conv2d")
    rng = np.random.default_rng(H.seed_for("precision", "conv2d"))
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
    ref = _conv_reference(x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), 1)
    for tf32 in (False, True):
        with _precision(pt, conv_tf32=tf32, matmul="highest"):
            xt = pt.tensor(x, device=conf.device, requires_grad=True)
            wt = pt.tensor(w, device=conf.device, requires_grad=True)
            y = F.conv2d(xt, wt, padding=1)
            (y * pt.tensor(g, device=conf.device)).sum().backward()
            got = {"conv2d output": H.to_host(y.detach()), "input gradient": H.to_host(xt.grad),
                   "weight gradient": H.to_host(wt.grad)}
        setting = f"polyten.backends.cudnn.allow_tf32 = {tf32}"
        fix = ("with allow_tf32 True a backend may read float32 operands as TensorFloat-32, "
               "never coarser (Backend.float32_conv_precision 'high')" if tf32 else
               "with allow_tf32 False (Backend.float32_conv_precision 'highest') float32 "
               "convolutions must compute their products in float32")
        _check(conf, "conv2d (x (2, 3, 10, 10), weight (4, 3, 3, 3), padding=1)", got, ref,
               _TF32 if tf32 else 0.0, setting, fix)


@mark(op="matmul", area="linalg", tier="core", kernel="matmul")
def test_float32_matmul_follows_set_float32_matmul_precision(conf):
    """``a @ b`` in float32 under ``"highest"`` (float32 accuracy) and ``"high"``
    (TensorFloat-32 at most), with the convolution flag set the other way each time: the two
    settings are independent."""
    pt = conf.pt
    rng = np.random.default_rng(H.seed_for("precision", "matmul"))
    a = rng.standard_normal((3, 24, 40)).astype(np.float32)
    b = rng.standard_normal((40, 16)).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = {"product": (a64 @ b64, np.abs(a64) @ np.abs(b64), 40)}
    for matmul, conv_tf32 in (("highest", True), ("high", False)):
        with _precision(pt, conv_tf32=conv_tf32, matmul=matmul):
            got = H.to_host(pt.tensor(a, device=conf.device) @ pt.tensor(b, device=conf.device))
        fix = ('"high" allows TensorFloat-32 operands, never coarser' if matmul == "high" else
               '"highest" (Backend.float32_matmul_precision) must compute float32 products in '
               "float32, whatever polyten.backends.cudnn.allow_tf32 says")
        _check(conf, "matmul (a (3, 24, 40) @ b (40, 16))", {"product": got}, ref,
               _TF32 if matmul == "high" else 0.0,
               f"set_float32_matmul_precision({matmul!r}), allow_tf32 = {conv_tf32}", fix)
