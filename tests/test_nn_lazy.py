"""Lazy modules (``LazyLinear``, ``LazyConv*``, ``LazyConvTranspose*``, ``LazyBatchNorm*``,
``LazyInstanceNorm*``) and ``UninitializedParameter`` / ``UninitializedBuffer``: shapes
inferred from the first input, the class change, outputs equal to the regular layer with the
same weights, state dicts, optimizers, ``.to()`` before the first call, copies and errors."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.nn.modules.lazy import LazyModuleMixin
from polyten.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from _reference import close, rand

# lazy class, constructor args, example input shape, regular class, its constructor args
CASES = [
    (nn.LazyLinear, (3,), (2, 5), nn.Linear, (5, 3)),
    (nn.LazyLinear, (4,), (2, 3, 6), nn.Linear, (6, 4)),
    (nn.LazyConv1d, (4, 3), (2, 3, 9), nn.Conv1d, (3, 4, 3)),
    (nn.LazyConv2d, (4, 3), (2, 6, 7, 7), nn.Conv2d, (6, 4, 3)),
    (nn.LazyConv3d, (2, 2), (1, 3, 4, 4, 4), nn.Conv3d, (3, 2, 2)),
    (nn.LazyConvTranspose1d, (4, 3), (2, 3, 5), nn.ConvTranspose1d, (3, 4, 3)),
    (nn.LazyConvTranspose2d, (2, 3), (2, 5, 4, 4), nn.ConvTranspose2d, (5, 2, 3)),
    (nn.LazyConvTranspose3d, (2, 2), (1, 3, 3, 3, 3), nn.ConvTranspose3d, (3, 2, 2)),
    (nn.LazyBatchNorm1d, (), (4, 5), nn.BatchNorm1d, (5,)),
    (nn.LazyBatchNorm2d, (), (2, 3, 4, 4), nn.BatchNorm2d, (3,)),
    (nn.LazyBatchNorm3d, (), (2, 3, 2, 2, 2), nn.BatchNorm3d, (3,)),
    (nn.LazyInstanceNorm1d, (), (2, 3, 6), nn.InstanceNorm1d, (3,)),
    (nn.LazyInstanceNorm2d, (), (2, 3, 4, 4), nn.InstanceNorm2d, (3,)),
    (nn.LazyInstanceNorm3d, (), (2, 3, 2, 3, 3), nn.InstanceNorm3d, (3,)),
]
IDS = [f"{c[0].__name__}-{len(c[2])}d" for c in CASES]
# the lazy instance norms default to affine=True, track_running_stats=True (as torch's)
NORM_KW = {nn.InstanceNorm1d: dict(affine=True, track_running_stats=True),
           nn.InstanceNorm2d: dict(affine=True, track_running_stats=True),
           nn.InstanceNorm3d: dict(affine=True, track_running_stats=True)}


def _x(shape, seed=0, dtype=pt.float64):
    return pt.tensor(rand(*shape, seed=seed), dtype=dtype)


@pytest.mark.parametrize("lazy_cls, args, shape, cls, cargs", CASES, ids=IDS)
def test_materialise_class_change_and_output(lazy_cls, args, shape, cls, cargs):
    m = lazy_cls(*args, dtype=pt.float64)
    assert isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()
    assert all(is_lazy(p) for p in m.parameters())
    x = _x(shape)
    y = m(x)
    assert type(m) is cls and not isinstance(m, LazyModuleMixin)
    assert not any(is_lazy(t) for t in list(m.parameters()) + list(m.buffers()))
    assert all(type(p) is nn.Parameter for p in m.parameters())
    ref = cls(*cargs, dtype=pt.float64, **NORM_KW.get(cls, {}))
    assert repr(m) == repr(ref)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    # the same state in a regular layer gives the same output (batch norms: the state before
    # this call, as the call updated the running statistics of m)
    m2 = lazy_cls(*args, dtype=pt.float64)
    m2(x)
    ref.load_state_dict(m2.state_dict())
    m2.eval()
    ref.eval()
    close(m2(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-14)
    assert tuple(y.shape) == tuple(ref.train()(x).shape)


def test_linear_initialisation_range_and_gradients():
    m = nn.LazyLinear(50)
    x = pt.randn(3, 16, requires_grad=True)
    m(x).sum().backward()
    bound = 1 / 16 ** 0.5
    assert m.in_features == 16 and m.weight.shape == (50, 16)
    assert float(m.weight.abs().max()) <= bound and float(m.bias.abs().max()) <= bound
    assert float(m.weight.std()) > 0.3 * bound  # initialised, not left empty / zero
    assert m.weight.grad.shape == (50, 16) and x.grad.shape == (3, 16)


def test_norm_initial_state():
    m = nn.LazyBatchNorm2d()
    m.eval()
    m(pt.randn(2, 4, 3, 3))
    assert m.num_features == 4
    close(m.weight.detach().numpy(), np.ones(4))
    close(m.bias.detach().numpy(), np.zeros(4))
    close(m.running_mean.numpy(), np.zeros(4))
    close(m.running_var.numpy(), np.ones(4))
    assert m.num_batches_tracked.item() == 0 and m.num_batches_tracked.dtype == pt.int64


def test_uninitialized_parameter_and_buffer():
    p = UninitializedParameter(dtype=pt.float64)
    assert isinstance(p, nn.Parameter) and is_lazy(p) and p.requires_grad
    assert repr(p) == "<UninitializedParameter>" and p.dtype == pt.float64
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
        p.shape
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and p.shape == (2, 3) and not is_lazy(p)
    b = UninitializedBuffer()
    assert not b.requires_grad and is_lazy(b) and not isinstance(b, nn.Parameter)
    b.materialize((4,), dtype=pt.float64)
    assert type(b) is pt.Tensor and b.shape == (4,) and b.dtype == pt.float64
    assert not is_lazy(pt.zeros(0)) and not is_lazy(nn.Parameter(pt.zeros(2)))


def test_repr_before_and_after():
    m = nn.LazyLinear(3)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    m(pt.ones(1, 7))
    assert repr(m) == "Linear(in_features=7, out_features=3, bias=True)"
    c = nn.LazyConv2d(8, 3, bias=False)
    assert repr(c).startswith("LazyConv2d(0, 8, kernel_size=(3, 3)")
    c(pt.ones(1, 2, 5, 5))
    assert c.bias is None and repr(c).startswith("Conv2d(2, 8, kernel_size=(3, 3)")


def test_in_a_model():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    y = model(pt.randn(2, 3, 6, 6))
    assert y.shape == (2, 2)
    assert type(model[0]) is nn.Conv2d and type(model[3]) is nn.Linear
    assert model[3].in_features == 4 * 4 * 4


# ----------------------------------------------------------------------- state dict -----
def test_state_dict_of_lazy_module():
    m = nn.LazyLinear(3)
    sd = m.state_dict()
    assert list(sd) == ["weight", "bias"] and all(is_lazy(v) for v in sd.values())


def test_state_dict_round_trip_into_fresh_lazy_module():
    src = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.LazyLinear(2)).double()
    x = _x((3, 5))
    want = src(x).detach().numpy()
    dst = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.LazyLinear(2)).double()
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    # materialised with the loaded shapes, still lazy until the first call (as torch)
    assert isinstance(dst[0], nn.LazyLinear) and not dst[0].has_uninitialized_params()
    assert dst[0].weight.shape == (4, 5) and dst[2].weight.shape == (2, 4)
    close(dst(x).detach().numpy(), want, rtol=1e-15)
    assert type(dst[0]) is nn.Linear and dst[0].in_features == 5
    close(dst[2].weight.detach().numpy(), src[2].weight.detach().numpy(), rtol=0)


def test_state_dict_round_trip_batchnorm_and_conv():
    src = nn.Sequential(nn.LazyConv1d(3, 2), nn.LazyBatchNorm1d())
    src(pt.randn(4, 2, 6))  # updates the running statistics
    dst = nn.Sequential(nn.LazyConv1d(3, 2), nn.LazyBatchNorm1d())
    dst.load_state_dict(src.state_dict())
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        close(a.detach().numpy(), b.detach().numpy(), rtol=0)
    x = pt.randn(2, 2, 5)
    src.eval()
    dst.eval()
    close(dst(x).detach().numpy(), src(x).detach().numpy(), rtol=0)
    assert dst[0].in_channels == 2 and dst[1].num_features == 3


def test_load_lazy_state_into_lazy_and_initialized_modules():
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(nn.LazyLinear(3).state_dict())  # nothing to copy (torch: same)
    assert fresh.has_uninitialized_params()
    with pytest.raises(RuntimeError, match=r"for weight: the checkpoint holds an "
                                           r"uninitialized parameter, the current model a "
                                           r"\(3, 4\) one"):
        nn.Linear(4, 3).load_state_dict(nn.LazyLinear(3).state_dict())


def test_load_state_dict_non_strict_keeps_missing_lazy():
    m = nn.LazyLinear(3)
    res = m.load_state_dict({"weight": pt.zeros(3, 2)}, strict=False)
    assert res.missing_keys == ["bias"]
    assert not is_lazy(m.weight) and is_lazy(m.bias)
    with pytest.raises(RuntimeError, match="LazyLinear: load_state_dict loaded weight but "
                                           "not bias; load every parameter"):
        m(pt.ones(1, 2))


# ----------------------------------------------------------------------- optimizers -----
@pytest.mark.parametrize("opt_cls", [pt.optim.SGD, pt.optim.Adam])
def test_optimizer_built_before_first_call(opt_cls):
    # torch accepts this: the parameters are materialised in place, so the optimizer's
    # references stay valid
    m = nn.LazyLinear(2)
    params = list(m.parameters())
    opt = opt_cls(m.parameters(), lr=0.1)
    opt.step()  # no gradients yet: nothing happens
    m(pt.randn(4, 3)).pow(2).sum().backward()
    before = m.weight.detach().clone()
    opt.step()
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert m.weight.shape == (2, 3)
    assert float((m.weight.detach() - before).abs().max()) > 0


# -------------------------------------------------------------------- .to / copies -----
def test_to_dtype_before_first_call():
    m = nn.LazyLinear(3).to(pt.float64)
    assert m.weight.dtype == pt.float64 and is_lazy(m.weight)
    m(_x((2, 4)))
    assert m.weight.dtype == pt.float64 and m.bias.dtype == pt.float64
    bn = nn.LazyBatchNorm1d().double()
    assert is_lazy(bn.running_mean) and bn.running_mean.dtype == pt.float64
    assert bn.num_batches_tracked.dtype == pt.int64
    bn(_x((4, 3)))
    assert bn.running_var.dtype == pt.float64 and bn.weight.dtype == pt.float64
    c = nn.LazyConv1d(2, 3, dtype=pt.float64).float()
    c(pt.randn(1, 2, 5))
    assert c.weight.dtype == pt.float32


def test_to_same_device_before_first_call():
    m = nn.LazyLinear(3).to("cpu")
    m(pt.ones(1, 2))
    assert str(m.weight.device) == "cpu"


def test_deepcopy_and_pickle_stay_lazy():
    m = nn.Sequential(nn.LazyLinear(3, dtype=pt.float64), nn.LazyBatchNorm1d())
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert isinstance(c[0], nn.LazyLinear) and is_lazy(c[0].weight)
        assert c[0].weight.dtype == pt.float64 and is_lazy(c[1].running_mean)
        c(_x((2, 4)))
        assert type(c[0]) is nn.Linear and c[1].num_features == 3
    assert isinstance(m[0], nn.LazyLinear)  # the original is untouched


def test_parameters_only_materialised_once():
    m = nn.LazyLinear(2)
    m(pt.ones(1, 3))
    w = m.weight.detach().clone()
    m(pt.ones(1, 3))
    close(m.weight.detach().numpy(), w.detach().numpy(), rtol=0)
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=2\): expected "
                                         r"an input of shape \(\.\.\., 3\)"):
        m(pt.ones(1, 4))


# --------------------------------------------------------------------------- errors -----
def test_errors():
    with pytest.raises(ValueError, match="LazyLinear: out_features must be a non-negative"):
        nn.LazyLinear(-1)
    with pytest.raises(ValueError, match=r"LazyLinear\(out_features=3\): expected an input of "
                                         r"shape \(\.\.\., in_features\), got a 0-d tensor"):
        nn.LazyLinear(3)(pt.tensor(1.0))
    with pytest.raises(ValueError, match=r"LazyConv2d: expected 3D \(unbatched\) or 4D "
                                         r"\(batched\) input, got input of shape \(2, 3\)"):
        nn.LazyConv2d(4, 3)(pt.ones(2, 3))
    with pytest.raises(ValueError, match=r"LazyConv2d: in_channels inferred from the input "
                                         r"\(3, input of shape \(1, 3, 5, 5\)\) must be "
                                         r"divisible by groups \(2\)"):
        nn.LazyConv2d(4, 3, groups=2)(pt.ones(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"LazyConv1d: out_channels \(3\) must be divisible "
                                         r"by groups \(2\)"):
        nn.LazyConv1d(3, 3, groups=2)
    with pytest.raises(ValueError, match=r"LazyBatchNorm1d: expected an input with a channel "
                                         r"dim \(N, C, \.\.\.\), got input of shape \(5,\)"):
        nn.LazyBatchNorm1d()(pt.ones(5))
    with pytest.raises(TypeError, match="LazyLinear: expected a tensor as input, got list"):
        nn.LazyLinear(2)([1.0, 2.0])


def test_unbatched_inputs():
    c = nn.LazyConv1d(2, 3)
    assert c(pt.ones(4, 6)).shape == (2, 4) and c.in_channels == 4
    n = nn.LazyInstanceNorm1d()
    assert n(pt.randn(3, 6)).shape == (3, 6) and n.num_features == 3


def test_exported():
    for name in ("LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
                 "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d",
                 "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
                 "LazyInstanceNorm2d", "LazyInstanceNorm3d", "UninitializedParameter",
                 "UninitializedBuffer"):
        assert name in nn.__all__ and hasattr(nn, name)


def test_matches_torch_semantics():
    torch = pytest.importorskip("torch")
    # torch: same class change, same state-dict keys before and after, same defaults
    for pcls, tcls, shape in [(nn.LazyBatchNorm1d, torch.nn.LazyBatchNorm1d, (3, 4)),
                              (nn.LazyInstanceNorm2d, torch.nn.LazyInstanceNorm2d,
                               (2, 3, 4, 4))]:
        p, t = pcls(), tcls()
        assert list(p.state_dict()) == list(t.state_dict())
        p(pt.randn(*shape))
        t(torch.randn(*shape))
        assert type(p).__name__ == type(t).__name__
        assert repr(p) == repr(t)
        assert list(p.state_dict()) == list(t.state_dict())
    tl = torch.nn.LazyLinear(3)
    tl(torch.ones(2, 4, dtype=torch.float32))
    pl = nn.LazyLinear(3)
    pl.load_state_dict({k: pt.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})
    x = np.ones((2, 4), dtype=np.float32)
    close(pl(pt.tensor(x)).detach().numpy(), tl(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_checkpoint_of_a_lazy_module_stays_lazy_and_loads(tmp_path):
    """polyten.save keeps uninitialised entries uninitialised (as torch.save): a fresh lazy
    module loads them and stays lazy; after a forward, the saved weights load into a fresh
    lazy module and give the same outputs."""
    m = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    pt.save(m.state_dict(), tmp_path / "lazy.pt")
    sd = pt.load(tmp_path / "lazy.pt")
    assert isinstance(sd["0.weight"], UninitializedParameter)
    assert isinstance(sd["1.running_mean"], UninitializedBuffer)
    fresh = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    fresh.load_state_dict(sd)
    assert is_lazy(fresh[0].weight)
    x = pt.tensor(rand(5, 3), dtype=pt.float32)
    m.train()(x)
    pt.save(m.state_dict(), tmp_path / "ready.pt")
    again = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    again.load_state_dict(pt.load(tmp_path / "ready.pt"))
    assert tuple(again[0].weight.shape) == (4, 3)  # the class changes at the first forward
    close(again.eval()(x).detach().numpy(), m.eval()(x).detach().numpy())
    assert type(again[0]) is nn.Linear


def test_adagrad_refuses_uninitialized_parameters():
    m = nn.LazyLinear(3)
    with pytest.raises(ValueError, match="Adagrad: parameter 0 of a group is uninitialized.*"
                                         "run a forward"):
        pt.optim.Adagrad(m.parameters())
    m(pt.ones(2, 5))
    pt.optim.Adagrad(m.parameters())  # fine once materialised
