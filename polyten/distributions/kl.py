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


# ----------------------------------------------------------------- the families added later ---
# Cross-family forms are written as E_p[-log q(X)] - H(p), with the expectations taken in
# closed form.

from .counts import Binomial  # noqa: E402
from .exp_family import ExponentialFamily  # noqa: E402
from .extra_continuous import ContinuousBernoulli  # noqa: E402
from .multivariate import LowRankMultivariateNormal  # noqa: E402
from .transformed_distribution import TransformedDistribution  # noqa: E402
from .transformed_families import Gumbel, HalfNormal, Pareto  # noqa: E402
from .transforms import _sum_rightmost  # noqa: E402

_EULER = 0.57721566490153286061


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("kl_divergence(Binomial, Binomial): only implemented where "
                                  "p.total_count >= q.total_count (equal counts give the "
                                  "closed form, a larger p count gives inf)")
    n = p.total_count
    pp = p.probs
    kl = n * (pp * (p.logits - q.logits) + pt.log1p(-pp) - pt.log1p(-q.probs))
    return pt.where(p.total_count > q.total_count, math.inf, kl)


def _gumbel_cross(q, mean_x, mgf_neg):
    """E_p[-log q(X)] for a Gumbel q, from E_p[X] and E_p[exp(-X / q.scale)]."""
    return (q.scale.log() + (mean_x - q.loc) / q.scale
            + pt.exp(q.loc / q.scale) * mgf_neg)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    # E[exp(-X / b)] = exp(-loc_p / b) Gamma(1 + scale_p / b) for X ~ Gumbel(loc_p, scale_p)
    mgf = pt.exp(-p.loc / q.scale + pt.lgamma(1 + p.scale / q.scale))
    return _gumbel_cross(q, p.mean, mgf) - p.entropy()


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p, q):
    rb = p.rate * q.scale
    return _gumbel_cross(q, p.rate.reciprocal(), rb / (rb + 1)) - p.entropy()


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p, q):
    mgf = pt.exp(-p.loc / q.scale + 0.5 * (p.scale / q.scale) ** 2)
    return _gumbel_cross(q, p.loc, mgf) - p.entropy()


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p, q):
    b = q.scale
    mgf = b * (pt.exp(-p.low / b) - pt.exp(-p.high / b)) / (p.high - p.low)
    return _gumbel_cross(q, p.mean, mgf) - p.entropy()


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p, q):
    mgf = (1 + (p.rate * q.scale).reciprocal()) ** (-p.concentration)
    return _gumbel_cross(q, p.mean, mgf) - p.entropy()


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    r = (p.scale / q.scale) ** 2
    return 0.5 * (r - 1 - pt.log(r))


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    a1, a2 = p.alpha, q.alpha
    kl = a2 * pt.log(p.scale / q.scale) + pt.log(a1 / a2) + a2 / a1 - 1
    return pt.where(p.scale < q.scale, math.inf, kl)


def _as_mvn(d):
    """A LowRankMultivariateNormal as the MultivariateNormal of its covariance."""
    return MultivariateNormal(d.loc, covariance_matrix=d.covariance_matrix,
                              validate_args=False)


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p, q):
    return _kl_mvn_mvn(_as_mvn(p), _as_mvn(q))


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p, q):
    return _kl_mvn_mvn(_as_mvn(p), q)


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p, q):
    return _kl_mvn_mvn(p, _as_mvn(q))


def _cb_neg_log_density_terms(q):
    """-log q(x) = -x logit_q - log(1 - p_q) - log C(p_q): (coefficient of x, constant)."""
    return -q.logits, -pt.log1p(-q.probs) - q._cont_bern_log_norm()


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_cb_cb(p, q):
    coef, const = _cb_neg_log_density_terms(q)
    return coef * p.mean + const - p.entropy()


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_cb(p, q):
    coef, const = _cb_neg_log_density_terms(q)
    return coef * p.mean + const - p.entropy()


@register_kl(ContinuousBernoulli, Exponential)
def _kl_cb_exponential(p, q):
    return -p.entropy() - pt.log(q.rate) + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_cb_normal(p, q):
    second = p.variance + (p.mean - q.loc) ** 2
    return (-p.entropy() + 0.5 * math.log(2 * math.pi) + pt.log(q.scale)
            + second / (2 * q.scale ** 2))


@register_kl(ContinuousBernoulli, Uniform)
def _kl_cb_uniform(p, q):
    kl = -p.entropy() + pt.log(q.high - q.low)
    return pt.where((q.low > 0) | (q.high < 1), math.inf, kl)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    if p.transforms != q.transforms:
        raise NotImplementedError("kl_divergence(TransformedDistribution, "
                                  "TransformedDistribution): only implemented for the same "
                                  "transforms (KL is invariant under one bijection)")
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise NotImplementedError("kl_divergence(TransformedDistribution, "
                                  "TransformedDistribution): the event shapes differ")
    extra = len(p.event_shape) - len(p.base_dist.event_shape)
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), extra)


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p, q):
    """The Bregman divergence of the log normalizer F:
    ``F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)>``."""
    if type(p) is not type(q):
        # the Bregman form needs two members of one family: otherwise nothing is registered
        raise NotImplementedError(f"kl_divergence: no closed form registered for "
                                  f"({type(p).__name__}, {type(q).__name__}); register one "
                                  f"with @polyten.distributions.register_kl")
    params, lg, grads = p._grad_log_normalizer()
    q_params = q._natural_params
    result = q._log_normalizer(*q_params) - lg
    for pp, qp, g in zip(params, q_params, grads):
        result = result - _sum_rightmost((qp - pp) * g, len(q.event_shape))
    return result


def _inf_like(p, q):
    """inf for every pair of batch entries (the supports do not nest)."""
    shape = pt.broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape))
    like = p.mean
    return pt.full(tuple(shape), math.inf, dtype=like.dtype, device=like.device)


for _p, _q in ((Beta, Pareto), (Exponential, Pareto), (Gamma, Pareto), (Normal, Pareto),
               (Laplace, Pareto), (Gumbel, Pareto), (ContinuousBernoulli, Pareto),
               (Exponential, ContinuousBernoulli), (Gamma, ContinuousBernoulli),
               (Normal, ContinuousBernoulli), (Gumbel, ContinuousBernoulli),
               (Laplace, ContinuousBernoulli), (Pareto, ContinuousBernoulli),
               (Gumbel, Beta), (Gumbel, Exponential), (Gumbel, Gamma), (Gumbel, Uniform),
               (Pareto, Beta), (Pareto, Uniform), (Poisson, Binomial), (Poisson, Bernoulli)):
    register_kl(_p, _q)(_inf_like)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p, q):
    pp = p.probs
    return pt.xlogy(1 - pp, 1 - pp) + pt.xlogy(pp, pp) + q.rate - pp * pt.log(q.rate)


def _pareto_moments(p, min_alpha):
    """Pareto mean and variance with alpha replaced by a harmless value where
    ``alpha <= min_alpha`` (the KL is inf there; the stand-in keeps gradients finite)."""
    a = pt.where(p.alpha > min_alpha, p.alpha, min_alpha + 1.0)
    mean = a * p.scale / (a - 1)
    var = p.scale ** 2 * a / ((a - 1) ** 2 * (a - 2)) if min_alpha >= 2 else None
    return mean, var


@register_kl(Pareto, Exponential)
def _kl_pareto_exponential(p, q):
    mean, _ = _pareto_moments(p, 1.0)
    kl = -p.entropy() - pt.log(q.rate) + q.rate * mean
    return pt.where(p.alpha <= 1, math.inf, kl)


@register_kl(Pareto, Gamma)
def _kl_pareto_gamma(p, q):
    k, r = q.concentration, q.rate
    mean, _ = _pareto_moments(p, 1.0)
    mean_log = pt.log(p.scale) + p.alpha.reciprocal()
    cross = -k * pt.log(r) + pt.lgamma(k) - (k - 1) * mean_log + r * mean
    return pt.where(p.alpha <= 1, math.inf, cross - p.entropy())


@register_kl(Pareto, Normal)
def _kl_pareto_normal(p, q):
    mean, var = _pareto_moments(p, 2.0)
    second = var + (mean - q.loc) ** 2
    cross = 0.5 * math.log(2 * math.pi) + pt.log(q.scale) + second / (2 * q.scale ** 2)
    return pt.where(p.alpha <= 2, math.inf, cross - p.entropy())


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p, q):
    a, b = p.low, p.high
    mean_log = (pt.xlogy(b, b) - pt.xlogy(a, a)) / (b - a) - 1
    cross = -pt.log(q.alpha) - q.alpha * pt.log(q.scale) + (q.alpha + 1) * mean_log
    return pt.where(a < q.scale, math.inf, cross - p.entropy())


@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p, q):
    second = p.variance + (p.mean - q.loc) ** 2
    cross = 0.5 * math.log(2 * math.pi) + pt.log(q.scale) + second / (2 * q.scale ** 2)
    return cross - p.entropy()


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_cb(p, q):
    coef, const = _cb_neg_log_density_terms(q)
    kl = coef * p.mean + const - p.entropy()
    return pt.where((p.low < 0) | (p.high > 1), math.inf, kl)
