"""Linear-type layers: Linear, Bilinear, Identity, Flatten, Unflatten, Dropout and Embedding.

Values and gradients against PyTorch (float64, same weights), finite-difference gradchecks
without PyTorch, PyTorch's default initialisation (statistics with fixed seeds), the fused vs
default ``linear`` paths, reprs and errors naming the layer and the shapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import close, copy_weights, module_step, rand, torch_or_skip


# ---------------------------------------------------------------------------- Linear -----
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (3,), (2, 1, 2, 3), (0, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    torch = torch_or_skip()
    tm = torch.nn.Linear(3, 2, bias=bias).double()
    pm = nn.Linear(3, 2, bias=bias, dtype=pt.float64)
    copy_weights(pm, tm)
    assert len(list(pm.parameters())) == len(list(tm.parameters())) == 1 + bias
    po, to = module_step(pm, tm, rand(*shape, seed=1), seed=2)
    assert tuple(po.shape) == tuple(to.shape) == shape[:-1] + (2,)


def test_linear_noncontiguous_input_and_weight():
    x = rand(3, 4, seed=3)
    w = rand(3, 2, seed=4)
    px = pt.tensor(x).T  # (4, 3) view
    pw = pt.tensor(w).T  # (2, 3) view
    out = F.linear(px, pw.T.contiguous().T, None)
    close(F.linear(px, pw).numpy(), x.T @ w)
    close(out.numpy(), x.T @ w)
    close(F.linear(px, pw, pt.tensor([1.0, -1.0])).numpy(), x.T @ w + [1.0, -1.0])


def test_linear_default_init_matches_torch_rule():
    pt.manual_seed(0)
    m = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert m.weight.dtype == pt.float32 and m.weight.requires_grad
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-bound, bound): std bound / sqrt(3); 2000 samples
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert abs(w.mean()) < 0.05 * bound
    pt.manual_seed(0)
    again = nn.Linear(50, 40)
    np.testing.assert_array_equal(again.weight.detach().numpy(), w)
    np.testing.assert_array_equal(again.bias.detach().numpy(), b)
    d = nn.Linear(3, 2, dtype=pt.float64, device="cpu")
    assert d.weight.dtype == pt.float64 and d.bias.dtype == pt.float64


def test_linear_gradcheck_without_torch():
    for shape in ((2, 3), (2, 2, 3), (3,)):
        x = pt.tensor(rand(*shape, seed=5), requires_grad=True)
        w = pt.tensor(rand(2, 3, seed=6), requires_grad=True)
        b = pt.tensor(rand(2, seed=7), requires_grad=True)
        assert gradcheck(F.linear, (x, w, b))
        assert gradcheck(lambda a, c: F.linear(a, c), (x, w))
    assert gradgradcheck(F.linear, (pt.tensor(rand(2, 3), requires_grad=True),
                                    pt.tensor(rand(2, 3, seed=1), requires_grad=True),
                                    pt.tensor(rand(2, seed=2), requires_grad=True)))


def test_linear_fused_and_default_agree():
    x, w, b = rand(2, 3, 4, seed=8), rand(5, 4, seed=9), rand(5, seed=10)
    g = rand(2, 3, 5, seed=11)
    results = []
    with cpu_clone("nofusedlinear", drop=("linear",)) as dev:
        for device in ("cpu", dev):
            px, pw, pb = (pt.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
            out = F.linear(px, pw, pb)
            assert type(out.grad_fn).__name__ == "LinearBackward0"
            out.backward(pt.tensor(g, device=device))
            results.append([t.detach().to("cpu").numpy() for t in (out, px.grad, pw.grad,
                                                                    pb.grad)])
    for a, b_ in zip(*results):
        close(a, b_, rtol=1e-12)
    close(results[0][0], x @ w.T + b, rtol=1e-12)


def test_linear_dtypes():
    x = pt.ones(2, 3)
    w32 = pt.ones(4, 3)
    assert F.linear(x, w32).dtype == pt.float32
    assert F.linear(x, w32.to(pt.float64)).dtype == pt.float64  # promoted, as matmul
    xi = pt.tensor([[1, 2, 3]])
    out = F.linear(xi, pt.tensor([[1, 0, 1]]), pt.tensor([5]))
    assert out.dtype == pt.int64 and out.tolist() == [[9]]
    assert nn.Linear(3, 2).double()(pt.ones(1, 3, dtype=pt.float64)).dtype == pt.float64


def test_linear_errors_name_layer_and_shapes():
    m = nn.Linear(3, 4)
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=4\): expected "
                                         r"an input of shape \(\.\.\., 3\), got \(2, 5\)"):
        m(pt.ones(2, 5))
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\) has 5 features in "
                                         r"its last dimension, but weight of shape \(4, 3\) "
                                         r"expects in_features=3"):
        F.linear(pt.ones(2, 5), pt.ones(4, 3))
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D"):
        F.linear(pt.ones(2, 3), pt.ones(3))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(4,\)"):
        F.linear(pt.ones(2, 3), pt.ones(4, 3), pt.ones(3))
    with pytest.raises(ValueError, match="linear: input must have at least 1 dimension"):
        F.linear(pt.tensor(1.0), pt.ones(4, 3))
    with pytest.raises(TypeError, match="linear: input must be a tensor"):
        F.linear([1.0, 2.0, 3.0], pt.ones(4, 3))
    with pytest.raises(TypeError, match="linear: bool tensors are not supported"):
        F.linear(pt.ones(2, 3, dtype=pt.bool), pt.ones(4, 3, dtype=pt.bool))
    with pytest.raises(ValueError, match="Linear: in_features must be a non-negative int"):
        nn.Linear(-1, 3)


def test_linear_device_mismatch(cpu2):
    with pytest.raises(pt.DeviceMismatchError, match="linear"):
        F.linear(pt.ones(2, 3), pt.ones(4, 3, device=cpu2))


def test_bilinear_matches_torch():
    torch = torch_or_skip()
    tm = torch.nn.Bilinear(3, 4, 2).double()
    pm = nn.Bilinear(3, 4, 2, dtype=pt.float64)
    copy_weights(pm, tm)
    a, b = rand(5, 3, seed=1), rand(5, 4, seed=2)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    pa, pb = pt.tensor(a, requires_grad=True), pt.tensor(b, requires_grad=True)
    to, po = tm(ta, tb), pm(pa, pb)
    close(po.detach().numpy(), to.detach().numpy())
    to.sum().backward()
    po.sum().backward()
    for p_, t_ in ((pa.grad, ta.grad), (pb.grad, tb.grad), (pm.weight.grad, tm.weight.grad),
                   (pm.bias.grad, tm.bias.grad)):
        close(p_.numpy(), t_.numpy())
    assert repr(pm) == repr(tm)
    assert gradcheck(lambda x, y: pm(x, y), (pt.tensor(a[:2], requires_grad=True),
                                             pt.tensor(b[:2], requires_grad=True)))
    with pytest.raises(ValueError, match=r"bilinear: inputs with 3 and 3 features do not "
                                         r"match weight of shape \(2, 3, 4\)"):
        pm(pa, pa)


def test_identity_and_reprs():
    torch = torch_or_skip()
    x = pt.ones(2)
    assert nn.Identity(54, unused="x")(x) is x
    for pm, tm in ((nn.Linear(3, 4), torch.nn.Linear(3, 4)),
                   (nn.Linear(3, 4, bias=False), torch.nn.Linear(3, 4, bias=False)),
                   (nn.Identity(), torch.nn.Identity()),
                   (nn.Flatten(), torch.nn.Flatten()), (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
                   (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
                   (nn.Unflatten(-1, [2, 3]), torch.nn.Unflatten(-1, [2, 3])),
                   (nn.Dropout(), torch.nn.Dropout()), (nn.Dropout(0.1, True),
                                                        torch.nn.Dropout(0.1, True)),
                   (nn.Dropout2d(0.3), torch.nn.Dropout2d(0.3)),
                   (nn.AlphaDropout(0.2), torch.nn.AlphaDropout(0.2)),
                   (nn.Embedding(10, 3), torch.nn.Embedding(10, 3)),
                   (nn.Embedding(10, 3, padding_idx=-1, max_norm=1.0, norm_type=1.0,
                                 scale_grad_by_freq=True, sparse=True),
                    torch.nn.Embedding(10, 3, padding_idx=-1, max_norm=1.0, norm_type=1.0,
                                       scale_grad_by_freq=True, sparse=True))):
        assert repr(pm) == repr(tm)


# --------------------------------------------------------------------- Flatten etc. -----
def test_flatten_unflatten_match_torch():
    torch = torch_or_skip()
    x = rand(2, 3, 4, 5)
    for args in ((), (0,), (1, 2), (0, -1), (2, 3)):
        close(nn.Flatten(*args)(pt.tensor(x)).numpy(), torch.nn.Flatten(*args)(
            torch.tensor(x)).numpy())
    u = nn.Unflatten(2, (2, 2))
    close(u(pt.tensor(x)).numpy(), x.reshape(2, 3, 2, 2, 5))
    assert tuple(nn.Unflatten(-1, (5, -1))(pt.tensor(x)).shape) == (2, 3, 4, 5, 1)
    px = pt.tensor(x, requires_grad=True)
    nn.Unflatten(1, (3, 1))(nn.Flatten(0, 1)(px).reshape(2, 3, 4, 5)).sum().backward()
    close(px.grad.numpy(), np.ones_like(x))


def test_flatten_unflatten_errors():
    with pytest.raises(IndexError, match=r"Flatten\(start_dim=3, end_dim=-1\): input of shape "
                                         r"\(2, 3\)"):
        nn.Flatten(3)(pt.ones(2, 3))
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(2, 2\)\): "
                                         r"input of shape \(2, 3\)"):
        nn.Unflatten(1, (2, 2))(pt.ones(2, 3))
    with pytest.raises(TypeError, match="Unflatten: unflattened_size must be a tuple of ints"):
        nn.Unflatten(1, 4)


# --------------------------------------------------------------------------- Dropout -----
def test_dropout_statistics_scale_and_reproducibility():
    x = pt.ones(200, 100)
    pt.manual_seed(123)
    out = F.dropout(x, 0.3)
    o = out.numpy()
    assert set(np.unique(o)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((o == 0).mean() - 0.3) < 0.015  # 20000 Bernoulli draws: sd 0.003
    assert out.dtype == pt.float32
    pt.manual_seed(123)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), o)
    assert not np.array_equal(F.dropout(x, 0.3).numpy(), o)
    # the expectation is kept
    assert abs(o.mean() - 1.0) < 0.03


def test_dropout_gradient_is_the_mask():
    x = pt.tensor(rand(50, 40), requires_grad=True)
    pt.manual_seed(0)
    out = F.dropout(x, 0.5)
    out.backward(pt.ones_like(out))
    kept = out.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 2.0, 0.0))
    # the mask is fixed once drawn: gradcheck with a fixed seed per call
    y = pt.tensor(rand(3, 2), requires_grad=True)

    def f(t):
        pt.manual_seed(7)
        return F.dropout(t, 0.4)
    assert gradcheck(f, (y,))


def test_dropout_modes_and_limits():
    x = pt.tensor(rand(4, 5))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((4, 5)))
    m = nn.Dropout(0.5)
    m.eval()
    assert m(x) is x
    m.train()
    assert (m(x).numpy() == 0).any()
    y = pt.ones(100)
    r = F.dropout(y, 0.5, inplace=True)
    assert r is y and (y.numpy() == 0).any()
    e = pt.ones(0, 3)
    assert tuple(F.dropout(e, 0.5).shape) == (0, 3)


def test_dropout_errors():
    with pytest.raises(ValueError, match="dropout: dropout probability has to be between 0 "
                                         "and 1, but got 1.5"):
        F.dropout(pt.ones(2), 1.5)
    with pytest.raises(ValueError, match="Dropout: dropout probability has to be between 0 "
                                         "and 1, but got -0.1"):
        nn.Dropout(-0.1)
    with pytest.raises(TypeError, match="dropout: expected a floating-point tensor, got int64"):
        F.dropout(pt.tensor([1, 2]), 0.5)
    with pytest.raises(ValueError, match=r"dropout2d: expected a 3-D \(unbatched\) or 4-D "
                                         r"\(batched\) input, got shape \(2, 3\)"):
        F.dropout2d(pt.ones(2, 3))


def test_dropout2d_zeroes_whole_channels():
    x = pt.ones(8, 16, 3, 3)
    pt.manual_seed(1)
    o = F.dropout2d(x, 0.5).numpy()
    per_channel = o.reshape(8, 16, 9)
    assert ((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1)).all()
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    o1 = F.dropout1d(pt.ones(4, 10, 6), 0.5).numpy()
    assert ((o1 == 0).all(-1) | (o1 == 2.0).all(-1)).all()


def test_alpha_dropout_keeps_moments():
    pt.manual_seed(3)
    x = pt.randn(400, 250, dtype=pt.float64)
    o = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(o.mean()) < 0.02 and abs(o.std() - 1.0) < 0.02
    assert F.alpha_dropout(x, 0.2) is x  # training defaults to False, as PyTorch
    m = nn.AlphaDropout(0.2)
    assert not np.array_equal(m(x).numpy(), x.numpy())


# ------------------------------------------------------------------------- Embedding -----
@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_embedding_matches_torch(padding_idx):
    torch = torch_or_skip()
    tm = torch.nn.Embedding(7, 3, padding_idx=padding_idx).double()
    pm = nn.Embedding(7, 3, padding_idx=padding_idx, dtype=pt.float64)
    if padding_idx is not None:  # the padding row is initialised to zeros
        assert np.all(pm.weight.detach().numpy()[padding_idx] == 0)
    w = rand(7, 3)  # a non-zero padding row: forward returns it, backward skips it
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w))
    pm.load_state_dict({"weight": pt.tensor(w)})
    idx = np.array([[0, 2, 5, 5], [6, 0, 1, 5]])
    to, po = tm(torch.tensor(idx)), pm(pt.tensor(idx))
    assert tuple(po.shape) == (2, 4, 3)
    close(po.detach().numpy(), to.detach().numpy())
    g = rand(2, 4, 3, seed=3)
    to.backward(torch.tensor(g))
    po.backward(pt.tensor(g))
    close(pm.weight.grad.numpy(), tm.weight.grad.numpy())


def test_embedding_scale_grad_by_freq_and_max_norm_match_torch():
    torch = torch_or_skip()
    w = rand(6, 4) * 2
    idx = np.array([1, 1, 3, 1, 4, 3])
    for kw in ({"scale_grad_by_freq": True}, {"max_norm": 1.0}, {"max_norm": 2.0,
                                                                 "norm_type": 1.0}):
        tw = torch.tensor(w, requires_grad=True)
        pw = pt.tensor(w, requires_grad=True)
        to = torch.nn.functional.embedding(torch.tensor(idx), tw, **kw)
        po = F.embedding(pt.tensor(idx), pw, **kw)
        close(po.detach().numpy(), to.detach().numpy())
        close(pw.detach().numpy(), tw.detach().numpy())  # rows renormalised in place
        g = rand(6, 4, seed=5)
        to.backward(torch.tensor(g))
        po.backward(pt.tensor(g))
        close(pw.grad.numpy(), tw.grad.numpy())


def test_embedding_against_numpy_and_gradcheck():
    w = rand(5, 2)
    idx = np.array([[4, 0], [2, 2]])
    close(F.embedding(pt.tensor(idx), pt.tensor(w)).numpy(), w[idx], rtol=0)
    assert F.embedding(pt.tensor(idx, dtype=pt.int32), pt.tensor(w)).shape == (2, 2, 2)
    assert tuple(F.embedding(pt.tensor(3), pt.tensor(w)).shape) == (2,)
    assert tuple(F.embedding(pt.zeros(0, 3, dtype=pt.int64), pt.tensor(w)).shape) == (0, 3, 2)
    # (with padding_idx the padding row's gradient is 0 by design, not the derivative)
    assert gradcheck(lambda t: F.embedding(pt.tensor(idx), t), (pt.tensor(w, requires_grad=True),))
    wt = pt.tensor(w, requires_grad=True)
    F.embedding(pt.tensor(idx), wt, padding_idx=2).sum().backward()
    close(wt.grad.numpy(), [[1, 1], [0, 0], [0, 0], [0, 0], [1, 1]], rtol=0)


def test_embedding_init_and_from_pretrained():
    pt.manual_seed(0)
    m = nn.Embedding(300, 40, padding_idx=3)
    w = m.weight.detach().numpy()
    assert np.all(w[3] == 0)
    rest = np.delete(w, 3, axis=0)
    assert abs(rest.mean()) < 0.02 and abs(rest.std() - 1.0) < 0.02  # N(0, 1)
    pre = pt.tensor([[1.0, 2.0], [3.0, 4.0]])
    e = nn.Embedding.from_pretrained(pre)
    assert not e.weight.requires_grad
    assert e(pt.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(pre, freeze=False).weight.requires_grad


def test_embedding_errors():
    w = pt.ones(5, 2)
    with pytest.raises(IndexError, match=r"embedding: index 7 is out of range for an embedding "
                                         r"table of 5 rows \(num_embeddings=5\)"):
        F.embedding(pt.tensor([1, 7]), w)
    with pytest.raises(IndexError, match="embedding: index -1 is out of range"):
        nn.Embedding(5, 2)(pt.tensor([-1, 2]))
    with pytest.raises(TypeError, match=r"embedding: expected indices of an integer dtype "
                                        r"\(int64 or int32\), got float32 tensor of shape \(2,\)"):
        F.embedding(pt.tensor([1.0, 2.0]), w)
    with pytest.raises(ValueError, match=r"Embedding: padding_idx must be within "
                                         r"num_embeddings \(5\)"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="embedding: weight must be 2-D"):
        F.embedding(pt.tensor([1]), pt.ones(5))
    with pytest.raises(NotImplementedError, match="embedding: sparse=True"):
        nn.Embedding(5, 2, sparse=True)(pt.tensor([1]))
    with pytest.raises(IndexError, match="embedding: index 9 is out of range"):
        F.embedding(pt.tensor([9]), w, max_norm=1.0)


def test_linear_backward_mixed_dtypes_and_partial_needs():
    """The cpu backend's fused backward returns each gradient in its input's dtype and skips
    the inputs that need none; the polyten-op rule (create_graph) agrees."""
    assert "linear" in pt.device("cpu").backend.backward_kernels
    x = pt.tensor(rand(2, 3, 4).astype(np.float32), requires_grad=True)
    w = pt.tensor(rand(5, 4, seed=1), requires_grad=True)  # float64
    b = pt.tensor(rand(5, seed=2).astype(np.float32), requires_grad=True)
    out = F.linear(x, w, b)
    assert out.dtype == pt.float64
    out.sum().backward()
    assert (x.grad.dtype, w.grad.dtype, b.grad.dtype) == (pt.float32, pt.float64, pt.float32)
    gx, gw, gb = pt.autograd.grad(F.linear(x, w, b).sum(), (x, w, b), create_graph=True)
    for fused, rule in ((x.grad, gx), (w.grad, gw), (b.grad, gb)):
        close(fused.numpy(), rule.detach().numpy(), rtol=1e-6)
    close(b.grad.numpy(), np.full(5, 6.0), rtol=0)
    frozen = pt.tensor(rand(3, 4))  # no gradient for the input
    w.grad = None
    F.linear(frozen, w).sum().backward()
    close(w.grad.numpy(), np.tile(frozen.numpy().sum(0), (5, 1)), rtol=1e-12)
