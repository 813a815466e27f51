"""Small helpers shared by the kernel modules."""

import math
import warnings

import numpy as np


def bfloat16_dtype(xp):
    """``xp``'s bfloat16 dtype (ml_dtypes' NumPy extension type, which CuPy also accepts), or
    None where ml_dtypes is not installed (the backend then does not store bfloat16).  Looked
    up once per array module: kernels call it per call (``is_floating``)."""
    try:
        return _BF16[xp]
    except KeyError:
        pass
    try:
        import ml_dtypes
    except ImportError:
        bf = None
    else:
        bf = xp.dtype(ml_dtypes.bfloat16)
    _BF16[xp] = bf
    return bf


_BF16: dict = {}  # array module -> its bfloat16 dtype or None


def bfloat16_or_void(xp):
    """``bfloat16_dtype(xp)`` for comparisons: where ml_dtypes is missing, a dtype no tensor
    has (two raw bytes) instead of None -- NumPy reads ``dtype == None`` as ``dtype ==
    float64``, which sent float64 arrays down the bfloat16 paths."""
    bf = bfloat16_dtype(xp)
    return xp.dtype("V2") if bf is None else bf


def float_max(xp, dtype) -> float:
    """The largest finite value of the floating ``dtype`` (``xp.finfo`` does not know
    ml_dtypes' bfloat16; ``ml_dtypes.finfo`` does)."""
    try:
        return float(xp.finfo(dtype).max)
    except ValueError:
        import ml_dtypes
        return float(ml_dtypes.finfo(dtype).max)


def is_floating(xp, dtype) -> bool:
    """Whether ``dtype`` is a real floating dtype (ml_dtypes' bfloat16 has NumPy kind 'V')."""
    return dtype.kind == "f" or dtype == bfloat16_dtype(xp)


def low_precision(xp) -> frozenset:
    """The ``xp`` dtypes that kernels compute in float32 and round once into (PyTorch's rule
    for float16 and bfloat16: NumPy has no float16 BLAS and ml_dtypes' bfloat16 reductions
    would accumulate in bfloat16)."""
    bf = bfloat16_dtype(xp)
    return frozenset((xp.dtype("float16"),) + ((bf,) if bf is not None else ()))


def row_reducers(xp):
    """``(max_reduce, sum_reduce)``, each ``f(x, axis, keepdims)``: the ufuncs' ``reduce``
    on NumPy (``ndarray.max`` / ``.sum`` add a Python wrapper per call), the array methods
    elsewhere (CuPy's reductions are methods)."""
    if xp.__name__ == "numpy":
        return xp.maximum.reduce, xp.add.reduce

    def max_reduce(x, axis, keepdims):
        return x.max(axis=axis, keepdims=keepdims)

    def sum_reduce(x, axis, keepdims):
        return x.sum(axis=axis, keepdims=keepdims)
    return max_reduce, sum_reduce


def upcast_products(xp) -> frozenset:
    """The dtypes whose matrix products are computed in float32 (then rounded once): every
    half dtype on NumPy (no half BLAS; its float16 matmul accumulates in float16).  Other
    array modules (CuPy: cuBLAS, float32 accumulation on tensor cores) multiply float16
    natively, and bfloat16 too when a 2x2 product, tried once here, gives the right bfloat16
    result; otherwise bfloat16 goes through float32."""
    if xp.__name__ == "numpy":
        return low_precision(xp)
    out = _PRODUCTS.get(xp)
    if out is None:
        bf = bfloat16_dtype(xp)
        out = _PRODUCTS[xp] = frozenset() if bf is None or _native_product(xp, bf) \
            else frozenset((bf,))
    return out


_PRODUCTS: dict = {}  # array module -> upcast_products' answer (tried once per module)


def _native_product(xp, dt) -> bool:
    """Whether ``xp`` multiplies ``dt`` matrices into a ``dt`` result (one small product and
    one host read, when the kernels are built)."""
    try:
        a = xp.ones((2, 2), dtype=dt)
        r = a @ a
        return r.dtype == dt and float(r[0, 0].astype("float32")) == 2.0
    except Exception:  # no bfloat16 GEMM in this CuPy: the float32 path
        return False


def array_result(xp, fn, nargs=None):
    """Wrap a NumPy function so 0-d results are arrays, not NumPy scalars (the kernel contract).

    Fixed-arity wrappers avoid ``*args`` packing on the hot path of unary and binary ufuncs.
    """
    nd = xp.ndarray
    asarray = xp.asarray
    if nargs is None:
        nargs = getattr(fn, "nin", None)
    if nargs == 1:
        def k(x):
            r = fn(x)
            return r if r.__class__ is nd else asarray(r)
    elif nargs == 2:
        def k(x, y):
            r = fn(x, y)
            return r if r.__class__ is nd else asarray(r)
    else:
        def k(*args):
            r = fn(*args)
            return r if r.__class__ is nd else asarray(r)
    k.__name__ = getattr(fn, "__name__", "kernel")
    return k


_SCALARS: dict = {}  # NumPy dtype -> {Python scalar: read-only 0-d array of that dtype}


def scalar_array(xp, value, dtype):
    """``value`` (a Python scalar that fits ``dtype``) as a 0-d NumPy array, cached.

    On NumPy, a Python scalar operand goes through NumPy's weak-scalar promotion on every call,
    which costs about as much again as the arithmetic on a small array; a 0-d array of the
    other operand's dtype (the core has already chosen that dtype and checked that the value
    fits) takes the ufunc's cached fast path instead.  The arrays are read-only and only ever
    used as inputs.  Zeros are not cached (``0.0 == -0.0`` as dict keys) and each dtype keeps
    at most 512 values (NaNs never compare equal, so they would pile up).
    """
    c = _SCALARS.get(dtype)
    if c is None:
        c = _SCALARS[dtype] = {}
    z = c.get(value)
    if z is None:
        z = xp.asarray(value, dtype)
        if value and len(c) < 512:
            z.flags.writeable = False
            c[value] = z
    return z


def binary_result(xp, fn):
    """Wrap a binary ufunc whose operands may be a native array and a Python scalar.

    On NumPy the scalar becomes a cached 0-d array (see :func:`scalar_array`); on other array
    modules (CuPy) a 0-d device array would cost a transfer, so scalars are passed unchanged.
    """
    nd = xp.ndarray
    asarray = xp.asarray
    if xp.__name__ != "numpy":
        return array_result(xp, fn, 2)
    cache = _SCALARS

    def k(x, y):
        if y.__class__ is not nd:
            d = x.dtype
            c = cache.get(d)
            z = None if c is None else c.get(y)
            y = scalar_array(xp, y, d) if z is None else z
        elif x.__class__ is not nd:
            d = y.dtype
            c = cache.get(d)
            z = None if c is None else c.get(x)
            x = scalar_array(xp, x, d) if z is None else z
        r = fn(x, y)
        return r if r.__class__ is nd else asarray(r)

    k.__name__ = getattr(fn, "__name__", "kernel")
    return k


def quiet_fp_warnings() -> None:
    """Silence NumPy's floating-point RuntimeWarnings raised inside the kernel modules.

    ``x / 0``, ``log(0)`` or an overflowing ``exp`` give inf/nan exactly as in PyTorch, which
    does not warn; a NumPy warning pointing into a kernel would only confuse users.  The filter
    matches warnings attributed to ``polyten_cpu.kernels`` modules only (NumPy attributes them
    to the Python frame that called the ufunc), so user code keeps NumPy's own behaviour, and
    unlike ``numpy.errstate`` it costs nothing per call.
    """
    warnings.filterwarnings(
        "ignore", message=r"(divide by zero|invalid value|overflow|underflow) encountered",
        category=RuntimeWarning, module=r"polyten_cpu\.kernels(\.|$)")


def negative_zero(value) -> bool:
    """Whether the number ``value`` is a zero with a sign bit in its real or imaginary part
    (``-0.0``, ``complex(0.0, -0.0)``)."""
    if value.__class__ is float:
        return value == 0 and math.copysign(1.0, value) < 0
    if value.__class__ is complex:
        return value == 0 and (math.copysign(1.0, value.real) < 0 or
                               math.copysign(1.0, value.imag) < 0)
    if isinstance(value, np.generic) and not isinstance(
            value, (np.integer, np.bool_, np.complexfloating)):
        # a NumPy float scalar (ml_dtypes' bfloat16 too: the cuda backend passes a Python
        # float beside a bfloat16 array as one)
        f = float(value)
        return f == 0 and math.copysign(1.0, f) < 0
    return False


def full_signed(xp, shape, value, dtype):
    """``xp.full(shape, value, dtype)`` that keeps the sign of a zero: CuPy's ``fill`` sets a
    zero with a memset (``ndarray.fill``: ``value == 0`` on a C-contiguous array), which
    drops it, so ``full(-0.0)`` was 0.0 and ``x // -0.0`` had the wrong infinity."""
    a = xp.full(shape, value, dtype=dtype)
    if negative_zero(value) and a.dtype.kind in "fcV" and a.size:
        # the sign bit alone, by the bits (a fill of a nonzero pattern is no memset): set,
        # not flipped, as CuPy 14 fills a complex zero by its kernel, keeping the sign
        if a.dtype.kind == "c":
            v = complex(value)
            bits = a.dtype.itemsize * 4
            for part, p in ((a.real, v.real), (a.imag, v.imag)):
                if math.copysign(1.0, p) < 0:
                    part.view(f"uint{bits}").fill(1 << (bits - 1))
        else:
            bits = a.dtype.itemsize * 8
            a.view(f"uint{bits}").fill(1 << (bits - 1))
    return a
