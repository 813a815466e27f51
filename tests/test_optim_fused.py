"""The cpu backend's fused optimizer steps (``Backend.fused_optimizers``) give exactly the
generic steps' results (a cpu clone without them runs ``polyten.optim._functional``), over the
options, dtypes and a 0-d parameter; the core counts their in-place writes."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten import optim
from polyten.optim import _functional

from conftest import cpu_clone

SHAPES = [(3, 4), (5,), ()]


def _train(device, make, dtype, steps=5):
    rng = np.random.default_rng(0)
    params = [pt.tensor(rng.standard_normal(s), dtype=dtype, device=device,
                        requires_grad=True) for s in SHAPES]
    opt = make(params)
    for k in range(steps):
        for i, p in enumerate(params):
            g = np.random.default_rng(100 * k + i).standard_normal(SHAPES[i])
            p.grad = pt.tensor(g, dtype=dtype, device=device)
        opt.step()
    state = [{k: (v.to("cpu").numpy() if isinstance(v, pt.Tensor) else v)
              for k, v in opt.state[p].items()} for p in params]
    return [p.detach().to("cpu").numpy() for p in params], state, opt


CASES = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd wd maximize": lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1, maximize=True),
    "sgd momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd nesterov wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True,
                                            weight_decay=0.01),
    "sgd dampening maximize": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.3,
                                                   maximize=True),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
    "adam amsgrad wd": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.1),
    "adam maximize": lambda ps: optim.Adam(ps, lr=0.01, maximize=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.05),
    "adamw amsgrad maximize": lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True,
                                                     maximize=True),
}


@pytest.mark.parametrize("dtype", [pt.float64, pt.float32, pt.float16])
@pytest.mark.parametrize("name", list(CASES))
def test_fused_steps_equal_the_generic_steps_exactly(name, dtype):
    make = CASES[name]
    fused_params, fused_state, opt = _train("cpu", make, dtype)
    algo = "adamw" if "adamw" in name else name.split()[0]
    assert _functional.resolve(algo, opt.param_groups[0]["params"]).__name__ == \
        f"{algo}_fused"
    with cpu_clone("nofused") as dev:
        assert not dev.backend.fused_optimizers
        generic_params, generic_state, _ = _train(dev, make, dtype)
    for a, b in zip(fused_params, generic_params):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(fused_state, generic_state):
        assert sa.keys() == sb.keys()
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])


@pytest.mark.parametrize("name", list(CASES))
def test_bfloat16_fused_steps_round_a_float32_step_once(name):
    """bfloat16 parameters are stepped in float32 and rounded once per step (PyTorch's fused
    rule; the generic step rounds every op): one step from the same state equals the float32
    step rounded to bfloat16, and five steps stay within a few bfloat16 ulps of the generic
    ones."""
    import ml_dtypes
    bf = np.dtype(ml_dtypes.bfloat16)
    make = CASES[name]
    one_bf, _, _ = _train("cpu", make, pt.bfloat16, steps=1)
    # the float32 step from the same (bfloat16-exact) start and gradients
    rng = np.random.default_rng(0)
    params = [pt.tensor(rng.standard_normal(s).astype(bf).astype(np.float32),
                        requires_grad=True) for s in SHAPES]
    opt = make(params)
    for i, p in enumerate(params):
        g = np.random.default_rng(i).standard_normal(SHAPES[i]).astype(bf).astype(np.float32)
        p.grad = pt.tensor(g)
    opt.step()
    if opt.defaults.get("momentum", 0) == 0:
        for a, p in zip(one_bf, params):  # (SGD's first momentum step is the core's)
            np.testing.assert_array_equal(a, p.detach().numpy().astype(bf))
    fused, _, _ = _train("cpu", make, pt.bfloat16)
    with cpu_clone("nofused") as dev:
        generic, _, _ = _train(dev, make, pt.bfloat16)
    for a, b in zip(fused, generic):
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32),
                                   rtol=4 * 2.0 ** -7, atol=1e-2)


def test_fused_step_counts_the_writes():
    # a parameter saved for backward, then stepped: the backward must refuse, as PyTorch
    w = pt.tensor([1.0, 2.0], requires_grad=True)
    w.grad = pt.tensor([0.5, 0.5])
    y = (w * w).sum()
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_mixed_devices_take_the_generic_step(cpu2):
    a = pt.zeros(2, requires_grad=True)
    b = pt.zeros(2, device=cpu2, requires_grad=True)
    assert _functional.resolve("sgd", [a, b]) is _functional.sgd


def test_in_place_hooks_may_decline_a_call(monkeypatch):
    """A backend's in-place hooks (clip_grads, clamp_grads, total_norm, batch_norm_running,
    amp_unscale) may return ``NotImplemented`` without writing, as its optimizer steps may
    (the cuda backend does where CuPy has no bfloat16 loop): the core then takes the generic
    path, and the results equal those of a backend without the hooks."""
    from polyten import nn
    hooks = ("clip_grads", "clamp_grads", "total_norm", "batch_norm_running", "amp_unscale")
    backend = pt.device("cpu").backend
    declined = []

    def declining(name):
        def hook(*args, **kwargs):
            declined.append(name)
            return NotImplemented
        return hook

    def run():
        rng = np.random.default_rng(3)
        params = [nn.Parameter(pt.tensor(rng.standard_normal(s), dtype=pt.float32))
                  for s in ((3, 4), (5,))]
        for p in params:
            p.grad = pt.tensor(rng.standard_normal(p.shape) * 4, dtype=pt.float32)
        total = nn.utils.clip_grad_norm_(params, 1.0)
        nn.utils.clip_grad_value_(params, 0.1)
        bn = nn.BatchNorm1d(4)
        bn(pt.tensor(rng.standard_normal((6, 4)), dtype=pt.float32))
        scaler = pt.amp.GradScaler("cpu", init_scale=4.0)
        opt = optim.SGD(params, lr=0.1)
        scaler.unscale_(opt)
        return ([total.item()] + [p.grad.numpy() for p in params]
                + [bn.running_mean.numpy(), bn.running_var.numpy()])

    with_hooks = run()
    monkeypatch.setattr(backend, "fused_optimizers", {
        k: (declining(k) if k in hooks else v) for k, v in backend.fused_optimizers.items()})
    declining_run = run()
    assert sorted(set(declined)) == sorted(hooks)
    monkeypatch.setattr(backend, "fused_optimizers", {
        k: v for k, v in backend.fused_optimizers.items() if k not in hooks})
    generic = run()
    for a, b, c in zip(with_hooks, declining_run, generic):
        np.testing.assert_array_equal(b, c)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)
