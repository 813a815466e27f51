"""``ctc_loss``: the connectionist temporal classification loss (Graves et al., 2006) with
``torch.nn.functional.ctc_loss``'s signature and semantics.

Written above the dispatcher: the forward (alpha) recursion over the extended label sequence
(blanks interleaved, length ``2 S + 1``) in log space with polyten ops, vectorised over the
batch and the extended labels, with one Python loop over the time steps.  Autograd through
those ops gives the gradient (it equals the classic alpha-beta formula), so the loss runs and
differentiates on every backend and double backward works.

Target values and lengths are read to the host (as PyTorch's kernels read the lengths): they
decide the shapes and index tensors, and are validated with messages naming the offending
sample.
"""

from __future__ import annotations

import math
import numbers

from ...api import autocast as _amp
from ...api._core import wrap
from ...api.tensor import Tensor
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default
from ...dispatch.errors import fmt_shape
from ._loss import _reduction

__all__ = ["ctc_loss"]

_OP = "ctc_loss"
_NEG_INF = -math.inf


def _pt():
    import polyten
    return polyten


def _lengths(name: str, lengths, N: int, batched: bool) -> list:
    """``input_lengths`` / ``target_lengths`` as a list of N Python ints (>= 0)."""
    if isinstance(lengths, Tensor):
        if lengths._dtype.kind not in ("i", "u"):
            raise TypeError(f"{_OP}: {name} must hold integers, got a {lengths._dtype.name} "
                            f"tensor of shape {fmt_shape(lengths.shape)}; pass an integer "
                            f"tensor (e.g. {name}.long()) or a tuple of ints")
        if lengths.ndim > 1:
            raise ValueError(f"{_OP}: {name} must be 1-D (N,), got a tensor of shape "
                             f"{fmt_shape(lengths.shape)}")
        values = lengths.tolist()
        values = [values] if lengths.ndim == 0 else values
    elif isinstance(lengths, numbers.Integral) and not isinstance(lengths, bool):
        values = [int(lengths)]
    elif isinstance(lengths, (list, tuple)):
        values = list(lengths)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{_OP}: {name} must be a tensor or a tuple/list of ints, got "
                                f"an element {v!r} of type {type(v).__name__}")
        values = [int(v) for v in values]
    else:
        raise TypeError(f"{_OP}: {name} must be a tensor or a tuple/list of ints, got "
                        f"{type(lengths).__name__}")
    if len(values) != N:
        what = f"batch size N={N} (log_probs dim 1)" if batched else "1 (unbatched input)"
        raise ValueError(f"{_OP}: {name} must have one entry per sample: got {len(values)} "
                         f"entries for {what}")
    for i, v in enumerate(values):
        if v < 0:
            raise ValueError(f"{_OP}: {name}[{i}] = {v} is negative; lengths must be >= 0")
    return values


def _targets(targets, tgt_len: list, N: int, C: int, blank: int, batched: bool) -> list:
    """The used labels of each sample as lists of Python ints, validated."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"{_OP}: targets must be a tensor, got {type(targets).__name__}")
    if targets._dtype.kind not in ("i", "u"):
        raise TypeError(f"{_OP}: targets must hold integer class indices, got a "
                        f"{targets._dtype.name} tensor of shape {fmt_shape(targets.shape)}; "
                        f"convert with targets.long()")
    total = sum(tgt_len)
    if not batched:
        if targets.ndim != 1:
            raise ValueError(f"{_OP}: for unbatched log_probs (T, C) targets must be 1-D "
                             f"(S,), got shape {fmt_shape(targets.shape)}")
        if tgt_len[0] > targets.shape[0]:
            raise ValueError(f"{_OP}: target_lengths = {tgt_len[0]} is longer than targets "
                             f"(shape {fmt_shape(targets.shape)}); pass the true length")
        flat = targets.tolist()
        rows = [flat[:tgt_len[0]]]
    elif targets.ndim == 2:
        if targets.shape[0] != N:
            raise ValueError(f"{_OP}: padded targets must have shape (N, S) with N={N} (the "
                             f"batch size of log_probs), got {fmt_shape(targets.shape)}")
        S = targets.shape[1]
        for i, n in enumerate(tgt_len):
            if n > S:
                raise ValueError(f"{_OP}: target_lengths[{i}] = {n} is longer than the padded "
                                 f"targets' S = {S} (targets of shape "
                                 f"{fmt_shape(targets.shape)}); pad the targets to at least "
                                 f"max(target_lengths) = {max(tgt_len)}")
        rows = [r[:n] for r, n in zip(targets.tolist(), tgt_len)]
    elif targets.ndim == 1:
        if targets.shape[0] != total:
            raise ValueError(f"{_OP}: concatenated targets must have sum(target_lengths) = "
                             f"{total} elements, got shape {fmt_shape(targets.shape)}; pass "
                             f"padded (N, S) targets or concatenate exactly the used labels")
        flat = targets.tolist()
        rows, start = [], 0
        for n in tgt_len:
            rows.append(flat[start:start + n])
            start += n
    else:
        raise ValueError(f"{_OP}: targets must be padded (N, S) or concatenated "
                         f"(sum(target_lengths),), got shape {fmt_shape(targets.shape)}")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v == blank:
                raise ValueError(f"{_OP}: targets of sample {i} hold the blank label {blank} "
                                 f"at position {j}; targets must not contain the blank (use "
                                 f"another blank= or remap the labels)")
            if not 0 <= v < C:
                raise ValueError(f"{_OP}: target {v} of sample {i} (position {j}) is out of "
                                 f"range for C = {C} classes (log_probs of shape (T, N, {C}))")
    return rows


def _logsumexp(x, dim: int):
    """``log(sum(exp(x)))`` over ``dim`` that stays finite where every entry is -inf: no
    ``-inf - -inf`` in the forward and no ``0 / 0`` in the backward (those entries get a zero
    gradient)."""
    pt = _pt()
    m = x.detach().amax(dim)
    # shifting by a constant keeps the gradient exactly softmax(x); a row of -infs shifts by 0
    shift = pt.where(m == _NEG_INF, 0.0, m)
    s = (x - shift.unsqueeze(dim)).exp().sum(dim)
    # s is 0 only for all -inf rows (otherwise s >= 1): log(1) + m keeps their -inf
    return pt.where(s == 0, 1.0, s).log() + m


_ctc_k = kernels("ctc_alpha")
_CTC_RULE = _rule("ctc_alpha")


def _ctc_alpha(lp, skip, in_len: tuple, tgt_len: tuple):
    """The op table's ``ctc_alpha``: the backend's kernel (one node, whose backward is the
    backend's alpha-beta kernel or :func:`ctc_alpha_vjp`), or the polyten-op default."""
    k = _ctc_k[lp._device.backend]
    if k is None:
        return _ctc_alpha_default(lp, skip, in_len, tgt_len)
    out = wrap(k(lp._data, skip._data, in_len, tgt_len), lp._device, lp._dtype)
    if lp._ag is not None and _grad_on():
        _record(_CTC_RULE, out, (lp,), {"skip": skip, "input_lengths": in_len,
                                        "target_lengths": tgt_len})
    return out


def _alphas(lp, skip, in_len):
    """alpha_t, t = -1 .. T-1 (a list of (N, L) tensors): alpha_{-1} is a virtual start in
    s = 0 with probability 1, so step 0 is an ordinary step (and input_lengths[i] = 0 reads
    alpha_{-1}); alpha_t(s) combines alpha_{t-1} at s, s - 1 and, where skip, s - 2."""
    pt = _pt()
    T, N, L = lp.shape
    dev, dt = lp.device, lp.dtype
    # candidates of alpha_t(s), from a (N, L + 2) row with two -inf in front: s, s - 1, s - 2
    pick = pt.tensor([j for s in range(L) for j in (s + 2, s + 1, s)], dtype=pt.int64,
                     device=dev)
    no = pt.full((N, L), _NEG_INF, dtype=dt, device=dev)
    cand_mask = pt.stack([pt.zeros((N, L), dtype=dt, device=dev),
                          pt.zeros((N, L), dtype=dt, device=dev),
                          pt.where(skip, 0.0, no)], 2)
    front = pt.full((N, 2), _NEG_INF, dtype=dt, device=dev)
    alpha = pt.tensor([[0.0] + [_NEG_INF] * (L - 1)] * N, dtype=dt, device=dev)
    alphas = [alpha]
    steps = lp.unbind(0) if T else ()
    for t in range(T):
        cand = pt.cat([front, alpha], 1).index_select(1, pick).reshape(N, L, 3) + cand_mask
        alpha = _logsumexp(cand, 2) + steps[t]
        alphas.append(alpha)
    return alphas


def _at_lengths(seq, in_len, offset, L):
    """Each sample's entry of ``seq`` (a list of (N, L) tensors) at its input length plus
    ``offset``."""
    pt = _pt()
    T1 = len(seq)
    if all(n + offset == T1 - 1 for n in in_len):
        return seq[-1]
    dev = seq[0].device
    at = pt.tensor([[[n + offset] * L] for n in in_len], dtype=pt.int64, device=dev)
    return pt.stack(seq, 1).gather(1, at).squeeze(1)


def _ends(tgt_len, dt, dev):
    pt = _pt()
    ends = pt.tensor([[2 * n, max(2 * n - 1, 0)] for n in tgt_len], dtype=pt.int64,
                     device=dev)
    end_mask = pt.tensor([[0.0, 0.0 if n else _NEG_INF] for n in tgt_len], dtype=dt,
                         device=dev)
    return ends, end_mask


def _ctc_alpha_default(lp, skip, in_len, tgt_len):
    """``ctc_alpha`` in polyten ops: the alpha recursion, read at each sample's last frame;
    the paths end in the last label or the blank after it."""
    T, N, L = lp.shape
    alpha = _at_lengths(_alphas(lp, skip, in_len), in_len, 0, L)
    ends, end_mask = _ends(tgt_len, lp.dtype, lp.device)
    return -_logsumexp(alpha.gather(1, ends) + end_mask, 1)


def ctc_alpha_vjp(lp, skip, in_len, tgt_len, nll, g):
    """``g``'s vector-Jacobian product through ``ctc_alpha`` in polyten ops (the derivative
    rule, differentiable again): ``-g exp(alpha + beta - lp + nll)``, beta the recursion from
    each sample's last frame backwards; zero off the samples' frames and where no alignment
    exists."""
    pt = _pt()
    T, N, L = lp.shape
    dev, dt = lp.device, lp.dtype
    alphas = _alphas(lp, skip, in_len)
    ends, end_mask = _ends(tgt_len, dt, dev)
    no = pt.full((N, L), _NEG_INF, dtype=dt, device=dev)
    at_end = pt.zeros((N, L), dtype=dt, device=dev).scatter(1, ends, 1.0) > 0
    # the s + 2 transition from s is allowed where skip is at s + 2
    skip_next = pt.cat([skip[:, 2:], pt.zeros((N, 2), dtype=pt.bool, device=dev)], 1)
    pick = pt.tensor([j for s in range(L) for j in (s, s + 1, s + 2)], dtype=pt.int64,
                     device=dev)
    cand_mask = pt.stack([pt.zeros((N, L), dtype=dt, device=dev),
                          pt.zeros((N, L), dtype=dt, device=dev),
                          pt.where(skip_next, 0.0, no)], 2)
    back = pt.full((N, 2), _NEG_INF, dtype=dt, device=dev)
    in_t = pt.tensor(list(in_len), dtype=pt.int64, device=dev).unsqueeze(1)
    steps = lp.unbind(0) if T else ()
    beta = no
    grads = [None] * T
    finite = ~nll.detach().isinf()
    gs = pt.where(finite, g, 0.0).unsqueeze(1)
    shift = pt.where(finite, nll, 0.0).unsqueeze(1)
    for t in range(T - 1, -1, -1):
        cand = pt.cat([beta, back], 1).index_select(1, pick).reshape(N, L, 3) + cand_mask
        inner = _logsumexp(cand, 2) + steps[t]
        start = pt.where(at_end, steps[t], no)
        beta = pt.where(in_t - 1 == t, start, pt.where(in_t - 1 > t, inner, no))
        post = alphas[t + 1] + beta - steps[t] + shift
        # (a class of probability 0 makes post -inf - -inf: NaN, masked on both sides so
        # that no NaN reaches the backward either)
        off = ((~finite).unsqueeze(1) | (steps[t].detach() == _NEG_INF)
               | (beta.detach() == _NEG_INF))
        grads[t] = -gs * pt.where(off, 0.0, pt.where(off, 0.0, post).exp())
    return pt.stack(grads, 0) if T else pt.zeros_like(lp)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """The connectionist temporal classification loss (``torch.nn.functional.ctc_loss``).

    The negative log-likelihood of each target sequence, summed over every alignment of it to
    the input frames (repeats collapsed, blanks removed).

    Parameters
    ----------
    log_probs : Tensor
        ``(T, N, C)`` or unbatched ``(T, C)`` log-probabilities over the C classes (blank
        included), e.g. the output of ``log_softmax(dim=-1)``.  Float dtype; float16 and
        bfloat16 are computed in float32.
    targets : Tensor
        Integer labels: padded ``(N, S)`` (values past a sample's length are ignored) or the
        used labels concatenated, ``(sum(target_lengths),)``; unbatched ``(S,)``.  No label may
        equal ``blank``.
    input_lengths, target_lengths : Tensor or tuple/list of ints
        ``(N,)`` lengths (``()`` or one int when unbatched); ``input_lengths[i] <= T``.
    blank : int, default 0
        The blank label, in ``[0, C)``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'mean'``: each loss divided by its target length (clamped to >= 1), then averaged
        over the batch (PyTorch's rule); ``'none'`` returns the ``(N,)`` losses (``()`` when
        unbatched).
    zero_infinity : bool, default False
        Replace infinite losses (no alignment possible: the input is too short for the target)
        and their gradients by zero.

    Returns
    -------
    Tensor
        The loss, of log_probs' dtype.

    Notes
    -----
    The alpha recursion runs in log space over the extended labels ``l'`` (``2 S + 1``: a blank
    before, between and after the labels); ``alpha_t(s)`` combines ``alpha_{t-1}`` at ``s``,
    ``s - 1`` and, where ``l'(s) != blank`` and ``l'(s) != l'(s - 2)``, ``s - 2``.  Gradients come
    from autograd through those ops; the gradient of an infinite loss is zero (PyTorch's is not
    meaningful there).  Frames past ``input_lengths`` get zero gradient.
    """
    pt = _pt()
    if not isinstance(log_probs, Tensor):
        raise TypeError(f"{_OP}: log_probs must be a tensor, got {type(log_probs).__name__}")
    reduction = _reduction(_OP, reduction)
    if log_probs._dtype.kind != "f":
        raise TypeError(f"{_OP}: log_probs must be a floating-point tensor (T, N, C), got "
                        f"{log_probs._dtype.name}; apply log_softmax to float scores")
    if log_probs.ndim not in (2, 3):
        raise ValueError(f"{_OP}: log_probs must be (T, N, C) or unbatched (T, C), got shape "
                         f"{fmt_shape(log_probs.shape)}")
    batched = log_probs.ndim == 3
    if _amp.ACTIVE[0]:  # autocast: float32, as PyTorch's autocast lists ctc_loss
        (log_probs,) = _amp.fp32(log_probs)
    out_dtype = log_probs._dtype
    x = log_probs if batched else log_probs.unsqueeze(1)
    if x._dtype.itemsize < 4:  # float16 / bfloat16: the recursion's sums need float32
        x = x.to(pt.float32)
    T, N, C = x.shape
    if isinstance(blank, bool) or not isinstance(blank, numbers.Integral) \
            or not 0 <= blank < C:
        raise ValueError(f"{_OP}: blank must be a class index in [0, C) = [0, {C}) (log_probs "
                         f"of shape {fmt_shape(log_probs.shape)}), got {blank!r}")
    in_len = _lengths("input_lengths", input_lengths, N, batched)
    tgt_len = _lengths("target_lengths", target_lengths, N, batched)
    for i, n in enumerate(in_len):
        if n > T:
            raise ValueError(f"{_OP}: input_lengths[{i}] = {n} is longer than the input's "
                             f"T = {T} frames (log_probs of shape {fmt_shape(log_probs.shape)})")
    labels = _targets(targets, tgt_len, N, C, blank, batched)

    dev, dt = x.device, x.dtype
    S = max(tgt_len, default=0)
    L = 2 * S + 1
    # extended labels l' (blank-padded past each sample's 2 S_i + 1) and where the s - 2
    # transition is allowed
    # (built in NumPy and moved once: pt.tensor of nested lists walks every element; imported
    # here, as `import polyten` loads no array library)
    import numpy as np
    ext = np.full((N, L), blank, dtype=np.int64)
    for i, row in enumerate(labels):
        ext[i, 1:2 * len(row):2] = row
    skip = np.zeros((N, L), dtype=bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    lp = x.gather(2, pt.asarray(ext, device=dev).unsqueeze(0).expand(T, N, L))  # (T, N, L)
    if any(n < T for n in in_len):
        # frames past a sample's input length: 0 instead of whatever padding holds, so the
        # unread alphas stay finite and the padding gets exact zero gradients
        valid = np.arange(T)[:, None, None] < np.asarray(in_len)[None, :, None]
        lp = pt.where(pt.asarray(valid, device=dev), lp, 0.0)
    nll = _ctc_alpha(lp, pt.asarray(skip, device=dev), tuple(in_len), tuple(tgt_len))
    if zero_infinity:
        nll = pt.where(nll.detach().isinf(), 0.0, nll)
    if reduction == "mean":
        div = pt.tensor([max(n, 1) for n in tgt_len], dtype=dt, device=dev)
        loss = (nll / div).mean()
    elif reduction == "sum":
        loss = nll.sum()
    else:
        loss = nll if batched else nll.squeeze(0)
    return loss if loss._dtype == out_dtype else loss.to(out_dtype)


register_default("ctc_alpha", _ctc_alpha_default)
