"""More continuous families: StudentT, FisherSnedecor, ContinuousBernoulli, VonMises and
GeneralizedPareto, in polyten ops (every backend, differentiable through autograd)."""

from __future__ import annotations

import math

import polyten as pt
from polyten.nn import functional as F

from . import constraints
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .gamma import Chi2, Gamma
from .utils import broadcast_all, clamp_probs, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["StudentT", "FisherSnedecor", "ContinuousBernoulli", "VonMises",
           "GeneralizedPareto"]


def _check_value(dist, value):
    if dist._validate_args:
        dist._validate_sample(value)


class StudentT(Distribution):
    """Student's t distribution with ``df`` degrees of freedom, location ``loc`` and scale
    ``scale``.  ``rsample`` draws ``loc + scale * Z / sqrt(V / df)`` with ``V ~ Chi2(df)``
    reparameterized (so gradients reach ``df`` too)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self):
        return pt.where(self.df > 1, self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        finite = self.scale ** 2 * df / (df - 2).clamp(min=1e-300)
        return pt.where(df > 2, finite, pt.where(df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        z = pt.randn(shape, dtype=self.df.dtype, device=self.df.device)
        v = Chi2(self.df.expand(shape), validate_args=False).rsample()
        return self.loc + self.scale * z * (v / self.df).rsqrt()

    def log_prob(self, value):
        _check_value(self, value)
        df = self.df
        y = (value - self.loc) / self.scale
        log_z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi)
                 + pt.lgamma(0.5 * df) - pt.lgamma(0.5 * (df + 1)))
        return -0.5 * (df + 1) * pt.log1p(y ** 2 / df) - log_z

    def entropy(self):
        df = self.df
        log_beta = pt.lgamma(0.5 * df) + math.lgamma(0.5) - pt.lgamma(0.5 * (df + 1))
        return (self.scale.log() + 0.5 * (df + 1) * (pt.digamma(0.5 * (df + 1))
                                                      - pt.digamma(0.5 * df))
                + 0.5 * df.log() + log_beta)


class FisherSnedecor(Distribution):
    """The F distribution with ``df1`` and ``df2`` degrees of freedom: the ratio of two
    independent chi-squared variables, each divided by its degrees of freedom."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)

    @property
    def mean(self):
        d2 = self.df2
        return pt.where(d2 > 2, d2 / (d2 - 2).clamp(min=1e-300), math.nan)

    @property
    def mode(self):
        d1, d2 = self.df1, self.df2
        return pt.where(d1 > 2, (d1 - 2) / d1 * d2 / (d2 + 2), math.nan)

    @property
    def variance(self):
        d1, d2 = self.df1, self.df2
        v = 2 * d2 ** 2 * (d1 + d2 - 2) / (d1 * (d2 - 2) ** 2 * (d2 - 4).clamp(min=1e-300))
        return pt.where(d2 > 4, v, math.nan)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        d1, d2 = self.df1.expand(shape), self.df2.expand(shape)
        tiny = pt.finfo(d1.dtype).tiny
        x1 = Gamma(0.5 * d1, d1, validate_args=False).rsample().clamp(min=tiny)
        x2 = Gamma(0.5 * d2, d2, validate_args=False).rsample().clamp(min=tiny)
        return (x1 / x2).clamp(min=tiny)

    def log_prob(self, value):
        _check_value(self, value)
        h1, h2 = 0.5 * self.df1, 0.5 * self.df2
        t1 = pt.lgamma(h1 + h2) - pt.lgamma(h1) - pt.lgamma(h2)
        t2 = self.df1.log() * h1 + self.df2.log() * h2
        t3 = (h1 - 1) * pt.log(value)
        t4 = (h1 + h2) * pt.log(self.df2 + self.df1 * value)
        return t1 + t2 + t3 - t4


class ContinuousBernoulli(ExponentialFamily):
    """The continuous Bernoulli distribution on [0, 1] (Loaiza-Ganem and Cunningham, 2019):
    density ``C(p) p**x (1 - p)**(1 - x)``.

    The normalizer, the moments and the CDF have a removable singularity at ``p = 1/2``;
    inside ``lims`` they are taken from their Taylor series there (as PyTorch).

    Parameters
    ----------
    probs, logits : Tensor or float
        Exactly one: ``p`` (kept inside (0, 1) by the dtype's eps) or its log-odds.
    lims : (float, float)
        The interval around 1/2 where the Taylor series are used.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("ContinuousBernoulli: pass exactly one of probs and logits")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            shape = self.probs.shape
        else:
            (self.logits,) = broadcast_all(logits)
            shape = self.logits.shape
        self._lims = tuple(lims)
        super().__init__(shape, validate_args=validate_args)
        if probs is not None:  # after the check, which must see the values given
            self.probs = clamp_probs(self.probs)

    def _param_names(self):
        return ("probs", "logits")

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param(self):
        return self.__dict__.get("probs", self.__dict__.get("logits"))

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        return pt.where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _cont_bern_log_norm(self):
        """log C(p) = log(|log1p(-p) - log p| / |1 - 2p|)."""
        cut = self._cut_probs()
        below = pt.where(cut <= 0.5, cut, 0.0)
        above = pt.where(cut >= 0.5, cut, 1.0)
        log_norm = (pt.log((pt.log1p(-cut) - pt.log(cut)).abs())
                    - pt.where(cut <= 0.5, pt.log1p(-2 * below), pt.log(2 * above - 1)))
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return pt.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        mus = cut / (2 * cut - 1) + 1 / (pt.log1p(-cut) - pt.log(cut))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x ** 2) * x
        return pt.where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    @property
    def variance(self):
        cut = self._cut_probs()
        v = (cut * (cut - 1) / (1 - 2 * cut) ** 2
             + 1 / (pt.log1p(-cut) - pt.log(cut)) ** 2)
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return pt.where(self._outside_unstable_region(), v, taylor)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        u = pt.rand(shape, dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        _check_value(self, value)
        logits, value = broadcast_all(self.logits, value)
        return (-F.binary_cross_entropy_with_logits(logits, value, reduction="none")
                + self._cont_bern_log_norm())

    def cdf(self, value):
        _check_value(self, value)
        cut = self._cut_probs()
        cdfs = (cut ** value * (1 - cut) ** (1 - value) + cut - 1) / (2 * cut - 1)
        inner = pt.where(self._outside_unstable_region(), cdfs, value)
        return pt.where(value <= 0, 0.0, pt.where(value >= 1, 1.0, inner))

    def icdf(self, value):
        cut = self._cut_probs()
        inv = ((pt.log1p(-cut + value * (2 * cut - 1)) - pt.log1p(-cut))
               / (pt.log(cut) - pt.log1p(-cut)))
        return pt.where(self._outside_unstable_region(), inv, value)

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        """log of the integral of exp(x t) over [0, 1], ``log(expm1(x) / x)``; near x = 0
        (inside the region ``lims`` maps to) its Taylor series."""
        lo, hi = self._lims[0] - 0.5, self._lims[1] - 0.5
        stable = (x <= lo) | (x > hi)
        xs = pt.where(stable, x, 1.0)
        exact = pt.log((pt.expm1(xs) / xs).abs())
        taylor = 0.5 * x + x ** 2 / 24.0 - x ** 4 / 2880.0
        return pt.where(stable, exact, taylor)

    @property
    def _mean_carrier_measure(self):
        return 0.0

    def entropy(self):
        log_p0 = pt.log1p(-self.probs)
        log_p1 = pt.log(self.probs)
        return self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0


def _log_i0(k):
    return pt.special.i0e(k).log() + k


class VonMises(Distribution):
    """The von Mises distribution on the circle, draws in [-pi, pi): density
    ``exp(concentration cos(x - loc)) / (2 pi I0(concentration))``.

    Draws use Best and Fisher's (1979) wrapped-Cauchy rejection sampler, computed in float64
    (as PyTorch); they carry no gradient (``has_rsample`` is False, as PyTorch).
    ``variance`` is the circular variance ``1 - I1(k) / I0(k)``.
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real  # any angle: the density is 2 pi periodic (as PyTorch)
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        k = self.concentration
        return 1 - pt.special.i1e(k) / pt.special.i0e(k)

    def log_prob(self, value):
        _check_value(self, value)
        k = self.concentration
        return k * pt.cos(value - self.loc) - math.log(2 * math.pi) - _log_i0(k)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with pt.no_grad():
            k = self.concentration.detach().to(pt.float64).expand(shape)
            loc = self.loc.detach().to(pt.float64).expand(shape)
            tau = 1 + (1 + 4 * k * k).sqrt()
            rho = (tau - (2 * tau).sqrt()) / (2 * k)
            r = (1 + rho * rho) / (2 * rho)
            # for tiny k the formula cancels; its series is 1 / k + k
            r = pt.where(k < 1e-5, 1 / k + k, r)
            out = pt.zeros(shape, dtype=pt.float64, device=k.device)
            todo = pt.ones(shape, dtype=pt.bool, device=k.device)
            while bool(todo.any()):
                u1, u2, u3 = (pt.rand(shape, dtype=pt.float64, device=k.device)
                              for _ in range(3))
                z = pt.cos(math.pi * u1)
                f = (1 + r * z) / (r + z)
                c = k * (r - f)
                accept = ((c * (2 - c) - u2 > 0) | (pt.log(c / u2) + 1 - c >= 0)) & todo
                x = pt.sign(u3 - 0.5) * pt.acos(f.clamp(min=-1, max=1))
                out = pt.where(accept, x, out)
                todo = todo & ~accept
            out = pt.remainder(out + math.pi + loc, 2 * math.pi) - math.pi
            return out.to(self.loc.dtype)


class GeneralizedPareto(Distribution):
    """The generalized Pareto distribution with ``loc``, ``scale`` (> 0) and
    ``concentration`` xi (PyTorch's and TensorFlow Probability's parametrisation):
    ``P(X > x) = (1 + xi z) ** (-1 / xi)`` with ``z = (x - loc) / scale`` (``exp(-z)`` at
    xi = 0); the support is ``[loc, loc - scale / xi]`` for xi < 0, else ``[loc, inf)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive,
                       "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def _split(self):
        """Where xi is (near) 0, and xi with those entries replaced by 1 (so the xi != 0
        branch stays finite there)."""
        c = self.concentration
        zero = pt.isclose(c, pt.zeros_like(c))
        return zero, pt.where(zero, 1.0, c)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        u = pt.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value):
        _check_value(self, value)
        z = (value - self.loc) / self.scale
        zero, c = self._split()
        y = 1 / c + 1
        nonzero = pt.where(y == 0, y, y * pt.log1p(c * z))
        return -self.scale.log() - pt.where(zero, z, nonzero)

    def log_survival_function(self, value):
        """``log P(X > value)``."""
        _check_value(self, value)
        z = (value - self.loc) / self.scale
        zero, c = self._split()
        return pt.where(zero, -z, -pt.log1p(c * z) / c)

    def log_cdf(self, value):
        """``log P(X <= value)``."""
        return pt.log1p(-pt.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return pt.exp(self.log_cdf(value))

    def icdf(self, value):
        zero, c = self._split()
        log_u = pt.log1p(-value)
        nonzero = self.loc + self.scale / c * pt.expm1(-c * log_u)
        return pt.where(zero, self.loc - self.scale * log_u, nonzero)

    @property
    def mean(self):
        c = self.concentration
        ok = c < 1
        safe = pt.where(ok, c, 0.5)
        return pt.where(ok, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self):
        c = self.concentration
        ok = c < 0.5
        safe = pt.where(ok, c, 0.25)
        return pt.where(ok, self.scale ** 2 / ((1 - safe) ** 2 * (1 - 2 * safe)), math.nan)

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return (self.scale.log() + self.concentration + 1).expand(tuple(self.batch_shape))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        c = self.concentration
        upper = pt.where(c < 0, self.loc - self.scale / pt.where(c < 0, c, -1.0), math.inf)
        return constraints.interval(self.loc, upper)
