"""polyten.data.DataLoader in the main process (num_workers=0): batches, lengths and argument
errors against PyTorch's DataLoader on the same data; the current-backend and pin_memory
paths through an in-process backend."""

from __future__ import annotations

import numpy as np
import pytest

import polyten
from polyten.data import (BatchSampler, DataLoader, Dataset, IterableDataset,
                          SequentialSampler, TensorDataset, default_collate)

from _reference import to_numpy


def _as_np(batch):
    """Nested polyten / torch batch -> nested NumPy (for comparisons)."""
    if isinstance(batch, (list, tuple)):
        return [_as_np(b) for b in batch]
    if isinstance(batch, dict):
        return {k: _as_np(v) for k, v in batch.items()}
    if hasattr(batch, "numpy"):
        return np.asarray(batch.numpy())
    return batch


def _assert_batches_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _assert_nested_equal(_as_np(a), _as_np(b))


def _assert_nested_equal(a, b):
    if isinstance(b, dict):
        assert a.keys() == b.keys()
        for k in b:
            _assert_nested_equal(a[k], b[k])
    elif isinstance(b, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_nested_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)
        assert np.asarray(a).dtype == np.asarray(b).dtype


class Records(Dataset):
    """Map-style dataset of dict samples built from NumPy (the same object feeds both)."""

    def __init__(self, n):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 3)).astype(np.float32)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": self.x[i], "y": i % 3, "w": float(i) / 2}


class Numbers(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(np.arange(self.n, dtype=np.int64) * 10)

    def __len__(self):
        return self.n


@pytest.mark.parametrize("n, bs, drop", [(10, 3, False), (10, 3, True), (8, 4, False),
                                         (5, 1, False), (3, 8, True)])
def test_same_batches_and_length_as_torch(n, bs, drop):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((n, 2)), rng.integers(0, 5, n)
    ours = DataLoader(TensorDataset(polyten.asarray(x), polyten.asarray(y)), batch_size=bs,
                      drop_last=drop)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    _assert_batches_equal(list(ours), list(theirs))
    ds = Records(n)
    ours = DataLoader(ds, batch_size=bs, drop_last=drop)
    theirs = torch.utils.data.DataLoader(ds, batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    _assert_batches_equal(list(ours), list(theirs))


def test_no_automatic_batching_matches_torch():
    torch = pytest.importorskip("torch")
    ds = Records(4)
    ours = list(DataLoader(ds, batch_size=None))
    theirs = list(torch.utils.data.DataLoader(ds, batch_size=None))
    _assert_batches_equal(ours, theirs)
    assert len(DataLoader(ds, batch_size=None)) == 4


@pytest.mark.parametrize("bs, drop", [(3, False), (3, True), (None, False)])
def test_iterable_dataset_matches_torch(bs, drop):
    torch = pytest.importorskip("torch")
    class TorchNumbers(torch.utils.data.IterableDataset):    # the same stream, for torch
        __iter__ = Numbers.__iter__
        __len__ = Numbers.__len__

        def __init__(self, n):
            self.n = n

    ours = DataLoader(Numbers(8), batch_size=bs, drop_last=drop)
    theirs = torch.utils.data.DataLoader(TorchNumbers(8), batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    _assert_batches_equal(list(ours), list(theirs))


def test_tensor_dataset_fast_path_equals_collating_samples():
    class Plain(Dataset):                     # the same samples, collated one by one
        def __init__(self, *t):
            self.t = t

        def __len__(self):
            return self.t[0].shape[0]

        def __getitem__(self, i):
            return tuple(t[i] for t in self.t)

    rng = np.random.default_rng(2)
    x = polyten.asarray(rng.standard_normal((13, 2, 2)).astype(np.float32))
    y = polyten.asarray(rng.integers(0, 9, 13))
    s = polyten.asarray(rng.standard_normal(13))            # 0-d samples
    for sampler in (None, [3, 1, 12, 0, 5, 7]):
        fast = DataLoader(TensorDataset(x, y, s), batch_size=4, sampler=sampler)
        slow = DataLoader(Plain(x, y, s), batch_size=4, sampler=sampler)
        assert fast._get_iterator()._fetcher.fast and not slow._get_iterator()._fetcher.fast
        for a, b in zip(fast, slow):
            assert isinstance(a, list) and len(a) == 3
            for ta, tb in zip(a, b):
                assert ta.dtype == tb.dtype and ta.shape == tb.shape
                np.testing.assert_array_equal(to_numpy(ta), to_numpy(tb))


def test_shuffle_reshuffles_each_epoch_and_is_reproducible():
    ds = TensorDataset(polyten.arange(20))
    dl = DataLoader(ds, batch_size=5, shuffle=True, generator=polyten.Generator().manual_seed(0))
    e1 = np.concatenate([to_numpy(b[0]) for b in dl])
    e2 = np.concatenate([to_numpy(b[0]) for b in dl])
    assert sorted(e1) == list(range(20)) and sorted(e2) == list(range(20))
    assert not np.array_equal(e1, e2)
    dl2 = DataLoader(ds, batch_size=5, shuffle=True,
                     generator=polyten.Generator().manual_seed(0))
    np.testing.assert_array_equal(np.concatenate([to_numpy(b[0]) for b in dl2]), e1)


def test_iterating_twice_and_breaking_early():
    dl = DataLoader(TensorDataset(polyten.arange(10)), batch_size=3)
    first = [to_numpy(b[0]).tolist() for b in dl]
    for k, b in enumerate(dl):
        if k == 1:
            break
    assert [to_numpy(b[0]).tolist() for b in dl] == first == [[0, 1, 2], [3, 4, 5], [6, 7, 8],
                                                              [9]]
    it = iter(dl)
    assert len(it) == len(dl) == 4
    list(it)
    with pytest.raises(StopIteration):
        next(it)


def test_batch_sampler_and_custom_sampler():
    ds = TensorDataset(polyten.arange(6))
    dl = DataLoader(ds, batch_sampler=[[5, 0], [2]])
    assert [to_numpy(b[0]).tolist() for b in dl] == [[5, 0], [2]]
    dl = DataLoader(ds, batch_size=2, sampler=[4, 3, 2])
    assert [to_numpy(b[0]).tolist() for b in dl] == [[4, 3], [2]]
    dl = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 4, True))
    assert len(dl) == 1


def test_batches_land_on_the_current_backend():
    from conftest import cpu_clone
    with cpu_clone("clone") as dev:
        ds = TensorDataset(polyten.arange(6.0, device="cpu"), polyten.arange(6, device="cpu"))
        with polyten.backend("clone"):
            batches = list(DataLoader(ds, batch_size=4))
            records = list(DataLoader(Records(3), batch_size=2))
        assert all(t.device == dev for b in batches for t in b)
        assert all(t.device == dev for b in records for t in b.values())
        np.testing.assert_array_equal(to_numpy(batches[1][0].cpu()), [4.0, 5.0])


def test_pin_memory_goes_through_the_backend_kernels():
    from conftest import cpu_clone
    calls = []

    class Pinned(np.ndarray):      # marks the arrays this fake backend "page-locked"
        pass

    def pin(array):
        calls.append(("pin", array.shape))
        return np.array(array, copy=True).view(Pinned)

    def is_pinned(array):
        return isinstance(array, Pinned)

    def from_pinned(array, device_index):
        calls.append(("from_pinned", array.shape))
        return np.array(array, copy=True)

    with cpu_clone("pinny", pin_memory=pin, from_pinned=from_pinned,
                   is_pinned=is_pinned) as dev:
        ds = TensorDataset(polyten.arange(6.0, device="cpu"))
        with polyten.backend("pinny"):
            out = list(DataLoader(ds, batch_size=4, pin_memory=True))
            rec = list(DataLoader(Records(2), batch_size=2, pin_memory=True))
        assert [c[0] for c in calls[:2]] == ["pin", "from_pinned"]
        assert ("pin", (2,)) in calls and ("from_pinned", (2, 3)) in calls
        assert out[0][0].device == dev and rec[0]["x"].device == dev
        np.testing.assert_array_equal(to_numpy(out[1][0].cpu()), [4.0, 5.0])
        # Tensor.pin_memory: a host tensor gets pinned memory from the backend that pins
        t = polyten.arange(3.0, device="cpu")
        pinned = t.pin_memory("pinny")
        assert pinned.device == t.device and calls[-1] == ("pin", (3,))
        assert pinned.is_pinned("pinny") and not t.is_pinned("pinny")
        assert not polyten.ones(2, device="pinny").is_pinned()     # memory it did not pin
        np.testing.assert_array_equal(to_numpy(pinned), [0.0, 1.0, 2.0])
    # a backend whose arrays are not host memory (to_host copies) cannot pin its tensors
    with cpu_clone("devmem", to_host=lambda x: np.array(x, copy=True)):
        with pytest.raises(RuntimeError, match="only tensors in host memory.*t.cpu"):
            polyten.ones(2, device="devmem").pin_memory()


def test_pin_memory_is_a_no_op_without_a_pinning_backend():
    t = polyten.arange(3.0)
    assert t.pin_memory() is t and not t.is_pinned()
    out = list(DataLoader(TensorDataset(t), batch_size=2, pin_memory=True))
    np.testing.assert_array_equal(to_numpy(out[0][0]), [0.0, 1.0])


# ------------------------------------------------------------------------------ bad input --
def test_bad_arguments_say_what_to_change():
    ds = TensorDataset(polyten.arange(4))
    with pytest.raises(ValueError, match="batch_size should be a positive integer.*=0.*None"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle.*"
                                         "shuffle=False"):
        DataLoader(ds, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive.*"
                                         r"\(got batch_size=2\)"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="num_workers option should be non-negative.*"
                                         "num_workers=0"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="timeout option should be non-negative"):
        DataLoader(ds, timeout=-1)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="IterableDataset: expected unspecified shuffle"):
        DataLoader(Numbers(3), shuffle=True)
    with pytest.raises(ValueError, match="multiprocessing_context can only be used"):
        DataLoader(ds, multiprocessing_context="spawn")
    dl = DataLoader(ds)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        dl.batch_size = 3
    with pytest.raises(TypeError):
        len(DataLoader(IterableDataset()))


def test_collate_fn_that_raises_names_the_batch():
    def bad(batch):
        raise ValueError("cannot collate this")

    dl = DataLoader(TensorDataset(polyten.arange(4)), batch_size=2, collate_fn=bad)
    with pytest.raises(ValueError, match="cannot collate this") as info:
        next(iter(dl))
    notes = "".join(getattr(info.value, "__notes__", []))
    import sys
    if sys.version_info >= (3, 11):
        assert "collate_fn=" in notes and "bad" in notes and "[0, 1]" in notes


def test_unstackable_samples_name_shapes_and_dataset_indices():
    class Ragged(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return np.zeros(3 if i == 4 else 2)

    dl = DataLoader(Ragged(), batch_size=3, shuffle=False)
    it = iter(dl)
    next(it)
    with pytest.raises(RuntimeError, match=r"shape \(2,\) for samples 0, 2 \(dataset indices "
                                           r"3, 5\); shape \(3,\) for sample 1 \(dataset "
                                           r"index 4\)"):
        next(it)


def test_dataset_error_names_the_index():
    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("missing file")
            return i

    with pytest.raises(KeyError, match="missing file") as info:
        list(DataLoader(Broken(), batch_size=4))
    import sys
    if sys.version_info >= (3, 11):
        assert "dataset index 2" in "".join(info.value.__notes__)


def test_default_collate_used_by_default():
    assert DataLoader(TensorDataset(polyten.arange(2))).collate_fn is default_collate


def test_sampler_out_of_range_for_the_dataset():
    dl = DataLoader(TensorDataset(polyten.arange(3)), batch_size=2,
                    sampler=SequentialSampler(range(5)))
    with pytest.raises(IndexError, match="SequentialSampler yielded index 3, out of range for "
                                         "a dataset of length 3"):
        list(dl)
    with pytest.raises(IndexError):               # a user batch sampler: tensor indexing checks
        list(DataLoader(TensorDataset(polyten.arange(3)), batch_sampler=[[0, 7]]))
