"""Module backward hooks (full, pre, deprecated) and state-dict hooks / extra state, each
checked against PyTorch on the same module structure with copied weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn


def _torch():
    return pytest.importorskip("torch")


def _np(t):
    return None if t is None else np.asarray(t.detach().cpu().numpy(), dtype=np.float64)


def _copy_weights(pmod, tmod):
    torch = _torch()
    with torch.no_grad():
        for (_, pp), (_, tp) in zip(pmod.named_parameters(), tmod.named_parameters()):
            tp.copy_(torch.from_numpy(np.asarray(pp.detach().numpy())))


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
        else:
            np.testing.assert_allclose(_np(x), _np(y), rtol=1e-10, atol=1e-12)


def _recorders(lib, mods, log):
    for name, m in mods:
        m.register_full_backward_pre_hook(
            lambda mod, go, n=name: log.append(("pre", n, go)))
        m.register_full_backward_hook(
            lambda mod, gi, go, n=name: log.append(("full", n, gi, go)))


def _check_logs(plog, tlog):
    assert [e[:2] for e in plog] == [e[:2] for e in tlog]
    for pe, te in zip(plog, tlog):
        for pg, tg in zip(pe[2:], te[2:]):
            _same(pg, tg)


def _pair(requires_grad=True):
    torch = _torch()
    pseq = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    tseq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                               torch.nn.Linear(4, 2)).double()
    _copy_weights(pseq, tseq)
    x = np.random.default_rng(0).standard_normal((5, 3))
    px = pt.tensor(x, requires_grad=requires_grad)
    tx = torch.tensor(x, requires_grad=requires_grad)
    return pseq, tseq, px, tx


@pytest.mark.parametrize("requires_grad", [True, False])
def test_nested_full_and_pre_hooks_match_torch(requires_grad):
    pseq, tseq, px, tx = _pair(requires_grad)
    plog, tlog = [], []
    _recorders(pt, [("seq", pseq), ("0", pseq[0]), ("1", pseq[1]), ("2", pseq[2])], plog)
    _recorders(None, [("seq", tseq), ("0", tseq[0]), ("1", tseq[1]), ("2", tseq[2])], tlog)
    with warnings.catch_warnings(record=True) as pw:
        warnings.simplefilter("always")
        (pseq(px) ** 2).sum().backward()
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        (tseq(tx) ** 2).sum().backward()
    _check_logs(plog, tlog)
    # each hook fired once; with no input requiring grad the outer full hook fires at the
    # outputs, with PyTorch's warning
    assert len(plog) == 8
    fired = [str(w.message) for w in pw if "Full backward hook is firing" in str(w.message)]
    assert len(fired) == len([w for w in tw if "Full backward hook is firing"
                              in str(w.message)])
    for (_, pp), (_, tp) in zip(pseq.named_parameters(), tseq.named_parameters()):
        _same([pp.grad], [tp.grad])


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_grad_cam_on_a_conv_layer():
    torch = _torch()
    rng = np.random.default_rng(1)
    pm = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                       nn.Linear(3 * 5 * 5, 4)).double()
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(),
                             torch.nn.Flatten(), torch.nn.Linear(75, 4)).double()
    _copy_weights(pm, tm)
    x = rng.standard_normal((2, 2, 5, 5))

    def cam(model, inp):
        store = {}
        conv = model[0]
        conv.register_forward_hook(lambda m, a, out: store.__setitem__("act", out))
        conv.register_full_backward_hook(
            lambda m, gi, go: store.__setitem__("grad", go[0]))
        logits = model(inp)
        logits[:, 2].sum().backward()
        weights = store["grad"].mean(dim=(2, 3), keepdim=True)
        return (weights * store["act"]).sum(dim=1).detach(), store["grad"]

    pcam, pgrad = cam(pm, pt.tensor(x))
    tcam, tgrad = cam(tm, torch.tensor(x))
    _same([pcam, pgrad], [tcam, tgrad])


def test_replacement_gradients_and_remove():
    torch = _torch()
    pseq, tseq, px, tx = _pair()
    ph = [pseq[0].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,)),
          pseq[2].register_full_backward_pre_hook(lambda m, go: (go[0] * -2,))]
    th = [tseq[0].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,)),
          tseq[2].register_full_backward_pre_hook(lambda m, go: (go[0] * -2,))]
    pseq(px).sum().backward()
    tseq(tx).sum().backward()
    _same([px.grad, pseq[0].weight.grad, pseq[2].weight.grad],
          [tx.grad, tseq[0].weight.grad, tseq[2].weight.grad])
    for h in ph + th:
        h.remove()
    px.grad = None
    tx.grad = None
    pseq(px).sum().backward()
    tseq(tx).sum().backward()
    _same([px.grad], [tx.grad])
    # no hooks left: the module's output is the op's result again, not an identity node
    assert pseq[0](px).grad_fn.name() != "BackwardHookFunctionBackward"
    del torch


class _Multi:
    """forward(a, s, b) -> (a * s, b * 2, 3): a non-tensor input and output, an input that
    does not require grad, an output that gets no gradient."""

    @staticmethod
    def build(lib):
        base = lib.nn.Module

        class M(base):
            def forward(self, a, s, b):
                return a * s, b * 2, 3
        return M()


def test_multi_io_entries_match_torch():
    torch = _torch()
    plog, tlog = [], []
    pm, tm = _Multi.build(pt), _Multi.build(torch)
    _recorders(pt, [("m", pm)], plog)
    _recorders(None, [("m", tm)], tlog)
    pa = pt.ones(2, dtype=pt.float64, requires_grad=True)
    ta = torch.ones(2, dtype=torch.float64, requires_grad=True)
    pm(pa, 2.0, pt.ones(2, dtype=pt.float64))[0].sum().backward()
    tm(ta, 2.0, torch.ones(2, dtype=torch.float64))[0].sum().backward()
    _check_logs(plog, tlog)
    # grad_input: (2, None, zeros) -- PyTorch materialises the unused input's gradient
    assert plog[1][2][1] is None and plog[1][2][2] is not None


def test_called_twice_fires_twice_and_prepend_order():
    calls = []
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: calls.append("a"))
    lin.register_full_backward_hook(lambda m, gi, go: calls.append("b"), prepend=True)
    lin.register_full_backward_pre_hook(lambda m, go: calls.append("pa"))
    lin.register_full_backward_pre_hook(lambda m, go: calls.append("pb"), prepend=True)
    x = pt.ones(1, 2, requires_grad=True)
    (lin(x) + lin(x)).sum().backward()
    assert calls == ["pb", "pa", "b", "a"] * 2


def test_no_hooks_under_no_grad_or_without_grad():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda *a: pytest.fail("fired"))
    with pt.no_grad():
        y = lin(pt.ones(1, 2, requires_grad=True))
    assert y.grad_fn is None
    lin.requires_grad_(False)
    assert not lin(pt.ones(1, 2)).requires_grad


def test_error_paths_match_torch():
    torch = _torch()
    for lib in (pt, torch):
        m = lib.nn.Linear(2, 2)
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
        with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but "
                                                "expected 1"):
            m(lib.ones(1, 2, requires_grad=True)).sum().backward()
        m = lib.nn.Linear(2, 2)
        m.register_full_backward_pre_hook(lambda mod, go: (go[0], go[0]))
        with pytest.raises(RuntimeError, match="invalid number of grad_output, got 2"):
            m(lib.ones(1, 2, requires_grad=True)).sum().backward()
        m = lib.nn.Linear(2, 2)
        m.register_full_backward_hook(lambda mod, gi, go: (go[0],))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            with pytest.raises(RuntimeError, match="should always return None"):
                m(lib.ones(1, 2)).sum().backward()
        m = lib.nn.Linear(2, 2)
        m.register_backward_hook(lambda *a: None)
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks"):
            m.register_full_backward_hook(lambda *a: None)

        class D(lib.nn.Module):
            def forward(self, x):
                return {"a": x * 2}
        d = D()
        d.register_full_backward_hook(lambda *a: pytest.fail("fired"))
        with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple"):
            out = d(lib.ones(2, requires_grad=True))
        out["a"].sum().backward()
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: (pt.ones(3),))
    with pytest.raises(RuntimeError, match=r"full backward hook of Linear replaced a gradient "
                                           r"of shape \(1, 2\)"):
        lin(pt.ones(1, 2, requires_grad=True)).sum().backward()


@pytest.mark.filterwarnings("ignore:Using a non-full backward hook")
def test_deprecated_backward_hook_matches_torch_on_a_one_op_module():
    torch = _torch()
    got = {}
    x = np.array([[-1.0, 2.0, 0.5]])
    for lib, key in ((pt, "pt"), (torch, "torch")):
        m = lib.nn.Tanh()
        m.register_backward_hook(lambda mod, gi, go, k=key: got.__setitem__(k, (gi, go)))
        xin = (pt.tensor(x, requires_grad=True) if lib is pt
               else torch.tensor(x, requires_grad=True))
        (m(xin) * 3).sum().backward()
    _same(got["pt"][0], got["torch"][0])
    _same(got["pt"][1], got["torch"][1])
    # a forward of several nodes: PyTorch's FutureWarning
    lin = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    lin.register_backward_hook(lambda *a: None)
    with pytest.warns(FutureWarning, match="multiple autograd Nodes"):
        lin(pt.ones(1, 3, requires_grad=True))
    lin = nn.Tanh()
    lin.register_backward_hook(lambda mod, gi, go: gi)
    with pytest.raises(RuntimeError, match="register_full_backward_hook"):
        lin(pt.ones(3, requires_grad=True)).sum().backward()


# ------------------------------------------------------------------- state-dict hooks -----
def _trees():
    torch = _torch()

    def build(lib):
        class Inner(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.nn.Linear(2, 2)
                self.count = 0

            def get_extra_state(self):
                return {"count": self.count}

            def set_extra_state(self, state):
                self.count = state["count"]
        outer = lib.nn.Sequential(Inner(), lib.nn.Linear(2, 1))
        return outer
    return build(pt), build(torch)


def _record_sd_hooks(model, log):
    for name, m in model.named_modules():
        m.register_state_dict_pre_hook(
            lambda mod, prefix, keep_vars, n=name: log.append(("pre", n, prefix, keep_vars)))
        m.register_state_dict_post_hook(
            lambda mod, sd, prefix, meta, n=name: log.append(("post", n, prefix,
                                                             list(sd), dict(meta))))
        m.register_load_state_dict_pre_hook(
            lambda mod, sd, prefix, meta, strict, missing, unexpected, errors, n=name:
            log.append(("lpre", n, prefix, sorted(sd), strict)))
        m.register_load_state_dict_post_hook(
            lambda mod, keys, n=name: log.append(("lpost", n, list(keys.missing_keys),
                                                  list(keys.unexpected_keys))))


def test_state_dict_hooks_order_and_arguments_match_torch():
    pm, tm = _trees()
    plog, tlog = [], []
    _record_sd_hooks(pm, plog)
    _record_sd_hooks(tm, tlog)
    psd = pm.state_dict(keep_vars=True)
    tsd = tm.state_dict(keep_vars=True)
    assert list(psd) == list(tsd)
    assert psd["0._extra_state"] == tsd["0._extra_state"] == {"count": 0}
    psd["0._extra_state"] = {"count": 7}
    del psd["1.bias"]
    tsd["0._extra_state"] = {"count": 7}
    del tsd["1.bias"]
    pres = pm.load_state_dict(psd, strict=False)
    tres = tm.load_state_dict(tsd, strict=False)
    assert plog == tlog
    assert pres == tres and pres.missing_keys == ["1.bias"]
    assert pm[0].count == tm[0].count == 7


def test_state_dict_post_hook_edits_and_load_pre_hook_renames():
    torch = _torch()
    for lib in (pt, torch):
        m = lib.nn.Linear(2, 2)

        def post(mod, sd, prefix, meta):
            sd[prefix + "note"] = "added"
        m.register_state_dict_post_hook(post)
        assert m.state_dict()["note"] == "added"
        m.register_state_dict_post_hook(lambda *a: {})
        with pytest.raises(RuntimeError, match="must return None"):
            m.state_dict()

        outer = lib.nn.Sequential(lib.nn.Linear(2, 2))

        def rename(mod, sd, prefix, *rest):
            if prefix + "old_weight" in sd:
                sd[prefix + "weight"] = sd.pop(prefix + "old_weight")
        outer[0].register_load_state_dict_pre_hook(rename)
        w = lib.ones(2, 2)
        outer.load_state_dict({"0.old_weight": w, "0.bias": lib.zeros(2)})
        assert float(outer[0].weight.detach().sum()) == 4.0


def test_load_post_hook_clears_keys_and_strict_errors():
    torch = _torch()
    for lib in (pt, torch):
        m = lib.nn.Linear(2, 2)
        h = m.register_load_state_dict_post_hook(
            lambda mod, keys: (keys.missing_keys.clear(), keys.unexpected_keys.clear()) and None)
        res = m.load_state_dict({"weight": lib.ones(2, 2), "junk": lib.ones(1)})
        assert res.missing_keys == [] and res.unexpected_keys == []
        assert float(m.weight.sum()) == 4.0
        h.remove()
        m.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.append("x"))
        with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias", "x"'):
            m.load_state_dict({"weight": lib.ones(2, 2)})
        m2 = lib.nn.Linear(2, 2)
        m2.register_load_state_dict_post_hook(lambda mod, keys: 1)
        with pytest.raises(AssertionError, match="not expected to return new values"):
            m2.load_state_dict(m2.state_dict())


def test_extra_state_errors_match_torch():
    pm, tm = _trees()
    for outer in (pm, tm):
        sd = outer.state_dict()
        sd["1._extra_state"] = 3  # the plain Linear has no set_extra_state
        with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: '
                                               '"1._extra_state"'):
            outer.load_state_dict(sd)
        del sd["0._extra_state"]
        del sd["1._extra_state"]
        with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: '
                                               '"0._extra_state"'):
            outer.load_state_dict(sd)
    with pytest.raises(RuntimeError, match="no extra state"):
        nn.Linear(2, 2).get_extra_state()
