"""What runs inside a DataLoader worker process, and ``get_worker_info()``.

A worker takes tasks ``(epoch, batch number, indices)`` from its own task queue, builds the
batch with the same fetcher as the main process, and sends ``header + pickle`` bytes back on
its own pipe.  Tensors travel as host arrays (``_convert.TransportPickler``) and are rebuilt in
the main process on its current backend: the worker itself only ever uses the host backend.

A worker stops on ``None``, when the loader's shutdown event is set, when its result pipe is
closed, or when its parent process is gone (checked every ``POLL_S`` while idle), so an
orphaned worker never outlives the program.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import struct
import sys
import traceback
from typing import Optional

POLL_S = 1.0
HEADER = struct.Struct("<qq")        # epoch, batch number


class WorkerInfo:
    """What a worker knows about itself (``torch.utils.data.get_worker_info()``).

    Attributes
    ----------
    id : int
        This worker's number, ``0 .. num_workers - 1``.
    num_workers : int
    seed : int
        The seed this worker's ``random``, NumPy and polyten generators were seeded with
        (the loader's base seed + ``id``).
    dataset : Dataset
        This worker's copy of the dataset.
    """

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs.keys())
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self):
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__keys)
        return f"{type(self).__name__}({items})"


_WORKER_INFO: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """In a DataLoader worker process: its :class:`WorkerInfo`; in the main process: ``None``.

    Use it in ``IterableDataset.__iter__`` (or ``worker_init_fn``) to give each worker its own
    share of the data.
    """
    return _WORKER_INFO


class WorkerExhausted:
    """Sent (as the class itself) when an IterableDataset worker's iterator is exhausted."""


class _KeyErrorMessage(str):
    """KeyError repr()s its argument; keep the traceback text readable."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception caught in a worker, with its formatted traceback, re-raised in the main
    process as the same type (``RuntimeError`` if that type cannot be rebuilt)."""

    def __init__(self, where: str, exc_info=None):
        exc_type, exc, tb = exc_info or sys.exc_info()
        self.exc_text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            pickle.dumps(exc_type)
        except Exception:       # a class the main process could not import
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.where = where

    def message(self) -> str:
        return (f"Caught {self.exc_type.__name__} {self.where}.\nOriginal "
                f"{self.exc_text.rstrip()}")

    def reraise(self):
        msg = self.message()
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


def _seed_everything(seed: int, base_seed: int, worker_id: int) -> None:
    from ..api.random import manual_seed
    random.seed(seed)
    manual_seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def _use_host_backend() -> None:
    # new tensors in this process (and in threads it starts) go to the host backend
    from ..api import context
    from ..dispatch.device import reset_process_default
    os.environ["POLYTEN_BACKEND"] = "cpu"
    reset_process_default()
    context.set_backend("cpu")


def worker_loop(kind, dataset, pickled, auto_collation, collate_fn, drop_last, batch_size,
                base_seed, worker_id, num_workers, task_queue, result_conn, done_event,
                init_fn, close_in_child):
    """The body of worker process ``worker_id`` (see the module docstring)."""
    global _WORKER_INFO
    from ._convert import dumps
    from ._fetch import make_fetcher

    for conn in close_in_child:      # copies of other pipes inherited through fork
        conn.close()
    try:
        _use_host_backend()
        seed = base_seed + worker_id
        _seed_everything(seed, base_seed, worker_id)
        where = f"in DataLoader worker process {worker_id}"
        init_error = None
        fetcher = None
        try:
            if pickled:
                dataset = pickle.loads(dataset)
            _WORKER_INFO = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                      dataset=dataset)
            if init_fn is not None:
                init_fn(worker_id)
            if kind == "map":
                fetcher = make_fetcher(kind, dataset, auto_collation, collate_fn, drop_last,
                                       batch_size)
        except Exception:
            init_error = ExceptionWrapper(where)

        import multiprocessing
        parent = multiprocessing.parent_process()
        epoch = None
        while True:
            try:
                task = task_queue.get(timeout=POLL_S)
            except queue.Empty:
                if done_event.is_set() or (parent is not None and not parent.is_alive()):
                    break
                continue
            if task is None or done_event.is_set():
                break
            task_epoch, number, index = task
            if init_error is not None:
                payload = init_error
            else:
                try:
                    if kind == "iterable" and task_epoch != epoch:
                        fetcher = None   # a new epoch iterates the dataset again
                        fetcher = make_fetcher(kind, dataset, auto_collation, collate_fn,
                                               drop_last, batch_size)
                    epoch = task_epoch
                    payload = fetcher.fetch(index)
                except StopIteration:
                    payload = WorkerExhausted
                except Exception:
                    payload = ExceptionWrapper(where)
            head = HEADER.pack(task_epoch, number)
            try:
                data = dumps(payload, head)
            except Exception:
                err = ExceptionWrapper(f"{where} while sending batch {number} to the main "
                                       f"process: the batch cannot be pickled; return tensors, "
                                       f"arrays, numbers and containers of them from "
                                       f"collate_fn")
                err.exc_type = RuntimeError
                data = dumps(err, head)
            try:
                result_conn.send_bytes(data)
            except OSError:        # the loader closed its end: it is shutting down
                break
            del payload, data
    except KeyboardInterrupt:
        pass        # the main process sees the interrupt too and shuts the workers down
    finally:
        try:
            result_conn.close()
        except OSError:
            pass
