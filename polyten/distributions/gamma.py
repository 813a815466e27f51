"""The gamma family: Gamma, Chi2, Beta, Dirichlet; and Poisson, which shares its special
functions (``lgamma``, ``digamma``).

Samplers: Marsaglia and Tsang's squeeze-and-reject method for gamma variates (with
``U ** (1 / a)`` boosting for a < 1) and gamma ratios for Beta and Dirichlet, all with the
implicit reparameterization gradient (``rsample``); for Poisson the product of uniforms
below rate 10 and Hormann's transformed rejection (PTRS) from 10.  Each is a loop over
vectorised rounds that redraws only what was rejected: every round reads one flag from the
device."""

from __future__ import annotations


import polyten as pt
from polyten.nn import functional as F

from . import constraints
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .utils import broadcast_all

__all__ = ["Gamma", "Chi2", "Beta", "Dirichlet", "Poisson"]


def _standard_gamma(alpha):
    """Draws of Gamma(alpha, 1), one per entry of ``alpha`` (no gradient)."""
    with pt.no_grad():
        dt, dev = alpha.dtype, alpha.device
        small = alpha < 1
        a = pt.where(small, alpha + 1, alpha)
        d = a - 1.0 / 3.0
        c = (9 * d).rsqrt()
        out = pt.zeros_like(a)
        todo = pt.ones(tuple(a.shape), dtype=pt.bool, device=dev)
        while bool(todo.any()):
            x = pt.randn(tuple(a.shape), dtype=dt, device=dev)
            u = pt.rand(tuple(a.shape), dtype=dt, device=dev)
            v = (1 + c * x) ** 3
            ok = v > 0
            vs = pt.where(ok, v, 1.0)
            accept = ok & (pt.log(u) < 0.5 * x * x + d - d * vs + d * pt.log(vs)) & todo
            out = pt.where(accept, d * vs, out)
            todo = todo & ~accept
        # a < 1: Gamma(a) = Gamma(a + 1) * U ** (1 / a); kept above the smallest normal
        u = pt.rand(tuple(a.shape), dtype=dt, device=dev)
        boost = pt.exp(pt.log(u) / pt.where(small, alpha, 1.0))
        out = pt.where(small, out * boost, out)
        return out.clamp(min=pt.finfo(dt).tiny)


def _standard_gamma_rsample(alpha):
    """Gamma(alpha, 1) draws carrying the implicit reparameterization gradient
    ``dx / dalpha = -(dP(alpha, x) / dalpha) / density(x)`` (P the CDF: a draw keeps its
    quantile as alpha moves), with dP / dalpha from autograd through
    :func:`polyten.special.gammainc`.  Without a graph it is a plain draw."""
    x = _standard_gamma(alpha.detach())
    if not (alpha.requires_grad and pt.is_grad_enabled()):
        return x
    p = pt.special.gammainc(alpha, x)
    with pt.no_grad():
        dens = pt.exp((alpha - 1) * pt.log(x) - x - pt.lgamma(alpha))
        dens = dens.clamp(min=pt.finfo(x.dtype).tiny)
    # value x; gradient -(dP/dalpha) / density
    return x - (p - p.detach()) / dens


class Gamma(ExponentialFamily):
    """The gamma distribution with ``concentration`` (shape, > 0) and ``rate`` (> 0):
    density ``rate**a x**(a-1) exp(-rate x) / Gamma(a)``.

    ``rsample`` differentiates draws by implicit reparameterization (as PyTorch), the
    derivative of the CDF taken through :func:`polyten.special.gammainc`.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate ** 2

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        return _standard_gamma_rsample(self.concentration.expand(shape)) / self.rate.expand(
            shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration, self.rate
        return pt.xlogy(a, b) + pt.xlogy(a - 1, value) - b * value - pt.lgamma(a)

    def entropy(self):
        a = self.concentration
        return a - pt.log(self.rate) + pt.lgamma(a) + (1.0 - a) * pt.digamma(a)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return pt.special.gammainc(self.concentration, value * self.rate)

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return pt.lgamma(x + 1) + (x + 1) * pt.log(-y.reciprocal())

    @property
    def _mean_carrier_measure(self):
        return 0.0


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        self.df = df
        super().__init__(0.5 * df, pt.full_like(df, 0.5), validate_args=validate_args)

    def _param_names(self):
        return ("df", "concentration", "rate")


class Beta(Distribution):
    """The beta distribution on [0, 1]: density ``x**(a-1) (1-x)**(b-1) / B(a, b)`` with
    ``a = concentration1``, ``b = concentration0``."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1,
                                                                 concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return _dirichlet_mode(pt.stack([self.concentration1, self.concentration0], -1))[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total ** 2 * (total + 1))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        x = _standard_gamma_rsample(self.concentration1.expand(shape))
        y = _standard_gamma_rsample(self.concentration0.expand(shape))
        return x / (x + y)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return (pt.xlogy(a - 1, value) + pt.xlogy(b - 1, 1 - value)
                + pt.lgamma(a + b) - pt.lgamma(a) - pt.lgamma(b))

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        t = a + b
        return (pt.lgamma(a) + pt.lgamma(b) - pt.lgamma(t) - (a - 1) * pt.digamma(a)
                - (b - 1) * pt.digamma(b) + (t - 2) * pt.digamma(t))


def _dirichlet_mode(alpha):
    """The Dirichlet mode ``(alpha - 1)_+ / sum``; where every alpha < 1 the density peaks at
    the corners, and PyTorch picks the first: a one-hot vector."""
    am1 = (alpha - 1).clamp(min=0)
    mode = am1 / am1.sum(dim=-1, keepdim=True)
    corner = F.one_hot(mode.argmax(dim=-1), alpha.shape[-1]).to(alpha.dtype)
    return pt.where((alpha < 1).all(dim=-1, keepdim=True), corner, mode)


class Dirichlet(Distribution):
    """The Dirichlet distribution over the simplex with ``concentration`` (..., K), > 0."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if not isinstance(concentration, pt.Tensor) or concentration.ndim < 1:
            raise ValueError("Dirichlet: concentration must be a tensor of at least one dim "
                             "(..., K)")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:],
                         validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(dim=-1, keepdim=True)

    @property
    def mode(self):
        return _dirichlet_mode(self.concentration)

    @property
    def variance(self):
        a0 = self.concentration.sum(dim=-1, keepdim=True)
        return self.concentration * (a0 - self.concentration) / (a0 ** 2 * (a0 + 1))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        g = _standard_gamma_rsample(self.concentration.expand(shape))
        return g / g.sum(dim=-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a = self.concentration
        return (pt.xlogy(a - 1, value).sum(dim=-1) + pt.lgamma(a.sum(dim=-1))
                - pt.lgamma(a).sum(dim=-1))

    def entropy(self):
        a = self.concentration
        k = a.shape[-1]
        a0 = a.sum(dim=-1)
        return (pt.lgamma(a).sum(dim=-1) - pt.lgamma(a0) - (k - a0) * pt.digamma(a0)
                - ((a - 1) * pt.digamma(a)).sum(dim=-1))


def _poisson_sample(rate):
    """Poisson draws, one per entry of ``rate`` (no gradient)."""
    with pt.no_grad():
        dt, dev, shape = rate.dtype, rate.device, tuple(rate.shape)
        out = pt.zeros_like(rate)
        small = rate < 10
        # below 10: count uniforms until their product drops below exp(-rate)
        if bool(small.any()):
            limit = pt.exp(-rate)
            prod = pt.rand(shape, dtype=dt, device=dev)
            count = pt.zeros_like(rate)
            todo = small & (prod > limit)
            while bool(todo.any()):
                count = count + todo.to(dt)
                prod = pt.where(todo, prod * pt.rand(shape, dtype=dt, device=dev), prod)
                todo = todo & (prod > limit)
            out = pt.where(small, count, out)
        large = ~small
        if bool(large.any()):  # PTRS (Hormann 1993)
            lam = pt.where(large, rate, 10.0)
            slam, loglam = lam.sqrt(), lam.log()
            b = 0.931 + 2.53 * slam
            a = -0.059 + 0.02483 * b
            inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
            vr = 0.9277 - 3.6224 / (b - 2)
            todo = large
            while bool(todo.any()):
                u = pt.rand(shape, dtype=dt, device=dev) - 0.5
                v = pt.rand(shape, dtype=dt, device=dev)
                us = 0.5 - u.abs()
                k = pt.floor((2 * a / us + b) * u + lam + 0.43)
                quick = (us >= 0.07) & (v <= vr)
                safe_k = k.clamp(min=0)
                slow = ((k >= 0) & ~((us < 0.013) & (v > us)) &
                        (pt.log(v) + pt.log(inv_alpha) - pt.log(a / (us * us) + b)
                         <= -lam + safe_k * loglam - pt.lgamma(safe_k + 1)))
                accept = todo & (quick | slow)
                out = pt.where(accept, k, out)
                todo = todo & ~accept
        return out


class Poisson(ExponentialFamily):
    """The Poisson distribution with ``rate`` (>= 0): ``P(k) = rate**k exp(-rate) / k!``."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        return _poisson_sample(self.rate.detach().expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        if not value.dtype.is_floating_point:
            value = value.to(self.rate.dtype)
        rate, value = broadcast_all(self.rate, value)
        return pt.xlogy(value, rate) - rate - pt.lgamma(value + 1)

    @property
    def _natural_params(self):
        return (pt.log(self.rate),)

    def _log_normalizer(self, x):
        return pt.exp(x)
