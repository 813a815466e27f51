"""Activation checkpointing (``polyten.utils.checkpoint``) and
``Tensor.register_post_accumulate_grad_hook``: gradients against the same model without
checkpointing and against torch, what the forward keeps alive, RNG replay, and the errors."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest

import polyten as pt
from polyten.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential

F = pt.nn.functional


def _mlp(seed=0, p=0.3):
    pt.manual_seed(seed)
    return pt.nn.Sequential(pt.nn.Linear(6, 16), pt.nn.Tanh(), pt.nn.Dropout(p),
                            pt.nn.Linear(16, 16), pt.nn.ReLU(), pt.nn.Dropout(p),
                            pt.nn.Linear(16, 3))


def _grads(model, x=None):
    out = [p.grad.detach().numpy().copy() for p in model.parameters()]
    if x is not None:
        out.append(x.grad.detach().numpy().copy())
    return out


def _close(a, b, tol=1e-6):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


@pytest.mark.parametrize("reentrant", [False, True])
def test_mlp_with_dropout_gradients_equal_the_uncheckpointed_model(reentrant):
    model = _mlp()
    x = pt.randn(8, 6, requires_grad=True)
    pt.manual_seed(123)
    ref = model(x)
    ref.square().sum().backward()
    want = _grads(model, x)
    model.zero_grad()
    x.grad = None
    pt.manual_seed(123)
    out = checkpoint(model, x, use_reentrant=reentrant)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())   # same dropout mask
    assert out.grad_fn.name() == "CheckpointBackward0"
    pt.manual_seed(999)  # backward must replay the forward's generator state, not this one
    out.square().sum().backward()
    _close(_grads(model, x), want)


def test_generators_are_restored_after_the_recomputation():
    model = _mlp()
    x = pt.randn(4, 6)
    pt.manual_seed(5)
    out = checkpoint(model, x, use_reentrant=False)
    state = pt.get_rng_state()
    out.sum().backward()   # recomputation draws the dropout masks again
    assert pt.get_rng_state().tolist() == state.tolist()


def test_preserve_rng_state_false_draws_a_new_mask():
    model = _mlp(p=0.5)
    x = pt.randn(64, 6)
    pt.manual_seed(7)
    model(x).sum().backward()
    want = _grads(model)
    model.zero_grad()
    pt.manual_seed(7)
    out = checkpoint(model, x, use_reentrant=False, preserve_rng_state=False)
    out.sum().backward()
    got = _grads(model)
    assert any(not np.allclose(a, b) for a, b in zip(got, want))


def _tensor_weights(torch, model):
    return [torch.tensor(p.detach().numpy().astype(np.float64)) for p in model.parameters()]


def test_mlp_and_conv_block_gradients_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as tcheckpoint
    pt.manual_seed(1)
    conv = pt.nn.Sequential(pt.nn.Conv2d(2, 4, 3, padding=1), pt.nn.ReLU(),
                            pt.nn.Conv2d(4, 3, 3, stride=2), pt.nn.Tanh()).double()
    mlp = pt.nn.Sequential(pt.nn.Linear(27, 10), pt.nn.GELU(), pt.nn.Linear(10, 2)).double()
    tconv = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 3, 3, stride=2), torch.nn.Tanh()).double()
    tmlp = torch.nn.Sequential(torch.nn.Linear(27, 10), torch.nn.GELU(),
                               torch.nn.Linear(10, 2)).double()
    with torch.no_grad():
        for src, dst in ((conv, tconv), (mlp, tmlp)):
            for p, q in zip(src.parameters(), dst.parameters()):
                q.copy_(torch.tensor(p.detach().numpy()))
    xs = np.random.default_rng(0).standard_normal((2, 2, 7, 7))
    x = pt.tensor(xs, requires_grad=True)
    tx = torch.tensor(xs, requires_grad=True)

    h = checkpoint(conv, x, use_reentrant=False)
    y = checkpoint(lambda t: mlp(t.flatten(1)), h, use_reentrant=False)
    (y ** 2).sum().backward()
    th = tcheckpoint(tconv, tx, use_reentrant=False)
    ty = tcheckpoint(lambda t: tmlp(t.flatten(1)), th, use_reentrant=False)
    (ty ** 2).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
    got = _grads(conv) + _grads(mlp) + [x.grad.detach().numpy()]
    want = [p.grad.numpy() for p in list(tconv.parameters()) + list(tmlp.parameters())] + \
        [tx.grad.detach().numpy()]
    _close(got, want, 1e-10)


def _saved_in_graph(t):
    """Tensors and native arrays that the graph behind ``t`` keeps for its backward."""
    seen, stack, count = set(), [t.grad_fn], 0
    while stack:
        n = stack.pop()
        if n is None or n in seen:
            continue
        seen.add(n)
        count += len([i for i in (getattr(n, "inputs", None) or ()) if hasattr(i, "_data")])
        count += len([o for o in (getattr(n, "outputs", None) or ()) if o is not None])
        stack.extend(m for m, _ in getattr(n, "next_functions", ()))
    return count, len(seen)


def test_forward_keeps_no_intermediates():
    pt.manual_seed(0)
    layers = [pt.nn.Linear(32, 32) for _ in range(4)]
    kept = []

    def block(x):
        for lin in layers:
            x = pt.tanh(lin(x))
            kept.append(weakref.ref(x._data))   # the activations backward would read
        return x

    x = pt.randn(16, 32, requires_grad=True)
    plain = block(x)
    saved_plain, nodes_plain = _saved_in_graph(plain)
    gc.collect()
    alive_plain = sum(r() is not None for r in kept)
    kept.clear()
    out = checkpoint(block, x, use_reentrant=False)
    saved_ckpt, nodes_ckpt = _saved_in_graph(out)
    gc.collect()
    alive_ckpt = sum(r() is not None for r in kept[:-1])   # the last one is the output
    # plain: every linear keeps its input and every tanh its output
    assert saved_plain >= 8 and alive_plain == 4
    # checkpointed: one node whose inputs are x and the 8 parameters, nothing saved
    assert (saved_ckpt, alive_ckpt) == (0, 0)
    assert nodes_ckpt == 1 + 1 + 8   # CheckpointBackward0 + x's and the parameters' sinks
    out.sum().backward()
    assert x.grad is not None and all(lin.weight.grad is not None for lin in layers)


def test_checkpoint_sequential_matches_plain_and_checkpoints_all_but_the_last_segment():
    pt.manual_seed(3)
    model = pt.nn.Sequential(*[pt.nn.Sequential(pt.nn.Linear(8, 8), pt.nn.Tanh())
                               for _ in range(6)])
    x = pt.randn(5, 8, requires_grad=True)
    model(x).sum().backward()
    want = _grads(model, x)
    model.zero_grad()
    x.grad = None
    out = checkpoint_sequential(model, 3, x, use_reentrant=False)
    # the last segment (2 blocks, 4 ops) is recorded; it ends in a checkpoint node
    n = out.grad_fn
    names = []
    while n is not None and n.name() != "CheckpointBackward0":
        names.append(n.name())
        n = next(m for m, _ in n.next_functions if m is not None)
    assert n is not None and len(names) == 4
    out.sum().backward()
    _close(_grads(model, x), want)
    with pytest.raises(ValueError, match="checkpoint_sequential: segments must be between 1"):
        checkpoint_sequential(model, 7, x, use_reentrant=False)
    with pytest.raises(TypeError, match="segments must be an int"):
        checkpoint_sequential(model, 2.0, x, use_reentrant=False)
    with pytest.raises(ValueError, match="unexpected keyword arguments: foo"):
        checkpoint_sequential(model, 2, x, use_reentrant=False, foo=1)


def test_autograd_grad_and_backward_inputs_reach_closure_parameters():
    pt.manual_seed(0)
    lin = pt.nn.Linear(4, 4)
    x = pt.randn(3, 4, requires_grad=True)
    for reentrant in (False, True):
        out = checkpoint(lambda t: pt.sin(lin(t)) * t, x, use_reentrant=reentrant)
        gx, gw = pt.autograd.grad(out.sum(), [x, lin.weight])
        rx, rw = pt.autograd.grad((pt.sin(lin(x)) * x).sum(), [x, lin.weight])
        _close([gx.numpy(), gw.numpy()], [rx.numpy(), rw.numpy()])
        assert lin.weight.grad is None and x.grad is None   # grad() accumulates nothing
    out = checkpoint(lambda t: lin(t), x, use_reentrant=False)
    out.sum().backward(inputs=[lin.bias])
    np.testing.assert_allclose(lin.bias.grad.detach().numpy(), np.full(4, 3.0))
    assert lin.weight.grad is None and x.grad is None


def test_closure_parameters_get_gradients_without_tensor_inputs_requiring_grad():
    pt.manual_seed(0)
    lin = pt.nn.Linear(3, 2)
    x = pt.randn(4, 3)
    out = checkpoint(lin, x, use_reentrant=False)
    out.sum().backward()
    np.testing.assert_allclose(lin.bias.grad.detach().numpy(), [4.0, 4.0])
    # use_reentrant=True follows torch: no input requires grad -> a warning and no graph
    with pytest.warns(UserWarning, match="none of the inputs have requires_grad=True"):
        out = checkpoint(lin, x, use_reentrant=True)
    assert not out.requires_grad


def test_nested_checkpoints_and_non_tensor_args_kwargs_and_nested_outputs():
    pt.manual_seed(0)
    w = pt.randn(5, 5, requires_grad=True)
    x = pt.randn(2, 5, requires_grad=True)

    def inner(t, scale):
        return pt.tanh(t @ w) * scale

    def outer(t, scale, *, shift):
        h = checkpoint(inner, t, scale, use_reentrant=False)
        return {"a": (h + shift, "tag"), "b": [h.sum(), pt.ones(2)], "c": 3}

    def plain(t, scale, shift):
        h = pt.tanh(t @ w) * scale
        return (h + shift).square().sum() + h.sum() * 2

    res = checkpoint(outer, x, 2.0, shift=0.5, use_reentrant=False)
    assert res["a"][1] == "tag" and res["c"] == 3 and not res["b"][1].requires_grad
    ((res["a"][0]).square().sum() + res["b"][0] * 2).backward()
    got = [w.grad.detach().numpy().copy(), x.grad.detach().numpy().copy()]
    w.grad = x.grad = None
    plain(x, 2.0, 0.5).backward()
    _close(got, [w.grad.detach().numpy(), x.grad.detach().numpy()])


def test_only_some_outputs_used_and_outputs_that_alias_inputs():
    x = pt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b, same = checkpoint(lambda t: (t * 2, t ** 2, t), x, use_reentrant=False)
    (b.sum() + same.sum() * 10).backward()   # a gets no gradient
    np.testing.assert_allclose(x.grad.detach().numpy(), 2 * np.array([1.0, 2.0, 3.0]) + 10)


def test_double_backward_through_a_checkpoint():
    x = pt.tensor([0.3, -1.2, 2.0], dtype=pt.float64, requires_grad=True)
    y = checkpoint(lambda t: (t ** 3).sin(), x, use_reentrant=False)
    (g,) = pt.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = pt.autograd.grad(g.sum(), x)
    xs = x.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy(), np.cos(xs ** 3) * 3 * xs ** 2, rtol=1e-12)
    want = -np.sin(xs ** 3) * 9 * xs ** 4 + np.cos(xs ** 3) * 6 * xs
    np.testing.assert_allclose(gg.detach().numpy(), want, rtol=1e-12)
    assert pt.autograd.gradcheck(lambda t: checkpoint(lambda u: (u ** 3).sin() * u, t,
                                                      use_reentrant=False), (x,))


def test_hooks_on_parameters_run_once_and_retain_graph():
    w = pt.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    w.register_hook(lambda g: calls.append("hook"))
    w.register_post_accumulate_grad_hook(lambda t: calls.append("post"))
    out = checkpoint(lambda t: (t * w).sum(), pt.ones(2), use_reentrant=False)
    out.backward(retain_graph=True)
    out.backward()
    assert calls == ["hook", "post", "hook", "post"]
    np.testing.assert_allclose(w.grad.detach().numpy(), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()


def test_use_reentrant_none_warns_and_reentrant_restrictions():
    x = pt.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        out = checkpoint(pt.sin, x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), np.cos(x.detach().numpy()), rtol=1e-6)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        checkpoint_sequential([pt.sin, pt.cos], 1, x)
    with pytest.raises(ValueError, match="unexpected keyword arguments: k"):
        checkpoint(lambda t, k: t * k, x, k=2, use_reentrant=True)
    with pytest.raises(ValueError, match="context_fn or debug is only supported"):
        checkpoint(pt.sin, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(pt.sin, x, use_reentrant=False, determinism_check="strict")
    with pytest.raises(TypeError, match="checkpoint: function must be callable"):
        checkpoint(3, x, use_reentrant=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pt.no_grad():   # nothing recorded: the function just runs
            assert checkpoint(pt.sin, x, use_reentrant=False).grad_fn is None


def test_recomputation_that_differs_raises_checkpoint_error():
    x = pt.randn(4, requires_grad=True)
    state = {"n": 4}
    out = checkpoint(lambda t: t[: state["n"]] * 2, x, use_reentrant=False)
    state["n"] = 2
    with pytest.raises(CheckpointError, match=r"recomputation in backward returned"):
        out.sum().backward()
    other = pt.randn(4, requires_grad=True)
    flag = {"v": False}
    out = checkpoint(lambda t: t * (other if flag["v"] else 1.0), x, use_reentrant=False,
                     determinism_check="none")
    flag["v"] = True
    with pytest.raises(CheckpointError, match="did not use"):
        out.sum().backward()
    ops = {"f": pt.sin}
    out = checkpoint(lambda t: ops["f"](t), x, use_reentrant=False, debug=True)
    ops["f"] = pt.cos
    with pytest.raises(CheckpointError, match="other operations"):
        out.sum().backward()


def test_modifying_an_input_in_place_after_the_forward_raises():
    x = pt.randn(3)
    w = pt.randn(3, requires_grad=True)
    out = checkpoint(lambda t: t * w, x, use_reentrant=False)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="checkpoint: tensor argument 0 .* modified in place"):
        out.sum().backward()


def test_context_fn_runs_forward_and_recompute_contexts():
    import contextlib
    log = []

    @contextlib.contextmanager
    def ctx(name):
        log.append(name)
        yield

    x = pt.randn(2, requires_grad=True)
    out = checkpoint(pt.exp, x, use_reentrant=False,
                     context_fn=lambda: (ctx("forward"), ctx("recompute")))
    out.sum().backward()
    assert log == ["forward", "recompute"]


def test_complex_inputs_pass_the_gradient_through_unchanged():
    z = pt.tensor([1 + 2j, -0.5 + 1j], requires_grad=True)
    f = lambda t: (t * t.conj() + t * 3).real.sum()   # noqa: E731
    (gz,) = pt.autograd.grad(checkpoint(f, z, use_reentrant=False), z)
    (rz,) = pt.autograd.grad(f(z), z)
    np.testing.assert_allclose(gz.detach().numpy(), rz.detach().numpy())


# ------------------------------------------------------- post accumulate grad hooks --
def test_post_accumulate_grad_hook_sees_the_accumulated_grad_and_can_be_removed():
    x = pt.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.detach().numpy().copy()))
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen, [[2.0, 2.0], [5.0, 5.0]])
    pt.autograd.grad((x * 4).sum(), x)   # grad() accumulates nothing: no call
    assert len(seen) == 2
    h.remove()
    (x * 3).sum().backward()
    assert len(seen) == 2


def test_post_accumulate_grad_hook_errors_match_torch():
    torch = pytest.importorskip("torch")
    for lib, leaf in ((pt, pt.ones(2, requires_grad=True)),
                      (torch, torch.ones(2, requires_grad=True))):
        with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be "
                                               "registered on non-leaf tensors"):
            (leaf * 2).register_post_accumulate_grad_hook(print)
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that "
                                               "doesn't require gradient"):
            lib.ones(2).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="must be callable"):
        pt.ones(2, requires_grad=True).register_post_accumulate_grad_hook(3)
    x = pt.ones(2, requires_grad=True)
    x.register_post_accumulate_grad_hook(lambda t: 5)
    with pytest.raises(TypeError, match="returned a value; it must return None"):
        x.sum().backward()


def test_post_accumulate_hook_runs_only_for_accumulated_leaves():
    a = pt.ones(2, requires_grad=True)
    b = pt.ones(2, requires_grad=True)
    calls = []
    a.register_post_accumulate_grad_hook(lambda t: calls.append("a"))
    b.register_post_accumulate_grad_hook(lambda t: calls.append("b"))
    (a * b).sum().backward(inputs=[b])
    assert calls == ["b"] and a.grad is None


def test_optimizer_in_backward_matches_a_regular_training_loop_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, 8, 4))
    ys = rng.standard_normal((5, 8, 1))
    pt.manual_seed(0)
    ref = pt.nn.Sequential(pt.nn.Linear(4, 6), pt.nn.Tanh(), pt.nn.Linear(6, 1)).double()
    model = pt.nn.Sequential(pt.nn.Linear(4, 6), pt.nn.Tanh(), pt.nn.Linear(6, 1)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                                 torch.nn.Linear(6, 1)).double()
    with pt.no_grad(), torch.no_grad():
        for p, q, r in zip(ref.parameters(), model.parameters(), tmodel.parameters()):
            q.copy_(p)
            r.copy_(torch.tensor(p.detach().numpy()))
    # the pattern of torch's "How to save memory by fusing the optimizer step into the
    # backward pass" tutorial
    opts = {p: pt.optim.Adam([p], lr=0.05) for p in model.parameters()}
    topts = {p: torch.optim.Adam([p], lr=0.05) for p in tmodel.parameters()}
    hooks = []
    for table in (opts, topts):
        def step(p, table=table):
            table[p].step()
            table[p].zero_grad()
        hooks += [p.register_post_accumulate_grad_hook(step) for p in table]
    ref_opt = pt.optim.Adam(ref.parameters(), lr=0.05)
    for x, y in zip(xs, ys):
        F.mse_loss(model(pt.tensor(x)), pt.tensor(y)).backward()
        torch.nn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y)).backward()
        ref_opt.zero_grad()
        F.mse_loss(ref(pt.tensor(x)), pt.tensor(y)).backward()
        ref_opt.step()
    for p, q, r in zip(model.parameters(), ref.parameters(), tmodel.parameters()):
        assert p.grad is None   # freed by the hook
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(p.detach().numpy(), r.detach().numpy(), rtol=1e-10)
    for h in hooks:
        h.remove()


def test_checkpoint_composes_with_func_transforms():
    from polyten.func import grad, hessian, vmap
    f = lambda t: checkpoint(lambda u: (u.sin() * u ** 2).sum(), t,  # noqa: E731
                             use_reentrant=False)
    g = lambda t: (t.sin() * t ** 2).sum()  # noqa: E731
    x = pt.tensor([0.3, 0.7], dtype=pt.float64)
    _close([grad(f)(x).numpy(), hessian(f)(x).numpy()],
           [grad(g)(x).numpy(), hessian(g)(x).numpy()], 1e-12)
    xs = pt.randn(4, 2, dtype=pt.float64)
    _close([vmap(grad(f))(xs).numpy()], [vmap(grad(g))(xs).numpy()], 1e-12)
