"""Losses (functional and modules): values and gradients against PyTorch in float64 for every
reduction and option (class weights, ignore_index, label smoothing, class probabilities,
pos_weight, log_target, ...), independent NumPy references, finite-difference gradchecks
without PyTorch, and errors naming the loss and the shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck
from _reference import close, rand, torch_or_skip

REDUCTIONS = ("none", "mean", "sum")


def _compare(pfn, tfn, arrays, grads=(0,), kw=None, tkw=None):
    """Run ``pfn``/``tfn`` on the same float64 arrays (ints stay ints); compare the loss and
    the gradients of the arguments listed in ``grads``."""
    torch = torch_or_skip()
    kw = kw or {}
    tkw = kw if tkw is None else tkw
    pin, tin = [], []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        req = i in grads and a.dtype.kind == "f"
        pin.append(pt.tensor(a, requires_grad=req))
        tin.append(torch.tensor(a, requires_grad=req))
    po = pfn(*pin, **kw)
    to = tfn(*tin, **tkw)
    assert tuple(po.shape) == tuple(to.shape)
    assert po.dtype == pt.float64
    close(po.detach().numpy(), to.detach().numpy())
    g = rand(*to.shape, seed=9) if to.ndim else np.array(1.7)
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    for i in grads:
        if np.asarray(arrays[i]).dtype.kind == "f":
            close(pin[i].grad.numpy(), tin[i].grad.numpy())
    return po


# ------------------------------------------------------------------- pointwise losses ---
_X = rand(3, 4, seed=1)
_Y = rand(3, 4, seed=2)
_X[0, :3] = [0.0, 1.0, -1.0]  # exact kinks of l1 / smooth_l1 / huber
_Y[0, :3] = [0.0, 0.0, 0.0]

POINTWISE = [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss",
                                                                {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 2.0}),
    ("soft_margin_loss", {}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", POINTWISE, ids=[f"{n}{k}" for n, k in POINTWISE])
def test_pointwise_losses_match_torch(name, kw, reduction):
    torch = torch_or_skip()
    y = np.sign(_Y) if name == "soft_margin_loss" else _Y
    grads = (0,) if name == "soft_margin_loss" else (0, 1)
    _compare(getattr(F, name), getattr(torch.nn.functional, name), [_X, y], grads,
             dict(kw, reduction=reduction))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weight_matches_torch(name, reduction):
    torch = torch_or_skip()
    w = np.abs(rand(3, 4, seed=5))
    px, tx = pt.tensor(_X, requires_grad=True), torch.tensor(_X, requires_grad=True)
    po = getattr(F, name)(px, pt.tensor(_Y), reduction=reduction, weight=pt.tensor(w))
    to = getattr(torch.nn.functional, name)(tx, torch.tensor(_Y), reduction=reduction,
                                            weight=torch.tensor(w))
    close(po.detach().numpy(), to.detach().numpy())
    po.sum().backward()
    to.sum().backward()
    close(px.grad.numpy(), tx.grad.numpy())
    with pytest.raises(ValueError, match=rf"{name}: weight of shape \(4,\) must have the "
                                         rf"input's shape \(3, 4\)"):
        getattr(F, name)(px, pt.tensor(_Y), weight=pt.ones(4))


def test_pointwise_against_numpy():
    x, y = pt.tensor(_X), pt.tensor(_Y)
    d = _X - _Y
    close(F.mse_loss(x, y).item(), np.mean(d ** 2), rtol=1e-12)
    close(F.l1_loss(x, y, reduction="sum").item(), np.abs(d).sum(), rtol=1e-12)
    ad = np.abs(d)
    close(F.smooth_l1_loss(x, y, reduction="none").numpy(),
           np.where(ad < 1, 0.5 * d ** 2, ad - 0.5), rtol=1e-12)
    close(F.huber_loss(x, y, delta=0.5, reduction="none").numpy(),
           np.where(ad < 0.5, 0.5 * d ** 2, 0.5 * (ad - 0.25)), rtol=1e-12)
    f32 = F.mse_loss(x.to(pt.float32), y.to(pt.float32))
    assert f32.dtype == pt.float32 and f32.shape == ()
    assert F.mse_loss(x, pt.tensor(np.round(_Y).astype(np.int64))).dtype == pt.float64


def test_broadcasting_target_warns_and_bad_shapes_raise():
    x = pt.ones(3, 1)
    with pytest.warns(UserWarning, match=r"mse_loss: using a target size \(3,\) that is "
                                         r"different to the input size \(3, 1\)"):
        out = F.mse_loss(x, pt.zeros(3), reduction="none")
    assert tuple(out.shape) == (3, 3)
    with pytest.raises(ValueError, match=r"l1_loss: input of shape \(3,\) and target of shape "
                                         r"\(4,\) do not broadcast"):
        F.l1_loss(pt.ones(3), pt.ones(4))
    with pytest.raises(TypeError, match="mse_loss: expected floating-point input and target, "
                                        "got int64 and int64"):
        F.mse_loss(pt.tensor([1, 2]), pt.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"mse_loss: 'avg' is not a valid value for reduction"):
        F.mse_loss(pt.ones(2), pt.ones(2), reduction="avg")
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative"):
        F.smooth_l1_loss(pt.ones(2), pt.ones(2), beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss: delta must be positive"):
        F.huber_loss(pt.ones(2), pt.ones(2), delta=0.0)
    with pytest.raises(TypeError, match="mse_loss: target must be a tensor"):
        F.mse_loss(pt.ones(2), [1.0, 2.0])


def test_legacy_size_average_and_reduce():
    torch = torch_or_skip()
    x, y = pt.tensor(_X), pt.tensor(_Y)
    for sa, red in ((False, None), (None, False), (True, True)):
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            ours = F.mse_loss(x, y, size_average=sa, reduce=red)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.nn.functional.mse_loss(torch.tensor(_X), torch.tensor(_Y),
                                                  size_average=sa, reduce=red)
        close(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------- classification -------
def _logits_targets(shape, seed=0, ignore=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = rng.integers(0, C, size=tshape)
    if ignore and t.size > 1:
        t.reshape(-1)[::3] = -100
    return x, t


CE_CASES = [
    ({}, False), ({"weight": True}, False), ({}, True), ({"weight": True}, True),
    ({"label_smoothing": 0.1}, False), ({"label_smoothing": 0.2, "weight": True}, True),
    ({"ignore_index": 2}, False),
]


@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 3, 4), (2, 4, 2, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts,ignore", CE_CASES, ids=[f"{o}-ign{i}" for o, i in CE_CASES])
def test_cross_entropy_indices_matches_torch(shape, reduction, opts, ignore):
    torch = torch_or_skip()
    x, t = _logits_targets(shape, seed=len(shape), ignore=ignore)
    C = shape[1] if len(shape) > 1 else shape[0]
    kw = dict(opts, reduction=reduction)
    tkw = dict(kw)
    if opts.get("weight"):
        w = np.abs(rand(C, seed=4)) + 0.1
        kw["weight"], tkw["weight"] = pt.tensor(w), torch.tensor(w)
    _compare(F.cross_entropy, torch.nn.functional.cross_entropy, [x, t], (0,), kw, tkw)
    if "label_smoothing" not in opts:
        logp = torch.log_softmax(torch.tensor(x), 1 if len(shape) > 1 else 0).numpy()
        _compare(F.nll_loss, torch.nn.functional.nll_loss, [logp, t], (0,), kw, tkw)


@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 3, 4)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"label_smoothing": 0.3},
                                  {"weight": True, "label_smoothing": 0.1}], ids=str)
def test_cross_entropy_probabilities_matches_torch(shape, reduction, opts):
    torch = torch_or_skip()
    x = rand(*shape, seed=6)
    cdim = 1 if len(shape) > 1 else 0
    p = torch.softmax(torch.tensor(rand(*shape, seed=7)), cdim).numpy()
    C = shape[cdim]
    kw = dict(opts, reduction=reduction)
    tkw = dict(kw)
    if opts.get("weight"):
        w = np.abs(rand(C, seed=4)) + 0.1
        kw["weight"], tkw["weight"] = pt.tensor(w), torch.tensor(w)
    _compare(F.cross_entropy, torch.nn.functional.cross_entropy, [x, p], (0, 1), kw, tkw)


def test_cross_entropy_against_numpy():
    x, t = _logits_targets((6, 4), seed=3)
    t[1] = -100
    w = np.array([0.5, 1.0, 2.0, 0.25])
    logp = x - x.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    keep = t != -100
    tt = np.where(keep, t, 0)
    picked = logp[np.arange(6), tt]
    ref_none = np.where(keep, -picked * w[tt], 0.0)
    ref_mean = ref_none.sum() / (w[tt] * keep).sum()
    out = F.cross_entropy(pt.tensor(x), pt.tensor(t), weight=pt.tensor(w))
    close(out.item(), ref_mean, rtol=1e-12)
    close(F.cross_entropy(pt.tensor(x), pt.tensor(t), weight=pt.tensor(w),
                           reduction="none").numpy(), ref_none, rtol=1e-12)
    # label smoothing: (1 - e) * nll + e / C * sum_c -w_c logp_c, same weighted denominator
    e = 0.2
    smooth = np.where(keep, -(logp * w).sum(1), 0.0)
    ref = ((1 - e) * ref_none.sum() + e / 4 * smooth.sum()) / (w[tt] * keep).sum()
    close(F.cross_entropy(pt.tensor(x), pt.tensor(t), weight=pt.tensor(w),
                           label_smoothing=e).item(), ref, rtol=1e-12)
    # float32 logits: float32 loss; int32 targets work
    o32 = F.cross_entropy(pt.tensor(x.astype(np.float32)), pt.tensor(t.astype(np.int32)))
    assert o32.dtype == pt.float32
    close(o32.item(), F.cross_entropy(pt.tensor(x), pt.tensor(t)).item(), rtol=1e-5)


def test_cross_entropy_edge_cases():
    x = pt.tensor(rand(4, 3))
    all_ignored = F.cross_entropy(x, pt.tensor([-100] * 4))
    assert np.isnan(all_ignored.item())
    assert F.cross_entropy(x, pt.tensor([-100] * 4), reduction="sum").item() == 0.0
    empty = F.cross_entropy(pt.zeros(0, 3), pt.zeros(0, dtype=pt.int64))
    assert np.isnan(empty.item())
    assert F.cross_entropy(pt.zeros(0, 3), pt.zeros(0, dtype=pt.int64),
                           reduction="sum").item() == 0.0
    # a non-contiguous (transposed) input
    xt = pt.tensor(rand(3, 4)).T
    close(F.cross_entropy(xt, pt.tensor([0, 1, 2, 0])).item(),
           F.cross_entropy(xt.contiguous(), pt.tensor([0, 1, 2, 0])).item(), rtol=1e-12)
    # extreme logits stay finite
    big = pt.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], requires_grad=True)
    loss = F.cross_entropy(big, pt.tensor([0, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(big.grad.numpy()).all()


def test_cross_entropy_errors():
    x = pt.ones(4, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(4,\) with "
                                         r"class indices, got \(4, 3\)"):
        F.cross_entropy(x, pt.zeros(4, 3, dtype=pt.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(4,\) with "
                                         r"class indices, got \(5,\)"):
        F.cross_entropy(x, pt.zeros(5, dtype=pt.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: a floating target holds class "
                                         r"probabilities and must have the input's shape "
                                         r"\(4, 3\), got \(4,\)"):
        F.cross_entropy(x, pt.zeros(4))
    with pytest.raises(IndexError, match=r"cross_entropy: target 5 is out of bounds: class "
                                         r"indices must be in \[0, 2\]"):
        F.cross_entropy(x, pt.tensor([0, 1, 5, 1]))
    with pytest.raises(IndexError, match=r"cross_entropy: target -5 is out of bounds"):
        F.cross_entropy(x, pt.tensor([0, 1, -5, 1]))
    with pytest.raises(IndexError, match=r"nll_loss: target 3 is out of bounds"):
        F.nll_loss(x, pt.tensor([0, 3, -100, 1]))
    with pytest.raises(TypeError, match=r"cross_entropy: expected a target of class indices "
                                        r"\(an integer dtype such as int64\) of shape \(4,\), "
                                        r"got a bool tensor"):
        F.cross_entropy(x, pt.zeros(4, dtype=pt.bool))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must be a 1-D tensor of 3 "
                                         r"class weights.*got shape \(4,\)"):
        F.cross_entropy(x, pt.tensor([0, 1, 2, 1]), weight=pt.ones(4))
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be a number in "
                                         r"\[0, 1\]"):
        F.cross_entropy(x, pt.tensor([0, 1, 2, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="cross_entropy: ignore_index is not supported for "
                                         "floating point target"):
        F.cross_entropy(x, pt.ones(4, 3) / 3, ignore_index=1)
    with pytest.raises(ValueError, match="cross_entropy: input must have a class dimension"):
        F.cross_entropy(pt.tensor(1.0), pt.tensor(0))
    with pytest.raises(TypeError, match="nll_loss: expected a floating-point input, got int64"):
        F.nll_loss(pt.ones(4, 3, dtype=pt.int64), pt.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"nll_loss: expected target of shape \(2, 5\) with "
                                         r"class indices, got \(2, 4\)"):
        F.nll_loss(pt.ones(2, 3, 5), pt.zeros(2, 4, dtype=pt.int64))


def test_classification_gradcheck_without_torch():
    x = pt.tensor(rand(3, 4, seed=1), requires_grad=True)
    t = pt.tensor([1, -100, 3])
    w = pt.tensor([0.5, 1.0, 2.0, 0.7])
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.2, "weight": w}, {"reduction": "none"},
               {"reduction": "sum", "label_smoothing": 0.1}):
        assert gradcheck(lambda a: F.cross_entropy(a, t, **kw), (x,))
        assert gradcheck(lambda a: F.nll_loss(a, t, **{k: v for k, v in kw.items()
                                                        if k != "label_smoothing"}), (x,))
    p = pt.tensor([[0.2, 0.3, 0.1, 0.4], [0.25] * 4, [0.7, 0.1, 0.1, 0.1]],
                  dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), (x, p))
    x3 = pt.tensor(rand(2, 3, 2, seed=2), requires_grad=True)
    assert gradcheck(lambda a: F.cross_entropy(a, pt.tensor([[0, 2], [1, 1]])), (x3,))


# --------------------------------------------------------------------- binary losses ---
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_torch(reduction, weighted):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, (3, 4))
    p[0, :2] = [0.0, 1.0]  # saturated probabilities: logs clamped at -100, finite gradients
    t = rng.uniform(0, 1, (3, 4))
    t[0, :2] = [0.0, 1.0]
    kw, tkw = {"reduction": reduction}, {"reduction": reduction}
    if weighted:
        w = rng.uniform(0.5, 2, (4,))
        kw["weight"], tkw["weight"] = pt.tensor(w), torch.tensor(w)
    out = _compare(F.binary_cross_entropy, torch.nn.functional.binary_cross_entropy, [p, t],
                   (0, 1), kw, tkw)
    assert np.isfinite(out.detach().numpy()).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", ["plain", "pos_weight", "weight", "both"])
def test_bce_with_logits_matches_torch(reduction, opts):
    torch = torch_or_skip()
    x = rand(3, 4, seed=3) * 4
    x[0, :4] = [0.0, 40.0, -40.0, 800.0]  # the kink of the stable form and saturation
    t = np.random.default_rng(4).uniform(0, 1, (3, 4))
    kw, tkw = {"reduction": reduction}, {"reduction": reduction}
    if opts in ("pos_weight", "both"):
        pw = np.array([0.5, 1.0, 2.0, 3.0])
        kw["pos_weight"], tkw["pos_weight"] = pt.tensor(pw), torch.tensor(pw)
    if opts in ("weight", "both"):
        w = np.abs(rand(3, 1, seed=5))
        kw["weight"], tkw["weight"] = pt.tensor(w), torch.tensor(w)
    _compare(F.binary_cross_entropy_with_logits,
             torch.nn.functional.binary_cross_entropy_with_logits, [x, t], (0, 1), kw, tkw)


def test_binary_against_numpy_and_gradcheck():
    x = rand(2, 3, seed=6)
    t = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.5]])
    sig = 1 / (1 + np.exp(-x))
    ref = -(t * np.log(sig) + (1 - t) * np.log(1 - sig))
    close(F.binary_cross_entropy_with_logits(pt.tensor(x), pt.tensor(t),
                                              reduction="none").numpy(), ref, rtol=1e-10)
    close(F.binary_cross_entropy(pt.tensor(sig), pt.tensor(t), reduction="none").numpy(), ref,
           rtol=1e-10)
    px = pt.tensor(x, requires_grad=True)
    pt_ = pt.tensor(t, requires_grad=True)
    pw = pt.tensor([1.0, 2.0, 0.5])
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw),
                     (px, pt_))
    ps = pt.tensor(sig, requires_grad=True)
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, weight=pw), (ps, pt_))


def test_binary_errors():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: all elements of input should "
                                         r"be between 0 and 1"):
        F.binary_cross_entropy(pt.tensor([0.5, 1.5]), pt.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: target of shape \(3,\) must "
                                         r"have the input's shape \(2,\)"):
        F.binary_cross_entropy(pt.tensor([0.5, 0.5]), pt.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target size "
                                         r"\(2, 1\) must be the same as input size \(2,\)"):
        F.binary_cross_entropy_with_logits(pt.ones(2), pt.ones(2, 1))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight of "
                                         r"shape \(3,\) must broadcast"):
        F.binary_cross_entropy_with_logits(pt.ones(2, 4), pt.ones(2, 4), pos_weight=pt.ones(3))


# ---------------------------------------------------------------------------- kl_div ---
@pytest.mark.parametrize("reduction", REDUCTIONS + ("batchmean",))
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    torch = torch_or_skip()
    inp = torch.log_softmax(torch.tensor(rand(3, 4, seed=1)), 1).numpy()
    tgt = torch.softmax(torch.tensor(rand(3, 4, seed=2)), 1).numpy()
    tgt[0, 1] = 0.0  # xlogy(0, 0) = 0
    if log_target:
        tgt = np.log(tgt + 0.01)
    kw = {"reduction": reduction, "log_target": log_target}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(F.kl_div, torch.nn.functional.kl_div, [inp, tgt], (0,), kw)
    if reduction == "mean":
        with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
            F.kl_div(pt.tensor(inp), pt.tensor(tgt), reduction="mean", log_target=log_target)


def test_kl_div_against_numpy():
    inp, tgt = np.log([[0.2, 0.8], [0.5, 0.5]]), np.array([[0.0, 1.0], [0.3, 0.7]])
    ref = np.where(tgt > 0, tgt * np.log(np.where(tgt > 0, tgt, 1)), 0) - tgt * inp
    close(F.kl_div(pt.tensor(inp), pt.tensor(tgt), reduction="batchmean").item(),
           ref.sum() / 2, rtol=1e-12)
    assert gradcheck(lambda a: F.kl_div(a, pt.tensor(tgt), reduction="batchmean"),
                     (pt.tensor(inp, requires_grad=True),))


# ------------------------------------------------------------------------ other losses ---
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_other_losses_match_torch(reduction):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x, y = rand(3, 4, seed=1), np.abs(rand(3, 4, seed=2)) * 3
    for kw in ({}, {"log_input": False}, {"full": True}):
        xin = np.abs(x) + 0.1 if kw.get("log_input") is False else x
        _compare(F.poisson_nll_loss, tf.poisson_nll_loss, [xin, y], (0,),
                 dict(kw, reduction=reduction))
    var = np.abs(rand(3, 4, seed=3)) + 0.1
    var[0, 0] = 1e-8  # below eps: clamped
    for v in (var, var[:, :1], var[:, 0]):
        _compare(F.gaussian_nll_loss, tf.gaussian_nll_loss, [x, y, v], (0, 1, 2),
                 {"reduction": reduction, "full": True})
    sign = np.sign(rand(3, 4, seed=4))
    _compare(F.margin_ranking_loss, tf.margin_ranking_loss, [x, rand(3, 4, seed=5), sign],
             (0, 1), {"reduction": reduction, "margin": 0.3})
    _compare(F.hinge_embedding_loss, tf.hinge_embedding_loss, [x, sign], (0,),
             {"reduction": reduction, "margin": 0.5})


# --------------------------------------------------------------------------- modules ---
def test_loss_modules_match_functional_and_torch_repr():
    torch = torch_or_skip()
    w = [1.0, 2.0, 0.5]
    pairs = [
        (nn.MSELoss(), torch.nn.MSELoss()), (nn.L1Loss(reduction="sum"),
                                             torch.nn.L1Loss(reduction="sum")),
        (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5)),
        (nn.HuberLoss(delta=2.0), torch.nn.HuberLoss(delta=2.0)),
        (nn.CrossEntropyLoss(weight=pt.tensor(w), label_smoothing=0.1, ignore_index=1),
         torch.nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=0.1,
                                   ignore_index=1)),
        (nn.NLLLoss(weight=pt.tensor(w)), torch.nn.NLLLoss(weight=torch.tensor(w))),
        (nn.BCELoss(), torch.nn.BCELoss()),
        (nn.BCEWithLogitsLoss(pos_weight=pt.tensor(w)),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))),
        (nn.KLDivLoss(reduction="batchmean", log_target=True),
         torch.nn.KLDivLoss(reduction="batchmean", log_target=True)),
        (nn.PoissonNLLLoss(), torch.nn.PoissonNLLLoss()),
        (nn.SoftMarginLoss(), torch.nn.SoftMarginLoss()),
    ]
    x = rand(4, 3, seed=1)
    probs = 1 / (1 + np.exp(-x))
    idx = np.array([0, 2, 1, 1])
    for pm, tm in pairs:
        assert repr(pm) == repr(tm)
        name = type(pm).__name__
        if name in ("CrossEntropyLoss", "NLLLoss"):
            args = [x, idx]
        elif name == "BCELoss":
            args = [probs, (probs > 0.5).astype(float)]
        elif name == "KLDivLoss":
            args = [np.log(probs), np.log(probs[::-1].copy())]
        else:
            args = [x, probs]
        _compare(pm.double(), tm.double(), args, (0,))
    assert list(pairs[4][0].state_dict()) == list(pairs[4][1].state_dict()) == ["weight"]
    assert list(pairs[7][0].state_dict()) == ["pos_weight"]
    ce = nn.CrossEntropyLoss(weight=pt.ones(3)).double()
    assert ce.weight.dtype == pt.float64  # buffers follow .to()
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert nn.MSELoss(reduce=False).reduction == "none"


# ------------------------------------------- fused nll_loss / cross_entropy vs defaults ---
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 4, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fn, node", [
    (lambda x, t, **kw: F.cross_entropy(x, t, **kw), "CrossEntropyBackward0"),
    (lambda x, t, **kw: F.nll_loss(F.log_softmax(x, 1 if x.ndim > 1 else 0), t, **kw),
     "NllLossBackward0")], ids=["cross_entropy", "nll_loss"])
def test_loss_fused_and_default_agree(shape, reduction, weighted, fn, node):
    """The cpu backend fuses cross_entropy, nll_loss and log_softmax (forward and backward);
    a backend without the kernels runs the polyten-op defaults and the derivative formulas:
    same values and gradients, one node per op either way -- and both equal NumPy's float64
    softmax - one_hot formula."""
    from conftest import cpu_clone
    x, t = _logits_targets(shape, seed=5, ignore=True)
    w = np.abs(rand(shape[1] if len(shape) > 1 else shape[0], seed=6)) + 0.1
    g = rand(*t.shape, seed=7) if reduction == "none" else np.array(0.7)
    results = []
    with cpu_clone("nofusednll", drop=("cross_entropy", "nll_loss", "log_softmax")) as dev:
        for device in ("cpu", dev):
            px = pt.tensor(x, device=device, requires_grad=True)
            kw = {"reduction": reduction}
            if weighted:
                kw["weight"] = pt.tensor(w, device=device)
            out = fn(px, pt.tensor(t, device=device), **kw)
            assert type(out.grad_fn).__name__ == node
            out.backward(pt.tensor(g, device=device))
            results.append((out.detach().to("cpu").numpy(), px.grad.to("cpu").numpy()))
    close(results[0][0], results[1][0], rtol=1e-12)
    close(results[0][1], results[1][1], rtol=1e-12)
    # the reference: d/dx = c * (softmax(x) - one_hot(t)) along the class dim, where c is
    # each target's weight times g (0 when ignored), over the summed weights for 'mean'
    cd = 1 if x.ndim > 1 else 0
    valid = t != -100
    tt = np.where(valid, t, 0)
    c = valid * (w[tt] if weighted else 1.0)
    if reduction == "mean":
        c = c / c.sum()
    c = np.expand_dims(c * g, cd)
    p = np.exp(x - x.max(cd, keepdims=True))
    p /= p.sum(cd, keepdims=True)
    onehot = np.moveaxis(np.eye(x.shape[cd])[tt], -1, cd)
    close(results[0][1], c * (p - onehot), rtol=1e-12, atol=1e-15)


def test_cross_entropy_double_backward():
    from polyten.autograd import gradgradcheck
    x = pt.tensor(rand(3, 4, seed=2), requires_grad=True)
    t = pt.tensor([1, -100, 3])
    w = pt.tensor([0.5, 1.0, 2.0, 0.7])
    assert gradgradcheck(lambda a: F.cross_entropy(a, t, weight=w), (x,))
    assert gradgradcheck(lambda a: F.cross_entropy(a, t, reduction="none"), (x,))


def test_all_ignored_gradient_is_zero():
    torch = torch_or_skip()
    x = rand(3, 4)
    px, tx = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    po = F.cross_entropy(px, pt.tensor([-100] * 3))
    to = torch.nn.functional.cross_entropy(tx, torch.tensor([-100] * 3))
    assert np.isnan(po.item()) and np.isnan(to.item())
    po.backward()
    to.backward()
    close(px.grad.numpy(), tx.grad.numpy())
    assert not px.grad.numpy().any()


def test_nll_and_cross_entropy_skip_ignored_targets_whatever_class_0_holds():
    """An ignored target contributes nothing, as in torch, even where the class it is
    mapped to for the lookup (0) has a -inf log-probability or an infinite weight (the
    products with 0 were NaN); values and gradients against torch."""
    torch = pytest.importorskip("torch")
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(3), 4))
    x[1, 0] = -np.inf
    t = np.array([2, -100, 1, -100])
    for weight in (None, np.array([np.inf, 1.0, 2.0])):
        for red in ("none", "sum", "mean"):
            px = pt.tensor(x, requires_grad=True)
            tx = torch.tensor(x, requires_grad=True)
            kw = {} if weight is None else {"weight": weight}
            got = F.nll_loss(px, pt.tensor(t), reduction=red,
                             **{k: pt.tensor(v) for k, v in kw.items()})
            want = torch.nn.functional.nll_loss(tx, torch.tensor(t), reduction=red,
                                                **{k: torch.tensor(v) for k, v in kw.items()})
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
            got.sum().backward()
            want.sum().backward()
            np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    logits = np.random.default_rng(1).standard_normal((4, 3))
    px, tx = pt.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    w = np.array([np.inf, 1.0, 2.0])
    ce = F.cross_entropy(px, pt.tensor(t), weight=pt.tensor(w))
    tce = torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w))
    assert np.isfinite(ce.item()) and ce.item() == pytest.approx(tce.item(), rel=1e-12)
    ce.backward()
    tce.backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
