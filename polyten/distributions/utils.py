"""Helpers shared by the distributions: parameters as tensors of one shape, probabilities and
logits, and cached properties."""

from __future__ import annotations

import numbers

import polyten as pt

__all__ = ["broadcast_all", "logits_to_probs", "probs_to_logits", "clamp_probs",
           "lazy_property"]


def broadcast_all(*values):
    """``values`` (tensors or Python numbers) as tensors broadcast to one shape.  Numbers take
    the dtype and device of the first tensor among them, or the default float dtype."""
    like = next((v for v in values if isinstance(v, pt.Tensor)), None)
    out = []
    for v in values:
        if isinstance(v, pt.Tensor):
            out.append(v)
        elif isinstance(v, numbers.Number):
            out.append(pt.tensor(float(v), dtype=like.dtype if like is not None and
                                 like.dtype.is_floating_point else pt.get_default_dtype(),
                                 device=like.device if like is not None else None))
        else:
            raise TypeError(f"distributions: a parameter must be a tensor or a number, got "
                            f"{type(v).__name__}")
    return pt.broadcast_tensors(*out) if len(out) > 1 else tuple(out)


def clamp_probs(probs):
    """``probs`` kept inside (0, 1) by the dtype's eps: log(p) and log1p(-p) stay finite."""
    eps = pt.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary: bool = False):
    """Logits of probabilities: log-odds for a binary variable, else log-probabilities."""
    ps = clamp_probs(probs)
    return pt.log(ps) - pt.log1p(-ps) if is_binary else pt.log(ps)


def logits_to_probs(logits, is_binary: bool = False):
    """Probabilities of logits: sigmoid for a binary variable, else softmax over the last
    dim."""
    return pt.sigmoid(logits) if is_binary else pt.softmax(logits, dim=-1)


class lazy_property:
    """A property computed once per instance on first access (as
    ``torch.distributions.utils.lazy_property``): ``probs`` from ``logits`` or the other way
    round, whichever the distribution was not given."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        # computed with autograd on (as torch's): a first read inside no_grad (a sampler)
        # must not cache a value cut off from the parameters
        with pt.enable_grad():
            value = self.fn(obj)
        obj.__dict__[self.fn.__name__] = value  # the instance attribute shadows this
        return value


class BinaryParams:
    """A mixin of the families with one success probability per entry, given as ``probs`` or
    ``logits`` (log-odds): the other is derived on first use; ``param`` is the one given."""

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param(self):
        return self.__dict__.get("probs", self.__dict__.get("logits"))
