"""The cuda backend's random generator: counter-based Philox4x32-10, one kernel per draw.

Why not CuPy's generators: their state (curand's XORWOW / MRG / Philox states) lives in device
memory with no public way to save and restore it, so ``polyten.cuda.get_rng_state`` /
``set_rng_state`` (checkpoints that resume the same random stream, ``polyten.random.fork_rng``)
could not exist.  A counter-based generator's stream is fixed by two host integers, as
PyTorch's CUDA generator's: the *key* (from the seed) and the *offset*, the number of draws
made so far (the saved state adds the seed, for ``initial_seed``).  Reading or restoring it
never touches the GPU.

Each draw is one ``ElementwiseKernel`` launch.  Element ``i`` of draw number ``offset`` takes
the Philox block of counter ``(lo32(i), hi32(i), lo32(offset), hi32(offset))`` under the key
``(lo32(key), hi32(key))``: 128 random bits, from which it makes its value.  Every draw
advances the offset by one, so no two elements of any two draws share a counter.  Rejection
sampling (unbiased integers) takes further blocks by setting the top eight bits of the
counter's second word to the attempt number, which element indices below 2**56 leave free.

The kernel sources are plain data (no CuPy import).  The tests compile them with the host C++
compiler (the CuPy stand-in) and check every value against Random123's known-answer vectors
and a pure-Python Philox, compile them with nvcc, and on a GPU check NVRTC's build against the
same reference.

Values:

- uniform float32: the top 24 bits of one word times 2**-24; float64: 53 bits of two words
  times 2**-53.  Both lie in [0, 1).
- normal: Box-Muller on the block's two uniforms in (0, 1] and [0, 1) (cosine branch), in the
  sample's precision.
- exponential: ``-log(u)`` with ``u`` in (0, 1].
- integers in ``[low, low + range)``: Lemire's multiply-and-reject on 64 random bits, two
  candidates per block, so every value is equally likely (NumPy's method).
- dropout masks: ``scale`` where the uniform is ``>= p``, else 0, in one pass; dropout
  itself writes that mask and ``x`` times it in the same pass.
"""

from __future__ import annotations

import operator

PHILOX_SRC = r"""
struct polyten_u4 { unsigned int x, y, z, w; };

// Philox4x32-10 (Salmon et al., SC'11): ten rounds of two 32x32 -> 64 bit products
__device__ __forceinline__ polyten_u4 polyten_philox(unsigned int c0, unsigned int c1,
                                                     unsigned int c2, unsigned int c3,
                                                     unsigned int k0, unsigned int k1) {
  for (int r = 0; r < 10; ++r) {
    if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    unsigned long long p0 = (unsigned long long)0xD2511F53u * c0;
    unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c2;
    unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
    unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
    c1 = (unsigned int)p1;
    c3 = (unsigned int)p0;
    c0 = n0;
    c2 = n2;
  }
  polyten_u4 out = {c0, c1, c2, c3};
  return out;
}

// the block of element i (attempt a) of the draw with offset (o0, o1)
__device__ __forceinline__ polyten_u4 polyten_block(unsigned long long i, unsigned int a,
                                                    unsigned int o0, unsigned int o1,
                                                    unsigned int k0, unsigned int k1) {
  return polyten_philox((unsigned int)i, (unsigned int)(i >> 32) | (a << 24), o0, o1, k0, k1);
}

__device__ __forceinline__ float polyten_unit_f(unsigned int a) {       // [0, 1)
  return (float)(a >> 8) * 5.9604644775390625e-08f;
}
__device__ __forceinline__ double polyten_unit_d(unsigned int a, unsigned int b) {  // [0, 1)
  return (double)((((unsigned long long)a << 32) | b) >> 11) * 1.1102230246251565e-16;
}

template <typename T> struct polyten_sample;
template <> struct polyten_sample<float> {
  static __device__ __forceinline__ float uniform(polyten_u4 r) { return polyten_unit_f(r.x); }
  static __device__ __forceinline__ float normal(polyten_u4 r) {
    float u1 = polyten_unit_f(r.x) + 5.9604644775390625e-08f;           // (0, 1]
    float u2 = polyten_unit_f(r.y);
    return sqrt(-2.0f * log(u1)) * cos(6.2831853071795865f * u2);
  }
  static __device__ __forceinline__ float exponential(polyten_u4 r) {
    return -log(polyten_unit_f(r.x) + 5.9604644775390625e-08f);
  }
};
template <> struct polyten_sample<double> {
  static __device__ __forceinline__ double uniform(polyten_u4 r) {
    return polyten_unit_d(r.x, r.y);
  }
  static __device__ __forceinline__ double normal(polyten_u4 r) {
    double u1 = polyten_unit_d(r.x, r.y) + 1.1102230246251565e-16;        // (0, 1]
    double u2 = polyten_unit_d(r.z, r.w);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586477 * u2);
  }
  static __device__ __forceinline__ double exponential(polyten_u4 r) {
    return -log(polyten_unit_d(r.x, r.y) + 1.1102230246251565e-16);
  }
};

// the type a sample of storage type T is computed in: float for float16 and float32
template <typename T> struct polyten_rand_acc { typedef float type; };
template <> struct polyten_rand_acc<double> { typedef double type; };

// the high 64 bits of a * b, and the low ones in *lo, from 32-bit halves (the same code on
// the GPU and on the host)
__device__ __forceinline__ unsigned long long polyten_mul128(unsigned long long a,
                                                             unsigned long long b,
                                                             unsigned long long* lo) {
  unsigned long long al = a & 0xFFFFFFFFull, ah = a >> 32, bl = b & 0xFFFFFFFFull, bh = b >> 32;
  unsigned long long p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
  unsigned long long mid = (p0 >> 32) + (p1 & 0xFFFFFFFFull) + (p2 & 0xFFFFFFFFull);
  *lo = (mid << 32) | (p0 & 0xFFFFFFFFull);
  return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}
"""

_KEY = "unsigned int k0, unsigned int k1, unsigned int o0, unsigned int o1"
_KEY_PARAMS = "uint32 k0, uint32 k1, uint32 o0, uint32 o1"
_BLOCK = "polyten_u4 r = polyten_block((unsigned long long)i, 0u, o0, o1, k0, k1);\n"
# dropout's keep mask of element i, of storage type T: scale where a uniform in [0, 1) is >= p,
# else 0 (float16 / bfloat16 draw and compare in float32, as PyTorch's fused dropout)
_KEEP = (_BLOCK + "typedef polyten_rand_acc<T>::type U;\n"
         "U u = polyten_sample<U>::uniform(r);\n"
         "const T keep = (T)(u >= (U)p ? (U)scale : U(0));\n")

# name -> (in_params, out_params, operation): cupy.ElementwiseKernel's arguments
KERNELS = {
    "uniform": (_KEY_PARAMS, "T y", _BLOCK + "y = polyten_sample<T>::uniform(r);\n"),
    "normal": (_KEY_PARAMS, "T y", _BLOCK + "y = polyten_sample<T>::normal(r);\n"),
    "exponential": (_KEY_PARAMS, "T y", _BLOCK + "y = polyten_sample<T>::exponential(r);\n"),
    # dropout's scaled keep mask (one pass instead of uniform, compare, cast and scale)
    "dropout": (_KEY_PARAMS + ", float64 p, float64 scale", "T y", _KEEP + "y = keep;\n"),
    # dropout itself: the same mask and x times it, in one pass (PyTorch's fused dropout)
    # instead of the mask's launch and the product's; the product as the storage type's
    # multiply rounds it (so y == x * m exactly)
    "dropout_apply": (_KEY_PARAMS + ", T x, float64 p, float64 scale", "T y, T m",
                      _KEEP + "m = keep;\ny = (T)((U)x * (U)keep);\n"),
    # low + a uniform integer below range (r0 + 2**32 r1; 0 stands for 2**64)
    "integers": (
        _KEY_PARAMS + ", int64 low, uint32 r0, uint32 r1", "int64 y",
        "unsigned long long range = ((unsigned long long)r1 << 32) | r0;\n"
        "unsigned long long v = 0;\n"
        "for (unsigned int a = 0; a < 256u; ++a) {\n"
        "  polyten_u4 r = polyten_block((unsigned long long)i, a, o0, o1, k0, k1);\n"
        "  unsigned long long c[2] = {((unsigned long long)r.x << 32) | r.y,\n"
        "                             ((unsigned long long)r.z << 32) | r.w};\n"
        "  bool done = false;\n"
        "  for (int j = 0; j < 2 && !done; ++j) {\n"
        "    if (range == 0) { v = c[j]; done = true; break; }\n"
        "    unsigned long long lo;\n"
        "    unsigned long long hi = polyten_mul128(c[j], range, &lo);\n"
        "    // lo < 2**64 mod range: this candidate's residue class is over-represented\n"
        "    if (lo < range && lo < (0ull - range) % range) continue;\n"
        "    v = hi;\n"
        "    done = true;\n"
        "  }\n"
        "  if (done) break;\n"
        "}\n"
        "y = (long long)((unsigned long long)low + v);\n"),
}

_TWO64 = 2 ** 64
_MASK32 = 0xFFFFFFFF
_MAX_ELEMENTS = 2 ** 56   # the top eight bits of the counter's second word count attempts
STATE_BYTES = 24          # key, offset, seed: three little-endian uint64


def compile_kernels(cp) -> dict:
    """``cupy.ElementwiseKernel`` objects of :data:`KERNELS` (compiled at their first call)."""
    return {name: cp.ElementwiseKernel(ins, outs, op, f"polyten_philox_{name}",
                                       preamble=PHILOX_SRC)
            for name, (ins, outs, op) in KERNELS.items()}


class PhiloxGenerator:
    """NumPy's ``Generator`` methods that polyten's random kernels use, drawing CuPy arrays
    of the current device from Philox4x32-10.

    Parameters
    ----------
    cp : module
        CuPy.
    kernels : dict
        :func:`compile_kernels`'s result.
    key : int
        The Philox key, in ``[0, 2**64)``.
    seed : int
        The seed reported by ``initial_seed`` (the key is derived from it per device).
    offset : int
        Draws made so far.
    """

    __slots__ = ("_cp", "_k", "key", "seed", "offset")

    def __init__(self, cp, kernels, key: int, seed: int, offset: int = 0):
        self._cp, self._k = cp, kernels
        self.key, self.seed, self.offset = key % _TWO64, seed % _TWO64, offset % _TWO64

    # --- state: three host integers -------------------------------------------------------
    def state_bytes(self) -> bytes:
        return b"".join(v.to_bytes(8, "little") for v in (self.key, self.offset, self.seed))

    @classmethod
    def from_bytes(cls, cp, kernels, raw: bytes) -> "PhiloxGenerator":
        if len(raw) != STATE_BYTES:
            raise ValueError(f"expected the {STATE_BYTES}-byte state of the cuda backend's "
                             f"Philox generator (key, offset, seed), got {len(raw)} bytes")
        key, offset, seed = (int.from_bytes(raw[j:j + 8], "little") for j in (0, 8, 16))
        return cls(cp, kernels, key, seed, offset)

    def _launch(self, name, out, *extra):
        if out.size >= _MAX_ELEMENTS:
            raise ValueError(f"random draw of {out.size} elements: the Philox generator "
                             f"numbers elements below 2**56")
        o = self.offset
        if out.size:
            k, u32 = self.key, self._cp.uint32  # NumPy scalars of the parameters' exact type
            self._k[name](u32(k & _MASK32), u32(k >> 32), u32(o & _MASK32), u32(o >> 32),
                          *extra, out)
        # after the launch: a launch CuPy refuses (and polyten retries) draws nothing
        self.offset = (o + 1) % _TWO64
        return out

    def _floating(self, name, size, dtype):
        dt = self._cp.dtype(dtype)
        if dt.name not in ("float32", "float64"):
            raise TypeError(f"PhiloxGenerator: {name} draws float32 or float64, not {dt.name}")
        return self._launch(name, self._cp.empty(_shape(size), dtype=dt))

    def random(self, size=None, dtype="float64"):
        """Uniform samples in [0, 1)."""
        return self._floating("uniform", size, dtype)

    def standard_normal(self, size=None, dtype="float64"):
        return self._floating("normal", size, dtype)

    def standard_exponential(self, size=None, dtype="float64"):
        return self._floating("exponential", size, dtype)

    def dropout_mask(self, size, p: float, dtype):
        """``1 / (1 - p)`` where a uniform sample is ``>= p``, else 0, of ``dtype`` (the op
        table's ``dropout_mask``): one launch.  float16 draws and compares in float32 as
        PyTorch's fused dropout; bfloat16, which the CUDA source does not cover, is computed in
        float32 and rounded."""
        dt = self._cp.dtype(dtype)
        work = dt if dt.name in ("float16", "float32", "float64") else self._cp.dtype("float32")
        out = self._launch("dropout", self._cp.empty(_shape(size), dtype=work), float(p),
                           1.0 / (1.0 - p))
        return out if work == dt else out.astype(dt)

    def dropout(self, x, p: float):
        """``(x * mask, mask)``, ``mask`` what :meth:`dropout_mask` of ``x``'s shape and
        dtype would draw (the op table's ``dropout``): one launch, for float16, bfloat16,
        float32 and float64 (the mask's uniform in float32, float64 for float64)."""
        cp = self._cp
        if x.dtype.kind not in "fV":  # bfloat16's kind is "V"
            raise TypeError(f"dropout: expected a floating array, got {x.dtype}")
        y = cp.empty(x.shape, dtype=x.dtype)  # C order: element i takes counter i
        m = cp.empty(x.shape, dtype=x.dtype)
        self._launch("dropout_apply", m, x, float(p), 1.0 / (1.0 - p), y)
        return y, m

    def integers(self, low, high=None, size=None, dtype="int64", endpoint=False):
        """Uniform integers in ``[low, high)`` (``[low, high]`` with ``endpoint``), as
        NumPy's ``Generator.integers``."""
        if high is None:
            low, high = 0, low
        low, high = operator.index(low), operator.index(high)
        span = high - low + (1 if endpoint else 0)
        if span <= 0:
            raise ValueError(f"integers: low >= high ({low} >= {high}"
                             f"{' + 1' if endpoint else ''})")
        if not -2 ** 63 <= low <= low + span - 1 < 2 ** 63:
            raise ValueError(f"integers: [{low}, {high}{']' if endpoint else ')'} does not fit "
                             f"in int64")
        span %= _TWO64  # 2**64 -> 0: every 64-bit value
        u32 = self._cp.uint32
        out = self._launch("integers", self._cp.empty(_shape(size), dtype="int64"),
                           self._cp.int64(low), u32(span & _MASK32), u32(span >> 32))
        return out if self._cp.dtype(dtype).name == "int64" else out.astype(dtype)


def _shape(size):
    if size is None:
        return ()
    if isinstance(size, int):
        return (size,)
    return tuple(size)
