"""polyten as a Python Array API standard (2024.12) namespace.

* every name of the standard's main namespace and ``linalg`` extension exists (the lists are
  written out here from the standard's text, section by section);
* generic "library" code written only against a namespace ``xp`` gives the same float64
  results with ``xp=array_api_strict`` (the reference implementation) and ``xp=polyten``;
* special cases of the elementwise functions, each checked against the rule quoted from the
  standard;
* the functions polyten has for the standard (astype, diff, isin, searchsorted, nextafter,
  matrix_transpose, Tensor.to_device) against NumPy float64 references and PyTorch, their
  signatures and their errors.

Where polyten keeps PyTorch's behaviour (``sort`` returns ``(values, indices)``, ``nonzero`` is
2-D, ``var`` defaults to ``correction=1``, ...) the Array API spelling is what is tested
(``take_along_axis(x, argsort(x))``, ``nonzero(x, as_tuple=True)``, ``var(x, correction=0)``).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import polyten as pt
import polyten.linalg  # noqa: F401

from conftest import cpu_clone

P = inspect.Parameter
NAN, INF = math.nan, math.inf

# ------------------------------------------------------------------ the standard's names ---
# https://data-apis.org/array-api/2024.12/API_specification/ -- section by section
CONSTANTS = ["e", "inf", "nan", "newaxis", "pi"]
DATA_TYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64", "complex64", "complex128"]
CREATION = ["arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full",
            "full_like", "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros",
            "zeros_like"]
DATA_TYPE_FUNCTIONS = ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type"]
ELEMENTWISE = [
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_left_shift", "bitwise_invert", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "ceil", "clip", "conj", "copysign", "cos", "cosh", "divide", "equal", "exp", "expm1",
    "floor", "floor_divide", "greater", "greater_equal", "hypot", "imag", "isfinite", "isinf",
    "isnan", "less", "less_equal", "log", "log1p", "log2", "log10", "logaddexp", "logical_and",
    "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply", "negative",
    "nextafter", "not_equal", "positive", "pow", "real", "reciprocal", "remainder", "round",
    "sign", "signbit", "sin", "sinh", "square", "sqrt", "subtract", "tan", "tanh", "trunc"]
INDEXING = ["take", "take_along_axis"]
LINEAR_ALGEBRA = ["matmul", "matrix_transpose", "tensordot", "vecdot"]
MANIPULATION = ["broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip",
                "moveaxis", "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack",
                "tile", "unstack"]
SEARCHING = ["argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where"]
SET = ["unique_all", "unique_counts", "unique_inverse", "unique_values"]
SORTING = ["argsort", "sort"]
STATISTICAL = ["cumulative_prod", "cumulative_sum", "max", "mean", "min", "prod", "std", "sum",
               "var"]
UTILITY = ["all", "any", "diff"]
INSPECTION = ["__array_namespace_info__"]
MAIN = (CONSTANTS + DATA_TYPES + CREATION + DATA_TYPE_FUNCTIONS + ELEMENTWISE + INDEXING +
        LINEAR_ALGEBRA + MANIPULATION + SEARCHING + SET + SORTING + STATISTICAL + UTILITY +
        INSPECTION)
LINALG = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
          "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv",
          "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
          "vector_norm"]
ARRAY_ATTRIBUTES = ["dtype", "device", "mT", "ndim", "shape", "size", "T"]
ARRAY_METHODS = [
    "__abs__", "__add__", "__and__", "__array_namespace__", "__bool__", "__complex__",
    "__dlpack__", "__dlpack_device__", "__eq__", "__float__", "__floordiv__", "__ge__",
    "__getitem__", "__gt__", "__index__", "__int__", "__invert__", "__le__", "__lshift__",
    "__lt__", "__matmul__", "__mod__", "__mul__", "__ne__", "__neg__", "__or__", "__pos__",
    "__pow__", "__rshift__", "__setitem__", "__sub__", "__truediv__", "__xor__", "to_device"]
# PyTorch, and so polyten, has no unsigned integers wider than 8 bits (documented in
# polyten/api/arrayapi.py)
UNSUPPORTED = {"uint16", "uint32", "uint64"}


@pytest.fixture
def strict():
    """array_api_strict speaking the 2024.12 standard (its default is a later draft)."""
    xs = pytest.importorskip("array_api_strict")  # in the test extras
    xs.set_array_api_strict_flags(api_version="2024.12")
    try:
        yield xs
    finally:
        xs.reset_array_api_strict_flags()


@pytest.mark.parametrize("name", MAIN)
def test_every_name_of_the_main_namespace_exists(name):
    if name in UNSUPPORTED:
        assert not hasattr(pt, name)
        return
    assert hasattr(pt, name), f"polyten.{name} is missing"


@pytest.mark.parametrize("name", LINALG)
def test_every_name_of_the_linalg_extension_exists(name):
    assert callable(getattr(pt.linalg, name, None)), f"polyten.linalg.{name} is missing"


def test_the_lists_are_the_reference_implementations(strict):
    """Guards the lists above against typos and gaps: they are array_api_strict's namespace,
    less its own helpers and the two additions of the 2025.12 revision (which polyten has)."""
    later = {"isin", "broadcast_shapes"}
    own = {"ArrayAPIStrictFlags", "Device", "__array_api_version__", "__version__", "fft",
           "linalg", "get_array_api_strict_flags", "set_array_api_strict_flags",
           "reset_array_api_strict_flags"}
    assert set(strict.__all__) - later - own == set(MAIN)
    assert set(strict.linalg.__all__) == set(LINALG)
    assert all(callable(getattr(pt, name)) for name in later)


def test_array_object_attributes_and_methods():
    x = pt.ones((2, 3))
    for name in ARRAY_ATTRIBUTES + ARRAY_METHODS:
        assert hasattr(x, name), f"Tensor.{name} is missing"
    assert x.mT.shape == (3, 2) and x.ndim == 2 and x.dtype is pt.float32
    # size is PyTorch's method here (the standard's attribute is x.numel())
    assert x.size() == (2, 3) and x.numel() == 6


def test_constants_and_dtypes_are_the_standards():
    assert pt.e == math.e and pt.pi == math.pi and pt.newaxis is None
    assert pt.inf == INF and math.isnan(pt.nan)
    for name in set(DATA_TYPES) - UNSUPPORTED:
        d = getattr(pt, name)
        assert isinstance(d, pt.dtype) and d.name == name
    assert pt.float32 == pt.float32 and pt.float32 != pt.float64  # dtypes compare by __eq__


def test_namespace_and_version():
    x = pt.ones(3)
    assert x.__array_namespace__() is pt
    assert x.__array_namespace__(api_version="2024.12") is pt
    assert pt.__array_api_version__ == "2024.12"
    with pytest.raises(ValueError, match="api_version"):
        x.__array_namespace__(api_version="1999.01")


def test_array_namespace_info():
    info = pt.__array_namespace_info__()
    caps = info.capabilities()
    assert caps["boolean indexing"] is True and caps["data-dependent shapes"] is True
    assert caps["max dimensions"] >= 8
    assert info.default_device() == pt.device("cpu")
    assert pt.device("cpu") in info.devices()
    dd = info.default_dtypes()
    assert dd["real floating"] is pt.float32 and dd["complex floating"] is pt.complex64
    assert dd["integral"] is pt.int64 and dd["indexing"] is pt.int64
    dts = info.dtypes()
    assert set(dts) == set(DATA_TYPES) - UNSUPPORTED
    assert set(info.dtypes(kind="unsigned integer")) == {"uint8"}
    assert set(info.dtypes(kind="real floating")) == {"float32", "float64"}
    assert set(info.dtypes(kind=("bool", "signed integer"))) == {"bool", "int8", "int16",
                                                                "int32", "int64"}
    assert set(info.dtypes(device="cpu", kind="complex floating")) == {"complex64",
                                                                      "complex128"}


# ----------------------------------------------------------- generic library functions ---
# Written only against a namespace ``xp``, as an Array API consuming library writes them.
def standardize(xp, X):
    mu = xp.mean(X, axis=0, keepdims=True)
    sd = xp.std(X, axis=0, correction=1, keepdims=True)
    return (X - mu) / sd, xp.var(X, axis=1, correction=0)


def softmax(xp, x, axis=-1):
    m = xp.max(x, axis=axis, keepdims=True)  # shifted by the max: no overflow
    e = xp.exp(x - m)
    return e / xp.sum(e, axis=axis, keepdims=True)


def logsumexp(xp, x, axis=-1):
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.squeeze(m, axis=axis) + xp.log(xp.sum(xp.exp(x - m), axis=axis))


def pairwise_distances(xp, A, B):
    a2 = xp.sum(A * A, axis=1)[:, xp.newaxis]
    b2 = xp.expand_dims(xp.vecdot(B, B), axis=0)
    d2 = a2 + b2 - 2.0 * (A @ xp.matrix_transpose(B))
    return xp.sqrt(xp.clip(d2, min=0.0))  # rounding can make tiny distances negative


def power_iteration(xp, A, iters=300):
    n = A.shape[-1]
    v = xp.ones((n,), dtype=A.dtype) / math.sqrt(n)
    for _ in range(iters):
        w = xp.matmul(A, v)
        v = w / xp.linalg.vector_norm(w)
    return xp.vecdot(v, A @ v), xp.linalg.eigvalsh(A)[-1]


def label_stats(xp, labels):
    values, counts = xp.unique_counts(labels)
    most = xp.take(values, xp.reshape(xp.argmax(counts), (1,)))
    u, inverse = xp.unique_inverse(labels)
    rebuilt = xp.take(u, xp.reshape(inverse, (-1,)))
    vals, first, inv, cnt = xp.unique_all(labels)
    return values, counts, most, rebuilt, first, cnt, xp.unique_values(labels)


def ranks(xp, x):
    order = xp.argsort(x, axis=-1, stable=True)
    desc = xp.argsort(x, axis=-1, descending=True, stable=True)
    # not xp.sort: polyten's sort returns (values, indices), as torch.sort
    ordered = xp.take_along_axis(x, order, axis=-1)
    return order, desc, ordered, xp.argmin(x, axis=0), xp.argmax(x, axis=1, keepdims=True)


def cumulative(xp, x):
    cs = xp.cumulative_sum(x, axis=1, include_initial=True)
    cp = xp.cumulative_prod(x, axis=0)
    return cs, cp, xp.diff(cs, axis=1), xp.diff(x, axis=0, n=2), xp.cumulative_sum(x[0, :])


def cleaned(xp, x):
    y = xp.where(xp.isnan(x), 0.0, x)  # Python scalars in where: 2024.12
    y = xp.clip(y, -1.0, 1.0)
    relu = xp.where(y > 0, y, xp.zeros_like(y))
    # polyten's nonzero(x) is PyTorch's 2-D (n, ndim) tensor; as_tuple=True is the
    # standard's tuple of index arrays
    nz = xp.nonzero(relu > 0.5, as_tuple=True) if xp is pt else xp.nonzero(relu > 0.5)
    return (y, relu, xp.maximum(y, 0.5), xp.count_nonzero(relu, axis=0), xp.clip(y),
            xp.astype(y > 0, xp.int32), xp.nextafter(y, 2.0), nz)


def binned(xp, x, edges):
    idx = xp.searchsorted(edges, x, side="right")
    hits = idx[:, xp.newaxis] == xp.arange(1, edges.shape[0])[xp.newaxis, :]
    counts = xp.sum(xp.astype(hits, xp.int64), axis=0)
    return idx, counts, xp.searchsorted(edges, x)


def reshaped(xp, X):
    s = xp.stack([X, 2 * X], axis=0)
    c = xp.concat([X, X], axis=None)
    p = xp.permute_dims(s, (2, 0, 1))
    parts = xp.unstack(xp.moveaxis(s, 0, -1), axis=-1)
    return (s, c, p, parts[1], xp.flip(X, axis=0), xp.roll(X, 1, axis=1), xp.tile(X, (2, 1)),
            xp.repeat(X, 2, axis=1), xp.broadcast_to(X[:1, :], (3, X.shape[1])),
            xp.tril(X[:3, :3], k=-1), xp.tensordot(X, X, axes=([0], [0])))


def _host(a):
    if isinstance(a, pt.Tensor):
        return a.numpy()
    return np.asarray(a)


def _dtype_name(a):
    return str(a.dtype).rsplit(".", 1)[-1]


def _compare(got, want, path="result"):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{path}[{i}]")
        return
    assert _dtype_name(got) == _dtype_name(want), (path, got.dtype, want.dtype)
    g, w = _host(got), _host(want)
    assert g.shape == w.shape, (path, g.shape, w.shape)
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=path)
    else:
        np.testing.assert_array_equal(g, w, err_msg=path)


RNG = np.random.default_rng(20241201)
X = RNG.standard_normal((6, 4))
SPD = X.T @ X + 4 * np.eye(4)
LABELS = RNG.integers(0, 5, size=(3, 7))
TIES = RNG.integers(0, 3, size=(4, 6)).astype(np.float64)
SMALL = RNG.uniform(0.5, 1.5, size=(4, 5))
DIRTY = np.where(RNG.random((5, 3)) < 0.2, np.nan, RNG.uniform(-2, 2, (5, 3)))
EDGES = np.linspace(-2, 2, 9)

LIBRARY = {
    "standardize": (standardize, (X,)),
    "softmax": (lambda xp, x: (softmax(xp, x), softmax(xp, 1000 * x, axis=0)), (X,)),
    "logsumexp": (lambda xp, x: logsumexp(xp, 800 * x), (X,)),
    "pairwise_distances": (pairwise_distances, (X, X[:3])),
    "power_iteration": (power_iteration, (SPD,)),
    "label_stats": (label_stats, (LABELS,)),
    "ranks": (ranks, (TIES,)),
    "cumulative": (cumulative, (SMALL,)),
    "cleaned": (cleaned, (DIRTY,)),
    "binned": (binned, (X.reshape(-1), EDGES)),
    "reshaped": (reshaped, (X,)),
}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_code_gives_the_same_results_as_the_reference_implementation(name, strict):
    fn, data = LIBRARY[name]
    want = fn(strict, *(strict.asarray(d) for d in data))
    got = fn(pt, *(pt.asarray(d) for d in data))
    _compare(got, want)


def test_power_iteration_finds_the_largest_eigenvalue():
    lam, top = power_iteration(pt, pt.asarray(SPD))
    assert lam.dtype is pt.float64
    assert abs(lam.item() - np.linalg.eigvalsh(SPD)[-1]) < 1e-9
    assert abs(top.item() - np.linalg.eigvalsh(SPD)[-1]) < 1e-9


def test_library_isin_matches_the_reference_implementation(strict):
    # isin is in the 2025.12 revision (integer inputs); polyten has it (as torch.isin, for
    # floats too) already.  array_api_strict 2.6 ignores invert=, so that and the float cases
    # are checked against NumPy.
    with strict.ArrayAPIStrictFlags(api_version="2025.12"):
        for x1, x2 in [(LABELS, np.array([1, 3])), (LABELS, LABELS[0, :2]),
                       (LABELS[0], np.array([], dtype=np.int64))]:
            _compare(pt.isin(pt.asarray(x1), pt.asarray(x2)),
                     strict.isin(strict.asarray(x1), strict.asarray(x2)))
    for x1, x2 in [(LABELS, np.array([1, 3])), (DIRTY, DIRTY[::2, 0]), (X, X[2])]:
        for invert in (False, True):
            np.testing.assert_array_equal(
                pt.isin(pt.asarray(x1), pt.asarray(x2), invert=invert).numpy(),
                np.isin(x1, x2, invert=invert))


# ------------------------------------------------------------------------ special cases ---
FLOATS = [pt.float16, pt.float32, pt.float64]

# (function, arguments as Python floats, expected per the rule quoted)
SPECIAL_CASES = [
    # sqrt: "If x_i is less than 0, the result is NaN." "If x_i is -0, the result is -0."
    # "If x_i is +infinity, the result is +infinity."
    ("sqrt", ([-1.0, -0.0, 0.0, INF, NAN],), [NAN, -0.0, 0.0, INF, NAN]),
    # log: "If x_i is less than 0, the result is NaN." "If x_i is either +0 or -0, the result
    # is -infinity." "If x_i is 1, the result is +0."
    ("log", ([-1.0, 0.0, -0.0, 1.0, INF],), [NAN, -INF, -INF, 0.0, INF]),
    # log1p: "If x_i is less than -1, the result is NaN." "If x_i is -1, the result is
    # -infinity." "If x_i is -0, the result is -0."
    ("log1p", ([-2.0, -1.0, -0.0, 0.0],), [NAN, -INF, -0.0, 0.0]),
    # exp: "If x_i is -infinity, the result is +0." "If x_i is +0/-0, the result is 1."
    ("exp", ([-INF, 0.0, -0.0, INF],), [0.0, 1.0, 1.0, INF]),
    # expm1: "If x_i is -0, the result is -0." "If x_i is -infinity, the result is -1."
    ("expm1", ([-0.0, -INF, INF],), [-0.0, -1.0, INF]),
    # pow: "If x2_i is +0, the result is 1, even if x1_i is NaN." (and -0 likewise)
    # "If x1_i is not equal to 1 and x2_i is NaN, the result is NaN."
    # "If abs(x1_i) is 1 and x2_i is +infinity, the result is 1."
    # "If abs(x1_i) is greater than 1 and x2_i is -infinity, the result is +0."
    ("pow", ([NAN, NAN, 2.0, 1.0, -1.0, 3.0], [0.0, -0.0, NAN, INF, INF, -INF]),
     [1.0, 1.0, NAN, 1.0, 1.0, 0.0]),
    # sign: "If x_i is less than 0, the result is -1." "If x_i is either -0 or +0, the result
    # is 0." "If x_i is NaN, the result is NaN."  (the sign of that zero is not specified)
    ("sign", ([-2.5, -0.0, 0.0, 3.0, NAN, -INF],), [-1.0, 0.0, 0.0, 1.0, NAN, -1.0]),
    # abs: "If x_i is -0, the result is +0." "If x_i is -infinity, the result is +infinity."
    ("abs", ([-0.0, -INF, NAN],), [0.0, INF, NAN]),
    # floor_divide: "If x1_i is greater than 0 and x2_i is +0, the result is +infinity."
    # "... greater than 0 and x2_i is -0 -> -infinity"; "less than 0 and x2_i is +0 ->
    # -infinity"; "less than 0 and x2_i is -0 -> +infinity"; "If x1_i is either +0 or -0 and
    # x2_i is either +0 or -0, the result is NaN."
    ("floor_divide", ([1.0, 1.0, -1.0, -1.0, 0.0, -0.0], [0.0, -0.0, 0.0, -0.0, 0.0, -0.0]),
     [INF, -INF, -INF, INF, NAN, NAN]),
    # divide: the same signed infinities ("If x1_i is greater than 0 and x2_i is -0, the result
    # is -infinity." ...)
    ("divide", ([1.0, -1.0, 0.0], [-0.0, -0.0, 0.0]), [-INF, INF, NAN]),
    # remainder: "If x1_i is greater than 0 and x2_i is +0/-0, the result is NaN." (and less
    # than 0 likewise; zero by zero is NaN); "If x1_i is +0 and x2_i is less than 0, the result
    # is -0."; "If x1_i is -0 and x2_i is greater than 0, the result is +0."; "If x1_i is a
    # positive finite number and x2_i is +infinity, the result is x1_i."; "If x1_i is a
    # positive finite number and x2_i is -infinity, the result is x2_i."; "If x1_i is a
    # negative finite number and x2_i is +infinity, the result is x2_i."
    ("remainder", ([1.0, -1.0, 0.0, 0.0, -0.0, 1.5, 1.5, -1.5],
                   [0.0, -0.0, -0.0, -2.0, 2.0, INF, -INF, INF]),
     [NAN, NAN, NAN, -0.0, 0.0, 1.5, -INF, INF]),
    # maximum / minimum: "If either x1_i or x2_i is NaN, the result is NaN."
    ("maximum", ([NAN, 1.0, -INF], [1.0, NAN, 2.0]), [NAN, NAN, 2.0]),
    ("minimum", ([NAN, 1.0, INF], [1.0, NAN, 2.0]), [NAN, NAN, 2.0]),
    # round: "If two integers are equally close to x_i, the result is the even integer closest
    # to x_i." "If x_i is -0, the result is -0." "If x_i is +infinity, the result is
    # +infinity."
    ("round", ([0.5, 1.5, 2.5, -0.5, -2.5, 3.7, -0.0, INF, NAN],),
     [0.0, 2.0, 2.0, -0.0, -2.0, 4.0, -0.0, INF, NAN]),
    # trunc / floor / ceil: "If x_i is -0, the result is -0." ceil(-0.5) is -0 (rounding
    # toward +infinity keeps the sign); floor(-0.5) is -1
    ("trunc", ([-0.5, 0.5, -0.0, INF],), [-0.0, 0.0, -0.0, INF]),
    ("ceil", ([-0.5, 0.5, -0.0],), [-0.0, 1.0, -0.0]),
    ("floor", ([-0.5, 0.5, -0.0],), [-1.0, 0.0, -0.0]),
    # atan2: "If x1_i is +0 and x2_i is -0, the result is +π." "If x1_i is -0 and x2_i is -0,
    # the result is -π." "If x1_i is +0 and x2_i is +0, the result is +0." "-0 and +0 -> -0"
    ("atan2", ([0.0, -0.0, 0.0, -0.0], [-0.0, -0.0, 0.0, 0.0]), [math.pi, -math.pi, 0.0, -0.0]),
    # hypot: "If x1_i is +infinity or -infinity and x2_i is any value, including NaN, the
    # result is +infinity." (and with the operands swapped)
    ("hypot", ([INF, NAN, -INF], [NAN, -INF, 1.0]), [INF, INF, INF]),
    # copysign: "If x2_i is -0, the result is -abs(x1_i)." "If x2_i is +0, ... abs(x1_i)"
    ("copysign", ([2.0, -2.0, INF], [-0.0, 0.0, -1.0]), [-2.0, 2.0, -INF]),
    # logaddexp: "If either x1_i or x2_i is NaN, the result is NaN." "If x1_i is +infinity
    # and x2_i is not NaN, the result is +infinity."
    ("logaddexp", ([NAN, INF, INF, -INF], [1.0, -INF, 1.0, -INF]), [NAN, INF, INF, -INF]),
    # reciprocal = divide(1, x): "If x1_i is greater than 0 and x2_i is +0, the result is
    # +infinity." "... and x2_i is -0, the result is -infinity."
    ("reciprocal", ([0.0, -0.0, INF, -INF],), [INF, -INF, 0.0, -0.0]),
    # nextafter: "If either x1_i or x2_i is NaN, the result is NaN." "If x1_i is -0 and x2_i
    # is +0, the result is +0." "If x1_i is +0 and x2_i is -0, the result is -0."
    ("nextafter", ([NAN, 1.0, -0.0, 0.0], [1.0, NAN, 0.0, -0.0]), [NAN, NAN, 0.0, -0.0]),
    # clip: "If x_i is NaN, the result is NaN." "If min_i is NaN, the result is NaN."
    ("clip", ([NAN, 5.0, -5.0], 0.0, 1.0), [NAN, 1.0, 0.0]),
]


def _same(got, want, dtype):
    """Bit-level agreement: equal values, NaN where NaN, and the sign of every zero."""
    g = got.numpy().astype(np.float64)
    w = np.asarray(want, dtype=np.float64).astype(dtype.name).astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(w)), (g, w)
    ok = ~np.isnan(w)
    assert np.array_equal(g[ok], w[ok]), (g, w)
    assert np.array_equal(np.signbit(g[ok]), np.signbit(w[ok])), ("signed zero", g, w)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.name)
@pytest.mark.parametrize("case", SPECIAL_CASES, ids=lambda c: c[0])
def test_special_cases_follow_the_standard(case, dtype):
    name, args, want = case
    tensors = [pt.asarray(a, dtype=dtype) if isinstance(a, list) else a for a in args]
    got = getattr(pt, name)(*tensors)
    assert got.dtype is dtype
    _same(got, want, dtype)


def test_special_cases_with_scalars():
    # pow: "If x2_i is +0, the result is 1, even if x1_i is NaN." (a Python scalar exponent,
    # 2024.12's scalar argument support)
    _same(pt.pow(pt.asarray([NAN, 2.0]), 0.0), [1.0, 1.0], pt.float32)
    # maximum: "If either x1_i or x2_i is NaN, the result is NaN." (scalar first)
    _same(pt.maximum(NAN, pt.asarray([1.0, 2.0])), [NAN, NAN], pt.float32)
    # equal: "If x1_i is NaN or x2_i is NaN, the result is False."; not_equal: True
    assert pt.equal(pt.asarray([NAN, 1.0]), NAN).tolist() == [False, False]
    assert pt.not_equal(pt.asarray([NAN, 1.0]), NAN).tolist() == [True, True]
    # signbit: "If x_i is -0, the result is True." "If x_i is +0, the result is False."
    # "If x_i is -infinity, the result is True."
    assert pt.signbit(pt.asarray([-0.0, 0.0, -INF, 1.0])).tolist() == [True, False, True,
                                                                       False]


INTS = [pt.uint8, pt.int8, pt.int16, pt.int32, pt.int64]


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: d.name)
@pytest.mark.parametrize("name", ["trunc", "ceil", "floor", "round"])
def test_rounding_integers_keeps_the_integer_dtype(name, dtype):
    # "If x_i is already integer-valued, the result is x_i." and, for integer inputs, "the
    # returned array must have the same data type as x"
    vals = [0, 1, 7, 100] if dtype is pt.uint8 else [-100, -1, 0, 7]
    got = getattr(pt, name)(pt.asarray(vals, dtype=dtype))
    assert got.dtype is dtype and got.tolist() == vals


def test_statistical_special_cases():
    empty = pt.asarray([], dtype=pt.float64)
    # mean: "If N is 0, the arithmetic mean is NaN."; sum: "If N is 0, the sum is 0.";
    # prod: "If N is 0, the product is 1."
    assert math.isnan(pt.mean(empty).item())
    assert pt.sum(empty).item() == 0.0 and pt.prod(empty).item() == 1.0
    # std / var: "If N - correction is less than or equal to 0, the ... is NaN."  (With a
    # spread and N - correction = 0 polyten gives inf, as PyTorch: sum / max(0, N - c).)
    assert math.isnan(pt.std(pt.asarray([1.0]), correction=1).item())
    assert math.isnan(pt.var(pt.asarray([3.0, 3.0]), correction=2).item())
    # var with the standard's default correction=0 (polyten's default is PyTorch's 1)
    v = pt.asarray([1.0, 2.0, 3.0, 4.0], dtype=pt.float64)
    assert pt.var(v, correction=0).item() == np.var([1.0, 2.0, 3.0, 4.0])
    assert pt.std(v, correction=0).item() == np.std([1.0, 2.0, 3.0, 4.0])
    # all: "If x is an empty array ..., the test result must be True."; any: False
    assert pt.all(empty).item() is True and pt.any(empty).item() is False
    # all / any: "Positive infinity, negative infinity, and NaN must evaluate to True."
    assert pt.all(pt.asarray([INF, -INF, NAN])).item() is True
    # argmax / argmin: "... the indices of the first occurrence of the maximum value"
    assert pt.argmax(pt.asarray([1.0, 3.0, 3.0])).item() == 1
    assert pt.argmin(pt.asarray([2.0, 0.0, 0.0])).item() == 1
    # cumulative_sum: "include_initial ... the first element is the additive identity (0)"
    assert pt.cumulative_sum(pt.asarray([2, 3]), include_initial=True).tolist() == [0, 2, 5]
    assert pt.cumulative_prod(pt.asarray([2, 3]), include_initial=True).tolist() == [1, 2, 6]


def test_set_functions_treat_each_nan_as_distinct():
    # unique_*: "As nan values compare as False, nan values should be considered distinct."
    # (torch.unique agrees; this was a bug: NaNs were merged into one)
    x = pt.asarray([NAN, 1.0, NAN, 1.0])
    vals = pt.unique_values(x).numpy()
    np.testing.assert_array_equal(vals, [1.0, NAN, NAN])
    v, c = pt.unique_counts(x)
    assert c.tolist() == [2, 1, 1]
    v, i = pt.unique_inverse(x)
    np.testing.assert_array_equal(v.numpy()[i.numpy()], x.numpy())
    assert pt.unique(x).numel() == 3


def test_unique_nan_matches_torch():
    torch = pytest.importorskip("torch")
    x = [NAN, 2.0, NAN, 1.0, 2.0]
    v, inv, cnt = pt.unique(pt.asarray(x), return_inverse=True, return_counts=True)
    tv, tinv, tcnt = torch.unique(torch.tensor(x, dtype=torch.float32), return_inverse=True,
                                  return_counts=True)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    assert inv.tolist() == tinv.tolist() and cnt.tolist() == tcnt.tolist()


def test_nonzero_and_sort_in_the_standards_spelling():
    m = pt.asarray([[0, 1], [2, 0]])
    rows, cols = pt.nonzero(m, as_tuple=True)  # the standard's tuple of index arrays
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert pt.nonzero(m).shape == (2, 2)  # PyTorch's (n, ndim) by default
    x = pt.asarray([3.0, 1.0, 2.0, 1.0])
    assert pt.sort(x).values.tolist() == [1.0, 1.0, 2.0, 3.0]
    assert pt.argsort(x, stable=True).tolist() == [1, 3, 2, 0]
    assert pt.argsort(x, descending=True, stable=True).tolist() == [0, 2, 1, 3]


def test_clip_without_bounds_returns_a_copy():
    # clip: "If both min and max are None, the elements of the returned array must equal the
    # respective elements in x." (this was a bug: clip raised as clamp does)
    x = pt.asarray([1.0, NAN, -3.0])
    y = pt.clip(x)
    assert y is not x and y.dtype is x.dtype
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    y[0] = 5.0
    assert x[0].item() == 1.0  # a copy
    with pytest.raises(ValueError, match="clamp"):
        pt.clamp(x)  # PyTorch's clamp still needs a bound
    with pytest.raises(TypeError, match="clip"):
        pt.clip([1.0])


def test_keyword_spellings_of_the_standard():
    # full_like(x, /, fill_value, ...) and isdtype(dtype, kind): fill_value and dtype may be
    # passed by keyword (these were bugs: fill_value was positional-only, isdtype's first
    # parameter was called dt)
    x = pt.asarray([1, 2])
    assert pt.full_like(x, fill_value=7).tolist() == [7, 7]
    assert pt.isdtype(dtype=pt.int8, kind="integral") is True
    assert pt.isdtype(pt.float32, ("bool", "real floating")) is True
    assert pt.isdtype(pt.float32, pt.float32) and not pt.isdtype(pt.float32, pt.float64)


# --------------------------------------------------------------------------- signatures ---
def _params(fn):
    return inspect.signature(fn).parameters


OUR_SIGNATURES = {
    # name: (positional-only names, keyword names the standard uses)
    "astype": (["x", "dtype"], {"copy": True, "device": None}),
    "diff": (["x"], {"axis": None, "n": 1, "prepend": None, "append": None}),
    "isin": (["x1", "x2"], {"invert": False}),
    "searchsorted": (["x1", "x2"], {"side": "left", "sorter": None}),
    "matrix_transpose": (["x"], {}),
    "clip": (["x"], {"min": None, "max": None}),
}


@pytest.mark.parametrize("name", sorted(OUR_SIGNATURES))
def test_signatures_of_the_added_functions(name):
    pos, kws = OUR_SIGNATURES[name]
    ps = _params(getattr(pt, name))
    assert [n for n, p in ps.items() if p.kind is P.POSITIONAL_ONLY] == pos
    for kw, default in kws.items():
        assert kw in ps and ps[kw].kind in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD), kw
        # diff's axis defaults to None, meaning -1 (so that PyTorch's dim= can be told apart)
        assert ps[kw].default == default, (kw, ps[kw].default)


def test_positional_only_arguments_can_not_be_passed_by_keyword():
    x = pt.asarray([1.0, 2.0])
    with pytest.raises(TypeError):
        pt.astype(x=x, dtype=pt.float64)
    with pytest.raises(TypeError):
        pt.diff(x=x)
    with pytest.raises(TypeError):
        pt.isin(x1=x, x2=x)
    with pytest.raises(TypeError):
        pt.searchsorted(x1=x, x2=x)


def test_torch_spellings_of_the_added_functions():
    x = pt.asarray([1, 4, 9, 16])
    assert pt.diff(x, 2).tolist() == [2, 2]                      # torch: diff(input, n, dim)
    assert pt.diff(x, 1, 0).tolist() == [3, 5, 7]
    assert pt.diff(x, dim=-1, n=1).tolist() == [3, 5, 7]
    assert x.diff().tolist() == [3, 5, 7]                        # Tensor.diff
    assert pt.searchsorted(x, pt.asarray([4]), right=True).tolist() == [2]
    assert pt.searchsorted(x, pt.asarray([4]), side=None, right=True).tolist() == [2]
    assert pt.searchsorted(x, pt.asarray([4]), side=None).tolist() == [1]
    assert pt.searchsorted(x, 4, out_int32=True).dtype is pt.int32
    assert pt.isin(x, pt.asarray([4]), assume_unique=True).tolist() == [False, True, False,
                                                                         False]
    # nextafter is generated with the other binary ops: torch's names work as keywords
    y = pt.asarray([1.0])
    assert pt.nextafter(y, other=pt.asarray([2.0])).item() > 1.0
    assert y.nextafter(pt.asarray([0.0])).item() < 1.0


def test_keyword_names_of_the_standard_are_accepted(strict):
    """Every keyword parameter of the standard's functions is accepted under its name.

    Deliberate differences: PyTorch's ``size`` shapes in zeros/ones/empty/full (the shape is
    positional there, as in every Array API call seen in practice).
    """
    skip = {("zeros", "shape"), ("ones", "shape"), ("empty", "shape"), ("full", "shape")}
    problems = []
    for ns, sns, names, prefix in ((pt, strict, MAIN, ""),
                                   (pt.linalg, strict.linalg, LINALG, "linalg.")):
        for name in names:
            ref = getattr(sns, name, None)
            ours = getattr(ns, name, None)
            if not inspect.isfunction(ref) or ours is None:
                continue
            ps = _params(ours)
            var_kw = any(p.kind is P.VAR_KEYWORD for p in ps.values())
            var_pos = any(p.kind is P.VAR_POSITIONAL for p in ps.values())
            n_pos = sum(p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
                        for p in ps.values())
            ref_ps = _params(ref)
            need = sum(p.kind is P.POSITIONAL_ONLY for p in ref_ps.values())
            if need > n_pos and not var_pos:
                problems.append(f"{prefix}{name}: takes fewer than {need} positional args")
            for p in ref_ps.values():
                if p.kind not in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD) or \
                        (name, p.name) in skip:
                    continue
                q = ps.get(p.name)
                if (q is None or q.kind is P.POSITIONAL_ONLY) and not var_kw:
                    problems.append(f"{prefix}{name}: keyword {p.name!r} not accepted")
    assert not problems, problems


# ------------------------------------------------------------------------------- astype ---
ALL_DTYPES = [pt.bool, pt.uint8, pt.int8, pt.int16, pt.int32, pt.int64, pt.float16,
              pt.float32, pt.float64, pt.complex64, pt.complex128]
SRC = np.array([0.0, 1.0, -1.0, 2.75, -2.75, 100.0])


@pytest.mark.parametrize("src", ALL_DTYPES, ids=lambda d: d.name)
def test_astype_values_against_numpy(src):
    a = SRC.astype(src.name) if src is not pt.uint8 else np.abs(SRC).astype("uint8")
    x = pt.asarray(a)
    for dst in ALL_DTYPES:
        if src.is_complex and not dst.is_complex:
            continue
        got = pt.astype(x, dst)
        assert got.dtype is dst
        np.testing.assert_array_equal(got.numpy(), a.astype(dst.name))


def test_astype_copy_and_device():
    x = pt.asarray([1.0, 2.0])
    same = pt.astype(x, pt.float32, copy=False)
    assert same is x  # "if copy is False and dtype matches, return the input array"
    other = pt.astype(x, pt.float32)  # copy=True: always a new array
    assert other is not x
    other[0] = 9.0
    assert x[0].item() == 1.0
    assert pt.astype(x, pt.float64, copy=False).dtype is pt.float64
    assert pt.astype(x, "int32").dtype is pt.int32
    moved = pt.astype(x, pt.float32, device="cpu", copy=False)
    assert moved is x
    assert pt.astype(x, pt.int64, device=pt.device("cpu")).tolist() == [1, 2]
    t = pt.asarray([[1.5, -2.5]]).T  # non-contiguous
    assert pt.astype(t, pt.int8).tolist() == [[1], [-2]]
    assert pt.astype(pt.asarray(3.7), pt.int64).shape == ()  # 0-d
    assert pt.astype(pt.asarray([]), pt.bool).shape == (0,)


def test_astype_matches_torch_to():
    torch = pytest.importorskip("torch")
    a = np.array([-2.7, -0.5, 0.0, 0.5, 3.9], dtype=np.float32)
    for dst, tdst in [(pt.int32, torch.int32), (pt.uint8, torch.uint8), (pt.bool, torch.bool),
                      (pt.float16, torch.float16), (pt.complex64, torch.complex64)]:
        got = pt.astype(pt.asarray(np.abs(a) if dst is pt.uint8 else a), dst)
        want = torch.from_numpy(np.abs(a) if dst is pt.uint8 else a).to(tdst)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_astype_errors():
    x = pt.asarray([1.0])
    with pytest.raises(TypeError, match=r"astype: casting complex64 to float32 is not allowed"
                                        r".*x\.real"):
        pt.astype(pt.asarray([1 + 2j]), pt.float32)
    with pytest.raises(TypeError, match=r"astype: 'uint32' is not a polyten dtype \(unsigned "
                                        r"integers wider than 8 bits"):
        pt.astype(x, "uint32")
    with pytest.raises(TypeError, match="astype: 'bogus' is not a polyten dtype"):
        pt.astype(x, "bogus")
    with pytest.raises(TypeError, match="astype: expected a tensor, got list"):
        pt.astype([1.0], pt.float32)
    with pytest.raises(TypeError, match="astype: copy must be True or False"):
        pt.astype(x, pt.float32, copy=None)


# --------------------------------------------------------------------------------- diff ---
@pytest.mark.parametrize("dtype", [pt.int64, pt.int8, pt.uint8, pt.float32, pt.float64,
                                   pt.complex128, pt.bool], ids=lambda d: d.name)
def test_diff_against_numpy(dtype):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 9, size=(3, 5, 4))
    a = (a % 2).astype(bool) if dtype is pt.bool else a.astype(dtype.name)
    if dtype.is_complex:
        a = a + 1j * rng.integers(-3, 3, size=a.shape)
    x = pt.asarray(a)
    for kw in [{}, {"axis": 0}, {"axis": 1, "n": 2}, {"axis": -1, "n": 3}, {"n": 0},
               {"axis": 1, "n": 7}, {"dim": 0}]:
        npkw = {"axis": kw.get("axis", kw.get("dim", -1)), "n": kw.get("n", 1)}
        got = pt.diff(x, **kw)
        want = np.diff(a, **npkw)
        assert got.dtype is dtype and got.shape == want.shape, kw
        np.testing.assert_array_equal(got.numpy(), want)


def test_diff_float32_stays_float32_and_views():
    a = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    got = pt.diff(pt.asarray(a).T, axis=0)  # a transposed (non-contiguous) input
    assert got.dtype is pt.float32
    np.testing.assert_allclose(got.numpy(), np.diff(a.T.astype(np.float64), axis=0),
                               rtol=1e-6, atol=1e-6)
    got = pt.diff(pt.asarray(a)[:, ::2], axis=1, n=2)  # strided
    np.testing.assert_allclose(got.numpy(), np.diff(a[:, ::2].astype(np.float64), axis=1,
                                                    n=2), rtol=1e-6, atol=1e-5)


def test_diff_prepend_append():
    a = np.arange(12.0).reshape(3, 4) ** 2
    x = pt.asarray(a)
    pre, app = np.ones((3, 2)), np.full((3, 1), 7.0)
    got = pt.diff(x, axis=1, prepend=pt.asarray(pre), append=pt.asarray(app))
    np.testing.assert_array_equal(got.numpy(), np.diff(a, axis=1, prepend=pre, append=app))
    got = pt.diff(x, axis=0, n=2, prepend=pt.asarray(a[:1]), append=0.5)  # number: one slice
    np.testing.assert_array_equal(got.numpy(), np.diff(a, axis=0, n=2, prepend=a[:1],
                                                       append=0.5))
    # promotion: an int tensor with a float prepend
    got = pt.diff(pt.asarray([1, 2, 4]), prepend=pt.asarray([0.5]))
    assert got.dtype is pt.float32 and got.tolist() == [0.5, 1.0, 2.0]
    # empty along the axis, with n larger than the size
    assert pt.diff(pt.zeros((2, 0)), axis=1).shape == (2, 0)
    assert pt.diff(pt.zeros((2, 3)), axis=1, n=10).shape == (2, 0)


def test_diff_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(5).integers(-9, 9, size=(4, 5))
    for kw in [{}, {"n": 2, "dim": 0}, {"n": 3}]:
        t = torch.diff(torch.from_numpy(a), **kw)
        assert pt.diff(pt.asarray(a), **kw).tolist() == t.tolist()
    b = np.array([True, False, False, True])
    assert pt.diff(pt.asarray(b)).tolist() == torch.diff(torch.from_numpy(b)).tolist()
    p = torch.diff(torch.tensor([1, 2]), prepend=torch.tensor([0.5]))
    assert p.dtype == torch.float32 and pt.diff(pt.asarray([1, 2]), prepend=pt.asarray(
        [0.5])).tolist() == p.tolist()


def test_diff_errors():
    x = pt.asarray([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="diff: expected a tensor of at least 1 dimension"):
        pt.diff(pt.asarray(1.0))
    with pytest.raises(ValueError, match="diff: n must be non-negative, got -1"):
        pt.diff(x, n=-1)
    with pytest.raises(TypeError, match="diff: n must be an int, got float"):
        pt.diff(x, n=1.5)
    with pytest.raises(IndexError, match=r"diff: dimension out of range.*got 2"):
        pt.diff(x, axis=2)
    with pytest.raises(TypeError, match="diff: got both dim=0 and axis=1"):
        pt.diff(x, dim=0, axis=1)
    with pytest.raises(ValueError, match=r"diff: prepend must have the shape of x \(2, 3\) "
                                         r"except along dim 1, got \(3, 1\)"):
        pt.diff(x, prepend=pt.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"diff: append must have the shape of x \(2, 3\) "
                                         r"except along dim 1, got \(2,\)"):
        pt.diff(x, append=pt.zeros(2))
    with pytest.raises(TypeError, match="diff: expected a tensor, got list"):
        pt.diff([1, 2])


def test_diff_device_mismatch(cpu2):
    x = pt.asarray([1.0, 2.0])
    with pytest.raises(pt.DeviceMismatchError, match="diff"):
        pt.diff(x, prepend=pt.asarray([0.0], device=cpu2))


# ------------------------------------------------------------------------- searchsorted ---
@pytest.mark.parametrize("dtype", [pt.int64, pt.int16, pt.uint8, pt.float32, pt.float64,
                                   pt.bool], ids=lambda d: d.name)
def test_searchsorted_against_numpy(dtype):
    rng = np.random.default_rng(11)
    seq = np.sort(rng.integers(0, 6, 9)).astype(dtype.name)  # with ties
    vals = rng.integers(-1, 8, size=(3, 4)).astype(dtype.name)
    for side in ("left", "right"):
        got = pt.searchsorted(pt.asarray(seq), pt.asarray(vals), side=side)
        assert got.dtype is pt.int64 and got.shape == (3, 4)
        np.testing.assert_array_equal(got.numpy(), np.searchsorted(seq, vals, side=side))
    got = pt.searchsorted(pt.asarray(seq), pt.asarray(vals).T)  # non-contiguous values
    np.testing.assert_array_equal(got.numpy(), np.searchsorted(seq, vals.T))


def test_searchsorted_nan_scalars_empty_and_sorter():
    seq = np.array([-INF, -1.0, 0.0, 2.0, INF, NAN])  # NaN sorts last
    vals = np.array([NAN, -0.0, 0.0, INF, -5.0, 3.0])
    for side in ("left", "right"):
        np.testing.assert_array_equal(
            pt.searchsorted(pt.asarray(seq), pt.asarray(vals), side=side).numpy(),
            np.searchsorted(seq, vals, side=side))
    s = pt.asarray([1, 3, 5])
    r = pt.searchsorted(s, 4)  # a Python number: a 0-d result
    assert r.shape == () and r.item() == 2
    assert pt.searchsorted(s, 2.5).item() == 1  # a float value against int: promoted
    assert pt.searchsorted(s, pt.asarray([3.0]), side="right").tolist() == [2]
    assert pt.searchsorted(pt.asarray([], dtype=pt.float32), pt.asarray([1.0, 2.0])).tolist() \
        == [0, 0]
    assert pt.searchsorted(s, pt.asarray([], dtype=pt.int64)).shape == (0,)
    u = np.array([5.0, 1.0, 3.0, 2.0])
    order = np.argsort(u)
    got = pt.searchsorted(pt.asarray(u), pt.asarray([0.0, 2.5, 9.0]), sorter=pt.asarray(order))
    np.testing.assert_array_equal(got.numpy(), np.searchsorted(u, [0.0, 2.5, 9.0],
                                                               sorter=order))
    got = pt.searchsorted(pt.asarray(u), 3.0, side="right", sorter=pt.asarray(order,
                                                                              dtype=pt.int32))
    assert got.item() == np.searchsorted(u, 3.0, side="right", sorter=order)


def test_searchsorted_batched_rows_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    seq = np.sort(rng.standard_normal((2, 3, 5)).astype(np.float32), axis=-1)
    vals = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for right in (False, True):
        got = pt.searchsorted(pt.asarray(seq), pt.asarray(vals), right=right)
        want = torch.searchsorted(torch.from_numpy(seq), torch.from_numpy(vals), right=right)
        assert got.tolist() == want.tolist()
    s1 = np.array([1, 3, 3, 7])
    for side in ("left", "right"):
        got = pt.searchsorted(pt.asarray(s1), pt.asarray([[3, 8], [0, 1]]), side=side)
        want = torch.searchsorted(torch.from_numpy(s1), torch.tensor([[3, 8], [0, 1]]),
                                  side=side)
        assert got.tolist() == want.tolist()
    got = pt.searchsorted(pt.asarray(s1), 3, out_int32=True)
    want = torch.searchsorted(torch.from_numpy(s1), 3, out_int32=True)
    assert got.dtype is pt.int32 and got.item() == want.item()


def test_searchsorted_errors():
    s = pt.asarray([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="searchsorted: the sorted sequence x1 must have at "
                                         "least 1 dimension, got a 0-d tensor"):
        pt.searchsorted(pt.asarray(1.0), s)
    with pytest.raises(ValueError, match=r"searchsorted: a sorted sequence of shape \(2, 3\) "
                                         r"searches values of shape \(2, m\).*got values of "
                                         r"shape \(3,\)"):
        pt.searchsorted(pt.zeros((2, 3)), s)
    with pytest.raises(ValueError, match="searchsorted: side must be 'left' or 'right', got "
                                         "'middle'"):
        pt.searchsorted(s, s, side="middle")
    with pytest.raises(ValueError, match=r"searchsorted: sorter must have the shape of the "
                                         r"sorted sequence \(3,\), got \(2,\)"):
        pt.searchsorted(s, s, sorter=pt.asarray([0, 1]))
    with pytest.raises(IndexError, match="searchsorted \\(sorter\\): index 3 is out of bounds"):
        pt.searchsorted(s, s, sorter=pt.asarray([0, 1, 3]))
    with pytest.raises(TypeError, match="searchsorted: sorter must be an integer tensor"):
        pt.searchsorted(s, s, sorter=pt.asarray([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="searchsorted: complex"):
        pt.searchsorted(pt.asarray([1j]), pt.asarray([1j]))
    with pytest.raises(TypeError, match="searchsorted: complex"):
        pt.searchsorted(s, 1j)
    with pytest.raises(TypeError, match="searchsorted: the sorted sequence x1 must be a "
                                        "tensor, got list"):
        pt.searchsorted([1, 2], 1)
    with pytest.raises(OverflowError, match="searchsorted: the Python int 1000 is out of "
                                            "range for int8"):
        pt.searchsorted(pt.asarray([1, 2], dtype=pt.int8), 1000)


def test_searchsorted_device_mismatch(cpu2):
    with pytest.raises(pt.DeviceMismatchError, match="searchsorted"):
        pt.searchsorted(pt.asarray([1.0]), pt.asarray([1.0], device=cpu2))


# -------------------------------------------------------------------------------- isin ---
@pytest.mark.parametrize("dtype", [pt.int64, pt.int8, pt.uint8, pt.float32, pt.float64,
                                   pt.bool], ids=lambda d: d.name)
def test_isin_against_numpy(dtype):
    rng = np.random.default_rng(13)
    a = rng.integers(0, 8, size=(4, 5)).astype(dtype.name)
    b = rng.integers(0, 8, size=(2, 3)).astype(dtype.name)
    for invert in (False, True):
        got = pt.isin(pt.asarray(a), pt.asarray(b), invert=invert)
        assert got.dtype is pt.bool and got.shape == (4, 5)
        np.testing.assert_array_equal(got.numpy(), np.isin(a, b, invert=invert))
    got = pt.isin(pt.asarray(a).T, pt.asarray(b)[:, ::2])  # views
    np.testing.assert_array_equal(got.numpy(), np.isin(a.T, b[:, ::2]))


def test_isin_special_values_scalars_and_empty():
    a = np.array([NAN, 0.0, -0.0, INF, 1.5])
    b = np.array([NAN, 0.0, INF])
    # == semantics: NaN is in nothing, -0.0 equals 0.0
    assert pt.isin(pt.asarray(a), pt.asarray(b)).tolist() == [False, True, True, True, False]
    assert pt.isin(pt.asarray(a), pt.asarray(b), invert=True).tolist() == [True, False, False,
                                                                            False, True]
    assert pt.isin(pt.asarray([1, 2, 3]), 2).tolist() == [False, True, False]
    r = pt.isin(2, pt.asarray([1, 2]))
    assert r.shape == () and r.item() is True
    assert pt.isin(pt.asarray([1, 2], dtype=pt.int8), 1000).tolist() == [False, False]
    assert pt.isin(pt.asarray([1, 2]), 2.5).tolist() == [False, False]
    assert pt.isin(pt.asarray([1.0, 2.0]), pt.asarray([], dtype=pt.float32)).tolist() == \
        [False, False]
    assert pt.isin(pt.zeros((0, 3)), pt.asarray([1.0])).shape == (0, 3)
    # mixed dtypes compare in the promoted dtype
    assert pt.isin(pt.asarray([1, 2]), pt.asarray([2.0])).tolist() == [False, True]


def test_isin_composite_default_matches_numpy():
    """A backend without an isin kernel runs the default (sort + searchsorted + eq)."""
    rng = np.random.default_rng(17)
    with cpu_clone("noisin", drop=("isin",)) as dev:
        from polyten.dispatch.dispatcher import kernel_for
        assert kernel_for("isin", dev.backend) is None
        for dt in ("int64", "float32", "bool"):
            a = rng.integers(0, 6, size=(3, 4)).astype(dt)
            b = rng.integers(0, 6, size=(5,)).astype(dt)
            for invert in (False, True):
                got = pt.isin(pt.asarray(a, device=dev), pt.asarray(b, device=dev),
                              invert=invert)
                assert got.device == dev and got.dtype is pt.bool
                np.testing.assert_array_equal(got.numpy(), np.isin(a, b, invert=invert))
        s = np.array([NAN, -0.0, 3.0, 9.0])
        got = pt.isin(pt.asarray(s, device=dev), pt.asarray([0.0, NAN, 3.0], device=dev))
        assert got.tolist() == [False, True, True, False]
        got = pt.isin(pt.asarray([1.0], device=dev), pt.asarray([], device=dev), invert=True)
        assert got.tolist() == [True]
        assert pt.isin(pt.asarray(3.0, device=dev), 3.0).item() is True


def test_isin_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1, 5, 3], [7, 3, 0]])
    b = np.array([3, 0, 9])
    for invert in (False, True):
        want = torch.isin(torch.from_numpy(a), torch.from_numpy(b), invert=invert)
        assert pt.isin(pt.asarray(a), pt.asarray(b), invert=invert).tolist() == want.tolist()
    f = np.array([NAN, 1.0, -0.0], dtype=np.float32)
    g = np.array([NAN, 0.0], dtype=np.float32)
    assert pt.isin(pt.asarray(f), pt.asarray(g)).tolist() == \
        torch.isin(torch.from_numpy(f), torch.from_numpy(g)).tolist()


def test_isin_errors():
    with pytest.raises(TypeError, match="isin: expected at least one tensor operand, got int 1 "
                                        "and int 2"):
        pt.isin(1, 2)
    with pytest.raises(TypeError, match="isin: not supported for complex64"):
        pt.isin(pt.asarray([1j]), pt.asarray([1j]))
    with pytest.raises(TypeError, match="isin: not supported for complex"):
        pt.isin(pt.asarray([1.0]), 1j)
    with pytest.raises(TypeError, match="isin: x2 must be a tensor or a Python number"):
        pt.isin(pt.asarray([1.0]), object())


def test_isin_device_mismatch(cpu2):
    with pytest.raises(pt.DeviceMismatchError, match="isin"):
        pt.isin(pt.asarray([1.0]), pt.asarray([1.0], device=cpu2))


# ---------------------------------------------------------------------------- nextafter ---
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.name)
def test_nextafter_is_exact_in_each_dtype(dtype):
    a = np.array([1.0, 1.0, 0.0, 0.0, -2.5, 65504.0, 3.0], dtype=dtype.name)
    b = np.array([2.0, 0.0, 1.0, -1.0, -2.5, INF, 3.0], dtype=dtype.name)
    got = pt.nextafter(pt.asarray(a), pt.asarray(b))
    assert got.dtype is dtype
    with np.errstate(over="ignore"):  # float16's largest value towards inf is inf
        np.testing.assert_array_equal(got.numpy(), np.nextafter(a, b))  # bit for bit
    assert got.numpy()[0] - 1 == np.finfo(dtype.name).eps  # one ulp above 1
    # a Python number is weak: float32 stays float32
    got = pt.nextafter(pt.asarray(a), 10.0)
    assert got.dtype is dtype
    np.testing.assert_array_equal(got.numpy(), np.nextafter(a, np.asarray(10.0, a.dtype)))
    # broadcasting, 0-d and transposed operands
    m = np.arange(6, dtype=dtype.name).reshape(2, 3)
    got = pt.nextafter(pt.asarray(m).T, pt.asarray(np.array(-1, dtype=dtype.name)))
    np.testing.assert_array_equal(got.numpy(), np.nextafter(m.T, np.array(-1, m.dtype)))


def test_nextafter_promotes_and_writes_in_place():
    got = pt.nextafter(pt.asarray([1.0], dtype=pt.float32), pt.asarray([2.0],
                                                                       dtype=pt.float64))
    assert got.dtype is pt.float64 and got.item() == np.nextafter(1.0, 2.0)
    x = pt.asarray([1.0, 1.0])
    assert x.nextafter_(pt.asarray([2.0, 0.0])) is x
    np.testing.assert_array_equal(x.numpy(), np.nextafter(np.float32([1.0, 1.0]),
                                                          np.float32([2.0, 0.0])))


def test_nextafter_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array([0.0, 1.0, -1.0, 1e-30, -0.0], dtype=np.float32)
    b = np.array([1.0, -INF, -INF, 0.0, 1.0], dtype=np.float32)
    for dt in (np.float32, np.float64):
        want = torch.nextafter(torch.from_numpy(a.astype(dt)), torch.from_numpy(b.astype(dt)))
        got = pt.nextafter(pt.asarray(a.astype(dt)), pt.asarray(b.astype(dt)))
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_nextafter_errors():
    with pytest.raises(TypeError, match="nextafter: not supported for int64; nextafter takes "
                                        "real floating dtypes"):
        pt.nextafter(pt.asarray([1]), pt.asarray([2]))
    with pytest.raises(TypeError, match="nextafter: not supported for complex64"):
        pt.nextafter(pt.asarray([1j]), 1.0)
    with pytest.raises(ValueError, match=r"nextafter: cannot broadcast shapes \(2,\) and "
                                         r"\(3,\)"):
        pt.nextafter(pt.zeros(2), pt.zeros(3))
    with pytest.raises(TypeError, match="nextafter"):
        pt.nextafter(1.0, 2.0)


# ------------------------------------------------------------- matrix_transpose, to_device ---
def test_matrix_transpose_at_the_top_level():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = pt.asarray(a)
    t = pt.matrix_transpose(x)
    assert t.shape == (2, 4, 3) and pt.matrix_transpose is pt.linalg.matrix_transpose
    np.testing.assert_array_equal(t.numpy(), np.swapaxes(a, -1, -2))
    t[0, 0, 0] = -1.0  # a view, as x.mT
    assert x[0, 0, 0].item() == -1.0
    with pytest.raises(ValueError, match=r"matrix_transpose: expected a tensor of at least 2 "
                                         r"dimensions, got shape \(3,\)"):
        pt.matrix_transpose(pt.zeros(3))


def test_to_device(cpu2):
    x = pt.asarray([1.0, 2.0])
    assert x.to_device("cpu") is x
    y = x.to_device(cpu2)
    assert y.device == cpu2 and y.tolist() == [1.0, 2.0]
    assert y.to_device(pt.device("cpu"), stream=None).device == pt.device("cpu")
