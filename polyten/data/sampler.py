"""Samplers (``torch.utils.data.sampler``): which indices, in which order.

Indices are host data: each epoch's order is drawn at once with NumPy on the host (one
vectorised permutation instead of a Python loop), from the sampler's ``generator`` or, without
one, from a seed drawn from polyten's global generator, so ``polyten.manual_seed`` reproduces
the order.  Iterating a sampler yields Python ints, as PyTorch's do.  Built-in samplers also
expose the epoch's order as one int64 array (``_epoch_indices``), which :class:`BatchSampler`
slices into batches without touching single indices.
"""

from __future__ import annotations

import numbers
from typing import Generic, Iterator, List, Optional, Sequence, TypeVar

from ..api._core import Tensor
from ._random import check_generator, host_rng
from ._host import np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]

T_co = TypeVar("T_co", covariant=True)


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} should be a positive integer value, but got "
                         f"{name}={value!r}")
    return int(value)


def _check_bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} should be a boolean value, but got "
                        f"{name}={value!r}")
    return value


def _as_host_array(values, owner: str, name: str, dtype) -> np.ndarray:
    if isinstance(values, Tensor):
        return np.asarray(values.detach().cpu().numpy(), dtype=dtype)
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{owner}: {name} must be a sequence of numbers (list, NumPy array or "
                        f"tensor): {exc}") from None


class Sampler(Generic[T_co]):
    """Base class: an iterable over dataset indices (or over lists of indices, for batch
    samplers).  Subclasses implement ``__iter__`` and, if they know it, ``__len__``."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def _epoch_indices(self) -> Optional[np.ndarray]:
        """One epoch's indices as an int64 array, or ``None`` if the sampler cannot say."""
        return None


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def _epoch_indices(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random order (``torch.utils.data.RandomSampler``).

    Parameters
    ----------
    data_source : sized
    replacement : bool
        Draw with replacement (indices may repeat).
    num_samples : int, optional
        Indices per epoch (default ``len(data_source)``); without replacement, more than
        ``len(data_source)`` gives whole permutations followed by part of one.
    generator : polyten.Generator, optional
        Default: a fresh seed from polyten's global generator each epoch.
    """

    def __init__(self, data_source, replacement: bool = False,
                 num_samples: Optional[int] = None, generator=None) -> None:
        self.data_source = data_source
        self.replacement = _check_bool("RandomSampler", "replacement", replacement)
        self._num_samples = num_samples
        check_generator("RandomSampler", generator)
        self.generator = generator
        _positive_int("RandomSampler", "num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _epoch_indices(self) -> np.ndarray:
        n = len(self.data_source)
        k = self.num_samples
        rng = host_rng(self.generator)
        if n == 0:
            raise ValueError("RandomSampler: cannot draw indices from an empty dataset")
        if self.replacement:
            return rng.integers(0, n, size=k, dtype=np.int64)
        parts = [rng.permutation(n) for _ in range(k // n)]
        if k % n:
            parts.append(rng.permutation(n)[:k % n])
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else \
            np.empty(0, dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in random order, without replacement."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        check_generator("SubsetRandomSampler", generator)
        self.generator = generator

    def _epoch_indices(self) -> np.ndarray:
        idx = _as_host_array(self.indices, "SubsetRandomSampler", "indices", np.int64)
        return idx[host_rng(self.generator).permutation(len(idx))]

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices().tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0 .. len(weights) - 1`` drawn with probabilities proportional to ``weights``.

    Parameters
    ----------
    weights : sequence of float
        Non-negative, finite, not all zero (need not sum to 1).
    num_samples : int
        Indices per epoch.
    replacement : bool
        Default True; without replacement an index is drawn at most once per epoch.
    generator : polyten.Generator, optional
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        owner = "WeightedRandomSampler"
        _positive_int(owner, "num_samples", num_samples)
        _check_bool(owner, "replacement", replacement)
        w = _as_host_array(weights, owner, "weights", np.float64)
        if w.ndim != 1:
            raise ValueError(f"{owner}: weights should be a 1d sequence but given weights have "
                             f"shape {tuple(w.shape)}")
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() == 0:
            raise ValueError(f"{owner}: weights must be finite, non-negative and not all zero "
                             f"(one weight per dataset index)")
        nonzero = int(np.count_nonzero(w))
        if not replacement and num_samples > nonzero:
            raise ValueError(f"{owner}: cannot draw num_samples={num_samples} indices without "
                             f"replacement: only {nonzero} weights are non-zero; pass "
                             f"replacement=True or num_samples <= {nonzero}")
        check_generator(owner, generator)
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def _epoch_indices(self) -> np.ndarray:
        p = self.weights / self.weights.sum()
        rng = host_rng(self.generator)
        return rng.choice(len(p), size=self.num_samples, replace=self.replacement,
                          p=p).astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[List[int]]):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Parameters
    ----------
    sampler : Sampler or iterable of int
    batch_size : int
        Positive.
    drop_last : bool
        Drop the last batch if it is smaller than ``batch_size``.

    Examples
    --------
    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        self.batch_size = _positive_int("BatchSampler", "batch_size", batch_size)
        self.drop_last = _check_bool("BatchSampler", "drop_last", drop_last)
        self.sampler = sampler

    def _epoch_array(self) -> Optional[np.ndarray]:
        """The epoch's indices as one int64 array when the sampler can give them at once."""
        get = getattr(self.sampler, "_epoch_indices", None)
        return get() if get is not None else None

    def _split(self, arr: np.ndarray):
        """``arr`` cut into this sampler's batches (int64 array slices, no per-index work)."""
        bs = self.batch_size
        stop = len(arr) - len(arr) % bs if self.drop_last else len(arr)
        return (arr[i:i + bs] for i in range(0, stop, bs))

    def __iter__(self) -> Iterator[List[int]]:
        arr = self._epoch_array()
        if arr is not None:
            return (a.tolist() for a in self._split(arr))
        return self._iter_any()

    def _iter_any(self):
        batch, bs = [], self.batch_size
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == bs:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else \
            (n + self.batch_size - 1) // self.batch_size

