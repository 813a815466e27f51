"""Elementwise kernels: ufuncs of the array module, with 0-d results kept as arrays."""

from __future__ import annotations

import math

from ._util import array_result


def _erf(xp):
    try:  # SciPy's erf when present (exact to rounding); else a vectorised math.erf
        from scipy.special import erf as sp_erf  # noqa: F401
        if xp.__name__ == "numpy":
            return array_result(xp, sp_erf)
    except ImportError:
        pass
    verf = xp.vectorize(math.erf, otypes=[float]) if xp.__name__ == "numpy" else None

    def erf(x):
        if verf is None:
            raise NotImplementedError("erf needs scipy for this array module")
        out = verf(x.astype("float64")) if x.size else x.astype("float64")
        return xp.asarray(out).astype(x.dtype)

    return erf


def kernels(xp, **ctx) -> dict:
    a = lambda f: array_result(xp, f)  # noqa: E731
    k = {}
    for name, uf in {
        "neg": xp.negative, "positive": xp.positive, "abs": xp.absolute, "sign": xp.sign,
        "floor": xp.floor, "ceil": xp.ceil, "trunc": xp.trunc, "exp": xp.exp,
        "expm1": xp.expm1, "log": xp.log, "log1p": xp.log1p, "log2": xp.log2,
        "log10": xp.log10, "sqrt": xp.sqrt, "sin": xp.sin, "cos": xp.cos, "tan": xp.tan,
        "asin": xp.arcsin, "acos": xp.arccos, "atan": xp.arctan, "sinh": xp.sinh,
        "cosh": xp.cosh, "tanh": xp.tanh, "asinh": xp.arcsinh, "acosh": xp.arccosh,
        "atanh": xp.arctanh, "exp2": xp.exp2, "square": xp.square, "signbit": xp.signbit,
        "isnan": xp.isnan, "isinf": xp.isinf, "isfinite": xp.isfinite,
        "logical_not": xp.logical_not, "bitwise_not": xp.invert, "conj": xp.conjugate,
        "real": xp.real, "imag": xp.imag,
        "add": xp.add, "sub": xp.subtract, "mul": xp.multiply, "div": xp.true_divide,
        "floor_divide": xp.floor_divide, "remainder": xp.remainder, "fmod": xp.fmod,
        "pow": xp.power, "maximum": xp.maximum, "minimum": xp.minimum,
        "atan2": xp.arctan2, "hypot": xp.hypot, "logaddexp": xp.logaddexp,
        "copysign": xp.copysign, "eq": xp.equal, "ne": xp.not_equal, "lt": xp.less,
        "le": xp.less_equal, "gt": xp.greater, "ge": xp.greater_equal,
        "logical_and": xp.logical_and, "logical_or": xp.logical_or,
        "logical_xor": xp.logical_xor, "bitwise_and": xp.bitwise_and,
        "bitwise_or": xp.bitwise_or, "bitwise_xor": xp.bitwise_xor,
        "bitwise_left_shift": xp.left_shift, "bitwise_right_shift": xp.right_shift,
    }.items():
        k[name] = a(uf)

    def real(x):
        return xp.real(x).copy() if x.dtype.kind == "c" else x.copy()

    def imag(x):
        return xp.imag(x).copy() if x.dtype.kind == "c" else xp.zeros_like(x)

    def rsqrt(x):
        r = xp.sqrt(x)
        return xp.divide(1, r, out=r) if isinstance(r, xp.ndarray) else xp.asarray(1 / r)

    def reciprocal(x):
        return xp.asarray(xp.divide(1, x))

    def sigmoid(x):
        # numerically stable for large |x|: exp of a non-positive number only
        e = xp.exp(-xp.abs(x))
        pos = 1 / (1 + e)
        return xp.asarray(xp.where(x >= 0, pos, e * pos)).astype(x.dtype, copy=False)

    def relu(x):
        return xp.asarray(xp.maximum(x, 0)).astype(x.dtype, copy=False)

    def round_(x, decimals):
        if x.dtype.kind in "biu":
            return x.copy() if decimals >= 0 else xp.asarray(xp.round(x, decimals))
        return xp.asarray(xp.round(x, decimals))

    def where(cond, x, y):
        return xp.asarray(xp.where(cond, x, y))

    def clamp(x, lo, hi):
        if lo is not None:
            x = xp.maximum(x, lo)
        if hi is not None:
            x = xp.minimum(x, hi)
        return xp.asarray(x)

    def nan_to_num(x, nan, posinf, neginf):
        return xp.asarray(xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf))

    def isclose(x, y, rtol, atol, equal_nan):
        return xp.asarray(xp.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def astype(x, dtype):
        return x.astype(dtype)

    def copy(x):
        return xp.array(x, copy=True, order="C")

    def is_contiguous(x):
        return bool(x.flags.c_contiguous)

    k.update({"real": real, "imag": imag, "rsqrt": rsqrt, "reciprocal": reciprocal,
              "sigmoid": sigmoid, "relu": relu, "round": round_, "where": where,
              "clamp": clamp, "nan_to_num": nan_to_num, "isclose": isclose,
              "astype": astype, "copy": copy, "is_contiguous": is_contiguous,
              "erf": _erf(xp)})
    return k
