"""Multi-tensor optimizer steps: one CUDA launch updates up to ``slots`` parameters.

A fused ``ElementwiseKernel`` per parameter (``fused_src``'s ``*_step`` sources) reads and
writes each array once, but each launch costs CuPy's host overhead (argument parsing, kernel
lookup: tens of microseconds), so a model with 60 parameter tensors spends milliseconds per
step launching.  PyTorch's CUDA optimizers avoid this with ``foreach`` / ``fused`` kernels
over lists of tensors; these are polyten's.

Each kernel here is generated from the *same* per-element source as the per-parameter kernel
(one place for each formula), so the two paths do the same arithmetic (NVRTC contracts the
two kernels' multiply-adds differently: on an H200, up to 10 ulp apart on a quarter of the
float32 elements):

* the tensors' device pointers and sizes travel as kernel parameters (``slots`` groups of
  ``n_j, a_j, b_j, ...``), and ``blockIdx.y`` picks the group through a ``switch``: nothing is
  copied to the device before the launch, so the step never waits for the GPU (a pointer
  table in device memory would need a host-to-device copy, which from pageable memory
  synchronises the stream);
* ``blockIdx.x`` with a grid-stride loop walks the elements of its tensor; blocks past the
  end of a short tensor exit at once;
* the scalars of the step (learning rate, bias corrections, ...) are kernel parameters shared
  by the tensors of one launch, so tensors are grouped by equal scalars (the common case, every
  parameter at the same step count, is one group).

Only contiguous float16 / bfloat16 / float32 / float64 tensors of one device and dtype go
through these kernels (the half types computed in float32, as the per-parameter kernels,
each stored value rounded once); the rest (non-contiguous
views, mixed dtypes) take the per-parameter kernel, with the same arithmetic.  ``source`` is
pure (no CuPy) so the tests compile the generated code with ``nvcc`` and run it on the host.
:data:`PRELUDE` (the type names, CuPy's ``float16`` through PTX) serves every ``RawKernel``
source of this package.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

from polyten_cpu.kernels._util import bfloat16_dtype

from .fused_src import Elementwise, params, split_prologue

# Kernel parameter space is 4 KiB on every CUDA version and architecture we support; the
# slot counts keep a launch's parameters under it (with room for the shared scalars).
_PARAM_BYTES = 4096
_SHARED_BYTES = 256
_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # unused slots cost argument passing: keep few
_BLOCK = 256
_MAX_BLOCKS_X = 1024  # per tensor; the grid-stride loop covers longer ones
# The storage dtypes of every RawKernel of this package, and their C types (PRELUDE's); the
# HALF ones are computed in float32 (polyten_acc) and rounded once.  The fused
# ElementwiseKernels (fused.py, norm.py) take the same dtypes.
C_TYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float", "float64": "double"}
HALF = frozenset(("float16", "bfloat16"))
# CuPy passes a kernel argument by its NumPy type: these are the C types of the scalars
_SCALAR_C = {"float64": "double", "float32": "float", "int64": "long long", "int32": "int",
             "bool": "bool"}
_C_NUMPY = {c: n for n, c in _SCALAR_C.items()}

# ``float16``: a half stored in 16 bits, converted to and from float with the same rounding
# as CuPy's own float16 (round to nearest even), through PTX so that no header is needed
# (NVRTC finds cuda_fp16.h only on some installations).  ``bfloat16``: the top 16 bits of a
# float32, rounded to nearest even with integer operations (any architecture; NaN stays a
# quiet NaN), as ml_dtypes and cuda_bf16.h round.  Host compilers (the tests' emulation)
# bring their own definitions.
PRELUDE = r"""
typedef float float32;
typedef double float64;
typedef long long int64;
typedef int int32;
#ifdef __CUDACC__
struct float16 {
  unsigned short bits;
  __device__ float16() {}
  __device__ explicit float16(float f) { asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(f)); }
  __device__ explicit operator float() const {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits));
    return f;
  }
};
struct bfloat16 {
  unsigned short bits;
  __device__ bfloat16() {}
  __device__ explicit bfloat16(float f) {
    const unsigned u = __float_as_uint(f);
    const unsigned nearest_even = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    bits = (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : nearest_even);
  }
  __device__ explicit operator float() const { return __uint_as_float((unsigned)bits << 16); }
};
#endif
template <typename X> struct polyten_acc { typedef X type; };
template <> struct polyten_acc<float16> { typedef float type; };
template <> struct polyten_acc<bfloat16> { typedef float type; };
"""


class GridStrideKernels:
    """RawKernels of one array module built from ``source(*key) -> (name, code)``, compiled on
    first use per key, and their launch over ``total`` elements by a grid-stride loop (256
    threads a block, at most 65536 blocks: the loop covers the rest).  The conv and
    deterministic-scatter kernels share it."""

    BLOCK = _BLOCK
    MAX_BLOCKS = 1 << 16

    def __init__(self, cp, source):
        self.cp, self.source, self.cache = cp, source, {}

    def get(self, *key):
        k = self.cache.get(key)
        if k is None:
            name, code = self.source(*key)
            k = self.cache[key] = self.cp.RawKernel(code, name)
        return k

    def launch(self, k, total, args):
        k((min(self.MAX_BLOCKS, -(-total // self.BLOCK)),), (self.BLOCK,), args)


def dtype_names(cp, names) -> dict:
    """``{cp dtype: name}`` of the dtype names a kernel family is generated for (bfloat16
    where this CuPy stores it)."""
    out = {}
    for d in names:
        dt = bfloat16_dtype(cp) if d == "bfloat16" else cp.dtype(d)
        if dt is not None:
            out[dt] = d
    return out


def split(spec: Elementwise) -> Tuple[list, list, list]:
    """The element arrays of a source (its non-raw ``T`` parameters: one per tensor, in
    argument order, with whether each is an output), its per-tensor raw parameters (those in
    ``spec.each``: a pointer per tensor, with its C type) and its shared parameters (scalars
    and the other raw arrays: one value per launch)."""
    ins, outs = params(spec.in_params), params(spec.out_params)
    arrays, each, shared = [], [], []
    for pos, (ty, name, raw) in enumerate(ins + outs):
        if ty == "T" and not raw:
            arrays.append((pos, name, pos >= len(ins)))
        elif raw and name in spec.each:
            each.append((pos, _SCALAR_C.get(ty, ty), name))
        else:
            shared.append((pos, ty, name, raw))
    return arrays, each, shared


def max_slots(spec: Elementwise) -> int:
    arrays, each, _ = split(spec)
    per_slot = 8 * (1 + len(arrays) + len(each))
    return min(_BUCKETS[-1], (_PARAM_BYTES - _SHARED_BYTES) // per_slot)


def kernel_name(spec: Elementwise, dtype: str, slots: int) -> str:
    return f"polyten_mt_{spec.name.removeprefix('polyten_')}_{dtype}_{slots}"


def source(spec: Elementwise, dtype: str, slots: int) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` of the multi-tensor kernel of ``spec`` for ``dtype``
    (``float32`` / ``float64``) with ``slots`` tensor groups.  The source's prologue runs once
    per thread, after the thread's tensor is chosen."""
    arrays, each, shared = split(spec)
    name = kernel_name(spec, dtype, slots)
    sig = []
    for j in range(slots):
        sig.append(f"long long _n{j}")
        sig.extend(f"T* _{a}{j}" for _, a, _ in arrays)
        sig.extend(f"{ct}* _{e}{j}" for _, ct, e in each)
    for _, ty, pname, raw in shared:
        ct = _SCALAR_C.get(ty, ty)
        sig.append(f"{ct}* {pname}" if raw else f"{ct} {pname}")
    picks = [(f"_{a}", f"_{a}") for _, a, _ in arrays] + [(e, f"_{e}") for _, _, e in each]
    cases = "".join(
        f"    case {j}: _n = _n{j}; " + " ".join(f"{v} = {src}{j};" for v, src in picks)
        + " break;\n" for j in range(slots))
    elems = "\n".join(f"    T& {a} = _{a}[_i];" if out else f"    const T {a} = _{a}[_i];"
                      for _, a, out in arrays)
    head, body = split_prologue(spec)
    code = (PRELUDE + f"typedef {C_TYPES[dtype]} T;\n"
            f'extern "C" __global__ void {name}({", ".join(sig)}) {{\n'
            "  long long _n;\n"
            + "".join(f"  T* _{a};\n" for _, a, _ in arrays)
            + "".join(f"  {ct}* {e};\n" for _, ct, e in each) +
            "  switch (blockIdx.y) {\n" + cases + "    default: return;\n  }\n"
            + head +
            "  for (long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x; _i < _n;\n"
            "       _i += (long long)gridDim.x * blockDim.x) {\n"
            + elems + "\n    {\n" + body + "    }\n  }\n}\n")
    return name, code


def device_id(a):
    return getattr(getattr(a, "device", None), "id", None)


def on_device(cp, dev, fn):
    """``fn()`` with GPU ``dev`` current (multi-GPU: launch where the arrays live); ``None``
    or the current device runs it as it is."""
    if dev is None or dev == cp.cuda.runtime.getDevice():
        return fn()
    with cp.cuda.Device(dev):
        return fn()


class MultiTensorStep:
    """Runs one step source over many tensors: ``step(calls)``, each call the positional
    arguments of the per-parameter ``ElementwiseKernel`` (``fallback``) for one parameter."""

    def __init__(self, cp, spec: Elementwise, fallback: Callable):
        self._cp, self._spec, self._fallback = cp, spec, fallback
        self._arrays, each, self._shared = split(spec)
        self._array_pos = tuple(pos for pos, _, _ in self._arrays)
        # per-tensor raw arrays (a parameter's step counter): one element, the declared dtype
        self._each = tuple((pos, cp.dtype(ty_np)) for pos, ty_np in
                           ((pos, _C_NUMPY[ct]) for pos, ct, _ in each))
        self._max = max_slots(spec)
        self._buckets = tuple(b for b in _BUCKETS if b < self._max) + (self._max,)
        self._kernels: Dict[Tuple[str, int], object] = {}
        np_types = {"float64": cp.float64, "float32": cp.float32, "int64": cp.int64,
                    "int32": cp.int32, "bool": cp.bool_}
        # CuPy passes Python bools and ints as int64 and floats as float64: each shared
        # scalar is converted to the NumPy type of its C parameter
        self._convert = tuple((pos, None if raw else np_types[ty])
                              for pos, ty, _, raw in self._shared)
        self._dtype_names = dtype_names(cp, C_TYPES)
        spos = [pos for pos, _ in self._convert]
        self._shared_slice = (slice(spos[0], spos[-1] + 1) if spos and all(
            c is not None for _, c in self._convert) and spos == list(range(spos[0],
                                                                           spos[-1] + 1))
            else None)
        self._i64 = cp.int64

    def _kernel(self, dtype: str, slots: int):
        k = self._kernels.get((dtype, slots))
        if k is None:
            name, code = source(self._spec, dtype, slots)
            k = self._kernels[(dtype, slots)] = self._cp.RawKernel(code, name)
        return k

    def _group_key(self, call):
        """``(device, dtype, shared values)`` for a call the multi-tensor kernel can run, else
        None.  Hot: runs per parameter per step, so it compares dtype objects (a dtype's
        ``name`` is computed in Python by NumPy) and reads each device once."""
        pos0 = self._array_pos[0]
        first = call[pos0]
        dt = first.dtype
        name = self._dtype_names.get(dt)
        if name is None:
            return None
        size = first.size
        dev = first.device
        for pos in self._array_pos:
            a = call[pos]
            if (a.dtype != dt or a.size != size or not a.flags.c_contiguous
                    or (pos != pos0 and a.device != dev)):
                return None
        dev_id = getattr(dev, "id", None)
        for pos, edt in self._each:
            a = call[pos]
            if a.dtype != edt or not a.flags.c_contiguous or a.device != dev:
                return None
        if self._shared_slice is not None:  # scalars only, adjacent: the common case
            return dev_id, name, call[self._shared_slice]
        shared = []
        for pos, conv in self._convert:
            v = call[pos]
            if conv is None:  # a raw array shared by the launch: on the same device
                if device_id(v) != dev_id:
                    return None
                v = id(v)
            shared.append(v)
        return dev_id, name, tuple(shared)

    def __call__(self, calls: Sequence[tuple]) -> None:
        groups: Dict[tuple, List[tuple]] = {}
        for call in calls:
            if call[self._array_pos[0]].size == 0:
                continue
            key = self._group_key(call)
            if key is None:
                first = call[self._array_pos[0]]
                on_device(self._cp, device_id(first), lambda c=call: self._fallback(*c))
            else:
                groups.setdefault(key, []).append(call)
        for (dev, dtype, _), members in groups.items():
            for start in range(0, len(members), self._max):
                chunk = members[start:start + self._max]
                on_device(self._cp, dev, lambda c=chunk, d=dtype: self._launch(d, c))

    def _launch(self, dtype: str, chunk: List[tuple]) -> None:
        slots = next(b for b in self._buckets if b >= len(chunk))
        i64, array_pos, each = self._i64, self._array_pos, self._each
        args = []
        longest = 0
        for call in chunk:
            n = call[array_pos[0]].size
            longest = max(longest, n)
            args.append(i64(n))
            args.extend([call[pos] for pos in array_pos])
            args.extend([call[pos] for pos, _ in each])
        if slots > len(chunk):  # unused slots: the first tensor's pointers with n = 0
            args.extend(([i64(0)] + [chunk[0][pos] for pos in array_pos]
                         + [chunk[0][pos] for pos, _ in each]) * (slots - len(chunk)))
        first = chunk[0]
        for pos, conv in self._convert:
            args.append(first[pos] if conv is None else conv(first[pos]))
        blocks_x = min(_MAX_BLOCKS_X, -(-longest // _BLOCK))
        self._kernel(dtype, slots)((blocks_x, len(chunk)), (_BLOCK,), tuple(args))


# --- the norm of many tensors together (clip_grad_norm_) -----------------------------------
_NORM_BLOCKS_X = 32  # per tensor: partial results stay small (64 * 32 * 256 values at most)
_NORM_SLOTS = 64
_NORM_ACC = {"l2": "acc = acc + v * v;",
             "inf": "v = fabs(v);\n    if (v > acc || v != v) acc = v;"}


def norm_source(mode: str, dtype: str, slots: int) -> Tuple[str, str]:
    """``(kernel name, CUDA C source)`` of the partial-norm kernel: each thread of block
    ``(x, y)`` folds its grid-stride share of tensor ``y`` (sum of squares for ``l2``, largest
    absolute value, NaN first, for ``inf``), in float32 for the half types, and writes it to
    its own slot of ``partial``; a reduction of ``partial`` then gives the norm of all tensors
    together.  Deterministic: no atomics, every slot written."""
    name = f"polyten_mt_norm_{mode}_{dtype}_{slots}"
    sig = [f"long long _n{j}, const T* _g{j}" for j in range(slots)]
    cases = "".join(f"    case {j}: _n = _n{j}; _g = _g{j}; break;\n" for j in range(slots))
    code = (PRELUDE + f"typedef {C_TYPES[dtype]} T;\ntypedef polyten_acc<T>::type A;\n"
            f'extern "C" __global__ void {name}({", ".join(sig)}, A* partial) {{\n'
            "  long long _n;\n  const T* _g;\n"
            "  switch (blockIdx.y) {\n" + cases + "    default: return;\n  }\n"
            "  A acc = (A)0;\n"
            "  for (long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x; _i < _n;\n"
            "       _i += (long long)gridDim.x * blockDim.x) {\n"
            f"    A v = (A)_g[_i];\n    {_NORM_ACC[mode]}\n  }}\n"
            "  partial[((long long)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x"
            " + threadIdx.x] = acc;\n}\n")
    return name, code


class MultiTensorNorm:
    """``norm(arrays, norm_type)``: the 2-norm or inf-norm of contiguous floating arrays of one
    dtype and device, all together, as a 0-d array of their dtype -- one partial launch per 64
    arrays, then the partials' total (and a square root for the 2-norm; float16 and bfloat16
    summed in float32 and rounded once at the end): one launch of ``rows``
    (:class:`polyten_cuda.rows.Rows`) where given, else CuPy's reduction and ``sqrt`` (two
    calls, the reduction's host time several times a RawKernel's); ``None`` for what it does
    not take (other norms or dtypes, views, several devices, an empty array's inf-norm)."""

    def __init__(self, cp, rows=None):
        self._cp, self._rows = cp, rows
        self._kernels: Dict[tuple, object] = {}
        self._dtype_names = dtype_names(cp, C_TYPES)
        self._i64 = cp.int64

    def _kernel(self, mode, dtype, slots):
        k = self._kernels.get((mode, dtype, slots))
        if k is None:
            name, code = norm_source(mode, dtype, slots)
            k = self._kernels[(mode, dtype, slots)] = self._cp.RawKernel(code, name)
        return k

    def __call__(self, arrays: Sequence, norm_type: float):
        mode = "l2" if norm_type == 2.0 else "inf" if norm_type == float("inf") else None
        if mode is None or not arrays or (mode == "inf" and any(a.size == 0 for a in arrays)):
            return None  # an empty array's inf norm: the generic path raises, as vector_norm
        dt = arrays[0].dtype
        dtype = self._dtype_names.get(dt)
        dev = arrays[0].device
        if dtype is None or any(a.dtype != dt or not a.flags.c_contiguous or a.device != dev
                                for a in arrays):
            return None
        return on_device(self._cp, getattr(dev, "id", None),
                         lambda: self._norm(arrays, mode, dtype))

    def _norm(self, arrays, mode, dtype):
        cp, i64 = self._cp, self._i64
        chunks = [arrays[s:s + _NORM_SLOTS] for s in range(0, len(arrays), _NORM_SLOTS)]
        shapes = []
        for chunk in chunks:
            longest = max(a.size for a in chunk)
            shapes.append(max(1, min(_NORM_BLOCKS_X, -(-longest // _BLOCK))))
        total = sum(len(c) * bx * _BLOCK for c, bx in zip(chunks, shapes))
        dt = arrays[0].dtype
        half = dtype in HALF
        partial = cp.empty(total, dtype=cp.float32 if half else dt)
        off = 0
        for chunk, bx in zip(chunks, shapes):
            slots = next(b for b in _BUCKETS if b >= len(chunk))
            args = []
            for a in chunk:
                args += [i64(a.size), a]
            args += [i64(0), chunk[0]] * (slots - len(chunk))
            n = len(chunk) * bx * _BLOCK
            args.append(partial[off:off + n])
            self._kernel(mode, dtype, slots)((bx, len(chunk)), (_BLOCK,), tuple(args))
            off += n
        if self._rows is not None:
            return self._rows.norm_total(partial, mode == "l2", dt)
        out = partial.max() if mode == "inf" else cp.sqrt(partial.sum())
        return out.astype(dt) if half else out


def is_step(name: str) -> bool:
    """Whether the source ``name`` runs over a list of parameters (an optimizer step or one of
    GradScaler's passes), hence gets a multi-tensor kernel."""
    return "_step" in name or name in ("amp_unscale", "nadam_mu_product")


def build(cp, ew: Dict[str, Callable], sources: Dict[str, Elementwise]) -> Dict[str, Callable]:
    """``{source name: MultiTensorStep}`` for every source of :func:`is_step`, falling back to
    the per-parameter kernels ``ew``."""
    return {name: MultiTensorStep(cp, spec, ew[name]) for name, spec in sources.items()
            if is_step(name)}
