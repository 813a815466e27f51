"""nn.init: gains, fans, deterministic fills, statistics of the random initialisers with fixed
seeds, reproducibility with polyten.manual_seed, in-place semantics and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.nn import init

from _reference import torch_or_skip


GAINS = [("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0),
         ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)),
         ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
         ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("leaky_relu", 0, math.sqrt(2)),
         ("selu", None, 0.75)]


@pytest.mark.parametrize("name,param,expected", GAINS)
def test_calculate_gain(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-15)


def test_calculate_gain_matches_torch():
    torch = torch_or_skip()
    for name, param, _ in GAINS:
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def test_gain_and_fan_errors():
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="calculate_gain: negative_slope True is not a valid"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match=r"nn.init.xavier_uniform_: fan in and fan out can not "
                                         r"be computed for a tensor with fewer than 2 "
                                         r"dimensions \(got shape \(5,\)\)"):
        init.xavier_uniform_(pt.empty(5))
    with pytest.raises(ValueError, match="nn.init.kaiming_normal_: mode 'fan_avg' not "
                                         "supported"):
        init.kaiming_normal_(pt.empty(3, 4), mode="fan_avg")
    with pytest.raises(ValueError, match="nn.init.eye_: only tensors with 2 dimensions"):
        init.eye_(pt.empty(2, 2, 2))
    with pytest.raises(ValueError, match="nn.init.orthogonal_: only tensors with 2 or more"):
        init.orthogonal_(pt.empty(3))
    with pytest.raises(TypeError, match="nn.init.normal_: expected a tensor"):
        init.normal_([1.0, 2.0])
    with pytest.raises(ValueError, match="nn.init.trunc_normal_: expected a < b"):
        init.trunc_normal_(pt.empty(3), a=1.0, b=-1.0)


def test_deterministic_fills_in_place_on_parameters():
    p = nn.Parameter(pt.empty(3, 4))
    for fn, args, ref in ((init.constant_, (2.5,), np.full((3, 4), 2.5)),
                          (init.ones_, (), np.ones((3, 4))),
                          (init.zeros_, (), np.zeros((3, 4))),
                          (init.eye_, (), np.eye(3, 4))):
        out = fn(p, *args)
        assert out is p  # in place, returned
        np.testing.assert_array_equal(p.detach().numpy(), ref)
        assert p.requires_grad and p.grad_fn is None  # still a leaf: filled under no_grad
    assert init.ones_(pt.empty(2, dtype=pt.int64)).tolist() == [1, 1]


def test_dirac_matches_torch():
    torch = torch_or_skip()
    for shape, groups in (((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((2, 3, 1, 3, 3), 1)):
        ours = init.dirac_(pt.empty(*shape), groups).numpy()
        theirs = torch.nn.init.dirac_(torch.empty(*shape), groups).numpy()
        np.testing.assert_array_equal(ours, theirs)


def _sample(fn, shape=(256, 512), *args, **kwargs):
    pt.manual_seed(1234)
    t = pt.empty(*shape)
    assert fn(t, *args, **kwargs) is t
    v = t.numpy().astype(np.float64)
    pt.manual_seed(1234)
    t2 = fn(pt.empty(*shape), *args, **kwargs)
    np.testing.assert_array_equal(t2.numpy(), t.numpy())  # manual_seed reproduces it
    return v


def test_uniform_and_normal_statistics():
    v = _sample(init.uniform_, (400, 500), -2.0, 3.0)
    assert v.min() >= -2.0 and v.max() < 3.0
    assert abs(v.mean() - 0.5) < 0.01 and abs(v.std() - 5 / math.sqrt(12)) < 0.01
    v = _sample(init.normal_, (400, 500), 1.5, 0.5)
    assert abs(v.mean() - 1.5) < 0.005 and abs(v.std() - 0.5) < 0.005


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_xavier_statistics(kind):
    fan_in, fan_out = 512, 256
    gain = 1.7
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    v = _sample(getattr(init, f"xavier_{kind}_"), (fan_out, fan_in), gain=gain)
    assert abs(v.mean()) < 0.02 * std
    assert abs(v.std() - std) < 0.01 * std
    if kind == "uniform":
        assert np.abs(v).max() <= math.sqrt(3) * std


@pytest.mark.parametrize("kind", ["uniform", "normal"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", math.sqrt(5)),
                                            ("tanh", 0)])
def test_kaiming_statistics(kind, mode, nonlinearity, a):
    shape = (64, 32, 3, 3)  # a conv weight: fans include the receptive field
    fan = 32 * 9 if mode == "fan_in" else 64 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    v = _sample(getattr(init, f"kaiming_{kind}_"), shape, a=a, mode=mode,
                nonlinearity=nonlinearity)
    assert abs(v.mean()) < 0.02 * std
    assert abs(v.std() - std) < 0.015 * std
    if kind == "uniform":
        assert np.abs(v).max() <= math.sqrt(3) * std


def test_kaiming_zero_element_tensor_warns():
    t = pt.empty(0, 3)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert init.kaiming_uniform_(t) is t


def _trunc_moments(mean, std, a, b):
    al, be = (a - mean) / std, (b - mean) / std
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Z = 0.5 * (math.erf(be / math.sqrt(2)) - math.erf(al / math.sqrt(2)))
    m = mean + std * (phi(al) - phi(be)) / Z
    var = std ** 2 * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2)
    return m, math.sqrt(var)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.02, 0.46, 0.6),
                                          (0.0, 1.0, 0.0, 3.0), (2.0, 3.0, -1.0, 10.0)])
def test_trunc_normal_statistics(mean, std, a, b):
    v = _sample(init.trunc_normal_, (300, 400), mean, std, a, b)
    assert v.min() >= a and v.max() <= b
    m, s = _trunc_moments(mean, std, a, b)
    assert abs(v.mean() - m) < 0.01 * s
    assert abs(v.std() - s) < 0.01 * s


def test_trunc_normal_far_tail_and_float64():
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        t = init.trunc_normal_(pt.empty(1000, dtype=pt.float64), 0.0, 1.0, 4.0, 4.5)
    v = t.numpy()
    assert t.dtype == pt.float64 and v.min() >= 4.0 and v.max() <= 4.5 and v.std() > 0.05
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        init.trunc_normal_(pt.empty(10), 10.0, 1.0, -2.0, 2.0)


def test_erfinv_inverts_erf():
    # (trunc_normal_ samples through polyten.erfinv)
    y = np.concatenate([np.linspace(-0.999999, 0.999999, 2001), [1 - 1e-15, -1 + 1e-15]])
    x = pt.erfinv(pt.tensor(y)).numpy()
    np.testing.assert_allclose(np.vectorize(math.erf)(x), y, rtol=0, atol=2e-14)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3), (3, 3)])
def test_orthogonal(shape):
    pt.manual_seed(5)
    t = init.orthogonal_(pt.empty(*shape, dtype=pt.float64), gain=2.0)
    q = t.numpy().reshape(shape[0], -1) / 2.0
    rows, cols = q.shape
    eye = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(eye, np.eye(min(rows, cols)), atol=1e-12)
    pt.manual_seed(5)
    np.testing.assert_array_equal(init.orthogonal_(pt.empty(*shape, dtype=pt.float64),
                                                   gain=2.0).numpy(), t.numpy())


def test_sparse():
    pt.manual_seed(0)
    t = init.sparse_(pt.empty(10, 30), 0.3, std=0.5)
    v = t.numpy()
    assert ((v == 0).sum(0) == 3).all()
    assert abs(v[v != 0].std() - 0.5) < 0.1


def test_init_does_not_record_and_keeps_dtype():
    w = nn.Parameter(pt.empty(20, 10, dtype=pt.float64))
    for fn in (init.xavier_uniform_, init.kaiming_normal_, init.orthogonal_,
               init.trunc_normal_, init.normal_):
        out = fn(w)
        assert out is w and w.dtype == pt.float64 and w.grad_fn is None and w.is_leaf


def test_generator_argument_is_refused_clearly():
    with pytest.raises(Exception, match="generator"):
        init.uniform_(pt.empty(3), generator=object())
