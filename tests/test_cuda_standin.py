"""The cuda backend, exactly as shipped, on a CuPy stand-in that runs on the CPU.

``tests/cupy_standin.py`` installs a module named ``cupy`` that keeps CuPy's API surface (from
``tests/data/cupy_api.json``, recorded from CuPy 14 by ``scripts/cupy_api_manifest.py``) and
its host/device boundary -- NumPy arrays refused as operands, no implicit conversion to NumPy,
0-d arrays instead of scalars, out-of-range indices wrapped around, ``cupy.linalg`` not raising
on singular or indefinite input -- and counts every host read and host-to-device copy.  With
it, ``polyten.set_backend("cuda")`` loads the real plugin (``polyten_cuda.make_backend``), so
these tests run, without a GPU:

* the whole conformance suite on ``cuda``;
* ``tests/test_cuda.py`` (the GPU tests; the no-wait tests count host traffic instead of timing
  a spinning kernel);
* training steps (MLP, CNN, embedding; AdamW, SGD; gradient clipping; a DataLoader with pinned
  memory) that must not read from or copy to the device synchronously.

Each runs in a subprocess, since the stand-in replaces ``cupy`` for the whole process.  What
the stand-in cannot show -- NVRTC compilation, launch configurations, CuPy's own numerics,
real asynchrony and speed -- is left to ``scripts/gpu_check.sh`` on a GPU.  The first tests
check the stand-in itself: that it refuses what CuPy refuses.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cupy_standin as cs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
needs_cxx = pytest.mark.skipif(cs.CXX is None, reason="no host C++ compiler (g++) to run the "
                                                      "fused CUDA kernel bodies on the CPU")


@pytest.fixture(scope="module")
def cp():
    return cs.strict_cupy()


@pytest.fixture(autouse=True)
def _fresh_stats():
    cs.STATS.clear()
    yield
    cs.STATS.clear()


# --- the stand-in refuses what CuPy refuses --------------------------------------------------
def test_no_implicit_conversion_to_numpy(cp):
    d = cp.arange(3.0)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(d)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add(d, np.ones(3))
    with pytest.raises(TypeError, match="Unsupported type"):
        d + np.ones(3)
    with pytest.raises(TypeError):
        np.ones(3) + d
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        d[...] = np.ones(3)  # CuPy fills basic-index assignments with a scalar
    with pytest.raises(ValueError, match="kind can only be None or 'stable'"):
        cp.argsort(d, kind="quicksort")
    assert not cs.traffic() and cs.STATS["launch"] == 1  # arange; refusals launch nothing


def test_numpy_functions_dispatch_to_cupy(cp):
    d = cp.arange(4.0)
    assert isinstance(np.exp(d), cp.ndarray)
    assert isinstance(np.concatenate([d, d]), cp.ndarray)
    s = np.sum(d)
    assert isinstance(s, cp.ndarray) and s.shape == ()  # CuPy: 0-d arrays, not scalars
    assert float(s) == 6.0
    absent = next(n for n in ("busday_count", "apply_over_axes", "setxor1d", "ediff1d",
                              "nanpercentile") if n not in cs.manifest()["modules"]["cupy"])
    with pytest.raises(TypeError):
        getattr(np, absent)(d, d) if absent != "apply_over_axes" else np.apply_over_axes(
            np.sum, d, [0])


def test_only_cupy_names_and_keywords(cp):
    d = cp.ones((2, 3))
    with pytest.raises(AttributeError, match="CuPy"):
        cp.errstate  # numpy has it, CuPy does not
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        cp.sum(d, where=cp.ones((2, 3), dtype=bool))
    with pytest.raises(AttributeError, match="Generator"):
        cp.random.default_rng(0).permutation
    with pytest.raises(AttributeError):
        d.flags.writeable = False  # CuPy's flags are read-only: no writeable
    with pytest.raises(AttributeError, match="cupy.ndarray"):
        d.itemset
    assert d.flags.c_contiguous and isinstance(d.T, cp.ndarray)


def test_ufunc_methods_only_where_cupy_implements_them(cp):
    d = cp.asarray(np.arange(6.0).reshape(2, 3))
    assert cp.add.reduce(d, axis=1).tolist() == [3.0, 12.0]
    assert cp.multiply.accumulate(d, axis=1).tolist() == [[0.0, 0.0, 0.0], [3.0, 12.0, 60.0]]
    with pytest.raises(NotImplementedError, match="maximum.reduce"):
        cp.maximum.reduce(d, axis=1)  # CuPy: reduce / accumulate for add and multiply only
    with pytest.raises(NotImplementedError, match="reduceat"):
        cp.multiply.reduceat(d, cp.asarray(np.array([0, 1])), axis=1)
    cp.maximum.at(d, cp.asarray(np.array([0])), 9.0)  # a ufunc with a scatter op
    assert d[0].tolist() == [9.0, 9.0, 9.0]
    with pytest.raises(NotImplementedError, match="divide.at"):
        cp.divide.at(d, cp.asarray(np.array([0])), 2.0)


def test_bfloat16_gaps_refuse_as_cupy_does(cp):
    """CuPy 14 resolves a kernel's types before it runs anything, and refuses bfloat16 where
    it has no loop (cupy/cupy#9630: divmod, sorts, cupyx) -- unless a float32 loop takes it
    (where, tril / triu, rounding: float32 results); the stand-in does the same, or refuses
    everything but casts, copies and views (``"all"``: the float32 retry's stress test)."""
    bf16 = pytest.importorskip("ml_dtypes").bfloat16
    d = cp.asarray(np.array([1.25, -2.5, 3.75])).astype(bf16)
    assert d.dtype == bf16 and cp.exp(d).dtype == bf16
    # no bfloat16 loop, but a float32 one it casts to safely: float32 back, no error
    for r in (cp.around(d), d.round(1), cp.where(d > 0, d, d), cp.tril(cp.stack([d, d]))):
        assert r.dtype == np.float32
    with pytest.raises(TypeError, match=r"Wrong type \(\(dtype\(bfloat16\)"):
        cp.divmod(d, d)
    assert cp.around(d.astype(np.float32)).tolist() == [1.0, -2.0, 4.0]
    old = cs.set_bfloat16_gaps("all")
    try:
        with pytest.raises(TypeError, match="mode 'all'"):
            cp.exp(d)
        with pytest.raises(TypeError, match="mode 'all'"):
            d + d
        f = d.astype(np.float32)[1:]  # casts, copies, views and joins still run
        cp.concatenate([d, d]), d.copy(), d[::2], d.reshape(3, 1)
        assert f.tolist() == [-2.5, 3.75]
        cs.set_bfloat16_gaps("none")
        assert cp.around(d).astype(np.float32).tolist() == [1.0, -2.0, 4.0]
    finally:
        cs.set_bfloat16_gaps(old)
    with pytest.raises(ValueError, match="'cupy14', 'all' or 'none'"):
        cs.set_bfloat16_gaps("some")
    h = d.astype(np.float16)
    assert cp.exp(h).dtype == np.float16  # float16: CuPy's loops, unless asked
    old = cs.set_float16_gaps("all")
    try:
        with pytest.raises(TypeError, match=r"dtype\(float16\).*mode 'all'"):
            cp.exp(h)
        assert h.astype(np.float32).dtype == np.float32
    finally:
        cs.set_float16_gaps(old)


def test_host_traffic_is_counted(cp):
    d = cp.asarray(np.arange(6.0))
    assert cs.traffic() == {"h2d": 1}
    d[0].item(), float(d[1]), cp.asnumpy(d), d.tolist()
    assert cs.STATS["d2h"] == 4
    d[d > 2.0]
    cp.nonzero(d)
    assert cs.STATS["sync"] == 2
    cs.STATS.clear()
    (d * 2 + 1).sum(axis=0)
    cp.exp(d, out=d)
    assert not cs.traffic() and cs.STATS["launch"] == 4  # arithmetic stays on the device


def test_out_of_range_indices_wrap_around(cp):
    d = cp.asarray(np.array([10.0, 20.0, 30.0]))
    idx = cp.asarray(np.array([5, -1]))
    assert d[idx].tolist() == [30.0, 30.0]  # 5 % 3 == 2: CuPy never reads out of bounds
    m = cp.asarray(np.arange(6.0).reshape(2, 3))
    j = cp.asarray(np.array([[3], [4]]))
    assert cp.take_along_axis(m, j, 1).tolist() == [[0.0], [4.0]]


def test_kernels_refuse_operands_on_another_device(cp):
    saved = cs._DEVICE_COUNT[0]
    cs._DEVICE_COUNT[0] = 2
    try:
        with cp.cuda.Device(1):
            d = cp.arange(3.0)
            assert d.device.id == 1 and cp.cuda.runtime.getDevice() == 1
        assert cp.cuda.runtime.getDevice() == 0
        with pytest.raises(ValueError, match="array device = 1 while current = 0"):
            d + 1
        assert d.reshape(3, 1).device.id == 1  # views launch nothing
        assert d.copy().device.id == 0  # a peer copy onto the current device
        with cp.cuda.Device(1):
            assert (d * 2).device.id == 1
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            cp.cuda.Device(2)
    finally:
        cs._DEVICE_COUNT[0] = saved


def test_linalg_does_not_raise_on_values(cp):
    sing = cp.asarray(np.zeros((3, 3)))
    assert not np.isfinite(cp.asnumpy(cp.linalg.inv(sing))).all()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    spd = a @ a.T + 4 * np.eye(4)
    np.testing.assert_allclose(cp.asnumpy(cp.linalg.cholesky(cp.asarray(spd))),
                               np.linalg.cholesky(spd), rtol=1e-12)
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    r = cp.asnumpy(cp.linalg.cholesky(cp.asarray(bad)))
    assert r[1, 1] == 1.0 - 2.0 ** 2 and np.isfinite(r).all()  # potrf: the failing pivot


# --- the cuda backend on the stand-in (subprocesses) -----------------------------------------
def _run(*code: str, timeout: int = 300, devices: int = 1) -> subprocess.CompletedProcess:
    """Run the code blocks (each dedented on its own) after installing the stand-in with
    ``devices`` GPUs."""
    prelude = (f"import sys; sys.path.insert(0, {HERE!r})\n"
               f"import cupy_standin; cupy_standin.install(devices={devices})\n")
    env = dict(os.environ)
    env.pop("POLYTEN_SYNC_CHECKS", None)
    source = prelude + "".join(textwrap.dedent(c) for c in code)
    return subprocess.run([sys.executable, "-c", source], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_cxx
def test_conformance_suite_passes_on_cuda(cuda_standin_conformance):
    """Every area, every tier (about 3,300 tests), two GPUs: the kernels' use of CuPy's API,
    the deferred value checks reported at the first host read, linalg errors without LAPACK's
    exceptions.  The run is the session's shared one (``conftest.cuda_standin_conformance``),
    whose kernels tests/test_cuda_nvrtc.py also compiles."""
    r = cuda_standin_conformance
    tail = r.stdout[-6000:]
    assert r.returncode == 0, tail
    assert "cupy 14" in tail and "stand-in" in tail, tail


@needs_cxx
def test_bfloat16_calls_cupy_refuses_run_in_float32_and_are_reported():
    """round on bfloat16 (CuPy 14's float32 loop) gives PyTorch's result in bfloat16,
    without a host read; a call CuPy refuses (here every bfloat16 one but casts and views:
    the stand-in's "all" gaps) runs again in float32, and ``POLYTEN_CUDA_REPORT_RETRIES=1``
    names it at exit."""
    pytest.importorskip("ml_dtypes")
    r = _run("""
        import os
        os.environ["POLYTEN_CUDA_REPORT_RETRIES"] = "1"
        import numpy as np
        import polyten as pt
        x = pt.tensor([1.2578125, -2.5, 3.75, 0.5], dtype=pt.bfloat16, device="cuda")
        cupy_standin.STATS.clear()
        y, z = pt.round(x), pt.round(x, decimals=1)
        assert not cupy_standin.traffic(), cupy_standin.traffic()
        assert y.dtype == pt.bfloat16 and str(y._data.dtype) == "bfloat16"
        assert y.tolist() == [1.0, -2.0, 4.0, 0.0], y.tolist()  # half to even, as torch
        assert z.tolist() == [1.296875, -2.5, 3.796875, 0.5], z.tolist()  # torch 2.13's
        cupy_standin.set_bfloat16_gaps("all")
        e = pt.exp(x)
        assert e.dtype == pt.bfloat16 and str(e._data.dtype) == "bfloat16"
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]
    assert "half-precision kernels retried in float32: {'forward': ['exp']" in r.stderr, \
        r.stderr


def test_ufunc_at_takes_the_dtypes_cupys_atomics_take():
    """As CuPy's ``_scatter_op_single``: ``add.at`` with an integer-array index refuses int64
    (and the other dtypes without CUDA atomics) with CuPy's TypeError, ``bitwise_or.at``
    takes int64; so polyten's int64 ``index_add`` (``bincount``'s) must not call it with
    int64, and does not, without retrying anything in float32."""
    r = _run("""
        import numpy as np
        import cupy
        for dt, ok in (("int64", False), ("int8", False), ("complex64", False),
                       ("int32", True), ("uint64", True), ("float16", True)):
            a = cupy.zeros(4, dtype=dt)
            try:
                cupy.add.at(a, cupy.asarray(np.array([0, 0, 2])), 1)
                took = True
            except TypeError as e:
                assert "cupy.add.at only supports int32, float16, float32" in str(e), e
                took = False
            assert took == ok, dt
        a = cupy.zeros(4, dtype="int64")
        cupy.bitwise_or.at(a, cupy.asarray(np.array([1, 1])), 3)
        assert cupy.asnumpy(a).tolist() == [0, 3, 0, 0]
        import polyten as pt
        from polyten_cuda import half_retry
        x = pt.tensor([0, 3, 3, 1, 3], device="cuda")
        assert pt.bincount(x).tolist() == [1, 1, 0, 3]
        assert not any(half_retry.retried().values()), half_retry.retried()
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]


def test_numerics_are_cupys_where_cupy_differs_from_numpy():
    """The stand-in answers as CuPy's sources compute, where that is not NumPy's answer, so
    that ``tests/test_cuda.py`` sees what a GPU would: float32 ``around`` scaled in double,
    integer ``around`` with negative decimals through a float32 quotient, int64 ``fmod``
    through double, float16 ``nextafter`` of inf as NaN, 1-D float ``sort`` / ``argsort`` /
    ``unique`` in radix (bit) order, a later NaN from ``argmax`` / ``argmin``, fills of a
    zero without its sign (a memset), overlapping same-layout assignment as a forward copy,
    ``isin`` finding NaN, scans along a non-last axis as permuted views, ``flip`` of a 0-d
    array refused; and what an H200 showed (CuPy 14.2): float64 ``around`` with a correctly
    rounded scale, a complex zero filled with its sign, float32 results for a bfloat16 array
    beside a Python float, float32 ``nextafter`` flushing subnormals, and logical ufuncs
    refusing a complex number."""
    r = _run("""
        import numpy as np
        import cupy
        g = cupy.asnumpy
        f = np.array([2.675], np.float32)
        assert g(cupy.around(cupy.asarray(f), 2))[0] == np.float32(2.67) != np.round(f, 2)[0]
        assert g(cupy.asarray(f).round(2))[0] == np.float32(2.67)
        i = np.array([250000001])
        assert g(cupy.around(cupy.asarray(i), -8)).tolist() == [200000000]
        big = np.array([2**60 + 7])
        assert g(cupy.fmod(cupy.asarray(big), cupy.asarray(np.array([10])))).tolist() == [6]
        h = np.array([np.inf, 1.0], np.float16)
        r = g(cupy.nextafter(cupy.asarray(h), cupy.asarray(np.zeros(2, np.float16))))
        assert np.isnan(r[0]) and r[1] < 1
        neg = np.frombuffer(np.uint64(0xFFF8000000000000).tobytes(), np.float64)[0]
        v = np.array([1.0, neg, 0.0, -0.0, np.nan])
        assert g(cupy.argsort(cupy.asarray(v))).tolist() == [1, 2, 3, 0, 4]  # -0.0 == 0.0
        assert np.isnan(g(cupy.sort(cupy.asarray(v)))[0])
        assert np.isnan(g(cupy.unique(cupy.asarray(v), equal_nan=False))[0])
        assert g(cupy.argsort(cupy.asarray(v[None, :]), axis=1)).tolist() == \
            [np.argsort(v, kind="stable").tolist()]  # more than one dim: NumPy's order
        w = np.zeros(600)
        w[[1, 300]] = np.nan
        assert int(cupy.argmax(cupy.asarray(w))) == 300 and int(cupy.asarray(w).argmin()) == 300
        assert g(cupy.sign(cupy.asarray(np.array([np.nan]))))[0] == 0
        assert not np.signbit(g(cupy.full((2,), -0.0))).any()  # fill: a memset for zero
        z = cupy.ones(2)
        z.fill(-0.0)
        assert not np.signbit(g(z)).any()
        z[...] = -0.0
        assert not np.signbit(g(z)).any()
        q = cupy.arange(4.0)
        q[1:] = q[:-1]  # one cudaMemcpyAsync over overlapping memory
        assert g(q).tolist() == [0, 0, 0, 0]
        assert g(cupy.isin(cupy.asarray(np.array([np.nan])), cupy.asarray(np.array([np.nan]))))[0]
        assert not cupy.cumsum(cupy.ones((2, 3)), axis=0).flags.c_contiguous
        try:
            cupy.flip(cupy.asarray(np.array(1.0)))
            raise AssertionError("flip of 0-d")
        except np.exceptions.AxisError:
            pass
        c = g(cupy.full((2,), complex(-0.0, 0.0), dtype=np.complex64))
        assert np.signbit(c.real).all()  # a complex zero is no memset
        import ml_dtypes
        b = cupy.ones(2, dtype=ml_dtypes.bfloat16)
        assert (b + 2.5).dtype == np.float32 and cupy.maximum(b, 2.5).dtype == np.float32
        assert (b + 2).dtype == b.dtype and (b + ml_dtypes.bfloat16(2.5)).dtype == b.dtype
        tiny = np.finfo(np.float32).tiny
        n = g(cupy.nextafter(cupy.zeros(2, np.float32), cupy.asarray(np.array([1, -1], 'f4'))))
        assert n.tolist() == [tiny, -tiny]  # subnormal results flushed
        d = np.array([0.285])
        assert g(cupy.around(cupy.asarray(d), 40))[0] != np.round(d, 40)[0]
        try:
            cupy.logical_xor(cupy.ones(2, bool), 1j)
            raise AssertionError("logical_xor of complex")
        except TypeError:
            pass
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]


@needs_cxx
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_conformance_half_where_cupy_has_no_loop_at_all(dtype):
    """Every bfloat16 (float16) conformance test with the stand-in refusing that dtype in
    every function but casts, copies, creation, views and indexing: each op's float32 retry
    (``polyten_cuda.half_retry``) must give PyTorch's result.  nextafter is left out: its
    result belongs to the dtype, so it is never retried (CuPy's own tests cover its half
    loops)."""
    pytest.importorskip("polyten_conformance")
    pytest.importorskip("ml_dtypes")
    select = ("bfloat16" if dtype == "bfloat16" else "float16 and not bfloat16")
    r = _run(f"""
        cupy_standin.set_{dtype}_gaps("all")
        import polyten_conformance as c
        raise SystemExit(c.run("cuda", extra_args=("-q", "-p", "no:cacheprovider", "-k",
                                                   "{select} and not nextafter")))
    """)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, tail
    assert re.search(r"TOTAL\s+\d{3}\s+0\s", tail) and "stand-in" in tail, tail


@needs_cxx
@pytest.mark.parametrize("devices", [1, 2])
def test_gpu_tests_pass_on_the_standin(devices):
    """``tests/test_cuda.py`` itself, so that it is known to work before a GPU runs it; with
    two devices its multi-GPU test runs too (no lent GPU machine has two)."""
    r = _run(f"""
        import pytest
        raise SystemExit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs",
                                      {os.path.join(HERE, "test_cuda.py")!r}]))
    """, devices=devices)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert " passed" in out and "failed" not in out, out[-3000:]
    # the only skips: "needs two GPUs" with one device, and the DLPack exchange with torch's
    # CUDA tensors (neither torch CUDA nor DLPack export exist on the stand-in)
    reasons = {line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("SKIPPED")}
    allowed = {"torch has no CUDA here", "the CuPy stand-in does not emulate DLPack export"}
    if importlib.util.find_spec("torch") is None:  # the torch comparisons skip too
        allowed |= {r for r in reasons if r.startswith("could not import 'torch'")}
    assert reasons - allowed == ({"needs two GPUs"} if devices == 1 else set()), reasons


@needs_cxx
def test_two_devices():
    """Two GPUs: the conformance suite's transfers between devices, and training on
    ``cuda:1`` while ``cuda:0`` is current -- every kernel launched on the device of its
    operands (the stand-in refuses a launch with operands on another device, as CuPy),
    the results the cpu's."""
    r = _run("""
        import numpy as np
        import polyten as pt
        import polyten.nn as nn
        import polyten.nn.functional as F
        import polyten_conformance as c
        assert c.run("cuda", area="transfer", extra_args=("-q", "-p", "no:cacheprovider")) == 0

        def train(dev):
            pt.manual_seed(0)
            model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 3)).to(
                device=dev, dtype=pt.float64)
            opt = pt.optim.AdamW(model.parameters(), lr=0.01)
            x = pt.tensor(np.random.default_rng(1).standard_normal((12, 6)), device=dev)
            y = pt.tensor(np.arange(12) % 3, device=dev)
            for _ in range(3):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
            return loss.item(), [p.detach().cpu().numpy() for p in model.parameters()]

        assert pt.cuda.device_count() == 2 and pt.cuda.current_device() == 0
        (l1, p1), (l0, p0) = train("cuda:1"), train("cpu")
        assert pt.cuda.current_device() == 0
        np.testing.assert_allclose(l1, l0, rtol=1e-10)
        for a, b in zip(p1, p0):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        print("ok")
    """, devices=2)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


_STEPS = """
    import numpy as np
    import polyten as pt
    import polyten.nn as nn
    import polyten.nn.functional as F
    from polyten.data import DataLoader, TensorDataset
    S = cupy_standin.STATS

    pt.manual_seed(0)
    dev = "cuda"
    DT = pt.float32  # the parameters' and the float inputs' dtype
    mlp = nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.LayerNorm(32), nn.Dropout(0.1),
                        nn.Linear(32, 5)).to(dev, DT)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2, padding=1), nn.Flatten(), nn.Linear(4 * 5 * 5, 5)).to(
                            dev, DT)
    emb, head = nn.Embedding(50, 8).to(dev, DT), nn.Linear(8, 5).to(dev, DT)
    params = [*mlp.parameters(), *cnn.parameters(), *emb.parameters(), *head.parameters()]
    opts = [pt.optim.AdamW(params, lr=1e-3),
            pt.optim.SGD(params, lr=1e-2, momentum=0.9, nesterov=True)]
    rng = np.random.default_rng(0)
    n = 64
    data = TensorDataset(pt.tensor(rng.standard_normal((n, 20)).astype("float32")),
                         pt.tensor(rng.standard_normal((n, 1, 8, 8)).astype("float32")),
                         pt.tensor(rng.integers(0, 50, (n, 6))),
                         pt.tensor(rng.integers(0, 5, n)))
    loader = DataLoader(data, batch_size=16, shuffle=True, pin_memory=True)

    def step(opt, batch):
        x, img, tok, y = (t.to(dev, non_blocking=True) for t in batch)
        x, img = x.to(DT), img.to(DT)  # a cast on the device (none for float32)
        opt.zero_grad()
        loss = (F.cross_entropy(mlp(x), y) + F.cross_entropy(cnn(img), y, label_smoothing=0.1)
                + F.nll_loss(F.log_softmax(head(emb(tok).mean(1)), 1), y))
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss
"""


@needs_cxx
@pytest.mark.parametrize("dtype, gaps", [("float32", "cupy14"), ("bfloat16", "cupy14"),
                                         ("bfloat16", "all")])
def test_training_steps_never_read_the_device(dtype, gaps):
    """Whole epochs (pinned batches copied asynchronously, forward, losses with class-target
    checks, embedding index checks, backward, clipping, AdamW and SGD): no device-to-host
    read, no pageable host-to-device copy and no value-dependent shape -- each of which makes
    the host wait for the GPU.  Reading the loss then costs two reads: the queued checks'
    combined flag and the value.  In bfloat16 polyten's CUDA C runs on bfloat16 and the
    shared kernels (products, reductions, indexing) on CuPy's bfloat16 loops, which must not
    read the device either -- nor their float32 retries, where CuPy has no bfloat16 loop
    (``gaps="all"``: none but casts and copies)."""
    r = _run(f"cupy_standin.set_bfloat16_gaps({gaps!r})\n",
             _STEPS.replace("DT = pt.float32", f"DT = pt.{dtype}"), """
        for opt in opts:
            step(opt, next(iter(loader)))  # first use: nothing to count yet
        S.clear()
        with cupy_standin.trace_host_traffic() as events:
            for opt in opts:
                for batch in loader:
                    loss = step(opt, batch)
        waits = {k: v for k, v in cupy_standin.traffic().items() if k != "h2d_async"}
        assert not waits, (waits, [(k, w, s) for k, w, s in events if k != "h2d_async"][:3])
        assert S["h2d_async"] == 2 * (n // 16) * 4, dict(S)  # 4 pinned tensors per batch
        S.clear()
        value = loss.item()
        assert cupy_standin.traffic() == {"d2h": 2}, dict(S)
        assert np.isfinite(value)
        print("ok", value)
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_bfloat16_autocast_steps_never_read_the_device():
    """autocast(dtype=bfloat16) without a GradScaler (PyTorch's bfloat16 recipe: it has
    float32's range): bfloat16 matmuls and convolutions (cuBLAS, polyten's im2col),
    float32 losses, parameters and gradients -- and no host read at all."""
    r = _run(_STEPS, """
        opt = opts[0]

        def bf_step(batch):
            x, img, tok, y = (t.to(dev, non_blocking=True) for t in batch)
            opt.zero_grad()
            with pt.autocast("cuda", dtype=pt.bfloat16):
                h = mlp(x)
                loss = F.cross_entropy(h, y) + F.cross_entropy(cnn(img), y)
            assert h.dtype == pt.bfloat16 and loss.dtype == pt.float32
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss

        bf_step(next(iter(loader)))
        S.clear()
        for batch in loader:
            loss = bf_step(batch)
        waits = {k: v for k, v in cupy_standin.traffic().items() if k != "h2d_async"}
        assert not waits, waits
        assert all(p.dtype == p.grad.dtype == pt.float32 for p in mlp.parameters())
        assert np.isfinite(loss.item())
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_mixed_precision_steps_never_read_the_device():
    """autocast + GradScaler on cuda: float16 matmuls and convolutions, float32 losses and
    parameters -- and, with AdamW and SGD (PyTorch's ``_step_supports_amp_scaling``), no host
    read at all: the unscale, the skip decision, the step counters and the scale's update stay
    on the device.  An optimizer outside the protocol (a subclass that overrides ``step``)
    reads the flag once per step, as PyTorch's GradScaler does for it (after the deferred
    value checks' flag: two reads)."""
    r = _run(_STEPS, """
        scaler = pt.amp.GradScaler("cuda")

        def amp_step(opt, batch):
            x, img, tok, y = (t.to(dev, non_blocking=True) for t in batch)
            opt.zero_grad()
            with pt.autocast("cuda"):
                h = mlp(x)
                loss = F.cross_entropy(h, y) + F.cross_entropy(cnn(img), y)
            assert h.dtype == pt.float16 and loss.dtype == pt.float32
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()
            return loss

        for opt in opts:  # AdamW, SGD with momentum (its first step creates the buffers)
            amp_step(opt, next(iter(loader)))
        S.clear()
        steps = 0
        with cupy_standin.trace_host_traffic() as events:
            for opt in opts:
                for batch in loader:
                    loss = amp_step(opt, batch)
                    steps += 1
        waits = {k: v for k, v in cupy_standin.traffic().items() if k != "h2d_async"}
        assert not waits, (waits, [(k, w, s) for k, w, s in events if k != "h2d_async"][:2])
        assert all(p.dtype == pt.float32 and p.grad.dtype == pt.float32 for p in mlp.parameters())
        counter = opts[0].state[params[0]]["step"]
        assert counter.device.type == "cuda" and counter.dtype == pt.float32
        assert counter.item() == 1 + steps // 2 and scaler.get_scale() == 65536.0
        class Mine(pt.optim.RMSprop):
            def step(self, closure=None):
                return super().step(closure)

        mine = Mine(params, lr=1e-3)
        assert not mine._step_supports_amp_scaling
        amp_step(mine, next(iter(loader)))
        S.clear()
        for batch in loader:
            amp_step(mine, batch)
        waits = {k: v for k, v in cupy_standin.traffic().items() if k != "h2d_async"}
        assert waits == {"d2h": 2 * (n // 16)}, waits
        assert np.isfinite(loss.item())
        # the same float16 forward on the cpu
        cpu_mlp = nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.LayerNorm(32), nn.Dropout(0.1),
                                nn.Linear(32, 5))
        cpu_mlp.load_state_dict({k: v.cpu() for k, v in mlp.state_dict().items()})
        mlp.eval(); cpu_mlp.eval()
        xb = pt.tensor(np.random.default_rng(5).standard_normal((8, 20)).astype("float32"))
        with pt.autocast("cuda"):
            g = mlp(xb.to(dev)).cpu()
        with pt.autocast("cpu", dtype=pt.float16):
            c = cpu_mlp(xb)
        assert g.dtype == c.dtype == pt.float16
        np.testing.assert_allclose(g.detach().numpy(), c.detach().numpy(), rtol=2e-3, atol=2e-3)
        print("ok", steps)
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_grad_scaler_device_steps_match_the_cpu_with_skipped_steps():
    """The CUDA kernels of GradScaler's device path (unscale, step counters, every optimizer
    skipping itself, the scale's update) against the cpu backend on the
    same training (no autocast: float16 matmuls round differently on each backend and Adam
    magnifies that), with overflowing steps at the start and in the middle; float32 and
    float64 parameters, and a non-contiguous one (the per-parameter kernels)."""
    r = _run("""
        import numpy as np
        import polyten as pt
        import polyten.nn as nn

        def train(dev, make, dtype):
            pt.manual_seed(0)
            m = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 3)).to(dev, dtype)
            t = nn.Parameter(pt.zeros(3, 4, dtype=dtype, device=dev).t())  # non-contiguous
            opt = make(list(m.parameters()) + [t])
            scaler = pt.amp.GradScaler(dev, init_scale=2.0 ** 12, growth_interval=2)
            rng = np.random.default_rng(3)
            for step in range(10):  # 8 applied: RAdam's rectified (adaptive) branch from 6
                x = rng.standard_normal((5, 6))
                if step in (0, 5):
                    x[1, 2] = np.inf
                opt.zero_grad()
                out = m(pt.tensor(x, dtype=dtype, device=dev))
                loss = (out ** 2).mean() + (t.sum() - 1.0) ** 2
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            state = [opt.state[p].get("step") for p in opt.param_groups[0]["params"]]
            return ([p.detach().cpu().numpy() for p in opt.param_groups[0]["params"]],
                    [None if s is None else int(s) for s in state], scaler.state_dict())

        makers = {
            "adam": lambda ps: pt.optim.Adam(ps, lr=0.01, weight_decay=0.1),
            "adamw": lambda ps: pt.optim.AdamW(ps, lr=0.01),
            "amsgrad": lambda ps: pt.optim.Adam(ps, lr=0.01, amsgrad=True, maximize=True),
            "sgd": lambda ps: pt.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.01),
            "sgd_plain": lambda ps: pt.optim.SGD(ps, lr=0.01),
            "rmsprop": lambda ps: pt.optim.RMSprop(ps, lr=0.01),
            "rmsprop_centered_momentum": lambda ps: pt.optim.RMSprop(
                ps, lr=0.01, centered=True, momentum=0.9, weight_decay=0.01),
            "adagrad": lambda ps: pt.optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
            "adamax": lambda ps: pt.optim.Adamax(ps, lr=0.01, weight_decay=0.01),
            "radam": lambda ps: pt.optim.RAdam(ps, lr=0.01, betas=(0.9, 0.5)),
            "radam_decoupled": lambda ps: pt.optim.RAdam(ps, lr=0.01, weight_decay=0.1,
                                                         decoupled_weight_decay=True),
            "adadelta": lambda ps: pt.optim.Adadelta(ps, lr=0.5, weight_decay=0.01),
            "rprop": lambda ps: pt.optim.Rprop(ps, lr=0.01, maximize=True),
            "nadam": lambda ps: pt.optim.NAdam(ps, lr=0.01, weight_decay=0.01),
            "nadam_decoupled": lambda ps: pt.optim.NAdam(ps, lr=0.01, weight_decay=0.1,
                                                         decoupled_weight_decay=True),
        }
        for dtype in (pt.float32, pt.float64):
            for name, make in makers.items():
                assert make([nn.Parameter(pt.zeros(1))])._step_supports_amp_scaling == (
                    "host read" not in name)
                got, got_steps, got_scale = train("cuda", make, dtype)
                want, want_steps, want_scale = train("cpu", make, dtype)
                assert got_steps == want_steps, (name, got_steps, want_steps)
                assert got_scale == want_scale, (name, got_scale, want_scale)
                tol = 1e-5 if dtype == pt.float32 else 1e-12
                for a, b in zip(got, want):
                    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
@pytest.mark.parametrize("suite, gaps", [
    ("test_amp.py", "cupy14"), ("test_fft.py", "cupy14"), ("test_nn_parametrize.py", "cupy14"),
    ("test_nn_utils_rnn.py", "cupy14"), ("test_bfloat16.py", "cupy14"),
    ("test_bfloat16.py", "all")])
def test_suites_pass_with_cuda_as_the_default_backend(suite, gaps):
    """Whole test files with cuda (the stand-in) as the default backend: autocast regions of
    type cuda, GradScaler's fused CUDA unscale kernel, mixed-precision norms and RNNs; the
    fft tier on cupy.fft; parametrizations (spectral_norm's power iteration, orthogonal);
    packed sequences through RNN/LSTM/GRU (data on the GPU, lengths on the host); bfloat16
    ops, gradients, training and checkpoints against NumPy and torch (through the shared
    kernels, and with ``gaps="all"`` through their float32 retries)."""
    r = _run(f"""
        import cupy_standin
        cupy_standin.set_bfloat16_gaps({gaps!r})
        import polyten as pt
        import pytest
        pt.set_backend("cuda")

        class Isolate:
            @pytest.fixture(autouse=True)
            def _fresh(self):
                from polyten.dispatch import checks
                checks.discard()
                pt.set_backend("cuda")
                yield
                checks.discard()

        raise SystemExit(pytest.main(["-q", "-p", "no:cacheprovider",
                                      {os.path.join(HERE, suite)!r}],
                                     plugins=[Isolate()]))
    """)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert " passed" in out and "failed" not in out, out[-3000:]


@needs_cxx
def test_layers_and_losses_never_read_the_device():
    """Forward and backward of the layers, losses and functions a model is built from, past
    their first call, with every input already on the device: no device-to-host read, no
    host-to-device copy and no value-dependent shape.  (Found by this test: attention's
    fully-masked-row check, the [0, 1] check of binary_cross_entropy and gaussian_nll_loss's
    var check, the adaptive pools', avg_pool's and quantile's constant tensors built from
    Python values on every call, masked_fill's 0-d tensor value read on the host, CuPy's
    boolean-mask assignment counting the mask's true elements, embedding_bag's "max" mode
    reading the longest bag's length.)"""
    r = _run("""
        import polyten as pt
        from polyten import nn
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        pt.manual_seed(0)

        def r(*s, grad=False):
            return pt.randn(*s).requires_grad_(grad)
        x4, q = r(2, 3, 7, 7, grad=True), r(2, 2, 5, 4, grad=True)
        k, v = r(2, 2, 5, 4), r(2, 2, 5, 4)
        x2, y2 = r(6, 5, grad=True), r(6, 5)
        seq, tgt = r(4, 5, 8), pt.randint(0, 5, (6,))
        tgt_ign = pt.where(tgt == 2, -100, tgt)
        probs, sign = pt.rand(6, 5), pt.where(pt.rand(6) > 0.5, 1.0, -1.0)
        pmask = pt.rand(4, 5) > 0.7
        causal = pt.ones(5, 5, dtype=pt.bool).triu(1)
        idx = pt.randint(0, 10, (3, 4))
        mods = {
            "lstm": nn.LSTM(8, 16, num_layers=2, batch_first=True),
            "gru": nn.GRU(8, 16, bidirectional=True, batch_first=True),
            "bn": nn.BatchNorm2d(3), "gn": nn.GroupNorm(1, 3), "ln": nn.LayerNorm(7),
            "inorm": nn.InstanceNorm2d(3, affine=True),
            "mha": nn.MultiheadAttention(8, 2, batch_first=True),
            "convt": nn.ConvTranspose2d(3, 4, 3, stride=2), "emb": nn.Embedding(10, 4, 0),
            "prelu": nn.PReLU(),
            "dec": nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
            "ebag": nn.EmbeddingBag(10, 4, mode="sum")}
        causal_f = nn.Transformer.generate_square_subsequent_mask(5)
        flat, offs, w9 = pt.randint(0, 10, (9,)), pt.tensor([0, 5]), pt.rand(9)
        spd = (lambda a: a @ a.mT + pt.eye(5))(pt.randn(5, 5)).requires_grad_()
        fill = pt.tensor(-0.5)
        cases = {
            "lstm": lambda: mods["lstm"](seq)[0].sum(),
            "gru": lambda: mods["gru"](seq)[0].sum(),
            "batch_norm": lambda: mods["bn"](x4).sum(),
            "group_norm": lambda: mods["gn"](x4).sum(),
            "layer_norm": lambda: mods["ln"](x4).sum(),
            "instance_norm": lambda: mods["inorm"](x4).sum(),
            "mha masks": lambda: mods["mha"](seq, seq, seq, key_padding_mask=pmask,
                                             attn_mask=causal)[0].sum(),
            "sdpa causal": lambda: F.scaled_dot_product_attention(q, k, v,
                                                                  is_causal=True).sum(),
            "conv_transpose": lambda: mods["convt"](x4).sum(),
            "embedding": lambda: mods["emb"](idx).sum(),
            "prelu": lambda: mods["prelu"](x2).sum(),
            "adaptive_avg": lambda: F.adaptive_avg_pool2d(x4, (3, 3)).sum(),
            "adaptive_max": lambda: F.adaptive_max_pool2d(x4, (3, 2)).sum(),
            "avg_pool no pad": lambda: F.avg_pool2d(x4, 3, 2, 1,
                                                    count_include_pad=False).sum(),
            "interpolate": lambda: F.interpolate(x4, scale_factor=2, mode="bilinear").sum(),
            "cross_entropy": lambda: F.cross_entropy(x2, tgt_ign, label_smoothing=0.1),
            "cross_entropy probs": lambda: F.cross_entropy(x2, probs),
            "bce": lambda: F.binary_cross_entropy(pt.sigmoid(x2), probs),
            "bce logits": lambda: F.binary_cross_entropy_with_logits(x2, probs),
            "kl_div": lambda: F.kl_div(F.log_softmax(x2, 1), probs, reduction="batchmean"),
            "huber": lambda: F.huber_loss(x2, y2, delta=0.5),
            "cosine_embedding": lambda: F.cosine_embedding_loss(x2, y2, sign),
            "triplet": lambda: F.triplet_margin_loss(x2, y2, y2.flip(0)),
            "topk sort cumsum": lambda: (x2.topk(2, 1)[0].sum() + x2.sort(1)[0].sum()
                                         + x2.cumsum(1).sum()),
            "gaussian_nll": lambda: F.gaussian_nll_loss(x2, y2, probs + 0.1),
            "quantile": lambda: pt.quantile(x2, 0.3, dim=1).sum(),
            "decoder causal": lambda: mods["dec"](seq, seq, tgt_mask=causal_f,
                                                  tgt_is_causal=True).sum(),
            "embedding_bag sum": lambda: mods["ebag"](flat, offs, per_sample_weights=w9).sum(),
            "embedding_bag max": lambda: F.embedding_bag(flat, mods["ebag"].weight, offs,
                                                         mode="max", padding_idx=3).sum(),
            "interpolate nearest area bicubic": lambda: (
                F.interpolate(x4, size=(5, 9), mode="nearest").sum()
                + F.interpolate(x4, size=(3, 5), mode="area").sum()
                + F.interpolate(x4, scale_factor=1.5, mode="bicubic").sum()),
            "pad fold": lambda: (F.pad(x4, (1, 2, 2, 1), mode="reflect").sum()
                                 + F.fold(F.unfold(x4, 3), (7, 7), 3).sum()),
            "max_pool ceil dropout2d": lambda: (F.max_pool2d(x4, 3, 2, 1, ceil_mode=True).sum()
                                                + F.dropout2d(x4, 0.2, True).sum()),
            "one_hot multi_margin poisson": lambda: (
                (F.one_hot(tgt, 5) * x2).sum() + F.multi_margin_loss(x2, tgt)
                + F.poisson_nll_loss(x2, probs)),
            "linalg": lambda: (pt.linalg.solve(spd, x2[:5]).sum() + pt.linalg.det(spd)
                               + pt.linalg.cholesky(spd).sum() + pt.linalg.inv(spd).sum()),
            "masked_fill tensor value, mask assignment": lambda: (
                x2.masked_fill(x2 > 0, fill).sum()
                + (lambda c: (c.masked_fill_(c < 0, fill), c.__setitem__(c > 1, 1.0), c)[2])(
                    x2.detach().clone()).sum()),
            "fft logcumsumexp var_mean": lambda: (
                pt.fft.rfft(x2, dim=1).abs().sum() + x2.logcumsumexp(1).sum()
                + pt.var_mean(x2, 1)[0].sum()),
        }
        S = cupy_standin.STATS
        bad = {}
        for name, fn in cases.items():
            fn().backward()  # first use: caches
            S.clear()
            fn().backward()
            if cupy_standin.traffic():
                bad[name] = cupy_standin.traffic()
        assert not bad, bad
        print("ok", len(cases))
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_row_ops_launch_once_each_way():
    """What the README promises: softmax / log_softmax (rows of 64 and of 3000, a warp and a
    block per row), LayerNorm and BatchNorm forward in one launch, their input gradient in
    one (BatchNorm's parameter gradients in the same launch; LayerNorm's in one more),
    cross-entropy's forward in three (the deferred target check, the rows,
    the mean) and its backward in two -- counted by the stand-in, the first backward of each
    (no gradient accumulation).  BatchNorm runs without running statistics (their update is
    one more launch)."""
    r = _run("""
        import polyten as pt
        import polyten.nn as nn
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        S = cupy_standin.STATS
        found = {}
        for d in (64, 3000):
            ln, bn = nn.LayerNorm(d), nn.BatchNorm1d(d)
            t = pt.randint(0, d, (4,))
            for name, fn in (("softmax", lambda x: pt.softmax(x, -1)),
                             ("log_softmax", lambda x: pt.log_softmax(x, -1)),
                             ("layer_norm", ln), ("batch_norm", lambda x: F.batch_norm(
                                 x, None, None, bn.weight, bn.bias, training=True)),
                             ("cross_entropy", lambda x: F.cross_entropy(x, t))):
                for attempt in range(2):  # the first builds the kernels
                    x = pt.randn(4, d, requires_grad=True)
                    g = pt.randn(()) if name == "cross_entropy" else pt.randn(4, d)
                    ln.zero_grad(); bn.zero_grad()
                    S.clear()
                    y = fn(x)
                    fwd = S["launch"]
                    S.clear()
                    y.backward(g)
                    found[name, d] = (fwd, S["launch"])
        want = {"softmax": (1, 1), "log_softmax": (1, 1), "layer_norm": (1, 2),
                "batch_norm": (1, 1), "cross_entropy": (3, 2)}
        assert found == {(n, d): w for n, w in want.items() for d in (64, 3000)}, found
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_bfloat16_max_pool_runs_its_own_kernel():
    """bfloat16 max_pool on cuda: polyten's own kernel on bfloat16 -- one launch each way
    (it was three on float32 copies, and the shared kernel's pass per window offset about
    35 before that) -- with the cpu backend's values and indices exactly (a selection) and
    its gradient within a bfloat16 rounding (overlapping windows sum in float32), NaN
    windows included."""
    r = _run("""
        import numpy as np
        import polyten as pt
        import polyten.nn.functional as F
        S = cupy_standin.STATS
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
        x[0, 1, 2, 3] = np.nan
        g = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        res = {}
        for dev in ("cpu", "cuda"):
            X = pt.tensor(x, device=dev).bfloat16().requires_grad_()
            G = pt.tensor(g, device=dev).bfloat16()
            for attempt in range(2):  # the first builds the kernels
                X.grad = None
                S.clear()
                y, idx = F.max_pool2d(X, 3, stride=2, return_indices=True)
                fwd = S["launch"]
                S.clear()
                y.backward(G)
                bwd = S["launch"]
            res[dev] = (y.detach().float().cpu().numpy(), idx.cpu().numpy(),
                        X.grad.float().cpu().numpy())
            if dev == "cuda":
                assert (fwd, bwd) == (1, 1), (fwd, bwd)
                assert y.dtype == X.grad.dtype == pt.bfloat16
        (yc, ic, gc), (yg, ig, gg) = res["cpu"], res["cuda"]
        np.testing.assert_array_equal(yg, yc)
        np.testing.assert_array_equal(ig, ic)
        np.testing.assert_allclose(gg, gc, rtol=2 ** -8, atol=0)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_bfloat16_fused_kernels_run_on_bfloat16():
    """bfloat16 activations, softmax (over the last dim and not), layer_norm and
    cross-entropy on cuda: polyten's fused kernels on bfloat16 itself -- one launch each way
    for the pointwise and row kernels (it was 3 / 3-4 on float32 copies, and the shared
    kernels' launch per array operation before that) -- computed in float32 and rounded once:
    output and gradient within a bfloat16 ulp or two of PyTorch in float64 from the same
    bfloat16 inputs (the cpu backend, which rounds some intermediates, is further off)."""
    pytest.importorskip("torch")
    r = _run("""
        import numpy as np
        import torch
        import polyten as pt
        import polyten.nn.functional as F
        S = cupy_standin.STATS
        t = np.arange(16) % 40
        ops = {  # name: (polyten, torch, launches forward / backward at most)
            "gelu": (F.gelu, torch.nn.functional.gelu, 1, 1),
            "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                          lambda x: torch.nn.functional.gelu(x, approximate="tanh"), 1, 1),
            "silu": (F.silu, torch.nn.functional.silu, 1, 1),
            "elu": (F.elu, torch.nn.functional.elu, 1, 1),
            "leaky_relu": (F.leaky_relu, torch.nn.functional.leaky_relu, 1, 1),
            "softplus": (F.softplus, torch.nn.functional.softplus, 1, 1),
            "sigmoid": (pt.sigmoid, torch.sigmoid, 1, 1),
            "erf": (pt.erf, torch.erf, 1, 1),
            "tanh": (pt.tanh, torch.tanh, 1, 1),
            "softmax": (lambda x: pt.softmax(x, -1), lambda x: torch.softmax(x, -1), 1, 1),
            "log_softmax": (lambda x: pt.log_softmax(x, -1),
                            lambda x: torch.log_softmax(x, -1), 1, 1),
            "softmax_dim0": (lambda x: pt.softmax(x, 0), lambda x: torch.softmax(x, 0), 3, 2),
            "layer_norm": (lambda x: F.layer_norm(x, (40,)),
                           lambda x: torch.nn.functional.layer_norm(x, (40,)), 1, 1),
            "cross_entropy": (
                lambda x: F.cross_entropy(x, pt.tensor(t, device=x.device)),
                lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t)), 3, 2),
        }
        rng = np.random.default_rng(0)
        x = (3 * rng.standard_normal((16, 40))).astype(np.float32)
        for name, (fn, tfn, nf, nb) in ops.items():
            for attempt in range(2):  # the first builds the kernels
                X = pt.tensor(x, device="cuda").bfloat16().requires_grad_()
                S.clear()
                y = fn(X)
                fwd = S["launch"]
                g = np.random.default_rng(5).standard_normal(tuple(y.shape)).astype(
                    np.float32)
                G = pt.tensor(g, device="cuda").bfloat16()
                S.clear()
                y.backward(G)
                bwd = S["launch"]
            assert y.dtype == X.grad.dtype == pt.bfloat16, name
            assert fwd <= nf and bwd <= nb, (name, fwd, bwd)
            T = torch.tensor(X.detach().float().cpu().numpy(), dtype=torch.float64,
                             requires_grad=True)
            ty = tfn(T)
            ty.backward(torch.tensor(G.float().cpu().numpy(), dtype=torch.float64))
            for a, b in ((y.detach().float().cpu().numpy(), ty.detach().numpy()),
                         (X.grad.float().cpu().numpy(), T.grad.numpy())):
                np.testing.assert_allclose(a, b, rtol=2 ** -7,
                                           atol=2 ** -7 * np.abs(b).max(), err_msg=name)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_erf_backward_is_one_launch_rounded_once():
    """erf's gradient on cuda is one launch of ``erf_backward`` (the formula
    ``g * 2/sqrt(pi) * exp(-x^2)`` was 6 launches and, in float16 / bfloat16, rounded after each
    op): within half an ulp (plus float32 noise) of the float64 value for the same half inputs;
    in float32 / float64, computed in the dtype itself as PyTorch does, 2 + x^2 ulps (x^2's
    rounding, magnified by exp's condition number x^2)."""
    pytest.importorskip("ml_dtypes")
    r = _run("""
        import math
        import numpy as np
        import polyten as pt
        from _reference import ulps
        S = cupy_standin.STATS
        rng = np.random.default_rng(11)
        x = np.concatenate([rng.uniform(-4.5, 4.5, 500), [0.0, -0.0, 1e-3, 3.9, -3.9, 12.0]])
        g = rng.standard_normal(x.size)
        for dtype, half in (("float16", True), ("bfloat16", True), ("float32", False),
                            ("float64", False)):
            for attempt in range(2):  # the first builds the kernel
                X = pt.tensor(x, device="cuda").to(getattr(pt, dtype)).requires_grad_()
                G = pt.tensor(g, device="cuda").to(X.dtype)
                y = pt.erf(X)
                S.clear()
                y.backward(G)
                launches = S["launch"]
            assert launches == 1, (dtype, launches)
            assert X.grad.dtype == X.dtype
            xs, gs = (t.detach().double().cpu().numpy() for t in (X, G))
            want = gs * (2 / math.sqrt(math.pi)) * np.exp(-xs * xs)
            got = X.grad.double().cpu().numpy()
            tol = 0.5 + 1e-3 if half else 2 + xs * xs
            assert (ulps(got, want, dtype) <= tol).all(), (dtype, ulps(got, want, dtype).max())
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_half_batchnorm_forward_is_three_launches_with_its_running_statistics():
    """A float16 / bfloat16 BatchNorm2d (half running buffers, float32 batch statistics)
    trains in 3 launches forward on cuda, the two running statistics one of them (the update
    was 11 launches of casts and in-place ops), each rounded once: within half an ulp, plus
    float32 noise, of the float64 update from the same input."""
    r = _run("""
        import numpy as np
        import polyten as pt
        from _reference import batchnorm_running_reference, ulps
        S = cupy_standin.STATS
        rng = np.random.default_rng(3)
        x = (rng.standard_normal((16, 64, 3, 3)) * 1.7 + 0.8).astype(np.float32)
        for dtype in ("float16", "bfloat16"):
            pdt = getattr(pt, dtype)
            for attempt in range(2):  # the first builds the kernels
                m = pt.nn.BatchNorm2d(64, momentum=0.3).to("cuda").to(pdt)
                X = pt.tensor(x, device="cuda").to(pdt)
                S.clear()
                y = m(X)
                launches = S["launch"]
            assert launches == 3 and y.dtype is pdt, (dtype, launches)
            x64 = X.float().cpu().numpy().astype(np.float64)
            want = batchnorm_running_reference(x64, 0.0, 1.0, 0.3)
            for buf, w in zip((m.running_mean, m.running_var), want):
                assert buf.dtype is pdt
                got = buf.float().cpu().numpy().astype(np.float64)
                assert ulps(got, w, dtype).max() <= 0.5 + 1e-3, (dtype, got, w)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_binary_cross_entropy_range_is_reported_at_the_next_read():
    """Probabilities outside [0, 1]: no host read at the call on cuda; the next read raises
    binary_cross_entropy's error (PyTorch: a device-side assert)."""
    r = _run("""
        import polyten as pt
        import polyten.nn.functional as F
        pt.set_backend("cuda")
        x, t = pt.tensor([0.2, 1.5]), pt.tensor([0.0, 1.0])
        cupy_standin.STATS.clear()
        loss = F.binary_cross_entropy(x, t)
        assert not cupy_standin.traffic(), cupy_standin.traffic()
        try:
            loss.item()
        except ValueError as e:
            assert "binary_cross_entropy: all elements of input should be between 0 and 1" \
                in str(e), e
            print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_out_of_memory_is_polytens_error_with_the_figures():
    """CuPy's pool running out (a pool limit here) raises polyten.cuda.OutOfMemoryError --
    torch's name, a RuntimeError and a MemoryError -- naming the kernel, the device, the
    request, what the pool and the device hold, and what to do; CuPy's error is the cause,
    and nothing is lost: the tensors made before still work once memory is back."""
    r = _run("""
        import polyten as pt
        pt.set_backend("cuda")
        cp = sys.modules["cupy"]
        x = pt.randn(100, 100)
        cp.get_default_memory_pool().set_limit(size=1 << 20)
        assert pt.OutOfMemoryError is pt.cuda.OutOfMemoryError
        try:
            pt.randn(1000, 1000)
        except pt.cuda.OutOfMemoryError as e:
            msg = str(e)
            assert isinstance(e, RuntimeError) and isinstance(e, MemoryError)
            assert type(e.__cause__).__name__ == "OutOfMemoryError", repr(e.__cause__)
        else:
            raise AssertionError("no error")
        for part in ("random_normal (polyten_cuda kernel): out of memory on cuda:0",
                     "tried to allocate 3.81 MiB", "39.50 KiB in use by tensors",  # 512-B units
                     "free of 16.00 GiB on the device", "polyten.cuda.empty_cache()",
                     "reduce the batch size"):
            assert part in msg, (part, msg)
        cp.get_default_memory_pool().set_limit(size=0)
        a, w = pt.randn(300, 300), pt.randn(300, 300, requires_grad=True)
        loss = (a @ w).sum()
        cp.get_default_memory_pool().set_limit(size=cp.get_default_memory_pool().used_bytes()
                                               + 1000)
        try:  # a backward kernel, through the autograd engine
            loss.backward()
        except MemoryError as e:
            assert "(polyten_cuda kernel): out of memory" in str(e), e
        else:
            raise AssertionError("no error in the backward")
        cp.get_default_memory_pool().set_limit(size=0)
        (a @ w).sum().backward()  # as in torch, the nodes run before the failure are spent
        assert w.grad.shape == (300, 300)
        assert (x @ x).shape == (100, 100)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_convolutions_pass_their_own_precision_to_cublas():
    """Every GEMM of a float32 convolution (forward, input and weight gradients) asks cuBLAS for
    TensorFloat-32 by default and for float32 with ``allow_tf32 = False``; matrix products keep
    ``set_float32_matmul_precision``'s; other dtypes are untouched."""
    r = _run("""
        import polyten as pt
        import polyten.nn.functional as F
        calls = cupy_standin.CUBLAS_CALLS

        def conv_types(dtype="float32"):
            x = pt.ones((2, 3, 6, 6), device="cuda", dtype=dtype, requires_grad=True)
            w = pt.ones((4, 3, 3, 3), device="cuda", dtype=dtype, requires_grad=True)
            calls.clear()
            F.conv2d(x, w, padding=1).sum().backward()
            return [c[1]["computeType"] for c in calls]

        def product_type():  # a batched product: polyten_cuda.gemm's cuBLAS call
            calls.clear()
            pt.ones((2, 4, 5), device="cuda") @ pt.ones((2, 5, 6), device="cuda")
            return [c[1]["computeType"] for c in calls]

        assert conv_types() == ["32F_FAST_TF32"] * 3, conv_types()
        assert product_type() == ["32F"]
        assert conv_types("float16") == ["32F"] * 3 and conv_types("float64") == ["64F"] * 3
        pt.backends.cudnn.allow_tf32 = False
        pt.backends.cuda.matmul.allow_tf32 = True
        assert conv_types() == ["32F"] * 3 and product_type() == ["32F_FAST_TF32"]
        pt.backends.cudnn.conv.fp32_precision = "tf32"
        assert conv_types() == ["32F_FAST_TF32"] * 3
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]


@needs_cxx
def test_tf32_flags_on_a_gpu_without_tensorfloat32_are_silent_and_take_float32():
    """Below compute capability 8.0 (a T4, a V100) the TF32 flags change nothing, without a
    warning, as in torch: CuPy's own warning for its compute type is not passed on, products
    and convolutions ask cuBLAS for plain float32."""
    r = _run("""
        import warnings
        cupy_standin.CAPABILITY[0] = (7, 5)
        warnings.simplefilter("error")
        import polyten as pt
        import polyten.nn.functional as F
        calls = cupy_standin.CUBLAS_CALLS
        pt.backends.cuda.matmul.allow_tf32 = True
        pt.set_float32_matmul_precision("medium")
        x = pt.ones((2, 3, 6, 6), device="cuda")  # loads the backend: the settings reach it
        assert cupy_standin.COMPUTE_TYPES["float32"] == 1  # CuPy's default compute
        w = pt.ones((4, 3, 3, 3), device="cuda")
        calls.clear()
        F.conv2d(x, w, padding=1)
        pt.ones((2, 4, 5), device="cuda") @ pt.ones((2, 5, 6), device="cuda")
        assert [c[1]["computeType"] for c in calls] == ["32F", "32F"], calls
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]


def test_nvtx_reaches_cupy():
    r = _run("""
        import polyten as pt
        nvtx = pt.cuda.nvtx
        with nvtx.range("epoch {}", 1):
            nvtx.mark("batch")
        assert nvtx.range_pop() == -1
        assert cupy_standin.NVTX_EVENTS == [("push", "epoch 1"), ("mark", "batch"), ("pop",)]
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-4000:]


@needs_cxx
def test_a_wrong_target_is_reported_at_the_next_read():
    """An out-of-range class target costs nothing at the call and raises, naming the op and
    the user's line, at the next host read; ``POLYTEN_SYNC_CHECKS`` reports it at the call."""
    r = _run(_STEPS, """
        x = pt.randn(4, 20, device=dev)
        bad = pt.tensor([0, 1, 7, 2], device=dev)
        S.clear()
        loss = F.cross_entropy(mlp(x), bad)   # LINE-OF-THE-CALL
        assert "d2h" not in S, dict(S)
        try:
            loss.item()
        except IndexError as e:
            msg = str(e)
        else:
            raise AssertionError("no error at the read")
        assert "cross_entropy" in msg and "7" in msg and "<string>" in msg, msg
        pt.cuda.set_sync_checks(True)
        try:
            F.cross_entropy(mlp(x), bad)
        except IndexError as e:
            assert "detected at the first host read" not in str(e)
        else:
            raise AssertionError("no error at the call")
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-6000:]


@needs_cxx
def test_launch_count_script():
    """``benchmarks/cuda_launches.py`` (launches and host traffic of bench_cuda's steps on the
    stand-in): the digits and transformer steps cause no host traffic, and the digits step
    stays within its launch budget --
    a count, not a time (20 launches when written: the Adam step is one multi-tensor launch,
    cross_entropy over 10 classes one launch plus its reduction); with ``--calls``, neither
    step calls ``cupy.matmul`` (the products are direct GEMMs) or a CuPy reduction, and the
    transformer step stays within its budget of CuPy API calls (293 when written; 409 before
    the direct linear; 271 with the bias gradients as row kernels)."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "cuda_launches.py"),
                        "--cases", "digits,transformer", "--top", "3", "--calls"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    row = next(line for line in r.stdout.splitlines() if line.startswith("digits"))
    launches, d2h, h2d, sync = (int(v) for v in row.split()[-4:])
    assert (d2h, h2d, sync) == (0, 0, 0), row
    assert launches <= 23, f"the digits training step launches {launches} kernels: {row}"
    # a transformer LM step (LayerNorm, attention, GELU, AdamW, clip_grad_norm_): no waits
    row = next(line for line in r.stdout.splitlines() if line.startswith("transformer"))
    assert tuple(int(v) for v in row.split()[-3:]) == (0, 0, 0), row
    calls = [line for line in r.stdout.splitlines() if "CuPy API calls:" in line]
    assert len(calls) == 2 and not any("cupy.matmul" in line for line in calls), calls
    # nor a CuPy reduction (bias gradients, the losses' divisor, clip_grad_norm_'s total:
    # row kernels), whose host time is several times a RawKernel's
    for name in ("ReductionKernel", "ndarray.sum", "ndarray.max", "cupy.sum", "cupy.sqrt"):
        assert not any(f"{name} " in line for line in calls), (name, calls)
    total = int(calls[1].split("CuPy API calls:")[1].split(":")[0])
    assert total <= 300, calls[1]


@needs_cxx
def test_sampling_launches_do_not_grow_with_rows():
    """multinomial with replacement searches every row's cdf in one launch (it was a search
    per row: 145 launches for 64 rows), a batched searchsorted is one launch (it was one per
    row), and a dropout forward is one launch (the mask and the product in one Philox pass;
    it was five, then two)."""
    r = _run("""
        import cupy_standin as cs
        import polyten as pt
        import polyten.nn.functional as F
        w = pt.rand(64, 50, device="cuda")
        x = pt.randn(32, 32, device="cuda")
        pt.multinomial(w, 3, replacement=True)
        F.dropout(x, 0.2)
        cs.STATS.clear()
        pt.multinomial(w, 3, replacement=True)
        a = cs.STATS["launch"]
        cs.STATS.clear()
        F.dropout(x, 0.2)
        b = cs.STATS["launch"]
        seq, vals = w.sort(dim=1)[0], pt.rand(64, 7, device="cuda")
        cs.STATS.clear()
        pt.searchsorted(seq, vals)
        print("LAUNCHES", a, b, cs.STATS["launch"])
    """)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    a, b, c = (int(v) for v in r.stdout.split("LAUNCHES")[1].split())
    assert a <= 14 and b == 1 and c == 1, (a, b, c)


@needs_cxx
def test_bench_cuda_runs(tmp_path):
    """``benchmarks/bench_cuda.py`` end to end on the stand-in (small matmuls, the digits
    step, tiny row-kernel shapes; the times mean nothing here), so the script a GPU session
    runs is known to work."""
    out = tmp_path / "rows.json"
    r = _run(f"""
        sys.path.insert(0, {os.path.join(ROOT, "benchmarks")!r})
        import bench_cuda
        raise SystemExit(bench_cuda.main(["--quick", "--cases",
                                          "matmul,digits,digits_ieee,digits_amp,digits_bf16,"
                                          "digits_bf16w,overhead,"
                                          "random,rows,sums,convk", "--tiny-rows",
                                          "--matmul-size", "64", "--json", {str(out)!r}]))
    """)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    import json
    rows = json.loads(out.read_text())
    assert [row["case"] for row in rows] == [
        "matmul float32 64x64", "matmul float32 tf32 64x64", "matmul float16 64x64",
        "matmul bfloat16 64x64"] + [
        f"bmm {dt} 2x(64x16 @ 16x64) q@k.mT" for dt in ("float32", "float16", "bfloat16")] + [
        "train step digits (batch 64, adam)",
        "train step digits (batch 64, adam, float32 convolutions without TF32)",
        "train step digits (batch 64, adam, autocast + GradScaler)",
        "train step digits (batch 64, adam, autocast bfloat16)",
        "train step digits (batch 64, adam, bfloat16 weights)",
        "host cost per call: cupy a + b",
        "host cost per call: cupy ElementwiseKernel (fused relu_backward)",
        "host cost per call: cupy RawKernel (multi-tensor Adam, 1 tensor)",
        "host cost per call: polyten a + b",
        "host cost per call: cupy x @ w.T + b (8x64, 64x64)",
        "host cost per call: polyten linear (8x64, 64x64, bias)",
        "host cost per allocation (64 arrays alive): CuPy's pool",
        "host cost per allocation (64 arrays alive): polyten's peak tracker",
        "host cost per allocation (4096 arrays alive): CuPy's pool",
        "host cost per allocation (4096 arrays alive): polyten's peak tracker",
        "random uniform float32 4096", "random normal float32 4096",
        "random dropout p=0.1 fwd+bwd float32 4096"] + [
        f"rows {op} {shape} {what}" for op, shape in (
            ("softmax", "8x64"), ("softmax", "2x1500"), ("cross_entropy", "8x100"),
            ("layer_norm", "8x32"), ("batch_norm", "4x3x4x4"))
        for what in ("forward", "forward+backward")] + [
        "sum column 40x70", "sum column 9000x40", "sum channel 2x3x5x5"] + [
        f"conv kernel {k} 2x3x6x5 -> 4" for k in ("im2col", "from_grid", "to_grid", "col2im")
    ] + [f"conv wgrad 2x3x6x5 -> 4 (4x27, K=60) {w}" for w in ("one GEMM", "split-K 2")]
    assert all(row.get("polyten_tflops", 1) > 0 and row.get("polyten_ms", 1) > 0
               and row.get("polyten_us", 1) > 0 and row.get("polyten_host_ms", 1) > 0
               for row in rows)
    assert sum("polyten_host_ms" in row for row in rows) == 5  # every training step
    assert all(row["max_diff_rel"] < 1e-5 for row in rows if "split-K" in row["case"])


@needs_cxx
def test_cuda_seeds_given_after_polyten_manual_seed_win():
    """``polyten.manual_seed`` seeds a backend loaded later at its first draw; a
    ``polyten.cuda.manual_seed_all`` / ``manual_seed`` given in between must still decide the
    draws (the backend takes the pending global seed first)."""
    r = _run("""
        import numpy as np, polyten as pt
        pt.manual_seed(0)                       # cuda not loaded yet
        pt.cuda.manual_seed_all(7)              # loads it
        a = pt.randn(4, device="cuda").cpu().numpy()
        pt.manual_seed(0)
        pt.cuda.manual_seed_all(7)
        b = pt.randn(4, device="cuda").cpu().numpy()
        pt.manual_seed(0)
        pt.cuda.manual_seed(7)
        c = pt.randn(4, device="cuda").cpu().numpy()
        pt.manual_seed(0)
        d = pt.randn(4, device="cuda").cpu().numpy()
        assert np.array_equal(a, b) and np.array_equal(a, c), (a, b, c)
        assert not np.array_equal(a, d)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-3000:]
