"""Elementwise functions against NumPy float64 references computed here, and against PyTorch.

The op lists come from the op table (its elementwise section), so a new op added there fails
``test_every_table_op_has_a_reference`` until it gets a reference and input domain below.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import polyten as pt
from polyten.dispatch import DeviceMismatchError
from polyten.dispatch.optable import OPS

_NAMES = list(OPS)
ELEMENTWISE = _NAMES[_NAMES.index("neg"):_NAMES.index("astype")]
# the generated unary functions: primitives and composites with a kernel-level default
# (relu, whose default is written in polyten ops, is tested on its own)
UNARY = [n for n in ELEMENTWISE if OPS[n].signature == f"{n}(x)" and n != "relu"]
BINARY = [n for n in ELEMENTWISE if OPS[n].signature == f"{n}(x, y)"]

DTYPES = [pt.bool, pt.uint8, pt.int8, pt.int16, pt.int32, pt.int64, pt.float16, pt.float32,
          pt.float64, pt.complex64, pt.complex128]
INTS = [pt.uint8, pt.int8, pt.int16, pt.int32, pt.int64]
FLOATS = [pt.float16, pt.float32, pt.float64]
COMPLEX = [pt.complex64, pt.complex128]
RNG = np.random.default_rng(1234)


def npd(dt):
    return np.dtype(dt.name)


def accepted(name):
    return {getattr(pt, n) for n in OPS[name].accepted}


def tol(dt):
    """(rtol, atol) for results of dtype ``dt`` against a float64 reference."""
    return {"float16": (2e-3, 1e-3), "float32": (2e-5, 1e-6), "complex64": (2e-5, 1e-6),
            "float64": (1e-12, 1e-13), "complex128": (1e-12, 1e-13)}[dt.name]


def check_close(got, ref, dt, equal_nan=False):
    """``got`` (a polyten tensor) equals the float64/complex128 reference ``ref``."""
    assert isinstance(got, pt.Tensor)
    assert got.dtype is dt, (got.dtype, dt)
    g = got.numpy()
    assert g.shape == np.shape(ref)
    if dt.kind in "fc":
        rtol, atol = tol(dt)
        np.testing.assert_allclose(g.astype(np.complex128 if dt.kind == "c" else np.float64),
                                   ref, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        np.testing.assert_array_equal(g, np.asarray(ref).astype(npd(dt)))


def wrap_int(ref, dt):
    """Integer references computed in float64 wrapped into ``dt``'s range (two's complement)."""
    if npd(dt).itemsize == 8:
        return np.asarray(ref)  # the test values stay far inside int64 (and exact in float64)
    info = np.iinfo(npd(dt))
    span = 2 ** (8 * npd(dt).itemsize)
    return (np.asarray(ref, dtype=np.float64) - info.min) % span + info.min


# ----------------------------------------------------------------------- unary references ---
def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x) if np.size(x) else x * 1.0


def _vec_math(f, x):
    return np.vectorize(f, otypes=[np.float64])(x) if np.size(x) else x * 1.0


def _lgamma(v):
    """math.lgamma with torch's values at the poles and infinities."""
    if math.isnan(v):
        return v
    if math.isinf(v):
        return math.inf
    try:
        return math.lgamma(v)
    except ValueError:  # 0 and the negative integers
        return math.inf


def _digamma(v):
    """mpmath's digamma with torch's values: -inf at +0, +inf at -0, NaN at the negative
    integers and -inf."""
    import mpmath
    if math.isnan(v) or v == math.inf:
        return v
    if v == 0:
        return math.copysign(math.inf, -v)
    if v == -math.inf or (v < 0 and v == math.floor(v)):
        return math.nan
    return float(mpmath.digamma(v))


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# name -> (reference on float64/complex128 arrays, (low, high) of the real input domain)
UNARY_REF = {
    "neg": (np.negative, (-3, 3)), "positive": (np.positive, (-3, 3)),
    "abs": (np.abs, (-3, 3)), "sign": (np.sign, (-3, 3)), "floor": (np.floor, (-3, 3)),
    "ceil": (np.ceil, (-3, 3)), "trunc": (np.trunc, (-3, 3)), "exp": (np.exp, (-5, 5)),
    "expm1": (np.expm1, (-5, 5)), "log": (np.log, (0.1, 5)), "log1p": (np.log1p, (-0.9, 5)),
    "log2": (np.log2, (0.1, 5)), "log10": (np.log10, (0.1, 5)), "sqrt": (np.sqrt, (0, 5)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 5)), "sin": (np.sin, (-3, 3)),
    "cos": (np.cos, (-3, 3)), "tan": (np.tan, (-1.4, 1.4)), "asin": (np.arcsin, (-0.95, 0.95)),
    "acos": (np.arccos, (-0.95, 0.95)), "atan": (np.arctan, (-3, 3)),
    "sinh": (np.sinh, (-5, 5)), "cosh": (np.cosh, (-5, 5)), "tanh": (np.tanh, (-3, 3)),
    "asinh": (np.arcsinh, (-3, 3)), "acosh": (np.arccosh, (1, 5)),
    "atanh": (np.arctanh, (-0.95, 0.95)), "sigmoid": (_sigmoid, (-30, 30)),
    "exp2": (np.exp2, (-5, 5)), "erf": (_erf, (-4, 4)), "square": (np.square, (-3, 3)),
    "reciprocal": (lambda x: 1 / x, (0.2, 3)), "signbit": (np.signbit, (-3, 3)),
    "isnan": (np.isnan, (-3, 3)), "isinf": (np.isinf, (-3, 3)),
    "isfinite": (np.isfinite, (-3, 3)), "logical_not": (np.logical_not, (-2, 2)),
    "bitwise_not": (lambda x: -x - 1, (-5, 5)), "conj": (np.conj, (-3, 3)),
    "real": (np.real, (-3, 3)), "imag": (np.imag, (-3, 3)),
    "lgamma": (lambda x: _vec_math(_lgamma, x), (0.1, 5)),
    "digamma": (lambda x: _vec_math(_digamma, x), (0.1, 5)),
}
# reciprocal: both signs, away from zero
SIGNED_AWAY_FROM_ZERO = {"reciprocal"}


def unary_input(name, n=24, dt=pt.float64):
    """Float64 (or complex128) inputs in the op's domain, representable in ``dt``."""
    lo, hi = UNARY_REF[name][1]
    if dt.kind in "biu":
        ilo, ihi = math.ceil(lo), math.floor(hi)
        if dt is pt.uint8:
            ilo = max(ilo, 0)
        vals = np.arange(ilo, ihi + 1, dtype=np.float64)
        if name in SIGNED_AWAY_FROM_ZERO:
            vals = np.concatenate([vals, -vals]) if dt is not pt.uint8 else vals
        if dt is pt.bool:
            vals = np.array([0.0, 1.0]) if lo <= 0 <= hi and lo <= 1 <= hi else np.array([1.0])
        return np.resize(vals, n)
    x = RNG.uniform(lo, hi, n)
    if name in SIGNED_AWAY_FROM_ZERO:
        x[::2] *= -1
    if dt.kind == "c":
        x = x + 1j * RNG.uniform(-0.5, 0.5, n)
    return x.astype(npd(dt)).astype(np.complex128 if dt.kind == "c" else np.float64)


def expected_unary_dtype(name, dt):
    rule = OPS[name].result
    if rule == "same":
        return dt
    if rule == "float":
        return dt if dt.kind in "fc" else pt.get_default_dtype()
    if rule == "real":
        return {pt.complex64: pt.float32, pt.complex128: pt.float64}.get(dt, dt)
    assert rule == "bool"
    return pt.bool


def unary_reference(name, x64, dt):
    """Reference for input values ``x64`` (already representable in ``dt``)."""
    if name == "bitwise_not" and dt is pt.bool:
        return np.logical_not(x64)
    with np.errstate(all="ignore"):
        ref = UNARY_REF[name][0](x64)
    out = expected_unary_dtype(name, dt)
    if out.kind in "iu":
        ref = wrap_int(ref, out)
    return ref


def test_every_table_op_has_a_reference():
    assert set(UNARY) <= set(UNARY_REF), set(UNARY) - set(UNARY_REF)
    assert set(BINARY) <= set(BINARY_REF), set(BINARY) - set(BINARY_REF)
    assert len(UNARY) >= 40 and len(BINARY) >= 28
    for name in UNARY + BINARY + ["round", "where", "clamp", "nan_to_num", "isclose"]:
        assert callable(getattr(pt, name)), name


@pytest.mark.parametrize("name", UNARY)
def test_unary_against_numpy_float64_for_every_dtype(name):
    fn = getattr(pt, name)
    ok = accepted(name)
    for dt in DTYPES:
        x64 = unary_input(name, dt=dt)
        xa = x64.astype(npd(dt)) if dt.kind != "b" else x64.astype(bool)
        t = pt.from_numpy(xa)
        if dt not in ok:
            with pytest.raises(TypeError) as ei:
                fn(t)
            assert name in str(ei.value) and dt.name in str(ei.value)
            continue
        got = fn(t)
        check_close(got, unary_reference(name, xa.astype(x64.dtype), dt),
                    expected_unary_dtype(name, dt))


@pytest.mark.parametrize("name", UNARY)
def test_unary_special_values_zero_d_empty_and_strided(name):
    fn = getattr(pt, name)
    ok = accepted(name)
    for dt in (pt.float32, pt.float64):
        if dt not in ok:
            continue
        specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=npd(dt))
        check_close(fn(pt.from_numpy(specials)),
                    unary_reference(name, specials.astype(np.float64), dt),
                    expected_unary_dtype(name, dt), equal_nan=True)
        # 0-d in, 0-d out
        x0 = unary_input(name, 1, dt)[0]
        got = fn(pt.tensor(x0, dtype=dt))
        assert got.shape == () and got.ndim == 0
        check_close(got, unary_reference(name, np.float64(x0), dt),
                    expected_unary_dtype(name, dt))
        # empty
        got = fn(pt.from_numpy(np.zeros((0, 3), dtype=npd(dt))))
        assert got.shape == (0, 3) and got.dtype is expected_unary_dtype(name, dt)
        # non-contiguous: a transposed and a step-2 NumPy view
        base = unary_input(name, 24, dt).astype(npd(dt)).reshape(4, 6)
        for view in (base.T, base[:, ::2], base[::-1]):
            assert not view.flags.c_contiguous
            check_close(fn(pt.from_numpy(view)),
                        unary_reference(name, view.astype(np.float64), dt),
                        expected_unary_dtype(name, dt))


def test_float_ops_promote_ints_to_the_default_float_dtype():
    x = pt.tensor([1, 2, 3])
    assert pt.exp(x).dtype is pt.float32
    assert pt.sqrt(pt.tensor([True, False])).dtype is pt.float32
    pt.set_default_dtype(pt.float64)
    try:
        got = pt.log(pt.tensor([1, 2, 3], dtype=pt.int16))
        assert got.dtype is pt.float64
        np.testing.assert_allclose(got.numpy(), np.log([1.0, 2.0, 3.0]), rtol=1e-15)
    finally:
        pt.set_default_dtype(pt.float32)


def test_unary_non_tensor_input_is_a_type_error_naming_the_op():
    with pytest.raises(TypeError, match=r"exp\(\): expected a tensor, got float 2.0"):
        pt.exp(2.0)
    with pytest.raises(TypeError, match="neg"):
        pt.neg([1, 2])


def test_sigmoid_is_stable_for_large_magnitudes():
    x = np.array([-1000.0, -745.0, -700.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0])
    got64 = pt.sigmoid(pt.from_numpy(x)).numpy()
    got32 = pt.sigmoid(pt.from_numpy(x.astype(np.float32))).numpy()
    got16 = pt.sigmoid(pt.from_numpy(x.astype(np.float16))).numpy()
    ref = _sigmoid(x)
    assert not np.isnan(got64).any() and not np.isnan(got32).any()
    np.testing.assert_allclose(got64[2:], ref[2:], rtol=1e-14)  # e^-700: still relative
    assert got64[0] == 0.0 and got64[-1] == 1.0
    assert got32.dtype == np.float32 and got16.dtype == np.float16
    np.testing.assert_allclose(got32, ref, rtol=1e-6, atol=1e-38)
    np.testing.assert_allclose(got16, ref, rtol=1e-3, atol=6e-8)
    # the tiny tail is relative-accurate in float32 down to its normal range
    np.testing.assert_allclose(pt.sigmoid(pt.tensor([-80.0])).numpy(), _sigmoid(
        np.float32(-80.0).astype(np.float64)), rtol=1e-5)


def test_erf_is_accurate_to_float64_rounding():
    x = np.concatenate([np.linspace(-6, 6, 241), [1e-300, -1e-10, 0.5, 3.3]])
    got = pt.erf(pt.from_numpy(x)).numpy()
    ref = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(got, ref, rtol=2e-16, atol=0)
    got32 = pt.erf(pt.from_numpy(x.astype(np.float32)))
    assert got32.dtype is pt.float32
    np.testing.assert_allclose(got32.numpy(), [math.erf(v) for v in x.astype(np.float32)],
                               rtol=1e-7, atol=1e-38)
    with pytest.raises(TypeError, match="erf"):
        pt.erf(pt.tensor([1 + 1j]))


def test_real_imag_conj():
    z = np.array([1 + 2j, -3.5 - 0.5j], dtype=np.complex64)
    t = pt.from_numpy(z)
    assert pt.real(t).dtype is pt.float32 and pt.imag(t).dtype is pt.float32
    np.testing.assert_array_equal(pt.real(t).numpy(), z.real)
    np.testing.assert_array_equal(t.imag.numpy(), z.imag)  # attributes, as in torch
    np.testing.assert_array_equal(t.real.numpy(), z.real)
    np.testing.assert_array_equal(pt.conj(t).numpy(), np.conj(z))
    r = pt.tensor([1.0, 2.0])
    np.testing.assert_array_equal(pt.imag(r).numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(pt.real(r).numpy(), [1.0, 2.0])


# ---------------------------------------------------------------------- binary references ---
BINARY_REF = {
    # name -> (reference on float64 / complex128 / int64 arrays, x domain, y domain)
    "add": (np.add, (-5, 5), (-5, 5)), "sub": (np.subtract, (-5, 5), (-5, 5)),
    "mul": (np.multiply, (-5, 5), (-5, 5)), "div": (np.true_divide, (-5, 5), "nonzero"),
    "floor_divide": (np.floor_divide, (-9, 9), "nonzero"),
    "remainder": (np.remainder, (-9, 9), "nonzero"), "fmod": (np.fmod, (-9, 9), "nonzero"),
    "pow": (np.power, (0.5, 3), (0, 3)), "maximum": (np.maximum, (-5, 5), (-5, 5)),
    "minimum": (np.minimum, (-5, 5), (-5, 5)), "atan2": (np.arctan2, (-5, 5), (-5, 5)),
    "hypot": (np.hypot, (-5, 5), (-5, 5)), "logaddexp": (np.logaddexp, (-5, 5), (-5, 5)),
    "copysign": (np.copysign, (-5, 5), (-5, 5)), "eq": (np.equal, (-3, 3), (-3, 3)),
    # (exact per dtype in tests/test_array_api.py; here the float64 step is within tolerance)
    "nextafter": (np.nextafter, (-5, 5), (-5, 5)),
    "ne": (np.not_equal, (-3, 3), (-3, 3)), "lt": (np.less, (-3, 3), (-3, 3)),
    "le": (np.less_equal, (-3, 3), (-3, 3)), "gt": (np.greater, (-3, 3), (-3, 3)),
    "ge": (np.greater_equal, (-3, 3), (-3, 3)),
    "logical_and": (np.logical_and, (-2, 2), (-2, 2)),
    "logical_or": (np.logical_or, (-2, 2), (-2, 2)),
    "logical_xor": (np.logical_xor, (-2, 2), (-2, 2)),
    "bitwise_and": (np.bitwise_and, (-9, 9), (-9, 9)),
    "bitwise_or": (np.bitwise_or, (-9, 9), (-9, 9)),
    "bitwise_xor": (np.bitwise_xor, (-9, 9), (-9, 9)),
    "bitwise_left_shift": (np.left_shift, (-9, 9), (0, 5)),
    "bitwise_right_shift": (np.right_shift, (-9, 9), (0, 5)),
}
BITWISE = {"bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
           "bitwise_right_shift"}


def binary_values(name, dt, which, n=24, seed=0):
    """Inputs (as a NumPy array of dtype ``dt``) for operand ``which`` (0: x, 1: y)."""
    rng = np.random.default_rng(seed + which)
    dom = BINARY_REF[name][1 + which]
    nonzero = dom == "nonzero"
    lo, hi = (-5, 5) if nonzero else dom
    if dt is pt.bool:
        v = rng.integers(0, 2, n).astype(bool)
        if nonzero:
            v[:] = True
        return v
    if dt.kind in "iu":
        v = rng.integers(math.ceil(lo), math.floor(hi) + 1, n)
        if nonzero:
            v[v == 0] = 3
        if dt is pt.uint8 and (nonzero or lo >= 0):
            v = np.abs(v)
        return v.astype(npd(dt))
    v = rng.uniform(lo, hi, n)
    if nonzero:
        v = np.where(np.abs(v) < 0.5, 1.5, v)
    if dt.kind == "c":
        v = v + 1j * rng.uniform(-1, 1, n)
    return v.astype(npd(dt))


_KIND = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def expected_promotion(a, b):
    """PyTorch / Array API promotion lattice, written out independently of polyten."""
    if a is b:
        return a
    ka, kb = _KIND[a.kind], _KIND[b.kind]
    if ka != kb:
        hi, lo = (a, b) if ka > kb else (b, a)
        if hi is pt.complex64 and lo is pt.float64:
            return pt.complex128
        return hi
    if a.kind in "ui" and a.kind != b.kind:
        u, s = (a, b) if a.kind == "u" else (b, a)
        return s if s.itemsize > u.itemsize else pt.int16
    return a if a.itemsize >= b.itemsize else b


def binary_expected_dtype(name, cd):
    rule = OPS[name].result
    if rule == "bool":
        return pt.bool
    if rule == "promote_float" and cd.kind in "biu":
        return pt.get_default_dtype()
    return cd


def binary_reference(name, xa, ya, cd, out):
    """Reference from the operands already cast to the computation dtype ``cd``."""
    f = BINARY_REF[name][0]
    if name in BITWISE:
        xr, yr = (xa, ya) if cd is pt.bool else (xa.astype(np.int64), ya.astype(np.int64))
        ref = f(xr, yr)
        return ref if cd is pt.bool else wrap_int(ref, cd)
    big = np.complex128 if cd.kind == "c" else np.float64
    with np.errstate(all="ignore"):
        ref = f(xa.astype(big), ya.astype(big))
    if out.kind in "iu":
        ref = wrap_int(ref, out)
    return ref


@pytest.mark.parametrize("name", BINARY)
def test_binary_against_numpy_float64_over_the_dtype_lattice(name):
    fn = getattr(pt, name)
    ok = accepted(name)
    for dx in DTYPES:
        for dy in DTYPES:
            xa, ya = binary_values(name, dx, 0), binary_values(name, dy, 1)
            if name in ("eq", "ne", "le", "ge"):
                ya[::3] = xa[::3].astype(ya.dtype)  # some equal pairs
            cd = expected_promotion(dx, dy)
            tx, ty = pt.from_numpy(xa), pt.from_numpy(ya)
            if cd not in ok:
                with pytest.raises(TypeError) as ei:
                    fn(tx, ty)
                assert name in str(ei.value)
                continue
            out = binary_expected_dtype(name, cd)
            calc = out if out is not pt.bool else cd
            cx, cy = xa.astype(npd(calc)), ya.astype(npd(calc))
            got = fn(tx, ty)
            check_close(got, binary_reference(name, cx, cy, calc, out), out)


@pytest.mark.parametrize("name", BINARY)
def test_binary_broadcasting_zero_d_empty_and_strided(name):
    fn = getattr(pt, name)
    dt = pt.float64 if pt.float64 in accepted(name) else pt.int64
    out = binary_expected_dtype(name, dt)
    x = binary_values(name, dt, 0, 12).reshape(3, 4)
    y = binary_values(name, dt, 1, 4)
    # (3, 1) with (4,) -> (3, 4)
    x31 = np.ascontiguousarray(x[:, :1])
    got = fn(pt.from_numpy(x31), pt.from_numpy(y))
    assert got.shape == (3, 4)
    check_close(got, binary_reference(name, np.broadcast_to(x31, (3, 4)), np.broadcast_to(
        y, (3, 4)), dt, out), out)
    # 0-d with 0-d, and 0-d with a vector
    got = fn(pt.from_numpy(x[0, 0].reshape(())), pt.from_numpy(y[0].reshape(())))
    assert got.shape == ()
    check_close(got, binary_reference(name, x[0, 0].reshape(()), y[0].reshape(()), dt, out),
                out)
    got = fn(pt.from_numpy(x[0, 0].reshape(())), pt.from_numpy(y))
    check_close(got, binary_reference(name, np.full(4, x[0, 0]), y, dt, out), out)
    # empty, and empty broadcast against (1,)
    e = np.zeros((0, 4), dtype=npd(dt))
    got = fn(pt.from_numpy(e), pt.from_numpy(y[:1]))
    assert got.shape == (0, 4) and got.dtype is out
    # non-contiguous operands: transposed and step-2 views
    xt = binary_values(name, dt, 0, 12).reshape(4, 3).T
    ys = binary_values(name, dt, 1, 8)[::2]
    assert not xt.flags.c_contiguous and not ys.flags.c_contiguous
    check_close(fn(pt.from_numpy(xt), pt.from_numpy(ys)),
                binary_reference(name, xt, np.broadcast_to(ys, (3, 4)), dt, out), out)


@pytest.mark.parametrize("name", BINARY)
def test_binary_with_python_scalars_is_weak(name):
    fn = getattr(pt, name)
    ok = accepted(name)
    for dt in (pt.bool, pt.uint8, pt.int32, pt.float16, pt.float32, pt.complex64):
        xa = binary_values(name, dt, 0)
        ya = binary_values(name, dt, 1)  # the tensor when it is the right operand
        t, u = pt.from_numpy(xa), pt.from_numpy(ya)
        for s in (True, 2, 1.5, 1 - 0.5j):
            if name in BITWISE and not isinstance(s, (bool, int)):
                continue
            cd = pt.result_type(t, s)  # the weak-scalar rule...
            weak = {bool: dt, int: pt.int64 if dt is pt.bool else dt,
                    float: dt if dt.kind in "fc" else pt.float32,
                    complex: dt if dt.kind == "c" else (pt.complex128 if dt is pt.float64
                                                        else pt.complex64)}[type(s)]
            assert cd is weak, (dt, s, cd)  # ...written out here independently
            if cd not in ok:
                with pytest.raises(TypeError, match=name):
                    fn(t, s)
                continue
            out = binary_expected_dtype(name, cd)
            calc = out if out is not pt.bool else cd
            cx = xa.astype(npd(calc))
            sa = np.full(xa.shape, s).astype(npd(calc))
            got = fn(t, s)
            check_close(got, binary_reference(name, cx, sa, calc, out), out)
            if BINARY_REF[name][1] == (0.5, 3) and s == 1 - 0.5j:
                continue  # complex base ** real exponents near 0: branch cut territory
            got = fn(s, u)  # reflected order
            check_close(got, binary_reference(name, sa, ya.astype(npd(calc)), calc, out), out)


def test_weak_scalar_result_dtypes():
    i32 = pt.tensor([1, 2], dtype=pt.int32)
    assert (i32 * 1.5).dtype is pt.float32
    assert (pt.tensor([1.0], dtype=pt.float16) * 2.0).dtype is pt.float16
    assert (pt.tensor([True]) + 1).dtype is pt.int64
    assert (pt.tensor([1], dtype=pt.uint8) + pt.tensor([1], dtype=pt.int8)).dtype is pt.int16
    assert (i32 / i32).dtype is pt.float32
    assert (pt.tensor([1.0]) * np.float64(2)).dtype is pt.float32
    assert (pt.tensor([1.0], dtype=pt.float64) + 1j).dtype is pt.complex128
    assert (pt.tensor([1.0]) + 1j).dtype is pt.complex64
    assert (pt.tensor([3], dtype=pt.uint8) + np.int64(300)).dtype is pt.uint8


def test_out_of_range_int_scalars():
    i8 = pt.tensor([1, 2, 100], dtype=pt.int8)
    # modular ops wrap the scalar into the dtype (PyTorch's cast), then wrap the result
    np.testing.assert_array_equal((i8 + 1000).numpy(), (np.array([1, 2, 100]) + 1000 + 128)
                                  % 256 - 128)
    u8 = pt.tensor([0, 1, 2], dtype=pt.uint8)
    np.testing.assert_array_equal((u8 - 3).numpy(), [253, 254, 255])
    np.testing.assert_array_equal((u8 + -1).numpy(), [255, 0, 1])
    # comparisons are exact
    np.testing.assert_array_equal((i8 == 257).numpy(), [False] * 3)
    np.testing.assert_array_equal((i8 < 1000).numpy(), [True] * 3)
    np.testing.assert_array_equal((u8 > -1).numpy(), [True] * 3)
    # elsewhere the value can't be represented: an error naming the op
    with pytest.raises(OverflowError, match=r"maximum: the Python int 1000 is out of range "
                                            r"for int8 \(-128 to 127\)"):
        pt.maximum(i8, 1000)
    with pytest.raises(OverflowError, match="add"):
        i8 + 2 ** 70
    with pytest.raises(OverflowError, match="mul"):
        pt.tensor([1.0]) * 2 ** 1100


def test_division_semantics_and_sign_rules():
    a = pt.tensor([-7, 7, -7, 7])
    b = pt.tensor([2, 2, -2, -2])
    np.testing.assert_array_equal((a // b).numpy(), [-4, 3, 3, -4])  # floor, as Python
    np.testing.assert_array_equal((a % b).numpy(), [1, 1, -1, -1])  # sign of the divisor
    np.testing.assert_array_equal(pt.fmod(a, b).numpy(), [-1, 1, -1, 1])  # of the dividend
    assert (a / b).dtype is pt.float32
    np.testing.assert_array_equal((a / b).numpy(), [-3.5, 3.5, 3.5, -3.5])
    f = pt.tensor([-7.5, 7.5])
    np.testing.assert_array_equal((f // 2).numpy(), [-4.0, 3.0])
    np.testing.assert_array_equal((f % -2).numpy(), [-1.5, -0.5])
    np.testing.assert_array_equal((f / 0).numpy(), [-np.inf, np.inf])
    assert np.isnan((f % 0).numpy()).all()


def test_pow_with_int_and_float_exponents():
    i = pt.tensor([0, 1, -1, 2, -2, 3])
    np.testing.assert_array_equal((i ** 2).numpy(), [0, 1, 1, 4, 4, 9])
    assert (i ** 2).dtype is pt.int64
    assert (i ** 2.0).dtype is pt.float32
    np.testing.assert_array_equal((i ** 0.5).numpy()[[0, 1, 3, 5]],
                                  np.sqrt([0, 1, 2, 3], dtype=np.float32))
    # integer ** negative integer tensor: PyTorch's values (NumPy refuses)
    e = pt.tensor([-1, -1, -1, -2, -3, -1])
    np.testing.assert_array_equal((i ** e).numpy(), [0, 1, -1, 0, 0, 0])
    np.testing.assert_array_equal((pt.tensor([-1, -1]) ** pt.tensor([-2, -3])).numpy(),
                                  [1, -1])
    np.testing.assert_array_equal((2 ** pt.tensor([-1, 0, 3])).numpy(), [0, 1, 8])
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        i ** -1
    f = pt.tensor([4.0, 9.0])
    np.testing.assert_allclose((f ** -0.5).numpy(), [0.5, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose((2.0 ** f).numpy(), [16.0, 512.0])
    assert (2 ** f).dtype is pt.float32 and (f ** pt.tensor([2, 3])).dtype is pt.float32


def test_maximum_minimum_propagate_nan():
    a = pt.tensor([1.0, np.nan, 3.0, np.nan])
    b = pt.tensor([np.nan, 2.0, 1.0, np.nan])
    np.testing.assert_array_equal(pt.maximum(a, b).numpy(), [np.nan, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(pt.minimum(a, b).numpy(), [np.nan, np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(pt.maximum(a, 2.0).numpy(), [2.0, np.nan, 3.0, np.nan])


def test_bool_arithmetic():
    b = pt.tensor([True, False])
    assert (b + b).dtype is pt.bool and (b + b).tolist() == [True, False]
    assert (b * b).dtype is pt.bool
    assert (b + 1).dtype is pt.int64 and (b + 1).tolist() == [2, 1]
    with pytest.raises(TypeError, match="sub: not supported for bool"):
        b - b
    with pytest.raises(TypeError, match="neg"):
        -b
    with pytest.raises(TypeError, match="pow"):
        b ** b
    with pytest.raises(TypeError, match="floor_divide"):
        b // b


# --------------------------------------------------------------------------- others ---
def test_where_with_tensors_and_scalars():
    c = pt.tensor([True, False, True])
    x = pt.tensor([1.0, 2.0, 3.0])
    y = pt.tensor([10, 20, 30], dtype=pt.int8)
    got = pt.where(c, x, y)
    assert got.dtype is pt.float32 and got.tolist() == [1.0, 20.0, 3.0]
    got = pt.where(c, y, 2.5)
    assert got.dtype is pt.float32 and got.tolist() == [10.0, 2.5, 30.0]
    got = pt.where(c, y, 7)
    assert got.dtype is pt.int8 and got.tolist() == [10, 7, 30]
    got = pt.where(c, 1, 2.5)
    assert got.dtype is pt.float32 and got.tolist() == [1.0, 2.5, 1.0]
    got = pt.where(c, 1, 2)
    assert got.dtype is pt.int64 and got.tolist() == [1, 2, 1]
    # broadcasting: (3, 1) condition with (4,) values
    cc = pt.from_numpy(np.array([[True], [False], [True]]))
    xv = pt.from_numpy(np.arange(4.0))
    got = pt.where(cc, xv, -xv)
    np.testing.assert_array_equal(got.numpy(), np.where([[True], [False], [True]],
                                                        np.arange(4.0), -np.arange(4.0)))
    assert x.where(c, 0.0).tolist() == [1.0, 0.0, 3.0]
    with pytest.raises(TypeError, match="where: condition must be a bool tensor, got int64"):
        pt.where(pt.tensor([1, 0]), pt.tensor([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match=r"where: cannot broadcast shapes \(3,\) and \(2,\)"):
        pt.where(c, x, pt.tensor([1.0, 2.0]))
    with pytest.raises(OverflowError, match="where"):
        pt.where(c, y, 1000)


def test_clamp_with_tensor_and_scalar_bounds():
    x = pt.tensor([-2.0, 0.5, 3.0, np.nan])
    np.testing.assert_array_equal(pt.clamp(x, 0, 1).numpy(), [0.0, 0.5, 1.0, np.nan])
    np.testing.assert_array_equal(pt.clamp(x, min=0.0).numpy(), [0.0, 0.5, 3.0, np.nan])
    np.testing.assert_array_equal(x.clamp(max=0.0).numpy(), [-2.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(pt.clip(x, -1.0, 1.0).numpy(), [-1.0, 0.5, 1.0, np.nan])
    lo = pt.tensor([0.0, 1.0, np.nan, 0.0])
    np.testing.assert_array_equal(pt.clamp(x, lo).numpy(), [0.0, 1.0, np.nan, np.nan])
    # min > max gives max, as torch
    np.testing.assert_array_equal(pt.clamp(pt.tensor([1.0, 2.0]), 2.0, 1.0).numpy(), [1, 1])
    # weak scalar bounds promote, tensor bounds promote
    got = pt.clamp(pt.tensor([1, 2]), 0.5, 1.5)
    assert got.dtype is pt.float32 and got.tolist() == [1.0, 1.5]
    got = pt.clamp(pt.tensor([1, 5], dtype=pt.int8), pt.tensor([2], dtype=pt.int16))
    assert got.dtype is pt.int16 and got.tolist() == [2, 5]
    # a bound beyond the dtype's range never binds
    got = pt.clamp(pt.tensor([1, 100], dtype=pt.int8), -1000, 50)
    assert got.dtype is pt.int8 and got.tolist() == [1, 50]
    assert pt.clamp(pt.tensor([1], dtype=pt.int8), max=1000).tolist() == [1]
    with pytest.raises(OverflowError, match="clamp"):
        pt.clamp(pt.tensor([1], dtype=pt.int8), min=1000)
    assert pt.clamp_min(x, 0.0).tolist()[:3] == [0.0, 0.5, 3.0]
    assert pt.clamp_max(x, 0.0).tolist()[:3] == [-2.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        pt.clamp(x)
    with pytest.raises(TypeError, match="clamp"):
        pt.clamp(pt.tensor([1 + 1j]), 0.0, 1.0)
    with pytest.raises(TypeError, match="clamp: min/max must be numbers or tensors"):
        pt.clamp(x, "a")


def test_nan_to_num():
    for dt in FLOATS:
        x = pt.from_numpy(np.array([np.nan, np.inf, -np.inf, 1.5], dtype=npd(dt)))
        got = pt.nan_to_num(x)
        fi = np.finfo(npd(dt))
        assert got.dtype is dt
        np.testing.assert_array_equal(got.numpy(), np.array([0.0, fi.max, fi.min, 1.5],
                                                            dtype=npd(dt)))
        got = pt.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0)
        np.testing.assert_array_equal(got.numpy(), [-1.0, 9.0, -9.0, 1.5])
    z = pt.from_numpy(np.array([complex(np.nan, np.inf)], dtype=np.complex64))
    got = pt.nan_to_num(z)
    assert got.dtype is pt.complex64
    assert got.numpy()[0] == complex(0.0, np.finfo(np.float32).max)
    i = pt.tensor([1, 2])
    got = pt.nan_to_num(i)
    assert got.dtype is pt.int64 and got.tolist() == [1, 2]


def test_isclose_and_allclose():
    a = pt.tensor([1.0, np.inf, np.nan, -np.inf, 1.0])
    b = pt.tensor([1.0 + 1e-7, np.inf, np.nan, np.inf, 1.1])
    assert pt.isclose(a, b).tolist() == [True, True, False, False, False]
    assert pt.isclose(a, b, equal_nan=True).tolist() == [True, True, True, False, False]
    assert pt.isclose(a, b, rtol=0.2).tolist() == [True, True, False, False, True]
    assert pt.isclose(pt.tensor([1.0, 1.5]), 1.0).tolist() == [True, False]
    assert pt.isclose(pt.tensor([1, 2]), pt.tensor([1, 3])).tolist() == [True, False]
    # integers are compared exactly even beyond float32's precision
    big = pt.tensor([2 ** 40, 2 ** 40])
    assert pt.isclose(big, pt.tensor([2 ** 40, 2 ** 40 + 1]), rtol=0, atol=0).tolist() == \
        [True, False]
    assert pt.allclose(pt.tensor([1.0, 2.0]), pt.tensor([1.0, 2.0 + 1e-6]))
    assert not pt.allclose(pt.tensor([1.0, 2.0]), pt.tensor([1.0, 2.1]))
    assert pt.allclose(pt.tensor([1.0]), pt.tensor([1.0, 1.0]))  # broadcasting
    assert pt.tensor([1.0]).allclose(pt.tensor([1.0]))
    with pytest.raises(ValueError, match=r"isclose: cannot broadcast shapes \(2,\) and \(3,\)"):
        pt.isclose(pt.ones(2), pt.ones(3))
    with pytest.raises(ValueError, match="isclose: rtol must be a non-negative number"):
        pt.isclose(pt.ones(2), pt.ones(2), rtol=-1)


def test_round_with_decimals():
    x = np.array([1.2345, 2.5, 0.5, -0.5, 1234.5, -2.675], dtype=np.float64)
    np.testing.assert_array_equal(pt.round(pt.from_numpy(x)).numpy(), [1, 2, 0, -0.0, 1234, -3])
    got = pt.round(pt.from_numpy(x), decimals=2).numpy()
    np.testing.assert_allclose(got, [1.23, 2.5, 0.5, -0.5, 1234.5, -2.68], rtol=1e-15)
    got = pt.from_numpy(x.astype(np.float32)).round(decimals=-2)
    assert got.dtype is pt.float32
    np.testing.assert_array_equal(got.numpy(), [0, 0, 0, 0, 1200, 0])
    i = pt.tensor([1234, 1250, -1351])
    assert pt.round(i).tolist() == [1234, 1250, -1351]
    assert pt.round(i, decimals=-2).tolist() == [1200, 1200, -1400]
    with pytest.raises(TypeError, match="round"):
        pt.round(pt.tensor([1 + 1j]))
    with pytest.raises(TypeError, match="round: decimals must be an int"):
        pt.round(pt.tensor([1.5]), decimals=1.5)


def test_relu_float_power_rsub():
    x = pt.tensor([-1.5, 0.0, 2.0])
    assert pt.relu(x).tolist() == [0.0, 0.0, 2.0]
    assert pt.relu(pt.tensor([-3, 4], dtype=pt.int8)).dtype is pt.int8
    fp = pt.float_power(pt.tensor([2, 3]), 2)
    assert fp.dtype is pt.float64 and fp.tolist() == [4.0, 9.0]
    assert pt.float_power(2, pt.tensor([1.0], dtype=pt.float16)).dtype is pt.float64
    assert pt.float_power(pt.tensor([1j]), 2).dtype is pt.complex128
    assert pt.rsub(x, 1.0).tolist() == [2.5, 1.0, -1.0]
    assert pt.add(x, x, alpha=2).tolist() == [-4.5, 0.0, 6.0]
    assert pt.sub(x, 1, alpha=0.5).tolist() == [-2.0, -0.5, 1.5]
    assert pt.add(x, [1, 2, 3], alpha=2).tolist() == [0.5, 4.0, 8.0]  # not list repetition
    assert pt.add(pt.tensor([1, 2]), pt.tensor([3, 4]), alpha=2).tolist() == [7, 10]
    with pytest.raises(TypeError, match="add: alpha=1.5 is not an integer, but both operands "
                                        "are integral"):
        pt.add(pt.tensor([1]), pt.tensor([2]), alpha=1.5)
    with pytest.raises(TypeError, match="sub: alpha must be a number"):
        pt.sub(x, x, alpha=None)


def test_array_api_aliases():
    x = pt.tensor([0.5, -0.25])
    for alias, name in (("arcsin", "asin"), ("arctan2", "atan2"), ("subtract", "sub"),
                        ("multiply", "mul"), ("divide", "div"), ("greater", "gt"),
                        ("less_equal", "le"), ("not_equal", "ne"), ("negative", "neg"),
                        ("bitwise_invert", "bitwise_not"), ("absolute", "abs")):
        assert callable(getattr(pt, alias))
    np.testing.assert_allclose(pt.arcsin(x).numpy(), np.arcsin(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(pt.arctan2(x, x).numpy(), np.arctan2([0.5, -0.25],
                                                                    [0.5, -0.25]), rtol=1e-6)
    assert pt.equal(x, x).tolist() == [True, True]  # Array API: elementwise


# ---------------------------------------------------------------------------- errors ---
def test_shape_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"add: cannot broadcast shapes \(3,\) and \(4,\)"):
        pt.ones(3) + pt.ones(4)
    with pytest.raises(ValueError, match=r"mul: cannot broadcast shapes \(2, 3\) and \(2,\)"):
        pt.mul(pt.ones(2, 3), pt.ones(2))
    with pytest.raises(ValueError, match=r"lt: cannot broadcast shapes"):
        pt.ones(2, dtype=pt.int8) < pt.ones(3, dtype=pt.float64)


def test_dtype_errors_name_op_and_dtype():
    with pytest.raises(TypeError, match=r"bitwise_and: not supported for float32; "
                                        r"bitwise_and takes integer or bool dtypes"):
        pt.bitwise_and(pt.ones(2), pt.ones(2))
    with pytest.raises(TypeError, match="bitwise_left_shift: not supported for bool"):
        pt.tensor([True]) << pt.tensor([True])
    with pytest.raises(TypeError, match="lt: not supported for complex64"):
        pt.tensor([1j]) < pt.tensor([1j])
    with pytest.raises(TypeError, match="bitwise_xor: not supported for int32 and float32"):
        pt.tensor([1], dtype=pt.int32) ^ 1.5
    with pytest.raises(TypeError, match=r"add\(\): expected at least one tensor operand"):
        pt.add(1, 2)


def test_two_devices_raise_device_mismatch_naming_both(cpu2):
    a = pt.ones(3)
    b = pt.ones(3, device=cpu2)
    assert (b + b).device == cpu2  # the second backend computes on its own
    for call in (lambda: a + b, lambda: pt.maximum(b, a), lambda: pt.where(a > 0, a, b),
                 lambda: pt.clamp(a, b), lambda: pt.isclose(a, b)):
        with pytest.raises(DeviceMismatchError) as ei:
            call()
        msg = str(ei.value)
        assert "cpu" in msg and "cpu2" in msg and ".to(" in msg
    with pytest.raises(DeviceMismatchError, match=r"add: expected all tensors on the same "
                                                  r"device, but found tensors on cpu and cpu2"):
        a + b


def test_no_numpy_floating_point_warnings_leak():
    # NumPy warns on x / 0, log(-1), exp overflow; PyTorch does not, and neither do we, even
    # with RuntimeWarnings turned into errors.  (A subprocess: pytest resets warning filters
    # around every test, which would drop the filter the cpu backend installs when it loads.)
    code = textwrap.dedent("""
        import numpy as np, polyten as pt
        assert np.isinf(pt.div(pt.ones(2), pt.zeros(2)).numpy()).all()
        assert np.isnan(pt.log(pt.tensor([-1.0])).numpy()).all()
        assert np.isinf(pt.exp(pt.tensor([1000.0])).numpy()).all()
        assert (pt.tensor([1.0], dtype=pt.float16) * 1e6).tolist() == [np.inf]
        assert pt.sigmoid(pt.tensor([-1000.0, 1000.0])).tolist() == [0.0, 1.0]
        try:  # integer division by zero raises, as torch on the cpu (no warning either)
            pt.tensor([7]) // pt.tensor([0])
            raise AssertionError("no error")
        except RuntimeError as e:
            assert "ZeroDivisionError" in str(e)
        x = pt.ones(2); x /= 0.0
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ---------------------------------------------------------------------- PyTorch ---
# Where polyten deliberately accepts what PyTorch 2.13 refuses (or the reverse): the data, not
# code, of known differences, as (op, tag); tags are dtype names plus "int" (integer or bool
# computation), "complex" (complex computation) and "bool operand".
TORCH_DIFFERENCES = {
    # PyTorch has no integer kernels for these; polyten computes in the default float dtype
    ("logaddexp", "int"), ("hypot", "int"),
    # torch.logaddexp takes complex; polyten's is for real numbers (as the Array API)
    ("logaddexp", "complex"),
    # torch refuses `-` with any bool tensor; polyten promotes (bool - int8 is int8) and only
    # refuses bool - bool
    ("sub", "bool operand"),
    # torch.imag refuses real tensors; polyten returns zeros (NumPy style)
    ("imag", "float16"), ("imag", "float32"), ("imag", "float64"), ("imag", "int"),
    # torch.sign / conj / real take bool; polyten's are for numbers
    ("sign", "bool"), ("conj", "bool"), ("real", "bool"),
    # torch.square(bool) is int64; polyten's square is for numeric dtypes
    ("square", "bool"),
}


def _tags(*dts):
    cd = dts[0] if len(dts) == 1 else expected_promotion(*dts)
    tags = {cd.name}
    if cd.kind in "biu":
        tags.add("int")
    if cd.kind == "c":
        tags.add("complex")
    if any(d is pt.bool for d in dts):
        tags.add("bool operand")
    return tags


def _difference(name, *dts):
    return any((name, tag) in TORCH_DIFFERENCES for tag in _tags(*dts))


def _to_numpy(torch, t):
    if t.is_conj():
        t = t.resolve_conj()
    return t.numpy()


@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_torch_values_and_dtypes(name):
    torch = pytest.importorskip("torch")
    tfn = getattr(torch, name)
    for dt in DTYPES:
        x64 = unary_input(name, dt=dt)
        xa = x64.astype(npd(dt)) if dt.kind != "b" else x64.astype(bool)
        try:
            ours = getattr(pt, name)(pt.from_numpy(xa))
        except TypeError:
            ours = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = tfn(torch.from_numpy(xa.copy()))
        except (RuntimeError, NotImplementedError, TypeError):
            theirs = None
        if (ours is None) != (theirs is None):
            assert _difference(name, dt), (name, dt, ours, theirs)
            continue
        if ours is None:
            continue
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (name, dt)
        rtol, atol = tol(ours.dtype) if ours.dtype.kind in "fc" else (0, 0)
        np.testing.assert_allclose(ours.numpy(), _to_numpy(torch, theirs), rtol=rtol * 5,
                                   atol=atol * 5, err_msg=f"{name} {dt}")


@pytest.mark.parametrize("name", BINARY)
def test_binary_matches_torch_over_the_dtype_lattice(name):
    torch = pytest.importorskip("torch")
    tfn = getattr(torch, name)
    for dx in DTYPES:
        for dy in DTYPES:
            xa, ya = binary_values(name, dx, 0, 8), binary_values(name, dy, 1, 8)
            try:
                ours = getattr(pt, name)(pt.from_numpy(xa), pt.from_numpy(ya))
            except TypeError:
                ours = None
            try:
                theirs = tfn(torch.from_numpy(xa.copy()), torch.from_numpy(ya.copy()))
            except (RuntimeError, NotImplementedError, TypeError):
                theirs = None
            if (ours is None) != (theirs is None):
                assert _difference(name, dx, dy), (name, dx, dy)
                continue
            if ours is None:
                continue
            assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (name, dx, dy)
            rtol, atol = tol(ours.dtype) if ours.dtype.kind in "fc" else (0, 0)
            np.testing.assert_allclose(ours.numpy(), _to_numpy(torch, theirs), rtol=rtol * 5,
                                       atol=atol * 5, err_msg=f"{name} {dx} {dy}")


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "floor_divide", "remainder",
                                  "fmod", "pow", "eq", "lt", "ge", "bitwise_and", "bitwise_xor",
                                  "bitwise_or"])
def test_tensor_scalar_matches_torch(name):
    torch = pytest.importorskip("torch")
    checked = 0
    for dt in DTYPES:
        xa = binary_values(name, dt, 0, 8)
        for s in (True, 2, 3, 1.5, -2.5, 1 + 2j):
            for reflected in (False, True):
                if reflected and name == "fmod":
                    continue  # torch takes a tensor first there
                t_ours, t_theirs = pt.from_numpy(xa), torch.from_numpy(xa.copy())
                ofn, tfn = getattr(pt, name), getattr(torch, name)
                try:
                    ours = ofn(s, t_ours) if reflected else ofn(t_ours, s)
                except (TypeError, ValueError, RuntimeError):  # RuntimeError: int / 0
                    ours = None
                try:
                    theirs = (tfn(s, t_theirs) if reflected else tfn(t_theirs, s))
                except (RuntimeError, NotImplementedError, TypeError):
                    theirs = None
                if theirs is None or ours is None:
                    continue  # refusals are checked elsewhere
                if theirs.dtype == torch.complex32:
                    continue  # torch's experimental chalf
                assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), \
                    (name, dt, s, reflected)
                rtol, atol = tol(ours.dtype) if ours.dtype.kind in "fc" else (0, 0)
                np.testing.assert_allclose(ours.numpy(), _to_numpy(torch, theirs),
                                           rtol=rtol * 5, atol=atol * 5,
                                           err_msg=f"{name} {dt} {s} {reflected}")
                checked += 1
    assert checked >= 20, checked


def test_torch_weak_scalar_examples():
    torch = pytest.importorskip("torch")
    cases = [
        (lambda m: m.tensor([1, 2], dtype=m.int32) * 1.5),
        (lambda m: m.tensor([1.0, 2.0], dtype=m.float16) * 2.0),
        (lambda m: m.tensor([True, False]) + 1),
        (lambda m: m.tensor([1, 2], dtype=m.uint8) + m.tensor([1, -2], dtype=m.int8)),
        (lambda m: m.tensor([7, -7], dtype=m.int32) / m.tensor([2, 2], dtype=m.int32)),
        (lambda m: m.tensor([-7, 7]) // m.tensor([2, -2])),
        (lambda m: m.tensor([-7, 7]) % m.tensor([2, -2])),
        (lambda m: m.tensor([-7.5, 7.5]) % -2),
        (lambda m: m.tensor([2, 3]) ** 2),
        (lambda m: m.tensor([2, 3]) ** 0.5),
        (lambda m: 2 ** m.tensor([1, 2])),
        (lambda m: m.tensor([0, 1, -1, 2]) ** m.tensor([-1, -2, -3, -1])),
        (lambda m: m.maximum(m.tensor([1.0, float("nan")]), m.tensor([float("nan"), 0.0]))),
        (lambda m: m.where(m.tensor([True, False]), m.tensor([1], dtype=m.int8), 2.5)),
        (lambda m: m.where(m.tensor([True, False]), 1, 2.5)),
        (lambda m: m.clamp(m.tensor([1, 2]), 0.5, 1.5)),
        (lambda m: m.clamp(m.tensor([1.0, 2.0, 3.0]), m.tensor([1.5]), m.tensor([2.5]))),
        (lambda m: m.nan_to_num(m.tensor([float("nan"), float("inf"), -float("inf")],
                                         dtype=m.float16))),
        (lambda m: m.isclose(m.tensor([1.0, float("inf"), float("nan")]),
                             m.tensor([1.0000001, float("inf"), float("nan")]),
                             equal_nan=True)),
        (lambda m: m.round(m.tensor([1.2345, 2.5, 0.5, -0.5, 1234.5]), decimals=2)),
        (lambda m: m.round(m.tensor([1234.5, 1250.0]), decimals=-2)),
        (lambda m: m.sigmoid(m.tensor([-100.0, -88.0, -20.0, 0.0, 20.0, 100.0]))),
        (lambda m: m.erf(m.tensor([1e-3, 0.5, 3.0, -2.0]))),
        (lambda m: m.erf(m.tensor([1e-3, 0.5, 3.0, -2.0], dtype=m.float64))),
        (lambda m: m.tensor([True, False]) & True),
        (lambda m: ~m.tensor([1, -2], dtype=m.int8)),
        (lambda m: m.tensor([1, 2], dtype=m.int8) + 1000),
        (lambda m: m.tensor([1, 2], dtype=m.uint8) - 3),
    ]
    for i, case in enumerate(cases):
        ours, theirs = case(pt), case(torch)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), i
        o, t = ours.numpy(), theirs.numpy()
        if ours.dtype.kind in "fc":
            np.testing.assert_allclose(o, t, rtol=1e-6, atol=0, equal_nan=True,
                                       err_msg=str(i))
        else:
            np.testing.assert_array_equal(o, t, err_msg=str(i))
    assert pt.allclose(pt.tensor([1.0, 2.0]), pt.tensor([1.0, 2.0 + 1e-6])) == \
        torch.allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6]))


# ------------------------------------------------- the kernels on another array module ---
@pytest.fixture
def foreign_xp_backend():
    """A backend whose elementwise kernels are built for an array module that is not called
    "numpy" (as polyten_cuda builds them for CuPy): the paths that pass Python scalars to the
    ufuncs unchanged instead of caching 0-d NumPy arrays."""
    import types

    from conftest import _ClonePlugin
    from polyten.dispatch import register_plugin, unregister_plugin
    from polyten_cpu.kernels import elementwise as ew_kernels

    xp = types.ModuleType("arraylib")
    xp.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    ks = {k: v for k, v in ew_kernels.kernels(xp).items() if k != "erf"}
    pname = register_plugin(_ClonePlugin("cpuxp", **ks), name="test-cpuxp")
    try:
        yield pt.device("cpuxp")
    finally:
        unregister_plugin(pname)


def test_kernels_work_on_an_array_module_other_than_numpy(foreign_xp_backend):
    dev = foreign_xp_backend
    x = pt.tensor([1.0, -2.0, 3.0], device=dev)
    assert (x * 2).tolist() == [2.0, -4.0, 6.0] and (2 - x).tolist() == [1.0, 4.0, -1.0]
    assert (x + 0.5).dtype is pt.float32 and (x ** 2).tolist() == [1.0, 4.0, 9.0]
    i = pt.tensor([2, 3], device=dev)
    assert (i ** pt.tensor([-1, 2], device=dev)).tolist() == [0, 9]
    assert (2 ** pt.tensor([-1, 3], device=dev)).tolist() == [0, 8]
    np.testing.assert_allclose(pt.sigmoid(x).numpy(), _sigmoid(np.array([1.0, -2.0, 3.0])),
                               rtol=1e-6)
    np.testing.assert_allclose(pt.rsqrt(pt.tensor([4.0], device=dev)).numpy(), [0.5])
    assert pt.clamp(x, -1, 2.5).tolist() == [1.0, -1.0, 2.5]
    x += 1
    x *= pt.tensor([2.0, 2.0, 2.0], device=dev)
    assert x.tolist() == [4.0, -2.0, 8.0] and x.device == dev


def test_floating_point_exceptions_are_silent_as_in_pytorch():
    """x / 0, log(0), sqrt(-1), exp overflow, inf - inf give inf / nan without NumPy's
    RuntimeWarnings (PyTorch says nothing), while the user's own NumPy code still warns."""
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("default")
        import numpy as np
        import polyten as pt
        x = pt.tensor([1.0, 0.0, -1.0])
        r = [x / 0, pt.log(x), pt.sqrt(x), pt.exp(pt.tensor([1000.0])),
             pt.nn.functional.log_softmax(pt.tensor([[-float("inf"), -float("inf")]]), 1)]
        print([t.tolist() for t in r])
        np.array([1.0]) / 0
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert ("[[inf, nan, -inf], [0.0, -inf, nan], [1.0, 0.0, nan], [inf], [[nan, nan]]]"
            in res.stdout)
    # exactly one warning: the one of the user's NumPy division (the last line)
    assert res.stderr.count("RuntimeWarning") == 1, res.stderr
    assert f"<string>:{code.count(chr(10))}: RuntimeWarning" in res.stderr
