"""3-D adaptive pooling, LP pooling, max-unpooling, ``EmbeddingBag``, ``rrelu`` /
``RReLU`` and ``gumbel_softmax``: values and gradients against PyTorch (float64) where the
result is deterministic, distribution checks where it is random, and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


def _cmp(fp, ft, x, grad=True, rtol=1e-10):
    px, tx = pt.tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)
    po, to = fp(px), ft(tx)
    pos, tos = (po, to) if isinstance(po, tuple) else ((po,), (to,))
    for a, b in zip(pos, tos):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol,
                                   atol=1e-12)
    if grad:
        w = _rng(9).standard_normal(tuple(tos[0].shape))
        (pos[0] * pt.tensor(w)).sum().backward()
        (tos[0] * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-12)


def test_adaptive_pools_3d():
    x = _rng().standard_normal((2, 3, 7, 6, 5))
    _cmp(lambda v: F.adaptive_avg_pool3d(v, (3, 2, 4)),
         lambda v: TF.adaptive_avg_pool3d(v, (3, 2, 4)), x)
    _cmp(lambda v: F.adaptive_max_pool3d(v, (3, None, 4), True),
         lambda v: TF.adaptive_max_pool3d(v, (3, None, 4), True), x)
    _cmp(lambda v: pt.nn.AdaptiveMaxPool3d(2)(v), lambda v: torch.nn.AdaptiveMaxPool3d(2)(v), x)
    assert repr(pt.nn.AdaptiveAvgPool3d((1, 2, 3))) == repr(torch.nn.AdaptiveAvgPool3d((1, 2, 3)))


@pytest.mark.parametrize("m,p,kw", [(1, 1.5, dict(kernel_size=3)),
                                    (2, 2, dict(kernel_size=3, stride=2)),
                                    (2, 3, dict(kernel_size=(2, 3), ceil_mode=True)),
                                    (3, 2, dict(kernel_size=2))])
def test_lp_pool(m, p, kw):
    shape = {1: (2, 3, 9), 2: (2, 3, 8, 7), 3: (1, 2, 4, 6, 4)}[m]
    x = np.abs(_rng().standard_normal(shape)) + 0.1
    _cmp(lambda v: getattr(F, f"lp_pool{m}d")(v, p, **kw),
         lambda v: getattr(TF, f"lp_pool{m}d")(v, p, **kw), x)
    pm, tm = getattr(pt.nn, f"LPPool{m}d")(p, **kw), getattr(torch.nn, f"LPPool{m}d")(p, **kw)
    assert repr(pm) == repr(tm)
    _cmp(pm, tm, x)


@pytest.mark.parametrize("m,shape,kw,out", [
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1), None),
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1), (10,)),
    (2, (2, 3, 8, 6), dict(kernel_size=2), None),
    (3, (1, 2, 4, 6, 4), dict(kernel_size=2, stride=(2, 3, 2)), (4, 6, 4)),
])
def test_max_unpool(m, shape, kw, out):
    x = _rng().standard_normal(shape)
    pv, pi = getattr(F, f"max_pool{m}d")(pt.tensor(x), return_indices=True, **kw)
    tv, ti = getattr(TF, f"max_pool{m}d")(torch.tensor(x), return_indices=True, **kw)
    _cmp(lambda v: getattr(F, f"max_unpool{m}d")(v, pi, output_size=out, **kw),
         lambda v: getattr(TF, f"max_unpool{m}d")(v, ti, output_size=out, **kw), tv.numpy())
    pm = getattr(pt.nn, f"MaxUnpool{m}d")(**kw)
    tm = getattr(torch.nn, f"MaxUnpool{m}d")(**kw)
    assert repr(pm) == repr(tm)
    _cmp(lambda v: pm(v, pi, out), lambda v: tm(v, ti, out), tv.numpy())


def test_max_unpool_errors():
    v, i = F.max_pool2d(pt.randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match=r"output_size \(9, 4\) is invalid"):
        F.max_unpool2d(v, i, 2, output_size=(9, 4))
    with pytest.raises(ValueError, match="indices must be a tensor of the input's shape"):
        F.max_unpool2d(v, i[..., :1], 2)


_BAG_LAYOUTS = ["2d", "offsets", "offsets_last", "padding", "offsets_last_short",
                "offsets_padding", "empty_input", "many_bags"]


def _bag_case(layout):
    """``(input, offsets, keywords)`` of an embedding_bag call."""
    if layout == "2d":
        return np.array([[1, 2, 4], [4, 3, 9]]), None, {}
    if layout == "offsets":  # an empty bag
        return np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4, 4, 6]), {}
    if layout == "offsets_last":
        return (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 5, 8]),
                dict(include_last_offset=True))
    if layout == "offsets_last_short":  # PyTorch's last bag runs to the end of input anyway
        return (np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 5, 7]),
                dict(include_last_offset=True))
    if layout == "offsets_padding":  # a bag of padding only, and an empty one
        return (np.array([1, 0, 4, 0, 0, 3, 0, 9]), np.array([0, 2, 3, 3, 5]),
                dict(padding_idx=0))
    if layout == "empty_input":
        return np.array([], dtype=np.int64), np.array([0, 0]), {}
    if layout == "many_bags":  # repeated indices (ties), empty bags, 40 bags of 0..12
        rng = _rng(7)
        offs = np.sort(rng.integers(0, 200, 40))
        offs[0] = 0
        return rng.integers(0, 10, 200), offs, {}
    return np.array([[1, 0, 4], [0, 0, 0], [4, 0, 9]]), None, dict(padding_idx=0)


def _check_bag(mode, layout):
    w = _rng().standard_normal((10, 4))
    inp, offs, kw = _bag_case(layout)

    def run(lib, fn):
        return lambda ww: fn(lib.tensor(inp), ww,
                             None if offs is None else lib.tensor(offs), mode=mode, **kw)
    _cmp(run(pt, F.embedding_bag), run(torch, TF.embedding_bag), w)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("layout", _BAG_LAYOUTS)
def test_embedding_bag(mode, layout):
    _check_bag(mode, layout)


@pytest.mark.parametrize("layout", [x for x in _BAG_LAYOUTS if x not in ("2d", "padding")])
def test_embedding_bag_max_through_the_default_segment_argmax(layout):
    """'max' of a 1-D input on a backend without a ``segment_argmax`` kernel: the op table's
    default (two stable sorts) gives the same values and gradients as PyTorch."""
    from conftest import cpu_clone
    with cpu_clone("nosegmax", drop=("segment_argmax",)) as dev:
        w = _rng().standard_normal((10, 4))
        inp, offs, kw = _bag_case(layout)
        pw = pt.tensor(w, device=dev, requires_grad=True)
        out = F.embedding_bag(pt.tensor(inp, device=dev), pw,
                              pt.tensor(offs, device=dev), mode="max", **kw)
        tw = torch.tensor(w, requires_grad=True)
        ref = TF.embedding_bag(torch.tensor(inp), tw, torch.tensor(offs), mode="max", **kw)
        g = _rng(2).standard_normal(tuple(ref.shape))
        out.backward(pt.tensor(g, device=dev))
        ref.backward(torch.tensor(g))
        np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy())
        np.testing.assert_allclose(pw.grad.cpu().numpy(), tw.grad.numpy())


def test_embedding_bag_per_sample_weights_and_module():
    w = _rng().standard_normal((10, 4))
    inp, offs = np.array([1, 2, 4, 5, 4, 3]), np.array([0, 2])
    psw = _rng(1).standard_normal(6)
    _cmp(lambda ww: F.embedding_bag(pt.tensor(inp), ww, pt.tensor(offs), mode="sum",
                                    per_sample_weights=pt.tensor(psw)),
         lambda ww: TF.embedding_bag(torch.tensor(inp), ww, torch.tensor(offs), mode="sum",
                                     per_sample_weights=torch.tensor(psw)), w)
    pm = pt.nn.EmbeddingBag.from_pretrained(pt.tensor(w), mode="max", freeze=False)
    tm = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode="max", freeze=False)
    assert repr(pm) == repr(tm)
    np.testing.assert_allclose(pm(pt.tensor(inp), pt.tensor(offs)).detach().numpy(),
                               tm(torch.tensor(inp), torch.tensor(offs)).detach().numpy())
    bag = pt.nn.EmbeddingBag(6, 3, padding_idx=2)
    assert (bag.weight[2] == 0).all() and bag(pt.tensor([[0, 1]])).shape == (1, 3)
    with pytest.raises(NotImplementedError, match="only supported with mode='sum'"):
        F.embedding_bag(pt.tensor(inp), pt.tensor(w), pt.tensor(offs), mode="mean",
                        per_sample_weights=pt.tensor(psw))
    with pytest.raises(ValueError, match="needs 1-D offsets"):
        F.embedding_bag(pt.tensor(inp), pt.tensor(w))


def test_rrelu():
    x = _rng().standard_normal((200,))
    _cmp(lambda v: F.rrelu(v, 0.1, 0.3), lambda v: TF.rrelu(v, 0.1, 0.3), x)  # evaluation
    pt.manual_seed(0)
    y = F.rrelu(pt.tensor(x), 0.1, 0.3, training=True).numpy()
    neg = x < 0
    ratio = y[neg] / x[neg]
    assert np.all((ratio >= 0.1) & (ratio <= 0.3)) and np.ptp(ratio) > 0.05
    np.testing.assert_array_equal(y[~neg], x[~neg])
    m = pt.nn.RReLU(0.2, 0.4)
    assert repr(m) == repr(torch.nn.RReLU(0.2, 0.4))
    m.eval()
    np.testing.assert_allclose(m(pt.tensor(x)).numpy(), np.where(x >= 0, x, 0.3 * x))
    with pytest.raises(ValueError, match="lower <= upper"):
        F.rrelu(pt.tensor(x), 0.5, 0.1)


def test_gumbel_softmax():
    pt.manual_seed(1)
    logits = pt.tensor([[1.0, 0.0, -1.0]] * 4000, dtype=pt.float64, requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(1).detach().numpy(), 1.0, rtol=1e-12)
    hard = F.gumbel_softmax(logits, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and np.all(h.sum(1) == 1)
    freq = h.mean(0)
    p = np.exp([1.0, 0.0, -1.0]) / np.exp([1.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(freq, p, atol=0.03)  # the argmax follows softmax(logits)
    (hard * pt.tensor(np.arange(3.0))).sum().backward()
    assert np.abs(logits.grad.numpy()).sum() > 0  # straight-through: the soft gradient
