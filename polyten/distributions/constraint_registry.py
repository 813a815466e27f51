"""``biject_to(constraint)`` and ``transform_to(constraint)``
(``torch.distributions.constraint_registry``): a transform from unconstrained reals onto a
constraint's region, for optimising constrained parameters in unconstrained space.

``biject_to`` gives bijections (``t.inv(t(x)) == x``, usable inside
:class:`~polyten.distributions.TransformedDistribution`); ``transform_to`` may give maps that
are not injective but are cheaper or better conditioned (e.g. softmax for the simplex)."""

from __future__ import annotations

import numbers

from . import constraints, transforms

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]


class ConstraintRegistry:
    """Constraint types to factories ``factory(constraint) -> Transform``."""

    def __init__(self, name: str):
        self._name = name
        self._registry = {}

    def register(self, constraint, factory=None):
        """Register ``factory`` for a constraint type (or the type of a constraint object);
        usable as a decorator."""
        if factory is None:
            return lambda f: self.register(constraint, f)
        if isinstance(constraint, constraints.Constraint):
            constraint = type(constraint)
        if not (isinstance(constraint, type) and issubclass(constraint, constraints.Constraint)):
            raise TypeError(f"{self._name}.register: expected a Constraint or a subclass of "
                            f"it, got {constraint!r}")
        self._registry[constraint] = factory
        return factory

    def __call__(self, constraint):
        """The transform registered for ``constraint``'s type (the nearest along its MRO)."""
        if not isinstance(constraint, constraints.Constraint):
            raise TypeError(f"{self._name}: expected a Constraint, got "
                            f"{type(constraint).__name__}")
        for cls in type(constraint).__mro__:
            factory = self._registry.get(cls)
            if factory is not None:
                return factory(constraint)
        raise NotImplementedError(f"{self._name}: cannot transform {type(constraint).__name__}"
                                  f" constraints; register a factory with "
                                  f"{self._name}.register")


biject_to = ConstraintRegistry("biject_to")
transform_to = ConstraintRegistry("transform_to")


def _both(constraint_type):
    def deco(factory):
        biject_to.register(constraint_type, factory)
        transform_to.register(constraint_type, factory)
        return factory
    return deco


@_both(constraints._Real)
def _to_real(constraint):
    return transforms.identity_transform


@_both(constraints._RealVector)
def _to_real_vector(constraint):
    return transforms.IndependentTransform(transforms.identity_transform, 1)


@biject_to.register(constraints._IndependentConstraint)
def _biject_to_independent(constraint):
    return transforms.IndependentTransform(biject_to(constraint.base_constraint),
                                           constraint.reinterpreted_batch_ndims)


@transform_to.register(constraints._IndependentConstraint)
def _transform_to_independent(constraint):
    return transforms.IndependentTransform(transform_to(constraint.base_constraint),
                                           constraint.reinterpreted_batch_ndims)


@_both(constraints._Positive)
@_both(constraints._Nonnegative)
def _to_positive(constraint):
    return transforms.ExpTransform()


@_both(constraints._GreaterThan)
@_both(constraints._GreaterThanEq)
def _to_greater_than(constraint):
    return transforms.ComposeTransform([transforms.ExpTransform(),
                                        transforms.AffineTransform(constraint.lower_bound, 1)])


@_both(constraints._LessThan)
def _to_less_than(constraint):
    return transforms.ComposeTransform([transforms.ExpTransform(),
                                        transforms.AffineTransform(constraint.upper_bound, -1)])


@_both(constraints._Interval)
@_both(constraints._HalfOpenInterval)
def _to_interval(constraint):
    lo, hi = constraint.lower_bound, constraint.upper_bound
    unit = (isinstance(lo, numbers.Number) and isinstance(hi, numbers.Number)
            and lo == 0 and hi == 1)
    if unit:
        return transforms.SigmoidTransform()
    return transforms.ComposeTransform([transforms.SigmoidTransform(),
                                        transforms.AffineTransform(lo, hi - lo)])


@biject_to.register(constraints._Simplex)
def _biject_to_simplex(constraint):
    return transforms.StickBreakingTransform()


@transform_to.register(constraints._Simplex)
def _transform_to_simplex(constraint):
    return transforms.SoftmaxTransform()


@transform_to.register(constraints._LowerCholesky)
def _transform_to_lower_cholesky(constraint):
    return transforms.LowerCholeskyTransform()


@transform_to.register(constraints._PositiveDefinite)
@transform_to.register(constraints._PositiveSemidefinite)
def _transform_to_positive_definite(constraint):
    return transforms.PositiveDefiniteTransform()


@_both(constraints._CorrCholesky)
def _to_corr_cholesky(constraint):
    return transforms.CorrCholeskyTransform()


@biject_to.register(constraints._Cat)
def _biject_to_cat(constraint):
    return transforms.CatTransform([biject_to(c) for c in constraint.cseq], constraint.dim,
                                   constraint.lengths)


@transform_to.register(constraints._Cat)
def _transform_to_cat(constraint):
    return transforms.CatTransform([transform_to(c) for c in constraint.cseq],
                                   constraint.dim, constraint.lengths)


@biject_to.register(constraints._Stack)
def _biject_to_stack(constraint):
    return transforms.StackTransform([biject_to(c) for c in constraint.cseq], constraint.dim)


@transform_to.register(constraints._Stack)
def _transform_to_stack(constraint):
    return transforms.StackTransform([transform_to(c) for c in constraint.cseq],
                                     constraint.dim)
