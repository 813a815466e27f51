"""Normalisation layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm, RMSNorm,
LocalResponseNorm and their functional forms (plus ``F.normalize``).

Outputs, input/weight/bias gradients and running statistics against PyTorch (float64, same
weights and inputs, several training steps then eval) and against NumPy; finite-difference
gradchecks and gradgradchecks of every functional; the fused cpu kernels (forward and backward)
against the backend-agnostic defaults; state-dict keys and loading PyTorch's; reprs; errors.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import (batchnorm_running_reference, close, copy_weights, module_step, rand,
                        to_numpy, torch_or_skip, ulps)

ATOL = 1e-10  # statistics over many values: a looser absolute tolerance than the default
_close = functools.partial(close, atol=ATOL)
_step = functools.partial(module_step, atol=ATOL)


def _randomise_affine(pm, tm, seed):
    """Non-trivial weights and biases (the default init is ones / zeros), the same in both."""
    torch = torch_or_skip()
    with torch.no_grad():
        for i, p in enumerate(tm.parameters()):
            p.copy_(torch.tensor(rand(*p.shape, seed=seed + i)))
    copy_weights(pm, tm)


def _same_buffers(pm, tm):
    pb, tb = dict(pm.named_buffers()), dict(tm.named_buffers())
    assert set(pb) == set(tb)
    for k, v in tb.items():
        assert pb[k].dtype.name == str(v.dtype).replace("torch.", ""), k
        _close(pb[k].numpy(), v.numpy())


def _train_then_eval(pm, tm, xs, eval_x, seed):
    """Training steps on ``xs`` (the running statistics compared after each), then a step in
    eval mode (which normalises with the running statistics when they are tracked)."""
    for i, x in enumerate(xs):
        _step(pm, tm, x, seed=seed + i)
        _same_buffers(pm, tm)
    pm.eval()
    tm.eval()
    _step(pm, tm, eval_x, seed=seed + 10)
    _same_buffers(pm, tm)


def _cfg_id(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items()) or "default"


# --------------------------------------------------------------------------- BatchNorm -----
BN_CASES = [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)), ("BatchNorm2d", (4, 3, 2, 3)),
            ("BatchNorm3d", (2, 3, 2, 2, 2))]
BN_CONFIGS = [dict(), dict(affine=False, momentum=None), dict(momentum=0.3, bias=False),
              dict(track_running_stats=False)]


@pytest.mark.parametrize("cls,shape", BN_CASES)
@pytest.mark.parametrize("cfg", BN_CONFIGS, ids=_cfg_id)
def test_batchnorm_matches_torch_over_training_steps_and_eval(cls, shape, cfg):
    torch = torch_or_skip()
    tm = getattr(torch.nn, cls)(3, **cfg).double()
    pm = getattr(nn, cls)(3, dtype=pt.float64, **cfg)
    _randomise_affine(pm, tm, seed=10)
    _train_then_eval(pm, tm, [rand(*shape, seed=s) * 2 + s for s in range(3)],
                     rand(*shape, seed=7), seed=20)


def test_batchnorm_running_statistics_against_numpy():
    """Independent of PyTorch: unbiased running variance, momentum, cumulative average."""
    m = nn.BatchNorm2d(2, momentum=None, dtype=pt.float64)
    m0 = nn.BatchNorm2d(2, momentum=0.25, dtype=pt.float64)
    xs = [rand(3, 2, 2, 2, seed=s) + s for s in range(3)]
    rm, rv = np.zeros(2), np.ones(2)
    rm0, rv0 = np.zeros(2), np.ones(2)
    for i, x in enumerate(xs):
        out = m(pt.tensor(x))
        m0(pt.tensor(x))
        mean = x.mean(axis=(0, 2, 3))
        var_b = x.var(axis=(0, 2, 3))
        _close(to_numpy(out), (x - mean[:, None, None]) / np.sqrt(var_b[:, None, None] + 1e-5))
        unbiased = x.var(axis=(0, 2, 3), ddof=1)
        f = 1.0 / (i + 1)
        rm, rv = (1 - f) * rm + f * mean, (1 - f) * rv + f * unbiased
        rm0, rv0 = 0.75 * rm0 + 0.25 * mean, 0.75 * rv0 + 0.25 * unbiased
    _close(m.running_mean.numpy(), np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0))
    _close(m.running_mean.numpy(), rm)
    _close(m.running_var.numpy(), rv)
    _close(m0.running_mean.numpy(), rm0)
    _close(m0.running_var.numpy(), rv0)
    assert m.num_batches_tracked.item() == 3 and m.num_batches_tracked.dtype == pt.int64
    m.eval()
    x = rand(2, 2, 3, 3, seed=9)
    _close(to_numpy(m(pt.tensor(x))), (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5))


def test_functional_batch_norm_matches_torch():
    torch = torch_or_skip()
    x, w, b = rand(5, 4, 3, seed=1), rand(4, seed=2), rand(4, seed=3)
    rm, rv = rand(4, seed=4), np.abs(rand(4, seed=5)) + 0.5
    for training in (True, False):
        prm, prv = pt.tensor(rm), pt.tensor(rv)
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        px, pw, pb = (pt.tensor(a, requires_grad=True) for a in (x, w, b))
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        po = F.batch_norm(px, prm, prv, pw, pb, training, 0.2, 1e-3)
        to = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.2, 1e-3)
        _close(to_numpy(po), to.detach().numpy())
        g = rand(5, 4, 3, seed=6)
        po.backward(pt.tensor(g))
        to.backward(torch.tensor(g))
        for a, c in ((px, tx), (pw, tw), (pb, tb), (prm, trm), (prv, trv)):
            _close(a.grad.numpy() if a.grad is not None else a.numpy(),
                   c.grad.numpy() if c.grad is not None else c.numpy())
    # without any running statistics: batch statistics, nothing to update
    _close(F.batch_norm(pt.tensor(x), None, None, training=True).numpy(),
           torch.nn.functional.batch_norm(torch.tensor(x), None, None,
                                          training=True).numpy())


def test_batchnorm_empty_batch_leaves_running_stats():
    m = nn.BatchNorm1d(3)
    out = m(pt.zeros(0, 3))
    assert tuple(out.shape) == (0, 3)
    _close(m.running_mean.numpy(), np.zeros(3))
    _close(m.running_var.numpy(), np.ones(3))


# ------------------------------------------------------------------------- InstanceNorm ----
IN_CASES = [("InstanceNorm1d", (4, 3, 5)), ("InstanceNorm1d", (3, 6)),  # unbatched
            ("InstanceNorm2d", (2, 3, 3, 2)), ("InstanceNorm3d", (2, 3, 2, 2, 2))]
IN_CONFIGS = [dict(), dict(affine=True), dict(affine=True, track_running_stats=True),
              dict(track_running_stats=True, momentum=0.4)]


@pytest.mark.parametrize("cls,shape", IN_CASES)
@pytest.mark.parametrize("cfg", IN_CONFIGS, ids=_cfg_id)
def test_instancenorm_matches_torch(cls, shape, cfg):
    torch = torch_or_skip()
    tm = getattr(torch.nn, cls)(3, **cfg).double()
    pm = getattr(nn, cls)(3, dtype=pt.float64, **cfg)
    if cfg.get("affine"):
        _randomise_affine(pm, tm, seed=40)
    _train_then_eval(pm, tm, [rand(*shape, seed=s) * 3 - s for s in range(3)],
                     rand(*shape, seed=8), seed=50)


# --------------------------------------------------------------------------- LayerNorm -----
@pytest.mark.parametrize("shape,ns,cfg", [
    ((4, 5), 5, dict()),
    ((2, 3, 4), (3, 4), dict()),
    ((2, 3, 4), [4], dict(elementwise_affine=False)),
    ((3, 2, 6), (6,), dict(bias=False, eps=1e-3)),
    ((7,), (7,), dict()),
])
def test_layernorm_matches_torch(shape, ns, cfg):
    torch = torch_or_skip()
    tm = torch.nn.LayerNorm(ns, **cfg).double()
    pm = nn.LayerNorm(ns, dtype=pt.float64, **cfg)
    if cfg.get("elementwise_affine", True):
        _randomise_affine(pm, tm, seed=70)
    _step(pm, tm, rand(*shape, seed=1) * 4 + 1, seed=2)
    assert list(pm.state_dict()) == list(tm.state_dict())


def test_layer_norm_against_numpy_and_noncontiguous_input():
    x = rand(6, 4, seed=3)
    w, b = rand(6, seed=4), rand(6, seed=5)
    px = pt.tensor(x).T  # (4, 6), a transposed view
    out = F.layer_norm(px, (6,), pt.tensor(w), pt.tensor(b))
    xt = x.T
    ref = (xt - xt.mean(1, keepdims=True)) / np.sqrt(xt.var(1, keepdims=True) + 1e-5) * w + b
    _close(out.numpy(), ref)


# --------------------------------------------------------------------------- GroupNorm -----
@pytest.mark.parametrize("shape,groups,cfg", [
    ((4, 6, 3), 3, dict()),
    ((2, 4, 2, 2), 2, dict(affine=False)),
    ((3, 4), 1, dict()),
    ((2, 4, 3), 4, dict(bias=False, eps=1e-2)),
])
def test_groupnorm_matches_torch(shape, groups, cfg):
    torch = torch_or_skip()
    tm = torch.nn.GroupNorm(groups, shape[1], **cfg).double()
    pm = nn.GroupNorm(groups, shape[1], dtype=pt.float64, **cfg)
    if cfg.get("affine", True):
        _randomise_affine(pm, tm, seed=80)
    _step(pm, tm, rand(*shape, seed=4) - 2, seed=5)
    assert list(pm.state_dict()) == list(tm.state_dict())


# ----------------------------------------------------------------------------- RMSNorm -----
@pytest.mark.parametrize("shape,ns,cfg", [
    ((4, 5), 5, dict()),
    ((2, 3, 4), (3, 4), dict(eps=1e-6)),
    ((3, 6), (6,), dict(elementwise_affine=False)),
])
def test_rmsnorm_matches_torch(shape, ns, cfg):
    torch = torch_or_skip()
    tm = torch.nn.RMSNorm(ns, **cfg).double()
    pm = nn.RMSNorm(ns, dtype=pt.float64, **cfg)
    if cfg.get("elementwise_affine", True):
        _randomise_affine(pm, tm, seed=90)
    _step(pm, tm, rand(*shape, seed=6), seed=7)
    assert list(pm.state_dict()) == list(tm.state_dict())


# ------------------------------------------------------- normalize, local_response_norm ----
@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize_matches_torch(p, dim):
    torch = torch_or_skip()
    x = rand(3, 4, seed=8)
    x[1] = 0.0  # a zero vector: divided by eps, gradient finite
    px, tx = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    po = F.normalize(px, p=p, dim=dim)
    to = torch.nn.functional.normalize(tx, p=p, dim=dim)
    _close(to_numpy(po), to.detach().numpy())
    g = rand(3, 4, seed=9)
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    _close(px.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("shape,size", [((2, 5, 4), 3), ((2, 6, 2, 3), 2), ((1, 4, 2, 2, 2), 5)])
def test_local_response_norm_matches_torch(shape, size):
    torch = torch_or_skip()
    tm = torch.nn.LocalResponseNorm(size, alpha=0.5, beta=0.6, k=2.0)
    pm = nn.LocalResponseNorm(size, alpha=0.5, beta=0.6, k=2.0)
    _step(pm, tm, rand(*shape, seed=10), seed=11)
    assert repr(pm) == repr(tm)


# ------------------------------------------------------------ finite-difference checks -----
def _leaf(*shape, seed, scale=1.0, shift=0.0):
    return pt.tensor(rand(*shape, seed=seed) * scale + shift, requires_grad=True)


GRAD_CASES = {
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 2), w, b),
                   lambda: (_leaf(2, 3, 2, seed=1), _leaf(3, 2, seed=2), _leaf(3, 2, seed=3))),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                         lambda: (_leaf(3, 2, 2, seed=4), _leaf(2, seed=5), _leaf(2, seed=6))),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, pt.tensor([0.5, -1.0]),
                                                     pt.tensor([2.0, 0.5]), w, b, False),
                        lambda: (_leaf(3, 2, 2, seed=7), _leaf(2, seed=8), _leaf(2, seed=9))),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b),
                   lambda: (_leaf(2, 4, 2, seed=10), _leaf(4, seed=11), _leaf(4, seed=12))),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                      lambda: (_leaf(2, 2, 3, seed=13), _leaf(2, seed=14), _leaf(2, seed=15))),
    "rms_norm": (lambda x, w: F.rms_norm(x, (3,), w),
                 lambda: (_leaf(2, 3, seed=16), _leaf(3, seed=17))),
    "normalize": (lambda x: F.normalize(x, p=2.0, dim=1),
                  lambda: (_leaf(3, 4, seed=18),)),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, alpha=0.5, beta=0.7, k=1.5),
                            lambda: (_leaf(2, 4, 3, seed=19),)),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck_and_gradgradcheck(name):
    fn, make = GRAD_CASES[name]
    assert gradcheck(fn, make())
    assert gradgradcheck(fn, make())


def test_double_backward_matches_torch():
    """Second derivatives of layer_norm / batch_norm (the polyten-op rules) against PyTorch."""
    torch = torch_or_skip()
    x, w, b = rand(4, 3, seed=1), rand(3, seed=2), rand(3, seed=3)
    v = rand(4, 3, seed=4)
    for pf, tf in ((lambda x, w, b: F.layer_norm(x, (3,), w, b),
                    lambda x, w, b: torch.nn.functional.layer_norm(x, (3,), w, b)),
                   (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                    lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, True))):
        pin = [pt.tensor(a, requires_grad=True) for a in (x, w, b)]
        tin = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        pg = pt.autograd.grad((pf(*pin) ** 2 * pt.tensor(v)).sum(), pin, create_graph=True)
        tg = torch.autograd.grad((tf(*tin) ** 2 * torch.tensor(v)).sum(), tin,
                                 create_graph=True)
        pgg = pt.autograd.grad(sum((g * g).sum() for g in pg), pin)
        tgg = torch.autograd.grad(sum((g * g).sum() for g in tg), tin)
        for a, c in zip(pg + pgg, tg + tgg):
            _close(to_numpy(a), c.detach().numpy())


# ------------------------------------------------------------- fused kernels vs default ----
def _run_all(device):
    """layer_norm, batch_norm (module, 2 steps + eval), group_norm and instance_norm on
    ``device``: outputs, gradients and running statistics as NumPy arrays."""
    res = []
    x = pt.tensor(rand(4, 3, 5, seed=1) * 3 + 1, device=device, requires_grad=True)
    w = pt.tensor(rand(5, seed=2), device=device, requires_grad=True)
    b = pt.tensor(rand(5, seed=3), device=device, requires_grad=True)
    out = F.layer_norm(x, (5,), w, b)
    assert type(out.grad_fn).__name__ == "LayerNormBackward0"
    out.backward(pt.tensor(rand(4, 3, 5, seed=4), device=device))
    res += [out, x.grad, w.grad, b.grad]
    m = nn.BatchNorm1d(3, dtype=pt.float64).to(device)
    for s in range(2):
        xb = pt.tensor(rand(4, 3, 5, seed=10 + s), device=device, requires_grad=True)
        o = m(xb)
        assert type(o.grad_fn).__name__ == "BatchNormBackward0"
        (o * pt.tensor(rand(4, 3, 5, seed=20 + s), device=device)).sum().backward()
        res += [o, xb.grad, m.weight.grad, m.bias.grad, m.running_mean, m.running_var]
    m.eval()
    res.append(m(pt.tensor(rand(2, 3, 5, seed=5), device=device)))
    xg = pt.tensor(rand(2, 4, 3, seed=6), device=device, requires_grad=True)
    og = F.group_norm(xg, 2) + F.instance_norm(xg)
    og.backward(pt.tensor(rand(2, 4, 3, seed=7), device=device))
    res += [og, xg.grad]
    # the input needs no gradient: the fused backward skips it
    frozen = pt.tensor(rand(3, 5, seed=8), device=device)
    w.grad = None
    F.layer_norm(frozen, (5,), w, b).sum().backward()
    res.append(w.grad)
    return [t.detach().to("cpu").numpy() for t in res]


def test_fused_kernels_and_defaults_agree():
    cpu = pt.device("cpu").backend
    assert {"layer_norm", "batch_norm"} <= set(cpu.kernels)
    assert {"layer_norm", "batch_norm"} <= set(cpu.backward_kernels)
    fused = _run_all("cpu")
    with cpu_clone("nofusednorm", drop=("layer_norm", "batch_norm")) as dev:
        assert "layer_norm" not in dev.backend.kernels
        default = _run_all(dev)
    assert len(fused) == len(default)
    for a, b in zip(fused, default):
        _close(a, b, rtol=1e-12, atol=1e-12)


def test_fused_backward_matches_the_polyten_rule():
    """create_graph=True runs the polyten-op rules; without it, the fused backward kernels."""
    for f, shapes in ((lambda x, w, b: F.layer_norm(x, (2, 3), w, b), ((4, 2, 3), (2, 3))),
                      (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                       ((4, 3, 2), (3,)))):
        xs = [pt.tensor(rand(*shapes[0], seed=1), requires_grad=True),
              pt.tensor(rand(*shapes[1], seed=2), requires_grad=True),
              pt.tensor(rand(*shapes[1], seed=3), requires_grad=True)]
        g = pt.tensor(rand(*shapes[0], seed=4))
        rule = pt.autograd.grad(f(*xs), xs, g, create_graph=True)
        fused = pt.autograd.grad(f(*xs), xs, g)
        for a, c in zip(rule, fused):
            _close(to_numpy(a), to_numpy(c), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", ["layer_norm", "batch_norm"])
def test_float16_statistics_in_float32(op):
    """A float16 input with a large offset: statistics in float16 would lose the variance."""
    x = (rand(8, 4, seed=3) * 0.5 + 300.0).astype(np.float16)
    x64 = x.astype(np.float64)
    axis = 1 if op == "layer_norm" else 0
    ref = (x64 - x64.mean(axis, keepdims=True)) / np.sqrt(x64.var(axis, keepdims=True) + 1e-5)
    with cpu_clone("nofusednorm16", drop=("layer_norm", "batch_norm")) as dev:
        for device in ("cpu", dev):
            px = pt.tensor(x, device=device, requires_grad=True)
            out = (F.layer_norm(px, (4,)) if op == "layer_norm" else
                   F.batch_norm(px, None, None, training=True))
            assert out.dtype == pt.float16
            _close(out.detach().to("cpu").numpy().astype(np.float64), ref, rtol=0, atol=2e-2)
            out.float().sum().backward()
            assert px.grad.dtype == pt.float16
            _close(px.grad.to("cpu").numpy().astype(np.float64), np.zeros_like(x64), rtol=0,
                   atol=5e-2)


# -------------------------------------------------------------------- state dict, init -----
@pytest.mark.parametrize("make", [
    lambda m: m.BatchNorm2d(4), lambda m: m.BatchNorm1d(4, affine=False),
    lambda m: m.BatchNorm1d(4, track_running_stats=False), lambda m: m.LayerNorm((2, 4)),
    lambda m: m.LayerNorm(4, bias=False), lambda m: m.GroupNorm(2, 4),
    lambda m: m.InstanceNorm2d(4), lambda m: m.InstanceNorm1d(4, affine=True,
                                                              track_running_stats=True),
    lambda m: m.RMSNorm(4), lambda m: m.LocalResponseNorm(3)])
def test_state_dict_keys_default_init_and_repr_equal_torch(make):
    torch = torch_or_skip()
    tm, pm = make(torch.nn), make(nn)
    assert repr(pm) == repr(tm)
    tsd, psd = tm.state_dict(), pm.state_dict()
    assert list(psd) == list(tsd)
    for k, v in tsd.items():
        assert psd[k].dtype.name == str(v.dtype).replace("torch.", ""), k
        _close(to_numpy(psd[k]), v.numpy())  # ones / zeros, running stats 0 / 1, count 0


def test_loading_torch_state_dict_then_eval():
    torch = torch_or_skip()
    tm = torch.nn.Sequential(torch.nn.BatchNorm1d(3), torch.nn.LayerNorm(3)).double()
    for s in range(3):
        tm(torch.tensor(rand(5, 3, seed=s) + s))
    pm = nn.Sequential(nn.BatchNorm1d(3), nn.LayerNorm(3)).double()
    _randomise_affine(pm, tm, seed=3)  # also loads the running statistics
    assert pm[0].num_batches_tracked.item() == 3
    tm.eval()
    pm.eval()
    x = rand(4, 3, seed=9)
    _close(to_numpy(pm(pt.tensor(x))), tm(torch.tensor(x)).detach().numpy())


def test_reset_running_stats_and_parameters_and_dtype_moves():
    m = nn.BatchNorm1d(2)
    m(pt.randn(4, 2) * 3 + 1)
    with pt.no_grad():
        m.weight.fill_(2.0)
    m.reset_running_stats()
    _close(m.running_mean.numpy(), np.zeros(2))
    _close(m.running_var.numpy(), np.ones(2))
    assert m.num_batches_tracked.item() == 0
    _close(to_numpy(m.weight), np.full(2, 2.0))
    m.reset_parameters()
    _close(to_numpy(m.weight), np.ones(2))
    m.double()
    assert m.running_mean.dtype == pt.float64 and m.weight.dtype == pt.float64
    assert m.num_batches_tracked.dtype == pt.int64  # integer buffers keep their dtype
    m(pt.randn(3, 2, dtype=pt.float64))
    assert m.num_batches_tracked.item() == 1
    m.eval()
    m(pt.randn(3, 2, dtype=pt.float64))
    assert m.num_batches_tracked.item() == 1  # eval mode does not count


def test_float32_modules_on_float32_input():
    x = pt.randn(8, 3, 4, 4)
    for m in (nn.BatchNorm2d(3), nn.GroupNorm(3, 3), nn.InstanceNorm2d(3, affine=True),
              nn.LayerNorm(4), nn.RMSNorm(4)):
        out = m(x)
        assert out.dtype == pt.float32 and tuple(out.shape) == (8, 3, 4, 4)
        out.sum().backward()


# ------------------------------------------------------------------------------ errors -----
def test_errors_name_the_call_the_shapes_and_the_fix():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\).*16 channels.*\(8, 3, 4, 4\).*"
                                         r"num_features=3"):
        nn.BatchNorm2d(16)(pt.zeros(8, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input \(got 3D input"):
        nn.BatchNorm2d(3)(pt.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(3)(pt.zeros(3))
    with pytest.raises(ValueError, match=r"batch_norm: Expected more than 1 value per channel "
                                         r"when training, got input size \[1, 3\].*eval"):
        nn.BatchNorm1d(3)(pt.zeros(1, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\[1, 3, 1\]"):
        F.batch_norm(pt.zeros(1, 3, 1), None, None, training=True)
    F.batch_norm(pt.zeros(1, 3), pt.zeros(3), pt.ones(3))  # one sample is fine in eval mode
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\).*"
                                         r"\(4, 3\).*\(16,\)"):
        F.batch_norm(pt.zeros(4, 3), pt.zeros(16), pt.ones(16))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean and running_var must be "
                                         r"given in evaluation mode.*training=True"):
        F.batch_norm(pt.zeros(4, 3), None, None)
    with pytest.raises(TypeError, match=r"batch_norm: momentum must be a number.*"
                                        r"num_batches_tracked"):
        F.batch_norm(pt.zeros(4, 3), None, None, training=True, momentum=None)
    with pytest.raises(ValueError, match=r"batch_norm: eps must be positive"):
        F.batch_norm(pt.zeros(4, 3), None, None, training=True, eps=0.0)
    with pytest.raises(TypeError, match=r"batch_norm: expected a real floating-point input, "
                                        r"got int64"):
        F.batch_norm(pt.zeros(4, 3, dtype=pt.int64), None, None, training=True)
    with pytest.raises(ValueError, match=r"layer_norm: Given normalized_shape=\(4,\), expected "
                                         r"input with shape \(\*, 4\), but got input of shape "
                                         r"\(4, 3\); pass normalized_shape=\(3,\)"):
        F.layer_norm(pt.zeros(4, 3), (4,))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(5,\)\): expected an input of shape "
                                         r"\(\*, 5\).*\(2, 4\).*normalized_shape=input.shape"):
        nn.LayerNorm(5)(pt.zeros(2, 4))
    with pytest.raises(ValueError, match=r"layer_norm: weight must have shape \(3,\)"):
        F.layer_norm(pt.zeros(4, 3), (3,), pt.ones(4))
    with pytest.raises(ValueError, match=r"group_norm: num_groups=4 must divide the number of "
                                         r"channels C=6 of input of shape \(4, 6\); choose "
                                         r"num_groups among \[1, 2, 3, 6\]"):
        F.group_norm(pt.zeros(4, 6), 4)
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by "
                                         r"num_groups \(4\); choose num_groups among"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 6\): expected an input with 6 "
                                         r"channels.*\(2, 4, 3\)"):
        nn.GroupNorm(2, 6)(pt.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"instance_norm: Expected more than 1 spatial element "
                                         r"when training, got input size \[2, 3, 1\]"):
        F.instance_norm(pt.zeros(2, 3, 1))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(3\): expected an input with "
                                         r"num_features=3 channels"):
        nn.InstanceNorm1d(3, affine=True)(pt.zeros(2, 4, 5))
    with pytest.warns(UserWarning, match=r"InstanceNorm1d: input's size at dim=1 \(4\) does "
                                         r"not match num_features \(3\)"):
        nn.InstanceNorm1d(3)(pt.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"rms_norm: Given normalized_shape=\(2,\)"):
        F.rms_norm(pt.zeros(4, 3), (2,))
    with pytest.raises(ValueError, match=r"local_response_norm: expected an input of 3 or more "
                                         r"dimensions"):
        F.local_response_norm(pt.zeros(4, 3), 2)
    with pytest.raises(TypeError, match=r"normalize: expected a floating-point input"):
        F.normalize(pt.zeros(4, 3, dtype=pt.int64))


@pytest.mark.parametrize("dtype", [pt.float32, pt.float64])
def test_fused_running_statistics_equal_the_generic_update(dtype, monkeypatch):
    """The backend's one-call running-statistics update (fused_optimizers
    ["batch_norm_running"]) gives exactly what the generic mul_ / add_(alpha) give, over steps
    with a fixed momentum and with the cumulative average (momentum=None); the version
    counters move."""
    def run():
        out = []
        for momentum in (0.1, None):
            m = nn.BatchNorm2d(3, momentum=momentum, dtype=dtype)
            for s in range(3):
                m(pt.tensor(rand(4, 3, 2, 2, seed=40 + s) * 2 + 1, dtype=dtype))
            out += [m.running_mean.numpy().copy(), m.running_var.numpy().copy()]
        return out
    fused = run()
    backend = pt.device("cpu").backend
    monkeypatch.setattr(backend, "fused_optimizers", {
        k: v for k, v in backend.fused_optimizers.items() if k != "batch_norm_running"})
    for a, b in zip(fused, run()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_batchnorm_running_statistics_round_once(dtype, monkeypatch):
    """A float16 / bfloat16 BatchNorm (``model.half()``) keeps half running buffers while its
    batch statistics are float32: the backend's one-call update takes both, computes in
    float32 and rounds once into the buffers -- within half an ulp (plus float32 noise) of
    the float64 update -- where the generic mul_ / add_ round twice and miss that."""
    pytest.importorskip("ml_dtypes")
    pdt = getattr(pt, dtype)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 64, 3, 3)) * 1.7 + 0.8).astype(np.float32)
    rm0 = rng.standard_normal(64).astype(np.float32)
    rv0 = (np.abs(rng.standard_normal(64)) + 0.5).astype(np.float32)

    def step():
        m = nn.BatchNorm2d(64, momentum=0.3).to(pdt)
        with pt.no_grad():
            m.running_mean.copy_(pt.tensor(rm0).to(pdt))
            m.running_var.copy_(pt.tensor(rv0).to(pdt))
        X = pt.tensor(x).to(pdt)
        m(X)
        assert m.running_mean.dtype is m.running_var.dtype is pdt
        start = [b.float().numpy().astype(np.float64) for b in (X, ) + (
            pt.tensor(rm0).to(pdt), pt.tensor(rv0).to(pdt))]
        want = batchnorm_running_reference(start[0], start[1], start[2], 0.3)
        return [ulps(m.running_mean.float().numpy().astype(np.float64), want[0], dtype),
                ulps(m.running_var.float().numpy().astype(np.float64), want[1], dtype)]

    calls = []
    backend = pt.device("cpu").backend
    hook = backend.fused_optimizers["batch_norm_running"]
    monkeypatch.setitem(backend.fused_optimizers, "batch_norm_running",
                        lambda *a: calls.append(a[0].dtype) or hook(*a))
    for u in step():
        assert u.max() <= 0.5 + 1e-3, u.max()
    assert len(calls) == 1
    monkeypatch.delitem(backend.fused_optimizers, "batch_norm_running")
    assert max(u.max() for u in step()) > 0.5  # the generic path: two roundings
