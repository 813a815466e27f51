"""polyten.use_deterministic_algorithms and its torch spellings: the setting, its errors, its
delivery to backends (loaded before and after it is set), and the raise / warn helper a
backend calls for a kernel without a deterministic algorithm.  (The cuda backend's
deterministic scatter_add: tests/test_cuda_raw_kernels.py and tests/test_cuda.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import polyten as pt
from polyten.dispatch import register_plugin, unregister_plugin
from polyten.dispatch.determinism import alert_not_deterministic

from _plugins import recording_plugin


@pytest.fixture(autouse=True)
def _restore():
    yield
    pt.use_deterministic_algorithms(False)


def _recording_plugin(name, seen):
    return recording_plugin(name, deterministic_algorithms=lambda on, warn:
                            seen.append((on, warn)))


def test_the_setting_and_its_torch_spellings():
    assert not pt.are_deterministic_algorithms_enabled()
    assert pt.get_deterministic_debug_mode() == 0
    pt.use_deterministic_algorithms(True)
    assert pt.are_deterministic_algorithms_enabled()
    assert not pt.is_deterministic_algorithms_warn_only_enabled()
    assert pt.get_deterministic_debug_mode() == 2
    pt.use_deterministic_algorithms(True, warn_only=True)
    assert pt.is_deterministic_algorithms_warn_only_enabled()
    assert pt.get_deterministic_debug_mode() == 1
    pt.set_deterministic_debug_mode("default")
    assert not pt.are_deterministic_algorithms_enabled()
    assert not pt.is_deterministic_algorithms_warn_only_enabled()
    pt.set_deterministic_debug_mode(2)
    assert pt.are_deterministic_algorithms_enabled() and pt.get_deterministic_debug_mode() == 2
    pt.set_deterministic_debug_mode("warn")
    assert pt.get_deterministic_debug_mode() == 1


def test_the_same_calls_give_torchs_answers():
    torch = pytest.importorskip("torch")
    calls = [lambda m: m.use_deterministic_algorithms(True),
             lambda m: m.use_deterministic_algorithms(True, warn_only=True),
             lambda m: m.set_deterministic_debug_mode("error"),
             lambda m: m.set_deterministic_debug_mode(1),
             lambda m: m.use_deterministic_algorithms(False, warn_only=True),
             lambda m: m.set_deterministic_debug_mode("default")]
    try:
        for call in calls:
            answers = []
            for m in (pt, torch):
                call(m)
                answers.append((m.are_deterministic_algorithms_enabled(),
                                m.is_deterministic_algorithms_warn_only_enabled(),
                                m.get_deterministic_debug_mode()))
            assert answers[0] == answers[1]
    finally:
        torch.use_deterministic_algorithms(False)


def test_bad_arguments_name_the_choices():
    with pytest.raises(TypeError, match=r"use_deterministic_algorithms: mode must be True or "
                                        r"False, got str 'yes'"):
        pt.use_deterministic_algorithms("yes")
    with pytest.raises(TypeError, match="warn_only must be True or False, got int 1"):
        pt.use_deterministic_algorithms(True, warn_only=1)
    with pytest.raises(ValueError, match=r"set_deterministic_debug_mode: expected 'default' "
                                         r"\(0\), 'warn' \(1\) or 'error' \(2\), got 'strict'"):
        pt.set_deterministic_debug_mode("strict")
    with pytest.raises(ValueError, match="got 3"):
        pt.set_deterministic_debug_mode(3)
    assert not pt.are_deterministic_algorithms_enabled()  # nothing changed


def test_backends_get_each_change_and_later_ones_get_it_at_load():
    seen_a, seen_b, seen_c = [], [], []
    pa = register_plugin(_recording_plugin("deta", seen_a), name="test-deta")
    pb = register_plugin(_recording_plugin("detb", seen_b), name="test-detb")
    pc = register_plugin(_recording_plugin("detc", seen_c), name="test-detc")
    try:
        pt.zeros(1, device="deta")  # loads while off: nothing to hand over
        assert seen_a == []
        pt.use_deterministic_algorithms(True, warn_only=True)
        assert seen_a == [(True, True)]
        pt.zeros(1, device="detb")  # loads while on: gets it at load
        assert seen_b == [(True, True)]
        pt.use_deterministic_algorithms(False)
        assert seen_a[-1] == seen_b[-1] == (False, False)
        pt.zeros(1, device="detc")
        assert seen_c == []
    finally:
        for p in (pa, pb, pc):
            unregister_plugin(p)


def test_alert_raises_warns_or_passes():
    alert_not_deterministic("my_op", "mybackend")  # off: nothing
    pt.use_deterministic_algorithms(True)
    with pytest.raises(RuntimeError, match=r"my_op does not have a deterministic "
                                           r"implementation on backend 'mybackend'.*"
                                           r"warn_only=True"):
        alert_not_deterministic("my_op", "mybackend")
    pt.use_deterministic_algorithms(True, warn_only=True)
    with pytest.warns(UserWarning, match="my_op does not have a deterministic"):
        alert_not_deterministic("my_op", "mybackend")


def test_cpu_results_do_not_change():
    # the cpu backend's kernels are all deterministic (numpy.add.at sums in order): no hook
    x = pt.zeros(4)
    idx = pt.tensor([0, 1, 1, 3, 1])
    src = pt.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    before = x.index_add(0, idx, src).numpy()
    pt.use_deterministic_algorithms(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = x.index_add(0, idx, src).numpy()
    assert np.array_equal(before, after)
    want = np.zeros(4, np.float32)
    np.add.at(want, [0, 1, 1, 3, 1], np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32))
    assert np.array_equal(after, want)
