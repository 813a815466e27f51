"""Losses on embeddings and margins (triplet, cosine embedding, multi-margin, multi-label
margin and soft margin): values and gradients against PyTorch in float64, every reduction,
and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _compare(fp, ft, floats, others=(), rtol=1e-10):
    pa = [pt.tensor(a, requires_grad=True) for a in floats]
    ta = [torch.tensor(a, requires_grad=True) for a in floats]
    po = fp(*pa, *[pt.tensor(o) for o in others])
    to = ft(*ta, *[torch.tensor(o) for o in others])
    np.testing.assert_allclose(po.detach().numpy(), to.detach().numpy(), rtol=rtol,
                               atol=1e-12)
    po.sum().backward()
    to.sum().backward()
    for a, b in zip(pa, ta):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [{}, dict(margin=0.5, p=1, swap=True), dict(p=3, eps=1e-3)])
def test_triplet_margin_loss(reduction, kw):
    a, p, n = _r(5, 4), _r(5, 4, seed=1), _r(5, 4, seed=2)
    _compare(lambda *x: F.triplet_margin_loss(*x, reduction=reduction, **kw),
             lambda *x: TF.triplet_margin_loss(*x, reduction=reduction, **kw), [a, p, n])
    _compare(lambda *x: pt.nn.TripletMarginLoss(**kw)(*x),
             lambda *x: torch.nn.TripletMarginLoss(**kw)(*x), [a[0], p[0], n[0]])


def test_triplet_margin_with_distance_loss():
    a, p, n = _r(5, 4), _r(5, 4, seed=1), _r(5, 4, seed=2)
    _compare(lambda *x: F.triplet_margin_with_distance_loss(
        *x, distance_function=lambda u, v: 1 - F.cosine_similarity(u, v), swap=True),
        lambda *x: TF.triplet_margin_with_distance_loss(
            *x, distance_function=lambda u, v: 1 - TF.cosine_similarity(u, v), swap=True),
        [a, p, n])
    _compare(lambda *x: pt.nn.TripletMarginWithDistanceLoss(margin=2.0)(*x),
             lambda *x: torch.nn.TripletMarginWithDistanceLoss(margin=2.0)(*x), [a, p, n])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cosine_embedding_loss(reduction):
    x1, x2 = _r(6, 3), _r(6, 3, seed=1)
    y = np.array([1, -1, 1, -1, -1, 1])
    _compare(lambda a, b, t: F.cosine_embedding_loss(a, b, t, 0.2, reduction=reduction),
             lambda a, b, t: TF.cosine_embedding_loss(a, b, t, 0.2, reduction=reduction),
             [x1, x2], [y])
    _compare(lambda a, b, t: pt.nn.CosineEmbeddingLoss()(a, b, t),
             lambda a, b, t: torch.nn.CosineEmbeddingLoss()(a, b, t), [x1[0], x2[0]],
             [np.array(-1)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss(reduction, p):
    x, y, w = _r(5, 4), np.array([0, 3, 1, 1, 2]), np.abs(_r(4, seed=3)) + 0.5
    _compare(lambda a, t: F.multi_margin_loss(a, t, p=p, margin=0.7, reduction=reduction),
             lambda a, t: TF.multi_margin_loss(a, t, p=p, margin=0.7, reduction=reduction),
             [x], [y])
    _compare(lambda a, t, ww: F.multi_margin_loss(a, t, p=p, weight=ww, reduction=reduction),
             lambda a, t, ww: TF.multi_margin_loss(a, t, p=p, weight=ww, reduction=reduction),
             [x], [y, w])
    _compare(lambda a, t: pt.nn.MultiMarginLoss(p=p)(a, t),
             lambda a, t: torch.nn.MultiMarginLoss(p=p)(a, t), [x[0]], [np.array([2])])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss(reduction):
    x = _r(3, 5)
    y = np.array([[3, 0, -1, 1, 4], [1, 2, 3, 4, 0], [-1, 2, 0, 0, 0]])
    _compare(lambda a, t: F.multilabel_margin_loss(a, t, reduction=reduction),
             lambda a, t: TF.multilabel_margin_loss(a, t, reduction=reduction), [x], [y])
    _compare(lambda a, t: pt.nn.MultiLabelMarginLoss()(a, t),
             lambda a, t: torch.nn.MultiLabelMarginLoss()(a, t), [x[0]], [y[0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_soft_margin_loss(reduction):
    x, y, w = _r(4, 5) * 3, (_r(4, 5, seed=1) > 0).astype(np.float64), np.abs(_r(5, seed=2))
    _compare(lambda a, t: F.multilabel_soft_margin_loss(a, t, reduction=reduction),
             lambda a, t: TF.multilabel_soft_margin_loss(a, t, reduction=reduction), [x], [y])
    _compare(lambda a, t, ww: pt.nn.MultiLabelSoftMarginLoss(weight=ww)(a, t),
             lambda a, t, ww: torch.nn.MultiLabelSoftMarginLoss(weight=ww)(a, t), [x],
             [y, w])


def test_errors():
    x = pt.tensor(_r(3, 4))
    with pytest.raises(IndexError, match=r"multi_margin_loss: a target class is out of range"):
        F.multi_margin_loss(x, pt.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match=r"multilabel_margin_loss: a target class is out of"):
        F.multilabel_margin_loss(x, pt.tensor([[0, 5, -1, 0]] * 3))
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        F.multi_margin_loss(x, pt.tensor([0, 1, 1]), p=3)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_loss(x, x, x, margin=0)
    with pytest.raises(ValueError, match="target must have shape"):
        F.cosine_embedding_loss(x, x, pt.tensor([1, -1]))
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        F.multi_margin_loss(x, pt.tensor([0.0, 1.0, 1.0]))
