"""Discrete distributions: Bernoulli, Geometric, Categorical, OneHotCategorical.  Each keeps
``probs`` or ``logits`` (whichever it was given) and derives the other on first use."""

from __future__ import annotations

import math

import polyten as pt
from polyten.nn import functional as F

from . import constraints
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .utils import (BinaryParams, broadcast_all, clamp_probs, lazy_property, logits_to_probs,
                    probs_to_logits)

__all__ = ["Bernoulli", "Geometric", "Categorical", "OneHotCategorical"]


def _one_of(name, probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: pass exactly one of probs and logits")


class _BinaryTrials(BinaryParams, Distribution):
    """A family parameterised by one success probability per batch entry, given as ``probs``
    or as ``logits`` (log-odds); the other is derived on first use."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    def __init__(self, probs=None, logits=None, validate_args=None):
        _one_of(type(self).__name__, probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            shape = self.probs.shape
        else:
            (self.logits,) = broadcast_all(logits)
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    def _param_names(self):
        return ("probs", "logits")


class Bernoulli(_BinaryTrials, ExponentialFamily):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0."""

    support = constraints.boolean
    has_enumerate_support = True

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        m = (self.probs >= 0.5).to(self.probs.dtype)
        return pt.where(self.probs == 0.5, math.nan, m)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with pt.no_grad():
            return pt.bernoulli(self.probs.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value.to(self.logits.dtype))
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        return F.softplus(x)

    @property
    def _mean_carrier_measure(self):
        return 0.0

    def enumerate_support(self, expand: bool = True):
        values = pt.arange(2, dtype=self.param.dtype, device=self.param.device)
        values = values.reshape((2,) + (1,) * len(self._batch_shape))
        return values.expand((2,) + tuple(self._batch_shape)) if expand else values


class Geometric(_BinaryTrials):
    """The number of failures before the first success of Bernoulli(``probs``) trials:
    ``P(k) = (1 - p)**k p``."""

    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        super().__init__(probs, logits, validate_args)
        if self._validate_args and "probs" in self.__dict__ and not bool((self.probs > 0).all()):
            raise ValueError("Geometric: probs must be positive (a success must be possible)")

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return pt.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with pt.no_grad():
            p = self.probs.expand(shape)
            tiny = pt.finfo(p.dtype).tiny
            u = pt.rand(shape, dtype=p.dtype, device=p.device).clamp(min=tiny)
            return pt.floor(pt.log(u) / pt.log1p(-p))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value.to(self.probs.dtype), self.probs)
        # value * log1p(-p), exactly 0 where value is 0 (also at p = 1)
        keep = (probs == 1) & (value == 0)
        probs1 = pt.where(keep, 0.0, probs)
        return value * pt.log1p(-probs1) + pt.log(probs)

    def entropy(self):
        p = clamp_probs(self.probs)
        return F.binary_cross_entropy_with_logits(self.logits, p, reduction="none") / p


class Categorical(Distribution):
    """A category in ``0 .. K-1`` with probabilities ``probs`` (..., K) (normalised over the
    last dim) or ``logits`` (unnormalised log-probabilities)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        _one_of("Categorical", probs, logits)
        if probs is not None:
            if probs.ndim < 1:
                raise ValueError("Categorical: probs must have at least one dim (..., K)")
            self.probs = probs / probs.sum(dim=-1, keepdim=True)
            param = self.probs
        else:
            if logits.ndim < 1:
                raise ValueError("Categorical: logits must have at least one dim (..., K)")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            param = self.logits
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    def _param_names(self):
        return ("probs", "logits")

    @property
    def param(self):
        return self.__dict__.get("probs", self.__dict__.get("logits"))

    @property
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def mean(self):
        return pt.full(tuple(self._batch_shape), math.nan, dtype=self.param.dtype,
                       device=self.param.device)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        n = math.prod(sample_shape)
        with pt.no_grad():
            p2 = self.probs.reshape(-1, self._num_events)
            draws = pt.multinomial(p2, n, replacement=True)  # (batch, n)
            return draws.mT.reshape(tuple(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = pt.broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        lo = pt.finfo(self.logits.dtype).min
        logits = self.logits.clamp(min=lo)
        return -(logits * self.probs).sum(dim=-1)

    def enumerate_support(self, expand: bool = True):
        values = pt.arange(self._num_events, dtype=pt.int64, device=self.param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values


class OneHotCategorical(Distribution):
    """Categorical draws as one-hot vectors (..., K)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        super().__init__(self._categorical.batch_shape, self._categorical.param.shape[-1:],
                         validate_args=validate_args)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param(self):
        return self._categorical.param

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        return F.one_hot(self.probs.argmax(dim=-1), self.probs.shape[-1]).to(self.probs.dtype)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, new._categorical.batch_shape, self._event_shape,
                              validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        idx = self._categorical.sample(sample_shape)
        return F.one_hot(idx, self._event_shape[0]).to(self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(dim=-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True):
        n = self._event_shape[0]
        values = pt.eye(n, dtype=self.param.dtype, device=self.param.device)
        values = values.reshape((n,) + (1,) * len(self._batch_shape) + (n,))
        return values.expand((n,) + tuple(self._batch_shape) + (n,)) if expand else values
