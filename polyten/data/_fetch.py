"""Fetchers: one batch (or one sample) from a dataset, collated.  The same code runs in the
main process (``num_workers=0``) and in worker processes."""

from __future__ import annotations

from ..api._core import wrap
from ..api import dtypes as _dt
from ..dispatch.dispatcher import kernels
from ._convert import delivery, to_target
from .collate import default_collate, default_convert
from .dataset import TensorDataset
from ._host import np

_from_host = kernels("from_host")
_getitem = kernels("getitem")


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):        # Python >= 3.11
        exc.add_note(text)


def _fn_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _fmt_indices(indices) -> str:
    if indices is None:
        return ""
    idx = list(indices)
    shown = ", ".join(str(i) for i in idx[:8]) + (", ..." if len(idx) > 8 else "")
    return f" (dataset indices [{shown}])"


def _is_fast_tensor_dataset(dataset, collate_fn) -> bool:
    """TensorDataset + default_collate: a batch is one gather per tensor, no per-sample work."""
    return collate_fn is default_collate and isinstance(dataset, TensorDataset) and \
        type(dataset).__getitem__ is TensorDataset.__getitem__ and \
        getattr(type(dataset), "__getitems__", None) is None and len(dataset.tensors) > 0


def collate_batch(fn, data, indices, device, pin):
    """``fn(data)`` with the delivery target set; a user collate_fn's error names the batch."""
    with delivery(device, pin, indices):
        if fn is default_collate or fn is default_convert:
            return fn(data)
        try:
            return fn(data)
        except Exception as exc:
            _note(exc, f"raised by collate_fn={_fn_name(fn)} while collating a batch of "
                       f"{len(data) if isinstance(data, list) else 1} samples"
                       f"{_fmt_indices(indices)}: fix collate_fn (call it on "
                       f"[dataset[i] for i in indices] to reproduce it), or use the default")
            raise


class CheckedIndices:
    """Marks an int64 index array whose entries were checked against the dataset length."""


_CHECKED = []  # the ndarray subclass below, made on first use (NumPy loads lazily)


def _checked_type() -> type:
    if not _CHECKED:
        _CHECKED.append(type("_Checked", (np.ndarray, CheckedIndices),
                             {"__module__": __name__}))
    return _CHECKED[0]


def __getattr__(name):
    # pickle finds the class by name (index arrays travel to worker processes)
    if name == "_Checked":
        return _checked_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def checked_indices(arr: np.ndarray, n: int, sampler) -> np.ndarray:
    """``arr`` (one epoch of a sampler) after one vectorised bounds check, marked so that the
    TensorDataset fast path can gather without checking every batch again."""
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n):
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        raise IndexError(f"DataLoader: {type(sampler).__name__} yielded index {bad}, out of "
                         f"range for a dataset of length {n}; build the sampler over this "
                         f"dataset")
    return arr.view(_checked_type())


class MapFetcher:
    """``fetch(index)``: ``collate_fn([dataset[i] for i in index])`` (or one sample converted,
    without automatic batching).  ``index`` is a list of ints or an int64 NumPy array."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last, device=None, pin=False):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.device = device
        self.pin = pin
        self.fast = auto_collation and _is_fast_tensor_dataset(dataset, collate_fn)

    def fetch(self, index):
        if self.fast:
            return self._gather(index)
        ds = self.dataset
        if not self.auto_collation:
            try:
                data = ds[index]
            except Exception as exc:
                _note(exc, f"raised by {type(ds).__name__}.__getitem__ for dataset index {index}")
                raise
            return collate_batch(self.collate_fn, data, (index,), self.device, self.pin)
        if isinstance(index, np.ndarray):
            index = index.tolist()
        getitems = getattr(ds, "__getitems__", None)
        if getitems is not None:
            data = getitems(index)
        else:
            data = []
            i = None
            try:
                for i in index:
                    data.append(ds[i])
            except Exception as exc:
                _note(exc, f"raised by {type(ds).__name__}.__getitem__ for dataset index {i}")
                raise
        return collate_batch(self.collate_fn, data, index, self.device, self.pin)

    def _gather(self, index):
        # One gather per tensor gives exactly default_collate([dataset[i] for i in index]).
        # Indices a loader already bounds-checked for the epoch skip the per-batch check of
        # tensor indexing (the kernel is called directly, for tensors without autograd).
        checked = isinstance(index, CheckedIndices)
        idx = np.asarray(index, dtype=np.int64)
        by_device = {}
        out = []
        with delivery(self.device, self.pin, None):
            for t in self.dataset.tensors:
                dev = t._device
                native = by_device.get(dev)
                if native is None:
                    native = by_device[dev] = _from_host[dev.backend](idx, dev.index)
                if checked and t._ag is None:
                    rows = wrap(_getitem[dev.backend](t._data, (native, Ellipsis)), dev,
                                t._dtype)
                else:
                    rows = t[wrap(native, dev, _dt.int64)]
                out.append(to_target(rows))
        return out


class IterableFetcher:
    """``fetch()``: the next batch (``batch_size`` samples, collated) of the dataset's iterator;
    ``StopIteration`` once it is exhausted (or only a short batch is left with ``drop_last``)."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last, batch_size,
                 device=None, pin=False):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.device = device
        self.pin = pin
        self.iterator = iter(dataset)
        self.ended = False

    def fetch(self, index=None):
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            nxt = self.iterator.__next__
            for _ in range(self.batch_size):
                try:
                    data.append(nxt())
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < self.batch_size):
                self.ended = True
                raise StopIteration
        else:
            try:
                data = next(self.iterator)
            except StopIteration:
                self.ended = True
                raise
        return collate_batch(self.collate_fn, data, None, self.device, self.pin)


def make_fetcher(kind, dataset, auto_collation, collate_fn, drop_last, batch_size,
                 device=None, pin=False):
    if kind == "iterable":
        return IterableFetcher(dataset, auto_collation, collate_fn, drop_last, batch_size,
                               device, pin)
    return MapFetcher(dataset, auto_collation, collate_fn, drop_last, device, pin)
