"""``polyten.special``: the functions of ``torch.special`` that polyten has, under torch's
names (most are aliases of the functions of the main namespace)."""

from __future__ import annotations

import math

from .api import derived as _derived
from .api import elementwise as _ew
from .api import reduction as _red
from .api._core import Tensor
from .nn import functional as _F

__all__ = ["expit", "logit", "erf", "xlogy", "xlog1py", "sinc", "entr", "ndtr", "exp2",
           "expm1", "log1p", "logsumexp", "round", "softmax", "log_softmax", "gammaln",
           "digamma", "psi", "polygamma", "multigammaln"]

expit = _ew.sigmoid
logit = _derived.logit
erf = _ew.erf
xlogy = _derived.xlogy
sinc = _derived.sinc
exp2 = _ew.exp2
expm1 = _ew.expm1
log1p = _ew.log1p
logsumexp = _red.logsumexp
round = _ew.round  # noqa: A001 -- torch.special.round
gammaln = _ew.lgamma  # noqa: F821 -- generated from the op table
digamma = psi = _ew.digamma  # noqa: F821
polygamma = _ew.polygamma


def multigammaln(input, p) -> Tensor:
    """:func:`polyten.mvlgamma` (``torch.special.multigammaln``)."""
    return _ew.mvlgamma(input, p)


def softmax(input, dim, *, dtype=None) -> Tensor:
    """:func:`polyten.nn.functional.softmax`, ``dim`` required (``torch.special``'s form)."""
    return _F.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None) -> Tensor:
    """:func:`polyten.nn.functional.log_softmax`, ``dim`` required."""
    return _F.log_softmax(input, dim, dtype=dtype)


def xlog1py(input, other) -> Tensor:
    """``x * log1p(y)``, 0 where x is 0 (unless y is NaN), as ``torch.special.xlog1py``."""
    import polyten as pt
    x = input if isinstance(input, Tensor) else pt.asarray(input, device=other.device)
    y = other if isinstance(other, Tensor) else pt.asarray(other, device=x.device)
    dt = pt.result_type(x, y)
    if not dt.is_floating_point:
        dt = pt.get_default_dtype()
    x, y = x.to(dt), y.to(dt)
    zero = (x == 0) & ~pt.isnan(y) & ((y <= -1) | pt.isinf(y))
    safe = pt.where(zero, pt.zeros_like(y), y)
    return pt.where(zero, pt.zeros_like(x), x * pt.log1p(safe))


def entr(input) -> Tensor:
    """The elementwise entropy ``-x log(x)``: 0 at 0, ``-inf`` for negative x."""
    import polyten as pt
    x = input if input.dtype.is_floating_point else input.to(pt.get_default_dtype())
    pos = x > 0
    safe = pt.where(pos, x, pt.ones_like(x))
    out = pt.where(pos, -x * pt.log(safe), pt.zeros_like(x))
    return pt.where(x < 0, pt.full_like(x, -math.inf), out)


def ndtr(input) -> Tensor:
    """The standard normal distribution function ``(1 + erf(x / sqrt(2))) / 2``."""
    import polyten as pt
    x = input if input.dtype.is_floating_point else input.to(pt.get_default_dtype())
    return (1.0 + _ew.erf(x * (1.0 / math.sqrt(2.0)))) * 0.5
