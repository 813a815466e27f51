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
           "digamma", "psi", "polygamma", "multigammaln", "gammainc", "gammaincc"]

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


def _gamma_operands(op, input, other):
    import polyten as pt
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        raise TypeError(f"special.{op}: expected a tensor among the arguments, got "
                        f"{type(input).__name__} and {type(other).__name__}")
    dt = pt.result_type(input, other)  # a Python number is a weak operand
    a = input if isinstance(input, Tensor) else pt.asarray(input, device=like.device)
    x = other if isinstance(other, Tensor) else pt.asarray(other, device=like.device)
    if not dt.is_floating_point:
        dt = pt.get_default_dtype()
    # float16 / bfloat16 iterate in float32 (PyTorch computes them in float32 too)
    work = pt.float32 if dt in (pt.float16, pt.bfloat16) else dt
    a, x = pt.broadcast_tensors(a.to(work), x.to(work))
    return a, x, dt


def _incomplete_gamma(a, x):
    """(P, Q): the regularized lower and upper incomplete gamma functions, each to the
    dtype's accuracy (Q is not formed as 1 - P where P is near 1).  The power series of P
    where ``x < a + 1`` and the continued fraction of Q elsewhere (modified Lentz), iterated
    in polyten ops until every entry has converged (a flag read every 16 steps; at most
    4000 steps, enough for a up to about 1e6).  Differentiable in ``x`` and ``a``."""
    import polyten as pt
    fi = pt.finfo(x.dtype)
    eps, tiny = fi.eps, fi.tiny
    valid = (a >= 0) & (x >= 0)  # anything else (and NaN) gives NaN, as PyTorch
    interior = valid & (a > 0) & (x > 0) & pt.isfinite(a) & pt.isfinite(x)
    aa = pt.where(interior, a, 1.0)
    xx = pt.where(interior, x, 1.0)
    log_front = aa * pt.log(xx) - xx - pt.lgamma(aa)
    series = xx < aa + 1
    # P = x^a e^-x / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n))
    xs = pt.where(series, xx, 0.5 * aa)
    term = 1.0 / aa
    total = term
    n = 0
    while True:
        n += 1
        term = term * xs / (aa + n)
        total = total + term
        if n % 16 == 0 and (n >= 4000 or bool((term.abs() <= total.abs() * eps).all())):
            break  # the terms only shrink from n > x - a on: no wobble here
    p_series = total * pt.exp(log_front)
    # Q = x^a e^-x / Gamma(a) / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...))
    xc = pt.where(series, aa + 2, xx)
    b = xc + 1 - aa
    c = pt.full_like(b, 1.0 / tiny)
    d = 1.0 / b
    h = d
    settled = pt.zeros(tuple(h.shape), dtype=pt.bool, device=h.device)
    i = 0
    while True:
        i += 1
        an = -i * (i - aa)
        b = b + 2
        d = an * d + b
        d = pt.where(d.abs() < tiny, tiny, d)
        c = b + an / c
        c = pt.where(c.abs() < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        # a converged entry keeps its value: later factors may sit an ulp or two off 1
        h = pt.where(settled, h, h * delta)
        settled = settled | ((delta - 1).abs() <= eps)
        if i % 16 == 0 and (i >= 4000 or bool(settled.all())):
            break
    q_cf = pt.exp(log_front) * h
    p = pt.where(series, p_series, 1.0 - q_cf)
    q = pt.where(series, 1.0 - p_series, q_cf)
    # the edges: x = 0 or a = inf -> P = 0; x = inf or a = 0 (the limit) -> P = 1
    zero = valid & ((x == 0) | pt.isinf(a)) & ~pt.isinf(x)
    one = valid & ~zero & ((a == 0) | pt.isinf(x))
    nan = pt.full_like(p, math.nan)
    p = pt.where(interior, p, pt.where(zero, 0.0, pt.where(one, 1.0, nan)))
    q = pt.where(interior, q, pt.where(zero, 1.0, pt.where(one, 0.0, nan)))
    return p, q


def gammainc(input, other) -> Tensor:
    """The regularized lower incomplete gamma function
    ``P(a, x) = 1 / Gamma(a) * integral_0^x t^(a-1) e^-t dt`` with ``a = input``,
    ``x = other`` (``torch.special.gammainc``): the CDF of Gamma(a, 1) at x.  NaN where a < 0
    or x < 0; 1 at a = 0 (the limit).  Differentiable in both arguments."""
    a, x, dt = _gamma_operands("gammainc", input, other)
    return _incomplete_gamma(a, x)[0].to(dt)


def gammaincc(input, other) -> Tensor:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``
    (``torch.special.gammaincc``), accurate where P is near 1."""
    a, x, dt = _gamma_operands("gammaincc", input, other)
    return _incomplete_gamma(a, x)[1].to(dt)


# --- error function and modified Bessel functions (compositions in api/derived_more.py) ---
from .api import derived_more as _more  # noqa: E402

__all__ += ["erfc", "erfinv", "i0", "i0e", "i1", "i1e"]
erfc = _more.erfc
erfinv = _more.erfinv
i0 = _more.i0


def i0e(input) -> Tensor:
    """The exponentially scaled modified Bessel function ``exp(-|x|) I0(x)``
    (``torch.special.i0e``), finite where ``I0`` overflows."""
    return _more._i0e(input)


def i1(input) -> Tensor:
    """The modified Bessel function of the first kind of order 1 (``torch.special.i1``)."""
    return _more._i1(input)


def i1e(input) -> Tensor:
    """The exponentially scaled ``exp(-|x|) I1(x)`` (``torch.special.i1e``)."""
    return _more._i1e(input)
