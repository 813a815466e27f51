"""``ctc_loss`` / ``nn.CTCLoss``: losses and gradients against PyTorch in float64 (every
reduction, padded and concatenated targets, varying lengths, repeated labels, blank != 0,
zero_infinity, unbatched input), a brute-force sum over all alignments that needs no PyTorch,
polyten's gradcheck, and the errors.

Gradients w.r.t. log_probs: PyTorch's backward returns the gradient w.r.t. the logits that
log_softmax normalised (pytorch/pytorch#52241, #181534): ``exp(log_probs) - posterior``, where
the derivative of the loss as a function of log_probs is ``-posterior``; polyten differentiates
the loss itself.  The two agree through ``log_softmax`` (tested on the logits) and differ by
``weight * exp(log_probs)`` on the frames inside each input length (tested exactly).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck
from _reference import close, rand, torch_or_skip

REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(autouse=True, params=["kernels", "formula", "default"])
def ctc_path(request):
    """Every test three times: the cpu backend's ctc_alpha kernel and its alpha-beta backward
    kernel; a cpu clone with the forward kernel only (the backward is the derivative rule in
    polyten ops, as on any backend without a fused backward, and for double backward); a
    clone without the kernel (the op's polyten-op default, differentiated by autograd)."""
    if request.param == "kernels":
        yield
        return
    from conftest import cpu_clone
    drop = ("ctc_alpha",) if request.param == "default" else ()
    with cpu_clone(f"ctc_{request.param}", drop=drop) as dev:
        with pt.backend(dev.type):
            yield


def _run_both(z, targets, il, tl, reduction, **kw):
    """Loss and gradients w.r.t. the logits ``z`` (through log_softmax) and w.r.t. the
    log-probabilities, for polyten and torch."""
    torch = torch_or_skip()
    out = {}
    for lib in ("pt", "torch"):
        if lib == "pt":
            logits = pt.tensor(z, requires_grad=True)
            lp = logits.log_softmax(-1)
            lp.retain_grad()
            loss = F.ctc_loss(lp, pt.tensor(targets), il, tl, reduction=reduction, **kw)
        else:
            logits = torch.tensor(z, requires_grad=True)
            lp = logits.log_softmax(-1)
            lp.retain_grad()
            loss = torch.nn.functional.ctc_loss(lp, torch.tensor(targets), il, tl,
                                                reduction=reduction, **kw)
        g = rand(*loss.shape, seed=5) if loss.ndim else np.array(1.3)
        loss.backward(torch.tensor(g) if lib == "torch" else pt.tensor(g))
        out[lib] = (loss.detach().numpy(), logits.grad.numpy(), lp.grad.numpy(),
                    lp.detach().numpy(), g)
    return out


def _check(z, targets, il, tl, reduction, **kw):
    out = _run_both(z, targets, il, tl, reduction, **kw)
    p_loss, p_gz, p_glp, lp, g = out["pt"]
    t_loss, t_gz, t_glp, _, _ = out["torch"]
    assert p_loss.shape == t_loss.shape
    close(p_loss, t_loss, rtol=1e-10)
    close(p_gz, t_gz, rtol=1e-9, atol=1e-12)
    assert np.isfinite(p_glp).all()
    # torch's log_probs gradient = polyten's + weight * exp(log_probs) on the frames read
    batched = lp.ndim == 3
    lp3 = lp if batched else lp[:, None]
    T, N = lp3.shape[:2]
    il_ = np.atleast_1d(np.asarray(il))
    tl_ = np.atleast_1d(np.asarray(tl))
    if reduction == "mean":
        w = g / (N * np.maximum(tl_, 1))
    elif reduction == "sum":
        w = np.full(N, float(g))
    else:
        w = np.broadcast_to(g, (N,)).astype(float)
    if kw.get("zero_infinity"):
        w = np.where(np.isinf(np.atleast_1d(_run_none(z, targets, il, tl, **kw))), 0.0, w)
    valid = np.arange(T)[:, None] < il_[None, :]
    extra = valid[:, :, None] * w[None, :, None] * np.exp(lp3)
    close(p_glp, t_glp - (extra if batched else extra[:, 0]), rtol=1e-9, atol=1e-12)
    return p_loss


def _run_none(z, targets, il, tl, **kw):
    kw = dict(kw, zero_infinity=False)
    lp = pt.tensor(z).log_softmax(-1)
    return F.ctc_loss(lp, pt.tensor(targets), il, tl, reduction="none", **kw).numpy()


# ------------------------------------------------------------------------ vs PyTorch -----
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_padded_varying_lengths(reduction):
    z = rand(9, 4, 6, seed=1)
    targets = np.array([[1, 2, 3, 4], [5, 5, 0, 0], [2, 2, 2, 1], [3, 0, 0, 0]])
    _check(z, targets, [9, 7, 8, 3], [4, 2, 4, 1], reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_concatenated_targets(reduction):
    z = rand(8, 3, 5, seed=2)
    targets = np.array([1, 3, 3, 2, 4, 4, 1, 2])
    _check(z, targets, (8, 6, 8), (3, 2, 3), reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_repeated_labels_skip_rule(reduction):
    # repeats need a blank between them: alignments of [2, 2, 2] take at least 5 frames
    z = rand(6, 3, 4, seed=3)
    targets = np.array([[2, 2, 2], [1, 1, 3], [3, 1, 3]])
    _check(z, targets, [6, 6, 5], [3, 3, 3], reduction)


@pytest.mark.parametrize("blank", [2, 4])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nonzero_blank(blank, reduction):
    z = rand(7, 3, 5, seed=4)
    labels = [c for c in range(5) if c != blank]
    targets = np.array([[labels[0], labels[1], labels[1]], [labels[3], labels[0], 0],
                        [labels[2], labels[2], labels[3]]])
    targets[1, 2] = blank  # padding past the length may hold anything
    _check(z, targets, [7, 5, 7], [3, 2, 3], reduction, blank=blank)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zero_infinity_impossible_alignment(reduction):
    z = rand(4, 3, 5, seed=6)
    # sample 0: 4 labels with a repeat need 5 frames; sample 2: 3 labels in 2 frames
    targets = np.array([[1, 1, 2, 3], [3, 1, 0, 0], [4, 2, 1, 0]])
    il, tl = [4, 4, 2], [4, 2, 3]
    raw = _run_none(z, targets, il, tl)
    assert np.isinf(raw[0]) and np.isinf(raw[2]) and np.isfinite(raw[1])
    loss = _check(z, targets, il, tl, reduction, zero_infinity=True)
    assert np.isfinite(loss).all()


def test_infinite_loss_without_zero_infinity_has_finite_gradient():
    z = pt.tensor(rand(3, 2, 4, seed=7), requires_grad=True)
    loss = F.ctc_loss(z.log_softmax(-1), pt.tensor([[1, 1, 2], [3, 0, 0]]), [3, 3], [3, 1],
                      reduction="none")
    assert math.isinf(loss[0].item()) and math.isfinite(loss[1].item())
    loss.sum().backward()
    assert np.isfinite(z.grad.numpy()).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched(reduction):
    z = rand(7, 5, seed=8)
    p = _check(z, np.array([1, 2, 2]), (7,), (3,), reduction)
    if reduction == "none":
        assert p.shape == ()
    # polyten also takes padded unbatched targets (torch wants exactly target_length labels)
    lp = pt.tensor(z).log_softmax(-1)
    padded = F.ctc_loss(lp, pt.tensor([1, 2, 2, 0]), (7,), (3,), reduction=reduction)
    close(padded.numpy(), p, rtol=1e-14)


def test_unbatched_tensor_lengths():
    torch = torch_or_skip()
    lp = rand(6, 4, seed=9)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    p = F.ctc_loss(pt.tensor(lp), pt.tensor([1, 3]), pt.tensor(6), pt.tensor(2))
    t = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor([1, 3]), torch.tensor(6),
                                     torch.tensor(2))
    close(p.numpy(), t.numpy(), rtol=1e-10)


def test_tensor_lengths_and_int32_targets():
    torch = torch_or_skip()
    lp = np.log(np.random.default_rng(3).dirichlet(np.ones(5), size=(6, 2)))
    tg = np.array([[1, 2], [3, 0]], dtype=np.int32)
    il = np.array([6, 4], dtype=np.int32)
    tl = np.array([2, 1])
    p = F.ctc_loss(pt.tensor(lp), pt.tensor(tg), pt.tensor(il), pt.tensor(tl),
                   reduction="none")
    t = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor(tg), torch.tensor(il),
                                     torch.tensor(tl), reduction="none")
    close(p.numpy(), t.numpy(), rtol=1e-10)


def test_empty_target_and_zero_input_length():
    torch = torch_or_skip()
    lp = np.log(np.random.default_rng(4).dirichlet(np.ones(4), size=(5, 3)))
    tg = np.array([[1, 2], [0, 0], [0, 0]])
    il, tl = [5, 3, 0], [2, 0, 0]
    p = F.ctc_loss(pt.tensor(lp), pt.tensor(tg), il, tl, reduction="none")
    t = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor(tg), il, tl,
                                     reduction="none")
    close(p.numpy(), t.numpy(), rtol=1e-10)


def test_float32_matches_torch():
    torch = torch_or_skip()
    z = rand(12, 4, 7, seed=10).astype(np.float32)
    tg = np.array([[1, 2, 3], [4, 4, 0], [6, 5, 6], [2, 0, 0]])
    il, tl = [12, 10, 11, 6], [3, 2, 3, 1]
    p = F.ctc_loss(pt.tensor(z).log_softmax(-1), pt.tensor(tg), il, tl)
    t = torch.nn.functional.ctc_loss(torch.tensor(z).log_softmax(-1), torch.tensor(tg), il, tl)
    assert p.dtype == pt.float32
    close(p.numpy(), t.numpy(), rtol=1e-5)


def test_module_matches_functional():
    z = pt.tensor(rand(6, 2, 4, seed=11)).log_softmax(-1)
    tg, il, tl = pt.tensor([[1, 2], [3, 3]]), [6, 6], [2, 2]
    m = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    close(m(z, tg, il, tl).numpy(), F.ctc_loss(z, tg, il, tl, reduction="sum").numpy())
    assert "CTCLoss" in nn.__all__


# ------------------------------------------------------------- without PyTorch -----
def _collapse(path, blank):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out


def _brute_force(probs, target, blank):
    """-log of the summed probability of every length-T path that collapses to target."""
    T, C = probs.shape
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        if _collapse(path, blank) == list(target):
            total += math.prod(probs[t, c] for t, c in enumerate(path))
    return -math.log(total) if total > 0 else math.inf


@pytest.mark.parametrize("blank", [0, 2])
def test_brute_force_all_alignments(blank):
    rng = np.random.default_rng(12)
    T, C = 4, 3
    labels = [c for c in range(C) if c != blank]
    a, b = labels
    cases = [([a], 4), ([a, b], 4), ([a, a], 4), ([b, a, b], 4), ([], 4), ([a, a], 3),
             ([a, b], 2), ([a, a, b], 4), ([a, a, a], 4)]
    probs = rng.dirichlet(np.ones(C), size=(T, len(cases)))  # (T, N, C)
    S = 3
    targets = np.array([t + [a] * (S - len(t)) for t, _ in cases])
    il = [n for _, n in cases]
    tl = [len(t) for t, _ in cases]
    got = F.ctc_loss(pt.tensor(np.log(probs)), pt.tensor(targets), il, tl, blank=blank,
                     reduction="none").numpy()
    want = [_brute_force(probs[:n, i], t, blank) for i, (t, n) in enumerate(cases)]
    assert np.isinf(want[-1]) and np.isinf(got[-1])  # [a, a, a] needs 5 frames
    close(got[:-1], want[:-1], rtol=1e-12)


def test_gradcheck():
    lp = pt.tensor(np.log(np.random.default_rng(13).dirichlet(np.ones(4), size=(5, 2))),
                   requires_grad=True)
    tg = pt.tensor([[1, 1], [2, 3]])
    for reduction in REDUCTIONS:
        assert gradcheck(lambda x: F.ctc_loss(x, tg, [5, 4], [2, 2], reduction=reduction),
                         (lp,))
    # unnormalised scores work too (the loss is a function of every entry)
    z = pt.tensor(rand(4, 1, 3, seed=14), requires_grad=True)
    assert gradcheck(lambda x: F.ctc_loss(x, pt.tensor([[2]]), [4], [1], blank=1), (z,))


def test_padding_frames_get_zero_gradient_even_if_nan():
    lp = np.log(np.random.default_rng(15).dirichlet(np.ones(4), size=(6, 2)))
    lp[4:, 1] = np.nan  # past input_lengths[1] = 4
    x = pt.tensor(lp, requires_grad=True)
    loss = F.ctc_loss(x, pt.tensor([[1, 2], [3, 1]]), [6, 4], [2, 2])
    assert math.isfinite(loss.item())
    loss.backward()
    g = x.grad.numpy()
    assert np.isfinite(g).all() and (g[4:, 1] == 0).all()


# ------------------------------------------------------------------------- errors -----
def _lp(T=5, N=2, C=4):
    return pt.tensor(rand(T, N, C, seed=16)).log_softmax(-1)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [6, 5], [2, 1]), ValueError,
     r"ctc_loss: input_lengths\[0\] = 6 is longer than the input's T = 5"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5], [2, 3]), ValueError,
     r"target_lengths\[1\] = 3 is longer than the padded targets' S = 2"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([1, 2, 3]), [5, 5], [2, 2]), ValueError,
     r"concatenated targets must have sum\(target_lengths\) = 4 elements, got shape \(3,\)"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 0], [1, 0]]), [5, 5], [2, 1]), ValueError,
     r"targets of sample 0 hold the blank label 0 at position 1"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 4], [1, 0]]), [5, 5], [2, 1]), ValueError,
     r"target 4 of sample 0 \(position 1\) is out of range for C = 4"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1., 2.], [1., 0.]]), [5, 5], [2, 1]), TypeError,
     r"targets must hold integer class indices, got a float32 tensor"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5, 5], [2, 1]), ValueError,
     r"input_lengths must have one entry per sample: got 3 entries for batch size N=2"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5], [2]), ValueError,
     r"target_lengths must have one entry per sample: got 1 entries"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), pt.tensor([5., 5.]), [2, 1]),
     TypeError, r"input_lengths must hold integers, got a float32 tensor"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, -1], [2, 1]), ValueError,
     r"input_lengths\[1\] = -1 is negative"),
    (lambda: F.ctc_loss(_lp()[0], pt.tensor([1, 2]), [4], [2]), ValueError,
     r"targets must be 1-D \(S,\), got shape \(2,\)|"
     r"input_lengths\[0\] = 4 is longer"),
    (lambda: F.ctc_loss(_lp().unsqueeze(0), pt.tensor([[1, 2]]), [5], [2]), ValueError,
     r"log_probs must be \(T, N, C\) or unbatched \(T, C\), got shape \(1, 5, 2, 4\)"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[[1, 2]]]), [5, 5], [2, 1]), ValueError,
     r"targets must be padded \(N, S\) or concatenated"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5], [2, 1], blank=4),
     ValueError, r"blank must be a class index in \[0, C\) = \[0, 4\)"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5], [2, 1], reduction="avg"),
     ValueError, r"ctc_loss: 'avg' is not a valid value for reduction"),
    (lambda: F.ctc_loss(pt.zeros((5, 2, 4), dtype=pt.int64), pt.tensor([[1, 2], [1, 0]]),
                        [5, 5], [2, 1]), TypeError,
     r"log_probs must be a floating-point tensor"),
    (lambda: F.ctc_loss(_lp(), pt.tensor([[1, 2], [1, 0]]), [5, 5.0], [2, 1]), TypeError,
     r"input_lengths must be a tensor or a tuple/list of ints, got an element 5.0"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_unbatched_target_shape_error():
    lp = pt.tensor(rand(5, 4, seed=17)).log_softmax(-1)
    with pytest.raises(ValueError, match=r"for unbatched log_probs \(T, C\) targets must be "
                                         r"1-D \(S,\), got shape \(1, 2\)"):
        F.ctc_loss(lp, pt.tensor([[1, 2]]), [5], [2])


def test_double_backward():
    """Second derivatives: the derivative rule is polyten ops (differentiable again)."""
    from polyten.autograd import gradgradcheck
    T, N, C = 5, 2, 4
    lp = pt.tensor(np.log(np.random.default_rng(3).dirichlet(np.ones(C), size=(T, N))),
                   requires_grad=True)
    targets = pt.tensor([[1, 2], [3, 3]])
    assert gradgradcheck(lambda x: F.ctc_loss(x, targets, (5, 4), (2, 2), reduction="sum"),
                         (lp,))
