"""One-off GPU probes of CuPy behaviour (run by hand on a device machine)."""
import sys
import traceback

import numpy as np

sys.path.insert(0, "tests")


def probe(name, fn):
    try:
        print(f"[{name}]", fn(), flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"[{name}] RAISED {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3)


import cupy as cp  # noqa: E402
import ml_dtypes  # noqa: E402

bf = np.dtype(ml_dtypes.bfloat16)
x = cp.ones(3, dtype=bf)
probe("bf16+2.5", lambda: (x + 2.5).dtype)
probe("bf16+2", lambda: (x + 2).dtype)
probe("bf16*np.float32", lambda: cp.multiply(x, np.float32(2.5)).dtype)
probe("bf16*bf16scalar", lambda: (cp.multiply(x, ml_dtypes.bfloat16(2.5)).dtype,
                                  cp.multiply(x, ml_dtypes.bfloat16(2.5)).get()))
probe("bf16 0-d array", lambda: cp.multiply(x, cp.full((), 2.5, dtype=bf)).dtype)
probe("bf16 maximum", lambda: cp.maximum(x, 2.5).dtype)
probe("bf16 inplace", lambda: (cp.add(x, 2.5, out=x), x.dtype, x.get())[1:])
probe("logical_xor complex", lambda: cp.logical_xor(cp.ones(2, bool), True).dtype)


def bits(a):
    a = cp.asnumpy(a)
    return [hex(v) for v in a.view(f"uint{a.dtype.itemsize * 8}").reshape(-1)]


from polyten_cuda import fused  # noqa: E402
rk = fused.elementwise(cp, "radix_key")
for dt, u in (("float32", 0xFFC00000), ("float64", 0xFFF8000000000000)):
    neg = np.frombuffer(np.array(u, f"uint{np.dtype(dt).itemsize * 8}").tobytes(), dt)[0]
    v = np.array([1.0, neg, 0.0, -0.0, -np.inf, np.nan, 2.5, neg, -1.0], dt)
    g = cp.asarray(v)
    probe(f"radix_key {dt}", lambda: bits(rk(g, True)))
    probe(f"copysign {dt}", lambda: bits(cp.copysign(g, 1.0)))
    probe(f"argsort raw {dt}", lambda: cp.argsort(g, kind="stable").get().tolist())
    probe(f"argsort key {dt}", lambda: cp.argsort(rk(g, True), kind="stable").get().tolist())
    probe(f"sort key {dt}", lambda: bits(cp.sort(rk(g, True))))

a = cp.full((2,), complex(-0.0, 0.0), dtype=cp.complex64)
probe("full complex", lambda: bits(a.view(cp.float32)))
r = a.real
probe("real view", lambda: (r.data.ptr == a.data.ptr, r.strides, r.flags.c_contiguous))
cp.negative(r, out=r)
probe("after negative", lambda: bits(a.view(cp.float32)))
import polyten as pt  # noqa: E402
from polyten_cpu.kernels._util import full_signed  # noqa: E402
probe("full_signed", lambda: bits(full_signed(cp, (2,), complex(-0.0, 0.0),
                                              np.dtype("complex64")).view(cp.float32)))
probe("pt.full", lambda: bits(pt.full((2,), complex(-0.0, 0.0), device="cuda")._data
                              .view(cp.float32)))

pool = cp.get_default_memory_pool()
probe("pool", lambda: (type(pool), cp.cuda.get_allocator()))
pt.ones(1, device="cuda")
pt.cuda.empty_cache()
total = pt.cuda.get_device_properties().total_memory
probe("before", lambda: (pool.used_bytes(), pool.total_bytes(), pool.get_limit()))
pt.cuda.set_per_process_memory_fraction((pt.cuda.memory_reserved() + (8 << 20)) / total)
probe("limit", lambda: (pool.get_limit(), pool.total_bytes()))
probe("cp.empty 64MiB", lambda: (cp.empty(16 << 20, dtype=cp.float32).nbytes,
                                 pool.total_bytes()))
probe("pool.malloc 64MiB", lambda: pool.malloc(64 << 20).mem.size)
probe("pt.empty 64MiB", lambda: pt.empty(16 << 20, device="cuda").shape)
pt.cuda.set_per_process_memory_fraction(1.0)

xs = cp.asarray(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5], np.float32))
ys = cp.asarray(np.array([-2.5, 1.5, -0.0, 0.0, -np.inf, np.inf, np.nan], np.float32))
probe("nextafter f32", lambda: cp.nextafter(xs, ys).get().tolist())
probe("nextafter f32 tiny", lambda: cp.nextafter(cp.zeros(1, cp.float32),
                                                 cp.ones(1, cp.float32)).get().tolist())
xd = cp.asarray(np.array([2.675, 1.005, 0.125, 0.285, 1234.5678, 3e4]))
probe("around f64 40", lambda: (cp.around(xd, 40).get() - np.round(xd.get(), 40)).tolist())

import test_cuda as tc  # noqa: E402
for opt in ("sgd", "adam"):
    step = tc._mlp_step("mse", opt)
    for i in (2, 3, 4):
        probe(f"{opt} step {i} no-wait", lambda: tc._runs_without_waiting(step))
