"""CTC's recursions (the ``ctc_alpha`` composite) on whole (N, L) rows per frame.

``ctc_alpha(x, skip, input_lengths, target_lengths)``: ``x`` (T, N, L) holds the
log-probabilities of each sample's extended labels (blank, l1, blank, ..., blank) per frame,
``skip`` (N, L) where the s - 2 transition is allowed.  The forward is the alpha recursion in
log space; the backward kernel adds the beta recursion and gives ``d nll / d x`` =
``-exp(alpha + beta - x + nll)`` on each sample's frames (zero elsewhere, and for a sample
with no alignment).  One frame is about ten array operations on (N, L) rows, against about
thirty polyten ops (with their autograd records) for the default's forward alone.

Written against ``xp``: the cuda backend runs it as it is (a loop of small launches; a
fused kernel per sample would be faster there).
"""

from __future__ import annotations

import math

_NEG_INF = -math.inf


def _lse3(xp, a, b, c):
    """log(exp(a) + exp(b) + exp(c)), -inf where all three are (no -inf - -inf)."""
    m = xp.maximum(xp.maximum(a, b), c)
    shift = xp.where(m == _NEG_INF, 0, m)
    s = xp.exp(a - shift) + xp.exp(b - shift) + xp.exp(c - shift)
    return xp.log(xp.where(s == 0, 1, s)) + m


def _setup(xp, x, skip, input_lengths, target_lengths):
    T, N, L = x.shape
    dt = x.dtype
    neg = xp.asarray(_NEG_INF, dtype=dt)
    skip_add = xp.where(skip, xp.asarray(0, dtype=dt), neg)  # (N, L): 0 or -inf
    in_len = xp.asarray(input_lengths, dtype=xp.int64)
    tgt = xp.asarray(target_lengths, dtype=xp.int64)
    rows = xp.arange(N)
    # the paths end in the last label or the blank after it (only the blank if S = 0)
    end_a = 2 * tgt
    end_b = xp.maximum(2 * tgt - 1, 0)
    has_b = tgt > 0
    return T, N, L, dt, neg, skip_add, in_len, rows, end_a, end_b, has_b


def _alphas(xp, x, skip_add, in_len, neg):
    """alpha_t for t = -1 .. T-1, as a (T + 1, N, L) array: alpha_{-1} is a virtual start
    in s = 0; a sample's alphas past its input length repeat its last one."""
    T, N, L = x.shape
    out = xp.empty((T + 1, N, L), dtype=x.dtype)
    out[0] = neg
    out[0, :, 0] = 0
    pad = xp.full((N, L + 2), _NEG_INF, dtype=x.dtype)
    for t in range(T):
        pad[:, 2:] = out[t]
        nxt = _lse3(xp, pad[:, 2:], pad[:, 1:-1], pad[:, :-2] + skip_add) + x[t]
        out[t + 1] = xp.where((t < in_len)[:, None], nxt, out[t])
    return out


def _nll(xp, alpha_end, rows, end_a, end_b, has_b, neg):
    a = alpha_end[rows, end_a]
    b = xp.where(has_b, alpha_end[rows, end_b], neg)
    return -_lse3(xp, a, b, xp.full_like(a, _NEG_INF))


def kernels(xp, **ctx) -> dict:
    is_numpy = xp.__name__ == "numpy"

    def ctc_alpha(x, skip, input_lengths, target_lengths):
        T, N, L, dt, neg, skip_add, in_len, rows, end_a, end_b, has_b = _setup(
            xp, x, skip, input_lengths, target_lengths)
        with _quiet(xp, is_numpy):
            alpha = _alphas(xp, x, skip_add, in_len, neg)
            return _nll(xp, alpha[-1], rows, end_a, end_b, has_b, neg)

    return {"ctc_alpha": ctc_alpha}


def backward_kernels(xp, **ctx) -> dict:
    is_numpy = xp.__name__ == "numpy"

    def ctc_alpha_bw(grads, inputs, outputs, params):
        g = grads[0]
        x = inputs[0]
        skip = params["skip"]
        skip = getattr(skip, "_data", skip)
        T, N, L, dt, neg, skip_add, in_len, rows, end_a, end_b, has_b = _setup(
            xp, x, skip, params["input_lengths"], params["target_lengths"])
        with _quiet(xp, is_numpy):
            alpha = _alphas(xp, x, skip_add, in_len, neg)
            nll = _nll(xp, alpha[-1], rows, end_a, end_b, has_b, neg)
            # beta_t(s): the paths from (t, s) to an end at the sample's last frame, x_t(s)
            # included; the s + 2 transition is allowed where skip is at s + 2
            skip_next = xp.full((N, L), _NEG_INF, dtype=dt)
            skip_next[:, :-2] = skip_add[:, 2:]
            ends = xp.full((N, L), _NEG_INF, dtype=dt)
            # (end_b is end_a, 0, where S = 0: written first so that end_a's 0 stays)
            ends[rows, end_b] = xp.where(has_b, xp.asarray(0, dtype=dt), neg)
            ends[rows, end_a] = 0
            beta = xp.full((N, L), _NEG_INF, dtype=dt)
            pad = xp.full((N, L + 2), _NEG_INF, dtype=dt)
            gx = xp.zeros_like(x)
            scale = xp.where(xp.isinf(nll), 0, g)[:, None]  # no alignment: no gradient
            for t in range(T - 1, -1, -1):
                pad[:, :-2] = beta
                nxt = _lse3(xp, pad[:, :-2], pad[:, 1:-1], pad[:, 2:] + skip_next) + x[t]
                last = (t == in_len - 1)[:, None]
                beta = xp.where(last, ends + x[t], xp.where((t < in_len)[:, None], nxt, neg))
                # alpha[t + 1] is alpha_t; exp(-inf) = 0 off the sample's frames
                post = alpha[t + 1] + beta - x[t] + nll[:, None]
                # a class of probability 0 (x = -inf) or no alignment: -inf - -inf is not 0
                off = xp.isinf(nll)[:, None] | (x[t] == _NEG_INF)
                gx[t] = -scale * xp.exp(xp.where(off, neg, post))
        return (gx,)

    return {"ctc_alpha": ctc_alpha_bw}


class _quiet:
    """NumPy's floating-point warnings off (log(0) and -inf arithmetic are expected here)."""

    def __init__(self, xp, is_numpy):
        self._ctx = xp.errstate(all="ignore") if is_numpy else None

    def __enter__(self):
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc):
        if self._ctx is not None:
            return self._ctx.__exit__(*exc)
        return False
