"""The op table: every op polyten dispatches, declared once.

Each :class:`OpDef` says what the op is (``primitive`` -- every backend must implement it, in
its ``tier`` -- or ``composite`` -- polyten has a backend-agnostic default written with polyten
ops, which a backend may replace with a fused kernel), how many tensor inputs it takes, which
input dtypes it accepts (a category of :data:`DTYPE_CATEGORIES`), how the result dtype is
derived (:data:`RESULT_RULES`), whether it is differentiable, and the exact kernel signature a
backend implements.  The table drives dispatch, ``docs/backends.md`` and the conformance suite.

Kernel conventions (all kernels): arguments named ``x``, ``y``, ``xs`` ... are native arrays
of the backend (``y`` may also be a Python scalar where the signature says ``scalar``); other
parameters are plain Python values already normalised by the core (dims are non-negative ints
in range, ``dims`` are sorted tuples, shapes are tuples of ints, dtypes are polyten dtype
*names* such as ``"float32"``).  Inputs arrive already cast to the computation dtype, so a
kernel never promotes; it returns native arrays of exactly the result dtype and shape.
"""

from __future__ import annotations

from typing import Dict, Iterable, List

__all__ = ["OpDef", "OPS", "DTYPE_CATEGORIES", "RESULT_RULES", "TIERS", "CORE_PRIMITIVES", "op",
           "validate_kernels", "primitives", "composites"]

_FLOAT = ("float16", "bfloat16", "float32", "float64")
_COMPLEX = ("complex64", "complex128")
_SINT = ("int8", "int16", "int32", "int64")
_INT = ("uint8",) + _SINT
ALL_DTYPES = ("bool",) + _INT + _FLOAT + _COMPLEX

DTYPE_CATEGORIES: Dict[str, frozenset] = {
    "any": frozenset(ALL_DTYPES),
    "numeric": frozenset(_INT + _FLOAT + _COMPLEX),
    "real": frozenset(("bool",) + _INT + _FLOAT),
    "real_numeric": frozenset(_INT + _FLOAT),
    "floating": frozenset(_FLOAT + _COMPLEX),
    "real_floating": frozenset(_FLOAT),
    "complex": frozenset(_COMPLEX),
    "integer": frozenset(_INT),
    "integer_or_bool": frozenset(("bool",) + _INT),
    "bool": frozenset(("bool",)),
}

RESULT_RULES = {
    "same": "the input's dtype",
    "promote": "the promoted dtype of the inputs (Python scalars are weak)",
    "float": "the input's dtype if floating, else the default float dtype",
    "promote_float": "the promoted dtype, or the default float dtype if that is integral/bool",
    "real": "the input's dtype, complex mapped to the matching real dtype",
    "bool": "bool",
    "int64": "int64",
    "custom": "documented with the op",
}

TIERS = {
    "core": "every backend implements these",
    "random": "random number generation",
    "linalg": "linear algebra beyond matmul",
    "transfer": "moving data in and out of the backend",
    "complex": "complex parts (conj, real, imag): a backend that stores complex dtypes",
    "bitwise": "bit-level integer ops (and, or, xor, not, shifts) and nextafter",
    "fft": "discrete Fourier transforms (polyten.fft): a backend that stores complex dtypes",
}


class OpDef:
    """One op: its declaration in the table (see the module docstring)."""

    __slots__ = ("name", "kind", "tier", "arity", "dtypes", "result", "differentiable",
                 "signature", "doc")

    def __init__(self, name, kind, tier, arity, dtypes, result, differentiable, signature, doc):
        assert kind in ("primitive", "composite"), kind
        assert tier in TIERS, tier
        assert dtypes in DTYPE_CATEGORIES, dtypes
        assert result in RESULT_RULES, result
        self.name, self.kind, self.tier, self.arity = name, kind, tier, arity
        self.dtypes, self.result, self.differentiable = dtypes, result, differentiable
        self.signature, self.doc = signature, doc

    @property
    def accepted(self) -> frozenset:
        return DTYPE_CATEGORIES[self.dtypes]

    def __repr__(self) -> str:
        return f"OpDef({self.name!r}, {self.kind}, tier={self.tier!r})"


OPS: Dict[str, OpDef] = {}


def _decl(kind, tier, dtypes, result, diff, signature, doc="", arity=None):
    name = signature.split("(", 1)[0]
    if arity is None:
        params = signature.split("(", 1)[1].split(")", 1)[0]
        arity = sum(1 for p in params.split(",") if p.strip() in ("x", "y", "cond", "index",
                                                                  "src", "a", "b"))
        if "xs" in params:
            arity = -1
    assert name not in OPS, name
    OPS[name] = OpDef(name, kind, tier, arity, dtypes, result, diff, signature, doc)


P, C = "primitive", "composite"

# --- elementwise, unary: kernel(x) -> array ---------------------------------------------------
for _n in ("neg", "positive"):
    _decl(P, "core", "numeric", "same", True, f"{_n}(x)")
_decl(P, "core", "numeric", "real", True, "abs(x)")
_decl(P, "core", "real_numeric", "same", True, "sign(x)")
for _n in ("floor", "ceil", "trunc"):
    _decl(P, "core", "real_numeric", "same", True, f"{_n}(x)", "integers are returned unchanged")
_decl(P, "core", "real_numeric", "same", True, "round(x, decimals)",
      "round half to even, as numpy.round / torch.round")
for _n in ("exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tan",
           "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid",
           "exp2"):
    _decl(P, "core", "any", "float", True, f"{_n}(x)", "integer inputs are cast to float first")
_decl(P, "core", "real", "float", True, "erf(x)", "accurate to float64 rounding")
# the gamma family (torch.lgamma, digamma, polygamma): composites whose kernel-level defaults
# (dispatch/defaults.py) are built from where / floor / log / sin / cos / pow
_decl(C, "core", "real", "float", True, "lgamma(x)",
      "log |gamma(x)|; +inf at 0, the negative integers and +-inf; default: Stirling from 10, "
      "a rational on [2, 3) with the recurrence below, reflection for x < 0")
_decl(C, "core", "real", "float", True, "digamma(x)",
      "psi(x); -inf at +0, +inf at -0, NaN at the negative integers and -inf; default: "
      "recurrence to x >= 10, asymptotic series, reflection for x < 0")
_decl(C, "core", "real", "float", True, "polygamma(x, n)",
      "the n-th derivative of digamma (torch.polygamma(n, x)): n a Python int >= 0 checked by "
      "the core, n = 0 is digamma; (-1)^(n+1) n! zeta(n+1, x), (-1)^(n+1) inf at the poles, 0 "
      "at +inf, NaN at -inf; default: Hurwitz zeta by Euler-Maclaurin (Cephes), negative x "
      "through zeta at r = x - floor(x), 1 - r and 1 - x")
_decl(P, "core", "numeric", "same", True, "square(x)")
_decl(P, "core", "any", "float", True, "reciprocal(x)")
_decl(P, "core", "real", "bool", False, "signbit(x)")
for _n in ("isnan", "isinf", "isfinite"):
    _decl(P, "core", "any", "bool", False, f"{_n}(x)")
_decl(P, "core", "any", "bool", False, "logical_not(x)")
_decl(P, "core", "integer_or_bool", "same", False, "bitwise_not(x)")
_decl(P, "core", "floating", "same", True, "nan_to_num(x, nan, posinf, neginf)",
      "posinf/neginf are floats (the core fills None with the dtype's max/min)")
_decl(P, "core", "numeric", "same", True, "conj(x)")
_decl(P, "core", "numeric", "real", True, "real(x)")
_decl(P, "core", "numeric", "real", True, "imag(x)")
_decl(C, "core", "real", "same", True, "relu(x)", "default: maximum(x, 0)")

# --- elementwise, binary: kernel(x, y) -> array; y may be a Python scalar ---------------------
_decl(P, "core", "any", "promote", True, "add(x, y)", "bool + bool is logical or")
_decl(P, "core", "numeric", "promote", True, "sub(x, y)",
      "bool - bool is refused (as PyTorch; use logical_xor)")
_decl(P, "core", "any", "promote", True, "mul(x, y)")
_decl(P, "core", "any", "promote_float", True, "div(x, y)", "true division")
_decl(P, "core", "real_numeric", "promote", True, "floor_divide(x, y)",
      "rounds toward -inf (Python //); integer division by zero is the backend's business")
_decl(P, "core", "real_numeric", "promote", True, "remainder(x, y)",
      "sign of the divisor (Python %)")
_decl(P, "core", "real_numeric", "promote", True, "fmod(x, y)", "sign of the dividend (C fmod)")
_decl(P, "core", "numeric", "promote", True, "pow(x, y)",
      "integer ** negative integer: 1 and -1 keep their magnitude, others give 0 (PyTorch); "
      "the core refuses a negative Python int exponent on an integer tensor")
for _n in ("maximum", "minimum"):
    _decl(P, "core", "real", "promote", True, f"{_n}(x, y)", "NaN propagates")
_decl(P, "core", "real", "promote_float", True, "atan2(x, y)")
_decl(P, "core", "real", "promote_float", True, "hypot(x, y)")
_decl(P, "core", "real", "promote_float", True, "logaddexp(x, y)")
_decl(P, "core", "real", "promote_float", True, "copysign(x, y)")
_decl(P, "core", "real_floating", "promote", False, "nextafter(x, y)",
      "the next representable value after x towards y, in the computation dtype "
      "(C nextafter)")
for _n in ("eq", "ne"):
    _decl(P, "core", "any", "bool", False, f"{_n}(x, y)")
for _n in ("lt", "le", "gt", "ge"):
    _decl(P, "core", "real", "bool", False, f"{_n}(x, y)")
for _n in ("logical_and", "logical_or", "logical_xor"):
    _decl(P, "core", "any", "bool", False, f"{_n}(x, y)")
for _n in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    _decl(P, "core", "integer_or_bool", "promote", False, f"{_n}(x, y)")
for _n in ("bitwise_left_shift", "bitwise_right_shift"):
    _decl(P, "core", "integer", "promote", False, f"{_n}(x, y)")
_decl(P, "core", "any", "promote", True, "where(cond, x, y)",
      "cond is a bool array; x and y arrays or scalars of the result dtype")
_decl(P, "core", "real", "promote", True, "clamp(x, lo, hi)",
      "lo/hi: arrays, scalars or None (not both None); NaN propagates")
_decl(C, "core", "floating", "bool", False, "isclose(x, y, rtol, atol, equal_nan)")
_decl(C, "core", "any", "custom", False, "inplace(op, x, y) -> x",
      "x = op(x, y) written into x's memory (x += y, x.add_(y), x.exp_()): op names an "
      "elementwise op of this table (y None for a unary op) or is None to write y into x "
      "(x.copy_(y)); y an array of x's dtype broadcastable to x's shape, or a scalar that "
      "fits it; x may be a view; default: op's kernel, then setitem(x, (Ellipsis,), result)")

# --- casting and copies ---------------------------------------------------------------------
_decl(P, "core", "any", "custom", True, "astype(x, dtype)",
      "a new array of dtype (always a copy); float->int truncates toward zero")
_decl(P, "core", "any", "same", True, "copy(x)", "a C-contiguous copy")
_decl(P, "core", "any", "custom", False, "is_contiguous(x) -> bool", "not an array result",
      arity=1)

# --- reductions ------------------------------------------------------------------------------
# dims: tuple of non-negative ints, or None for all; keepdim: bool
_decl(P, "core", "any", "custom", True, "sum(x, dims, keepdim, dtype)",
      "dtype: the accumulation/result dtype (bool/int -> int64 by default, chosen by the core)")
_decl(P, "core", "any", "custom", True, "prod(x, dims, keepdim, dtype)")
_decl(P, "core", "floating", "same", True, "mean(x, dims, keepdim)")
_decl(P, "core", "real", "same", True, "amax(x, dims, keepdim)", "NaN propagates")
_decl(P, "core", "real", "same", True, "amin(x, dims, keepdim)", "NaN propagates")
_decl(P, "core", "real", "int64", False, "argmax(x, dim, keepdim)",
      "dim None: index into the flattened array; first occurrence on ties")
_decl(P, "core", "real", "int64", False, "argmin(x, dim, keepdim)")
_decl(C, "core", "real", "custom", True, "max_dim(x, dim, keepdim) -> (values, indices)",
      "default: amax + argmax")
_decl(C, "core", "real", "custom", True, "min_dim(x, dim, keepdim) -> (values, indices)")
_decl(P, "core", "floating", "real", True, "var(x, dims, correction, keepdim)")
_decl(C, "core", "floating", "real", True, "std(x, dims, correction, keepdim)",
      "default: sqrt(var)")
_decl(C, "core", "floating", "same", True, "logsumexp(x, dims, keepdim)",
      "default: max-shifted log(sum(exp))")
_decl(P, "core", "floating", "real", True, "vector_norm(x, ord, dims, keepdim)",
      "ord: a float, inf or -inf")
_decl(P, "core", "any", "bool", False, "all(x, dims, keepdim)")
_decl(P, "core", "any", "bool", False, "any(x, dims, keepdim)")
_decl(P, "core", "any", "custom", True, "cumsum(x, dim, dtype)")
_decl(P, "core", "any", "custom", True, "cumprod(x, dim, dtype)")

# --- linear algebra -------------------------------------------------------------------------
_decl(P, "core", "numeric", "promote", True, "matmul(a, b)",
      "numpy.matmul semantics; the core has checked shapes and cast to a common dtype")
_decl(P, "core", "numeric", "promote", True, "einsum(equation, xs)",
      "equation already validated; xs share one dtype", arity=-1)
_decl(C, "core", "numeric", "promote", True, "tensordot(x, y, dims_x, dims_y)",
      "default: permute + reshape + matmul")
_decl(P, "core", "any", "same", True, "diagonal(x, offset, dim1, dim2)",
      "a view that writes through (as torch.diagonal); dim1 != dim2")
_decl(C, "core", "numeric", "custom", True, "cross(x, y, dim)",
      "size 3 along dim; x and y already broadcast to one shape; default: component products")
_decl(P, "linalg", "floating", "same", True, "linalg_inv(x) -> (inverse, info)",
      "x (..., n, n); info: int32 array of the batch shape, nonzero where a matrix is "
      "singular (the core raises, naming the call)")
_decl(P, "linalg", "floating", "same", True, "linalg_solve(a, b) -> (solution, info)",
      "a (..., n, n); b (..., n, k), batch dims broadcast (checked by the core) -- the core "
      "turns a vector b into (..., n, 1); info as linalg_inv")
_decl(P, "linalg", "floating", "same", True, "linalg_det(a)")
_decl(P, "linalg", "floating", "custom", True, "linalg_slogdet(x) -> (sign, logabsdet)",
      "sign of x's dtype; logabsdet real")
_decl(P, "linalg", "floating", "same", True, "linalg_cholesky(x, upper) -> (factor, info)",
      "info nonzero where a matrix is not positive-definite")
_decl(P, "linalg", "floating", "same", True, "linalg_qr(x, mode) -> (q, r)",
      "mode 'reduced', 'complete' or 'r' (then q is None)")
_decl(P, "linalg", "floating", "custom", True,
      "linalg_eigh(x, upper) -> (eigenvalues, eigenvectors)",
      "ascending real eigenvalues; eigenvectors of x's dtype; upper: which triangle is read")
_decl(P, "linalg", "floating", "custom", True,
      "linalg_svd(x, full_matrices, compute_uv) -> (u, s, vh)",
      "s real, descending; u and vh None when not compute_uv")
_decl(P, "linalg", "floating", "custom", True, "linalg_lu_factor(x, pivot) -> (lu, pivots, info)",
      "LAPACK getrf: lu of x's dtype (L's unit diagonal implied), pivots int32 (..., min(m, n)) "
      "1-based row swaps (1..k when not pivot), info int32 of the batch shape: the 1-based "
      "index of the first zero on U's diagonal, 0 if none")
_decl(P, "linalg", "floating", "custom", True,
      "linalg_eig(x, compute_v) -> (eigenvalues, eigenvectors)",
      "LAPACK geev of square x (finite: checked by the core; float16 / bfloat16 refused by "
      "the core, as torch): complex64 for float32 / complex64 x, complex128 for float64 / "
      "complex128 x, always complex; eigenvalues (..., n) in no particular order, "
      "eigenvectors (..., n, n) the columns, each of norm 1; eigenvectors None when not "
      "compute_v")
_decl(C, "linalg", "floating", "real", True, "matrix_norm(x, ord, dims, keepdim)",
      "ord 'fro', 'nuc', 1, -1, inf, -inf, 2, -2; dims an ordered pair (rows, columns); "
      "default: vector_norm / sums of abs / linalg_svd")

# --- discrete Fourier transforms (polyten.fft) ------------------------------------------------
# Modelled on PyTorch's _fft_c2c / _fft_r2c / _fft_c2r.  The core does the rest: promotion
# (integers and float16 are computed in float32 / the default float), zero-padding and trimming
# to n / s (slicing and concat), hfft / ihfft (conjugates), so a kernel only transforms.  norm
# is numpy.fft's (and cupy.fft's) for the direction the kernel computes: 'backward' = no
# scaling of a forward transform and 1/n on an inverse one, 'forward' the other way round,
# 'ortho' 1/sqrt(n) both ways, n being the product of the transformed (signal) sizes.
_FFT_DIMS = ("dims a non-empty tuple of distinct non-negative dims, each of size >= 1 in x "
             "(checked by the core; other dims may be empty)")
_decl(P, "fft", "complex", "same", True, "fft_c2c(x, dims, norm, forward)",
      f"complex-to-complex transform over dims (sorted); {_FFT_DIMS}; forward True for "
      "exp(-2 pi i jk / n), False for the inverse; norm as numpy.fft's for that direction "
      "('backward': no scaling forward, 1/n inverse; 'forward': the other way round; 'ortho': "
      "1/sqrt(n) both); result of x's shape")
_decl(P, "fft", "real_floating", "custom", True, "fft_r2c(x, dims, norm, onesided)",
      f"forward transform of real x (float32 / float64: the core computes float16 and "
      f"bfloat16 in float32) to complex64 / complex128; {_FFT_DIMS}, the last one the "
      "halved dim (the others sorted); onesided: that dim keeps its first size // 2 + 1 "
      "entries (numpy.fft.rfftn), else the full Hermitian spectrum of x's shape "
      "(numpy.fft.fftn)")
_decl(P, "fft", "complex", "real", True, "fft_c2r(x, dims, norm, last_dim_size)",
      f"inverse of the onesided fft_r2c: Hermitian half-spectrum x to a real array "
      f"(numpy.fft.irfftn); {_FFT_DIMS}, the last one the halved dim (the others sorted), where "
      "x has last_dim_size // 2 + 1 entries and the result last_dim_size (the core pads / trims "
      "x); the imaginary parts a real result cannot hold are ignored")
del _FFT_DIMS

# --- shape (views where the array library can make them) ------------------------------------
_decl(P, "core", "any", "same", True, "reshape(x, shape)",
      "a view when the memory layout allows, else a copy")
_decl(P, "core", "any", "same", True, "permute(x, dims)", "a view")
_decl(P, "core", "any", "same", True, "expand(x, shape)", "a broadcast view")
_decl(P, "core", "any", "same", True, "concat(xs, dim)", "xs share one dtype", arity=-1)
_decl(P, "core", "any", "same", True, "flip(x, dims)")
_decl(P, "core", "any", "same", True, "roll(x, shifts, dims)",
      "shifts/dims tuples of equal length; dims None means flattened")
_decl(P, "core", "any", "same", True, "tile(x, reps)", "len(reps) >= x.ndim")
_decl(P, "core", "any", "same", True, "tril(x, k)")
_decl(P, "core", "any", "same", True, "triu(x, k)")
_decl(C, "core", "any", "same", True, "stack(xs, dim)", "default: unsqueeze + concat",
      arity=-1)

# --- indexing ---------------------------------------------------------------------------------
_decl(P, "core", "any", "same", True, "getitem(x, key)",
      "key: tuple of int, slice, None, Ellipsis, native int64 arrays and native bool arrays, "
      "all bounds-checked by the core; basic indexing returns a view")
_decl(P, "core", "any", "same", True, "setitem(x, key, value)",
      "in place; value an array of x's dtype broadcastable to the indexed shape, or a scalar")
_decl(P, "core", "any", "same", True, "gather(x, dim, index)",
      "index int64 of x.ndim dims, each dim <= x's except dim; values bounds-checked")
_decl(P, "core", "any", "same", True, "scatter(x, dim, index, src)",
      "out of place: a copy of x with src written at index; src array or scalar")
_decl(P, "core", "numeric", "same", True, "scatter_add(x, dim, index, src)", "out of place")
_decl(C, "core", "real_numeric", "same", True,
      "scatter_reduce(x, dim, index, src, reduce, include_self)",
      "out of place: a copy of x with src (x's dtype, each dim at least index's) combined at "
      "index along dim by reduce: 'sum', 'prod', 'mean' (integers round down), 'amax' or "
      "'amin' (NaN propagates); include_self False leaves x's values at the written positions "
      "out of the reduction.  Default: scatter_add for sum and mean; a sort and a segmented "
      "scan (deterministic) for prod, amax and amin")
_decl(P, "core", "any", "int64", False, "nonzero(x)", "(n, ndim) int64 indices, C order",
      arity=1)
_decl(C, "core", "integer", "bool", False, "index_check(x, low, high, ignore, acc)",
      "0-d bool: acc (a 0-d bool array, or None for False) OR whether any element of x that "
      "is not `ignore` (an int, or None for no exception) lies outside [low, high); x is not "
      "empty.  The core's index-bound and class-target checks on backends with "
      "deferred_checks: one fused reduction there; default: lt, ge, ne, any, logical_or",
      arity=1)
_decl(P, "core", "real", "custom", True,
      "sort(x, dim, descending, stable) -> (values, indices)")
_decl(P, "core", "real", "custom", True,
      "topk(x, k, dim, largest, sorted) -> (values, indices)")
_decl(P, "core", "real", "custom", False,
      "unique(x, return_inverse, return_counts) -> (values, inverse, counts)",
      "flattened, sorted; NaNs are distinct values (as torch.unique and the Array API); "
      "inverse/counts int64 or None when not asked")
_decl(P, "core", "real", "int64", False, "searchsorted(x, y, right)",
      "x sorted along its last dim, (n,) or (..., n) with y (..., m) of the same leading "
      "dims (checked by the core); one dtype; NaN sorts last; insertion indices of y's shape")
_decl(C, "core", "real_floating", "int64", False, "segment_argmax(x, starts)",
      "x (n, d); starts (m,) int64, nondecreasing: segment k holds rows starts[k] to "
      "starts[k + 1] (the last to n, rows before starts[0] go to segment 0); for each segment "
      "and column the row of its first maximum (NaN counts as the maximum, as argmax); an "
      "empty segment gives a valid row the caller ignores; (m, d) int64 (embedding_bag's "
      "'max'); default: two stable sorts order the rows by (segment, value)", arity=1)
_decl(C, "core", "real", "bool", False, "isin(x, y, invert)",
      "whether each element of x equals some element of y (any shape); one dtype; NaN is in "
      "nothing; result of x's shape; default: sort + searchsorted + gather + eq")
_decl(C, "core", "any", "same", True, "masked_fill(x, mask, value)", "default: where",
      arity=1)

# --- creation (device_index is None on single-device backends) -------------------------------
_decl(P, "core", "any", "custom", False, "full(shape, value, dtype, device_index)",
      arity=0)
_decl(P, "core", "any", "custom", False, "empty(shape, dtype, device_index)", arity=0)
_decl(P, "core", "real_numeric", "custom", False,
      "arange(start, stop, step, dtype, device_index)", arity=0)
_decl(P, "core", "floating", "custom", False,
      "linspace(start, stop, num, dtype, device_index)", "both ends included", arity=0)
_decl(C, "core", "floating", "custom", False,
      "logspace(start, stop, num, base, dtype, device_index)",
      "default: base ** linspace(start, stop, num), computed in float64", arity=0)
_decl(P, "core", "any", "custom", False, "eye(n, m, k, dtype, device_index)", arity=0)
_decl(P, "core", "any", "custom", False, "asarray(obj, dtype, copy, device_index)",
      "obj: nested sequences/scalars, a host (NumPy) array, or a native array; dtype None "
      "means infer (the core then maps Python floats to the default dtype)", arity=0)

# --- random (per-backend generator, reseeded by polyten.manual_seed) -------------------------
_decl(P, "random", "real_floating", "custom", False,
      "random_uniform(shape, low, high, dtype, device_index)", arity=0)
_decl(P, "random", "real_floating", "custom", False,
      "random_normal(shape, mean, std, dtype, device_index)", arity=0)
_decl(P, "random", "real_numeric", "custom", False,
      "random_integers(shape, low, high, dtype, device_index)", "low inclusive, high exclusive",
      arity=0)
_decl(P, "random", "integer", "custom", False, "random_permutation(n, dtype, device_index)",
      arity=0)
_decl(P, "random", "real_floating", "same", False, "bernoulli(p)",
      "p: an array of probabilities in [0, 1] (checked by the core); returns 0/1 of p's dtype",
      arity=1)
_decl(P, "random", "real_floating", "int64", False,
      "multinomial(x, num_samples, replacement)", "x (n,) or (b, n) non-negative weights")
_decl(C, "random", "real_floating", "custom", False,
      "dropout_mask(shape, p, dtype, device_index)",
      "dropout's scaled keep mask: 1 / (1 - p) with probability 1 - p, else 0, of dtype (0 < p "
      "< 1, a float); default: random_uniform >= p, cast to dtype, times 1 / (1 - p)", arity=0)
_decl(C, "random", "real_floating", "custom", True, "dropout(x, p)",
      "dropout of x (0 < p < 1, a float): returns (y, mask), mask what dropout_mask(x's shape, "
      "p, x's dtype, x's device) would draw from the same generator state and y = x * mask "
      "exactly (the gradient is g * mask); default: dropout_mask, then mul", arity=1)

# --- transfer ---------------------------------------------------------------------------------
_decl(P, "transfer", "any", "same", False, "to_host(x)",
      "a NumPy ndarray with the same values (may share memory on host backends)")
_decl(P, "transfer", "any", "same", False, "from_host(array, device_index)",
      "a native array from a NumPy ndarray (same dtype)", arity=0)
_decl(P, "transfer", "any", "same", False, "from_dlpack(obj, device_index)",
      "a native array from any object with __dlpack__", arity=0)
# data loading (issue 5): pinned host staging for DataLoader(pin_memory=True), polyten/api/pinning.py
_decl(C, "transfer", "any", "same", False, "pin_memory(array)",
      "a NumPy ndarray with array's values in page-locked host memory the backend's device "
      "reads by DMA; default: array itself (a backend with nothing to pin)", arity=0)
_decl(C, "transfer", "any", "same", False, "from_pinned(array, device_index)",
      "a native array from a pin_memory() result, copied asynchronously on the device's "
      "current stream (the backend keeps array alive until the copy is done); default: "
      "from_host", arity=0)
_decl(C, "transfer", "any", "custom", False, "is_pinned(array)",
      "whether a NumPy ndarray's memory is page-locked by this backend (a Python bool); "
      "default: False", arity=0)

# --- nn: activations, linear layers, losses (polyten.nn.functional) --------------------------
_decl(C, "core", "real_floating", "same", True, "softmax(x, dim)",
      "the core handles empty inputs; default: exp(x - max) / sum, shifted by the max")
_decl(C, "core", "real_floating", "same", True, "log_softmax(x, dim)",
      "default: x - max - log(sum(exp(x - max)))")
_decl(C, "core", "real_floating", "same", True, "gelu(x, approximate)",
      "x * Phi(x) (approximate 'none') or PyTorch's tanh form (approximate 'tanh'); default: "
      "erf / tanh in polyten ops")
_decl(C, "core", "real_floating", "same", True, "silu(x)",
      "x * sigmoid(x); default: x * sigmoid(x)")
_decl(C, "core", "real_floating", "same", True, "leaky_relu(x, negative_slope)",
      "x where x > 0, else negative_slope * x (a float); default: where")
_decl(C, "core", "real_floating", "same", True, "elu(x, alpha, scale, input_scale)",
      "scale * (x where x > 0, else alpha * expm1(input_scale * x)), floats (elu, selu and "
      "celu); default: where, with expm1 of min(x, 0)")
_decl(C, "core", "real_floating", "same", True, "softplus(x, beta, threshold)",
      "log1p(exp(beta * x)) / beta, x where beta * x > threshold (floats); default: exp of "
      "min(beta * x, threshold)")
_decl(C, "core", "numeric", "promote", True, "linear(x, weight, bias)",
      "x (..., in), weight (out, in), bias (out,) or None, one dtype (checked by the core); "
      "default: matmul(x, weight.mT) + bias", arity=3)
_decl(C, "core", "real_floating", "custom", True,
      "scaled_dot_product_attention(q, k, v, keep, scale, is_causal)",
      "attention without an explicit mask: q (..., L, E), k (..., S, E), v (..., S, Ev) with "
      "the same leading dims and one dtype, none empty (the core handles empty ones); keep None "
      "or dropout's scaled keep mask (..., L, S) of that dtype, applied to the weights; scale a "
      "float; is_causal: query i attends to keys j <= i only.  Returns (out, weights, dropped): "
      "weights = softmax(q @ k^T * scale) over S (0 where causality excludes a key), dropped = "
      "weights * keep (None when keep is None), out = dropped (or weights) @ v, all of q's "
      "dtype; the backward reads weights and dropped; default: matmul, softmax, mul", arity=4)
_decl(C, "core", "real_floating", "custom", True,
      "nll_loss(x, target, weight, ignore_index, reduction)",
      "x (N, C, ...) or (C,) log-probabilities; target int64 class indices of x's shape without "
      "dim 1, bounds-checked by the core (entries equal to ignore_index are skipped); weight "
      "(C,) of x's dtype or None; reduction 'none' (target's shape), 'sum' or 'mean' (0-d, "
      "divided by the summed weights of the targets: nan when all are ignored); result of x's "
      "dtype; default: gather + where", arity=2)
_decl(C, "core", "real_floating", "custom", True,
      "cross_entropy(x, target, weight, ignore_index, reduction)",
      "cross entropy of logits x with class-index targets (no label smoothing), arguments as "
      "nll_loss's; returns (loss, logp): the loss as nll_loss(log_softmax(x, class dim)) "
      "returns it, and those log-probabilities (x's shape and dtype), which the backward "
      "reads; default: log_softmax then nll_loss", arity=2)

# --- nn: normalisation (polyten.nn.functional._norm) -----------------------------------------
_decl(C, "core", "real_floating", "same", True,
      "ctc_alpha(x, skip, input_lengths, target_lengths)",
      "CTC's negative log-likelihood (N,) (inf without an alignment) from x (T, N, L), the "
      "log-probabilities of each sample's extended labels (blank, l1, blank, ..., blank) per "
      "frame; skip a (N, L) bool array: the s - 2 transition allowed; the lengths tuples of N "
      "ints.  Default: the log-space alpha recursion in polyten ops", arity=1)
_decl(C, "core", "real_floating", "custom", True, "layer_norm(x, weight, bias, ndim, eps)",
      "x (..., *normalized) normalised over its last ndim dims (the core handles empty "
      "inputs); weight, bias of the normalized shape or None, x's dtype; returns (out, mean, "
      "var): out of x's dtype, mean and biased var of shape x.shape[:-ndim] + (1,) * ndim in "
      "the computation dtype (float32 for float16 and bfloat16); default: mean/var "
      "reductions", arity=3)
_decl(C, "core", "real_floating", "custom", True, "batch_norm(x, weight, bias, eps)",
      "training-mode batch normalisation: x (N, C, ...) normalised per channel (dim 1) with "
      "the statistics over every other dim; weight, bias (C,) or None, x's dtype; returns "
      "(out, mean, var) as layer_norm, mean and biased var of shape (C,); the core updates "
      "running statistics and handles eval mode; default: mean/var reductions", arity=3)

# --- nn: convolution and max-pooling (polyten.nn.functional._conv / _pool) -------------------
_decl(C, "core", "real_numeric", "promote", True,
      "conv(x, weight, bias, stride, padding, dilation, groups)",
      "x (N, C, *spatial), 1 to 3 spatial dims; weight (O, C/groups, *kernel); bias (O,) or "
      "None; one dtype; stride, dilation tuples of positive ints; padding a tuple of (lo, hi) "
      "non-negative zero paddings per spatial dim; shapes checked by the core (the padded "
      "input holds the dilated kernel); result (N, O, *out), out = (in + lo + hi - d (k - 1) - "
      "1) // s + 1; default: im2col by strided slicing + matmul", arity=3)
_decl(C, "core", "real_numeric", "promote", True,
      "conv_transpose(x, weight, bias, stride, padding, output_size, dilation, groups)",
      "the adjoint of conv (the gradient of conv w.r.t. its input): x (N, C, *spatial); weight "
      "(C, O/groups, *kernel); bias (O,) or None; the full result ((in - 1) s + d (k - 1) + 1 "
      "per dim) is cropped from padding[i] (non-negative ints) to output_size[i], zero-"
      "extended past its end (output_padding); result (N, O, *output_size); default: matmul + "
      "col2im by zero-insertion and padding", arity=3)
_decl(C, "core", "real_numeric", "custom", True,
      "max_pool(x, kernel_size, stride, padding, dilation) -> (values, indices)",
      "x (N, C, *spatial), 1 to 3 spatial dims; padding (lo, hi) pairs of the dtype's lowest "
      "value (hi includes ceil_mode's extension); values of x's dtype, indices int64 flat "
      "positions in each (n, c) plane of x; the window's first maximum, its last NaN, and its "
      "first element inside x when nothing beats the padding (as PyTorch); default: running "
      "maximum over the kernel offsets", arity=1)

del _n

# --- issue 6: the core tier -------------------------------------------------------------------
# The primitives every backend must implement.  Every other op of the core tier is a
# composite: its default is a kernel built from these (polyten/dispatch/defaults.py), or for
# the nn composites above, polyten ops (register_default).  Ops that cannot be built from
# the core (complex parts, bit patterns) form optional tiers: a backend without them reports
# them as missing capability.
CORE_PRIMITIVES = (
    "neg", "abs", "floor", "exp", "log", "sqrt", "sin", "atan", "erf",           # unary
    "add", "sub", "mul", "div", "pow", "floor_divide", "eq", "lt", "where",      # binary
    "astype", "is_contiguous",                                                   # casting
    "sum", "prod", "amax", "cumsum",                                             # reductions
    "matmul", "diagonal",                                                        # linalg
    "reshape", "permute", "expand", "concat", "getitem", "setitem",              # shape
    "scatter_add", "nonzero", "sort",                                            # indexing
    "full", "arange", "asarray",                                                 # creation
    "to_host", "from_host",                                                      # transfer
)
_OPTIONAL_PRIMITIVES = {
    "complex": ("conj", "real", "imag"),
    "bitwise": ("bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor",
                "bitwise_left_shift", "bitwise_right_shift", "nextafter"),
}
for _o in OPS.values():
    if _o.name in CORE_PRIMITIVES:
        _o.kind, _o.tier = P, "core"
for _t, _names in _OPTIONAL_PRIMITIVES.items():
    for _n in _names:
        OPS[_n].tier = _t
for _o in OPS.values():
    if _o.kind == P and _o.tier == "core" and _o.name not in CORE_PRIMITIVES:
        _o.kind = C  # default: polyten.dispatch.defaults
OPS["from_dlpack"].kind = C  # default: numpy.from_dlpack + from_host
for _n in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"):
    OPS[_n].kind = C  # default for bool only (the logical ops); integers need the tier
del _o, _t, _names, _n


def op(name: str) -> OpDef:
    """The :class:`OpDef` called ``name``; ``KeyError`` names close matches."""
    try:
        return OPS[name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, OPS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no op named {name!r} in polyten's op table{hint}") from None


def primitives(tier: str = None) -> List[OpDef]:
    return [o for o in OPS.values() if o.kind == "primitive" and tier in (None, o.tier)]


def composites() -> List[OpDef]:
    return [o for o in OPS.values() if o.kind == "composite"]


def validate_kernels(backend) -> List[str]:
    """Problems with a backend's kernels: names that are no op, and values that are not callable.

    The offending entries are removed so that dispatch never reaches them.
    """
    problems = []
    for name in list(backend.kernels):
        if name not in OPS:
            problems.append(f"backend {backend.name!r} declares a kernel for {name!r}, which is "
                            f"not an op of polyten's op table; it is ignored")
            del backend.kernels[name]
        elif not callable(backend.kernels[name]):
            problems.append(f"backend {backend.name!r}: kernel {name!r} is "
                            f"{type(backend.kernels[name]).__name__}, not callable; it is ignored")
            del backend.kernels[name]
    for name in list(getattr(backend, "backward_kernels", {})):
        op = OPS.get(name)
        if op is None or not op.differentiable or not callable(backend.backward_kernels[name]):
            problems.append(f"backend {backend.name!r} declares a backward kernel for {name!r}, "
                            f"which is not a differentiable op of polyten's op table (or not "
                            f"callable); it is ignored")
            del backend.backward_kernels[name]
    return problems


def missing_primitives(backend, tiers: Iterable[str] = None) -> List[str]:
    """Primitive ops the backend has no kernel for (optionally only some tiers)."""
    return [o.name for o in OPS.values() if o.kind == "primitive"
            and (tiers is None or o.tier in tiers) and o.name not in backend.kernels]


def markdown_table() -> str:
    """The op table as Markdown (``docs/backends.md`` embeds it; a test keeps them equal)."""
    lines = ["| op | kind | tier | kernel signature | input dtypes | result dtype | "
             "differentiable | notes |", "|---|---|---|---|---|---|---|---|"]
    for o in OPS.values():
        lines.append(f"| `{o.name}` | {o.kind} | {o.tier} | `{o.signature}` | {o.dtypes} | "
                     f"{o.result} | {'yes' if o.differentiable else 'no'} | "
                     f"{o.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def tiers_markdown() -> str:
    """The tiers as Markdown: per tier, the primitives a backend implements and the ops
    polyten builds on them (``docs/backends.md`` and ``docs/writing-a-backend.md`` embed it)."""
    lines = ["| tier | what | primitives (a backend implements) | composites (defaults; a "
             "backend may override) |", "|---|---|---|---|"]
    for tier, what in TIERS.items():
        prims = [f"`{o.name}`" for o in OPS.values() if o.tier == tier and o.kind == "primitive"]
        comps = [f"`{o.name}`" for o in OPS.values() if o.tier == tier and o.kind == "composite"]
        lines.append(f"| {tier} | {what} | {len(prims)}: {', '.join(prims) or '-'} | "
                     f"{len(comps)}: {', '.join(comps) or '-'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m polyten.dispatch.optable > table.md
    print(markdown_table(), end="")
