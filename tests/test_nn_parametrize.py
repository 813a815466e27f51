"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm, orthogonal)
and the older hook-based nn.utils.weight_norm / spectral_norm.

Against PyTorch with the same weights (float64): parametrized values, gradients of the
originals, spectral norm's u/v buffers over several training steps (and not in eval mode),
state_dict keys and values in both directions (a polyten state_dict loads strictly into the
same PyTorch structure and gives the same outputs), and the module mechanics -- the injected
``Parametrized<Class>``, assignment through ``right_inverse``, caching, removal, errors.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.nn.utils import parametrizations as PZ
from polyten.nn.utils import parametrize as P
from polyten.nn.utils import (remove_spectral_norm, remove_weight_norm, spectral_norm,
                              weight_norm)

from _reference import close, copy_weights, rand, torch_or_skip


def _np(t):
    return t.detach().numpy()


def _to_torch(state):
    torch = torch_or_skip()
    return {k: torch.tensor(v.numpy()) for k, v in state.items()}


def _same_grads(pm, tm):
    tparams = dict(tm.named_parameters())
    assert [n for n, _ in pm.named_parameters()] == list(tparams)
    for n, p in pm.named_parameters():
        if tparams[n].grad is None:
            assert p.grad is None, n
        else:
            close(p.grad.numpy(), tparams[n].grad.numpy())


# --------------------------------------------------------------------- parametrizations ---
class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, X):
        return X * self.s

    def right_inverse(self, X):
        return X / self.s


class RankOne(nn.Module):
    def forward(self, x, y):
        return x.unsqueeze(-1) @ y.unsqueeze(-2)

    def right_inverse(self, Z):
        return Z[:, 0].clone(), pt.ones(Z.shape[1], dtype=Z.dtype)


class NoInverse(nn.Module):
    def forward(self, X):
        return X * 2


def _torch_symmetric():
    torch = torch_or_skip()

    class TSymmetric(torch.nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).mT

        def right_inverse(self, A):
            return A.triu()
    return TSymmetric()


def test_register_parametrization_matches_torch():
    torch = torch_or_skip()
    tm = torch.nn.Linear(4, 4).double()
    pm = nn.Linear(4, 4, dtype=pt.float64)
    copy_weights(pm, tm)
    weight_before = pm.weight
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", _torch_symmetric())
    out = P.register_parametrization(pm, "weight", Symmetric())
    assert out is pm
    assert type(pm).__name__ == "ParametrizedLinear" and isinstance(pm, nn.Linear)
    assert P.type_before_parametrizations(pm) is nn.Linear
    assert P.is_parametrized(pm) and P.is_parametrized(pm, "weight")
    assert not P.is_parametrized(pm, "bias")
    # the original is the same Parameter object (an optimizer built before stays valid)
    assert pm.parametrizations.weight.original is weight_before
    assert list(pm.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original"]
    w = pm.weight
    close(_np(w), _np(w).T)
    close(_np(w), _np(tm.weight))
    assert pm.bias is pm._parameters["bias"]  # other attributes: the usual fast path
    x = rand(3, 4, seed=1)
    po, to = pm(pt.tensor(x)), tm(torch.tensor(x))
    close(_np(po), _np(to))
    g = rand(3, 4, seed=2)
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    _same_grads(pm, tm)
    # assignment goes through right_inverse into the original, in place
    A = rand(4, 4, seed=3)
    A = A + A.T
    pm.weight = pt.tensor(A)
    with torch.no_grad():
        tm.weight = torch.tensor(A)
    assert pm.parametrizations.weight.original is weight_before
    close(_np(pm.weight), A)
    close(_np(pm.parametrizations.weight.original), _np(tm.parametrizations.weight.original))
    # a polyten state_dict loads into the same torch structure and back
    tm2 = torch.nn.Linear(4, 4).double()
    torch.nn.utils.parametrize.register_parametrization(tm2, "weight", _torch_symmetric())
    tm2.load_state_dict(_to_torch(pm.state_dict()))
    close(_np(tm2(torch.tensor(x))), _np(pm(pt.tensor(x))))


def test_parameters_and_optimizer_step():
    pm = nn.Linear(3, 3, dtype=pt.float64)
    P.register_parametrization(pm, "weight", Symmetric())
    names = [n for n, _ in pm.named_parameters()]
    assert names == ["bias", "parametrizations.weight.original"]
    opt = pt.optim.SGD(pm.parameters(), lr=0.1)
    before = _np(pm.parametrizations.weight.original).copy()
    pm(pt.ones(2, 3, dtype=pt.float64)).sum().backward()
    opt.step()
    assert not np.allclose(_np(pm.parametrizations.weight.original), before)
    close(_np(pm.weight), _np(pm.weight).T)


def test_chained_parametrizations_and_unsafe():
    torch = torch_or_skip()

    class TScale(torch.nn.Module):
        def __init__(self, s):
            super().__init__()
            self.s = s

        def forward(self, X):
            return X * self.s

        def right_inverse(self, X):
            return X / self.s

    tm = torch.nn.Linear(3, 3).double()
    pm = nn.Linear(3, 3, dtype=pt.float64)
    copy_weights(pm, tm)
    for mod, reg, sym, sc in ((tm, torch.nn.utils.parametrize.register_parametrization,
                               _torch_symmetric(), TScale(3.0)),
                              (pm, P.register_parametrization, Symmetric(), Scale(3.0))):
        reg(mod, "weight", sym)
        reg(mod, "weight", sc)
    assert len(pm.parametrizations.weight) == 2
    close(_np(pm.weight), _np(tm.weight))
    assert list(pm.state_dict()) == list(tm.state_dict())
    pm.weight.sum().backward()
    tm.weight.sum().backward()
    _same_grads(pm, tm)
    # a parametrization that changes the shape needs unsafe=True
    class Flatten(nn.Module):
        def forward(self, X):
            return X.reshape(-1)
    m = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"register_parametrization: registering a "
                                         r"parametrization may not change the shape.*\(2, 3\).*"
                                         r"\(6,\).*unsafe=True"):
        P.register_parametrization(m, "weight", Flatten())
    assert not P.is_parametrized(m) and type(m) is nn.Linear  # nothing changed
    P.register_parametrization(m, "weight", Flatten(), unsafe=True)
    assert tuple(m.weight.shape) == (6,)

    class ToDouble(nn.Module):
        def forward(self, X):
            return X.to(pt.float64)
    with pytest.raises(ValueError, match="may not change the dtype.*float32.*float64"):
        P.register_parametrization(nn.Linear(2, 2), "weight", ToDouble())
    m = nn.Linear(2, 2)
    P.register_parametrization(m, "weight", Scale(2.0))
    with pytest.raises(ValueError, match=r"may not change the dtype or shape.*module.weight: "
                                         r"float32 \(2, 2\).*float64 \(2, 2\)"):
        P.register_parametrization(m, "weight", ToDouble())


def test_several_originals():
    m = nn.Linear(3, 4, dtype=pt.float64)
    P.register_parametrization(m, "weight", RankOne())
    pl = m.parametrizations.weight
    assert not pl.is_tensor and pl.ntensors == 2
    assert isinstance(pl.original0, nn.Parameter) and isinstance(pl.original1, nn.Parameter)
    assert [n for n, _ in m.named_parameters()] == [
        "bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    W = _np(m.weight)
    assert np.linalg.matrix_rank(W) == 1
    m.weight.sum().backward()
    assert pl.original0.grad is not None and pl.original1.grad is not None
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        P.remove_parametrizations(m, "weight", leave_parametrized=False)
    P.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    close(_np(m.weight), W)


def test_buffers_can_be_parametrized():
    m = nn.BatchNorm1d(3)
    P.register_parametrization(m, "running_var", Scale(2.0))
    assert "parametrizations.running_var.original" in m.state_dict()
    assert "running_var" not in m.state_dict()
    close(_np(m.running_var), np.ones(3))  # Scale's right_inverse stored 0.5
    orig = m.parametrizations.running_var.original
    close(orig.numpy(), np.full(3, 0.5))
    assert not isinstance(orig, nn.Parameter) and "original" in \
        m.parametrizations.running_var._buffers


def test_cached():
    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Symmetric())
    assert m.weight is not m.weight
    with P.cached():
        a = m.weight
        assert m.weight is a
        with P.cached():
            assert m.weight is a
        assert m.weight is a  # still inside the outer block
    assert m.weight is not a


def test_remove_parametrizations():
    m = nn.Linear(3, 3, dtype=pt.float64)
    orig = m.weight
    P.register_parametrization(m, "weight", Symmetric())
    P.register_parametrization(m, "bias", Scale(2.0))
    value = _np(m.weight).copy()
    bias_orig = _np(m.parametrizations.bias.original).copy()
    P.remove_parametrizations(m, "weight")  # keeps the parametrized value, same Parameter
    assert m.weight is orig and isinstance(m.weight, nn.Parameter)
    close(_np(m.weight), value)
    assert type(m).__name__ == "ParametrizedLinear"  # bias is still parametrized
    P.remove_parametrizations(m, "bias", leave_parametrized=False)
    close(_np(m.bias), bias_orig)
    assert type(m) is nn.Linear and "parametrizations" not in m._modules
    assert list(m.state_dict()) == ["weight", "bias"]
    with pytest.raises(ValueError, match="remove_parametrizations: Module Linear does not have "
                                         "a parametrization on 'weight'"):
        P.remove_parametrizations(m, "weight")


def test_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"register_parametrization: Module 'Linear' does not "
                                         r"have a parameter, a buffer, or a parametrized element "
                                         r"with name 'weigth' \(parameters: weight, bias; "
                                         r"buffers: none\)"):
        P.register_parametrization(m, "weigth", Symmetric())
    with pytest.raises(TypeError, match="the parametrization must be a polyten.nn.Module"):
        P.register_parametrization(m, "weight", lambda w: w)
    with pytest.raises(ValueError, match="spectral_norm: Module 'Linear' has no parameter or "
                                         "buffer with name 'w'"):
        PZ.spectral_norm(m, "w")
    with pytest.raises(ValueError, match="weight_norm: Module 'Linear' has no parameter"):
        PZ.weight_norm(m, "w")
    with pytest.raises(ValueError, match="orthogonal: Module 'Linear' has no parameter"):
        PZ.orthogonal(m, "w")
    P.register_parametrization(m, "weight", NoInverse())
    with pytest.raises(RuntimeError, match="parametrization NoInverse does not implement "
                                           "right_inverse"):
        m.weight = pt.ones(2, 2)
    with pytest.raises(KeyError, match="attribute 'weight' already exists: it is parametrized"):
        m.weight = nn.Parameter(pt.ones(2, 2))
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules is only "
                                           "supported through state_dict"):
        pickle.dumps(m)


def test_module_mechanics_to_deepcopy_train():
    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Symmetric())
    assert m.parametrizations.weight[0].training
    m.eval()
    assert not m.parametrizations.weight[0].training
    m2 = copy.deepcopy(m)
    assert type(m2) is type(m)
    assert m2.parametrizations.weight.original is not m.parametrizations.weight.original
    close(_np(m2.weight), _np(m.weight))
    m.double()
    assert m.weight.dtype == pt.float64 and m.parametrizations.weight.original.dtype == \
        pt.float64
    q = P.register_parametrization(nn.Linear(2, 2, bias=False), "weight", NoInverse())
    assert q.parametrizations.weight[0].training  # follows the module (training)
    fresh = nn.Linear(3, 3)
    P.transfer_parametrizations_and_params(m, fresh)
    assert P.is_parametrized(fresh, "weight")
    assert fresh.parametrizations.weight.original is m.parametrizations.weight.original


# -------------------------------------------------------------------------- weight norm ---
def _wn_pairs():
    torch = torch_or_skip()
    return [
        ("linear", lambda: torch.nn.Linear(4, 3).double(),
         lambda: nn.Linear(4, 3, dtype=pt.float64), (5, 4)),
        ("conv", lambda: torch.nn.Conv2d(2, 3, 3).double(),
         lambda: nn.Conv2d(2, 3, 3, dtype=pt.float64), (2, 2, 5, 5)),
    ]


@pytest.mark.parametrize("dim", [0, 1, None, -2])
@pytest.mark.parametrize("which", [0, 1])
def test_weight_norm_matches_torch(dim, which):
    torch = torch_or_skip()
    _, mk_t, mk_p, xshape = _wn_pairs()[which]
    tm, pm = mk_t(), mk_p()
    copy_weights(pm, tm)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    PZ.weight_norm(pm, dim=dim)
    assert list(pm.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    for k, v in tm.state_dict().items():
        assert tuple(pm.state_dict()[k].shape) == tuple(v.shape), k
        close(pm.state_dict()[k].numpy(), v.numpy())
    # different g than the initial norms, so that the weight is not the original one
    with torch.no_grad():
        tm.parametrizations.weight.original0.mul_(1.5)
    copy_weights(pm, tm)
    close(_np(pm.weight), _np(tm.weight))
    x = rand(*xshape, seed=1)
    po, to = pm(pt.tensor(x)), tm(torch.tensor(x))
    close(_np(po), _np(to))
    g = rand(*to.shape, seed=2)
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    _same_grads(pm, tm)
    # polyten's state_dict loads strictly into the same torch structure
    tm2 = mk_t()
    torch.nn.utils.parametrizations.weight_norm(tm2, dim=dim)
    tm2.load_state_dict(_to_torch(pm.state_dict()))
    close(_np(tm2(torch.tensor(x))), _np(po))


def test_weight_norm_training_steps_match_torch():
    torch = torch_or_skip()
    tm, pm = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3, dtype=pt.float64)
    copy_weights(pm, tm)
    torch.nn.utils.parametrizations.weight_norm(tm)
    PZ.weight_norm(pm)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    popt = pt.optim.SGD(pm.parameters(), lr=0.1, momentum=0.9)
    for step in range(4):
        x = rand(6, 4, seed=step)
        for m, opt, mod in ((tm, topt, torch), (pm, popt, pt)):
            opt.zero_grad()
            (m(mod.tensor(x)) ** 2).mean().backward()
            opt.step()
        close(_np(pm.weight), _np(tm.weight))


# ------------------------------------------------------------------------ spectral norm ---
def _sn_pairs():
    torch = torch_or_skip()
    return {
        "linear": (lambda: torch.nn.Linear(4, 3).double(),
                   lambda: nn.Linear(4, 3, dtype=pt.float64)),
        "conv": (lambda: torch.nn.Conv2d(2, 3, 3).double(),
                 lambda: nn.Conv2d(2, 3, 3, dtype=pt.float64)),
        "convT": (lambda: torch.nn.ConvTranspose2d(2, 3, 3).double(),  # dim 1 by default
                  lambda: nn.ConvTranspose2d(2, 3, 3, dtype=pt.float64)),
    }


@pytest.mark.parametrize("which", ["linear", "conv", "convT"])
@pytest.mark.parametrize("n_power_iterations,eps", [(1, 1e-12), (3, 1e-3)])
def test_spectral_norm_matches_torch_over_training_steps(which, n_power_iterations, eps):
    """Same weight, u and v (copied from torch after registration); then each training-mode
    read updates u/v in place exactly as torch's, the normalised weight and the gradient of
    the original match after every step, and eval-mode reads leave u/v alone."""
    torch = torch_or_skip()
    mk_t, mk_p = _sn_pairs()[which]
    tm, pm = mk_t(), mk_p()
    torch.nn.utils.parametrizations.spectral_norm(tm, n_power_iterations=n_power_iterations,
                                                  eps=eps)
    PZ.spectral_norm(pm, n_power_iterations=n_power_iterations, eps=eps)
    keys = ["bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
            "parametrizations.weight.0._v"]
    assert list(pm.state_dict()) == list(tm.state_dict()) == keys
    assert pm.parametrizations.weight[0].dim == tm.parametrizations.weight[0].dim
    copy_weights(pm, tm)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05)
    popt = pt.optim.SGD(pm.parameters(), lr=0.05)
    for step in range(4):
        tw, pw = tm.weight, pm.weight  # one power-iteration round each
        close(_np(pw), _np(tw))
        for k, v in tm.state_dict().items():
            close(pm.state_dict()[k].numpy(), v.numpy())
        g = rand(*tw.shape, seed=step)
        (tw * torch.tensor(g)).sum().backward()
        (pw * pt.tensor(g)).sum().backward()
        _same_grads(pm, tm)
        topt.step()
        popt.step()
        topt.zero_grad()
        popt.zero_grad()
    pm.eval()
    tm.eval()
    sn = pm.parametrizations.weight[0]
    u, v = sn._u.numpy().copy(), sn._v.numpy().copy()
    close(_np(pm.weight), _np(tm.weight))
    np.testing.assert_array_equal(sn._u.numpy(), u)  # eval reads do not iterate
    np.testing.assert_array_equal(sn._v.numpy(), v)
    W = _np(pm.parametrizations.weight.original)
    mat = np.moveaxis(W, sn.dim, 0).reshape(W.shape[sn.dim], -1)
    close(_np(pm.weight), W / (u @ mat @ v))  # W / sigma, sigma = u^T W v
    # polyten's state_dict loads strictly into the same torch structure
    tm2 = mk_t()
    torch.nn.utils.parametrizations.spectral_norm(tm2, n_power_iterations=n_power_iterations,
                                                  eps=eps)
    tm2.load_state_dict(_to_torch(pm.state_dict()))
    tm2.eval()
    close(_np(tm2.weight), _np(pm.weight))


def test_spectral_norm_1d_and_errors():
    torch = torch_or_skip()
    m = nn.Module()
    m.w = nn.Parameter(pt.tensor([3.0, 4.0], dtype=pt.float64))
    PZ.spectral_norm(m, "w")
    close(_np(m.w), [0.6, 0.8])
    assert "_u" not in m.parametrizations.w[0]._buffers  # nothing to estimate
    with pytest.raises(ValueError, match="spectral_norm: Expected n_power_iterations to be "
                                         "positive, but got n_power_iterations=0"):
        PZ.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match=r"spectral_norm: Dimension out of range \(expected to "
                                         r"be in range of \[-2, 1\] but got 2\)"):
        PZ.spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError):
        torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(2, 2),
                                                      n_power_iterations=0)


# --------------------------------------------------------------------------- orthogonal ---
@pytest.mark.parametrize("shape,orthogonal_map", [
    ((4, 4), None), ((5, 3), None), ((3, 5), None), ((4, 4), "cayley"),
    ((5, 3), "matrix_exp"), ((3, 5), "cayley"), ((4, 4), "householder")])
def test_orthogonal_matches_torch(shape, orthogonal_map):
    torch = torch_or_skip()
    pm = nn.Linear(shape[1], shape[0], dtype=pt.float64)
    tm = torch.nn.Linear(shape[1], shape[0]).double()
    PZ.orthogonal(pm, orthogonal_map=orthogonal_map)
    torch.nn.utils.parametrizations.orthogonal(tm, orthogonal_map=orthogonal_map)
    assert list(pm.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original", "parametrizations.weight.0.base"]
    W = _np(pm.weight)
    n, k = W.shape
    close(W.T @ W if n >= k else W @ W.T, np.eye(min(n, k)), atol=1e-12)
    copy_weights(pm, tm)
    # move away from the starting point so that the map itself is exercised
    with torch.no_grad():
        tm.parametrizations.weight.original.add_(torch.tensor(rand(*shape, seed=5)) * 0.3)
    copy_weights(pm, tm)
    close(_np(pm.weight), _np(tm.weight))
    g = rand(*shape, seed=6)
    (pm.weight * pt.tensor(g)).sum().backward()
    (tm.weight * torch.tensor(g)).sum().backward()
    _same_grads(pm, tm)
    # assigning projects onto the orthogonal matrices
    Q = np.linalg.qr(rand(max(shape), min(shape), seed=7))[0]
    Q = Q if shape[0] >= shape[1] else Q.T
    pm.weight = pt.tensor(Q)
    close(_np(pm.weight), Q, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_orthogonal_householder_without_trivialization(shape):
    """right_inverse through polyten's geqrf equals torch's (LAPACK) originals."""
    torch = torch_or_skip()
    pm = nn.Linear(shape[1], shape[0], dtype=pt.float64)
    tm = torch.nn.Linear(shape[1], shape[0]).double()
    PZ.orthogonal(pm, orthogonal_map="householder", use_trivialization=False)
    torch.nn.utils.parametrizations.orthogonal(tm, orthogonal_map="householder",
                                               use_trivialization=False)
    assert list(pm.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original"]
    Q = np.linalg.qr(rand(max(shape), min(shape), seed=1))[0]
    Q = Q if shape[0] >= shape[1] else Q.T
    pm.weight = pt.tensor(Q)
    with torch.no_grad():
        tm.weight = torch.tensor(Q)
    close(_np(pm.parametrizations.weight.original), _np(tm.parametrizations.weight.original),
          atol=1e-12)
    close(_np(pm.weight), Q, atol=1e-12)
    with pytest.raises(ValueError, match=r"orthogonal: Expected a matrix or batch of matrices "
                                         r"of shape"):
        pm.weight = pt.ones(2, 2, dtype=pt.float64)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="orthogonal: Expected a matrix or batch of matrices. "
                                         "Got a tensor of 1 dimensions"):
        PZ.orthogonal(nn.Linear(2, 2), "bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", '
                                         '"cayley", "householder". Got: \'qr\''):
        PZ.orthogonal(nn.Linear(2, 2), orthogonal_map="qr")
    m = nn.Linear(2, 2)
    PZ.orthogonal(m, orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError, match="not possible to assign to the matrix "
                                                  "exponential or the Cayley"):
        m.weight = pt.eye(2)


# ---------------------------------------------------------------- hook-based (older) API ---
def test_old_weight_norm_matches_torch():
    torch = torch_or_skip()
    for dim in (0, None):
        tm, pm = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3, dtype=pt.float64)
        copy_weights(pm, tm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.nn.utils.weight_norm(tm, dim=dim)
        with pytest.warns(FutureWarning, match="polyten.nn.utils.parametrizations.weight_norm"):
            weight_norm(pm, dim=dim)
        assert list(pm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_g",
                                                                   "weight_v"]
        with torch.no_grad():
            tm.weight_g.mul_(2.0)
        copy_weights(pm, tm)
        x = rand(5, 4, seed=1)
        po, to = pm(pt.tensor(x)), tm(torch.tensor(x))
        close(_np(po), _np(to))
        po.sum().backward()
        to.sum().backward()
        _same_grads(pm, tm)
        tm2 = torch.nn.Linear(4, 3).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.nn.utils.weight_norm(tm2, dim=dim)
        tm2.load_state_dict(_to_torch(pm.state_dict()))
        close(_np(tm2(torch.tensor(x))), _np(po))
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            weight_norm(pm, dim=dim)
        remove_weight_norm(pm)
        assert list(pm.state_dict()) == ["bias", "weight"]
        assert isinstance(pm.weight, nn.Parameter)
        close(_np(pm(pt.tensor(x))), _np(po))
        with pytest.raises(ValueError, match="remove_weight_norm: weight_norm of 'weight' not "
                                             "found in Linear"):
            remove_weight_norm(pm)


def test_old_spectral_norm_matches_torch():
    torch = torch_or_skip()
    tm, pm = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3, dtype=pt.float64)
    torch.nn.utils.spectral_norm(tm, n_power_iterations=2)
    spectral_norm(pm, n_power_iterations=2)
    assert list(pm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_orig",
                                                               "weight_u", "weight_v"]
    copy_weights(pm, tm)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    popt = pt.optim.SGD(pm.parameters(), lr=0.1)
    for step in range(4):
        x = rand(5, 4, seed=step)
        po, to = pm(pt.tensor(x)), tm(torch.tensor(x))
        close(_np(po), _np(to))
        close(pm.weight_u.numpy(), tm.weight_u.numpy())
        close(pm.weight_v.numpy(), tm.weight_v.numpy())
        (po ** 2).sum().backward()
        (to ** 2).sum().backward()
        _same_grads(pm, tm)
        popt.step()
        topt.step()
        popt.zero_grad()
        topt.zero_grad()
    pm.eval()
    tm.eval()
    u = pm.weight_u.numpy().copy()
    x = rand(5, 4, seed=9)
    close(_np(pm(pt.tensor(x))), _np(tm(torch.tensor(x))))
    np.testing.assert_array_equal(pm.weight_u.numpy(), u)
    tm2 = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3).double(), n_power_iterations=2)
    tm2.load_state_dict(_to_torch(pm.state_dict()))
    tm2.eval()
    close(_np(tm2(torch.tensor(x))), _np(pm(pt.tensor(x))))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        spectral_norm(pm)
    remove_spectral_norm(pm)
    assert list(pm.state_dict()) == ["bias", "weight"]
    close(_np(pm(pt.tensor(x))), _np(tm2(torch.tensor(x))))
    with pytest.raises(ValueError, match="remove_spectral_norm: spectral_norm of 'weight' not "
                                         "found"):
        remove_spectral_norm(pm)
    with pytest.raises(ValueError, match="spectral_norm: Module 'Linear' has no parameter "
                                         "named 'w'"):
        spectral_norm(nn.Linear(2, 2), "w")
    ct = spectral_norm(nn.ConvTranspose2d(2, 3, 3))
    hook = next(iter(ct._forward_pre_hooks.values()))
    assert hook.dim == 1 and tuple(ct.weight_u.shape) == (3,)


def test_weight_norm_on_a_packed_lstm_matches_torch():
    """A parametrized recurrent weight (read through the property by the layer) with a packed
    input, under cached(): outputs and gradients of the originals as PyTorch's."""
    torch = torch_or_skip()
    from polyten.nn.utils.rnn import pack_padded_sequence
    tm = torch.nn.LSTM(3, 4, num_layers=2).double()
    pm = nn.LSTM(3, 4, num_layers=2, dtype=pt.float64)
    copy_weights(pm, tm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: RNN weights not in one flat buffer
        torch.nn.utils.parametrizations.weight_norm(tm, "weight_hh_l0")
        torch.nn.utils.parametrizations.weight_norm(tm, "weight_ih_l1", dim=None)
    PZ.weight_norm(pm, "weight_hh_l0")
    PZ.weight_norm(pm, "weight_ih_l1", dim=None)
    assert list(pm.state_dict()) == list(tm.state_dict())
    x = rand(5, 3, 3, seed=0)
    lengths = [5, 2, 4]
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tout, (th, tc) = tm(torch.nn.utils.rnn.pack_padded_sequence(tx, lengths,
                                                                    enforce_sorted=False))
    with P.cached():
        pout, (ph, pc) = pm(pack_padded_sequence(px, lengths, enforce_sorted=False))
    close(_np(pout.data), _np(tout.data))
    close(_np(ph), _np(th))
    (tout.data.sum() + th.sum() + tc.sum()).backward()
    (pout.data.sum() + ph.sum() + pc.sum()).backward()
    close(px.grad.numpy(), tx.grad.numpy())
    _same_grads(pm, tm)


def test_parametrized_weight_norm_loads_a_state_dict_of_the_hook_based_api():
    """A checkpoint of the older hook-based weight_norm (``weight_g`` / ``weight_v``) loads
    into a module parametrized by ``parametrizations.weight_norm`` (a load pre-hook renames
    the keys, as PyTorch's); the outputs equal torch's for the same checkpoint."""
    torch = pytest.importorskip("torch")
    tm = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3).double())
    with torch.no_grad():
        tm.weight_g.mul_(1.5)
    sd = {k: pt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()}
    assert {"weight_g", "weight_v"} <= set(sd)
    pm = pt.nn.utils.parametrizations.weight_norm(pt.nn.Linear(4, 3).double())
    result = pm.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((2, 4))
    np.testing.assert_allclose(pm(pt.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    # the new-style keys still load as they are
    pm2 = pt.nn.utils.parametrizations.weight_norm(pt.nn.Linear(4, 3).double())
    pm2.load_state_dict(pm.state_dict())
    np.testing.assert_allclose(pm2(pt.tensor(x)).detach().numpy(),
                               pm(pt.tensor(x)).detach().numpy(), rtol=1e-15)
