"""polyten.data datasets, random_split, Generator and default_collate / default_convert,
checked against PyTorch's torch.utils.data where installed and against NumPy."""

from __future__ import annotations

import collections
import sys

import numpy as np
import pytest

import polyten
from polyten.data import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset,
                          TensorDataset, default_collate, default_convert, random_split)

from _reference import to_numpy

Point = collections.namedtuple("Point", ["x", "y"])


def _same_structure(ours, theirs, torch):
    """ours (polyten) and theirs (torch) have the same containers, dtypes, shapes and values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, polyten.Tensor), type(ours)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(to_numpy(ours), theirs.numpy())
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for k in theirs:
            _same_structure(ours[k], theirs[k], torch)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs), (type(ours), type(theirs))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same_structure(a, b, torch)
    else:
        assert ours == theirs


# ------------------------------------------------------------------------------ datasets --
def test_tensor_dataset_indexing_and_len():
    x = polyten.arange(12.0).reshape(6, 2)
    y = polyten.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    np.testing.assert_array_equal(to_numpy(a), [8.0, 9.0])
    assert b.item() == 4
    a, b = ds[-1]
    assert b.item() == 5


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match=r"size mismatch.*\(3, 2\), \(4,\)"):
        TensorDataset(polyten.zeros(3, 2), polyten.zeros(4))
    with pytest.raises(TypeError, match="argument 1 is ndarray.*polyten.asarray"):
        TensorDataset(polyten.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(polyten.tensor(1.0))


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return i * i


class Stream(IterableDataset):
    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_dataset_base_class_messages():
    with pytest.raises(NotImplementedError, match="must implement __getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="must implement __iter__"):
        iter(IterableDataset())


def test_subset_and_getitems():
    ds = Squares(10)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3
    assert [sub[i] for i in range(3)] == [49, 4, 25]
    assert sub.__getitems__([2, 0]) == [25, 49]


def test_concat_dataset_matches_torch():
    torch = pytest.importorskip("torch")
    parts = [Squares(3), Squares(0), Squares(4)]
    ours = ConcatDataset(parts)
    theirs = torch.utils.data.ConcatDataset(parts)
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    assert len(ours) == len(theirs) == 7
    for i in range(-7, 7):
        assert ours[i] == theirs[i]
    with pytest.raises(IndexError, match="out of range"):
        ours[7]
    with pytest.raises(IndexError, match="out of range"):
        ours[-8]
    assert isinstance(Squares(2) + Squares(3), ConcatDataset)


def test_concat_dataset_errors():
    with pytest.raises(ValueError, match="empty iterable"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="ChainDataset"):
        ConcatDataset([Squares(2), Stream([1])])


def test_chain_dataset():
    chained = Stream([1, 2]) + Stream([3])
    assert isinstance(chained, ChainDataset)
    assert list(chained) == [1, 2, 3]
    assert len(chained) == 3
    with pytest.raises(TypeError, match="not an IterableDataset"):
        list(ChainDataset([Stream([1]), Squares(2)]))


# -------------------------------------------------------------------------- random_split --
@pytest.mark.parametrize("n, lengths", [(10, [0.3, 0.7]), (11, [0.5, 0.25, 0.25]),
                                        (7, [0.1, 0.1, 0.8]), (5, [1 / 3, 1 / 3, 1 / 3])])
def test_random_split_fraction_sizes_match_torch(n, lengths):
    torch = pytest.importorskip("torch")
    ours = random_split(Squares(n), lengths, generator=polyten.Generator().manual_seed(0))
    theirs = torch.utils.data.random_split(Squares(n), lengths,
                                           generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]


def test_random_split_partitions_and_is_reproducible():
    g = polyten.Generator().manual_seed(42)
    parts = random_split(Squares(20), [5, 15], generator=g)
    idx = [i for p in parts for i in p.indices]
    assert sorted(idx) == list(range(20))
    again = random_split(Squares(20), [5, 15], generator=polyten.Generator().manual_seed(42))
    assert [p.indices for p in parts] == [p.indices for p in again]
    other = random_split(Squares(20), [5, 15], generator=polyten.Generator().manual_seed(43))
    assert [p.indices for p in parts] != [p.indices for p in other]
    polyten.manual_seed(3)
    a = random_split(Squares(20), [10, 10])
    polyten.manual_seed(3)
    b = random_split(Squares(20), [10, 10])
    assert [p.indices for p in a] == [p.indices for p in b]


def test_random_split_errors():
    with pytest.raises(ValueError, match=r"sum of input lengths \(9\).*\(10\)"):
        random_split(Squares(10), [4, 5])
    with pytest.raises(ValueError, match="negative"):
        random_split(Squares(3), [4, -1])
    with pytest.warns(UserWarning, match="will be empty"):
        random_split(Squares(2), [0.0, 1.0])
    with pytest.raises(TypeError, match="polyten.Generator"):
        random_split(Squares(2), [1, 1], generator=np.random.default_rng(0))


# ----------------------------------------------------------------------------- Generator --
def test_generator_seed_state_roundtrip():
    g = polyten.Generator().manual_seed(7)
    assert g.initial_seed() == 7
    state = g.get_state()
    assert state.dtype == polyten.uint8
    first = g._numpy().integers(0, 1000, 5).tolist()
    g.set_state(state)
    assert g._numpy().integers(0, 1000, 5).tolist() == first
    # the stream is NumPy's PCG64 seeded with the seed: an independent reference
    assert first == np.random.Generator(np.random.PCG64(7)).integers(0, 1000, 5).tolist()
    s = g.seed()
    assert g.initial_seed() == s
    assert polyten.Generator().manual_seed(-1).initial_seed() == 2 ** 64 - 1
    with pytest.raises(ValueError, match="get_state"):
        g.set_state(polyten.zeros(3, dtype=polyten.uint8))
    with pytest.raises(TypeError, match="seed must be an int"):
        g.manual_seed(1.5)
    if not polyten.cuda.is_available():  # a cuda generator needs the backend, and says why
        with pytest.raises(polyten.BackendUnavailableError, match="cuda"):
            polyten.Generator("cuda")


def test_import_polyten_does_not_import_numpy_or_data():
    import subprocess
    code = ("import sys, polyten; assert 'numpy' not in sys.modules; "
            "assert 'polyten.data' not in sys.modules; "
            "import polyten.utils.data as d; import polyten.data as pd; "
            "assert d is pd and d.DataLoader is pd.DataLoader and polyten.data is pd; "
            "from polyten.utils.data.sampler import RandomSampler; "
            "assert RandomSampler is pd.RandomSampler; "
            "assert 'numpy' not in sys.modules, 'polyten.data loaded numpy at import'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- collate --
def _nested_samples():
    return [
        {"img": np.full((2, 3), i, dtype=np.float32), "label": i, "w": 0.5 * i,
         "name": f"s{i}", "flag": bool(i % 2), "pt": Point(np.int16(i), [i, -i]),
         "pair": (np.float64(i), np.arange(3, dtype=np.int32) + i)}
        for i in range(4)]


def test_default_collate_matches_torch_on_nested_samples():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    samples = _nested_samples()
    ours = default_collate(samples)
    theirs = torch_collate(samples)
    assert isinstance(ours["pt"], Point)
    _same_structure(ours, theirs, torch)


def test_default_collate_tensors_and_tuples_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((3, 2)) for _ in range(5)]
    ours = default_collate([(polyten.asarray(a), k) for k, a in enumerate(arrs)])
    theirs = torch_collate([(torch.from_numpy(a), k) for k, a in enumerate(arrs)])
    _same_structure(ours, theirs, torch)
    ours = default_collate([[1.5, 2], [2.5, 3]])
    theirs = torch_collate([[1.5, 2], [2.5, 3]])
    _same_structure(ours, theirs, torch)
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_default_convert_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_convert as torch_convert
    sample = {"a": np.arange(4.0), "b": (np.int64(3), 2.5, "s"), "c": [np.ones(2, np.float32)],
              "p": Point(np.arange(2), 7)}
    ours = default_convert(sample)
    theirs = torch_convert(sample)
    _same_structure(ours, theirs, torch)
    assert default_convert(3) == 3 and default_convert("x") == "x"


def test_default_collate_result_is_on_the_current_backend():
    from conftest import cpu_clone
    with cpu_clone("clone") as dev:
        with polyten.backend("clone"):
            out = default_collate([(np.ones(2), 1.0, polyten.ones(2, device="cpu"))] * 3)
        assert all(t.device == dev for t in out)
        np.testing.assert_array_equal(to_numpy(out[2].cpu()), np.ones((3, 2)))


def test_default_collate_unstackable_names_shapes_and_samples():
    with pytest.raises(RuntimeError, match=r"different shapes: shape \(2,\) for samples 0, 2; "
                                           r"shape \(3,\) for sample 1.*collate_fn"):
        default_collate([np.zeros(2), np.zeros(3), np.zeros(2)])
    with pytest.raises(RuntimeError, match=r"at \['x'\] of each sample.*shape \(1, 2\)"):
        default_collate([{"x": polyten.zeros(1, 2)}, {"x": polyten.zeros(2, 2)}])


def test_default_collate_other_errors():
    with pytest.raises(RuntimeError, match="equal size.*sample 1 has 1"):
        default_collate([[1, 2], [3]])
    with pytest.raises(KeyError, match="sample 1 has no key 'b'"):
        default_collate([{"a": 1, "b": 2}, {"a": 1}])
    with pytest.raises(TypeError, match="found NoneType"):
        default_collate([None, None])
    with pytest.raises(TypeError, match="dtype <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(TypeError, match="sample 1 is str.*same structure"):
        default_collate([1, "a"])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])
