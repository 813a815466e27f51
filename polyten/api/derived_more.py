"""More functions of the ``torch`` namespace composed from public polyten ops (the sequel of
:mod:`polyten.api.derived`, which had grown large): special functions (``erfc``, ``erfinv``,
``i0``), integer ``gcd`` / ``lcm``, ``frexp``, predicates, window functions, the ``*_scatter``
and ``index_copy`` / ``index_reduce`` family, distances, ``mode``, ``gradient``,
``histogram`` and a few linear-algebra conveniences.

Like ``derived``, nothing here has an op-table entry or a derivative rule of its own (``erfinv``
is an :class:`polyten.autograd.Function` whose backward is written in polyten ops): each runs
on every backend and differentiates through its parts.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections import namedtuple

from . import dtypes as _dt
from ._core import Tensor, describe, normalize_dim
from .elementwise import _inplace_generic
from .derived import ldexp as _ldexp
from .indexing import _index_put_

__all__ = ["erfc", "erfinv", "i0", "logaddexp2", "gcd", "lcm", "frexp", "isposinf",
           "isneginf", "isreal", "is_tensor", "numel", "is_nonzero", "is_signed",
           "scalar_tensor", "unravel_index", "column_stack", "row_stack", "view_as_real",
           "view_as_complex", "hann_window", "hamming_window", "blackman_window",
           "bartlett_window", "kaiser_window", "index_copy", "index_reduce",
           "diagonal_scatter", "select_scatter", "slice_scatter", "index_put_", "pdist", "dist",
           "nanquantile", "mode", "trapz", "gradient", "histogram", "cholesky_solve",
           "cholesky_inverse", "pinverse", "chain_matmul", "addr", "adjoint"]

FrexpResult = namedtuple("frexp", ("mantissa", "exponent"))
ModeResult = namedtuple("mode", ("values", "indices"))
HistogramResult = namedtuple("histogram", ("hist", "bin_edges"))

index_put_ = _index_put_  # torch.index_put_(input, indices, values, accumulate=False)


def _pt():
    import polyten
    return polyten


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")
    return x


def _float_input(x: Tensor, op: str) -> Tensor:
    """``x`` as a floating tensor: integers and bools become the default dtype (torch's
    ``promote_float`` rule); complex is refused."""
    _tensor(x, op)
    if x.dtype.is_complex:
        raise TypeError(f"{op}: complex tensors are not supported, got {x.dtype.name}")
    return x if x.dtype.is_floating_point else x.to(_dt.get_default_dtype())


def _work(x: Tensor) -> Tensor:
    """float16 / bfloat16 are computed in float32 and rounded once at the end."""
    return x.to(_dt.float32) if x.dtype in _dt.LOW_PRECISION else x


# --- error function family ----------------------------------------------------------------------
_SQRT_PI = math.sqrt(math.pi)


def _erfc_cf(x: Tensor) -> Tensor:
    """``erfc(x)`` for ``x >= 2`` (float64; ``x >= 1`` for float32) from its continued fraction
    ``exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))``, evaluated from
    the tail (60 levels: relative error 2e-16 at x = 2, 3e-9 at x = 1)."""
    t = x
    for n in range(60, 0, -1):
        t = x + (n * 0.5) / t
    return _pt().exp(-x * x) / (t * _SQRT_PI)


def erfc(input) -> Tensor:
    """The complementary error function ``1 - erf(x)``, as ``torch.erfc``.

    Accurate in the right tail (where ``1 - erf(x)`` would cancel to 0): ``x >= 2`` uses the
    continued fraction of ``erfc``.  Integer inputs give the default floating dtype.

    Parameters
    ----------
    input : Tensor
    """
    pt = _pt()
    x = _float_input(input, "erfc")
    w = _work(x)
    # from here on the continued fraction (60 levels) has converged to the dtype's precision
    tail = w >= (2.0 if w.dtype is _dt.float64 else 1.0)
    # each branch sees only arguments it handles, so the other's gradient is 0, never NaN
    near = 1.0 - pt.erf(pt.where(tail, pt.zeros_like(w), w))
    far = _erfc_cf(pt.where(tail, w, pt.full_like(w, 2.0)))
    return pt.where(tail, far, near).to(x.dtype)


def _erfinv_values(y: Tensor) -> Tensor:
    """erfinv of a float32 / float64 tensor, no autograd: Giles' single-precision polynomial,
    then Newton steps, on ``erf`` in the centre and on ``erfc`` where ``|y| > 1/2`` (there
    ``erf(x) - y`` would lose the digits that ``erfc(|x|) - (1 - |y|)`` keeps)."""
    pt = _pt()
    inside = y.abs() < 1
    ys = pt.where(inside, y, pt.zeros_like(y))
    w = -pt.log((1.0 - ys) * (1.0 + ys))
    central = w < 5.0
    wc = pt.where(central, w, pt.full_like(w, 5.0)) - 2.5
    wt = pt.sqrt(pt.where(central, pt.full_like(w, 5.0), w)) - 3.0
    pc = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
        pc = c + pc * wc
    ptl = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        ptl = c + ptl * wt
    x = pt.where(central, pc, ptl) * ys
    a = ys.abs()
    big = a > 0.5
    q = pt.where(big, 1.0 - a, pt.ones_like(a))  # exact (Sterbenz) where |y| > 1/2
    two_over_sqrt_pi = 2.0 / _SQRT_PI
    for _ in range(4):  # 4: from Giles' float32-range estimate at w = 36 (y = 1 - 2**-53)
        ax = x.abs()
        slope = two_over_sqrt_pi * pt.exp(-x * x)
        step_c = (pt.erf(x) - ys) / slope
        # Newton on log(erfc(|x|)) = log(1 - |y|): near-linear in the far tail, where an
        # estimate from below would creep up on erfc itself in steps of about 1 / (2 x)
        ec = erfc(ax)
        step_t = pt.log(q / ec) * ec / slope * pt.sign(x)  # d erfc / dx = -slope
        x = x - pt.where(big, step_t, step_c)
    x = pt.where(inside, x, pt.full_like(x, math.nan))
    edge = y.abs() == 1
    return pt.where(edge, y * math.inf, x)


def _erfinv_function():
    from ..autograd.function import Function

    class _Erfinv(Function):
        @staticmethod
        def forward(ctx, y):
            ctx.save_for_backward(y)
            return _erfinv_values(y)

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            # d erfinv(y) / dy = sqrt(pi) / 2 * exp(erfinv(y)^2), written with the public
            # erfinv so that a double backward differentiates it again
            return g * (0.5 * _SQRT_PI) * _pt().exp(erfinv(y) ** 2)

    return _Erfinv


_ERFINV = []


def erfinv(input) -> Tensor:
    """The inverse error function, as ``torch.erfinv``: ``erfinv(erf(x)) == x``;
    ``erfinv(+-1) = +-inf`` and NaN for ``|x| > 1``.

    Giles' polynomial approximation refined by Newton steps (on ``erfc`` in the tails, so
    arguments near +-1 keep their digits).  Differentiable, any order:
    ``d erfinv(x) / dx = sqrt(pi) / 2 * exp(erfinv(x)^2)``.  Integer inputs give the default
    floating dtype; float16 / bfloat16 are computed in float32.
    """
    x = _float_input(input, "erfinv")
    if not _ERFINV:
        _ERFINV.append(_erfinv_function())
    w = _work(x)
    out = _ERFINV[0].apply(w)
    return out if w is x else out.to(x.dtype)


# --- modified Bessel functions (Cephes' Chebyshev expansions, as PyTorch) -----------------------
# Cephes Math Library 2.8, Copyright 1984-2000 Stephen L. Moshier (BSD licence): i0.c, i1.c.
_I0_A = (-4.41534164647933937950e-18, 3.33079451882223809783e-17, -2.43127984654795469359e-16,
         1.71539128555513303061e-15, -1.16853328779934516808e-14, 7.67618549860493561688e-14,
         -4.85644678311192946090e-13, 2.95505266312963983461e-12, -1.72682629144155570723e-11,
         9.67580903537323691224e-11, -5.18979560163526290666e-10, 2.65982372468238665035e-9,
         -1.30002500998624804212e-8, 6.04699502254191894932e-8, -2.67079385394061173391e-7,
         1.11738753912010371815e-6, -4.41673835845875056359e-6, 1.64484480707288970893e-5,
         -5.75419501008210370398e-5, 1.88502885095841655729e-4, -5.76375574538582365885e-4,
         1.63947561694133579842e-3, -4.32430999505057594430e-3, 1.05464603945949983183e-2,
         -2.37374148058994688156e-2, 4.93052842396707084878e-2, -9.49010970480476444210e-2,
         1.71620901522208775349e-1, -3.04682672343198398683e-1, 6.76795274409476084995e-1)
_I0_B = (-7.23318048787475395456e-18, -4.83050448594418207126e-18, 4.46562142029675999901e-17,
         3.46122286769746109310e-17, -2.82762398051658348494e-16, -3.42548561967721913462e-16,
         1.77256013305652638360e-15, 3.81168066935262242075e-15, -9.55484669882830764870e-15,
         -4.15056934728722208663e-14, 1.54008621752140982691e-14, 3.85277838274214270114e-13,
         7.18012445138366623367e-13, -1.79417853150680611778e-12, -1.32158118404477131188e-11,
         -3.14991652796324136454e-11, 1.18891471078464383424e-11, 4.94060238822496958910e-10,
         3.39623202570838634515e-9, 2.26666899049817806459e-8, 2.04891858946906374183e-7,
         2.89137052083475648297e-6, 6.88975834691682398426e-5, 3.36911647825569408990e-3,
         8.04490411014108831608e-1)
_I1_A = (2.77791411276104639959e-18, -2.11142121435816608115e-17, 1.55363195773620046921e-16,
         -1.10559694773538630805e-15, 7.60068429473540693410e-15, -5.04218550472791168711e-14,
         3.22379336594557470981e-13, -1.98397439776494371520e-12, 1.17361862988909016308e-11,
         -6.66348972350202774223e-11, 3.62559028155211703701e-10, -1.88724975172282928790e-9,
         9.38153738649577178388e-9, -4.44505912879632808065e-8, 2.00329475355213526229e-7,
         -8.56872026469545474066e-7, 3.47025130813767847674e-6, -1.32731636560394358279e-5,
         4.78156510755005422638e-5, -1.61760815825896745588e-4, 5.12285956168575772895e-4,
         -1.51357245063125314899e-3, 4.15642294431288815669e-3, -1.05640848946261981558e-2,
         2.47264490306265168283e-2, -5.29459812080949914269e-2, 1.02643658689847095384e-1,
         -1.76416518357834055153e-1, 2.52587186443633654823e-1)
_I1_B = (7.51729631084210481353e-18, 4.41434832307170791151e-18, -4.65030536848935832153e-17,
         -3.20952592199342395980e-17, 2.96262899764595013876e-16, 3.30820231092092828324e-16,
         -1.88035477551078244854e-15, -3.81440307243700780478e-15, 1.04202769841288027642e-14,
         4.27244001671195135429e-14, -2.10154184277266431302e-14, -4.08355111109219731823e-13,
         -7.19855177624590851209e-13, 2.03562854414708950722e-12, 1.41258074366137813316e-11,
         3.25260358301548823856e-11, -1.89749581235054123450e-11, -5.58974346219658380687e-10,
         -3.83538038596423702205e-9, -2.63146884688951950684e-8, -2.51223623787020892529e-7,
         -3.88256480887769039346e-6, -1.10588938762623716291e-4, -9.76109749136146840777e-3,
         7.78576235018280120474e-1)


def _chbevl(y: Tensor, coeffs) -> Tensor:
    """Cephes' ``chbevl``: the Chebyshev series ``coeffs`` at ``y`` (Clenshaw's recurrence)."""
    b0 = y * 0.0 + coeffs[0]
    b1 = b2 = y * 0.0
    for c in coeffs[1:]:
        b2 = b1
        b1 = b0
        b0 = y * b1 - b2 + c
    return 0.5 * (b0 - b2)


def _bessel_scaled(op: str, input, order: int):
    """``(x, exp(-|x|) I_order(x))`` with ``x`` the floating (working-dtype) input."""
    pt = _pt()
    x = _float_input(input, op)
    w = _work(x)
    z = w.abs()
    small = z <= 8
    zs = pt.where(small, z, pt.zeros_like(z))
    zl = pt.where(small, pt.full_like(z, 8.0), z)
    a, b = (_I0_A, _I0_B) if order == 0 else (_I1_A, _I1_B)
    near = _chbevl(zs * 0.5 - 2.0, a)
    far = _chbevl(32.0 / zl - 2.0, b) / pt.sqrt(zl)
    if order == 1:
        near = near * zs
    out = pt.where(small, near, far)
    if order == 1:
        out = pt.where(w < 0, -out, out)  # I1 is odd
    return x, w, out


def i0(input) -> Tensor:
    """The modified Bessel function of the first kind of order 0, as ``torch.i0`` (Cephes'
    Chebyshev expansions on [0, 8] and [8, inf), as PyTorch's kernel).  Integer inputs give
    the default floating dtype; differentiable (its derivative is ``i1``)."""
    x, w, s = _bessel_scaled("i0", input, 0)
    return (s * _pt().exp(w.abs())).to(x.dtype)


def _i0e(input) -> Tensor:
    x, _, s = _bessel_scaled("special.i0e", input, 0)
    return s.to(x.dtype)


def _i1(input) -> Tensor:
    x, w, s = _bessel_scaled("special.i1", input, 1)
    return (s * _pt().exp(w.abs())).to(x.dtype)


def _i1e(input) -> Tensor:
    x, _, s = _bessel_scaled("special.i1e", input, 1)
    return s.to(x.dtype)


# --- elementwise ------------------------------------------------------------------------------
def _binary_operands(op: str, input, other):
    pt = _pt()
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        raise TypeError(f"{op}: expected a tensor among the arguments, got {describe(input)} "
                        f"and {describe(other)}")
    dt = pt.result_type(input, other)  # a Python number is a weak operand
    a = input if isinstance(input, Tensor) else pt.full((), input, dtype=dt, device=like.device)
    b = other if isinstance(other, Tensor) else pt.full((), other, dtype=dt, device=like.device)
    return a, b, dt


def logaddexp2(input, other) -> Tensor:
    """``log2(2**x + 2**y)`` without overflow, as ``torch.logaddexp2`` (equal infinities
    give themselves)."""
    pt = _pt()
    a, b, dt = _binary_operands("logaddexp2", input, other)
    if dt.is_complex:
        raise TypeError(f"logaddexp2: complex tensors are not supported, got {dt.name}")
    if not dt.is_floating_point:
        dt = _dt.get_default_dtype()
    a, b = a.to(dt), b.to(dt)
    m = pt.maximum(a, b)
    same_inf = pt.isinf(m) & (a == b)  # inf - inf would be NaN
    d = pt.where(same_inf, pt.zeros_like(m), (a - b).abs())
    return pt.where(same_inf, m, m + pt.log1p(pt.exp2(-d)) * (1.0 / math.log(2.0)))


def _integer_operands(op: str, input, other):
    a, b, dt = _binary_operands(op, input, other)
    if dt.kind not in "iu" or dt is _dt.bool:
        raise TypeError(f"{op}: expected integer tensors, got {a.dtype.name} and "
                        f"{b.dtype.name}; cast them with .long() (or use a floating "
                        f"formula)")
    pt = _pt()
    a, b = pt.broadcast_tensors(a.to(dt), b.to(dt))
    return a, b, dt


def _gcd(a: Tensor, b: Tensor) -> Tensor:
    """Euclid's algorithm, every element at once, until every remainder is 0 (at most ~92
    steps for int64: consecutive Fibonacci numbers are the worst case)."""
    pt = _pt()
    a, b = a.abs(), b.abs()
    zero = pt.zeros_like(b)
    while bool((b != 0).any()):
        nz = b != 0
        r = pt.remainder(a, pt.where(nz, b, pt.ones_like(b)))
        a, b = pt.where(nz, b, a), pt.where(nz, r, zero)
    return a


def gcd(input, other) -> Tensor:
    """The elementwise greatest common divisor of integer tensors, as ``torch.gcd``: never
    negative, ``gcd(0, 0) == 0``."""
    a, b, _ = _integer_operands("gcd", input, other)
    return _gcd(a, b)


def lcm(input, other) -> Tensor:
    """The elementwise least common multiple of integer tensors, as ``torch.lcm``: never
    negative, 0 where either is 0."""
    pt = _pt()
    a, b, _ = _integer_operands("lcm", input, other)
    g = _gcd(a, b)
    zero = g == 0
    return pt.where(zero, pt.zeros_like(g),
                    (pt.floor_divide(a, pt.where(zero, pt.ones_like(g), g)) * b).abs())


def frexp(input):
    """``(mantissa, exponent)`` with ``input == mantissa * 2**exponent`` and
    ``0.5 <= |mantissa| < 1`` (``torch.frexp``; the exponent is int32; 0, inf and NaN keep
    themselves with exponent 0).  The mantissa is differentiable."""
    pt = _pt()
    x = _tensor(input, "frexp")
    if not x.dtype.is_floating_point:
        raise TypeError(f"frexp: expected a floating-point tensor, got {x.dtype.name}; cast it "
                        f"with .float() first")
    w = _work(x)
    special = (w == 0) | ~pt.isfinite(w)
    a = pt.where(special, pt.ones_like(w), w.abs())
    with _no_grad():
        e = pt.floor(pt.log2(a)) + 1
        # log2 may round across a power of two: fix the exponent from the mantissa it gives
        m = a / pt.exp2(pt.floor(e * 0.5)) / pt.exp2(e - pt.floor(e * 0.5))
        e = e + (m >= 1).to(e.dtype) - (m < 0.5).to(e.dtype)
        half = pt.floor(e * 0.5)
    # two halves: 2**e alone over/underflows at the ends of the range (e = 1024, -1074)
    mant = w / pt.exp2(half) / pt.exp2(e - half)
    mant = pt.where(special, w, mant)
    expo = pt.where(special, pt.zeros_like(e), e).to(_dt.int32)
    return FrexpResult(mant.to(x.dtype), expo)


def isposinf(input) -> Tensor:
    """True where the element is +inf (all False for integer and bool tensors)."""
    x = _tensor(input, "isposinf")
    if x.dtype.is_complex:
        raise TypeError("isposinf: complex tensors are not supported; test x.real and x.imag")
    if not x.dtype.is_floating_point:
        return _pt().zeros_like(x, dtype=_dt.bool)
    return x == math.inf


def isneginf(input) -> Tensor:
    """True where the element is -inf (all False for integer and bool tensors)."""
    x = _tensor(input, "isneginf")
    if x.dtype.is_complex:
        raise TypeError("isneginf: complex tensors are not supported; test x.real and x.imag")
    if not x.dtype.is_floating_point:
        return _pt().zeros_like(x, dtype=_dt.bool)
    return x == -math.inf


def isreal(input) -> Tensor:
    """True where the imaginary part is 0 (everywhere for real tensors), as ``torch.isreal``."""
    pt = _pt()
    x = _tensor(input, "isreal")
    if not x.dtype.is_complex:
        return pt.ones_like(x, dtype=_dt.bool)
    return pt.imag(x) == 0


# --- predicates and creation --------------------------------------------------------------------
def is_tensor(obj) -> bool:
    """Whether ``obj`` is a polyten tensor (``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def numel(input) -> int:
    """The number of elements of ``input`` (``torch.numel``)."""
    return _tensor(input, "numel").numel()


def is_nonzero(input) -> bool:
    """The truth of a one-element tensor, as ``torch.is_nonzero`` (which refuses empty and
    larger tensors rather than guess)."""
    x = _tensor(input, "is_nonzero")
    n = x.numel()
    if n != 1:
        raise RuntimeError(f"is_nonzero: Boolean value of Tensor with "
                           f"{'no values' if n == 0 else 'more than one value'} is ambiguous "
                           f"(shape {tuple(x.shape)}); reduce it first, e.g. with .any() or "
                           f".all()")
    return builtins.bool(x.reshape(()).item() != 0)


def is_signed(input) -> bool:
    """Whether the tensor's dtype is signed (every dtype but bool and uint8)."""
    return _tensor(input, "is_signed").dtype not in (_dt.bool, _dt.uint8)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A 0-d tensor holding the number ``s``, of the default floating dtype unless ``dtype`` is
    given (``torch.scalar_tensor``: unlike ``tensor(3)``, an integer gives a float)."""
    if isinstance(s, Tensor) or not isinstance(s, (builtins.bool, builtins.int, builtins.float,
                                                   builtins.complex)):
        raise TypeError(f"scalar_tensor: expected a Python number, got {describe(s)}")
    dt = dtype if dtype is not None else (
        _dt.complex128 if isinstance(s, builtins.complex) and
        _dt.get_default_dtype() is _dt.float64 else
        _dt.complex64 if isinstance(s, builtins.complex) else _dt.get_default_dtype())
    out = _pt().full((), s, dtype=dt, device=device)
    return out.requires_grad_() if requires_grad else out


def unravel_index(indices, shape):
    """The coordinates, one int64 tensor per dim of ``shape``, of the flat (C-order) indices
    ``indices`` (``torch.unravel_index``; negative indices count from the end)."""
    pt = _pt()
    if isinstance(shape, builtins.int):
        shape = (shape,)
    shape = tuple(operator.index(s) for s in shape)
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"unravel_index: the shape must not have negative sizes, got {shape}")
    idx = indices if isinstance(indices, Tensor) else pt.tensor(indices)
    if idx.dtype.kind not in "iu" or idx.dtype is _dt.bool:
        raise TypeError(f"unravel_index: expected integer indices, got {idx.dtype.name}")
    n = math.prod(shape)
    if idx.numel() and bool(((idx < -n) | (idx >= n)).any()):
        raise IndexError(f"unravel_index: an index is out of bounds for shape {shape} (valid: "
                         f"-{n} to {n - 1})")
    idx = pt.where(idx < 0, idx + n, idx).to(_dt.int64)
    out = []
    for s in reversed(shape):
        out.append(pt.remainder(idx, s) if s else idx)
        idx = pt.floor_divide(idx, s) if s else idx
    return tuple(reversed(out))


def column_stack(tensors) -> Tensor:
    """The tensors as columns: 0-d and 1-D ones become ``(n, 1)`` columns, then they are
    joined along dim 1 (``torch.column_stack``)."""
    pt = _pt()
    ts = [_tensor(t, "column_stack") for t in tensors]
    if not ts:
        raise ValueError("column_stack: expected a non-empty sequence of tensors")
    return pt.hstack([t.reshape(-1, 1) if t.ndim <= 1 else t for t in ts])


def row_stack(tensors) -> Tensor:
    """``vstack``: the tensors (1-D ones as rows) joined along dim 0 (``torch.row_stack``)."""
    return _pt().vstack(list(tensors))


def view_as_real(input) -> Tensor:
    """A complex tensor as real pairs: shape ``(..., 2)`` with the real and imaginary parts
    (complex64 -> float32, complex128 -> float64).

    Unlike ``torch.view_as_real`` this is a copy, not a view: the backend contract has no
    reinterpreting view of complex memory, so writes to the result do not reach ``input``.
    """
    pt = _pt()
    x = _tensor(input, "view_as_real")
    if not x.dtype.is_complex:
        raise TypeError(f"view_as_real: expected a complex tensor, got {x.dtype.name}")
    return pt.stack([pt.real(x), pt.imag(x)], dim=-1)


def view_as_complex(input) -> Tensor:
    """Real pairs ``(..., 2)`` (float32 or float64) as a complex tensor ``(...)``.

    Unlike ``torch.view_as_complex`` this is a copy, not a view (see :func:`view_as_real`).
    """
    x = _tensor(input, "view_as_complex")
    if x.dtype not in (_dt.float32, _dt.float64):
        raise TypeError(f"view_as_complex: expected a float32 or float64 tensor, got "
                        f"{x.dtype.name}")
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"view_as_complex: the last dimension must have size 2 (real, imag), "
                         f"got shape {tuple(x.shape)}")
    from .derived import complex as _complex
    return _complex(x[..., 0], x[..., 1])


# --- window functions ---------------------------------------------------------------------------
def _window(op, window_length, periodic, dtype, device, requires_grad, make):
    pt = _pt()
    n = operator.index(window_length)
    if n < 0:
        raise ValueError(f"{op}: window_length must be non-negative, got {n}")
    dt = _dt.get_default_dtype() if dtype is None else dtype
    if not dt.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point dtype, got {dt.name}")
    if n <= 1:
        out = pt.ones(n, dtype=dt, device=device)
    else:
        m = n + 1 if periodic else n  # a periodic window is the symmetric one of n + 1, cut
        k = pt.arange(m, dtype=_dt.float64 if dt is _dt.float64 else _dt.float32,
                      device=device)
        out = make(k, m)[:n].to(dt)
    return out.requires_grad_() if requires_grad else out


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                requires_grad=False) -> Tensor:
    """The Hann window ``0.5 - 0.5 cos(2 pi k / (N - 1))`` (``torch.hann_window``; periodic:
    of length ``N + 1`` without its last point, for spectral analysis)."""
    pt = _pt()
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, m: 0.5 - 0.5 * pt.cos(k * (2 * math.pi / (m - 1))))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None,
                   layout=None, device=None, requires_grad=False) -> Tensor:
    """The Hamming window ``alpha - beta cos(2 pi k / (N - 1))`` (``torch.hamming_window``)."""
    pt = _pt()
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, m: alpha - beta * pt.cos(k * (2 * math.pi / (m - 1))))


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                    requires_grad=False) -> Tensor:
    """The Blackman window ``0.42 - 0.5 cos(2 pi k / (N - 1)) + 0.08 cos(4 pi k / (N - 1))``
    (``torch.blackman_window``)."""
    pt = _pt()

    def make(k, m):
        t = k * (2 * math.pi / (m - 1))
        return 0.42 - 0.5 * pt.cos(t) + 0.08 * pt.cos(2 * t)
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   make)


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                    requires_grad=False) -> Tensor:
    """The triangular Bartlett window ``1 - |2 k / (N - 1) - 1|``
    (``torch.bartlett_window``)."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, m: 1.0 - (k * (2.0 / (m - 1)) - 1.0).abs())


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None,
                  device=None, requires_grad=False) -> Tensor:
    """The Kaiser window ``I0(beta sqrt(1 - ((k - a) / a)^2)) / I0(beta)``, ``a = (N - 1) / 2``
    (``torch.kaiser_window``)."""
    pt = _pt()

    def make(k, m):
        a = (m - 1) / 2.0
        r = ((k - a) / a).clamp(-1.0, 1.0)
        return i0(beta * pt.sqrt(1.0 - r * r)) / i0(pt.full((), float(beta), dtype=k.dtype,
                                                              device=k.device))
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad, make)


# --- indexed writes -----------------------------------------------------------------------------
def _index_along(op, input, dim, index, source):
    """``(d, idx)``: ``index`` (0-d or 1-D) expanded to ``source``'s shape along ``dim``, after
    checking that ``source`` is ``input`` with ``len(index)`` entries along ``dim``."""
    pt = _pt()
    x, s = _tensor(input, op), _tensor(source, op)
    index = _tensor(index, op)
    if index.dtype.kind not in "iu" or index.dtype is _dt.bool:
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype.name}")
    if index.ndim > 1:
        raise ValueError(f"{op}: index must be 0-d or 1-D, got shape {tuple(index.shape)}")
    d = normalize_dim(dim, builtins.max(x.ndim, 1), op)
    n = index.numel()
    xs = tuple(x.shape)
    want = xs[:d] + (n,) + xs[d + 1:] if xs else ((n,) if s.ndim else ())
    if tuple(s.shape) != want:
        raise ValueError(f"{op}: source of shape {tuple(s.shape)} must have the input's shape "
                         f"{xs} except along dimension {d}, where its size must be the number "
                         f"of indices ({n}); expected {want}")
    if s.dtype is not x.dtype:
        raise TypeError(f"{op}: source dtype {s.dtype.name} must match the input's dtype "
                        f"{x.dtype.name}; cast it with source.to({x.dtype!r})")
    idx = index.reshape(-1).to(_dt.int64)
    if not xs:
        return 0, idx.reshape(tuple(s.shape)), x, s
    shp = [1] * len(xs)
    shp[d] = n
    return d, pt.broadcast_to(idx.reshape(tuple(shp)), tuple(s.shape)), x, s


def index_copy(input, dim, index, source) -> Tensor:
    """A copy of ``input`` with the slices of ``source`` along ``dim`` written at ``index``
    (``torch.index_copy``: ``out.select(dim, index[i]) = source.select(dim, i)``)."""
    d, idx, x, s = _index_along("index_copy", input, dim, index, source)
    if not x.ndim:
        return s.reshape(()) if s.numel() else x.clone()
    return _pt().scatter(x, d, idx, s)


def index_reduce(input, dim, index, source, reduce, *, include_self=True) -> Tensor:
    """A copy of ``input`` with the slices of ``source`` along ``dim`` reduced into the slices
    at ``index`` by ``reduce`` ('prod', 'mean', 'amax' or 'amin'), as ``torch.index_reduce``;
    ``include_self=False`` leaves the input's values out where something is reduced in.
    Built on :func:`polyten.scatter_reduce`, so it differentiates as that does."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(f"index_reduce: reduce must be one of 'prod', 'mean', 'amax', 'amin', "
                         f"got {reduce!r}")
    d, idx, x, s = _index_along("index_reduce", input, dim, index, source)
    if not x.ndim:
        idx, x1, s = idx.reshape(-1), x.reshape(1), s.reshape(-1)
        return _pt().scatter_reduce(x1, 0, idx, s, reduce, include_self=include_self)[0]
    return _pt().scatter_reduce(x, d, idx, s, reduce, include_self=include_self)


def _check_src(op, src, want, x):
    _tensor(src, op)
    if tuple(src.shape) != tuple(want):
        raise ValueError(f"{op}: src must have shape {tuple(want)} (that of the slice it "
                         f"replaces), got {tuple(src.shape)}")
    return src if src.dtype is x.dtype else src.to(x.dtype)


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1) -> Tensor:
    """A copy of ``input`` with ``src`` written on the diagonal ``offset`` of the plane
    ``(dim1, dim2)`` (``torch.diagonal_scatter``; ``src`` has that diagonal's shape)."""
    pt = _pt()
    x = _tensor(input, "diagonal_scatter")
    want = pt.diagonal(x, offset, dim1, dim2).shape
    s = _check_src("diagonal_scatter", src, want, x)
    d1 = normalize_dim(dim1, x.ndim, "diagonal_scatter")
    d2 = normalize_dim(dim2, x.ndim, "diagonal_scatter")
    out = x.movedim((d1, d2), (-2, -1)).clone()
    n = want[-1]
    k = pt.arange(n, device=x.device)
    rows, cols = (k, k + offset) if offset >= 0 else (k - offset, k)
    out[..., rows, cols] = s
    return out.movedim((-2, -1), (d1, d2))


def select_scatter(input, src, dim, index) -> Tensor:
    """A copy of ``input`` with ``src`` written at ``index`` along ``dim``
    (``torch.select_scatter``; ``src`` has the shape of ``input.select(dim, index)``)."""
    x = _tensor(input, "select_scatter")
    d = normalize_dim(dim, x.ndim, "select_scatter")
    i = operator.index(index)
    n = x.shape[d]
    if not -n <= i < n:
        raise IndexError(f"select_scatter: index {i} is out of range for dimension {d} of size "
                         f"{n}")
    s = _check_src("select_scatter", src, tuple(x.shape[:d]) + tuple(x.shape[d + 1:]), x)
    out = x.clone()
    out[(slice(None),) * d + (i,)] = s
    return out


def slice_scatter(input, src, dim=0, start=None, end=None, step=1) -> Tensor:
    """A copy of ``input`` with ``src`` written at ``start:end:step`` along ``dim``
    (``torch.slice_scatter``)."""
    x = _tensor(input, "slice_scatter")
    d = normalize_dim(dim, x.ndim, "slice_scatter")
    if operator.index(step) <= 0:
        raise ValueError(f"slice_scatter: step must be positive, got {step}")
    key = (slice(None),) * d + (slice(start, end, step),)
    want = tuple(x.shape[:d]) + (len(range(*slice(start, end, step).indices(x.shape[d]))),) + \
        tuple(x.shape[d + 1:])
    s = _check_src("slice_scatter", src, want, x)
    out = x.clone()
    out[key] = s
    return out


_INDEX_COPY_ = _inplace_generic("index_copy", index_copy)
_INDEX_REDUCE_ = _inplace_generic("index_reduce", index_reduce)


# --- distances and statistics -------------------------------------------------------------------
def pdist(input, p=2.0) -> Tensor:
    """The ``p``-norm distances between every pair of rows ``i < j`` of the ``(N, M)``
    ``input``, in row-major order: ``N (N - 1) / 2`` values (``torch.pdist``)."""
    pt = _pt()
    x = _tensor(input, "pdist")
    if x.ndim != 2:
        raise ValueError(f"pdist: expected a 2-D input (N, M), got shape {tuple(x.shape)}")
    if p < 0:
        raise ValueError(f"pdist: p must be non-negative, got {p}")
    n = x.shape[0]
    if n < 2:
        return pt.zeros(0, dtype=x.dtype, device=x.device)
    r, c = pt.triu_indices(n, n, 1, device=x.device)
    return pt.cdist(x, x, p)[r, c]


def dist(input, other, p=2) -> Tensor:
    """The ``p``-norm of ``input - other`` (broadcast), as ``torch.dist``."""
    pt = _pt()
    a, b = _tensor(input, "dist"), _tensor(other, "dist")
    if not (a.dtype.is_floating_point or a.dtype.is_complex):
        raise TypeError(f"dist: expected floating-point tensors, got {a.dtype.name}")
    return pt.linalg.vector_norm(a - b, ord=p)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear") -> Tensor:
    """:func:`polyten.quantile` ignoring NaN: each slice's quantiles are those of its non-NaN
    values (NaN where a slice has none), as ``torch.nanquantile``."""
    from .derived import _quantile
    return _quantile(input, q, dim, keepdim, interpolation, "nanquantile", True)


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` and the index of its last occurrence, as a named
    tuple ``(values, indices)`` (``torch.mode``: among equally frequent values the smallest).
    """
    pt = _pt()
    x = _tensor(input, "mode")
    d = normalize_dim(dim, builtins.max(x.ndim, 1), "mode")
    src = x if x.ndim else x.reshape(1)
    n = src.shape[d]
    if n == 0:
        raise ValueError(f"mode: the dimension {d} of the input of shape {tuple(x.shape)} is "
                         f"empty; mode needs at least one value")
    with _no_grad():
        srt, order = pt.sort(src.detach().movedim(d, -1), dim=-1, stable=True)
        k = pt.arange(n, device=x.device).expand(tuple(srt.shape))
        first = pt.ones(tuple(srt.shape[:-1]) + (1,), dtype=_dt.bool, device=x.device)
        starts = pt.cat([first, srt[..., 1:] != srt[..., :-1]], dim=-1)
        ends = pt.cat([srt[..., 1:] != srt[..., :-1], first], dim=-1)
        start = pt.cummax(pt.where(starts, k, pt.zeros_like(k)), -1).values
        end = pt.flip(pt.cummin(pt.flip(pt.where(ends, k, pt.full_like(k, n)), (-1,)), -1)
                      .values, (-1,))
        count = end - start + 1
        # the first position of maximal count is the smallest such value (sorted ascending)
        best = pt.argmax(count, dim=-1, keepdim=True)
        last = pt.take_along_dim(end, best, -1)
        indices = pt.take_along_dim(order, last, -1)
    values = pt.take_along_dim(src.movedim(d, -1), indices, -1)  # differentiable gather
    values, indices = values.squeeze(-1), indices.squeeze(-1)
    if keepdim and x.ndim:
        values, indices = values.unsqueeze(d), indices.unsqueeze(d)
    if not x.ndim:
        values, indices = values.reshape(()), indices.reshape(())
    return ModeResult(values, indices)


def trapz(y, x=None, *, dx=None, dim=-1) -> Tensor:
    """:func:`polyten.trapezoid` under its older name (``torch.trapz``)."""
    from .derived import trapezoid
    return trapezoid(y, x, dx=dx, dim=dim)


def _gradient_dims(x, dim):
    if dim is None:
        return list(range(x.ndim))
    dims = [dim] if isinstance(dim, builtins.int) else list(dim)
    out = [normalize_dim(d, x.ndim, "gradient") for d in dims]
    if len(set(out)) != len(out):
        raise ValueError(f"gradient: dim {dim} has a repeated dimension")
    return out


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """The gradient of ``input`` sampled on a grid, one tensor per dim, by central differences
    inside and one-sided ones of order ``edge_order`` (1 or 2) at the ends, as
    ``torch.gradient`` (and NumPy's).

    Parameters
    ----------
    input : Tensor
    spacing : number, sequence of numbers or sequence of 1-D tensors, optional
        The uniform sample spacing (for every dim, or one per dim) or the sample coordinates
        along each dim (then the differences follow the uneven spacing).
    dim : int or sequence of int, optional
        The dims to differentiate along (default: all).
    edge_order : int, optional
        1 or 2.
    """
    pt = _pt()
    x = _tensor(input, "gradient")
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if x.dtype.is_complex:
        raise TypeError("gradient: complex tensors are not supported")
    if not x.dtype.is_floating_point:
        x = x.to(_dt.get_default_dtype())
    dims = _gradient_dims(x, dim)
    if isinstance(spacing, (builtins.int, builtins.float)) or (
            isinstance(spacing, Tensor) and spacing.ndim == 0):
        spacing = [spacing] * len(dims)
    spacing = list(spacing)
    if len(spacing) != len(dims):
        raise ValueError(f"gradient: expected one spacing per differentiated dim "
                         f"({len(dims)}), got {len(spacing)}")
    out = []
    for d, h in zip(dims, spacing):
        n = x.shape[d]
        if n < edge_order + 1:
            raise ValueError(f"gradient: each differentiated dimension needs at least "
                             f"edge_order + 1 = {edge_order + 1} samples; dimension {d} of "
                             f"the input of shape {tuple(x.shape)} has {n}")
        f = x.movedim(d, -1)
        if isinstance(h, Tensor) and h.ndim == 1:
            if h.shape[0] != n:
                raise ValueError(f"gradient: the coordinates for dimension {d} must have "
                                 f"{n} entries, got {h.shape[0]}")
            g = _gradient_coords(f, h.to(x.dtype), edge_order)
        else:
            hv = float(h.item()) if isinstance(h, Tensor) else float(h)
            g = _gradient_uniform(f, hv, edge_order)
        out.append(g.movedim(-1, d))
    return tuple(out)


def _gradient_uniform(f, h, edge_order):
    pt = _pt()
    inner = (f[..., 2:] - f[..., :-2]) * (0.5 / h)
    if edge_order == 1:
        left = (f[..., 1:2] - f[..., :1]) / h
        right = (f[..., -1:] - f[..., -2:-1]) / h
    else:
        left = (-1.5 * f[..., :1] + 2.0 * f[..., 1:2] - 0.5 * f[..., 2:3]) / h
        right = (0.5 * f[..., -3:-2] - 2.0 * f[..., -2:-1] + 1.5 * f[..., -1:]) / h
    return pt.cat([left, inner, right], dim=-1)


def _gradient_coords(f, c, edge_order):
    pt = _pt()
    dx = c[1:] - c[:-1]
    h1, h2 = dx[:-1], dx[1:]  # left and right steps at each interior point
    a = -h2 / (h1 * (h1 + h2))
    b = (h2 - h1) / (h1 * h2)
    cc = h1 / (h2 * (h1 + h2))
    inner = a * f[..., :-2] + b * f[..., 1:-1] + cc * f[..., 2:]
    if edge_order == 1:
        left = (f[..., 1:2] - f[..., :1]) / dx[0]
        right = (f[..., -1:] - f[..., -2:-1]) / dx[-1]
    else:
        d1, d2 = dx[0], dx[1]
        left = (-(2 * d1 + d2) / (d1 * (d1 + d2)) * f[..., :1]
                + (d1 + d2) / (d1 * d2) * f[..., 1:2] - d1 / (d2 * (d1 + d2)) * f[..., 2:3])
        d1, d2 = dx[-2], dx[-1]
        right = (d2 / (d1 * (d1 + d2)) * f[..., -3:-2] - (d2 + d1) / (d1 * d2) * f[..., -2:-1]
                 + (2 * d2 + d1) / (d2 * (d1 + d2)) * f[..., -1:])
    return pt.cat([left, inner, right], dim=-1)


def histogram(input, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    """A histogram of ``input``'s values, as ``torch.histogram``: ``(hist, bin_edges)``.

    Parameters
    ----------
    input : Tensor
        Floating point; flattened.
    bins : int or 1-D Tensor
        The number of equal-width bins over ``range`` (the data's range by default), or the
        increasing bin edges.  Every bin is half-open ``[a, b)`` but the last, ``[a, b]``;
        values outside the edges are not counted.
    range : (float, float), optional
        The bounds for an ``int`` ``bins``.
    weight : Tensor, optional
        A weight per element of ``input`` (same shape), summed instead of counts.
    density : bool, optional
        Normalise so that the histogram integrates to 1 over the edges.
    """
    pt = _pt()
    x = _tensor(input, "histogram")
    if not x.dtype.is_floating_point:
        raise TypeError(f"histogram: expected a floating-point input, got {x.dtype.name}")
    flat = x.reshape(-1)
    if isinstance(bins, Tensor):
        if range is not None:
            raise ValueError("histogram: range can't be given with bin edges (a tensor bins)")
        if bins.ndim != 1 or bins.shape[0] < 1:
            raise ValueError(f"histogram: bin edges must be a non-empty 1-D tensor, got "
                             f"shape {tuple(bins.shape)}")
        edges = bins.to(x.dtype)
        if edges.shape[0] > 1 and bool((edges[1:] < edges[:-1]).any()):
            raise ValueError("histogram: bin edges must be increasing")
    else:
        nb = operator.index(bins)
        if nb <= 0:
            raise ValueError(f"histogram: bins must be positive, got {nb}")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
        elif flat.shape[0]:
            lo, hi = float(flat.amin().item()), float(flat.amax().item())
        else:
            lo, hi = 0.0, 0.0
        if lo > hi:
            raise ValueError(f"histogram: range must have min <= max, got {range}")
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"histogram: range [{lo}, {hi}] is not finite")
        if lo == hi:  # as torch (and NumPy): a unit-width range around the value
            lo, hi = lo - 0.5, hi + 0.5
        edges = pt.linspace(lo, hi, nb + 1, dtype=x.dtype, device=x.device)
    nbins = edges.shape[0] - 1
    if weight is not None:
        w = _tensor(weight, "histogram")
        if tuple(w.shape) != tuple(x.shape):
            raise ValueError(f"histogram: weight must have the input's shape {tuple(x.shape)}, "
                             f"got {tuple(w.shape)}")
        w = w.reshape(-1).to(x.dtype)
    else:
        w = pt.ones_like(flat)
    if nbins == 0:
        hist = pt.zeros(0, dtype=x.dtype, device=x.device)
        return HistogramResult(hist, edges)
    inside = (flat >= edges[0]) & (flat <= edges[-1])
    pos = pt.searchsorted(edges, flat.detach(), right=True) - 1
    pos = pos.clamp(0, nbins - 1)  # the last edge belongs to the last bin
    hist = pt.zeros(nbins, dtype=x.dtype, device=x.device).index_add(
        0, pt.where(inside, pos, pt.zeros_like(pos)), pt.where(inside, w, pt.zeros_like(w)))
    if density:
        hist = hist / (hist.sum() * (edges[1:] - edges[:-1]))
    return HistogramResult(hist, edges)


# --- linear algebra -----------------------------------------------------------------------------
def _check_matrix(op, x, name):
    _tensor(x, op)
    if x.ndim < 2:
        raise ValueError(f"{op}: {name} must be a (batch of) matrix with at least 2 dims, got "
                         f"shape {tuple(x.shape)}")


def cholesky_solve(input, input2, upper=False) -> Tensor:
    """The solution ``X`` of ``A X = B`` for ``B = input`` given the Cholesky factor
    ``input2`` of ``A`` (lower ``L`` with ``A = L L^H``, or upper ``U`` with ``A = U^H U``):
    two triangular solves (``torch.cholesky_solve``; batches broadcast).  Only the factor's
    triangle is read, so its gradient is confined to it (PyTorch's also fills the other
    triangle)."""
    pt = _pt()
    _check_matrix("cholesky_solve", input, "input (B)")
    _check_matrix("cholesky_solve", input2, "input2 (the Cholesky factor)")
    f = input2
    if f.shape[-1] != f.shape[-2] or f.shape[-1] != input.shape[-2]:
        raise ValueError(f"cholesky_solve: the factor must be square (n, n) and B (n, k), got "
                         f"shapes {tuple(f.shape)} and {tuple(input.shape)}")
    lower = adjoint(f) if upper else f
    y = pt.linalg.solve_triangular(lower, input, upper=False)
    return pt.linalg.solve_triangular(adjoint(lower), y, upper=True)


def cholesky_inverse(input, upper=False) -> Tensor:
    """The inverse of ``A`` from its Cholesky factor (``torch.cholesky_inverse``)."""
    pt = _pt()
    _check_matrix("cholesky_inverse", input, "input (the Cholesky factor)")
    n = input.shape[-1]
    eye = pt.eye(n, dtype=input.dtype, device=input.device)
    return cholesky_solve(pt.broadcast_to(eye, tuple(input.shape)), input, upper)


def pinverse(input, rcond=1e-15) -> Tensor:
    """The Moore-Penrose pseudo-inverse; singular values below ``rcond`` times the largest
    count as zero (``torch.pinverse``, :func:`polyten.linalg.pinv` with ``rtol=rcond``)."""
    _check_matrix("pinverse", input, "input")
    return _pt().linalg.pinv(input, rtol=rcond)


def chain_matmul(*matrices) -> Tensor:
    """The product of 2-D matrices, left to right (``torch.chain_matmul``, which PyTorch
    deprecates for :func:`polyten.linalg.multi_dot`)."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise ValueError("chain_matmul: expected at least one matrix")
    for i, m in enumerate(matrices):
        if _tensor(m, "chain_matmul").ndim != 2:
            raise ValueError(f"chain_matmul: matrices[{i}] must be 2-D, got shape "
                             f"{tuple(m.shape)}")
    if len(matrices) == 1:
        return matrices[0].clone()
    return _pt().linalg.multi_dot(list(matrices))


def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)`` (``torch.addr``; ``input`` broadcasts)."""
    from .derived import _scaled
    for v, name in ((vec1, "vec1"), (vec2, "vec2")):
        if _tensor(v, "addr").ndim != 1:
            raise ValueError(f"addr: {name} must be a vector, got shape {tuple(v.shape)}")
    return _scaled(beta, _tensor(input, "addr"), alpha, _pt().outer(vec1, vec2))


def adjoint(input) -> Tensor:
    """The conjugate transpose of the last two dims (``torch.adjoint``)."""
    x = _tensor(input, "adjoint")
    if x.ndim < 2:
        raise ValueError(f"adjoint: expected a tensor with at least 2 dims, got shape "
                         f"{tuple(x.shape)}")
    t = _pt().matrix_transpose(x)
    return t.conj() if x.dtype.is_complex else t


def _no_grad():
    from ..autograd.grad_mode import no_grad
    return no_grad()


TENSOR_METHODS = {
    "erfc": erfc, "erfinv": erfinv, "i0": i0, "logaddexp2": logaddexp2, "gcd": gcd,
    "lcm": lcm, "frexp": frexp, "isposinf": isposinf, "isneginf": isneginf, "isreal": isreal,
    "is_nonzero": is_nonzero, "is_signed": is_signed, "index_copy": index_copy,
    "index_reduce": index_reduce, "diagonal_scatter": diagonal_scatter,
    "select_scatter": select_scatter, "slice_scatter": slice_scatter, "dist": dist,
    "nanquantile": nanquantile, "mode": mode, "histogram": histogram,
    "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse,
    "pinverse": pinverse, "addr": addr, "adjoint": adjoint,
    "index_copy_": _INDEX_COPY_, "index_reduce_": _INDEX_REDUCE_,
}
for _n, _f in (("erfc", erfc), ("erfinv", erfinv), ("i0", i0), ("gcd", gcd), ("lcm", lcm),
               ("addr", addr), ("ldexp", _ldexp)):
    TENSOR_METHODS[f"{_n}_"] = _inplace_generic(_n, _f)
del _n, _f
