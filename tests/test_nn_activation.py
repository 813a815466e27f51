"""Activations (functional and modules): values and gradients against PyTorch (float64,
including kinks, bounds and overflow points), finite-difference gradchecks without PyTorch,
dtypes, in-place forms, the fused-vs-default softmax paths, reprs and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import copy_weights, torch_or_skip

RTOL = 1e-6

# random values plus the points where activations have kinks, bounds or overflow
_SPECIAL = np.array([0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, 21.0, -50.0, 50.0, 800.0, -800.0,
                     0.5, -0.5, 1e-8])


def _values(shape=(4, 5), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    flat[:len(_SPECIAL)] = _SPECIAL[:flat.size]
    return x


def _against_torch(pfn, tfn, x, atol=1e-12):
    """Forward and backward of ``pfn`` vs ``tfn`` on float64 ``x`` (an incoming gradient
    that is not all ones)."""
    torch = torch_or_skip()
    px = pt.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    po, to = pfn(px), tfn(tx)
    assert po.dtype == pt.float64 and tuple(po.shape) == tuple(to.shape)
    np.testing.assert_allclose(po.detach().numpy(), to.detach().numpy(), rtol=RTOL, atol=atol)
    g = np.random.default_rng(1).standard_normal(tuple(to.shape))
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=RTOL, atol=atol)


# (name, polyten fn, torch fn name, kwargs)
POINTWISE = [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 2.0}), ("sigmoid", {}),
    ("tanh", {}), ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("softplus", {"beta": 0.5}), ("hardtanh", {}), ("hardtanh", {"min_val": -2.0,
                                                                  "max_val": 3.0}),
    ("logsigmoid", {}), ("softsign", {}), ("mish", {}), ("hardsigmoid", {}),
    ("hardswish", {}), ("tanhshrink", {}), ("threshold", {"threshold": 0.5, "value": -2.0}),
]


def _ids(cases):
    return [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" if kw else n
            for n, kw in cases]


@pytest.mark.parametrize("name,kw", POINTWISE, ids=_ids(POINTWISE))
def test_pointwise_matches_torch(name, kw):
    torch = torch_or_skip()
    tfn = getattr(torch.nn.functional, name)
    _against_torch(lambda x: getattr(F, name)(x, **kw), lambda x: tfn(x, **kw), _values())


@pytest.mark.parametrize("name,kw", POINTWISE, ids=_ids(POINTWISE))
def test_pointwise_gradcheck(name, kw):
    # smooth points away from the kinks: central differences need a neighbourhood
    x = pt.tensor([[-2.3, -0.7, 0.4], [1.3, 2.2, 4.1]], dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(F, name)(t, **kw), (x,))


@pytest.mark.parametrize("name,kw", [("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                     ("elu", {}), ("softplus", {}), ("logsigmoid", {}),
                                     ("silu", {}), ("mish", {})])
def test_smooth_activations_gradgradcheck(name, kw):
    x = pt.tensor([-1.7, -0.3, 0.6, 2.1], dtype=pt.float64, requires_grad=True)
    assert gradgradcheck(lambda t: getattr(F, name)(t, **kw), (x,))


def test_gradients_finite_where_exp_overflows():
    # the discarded branches must not turn the gradient into nan (0 * inf)
    x = pt.tensor([-1000.0, 1000.0, 0.0], requires_grad=True)
    for fn in (F.elu, F.softplus, F.logsigmoid, F.selu, F.mish, F.celu, F.silu):
        x.grad = None
        fn(x).sum().backward()
        assert np.isfinite(x.grad.numpy()).all(), fn.__name__


@pytest.mark.parametrize("name,kw", POINTWISE, ids=_ids(POINTWISE))
def test_float32_stays_float32(name, kw):
    x = pt.tensor(_values().astype(np.float32))
    out = getattr(F, name)(x, **kw)
    assert out.dtype == pt.float32
    if name not in ("relu", "sigmoid", "tanh"):  # compare with a float64 computation
        ref = getattr(F, name)(x.to(pt.float64), **kw).numpy()
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_values_against_numpy_formulas():
    x = _values()
    px = pt.tensor(x)
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(F.relu(px).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.leaky_relu(px, 0.1).numpy(), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(F.silu(px).numpy(), x * sig, rtol=1e-12)
    np.testing.assert_allclose(F.elu(px).numpy(), np.where(x > 0, x, np.expm1(np.minimum(x, 0))))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(F.gelu(px).numpy(), 0.5 * x * (1 + erf(x / math.sqrt(2))),
                               rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(F.hardtanh(px).numpy(), np.clip(x, -1, 1))
    sp = np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))
    np.testing.assert_allclose(F.softplus(px).numpy(), sp, rtol=1e-12)


def test_noncontiguous_and_empty_inputs():
    x = pt.tensor(_values((5, 4))).T  # transposed view
    np.testing.assert_allclose(F.gelu(x).numpy(), F.gelu(x.contiguous()).numpy())
    np.testing.assert_allclose(F.softmax(x, 1).numpy(), F.softmax(x.contiguous(), 1).numpy())
    e = pt.zeros((0, 3))
    for fn in (F.relu, F.gelu, F.elu, F.silu, F.softplus, F.leaky_relu):
        assert tuple(fn(e).shape) == (0, 3)
    assert tuple(F.softmax(e, 1).shape) == (0, 3)
    assert tuple(F.log_softmax(pt.zeros((2, 0)), 1).shape) == (2, 0)
    s = pt.tensor(0.5)  # 0-d
    assert F.softmax(s, 0).item() == 1.0
    assert abs(F.gelu(s).item() - 0.3457312306) < 1e-8


@pytest.mark.parametrize("name", ["leaky_relu", "gelu", "silu", "elu", "softplus", "hardtanh",
                                  "mish", "hardswish", "logsigmoid"])
def test_integer_input_is_refused(name):
    with pytest.raises(TypeError, match=rf"{name}: expected a real floating-point tensor, got "
                                        r"int64"):
        getattr(F, name)(pt.tensor([1, 2, 3]))


def test_argument_errors():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(pt.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="GELU: approximate"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match="relu\\(\\): expected a tensor"):
        F.relu([1.0, 2.0])
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number"):
        F.leaky_relu(pt.ones(2), "0.1")
    with pytest.raises(ValueError, match=r"hardtanh: min_val \(2\) must not be greater"):
        F.hardtanh(pt.ones(2), 2, 1)
    with pytest.raises(ValueError, match="Hardtanh: max_val"):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(ValueError, match="glu: halving dimension must be even"):
        F.glu(pt.ones(2, 3))
    with pytest.raises(ValueError, match="celu: alpha must not be 0"):
        F.celu(pt.ones(2), 0.0)


# -------------------------------------------------------------------- softmax family ---
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax_family_matches_torch(name, dim):
    torch = torch_or_skip()
    x = _values((3, 4, 5), seed=dim + 3)
    tfn = getattr(torch.nn.functional, name)
    _against_torch(lambda t: getattr(F, name)(t, dim), lambda t: tfn(t, dim), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_against_numpy_and_stable(name):
    x = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0], [-1e4, 0.0, 1e4]])
    m = x.max(1, keepdims=True)
    ref = np.exp(x - m) / np.exp(x - m).sum(1, keepdims=True)
    out = getattr(F, name)(pt.tensor(x), dim=1).numpy()
    if name == "softmax":
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-300)
    else:
        logref = (x - m) - np.log(np.exp(x - m).sum(1, keepdims=True))
        np.testing.assert_allclose(out, logref, rtol=1e-12)
    # float32 with huge values: no overflow, float32 kept
    out32 = getattr(F, name)(pt.tensor(x.astype(np.float32)), 1)
    assert out32.dtype == pt.float32 and np.isfinite(out32.numpy()).all()


def test_softmax_masked_rows_and_dtype_argument():
    torch = torch_or_skip()
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]])
    for name in ("softmax", "log_softmax"):
        ours = getattr(F, name)(pt.tensor(x), -1).numpy()
        theirs = getattr(torch, name)(torch.tensor(x), -1).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        ok = ~np.isnan(theirs)
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-12)
    h = pt.tensor([[1.0, 2.0, 3.0]], dtype=pt.float16)
    out = F.softmax(h, 1, dtype=pt.float32)
    assert out.dtype == pt.float32
    np.testing.assert_allclose(out.numpy(), torch.softmax(torch.tensor([[1.0, 2.0, 3.0]]),
                                                           1).numpy(), rtol=1e-6)
    assert F.log_softmax(pt.tensor([1, 2, 3]), 0, dtype=pt.float64).dtype == pt.float64
    assert F.softmax(h, 1).dtype == pt.float16


def test_softmax_errors():
    x = pt.ones(2, 3)
    with pytest.raises(TypeError, match=r"softmax: dim is required.*softmax\(x, dim=-1\)"):
        F.softmax(x)
    with pytest.raises(IndexError, match=r"log_softmax: dimension out of range.*got 2"):
        F.log_softmax(x, 2)
    with pytest.raises(TypeError, match="softmax: expected a real floating-point tensor, got "
                                        "int64; pass dtype=polyten.float32"):
        F.softmax(pt.tensor([1, 2]), 0)
    with pytest.raises(TypeError, match="Softmax: dim is required"):
        nn.Softmax()(x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_gradcheck_and_double_backward(name):
    x = pt.tensor([[0.3, -1.2, 2.0], [0.1, 0.2, -0.4]], dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(F, name)(t, 1), (x,))
    assert gradcheck(lambda t: getattr(F, name)(t, 0), (x,))
    assert gradgradcheck(lambda t: getattr(F, name)(t, 1), (x,))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_kernel_and_default_agree(name):
    """The cpu backend fuses softmax/log_softmax; a backend without the kernel runs the
    polyten-op default: same values, same gradients, one recorded node either way."""
    x = _values((3, 4, 5), seed=7)
    g = np.random.default_rng(3).standard_normal((3, 4, 5))
    results = []
    with cpu_clone("nofusedsoftmax", drop=("softmax", "log_softmax")) as dev:
        assert dev.backend.kernels.get(name) is None
        for device in ("cpu", dev):
            px = pt.tensor(x, device=device, requires_grad=True)
            out = getattr(F, name)(px, 1)
            assert type(out.grad_fn).__name__ == ("SoftmaxBackward0" if name == "softmax"
                                                  else "LogSoftmaxBackward0")
            out.backward(pt.tensor(g, device=device))
            results.append((out.detach().to("cpu").numpy(), px.grad.to("cpu").numpy()))
            assert gradcheck(lambda t: getattr(F, name)(t, -1),
                             (pt.tensor([[0.2, -0.5, 1.0]], dtype=pt.float64, device=device,
                                        requires_grad=True),))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------------- in place ----
@pytest.mark.parametrize("name,kw", [("relu", {}), ("leaky_relu", {"negative_slope": 0.1}),
                                     ("elu", {}), ("hardtanh", {}), ("silu", {}),
                                     ("selu", {}), ("relu6", {})])
def test_inplace_writes_input_and_keeps_gradient(name, kw):
    torch = torch_or_skip()
    x = _values((3, 4), seed=11)
    px = pt.tensor(x)
    ref = getattr(F, name)(px, **kw).numpy()
    out = getattr(F, name)(px, inplace=True, **kw)
    assert out is px
    np.testing.assert_allclose(px.numpy(), ref)
    # on a non-leaf of a graph: the gradient is PyTorch's
    a = pt.tensor(x, requires_grad=True)
    ta = torch.tensor(x, requires_grad=True)
    h = a * 2
    th = ta * 2
    getattr(F, name)(h, inplace=True, **kw).sum().backward()
    getattr(torch.nn.functional, name)(th, inplace=True, **kw).sum().backward()
    # atol: PyTorch's in-place elu differentiates through its result, (y + alpha), which is
    # exactly 0 where exp(x) is below y's rounding; polyten uses the input, alpha * exp(x),
    # as PyTorch's out-of-place elu does (e.g. 7e-44 instead of 0 at x = -100)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=RTOL, atol=1e-30)


def test_inplace_on_leaf_that_requires_grad_is_refused():
    x = pt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.elu(x, inplace=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        nn.ReLU(inplace=True)(x)


# -------------------------------------------------------------------------- modules ----
def _module_pairs():
    return [
        ("ReLU", (), {}), ("ReLU", (), {"inplace": True}), ("ReLU6", (), {}),
        ("LeakyReLU", (), {}), ("LeakyReLU", (0.2, True), {}), ("GELU", (), {}),
        ("GELU", ("tanh",), {}), ("SiLU", (), {}), ("SiLU", (True,), {}), ("ELU", (), {}),
        ("ELU", (0.5, True), {}), ("SELU", (), {}), ("CELU", (2.0,), {}), ("Sigmoid", (), {}),
        ("Tanh", (), {}), ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}),
        ("Softmin", (1,), {}), ("Softplus", (), {}), ("Softplus", (2, 10), {}),
        ("Hardtanh", (), {}), ("Hardtanh", (-2, 2, True), {}), ("LogSigmoid", (), {}),
        ("Softsign", (), {}), ("Mish", (), {}), ("Hardsigmoid", (), {}), ("Hardswish", (), {}),
        ("Hardswish", (True,), {}), ("Tanhshrink", (), {}), ("Threshold", (0.1, 20), {}),
        ("GLU", (), {}), ("PReLU", (), {}), ("PReLU", (3, 0.1), {}), ("Softmax2d", (), {}),
        ("Identity", (), {}),
    ]


@pytest.mark.parametrize("cls,args,kwargs", _module_pairs(),
                         ids=[f"{c}{a}{k}" for c, a, k in _module_pairs()])
def test_module_repr_matches_torch(cls, args, kwargs):
    torch = torch_or_skip()
    assert repr(getattr(nn, cls)(*args, **kwargs)) == repr(getattr(torch.nn, cls)(*args,
                                                                                  **kwargs))


@pytest.mark.parametrize("cls,args,kwargs", [p for p in _module_pairs()
                                             if True not in p[1] and not p[2].get("inplace")],
                         ids=lambda p: str(p))
def test_module_forward_matches_torch(cls, args, kwargs):
    torch = torch_or_skip()
    x = _values((2, 3, 4, 2), seed=5)
    tm = getattr(torch.nn, cls)(*args, **kwargs).double()
    pm = getattr(nn, cls)(*args, **kwargs).double()
    if cls == "PReLU":
        copy_weights(pm, tm)
    _against_torch(pm, tm, x)
    if cls == "PReLU":
        assert tuple(pm.weight.shape) == tuple(tm.weight.shape)


def test_prelu_weight_gradient_matches_torch():
    torch = torch_or_skip()
    x = _values((2, 3, 4), seed=2)
    tm = torch.nn.PReLU(3).double()
    pm = nn.PReLU(3).double()
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    tm(tx).sum().backward()
    pm(px).sum().backward()
    np.testing.assert_allclose(pm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=RTOL)
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=RTOL)
    with pytest.raises(ValueError, match="prelu: weight of 3 elements"):
        pm(pt.ones(2, 4))


def test_modules_have_no_parameters_and_follow_train_eval():
    m = nn.Sequential(nn.ReLU(), nn.GELU(), nn.Softmax(dim=1))
    assert list(m.parameters()) == []
    m.eval()
    assert all(not c.training for c in m.children())
    x = pt.tensor([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(m(x).numpy(), F.softmax(F.gelu(F.relu(x)), 1).numpy())


# ------------------------------------------------- fused pointwise composites (op table) ---
# (polyten name, kwargs, op-table op / node): gelu, silu, leaky_relu, elu (selu, celu),
# softplus are one kernel and one node each, fused on cpu forward and backward
FUSED = [("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}),
         ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}), ("elu", {"alpha": 0.5}),
         ("selu", {}), ("celu", {"alpha": 2.0}), ("softplus", {}),
         ("softplus", {"beta": 2.0, "threshold": 5.0})]
_NODE = {"gelu": "GeluBackward0", "silu": "SiluBackward0", "leaky_relu": "LeakyReluBackward0",
         "elu": "EluBackward0", "selu": "EluBackward0", "celu": "EluBackward0",
         "softplus": "SoftplusBackward0"}
_FUSED_OPS = ("gelu", "silu", "leaky_relu", "elu", "softplus")
# overflow and non-finite points, the softplus thresholds and the kinks
_EXTREME = np.array([1e4, -1e4, np.inf, -np.inf, np.nan, 0.0, -0.0, 20.0, 21.0, 2.5, 3.0,
                     -40.0, 40.0, 700.0, -700.0])
# (rtol, atol) against the float64 reference, by dtype
_REF_TOL = {"float64": (1e-10, 1e-300), "float32": (2e-5, 1e-6), "float16": (2e-3, 1e-4)}


def _extreme_values(dtype):
    x = _values((6, 7), seed=21)
    x.reshape(-1)[:len(_EXTREME)] = _EXTREME
    return x.astype(dtype)


def _torch_float64(name, kw, x, g):
    """PyTorch's float64 value and gradient at the (already rounded) ``x``."""
    torch = torch_or_skip()
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    y = getattr(torch.nn.functional, name)(t, **kw)
    y.backward(torch.tensor(g.astype(np.float64)))
    return y.detach().numpy(), t.grad.numpy()


def _close_nan(actual, expected, rtol, atol, what):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol,
                               atol=atol, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name,kw", FUSED, ids=_ids(FUSED))
def test_activation_fused_and_default_agree(name, kw, dtype):
    """The cpu kernels (forward and the fused backward) and the polyten-op default with the
    derivative formulas (a cpu clone without the kernels) agree with each other and with
    PyTorch in float64, at overflow points, infinities and NaN included; one node either
    way."""
    x = _extreme_values(dtype)
    g = np.random.default_rng(5).standard_normal(x.shape).astype(dtype)
    ref_y, ref_g = _torch_float64(name, kw, x, g)
    results = []
    with cpu_clone("nofusedact", drop=_FUSED_OPS) as dev:
        assert all(dev.backend.kernels.get(op) is None for op in _FUSED_OPS)
        assert not dev.backend.backward_kernels
        for device in ("cpu", dev):
            px = pt.tensor(x, device=device, requires_grad=True)
            out = getattr(F, name)(px, **kw)
            assert out.dtype == getattr(pt, dtype)
            assert type(out.grad_fn).__name__ == _NODE[name]
            # one node: its only edge leads to the input's accumulator
            assert [type(e[0]).__name__ for e in out.grad_fn.next_functions] == \
                ["AccumulateGrad"]
            out.backward(pt.tensor(g, device=device))
            assert px.grad.dtype == getattr(pt, dtype)
            results.append((out.detach().to("cpu").numpy(), px.grad.to("cpu").numpy()))
    (fy, fg), (dy, dg) = results
    rtol, atol = _REF_TOL[dtype]
    _close_nan(fy, ref_y, rtol, atol, f"fused {name} value vs PyTorch float64")
    _close_nan(fg, ref_g, rtol, atol, f"fused {name} gradient vs PyTorch float64")
    _close_nan(dy, ref_y, rtol, atol, f"default {name} value vs PyTorch float64")
    _close_nan(dg, ref_g, rtol, atol, f"default {name} gradient vs PyTorch float64")
    _close_nan(fy, dy.astype(np.float64), rtol, atol, f"{name}: fused vs default value")
    _close_nan(fg, dg.astype(np.float64), rtol, atol, f"{name}: fused vs default gradient")


def test_activation_fused_backward_kernels_run():
    """Without create_graph the cpu backend's fused backward kernels run (not the formulas):
    a kernel that is replaced shows in the gradient."""
    be = pt.device("cpu").backend
    for op in _FUSED_OPS:
        assert op in be.kernels and op in be.backward_kernels, op
    saved = be.backward_kernels["silu"]
    be.backward_kernels["silu"] = lambda grads, inputs, outputs, params: (grads[0] * 0 + 7,)
    try:
        x = pt.tensor([0.5, -1.0], requires_grad=True)
        F.silu(x).sum().backward()
        assert x.grad.tolist() == [7.0, 7.0]
    finally:
        be.backward_kernels["silu"] = saved
    x = pt.tensor([0.5, -1.0], dtype=pt.float64, requires_grad=True)
    F.silu(x).sum().backward()
    s = 1 / (1 + np.exp(-np.array([0.5, -1.0])))
    np.testing.assert_allclose(x.grad.numpy(), s * (1 + np.array([0.5, -1.0]) * (1 - s)),
                               rtol=1e-14)


@pytest.mark.parametrize("name,kw", FUSED, ids=_ids(FUSED))
def test_activation_fused_gradgradcheck(name, kw):
    x = pt.tensor([-2.1, -0.6, 0.3, 1.7, 4.2], dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(F, name)(t, **kw), (x,))
    assert gradgradcheck(lambda t: getattr(F, name)(t, **kw), (x,))


@pytest.mark.parametrize("name,kw", FUSED, ids=_ids(FUSED))
def test_activation_double_backward_matches_torch(name, kw):
    """The second derivative (the formulas, recorded under create_graph) against PyTorch's,
    off the kinks and thresholds (where PyTorch's second derivative takes one side)."""
    torch = torch_or_skip()
    x = np.random.default_rng(9).standard_normal((3, 5)) * 3
    x[0, :4] = [-50.0, 50.0, 800.0, -800.0]
    px = pt.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    (pg,) = pt.autograd.grad(getattr(F, name)(px, **kw).sum(), px, create_graph=True)
    (tg,) = torch.autograd.grad(getattr(torch.nn.functional, name)(tx, **kw).sum(), tx,
                                create_graph=True)
    np.testing.assert_allclose(pg.detach().numpy(), tg.detach().numpy(), rtol=1e-10,
                               atol=1e-14)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    if name == "leaky_relu":  # piecewise constant gradient: nothing to differentiate
        assert not pg.requires_grad and not tgg.any()
        return
    (pgg,) = pt.autograd.grad(pg.sum(), px)
    np.testing.assert_allclose(pgg.numpy(), tgg.numpy(), rtol=1e-8, atol=1e-12)


def test_activation_fused_zero_d_noncontiguous_and_empty():
    x = _values((5, 4), seed=4)
    for name, kw in FUSED:
        fn = getattr(F, name)
        t = pt.tensor(x).T
        np.testing.assert_array_equal(fn(t, **kw).numpy(), fn(t.contiguous(), **kw).numpy())
        s = fn(pt.tensor(0.7, dtype=pt.float16), **kw)
        assert s.shape == () and s.dtype == pt.float16
        e = pt.zeros((0, 3), requires_grad=True)
        out = fn(e, **kw)
        assert tuple(out.shape) == (0, 3)
        out.sum().backward()
        assert tuple(e.grad.shape) == (0, 3)


@pytest.mark.parametrize("dtype", [pt.float32, pt.float64])
def test_gelu_backward_reads_phi_off_the_output_unless_modified(dtype):
    """The cpu gelu backward derives Phi(x) from the forward's output (no second erf) while
    that output is unmodified; after an in-place write to the output (allowed: the rule saves
    only the input, as PyTorch's) it recomputes erf.  Both against PyTorch in float64, at
    x = 0 and -0 (where y / x is 0 / 0) and in the tails."""
    torch = torch_or_skip()
    assert getattr(pt.device("cpu").backend.backward_kernels["gelu"], "wants_output", False)
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 0.3, -0.3, 2.0, -2.0, -5.0, -9.0, -13.0, 7.0,
                  1e4, -1e4, 40.0, -40.0])
    xd = x.astype(np.float64 if dtype is pt.float64 else np.float32)
    tx = torch.tensor(xd.astype(np.float64), requires_grad=True)
    torch.nn.functional.gelu(tx).backward(torch.ones(len(x), dtype=torch.float64))
    ref = tx.grad.numpy()
    # atol: Phi = (1 + erf(x / sqrt(2))) / 2 cancels in the negative tail (PyTorch's formula,
    # kept), so its absolute error is an ulp of 1, not of Phi
    rtol, atol = (1e-12, 1e-15) if dtype is pt.float64 else (2e-6, 5e-7)
    grads = []
    for modify in (False, True):
        px = pt.tensor(xd, requires_grad=True)
        y = F.gelu(px)
        if modify:
            y.mul_(3.0)  # the gradient of y.sum() is then 3 * gelu'(x)
        y.sum().backward()
        grads.append(px.grad.numpy().astype(np.float64) / (3.0 if modify else 1.0))
        np.testing.assert_allclose(grads[-1], ref, rtol=rtol, atol=atol)
    # Phi read off the output and recomputed: the same up to the rounding of the output
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-14 if dtype is pt.float64 else 1e-6,
                               atol=1e-300)


def test_elu_family_keeps_the_sign_of_zero_as_torch():
    """elu / selu / celu of -0.0 are -0.0 (torch's ``x > 0 ? x : alpha * expm1(x)``), of
    +0.0 are +0.0; values and sign bits equal torch's over signed zeros, infinities, NaN and
    tiny values in float16 / float32 / float64."""
    torch = pytest.importorskip("torch")
    x = np.array([-0.0, 0.0, -1.0, 2.0, -np.inf, np.inf, np.nan, -1e-30, 5e-324])
    for dt in ("float64", "float32", "float16"):
        for name, kw in (("elu", {}), ("selu", {}), ("celu", {"alpha": 0.5}),
                         ("elu", {"alpha": 2.0})):
            got = getattr(F, name)(pt.tensor(x.astype(dt)), **kw).numpy()
            want = getattr(torch.nn.functional, name)(torch.tensor(x.astype(dt)), **kw).numpy()
            assert np.array_equal(got, want, equal_nan=True), (dt, name)
            assert np.array_equal(np.signbit(got), np.signbit(want)), (dt, name, got)
