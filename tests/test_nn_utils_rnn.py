"""nn.utils.rnn: PackedSequence, pack/pad/unpad functions and packed input to RNN/LSTM/GRU.

Everything is checked against PyTorch with the same values (float64): packed data, batch
sizes, sorted/unsorted indices, padded results and lengths, and the gradients that flow back
through packing and padding; packed recurrent layers (every kind, stacked, bidirectional, with
and without initial states, sorted or not) for outputs, each sequence's final state and the
gradients of the input, the initial states and every weight.  Also: PyTorch's errors (with
polyten's wording), devices (a second in-process backend; the cuda plugin on the CuPy
stand-in), and a float64 gradcheck through pack -> LSTM -> pad.
"""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
from polyten.autograd import gradcheck, gradgradcheck
from polyten.nn.utils.rnn import (PackedSequence, PackedSequenceError, invert_permutation,
                                  pack_padded_sequence, pack_sequence, pad_packed_sequence,
                                  pad_sequence, unpack_sequence, unpad_sequence)

from _reference import close, copy_weights, rand, torch_or_skip


def _trnn():
    return torch_or_skip().nn.utils.rnn


def _same_packed(p, t):
    close(p.data.detach().numpy(), t.data.detach().numpy())
    assert p.batch_sizes.dtype == pt.int64 and p.batch_sizes.device.type == "cpu"
    assert p.batch_sizes.tolist() == t.batch_sizes.tolist()
    for a, b in ((p.sorted_indices, t.sorted_indices), (p.unsorted_indices, t.unsorted_indices)):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == pt.int64 and a.tolist() == b.tolist()


# ------------------------------------------------------------------ pack / pad vs torch ---
PACK_CASES = [  # (lengths, enforce_sorted)
    ([5, 3, 3, 1], True),
    ([2, 5, 1, 3], False),
    ([3, 3, 5, 3], False),  # ties: a stable sort, as PyTorch's
    ([5, 5, 5, 5], True),   # nothing dropped (a view)
    ([4], True),
    ([1, 1, 1, 1], True),
]


@pytest.mark.parametrize("lengths,enforce_sorted", PACK_CASES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("trailing", [(), (3,), (2, 3)])
def test_pack_pad_roundtrip_matches_torch(lengths, enforce_sorted, batch_first, trailing):
    torch = torch_or_skip()
    trnn = _trnn()
    B, T = len(lengths), 5
    shape = ((B, T) if batch_first else (T, B)) + trailing
    x = rand(*shape, seed=1)
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    tl = torch.tensor(lengths) if enforce_sorted else lengths  # both forms of lengths
    tp = trnn.pack_padded_sequence(tx, tl, batch_first=batch_first,
                                   enforce_sorted=enforce_sorted)
    pp = pack_padded_sequence(px, pt.tensor(lengths, device="cpu") if enforce_sorted else lengths,
                              batch_first=batch_first, enforce_sorted=enforce_sorted)
    assert isinstance(pp, PackedSequence) and isinstance(pp, tuple)
    _same_packed(pp, tp)
    for bf in (False, True):
        for total in (None, 7):
            ta, tlen = trnn.pad_packed_sequence(tp, batch_first=bf, padding_value=-3.5,
                                                total_length=total)
            pa, plen = pad_packed_sequence(pp, batch_first=bf, padding_value=-3.5,
                                           total_length=total)
            assert tuple(pa.shape) == tuple(ta.shape)
            close(pa.detach().numpy(), ta.detach().numpy())
            assert plen.dtype == pt.int64 and plen.device.type == "cpu"
            assert plen.tolist() == tlen.tolist()
    # gradients flow back through pad(pack(x)) to x, zero where x was padding
    ta, _ = trnn.pad_packed_sequence(tp, batch_first=not batch_first, total_length=7)
    pa, _ = pad_packed_sequence(pp, batch_first=not batch_first, total_length=7)
    g = rand(*ta.shape, seed=2)
    ta.backward(torch.tensor(g))
    pa.backward(pt.tensor(g))
    close(px.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("lengths", [[3, 5, 1], [4, 4], [0, 2], [2, 0, 3]])
def test_pad_sequence_matches_torch(batch_first, padding_side, lengths):
    torch = torch_or_skip()
    trnn = _trnn()
    arrays = [rand(n, 2, seed=i) for i, n in enumerate(lengths)]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ps = [pt.tensor(a, requires_grad=True) for a in arrays]
    t = trnn.pad_sequence(ts, batch_first=batch_first, padding_value=9.0,
                          padding_side=padding_side)
    p = pad_sequence(ps, batch_first=batch_first, padding_value=9.0,
                     padding_side=padding_side)
    assert tuple(p.shape) == tuple(t.shape)
    close(p.detach().numpy(), t.detach().numpy())
    g = rand(*t.shape, seed=9)
    t.backward(torch.tensor(g))
    p.backward(pt.tensor(g))
    for a, b in zip(ps, ts):
        close(a.grad.numpy(), b.grad.numpy())


def test_pad_sequence_dtype_tensor_input_and_1d():
    torch = torch_or_skip()
    trnn = _trnn()
    # the first sequence's dtype wins, as in PyTorch
    p = pad_sequence([pt.ones(2, dtype=pt.int64), pt.tensor([1.5, 2.5, 3.5])])
    t = trnn.pad_sequence([torch.ones(2, dtype=torch.int64), torch.tensor([1.5, 2.5, 3.5])])
    assert p.dtype == pt.int64 and p.tolist() == t.tolist()
    # a tensor is the sequence of its slices
    x = rand(3, 4, seed=0)
    close(pad_sequence(pt.tensor(x)).numpy(), trnn.pad_sequence(torch.tensor(x)).numpy())
    # integer padding value into float sequences; 1-D sequences
    p = pad_sequence([pt.tensor([1.0, 2.0]), pt.tensor([3.0])], batch_first=True,
                     padding_value=-1)
    assert p.tolist() == [[1.0, 2.0], [3.0, -1.0]]


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_unpack_unpad_match_torch(enforce_sorted):
    torch = torch_or_skip()
    trnn = _trnn()
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    arrays = [rand(n, 2, 3, seed=i) for i, n in enumerate(lengths)]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ps = [pt.tensor(a, requires_grad=True) for a in arrays]
    tp = trnn.pack_sequence(ts, enforce_sorted=enforce_sorted)
    pp = pack_sequence(ps, enforce_sorted=enforce_sorted)
    _same_packed(pp, tp)
    g = rand(*tp.data.shape, seed=3)
    tp.data.backward(torch.tensor(g))
    pp.data.backward(pt.tensor(g))
    for a, b in zip(ps, ts):
        close(a.grad.numpy(), b.grad.numpy())
    # unpack_sequence: the sequences again, in the caller's order
    back = unpack_sequence(pp)
    assert [tuple(s.shape) for s in back] == [tuple(a.shape) for a in arrays]
    for s, a in zip(back, arrays):
        close(s.detach().numpy(), a)
    # unpad_sequence (both layouts), lengths as a tensor or a list; copies, not views
    for bf in (False, True):
        padded = pad_sequence([pt.tensor(a) for a in arrays], batch_first=bf)
        tpadded = trnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first=bf)
        before = padded.numpy().copy()
        for lens in (pt.tensor(lengths, device="cpu"), lengths):
            got = unpad_sequence(padded, lens, batch_first=bf)
            want = trnn.unpad_sequence(tpadded.clone(), torch.tensor(lengths), batch_first=bf)
            for a, b in zip(got, want):
                close(a.numpy(), b.numpy())
        got[0].fill_(123.0)
        np.testing.assert_array_equal(padded.numpy(), before)  # untouched (PyTorch
        # transposes its input in place when batch_first=False; polyten does not)


def test_unpad_sequence_gradients():
    x = pt.tensor(rand(4, 2, 3, seed=0), requires_grad=True)
    parts = unpad_sequence(x, [4, 2])
    (parts[0].sum() * 2 + parts[1].sum()).backward()
    want = np.zeros((4, 2, 3))
    want[:, 0] = 2.0
    want[:2, 1] = 1.0
    np.testing.assert_array_equal(x.grad.numpy(), want)


# --------------------------------------------------------------------- PackedSequence ---
def test_packed_sequence_is_a_named_tuple_with_conversions():
    p = pack_sequence([pt.ones(3, 2), pt.ones(1, 2) * 2, pt.ones(2, 2) * 3],
                      enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert p._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert batch_sizes.tolist() == [3, 2, 1]
    assert sorted_indices.tolist() == [0, 2, 1] and unsorted_indices.tolist() == [0, 2, 1]
    assert p.to(pt.float32) is p and p.to(p.data.device) is p  # nothing to change
    d = p.double()
    assert d.data.dtype == pt.float64 and d.batch_sizes is p.batch_sizes
    assert d.sorted_indices.dtype == pt.int64  # the indices keep their dtype
    assert p.to(dtype=pt.float64).data.dtype == pt.float64
    assert p.long().data.dtype == pt.int64 and p.half().data.dtype == pt.float16
    assert p.int().data.dtype == pt.int32 and p.float().data.dtype == pt.float32
    on_cpu = p.data.device.type == "cpu"
    assert p.is_cuda is (p.data.device.type == "cuda") and p.is_pinned() is False
    assert (p.cpu() is p) is on_cpu
    # unsorted_indices is derived from sorted_indices when not given
    q = PackedSequence(data, batch_sizes, sorted_indices)
    assert q.unsorted_indices.tolist() == [0, 2, 1]
    # PyTorch's legacy (data, batch_sizes) pair
    r = PackedSequence((data, batch_sizes))
    assert r.batch_sizes is batch_sizes and r.sorted_indices is None
    assert invert_permutation(pt.tensor([2, 0, 3, 1])).tolist() == [1, 3, 0, 2]
    assert invert_permutation(None) is None


def test_packed_sequence_refuses_batch_sizes_off_the_cpu(cpu2):
    data = pt.ones(3, 2)
    with pytest.raises(ValueError, match="batch_sizes should always be on CPU"):
        PackedSequence(data, pt.tensor([2, 1], device=cpu2))
    with pytest.raises(TypeError, match="batch_sizes must be a 1-D int64 cpu tensor"):
        PackedSequence(data, [2, 1])


def test_another_backend(cpu2):
    """Data, the index tensors and the padded results on the data's backend; batch_sizes and
    lengths on the cpu; a packed LSTM there equals the same LSTM on the cpu."""
    x = rand(4, 3, 2, seed=0)
    lengths = [2, 4, 1]
    p = pack_padded_sequence(pt.tensor(x, device=cpu2, requires_grad=True), lengths,
                             enforce_sorted=False)
    assert p.data.device == cpu2 and p.sorted_indices.device == cpu2
    assert p.unsorted_indices.device == cpu2 and p.batch_sizes.device.type == "cpu"
    ref = pack_padded_sequence(pt.tensor(x), lengths, enforce_sorted=False)
    close(p.data.to("cpu").detach().numpy(), ref.data.numpy())
    moved = p.to("cpu")
    assert moved.data.device.type == "cpu" and moved.sorted_indices.device.type == "cpu"
    padded, lens = pad_packed_sequence(p, batch_first=True)
    assert padded.device == cpu2 and lens.device.type == "cpu"
    pt.manual_seed(0)
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=pt.float64)
    out_cpu, (h_cpu, c_cpu) = lstm(ref)
    lstm.to(cpu2)
    out, (h, c) = lstm(p)
    assert out.data.device == cpu2 and h.device == cpu2
    close(out.data.to("cpu").detach().numpy(), out_cpu.data.detach().numpy())
    close(h.to("cpu").detach().numpy(), h_cpu.detach().numpy())
    close(c.to("cpu").detach().numpy(), c_cpu.detach().numpy())
    seqs = [pt.ones(2, 3, device=cpu2), pt.ones(1, 3, device=cpu2)]
    assert pad_sequence(seqs).device == cpu2 and pack_sequence(seqs).data.device == cpu2


# ------------------------------------------------------------------------------ errors ---
def test_errors_name_the_call_and_match_torch_classes(cpu2):
    x = pt.ones(4, 3, 2)
    err = PackedSequenceError
    assert issubclass(err, ValueError) and issubclass(err, RuntimeError)
    with pytest.raises(err, match=r"pack_padded_sequence: `lengths` array must be sorted in "
                                  r"decreasing order when `enforce_sorted` is True.*"
                                  r"enforce_sorted=False"):
        pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(err, match=r"pack_padded_sequence: lengths can be at most the input's "
                                  r"4 time steps, got a length of 5.*batch_first=True"):
        pack_padded_sequence(x, [5, 4, 1])
    with pytest.raises(err, match="at most the input's 3 time steps"):
        pack_padded_sequence(pt.ones(2, 3, 2), [4, 1], batch_first=True)
    with pytest.raises(err, match=r"Length of all samples has to be greater than 0.*\(0\)"):
        pack_padded_sequence(x, [3, 2, 0])
    with pytest.raises(err, match=r"greater than 0.*\(-1\)"):
        pack_padded_sequence(x, [-1, 2, 3], enforce_sorted=False)
    with pytest.raises(err, match=r"Expected `len\(lengths\)` to be equal to batch_size, but "
                                  r"got 2 \(batch_size=3"):
        pack_padded_sequence(x, [3, 2])
    with pytest.raises(err, match=r"'lengths' argument should be a 1D CPU int64 tensor.*"
                                  r"of shape \(1, 3\)"):
        pack_padded_sequence(x, pt.tensor([[3, 2, 1]]))
    with pytest.raises(err, match=r"on cpu2; pass lengths.cpu\(\)"):
        pack_padded_sequence(x, pt.tensor([3, 2, 1], device=cpu2))
    with pytest.raises(err, match="Cannot pack empty tensors"):
        pack_padded_sequence(pt.ones(0, 2, 3), [1, 1])
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape"):
        pack_padded_sequence(pt.ones(3), [3])
    with pytest.raises(TypeError, match="pack_padded_sequence: input must be a tensor"):
        pack_padded_sequence([[1.0]], [1])
    with pytest.raises(err, match=r"pack_sequence: Length of all samples has to be greater "
                                  r"than 0"):
        pack_sequence([pt.ones(2), pt.ones(0)])
    with pytest.raises(err, match="pack_sequence: `lengths` array must be sorted"):
        pack_sequence([pt.ones(1), pt.ones(2)])
    with pytest.raises(err, match=r"pad_sequence: Expected padding_side to be one of left or "
                                  r"right, but got 'middle'"):
        pad_sequence([pt.ones(2)], padding_side="middle")
    with pytest.raises(err, match="pad_sequence: received an empty list of sequences"):
        pad_sequence([])
    with pytest.raises(err, match=r"same trailing dimensions.*\(2, 3\).*\(3, 2\)"):
        pad_sequence([pt.ones(2, 3), pt.ones(3, 2)])
    with pytest.raises(ValueError, match=r"pad_sequence: sequences\[1\] must have at least 1 "
                                         r"dimension"):
        pad_sequence([pt.ones(2), pt.tensor(1.0)])
    with pytest.raises(err, match="one device, but sequences\\[0\\] is on cpu and "
                                  "sequences\\[1\\] on cpu2"):
        pad_sequence([pt.ones(2, device="cpu"), pt.ones(2, device=cpu2)])
    packed = pack_sequence([pt.ones(3), pt.ones(2)])
    with pytest.raises(ValueError, match=r"pad_packed_sequence: Expected total_length to be "
                                         r"at least the length of the longest sequence.*"
                                         r"total_length=2 and max sequence length being 3"):
        pad_packed_sequence(packed, total_length=2)
    with pytest.raises(TypeError, match="pad_packed_sequence: expected a PackedSequence"):
        pad_packed_sequence(pt.ones(3, 2))
    with pytest.raises(err, match=r"inconsistent: batch_sizes \[2, 2\] add up to 4 but data "
                                  r"has 5 rows"):
        pad_packed_sequence(PackedSequence(pt.ones(5), pt.tensor([2, 2], device="cpu")))
    with pytest.raises(err, match=r"unpad_sequence: expected one length per sequence \(2 "
                                  r"for padded_sequences of shape \(3, 2\)"):
        unpad_sequence(pt.ones(3, 2), [3])
    with pytest.raises(err, match=r"unpad_sequence: lengths must be between 0 and the 3 "
                                  r"padded steps"):
        unpad_sequence(pt.ones(3, 2), [4, 1])


def test_torch_raises_for_the_same_inputs():
    """The cases above that PyTorch also refuses (it accepts a length longer than the input
    and returns an inconsistent PackedSequence; polyten refuses it)."""
    torch = torch_or_skip()
    trnn = _trnn()
    x = torch.ones(4, 3, 2)
    for call in (lambda: trnn.pack_padded_sequence(x, [2, 4, 1]),
                 lambda: trnn.pack_padded_sequence(x, [3, 2, 0]),
                 lambda: trnn.pack_padded_sequence(x, [3, 2]),
                 lambda: trnn.pad_sequence([torch.ones(2)], padding_side="middle"),
                 lambda: trnn.pad_sequence([])):
        with pytest.raises(RuntimeError):
            call()
    bad = trnn.pack_padded_sequence(x, [5, 4, 1])
    assert int(bad.batch_sizes.sum()) != bad.data.shape[0]


# -------------------------------------------------------------- packed recurrent layers ---
KINDS = {
    "rnn_tanh": ("RNN", {}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
}
# (num_layers, bidirectional, with initial state, bias, lengths, enforce_sorted)
CONFIGS = [
    (1, False, False, True, [5, 3, 3, 1], True),
    (1, False, True, True, [2, 5, 1, 3], False),
    (2, True, True, True, [3, 5, 1, 3], False),
    (2, False, True, False, [5, 4, 2, 1], True),
    (1, True, False, True, [4, 4, 4, 4], True),
    (3, True, True, True, [1, 2, 3, 4], False),
    (2, True, True, True, [3], True),
]


def _pair(kind, layers, bidir, bias, input_size=3, hidden=4):
    torch = torch_or_skip()
    tname, kw = KINDS[kind]
    tm = getattr(torch.nn, tname)(input_size, hidden, num_layers=layers, bias=bias,
                                  bidirectional=bidir, **kw).double()
    pm = getattr(nn, tname)(input_size, hidden, num_layers=layers, bias=bias,
                            bidirectional=bidir, dtype=pt.float64, **kw)
    copy_weights(pm, tm)
    return pm, tm


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}{}{}{}-{}{}".format(
    c[0], "-bi" if c[1] else "", "-h0" if c[2] else "", "" if c[3] else "-nobias",
    "x".join(map(str, c[4])), "" if c[5] else "-unsorted"))
def test_packed_layers_match_torch(kind, config):
    """Output data, each sequence's final state (at its own last step, in the caller's batch
    order) and the gradients of the padded input, h0/c0 and every weight."""
    torch = torch_or_skip()
    trnn = _trnn()
    layers, bidir, with_h0, bias, lengths, enforce_sorted = config
    pm, tm = _pair(kind, layers, bidir, bias)
    is_lstm = kind.startswith("lstm")
    B, T, D = len(lengths), max(lengths) + 1, 2 if bidir else 1
    out_size = 2 if kind == "lstm_proj" else 4
    x = rand(T, B, 3, seed=1)
    states = []
    if with_h0:
        states.append(rand(D * layers, B, out_size, seed=2))
        if is_lstm:
            states.append(rand(D * layers, B, 4, seed=3))
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    tst = [torch.tensor(s, requires_grad=True) for s in states]
    pst = [pt.tensor(s, requires_grad=True) for s in states]
    targ = (tuple(tst) if is_lstm else tst[0]) if states else None
    parg = (tuple(pst) if is_lstm else pst[0]) if states else None
    tout, tfin = tm(trnn.pack_padded_sequence(tx, lengths, enforce_sorted=enforce_sorted), targ)
    pout, pfin = pm(pack_padded_sequence(px, lengths, enforce_sorted=enforce_sorted), parg)
    assert isinstance(pout, PackedSequence)
    _same_packed(pout, tout)
    tfin = tfin if is_lstm else (tfin,)
    pfin = pfin if is_lstm else (pfin,)
    for a, b in zip(pfin, tfin):
        assert tuple(a.shape) == tuple(b.shape)
        close(a.detach().numpy(), b.detach().numpy())
    tpad, _ = trnn.pad_packed_sequence(tout)
    ppad, _ = pad_packed_sequence(pout)
    g = rand(*tpad.shape, seed=4)
    gs = [rand(*a.shape, seed=5 + i) for i, a in enumerate(tfin)]
    tloss = (tpad * torch.tensor(g)).sum() + sum((a * torch.tensor(s)).sum()
                                                  for a, s in zip(tfin, gs))
    ploss = (ppad * pt.tensor(g)).sum()
    for a, s in zip(pfin, gs):
        ploss = ploss + (a * pt.tensor(s)).sum()
    tloss.backward()
    ploss.backward()
    close(px.grad.numpy(), tx.grad.numpy())
    for a, b in zip(pst, tst):
        close(a.grad.numpy(), b.grad.numpy())
    tparams = dict(tm.named_parameters())
    for n, p in pm.named_parameters():
        close(p.grad.numpy(), tparams[n].grad.numpy())


def test_packed_equals_padded_for_full_lengths():
    """With every sequence full length the packed and the padded paths compute the same."""
    pt.manual_seed(0)
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=pt.float64)
    x = pt.tensor(rand(5, 3, 3, seed=0))
    out, h = m(x)
    pout, ph = m(pack_padded_sequence(x, [5, 5, 5]))
    close(pad_packed_sequence(pout)[0].detach().numpy(), out.detach().numpy())
    close(ph.detach().numpy(), h.detach().numpy())


def test_packed_lstm_on_pack_sequence_and_unpack():
    """pack_sequence -> LSTM -> unpack_sequence: each output is the LSTM run on that
    sequence alone."""
    pt.manual_seed(0)
    m = nn.LSTM(2, 3, num_layers=2, dtype=pt.float64)
    seqs = [pt.tensor(rand(n, 2, seed=n)) for n in (2, 5, 3)]
    out, (h, c) = m(pack_sequence(seqs, enforce_sorted=False))
    for i, (s, o) in enumerate(zip(seqs, unpack_sequence(out))):
        alone, (ha, ca) = m(s.unsqueeze(1))
        close(o.detach().numpy(), alone[:, 0].detach().numpy())
        close(h[:, i].detach().numpy(), ha[:, 0].detach().numpy())
        close(c[:, i].detach().numpy(), ca[:, 0].detach().numpy())


def test_packed_dropout_between_layers():
    torch = torch_or_skip()
    trnn = _trnn()
    pm, tm = _pair("lstm", 2, False, True)
    pm.dropout = tm.dropout = 0.5
    x = rand(4, 3, 3, seed=0)
    lengths = [4, 2, 1]
    pm.train()
    out, _ = pm(pack_padded_sequence(pt.tensor(x), lengths))
    assert tuple(out.data.shape) == (7, 4)
    pm.eval()
    tm.eval()
    out, (h, c) = pm(pack_padded_sequence(pt.tensor(x), lengths))
    tout, (th, tc) = tm(trnn.pack_padded_sequence(torch.tensor(x), lengths))
    close(out.data.detach().numpy(), tout.data.detach().numpy())
    close(h.detach().numpy(), th.detach().numpy())


def test_packed_layer_errors():
    lstm = nn.LSTM(3, 4, num_layers=2)
    p = pack_sequence([pt.ones(3, 3), pt.ones(2, 3)])
    with pytest.raises(ValueError, match=r"LSTM\(3, 4, num_layers=2\): expected h0 of shape "
                                         r"\(2, 2, 4\).*for the packed input, got \(2, 3, 4\)"):
        lstm(p, (pt.zeros(2, 3, 4), pt.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match=r"input_size=3 features.*packed data of shape "
                                         r"\(5, 2\)"):
        lstm(pack_sequence([pt.ones(3, 2), pt.ones(2, 2)]))
    with pytest.raises(ValueError, match=r"data must be 2-D \(sum of lengths, H_in\).*"
                                         r"\(5, 1, 3\)"):
        lstm(pack_sequence([pt.ones(3, 1, 3), pt.ones(2, 1, 3)]))
    with pytest.raises(TypeError, match="input dtype float64 does not match"):
        lstm(pack_sequence([pt.ones(3, 3, dtype=pt.float64)]))
    with pytest.raises(ValueError, match=r"batch_sizes \[2, 2\] must be positive, "
                                         r"non-increasing and add up to the 5 rows"):
        lstm(PackedSequence(pt.ones(5, 3), pt.tensor([2, 2], device="cpu")))
    with pytest.raises(ValueError, match=r"batch_sizes \[1, 2\] must be positive, "
                                         r"non-increasing"):
        lstm(PackedSequence(pt.ones(3, 3), pt.tensor([1, 2], device="cpu")))


def test_one_layer_lstm_with_grad_requiring_h0_padded_path():
    """Regression: a 1-layer, one-direction LSTM whose (h0, c0) require grad (backward used to
    fail in the unbind of the single layer's state)."""
    torch = torch_or_skip()
    pm, tm = _pair("lstm", 1, False, True)
    x = rand(3, 2, 3, seed=0)
    h0, c0 = rand(1, 2, 4, seed=1), rand(1, 2, 4, seed=2)
    ph, pc = pt.tensor(h0, requires_grad=True), pt.tensor(c0, requires_grad=True)
    th, tc = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    pout, _ = pm(pt.tensor(x), (ph, pc))
    tout, _ = tm(torch.tensor(x), (th, tc))
    pout.sum().backward()
    tout.sum().backward()
    close(ph.grad.numpy(), th.grad.numpy())
    close(pc.grad.numpy(), tc.grad.numpy())


# ------------------------------------------------------------------------- gradchecks ---
def test_gradcheck_pack_lstm_pad():
    """float64 finite differences through pack_padded_sequence (unsorted lengths) -> 2-layer
    bidirectional LSTM -> pad_packed_sequence, w.r.t. the padded input and (h0, c0)."""
    pt.manual_seed(0)
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=pt.float64)
    x = pt.tensor(rand(4, 3, 2, seed=1), requires_grad=True)
    h0 = pt.tensor(rand(4, 3, 3, seed=2), requires_grad=True)
    c0 = pt.tensor(rand(4, 3, 3, seed=3), requires_grad=True)
    lengths = [2, 4, 1]

    def run(x, h0, c0):
        out, (h, c) = lstm(pack_padded_sequence(x, lengths, enforce_sorted=False), (h0, c0))
        padded, _ = pad_packed_sequence(out, batch_first=True, total_length=5)
        return padded, h, c

    assert gradcheck(run, (x, h0, c0))


def _gradgrad_packed_gru(lengths):
    pt.manual_seed(1)
    gru = nn.GRU(2, 2, dtype=pt.float64)
    x = pt.tensor(rand(max(lengths), len(lengths), 2, seed=1), requires_grad=True)

    def run(x):
        out, h = gru(pack_padded_sequence(x, lengths))
        return pad_packed_sequence(out)[0], h

    return gradgradcheck(run, (x,))


def test_gradgradcheck_packed_gru():
    """Second derivatives through the packed path (the fused layer records itself under
    create_graph); every run of equal batch sizes here is at least two steps long."""
    assert _gradgrad_packed_gru([4, 2])


def test_gradgradcheck_packed_gru_one_step_segment():
    """A one-step segment: the fused layer's recomputation unbinds a dim of size 1."""
    assert _gradgrad_packed_gru([3, 1])  # batch sizes [2, 1, 1]: a one-step segment first


# ------------------------------------------------------------ cuda on the CuPy stand-in ---
def test_cuda_plugin_on_the_standin():
    """The cuda plugin as shipped, on the CuPy stand-in (tests/cupy_standin.py) in a
    subprocess: pack -> bidirectional LSTM -> pad equals the cpu result, and the packed
    LSTM's forward and backward read nothing from the device."""
    import os
    import subprocess
    import sys
    import textwrap
    cs = pytest.importorskip("cupy_standin")
    if cs.CXX is None:
        pytest.skip("no host C++ compiler (g++) to run the fused CUDA kernel bodies")
    here = os.path.dirname(os.path.abspath(__file__))
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {here!r})
        import cupy_standin; cupy_standin.install(devices=1)
        import numpy as np
        import polyten as pt, polyten.nn as nn
        from polyten.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 3, 2))
        pt.manual_seed(0)
        lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=pt.float64)
        def run(dev):
            xt = pt.tensor(x, device=dev, requires_grad=True)
            p = pack_padded_sequence(xt, [2, 5, 3], enforce_sorted=False)
            cupy_standin.STATS.clear()
            out, (h, c) = lstm.to(dev)(p)
            (out.data.sum() + h.sum() + c.sum()).backward()
            reads = cupy_standin.traffic().get("d2h", 0)
            padded, lens = pad_packed_sequence(out, batch_first=True)
            return padded.cpu().detach().numpy(), h.cpu().detach().numpy(), \\
                xt.grad.cpu().numpy(), lens.tolist(), reads
        a = run("cpu")
        b = run("cuda")
        for u, v in zip(a[:3], b[:3]):
            np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
        assert a[3] == b[3] == [2, 5, 3]
        assert b[4] == 0, b[4]
        print("ok")
    """)
    env = dict(os.environ)
    env.pop("POLYTEN_SYNC_CHECKS", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(here),
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]
