"""Random sampling: reproducibility per seed and backend, distributions, in-place fills, errors.

Statistical checks use fixed seeds and large samples with loose bounds (many standard errors),
so they are deterministic and far from flaky.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, unregister_plugin


def host(t):
    return np.asarray(t.numpy())


def _draws():
    """One draw of every sampler (the reproducibility tests compare two runs of this)."""
    p = pt.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    out = [pt.rand(5), pt.randn(2, 3, dtype=pt.float64), pt.randint(0, 100, (6,)),
           pt.randperm(8), pt.normal(1.0, 2.0, size=(4,)),
           pt.normal(pt.zeros(3), pt.ones(3)), pt.bernoulli(pt.full((6,), 0.5)),
           pt.bernoulli(pt.zeros(4, dtype=pt.int32), 0.3), pt.multinomial(p, 2),
           pt.multinomial(p, 5, replacement=True), pt.rand_like(pt.zeros(3)),
           pt.randn_like(pt.zeros(3)), pt.randint_like(pt.zeros(3), 10),
           pt.rand(2, dtype=pt.complex64), pt.randn(3, dtype=pt.float16)]
    out.append(pt.empty(4).uniform_(-1, 1))
    out.append(pt.empty(4).normal_(3, 0.5))
    out.append(pt.zeros(4).bernoulli_(0.4))
    out.append(pt.zeros(4, dtype=pt.int64).random_(0, 50))
    out.append(pt.empty(4).exponential_(2.0))
    return [host(t) for t in out]


def test_same_seed_same_values():
    pt.manual_seed(1234)
    a = _draws()
    pt.manual_seed(1234)
    b = _draws()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_different_seeds_differ():
    pt.manual_seed(1)
    a = host(pt.rand(100))
    pt.manual_seed(2)
    b = host(pt.rand(100))
    assert not np.array_equal(a, b)
    pt.manual_seed(1)
    c = host(pt.randperm(50))
    pt.manual_seed(2)
    assert not np.array_equal(c, host(pt.randperm(50)))


def test_consecutive_draws_differ_and_sequence_repeats():
    pt.manual_seed(7)
    a, b = host(pt.rand(10)), host(pt.rand(10))
    assert not np.array_equal(a, b)
    pt.manual_seed(7)
    np.testing.assert_array_equal(host(pt.rand(10)), a)
    np.testing.assert_array_equal(host(pt.rand(10)), b)


def test_seed_and_initial_seed():
    pt.manual_seed(42)
    assert pt.initial_seed() == 42
    pt.manual_seed(-1)  # negative seeds wrap modulo 2**64, as PyTorch
    assert pt.initial_seed() == 2 ** 64 - 1
    s = pt.seed()
    assert isinstance(s, int) and pt.initial_seed() == s
    a = host(pt.rand(5))
    pt.manual_seed(s)
    np.testing.assert_array_equal(host(pt.rand(5)), a)


@pytest.mark.parametrize("bad, exc", [(1.5, TypeError), ("3", TypeError), (2 ** 64, ValueError),
                                      (-2 ** 63 - 1, ValueError)])
def test_manual_seed_errors(bad, exc):
    with pytest.raises(exc, match="manual_seed: seed"):
        pt.manual_seed(bad)


def _cpu_clone(name):
    from polyten_cpu.backend import make_backend
    base = make_backend()
    return Backend(name, base.kernels, dtypes=base.dtypes, native_dtype=base.native_dtype,
                   dtype_name=base.dtype_name, is_native=base.is_native, seed=base.seed)


class _Plugin:
    def __init__(self, name):
        self.name = name

    @hookimpl
    def polyten_register_backends(self, register):
        register(BackendSpec(self.name, load=lambda: _cpu_clone(self.name)))


def test_manual_seed_reseeds_loaded_backends():
    pname = register_plugin(_Plugin("rngloaded"), name="test-rng-loaded")
    try:
        pt.rand(3, device="rngloaded")  # loaded and advanced before seeding
        pt.manual_seed(99)
        a = host(pt.rand(6))
        b = host(pt.rand(6, device="rngloaded"))
        np.testing.assert_array_equal(a, b)  # same generator algorithm, same seed
    finally:
        unregister_plugin(pname)


def test_backend_loaded_after_manual_seed_is_seeded_with_it():
    pt.manual_seed(2024)
    a = host(pt.randn(6))
    pname = register_plugin(_Plugin("rnglater"), name="test-rng-later")
    try:
        b = host(pt.randn(6, device="rnglater"))
        np.testing.assert_array_equal(a, b)
    finally:
        unregister_plugin(pname)


# ----------------------------------------------------------------------- dtypes / shapes ---
@pytest.mark.parametrize("fn", [pt.rand, pt.randn])
def test_float_dtypes_are_kept(fn):
    pt.manual_seed(0)
    assert fn(3).dtype is pt.float32 and host(fn(3)).dtype == np.float32
    assert host(fn(3, dtype=pt.float64)).dtype == np.float64
    assert host(fn(3, dtype=pt.float16)).dtype == np.float16
    assert host(fn(2, 3, dtype=pt.complex64)).dtype == np.complex64
    assert fn((2, 3)).shape == (2, 3) and fn(2, 3).shape == (2, 3)
    assert fn(size=(4,)).shape == (4,) and fn(()).shape == ()
    assert fn(0, 3).shape == (0, 3)


def test_default_dtype_applies_to_samplers():
    pt.set_default_dtype(pt.float64)
    try:
        assert pt.rand(2).dtype is pt.float64
        assert pt.normal(0.0, 1.0, size=(2,)).dtype is pt.float64
    finally:
        pt.set_default_dtype(pt.float32)


# --------------------------------------------------------------------------- distributions --
def test_rand_is_uniform_on_unit_interval():
    pt.manual_seed(11)
    for dt in (pt.float32, pt.float64, pt.float16):
        x = host(pt.rand(200_000, dtype=dt)).astype(np.float64)
        assert x.min() >= 0.0 and x.max() < 1.0
        assert abs(x.mean() - 0.5) < 0.005
        assert abs(x.var() - 1 / 12) < 0.002
        hist = np.histogram(x, bins=10, range=(0, 1))[0] / x.size
        assert np.all(np.abs(hist - 0.1) < 0.005)


def test_randn_is_standard_normal():
    pt.manual_seed(12)
    for dt in (pt.float32, pt.float64):
        x = host(pt.randn(200_000, dtype=dt)).astype(np.float64)
        assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
        assert abs(np.mean(np.abs(x) < 1) - 0.6827) < 0.005
    z = host(pt.randn(200_000, dtype=pt.complex128))
    assert abs(np.mean(np.abs(z) ** 2) - 1) < 0.02
    assert abs(z.real.var() - 0.5) < 0.01 and abs(z.imag.var() - 0.5) < 0.01


def test_normal_forms():
    pt.manual_seed(13)
    x = host(pt.normal(3.0, 2.0, size=(100_000,))).astype(np.float64)
    assert abs(x.mean() - 3) < 0.03 and abs(x.std() - 2) < 0.03
    mean = pt.tensor([[-10.0], [10.0]])
    std = pt.tensor([0.5, 1.0, 2.0])
    y = pt.normal(mean, std)
    assert y.shape == (2, 3) and y.dtype is pt.float32
    big = host(pt.normal(pt.full((50_000,), -4.0, dtype=pt.float64), 0.5))
    assert big.dtype == np.float64
    assert abs(big.mean() + 4) < 0.02 and abs(big.std() - 0.5) < 0.02
    s = host(pt.normal(1.0, pt.full((50_000,), 3.0)))
    assert abs(s.mean() - 1) < 0.1 and abs(s.std() - 3) < 0.1
    zero = host(pt.normal(pt.tensor([1.0, 2.0]), pt.tensor([0.0, 0.0])))
    np.testing.assert_array_equal(zero, [1.0, 2.0])


def test_randint_range_and_uniformity():
    pt.manual_seed(14)
    x = host(pt.randint(-3, 7, (100_000,)))
    assert x.dtype == np.int64 and x.min() == -3 and x.max() == 6
    counts = np.bincount(x + 3) / x.size
    assert np.all(np.abs(counts - 0.1) < 0.005)
    assert host(pt.randint(10, (5,))).max() < 10
    assert pt.randint(high=4, size=(3,)).shape == (3,)
    assert pt.randint(0, 256, (10,), dtype=pt.uint8).dtype is pt.uint8
    f = pt.randint(0, 10, (50,), dtype=pt.float32)
    assert f.dtype is pt.float32 and np.all(np.mod(host(f), 1) == 0)
    b = host(pt.randint(0, 2, (1000,), dtype=pt.bool))
    assert b.dtype == np.bool_ and 0 < b.sum() < 1000


def test_randperm_is_a_permutation():
    pt.manual_seed(15)
    for n in (0, 1, 10, 1000):
        p = host(pt.randperm(n))
        assert p.dtype == np.int64
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    f = pt.randperm(20, dtype=pt.float32)
    np.testing.assert_array_equal(np.sort(host(f)), np.arange(20, dtype=np.float32))
    assert not np.array_equal(host(pt.randperm(100)), np.arange(100))


def test_bernoulli():
    pt.manual_seed(16)
    probs = pt.full((100_000,), 0.25)
    x = host(pt.bernoulli(probs))
    assert x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    assert abs(x.mean() - 0.25) < 0.01
    edges = host(pt.bernoulli(pt.tensor([0.0, 1.0, 0.0, 1.0], dtype=pt.float64)))
    np.testing.assert_array_equal(edges, [0, 1, 0, 1])
    s = host(pt.bernoulli(pt.zeros(100_000, dtype=pt.int64), 0.7))
    assert s.dtype == np.int64 and abs(s.mean() - 0.7) < 0.01
    m = host(pt.tensor([0.9] * 10_000).bernoulli())
    assert abs(m.mean() - 0.9) < 0.02


def test_multinomial_with_replacement_frequencies():
    pt.manual_seed(17)
    w = pt.tensor([1.0, 0.0, 3.0, 6.0])
    x = host(pt.multinomial(w, 100_000, replacement=True))
    assert x.dtype == np.int64 and x.shape == (100_000,)
    freq = np.bincount(x, minlength=4) / x.size
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.3, 0.6], atol=0.01)
    assert freq[1] == 0.0  # zero weight: never drawn
    rows = host(pt.multinomial(pt.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), 7, True))
    np.testing.assert_array_equal(rows, [[1] * 7, [0] * 7])


def test_multinomial_without_replacement_is_distinct_and_weighted():
    pt.manual_seed(18)
    w = pt.tensor([[5.0, 1.0, 1.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    firsts = []
    for _ in range(2000):
        s = host(pt.multinomial(w, 5))
        assert s.shape == (2, 5)
        for row in s:
            assert sorted(row.tolist()) == [0, 1, 2, 3, 4]
        firsts.append(s[0, 0])
    # category 0 has weight 5 of 8.5: drawn first about 59% of the time
    assert abs(np.mean(np.array(firsts) == 0) - 5 / 8.5) < 0.04
    # zero weights come only after the positive ones are used up (as PyTorch)
    np.testing.assert_array_equal(host(pt.multinomial(pt.tensor([1.0, 0.0, 0.0]), 1)), [0])
    with pytest.raises(ValueError, match="only 1 categories of non-zero weight"):
        pt.multinomial(pt.tensor([0.0, 2.0, 0.0]), 3)  # as torch: not enough categories


def test_exponential_and_uniform_and_normal_inplace_stats():
    pt.manual_seed(19)
    e = host(pt.empty(100_000).exponential_(2.0)).astype(np.float64)
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.01
    u = host(pt.empty(100_000, dtype=pt.float64).uniform_(-2.0, 3.0))
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.02
    n = host(pt.empty(100_000).normal_(-1.0, 0.25)).astype(np.float64)
    assert abs(n.mean() + 1) < 0.01 and abs(n.std() - 0.25) < 0.01
    r = host(pt.zeros(10_000, dtype=pt.uint8).random_())
    assert r.min() >= 0 and r.max() <= 255 and len(np.unique(r)) > 200
    r2 = host(pt.zeros(10_000).random_(5))
    assert set(np.unique(r2)) == {0.0, 1.0, 2.0, 3.0, 4.0}
    b = host(pt.zeros(10_000, dtype=pt.bool).random_())
    assert 0 < b.sum() < 10_000


def test_inplace_methods_write_through_memory_and_return_self():
    pt.manual_seed(20)
    for method, args in [("uniform_", (0.5, 1.5)), ("normal_", (0.0, 1.0)),
                         ("bernoulli_", (1.0,)), ("random_", (1, 9)),
                         ("exponential_", (1.0,))]:
        x = pt.zeros(1000)
        view = x.numpy()  # shares memory on the cpu backend
        out = getattr(x, method)(*args)
        assert out is x and x.dtype is pt.float32 and x.shape == (1000,)
        assert np.count_nonzero(view) > 900
        np.testing.assert_array_equal(view, host(x))


def test_bernoulli_inplace_with_tensor_probabilities_broadcasts():
    pt.manual_seed(21)
    x = pt.zeros(3000, 3, dtype=pt.int64)
    x.bernoulli_(pt.tensor([0.0, 1.0, 0.5]))
    h = host(x)
    assert h.dtype == np.int64
    assert h[:, 0].sum() == 0 and h[:, 1].sum() == 3000
    assert 1300 < h[:, 2].sum() < 1700  # independent draws per row, not one broadcast draw


def test_like_samplers():
    pt.manual_seed(22)
    base = pt.zeros(4, 2, dtype=pt.float64)
    assert pt.rand_like(base).dtype is pt.float64 and pt.rand_like(base).shape == (4, 2)
    assert pt.randn_like(base, dtype=pt.float32).dtype is pt.float32
    r = pt.randint_like(base, 3, 10)
    assert r.dtype is pt.float64 and host(r).min() >= 3 and host(r).max() < 10
    assert host(pt.randint_like(pt.zeros(50, dtype=pt.int32), 2)).max() < 2


# ---------------------------------------------------------------------------------- errors --
@pytest.mark.parametrize("call, exc, words", [
    (lambda: pt.rand(-1), ValueError, ["rand", "negative dimension -1"]),
    (lambda: pt.randn(2, -3), ValueError, ["randn", "negative"]),
    (lambda: pt.rand(2, dtype=pt.int64), TypeError, ["rand", "int64", "randint"]),
    (lambda: pt.randn(2, dtype=pt.bool), TypeError, ["randn", "bool"]),
    (lambda: pt.rand_like(pt.zeros(2, dtype=pt.int64)), TypeError, ["rand_like", "int64"]),
    (lambda: pt.randint(5, 5, (2,)), ValueError, ["randint", "low=5", "high=5"]),
    (lambda: pt.randint(7, 3, (2,)), ValueError, ["randint", "less than"]),
    (lambda: pt.randint(0, 300, (2,), dtype=pt.uint8), OverflowError, ["randint", "uint8"]),
    (lambda: pt.randint(-5, 0, (2,), dtype=pt.uint8), OverflowError, ["randint", "-5"]),
    (lambda: pt.randint(0, 5, (-2,)), ValueError, ["randint", "negative"]),
    (lambda: pt.randint(0, 5), TypeError, ["randint", "size"]),
    (lambda: pt.randint(0.5, 5, (2,)), TypeError, ["randint", "integer"]),
    (lambda: pt.randint(0, 5, (2,), dtype=pt.complex64), TypeError, ["randint", "complex64"]),
    (lambda: pt.randperm(-1), ValueError, ["randperm", "non-negative", "-1"]),
    (lambda: pt.randperm(300, dtype=pt.uint8), OverflowError, ["randperm", "uint8"]),
    (lambda: pt.randperm(2.5), TypeError, ["randperm", "int"]),
    (lambda: pt.randperm(3, dtype=pt.bool), TypeError, ["randperm", "bool"]),
    (lambda: pt.normal(0.0, -1.0, (2,)), ValueError, ["normal", "std >= 0.0", "-1"]),
    (lambda: pt.normal(pt.zeros(2), -1.0), ValueError, ["normal", "std"]),
    (lambda: pt.normal(pt.zeros(2), pt.tensor([1.0, -1.0])), ValueError,
     ["normal", "all elements of std"]),
    (lambda: pt.normal(0.0, 1.0), TypeError, ["normal", "size"]),
    (lambda: pt.normal(pt.zeros(2, dtype=pt.int64), 1.0), TypeError, ["normal", "int64"]),
    (lambda: pt.normal(pt.zeros(2, 2), pt.ones(3)), ValueError, ["normal", "(2, 2)", "(3,)"]),
    (lambda: pt.normal(pt.zeros(2), 1.0, size=(3,)), TypeError, ["normal", "size="]),
    (lambda: pt.bernoulli(pt.tensor([0.5, 1.5])), ValueError, ["bernoulli", "[0, 1]"]),
    (lambda: pt.bernoulli(pt.tensor([0.5, float("nan")])), ValueError, ["bernoulli", "nan"]),
    (lambda: pt.bernoulli(pt.tensor([-0.1])), ValueError, ["bernoulli"]),
    (lambda: pt.bernoulli(pt.zeros(3), 1.5), ValueError, ["bernoulli", "p=1.5"]),
    (lambda: pt.bernoulli(pt.tensor([1, 0])), TypeError, ["bernoulli", "int64", "p="]),
    (lambda: pt.bernoulli([0.5]), TypeError, ["bernoulli", "expected a tensor"]),
    (lambda: pt.multinomial(pt.tensor([1.0, 2, 3]), 4), ValueError,
     ["multinomial", "4 samples", "3 categories", "replacement"]),
    (lambda: pt.multinomial(pt.tensor([1.0, -2, 3]), 1), ValueError,
     ["multinomial", "non-negative"]),
    (lambda: pt.multinomial(pt.tensor([1.0, float("inf")]), 1), ValueError,
     ["multinomial", "inf"]),
    (lambda: pt.multinomial(pt.tensor([1.0, float("nan")]), 1, True), ValueError,
     ["multinomial", "nan"]),
    (lambda: pt.multinomial(pt.tensor([0.0, 0.0]), 1), ValueError, ["multinomial", "sum to 0"]),
    (lambda: pt.multinomial(pt.tensor([[1.0, 1.0], [0.0, 0.0]]), 1), ValueError,
     ["multinomial", "a row", "sum to 0"]),
    (lambda: pt.multinomial(pt.tensor([1, 2]), 1), TypeError, ["multinomial", "int64"]),
    (lambda: pt.multinomial(pt.ones(2, 2, 2), 1), ValueError, ["multinomial", "(2, 2, 2)"]),
    (lambda: pt.multinomial(pt.ones(3), 0), ValueError, ["multinomial", "num_samples=0"]),
    (lambda: pt.multinomial(pt.ones(0), 1, True), ValueError, ["multinomial", "no categories"]),
    (lambda: pt.zeros(3, dtype=pt.int64).uniform_(), TypeError, ["uniform_", "int64"]),
    (lambda: pt.zeros(3).uniform_(2, 1), ValueError, ["uniform_", "from=2.0 > to=1.0"]),
    (lambda: pt.zeros(3).normal_(0, -1), ValueError, ["normal_", "std"]),
    (lambda: pt.zeros(3, dtype=pt.int32).normal_(), TypeError, ["normal_", "int32"]),
    (lambda: pt.zeros(3).bernoulli_(1.5), ValueError, ["bernoulli_", "p=1.5"]),
    (lambda: pt.zeros(3).bernoulli_(pt.tensor([0.5, 2.0, 0.1])), ValueError,
     ["bernoulli_", "[0, 1]"]),
    (lambda: pt.zeros(3).bernoulli_(pt.tensor([0.5, 0.5])), ValueError, ["bernoulli_", "(2,)"]),
    (lambda: pt.zeros(3).bernoulli_(pt.tensor([1, 0, 1])), TypeError, ["bernoulli_", "int64"]),
    (lambda: pt.zeros(3).random_(5, 5), ValueError, ["random_", "from=5 >= to=5"]),
    (lambda: pt.zeros(3, dtype=pt.complex64).random_(), TypeError, ["random_", "complex"]),
    (lambda: pt.zeros(3).exponential_(-1), ValueError, ["exponential_", "lambda=-1"]),
    (lambda: pt.zeros(3, dtype=pt.int64).exponential_(), TypeError, ["exponential_", "int64"]),
    (lambda: pt.rand(2, generator=object()), TypeError,
     ["rand", "generator must be a polyten.Generator", "object"]),
])
def test_errors(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_zero_size_samples():
    assert pt.rand(0).shape == (0,)
    assert pt.randint(0, 3, (0, 2)).shape == (0, 2)
    assert pt.multinomial(pt.ones(0, 3), 2).shape == (0, 2)
    assert pt.bernoulli(pt.zeros(0)).shape == (0,)
    assert math.isfinite(pt.normal(0.0, 1.0, size=()).item())


def test_multinomial_without_replacement_needs_enough_nonzero_weights():
    w = pt.tensor([1.0, 0.0, 3.0, 2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"multinomial: cannot sample 5 samples .* only 4"):
        pt.multinomial(w, 5)
    pt.manual_seed(0)
    got = pt.multinomial(w, 4).tolist()
    assert sorted(got) == [0, 2, 3, 5]
    rows = pt.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="a row with only 1"):
        pt.multinomial(rows, 2)


def test_half_dropout_drops_p_of_the_elements():
    """float16 / bfloat16 dropout draws its uniforms on float32's grid: on the dtype's own
    (bfloat16: 2**-8 steps) with p rounded alike, p = 0.001 dropped 0.39 % of bfloat16
    elements and p = 0.01 dropped 1.17 %.  Fixed seed; within 6 binomial standard
    deviations of n * p."""
    pt.manual_seed(1234)
    n = 1_000_000
    for dt in (pt.bfloat16, pt.float16, pt.float32):
        for p in (0.001, 0.01, 0.25):
            dropped = (pt.nn.functional.dropout(pt.ones(n, dtype=dt), p) == 0).sum().item()
            assert abs(dropped - n * p) < 6 * (n * p * (1 - p)) ** 0.5, (dt, p, dropped)
