"""polyten.optim.lr_scheduler: every scheduler's learning-rate (and momentum) sequence equals
PyTorch's, state_dict round trips through polyten.save, and the error paths."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten import optim
from polyten.optim import lr_scheduler as S

from _reference import torch_or_skip

STEPS = 30


def _opt(lib=pt, kind="SGD", **kw):
    """A ``lib`` (polyten or torch) optimizer with two parameter groups (lr 0.1 and 0.05)."""
    ps = [lib.nn.Parameter(lib.zeros(n, dtype=lib.float64)) for n in (2, 3)]
    groups = [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}]
    return getattr(lib.optim, kind)(groups, lr=0.1, **kw)


def _record(opt, scheds, steps=STEPS, metrics=None):
    """lrs (and momenta) after construction and after each step; schedulers step in order."""
    out = []

    def snap():
        row = [g["lr"] for g in opt.param_groups]
        row += [g["betas"][0] if "betas" in g else g.get("momentum", 0)
                for g in opt.param_groups]
        row += [float(v) for v in scheds[-1].get_last_lr()]
        out.append(row)

    snap()
    for i in range(steps):
        opt.step()
        for s in scheds:
            if metrics is not None:
                s.step(metrics[i])
            else:
                s.step()
        snap()
    return np.array(out)


def _compare(make, kind="SGD", opt_kw=None, steps=STEPS, metrics=None):
    torch = torch_or_skip()
    opt_kw = opt_kw or {}
    opt = _opt(pt, kind, **opt_kw)
    topt = _opt(torch, kind, **opt_kw)
    ours = _record(opt, make(S, opt), steps, metrics)
    theirs = _record(topt, make(torch.optim.lr_scheduler, topt), steps, metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    return ours


CASES = {
    "StepLR": lambda m, o: [m.StepLR(o, step_size=4, gamma=0.5)],
    "MultiStepLR": lambda m, o: [m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3)],
    "ExponentialLR": lambda m, o: [m.ExponentialLR(o, gamma=0.9)],
    "CosineAnnealingLR": lambda m, o: [m.CosineAnnealingLR(o, T_max=10)],
    "CosineAnnealingLR-eta_min": lambda m, o: [m.CosineAnnealingLR(o, T_max=7,
                                                                   eta_min=0.001)],
    "LambdaLR": lambda m, o: [m.LambdaLR(o, lambda e: 0.95 ** e)],
    "LambdaLR-per-group": lambda m, o: [m.LambdaLR(o, [lambda e: 1 / (e + 1),
                                                       lambda e: 0.9 ** e])],
    "MultiplicativeLR": lambda m, o: [m.MultiplicativeLR(o, lambda e: 0.97)],
    "LinearLR": lambda m, o: [m.LinearLR(o, start_factor=0.25, total_iters=8)],
    "LinearLR-decay": lambda m, o: [m.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                               total_iters=12)],
    "ConstantLR": lambda m, o: [m.ConstantLR(o, factor=0.5, total_iters=4)],
    "PolynomialLR": lambda m, o: [m.PolynomialLR(o, total_iters=12, power=2.0)],
    "SequentialLR": lambda m, o: [m.SequentialLR(o, [m.LinearLR(o, 0.1, total_iters=5),
                                                     m.CosineAnnealingLR(o, T_max=15)],
                                                 milestones=[5])],
    "SequentialLR-three": lambda m, o: [m.SequentialLR(
        o, [m.ConstantLR(o, 0.5, total_iters=3), m.ExponentialLR(o, 0.9),
            m.StepLR(o, 3, 0.5)], milestones=[4, 12])],
    "chained-two-schedulers": lambda m, o: [m.ExponentialLR(o, gamma=0.95),
                                            m.StepLR(o, step_size=5, gamma=0.5)],
    "chained-cosine-warmup": lambda m, o: [m.LinearLR(o, 0.2, total_iters=6),
                                           m.CosineAnnealingLR(o, T_max=30)],
    "ChainedScheduler": lambda m, o: [m.ChainedScheduler([m.ConstantLR(o, 0.3, total_iters=4),
                                                          m.ExponentialLR(o, 0.9)])],
    "CosineAnnealingWarmRestarts": lambda m, o: [m.CosineAnnealingWarmRestarts(o, T_0=7)],
    "CosineAnnealingWarmRestarts-T_mult": lambda m, o: [m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.01)],
    "CyclicLR-no-momentum": lambda m, o: [m.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=4,
                                                     cycle_momentum=False)],
}


@pytest.mark.parametrize("name", list(CASES))
def test_lr_sequence_matches_torch(name):
    _compare(CASES[name])


ONECYCLE = {
    "cos": dict(max_lr=1.0, total_steps=STEPS),
    "linear": dict(max_lr=[1.0, 0.5], total_steps=STEPS, anneal_strategy="linear"),
    "three_phase": dict(max_lr=0.8, epochs=3, steps_per_epoch=10, three_phase=True,
                        pct_start=0.25),
    "no-momentum-cycle": dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False,
                              div_factor=10.0, final_div_factor=100.0),
    "momenta": dict(max_lr=0.5, total_steps=STEPS, base_momentum=[0.8, 0.7],
                    max_momentum=0.99, pct_start=0.4),
}


@pytest.mark.parametrize("kind,opt_kw", [("SGD", dict(momentum=0.9)), ("Adam", {})])
@pytest.mark.parametrize("case", list(ONECYCLE))
def test_one_cycle_lr_and_momentum_match_torch(case, kind, opt_kw):
    rows = _compare(lambda m, o: [m.OneCycleLR(o, **ONECYCLE[case])], kind, opt_kw)
    if ONECYCLE[case].get("cycle_momentum", True):
        assert len(set(rows[:, 2])) > 2  # the momentum (Adam: beta1) really cycles


def test_one_cycle_rejects_extra_steps():
    opt = _opt(pt, momentum=0.9)
    s = S.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        s.step()
    with pytest.raises(ValueError, match=r"OneCycleLR: tried to step 4 times, but the "
                                         r"schedule has total_steps=3"):
        s.step()


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.89999, 0.85, 0.86, 0.87, 0.87, 0.88,
                   0.8, 0.8, 0.8, 0.8, 0.8, 0.81, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76,
                   0.77, 0.78, 0.79, 0.8, 0.81]


@pytest.mark.parametrize("kw", [
    dict(),
    dict(patience=1, factor=0.5),
    dict(patience=2, cooldown=2, factor=0.5, min_lr=0.01),
    dict(patience=0, threshold=0.05, threshold_mode="abs", min_lr=[0.02, 0.001]),
    dict(mode="max", patience=1, factor=0.3),
    dict(mode="max", patience=2, threshold=0.01, threshold_mode="abs", eps=1e-3),
])
def test_reduce_lr_on_plateau_matches_torch(kw):
    rows = _compare(lambda m, o: [m.ReduceLROnPlateau(o, **kw)], metrics=PLATEAU_METRICS)
    if kw:
        assert rows[-1, 0] < rows[0, 0]


def test_reduce_lr_on_plateau_accepts_a_tensor_metric():
    opt = _opt()
    s = S.ReduceLROnPlateau(opt, patience=0)
    s.step(pt.tensor(1.0))
    s.step(pt.tensor([2.0]))
    assert s.get_last_lr() == [0.010000000000000002, 0.005000000000000001]
    with pytest.raises(TypeError, match="ReduceLROnPlateau.step: metrics must be a number"):
        s.step("low")


def test_step_with_epoch_uses_the_closed_form_like_torch():
    torch = torch_or_skip()
    for make in (lambda m, o: m.StepLR(o, 3, 0.5), lambda m, o: m.CosineAnnealingLR(o, 10),
                 lambda m, o: m.MultiStepLR(o, [2, 5]), lambda m, o: m.ExponentialLR(o, 0.9)):
        opt, topt = _opt(), _opt(torch)
        s, ts = make(S, opt), make(torch.optim.lr_scheduler, topt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for e in (4, 7, 2, 9):
                opt.step()
                topt.step()
                s.step(e)
                ts.step(e)
                np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        with pytest.warns(UserWarning, match="passing an epoch to scheduler.step"):
            s.step(3)


def _resume(make_sched, tmp_path, n_first=10, metrics=None, kind="SGD", opt_kw=None):
    """Run STEPS steps straight, and n_first + a reload through polyten.save; same lrs."""
    opt_kw = opt_kw or {}

    def fresh():
        opt = _opt(pt, kind, **opt_kw)
        return opt, make_sched(opt)

    opt, s = fresh()
    straight = _record(opt, [s], STEPS, metrics)
    opt, s = fresh()
    first = _record(opt, [s], n_first, metrics)
    path = tmp_path / "sched.ckpt"
    pt.save({"optim": opt.state_dict(), "sched": s.state_dict()}, path)
    ckpt = pt.load(path)
    opt2, s2 = fresh()
    opt2.load_state_dict(ckpt["optim"])
    s2.load_state_dict(ckpt["sched"])
    rest = _record(opt2, [s2], STEPS - n_first,
                   None if metrics is None else metrics[n_first:])
    np.testing.assert_array_equal(np.vstack([first, rest[1:]]), straight)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR",
                                  "SequentialLR", "LambdaLR", "ChainedScheduler",
                                  "CosineAnnealingWarmRestarts-T_mult",
                                  "CyclicLR-no-momentum"])
def test_state_dict_round_trip(name, tmp_path):
    _resume(lambda o: CASES[name](S, o)[0], tmp_path)


def test_state_dict_round_trip_one_cycle_and_plateau(tmp_path):
    _resume(lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=STEPS, three_phase=True),
            tmp_path, kind="Adam")
    _resume(lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="triangular2"),
            tmp_path, kind="Adam")
    _resume(lambda o: S.ReduceLROnPlateau(o, patience=1, cooldown=1), tmp_path,
            metrics=PLATEAU_METRICS)


def test_lambda_lr_state_saves_callable_objects_not_functions():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    opt = _opt()
    w = Warmup(5)
    s = S.LambdaLR(opt, [w, lambda e: 1.0])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"n": 5}, None] and "optimizer" not in sd
    w2 = Warmup(99)
    s2 = S.LambdaLR(_opt(), [w2, lambda e: 1.0])
    s2.load_state_dict(sd)
    assert w2.n == 5


def test_base_class_bookkeeping():
    opt = _opt()
    s = S.StepLR(opt, 2)
    assert isinstance(s, S._LRScheduler) or issubclass(S._LRScheduler, S.LRScheduler)
    assert issubclass(S._LRScheduler, S.LRScheduler)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.05] == s.base_lrs
    assert s.last_epoch == 0 and s.get_last_lr() == [0.1, 0.05]
    opt.step()
    s.step()
    assert s.last_epoch == 1
    with pytest.warns(UserWarning, match="get_last_lr"):
        s.get_lr()
    with pytest.raises(KeyError, match=r"initial_lr.*param_groups\[0\].*last_epoch=5"):
        S.StepLR(_opt(), 2, last_epoch=5)
    s5 = S.StepLR(opt, 2, last_epoch=5)  # resuming works once initial_lr is there
    assert s5.last_epoch == 6


def test_warns_when_stepped_before_the_optimizer():
    opt = _opt()
    s = S.ExponentialLR(opt, 0.9)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step"):
        s.step()
    opt2 = _opt()
    s2 = S.ExponentialLR(opt2, 0.9)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


@pytest.mark.parametrize("make,exc,match", [
    (lambda o: S.StepLR("opt", 3), TypeError, r"StepLR: expected a polyten.optim.Optimizer, "
                                              r"got str"),
    (lambda o: S.StepLR(o, 0), ValueError, r"StepLR: step_size must be a positive integer"),
    (lambda o: S.LinearLR(o, start_factor=0), ValueError, r"LinearLR: start_factor must be "
                                                          r"in \(0, 1\]"),
    (lambda o: S.ConstantLR(o, factor=1.5), ValueError, r"ConstantLR: factor must be in"),
    (lambda o: S.LambdaLR(o, [lambda e: 1.0]), ValueError, r"LambdaLR: expected 2 "
                                                           r"lr_lambdas"),
    (lambda o: S.LambdaLR(o, 0.5), TypeError, r"LambdaLR: lr_lambda must be a function"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError, r"T_max must be a positive"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], milestones=[]),
     ValueError, r"SequentialLR: expects one milestone fewer than schedulers"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(_opt(), 3)], milestones=[3]),
     ValueError, r"SequentialLR: all schedulers must belong to the same optimizer"),
    (lambda o: S.SequentialLR(o, [], milestones=[]), ValueError, r"at least one scheduler"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.ReduceLROnPlateau(o)], milestones=[2]),
     ValueError, r"does not support ReduceLROnPlateau"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0), ValueError, r"OneCycleLR: give either "
                                                        r"total_steps or both epochs"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), ValueError,
     r"pct_start must be a float between 0 and 1"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, r"anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: S.OneCycleLR(o, max_lr=[1.0, 2.0, 3.0], total_steps=10), ValueError,
     r"max_lr must have one value per parameter group \(2\), got 3"),
    (lambda o: S.OneCycleLR(optim.Adagrad([nn.Parameter(pt.zeros(2))]), max_lr=1.0,
                            total_steps=10), ValueError,
     r"cycle_momentum=True needs an optimizer with momentum or betas \(Adagrad"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, r"factor must be < 1.0"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), ValueError, r"mode must be 'min' or "
                                                              r"'max', got 'up'"),
    (lambda o: S.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     r"threshold_mode must be 'rel' or 'abs'"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     r"min_lr must have one value per parameter group"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_opt())


def test_cosine_annealing_is_the_recursive_form():
    # after an external change of lr the recursive form follows from the new value (PyTorch)
    opt = _opt()
    s = S.CosineAnnealingLR(opt, T_max=10)
    opt.step()
    s.step()
    opt.param_groups[0]["lr"] = 1.0
    opt.step()
    s.step()
    t = 2
    expected = (1 + math.cos(math.pi * t / 10)) / (1 + math.cos(math.pi * (t - 1) / 10)) * 1.0
    assert s.get_last_lr()[0] == pytest.approx(expected, rel=1e-15)


CYCLIC = {
    "triangular": dict(base_lr=0.01, max_lr=0.1, step_size_up=4),
    "triangular2": dict(base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=3, step_size_down=5,
                        mode="triangular2"),
    "exp_range": dict(base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range",
                      gamma=0.97),
    "scale_fn-iterations": dict(base_lr=0.01, max_lr=0.1, step_size_up=4,
                                scale_fn=lambda x: 1 / (1 + 0.05 * x),
                                scale_mode="iterations", base_momentum=[0.7, 0.75]),
}


@pytest.mark.parametrize("kind,opt_kw", [("SGD", dict(momentum=0.9)), ("Adam", {})])
@pytest.mark.parametrize("case", list(CYCLIC))
def test_cyclic_lr_and_momentum_match_torch(case, kind, opt_kw):
    rows = _compare(lambda m, o: [m.CyclicLR(o, **CYCLIC[case])], kind, opt_kw)
    assert len(set(rows[:, 2])) > 2  # the momentum (Adam: beta1) cycles


def test_cyclic_lr_errors_and_state():
    opt = _opt()
    with pytest.raises(ValueError, match="mode must be one of"):
        S.CyclicLR(opt, 0.01, 0.1, mode="sine")
    with pytest.raises(ValueError, match="cycle_momentum=True needs an optimizer with"):
        S.CyclicLR(_opt(kind="Adagrad"), 0.01, 0.1)
    sched = S.CyclicLR(opt, 0.01, 0.1, step_size_up=3, scale_fn=lambda x: 0.5,
                       cycle_momentum=False)
    assert "_scale_fn_custom" not in sched.state_dict()  # a function is not saved


def test_warm_restarts_with_fractional_epochs_match_torch():
    """``step(epoch + i / iters)`` inside each epoch, SGDR's documented use."""
    torch = torch_or_skip()
    opt, topt = _opt(), _opt(torch)
    ours = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.001)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=2, T_mult=2,
                                                                  eta_min=0.001)
    for epoch in range(9):
        for i in range(4):
            opt.step()
            topt.step()
            ours.step(epoch + i / 4)
            theirs.step(epoch + i / 4)
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative epoch"):
        ours.step(-1)
    with pytest.raises(ValueError, match="T_mult must be an integer >= 1"):
        S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
