"""CUDA C sources of the fused kernels, as plain data (no CuPy import).

Each entry is what ``cupy.ElementwiseKernel`` / ``cupy.ReductionKernel`` take; ``fused.py``
builds the kernels from them, and the tests compile the same bodies with the host C++ compiler
(``tests/test_cuda_kernels_static.py``) to check their arithmetic against NumPy without a GPU.

Type conventions: ``T`` is the storage type of the arrays (``float16``, ``bfloat16``,
``float32`` or ``float64``); ``A`` is the computation type, ``float`` for the half types and
``float32`` and ``double`` for ``float64`` (half precision is computed in float32 and rounded
once, as PyTorch does); ``S`` is the type of a reduction's result, chosen by the caller
through ``out=`` (float32 for half and single precision, float64 for double).  Every formula
is the one of the cpu backend's kernel of the same op (``polyten_cpu.kernels``), in the same
order of operations.

Only standard CUDA C++ math is used (``exp``, ``log``, ``sqrt``, ``erf``, ``tanh``, ``expm1``,
``log1p``), with the float overloads that the CUDA math library and ``<cmath>`` both provide.
"""

from __future__ import annotations

import re
from typing import Dict, NamedTuple, Tuple

# Index arithmetic: a thread splits its flat index into digits (``r % n``, ``r / n``) a dozen
# times.  CUDA has no integer divide instruction: a 32-bit division by a value known only at
# launch is a software sequence of about 20 instructions, a 64-bit one several times that, and
# with a few loads per element the kernels below would spend more time dividing than moving
# bytes.  So every divisor arrives as a ``polyten_divider<I>`` (a uint64 on the host side,
# packed by ``polyten_cuda.conv.divisor``): with 32-bit indices the quotient is a
# multiply-high, an add and a shift by the divisor's magic number (Granlund & Montgomery 1994,
# as PyTorch's ``IntDivider``), exact for every dividend below 2**31, which
# ``polyten_cuda.conv.I32_LIMIT`` guarantees; with 64-bit indices it divides plainly.  The
# conv kernels (RawKernels) and the max-pool ones (``_POOL_DIMS``) use it.
DIVIDER = r"""
template <typename I> struct polyten_divider;
template <> struct polyten_divider<int> {
  int d; unsigned m, s;
  // packed: d in the low 32 bits, m = 2**32 * (2**s - d) / d + 1 above, s = ceil(log2(d))
  // (the intrinsics in the body: nvcc's host pass rejects them in an initializer list)
  __device__ explicit polyten_divider(unsigned long long packed) {
    d = (int)(unsigned)packed;
    m = (unsigned)(packed >> 32);
    s = 32u - (unsigned)__clz((int)((unsigned)packed - 1u));
  }
  __device__ int div(int n) const {  // 0 <= n < 2**31: umulhi(n, m) + n < 2**32
    return (int)((__umulhi((unsigned)n, m) + (unsigned)n) >> s);
  }
  // n % d, leaving n / d in n
  __device__ int next(int& n) const {
    const int q = div(n);
    const int r = n - q * d;
    n = q;
    return r;
  }
};
template <> struct polyten_divider<long long> {
  long long d;
  __device__ explicit polyten_divider(unsigned long long packed) { d = (long long)packed; }
  __device__ long long div(long long n) const { return n / d; }
  __device__ long long next(long long& n) const {
    const long long q = n / d;
    const long long r = n - q * d;
    n = q;
    return r;
  }
};
"""

# ``acc<T>::type``: the computation type of a storage type.  ``float16`` and ``bfloat16`` are
# CuPy's half types (cupy/float16.cuh, cupy/bfloat16.cuh, declared by cupy/carray.cuh, which
# CuPy includes in every elementwise kernel), which convert to and from ``float``.
PREAMBLE = r"""
template <typename T> struct polyten_acc { typedef T type; };
template <> struct polyten_acc<float16> { typedef float type; };
template <> struct polyten_acc<bfloat16> { typedef float type; };
""" + DIVIDER

_A = "typedef polyten_acc<T>::type A;\n"


class Elementwise(NamedTuple):
    """An ``ElementwiseKernel`` source.  ``operation`` is the whole per-element body (what
    CuPy takes); it starts with ``prologue`` (after the ``A`` typedef), code that reads no
    element -- a multi-tensor kernel runs it once per thread, before its loop.  ``each``
    names the raw parameters a multi-tensor kernel takes once per tensor (a per-parameter
    counter) instead of once per launch."""
    name: str
    in_params: str
    out_params: str
    operation: str
    prologue: str = ""
    each: Tuple[str, ...] = ()


class Reduction(NamedTuple):
    name: str
    in_params: str
    out_params: str
    map_expr: str
    reduce_expr: str
    post_map_expr: str
    identity: str


ELEMENTWISE: Dict[str, Elementwise] = {}
REDUCTION: Dict[str, Reduction] = {}


def params(decl: str) -> Tuple[Tuple[str, str, bool], ...]:
    """``"raw T x, int64 C"`` -> ``(("T", "x", True), ("int64", "C", False))``."""
    out = []
    for part in decl.split(","):
        words = part.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2:
            raise ValueError(f"bad kernel parameter {part!r} in {decl!r}")
        out.append((words[0], words[1], raw))
    return tuple(out)


def _ew(name, in_params, out_params, body, prologue="", each=()):
    uses_t = any(ty == "T" for ty, _, _ in params(in_params) + params(out_params))
    ELEMENTWISE[name] = Elementwise(f"polyten_{name}", in_params, out_params,
                                    (_A if uses_t else "") + prologue + body, prologue,
                                    tuple(each))


def split_prologue(spec: Elementwise) -> Tuple[str, str]:
    """``(head, body)`` of ``spec.operation``: the ``A`` typedef and the prologue (run once
    per thread), and the per-element rest."""
    head = (_A if spec.operation.startswith(_A) else "") + spec.prologue
    if not spec.operation.startswith(head):
        raise ValueError(f"{spec.name}: the operation does not start with its prologue")
    return head, spec.operation[len(head):]


def _red(name, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity):
    REDUCTION[name] = Reduction(f"polyten_{name}", in_params, out_params, map_expr,
                                reduce_expr, post_map_expr, identity)


# --- activations and their backward (op table: sigmoid, tanh, relu) -------------------------
# sigmoid: 1 / (1 + exp(-x)); exp(-x) overflowing to inf gives exactly 0
_ew("sigmoid", "T x", "T y",
    "A v = (A)x;\n"
    "y = (T)(A(1) / (A(1) + exp(-v)));\n")
# d sigmoid = g * y * (1 - y)
_ew("sigmoid_backward", "T g, T y", "T gx",
    "A yy = (A)y;\n"
    "gx = (T)((A)g * yy * (A(1) - yy));\n")
# d tanh = g * (1 - y * y)
_ew("tanh_backward", "T g, T y", "T gx",
    "A yy = (A)y;\n"
    "gx = (T)((A)g * (A(1) - yy * yy));\n")
# d relu = where(x > 0, g, 0), as the formula (an inf / NaN gradient at x <= 0 gives 0)
_ew("relu_backward", "T g, T x", "T gx",
    "gx = (A)x > A(0) ? g : (T)A(0);\n")

# erf (op table), in the computation type: cupyx.scipy.special has no bfloat16 loop and
# answers float16 in float32 (two launches with the cast back); CUDA's erf / erff, as cupyx's
_ew("erf", "T x", "T y", "y = (T)erf((A)x);\n")
# d erf = g * 2 / sqrt(pi) * exp(-x^2): one launch, rounded once (the formula is five ops)
_ew("erf_backward", "T g, T x", "T gx",
    "A v = (A)x;\n"
    "gx = (T)((A)g * (A(1.1283791670955126) * exp(-v * v)));\n")

# --- the gamma family (op table: lgamma, digamma, polygamma), in the computation type A
# (float16 / bfloat16 in float, rounded once, as PyTorch).  lgamma: CUDA's lgamma / lgammaf, as
# PyTorch's CUDA kernel (+inf at the poles and at -inf).  digamma: PyTorch's calc_digamma
# order -- reflection for x < 0 with r = x - rint(x) (exact, so sin / cos keep their accuracy
# where pi * x would not), then the cpu kernel's fixed shift by 10 and Cephes' asymptotic
# series (polyten.dispatch.defaults._psi_pos).  -0 gives +inf and +0 -inf through 1 / x.
_ew("lgamma", "T x", "T y", "y = (T)lgamma((A)x);\n")
_PSI_BODY = (
    "A v = (A)x;\n"
    "const A pi = A(3.14159265358979323846);\n"
    "A res;\n"
    "if (v < A(0) && (v == floor(v) || isnan(v - rint(v)))) {\n"
    "  res = (A)nan(\"\");\n"  # the negative integers and -inf
    "} else {\n"
    "  A refl = A(0);\n"
    "  if (v < A(0)) {\n"
    "    A r = v - rint(v);\n"
    "    refl = pi * cos(pi * r) / sin(pi * r);\n"
    "    v = A(1) - v;\n"
    "  }\n"
    "  A acc = A(0);\n"
    "  if (v < A(10)) {\n"
    "    acc = A(1) / v;\n"  # v + 0 would turn -0 into +0: digamma(-0) is +inf
    "    for (int j = 1; j < 10; ++j) acc += A(1) / (v + A(j));\n"
    "    v += A(10);\n"
    "  }\n"
    "  A zz = A(1) / (v * v);\n"
    "  A p = A(0.083333333333333333);\n"
    "  p = p * zz + A(-0.021092796092796093);\n"
    "  p = p * zz + A(0.0075757575757575758);\n"
    "  p = p * zz + A(-0.0041666666666666667);\n"
    "  p = p * zz + A(0.0039682539682539683);\n"
    "  p = p * zz + A(-0.0083333333333333333);\n"
    "  p = p * zz + A(0.083333333333333333);\n"
    "  res = isinf(v) ? v : log(v) - A(0.5) / v - zz * p;\n"
    "  res = res - acc - refl;\n"
    "}\n")
_ew("digamma", "T x", "T y", _PSI_BODY + "y = (T)res;\n")
# polygamma(n >= 1) = scale * zeta(n + 1, x), scale = (-1)^(n+1) n! (a float64 argument, inf
# past its range): Cephes' Hurwitz zeta, ten terms then Euler-Maclaurin from q + 9 with the
# (2j)! / B_2j table, at q = x for x > 0 and, for x < 0 not an integer, zeta(s, r) +
# (-1)^s (zeta(s, 1 - r) - zeta(s, 1 - x)) with r = x - floor(x) -- the cpu kernel's
# reduction (polyten.dispatch.defaults._zeta_neg), O(1) where PyTorch's direct sum over
# x, x + 1, ... takes |x| steps.  Poles: scale * inf; -inf and NaN: NaN; +inf: 0.
_ZETA_EM_SRC = ("12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, "
                "7.47242496e10, -2.950130727918164224e12, 1.1646782814350067249e14, "
                "-4.5979787224074726105e15, 1.8152105401943546773e17, "
                "-7.1661652561756670113e18")
_ew("polygamma", "T x, int32 n, float64 scale", "T y",
    "A v = (A)x;\n"
    "const A s = A(n + 1);\n"
    f"const double em[12] = {{{_ZETA_EM_SRC}}};\n"
    "A res;\n"
    "if (isnan(v) || (isinf(v) && v < A(0))) {\n"
    "  res = (A)nan(\"\");\n"
    "} else if (v <= A(0) && v == floor(v)) {\n"
    "  res = (A)scale * (A(1) / A(0));\n"
    "} else {\n"
    "  A qs[3], cs[3];\n"
    "  int m = 1;\n"
    "  qs[0] = v; cs[0] = A(1);\n"
    "  if (v < A(0)) {\n"
    "    const A fl = floor(v);\n"
    "    const A sg = (n % 2) ? A(1) : A(-1);\n"  # (-1)^s, s = n + 1
    "    qs[0] = v - fl;\n"
    "    qs[1] = (fl + A(1)) - v; cs[1] = sg;\n"
    "    qs[2] = A(1) - v; cs[2] = -sg;\n"
    "    m = 3;\n"
    "  }\n"
    "  A z = A(0);\n"
    "  for (int c = 0; c < m; ++c) {\n"
    "    const A q = qs[c];\n"
    "    if (isinf(q)) continue;\n"  # zeta(s, inf) = 0
    "    A a = q;\n"
    "    A b = pow(a, -s);\n"
    "    A total = b;\n"
    "    for (int i = 0; i < 9; ++i) {\n"
    "      a += A(1);\n"
    "      b = pow(a, -s);\n"
    "      total += b;\n"
    "    }\n"
    "    total += pow(a, A(1) - s) / (s - A(1));\n"
    "    total -= A(0.5) * b;\n"
    "    A fac = A(1), j = A(0), bb = b;\n"
    "    for (int i = 0; i < 12; ++i) {\n"
    "      fac *= s + j;\n"
    "      bb /= a;\n"
    "      total += bb * (fac / (A)em[i]);\n"
    "      j += A(1);\n"
    "      fac *= s + j;\n"
    "      bb /= a;\n"
    "      j += A(1);\n"
    "    }\n"
    "    z += cs[c] * total;\n"
    "  }\n"
    "  res = (A)scale * z;\n"
    "}\n"
    "y = (T)res;\n")

# floor_divide / remainder of floating arrays (op table), as Python's // and % -- NumPy's
# npy_divmod and torch's div_floor: fmod, then the quotient's correction and snap.  CuPy's are
# floor(x / y) and x - floor(x / y) * y, which differ where x / y rounds up to an integer
# (1.0 // 0.1: 10 for 9, 1.0 % 0.1: 0 for 0.09999999999999995) and at infinities (5 % inf:
# NaN for 5).  y == 0: x / y and fmod's NaN, as NumPy.
_DIVMOD = ("A a = (A)x, b = (A)y;\n"
           "A mod = fmod(a, b);\n"
           "A fd;\n"
           "if (b == A(0)) {\n"
           "  fd = a / b;\n"
           "} else {\n"
           "  A div = (a - mod) / b;\n"
           "  if (mod != A(0)) {\n"
           "    if ((b < A(0)) != (mod < A(0))) { mod += b; div -= A(1); }\n"
           "  } else {\n"
           "    mod = copysign(A(0), b);\n"
           "  }\n"
           "  if (div != A(0)) {\n"
           "    fd = floor(div);\n"
           "    if (div - fd > A(0.5)) fd += A(1);\n"
           "  } else {\n"
           "    fd = copysign(A(0), a / b);\n"
           "  }\n"
           "}\n")
_ew("floor_divide", "T x, T y", "T z", _DIVMOD + "z = (T)fd;\n")
_ew("remainder", "T x, T y", "T z", _DIVMOD + "z = (T)mod;\n")

# fmod of int64 (op table), exactly: C's truncated remainder, with NumPy's 0 for a zero
# divisor.  CuPy's integer fmod goes through double (wrong past 2**53); y == -1 gives 0
# without the INT64_MIN % -1 overflow.
_ew("int_fmod", "int64 x, int64 y", "int64 z",
    "z = (y == 0 || y == -1) ? 0 : x % y;\n")

# the order key of a 1-D float32 / float64 sort: CuPy sorts those with CUB's radix sort, which
# orders by the bits -- a NaN with the sign bit set (x86's 0 / 0, a negated NaN) before -inf.
# One positive NaN, and (``zero``) 0.0 for both zeros, give NumPy's and torch's order; the
# values themselves are read from the unkeyed array.  On the float's bits ``U`` (uint32 /
# uint64 views; ``sign``, ``inf`` and ``nan`` the sign bit, +inf's and a quiet +NaN's bits):
# in floating point, an H200 kept float64's negative NaNs through ``v != v ? copysign(v, 1)``.
_ew("radix_key", "U u, bool zero, U sign, U inf, U nan", "U y",
    "U mag = u & ~sign;\n"
    "y = mag > inf ? nan : ((zero && mag == U(0)) ? U(0) : u);\n")

# nextafter of float32 on the bits (``I``: int32 views; ``mag`` the magnitude mask, ``inf``
# +inf's bits), as C, NumPy and torch: CUDA's nextafterf as CuPy builds it flushes subnormal
# results (an H200 stepped 0.0 towards 1 to FLT_MIN, not to 1.4e-45).  A NaN operand is the
# result; x == y (either zero included) gives y; from a zero, the smallest subnormal with y's
# sign; otherwise the magnitude steps by one unit towards y.
_ew("nextafter_bits", "I x, I y, I mag, I inf", "I z",
    "I ax = x & mag, ay = y & mag;\n"
    "if (ax > inf) z = x;\n"
    "else if (ay > inf) z = y;\n"
    "else if (x == y || (ax | ay) == I(0)) z = y;\n"
    "else if (ax == I(0)) z = (y & ~mag) | I(1);\n"
    "else z = ((x ^ y) < I(0) || ax > ay) ? x - I(1) : x + I(1);\n")

# --- pointwise activation composites (op table: gelu, silu, leaky_relu, elu, softplus) ------
# The formulas and order of operations of polyten_cpu.kernels.activation (PyTorch's formulas;
# NaN gives NaN, except leaky_relu's gradient, g * slope, as PyTorch's), with ternaries where
# the cpu kernels use select-free arithmetic of the same value, and the exact gelu backward
# recomputing erf (cheap here; the cpu kernel reads Phi(x) off the saved output); scalars
# arrive as float64 and are rounded to A, as NumPy rounds a Python float to the array's dtype.
_SQRT1_2 = "0.70710678118654752440"
_GELU_BETA = "0.39894228040143267794"  # 1 / sqrt(2 pi)
_GELU_TANH_BETA = "0.79788456080286535588"  # sqrt(2 / pi)
_GELU_KAPPA = "0.044715"
# gelu: (erf(x / sqrt(2)) + 1) * x * 0.5
_ew("gelu", "T x", "T y",
    "A v = (A)x;\n"
    f"A t = erf(v * (A){_SQRT1_2});\n"
    "y = (T)(((t + A(1)) * v) * A(0.5));\n")
# gelu, tanh form: (tanh(sqrt(2/pi) * (x^3 * kappa + x)) + 1) * x * 0.5
_ew("gelu_tanh", "T x", "T y",
    "A v = (A)x;\n"
    f"A t = tanh((((v * v) * v) * (A){_GELU_KAPPA} + v) * (A){_GELU_TANH_BETA});\n"
    "y = (T)(((t + A(1)) * v) * A(0.5));\n")
# d gelu = g * (Phi(x) + x * phi(x))
_ew("gelu_backward", "T g, T x", "T gx",
    "A v = (A)x;\n"
    f"A t = ((erf(v * (A){_SQRT1_2}) + A(1)) * A(0.5));\n"
    f"A p = (exp((v * v) * A(-0.5)) * (A){_GELU_BETA}) * v;\n"
    "gx = (T)((t + p) * (A)g);\n")
# PyTorch's gelu_backward, tanh form: g * (0.5 (1 + t) + 0.5 x (1 - t^2) beta (1 + 3 kappa x^2))
_ew("gelu_tanh_backward", "T g, T x", "T gx",
    "A v = (A)x;\n"
    "A x_sq = v * v;\n"
    f"A t = tanh(((x_sq * v) * (A){_GELU_KAPPA} + v) * (A){_GELU_TANH_BETA});\n"
    "A d = (((A(1) - t * t) * v) * A(0.5));\n"
    f"d = d * ((x_sq * (A)(3.0 * {_GELU_KAPPA}) + A(1)) * (A){_GELU_TANH_BETA});\n"
    "gx = (T)((((t + A(1)) * A(0.5)) + d) * (A)g);\n")
# silu: x / (1 + exp(-x)), as PyTorch
_ew("silu", "T x", "T y",
    "A v = (A)x;\n"
    "y = (T)(v / (exp(-v) + A(1)));\n")
# d silu = g * s * (1 + x * (1 - s)), s = sigmoid(x)
_ew("silu_backward", "T g, T x", "T gx",
    "A v = (A)x;\n"
    "A s = A(1) / (exp(-v) + A(1));\n"
    "gx = (T)((((A(1) - s) * v + A(1)) * s) * (A)g);\n")
# leaky_relu: x where x > 0, else x * slope (NaN: x * slope, NaN)
_ew("leaky_relu", "T x, float64 slope", "T y",
    "A v = (A)x;\n"
    "y = (T)(v > A(0) ? v : v * (A)slope);\n")
# d leaky_relu = g where x > 0, else g * slope (NaN: g * slope, as PyTorch)
_ew("leaky_relu_backward", "T g, T x, float64 slope", "T gx",
    "A gg = (A)g;\n"
    "gx = (T)((A)x > A(0) ? gg : gg * (A)slope);\n")
# elu (selu, celu): scale * (x where x > 0, else alpha * expm1(x * input_scale))
_ew("elu", "T x, float64 alpha, float64 scale, float64 input_scale", "T y",
    "A v = (A)x;\n"
    "A t = v > A(0) ? v : expm1(v * (A)input_scale) * (A)alpha;\n"
    "y = (T)(t * (A)scale);\n")
# d elu = g * (x > 0 ? scale : input_scale * alpha * scale * exp(x * input_scale)), NaN for
# NaN as PyTorch's vectorised elu_backward; neg_coef = input_scale * alpha * scale
_ew("elu_backward", "T g, T x, float64 neg_coef, float64 scale, float64 input_scale", "T gx",
    "A v = (A)x;\n"
    "A t = v > A(0) ? (A)scale : exp(v * (A)input_scale) * (A)neg_coef;\n"
    "gx = (T)(t * (A)g);\n")
# softplus: x where beta x > threshold, else log1p(exp(beta x)) / beta
_ew("softplus", "T x, float64 beta, float64 threshold", "T y",
    "A v = (A)x;\n"
    "A b = v * (A)beta;\n"
    "A t = log1p(exp(b > (A)threshold ? (A)threshold : b));  // NaN stays NaN\n"
    "if (beta != 1.0) t = t / (A)beta;\n"
    "y = (T)(b > (A)threshold ? v : t);\n")
# d softplus = g where beta x > threshold, else g / (1 + exp(-beta x))
_ew("softplus_backward", "T g, T x, float64 beta, float64 threshold", "T gx",
    "A gg = (A)g;\n"
    "A b = (A)x * (A)beta;\n"
    "gx = (T)(b > (A)threshold ? gg : gg / (exp(-b) + A(1)));\n")

# --- softmax / log_softmax ------------------------------------------------------------------
# m = max(x) along the dim (CuPy's own reduction); s = sum(exp(x - m)); then one pass writes
# the result: three kernels, no temporary of x's size
_red("sum_exp_shifted", "T x, T m", "S s", "exp((S)x - (S)m)", "a + b", "s = a", "0")
_ew("softmax_out", "T x, T m, S s", "T y",
    "y = (T)(exp((S)x - (S)m) / s);\n")
# (x - m) - log(s), rounded as the cpu kernel and PyTorch
_ew("log_softmax_out", "T x, T m, S s", "T y",
    "y = (T)(((S)x - (S)m) - log(s));\n")
# softmax backward: s = sum(g * y); gx = (g - s) * y
_red("sum_prod", "T g, T y", "S s", "(S)g * (S)y", "a + b", "s = a", "0")
_ew("softmax_backward_out", "T g, T y, S s", "T gx",
    "gx = (T)(((S)g - s) * (S)y);\n")
# log_softmax backward: s = sum(g); gx = g - exp(y) * s
_red("sum_cast", "T g", "S s", "(S)g", "a + b", "s = a", "0")
_ew("log_softmax_backward_out", "T g, T y, S s", "T gx",
    "gx = (T)((S)g - exp((S)y) * s);\n")

# --- layer_norm / batch_norm (norm.py): the cpu kernels' formulas, in their order ----------
# statistics: mean = sum(x) / n, then var = sum((x - mean)^2) / n, reduced over the normalised
# axes (rows for layer_norm, (batch, spatial) for batch_norm) by CuPy's ReductionKernel, each
# divided by n in its post-map (two launches, no third for the divisions)
_red("mean_cast", "T x, float64 n", "S s", "(S)x", "a + b", "s = a / (S)n", "0")
_red("var_dev", "T x, S mean, float64 n", "S s", "((S)x - mean) * ((S)x - mean)",
     "a + b", "s = a / (S)n", "0")


# The affine parameters are optional: one kernel per combination (``_w`` with a weight,
# ``_b`` with a bias), so that nothing is multiplied by a stand-in 1.
def _affine_variants(name, ins, out, body, bias=True):
    for has_w in (False, True):
        for has_b in ((False, True) if bias else (False,)):
            suffix = ("_w" if has_w else "") + ("_b" if has_b else "")
            _ew(name + suffix, ins + (", T w" if has_w else "") + (", T b" if has_b else ""),
                out, body(has_w, has_b))


_NORM_IN = "T x, S mean, S var, float64 eps"
_RSTD = "(S(1) / sqrt(var + (S)eps))"
# layer_norm: ((x - mean) * rstd) * w + b
_affine_variants("layer_norm_out", _NORM_IN, "T y", lambda w, b: (
    f"S v = ((S)x - mean) * {_RSTD};\n" + ("v = v * (S)w;\n" if w else "")
    + ("v = v + (S)b;\n" if b else "") + "y = (T)v;\n"))
# batch_norm: (x - mean) * (rstd * w) + b
_affine_variants("batch_norm_out", _NORM_IN, "T y", lambda w, b: (
    f"S v = ((S)x - mean) * ({_RSTD}" + (" * (S)w" if w else "") + ");\n"
    + ("v = v + (S)b;\n" if b else "") + "y = (T)v;\n"))
# backward sums: g * w, g * w * xhat (without a weight: sum_cast, sum_g_xhat), g * (x - mean)
_red("sum_prod_w", "T g, T w", "S s", "(S)g * (S)w", "a + b", "s = a", "0")
_red("sum_gw_xhat", "T g, T w, " + _NORM_IN, "S s",
     f"((S)g * (S)w) * (((S)x - mean) * {_RSTD})", "a + b", "s = a", "0")
_red("sum_g_xc", "T g, T x, S mean", "S s", "(S)g * ((S)x - mean)", "a + b", "s = a", "0")
_red("sum_g_xhat", "T g, " + _NORM_IN, "S s", f"(S)g * (((S)x - mean) * {_RSTD})",
     "a + b", "s = a", "0")
# layer_norm input gradient: ((g w - c2 / n) - xhat * (c1 / n)) * rstd, c1 = sum(g w xhat),
# c2 = sum(g w) per row
_affine_variants("layer_norm_backward_out", "T g, " + _NORM_IN + ", S c1, S c2, float64 n",
                 "T gx",
                 lambda w, b: (
                     f"S rstd = {_RSTD};\n"
                     "S xhat = ((S)x - mean) * rstd;\n"
                     + ("S gh = (S)g * (S)w;\n" if w else "S gh = (S)g;\n") +
                     "gh = gh - c2 / (S)n;\n"
                     "gh = gh - xhat * (c1 / (S)n);\n"
                     "gx = (T)(gh * rstd);\n"), bias=False)
# batch_norm: gx = (g - ((x - mean) * (dot rstd^2 / n) + gsum / n)) * (rstd * w); gw = dot rstd
_affine_variants("batch_norm_backward_out", "T g, " + _NORM_IN + ", S dot, S gsum, float64 n",
                 "T gx",
                 lambda w, b: (
                     f"S rstd = {_RSTD};\n"
                     "S t = ((S)x - mean) * (dot * rstd * rstd / (S)n);\n"
                     "t = t + gsum / (S)n;\n"
                     + ("gx = (T)(((S)g - t) * (rstd * (S)w));\n" if w else
                        "gx = (T)(((S)g - t) * rstd);\n")), bias=False)
# batch_norm's running statistics, both in one launch: running = running * (1 - m) +
# stat * (m * factor), as the generic mul_ / add_(alpha) (factor n / (n - 1) for the variance),
# in the statistics' type S; R, the buffers' type, is S or -- a half BatchNorm's float32
# statistics -- float16 / bfloat16, rounded once
_ew("batch_norm_running", "S mean, S var, float64 m, float64 var_factor", "R rm, R rv",
    "rm = (R)((S)rm * (S)(1.0 - m) + mean * (S)m);\n"
    "rv = (R)((S)rv * (S)(1.0 - m) + var * (S)(m * var_factor));\n")
_ew("batch_norm_weight_grad", "S dot, S var, float64 eps", "S gw", f"gw = dot * {_RSTD};\n")

# --- max_pool: one thread per output (forward) / per input element (backward) --------------
# Up to three spatial dims, lower ones given as size 1.  x / g are C-contiguous; the window of
# output (od, oh, ow) starts at o*s - p (lo padding) with dilation d; positions outside the
# input are the padding (the dtype's lowest value, which never wins).  Winner: the window's
# first maximum (strict >), its last NaN, or -- when no element beats the padding (all are
# -inf) -- its first element inside the input, as the cpu kernel and PyTorch.
# The sizes that the kernels divide by are ``uint64`` (``polyten_cuda.conv.divisor`` packs
# them: 32-bit indices divide by magic numbers, see ``DIVIDER``), the others ``int64``.
_POOL_DIMS = ("uint64 D_, uint64 H_, uint64 W_, uint64 OD_, uint64 OH_, uint64 OW_, "
              "int64 kd, int64 kh, int64 kw, uint64 sd_, uint64 sh_, uint64 sw_, "
              "int64 pd, int64 ph, int64 pw, uint64 dd_, uint64 dh_, uint64 dw_")
_POOL_SIZES = ("typedef long long I;\n"
               "typedef polyten_divider<I> Div;\n"
               "const I H = (I)H_, W = (I)W_;\n"
               "const I sd = (I)sd_, sh = (I)sh_, sw = (I)sw_, dd = (I)dd_, dh = (I)dh_, "
               "dw = (I)dw_;\n")
_ew("max_pool", "raw T x, " + _POOL_DIMS, "T val, int64 idx", _POOL_SIZES + r"""
const I D = (I)D_;
const Div OWv(OW_), OHv(OH_), ODv(OD_);
I t = (I)i;
const I ow = OWv.next(t);
const I oh = OHv.next(t);
const I od = ODv.next(t);
const I base = t * (D * H * W);
A best = 0; I besti = -1, first = -1; bool nan = false;
for (I a = 0; a < kd; ++a) {
  I z = od * sd - pd + a * dd;
  if (z < 0 || z >= D) continue;
  for (I b = 0; b < kh; ++b) {
    I y = oh * sh - ph + b * dh;
    if (y < 0 || y >= H) continue;
    for (I c = 0; c < kw; ++c) {
      I w = ow * sw - pw + c * dw;
      if (w < 0 || w >= W) continue;
      I flat = (z * H + y) * W + w;
      A v = (A)x[base + flat];
      if (first < 0) first = flat;
      if (v != v) { best = v; besti = flat; nan = true; }
      else if (!nan && !(isinf(v) && v < 0) && (besti < 0 || v > best)) {
        best = v; besti = flat;
      }
    }
  }
}
if (besti < 0 && first >= 0) { besti = first; best = (A)x[base + first]; }
long long outi = besti;
if (besti < 0) {
  // no element of the window inside the input: -inf at its first position past the
  // padding (which lies past the input's end), as the cpu kernel and PyTorch; in 64 bits,
  // since that position may lie past 2**31 where every index of the input does not
  I z0 = od * sd - pd, y0 = oh * sh - ph, w0 = ow * sw - pw;
  if (z0 < 0) z0 += ((dd - 1 - z0) / dd) * dd;
  if (y0 < 0) y0 += ((dh - 1 - y0) / dh) * dh;
  if (w0 < 0) w0 += ((dw - 1 - w0) / dw) * dw;
  best = A(-1) / A(0); outi = ((long long)z0 * H + y0) * W + w0;
}
val = (T)best;
idx = outi;
""")
# gx at input position (d, h, w): the sum of g over the windows that contain it and picked it
_ew("max_pool_backward", "raw T g, raw int64 idx, " + _POOL_DIMS, "T gx", _POOL_SIZES + r"""
const I OD = (I)OD_, OH = (I)OH_, OW = (I)OW_;
const Div Wv(W_), Hv(H_), Dv(D_), sdv(sd_), shv(sh_), swv(sw_), ddv(dd_), dhv(dh_), dwv(dw_);
I t = (I)i;
const I w = Wv.next(t);
const I h = Hv.next(t);
const I d = Dv.next(t);
const I flat = (d * H + h) * W + w;
const I obase = t * (OD * OH * OW);
A acc = 0;
const I nd = d + pd, nh = h + ph, nw = w + pw;
const I ld = nd - (kd - 1) * dd, lh = nh - (kh - 1) * dh, lw = nw - (kw - 1) * dw;
const I qd = sdv.div(nd), qh = shv.div(nh), qw = swv.div(nw);
const I od0 = ld <= 0 ? 0 : sdv.div(ld + sd - 1), od1 = qd < OD - 1 ? qd : OD - 1;
const I oh0 = lh <= 0 ? 0 : shv.div(lh + sh - 1), oh1 = qh < OH - 1 ? qh : OH - 1;
const I ow0 = lw <= 0 ? 0 : swv.div(lw + sw - 1), ow1 = qw < OW - 1 ? qw : OW - 1;
for (I od = od0; od <= od1; ++od) {
  I rd = nd - od * sd;  // >= 0: od <= nd / sd
  if (ddv.next(rd)) continue;
  for (I oh = oh0; oh <= oh1; ++oh) {
    I rh = nh - oh * sh;
    if (dhv.next(rh)) continue;
    for (I ow = ow0; ow <= ow1; ++ow) {
      I rw = nw - ow * sw;
      if (dwv.next(rw)) continue;
      I o = obase + (od * OH + oh) * OW + ow;
      if (idx[o] == flat) acc += (A)g[o];
    }
  }
}
gx = (T)acc;
""")


def _index32(name: str) -> None:
    """``<name>_i32``: the max-pool source ``name`` with 32-bit sizes and index arithmetic
    (magic-number divisions, see ``DIVIDER``), for launches whose every index stays below
    ``polyten_cuda.conv.I32_LIMIT`` (CUDA's 64-bit integer division is a long software
    sequence; these divide several times per element).  The flat indices it writes stay
    int64."""
    s = ELEMENTWISE[name]
    ELEMENTWISE[name + "_i32"] = s._replace(
        name=s.name + "_i32", in_params=s.in_params.replace(
            _POOL_DIMS, re.sub(r"\bint64\b", "int32", _POOL_DIMS)),
        operation=s.operation.replace("typedef long long I;", "typedef int I;"))


_index32("max_pool")
_index32("max_pool_backward")

# the 'mean' divisor of nll_loss / cross_entropy: the summed weights (1 without) of the
# targets that count; an out-of-range target (reported by the deferred check) reads nothing
_red("nll_divisor", "int64 t, raw T w, int64 C, int64 ignore, bool has_w", "S d",
     "(t != ignore && t >= 0 && t < C) ? (has_w ? (S)w[t] : (S)1) : (S)0", "a + b", "d = a",
     "0")

# --- index_check: the core's deferred index-bound / class-target checks, one reduction ------
# acc (the flag of the checks queued before, a 0-d bool array or false) OR any element outside
# [low, high) that is not the ignored value
_red("index_check", "T x, bool acc, int64 low, int64 high, int64 ignore, bool use_ignore",
     "bool y", "acc || ((!use_ignore || (long long)x != ignore) && "
     "((long long)x < low || (long long)x >= high))", "a || b", "y = a", "false")

# --- nll_loss on (M, C) rows (cross-entropy = nll_loss over log_softmax) -------------------
# one thread per row: the picked log-probability times the target's weight (an ignored target's
# loss is 0, even where class 0 holds -inf: 0 * -inf would be NaN);
# x and w are raw C-contiguous arrays, w is x itself (never read) when has_w is false.  A target
# outside [0, C) reads nothing and gives nan: the core checks targets asynchronously on this
# backend (polyten.dispatch.checks) and raises at the next host read
_ew("nll_pick", "int64 t, raw T x, raw T w, int64 C, int64 ignore, bool has_w", "S loss, S wt",
    "bool inrange = t >= 0 && t < C;\n"
    "bool valid = t != ignore && inrange;\n"
    "long long tt = valid ? t : 0;\n"
    "S ww = valid ? (has_w ? (S)w[tt] : S(1)) : S(0);\n"
    "wt = ww;\n"
    "loss = valid ? -((S)x[i * C + tt] * ww) : (t == ignore ? S(0) : (S)nan(\"\"));\n")
# cross_entropy forward for rows of few classes (the caller bounds C): one thread per row
# does log_softmax (max, sum of exp, (x - m) - log(s), as log_softmax_out) and nll_pick's
# loss and weight on the rounded log-probability -- one launch instead of four
_ew("ce_rows", "int64 t, raw T x, raw T w, int64 C, int64 ignore, bool has_w",
    "S loss, S wt, raw T logp",
    "long long base = i * C;\n"
    "S m = (S)x[base];\n"
    "for (long long j = 1; j < C; ++j) {\n"
    "  S v = (S)x[base + j];\n"
    "  if (v > m || v != v) m = v;\n"  # NaN propagates, as max
    "}\n"
    "S s = S(0);\n"
    "for (long long j = 0; j < C; ++j) s = s + exp((S)x[base + j] - m);\n"
    "S ls = log(s);\n"
    "for (long long j = 0; j < C; ++j) logp[base + j] = (T)(((S)x[base + j] - m) - ls);\n"
    "bool inrange = t >= 0 && t < C;\n"
    "bool valid = t != ignore && inrange;\n"
    "long long tt = valid ? t : 0;\n"
    "S ww = valid ? (has_w ? (S)w[tt] : S(1)) : S(0);\n"
    "wt = ww;\n"
    "loss = valid ? -((S)logp[base + tt] * ww) : (t == ignore ? S(0) : (S)nan(\"\"));\n")
# backward: writes -w_t * (g / d) at each row's target into zeros (d: the summed weights for
# 'mean', 1 otherwise; a zero d -- every target ignored -- leaves zeros, as the cpu kernel)
_ew("nll_scatter", "int64 t, T g, S d, raw T w, int64 C, int64 ignore, bool has_w", "raw T out",
    "bool valid = t != ignore && t >= 0 && t < C;\n"
    "long long tt = valid ? t : 0;\n"
    "S ww = valid ? (has_w ? (S)w[tt] : S(1)) : S(0);\n"
    "S gg = (S)g;\n"
    "if (d != S(0)) gg = gg / d;\n"
    "out[i * C + tt] = (T)(ww * -gg);\n")
# cross_entropy backward, one thread per element of the (M, C) rows of the log-probabilities
# y: c * exp(y), minus c at the row's target, where c = w_t * (g / d) (0 for an ignored row);
# g is per row (reduction 'none') or one value
_ew("ce_backward", "T y, raw int64 t, raw T g, S d, raw T w, int64 C, int64 ignore, "
    "bool has_w, bool per_row", "T gx",
    "long long row = i / C;\n"
    "long long tv = t[row];\n"
    "bool valid = tv != ignore && tv >= 0 && tv < C;\n"
    "S ww = valid ? (has_w ? (S)w[valid ? tv : 0] : S(1)) : S(0);\n"
    "S gg = (S)g[per_row ? row : 0];\n"
    "if (d != S(0)) gg = gg / d;\n"
    "S c = ww * gg;\n"
    "S e = exp((S)y) * c;\n"
    "gx = (T)(valid && i - row * C == tv ? e - c : e);\n")

# --- multinomial with replacement: one thread per sample searches its row's cdf --------------
# cdf: raw C-contiguous (rows, n) cumulative weights; u: (rows, k) uniforms in [0, 1).  The
# sample is the first category whose cdf exceeds u * total (NumPy's searchsorted, side
# "right", as the shared kernel), or -- when rounding puts u * total at the total -- the last
# category of positive weight (the first whose cdf reaches the total).  One launch for every
# row instead of a search per row.
_ew("multinomial_pick", "raw float64 cdf, float64 u, int64 n, int64 k", "int64 y",
    "long long base = (i / k) * n;\n"
    "double total = cdf[base + n - 1];\n"
    "double v = u * total;\n"
    "long long lo = 0, hi = n;\n"
    "while (lo < hi) {\n"
    "  long long mid = (lo + hi) / 2;\n"
    "  if (cdf[base + mid] <= v) lo = mid + 1; else hi = mid;\n"
    "}\n"
    "if (lo == n) {\n"
    "  lo = 0; hi = n - 1;\n"
    "  while (lo < hi) {\n"
    "    long long mid = (lo + hi) / 2;\n"
    "    if (cdf[base + mid] >= total) hi = mid; else lo = mid + 1;\n"
    "  }\n"
    "}\n"
    "y = lo;\n")

# --- searchsorted with one sorted row per leading index: one thread per value -------------
# s: raw C-contiguous (rows, n) sorted rows; v: (rows, m) values.  NumPy's order (NaN last,
# NaNs equal): "left" gives the first index whose element does not go before v, "right" the
# first whose element goes after it.  One launch instead of a search per row.
_ew("searchsorted_rows", "raw T s, T v, int64 n, int64 m, bool right", "int64 y",
    "long long base = (i / m) * n;\n"
    "A vv = (A)v;\n"
    "long long lo = 0, hi = n;\n"
    "while (lo < hi) {\n"
    "  long long mid = (lo + hi) / 2;\n"
    "  A e = (A)s[base + mid];\n"
    "  bool before = right ? !(vv < e || (e != e && vv == vv))\n"
    "                      : (e < vv || (vv != vv && e == e));\n"
    "  if (before) lo = mid + 1; else hi = mid;\n"
    "}\n"
    "y = lo;\n")

# --- segment_argmax (embedding_bag's 'max'): one thread per (segment, column) -------------
# x: raw C-contiguous (n, d); starts: raw (m,) int64.  Segment k runs from starts[k] (0 for
# the first) to starts[k + 1] (n for the last); the thread walks it down its column, keeping
# the first maximum (a NaN, once met, stays: argmax's rule).  Threads of a warp read
# neighbouring columns of a row: coalesced.  An empty segment gives min(start, n - 1).
_ew("segment_argmax", "raw T x, raw int64 starts, int64 n, int64 m, int64 d", "int64 y",
    "long long seg = i / d, col = i % d;\n"
    "long long b = seg == 0 ? 0 : starts[seg];\n"
    "long long e = seg + 1 < m ? starts[seg + 1] : n;\n"
    "if (b < 0) b = 0;\n"
    "if (e > n) e = n;\n"
    "long long best_j = b < n ? b : n - 1;\n"
    "if (b < e) {\n"
    "  A best = (A)x[b * d + col];\n"
    "  for (long long j = b + 1; j < e; ++j) {\n"
    "    A v = (A)x[j * d + col];\n"
    "    if (best == best && (v > best || v != v)) { best = v; best_j = j; }\n"
    "  }\n"
    "}\n"
    "y = best_j;\n")

# --- optimizer steps: per element (multi_tensor.py runs them over many tensors) ---------
# Adam / AdamW, as polyten.optim._functional._adam: the scalars are folded on the host
# (one_m_b1 = 1 - beta1, v_coef = (1 - beta2) / (1 - beta1), eps_bc2 = eps * sqrt(bc2),
# step_size = -lr * sqrt(bc2) / bc1, decay = 1 - lr * weight_decay)
_ADAM_IN = ("T g, float64 beta1, float64 one_m_b1, float64 beta2, float64 v_coef, "
            "float64 eps_bc2, float64 step_size, float64 wd, float64 decay, bool decoupled, "
            "bool maximize")
_ADAM_HEAD = (
    "A gg = (A)g;\n"
    "A pp = (A)p;\n"
    "if (wd != 0) {\n"
    "  if (decoupled) { pp = pp * (A)decay; if (maximize) gg = -gg; }\n"
    "  else { gg = maximize ? pp * (A)wd - gg : pp * (A)wd + gg; }\n"
    "} else if (maximize) { gg = -gg; }\n"
    "A t = gg * (A)one_m_b1;\n"
    "A mm = (A)m * (A)beta1 + t;\n"
    "t = t * gg;\n"
    "t = t * (A)v_coef;\n"
    "A vv = (A)v * (A)beta2 + t;\n"
    "m = (T)mm;\n"
    "v = (T)vv;\n")
_ADAM_TAIL = (
    "A denom = sqrt(vu) + (A)eps_bc2;\n"
    "p = (T)(pp + (mm / denom) * (A)step_size);\n")
_ew("adam_step", _ADAM_IN, "T p, T m, T v",
    _ADAM_HEAD + "A vu = vv;\n" + _ADAM_TAIL)
# amsgrad: vmax = maximum(vmax, v) (NaN propagates, as numpy.maximum) and the update uses it
_ew("adam_amsgrad_step", _ADAM_IN, "T p, T m, T v, T vmax",
    _ADAM_HEAD +
    "A vo = (A)vmax;\n"
    "A vu = (vo != vo || vo > vv) ? vo : vv;\n"
    "vmax = (T)vu;\n" + _ADAM_TAIL)

# --- the same steps under GradScaler without a host read (PyTorch's fused optimizers with
# found_inf): ``found`` is GradScaler's flag -- nonzero, and the step writes nothing -- and
# ``step`` the parameter's step counter on the device (amp_step_count advanced it), from which
# each thread folds the constants once, in double, with the host's formulas
_SKIP = "if (found[0] != 0.0f) return;\n"


def _amp_variant(name):
    """``<name>_amp``: the step ``name`` (no step-dependent constant) skipped, on the device,
    when GradScaler's flag ``found`` (a new last input) is nonzero."""
    spec = ELEMENTWISE[name]
    _ew(name + "_amp", spec.in_params + ", raw float32 found", spec.out_params,
        split_prologue(spec)[1], prologue=_SKIP)


def _amp_counted(name, drop, add, prologue, each=()):
    """``<name>_amp``: the step ``name`` with its host-folded constants ``drop`` computed in
    a prologue from ``step`` (the device counter), the per-tensor raw arrays ``each`` and the
    new scalars ``add``, skipped when ``found`` is nonzero."""
    spec = ELEMENTWISE[name]
    kept = [("raw " if raw else "") + f"{ty} {n}" for ty, n, raw in params(spec.in_params)
            if n not in drop]
    extra = [f"raw {decl}" for decl in each]
    _ew(name + "_amp",
        ", ".join(kept + ["raw float32 found", "raw float32 step"] + extra + add),
        spec.out_params, split_prologue(spec)[1], prologue=_SKIP + prologue,
        each=("step",) + tuple(decl.split()[1] for decl in each))


# Adam / AdamW: the bias corrections and the folded constants of adam_step
_ADAM_AMP = dict(
    drop=("one_m_b1", "v_coef", "eps_bc2", "step_size", "decay"),
    add=["float64 lr", "float64 eps"],
    prologue="const double bc1 = 1.0 - pow(beta1, (double)step[0]);\n"
             "const double bc2_sqrt = sqrt(1.0 - pow(beta2, (double)step[0]));\n"
             "const double one_m_b1 = 1.0 - beta1;\n"
             "const double v_coef = (1.0 - beta2) / (1.0 - beta1);\n"
             "const double eps_bc2 = eps * bc2_sqrt;\n"
             "const double step_size = -lr * bc2_sqrt / bc1;\n"
             "const double decay = 1.0 - lr * wd;\n")
_amp_counted("adam_step", **_ADAM_AMP)
_amp_counted("adam_amsgrad_step", **_ADAM_AMP)

# clip_grad_norm_'s scaling: g *= min(max_norm / (total + 1e-6), 1), the coefficient computed
# per element from the device total in the gradient's computation type (PyTorch's formula and
# rounding); a NaN total gives NaN gradients, as PyTorch
_ew("grad_clip_step", "raw T total, float64 max_norm", "T g",
    "A c = (A)max_norm / ((A)total[0] + (A)1e-6);\n"
    "if (c > (A)1) c = (A)1;\n"
    "g = (T)((A)g * c);\n")
# clip_grad_value_: g = min(max(g, lo), hi) in place (NaN stays NaN, as torch.clamp)
_ew("grad_clamp_step", "float64 lo, float64 hi", "T g",
    "A v = (A)g;\n"
    "if (v < (A)lo) v = (A)lo;\n"
    "if (v > (A)hi) v = (A)hi;\n"
    "g = (T)v;\n")
# GradScaler's unscale: g *= inv in place, inv the reciprocal of the scale on the device; any
# inf/NaN result *as stored* sets found[0] (a float16 / bfloat16 product finite in float32 but
# past the dtype's largest value is inf once rounded, as the cpu kernel sees it); every writer
# stores the same 1, so the race is benign; c - c is 0 exactly for finite c
_ew("amp_unscale", "raw float32 inv", "T g, raw float32 found",
    "const T r = (T)((A)g * inv_a);\n"
    "const A c = (A)r;\n"
    "if (c - c != (A)0) found[0] = 1.0f;\n"
    "g = r;\n",
    prologue="const A inv_a = (A)inv[0];\n")
# GradScaler.update (PyTorch's _amp_update_scale_), one element: after an inf/NaN the scale
# backs off and the count of finite steps restarts; after growth_interval finite steps in a
# row it grows (unless that overflows float32).  inv = 1 / scale (computed in double and
# rounded, as GradScaler's unscale) is written alongside, for the next step's unscale.
_ew("amp_update_scale", "raw float32 found, float64 growth, float64 backoff, int32 interval",
    "float32 scale, float32 inv, int32 tracker",
    "if (found[0] != 0.0f) {\n"
    "  scale = (float)((double)scale * backoff);\n"
    "  tracker = 0;\n"
    "} else if (tracker + 1 == interval) {\n"
    "  float grown = (float)((double)scale * growth);\n"
    "  if (grown - grown == 0.0f) scale = grown;\n"
    "  tracker = 0;\n"
    "} else {\n"
    "  tracker = tracker + 1;\n"
    "}\n"
    "inv = (float)(1.0 / (double)scale);\n")
# the device step counters of the steps below: +1 unless GradScaler found an inf/NaN (T is
# float32 here, the counters' dtype, as PyTorch's fused optimizers' "step")
_ew("amp_step_count", "raw float32 found", "T s",
    "s = (T)((A)s + (A)1);\n",
    prologue="if (found[0] != 0.0f) return;\n")
# SGD without momentum: p = p * (1 - lr * wd) + g * (+-lr)
_ew("sgd_step", "T g, float64 decay, float64 signed_lr", "T p",
    "p = (T)((A)p * (A)decay + (A)g * (A)signed_lr);\n")
# SGD with momentum (PyTorch's): d = +-g + wd * p; buf = d on the first step, else
# momentum * buf + (1 - dampening) * d; p += -lr * (nesterov ? d + momentum * buf : buf)
_ew("sgd_momentum_step",
    "T g, float64 lr, float64 wd, float64 momentum, float64 dampening, bool nesterov, "
    "bool maximize, bool first",
    "T p, T buf",
    "A pp = (A)p;\n"
    "A d = maximize ? -(A)g : (A)g;\n"
    "if (wd != 0) d = pp * (A)wd + d;\n"
    "A b = first ? d : (A)buf * (A)momentum + (dampening == 0 ? d : d * (A)(1 - dampening));\n"
    "buf = (T)b;\n"
    "A u = nesterov ? b * (A)momentum + d : b;\n"
    "p = (T)(pp + u * (A)(-lr));\n")


_amp_variant("sgd_step")
_amp_variant("sgd_momentum_step")

# the gradient an update uses: +-g plus wd * p (L2 weight decay), as _functional._signed
_SIGNED = ("A pp = (A)p;\n"
           "A gg = maximize ? -(A)g : (A)g;\n"
           "if (wd != 0) gg = pp * (A)wd + gg;\n")
# RMSprop, one kernel per variant (centered: the gradient average ga; momentum: buf)
_RMS_IN = "T g, float64 alpha, float64 eps, float64 wd, float64 momentum, float64 lr, bool maximize"
for _c in (False, True):
    for _mom in (False, True):
        _outs = "T p, T v" + (", T ga" if _c else "") + (", T buf" if _mom else "")
        _ew("rmsprop_step" + ("_centered" if _c else "") + ("_momentum" if _mom else ""),
            _RMS_IN, _outs,
            _SIGNED +
            "A vv = (A)v * (A)alpha + gg * (A)(1 - alpha) * gg;\n"
            "v = (T)vv;\n" +
            ("A ag = (A)ga * (A)alpha + gg * (A)(1 - alpha);\n"
             "ga = (T)ag;\n"
             "A avg = sqrt(vv - ag * ag) + (A)eps;\n" if _c else
             "A avg = sqrt(vv) + (A)eps;\n") +
            ("A b = (A)buf * (A)momentum + gg / avg;\n"
             "buf = (T)b;\n"
             "p = (T)(pp - b * (A)lr);\n" if _mom else
             "p = (T)(pp + (gg / avg) * (A)(-lr));\n"))
del _c, _mom, _outs
# Adagrad: s += g * g;  p -= clr * g / (sqrt(s) + eps)
_ew("adagrad_step", "T g, float64 clr, float64 eps, float64 wd, bool maximize", "T p, T s",
    _SIGNED +
    "A ss = (A)s + gg * gg;\n"
    "s = (T)ss;\n"
    "p = (T)(pp + (gg / (sqrt(ss) + (A)eps)) * (A)(-clr));\n")
# Adamax: m = beta1 m + (1 - beta1) g;  u = max(beta2 u, |g| + eps);  p -= clr * m / u
_ew("adamax_step", "T g, float64 beta1, float64 beta2, float64 eps, float64 clr, float64 wd, "
    "bool maximize", "T p, T m, T u",
    _SIGNED +
    "A mm = (A)m * (A)beta1 + gg * (A)(1 - beta1);\n"
    "A uu = (A)u * (A)beta2;\n"
    "A ag = fabs(gg) + (A)eps;\n"
    "uu = (uu != uu || uu > ag) ? uu : ag;\n"
    "m = (T)mm;\n"
    "u = (T)uu;\n"
    "p = (T)(pp + (mm / uu) * (A)(-clr));\n")
# the gradient with L2 or decoupled weight decay (decay = 1 - lr * wd applied to p first)
_DECAYED = ("A pp = (A)p;\n"
            "A gg = maximize ? -(A)g : (A)g;\n"
            "if (wd != 0) { if (decoupled) pp = pp * (A)decay; else gg = pp * (A)wd + gg; }\n")
# NAdam: c_g = -lr (1 - mu) / (1 - P), c_m = -lr mu_next / (1 - P mu_next), bc2 = 1 - b2^t
_ew("nadam_step", "T g, float64 beta1, float64 beta2, float64 eps, float64 bc2, float64 c_g, "
    "float64 c_m, float64 wd, float64 decay, bool decoupled, bool maximize", "T p, T m, T v",
    _DECAYED +
    "A mm = (A)m * (A)beta1 + gg * (A)(1 - beta1);\n"
    "A vv = (A)v * (A)beta2 + gg * gg * (A)(1 - beta2);\n"
    "m = (T)mm;\n"
    "v = (T)vv;\n"
    "A d = sqrt(vv / (A)bc2) + (A)eps;\n"
    "pp = pp + (gg / d) * (A)c_g;\n"
    "p = (T)(pp + (mm / d) * (A)c_m);\n")
# RAdam: adaptive (rho_t > 5): p += (m / (sqrt(v) + eps)) * c_adapt, else p += m * c_plain
_ew("radam_step", "T g, float64 beta1, float64 beta2, float64 eps, bool adaptive, "
    "float64 c_adapt, float64 c_plain, float64 wd, float64 decay, bool decoupled, "
    "bool maximize", "T p, T m, T v",
    _DECAYED +
    "A mm = (A)m * (A)beta1 + gg * (A)(1 - beta1);\n"
    "A vv = (A)v * (A)beta2 + gg * gg * (A)(1 - beta2);\n"
    "m = (T)mm;\n"
    "v = (T)vv;\n"
    "p = (T)(adaptive ? pp + (mm / (sqrt(vv) + (A)eps)) * (A)c_adapt\n"
    "                 : pp + mm * (A)c_plain);\n")
# Adadelta: delta = sqrt(a + eps) / sqrt(v + eps) * g;  a = rho a + (1 - rho) delta^2
_ew("adadelta_step", "T g, float64 rho, float64 eps, float64 lr, float64 wd, bool maximize",
    "T p, T v, T a",
    _SIGNED +
    "A vv = (A)v * (A)rho + gg * gg * (A)(1 - rho);\n"
    "A dl = sqrt((A)a + (A)eps) / sqrt(vv + (A)eps) * gg;\n"
    "v = (T)vv;\n"
    "a = (T)((A)a * (A)rho + dl * dl * (A)(1 - rho));\n"
    "p = (T)(pp - dl * (A)lr);\n")
# Rprop: per-element step sizes, grown / shrunk by the sign of g * prev (a flip skips the step)
_ew("rprop_step", "T g, float64 etaminus, float64 etaplus, float64 lo, float64 hi, "
    "bool maximize", "T p, T prev, T sz",
    "A gg = maximize ? -(A)g : (A)g;\n"
    "A pr = gg * (A)prev;\n"
    "A f = pr > 0 ? (A)etaplus : (pr < 0 ? (A)etaminus : (A)1);\n"
    "A z = (A)sz * f;\n"
    "z = z < (A)lo ? (A)lo : (z > (A)hi ? (A)hi : z);\n"
    "sz = (T)z;\n"
    "if (pr < 0) gg = 0;\n"
    "A sg = gg > 0 ? (A)1 : (gg < 0 ? (A)-1 : gg);\n"
    "p = (T)((A)p - sg * z);\n"
    "prev = (T)gg;\n")


# --- the other optimizers under GradScaler without a host read: RMSprop, Adadelta and Rprop
# (no step-dependent constant) skip on the device; Adagrad, Adamax and RAdam also fold their
# step constants once per thread from the parameter's device counter, with the host's formulas
for _name in ("rmsprop_step", "rmsprop_step_centered", "rmsprop_step_momentum",
              "rmsprop_step_centered_momentum", "adadelta_step", "rprop_step"):
    _amp_variant(_name)
del _name


# clr = lr / (1 + (t - 1) * lr_decay)
_amp_counted("adagrad_step", ("clr",), ["float64 lr", "float64 lr_decay"],
             "const double clr = lr / (1.0 + ((double)step[0] - 1.0) * lr_decay);\n")
# clr = lr / (1 - beta1^t)
_amp_counted("adamax_step", ("clr",), ["float64 lr"],
             "const double clr = lr / (1.0 - pow(beta1, (double)step[0]));\n")
# RAdam's rectification: adaptive once rho_t > 5
_amp_counted("radam_step", ("adaptive", "c_adapt", "c_plain", "decay"), ["float64 lr"],
             "const double tt = (double)step[0];\n"
             "const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;\n"
             "const double bc1 = 1.0 - pow(beta1, tt);\n"
             "const double bc2 = 1.0 - pow(beta2, tt);\n"
             "const double rho_t = rho_inf - 2.0 * tt * pow(beta2, tt) / bc2;\n"
             "const bool adaptive = rho_t > 5.0;\n"
             "const double c_adapt = adaptive ? -lr * sqrt((rho_t - 4.0) * (rho_t - 2.0)"
             " * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) * sqrt(bc2) / bc1"
             " : 0.0;\n"
             "const double c_plain = -lr / bc1;\n"
             "const double decay = 1.0 - lr * wd;\n")
# NAdam: the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t * md)) and its running product
# (the state's mu_product, a float64 device scalar per parameter, advanced first by
# nadam_mu_product) give c_g = -lr (1 - mu_t) / (1 - P) and c_m = -lr mu_{t+1} / (1 - P mu_{t+1})
_ew("nadam_mu_product", "raw float32 found, raw float32 step, float64 beta1, float64 md",
    "T prod",
    "prod = (T)((A)prod * (A)mu_t);\n",  # T is float64 here: the product in double
    prologue=_SKIP +
    "const double mu_t = beta1 * (1.0 - 0.5 * pow(0.96, (double)step[0] * md));\n",
    each=("step",))
_amp_counted("nadam_step", ("bc2", "c_g", "c_m", "decay"), ["float64 lr", "float64 md"],
             "const double tt = (double)step[0];\n"
             "const double bc2 = 1.0 - pow(beta2, tt);\n"
             "const double mu = beta1 * (1.0 - 0.5 * pow(0.96, tt * md));\n"
             "const double mu_next = beta1 * (1.0 - 0.5 * pow(0.96, (tt + 1.0) * md));\n"
             "const double prod = mu_prod[0];\n"
             "const double c_g = -lr * (1.0 - mu) / (1.0 - prod);\n"
             "const double c_m = -lr * mu_next / (1.0 - prod * mu_next);\n"
             "const double decay = 1.0 - lr * wd;\n",
             each=("float64 mu_prod",))
