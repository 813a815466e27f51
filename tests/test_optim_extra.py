"""polyten.optim's LBFGS, ASGD, Adafactor and Muon against PyTorch: parameter trajectories
step by step (float64), optimizer state and state_dict structure, save/load round trips,
parameter groups, lr schedulers, zero_grad and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten import optim

from _reference import torch_or_skip

RNG = np.random.default_rng(2024)


# ------------------------------------------------------------------ harness ---
def _tensors(lib, arrays, dtype="float64"):
    return [lib.tensor(a.copy(), dtype=getattr(lib, dtype), requires_grad=True)
            for a in arrays]


def _numpy(v):
    """A NumPy value of a polyten/torch tensor or a Python number."""
    if hasattr(v, "detach"):
        v = v.detach()
        if "bfloat16" in str(v.dtype):
            v = v.float()
        return np.array(v.numpy(), dtype=np.float64)  # a copy: the tensor moves on
    return np.array(v, dtype=np.float64)


def _run(lib, make, init, loss_fn, steps, *, sched=None, closure_step=False, dtype="float64"):
    """``steps`` steps of the optimizer ``make(params)`` on ``loss_fn(lib, params)``; the
    parameters after each step, the parameters and the optimizer."""
    ps = _tensors(lib, init, dtype)
    opt = make(ps)
    scheduler = sched(opt) if sched is not None else None
    traj = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(lib, ps)
        loss.backward()
        return loss

    for _ in range(steps):
        if closure_step:
            opt.step(closure)
        else:
            closure()
            opt.step()
        if scheduler is not None:
            scheduler.step()
        traj.append([_numpy(p) for p in ps])
    return traj, ps, opt


def _same(ours, theirs, rtol=1e-10, atol=1e-12):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol,
                                       err_msg=f"step {step + 1}, parameter {i}")


def _same_state(ours, theirs, rtol=1e-10, atol=1e-14):
    """Same keys and values (numbers and 0-d tensors compare by value; lists elementwise)."""
    assert set(ours) == set(theirs)
    for key in ours:
        a, b = ours[key], theirs[key]
        if isinstance(b, (list, tuple)):
            assert isinstance(a, (list, tuple)) and len(a) == len(b), key
            for x, y in zip(a, b):
                assert (x is None) == (y is None), key
                if x is not None:
                    np.testing.assert_allclose(_numpy(x), _numpy(y), rtol=rtol, atol=atol,
                                               err_msg=key)
        elif b is None:
            assert a is None, key
        else:
            x, y = _numpy(a), _numpy(b)
            assert x.shape == y.shape, (key, x.shape, y.shape)
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=key)


def _same_groups(ours, theirs):
    assert len(ours) == len(theirs)
    for og, tg in zip(ours, theirs):
        assert set(og) == set(tg)
        for key in og:
            assert og[key] == tg[key], key


# objectives, written in the ops of ``lib`` so each framework computes its own gradients
def _rosenbrock(lib, ps):
    x = ps[0]
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


LSQ_A = RNG.standard_normal((20, 5))
LSQ_B = RNG.standard_normal(20)
LOG_X = RNG.standard_normal((30, 4))
LOG_Y = (RNG.random(30) < 0.5).astype(np.float64)


def _least_squares(lib, ps):
    w, b = ps
    r = lib.tensor(LSQ_A) @ w + b - lib.tensor(LSQ_B)
    return (r * r).mean() + 0.01 * (w * w).sum()


def _logistic(lib, ps):
    w, b = ps  # w: (4, 1), b: (1,)
    z = (lib.tensor(LOG_X) @ w).reshape(-1) + b
    return (lib.log1p(lib.exp(-z.abs())) + z.clamp(min=0) - lib.tensor(LOG_Y) * z).mean()


# a smooth loss on tensors of any shape (vectors, matrices, 3-D, 0-d): a quadratic with a
# quartic term around targets
SHAPES = [(3, 4), (5,), (2, 3, 4), ()]
INIT = [RNG.standard_normal(s) for s in SHAPES]
TARGETS = [RNG.standard_normal(s) for s in SHAPES]


def _bowl(lib, ps, sign=1.0):
    total = 0
    for i, (p, t) in enumerate(zip(ps, TARGETS)):
        e = p - lib.tensor(t)
        total = total + ((e * e) * (i + 1)).sum() + 0.1 * (e ** 4).sum()
    return total * sign


def _hill(lib, ps):
    return _bowl(lib, ps, -1.0)


def _step_lr(lib):
    return lambda opt: lib.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)


# -------------------------------------------------------------------- LBFGS ---
LBFGS_CASES = [
    # (objective, initial values, options, steps, tolerance)
    ("rosenbrock2", _rosenbrock, [np.array([-1.5, 2.0])],
     dict(max_iter=10, history_size=7), 3, 1e-9),
    ("rosenbrock2", _rosenbrock, [np.array([-1.5, 2.0])],
     dict(max_iter=10, history_size=7, line_search_fn="strong_wolfe"), 6, 1e-10),
    ("rosenbrock10", _rosenbrock, [np.linspace(-1.2, 1.1, 10)],
     dict(max_iter=8, history_size=5), 5, 1e-9),
    ("rosenbrock10", _rosenbrock, [np.linspace(-1.2, 1.1, 10)],
     dict(max_iter=8, history_size=5, line_search_fn="strong_wolfe"), 4, 1e-9),
    ("lsq", _least_squares, [RNG.standard_normal(5), np.array(0.3)],
     dict(lr=0.5, max_iter=5), 4, 1e-10),
    ("lsq", _least_squares, [RNG.standard_normal(5), np.array(0.3)],
     dict(max_iter=5, line_search_fn="strong_wolfe", tolerance_grad=1e-12), 3, 1e-10),
    ("logistic", _logistic, [RNG.standard_normal((4, 1)), np.zeros(1)],
     dict(max_iter=6, history_size=3), 4, 1e-10),
    ("logistic", _logistic, [RNG.standard_normal((4, 1)), np.zeros(1)],
     dict(max_iter=6, history_size=3, line_search_fn="strong_wolfe"), 4, 1e-10),
]


@pytest.mark.parametrize("name,loss,init,kwargs,steps,tol", LBFGS_CASES,
                         ids=[f"{c[0]}-{c[3].get('line_search_fn')}" for c in LBFGS_CASES])
def test_lbfgs_trajectory_and_state_match_torch(name, loss, init, kwargs, steps, tol):
    torch = torch_or_skip()
    ours, _, opt = _run(pt, lambda ps: optim.LBFGS(ps, **kwargs), init, loss, steps,
                        closure_step=True)
    theirs, _, topt = _run(torch, lambda ps: torch.optim.LBFGS(ps, **kwargs), init, loss,
                           steps, closure_step=True)
    _same(ours, theirs, rtol=tol, atol=tol)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd["state"]) == list(tsd["state"]) == [0]  # kept under the first parameter
    s, t = sd["state"][0], tsd["state"][0]
    assert (s["func_evals"], s["n_iter"]) == (t["func_evals"], t["n_iter"])
    _same_state(s, t, rtol=1e-6, atol=1e-9)
    _same_groups(sd["param_groups"], tsd["param_groups"])


def _to_polyten(v):
    """A torch optimizer state value with polyten tensors for torch's."""
    if isinstance(v, dict):
        return {k: _to_polyten(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_to_polyten(x) for x in v)
    if hasattr(v, "detach"):
        return pt.tensor(v.detach().numpy().copy())
    return v


@pytest.mark.parametrize("n,kwargs", [
    (2, dict(max_iter=3, history_size=4)),
    (2, dict(max_iter=4, history_size=4, line_search_fn="strong_wolfe")),
    (10, dict(max_iter=3, history_size=5)),
    (10, dict(max_iter=4, history_size=5, line_search_fn="strong_wolfe")),
])
def test_lbfgs_each_step_from_torch_state(n, kwargs):
    # Rosenbrock amplifies the last-bit differences of reductions between the frameworks
    # (about tenfold per step), so over a long run each step starts from torch's parameters
    # and state: every step of the way to the minimum is then the same to ~1e-12
    torch = torch_or_skip()
    x0 = np.array([-1.5, 2.0]) if n == 2 else np.linspace(-1.2, 1.1, n)
    tx = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.LBFGS([tx], **kwargs)
    px = pt.tensor(x0, requires_grad=True)
    opt = optim.LBFGS([px], **kwargs)

    def closure(lib, x, o):
        def run():
            o.zero_grad()
            loss = _rosenbrock(lib, [x])
            loss.backward()
            return loss
        return run

    err = []
    for step in range(25):
        with pt.no_grad():
            px.copy_(pt.tensor(tx.detach().numpy().copy()))
        opt.load_state_dict(_to_polyten(topt.state_dict()))
        ours = opt.step(closure(pt, px, opt)).item()
        theirs = topt.step(closure(torch, tx, topt)).item()
        assert ours == pytest.approx(theirs, rel=1e-14, abs=1e-300)
        err.append(np.abs(px.detach().numpy() - tx.detach().numpy()).max())
        np.testing.assert_allclose(px.detach().numpy(), tx.detach().numpy(), rtol=1e-10,
                                   atol=1e-11, err_msg=f"step {step + 1}")
        s, t = opt.state[px], topt.state[tx]
        assert (s["func_evals"], s["n_iter"]) == (t["func_evals"], t["n_iter"])
    assert max(err) < 1e-11
    assert theirs < _rosenbrock(torch, [torch.tensor(x0)]).item() / 10  # it did progress


def test_lbfgs_returns_first_loss_and_stops_at_optimum():
    torch = torch_or_skip()
    x = pt.tensor([1.0, 1.0], dtype=pt.float64, requires_grad=True)  # Rosenbrock's minimum
    opt = optim.LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = _rosenbrock(pt, [x])
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, pt.Tensor) and loss.item() == 0.0
    assert len(calls) == 1 and opt.state[x] == {"func_evals": 1, "n_iter": 0}
    # the loss returned is the one at the start of the step, as torch's
    y0 = np.array([-1.0, 1.5])
    _, ps, opt = _run(pt, lambda ps: optim.LBFGS(ps, max_iter=3), [y0], _rosenbrock, 0)

    def closure2():
        opt.zero_grad()
        loss = _rosenbrock(pt, ps)
        loss.backward()
        return loss

    start = _rosenbrock(torch, [torch.tensor(y0)]).item()
    assert opt.step(closure2).item() == pytest.approx(start, rel=1e-15)


def test_lbfgs_max_eval_and_parameter_without_grad():
    torch = torch_or_skip()
    init = [RNG.standard_normal(5), np.array(0.3), np.ones((2, 2))]  # the last one is unused

    def loss(lib, ps):
        return _least_squares(lib, ps[:2])

    kw = dict(max_iter=30, max_eval=7, line_search_fn="strong_wolfe", history_size=4)
    ours, _, opt = _run(pt, lambda ps: optim.LBFGS(ps, **kw), init, loss, 3, closure_step=True)
    theirs, _, topt = _run(torch, lambda ps: torch.optim.LBFGS(ps, **kw), init, loss, 3,
                           closure_step=True)
    _same(ours, theirs)
    assert opt.state_dict()["state"][0]["func_evals"] == \
        topt.state_dict()["state"][0]["func_evals"]
    np.testing.assert_array_equal(ours[-1][2], np.ones((2, 2)))


def test_lbfgs_float32_matches_torch():
    torch = torch_or_skip()
    init = [np.linspace(-1.2, 1.1, 6)]
    kw = dict(max_iter=5, line_search_fn="strong_wolfe")
    ours, ps, _ = _run(pt, lambda ps: optim.LBFGS(ps, **kw), init, _rosenbrock, 2,
                       closure_step=True, dtype="float32")
    theirs, _, _ = _run(torch, lambda ps: torch.optim.LBFGS(ps, **kw), init, _rosenbrock, 2,
                        closure_step=True, dtype="float32")
    assert ps[0].dtype == pt.float32
    _same(ours, theirs, rtol=1e-4, atol=1e-5)


def test_lbfgs_state_dict_round_trip_through_save(tmp_path):
    kw = dict(max_iter=4, history_size=3, line_search_fn="strong_wolfe")
    init = [RNG.standard_normal((4, 1)), np.zeros(1)]
    make = lambda ps: optim.LBFGS(ps, **kw)  # noqa: E731
    full, _, _ = _run(pt, make, init, _logistic, 6, closure_step=True)
    first, ps, opt = _run(pt, make, init, _logistic, 3, closure_step=True)
    pt.save({"params": [p.detach() for p in ps], "optim": opt.state_dict()}, tmp_path / "c")
    ckpt = pt.load(tmp_path / "c")
    fresh = [t.clone().requires_grad_() for t in ckpt["params"]]
    opt2 = make(fresh)
    opt2.load_state_dict(ckpt["optim"])
    # the state is copied: the flat vectors (not of the first parameter's shape) and lists
    st, st2 = opt.state[ps[0]], opt2.state[fresh[0]]
    assert st2["d"] is not st["d"] and tuple(st2["d"].shape) == (5,)
    assert len(st2["old_dirs"]) == len(st["old_dirs"]) <= 3

    def closure():
        opt2.zero_grad()
        loss = _logistic(pt, fresh)
        loss.backward()
        return loss

    rest = []
    for _ in range(3):
        opt2.step(closure)
        rest.append([_numpy(p) for p in fresh])
    _same(first + rest, full, rtol=0, atol=0)  # bit for bit


def test_lbfgs_with_step_lr_matches_torch():
    torch = torch_or_skip()
    init = [RNG.standard_normal(5), np.array(0.3)]
    kw = dict(lr=0.8, max_iter=3)
    ours, _, opt = _run(pt, lambda ps: optim.LBFGS(ps, **kw), init, _least_squares, 12,
                        closure_step=True, sched=_step_lr(pt))
    theirs, _, _ = _run(torch, lambda ps: torch.optim.LBFGS(ps, **kw), init, _least_squares,
                        12, closure_step=True, sched=_step_lr(torch))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    _same(ours, theirs)


def test_lbfgs_errors():
    ps = _tensors(pt, [np.ones(3), np.ones(2)])
    opt = optim.LBFGS(ps)
    with pytest.raises(TypeError, match="LBFGS.step: a closure is required"):
        opt.step()
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}])
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        opt.add_param_group({"params": [pt.ones(2, requires_grad=True)]})
    with pytest.raises(ValueError, match="invalid learning rate: lr=-1"):
        optim.LBFGS(ps, lr=-1)
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'.*"
                                         "'wolfe'"):
        optim.LBFGS(ps, line_search_fn="wolfe")
    with pytest.raises(ValueError, match="invalid history_size=0"):
        optim.LBFGS(ps, history_size=0)
    with pytest.raises(TypeError, match="max_iter must be an int, got.*float"):
        optim.LBFGS(ps, max_iter=2.5)
    opt.param_groups[0]["line_search_fn"] = "backtracking"
    with pytest.raises(ValueError, match="LBFGS.step: line_search_fn"):
        opt.step(lambda: pt.tensor(0.0))
    assert optim.LBFGS(ps, max_iter=8).param_groups[0]["max_eval"] == 10  # torch's default


# --------------------------------------------------------------------- ASGD ---
ASGD_CASES = [
    dict(),
    dict(lr=0.05, t0=10, lambd=1e-2),                       # averaging starts at step 11
    dict(lr=0.05, t0=5.5, lambd=1e-3, alpha=0.5, weight_decay=0.1),
    dict(lr=0.03, t0=12, maximize=True),
    dict(lr=0.05, t0=3, weight_decay=0.05, maximize=True, foreach=False),
]


@pytest.mark.parametrize("kwargs", ASGD_CASES)
def test_asgd_trajectory_and_state_match_torch(kwargs):
    torch = torch_or_skip()
    loss = _hill if kwargs.get("maximize") else _bowl
    ours, _, opt = _run(pt, lambda ps: optim.ASGD(ps, **kwargs), INIT, loss, 30)
    theirs, _, topt = _run(torch, lambda ps: torch.optim.ASGD(ps, **kwargs), INIT, loss, 30)
    _same(ours, theirs, rtol=1e-12, atol=1e-14)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd["state"]) == list(tsd["state"]) == [0, 1, 2, 3]
    for k in sd["state"]:
        s, t = sd["state"][k], tsd["state"][k]
        assert s["step"] == t["step"].item() == 30 and isinstance(s["step"], int)
        assert s["eta"] == t["eta"].item() and s["mu"] == t["mu"].item()  # same rounding
        _same_state(s, t, rtol=1e-12)
    _same_groups(sd["param_groups"], tsd["param_groups"])
    if kwargs.get("t0", 1e6) < 30:  # averaging has started: ax differs from the parameters
        assert not np.allclose(sd["state"][0]["ax"].numpy(), ours[-1][0])


def test_asgd_param_groups_step_lr_and_round_trip(tmp_path):
    torch = torch_or_skip()

    def make(lib):
        return lambda ps: lib.optim.ASGD([{"params": ps[:2]},
                                          {"params": ps[2:], "lr": 0.02, "t0": 4,
                                           "weight_decay": 0.1}], lr=0.05, t0=8)

    full, _, _ = _run(pt, make(pt), INIT, _bowl, 20, sched=_step_lr(pt))
    theirs, _, _ = _run(torch, make(torch), INIT, _bowl, 20, sched=_step_lr(torch))
    _same(full, theirs, rtol=1e-12, atol=1e-14)
    _, ps, opt = _run(pt, make(pt), INIT, _bowl, 10)
    pt.save(opt.state_dict(), tmp_path / "asgd")
    opt2 = make(pt)([p.detach().clone().requires_grad_() for p in ps])
    opt2.load_state_dict(pt.load(tmp_path / "asgd"))
    assert opt2.param_groups[1]["t0"] == 4 and opt2.param_groups[0]["t0"] == 8
    full10, _, _ = _run(pt, make(pt), INIT, _bowl, 20)
    params2 = opt2.param_groups[0]["params"] + opt2.param_groups[1]["params"]
    for _ in range(10):
        opt2.zero_grad()
        _bowl(pt, params2).backward()
        opt2.step()
    for a, b in zip(params2, full10[-1]):
        np.testing.assert_array_equal(_numpy(a), b)


def test_asgd_skips_parameters_without_grad_and_zero_grad():
    ps = _tensors(pt, [np.ones(3), np.ones(2)])
    opt = optim.ASGD(ps, lr=0.1)
    (ps[0] * ps[0]).sum().backward()
    opt.step()
    # p (1 - lambd eta) - eta g with eta = lr (as float32) and g = 2 p
    np.testing.assert_allclose(ps[0].detach().numpy(), (1 - 1e-4 * 0.1) - 0.1 * 2, rtol=1e-7)
    assert ps[1] not in opt.state and (ps[1].detach().numpy() == 1).all()
    opt.zero_grad()
    assert ps[0].grad is None
    assert opt.step(lambda: pt.tensor(3.0)).item() == 3.0  # the closure's loss


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(lr=-0.1), ValueError, r"ASGD: invalid learning rate: lr=-0.1"),
    (dict(weight_decay=-1), ValueError, r"invalid weight_decay value: weight_decay=-1"),
    (dict(lambd="x"), TypeError, r"lambd \(decay term lambd\) must be a number"),
    (dict(capturable=True), ValueError, r"capturable=True"),
    (dict(foreach=1), TypeError, r"foreach must be None, True or False"),
])
def test_asgd_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        optim.ASGD(_tensors(pt, [np.ones(2)]), **kwargs)


# ---------------------------------------------------------------- Adafactor ---
ADAFACTOR_CASES = [
    dict(),
    dict(lr=0.05),
    dict(lr=0.05, weight_decay=0.1, beta2_decay=-0.5),
    dict(lr=0.2, eps=(1e-3, 1e-2), d=1.5),
    dict(lr=0.05, maximize=True, weight_decay=0.02, foreach=False),
]


@pytest.mark.parametrize("kwargs", ADAFACTOR_CASES)
def test_adafactor_trajectory_and_state_match_torch(kwargs):
    torch = torch_or_skip()
    loss = _hill if kwargs.get("maximize") else _bowl
    ours, _, opt = _run(pt, lambda ps: optim.Adafactor(ps, **kwargs), INIT, loss, 25)
    theirs, _, topt = _run(torch, lambda ps: torch.optim.Adafactor(ps, **kwargs), INIT, loss,
                           25)
    _same(ours, theirs, rtol=1e-12, atol=1e-14)
    sd, tsd = opt.state_dict(), topt.state_dict()
    for k, shape in enumerate(SHAPES):
        s, t = sd["state"][k], tsd["state"][k]
        assert s["step"] == t["step"].item() == 25
        _same_state(s, t, rtol=1e-12)
        if len(shape) >= 2:  # factored over the last two dims
            assert tuple(s["row_var"].shape) == shape[:-1] + (1,)
            assert tuple(s["col_var"].shape) == shape[:-2] + (1, shape[-1])
        else:
            assert tuple(s["variance"].shape) == shape
    _same_groups(sd["param_groups"], tsd["param_groups"])


def test_adafactor_factored_estimate_against_numpy():
    # one step on a matrix from zero state: R, C are the row/column means of G*G and the
    # update is G / sqrt(R C / mean(R)), its RMS clipped to d, scaled by max(eps2, RMS(p)) rho
    p0, g = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6))
    p = pt.tensor(p0.copy(), requires_grad=True, dtype=pt.float64)
    p.grad = pt.tensor(g)
    opt = optim.Adafactor([p], lr=0.5)
    opt.step()
    r = (g * g).mean(axis=1, keepdims=True)
    c = (g * g).mean(axis=0, keepdims=True)
    u = g / np.sqrt(r * c / r.mean())
    u /= max(1.0, np.sqrt((u * u).mean()))
    want = p0 - max(1e-3, np.sqrt((p0 * p0).mean())) * 0.5 * u
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12)


def test_adafactor_param_groups_step_lr_and_round_trip(tmp_path):
    torch = torch_or_skip()

    def make(lib):
        return lambda ps: lib.optim.Adafactor([{"params": ps[:2], "weight_decay": 0.1},
                                               {"params": ps[2:], "lr": 0.03,
                                                "eps": (1e-4, 1e-3)}], lr=0.3)

    full, _, _ = _run(pt, make(pt), INIT, _bowl, 16, sched=_step_lr(pt))
    theirs, _, _ = _run(torch, make(torch), INIT, _bowl, 16, sched=_step_lr(torch))
    _same(full, theirs, rtol=1e-12, atol=1e-14)
    _, ps, opt = _run(pt, make(pt), INIT, _bowl, 8)
    pt.save(opt.state_dict(), tmp_path / "af")
    opt2 = make(pt)([p.detach().clone().requires_grad_() for p in ps])
    opt2.load_state_dict(pt.load(tmp_path / "af"))
    assert opt2.param_groups[1]["eps"] == (1e-4, 1e-3)
    params2 = opt2.param_groups[0]["params"] + opt2.param_groups[1]["params"]
    for _ in range(8):
        opt2.zero_grad()
        _bowl(pt, params2).backward()
        opt2.step()
    full16, _, _ = _run(pt, make(pt), INIT, _bowl, 16)
    for a, b in zip(params2, full16[-1]):
        np.testing.assert_array_equal(_numpy(a), b)
    # factors of the wrong shape (a state saved for another model) are refused
    sd = opt.state_dict()
    sd["state"][0]["row_var"] = pt.zeros(4, 1, dtype=pt.float64)
    with pytest.raises(ValueError, match=r"'row_var' of parameter 0 has shape \(4, 1\) but "
                                         r"a parameter of shape \(3, 4\) needs \(3, 1\)"):
        make(pt)(_tensors(pt, INIT)).load_state_dict(sd)


def test_adafactor_float32_matches_torch():
    torch = torch_or_skip()
    ours, ps, _ = _run(pt, lambda ps: optim.Adafactor(ps, lr=0.05), INIT, _bowl, 10,
                       dtype="float32")
    theirs, _, _ = _run(torch, lambda ps: torch.optim.Adafactor(ps, lr=0.05), INIT, _bowl,
                        10, dtype="float32")
    assert all(p.dtype == pt.float32 for p in ps)
    _same(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(lr=-1.0), ValueError, r"Adafactor: invalid learning rate: lr=-1.0"),
    (dict(beta2_decay=0.5), ValueError, r"beta2_decay=0.5; it must be <= 0"),
    (dict(eps=(-1e-3, 1e-3)), ValueError, r"invalid epsilon1: eps\[0\]=-0.001"),
    (dict(eps=(None, -1.0)), ValueError, r"invalid epsilon2: eps\[1\]=-1.0"),
    (dict(eps=1e-3), TypeError, r"eps must be a pair \(eps1, eps2\)"),
    (dict(eps=(None, None)), TypeError, r"eps\[1\] must be a number"),
    (dict(d=0.5), ValueError, r"invalid clipping threshold: d=0.5.*>= 1"),
    (dict(weight_decay=-0.1), ValueError, r"invalid weight_decay value"),
])
def test_adafactor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        optim.Adafactor(_tensors(pt, [np.ones((2, 2))]), **kwargs)


# --------------------------------------------------------------------- Muon ---
MUON_INIT = [RNG.standard_normal((6, 9)) * 0.5, RNG.standard_normal((9, 4)) * 0.5]
MUON_X = RNG.standard_normal((16, 6))
MUON_Y = RNG.standard_normal((16, 4))


def _mlp(lib, ps):
    h = lib.tanh(lib.tensor(MUON_X) @ ps[0])
    return ((h @ ps[1] - lib.tensor(MUON_Y)) ** 2).mean()


MUON_CASES = [
    dict(lr=0.02),
    dict(lr=0.02, nesterov=False, momentum=0.8, weight_decay=0.01),
    dict(lr=0.01, adjust_lr_fn="match_rms_adamw", ns_steps=3),
    dict(lr=0.01, adjust_lr_fn="original", ns_coefficients=(2.0, -1.5, 0.5), eps=1e-5),
]


@pytest.mark.parametrize("kwargs", MUON_CASES)
def test_muon_trajectory_matches_torch(kwargs):
    torch = torch_or_skip()
    ours, _, opt = _run(pt, lambda ps: optim.Muon(ps, **kwargs), MUON_INIT, _mlp, 10)
    theirs, _, topt = _run(torch, lambda ps: torch.optim.Muon(ps, **kwargs), MUON_INIT, _mlp,
                           10)
    # the orthogonalization runs in bfloat16: the roundings agree with torch's, so the
    # results match to far below bfloat16's resolution
    _same(ours, theirs, rtol=1e-9, atol=1e-12)
    sd, tsd = opt.state_dict(), topt.state_dict()
    for k in (0, 1):
        _same_state(sd["state"][k], tsd["state"][k], rtol=1e-9, atol=1e-12)
    _same_groups(sd["param_groups"], tsd["param_groups"])


def test_muon_orthogonalizes():
    # with no momentum history and 0 weight decay, the update is a near-orthogonal matrix:
    # singular values in the quintic's band around 1 (about 0.7 .. 1.2)
    p = pt.zeros(5, 8, dtype=pt.float64, requires_grad=True)
    p.grad = pt.tensor(RNG.standard_normal((5, 8)))
    optim.Muon([p], lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0).step()
    s = np.linalg.svd(-p.detach().numpy(), compute_uv=False)
    assert s.min() > 0.6 and s.max() < 1.25


def test_muon_param_groups_step_lr_and_round_trip(tmp_path):
    torch = torch_or_skip()

    def make(lib):
        return lambda ps: lib.optim.Muon([{"params": ps[:1]},
                                          {"params": ps[1:], "lr": 0.005, "nesterov": False}],
                                         lr=0.02)

    full, _, _ = _run(pt, make(pt), MUON_INIT, _mlp, 12, sched=_step_lr(pt))
    theirs, _, _ = _run(torch, make(torch), MUON_INIT, _mlp, 12, sched=_step_lr(torch))
    _same(full, theirs, rtol=1e-9, atol=1e-12)
    _, ps, opt = _run(pt, make(pt), MUON_INIT, _mlp, 6)
    pt.save(opt.state_dict(), tmp_path / "muon")
    opt2 = make(pt)([p.detach().clone().requires_grad_() for p in ps])
    opt2.load_state_dict(pt.load(tmp_path / "muon"))
    params2 = [g["params"][0] for g in opt2.param_groups]
    for _ in range(6):
        opt2.zero_grad()
        _mlp(pt, params2).backward()
        opt2.step()
    full12, _, _ = _run(pt, make(pt), MUON_INIT, _mlp, 12)
    for a, b in zip(params2, full12[-1]):
        np.testing.assert_array_equal(_numpy(a), b)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(lr=-1.0), ValueError, r"Muon: invalid learning rate: lr=-1.0"),
    (dict(momentum=-0.5), ValueError, r"invalid momentum value"),
    (dict(weight_decay=-0.5), ValueError, r"invalid weight_decay value"),
    (dict(adjust_lr_fn="rms"), ValueError, r"adjust_lr_fn='rms' is not supported"),
    (dict(ns_steps=100), ValueError, r"ns_steps=100.*less than 100"),
    (dict(ns_coefficients=(1.0, 2.0)), ValueError, r"ns_coefficients must be a tuple of "
                                                   r"exactly 3 numbers"),
])
def test_muon_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        optim.Muon(_tensors(pt, [np.ones((2, 3))]), **kwargs)


def test_muon_refuses_non_matrix_parameters():
    with pytest.raises(ValueError, match=r"Muon only supports 2-D parameters, but parameter "
                                         r"1 of group 0 has shape \(3,\).*AdamW"):
        optim.Muon(_tensors(pt, [np.ones((2, 3)), np.ones(3)]))
