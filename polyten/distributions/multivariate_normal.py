"""The multivariate normal distribution, parameterised through its lower Cholesky factor."""

from __future__ import annotations

import math

import polyten as pt

from . import constraints
from .distribution import Distribution

__all__ = ["MultivariateNormal"]


def _batch_mahalanobis(L, x):
    """``x^T (L L^T)^-1 x`` for x (..., n) and L (..., n, n) lower triangular."""
    y = pt.linalg.solve_triangular(L, x.unsqueeze(-1), upper=False)
    return (y.squeeze(-1) ** 2).sum(dim=-1)


class MultivariateNormal(Distribution):
    """``N(loc, Sigma)`` over vectors of size n, with exactly one of
    ``covariance_matrix`` (Sigma), ``precision_matrix`` (its inverse) or ``scale_tril`` (the
    lower Cholesky factor L of Sigma = L L^T, with a positive diagonal).

    Parameters
    ----------
    loc : Tensor
        Mean (..., n).
    covariance_matrix, precision_matrix, scale_tril : Tensor
        (..., n, n); the batch dims broadcast with ``loc``'s.
    """

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("MultivariateNormal: pass exactly one of covariance_matrix, "
                             "precision_matrix and scale_tril")
        if not isinstance(loc, pt.Tensor) or loc.ndim < 1:
            raise ValueError("MultivariateNormal: loc must be a tensor of at least one dim "
                             "(..., n)")
        m = given[0]
        if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.shape[-1] != loc.shape[-1]:
            raise ValueError(f"MultivariateNormal: the matrix must be (..., n, n) with n = "
                             f"loc.shape[-1] = {loc.shape[-1]}, got shape {tuple(m.shape)}")
        batch = pt.broadcast_shapes(tuple(m.shape[:-2]), tuple(loc.shape[:-1]))
        n = loc.shape[-1]
        self.loc = loc.expand(tuple(batch) + (n,))
        # the matrix given is kept (the properties read it); the others are derived from L
        name = ("scale_tril" if scale_tril is not None else
                "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        self.__dict__[name] = m.expand(tuple(batch) + (n, n))
        super().__init__(batch, (n,), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = pt.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def _param_names(self):
        return ("loc", "covariance_matrix", "precision_matrix", "scale_tril")

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape)
        new.__dict__["_unbroadcasted_scale_tril"] = self._unbroadcasted_scale_tril
        return new

    @property
    def scale_tril(self):
        if "scale_tril" in self.__dict__:
            return self.__dict__["scale_tril"]
        return self._unbroadcasted_scale_tril.expand(
            tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def covariance_matrix(self):
        if "covariance_matrix" in self.__dict__:
            return self.__dict__["covariance_matrix"]
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def precision_matrix(self):
        if "precision_matrix" in self.__dict__:
            return self.__dict__["precision_matrix"]
        return pt.linalg.inv(self.covariance_matrix)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        L = self._unbroadcasted_scale_tril
        return (L ** 2).sum(dim=-1).expand(tuple(self._batch_shape) + tuple(self._event_shape))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = pt.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        L = self._unbroadcasted_scale_tril
        shape = pt.broadcast_shapes(tuple(diff.shape[:-1]), tuple(L.shape[:-2]))
        n = self._event_shape[0]
        m = _batch_mahalanobis(L.expand(tuple(shape) + (n, n)), diff.expand(tuple(shape) + (n,)))
        half_log_det = pt.log(L.diagonal(dim1=-2, dim2=-1)).sum(dim=-1)
        return -0.5 * (n * math.log(2 * math.pi) + m) - half_log_det

    def entropy(self):
        n = self._event_shape[0]
        half_log_det = pt.log(self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1)).sum(
            dim=-1)
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + half_log_det
        return h.expand(tuple(self._batch_shape)) if self._batch_shape else h


def _precision_to_scale_tril(P):
    """The lower Cholesky factor of ``P^-1`` without forming the inverse: with J the
    reversal of both dims, ``U = J chol(J P J) J`` is upper triangular with ``P = U U^T``, so
    ``P^-1 = U^-T (U^-T)^T`` and ``L = U^-T``, one triangular solve (as PyTorch)."""
    Lf = pt.linalg.cholesky(pt.flip(P, (-2, -1)))
    L_inv = pt.flip(Lf, (-2, -1)).mT
    eye = pt.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return pt.linalg.solve_triangular(L_inv, eye.expand(tuple(L_inv.shape)), upper=False)
