"""DataLoader worker processes: order, seeding, sharding, failures (exception, SIGKILL,
segfault, timeout), shutdown (break, deletion, program exit) and persistent workers.

Datasets are module-level classes so that the forkserver test can pickle them."""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import polyten
from polyten.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

from _reference import to_numpy


def _no_children():
    deadline = time.monotonic() + 3.0
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    return multiprocessing.active_children() == []


class Items(Dataset):
    """Sample i is {"x": float i, "v": [i, i]}; misbehaves on chosen indices."""

    def __init__(self, n, kill_at=None, raise_at=None, segv_at=None, sleep_at=None):
        self.n, self.kill_at, self.raise_at = n, kill_at, raise_at
        self.segv_at, self.sleep_at = segv_at, sleep_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if i == self.segv_at:
            import faulthandler
            faulthandler.disable()                  # keep pytest's crash dump out of the log
            ctypes.string_at(0)                     # a real segmentation fault
        if i == self.raise_at:
            raise ValueError(f"corrupt record {i}")
        if i == self.sleep_at:
            time.sleep(5)
        return {"x": float(i), "v": np.array([i, i], dtype=np.int32)}


class WhoAmI(Dataset):
    """Each sample reports the worker that loaded it and draws from every generator."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (info.id, info.num_workers, info.seed, os.getpid(), random.random(),
                np.random.rand(), polyten.rand(1, device="cpu").item())


class Sharded(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def test_workers_deliver_the_same_batches_in_order():
    ds = Items(23)
    single = list(DataLoader(ds, batch_size=4))
    multi = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert len(multi) == len(single) == 6
    for a, b in zip(multi, single):
        np.testing.assert_array_equal(to_numpy(a["x"]), to_numpy(b["x"]))
        np.testing.assert_array_equal(to_numpy(a["v"]), to_numpy(b["v"]))
        assert a["x"].dtype == polyten.float64 and a["v"].dtype == polyten.int32
    assert _no_children()


def test_shuffled_order_with_workers_equals_single_process():
    ds = TensorDataset(polyten.arange(30))
    g = lambda: polyten.Generator().manual_seed(5)          # noqa: E731
    single = [to_numpy(b[0]).tolist() for b in DataLoader(ds, 7, shuffle=True, generator=g())]
    multi = [to_numpy(b[0]).tolist() for b in DataLoader(ds, 7, shuffle=True, generator=g(),
                                                      num_workers=2, prefetch_factor=1)]
    assert multi == single
    assert sorted(sum(single, [])) == list(range(30))


def test_worker_info_and_seeding_are_distinct_and_reproducible():
    def run(seed):
        dl = DataLoader(WhoAmI(), batch_size=None, num_workers=2,
                        generator=polyten.Generator().manual_seed(seed))
        return list(dl)

    a, b, c = run(1), run(1), run(2)
    ids = {s[0] for s in a}
    assert ids == {0, 1} and all(s[1] == 2 for s in a)
    seeds = {s[0]: s[2] for s in a}
    assert seeds[1] == seeds[0] + 1                         # base seed + worker id
    assert [s[4:] for s in a] == [s[4:] for s in b]         # random, numpy, polyten: reproducible
    assert [s[4:] for s in a] != [s[4:] for s in c]
    by_worker = {w: [s[4:] for s in a if s[0] == w] for w in (0, 1)}
    assert by_worker[0] != by_worker[1]                     # workers draw different streams
    assert get_worker_info() is None


def test_iterable_dataset_shards_by_worker():
    out = list(DataLoader(Sharded(11), batch_size=2, num_workers=3))
    values = sorted(v for b in out for v in to_numpy(b).tolist())
    assert values == list(range(11))                        # each sample exactly once
    # drop_last applies per worker (as PyTorch): worker 2 drops its last, single sample
    assert len(list(DataLoader(Sharded(11), batch_size=2, num_workers=3, drop_last=True))) == 5


def _record_init(worker_id):
    os.environ["POLYTEN_TEST_WORKER"] = str(worker_id)


class InitSeen(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return int(os.environ.get("POLYTEN_TEST_WORKER", "-1"))


def test_worker_init_fn_runs_in_each_worker():
    out = list(DataLoader(InitSeen(), batch_size=1, num_workers=2, worker_init_fn=_record_init))
    assert [to_numpy(b).tolist() for b in out] == [[0], [1], [0], [1]]
    assert "POLYTEN_TEST_WORKER" not in os.environ


def test_worker_exception_reaches_main_with_traceback():
    dl = DataLoader(Items(12, raise_at=6), batch_size=2, num_workers=2)
    got = []
    with pytest.raises(ValueError) as info:
        for b in dl:
            got.append(b)
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process 1" in msg
    assert "Original Traceback" in msg and "corrupt record 6" in msg
    assert "__getitem__" in msg and "test_data_workers.py" in msg
    assert len(got) == 3                                    # batches before the bad one
    assert _no_children()


def _failing_init(worker_id):
    raise KeyError("no config")


def test_worker_init_fn_error_keeps_its_type():
    with pytest.raises(KeyError, match="no config"):
        list(DataLoader(Items(4), batch_size=2, num_workers=2, worker_init_fn=_failing_init))
    assert _no_children()


def test_killed_worker_gives_a_clear_error_quickly():
    dl = DataLoader(Items(40, kill_at=13), batch_size=2, num_workers=2)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) exited unexpectedly: it was "
                                           r"killed by signal SIGKILL while loading batch 6 "
                                           r"\(dataset indices \[12, 13\]\).*num_workers=0"):
        list(dl)
    assert time.monotonic() - t0 < 5
    assert _no_children()


def test_segfaulting_worker_gives_a_clear_error():
    dl = DataLoader(Items(10, segv_at=3), batch_size=2, num_workers=2)
    with pytest.raises(RuntimeError, match="SIGSEGV.*native code"):
        list(dl)
    assert _no_children()


def test_timeout_raises_instead_of_waiting():
    dl = DataLoader(Items(6, sleep_at=2), batch_size=1, num_workers=2, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds.*batch 2"):
        list(dl)
    assert time.monotonic() - t0 < 3.5
    assert _no_children()


def _shared_memory_held():
    """/dev/shm objects this process maps or holds open (semaphores, shared memory)."""
    held = set()
    try:
        with open("/proc/self/maps") as f:
            held |= {line.split(None, 5)[-1].strip() for line in f if "/dev/shm/" in line}
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                held.add(target)
    except OSError:            # no /proc: nothing to check here
        pass
    return held


def test_break_and_delete_leave_no_process_behind():
    gc.collect()
    shm_before = _shared_memory_held()
    dl = DataLoader(Items(50), batch_size=2, num_workers=2)
    for k, _ in enumerate(dl):
        if k == 2:
            break
    gc.collect()
    assert _no_children()
    it = iter(dl)
    next(it)
    assert len(multiprocessing.active_children()) == 2
    del it
    assert _no_children()
    assert len(dl) == 25 and len(list(dl)) == 25            # iterating again: a full epoch
    assert _no_children()
    gc.collect()
    assert _shared_memory_held() <= shm_before


def test_persistent_workers_survive_epochs():
    dl = DataLoader(WhoAmI(), batch_size=None, num_workers=2, persistent_workers=True)
    pids1 = {s[3] for s in dl}
    for k, _ in enumerate(dl):           # break mid-epoch; the next epoch is complete
        if k == 1:
            break
    epoch = list(dl)
    assert len(epoch) == 8 and {s[3] for s in epoch} == pids1
    assert len(multiprocessing.active_children()) == 2
    del dl                               # deleting the loader stops its workers
    assert _no_children()


def test_persistent_workers_restart_an_iterable_dataset():
    dl = DataLoader(Sharded(5), batch_size=None, num_workers=2, persistent_workers=True)
    assert sorted(int(v) for v in dl) == list(range(5))
    assert sorted(int(v) for v in dl) == list(range(5))
    dl._iterator._shutdown()
    assert _no_children()


def test_out_of_order_delivery_delivers_everything():
    dl = DataLoader(TensorDataset(polyten.arange(9)), batch_size=2, num_workers=2,
                    in_order=False)
    assert sorted(v for b in dl for v in to_numpy(b[0]).tolist()) == list(range(9))


def _unpicklable_collate(batch):
    return lambda: batch


def test_unpicklable_batch_is_reported():
    dl = DataLoader(Items(4), batch_size=2, num_workers=1, collate_fn=_unpicklable_collate)
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        list(dl)
    assert _no_children()


def test_forkserver_workers_get_host_copies_of_tensor_datasets():
    x = polyten.arange(12.0).reshape(6, 2)
    dl = DataLoader(TensorDataset(x, polyten.arange(6)), batch_size=4, num_workers=2,
                    multiprocessing_context="forkserver")
    out = list(dl)
    np.testing.assert_array_equal(to_numpy(out[0][0]), to_numpy(x[:4]))
    np.testing.assert_array_equal(to_numpy(out[1][1]), [4, 5])
    assert _no_children()
    with pytest.raises(TypeError, match="pickled.*module level"):
        list(DataLoader(Items(4), num_workers=1, multiprocessing_context="forkserver",
                        worker_init_fn=lambda i: None))


def test_program_exit_leaves_no_worker_behind(tmp_path):
    script = tmp_path / "leave.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from polyten.data import DataLoader, Dataset

        class D(Dataset):
            def __len__(self):
                return 100
            def __getitem__(self, i):
                return np.zeros(2)

        it = iter(DataLoader(D(), batch_size=2, num_workers=2))
        next(it)
        import multiprocessing
        print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    time.sleep(0.2)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


class WhereCreated(Dataset):
    """Reports the backend new tensors go to inside the worker."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return polyten.ones(2) * i, polyten.get_backend()


def test_workers_use_the_host_backend_and_batches_land_on_the_current_one():
    from conftest import cpu_clone
    calls = []

    def pin(array):
        calls.append(array.shape)
        return np.array(array, copy=True)

    with cpu_clone("clone", pin_memory=pin) as dev:
        with polyten.backend("clone"):
            out = list(DataLoader(WhereCreated(), batch_size=2, num_workers=2,
                                  pin_memory=True))
        assert [b[1] for b in out] == [["cpu", "cpu"], ["cpu", "cpu"]]   # inside the workers
        assert all(b[0].device == dev for b in out)                       # delivered here
        np.testing.assert_array_equal(to_numpy(out[1][0].cpu()), [[2, 2], [3, 3]])
        assert calls == [(2, 2), (2, 2)]          # pinned in the main process, per batch
    assert _no_children()


def test_start_method_choice(monkeypatch):
    from polyten.data import _multiprocessing as mpi
    monkeypatch.setattr(mpi, "_device_backend_loaded", lambda: False)
    assert mpi.choose_context(None).get_start_method() == "fork"
    monkeypatch.setattr(mpi, "_device_backend_loaded", lambda: True)
    assert mpi.choose_context(None).get_start_method() == "forkserver"
    with pytest.warns(RuntimeWarning, match="forked while an accelerator backend is loaded"):
        mpi.choose_context(multiprocessing.get_context("fork"))
    # a start method the program chose (other than the platform default) is respected
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert mpi.choose_context(None).get_start_method() == "spawn"
