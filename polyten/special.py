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


# =============================================================================================
# Scaled error functions, the normal quantile, Bessel, Airy, Hurwitz zeta and the classical
# orthogonal polynomials.  Every function below is written in polyten ops (float16 / bfloat16
# are computed in float32), so it runs on every backend; the ones with a known derivative are
# :class:`polyten.autograd.Function` s whose backward is written with the public functions
# here, so that a double backward differentiates again.
# =============================================================================================
__all__ += ["erfcx", "log_ndtr", "ndtri", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
            "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
            "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
            "spherical_bessel_j0", "airy_ai", "zeta", "chebyshev_polynomial_t",
            "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
            "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
            "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w",
            "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
            "legendre_polynomial_p"]

_EULER_GAMMA = 0.57721566490153286061
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _pt():
    import polyten
    return polyten


def _float_arg(op: str, input):
    """``(x, w)``: ``input`` as a floating tensor (integers and bools give the default dtype,
    as PyTorch) and the dtype it is computed in (float32 for float16 / bfloat16)."""
    pt = _pt()
    if not isinstance(input, Tensor):
        raise TypeError(f"special.{op}: expected a tensor, got {type(input).__name__}; wrap "
                        f"numbers with polyten.tensor(...)")
    if input.dtype.is_complex:
        raise TypeError(f"special.{op}: complex tensors are not supported, got "
                        f"{input.dtype.name}")
    x = input if input.dtype.is_floating_point else input.to(pt.get_default_dtype())
    w = x.to(pt.float32) if x.dtype in (pt.float16, pt.bfloat16) else x
    return x, w


_FUNCTIONS: dict = {}


def _unary_function(name: str, values, derivative):
    """An autograd Function (made once, on first use) computing ``values(w)`` with the
    derivative ``derivative(w, out)`` (``None``: the backward raises, as PyTorch's)."""
    fn = _FUNCTIONS.get(name)
    if fn is not None:
        return fn
    from .autograd.function import Function

    class _Closed(Function):
        @staticmethod
        def forward(ctx, w):
            out = values(w)
            ctx.save_for_backward(w, out)
            return out

        @staticmethod
        def backward(ctx, g):
            w, out = ctx.saved_tensors
            if derivative is None:
                raise RuntimeError(f"special.{name}: the derivative is not implemented (nor "
                                   f"in PyTorch); detach the input or use a differentiable "
                                   f"formula")
            return g * derivative(w, out)

    _Closed.__name__ = f"_{name}"
    _FUNCTIONS[name] = _Closed
    return _Closed


def _apply_unary(name, input, values, derivative):
    x, w = _float_arg(name, input)
    out = _unary_function(name, values, derivative).apply(w)
    return out if w is x else out.to(x.dtype)


def _split_square(x: Tensor):
    """``(hi, lo)`` with ``hi + lo == x * x`` to about twice the working precision (Veltkamp's
    split: ``hi`` has half the mantissa bits, so ``hi * hi`` is exact); ``exp(x * x)`` then
    loses no digits to the rounding of ``x * x``."""
    pt = _pt()
    c = 134217729.0 if x.dtype == pt.float64 else 4097.0  # 2**27 + 1, 2**12 + 1
    xc = pt.where(pt.isfinite(x), x, 0.0)
    big = xc * c
    xh = big - (big - xc)
    xl = xc - xh
    return xh * xh, xl * (2.0 * xh + xl)


def _clenshaw(t: Tensor, coeffs) -> Tensor:
    """``c_0 / 2 + sum_k c_k T_k(t)`` by Clenshaw's recurrence."""
    b1 = t * 0.0
    b2 = b1
    for c in coeffs[:0:-1]:
        b1, b2 = 2.0 * t * b1 - b2 + c, b1
    return t * b1 - b2 + 0.5 * coeffs[0]


_CHEB_CACHE: dict = {}


def _erfcx_chebyshev():
    """Chebyshev coefficients of ``erfcx(1 + t)`` on ``t`` in [-1, 1] (x in [0, 2]), from the
    values of ``exp(x^2) * math.erfc(x)`` at 48 Chebyshev nodes (the square taken exactly, so
    each value is good to about 2 ulps); the series is entire, so 48 terms reach rounding."""
    if "erfcx" not in _CHEB_CACHE:
        from fractions import Fraction
        n = 48
        theta = [math.pi * (j + 0.5) / n for j in range(n)]
        vals = []
        for th in theta:
            x = 1.0 + math.cos(th)
            sq = Fraction(x) * Fraction(x)
            hi = float(sq)
            vals.append(math.exp(hi) * math.exp(float(sq - Fraction(hi))) * math.erfc(x))
        # cos(k theta_j) from the reduced integer multiple of pi / (2n): k * theta_j in floats
        # would carry k times the rounding of theta_j
        _CHEB_CACHE["erfcx"] = [
            2.0 / n * math.fsum(v * math.cos(math.pi * ((k * (2 * j + 1)) % (4 * n)) / (2 * n))
                                for j, v in enumerate(vals))
            for k in range(n)]
    return _CHEB_CACHE["erfcx"]


def _erfcx_nonneg(x: Tensor) -> Tensor:
    """erfcx on ``x >= 0`` (NaN passes through, ``+inf`` gives 0)."""
    pt = _pt()
    cf = x >= 2.0
    near = _clenshaw(pt.where(cf, 1.0, x) - 1.0, _erfcx_chebyshev())
    # erfcx(x) = 1 / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))) converges to
    # rounding within 60 levels from x = 2 on
    xf = pt.where(cf & pt.isfinite(x), x, 2.0)
    t = xf
    for n in range(60, 0, -1):
        t = xf + (n * 0.5) / t
    far = pt.where(pt.isinf(x), 0.0, _INV_SQRT_PI / t)
    return pt.where(cf, far, near)


def _erfcx_values(w: Tensor) -> Tensor:
    pt = _pt()
    pos = _erfcx_nonneg(w.abs())
    # erfcx(-x) = 2 exp(x^2) - erfcx(x): overflows (to inf) below about -26.6
    hi, lo = _split_square(w)
    neg = 2.0 * pt.exp(hi) * pt.exp(lo) - pos
    neg = pt.where(pt.isinf(w), math.inf, neg)
    return pt.where(w < 0, neg, pos)


def erfcx(input) -> Tensor:
    """The scaled complementary error function ``exp(x^2) * erfc(x)``
    (``torch.special.erfcx``), finite and accurate where ``erfc`` underflows.

    Chebyshev series on [0, 2], the continued fraction of ``erfc`` beyond, and
    ``2 exp(x^2) - erfcx(-x)`` for negative x (``inf`` below about -26.6).  Differentiable:
    ``d/dx erfcx(x) = 2 x erfcx(x) - 2 / sqrt(pi)``.

    Parameters
    ----------
    input : Tensor
        Integers and bools give the default floating dtype; float16 / bfloat16 are computed
        in float32.
    """
    return _apply_unary("erfcx", input, _erfcx_values,
                        lambda w, out: 2.0 * w * erfcx(w) - 2.0 * _INV_SQRT_PI)


def _erfc_scaled_arg(x: Tensor) -> Tensor:
    """``erfc(x / sqrt 2)`` with relative accuracy in both tails: ``erfcx(|x| / sqrt 2)``
    (slowly varying, so the rounding of ``x / sqrt 2`` costs nothing) times
    ``exp(-x^2 / 2)`` from the exact square of x."""
    pt = _pt()
    hi, lo = _split_square(x)
    e = pt.exp(-0.5 * hi) * pt.exp(-0.5 * lo)
    a = _erfcx_nonneg(x.abs() / _SQRT_2) * e
    a = pt.where(pt.isinf(x), 0.0, a)
    return pt.where(x < 0, 2.0 - a, a)


def _log_ndtr_values(w: Tensor) -> Tensor:
    pt = _pt()
    left = w < -1.0
    # log Phi(x) = log(erfcx(-x / sqrt 2) / 2) - x^2 / 2 on the left: no underflow
    wl = pt.where(left, w, -1.0)
    lt = pt.log(_erfcx_nonneg(-wl / _SQRT_2) * 0.5) - 0.5 * wl * wl
    wr = pt.where(left, 0.0, w)
    rt = pt.log1p(-0.5 * _erfc_scaled_arg(wr))
    return pt.where(left, lt, rt)


def _log_ndtr_derivative(w: Tensor, out: Tensor) -> Tensor:
    """``phi(x) / Phi(x)``: ``sqrt(2 / pi) / erfcx(-x / sqrt 2)`` on the left (no 0 / 0)."""
    pt = _pt()
    left = w < -1.0
    lt = math.sqrt(2.0 / math.pi) / erfcx(-pt.where(left, w, -1.0) / _SQRT_2)
    wr = pt.where(left, 0.0, w)
    rt = pt.exp(-0.5 * wr * wr - log_ndtr(wr)) / math.sqrt(2.0 * math.pi)
    return pt.where(left, lt, rt)


def log_ndtr(input) -> Tensor:
    """The log of the standard normal distribution function, ``log(ndtr(x))``
    (``torch.special.log_ndtr``), accurate for very negative x (about ``-x^2 / 2``) and for
    large x (about ``-ndtr(-x)``).  Differentiable: ``phi(x) / Phi(x)``.

    Parameters
    ----------
    input : Tensor
    """
    return _apply_unary("log_ndtr", input, _log_ndtr_values, _log_ndtr_derivative)


def _ndtri_values(w: Tensor) -> Tensor:
    pt = _pt()
    inside = (w > 0) & (w < 1)
    p = pt.where(inside, w, 0.5)
    upper = p > 0.5
    q = pt.where(upper, 1.0 - p, p)  # exact (Sterbenz) for p >= 1/2; q <= 1/2
    central = q > 0.25
    # the centre: sqrt(2) erfinv(2p - 1) with 2p - 1 exact there, so x keeps its relative
    # accuracy near p = 1/2
    xc = _SQRT_2 * _more.erfinv(pt.where(central, 2.0 * p - 1.0, 0.0))
    # the tails: Abramowitz & Stegun 26.2.23 (error < 4.5e-4), then Newton steps on
    # log Phi(x) = log q, which is nearly linear in x far out
    qt = pt.where(central, 0.125, q)
    lq = pt.log(qt)
    t = pt.sqrt(-2.0 * lq)
    x = -(t - (2.515517 + t * (0.802853 + t * 0.010328))
          / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))))
    for _ in range(4):
        x = x - (_log_ndtr_values(x) - lq) / _log_ndtr_derivative(x, None)
    xt = pt.where(upper, -x, x)
    out = pt.where(central, xc, xt)
    out = pt.where(inside, out, math.nan)
    out = pt.where(w == 0, -math.inf, out)
    return pt.where(w == 1, math.inf, out)


def ndtri(input) -> Tensor:
    """The quantile function of the standard normal distribution, the inverse of
    :func:`ndtr` (``torch.special.ndtri``): ``-inf`` at 0, ``inf`` at 1, NaN outside [0, 1].

    ``sqrt(2) erfinv(2p - 1)`` in the centre; in the tails a rational first guess refined by
    Newton steps on :func:`log_ndtr`, so arguments down to the smallest subnormal keep their
    digits.  Differentiable: ``sqrt(2 pi) exp(ndtri(p)^2 / 2)``.

    Parameters
    ----------
    input : Tensor
    """
    return _apply_unary("ndtri", input, _ndtri_values,
                        lambda w, out: math.sqrt(2.0 * math.pi) * _pt().exp(
                            0.5 * ndtri(w) ** 2))


# --- Bessel functions ------------------------------------------------------------------------
# Small arguments (|x| < 2): the power series (at most about one digit of cancellation).
# Larger ones: integral representations evaluated by the trapezoidal rule, which converges
# geometrically for these analytic, rapidly decaying integrands (errors near 1e-16 relative to
# the functions' envelopes were measured against mpmath over [2, 1e300]):
#   H_nu^(1)(x) = sqrt(2 / (pi x)) exp(i (x - nu pi / 2 - pi / 4)) (P + i Q), with
#   P + i Q = 1 / Gamma(nu + 1/2) int_0^inf exp(-t) t^(nu - 1/2) (1 + i t / (2x))^(nu - 1/2) dt
# (J = Re H, Y = Im H; t = s^2 for integer nu, t = s^6 for nu = 1/3 so the integrand is smooth
# at 0), and  exp(x) K_nu(x) = int_0^inf exp(-2 x sinh(t / 2)^2) cosh(nu t) dt,  t = u / sqrt x.
_SERIES_EDGE = 2.0


def _nodes(w: Tensor, values) -> Tensor:
    return _pt().asarray(list(values), dtype=w.dtype, device=w.device)


def _hankel_jy(x: Tensor, nu: float):
    """``(J_nu(x), Y_nu(x))`` for ``x >= 2`` (finite), nu in {0, 1, 1/3}."""
    pt = _pt()
    if nu == 1.0 / 3.0:
        h, count, power = 0.05, 41, 6  # s up to 2: exp(-2^6) is below rounding
    else:
        h, count, power = 0.2, 32, 2  # s up to 6.2
    s = [k * h for k in range(count)]
    t = [v ** power for v in s]
    # dt = power s^(power - 1) ds; t^(nu - 1/2) dt = power s^(power (nu + 1/2) - 1) ds
    expo = power * (nu + 0.5) - 1.0
    g = math.gamma(nu + 0.5)
    base = [(0.5 if k == 0 else 1.0) * h * power * (v ** expo if expo else 1.0)
            * math.exp(-tv) / g for k, (v, tv) in enumerate(zip(s, t))]
    e = nu - 0.5
    xe = x.unsqueeze(-1)
    wt = _nodes(x, t) / (2.0 * xe)
    mag = _nodes(x, base) * pt.exp(e * 0.5 * pt.log1p(wt * wt))
    ph = e * pt.atan(wt)
    p = (mag * pt.cos(ph)).sum(-1)
    q = (mag * pt.sin(ph)).sum(-1)
    a = nu * math.pi / 2 + math.pi / 4
    c, sn = pt.cos(x), pt.sin(x)  # the backend reduces large x accurately; x - a would not
    cchi = c * math.cos(a) + sn * math.sin(a)
    schi = sn * math.cos(a) - c * math.sin(a)
    amp = pt.sqrt((2.0 / math.pi) / x)
    return amp * (p * cchi - q * schi), amp * (p * schi + q * cchi)


def _k_scaled(x: Tensor, nu: float) -> Tensor:
    """``exp(x) K_nu(x)`` for ``x >= 1.5`` (any magnitude; x = inf gives 0)."""
    pt = _pt()
    h = 0.3
    u = [k * h for k in range(33)]  # u up to 9.6: exp(-u^2 / 2) is below rounding
    wts = [(0.5 if k == 0 else 1.0) * h for k in range(33)]
    xf = pt.where(pt.isinf(x), 1.0, x)
    rx = pt.sqrt(xf).unsqueeze(-1)
    t = _nodes(x, u) / rx
    sh = pt.sinh(0.5 * t)
    f = pt.exp(-2.0 * xf.unsqueeze(-1) * sh * sh) * _nodes(x, wts)
    if nu:
        f = f * pt.cosh(nu * t)
    out = f.sum(-1) / rx.squeeze(-1)
    return pt.where(pt.isinf(x), 0.0, out)


def _bessel_series(z: Tensor, order: int, kind: str) -> Tensor:
    """Power series for ``0 < z < 2``: J (kind "j"), Y ("y"), I ("i") or K ("k") of order 0
    or 1.  ``q = (z / 2)^2``; the log terms carry the digamma sums."""
    pt = _pt()
    q = 0.25 * z * z
    sign = -1.0 if kind in ("j", "y") else 1.0
    # plain[k] = (+-q)^k / (k! (k + order)!);  with digamma weights for Y / K
    term = pt.ones_like(z) if order == 0 else 0.5 * z
    plain = term
    psi_a = -_EULER_GAMMA  # psi(k + 1)
    psi_b = -_EULER_GAMMA + (1.0 if order else 0.0)  # psi(k + 1 + order)
    weighted = term * (psi_a + psi_b)
    for k in range(1, 24):  # q < 1: 1 / (23!)^2 is far below rounding
        term = term * (sign * q / (k * (k + order)))
        psi_a += 1.0 / k
        psi_b += 1.0 / (k + order)
        plain = plain + term
        weighted = weighted + term * (psi_a + psi_b)
    if kind in ("j", "i"):
        return plain
    lg = pt.log(0.5 * z)
    if kind == "y":
        # Y_n = (2 / pi) log(z / 2) J_n - (1 / pi) sum (-q)^k (psi_a + psi_b) ... - (n = 1) term
        out = (2.0 / math.pi) * lg * plain - weighted / math.pi
        return out - 2.0 / (math.pi * z) if order else out
    # K_0 = -log(z / 2) I_0 + (1/2) sum q^k (psi_a + psi_b) / (k!)^2;
    # K_1 = 1 / z + log(z / 2) I_1 - (1/2) sum ... (psi_a + psi_b) (z / 2)^(2k + 1) / (k! (k+1)!)
    if order == 0:
        return -lg * plain + 0.5 * weighted
    return 1.0 / z + lg * plain - 0.5 * weighted


def _bessel_jy_values(w: Tensor, order: int, kind: str) -> Tensor:
    pt = _pt()
    z = w.abs()
    small = z < _SERIES_EDGE
    zs = pt.where(small & (z > 0), z, 1.0)
    zl = pt.where(small | pt.isinf(z), _SERIES_EDGE, z)
    j, y = _hankel_jy(zl, float(order))
    far = j if kind == "j" else y
    near = _bessel_series(zs, order, kind)
    out = pt.where(small, near, far)
    if kind == "j":
        out = pt.where(pt.isinf(z), 0.0, out)
        out = pt.where(z == 0, 1.0 if order == 0 else 0.0, out)
        return pt.where(w < 0, -out, out) if order == 1 else out  # J1 is odd
    out = pt.where(pt.isinf(w), 0.0, out)
    out = pt.where(w == 0, -math.inf, out)
    return pt.where(w < 0, math.nan, out)


def _bessel_k_values(w: Tensor, order: int, scaled: bool) -> Tensor:
    pt = _pt()
    small = w < _SERIES_EDGE
    zs = pt.where(small & (w > 0), w, 1.0)
    near = _bessel_series(zs, order, "k")
    if scaled:
        near = near * pt.exp(zs)
    zl = pt.where(small, _SERIES_EDGE, w)
    far = _k_scaled(zl, float(order))
    if not scaled:
        far = far * pt.exp(-zl)
    out = pt.where(small, near, far)
    out = pt.where(w == 0, math.inf, out)
    return pt.where(w < 0, math.nan, out)


def _x_or_half(w: Tensor, num: Tensor, limit: float) -> Tensor:
    """``num / w`` with its limit at ``w = 0``."""
    pt = _pt()
    zero = w == 0
    return pt.where(zero, limit, num / pt.where(zero, 1.0, w))


def bessel_j0(input) -> Tensor:
    """The Bessel function of the first kind of order 0 (``torch.special.bessel_j0``).

    Power series for ``|x| < 2``, a Hankel-type integral (trapezoidal rule) beyond; absolute
    error about 1e-16 times the envelope ``sqrt(2 / (pi |x|))`` (so relative accuracy
    everywhere except right at the zeros).  ``J0(+-inf) = 0`` (the limit; PyTorch gives NaN).
    Differentiable: ``J0' = -J1``.

    Parameters
    ----------
    input : Tensor
        Integers and bools give the default floating dtype; float16 / bfloat16 are computed
        in float32.
    """
    return _apply_unary("bessel_j0", input, lambda w: _bessel_jy_values(w, 0, "j"),
                        lambda w, out: -bessel_j1(w))


def bessel_j1(input) -> Tensor:
    """The Bessel function of the first kind of order 1 (``torch.special.bessel_j1``), odd.
    Accuracy as :func:`bessel_j0`; ``J1' = J0 - J1 / x`` (1/2 at 0)."""
    return _apply_unary("bessel_j1", input, lambda w: _bessel_jy_values(w, 1, "j"),
                        lambda w, out: bessel_j0(w) - _x_or_half(w, bessel_j1(w), 0.5))


def bessel_y0(input) -> Tensor:
    """The Bessel function of the second kind of order 0 (``torch.special.bessel_y0``):
    ``-inf`` at 0, NaN for negative x.  Accuracy as :func:`bessel_j0`; ``Y0' = -Y1``."""
    return _apply_unary("bessel_y0", input, lambda w: _bessel_jy_values(w, 0, "y"),
                        lambda w, out: -bessel_y1(w))


def bessel_y1(input) -> Tensor:
    """The Bessel function of the second kind of order 1 (``torch.special.bessel_y1``):
    ``-inf`` at 0, NaN for negative x.  ``Y1' = Y0 - Y1 / x``."""
    return _apply_unary("bessel_y1", input, lambda w: _bessel_jy_values(w, 1, "y"),
                        lambda w, out: bessel_y0(w) - bessel_y1(w) / w)


def modified_bessel_i0(input) -> Tensor:
    """The modified Bessel function of the first kind of order 0
    (``torch.special.modified_bessel_i0``; the same function as :func:`i0`)."""
    x, _ = _float_arg("modified_bessel_i0", input)
    return _more.i0(x)


def modified_bessel_i1(input) -> Tensor:
    """The modified Bessel function of the first kind of order 1
    (``torch.special.modified_bessel_i1``; the same function as :func:`i1`)."""
    x, _ = _float_arg("modified_bessel_i1", input)
    return _more._i1(x)


def modified_bessel_k0(input) -> Tensor:
    """The modified Bessel function of the second kind of order 0
    (``torch.special.modified_bessel_k0``): ``inf`` at 0, NaN for negative x, relative
    accuracy near rounding (power series below 2, an integral of ``exp(-x cosh t)`` above).
    Differentiable: ``K0' = -K1``."""
    return _apply_unary("modified_bessel_k0", input, lambda w: _bessel_k_values(w, 0, False),
                        lambda w, out: -modified_bessel_k1(w))


def modified_bessel_k1(input) -> Tensor:
    """The modified Bessel function of the second kind of order 1
    (``torch.special.modified_bessel_k1``).  ``K1' = -K0 - K1 / x``."""
    return _apply_unary("modified_bessel_k1", input, lambda w: _bessel_k_values(w, 1, False),
                        lambda w, out: -modified_bessel_k0(w) - modified_bessel_k1(w) / w)


def scaled_modified_bessel_k0(input) -> Tensor:
    """``exp(x) K0(x)`` (``torch.special.scaled_modified_bessel_k0``), finite where ``K0``
    underflows.  Derivative ``exp(x) (K0 - K1)``."""
    return _apply_unary("scaled_modified_bessel_k0", input,
                        lambda w: _bessel_k_values(w, 0, True),
                        lambda w, out: (scaled_modified_bessel_k0(w)
                                        - scaled_modified_bessel_k1(w)))


def scaled_modified_bessel_k1(input) -> Tensor:
    """``exp(x) K1(x)`` (``torch.special.scaled_modified_bessel_k1``).  Derivative
    ``exp(x) (K1 - K0 - K1 / x)``."""
    def deriv(w, out):
        k1 = scaled_modified_bessel_k1(w)
        return k1 - scaled_modified_bessel_k0(w) - k1 / w
    return _apply_unary("scaled_modified_bessel_k1", input,
                        lambda w: _bessel_k_values(w, 1, True), deriv)


def spherical_bessel_j0(input) -> Tensor:
    """The spherical Bessel function of the first kind of order 0, ``sin(x) / x``
    (``torch.special.spherical_bessel_j0``): 1 at 0, 0 at +-inf.  Differentiable (through
    its parts: a Taylor polynomial for ``|x| < 1/2``, ``sin(x) / x`` beyond)."""
    pt = _pt()
    x, w = _float_arg("spherical_bessel_j0", input)
    small = w.abs() < 0.5
    ws = pt.where(small, w, 0.0)
    q = ws * ws
    series = 1.0 + q * (-1.0 / 6 + q * (1.0 / 120 + q * (-1.0 / 5040 + q * (
        1.0 / 362880 + q * (-1.0 / 39916800 + q * (1.0 / 6227020800))))))
    wl = pt.where(small | pt.isinf(w), 1.0, w)
    out = pt.where(small, series, pt.sin(wl) / wl)
    out = pt.where(pt.isinf(w), 0.0, out)
    return out if w is x else out.to(x.dtype)


def _airy_ai_values(w: Tensor) -> Tensor:
    pt = _pt()
    right = w >= 1.75
    left = w <= -2.1
    mid = ~(right | left)
    # Maclaurin series Ai(x) = Ai(0) f(x) + Ai'(0) g(x)
    xm = pt.where(mid, w, 0.0)
    c3 = xm * xm * xm
    tf = pt.ones_like(xm)
    tg = xm
    f, g = tf, tg
    for k in range(25):
        tf = tf * c3 / ((3 * k + 2) * (3 * k + 3))
        tg = tg * c3 / ((3 * k + 3) * (3 * k + 4))
        f, g = f + tf, g + tg
    ai0 = 1.0 / (3.0 ** (2.0 / 3.0) * math.gamma(2.0 / 3.0))
    dai0 = -1.0 / (3.0 ** (1.0 / 3.0) * math.gamma(1.0 / 3.0))
    near = ai0 * f + dai0 * g
    # x > 0: Ai(x) = sqrt(x / 3) K_{1/3}(zeta) / pi, zeta = 2/3 x^(3/2)
    xr = pt.where(right & pt.isfinite(w), w, 2.0)
    zr = (2.0 / 3.0) * xr * pt.sqrt(xr)
    rt = pt.sqrt(xr / 3.0) / math.pi * _k_scaled(zr, 1.0 / 3.0) * pt.exp(-zr)
    # x < 0: Ai(x) = sqrt(|x|) / 2 (J_{1/3}(zeta) - Y_{1/3}(zeta) / sqrt 3)
    xl = pt.where(left & pt.isfinite(w), -w, 2.1)
    zl = (2.0 / 3.0) * xl * pt.sqrt(xl)
    j, y = _hankel_jy(zl, 1.0 / 3.0)
    lt = 0.5 * pt.sqrt(xl) * (j - y / math.sqrt(3.0))
    out = pt.where(right, rt, pt.where(left, lt, near))
    return pt.where(pt.isinf(w), 0.0, out)


def airy_ai(input) -> Tensor:
    """The Airy function ``Ai(x)`` (``torch.special.airy_ai``): 0 at +-inf (the limits;
    PyTorch gives NaN).  Maclaurin series for -2.1 < x < 1.75, ``K_{1/3}`` above and
    ``J_{1/3}, Y_{1/3}`` below (integral representations).  Like PyTorch, no derivative:
    a backward through it raises."""
    return _apply_unary("airy_ai", input, _airy_ai_values, None)


# --- Hurwitz zeta ----------------------------------------------------------------------------
def _bernoulli_ratios(m: int):
    """``B_2j / (2j)!`` for j = 1..m, from the exact Bernoulli numbers (Akiyama-Tanigawa)."""
    from fractions import Fraction
    a = [Fraction(0)] * (2 * m + 1)
    bern = []
    for n in range(2 * m + 1):
        a[n] = Fraction(1, n + 1)
        for j in range(n, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        bern.append(a[0])  # B_n (with B_1 = +1/2; only even n are used)
    return [float(bern[2 * j] / math.factorial(2 * j)) for j in range(1, m + 1)]


_ZETA_B = []


def _zeta_values(s: Tensor, q: Tensor) -> Tensor:
    """Euler-Maclaurin: the first terms ``sum_k (q + k)^-s`` summed directly until
    ``a = q + n >= 9``, then ``a^(1-s) / (s-1) + a^-s / 2 + sum_j B_2j / (2j)! s (s+1) ...
    (s+2j-2) a^(-s-2j+1)`` with 12 correction terms (remainder below 1e-20 at s near 1)."""
    pt = _pt()
    if not _ZETA_B:
        _ZETA_B.extend(_bernoulli_ratios(12))
    nan = pt.isnan(s) | pt.isnan(q)
    pole = (q <= 0) & (q == pt.floor(q))
    bad = (s < 1) | ((q < 0) & ~pole & (s != pt.floor(s))) | pt.isinf(q) | nan
    ok = ~(pole | bad | (s == 1) | pt.isinf(s))
    ss = pt.where(ok, s, 2.0)
    qq = pt.where(ok, q, 1.0)
    shift = 9.0 + pt.where(qq < 0, pt.ceil(-qq), 0.0)
    count = int(shift.max().item()) if shift.numel() else 0
    total = pt.zeros_like(ss)
    for k in range(count):
        term = pt.pow(qq + float(k), -ss)
        total = total + pt.where(shift > k, term, 0.0)
    a = qq + shift
    a_s = pt.pow(a, -ss)
    total = total + a * a_s / (ss - 1.0) + 0.5 * a_s
    t = ss * a_s / a  # s a^(-s-1)
    inv_a2 = 1.0 / (a * a)
    for j, c in enumerate(_ZETA_B, start=1):
        total = total + c * t
        t = t * (ss + (2 * j - 1)) * (ss + 2 * j) * inv_a2
    # s = inf: the terms (q + k)^-inf are 0, 1 or inf
    inf_s = pt.where(q > 1, 0.0, pt.where(q == 1, 1.0, math.inf))
    out = pt.where(ok, total, pt.where(pt.isinf(s) & (s > 0), inf_s, math.nan))
    out = pt.where(pole & ~(s < 1), math.inf, out)
    out = pt.where(bad & ~pole, math.nan, out)
    out = pt.where(s < 1, math.nan, out)
    return pt.where(s == 1, math.inf, out)


def _zeta_function():
    fn = _FUNCTIONS.get("zeta")
    if fn is not None:
        return fn
    from .autograd.function import Function

    class _Zeta(Function):
        @staticmethod
        def forward(ctx, s, q):
            ctx.save_for_backward(s, q)
            return _zeta_values(s, q)

        @staticmethod
        def backward(ctx, g):
            s, q = ctx.saved_tensors
            if ctx.needs_input_grad[0]:
                raise RuntimeError("special.zeta: the derivative with respect to the first "
                                   "argument (the exponent) is not implemented (nor in "
                                   "PyTorch); detach it")
            # d/dq zeta(s, q) = -s zeta(s + 1, q)
            return None, g * (-s) * zeta(s + 1.0, q)

    _FUNCTIONS["zeta"] = _Zeta
    return _Zeta


def zeta(input, other) -> Tensor:
    """The Hurwitz zeta function ``zeta(x, q) = sum_{k >= 0} (q + k)^-x``
    (``torch.special.zeta``), broadcasting ``input`` (x) against ``other`` (q); either may be
    a Python number.  As PyTorch: ``inf`` at x = 1 and at the poles (q a non-positive
    integer), NaN for x < 1 and for negative non-integer q with non-integer x.

    Differentiable in ``q`` (``-x zeta(x + 1, q)``); the derivative in ``x`` raises, as in
    PyTorch.
    """
    s, q, dt = _gamma_operands("zeta", input, other)
    if s.dtype.is_complex:
        raise TypeError(f"special.zeta: complex tensors are not supported, got {dt.name}")
    return _zeta_function().apply(s, q).to(dt) if dt != s.dtype else \
        _zeta_function().apply(s, q)


# --- orthogonal polynomials ------------------------------------------------------------------
def _poly_operands(op: str, input, n):
    pt = _pt()
    like = input if isinstance(input, Tensor) else n
    if not isinstance(like, Tensor):
        raise TypeError(f"special.{op}: expected a tensor among the arguments, got "
                        f"{type(input).__name__} and {type(n).__name__}")
    for v in (input, n):
        if isinstance(v, complex) or (isinstance(v, Tensor) and v.dtype.is_complex):
            raise TypeError(f"special.{op}: complex arguments are not supported")
    dt = pt.result_type(input, n)
    if not dt.is_floating_point:
        dt = pt.get_default_dtype()
    work = pt.float32 if dt in (pt.float16, pt.bfloat16) else dt
    x = input if isinstance(input, Tensor) else pt.asarray(input, device=like.device)
    nn_ = n if isinstance(n, Tensor) else pt.asarray(n, device=like.device)
    x, nn_ = pt.broadcast_tensors(x.to(work), nn_.detach())
    # n is an integer degree: a floating n is truncated toward zero, as PyTorch
    nn_ = pt.trunc(nn_.to(pt.float64)) if nn_.dtype.is_floating_point else nn_.to(pt.float64)
    return x, nn_.to(work), dt


def _recurrence(x: Tensor, n: Tensor, p0, p1, step, skip=None) -> Tensor:
    """Evaluate ``P_n(x)`` elementwise from ``P_0``, ``P_1`` and ``P_{k+1} = step(k, Pk,
    P_{k-1})``, up to the largest degree present among the entries not in ``skip``."""
    pt = _pt()
    need = (n >= 2) if skip is None else ((n >= 2) & ~skip)
    top = int(pt.where(need, n, 0.0).max().item()) if n.numel() else 0
    out = pt.where(n == 0, p0, p1)
    prev, cur = p0, p1
    for k in range(1, top):
        prev, cur = cur, step(k, cur, prev)
        out = pt.where(n == k + 1, cur, out)
    return pt.where(n < 0, 0.0, out)


def _chebyshev(op: str, kind: str, input, n, shifted: bool) -> Tensor:
    pt = _pt()
    x, nn_, dt = _poly_operands(op, input, n)
    y = 2.0 * x - 1.0 if shifted else x
    one = pt.ones_like(y)
    first = {"t": y, "u": 2.0 * y, "v": 2.0 * y - 1.0, "w": 2.0 * y + 1.0}[kind]
    # inside (-1, 1) and for larger degrees: the trigonometric forms (theta = acos y) are as
    # accurate as the recurrence and cost nothing per degree
    trig = (y.abs() < 1) & (nn_ > 6)
    out = _recurrence(y, nn_, one, first, lambda k, c, p: 2.0 * y * c - p, skip=trig)
    yt = pt.where(trig, y, 0.5)
    th = pt.acos(yt)
    m = pt.where(trig, nn_, 0.0)
    if kind == "t":
        closed = pt.cos(m * th)
    elif kind == "u":
        closed = pt.sin((m + 1.0) * th) / pt.sin(th)
    elif kind == "v":
        closed = pt.cos((m + 0.5) * th) / pt.cos(0.5 * th)
    else:
        closed = pt.sin((m + 0.5) * th) / pt.sin(0.5 * th)
    out = pt.where(trig, closed, out)
    return out.to(dt)


def _simple_poly(op: str, input, n, p1, step) -> Tensor:
    x, nn_, dt = _poly_operands(op, input, n)
    out = _recurrence(x, nn_, _pt().ones_like(x), p1(x), lambda k, c, p: step(k, x, c, p))
    return out.to(dt)


def chebyshev_polynomial_t(input, n) -> Tensor:
    """The Chebyshev polynomial of the first kind ``T_n(x)``
    (``torch.special.chebyshev_polynomial_t``).

    ``n`` is a tensor or a number (a floating ``n`` is truncated; negative ``n`` gives 0);
    ``input`` and ``n`` broadcast and the result has their promoted floating dtype.  The
    three-term recurrence, or ``cos(n acos x)`` inside (-1, 1) for ``n > 6``.
    Differentiable in ``x``.
    """
    return _chebyshev("chebyshev_polynomial_t", "t", input, n, False)


def chebyshev_polynomial_u(input, n) -> Tensor:
    """The Chebyshev polynomial of the second kind ``U_n(x)``
    (``torch.special.chebyshev_polynomial_u``); conventions as
    :func:`chebyshev_polynomial_t`."""
    return _chebyshev("chebyshev_polynomial_u", "u", input, n, False)


def chebyshev_polynomial_v(input, n) -> Tensor:
    """The Chebyshev polynomial of the third kind ``V_n(x)``
    (``torch.special.chebyshev_polynomial_v``)."""
    return _chebyshev("chebyshev_polynomial_v", "v", input, n, False)


def chebyshev_polynomial_w(input, n) -> Tensor:
    """The Chebyshev polynomial of the fourth kind ``W_n(x)``
    (``torch.special.chebyshev_polynomial_w``)."""
    return _chebyshev("chebyshev_polynomial_w", "w", input, n, False)


def shifted_chebyshev_polynomial_t(input, n) -> Tensor:
    """``T_n(2x - 1)``, the Chebyshev polynomial of the first kind on [0, 1]
    (``torch.special.shifted_chebyshev_polynomial_t``)."""
    return _chebyshev("shifted_chebyshev_polynomial_t", "t", input, n, True)


def shifted_chebyshev_polynomial_u(input, n) -> Tensor:
    """``U_n(2x - 1)`` (``torch.special.shifted_chebyshev_polynomial_u``)."""
    return _chebyshev("shifted_chebyshev_polynomial_u", "u", input, n, True)


def shifted_chebyshev_polynomial_v(input, n) -> Tensor:
    """``V_n(2x - 1)`` (``torch.special.shifted_chebyshev_polynomial_v``)."""
    return _chebyshev("shifted_chebyshev_polynomial_v", "v", input, n, True)


def shifted_chebyshev_polynomial_w(input, n) -> Tensor:
    """``W_n(2x - 1)`` (``torch.special.shifted_chebyshev_polynomial_w``)."""
    return _chebyshev("shifted_chebyshev_polynomial_w", "w", input, n, True)


def hermite_polynomial_h(input, n) -> Tensor:
    """The physicists' Hermite polynomial ``H_n(x)`` (``torch.special.hermite_polynomial_h``):
    ``H_{k+1} = 2x H_k - 2k H_{k-1}``; conventions as :func:`chebyshev_polynomial_t`."""
    return _simple_poly("hermite_polynomial_h", input, n, lambda x: 2.0 * x,
                        lambda k, x, c, p: 2.0 * x * c - (2.0 * k) * p)


def hermite_polynomial_he(input, n) -> Tensor:
    """The probabilists' Hermite polynomial ``He_n(x)``
    (``torch.special.hermite_polynomial_he``): ``He_{k+1} = x He_k - k He_{k-1}``."""
    return _simple_poly("hermite_polynomial_he", input, n, lambda x: x,
                        lambda k, x, c, p: x * c - float(k) * p)


def laguerre_polynomial_l(input, n) -> Tensor:
    """The Laguerre polynomial ``L_n(x)`` (``torch.special.laguerre_polynomial_l``):
    ``(k + 1) L_{k+1} = (2k + 1 - x) L_k - k L_{k-1}``."""
    return _simple_poly("laguerre_polynomial_l", input, n, lambda x: 1.0 - x,
                        lambda k, x, c, p: ((2.0 * k + 1.0 - x) * c - k * p) / (k + 1.0))


def legendre_polynomial_p(input, n) -> Tensor:
    """The Legendre polynomial ``P_n(x)`` (``torch.special.legendre_polynomial_p``):
    ``(k + 1) P_{k+1} = (2k + 1) x P_k - k P_{k-1}``."""
    return _simple_poly("legendre_polynomial_p", input, n, lambda x: x,
                        lambda k, x, c, p: ((2.0 * k + 1.0) * x * c - k * p) / (k + 1.0))
