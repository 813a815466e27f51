"""The op database: one :class:`~polyten_conformance.opinfo.OpInfo` per public op.

``OPDB`` maps the public name to its OpInfo, in the order areas are listed here: elementwise
(unary, binary, where / clamp / nan_to_num / isclose), reductions, linear algebra, shape,
indexing, creation, casting.  Random numbers, transfers and type promotion have no NumPy
reference of the same form; their tests live in ``tests/test_random.py``,
``tests/test_transfer.py`` and ``tests/test_promotion.py``.

References are plain NumPy computed in float64 / complex128 / int64; where NumPy has no
function of the same semantics (``erf``, ``roll`` over several dims, ``chunk``, ...) the
reference is written out here from the definition.
"""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from polyten.dispatch.optable import OPS

from . import promotion as P
from .harness import Arr, DType, ErrorSample, Sample, code_args
from .opinfo import REAL_OF, OpInfo
from .samples import binary, make, np_axis, reduction, scalar, special, unary

__all__ = ["OPDB", "AREAS", "ops_in", "get"]

OPDB: Dict[str, OpInfo] = {}
AREAS = ("elementwise", "reduction", "linalg", "shape", "indexing", "creation", "transfer",
         "nn", "fft")
ALIASES: Dict[str, tuple] = {}


def axis_kw(args, kwargs):
    """Array API spelling of a call: the dim (2nd positional or ``dim=``) becomes ``axis=``."""
    kwargs = dict(kwargs)
    if "dim" in kwargs:
        kwargs["axis"] = kwargs.pop("dim")
    elif len(args) > 1:
        kwargs["axis"] = args[1]
        args = args[:1] + args[2:]
    return args, kwargs


def add(info: OpInfo, aliases=()) -> OpInfo:
    assert info.name not in OPDB, info.name
    OPDB[info.name] = info
    if aliases:
        ALIASES[info.name] = tuple(aliases)
    return info


def get(name: str) -> OpInfo:
    return OPDB[name]


def ops_in(area: str) -> List[OpInfo]:
    return [o for o in OPDB.values() if o.area == area]


def _ex(desc, *args, exc, match, **kwargs):
    return ErrorSample(*args, exc=exc, match=match, desc=desc, **kwargs)


def _f32(rng, shape, domain="any"):
    return Arr(make(rng, shape, "float32", domain))


def _i64(values):
    return Arr(np.asarray(values, dtype=np.int64), role="index")


def _mask(values):
    return Arr(np.asarray(values, dtype=bool), role="mask")


# ============================================================================ elementwise ===
def _erf_ref(x):
    if x.dtype.kind == "c":
        # Maclaurin series of erf, fine for the |z| <= 4 of the samples in complex128
        z = x.astype(np.complex128)
        term = z.copy()
        total = z.copy()
        for n in range(1, 120):
            term = term * (-z * z) / n
            total = total + term / (2 * n + 1)
        return total * (2 / math.sqrt(math.pi))
    flat = [math.erf(float(v)) if not math.isnan(v) else math.nan for v in x.reshape(-1)]
    return np.asarray(flat, dtype=np.float64).reshape(x.shape)


def _sigmoid_ref(x):
    return 1.0 / (1.0 + np.exp(-x))


def _unary_error(name):
    def errors(rng):
        return [_ex("a list instead of a tensor", [1.0, 2.0], exc=TypeError, match=[name])]
    return errors


_UNARY = [
    # name, domain, special values, reference
    ("neg", "any", True, np.negative),
    ("positive", "any", False, np.positive),
    ("abs", "any", True, np.abs),
    ("sign", "any", False, np.sign),
    ("floor", "any", True, np.floor),
    ("ceil", "any", True, np.ceil),
    ("trunc", "any", True, np.trunc),
    ("exp", "small", True, np.exp),
    ("expm1", "small", False, np.expm1),
    ("log", "pos", True, np.log),
    ("log1p", "pos", False, np.log1p),
    ("log2", "pos", False, np.log2),
    ("log10", "pos", False, np.log10),
    ("sqrt", "nonneg", True, np.sqrt),
    ("rsqrt", "pos", False, lambda x: 1.0 / np.sqrt(x)),
    ("sin", "any", False, np.sin),
    ("cos", "any", False, np.cos),
    ("tan", "unit", False, np.tan),
    ("asin", "unit", False, np.arcsin),
    ("acos", "unit", False, np.arccos),
    ("atan", "any", False, np.arctan),
    ("sinh", "small", False, np.sinh),
    ("cosh", "small", False, np.cosh),
    ("tanh", "any", False, np.tanh),
    ("asinh", "any", False, np.arcsinh),
    ("acosh", "ge1", False, np.arccosh),
    ("atanh", "unit", False, np.arctanh),
    ("sigmoid", "any", False, _sigmoid_ref),
    ("exp2", "small", False, np.exp2),
    ("erf", "any", False, _erf_ref),
    ("square", "any", False, np.square),
    ("reciprocal", "nonzero", False, lambda x: 1.0 / x),
    ("signbit", "any", True, np.signbit),
    ("isnan", "any", True, np.isnan),
    ("isinf", "any", True, np.isinf),
    ("isfinite", "any", True, np.isfinite),
    ("logical_not", "any", False, np.logical_not),
    ("bitwise_not", "any", False, np.invert),
    ("conj", "any", False, np.conj),
    ("real", "any", False, np.real),
    ("imag", "any", False, np.imag),
]
_UNARY_ALIASES = {"neg": ("negative",), "abs": ("absolute",), "asin": ("arcsin",),
                  "acos": ("arccos",), "atan": ("arctan",), "asinh": ("arcsinh",),
                  "acosh": ("arccosh",), "atanh": ("arctanh",), "bitwise_not": ("bitwise_invert",)}
_UNARY_METHODS = {"neg", "abs", "exp", "log", "sqrt", "sin", "cos", "sigmoid", "tanh",
                  "floor", "ceil", "round", "sign", "reciprocal", "square", "logical_not",
                  "bitwise_not", "isnan"}

for _name, _dom, _special, _ref in _UNARY:
    add(OpInfo(_name, "elementwise", ref=_ref,
               samples=(lambda d, s: lambda dtype, rng: unary(dtype, rng, d, s))(_dom, _special),
               errors=_unary_error(_name),
               method=_name if _name in _UNARY_METHODS else None),
        aliases=_UNARY_ALIASES.get(_name, ()))


# -- the gamma family: float64 references through math.lgamma / a plain digamma series (no
# SciPy); samples on the positive domain (the poles are the unit tests' business)
def _vec(f):
    def ref(x):
        flat = [f(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]
        return np.asarray(flat, dtype=np.float64).reshape(np.shape(x))
    return ref


def _psi1(v, n=0):
    """digamma (n = 0) or polygamma(n, v) for v > 0 in float64: recurrence to v >= 20, then
    the asymptotic series."""
    if math.isnan(v):
        return math.nan
    acc = 0.0
    while v < 20.0:
        acc += 1.0 / v if n == 0 else math.factorial(n) / v ** (n + 1)
        v += 1.0
    if n == 0:
        z = 1.0 / (v * v)
        series = z * (1 / 12 - z * (1 / 120 - z * (1 / 252 - z * (1 / 240 - z / 132))))
        return math.log(v) - 0.5 / v - series - acc
    # (-1)^(n+1) psi_n(v) ~ (n-1)!/v^n + n!/(2 v^(n+1)) + sum B_2k (2k+n-1)!/((2k)! v^(2k+n))
    bern = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)
    s = math.factorial(n - 1) / v ** n + math.factorial(n) / (2 * v ** (n + 1))
    for k, b in enumerate(bern, 1):
        s += b * math.factorial(2 * k + n - 1) / (math.factorial(2 * k) * v ** (2 * k + n))
    return (s + acc) if n % 2 else -(s + acc)


def _gamma_samples(dtype, rng):
    return unary(dtype, rng, "pos")


add(OpInfo("lgamma", "elementwise", ref=_vec(math.lgamma), samples=_gamma_samples,
           errors=_unary_error("lgamma"), method="lgamma"))
add(OpInfo("digamma", "elementwise", ref=_vec(_psi1), samples=_gamma_samples,
           errors=_unary_error("digamma"), method="digamma"))


def _polygamma_samples(dtype, rng):
    return [Sample(n, s.args[0], desc=f"n={n}, {s.desc}") for n in (1, 2, 3)
            for s in _gamma_samples(dtype, rng)]


def _polygamma_ref(n, x):
    return _vec(lambda v: _psi1(v, n))(x)


def _polygamma_errors(rng):
    return [_ex("n negative", -1, _f32(rng, (3,), "pos"), exc=ValueError,
                match=["polygamma", "-1"]),
            _ex("a list instead of a tensor", 1, [1.0, 2.0], exc=TypeError,
                match=["polygamma"])]


add(OpInfo("polygamma", "elementwise", ref=_polygamma_ref, samples=_polygamma_samples,
           errors=_polygamma_errors))


def _round_samples(dtype, rng):
    out = unary(dtype, rng, "any", special_values=True)
    if dtype in ("float32", "float64"):
        x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.25, 2.675, -3.14159]).astype(dtype)
        out.append(Sample(Arr(x), desc="halves go to even"))
        out.append(Sample(Arr(make(rng, (2, 3), dtype)), decimals=1, desc="decimals=1"))
        out.append(Sample(Arr(make(rng, (4,), dtype) * 40), decimals=-1, desc="decimals=-1"))
    elif dtype == "float16":
        x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.25]).astype(dtype)
        out.append(Sample(Arr(x), desc="halves go to even"))
    return out


def _round_ref(x, decimals=0):
    if x.dtype.kind in "biu":
        return x
    return np.round(x, decimals)


# the halves sit on round's jumps: no derivative there
add(OpInfo("round", "elementwise", ref=_round_ref, samples=_round_samples,
           errors=_unary_error("round"), method="round", grad_skip=("halves go to even",)))

add(OpInfo("relu", "elementwise", ref=lambda x: np.maximum(x, 0).astype(x.dtype),
           samples=lambda dtype, rng: unary(dtype, rng, "any"), errors=_unary_error("relu")))


def _nan_to_num_samples(dtype, rng):
    out = unary(dtype, rng, "any")
    if P.kind(dtype) in "fc":
        s = special(dtype)
        out += [Sample(Arr(s), desc="defaults"),
                Sample(Arr(s), nan=1.0, desc="nan=1.0"),
                Sample(Arr(s), nan=-1.0, posinf=5.0, neginf=-5.0, desc="all replacements"),
                Sample(Arr(s.reshape(7, 1)), posinf=2.0, desc="posinf only")]
    return out


def _nan_to_num_ref(x, nan=0.0, posinf=None, neginf=None, _dtype=None):
    if x.dtype.kind not in "fc":
        return x
    name = REAL_OF.get(_dtype, _dtype)
    if name == "bfloat16":  # NumPy >= 2.5's finfo refuses ml_dtypes' types
        import ml_dtypes
        fi = ml_dtypes.finfo(name)
    else:
        fi = np.finfo(np.dtype(name))
    posinf = float(fi.max) if posinf is None else posinf
    neginf = float(fi.min) if neginf is None else neginf
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


add(OpInfo("nan_to_num", "elementwise", dtypes="any", rejects=(), ref=_nan_to_num_ref,
           ref_dtype=True, samples=_nan_to_num_samples, errors=_unary_error("nan_to_num"),
           method="nan_to_num"))


# -- binary ---------------------------------------------------------------------------------
def _ok_dtype(name):
    """A dtype the op accepts, for error inputs that are about something else."""
    acc = OPS[name].accepted if name in OPS else P.DTYPE_NAMES
    for d in ("float32", "int32", "int64", "bool", "complex64"):
        if d in acc:
            return d
    return sorted(acc)[0]


def _binary_errors(name, extra=()):
    def errors(rng):
        d = _ok_dtype(name)
        out = [_ex("shapes that do not broadcast", Arr(make(rng, (2, 3), d)),
                   Arr(make(rng, (4,), d)), exc=ValueError, match=[name, "(2, 3)", "(4,)"]),
               _ex("two Python numbers", 1.0, 2.0, exc=TypeError, match=[name])]
        for e in extra:
            out.append(e(rng))
        return out
    return errors


def _alpha_samples(dtype, rng, dx="any", dy="any"):
    out = binary(dtype, rng, dx, dy)
    if dtype != "bool":
        a = 2 if P.kind(dtype) in "ui" else (2.5 if P.kind(dtype) == "f" else 0.5 - 1j)
        out.append(Sample(Arr(make(rng, (2, 3), dtype, dx)), Arr(make(rng, (3,), dtype, dy)),
                          alpha=a, desc="alpha"))
    return out


def _alpha_ref(f):
    def ref(x, y, alpha=1):
        return f(x, np.multiply(y, alpha) if alpha != 1 else y)
    return ref


_BIN = [
    # name, dtypes (None: op table), x domain, y domain, special, ref, aliases
    ("mul", None, "any", "any", False, np.multiply, ("multiply",)),
    ("div", None, "any", "nonzero", False, np.true_divide, ("divide", "true_divide")),
    ("floor_divide", None, "grid", "gridnz", False, np.floor_divide, ()),
    ("remainder", None, "grid", "gridnz", False, np.remainder, ("mod",)),
    ("fmod", None, "grid", "gridnz", False, np.fmod, ()),
    ("maximum", None, "any", "any", True, np.maximum, ()),
    ("minimum", None, "any", "any", True, np.minimum, ()),
    ("atan2", None, "any", "any", False, np.arctan2, ("arctan2",)),
    ("hypot", None, "any", "any", False, np.hypot, ()),
    ("logaddexp", None, "any", "any", False, np.logaddexp, ()),
    ("copysign", None, "any", "any", True, np.copysign, ()),
    ("eq", None, "small", "small", True, np.equal, ("equal",)),
    ("ne", None, "small", "small", True, np.not_equal, ("not_equal",)),
    ("lt", None, "small", "small", True, np.less, ("less",)),
    ("le", None, "small", "small", True, np.less_equal, ("less_equal",)),
    ("gt", None, "small", "small", True, np.greater, ("greater",)),
    ("ge", None, "small", "small", True, np.greater_equal, ("greater_equal",)),
    ("logical_and", None, "small", "small", False, np.logical_and, ()),
    ("logical_or", None, "small", "small", False, np.logical_or, ()),
    ("logical_xor", None, "small", "small", False, np.logical_xor, ()),
    ("bitwise_and", None, "any", "any", False, np.bitwise_and, ()),
    ("bitwise_or", None, "any", "any", False, np.bitwise_or, ()),
    ("bitwise_xor", None, "any", "any", False, np.bitwise_xor, ()),
    ("bitwise_left_shift", None, "small", "shift", False, np.left_shift, ()),
    ("bitwise_right_shift", None, "small", "shift", False, np.right_shift, ()),
]
_BIN_METHODS = {"mul", "div", "maximum", "minimum", "eq", "lt", "floor_divide", "remainder",
                "bitwise_and", "logical_and", "fmod", "atan2"}

# the value samples of these sit on a 1/4 grid, where x / y is often an integer: a jump of
# floor_divide / remainder / fmod.  Their gradients are checked on continuous values instead.
_GRID_GRAD = {"floor_divide", "remainder", "fmod"}


def _continuous_binary(dtype, rng):
    return binary(dtype, rng, "any", "nonzero")


for _name, _dt, _dx, _dy, _sp, _ref, _al in _BIN:
    add(OpInfo(_name, "elementwise", dtypes=_dt, ref=_ref, scalar_operands=True,
               samples=(lambda dx, dy, sp: lambda dtype, rng: binary(
                   dtype, rng, dx, dy, special_values=sp))(_dx, _dy, _sp),
               errors=_binary_errors(_name), method=_name if _name in _BIN_METHODS else None,
               grad_samples=_continuous_binary if _name in _GRID_GRAD else None),
        aliases=_al)

def _nextafter_ref(x, y, _dtype=None):
    # in the test dtype itself: the next float32 after 1.0 is not the next float64
    dt = np.dtype(_dtype)
    x, y = np.asarray(x).astype(dt), np.asarray(y).astype(dt)
    # y where x == y (C's nextafter, the Array API: -0 towards +0 is +0); NumPy's float16
    # loop returns x there
    return np.where(x == y, y, np.nextafter(x, y))


def _check_exact_float(out, ref, sample, dtype, ctx):
    """The dtype, shape and device as usual, then every bit of the value (NaN matches NaN)."""
    problems = ctx.compare_any(out, ref, dtype)
    if problems:
        return problems
    got, want = np.asarray(out.numpy()), np.asarray(ref).astype(dtype)
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) &
                                                                    np.isnan(want))
    if not np.all(same):
        return [f"values differ from the reference (exactly expected):\n"
                f"    actual:   {got.tolist()}\n    expected: {want.tolist()}"]
    return []


add(OpInfo("nextafter", "elementwise", ref=_nextafter_ref, ref_dtype=True,
           scalar_operands=True, check=_check_exact_float, method="nextafter",
           samples=lambda dtype, rng: binary(dtype, rng, "any", "any", special_values=True),
           errors=_binary_errors("nextafter")))

add(OpInfo("add", "elementwise", ref=_alpha_ref(np.add), scalar_operands=True,
           samples=_alpha_samples, errors=_binary_errors("add"), method="add"))

add(OpInfo("sub", "elementwise", ref=_alpha_ref(np.subtract), scalar_operands=True,
           samples=_alpha_samples, method="sub", errors=_binary_errors("sub")),
    aliases=("subtract",))


def _pow_samples(dtype, rng):
    dx = "small" if P.kind(dtype) in "iub" else ("pos" if P.kind(dtype) == "f" else "small")
    return binary(dtype, rng, dx, "pow_exp")


add(OpInfo("pow", "elementwise", ref=np.power, scalar_operands=True, samples=_pow_samples,
           errors=_binary_errors("pow"), method="pow"))


def _isclose_samples(dtype, rng):
    x = make(rng, (2, 5), dtype, "any")
    k = P.kind(dtype)
    y = x.copy()
    if k in "fc":
        y[0, 1] = x[0, 1] + 0.5
        y[1, 2] = x[1, 2] * (1 + 1e-9) if dtype != "float16" else x[1, 2]
        y[1, 4] = x[1, 4] + 2
    else:
        y[0, 1] = x[0, 1] + 1 if x[0, 1] < 5 else x[0, 1] - 1
    out = [Sample(Arr(x), Arr(y), desc="some close, some not"),
           Sample(Arr(x), Arr(y), rtol=0.5, atol=1.0, desc="loose tolerances"),
           Sample(Arr(x[:, :1]), Arr(y), desc="broadcast")]
    if k in "fc":
        s = special(dtype)
        out += [Sample(Arr(s), Arr(s.copy()), desc="nan != nan"),
                Sample(Arr(s), Arr(s.copy()), equal_nan=True, desc="equal_nan")]
    return out


def _isclose_ref(x, y, rtol=1e-5, atol=1e-8, equal_nan=False):
    return np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)


add(OpInfo("isclose", "elementwise", dtypes=tuple(d for d in P.DTYPE_NAMES if d != "bool"),
           rejects=(), ref=_isclose_ref, samples=_isclose_samples, result="bool",
           errors=lambda rng: [_ex("shapes that do not broadcast", _f32(rng, (2, 3)),
                                   _f32(rng, (4,)), exc=ValueError,
                                   match=["isclose", "(2, 3)", "(4,)"])]))


def _where_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    c = lambda shape: Arr(rng.random(shape) < 0.5, role="mask")  # noqa: E731
    return [
        Sample(c((2, 3)), Arr(m((2, 3))), Arr(m((2, 3))), desc="same shapes"),
        Sample(c(()), Arr(m(())), Arr(m(())), desc="0-d"),
        Sample(c((2, 1)), Arr(m((3,))), Arr(m((2, 3))), desc="broadcast all three"),
        Sample(c((0, 3)), Arr(m((3,))), Arr(m((0, 3))), desc="empty"),
        Sample(c((3, 2)), Arr(m((3, 2)), "transposed"), Arr(m((3, 2)), "strided"),
               desc="non-contiguous"),
        Sample(c((2, 3)), Arr(m((2, 3))), scalar(rng, dtype), desc="tensor, scalar"),
        Sample(c((2, 3)), scalar(rng, dtype), Arr(m((3,))), desc="scalar, tensor"),
    ]


def _where_errors(rng):
    return [
        _ex("a float condition", _f32(rng, (2, 3)), _f32(rng, (2, 3)), _f32(rng, (2, 3)),
            exc=TypeError, match=["where", "bool"]),
        _ex("shapes that do not broadcast", _mask(np.ones((2, 3), bool)), _f32(rng, (2, 3)),
            _f32(rng, (4,)), exc=ValueError, match=["where", "(4,)"]),
    ]


add(OpInfo("where", "elementwise", ref=np.where, scalar_operands=True, samples=_where_samples,
           errors=_where_errors))


def _clamp_bounds(dtype):
    k = P.kind(dtype)
    if k == "b":
        return False, True
    if k == "u":
        return 2, 6
    if k == "i":
        return -2, 5
    return -0.5, 1.25


def _clamp_samples(dtype, rng):
    lo, hi = _clamp_bounds(dtype)
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    out = [
        Sample(Arr(m((2, 3))), lo, hi, desc="scalar bounds"),
        Sample(Arr(m(())), lo, hi, desc="0-d"),
        Sample(Arr(m((5,))), None, hi, desc="max only"),
        Sample(Arr(m((5,))), lo, desc="min only"),
        Sample(Arr(m((3, 4)), "transposed"), lo, hi, desc="transposed"),
        Sample(Arr(m((0, 2))), lo, hi, desc="empty"),
    ]
    if dtype != "bool":
        out.append(Sample(Arr(m((2, 3))), Arr(np.full((3,), lo, dtype=dtype)),
                          Arr(np.full((2, 1), hi, dtype=dtype)), desc="tensor bounds"))
    if P.kind(dtype) == "f":
        out.append(Sample(Arr(special(dtype)), lo, hi, desc="nan propagates"))
    return out


def _clamp_ref(x, lo=None, hi=None):
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return out


def _clamp_errors(rng):
    return [_ex("neither min nor max", _f32(rng, (2,)), exc=ValueError, match=["clamp"])]


add(OpInfo("clamp", "elementwise", ref=_clamp_ref, scalar_operands=True,
           samples=_clamp_samples, errors=_clamp_errors, method="clamp"), aliases=("clip",))


# ============================================================================= reductions ===
def _red_ref(f):
    def ref(x, dim=None, keepdim=False, axis=None, dtype=None):
        ax = np_axis(dim, axis)
        kw = {} if dtype is None else {"dtype": dtype}
        if x.ndim == 0:
            return np.asarray(f(x, **kw))
        return np.asarray(f(x, axis=ax, keepdims=keepdim, **kw))
    return ref


def _sum_result(sample, dtype):
    if "dtype" in sample.kwargs:
        return sample.kwargs["dtype"].name
    return "int64" if P.kind(dtype) in "biu" else dtype


def _dim_errors(name, *extra_args, **kw):
    def errors(rng):
        return [_ex("dim out of range", _f32(rng, (2, 3)), *extra_args, dim=2,
                    exc=IndexError, match=[name, "range"], **kw),
                _ex("a list instead of a tensor", [1.0, 2.0], *extra_args,
                    exc=TypeError, match=[name], **kw)]
    return errors


def _sum_samples(dtype, rng, domain="any"):
    out = reduction(dtype, rng, domain)
    out.append(Sample(Arr(make(rng, (2, 3), dtype, domain)), dim=1, dtype=DType("float64"),
                      desc="dtype=float64") if P.kind(dtype) != "c" else
               Sample(Arr(make(rng, (2, 3), dtype, domain)), dim=1,
                      dtype=DType("complex128"), desc="dtype=complex128"))
    return out


add(OpInfo("sum", "reduction", ref=_red_ref(np.sum), samples=_sum_samples,
           result=_sum_result, tol="loose", errors=_dim_errors("sum"), method="sum"))
add(OpInfo("prod", "reduction", ref=_red_ref(np.prod),
           samples=lambda dtype, rng: _sum_samples(dtype, rng, "prod"),
           result=_sum_result, tol="loose", errors=_dim_errors("prod"), method="prod"))
add(OpInfo("mean", "reduction", ref=_red_ref(np.mean),
           samples=lambda dtype, rng: reduction(dtype, rng), tol="loose",
           errors=_dim_errors("mean"), method="mean"))
for _name, _f in (("amax", np.max), ("amin", np.min)):
    add(OpInfo(_name, "reduction", ref=_red_ref(_f),
               samples=lambda dtype, rng: reduction(dtype, rng, empty_all=False) + (
                   [Sample(Arr(special(dtype).reshape(1, 7)), dim=1, desc="nan propagates")]
                   if P.kind(dtype) == "f" else []),
               errors=_dim_errors(_name), method=_name))


def _minmax_samples(dtype, rng):
    m = lambda shape, dom="any": make(rng, shape, dtype, dom)  # noqa: E731
    return [
        Sample(Arr(m((2, 3))), desc="full reduction"),
        Sample(Arr(m(())), desc="0-d"),
        Sample(Arr(m((2, 3, 4), "small")), 1, desc="dim=1 (ties: first index)"),
        Sample(Arr(m((2, 3, 4))), dim=-1, keepdim=True, desc="dim=-1 keepdim"),
        Sample(Arr(m((3, 4)), "transposed"), dim=0, desc="transposed"),
        Sample(Arr(m(())), dim=0, desc="0-d with dim"),
    ]


def _minmax_ref(values, index):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray(values(x))
        if x.ndim == 0:
            return x.copy(), np.asarray(0, dtype=np.int64)
        return (values(x, axis=dim, keepdims=keepdim),
                np.asarray(index(x, axis=dim, keepdims=keepdim)).astype(np.int64))
    return ref


def _minmax_result(sample, dtype):
    if "dim" in sample.kwargs or len(sample.args) > 1:
        return (dtype, "int64")
    return dtype


for _name, _v, _i, _opt in (("max", np.max, np.argmax, "max_dim"),
                            ("min", np.min, np.argmin, "min_dim")):
    add(OpInfo(_name, "reduction", optable=_opt, ref=_minmax_ref(_v, _i),
               samples=_minmax_samples, result=_minmax_result,
               errors=_dim_errors(_name), method=_name))


def _arg_samples(dtype, rng):
    m = lambda shape, dom="any": make(rng, shape, dtype, dom)  # noqa: E731
    return [
        Sample(Arr(m((2, 3))), desc="flattened"),
        Sample(Arr(m(())), desc="0-d"),
        Sample(Arr(m((2, 3, 4), "small")), dim=1, desc="dim=1 (ties: first index)"),
        Sample(Arr(m((2, 3, 4))), dim=-1, keepdim=True, desc="dim=-1 keepdim"),
        Sample(Arr(m((3, 4)), "transposed"), dim=0, desc="transposed"),
        Sample(Arr(m((2, 4)), "strided"), dim=1, desc="strided"),
    ]


def _arg_ref(f):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            r = f(x.reshape(-1))
            if keepdim:
                return np.asarray(r).reshape((1,) * x.ndim)
            return np.asarray(r)
        if x.ndim == 0:
            return np.asarray(0)
        return np.asarray(f(x, axis=dim, keepdims=keepdim))
    return ref


for _name, _f in (("argmax", np.argmax), ("argmin", np.argmin)):
    add(OpInfo(_name, "reduction", ref=_arg_ref(_f), samples=_arg_samples,
               errors=_dim_errors(_name), method=_name))


def _var_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    return [
        Sample(Arr(m((5,))), desc="all"),
        Sample(Arr(m((2, 3, 4))), dim=1, desc="dim=1"),
        Sample(Arr(m((2, 3, 4))), dim=(0, 2), keepdim=True, desc="dims (0, 2) keepdim"),
        Sample(Arr(m((3, 4))), dim=0, correction=0, desc="correction=0"),
        Sample(Arr(m((3, 4)), "transposed"), dim=-1, correction=2, desc="correction=2"),
        Sample(Arr(m((2, 3))), axis=1, desc="axis= alias"),
    ]


def _var_ref(f):
    def ref(x, dim=None, keepdim=False, correction=1, axis=None):
        return np.asarray(f(x, axis=np_axis(dim, axis), ddof=correction, keepdims=keepdim))
    return ref


for _name, _f in (("var", np.var), ("std", np.std)):
    add(OpInfo(_name, "reduction", ref=_var_ref(_f), samples=_var_samples, tol="loose",
               errors=_dim_errors(_name), method=_name))


def _lse_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    return [
        Sample(Arr(m((5,))), 0, desc="dim=0"),
        Sample(Arr(m((2, 3, 4))), dim=1, desc="dim=1"),
        Sample(Arr(m((2, 3, 4))), dim=(0, 2), keepdim=True, desc="dims (0, 2) keepdim"),
        Sample(Arr(m((3, 4)), "transposed"), dim=-1, desc="transposed"),
        Sample(Arr(np.array([[60.0, 59.0, -np.inf], [-np.inf, -np.inf, -np.inf]]).astype(dtype)
                   if P.kind(dtype) == "f" else m((2, 3))), dim=1,
               desc="large values, all -inf row"),
    ]


def _lse_ref(x, dim, keepdim=False):
    ax = np_axis(dim)
    if x.dtype.kind == "f":
        mx = np.max(x, axis=ax, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0)
        r = np.log(np.sum(np.exp(x - mx), axis=ax, keepdims=True)) + mx
        return r if keepdim else np.squeeze(r, axis=ax)
    return np.log(np.sum(np.exp(x), axis=ax, keepdims=keepdim))


# integer and bool inputs are computed in the default float dtype (as torch.logsumexp);
# complex inputs are refused by polyten's API (no maximum to shift by)
add(OpInfo("logsumexp", "reduction", ref=_lse_ref, samples=_lse_samples, tol="loose",
           dtypes="real", rejects=("complex64", "complex128"), result="float",
           errors=_dim_errors("logsumexp"), method="logsumexp"))


def _vnorm_ref(x, ord=2, dim=None, keepdim=False, p=None):
    if p is not None:
        ord = p
    if ord == "fro":
        ord = 2
    a = np.abs(x)
    ax = np_axis(dim)
    if a.ndim == 0:
        ax = None
    if ord == math.inf:
        return np.max(a, axis=ax, keepdims=keepdim)
    if ord == -math.inf:
        return np.min(a, axis=ax, keepdims=keepdim)
    if ord == 0:
        return np.sum(a != 0, axis=ax, keepdims=keepdim).astype(np.float64)
    return np.sum(a ** ord, axis=ax, keepdims=keepdim) ** (1.0 / ord)


def _vnorm_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    return [
        Sample(Arr(m((5,))), desc="2-norm"),
        Sample(Arr(m(())), desc="0-d"),
        Sample(Arr(m((2, 3))), 1, desc="ord=1"),
        Sample(Arr(m((2, 3))), math.inf, dim=1, desc="ord=inf dim=1"),
        Sample(Arr(m((2, 3))), -math.inf, dim=0, desc="ord=-inf"),
        Sample(Arr(m((2, 3, 4))), 3.0, dim=(0, 2), keepdim=True, desc="ord=3 dims keepdim"),
        Sample(Arr(np.array([1.0, 0.0, 2.0, 0.0]).astype(dtype)), 0, desc="ord=0 counts"),
        Sample(Arr(m((3, 4)), "transposed"), dim=-1, desc="transposed"),
        Sample(Arr(m((0, 3))), dim=0, desc="empty"),
    ]


add(OpInfo("linalg.vector_norm", "reduction", optable="vector_norm", ref=_vnorm_ref,
           samples=_vnorm_samples, tol="loose", errors=_dim_errors("vector_norm")),
    aliases=("vector_norm",))


def _norm_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "any")  # noqa: E731
    return [
        Sample(Arr(m((2, 3))), desc="default (Frobenius / 2-norm)"),
        Sample(Arr(m((2, 3))), p=1, dim=1, desc="p=1 dim=1"),
        Sample(Arr(m((2, 3, 4))), p=2, dim=(0, 2), keepdim=True, desc="p=2 dims keepdim"),
        Sample(Arr(m((3, 4)), "transposed"), p=math.inf, dim=0, desc="p=inf"),
    ]


add(OpInfo("norm", "reduction", optable="vector_norm", ref=_vnorm_ref, samples=_norm_samples,
           tol="loose", method="norm"))


def _all_any_samples(dtype, rng):
    out = reduction(dtype, rng, "small")
    z = np.zeros((2, 3), dtype=dtype)
    z[1, 2] = 1
    out.append(Sample(Arr(z), dim=1, desc="one true"))
    return out


add(OpInfo("all", "reduction", ref=_red_ref(np.all), samples=_all_any_samples,
           errors=_dim_errors("all"), method="all"))
add(OpInfo("any", "reduction", ref=_red_ref(np.any), samples=_all_any_samples,
           errors=_dim_errors("any"), method="any"))


def _cum_samples(dtype, rng, domain="any"):
    m = lambda shape: make(rng, shape, dtype, domain)  # noqa: E731
    out = [
        Sample(Arr(m((5,))), 0, desc="1-d"),
        Sample(Arr(m(())), 0, desc="0-d"),
        Sample(Arr(m((2, 3, 4))), dim=1, desc="dim=1"),
        Sample(Arr(m((2, 3, 4))), dim=-1, desc="dim=-1"),
        Sample(Arr(m((3, 4)), "transposed"), dim=0, desc="transposed"),
        Sample(Arr(m((0, 3))), dim=0, desc="empty"),
    ]
    if P.kind(dtype) != "c":
        out.append(Sample(Arr(m((2, 3))), dim=1, dtype=DType("float64"), desc="dtype=float64"))
    return out


def _cum_ref(f):
    def ref(x, dim, dtype=None):
        kw = {} if dtype is None else {"dtype": dtype}
        if x.ndim == 0:
            return x.astype(dtype) if dtype is not None else x.copy()
        return f(x, axis=dim, **kw)
    return ref


def _cum_errors(name):
    def errors(rng):
        return [_ex("dim out of range", _f32(rng, (2, 3)), dim=2, exc=IndexError,
                    match=[name, "range"])]
    return errors


add(OpInfo("cumsum", "reduction", ref=_cum_ref(np.cumsum), samples=_cum_samples,
           result=_sum_result, tol="loose", errors=_cum_errors("cumsum"), method="cumsum"))
add(OpInfo("cumprod", "reduction", ref=_cum_ref(np.cumprod),
           samples=lambda dtype, rng: _cum_samples(dtype, rng, "prod"),
           result=_sum_result, tol="loose", errors=_cum_errors("cumprod"), method="cumprod"))


# ============================================================================ linear algebra ===
def _mat(rng, shape, dtype, layout="contiguous"):
    return Arr(make(rng, shape, dtype, "small"), layout)


def _matmul_samples(dtype, rng):
    return [
        Sample(_mat(rng, (2, 3), dtype), _mat(rng, (3, 4), dtype), desc="matrix @ matrix"),
        Sample(_mat(rng, (3,), dtype), _mat(rng, (3,), dtype), desc="vector @ vector"),
        Sample(_mat(rng, (3,), dtype), _mat(rng, (3, 2), dtype), desc="vector @ matrix"),
        Sample(_mat(rng, (2, 3), dtype), _mat(rng, (3,), dtype), desc="matrix @ vector"),
        Sample(_mat(rng, (2, 2, 3), dtype), _mat(rng, (3, 4), dtype), desc="batched"),
        Sample(_mat(rng, (2, 1, 2, 3), dtype), _mat(rng, (3, 3, 2), dtype),
               desc="broadcast batch"),
        Sample(_mat(rng, (3, 2), dtype, "transposed"), _mat(rng, (2, 4), dtype, "strided"),
               desc="non-contiguous"),
        # the batched layouts of attention and its backward, which a GPU backend may hand to
        # a strided-batched GEMM as they are (transpose flags, batch stride 0)
        Sample(_mat(rng, (2, 3, 4), dtype), _mat(rng, (2, 4, 5), dtype, "mT"),
               desc="batched @ batched.mT"),
        Sample(_mat(rng, (2, 3, 4), dtype, "mT"), _mat(rng, (2, 4, 5), dtype),
               desc="batched.mT @ batched"),
        Sample(_mat(rng, (2, 2, 3, 4), dtype, "mT"), _mat(rng, (2, 2, 4, 2), dtype, "mT"),
               desc="4-d, both mT"),
        Sample(_mat(rng, (3, 4), dtype), _mat(rng, (2, 4, 2), dtype),
               desc="matrix @ batched"),
        Sample(_mat(rng, (2, 3, 4), dtype), _mat(rng, (4, 5), dtype, "mT"),
               desc="batched @ matrix.mT"),
        Sample(_mat(rng, (2, 3, 4), dtype, "strided"), _mat(rng, (2, 4, 2), dtype, "strided"),
               desc="batched, strided"),
        Sample(_mat(rng, (0, 3), dtype), _mat(rng, (3, 2), dtype), desc="empty"),
        Sample(_mat(rng, (2, 0), dtype), _mat(rng, (0, 3), dtype), desc="empty inner dim"),
    ]


def _matmul_errors(rng):
    return [
        _ex("inner dimensions differ", _f32(rng, (3, 4)), _f32(rng, (5, 2)), exc=ValueError,
            match=["matmul", "(3, 4)", "(5, 2)"]),
        _ex("0-d operand", _f32(rng, ()), _f32(rng, (3,)), exc=ValueError, match=["matmul"]),
        _ex("batch dims do not broadcast", _f32(rng, (2, 2, 3)), _f32(rng, (3, 3, 2)),
            exc=ValueError, match=["matmul"]),
    ]


add(OpInfo("matmul", "linalg", ref=np.matmul, samples=_matmul_samples, tol="linalg",
           errors=_matmul_errors, method="matmul"))


def _einsum_samples(dtype, rng):
    m = lambda shape, lay="contiguous": _mat(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample("ij,jk->ik", m((2, 3)), m((3, 4)), desc="matmul"),
        Sample("i,i->", m((4,)), m((4,)), desc="dot"),
        Sample("ij->ji", m((2, 3)), desc="transpose"),
        Sample("ii->i", m((3, 3)), desc="diagonal"),
        Sample("bij,bjk->bik", m((2, 2, 3)), m((2, 3, 2)), desc="batched"),
        Sample("ij,kj->ik", m((3, 2), "transposed"), m((4, 2)), desc="non-contiguous"),
        Sample("i,j->ij", m((2,)), m((3,)), desc="outer"),
        Sample("ij->", m((2, 3)), desc="sum all"),
    ]


def _einsum_ref(eq, *xs):
    return np.einsum(eq, *xs)


def _einsum_errors(rng):
    return [
        _ex("sizes of j differ", "ij,jk->ik", _f32(rng, (2, 3)), _f32(rng, (4, 2)),
            exc=ValueError, match=["einsum"]),
        _ex("two subscripts, one operand", "ij,jk->ik", _f32(rng, (2, 3)), exc=ValueError,
            match=["einsum"]),
    ]


add(OpInfo("einsum", "linalg", ref=_einsum_ref, samples=_einsum_samples, tol="linalg",
           errors=_einsum_errors))


def _tensordot_samples(dtype, rng):
    m = lambda shape, lay="contiguous": _mat(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(m((2, 3, 4)), m((3, 4, 5)), desc="dims=2 (default)"),
        Sample(m((2, 3)), m((3, 4)), dims=1, desc="dims=1"),
        Sample(m((2, 3)), m((4,)), dims=0, desc="dims=0 (outer)"),
        Sample(m((3, 2, 4)), m((2, 3, 5)), dims=([1, 0], [0, 1]), desc="explicit dims"),
        Sample(m((3, 2), "transposed"), m((2, 3)), dims=([1], [0]), desc="non-contiguous"),
    ]


def _tensordot_ref(a, b, dims=2):
    if isinstance(dims, tuple):
        dims = (list(dims[0]), list(dims[1]))
    return np.tensordot(a, b, axes=dims)


def _tensordot_grad_samples(dtype, rng):
    """Smaller operands than the value samples (each element costs gradcheck two calls)."""
    m = lambda shape, lay="contiguous": _mat(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(m((2, 2, 3)), m((2, 3, 2)), desc="dims=2 (default)"),
        Sample(m((2, 3)), m((3, 4)), dims=1, desc="dims=1"),
        Sample(m((2, 3)), m((4,)), dims=0, desc="dims=0 (outer)"),
        Sample(m((3, 2, 2)), m((2, 3, 2)), dims=([1, 0], [0, 1]), desc="explicit dims"),
        Sample(m((3, 2), "transposed"), m((2, 3)), dims=([1], [0]), desc="non-contiguous"),
    ]


add(OpInfo("tensordot", "linalg", ref=_tensordot_ref, samples=_tensordot_samples,
           grad_samples=_tensordot_grad_samples, tol="linalg", errors=lambda rng: [_ex(
               "contracted sizes differ", _f32(rng, (2, 3)), _f32(rng, (4, 5)), dims=1,
               exc=ValueError, match=["tensordot"])]))


def _well_conditioned(rng, shape, dtype):
    n = shape[-1]
    a = make(rng, shape, dtype if P.kind(dtype) != "f" else "float64", "unit")
    a = a + n * np.eye(n)
    return a.astype(dtype)


def _inv_samples(dtype, rng):
    return [
        Sample(Arr(_well_conditioned(rng, (3, 3), dtype)), desc="3x3"),
        Sample(Arr(_well_conditioned(rng, (1, 1), dtype)), desc="1x1"),
        Sample(Arr(_well_conditioned(rng, (2, 3, 3), dtype)), desc="batched"),
        Sample(Arr(_well_conditioned(rng, (4, 4), dtype), "transposed"), desc="transposed"),
    ]


def _square_errors(name):
    def errors(rng):
        return [_ex("not square", _f32(rng, (2, 3)), exc=ValueError, match=[name, "(2, 3)"]),
                _ex("1-d", _f32(rng, (3,)), exc=ValueError, match=[name])]
    return errors


add(OpInfo("linalg.inv", "linalg", optable="linalg_inv", ref=np.linalg.inv,
           samples=_inv_samples, tol="linalg", errors=lambda rng: _square_errors("inv")(rng) + [
               _ex("singular", Arr(np.ones((3, 3), np.float32)), exc=(ValueError, RuntimeError),
                   match=["inv", "singular"])]), aliases=("inverse",))
add(OpInfo("linalg.det", "linalg", optable="linalg_det", ref=np.linalg.det,
           samples=_inv_samples, tol="linalg", errors=_square_errors("det")), aliases=("det",))


def _solve_samples(dtype, rng):
    A = lambda shape: _well_conditioned(rng, shape, dtype)  # noqa: E731
    m = lambda shape: make(rng, shape, dtype, "small")  # noqa: E731
    return [
        Sample(Arr(A((3, 3))), Arr(m((3,))), desc="vector b"),
        Sample(Arr(A((3, 3))), Arr(m((3, 2))), desc="matrix b"),
        Sample(Arr(A((2, 3, 3))), Arr(m((2, 3, 2))), desc="batched"),
        Sample(Arr(A((2, 3, 3))), Arr(m((2, 3))), desc="batch of vectors"),
        Sample(Arr(A((3, 3)), "transposed"), Arr(m((3, 2)), "strided"),
               desc="non-contiguous"),
    ]


def _solve_ref(a, b):
    if b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1]):
        return np.linalg.solve(a, b[..., None])[..., 0]
    return np.linalg.solve(a, b)


add(OpInfo("linalg.solve", "linalg", optable="linalg_solve", ref=_solve_ref,
           samples=_solve_samples, tol="linalg",
           errors=lambda rng: [
               _ex("b does not match a", _f32(rng, (3, 3)), _f32(rng, (4,)), exc=ValueError,
                   match=["solve", "(3, 3)", "(4,)"]),
               _ex("a not square", _f32(rng, (2, 3)), _f32(rng, (2,)), exc=ValueError,
                   match=["solve", "(2, 3)"])]))


def _mnorm_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [
        Sample(m((3, 4)), desc="Frobenius"),
        Sample(m((3, 4)), "nuc", desc="nuclear"),
        Sample(m((3, 4)), 1, desc="ord=1"),
        Sample(m((3, 4)), -1, desc="ord=-1"),
        Sample(m((3, 4)), math.inf, desc="ord=inf"),
        Sample(m((3, 4)), 2, desc="ord=2"),
        Sample(m((2, 3, 3)), "fro", keepdim=True, desc="batched keepdim"),
        Sample(m((3, 2, 4), "transposed"), dim=(0, 2), desc="dim=(0, 2)"),
    ]


def _mnorm_ref(x, ord="fro", dim=(-2, -1), keepdim=False):
    return np.linalg.norm(x, ord=ord, axis=tuple(dim), keepdims=keepdim)


add(OpInfo("linalg.matrix_norm", "linalg", optable="matrix_norm", ref=_mnorm_ref,
           samples=_mnorm_samples, tol="linalg",
           errors=lambda rng: [_ex("1-d input", _f32(rng, (3,)), exc=ValueError,
                                   match=["matrix_norm"])]))


def _hermitian_pd(rng, shape, dtype):
    """B B^H + n I: Hermitian positive-definite and well conditioned."""
    n = shape[-1]
    wide = "complex128" if P.kind(dtype) == "c" else "float64"
    b = make(rng, shape, wide, "unit")
    a = b @ np.conj(np.swapaxes(b, -1, -2)) + n * np.eye(n)
    return a.astype(dtype)


def _slogdet_samples(dtype, rng):
    out = _inv_samples(dtype, rng)
    neg = _well_conditioned(rng, (3, 3), dtype)
    neg[[0, 1]] = neg[[1, 0]]  # a row swap: negative determinant
    out.append(Sample(Arr(neg), desc="negative determinant"))
    return out


def _slogdet_ref(a):
    sign, logabs = np.linalg.slogdet(a)
    return sign, logabs


add(OpInfo("linalg.slogdet", "linalg", optable="linalg_slogdet", ref=_slogdet_ref,
           samples=_slogdet_samples, tol="linalg",
           result=lambda s, d: (d, REAL_OF.get(d, d)), errors=_square_errors("slogdet")))


def _hermitian_input(path, post=None, post_code=()):
    """Gradient-check wrapper of an op that reads one triangle of a symmetric input: it is
    called on ``(a + a.mT) / 2`` (the same matrix for the symmetric samples), so that a
    perturbation of one element is seen the same way by the numerical and analytical
    derivatives (PyTorch's ``gradcheck_wrapper_hermitian_input``).  ``post`` makes outputs
    that are defined up to a sign (eigenvectors, singular vectors) unique."""
    def fn(pt, a, *args, **kwargs):
        f = pt
        for part in path.split("."):
            f = getattr(f, part)
        out = f((a + a.mT) / 2, *args, **kwargs)
        return post(out) if post else out

    def code(args, kwargs):
        x = repr(args[0])
        return "\n".join([f"{x} = ({x} + {x}.mT) / 2  # a symmetric input",
                          f"out = polyten.{path}({code_args(args, kwargs)})"] + list(post_code))
    return fn, code


def _chol_samples(dtype, rng):
    return [Sample(Arr(_hermitian_pd(rng, (3, 3), dtype)), desc="3x3"),
            Sample(Arr(_hermitian_pd(rng, (2, 3, 3), dtype)), desc="batched"),
            Sample(Arr(_hermitian_pd(rng, (3, 3), dtype)), upper=True, desc="upper=True"),
            Sample(Arr(_hermitian_pd(rng, (4, 4), dtype), "transposed"), desc="transposed")]


def _chol_ref(a, upper=False):
    lo = np.linalg.cholesky(a)
    return np.conj(np.swapaxes(lo, -1, -2)) if upper else lo


_CHOL_GRAD = _hermitian_input("linalg.cholesky")
add(OpInfo("linalg.cholesky", "linalg", optable="linalg_cholesky", ref=_chol_ref,
           samples=_chol_samples, tol="linalg", grad_func=_CHOL_GRAD[0],
           grad_code=_CHOL_GRAD[1], errors=lambda rng: [
               _ex("not square", _f32(rng, (2, 3)), exc=ValueError, match=["cholesky", "(2, 3)"]),
               _ex("not positive-definite", Arr(-np.eye(3, dtype=np.float32)),
                   exc=(ValueError, RuntimeError), match=["cholesky"])]))


def _rect_samples(dtype, rng, **kw):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [Sample(m((3, 3)), desc="square", **kw),
            Sample(m((4, 2)), desc="tall", **kw),
            Sample(m((2, 4)), desc="wide", **kw),
            Sample(m((2, 3, 2)), desc="batched", **kw),
            Sample(m((3, 4), "transposed"), desc="transposed", **kw)]


def _host(ctx, t, what):
    from .harness import to_host
    if not hasattr(t, "dtype") or not hasattr(t, "numpy"):
        return None, [f"{what}: expected a polyten.Tensor, got {type(t).__name__}"]
    return to_host(t), []


def _close(a, b, dtype, what):
    from .harness import values_match
    return values_match(np.asarray(a), np.asarray(b), dtype, "linalg", what)


def _eye_like(n, batch):
    return np.broadcast_to(np.eye(n), batch + (n, n))


def _unpack(out, n, what):
    if not isinstance(out, (tuple, list)) or len(out) != n:
        return None, [f"expected a tuple of {n} tensors ({what}), got {type(out).__name__}"]
    return out, []


def _check_qr(out, ref, sample, dtype, ctx):
    a = sample.args[0].value.astype(np.complex128 if P.kind(dtype) == "c" else np.float64)
    mode = sample.kwargs.get("mode", "reduced")
    parts, problems = _unpack(out, 2, "Q, R")
    if problems:
        return problems
    m, n = a.shape[-2:]
    k = min(m, n) if mode == "reduced" else m
    batch = a.shape[:-2]
    q, r = parts
    for name, t, shape in (("Q", q, batch + (m, k)), ("R", r, batch + (k, n))):
        if getattr(t, "dtype", None) is None or t.dtype.name != dtype:
            problems.append(f"{name}: dtype {getattr(getattr(t, 'dtype', None), 'name', t)}, "
                            f"expected {dtype}")
        if tuple(getattr(t, "shape", ())) != shape:
            problems.append(f"{name}: shape {tuple(getattr(t, 'shape', ()))}, expected {shape}")
    if problems:
        return problems
    qh, rh = q.numpy().astype(a.dtype), r.numpy().astype(a.dtype)
    problems += _close(np.conj(np.swapaxes(qh, -1, -2)) @ qh, _eye_like(k, batch), dtype,
                       "Q^H Q = I")
    problems += _close(qh @ rh, a, dtype, "Q R = A")
    if np.any(np.abs(np.tril(rh, -1)) > 0):
        problems.append(f"R is not upper triangular: {rh!r:.200}")
    return problems


# a tall A in mode 'complete' is not differentiable (Q's extra columns are arbitrary): its
# backward raises, as PyTorch's (tests/test_linalg_grad.py)
add(OpInfo("linalg.qr", "linalg", optable="linalg_qr", ref=lambda a, mode="reduced": None,
           samples=lambda dtype, rng: _rect_samples(dtype, rng) + [
               Sample(Arr(make(rng, (4, 2), dtype, "any")), mode="complete",
                      desc="complete")],
           grad_skip=("complete",), check=_check_qr, result=lambda s, d: (d, d)))


def _check_eigh(out, ref, sample, dtype, ctx):
    a = sample.args[0].value.astype(np.complex128 if P.kind(dtype) == "c" else np.float64)
    parts, problems = _unpack(out, 2, "eigenvalues, eigenvectors")
    if problems:
        return problems
    w, v = parts
    real = REAL_OF.get(dtype, dtype)
    problems += ctx.compare_any(w, np.linalg.eigvalsh(a), real, "linalg")
    if getattr(v, "dtype", None) is None or v.dtype.name != dtype:
        problems.append(f"eigenvectors: dtype {getattr(getattr(v, 'dtype', None), 'name', v)},"
                        f" expected {dtype}")
        return problems
    if tuple(v.shape) != a.shape:
        return problems + [f"eigenvectors: shape {tuple(v.shape)}, expected {a.shape}"]
    wh, vh = w.numpy().astype(np.float64), v.numpy().astype(a.dtype)
    problems += _close(a @ vh, vh * wh[..., None, :], dtype, "A V = V diag(w)")
    n = a.shape[-1]
    problems += _close(np.conj(np.swapaxes(vh, -1, -2)) @ vh, _eye_like(n, a.shape[:-2]),
                       dtype, "V^H V = I")
    return problems


# eigenvectors are defined up to their sign: the gradient checks use |V|
_EIGH_GRAD = _hermitian_input("linalg.eigh", lambda out: (out[0], out[1].abs()),
                              ["out = (out[0], out[1].abs())  # eigenvectors up to sign"])
add(OpInfo("linalg.eigh", "linalg", optable="linalg_eigh", ref=lambda a, UPLO="L": None,
           grad_func=_EIGH_GRAD[0], grad_code=_EIGH_GRAD[1],
           samples=lambda dtype, rng: [
               Sample(Arr(_hermitian_pd(rng, (3, 3), dtype)), desc="3x3"),
               Sample(Arr(_hermitian_pd(rng, (2, 3, 3), dtype)), desc="batched"),
               Sample(Arr(_hermitian_pd(rng, (4, 4), dtype), "transposed"),
                      desc="transposed")],
           check=_check_eigh, result=lambda s, d: (REAL_OF.get(d, d), d)))


_COMPLEX_OF = {"float32": "complex64", "float64": "complex128", "complex64": "complex64",
               "complex128": "complex128"}
_EIG_DTYPES = ("float32", "float64", "complex64", "complex128")  # torch refuses half too


def _eig_matrix(rng, shape, dtype, pair=False):
    """``S diag(lam) S^-1`` with well separated eigenvalues and a well-conditioned ``S``
    (``pair``: a real matrix with one complex-conjugate pair), so every dtype's eigenvalues
    are accurate and a small perturbation does not reorder them."""
    n = shape[-1]
    kind = P.kind(dtype)
    wide = "complex128" if kind == "c" else "float64"
    s = np.eye(n) + 0.3 * make(rng, shape, wide, "unit")
    lam = np.arange(1.0, n + 1) * np.where(np.arange(n) % 2, -1.0, 1.0)
    if kind == "c":
        lam = lam + 0.5j * np.arange(n)
    a = (s * lam[..., None, :]) @ np.linalg.inv(s)
    if pair and n >= 2:  # a rotation block: eigenvalues 1 +- 2i
        blk = np.zeros(shape)
        blk[..., 0, 0] = blk[..., 1, 1] = 1.0
        blk[..., 0, 1], blk[..., 1, 0] = 2.0, -2.0
        a = (s @ (blk + np.diag(np.r_[0.0, 0.0, lam[2:] * 2]))) @ np.linalg.inv(s)
    return (a.real if kind != "c" else a).astype(dtype)


def _eig_samples(dtype, rng):
    m = lambda shape, **kw: Arr(_eig_matrix(rng, shape, dtype, **kw))  # noqa: E731
    return [Sample(m((3, 3)), desc="3x3"),
            Sample(m((4, 4), pair=True), desc="complex pair"),
            Sample(m((2, 3, 3)), desc="batched"),
            Sample(Arr(_eig_matrix(rng, (3, 3), dtype), "transposed"), desc="transposed"),
            Sample(Arr(make(rng, (1, 1), dtype, "any")), desc="1x1")]


def _eig_match(w, ref):
    """``w`` reordered to ``ref``'s order, per matrix (nearest unused eigenvalue): the order
    of geev's eigenvalues is not specified."""
    out = np.empty_like(ref)
    for idx in np.ndindex(*ref.shape[:-1]):
        left = list(w[idx])
        for j, r in enumerate(ref[idx]):
            k = int(np.argmin([abs(x - r) for x in left]))
            out[idx + (j,)] = left.pop(k)
    return out


def _check_eig(out, ref, sample, dtype, ctx, vectors=True):
    a = sample.args[0].value.astype(np.complex128)
    cdt = _COMPLEX_OF[dtype]
    if vectors:
        parts, problems = _unpack(out, 2, "eigenvalues, eigenvectors")
        if problems:
            return problems
    else:
        parts = (out,)
    problems = []
    batch, n = a.shape[:-2], a.shape[-1]
    for name, t, shape in zip(("eigenvalues", "eigenvectors"), parts,
                              (batch + (n,), a.shape)):
        if getattr(t, "dtype", None) is None or t.dtype.name != cdt:
            problems.append(f"{name}: dtype {getattr(getattr(t, 'dtype', None), 'name', t)}, "
                            f"expected {cdt}")
        elif tuple(t.shape) != shape:
            problems.append(f"{name}: shape {tuple(t.shape)}, expected {shape}")
    if problems:
        return problems
    ref_w = np.linalg.eigvals(a)
    wh = parts[0].numpy().astype(np.complex128)
    problems += _close(_eig_match(wh, ref_w), ref_w, cdt, "eigenvalues (matched to "
                       "numpy.linalg.eigvals in complex128)")
    if vectors:  # eigenvectors up to a phase each: the eigen-equation and the unit norms
        vh = parts[1].numpy().astype(np.complex128)
        problems += _close(a @ vh, vh * wh[..., None, :], cdt, "A V = V diag(L)")
        problems += _close(np.linalg.norm(vh, axis=-2), np.ones(batch + (n,)), cdt,
                           "the columns of V have norm 1")
    return problems


def _eig_grad(pt, a):
    """L's parts and |V|: invariant under the eigenvectors' phases (e^(i phi) per column)."""
    L, V = pt.linalg.eig(a)
    return L.real, L.imag, V.abs()


def _eigvals_grad(pt, a):
    L = pt.linalg.eigvals(a)
    return L.real, L.imag


_EIG_ERRORS = lambda name: lambda rng: _square_errors(name)(rng) + [  # noqa: E731
    _ex("inf", Arr(np.array([[1.0, np.inf], [0.0, 1.0]], np.float32)),
        exc=(ValueError, RuntimeError), match=[name, "non-finite"])]
add(OpInfo("linalg.eig", "linalg", optable="linalg_eig", ref=lambda a: None,
           dtypes=_EIG_DTYPES, samples=_eig_samples, check=_check_eig,
           result=lambda s, d: (_COMPLEX_OF.get(d), _COMPLEX_OF.get(d)),
           grad_func=_eig_grad, grad_code=lambda args, kwargs: (
               f"L, V = polyten.linalg.eig({code_args(args, kwargs)})\n"
               f"out = (L.real, L.imag, V.abs())  # invariant under the phases of V"),
           errors=_EIG_ERRORS("eig")))
add(OpInfo("linalg.eigvals", "linalg", optable="linalg_eig", ref=lambda a: None,
           dtypes=_EIG_DTYPES, samples=_eig_samples,
           check=lambda *a: _check_eig(*a, vectors=False),
           result=lambda s, d: _COMPLEX_OF.get(d),
           grad_func=_eigvals_grad, grad_code=lambda args, kwargs: (
               f"L = polyten.linalg.eigvals({code_args(args, kwargs)})\n"
               f"out = (L.real, L.imag)"),
           errors=_EIG_ERRORS("eigvals")))


def _check_svd(out, ref, sample, dtype, ctx):
    a = sample.args[0].value.astype(np.complex128 if P.kind(dtype) == "c" else np.float64)
    full = sample.kwargs.get("full_matrices", True)
    parts, problems = _unpack(out, 3, "U, S, Vh")
    if problems:
        return problems
    u, s, vh = parts
    real = REAL_OF.get(dtype, dtype)
    problems += ctx.compare_any(s, np.linalg.svd(a, compute_uv=False), real, "linalg")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    for name, t, shape in (("U", u, batch + (m, m if full else k)),
                           ("Vh", vh, batch + (n if full else k, n))):
        if getattr(t, "dtype", None) is None or t.dtype.name != dtype:
            problems.append(f"{name}: dtype {getattr(getattr(t, 'dtype', None), 'name', t)}, "
                            f"expected {dtype}")
        elif tuple(t.shape) != shape:
            problems.append(f"{name}: shape {tuple(t.shape)}, expected {shape}")
    if problems:
        return problems
    uh, sh, vhh = u.numpy().astype(a.dtype), s.numpy().astype(np.float64), \
        vh.numpy().astype(a.dtype)
    rec = (uh[..., :, :k] * sh[..., None, :]) @ vhh[..., :k, :]
    problems += _close(rec, a, dtype, "U diag(S) Vh = A")
    problems += _close(np.conj(np.swapaxes(uh, -1, -2)) @ uh, _eye_like(uh.shape[-1], batch),
                       dtype, "U^H U = I")
    return problems


def _svd_grad(pt, a, **kwargs):
    """S and U_k Vh_k: unique (singular vectors are defined up to a common sign per pair, and
    full_matrices' extra columns are arbitrary)."""
    u, s, vh = pt.linalg.svd(a, **kwargs)
    k = s.shape[-1]
    return s, u[..., :k] @ vh[..., :k, :]


def _svd_grad_code(args, kwargs):
    return (f"u, s, vh = polyten.linalg.svd({code_args(args, kwargs)})\n"
            f"k = s.shape[-1]\nout = (s, u[..., :k] @ vh[..., :k, :])  # unique up to signs")


add(OpInfo("linalg.svd", "linalg", optable="linalg_svd", ref=lambda a, full_matrices=True: None,
           grad_func=_svd_grad, grad_code=_svd_grad_code,
           samples=lambda dtype, rng: _rect_samples(dtype, rng) + [
               Sample(Arr(make(rng, (4, 2), dtype, "any")), full_matrices=False,
                      desc="full_matrices=False")],
           check=_check_svd, result=lambda s, d: (d, REAL_OF.get(d, d), d)))


def _lstsq_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [Sample(m((5, 3)), m((5, 2)), driver="gelsd", desc="tall, gelsd"),
            Sample(m((5, 3)), m((5, 2)), driver="gels", desc="tall, gels"),
            Sample(m((3, 5)), m((3, 2)), driver="gelss", desc="wide: minimum norm"),
            Sample(m((1, 5, 3)), m((2, 5, 2)), driver="gelsy", desc="broadcast batch"),
            Sample(m((4, 3), "transposed"), m((4,)), desc="vector b")]


def _lstsq_ref(a, b, driver=None):
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    if vector:
        b = b[..., None]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    x = np.empty(batch + (a.shape[-1], b.shape[-1]), np.result_type(a, b))
    for idx in np.ndindex(*batch):
        x[idx] = np.linalg.lstsq(a[idx], b[idx], rcond=None)[0]
    return x[..., 0] if vector else x


def _check_lstsq(out, ref, sample, dtype, ctx):
    parts, problems = _unpack(out, 4, "solution, residuals, rank, singular_values")
    if problems:
        return problems
    a = sample.args[0].value.astype(np.complex128 if P.kind(dtype) == "c" else np.float64)
    b = sample.args[1].value.astype(a.dtype)
    problems += ctx.compare_any(parts[0], _lstsq_ref(a, b), dtype, "linalg")
    m, n = a.shape[-2:]
    driver = sample.kwargs.get("driver", "gelsy")
    if m > n and driver != "gelsy":
        sol = _lstsq_ref(a, b)
        vec = b.ndim == 1
        r = a @ (sol[..., None] if vec else sol) - (b[..., None] if vec else b)
        problems += ctx.compare_any(parts[1], (np.abs(r) ** 2).sum(-2),
                                    REAL_OF.get(dtype, dtype), "linalg")
    if driver in ("gelsd", "gelss"):
        problems += ctx.compare_any(parts[3], np.linalg.svd(a, compute_uv=False),
                                    REAL_OF.get(dtype, dtype), "linalg")
    return problems


add(OpInfo("linalg.lstsq", "linalg", tier="linalg", dtypes="floating", ref=_lstsq_ref,
           samples=_lstsq_samples, check=_check_lstsq, differentiable=True,
           result=lambda s, d: (d, REAL_OF.get(d, d), "int64", REAL_OF.get(d, d)),
           grad_func=lambda pt, a, b, **kw: pt.linalg.lstsq(a, b, **kw).solution,
           grad_code=lambda args, kwargs: (f"out = polyten.linalg.lstsq("
                                           f"{code_args(args, kwargs)}).solution"),
           errors=lambda rng: [
               _ex("rows differ", _f32(rng, (4, 3)), _f32(rng, (5, 2)), exc=ValueError,
                   match=["lstsq", "(4, 3)", "(5, 2)"]),
               _ex("unknown driver", _f32(rng, (4, 3)), _f32(rng, (4, 2)), driver="x",
                   exc=ValueError, match=["lstsq", "driver"])]))


def _check_lu_factor(out, ref, sample, dtype, ctx):
    parts, problems = _unpack(out, 2, "LU, pivots")
    if problems:
        return problems
    a = sample.args[0].value.astype(np.complex128 if P.kind(dtype) == "c" else np.float64)
    lu, piv = parts
    m, n = a.shape[-2:]
    k = min(m, n)
    if getattr(piv, "dtype", None) is None or piv.dtype.name != "int32" or \
            tuple(piv.shape) != a.shape[:-2] + (k,):
        return [f"pivots: expected int32 of shape {a.shape[:-2] + (k,)}, got "
                f"{getattr(piv, 'dtype', piv)} {tuple(getattr(piv, 'shape', ()))}"]
    luh, ph = lu.numpy().astype(a.dtype), piv.numpy().astype(np.int64) - 1
    L = np.tril(luh[..., :, :k], -1) + np.eye(m, k)
    U = np.triu(luh[..., :k, :])
    pa = a.copy()  # apply the row swaps in order: P^T A
    for idx in np.ndindex(*a.shape[:-2]):
        for i in range(k):
            p = ph[idx + (i,)]
            if not i <= p < m:
                return [f"pivot {p + 1} out of range at {idx + (i,)}"]
            pa[idx + (i,)], pa[idx + (p,)] = pa[idx + (p,)].copy(), pa[idx + (i,)].copy()
    problems += _close(L @ U, pa, dtype, "L U = P^T A")
    if np.any(np.abs(L) > 1 + 1e-3):
        problems.append("|L| > 1: the pivots are not the largest entries (partial pivoting)")
    return problems


add(OpInfo("linalg.lu_factor", "linalg", optable="linalg_lu_factor", ref=lambda a: None,
           samples=lambda dtype, rng: _rect_samples(dtype, rng),
           check=_check_lu_factor, result=lambda s, d: (d, "int32"),
           errors=lambda rng: [
               _ex("1-d", _f32(rng, (3,)), exc=ValueError, match=["lu_factor"]),
               _ex("singular", Arr(np.ones((3, 3), np.float32)),
                   exc=(ValueError, RuntimeError), match=["lu_factor", "singular"])]))


def _diagonal_ref(x, offset=0, dim1=0, dim2=1):
    return np.diagonal(x, offset, dim1, dim2).copy()


add(OpInfo("diagonal", "linalg", ref=_diagonal_ref, dtypes="any", rejects=(),
           samples=lambda dtype, rng: [
               Sample(_mat(rng, (3, 4), dtype), desc="main diagonal"),
               Sample(_mat(rng, (3, 4), dtype), 1, desc="offset=1"),
               Sample(_mat(rng, (4, 3), dtype), offset=-2, desc="offset=-2"),
               Sample(_mat(rng, (2, 3, 4), dtype), 0, 1, 2, desc="dims 1, 2"),
               Sample(_mat(rng, (3, 3), dtype, "transposed"), desc="transposed"),
               Sample(_mat(rng, (2, 3), dtype), 5, desc="offset past the end: empty")],
           method="diagonal", errors=lambda rng: [
               _ex("same dim twice", _f32(rng, (3, 3)), 0, 1, 1, exc=ValueError,
                   match=["diagonal"])]))


def _cross_ref(x, y, dim=None):
    x, y = np.broadcast_arrays(x, y)
    if dim is None:
        dim = next(i for i, s in enumerate(np.broadcast_shapes(x.shape, y.shape)) if s == 3)
    return np.cross(x, y, axis=dim)


add(OpInfo("cross", "linalg", ref=_cross_ref, samples=lambda dtype, rng: [
    Sample(_mat(rng, (3,), dtype), _mat(rng, (3,), dtype), dim=0, desc="vectors"),
    Sample(_mat(rng, (2, 3), dtype), _mat(rng, (2, 3), dtype), dim=-1, desc="rows"),
    Sample(_mat(rng, (2, 3), dtype), _mat(rng, (3,), dtype), dim=1, desc="broadcast"),
    Sample(_mat(rng, (3, 2), dtype, "transposed"), _mat(rng, (3, 2), dtype),
           desc="dim=None: first dim of size 3")],
    tol="linalg", method="cross", result="promote", errors=lambda rng: [
        _ex("size 2 along dim", _f32(rng, (2,)), _f32(rng, (2,)), dim=0, exc=ValueError,
            match=["cross"])]))


# ==================================================================================== shape ===
def _any(rng, shape, dtype, layout="contiguous"):
    return Arr(make(rng, shape, dtype, "any"), layout)


def _shape_op(name, samples, ref, errors=None, optable=None, method=None, aliases=(),
              func=None, code=None, requires=(), **kw):
    return add(OpInfo(name, "shape", optable=optable, samples=samples, ref=ref, errors=errors,
                      method=method, func=func, code=code, requires=requires, dtypes="any",
                      rejects=(), **kw), aliases=aliases)


def _reshape_ref(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return np.reshape(x, tuple(shape)).copy()


_shape_op("reshape", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), (3, 2), desc="(2, 3) -> (3, 2)"),
    Sample(_any(rng, (2, 3), dtype), (-1,), desc="-1"),
    Sample(_any(rng, (2, 3, 4), dtype), (4, -1, 3), desc="-1 inside"),
    Sample(_any(rng, (), dtype), (1, 1), desc="0-d -> (1, 1)"),
    Sample(_any(rng, (1,), dtype), (), desc="(1,) -> 0-d"),
    Sample(_any(rng, (0, 3), dtype), (3, 0), desc="empty"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), (2, 6), desc="transposed (copies)"),
], _reshape_ref, optable="reshape", method="reshape", errors=lambda rng: [
    _ex("wrong number of elements", _f32(rng, (2, 3)), (4,), exc=ValueError,
        match=["reshape", "(2, 3)", "(4,)"]),
    _ex("two -1", _f32(rng, (2, 3)), (-1, -1), exc=ValueError, match=["reshape"]),
])


def _permute_ref(x, dims):
    return np.transpose(x, dims).copy()


_shape_op("permute", lambda dtype, rng: [
    Sample(_any(rng, (2, 3, 4), dtype), (2, 0, 1), desc="(2, 0, 1)"),
    Sample(_any(rng, (2, 3, 4), dtype), (-1, 0, 1), desc="negative dims"),
    Sample(_any(rng, (2, 3), dtype), (1, 0), desc="2-d"),
    Sample(_any(rng, (), dtype), (), desc="0-d"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), (1, 0), desc="transposed back"),
    Sample(_any(rng, (0, 2), dtype), (1, 0), desc="empty"),
], _permute_ref, optable="permute", aliases=("permute_dims",), errors=lambda rng: [
    _ex("too few dims", _f32(rng, (2, 3, 4)), (1, 0), exc=ValueError, match=["permute"]),
    _ex("repeated dim", _f32(rng, (2, 3)), (0, 0), exc=ValueError, match=["permute"]),
])


def _transpose_ref(x, d0, d1):
    return np.swapaxes(x, d0, d1).copy()


_shape_op("transpose", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), 0, 1, desc="2-d"),
    Sample(_any(rng, (2, 3, 4), dtype), 0, -1, desc="3-d, negative dim"),
    Sample(_any(rng, (2, 3, 4), dtype), 1, 1, desc="same dim"),
    Sample(_any(rng, (3, 4), dtype, "strided"), 0, 1, desc="strided"),
], _transpose_ref, optable="permute", method="transpose", aliases=("swapaxes",),
    errors=lambda rng: [_ex("dim out of range", _f32(rng, (2, 3)), 0, 2, exc=IndexError,
                            match=["transpose", "range"])])


def _squeeze_ref(x, dim=None):
    if dim is None:
        return np.squeeze(x).copy()
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    dims = tuple(d % max(x.ndim, 1) for d in dims if x.ndim and x.shape[d] == 1)
    return np.squeeze(x, axis=dims).copy() if dims else x.copy()


_shape_op("squeeze", lambda dtype, rng: [
    Sample(_any(rng, (1, 3, 1), dtype), desc="all size-1 dims"),
    Sample(_any(rng, (1, 3, 1), dtype), 0, desc="dim=0"),
    Sample(_any(rng, (1, 3, 1), dtype), dim=1, desc="a dim that is not 1 (no-op)"),
    Sample(_any(rng, (1, 3, 1), dtype), dim=(0, 2), desc="dims (0, 2)"),
    Sample(_any(rng, (), dtype), desc="0-d"),
    Sample(_any(rng, (1, 0), dtype), desc="empty"),
], _squeeze_ref, optable="reshape", method="squeeze", errors=lambda rng: [
    _ex("dim out of range", _f32(rng, (1, 3)), 2, exc=IndexError, match=["squeeze", "range"])])


def _unsqueeze_ref(x, dim=None, axis=None):
    return np.expand_dims(x, np_axis(dim, axis)).copy()


_shape_op("unsqueeze", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), 0, desc="dim=0"),
    Sample(_any(rng, (2, 3), dtype), -1, desc="dim=-1"),
    Sample(_any(rng, (2, 3), dtype), 1, desc="dim=1"),
    Sample(_any(rng, (), dtype), 0, desc="0-d"),
    Sample(_any(rng, (3, 2), dtype, "transposed"), 2, desc="transposed"),
], _unsqueeze_ref, optable="reshape", method="unsqueeze", aliases=(("expand_dims", axis_kw),),
    errors=lambda rng: [_ex("dim out of range", _f32(rng, (2, 3)), 4, exc=IndexError,
                            match=["unsqueeze", "range"])])


def _flatten_ref(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.size else \
        x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


_shape_op("flatten", lambda dtype, rng: [
    Sample(_any(rng, (2, 3, 4), dtype), desc="all"),
    Sample(_any(rng, (2, 3, 4), dtype), 1, desc="start_dim=1"),
    Sample(_any(rng, (2, 3, 4, 2), dtype), start_dim=1, end_dim=2, desc="start 1 end 2"),
    Sample(_any(rng, (), dtype), desc="0-d -> (1,)"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), desc="transposed"),
    Sample(_any(rng, (2, 0, 3), dtype), desc="empty"),
], _flatten_ref, optable="reshape", method="flatten")


def _expand_ref(x, *sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return np.broadcast_to(x, shape).copy()


_shape_op("Tensor.expand", lambda dtype, rng: [
    Sample(_any(rng, (3, 1), dtype), 3, 4, desc="(3, 1) -> (3, 4)"),
    Sample(_any(rng, (3,), dtype), 2, 3, desc="new leading dim"),
    Sample(_any(rng, (3, 1), dtype), (-1, 5), desc="-1 keeps a size"),
    Sample(_any(rng, (), dtype), 2, 2, desc="0-d"),
    Sample(_any(rng, (1, 3), dtype, "strided"), 2, 3, desc="strided"),
], _expand_ref, optable="expand", errors=lambda rng: [
    _ex("non-singleton dim differs", _f32(rng, (2, 3)), 4, 3, exc=ValueError,
        match=["expand", "(2, 3)", "(4, 3)"])])


def _broadcast_to_ref(x, shape):
    return np.broadcast_to(x, shape).copy()


_shape_op("broadcast_to", lambda dtype, rng: [
    Sample(_any(rng, (3, 1), dtype), (2, 3, 4), desc="(3, 1) -> (2, 3, 4)"),
    Sample(_any(rng, (), dtype), (2,), desc="0-d"),
    Sample(_any(rng, (1, 3), dtype, "strided"), (0, 3), desc="to empty"),
], _broadcast_to_ref, optable="expand", errors=lambda rng: [
    _ex("incompatible", _f32(rng, (2, 3)), (4, 3), exc=ValueError,
        match=["broadcast_to", "(2, 3)", "(4, 3)"])])


def _cat_ref(xs, dim=None, axis=None):
    d = np_axis(dim, axis)
    return np.concatenate(xs, axis=0 if d is None else d)


_shape_op("cat", lambda dtype, rng: [
    Sample([_any(rng, (2, 3), dtype), _any(rng, (1, 3), dtype)], desc="dim=0"),
    Sample([_any(rng, (2, 3), dtype), _any(rng, (2, 2), dtype), _any(rng, (2, 1), dtype)],
           dim=1, desc="three, dim=1"),
    Sample([_any(rng, (2, 3), dtype), _any(rng, (2, 3), dtype, "transposed")], dim=-1,
           desc="non-contiguous, dim=-1"),
    Sample([_any(rng, (0, 3), dtype), _any(rng, (2, 3), dtype)], desc="with an empty part"),
    Sample([_any(rng, (4,), dtype)], desc="a single tensor"),
    Sample((_any(rng, (2,), dtype), _any(rng, (3,), dtype)), desc="a tuple"),
], _cat_ref, optable="concat", aliases=(("concat", axis_kw),), errors=lambda rng: [
    _ex("other dims differ", [_f32(rng, (2, 3)), _f32(rng, (2, 4))], exc=ValueError,
        match=["cat", "(2, 3)", "(2, 4)"]),
    _ex("ranks differ", [_f32(rng, (2, 3)), _f32(rng, (3,))], exc=ValueError, match=["cat"]),
    _ex("no tensors", [], exc=ValueError, match=["cat"]),
])


def _stack_ref(xs, dim=None, axis=None):
    d = np_axis(dim, axis)
    return np.stack(xs, axis=0 if d is None else d)


_shape_op("stack", lambda dtype, rng: [
    Sample([_any(rng, (2, 3), dtype), _any(rng, (2, 3), dtype)], desc="dim=0"),
    Sample([_any(rng, (2, 3), dtype), _any(rng, (2, 3), dtype, "transposed")], dim=-1,
           desc="dim=-1 (new last dim)"),
    Sample([_any(rng, (), dtype), _any(rng, (), dtype), _any(rng, (), dtype)],
           desc="0-d -> (3,)"),
    Sample([_any(rng, (0, 2), dtype)], dim=1, desc="empty"),
], _stack_ref, optable="stack", errors=lambda rng: [
    _ex("shapes differ", [_f32(rng, (2, 3)), _f32(rng, (3, 2))], exc=ValueError,
        match=["stack", "(2, 3)", "(3, 2)"]),
])


def _split_ref(x, size_or_sections, dim=0):
    n = x.shape[dim]
    if isinstance(size_or_sections, int):
        bounds = list(range(size_or_sections, n, size_or_sections))
    else:
        bounds = list(np.cumsum(size_or_sections)[:-1])
    return tuple(p.copy() for p in np.split(x, bounds, axis=dim))


def _pieces_result(sample, dtype):
    return dtype  # applied to every piece


_shape_op("split", lambda dtype, rng: [
    Sample(_any(rng, (5, 3), dtype), 2, desc="size 2 of 5"),
    Sample(_any(rng, (5, 3), dtype), [1, 4], desc="sections [1, 4]"),
    Sample(_any(rng, (2, 6), dtype), 3, dim=1, desc="dim=1"),
    Sample(_any(rng, (4, 3), dtype, "transposed"), [1, 0, 2], dim=-1,
           desc="empty section, transposed"),
], _split_ref, method="split", result=_pieces_result, differentiable=True,
    errors=lambda rng: [_ex("sections do not add up", _f32(rng, (5, 3)), [1, 2],
                            exc=ValueError, match=["split", "5"])])


def _chunk_ref(x, chunks, dim=0):
    n = x.shape[dim]
    size = -(-n // chunks) if n else 0
    if size == 0:
        return tuple(np.split(x, chunks, axis=dim))
    return tuple(p.copy() for p in np.split(x, list(range(size, n, size)), axis=dim))


_shape_op("chunk", lambda dtype, rng: [
    Sample(_any(rng, (6, 2), dtype), 3, desc="even"),
    Sample(_any(rng, (5, 2), dtype), 3, desc="5 into 3 (sizes 2, 2, 1)"),
    Sample(_any(rng, (2, 6), dtype), 4, dim=1, desc="6 into 4 gives 3 chunks"),
    Sample(_any(rng, (3, 2), dtype, "transposed"), 2, dim=-1, desc="transposed"),
], _chunk_ref, method="chunk", result=_pieces_result, differentiable=True)


def _flip_ref(x, dims):
    return np.flip(x, axis=tuple(dims)).copy() if x.ndim else x.copy()


_shape_op("flip", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), (0,), desc="dim 0"),
    Sample(_any(rng, (2, 3, 4), dtype), (0, 2), desc="dims 0, 2"),
    Sample(_any(rng, (2, 3), dtype), [-1], desc="list, negative"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), (0, 1), desc="transposed"),
    Sample(_any(rng, (0, 3), dtype), (1,), desc="empty"),
], _flip_ref, optable="flip", method="flip")


def _roll_ref(x, shifts, dims=None):
    if dims is None:
        return np.roll(x, shifts)
    return np.roll(x, shifts, axis=dims)


_shape_op("roll", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), 2, desc="flattened"),
    Sample(_any(rng, (2, 3), dtype), 1, 1, desc="dim 1"),
    Sample(_any(rng, (2, 3, 4), dtype), (1, -2), (0, 2), desc="two dims"),
    Sample(_any(rng, (5,), dtype), -7, 0, desc="shift larger than the dim"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), 1, dims=0, desc="transposed"),
    Sample(_any(rng, (0, 2), dtype), 1, 0, desc="empty"),
], _roll_ref, optable="roll", method="roll")


def _tile_ref(x, dims):
    return np.tile(x, tuple(dims))


_shape_op("Tensor.repeat", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), 2, 1, desc="(2, 1)"),
    Sample(_any(rng, (3,), dtype), 2, 2, desc="adds a dim"),
    Sample(_any(rng, (), dtype), 3, desc="0-d"),
    Sample(_any(rng, (2, 3), dtype, "transposed"), 1, 2, desc="transposed"),
], lambda x, *dims: _tile_ref(x, dims[0] if len(dims) == 1 and isinstance(
    dims[0], (tuple, list)) else dims), optable="tile", errors=lambda rng: [
    _ex("fewer repeats than dims", _f32(rng, (2, 3)), 2, exc=ValueError, match=["repeat"])])

_shape_op("tile", lambda dtype, rng: [
    Sample(_any(rng, (2, 3), dtype), (2, 1), desc="(2, 1)"),
    Sample(_any(rng, (2, 3), dtype), (2,), desc="fewer reps than dims"),
    Sample(_any(rng, (3,), dtype), (2, 2), desc="more reps than dims"),
    Sample(_any(rng, (3, 2), dtype, "strided"), (1, 2), desc="strided"),
], _tile_ref, optable="tile", method="tile")


def _movedim_ref(x, source, destination):
    return np.moveaxis(x, source, destination).copy()


_shape_op("movedim", lambda dtype, rng: [
    Sample(_any(rng, (2, 3, 4), dtype), 0, 2, desc="0 -> 2"),
    Sample(_any(rng, (2, 3, 4), dtype), -1, 0, desc="-1 -> 0"),
    Sample(_any(rng, (2, 3, 4), dtype), (0, 1), (2, 0), desc="two dims"),
], _movedim_ref, optable="permute", method="movedim", aliases=("moveaxis",))


def _narrow_ref(x, dim, start, length):
    idx = [slice(None)] * x.ndim
    start = start % x.shape[dim] if start < 0 else start
    idx[dim] = slice(start, start + length)
    return x[tuple(idx)].copy()


_shape_op("narrow", lambda dtype, rng: [
    Sample(_any(rng, (4, 3), dtype), 0, 1, 2, desc="rows 1:3"),
    Sample(_any(rng, (4, 3), dtype), 1, 0, 3, desc="whole dim"),
    Sample(_any(rng, (4, 3), dtype), -1, 2, 0, desc="length 0"),
    Sample(_any(rng, (4, 3), dtype), 0, -2, 2, desc="negative start"),
    Sample(_any(rng, (3, 4), dtype, "transposed"), 1, 1, 2, desc="transposed"),
], _narrow_ref, optable="getitem", method="narrow", errors=lambda rng: [
    _ex("past the end", _f32(rng, (4, 3)), 0, 3, 2, exc=(IndexError, ValueError),
        match=["narrow"])])


def _tri_samples(dtype, rng):
    return [
        Sample(_any(rng, (3, 4), dtype), desc="3x4"),
        Sample(_any(rng, (3, 4), dtype), 1, desc="diagonal=1"),
        Sample(_any(rng, (4, 3), dtype), diagonal=-1, desc="diagonal=-1"),
        Sample(_any(rng, (2, 3, 3), dtype), desc="batched"),
        Sample(_any(rng, (3, 3), dtype, "transposed"), desc="transposed"),
        Sample(_any(rng, (0, 3), dtype), desc="empty"),
    ]


def _tri_ref(f):
    def ref(x, diagonal=0):
        return f(x, k=diagonal)
    return ref


for _name, _f in (("tril", np.tril), ("triu", np.triu)):
    _shape_op(_name, _tri_samples, _tri_ref(_f), optable=_name, method=_name,
              errors=(lambda n: lambda rng: [
                  _ex("1-d input", _f32(rng, (3,)), exc=ValueError, match=[n])])(_name))


# ================================================================================= indexing ===
def _getitem(pt, x, key):
    return x[key]


def _getitem_code(args, kwargs):
    from .harness import subscript_code
    return f"{args[0]!r}[{subscript_code(args[1])}]"


def _getitem_samples(dtype, rng):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(x((4, 3)), 1, desc="int"),
        Sample(x((4, 3)), -1, desc="negative int"),
        Sample(x((4, 3)), (1, 2), desc="two ints -> 0-d"),
        Sample(x((5, 3)), slice(1, None, 2), desc="slice with step"),
        Sample(x((4, 3)), (slice(None), slice(0, 2)), desc="slices"),
        Sample(x((2, 3)), (None, Ellipsis, 1), desc="None and Ellipsis"),
        Sample(x((4, 3)), _i64([2, 0, 2]), desc="index tensor"),
        Sample(x((4, 3)), (slice(None), _i64([[0, 1], [2, 0]])), desc="2-d index tensor"),
        Sample(x((4, 3)), (_i64([0, 3]), _i64([2, 1])), desc="two index tensors"),
        Sample(x((2, 3)), Arr(rng.random((2, 3)) < 0.5, role="mask"), desc="bool mask"),
        Sample(x((3, 2)), Arr(np.array([True, False, True]), role="mask"), desc="row mask"),
        Sample(x((4, 3), "transposed"), (slice(1, 3), 0), desc="transposed"),
        Sample(x(()), (), desc="0-d with ()"),
        Sample(x(()), Ellipsis, desc="0-d with ..."),
        Sample(x((0, 3)), slice(None), desc="empty"),
    ]


def _getitem_ref(x, key):
    return np.asarray(x[key]).copy()


def _getitem_errors(rng):
    return [
        _ex("int out of bounds", _f32(rng, (3, 2)), 5, exc=IndexError, match=["5"]),
        _ex("too many indices", _f32(rng, (3, 2)), (0, 0, 0), exc=IndexError, match=[]),
        _ex("index tensor out of bounds", _f32(rng, (3, 2)), _i64([0, 7]), exc=IndexError,
            match=["7"]),
        _ex("float index tensor", _f32(rng, (3, 2)), _f32(rng, (2,)),
            exc=(IndexError, TypeError), match=[]),
        _ex("mask of the wrong shape", _f32(rng, (3, 2)), _mask([True, False]),
            exc=IndexError, match=[]),
    ]


add(OpInfo("getitem", "indexing", func=_getitem, requires=("Tensor.__getitem__",),
           code=_getitem_code, samples=_getitem_samples, ref=_getitem_ref,
           errors=_getitem_errors, err_name="index", dtypes="any", rejects=()))


def _setitem(pt, x, key, value):
    x[key] = value
    return x


def _setitem_code(args, kwargs):
    from .harness import _code
    return f"{_getitem_code(args[:2], {})} = {_code(args[2])}\nout = {args[0]!r}"


def _setitem_samples(dtype, rng):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    s = scalar(rng, dtype)
    return [
        Sample(x((4, 3)), 1, s, desc="row = scalar"),
        Sample(x((4, 3)), (slice(None), 1), x((4,)), desc="column = tensor"),
        Sample(x((4, 3)), slice(0, 4, 2), x((3,)), desc="strided rows = broadcast row"),
        Sample(x((4, 3)), _i64([3, 0]), x((2, 3)), desc="index tensor"),
        Sample(x((2, 3)), Arr(rng.random((2, 3)) < 0.5, role="mask"), s, desc="mask = scalar"),
        Sample(x((4, 3), "transposed"), (0, slice(None)), s, desc="into a transposed view"),
        Sample(x(()), (), s, desc="0-d"),
        Sample(x((2, 3)), Ellipsis, x((3,)), desc="... = broadcast"),
    ]


def _setitem_ref(x, key, value):
    out = x.copy()
    out[key] = value
    return out


def _setitem_grad(pt, x, key, value):
    # a leaf that requires grad cannot be written in place: write into a copy in the graph
    return _setitem(pt, x.clone(), key, value)


def _setitem_grad_code(args, kwargs):
    return f"{args[0]!r} = {args[0]!r}.clone()\n" + _setitem_code(args, kwargs)


add(OpInfo("setitem", "indexing", func=_setitem, requires=("Tensor.__setitem__",),
           grad_func=_setitem_grad, grad_code=_setitem_grad_code,
           code=_setitem_code, samples=_setitem_samples, ref=_setitem_ref,
           result=lambda s, d: d, dtypes="any", rejects=(), err_name="index",
           errors=lambda rng: [
               _ex("value does not broadcast", _f32(rng, (4, 3)), 0, _f32(rng, (2,)),
                   exc=ValueError, match=["(2,)", "(3,)"]),
               _ex("int out of bounds", _f32(rng, (4, 3)), 9, 1.0, exc=IndexError,
                   match=["9"])]))


def _index_for(rng, shape, n, dim, unique=False):
    """Random int64 indices of ``shape`` with values in [0, n) (a permutation per column)."""
    if unique:
        perm = np.argsort(rng.random(shape[:dim] + (n,) + shape[dim + 1:]), axis=dim)
        sl = [slice(None)] * len(shape)
        sl[dim] = slice(0, shape[dim])
        return perm[tuple(sl)].astype(np.int64)
    return rng.integers(0, n, size=shape).astype(np.int64)


def _gather_samples(dtype, rng):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(x((3, 4)), 0, Arr(_index_for(rng, (2, 4), 3, 0), role="index"), desc="dim 0"),
        Sample(x((3, 4)), 1, Arr(_index_for(rng, (3, 6), 4, 1), role="index"),
               desc="dim 1, more indices than the dim"),
        Sample(x((3, 4)), -1, Arr(_index_for(rng, (2, 2), 4, 1), role="index"),
               desc="index smaller in another dim"),
        Sample(x((4, 3), "transposed"), 0, Arr(_index_for(rng, (2, 3), 4, 0), role="index"),
               desc="transposed"),
        Sample(x((3, 4)), 1, Arr(np.zeros((3, 0), np.int64), role="index"), desc="empty index"),
    ]


def _gather_ref(x, dim, index):
    dim = dim % x.ndim
    sl = tuple(slice(0, index.shape[d]) if d != dim else slice(None) for d in range(x.ndim))
    return np.take_along_axis(x[sl], index, axis=dim)


def _gather_errors(rng):
    return [
        _ex("index out of range", _f32(rng, (3, 4)), 0, _i64([[0, 5, 1, 1]]), exc=IndexError,
            match=["gather", "5"]),
        _ex("float index", _f32(rng, (3, 4)), 0, _f32(rng, (1, 4)), exc=TypeError,
            match=["gather"]),
        _ex("index of another rank", _f32(rng, (3, 4)), 0, _i64([0, 1]), exc=ValueError,
            match=["gather"]),
    ]


add(OpInfo("gather", "indexing", samples=_gather_samples, ref=_gather_ref,
           errors=_gather_errors, method="gather"))


def _scatter_samples(dtype, rng, unique=True):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    idx = lambda shape, n, dim: Arr(_index_for(rng, shape, n, dim, unique),  # noqa: E731
                                    role="index")
    return [
        Sample(x((3, 4)), 0, idx((2, 4), 3, 0), x((2, 4)), desc="dim 0"),
        Sample(x((3, 4)), 1, idx((3, 2), 4, 1), x((3, 3)), desc="dim 1, src larger"),
        Sample(x((4, 3), "transposed"), -1, idx((2, 2), 3, 1), x((2, 2)),
               desc="transposed, index smaller"),
        Sample(x((3, 4)), 0, idx((2, 4), 3, 0), scalar(rng, dtype), desc="scalar src"),
    ]


def _scatter_ref(accumulate):
    def ref(x, dim, index, src):
        out = x.copy()
        dim = dim % x.ndim
        src = np.broadcast_to(np.asarray(src, dtype=x.dtype), index.shape) if np.ndim(src) == 0 \
            else src
        for pos in np.ndindex(*index.shape):
            tgt = list(pos)
            tgt[dim] = index[pos]
            if accumulate:
                out[tuple(tgt)] += src[pos]
            else:
                out[tuple(tgt)] = src[pos]
        return out
    return ref


def _scatter_errors(name):
    def errors(rng):
        return [_ex("index out of range", _f32(rng, (3, 4)), 0, _i64([[0, 3, 1, 1]]),
                    _f32(rng, (1, 4)), exc=IndexError, match=[name, "3"]),
                _ex("float index", _f32(rng, (3, 4)), 0, _f32(rng, (1, 4)), _f32(rng, (1, 4)),
                    exc=TypeError, match=[name])]
    return errors


add(OpInfo("scatter", "indexing", samples=_scatter_samples, ref=_scatter_ref(False),
           errors=_scatter_errors("scatter"), method="scatter"))
add(OpInfo("scatter_add", "indexing",
           samples=lambda dtype, rng: [s for s in _scatter_samples(dtype, rng, unique=False)
                                       if not isinstance(s.args[3], (int, float, complex))],
           ref=_scatter_ref(True), errors=_scatter_errors("scatter_add"), method="scatter_add"))


def _scatter_reduce_samples(dtype, rng, grid=True):
    idx = lambda shape, n, dim: Arr(_index_for(rng, shape, n, dim), role="index")  # noqa: E731
    out = []
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        # products stay in range, sums are exact on the grid; the gradient checks take
        # values off the grid, where amax / amin have no ties (a tie is a kink)
        dom = "prod" if reduce == "prod" else ("grid" if grid else "any")
        x = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, dom), lay)  # noqa
        for include_self in (True, False):
            out.append(Sample(x((3, 4)), 0, idx((5, 4), 3, 0), x((5, 4)), reduce,
                              include_self=include_self,
                              desc=f"{reduce}, repeated indices, include_self={include_self}"))
        out.append(Sample(x((4, 3), "transposed"), -1, idx((2, 5), 3, 1), x((3, 6)), reduce,
                          desc=f"{reduce}, transposed, src larger, rows 2-3 untouched"))
    return out


def _scatter_reduce_ref(x, dim, index, src, reduce, include_self=True):
    dim = dim % x.ndim
    groups: Dict[tuple, list] = {}
    for pos in np.ndindex(*index.shape):
        tgt = list(pos)
        tgt[dim] = index[pos]
        groups.setdefault(tuple(tgt), []).append(src[pos])
    out = x.copy()
    for tgt, vals in groups.items():
        v = np.array(([x[tgt]] if include_self else []) + vals)
        if reduce == "mean":
            out[tgt] = v.sum() / len(v) if v.dtype.kind in "fc" else v.sum() // len(v)
        else:
            out[tgt] = {"sum": np.sum, "prod": np.prod, "amax": np.max, "amin": np.min}[
                reduce](v)
    return out


def _scatter_reduce_errors(rng):
    return [_ex("index out of range", _f32(rng, (3, 4)), 0, _i64([[0, 3, 1, 1]]),
                _f32(rng, (1, 4)), "amax", exc=IndexError, match=["scatter_reduce", "3"]),
            _ex("unknown reduce", _f32(rng, (3, 4)), 0, _i64([[0, 1, 1, 1]]),
                _f32(rng, (1, 4)), "median", exc=ValueError,
                match=["scatter_reduce", "median", "amax"]),
            _ex("src of another dtype", _f32(rng, (3, 4)), 0, _i64([[0, 1, 1, 1]]),
                Arr(make(rng, (1, 4), "float64")), "sum", exc=TypeError,
                match=["scatter_reduce", "float64", "float32"])]


add(OpInfo("scatter_reduce", "indexing", samples=_scatter_reduce_samples,
           ref=_scatter_reduce_ref, errors=_scatter_reduce_errors, method="scatter_reduce",
           grad_samples=lambda dtype, rng: _scatter_reduce_samples(dtype, rng, grid=False)))


def _index_select_samples(dtype, rng):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(x((4, 3)), 0, _i64([3, 0, 3]), desc="dim 0, repeated"),
        Sample(x((4, 3)), 1, _i64([2]), desc="dim 1"),
        Sample(x((4, 3)), -1, _i64([], ), desc="empty index"),
        Sample(x((3, 4), "transposed"), 0, _i64([1, 2]), desc="transposed"),
    ]


add(OpInfo("index_select", "indexing", optable="getitem", dtypes="any", rejects=(),
           samples=_index_select_samples, ref=lambda x, dim, index: np.take(x, index, axis=dim),
           method="index_select", errors=lambda rng: [
               _ex("index out of range", _f32(rng, (4, 3)), 0, _i64([4]), exc=IndexError,
                   match=["index_select", "4"]),
               _ex("2-d index", _f32(rng, (4, 3)), 0, _i64([[0]]), exc=ValueError,
                   match=["index_select"])]))


def _masked_fill_samples(dtype, rng):
    x = lambda shape, lay="contiguous": _any(rng, shape, dtype, lay)  # noqa: E731
    mk = lambda shape: Arr(rng.random(shape) < 0.5, role="mask")  # noqa: E731
    return [
        Sample(x((2, 3)), mk((2, 3)), scalar(rng, dtype), desc="same shape"),
        Sample(x((2, 3)), mk((3,)), scalar(rng, dtype), desc="broadcast mask"),
        Sample(x((3, 2), "transposed"), mk((3, 2)), scalar(rng, dtype), desc="transposed"),
        Sample(x(()), mk(()), scalar(rng, dtype), desc="0-d"),
        Sample(x((2, 3)), mk((2, 3)), x(()), desc="0-d tensor value"),
    ]


add(OpInfo("masked_fill", "indexing", samples=_masked_fill_samples,
           ref=lambda x, mask, value: np.where(mask, np.asarray(value, dtype=x.dtype), x),
           result=lambda s, d: d, method="masked_fill", errors=lambda rng: [
               _ex("float mask", _f32(rng, (2, 3)), _f32(rng, (2, 3)), 0.0, exc=TypeError,
                   match=["masked_fill", "bool"]),
               _ex("mask does not broadcast", _f32(rng, (2, 3)), _mask([True, False]), 0.0,
                   exc=ValueError, match=["masked_fill", "(2, 3)", "(2,)"])]))


def _masked_select_ref(x, mask):
    xb, mb = np.broadcast_arrays(x, mask)
    return xb[mb]


add(OpInfo("masked_select", "indexing", optable="getitem", dtypes="any", rejects=(),
           samples=lambda dtype, rng: [
               Sample(_any(rng, (2, 3), dtype), Arr(rng.random((2, 3)) < 0.5, role="mask"),
                      desc="same shape"),
               Sample(_any(rng, (2, 3), dtype), Arr(rng.random((3,)) < 0.5, role="mask"),
                      desc="broadcast mask"),
               Sample(_any(rng, (3, 2), dtype, "transposed"),
                      Arr(np.zeros((3, 2), bool), role="mask"), desc="nothing selected")],
           ref=_masked_select_ref, method="masked_select", errors=lambda rng: [
               _ex("float mask", _f32(rng, (2, 3)), _f32(rng, (2, 3)), exc=TypeError,
                   match=["masked_select", "bool"])]))


def _take_along_ref(x, indices, dim=None):
    if dim is None:
        return np.take_along_axis(x.reshape(-1), indices.reshape(-1), axis=0)
    return np.take_along_axis(x, indices, axis=dim)


add(OpInfo("take_along_dim", "indexing", optable="gather", dtypes="any", rejects=(),
           samples=lambda dtype, rng: [
               Sample(_any(rng, (3, 4), dtype), Arr(_index_for(rng, (3, 2), 4, 1),
                                                    role="index"), dim=1, desc="dim 1"),
               Sample(_any(rng, (3, 4), dtype), Arr(_index_for(rng, (1, 4), 3, 0),
                                                    role="index"), dim=0,
                      desc="broadcast index"),
               Sample(_any(rng, (3, 4), dtype), Arr(rng.integers(0, 12, (5,)), role="index"),
                      desc="flattened (dim=None)"),
               Sample(_any(rng, (4, 3), dtype, "transposed"),
                      Arr(np.argsort(rng.random((4, 3)), axis=0), role="index"), dim=0,
                      desc="transposed, argsort indices")],
           ref=_take_along_ref))


def _nonzero_samples(dtype, rng):
    z = lambda shape: Arr(make(rng, shape, dtype, "small") * (rng.random(shape) < 0.6)  # noqa
                          if P.kind(dtype) != "b" else rng.random(shape) < 0.5)
    return [
        Sample(z((3, 4)), desc="2-d"),
        Sample(z((5,)), desc="1-d"),
        Sample(z((2, 2, 3)), desc="3-d"),
        Sample(Arr(np.zeros((2, 3), dtype=dtype)), desc="no nonzero"),
        Sample(z((0, 3)), desc="empty"),
        Sample(Arr(np.ones((), dtype=dtype)), desc="0-d"),
        Sample(z((3, 4)), as_tuple=True, desc="as_tuple"),
    ]


def _nonzero_ref(x, as_tuple=False):
    if as_tuple:
        return tuple(np.asarray(i, dtype=np.int64) for i in np.nonzero(np.atleast_1d(x)))
    return np.argwhere(x).astype(np.int64)


def _nonzero_result(sample, dtype):
    return "int64"


add(OpInfo("nonzero", "indexing", samples=_nonzero_samples, ref=_nonzero_ref,
           result=_nonzero_result, method="nonzero"))


def _one_hot_samples(dtype, rng):
    return [
        Sample(_i64([0, 2, 1]), desc="num_classes inferred"),
        Sample(_i64([[0, 2], [1, 1]]), 4, desc="num_classes=4, 2-d"),
        Sample(_i64(3), 5, desc="0-d"),
        Sample(Arr(np.zeros((0,), np.int64), role="index"), 3, desc="empty"),
    ]


def _one_hot_ref(x, num_classes=-1):
    n = int(x.max()) + 1 if num_classes == -1 else num_classes
    return np.eye(n, dtype=np.int64)[x]


add(OpInfo("one_hot", "indexing", func=("one_hot", "nn.functional.one_hot"), optable=None,
           dtypes=("int64",), rejects=(), samples=_one_hot_samples, ref=_one_hot_ref,
           result=lambda s, d: "int64", errors=lambda rng: [
               _ex("class out of range", _i64([0, 5]), 3, exc=(ValueError, IndexError),
                   match=["one_hot"]),
               _ex("float input", _f32(rng, (2,)), 3, exc=TypeError, match=["one_hot"])]))


# -- sort family: several correct index answers on ties, so the check is by property -------
def _sortable(rng, shape, dtype, distinct=False):
    if distinct and P.kind(dtype) != "b":
        n = int(np.prod(shape))
        vals = rng.permutation(n) - n // 2
        if P.kind(dtype) == "u":
            vals = vals + n // 2
        if P.kind(dtype) == "f":
            vals = vals / 4.0
        return vals.reshape(shape).astype(dtype)
    return make(rng, shape, dtype, "small")


def _sort_samples(dtype, rng):
    s = lambda shape, lay="contiguous", distinct=False: Arr(  # noqa: E731
        _sortable(rng, shape, dtype, distinct), lay)
    out = [
        Sample(s((5,)), desc="1-d with ties"),
        Sample(s((3, 4)), dim=0, desc="dim 0"),
        Sample(s((3, 4)), descending=True, desc="descending"),
        Sample(s((3, 6)), stable=True, desc="stable with ties"),
        Sample(s((3, 6)), descending=True, stable=True, desc="stable descending"),
        Sample(s((4, 3), "transposed"), dim=-1, desc="transposed"),
        Sample(s(()), desc="0-d"),
        Sample(s((0, 3)), desc="empty"),
    ]
    if P.kind(dtype) == "f":
        out.append(Sample(Arr(special(dtype)), desc="nan sorts last"))
    return out


def _sort_ref(x, dim=-1, descending=False, stable=False):
    """torch.sort: NaN is the largest value; equal keys keep their order when stable."""
    if x.ndim == 0:
        return x.copy(), np.asarray(0, dtype=np.int64)
    k = x.astype(np.int64) if x.dtype.kind in "bu" else x
    if k.dtype.kind == "f":
        nan = np.isnan(k)
        k = np.where(nan, 0, k)
    else:
        nan = np.zeros(k.shape, dtype=bool)
    if descending:
        idx = np.lexsort((-k, ~nan), axis=dim)      # NaN first, then decreasing
    else:
        idx = np.lexsort((k, nan), axis=dim)        # increasing, NaN last
    return np.take_along_axis(x, idx, axis=dim), idx.astype(np.int64)


def _check_sort(out, ref, sample, dtype, ctx):
    """Values must equal the reference; indices must gather the values (exact when stable)."""
    values_ref, idx_ref = ref
    problems = ctx.compare_tuple(out, (values_ref, idx_ref), (dtype, "int64"),
                                 exact_indices=sample.kwargs.get("stable", False),
                                 index_pos=1, source=sample.args[0].value,
                                 dim=sample.kwargs.get("dim", -1))
    return problems


add(OpInfo("sort", "indexing", samples=_sort_samples, ref=_sort_ref,
           result=lambda s, d: (d, "int64"), check=_check_sort, method="sort",
           errors=lambda rng: [_ex("dim out of range", _f32(rng, (2, 3)), dim=3,
                                   exc=IndexError, match=["sort", "range"])]))


def _argsort_ref(x, dim=-1, descending=False, stable=False):
    return _sort_ref(x, dim, descending, stable)[1]


def _check_argsort(out, ref, sample, dtype, ctx):
    return ctx.compare_indices(out, ref, sample.args[0].value, sample.kwargs.get("dim", -1),
                               exact=sample.kwargs.get("stable", False))


add(OpInfo("argsort", "indexing", optable="sort",
           samples=lambda dtype, rng: [s for s in _sort_samples(dtype, rng)
                                       if s.desc != "nan sorts last"],
           ref=_argsort_ref, result=lambda s, d: "int64", check=_check_argsort,
           method="argsort"))


def _topk_samples(dtype, rng):
    s = lambda shape, lay="contiguous": Arr(_sortable(rng, shape, dtype, True), lay)  # noqa
    return [
        Sample(s((6,)), 3, desc="k=3"),
        Sample(s((3, 5)), 2, dim=0, desc="dim 0"),
        Sample(s((3, 5)), 2, largest=False, desc="smallest"),
        Sample(s((4, 3), "transposed"), 3, desc="transposed, k = size"),
        Sample(s((3, 4)), 0, desc="k=0"),
    ]


def _topk_ref(x, k, dim=-1, largest=True, sorted=True):
    v, i = _sort_ref(x, dim, descending=largest, stable=True)
    sl = [slice(None)] * x.ndim
    sl[dim] = slice(0, k)
    return v[tuple(sl)], i[tuple(sl)]


def _check_topk(out, ref, sample, dtype, ctx):
    return ctx.compare_tuple(out, ref, (dtype, "int64"), exact_indices=False, index_pos=1,
                             source=sample.args[0].value, dim=sample.kwargs.get("dim", -1))


add(OpInfo("topk", "indexing", samples=_topk_samples, ref=_topk_ref,
           result=lambda s, d: (d, "int64"), check=_check_topk, method="topk",
           errors=lambda rng: [_ex("k larger than the dim", _f32(rng, (2, 3)), 4,
                                   exc=(ValueError, IndexError), match=["topk"])]))


def _unique_samples(dtype, rng):
    s = lambda shape: Arr(make(rng, shape, dtype, "small"))  # noqa: E731
    return [
        Sample(s((3, 4)), desc="values only"),
        Sample(s((6,)), return_inverse=True, desc="inverse"),
        Sample(s((2, 3)), return_counts=True, desc="counts"),
        Sample(s((2, 3)), return_inverse=True, return_counts=True, desc="both"),
        Sample(Arr(make(rng, (3, 4), dtype, "small"), "transposed"), return_inverse=True,
               desc="transposed"),
        Sample(s((0,)), desc="empty"),
    ]


def _unique_ref(x, sorted=True, return_inverse=False, return_counts=False):
    # NaNs are distinct values (torch.unique, the Array API)
    u, inv, cnt = np.unique(x.reshape(-1), return_inverse=True, return_counts=True,
                            equal_nan=False)
    out = [u]
    if return_inverse:
        out.append(inv.reshape(x.shape).astype(np.int64))
    if return_counts:
        out.append(cnt.astype(np.int64))
    return out[0] if len(out) == 1 else tuple(out)


def _unique_result(sample, dtype):
    n = 1 + bool(sample.kwargs.get("return_inverse")) + bool(sample.kwargs.get("return_counts"))
    return dtype if n == 1 else (dtype,) + ("int64",) * (n - 1)


add(OpInfo("unique", "indexing", samples=_unique_samples, ref=_unique_ref,
           result=_unique_result, method="unique"))


def _searchsorted_samples(dtype, rng):
    seq = lambda n: np.sort(make(rng, (n,), dtype, "small"))  # noqa: E731  (ties likely)
    val = lambda shape: make(rng, shape, dtype, "small")  # noqa: E731
    unsorted = make(rng, (6,), dtype, "small")
    rows = np.sort(make(rng, (2, 5), dtype, "small"), axis=-1)
    out = [
        Sample(Arr(seq(6)), Arr(val((4,))), desc="1-d"),
        Sample(Arr(seq(6)), Arr(val((2, 3))), side="right", desc="side='right', 2-d values"),
        Sample(Arr(seq(5)), Arr(val((3,))), right=True, desc="right=True (PyTorch)"),
        Sample(Arr(seq(5)), Arr(val((3, 2)), "transposed"), desc="transposed values"),
        Sample(Arr(seq(5)), Arr(val(())), desc="0-d value"),
        Sample(Arr(seq(5)), Arr(val((0,))), desc="no values"),
        Sample(Arr(seq(0)), Arr(val((3,))), desc="empty sequence"),
        Sample(Arr(rows), Arr(val((2, 3))), desc="batched rows (PyTorch)"),
        Sample(Arr(rows, "strided"), Arr(val((2, 3))), side="right", desc="strided rows"),
        Sample(Arr(seq(5)), scalar(rng, dtype, "small"), desc="Python number value"),
        Sample(Arr(unsorted), Arr(val((4,))),
               sorter=Arr(np.argsort(unsorted, kind="stable"), role="index"),
               desc="sorter"),
    ]
    if P.kind(dtype) == "f":
        sp = special(dtype)
        out.append(Sample(Arr(np.sort(sp)), Arr(sp), desc="nan sorts last, -0 == 0"))
    return out


def _searchsorted_ref(x1, x2, side="left", sorter=None, right=False):
    side = "right" if right or side == "right" else "left"
    if sorter is not None:
        x1 = np.take_along_axis(x1, sorter, axis=-1)
    x2 = np.asarray(x2)
    if x1.ndim == 1:
        return np.asarray(np.searchsorted(x1, x2, side=side)).astype(np.int64)
    out = np.empty(x2.shape, dtype=np.int64)
    for i in np.ndindex(*x1.shape[:-1]):
        out[i] = np.searchsorted(x1[i], x2[i], side=side)
    return out


def _searchsorted_errors(rng):
    seq = _f32(rng, (4,))
    return [
        _ex("0-d sorted sequence", _f32(rng, ()), _f32(rng, (2,)), exc=ValueError,
            match=["searchsorted", "0-d"]),
        _ex("batched rows, other leading dims", _f32(rng, (2, 4)), _f32(rng, (3, 2)),
            exc=ValueError, match=["searchsorted", "(2, 4)", "(3, 2)"]),
        _ex("bad side", seq, _f32(rng, (2,)), side="middle", exc=ValueError,
            match=["searchsorted", "middle"]),
        _ex("sorter of another shape", seq, _f32(rng, (2,)), sorter=_i64([0, 1]),
            exc=ValueError, match=["searchsorted", "sorter", "(4,)", "(2,)"]),
        _ex("sorter out of range", seq, _f32(rng, (2,)), sorter=_i64([0, 1, 2, 4]),
            exc=IndexError, match=["searchsorted", "sorter", "4"]),
    ]


add(OpInfo("searchsorted", "indexing", samples=_searchsorted_samples, ref=_searchsorted_ref,
           errors=_searchsorted_errors))


def _isin_samples(dtype, rng):
    m = lambda shape: make(rng, shape, dtype, "small")  # noqa: E731
    out = [
        Sample(Arr(m((3, 4))), Arr(m((5,))), desc="2-d elements, 1-d test set"),
        Sample(Arr(m((6,))), Arr(m((2, 3))), desc="2-d test set"),
        Sample(Arr(m((3, 4)), "transposed"), Arr(m((4,)), "strided"), invert=True,
               desc="invert, views"),
        Sample(Arr(m(())), Arr(m((3,))), desc="0-d elements"),
        Sample(Arr(m((4,))), Arr(m((0,))), desc="empty test set"),
        Sample(Arr(m((4,))), Arr(m((0,))), invert=True, desc="empty test set, invert"),
        Sample(Arr(m((0, 2))), Arr(m((3,))), desc="no elements"),
        Sample(Arr(m((5,))), scalar(rng, dtype, "small"), desc="Python number test set"),
    ]
    if P.kind(dtype) == "f":
        sp = special(dtype)
        out.append(Sample(Arr(sp), Arr(sp[::2].copy()), desc="nan is in nothing, -0 == 0"))
    return out


def _isin_ref(x1, x2, assume_unique=False, invert=False):
    return np.isin(x1, x2, invert=invert)


add(OpInfo("isin", "indexing", samples=_isin_samples, ref=_isin_ref, scalar_operands=True,
           errors=lambda rng: [_ex("two Python numbers", 1, 2, exc=TypeError,
                                   match=["isin"])]))


# ================================================================================= creation ===
def _size_result(sample, dtype):
    return sample.extra.get("result", dtype)


def _creation(name, samples, ref, optable, errors=None, dtypes=None, rejects="auto",
              result=_size_result, **kw):
    return add(OpInfo(name, "creation", optable=optable, samples=samples, ref=ref,
                      errors=errors, dtypes=dtypes, rejects=rejects, result=result, **kw))


def _fill_value(dtype):
    return {"b": True, "u": 7, "i": -3, "f": 2.5, "c": 1.5 - 2j}[P.kind(dtype)]


def _zeros_samples(value):
    def samples(dtype, rng):
        out = [Sample(2, 3, dtype=DType(dtype), desc="varargs"),
               Sample((4,), dtype=DType(dtype), desc="a tuple"),
               Sample((), dtype=DType(dtype), desc="0-d"),
               Sample((0, 2), dtype=DType(dtype), desc="empty")]
        if dtype == "float32":
            out.append(Sample(2, 2, desc="default dtype", extra={"result": "float32"}))
        return out
    return samples


def _const_ref(value):
    def ref(*size, dtype=None):
        if len(size) == 1 and isinstance(size[0], tuple):
            size = size[0]
        return np.full(size, value, dtype=dtype or np.float32)
    return ref


def _size_errors(name, *extra):
    def errors(rng):
        return [_ex("negative size", *((-1,) + extra), exc=ValueError, match=[name, "-1"]),
                _ex("a float size", *((2.5,) + extra), exc=TypeError, match=[name])]
    return errors


_creation("zeros", _zeros_samples(0), _const_ref(0), "full", _size_errors("zeros"))
_creation("ones", _zeros_samples(1), _const_ref(1), "full", _size_errors("ones"))


def _full_samples(dtype, rng):
    v = _fill_value(dtype)
    out = [Sample((2, 3), v, dtype=DType(dtype), desc="(2, 3)"),
           Sample((), v, dtype=DType(dtype), desc="0-d"),
           Sample((0,), v, dtype=DType(dtype), desc="empty")]
    if dtype == "float32":
        out += [Sample((2,), 1.5, desc="float fill -> default float",
                       extra={"result": "float32"}),
                Sample((2,), 3, desc="int fill -> int64", extra={"result": "int64"}),
                Sample((2,), True, desc="bool fill -> bool", extra={"result": "bool"})]
    return out


def _full_ref(size, fill, dtype=None):
    if dtype is None:
        dtype = {bool: np.bool_, int: np.int64, float: np.float32, complex: np.complex64}[
            type(fill)]
    return np.full(size, fill, dtype=dtype)


_creation("full", _full_samples, _full_ref, "full",
          errors=lambda rng: [_ex("negative size", (2, -1), 1.0, exc=ValueError,
                                  match=["full", "-1"])])


def _like_samples(dtype, rng):
    return [Sample(_any(rng, (2, 3), dtype), desc="(2, 3)"),
            Sample(_any(rng, (), dtype), desc="0-d"),
            Sample(_any(rng, (3, 2), dtype, "transposed"), desc="transposed"),
            Sample(_any(rng, (2, 3), dtype), dtype=DType("float64"), desc="dtype=float64",
                   extra={"result": "float64"})]


def _like_ref(value):
    def ref(x, dtype=None):
        return np.full(x.shape, value)
    return ref


for _name, _v in (("zeros_like", 0), ("ones_like", 1)):
    add(OpInfo(_name, "creation", optable="full", samples=_like_samples, ref=_like_ref(_v),
               result=_size_result, dtypes="any", rejects=()))


def _arange_samples(dtype, rng):
    d = DType(dtype)
    k = P.kind(dtype)
    out = [Sample(5, dtype=d, desc="end only"),
           Sample(2, 9, 3, dtype=d, desc="start, end, step"),
           Sample(3, 3, dtype=d, desc="empty")]
    if k != "u":
        out.append(Sample(5, -4, -2, dtype=d, desc="negative step"))
    if k == "f":
        out.append(Sample(0.0, 1.0, 0.25, dtype=d, desc="float step"))
        out.append(Sample(-1.0, 1.0, 0.3, dtype=d, desc="step that does not divide"))
    if dtype == "float32":
        out += [Sample(4, desc="ints -> int64", extra={"result": "int64"}),
                Sample(0.0, 2.0, 0.5, desc="floats -> default float",
                       extra={"result": "float32"}),
                Sample(1, 2.5, desc="mixed -> default float", extra={"result": "float32"})]
    return out


def _arange_ref(*args, dtype=None):
    return np.arange(*args, dtype=np.float64 if any(isinstance(a, float) for a in args)
                     else None).astype(dtype or np.float64)


_creation("arange", _arange_samples, _arange_ref, "arange", errors=lambda rng: [
    _ex("step 0", 0, 10, 0, exc=ValueError, match=["arange"])])


def _linspace_samples(dtype, rng):
    d = DType(dtype)
    lo = 0.0 if dtype == "uint8" else -2.0
    out = [Sample(0.0, 1.0, 5, dtype=d, desc="0..1 in 5"),
           Sample(lo, 3.0, 7, dtype=d, desc=f"{lo:g}..3 in 7"),
           Sample(1.0, 1.0, 1, dtype=d, desc="one step"),
           Sample(0.0, 1.0, 0, dtype=d, desc="zero steps"),
           Sample(3.0, lo + 1, 4, dtype=d, desc="decreasing")]
    if dtype == "float32":
        out.append(Sample(0, 10, 11, desc="default dtype", extra={"result": "float32"}))
    return out


def _linspace_ref(start, end, steps, dtype=None):
    v = np.linspace(start, end, steps)
    if dtype is not None and dtype.kind in "iu":
        return np.trunc(v).astype(np.int64)  # integer dtypes truncate (as PyTorch)
    return v


# integer dtypes are allowed (values computed in floating point and truncated, as PyTorch)
_creation("linspace", _linspace_samples, _linspace_ref, "linspace",
          dtypes=tuple(d for d in P.DTYPE_NAMES if d != "bool"), rejects=("bool",),
          errors=lambda rng: [
    _ex("negative steps", 0.0, 1.0, -1, exc=ValueError, match=["linspace"])])


def _eye_samples(dtype, rng):
    d = DType(dtype)
    out = [Sample(3, dtype=d, desc="3x3"),
           Sample(2, 4, dtype=d, desc="2x4"),
           Sample(0, dtype=d, desc="0x0")]
    if dtype == "float32":
        out.append(Sample(2, desc="default dtype", extra={"result": "float32"}))
    return out


def _eye_ref(n, m=None, dtype=None):
    return np.eye(n, m)


_creation("eye", _eye_samples, _eye_ref, "eye", errors=lambda rng: [
    _ex("negative n", -1, exc=ValueError, match=["eye", "-1"])])


def _logspace_samples(dtype, rng):
    d = DType(dtype)
    return [Sample(0.0, 2.0, 5, dtype=d, desc="10**0 .. 10**2"),
            Sample(-1.0, 1.0, 4, base=2.0, dtype=d, desc="base 2"),
            Sample(1.0, 1.0, 1, dtype=d, desc="one step")]


def _logspace_ref(start, end, steps, base=10.0, dtype=None):
    return base ** np.linspace(start, end, steps)


_creation("logspace", _logspace_samples, _logspace_ref, "logspace",
          dtypes=("float16", "float32", "float64"), rejects=("bool",))


def _check_empty(out, ref, sample, dtype, ctx):
    """Values are unspecified: only the dtype, shape and device are checked."""
    problems = ctx.compare_any(out, np.zeros(ref.shape), None)
    problems = [p for p in problems if "values differ" not in p]
    if not problems and out.dtype.name != dtype:
        problems.append(f"dtype is {out.dtype.name}, expected {dtype}")
    return problems


_creation("empty", lambda dtype, rng: [Sample(2, 3, dtype=DType(dtype), desc="varargs"),
                                       Sample((0, 4), dtype=DType(dtype), desc="empty")],
          lambda *size, dtype=None: np.zeros(size[0] if isinstance(size[0], tuple) else size),
          "empty", check=_check_empty, rejects=())


# ============================================================================ casting (to) ===
def _to_samples(dtype, rng):
    out = []
    for target in P.DTYPE_NAMES:
        if P.kind(dtype) == "c" and P.kind(target) != "c":
            continue  # complex -> real discards the imaginary part: not part of the contract
        dom = "nonneg" if P.kind(target) == "u" else "any"
        out.append(Sample(Arr(make(rng, (2, 3), dtype, dom)), DType(target),
                          desc=f"to {target}", extra={"result": target}))
    out.append(Sample(Arr(make(rng, (3, 2), dtype, "any"), "transposed"), DType("float64"),
                      desc="transposed", extra={"result": "float64"}))
    out.append(Sample(Arr(make(rng, (), dtype, "any")), DType("int64"), desc="0-d",
                      extra={"result": "int64"}))
    if P.kind(dtype) == "f":
        out.append(Sample(Arr(np.array([-2.7, -0.5, 0.5, 2.7]).astype(dtype)), DType("int32"),
                          desc="float -> int truncates toward zero", extra={"result": "int32"}))
    return out


def _to_ref(x, dtype):
    if x.dtype.kind in "fc" and dtype.kind in "iub" and dtype.kind != "b":
        return np.trunc(x.real).astype(np.int64)
    if dtype.kind == "b":
        return x != 0
    return x


add(OpInfo("Tensor.to", "transfer", optable="astype", dtypes="any", rejects=(),
           samples=_to_samples, ref=_to_ref, result=_size_result))


# ======================================================================== in-place methods ===
def _inplace(pt, x, meth, *rest):
    if meth.startswith("__"):
        import operator
        out = getattr(operator, meth.strip("_"))(x, *rest)
    else:
        out = getattr(x, meth)(*rest)
    if out is not x:
        raise AssertionError(f"x.{meth}(...) returned {type(out).__name__}, not x itself")
    return x


def _inplace_code(args, kwargs):
    x, meth, rest = args[0], args[1], args[2:]
    if meth.startswith("__"):
        sym = {"__iadd__": "+=", "__imul__": "*=", "__isub__": "-="}[meth]
        return f"{x!r} {sym} {code_args(rest, {})}\nout = {x!r}"
    return f"{x!r}.{meth}({code_args(rest, {})})\nout = {x!r}"


_INPLACE_REF = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply,
                "__iadd__": np.add, "__imul__": np.multiply, "__isub__": np.subtract,
                "exp_": np.exp, "neg_": np.negative, "clamp_": None, "abs_": np.abs}


def _inplace_ref(x, meth, *rest):
    if meth == "clamp_":
        return np.clip(x, *rest)
    return _INPLACE_REF[meth](x, *rest)


def _inplace_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "small"), lay)  # noqa
    sc = scalar(rng, dtype, "small")
    out = [Sample(m((2, 3)), "add_", m((2, 3)), desc="add_ tensor"),
           Sample(m((2, 3)), "add_", m((3,)), desc="add_ broadcast"),
           Sample(m((2, 3)), "mul_", sc, desc="mul_ scalar"),
           Sample(m((3, 2), "transposed"), "add_", m((3, 2)), desc="add_ into a transposed view"),
           Sample(m((2, 4), "strided"), "mul_", m((2, 4)), desc="mul_ into a strided view"),
           Sample(m(()), "__iadd__", sc, desc="0-d +="),
           Sample(m((2, 3)), "__imul__", m((1, 3)), desc="*= broadcast"),
           Sample(m((2, 3)), "sub_", m((2, 3)), desc="sub_"),
           Sample(m((2, 3)), "__isub__", sc, desc="-= scalar")]
    if P.kind(dtype) in "fc":
        out.append(Sample(m((2, 3)), "exp_", desc="exp_"))
    if P.kind(dtype) in "iuf":
        lo, hi = _clamp_bounds(dtype)
        out.append(Sample(m((2, 3), "transposed"), "clamp_", lo, hi, desc="clamp_"))
    return out


def _inplace_grad(pt, x, meth, *rest):
    # in place on a copy in the graph (a leaf that requires grad cannot be written in place)
    return _inplace(pt, x.clone(), meth, *rest)


def _inplace_grad_code(args, kwargs):
    return f"{args[0]!r} = {args[0]!r}.clone()\n" + _inplace_code(args, kwargs)


# in-place ops on tensors in the graph are recorded (as PyTorch): differentiable
add(OpInfo("inplace", "elementwise", func=_inplace, code=_inplace_code, differentiable=True,
           grad_func=_inplace_grad, grad_code=_inplace_grad_code,
           dtypes="numeric", rejects=(), samples=_inplace_samples, ref=_inplace_ref,
           result=lambda s, d: d, err_name="_", errors=lambda rng: [
               _ex("result dtype does not fit", Arr(np.arange(3)), "div_", Arr(np.ones(3)),
                   exc=TypeError, match=["div_", "float64", "int64"]),
               _ex("broadcast result larger than x", _f32(rng, (3,)), "add_",
                   _f32(rng, (2, 3)), exc=ValueError, match=["add_", "(3,)", "(2, 3)"])]))


def _clone_samples(dtype, rng):
    return unary(dtype, rng, "any")


add(OpInfo("clone", "shape", optable="copy", dtypes="any", rejects=(), samples=_clone_samples,
           ref=lambda x: x.copy(), method="clone"))


# ==================================================================================== nn ===
# composites of polyten.nn.functional (activations and linear layers)
def _softmax_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    big = np.array([[60.0, 59.0, -np.inf, 1.0], [-3.0, 0.0, 2.0, -np.inf]])
    return [
        Sample(m((5,)), 0, desc="1-D"),
        Sample(m((2, 3, 4)), dim=1, desc="dim=1"),
        Sample(m((2, 3, 4)), dim=-1, desc="dim=-1"),
        Sample(m((3, 4), "transposed"), dim=0, desc="transposed"),
        Sample(m((2, 6), "strided"), dim=1, desc="strided"),
        # row lengths where a GPU backend changes strategy (a warp per row, a block per row)
        Sample(m((5, 40)), dim=1, desc="rows longer than a warp"),
        Sample(m((3, 1500)), dim=-1, desc="rows longer than 1024"),
        Sample(Arr(big.astype(dtype)), dim=1, desc="large values and -inf entries"),
        Sample(m(()), 0, desc="0-d"),
        Sample(m((0, 3)), dim=1, desc="empty"),
    ]


def _np_softmax(x, dim, log=False):
    if x.ndim == 0:
        return np.zeros(()) if log else np.ones(())
    if x.size == 0:
        return x.copy()
    z = x - np.max(x, axis=dim, keepdims=True)
    s = np.sum(np.exp(z), axis=dim, keepdims=True)
    return z - np.log(s) if log else np.exp(z) / s


def _softmax_errors(name):
    def errors(rng):
        return [_ex("dim out of range", _f32(rng, (2, 3)), 2, exc=IndexError,
                    match=[name, "range"]),
                _ex("dim missing", _f32(rng, (2, 3)), exc=TypeError, match=[name, "dim"]),
                _ex("a list instead of a tensor", [1.0, 2.0], 0, exc=TypeError, match=[name])]
    return errors


add(OpInfo("nn.functional.softmax", "nn", optable="softmax",
           ref=lambda x, dim: _np_softmax(x, dim), samples=_softmax_samples, tol="loose",
           errors=_softmax_errors("softmax")))
add(OpInfo("nn.functional.log_softmax", "nn", optable="log_softmax",
           ref=lambda x, dim: _np_softmax(x, dim, log=True), samples=_softmax_samples,
           tol="loose", errors=_softmax_errors("log_softmax")))


# pointwise activation composites: gelu, silu, leaky_relu, elu (selu, celu), softplus
def _act_samples(**kwargs):
    def samples(dtype, rng):
        out = unary(dtype, rng, "any", special_values=True, **kwargs)
        big = np.array([1e4, -1e4, 60.0, -60.0, 25.0, -25.0], dtype=np.float64)
        if dtype == "float16":
            big[:2] = [6e4, -6e4]
        out.append(Sample(Arr(big.astype(dtype)), desc="large |x|", **kwargs))
        return out
    return samples


def _gelu_samples(dtype, rng):
    out = _act_samples()(dtype, rng)
    for smp in _act_samples(approximate="tanh")(dtype, rng):
        smp.desc = f"tanh, {smp.desc}"
        out.append(smp)
    return out


def _erf_ref(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu_ref(x, approximate="none"):
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
            return 0.5 * x * (1.0 + np.tanh(inner))
        return 0.5 * x * (1.0 + _erf_ref(x / math.sqrt(2.0)))


def _silu_ref(x):
    with np.errstate(invalid="ignore", over="ignore"):
        return x / (1.0 + np.exp(-x))


def _elu_ref(x, alpha=1.0, scale=1.0, input_scale=1.0):
    with np.errstate(invalid="ignore", over="ignore"):
        return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) * input_scale))


def _softplus_ref(x, beta=1.0, threshold=20.0):
    with np.errstate(invalid="ignore", over="ignore"):
        bx = beta * x
        return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
# the special values (nan, inf, -0) and the huge ones are checked for values, not gradients
_ACT_GRAD_SKIP = ("nan/inf/-0", "large |x|", "tanh, nan/inf/-0", "tanh, large |x|")
for _name, _opt, _kw, _ref in (
        ("nn.functional.gelu", "gelu", None, _gelu_ref),
        ("nn.functional.silu", "silu", {}, _silu_ref),
        ("nn.functional.leaky_relu", "leaky_relu", {"negative_slope": 0.2},
         lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope)),
        ("nn.functional.elu", "elu", {"alpha": 0.5}, _elu_ref),
        ("nn.functional.selu", "elu", {}, lambda x: _elu_ref(x, *_SELU)),
        ("nn.functional.celu", "elu", {"alpha": 2.0},
         lambda x, alpha=1.0: _elu_ref(x, alpha, 1.0, 1.0 / alpha)),
        ("nn.functional.softplus", "softplus", {"beta": 2.0, "threshold": 10.0},
         _softplus_ref)):
    add(OpInfo(_name, "nn", optable=_opt, ref=_ref,
               samples=_gelu_samples if _kw is None else _act_samples(**_kw),
               grad_skip=_ACT_GRAD_SKIP, errors=_unary_error(_name.rsplit(".", 1)[1])))


def _linear_samples(dtype, rng):
    m = lambda shape, lay="contiguous": _mat(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(m((4, 3)), m((2, 3)), m((2,)), desc="matrix input, bias"),
        Sample(m((4, 3)), m((2, 3)), desc="no bias"),
        Sample(m((2, 3, 3)), m((5, 3)), m((5,)), desc="batched input"),
        Sample(m((3,)), m((2, 3)), m((2,)), desc="vector input"),
        Sample(m((4, 3), "transposed"), m((2, 3), "strided"), m((2,)),
               desc="non-contiguous"),
        Sample(m((0, 3)), m((2, 3)), m((2,)), desc="empty batch"),
    ]


def _linear_ref(x, weight, bias=None):
    out = x @ weight.T
    return out if bias is None else out + bias


def _linear_errors(rng):
    return [
        _ex("in_features differ", _f32(rng, (2, 5)), _f32(rng, (4, 3)), exc=ValueError,
            match=["linear", "(2, 5)", "(4, 3)"]),
        _ex("1-D weight", _f32(rng, (2, 3)), _f32(rng, (3,)), exc=ValueError,
            match=["linear", "2-D"]),
        _ex("bias of the wrong shape", _f32(rng, (2, 3)), _f32(rng, (4, 3)), _f32(rng, (3,)),
            exc=ValueError, match=["linear", "bias", "(4,)"]),
    ]


add(OpInfo("nn.functional.linear", "nn", optable="linear", ref=_linear_ref,
           samples=_linear_samples, tol="linalg", errors=_linear_errors))


def _nll_samples(dtype, rng, weights=True):
    def logp(shape, lay="contiguous"):
        v = make(rng, shape, "float64", "any")
        cd = 1 if len(shape) > 1 else 0
        v = v - np.log(np.exp(v).sum(axis=cd, keepdims=True))
        return Arr(v.astype(dtype), lay)
    w = Arr(np.array([0.5, 1.0, 2.0, 0.25]).astype(dtype))
    out = [
        Sample(logp((5, 4)), _i64([0, 3, 1, 1, 2]), desc="(N, C), mean"),
        Sample(logp((5, 4)), _i64([0, 3, -100, 1, 2]), reduction="sum",
               desc="ignored target, sum"),
        Sample(logp((5, 4)), _i64([0, 3, 2, 1, 2]), ignore_index=2, reduction="none",
               desc="ignore_index=2, none"),
        Sample(logp((4,)), _i64(2), desc="unbatched (C,)"),
        Sample(logp((2, 4, 3)), _i64([[0, 1, 3], [2, 2, -100]]), desc="(N, C, d)"),
        Sample(logp((5, 4), "transposed"), _i64([3, 0, 1, 3, 1]), desc="transposed"),
        Sample(logp((0, 4)), _i64(np.zeros(0, dtype=np.int64)), reduction="sum",
               desc="empty batch"),
    ]
    if weights:
        out += [Sample(logp((5, 4)), _i64([0, 3, -100, 1, 2]), weight=w,
                       desc="class weights, mean"),
                Sample(logp((2, 4, 3)), _i64([[0, 1, 3], [2, 2, 0]]), weight=w,
                       reduction="none", desc="(N, C, d), class weights")]
    return out


def _nll_ref(x, target, weight=None, ignore_index=-100, reduction="mean"):
    cd = 1 if x.ndim > 1 else 0
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    picked = np.squeeze(np.take_along_axis(x, np.expand_dims(t, cd), cd), cd)
    w = valid * (1.0 if weight is None else weight[t])
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum())
    with np.errstate(invalid="ignore"):
        return np.asarray(loss.sum() / w.sum())


def _nll_errors(rng):
    return [
        _ex("target out of range", _f32(rng, (3, 4)), _i64([0, 4, 1]), exc=IndexError,
            match=["nll_loss", "4", "out of bounds"]),
        _ex("target of the wrong shape", _f32(rng, (3, 4)), _i64([0, 1]), exc=ValueError,
            match=["nll_loss", "(3,)", "(2,)"]),
        _ex("floating target", _f32(rng, (3, 4)), _f32(rng, (3,)), exc=TypeError,
            match=["nll_loss", "float32"]),
        _ex("weight of the wrong length", _f32(rng, (3, 4)), _i64([0, 1, 2]),
            weight=_f32(rng, (3,)), exc=ValueError, match=["nll_loss", "weight", "(3,)"]),
    ]


add(OpInfo("nn.functional.nll_loss", "nn", optable="nll_loss", ref=_nll_ref,
           samples=_nll_samples, result=lambda s, d: d, tol="loose", errors=_nll_errors,
           grad_samples=lambda dtype, rng: _nll_samples(dtype, rng, weights=False)))


# nn.functional.embedding_bag (its 'max' over a 1-D input: the op table's segment_argmax)
def _ebag_samples(dtype, rng):
    w = lambda lay="contiguous": Arr(make(rng, (10, 4), dtype, "any"), lay)  # noqa: E731
    idx = _i64([1, 2, 4, 5, 4, 3, 2, 9])  # index 4 twice in one bag: a tie of equal rows
    return [
        Sample(idx, w(), _i64([0, 3, 5]), mode="max", desc="max, offsets"),
        Sample(idx, w(), _i64([0, 4, 4, 6]), mode="max", desc="max, an empty bag"),
        Sample(idx, w(), _i64([0, 3, 5, 7]), mode="max", include_last_offset=True,
               desc="max, include_last_offset (the last bag runs to the end)"),
        Sample(_i64([1, 0, 4, 0, 0, 3, 0, 9]), w(), _i64([0, 2, 3, 3, 5]), mode="max",
               padding_idx=0, desc="max, padding_idx (a bag of padding only)"),
        Sample(idx, w("transposed"), _i64([0, 3, 5]), mode="max", desc="max, transposed weight"),
        Sample(idx, w(), _i64([0, 3, 5]), mode="sum", desc="sum"),
        Sample(idx, w(), _i64([0, 4, 4, 6]), mode="mean", desc="mean, an empty bag"),
        Sample(_i64([[1, 2, 4], [4, 3, 9]]), w(), None, mode="max", desc="2-d input, max"),
    ]


def _ebag_ref(input, weight, offsets=None, mode="mean", include_last_offset=False,
              padding_idx=None):
    if input.ndim == 2:
        bags = list(input)
    else:  # PyTorch's: each bag runs to the next start, the last one to the end of input
        starts = offsets[:-1] if include_last_offset else offsets
        ends = np.append(starts[1:], len(input))
        bags = [input[s:e] for s, e in zip(starts, ends)]
    out = []
    for b in bags:
        if padding_idx is not None:
            b = b[b != padding_idx]
        rows = weight[b]
        out.append(np.zeros(weight.shape[1]) if len(b) == 0 else
                   rows.sum(0) if mode == "sum" else rows.mean(0) if mode == "mean" else
                   rows.max(0))
    return np.stack(out)


def _ebag_errors(rng):
    w = _f32(rng, (10, 4))
    return [
        _ex("1-d input without offsets", _i64([1, 2]), w, exc=ValueError,
            match=["embedding_bag", "offsets"]),
        _ex("unknown mode", _i64([1, 2]), w, _i64([0]), mode="median", exc=ValueError,
            match=["embedding_bag", "median"]),
    ]


def _ebag_grad_samples(dtype, rng):
    w = Arr(make(rng, (6, 3), dtype, "any"))  # small enough for finite differences
    idx = _i64([1, 2, 4, 5, 4, 3, 2, 0])
    return [Sample(idx, w, _i64([0, 3, 3, 5]), mode=m, desc=f"{m}, an empty bag")
            for m in ("max", "sum", "mean")]


add(OpInfo("nn.functional.embedding_bag", "nn", optable="segment_argmax", ref=_ebag_ref,
           samples=_ebag_samples, errors=_ebag_errors, result=lambda s, d: d, rejects=(),
           differentiable=True, grad_samples=_ebag_grad_samples))


def _ce_ref(x, target, weight=None, ignore_index=-100, reduction="mean",
            label_smoothing=0.0):
    cd = 1 if x.ndim > 1 else 0
    z = x - x.max(axis=cd, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=cd, keepdims=True))
    if target.dtype.kind == "f":  # class probabilities
        C = x.shape[cd]
        tgt = target * (1 - label_smoothing) + label_smoothing / C
        wb = 1.0 if weight is None else weight.reshape((-1,) + (1,) * (x.ndim - cd - 1))
        per = -(logp * tgt * wb).sum(axis=cd)
        return per if reduction == "none" else np.asarray(
            per.sum() if reduction == "sum" else per.sum() / max(x.size // C, 1))
    return _nll_ref(logp, target, weight, ignore_index, reduction)


def _ce_samples(dtype, rng):
    out = [Sample(Arr(s.args[0].value.astype(dtype), s.args[0].layout), *s.args[1:],
                  desc=s.desc, **s.kwargs) for s in _nll_samples(dtype, rng)]
    probs = make(rng, (3, 4), "float64", "any")
    probs = np.exp(probs) / np.exp(probs).sum(1, keepdims=True)
    out.append(Sample(Arr(make(rng, (3, 4), dtype, "any")), Arr(probs.astype(dtype)),
                      desc="class probabilities"))
    for n_cls in (100, 1500):  # past a GPU backend's thread-per-row and warp-per-row sizes
        out.append(Sample(Arr(make(rng, (4, n_cls), dtype, "any")),
                          _i64(rng.integers(0, n_cls, 4)), desc=f"{n_cls} classes"))
    out.append(Sample(Arr(make(rng, (2, 100, 3), dtype, "any")),
                      _i64(rng.integers(0, 100, (2, 3))), desc="(N, C, d), 100 classes"))
    return out


add(OpInfo("nn.functional.cross_entropy", "nn", optable="cross_entropy", ref=_ce_ref,
           samples=_ce_samples, dtypes="real_floating", rejects=(), result=lambda s, d: d,
           tol="loose", differentiable=True, errors=lambda rng: [
               _ex("class indices of the input's shape", _f32(rng, (4, 3)),
                   _i64(np.zeros((4, 3), dtype=np.int64)), exc=ValueError,
                   match=["cross_entropy", "(4,)", "(4, 3)"]),
               _ex("target out of range", _f32(rng, (3, 4)), _i64([0, 5, 1]),
                   exc=IndexError, match=["cross_entropy", "5", "out of bounds"])],
           grad_samples=lambda dtype, rng: [s for s in _ce_samples(dtype, rng)
                                            if "weight" not in s.kwargs]))


def _ctc_ref(log_probs, targets, input_lengths, target_lengths, reduction="mean"):
    """CTC in float64, one sample at a time: the alpha recursion over the extended labels in
    log space (np.logaddexp)."""
    losses = []
    for n, (T_n, S_n) in enumerate(zip(input_lengths, target_lengths)):
        ext = [0]
        for c in targets[n, :S_n]:
            ext += [int(c), 0]
        alpha = np.full(len(ext), -np.inf)
        alpha[0] = 0.0  # a virtual start before frame 0
        for t in range(T_n):
            prev = alpha.copy()
            for s in range(len(ext)):
                a = prev[s]
                if s >= 1:
                    a = np.logaddexp(a, prev[s - 1])
                if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                    a = np.logaddexp(a, prev[s - 2])
                alpha[s] = a + log_probs[t, n, ext[s]]
        end = alpha[-1] if S_n == 0 else np.logaddexp(alpha[-1], alpha[-2])
        losses.append(-end)
    losses = np.asarray(losses)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return np.asarray(losses.sum())
    return np.asarray((losses / np.maximum(np.asarray(target_lengths), 1)).mean())


def _ctc_samples(dtype, rng):
    out = []
    for T, N, C, S, il, tl, red in ((6, 2, 4, 3, (6, 4), (3, 2), "mean"),
                                    (8, 3, 5, 3, (8, 8, 3), (3, 0, 1), "sum"),
                                    (5, 2, 3, 2, (5, 5), (2, 2), "none")):
        z = make(rng, (T, N, C), "float64", "any")
        lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        targets = rng.integers(1, C, (N, S))
        if S > 1:
            targets[0, 1] = targets[0, 0]  # a repeated label: the skip rule
        out.append(Sample(Arr(lp.astype(dtype)), Arr(targets.astype(np.int64), role="index"),
                          il, tl, reduction=red, desc=f"T={T} N={N} C={C}, {red}"))
    return out


add(OpInfo("nn.functional.ctc_loss", "nn", optable="ctc_alpha", ref=_ctc_ref,
           samples=_ctc_samples, dtypes="real_floating", rejects=(), result=lambda s, d: d,
           tol="loose", differentiable=True, errors=lambda rng: [
               _ex("a target equal to the blank", Arr(np.log(np.full((4, 1, 3), 1 / 3))),
                   _i64([[0, 1]]), (4,), (2,), exc=ValueError, match=["ctc_loss", "blank"]),
               _ex("input longer than log_probs", Arr(np.log(np.full((4, 1, 3), 1 / 3))),
                   _i64([[1, 2]]), (5,), (2,), exc=ValueError,
                   match=["ctc_loss", "input_lengths", "5"])]))


# nn.functional.scaled_dot_product_attention without attn_mask, with the leading dims of query,
# key and value equal and one dtype: the op table's fused composite (dropout_p=0 only: dropout
# is random).  E = 7 and E = 3 make the default scale 1/sqrt(E) no power of two.
def _sdpa_ref(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
              enable_gqa=False):
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ np.swapaxes(k, -1, -2)) * s
    if is_causal:  # query i attends to keys j <= i (the top-left aligned lower triangle)
        L, S = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((L, S), dtype=bool)), scores, -np.inf)
    return _np_softmax(scores, -1) @ v


def _sdpa_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [
        Sample(m((2, 3, 5, 7)), m((2, 3, 6, 7)), m((2, 3, 6, 4)), desc="4-d, E=7"),
        Sample(m((3, 4, 5)), m((3, 6, 5)), m((3, 6, 3)), desc="3-d"),
        Sample(m((4, 3)), m((5, 3)), m((5, 2)), desc="2-d (no batch dims)"),
        Sample(m((2, 3, 4)), m((2, 6, 4)), m((2, 6, 3)), is_causal=True, desc="causal, L < S"),
        Sample(m((2, 6, 4)), m((2, 3, 4)), m((2, 3, 5)), is_causal=True, desc="causal, L > S"),
        Sample(m((1, 2, 5, 3)), m((1, 2, 5, 3)), m((1, 2, 5, 3)), is_causal=True,
               desc="causal, L == S"),
        Sample(m((2, 4, 6)), m((2, 5, 6)), m((2, 5, 3)), scale=0.3, desc="scale=0.3"),
        Sample(m((2, 3, 4, 5)), m((2, 3, 6, 5), "mT"), m((2, 3, 6, 4)), desc="key mT"),
        Sample(m((2, 4, 5), "mT"), m((2, 6, 5), "strided"), m((2, 6, 3), "transposed"),
               desc="query mT, key strided, value transposed"),
        # row lengths where a GPU backend changes strategy (a warp per row, a block per row)
        Sample(m((2, 5, 8)), m((2, 40, 8)), m((2, 40, 8)), desc="rows longer than a warp"),
        Sample(m((2, 40, 8)), m((2, 40, 8)), m((2, 40, 3)), is_causal=True,
               desc="causal, 40 keys"),
        Sample(m((2, 3, 8)), m((2, 1100, 8)), m((2, 1100, 4)), desc="rows longer than 1024"),
    ]


def _sdpa_grad_samples(dtype, rng):
    # at most 32 elements in q, k and v together (gradients.MAX_INPUT_ELEMENTS)
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "small"), lay)  # noqa: E731
    return [
        Sample(m((1, 2, 3)), m((1, 4, 3)), m((1, 4, 2)), desc="3-d, E=3"),
        Sample(m((1, 2, 2, 2)), m((1, 2, 3, 2)), m((1, 2, 3, 2)), desc="4-d"),
        Sample(m((2, 3)), m((4, 3)), m((4, 2)), is_causal=True, desc="causal, L < S"),
        Sample(m((4, 3)), m((2, 3)), m((2, 3)), is_causal=True, desc="causal, L > S"),
        Sample(m((1, 3, 2)), m((1, 4, 2)), m((1, 4, 3)), scale=0.3, desc="scale=0.3"),
        Sample(m((1, 2, 3)), m((1, 4, 3), "mT"), m((1, 4, 2), "strided"),
               desc="key mT, value strided"),
    ]


def _sdpa_errors(rng):
    op = "scaled_dot_product_attention"
    return [
        _ex("query and key of different embedding sizes", _f32(rng, (2, 3, 4)),
            _f32(rng, (2, 5, 3)), _f32(rng, (2, 5, 4)), exc=ValueError,
            match=[op, "(2, 3, 4)", "(2, 5, 3)"]),
        _ex("key and value of different sequence lengths", _f32(rng, (2, 3, 4)),
            _f32(rng, (2, 5, 4)), _f32(rng, (2, 6, 4)), exc=ValueError,
            match=[op, "(2, 5, 4)", "(2, 6, 4)"]),
        _ex("1-d query", _f32(rng, (4,)), _f32(rng, (3, 4)), _f32(rng, (3, 4)),
            exc=ValueError, match=[op, "query", "(4,)"]),
    ]


add(OpInfo("nn.functional.scaled_dot_product_attention", "nn",
           optable="scaled_dot_product_attention", ref=_sdpa_ref, samples=_sdpa_samples,
           dtypes="real_floating", result=lambda s, d: d, tol="loose", differentiable=True,
           # integer and bool inputs raise TypeError; complex ones are composed of matmul and
           # softmax (no fused kernel), so they are not refused
           rejects=tuple(d for d in P.DTYPE_NAMES if P.kind(d) in "biu"),
           grad_samples=_sdpa_grad_samples, errors=_sdpa_errors))


# --------------------------------------------------------------------------------------------
def covered_op_table_names() -> set:
    return {o.optable for o in OPDB.values() if o.optable}


def uncovered_ops() -> list:
    """Op-table ops no OpInfo dispatches to (random / transfer ops have dedicated tests)."""
    done = covered_op_table_names()
    # to_host, from_host: core, but covered by the transfer tests; index_check: the core calls
    # it on backends with deferred checks, where every index and target error input covers it
    return [n for n, o in OPS.items() if n not in done and o.tier not in ("random", "transfer")
            and n not in ("to_host", "from_host", "index_check")]


# --------------------------------------------------------------- nn: normalisation ---------
# composites layer_norm / batch_norm (polyten.nn.functional._norm)
def _ln_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [
        Sample(m((4, 5)), (5,), m((5,)), m((5,)), desc="(N, D), weight and bias"),
        Sample(m((2, 3, 4)), (3, 4), desc="two normalized dims, no affine"),
        Sample(m((2, 3, 4)), 4, m((4,)), eps=1e-3, desc="weight only, eps=1e-3"),
        Sample(m((4, 5), "transposed"), [5], m((5,)), m((5,)), desc="transposed"),
        Sample(m((3, 1500)), (1500,), m((1500,)), m((1500,)), desc="rows longer than 1024"),
        Sample(m((0, 5)), (5,), m((5,)), m((5,)), desc="empty batch"),
    ]


def _ln_ref(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    axes = tuple(range(x.ndim - k, x.ndim))
    if x.size == 0:
        return x.copy()
    xc = x - x.mean(axis=axes, keepdims=True)
    out = xc / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


add(OpInfo("nn.functional.layer_norm", "nn", optable="layer_norm", ref=_ln_ref,
           samples=_ln_samples, result=lambda s, d: d, tol="loose", errors=lambda rng: [
               _ex("normalized_shape not the trailing dims", _f32(rng, (2, 3)), (4,),
                   exc=ValueError, match=["layer_norm", "(4,)", "(2, 3)"]),
               _ex("weight of the wrong shape", _f32(rng, (2, 3)), (3,), _f32(rng, (2,)),
                   exc=ValueError, match=["layer_norm", "weight", "(3,)"])]))


def _bn_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    pos = lambda shape: Arr(np.abs(make(rng, shape, dtype, "any")) + 0.5)  # noqa: E731
    return [
        Sample(m((4, 3)), None, None, m((3,)), m((3,)), training=True,
               desc="(N, C), batch statistics"),
        Sample(m((2, 3, 4)), None, None, m((3,)), m((3,)), True, desc="(N, C, L)"),
        Sample(m((2, 3, 2, 2)), None, None, training=True, eps=1e-3, desc="no affine"),
        Sample(m((4, 3), "transposed"), None, None, m((3,)), None, True, desc="transposed"),
        Sample(m((3, 2, 20, 20)), None, None, m((2,)), m((2,)), True,
               desc="channels of more than 1024 elements"),
        Sample(m((4, 3)), m((3,)), pos((3,)), m((3,)), m((3,)), training=False,
               desc="eval mode: running statistics"),
    ]


def _bn_ref(x, running_mean, running_var, weight=None, bias=None, training=False,
            momentum=0.1, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    cs = (x.shape[1],) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    else:
        mean, var = running_mean.reshape(cs), running_var.reshape(cs)
    out = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(cs)
    return out if bias is None else out + bias.reshape(cs)


add(OpInfo("nn.functional.batch_norm", "nn", optable="batch_norm", ref=_bn_ref,
           samples=_bn_samples, result=lambda s, d: d, tol="loose", errors=lambda rng: [
               _ex("one value per channel in training", _f32(rng, (1, 3)), None, None,
                   training=True, exc=ValueError,
                   match=["batch_norm", "Expected more than 1 value per channel"]),
               _ex("weight of the wrong shape", _f32(rng, (4, 3)), None, None,
                   _f32(rng, (2,)), training=True, exc=ValueError,
                   match=["batch_norm", "weight", "(3,)"])]))


# ------------------------------------------------------- nn: convolution and max-pooling ---
# composites conv / conv_transpose / max_pool (polyten.nn.functional._conv, _pool); the
# references loop over kernel offsets in NumPy float64 (never over output positions)
def _np_pairs(padding, kernel, dilation):
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                for k, d in zip(kernel, dilation)]
    p = (padding,) * len(kernel) if isinstance(padding, int) else tuple(padding)
    return [(v, v) for v in p]


def _np_nt(v, m):
    return (v,) * m if isinstance(v, int) else tuple(v)


def _np_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    m = weight.ndim - 2
    unbatched = x.ndim == m + 1
    if unbatched:
        x = x[None]
    kernel = weight.shape[2:]
    s, d = _np_nt(stride, m), _np_nt(dilation, m)
    xp = np.pad(x, [(0, 0), (0, 0)] + _np_pairs(padding, kernel, d))
    out = tuple((p - dd * (k - 1) - 1) // ss + 1
                for p, k, ss, dd in zip(xp.shape[2:], kernel, s, d))
    n, c = x.shape[:2]
    o = weight.shape[0]
    res = np.zeros((n, o) + out)
    cg, og = c // groups, o // groups
    for kk in np.ndindex(*kernel):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(i * dd, i * dd + ss * (q - 1) + 1, ss) for i, dd, ss, q in
            zip(kk, d, s, out))]
        for g in range(groups):
            w = weight[(slice(g * og, (g + 1) * og), slice(None)) + kk]
            res[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...",
                                                     win[:, g * cg:(g + 1) * cg], w)
    if bias is not None:
        res += bias.reshape((o,) + (1,) * m)
    return res[0] if unbatched else res


def _conv2d_samples(dtype, rng):
    m = lambda shape, lay="contiguous": _mat(rng, shape, dtype, lay)  # noqa: E731
    return [
        Sample(m((2, 3, 5, 4)), m((4, 3, 3, 2)), m((4,)), desc="bias, valid"),
        Sample(m((2, 3, 6, 5)), m((4, 3, 3, 3)), None, 2, 1, desc="stride 2, padding 1"),
        Sample(m((1, 4, 5, 6)), m((4, 2, 2, 3)), m((4,)), 1, "same", (2, 1), 2,
               desc="'same', dilation, groups"),
        Sample(m((3, 5, 5)), m((2, 3, 3, 3)), desc="unbatched"),
        Sample(m((2, 3, 5, 4), "transposed"), m((2, 3, 2, 2)), desc="non-contiguous input"),
        Sample(m((0, 3, 5, 4)), m((2, 3, 2, 2)), m((2,)), desc="empty batch"),
    ]


def _conv_errors(rng):
    return [
        _ex("channel mismatch", _f32(rng, (1, 4, 5, 5)), _f32(rng, (2, 3, 3, 3)),
            exc=ValueError, match=["conv2d", "4 channels", "expects 3", "(1, 4, 5, 5)"]),
        _ex("kernel larger than the padded input", _f32(rng, (1, 3, 2, 2)),
            _f32(rng, (2, 3, 3, 3)), exc=ValueError, match=["conv2d", "(2 x 2)", "(3 x 3)"]),
        _ex("3-D weight", _f32(rng, (1, 3, 5, 5)), _f32(rng, (2, 3, 3)), exc=ValueError,
            match=["conv2d", "weight", "4-D"]),
        _ex("'same' with stride 2", _f32(rng, (1, 3, 5, 5)), _f32(rng, (2, 3, 3, 3)), None, 2,
            "same", exc=ValueError, match=["conv2d", "same", "stride"]),
    ]


add(OpInfo("nn.functional.conv2d", "nn", optable="conv", ref=_np_conv,
           samples=_conv2d_samples, dtypes="real_floating", rejects=("bool", "complex64"),
           tol="linalg", errors=_conv_errors))
add(OpInfo("nn.functional.conv1d", "nn", optable="conv", ref=_np_conv, dtypes="real_floating",
           rejects=(), tol="linalg", samples=lambda dtype, rng: [
               Sample(_mat(rng, (2, 3, 7), dtype), _mat(rng, (4, 3, 3), dtype),
                      _mat(rng, (4,), dtype), 2, 1, desc="stride 2, padding 1"),
               Sample(_mat(rng, (4, 6), dtype), _mat(rng, (2, 2, 2), dtype), None, 1, "same",
                      2, 2, desc="unbatched, 'same', dilation, groups")]))


def _np_conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """The adjoint of _np_conv: scatter each input element's kernel-weighted block."""
    m = weight.ndim - 2
    unbatched = x.ndim == m + 1
    if unbatched:
        x = x[None]
    kernel = weight.shape[2:]
    s, d = _np_nt(stride, m), _np_nt(dilation, m)
    p, op = _np_nt(padding, m), _np_nt(output_padding, m)
    n, cin = x.shape[:2]
    cog = weight.shape[1]
    cig = cin // groups
    insize = x.shape[2:]
    full = tuple((i - 1) * ss + dd * (k - 1) + 1 + q
                 for i, k, ss, dd, q in zip(insize, kernel, s, d, op))
    res = np.zeros((n, cog * groups) + full)
    for kk in np.ndindex(*kernel):
        key = (slice(None), slice(None)) + tuple(
            slice(i * dd, i * dd + ss * (q - 1) + 1, ss) for i, dd, ss, q in
            zip(kk, d, s, insize))
        for g in range(groups):
            w = weight[(slice(g * cig, (g + 1) * cig), slice(None)) + kk]
            res[(slice(None), slice(g * cog, (g + 1) * cog)) + key[2:]] += np.einsum(
                "nc...,co->no...", x[:, g * cig:(g + 1) * cig], w)
    res = res[(slice(None), slice(None)) + tuple(slice(pp, f - pp) for pp, f in zip(p, full))]
    if bias is not None:
        res = res + bias.reshape((-1,) + (1,) * m)
    return res[0] if unbatched else res


add(OpInfo("nn.functional.conv_transpose2d", "nn", optable="conv_transpose",
           ref=_np_conv_transpose, dtypes="real_floating", rejects=("bool", "complex64"),
           tol="linalg", samples=lambda dtype, rng: [
               Sample(_mat(rng, (2, 3, 3, 4), dtype), _mat(rng, (3, 2, 3, 2), dtype),
                      _mat(rng, (2,), dtype), desc="bias"),
               Sample(_mat(rng, (1, 4, 3, 3), dtype), _mat(rng, (4, 1, 3, 3), dtype), None, 2,
                      1, 1, 2, desc="stride 2, padding 1, output_padding 1, groups 2"),
               Sample(_mat(rng, (2, 3, 2), dtype), _mat(rng, (2, 2, 2, 2), dtype), None, 1, 0,
                      0, 1, 2, desc="unbatched, dilation 2")],
           errors=lambda rng: [
               _ex("channel mismatch", _f32(rng, (1, 4, 3, 3)), _f32(rng, (3, 2, 3, 3)),
                   exc=ValueError, match=["conv_transpose2d", "4 channels", "expects 3"]),
               _ex("output_padding too large", _f32(rng, (1, 3, 3, 3)),
                   _f32(rng, (3, 2, 3, 3)), None, 2, 0, 2, exc=ValueError,
                   match=["conv_transpose2d", "output_padding"])]))


def _np_max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    m = 2  # max_pool2d: (N, C, H, W) or (C, H, W)
    unbatched = x.ndim == m + 1
    kind = x.dtype
    x = x.astype(np.float64)[None] if unbatched else x.astype(np.float64)
    k = _np_nt(kernel_size, m)
    s = k if stride is None else _np_nt(stride, m)
    p, d = _np_nt(padding, m), _np_nt(dilation, m)
    out = []
    for L, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, d):
        o = (L + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= L + pp:
            o -= 1
        out.append(o)
    hi = [max(pp, (o - 1) * ss + dd * (kk - 1) + 1 - L - pp)
          for L, kk, ss, pp, dd, o in zip(x.shape[2:], k, s, p, d, out)]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(p, hi)), constant_values=-np.inf)
    res = np.full(x.shape[:2] + tuple(out), -np.inf)
    for kk in np.ndindex(*k):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(i * dd, i * dd + ss * (q - 1) + 1, ss) for i, dd, ss, q in
            zip(kk, d, s, out))]
        res = np.maximum(res, win)
    res = res.astype(kind)
    return res[0] if unbatched else res


add(OpInfo("nn.functional.max_pool2d", "nn", optable="max_pool", ref=_np_max_pool,
           result=lambda s, d: d, dtypes="real_numeric", rejects=("bool", "complex64"), samples=lambda dtype, rng: [
               Sample(Arr(make(rng, (2, 3, 6, 5), dtype, "any")), 2, desc="2x2"),
               Sample(Arr(make(rng, (2, 2, 7, 7), dtype, "any")), 3, 2, 1, desc="3x3, stride "
                      "2, padding 1 (overlapping)"),
               Sample(Arr(make(rng, (1, 2, 7, 6), dtype, "any")), (2, 3), (2, 1), 0, (2, 1),
                      True, desc="dilation, ceil_mode"),
               Sample(Arr(make(rng, (3, 4, 4), dtype, "any"), "transposed"), 2,
                      desc="unbatched, non-contiguous")],
           grad_samples=lambda dtype, rng: [
               Sample(Arr(rng.permutation(60).reshape(1, 3, 4, 5).astype(dtype) / 7), 2, 1,
                      desc="distinct values (no ties), overlapping windows")],
           errors=lambda rng: [
               _ex("padding above half the kernel", _f32(rng, (1, 1, 4, 4)), 3, 1, 2,
                   exc=ValueError, match=["max_pool2d", "pad"]),
               _ex("2-D input", _f32(rng, (4, 4)), 2, exc=ValueError,
                   match=["max_pool2d", "(4, 4)"]),
               _ex("an empty spatial dim (only the batch may be empty)",
                   _f32(rng, (1, 1, 1, 0)), 2, 1, 1, exc=ValueError,
                   match=["max_pool2d", "(1, 1, 1, 0)", "empty"])]))


# ====================================================================================== fft ===
# polyten.fft: the primitives fft_c2c, fft_r2c and fft_c2r of the optional fft tier, reached
# through the public functions (which pad / trim, promote and conjugate in the core).  The
# inputs of the c2r transforms are half-spectra of real signals, so that they are Hermitian
# where a real result needs it: what a backend makes of the imaginary parts a real result cannot
# hold is not part of the contract (pocketfft ignores them, cuFFT's n-dim c2r does not).
def _fft_complex_result(sample, dtype):
    k = P.kind(dtype)
    if k == "c":
        return dtype
    if dtype == "float64":
        return "complex128"
    return "complex64" if k == "f" else P.DEFAULT_COMPLEX


def _fft_real_result(sample, dtype):
    return REAL_OF[_fft_complex_result(sample, dtype)]


def _fft_axes(x, dim):
    return None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))


def _np_fft1(name):
    f = getattr(np.fft, name)

    def ref(x, n=None, dim=-1, norm=None):
        return f(x, n=n, axis=dim, norm=norm)
    return ref


def _np_fftn(name, default_dim=None, c2r=False):
    f = getattr(np.fft, name)

    def ref(x, s=None, dim=default_dim, norm=None):
        axes = _fft_axes(x, dim)
        if s is not None:
            s = tuple(s)
            axes = axes if axes is not None else tuple(range(x.ndim - len(s), x.ndim))
            # -1 keeps a dim's size (the default output size 2 (m - 1) for c2r's last dim)
            s = tuple(v if v != -1 else (2 * (x.shape[a] - 1) if c2r and i == len(s) - 1
                                          else x.shape[a])
                      for i, (a, v) in enumerate(zip(axes, s)))
        return f(x, s=s, axes=axes, norm=norm)
    return ref


def _fft_data(rng, shape, dtype):
    return make(rng, shape, dtype, "any")


def _fft1_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(_fft_data(rng, shape, dtype), lay)  # noqa: E731
    return [Sample(m((8,)), desc="8 points"),
            Sample(m((3, 5)), desc="odd length, batched"),
            Sample(m((3, 5)), n=8, desc="n=8 zero-pads"),
            Sample(m((4, 6)), n=3, dim=0, desc="n=3 trims dim 0"),
            Sample(m((2, 3, 4)), dim=-2, norm="ortho", desc="dim=-2, ortho"),
            Sample(m((4, 6), "transposed"), norm="forward", desc="transposed, forward"),
            Sample(m((3, 6), "strided"), dim=1, desc="strided"),
            Sample(m((1,)), desc="one point"),
            Sample(m((0, 4)), desc="empty batch")]


def _fftn_samples(two):
    def samples(dtype, rng):
        m = lambda shape, lay="contiguous": Arr(_fft_data(rng, shape, dtype), lay)  # noqa
        out = [Sample(m((3, 4)), desc="default dims"),
               Sample(m((2, 3, 4)), s=(4, 2), desc="s pads and trims the last two dims"),
               Sample(m((2, 3, 4)), dim=(0, 1), norm="ortho", desc="dim=(0, 1), ortho"),
               Sample(m((2, 3, 4)), s=(3, -1), dim=(2, 0), norm="forward",
                      desc="s with -1, dims out of order, forward"),
               Sample(m((3, 4), "transposed"), desc="transposed"),
               Sample(m((0, 3, 4)), dim=(1, 2), desc="empty batch")]
        if not two:
            out += [Sample(m((2, 3, 4)), desc="all three dims"),
                    Sample(m((3, 5)), dim=1, desc="one dim")]
        return out
    return samples


def _half_spectrum(rng, shape, dtype, dims=(-1,)):
    """A half-spectrum of ``shape`` along the last of ``dims`` (rfftn of a real signal), so
    that it is Hermitian where c2r needs it; real dtypes get real values (trivially so in 1-d)."""
    if P.kind(dtype) != "c":
        return make(rng, shape, dtype, "any")
    sig = list(shape)
    sig[dims[-1]] = 2 * (shape[dims[-1]] - 1)
    return np.fft.rfftn(rng.uniform(-1, 1, size=sig), axes=dims).astype(dtype)


def _c2r1_samples(dtype, rng):
    h = lambda shape, dim=-1, lay="contiguous": Arr(_half_spectrum(  # noqa: E731
        rng, shape, dtype, (dim,)), lay)
    return [Sample(h((5,)), desc="default n = 2 (m - 1)"),
            Sample(h((3, 5)), n=7, desc="odd n=7 trims"),
            Sample(h((3, 5)), n=12, desc="n=12 zero-pads"),
            Sample(h((4, 3), 0), dim=0, norm="ortho", desc="dim=0, ortho"),
            Sample(h((2, 4, 3), 1), dim=1, norm="forward", desc="dim=1, forward"),
            Sample(h((4, 5), lay="transposed"), desc="transposed"),
            Sample(h((0, 5)), desc="empty batch")]


def _c2rn_samples(two):
    def samples(dtype, rng):
        h = lambda shape, dims, lay="contiguous": Arr(_half_spectrum(  # noqa: E731
            rng, shape, dtype, dims), lay)
        out = [Sample(h((4, 4), (0, 1)), desc="default dims"),
               Sample(h((2, 4, 5), (1, 2)), dim=(1, 2), norm="ortho", desc="dim=(1, 2), ortho"),
               Sample(h((4, 4), (0, 1)), s=(4, 7), desc="odd last size 7"),
               Sample(h((4, 4), (0, 1)), s=(-1, 10), norm="forward",
                      desc="s=(-1, 10) zero-pads the last dim, forward"),
               Sample(h((4, 3), (1, 0)), dim=(1, 0), desc="the halved dim first"),
               Sample(h((4, 5), (0, 1), "transposed"), desc="transposed"),
               Sample(h((0, 4, 4), (1, 2)), dim=(1, 2), desc="empty batch")]
        if not two:
            out.append(Sample(h((2, 3, 4), (0, 1, 2)), desc="all three dims"))
        return out
    return samples


def _fft_errors(name, nd=False, real_only=False):
    short = name.split(".")[-1]

    def errors(rng):
        x = _f32(rng, (3, 4))
        out = [_ex("a list instead of a tensor", [1.0, 2.0], exc=TypeError, match=[short]),
               _ex("norm='bad'", x, norm="bad", exc=ValueError, match=[short, "bad"])]
        if nd:
            out += [_ex("dim out of range", x, dim=(0, 2), exc=IndexError,
                        match=[short, "(3, 4)"]),
                    _ex("a dim twice", x, dim=(1, 1), exc=ValueError, match=[short]),
                    _ex("s=(0, 4)", x, s=(0, 4), exc=ValueError, match=[short, "0"]),
                    _ex("s longer than the input's dims", x, s=(2, 2, 2), exc=ValueError,
                        match=[short, "(3, 4)"])]
        else:
            out += [_ex("dim out of range", x, dim=2, exc=IndexError, match=[short, "(3, 4)"]),
                    _ex("n=0", x, n=0, exc=ValueError, match=[short, "0"]),
                    _ex("0-d input", _f32(rng, ()), exc=IndexError, match=[short])]
        if real_only:
            out.append(_ex("complex input", Arr(make(rng, (4,), "complex64")), exc=TypeError,
                           match=[short, "complex"]))
        return out
    return errors


def _fft_grad(name, complex_input):
    """Gradient checks need float64 outputs: the real and imaginary parts of the transform,
    of the float64 sample and (``complex_input``) of a complex input whose two parts both vary
    with it (so the c2c rule is checked, not only the real-input one)."""
    attr = name.split(".")[-1]

    def fn(pt, x, *args, **kwargs):
        f = getattr(pt.fft, attr)
        ys = [f(x, *args, **kwargs)]
        if complex_input:
            ys.append(f(pt.complex(x, x.flip(-1) * 0.5), *args, **kwargs))
        out = []
        for y in ys:
            out += [y.real, y.imag] if y.is_complex() else [y]
        return tuple(out)

    def code(args, kwargs):
        x = repr(args[0])
        rest = code_args(args[1:], kwargs)
        rest = ", " + rest if rest else ""
        lines = [f"y = polyten.{name}({x}{rest})", "ys = [y]"]
        if complex_input:
            lines.append(f"ys.append(polyten.{name}(polyten.complex({x}, {x}.flip(-1) * 0.5)"
                         f"{rest}))")
        lines.append("out = tuple(p for y in ys for p in ((y.real, y.imag) if y.is_complex() "
                     "else (y,)))")
        return "\n".join(lines)
    return fn, code


def _fft_op(name, optable, ref, samples, errors, dtypes="any", rejects=(), result=None,
            complex_grad=True):
    g = _fft_grad(name, complex_grad)
    return add(OpInfo(name, "fft", optable=optable, ref=ref, samples=samples, errors=errors,
                      dtypes=dtypes, rejects=rejects, float_compute=True, tol="linalg",
                      result=result or _fft_complex_result, grad_func=g[0], grad_code=g[1]))


for _name in ("fft", "ifft"):
    _fft_op(f"fft.{_name}", "fft_c2c", _np_fft1(_name), _fft1_samples,
            _fft_errors(f"fft.{_name}"))
for _name in ("fftn", "ifftn"):
    _fft_op(f"fft.{_name}", "fft_c2c", _np_fftn(_name), _fftn_samples(False),
            _fft_errors(f"fft.{_name}", nd=True))
for _name in ("fft2", "ifft2"):
    _fft_op(f"fft.{_name}", "fft_c2c", _np_fftn(_name, (-2, -1)), _fftn_samples(True),
            _fft_errors(f"fft.{_name}", nd=True))
# real input: complex dtypes are refused
for _name in ("rfft", "ihfft"):
    _fft_op(f"fft.{_name}", "fft_r2c", _np_fft1(_name), _fft1_samples,
            _fft_errors(f"fft.{_name}", real_only=True), dtypes="real",
            rejects=("complex64", "complex128"), complex_grad=False)
_fft_op("fft.rfftn", "fft_r2c", _np_fftn("rfftn"), _fftn_samples(False),
        _fft_errors("fft.rfftn", nd=True, real_only=True), dtypes="real",
        rejects=("complex64", "complex128"), complex_grad=False)
_fft_op("fft.rfft2", "fft_r2c", _np_fftn("rfft2", (-2, -1)), _fftn_samples(True),
        _fft_errors("fft.rfft2", nd=True, real_only=True), dtypes="real",
        rejects=("complex64", "complex128"), complex_grad=False)
# half-spectrum input (real inputs count as complex ones), real result; the gradient checks
# use real inputs (the float64 samples), whose imaginary parts are zero everywhere
for _name in ("irfft", "hfft"):
    _fft_op(f"fft.{_name}", "fft_c2r", _np_fft1(_name), _c2r1_samples,
            _fft_errors(f"fft.{_name}"), result=_fft_real_result, complex_grad=False)
# several dims: only Hermitian-consistent complex spectra (a real array is not one)
_fft_op("fft.irfftn", "fft_c2r", _np_fftn("irfftn", c2r=True), _c2rn_samples(False),
        _fft_errors("fft.irfftn", nd=True), dtypes=("complex64", "complex128"),
        result=_fft_real_result, complex_grad=False)
_fft_op("fft.irfft2", "fft_c2r", _np_fftn("irfft2", (-2, -1), c2r=True), _c2rn_samples(True),
        _fft_errors("fft.irfft2", nd=True), dtypes=("complex64", "complex128"),
        result=_fft_real_result, complex_grad=False)
del _name


def _shift_samples(dtype, rng):
    m = lambda shape, lay="contiguous": Arr(make(rng, shape, dtype, "any"), lay)  # noqa: E731
    return [Sample(m((5,)), desc="odd length"),
            Sample(m((4, 5)), desc="all dims"),
            Sample(m((4, 5)), dim=1, desc="dim=1"),
            Sample(m((2, 3, 4), "transposed"), dim=(0, -1), desc="two dims, transposed")]


for _name in ("fftshift", "ifftshift"):
    add(OpInfo(f"fft.{_name}", "fft", optable="roll", samples=_shift_samples,
               ref=(lambda f: lambda x, dim=None: f(x, axes=_fft_axes(x, dim)))(
                   getattr(np.fft, _name)),
               errors=(lambda s: lambda rng: [
                   _ex("a list instead of a tensor", [1.0, 2.0], exc=TypeError, match=[s]),
                   _ex("dim out of range", _f32(rng, (3, 4)), dim=2, exc=IndexError,
                       match=[s, "(3, 4)"])])(_name)))
del _name


def _freq_samples(dtype, rng):
    out = [Sample(5, dtype=DType(dtype), desc="odd n"),
           Sample(8, 0.1, dtype=DType(dtype), desc="even n, d=0.1"),
           Sample(1, dtype=DType(dtype), desc="n=1")]
    if dtype == "float32":
        out.append(Sample(6, 2.0, desc="default dtype", extra={"result": "float32"}))
    return out


def _np_freq(name):
    f = getattr(np.fft, name)

    def ref(n, d=1.0, dtype=None):
        return f(n, d)
    return ref


for _name in ("fftfreq", "rfftfreq"):
    add(OpInfo(f"fft.{_name}", "fft", optable="arange", samples=_freq_samples,
               ref=_np_freq(_name), dtypes="real_floating", differentiable=False,
               result=lambda s, d: s.extra.get("result", d),
               rejects=tuple(d for d in P.DTYPE_NAMES if P.kind(d) != "f"),
               errors=(lambda s: lambda rng: [
                   _ex("negative n", -1, exc=ValueError, match=[s, "-1"]),
                   _ex("a float n", 2.5, exc=TypeError, match=[s]),
                   _ex("d=0", 4, 0.0, exc=ValueError, match=[s, "d"])])(_name)))
del _name
