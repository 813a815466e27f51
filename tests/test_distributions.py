"""polyten.distributions: densities, moments and KL divergences against independent float64
formulas (math, NumPy, mpmath) and torch.distributions; gradients through autograd; samplers
checked by Kolmogorov-Smirnov distances and frequencies against exact distribution
functions; shapes, validation errors and devices."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck

from _reference import close, to_numpy, torch_or_skip

D = pt.distributions
F64 = pt.float64


def T(v):
    return pt.tensor(np.asarray(v, dtype=np.float64))


# name -> (polyten factory, torch factory, values inside the support); parameters are
# NumPy float64 arrays so both libraries get the same numbers
CASES = {
    "Normal": (lambda m, P: m.Normal(P([0.5, -1.0]), P([2.0, 0.3])), [[0.1, -2.0], [3.0, 0.0]]),
    "LogNormal": (lambda m, P: m.LogNormal(P([0.5, -1.0]), P([0.7, 0.3])), [[0.1, 2.0],
                                                                           [3.0, 0.4]]),
    "Uniform": (lambda m, P: m.Uniform(P([0.0, -1.0]), P([2.0, 3.0])), [[0.1, -0.5],
                                                                       [1.9, 2.5]]),
    "Exponential": (lambda m, P: m.Exponential(P([0.5, 3.0])), [[0.1, 2.0], [3.0, 0.0]]),
    "Laplace": (lambda m, P: m.Laplace(P([0.5, -1.0]), P([2.0, 0.3])), [[0.1, -2.0],
                                                                       [3.0, 0.0]]),
    "Cauchy": (lambda m, P: m.Cauchy(P([0.5, -1.0]), P([2.0, 0.3])), [[0.1, -2.0], [3.0, 0.0]]),
    "Gamma": (lambda m, P: m.Gamma(P([0.5, 3.0]), P([2.0, 0.7])), [[0.1, 2.0], [3.0, 0.4]]),
    "Chi2": (lambda m, P: m.Chi2(P([1.5, 4.0])), [[0.1, 2.0], [3.0, 0.4]]),
    "Beta": (lambda m, P: m.Beta(P([0.5, 3.0]), P([2.0, 0.7])), [[0.1, 0.2], [0.95, 0.4]]),
    "Dirichlet": (lambda m, P: m.Dirichlet(P([[0.5, 3.0, 1.0], [2.0, 2.0, 2.0]])),
                  [[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]),
    "Poisson": (lambda m, P: m.Poisson(P([0.5, 12.0])), [[0.0, 3.0], [2.0, 12.0]]),
    "Bernoulli": (lambda m, P: m.Bernoulli(probs=P([0.2, 0.9])), [[0.0, 1.0], [1.0, 1.0]]),
    "Bernoulli(logits)": (lambda m, P: m.Bernoulli(logits=P([-1.0, 2.5])), [[0.0, 1.0],
                                                                           [1.0, 0.0]]),
    "Geometric": (lambda m, P: m.Geometric(probs=P([0.2, 0.9])), [[0.0, 3.0], [5.0, 1.0]]),
    "Categorical": (lambda m, P: m.Categorical(probs=P([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])),
                    [[0, 2], [1, 1]]),
    "Categorical(logits)": (lambda m, P: m.Categorical(logits=P([[0.2, -3.0, 0.5],
                                                                 [1.0, 0.0, 2.0]])),
                            [[0, 2], [1, 1]]),
    "OneHotCategorical": (lambda m, P: m.OneHotCategorical(probs=P([[0.2, 0.3, 0.5],
                                                                   [0.1, 0.1, 0.8]])),
                          [[0, 0, 1], [1, 0, 0]]),
    "MultivariateNormal": (lambda m, P: m.MultivariateNormal(
        P([1.0, -0.5]), covariance_matrix=P([[2.0, 0.3], [0.3, 0.5]])), [[0.1, 0.2], [2.0, -1.0]]),
    "MultivariateNormal(precision)": (lambda m, P: m.MultivariateNormal(
        P([1.0, -0.5]), precision_matrix=P([[2.0, 0.3], [0.3, 0.5]])), [[0.1, 0.2], [2.0, -1.0]]),
    "MultivariateNormal(scale_tril)": (lambda m, P: m.MultivariateNormal(
        P([1.0, -0.5]), scale_tril=P([[2.0, 0.0], [0.3, 0.5]])), [[0.1, 0.2], [2.0, -1.0]]),
}
DISCRETE_INT = ("Categorical", "Categorical(logits)")


def _pair(name):
    torch = torch_or_skip()
    make, values = CASES[name]
    p = make(D, lambda v: pt.tensor(np.asarray(v, dtype=np.float64)))
    t = make(torch.distributions, lambda v: torch.tensor(np.asarray(v, dtype=np.float64)))
    dt = np.int64 if name in DISCRETE_INT else np.float64
    return torch, p, t, np.asarray(values, dtype=dt)


@pytest.mark.parametrize("name", list(CASES))
def test_densities_and_moments_match_torch(name):
    torch, p, t, v = _pair(name)
    assert tuple(p.batch_shape) == tuple(t.batch_shape)
    assert tuple(p.event_shape) == tuple(t.event_shape)
    close(to_numpy(p.log_prob(pt.tensor(v))), t.log_prob(torch.tensor(v)).numpy(), rtol=1e-12)
    for attr in ("mean", "variance", "stddev", "mode", "entropy", "cdf", "icdf"):
        try:
            want = getattr(t, attr)
            want = (want(torch.tensor(v if attr == "cdf" else np.full(v.shape, 0.3)))
                    if attr in ("cdf", "icdf") else want() if attr == "entropy" else want)
        except (NotImplementedError, AttributeError):
            continue
        got = getattr(p, attr)
        got = (got(pt.tensor(v if attr == "cdf" else np.full(v.shape, 0.3)))
               if attr in ("cdf", "icdf") else got() if attr == "entropy" else got)
        np.testing.assert_allclose(to_numpy(got), want.numpy(), rtol=1e-11, atol=1e-13,
                                   err_msg=f"{name}.{attr}")


def test_densities_against_closed_forms_without_torch():
    x = np.array([0.2, 1.0, 4.5])
    a, b = 2.5, 1.5
    want = [a * math.log(b) + (a - 1) * math.log(v) - b * v - math.lgamma(a) for v in x]
    close(to_numpy(D.Gamma(T(a), T(b)).log_prob(T(x))), want, rtol=1e-13)
    want = [(a - 1) * math.log(v) + (b - 1) * math.log(1 - v) + math.lgamma(a + b)
            - math.lgamma(a) - math.lgamma(b) for v in (0.1, 0.5, 0.9)]
    close(to_numpy(D.Beta(T(a), T(b)).log_prob(T([0.1, 0.5, 0.9]))), want, rtol=1e-13)
    want = [k * math.log(3.5) - 3.5 - math.lgamma(k + 1) for k in (0, 1, 7)]
    close(to_numpy(D.Poisson(T(3.5)).log_prob(T([0, 1, 7]))), want, rtol=1e-13)
    want = [-(v - 1.0) ** 2 / 8 - math.log(2.0) - 0.5 * math.log(2 * math.pi) for v in x]
    close(to_numpy(D.Normal(T(1.0), T(2.0)).log_prob(T(x))), want, rtol=1e-14)
    # MultivariateNormal against NumPy's inverse and determinant
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    S = A @ A.T + np.eye(4)
    mu, xs = rng.standard_normal(4), rng.standard_normal((3, 4))
    d = xs - mu
    want = -0.5 * (4 * math.log(2 * math.pi) + np.linalg.slogdet(S)[1]
                   + np.einsum("ni,ij,nj->n", d, np.linalg.inv(S), d))
    mvn = D.MultivariateNormal(T(mu), covariance_matrix=T(S))
    close(to_numpy(mvn.log_prob(T(xs))), want, rtol=1e-12)
    close(to_numpy(mvn.entropy()), 0.5 * (4 * (1 + math.log(2 * math.pi))
                                          + np.linalg.slogdet(S)[1]), rtol=1e-13)


@pytest.mark.parametrize("name", ["Normal", "LogNormal", "Gamma", "Beta", "Dirichlet",
                                  "Laplace", "Exponential", "Poisson", "Bernoulli(logits)",
                                  "Categorical(logits)", "MultivariateNormal",
                                  "MultivariateNormal(scale_tril)"])
def test_log_prob_gradients_match_torch(name):
    torch, _, _, v = _pair(name)
    make = CASES[name][0]
    p_params, t_params = [], []

    def P(a):
        t = pt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
        p_params.append(t)
        return t

    def Tt(a):
        t = torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
        t_params.append(t)
        return t
    p, t = make(D, P), make(torch.distributions, Tt)
    (p.log_prob(pt.tensor(v)).sum() + p.entropy().sum()
     if name not in ("Poisson",) else p.log_prob(pt.tensor(v)).sum()).backward()
    (t.log_prob(torch.tensor(v)).sum() + t.entropy().sum()
     if name not in ("Poisson",) else t.log_prob(torch.tensor(v)).sum()).backward()
    for a, b in zip(p_params, t_params):
        close(to_numpy(a.grad), b.grad.numpy(), rtol=TRIGAMMA_RTOL, atol=TRIGAMMA_RTOL)


# torch's trigamma (polygamma(1, x), in the gradients of digamma) is accurate to about 1e-10;
# polyten's agrees with mpmath to 1e-15 (tests/test_special_gamma.py)
TRIGAMMA_RTOL = 1e-9


def test_gradcheck_of_the_gamma_family_log_densities():
    a = pt.tensor([0.7, 2.5], dtype=F64, requires_grad=True)
    b = pt.tensor([1.3, 0.4], dtype=F64, requires_grad=True)
    x = T([0.3, 2.0])
    assert gradcheck(lambda a, b: D.Gamma(a, b).log_prob(x) + D.Gamma(a, b).entropy(), (a, b))
    assert gradcheck(lambda a, b: D.Beta(a, b).log_prob(T([0.3, 0.8])), (a, b))
    c = pt.tensor([0.7, 2.5, 1.1], dtype=F64, requires_grad=True)
    assert gradcheck(lambda c: D.Dirichlet(c).log_prob(T([0.2, 0.5, 0.3])), (c,))


def test_rsample_carries_the_reparameterization_gradient():
    pt.manual_seed(0)
    loc = pt.tensor([0.5, -1.0], dtype=F64, requires_grad=True)
    scale = pt.tensor([2.0, 0.3], dtype=F64, requires_grad=True)
    d = D.Normal(loc, scale)
    z = d.rsample((5,))
    z.sum().backward()
    eps = (z.detach() - loc.detach()) / scale.detach()
    assert loc.grad.tolist() == [5.0, 5.0]
    close(to_numpy(scale.grad), to_numpy(eps.sum(0)), rtol=1e-12)
    assert not d.sample((3,)).requires_grad
    with pytest.raises(NotImplementedError, match="Poisson has no reparameterized sampler"):
        D.Poisson(T(1.0)).rsample()


def test_gamma_rsample_has_the_implicit_reparameterization_gradient():
    """A draw keeps its quantile as the concentration moves: dx/da = -(dP/da) / density,
    checked per draw against mpmath's derivative of the regularized incomplete gamma."""
    mpmath = pytest.importorskip("mpmath")
    pt.manual_seed(6)
    a = pt.tensor([0.4, 2.5, 40.0], dtype=F64, requires_grad=True)
    rate = pt.tensor(2.0, dtype=F64, requires_grad=True)
    x = D.Gamma(a, rate).rsample((4,))
    x.sum().backward()
    xs = to_numpy(x) * 2.0  # the standard gamma draws
    want = np.zeros(3)
    with mpmath.workdps(30):
        for v_row in xs:
            for j, (aj, v) in enumerate(zip((0.4, 2.5, 40.0), v_row)):
                dp = mpmath.diff(lambda t: mpmath.gammainc(t, 0, v, regularized=True), aj)
                dens = mpmath.exp((aj - 1) * mpmath.log(v) - v - mpmath.loggamma(aj))
                want[j] += float(-dp / dens) / 2.0
    close(to_numpy(a.grad), want, rtol=1e-8)
    close(rate.grad.item(), -to_numpy(x).sum() / 2.0, rtol=1e-12)


def test_gamma_family_rsample_gradients_have_the_right_expectation():
    """E[dx/dtheta] = d E[x] / dtheta: for Gamma(a, 1), 1; for Beta(a, b), b / (a + b)^2;
    for a Dirichlet component, (a0 - a_i) / a0^2."""
    pt.manual_seed(7)
    n = 4000
    a = pt.tensor(1.7, dtype=F64, requires_grad=True)
    D.Gamma(a, pt.tensor(1.0, dtype=F64)).rsample((n,)).mean().backward()
    assert a.grad.item() == pytest.approx(1.0, rel=0.05)
    a = pt.tensor(0.8, dtype=F64, requires_grad=True)
    b = pt.tensor(2.0, dtype=F64)
    D.Beta(a, b).rsample((n,)).mean().backward()
    assert a.grad.item() == pytest.approx(2.0 / 2.8 ** 2, rel=0.05)
    c = pt.tensor([0.8, 2.0, 1.2], dtype=F64, requires_grad=True)
    D.Dirichlet(c).rsample((n,))[:, 0].mean().backward()
    assert c.grad[0].item() == pytest.approx(3.2 / 16.0, rel=0.05)


# ---------------------------------------------------------------------------------- samplers ---
def _ks(samples, cdf, stride=1):
    """Kolmogorov-Smirnov distance between the samples and a distribution function, taken at
    every ``stride``-th order statistic (mpmath's functions are slow; at stride 20 of 20000
    samples this misses at most the CDF's rise between neighbouring points)."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(s)
    at = np.arange(0, n, stride)
    c = np.array([cdf(v) for v in s[at]])
    return max(((at + 1) / n - c).max(), (c - at / n).max())


N = 20000
KS_1PCT = 1.63 / math.sqrt(N)  # the 1% critical value; the seed fixes the outcome


def _gamma_cdf(a, rate):
    mpmath = pytest.importorskip("mpmath")
    return lambda v: float(mpmath.gammainc(a, 0, v * rate, regularized=True))


@pytest.mark.parametrize("a", [0.05, 0.6, 1.0, 3.7, 150.0])
def test_gamma_draws_follow_the_distribution(a):
    pt.manual_seed(1)
    x = to_numpy(D.Gamma(T(a), T(2.0)).sample((N,)))
    assert x.shape == (N,) and (x > 0).all()
    assert _ks(x, _gamma_cdf(a, 2.0), stride=20) < KS_1PCT


def test_beta_and_dirichlet_draws_follow_the_distribution():
    mpmath = pytest.importorskip("mpmath")
    pt.manual_seed(2)
    x = to_numpy(D.Beta(T(0.4), T(2.5)).sample((N,)))
    assert _ks(x, lambda v: float(mpmath.betainc(0.4, 2.5, 0, v, regularized=True)),
               stride=20) < KS_1PCT
    d = to_numpy(D.Dirichlet(T([0.4, 2.5, 1.0])).sample((N,)))
    assert d.shape == (N, 3)
    close(d.sum(-1), np.ones(N), rtol=1e-12)
    # the marginal of a Dirichlet component is Beta(a_i, a_0 - a_i)
    assert _ks(d[:, 0], lambda v: float(mpmath.betainc(0.4, 3.5, 0, v, regularized=True)),
               stride=20) < KS_1PCT


@pytest.mark.parametrize("name, make, cdf", [
    ("Normal", lambda: D.Normal(T(1.0), T(2.0)),
     lambda v: 0.5 * (1 + math.erf((v - 1.0) / (2.0 * math.sqrt(2))))),
    ("LogNormal", lambda: D.LogNormal(T(0.3), T(0.5)),
     lambda v: 0.5 * (1 + math.erf((math.log(v) - 0.3) / (0.5 * math.sqrt(2))))),
    ("Uniform", lambda: D.Uniform(T(-1.0), T(3.0)), lambda v: (v + 1) / 4),
    ("Exponential", lambda: D.Exponential(T(1.5)), lambda v: 1 - math.exp(-1.5 * v)),
    ("Laplace", lambda: D.Laplace(T(0.5), T(2.0)),
     lambda v: 0.5 * math.exp((v - 0.5) / 2) if v < 0.5 else 1 - 0.5 * math.exp(-(v - 0.5) / 2)),
    ("Cauchy", lambda: D.Cauchy(T(0.5), T(2.0)), lambda v: math.atan((v - 0.5) / 2) / math.pi
     + 0.5),
])
def test_continuous_draws_follow_the_distribution(name, make, cdf):
    pt.manual_seed(3)
    assert _ks(to_numpy(make().sample((N,))), cdf) < KS_1PCT


@pytest.mark.parametrize("rate", [0.3, 4.0, 9.99, 10.0, 57.0, 3000.0])
def test_poisson_draws_have_the_exact_frequencies(rate):
    pt.manual_seed(4)
    k = to_numpy(D.Poisson(T(rate)).sample((N,)))
    assert (k == np.round(k)).all() and (k >= 0).all()
    support = np.arange(int(rate + 8 * math.sqrt(rate) + 10))
    pmf = np.exp(support * math.log(rate) - rate - np.array([math.lgamma(s + 1)
                                                              for s in support]))
    freq = np.bincount(k.astype(np.int64), minlength=len(support))[:len(support)] / N
    # every probability within 4.5 standard errors, and the CDFs within the KS bound
    assert (np.abs(freq - pmf) <= 4.5 * np.sqrt(pmf * (1 - pmf) / N) + 1e-4).all()
    assert np.abs(np.cumsum(freq) - np.cumsum(pmf)).max() < KS_1PCT


def test_discrete_draws_have_the_exact_frequencies():
    pt.manual_seed(5)
    probs = np.array([0.1, 0.6, 0.3])
    c = to_numpy(D.Categorical(probs=T(probs)).sample((N,)))
    assert c.dtype == np.int64
    assert np.abs(np.bincount(c, minlength=3) / N - probs).max() < 4.5 * math.sqrt(0.25 / N)
    g = to_numpy(D.Geometric(probs=T(0.3)).sample((N,)))
    pmf = 0.7 ** np.arange(10) * 0.3
    assert np.abs(np.bincount(g.astype(np.int64), minlength=10)[:10] / N - pmf).max() < 0.015
    b = to_numpy(D.Bernoulli(probs=T(0.25)).sample((N,)))
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.25) < 4.5 * math.sqrt(
        0.25 * 0.75 / N)
    mvn = D.MultivariateNormal(T([1.0, -1.0]), covariance_matrix=T([[2.0, 0.6], [0.6, 1.0]]))
    z = to_numpy(mvn.sample((N,)))
    close(np.cov(z.T), [[2.0, 0.6], [0.6, 1.0]], rtol=0.05, atol=0.05)


# ------------------------------------------------------------------------------------ shapes ---
def test_sample_shapes_expand_independent_and_enumerate_support():
    d = D.Normal(pt.zeros(3, 1), pt.ones(2))
    assert tuple(d.batch_shape) == (3, 2) and tuple(d.sample().shape) == (3, 2)
    assert tuple(d.sample((4, 5)).shape) == (4, 5, 3, 2)
    assert tuple(d.sample(7).shape) == (7, 3, 2)
    e = d.expand((6, 3, 2))
    assert tuple(e.batch_shape) == (6, 3, 2) and tuple(e.log_prob(pt.zeros(3, 2)).shape) == (
        6, 3, 2)
    c = D.Categorical(logits=pt.zeros(4, 5))
    assert tuple(c.sample((2,)).shape) == (2, 4)
    assert tuple(c.expand((3, 4)).sample().shape) == (3, 4)
    assert c.enumerate_support().shape == (5, 4)
    oh = D.OneHotCategorical(logits=pt.zeros(4, 5))
    assert tuple(oh.sample((2,)).shape) == (2, 4, 5) and tuple(oh.event_shape) == (5,)
    assert tuple(D.Bernoulli(probs=pt.full((3,), 0.5)).enumerate_support().shape) == (2, 3)
    ind = D.Independent(D.Normal(pt.zeros(4, 3), pt.ones(4, 3)), 1)
    assert tuple(ind.batch_shape) == (4,) and tuple(ind.event_shape) == (3,)
    x = pt.randn(4, 3)
    close(to_numpy(ind.log_prob(x)), to_numpy(D.Normal(0.0, 1.0).log_prob(x).sum(-1)),
          rtol=1e-6)
    close(to_numpy(D.kl_divergence(ind, D.Independent(D.Normal(pt.ones(4, 3),
                                                               pt.ones(4, 3)), 1))),
          np.full(4, 1.5), rtol=1e-6)
    mvn = D.MultivariateNormal(pt.zeros(2, 3), scale_tril=pt.eye(3))
    assert tuple(mvn.batch_shape) == (2,) and tuple(mvn.sample((5,)).shape) == (5, 2, 3)
    assert tuple(mvn.expand((4, 2)).sample().shape) == (4, 2, 3)


def test_parameters_and_samples_stay_on_their_device(cpu2):
    loc = pt.zeros(3, device=cpu2)
    for d in (D.Normal(loc, 1.0), D.Gamma(loc + 2, 1.0), D.Poisson(loc + 3),
              D.Categorical(logits=pt.zeros(2, 3, device=cpu2))):
        s = d.sample((2,))
        assert s.device == cpu2, type(d).__name__
        assert d.log_prob(s).device == cpu2


# ------------------------------------------------------------------------------------- KL -----
KL_PAIRS = [
    ("Normal", lambda m, P: (m.Normal(P([0.5, -1.0]), P([2.0, 0.3])),
                             m.Normal(P([0.0, 1.0]), P([1.0, 0.7])))),
    ("LogNormal", lambda m, P: (m.LogNormal(P([0.5]), P([2.0])), m.LogNormal(P([0.1]),
                                                                             P([0.4])))),
    ("Bernoulli", lambda m, P: (m.Bernoulli(probs=P([0.2, 0.9])),
                                m.Bernoulli(probs=P([0.5, 0.4])))),
    ("Geometric", lambda m, P: (m.Geometric(probs=P([0.2, 0.9])),
                                m.Geometric(probs=P([0.5, 0.4])))),
    ("Categorical", lambda m, P: (m.Categorical(probs=P([0.2, 0.3, 0.5])),
                                  m.Categorical(probs=P([0.6, 0.3, 0.1])))),
    ("OneHotCategorical", lambda m, P: (m.OneHotCategorical(probs=P([0.2, 0.3, 0.5])),
                                        m.OneHotCategorical(probs=P([0.6, 0.3, 0.1])))),
    ("Uniform", lambda m, P: (m.Uniform(P([0.0, 0.0]), P([1.0, 3.0])),
                              m.Uniform(P([-1.0, 0.5]), P([2.0, 3.0])))),
    ("Exponential", lambda m, P: (m.Exponential(P([0.5])), m.Exponential(P([2.0])))),
    ("Laplace", lambda m, P: (m.Laplace(P([0.5]), P([2.0])), m.Laplace(P([-1.0]), P([0.5])))),
    ("Gamma", lambda m, P: (m.Gamma(P([0.5, 3.0]), P([2.0, 1.0])),
                            m.Gamma(P([1.5, 2.0]), P([1.0, 0.5])))),
    ("Beta", lambda m, P: (m.Beta(P([0.5]), P([2.0])), m.Beta(P([1.5]), P([1.0])))),
    ("Dirichlet", lambda m, P: (m.Dirichlet(P([0.5, 2.0, 1.0])),
                                m.Dirichlet(P([1.5, 1.0, 3.0])))),
    ("Poisson", lambda m, P: (m.Poisson(P([0.5, 3.0])), m.Poisson(P([2.0, 2.5])))),
    ("MultivariateNormal", lambda m, P: (
        m.MultivariateNormal(P([1.0, -0.5]), covariance_matrix=P([[2.0, 0.3], [0.3, 0.5]])),
        m.MultivariateNormal(P([[0.0, 0.0], [1.0, 1.0]]),
                             scale_tril=P([[1.0, 0.0], [0.4, 0.9]])))),
]


@pytest.mark.parametrize("name, make", KL_PAIRS, ids=[n for n, _ in KL_PAIRS])
def test_kl_divergence_matches_torch_with_gradients(name, make):
    torch = torch_or_skip()
    p_params, t_params = [], []

    def P(a):
        t = pt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
        p_params.append(t)
        return t

    def Tt(a):
        t = torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
        t_params.append(t)
        return t
    kl = D.kl_divergence(*make(D, P))
    tkl = torch.distributions.kl_divergence(*make(torch.distributions, Tt))
    np.testing.assert_allclose(to_numpy(kl), tkl.detach().numpy(), rtol=1e-11, atol=1e-14)
    if np.isfinite(tkl.detach().numpy()).all():
        kl.sum().backward()
        tkl.sum().backward()
        for a, b in zip(p_params, t_params):
            close(to_numpy(a.grad), b.grad.numpy(), rtol=TRIGAMMA_RTOL, atol=TRIGAMMA_RTOL)


def test_kl_lookup_and_registration():
    with pytest.raises(NotImplementedError, match=r"no closed form registered for "
                                                  r"\(Normal, Gamma\).*register_kl"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Gamma(1.0, 1.0))

    class Wide(D.Normal):
        pass
    # a subclass finds its parents' formula ...
    close(D.kl_divergence(Wide(0.0, 1.0), D.Normal(0.0, 2.0)).item(),
          math.log(2) + 1 / 8 - 0.5, rtol=1e-6)

    # ... until a more specific one is registered
    @D.register_kl(Wide, D.Normal)
    def _kl(p, q):
        return pt.zeros(())
    assert D.kl_divergence(Wide(0.0, 1.0), D.Normal(0.0, 2.0)).item() == 0.0


# --------------------------------------------------------------------------------- errors -----
def test_invalid_parameters_and_values_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"Normal: parameter scale of shape \(2,\) must "
                                         r"satisfy GreaterThan\(lower_bound=0.0\).*-1.0.*"
                                         r"validate_args=False"):
        D.Normal(pt.zeros(2), pt.tensor([1.0, -1.0]))
    D.Normal(pt.zeros(2), pt.tensor([1.0, -1.0]), validate_args=False)  # no check
    with pytest.raises(ValueError, match=r"Poisson: the value .* must lie in the support"):
        D.Poisson(pt.tensor(2.0)).log_prob(pt.tensor(1.5))
    with pytest.raises(ValueError, match=r"Beta: the value .*support"):
        D.Beta(1.0, 1.0).log_prob(pt.tensor(1.5))
    with pytest.raises(ValueError, match=r"Categorical: pass exactly one of probs and logits"):
        D.Categorical()
    with pytest.raises(ValueError, match=r"Uniform: low must be below high"):
        D.Uniform(2.0, 1.0)
    with pytest.raises(ValueError, match=r"does not broadcast with the batch shape \(3,\)"):
        D.Normal(pt.zeros(3), 1.0).log_prob(pt.zeros(4))
    with pytest.raises(ValueError, match=r"MultivariateNormal: pass exactly one of"):
        D.MultivariateNormal(pt.zeros(2))
    with pytest.raises(ValueError, match=r"MultivariateNormal: parameter covariance_matrix.*"
                                         r"PositiveDefinite"):
        D.MultivariateNormal(pt.zeros(2), covariance_matrix=pt.tensor([[1.0, 2.0],
                                                                       [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"Independent: reinterpreted_batch_ndims must be in "
                                         r"\[0, 1\]"):
        D.Independent(D.Normal(pt.zeros(3), 1.0), 2)
    with pytest.raises(TypeError, match=r"distributions: a parameter must be a tensor or a "
                                        r"number, got str"):
        D.Normal("0", 1.0)
    D.Distribution.set_default_validate_args(False)
    try:
        D.Normal(0.0, -1.0)  # unchecked now
    finally:
        D.Distribution.set_default_validate_args(True)
