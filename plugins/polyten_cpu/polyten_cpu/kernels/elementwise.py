"""Elementwise kernels: ufuncs of the array module, with 0-d results kept as arrays.

Inputs arrive cast to the computation dtype by the core, and Python scalars arrive already
checked to fit that dtype, so these kernels never promote.  Written against ``xp`` (the NumPy
API) so that ``polyten_cuda`` can reuse them with CuPy.
"""

from __future__ import annotations

import importlib
import math

from ._util import (_SCALARS, array_result, bfloat16_or_void, binary_result, float_max,
                    full_signed, low_precision, quiet_fp_warnings, scalar_array)

_UNARY_UFUNCS = {
    "neg": "negative", "positive": "positive", "abs": "absolute", "sign": "sign",
    "floor": "floor", "ceil": "ceil", "trunc": "trunc", "exp": "exp", "expm1": "expm1",
    "log": "log", "log1p": "log1p", "log2": "log2", "log10": "log10", "sqrt": "sqrt",
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos",
    "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "arcsinh",
    "acosh": "arccosh", "atanh": "arctanh", "exp2": "exp2", "square": "square",
    "signbit": "signbit", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite",
    "logical_not": "logical_not", "bitwise_not": "invert", "conj": "conjugate",
}

_BINARY_UFUNCS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
    "floor_divide": "floor_divide", "remainder": "remainder", "fmod": "fmod",
    "maximum": "maximum", "minimum": "minimum", "atan2": "arctan2", "hypot": "hypot",
    "logaddexp": "logaddexp", "copysign": "copysign", "eq": "equal", "ne": "not_equal",
    "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
    "logical_and": "logical_and", "logical_or": "logical_or", "logical_xor": "logical_xor",
    "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor",
    "bitwise_left_shift": "left_shift", "bitwise_right_shift": "right_shift",
}


def _erf(xp):
    """erf to float64 rounding: SciPy's (or CuPy's) when installed, else ``math.erf``.

    The special-function module is imported on the first call, not when the backend loads
    (importing SciPy costs ~0.2 s, more than the rest of the backend).
    """
    nd, asarray = xp.ndarray, xp.asarray
    impl = []

    def pick():
        special = None
        import importlib.util
        name = {"numpy": "scipy.special", "cupy": "cupyx.scipy.special"}.get(xp.__name__)
        if name is not None and importlib.util.find_spec(name.split(".")[0]) is not None:
            try:
                special = importlib.import_module(name)
            except ImportError:
                special = None
        if special is not None:
            return special.erf
        if xp.__name__ != "numpy":
            raise NotImplementedError(f"erf needs scipy / cupyx.scipy for {xp.__name__}")
        erf1 = math.erf

        def python_erf(x):
            # math.erf is correctly rounded in practice; the values go through Python floats
            # (exact for float16/32/64), and the result is rounded once into x's dtype
            return xp.array(list(map(erf1, x.ravel().tolist())), dtype=x.dtype).reshape(x.shape)
        return python_erf

    low, f32 = low_precision(xp), xp.dtype("float32")

    def erf(x):
        if x.dtype in low:  # SciPy and cupyx have no half loops: float32, rounded once
            return erf(x.astype(f32)).astype(x.dtype)
        if not impl:
            impl.append(pick())
        r = impl[0](x)
        if r.__class__ is not nd:
            r = asarray(r)
        # keep the input's dtype (a special-function module may answer in a wider one)
        return r if r.dtype == x.dtype else r.astype(x.dtype)

    return erf


def kernels(xp, **ctx) -> dict:
    quiet_fp_warnings()
    nd = xp.ndarray
    asarray = xp.asarray
    is_numpy = xp.__name__ == "numpy"
    k = {}
    for name, uf in _UNARY_UFUNCS.items():
        k[name] = array_result(xp, getattr(xp, uf), 1)
    for name, uf in _BINARY_UFUNCS.items():
        k[name] = binary_result(xp, getattr(xp, uf))

    power = xp.power
    where_ = xp.where
    LOW, BF16 = low_precision(xp), bfloat16_or_void(xp)

    # complex operands as their truth (x != 0): CuPy's logical ufuncs have no complex loops
    def _truth(a):
        # complex operands as their truth (CuPy's logical ufuncs have no complex loops, and
        # a Python complex beside a bool array would pick one)
        if a.__class__ is nd:
            return a != 0 if a.dtype.kind == "c" else a
        return bool(a) if a.__class__ is complex else a

    # floor / ceil / trunc of an integer array is the array (torch; NumPy >= 2.1): CuPy 13's
    # loops are float-only and return float64 data under the integer label
    def _integral(name):
        fn = k[name]

        def rounding(x):
            return x.copy() if x.dtype.kind in "biu" else fn(x)
        rounding.__name__ = name
        return rounding

    for _name in ("floor", "ceil", "trunc"):
        k[_name] = _integral(_name)

    if not is_numpy:
        sign_ = k["sign"]

        def sign(x):
            # sign(NaN) is NaN (NumPy, the Array API); CuPy's float sign is
            # (x > 0) - (x < 0), which gives 0
            r = sign_(x)
            if x.dtype.kind == "f":
                r = xp.asarray(where_(x != x, x, r))
            return r
        k["sign"] = sign

    logical_not, logical_and = k["logical_not"], k["logical_and"]
    logical_or, logical_xor = k["logical_or"], k["logical_xor"]
    k["logical_not"] = lambda x: logical_not(_truth(x))
    k["logical_and"] = lambda x, y: logical_and(_truth(x), _truth(y))
    k["logical_or"] = lambda x, y: logical_or(_truth(x), _truth(y))
    k["logical_xor"] = lambda x, y: logical_xor(_truth(x), _truth(y))

    square = xp.square

    def pow_(x, y):
        if x.__class__ is not nd:
            x = asarray(x, y.dtype)
        elif y.__class__ is not nd:
            if y == 2 and y.__class__ is not bool and x.dtype.kind in "fiu":
                # x ** 2 (a loss, a variance): one multiply, bit-identical to the pow loop,
                # which NumPy only shortcuts for the ** operator, not for power()
                r = square(x)
                return r if r.__class__ is nd else asarray(r)
            y = asarray(y, x.dtype)
        if y.dtype.kind == "i":
            neg = y < 0
            if neg.any():
                # integer ** negative integer, as PyTorch: 1 and -1 keep their magnitude,
                # everything else truncates to 0 (NumPy refuses these)
                r = xp.asarray(power(x, where_(neg, 0, y)))
                odd = xp.asarray(y % 2 != 0)
                special = where_(x == 1, 1, where_(x == -1, where_(odd, -1, 1), 0))
                return xp.asarray(where_(neg, special, r)).astype(r.dtype, copy=False)
        r = power(x, y)
        return r if r.__class__ is nd else asarray(r)

    nextafter_uf, equal = xp.nextafter, xp.equal

    def nextafter_fixed(x, y):
        r = nextafter_uf(x, y)
        if r.dtype.itemsize == 2:
            # a number (a NumPy scalar on cuda) as a 0-d array of the dtype, sign kept
            if x.__class__ is not nd:
                x = full_signed(xp, (), x, r.dtype)
            if y.__class__ is not nd:
                y = full_signed(xp, (), y, r.dtype)
            # NumPy's float16 nextafter returns x where x == y (-0 towards +0 gives -0); C's
            # nextafter, the float32/64 loops and the Array API return y
            r = xp.asarray(where_(equal(x, y), y, r)).astype(r.dtype, copy=False)
            if not is_numpy:
                # CuPy's half nextafter gives NaN for an infinite x (cupy/float16.cuh);
                # NumPy's, C's and torch's step to the largest finite value
                big = xp.full((), float_max(xp, r.dtype), dtype=r.dtype)
                step = xp.isinf(x) & (x != y) & ~xp.isnan(y)
                r = xp.asarray(where_(step, xp.copysign(big, x), r)).astype(r.dtype,
                                                                           copy=False)
        return r

    def real(x):
        return xp.real(x)  # a view, as torch.real

    def imag(x):
        return xp.imag(x) if x.dtype.kind == "c" else xp.zeros_like(x)

    def one(dtype):
        return scalar_array(xp, 1, dtype) if is_numpy else 1

    def rsqrt(x):
        r = xp.sqrt(x)
        if r.__class__ is nd:
            return xp.divide(one(r.dtype), r, out=r)
        return asarray(1 / r)

    def reciprocal(x):
        r = xp.divide(one(x.dtype), x)
        return r if r.__class__ is nd else asarray(r)

    exp, negative, add, divide = xp.exp, xp.negative, xp.add, xp.divide

    def sigmoid(x):
        # 1 / (1 + exp(-x)): exp(-x) overflowing to inf gives exactly 0, and the result is
        # accurate to rounding everywhere else (as PyTorch computes it); half precision is
        # computed in float32 because exp(-x) overflows float16 already at x = -11
        if x.dtype in LOW:
            return sigmoid(x.astype("float32")).astype(x.dtype)
        e = exp(negative(x))
        if e.__class__ is not nd:
            return asarray(1 / (1 + e))
        o = one(e.dtype)
        add(e, o, out=e)
        return divide(o, e, out=e)

    if is_numpy:
        zeros = {}  # dtype -> read-only 0-d zero: the ufunc's fast path, no scalar promotion

        def relu(x):
            dt = x.dtype
            z = zeros.get(dt)
            if z is None:
                z = zeros[dt] = xp.zeros((), dt)
                z.flags.writeable = False
            r = xp.maximum(x, z)
            return r if r.__class__ is nd else xp.asarray(r)
    else:
        def relu(x):
            return xp.asarray(xp.maximum(x, 0)).astype(x.dtype, copy=False)

    U16 = xp.dtype("uint16")

    F64 = xp.dtype("float64")

    def power_of_ten(n):
        # NumPy's power_of_ten (multiarray/calculation.c), step for step: exact to 1e22, then
        # the same roundings, and inf past the double range
        if n < 9:
            return 10.0 ** n
        r = 1e9
        for _ in range(n - 9):
            r *= 10.0
            if r == math.inf:
                break
        return r

    def scaled_round(x, decimals):
        # NumPy's around spelled out: the scale 10**|decimals| in x's dtype (float64 for
        # integers, cast back through int64 / uint64, which wraps as NumPy's cast does), a
        # multiply or divide, rint, the inverse.  CuPy's around scales float32 in double,
        # rounding once where NumPy and torch round at each step (float32 round(2.675, 2):
        # 2.68 on the cpu and in torch, 2.67 there), and rounds integers with negative
        # decimals through a float32 quotient (250000001 to -8 digits gives 2e8).
        work = F64 if x.dtype.kind in "biu" else x.dtype
        p = power_of_ten(abs(decimals))
        scale = xp.full((), p if p <= float_max(xp, work) else math.inf, dtype=work)
        v = x if x.dtype == work else x.astype(work)
        if decimals > 0:
            r = xp.true_divide(xp.rint(xp.multiply(v, scale)), scale)
        else:
            r = xp.multiply(xp.rint(xp.true_divide(v, scale)), scale)
        if work != x.dtype:
            r = r.astype("uint64" if x.dtype.kind == "u" else "int64").astype(x.dtype)
        return xp.asarray(r)

    def round_(x, decimals):
        if x.dtype.kind in "biu":
            if decimals >= 0:
                return x.copy()
            return xp.asarray(xp.round(x, decimals)) if is_numpy else scaled_round(x, decimals)
        if x.dtype in LOW and (decimals != 0 or x.dtype == BF16):
            # in float32, rounded once, as torch (NumPy scales float16 in float16: 3e4 to one
            # decimal overflows to inf); CuPy has no bfloat16 loop and would return float32
            return round_(x.astype("float32"), decimals).astype(x.dtype)
        if is_numpy or decimals == 0 or x.dtype.kind == "c":
            return xp.asarray(xp.round(x, decimals))
        # float64 too: CuPy's scale 10**d is correctly rounded, NumPy's power_of_ten is not
        # past 1e22 (an H200: 0.285 to 40 decimals 5.6e-17 off the cpu's)
        return scaled_round(x, decimals)

    def where(cond, x, y):
        if x.__class__ is nd and y.__class__ is nd and x.dtype == BF16 and y.dtype == BF16:
            # by the bits: CuPy's where has no bfloat16 loop and would return float32
            return xp.where(cond, x.view(U16), y.view(U16)).view(BF16)
        r = xp.asarray(xp.where(cond, x, y))
        # a Python scalar beside a bfloat16 array: NumPy promotes the pair to float32
        if x.__class__ is nd:
            if y.__class__ is not nd and r.dtype != x.dtype:
                r = r.astype(x.dtype)
        elif y.__class__ is nd and r.dtype != y.dtype:
            r = r.astype(y.dtype)
        return r

    maximum, minimum = xp.maximum, xp.minimum

    def clamp(x, lo, hi):
        if lo is not None:
            if is_numpy and lo.__class__ is not nd:
                lo = scalar_array(xp, lo, x.dtype)
            x = maximum(x, lo)
        if hi is not None:
            if is_numpy and hi.__class__ is not nd:
                hi = scalar_array(xp, hi, x.dtype)
            x = minimum(x, hi)
        return xp.asarray(x)

    def nan_to_num(x, nan, posinf, neginf):
        if x.dtype == BF16:  # NumPy's nan_to_num leaves dtypes it does not know unchanged
            big = float_max(xp, x.dtype)
            r = xp.nan_to_num(x.astype("float32"), copy=False, nan=nan,
                              posinf=big if posinf is None else posinf,
                              neginf=-big if neginf is None else neginf)
            return xp.asarray(r).astype(x.dtype)
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
              "erf": _erf(xp), "pow": pow_, "nextafter": binary_result(xp, nextafter_fixed)})

    # ufuncs that compute an op's kernel exactly, so that `x op= y` can write into x directly
    direct = {name: getattr(xp, uf) for name, uf in _UNARY_UFUNCS.items()}
    direct.update({name: getattr(xp, uf) for name, uf in _BINARY_UFUNCS.items()})
    integral = frozenset(("floor", "ceil", "trunc"))
    if not is_numpy:
        del direct["sign"]  # CuPy's sign of NaN is 0: through the kernel above
    kern = k
    scalars = _SCALARS

    def inplace(op, x, y):
        if op is None:
            x[...] = y
            return x
        uf = direct.get(op)
        if op in integral and x.dtype.kind in "biu":
            return x
        if uf is None:
            x[...] = kern[op](x) if y is None else kern[op](x, y)
        elif y is None:
            uf(x, out=x)
        else:
            if is_numpy and y.__class__ is not nd:
                d = x.dtype
                c = scalars.get(d)
                z = None if c is None else c.get(y)
                y = scalar_array(xp, y, d) if z is None else z
            uf(x, y, out=x)
        return x

    k["inplace"] = inplace
    # the gamma family lives in .special; here so that inplace (x.lgamma_()) finds it in kern
    from .special import kernels as special_kernels
    k.update(special_kernels(xp))
    return k
