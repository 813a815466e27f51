"""Kernel-level defaults: composite ops built from the same backend's other kernels.

A backend must implement the ``core`` tier of the op table (about 40 primitives); every other
op of that tier is a ``composite`` whose default here is a *kernel*: a function on the
backend's native arrays, with the op's kernel signature, that calls the backend's own
kernels (``k.exp``, ``k.where``, ...).  The dispatcher builds it the first time a backend
lacks a kernel for the op (``KernelCache.__missing__``), so the API layer calls it exactly as
it calls a native kernel, autograd (which lives above the API) is unaffected, and a backend
that registers its own kernel under the op's name simply never reaches the default.

Defaults keep the kernel contract: they return native arrays of exactly the result dtype and
shape, and cast only through the backend's ``astype`` kernel.  Transcendental defaults compute
float16/float32 inputs in float64 when the backend stores float64 (one cast in, one out), so
their results match a native kernel within the conformance tolerances.

Composites whose default is written in polyten *ops* (softmax, linear, layer_norm, conv, ...;
``dispatcher.register_default``) are a different mechanism: they need autograd-aware tensor
code and live next to their public functions.  This module imports nothing from
``polyten.api``.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

__all__ = ["KERNEL_DEFAULTS", "DEFAULT_DTYPES", "needs", "Kernels"]

#: op name -> (builder(k) -> kernel, names of the ops the default calls)
KERNEL_DEFAULTS: Dict[str, Tuple[Callable, Tuple[str, ...]]] = {}

_PY_SCALARS = (bool, int, float, complex)
_UNSIGNED_MAX = {"uint8": 255}
_SIGNED = ("int8", "int16", "int32", "int64")


def needs(name: str) -> Tuple[str, ...]:
    """The ops the kernel-level default of ``name`` calls (empty if it has none)."""
    entry = KERNEL_DEFAULTS.get(name)
    return entry[1] if entry else ()


def _default(name: str, *uses: str):
    def deco(builder):
        assert name not in KERNEL_DEFAULTS, name
        # every default may make constants (full) and cast (astype): both core primitives
        KERNEL_DEFAULTS[name] = (builder, tuple(dict.fromkeys(uses + ("full", "astype"))))
        return builder
    return deco


class Kernels:
    """``k.add`` -> the backend's resolved kernel for ``add`` (its own, or a default).

    Resolution is lazy (on first attribute access) and cached per backend by the dispatcher,
    so defaults that call each other resolve in any order.
    """

    def __init__(self, backend, resolve, op: str):
        self._backend = backend
        self._resolve = resolve
        self._op = op

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        kernel = self._resolve(name, self._backend, self._op)
        setattr(self, name, kernel)
        return kernel

    # -- helpers shared by the defaults ---------------------------------------------------
    def dtype(self, x) -> str:
        return self._backend.dtype_name(x)

    def index(self, x):
        b = self._backend
        return b.device_of(x) if b.indexed else None

    def const(self, like, value, dtype=None):
        """A 0-d native array holding ``value`` (of ``like``'s dtype unless ``dtype``)."""
        return self.full((), value, dtype or self.dtype(like), self.index(like))

    def arr(self, like, y):
        """``y`` as a native array: Python scalars become 0-d arrays of ``like``'s dtype."""
        return self.const(like, y) if isinstance(y, _PY_SCALARS) else y

    def pair(self, x, y):
        """Both operands of a binary kernel as arrays (either may be a Python scalar: the
        core calls ``kernel(scalar, array)`` for reflected operators such as ``2 - t``)."""
        if isinstance(x, _PY_SCALARS):
            return self.const(y, x), y
        return x, self.arr(x, y)

    def to(self, x, dtype):
        return x if self.dtype(x) == dtype else self.astype(x, dtype)

    def wide(self, x):
        """(x computed in float64 when narrower and available, the dtype to return)."""
        d = self.dtype(x)
        if d in ("float16", "bfloat16", "float32") and "float64" in self._backend.dtypes:
            return self.astype(x, "float64"), d
        if d == "complex64" and "complex128" in self._backend.dtypes:
            return self.astype(x, "complex128"), d
        return x, d

    def truth(self, x):
        """x != 0 as a bool array (bool arrays unchanged)."""
        return x if self.dtype(x) == "bool" else self.logical_not(
            self.eq(x, self.const(x, 0)))

    def arange_along(self, n, ndim, dim, like):
        """int64 0..n-1 shaped to broadcast along ``dim`` of an ``ndim``-d array."""
        shape = [1] * ndim
        shape[dim] = n
        return self.reshape(self.arange(0, n, 1, "int64", self.index(like)), tuple(shape))


def _is_complex(d: str) -> bool:
    return d.startswith("complex")


def _is_float(d: str) -> bool:
    return d.startswith("float") or d == "bfloat16"


def _count(shape, dims) -> int:
    n = 1
    for i in (range(len(shape)) if dims is None else dims):
        n *= shape[i]
    return n


def _along(ndim, dim, s):
    return (slice(None),) * dim + (s,) + (Ellipsis,)


def _unary_wide(name, uses, formula):
    """A float unary default computed in float64 and cast back."""
    @_default(name, "astype", "full", *uses)
    def build(k):
        def kernel(x):
            w, d = k.wide(x)
            return k.to(formula(k, w, k.dtype(w)), d)
        kernel.__name__ = name
        return kernel
    return build


# --- elementwise unary ------------------------------------------------------------------------
def _sign_of(k, x):
    return k.lt(x, k.const(x, 0))


_unary_wide("cos", ("sin", "add"),
            lambda k, x, d: k.sin(k.add(x, k.const(x, math.pi / 2))))
_unary_wide("tan", ("sin", "div", "cos"), lambda k, x, d: k.div(k.sin(x), k.cos(x)))
_unary_wide("log2", ("log", "div"), lambda k, x, d: k.div(k.log(x), k.const(x, math.log(2.0))))
_unary_wide("log10", ("log", "div"),
            lambda k, x, d: k.div(k.log(x), k.const(x, math.log(10.0))))
_unary_wide("exp2", ("exp", "mul"), lambda k, x, d: k.exp(k.mul(x, k.const(x, math.log(2.0)))))
_unary_wide("rsqrt", ("sqrt", "div"), lambda k, x, d: k.div(k.const(x, 1), k.sqrt(x)))
_unary_wide("reciprocal", ("div",), lambda k, x, d: k.div(k.const(x, 1), x))
_unary_wide("sigmoid", ("exp", "neg", "add", "div"),
            lambda k, x, d: k.div(k.const(x, 1), k.add(k.const(x, 1), k.exp(k.neg(x)))))


def _expm1(k, x, d):
    if _is_complex(d):
        return k.sub(k.exp(x), k.const(x, 1))
    # Kahan: (u - 1) * x / log(u) cancels the rounding error of u = exp(x)
    u = k.exp(x)
    um1 = k.sub(u, k.const(x, 1))
    fixed = k.div(k.mul(um1, x), k.log(u))
    out = k.where(k.eq(u, k.const(x, 1)), x, fixed)
    out = k.where(k.eq(um1, k.const(x, -1)), k.const(x, -1), out)
    return k.where(k.eq(u, k.const(x, math.inf)), u, out)


def _log1p(k, x, d):
    u = k.add(x, k.const(x, 1))
    if _is_complex(d):
        return k.log(u)
    # Goldberg: log(u) * x / (u - 1) corrects the rounding of u = 1 + x
    fixed = k.div(k.mul(k.log(u), x), k.sub(u, k.const(x, 1)))
    out = k.where(k.eq(u, k.const(x, 1)), x, fixed)
    return k.where(k.eq(u, k.const(x, math.inf)), u, out)


_unary_wide("expm1", ("exp", "sub", "mul", "div", "log", "eq", "where"), _expm1)
_unary_wide("log1p", ("log", "add", "sub", "mul", "div", "eq", "where"), _log1p)


def _sinh(k, x, d):
    if _is_complex(d):
        return k.mul(k.sub(k.exp(x), k.exp(k.neg(x))), k.const(x, 0.5))
    return k.mul(k.sub(k.expm1(x), k.expm1(k.neg(x))), k.const(x, 0.5))


def _tanh(k, x, d):
    if _is_complex(d):
        e = k.exp(k.mul(x, k.const(x, 2)))
        return k.div(k.sub(e, k.const(x, 1)), k.add(e, k.const(x, 1)))
    a = k.abs(x)
    e = k.expm1(k.mul(a, k.const(x, -2)))  # in (-1, 0]: no overflow
    t = k.div(k.neg(e), k.add(e, k.const(x, 2)))
    return k.where(_sign_of(k, x), k.neg(t), t)


_unary_wide("sinh", ("expm1", "exp", "sub", "mul", "neg"), _sinh)
_unary_wide("cosh", ("exp", "neg", "add", "mul"),
            lambda k, x, d: k.mul(k.add(k.exp(x), k.exp(k.neg(x))), k.const(x, 0.5)))
_unary_wide("tanh", ("expm1", "abs", "mul", "div", "neg", "add", "where", "lt"), _tanh)


def _asin(k, x, d):
    one = k.const(x, 1)
    if _is_complex(d):  # -i log(iz + sqrt(1 - z^2))
        iz = k.mul(x, k.const(x, 1j))
        r = k.log(k.add(iz, k.sqrt(k.sub(one, k.mul(x, x)))))
        return k.mul(r, k.const(x, -1j))
    return k.atan(k.div(x, k.sqrt(k.mul(k.sub(one, x), k.add(one, x)))))


def _acos(k, x, d):
    one = k.const(x, 1)
    if _is_complex(d):
        return k.sub(k.const(x, math.pi / 2), k.asin(x))
    return k.mul(k.atan(k.sqrt(k.div(k.sub(one, x), k.add(one, x)))), k.const(x, 2))


def _asinh(k, x, d):
    one = k.const(x, 1)
    if _is_complex(d):
        return k.log(k.add(x, k.sqrt(k.add(k.mul(x, x), one))))
    a = k.abs(x)
    small = k.log1p(k.add(a, k.div(k.mul(a, a), k.add(one, k.sqrt(k.add(one, k.mul(a, a)))))))
    big = k.add(k.log(a), k.const(x, math.log(2.0)))
    r = k.where(k.lt(a, k.const(x, 1e8)), small, big)
    return k.where(_sign_of(k, x), k.neg(r), r)


def _acosh(k, x, d):
    one = k.const(x, 1)
    if _is_complex(d):
        return k.log(k.add(x, k.mul(k.sqrt(k.add(x, one)), k.sqrt(k.sub(x, one)))))
    t = k.sub(x, one)
    small = k.log1p(k.add(t, k.sqrt(k.add(k.mul(t, t), k.mul(t, k.const(x, 2))))))
    big = k.add(k.log(x), k.const(x, math.log(2.0)))
    return k.where(k.lt(x, k.const(x, 1e8)), small, big)


def _atanh(k, x, d):
    one = k.const(x, 1)
    if _is_complex(d):
        return k.mul(k.sub(k.log(k.add(one, x)), k.log(k.sub(one, x))), k.const(x, 0.5))
    return k.mul(k.log1p(k.div(k.mul(x, k.const(x, 2)), k.sub(one, x))), k.const(x, 0.5))


_unary_wide("asin", ("atan", "sqrt", "mul", "sub", "add", "div", "log"), _asin)
_unary_wide("acos", ("atan", "sqrt", "div", "sub", "add", "mul", "asin"), _acos)
_unary_wide("asinh", ("log1p", "log", "sqrt", "abs", "mul", "add", "div", "where", "lt", "neg"),
            _asinh)
_unary_wide("acosh", ("log1p", "log", "sqrt", "mul", "add", "sub", "where", "lt"), _acosh)
_unary_wide("atanh", ("log1p", "log", "mul", "div", "sub", "add"), _atanh)


# --- the gamma family: lgamma, digamma, polygamma ----------------------------------------------
# Formulas on the ops `where`, `floor`, `log`, `sin`, `cos`, `pow` and arithmetic, written once
# here for both the kernel-level defaults (``k`` a :class:`Kernels`) and the cpu backend's
# kernels (``k`` a namespace of NumPy ufuncs, ``polyten_cpu.kernels.special``), so that a
# backend without them computes what the cpu backend does.  Every branch is computed for every
# element and selected with ``where`` (a kernel cannot read values on the host); inputs that a
# branch does not own are replaced first, so no branch sees an inf it would turn into NaN.
from fractions import Fraction as _Fr

# Bernoulli numbers B_2 .. B_26, exactly
_BERN = (_Fr(1, 6), _Fr(-1, 30), _Fr(1, 42), _Fr(-1, 30), _Fr(5, 66), _Fr(-691, 2730),
         _Fr(7, 6), _Fr(-3617, 510), _Fr(43867, 798), _Fr(-174611, 330), _Fr(854513, 138),
         _Fr(-236364091, 2730), _Fr(8553103, 6))
# Stirling: lgamma(y) ~ (y - 1/2) log y - y + log(2 pi) / 2 + sum B_2j / (2j (2j - 1) y^(2j-1));
# from y >= 10 on, 7 terms leave < 1e-17 relative (the 8th is 3617 / 122400 / 10**15)
_STIRLING = tuple(float(b / (2 * j * (2 * j - 1))) for j, b in enumerate(_BERN[:7], 1))[::-1]
# digamma: psi(y) ~ log y - 1 / (2y) - sum B_2j / (2j y^2j), 7 terms (Cephes' psi), y >= 10
_PSI_ASYM = tuple(float(b / (2 * j)) for j, b in enumerate(_BERN[:7], 1))[::-1]
# Hurwitz zeta's Euler-Maclaurin tail: (2j)! / B_2j, j = 1..12 (Cephes' zeta table A[])
_ZETA_EM = tuple(float(math.factorial(2 * j) / b) for j, b in enumerate(_BERN[:12], 1))
# lgamma(2 + t) = t P(t) / Q(t) on 0 <= t < 1: Cephes' lgam rational (relative 4e-16 there, so
# lgamma keeps its relative accuracy next to its root at 2, where t is exact)
_LG_P = (-1.37825152569120859100e3, -3.88016315134637840924e4, -3.31612992738871184744e5,
         -1.16237097492762307383e6, -1.72173700820839662146e6, -8.53555664245765465627e5)
_LG_Q = (1.0, -3.51815701436523470549e2, -1.70642106651881159223e4, -2.20528590553854454839e5,
         -1.13933444367982507207e6, -2.53252307177582951285e6, -2.01889141433532773231e6)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_PI = math.log(math.pi)
_GAMMA_USES = ("add", "sub", "mul", "div", "neg", "abs", "log", "log1p", "sin", "cos",
               "floor", "where", "lt", "eq", "logical_or", "logical_and", "logical_not",
               "isnan")


def _polevl(k, z, coeffs):
    """Horner, highest degree first."""
    r = k.const(z, coeffs[0])
    for c in coeffs[1:]:
        r = k.add(k.mul(r, z), k.const(z, c))
    return r


def _frac_near(k, x):
    """x - round(x), in [-1/2, 1/2] and exact (x and the integer are within a factor of 2), so
    that sin / cos of pi times it keep full relative accuracy where pi * x would not."""
    return k.sub(x, k.floor(k.add(x, k.const(x, 0.5))))


def _recip_pow(k, a, s):
    """a ** -s for a Python int s >= 1 by squaring (a few multiplies instead of a pow, which
    costs several times more; overflow to inf gives 0, as pow's underflow)."""
    r, p, e = None, a, s
    while e:
        if e & 1:
            r = p if r is None else k.mul(r, p)
        e >>= 1
        if e:
            p = k.mul(p, p)
    return k.div(k.const(a, 1.0), r)


def _lgamma_pos(k, y, part=None):
    """lgamma(y) for y >= 0 (y = 0: +inf; +inf and NaN propagate).  ``part``: "small" (all
    y < 10) or "big" (none) computes one branch only, for callers that split the elements."""
    ten = k.const(y, 10.0)
    small = k.lt(y, ten) if part is None else None
    if part != "small":
        # y >= 10: Stirling (small elements take y = 10, a harmless stand-in)
        b = y if part == "big" else k.where(small, ten, y)
        lb = k.log(b)
        rb = k.div(k.const(y, 1.0), b)
        big = k.add(k.sub(k.mul(k.sub(b, k.const(y, 0.5)), lb), b), k.const(y, _HALF_LOG_2PI))
        big = k.add(big, k.mul(rb, _polevl(k, k.mul(rb, rb), _STIRLING)))
        big = k.where(k.eq(b, k.const(y, math.inf)), b, big)  # (inf - 1/2) log inf - inf: NaN
        if part == "big":
            return big
    # 0 <= y < 10: y = m + t, t = y - floor(y) exact; lgamma(2 + t) from the rational, then
    # lgamma(y) = lgamma(2 + t) + log((2 + t)(3 + t)...(m - 1 + t)) for m >= 2, minus
    # log1p(t) for m = 1 (relative accuracy next to the root at 1) and log(t) + log1p(t) for
    # m = 0
    s = y if part == "small" else k.where(small, y, k.const(y, 2.5))
    m = k.floor(s)
    t = k.sub(s, m)
    lg2 = k.div(k.mul(t, _polevl(k, t, _LG_P)), _polevl(k, t, _LG_Q))
    one = k.const(y, 1.0)
    prod = one
    for j in range(2, 9):
        prod = k.mul(prod, k.where(k.lt(k.const(y, float(j)), m), k.add(t, k.const(y, float(j))),
                                   one))
    zero = k.const(y, 0.0)
    low = k.add(k.where(k.lt(m, one), k.log(t), zero),
                k.where(k.lt(m, k.const(y, 2.0)), k.log1p(t), zero))
    small_v = k.sub(k.add(lg2, k.log(prod)), low)
    return small_v if part == "small" else k.where(small, small_v, big)


def _lgamma_reflect(k, x, l):
    """lgamma(x) for x < 0 from l = lgamma(1 - x): log(pi / |sin(pi x)|) - l; at the negative
    integers sin(pi r) is exactly 0 and the log gives +inf, as PyTorch; -inf gives +inf."""
    r = _frac_near(k, x)
    sin = k.abs(k.sin(k.mul(r, k.const(x, math.pi))))
    refl = k.sub(k.sub(k.const(x, _LOG_PI), k.log(sin)), l)
    inf = k.const(x, math.inf)
    return k.where(k.eq(x, k.neg(inf)), inf, refl)  # r is NaN there


def _lgamma_formula(k, x):
    """lgamma of a real floating array (float64 for full accuracy)."""
    neg = k.lt(x, k.const(x, 0.0))
    l = _lgamma_pos(k, k.where(neg, k.sub(k.const(x, 1.0), x), x))
    return k.where(neg, _lgamma_reflect(k, k.where(neg, x, k.const(x, -0.5)), l), l)


def _psi_pos(k, y, part=None):
    """digamma(y) for y >= 0 or y = -0.0: +0 gives -inf, -0 gives +inf (from 1 / y), as
    PyTorch's copysign(inf, -x).  ``part`` as for :func:`_lgamma_pos`."""
    ten = k.const(y, 10.0)
    small = k.lt(y, ten) if part is None else None
    one = k.const(y, 1.0)
    if part == "big":
        z = y
    else:
        # psi(y) = psi(y + 10) - sum_{j<10} 1 / (y + j): the asymptotic series needs y >= 10;
        # a fixed shift (not Cephes' while y < 10) keeps it branch-free, and the sum is
        # still within a few ulps of 3 near the root at 1.46
        s = y if part == "small" else k.where(small, y, one)
        acc = k.div(one, s)
        for j in range(1, 10):
            acc = k.add(acc, k.div(one, k.add(s, k.const(y, float(j)))))
        z = k.add(s, ten) if part == "small" else k.where(small, k.add(s, ten), y)
    zz = k.div(one, k.mul(z, z))
    asym = k.sub(k.sub(k.log(z), k.div(k.const(y, 0.5), z)), k.mul(zz, _polevl(k, zz, _PSI_ASYM)))
    if part == "small":
        return k.sub(asym, acc)
    asym = k.where(k.eq(z, k.const(y, math.inf)), z, asym)
    return asym if part == "big" else k.where(small, k.sub(asym, acc), asym)


def _psi_reflect(k, x, psi):
    """digamma(x) for x < 0 from psi = digamma(1 - x): psi - pi cot(pi x); NaN at the
    negative integers and -inf (r = 0 or NaN)."""
    r = _frac_near(k, x)
    pr = k.mul(r, k.const(x, math.pi))
    refl = k.sub(psi, k.div(k.mul(k.cos(pr), k.const(x, math.pi)), k.sin(pr)))
    bad = k.logical_or(k.eq(r, k.const(x, 0.0)), k.isnan(r))
    return k.where(bad, k.const(x, math.nan), refl)


def _digamma_formula(k, x):
    neg = k.lt(x, k.const(x, 0.0))
    psi = _psi_pos(k, k.where(neg, k.sub(k.const(x, 1.0), x), x))
    return k.where(neg, _psi_reflect(k, k.where(neg, x, k.const(x, -0.5)), psi), psi)


def _zeta_pos(k, s, q):
    """Hurwitz zeta(s, q) for an integer s >= 2 and q > 0 (+inf gives 0): Cephes' zeta, ten
    terms of the sum, then Euler-Maclaurin from q + 9 on with all 12 terms.  Cephes stops
    where a term falls below the sum's last bit; past that point the terms stayed below it
    (measured: bit-identical sums for s = 2..200, q = 1e-5..1e6), so no mask is needed."""
    one = k.const(q, 1.0)
    total = _recip_pow(k, q, s)
    a = q
    b = total
    for _ in range(9):
        a = k.add(a, one)
        b = _recip_pow(k, a, s)
        total = k.add(total, b)
    # a^(1-s) / (s-1), not b * a / (s-1): b underflows first for large a (trigamma(1e300))
    lead = k.div(one, a) if s == 2 else _recip_pow(k, a, s - 1)
    total = k.add(total, k.div(lead, k.const(q, float(s - 1))))
    total = k.sub(total, k.mul(b, k.const(q, 0.5)))
    fac, j, bb = 1.0, 0.0, b
    for i in range(12):
        fac *= s + j
        bb = k.div(bb, a)
        total = k.add(total, k.mul(bb, k.const(q, fac / _ZETA_EM[i])))
        j += 1.0
        fac *= s + j
        bb = k.div(bb, a)
        j += 1.0
    return total


def _polygamma_scale(n):
    """(-1)^(n+1) n!, inf past float64's range (as PyTorch's exp(lgamma(n + 1)))."""
    try:
        f = float(math.factorial(n))
    except OverflowError:
        f = math.inf
    return f if n % 2 else -f


def _zeta_neg(k, s, x):
    """zeta(s, x) for x < 0 not an integer, without reflection's cot derivatives: with
    r = x - floor(x), u = 1 - r (both exact) and x = r - m, zeta(s, x) = zeta(s, r) +
    (-1)^s (zeta(s, u) - zeta(s, 1 - x)) -- the value PyTorch's direct sum over x, x + 1, ...
    gives, in O(1) instead of O(|x|) terms."""
    one = k.const(x, 1.0)
    fl = k.floor(x)
    zr = _zeta_pos(k, s, k.sub(x, fl))
    zu = _zeta_pos(k, s, k.sub(k.add(fl, one), x))
    zv = _zeta_pos(k, s, k.sub(one, x))
    # (zeta(s, r) -+ zeta(s, u)) first: for odd s at half-integers r = u and that pair cancels
    # exactly, leaving the small zeta(s, 1 - x) unrounded
    if s % 2 == 0:
        return k.sub(k.add(zr, zu), zv)
    return k.add(k.sub(zr, zu), zv)


def _polygamma_formula(k, x, n):
    """polygamma(n, x) = (-1)^(n+1) n! zeta(n+1, x) for n >= 1.  Poles (0 and the negative
    integers): (-1)^(n+1) inf, as PyTorch's n >= 2 (its trigamma rounds sin(pi x) there and
    answers a large finite number); -inf: NaN; +inf: 0 (PyTorch: NaN for n >= 2, from Cephes'
    0 * inf)."""
    s = n + 1
    zero = k.const(x, 0.0)
    pos = k.lt(zero, x)
    zp = _zeta_pos(k, s, k.where(pos, x, k.const(x, 1.0)))
    pole = k.logical_and(k.logical_not(pos), k.eq(k.floor(x), x))
    other = k.logical_or(k.logical_or(pos, pole), k.isnan(x))
    zn = _zeta_neg(k, s, k.where(other, k.const(x, -0.5), x))
    z = k.where(pos, zp, k.where(pole, k.const(x, math.inf), zn))
    out = k.mul(z, k.const(x, _polygamma_scale(n)))
    bad = k.logical_or(k.isnan(x), k.eq(x, k.const(x, -math.inf)))
    return k.where(bad, k.const(x, math.nan), out)


_unary_wide("lgamma", _GAMMA_USES, lambda k, x, d: _lgamma_formula(k, x))
_unary_wide("digamma", _GAMMA_USES, lambda k, x, d: _digamma_formula(k, x))


@_default("polygamma", "digamma", *_GAMMA_USES)
def _polygamma(k):
    def polygamma(x, n):
        if n == 0:
            return k.digamma(x)
        w, d = k.wide(x)
        return k.to(_polygamma_formula(k, w, n), d)
    return polygamma


@_default("dropout_mask", "random_uniform", "ge", "mul")
def _dropout_mask(k):
    def kernel(shape, p, dtype, device_index):
        # uniforms on float32's grid for the half types: on float16's (2**-11 steps) or
        # bfloat16's (2**-8), with p rounded alike, bfloat16 dropped 0.39 % for p = 0.001
        u = k.random_uniform(shape, 0.0, 1.0, _acc(dtype), device_index)
        keep = k.astype(k.ge(u, p), dtype)  # P(u >= p) = 1 - p for u ~ U[0, 1)
        return k.mul(keep, 1.0 / (1.0 - p))
    return kernel


@_default("positive", "astype")
def _positive(k):
    return lambda x: k.copy(x)


@_default("copy", "full", "setitem")
def _copy(k):
    def copy(x):
        # a fresh (C-contiguous) array written through setitem: astype or concat may keep
        # the source's memory layout, and the core relies on copy() to make a layout
        out = k.full(tuple(x.shape), 0, k.dtype(x), k.index(x))
        k.setitem(out, (Ellipsis,), x)
        return out
    return copy


@_default("square", "mul")
def _square(k):
    return lambda x: k.mul(x, x)


def _int_like(d):
    return d == "bool" or d.startswith("int") or d.startswith("uint")


@_default("ceil", "floor", "neg")
def _ceil(k):
    return lambda x: k.copy(x) if _int_like(k.dtype(x)) else k.neg(k.floor(k.neg(x)))


@_default("trunc", "floor", "ceil", "where", "lt")
def _trunc(k):
    def trunc(x):
        if _int_like(k.dtype(x)):
            return k.copy(x)
        return k.where(_sign_of(k, x), k.ceil(x), k.floor(x))
    return trunc


@_default("round", "floor", "sub", "add", "mul", "div", "where", "lt", "eq")
def _round(k):
    def half_even(y):
        r = k.floor(y)
        frac = k.sub(y, r)
        half = k.const(y, 0.5)
        odd = k.sub(r, k.mul(k.floor(k.mul(r, half)), k.const(y, 2)))  # r mod 2
        up = k.where(k.eq(frac, half), odd, k.to(k.lt(half, frac), k.dtype(y)))
        out = k.add(r, up)
        return k.where(k.eq(y, r), y, out)  # keeps inf, -0.0 and integral values

    def round_(x, decimals):
        d = k.dtype(x)
        if _int_like(d):
            if decimals >= 0:
                return k.copy(x)
            s = 10 ** (-decimals)
            w = k.astype(x, "float64")
            return k.astype(k.mul(half_even(k.div(w, k.const(w, s))), k.const(w, s)), d)
        w, d = k.wide(x)
        if decimals == 0:
            return k.to(half_even(w), d)
        if decimals > 0:
            s = k.const(w, 10.0 ** decimals)
            return k.to(k.div(half_even(k.mul(w, s)), s), d)
        s = k.const(w, 10.0 ** (-decimals))
        return k.to(k.mul(half_even(k.div(w, s)), s), d)
    return round_


@_default("sign", "lt", "where")
def _sign(k):
    def sign(x):
        zero, one = k.const(x, 0), k.const(x, 1)
        out = k.where(k.lt(zero, x), one, x)
        if k.dtype(x).startswith("uint"):
            return out
        return k.where(k.lt(x, zero), k.const(x, -1), out)
    return sign


@_default("isnan", "eq", "logical_not")
def _isnan(k):
    return lambda x: k.logical_not(k.eq(x, x))


@_default("isinf", "abs", "eq", "isnan")
def _isinf(k):
    def isinf(x):
        d = k.dtype(x)
        if not (_is_float(d) or _is_complex(d)):
            return k.isnan(x)  # all False, of x's shape
        a = k.abs(x)
        return k.eq(a, k.const(a, math.inf))
    return isinf


@_default("isfinite", "isnan", "isinf", "logical_or", "logical_not")
def _isfinite(k):
    return lambda x: k.logical_not(k.logical_or(k.isnan(x), k.isinf(x)))


@_default("logical_not", "eq")
def _logical_not(k):
    return lambda x: k.eq(x, k.const(x, 0))


@_default("signbit", "lt", "eq", "div", "logical_and", "logical_or")
def _signbit(k):
    def signbit(x):
        zero = k.const(x, 0)
        neg = k.lt(x, zero)
        if not _is_float(k.dtype(x)):
            return neg
        # -0.0: only its reciprocal tells (-inf)
        negzero = k.logical_and(k.eq(x, zero), k.lt(k.div(k.const(x, 1), x), zero))
        return k.logical_or(neg, negzero)
    return signbit


@_default("nan_to_num", "where", "isnan", "eq")
def _nan_to_num(k):
    def fix(x, nan, posinf, neginf):
        out = k.where(k.isnan(x), k.const(x, nan), x)
        out = k.where(k.eq(x, k.const(x, math.inf)), k.const(x, posinf), out)
        return k.where(k.eq(x, k.const(x, -math.inf)), k.const(x, neginf), out)

    def nan_to_num(x, nan, posinf, neginf):
        d = k.dtype(x)
        if not _is_complex(d):
            return fix(x, nan, posinf, neginf)
        re, im = fix(k.real(x), nan, posinf, neginf), fix(k.imag(x), nan, posinf, neginf)
        return k.add(k.astype(re, d), k.mul(k.astype(im, d), k.const(x, 1j)))
    return nan_to_num


# --- elementwise binary ---------------------------------------------------------------------
@_default("ne", "eq", "logical_not")
def _ne(k):
    return lambda x, y: k.logical_not(k.eq(x, y))


@_default("le", "lt", "eq", "logical_or")
def _le(k):
    return lambda x, y: k.logical_or(k.lt(x, y), k.eq(x, y))


@_default("gt", "lt")
def _gt(k):
    return lambda x, y: k.lt(*reversed(k.pair(x, y)))


@_default("ge", "le")
def _ge(k):
    return lambda x, y: k.le(*reversed(k.pair(x, y)))


def _truths(k, x, y):
    x, y = k.pair(x, y)
    return k.truth(x), k.truth(y)


@_default("logical_and", "eq", "mul", "logical_not")
def _logical_and(k):
    return lambda x, y: k.mul(*_truths(k, x, y))


@_default("logical_or", "eq", "add", "logical_not")
def _logical_or(k):
    return lambda x, y: k.add(*_truths(k, x, y))  # bool + bool is or


@_default("logical_xor", "eq", "ne", "logical_not")
def _logical_xor(k):
    return lambda x, y: k.ne(*_truths(k, x, y))


@_default("maximum", "where", "lt", "isnan", "logical_or")
def _maximum(k):
    def maximum(x, y):
        x, y = k.pair(x, y)
        return k.where(k.logical_or(k.lt(x, y), k.isnan(y)), y, x)
    return maximum


@_default("minimum", "where", "lt", "isnan", "logical_or")
def _minimum(k):
    def minimum(x, y):
        x, y = k.pair(x, y)
        return k.where(k.logical_or(k.lt(y, x), k.isnan(y)), y, x)
    return minimum


@_default("clamp", "maximum", "minimum")
def _clamp(k):
    def clamp(x, lo, hi):
        out = x if lo is None else k.maximum(x, lo)
        return out if hi is None else k.minimum(out, hi)
    return clamp


@_default("remainder", "floor_divide", "mul", "sub")
def _remainder(k):
    return lambda x, y: k.sub(x, k.mul(k.floor_divide(x, y), y))


@_default("fmod", "remainder", "signbit", "ne", "logical_and", "sub", "where")
def _fmod(k):
    def fmod(x, y):
        x, y = k.pair(x, y)
        r = k.remainder(x, y)
        flip = k.logical_and(k.ne(r, k.const(r, 0)), k.ne(k.signbit(x), k.signbit(y)))
        return k.where(flip, k.sub(r, y), r)
    return fmod


@_default("copysign", "signbit", "abs", "neg", "where")
def _copysign(k):
    def copysign(x, y):
        x, y = k.pair(x, y)
        a = k.abs(x)
        return k.where(k.signbit(y), k.neg(a), a)
    return copysign


@_default("atan2", "atan", "div", "signbit", "eq", "isinf", "where", "add", "copysign",
          "logical_and")
def _atan2(k):
    def atan2(x, y):
        x, y = k.pair(x, y)
        w, d = k.wide(x)
        v = k.to(y, k.dtype(w))
        pi = k.const(w, math.pi)
        base = k.atan(k.div(w, v))
        # the left half-plane: shift by pi towards x's sign
        left = k.add(base, k.copysign(pi, w))
        out = k.where(k.signbit(v), left, base)
        zero = k.const(w, 0)
        both0 = k.logical_and(k.eq(w, zero), k.eq(v, zero))
        out = k.where(both0, k.where(k.signbit(v), k.copysign(pi, w), w), out)
        both_inf = k.logical_and(k.isinf(w), k.isinf(v))
        corner = k.where(k.signbit(v), k.const(w, 3 * math.pi / 4), k.const(w, math.pi / 4))
        out = k.where(both_inf, k.copysign(corner, w), out)
        return k.to(out, d)
    return atan2


@_default("hypot", "abs", "maximum", "minimum", "div", "mul", "add", "sqrt", "where", "eq",
          "logical_or")
def _hypot(k):
    def hypot(x, y):
        x, y = k.pair(x, y)
        w, d = k.wide(x)
        a, b = k.abs(w), k.abs(k.to(y, k.dtype(w)))
        m, n = k.maximum(a, b), k.minimum(a, b)
        zero, one, inf = k.const(w, 0), k.const(w, 1), k.const(w, math.inf)
        safe = k.where(k.eq(m, zero), one, m)
        q = k.div(n, safe)
        r = k.mul(m, k.sqrt(k.add(one, k.mul(q, q))))
        r = k.where(k.logical_or(k.eq(a, inf), k.eq(b, inf)), inf, r)
        return k.to(r, d)
    return hypot


@_default("logaddexp", "maximum", "sub", "abs", "neg", "exp", "log1p", "add", "eq", "where")
def _logaddexp(k):
    def logaddexp(x, y):
        x, y = k.pair(x, y)
        w, d = k.wide(x)
        v = k.to(y, k.dtype(w))
        m = k.maximum(w, v)
        r = k.add(m, k.log1p(k.exp(k.neg(k.abs(k.sub(w, v))))))
        r = k.where(k.eq(w, v), k.add(w, k.const(w, math.log(2.0))), r)
        return k.to(r, d)
    return logaddexp


# bool masks are combined with & | ^ ~ all over polyten (autograd rules, pooling): on bool
# these are the logical ops, so a backend without the bitwise tier still runs them; integer
# inputs need the backend's own kernels
#: op name -> the only dtypes its kernel-level default handles (all accepted ones otherwise)
DEFAULT_DTYPES: Dict[str, Tuple[str, ...]] = {}


def _bool_only(name, logical):
    DEFAULT_DTYPES[name] = ("bool",)

    @_default(name, logical)
    def build(k):
        def refuse(x):
            from .errors import KernelNotFoundError
            raise KernelNotFoundError(
                f"{name}: backend {k._backend.name!r} has no kernel for this op on "
                f"{k.dtype(x)} (bitwise tier; polyten's default covers bool only). Cast to "
                f"bool, move the tensors to a backend that has it, e.g. .to('cpu'), or add "
                f"the kernel to the backend (see docs/backends.md).")

        if name == "bitwise_not":
            def unary(x):
                return k.logical_not(x) if k.dtype(x) == "bool" else refuse(x)
            return unary

        def binary(x, y):
            x, y = k.pair(x, y)
            return getattr(k, logical)(x, y) if k.dtype(x) == "bool" else refuse(x)
        return binary


for _name, _logical in (("bitwise_and", "logical_and"), ("bitwise_or", "logical_or"),
                        ("bitwise_xor", "logical_xor"), ("bitwise_not", "logical_not")):
    _bool_only(_name, _logical)


# --- reductions -------------------------------------------------------------------------------
def _acc(d):
    return "float32" if d in ("float16", "bfloat16") else d


@_default("mean", "sum", "div")
def _mean(k):
    def mean(x, dims, keepdim):
        d = k.dtype(x)
        s = k.sum(x, dims, keepdim, _acc(d))
        return k.to(k.div(s, k.const(s, _count(x.shape, dims))), d)
    return mean


def _mirror(k, x):
    """A strictly decreasing map of x's dtype onto itself (no overflow, NaN kept)."""
    d = k.dtype(x)
    if d == "bool":
        return k.logical_not(x)
    if d in _SIGNED:
        return k.sub(k.const(x, -1), x)  # ~x
    if d in _UNSIGNED_MAX:
        return k.sub(k.const(x, _UNSIGNED_MAX[d]), x)
    return k.neg(x)


@_default("amin", "amax", "sub", "neg", "logical_not")
def _amin(k):
    return lambda x, dims, keepdim: _mirror(k, k.amax(_mirror(k, x), dims, keepdim))


@_default("argmax", "amax", "eq", "isnan", "where", "amin", "arange", "reshape",
          "logical_and", "logical_or")
def _argmax(k):
    def argmax(x, dim, keepdim):
        nd = len(x.shape)
        if nd == 0:
            return k.full((), 0, "int64", k.index(x))
        xx, dd = x, dim
        if dim is None:
            xx, dd = k.reshape(x, (_count(x.shape, None),)), 0
        n = xx.shape[dd]
        m = k.amax(xx, (dd,), True)
        hit = k.eq(xx, m)
        if _is_float(k.dtype(x)):
            hit = k.logical_or(hit, k.logical_and(k.isnan(xx), k.isnan(m)))
        idx = k.arange_along(n, len(xx.shape), dd, x)
        first = k.amin(k.where(hit, idx, k.const(idx, n)), (dd,), keepdim)
        if dim is None and keepdim:
            return k.reshape(first, (1,) * nd)
        return first
    return argmax


@_default("segment_argmax", "sort", "searchsorted", "arange", "getitem", "gather", "concat",
          "maximum", "minimum", "sub")
def _segment_argmax(k):
    def segment_argmax(x, starts):
        n, d = x.shape
        m = starts.shape[0]
        dev = k.index(x)
        if m == 0 or n == 0:
            return k.full((m, d), 0, "int64", dev)
        rows = k.arange(0, n, 1, "int64", dev)
        # the segment of each row: the last start at or before it (earlier rows: segment 0)
        seg = k.maximum(k.sub(k.searchsorted(starts, rows, True), k.const(rows, 1)),
                        k.const(rows, 0))
        # rows ordered by segment, then value descending (NaN first), then row: each
        # segment's first entry is its first maximum
        by_value = k.sort(x, 0, True, True)[1]
        by_seg = k.sort(k.getitem(seg, (by_value,)), 0, False, True)[1]
        order = k.gather(by_value, 0, by_seg)
        begin = k.concat([k.full((1,), 0, "int64", dev), k.getitem(starts, (slice(1, None),))],
                         0)
        first = k.minimum(k.maximum(begin, k.const(begin, 0)), k.const(begin, n - 1))
        return k.getitem(order, (first,))
    return segment_argmax


@_default("argmin", "argmax", "sub", "neg", "logical_not")
def _argmin(k):
    return lambda x, dim, keepdim: k.argmax(_mirror(k, x), dim, keepdim)


@_default("any", "sum", "lt", "eq", "logical_not")
def _any(k):
    def any_(x, dims, keepdim):
        s = k.sum(k.truth(x), dims, keepdim, "int64")
        return k.lt(k.const(s, 0), s)
    return any_


@_default("index_check", "lt", "ge", "ne", "logical_or", "logical_and", "any")
def _index_check(k):
    def index_check(x, low, high, ignore, acc):
        bad = k.logical_or(k.lt(x, low), k.ge(x, high))
        if ignore is not None:
            bad = k.logical_and(bad, k.ne(x, ignore))
        flag = k.any(bad, None, False)
        return flag if acc is None else k.logical_or(acc, flag)
    return index_check


@_default("all", "any", "logical_not", "eq")
def _all(k):
    return lambda x, dims, keepdim: k.logical_not(k.any(k.logical_not(k.truth(x)), dims,
                                                        keepdim))


@_default("var", "sum", "sub", "mul", "div", "astype")  # + real, imag for complex inputs
def _var(k):
    def var(x, dims, correction, keepdim):
        d = k.dtype(x)
        out = {"complex64": "float32", "complex128": "float64"}.get(d, d)
        w = k.to(x, _acc(d))
        n = _count(x.shape, dims)
        if n > 0:
            s = k.sum(w, dims, True, k.dtype(w))
            w = k.sub(w, k.div(s, k.const(s, n)))
        if _is_complex(d):
            re, im = k.real(w), k.imag(w)
            sq = k.add(k.mul(re, re), k.mul(im, im))
        else:
            sq = k.mul(w, w)
        s = k.sum(sq, dims, keepdim, k.dtype(sq))
        denom = n - correction
        return k.to(k.div(s, k.const(s, denom if denom > 0 else 0)), out)
    return var


@_default("vector_norm", "abs", "amax", "amin", "sum", "ne", "mul", "sqrt", "pow", "astype")
def _vector_norm(k):
    def vector_norm(x, ord, dims, keepdim):
        a = k.abs(x)
        d = k.dtype(a)
        a = k.to(a, _acc(d))
        if ord == math.inf:
            r = k.amax(a, dims, keepdim)
        elif ord == -math.inf:
            r = k.amin(a, dims, keepdim)
        elif ord == 0:
            r = k.sum(k.ne(a, k.const(a, 0)), dims, keepdim, k.dtype(a))
        elif ord == 1:
            r = k.sum(a, dims, keepdim, k.dtype(a))
        elif ord == 2:
            r = k.sqrt(k.sum(k.mul(a, a), dims, keepdim, k.dtype(a)))
        else:
            s = k.sum(k.pow(a, k.const(a, float(ord))), dims, keepdim, k.dtype(a))
            r = k.pow(s, k.const(s, 1.0 / ord))
        return k.to(r, d)
    return vector_norm


@_default("cumprod", "mul", "concat", "getitem", "full", "astype")
def _cumprod(k):
    def cumprod(x, dim, dtype):
        out = k.to(x, dtype)
        if not x.shape:
            return k.copy(out)
        n = x.shape[dim]
        nd = len(x.shape)
        step = 1
        while step < n:  # Hillis-Steele scan: log2(n) vectorised multiplies
            ones_shape = list(x.shape)
            ones_shape[dim] = step
            ones = k.full(tuple(ones_shape), 1, dtype, k.index(x))
            head = k.getitem(out, _along(nd, dim, slice(0, n - step)))
            out = k.mul(out, k.concat([ones, head], dim))
            step *= 2
        return out if step > 1 else k.copy(out)
    return cumprod


# --- linear algebra ---------------------------------------------------------------------------
@_default("einsum", "diagonal", "permute", "reshape", "mul", "sum", "copy")
def _einsum(k):
    def einsum(equation, xs):
        lhs, out = equation.split("->")
        terms = lhs.split(",")
        sizes = {}
        prepared = []
        for term, x in zip(terms, xs):
            labels = list(term)
            # repeated labels in one operand: take the diagonal (it becomes the last dim)
            while len(set(labels)) != len(labels):
                c = next(c for c in labels if labels.count(c) > 1)
                i = labels.index(c)
                j = labels.index(c, i + 1)
                x = k.diagonal(x, 0, i, j)
                labels = [c2 for p, c2 in enumerate(labels) if p not in (i, j)] + [c]
            for c, s in zip(labels, x.shape):
                if s != 1 or c not in sizes:
                    sizes[c] = s
            prepared.append((labels, x))
        order = list(out) + sorted(set(sizes) - set(out))
        acc = None
        for labels, x in prepared:
            x = k.permute(x, tuple(sorted(range(len(labels)), key=lambda p: order.index(
                labels[p]))))
            have = sorted(labels, key=order.index)
            x = k.reshape(x, tuple(x.shape[have.index(c)] if c in have else 1 for c in order))
            acc = x if acc is None else k.mul(acc, x)
        # expand size-1 labels that every operand lacks (broadcast the result's dims)
        full = tuple(sizes[c] for c in order)
        if tuple(acc.shape) != full:
            acc = k.mul(acc, k.full(full, 1, k.dtype(acc), k.index(acc)))
        summed = tuple(range(len(out), len(order)))
        if summed:
            d = k.dtype(acc)
            # small integers accumulate in int64 (wrapping back gives the same modular result)
            wide = "int64" if d in ("bool", "uint8", "int8", "int16", "int32") else d
            return k.to(k.sum(acc, summed, False, wide), d)
        return k.copy(acc) if len(prepared) == 1 else acc  # never a view of an operand
    return einsum


# --- shape ------------------------------------------------------------------------------------
@_default("flip", "getitem")
def _flip(k):
    def flip(x, dims):
        key = tuple(slice(None, None, -1) if i in dims else slice(None)
                    for i in range(len(x.shape)))
        return k.getitem(x, key + (Ellipsis,))
    return flip


@_default("roll", "getitem", "concat", "reshape", "copy")
def _roll(k):
    def roll(x, shifts, dims):
        if dims is None:
            flat = k.reshape(x, (_count(x.shape, None),))
            return k.reshape(roll(flat, shifts[:1] if len(shifts) == 1 else
                                  (sum(shifts),), (0,)), tuple(x.shape))
        out = x
        nd = len(x.shape)
        for s, d in zip(shifts, dims):
            n = out.shape[d]
            if n == 0 or s % n == 0:
                continue
            s %= n
            out = k.concat([k.getitem(out, _along(nd, d, slice(n - s, n))),
                            k.getitem(out, _along(nd, d, slice(0, n - s)))], d)
        return k.copy(out) if out is x else out
    return roll


@_default("tile", "reshape", "expand")
def _tile(k):
    def tile(x, reps):
        shape = (1,) * (len(reps) - len(x.shape)) + tuple(x.shape)
        inter = tuple(v for s in shape for v in (1, s))
        big = tuple(v for r, s in zip(reps, shape) for v in (r, s))
        out = k.expand(k.reshape(x, inter), big)
        return k.reshape(k.copy(out), tuple(r * s for r, s in zip(reps, shape)))
    return tile


def _tri(lower):
    def build(k):
        def tri(x, diag):
            m, n = x.shape[-2], x.shape[-1]
            rows = k.reshape(k.arange(0, m, 1, "int64", k.index(x)), (m, 1))
            cols = k.reshape(k.arange(0, n, 1, "int64", k.index(x)), (1, n))
            off = k.sub(cols, rows)
            keep = k.le(off, k.const(off, diag)) if lower else k.ge(off, k.const(off, diag))
            return k.where(keep, x, k.const(x, 0))
        return tri
    return build


_default("tril", "arange", "reshape", "sub", "le", "where")(_tri(True))
_default("triu", "arange", "reshape", "sub", "ge", "where")(_tri(False))


# --- indexing ---------------------------------------------------------------------------------
def _grid(k, index, dim):
    """Advanced-indexing key selecting ``index`` along ``dim`` and every position elsewhere."""
    nd = len(index.shape)
    return tuple(index if i == dim else k.arange_along(index.shape[i], nd, i, index)
                 for i in range(nd))


@_default("gather", "getitem", "arange", "reshape", "copy")
def _gather(k):
    def gather(x, dim, index):
        if not x.shape:
            return k.copy(x)
        return k.getitem(x, _grid(k, index, dim))
    return gather


@_default("scatter", "setitem", "getitem", "arange", "reshape", "copy")
def _scatter(k):
    def scatter(x, dim, index, src):
        out = k.copy(x)
        if not x.shape:
            k.setitem(out, (Ellipsis,), src)
            return out
        if not isinstance(src, _PY_SCALARS):
            src = k.getitem(src, tuple(slice(0, s) for s in index.shape) + (Ellipsis,))
        k.setitem(out, _grid(k, index, dim), src)
        return out
    return scatter


def _flat_targets(k, shape, dim, index):
    """The flat (C-order) position in an array of ``shape`` that each entry of ``index``
    writes to along ``dim``: int64 of ``index``'s shape."""
    nd = len(shape)
    pos, stride = None, 1
    for d in range(nd - 1, -1, -1):
        coord = index if d == dim else k.arange_along(index.shape[d], nd, d, index)
        term = coord if stride == 1 else k.mul(coord, k.const(coord, stride))
        pos = term if pos is None else k.add(pos, term)
        stride *= shape[d]
    return pos


def _segment_reduce(k, combine, keys, vals):
    """(the distinct ``keys``, each one's ``combine``-reduction of its ``vals``) for 1-D
    ``keys`` (int64) and ``vals``: a stable sort by key, then a segmented inclusive scan
    (Hillis-Steele: step s combines each value with the one s places before when both have
    the same key) in log2(longest run) steps, read off at each run's last entry.  The order
    of the combinations depends on the data only, so results repeat bit for bit."""
    n = keys.shape[0]
    dev = k.index(keys)
    sk, order = k.sort(keys, 0, False, True)
    sv = k.getitem(vals, (order,))
    first = k.concat([k.full((1,), True, "bool", dev),
                      k.logical_not(k.eq(k.getitem(sk, (slice(1, None),)),
                                         k.getitem(sk, (slice(0, n - 1),))))], 0)
    starts = k.nonzero(first)  # its size is a host read already: so is the longest run
    starts = k.reshape(starts, (starts.shape[0],))
    ends = k.concat([k.getitem(starts, (slice(1, None),)), k.full((1,), n, "int64", dev)], 0)
    longest = int(k.to_host(k.amax(k.sub(ends, starts), (0,), False)))
    s = 1
    while s < longest:
        tail, head = (slice(s, None),), (slice(0, n - s),)
        same = k.eq(k.getitem(sk, tail), k.getitem(sk, head))
        later = k.getitem(sv, tail)
        later = k.where(same, combine(later, k.getitem(sv, head)), later)
        sv = k.concat([k.getitem(sv, (slice(0, s),)), later], 0)
        s *= 2
    last = k.sub(ends, k.const(ends, 1))
    return k.getitem(sk, (last,)), k.getitem(sv, (last,))


@_default("scatter_reduce", "scatter_add", "scatter", "copy", "reshape", "getitem", "setitem",
          "arange", "mul", "add", "sub", "sort", "concat", "eq", "logical_not", "where",
          "maximum", "minimum", "amax", "nonzero", "to_host", "div", "floor_divide")
def _scatter_reduce(k):
    def scatter_reduce(x, dim, index, src, reduce, include_self):
        shape = x.shape
        if not shape:
            one = (1,)
            r = scatter_reduce(k.reshape(x, one), 0, k.reshape(index, one),
                               k.reshape(src, one), reduce, include_self)
            return k.reshape(r, ())
        d = k.dtype(x)
        acc = _acc(d)  # float16 / bfloat16 accumulate in float32, rounded once at the end
        total, n = _count(shape, None), _count(index.shape, None)
        if n == 0:
            return k.copy(x)
        out = k.to(k.copy(k.reshape(x, (total,))), acc)
        dev = k.index(x)
        pos = k.reshape(_flat_targets(k, shape, dim, index), (n,))
        src = k.getitem(src, tuple(slice(0, s) for s in index.shape) + (Ellipsis,))
        vals = k.to(k.reshape(src, (n,)), acc)
        if reduce in ("sum", "mean"):
            if not include_self:
                out = k.scatter(out, 0, pos, 0)
            out = k.scatter_add(out, 0, pos, vals)
            if reduce == "mean":
                count = k.full((total,), int(include_self), "int64", dev)
                count = k.scatter_add(count, 0, pos, k.full((n,), 1, "int64", dev))
                count = k.maximum(count, k.const(count, 1))
                if _is_float(acc):
                    out = k.div(out, k.astype(count, acc))
                else:  # PyTorch: floor division for integers
                    out = k.astype(k.floor_divide(k.to(out, "int64"), count), acc)
        else:
            combine = {"prod": k.mul, "amax": k.maximum, "amin": k.minimum}[reduce]
            where, reduced = _segment_reduce(k, combine, pos, vals)
            if include_self:
                reduced = combine(k.getitem(out, (where,)), reduced)
            k.setitem(out, (where,), reduced)
        return k.reshape(k.to(out, d), shape)
    return scatter_reduce


@_default("topk", "sort", "getitem")
def _topk(k):
    def topk(x, k_, dim, largest, sorted):
        values, indices = k.sort(x, dim, largest, True)
        if not x.shape:
            return values, indices
        key = _along(len(x.shape), dim, slice(0, k_))
        return k.getitem(values, key), k.getitem(indices, key)
    return topk


@_default("unique", "sort", "reshape", "getitem", "ne", "concat", "cumsum", "setitem",
          "nonzero", "sub", "full", "astype")
def _unique(k):
    def unique(x, return_inverse, return_counts):
        n = _count(x.shape, None)
        flat = k.reshape(x, (n,))
        v, perm = k.sort(flat, 0, False, True)
        dev = k.index(x)
        if n == 0:
            empty = k.full((0,), 0, "int64", dev)
            return v, (empty if return_inverse else None), (empty if return_counts else None)
        first = k.full((1,), True, "bool", dev)
        new = k.concat([first, k.ne(k.getitem(v, (slice(1, None),)),
                                    k.getitem(v, (slice(0, -1),)))], 0)
        values = k.getitem(v, (new,))
        inverse = counts = None
        if return_inverse:
            group = k.sub(k.cumsum(new, 0, "int64"), k.const(perm, 1))
            inverse = k.full((n,), 0, "int64", dev)
            k.setitem(inverse, (perm,), group)
        if return_counts:
            starts = k.reshape(k.nonzero(new), (values.shape[0],))
            ends = k.concat([k.getitem(starts, (slice(1, None),)),
                             k.full((1,), n, "int64", dev)], 0)
            counts = k.sub(ends, starts)
        return values, inverse, counts
    return unique


@_default("searchsorted", "reshape", "lt", "le", "sum", "isnan", "where", "logical_not")
def _searchsorted(k):
    def searchsorted(x, y, right):
        n = x.shape[-1]
        xe = x if len(x.shape) == 1 else k.reshape(x, tuple(x.shape[:-1]) + (1, n))
        ye = k.reshape(y, tuple(y.shape) + (1,))
        before = k.le(xe, ye) if right else k.lt(xe, ye)
        last = len(before.shape) - 1
        out = k.sum(before, (last,), False, "int64")
        if _is_float(k.dtype(x)):
            # NaN sorts last: a NaN y goes after every number (and every NaN when right)
            if right:
                at_nan = k.const(out, n)
            else:
                numbers = k.sum(k.logical_not(k.isnan(xe)), (len(xe.shape) - 1,),
                                len(x.shape) > 1, "int64")  # () or (..., 1, 1)
                at_nan = numbers if len(x.shape) == 1 else k.reshape(
                    numbers, tuple(x.shape[:-1]) + (1,))
            out = k.where(k.isnan(y), at_nan, out)
        return out
    return searchsorted


# --- creation ---------------------------------------------------------------------------------
@_default("empty", "full")
def _empty(k):
    return lambda shape, dtype, device_index: k.full(shape, 0, dtype, device_index)


@_default("linspace", "arange", "mul", "add", "setitem", "astype", "full")
def _linspace(k):
    def linspace(start, stop, num, dtype, device_index):
        wd = "complex128" if _is_complex(dtype) else "float64"
        idx = k.astype(k.arange(0, num, 1, "int64", device_index), wd)
        step = (stop - start) / (num - 1) if num > 1 else 0.0
        out = k.add(k.mul(idx, k.const(idx, step)), k.const(idx, start))
        if num > 1:
            k.setitem(out, (slice(num - 1, num),), k.const(out, stop))
        return k.to(out, dtype)
    return linspace


@_default("eye", "arange", "reshape", "sub", "eq", "astype")
def _eye(k):
    def eye(n, m, kk, dtype, device_index):
        rows = k.reshape(k.arange(0, n, 1, "int64", device_index), (n, 1))
        cols = k.reshape(k.arange(0, m, 1, "int64", device_index), (1, m))
        off = k.sub(cols, rows)
        return k.astype(k.eq(off, k.const(off, kk)), dtype)
    return eye


# --- transfer ---------------------------------------------------------------------------------
@_default("from_dlpack", "from_host")
def _from_dlpack(k):
    def from_dlpack(obj, device_index):
        import numpy  # host round trip: a backend with device memory registers its own
        return k.from_host(numpy.from_dlpack(obj), device_index)
    return from_dlpack
