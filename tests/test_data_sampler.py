"""polyten.data samplers: orders, reproducibility, lengths (against PyTorch's BatchSampler and
SequentialSampler) and distributions (against the weights, with NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

import polyten
from polyten.data import (BatchSampler, RandomSampler, SequentialSampler, SubsetRandomSampler,
                          WeightedRandomSampler)


def gen(seed):
    return polyten.Generator().manual_seed(seed)


def test_sequential_sampler_matches_torch():
    torch = pytest.importorskip("torch")
    data = range(7)
    assert list(SequentialSampler(data)) == list(torch.utils.data.SequentialSampler(data))
    assert len(SequentialSampler(data)) == 7


def test_random_sampler_is_a_permutation_and_reshuffles():
    s = RandomSampler(range(50), generator=gen(0))
    a, b = list(s), list(s)
    assert sorted(a) == list(range(50)) and sorted(b) == list(range(50))
    assert a != b                        # a new order each epoch
    assert all(type(i) is int for i in a)
    assert list(RandomSampler(range(50), generator=gen(0))) == a     # reproducible


def test_random_sampler_uses_the_global_seed_without_generator():
    s = RandomSampler(range(30))
    polyten.manual_seed(11)
    a = list(s)
    polyten.manual_seed(11)
    assert list(s) == a
    polyten.manual_seed(12)
    assert list(s) != a


def test_random_sampler_num_samples_and_replacement():
    s = RandomSampler(range(4), num_samples=10, generator=gen(1))
    out = list(s)
    assert len(out) == len(s) == 10
    # without replacement: two whole permutations, then part of a third
    assert sorted(out[:4]) == sorted(out[4:8]) == [0, 1, 2, 3]
    assert len(set(out[8:])) == 2
    r = RandomSampler(range(3), replacement=True, num_samples=3000, generator=gen(2))
    counts = np.bincount(list(r), minlength=3)
    assert counts.sum() == 3000 and np.all(np.abs(counts - 1000) < 150)


def test_random_sampler_errors():
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer.*=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler([])
    with pytest.raises(TypeError, match="polyten.Generator"):
        RandomSampler(range(3), generator=42)


def test_subset_random_sampler():
    idx = [10, 20, 30, 40, 50]
    s = SubsetRandomSampler(idx, generator=gen(3))
    out = list(s)
    assert sorted(out) == idx and len(s) == 5
    assert list(SubsetRandomSampler(polyten.tensor(idx), generator=gen(3))) == out


def test_weighted_random_sampler_follows_the_weights():
    w = [0.0, 1.0, 3.0, 0.0, 6.0]
    s = WeightedRandomSampler(w, num_samples=20000, generator=gen(4))
    counts = np.bincount(list(s), minlength=5)
    expected = 20000 * np.asarray(w) / sum(w)
    assert counts[0] == counts[3] == 0
    # chi-square with 2 degrees of freedom: 13.8 is the 0.999 quantile
    nz = expected > 0
    assert np.sum((counts[nz] - expected[nz]) ** 2 / expected[nz]) < 13.8
    no_rep = list(WeightedRandomSampler(w, num_samples=3, replacement=False, generator=gen(5)))
    assert sorted(no_rep) == [1, 2, 4]


def test_weighted_random_sampler_errors():
    with pytest.raises(ValueError, match="1d sequence.*shape \\(2, 2\\)"):
        WeightedRandomSampler([[1.0, 2.0], [3.0, 4.0]], 2)
    with pytest.raises(ValueError, match="not all zero"):
        WeightedRandomSampler([0.0, 0.0], 2)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="only 1 weights are non-zero"):
        WeightedRandomSampler([0.0, 2.0], 2, replacement=False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], 0)


@pytest.mark.parametrize("n, bs, drop", [(10, 3, False), (10, 3, True), (9, 3, True),
                                         (2, 5, False), (2, 5, True), (0, 2, False)])
def test_batch_sampler_matches_torch(n, bs, drop):
    torch = pytest.importorskip("torch")
    ours = BatchSampler(SequentialSampler(range(n)), bs, drop)
    theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), bs,
                                           drop)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
    # a plain iterable of indices goes through the generic path
    assert list(BatchSampler(list(range(n)), bs, drop)) == list(theirs)


def test_batch_sampler_of_a_random_sampler_covers_the_epoch():
    batches = list(BatchSampler(RandomSampler(range(11), generator=gen(6)), 4, False))
    assert [len(b) for b in batches] == [4, 4, 3]
    assert sorted(i for b in batches for i in b) == list(range(11))
    assert all(type(i) is int for b in batches for i in b)


def test_batch_sampler_errors():
    with pytest.raises(ValueError, match="batch_size should be a positive integer.*=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(TypeError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, "no")
