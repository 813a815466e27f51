"""Invertible maps between constrained spaces (``torch.distributions.transforms``): each
knows its domain and codomain, its inverse, and ``log |det J|`` of the forward map, so a
:class:`~polyten.distributions.TransformedDistribution` can push densities through it.

Every map is written in polyten ops: it runs on every backend and differentiates through
autograd."""

from __future__ import annotations

import math
import numbers
import weakref

import polyten as pt
from polyten.nn import functional as F

from . import constraints

__all__ = ["Transform", "ComposeTransform", "IndependentTransform", "ReshapeTransform",
           "ExpTransform", "PowerTransform", "SigmoidTransform", "TanhTransform",
           "AbsTransform", "AffineTransform", "SoftplusTransform", "SoftmaxTransform",
           "StickBreakingTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
           "CorrCholeskyTransform", "CatTransform", "StackTransform",
           "CumulativeDistributionTransform", "identity_transform"]


def _sum_rightmost(x, n: int):
    """``x`` summed over its last ``n`` dims (``x`` itself when n is 0)."""
    if n <= 0:
        return x
    return x.reshape(tuple(x.shape[:x.ndim - n]) + (-1,)).sum(dim=-1)


class Transform:
    """An invertible (or at least measurable) map ``y = t(x)``.

    Parameters
    ----------
    cache_size : int
        0 (no cache) or 1: remember the last ``(x, y)`` pair, so ``t.inv(t(x))`` returns the
        very ``x`` (by identity) without computing the inverse (useful where the inverse is
        inaccurate or not unique, e.g. :class:`AbsTransform`).

    Attributes
    ----------
    domain, codomain : Constraint
        Where ``x`` and ``y`` live.
    bijective : bool
        Whether the map is invertible (``inv(t(x)) == x``).
    sign : int or Tensor
        For bijective maps between univariate spaces: +1 if increasing, -1 if decreasing.
    event_dim : int
        How many trailing dims form one input of the map.
    """

    bijective = False
    domain = constraints.real
    codomain = constraints.real

    def __init__(self, cache_size: int = 0):
        if cache_size not in (0, 1):
            raise ValueError(f"{type(self).__name__}: cache_size must be 0 or 1, got "
                             f"{cache_size!r}")
        self._cache_size = cache_size
        self._cached_x_y = (None, None)
        self._inv = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_inv"] = None
        return state

    @property
    def event_dim(self) -> int:
        if self.domain.event_dim == self.codomain.event_dim:
            return self.domain.event_dim
        raise ValueError(f"{type(self).__name__}.event_dim: the domain and codomain have "
                         f"different event dims ({self.domain.event_dim} and "
                         f"{self.codomain.event_dim}); read .domain.event_dim or "
                         f".codomain.event_dim instead")

    @property
    def inv(self):
        """The inverse map, ``t.inv(t(x)) == x``; the same object on every access while the
        transform lives."""
        inv = self._inv() if self._inv is not None else None
        if inv is None:
            inv = _InverseTransform(self)
            self._inv = weakref.ref(inv)
        return inv

    @property
    def sign(self):
        raise NotImplementedError(f"{type(self).__name__}.sign is not defined (only bijective "
                                  f"univariate transforms have one)")

    def with_cache(self, cache_size: int = 1):
        """The same map with the given cache size."""
        if self._cache_size == cache_size:
            return self
        if type(self).__init__ is Transform.__init__:
            return type(self)(cache_size=cache_size)
        raise NotImplementedError(f"{type(self).__name__}.with_cache is not implemented")

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __call__(self, x):
        if self._cache_size == 0:
            return self._call(x)
        x_old, y_old = self._cached_x_y
        if x is x_old:
            return y_old
        y = self._call(x)
        self._cached_x_y = (x, y)
        return y

    def _inv_call(self, y):
        if self._cache_size == 0:
            return self._inverse(y)
        x_old, y_old = self._cached_x_y
        if y is y_old:
            return x_old
        x = self._inverse(y)
        self._cached_x_y = (x, y)
        return x

    def _call(self, x):
        raise NotImplementedError(f"{type(self).__name__}: the forward map is not implemented")

    def _inverse(self, y):
        raise NotImplementedError(f"{type(self).__name__}: the inverse map is not implemented")

    def log_abs_det_jacobian(self, x, y):
        """``log |det dy/dx|`` at ``x`` (with ``y = t(x)``), one value per event."""
        raise NotImplementedError(f"{type(self).__name__}.log_abs_det_jacobian is not "
                                  f"implemented")

    def forward_shape(self, shape):
        """The shape of ``t(x)`` for ``x`` of ``shape``."""
        return shape

    def inverse_shape(self, shape):
        """The shape of ``t.inv(y)`` for ``y`` of ``shape``."""
        return shape

    def __repr__(self):
        return type(self).__name__ + "()"


class _InverseTransform(Transform):
    """The inverse of a transform, holding it (not a copy)."""

    def __init__(self, transform: Transform):
        super().__init__(cache_size=transform._cache_size)
        self._inv_of = transform

    @property
    def domain(self):
        return self._inv_of.codomain

    @property
    def codomain(self):
        return self._inv_of.domain

    @property
    def bijective(self):
        return self._inv_of.bijective

    @property
    def sign(self):
        return self._inv_of.sign

    @property
    def inv(self):
        return self._inv_of

    def with_cache(self, cache_size: int = 1):
        return self.inv.with_cache(cache_size).inv

    def __eq__(self, other):
        return isinstance(other, _InverseTransform) and self._inv_of == other._inv_of

    __hash__ = object.__hash__

    def __repr__(self):
        return f"{type(self).__name__}({self._inv_of!r})"

    def __call__(self, x):
        return self._inv_of._inv_call(x)

    def log_abs_det_jacobian(self, x, y):
        return -self._inv_of.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape):
        return self._inv_of.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self._inv_of.forward_shape(shape)


class ComposeTransform(Transform):
    """The transforms of ``parts`` applied in order (``parts[0]`` first).  An empty list is
    the identity.  ``log_abs_det_jacobian`` sums each part's over the event dims of the
    whole."""

    def __init__(self, parts, cache_size: int = 0):
        parts = list(parts)
        for p in parts:
            if not isinstance(p, Transform):
                raise TypeError(f"ComposeTransform: every part must be a Transform, got "
                                f"{type(p).__name__}")
        if cache_size:
            parts = [p.with_cache(cache_size) for p in parts]
        super().__init__(cache_size=cache_size)
        self.parts = parts

    def __eq__(self, other):
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    __hash__ = object.__hash__

    @property
    def domain(self):
        if not self.parts:
            return constraints.real
        domain = self.parts[0].domain
        # the event dim the whole chain needs at its input
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            event_dim += part.domain.event_dim - part.codomain.event_dim
            event_dim = max(event_dim, part.domain.event_dim)
        if event_dim > domain.event_dim:
            domain = constraints.independent(domain, event_dim - domain.event_dim)
        return domain

    @property
    def codomain(self):
        if not self.parts:
            return constraints.real
        codomain = self.parts[-1].codomain
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            event_dim += part.codomain.event_dim - part.domain.event_dim
            event_dim = max(event_dim, part.codomain.event_dim)
        if event_dim > codomain.event_dim:
            codomain = constraints.independent(codomain, event_dim - codomain.event_dim)
        return codomain

    @property
    def bijective(self):
        return all(p.bijective for p in self.parts)

    @property
    def sign(self):
        sign = 1
        for p in self.parts:
            sign = sign * p.sign
        return sign

    @property
    def inv(self):
        inv = self._inv() if self._inv is not None else None
        if inv is None:
            inv = ComposeTransform([p.inv for p in reversed(self.parts)])
            self._inv = weakref.ref(inv)
            inv._inv = weakref.ref(self)
        return inv

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return ComposeTransform(self.parts, cache_size=cache_size)

    def __call__(self, x):
        for part in self.parts:
            x = part(x)
        return x

    def log_abs_det_jacobian(self, x, y):
        if not self.parts:
            return pt.zeros_like(x)
        xs = [x]
        for part in self.parts[:-1]:
            xs.append(part(xs[-1]))
        xs.append(y)
        total = None
        event_dim = self.domain.event_dim
        for part, xi, yi in zip(self.parts, xs[:-1], xs[1:]):
            term = _sum_rightmost(part.log_abs_det_jacobian(xi, yi),
                                  event_dim - part.domain.event_dim)
            total = term if total is None else total + term
            event_dim += part.codomain.event_dim - part.domain.event_dim
        return total

    def forward_shape(self, shape):
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape):
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    def __repr__(self):
        inner = ",\n    ".join(repr(p) for p in self.parts)
        return f"{type(self).__name__}(\n    {inner}\n)"


identity_transform = ComposeTransform([])


class IndependentTransform(Transform):
    """``base_transform`` with its last ``reinterpreted_batch_ndims`` batch dims treated as
    event dims: ``log_abs_det_jacobian`` sums over them."""

    def __init__(self, base_transform, reinterpreted_batch_ndims: int, cache_size: int = 0):
        if not isinstance(base_transform, Transform):
            raise TypeError(f"IndependentTransform: base_transform must be a Transform, got "
                            f"{type(base_transform).__name__}")
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(f"IndependentTransform: reinterpreted_batch_ndims must be >= 0, "
                             f"got {n}")
        super().__init__(cache_size=cache_size)
        self.base_transform = base_transform.with_cache(cache_size)
        self.reinterpreted_batch_ndims = n

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return IndependentTransform(self.base_transform, self.reinterpreted_batch_ndims,
                                    cache_size=cache_size)

    def __eq__(self, other):
        return (isinstance(other, IndependentTransform)
                and self.base_transform == other.base_transform
                and self.reinterpreted_batch_ndims == other.reinterpreted_batch_ndims)

    __hash__ = object.__hash__

    @property
    def domain(self):
        return constraints.independent(self.base_transform.domain,
                                       self.reinterpreted_batch_ndims)

    @property
    def codomain(self):
        return constraints.independent(self.base_transform.codomain,
                                       self.reinterpreted_batch_ndims)

    @property
    def bijective(self):
        return self.base_transform.bijective

    @property
    def sign(self):
        return self.base_transform.sign

    def _call(self, x):
        if x.ndim < self.domain.event_dim:
            raise ValueError(f"IndependentTransform: the input of shape {tuple(x.shape)} has "
                             f"fewer than {self.domain.event_dim} (event) dims")
        return self.base_transform(x)

    def _inverse(self, y):
        if y.ndim < self.codomain.event_dim:
            raise ValueError(f"IndependentTransform.inv: the input of shape {tuple(y.shape)} "
                             f"has fewer than {self.codomain.event_dim} (event) dims")
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return _sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y),
                              self.reinterpreted_batch_ndims)

    def forward_shape(self, shape):
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape):
        return self.base_transform.inverse_shape(shape)

    def __repr__(self):
        return (f"{type(self).__name__}({self.base_transform!r}, "
                f"{self.reinterpreted_batch_ndims})")


class ReshapeTransform(Transform):
    """Reshapes the rightmost ``in_shape`` dims of the input to ``out_shape`` (same number of
    elements); the Jacobian is a permutation, so its log-determinant is 0."""

    bijective = True

    def __init__(self, in_shape, out_shape, cache_size: int = 0):
        self.in_shape = pt.Size(tuple(in_shape))
        self.out_shape = pt.Size(tuple(out_shape))
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError(f"ReshapeTransform: in_shape {tuple(self.in_shape)} and "
                             f"out_shape {tuple(self.out_shape)} have different numbers of "
                             f"elements")
        super().__init__(cache_size=cache_size)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return ReshapeTransform(self.in_shape, self.out_shape, cache_size=cache_size)

    def __eq__(self, other):
        return (isinstance(other, ReshapeTransform) and self.in_shape == other.in_shape
                and self.out_shape == other.out_shape)

    __hash__ = object.__hash__

    def _call(self, x):
        batch = tuple(x.shape[:x.ndim - len(self.in_shape)])
        return x.reshape(batch + tuple(self.out_shape))

    def _inverse(self, y):
        batch = tuple(y.shape[:y.ndim - len(self.out_shape)])
        return y.reshape(batch + tuple(self.in_shape))

    def log_abs_det_jacobian(self, x, y):
        batch = tuple(x.shape[:x.ndim - len(self.in_shape)])
        return pt.zeros(batch, dtype=x.dtype, device=x.device)

    def _check_tail(self, shape, want, what):
        shape = tuple(shape)
        if len(shape) < len(want) or shape[len(shape) - len(want):] != tuple(want):
            raise ValueError(f"ReshapeTransform.{what}: the shape {shape} does not end in "
                             f"{tuple(want)}")
        return shape[:len(shape) - len(want)]

    def forward_shape(self, shape):
        return pt.Size(self._check_tail(shape, self.in_shape, "forward_shape")
                       + tuple(self.out_shape))

    def inverse_shape(self, shape):
        return pt.Size(self._check_tail(shape, self.out_shape, "inverse_shape")
                       + tuple(self.in_shape))

    def __repr__(self):
        return f"ReshapeTransform({tuple(self.in_shape)}, {tuple(self.out_shape)})"


class ExpTransform(Transform):
    """``y = exp(x)``."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = +1

    def __eq__(self, other):
        return isinstance(other, ExpTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class PowerTransform(Transform):
    """``y = x ** exponent`` on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent, cache_size: int = 0):
        super().__init__(cache_size=cache_size)
        (self.exponent,) = _as_tensors(exponent)

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return PowerTransform(self.exponent, cache_size=cache_size)

    @property
    def sign(self):
        return self.exponent.sign()

    def __eq__(self, other):
        return (isinstance(other, PowerTransform)
                and bool(pt.eq(self.exponent, other.exponent).all()))

    __hash__ = object.__hash__

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()

    def forward_shape(self, shape):
        return pt.Size(pt.broadcast_shapes(tuple(shape), tuple(self.exponent.shape)))

    def inverse_shape(self, shape):
        return pt.Size(pt.broadcast_shapes(tuple(shape), tuple(self.exponent.shape)))


def _as_tensors(*values):
    """Numbers as float tensors of the default dtype; tensors unchanged."""
    return tuple(v if isinstance(v, pt.Tensor) else pt.tensor(float(v)) for v in values)


def _clipped_sigmoid(x):
    """sigmoid kept inside [tiny, 1 - eps]: the inverse and log-Jacobians stay finite."""
    fi = pt.finfo(x.dtype)
    return pt.sigmoid(x).clamp(min=fi.tiny, max=1.0 - fi.eps)


class SigmoidTransform(Transform):
    """``y = 1 / (1 + exp(-x))``."""

    domain = constraints.real
    codomain = constraints.unit_interval
    bijective = True
    sign = +1

    def __eq__(self, other):
        return isinstance(other, SigmoidTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return _clipped_sigmoid(x)

    def _inverse(self, y):
        fi = pt.finfo(y.dtype)
        y = y.clamp(min=fi.tiny, max=1.0 - fi.eps)
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        return -F.softplus(-x) - F.softplus(x)


class TanhTransform(Transform):
    """``y = tanh(x)``; the log-Jacobian is written as ``2 (log 2 - x - softplus(-2x))``,
    stable for large ``|x|``."""

    domain = constraints.real
    codomain = constraints.interval(-1.0, 1.0)
    bijective = True
    sign = +1

    def __eq__(self, other):
        return isinstance(other, TanhTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return y.atanh()

    def log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))


class AbsTransform(Transform):
    """``y = |x|``; not injective: the inverse returns the positive root."""

    domain = constraints.real
    codomain = constraints.positive

    def __eq__(self, other):
        return isinstance(other, AbsTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class AffineTransform(Transform):
    """``y = loc + scale * x``.

    Parameters
    ----------
    loc, scale : Tensor or float
    event_dim : int
        How many trailing dims form one event (the log-Jacobian sums over them).
    """

    bijective = True

    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0):
        super().__init__(cache_size=cache_size)
        for name, v in (("loc", loc), ("scale", scale)):
            if not isinstance(v, (pt.Tensor, numbers.Number)):
                raise TypeError(f"AffineTransform: {name} must be a tensor or a number, got "
                                f"{type(v).__name__}")
        self.loc, self.scale = loc, scale
        self._event_dim = int(event_dim)

    @property
    def event_dim(self):
        return self._event_dim

    @property
    def domain(self):
        if self._event_dim == 0:
            return constraints.real
        return constraints.independent(constraints.real, self._event_dim)

    @property
    def codomain(self):
        return self.domain

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return AffineTransform(self.loc, self.scale, self._event_dim, cache_size=cache_size)

    def __eq__(self, other):
        if not isinstance(other, AffineTransform) or self._event_dim != other._event_dim:
            return False
        for a, b in ((self.loc, other.loc), (self.scale, other.scale)):
            if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
                if a != b:
                    return False
            elif not bool((pt.as_tensor(a) == pt.as_tensor(b)).all()):
                return False
        return True

    __hash__ = object.__hash__

    @property
    def sign(self):
        if isinstance(self.scale, numbers.Real):
            return 1 if float(self.scale) > 0 else -1 if float(self.scale) < 0 else 0
        return self.scale.sign()

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        scale = self.scale
        if isinstance(scale, numbers.Real):
            result = pt.full_like(x, math.log(abs(scale)))
        else:
            result = pt.broadcast_to(scale.abs().log(),
                                     pt.broadcast_shapes(tuple(x.shape), tuple(scale.shape)))
        return _sum_rightmost(result, self._event_dim)

    def forward_shape(self, shape):
        return pt.Size(pt.broadcast_shapes(tuple(shape), tuple(getattr(self.loc, "shape", ())),
                                           tuple(getattr(self.scale, "shape", ()))))

    def inverse_shape(self, shape):
        return self.forward_shape(shape)


class SoftplusTransform(Transform):
    """``y = log(1 + exp(x))``; the inverse is ``y + log(-expm1(-y))``."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = +1

    def __eq__(self, other):
        return isinstance(other, SoftplusTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return F.softplus(x)

    def _inverse(self, y):
        return y + (-pt.expm1(-y)).log()

    def log_abs_det_jacobian(self, x, y):
        return -F.softplus(-x)


class SoftmaxTransform(Transform):
    """Unconstrained vectors to the simplex by ``softmax``; not bijective (adding a constant
    changes nothing), so it has no log-Jacobian; the inverse is ``log y`` (one preimage)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __eq__(self, other):
        return isinstance(other, SoftmaxTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return pt.softmax(x, dim=-1)

    def _inverse(self, y):
        return y.log()

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("SoftmaxTransform.forward_shape: expected at least one dim, got ()")
        return shape

    inverse_shape = forward_shape


def _stick_offset(k, like):
    """``log(k - i)`` for i = 0 .. k-1: centres each stick's logit so that x = 0 maps to the
    uniform point of the simplex."""
    return pt.arange(k, 0, -1, dtype=like.dtype, device=like.device).log()


class StickBreakingTransform(Transform):
    """Vectors of size K to the simplex of size K + 1 by stick breaking: component i takes
    the fraction ``sigmoid(x_i - log(K - i))`` of what is left.  Bijective, unlike
    :class:`SoftmaxTransform`."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def __eq__(self, other):
        return isinstance(other, StickBreakingTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        z = _clipped_sigmoid(x - _stick_offset(x.shape[-1], x))
        left = (1 - z).cumprod(dim=-1)
        return F.pad(z, (0, 1), value=1.0) * F.pad(left, (1, 0), value=1.0)

    def _inverse(self, y):
        head = y[..., :-1]
        rest = (1 - head.cumsum(dim=-1)).clamp(min=pt.finfo(y.dtype).tiny)
        return head.log() - rest.log() + _stick_offset(head.shape[-1], y)

    def log_abs_det_jacobian(self, x, y):
        # dy_i/dx_i = z_i (1 - z_i) * (stick left before i) = y_i (1 - z_i); the Jacobian is
        # triangular, so log|det| = sum log y_i + log(1 - z_i), log(1 - z) = logsigmoid(-t)
        t = x - _stick_offset(x.shape[-1], x)
        return (F.logsigmoid(-t) + y[..., :-1].log()).sum(dim=-1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform.forward_shape: expected at least one "
                             "dim, got ()")
        return pt.Size(tuple(shape[:-1]) + (shape[-1] + 1,))

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform.inverse_shape: expected at least one "
                             "dim, got ()")
        return pt.Size(tuple(shape[:-1]) + (shape[-1] - 1,))


def _diag_part(x):
    return x.diagonal(dim1=-2, dim2=-1)


class LowerCholeskyTransform(Transform):
    """Square matrices to lower triangular ones with a positive diagonal: the strict lower
    triangle is kept and the diagonal exponentiated (the upper triangle is dropped, so it is
    not bijective on all matrices)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def __eq__(self, other):
        return isinstance(other, LowerCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.tril(-1) + pt.diag_embed(_diag_part(x).exp())

    def _inverse(self, y):
        return y.tril(-1) + pt.diag_embed(_diag_part(y).log())


class PositiveDefiniteTransform(Transform):
    """Square matrices to positive definite ones: ``L L^T`` with L from
    :class:`LowerCholeskyTransform`."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def __eq__(self, other):
        return isinstance(other, PositiveDefiniteTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        L = LowerCholeskyTransform()(x)
        return L @ L.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(pt.linalg.cholesky(y))


def _vec_to_tril(vec, n, offset):
    """Fill the entries of the (n, n) lower triangle below diagonal ``offset`` (row-major
    order) from the last dim of ``vec``."""
    rows, cols = pt.tril_indices(n, n, offset, device=vec.device)
    flat = rows * n + cols
    out = pt.zeros(tuple(vec.shape[:-1]) + (n * n,), dtype=vec.dtype, device=vec.device)
    out = out.scatter(-1, flat.expand(tuple(vec.shape)), vec)
    return out.reshape(tuple(vec.shape[:-1]) + (n, n))


def _tril_to_vec(mat, offset):
    n = mat.shape[-1]
    rows, cols = pt.tril_indices(n, n, offset, device=mat.device)
    flat = mat.reshape(tuple(mat.shape[:-2]) + (n * n,))
    return flat.index_select(-1, rows * n + cols)


class CorrCholeskyTransform(Transform):
    """Unconstrained vectors of size ``D (D - 1) / 2`` to lower Cholesky factors of D x D
    correlation matrices (unit-norm rows, positive diagonal), as in LKJ's construction:
    ``tanh`` maps each entry into (-1, 1), and each row is built by stick breaking on the
    squared norm that is left."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def __eq__(self, other):
        return isinstance(other, CorrCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        eps = pt.finfo(x.dtype).eps
        z = x.tanh().clamp(min=-1 + eps, max=1 - eps)
        n = _corr_size(x.shape[-1], "CorrCholeskyTransform")
        r = _vec_to_tril(z, n, -1)
        # each entry takes its partial correlation times the norm the row has left
        left = (1 - r * r).sqrt().cumprod(dim=-1)
        eye = pt.eye(n, dtype=x.dtype, device=x.device)
        return (r + eye) * F.pad(left[..., :-1], (1, 0), value=1.0)

    def _inverse(self, y):
        left = 1 - (y * y).cumsum(dim=-1)
        left = F.pad(left[..., :-1], (1, 0), value=1.0)
        t = _tril_to_vec(y, -1) / _tril_to_vec(left, -1).sqrt()
        return t.atanh()

    def log_abs_det_jacobian(self, x, y):
        # stick breaking contributes 1/2 log(left) for every entry strictly below the
        # diagonal but the first of its row; tanh contributes log(1 - tanh^2)
        left = 1 - (y * y).cumsum(dim=-1)
        stick = 0.5 * _tril_to_vec(left, -2).log().sum(dim=-1)
        tanh = -2.0 * (x + F.softplus(-2.0 * x) - math.log(2.0)).sum(dim=-1)
        return stick + tanh

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("CorrCholeskyTransform.forward_shape: expected at least one dim")
        n = _corr_size(shape[-1], "CorrCholeskyTransform.forward_shape")
        return pt.Size(tuple(shape[:-1]) + (n, n))

    def inverse_shape(self, shape):
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(f"CorrCholeskyTransform.inverse_shape: expected (..., D, D), got "
                             f"{tuple(shape)}")
        n = shape[-1]
        return pt.Size(tuple(shape[:-2]) + (n * (n - 1) // 2,))


def _corr_size(m, where):
    """D with D (D - 1) / 2 == m."""
    n = int(round((0.25 + 2 * m) ** 0.5 + 0.5))
    if n * (n - 1) // 2 != m:
        raise ValueError(f"{where}: the last dim {m} is not D (D - 1) / 2 for an integer D")
    return n


class CatTransform(Transform):
    """Applies ``tseq[i]`` to the i-th piece of the input along ``dim`` (of size
    ``lengths[i]``, default 1 each) and concatenates the results."""

    def __init__(self, tseq, dim: int = 0, lengths=None, cache_size: int = 0):
        tseq = list(tseq)
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("CatTransform: every entry of tseq must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = tseq
        self.lengths = [1] * len(tseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.transforms):
            raise ValueError(f"CatTransform: {len(self.transforms)} transforms but "
                             f"{len(self.lengths)} lengths")
        self.dim = dim

    @property
    def event_dim(self):
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self):
        return sum(self.lengths)

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return CatTransform(self.transforms, self.dim, self.lengths, cache_size)

    def __eq__(self, other):
        return (isinstance(other, CatTransform) and self.transforms == other.transforms
                and self.dim == other.dim and self.lengths == other.lengths)

    __hash__ = object.__hash__

    def _check(self, x, what):
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"CatTransform{what}: dim {self.dim} out of range for shape "
                             f"{tuple(x.shape)}")
        if x.shape[self.dim] != self.length:
            raise ValueError(f"CatTransform{what}: the input's dim {self.dim} has size "
                             f"{x.shape[self.dim]}, expected sum(lengths) = {self.length}")

    def _pieces(self, x):
        start = 0
        for t, length in zip(self.transforms, self.lengths):
            yield t, x.narrow(self.dim, start, length)
            start += length

    def _call(self, x):
        self._check(x, "")
        return pt.cat([t(piece) for t, piece in self._pieces(x)], dim=self.dim)

    def _inverse(self, y):
        self._check(y, ".inv")
        return pt.cat([t.inv(piece) for t, piece in self._pieces(y)], dim=self.dim)

    def log_abs_det_jacobian(self, x, y):
        self._check(x, ".log_abs_det_jacobian")
        terms, start = [], 0
        for t, length in zip(self.transforms, self.lengths):
            xs, ys = x.narrow(self.dim, start, length), y.narrow(self.dim, start, length)
            lad = t.log_abs_det_jacobian(xs, ys)
            if t.event_dim < self.event_dim:
                lad = _sum_rightmost(lad, self.event_dim - t.event_dim)
            terms.append(lad)
            start += length
        dim = self.dim - x.ndim if self.dim >= 0 else self.dim
        dim += self.event_dim
        if dim < 0:  # dim is a batch dim: the pieces' terms sit side by side
            return pt.cat(terms, dim=dim)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    @property
    def bijective(self):
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self):
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)


class StackTransform(Transform):
    """Applies ``tseq[i]`` to the i-th slice of the input along ``dim`` and stacks the
    results."""

    def __init__(self, tseq, dim: int = 0, cache_size: int = 0):
        tseq = list(tseq)
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("StackTransform: every entry of tseq must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = tseq
        self.dim = dim

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return StackTransform(self.transforms, self.dim, cache_size)

    def __eq__(self, other):
        return (isinstance(other, StackTransform) and self.transforms == other.transforms
                and self.dim == other.dim)

    __hash__ = object.__hash__

    def _slices(self, x, what):
        if not -x.ndim <= self.dim < x.ndim or x.shape[self.dim] != len(self.transforms):
            raise ValueError(f"StackTransform{what}: the input of shape {tuple(x.shape)} must "
                             f"have {len(self.transforms)} entries along dim {self.dim}")
        return [x.select(self.dim, i) for i in range(len(self.transforms))]

    def _call(self, x):
        return pt.stack([t(s) for t, s in zip(self.transforms, self._slices(x, ""))],
                        dim=self.dim)

    def _inverse(self, y):
        return pt.stack([t.inv(s) for t, s in zip(self.transforms, self._slices(y, ".inv"))],
                        dim=self.dim)

    def log_abs_det_jacobian(self, x, y):
        xs, ys = self._slices(x, ".log_abs_det_jacobian"), self._slices(y, "")
        return pt.stack([t.log_abs_det_jacobian(a, b)
                         for t, a, b in zip(self.transforms, xs, ys)], dim=self.dim)

    @property
    def bijective(self):
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self):
        return constraints.stack([t.codomain for t in self.transforms], self.dim)


class CumulativeDistributionTransform(Transform):
    """``y = distribution.cdf(x)``: a univariate distribution's support onto [0, 1]; the
    inverse is its ``icdf`` and the log-Jacobian its ``log_prob``."""

    bijective = True
    codomain = constraints.unit_interval
    sign = +1

    def __init__(self, distribution, cache_size: int = 0):
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self):
        return self.distribution.support

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return CumulativeDistributionTransform(self.distribution, cache_size=cache_size)

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x, y):
        return self.distribution.log_prob(x)
