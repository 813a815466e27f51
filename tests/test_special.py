"""``polyten.special`` (torch.special's names): values and gradients against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt

torch = pytest.importorskip("torch")

X = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, 1e-8])
Y = np.array([-1.0, 0.0, 1.0, np.nan, 2.0, -0.5])


@pytest.mark.parametrize("name", ["expit", "ndtr", "entr", "exp2", "expm1", "log1p", "sinc",
                                  "erf", "round"])
def test_unary_matches_torch(name):
    np.testing.assert_allclose(getattr(pt.special, name)(pt.tensor(X)).numpy(),
                               getattr(torch.special, name)(torch.tensor(X)).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("name", ["expit", "ndtr", "entr", "expm1"])
def test_gradients_match_torch(name):
    x = np.array([0.3, 1.5, 2.0, 0.01])
    p, t = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    getattr(pt.special, name)(p).sum().backward()
    getattr(torch.special, name)(t).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_binary_and_reductions():
    for name in ("xlogy", "xlog1py"):
        np.testing.assert_allclose(
            getattr(pt.special, name)(pt.tensor(X), pt.tensor(Y)).numpy(),
            getattr(torch.special, name)(torch.tensor(X), torch.tensor(Y)).numpy(),
            rtol=1e-12)
    a = np.random.default_rng(0).standard_normal((3, 4))
    for name in ("softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(pt.special, name)(pt.tensor(a), 1).numpy(),
                                   getattr(torch.special, name)(torch.tensor(a), 1).numpy(),
                                   rtol=1e-12)
    np.testing.assert_allclose(pt.special.logsumexp(pt.tensor(a), 0).numpy(),
                               torch.special.logsumexp(torch.tensor(a), 0).numpy(), rtol=1e-12)
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(pt.special.logit(pt.tensor(p)).numpy(),
                               torch.special.logit(torch.tensor(p)).numpy(), rtol=1e-12)
