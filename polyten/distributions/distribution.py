"""``Distribution``: the base class of ``polyten.distributions`` (``torch.distributions``'
interface): batch and event shapes, sampling, log densities, moments and argument checks."""

from __future__ import annotations

import polyten as pt

from . import constraints

__all__ = ["Distribution"]


class Distribution:
    """A batch of probability distributions of one family.

    ``batch_shape`` indexes independent distributions (one per set of parameters);
    ``event_shape`` is the shape of one draw.  ``sample(sample_shape)`` has shape
    ``sample_shape + batch_shape + event_shape``.

    With ``validate_args`` (the default, as in PyTorch; see
    :meth:`set_default_validate_args`) the parameters are checked against ``arg_constraints``
    at construction and the values given to :meth:`log_prob` against ``support``: each check
    reads a flag from the device.
    """

    has_rsample = False
    has_enumerate_support = False
    arg_constraints: dict = {}
    support = None
    _validate_default = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn the argument checks on or off for distributions made afterwards."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args: expected True or False, got {value!r}")
        Distribution._validate_default = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = pt.Size(tuple(batch_shape))
        self._event_shape = pt.Size(tuple(event_shape))
        self._validate_args = (Distribution._validate_default if validate_args is None
                               else bool(validate_args))
        if self._validate_args:
            for name, constraint in self.arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue
                value = self.__dict__.get(name)
                if not isinstance(value, pt.Tensor):
                    continue  # not given (logits when probs were): derived, not checked
                ok = constraint.check(value)
                if not bool(ok.all()):
                    raise ValueError(
                        f"{type(self).__name__}: parameter {name} of shape "
                        f"{tuple(value.shape)} must satisfy {constraint!r}, but some values "
                        f"do not (e.g. {_first_bad(value, ok, constraint)}); pass "
                        f"validate_args=False to skip this check")

    # -- shapes -----------------------------------------------------------------------------
    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return pt.Size(tuple(sample_shape) + tuple(self._batch_shape) +
                       tuple(self._event_shape))

    def expand(self, batch_shape, _instance=None):
        """The same distribution with parameters broadcast to ``batch_shape`` (no copy)."""
        batch_shape = pt.Size(tuple(batch_shape))
        new = type(self).__new__(type(self))
        for name in self._param_names():
            value = self.__dict__.get(name)
            if isinstance(value, pt.Tensor):
                extra = tuple(value.shape[len(self._batch_shape):])
                new.__dict__[name] = value.expand(tuple(batch_shape) + extra)
        for k, v in self.__dict__.items():
            if k not in new.__dict__ and not isinstance(v, pt.Tensor):
                new.__dict__[k] = v
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _param_names(self):
        return tuple(self.arg_constraints)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, sample_shape=()):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside autograd."""
        with pt.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """Reparameterized draws: gradients flow back to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler "
                                  f"(rsample); use sample(), which carries no gradient")

    def sample_n(self, n: int):
        return self.sample((n,))

    # -- densities and moments --------------------------------------------------------------
    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    def prob(self, value):
        return pt.exp(self.log_prob(value))

    def cdf(self, value):
        raise NotImplementedError(f"{type(self).__name__}.cdf is not implemented")

    def icdf(self, value):
        raise NotImplementedError(f"{type(self).__name__}.icdf is not implemented")

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__}.entropy is not implemented")

    def perplexity(self):
        return pt.exp(self.entropy())

    def enumerate_support(self, expand: bool = True):
        raise NotImplementedError(f"{type(self).__name__} has no finite support to enumerate")

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__}.mean is not implemented")

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self).__name__}.mode is not implemented")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__}.variance is not implemented")

    @property
    def stddev(self):
        return self.variance.sqrt()

    # -- checks -----------------------------------------------------------------------------
    def _validate_sample(self, value) -> None:
        """Check a value given to log_prob / cdf: a tensor whose trailing dims are the event
        shape and whose other dims broadcast with the batch shape, inside the support."""
        name = type(self).__name__
        if not isinstance(value, pt.Tensor):
            raise TypeError(f"{name}.log_prob: the value must be a tensor, got "
                            f"{type(value).__name__}")
        ev = len(self._event_shape)
        shape = tuple(value.shape)
        if ev and shape[len(shape) - ev:] != tuple(self._event_shape):
            raise ValueError(f"{name}: the value's trailing dims {shape} must be the event "
                             f"shape {tuple(self._event_shape)}")
        try:
            pt.broadcast_shapes(shape[:len(shape) - ev], tuple(self._batch_shape))
        except ValueError:
            raise ValueError(f"{name}: a value of shape {shape} does not broadcast with the "
                             f"batch shape {tuple(self._batch_shape)} (event shape "
                             f"{tuple(self._event_shape)})") from None
        support = self.support
        if support is None or constraints.is_dependent(support):
            return
        ok = support.check(value)
        if not bool(ok.all()):
            raise ValueError(f"{name}: the value (shape {shape}) must lie in the support "
                             f"{support!r}, but some entries do not (e.g. "
                             f"{_first_bad(value, ok, support)}); pass validate_args=False "
                             f"to skip this check")

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}: {v if v.numel() == 1 else tuple(v.shape)}"
            for k in self.arg_constraints if isinstance(v := self.__dict__.get(k), pt.Tensor))
        return f"{type(self).__name__}({params})"


def _first_bad(value, ok, constraint):
    """One offending value, for the error message."""
    ev = getattr(constraint, "event_dim", 0)
    bad = (~ok).reshape(-1).nonzero()
    if bad.numel() == 0:
        return "?"
    i = int(bad[0, 0].item())
    if ev:
        return value.reshape((-1,) + tuple(value.shape[value.ndim - ev:]))[i].tolist()
    return value.reshape(-1)[i].item()
