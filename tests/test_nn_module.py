"""The Module core: registration, walking (parameters / buffers / children / modules, shared
ones once), train/eval, to(), zero_grad, state_dict / load_state_dict (strict errors naming
keys and shapes), hooks, apply, requires_grad_, reprs equal to PyTorch's, and the containers
(Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict)."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn

from _reference import torch_or_skip


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.scale = nn.Parameter(pt.ones(4))
        self.register_buffer("running", pt.zeros(4))
        self.register_buffer("scratch", pt.zeros(2), persistent=False)
        self.register_buffer("steps", pt.tensor(0))
        self.note = "not registered"

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.block(x))


# ------------------------------------------------------------------- registration ----
def test_registration_by_attribute():
    b = Block()
    assert list(b._parameters) == ["scale"]
    assert list(b._modules) == ["fc", "act"]
    assert list(b._buffers) == ["running", "scratch", "steps"]
    assert b.note == "not registered" and "note" not in b._parameters
    assert b.fc is b._modules["fc"] and b.scale is b._parameters["scale"]
    b.plain = pt.ones(2)  # a plain tensor attribute is neither a parameter nor a buffer
    assert "plain" not in b._buffers and "plain" not in b._parameters
    b.running = pt.ones(4)  # re-assigning a buffer keeps it a buffer
    assert b._buffers["running"].tolist() == [1.0] * 4
    b.scale = None
    assert b.scale is None and list(b.parameters()) == list(b.fc.parameters())
    del b.act
    assert "act" not in b._modules
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'act'"):
        b.act
    b.extra = nn.Buffer(pt.ones(1), persistent=False)
    assert "extra" in b._buffers and "extra" not in b.state_dict()


def test_registration_errors():
    b = Block()
    with pytest.raises(TypeError, match=r"cannot assign Tensor as parameter 'scale'"):
        b.scale = pt.ones(4)
    with pytest.raises(TypeError, match=r"cannot assign int as child module 'fc'"):
        b.fc = 3
    with pytest.raises(TypeError, match=r"cannot assign list as buffer 'running'"):
        b.running = [1, 2]
    with pytest.raises(KeyError, match="attribute 'note' already exists"):
        b.register_buffer("note", pt.ones(1))
    with pytest.raises(KeyError, match="empty or contain"):
        b.register_parameter("a.b", nn.Parameter(pt.ones(1)))
    with pytest.raises(TypeError, match="polyten.nn.Parameter or None required"):
        b.register_parameter("w", pt.ones(1))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pt.ones(1))
    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Early()
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required '
                                                  r'"forward" method'):
        nn.Module()(1)


# ------------------------------------------------------------------------ walking ----
def test_named_members_and_order():
    n = Net()
    assert [k for k, _ in n.named_parameters()] == ["block.scale", "block.fc.weight",
                                                    "block.fc.bias", "head.weight"]
    assert [k for k, _ in n.named_buffers()] == ["block.running", "block.scratch",
                                                 "block.steps"]
    assert [k for k, _ in n.named_children()] == ["block", "head"]
    assert [k for k, _ in n.named_modules()] == ["", "block", "block.fc", "block.act", "head"]
    assert [k for k, _ in n.named_parameters(prefix="model", recurse=False)] == []
    assert [k for k, _ in n.block.named_parameters(recurse=False)] == ["scale"]
    assert [k for k, _ in n.named_parameters(prefix="m")][0] == "m.block.scale"
    assert len(list(n.parameters())) == 4 and len(list(n.buffers())) == 3
    assert list(n.children()) == [n.block, n.head]
    assert n.get_submodule("block.fc") is n.block.fc
    assert n.get_parameter("block.fc.bias") is n.block.fc.bias
    assert n.get_buffer("block.steps") is n.block.steps
    with pytest.raises(AttributeError, match="Block has no submodule 'conv'"):
        n.get_submodule("block.conv")


def test_shared_modules_and_parameters_appear_once():
    shared = nn.Linear(2, 2)
    s = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(s.modules())) == 3
    assert len(list(s.named_modules(remove_duplicate=False))) == 4
    assert len(list(s.parameters())) == 2
    assert len(list(s.children())) == 2
    tied = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    tied[1].weight = tied[0].weight
    assert [k for k, _ in tied.named_parameters()] == ["0.weight"]
    assert len(list(tied.named_parameters(remove_duplicate=False))) == 2
    assert list(tied.state_dict()) == ["0.weight", "1.weight"]  # as PyTorch


# -------------------------------------------------------------------------- modes ----
def test_train_eval_propagate_and_requires_grad():
    n = Net()
    assert n.training and n.block.fc.training
    assert n.eval() is n
    assert not any(m.training for m in n.modules())
    n.block.train()
    assert n.block.fc.training and not n.training
    with pytest.raises(ValueError, match="mode is expected to be a bool"):
        n.train("yes")
    assert n.requires_grad_(False) is n
    assert not any(p.requires_grad for p in n.parameters())
    n.head.requires_grad_()
    assert n.head.weight.requires_grad and not n.block.fc.weight.requires_grad


def test_apply_visits_children_first():
    n = Net()
    seen = []
    assert n.apply(lambda m: seen.append(type(m).__name__)) is n
    assert seen == ["Linear", "ReLU", "Block", "Linear", "Net"]

    def init_linear(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
    n.apply(init_linear)
    assert n.head.weight.detach().numpy().tolist() == [[0.5] * 4] * 2


def test_to_dtype_keeps_parameter_identity():
    n = Net()
    ids = [id(p) for p in n.parameters()]
    n(pt.ones(2, 3)).sum().backward()
    assert n.to(pt.float64) is n
    assert [id(p) for p in n.parameters()] == ids
    assert all(p.dtype == pt.float64 and isinstance(p, nn.Parameter) and p.requires_grad
               for p in n.parameters())
    assert all(p.grad.dtype == pt.float64 for p in n.parameters())
    assert n.block.running.dtype == pt.float64
    assert n.block.steps.dtype == pt.int64  # integer buffers keep their dtype
    out = n(pt.ones(2, 3, dtype=pt.float64))
    assert out.dtype == pt.float64
    n.float()
    assert n.head.weight.dtype == pt.float32
    assert n.half().head.weight.dtype == pt.float16
    with pytest.raises(TypeError, match="Module.to only accepts floating point or complex"):
        n.to(pt.int32)


def test_to_device_moves_everything(cpu2):
    n = Net()
    ids = [id(p) for p in n.parameters()]
    n.to(cpu2)
    assert [id(p) for p in n.parameters()] == ids
    assert all(p.device == cpu2 for p in n.parameters())
    assert all(b.device == cpu2 for b in n.buffers())
    assert n(pt.ones(1, 3, device=cpu2)).device == cpu2
    n.to("cpu", pt.float64)
    assert n.head.weight.device == pt.device("cpu") and n.head.weight.dtype == pt.float64


def test_zero_grad():
    n = Net()
    n(pt.ones(2, 3)).sum().backward()
    assert all(p.grad is not None for p in n.parameters())
    n.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in n.parameters())
    n.zero_grad()
    assert all(p.grad is None for p in n.parameters())


# --------------------------------------------------------------------- state dict ----
def test_state_dict_contents():
    n = Net()
    sd = n.state_dict()
    assert list(sd) == ["block.scale", "block.running", "block.steps", "block.fc.weight",
                        "block.fc.bias", "head.weight"]  # non-persistent scratch left out
    assert isinstance(sd, OrderedDict)
    assert not any(v.requires_grad for v in sd.values())
    with pt.no_grad():
        sd["head.weight"].fill_(3.0)  # shares memory with the module
    assert n.head.weight.detach().numpy().max() == 3.0
    kv = n.state_dict(keep_vars=True)
    assert kv["head.weight"] is n.head.weight
    assert list(n.state_dict(prefix="m.")) == ["m." + k for k in sd]


def test_load_state_dict_copies_values_and_keeps_identity():
    a, b = Net(), Net()
    ids = [id(p) for p in b.parameters()]
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert [id(p) for p in b.parameters()] == ids
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=k)
    # from another dtype: converted
    b.load_state_dict({k: v.to(pt.float64) if v.dtype == pt.float32 else v
                       for k, v in a.state_dict().items()})
    assert b.head.weight.dtype == pt.float32


def test_load_state_dict_strict_errors():
    n = Net()
    sd = n.state_dict()
    del sd["head.weight"]
    sd["head.bias"] = pt.zeros(2)
    with pytest.raises(RuntimeError) as exc:
        n.load_state_dict(sd)
    msg = str(exc.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "head.weight".' in msg
    assert 'Unexpected key(s) in state_dict: "head.bias".' in msg
    res = n.load_state_dict(sd, strict=False)
    assert res == (["head.weight"], ["head.bias"])
    assert res.missing_keys == ["head.weight"] and res.unexpected_keys == ["head.bias"]
    bad = n.state_dict()
    bad["block.fc.weight"] = pt.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for block.fc.weight: copying a param "
                                           r"with shape \(3, 3\) from checkpoint, the shape in "
                                           r"current model is \(4, 3\)"):
        n.load_state_dict(bad, strict=False)
    with pytest.raises(TypeError, match="load_state_dict: expected a dict of tensors"):
        n.load_state_dict([1, 2])


def test_load_state_dict_from_torch_and_assign():
    torch = torch_or_skip()
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    pm = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    pm.load_state_dict({k: pt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(pm(pt.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    new = {k: pt.zeros(v.shape) for k, v in pm.state_dict().items()}
    pm.load_state_dict(new, assign=True)
    assert isinstance(pm[0].weight, nn.Parameter) and pm[0].weight.requires_grad
    assert not pm[0].weight.detach().numpy().any()


def test_copy_and_pickle():
    n = Net()
    c = copy.deepcopy(n)
    assert c.head.weight is not n.head.weight
    np.testing.assert_array_equal(c.head.weight.detach().numpy(),
                                  n.head.weight.detach().numpy())
    with pt.no_grad():
        c.head.weight.fill_(0.0)
    assert n.head.weight.detach().numpy().any()
    p = pickle.loads(pickle.dumps(n))
    assert isinstance(p.head.weight, nn.Parameter)
    np.testing.assert_array_equal(p.block.fc.bias.detach().numpy(),
                                  n.block.fc.bias.detach().numpy())


# -------------------------------------------------------------------------- hooks ----
def test_forward_hooks_and_pre_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out) or out + 1)
    out = m(pt.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), m.bias.detach().numpy()[None] + 1,
                               rtol=1e-6)
    assert len(calls) == 1
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    np.testing.assert_allclose(m(pt.ones(1, 2)).detach().numpy(),
                               (pt.ones(1, 2) @ m.weight.T + m.bias).detach().numpy())
    order = []
    m.register_forward_hook(lambda *a: order.append("second"))
    m.register_forward_hook(lambda *a: order.append("first"), prepend=True)
    with m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {}), with_kwargs=True):
        m(pt.ones(1, 2))
    assert order == ["first", "second"]
    seen = {}
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.update(kwargs),
                            with_kwargs=True)
    m(input=pt.ones(1, 2))
    assert "input" in seen
    pre = m.register_forward_pre_hook(lambda mod, args: args[0] * 2)  # a bare value
    out2 = m(pt.ones(1, 2))
    pre.remove()
    assert out2.shape == (1, 2)


# --------------------------------------------------------------------------- repr ----
def test_repr_equals_torch():
    torch = torch_or_skip()
    pairs = [
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
         torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))),
        (nn.Sequential(OrderedDict([("fc", nn.Linear(1, 2)), ("drop", nn.Dropout(0.2)),
                                    ("inner", nn.Sequential(nn.Tanh(), nn.Softmax(dim=-1)))])),
         torch.nn.Sequential(OrderedDict([("fc", torch.nn.Linear(1, 2)),
                                          ("drop", torch.nn.Dropout(0.2)),
                                          ("inner", torch.nn.Sequential(
                                              torch.nn.Tanh(), torch.nn.Softmax(dim=-1)))]))),
        (nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)]),
         torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.ReLU(),
                              torch.nn.Linear(2, 2)])),
        (nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.Sequential(nn.ReLU())}),
         torch.nn.ModuleDict({"a": torch.nn.Linear(1, 2),
                              "b": torch.nn.Sequential(torch.nn.ReLU())})),
        (nn.Sequential(), torch.nn.Sequential()), (nn.ModuleList(), torch.nn.ModuleList()),
        (nn.ParameterList([nn.Parameter(pt.zeros(3)), pt.zeros(2, 3, dtype=pt.float64),
                           nn.Parameter(pt.tensor(1.0))]),
         torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(3)),
                                 torch.zeros(2, 3, dtype=torch.float64),
                                 torch.nn.Parameter(torch.tensor(1.0))])),
        (nn.ParameterList([pt.zeros(3)]), torch.nn.ParameterList([torch.zeros(3)])),
        (nn.ParameterDict({"a": pt.zeros(3), "b": pt.zeros(2, 2, dtype=pt.float64)}),
         torch.nn.ParameterDict({"a": torch.zeros(3),
                                 "b": torch.zeros(2, 2, dtype=torch.float64)})),
        (Net(), None),
    ]
    for ours, theirs in pairs[:-1]:
        assert repr(ours) == repr(theirs).replace("torch.", "")

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = torch.nn.Module()
            self.block.fc = torch.nn.Linear(3, 4)
            self.block.act = torch.nn.ReLU()
            self.head = torch.nn.Linear(4, 2, bias=False)
    expected = repr(TNet()).replace("Module(", "Block(", 1).replace("TNet", "Net")
    assert repr(Net()) == expected

    class WithExtra(nn.Module):
        def extra_repr(self):
            return "size=3\nmode='x'"
    assert repr(WithExtra()) == "WithExtra(\n  size=3\n  mode='x'\n)"


# --------------------------------------------------------------------- containers ----
def test_sequential_construction_and_forward():
    s = nn.Sequential(OrderedDict([("a", nn.Linear(3, 3)), ("b", nn.ReLU())]))
    assert list(s._modules) == ["a", "b"] and s.a is s[0]
    x = pt.ones(2, 3)
    np.testing.assert_array_equal(s(x).detach().numpy(), s.b(s.a(x)).detach().numpy())
    assert len(s) == 2 and list(s) == [s.a, s.b]
    e = nn.Sequential()
    assert e(x) is x


def test_sequential_indexing_and_editing():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.GELU()
    s = nn.Sequential(a, b, c)
    assert s[0] is a and s[-1] is c
    sl = s[1:]
    assert isinstance(sl, nn.Sequential) and list(sl._modules) == ["1", "2"]
    assert list(sl) == [b, c]
    with pytest.raises(IndexError, match="Sequential: index 3 is out of range"):
        s[3]
    s.append(d)
    assert s[3] is d and len(s) == 4
    s.insert(1, nn.Identity())
    assert [type(m).__name__ for m in s] == ["ReLU", "Identity", "Tanh", "Sigmoid", "GELU"]
    assert list(s._modules) == ["0", "1", "2", "3", "4"]
    del s[1]
    assert [type(m).__name__ for m in s] == ["ReLU", "Tanh", "Sigmoid", "GELU"]
    assert list(s._modules) == ["0", "1", "2", "3"]  # renumbered
    del s[1:3]
    assert list(s) == [a, d]
    s[1] = b
    assert s[1] is b
    s.extend([c])
    assert list(s) == [a, b, c]
    with pytest.raises(IndexError, match="Sequential.insert: index 9 out of range"):
        s.insert(9, d)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers += [nn.Sigmoid()]
    assert [type(m).__name__ for m in layers][-3:] == ["ReLU", "Tanh", "Sigmoid"]
    layers.insert(0, nn.GELU())
    assert isinstance(layers[0], nn.GELU) and isinstance(layers[-1], nn.Sigmoid)
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert isinstance(layers[0], nn.Linear) and list(layers._modules)[0] == "0"
    layers[0] = nn.Identity()
    assert isinstance(layers[0], nn.Identity)
    assert len(layers + nn.ModuleList([nn.ReLU()])) == len(layers) + 1
    with pytest.raises(IndexError, match="ModuleList: index 10 is out of range"):
        layers[10]
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(nn.ReLU())
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        layers(1)


def test_module_dict():
    d = nn.ModuleDict({"fc": nn.Linear(2, 2), "act": nn.ReLU()})
    assert list(d.keys()) == ["fc", "act"] and "fc" in d and len(d) == 2
    assert [k for k, _ in d.named_parameters()] == ["fc.weight", "fc.bias"]
    d.update({"out": nn.Linear(2, 1)})
    d["act"] = nn.Tanh()
    assert isinstance(d["act"], nn.Tanh) and list(d) == ["fc", "act", "out"]
    assert isinstance(d.pop("out"), nn.Linear) and "out" not in d
    del d["act"]
    assert list(d.values()) == [d["fc"]]
    d.clear()
    assert len(d) == 0


def test_parameter_list_and_dict():
    pl = nn.ParameterList([pt.ones(2), nn.Parameter(pt.zeros(3))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(pl) == 2
    pl.append(pt.ones(1))
    assert len(list(pl.parameters())) == 3
    assert [k for k, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert isinstance(pl[1:], nn.ParameterList) and len(pl[1:]) == 2
    pl[0] = pt.full((2,), 5.0)
    assert pl[0].tolist() == [5.0, 5.0]

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = nn.ParameterList([pt.ones(2) for _ in range(2)])
            self.pd = nn.ParameterDict({"w": pt.ones(3)})
    h = Holder()
    assert [k for k, _ in h.named_parameters()] == ["ps.0", "ps.1", "pd.w"]
    assert list(h.state_dict()) == ["ps.0", "ps.1", "pd.w"]
    pd = nn.ParameterDict({"a": pt.ones(1)})
    pd["b"] = pt.zeros(2)
    pd.update({"c": nn.Parameter(pt.ones(3))})
    assert list(pd.keys()) == ["a", "b", "c"] and "b" in pd
    assert all(isinstance(v, nn.Parameter) for v in pd.values())
    del pd["a"]
    assert len(pd) == 2


def test_parameter_basics():
    p = nn.Parameter(pt.ones(2, 3))
    assert isinstance(p, pt.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(pt.ones(2), requires_grad=False)
    assert not q.requires_grad
    with pytest.raises(RuntimeError, match="only floating point and complex tensors can "
                                           "require gradients"):
        nn.Parameter(pt.tensor([1, 2]))
    with pytest.raises(TypeError, match="Parameter: expected a tensor"):
        nn.Parameter([1.0])
    x = pt.ones(2, 3)
    shared = nn.Parameter(x)
    with pt.no_grad():
        shared.fill_(4.0)
    assert x.tolist() == [[4.0] * 3] * 2  # shares the tensor's memory


def test_parameters_follow_named_parameters_order_with_shared_modules():
    """parameters() (a fast path without names) visits modules and parameters in exactly
    named_parameters()'s order, each shared module and parameter once, as PyTorch."""
    shared = nn.Linear(3, 3)
    tied = nn.Linear(3, 3)
    head = nn.Linear(3, 3)
    head.weight = tied.weight  # a parameter shared between two modules
    m = nn.Sequential(nn.Linear(2, 3), nn.Sequential(shared, nn.ReLU(), tied), shared,
                      nn.Sequential(nn.Sequential(shared), head), nn.Linear(3, 1))
    names = [n for n, _ in m.named_parameters()]
    assert [id(p) for p in m.parameters()] == [id(p) for _, p in m.named_parameters()]
    assert len(names) == len(set(names)) == 9
    assert [id(x) for x in m._module_list()] == [id(x) for x in m.modules()]
    assert [id(p) for p in m.parameters(recurse=False)] == []
    assert list(m[0].parameters(recurse=False)) == [m[0].weight, m[0].bias]
