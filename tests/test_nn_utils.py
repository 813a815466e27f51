"""nn.utils: gradient clipping (norms of every order, the returned total, non-finite norms)
and parameters <-> vector, against NumPy and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.nn.utils import (clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_,
                              get_total_norm, parameters_to_vector, vector_to_parameters)

from _reference import copy_weights, torch_or_skip


def _params_with_grads(seed=0, dtype=pt.float64):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal((3, 4)) * 3, rng.standard_normal(5), rng.standard_normal(())]
    params = []
    for g in grads:
        p = nn.Parameter(pt.zeros(g.shape, dtype=dtype))
        p.grad = pt.tensor(g, dtype=dtype)
        params.append(p)
    return params, grads


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_against_numpy(norm_type, max_norm):
    params, grads = _params_with_grads()
    flat = np.concatenate([g.reshape(-1) for g in grads])
    if math.isinf(norm_type):
        total = np.abs(flat).max()
    else:
        total = (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    out = clip_grad_norm_(params, max_norm, norm_type)
    assert out.shape == () and out.dtype == pt.float64
    np.testing.assert_allclose(out.item(), total, rtol=1e-12)
    coef = min(max_norm / (total + 1e-6), 1.0)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)


def test_clip_grad_norm_matches_torch():
    torch = torch_or_skip()
    params, grads = _params_with_grads(1, pt.float32)
    tparams = []
    for g in grads:
        t = torch.zeros(g.shape, requires_grad=True)
        t.grad = torch.tensor(g, dtype=torch.float32)
        tparams.append(t)
    for norm_type in (2.0, math.inf):
        ours = clip_grad_norm_(params, 1.0, norm_type)
        theirs = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)
        for p, t in zip(params, tparams):
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)
            assert p.grad.dtype == pt.float32


def test_clip_grad_norm_single_tensor_none_grads_and_module():
    p = nn.Parameter(pt.zeros(3))
    assert clip_grad_norm_(p, 1.0).item() == 0.0  # no gradients: total norm 0
    p.grad = pt.tensor([3.0, 4.0, 0.0])
    total = clip_grad_norm_(p, 1.0)
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8, 0.0], rtol=1e-5)
    m = nn.Linear(3, 2)
    m(pt.ones(4, 3)).sum().backward()
    before = get_total_norm([q.grad for q in m.parameters()])
    clip_grad_norm_(m.parameters(), 0.1)
    after = get_total_norm([q.grad for q in m.parameters()])
    assert before.item() > 0.1 and after.item() == pytest.approx(0.1, rel=1e-4)


def test_split_halves_of_clip_grad_norm():
    params, grads = _params_with_grads(2)
    total = get_total_norm([p.grad for p in params], 2.0)
    clip_grads_with_norm_(params, 1.0, total)
    flat = np.concatenate([p.grad.numpy().reshape(-1) for p in params])
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-5)


def test_non_finite_total_norm():
    p = nn.Parameter(pt.zeros(2))
    p.grad = pt.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match=r"The total norm of order 2.0 for gradients from "
                                           r"`parameters` is non-finite"):
        clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert math.isnan(clip_grad_norm_(p, 1.0).item())
    with pytest.raises(TypeError, match="clip_grad_norm_: max_norm must be a number"):
        clip_grad_norm_(p, "1.0")


def test_clip_grad_value():
    params, grads = _params_with_grads(3)
    assert clip_grad_value_(params, 0.5) is None
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.5, 0.5))
    with pytest.raises(TypeError, match="clip_grad_value_: parameters must be tensors"):
        clip_grad_value_([1.0], 0.5)


def test_parameters_to_vector_and_back():
    torch = torch_or_skip()
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    copy_weights(m, tm)
    vec = parameters_to_vector(m.parameters())
    tvec = torch.nn.utils.parameters_to_vector(tm.parameters())
    assert tuple(vec.shape) == (11,)
    np.testing.assert_array_equal(vec.detach().numpy(), tvec.detach().numpy())
    # differentiable: the gradient of a function of the vector reaches the parameters
    (vec * pt.arange(11.0)).sum().backward()
    np.testing.assert_array_equal(m[0].weight.grad.numpy().reshape(-1), np.arange(6.0))
    ids = [id(p) for p in m.parameters()]
    new = pt.arange(11.0)
    vector_to_parameters(new, m.parameters())
    assert [id(p) for p in m.parameters()] == ids  # identities kept
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m[1].bias.detach().numpy(), [10.0])
    np.testing.assert_array_equal(parameters_to_vector(m.parameters()).detach().numpy(),
                                  np.arange(11.0))


def test_vector_to_parameters_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="vector_to_parameters: expected a tensor, but got: "
                                        "list"):
        vector_to_parameters([1.0] * 6, m.parameters())
    with pytest.raises(ValueError, match="vector_to_parameters: vec has 5 elements but the "
                                         "parameters have 6 in all"):
        vector_to_parameters(pt.zeros(5), m.parameters())


def test_mixed_devices_refused(cpu2):
    a = nn.Parameter(pt.zeros(2))
    b = nn.Parameter(pt.zeros(2, device=cpu2))
    with pytest.raises(TypeError, match="parameters_to_vector: found two parameters on "
                                        "different devices"):
        parameters_to_vector([a, b])


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
@pytest.mark.parametrize("dtype", [pt.float32, pt.float64])
def test_clip_grad_norm_fused_and_generic_paths_agree(norm_type, dtype, monkeypatch):
    """The cpu backend's total_norm / clip_grads (fused_optimizers) against polyten's generic
    vector_norm + mul_ path, with an empty gradient; mixed dtypes take the generic path."""
    def run():
        params, grads = _params_with_grads(4, dtype)
        e = nn.Parameter(pt.zeros(0, dtype=dtype))
        e.grad = pt.zeros(0, dtype=dtype)
        if norm_type == math.inf:  # no identity: both paths raise, as torch's vector_norm
            with pytest.raises(RuntimeError, match="inf norm on an empty tensor"):
                clip_grad_norm_(params + [e], 0.3, norm_type)
        total = clip_grad_norm_(params + ([e] if norm_type == 2.0 else []), 0.3, norm_type)
        return total.item(), [p.grad.numpy() for p in params]
    fused = run()
    backend = pt.device("cpu").backend
    ops = {k: v for k, v in backend.fused_optimizers.items()
           if k not in ("total_norm", "clip_grads")}
    monkeypatch.setattr(backend, "fused_optimizers", ops)
    generic = run()
    tol = 1e-6 if dtype == pt.float32 else 1e-14
    assert fused[0] == pytest.approx(generic[0], rel=tol)
    for a, b in zip(fused[1], generic[1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    monkeypatch.undo()
    a = nn.Parameter(pt.zeros(2))
    b = nn.Parameter(pt.zeros(2, dtype=pt.float64))
    a.grad, b.grad = pt.tensor([3.0, 0.0]), pt.tensor([0.0, 4.0], dtype=pt.float64)
    assert clip_grad_norm_([a, b], 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)


def test_clip_grad_norm_nan_total_makes_nan_gradients():
    """As PyTorch: a NaN total norm (error_if_nonfinite off) scales every gradient by NaN."""
    p, q = nn.Parameter(pt.zeros(2)), nn.Parameter(pt.zeros(3))
    p.grad, q.grad = pt.tensor([float("nan"), 1.0]), pt.ones(3)
    assert math.isnan(clip_grad_norm_([p, q], 1.0).item())
    assert np.isnan(q.grad.numpy()).all()


@pytest.mark.parametrize("clip", [0.5, -0.25])
@pytest.mark.parametrize("dtype", [pt.float32, pt.float64])
def test_clip_grad_value_fused_generic_and_torch_agree(clip, dtype, monkeypatch):
    """The backend's clamp_grads (fused_optimizers) equals polyten's generic clamp_ and
    torch's clip_grad_value_, with a NaN gradient (kept) and a negative clip value (then
    min > max, and torch sets every element to max)."""
    def run():
        params, grads = _params_with_grads(5, dtype)
        params[0].grad[0, 0] = float("nan")
        clip_grad_value_(params, clip)
        return [p.grad.numpy() for p in params], grads
    fused, grads = run()
    backend = pt.device("cpu").backend
    monkeypatch.setattr(backend, "fused_optimizers", {
        k: v for k, v in backend.fused_optimizers.items() if k != "clamp_grads"})
    generic, _ = run()
    for a, b in zip(fused, generic):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(fused[0][0, 0])
    torch = torch_or_skip()
    ts = []
    tdt = torch.float64 if dtype == pt.float64 else torch.float32
    for g in grads:
        t = torch.zeros(g.shape, dtype=tdt, requires_grad=True)
        t.grad = torch.tensor(g, dtype=tdt)
        ts.append(t)
    ts[0].grad[0, 0] = float("nan")
    torch.nn.utils.clip_grad_value_(ts, clip)
    for a, t in zip(fused, ts):
        np.testing.assert_array_equal(a, t.grad.numpy())
