"""Count distributions: Binomial, Multinomial, NegativeBinomial.

The binomial sampler draws by inversion (a sequential search of the CDF, a few rounds)
where ``n min(p, 1 - p) < 10`` and by Hormann's transformed rejection with squeeze (BTRS)
above, with the exact log-pmf as the final test; each is a loop of vectorised rounds over
the entries still undecided, one flag read per round."""

from __future__ import annotations

import math

import polyten as pt
from polyten.nn import functional as F

from . import constraints
from .discrete import Categorical
from .distribution import Distribution
from .gamma import Gamma, _poisson_sample
from .utils import BinaryParams, broadcast_all

__all__ = ["Binomial", "Multinomial", "NegativeBinomial"]


def _check_value(dist, value):
    if dist._validate_args:
        dist._validate_sample(value)


def _binomial_sample(n, p):
    """One Binomial(n, p) draw per entry (float tensors of one shape; no gradient)."""
    with pt.no_grad():
        dt, dev, shape = p.dtype, p.device, tuple(p.shape)
        flip = p > 0.5
        q = pt.where(flip, 1 - p, p)  # draw the rarer outcome, flip back at the end
        out = pt.zeros_like(q)
        small = n * q < 10
        if bool(small.any()):
            # inversion: walk the pmf up from k = 0 until the CDF passes u
            u = pt.rand(shape, dtype=dt, device=dev)
            qs = pt.where(small, q, 0.0)
            pmf = pt.exp(n * pt.log1p(-qs))
            cdf = pmf
            k = pt.zeros_like(q)
            odds = qs / (1 - qs)
            todo = small & (u > cdf) & (k < n)
            while bool(todo.any()):
                k = k + todo.to(dt)
                pmf = pmf * (n - k + 1) / k.clamp(min=1) * odds
                cdf = cdf + pmf
                todo = todo & (u > cdf) & (k < n)
            out = pt.where(small, k, out)
        large = ~small
        if bool(large.any()):
            qq = pt.where(large, q, 0.5)
            nn = pt.where(large, n, 100.0)
            spq = (nn * qq * (1 - qq)).sqrt()
            b = 1.15 + 2.53 * spq
            a = -0.0873 + 0.0248 * b + 0.01 * qq
            c = nn * qq + 0.5
            v_r = 0.92 - 4.2 / b
            alpha = (2.83 + 5.1 / b) * spq
            log_odds = pt.log(qq / (1 - qq))
            m = pt.floor((nn + 1) * qq)
            h = pt.lgamma(m + 1) + pt.lgamma(nn - m + 1)
            todo = large
            while bool(todo.any()):
                uu = pt.rand(shape, dtype=dt, device=dev) - 0.5
                v = pt.rand(shape, dtype=dt, device=dev)
                us = 0.5 - uu.abs()
                kk = pt.floor((2 * a / us + b) * uu + c)
                inside = (kk >= 0) & (kk <= nn)
                quick = (us >= 0.07) & (v <= v_r)
                ks = kk.clamp(min=0).minimum(nn)
                # the exact test: log of the hat's height against the log-pmf ratio
                lhs = pt.log(v * alpha / (a / (us * us) + b))
                rhs = h - pt.lgamma(ks + 1) - pt.lgamma(nn - ks + 1) + (ks - m) * log_odds
                accept = todo & inside & (quick | (lhs <= rhs))
                out = pt.where(accept, kk, out)
                todo = todo & ~accept
        return pt.where(flip, n - out, out)


class _CountsOfTrials(BinaryParams, Distribution):
    """Binomial and NegativeBinomial: a ``total_count`` and one of ``probs`` / ``logits``
    (the other computed on first use), broadcast together in the parameter's dtype."""

    def _init_counts(self, total_count, probs, logits, validate_args):
        if (probs is None) == (logits is None):
            raise ValueError(f"{type(self).__name__}: pass exactly one of probs and logits")
        name, value = ("probs", probs) if probs is not None else ("logits", logits)
        count, value = broadcast_all(total_count, value)
        self.total_count = count.to(value.dtype)
        setattr(self, name, value)
        super().__init__(value.shape, validate_args=validate_args)

    def _param_names(self):
        return ("total_count", "probs", "logits")


class Binomial(_CountsOfTrials):
    """The number of successes in ``total_count`` independent trials of probability
    ``probs`` (or ``sigmoid(logits)``).

    Parameters
    ----------
    total_count : Tensor or int
        Number of trials (>= 0); broadcasts with the probabilities.
    probs, logits : Tensor or float
        Exactly one.
    """

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        self._init_counts(total_count, probs, logits, validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().minimum(self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        return _binomial_sample(self.total_count.detach().expand(shape),
                                self.probs.detach().expand(shape))

    def log_prob(self, value):
        _check_value(self, value)
        n, k = self.total_count, value
        log_choose = pt.lgamma(n + 1) - pt.lgamma(k + 1) - pt.lgamma(n - k + 1)
        # k logit - n softplus(logit) = k log p + (n - k) log(1 - p), finite at p = 0, 1
        logits = self.logits
        return log_choose + k * logits - n * F.softplus(logits)

    def entropy(self):
        n = int(self.total_count.max().item())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Binomial.entropy: every total_count must be the same "
                                      "(it sums over the support 0 .. n)")
        lp = self.log_prob(self.enumerate_support(False))
        return -(lp.exp() * lp).sum(dim=0)

    def enumerate_support(self, expand: bool = True):
        n = int(self.total_count.max().item())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Binomial.enumerate_support: every total_count must be "
                                      "the same")
        values = pt.arange(n + 1, dtype=self.param.dtype, device=self.param.device)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values


class Multinomial(Distribution):
    """Counts of each of K categories in ``total_count`` independent draws of a
    :class:`Categorical` (``probs`` or ``logits`` of shape (..., K)).

    ``sample`` needs an integer ``total_count``; ``log_prob`` does not (it reads the count
    from the value).
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int) or isinstance(total_count, bool):
            raise TypeError(f"Multinomial: total_count must be an int, got "
                            f"{type(total_count).__name__}")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits,
                                        validate_args=validate_args)
        param = self._categorical.param
        super().__init__(self._categorical.batch_shape, param.shape[-1:],
                         validate_args=validate_args)

    def _param_names(self):
        return ()

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param(self):
        return self._categorical.param

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        draws = self._categorical.sample((self.total_count,) + tuple(sample_shape))
        k = self.event_shape[0]
        return F.one_hot(draws, k).to(self.probs.dtype).sum(dim=0)

    def log_prob(self, value):
        _check_value(self, value)
        logits, value = pt.broadcast_tensors(self.logits, value.to(self.logits.dtype))
        log_n = pt.lgamma(value.sum(dim=-1) + 1)
        log_xs = pt.lgamma(value + 1).sum(dim=-1)
        # 0 * log 0 counts as 0
        logits = pt.where((value == 0) & (logits == -math.inf), 0.0, logits)
        return log_n - log_xs + (logits * value).sum(dim=-1)

    def entropy(self):
        """``-log n! - n sum p log p + sum_i E[log x_i!]``, the last through each count's
        Binomial(n, p_i) marginal."""
        n = self.total_count
        ks = pt.arange(n + 1, dtype=self.probs.dtype, device=self.probs.device)
        ks = ks.reshape((-1,) + (1,) * (len(self.batch_shape) + 1))
        marg = Binomial(n, self.probs, validate_args=False)
        lp = marg.log_prob(ks)
        expected_log_fact = (lp.exp() * pt.lgamma(ks + 1)).sum(dim=0).sum(dim=-1)
        return n * self._categorical.entropy() - math.lgamma(n + 1) + expected_log_fact


class NegativeBinomial(_CountsOfTrials):
    """The number of successes (probability ``probs`` each) before ``total_count`` failures:
    ``P(k) = C(k + r - 1, k) p**k (1 - p)**r`` (PyTorch's convention).

    Draws are Poisson with a Gamma(total_count, (1 - p) / p) rate."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        self._init_counts(total_count, probs, logits, validate_args)

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / pt.sigmoid(-self.logits)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with pt.no_grad():
            rate = Gamma(self.total_count.detach().expand(shape),
                         pt.exp(-self.logits.detach()).expand(shape),
                         validate_args=False).sample()
            return _poisson_sample(rate)

    def log_prob(self, value):
        _check_value(self, value)
        r = self.total_count
        unnorm = r * F.logsigmoid(-self.logits) + value * F.logsigmoid(self.logits)
        log_norm = -pt.lgamma(r + value) + pt.lgamma(1.0 + value) + pt.lgamma(r)
        # r + k == 0 only at r = k = 0, where the pmf is 1
        log_norm = pt.where(r + value == 0, 0.0, log_norm)
        return unnorm - log_norm
