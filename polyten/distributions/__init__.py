"""``polyten.distributions``: probability distributions with PyTorch's interface
(``torch.distributions``), written in polyten ops: they run on every backend, and
``log_prob``, ``entropy``, ``rsample`` and ``kl_divergence`` differentiate through autograd.

Families: Normal, LogNormal, Uniform, Exponential, Laplace, Cauchy, Gamma, Chi2, Beta,
Dirichlet, Poisson, Bernoulli, Geometric, Categorical, OneHotCategorical, MultivariateNormal,
and Independent to turn batch dims into event dims.
"""

from . import constraints  # noqa: F401
from .continuous import Cauchy, Exponential, Laplace, LogNormal, Normal, Uniform
from .discrete import Bernoulli, Categorical, Geometric, OneHotCategorical
from .distribution import Distribution
from .gamma import Beta, Chi2, Dirichlet, Gamma, Poisson
from .independent import Independent
from .kl import kl_divergence, register_kl
from .multivariate_normal import MultivariateNormal

__all__ = ["Distribution", "Normal", "LogNormal", "Uniform", "Exponential", "Laplace",
           "Cauchy", "Gamma", "Chi2", "Beta", "Dirichlet", "Poisson", "Bernoulli", "Geometric",
           "Categorical", "OneHotCategorical", "MultivariateNormal", "Independent",
           "kl_divergence", "register_kl", "constraints"]
