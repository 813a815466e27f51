"""``polyten.distributions``: probability distributions with PyTorch's interface
(``torch.distributions``), written in polyten ops: they run on every backend, and
``log_prob``, ``entropy``, ``rsample`` and ``kl_divergence`` differentiate through autograd.

Families: Normal, LogNormal, Uniform, Exponential, Laplace, Cauchy, Gamma, Chi2, Beta,
Dirichlet, Poisson, Bernoulli, Geometric, Categorical, OneHotCategorical,
OneHotCategoricalStraightThrough, MultivariateNormal, LowRankMultivariateNormal, StudentT,
HalfNormal, HalfCauchy, Gumbel, Weibull, Pareto, InverseGamma, Kumaraswamy, FisherSnedecor,
LogisticNormal, Binomial, Multinomial, NegativeBinomial, RelaxedBernoulli,
LogitRelaxedBernoulli, RelaxedOneHotCategorical, ExpRelaxedCategorical, ContinuousBernoulli,
VonMises, GeneralizedPareto, Wishart, LKJCholesky; MixtureSameFamily, Independent and
TransformedDistribution to build others; ExponentialFamily as a base.  ``transforms`` holds
the invertible maps and ``biject_to`` / ``transform_to`` pick one for a constraint.
"""

from . import constraints  # noqa: F401
from . import transforms  # noqa: F401
from .constraint_registry import biject_to, transform_to
from .continuous import Cauchy, Exponential, Laplace, LogNormal, Normal, Uniform
from .counts import Binomial, Multinomial, NegativeBinomial
from .discrete import Bernoulli, Categorical, Geometric, OneHotCategorical
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .extra_continuous import (ContinuousBernoulli, FisherSnedecor, GeneralizedPareto, StudentT,
                               VonMises)
from .gamma import Beta, Chi2, Dirichlet, Gamma, Poisson
from .independent import Independent
from .kl import kl_divergence, register_kl
from .multivariate import (LKJCholesky, LowRankMultivariateNormal, MixtureSameFamily,
                           OneHotCategoricalStraightThrough, Wishart)
from .multivariate_normal import MultivariateNormal
from .transformed_distribution import TransformedDistribution
from .transformed_families import (ExpRelaxedCategorical, Gumbel, HalfCauchy, HalfNormal,
                                   InverseGamma, Kumaraswamy, LogisticNormal,
                                   LogitRelaxedBernoulli, Pareto, RelaxedBernoulli,
                                   RelaxedOneHotCategorical, Weibull)
from .transforms import (AbsTransform, AffineTransform, CatTransform, ComposeTransform,
                         CorrCholeskyTransform, CumulativeDistributionTransform, ExpTransform,
                         IndependentTransform, LowerCholeskyTransform,
                         PositiveDefiniteTransform, PowerTransform, ReshapeTransform,
                         SigmoidTransform, SoftmaxTransform, SoftplusTransform, StackTransform,
                         StickBreakingTransform, TanhTransform, Transform, identity_transform)

__all__ = ["Distribution", "ExponentialFamily", "Normal", "LogNormal", "Uniform",
           "Exponential", "Laplace", "Cauchy", "Gamma", "Chi2", "Beta", "Dirichlet", "Poisson",
           "Bernoulli", "Geometric", "Categorical", "OneHotCategorical",
           "OneHotCategoricalStraightThrough", "MultivariateNormal",
           "LowRankMultivariateNormal", "Independent", "TransformedDistribution",
           "MixtureSameFamily", "StudentT", "HalfNormal", "HalfCauchy", "Gumbel", "Weibull",
           "Pareto", "InverseGamma", "Kumaraswamy", "FisherSnedecor", "LogisticNormal",
           "Binomial", "Multinomial", "NegativeBinomial", "RelaxedBernoulli",
           "LogitRelaxedBernoulli", "RelaxedOneHotCategorical", "ExpRelaxedCategorical",
           "ContinuousBernoulli", "VonMises", "GeneralizedPareto", "Wishart", "LKJCholesky",
           "kl_divergence", "register_kl", "constraints", "transforms", "biject_to",
           "transform_to", "Transform", "ComposeTransform", "IndependentTransform",
           "ReshapeTransform", "ExpTransform", "PowerTransform", "SigmoidTransform",
           "TanhTransform", "AbsTransform", "AffineTransform", "SoftplusTransform",
           "SoftmaxTransform", "StickBreakingTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "CorrCholeskyTransform", "CatTransform",
           "StackTransform", "CumulativeDistributionTransform", "identity_transform"]
