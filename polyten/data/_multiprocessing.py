"""The multi-process DataLoader iterator: the main-process side of the workers.

Design (see docs/architecture.md, "Data loading"):

* Each worker has its own task pipe (see ``_TaskPipe``: puts never block the main
  process) and its own result pipe, of which the main process keeps only the read end.  The
  main process waits with ``multiprocessing.connection.wait`` on the pipe *and the worker's
  process sentinel*, so a worker that dies (killed, segfault) is noticed at once, and a dead
  writer gives EOF instead of a half-read message: no poll interval, no hang.
* Tasks go round-robin to the workers, at most ``prefetch_factor`` per worker ahead; a
  worker's results come back in its task order, so delivering in sampler order needs no
  reordering buffer: batch ``k`` is the next message of the worker that got task ``k``.
* Results carry ``(epoch, batch number)``: after an early ``break`` with persistent workers,
  batches of the abandoned epoch are recognised and dropped.
* Shutdown (end of epoch, error, ``break`` + garbage collection, program exit through
  ``weakref.finalize``) sets the done event, sends ``None``, closes the pipes, joins with a
  grace period and terminates stragglers; queues are closed.  No shared memory segments are
  used; batches travel as pickles through the pipes.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import queue
import pickle
import signal
import sys
import time
import warnings
import weakref
from multiprocessing.connection import wait as _wait

from ..dispatch import registry as _registry
from . import _convert
from ._random import draw_seed
from ._worker import HEADER, ExceptionWrapper, WorkerExhausted, worker_loop
from .dataloader import BaseIter

_GRACE_S = 1.0          # how long shutdown waits for workers to exit by themselves


def _device_backend_loaded() -> bool:
    """A backend with numbered devices (CUDA-like) is loaded: forking could copy a live
    device context into the workers."""
    return any(info.backend is not None and info.backend.indexed
               for info in list(_registry.REGISTRY.infos.values()))


def choose_context(requested):
    """The multiprocessing context workers start with (see ``DataLoader``'s docstring)."""
    chosen = multiprocessing.get_start_method(allow_none=True)
    # Starting any spawn/forkserver process fixes the global method to the platform default
    # (the first of get_all_start_methods()), so only another method shows a program's choice.
    if requested is None and chosen is not None and \
            chosen != multiprocessing.get_all_start_methods()[0]:
        requested = multiprocessing.get_context(chosen)
    if requested is not None:
        if requested.get_start_method() == "fork" and _device_backend_loaded():
            warnings.warn("DataLoader: workers are forked while an accelerator backend is "
                          "loaded in this process; a forked CUDA context is unusable. Prefer "
                          "multiprocessing_context='forkserver' or 'spawn'.", RuntimeWarning,
                          stacklevel=4)
        return requested
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context()    # spawn on macOS and Windows: fork is unsafe there
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and not _device_backend_loaded():
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # the server imports these once; each worker then starts as a fork of it
        ctx.set_forkserver_preload(["polyten", "polyten.data"])
        return ctx
    return multiprocessing.get_context("spawn")


def _describe_exit(code) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by signal {name}"
    return f"exited with code {code}"


class _TaskPipe:
    """A worker's task channel: one one-way pipe.

    Not ``multiprocessing.Queue``: its ``put`` hands each task to a feeder thread, which then
    competes for the main process's GIL and cores with the loop consuming batches -- on a
    2-core machine that cost about a millisecond a batch.  Tasks are a few hundred bytes and
    at most ``prefetch_factor`` are outstanding per worker, so a send never blocks.
    """

    def __init__(self, ctx):
        self._r, self._w = ctx.Pipe(duplex=False)

    def put(self, task) -> None:          # main process
        self._w.send(task)

    def get(self, timeout: float):        # worker
        if not self._r.poll(timeout):
            raise queue.Empty
        return self._r.recv()

    def started(self) -> None:
        """In the main process, once the worker has its copy: only the worker reads."""
        self._r.close()

    def cancel_join_thread(self) -> None:
        pass                               # no feeder thread to wait for

    def close(self) -> None:
        for c in (self._r, self._w):
            try:
                c.close()
            except OSError:
                pass


class _Workers:
    """The processes, queues and pipes of one iterator; ``shutdown`` is idempotent and holds
    no reference to the iterator (it is the iterator's finalizer)."""

    def __init__(self, ctx):
        self.procs = []
        self.queues = []
        self.conns = []
        self.done = ctx.Event()
        self.down = False
        self.owner = os.getpid()

    def shutdown(self) -> None:
        if self.down:
            return
        self.down = True
        if os.getpid() != self.owner:
            return      # a forked child's copy of this object: the workers are not its own
        try:
            self.done.set()
        except Exception:
            pass
        for q in self.queues:
            try:
                q.put(None)
            except Exception:
                pass
        for c in self.conns:
            c.close()           # a worker blocked sending gets EPIPE and exits
        deadline = time.monotonic() + _GRACE_S
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join()
        for q in self.queues:
            q.cancel_join_thread()
            q.close()
        for p in self.procs:
            try:
                p.close()
            except ValueError:
                pass


class MultiProcessIter(BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        n = self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor
        self._timeout = loader.timeout
        self._in_order = loader.in_order
        self._persistent = loader.persistent_workers
        ctx = choose_context(loader.multiprocessing_context)
        forking = ctx.get_start_method() == "fork"
        base_seed = draw_seed(loader.generator)
        dataset = loader.dataset
        if not forking:
            try:   # tensors travel as host arrays and become cpu tensors in the workers
                dataset = bytes(_convert.dumps(dataset))
            except Exception as exc:
                raise TypeError(f"DataLoader: workers started with "
                                f"{ctx.get_start_method()!r} receive the dataset by pickle, "
                                f"and {type(loader.dataset).__name__} cannot be pickled "
                                f"({exc}); define it at module level without open handles, "
                                f"or use multiprocessing_context='fork'") from exc
        ws = self._workers = _Workers(ctx)
        self._finalizer = weakref.finalize(self, ws.shutdown)
        for wid in range(n):
            tq = _TaskPipe(ctx)
            r, w = ctx.Pipe(duplex=False)
            close = list(ws.conns) + [r] if forking else []
            p = ctx.Process(
                target=worker_loop, name=f"polyten-data-worker-{wid}", daemon=True,
                args=(self._kind, dataset, not forking, self._auto_collation,
                      self._collate_fn, self._drop_last, self._batch_size, base_seed, wid, n,
                      tq, w, ws.done, loader.worker_init_fn, close))
            try:
                p.start()
            except Exception as exc:
                w.close()
                r.close()
                tq.close()
                self._finalizer()
                if forking or not isinstance(exc, (pickle.PicklingError, AttributeError,
                                                   TypeError)):
                    raise
                raise TypeError(f"DataLoader: could not start worker {wid} with "
                                f"{ctx.get_start_method()!r}: {exc}. With 'spawn' and "
                                f"'forkserver', collate_fn and worker_init_fn are pickled: "
                                f"define them at module level (no lambdas or closures)") \
                    from exc
            w.close()          # only the worker writes: its death gives EOF here
            tq.started()
            ws.procs.append(p)
            ws.queues.append(tq)
            ws.conns.append(r)
        self._epoch = 0
        self._start_epoch()

    # ------------------------------------------------------------------- bookkeeping --
    def _start_epoch(self) -> None:
        n = self._num_workers
        self._epoch += 1
        self._send_idx = 0
        self._order = collections.deque()        # outstanding batch numbers, in send order
        self._pending = [collections.deque() for _ in range(n)]   # per worker, in its order
        self._tasks = {}                         # batch number -> (worker, indices)
        self._active = [True] * n
        self._cycle = itertools.cycle(range(n))
        self._sampler_done = False
        for _ in range(self._prefetch * n):
            self._put_task()

    def _reset(self, loader) -> None:
        super()._reset(loader)
        self._start_epoch()

    def _put_task(self) -> None:
        if self._sampler_done or not any(self._active):
            return
        w = next(self._cycle)
        while not self._active[w]:
            w = next(self._cycle)
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            self._sampler_done = True
            return
        k = self._send_idx
        self._send_idx += 1
        self._workers.queues[w].put((self._epoch, k, index))
        self._order.append(k)
        self._pending[w].append(k)
        self._tasks[k] = (w, index)

    # ---------------------------------------------------------------------- receiving --
    def _next_data(self):
        while True:
            if not self._tasks:
                self._finish()
                raise StopIteration
            w = self._tasks[self._order[0]][0] if self._in_order else self._ready_worker()
            k, payload = self._receive(w)
            self._pending[w].popleft()
            self._order.remove(k) if not self._in_order else self._order.popleft()
            del self._tasks[k]
            if payload is WorkerExhausted:
                self._active[w] = False
                self._put_task()
                continue
            if isinstance(payload, ExceptionWrapper):
                self._shutdown()
                payload.reraise()
            self._put_task()
            return payload

    def _ready_worker(self) -> int:
        busy = [w for w in range(self._num_workers) if self._pending[w]]
        ws = self._workers
        ready = _wait([ws.conns[w] for w in busy] + [ws.procs[w].sentinel for w in busy],
                      timeout=self._timeout or None)
        for w in busy:
            if ws.conns[w] in ready or ws.procs[w].sentinel in ready:
                return w
        return busy[0]      # timed out: _receive reports it

    def _receive(self, w: int):
        ws = self._workers
        conn, proc = ws.conns[w], ws.procs[w]
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = _wait([conn, proc.sentinel], timeout=left)
            if not ready:
                k, pid = self._pending[w][0], proc.pid
                self._shutdown()
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds waiting "
                                   f"for batch {k} from worker {w} (pid {pid}); raise "
                                   f"timeout= if loading a batch legitimately takes longer")
            if conn not in ready:
                self._worker_died(w)
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                self._worker_died(w)
            epoch, k = HEADER.unpack_from(data)
            if epoch != self._epoch:
                continue            # a batch of an abandoned epoch (persistent workers)
            try:
                with _convert.delivery(self._delivery_device(), self._pin):
                    payload = pickle.loads(memoryview(data)[HEADER.size:])
            except Exception as exc:
                self._shutdown()
                raise RuntimeError(f"DataLoader: batch {k} from worker {w} could not be "
                                   f"unpickled in the main process: {exc}") from exc
            return k, payload

    def _worker_died(self, w: int):
        proc = self._workers.procs[w]
        proc.join(1.0)
        code = proc.exitcode
        k = self._pending[w][0] if self._pending[w] else None
        index = self._tasks.get(k, (None, None))[1]
        what = f"batch {k}" if k is not None else "a batch"
        if index is not None:
            idx = index.tolist() if hasattr(index, "tolist") else index
            if isinstance(idx, list) and len(idx) > 8:
                idx = idx[:8] + ["..."]
            what += f" (dataset indices {idx})" if isinstance(idx, list) else \
                f" (dataset index {idx})"
        hint = ""
        if code is not None and code < 0 and -code == signal.SIGKILL:
            hint = ("SIGKILL is usually the out-of-memory killer (or kill -9): lower batch_size, "
                    "num_workers or prefetch_factor. ")
        elif code is not None and code < 0 and -code in (signal.SIGSEGV, signal.SIGBUS):
            hint = "This is a crash in native code called by the dataset. "
        pid = proc.pid
        self._shutdown()
        raise RuntimeError(f"DataLoader worker {w} (pid {pid}) exited unexpectedly: it "
                           f"{_describe_exit(code)} while loading {what}. {hint}Run with "
                           f"num_workers=0 to reproduce the failure in the main process.")

    # ----------------------------------------------------------------------- shutdown --
    def _finish(self) -> None:
        """End of an epoch: persistent workers wait for the next one, others stop."""
        if not self._persistent:
            self._shutdown()

    def _shutdown(self) -> None:
        self._finished = True
        self._finalizer()

    def __del__(self):
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()
