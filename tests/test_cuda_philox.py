"""The cuda backend's Philox4x32-10 generator without a GPU.

The kernel sources (``polyten_cuda.philox``) are compiled with the host C++ compiler by the
CuPy stand-in and checked against Random123's published known-answer vectors and against an
independent pure-Python Philox (``philox_ref.py``, written from the paper), value by value;
nvcc compiles them for the device.  The statistics use tens of thousands of samples and
bounds many standard errors wide, with fixed keys (deterministic).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import philox_ref as R
from _nvcc import compile_only
from cupy_standin import CXX, NVCC_PRELUDE, fake_cupy
from polyten_cuda import philox
from polyten_cuda.fused_src import params as philox_params

pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) to run the "
                                                   "Philox CUDA kernels on the CPU")


@pytest.fixture(scope="module")
def cp():
    return fake_cupy()


@pytest.fixture(scope="module")
def kernels(cp):
    return philox.compile_kernels(cp)


def gen(cp, kernels, key=0x0123456789ABCDEF, offset=0):
    return philox.PhiloxGenerator(cp, kernels, key=key, seed=7, offset=offset)


def test_reference_matches_known_answers():
    for ctr, key, out in R.KAT:
        assert R.philox_ref(ctr, key) == out


@pytest.mark.parametrize("ctr,key,out", R.KAT)
def test_kernel_block_matches_known_answers(cp, ctr, key, out):
    k = cp.ElementwiseKernel(
        "uint32 c0, uint32 c1, uint32 c2, uint32 c3, uint32 k0, uint32 k1", "uint32 y",
        "polyten_u4 r = polyten_philox(c0, c1, c2, c3, k0, k1);\n"
        "y = i == 0 ? r.x : i == 1 ? r.y : i == 2 ? r.z : r.w;\n",
        "kat", preamble=philox.PHILOX_SRC)
    y = k(*ctr, *key, np.empty(4, dtype=np.uint32))
    assert tuple(int(v) for v in y) == out


def test_uniform_values_are_the_reference_blocks(cp, kernels):
    key = 0x0123456789ABCDEF
    g = gen(cp, kernels, key, offset=5)
    f32, f64 = g.random(64, dtype="float32"), g.random(64)
    want32, want64 = R.uniform32(key, 5, 64), R.uniform64(key, 6, 64)
    assert f32.dtype == np.float32 and f64.dtype == np.float64
    assert f32.tolist() == want32 and f64.tolist() == want64
    assert g.offset == 7


def test_normal_and_exponential_values_are_the_reference_formulas(cp, kernels):
    key = 42
    g = gen(cp, kernels, key)
    z64, z32, e = g.standard_normal(64), g.standard_normal(64, dtype="float32"), \
        g.standard_exponential(64)
    want64, want32, want_e = R.normal64(key, 0, 64), R.normal32(key, 1, 64), \
        R.exponential64(key, 2, 64)
    np.testing.assert_allclose(z64, want64, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(z32, want32, rtol=1e-5, atol=1e-5)  # float arithmetic
    np.testing.assert_allclose(e, want_e, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("low,high,endpoint", [(0, 10, False), (-5, 5, True),
                                               (-2 ** 63, 2 ** 63 - 1, True),
                                               (0, 3 * 2 ** 61, False), (7, 8, False)])
def test_integers_are_the_reference_lemire_draws(cp, kernels, low, high, endpoint):
    key = 0xDEADBEEF12345678
    g = gen(cp, kernels, key, offset=3)
    got = g.integers(low, high, size=200, endpoint=endpoint)
    span = (high - low + (1 if endpoint else 0)) % 2 ** 64
    assert got.dtype == np.int64
    assert got.tolist() == [R.lemire(key, 3, i, low, span) for i in range(200)]


def test_integers_with_a_huge_range_are_unbiased(cp, kernels):
    # range 3 * 2**62 rejects a quarter of the candidates.  Biased methods fail one of the
    # two checks: a modulo puts half the mass in the first third of the range, the high
    # product without the rejection half of it on the values 0 mod 3 (from low)
    g = gen(cp, kernels, 99)
    low, span = -2 ** 63, 3 * 2 ** 62
    x = g.integers(low, low + span, size=60_000)
    assert x.min() >= low and x.max() < low + span
    third = (x // 2 ** 62 + 2).astype(int)  # floor((x - low) / 2**62), exactly in int64
    thirds = np.bincount(third, minlength=3) / x.size
    np.testing.assert_allclose(thirds, [1 / 3] * 3, atol=0.01)  # ~5 standard errors
    residues = np.bincount((x % 3 - low % 3) % 3, minlength=3) / x.size
    np.testing.assert_allclose(residues, [1 / 3] * 3, atol=0.01)


def test_statistics(cp, kernels):
    g = gen(cp, kernels, 2024)
    n = 100_000
    u = g.random(n)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    z = g.standard_normal(n, dtype="float32")
    assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    # a Kolmogorov distance to the normal CDF well under the 0.1% critical value (1.95/sqrt n)
    zs = np.sort(z.astype(np.float64))
    cdf = 0.5 * (1 + np.vectorize(math.erf)(zs / math.sqrt(2)))
    d = np.max(np.abs(cdf - np.arange(1, n + 1) / n))
    assert d < 1.95 / math.sqrt(n), d
    e = g.standard_exponential(n)
    assert e.min() >= 0 and abs(e.mean() - 1) < 5 / math.sqrt(n)
    k = g.integers(0, 6, size=n)
    counts = np.bincount(k, minlength=6)
    chi2 = float(((counts - n / 6) ** 2 / (n / 6)).sum())
    assert chi2 < 20.5, chi2  # 5 degrees of freedom: 0.1% critical value


def test_consecutive_draws_and_elements_are_uncorrelated(cp, kernels):
    g = gen(cp, kernels, 5)
    a, b = g.random(50_000), g.random(50_000)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(50_000)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 5 / math.sqrt(50_000)


def test_state_round_trip_and_layout(cp, kernels):
    g = gen(cp, kernels, key=2 ** 64 - 3, offset=11)
    raw = g.state_bytes()
    assert len(raw) == philox.STATE_BYTES
    assert raw == ((2 ** 64 - 3).to_bytes(8, "little") + (11).to_bytes(8, "little")
                   + (7).to_bytes(8, "little"))
    first = [g.random(8).tolist(), g.integers(0, 100, size=8).tolist()]
    h = philox.PhiloxGenerator.from_bytes(cp, kernels, raw)
    assert [h.random(8).tolist(), h.integers(0, 100, size=8).tolist()] == first
    assert (h.key, h.offset, h.seed) == (2 ** 64 - 3, 13, 7)


def test_empty_draws_advance_the_offset_and_shapes_follow_numpy(cp, kernels):
    g = gen(cp, kernels, 1)
    assert g.random(0).shape == (0,) and g.offset == 1
    assert g.random((2, 3), dtype="float32").shape == (2, 3)
    assert g.standard_normal(None).shape == ()
    assert g.integers(5, size=(4,), dtype="int32").dtype == np.int32


def test_errors(cp, kernels):
    g = gen(cp, kernels, 1)
    with pytest.raises(ValueError, match=r"low >= high \(3 >= 3\)"):
        g.integers(3, 3, size=2)
    with pytest.raises(ValueError, match="does not fit in int64"):
        g.integers(0, 2 ** 63 + 1, size=2)
    with pytest.raises(TypeError, match="float32 or float64, not float16"):
        g.random(3, dtype="float16")
    with pytest.raises(ValueError, match="24-byte state .* got 5 bytes"):
        philox.PhiloxGenerator.from_bytes(cp, kernels, b"12345")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_dropout_mask_is_the_reference_uniform_compared_with_p(cp, kernels, dtype):
    key, p = 77, 0.3
    g = gen(cp, kernels, key, offset=4)
    m = g.dropout_mask((300,), p, dtype)
    assert m.dtype == np.dtype(dtype) and m.shape == (300,) and g.offset == 5
    if dtype == "float64":
        keep = np.array(R.uniform64(key, 4, 300)) >= p
        scale = np.float64(1 / (1 - p))
    else:  # float16 draws and compares in float32, as PyTorch's fused dropout
        keep = np.array(R.uniform32(key, 4, 300), dtype=np.float32) >= np.float32(p)
        scale = np.float32(1 / (1 - p)).astype(dtype)
    assert 0.2 < 1 - keep.mean() < 0.4
    np.testing.assert_array_equal(m, np.where(keep, scale, 0).astype(dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dropout_draws_dropout_masks_values_and_multiplies_in_one_launch(cp, kernels, dtype):
    """``dropout(x, p)`` gives the mask ``dropout_mask`` would draw at the same offset (the
    reference Philox uniform compared with p, element i at counter i in C order even for a
    transposed x) and ``x * mask`` as the dtype's own multiply rounds it, advancing the
    offset by one draw."""
    if dtype == "bfloat16":
        dt = pytest.importorskip("ml_dtypes").bfloat16
    else:
        dt = np.dtype(dtype)
    key, p = 77, 0.3
    rng = np.random.default_rng(2)
    x = cp.asarray(rng.standard_normal((20, 15)).astype(dt)).T  # not C-contiguous
    g = gen(cp, kernels, key, offset=4)
    y, m = g.dropout(x, p)
    assert g.offset == 5
    assert y.dtype == m.dtype == x.dtype and y.shape == m.shape == (15, 20)
    if dtype == "float64":
        keep = np.array(R.uniform64(key, 4, 300)) >= p
    else:
        keep = np.array(R.uniform32(key, 4, 300), dtype=np.float32) >= np.float32(p)
    scale = np.float64(1 / (1 - p)).astype(np.float32 if dtype != "float64" else np.float64)
    want_m = np.where(keep.reshape(15, 20), scale, 0).astype(dt)
    np.testing.assert_array_equal(np.asarray(m), want_m)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x) * want_m)
    if dtype != "bfloat16":  # dropout_mask draws the same mask from the same offset
        g2 = gen(cp, kernels, key, offset=4)
        np.testing.assert_array_equal(np.asarray(g2.dropout_mask((15, 20), p, dtype)), want_m)


def test_a_refused_launch_draws_nothing(cp, kernels):
    """A launch CuPy refuses (which polyten then retries in float32) leaves the offset where
    it was: the retry draws what the first call would have."""
    def refuse(*args):
        raise TypeError("no loop matching the specified signature")
    g = gen(cp, dict(kernels, dropout=refuse), 5, offset=9)
    with pytest.raises(TypeError):
        g.dropout_mask((4,), 0.5, "float32")
    assert g.offset == 9


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the Philox sources "
                    "are only compiled for the host")
def test_philox_sources_compile_with_nvcc(tmp_path):
    """Each Philox kernel for each storage type it is launched with, inside a __global__
    kernel shaped like CuPy's elementwise ones (``i`` a ptrdiff_t): a compile-only check of
    the device code, no GPU needed."""
    ctype = {"uint32": "unsigned int", "int64": "long long", "float64": "double"}
    units = []
    for name, (ins, outs, op) in philox.KERNELS.items():
        outs = philox_params(outs)
        types = ("int64",) if outs[0][0] != "T" else \
            ("float16", "bfloat16", "float32", "float64") if name == "dropout_apply" else \
            ("float16", "float32", "float64") if name == "dropout" else ("float32", "float64")
        for t in types:
            # an array parameter (T) is read at i, a scalar passed by value, as in CuPy
            sig = [f"T* _p_{pname}" if ty == "T" else f"{ctype[ty]} {pname}"
                   for ty, pname, _ in philox_params(ins)]
            sig += [f"{ty}* _p_{oname}" for ty, oname, _ in outs]
            pro = [f"const T {pname} = _p_{pname}[i];" for ty, pname, _ in philox_params(ins)
                   if ty == "T"]
            pro += [f"{ty}& {oname} = _p_{oname}[i];" for ty, oname, _ in outs]
            units.append(f"namespace k{len(units)} {{ typedef {t} T;\n"
                         f"__global__ void polyten_philox_{name}(long long _n, "
                         f"{', '.join(sig)}) {{\n"
                         f"for (ptrdiff_t i = blockIdx.x * blockDim.x + threadIdx.x; i < _n; "
                         f"i += (ptrdiff_t)blockDim.x * gridDim.x) {{\n"
                         + "\n".join(pro) + f"\n{{\n{op}}}\n}}\n}}\n}}\n")
    compile_only(tmp_path, units, prelude=NVCC_PRELUDE + philox.PHILOX_SRC, stem="philox")
