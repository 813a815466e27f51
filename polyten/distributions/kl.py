"""``kl_divergence(p, q)``: KL(p || q) in closed form, looked up by the pair of types (the most
specific registered pair along both classes' MROs, as ``torch.distributions.kl``)."""

from __future__ import annotations

import math

import polyten as pt
from polyten.nn import functional as F

from .continuous import Exponential, Laplace, LogNormal, Normal, Uniform
from .discrete import Bernoulli, Categorical, Geometric, OneHotCategorical
from .gamma import Beta, Dirichlet, Gamma, Poisson
from .independent import Independent
from .multivariate_normal import MultivariateNormal, _batch_mahalanobis

__all__ = ["kl_divergence", "register_kl"]

_KL = {}
_CACHE = {}


def register_kl(type_p, type_q):
    """Decorator: ``@register_kl(Normal, Normal) def kl(p, q): ...``."""
    for t in (type_p, type_q):
        if not isinstance(t, type):
            raise TypeError(f"register_kl: expected distribution classes, got {t!r}")

    def deco(fn):
        _KL[type_p, type_q] = fn
        _CACHE.clear()
        return fn
    return deco


def _lookup(tp, tq):
    key = (tp, tq)
    if key not in _CACHE:
        best = None
        for i, sp in enumerate(tp.__mro__):
            for j, sq in enumerate(tq.__mro__):
                fn = _KL.get((sp, sq))
                if fn is not None and (best is None or (i + j) < best[0]):
                    best = (i + j, fn)
        _CACHE[key] = best[1] if best else None
    return _CACHE[key]


def kl_divergence(p, q):
    """The Kullback-Leibler divergence KL(p || q), one value per batch entry.

    Raises ``NotImplementedError`` naming both types when no closed form is registered.
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(f"kl_divergence: no closed form registered for "
                                  f"({type(p).__name__}, {type(q).__name__}); register one "
                                  f"with @polyten.distributions.register_kl")
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - pt.log(var_ratio))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = pt.where(q.probs == 0, math.inf, t1)
    t1 = pt.where(p.probs == 0, 0.0, t1)
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = pt.where(q.probs == 1, math.inf, t2)
    t2 = pt.where(p.probs == 1, 0.0, t2)
    return t1 + t2


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - pt.log1p(-q.probs) / p.probs - q.logits


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = pt.where(q.probs == 0, math.inf, t)
    t = pt.where(p.probs == 0, 0.0, t)
    return t.sum(dim=-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = pt.log((q.high - q.low) / (p.high - p.low))
    return pt.where((q.low > p.low) | (q.high < p.high), math.inf, result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - 1 - pt.log(ratio)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs = (p.loc - q.loc).abs()
    return (-pt.log(scale_ratio) + loc_abs / q.scale
            + scale_ratio * pt.exp(-loc_abs / p.scale) - 1)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    a1, b1, a2, b2 = p.concentration, p.rate, q.concentration, q.rate
    return ((a1 - a2) * pt.digamma(a1) - pt.lgamma(a1) + pt.lgamma(a2)
            + a2 * (pt.log(b1) - pt.log(b2)) + a1 * (b2 / b1 - 1))


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    t1 = pt.lgamma(a2) + pt.lgamma(b2) + pt.lgamma(a1 + b1)
    t2 = pt.lgamma(a1) + pt.lgamma(b1) + pt.lgamma(a2 + b2)
    t3 = (a1 - a2) * pt.digamma(a1)
    t4 = (b1 - b2) * pt.digamma(b1)
    t5 = (a2 - a1 + b2 - b1) * pt.digamma(a1 + b1)
    return t1 - t2 + t3 + t4 + t5


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    a, b = p.concentration, q.concentration
    a0 = a.sum(dim=-1)
    t1 = pt.lgamma(a0) - pt.lgamma(b.sum(dim=-1))
    t2 = (pt.lgamma(b) - pt.lgamma(a)).sum(dim=-1)
    t3 = ((a - b) * (pt.digamma(a) - pt.digamma(a0).unsqueeze(-1))).sum(dim=-1)
    return t1 + t2 + t3


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (pt.log(p.rate) - pt.log(q.rate)) - (p.rate - q.rate)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ValueError(f"kl_divergence: MultivariateNormals of different sizes "
                         f"{tuple(p.event_shape)} and {tuple(q.event_shape)}")
    n = p.event_shape[0]
    Lp, Lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    half_det_p = pt.log(Lp.diagonal(dim1=-2, dim2=-1)).sum(dim=-1)
    half_det_q = pt.log(Lq.diagonal(dim1=-2, dim2=-1)).sum(dim=-1)
    shape = pt.broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape))
    Lq_b = Lq.expand(tuple(shape) + (n, n))
    # trace(Sq^-1 Sp) = ||Lq^-1 Lp||_F^2
    M = pt.linalg.solve_triangular(Lq_b, Lp.expand(tuple(shape) + (n, n)), upper=False)
    trace = (M ** 2).sum(dim=(-2, -1))
    maha = _batch_mahalanobis(Lq_b, (q.loc - p.loc).expand(tuple(shape) + (n,)))
    return half_det_q - half_det_p + 0.5 * (trace + maha - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions with different "
                                  "reinterpreted_batch_ndims")
    r = kl_divergence(p.base_dist, q.base_dist)
    n = p.reinterpreted_batch_ndims
    return r.sum(dim=tuple(range(-n, 0))) if n else r
