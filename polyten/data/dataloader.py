"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

Signature, defaults and semantics are PyTorch's (``torch.utils.data.DataLoader``).  What
differs, by design: batches are polyten tensors on the current backend (``polyten.backend``),
so a training loop needs no ``.to(device)``; with ``pin_memory=True`` the host-to-device copy
goes through page-locked memory and is asynchronous on backends that can pin (CUDA).
"""

from __future__ import annotations

import itertools
import multiprocessing
import numbers
import weakref
from typing import Any, Callable, Generic, Optional, TypeVar

from ..api.context import default_device
from ._convert import resolve
from ._fetch import checked_indices, make_fetcher
from ._random import check_generator
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

T_co = TypeVar("T_co", covariant=True)

_FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
           "persistent_workers")


class _InfiniteConstantSampler(Sampler):
    """The "sampler" of an IterableDataset: ``None`` forever (the dataset decides)."""

    def __iter__(self):
        return itertools.repeat(None)


class DataLoader(Generic[T_co]):
    """Iterate over a dataset in batches (``torch.utils.data.DataLoader``).

    Parameters
    ----------
    dataset : Dataset or IterableDataset
    batch_size : int or None
        Samples per batch (default 1); ``None`` disables automatic batching (each sample is
        converted with :func:`default_convert`).
    shuffle : bool, optional
        Reshuffle every epoch (map-style datasets only).
    sampler : Sampler or iterable of int, optional
        The order of indices; excludes ``shuffle``.
    batch_sampler : Sampler or iterable of lists of int, optional
        Whole batches of indices; excludes ``batch_size``, ``shuffle``, ``sampler`` and
        ``drop_last``.
    num_workers : int
        Worker processes (0: load in the main process).  Workers build batches in parallel;
        batches still arrive in sampler order.
    collate_fn : callable, optional
        Turns a list of samples into a batch (default :func:`default_collate`).
    pin_memory : bool
        Copy batches to the device through page-locked host memory, asynchronously (CUDA);
        a no-op on backends with nothing to pin.
    drop_last : bool
        Drop the last, incomplete batch.
    timeout : float
        With workers: seconds to wait for a batch before raising (0: no limit; a worker that
        dies is reported at once either way).
    worker_init_fn : callable, optional
        Called as ``worker_init_fn(worker_id)`` in each worker after seeding.
    multiprocessing_context : str or context, optional
        How workers start.  Default: the start method the program set with
        ``multiprocessing.set_start_method`` if it is not the platform's default; otherwise, on
        Linux, ``"fork"`` while no
        accelerator backend is loaded in this process (fast, and the dataset need not be
        picklable), else ``"forkserver"`` (forking a process that holds a CUDA context is
        unsafe); elsewhere the platform's default (``"spawn"``).
    generator : polyten.Generator, optional
        Source of the shuffling order (``RandomSampler``) and of the workers' base seed.
    prefetch_factor : int, optional
        Batches loaded in advance per worker (default 2 with workers; only with workers).
    persistent_workers : bool
        Keep the workers (and their dataset copies) between epochs.
    pin_memory_device : str
        The device batches are pinned for and delivered to (default: the current backend).
    in_order : bool
        Deliver batches in sampler order (default); ``False`` delivers whichever is ready.

    Examples
    --------
    >>> ds = TensorDataset(polyten.randn(100, 3), polyten.arange(100))
    >>> for x, y in DataLoader(ds, batch_size=32, shuffle=True):
    ...     pass
    """

    __initialized = False

    def __init__(self, dataset, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Optional[Callable] = None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: Optional[int] = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral):
            raise TypeError(f"DataLoader: num_workers must be an int, got "
                            f"{type(num_workers).__name__} {num_workers!r}")
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative, got "
                             f"num_workers={num_workers}; use num_workers=0 to load in the main "
                             f"process, or a positive number of worker processes")
        if not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative (seconds; 0 "
                             f"waits without limit), got timeout={timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                             "multiprocessing; let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (isinstance(prefetch_factor, bool) or
                                            not isinstance(prefetch_factor, numbers.Integral)
                                            or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer (batches "
                             f"loaded in advance per worker), got prefetch_factor="
                             f"{prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0; set "
                             "num_workers or drop persistent_workers=True")
        check_generator("DataLoader", generator)

        if isinstance(dataset, IterableDataset):
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle!r}; an iterable dataset "
                                 f"decides its own order (shuffle inside __iter__)")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler!r}; an iterable dataset has "
                                 f"no indices to sample")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler="
                                 f"{batch_sampler!r}; use batch_size")
            kind = "iterable"
        else:
            shuffle = bool(shuffle)
            kind = "map"

        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle; "
                             "pass shuffle=False (the sampler decides the order), or drop "
                             "sampler= to shuffle with a RandomSampler")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                given = [f"{n}={v!r}" for n, v, d in (("batch_size", batch_size, 1),
                                                       ("shuffle", shuffle, False),
                                                       ("sampler", sampler, None),
                                                       ("drop_last", drop_last, False))
                         if v != d and not (n == "sampler" and v is None)]
                raise ValueError(f"DataLoader: batch_sampler option is mutually exclusive with "
                                 f"batch_size, shuffle, sampler, and drop_last (got "
                                 f"{', '.join(given)}); the batch sampler decides the batches, "
                                 f"so leave those at their defaults, or drop batch_sampler=")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                                 "is mutually exclusive with drop_last")
        elif isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
                batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size should be a positive integer value, but "
                             f"got batch_size={batch_size!r}; use batch_size=None to load "
                             f"single samples without batching")
        if not isinstance(drop_last, bool):
            raise TypeError(f"DataLoader: drop_last should be a boolean value, but got "
                            f"drop_last={drop_last!r}")

        if sampler is None:
            if kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.prefetch_factor = prefetch_factor
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.in_order = in_order
        self._dataset_kind = kind
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self.__multiprocessing_context = None
        self.multiprocessing_context = multiprocessing_context
        self._iterator = None
        self.__initialized = True

    # ------------------------------------------------------------------ configuration --
    @property
    def multiprocessing_context(self):
        return self.__multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        if ctx is not None:
            if self.num_workers == 0:
                raise ValueError(f"DataLoader: multiprocessing_context can only be used with "
                                 f"multi-process loading (num_workers > 0), but got "
                                 f"num_workers={self.num_workers}")
            if isinstance(ctx, str):
                methods = multiprocessing.get_all_start_methods()
                if ctx not in methods:
                    raise ValueError(f"DataLoader: multiprocessing_context={ctx!r} is not a start "
                                     f"method of this platform; choose one of {methods}")
                ctx = multiprocessing.get_context(ctx)
            elif not isinstance(ctx, multiprocessing.context.BaseContext):
                raise TypeError(f"DataLoader: multiprocessing_context must be a start method "
                                f"name or a multiprocessing context, got {type(ctx).__name__}")
        self.__multiprocessing_context = ctx

    def __setattr__(self, attr, val):
        if self.__initialized and attr in _FROZEN:
            raise ValueError(f"{attr} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _pinned_device(self):
        """``pin_memory_device`` when pinning for a named device, else None (the current
        backend, looked up when each batch is delivered)."""
        return resolve(self.pin_memory_device) if self.pin_memory else None

    # ---------------------------------------------------------------------- iteration --
    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        from ._multiprocessing import MultiProcessIter
        return MultiProcessIter(self)

    def __iter__(self):
        if self.persistent_workers and self.num_workers > 0:
            it = self._iterator
            if it is None or it._finished:
                it = self._iterator = self._get_iterator()
            else:
                it._reset(self)
            return it
        return self._get_iterator()

    def __len__(self) -> int:
        if self._dataset_kind == "iterable":
            length = len(self.dataset)      # TypeError if the dataset has no length
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else \
                    -(-length // self.batch_size)
            return length
        return len(self._index_sampler)


class BaseIter:
    """What single- and multi-process iterators share: the index stream and bookkeeping."""

    def __init__(self, loader: DataLoader):
        # a weak reference: a persistent iterator is held by its loader, and a cycle would
        # keep the workers alive until the garbage collector runs
        self._loader_ref = weakref.ref(loader)
        self._fixed_device = loader._pinned_device()
        self._dataset = loader.dataset
        self._kind = loader._dataset_kind
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._batch_size = loader.batch_size
        self._index_sampler = loader._index_sampler
        self._collate_fn = loader.collate_fn
        self._pin = loader.pin_memory
        self._num_yielded = 0
        self._finished = False
        self._sampler_iter = self._index_iter()

    def _index_iter(self):
        s = self._index_sampler
        if self._kind == "iterable":
            return itertools.repeat(None)
        if type(s) is BatchSampler or (isinstance(s, BatchSampler) and
                                       type(s).__iter__ is BatchSampler.__iter__):
            arr = s._epoch_array()           # int64 slices: no per-index Python work
            if arr is not None:
                try:
                    n = len(self._dataset)
                except TypeError:               # a dataset without a length: unchecked
                    return s._split(arr)
                return s._split(checked_indices(arr, n, s.sampler))
        return iter(s)

    def _reset(self, loader) -> None:
        self._sampler_iter = self._index_iter()
        self._num_yielded = 0

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader_ref())

    def _delivery_device(self):
        """Where batches go: ``pin_memory_device`` if given, else the current backend."""
        dev = self._fixed_device
        return dev if dev is not None else default_device()

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        data = self._next_data()
        self._num_yielded += 1
        return data

    def _next_data(self):
        raise NotImplementedError


class _SingleProcessIter(BaseIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = self._make_fetcher()

    def _make_fetcher(self):
        return make_fetcher(self._kind, self._dataset, self._auto_collation, self._collate_fn,
                            self._drop_last, self._batch_size, None, self._pin)

    def _next_data(self):
        try:
            index = next(self._sampler_iter)
            f = self._fetcher
            f.device = self._delivery_device()
            return f.fetch(index)
        except StopIteration:
            self._finished = True
            raise
