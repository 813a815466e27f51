"""``polyten.func`` (torch.func's transforms): per-sample gradients, Jacobians and Hessians
against finite differences and torch.func, vmap's dims / randomness / errors, and
functional_call / stack_module_state against torch."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp,
                          stack_module_state, vjp, vmap)

F = pt.nn.functional
RNG = np.random.default_rng(20261205)


def T(a, requires_grad=False):
    return pt.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def N(t):
    return t.detach().numpy()


def _fd_jacobian(f, xs, k, eps=1e-6):
    """Central differences of ``f`` (NumPy in, NumPy out) with respect to argument ``k``."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    y0 = np.asarray(f(*xs))
    jac = np.zeros(y0.shape + xs[k].shape)
    for idx in np.ndindex(xs[k].shape):
        hi = [x.copy() for x in xs]
        lo = [x.copy() for x in xs]
        hi[k][idx] += eps
        lo[k][idx] -= eps
        jac[(...,) + idx] = (np.asarray(f(*hi)) - np.asarray(f(*lo))) / (2 * eps)
    return jac


def _f_np(x, y):
    return np.stack([np.sin(x[0]) * y[1], x[1] ** 2 * y[0] + np.exp(x[2] * y[1]),
                     (x * x).sum() * y[0]])


def _f_pt(x, y):
    return pt.stack([pt.sin(x[0]) * y[1], x[1] ** 2 * y[0] + pt.exp(x[2] * y[1]),
                     (x * x).sum() * y[0]])


# ---------------------------------------------------------------------- Jacobians --
@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobians_match_finite_differences_and_torch(transform):
    torch = pytest.importorskip("torch")
    import torch.func as tf
    x, y = RNG.standard_normal(3) * 0.5, RNG.standard_normal(2) * 0.5
    jx, jy = transform(_f_pt, argnums=(0, 1))(T(x), T(y))
    np.testing.assert_allclose(N(jx), _fd_jacobian(_f_np, [x, y], 0), atol=1e-8)
    np.testing.assert_allclose(N(jy), _fd_jacobian(_f_np, [x, y], 1), atol=1e-8)
    tfun = getattr(tf, transform.__name__)

    def f_t(a, b):
        return torch.stack([torch.sin(a[0]) * b[1], a[1] ** 2 * b[0] + torch.exp(a[2] * b[1]),
                            (a * a).sum() * b[0]])

    tx, ty = tfun(f_t, argnums=(0, 1))(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(N(jx), tx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(N(jy), ty.numpy(), rtol=1e-12)
    assert not jx.requires_grad


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_structure_of_trees_matches_torch(transform):
    torch = pytest.importorskip("torch")
    import torch.func as tf
    a, b = RNG.standard_normal(2), RNG.standard_normal((3, 1))

    def f(lib):
        return lambda u, v: {"s": (u * v.sum()).sum(), "t": (u * 2, v ** 2)}

    got = transform(f(pt), argnums=(0, 1))(T(a), T(b))
    want = getattr(tf, transform.__name__)(f(torch), argnums=(0, 1))(torch.tensor(a),
                                                                     torch.tensor(b))
    gl, gs = pt.func._tree_flatten(got)
    wl, ws = pt.func._tree_flatten(want)
    assert [tuple(t.shape) for t in gl] == [tuple(t.shape) for t in wl]
    for g, w in zip(gl, wl):
        np.testing.assert_allclose(N(g), w.numpy(), rtol=1e-12, atol=1e-14)
    # a dict argument gives a dict Jacobian
    jd = jacrev(lambda d: d["u"] * d["v"])({"u": T(a), "v": T([3.0])})
    assert sorted(jd) == ["u", "v"] and tuple(jd["v"].shape) == (2, 1)
    np.testing.assert_allclose(N(jd["v"])[:, 0], a)


def test_hessian_matches_analytic_finite_differences_and_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(3)

    def f(lib):
        return lambda t: (lib.sin(t) * t.prod()).sum() + (t ** 4).sum()

    h = hessian(f(pt))(T(x))
    np.testing.assert_allclose(N(h), torch.func.hessian(f(torch))(torch.tensor(x)).numpy(),
                               rtol=1e-10)
    g_np = lambda t: np.cos(t) * t.prod() + np.sin(t).sum() * t.prod() / t + 4 * t ** 3  # noqa
    np.testing.assert_allclose(N(h), _fd_jacobian(g_np, [x], 0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(N(h), N(pt.autograd.functional.hessian(f(pt), T(x))),
                               rtol=1e-12)


def test_jacrev_of_jacrev_and_has_aux_and_chunk_size_check():
    x = T([0.5, -1.0])
    f = lambda t: (t ** 3).sum()  # noqa: E731
    np.testing.assert_allclose(N(jacrev(jacrev(f))(x)), np.diag(6 * N(x)))
    jac, aux = jacrev(lambda t: (t * 2, t.sum()), has_aux=True)(x)
    np.testing.assert_allclose(N(jac), 2 * np.eye(2))
    assert float(aux) == -0.5 and not aux.requires_grad
    with pytest.raises(ValueError, match="jacrev: chunk_size should be None or greater than 0"):
        jacrev(f, chunk_size=0)
    with pytest.raises(RuntimeError, match="jacfwd: only allowed values for randomness"):
        jacfwd(f, randomness="x")
    with pytest.raises(RuntimeError, match="called random operation"):
        jacfwd(lambda t: t * pt.rand(2))(x)


# ------------------------------------------------------------------ grad / vjp / jvp --
def test_grad_first_second_derivatives_and_argnums():
    x = T([1.0, 2.0])
    np.testing.assert_allclose(N(grad(lambda t: (t ** 3).sum())(x)), [3.0, 12.0])
    d2 = grad(grad(lambda t: t.sin() * t ** 2))(T(0.7))
    np.testing.assert_allclose(float(d2), 2 * np.sin(0.7) + 4 * 0.7 * np.cos(0.7)
                               - 0.49 * np.sin(0.7), rtol=1e-12)
    f = lambda a, b, c: (a * b.exp()).sum() * c  # noqa: E731
    ga, gb = grad(f, argnums=(0, 1))(x, T([0.1, 0.2]), 3.0)
    np.testing.assert_allclose(N(ga), 3 * np.exp([0.1, 0.2]))
    np.testing.assert_allclose(N(gb), 3 * np.array([1.0, 2.0]) * np.exp([0.1, 0.2]))
    gc_ = grad(f, argnums=-2)(x, T([0.0, 0.0]), 1.0)
    np.testing.assert_allclose(N(gc_), [1.0, 2.0])
    # an argument the output does not depend on gets zeros (as torch.func)
    np.testing.assert_allclose(N(grad(lambda a, b: a.sum(), argnums=1)(x, T([5.0]))), [0.0])
    g, (v, aux) = grad_and_value(lambda t: ((t ** 2).sum(), t * 0 + 7), has_aux=True)(x)
    assert float(v) == 5.0 and N(aux).tolist() == [7.0, 7.0] and N(g).tolist() == [2.0, 4.0]
    with pt.no_grad():   # a transform: differentiates inside no_grad
        np.testing.assert_allclose(N(grad(lambda t: (t ** 2).sum())(x)), [2.0, 4.0])


def test_grad_pytree_argument_matches_torch_func():
    torch = pytest.importorskip("torch")
    p = {"w": RNG.standard_normal((3, 2)), "b": [RNG.standard_normal(2)]}
    x = RNG.standard_normal((4, 3))

    def loss(lib):
        return lambda params, inp: lib.tanh(inp @ params["w"] + params["b"][0]).square().mean()

    got = grad(loss(pt))({"w": T(p["w"]), "b": [T(p["b"][0])]}, T(x))
    want = torch.func.grad(loss(torch))({"w": torch.tensor(p["w"]),
                                        "b": [torch.tensor(p["b"][0])]}, torch.tensor(x))
    np.testing.assert_allclose(N(got["w"]), want["w"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(N(got["b"][0]), want["b"][0].numpy(), rtol=1e-12)


def test_grad_errors_name_the_call():
    x = T([1.0, 2.0])
    with pytest.raises(RuntimeError, match="to return a scalar Tensor, got tensor with 1 dims"):
        grad(lambda t: t)(x)
    with pytest.raises(RuntimeError, match="got argnum=1, but only 1 positional inputs"):
        grad(lambda t: t.sum(), argnums=1)(x)
    with pytest.raises(RuntimeError, match="argnums elements must be unique"):
        grad(lambda t: t.sum(), argnums=(0, 0))(x)
    with pytest.raises(RuntimeError, match="argnums must be int or Tuple"):
        grad(lambda t: t.sum(), argnums=1.0)(x)
    with pytest.raises(RuntimeError, match=r"to return a Tensor, got <class 'tuple'>"):
        grad(lambda t: (t.sum(), 1))(x)
    with pytest.raises(RuntimeError, match=r"should be a tuple: \(output, aux\)"):
        grad(lambda t: t.sum(), has_aux=True)(x)
    with pytest.raises(ValueError, match="must be Tensor, got <class 'float'>"):
        grad(lambda t: t)(3.0)
    with pytest.raises(RuntimeError, match="only tensors of floating point dtype"):
        grad(lambda t: t.sum())(pt.tensor([1, 2]))


def test_grad_results_follow_the_enclosing_graph():
    # a closure parameter that requires grad: the gradient stays differentiable for it
    w = T([2.0, -1.0], requires_grad=True)
    x = T([0.5, 3.0])
    g = grad(lambda t: (t ** 2 * w).sum())(x)       # 2 t w
    assert g.requires_grad
    (dw,) = pt.autograd.grad(g.sum(), w)
    np.testing.assert_allclose(N(dw), 2 * N(x))
    # no closure that requires grad: plain tensors
    assert not grad(lambda t: (t ** 2).sum())(x).requires_grad
    # a closure computed outside stays intact for the enclosing backward
    y = w * 3
    grad(lambda t: (t * y).sum())(x)
    y.sum().backward()
    np.testing.assert_allclose(N(w.grad), [3.0, 3.0])
    # gradcheck through grad with an input that requires grad
    assert pt.autograd.gradcheck(lambda t: grad(lambda u: (u.sin() * u).sum())(t),
                                 (T([0.3, 1.1], requires_grad=True),))


def test_vjp_and_jvp_match_torch_func():
    torch = pytest.importorskip("torch")
    x, v = RNG.standard_normal(3), RNG.standard_normal(3)
    c = (RNG.standard_normal(3), RNG.standard_normal(()))

    def f(lib):
        return lambda t: (lib.sin(t) * t, (t ** 2).sum())

    out, fn = vjp(f(pt), T(x))
    (g,) = fn((T(c[0]), T(c[1])))
    tout, tfn = torch.func.vjp(f(torch), torch.tensor(x))
    (tg,) = tfn((torch.tensor(c[0]), torch.tensor(c[1])))
    np.testing.assert_allclose(N(g), tg.numpy(), rtol=1e-12)
    (g2,) = fn((T(c[0]), T(c[1])))   # vjp_fn can be called again
    np.testing.assert_allclose(N(g2), tg.numpy(), rtol=1e-12)
    assert not out[0].requires_grad
    o, jv = jvp(f(pt), (T(x),), (T(v),))
    to, tjv = torch.func.jvp(f(torch), (torch.tensor(x),), (torch.tensor(v),))
    np.testing.assert_allclose(N(jv[0]), tjv[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(float(jv[1]), float(tjv[1]), rtol=1e-12)
    np.testing.assert_allclose(N(o[0]), to[0].numpy())
    o, jv, aux = jvp(lambda t: (t * 3, {"k": t}), (T(x),), (T(v),), has_aux=True)
    np.testing.assert_allclose(N(jv), 3 * v)
    assert set(aux) == {"k"}
    with pytest.raises(RuntimeError, match="expected primals to be a tuple"):
        jvp(pt.sin, T(x), T(v))
    with pytest.raises(RuntimeError, match=r"a tangent of shape \[2\] was given for a primal "
                                           r"of shape \[3\]"):
        jvp(pt.sin, (T(x),), (T([1.0, 2.0]),))
    with pytest.raises(RuntimeError, match="vjp_fn: mismatch in shape"):
        fn((T([1.0]), T(c[1])))


# ---------------------------------------------------------------------------- vmap --
def test_per_sample_gradients_match_torch_func():
    torch = pytest.importorskip("torch")
    pt.manual_seed(0)
    model = pt.nn.Sequential(pt.nn.Linear(5, 7), pt.nn.Tanh(), pt.nn.Linear(7, 3)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                                 torch.nn.Linear(7, 3)).double()
    with torch.no_grad():
        for p, q in zip(model.parameters(), tmodel.parameters()):
            q.copy_(torch.tensor(N(p)))
    xs = RNG.standard_normal((6, 5))
    ys = RNG.integers(0, 3, 6)

    def loss(lib, fc, mod):
        def f(params, x, y):
            logits = fc(mod, params, (x.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(logits, y.unsqueeze(0))
        return f

    params = {k: v.detach() for k, v in model.named_parameters()}
    got = vmap(grad(loss(pt, functional_call, model)), in_dims=(None, 0, 0))(
        params, T(xs), pt.tensor(ys))
    tparams = {k: v.detach() for k, v in tmodel.named_parameters()}
    want = torch.func.vmap(torch.func.grad(loss(torch, torch.func.functional_call, tmodel)),
                           in_dims=(None, 0, 0))(tparams, torch.tensor(xs), torch.tensor(ys))
    assert list(got) == list(want)
    for k in want:
        assert tuple(got[k].shape) == tuple(want[k].shape) == (6,) + tuple(params[k].shape)
        np.testing.assert_allclose(N(got[k]), want[k].numpy(), rtol=1e-10, atol=1e-13)
    # and against a loop of ordinary backward passes
    for i in range(6):
        model.zero_grad()
        F.cross_entropy(model(T(xs[i:i + 1])), pt.tensor(ys[i:i + 1])).backward()
        for k, p in model.named_parameters():
            np.testing.assert_allclose(N(got[k][i]), N(p.grad), rtol=1e-10, atol=1e-13)


def test_vmap_dims_trees_and_nesting_match_torch():
    torch = pytest.importorskip("torch")
    import torch.func as tf
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5))
    cases = [
        (lambda lib: lambda x, y: x @ y, (1, None), 0, (a.T.copy(), b)),
        (lambda lib: lambda x, y: (x.sum(), x * 2), (-1, None), (0, 1), (a, b)),
        (lambda lib: lambda d: {"p": d["x"] * d["s"], "q": [d["x"].sum()]},
         ({"x": 0, "s": None},), 0, ({"x": a, "s": b[0, 0]},)),
    ]
    for make, in_dims, out_dims, args in cases:
        conv = lambda lib, v: (lib.tensor(v) if isinstance(v, (np.ndarray, float)) else  # noqa
                               {k: conv(lib, w) for k, w in v.items()} if isinstance(v, dict)
                               else v)
        got = vmap(make(pt), in_dims, out_dims)(*[conv(pt, v) for v in args])
        want = tf.vmap(make(torch), in_dims, out_dims)(*[conv(torch, v) for v in args])
        gl, gs = pt.func._tree_flatten(got)
        wl, ws = pt.func._tree_flatten(want)
        assert len(gl) == len(wl)
        for g, w in zip(gl, wl):
            np.testing.assert_allclose(N(g), w.numpy(), rtol=1e-12)
    nested = vmap(vmap(lambda t: t.sum()))(T(RNG.standard_normal((2, 3, 4))))
    assert tuple(nested.shape) == (2, 3)
    got = vmap(lambda x, y: (x + y, x * 0 + 1), in_dims=(0, None), out_dims=(1, 0))(
        T(a), T(a[0]))
    assert tuple(got[0].shape) == (4, 3) and tuple(got[1].shape) == (3, 4)
    same = vmap(lambda x: (x, pt.ones(2)), out_dims=(0, None))(T(a))
    assert tuple(same[1].shape) == (2,)


def test_vmap_randomness_modes():
    x = pt.zeros(4, 3)
    with pytest.raises(RuntimeError, match="called random operation while in randomness "
                                           "error mode"):
        vmap(lambda t: t + pt.rand(3))(x)
    pt.manual_seed(0)
    first = pt.rand(3)
    pt.manual_seed(0)
    with pytest.raises(RuntimeError):
        vmap(lambda t: t + pt.rand(3))(x)
    # the refused call left the generator where it was
    np.testing.assert_array_equal(N(pt.rand(3)), N(first))
    pt.manual_seed(1)
    same = vmap(lambda t: t + pt.rand(3), randomness="same")(x)
    after_same = pt.rand(1)
    assert all(np.array_equal(N(same[0]), N(r)) for r in same)
    pt.manual_seed(1)
    np.testing.assert_array_equal(N(pt.rand(3)), N(same[0]))   # one draw's worth
    np.testing.assert_array_equal(N(pt.rand(1)), N(after_same))
    diff = vmap(lambda t: t + pt.rand(3), randomness="different")(x)
    assert not np.array_equal(N(diff[0]), N(diff[1]))
    with pytest.raises(RuntimeError, match="only allowed values for randomness are"):
        vmap(pt.sin, randomness="x")


def test_vmap_errors_match_torch():
    x = T(RNG.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="Expected all tensors to have the same size in the "
                                         r"mapped dimension, got sizes \[2, 3\]"):
        vmap(lambda a, b: a)(x, T(np.ones(3)))
    with pytest.raises(ValueError, match="expected `in_dims` to be int or a"):
        vmap(pt.sin, in_dims=None)
    with pytest.raises(ValueError, match="Got in_dim=2 for some input, but that input is a "
                                         "Tensor of dimensionality 2"):
        vmap(pt.sin, in_dims=2)(x)
    with pytest.raises(ValueError, match="must only return Tensors, got type <class 'int'>"):
        vmap(lambda a: 3)(x)
    with pytest.raises(ValueError, match="in_dims is not compatible with the structure"):
        vmap(pt.sin, in_dims=(0, 0))(x)
    with pytest.raises(ValueError, match="We cannot vmap over non-Tensor arguments"):
        vmap(lambda a: a)(3.0)
    with pytest.raises(ValueError, match="expected at least one Tensor to vmap over"):
        vmap(lambda a: a, in_dims=(None,))(x)
    with pytest.raises(ValueError, match="chunk_size should be None or greater than 0"):
        vmap(pt.sin, chunk_size=0)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        vmap(pt.sin, out_dims=2)(x)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        vmap(lambda a: a, out_dims=None)(x)
    empty = vmap(lambda a: a * 2)(pt.zeros(0, 5))
    assert tuple(empty.shape) == (0, 5)


# ------------------------------------------------------------ modules and ensembles --
def test_functional_call_matches_torch_and_leaves_the_module_unchanged():
    torch = pytest.importorskip("torch")
    pt.manual_seed(0)
    m = pt.nn.Sequential(pt.nn.Linear(3, 4), pt.nn.BatchNorm1d(4), pt.nn.Linear(4, 2)).double()
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                             torch.nn.Linear(4, 2)).double()
    new = {k: RNG.standard_normal(tuple(v.shape)) for k, v in m.named_parameters()}
    before = {k: N(v).copy() for k, v in m.state_dict().items()}
    x = RNG.standard_normal((5, 3))
    bufs = {k: v.clone() for k, v in m.named_buffers()}
    tbufs = {k: torch.tensor(N(v)) for k, v in m.named_buffers()}
    got = functional_call(m, ({k: T(v) for k, v in new.items()}, bufs), (T(x),))
    want = torch.func.functional_call(tm, ({k: torch.tensor(v) for k, v in new.items()},
                                           tbufs), (torch.tensor(x),))
    np.testing.assert_allclose(N(got), want.detach().numpy(), rtol=1e-12)
    # the running statistics were updated on the given buffers, not the module's
    np.testing.assert_allclose(N(bufs["1.running_mean"]), tbufs["1.running_mean"].numpy(),
                               rtol=1e-12)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(N(v), before[k])
    # gradients flow to the given tensors
    w = T(new["0.weight"], requires_grad=True)
    functional_call(m.eval(), {"0.weight": w}, T(x)).sum().backward()
    assert w.grad is not None and m[0].weight.grad is None


def test_functional_call_tied_weights_strict_and_errors_match_torch():
    torch = pytest.importorskip("torch")

    def tied(lib):
        class Tied(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = lib.nn.Linear(2, 2)
                self.b = lib.nn.Linear(2, 2)
                self.b.weight = self.a.weight

            def forward(self, x):
                return self.b(self.a(x))
        return Tied()

    m, tm = tied(pt), tied(torch)
    with torch.no_grad():
        for p, q in zip(m.parameters(), tm.parameters()):
            q.copy_(torch.tensor(N(p)))
    z = np.zeros((2, 2)) + 0.5
    x = np.ones((1, 2))
    for tie in (True, False):
        got = functional_call(m, {"a.weight": pt.tensor(z, dtype=pt.float32)},
                              pt.tensor(x, dtype=pt.float32), tie_weights=tie)
        want = torch.func.functional_call(tm, {"a.weight": torch.tensor(z, dtype=torch.float32)},
                                          torch.tensor(x, dtype=torch.float32), tie_weights=tie)
        np.testing.assert_allclose(N(got), want.detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="got multiple values for keys"):
        functional_call(m, {"a.weight": pt.zeros(2, 2), "b.weight": pt.ones(2, 2)}, pt.ones(2))
    lin = pt.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\): 'foo'\.\n\tMissing key\(s\): "
                                           r"'weight', 'bias'"):
        functional_call(lin, {"foo": pt.ones(2)}, pt.ones(2), strict=True)
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(lin, ({"weight": pt.ones(2, 2)}, {"weight": pt.ones(2, 2)}), pt.ones(2))
    with pytest.raises(ValueError, match="expected parameter_and_buffer_dicts to be a dict"):
        functional_call(lin, 3, pt.ones(2))
    # an unknown name is an attribute for the call only
    functional_call(lin, {"foo": pt.ones(2)}, pt.ones(2))
    assert not hasattr(lin, "foo")


def test_stack_module_state_and_vmap_over_an_ensemble():
    # the references are the four models run one by one
    pt.manual_seed(0)
    models = [pt.nn.Sequential(pt.nn.Linear(3, 4), pt.nn.ReLU(), pt.nn.Linear(4, 2)).double()
              for _ in range(4)]
    params, buffers = stack_module_state(models)
    assert all(p.is_leaf and p.requires_grad for p in params.values())
    assert tuple(params["0.weight"].shape) == (4, 4, 3) and buffers == {}
    x = T(RNG.standard_normal((5, 3)))
    base = models[0]
    out = vmap(lambda p, b, t: functional_call(base, (p, b), (t,)),
               in_dims=(0, 0, None))(params, buffers, x)
    for i, m in enumerate(models):
        np.testing.assert_allclose(N(out[i]), N(m(x)), rtol=1e-12)
    out.sum().backward()   # gradients of the stacked leaves
    assert tuple(params["2.bias"].grad.shape) == (4, 2)
    np.testing.assert_allclose(N(params["2.bias"].grad), np.full((4, 2), 5.0))
    with pytest.raises(RuntimeError, match="Expected at least one model, got 0"):
        stack_module_state([])
    with pytest.raises(RuntimeError, match="same .requires_grad"):
        stack_module_state([pt.nn.Linear(1, 1), pt.nn.Linear(1, 1).requires_grad_(False)])
    with pytest.raises(RuntimeError, match="same training/eval mode"):
        stack_module_state([pt.nn.Linear(1, 1), pt.nn.Linear(1, 1).eval()])
    with pytest.raises(RuntimeError, match="same class"):
        stack_module_state([pt.nn.Linear(1, 1), pt.nn.Tanh()])


def test_functional_call_writes_reassigned_buffers_back_like_torch():
    torch = pytest.importorskip("torch")

    def counter(lib):
        class Counter(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("n", lib.zeros(()))

            def forward(self, x):
                self.n = self.n + 1   # reassigns the buffer
                return x * self.n
        return Counter()

    for lib, fc in ((pt, pt.func.functional_call), (torch, torch.func.functional_call)):
        m = counter(lib)
        one = {"n": lib.tensor(5.0)}
        assert float(fc(m, one, lib.ones(1))) == 6.0
        assert float(one["n"]) == 6.0 and float(m.n) == 0.0   # one dict: written back
        two = ({"n": lib.tensor(5.0)}, {})
        fc(m, two, lib.ones(1))
        assert float(two[0]["n"]) == 5.0   # several dicts: torch writes into a merged copy
