"""Datasets (``torch.utils.data.dataset``): map-style and iterable, and their combinators."""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import warnings
from typing import Generic, Iterable, List, Sequence, TypeVar

from ..api._core import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "Subset",
           "ConcatDataset", "ChainDataset", "random_split"]

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: ``dataset[i]`` for ``i`` in ``range(len(dataset))``.

    Subclasses implement ``__getitem__`` (and usually ``__len__``, which the default samplers
    need).  They may also implement ``__getitems__(indices) -> list of samples`` to fetch a batch
    at once.  ``a + b`` concatenates two datasets.
    """

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__ (a subclass "
                                  f"of Dataset returns the sample at an index)")

    def __add__(self, other: "Dataset[T_co]") -> "ConcatDataset[T_co]":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream of samples: implement ``__iter__``.

    With ``num_workers > 0`` every worker iterates its own copy of the dataset; use
    :func:`polyten.data.get_worker_info` inside ``__iter__`` to give each worker its own share,
    otherwise every sample is produced once per worker.

    Examples
    --------
    >>> class Range(IterableDataset):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         info = get_worker_info()
    ...         if info is None:
    ...             return iter(range(self.n))
    ...         return iter(range(info.id, self.n, info.num_workers))
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__ (a subclass "
                                  f"of IterableDataset yields its samples)")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are slices of tensors along their first dimension: ``dataset[i]`` is
    ``tuple(t[i] for t in tensors)``.

    A DataLoader with the default ``collate_fn`` gathers a whole batch with one indexing
    operation per tensor instead of stacking single samples (same result, much less overhead).

    Raises
    ------
    ValueError
        The tensors do not all have the same size in dimension 0 (or one is 0-d).
    TypeError
        An argument is not a polyten tensor.
    """

    def __init__(self, *tensors: Tensor) -> None:
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is {type(t).__name__}, not a "
                                f"polyten tensor; convert it first, e.g. polyten.asarray(x)")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is a 0-d tensor; every tensor "
                                 f"needs a first dimension that indexes the samples")
        if tensors:
            sizes = [t.shape[0] for t in tensors]
            if any(s != sizes[0] for s in sizes):
                shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
                raise ValueError(f"TensorDataset: size mismatch between tensors: their first "
                                 f"dimensions must be equal (one entry per sample), got shapes "
                                 f"{shapes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``: ``subset[i]`` is ``dataset[indices[i]]``."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: List[int]) -> List[T_co]:
        inner = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """Map-style datasets one after another: indices run through the first, then the next."""

    datasets: List[Dataset[T_co]]
    cumulative_sizes: List[int]

    @staticmethod
    def cumsum(sequence):
        out, total = [], 0
        for d in sequence:
            total += len(d)
            out.append(total)
        return out

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"ConcatDataset: dataset {i} is an IterableDataset "
                                f"({type(d).__name__}), which has no indices; chain iterable "
                                f"datasets with ChainDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        i = operator.index(idx)
        if i < 0:
            if -i > n:
                raise IndexError(f"ConcatDataset: index {idx} is out of range for a dataset of "
                                 f"length {n}")
            i += n
        elif i >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for a dataset of "
                             f"length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, i)
        local = i if d == 0 else i - self.cumulative_sizes[d - 1]
        return self.datasets[d][local]

    @property
    def cummulative_sizes(self):
        warnings.warn("cummulative_sizes attribute is renamed to cumulative_sizes",
                      DeprecationWarning, stacklevel=2)
        return self.cumulative_sizes


class ChainDataset(IterableDataset):
    """Iterable datasets one after another (lazily, as ``itertools.chain``)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self):
        for i, d in enumerate(self.datasets):
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset: dataset {i} is {type(d).__name__}, not an "
                                f"IterableDataset; concatenate map-style datasets with "
                                f"ConcatDataset")
            yield from d

    def __len__(self) -> int:
        total = 0
        for i, d in enumerate(self.datasets):
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset: dataset {i} is {type(d).__name__}, not an "
                                f"IterableDataset")
            total += len(d)
        return total


def _split_lengths(n: int, lengths) -> List[int]:
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:     # fractions (PyTorch's rule)
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is {frac}, not between "
                                 f"0 and 1")
        out = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(out)):      # the remainder, one each, round-robin
            out[i % len(out)] += 1
        for i, length in enumerate(out):
            if length == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this split "
                              f"will be empty", UserWarning, stacklevel=3)
        return out
    out = []
    for i, x in enumerate(lengths):
        try:
            v = operator.index(x)
        except TypeError:
            raise TypeError(f"random_split: lengths must be ints (split sizes) or fractions "
                            f"summing to 1, got {x!r} at index {i}") from None
        if v < 0:
            raise ValueError(f"random_split: length at index {i} is negative ({v})")
        out.append(v)
    if sum(out) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(out)}) does not equal the "
                         f"length of the input dataset ({n}); pass lengths summing to {n}, or "
                         f"fractions summing to 1")
    return out


def random_split(dataset: Dataset[T_co], lengths, generator=None) -> List[Subset[T_co]]:
    """Split ``dataset`` at random into non-overlapping :class:`Subset` s
    (``torch.utils.data.random_split``).

    Parameters
    ----------
    dataset : Dataset
    lengths : sequence of int or float
        Sizes of the splits (summing to ``len(dataset)``), or fractions summing to 1: each split
        gets ``floor(len * frac)`` samples and the remainder is dealt one by one, round-robin.
    generator : polyten.Generator, optional
        Source of the permutation; default: a seed drawn from polyten's global generator
        (reproducible with ``polyten.manual_seed``).
    """
    from ._random import host_rng
    n = len(dataset)
    sizes = _split_lengths(n, lengths)
    perm = host_rng(generator).permutation(n).tolist()
    return [Subset(dataset, perm[offset - length:offset])
            for offset, length in zip(itertools.accumulate(sizes), sizes)]


class StackDataset(Dataset):
    """Several datasets of one length side by side: sample ``i`` gathers sample ``i`` of each.

    ``StackDataset(a, b)`` gives tuples ``(a[i], b[i])``; ``StackDataset(image=a, label=b)``
    gives dicts ``{"image": a[i], "label": b[i]}`` (one form or the other, not both).  A batch
    request (``__getitems__``, as the DataLoader makes) is passed on to each dataset that
    supports it.

    Raises
    ------
    ValueError
        No dataset, both forms at once, or datasets of different lengths.
    """

    def __init__(self, *args: Dataset, **kwargs: Dataset) -> None:
        if args and kwargs:
            raise ValueError("StackDataset: give the datasets either positionally (tuple "
                             "samples) or by keyword (dict samples), not both")
        if not args and not kwargs:
            raise ValueError("StackDataset: at least one dataset should be passed")
        datasets = args if args else kwargs
        items = list(enumerate(args)) if args else list(kwargs.items())
        lengths = [(name, len(d)) for name, d in items]
        if any(n != lengths[0][1] for _, n in lengths):
            listed = ", ".join(f"{name!r}: {n}" if isinstance(name, str) else f"#{name}: {n}"
                               for name, n in lengths)
            raise ValueError(f"StackDataset: size mismatch between datasets ({listed}); they "
                             f"must all have the same length")
        self._length = lengths[0][1]
        self.datasets = datasets

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list) -> list:
        def fetch(d):
            getitems = getattr(d, "__getitems__", None)
            if not callable(getitems):
                return [d[i] for i in indices]
            got = getitems(indices)
            if len(got) != len(indices):
                raise ValueError(f"StackDataset: a nested dataset's __getitems__ returned "
                                 f"{len(got)} samples for {len(indices)} indices")
            return got
        if isinstance(self.datasets, dict):
            cols = {k: fetch(d) for k, d in self.datasets.items()}
            return [{k: c[j] for k, c in cols.items()} for j in range(len(indices))]
        cols = [fetch(d) for d in self.datasets]
        return [tuple(c[j] for c in cols) for j in range(len(indices))]

    def __len__(self) -> int:
        return self._length
