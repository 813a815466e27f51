"""Row kernels: ops that reduce rows and then write them, in one CUDA launch each --
softmax, log_softmax and their backward and layer_norm's forward and input gradient over the
last dimension; attention's softmax (causal or not, with the dropout mask's product) and its
backward; cross-entropy's log_softmax with its pick; the 'mean' / 'sum' of per-row
losses; and training-mode batch_norm forward and backward, whose "rows" are the channels of
(N, C, L), and channel sums (a convolution's bias gradient).  Beside them, column sums in
one launch: layer_norm's weight and bias gradients, and a linear layer's bias gradient.

The ``ReductionKernel`` versions (``fused.py``, ``norm.py``) need a launch per reduction and
one for the output: softmax is three (max, sum of exponentials, output), layer_norm's forward
three and its input gradient three, batch_norm's backward four.  Each launch costs CuPy's
host overhead and a pass over the input from memory.  Here one launch does a row's reductions
and its output pass, which re-reads the row from the cache:

* rows of at most :data:`ROW_MAX` elements: a warp (32 threads) per row, ``_ROWS_PER_BLOCK``
  rows per block; a reduction is a butterfly of ``__shfl_xor_sync``, after which every lane
  holds the same, bit-identical value (each step adds the same two numbers on both sides);
* longer rows: a block per row (64 to 1024 threads, about 8 elements each); a reduction is the
  warp butterfly, the warps' partials in shared memory, and each warp's butterfly over the
  partials (again the same value in every thread, with no broadcast step).

PyTorch makes the same split (its warp softmax takes rows up to 1024).  Formulas and their
order of operations are the ``fused_src`` ones of the same ops (the cpu kernels'); only the
order of the summation differs, as it does between any two reductions.  float16 and bfloat16
are computed in float32 and rounded once.  ``source`` is pure (no CuPy): the tests compile the
generated code with ``nvcc`` and run it on the host, threads as fibers.
"""

from __future__ import annotations

import re
from typing import Dict, Tuple

from .multi_tensor import C_TYPES, HALF, PRELUDE, dtype_names

ROW_MAX = 1024  # the longest row a warp takes; longer ones get a block
_ROWS_PER_BLOCK = 4

# Warp reductions.  The max lets NaN win, as ``max``; the sum adds in a fixed butterfly order.
_WARP_HELPERS = r"""
typedef polyten_acc<T>::type S;
__device__ __forceinline__ S polyten_warp_sum(S v) {
  for (int o = 16; o > 0; o >>= 1) v = v + __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ S polyten_max2(S v, S u) { return (v != v || v > u) ? v : u; }
__device__ __forceinline__ S polyten_warp_max(S v) {
  for (int o = 16; o > 0; o >>= 1) v = polyten_max2(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
"""


def _block_reduce(kind: str, idle: str) -> str:
    """A block's ``sum`` / ``max`` of ``v``: each warp's butterfly, the warps' partials in
    shared memory, then every warp's butterfly over them (lanes past the last warp read
    ``idle``, the reduction's identity).  blockDim.x is a multiple of 32.  The first barrier
    keeps a fast warp from overwriting the partials of the previous reduction while a slow
    one still reads them."""
    return (f"__device__ S polyten_row_{kind}(S v) {{\n"
            "  __shared__ S part[32];\n"
            f"  v = polyten_warp_{kind}(v);\n"
            "  const int l = threadIdx.x & 31;\n"
            "  __syncthreads();\n"
            "  if (l == 0) part[threadIdx.x >> 5] = v;\n"
            "  __syncthreads();\n"
            f"  return polyten_warp_{kind}({idle});\n"
            "}\n")


_MODES = {
    "warp": _WARP_HELPERS + r"""
__device__ __forceinline__ S polyten_row_sum(S v) { return polyten_warp_sum(v); }
__device__ __forceinline__ S polyten_row_max(S v) { return polyten_warp_max(v); }
""",
    "block": _WARP_HELPERS + "\n"
    + _block_reduce("sum", "l < (int)(blockDim.x >> 5) ? part[l] : S(0)")
    + _block_reduce("max", "part[l < (int)(blockDim.x >> 5) ? l : 0]"),
}
# where a thread starts in its row, and its stride
_INDEX = {"warp": ("(long long)blockIdx.x * blockDim.y + threadIdx.y", "32"),
          "block": ("(long long)blockIdx.x", "blockDim.x")}

# The most threads a launch of each kind of kernel has: a block of 1024 threads fails to launch
# ("too many resources requested") when its kernel uses more than 64 registers a thread.
# NVRTC 13 gives every kernel here 56 at most, left to its own heuristics (32 for most: two
# 1024-thread blocks an SM).  Any bound in the source changes that choice for all of them
# (NVRTC 13, sm_90, the 164 kernels of 1024-thread blocks): __launch_bounds__(1024) held 38
# of them to 32 registers and 20 of those spilled to local memory; (1024, 1) gave 20 that
# need 32 or fewer more than 32 (one resident block an SM instead of two), as did
# --maxrregcount=64.  So a kernel is compiled as it is, and rebuilt with __launch_bounds__
# only where the driver says it cannot launch its largest block (another compiler's
# choice): see Rows._compiled.
_MOST_THREADS = {"warp": 32 * _ROWS_PER_BLOCK, "block": 1024}

_LOOP = "for (long long j = lane; j < d; j += stride)"
# max of the row, then the sum of exp(x - m): softmax and log_softmax share them
_SOFTMAX_STATS = (
    "S m = (S)x[base];\n"  # an element of the row: the identity of max that needs no inf
    f"{_LOOP} m = polyten_max2(m, (S)x[base + j]);\n"
    "m = polyten_row_max(m);\n"
    "S s = S(0);\n"
    f"{_LOOP} s = s + exp((S)x[base + j] - m);\n"
    "s = polyten_row_sum(s);\n")
_RSTD = "S(1) / sqrt(var + (S)eps)"


def _layer_norm(w: bool, b: bool) -> str:
    return (
        "S sum = S(0);\n"
        f"{_LOOP} sum = sum + (S)x[base + j];\n"
        "const S mu = polyten_row_sum(sum) / (S)d;\n"
        "S sq = S(0);\n"
        f"{_LOOP} {{\n"
        "  const S c = (S)x[base + j] - mu;\n"
        "  sq = sq + c * c;\n"
        "}\n"
        "const S var = polyten_row_sum(sq) / (S)d;\n"
        f"const S rstd = {_RSTD};\n"
        f"{_LOOP} {{\n"
        "  S v = ((S)x[base + j] - mu) * rstd;\n"
        + ("  v = v * (S)w[j];\n" if w else "") + ("  v = v + (S)b[j];\n" if b else "") +
        "  y[base + j] = (T)v;\n"
        "}\n"
        "if (lane == 0) { mean[row] = mu; rvar[row] = var; }\n")


def _layer_norm_backward(w: bool) -> str:
    gh = "(S)g[base + j] * (S)w[j]" if w else "(S)g[base + j]"
    return (
        "const S mu = mean[row];\n"
        "const S var = rvar[row];\n"
        f"const S rstd = {_RSTD};\n"
        "S c1 = S(0), c2 = S(0);\n"
        f"{_LOOP} {{\n"
        f"  const S gh = {gh};\n"
        "  c1 = c1 + gh * (((S)x[base + j] - mu) * rstd);\n"
        "  c2 = c2 + gh;\n"
        "}\n"
        "c1 = polyten_row_sum(c1);\n"
        "c2 = polyten_row_sum(c2);\n"
        f"{_LOOP} {{\n"
        "  const S xhat = ((S)x[base + j] - mu) * rstd;\n"
        f"  S gh = {gh};\n"
        "  gh = gh - c2 / (S)d;\n"
        "  gh = gh - xhat * (c1 / (S)d);\n"
        "  gx[base + j] = (T)(gh * rstd);\n"
        "}\n")


def _ln_params(w, b):
    return ("const T* x" + (", const T* w" if w else "") + (", const T* b" if b else "")
            + ", T* y, S* mean, S* rvar, double eps")


# op -> (parameters before ``rows, d``, body); the ``x`` / ``g`` / ``y`` arrays are (rows, d)
# C-contiguous, ``w`` / ``b`` are (d,), ``mean`` / ``rvar`` one S per row
KERNELS: Dict[str, Tuple[str, str]] = {
    "softmax": ("const T* x, T* y", _SOFTMAX_STATS + (
        f"{_LOOP} y[base + j] = (T)(exp((S)x[base + j] - m) / s);\n")),
    "log_softmax": ("const T* x, T* y", _SOFTMAX_STATS + (
        "const S ls = log(s);\n"
        f"{_LOOP} y[base + j] = (T)(((S)x[base + j] - m) - ls);\n")),
    # s = sum(g * y); gx = (g - s) * y
    "softmax_backward": ("const T* g, const T* y, T* gx", (
        "S s = S(0);\n"
        f"{_LOOP} s = s + (S)g[base + j] * (S)y[base + j];\n"
        "s = polyten_row_sum(s);\n"
        f"{_LOOP} gx[base + j] = (T)(((S)g[base + j] - s) * (S)y[base + j]);\n")),
    # s = sum(g); gx = g - exp(y) * s
    "log_softmax_backward": ("const T* g, const T* y, T* gx", (
        "S s = S(0);\n"
        f"{_LOOP} s = s + (S)g[base + j];\n"
        "s = polyten_row_sum(s);\n"
        f"{_LOOP} gx[base + j] = (T)((S)g[base + j] - exp((S)y[base + j]) * s);\n")),
}


# --- a few long rows cut into chunks: a block per (row, chunk) -------------------------------
# softmax over (1, 256000) logits (sampling from a language model at batch 1) is one block on
# one SM in the kernels above.  From ROW_SPLIT_MIN elements and fewer than SPLIT_BLOCKS rows
# (``row_chunks``), grid y cuts each row into chunks: a first launch writes each chunk's max
# and sum of exp(x - max) (softmax) or its sum (the backward's) to ``part`` ((2, chunks, rows)
# in S), a second one (block (row, y) again) merges its row's partials in chunk order -- the
# same in every block: deterministic -- and writes its chunk of the output.
_ROW_CHUNK = ("const long long j0 = (long long)blockIdx.y * chunk;\n"
              "const long long j1 = j0 + chunk < d ? j0 + chunk : d;\n")
_LOOP_CHUNK = "for (long long j = j0 + lane; j < j1; j += stride)"
_ROW_PART = ", S* part, long long chunk"
_ROW_APPLY = ", const S* part, long long chunk"
# the row's max and sum of exp(x - max) from the chunks' (m_p, s_p): s = sum s_p e^(m_p - m).
# A chunk of -inf alone has s_p = NaN (exp(-inf + inf)) and adds nothing when the row has a
# finite max; a row of -inf keeps the NaN, as the one-block kernel's exp(-inf + inf).
_SOFTMAX_MERGE = (
    "S m = part[row];\n"
    "for (long long p = 1; p < gridDim.y; ++p) m = polyten_max2(m, part[p * rows + row]);\n"
    "S s = S(0);\n"
    "const bool all_neg_inf = isinf(m) && m < S(0);\n"
    "for (long long p = 0; p < gridDim.y; ++p) {\n"
    "  const S mp = part[p * rows + row];\n"
    "  if (isinf(mp) && mp < S(0) && !all_neg_inf) continue;\n"
    "  s = s + part[((long long)gridDim.y + p) * rows + row] * exp(mp - m);\n"
    "}\n")
_SUM_MERGE = ("S s = S(0);\n"
              "for (long long p = 0; p < gridDim.y; ++p) s = s + part[p * rows + row];\n")
KERNELS["softmax_part"] = ("const T* x" + _ROW_PART, (
    _ROW_CHUNK + _SOFTMAX_STATS.replace("x[base]", "x[base + j0]").replace(_LOOP, _LOOP_CHUNK)
    + "if (lane == 0) { part[(long long)blockIdx.y * rows + row] = m;\n"
    "  part[((long long)gridDim.y + blockIdx.y) * rows + row] = s; }\n"))
KERNELS["softmax_apply"] = ("const T* x, T* y" + _ROW_APPLY, (
    _ROW_CHUNK + _SOFTMAX_MERGE
    + f"{_LOOP_CHUNK} y[base + j] = (T)(exp((S)x[base + j] - m) / s);\n"))
KERNELS["log_softmax_apply"] = ("const T* x, T* y" + _ROW_APPLY, (
    _ROW_CHUNK + _SOFTMAX_MERGE + "const S ls = log(s);\n"
    + f"{_LOOP_CHUNK} y[base + j] = (T)(((S)x[base + j] - m) - ls);\n"))
KERNELS["softmax_backward_part"] = ("const T* g, const T* y" + _ROW_PART, (
    _ROW_CHUNK + "S s = S(0);\n"
    f"{_LOOP_CHUNK} s = s + (S)g[base + j] * (S)y[base + j];\n"
    "s = polyten_row_sum(s);\n"
    "if (lane == 0) part[(long long)blockIdx.y * rows + row] = s;\n"))
KERNELS["log_softmax_backward_part"] = ("const T* g" + _ROW_PART, (
    _ROW_CHUNK + "S s = S(0);\n"
    f"{_LOOP_CHUNK} s = s + (S)g[base + j];\n"
    "s = polyten_row_sum(s);\n"
    "if (lane == 0) part[(long long)blockIdx.y * rows + row] = s;\n"))
KERNELS["softmax_backward_apply"] = ("const T* g, const T* y, T* gx" + _ROW_APPLY, (
    _ROW_CHUNK + _SUM_MERGE
    + f"{_LOOP_CHUNK} gx[base + j] = (T)(((S)g[base + j] - s) * (S)y[base + j]);\n"))
KERNELS["log_softmax_backward_apply"] = ("const T* g, const T* y, T* gx" + _ROW_APPLY, (
    _ROW_CHUNK + _SUM_MERGE
    + f"{_LOOP_CHUNK} gx[base + j] = (T)((S)g[base + j] - exp((S)y[base + j]) * s);\n"))


def _attention_softmax(causal: bool, keep: bool) -> str:
    """Attention's weights in place on the scores (``y`` may be ``x``): softmax over the row,
    only keys ``j <= i`` for query ``i = row % L`` when ``causal`` (the others get 0), and
    with ``keep`` also the dropped weights ``yd = y * keep``, rounded as that product is."""
    lim = "(row % L) + 1 < d ? (row % L) + 1 : d" if causal else "d"
    return (
        f"const long long lim = {lim};\n"
        + _SOFTMAX_STATS.replace(" j < d;", " j < lim;") +
        f"{_LOOP} {{\n"
        "  const T p = j < lim ? (T)(exp((S)x[base + j] - m) / s) : (T)S(0);\n"
        "  y[base + j] = p;\n"
        + ("  yd[base + j] = (T)((S)p * (S)keep[base + j]);\n" if keep else "") +
        "}\n")


for _c in (False, True):
    for _k in (False, True):
        KERNELS["attention_softmax" + ("_causal" if _c else "") + ("_keep" if _k else "")] = (
            "const T* x, T* y" + (", const T* keep, T* yd" if _k else "") + ", long long L",
            _attention_softmax(_c, _k))
# softmax_backward of the dropped weights' gradient g: of the weights, g * keep (rounded as
# that product is); in place on g is safe (each element is read, then written, by one thread)
KERNELS["softmax_backward_keep"] = ("const T* g, const T* keep, const T* y, T* gx", (
    "S s = S(0);\n"
    f"{_LOOP} s = s + (S)(T)((S)g[base + j] * (S)keep[base + j]) * (S)y[base + j];\n"
    "s = polyten_row_sum(s);\n"
    f"{_LOOP} gx[base + j] = (T)(((S)(T)((S)g[base + j] * (S)keep[base + j]) - s)"
    " * (S)y[base + j]);\n"))


def _cross_entropy(w: bool) -> str:
    """log_softmax of the row, then nll_pick's loss and weight from lane 0: the picked
    log-probability recomputed and rounded as stored (no read of another lane's write).  A
    target outside [0, d) that is not ignored gives NaN (the core's deferred check raises)."""
    return _SOFTMAX_STATS + (
        "const S ls = log(s);\n"
        f"{_LOOP} logp[base + j] = (T)(((S)x[base + j] - m) - ls);\n"
        "if (lane == 0) {\n"
        "  const long long tv = t[row];\n"
        "  const bool inrange = tv >= 0 && tv < d;\n"
        "  const bool valid = tv != ignore && inrange;\n"
        "  const long long tt = valid ? tv : 0;\n"
        f"  const S ww = valid ? {'(S)w[tt]' if w else 'S(1)'} : S(0);\n"
        "  const S lp = (S)(T)(((S)x[base + tt] - m) - ls);\n"
        "  wt[row] = ww;\n"
        "  loss[row] = valid ? -(lp * ww) : (tv == ignore ? S(0) : (S)nan(\"\"));\n"
        "}\n")


# the 'mean' / 'sum' of per-row losses (one row of d losses and weights): the total divided
# by the summed weights (0 / 0 = NaN when every target is ignored), rounded once to T
def _loss_total(mean: bool) -> str:
    return (
        "S sl = S(0), sw = S(0);\n"
        f"{_LOOP} {{\n"
        "  sl = sl + loss[base + j];\n"
        "  sw = sw + wt[base + j];\n"
        "}\n"
        "sl = polyten_row_sum(sl);\n"
        + ("sw = polyten_row_sum(sw);\n"
           "if (lane == 0) out[row] = (T)(sl / sw);\n" if mean else
           "if (lane == 0) out[row] = (T)sl;\n"))


KERNELS["cross_entropy"] = ("const T* x, const long long* t, long long ignore, T* logp, "
                            "S* loss, S* wt", _cross_entropy(False))
KERNELS["cross_entropy_w"] = ("const T* x, const long long* t, const T* w, long long ignore, "
                              "T* logp, S* loss, S* wt", _cross_entropy(True))
# cross-entropy's and nll_loss's 'mean' divisor for the backward (one row of d targets):
# the summed weights (1 without) of the targets that count, in [0, C) and not ignored
def _divisor(w: bool) -> str:
    return (
        "S sw = S(0);\n"
        f"{_LOOP} {{\n"
        "  const long long tv = t[base + j];\n"
        "  if (tv != ignore && tv >= 0 && tv < C) sw = sw + "
        + ("(S)w[tv];\n" if w else "S(1);\n") +
        "}\n"
        "sw = polyten_row_sum(sw);\n"
        "if (lane == 0) out[row] = sw;\n")


KERNELS["nll_divisor"] = ("const long long* t, long long C, long long ignore, S* out",
                          _divisor(False))
KERNELS["nll_divisor_w"] = ("const long long* t, const T* w, long long C, long long ignore, "
                            "S* out", _divisor(True))
KERNELS["loss_mean"] = ("const S* loss, const S* wt, T* out", _loss_total(True))
KERNELS["loss_sum"] = ("const S* loss, const S* wt, T* out", _loss_total(False))

# batch_norm (training): a "row" is a channel c of (N, C, L) C-contiguous x, its d = N * L
# elements at offsets n * C * L + c * L + l; the cpu kernels' formulas (fused_src's
# batch_norm_out / batch_norm_backward_out / batch_norm_weight_grad), in their order
# (j / L in 32 bits when d allows: a 64-bit division is a long software sequence on a GPU;
# ``narrow`` is the same in every thread, so the branch never diverges)
_CH_LOOP = ("for (long long j = lane; j < d; j += stride) {\n"
            "  const long long q = narrow ? (long long)((unsigned)j / (unsigned)L) : j / L;\n"
            "  const long long at = q * (rows * L) + row * L + (j - q * L);\n")
_NARROW = "const bool narrow = d <= 0xffffffffLL;\n"


# pieces of the batch_norm kernels, over the elements ``loop`` visits (a channel, or a chunk
# of one: see the chunked kernels below)
def _bn_stats(loop: str, count: str) -> str:
    """``mu``, the mean of the elements, and ``sq``, their squared deviations from it: two
    passes."""
    return ("S sum = S(0);\n"
            f"{loop}  sum = sum + (S)x[at];\n}}\n"
            f"const S mu = polyten_row_sum(sum) / (S)({count});\n"
            "S sq = S(0);\n"
            f"{loop}  const S c = (S)x[at] - mu;\n  sq = sq + c * c;\n}}\n"
            "sq = polyten_row_sum(sq);\n")


def _bn_output(loop: str, w: bool, b: bool) -> str:
    """y from the channel's ``mu`` and ``var``."""
    return (f"const S scale = ({_RSTD}" + (" * (S)w[row]" if w else "") + ");\n"
            f"{loop}  S v = ((S)x[at] - mu) * scale;\n"
            + ("  v = v + (S)b[row];\n" if b else "") +
            "  y[at] = (T)v;\n}\n")


def _bn_grad_sums(loop: str) -> str:
    """``dot`` (of g and x - mu) and ``gsum`` (of g)."""
    return ("S dot = S(0), gsum = S(0);\n"
            f"{loop}  const S gg = (S)g[at];\n"
            "  dot = dot + gg * ((S)x[at] - mu);\n"
            "  gsum = gsum + gg;\n}\n"
            "dot = polyten_row_sum(dot);\n"
            "gsum = polyten_row_sum(gsum);\n")


def _bn_input_grad(loop: str, w: bool) -> str:
    """gx from the channel's ``dot``, ``gsum`` and ``rstd``."""
    return (f"{loop}  S t = ((S)x[at] - mu) * (dot * rstd * rstd / (S)d);\n"
            "  t = t + gsum / (S)d;\n"
            + ("  gx[at] = (T)(((S)g[at] - t) * (rstd * (S)w[row]));\n}\n" if w else
               "  gx[at] = (T)(((S)g[at] - t) * rstd);\n}\n"))


_BN_STATS = f"const S mu = mean[row];\nconst S var = rvar[row];\nconst S rstd = {_RSTD};\n"


def _batch_norm(w: bool, b: bool) -> str:
    return (_NARROW + _bn_stats(_CH_LOOP, "d") + "const S var = sq / (S)d;\n"
            + _bn_output(_CH_LOOP, w, b)
            + "if (lane == 0) { mean[row] = mu; rvar[row] = var; }\n")


def _batch_norm_backward(w: bool) -> str:
    return (_NARROW + _BN_STATS + _bn_grad_sums(_CH_LOOP) + _bn_input_grad(_CH_LOOP, w)
            + "if (lane == 0) { gw[row] = (T)(dot * rstd); gb[row] = (T)gsum; }\n")


# the total of a multi-tensor norm's partials (``multi_tensor.MultiTensorNorm``: sums of
# squares, or largest magnitudes with NaN first), one row of S: the norm in T, rounded once
KERNELS["norm_total_l2"] = ("const S* p, T* out", (
    "S s = S(0);\n"
    f"{_LOOP} s = s + p[base + j];\n"
    "s = polyten_row_sum(s);\n"
    "if (lane == 0) out[row] = (T)sqrt(s);\n"))
KERNELS["norm_total_inf"] = ("const S* p, T* out", (
    "S v = S(0);\n"  # the partials are magnitudes (or NaN): 0 is max's identity here
    f"{_LOOP} v = polyten_max2(v, p[base + j]);\n"
    "v = polyten_row_max(v);\n"
    "if (lane == 0) out[row] = (T)v;\n"))
# the sum of each channel of (N, C, L): a convolution's bias gradient, in one launch where
# CuPy's ``sum(axis=(0, 2, ...))`` is a reduction call (several times a RawKernel's host time)
KERNELS["channel_sum"] = ("const T* x, T* out, long long L", (
    _NARROW + "S sum = S(0);\n"
    f"{_CH_LOOP}  sum = sum + (S)x[at];\n}}\n"
    "sum = polyten_row_sum(sum);\n"
    "if (lane == 0) out[row] = (T)sum;\n"))

# --- channels cut into chunks: a block per (channel, chunk) ---------------------------------
# A block per channel leaves most SMs idle when there are few channels of many elements (64
# channels of 256 * 32 * 32: 64 blocks on a GPU of 132 SMs).  Past that (``channel_chunks``),
# grid y cuts each channel's d = N * L elements into chunks of ``chunk``: a first launch
# writes each chunk's partial results to ``part`` ((2, chunks, C) in S: chunk-major, so that
# the column kernels' finish adds a channel sum's), a second one (block (c, y) again) merges
# its channel's partials in chunk order -- the same in every block: deterministic -- and
# writes its chunk of the output.
_CH_CHUNK = ("const long long j0 = (long long)blockIdx.y * chunk;\n"
             "const long long j1 = j0 + chunk < d ? j0 + chunk : d;\n")
_CH_LOOP_CHUNK = _CH_LOOP.replace("long long j = lane; j < d;", "long long j = j0 + lane; j < j1;")
_PART = "part[(long long)blockIdx.y * rows + row]"
_PART2 = "part[((long long)gridDim.y + blockIdx.y) * rows + row]"
_CH_SPLIT = ", S* part, long long chunk, long long L"
KERNELS["channel_sum_part"] = ("const T* x" + _CH_SPLIT, (
    _NARROW + _CH_CHUNK + "S sum = S(0);\n"
    f"{_CH_LOOP_CHUNK}  sum = sum + (S)x[at];\n}}\n"
    "sum = polyten_row_sum(sum);\n"
    f"if (lane == 0) {_PART} = sum;\n"))
# batch_norm's statistics by chunk: each chunk's mean and sum of squared deviations from it
# (two passes over the chunk, as the one-block kernel's over the channel), merged by Chan's
# pairwise rule (the chunks' means weighted by their counts, the squared deviations plus
# count-weighted squared differences of the means)
KERNELS["batch_norm_stats_part"] = ("const T* x" + _CH_SPLIT, (
    _NARROW + _CH_CHUNK + _bn_stats(_CH_LOOP_CHUNK, "j1 - j0")
    + f"if (lane == 0) {{ {_PART} = mu; {_PART2} = sq; }}\n"))
_CH_MERGE = (
    "S mu = S(0), m2 = S(0), cnt = S(0);\n"
    "for (long long p = 0; p < gridDim.y; ++p) {\n"
    "  const long long q0 = p * chunk;\n"
    "  const S nb = (S)((q0 + chunk < d ? q0 + chunk : d) - q0);\n"
    "  const S delta = part[p * rows + row] - mu;\n"
    "  const S tot = cnt + nb;\n"
    "  mu = mu + delta * (nb / tot);\n"
    "  m2 = m2 + part[((long long)gridDim.y + p) * rows + row]\n"
    "       + delta * delta * (cnt * nb / tot);\n"
    "  cnt = tot;\n"
    "}\n"
    "const S var = m2 / (S)d;\n")


KERNELS["batch_norm_backward_part"] = ("const T* g, const T* x, const S* mean" + _CH_SPLIT, (
    _NARROW + _CH_CHUNK + "const S mu = mean[row];\n" + _bn_grad_sums(_CH_LOOP_CHUNK)
    + f"if (lane == 0) {{ {_PART} = dot; {_PART2} = gsum; }}\n"))
# the chunked kernels' second launch: every block merges its channel's partials
_BN_CHUNK_SUMS = (
    "S dot = S(0), gsum = S(0);\n"
    "for (long long p = 0; p < gridDim.y; ++p) {\n"
    "  dot = dot + part[p * rows + row];\n"
    "  gsum = gsum + part[((long long)gridDim.y + p) * rows + row];\n"
    "}\n")
_BN_BW_PARAMS = ", const S* mean, const S* rvar, double eps, T* gx, T* gw, T* gb"
for _w in (False, True):
    for _b in (False, True):
        _affine = ("_w" if _w else "") + ("_b" if _b else "")
        KERNELS["batch_norm" + _affine] = (_ln_params(_w, _b) + ", long long L",
                                           _batch_norm(_w, _b))
        KERNELS["batch_norm_apply" + _affine] = (
            _ln_params(_w, _b) + ", const S* part, long long chunk, long long L",
            _NARROW + _CH_CHUNK + _CH_MERGE + _bn_output(_CH_LOOP_CHUNK, _w, _b)
            + "if (lane == 0 && blockIdx.y == 0) { mean[row] = mu; rvar[row] = var; }\n")
    _g = "const T* g, const T* x" + (", const T* w" if _w else "") + _BN_BW_PARAMS
    KERNELS["batch_norm_backward" + ("_w" if _w else "")] = (
        _g + ", long long L", _batch_norm_backward(_w))
    KERNELS["batch_norm_backward_apply" + ("_w" if _w else "")] = (
        _g + ", const S* part, long long chunk, long long L",
        _NARROW + _CH_CHUNK + _BN_STATS + _BN_CHUNK_SUMS + _bn_input_grad(_CH_LOOP_CHUNK, _w)
        + "if (lane == 0 && blockIdx.y == 0) { gw[row] = (T)(dot * rstd); gb[row] = (T)gsum; }\n")
# Channels of fewer elements than CHANNEL_SPLIT_MIN keep a block each: a block walks about
# 30 GB/s through a channel (the index arithmetic of each element, not memory, bounds it), so
# a channel of 2**17 float32 takes it about 17 us, where chunks would save about 13 us, a
# second launch's host time; a chunk has at least CHANNEL_CHUNK_MIN elements (8 a thread).
# Estimates, not measured on a GPU yet: bench_cuda's sums and rows cases time them.
CHANNEL_SPLIT_MIN = 1 << 17
CHANNEL_CHUNK_MIN = 8192


# Rows of fewer elements than ROW_SPLIT_MIN keep a block each: a contiguous row streams
# faster through one block than a strided channel, so the second launch's host time (about
# 5-10 us) pays off later than for channels.  An estimate, not measured on a GPU yet.
ROW_SPLIT_MIN = 1 << 16


def row_chunks(rows: int, d: int) -> int:
    """How many chunks (grid y) softmax and its backward cut each of ``rows`` rows of ``d``
    elements into: 1 (a block or warp per row) from SPLIT_BLOCKS rows on or below
    ROW_SPLIT_MIN elements; else enough for about SPLIT_BLOCKS blocks, none empty, each at
    least CHANNEL_CHUNK_MIN long."""
    if rows >= SPLIT_BLOCKS or d < ROW_SPLIT_MIN:
        return 1
    return _chunk_count(rows, d, CHANNEL_CHUNK_MIN)


def channel_chunks(c: int, d: int) -> int:
    """How many chunks (grid y) the channel kernels cut each of ``c`` channels of ``d``
    elements into: 1 (one launch, a block per channel) from SPLIT_BLOCKS channels on or
    below CHANNEL_SPLIT_MIN elements; else enough for about SPLIT_BLOCKS blocks, none
    empty."""
    if c >= SPLIT_BLOCKS or d < CHANNEL_SPLIT_MIN:
        return 1
    return _chunk_count(c, d, CHANNEL_CHUNK_MIN)


for _w in (False, True):
    for _b in (False, True):
        KERNELS["layer_norm" + ("_w" if _w else "") + ("_b" if _b else "")] = (
            _ln_params(_w, _b), _layer_norm(_w, _b))
    KERNELS["layer_norm_backward" + ("_w" if _w else "")] = (
        "const T* g, const T* x" + (", const T* w" if _w else "")
        + ", const S* mean, const S* rvar, double eps, T* gx", _layer_norm_backward(_w))


def source(op: str, dtype: str, mode: str = "warp") -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` of the row kernel ``op`` (a key of :data:`KERNELS`)
    for ``dtype`` (a key of ``multi_tensor.C_TYPES``).  ``mode`` ``"warp"``: block
    ``(32, R)`` runs rows ``blockIdx.x * R`` to ``+ R - 1``, one per warp; ``"block"``: block
    ``(B,)`` (B a multiple of 32) runs row ``blockIdx.x``."""
    sig, body = KERNELS[op]
    first, stride = _INDEX[mode]
    name = f"polyten_row_{op}_{dtype}" + ("_block" if mode == "block" else "")
    code = (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n" + _MODES[mode] +
            f'extern "C" __global__ void {name}({sig}, long long rows, '
            "long long d) {\n"
            f"  const long long row = {first};\n"
            "  if (row >= rows) return;  // a whole warp (block): a row is one warp's (block's)\n"
            "  const int lane = threadIdx.x;\n"
            f"  const long long stride = {stride};\n"
            # batch_norm's rows are strided channels: no row base (NVRTC warns of it unused)
            + ("  const long long base = row * d;\n" if re.search(r"\bbase\b", body) else "")
            + "".join("  " + line + "\n" for line in body.splitlines()) + "}\n")
    return name, code


def bounded(code: str, name: str, threads: int) -> str:
    """``code`` with ``__launch_bounds__(threads)`` on its kernel ``name``."""
    out, n = re.subn(rf"__global__\s+void\s+{re.escape(name)}\s*\(",
                     f"__global__ void __launch_bounds__({threads}) {name}(", code, count=1)
    if n != 1:
        raise ValueError(f"no kernel '{name}' in the source")
    return out


def block_threads(d: int) -> int:
    """Threads per row in block mode: about 8 elements each, 64 to 1024, a power of two."""
    return max(64, min(1024, 1 << max(0, (-(-d // 8) - 1).bit_length())))


# layer_norm's weight and bias gradients: sums over the rows of each column.  A block takes
# 32 adjacent columns (reads coalesced along the row) and 32 row strides through the rows of
# its chunk (grid y: ``chunk`` rows each); the 32 partials of each column are added in a fixed
# order (deterministic, no atomics), as PyTorch's GammaBetaBackward kernel does.  With one
# chunk (gridDim.y == 1) a block writes its columns' results; with more, each chunk's sums go
# to ``part`` ((outputs, chunks, d) in S) and COLUMN_FINISH_SRC adds them in chunk order.
_COLS = 32
_COL_ROWS = 32
_CHUNK_ROWS = ("  const long long r0 = (long long)blockIdx.y * chunk;\n"
               "  const long long r1 = r0 + chunk < m ? r0 + chunk : m;\n")
PARAM_GRADS_SRC = f"""
extern "C" __global__ void
NAME(const T* g, const T* x, const S* mean, const S* rvar, double eps, T* gw, T* gb, S* part,
     long long chunk, long long m, long long d) {{
  __shared__ S pw[{_COL_ROWS}][{_COLS}];
  __shared__ S pb[{_COL_ROWS}][{_COLS}];
  const long long col = (long long)blockIdx.x * {_COLS} + threadIdx.x;
{_CHUNK_ROWS}  S sw = S(0), sb = S(0);
  if (col < d) {{
    for (long long r = r0 + threadIdx.y; r < r1; r += {_COL_ROWS}) {{
      const S var = rvar[r];
      const S rstd = {_RSTD};
      const S gg = (S)g[r * d + col];
      sw = sw + gg * (((S)x[r * d + col] - mean[r]) * rstd);
      sb = sb + gg;
    }}
  }}
  pw[threadIdx.y][threadIdx.x] = sw;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && col < d) {{
    S tw = S(0), tb = S(0);
    for (int k = 0; k < {_COL_ROWS}; ++k) {{
      tw = tw + pw[k][threadIdx.x];
      tb = tb + pb[k][threadIdx.x];
    }}
    if (gridDim.y == 1) {{
      gw[col] = (T)tw;
      gb[col] = (T)tb;
    }} else {{
      part[(long long)blockIdx.y * d + col] = tw;
      part[((long long)gridDim.y + blockIdx.y) * d + col] = tb;
    }}
  }}
}}
"""


# the sum of each column of (m, d): a linear layer's bias gradient (the same blocks as above)
COLUMN_SUM_SRC = f"""
extern "C" __global__ void
NAME(const T* g, T* out, S* part, long long chunk, long long m, long long d) {{
  __shared__ S sums[{_COL_ROWS}][{_COLS}];
  const long long col = (long long)blockIdx.x * {_COLS} + threadIdx.x;
{_CHUNK_ROWS}  S s = S(0);
  if (col < d) {{
    for (long long r = r0 + threadIdx.y; r < r1; r += {_COL_ROWS}) s = s + (S)g[r * d + col];
  }}
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < d) {{
    S t = S(0);
    for (int k = 0; k < {_COL_ROWS}; ++k) t = t + sums[k][threadIdx.x];
    if (gridDim.y == 1) out[col] = (T)t;
    else part[(long long)blockIdx.y * d + col] = t;
  }}
}}
"""
# the chunks' partial sums added in chunk order, rounded once: column ``blockIdx.x * 256 +
# threadIdx.x`` of output ``blockIdx.y`` (``part`` is (outputs, parts, d))
COLUMN_FINISH_SRC = """
extern "C" __global__ void NAME(const S* part, T* out0, T* out1, long long parts,
                                long long d) {
  const long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= d) return;
  const S* p = part + (long long)blockIdx.y * parts * d + col;
  S t = S(0);
  for (long long r = 0; r < parts; ++r) t = t + p[r * d];
  (blockIdx.y ? out1 : out0)[col] = (T)t;
}
"""
_FINISH_THREADS = 256
# A block walks all the rows of its chunk, 32 threads down each of its 32 columns.  Up to
# this many rows (or from SPLIT_BLOCKS column blocks on) one chunk: one launch.  Past it, the
# rows are cut into chunks of at least CHUNK_MIN rows until the grid has about SPLIT_BLOCKS
# blocks -- a few per SM on current GPUs (132 on an H100 / H200): d / 32 blocks alone (8 for
# d = 256, 24 for 768) would leave most SMs idle on a tall gradient -- plus one launch that
# adds the chunks' sums.
COLUMN_SUM_ROWS = 8192
SPLIT_BLOCKS = 256
CHUNK_MIN = 512


def column_chunks(m: int, d: int) -> int:
    """How many row chunks (grid y) the column kernels cut an (m, d) array into."""
    blocks = -(-d // _COLS)
    if m <= COLUMN_SUM_ROWS or blocks >= SPLIT_BLOCKS:
        return 1
    return _chunk_count(blocks, m, CHUNK_MIN)


def _chunk_count(blocks: int, length: int, least: int) -> int:
    """How many chunks to cut ``length`` into so that ``blocks`` blocks a chunk make about
    SPLIT_BLOCKS in all, each chunk at least ``least`` long (one when shorter) and none
    empty."""
    want = max(1, min(-(-SPLIT_BLOCKS // blocks), length // least))
    chunk = -(-length // want)
    return -(-length // chunk)


# the column kernels by name: block ``(32, 32)`` sums columns ``blockIdx.x * 32`` to ``+ 31``
_COLUMN_SOURCES = {"column_sum": COLUMN_SUM_SRC, "layer_norm_param_grads": PARAM_GRADS_SRC,
                   "column_finish": COLUMN_FINISH_SRC}


def _column_source(kind: str, dtype: str) -> Tuple[str, str]:
    name = f"polyten_{kind}_{dtype}"
    return name, (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n"
                  "typedef polyten_acc<T>::type S;\n"
                  + _COLUMN_SOURCES[kind].replace("NAME", name))


def column_sum_source(dtype: str) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` of the column sums of a C-contiguous (m, d) array of
    ``dtype``."""
    return _column_source("column_sum", dtype)


def param_grads_source(dtype: str) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` of layer_norm's weight and bias gradients for
    ``dtype``."""
    return _column_source("layer_norm_param_grads", dtype)


def column_finish_source(dtype: str) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` that adds the column kernels' per-chunk sums of a
    tall array of ``dtype``."""
    return _column_source("column_finish", dtype)


class Rows:
    """The row kernels for CuPy module ``cp``.  :meth:`fits` says whether an array takes
    them; each op method returns its output arrays (``layer_norm``: also the per-row mean and
    variance, shaped ``(rows,)``).  The norm methods take what ``norm.py`` has made ready:
    C-contiguous inputs and gradients of one dtype, statistics in :meth:`acc`'s dtype."""

    def __init__(self, cp):
        self._cp = cp
        self._kernels: Dict[Tuple[str, str, str], object] = {}
        self._dtypes = dtype_names(cp, C_TYPES)
        self._f32 = cp.dtype("float32")
        self._half = frozenset(dt for dt, name in self._dtypes.items() if name in HALF)
        # CuPy passes a Python int / float by its NumPy type: explicit, as the C parameters
        self._i64, self._f64 = cp.int64, cp.float64

    def takes(self, dt) -> bool:
        """Whether the kernels take dtype ``dt`` (the floating dtypes of ``C_TYPES``)."""
        return dt in self._dtypes

    def fits(self, x, dim: int = -1) -> bool:
        """Floating, not empty, reduced over its last dim (a view is copied to C order
        first: one copy and a row launch cost less than three strided launches)."""
        nd = x.ndim
        return nd > 0 and dim % nd == nd - 1 and x.dtype in self._dtypes and x.size > 0

    def _launch(self, op, x, args, dtype=None):
        """``op`` over the rows of ``x``'s last dim, for ``x``'s dtype or ``dtype``."""
        d = x.shape[-1]
        self._launch_rows(op, x.dtype if dtype is None else dtype, x.size // d, d, args)

    def _launch_rows(self, op, dtype, rows, d, args, chunk=None):
        """``op`` for ``dtype`` over ``rows`` rows of ``d`` elements each; with ``chunk``, a
        block per (row, chunk of ``chunk`` elements) (grid y: the chunks)."""
        dtype = self._dtypes[dtype]
        mode = "warp" if d <= ROW_MAX and chunk is None else "block"
        k = self._kernels.get((op, dtype, mode))
        if k is None:
            name, code = source(op, dtype, mode)
            k = self._kernels[(op, dtype, mode)] = self._compiled(code, name,
                                                                   _MOST_THREADS[mode])
        if mode == "warp":
            grid, block = (-(-rows // _ROWS_PER_BLOCK),), (32, _ROWS_PER_BLOCK)
        elif chunk is None:
            grid, block = (rows,), (block_threads(d),)
        else:
            grid, block = (rows, -(-d // chunk)), (block_threads(chunk),)
        k(grid, block, tuple(args) + (self._i64(rows), self._i64(d)))

    def _chunks(self, c, d):
        """``(chunk, chunks)`` for the channel kernels over ``c`` channels of ``d``
        elements: the chunk length and their number; ``(None, None)`` for one block per
        channel."""
        parts = channel_chunks(c, d)
        if parts == 1:
            return None, None
        # grid y, ceil(d / chunk) in _launch_rows, is ``parts`` again, so no chunk is empty:
        # parts = ceil(d / c) for some c (channel_chunks), chunk = ceil(d / parts) <= c gives
        # ceil(d / chunk) >= parts, and chunk >= d / parts gives ceil(d / chunk) <= parts
        return -(-d // parts), parts

    def acc(self, dt):
        """The computation (and statistics) dtype of storage dtype ``dt``: float32 for
        float16 and bfloat16, else ``dt`` -- the rule of every fused kernel of this package
        (``polyten_acc``)."""
        return self._f32 if dt in self._half else dt

    def softmax(self, x, log: bool = False):
        """softmax (log_softmax) over the last dim: one launch, two for a few long rows
        (:func:`row_chunks`)."""
        x = self._cp.ascontiguousarray(x)
        y = self._cp.empty_like(x)
        op = "log_softmax" if log else "softmax"
        if not self._by_chunk(x, ("softmax_part", op + "_apply"), 2, (x,), (x, y)):
            self._launch(op, x, (x, y))
        return y

    def softmax_backward(self, g, y, log: bool = False):
        """``g`` of ``y``'s shape (made contiguous here: a broadcast gradient is common)."""
        y = self._cp.ascontiguousarray(y)
        g = self._cp.ascontiguousarray(g, dtype=y.dtype)
        gx = self._cp.empty_like(y)
        op = "log_softmax_backward" if log else "softmax_backward"
        if not self._by_chunk(y, (op + "_part", op + "_apply"), 1,
                              (g,) if log else (g, y), (g, y, gx)):
            self._launch(op, y, (g, y, gx))
        return gx

    def _by_chunk(self, x, ops, n_part, part_inputs, params) -> bool:
        """For a few long rows of ``x`` (:func:`row_chunks`): ``ops[0]`` on ``part_inputs``
        (``n_part`` partial results a chunk) then ``ops[1]`` on ``params``, both with the
        partials, and True; False (nothing launched) otherwise."""
        d = x.shape[-1]
        rows = x.size // d
        parts = row_chunks(rows, d)
        if parts == 1:
            return False
        chunk = -(-d // parts)  # ceil(d / chunk) == parts: see _chunks
        part = self._cp.empty(n_part * parts * rows, dtype=self.acc(x.dtype))
        split = (part, self._i64(chunk))
        self._launch_rows(ops[0], x.dtype, rows, d, part_inputs + split, chunk)
        self._launch_rows(ops[1], x.dtype, rows, d, params + split, chunk)
        return True

    def attention_softmax(self, x, keep, L: int, causal: bool):
        """Attention's ``(weights, dropped)`` from C-contiguous scores ``x`` (..., L, S), in
        place on ``x``; ``dropped = weights * keep`` (None when ``keep`` is None): one
        launch."""
        op = "attention_softmax" + ("_causal" if causal else "")
        if keep is None:
            self._launch(op, x, (x, x, self._i64(L)))
            return x, None
        dropped = self._cp.empty_like(x)
        self._launch(op + "_keep", x, (x, x, keep, dropped, self._i64(L)))
        return x, dropped

    def attention_softmax_backward(self, g, y, keep):
        """The scores' gradient from the dropped weights' C-contiguous gradient ``g`` (the
        weights' when ``keep`` is None), in place on ``g``: one launch."""
        if keep is None:
            self._launch("softmax_backward", y, (g, y, g))
        else:
            self._launch("softmax_backward_keep", y, (g, keep, y, g))
        return g

    @staticmethod
    def affine_fits(dtype, n: int, *params) -> bool:
        """Whether the (optional) affine parameters can be read as ``(n,)`` arrays of
        ``dtype``."""
        return all(p is None or (p.dtype == dtype and p.size == n and p.flags.c_contiguous)
                   for p in params)

    def layer_norm(self, x, weight, bias, eps: float, stat_shape=None):
        """``(y, mean, var)`` over the last dim of C-contiguous ``x`` (of any number of
        dims); the statistics shaped ``stat_shape`` (default ``(rows,)``)."""
        cp = self._cp
        if stat_shape is None:
            stat_shape = x.size // x.shape[-1]
        y = cp.empty_like(x)
        s = self.acc(x.dtype)
        mean, var = cp.empty(stat_shape, dtype=s), cp.empty(stat_shape, dtype=s)
        op = "layer_norm" + ("_w" if weight is not None else "") + (
            "_b" if bias is not None else "")
        self._launch(op, x, (x,) + tuple(p for p in (weight, bias) if p is not None)
                     + (y, mean, var, self._f64(eps)))
        return y, mean, var

    def layer_norm_backward(self, g, x, mean, var, weight, eps: float):
        """The input gradient of :meth:`layer_norm` (``mean`` / ``var`` one per row)."""
        cp = self._cp
        gx = cp.empty_like(x)
        op = "layer_norm_backward" + ("_w" if weight is not None else "")
        self._launch(op, x, (g, x) + ((weight,) if weight is not None else ())
                     + (mean, var, self._f64(eps), gx))
        return gx

    def cross_entropy(self, x, target, weight, ignore_index: int):
        """``(logp, loss, wt)`` of (M, C) rows ``x`` and (M,) int64 ``target``: the
        log-probabilities, and each row's weighted negative log-likelihood and target weight
        (0 for an ignored target), as ``fused_src``'s ``nll_pick``."""
        cp = self._cp
        m = x.shape[0]
        s = self.acc(x.dtype)
        logp = cp.empty_like(x)
        loss, wt = cp.empty(m, dtype=s), cp.empty(m, dtype=s)
        t = cp.ascontiguousarray(target)
        args = (x, t) + (() if weight is None else (weight,)) + (
            self._i64(ignore_index), logp, loss, wt)
        self._launch("cross_entropy" + ("" if weight is None else "_w"), x, args)
        return logp, loss, wt

    def loss_total(self, loss, wt, mean: bool, dtype):
        """The sum of the per-row ``loss`` (divided by the sum of ``wt`` when ``mean``) as a
        0-d array of ``dtype``: one launch."""
        out = self._cp.empty((), dtype=dtype)
        self._launch("loss_mean" if mean else "loss_sum", loss.reshape(1, -1),
                     (loss, wt, out), dtype=dtype)
        return out

    def divisor(self, t, w, n_cls: int, ignore: int, dtype):
        """The 'mean' divisor of a class-target loss over C-contiguous int64 targets ``t``:
        the summed weights ``w`` (C,) of ``dtype`` (1 each when None) of the targets in
        ``[0, n_cls)`` that are not ``ignore``, as a 0-d array of :meth:`acc`'s dtype: one
        launch (CuPy's ``ReductionKernel`` call costs several times a ``RawKernel``'s host
        time)."""
        out = self._cp.empty((), dtype=self.acc(dtype))
        self._launch_rows("nll_divisor" + ("" if w is None else "_w"), dtype, 1, t.size,
                          (t,) + (() if w is None else (w,))
                          + (self._i64(n_cls), self._i64(ignore), out))
        return out

    def batch_norm(self, x3, weight, bias, eps: float):
        """``(y, mean, var)`` of training-mode batch_norm over (N, C, L) C-contiguous ``x3``
        (statistics per channel, shaped ``(C,)``): one launch, a warp or block per channel;
        two for few channels of many elements (:meth:`_by_channel`)."""
        cp = self._cp
        c = x3.shape[1]
        s = self.acc(x3.dtype)
        y = cp.empty_like(x3)
        mean, var = cp.empty(c, dtype=s), cp.empty(c, dtype=s)
        affine = ("_w" if weight is not None else "") + ("_b" if bias is not None else "")
        params = (x3,) + tuple(p for p in (weight, bias) if p is not None) + (
            y, mean, var, self._f64(eps))
        self._by_channel(("batch_norm" + affine, "batch_norm_stats_part",
                          "batch_norm_apply" + affine), x3, params, (x3,))
        return y, mean, var

    def batch_norm_backward(self, g3, x3, mean, var, weight, eps: float):
        """``(gx, gw, gb)`` of :meth:`batch_norm` (``gw`` / ``gb`` in x's dtype: a weight
        takes this path only in that dtype): one launch, two for few channels of many
        elements."""
        cp = self._cp
        c = x3.shape[1]
        gx = cp.empty_like(x3)
        gw, gb = cp.empty(c, dtype=x3.dtype), cp.empty(c, dtype=x3.dtype)
        affine = "_w" if weight is not None else ""
        params = (g3, x3) + ((weight,) if weight is not None else ()) + (
            mean, var, self._f64(eps), gx, gw, gb)
        self._by_channel(("batch_norm_backward" + affine, "batch_norm_backward_part",
                          "batch_norm_backward_apply" + affine), x3, params, (g3, x3, mean))
        return gx, gw, gb

    def _by_channel(self, ops, x3, params, part_inputs):
        """batch_norm's launches over the channels of (N, C, L) ``x3``: ``ops[0]`` on
        ``params`` (one launch, a warp or block per channel) or, for few channels of many
        elements (:meth:`_chunks`), ``ops[1]`` on ``part_inputs`` (two partial results a
        chunk) then ``ops[2]`` on ``params``, both with the partials."""
        n, c, length = x3.shape
        d = n * length
        chunk, parts = self._chunks(c, d)
        if chunk is None:
            self._launch_rows(ops[0], x3.dtype, c, d, params + (self._i64(length),))
            return
        part = self._cp.empty(2 * parts * c, dtype=self.acc(x3.dtype))
        split = (part, self._i64(chunk), self._i64(length))
        self._launch_rows(ops[1], x3.dtype, c, d, part_inputs + split, chunk)
        self._launch_rows(ops[2], x3.dtype, c, d, params + split, chunk)

    def norm_total(self, partial, l2: bool, dtype):
        """The norm from a multi-tensor norm's 1-D ``partial`` of :meth:`acc`'s dtype for
        ``dtype`` (sums of squares when ``l2``, then the square root; else magnitudes, the
        largest, NaN first) as a 0-d array of ``dtype``, rounded once: one launch."""
        out = self._cp.empty((), dtype=dtype)
        self._launch_rows("norm_total_l2" if l2 else "norm_total_inf", dtype, 1,
                          partial.size, (partial, out))
        return out

    def channel_sum(self, x3):
        """The sum of each channel of C-contiguous ``x3`` (N, C, L), shaped ``(C,)`` in its
        dtype (float16 / bfloat16 summed in float32 and rounded once): one launch, a warp or
        block per channel; for few channels of many elements (:func:`channel_chunks`) a block
        per chunk of a channel, then the column kernels' finish adds the chunks' sums."""
        n, c, length = x3.shape
        out = self._cp.empty(c, dtype=x3.dtype)
        if c == 0:
            return out
        d = n * length
        chunk, parts = self._chunks(c, d)
        if chunk is None:
            self._launch_rows("channel_sum", x3.dtype, c, d, (x3, out, self._i64(length)))
            return out
        part = self._cp.empty(parts * c, dtype=self.acc(x3.dtype))
        self._launch_rows("channel_sum_part", x3.dtype, c, d,
                          (x3, part, self._i64(chunk), self._i64(length)), chunk)
        self._finish(part, (out, out), parts, c, x3.dtype)
        return out

    def column_sum(self, x2):
        """The sum of each column of C-contiguous ``x2`` (m, d), shaped ``(d,)`` in its
        dtype (float16 / bfloat16 summed in float32 and rounded once), the partials added in
        a fixed order: one launch, two for a tall array (:func:`column_chunks`)."""
        m, d = x2.shape
        out = self._cp.empty(d, dtype=x2.dtype)
        if d == 0:
            return out
        self._columns("column_sum", x2.dtype, m, d, (x2, out), (out, out))
        return out

    def _columns(self, kind, dt, m, d, args, outs):
        """Launch the column kernel ``kind`` on ``args`` over (m, d) in row chunks, then --
        with more than one -- the finish kernel into ``outs`` (one or two (d,) arrays)."""
        parts = column_chunks(m, d)
        chunk = -(-m // parts)
        i64 = self._i64
        if parts == 1:  # the kernel writes ``outs`` itself; ``part`` is not read
            part = outs[0]
        else:
            n_out = 1 if outs[0] is outs[1] else 2
            part = self._cp.empty(n_out * parts * d, dtype=self.acc(dt))
        self._column_kernel(kind, dt)((-(-d // _COLS), parts), (_COLS, _COL_ROWS),
                                      args + (part, i64(chunk), i64(m), i64(d)))
        if parts > 1:
            self._finish(part, outs, parts, d, dt)

    def _finish(self, part, outs, parts, d, dt):
        """``outs`` (one or two (d,) arrays of ``dt``, the same array twice for one): the
        sums over ``parts`` of C-contiguous ``part`` ((outputs, parts, d) in :meth:`acc`'s
        dtype), in order, rounded once: one launch."""
        self._column_kernel("column_finish", dt)(
            (-(-d // _FINISH_THREADS), 1 if outs[0] is outs[1] else 2), (_FINISH_THREADS,),
            (part,) + tuple(outs) + (self._i64(parts), self._i64(d)))

    def sum_parts(self, part, dt):
        """The sum over the first dim of C-contiguous ``part`` ((parts, ...) in
        :meth:`acc`'s dtype for ``dt``), shaped as one part, in ``dt``, rounded once: one
        launch (split-K products' partials)."""
        out = self._cp.empty(part.shape[1:], dtype=dt)
        if out.size:
            self._finish(part, (out, out), part.shape[0], out.size, dt)
        return out

    def _column_kernel(self, kind: str, dt):
        """The column kernel ``kind`` (:data:`_COLUMN_SOURCES`) for dtype ``dt``, compiled on
        first use."""
        dtype = self._dtypes[dt]
        k = self._kernels.get((kind, dtype, ""))
        if k is None:
            name, code = _column_source(kind, dtype)
            threads = _FINISH_THREADS if kind == "column_finish" else _COLS * _COL_ROWS
            k = self._kernels[(kind, dtype, "")] = self._compiled(code, name, threads)
        return k

    def _compiled(self, code: str, name: str, threads: int):
        """The RawKernel ``name`` of ``code``, launched with up to ``threads`` threads a
        block: as the compiler builds it, or -- when the driver says a block that size
        cannot run (too many registers a thread) -- rebuilt with ``__launch_bounds__``,
        which makes the compiler fit them (spilling if it must) instead of the launch
        failing."""
        k = self._cp.RawKernel(code, name)
        if k.max_threads_per_block < threads:
            k = self._cp.RawKernel(bounded(code, name, threads), name)
        return k

    def layer_norm_param_grads(self, g2, x2, mean, var, eps: float):
        """``(gw, gb)`` of :meth:`layer_norm` over the rows of C-contiguous ``x2``'s last
        dim (``d`` of them), shaped ``(d,)`` and in x's dtype: one launch, two for many rows
        (:func:`column_chunks`)."""
        cp = self._cp
        d = x2.shape[-1]
        m = x2.size // d
        gw, gb = cp.empty(d, dtype=x2.dtype), cp.empty(d, dtype=x2.dtype)
        self._columns("layer_norm_param_grads", x2.dtype, m, d,
                      (g2, x2, mean, var, self._f64(eps), gw, gb), (gw, gb))
        return gw, gb
