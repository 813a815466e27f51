"""Multivariate and compound families: LowRankMultivariateNormal, Wishart, LKJCholesky,
MixtureSameFamily and OneHotCategoricalStraightThrough."""

from __future__ import annotations

import math
import numbers

import polyten as pt

from . import constraints
from .discrete import Categorical, OneHotCategorical
from .distribution import Distribution
from .gamma import Beta, Chi2
from .transforms import _vec_to_tril

__all__ = ["LowRankMultivariateNormal", "Wishart", "LKJCholesky", "MixtureSameFamily",
           "OneHotCategoricalStraightThrough"]

_LOG_2PI = math.log(2 * math.pi)


def _check_value(dist, value):
    if dist._validate_args:
        dist._validate_sample(value)


def _capacitance_tril(W, D):
    """Cholesky factor of the capacitance ``I + W^T D^-1 W`` (r x r), the small matrix of
    the Woodbury identity."""
    r = W.shape[-1]
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    K = Wt_Dinv @ W
    return pt.linalg.cholesky(K + pt.eye(r, dtype=W.dtype, device=W.device))


class LowRankMultivariateNormal(Distribution):
    """A multivariate normal whose covariance is low rank plus diagonal:
    ``cov_factor @ cov_factor.mT + diag(cov_diag)``.  Densities use the Woodbury identity and
    the matrix determinant lemma, costing O(n r^2) instead of O(n^3).

    Parameters
    ----------
    loc : Tensor
        Mean (..., n).
    cov_factor : Tensor
        W (..., n, r).
    cov_diag : Tensor
        D (..., n), > 0.
    """

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        name = "LowRankMultivariateNormal"
        for arg, v, nd in (("loc", loc, 1), ("cov_factor", cov_factor, 2),
                           ("cov_diag", cov_diag, 1)):
            if not isinstance(v, pt.Tensor) or v.ndim < nd:
                raise ValueError(f"{name}: {arg} must be a tensor of at least {nd} dims")
        n = loc.shape[-1]
        if cov_factor.shape[-2] != n:
            raise ValueError(f"{name}: cov_factor must be (..., {n}, rank) to match loc's "
                             f"last dim {n}, got shape {tuple(cov_factor.shape)}")
        if cov_diag.shape[-1] != n:
            raise ValueError(f"{name}: cov_diag must be (..., {n}) to match loc's last dim, "
                             f"got shape {tuple(cov_diag.shape)}")
        try:
            batch = pt.broadcast_shapes(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                        tuple(cov_diag.shape[:-1]))
        except ValueError:
            raise ValueError(f"{name}: the batch shapes of loc {tuple(loc.shape)}, "
                             f"cov_factor {tuple(cov_factor.shape)} and cov_diag "
                             f"{tuple(cov_diag.shape)} do not broadcast") from None
        batch = tuple(batch)
        self.loc = loc.expand(batch + (n,))
        self.cov_factor = cov_factor.expand(batch + tuple(cov_factor.shape[-2:]))
        self.cov_diag = cov_diag.expand(batch + (n,))
        super().__init__(batch, (n,), validate_args=validate_args)
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = _capacitance_tril(cov_factor, cov_diag)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape)
        for k in ("_unbroadcasted_cov_factor", "_unbroadcasted_cov_diag",
                  "_capacitance_tril"):
            new.__dict__[k] = self.__dict__[k]
        return new

    def _full(self, x, tail):
        return x.expand(tuple(self.batch_shape) + tail)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return self._full((W ** 2).sum(dim=-1) + D, tuple(self.event_shape))

    @property
    def covariance_matrix(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        n = self.event_shape[0]
        return self._full(W @ W.mT + pt.diag_embed(D), (n, n))

    @property
    def precision_matrix(self):
        # Woodbury: D^-1 - D^-1 W C^-1 W^T D^-1, C = L L^T the capacitance
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        A = pt.linalg.solve_triangular(self._capacitance_tril, W.mT / D.unsqueeze(-2),
                                       upper=False)
        n = self.event_shape[0]
        return self._full(pt.diag_embed(D.reciprocal()) - A.mT @ A, (n, n))

    @property
    def scale_tril(self):
        return pt.linalg.cholesky(self.covariance_matrix)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        W = self._unbroadcasted_cov_factor
        eps_w = pt.randn(shape[:-1] + (W.shape[-1],), dtype=self.loc.dtype,
                         device=self.loc.device)
        eps_d = pt.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + (W @ eps_w.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)

    def _log_det(self):
        return (2 * self._capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
                + self._unbroadcasted_cov_diag.log().sum(dim=-1))

    def log_prob(self, value):
        _check_value(self, value)
        diff = value - self.loc
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        L = self._capacitance_tril
        shape = tuple(pt.broadcast_shapes(tuple(diff.shape[:-1]), tuple(W.shape[:-2]),
                                          tuple(L.shape[:-2])))
        n, r = W.shape[-2], W.shape[-1]
        D = D.expand(shape + (n,))
        W = W.expand(shape + (n, r))
        diff = diff.expand(shape + (n,))
        term1 = (diff ** 2 / D).sum(dim=-1)
        wd = (W.mT @ (diff / D).unsqueeze(-1))
        z = pt.linalg.solve_triangular(L.expand(shape + (r, r)), wd, upper=False)
        maha = term1 - (z.squeeze(-1) ** 2).sum(dim=-1)
        return -0.5 * (n * _LOG_2PI + self._log_det() + maha)

    def entropy(self):
        n = self.event_shape[0]
        h = 0.5 * (n * (1.0 + _LOG_2PI) + self._log_det())
        return h.expand(tuple(self.batch_shape))


def _mvdigamma(x, p):
    """sum_{i<p} digamma(x - i / 2), the derivative of mvlgamma(x, p)."""
    i = pt.arange(p, dtype=x.dtype, device=x.device)
    return pt.digamma(x.unsqueeze(-1) - i / 2).sum(dim=-1)


class Wishart(Distribution):
    """The Wishart distribution over p x p positive definite matrices with ``df`` (> p - 1)
    degrees of freedom and scale matrix Sigma, given as exactly one of
    ``covariance_matrix`` (Sigma), ``precision_matrix`` or ``scale_tril``.

    ``rsample`` uses the Bartlett decomposition ``L A A^T L^T`` with chi-distributed
    diagonal (reparameterized, so gradients reach ``df``) and standard normal entries below
    it.  Unlike PyTorch it does not redraw singular samples: for p - 1 < df < p some may be
    singular.
    """

    support = constraints.positive_definite
    has_rsample = True

    @property
    def arg_constraints(self):
        p = self._event_shape[-1] if len(self._event_shape) else 1
        return {"df": constraints.greater_than(p - 1),
                "covariance_matrix": constraints.positive_definite,
                "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Wishart: pass exactly one of covariance_matrix, "
                             "precision_matrix and scale_tril")
        m = given[0]
        if not isinstance(m, pt.Tensor) or m.ndim < 2 or m.shape[-1] != m.shape[-2]:
            raise ValueError(f"Wishart: the scale matrix must be a tensor (..., p, p), got "
                             f"{tuple(getattr(m, 'shape', ()))}")
        p = m.shape[-1]
        if isinstance(df, numbers.Number):
            df = pt.tensor(float(df), dtype=m.dtype, device=m.device)
        elif not isinstance(df, pt.Tensor):
            raise TypeError(f"Wishart: df must be a tensor or a number, got "
                            f"{type(df).__name__}")
        if bool((df <= p - 1).any()):
            raise ValueError(f"Wishart: df must be greater than p - 1 = {p - 1} for {p} x {p} "
                             f"matrices, got {df.min().item()}")
        batch = tuple(pt.broadcast_shapes(tuple(m.shape[:-2]), tuple(df.shape)))
        self.df = df.expand(batch)
        name = ("scale_tril" if scale_tril is not None else
                "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        self.__dict__[name] = m.expand(batch + (p, p))
        super().__init__(batch, (p, p), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = pt.linalg.cholesky(covariance_matrix)
        else:
            from .multivariate_normal import _precision_to_scale_tril
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def _param_names(self):
        return ("df", "covariance_matrix", "precision_matrix", "scale_tril")

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape)
        new.__dict__["_unbroadcasted_scale_tril"] = self._unbroadcasted_scale_tril
        return new

    def _full(self, x):
        return x.expand(tuple(self.batch_shape) + tuple(self.event_shape))

    @property
    def scale_tril(self):
        if "scale_tril" in self.__dict__:
            return self.__dict__["scale_tril"]
        return self._full(self._unbroadcasted_scale_tril)

    @property
    def covariance_matrix(self):
        if "covariance_matrix" in self.__dict__:
            return self.__dict__["covariance_matrix"]
        L = self._unbroadcasted_scale_tril
        return self._full(L @ L.mT)

    @property
    def precision_matrix(self):
        if "precision_matrix" in self.__dict__:
            return self.__dict__["precision_matrix"]
        return pt.linalg.inv(self.covariance_matrix)

    def _df_mat(self):
        return self.df.reshape(tuple(self.batch_shape) + (1, 1))

    @property
    def mean(self):
        return self._df_mat() * self.covariance_matrix

    @property
    def mode(self):
        factor = self._df_mat() - self.event_shape[-1] - 1
        return pt.where(factor > 0, factor, math.nan) * self.covariance_matrix

    @property
    def variance(self):
        V = self.covariance_matrix
        d = V.diagonal(dim1=-2, dim2=-1)
        return self._df_mat() * (V ** 2 + d.unsqueeze(-1) * d.unsqueeze(-2))

    def rsample(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        p = self.event_shape[-1]
        full = tuple(sample_shape) + tuple(self.batch_shape)
        dfs = self.df.unsqueeze(-1) - pt.arange(p, dtype=self.df.dtype, device=self.df.device)
        chi = Chi2(dfs.expand(full + (p,)), validate_args=False).rsample().sqrt()
        normals = pt.randn(full + (p * (p - 1) // 2,), dtype=self.df.dtype,
                           device=self.df.device)
        A = pt.diag_embed(chi) + _vec_to_tril(normals, p, -1)
        C = self._unbroadcasted_scale_tril @ A
        return C @ C.mT

    def log_prob(self, value):
        _check_value(self, value)
        nu, p = self.df, self.event_shape[-1]
        L = self._unbroadcasted_scale_tril
        Lx = pt.linalg.cholesky(value)
        shape = tuple(pt.broadcast_shapes(tuple(Lx.shape[:-2]), tuple(L.shape[:-2])))
        M = pt.linalg.solve_triangular(L.expand(shape + (p, p)), Lx.expand(shape + (p, p)),
                                       upper=False)
        trace = (M ** 2).sum(dim=(-2, -1))  # tr(Sigma^-1 X)
        half_logdet_s = L.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
        half_logdet_x = Lx.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
        return (-nu * p / 2 * math.log(2) - nu * half_logdet_s - pt.mvlgamma(nu / 2, p)
                + (nu - p - 1) * half_logdet_x - 0.5 * trace)

    def entropy(self):
        nu, p = self.df, self.event_shape[-1]
        half_logdet_s = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(
            dim=-1)
        return ((p + 1) * half_logdet_s + p * (p + 1) / 2 * math.log(2)
                + pt.mvlgamma(nu / 2, p) - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p)
                + nu * p / 2)


class LKJCholesky(Distribution):
    """The LKJ distribution over lower Cholesky factors L of ``dim`` x ``dim`` correlation
    matrices (density of ``L L^T`` proportional to ``det(L L^T) ** (concentration - 1)``).

    Draws use the onion method (Lewandowski, Kurowicka and Joe, 2009): row i >= 1 is a
    uniform direction in the first i coordinates scaled by the square root of a
    Beta(i / 2, concentration + (dim - 1 - i) / 2) draw, then the diagonal entry that makes
    the row a unit vector.  (PyTorch 2.13 draws Beta(i - 1/2, ...), which matches only for
    i = 1: its rows below the second have the wrong law.)  ``has_rsample`` is False (as
    PyTorch).
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2:
            raise ValueError(f"LKJCholesky: dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        if isinstance(concentration, numbers.Number):
            concentration = pt.tensor(float(concentration))
        elif not isinstance(concentration, pt.Tensor):
            raise TypeError(f"LKJCholesky: concentration must be a tensor or a number, got "
                            f"{type(concentration).__name__}")
        self.concentration = concentration
        super().__init__(concentration.shape, (dim, dim), validate_args=validate_args)

    def _beta(self):
        """The squared norms y_i of the rows' off-diagonal parts: Beta(i / 2, concentration +
        (dim - 2) / 2 - (i - 1) / 2) for row i >= 1 (row 0 has none; its Beta is unused)."""
        c = self.concentration
        marginal = c + 0.5 * (self.dim - 2)
        i = pt.arange(self.dim, dtype=c.dtype, device=c.device)
        offset = (i - 1).clamp(min=0)
        return Beta((i / 2).clamp(min=0.5), marginal.unsqueeze(-1) - 0.5 * offset,
                    validate_args=False)

    def sample(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        with pt.no_grad():
            c = self.concentration
            y = self._beta().sample(tuple(sample_shape)).unsqueeze(-1)
            shape = tuple(self._extended_shape(sample_shape))
            u = pt.randn(shape, dtype=c.dtype, device=c.device).tril(-1)
            norm = pt.linalg.vector_norm(u, dim=-1, keepdim=True)
            # row 0 has no free entries (norm 0): its direction is left at 0
            u = u / pt.where(norm > 0, norm, 1.0)
            w = y.sqrt() * u
            diag = (1 - (w ** 2).sum(dim=-1)).clamp(min=pt.finfo(c.dtype).tiny).sqrt()
            return w + pt.diag_embed(diag)

    def log_prob(self, value):
        _check_value(self, value)
        d = self.dim
        c = self.concentration
        diag = value.diagonal(dim1=-2, dim2=-1)[..., 1:]
        order = pt.arange(2, d + 1, dtype=c.dtype, device=c.device)
        power = 2 * (c - 1).unsqueeze(-1) + d - order
        unnorm = (power * diag.log()).sum(dim=-1)
        dm1 = d - 1
        alpha = c + 0.5 * dm1
        log_norm = (0.5 * dm1 * math.log(math.pi) + pt.mvlgamma(alpha - 0.5, dm1)
                    - pt.lgamma(alpha) * dm1)
        return unnorm - log_norm


class MixtureSameFamily(Distribution):
    """A mixture of K components of one family: ``mixture_distribution`` (a
    :class:`Categorical` over K) picks a component of ``component_distribution``, whose
    rightmost batch dim has size K.

    ``log_prob`` is ``logsumexp_k(log w_k + log p_k(x))``; ``mean`` and ``variance`` follow
    the laws of total expectation and variance; ``cdf`` is the weighted sum of the
    components' (univariate components only).  ``sample`` carries no gradient.
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(f"MixtureSameFamily: mixture_distribution must be a Categorical,"
                             f" got {type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ValueError(f"MixtureSameFamily: component_distribution must be a "
                             f"Distribution, got {type(component_distribution).__name__}")
        mb = tuple(mixture_distribution.batch_shape)
        cb_full = tuple(component_distribution.batch_shape)
        if not cb_full:
            raise ValueError("MixtureSameFamily: component_distribution needs a batch dim of "
                             "size K (the components)")
        cb = cb_full[:-1]
        for s1, s2 in zip(reversed(mb), reversed(cb)):
            if s1 != 1 and s2 != 1 and s1 != s2:
                raise ValueError(f"MixtureSameFamily: the mixture's batch shape {mb} does "
                                 f"not broadcast with the components' {cb}")
        km = mixture_distribution.param.shape[-1]
        kc = cb_full[-1]
        if km != kc:
            raise ValueError(f"MixtureSameFamily: the mixture has {km} categories but the "
                             f"components' last batch dim has {kc}")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cb, component_distribution.event_shape, validate_args=validate_args)

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    @property
    def support(self):
        return self._component_distribution.support

    def expand(self, batch_shape, _instance=None):
        batch_shape = tuple(batch_shape)
        comp = self._component_distribution.expand(batch_shape + (self._num_component,))
        mix = self._mixture_distribution.expand(batch_shape)
        return MixtureSameFamily(mix, comp, validate_args=False)

    def _pad(self, x):
        """Insert the component dim in front of the event dims of x."""
        return x.unsqueeze(-1 - self._event_ndims)

    def _weights(self, x):
        """Mixture weights (or log-weights) shaped to broadcast against component results
        (component dim then event dims)."""
        return x.reshape(tuple(x.shape) + (1,) * self._event_ndims)

    @property
    def mean(self):
        w = self._weights(self._mixture_distribution.probs)
        return (w * self._component_distribution.mean).sum(dim=-1 - self._event_ndims)

    @property
    def variance(self):
        w = self._weights(self._mixture_distribution.probs)
        dim = -1 - self._event_ndims
        comp = self._component_distribution
        within = (w * comp.variance).sum(dim=dim)
        between = (w * (comp.mean - self._pad(self.mean)) ** 2).sum(dim=dim)
        return within + between

    def cdf(self, x):
        x = self._pad(x)
        return (self._component_distribution.cdf(x)
                * self._mixture_distribution.probs).sum(dim=-1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        lp = self._component_distribution.log_prob(self._pad(x))
        log_w = pt.log_softmax(self._mixture_distribution.logits, dim=-1)
        return (lp + log_w).logsumexp(dim=-1)

    def sample(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        with pt.no_grad():
            gather_dim = len(sample_shape) + len(self.batch_shape)
            es = tuple(self.event_shape)
            which = self._mixture_distribution.sample(tuple(sample_shape))
            comp = self._component_distribution.sample(tuple(sample_shape))
            full = tuple(comp.shape[:gather_dim])
            which = which.expand(full).reshape(full + (1,) + (1,) * len(es))
            which = which.expand(full + (1,) + es)
            return comp.gather(gather_dim, which).squeeze(gather_dim)

    def __repr__(self):
        return (f"MixtureSameFamily(\n  {self._mixture_distribution!r},\n  "
                f"{self._component_distribution!r})")


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """:class:`OneHotCategorical` with the straight-through gradient estimator
    (Bengio et al., 2013): ``rsample`` returns the one-hot draw, with the gradient of
    ``probs``."""

    has_rsample = True

    def rsample(self, sample_shape=()):
        draws = self.sample(sample_shape)
        probs = self._categorical.probs
        return draws + (probs - probs.detach())
