"""The session's background pipeline (``tests/_background.py``): steps in order, a step's
failure handed to the test that waits for it, ``stop`` killing the running subprocess, and
the conftest hooks that run the waiting tests last."""

from __future__ import annotations

import os
import sys
import time

import pytest

import _background as bg
from conftest import _skipped


def test_steps_run_in_order_and_see_earlier_results():
    seen = []

    def first(p):
        seen.append("first")
        return p.call([sys.executable, "-c", "print(6 * 7)"], timeout=60)

    def second(p):
        seen.append("second")
        return int(p.result("first").stdout) + 1

    p = bg.Pipeline([("first", first), ("second", second)])
    try:
        assert p.result("second") == 43
        assert p.result("first").returncode == 0
        assert seen == ["first", "second"]
        assert os.path.isdir(p.dir)
    finally:
        p.stop()
    assert not os.path.exists(p.dir)


def test_a_failed_step_raises_in_the_test_that_waits_and_the_next_steps_still_run():
    def broken(p):
        raise bg.StepFailed("nvrtc_workload.py failed: boom")

    p = bg.Pipeline([("broken", broken), ("after", lambda p: "ran")])
    try:
        with pytest.raises(bg.StepFailed, match="boom"):
            p.result("broken")
        assert p.result("after") == "ran"
        with pytest.raises(bg.StepFailed, match=r"'missing' was not planned.*broken"):
            p.result("missing")
    finally:
        p.stop()


def test_a_subprocess_that_overruns_is_killed_and_says_so():
    p = bg.Pipeline([("slow", lambda p: p.call(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
        timeout=1))])
    try:
        r = p.result("slow")
        assert r.returncode != 0
        assert "started" in r.stdout and "[killed after 1 s]" in r.stdout
    finally:
        p.stop()


def test_stop_kills_the_running_step_and_refuses_the_next():
    p = bg.Pipeline([
        ("sleep", lambda p: p.call([sys.executable, "-c", "import time; time.sleep(60)"],
                                   timeout=120)),
        ("next", lambda p: p.call([sys.executable, "-c", "pass"], timeout=60))])
    deadline = time.monotonic() + 30
    while p._proc is None and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 20  # killed, not waited out
    assert p.result("sleep").returncode != 0
    with pytest.raises(bg.StepFailed, match="session ended"):
        p.result("next")


class _Item:
    def __init__(self, fixturenames, marks=()):
        self.fixturenames = fixturenames
        self._marks = list(marks)

    def get_closest_marker(self, name):
        return next((m for m in self._marks if m.name == name), None)

    def iter_markers(self, name):
        return (m for m in self._marks if m.name == name)


def test_a_test_skipped_by_a_bool_condition_starts_no_background_work():
    needs = _Item(["nvrtc_compiled"])
    skipped = _Item(["nvrtc_compiled"], [pytest.mark.skipif(True, reason="no NVRTC").mark])
    kept = _Item(["nvrtc_compiled"], [pytest.mark.skipif(False, reason="x").mark])
    assert not _skipped(needs) and _skipped(skipped) and not _skipped(kept)
    assert _skipped(_Item([], [pytest.mark.skip(reason="x").mark]))


def test_the_tests_that_wait_run_last_in_the_order_their_work_finishes():
    from conftest import pytest_collection_modifyitems
    items = [_Item(["nvrtc_compiled"]), _Item(["tmp_path"]),
             _Item(["cuda_standin_conformance"]), _Item(["nvrtc_kernel_log"]), _Item([])]
    order = list(items)
    pytest_collection_modifyitems(None, items)
    assert items == [order[1], order[4], order[2], order[3], order[0]]
