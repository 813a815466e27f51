"""Autograd: the engine, grad modes, and every derivative rule written so far, checked against
finite differences (gradcheck / gradgradcheck in float64) and against PyTorch."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import GradcheckError, gradcheck, gradgradcheck
from polyten.autograd.rules import RULES
from polyten.dispatch import OPS

RNG = np.random.default_rng(1234)


def leaf(a, dtype=pt.float64):
    return pt.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, requires_grad=True)


# domains where each unary op and its derivatives are smooth
_DOMAIN = {"log": (0.5, 2.0), "log1p": (-0.5, 1.0), "log2": (0.5, 2.0), "log10": (0.5, 2.0),
           "sqrt": (0.5, 2.0), "rsqrt": (0.5, 2.0), "asin": (-0.8, 0.8),
           "acos": (-0.8, 0.8), "atanh": (-0.8, 0.8), "acosh": (1.5, 3.0),
           "reciprocal": (0.5, 2.0), "tan": (-1.0, 1.0)}
_PIECEWISE_CONSTANT = {"sign", "floor", "ceil", "trunc"}
UNARY = sorted(n for n in RULES if n in OPS and OPS[n].signature == f"{n}(x)"
               and OPS[n].differentiable and RULES[n].formulas is not None
               and n not in ("conj", "positive") and hasattr(pt, n))
BINARY = sorted(n for n in RULES if n in OPS and OPS[n].signature == f"{n}(x, y)"
                and OPS[n].differentiable and RULES[n].formulas is not None)


def _sample(name, shape):
    lo, hi = _DOMAIN.get(name, (-2.0, 2.0))
    a = RNG.uniform(lo, hi, size=shape)
    if name in _PIECEWISE_CONSTANT or name == "abs" or name == "relu":
        a = np.where(np.abs(a - np.round(a)) < 0.1, a + 0.25, a)  # away from kinks
        a = np.where(np.abs(a) < 0.1, 0.5, a)
    return a


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck_and_gradgradcheck(name):
    fn = getattr(pt, name)
    x = leaf(_sample(name, (2, 3)))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


_BIN_DOMAIN = {"pow": ((0.5, 2.0), (-1.5, 1.5)), "div": ((-2, 2), (0.5, 2.0)),
               "remainder": ((0.1, 0.9), (1.5, 2.0)), "fmod": ((0.1, 0.9), (1.5, 2.0)),
               "floor_divide": ((0.1, 0.9), (1.5, 2.0))}


@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_with_broadcasting(name):
    fn = getattr(pt, name)
    (xl, xh), (yl, yh) = _BIN_DOMAIN.get(name, ((-2, 2), (-2, 2)))
    x = leaf(RNG.uniform(xl, xh, size=(2, 3)))
    y = leaf(RNG.uniform(yl, yh, size=(3,)))  # broadcast: the engine's sum_to undoes it
    if name in ("maximum", "minimum"):
        y = leaf(np.asarray(x.detach().numpy()[0] + 0.3))
    assert gradcheck(fn, (x, y))
    assert gradgradcheck(fn, (x, y))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
def test_binary_with_python_scalars(name):
    fn = getattr(pt, name)
    x = leaf(RNG.uniform(0.5, 2.0, size=(4,)))
    assert gradcheck(lambda t: fn(t, 1.5), (x,))
    assert gradcheck(lambda t: fn(1.5, t), (x,))
    assert gradgradcheck(lambda t: fn(1.5, t), (x,))


def test_where_clamp_relu_nan_to_num():
    x = leaf(RNG.uniform(-2, 2, size=(5,)) + 0.05)
    y = leaf(RNG.uniform(-2, 2, size=(5,)))
    cond = x > 0
    assert gradcheck(lambda a, b: pt.where(cond, a, b), (x, y))
    assert gradcheck(lambda a: pt.clamp(a, -1.0, 1.0), (leaf([-1.5, -0.5, 0.3, 0.9, 1.7]),))
    lo = leaf([-1.0, 0.0, 0.5])
    assert gradcheck(lambda a, b: pt.clamp(a, min=b), (leaf([-0.5, -0.2, 0.9]), lo))
    assert gradcheck(pt.relu, (leaf([-1.0, -0.3, 0.4, 2.0]),))
    assert gradcheck(pt.nan_to_num, (leaf([1.0, -2.0]),))


@pytest.mark.parametrize("dims, keepdim", [(None, False), (0, False), (1, True), ((0, 1), False),
                                           ((0, 2), True), (-1, False)])
def test_sum_and_mean_gradients(dims, keepdim):
    x = leaf(RNG.standard_normal((2, 3, 4)))
    kw = {} if dims is None else {"dim": dims, "keepdim": keepdim}
    assert gradcheck(lambda t: pt.sum(t, **kw), (x,))
    assert gradcheck(lambda t: pt.mean(t, **kw), (x,))
    assert gradgradcheck(lambda t: (pt.mean(t, **kw) ** 2).sum(), (x,))


@pytest.mark.parametrize("xs, ys", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                                    ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                                    ((1, 2, 3), (4, 3, 2))])
def test_matmul_gradients_with_vectors_and_batches(xs, ys):
    x = leaf(RNG.standard_normal(xs))
    y = leaf(RNG.standard_normal(ys))
    assert gradcheck(pt.matmul, (x, y))
    assert gradgradcheck(pt.matmul, (x, y))


def test_shape_ops_and_conversions():
    x = leaf(RNG.standard_normal((2, 3, 4)))
    assert gradcheck(lambda t: t.reshape(4, 6) * pt.arange(6, dtype=pt.float64), (x,))
    assert gradcheck(lambda t: t.permute(2, 0, 1).reshape(4, -1)[0:1] if False else
                     t.permute(2, 0, 1) * pt.arange(2, dtype=pt.float64).reshape(2, 1), (x,))
    assert gradcheck(lambda t: t.transpose(0, 2) ** 2, (x,))
    v = leaf(RNG.standard_normal((3, 1)))
    assert gradcheck(lambda t: t.expand(3, 4) * pt.arange(4, dtype=pt.float64), (v,))
    assert gradcheck(lambda t: t.clone() * 2, (v,))
    f32 = pt.tensor([1.0, 2.0], requires_grad=True)
    y = (f32.to(pt.float64) ** 2).sum()
    y.backward()
    assert f32.grad.dtype is pt.float32 and f32.grad.tolist() == [2.0, 4.0]


def test_gradcheck_catches_a_wrong_rule():
    from polyten.autograd import rules
    good = rules.RULES["sin"].formulas
    rules.RULES["sin"].formulas = (lambda n, g: g * pt.sin(n.inputs[0]),)  # wrong on purpose
    try:
        with pytest.raises(GradcheckError, match="analytical .* numerical"):
            gradcheck(pt.sin, (leaf([0.3, 1.0]),))
    finally:
        rules.RULES["sin"].formulas = good


# --- against PyTorch -----------------------------------------------------------------------
def test_mlp_gradients_and_double_backward_equal_torch():
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((4, 3))
    w1 = RNG.standard_normal((3, 5))
    w2 = RNG.standard_normal((5, 2))

    def run(lib, tensor):
        x = tensor(a)
        p1 = tensor(w1, requires_grad=True)
        p2 = tensor(w2, requires_grad=True)
        h = lib.tanh(x @ p1)
        out = (lib.sigmoid(h @ p2) ** 2).mean() + (p1 * p1).sum() * 0.01
        g1, g2 = (pt.autograd.grad if lib is pt else torch.autograd.grad)(
            out, [p1, p2], create_graph=True)
        second = (g1 ** 2).sum() + (g2 * g2).mean()
        second.backward()
        return [t.detach().numpy() for t in (out, g1, g2, p1.grad, p2.grad)]

    mine = run(pt, lambda v, requires_grad=False: pt.tensor(v, dtype=pt.float64,
                                                            requires_grad=requires_grad))
    theirs = run(torch, lambda v, requires_grad=False: torch.tensor(v, dtype=torch.float64,
                                                                    requires_grad=requires_grad))
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m, t, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid", "erf",
                                  "atan", "abs", "reciprocal", "square"])
def test_unary_grad_equals_torch(name):
    torch = pytest.importorskip("torch")
    a = _sample(name, (6,))
    x = leaf(a)
    getattr(pt, name)(x).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    getattr(torch, name)(tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-12)


# --- engine behaviour ----------------------------------------------------------------------
def test_grad_accumulates_and_hooks_and_retain_grad():
    x = leaf([1.0, 2.0])
    seen = []
    h = x.register_hook(lambda g: seen.append(g.tolist()))
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.backward(retain_graph=True)
    assert x.grad.tolist() == [18.0, 36.0] and y.grad.tolist() == [6.0, 12.0]
    z.backward()
    assert x.grad.tolist() == [36.0, 72.0]
    assert seen == [[18.0, 36.0], [18.0, 36.0]]
    h.remove()
    (x * 1).sum().backward()
    assert len(seen) == 2
    # a hook may replace the gradient
    w = leaf([1.0])
    w.register_hook(lambda g: g * 10)
    (w * 2).sum().backward()
    assert w.grad.tolist() == [20.0]


def test_shared_gradient_is_not_aliased_between_leaves():
    a, b = leaf([1.0]), leaf([2.0])
    (a + b).sum().backward()
    with pt.no_grad():
        a.grad += 5
    assert b.grad.tolist() == [1.0]


def test_backward_inputs_and_autograd_grad():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    out = (x * y).sum()
    out.backward(inputs=[x])
    assert x.grad.tolist() == [3.0, 3.0] and y.grad is None
    gx, = pt.autograd.grad((x * x).sum(), [x])
    assert gx.tolist() == [2.0, 4.0] and x.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="allow_unused"):
        pt.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = pt.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None
    gx, gy = pt.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)
    assert gy.tolist() == [0.0]


def test_error_paths():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar outputs.*\(2,\)"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*"
                                           "retain_graph=True"):
        y.backward()
    with pytest.raises(RuntimeError, match="only floating point and complex"):
        pt.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x > 1).sum().backward()  # comparisons are not differentiable
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(pt.ones(3, dtype=pt.float64))


def test_grad_modes_are_context_managers_decorators_and_thread_local():
    x = leaf([1.0])
    with pt.no_grad():
        assert not (x * 2).requires_grad
        with pt.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @pt.no_grad()
    def f():
        return x * 2
    assert not f().requires_grad and pt.is_grad_enabled()
    pt.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
        seen = []
        t = threading.Thread(target=lambda: seen.append(pt.is_grad_enabled()))
        t.start()
        t.join()
        assert seen == [True]  # a new thread starts with gradients enabled
    finally:
        pt.set_grad_enabled(True)
    with pt.set_grad_enabled(False):
        assert not pt.is_grad_enabled()
    assert pt.is_grad_enabled()
    with pt.inference_mode():
        assert not (x * 2).requires_grad
    with pt.no_grad():
        x.add_(1)  # allowed: e.g. an optimizer step
    assert x.tolist() == [2.0]


def test_graph_and_saved_tensors_are_released_after_backward():
    x = leaf(RNG.standard_normal(1000))
    y = pt.exp(x) * x
    node = weakref.ref(y.grad_fn)
    exp_node = y.grad_fn.next_functions[0][0]
    assert exp_node.outputs is not None  # exp saves its output
    saved = weakref.ref(exp_node)
    del exp_node
    loss = y.sum()
    loss.backward()
    assert y.grad_fn.released
    del y, loss
    gc.collect()
    assert node() is None and saved() is None


def test_grad_fn_and_next_functions_like_pytorch():
    x = leaf([1.0])
    y = pt.exp(x) + 1
    assert type(y.grad_fn).__name__ == "AddBackward0" and not y.is_leaf and x.is_leaf
    (exp_node, _), (none, _) = y.grad_fn.next_functions
    assert type(exp_node).__name__ == "ExpBackward0" and none is None
    assert exp_node.next_functions[0][0].name() == "AccumulateGrad"
    assert y.detach().requires_grad is False and y.detach().grad_fn is None


# --- custom Functions and anomaly detection --------------------------------------------------
class _Cube(pt.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return 3 * x ** 2 * g * ctx.k, None


class _SortWithIndices(pt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        idx = pt.argsort(x)
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(idx)
        return x[idx], idx

    @staticmethod
    def backward(ctx, g, g_idx):
        (idx,) = ctx.saved_tensors
        out = pt.zeros_like(g)
        out[idx] = g
        return out


def test_custom_function_forward_backward_and_double_backward():
    x = leaf([1.0, 2.0])
    y = _Cube.apply(x, 2.0)
    assert type(y.grad_fn).__name__ == "_CubeBackward"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    assert gradcheck(lambda t: _Cube.apply(t, 2.0), (x,))
    assert gradgradcheck(lambda t: _Cube.apply(t, 2.0), (x,))


def test_custom_function_with_non_differentiable_output():
    x = leaf([3.0, 1.0, 2.0])
    values, idx = _SortWithIndices.apply(x)
    assert values.tolist() == [1.0, 2.0, 3.0] and idx.tolist() == [1, 2, 0]
    assert values.requires_grad and not idx.requires_grad
    (values * pt.tensor([1.0, 10.0, 100.0], dtype=pt.float64)).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_custom_function_wrong_number_of_gradients():
    class Bad(pt.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="Bad.backward returned 1 gradients but forward took 2"):
        Bad.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_detect_anomaly_names_the_op_and_where_it_was_created():
    x = leaf([0.0, 1.0])
    with pt.autograd.detect_anomaly():
        y = pt.sqrt(x)  # d sqrt / dx at 0 is inf
        with pytest.raises(RuntimeError) as ei:
            y.sum().backward()
    msg = str(ei.value)
    assert "SqrtBackward0" in msg and "nan/inf" in msg and "test_autograd.py" in msg
    assert not pt.autograd.is_anomaly_enabled()


# --- autograd.functional against PyTorch ------------------------------------------------------
def test_functional_vjp_jvp_jacobian_hessian_equal_torch():
    torch = pytest.importorskip("torch")
    from polyten.autograd import functional as F
    a = np.array([0.3, -1.2, 0.7])
    b = np.array([[0.5, 1.0, -0.3], [0.2, 0.1, 0.9]])
    f = lambda x, w: pt.tanh(w @ x) * x.sum()  # noqa: E731
    tf = lambda x, w: torch.tanh(w @ x) * x.sum()  # noqa: E731
    x, w = pt.tensor(a, dtype=pt.float64), pt.tensor(b, dtype=pt.float64)
    tx, tw = torch.tensor(a), torch.tensor(b)
    jac = F.jacobian(f, (x, w))
    tjac = torch.autograd.functional.jacobian(tf, (tx, tw))
    for m, t in zip(jac, tjac):
        np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-10)
    v = pt.tensor([1.0, -2.0], dtype=pt.float64)
    out, g = F.vjp(f, (x, w), v)
    tout, tg = torch.autograd.functional.vjp(tf, (tx, tw), torch.tensor([1.0, -2.0],
                                                                       dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    for m, t in zip(g, tg):
        np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-10)
    u = (pt.tensor([1.0, 2.0, 3.0], dtype=pt.float64), pt.ones(2, 3, dtype=pt.float64))
    _, jv = F.jvp(f, (x, w), u)
    _, tjv = torch.autograd.functional.jvp(tf, (tx, tw), (torch.tensor([1.0, 2.0, 3.0],
                                                                       dtype=torch.float64),
                                                          torch.ones(2, 3, dtype=torch.float64)))
    np.testing.assert_allclose(jv.numpy(), tjv.numpy(), rtol=1e-10)
    s = lambda x: (pt.exp(x) * x).sum()  # noqa: E731
    ts = lambda x: (torch.exp(x) * x).sum()  # noqa: E731
    np.testing.assert_allclose(F.hessian(s, x).numpy(),
                               torch.autograd.functional.hessian(ts, tx).numpy(), rtol=1e-10)


# --- in-place ops and version counters ----------------------------------------------------------
def test_inplace_change_of_a_saved_tensor_raises_at_backward_naming_the_op():
    x = leaf([1.0, 2.0])
    z = pt.exp(x * 2)
    z.add_(1)  # exp saved its output
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation: output 0 of "
                                           r"ExpBackward0 is at version 1; expected version 0"):
        z.sum().backward()
    a = leaf([1.0, 2.0])
    m = a * 1
    m2 = m * a  # mul saves its inputs
    m.mul_(3)
    with pytest.raises(RuntimeError, match="input 0 of MulBackward0"):
        m2.sum().backward()


def test_inplace_on_graph_tensors_is_recorded_like_pytorch():
    torch = pytest.importorskip("torch")
    a = leaf([1.0, 2.0])
    b = a * 2
    b += a
    b.exp_()
    b.sum().backward()
    ta = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    tb = ta * 2
    tb += ta
    tb.exp_()
    tb.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    assert type(b.grad_fn).__name__ == "ExpBackward0"


def test_inplace_with_an_operand_that_requires_grad_keeps_the_gradient():
    c = pt.zeros(2, dtype=pt.float64)
    w = leaf([3.0, 4.0])
    c += w * 2
    assert c.requires_grad and not c.is_leaf
    c.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


def test_version_counter_counts_inplace_writes():
    x = pt.zeros(3, dtype=pt.float64)
    assert x._version_value == 0
    p = x * leaf([1.0, 1.0, 1.0])  # mul saves x: x now carries a counter
    x += 1
    x[0] = 5.0
    x.exp_()
    assert x._version_value == 3
    with pytest.raises(RuntimeError, match="input 0 of MulBackward0 is at version 3; "
                                           "expected version 0"):
        p.sum().backward()


def test_inplace_mul_on_a_graph_tensor_matches_torch():
    torch = pytest.importorskip("torch")
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    w = x * 1
    w.mul_(y)  # mul saves its inputs: the old value of w is kept as a recorded copy
    w.sum().backward()
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ty = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    tw = tx * 1
    tw.mul_(ty)
    tw.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())


def test_backend_fused_backward_kernel_is_used_without_create_graph():
    from conftest import cpu_clone
    calls = []

    def relu_backward(grads, inputs, outputs, params):
        calls.append(1)
        (g,), (x,) = grads, inputs
        return (g * (x > 0),)

    with cpu_clone("fusedbw") as dev:
        dev.backend.backward_kernels["relu"] = relu_backward
        x = pt.tensor([-1.0, 2.0, 3.0], dtype=pt.float64, device=dev, requires_grad=True)
        (pt.relu(x) * 2).sum().backward()
        assert calls == [1] and x.grad.tolist() == [0.0, 2.0, 2.0]
        assert x.grad.device == dev
        g, = pt.autograd.grad((pt.relu(x) ** 2).sum(), [x], create_graph=True)
        assert calls == [1]  # a graph of the backward is needed: the polyten formula runs
        assert g.requires_grad and g.tolist() == [0.0, 4.0, 6.0]


def test_backward_kernel_for_an_unknown_op_is_reported():
    from conftest import _ClonePlugin
    from polyten.dispatch import PluginWarning, register_plugin, unregister_plugin

    class P(_ClonePlugin):
        pass
    name = register_plugin(P("badbw"), name="test-badbw")
    try:
        from polyten.dispatch.registry import REGISTRY
        spec = REGISTRY.infos["badbw"].spec
        load = spec.load

        def load_with_bad():
            b = load()
            b.backward_kernels["frobnicate"] = lambda *a: ()
            return b
        spec.load = load_with_bad
        with pytest.warns(PluginWarning, match="backward kernel for 'frobnicate'"):
            dev = pt.device("badbw")
        assert "frobnicate" not in dev.backend.backward_kernels
    finally:
        unregister_plugin(name)


def test_views_share_the_version_counter_of_their_base():
    base = pt.zeros(4, dtype=pt.float64)
    w = leaf([1.0, 2.0, 3.0, 4.0])
    p = base * w  # saves base
    view = base[1:3]
    view += 1  # writes base's memory through a view
    with pytest.raises(RuntimeError, match="input 0 of MulBackward0 is at version 1"):
        p.sum().backward()
    r = base.reshape(2, 2)
    before = base._version_value
    r[0, 0] = 7.0
    assert base._version_value == before + 1 and base[0].item() == 7.0


@pytest.mark.parametrize("name", ["mul", "div", "sin", "log", "exp", "abs", "sqrt", "tanh"])
def test_complex_gradients_follow_pytorchs_convention(name):
    torch = pytest.importorskip("torch")
    a = np.array([1 + 2j, -0.5 + 0.3j])
    b = np.array([0.7 - 1j, 2 + 0.1j])
    x, y = pt.tensor(a, requires_grad=True), pt.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    binary = name in ("mul", "div")
    o = getattr(pt, name)(x, y) if binary else getattr(pt, name)(x)
    to = getattr(torch, name)(tx, ty) if binary else getattr(torch, name)(tx)
    loss = o.sum() if name == "abs" else o.real.sum() + (o * o).imag.sum()
    tloss = to.sum() if name == "abs" else to.real.sum() + (to * to).imag.sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    if binary:
        np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10)


def test_a_root_gradient_takes_the_outputs_dtype():
    """``y.backward(gradient=g)`` / ``autograd.grad(..., grad_outputs=g)`` with ``g`` of
    another real dtype runs in the output's dtype (torch casts it too); a complex gradient
    for a real output, and a hook that changes the gradient's dtype or shape, are errors
    naming the fix (torch raises for both)."""
    a = np.array([-1.5, 0.25, 2.0], dtype=np.float32)
    x = pt.tensor(a, requires_grad=True)
    pt.nn.functional.layer_norm(pt.sigmoid(x), (3,)).backward(
        pt.tensor([1.0, -2.0, 0.5], dtype=pt.float64))
    assert x.grad.dtype is pt.float32
    torch = pytest.importorskip("torch")
    tx = torch.tensor(a, requires_grad=True)
    torch.nn.functional.layer_norm(torch.sigmoid(tx), (3,)).backward(
        torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    g, = pt.autograd.grad(pt.sigmoid(x), x, pt.ones(3, dtype=pt.float16))
    assert g.dtype is pt.float32
    with pytest.raises(RuntimeError, match="gradient is complex64 but the output is float32"):
        pt.sigmoid(x).backward(pt.ones(3, dtype=pt.complex64))
    y = x * 2
    y.register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match=r"hook '<lambda>' replaced the gradient, float32 "
                                           r"tensor of shape \(3,\) on cpu, by float64"):
        y.sum().backward()
    z = x * 2
    z.register_hook(lambda g: g[:2])
    with pytest.raises(RuntimeError, match="same shape, dtype and device"):
        z.sum().backward()


def test_half_mean_gradient_over_more_elements_than_float16_counts():
    """The gradient of a float16 / bfloat16 mean over more than 65504 elements is
    ``1 / n`` rounded once (computed in float32, as torch), not 0 (``n`` is inf in
    float16)."""
    torch = pytest.importorskip("torch")
    for dt, tdt in ((pt.float16, torch.float16), (pt.bfloat16, torch.bfloat16)):
        x = pt.ones(70000, 2, dtype=dt, requires_grad=True)
        x.mean().backward()
        (x * 1).mean(dim=0).sum().backward()
        tx = torch.ones(70000, 2, dtype=tdt, requires_grad=True)
        tx.mean().backward()
        (tx * 1).mean(dim=0).sum().backward()
        got, want = x.grad.float().numpy(), tx.grad.float().numpy()
        assert got[0, 0] > 0 and np.array_equal(got, want), (dt, got[0, 0], want[0, 0])


def test_inplace_of_an_op_without_derivative_on_a_graph_tensor_says_so():
    """An in-place form made by ``_inplace_generic`` over an op that records no node cannot
    rebase a graph tensor: a clear error naming the in-place call, not an AttributeError."""
    from polyten.api.elementwise import _inplace_generic
    method = _inplace_generic("round_detached", lambda x: pt.round(x).detach())
    x = pt.tensor([1.4, 2.6], requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match=r"round_detached_: this op has no derivative.*"
                       r"\(shape \(2,\), float32\).*x.detach\(\)"):
        method(x)
    y = pt.tensor([1.4, 2.6])
    assert method(y) is y and y.tolist() == [1.0, 3.0]


def test_grad_runs_only_the_part_of_the_graph_that_reaches_its_inputs():
    """``autograd.grad(y, a)`` and ``backward(inputs=[a])``, as PyTorch: a branch of the graph
    that cannot reach ``a`` is not computed, so its hooks do not fire and its nodes are not
    freed (a later ``grad`` through it still works without ``retain_graph``)."""
    a = pt.tensor([1.0, 2.0], requires_grad=True)
    b = pt.tensor([3.0, 4.0], requires_grad=True)
    seen = []
    b.register_hook(lambda g: seen.append("b"))
    sq = b ** 2
    sq.register_hook(lambda g: seen.append("sq"))
    y = (a * 2).sum() + sq.sum()
    g, = pt.autograd.grad(y, a, retain_graph=True)
    assert g.tolist() == [2.0, 2.0] and seen == []
    y.backward(inputs=[a])
    assert a.grad.tolist() == [2.0, 2.0] and b.grad is None and seen == []
    gb, = pt.autograd.grad(sq.sum(), b)  # sq's node was neither run nor freed
    assert gb.tolist() == [6.0, 8.0] and seen == ["sq", "b"]


def test_contiguous_copy_of_a_view_keeps_the_gradient():
    """``x.T.contiguous()`` copies (the transposed view is not C-contiguous) and the copy
    stays in the graph, as PyTorch's (it used to come back detached, silently cutting the
    gradient of ``transpose(...).contiguous().view(...)`` code)."""
    a = np.arange(12.0).reshape(3, 4)
    x = pt.tensor(a, requires_grad=True)
    y = x.T.contiguous()
    assert y.is_contiguous() and y.grad_fn is not None
    (y * pt.tensor(a.T)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a)
    z = pt.tensor(a, requires_grad=True)
    assert z.contiguous() is z  # already contiguous: the tensor itself
    w = pt.tensor(a).T
    assert w.contiguous().grad_fn is None and w.contiguous().is_contiguous()
    c = x.to(copy=True)  # to(copy=True) is a recorded copy too
    assert c.grad_fn is not None
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a + 1)


def test_inplace_writes_through_views_reach_the_base_gradient():
    """PyTorch's view + in-place semantics: a write through a view (basic index, transpose,
    view of a view, a split piece, reshape) rebases the root (CopySlices), views made before
    a write into the root see the new graph, a write through a view of a leaf that requires
    grad is refused, and a plain tensor written with a graph value joins the graph."""
    a = np.arange(12.0).reshape(3, 4)
    w = np.arange(12.0).reshape(3, 4) * 0.1 + 1

    def grad_of(step):
        x = pt.tensor(a, requires_grad=True)
        y = x * 1
        step(y)
        (y * pt.tensor(w)).sum().backward()
        return x.grad.numpy()

    g = grad_of(lambda y: y[1].mul_(3))
    want = w.copy()
    want[1] *= 3
    np.testing.assert_allclose(g, want)
    g = grad_of(lambda y: y.T[0].mul_(0))
    want = w.copy()
    want[:, 0] = 0
    np.testing.assert_allclose(g, want)
    g = grad_of(lambda y: y.split(2, dim=1)[1].mul_(-1))  # torch refuses; this is d/dx
    want = w.copy()
    want[:, 2:] *= -1
    np.testing.assert_allclose(g, want)
    g = grad_of(lambda y: y[1:].reshape(8)[::2].mul_(5))  # a view of a view of a view
    want = w.copy()
    want[1:, ::2] *= 5
    np.testing.assert_allclose(g, want)
    # a view made before the write into its root sees the write
    x = pt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    v = y[1:]
    y.mul_(2)
    v.sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 2.0]
    # y[:, :2] = y[:, :2] * 2: mul by a number never reads its input, so no version error
    x = pt.ones(3, 4, requires_grad=True)
    y = x * 1
    y[:, :2] = y[:, :2] * 2 - 0.5
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 2, 1, 1]] * 3)
    # a value a saved tensor needs, changed through a view, still fails the version check
    y = pt.ones(3, requires_grad=True).exp()
    y[0].mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    leaf = pt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a view of a leaf tensor that requires grad"):
        leaf[:2].add_(10)
    with pt.no_grad():
        leaf[:2].add_(10)  # initialising a parameter: allowed
    assert leaf.tolist() == [11.0, 12.0, 3.0]
    buf = pt.zeros(3)
    wt = pt.tensor([1.0, 2.0], requires_grad=True)
    buf[0:2].add_(wt * 3)
    assert buf.requires_grad
    buf.sum().backward()
    assert wt.grad.tolist() == [3.0, 3.0]
