"""polyten.optim: parameter trajectories against PyTorch (float64, 20 steps, every option),
parameter groups, state_dict round trips through polyten.save, zero_grad, closures, hooks,
error paths; and the in-place helpers (addcmul_, addcdiv_, lerp_) against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten import optim
from polyten.optim import _functional

from _reference import torch_or_skip

STEPS = 20
RNG = np.random.default_rng(1234)
X = RNG.standard_normal((8, 3))
Y = RNG.standard_normal((8, 2))
INIT = [RNG.standard_normal((4, 3)) * 0.7, RNG.standard_normal(4) * 0.1,
        RNG.standard_normal((2, 4)) * 0.7, RNG.standard_normal(2) * 0.1]


# A tiny tanh MLP with an MSE loss, written in the ops of ``lib`` (polyten or torch), so the
# gradients each optimizer sees come from that framework's autograd.
def _params(lib, init=INIT):
    return [lib.nn.Parameter(lib.tensor(a.copy(), dtype=lib.float64)) for a in init]


def _loss(lib, ps, x=X, y=Y):
    w1, b1, w2, b2 = ps
    h = lib.tanh(lib.tensor(x) @ w1.T + b1)
    return ((h @ w2.T + b2 - lib.tensor(y)) ** 2).mean()


def _run(lib, make, steps=STEPS, params=None, opt=None):
    """``steps`` optimizer steps on the MLP; the parameters after each step (the trajectory),
    the parameters and the optimizer."""
    ps = params if params is not None else _params(lib)
    opt = opt if opt is not None else make(ps)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, ps).backward()
        opt.step()
        traj.append([p.detach().numpy().copy() for p in ps])
    return traj, ps, opt


def _assert_same(ours, theirs, rtol=1e-6, atol=1e-12):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol,
                                       err_msg=f"step {step + 1}, parameter {i}")


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.05, nesterov=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, maximize=True)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.2)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.7)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_trajectory_matches_torch(name, kwargs):
    torch = torch_or_skip()
    ours, _, _ = _run(pt, lambda ps: getattr(optim, name)(ps, **kwargs))
    theirs, _, _ = _run(torch, lambda ps: getattr(torch.optim, name)(ps, **kwargs))
    # torch keeps NAdam's momentum product in a float32 tensor; polyten in a Python float
    _assert_same(ours, theirs, atol=1e-8 if name == "NAdam" else 1e-12)


@pytest.mark.parametrize("name,extra", [("SGD", dict(momentum=0.9)), ("Adam", {}),
                                        ("RMSprop", dict(momentum=0.5)), ("Adagrad", {})])
def test_param_groups_with_their_own_options(name, extra):
    torch = torch_or_skip()

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.02},
                {"params": ps[2:], "lr": 0.2, "weight_decay": 0.1}]

    ours, _, opt = _run(pt, lambda ps: getattr(optim, name)(groups(ps), lr=0.05, **extra))
    theirs, _, _ = _run(torch, lambda ps: getattr(torch.optim, name)(groups(ps), lr=0.05, **extra))
    _assert_same(ours, theirs)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.2]
    assert opt.param_groups[0]["weight_decay"] == 0  # the default fills what a group omits


def test_add_param_group_later_matches_torch():
    torch = torch_or_skip()

    def run(lib):
        ps = _params(lib)
        opt = lib.optim.SGD(ps[:2], lr=0.1, momentum=0.9)
        traj = []
        for i in range(10):
            if i == 4:
                opt.add_param_group({"params": ps[2:], "lr": 0.01})
            opt.zero_grad()
            _loss(lib, ps).backward()
            opt.step()
            traj.append([p.detach().numpy().copy() for p in ps])
        return traj

    _assert_same(run(pt), run(torch))


def test_parameters_without_gradients_are_skipped():
    ps = _params(pt)
    opt = optim.Adam(ps, lr=0.1)
    (ps[0] * ps[0]).sum().backward()  # only the first parameter gets a gradient
    before = [p.detach().numpy().copy() for p in ps]
    opt.step()
    assert not np.allclose(ps[0].detach().numpy(), before[0])
    for p, b in zip(ps[1:], before[1:]):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    assert set(opt.state) == {ps[0]}


def test_step_keeps_parameter_identity_and_memory():
    ps = _params(pt)
    model_view = ps[0][0]  # a view, as a module's submodule might hold
    ids = [id(p._data) for p in ps]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    _loss(pt, ps).backward()
    opt.step()
    assert [id(p._data) for p in ps] == ids
    np.testing.assert_array_equal(model_view.detach().numpy(), ps[0].detach().numpy()[0])
    assert all(p.is_leaf and p.requires_grad for p in ps)


def test_module_parameters_and_float32():
    torch = torch_or_skip()
    model = nn.Linear(3, 2)
    tmodel = torch.nn.Linear(3, 2)
    with torch.no_grad():
        tmodel.weight.copy_(torch.tensor(model.weight.detach().numpy()))
        tmodel.bias.copy_(torch.tensor(model.bias.detach().numpy()))
    opt = optim.Adam(model.parameters(), lr=0.01)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    x = X.astype(np.float32)
    y = Y.astype(np.float32)
    for _ in range(STEPS):
        opt.zero_grad()
        ((model(pt.tensor(x)) - pt.tensor(y)) ** 2).mean().backward()
        opt.step()
        topt.zero_grad()
        ((tmodel(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
    assert model.weight.dtype == pt.float32
    np.testing.assert_allclose(model.weight.detach().numpy(), tmodel.weight.detach().numpy(),
                               rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------ state ---
def _structure(obj):
    """The state_dict's shape with tensors replaced by their shapes (to compare with torch)."""
    if isinstance(obj, dict):
        return {k: _structure(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_structure(v) for v in obj]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return ("tensor", tuple(obj.shape))
    return obj


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("Adam", dict(lr=0.05, amsgrad=True)),
                                         ("RMSprop", dict(lr=0.01, centered=True,
                                                          momentum=0.5)),
                                         ("Adagrad", dict(lr=0.1)),
                                         ("Adamax", dict(lr=0.05)),
                                         ("NAdam", dict(lr=0.05)), ("RAdam", dict(lr=0.05)),
                                         ("Adadelta", dict()), ("Rprop", dict())])
def test_state_dict_format_matches_torch(name, kwargs):
    torch = torch_or_skip()
    _, _, opt = _run(pt, lambda ps: getattr(optim, name)(ps, **kwargs), steps=2)
    tps = _params(torch)
    topt = getattr(torch.optim, name)(tps, **kwargs)
    for _ in range(2):
        topt.zero_grad()
        _loss(torch, tps).backward()
        topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert ours.keys() == theirs.keys()
    assert ours["state"].keys() == theirs["state"].keys() == {0, 1, 2, 3}
    for k in ours["state"]:
        s, t = ours["state"][k], theirs["state"][k]
        assert s.keys() == t.keys()
        if "step" in s:
            assert s["step"] == t["step"].item() == 2
        for key in s:
            if key == "step":
                continue
            if isinstance(s[key], float):  # NAdam's mu_product: a 0-d tensor in torch
                np.testing.assert_allclose(s[key], t[key].item(), rtol=1e-6)
            else:
                np.testing.assert_allclose(s[key].numpy(), t[key].numpy(), rtol=1e-6,
                                           atol=1e-12)
    og, tg = ours["param_groups"][0], theirs["param_groups"][0]
    assert og["params"] == tg["params"] == [0, 1, 2, 3]
    for key, v in og.items():
        assert tg[key] == v, key


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.05, amsgrad=True)),
                                         ("AdamW", dict(lr=0.05)),
                                         ("RMSprop", dict(lr=0.01, centered=True,
                                                          momentum=0.5)),
                                         ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_state_dict_round_trip_through_save(name, kwargs, tmp_path):
    torch = torch_or_skip()
    make = lambda ps: getattr(optim, name)(  # noqa: E731
        [{"params": ps[:2]}, {"params": ps[2:], "lr": kwargs["lr"] / 2}], **kwargs)
    full, _, _ = _run(pt, make)
    first, ps, opt = _run(pt, make, steps=STEPS // 2)
    path = tmp_path / "opt.ckpt"
    pt.save({"model": [p.detach() for p in ps], "optim": opt.state_dict()}, path)
    del opt
    ckpt = pt.load(path)
    fresh = [nn.Parameter(t.clone()) for t in ckpt["model"]]
    opt2 = make(fresh)
    opt2.load_state_dict(ckpt["optim"])
    rest, _, _ = _run(pt, None, steps=STEPS - STEPS // 2, params=fresh, opt=opt2)
    _assert_same(first + rest, full, rtol=0, atol=0)  # bit for bit
    theirs, _, _ = _run(torch, lambda ps: getattr(torch.optim, name)(
        [{"params": ps[:2]}, {"params": ps[2:], "lr": kwargs["lr"] / 2}], **kwargs))
    _assert_same(first + rest, theirs)
    assert opt2.param_groups[1]["lr"] == kwargs["lr"] / 2
    if "betas" in opt2.defaults:
        assert isinstance(opt2.param_groups[0]["betas"], tuple)


def test_load_state_dict_copies_casts_and_accepts_string_keys():
    ps = _params(pt)
    opt = optim.Adam(ps, lr=0.1)
    _loss(pt, ps).backward()
    opt.step()
    sd = opt.state_dict()
    # as a JSON-based format without int keys or tuples would give it back, in float32
    mangled = {"state": {str(k): {kk: (vv.to(pt.float32) if kk != "step" else float(vv))
                                  for kk, vv in v.items()} for k, v in sd["state"].items()},
               "param_groups": [dict(g, betas=list(g["betas"])) for g in sd["param_groups"]]}
    ps2 = _params(pt)
    opt2 = optim.Adam(ps2, lr=0.5)
    opt2.load_state_dict(mangled)
    st = opt2.state[ps2[0]]
    assert st["step"] == 1 and isinstance(st["step"], int)
    assert st["exp_avg"].dtype == pt.float64
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999) and opt2.param_groups[0]["lr"] == 0.1
    assert st["exp_avg"] is not sd["state"][0]["exp_avg"]
    sd2 = opt2.state_dict()
    assert sd2["state"][0]["exp_avg"] is not sd["state"][0]["exp_avg"]


def test_load_state_dict_errors():
    ps = _params(pt)
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    _loss(pt, ps).backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="SGD.load_state_dict: the loaded state has 1 "
                                         "parameter group.*this optimizer has 2"):
        optim.SGD([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter group 0 has 4 parameter.*2 in this"):
        optim.SGD(ps[:2], lr=0.1).load_state_dict(sd)
    other = [nn.Parameter(pt.zeros(5, dtype=pt.float64)) for _ in range(4)]
    with pytest.raises(ValueError, match=r"momentum_buffer.*shape \(4, 3\).*\(5,\).*another "
                                         r"model"):
        optim.SGD(other, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected a dict with keys 'state' and "
                                         "'param_groups'"):
        opt.load_state_dict({"weight": 1})


def test_zero_grad():
    ps = _params(pt)
    opt = optim.SGD(ps, lr=0.1)
    _loss(pt, ps).backward()
    grads = [p.grad for p in ps]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(ps, grads):
        assert p.grad is g
        np.testing.assert_array_equal(g.numpy(), 0)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    opt.zero_grad()  # no gradients: nothing to do


def test_closure_matches_torch_and_returns_the_loss():
    torch = torch_or_skip()
    ps = _params(pt)
    opt = optim.SGD(ps, lr=0.1, momentum=0.5)
    tps = _params(torch)
    topt = torch.optim.SGD(tps, lr=0.1, momentum=0.5)

    def closure():
        opt.zero_grad()
        loss = _loss(pt, ps)
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = _loss(torch, tps)
        loss.backward()
        return loss

    for _ in range(5):
        with pt.no_grad():  # the closure still records: step enables grad around it
            loss = opt.step(closure)
        tloss = topt.step(tclosure)
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
    _assert_same([[p.detach().numpy() for p in ps]], [[p.detach().numpy() for p in tps]])
    assert opt.step() is None


def test_step_hooks_and_repr():
    ps = _params(pt)
    opt = optim.Adam(ps, lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt)))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o is opt)))
    opt.step()
    assert calls == [("pre", True), ("post", True)]
    h1.remove()
    opt.step()
    assert calls[-1] == ("post", True) and len(calls) == 3
    assert repr(opt) == ("Adam (\nParameter Group 0\n    amsgrad: False\n"
                         "    betas: (0.9, 0.999)\n    capturable: False\n"
                         "    decoupled_weight_decay: False\n    differentiable: False\n"
                         "    eps: 1e-08\n    foreach: None\n    fused: None\n    lr: 0.1\n"
                         "    maximize: False\n    weight_decay: 0\n)")


def test_named_parameters_are_accepted():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_fused_implementation_replaces_the_generic_math():
    calls = []

    def fused(params, grads, bufs, **kw):
        calls.append(len(params))
        _functional.sgd(params, grads, bufs, **kw)

    _functional.register_fused("sgd", "cpu", fused)
    try:
        ours, _, _ = _run(pt, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), steps=3)
    finally:
        _functional.register_fused("sgd", "cpu", None)
    assert calls == [4, 4, 4]
    # unregistered: the cpu backend's own fused step (Backend.fused_optimizers)
    assert _functional.resolve("sgd", _params(pt)).__name__ == "sgd_fused"
    with pytest.raises(ValueError, match="unknown algorithm 'lamb'"):
        _functional.register_fused("lamb", "cpu", fused)


# ------------------------------------------------------------------------ errors ---
@pytest.mark.parametrize("make,exc,match", [
    (lambda ps: optim.SGD(ps, lr=-0.1), ValueError, r"SGD: invalid learning rate: lr=-0.1"),
    (lambda ps: optim.Adam(ps, lr=-1), ValueError, r"Adam: invalid learning rate: lr=-1"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.9)), ValueError,
     r"Adam: invalid beta parameter at index 0: 1.0.*\[0, 1\)"),
    (lambda ps: optim.AdamW(ps, betas=(0.9, -0.1)), ValueError,
     r"AdamW: invalid beta parameter at index 1: -0.1"),
    (lambda ps: optim.Adam(ps, betas=0.9), TypeError, r"Adam: betas must be a pair"),
    (lambda ps: optim.Adam(ps, eps=-1e-8), ValueError, r"Adam: invalid epsilon value"),
    (lambda ps: optim.SGD(ps, momentum=-0.5), ValueError, r"SGD: invalid momentum value"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), ValueError,
     r"SGD: Nesterov momentum requires a momentum > 0 and zero dampening"),
    (lambda ps: optim.SGD(ps, lr="0.1"), TypeError, r"SGD: lr \(learning rate\) must be a "
                                                    r"number, got str"),
    (lambda ps: optim.RMSprop(ps, alpha=-0.1), ValueError, r"RMSprop: invalid alpha value"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), ValueError, r"Adagrad: invalid lr_decay"),
    (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1), ValueError,
     r"Adagrad: invalid initial_accumulator_value"),
    (lambda ps: optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": -1}], lr=0.1),
     ValueError, r"SGD: invalid learning rate: lr=-1 \(parameter group 1\)"),
    (lambda ps: optim.SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    (lambda ps: optim.SGD(ps[0], lr=0.1), TypeError, r"SGD: params must be an iterable.*"
                                                     r"single float64 tensor"),
    (lambda ps: optim.SGD(set(ps), lr=0.1), TypeError, r"SGD: parameters must be given in an "
                                                       r"ordered collection"),
    (lambda ps: optim.SGD([ps[0], ps[1], ps[0]], lr=0.1), ValueError,
     r"SGD: parameter group 0 contains the same tensor twice \(position 2"),
    (lambda ps: optim.Adam([{"params": ps[:2]}, {"params": ps[1:]}]), ValueError,
     r"Adam: a parameter .* appears in parameter group 0 and in group 1"),
    (lambda ps: optim.SGD([ps[0] * 2], lr=0.1), ValueError,
     r"SGD: can't optimize a non-leaf tensor \(parameter 0 of group 0.*MulBackward0"),
    (lambda ps: optim.SGD([ps[0], [1.0, 2.0]], lr=0.1), TypeError,
     r"SGD: can only optimize tensors, but parameter 1 of group 0 is list"),
    (lambda ps: optim.Adam([pt.zeros(3, dtype=pt.int64)]), TypeError,
     r"Adam: parameters must be real floating-point tensors.*int64"),
    (lambda ps: optim.SGD([{"lr": 0.1}]), ValueError, r"SGD: parameter group 0 has no "
                                                      r"'params' entry"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_params(pt))


def test_add_param_group_errors_name_the_group():
    ps = _params(pt)
    opt = optim.SGD(ps[:2], lr=0.1)
    with pytest.raises(ValueError, match=r"appears in parameter group 0 and in group 1"):
        opt.add_param_group({"params": [ps[1], ps[2]]})
    with pytest.raises(ValueError, match=r"invalid momentum value: momentum=-1 \(parameter "
                                         r"group 1\)"):
        opt.add_param_group({"params": ps[2:], "momentum": -1})
    assert len(opt.param_groups) == 1


def test_gradient_shape_mismatch_is_reported():
    p = nn.Parameter(pt.zeros(3, dtype=pt.float64))
    p.grad = pt.zeros(3, dtype=pt.float64)
    p._ag.grad = pt.zeros(4, dtype=pt.float64)  # what a buggy hook could leave behind
    with pytest.raises(RuntimeError, match=r"SGD.step: the gradient of a parameter has shape "
                                           r"\(4,\) but the parameter has shape \(3,\)"):
        optim.SGD([p], lr=0.1).step()


# ------------------------------------------------------- addcmul_ / addcdiv_ / lerp_ ---
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))
C = RNG.uniform(0.5, 2.0, (4,))


def _t(a):
    return pt.tensor(a, dtype=pt.float64)


def test_addcmul_addcdiv_against_numpy():
    np.testing.assert_allclose(pt.addcmul(_t(A), _t(B), _t(C), value=-0.5).numpy(),
                               A - 0.5 * B * C, rtol=1e-14)
    np.testing.assert_allclose(pt.addcdiv(_t(A), _t(B), _t(C)).numpy(), A + B / C, rtol=1e-14)
    x = _t(A)
    ident = id(x._data)
    assert x.addcmul_(_t(B), _t(C), value=2) is x and id(x._data) == ident
    np.testing.assert_allclose(x.numpy(), A + 2 * B * C, rtol=1e-14)
    x.addcdiv_(_t(B), _t(C), value=0.25)
    np.testing.assert_allclose(x.numpy(), A + 2 * B * C + 0.25 * B / C, rtol=1e-14)
    assert _t(A).addcmul(_t(B), _t(C)).shape == (3, 4)


@pytest.mark.parametrize("w", [0.3, 0.8, -0.2, 1.0])
def test_lerp_against_numpy(w):
    np.testing.assert_allclose(pt.lerp(_t(A), _t(B), w).numpy(), A + w * (B - A), rtol=1e-13,
                               atol=1e-15)
    x = _t(A)
    x.lerp_(_t(B), w)
    np.testing.assert_allclose(x.numpy(), A + w * (B - A), rtol=1e-13, atol=1e-15)
    wt = RNG.uniform(-0.5, 1.5, (3, 4))
    np.testing.assert_allclose(pt.lerp(_t(A), _t(B), _t(wt)).numpy(), A + wt * (B - A),
                               rtol=1e-13, atol=1e-15)
    if w == 1.0:
        np.testing.assert_array_equal(pt.lerp(_t(A), _t(B), w).numpy(), B)  # exact at 1


def test_inplace_helpers_match_torch():
    torch = torch_or_skip()
    t = lambda a: torch.tensor(a)  # noqa: E731
    np.testing.assert_allclose(_t(A).addcmul_(_t(B), _t(C), value=0.3).numpy(),
                               t(A).addcmul_(t(B), t(C), value=0.3).numpy(), rtol=1e-15)
    np.testing.assert_allclose(_t(A).addcdiv_(_t(B), _t(C), value=-2).numpy(),
                               t(A).addcdiv_(t(B), t(C), value=-2).numpy(), rtol=1e-15)
    for w in (0.1, 0.9):
        np.testing.assert_array_equal(_t(A).lerp_(_t(B), w).numpy(),
                                      t(A).lerp_(t(B), w).numpy())


def test_inplace_helpers_gradients():
    from polyten.autograd import gradcheck
    a, b, c = (_t(v).requires_grad_() for v in (A, B, C))
    assert gradcheck(lambda x, y, z: pt.addcmul(x, y, z, value=0.7), (a, b, c))
    assert gradcheck(lambda x, y, z: pt.addcdiv(x, y, z, value=-1.3), (a, b, c))
    assert gradcheck(lambda x, y: pt.lerp(x, y, 0.3), (a, b))
    assert gradcheck(lambda x, y: pt.lerp(x, y, 0.7), (a, b))
    w = _t(RNG.uniform(-0.4, 1.4, (3, 4))).requires_grad_()
    assert gradcheck(lambda x, y, z: pt.lerp(x, y, z), (a, b, w))
    # in place on a graph tensor is recorded (rebased), as PyTorch's
    x = a * 1.0
    x.addcmul_(b, b, value=2.0)
    x.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones_like(A))
    np.testing.assert_allclose(b.grad.numpy(), 4 * B, rtol=1e-14)


def test_inplace_helpers_errors():
    x = _t(A)
    with pytest.raises(ValueError, match=r"addcmul_: output with shape \(3, 4\) doesn't match "
                                         r"the broadcast shape \(2, 3, 4\)"):
        x.addcmul_(_t(np.ones((2, 3, 4))), _t(B))
    with pytest.raises(ValueError, match=r"addcdiv: cannot broadcast shapes \(3, 4\) and "
                                         r"\(5,\)"):
        pt.addcdiv(x, _t(B), _t(np.ones(5)))
    with pytest.raises(TypeError, match="addcdiv: integer division of tensor1 by tensor2"):
        pt.addcdiv(x, pt.ones(3, 4, dtype=pt.int64), pt.ones(4, dtype=pt.int64))
    with pytest.raises(TypeError, match="addcmul: value must be a number, got str"):
        pt.addcmul(x, x, x, value="2")
    with pytest.raises(TypeError, match="addcmul: tensor2 must be a tensor, got list"):
        pt.addcmul(x, x, [1.0])
    with pytest.raises(TypeError, match=r"lerp_: expected end to have the dtype of input "
                                        r"\(float64\), got float32"):
        x.lerp_(pt.ones(3, 4, dtype=pt.float32), 0.5)
    with pytest.raises(TypeError, match="lerp: input must be a floating-point"):
        pt.lerp(pt.ones(2, dtype=pt.int64), pt.ones(2, dtype=pt.int64), 0.5)
    leaf = _t(A).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        leaf.addcmul_(_t(B), _t(C))


def test_subclass_step_runs_hooks_once_and_required_options():
    class CountingSGD(optim.SGD):
        def step(self, closure=None):
            self.n = getattr(self, "n", 0) + 1
            return super().step(closure)

    ps = _params(pt)
    opt = CountingSGD(ps, lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step()
    assert calls == ["pre", "post"] and opt.n == 1

    class Plain(optim.Optimizer):
        def __init__(self, params, lr=optim.required):
            super().__init__(params, dict(lr=lr))

    with pytest.raises(ValueError, match=r"Plain: parameter group 0 didn't specify a value of "
                                         r"the required option 'lr'"):
        Plain(ps)
    plain = Plain(ps, lr=0.5)
    with pytest.raises(NotImplementedError, match="Plain does not implement step"):
        plain.step()


def test_runs_on_another_backend_and_loads_state_across_backends():
    from conftest import cpu_clone
    with cpu_clone("optimclone") as dev:
        ps = [nn.Parameter(pt.tensor(a.copy(), dtype=pt.float64, device=dev)) for a in INIT]
        opt = optim.Adam(ps, lr=0.05, amsgrad=True)
        ref, ref_ps, ref_opt = _run(pt, lambda p: optim.Adam(p, lr=0.05, amsgrad=True), steps=5)
        for _ in range(5):
            opt.zero_grad()
            w1, b1, w2, b2 = ps
            x, y = pt.tensor(X, device=dev), pt.tensor(Y, device=dev)
            ((pt.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean().backward()
            opt.step()
        assert all(p.device == dev for p in ps)
        assert opt.state[ps[0]]["exp_avg"].device == dev
        _assert_same([[p.detach().to("cpu").numpy() for p in ps]], ref[-1:], rtol=1e-12)
        # state saved on the clone, loaded for cpu parameters: moved to their device
        cpu_ps = [nn.Parameter(p.detach().to("cpu")) for p in ps]
        cpu_opt = optim.Adam(cpu_ps, lr=0.05, amsgrad=True)
        cpu_opt.load_state_dict(opt.state_dict())
        assert cpu_opt.state[cpu_ps[2]]["max_exp_avg_sq"].device == pt.device("cpu")
        rest, _, _ = _run(pt, None, steps=3, params=cpu_ps, opt=cpu_opt)
        more, _, _ = _run(pt, None, steps=3, params=ref_ps, opt=ref_opt)
        _assert_same(rest, more, rtol=1e-12)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.Adadelta(p, rho=1.5), r"Adadelta: invalid rho value: rho=1.5"),
    (lambda p: optim.Rprop(p, etas=(1.5, 1.2)), r"Rprop: invalid eta values"),
    (lambda p: optim.Rprop(p, step_sizes=(1.0, 0.1)), r"Rprop: invalid step_sizes"),
    (lambda p: optim.RAdam(p, betas=(1.0, 0.9)), r"RAdam: invalid beta parameter at index 0"),
    (lambda p: optim.NAdam(p, momentum_decay=-1), r"NAdam: invalid momentum_decay value"),
    (lambda p: optim.Adamax(p, eps=-1.0), r"Adamax: invalid epsilon value"),
])
def test_more_optimizers_refuse_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([pt.nn.Parameter(pt.zeros(2))])


def test_nadam_state_survives_save_and_load(tmp_path):
    p = [pt.nn.Parameter(pt.tensor([0.5, -1.0, 2.0], dtype=pt.float64))]
    opt = optim.NAdam(p, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (p[0] ** 2).sum().backward()
        opt.step()
    pt.save(opt.state_dict(), tmp_path / "opt.pt")
    q = [pt.nn.Parameter(p[0].detach().clone())]
    opt2 = optim.NAdam(q, lr=0.1)
    opt2.load_state_dict(pt.load(tmp_path / "opt.pt"))
    for o, ps in ((opt, p), (opt2, q)):
        o.zero_grad()
        (ps[0] ** 2).sum().backward()
        o.step()
    np.testing.assert_array_equal(p[0].detach().numpy(), q[0].detach().numpy())
    assert opt2.state[q[0]]["mu_product"] == opt.state[p[0]]["mu_product"]


_IMPL_OPTIONS = {"foreach", "fused", "capturable", "differentiable"}


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax",
                                  "NAdam", "RAdam", "Adadelta", "Rprop"])
def test_implementation_options_as_torch(name):
    """foreach / fused / capturable / differentiable: the options each torch optimizer takes
    (scripts check ``'fused' in inspect.signature(AdamW).parameters``), with torch's
    defaults in the groups; foreach=False runs the per-parameter polyten ops with the same
    result; what polyten does not offer is refused with the reason."""
    import inspect
    cls = getattr(optim, name)
    ours = _IMPL_OPTIONS & set(inspect.signature(cls).parameters)
    torch = _torch_or_none()
    if torch is not None:
        tcls = getattr(torch.optim, name)
        assert ours == _IMPL_OPTIONS & set(inspect.signature(tcls).parameters)
        tdef = tcls([torch.zeros(1, requires_grad=True)]).defaults
        assert {k: tdef[k] for k in ours} == {k: cls(_params(pt)).defaults[k] for k in ours}
    runs = []
    for kw in ({}, {"foreach": False}, {"foreach": True}):
        ps = _params(pt)
        opt = cls(ps, **({"lr": 0.01} if name != "Adadelta" else {}), **kw)
        for _ in range(3):
            opt.zero_grad()
            _loss(pt, ps).backward()
            opt.step()
        runs.append([p.detach().numpy() for p in ps])
    for a, b, c in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a, c, rtol=0, atol=0)
    group = cls(_params(pt), foreach=False).param_groups[0]
    from polyten.optim import _functional as F
    alg = {"AdamW": "adamw"}.get(name, name.lower())
    assert F.resolve(alg, group["params"], group) is F._GENERIC[alg]
    if "fused" in ours:
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True`"):
            cls(_params(pt), foreach=True, fused=True)
    if "capturable" in ours:
        with pytest.raises(ValueError, match="capturable=True .*CUDA graph capture"):
            cls(_params(pt), capturable=True)
    with pytest.raises(ValueError, match="differentiable=True .*not supported"):
        cls(_params(pt), differentiable=True)
    with pytest.raises(TypeError, match="foreach must be None, True or False"):
        cls(_params(pt), foreach="yes")


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch
