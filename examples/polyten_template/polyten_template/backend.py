"""The ``template`` backend: only the op table's core tier, on NumPy.

Every other op runs through polyten's defaults, built from these kernels.  Kernels receive
NumPy arrays already cast by polyten and return arrays (never NumPy scalars) of exactly the
result dtype.  Optional tiers (random, linalg, complex, bitwise) are left out on purpose:
``polyten backends --verbose`` lists them as missing.
"""

import math
import warnings

import numpy as np

from polyten.dispatch import Backend

DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
# inf/nan results are part of the contract; NumPy's warnings about them are noise here
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"polyten_template")
A = np.asarray


def _erf(x):
    """erf in float64: Taylor series near 0, a continued fraction for erfc beyond."""
    w = x.astype("float64")
    a = np.abs(w)
    s = np.minimum(a, 2.5)
    term, total = s.copy(), s.copy()
    for n in range(1, 60):
        term = term * (-s * s) / n
        total = total + term / (2 * n + 1)
    small = total * (2 / math.sqrt(math.pi))
    t = np.maximum(a, 2.5)
    frac = t.copy()
    for n in range(60, 0, -1):
        frac = t + (n / 2) / frac
    big = 1 - np.exp(-t * t) / (math.sqrt(math.pi) * frac)
    return A(np.copysign(np.where(a < 2.5, small, big), w)).astype(x.dtype)


def _pow(x, y):  # either operand may be a Python scalar of the other's dtype
    x, y = A(x, getattr(y, "dtype", None)), A(y, getattr(x, "dtype", None))
    if y.dtype.kind in "iu" and x.dtype.kind in "iu" and (y < 0).any():
        # PyTorch: integer ** negative integer is 0, except for bases 1 and -1
        odd = y % 2 != 0
        special = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0))
        return A(np.where(y < 0, special, x ** np.maximum(y, 0))).astype(x.dtype)
    return A(x ** y).astype(np.result_type(x, y))


def _sort(x, dim, descending, stable):
    if x.ndim == 0:
        return x.copy(), np.zeros((), "int64")
    if descending:  # a stable sort of the reversed array keeps ties in order, NaN first
        idx = x.shape[dim] - 1 - np.flip(np.argsort(np.flip(x, dim), dim, kind="stable"), dim)
    else:
        idx = np.argsort(x, dim, kind="stable")
    return np.take_along_axis(x, idx, dim), idx.astype("int64")


def _scatter_add(x, dim, index, src):
    out = x.copy()
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    np.add.at(out, tuple(grid) if x.ndim else (), src[tuple(map(slice, index.shape))]
              if np.ndim(src) else src)
    return out


def _diagonal(x, offset, dim1, dim2):
    d = np.diagonal(x, offset, dim1, dim2)
    if x.flags.writeable:  # NumPy's view is read-only; polyten's diagonal writes through
        d.flags.writeable = True
    return d


def _arange(start, stop, step, dtype, device_index):
    if dtype.startswith("float"):  # start + i * step in float64, rounded once
        return (np.arange(max(0, math.ceil((stop - start) / step))) * step + start).astype(dtype)
    return np.arange(start, stop, step, dtype="int64").astype(dtype)


KERNELS = {
    **{name: (lambda f: lambda x: A(f(x)))(f) for name, f in [  # 0-d: arrays, not scalars
        ("neg", np.negative), ("abs", np.abs), ("floor", np.floor), ("exp", np.exp),
        ("log", np.log), ("sqrt", np.sqrt), ("sin", np.sin), ("atan", np.arctan)]},
    "erf": _erf,
    "add": lambda x, y: A(x + y), "sub": lambda x, y: A(x - y), "mul": lambda x, y: A(x * y),
    "div": lambda x, y: A(x / y), "pow": _pow, "floor_divide": lambda x, y: A(x // y),
    "eq": lambda x, y: A(x == y), "lt": lambda x, y: A(x < y),
    "where": lambda c, x, y: A(np.where(c, x, y)),
    "astype": lambda x, dtype: x.astype(dtype),
    "is_contiguous": lambda x: bool(x.flags.c_contiguous),
    "sum": lambda x, dims, keepdim, dtype: A(np.sum(x, dims, dtype, keepdims=keepdim)),
    "prod": lambda x, dims, keepdim, dtype: A(np.prod(x, dims, dtype, keepdims=keepdim)),
    "amax": lambda x, dims, keepdim: A(np.max(x, dims, keepdims=keepdim)),
    "cumsum": lambda x, dim, dtype: np.cumsum(x, dim, dtype) if x.ndim else x.astype(dtype),
    "matmul": lambda a, b: A(a @ b),
    "diagonal": _diagonal,
    "reshape": np.reshape, "permute": np.transpose, "expand": np.broadcast_to,
    "concat": lambda xs, dim: np.concatenate(xs, dim),
    "getitem": lambda x, key: A(x[key]), "setitem": lambda x, key, v: x.__setitem__(key, v),
    "scatter_add": _scatter_add, "nonzero": lambda x: np.argwhere(x).astype("int64"),
    "sort": _sort,
    "full": lambda shape, value, dtype, device_index: np.full(shape, value, dtype),
    "arange": _arange,
    "asarray": lambda obj, dtype, copy, device_index: np.array(obj, dtype, copy=bool(copy)),
    "to_host": A, "from_host": lambda array, device_index: A(array),
}


def make_backend():
    names = {np.dtype(n): n for n in DTYPES}
    # no random tier, so nothing to reseed (polyten.manual_seed still calls seed)
    return Backend("template", KERNELS, dtypes=DTYPES, native_dtype=np.dtype,
                   dtype_name=lambda a: names.get(getattr(a, "dtype", None)),
                   is_native=lambda obj: isinstance(obj, np.ndarray), seed=lambda s: None,
                   version=f"numpy {np.__version__}")
