"""``ExponentialFamily``: the base of families with density
``h(x) exp(<theta, t(x)> - F(theta))``, whose entropy and KL divergence follow from the log
normalizer F by differentiation (the Bregman divergence of F)."""

from __future__ import annotations

import polyten as pt

from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """A distribution of an exponential family.  Subclasses give

    * ``_natural_params``: the tuple of natural parameters theta (tensors);
    * ``_log_normalizer(*theta)``: F, one value per batch entry;
    * ``_mean_carrier_measure``: ``E[log h(X)]``.

    ``entropy`` is then ``F(theta) - <theta, grad F(theta)> - E[log h(X)]``, computed with
    autograd (so it is itself differentiable), and ``kl_divergence`` between two members of
    the same subclass is ``F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)>``.
    """

    @property
    def _natural_params(self):
        raise NotImplementedError(f"{type(self).__name__}._natural_params is not implemented")

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError(f"{type(self).__name__}._log_normalizer is not implemented")

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError(f"{type(self).__name__}._mean_carrier_measure is not "
                                  f"implemented")

    def _grad_log_normalizer(self):
        """(theta leaves, F(theta), grad F(theta)), the gradient kept in the graph."""
        params = [p.detach().requires_grad_() for p in self._natural_params]
        with pt.enable_grad():
            lg = self._log_normalizer(*params)
            grads = pt.autograd.grad(lg.sum(), params, create_graph=True)
        return params, lg, grads

    def entropy(self):
        result = -self._mean_carrier_measure
        params, lg, grads = self._grad_log_normalizer()
        result = result + lg
        batch = tuple(self.batch_shape)
        for p, g in zip(params, grads):
            result = result - (p * g).reshape(batch + (-1,)).sum(dim=-1)
        return result
