"""A stand-in for CuPy that runs on the CPU, for testing the cuda backend without a GPU.

``cupy.ElementwiseKernel`` / ``cupy.ReductionKernel`` are emulated by compiling the very same
CUDA C bodies (``polyten_cuda.fused_src``) with the host C++ compiler into a loop over the
broadcast elements, loaded with ctypes (``float16`` is a struct around GCC's ``_Float16`` with
the explicit conversions of CuPy's half type).

:func:`fake_cupy` is NumPy plus those kernels (arrays are NumPy arrays), for kernel-level tests.
With ``POLYTEN_STANDIN_KERNEL_LOG=<path>`` every kernel real CuPy would build is logged for
``tests/nvrtc_compile.py`` (NVRTC, as on a GPU).
"""


from __future__ import annotations

import contextlib
import ctypes
import importlib.machinery
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np

from polyten_cuda import fused_src

CXX = shutil.which("g++") or shutil.which("c++")

_FLOAT16_HOST = r"""
#include <string.h>
struct float16 {
  _Float16 v;
  float16() {}
  explicit float16(float f) : v((_Float16)f) {}
  explicit float16(double f) : v((_Float16)f) {}
  explicit operator float() const { return (float)v; }
  explicit operator double() const { return (double)(float)v; }
};
// bfloat16 as ml_dtypes rounds it: the top half of a float32, nearest even, NaN kept quiet
struct bfloat16 {
  unsigned short bits;
  bfloat16() {}
  explicit bfloat16(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    const unsigned nearest_even = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    bits = (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : nearest_even);
  }
  explicit operator float() const {
    const unsigned u = (unsigned)bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
};
"""
# CUDA's integer intrinsics, as the device computes them
_INTRINSICS_HOST = r"""
inline unsigned __umulhi(unsigned a, unsigned b) {
  return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
"""
_HEADER = r"""
#include <math.h>
#include <stdint.h>
""" + _FLOAT16_HOST + _INTRINSICS_HOST + r"""
typedef float float32;
typedef double float64;
typedef long long int64;
#define __device__
#define __forceinline__ inline
"""

# CuPy's half type and its type names for a compile-only nvcc check of kernel sources (the
# real one is in cupy/carray.cuh; explicit conversions, as there)
NVCC_PRELUDE = ("#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n"
                "struct float16 { __half v; __device__ float16() {}\n"
                " __device__ explicit float16(float f) : v(__float2half(f)) {}\n"
                " __device__ explicit float16(double f) : v(__double2half(f)) {}\n"
                " __device__ explicit operator float() const { return __half2float(v); }\n"
                " __device__ explicit operator double() const { return __half2float(v); } };\n"
                "struct bfloat16 { __nv_bfloat16 v; __device__ bfloat16() {}\n"
                " __device__ explicit bfloat16(float f) : v(__float2bfloat16(f)) {}\n"
                " __device__ explicit operator float() const { return __bfloat162float(v); } };\n"
                "typedef long long int64; typedef int int32; typedef float float32;\n"
                "typedef double float64; typedef unsigned long long uint64;\n")

_CTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float", "float64": "double",
           "int64": "long long", "bool": "bool", "int32": "int", "int16": "short",
           "int8": "signed char", "uint8": "unsigned char", "uint32": "unsigned int",
           "uint64": "unsigned long long"}
_SCALAR_CT = {"float32": ctypes.c_float, "float64": ctypes.c_double,
              "int64": ctypes.c_longlong, "bool": ctypes.c_bool, "int32": ctypes.c_int,
              "uint32": ctypes.c_uint32, "uint64": ctypes.c_uint64}
_CACHE_DIR = os.path.join(tempfile.gettempdir(), f"polyten_cuda_host_{os.getuid()}")
_LIBS = {}


def _compile(source: str):
    key = hashlib.sha1(source.encode()).hexdigest()[:16]
    lib = _LIBS.get(key)
    if lib is not None:
        return lib
    os.makedirs(_CACHE_DIR, exist_ok=True)
    so = os.path.join(_CACHE_DIR, f"k_{key}.so")
    if not os.path.exists(so):
        cpp = so[:-3] + ".cpp"
        with open(cpp, "w") as f:
            f.write(source)
        tmp = f"{so}.{os.getpid()}"
        res = subprocess.run([CXX, "-std=c++17", "-O1", "-U_FORTIFY_SOURCE", "-shared",
                              "-fPIC", "-o", tmp, cpp],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"host compilation failed:\n{res.stderr}\n--- source ---\n"
                               f"{source}")
        os.replace(tmp, so)
    lib = _LIBS[key] = ctypes.CDLL(so)
    return lib


def _bind(params, args):
    """Type placeholders (``T``, ``S``) -> dtype names, from the array arguments."""
    env = {}
    for (ty, _, _), a in zip(params, args):
        if ty not in _CTYPES and isinstance(a, np.ndarray):
            name = a.dtype.name
            if env.setdefault(ty, name) != name:
                raise TypeError(f"type {ty} bound to both {env[ty]} and {name}")
    return env


def _typedefs(env):
    return "".join(f"typedef {_CTYPES[d]} {ty};\n" for ty, d in env.items())


def _ctype(ty, env):
    return _CTYPES[env.get(ty, ty)]


# --- what real CuPy would compile -------------------------------------------------------------
# With POLYTEN_STANDIN_KERNEL_LOG=<path>, every distinct kernel that CuPy would generate and
# compile for the calls made (an ElementwiseKernel / ReductionKernel per argument signature, a
# RawKernel per source) is appended to <path> as a JSON line.  ``tests/nvrtc_compile.py`` turns
# each line into the source CuPy generates and compiles it with NVRTC, as on a GPU.
_KERNEL_LOG_ENV = "POLYTEN_STANDIN_KERNEL_LOG"
_LOGGED: set = set()


def _log_kernel(entry: dict) -> None:
    path = os.environ.get(_KERNEL_LOG_ENV)
    if not path:
        return
    line = json.dumps(entry, sort_keys=True)
    if line not in _LOGGED:
        _LOGGED.add(line)
        with open(path, "a") as f:  # one short append per line: safe across processes
            f.write(line + "\n")


def _dtype_name(dt) -> str:
    return np.dtype(dt).name


def _arg_infos(params, args, env, shape):
    """CuPy's ``_ArgInfo`` of each argument, as JSON: ``["nd", dtype, ndim, c_contiguous]`` for
    an array (after CuPy's broadcast and ``reduce_dims``: a launch over C-contiguous operands is
    1-d), ``["sc", dtype]`` for a scalar (cast to its parameter's type, as CuPy's ``CScalar``)."""
    views = {i: np.broadcast_to(a, shape) for i, ((_, _, raw), a) in enumerate(zip(params, args))
             if isinstance(a, np.ndarray) and not raw}
    flat = len(shape) > 1 and all(v.flags.c_contiguous for v in views.values())
    out = []
    for i, ((ty, _, raw), a) in enumerate(zip(params, args)):
        if isinstance(a, np.ndarray):
            if raw:
                out.append(["nd", _dtype_name(a.dtype), a.ndim, bool(a.flags.c_contiguous)])
            else:
                out.append(["nd", _dtype_name(a.dtype), 1 if flat else len(shape),
                            bool(flat or views[i].flags.c_contiguous)])
        else:
            out.append(["sc", _dtype_name(env.get(ty, ty))])
    return out, (1 if flat else len(shape))


def _spec(params) -> str:
    return ", ".join(f"{'raw ' if raw else ''}{t} {n}" for t, n, raw in params)


class ElementwiseKernel:
    """Emulates ``cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=)``."""

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="", **kw):
        self.name = name
        self.ins = fused_src.params(in_params)
        self.outs = fused_src.params(out_params)
        self.operation, self.preamble = operation, preamble
        self.kw = kw
        self.logged = True  # False for the stand-in's own helper kernels

    def __call__(self, *args):
        params = self.ins + self.outs
        n_in = len(self.ins)
        if len(args) not in (n_in, len(params)):
            raise TypeError(f"{self.name}: got {len(args)} arguments, expected {n_in} or "
                            f"{len(params)}")
        # NumPy reductions give scalars where CuPy gives 0-d arrays
        args = [np.asarray(a) if isinstance(a, np.generic) else a for a in args]
        arrays = [a for (ty, _, raw), a in zip(params, args)
                  if not raw and isinstance(a, np.ndarray)]
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
        env = _bind(params, args)
        if len(args) == n_in:  # allocate the outputs
            for ty, _, raw in self.outs:
                assert not raw, "a raw output must be passed"
                args.append(np.empty(shape, dtype=env.get(ty, ty)))
        if self.logged and os.environ.get(_KERNEL_LOG_ENV) and 0 not in shape:
            infos, ndim = _arg_infos(params, args, env, shape)
            _log_kernel({"kind": "elementwise", "name": self.name, "in_params": _spec(self.ins),
                         "out_params": _spec(self.outs), "operation": self.operation,
                         "preamble": self.preamble, "options": list(self.kw.get("options", ())),
                         "loop_prep": self.kw.get("loop_prep", ""),
                         "after_loop": self.kw.get("after_loop", ""), "args": infos,
                         "indexer": ndim})
        bufs, sig, pro, call = [], [], [], []
        for (ty, name, raw), a in zip(params, args):
            ct = _ctype(ty, env)
            is_out = (ty, name, raw) in self.outs
            if isinstance(a, np.ndarray):
                if raw:
                    assert a.flags.c_contiguous, f"{self.name}: raw {name} must be contiguous"
                    buf = a
                else:
                    if is_out:
                        assert a.shape == shape, f"{self.name}: output {name} of wrong shape"
                    buf = np.ascontiguousarray(np.broadcast_to(a, shape))
                    buf = buf.copy() if (is_out or not buf.flags.writeable) else buf
                bufs.append((a, buf, is_out and not raw))
                sig.append(f"{ct}* _p_{name}")
                call.append(buf.ctypes.data_as(ctypes.c_void_p))
                if raw:
                    pro.append(f"{ct}* {name} = _p_{name};")
                elif is_out:
                    pro.append(f"{ct}& {name} = _p_{name}[i];")
                else:
                    pro.append(f"const {ct} {name} = _p_{name}[i];")
            else:
                sig.append(f"{ct} {name}")
                call.append(_SCALAR_CT[env.get(ty, ty)](a))
        src = (_HEADER + self.preamble + f'extern "C" void run(long long _n, {", ".join(sig)})'
               " {\n" + _typedefs(env) + "for (long long i = 0; i < _n; ++i) {\n" +
               "\n".join(pro) + "\n{\n" + self.operation + "}\n}\n}\n")
        lib = _compile(src)
        lib.run(ctypes.c_longlong(int(np.prod(shape))), *call)
        for a, buf, write_back in bufs:
            if write_back and a is not buf:
                a[...] = buf
        outs = args[n_in:]
        return outs[0] if len(outs) == 1 else tuple(outs)


class ReductionKernel:
    """Emulates ``cupy.ReductionKernel`` for sums (``reduce_expr`` ``a + b``, identity 0) and
    logical ors (``a || b``, identity false); a ``post_map_expr`` other than ``out = a`` runs
    on the reduced values, with the call's scalar arguments in scope (as in CuPy's kernel,
    where they are parameters)."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", preamble="", **kw):
        self.kind = {("a+b", "0"): "sum", ("a||b", "false"): "any"}.get(
            (reduce_expr.replace(" ", ""), identity))
        assert self.kind is not None, (reduce_expr, identity)
        self.name = name
        self.ins = fused_src.params(in_params)
        self.outs = fused_src.params(out_params)
        assert len(self.outs) == 1 and post_map_expr.replace(" ", "").startswith(
            f"{self.outs[0][1]}="), post_map_expr
        self.post_map = (None if post_map_expr.replace(" ", "") == f"{self.outs[0][1]}=a"
                         else post_map_expr)
        self.map_expr, self.preamble = map_expr, preamble
        self.src = {"in_params": in_params, "out_params": out_params, "map_expr": map_expr,
                    "reduce_expr": reduce_expr, "post_map_expr": post_map_expr,
                    "identity": identity, "name": name, "preamble": preamble,
                    "reduce_type": kw.get("reduce_type"), "options": list(kw.get("options", ()))}

    def _log(self, args, out):
        params = self.ins + self.outs
        shape = np.broadcast_shapes(*[a.shape for (_, _, raw), a in zip(self.ins, args)
                                      if isinstance(a, np.ndarray) and not raw])
        if 0 in shape or out.size == 0:
            return
        env = _bind(params, list(args) + [out])
        infos, _ = _arg_infos(params, list(args) + [out], env, shape)
        infos = [["nd", i[1], max(len(shape), 1), False] if i[0] == "nd" else i
                 for i in infos[:-1]] + [["nd", _dtype_name(out.dtype), max(out.ndim, 1),
                                          bool(out.flags.c_contiguous)]]
        _log_kernel(dict(self.src, kind="reduction", args=infos,
                         indexers=[max(len(shape), 1), max(out.ndim, 1)]))

    def __call__(self, *args, out, axis, keepdims=False):
        if os.environ.get(_KERNEL_LOG_ENV):
            self._log([np.asarray(a) if isinstance(a, np.generic) else a for a in args], out)
        ty = self.outs[0][0]
        mapped = ElementwiseKernel(
            _spec(self.ins), f"{ty} _mapped",
            f"_mapped = {self.map_expr};\n", self.name, self.preamble)
        mapped.logged = False
        args = [np.asarray(a) if isinstance(a, np.generic) else a for a in args]
        shape = np.broadcast_shapes(*[a.shape for (_, _, raw), a in zip(self.ins, args)
                                      if isinstance(a, np.ndarray) and not raw])
        m = mapped(*args, np.empty(shape, dtype=out.dtype))
        if self.kind == "any":
            reduced = np.any(m, axis=axis, keepdims=keepdims)
        else:
            reduced = np.sum(m, axis=axis, keepdims=keepdims, dtype=np.float64).astype(
                out.dtype)
        if self.post_map is None:
            out[...] = reduced
            return out
        scalars = [(p, a) for p, a in zip(self.ins, args) if not isinstance(a, np.ndarray)]
        post = ElementwiseKernel(
            ", ".join([f"{ty} a"] + [f"{t} {n}" for (t, n, _), _ in scalars]),
            f"{ty} {self.outs[0][1]}", self.post_map + ";\n", self.name + "_post",
            self.preamble)
        post.logged = False
        post(reduced.astype(out.dtype), *[a for _, a in scalars], out)
        return out


_RAW_HEADER = r"""
#include <math.h>
""" + _FLOAT16_HOST + _INTRINSICS_HOST + r"""
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
struct dim3 { unsigned x, y, z; };
static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
"""
# Kernels that synchronise threads (``__syncthreads``, ``__syncwarp``, the warp shuffles) run
# every thread of a block as a fiber on one OS thread: a fiber runs until it reaches a barrier,
# and a barrier releases when every thread of its warp (or block) has arrived.  A fiber's
# stack is set up once with makecontext; switches are _setjmp / _longjmp, which (unlike
# swapcontext) make no system call for the signal mask -- a warp-mode row kernel switches
# about 20 times a thread -- and a fiber that finished its block is parked to run the same
# thread of the next block (compiled without _FORTIFY_SOURCE, whose longjmp check refuses a
# jump to another stack).  ``__shared__`` is a static (blocks run one after the other),
# filled with 0xff bytes (NaN, -1) when the first thread of each block reaches its
# declaration, as a GPU's shared memory holds garbage at the start of a block: a read before
# the block's own write shows, instead of finding the previous block's or launch's values.
# The scheduler visits the fibers in thread order or, with ``reverse``, the opposite, so that
# a read of another thread's write that lacks a barrier gives a wrong result in one of the two
# orders.  A barrier that some threads never reach (a shuffle under a divergent branch, a
# thread that returned) is reported instead of hanging; so is a shuffle over a partial warp or
# mask.
_SIMT_RUNTIME = r"""
#include <setjmp.h>
#include <ucontext.h>
#include <stdlib.h>
#include <string.h>
#include <functional>
#include <unordered_map>
#define __shared__ static
namespace polyten_simt {
static thread_local unsigned long block_serial;  // blocks run so far, by this OS thread
// a __shared__ array's bytes set to 0xff once per block: by the first thread to declare it
static void poison(void* p, size_t n) {
  static thread_local std::unordered_map<void*, unsigned long> seen;
  unsigned long& s = seen[p];
  if (s != block_serial) { memset(p, 0xff, n); s = block_serial; }
}
struct Fiber {
  ucontext_t ctx; jmp_buf jb; dim3 tid; int warp, lane, done, live; unsigned shuffles;
};
static thread_local jmp_buf sched;
static thread_local Fiber* fibers;
static thread_local char* stacks;
static thread_local int capacity, nthreads, cur, error;
static thread_local unsigned long warp_gen[32], block_gen, progress;
static thread_local int warp_arrived[32], warp_count[32], block_arrived;
static thread_local unsigned char exchange[2][32][32][8];
static thread_local std::function<void()> body;
static const size_t STACK = 64 * 1024;

// back to the scheduler; returns when the scheduler resumes this fiber
static void yield() {
  if (!_setjmp(fibers[cur].jb)) _longjmp(sched, 1);
}
// a fiber's life: one block's thread, then parked until the next block runs it again
static void fiber_main() {
  for (;;) { body(); fibers[cur].done = 1; ++progress; yield(); }
}
// run fiber i until it yields (at a barrier, or done); a fiber not live is started fresh
static void resume(int i) {
  if (_setjmp(sched)) return;
  Fiber& f = fibers[i];
  if (f.live) _longjmp(f.jb, 1);
  f.live = 1;
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stacks + (size_t)i * STACK;
  f.ctx.uc_stack.ss_size = STACK;
  f.ctx.uc_link = nullptr;  // fiber_main never returns
  makecontext(&f.ctx, fiber_main, 0);
  setcontext(&f.ctx);
}
static void arrive(unsigned long& gen, int& arrived, int count) {
  ++progress;
  if (++arrived == count) { arrived = 0; ++gen; return; }
  const unsigned long g = gen;
  while (gen == g) yield();
}
static void warp_barrier() {
  const int w = fibers[cur].warp;
  arrive(warp_gen[w], warp_arrived[w], warp_count[w]);
}
// the value of lane ``src`` of this warp (the caller's own where ``keep``)
template <typename V> static V shuffle(unsigned mask, V v, int src, bool keep, int width) {
  static_assert(sizeof(V) <= 8, "shuffle of a type wider than 8 bytes");
  Fiber& f = fibers[cur];
  if (mask != 0xffffffffu || width != 32 || warp_count[f.warp] != 32) error |= 4;
  const int p = f.shuffles++ & 1;  // double buffered: one barrier per shuffle
  memcpy(exchange[p][f.warp][f.lane], &v, sizeof(V));
  warp_barrier();
  if (keep) return v;
  V out;
  memcpy(&out, exchange[p][f.warp][src & 31], sizeof(V));
  return out;
}

// every thread of the block (one after the other at each barrier); 0, or why it failed
static int run_block(int n, bool reverse) {
  ++block_serial;
  for (int w = 0; w < 32; ++w) {
    warp_arrived[w] = 0;
    warp_count[w] = n - 32 * w < 0 ? 0 : (n - 32 * w > 32 ? 32 : n - 32 * w);
  }
  block_arrived = 0;
  for (int t = 0; t < n; ++t) {
    Fiber& f = fibers[t];
    f.tid = dim3{t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
    f.warp = t / 32; f.lane = t % 32; f.done = 0; f.shuffles = 0;
  }
  for (int left = n; left > 0;) {
    const unsigned long before = progress;
    for (int k = 0; k < n; ++k) {
      const int i = reverse ? n - 1 - k : k;
      if (fibers[i].done) continue;
      cur = i;
      threadIdx = fibers[i].tid;
      resume(i);
      if (fibers[i].done) --left;
    }
    if (left > 0 && progress == before) {  // nobody can move: a barrier never met
      for (int t = 0; t < n; ++t) fibers[t].live = 0;  // stopped mid-body: started afresh
      return 1;
    }
  }
  return 0;
}
static void reserve(int n) {
  if (n <= capacity) return;
  free(fibers); free(stacks);
  fibers = (Fiber*)calloc(n, sizeof(Fiber));
  stacks = (char*)malloc((size_t)n * STACK);
  capacity = n;
}
}  // namespace polyten_simt
inline void __syncthreads() {
  using namespace polyten_simt;
  arrive(block_gen, block_arrived, nthreads);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) polyten_simt::error |= 4;
  polyten_simt::warp_barrier();
}
template <typename V> V __shfl_sync(unsigned mask, V v, int src, int width = 32) {
  return polyten_simt::shuffle(mask, v, src, false, width);
}
template <typename V> V __shfl_xor_sync(unsigned mask, V v, int lane_mask, int width = 32) {
  return polyten_simt::shuffle(mask, v, polyten_simt::fibers[polyten_simt::cur].lane ^ lane_mask,
                               false, width);
}
template <typename V> V __shfl_down_sync(unsigned mask, V v, unsigned delta, int width = 32) {
  const int src = polyten_simt::fibers[polyten_simt::cur].lane + (int)delta;
  return polyten_simt::shuffle(mask, v, src, src >= 32, width);
}
"""
_SIMT_ERRORS = {1: "a barrier or shuffle that not every thread of its warp / block reached "
                   "(divergent control flow, or threads that returned before it): on a GPU "
                   "this hangs or is undefined",
                4: "a warp shuffle or __syncwarp over a partial warp or mask (the stand-in "
                   "emulates full warps with mask 0xffffffff only)"}
# whether a kernel needs the fiber runtime
_SIMT_WORDS = ("__syncthreads", "__syncwarp", "__shfl", "__shared__")
# ``__shared__ T name[...]...;`` (the declarations the fiber runtime poisons per block)
_SHARED_DECL = re.compile(r"__shared__\s+([A-Za-z_][\w:<>, ]*?)\s+([A-Za-z_]\w*)\s*"
                          r"((?:\[[^\]]+\])*)\s*;")


def _poisoned_shared(code: str) -> str:
    """``code`` with each ``__shared__`` declaration followed by its per-block poisoning."""
    return _SHARED_DECL.sub(lambda m: f"static {m[1]} {m[2]}{m[3]}; "
                                      f"polyten_simt::poison(&{m[2]}, sizeof({m[2]}));", code)
# fiber schedule of the next launches: False in thread order, True in reverse
SIMT_REVERSE = False


# the C type of a kernel parameter -> the NumPy type CuPy must be given for it
_RAW_SCALARS = {"double": "float64", "float64": "float64", "float": "float32",
                "float32": "float32", "long long": "int64", "int64": "int64", "int": "int32",
                "int32": "int32", "bool": "bool", "unsigned long long": "uint64"}


def _raw_params(code: str, name: str):
    """``[(C type, name)]`` of ``extern "C" __global__ void name(...)`` in ``code``."""
    import re
    m = re.search(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?'
                  + re.escape(name) + r"\s*\(([^)]*)\)", code)
    if m is None:
        raise StandinError(f"RawKernel: no extern \"C\" __global__ function {name!r} in the "
                           "source (CuPy looks the kernel up by its unmangled name)")
    out = []
    for part in m.group(1).split(","):
        part = part.strip()
        ident = re.search(r"(\w+)$", part).group(1)
        out.append((part[:-len(ident)].strip(), ident))
    return out


class RawKernel:
    """Emulates ``cupy.RawKernel(code, name)``: the source is compiled for the host with
    ``blockIdx`` / ``threadIdx`` / ``blockDim`` / ``gridDim`` as globals, and a launch runs
    every thread of every block in turn (as fibers in kernels that synchronise threads, see
    ``_SIMT_RUNTIME``).  Arguments are passed as CuPy passes them (an array as its data
    pointer, a NumPy scalar as its type, a Python ``bool`` / ``int`` as int64 and a ``float``
    as float64) and must match the C parameter: what CuPy would pass with the wrong width is
    refused.

    A launch of more threads a block than :attr:`max_threads_per_block` fails as CUDA's does
    ("too many resources requested"); that is 1024 unless a test puts the kernel's name in
    :attr:`REGISTERS` (registers a thread, as a compiler might allocate them: 65536 of them an
    SM) and its source has no ``__launch_bounds__`` (which makes a compiler fit the bound)."""

    REGISTERS: dict = {}

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 **kw):
        self.code, self.name = code, name
        _log_kernel({"kind": "raw", "name": name, "code": code, "options": list(options)})
        self.params = _raw_params(code, name)
        # scalar parameters declared through a typedef of the source (``typedef int I;``):
        # checked against the type it names, which is what CuPy's packed argument must match
        import re
        self._typedefs = {alias: ty for ty, alias in
                          re.findall(r"typedef\s+([A-Za-z_][\w ]*?)\s+(\w+)\s*;", code)}
        decl = ", ".join(f"{ty} {n}" for ty, n in self.params)
        call = ", ".join(n for _, n in self.params)
        self.simt = any(w in code for w in _SIMT_WORDS)
        head = ('extern "C" int _polyten_drive(unsigned _gx, unsigned _gy, unsigned _gz, '
                f"unsigned _bx, unsigned _by, unsigned _bz, int _reverse, {decl}) {{\n"
                "  gridDim = dim3{_gx, _gy, _gz}; blockDim = dim3{_bx, _by, _bz};\n")
        blocks = ("  for (unsigned _Z = 0; _Z < _gz; ++_Z)\n"
                  "  for (unsigned _Y = 0; _Y < _gy; ++_Y)\n"
                  "  for (unsigned _X = 0; _X < _gx; ++_X) {\n"
                  "    blockIdx = dim3{_X, _Y, _Z};\n")
        if self.simt:
            self._src = (_RAW_HEADER + _SIMT_RUNTIME + _poisoned_shared(code) + "\n" + head +
                         "  using namespace polyten_simt;\n"
                         "  nthreads = (int)(_bx * _by * _bz); error = 0;\n"
                         "  reserve(nthreads);\n"
                         f"  body = [&]() {{ ::{name}({call}); }};\n" + blocks +
                         "    if (run_block(nthreads, _reverse != 0)) return 1;\n"
                         "  }\n  return error;\n}\n")
        else:
            self._src = (_RAW_HEADER + code + "\n" + head + blocks +
                         "    for (unsigned _K = 0; _K < _bz; ++_K)\n"
                         "    for (unsigned _J = 0; _J < _by; ++_J)\n"
                         "    for (unsigned _I = 0; _I < _bx; ++_I) {\n"
                         f"      threadIdx = dim3{{_I, _J, _K}}; ::{name}({call});\n"
                         "    }\n  }\n  return 0;\n}\n")
        self.launches = 0

    @property
    def max_threads_per_block(self):
        regs = RawKernel.REGISTERS.get(self.name)
        if regs is None or "__launch_bounds__" in self.code:
            return 1024
        return min(1024, 65536 // regs // 32 * 32)

    def _arg(self, a, ty, pname):
        pointer = ty.endswith("*")
        if isinstance(a, np.ndarray):
            if not pointer:
                raise StandinError(f"RawKernel {self.name}: an array passed for the scalar "
                                   f"parameter '{ty} {pname}'")
            return ctypes.c_void_p(a.ctypes.data)
        if a is None or isinstance(a, (bool, int, float)) or isinstance(a, np.generic):
            passed = (np.dtype(type(a)) if isinstance(a, np.generic) else
                      np.dtype("float64") if isinstance(a, float) else
                      np.dtype("int64") if a is not None else None)
        else:
            raise StandinError(f"RawKernel {self.name}: unsupported argument {type(a)} for "
                               f"'{ty} {pname}'")
        if pointer:
            raise StandinError(f"RawKernel {self.name}: {a!r} passed for the pointer parameter "
                               f"'{ty} {pname}'")
        want = _RAW_SCALARS.get(self._typedefs.get(ty, ty))
        if want is None:
            raise StandinError(f"RawKernel {self.name}: the stand-in cannot pass '{ty}'")
        if passed != np.dtype(want):
            raise StandinError(
                f"RawKernel {self.name}: '{ty} {pname}' given {type(a).__name__} {a!r}, which "
                f"CuPy passes as {passed} ({passed.itemsize} bytes): pass numpy.{want}(...)")
        return np.ctypeslib.as_ctypes_type(passed)(a)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        if len(args) != len(self.params):
            raise StandinError(f"RawKernel {self.name}: {len(args)} arguments for "
                               f"{len(self.params)} parameters")
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        if any(g < 1 for g in grid) or any(b < 1 for b in block) or \
                block[0] * block[1] * block[2] > 1024 or grid[1] > 65535 or grid[2] > 65535:
            raise StandinError(f"RawKernel {self.name}: invalid launch configuration "
                               f"grid={grid} block={block}")
        if block[0] * block[1] * block[2] > self.max_threads_per_block:
            raise StandinError(f"RawKernel {self.name}: too many resources requested for "
                               f"launch (block={block}, at most {self.max_threads_per_block} "
                               "threads for its registers)")
        cargs = [self._arg(a, ty, n) for a, (ty, n) in zip(args, self.params)]
        lib = _compile(self._src)
        self.launches += 1
        err = lib._polyten_drive(*(ctypes.c_uint(int(v)) for v in grid + block),
                                 ctypes.c_int(int(SIMT_REVERSE)), *cargs)
        if err:
            raise StandinError(f"RawKernel {self.name} (grid={grid}, block={block}): "
                               + "; ".join(m for bit, m in _SIMT_ERRORS.items() if err & bit))


class _Device:
    def __init__(self, index=None):
        self.id = 0 if index is None else index

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        pass

    def synchronize(self):
        pass


# CuPy 14's C type names, bfloat16 included (with ml_dtypes): polyten_cuda.bfloat16 asks
# ``cupy._core._scalar.get_typename`` whether this CuPy stores bfloat16
# (a name of its own: the kernel emulation's _CTYPES above must not be shadowed)
_CUPY_TYPENAMES = {"bool": "bool", "int8": "signed char", "uint8": "unsigned char",
                   "int16": "short", "uint16": "unsigned short", "int32": "int",
                   "uint32": "unsigned int", "int64": "long long",
                   "uint64": "unsigned long long", "float16": "float16",
                   "bfloat16": "bfloat16", "float32": "float", "float64": "double",
                   "complex64": "complex<float>", "complex128": "complex<double>"}


def _get_typename(dtype, type_headers=None):
    return _CUPY_TYPENAMES[np.dtype(dtype).name]


# cuBLAS's compute type per dtype, as CuPy keeps it (cupy._core._routines_linalg): recorded
# here so that tests can see polyten.set_float32_matmul_precision reach it
COMPUTE_TYPES: dict = {}


# the stand-in GPUs' compute capability (an H100 / H200's); a test may lower it
CAPABILITY = [(9, 0)]


def _set_compute_type(dtype, compute_type):
    # as cupy/_core/_routines_linalg.pyx: TensorFloat-32 / bfloat16 compute below 8.0 warns
    # (judged on the current device) and keeps the default
    if compute_type in (6, 7) and CAPABILITY[0] < (8, 0):
        import warnings
        warnings.warn("COMPUTE_TYPE_BF16 and COMPUTE_TYPE_TF32 are only available on GPUs "
                      "with compute capability 8.0 or higher. COMPUTE_TYPE_DEFAULT will be "
                      "used instead.")
        compute_type = 1
    COMPUTE_TYPES[np.dtype(dtype).name] = compute_type


_CORE = types.SimpleNamespace(
    _scalar=types.SimpleNamespace(get_typename=_get_typename),
    _routines_linalg=types.SimpleNamespace(
        set_compute_type=_set_compute_type, COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_PEDANTIC=2,
        COMPUTE_TYPE_BF16=6, COMPUTE_TYPE_TF32=7, get_compute_type=lambda d: COMPUTE_TYPES.get(
            np.dtype(d).name, 1)))


class OutOfMemoryError(MemoryError):
    """``cupy.cuda.memory.OutOfMemoryError(size, total, limit=0)`` with CuPy's message."""

    def __init__(self, size, total, limit=0):
        self._size, self._total, self._limit = size, total, limit
        msg = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        super().__init__(msg + (f", limit set to: {limit:,} bytes)." if limit else ")."))


_MEMORY_MODULE = types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError)

# cupy.cuda.nvtx: what was recorded, in order (("push", msg) / ("pop",) / ("mark", msg))
NVTX_EVENTS: list = []
_NVTX = types.SimpleNamespace(
    available=True,
    RangePush=lambda message, id_color=-1: NVTX_EVENTS.append(("push", message)),
    RangePop=lambda: NVTX_EVENTS.append(("pop",)),
    Mark=lambda message, id_color=-1: NVTX_EVENTS.append(("mark", message)))


def fake_cupy(device_count: int = 1) -> types.ModuleType:
    """A module named ``cupy`` that is NumPy plus the emulated kernels."""

    class FakeCupy(types.ModuleType):
        def __getattr__(self, name):
            return getattr(np, name)

    mod = FakeCupy("cupy")
    mod.ElementwiseKernel = ElementwiseKernel
    mod.ReductionKernel = ReductionKernel
    mod.RawKernel = RawKernel
    mod.asnumpy = np.asarray
    mod._core = _CORE
    runtime = types.SimpleNamespace(getDevice=lambda: 0,
                                    getDeviceCount=lambda: device_count)
    mod.cuda = types.SimpleNamespace(Device=_Device, runtime=runtime,
                                     PinnedMemoryPointer=type("PinnedMemoryPointer", (), {}),
                                     get_current_stream=lambda: None, memory=_MEMORY_MODULE)
    return mod


@contextlib.contextmanager
def cupy_in_sys_modules(mod):
    """Install ``mod`` as ``cupy`` (and a ``cupyx.scipy.special`` with SciPy's erf) for the
    duration: the kernels that import CuPy lazily then get the stand-in."""
    saved = {k: sys.modules.get(k) for k in ("cupy", "cupyx", "cupyx.scipy",
                                               "cupyx.scipy.special")}
    special = types.ModuleType("cupyx.scipy.special")
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover
        import math
        erf = np.vectorize(math.erf)
    special.erf = erf
    cupyx, scipy_mod = types.ModuleType("cupyx"), types.ModuleType("cupyx.scipy")
    for m in (cupyx, scipy_mod, special):  # importlib.util.find_spec reads it
        m.__spec__ = importlib.machinery.ModuleSpec(m.__name__, None)
    sys.modules.update({"cupy": mod, "cupyx": cupyx, "cupyx.scipy": scipy_mod,
                        "cupyx.scipy.special": special})
    try:
        yield mod
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


# ==================================================================================================
# The strict stand-in: CuPy's API surface and its host/device boundary, on NumPy
# ==================================================================================================
"""
:func:`strict_cupy` goes further than :func:`fake_cupy`: it is a module that looks like CuPy to
the cuda backend and behaves like CuPy where the two libraries' differences can break a
backend written against NumPy:

* **The device boundary.**  Arrays are :class:`DeviceArray` objects, not NumPy arrays.  As with
  ``cupy.ndarray``, NumPy will not convert them implicitly (``numpy.asarray(d)`` raises
  TypeError), CuPy functions refuse NumPy arrays as operands, and a NumPy function called on
  one dispatches to the CuPy function of the same name (``__array_function__`` /
  ``__array_ufunc__``) or raises when CuPy has none.  Functions return 0-d arrays where NumPy
  returns scalars.
* **CuPy's surface.**  Only names that CuPy 14 has exist (module functions, ``ndarray``
  methods and attributes, ``Generator`` methods, ``flags``), and keyword arguments are checked
  against CuPy's signatures: ``tests/data/cupy_api.json``, written from a real CuPy by
  ``scripts/cupy_api_manifest.py``.
* **No errors from values.**  ``cupy.linalg`` does not raise on a singular or indefinite
  matrix (CuPy's default ``errstate(linalg='ignore')``): ``inv`` / ``solve`` of a singular
  matrix give non-finite values, and ``cholesky`` stops at the failing column and leaves the
  rest of the matrix as it was, as cuSOLVER's ``potrf`` does.
* **Kernel launches and host traffic are counted** in :data:`STATS`: ``"launch"`` for each
  call that launches a kernel (approximately: views and allocations do not), ``"d2h"`` for
  every device-to-host read
  (``get``, ``asnumpy``, ``item``, ``tolist``, ``bool(d)``, ``float(d)``, printing, ...),
  ``"h2d"`` for every host-to-device copy of data (``asarray`` of host data, a NumPy or list
  index), ``"sync"`` for calls whose output shape depends on device values (``nonzero``,
  ``unique``, boolean-mask indexing), each of which waits for the GPU; ``Device``, ``Stream``
  and ``Event`` ``synchronize()`` count as ``"sync"`` too.
* **Streams and events** as CuPy's: a current stream per thread and device (the null stream
  unless a ``cupy.cuda.Stream`` is entered or used; entering a stream of another device raises
  CuPy's error), events that record on a stream of their own device, and
  ``cupy.cuda.get_elapsed_time``.  Kernels run at once, so a recorded event is done at once
  and elapsed times are host times between the records.  :data:`QUEUED` says what was queued on
  each stream (``(device, stream.ptr)`` -> ``Counter`` of ``"launch"`` / ``"h2d_async"``).

What it cannot check: NVRTC compilation, launch configurations, CuPy's own numerical
differences from NumPy, real asynchrony (the order of work on different streams).  Those need
the GPU tests (tests/test_cuda.py).
"""

import collections  # noqa: E402
import operator  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import weakref  # noqa: E402

STATS: collections.Counter = collections.Counter()
# (device, stream ptr) -> what was queued on that stream of that device
QUEUED: collections.defaultdict = collections.defaultdict(collections.Counter)
_TRACE: list = []          # (kind, what) of each counted event while tracing
_TRACING = [False]
_MANIFEST_PATH = os.path.join(os.path.dirname(__file__), "data", "cupy_api.json")
_MANIFEST: dict = {}


def manifest() -> dict:
    if not _MANIFEST:
        with open(_MANIFEST_PATH) as f:
            _MANIFEST.update(json.load(f))
    return _MANIFEST


def traffic() -> dict:
    """:data:`STATS` without the kernel launches: the host traffic."""
    return {k: v for k, v in STATS.items() if k != "launch" and v}


def _count(kind: str, what: str) -> None:
    STATS[kind] += 1
    if _TRACING[0]:
        import traceback
        _TRACE.append((kind, what, "".join(traceback.format_stack(limit=12)[:-2])))


def _launch() -> None:
    """A kernel queued on the current stream of the current device."""
    STATS["launch"] += 1
    dev = _current()
    QUEUED[(dev, _current_stream(dev).ptr)]["launch"] += 1


@contextlib.contextmanager
def trace_host_traffic():
    """Record every counted event (with a stack) while the block runs: ``yield``s the list."""
    _TRACE.clear()
    _TRACING[0] = True
    try:
        yield _TRACE
    finally:
        _TRACING[0] = False


class StandinError(TypeError):
    """What real CuPy would refuse (its message, plus why the stand-in says so)."""


def _version() -> str:
    return manifest()["cupy_version"]


def _check_signature(qualname: str, params, args, kwargs) -> None:
    if params is None:
        return
    kinds = {name: kind for name, kind, _ in params}
    var_kw = "VAR_KEYWORD" in kinds.values()
    if "VAR_POSITIONAL" not in kinds.values():
        npos = sum(k in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD") for k in kinds.values())
        if len(args) > npos:
            raise StandinError(f"{qualname}() takes at most {npos} positional arguments "
                               f"({len(args)} given) in CuPy {_version()}")
    for k in kwargs:
        kind = kinds.get(k)
        if (kind is None or kind in ("POSITIONAL_ONLY", "VAR_POSITIONAL")) and not var_kw:
            raise StandinError(
                f"{qualname}() got an unexpected keyword argument '{k}': CuPy {_version()}'s "
                f"{qualname} takes ({', '.join(n for n, _, _ in params)})")


def _unwrap(x, what: str):
    """Device arrays -> their NumPy buffers, recursively through lists and tuples; a NumPy
    array (not a NumPy scalar) is refused as CuPy refuses it."""
    cls = x.__class__
    if cls is DeviceArray:
        return x._a
    if cls is list or cls is tuple:
        return cls(_unwrap(v, what) for v in x)
    if isinstance(x, np.ndarray):
        raise StandinError(f"Unsupported type {type(x)} (cupy.{what} got a NumPy array: "
                           f"copy it to the device with cupy.asarray first)")
    return x


def _wrap(r, dev=None):
    """NumPy results -> device arrays on ``dev`` (default: the current device)."""
    if isinstance(r, np.ndarray):
        dev = _current() if dev is None else dev
        _allocate(r, dev)
        if not r.flags.writeable:  # CuPy has no read-only arrays (NumPy's diagonal() is one)
            with contextlib.suppress(ValueError):
                r.flags.writeable = True
        return DeviceArray(r, dev)
    if isinstance(r, np.generic):  # CuPy returns 0-d arrays where NumPy returns scalars
        return DeviceArray(np.asarray(r), dev)
    if r.__class__ is tuple or r.__class__ is list:
        return r.__class__(_wrap(v, dev) for v in r)
    if hasattr(r, "_fields") and isinstance(r, tuple):  # named tuples (slogdet, eigh, ...)
        return r.__class__(*(_wrap(v, dev) for v in r))
    return r


# --- devices: the current one (per thread) and the device of each array --------------------
_DEVICE_COUNT = [1]
_CURRENT = threading.local()


def _current() -> int:
    return getattr(_CURRENT, "dev", 0)


def _devices_of(x, out) -> list:
    cls = x.__class__
    if cls is DeviceArray:
        out.append(x._dev)
    elif cls is list or cls is tuple:
        for v in x:
            _devices_of(v, out)
    return out


def _check_devices(what, devs) -> None:
    """As CuPy's kernel launch: every array operand must live on the current device."""
    cur = _current()
    for d in devs:
        if d != cur:
            raise ValueError(f"Array device must be same as the current device: array device "
                             f"= {d} while current = {cur} ({what}; the stand-in checks what "
                             f"CuPy checks when it launches a kernel)")


# functions that only make views or read metadata: no kernel, the result stays on the
# operand's device; every other function launches on the current device
_VIEWS = {"reshape", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims",
          "broadcast_to", "broadcast_arrays", "atleast_1d", "atleast_2d", "atleast_3d", "view",
          "diagonal", "real", "imag", "ndim", "shape", "size", "result_type", "can_cast",
          "may_share_memory", "shares_memory", "split", "array_split", "as_strided", "T", "mT",
          "get_array_module"}
# calls that allocate or return an operand as it is, launching no kernel (an approximation:
# astype / ascontiguousarray / asarray that must copy count as one launch each)
_NO_KERNEL = {"empty", "empty_like", "asarray", "asanyarray", "array"}
def _launches(name, fn, args, kwargs) -> bool:
    """Whether the call launches a kernel where CuPy returns the operand unchanged."""
    if name == "astype":  # a copy unless the dtype is the same and copy=False
        a = getattr(fn, "__self__", None)
        dtype = args[0] if args else kwargs.get("dtype")
        copy = args[4] if len(args) > 4 else kwargs.get("copy", True)
        return a is None or copy or np.dtype(dtype) != a.dtype
    if name == "ascontiguousarray":
        a = args[0] if args else kwargs.get("a")
        dtype = args[1] if len(args) > 1 else kwargs.get("dtype")
        return not (isinstance(a, np.ndarray) and a.flags.c_contiguous and
                    (dtype is None or np.dtype(dtype) == a.dtype))
    return True


# copies CuPy makes onto the current device from any device (peer copies)
_CROSS_DEVICE = {"copy", "asarray", "array", "asanyarray", "ascontiguousarray"}


_SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "extract", "compress"}

# CuPy's bfloat16 gaps: a function with no bfloat16 loop raises TypeError when CuPy resolves the
# kernel's types, before anything runs.  Which functions, per mode (POLYTEN_STANDIN_BF16_GAPS,
# or set_bfloat16_gaps()):
#   "cupy14" (the default): the gaps cupy/cupy#9630 names for CuPy 14 -- rounding (around,
#     round) and divmod -- plus cupyx.scipy (its kernels are templated per type without
#     bfloat16) and the sorts (thrust/CUB instantiations per C type, assumed without it);
#   "all": every function but casts, copies, creation, joins, views and indexing -- the stress
#     test of the cuda backend's float32 retry (polyten_cuda.bfloat16.float32_retry);
#   "none": ml_dtypes' NumPy loops, every function.
_BF16_CUPY14 = frozenset({"divmod", "sort", "argsort", "lexsort", "partition", "argpartition",
                          "msort"})
# no bfloat16 loop either, but bfloat16 casts safely to float32, so CuPy 14's type resolver
# picks the float32 loop and returns float32 without an error (its where has '?ff->f', not
# '?EE->E'; its _round_ufunc 'fq->f'; tril / triu are where)
_BF16_TO_FLOAT32 = frozenset({"where", "around", "round", "round_", "tril", "triu"})
# CuPy's logical ufuncs have no complex loops (cupy/_logic/ops.py): TypeError
_NO_COMPLEX = frozenset({"logical_not", "logical_and", "logical_or", "logical_xor"})
_HALF_ALWAYS_OK = _VIEWS | _NO_KERNEL | {
    "astype", "copy", "ascontiguousarray", "asfortranarray", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "fill", "copyto", "concatenate", "stack", "hstack",
    "vstack", "take", "take_along_axis", "put_along_axis", "flip", "roll", "ravel", "flatten",
    "asnumpy", "get", "set", "item", "tolist", "tobytes",
    # no float32 stand-in for it (the retry leaves it alone); CuPy's bfloat16 tests cover it
    "nextafter"}
_BF16_MODE = [os.environ.get("POLYTEN_STANDIN_BF16_GAPS", "cupy14")]
# float16: CuPy has its loops ("none", the default), or, as a stress test of the same retry,
# none but casts, copies, creation, views and indexing ("all"; POLYTEN_STANDIN_F16_GAPS)
_F16_MODE = [os.environ.get("POLYTEN_STANDIN_F16_GAPS", "none")]


def set_bfloat16_gaps(mode: str) -> str:
    """Switch the bfloat16 gaps (see above); returns the previous mode."""
    if mode not in ("cupy14", "all", "none"):
        raise ValueError(f"bfloat16 gaps mode {mode!r}: 'cupy14', 'all' or 'none'")
    old, _BF16_MODE[0] = _BF16_MODE[0], mode
    return old


def set_float16_gaps(mode: str) -> str:
    """Switch the float16 gaps ("none" or "all"); returns the previous mode."""
    if mode not in ("all", "none"):
        raise ValueError(f"float16 gaps mode {mode!r}: 'all' or 'none'")
    old, _F16_MODE[0] = _F16_MODE[0], mode
    return old


# binary ufuncs whose bfloat16 array beside a Python float runs CuPy's float32 loop and
# returns float32: CuPy 14's weak-scalar check reads the float as unable to cast to bfloat16
# (a 'V'-kind dtype to NumPy) and takes the first loop the array casts to safely.  Seen on an
# H200 with CuPy 14.2: bf16 + 2.5 and maximum(bf16, 2.5) were float32, bf16 + 2 bfloat16, and
# a bfloat16 NumPy scalar kept bfloat16.
_WEAK_FLOAT_TO_F32 = frozenset({
    "add", "subtract", "multiply", "true_divide", "divide", "floor_divide", "remainder",
    "fmod", "power", "maximum", "minimum", "fmax", "fmin", "arctan2", "hypot", "logaddexp",
    "logaddexp2", "copysign", "nextafter", "equal", "not_equal", "less", "less_equal",
    "greater", "greater_equal"})


def _cupy_weak_float(name, args, kwargs):
    """``args`` as CuPy's type resolution takes them (see :data:`_WEAK_FLOAT_TO_F32`)."""
    if name not in _WEAK_FLOAT_TO_F32 or len(args) < 2 or _BF16_MODE[0] == "none":
        return args  # (with out=, the float32 result is cast into it: x += 2.5 in place)
    bf = _bf16()
    a, b = args[0], args[1]
    if b.__class__ is float and isinstance(a, np.ndarray) and a.dtype == bf:
        return (a.astype(np.float32), np.float32(b)) + tuple(args[2:])
    if a.__class__ is float and isinstance(b, np.ndarray) and b.dtype == bf:
        return (np.float32(a), b.astype(np.float32)) + tuple(args[2:])
    return args


def _refused_dtype(qualname: str, name: str, args, kwargs):
    """The half dtype the stand-in refuses in this call (as CuPy without its loop), or None."""
    values = tuple(kwargs.values())
    if _F16_MODE[0] == "all" and name not in _HALF_ALWAYS_OK and (
            _has_dtype(args, _F16) or _has_dtype(values, _F16)):
        return "float16"
    mode = _BF16_MODE[0]
    if mode == "none":
        return None
    if mode == "cupy14":
        if name not in _BF16_CUPY14 and not qualname.startswith("cupyx.scipy."):
            return None
    elif name in _HALF_ALWAYS_OK:
        return None
    bf = _bf16()
    if bf is not None and (_has_dtype(args, bf) or _has_dtype(values, bf)):
        return "bfloat16"
    return None


_F16 = np.dtype("float16")


def _bf16():
    if not _BF16_DTYPE:
        try:
            import ml_dtypes
        except ImportError:
            _BF16_DTYPE.append(None)
        else:
            _BF16_DTYPE.append(np.dtype(ml_dtypes.bfloat16))
    return _BF16_DTYPE[0]


_BF16_DTYPE: list = []


def _cupy_float_divmod(name, x, y):
    """CuPy's float floor_divide / remainder (cupy/_core/include/cupy/carray.cuh): floor(x / y)
    and x - floor(x / y) * y, not NumPy's fmod-based ones (1.0 // 0.1 is 10, 5 % inf NaN)."""
    with np.errstate(all="ignore"):
        a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
        q = np.floor(a / b)
        return q if name == "floor_divide" else a - q * b


# --- CuPy's numerics where they are not NumPy's (each found in CuPy's sources) -------------
def _radix_order(a):
    """The order of CUB's radix sort, which CuPy's 1-D float32 / float64 ``sort`` and
    ``argsort`` use (cupy/cuda/cupy_thrust.cu: ``thrust::less`` for floating points): by the
    bits, so NaNs with the sign bit set come first; -0.0 and 0.0 are equal (stable) -- as an
    H200 sorted [1, -nan, 0, -0, -inf, nan, 2.5, -nan, -1] with CuPy 14.2: indices
    [1, 7, 4, 8, 2, 3, 0, 6, 5]."""
    u = np.dtype(f"uint{a.dtype.itemsize * 8}")
    bits = np.ascontiguousarray(a).view(u)
    top = u.type(1) << u.type(a.dtype.itemsize * 8 - 1)
    bits = np.where(bits == top, u.type(0), bits)  # CUB's radix sort: -0.0 as 0.0
    key = np.where(bits & top, ~bits, bits | top)
    return np.argsort(key, kind="stable")


def _last_nan_index(x, r, axis, keepdims):
    """CuPy's float argmax / argmin where two or more NaNs meet: its reduction's combine
    (``my_argmax_float``: the left NaN wins, whatever its index) can return a later NaN than
    the first, as a tree over threads does for a long row; the stand-in returns the last."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fc" and x.dtype != _bf16() \
            or x.size == 0:
        return r
    nan = np.isnan(x.astype(np.float32) if x.dtype == _bf16() else x)
    if axis is None:
        nan = nan.reshape(-1)
        ax = 0
    else:
        ax = axis % x.ndim
    n = nan.shape[ax]
    last = n - 1 - np.argmax(np.flip(nan, ax), axis=ax)
    many = nan.sum(axis=ax) >= 2
    out = np.where(many, last, np.asarray(r).reshape(many.shape))
    return out.reshape(np.shape(r)).astype(np.asarray(r).dtype)


def _negative_zero(v) -> bool:
    """Whether CuPy's fill of ``v`` is a memset that drops a zero's sign: a real -0.0.  A
    complex zero is filled by the kernel (an H200 with CuPy 14.2 kept the sign of
    ``cupy.full((2,), complex(-0.0, 0.0), dtype=complex64)``'s real part)."""
    if isinstance(v, (float, np.floating)):
        return v == 0 and np.signbit(v)
    return False


def _cupy_round(x, decimals):
    """CuPy's ``around`` (cupy/_core/core.pyx ``_round_float``, ``_round_ufunc_neg_uint``):
    floats scaled in double, ``rint(x * 10**d) / 10**d`` rounded once into the
    dtype (NumPy scales in the dtype); integers with negative decimals split at the last two
    digits and round a float32 quotient."""
    if x.dtype.kind in "iu" and decimals < 0:
        p = 10 ** (-decimals - 1)
        a = x.astype(np.int64)
        q = np.sign(a) * (np.abs(a) // p // 100)
        rem = (a - q * p * 100).astype(np.int32)
        f = np.rint(rem.astype(np.float32) / (np.float32(p) * np.float32(10)))
        return ((q * 100 + f.astype(np.int64) * 10) * p).astype(x.dtype)
    if x.dtype in (np.float16, np.float32, np.float64) and decimals != 0:
        # the scale 10**|d| correctly rounded; NumPy's power_of_ten multiplies by 10 past
        # 1e9, which differs from 1e23 on (an H200: float64 0.285 to 40 decimals was
        # 5.6e-17 away from NumPy's)
        p = 10.0 ** abs(decimals)
        a = x.astype(np.float64)
        with np.errstate(all="ignore"):
            r = np.rint(a * p) / p if decimals > 0 else np.rint(a / p) * p
        return r.astype(x.dtype)
    return None


def _cupy_numerics(name, args, kwargs, owner, r):
    """``r`` (NumPy's answer) as CuPy computes it, where the two differ."""
    if isinstance(r, np.generic):  # CuPy's are 0-d arrays
        r = np.asarray(r)
    if not isinstance(r, np.ndarray):
        return r
    if name in ("around", "round", "round_"):
        x = owner if isinstance(owner, np.ndarray) else args[0]
        rest = args if isinstance(owner, np.ndarray) else args[1:]
        d = kwargs.get("decimals", rest[0] if rest else 0)
        if isinstance(x, np.ndarray):
            got = _cupy_round(x, int(d))
            if got is not None:
                return got
    elif name == "fmod" and len(args) == 2 and r.dtype.kind in "iu":
        # integers through double: 'out0 = in1 == 0 ? 0 : fmod((double)in0, (double)in1)'
        x, y = np.broadcast_arrays(*(np.asarray(a) for a in args))
        with np.errstate(all="ignore"):
            v = np.fmod(x.astype(np.float64), y.astype(np.float64))
            return np.where(y == 0, 0, v).astype(r.dtype)
    elif name == "nextafter" and r.dtype == np.float32 and len(args) == 2:
        # CUDA's nextafterf as CuPy builds it flushes subnormal results: an H200 (CuPy 14.2)
        # stepped 0.0 towards 1 to 1.1754944e-38 (FLT_MIN) and -0.0 towards -inf to -FLT_MIN
        # where NumPy, C and torch give the smallest subnormal, 1.4e-45
        x = np.broadcast_to(np.asarray(args[0], np.float32), r.shape)
        tiny = np.finfo(np.float32).tiny
        sub = (r != 0) & (np.abs(r) < tiny)
        flushed = np.where(x == 0, np.copysign(tiny, r), np.copysign(np.float32(0), r))
        return np.where(sub, flushed, r).astype(np.float32)
    elif name == "nextafter" and r.dtype == _F16 and len(args) == 2:
        # cupy/float16.cuh: a non-finite x gives NaN (NumPy steps from inf to 65504)
        x = np.broadcast_to(np.asarray(args[0]), r.shape)
        return np.where(np.isfinite(x), r, np.float16("nan")).astype(r.dtype)
    elif name in ("sort", "argsort"):
        x = owner if isinstance(owner, np.ndarray) else args[0]
        axis = kwargs.get("axis", -1)
        if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64) and (
                x.ndim == 1 or axis is None):
            flat = x.reshape(-1)
            order = _radix_order(flat)
            return flat[order] if name == "sort" else order.astype(r.dtype)
    elif name == "sign" and r.dtype.kind == "f":
        return np.where(np.isnan(r), r.dtype.type(0), r)  # (x > 0) - (x < 0)
    elif name in ("full", "full_like"):
        v = args[1] if len(args) > 1 else kwargs.get("fill_value")
        if _negative_zero(v) and r.flags.c_contiguous:
            r[...] = 0  # ndarray.fill: a zero is a memset, without its sign
    elif name == "isin" and len(args) >= 2:
        # in1d: y sorted (radix: a NaN with the sign bit first), then x counted between
        # searchsorted's ends, where a NaN query lands on y's trailing NaNs: found
        x, y = (np.asarray(a) for a in args[:2])
        if x.dtype.kind in "fc" and y.size:
            flat = y.reshape(-1)
            trailing = np.isnan(flat[_radix_order(flat)][-1]) if flat.dtype in (
                np.float32, np.float64) else np.isnan(flat).any()
            if trailing:
                found = np.isnan(x)
                return (r & ~found) if kwargs.get("invert") else (r | found)
    elif name in ("cumsum", "cumprod") and r.ndim > 1:
        axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
        if axis is not None and axis % r.ndim != r.ndim - 1:
            # scan_core's _proc_as_batch: the scan runs along the last axis of a copy and
            # comes back as cupy.rollaxis of it, a permuted view
            return np.moveaxis(np.ascontiguousarray(np.moveaxis(r, axis, -1)), -1, axis)
    elif name == "sum" and r.dtype == _F16:
        # cupy/_core/_routines_math.pyx: ('e->e', (None, None, None, 'float')) -- a float16
        # sum accumulates in float and rounds once (NumPy's rounds every partial sum)
        x = owner if isinstance(owner, np.ndarray) else args[0]
        rest = args if isinstance(owner, np.ndarray) else args[1:]
        if isinstance(x, np.ndarray) and x.dtype == _F16 and len(rest) <= 1 and \
                kwargs.get("out") is None:
            axis = kwargs.get("axis", rest[0] if rest else None)
            return np.asarray(x.astype(np.float32).sum(
                axis=axis, keepdims=kwargs.get("keepdims", False))).astype(_F16)
    elif name in ("argmax", "argmin"):
        x = owner if isinstance(owner, np.ndarray) else args[0]
        rest = args if isinstance(owner, np.ndarray) else args[1:]
        axis = kwargs.get("axis", rest[0] if rest else None)
        return _last_nan_index(x, r, axis, kwargs.get("keepdims", False))
    return r


def _cupy_unique(args, kwargs, r):
    """CuPy's ``unique(..., equal_nan=False)`` on float32 / float64: the flattened array
    sorted with the radix sort above (NaNs with the sign bit set first, -0.0 before 0.0),
    then every element unequal to its predecessor (so each NaN is its own value)."""
    x = args[0]
    if not (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)) or \
            kwargs.get("equal_nan", True) or kwargs.get("axis") is not None:
        return r
    flat = x.reshape(-1)
    order = _radix_order(flat)
    aux = flat[order]
    mask = np.ones(aux.shape, bool)
    mask[1:] = aux[1:] != aux[:-1]
    parts = [aux[mask]]
    if kwargs.get("return_index"):
        parts.append(order[mask].astype(np.int64))
    if kwargs.get("return_inverse"):
        inv = np.empty(flat.shape, np.int64)
        inv[order] = np.cumsum(mask) - 1
        parts.append(inv)
    if kwargs.get("return_counts"):
        starts = np.flatnonzero(mask)
        parts.append(np.diff(np.append(starts, aux.size)).astype(np.int64))
    return tuple(parts) if isinstance(r, tuple) else parts[0]


def _has_dtype(x, dt) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype == dt
    if x.__class__ is list or x.__class__ is tuple:
        return any(_has_dtype(v, dt) for v in x)
    return False


def _cublas_matmul(a, b, *args, out=None, **kwargs):
    """``numpy.matmul`` with cuBLAS's half-precision numerics, as CuPy gets them: float16 and
    bfloat16 products summed in float32 and rounded once into the operands' dtype (NumPy's
    float16 matmul sums in float16; ml_dtypes' bfloat16 one returns float32); 2-D float32
    products read TensorFloat-32 operands while CuPy's compute type says TF32."""
    if (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
            and a.dtype in (_F16, _bf16())):
        r = np.matmul(a.astype(np.float32), b.astype(np.float32), *args, **kwargs)
        r = r.astype(a.dtype)
        if out is None:
            return r
        out[...] = r
        return out
    if (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
            == np.float32 and max(a.ndim, b.ndim) <= 2 and COMPUTE_TYPES.get("float32") == 7):
        a, b = _tf32(a), _tf32(b)  # CuPy's 2-D GEMM with COMPUTE_TYPE_TF32: FAST_TF32
    return np.matmul(a, b, *args, out=out, **kwargs)


class _Function:
    """A CuPy module function on NumPy: signature checked, operands unwrapped, results
    wrapped."""

    def __init__(self, qualname, np_fn, params, host_ok=False, syncs=False):
        self.qualname, self.np_fn, self.params = qualname, np_fn, params
        self.host_ok, self.syncs = host_ok, syncs
        self.__name__ = qualname.rsplit(".", 1)[-1]
        self.index_wrapper = None
        self.owner_dev = None  # for ndarray methods: the device of the array
        if qualname.startswith(("cupy.", "ndarray.")) or qualname.endswith(".at"):
            self.index_wrapper = _INDEX_WRAPPERS.get(self.__name__)

    def __call__(self, *args, **kwargs):
        _check_signature(self.qualname, self.params, args, kwargs)
        if self.__name__ in ("sort", "argsort") and kwargs.get("kind") not in (None, "stable"):
            raise ValueError("kind can only be None or 'stable'")  # CuPy's only sort
        if self.syncs:
            _count("sync", self.qualname)
        name = self.__name__
        devs = _devices_of(args, [] if self.owner_dev is None else [self.owner_dev])
        if kwargs:
            _devices_of(tuple(kwargs.values()), devs)
        if name in _VIEWS:
            dev = devs[0] if devs else None
        else:
            dev = None
            if name not in _CROSS_DEVICE:
                _check_devices(self.qualname, devs)
        args = _unwrap(args, self.qualname)
        kwargs = {k: _unwrap(v, self.qualname) for k, v in kwargs.items()}
        if self.index_wrapper is not None:
            args, kwargs = self.index_wrapper(args, kwargs)
        owner = getattr(self.np_fn, "__self__", None)  # an ndarray method's array
        refused = _refused_dtype(self.qualname, name, args + (owner,) if isinstance(
            owner, np.ndarray) else args, kwargs)
        if refused is not None:
            mode = (_F16_MODE if refused == "float16" else _BF16_MODE)[0]
            raise TypeError(f"Wrong type ((dtype({refused}),)) of arguments for cupy_{name} "
                            f"(the stand-in's {refused} gaps, mode {mode!r})")
        if name in _NO_COMPLEX and any(isinstance(a, complex) or isinstance(a, np.ndarray)
                                       and a.dtype.kind == "c" for a in args):
            raise TypeError(f"Wrong type of arguments for cupy_{name}: no complex loop")
        args = _cupy_weak_float(name, args, kwargs)
        if name not in _VIEWS and name not in _NO_KERNEL and _launches(name, self.np_fn, args,
                                                                      kwargs):
            _launch()
        if name == "flip" and args and isinstance(args[0], np.ndarray) and args[0].ndim == 0:
            raise np.exceptions.AxisError("Input must be >= 1-d")  # cupy/_manipulation
        r = self.np_fn(*args, **kwargs)
        if name == "fill" and isinstance(owner, np.ndarray) and args and \
                _negative_zero(args[0]) and owner.flags.c_contiguous:
            owner[...] = 0  # ndarray.fill: value == 0 and C-contiguous is a memset
        if name in ("floor_divide", "remainder") and not kwargs and len(args) == 2 and \
                isinstance(r, np.ndarray) and (r.dtype.kind == "f" or r.dtype == _bf16()):
            r = _cupy_float_divmod(name, *args).astype(r.dtype)
        r = _cupy_numerics(name, args, kwargs, owner, r)
        if name == "unique":
            r = _cupy_unique(args, kwargs, r)
        if name in _BF16_TO_FLOAT32 and _BF16_MODE[0] != "none" and (
                _has_dtype(args, _bf16()) or isinstance(owner, np.ndarray)
                and owner.dtype == _bf16()) and isinstance(r, np.ndarray):
            r = r.astype(np.float32)
        return _wrap(r, dev)

    def __repr__(self):
        return f"<stand-in {self.qualname}>"

    @property
    def __signature__(self):
        """CuPy's signature, for code that inspects it (feature detection)."""
        import inspect
        if self.params is None:
            raise ValueError(f"no signature recorded for {self.qualname}")
        P = inspect.Parameter
        return inspect.Signature([
            P(name, getattr(P, kind), default=None if has_default else P.empty)
            for name, kind, has_default in self.params])


# which ufuncs CuPy implements each method for (the CuPy ufunc reference, "Methods"): every
# ufunc has the attribute, the others raise NotImplementedError when called
_UFUNC_METHOD_SUPPORT = {
    "reduce": {"add", "multiply"},
    "accumulate": {"add", "multiply"},
    "reduceat": {"add"},
    "at": {"add", "subtract", "maximum", "minimum", "bitwise_and", "bitwise_or",
           "bitwise_xor"},
}


# the dtypes CuPy's ufunc.at takes with an integer-array index (its atomics:
# cupy/_core/_routines_indexing.pyx, _scatter_op_single): it raises TypeError for the others
_UFUNC_AT_DTYPES = {
    "add": ("int32", "float16", "float32", "float64", "uint32", "uint64"),
    "subtract": ("int32", "uint32"),
    "maximum": ("int32", "float32", "float64", "uint32", "uint64"),
    "minimum": ("int32", "float32", "float64", "uint32", "uint64"),
    "bitwise_and": ("int32", "int64", "uint32", "uint64"),
    "bitwise_or": ("int32", "int64", "uint32", "uint64"),
    "bitwise_xor": ("int32", "int64", "uint32", "uint64"),
}


def _ufunc_at(np_at, short):
    allowed = _UFUNC_AT_DTYPES.get(short)

    def at(a, indices, *rest):
        keys = indices if isinstance(indices, tuple) else (indices,)
        integer_key = any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in keys)
        if allowed is not None and integer_key and np.asarray(a).dtype.name not in allowed:
            raise TypeError(f"cupy.{short}.at only supports {', '.join(allowed)}, as data type")
        return np_at(a, indices, *rest)
    return at


class _Ufunc(_Function):
    def __init__(self, qualname, np_ufunc, spec):
        super().__init__(qualname, np_ufunc, spec["params"])
        self.nin, self.nout = spec["nin"], spec["nout"]
        self._methods = set(spec["methods"])

    def __getattr__(self, name):
        if name in ("reduce", "accumulate", "reduceat", "outer", "at"):
            if name not in self._methods:
                raise AttributeError(f"{self.qualname} has no method {name} in CuPy")
            short = self.qualname.rsplit(".", 1)[-1]
            if name in _UFUNC_METHOD_SUPPORT and short not in _UFUNC_METHOD_SUPPORT[name]:
                def unsupported(*args, _q=f"{self.qualname}.{name}", **kwargs):
                    # CuPy has the attribute on every ufunc but implements it for a few
                    raise NotImplementedError(f"{_q} is not supported by CuPy")
                return unsupported
            fn = _Function(f"{self.qualname}.{name}", getattr(self.np_fn, name),
                           manifest()["ufunc_methods"][name])
            if name == "at":  # in place: the result is None either way
                fn.np_fn = _ufunc_at(getattr(self.np_fn, name), short)
            return fn
        if name in ("name", "types", "nargs"):
            return getattr(self.np_fn, {"name": "__name__"}.get(name, name))
        raise AttributeError(name)


def _linalg_fn(name, np_fn, params):
    """``cupy.linalg`` functions do not raise on the values of their input."""
    fn = _Function(f"linalg.{name}", np_fn, params)
    if name == "cholesky":
        fn.np_fn = _potrf_like_cholesky
    elif name in ("inv", "solve"):
        def call(*args, _np_fn=np_fn, **kwargs):
            with np.errstate(all="ignore"):
                try:
                    return _np_fn(*args, **kwargs)
                except np.linalg.LinAlgError:
                    # per matrix, as cuSOLVER's batched calls: a zero pivot makes the
                    # triangular solves divide by zero for that matrix only
                    return _per_matrix(_np_fn, name, args)
        fn.np_fn = call
    elif name == "svd":
        def svd(a, *args, _np_fn=np_fn, **kwargs):
            # cuSOLVER's gesvd does not fail on inf / NaN: NaN factors for that matrix
            bad = ~np.isfinite(a).all(axis=(-2, -1))
            if not bad.any():
                return _np_fn(a, *args, **kwargs)
            r = _np_fn(np.where(bad[..., None, None], 0, a), *args, **kwargs)
            parts = r if isinstance(r, tuple) else (r,)
            for p in parts:
                p[bad] = np.nan
            return r
        fn.np_fn = svd
    elif name in ("eig", "eigvals"):
        def eig(a, _np_fn=np_fn):
            # cupy.linalg.eig / eigvals (cuSOLVER's Xgeev, CuPy 14): always complex results
            # (NumPy's are real when every eigenvalue is); no error on inf / NaN (NaN there)
            cdt = np.result_type(a.dtype, np.complex64)
            bad = ~np.isfinite(a).all(axis=(-2, -1))
            r = _np_fn(np.where(bad[..., None, None], 0, a))
            parts = tuple(np.array(p, dtype=cdt) for p in (r if isinstance(r, tuple) else (r,)))
            for p in parts:
                p[bad] = np.nan
            return parts if isinstance(r, tuple) else parts[0]
        fn.np_fn = eig
    return fn


def _per_matrix(np_fn, name, args):
    a = args[0]
    if name == "inv":
        b = None
        out = np.empty(a.shape, dtype=np.result_type(a.dtype, np.float32))
    else:
        b = args[1]
        vector = b.ndim == 1
        batch = np.broadcast_shapes(a.shape[:-2], () if vector else b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = b if vector else np.broadcast_to(b, batch + b.shape[-2:])
        out = np.empty(batch + (b.shape if vector else b.shape[-2:]),
                       dtype=np.result_type(a.dtype, b.dtype))
    for idx in np.ndindex(*a.shape[:-2]):
        try:
            out[idx] = np_fn(a[idx]) if b is None else np_fn(a[idx], b if b.ndim == 1
                                                             else b[idx])
        except np.linalg.LinAlgError:
            out[idx] = np.inf
    return out


def _potrf_like_cholesky(a):
    """Lower Cholesky factor, per matrix, as LAPACK's unblocked ``potf2`` (and so cuSOLVER's
    ``potrf``, which CuPy calls, then ``tril``) leaves it: the factorisation stops at the
    first pivot that is not positive, writes that pivot to the diagonal, and the later
    columns keep the input's (finite) values; no error is raised."""
    a = np.array(a, dtype=np.result_type(a.dtype, np.float32) if a.dtype.kind != "c"
                 else a.dtype)
    out = np.tril(a)
    flat = out.reshape((-1,) + a.shape[-2:])
    for m in flat:
        n = m.shape[0]
        for j in range(n):
            d = m[j, j] - np.vdot(m[j, :j], m[j, :j])
            if not (d.real > 0):
                m[j, j] = d
                break
            m[j, j] = np.sqrt(d.real)
            for i in range(j + 1, n):
                m[i, j] = (m[i, j] - m[i, :j] @ np.conj(m[j, :j])) / m[j, j]
    return flat.reshape(a.shape)


class _Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, f):
        self.c_contiguous, self.f_contiguous = f.c_contiguous, f.f_contiguous
        self.owndata = f.owndata

    def __getitem__(self, key):
        return getattr(self, {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous",
                              "OWNDATA": "owndata"}[key])


class _MemoryPointer:
    def __init__(self, a, dev=0):
        self._a, self.ptr, self.device_id = a, a.ctypes.data, dev

    def copy_from_device_async(self, src, size, stream=None):
        ctypes.memmove(self.ptr, src.ptr, size)

    def copy_from_device(self, src, size):
        ctypes.memmove(self.ptr, src.ptr, size)


# --- cuBLAS: the one routine polyten calls itself (polyten_cuda.gemm) -----------------------
class CUBLASError(RuntimeError):
    """``cupy_backends.cuda.libs.cublas.CUBLASError``."""

    def __init__(self, status):
        self.status = status
        super().__init__({7: "CUBLAS_STATUS_INVALID_VALUE",
                          15: "CUBLAS_STATUS_NOT_SUPPORTED"}.get(status, str(status)))


# every cuBLAS call, in order: (routine, its arguments by name), for the tests
CUBLAS_CALLS: list = []
# cudaDataType_t -> (CUDA_R_ suffix, dtype name) (library_types.h); cublasComputeType_t
# allowed per data type
_CUDA_R = {2: ("16F", "float16"), 14: ("16BF", "bfloat16"), 0: ("32F", "float32"),
           1: ("64F", "float64")}
_CUDA_DATA = {code: name for code, (_, name) in _CUDA_R.items()}
_COMPUTE_32 = {68: "32F", 69: "32F_PEDANTIC", 74: "32F_FAST_16F", 75: "32F_FAST_16BF",
               77: "32F_FAST_TF32"}
_COMPUTE_64 = {70: "64F", 71: "64F_PEDANTIC"}


def _host_memory(ptr, dtype, shape, strides):
    """A NumPy view of ``shape`` with element ``strides`` at address ``ptr`` (the stand-in's
    device arrays live in host memory)."""
    dtype = np.dtype(dtype)
    extent = 1 + sum((n - 1) * st for n, st in zip(shape, strides)) if all(shape) else 0
    base = np.frombuffer((ctypes.c_char * (extent * dtype.itemsize)).from_address(ptr),
                         dtype=dtype)
    return np.lib.stride_tricks.as_strided(base, shape,
                                           tuple(st * dtype.itemsize for st in strides))


def _tf32(x):
    """float32 ``x`` rounded to TensorFloat-32 (10 significand bits, to nearest, ties to even):
    the operands of a GEMM with ``CUBLAS_COMPUTE_32F_FAST_TF32`` on a GPU with TF32 tensor
    cores, so that the stand-in shows what that precision does to a result."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)).astype(np.uint32)
    return np.where(np.isfinite(x), rounded.view(np.float32), x)


def _gemm_strided_batched_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                             B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount,
                             computeType, algo):
    """``cublasGemmStridedBatchedEx``, column-major as cuBLAS: ``C[i] = alpha op(A[i])
    op(B[i]) + beta C[i]`` with matrix ``i`` of X at ``X + i * strideX`` elements, with
    cuBLAS's argument checks (INVALID_VALUE, NOT_SUPPORTED)."""
    rows_a, cols_a = (m, k) if transa == 0 else (k, m)
    rows_b, cols_b = (k, n) if transb == 0 else (n, k)
    if (min(m, n, k, batchCount) < 0 or transa not in (0, 1) or transb not in (0, 1)
            or lda < max(1, rows_a) or ldb < max(1, rows_b) or ldc < max(1, m)):
        raise CUBLASError(7)
    name = _CUDA_DATA.get(Atype)
    allowed = _COMPUTE_64 if name == "float64" else _COMPUTE_32
    # C of the operands' type, or float32 for half operands (cuBLAS's mixed-precision GEMMs)
    c_ok = Ctype == Atype or (Ctype == 0 and name in ("float16", "bfloat16"))
    if name is None or Btype != Atype or not c_ok or computeType not in allowed:
        raise CUBLASError(15)
    dtype = _bf16() if name == "bfloat16" else np.dtype(name)
    c_dtype = dtype if Ctype == Atype else np.dtype("float32")
    _launch()
    CUBLAS_CALLS.append(("gemmStridedBatchedEx", dict(
        transa=transa, transb=transb, m=m, n=n, k=k, lda=lda, strideA=strideA, ldb=ldb,
        strideB=strideB, ldc=ldc, strideC=strideC, batchCount=batchCount, dtype=name,
        computeType=allowed[computeType])))
    if m == 0 or n == 0 or batchCount == 0:
        return
    acc = np.float64 if name == "float64" else np.float32
    al, be = (float(_host_memory(p, acc, (1,), (1,))[0]) for p in (alpha, beta))
    a = _host_memory(A, dtype, (batchCount, rows_a, cols_a), (strideA, 1, lda))
    b = _host_memory(B, dtype, (batchCount, rows_b, cols_b), (strideB, 1, ldb))
    c = _host_memory(C, c_dtype, (batchCount, m, n), (strideC, 1, ldc))
    op_a = a if transa == 0 else a.transpose(0, 2, 1)
    op_b = b if transb == 0 else b.transpose(0, 2, 1)
    if allowed[computeType] == "32F_FAST_TF32" and name == "float32":
        op_a, op_b = _tf32(op_a), _tf32(op_b)  # what the tensor cores read
    r = al * np.matmul(op_a.astype(acc), op_b.astype(acc))
    if be != 0:
        r += be * c.astype(acc)
    c[...] = r.astype(c_dtype)


_CUBLAS = types.SimpleNamespace(
    CUBLASError=CUBLASError, gemmStridedBatchedEx=_gemm_strided_batched_ex,
    **{"CUBLAS_COMPUTE_" + v: c for c, v in {**_COMPUTE_32, **_COMPUTE_64}.items()})



# cusolverDn<t>getrf, as CuPy binds it (``cupy.cuda.cusolver``): column-major, one matrix a
# call, pivots 1-based, a null devIpiv for no pivoting; LAPACK's getrf (through SciPy) computes
# what cuSOLVER would, so a test compares polyten's use of the binding with LAPACK's answer
CUSOLVER_CALLS: list = []
_SOLVER_DTYPES = {"s": "float32", "d": "float64", "c": "complex64", "z": "complex128"}


def _getrf_buffer_size(handle, m, n, A, lda):
    if min(m, n) < 0 or lda < max(1, m):
        raise ValueError("CUSOLVER_STATUS_INVALID_VALUE")
    return max(1, 64 * n)


def _unpivoted_lu(a):
    """getrf with a null devIpiv: elimination in place without row exchanges; ``info`` the
    first zero pivot (1-based), whose column is left unscaled."""
    m, n = a.shape
    info = 0
    for j in range(min(m, n)):
        d = a[j, j]
        if d == 0:
            info = info or j + 1
            continue
        a[j + 1:, j] /= d
        a[j + 1:, j + 1:] -= np.outer(a[j + 1:, j], a[j, j + 1:])
    return info


def _getrf_routine(prefix):
    dtype = np.dtype(_SOLVER_DTYPES[prefix])

    def getrf(handle, m, n, A, lda, Workspace, devIpiv, devInfo):
        if min(m, n) < 0 or lda < max(1, m):
            raise ValueError("CUSOLVER_STATUS_INVALID_VALUE")
        _launch()
        CUSOLVER_CALLS.append((prefix + "getrf", dict(m=m, n=n, lda=lda, pivot=bool(devIpiv))))
        a = _host_memory(A, dtype, (m, n), (1, lda))
        if devIpiv:
            from scipy.linalg import lapack
            lu, piv, info = lapack.get_lapack_funcs("getrf", dtype=dtype)(np.array(a))
            a[...] = lu
            _host_memory(devIpiv, np.int32, (min(m, n),), (1,))[...] = piv + 1
        else:
            work = np.array(a)
            info = _unpivoted_lu(work)
            a[...] = work
        _host_memory(devInfo, np.int32, (1,), (1,))[0] = info
    return getrf


_CUSOLVER = types.SimpleNamespace(
    **{p + "getrf": _getrf_routine(p) for p in _SOLVER_DTYPES},
    **{p + "getrf_bufferSize": _getrf_buffer_size for p in _SOLVER_DTYPES})

def _wrap_indices(idx, n):
    """Integer indices into an axis of ``n``, wrapped around as CuPy's gathers and scatters
    do (out-of-range indices never raise and never read outside the array)."""
    if n > 0 and isinstance(idx, np.ndarray) and idx.dtype.kind in "iu":
        return np.mod(idx, n)
    return idx


def _consumes(k) -> int:
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, np.ndarray) and k.dtype == np.bool_:
        return max(k.ndim, 1)
    return 1


def _key(key, shape):
    """An index for a device array of ``shape``: device index arrays unwrapped (a boolean mask
    is a synchronisation: the result's shape depends on its values), host index arrays and
    lists copied to the device as CuPy does, and integer index arrays wrapped around."""
    single = key.__class__ is not tuple
    items = []
    for k in ((key,) if single else key):
        if k.__class__ is DeviceArray:
            if k.dtype == np.bool_ and k.ndim > 0:
                _count("sync", "boolean-mask index")
            k = k._a
        elif isinstance(k, (np.ndarray, list)):
            _count("h2d", "host index array")
            k = np.asarray(k)
        items.append(k)
    total = sum(_consumes(k) for k in items)
    axis, out = 0, []
    for k in items:
        if k is Ellipsis:
            axis = len(shape) - (total - axis)
        elif _consumes(k) == 1 and axis < len(shape):
            k = _wrap_indices(k, shape[axis])
        out.append(k)
        axis += _consumes(k)
    return out[0] if single else tuple(out)


def _axis_len(a, axis):
    return a.size if axis is None else a.shape[axis]


# functions whose index operands CuPy wraps around: (args, kwargs) -> (args, kwargs)
def _wrap_take(args, kw):
    a, idx, *rest = args
    axis = rest[0] if rest else kw.get("axis")
    return (a, _wrap_indices(idx, _axis_len(a, axis)), *rest), kw


def _wrap_put_along_axis(args, kw):
    a, idx, *rest = args
    axis = rest[1] if len(rest) > 1 else kw.get("axis")
    return (a, _wrap_indices(idx, _axis_len(a, axis)), *rest), kw


def _wrap_ufunc_at(args, kw):
    a, idx, *rest = args
    if isinstance(idx, tuple):
        idx = tuple(_wrap_indices(i, a.shape[d]) for d, i in enumerate(idx))
    else:
        idx = _wrap_indices(idx, a.shape[0] if a.ndim else 0)
    return (a, idx, *rest), kw


_INDEX_WRAPPERS = {"take": _wrap_take, "take_along_axis": _wrap_take,
                   "put_along_axis": _wrap_put_along_axis, "at": _wrap_ufunc_at}


def _binary(ufunc_name, reflected=False):
    def op(self, other):
        fn = getattr(_MODULE[0], ufunc_name)
        return fn(other, self) if reflected else fn(self, other)
    return op


def _inplace(ufunc_name):
    def op(self, other):
        getattr(_MODULE[0], ufunc_name)(self, other, out=self)
        return self
    return op


def _unary(ufunc_name):
    def op(self):
        return getattr(_MODULE[0], ufunc_name)(self)
    return op


_MODULE: list = [None]  # the stand-in module the operators dispatch to
_HOST_READ_METHODS = {"get", "item", "tolist", "tobytes", "tofile", "dump", "dumps"}


def _memcpy_overlap(a, key, value) -> bool:
    """CuPy's ``_scatter_op`` copies a value of the target view's shape, strides and dtype,
    C-contiguous, with one cudaMemcpyAsync, which is undefined for overlapping memory; the
    stand-in copies such a small overlapping value forward, element by element, as a naive
    copy would (``x[1:] = x[:-1]`` smears ``x[0]``).  True when it did."""
    if any(isinstance(e, np.ndarray) for e in (key if isinstance(key, tuple) else (key,))):
        return False
    dst = a[key]
    if not (isinstance(dst, np.ndarray) and dst.shape == value.shape and dst.strides ==
            value.strides and dst.dtype == value.dtype and dst.flags.c_contiguous and
            0 < dst.size <= 4096 and np.shares_memory(dst, value)):
        return False
    d, v = dst.reshape(-1), value.reshape(-1)
    for i in range(d.size):
        d[i] = v[i]
    _launch()
    return True


class DeviceArray:
    """A ``cupy.ndarray`` stand-in: a NumPy buffer behind CuPy's interface."""

    __slots__ = ("_a", "_dev", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, a, dev=None):
        self._a = a
        self._dev = _current() if dev is None else dev

    # --- the boundary --------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise StandinError("Implicit conversion to a NumPy array is not allowed. Please use "
                           "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = getattr(_MODULE[0], ufunc.__name__, None)
        if fn is None:
            return NotImplemented
        if method != "__call__":
            fn = getattr(fn, method)
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        mod = {"numpy": "cupy", "numpy.linalg": "cupy.linalg"}.get(func.__module__)
        if mod is None or func.__name__ not in manifest()["modules"][mod]:
            return NotImplemented
        target = _MODULE[0] if mod == "cupy" else _MODULE[0].linalg
        return getattr(target, func.__name__)(*args, **kwargs)

    def get(self, stream=None, order="C", out=None, blocking=True):
        _count("d2h", "ndarray.get")
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order)

    def set(self, arr, stream=None):
        base = arr
        while base is not None and not isinstance(base, PinnedMemoryPointer):
            base = getattr(base, "base", None)
        # from page-locked memory the copy is asynchronous (DMA); from pageable memory the
        # host waits for it
        _count("h2d" if base is None else "h2d_async", "ndarray.set")
        if base is not None:
            on = stream if stream is not None else _current_stream(self._dev)
            QUEUED[(self._dev, on.ptr)]["h2d_async"] += 1
        if not isinstance(arr, np.ndarray):
            raise StandinError(f"ndarray.set takes a numpy.ndarray, not {type(arr)}")
        np.copyto(self._a, arr, casting="no")

    # --- attributes and methods from CuPy's ndarray ------------------------------------------
    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def strides(self):
        return self._a.strides

    @property
    def nbytes(self):
        return self._a.nbytes

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def flags(self):
        return _Flags(self._a.flags)

    @property
    def device(self):
        return _StrictDevice(self._dev)

    @property
    def data(self):
        return _MemoryPointer(self._a, self._dev)

    @property
    def base(self):
        b = self._a.base
        return DeviceArray(b, self._dev) if isinstance(b, np.ndarray) else None

    @property
    def __cuda_array_interface__(self):
        d = dict(self._a.__array_interface__)
        d["version"] = 3
        d["stream"] = 1
        return d

    def __getattr__(self, name):
        spec = manifest()["ndarray"].get(name)
        if spec is None:
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}' "
                                 f"(CuPy {_version()})")
        value = getattr(self._a, name)
        if spec["kind"] == "attribute":  # T, mT, real, imag, flat: views on this device
            return _wrap(value, self._dev)
        if name in _HOST_READ_METHODS:
            def method(*args, **kwargs):
                _check_signature(f"ndarray.{name}", spec["params"], args, kwargs)
                _count("d2h", f"ndarray.{name}")
                return value(*args, **kwargs)
            return method
        syncs = name in _SYNCING
        if name == "take":  # as the function, with the array first
            fn = _Function("ndarray.take", np.take, None)
            return lambda *args, **kwargs: fn(self, *args, **kwargs)
        fn = _Function(f"ndarray.{name}", value, spec["params"], syncs=syncs)
        fn.owner_dev = self._dev
        return fn

    # --- Python protocols -------------------------------------------------------------------
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (DeviceArray(self._a[i], self._dev) for i in range(len(self._a)))

    def __getitem__(self, key):
        k = _key(key, self._a.shape)
        if any(isinstance(e, np.ndarray) for e in (k if isinstance(k, tuple) else (k,))):
            _check_devices("ndarray.__getitem__", [self._dev] + _devices_of(key, []))
            _launch()
            return _wrap(self._a[k])  # a gather kernel on the current device
        return _wrap(self._a[k], self._dev)  # a view

    def __setitem__(self, key, value):
        _check_devices("ndarray.__setitem__", [self._dev] + _devices_of((key, value), []))
        k = _key(key, self._a.shape)
        if value.__class__ is DeviceArray:
            value = value._a
            if _memcpy_overlap(self._a, k, value):
                return
        elif _negative_zero(value) and not any(isinstance(e, np.ndarray) for e in (
                k if isinstance(k, tuple) else (k,))) and self._a[k].flags.c_contiguous:
            value = 0  # _scatter_op fills the view: a memset for a zero, without its sign
        elif isinstance(value, np.ndarray):
            if not any(isinstance(e, np.ndarray) for e in (k if isinstance(k, tuple) else (k,))):
                if value.shape != ():  # CuPy's basic-index assignment fills with a scalar
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            else:
                _count("h2d", "host array assigned into a device array")
        self._a[k] = value
        _launch()

    def _scalar(self, conv, what):
        _count("d2h", what)
        return conv(self._a)

    def __bool__(self):
        return self._scalar(bool, "bool(array)")

    def __float__(self):
        return self._scalar(float, "float(array)")

    def __int__(self):
        return self._scalar(int, "int(array)")

    def __complex__(self):
        return self._scalar(complex, "complex(array)")

    def __index__(self):
        return self._scalar(operator.index, "operator.index(array)")

    def __repr__(self):
        return self._scalar(repr, "repr(array)")

    def __str__(self):
        return self._scalar(str, "str(array)")

    def __format__(self, spec):
        return self._scalar(lambda a: format(a, spec), "format(array)")

    def __copy__(self):
        return _wrap(self._a.copy())

    def __deepcopy__(self, memo):
        return _wrap(self._a.copy())

    def __reduce__(self):
        _count("d2h", "pickle(array)")
        return (_rebuild, (self._a.copy(),))

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, **kwargs):
        raise StandinError("DLPack export of device arrays is not emulated by the stand-in")

    __add__, __radd__, __iadd__ = _binary("add"), _binary("add", True), _inplace("add")
    __sub__, __rsub__, __isub__ = (_binary("subtract"), _binary("subtract", True),
                                   _inplace("subtract"))
    __mul__, __rmul__, __imul__ = (_binary("multiply"), _binary("multiply", True),
                                   _inplace("multiply"))
    __truediv__, __rtruediv__, __itruediv__ = (_binary("true_divide"),
                                               _binary("true_divide", True),
                                               _inplace("true_divide"))
    __floordiv__, __rfloordiv__, __ifloordiv__ = (_binary("floor_divide"),
                                                  _binary("floor_divide", True),
                                                  _inplace("floor_divide"))
    __mod__, __rmod__, __imod__ = (_binary("remainder"), _binary("remainder", True),
                                   _inplace("remainder"))
    __pow__, __rpow__, __ipow__ = _binary("power"), _binary("power", True), _inplace("power")
    __matmul__, __rmatmul__ = _binary("matmul"), _binary("matmul", True)
    __and__, __rand__, __iand__ = (_binary("bitwise_and"), _binary("bitwise_and", True),
                                   _inplace("bitwise_and"))
    __or__, __ror__, __ior__ = (_binary("bitwise_or"), _binary("bitwise_or", True),
                                _inplace("bitwise_or"))
    __xor__, __rxor__, __ixor__ = (_binary("bitwise_xor"), _binary("bitwise_xor", True),
                                   _inplace("bitwise_xor"))
    __lshift__, __rlshift__ = _binary("left_shift"), _binary("left_shift", True)
    __rshift__, __rrshift__ = _binary("right_shift"), _binary("right_shift", True)
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __neg__, __pos__, __abs__ = _unary("negative"), _unary("positive"), _unary("absolute")
    __invert__ = _unary("invert")

    def __divmod__(self, other):
        return _MODULE[0].divmod(self, other)


def _rebuild(a):
    return DeviceArray(a)


class _LegacyRandom:
    """NumPy behind ``cupy.random``'s module functions: CuPy's take ``dtype`` where NumPy's
    legacy ones do not, so the samplers come from a Generator where it has them."""

    def __init__(self):
        self._gen = np.random.default_rng(0)

    def seed(self, seed=None):
        self._gen = np.random.default_rng(seed)

    def __getattr__(self, name):
        fn = getattr(self._gen, name, None)
        return fn if fn is not None else getattr(np.random, name)


class _Generator:
    """``cupy.random.Generator``: only the methods CuPy's Generator has."""

    def __init__(self, gen):
        self._gen = gen

    def __getattr__(self, name):
        spec = manifest()["Generator"].get(name)
        if spec is None:
            raise AttributeError(f"'cupy.random.Generator' object has no attribute '{name}' "
                                 f"(CuPy {_version()})")
        return _Function(f"random.Generator.{name}", getattr(self._gen, name), spec["params"])


class _StrictDevice:
    """``cupy.cuda.Device``: a context that makes its device the current one."""

    def __init__(self, index=None):
        self.id = _current() if index is None else int(index)
        if not 0 <= self.id < _DEVICE_COUNT[0]:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")
        self._saved = []

    def __enter__(self):
        self._saved.append(_current())
        _CURRENT.dev = self.id
        return self

    def __exit__(self, *exc):
        _CURRENT.dev = self._saved.pop()
        return False

    def use(self):
        _CURRENT.dev = self.id

    def synchronize(self):
        _count("sync", "Device.synchronize")  # cudaDeviceSynchronize: the host waits

    def __eq__(self, other):
        return isinstance(other, _StrictDevice) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


class _CUDARuntimeError(RuntimeError):
    """As ``cupy_backends.cuda.api.runtime.CUDARuntimeError`` (a RuntimeError)."""


def _invalid_handle(why):
    return _CUDARuntimeError(f"cudaErrorInvalidResourceHandle: invalid resource handle "
                             f"(stand-in: {why})")


_HANDLES = iter(range(0x7F0000001000, 1 << 62, 0x100))  # fake handles, never reused


class _Event:
    """``cupy.cuda.Event``: belongs to the device current at its creation; a recorded event is
    done at once (kernels run at once here) and keeps the host time of its record."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        if interprocess and not disable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self.ptr = next(_HANDLES)
        self._dev, self._timing, self._time = _current(), not disable_timing, None

    @property
    def done(self):
        return True  # also before any record, as cudaEventQuery

    def record(self, stream=None):
        stream = _current_stream(_current()) if stream is None else stream
        dev = _current() if stream.device_id == -1 else stream.device_id
        if dev != self._dev:
            raise _invalid_handle(f"an event of device {self._dev} recorded on a stream of "
                                  f"device {dev}")
        self._time = time.perf_counter()

    def synchronize(self):
        if self._time is not None:  # cudaEventSynchronize: the host waits for the record
            _count("sync", "Event.synchronize")


def _get_elapsed_time(start_event, end_event):
    """``cupy.cuda.get_elapsed_time``: milliseconds between the two records."""
    for e in (start_event, end_event):
        if not e._timing:
            raise _invalid_handle("an event created with disable_timing=True")
        if e._time is None:
            raise _invalid_handle("an event that was never recorded")
    if start_event._dev != end_event._dev:
        raise _invalid_handle("events of two devices")
    return (end_event._time - start_event._time) * 1e3


class _Stream:
    """``cupy.cuda.Stream``: ``ptr`` 0 and ``device_id`` -1 for the null stream (the current
    device's legacy default stream), else a new handle on the current device.  A context
    manager that makes it the current stream of its device, with CuPy's check that its device
    is the current one."""

    null = None  # the singleton, set below

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        if ptds:
            raise StandinError("the per-thread default stream is not emulated by the stand-in")
        if null:
            self.ptr, self.device_id, self._priority = 0, -1, 0
        else:
            self.ptr, self.device_id = next(_HANDLES), _current()
            # CUDA clamps to the device's range: [-5, 0] on current NVIDIA GPUs
            self._priority = min(0, max(-5, 0 if priority is None else int(priority)))
        self._non_blocking = bool(non_blocking) and not null

    def __eq__(self, other):
        return isinstance(other, _Stream) and other.ptr == self.ptr

    def __hash__(self):
        return self.ptr

    def __repr__(self):
        return f"<Stream {self.ptr} (device {self.device_id})>"

    def _check_device(self):
        cur = _current()
        dev = cur if self.device_id == -1 else self.device_id
        if dev != cur:
            raise RuntimeError(f"The device that the stream is created on ({dev}) does not "
                               f"match with the current device ({cur})")
        return dev

    def __enter__(self):
        dev = self._check_device()
        _stream_stack(dev).append(self)
        _entered().append(dev)
        return self

    def __exit__(self, *args):
        _stream_stack(_entered().pop()).pop()

    def use(self):
        _stream_stack(self._check_device())[-1] = self
        return self

    @property
    def done(self):
        return True

    @property
    def priority(self):
        return self._priority

    @property
    def is_non_blocking(self):
        return self._non_blocking

    def synchronize(self):
        _count("sync", "Stream.synchronize")  # cudaStreamSynchronize: the host waits

    def record(self, event=None):
        event = _Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        pass  # cudaStreamWaitEvent: the device waits, not the host (an event of any device)


_Stream.null = _Stream(null=True)
_STREAMS = threading.local()  # per thread, as CuPy's: the stream stacks of the devices


def _entered() -> list:
    """The devices of the streams entered in this thread, innermost last."""
    devs = getattr(_STREAMS, "devs", None)
    if devs is None:
        devs = _STREAMS.devs = []
    return devs


def _stream_stack(dev) -> list:
    stacks = getattr(_STREAMS, "stacks", None)
    if stacks is None:
        stacks = _STREAMS.stacks = {}
    stack = stacks.get(dev)
    if stack is None:
        stack = stacks[dev] = [_Stream.null]
    return stack


def _current_stream(dev) -> "_Stream":
    return _stream_stack(dev)[-1]


def _get_current_stream(device_id=-1):
    """``cupy.cuda.get_current_stream``: of the current device by default."""
    return _current_stream(_current() if device_id == -1 else device_id)


class _Memory:
    """One allocation of the stand-in pool; when the last array using it goes, its block
    stays in the pool's cache (counted by ``total_bytes``) until ``free_all_blocks``."""

    def __init__(self, pool, size):
        self.pool, self.size, self.device_id = pool, size, _current()
        pool.used[self.device_id] = pool.used.get(self.device_id, 0) + size

    def __del__(self):
        self.pool.used[self.device_id] -= self.size
        free = self.pool.cached.setdefault(self.device_id, {})
        free[self.size] = free.get(self.size, 0) + 1


class _Pool:
    """``cupy.get_default_memory_pool()``, per device as CuPy's: sizes rounded up to 512
    bytes; a freed block is cached and reused by an allocation of its size (CuPy also splits
    larger ones); ``total_bytes`` counts live and cached blocks, ``free_all_blocks`` releases
    the current device's cached ones.  ``set_limit`` caps ``total_bytes``: past it an
    allocation raises CuPy's OutOfMemoryError at once, cached blocks or not
    (``SingleDeviceMemoryPool._try_malloc``: it frees them only when cudaMalloc itself
    fails; size 0 is no limit)."""

    def __init__(self):
        self.used = {}
        self.cached = {}
        self.limits = {}

    def malloc(self, size):
        size = -(-size // 512) * 512
        free = self.cached.setdefault(_current(), {})
        if free.get(size):
            free[size] -= 1
        else:
            limit = self.get_limit()
            if limit and self.total_bytes() + size > limit:
                raise OutOfMemoryError(size, self.total_bytes(), limit)
        return _Memory(self, size)

    def set_limit(self, size=None, fraction=None):
        if fraction is not None:
            if size is not None:
                raise ValueError("size and fraction cannot be specified at one time")
            if not 0 <= fraction <= 1:
                raise ValueError(f"memory limit fraction out of range: {fraction}")
            size = fraction * _STANDIN_MEMORY
        if size is not None and size < 0:
            raise ValueError(f"memory limit size out of range: {size}")
        self.limits[_current()] = int(size or 0)  # a size_t in CuPy: a fraction truncates

    def get_limit(self):
        return self.limits.get(_current(), 0)

    def used_bytes(self):  # of the current device, as CuPy's pool
        return self.used.get(_current(), 0)

    def free_bytes(self):
        return sum(n * k for n, k in self.cached.get(_current(), {}).items())

    def total_bytes(self):
        return self.used_bytes() + self.free_bytes()

    def free_all_blocks(self, stream=None):
        self.cached[_current()] = {}


_POOL = _Pool()
_STANDIN_MEMORY = 16 << 30    # what the stand-in's GPUs report as their memory
_ALLOCATOR = [_POOL.malloc]   # cupy.cuda.set_allocator replaces it
_HELD: dict = {}              # id(owning NumPy buffer) -> its allocation


def _allocate(a, dev) -> None:
    """Charge a new owning buffer to the allocator of its device, as CuPy allocates every
    array from it."""
    if a.base is None and a.nbytes and id(a) not in _HELD:
        saved = _current()
        _CURRENT.dev = dev
        try:
            _HELD[id(a)] = _ALLOCATOR[0](a.nbytes)
        finally:
            _CURRENT.dev = saved
        weakref.finalize(a, _HELD.pop, id(a), None)


class PinnedMemoryPointer(bytearray):
    """Page-locked host memory (a bytearray here): ``cupyx.empty_pinned`` arrays are views of
    one, so the pinned check can follow ``.base``."""


def _empty_pinned(shape, dtype=float, order="C"):
    # as cupyx.empty_pinned: an ndarray whose buffer (its .base) is the pinned allocation
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = int(np.prod(shape)) * dtype.itemsize
    return np.ndarray(shape, dtype=dtype, buffer=PinnedMemoryPointer(max(n, 1)), order=order)


class _StrictModule(types.ModuleType):
    """A namespace whose names come from the manifest, built on first use."""

    def __init__(self, name, np_mod, section):
        super().__init__(name)
        self._np_mod, self._section = np_mod, section

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        spec = manifest()["modules"][self._section].get(name)
        if spec is None:
            raise AttributeError(f"module '{self._section}' has no attribute '{name}' "
                                 f"(CuPy {_version()})")
        value = self._make(name, spec)
        setattr(self, name, value)
        return value

    def _make(self, name, spec):
        np_obj = getattr(self._np_mod, name, None)
        if np_obj is None:
            raise AttributeError(f"{self._section}.{name} exists in CuPy but is not emulated "
                                 "by the stand-in")
        if spec["kind"] == "ufunc":
            return _Ufunc(f"{self._section}.{name}", np_obj, spec)
        if spec["kind"] == "function":
            return _Function(f"{self._section}.{name}", np_obj, spec["params"],
                             syncs=name in _SYNCING)
        return np_obj  # dtypes, classes (iinfo, finfo, dtype), constants


def _host_to_device(np_fn, qualname, params):
    def fn(a, *args, **kwargs):
        _check_signature(qualname, params, (a,) + args, kwargs)
        kwargs.pop("blocking", None)
        if a.__class__ is DeviceArray:
            return _wrap(np_fn(a._a, *args, **kwargs))
        if isinstance(a, (list, tuple)) and any(v.__class__ is DeviceArray for v in a):
            a = [v._a if v.__class__ is DeviceArray else v for v in a]  # device-side stack
        else:
            _count("h2d", qualname)
        r = np.array(np_fn(a, *args, **kwargs))
        if r.ndim == 0 and r.dtype.kind in "fc" and _negative_zero(r.item()):
            r = np.zeros((), r.dtype)  # _array_default fills a 0-d array: a memset for zero
        return _wrap(r)
    fn.__name__ = qualname
    return fn


def strict_cupy() -> types.ModuleType:
    """The strict stand-in: ``cupy`` (with ``linalg``, ``random``, ``cuda``,
    ``lib.stride_tricks``), ``cupyx`` and ``cupyx.scipy.special`` modules."""
    m = manifest()
    mod = _StrictModule("cupy", np, "cupy")
    mod.__version__ = f"{m['cupy_version']} (stand-in)"
    mod.ndarray = DeviceArray
    mod._polyten_standin = sys.modules[__name__]  # tests that need a real GPU look for it
    top = m["modules"]["cupy"]
    mod.matmul = _Function("cupy.matmul", _cublas_matmul, top["matmul"]["params"])
    for name in ("asarray", "array", "asanyarray"):
        setattr(mod, name, _host_to_device(getattr(np, name), name, top[name]["params"]))

    def asnumpy(a, stream=None, order="C", out=None, blocking=True):
        if a.__class__ is DeviceArray:
            return a.get(order=order, out=out)
        return np.asarray(a, order=order)
    mod.asnumpy = asnumpy
    mod.ElementwiseKernel = _StrictElementwiseKernel
    mod.ReductionKernel = _StrictReductionKernel
    mod.RawKernel = _StrictRawKernel

    def from_dlpack(x, *args, **kwargs):
        if x.__class__ is DeviceArray:
            return x
        raise StandinError("cupy.from_dlpack of a host object is not emulated by the stand-in")
    mod.from_dlpack = from_dlpack
    pinned_pool = _Pool()
    mod.get_default_memory_pool = lambda: _POOL
    mod.get_default_pinned_memory_pool = lambda: pinned_pool

    linalg = _StrictModule("cupy.linalg", np.linalg, "cupy.linalg")
    for name, spec in m["modules"]["cupy.linalg"].items():
        if spec["kind"] == "function" and hasattr(np.linalg, name):
            setattr(linalg, name, _linalg_fn(name, getattr(np.linalg, name), spec["params"]))
    mod.linalg = linalg
    fft = _StrictModule("cupy.fft", np.fft, "cupy.fft")  # cuFFT: numpy.fft's names
    mod.fft = fft

    random = _StrictModule("cupy.random", _LegacyRandom(), "cupy.random")
    random.default_rng = lambda seed=None: _Generator(np.random.default_rng(seed))
    random.Generator = _Generator
    mod.random = random

    lib = types.ModuleType("cupy.lib")
    lib.stride_tricks = _StrictModule("cupy.lib.stride_tricks", np.lib.stride_tricks,
                                      "cupy.lib.stride_tricks")
    mod.lib = lib

    def properties(i):
        if not 0 <= i < _DEVICE_COUNT[0]:
            raise _CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        return {"name": b"CuPy stand-in", "major": CAPABILITY[0][0], "minor": CAPABILITY[0][1],
                "totalGlobalMem": _STANDIN_MEMORY, "multiProcessorCount": 132,
                "l2CacheSize": 50 << 20}

    def mem_get_info():  # of the current device
        return _STANDIN_MEMORY - _POOL.total_bytes(), _STANDIN_MEMORY

    runtime = types.SimpleNamespace(getDevice=_current, getDeviceCount=lambda: _DEVICE_COUNT[0],
                                    getDeviceProperties=properties, memGetInfo=mem_get_info,
                                    **{"CUDA_R_" + r: c for c, (r, _) in _CUDA_R.items()})
    mod.cuda = types.SimpleNamespace(
        cublas=_CUBLAS, get_cublas_handle=lambda: 0x5000 + _current(), cusolver=_CUSOLVER,
        device=types.SimpleNamespace(get_cusolver_handle=lambda: 0x6000 + _current()),
        Device=_StrictDevice, runtime=runtime, Event=_Event, Stream=_Stream,
        get_current_stream=_get_current_stream, get_elapsed_time=_get_elapsed_time,
        PinnedMemoryPointer=PinnedMemoryPointer,
        set_allocator=_set_allocator, get_allocator=lambda: _ALLOCATOR[0],
        MemoryPointer=_MemoryPointer, memory=_MEMORY_MODULE, nvtx=_NVTX)

    cupyx = _StrictModule("cupyx", types.SimpleNamespace(), "cupyx")
    cupyx.empty_pinned = _empty_pinned
    cupyx.zeros_pinned = lambda shape, dtype=float, order="C": _fill(
        _empty_pinned(shape, dtype, order))
    special = _StrictModule("cupyx.scipy.special", types.SimpleNamespace(), "cupyx.scipy.special")
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover
        import math
        erf = np.vectorize(math.erf, otypes=[float])
    special.erf = _Function("cupyx.scipy.special.erf", erf, None)
    scipy_mod = types.ModuleType("cupyx.scipy")
    scipy_mod.special = special
    cupyx.scipy = scipy_mod
    mod._core = _CORE
    mod._standin_submodules = {"cupy.linalg": linalg, "cupy.fft": fft, "cupy.random": random,
                               "cupy.cuda": mod.cuda, "cupyx": cupyx, "cupyx.scipy": scipy_mod,
                               "cupyx.scipy.special": special}
    _MODULE[0] = mod
    return mod


def _set_allocator(fn=None):
    _ALLOCATOR[0] = _POOL.malloc if fn is None else fn


def _fill(a):
    a[...] = 0
    return a


class _StrictElementwiseKernel(ElementwiseKernel):
    def __call__(self, *args):
        _check_devices(f"ElementwiseKernel {self.name}", _devices_of(args, []))
        _launch()
        res = super().__call__(*_unwrap(args, f"ElementwiseKernel {self.name}"))
        n_in = len(self.ins)
        if len(args) > n_in:  # outputs passed in: return them (the same objects)
            outs = args[n_in:]
            return outs[0] if len(outs) == 1 else tuple(outs)
        return _wrap(res)


class _StrictReductionKernel(ReductionKernel):
    def __call__(self, *args, out, axis, keepdims=False):
        _check_devices(f"ReductionKernel {self.name}", _devices_of(args + (out,), []))
        _launch()
        super().__call__(*_unwrap(args, f"ReductionKernel {self.name}"),
                         out=_unwrap(out, self.name), axis=axis, keepdims=keepdims)
        return out


class _StrictRawKernel(RawKernel):
    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        _check_devices(f"RawKernel {self.name}", _devices_of(tuple(args), []))
        _launch()
        return super().__call__(grid, block, _unwrap(tuple(args), f"RawKernel {self.name}"),
                                shared_mem=shared_mem)


def install(mod=None, devices: int = 1) -> types.ModuleType:
    """Put the strict stand-in in ``sys.modules`` as ``cupy``, ``cupyx``, ... for good (for a
    subprocess that then uses ``polyten.set_backend("cuda")``), with ``devices`` GPUs."""
    import importlib.machinery
    _DEVICE_COUNT[0] = devices
    mod = mod or strict_cupy()
    mod.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    sys.modules["cupy"] = mod
    for name, sub in mod._standin_submodules.items():
        if isinstance(sub, types.ModuleType):
            sub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = sub
    return mod
