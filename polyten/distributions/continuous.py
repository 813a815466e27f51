"""Continuous distributions with closed forms: Normal, LogNormal, Uniform, Exponential,
Laplace, Cauchy.  Every formula is written in polyten ops, so it runs on every backend and
differentiates through autograd."""

from __future__ import annotations

import math

import polyten as pt

from . import constraints
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .utils import broadcast_all

__all__ = ["Normal", "LogNormal", "Uniform", "Exponential", "Laplace", "Cauchy"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _rand(shape, like, low=0.0):
    """Uniform draws in [low, 1) of ``like``'s dtype and device."""
    u = pt.rand(tuple(shape), dtype=like.dtype, device=like.device)
    return u if low == 0.0 else u * (1 - low) + low


class Normal(ExponentialFamily):
    """The normal (Gaussian) distribution ``N(loc, scale**2)``.

    Parameters
    ----------
    loc : Tensor or float
        Mean.
    scale : Tensor or float
        Standard deviation (> 0).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale ** 2

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = pt.randn(tuple(shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (-((value - self.loc) ** 2) / (2 * self.scale ** 2) - pt.log(self.scale)
                - _LOG_SQRT_2PI)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + pt.erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value):
        return self.loc + self.scale * pt.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + _LOG_SQRT_2PI + pt.log(self.scale)

    @property
    def _natural_params(self):
        return (self.loc / self.scale ** 2, -0.5 / self.scale ** 2)

    def _log_normalizer(self, x, y):
        return -0.25 * x ** 2 / y + 0.5 * pt.log(-math.pi / y)

    @property
    def _mean_carrier_measure(self):
        return 0.0


class LogNormal(Distribution):
    """``exp(X)`` for ``X ~ N(loc, scale**2)``.

    Parameters
    ----------
    loc, scale : Tensor or float
        The mean and standard deviation of ``log`` of the variable (scale > 0).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def base_dist(self):
        return Normal(self.loc, self.scale, validate_args=False)

    @property
    def mean(self):
        return pt.exp(self.loc + self.scale ** 2 / 2)

    @property
    def mode(self):
        return pt.exp(self.loc - self.scale ** 2)

    @property
    def variance(self):
        s2 = self.scale ** 2
        return pt.expm1(s2) * pt.exp(2 * self.loc + s2)

    def rsample(self, sample_shape=()):
        return pt.exp(self.base_dist.rsample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = pt.log(value)
        return self.base_dist.log_prob(y) - y

    def cdf(self, value):
        return self.base_dist.cdf(pt.log(value))

    def icdf(self, value):
        return pt.exp(self.base_dist.icdf(value))

    def entropy(self):
        return self.base_dist.entropy() + self.loc


class Uniform(Distribution):
    """The uniform distribution on ``[low, high)``."""

    arg_constraints = {"low": constraints.dependent, "high": constraints.dependent}
    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)
        if self._validate_args and not bool((self.low < self.high).all()):
            raise ValueError(f"Uniform: low must be below high everywhere (shapes "
                             f"{tuple(self.low.shape)}); pass validate_args=False to skip "
                             f"this check")

    @property
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def mode(self):
        return pt.full_like(self.high, math.nan)

    @property
    def stddev(self):
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=()):
        u = _rand(self._extended_shape(sample_shape), self.low)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        inside = (self.low <= value) & (value < self.high)
        lp = -pt.log(self.high - self.low)
        return pt.where(inside, lp, -math.inf)

    def cdf(self, value):
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value):
        return value * (self.high - self.low) + self.low

    def entropy(self):
        return pt.log(self.high - self.low)


class Exponential(ExponentialFamily):
    """The exponential distribution with ``rate`` (> 0): density ``rate * exp(-rate x)``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return pt.zeros_like(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate ** -2

    def rsample(self, sample_shape=()):
        # -log1p(-u) with u in [0, 1): finite, and 0 has the right probability (none)
        u = _rand(self._extended_shape(sample_shape), self.rate)
        return -pt.log1p(-u) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return pt.log(self.rate) - self.rate * value

    def cdf(self, value):
        return 1 - pt.exp(-self.rate * value)

    def icdf(self, value):
        return -pt.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - pt.log(self.rate)

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -pt.log(-x)

    @property
    def _mean_carrier_measure(self):
        return 0.0


class Laplace(Distribution):
    """The Laplace distribution: density ``exp(-|x - loc| / scale) / (2 scale)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    @property
    def variance(self):
        return 2 * self.scale ** 2

    def rsample(self, sample_shape=()):
        # u in (-1, 1): the open interval keeps log1p(-|u|) finite
        tiny = pt.finfo(self.loc.dtype).eps
        u = _rand(self._extended_shape(sample_shape), self.loc) * (2 - 2 * tiny) - (1 - tiny)
        return self.loc - self.scale * pt.sign(u) * pt.log1p(-u.abs())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -pt.log(2 * self.scale) - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        z = value - self.loc
        return 0.5 - 0.5 * pt.sign(z) * pt.expm1(-z.abs() / self.scale)

    def icdf(self, value):
        t = value - 0.5
        return self.loc - self.scale * pt.sign(t) * pt.log1p(-2 * t.abs())

    def entropy(self):
        return 1 + pt.log(2 * self.scale)


class Cauchy(Distribution):
    """The Cauchy distribution: density ``1 / (pi scale (1 + ((x - loc) / scale)**2))``; it
    has no mean or variance (``nan`` / ``inf``, as PyTorch)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return pt.full_like(self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return pt.full_like(self.loc, math.inf)

    def rsample(self, sample_shape=()):
        u = _rand(self._extended_shape(sample_shape), self.loc)
        return self.loc + self.scale * pt.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - pt.log(self.scale) - pt.log1p(z ** 2)

    def cdf(self, value):
        return pt.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return pt.tan(math.pi * (value - 0.5)) * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + pt.log(self.scale)
