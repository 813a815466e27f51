"""``ctc_alpha`` (CTC's recursions) as two block-per-sample ``RawKernel``s.

The shared kernel (``polyten_cpu.kernels.ctc``, written on ``xp``) takes about ten array
operations per frame, forward, and thirty for the backward: for T frames several thousand
launches.  Here one block per sample walks the frames with its threads over the extended
labels and a ``__syncthreads`` per frame, as PyTorch's CUDA CTC does: the forward is one
launch (alpha for every frame into a (T + 1, N, L) buffer, the negative log-likelihood at the
end) and the backward one more (beta, double-buffered, and the gradient
``-g exp(alpha + beta - lp + nll)`` frame by frame; the forward runs again first, as the op
keeps no alpha).  Log-space sums are taken in the input's type (float32 or float64; the core
hands float16 / bfloat16 over as float32).
"""

from __future__ import annotations

THREADS = 128
_C = {"float32": "float", "float64": "double"}

SRC = r"""
__device__ __forceinline__ T polyten_lse3(T a, T b, T c, T ninf) {
  T m = a > b ? a : b;
  m = m > c ? m : c;
  if (m == ninf) return ninf;  // all three -inf: no -inf - -inf
  return m + log(exp(a - m) + exp(b - m) + exp(c - m));
}

// alpha: (T + 1, N, L); alpha[0] is a virtual start in s = 0; past a sample's input length its
// alphas repeat the last one; nll: (N,)
extern "C" __global__ void polyten_ctc_alpha_K(const T* lp, const bool* skip,
    const long long* in_len, const long long* tgt_len, T* alpha, T* nll, long long Tn,
    long long N, long long L, double ninf_d) {
  const T ninf = (T)ninf_d;
  const long long n = blockIdx.x;
  const long long len = in_len[n];
  for (long long s = threadIdx.x; s < L; s += blockDim.x)
    alpha[n * L + s] = s == 0 ? (T)0 : ninf;
  for (long long t = 0; t < Tn; ++t) {
    __syncthreads();  // frame t's alphas are all written
    const T* prev = alpha + (t * N + n) * L;
    T* cur = alpha + ((t + 1) * N + n) * L;
    const T* x = lp + (t * N + n) * L;
    for (long long s = threadIdx.x; s < L; s += blockDim.x) {
      if (t < len) {
        const T b = s >= 1 ? prev[s - 1] : ninf;
        const T c = (s >= 2 && skip[n * L + s]) ? prev[s - 2] : ninf;
        cur[s] = polyten_lse3(prev[s], b, c, ninf) + x[s];
      } else {
        cur[s] = prev[s];
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const T* last = alpha + (Tn * N + n) * L;
    const long long S = tgt_len[n];
    const T a = last[2 * S];
    const T b = S > 0 ? last[2 * S - 1] : ninf;
    nll[n] = -polyten_lse3(a, b, ninf, ninf);
  }
}

// gx (T, N, L) = -g exp(alpha + beta - lp + nll) on the sample's frames, 0 elsewhere and where
// no alignment exists; beta: (2, N, L) scratch, the frames alternating
extern "C" __global__ void polyten_ctc_beta_K(const T* lp, const bool* skip,
    const long long* in_len, const long long* tgt_len, const T* alpha, const T* nll,
    const T* g, T* beta, T* gx, long long Tn, long long N, long long L, double ninf_d) {
  const T ninf = (T)ninf_d;
  const long long n = blockIdx.x;
  const long long len = in_len[n];
  const long long S = tgt_len[n];
  const T loss = nll[n];
  const bool possible = !isinf((double)loss);
  for (long long t = Tn - 1; t >= 0; --t) {
    const T* next = beta + ((t + 1) % 2 * N + n) * L;
    T* cur = beta + (t % 2 * N + n) * L;
    const T* x = lp + (t * N + n) * L;
    const T* a = alpha + ((t + 1) * N + n) * L;
    T* out = gx + (t * N + n) * L;
    for (long long s = threadIdx.x; s < L; s += blockDim.x) {
      T v = ninf;
      if (t == len - 1) {
        if (s == 2 * S || (S > 0 && s == 2 * S - 1)) v = x[s];
      } else if (t < len - 1) {
        const T b = s + 1 < L ? next[s + 1] : ninf;
        const T c = (s + 2 < L && skip[n * L + s + 2]) ? next[s + 2] : ninf;
        v = polyten_lse3(next[s], b, c, ninf) + x[s];
      }
      cur[s] = v;
      // a class of probability 0 (x = -inf) or no alignment: the product is 0, not NaN
      out[s] = (possible && v != ninf && x[s] != ninf)
          ? -g[n] * exp(a[s] + v - x[s] + loss) : (T)0;
    }
    __syncthreads();  // frame t's betas are all written before frame t - 1 reads them
  }
}
"""


def source(dtype: str) -> tuple:
    """``(forward name, backward name, CUDA C source)`` for float32 / float64."""
    fwd, bwd = f"polyten_ctc_alpha_{dtype}", f"polyten_ctc_beta_{dtype}"
    return fwd, bwd, (f"typedef {_C[dtype]} T;\n"
                      + SRC.replace("polyten_ctc_alpha_K", fwd).replace("polyten_ctc_beta_K",
                                                                         bwd))


def build(cp, shared_forward, shared_backward):
    """``(ctc_alpha, its backward kernel)`` for the op table: the two kernels above for
    float32 / float64 inputs, the shared ones otherwise."""
    kernels: dict = {}
    i64 = cp.int64

    def get(dtype):
        k = kernels.get(dtype)
        if k is None:
            fwd, bwd, code = source(dtype)
            k = kernels[dtype] = (cp.RawKernel(code, fwd), cp.RawKernel(code, bwd))
        return k

    def forward(x, skip, input_lengths, target_lengths):
        Tn, N, L = x.shape
        x = cp.ascontiguousarray(x)
        skip = cp.ascontiguousarray(skip)
        il = cp.asarray(input_lengths, dtype=i64)
        tl = cp.asarray(target_lengths, dtype=i64)
        alpha = cp.empty((Tn + 1, N, L), dtype=x.dtype)
        nll = cp.empty((N,), dtype=x.dtype)
        if N:
            get(x.dtype.name)[0]((N,), (THREADS,), (x, skip, il, tl, alpha, nll, i64(Tn),
                                                    i64(N), i64(L), -float("inf")))
        return x, skip, il, tl, alpha, nll

    def ctc_alpha(x, skip, input_lengths, target_lengths):
        if x.dtype.name not in _C:
            return shared_forward(x, skip, input_lengths, target_lengths)
        return forward(x, skip, input_lengths, target_lengths)[-1]

    def ctc_alpha_bw(grads, inputs, outputs, params):
        x = inputs[0]
        if x.dtype.name not in _C:
            return shared_backward(grads, inputs, outputs, params)
        skip = params["skip"]
        skip = getattr(skip, "_data", skip)
        x, skip, il, tl, alpha, nll = forward(x, skip, params["input_lengths"],
                                              params["target_lengths"])
        Tn, N, L = x.shape
        g = cp.ascontiguousarray(grads[0].astype(x.dtype, copy=False))
        gx = cp.empty_like(x)
        if N and Tn:
            beta = cp.empty((2, N, L), dtype=x.dtype)
            get(x.dtype.name)[1]((N,), (THREADS,), (x, skip, il, tl, alpha, nll, g, beta, gx,
                                                    i64(Tn), i64(N), i64(L), -float("inf")))
        return (gx,)

    return ctc_alpha, ctc_alpha_bw
