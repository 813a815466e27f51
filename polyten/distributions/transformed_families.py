"""Families built as a simple distribution pushed through transforms (as PyTorch builds
them): HalfNormal, HalfCauchy, Gumbel, Weibull, Pareto, InverseGamma, Kumaraswamy,
LogisticNormal, LogitRelaxedBernoulli / RelaxedBernoulli and ExpRelaxedCategorical /
RelaxedOneHotCategorical.  Each overrides the densities and moments that have closed forms;
sampling (and ``rsample``'s gradients) comes through the transforms."""

from __future__ import annotations

import math

import polyten as pt
from polyten.nn import functional as F

from . import constraints
from .continuous import Cauchy, Exponential, Normal, Uniform
from .distribution import Distribution
from .gamma import Gamma
from .transformed_distribution import TransformedDistribution
from .transforms import (AbsTransform, AffineTransform, ExpTransform, PowerTransform,
                         SigmoidTransform, StickBreakingTransform)
from .utils import BinaryParams, broadcast_all, clamp_probs

__all__ = ["HalfNormal", "HalfCauchy", "Gumbel", "Weibull", "Pareto", "InverseGamma",
           "Kumaraswamy", "LogisticNormal", "LogitRelaxedBernoulli", "RelaxedBernoulli",
           "ExpRelaxedCategorical", "RelaxedOneHotCategorical"]

_EULER = 0.57721566490153286061


def _check_value(dist, value):
    if dist._validate_args:
        dist._validate_sample(value)


class _Folded(TransformedDistribution):
    """``|X|`` for ``X`` symmetric about 0 (the half-normal and half-Cauchy): the density
    doubled on ``[0, inf)``, the cdf ``2 F - 1``, the entropy less ``log 2``."""

    def log_prob(self, value):
        _check_value(self, value)
        lp = self.base_dist.log_prob(value) + math.log(2)
        return pt.where(value >= 0, lp, -math.inf)

    def cdf(self, value):
        _check_value(self, value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class HalfNormal(_Folded):
    """``|X|`` for ``X ~ N(0, scale**2)``.

    Parameters
    ----------
    scale : Tensor or float
        The scale of the underlying normal (> 0).
    """

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        base = Normal(pt.zeros_like(self.scale), self.scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return pt.zeros_like(self.scale)

    @property
    def variance(self):
        return self.scale ** 2 * (1 - 2 / math.pi)


class HalfCauchy(_Folded):
    """``|X|`` for ``X ~ Cauchy(0, scale)``; no mean or variance (``inf``, as PyTorch)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        base = Cauchy(pt.zeros_like(self.scale), self.scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    @property
    def mean(self):
        return pt.full_like(self.scale, math.inf)

    @property
    def mode(self):
        return pt.zeros_like(self.scale)

    @property
    def variance(self):
        return pt.full_like(self.scale, math.inf)


class Gumbel(TransformedDistribution):
    """The Gumbel (type-I extreme value) distribution: density
    ``exp(-(z + exp(-z))) / scale`` with ``z = (x - loc) / scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        fi = pt.finfo(self.loc.dtype)
        base = Uniform(pt.full_like(self.loc, fi.tiny), pt.full_like(self.loc, 1 - fi.eps),
                       validate_args=False)
        # u -> -log(-log u): the standard Gumbel, then loc + scale * that
        ts = [ExpTransform().inv, AffineTransform(0, -pt.ones_like(self.scale)),
              ExpTransform().inv, AffineTransform(self.loc, -self.scale)]
        super().__init__(base, ts, validate_args=validate_args)

    def log_prob(self, value):
        _check_value(self, value)
        z = (self.loc - value) / self.scale
        return (z - z.exp()) - self.scale.log()

    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev ** 2

    def entropy(self):
        return self.scale.log() + (1 + _EULER)


class Weibull(TransformedDistribution):
    """The Weibull distribution: ``P(X > x) = exp(-(x / scale) ** concentration)``."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        base = Exponential(pt.ones_like(self.scale), validate_args=False)
        ts = [PowerTransform(self.concentration.reciprocal()),
              AffineTransform(pt.zeros_like(self.scale), self.scale)]
        super().__init__(base, ts, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * pt.lgamma(1 + self.concentration.reciprocal()).exp()

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k) ** k.reciprocal()

    @property
    def variance(self):
        k = self.concentration
        return self.scale ** 2 * (pt.lgamma(1 + 2 / k).exp()
                                  - pt.lgamma(1 + 1 / k).exp() ** 2)

    def entropy(self):
        k = self.concentration
        return _EULER * (1 - k.reciprocal()) + (self.scale / k).log() + 1


class Pareto(TransformedDistribution):
    """The Pareto (type I) distribution: density ``alpha scale**alpha / x**(alpha + 1)`` for
    ``x >= scale``."""

    arg_constraints = {"scale": constraints.positive, "alpha": constraints.positive}
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        base = Exponential(self.alpha, validate_args=False)
        ts = [ExpTransform(), AffineTransform(pt.zeros_like(self.scale), self.scale)]
        super().__init__(base, ts, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)  # inf for alpha <= 1
        return a * self.scale / (a - 1)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)  # inf for alpha <= 2
        return self.scale ** 2 * a / ((a - 1) ** 2 * (a - 2))

    def entropy(self):
        return (self.scale / self.alpha).log() + (1 + self.alpha.reciprocal())


class InverseGamma(TransformedDistribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)``: density
    ``rate**a x**(-a-1) exp(-rate / x) / Gamma(a)``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        base = Gamma(self.concentration, self.rate, validate_args=False)
        neg_one = pt.full((), -1.0, dtype=self.rate.dtype, device=self.rate.device)
        super().__init__(base, PowerTransform(neg_one), validate_args=validate_args)

    @property
    def mean(self):
        a = self.concentration
        return pt.where(a > 1, self.rate / (a - 1), math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        a = self.concentration
        return pt.where(a > 2, self.rate ** 2 / ((a - 1) ** 2 * (a - 2)), math.inf)

    def entropy(self):
        a = self.concentration
        return a + self.rate.log() + pt.lgamma(a) - (1 + a) * pt.digamma(a)


def _kumaraswamy_moment(a, b, n):
    """E[X**n] = b B(1 + n / a, b)."""
    arg = 1 + n / a
    return b * (pt.lgamma(arg) + pt.lgamma(b) - pt.lgamma(arg + b)).exp()


class Kumaraswamy(TransformedDistribution):
    """The Kumaraswamy distribution on (0, 1): density
    ``a b x**(a-1) (1 - x**a)**(b-1)`` with ``a = concentration1``, ``b = concentration0``.

    ``mode`` is ``((a - 1) / (a b - 1)) ** (1 / a)`` where a, b >= 1 (and not both 1), else
    ``nan``.
    """

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1,
                                                                 concentration0)
        base = Uniform(pt.zeros_like(self.concentration1),
                       pt.ones_like(self.concentration1), validate_args=False)
        # u -> (1 - u ** (1/b)) ** (1/a) inverts the CDF 1 - (1 - x**a)**b
        ts = [PowerTransform(self.concentration0.reciprocal()),
              AffineTransform(1.0, -1.0),
              PowerTransform(self.concentration1.reciprocal())]
        super().__init__(base, ts, validate_args=validate_args)

    @property
    def mean(self):
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        a, b = self.concentration1, self.concentration0
        mode = ((a - 1) / (a * b - 1)).clamp(min=0) ** a.reciprocal()
        return pt.where((a < 1) | (b < 1) | ((a == 1) & (b == 1)), math.nan, mode)

    @property
    def variance(self):
        a, b = self.concentration1, self.concentration0
        return _kumaraswamy_moment(a, b, 2) - _kumaraswamy_moment(a, b, 1) ** 2

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        harmonic_b = pt.digamma(b + 1) + _EULER
        return (1 - b.reciprocal()) + (1 - a.reciprocal()) * harmonic_b - a.log() - b.log()


class LogisticNormal(TransformedDistribution):
    """The logistic normal distribution on the simplex: a normal vector of size K - 1 mapped
    by :class:`StickBreakingTransform` (K components)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        base = Normal(self.loc, self.scale, validate_args=False)
        if not base.batch_shape:
            base = base.expand((1,))
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    def _param_names(self):
        return ()  # loc and scale carry the event dim: they live in the base

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new.loc, new.scale = new.base_dist.base_dist.loc, new.base_dist.base_dist.scale
        return new


class LogitRelaxedBernoulli(BinaryParams, Distribution):
    """The logit of a :class:`RelaxedBernoulli` draw: ``(logit(u) + logits) / temperature``
    for ``u ~ U(0, 1)``.

    Parameters
    ----------
    temperature : Tensor or float
        The relaxation temperature (> 0); near 0 draws approach Bernoulli's.
    probs, logits : Tensor or float
        Exactly one: the success probability or its log-odds.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError(f"{type(self).__name__}: pass exactly one of probs and logits")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            param = self.probs
        else:
            (self.logits,) = broadcast_all(logits)
            param = self.logits
        (self.temperature,) = broadcast_all(temperature)
        self.temperature = self.temperature.to(param.dtype)
        super().__init__(param.shape, validate_args=validate_args)

    def _param_names(self):
        return ("probs", "logits")

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape)
        new.temperature = self.temperature
        return new

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        p = self.param
        u = clamp_probs(pt.rand(shape, dtype=p.dtype, device=p.device))
        return (u.log() - (-u).log1p() + self.logits) / self.temperature

    def log_prob(self, value):
        _check_value(self, value)
        diff = self.logits - value * self.temperature
        return self.temperature.log() + diff - 2 * F.softplus(diff)


class _RelaxedFromBase(TransformedDistribution):
    """The relaxed families' parameters: those of their base distribution."""

    def _param_names(self):
        return ()

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class RelaxedBernoulli(_RelaxedFromBase):
    """The binary Concrete (Gumbel-softmax) distribution on (0, 1):
    ``sigmoid`` of a :class:`LogitRelaxedBernoulli` draw; reparameterized."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)


class ExpRelaxedCategorical(Distribution):
    """The log of a :class:`RelaxedOneHotCategorical` draw (a log-simplex vector):
    ``log_softmax((logits + gumbel) / temperature)``."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        from .discrete import Categorical
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        param = self._categorical.param
        (self.temperature,) = broadcast_all(temperature)
        self.temperature = self.temperature.to(param.dtype)
        super().__init__(self._categorical.batch_shape, param.shape[-1:],
                         validate_args=validate_args)

    def _param_names(self):
        return ()

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new._categorical = self._categorical.expand(batch_shape)
        new.temperature = self.temperature
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param(self):
        return self._categorical.param

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        u = clamp_probs(pt.rand(shape, dtype=self.logits.dtype, device=self.logits.device))
        gumbels = -(-u.log()).log()
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value):
        _check_value(self, value)
        k = self.event_shape[0]
        t = self.temperature
        # (K - 1)! t**(K - 1) times the softmax density of the scores
        log_scale = math.lgamma(k) + (k - 1) * t.log()
        score = self.logits - value * t
        score = (score - score.logsumexp(dim=-1, keepdim=True)).sum(dim=-1)
        return score + log_scale


class RelaxedOneHotCategorical(_RelaxedFromBase):
    """The Concrete (Gumbel-softmax) distribution on the simplex: ``exp`` of an
    :class:`ExpRelaxedCategorical` draw; reparameterized."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

