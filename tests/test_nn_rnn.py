"""Recurrent layers: RNN (tanh/relu), LSTM (incl. proj_size), GRU and their cells.

Outputs, final states and gradients (input, h0/c0, every parameter) against PyTorch with the
same weights (float64), finite-difference gradchecks without PyTorch, PyTorch's parameter names,
shapes and initialisation, dropout between layers, reprs and errors naming the layer and shapes.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import close, copy_weights, rand, torch_or_skip


# (polyten class, torch class name, extra kwargs)
KINDS = {
    "rnn_tanh": (nn.RNN, "RNN", {}),
    "rnn_relu": (nn.RNN, "RNN", {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, "LSTM", {}),
    "lstm_proj": (nn.LSTM, "LSTM", {"proj_size": 2}),
    "gru": (nn.GRU, "GRU", {}),
}
# (num_layers, bidirectional, batch_first, batched, with h0, bias)
CONFIGS = [
    (1, False, False, True, False, True),
    (2, True, False, True, True, True),
    (2, False, True, True, True, False),
    (1, True, True, True, False, True),
    (2, True, False, False, True, True),
    (1, False, False, False, False, True),
]


def _pair(kind, layers, bidir, batch_first, bias, input_size=3, hidden=4):
    torch = torch_or_skip()
    pcls, tname, kw = KINDS[kind]
    tm = getattr(torch.nn, tname)(input_size, hidden, num_layers=layers, bias=bias,
                                  batch_first=batch_first, bidirectional=bidir, **kw).double()
    pm = pcls(input_size, hidden, num_layers=layers, bias=bias, batch_first=batch_first,
              bidirectional=bidir, dtype=pt.float64, **kw)
    copy_weights(pm, tm)
    return pm, tm


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}{}{}{}{}{}".format(
    c[0], "-bi" if c[1] else "", "-bf" if c[2] else "", "" if c[3] else "-unbatched",
    "-h0" if c[4] else "", "" if c[5] else "-nobias"))
def test_matches_torch(kind, config):
    torch = torch_or_skip()
    layers, bidir, batch_first, batched, with_h0, bias = config
    pm, tm = _pair(kind, layers, bidir, batch_first, bias)
    L, N, D = 5, 2, 2 if bidir else 1
    out_size = 2 if kind == "lstm_proj" else 4
    xs = ((N, L, 3) if batch_first else (L, N, 3)) if batched else (L, 3)
    x = rand(*xs, seed=1)
    states = []
    if with_h0:
        bshape = (N,) if batched else ()
        states.append(rand(D * layers, *bshape, out_size, seed=2))
        if kind.startswith("lstm"):
            states.append(rand(D * layers, *bshape, 4, seed=3))
    tx = torch.tensor(x, requires_grad=True)
    px = pt.tensor(x, requires_grad=True)
    tst = [torch.tensor(s, requires_grad=True) for s in states]
    pst = [pt.tensor(s, requires_grad=True) for s in states]
    is_lstm = kind.startswith("lstm")
    targ = (tuple(tst) if is_lstm else tst[0]) if states else None
    parg = (tuple(pst) if is_lstm else pst[0]) if states else None
    tout, tfin = tm(tx, targ)
    pout, pfin = pm(px, parg)
    tfin = tfin if is_lstm else (tfin,)
    pfin = pfin if is_lstm else (pfin,)
    assert tuple(pout.shape) == tuple(tout.shape)
    close(pout.detach().numpy(), tout.detach().numpy())
    for p_, t_ in zip(pfin, tfin):
        assert tuple(p_.shape) == tuple(t_.shape)
        close(p_.detach().numpy(), t_.detach().numpy())
    # one backward through the output and every final state
    gs = [rand(*tout.shape, seed=4)] + [rand(*t_.shape, seed=5 + i) for i, t_ in
                                         enumerate(tfin)]
    tloss = sum((a * torch.tensor(g)).sum() for a, g in zip((tout,) + tuple(tfin), gs))
    ploss = sum((a * pt.tensor(g)).sum() for a, g in zip((pout,) + tuple(pfin), gs))
    tloss.backward()
    ploss.backward()
    close(px.grad.numpy(), tx.grad.numpy())
    for p_, t_ in zip(pst, tst):
        close(p_.grad.numpy(), t_.grad.numpy())
    tparams = dict(tm.named_parameters())
    names = [n for n, _ in pm.named_parameters()]
    assert names == list(tparams)
    for name, p in pm.named_parameters():
        close(p.grad.numpy(), tparams[name].grad.numpy())


@pytest.mark.parametrize("kind", list(KINDS))
def test_parameter_names_shapes_and_init(kind):
    torch = torch_or_skip()
    pcls, tname, kw = KINDS[kind]
    for layers, bidir, bias in ((1, False, True), (3, True, False)):
        tm = getattr(torch.nn, tname)(5, 6, num_layers=layers, bidirectional=bidir, bias=bias,
                                      **kw)
        pm = pcls(5, 6, num_layers=layers, bidirectional=bidir, bias=bias, **kw)
        assert [(k, tuple(v.shape)) for k, v in pm.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
        assert pm._flat_weights_names == tm._flat_weights_names
        assert [[tuple(w.shape) for w in ws] for ws in pm.all_weights] == \
            [[tuple(w.shape) for w in ws] for ws in tm.all_weights]
    pt.manual_seed(0)
    pm = pcls(20, 30, num_layers=2, **kw)
    bound = 1 / math.sqrt(30)
    vals = np.concatenate([p.detach().numpy().ravel() for p in pm.parameters()])
    assert all(p.dtype == pt.float32 and p.requires_grad for p in pm.parameters())
    assert np.abs(vals).max() <= bound
    assert abs(vals.std() - bound / math.sqrt(3)) < 0.05 * bound  # U(-b, b)
    pt.manual_seed(0)
    again = pcls(20, 30, num_layers=2, **kw)
    np.testing.assert_array_equal(again.weight_hh_l1.detach().numpy(),
                                  pm.weight_hh_l1.detach().numpy())


def test_float32_default_and_batch_first_layout():
    m = nn.GRU(3, 4, batch_first=True)
    x = pt.randn(2, 5, 3)
    out, h = m(x)
    assert out.dtype == pt.float32 and tuple(out.shape) == (2, 5, 4)
    assert tuple(h.shape) == (1, 2, 4)
    # h_n is the last time step of the output (forward direction)
    close(h[0].detach().numpy(), out[:, -1].detach().numpy(), rtol=1e-6, atol=1e-7)
    m2 = nn.LSTM(3, 4, bidirectional=True)
    out, (h, c) = m2(x.transpose(0, 1))
    assert tuple(out.shape) == (5, 2, 8) and tuple(c.shape) == (2, 2, 4)
    # the reverse direction ends at time step 0
    close(h[1].detach().numpy(), out[0, :, 4:].detach().numpy(), rtol=1e-6, atol=1e-7)
    with pt.no_grad():
        out, _ = m2(x.transpose(0, 1))
    assert out.grad_fn is None


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cells_match_torch(cell):
    torch = torch_or_skip()
    pcls, tcls, kw = {"rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {}),
                      "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
                      "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
                      "gru": (nn.GRUCell, torch.nn.GRUCell, {})}[cell]
    for bias, batched, with_h in ((True, True, True), (False, True, False),
                                  (True, False, True), (True, False, False)):
        tm = tcls(3, 4, bias=bias, **kw).double()
        pm = pcls(3, 4, bias=bias, dtype=pt.float64, **kw)
        copy_weights(pm, tm)
        assert repr(pm) == repr(tm)
        lead = (2,) if batched else ()
        x = rand(*lead, 3, seed=1)
        tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
        hs = [rand(*lead, 4, seed=2 + i) for i in range(2 if cell == "lstm" else 1)]
        ths = [torch.tensor(h, requires_grad=True) for h in hs]
        phs = [pt.tensor(h, requires_grad=True) for h in hs]
        if cell == "lstm":
            targ, parg = (tuple(ths), tuple(phs)) if with_h else (None, None)
        else:
            targ, parg = (ths[0], phs[0]) if with_h else (None, None)
        tout, pout = tm(tx, targ), pm(px, parg)
        touts = tout if isinstance(tout, tuple) else (tout,)
        pouts = pout if isinstance(pout, tuple) else (pout,)
        for p_, t_ in zip(pouts, touts):
            assert tuple(p_.shape) == tuple(t_.shape)
            close(p_.detach().numpy(), t_.detach().numpy())
        gs = [rand(*t_.shape, seed=9 + i) for i, t_ in enumerate(touts)]
        sum((a * torch.tensor(g)).sum() for a, g in zip(touts, gs)).backward()
        sum((a * pt.tensor(g)).sum() for a, g in zip(pouts, gs)).backward()
        close(px.grad.numpy(), tx.grad.numpy())
        if with_h:
            for p_, t_ in zip(phs, ths):
                close(p_.grad.numpy(), t_.grad.numpy())
        tp = dict(tm.named_parameters())
        for name, p in pm.named_parameters():
            close(p.grad.numpy(), tp[name].grad.numpy())


# ------------------------------------------------------------------------ gradcheck -----
def _with_params(module, names, fn):
    """``fn(*inputs)`` evaluated with the module's parameters ``names`` replaced by the
    trailing inputs (so gradcheck can perturb them)."""
    def call(*args):
        n = len(names)
        saved = {k: module._parameters[k] for k in names}
        try:
            for k, v in zip(names, args[len(args) - n:]):
                module._parameters[k] = v
            return fn(*args[:len(args) - n])
        finally:
            module._parameters.update(saved)
    return call


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm_proj", "gru"])
def test_gradcheck(kind):
    pcls, _, kw = KINDS[kind]
    pt.manual_seed(0)
    m = pcls(2, 3, num_layers=2, bidirectional=True, dtype=pt.float64, **kw)
    is_lstm = kind.startswith("lstm")
    out_size = 2 if kind == "lstm_proj" else 3
    x = pt.tensor(rand(3, 1, 2, seed=1), requires_grad=True)
    h0 = pt.tensor(rand(4, 1, out_size, seed=2), requires_grad=True)
    c0 = pt.tensor(rand(4, 1, 3, seed=3), requires_grad=True)
    names = ["weight_ih_l0", "weight_hh_l1_reverse", "bias_hh_l0"] + (
        ["weight_hr_l1"] if kind == "lstm_proj" else [])
    params = [_leaf(m._parameters[n]) for n in names]
    if is_lstm:
        def run(x, h0, c0):
            out, (h, c) = m(x, (h0, c0))
            return out, h, c
        assert gradcheck(_with_params(m, names, run), (x, h0, c0, *params))
    else:
        def run(x, h0):
            out, h = m(x, h0)
            return out, h
        assert gradcheck(_with_params(m, names, run), (x, h0, *params))


def test_gradcheck_cells_and_gradgrad():
    pt.manual_seed(1)
    x = pt.tensor(rand(2, 2, seed=1), requires_grad=True)
    h = pt.tensor(rand(2, 3, seed=2), requires_grad=True)
    c = pt.tensor(rand(2, 3, seed=3), requires_grad=True)
    lstm = nn.LSTMCell(2, 3, dtype=pt.float64)
    gru = nn.GRUCell(2, 3, dtype=pt.float64)
    rnn = nn.RNNCell(2, 3, nonlinearity="tanh", dtype=pt.float64)
    assert gradcheck(lambda a, b, d: lstm(a, (b, d)), (x, h, c))
    assert gradcheck(lambda a, b, w: _with_params(gru, ["weight_hh"], gru)(a, b, w),
                     (x, h, _leaf(gru.weight_hh)))
    assert gradcheck(lambda a, b: rnn(a, b), (x, h))
    # the recurrence is made of polyten ops: second derivatives work too
    small = nn.GRU(2, 2, dtype=pt.float64)
    xs = pt.tensor(rand(2, 1, 2, seed=4), requires_grad=True)
    assert gradgradcheck(lambda a: small(a)[0], (xs,))


@pytest.mark.parametrize("kind", ["lstm_proj", "gru", "rnn_relu"])
def test_double_backward_matches_torch(kind):
    # create_graph=True differentiates a recorded recomputation of the fused layer
    torch = torch_or_skip()
    pm, tm = _pair(kind, 1, True, False, True, input_size=2, hidden=3)
    x = rand(3, 2, 2, seed=1)
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad((tm(tx)[0] ** 2).sum(), tx, create_graph=True)
    (pg,) = pt.autograd.grad((pm(px)[0] ** 2).sum(), px, create_graph=True)
    close(pg.detach().numpy(), tg.detach().numpy())
    (tg ** 2).sum().backward()
    (pg ** 2).sum().backward()
    close(px.grad.numpy(), tx.grad.numpy())
    tp = dict(tm.named_parameters())
    for name, p in pm.named_parameters():
        close(p.grad.numpy(), tp[name].grad.numpy())


# ---------------------------------------------------------------------------- dropout -----
def test_dropout_between_layers():
    pt.manual_seed(0)
    m = nn.RNN(3, 4, num_layers=2, dropout=1.0, dtype=pt.float64)
    x = pt.tensor(rand(5, 2, 3, seed=1))
    out, h = m(x)
    # layer 2 sees only zeros: its output is the recurrence of its own biases
    ref = nn.RNN(4, 4, dtype=pt.float64)
    ref.load_state_dict({k[:-1] + "0": v for k, v in m.state_dict().items() if k.endswith("1")})
    rout, rh = ref(pt.zeros(5, 2, 4, dtype=pt.float64))
    close(out.detach().numpy(), rout.detach().numpy(), rtol=1e-12)
    m.eval()  # no dropout in evaluation mode
    out_eval, _ = m(x)
    m2 = nn.RNN(3, 4, num_layers=2, dtype=pt.float64)
    m2.load_state_dict(m.state_dict())
    close(out_eval.detach().numpy(), m2(x)[0].detach().numpy(), rtol=1e-12)
    # training with p=0.5 differs from evaluation, and is reproducible with a seed
    m.dropout = 0.5
    m.train()
    pt.manual_seed(3)
    a = m(x)[0].detach().numpy()
    pt.manual_seed(3)
    b = m(x)[0].detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, out_eval.detach().numpy())
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


# -------------------------------------------------------------------- other backends -----
def test_runs_on_another_backend_without_fused_kernels():
    # a backend with only the composite defaults (no fused linear): same values and grads
    x = rand(4, 2, 3, seed=1)
    for cls in (nn.LSTM, nn.GRU, nn.RNN):
        pt.manual_seed(0)
        m = cls(3, 4, num_layers=2, bidirectional=True, dtype=pt.float64)
        results = []
        with cpu_clone("nofusedrnn", drop=("linear",)) as dev:
            for device in ("cpu", dev):
                m.to(device)
                m.zero_grad()
                px = pt.tensor(x, device=device, requires_grad=True)
                out = m(px)[0]
                assert out.device == pt.device(device)
                (out ** 2).sum().backward()
                results.append([t.detach().to("cpu").numpy() for t in
                                (out, px.grad, m.weight_hh_l1_reverse.grad)])
            m.to("cpu")
        for a, b in zip(*results):
            close(a, b, rtol=1e-12)


def test_device_mismatch_names_the_layer(cpu2):
    m = nn.GRU(3, 4)
    with pytest.raises(pt.DeviceMismatchError, match="GRU: expected all tensors on the same "
                                                     "device"):
        m(pt.zeros(2, 1, 3, device=cpu2))
    m.to(cpu2)
    with pytest.raises(pt.DeviceMismatchError, match="GRU"):
        m(pt.zeros(2, 1, 3, device=cpu2), pt.zeros(1, 1, 4))


# ------------------------------------------------------------------- reprs and errors -----
def test_reprs_match_torch():
    torch = torch_or_skip()
    cases = [("RNN", (3, 4), {}), ("RNN", (3, 4, 2), {"nonlinearity": "relu"}),
             ("LSTM", (3, 4), {"proj_size": 2, "num_layers": 2, "bias": False,
                               "batch_first": True, "dropout": 0.1, "bidirectional": True}),
             ("GRU", (3, 4), {"bidirectional": True}),
             ("RNNCell", (3, 4), {"nonlinearity": "relu", "bias": False}),
             ("LSTMCell", (3, 4), {}), ("GRUCell", (3, 4), {"bias": False})]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, args, kw in cases:
            assert repr(getattr(nn, name)(*args, **kw)) == \
                repr(getattr(torch.nn, name)(*args, **kw))


def test_errors_name_layer_and_shapes():
    m = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM\(3, 4, num_layers=2\): expected an input with "
                                         r"input_size=3 features in its last dimension, got "
                                         r"input of shape \(5, 2, 7\)"):
        m(pt.zeros(5, 2, 7))
    with pytest.raises(ValueError, match=r"LSTM\(3, 4, num_layers=2\): expected input to be "
                                         r"2-D .* or 3-D \(L, N, H_in\) .*got a 4-D tensor"):
        m(pt.zeros(1, 5, 2, 3))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 2, 4\) .* got \(1, 2, 4\)"):
        m(pt.zeros(5, 2, 3), (pt.zeros(1, 2, 4), pt.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"expected c0 of shape \(2, 2, 4\) .* got \(2, 2, 3\)"):
        m(pt.zeros(5, 2, 3), (pt.zeros(2, 2, 4), pt.zeros(2, 2, 3)))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 4\) .*unbatched 2-D input, "
                                         r"got \(2, 1, 4\)"):
        m(pt.zeros(5, 3), (pt.zeros(2, 1, 4), pt.zeros(2, 4)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h0, c0\)"):
        m(pt.zeros(5, 2, 3), pt.zeros(2, 2, 4))
    with pytest.raises(TypeError, match=r"input dtype float64 does not match the layer's "
                                        r"parameters \(float32\)"):
        m(pt.zeros(5, 2, 3, dtype=pt.float64))
    with pytest.raises(TypeError, match=r"GRU\(3, 4\): h0 dtype float64"):
        nn.GRU(3, 4)(pt.zeros(5, 2, 3), pt.zeros(1, 2, 4, dtype=pt.float64))
    with pytest.raises(ValueError, match=r"RNN\(3, 4, bidirectional=True\): expected h0 of "
                                         r"shape \(2, 3, 4\)"):
        nn.RNN(3, 4, bidirectional=True)(pt.zeros(2, 3, 3), pt.zeros(1, 3, 4))
    with pytest.raises(TypeError, match="expected a tensor as input"):
        nn.GRU(3, 4)([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"LSTMCell\(3, 4\): expected an input with "
                                         r"input_size=3 .* got input of shape \(2, 5\)"):
        nn.LSTMCell(3, 4)(pt.zeros(2, 5))
    with pytest.raises(ValueError, match=r"GRUCell\(3, 4\): expected hx of shape \(2, 4\) for "
                                         r"input of shape \(2, 3\), got \(3, 4\)"):
        nn.GRUCell(3, 4)(pt.zeros(2, 3), pt.zeros(3, 4))
    with pytest.raises(ValueError, match="RNNCell.*expected input to be 1-D"):
        nn.RNNCell(3, 4)(pt.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="proj_size \\(4\\) has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.RNN(3, 0)
    with pytest.raises(TypeError, match="input_size should be of type int"):
        nn.LSTM(3.0, 4)
