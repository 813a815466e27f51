"""What values a parameter or a sample may take (``torch.distributions.constraints``):
``check(value)`` gives a bool tensor, one entry per value (per event for event constraints)."""

from __future__ import annotations

import polyten as pt

__all__ = ["Constraint", "real", "positive", "nonnegative", "unit_interval", "boolean",
           "one_hot", "nonnegative_integer", "positive_integer", "simplex", "real_vector",
           "positive_definite", "positive_semidefinite", "lower_cholesky", "lower_triangular",
           "corr_cholesky", "square", "symmetric", "greater_than", "greater_than_eq",
           "less_than", "interval", "half_open_interval", "integer_interval", "independent",
           "cat", "stack", "multinomial", "dependent", "dependent_property", "is_dependent"]


class Constraint:
    """A region of values; ``event_dim`` is how many trailing dims form one value."""

    is_discrete = False
    event_dim = 0

    def check(self, value):
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """The support depends on other parameters (e.g. Uniform's): not checked by itself."""

    def check(self, value):
        raise ValueError("a dependent constraint cannot be checked on its own")


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class _Real(Constraint):
    def check(self, value):
        return value == value  # everything but NaN


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return value > self.lower_bound

    def __repr__(self):
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return value >= self.lower_bound

    def __repr__(self):
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self):
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        return (value >= self.lower_bound) & (value < self.upper_bound)

    def __repr__(self):
        return (f"HalfOpenInterval(lower_bound={self.lower_bound}, "
                f"upper_bound={self.upper_bound})")


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound) & (value <= self.upper_bound)


class _IntegerGreaterThanEq(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        return ((value == 0) | (value == 1)).all(dim=-1) & (value.sum(dim=-1) == 1)


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        return (value >= 0).all(dim=-1) & ((value.sum(dim=-1) - 1).abs() < 1e-6)


class _RealVector(_Real):
    event_dim = 1

    def check(self, value):
        return (value == value).all(dim=-1)


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        lower = (value.tril() == value).all(dim=-1).all(dim=-1)
        return lower & (value.diagonal(dim1=-2, dim2=-1) > 0).all(dim=-1)


class _PositiveDefinite(Constraint):
    event_dim = 2

    def check(self, value):
        sym = ((value - value.mT).abs() <= 1e-6 * value.abs().amax(dim=(-2, -1), keepdim=True)
               ).all(dim=-1).all(dim=-1)
        info = pt.linalg.cholesky_ex(value).info
        return sym & (info == 0)


class _Positive(_GreaterThan):
    def __init__(self):
        super().__init__(0.0)


class _Nonnegative(_GreaterThanEq):
    def __init__(self):
        super().__init__(0.0)


class _UnitInterval(_Interval):
    def __init__(self):
        super().__init__(0.0, 1.0)


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def __repr__(self):
        return f"LessThan(upper_bound={self.upper_bound})"


class _PositiveInteger(_IntegerGreaterThanEq):
    def __init__(self):
        super().__init__(1)


class _Multinomial(Constraint):
    """Nonnegative integer vectors summing to at most ``upper_bound`` (torch's check)."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return (value >= 0).all(dim=-1) & (value.sum(dim=-1) <= self.upper_bound)


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        return (value.tril() == value).all(dim=-1).all(dim=-1)


class _CorrCholesky(Constraint):
    """Lower Cholesky factors of correlation matrices: rows of unit norm (to 1e-6 times the
    size), positive diagonal."""

    event_dim = 2

    def check(self, value):
        tol = pt.finfo(value.dtype).eps * value.shape[-1] * 10
        row_norm = pt.linalg.vector_norm(value.detach(), dim=-1)
        unit = ((row_norm - 1.0).abs() <= tol).all(dim=-1)
        return _LowerCholesky().check(value) & unit


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        ok = value.shape[-2] == value.shape[-1]
        return pt.full(tuple(value.shape[:-2]), ok, dtype=pt.bool, device=value.device)


class _Symmetric(_Square):
    def check(self, value):
        if value.shape[-2] != value.shape[-1]:
            return super().check(value)
        return pt.isclose(value, value.mT, atol=1e-6).all(dim=-1).all(dim=-1)


class _PositiveSemidefinite(_Symmetric):
    def check(self, value):
        sym = super().check(value)
        if value.shape[-2] != value.shape[-1]:
            return sym
        return sym & (pt.linalg.eigvalsh(value) >= 0).all(dim=-1)


class _IndependentConstraint(Constraint):
    """``base_constraint`` with its last ``reinterpreted_batch_ndims`` batch dims made event
    dims: a value is in it when all its entries over those dims are."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        if not isinstance(base_constraint, Constraint):
            raise TypeError(f"constraints.independent: expected a Constraint, got "
                            f"{type(base_constraint).__name__}")
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(f"constraints.independent: reinterpreted_batch_ndims must be "
                             f">= 0, got {n}")
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = n

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        if result.ndim < self.reinterpreted_batch_ndims:
            expected = self.base_constraint.event_dim + self.reinterpreted_batch_ndims
            raise ValueError(f"constraints.independent: expected a value of at least "
                             f"{expected} dims, got shape {tuple(value.shape)}")
        for _ in range(self.reinterpreted_batch_ndims):
            result = result.all(dim=-1)
        return result

    def __repr__(self):
        return (f"IndependentConstraint({self.base_constraint!r}, "
                f"{self.reinterpreted_batch_ndims})")


class _Cat(Constraint):
    """Pieces of a tensor along ``dim`` (of sizes ``lengths``, default 1 each), each in its
    own constraint."""

    def __init__(self, cseq, dim=0, lengths=None):
        self.cseq = list(cseq)
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise TypeError("constraints.cat: every entry of cseq must be a Constraint")
        self.lengths = [1] * len(self.cseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.cseq):
            raise ValueError(f"constraints.cat: {len(self.cseq)} constraints but "
                             f"{len(self.lengths)} lengths")
        self.dim = dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        if not -value.ndim <= self.dim < value.ndim:
            raise ValueError(f"constraints.cat: dim {self.dim} out of range for a value of "
                             f"shape {tuple(value.shape)}")
        checks, start = [], 0
        for c, length in zip(self.cseq, self.lengths):
            checks.append(c.check(value.narrow(self.dim, start, length)))
            start += length
        return pt.cat(checks, self.dim)


class _Stack(Constraint):
    """Slices of a tensor along ``dim``, each in its own constraint."""

    def __init__(self, cseq, dim=0):
        self.cseq = list(cseq)
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise TypeError("constraints.stack: every entry of cseq must be a Constraint")
        self.dim = dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        if value.shape[self.dim] != len(self.cseq):
            raise ValueError(f"constraints.stack: the value's dim {self.dim} has size "
                             f"{value.shape[self.dim]}, expected {len(self.cseq)}")
        vs = [value.select(self.dim, i) for i in range(value.shape[self.dim])]
        return pt.stack([c.check(v) for v, c in zip(vs, self.cseq)], self.dim)


class _DependentProperty(property, _Dependent):
    """A property that is also a dependent constraint: the support of a class (unknown until
    the parameters are), and the instance's own support."""

    def __init__(self, fn=None, *, is_discrete=False, event_dim=0):
        property.__init__(self, fn)
        self._is_discrete, self._event_dim = is_discrete, event_dim

    @property
    def is_discrete(self):
        return self._is_discrete

    @property
    def event_dim(self):
        return self._event_dim

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self._is_discrete,
                                  event_dim=self._event_dim)


def dependent_property(fn=None, *, is_discrete=False, event_dim=0):
    """Decorator for a ``support`` that depends on the parameters (as torch's)."""
    if fn is None:
        return lambda f: _DependentProperty(f, is_discrete=is_discrete, event_dim=event_dim)
    return _DependentProperty(fn, is_discrete=is_discrete, event_dim=event_dim)


dependent = _Dependent()
real = _Real()
positive = _Positive()
nonnegative = _Nonnegative()
unit_interval = _UnitInterval()
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThanEq(0)
simplex = _Simplex()
real_vector = _RealVector()
lower_cholesky = _LowerCholesky()
positive_definite = _PositiveDefinite()
positive_integer = _PositiveInteger()
lower_triangular = _LowerTriangular()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
independent = _IndependentConstraint
cat = _Cat
stack = _Stack
multinomial = _Multinomial
interval = _Interval
half_open_interval = _HalfOpenInterval
integer_interval = _IntegerInterval
