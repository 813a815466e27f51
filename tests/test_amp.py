"""Automatic mixed precision: polyten.autocast (the op policy, casts, cache, threads,
custom_fwd/bwd) and polyten.amp.GradScaler, against NumPy and PyTorch."""

import threading
import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.api import autocast as policy
from polyten.nn.utils.rnn import pack_padded_sequence

f16, f32, f64 = pt.float16, pt.float32, pt.float64
# the default backend's device type: the tests also run with cuda (the CuPy stand-in) as the
# default backend, where the regions must be cuda's
DEV = pt.get_default_device().type


def _t(shape, dtype=f32, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return pt.tensor(a, dtype=dtype, requires_grad=requires_grad)


# ---------------------------------------------------------------------------- the policy ---
def _lower_cases():
    x2, y2 = _t((4, 6)), _t((6, 3), seed=1)
    b3, c3 = _t((2, 4, 6)), _t((2, 6, 3), seed=1)
    v = _t((6,), seed=2)
    w = _t((5, 6), seed=3)
    bias = _t((5,), seed=4)
    img = _t((2, 3, 8, 8), seed=5)
    k = _t((4, 3, 3, 3), seed=6)
    kt = _t((3, 4, 3, 3), seed=7)
    sig = _t((2, 3, 10), seed=8)
    k1 = _t((4, 3, 3), seed=9)
    vol = _t((1, 2, 4, 4, 4), seed=10)
    k3 = _t((3, 2, 2, 2, 2), seed=11)
    return {
        "matmul": lambda: pt.matmul(x2, y2),
        "@": lambda: x2 @ y2,
        "mm": lambda: pt.mm(x2, y2),
        "bmm": lambda: pt.bmm(b3, c3),
        "mv": lambda: pt.mv(x2, v),
        "addmm": lambda: pt.addmm(_t((4, 3)), x2, y2),
        "addbmm": lambda: pt.addbmm(_t((4, 3)), b3, c3),
        "baddbmm": lambda: pt.baddbmm(_t((2, 4, 3)), b3, c3),
        "addmv": lambda: pt.addmv(_t((4,)), x2, v),
        "einsum": lambda: pt.einsum("ij,jk->ik", x2, y2),
        "linear": lambda: F.linear(x2, w, bias),
        "prelu": lambda: F.prelu(x2, _t((1,)) * 0 + 0.25),
        "conv1d": lambda: F.conv1d(sig, k1),
        "conv2d": lambda: F.conv2d(img, k, padding=1),
        "conv3d": lambda: F.conv3d(vol, k3),
        "conv_transpose1d": lambda: F.conv_transpose1d(sig, k1.transpose(0, 1)[:, :3]),
        "conv_transpose2d": lambda: F.conv_transpose2d(_t((2, 3, 5, 5)), kt),
        "conv_transpose3d": lambda: F.conv_transpose3d(vol, k3.transpose(0, 1)),
        "nn.Linear": lambda: nn.Linear(6, 5)(x2),
        "lstm": lambda: nn.LSTM(6, 4, num_layers=2, bidirectional=True)(b3)[1][1],
        "gru": lambda: nn.GRU(6, 4)(b3)[0],
        "rnn_tanh": lambda: nn.RNN(6, 4)(b3)[1],
        "rnn_relu": lambda: nn.RNN(6, 4, nonlinearity="relu")(b3)[0],
        "packed lstm": lambda: nn.LSTM(6, 4)(pack_padded_sequence(b3, [2, 2, 1, 1]))[0].data,
        "lstm_cell": lambda: nn.LSTMCell(6, 4)(x2)[1],
        "gru_cell": lambda: nn.GRUCell(6, 4)(x2, pt.zeros(4, 4)),
        "rnn_cell": lambda: nn.RNNCell(6, 4)(x2),
    }


def _fp32_cases():
    x = _t((4, 6), f16)
    p = _t((4, 6), f16).abs() + 0.5
    tgt = pt.tensor([0, 1, 2, 5])
    y = _t((4, 6), f16, seed=1)
    sign = pt.sign(_t((4,), seed=3)).to(f16)
    return {
        "exp": lambda: pt.exp(x), "expm1": lambda: pt.expm1(x), "log": lambda: pt.log(p),
        "log10": lambda: pt.log10(p), "log2": lambda: pt.log2(p), "log1p": lambda: pt.log1p(p),
        "reciprocal": lambda: pt.reciprocal(p), "rsqrt": lambda: pt.rsqrt(p),
        "acos": lambda: pt.acos(x.clamp(-0.9, 0.9)), "asin": lambda: pt.asin(x.clamp(-.9, .9)),
        "cosh": lambda: pt.cosh(x), "sinh": lambda: pt.sinh(x), "tan": lambda: pt.tan(x),
        "pow": lambda: pt.pow(p, 2.5), "**": lambda: p ** 3, "x.exp()": lambda: x.exp(),
        "softplus": lambda: F.softplus(x), "sum": lambda: pt.sum(x), "x.sum(1)": lambda: x.sum(1),
        "prod": lambda: pt.prod(p, 1), "cumsum": lambda: pt.cumsum(x, 1),
        "cumprod": lambda: pt.cumprod(p, 1), "softmax": lambda: F.softmax(x, -1),
        "log_softmax": lambda: F.log_softmax(x, -1), "softmin": lambda: F.softmin(x, -1),
        "x.softmax": lambda: x.softmax(-1),
        "layer_norm": lambda: F.layer_norm(x, (6,)),
        "group_norm": lambda: F.group_norm(x.reshape(2, 4, 3), 2),
        "norm": lambda: pt.norm(x), "vector_norm": lambda: pt.linalg.vector_norm(x),
        "normalize": lambda: F.normalize(x), "renorm": lambda: pt.renorm(x, 2, 0, 1.0),
        "cdist": lambda: pt.cdist(x, y), "cosine_similarity": lambda: F.cosine_similarity(x, y),
        "cross_entropy": lambda: F.cross_entropy(x, tgt),
        "nll_loss": lambda: F.nll_loss(x, tgt), "mse_loss": lambda: F.mse_loss(x, y),
        "l1_loss": lambda: F.l1_loss(x, y), "smooth_l1_loss": lambda: F.smooth_l1_loss(x, y),
        "huber_loss": lambda: F.huber_loss(x, y),
        "kl_div": lambda: F.kl_div(x, p, reduction="batchmean"),
        "binary_cross_entropy_with_logits":
            lambda: F.binary_cross_entropy_with_logits(x, (y > 0).to(f16)),
        "poisson_nll_loss": lambda: F.poisson_nll_loss(x, p),
        "gaussian_nll_loss": lambda: F.gaussian_nll_loss(x, y, p),
        "cosine_embedding_loss": lambda: F.cosine_embedding_loss(x, y, sign),
        "hinge_embedding_loss": lambda: F.hinge_embedding_loss(x, pt.sign(y)),
        "margin_ranking_loss": lambda: F.margin_ranking_loss(x[:, 0], y[:, 0], sign),
        "multilabel_margin_loss":
            lambda: F.multilabel_margin_loss(x, pt.tensor([[0, 1, -1, 0, 0, 0]] * 4)),
        "multilabel_soft_margin_loss":
            lambda: F.multilabel_soft_margin_loss(x, (y > 0).to(f16)),
        "multi_margin_loss": lambda: F.multi_margin_loss(x, tgt),
        "soft_margin_loss": lambda: F.soft_margin_loss(x, pt.sign(y)),
        "triplet_margin_loss": lambda: F.triplet_margin_loss(x, y, p),
        "nn.CrossEntropyLoss": lambda: nn.CrossEntropyLoss()(x, tgt),
    }


def test_every_op_of_the_policy_has_a_case():
    covered = set(_lower_cases()) | set(_fp32_cases())
    assert policy.LOWER <= covered and policy.FP32 <= covered, (
        sorted(policy.LOWER - covered), sorted(policy.FP32 - covered))


@pytest.mark.parametrize("name", sorted(_lower_cases()))
def test_lower_precision_ops_return_float16(name):
    fn = _lower_cases()[name]
    assert fn().dtype == f32  # outside a region: the inputs' dtype
    with pt.autocast(DEV, dtype=f16):
        assert fn().dtype == f16
    assert fn().dtype == f32


@pytest.mark.parametrize("name", sorted(_fp32_cases()))
def test_float32_ops_return_float32(name):
    fn = _fp32_cases()[name]
    with pt.autocast(DEV, dtype=f16):
        out = fn()
    assert out.dtype == f32, name
    assert fn().dtype == f16  # outside: float16 in, float16 out


def test_other_ops_keep_their_dtype_and_promote():
    a, b = _t((3, 4), f16), _t((3, 4), f32)
    with pt.autocast(DEV, dtype=f16):
        assert F.relu(a).dtype == f16 and (a + a).dtype == f16 and a.mean().dtype == f16
        assert (a + b).dtype == f32  # promotion, as PyTorch's "promote" ops
        assert pt.cat([a, a]).dtype == f16
        assert pt.matmul(a.to(f64), b.to(f64).T).dtype == f16  # float64 is lowered too
        i = pt.arange(6).reshape(2, 3)
        assert (i @ i.T).dtype == pt.int64  # integers are never cast


def test_dtype_float32_turns_lower_ops_into_float32():
    a = _t((3, 4), f16)
    with pt.autocast(DEV, dtype=f32):
        assert (a @ a.T).dtype == f32


def test_linear_values_match_torch_float16():
    torch = pytest.importorskip("torch")
    x, w, b = _t((8, 16)), _t((4, 16), seed=1), _t((4,), seed=2)
    with pt.autocast(DEV, dtype=f16):
        out = F.linear(x, w, b)
    ref = torch.nn.functional.linear(torch.tensor(x.numpy()).half(),
                                     torch.tensor(w.numpy()).half(),
                                     torch.tensor(b.numpy()).half())
    exact = x.numpy().astype(np.float16).astype(np.float64) @ \
        w.numpy().astype(np.float16).astype(np.float64).T + \
        b.numpy().astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(out.numpy().astype(np.float64), exact, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=2e-3, atol=2e-3)


def test_gradients_reach_float32_parameters_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype(np.float32)
    w1 = rng.standard_normal((32, 8)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((5, 32)).astype(np.float32) * 0.3
    y = rng.integers(0, 5, 16)
    pw1, pw2 = pt.tensor(w1, requires_grad=True), pt.tensor(w2, requires_grad=True)
    with pt.autocast(DEV, dtype=f16):
        h = F.relu(F.linear(pt.tensor(x), pw1))
        logits = F.linear(h, pw2)
        loss = F.cross_entropy(logits, pt.tensor(y))
    assert h.dtype == f16 and logits.dtype == f16 and loss.dtype == f32
    loss.backward()
    assert pw1.grad.dtype == f32 and pw2.grad.dtype == f32
    # torch with the same casts written out (its cpu autocast keeps cross_entropy in float16)
    tw1, tw2 = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
    th = torch.relu(torch.tensor(x).half() @ tw1.half().T)
    tl = torch.nn.functional.cross_entropy((th @ tw2.half().T).float(), torch.tensor(y))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-3)
    np.testing.assert_allclose(pw1.grad.numpy(), tw1.grad.numpy(), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(pw2.grad.numpy(), tw2.grad.numpy(), rtol=1e-2, atol=1e-3)


def test_float32_op_is_computed_in_float32():
    # exp of a float16 1e-3 step: float32 keeps what float16 rounds away
    x = pt.tensor([10.0, 10.001], dtype=f16)
    with pt.autocast(DEV, dtype=f16):
        e = pt.exp(x)
    np.testing.assert_allclose(e.numpy(), np.exp(x.numpy().astype(np.float64)), rtol=1e-6)


# ------------------------------------------------------------------ regions, cache, threads ---
def test_regions_nest_and_enabled_false_turns_autocast_off():
    a = _t((3, 3))
    with pt.autocast(DEV, dtype=f16):
        assert pt.is_autocast_enabled(DEV)
        with pt.autocast(DEV, dtype=f16, enabled=False):
            assert not pt.is_autocast_enabled(DEV) and (a @ a).dtype == f32
        assert (a @ a).dtype == f16
    assert not pt.is_autocast_enabled(DEV) and policy.ACTIVE[0] == 0


def test_region_is_left_on_an_exception():
    with pytest.raises(KeyError):
        with pt.autocast(DEV, dtype=f16):
            raise KeyError("x")
    assert not pt.is_autocast_enabled(DEV) and policy.ACTIVE[0] == 0


def test_decorator_form():
    @pt.autocast(DEV, dtype=f16)
    def f(a):
        return a @ a

    a = _t((2, 2))
    assert f(a).dtype == f16 and (a @ a).dtype == f32
    assert f.__name__ == "f"


def test_get_autocast_dtype():
    # PyTorch's defaults: bfloat16 on the cpu, float16 on cuda
    assert pt.get_autocast_dtype("cpu") == pt.bfloat16
    assert pt.get_autocast_dtype(DEV) == (pt.bfloat16 if DEV == "cpu" else f16)
    with pt.autocast(DEV, dtype=f32):
        assert pt.get_autocast_dtype(DEV) == f32
    assert pt.amp.is_autocast_available(DEV)


def test_a_thread_does_not_inherit_the_region():
    a = _t((2, 2))
    seen = {}

    def work():
        seen["enabled"] = pt.is_autocast_enabled(DEV)
        seen["dtype"] = (a @ a).dtype

    with pt.autocast(DEV, dtype=f16):
        th = threading.Thread(target=work)
        th.start()
        th.join()
        assert (a @ a).dtype == f16
    assert seen == {"enabled": False, "dtype": f32}


def test_parameters_are_cast_once_per_region():
    w = nn.Parameter(_t((4, 4)))
    x = _t((2, 4))
    with pt.autocast(DEV, dtype=f16):
        c1 = policy.lower(w)
        c2 = policy.lower(w)
        assert c1 is c2 and c1.dtype == f16
        assert policy.lower(x) is not policy.lower(x)  # not a leaf that requires grad
        with pt.no_grad():
            w.add_(1.0)  # an in-place update invalidates the cached cast
        c3 = policy.lower(w)
        assert c3 is not c1
        np.testing.assert_allclose(c3.detach().numpy(), w.detach().numpy().astype(np.float16))
    with pt.autocast(DEV, dtype=f16):
        assert policy.lower(w) is not c3  # the cache ends with the outermost region
    with pt.autocast(DEV, dtype=f16, cache_enabled=False):
        assert policy.lower(w) is not policy.lower(w)


def test_cached_cast_still_accumulates_gradient_twice():
    w = nn.Parameter(_t((3, 3)))
    x = _t((2, 3))
    with pt.autocast(DEV, dtype=f16):
        out = F.linear(x, w).sum() + F.linear(x, w).sum()
    out.backward()
    x16 = x.numpy().astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.ones((3, 2)) @ x16, rtol=1e-3)


def test_binary_cross_entropy_is_refused_inside_a_region():
    p = pt.sigmoid(_t((4,)))
    t = pt.ones(4)
    with pt.autocast(DEV, dtype=f16):
        with pytest.raises(RuntimeError, match="binary_cross_entropy_with_logits"):
            F.binary_cross_entropy(p, t)
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            nn.BCELoss()(p, t)
        with pt.autocast(DEV, dtype=f16, enabled=False):
            F.binary_cross_entropy(p, t)  # allowed where autocast is off
    F.binary_cross_entropy(p, t)


def test_only_the_region_device_type_is_affected():
    try:
        other = _t((2, 2)).to("template")  # the example third-party backend
    except Exception as exc:  # pragma: no cover - the template plugin is not installed
        pytest.skip(f"no second backend: {exc}")
    a = _t((2, 2))
    with pt.autocast(DEV, dtype=f16):
        assert (other @ other).dtype == f32 and (a @ a).dtype == f16
    with pt.autocast("template"):
        assert (other @ other).dtype == f16 and (a @ a).dtype == f32


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"device_type": "cpu:0"}, ValueError, "without an index"),
    ({"device_type": 3}, TypeError, "device_type must be a string"),
    ({"device_type": "nope"}, ValueError, "unknown device_type 'nope'"),
    ({"device_type": "cpu", "dtype": pt.int32}, ValueError, "float16"),
    ({"device_type": "cpu", "enabled": 1}, TypeError, "enabled must be a bool"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pt.autocast(**kwargs)


def test_unavailable_backend_warns_and_disables():
    if pt.cuda.is_available():
        pytest.skip("cuda is available here")
    with pytest.warns(UserWarning, match="unavailable"):
        ac = pt.autocast("cuda")
    with ac:
        assert not pt.is_autocast_enabled("cuda")


# ------------------------------------------------------------------- custom_fwd / bwd ---
class _Square(pt.autograd.Function):
    @staticmethod
    @pt.amp.custom_fwd(device_type=DEV, cast_inputs=pt.float32)
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.seen = (x.dtype, pt.is_autocast_enabled(DEV))
        return x * x

    @staticmethod
    @pt.amp.custom_bwd(device_type=DEV)
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        ctx.bwd_enabled = pt.is_autocast_enabled(DEV)
        return 2 * x * g


def test_custom_fwd_casts_inputs_and_disables_autocast():
    x = _t((3,), f16, requires_grad=True)
    with pt.autocast(DEV, dtype=f16):
        y = _Square.apply(x)
    assert y.dtype == f32
    y.sum().backward()
    assert x.grad.dtype == f16
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy(), rtol=1e-3)
    y2 = _Square.apply(x.detach().to(f32))  # outside a region: unchanged
    assert y2.dtype == f32


def test_custom_bwd_without_custom_fwd_explains():
    class Bad(pt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        @pt.amp.custom_bwd
        def backward(ctx, g):
            return g * 2

    x = _t((2,), requires_grad=True)
    with pytest.raises(RuntimeError, match="custom_fwd"):
        Bad.apply(x).sum().backward()


# ---------------------------------------------------------------------------- GradScaler ---
def _model(seed=0):
    pt.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _copy_to_torch(model):
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for tp, p in zip(tm.parameters(), model.parameters()):
            tp.copy_(torch.tensor(p.detach().cpu().numpy()))
    return tm


def _assert_matches_torch(scaler, tscaler, model, tmodel, step):
    assert scaler.get_scale() == tscaler.get_scale(), step
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), tp.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=f"step {step}")


def test_grad_scaler_training_matches_torch_including_a_skipped_step():
    torch = pytest.importorskip("torch")
    model = _model()
    tmodel = _copy_to_torch(model)
    opt = pt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    scaler = pt.amp.GradScaler(DEV, init_scale=1024.0, growth_interval=2)
    tscaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    rng = np.random.default_rng(1)
    for step in range(6):
        x = rng.standard_normal((4, 6)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        if step == 3:
            x[0, 0] = np.inf  # this step's gradients overflow: both must skip it
        opt.zero_grad()
        topt.zero_grad()
        loss = F.mse_loss(model(pt.tensor(x)), pt.tensor(y))
        tloss = torch.nn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y))
        scaler.scale(loss).backward()
        tscaler.scale(tloss).backward()
        scaler.unscale_(opt)
        tscaler.unscale_(topt)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 1.0)
        scaler.step(opt)
        tscaler.step(topt)
        scaler.update()
        tscaler.update()
        _assert_matches_torch(scaler, tscaler, model, tmodel, step)
    assert scaler.state_dict() == tscaler.state_dict()


def _template_or_skip(device):
    try:
        pt.device(device).backend
    except Exception as exc:  # pragma: no cover - the template plugin is not installed
        pytest.skip(f"{device}: {exc}")


# the implementations an optimizer step can take under GradScaler after a host read of the
# flag: the backend's fused step (cpu), the per-parameter polyten ops (foreach=False), and a
# backend with no fused kernel at all (the template's generic GradScaler.update in polyten
# ops, too); the device path (CUDA kernels skipping themselves) is checked against the cpu
# in test_cuda_standin.py and test_cuda.py
_AMP_PATHS = [("cpu", None), ("cpu", False), ("template", None)]


_OTHERS = {"RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
           "Adagrad": dict(lr=0.1, lr_decay=0.01), "Adamax": dict(lr=0.02),
           "RAdam": dict(lr=0.02, betas=(0.9, 0.99)), "Adadelta": dict(lr=0.5),
           "Rprop": dict(lr=0.01), "NAdam": dict(lr=0.02)}


@pytest.mark.parametrize("device, foreach", _AMP_PATHS)
@pytest.mark.parametrize("algo", ["Adam", "AdamW", "amsgrad", "SGD", *_OTHERS])
def test_grad_scaler_steps_match_torch_with_skipped_steps(device, foreach, algo):
    """Every optimizer under GradScaler against torch's, with overflowing steps at the start
    (the first step, before any state exists) and in the middle: the parameters, the scale,
    the growth tracker -- and the step counters, which a skipped step must not advance (the
    bias corrections of the steps after it depend on them)."""
    torch = pytest.importorskip("torch")
    if device != "cpu":
        _template_or_skip(device)
    model = _model().to(device)
    tmodel = _copy_to_torch(model)
    kw = {"lr": 0.05}
    if algo in _OTHERS:
        kw = dict(_OTHERS[algo])
        make, tmake = getattr(pt.optim, algo), getattr(torch.optim, algo)
    elif algo == "SGD":
        kw.update(momentum=0.9, nesterov=True, weight_decay=0.01)
        make, tmake = pt.optim.SGD, torch.optim.SGD
    else:
        kw.update(weight_decay=0.1, amsgrad=algo == "amsgrad")
        name = "AdamW" if algo == "AdamW" else "Adam"
        make, tmake = getattr(pt.optim, name), getattr(torch.optim, name)
    opt = make(model.parameters(), foreach=foreach, **kw)
    topt = tmake(tmodel.parameters(), **kw)
    assert opt._step_supports_amp_scaling
    scaler = pt.amp.GradScaler(device, init_scale=2.0 ** 10, growth_interval=3)
    tscaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=3)
    rng = np.random.default_rng(1)
    for step in range(9):
        x = rng.standard_normal((4, 6)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        if step in (0, 4):
            x[0, 0] = np.inf  # this step's gradients overflow: both must skip it
        opt.zero_grad()
        topt.zero_grad()
        loss = F.mse_loss(model(pt.tensor(x, device=device)), pt.tensor(y, device=device))
        scaler.scale(loss).backward()
        tscaler.scale(torch.nn.functional.mse_loss(tmodel(torch.tensor(x)),
                                                   torch.tensor(y))).backward()
        scaler.step(opt)
        tscaler.step(topt)
        scaler.update()
        tscaler.update()
        _assert_matches_torch(scaler, tscaler, model, tmodel, step)
    assert scaler.state_dict() == tscaler.state_dict()
    if algo != "SGD":
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            assert int(opt.state[p]["step"]) == int(topt.state[tp]["step"]) == 7


def test_grad_scaler_scales_and_unscales():
    w = nn.Parameter(pt.tensor([1.0, 2.0]))
    opt = pt.optim.SGD([w], lr=1.0)
    scaler = pt.amp.GradScaler(DEV, init_scale=8.0)
    loss = (w * w).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == 8.0 * loss.item()
    scaled.backward()
    np.testing.assert_allclose(w.grad.numpy(), [16.0, 32.0])
    scaler.step(opt)
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])  # unscaled
    np.testing.assert_allclose(w.detach().numpy(), [-1.0, -2.0])
    scaler.update()
    assert scaler.get_scale() == 8.0
    assert scaler.scale([loss, (loss, loss)])[1][0].item() == 8.0 * loss.item()
    assert scaler.scale({"a": loss})["a"].item() == 8.0 * loss.item()


def test_grad_scaler_skips_and_backs_off_then_grows():
    w = nn.Parameter(pt.tensor([1.0]))
    opt = pt.optim.SGD([w], lr=1.0)
    scaler = pt.amp.GradScaler(DEV, init_scale=4.0, growth_interval=2, backoff_factor=0.25)
    w.grad = pt.tensor([float("nan")])
    assert scaler.step(opt) is None
    scaler.update()
    assert w.item() == 1.0 and scaler.get_scale() == 1.0
    for expected in (1.0, 2.0, 2.0, 4.0):
        w.grad = pt.tensor([0.0])
        scaler.step(opt)
        scaler.update()
        assert scaler.get_scale() == expected


def test_grad_scaler_errors():
    w = nn.Parameter(pt.tensor([1.0]))
    opt = pt.optim.SGD([w], lr=1.0)
    scaler = pt.amp.GradScaler(DEV)
    with pytest.raises(RuntimeError, match="no gradient"):
        scaler.step(opt)
    scaler = pt.amp.GradScaler(DEV)
    w.grad = pt.tensor([1.0])
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(RuntimeError, match="no inf checks"):
        scaler.update()
    with pytest.raises(RuntimeError, match="closure"):
        scaler.step(opt, closure=lambda: 0.0)
    h = nn.Parameter(pt.tensor([1.0], dtype=f16))
    h.grad = pt.tensor([1.0], dtype=f16)
    with pytest.raises(ValueError, match="float16 gradient"):
        pt.amp.GradScaler(DEV).unscale_(pt.optim.SGD([h], lr=1.0))
    with pytest.raises(ValueError, match="growth_factor"):
        pt.amp.GradScaler(DEV, growth_factor=0.5)
    with pytest.raises(ValueError, match="backoff_factor"):
        pt.amp.GradScaler(DEV, backoff_factor=2.0)
    with pytest.raises(TypeError, match="scale"):
        pt.amp.GradScaler(DEV).scale(3.0)


def test_disabled_grad_scaler_is_a_pass_through():
    w = nn.Parameter(pt.tensor([1.0]))
    opt = pt.optim.SGD([w], lr=1.0)
    scaler = pt.amp.GradScaler(DEV, enabled=False)
    loss = (w * 3).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    assert w.item() == -2.0 and scaler.get_scale() == 1.0 and scaler.state_dict() == {}


def test_grad_scaler_state_dict_round_trip():
    s = pt.amp.GradScaler(DEV, init_scale=256.0, growth_interval=7)
    w = nn.Parameter(pt.tensor([1.0]))
    opt = pt.optim.SGD([w], lr=1.0)
    s.scale(w.sum())
    for _ in range(3):  # three finite steps: the tracker counts them on the device
        w.grad = pt.tensor([0.0])
        s.step(opt)
        s.update()
    assert s.state_dict() == {"scale": 256.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                              "growth_interval": 7, "_growth_tracker": 3}
    s2 = pt.amp.GradScaler(DEV)
    s2.load_state_dict(s.state_dict())
    assert s2.state_dict() == s.state_dict()
    # the loaded tracker is live: four more finite steps reach the interval and grow
    opt2 = pt.optim.SGD([w], lr=1.0)
    for expected in (256.0, 256.0, 256.0, 512.0):
        w.grad = pt.tensor([0.0])
        s2.step(opt2)
        s2.update()
        assert s2.get_scale() == expected
    with pytest.raises(KeyError, match="missing keys"):
        s2.load_state_dict({"scale": 1.0})
    with pytest.raises(RuntimeError, match="disabled"):
        s2.load_state_dict({})


def test_whole_amp_loop_trains():
    model = _model(3)
    opt = pt.optim.Adam(model.parameters(), lr=0.05)
    scaler = pt.amp.GradScaler(DEV)
    rng = np.random.default_rng(0)
    x = pt.tensor(rng.standard_normal((64, 6)), dtype=f32)
    y = pt.tensor(rng.integers(0, 3, 64))
    losses = []
    for _ in range(40):
        opt.zero_grad()
        with pt.autocast(DEV, dtype=f16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert all(p.dtype == f32 for p in model.parameters())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("device", ["cpu", "template"])
def test_unscale_fused_and_generic_paths_agree(device):
    """The cpu backend's fused unscale (``fused_optimizers["amp_unscale"]``) and the generic
    one in polyten ops (the template backend has no fused kernels): same gradients, same
    decision, version counters bumped."""
    try:
        dev = pt.device(device)
        dev.backend
    except Exception as exc:  # pragma: no cover - the template plugin is not installed
        pytest.skip(f"{device}: {exc}")
    assert ("amp_unscale" in dev.backend.fused_optimizers) == (device == "cpu")
    a = nn.Parameter(pt.tensor([1.0, 2.0], device=device))
    b = nn.Parameter(pt.tensor([[3.0]], dtype=f64, device=device))
    opt = pt.optim.SGD([a, b], lr=0.5)
    scaler = pt.amp.GradScaler(device, init_scale=4.0)
    a.grad = pt.tensor([4.0, 8.0], device=device)
    b.grad = pt.tensor([[12.0]], dtype=f64, device=device)
    view = a.grad[:]  # a view shares (and so starts) the version counter
    v = a.grad._version_value
    scaler.unscale_(opt)
    assert a.grad._version_value == v + 1 and view._version_value == v + 1
    np.testing.assert_allclose(a.grad.cpu().numpy(), [1.0, 2.0])
    np.testing.assert_allclose(b.grad.cpu().numpy(), [[3.0]])
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(a.detach().cpu().numpy(), [0.5, 1.0])
    b.grad = pt.tensor([[float("inf")]], dtype=f64, device=device)
    a.grad = pt.tensor([1.0, 1.0], device=device)
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(a.detach().cpu().numpy(), [0.5, 1.0])  # skipped
    assert scaler.get_scale() == 2.0


# ------------------------------------------------------------- mixed-precision norms ---
@pytest.mark.parametrize("kind", ["batch_train", "batch_eval", "instance", "layer", "group"])
def test_float16_input_with_float32_parameters_gives_float16_as_torch(kind):
    """A float16 activation through a norm layer with float32 parameters (what autocast
    leaves a BatchNorm with) is normalised in float32 and returned in float16, as PyTorch;
    parameters get float32 gradients, running statistics stay float32 and match."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 3, 6)) * 2 + 1).astype(np.float16)
    make = {"batch_train": lambda m: m.BatchNorm1d(3), "batch_eval": lambda m: m.BatchNorm1d(3),
            "instance": lambda m: m.InstanceNorm1d(3, affine=True, track_running_stats=True),
            "layer": lambda m: m.LayerNorm(6), "group": lambda m: m.GroupNorm(3, 3)}[kind]
    pm, tm = make(nn), make(torch.nn)
    with torch.no_grad():
        for (name, tp), p in zip(tm.named_parameters(), pm.parameters()):
            w = rng.standard_normal(tuple(tp.shape)).astype(np.float32)
            tp.copy_(torch.tensor(w))
            p.data = pt.tensor(w)
    if kind == "batch_eval":
        pm.eval()
        tm.eval()
    px = pt.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = pm(px), tm(tx)
    assert out.dtype == f16 and tout.dtype == torch.float16
    np.testing.assert_allclose(out.detach().numpy().astype(np.float64),
                               tout.detach().numpy().astype(np.float64), rtol=2e-3, atol=2e-3)
    g = rng.standard_normal(out.shape).astype(np.float16)
    out.backward(pt.tensor(g))
    tout.backward(torch.tensor(g))
    assert px.grad.dtype == f16
    np.testing.assert_allclose(px.grad.numpy().astype(np.float64),
                               tx.grad.numpy().astype(np.float64), rtol=5e-3, atol=5e-3)
    for p, tp in zip(pm.parameters(), tm.parameters()):
        assert p.grad.dtype == f32
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=2e-3, atol=2e-3)
    for name, buf in pm.named_buffers():
        tb = dict(tm.named_buffers())[name]
        if buf.dtype.is_floating_point:
            assert buf.dtype == f32
            np.testing.assert_allclose(buf.numpy(), tb.numpy(), rtol=1e-3, atol=1e-3)


def test_batch_norm_under_autocast_stays_float16():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    bn = nn.BatchNorm2d(4)
    x = _t((2, 3, 5, 5))
    with pt.autocast(DEV, dtype=f16):
        h = bn(conv(x))
        assert h.dtype == f16 and F.relu(h).dtype == f16
    assert bn.running_mean.dtype == f32


def test_lstm_under_autocast_is_close_to_float32_and_trains_float32_weights():
    pt.manual_seed(0)
    lstm = nn.LSTM(6, 8, num_layers=2)
    x = _t((7, 3, 6))
    ref, (href, cref) = lstm(x)
    with pt.autocast(DEV, dtype=f16):
        out, (h, c) = lstm(x)
    assert out.dtype == h.dtype == c.dtype == f16
    np.testing.assert_allclose(out.detach().numpy().astype(np.float64),
                               ref.detach().numpy(), rtol=1e-2, atol=5e-3)
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == f32 for p in lstm.parameters())


def test_torch_cuda_amp_spellings_still_work_with_a_future_warning():
    from polyten.cuda.amp import GradScaler, autocast, custom_bwd, custom_fwd
    with pytest.warns(FutureWarning, match=r'polyten.amp.autocast\("cuda"'):
        with warnings.catch_warnings():  # where cuda is unavailable, autocast says so too
            warnings.filterwarnings("ignore", "autocast: backend 'cuda' is unavailable")
            ac = autocast(dtype=f16)
    assert ac.device_type == "cuda" and ac.fast_dtype == f16
    with pytest.warns(FutureWarning, match="GradScaler"):
        s = GradScaler(init_scale=8.0, growth_interval=3)
    assert s.get_scale() == 8.0 and s.get_growth_interval() == 3 and s._device == "cuda"
    with pytest.warns(FutureWarning, match="custom_fwd"):
        fwd = custom_fwd(cast_inputs=f32)
    with pytest.warns(FutureWarning, match="custom_bwd"):
        bwd = custom_bwd(lambda ctx, g: g)
    assert callable(fwd) and callable(bwd)
    assert pt.cuda.amp.autocast is autocast
