"""``polyten.cuda``'s streams and events (PyTorch's API) on the CuPy stand-in.

``tests/cupy_standin.py`` models CuPy's streams and events: a current stream per thread and
device, CuPy's refusal to enter a stream of another device, events that belong to a device,
``cupy.cuda.get_elapsed_time``, and it records on which stream each kernel launch and each
asynchronous copy was queued (``cupy_standin.QUEUED``) and which calls make the host wait
(``"sync"`` in ``cupy_standin.STATS``).  So these tests check, without a GPU, that:

* the API behaves as ``torch.cuda``'s (types, equality, devices, error messages);
* every polyten op inside ``polyten.cuda.stream(s)`` -- kernels and non-blocking pinned copies
  -- is queued on ``s``, and ``s``'s device is the current device for the block;
* ``wait_stream`` / ``wait_event`` / ``record`` never make the host wait, while
  ``Stream.synchronize`` / ``Event.synchronize`` do;
* deferred value checks queued on a side stream are raised at the next host read.

What the stand-in cannot show -- that the work of two streams really overlaps and is ordered
by the events -- is tested on a GPU by ``tests/test_cuda.py``.  Each test runs in a
subprocess, since the stand-in replaces ``cupy`` for the whole process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import cupy_standin as cs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
needs_cxx = pytest.mark.skipif(cs.CXX is None, reason="no host C++ compiler (g++) to run the "
                                                      "fused CUDA kernel bodies on the CPU")


def _run(*code: str, timeout: int = 300, devices: int = 1,
         standin: bool = True) -> subprocess.CompletedProcess:
    """Run the code blocks (each dedented on its own) in a fresh interpreter, after installing
    the stand-in with ``devices`` GPUs (``standin=False``: a plain process)."""
    prelude = f"import sys; sys.path.insert(0, {HERE!r})\n"
    if standin:
        prelude += f"import cupy_standin; cupy_standin.install(devices={devices})\n"
    env = dict(os.environ)
    env.pop("POLYTEN_SYNC_CHECKS", None)
    source = prelude + "".join(textwrap.dedent(c) for c in code)
    return subprocess.run([sys.executable, "-c", source], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), \
        (r.stdout + r.stderr)[-6000:]


_PRELUDE = """
    import inspect
    import threading
    import numpy as np
    import pytest
    import polyten as pt
    import polyten.nn.functional as F
    from polyten.dispatch import checks
    c = pt.cuda
    S, Q = cupy_standin.STATS, cupy_standin.QUEUED

    def line():
        return inspect.currentframe().f_back.f_lineno

    def traffic():
        return cupy_standin.traffic()
"""


# --- without CUDA ----------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None,
                    reason="CuPy is installed: the no-CUDA behaviour is not observable here")
def test_without_cuda_the_constructors_say_why():
    r = _run("""
        import pytest
        import polyten as pt
        import polyten.cuda as c
        assert "cupy" not in sys.modules
        for fn, call in (("Stream", c.Stream), ("Stream", lambda: c.Stream(0, priority=-1)),
                         ("Event", c.Event), ("Event", lambda: c.Event(enable_timing=True)),
                         ("current_stream", c.current_stream),
                         ("default_stream", lambda: c.default_stream("cuda:0"))):
            with pytest.raises(RuntimeError, match=rf"^polyten\\.cuda\\.{fn}: CUDA is not "
                                                   r"available: cupy is not installed"):
                call()
        with c.stream(None):  # as torch.cuda.stream(None): changes nothing
            pass
        with pytest.raises(TypeError, match="expected a polyten.cuda.Stream"):
            c.stream("cuda:0")
        assert "cupy" not in sys.modules
        print("ok")
    """, standin=False)
    _ok(r)


def test_import_polyten_cuda_loads_no_backend():
    r = _run("""
        import polyten.cuda as c
        assert "Stream" in c.__all__ and "Event" in c.__all__
        assert hasattr(sys.modules["cupy"], "_polyten_standin")  # installed, not imported again
        assert "polyten_cuda.backend" not in sys.modules
        print("ok")
    """)
    _ok(r)


# --- the stand-in's streams and events are CuPy's ---------------------------------------------
@pytest.fixture
def cp2():
    """The strict stand-in with two devices (restored afterwards)."""
    cp = cs.strict_cupy()
    saved = cs._DEVICE_COUNT[0]
    cs._DEVICE_COUNT[0] = 2
    cs.STATS.clear()
    try:
        yield cp
    finally:
        cs._DEVICE_COUNT[0] = saved
        cs.STATS.clear()


def test_standin_streams_behave_as_cupys(cp2):
    cp = cp2
    null = cp.cuda.Stream.null
    assert null.ptr == 0 and null.device_id == -1
    assert cp.cuda.get_current_stream() == null and cp.cuda.get_current_stream(1) == null
    s = cp.cuda.Stream(non_blocking=True, priority=-9)
    assert s.ptr != 0 and s.device_id == 0 and s.priority == -5 and s.is_non_blocking
    with s:
        assert cp.cuda.get_current_stream() is s
        assert cp.cuda.get_current_stream(1) == null  # per device
        cp.arange(3.0) * 2
    assert cp.cuda.get_current_stream() == null
    with cp.cuda.Device(1):
        s1 = cp.cuda.Stream()
        with pytest.raises(RuntimeError, match=r"stream is created on \(0\) does not match "
                                               r"with the current device \(1\)"):
            s.__enter__()  # CuPy refuses a stream of another device
    assert s1.device_id == 1
    with pytest.raises(RuntimeError, match="does not match with the current device"):
        s1.use()
    seen = []
    with s:
        t = threading.Thread(target=lambda: seen.append(cp.cuda.get_current_stream()))
        t.start()
        t.join()
    assert seen == [null]  # current streams are per thread
    assert not cs.traffic()
    s.synchronize()
    assert cs.traffic() == {"sync": 1}


def test_standin_events_behave_as_cupys(cp2):
    cp = cp2
    with pytest.raises(ValueError, match="Timing must be disabled for interprocess events"):
        cp.cuda.Event(interprocess=True)
    a, b = cp.cuda.Event(), cp.cuda.Event()
    untimed = cp.cuda.Event(disable_timing=True)
    assert a.done  # never recorded: complete, as cudaEventQuery
    with pytest.raises(RuntimeError, match="cudaErrorInvalidResourceHandle"):
        cp.cuda.get_elapsed_time(a, b)  # never recorded
    a.record()
    cp.arange(1000.0).sum()
    b.record(cp.cuda.get_current_stream())
    untimed.record()
    assert cp.cuda.get_elapsed_time(a, b) > 0
    with pytest.raises(RuntimeError, match="cudaErrorInvalidResourceHandle"):
        cp.cuda.get_elapsed_time(a, untimed)
    with cp.cuda.Device(1):
        s1 = cp.cuda.Stream()
    with pytest.raises(RuntimeError, match="cudaErrorInvalidResourceHandle"):
        a.record(s1)  # an event of device 0 on a stream of device 1
    cs.STATS.clear()
    s1.wait_event(a)  # any device's event: the device waits, not the host
    assert not cs.traffic()
    a.synchronize()
    cp.cuda.Event().synchronize()  # never recorded: no wait
    assert cs.traffic() == {"sync": 1}


# --- the API ---------------------------------------------------------------------------------
@needs_cxx
def test_stream_api():
    r = _run(_PRELUDE, """
        s = c.Stream()
        d = c.default_stream()
        assert isinstance(s, c.Stream) and s.device == pt.device("cuda:0")
        assert isinstance(s.cuda_stream, int) and s.cuda_stream not in (0, None)
        assert d.cuda_stream == 0 and d.device == pt.device("cuda:0")
        assert c.current_stream() == d == c.default_stream(0) == c.current_stream("cuda:0")
        assert s != d and s == s and len({s, c.Stream._of(s._rt, s._native, 0), d}) == 2
        assert s != "stream" and (s == object()) is False
        assert repr(s) == f"<polyten.cuda.Stream device=cuda:0 cuda_stream={s.cuda_stream:#x}>"
        assert s.__cuda_stream__() == (0, s.cuda_stream)
        assert s.priority == 0
        assert c.Stream(priority=-2).priority == -2
        assert c.Stream(priority=100).priority == 0 and c.Stream(priority=-100).priority == -5
        assert c.Stream(device=pt.device("cuda:0")).device == "cuda:0"
        assert s.query() is True

        ctx = c.stream(s)
        assert isinstance(ctx, c.StreamContext) and ctx.stream is s
        with ctx as entered:
            assert entered is s
            assert c.current_stream() == s and c.current_stream() != d
            assert hash(c.current_stream()) == hash(s)
            s2 = c.Stream()
            with c.stream(s2):
                assert c.current_stream() == s2
                with c.stream(None):
                    assert c.current_stream() == s2
            assert c.current_stream() == s
            with c.StreamContext(d):  # the default stream can be entered too
                assert c.current_stream() == d
            assert c.current_stream() == s
        assert c.current_stream() == d
        with s:  # a Stream is a context manager itself, as torch's
            assert c.current_stream() == s
            with s2:
                assert c.current_stream() == s2
            assert c.current_stream() == s
        assert c.current_stream() == d
        with ctx:  # a context can be entered again
            assert c.current_stream() == s
        assert c.current_stream() == d
        try:
            with c.stream(s):
                raise KeyError("inside")
        except KeyError:
            pass
        assert c.current_stream() == d  # restored on an exception too

        seen = []
        with c.stream(s):
            t = threading.Thread(target=lambda: seen.append(c.current_stream()))
            t.start(); t.join()
        assert seen == [d]  # the current stream is per thread, as in torch and CuPy

        e = s.record_event()
        assert isinstance(e, c.Event) and e.device == "cuda:0" and e.query()
        e2 = c.Event()
        assert s.record_event(e2) is e2
        s.wait_event(e)
        d.wait_stream(s)
        s.wait_stream(s)
        print("ok")
    """)
    _ok(r)


@needs_cxx
def test_event_api_and_timing():
    r = _run(_PRELUDE, """
        e = c.Event()
        assert e.device is None and e.cuda_event == 0 and e.query() is True
        assert repr(e) == "<polyten.cuda.Event (not recorded)>"
        e.synchronize()  # never recorded: returns at once
        e.wait()         # never recorded: nothing to wait for
        e.record()
        assert e.device == "cuda:0" and e.cuda_event != 0 and e.query()
        assert repr(e).startswith("<polyten.cuda.Event device=cuda:0 cuda_event=0x")

        x = pt.randn(64, 64, device="cuda")
        start, end = c.Event(enable_timing=True), c.Event(enable_timing=True)
        start.record()
        y = x @ x
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        assert isinstance(ms, float) and ms > 0
        assert "timing" in repr(start)

        s = c.Stream()
        a, b = c.Event(enable_timing=True), c.Event(enable_timing=True, blocking=True)
        a.record(s)
        with c.stream(s):
            y = x @ x
        b.record(s)
        b.synchronize()
        assert a.elapsed_time(b) > 0
        a.record()  # re-recorded on another stream of the same device: allowed
        a.wait(s)
        c.Event(interprocess=True).record()
        print("ok")
    """)
    _ok(r)


@needs_cxx
def test_error_paths():
    r = _run(_PRELUDE, """
        s = c.Stream()
        timed = c.Event(enable_timing=True)
        plain = c.Event()
        # elapsed_time, as torch: timing, recorded, completed
        with pytest.raises(ValueError, match=r"elapsed_time: the end event was created "
                                             r"without timing; create both with "
                                             r"polyten.cuda.Event\\(enable_timing=True\\)"):
            timed.elapsed_time(plain)
        with pytest.raises(ValueError, match="start event .self. and the end event were "
                                             "created without timing"):
            plain.elapsed_time(c.Event())
        other = c.Event(enable_timing=True)
        with pytest.raises(ValueError, match=r"the start event \\(self\\) and the end event "
                                             r"were never recorded; call start.record\\(\\) "
                                             r"before the work and end.record\\(\\) after it"):
            timed.elapsed_time(other)
        timed.record()
        with pytest.raises(ValueError, match="the end event was never recorded"):
            timed.elapsed_time(other)
        with pytest.raises(TypeError, match="elapsed_time: expected a polyten.cuda.Event, "
                                            "got float 1.0"):
            timed.elapsed_time(1.0)
        # constructors
        with pytest.raises(ValueError, match="interprocess event cannot measure time.*"
                                             "enable_timing=False"):
            c.Event(enable_timing=True, interprocess=True)
        with pytest.raises(TypeError, match="Event: enable_timing must be a bool, got str"):
            c.Event(enable_timing="yes")
        with pytest.raises(TypeError, match="Stream: priority must be an int.*float 1.5"):
            c.Stream(priority=1.5)
        with pytest.raises(ValueError, match="polyten.cuda.Stream: expected a cuda device, "
                                             "got 'cpu'"):
            c.Stream("cpu")
        with pytest.raises(ValueError, match=r"polyten.cuda.Stream: device 3 does not exist; "
                                             r"there are 1 CUDA device\\(s\\)"):
            c.Stream(3)
        with pytest.raises(TypeError, match="polyten.cuda.Stream: expected a device index, "
                                            "'cuda:N' or a polyten.device, got float"):
            c.Stream(0.0)
        with pytest.raises(ValueError, match="current_stream: device 2 does not exist"):
            c.current_stream(2)
        with pytest.raises(ValueError, match="default_stream: expected a cuda device"):
            c.default_stream("cpu")
        # arguments of the methods
        with pytest.raises(TypeError, match="wait_stream: expected a polyten.cuda.Stream, got "
                                            "Event"):
            s.wait_stream(plain)
        with pytest.raises(TypeError, match="wait_event: expected a polyten.cuda.Event, got "
                                            "Stream"):
            s.wait_event(s)
        with pytest.raises(TypeError, match="record_event: expected a polyten.cuda.Event or "
                                            "None, got int 3"):
            s.record_event(3)
        with pytest.raises(TypeError, match=r"Event.record: expected a polyten.cuda.Stream "
                                            r"\\(or None for the current stream\\), got int"):
            plain.record(3)
        with pytest.raises(TypeError, match="Event.wait: expected a polyten.cuda.Stream"):
            plain.wait("cuda:0")
        with pytest.raises(TypeError, match=r"polyten.cuda.stream: expected a "
                                            r"polyten.cuda.Stream \\(make one with "
                                            r"polyten.cuda.Stream\\(device\\)\\) or None, got "
                                            r"int 0"):
            c.stream(0)
        with pytest.raises(TypeError, match="expected a polyten.cuda.Stream"):
            c.StreamContext(s._native)  # a raw CuPy stream is not a polyten one
        print("ok")
    """)
    _ok(r)


# --- what runs where, and who waits --------------------------------------------------------------
@needs_cxx
def test_ops_inside_the_context_are_queued_on_the_stream():
    r = _run(_PRELUDE, """
        x = pt.randn(32, 16, device="cuda")
        w = pt.randn(16, 8, device="cuda", requires_grad=True)
        host = np.random.default_rng(0).standard_normal((8, 16)).astype("float32")
        pinned = pt.tensor(host).pin_memory("cuda")
        s = c.Stream()
        on_s, on_default = (0, s.cuda_stream), (0, 0)
        Q.clear()
        S.clear()
        with c.stream(s):
            y = F.gelu(x @ w).sum()
            y.backward()
            xb = pinned.to("cuda", non_blocking=True)
            z = xb @ w
        assert Q[on_s]["launch"] >= 4 and Q[on_s]["h2d_async"] == 1, dict(Q)
        assert Q[on_default] == {}, dict(Q)  # nothing went to the default stream
        assert traffic() == {"h2d_async": 1}, traffic()  # and nothing waited
        launches = Q[on_s]["launch"]
        c.current_stream().wait_stream(s)
        assert Q[on_s]["launch"] == launches and not Q[on_default]  # waits launch nothing
        y2 = F.gelu(x @ w).sum()  # after the block: the default stream again
        assert Q[on_default]["launch"] >= 1 and Q[on_s]["launch"] == launches
        pinned.to("cuda", non_blocking=True)
        assert Q[on_default]["h2d_async"] == 1 and Q[on_s]["h2d_async"] == 1
        np.testing.assert_allclose(z.detach().cpu().numpy(), host @ w.detach().cpu().numpy(),
                                   rtol=1e-5)
        assert np.allclose(y.item(), y2.item())
        print("ok")
    """)
    _ok(r)


@needs_cxx
def test_waits_cost_no_host_sync_and_synchronize_does():
    r = _run(_PRELUDE, """
        x = pt.randn(16, 16, device="cuda")
        s, t = c.Stream(), c.Stream(priority=-1)
        e = c.Event()
        with c.stream(s):
            y = x @ x
        S.clear()
        t.wait_stream(s)
        c.current_stream().wait_stream(s)
        s.wait_stream(c.current_stream())
        e.record(s)
        t.wait_event(e)
        e.wait()
        s.record_event()
        assert s.query() and e.query() and t.query()
        with c.stream(t):
            z = y + 1
        assert traffic() == {}, traffic()  # no read, no copy, no wait

        s.synchronize()
        assert traffic() == {"sync": 1}
        e.synchronize()
        assert traffic() == {"sync": 2}
        c.Event().synchronize()  # never recorded: no wait
        assert traffic() == {"sync": 2}
        start, end = c.Event(enable_timing=True), c.Event(enable_timing=True)
        start.record(); end.record(); end.synchronize()
        S.clear()
        start.elapsed_time(end)
        assert traffic() == {}  # completed events: no wait
        c.synchronize()
        assert traffic() == {"sync": 1}
        print("ok")
    """)
    _ok(r)


# --- deferred value checks on a side stream ------------------------------------------------
@needs_cxx
def test_deferred_checks_on_a_side_stream_are_raised_at_the_next_read():
    r = _run(_PRELUDE, """
        x = pt.randn(4, 3, device="cuda")
        good = pt.tensor([0, 1, 2, 0], device="cuda")
        bad = pt.tensor([0, 7, 1, 2], device="cuda")
        s = c.Stream()

        # 1. a wrong target on the side stream, good ones on the default stream after it
        S.clear()
        with c.stream(s):
            loss = F.cross_entropy(x, bad); where = line()
        assert "d2h" not in S and "sync" not in S, dict(S)  # queued, not read
        ok = F.cross_entropy(x, good)
        c.current_stream().wait_stream(s)
        with pytest.raises(IndexError, match=rf"cross_entropy: target 7 is out of bounds.*"
                                             rf"<string>:{where}"):
            loss.item()
        assert checks.pending() == 0
        assert np.isfinite(ok.item())

        # 2. the first failing call is named, whatever stream each check ran on
        bad_first = F.cross_entropy(x, bad); where = line()
        with c.stream(s):
            F.cross_entropy(x, good)
            pt.nn.functional.embedding(pt.tensor([1, 2], device="cuda"), x)
        assert checks.pending() == 3
        with pytest.raises(IndexError, match=rf"target 7.*<string>:{where}"):
            c.synchronize()

        # 3. each stream keeps its own running flag: no check reads another stream's flag
        F.cross_entropy(x, good)
        with c.stream(s):
            F.cross_entropy(x, good)
            assert len(checks._QUEUE.any) == 2  # the default stream's chain, parked
        assert len(checks._QUEUE.any) == 2      # now s's chain is the parked one
        # a read while another stream's checks are pending waits for the whole device first
        S.clear()
        assert np.isfinite(ok.item())
        assert S["sync"] == 1 and S["d2h"] == 3, dict(S)  # two flags and the value
        assert checks.pending() == 0 and not checks._QUEUE.any
        # only the current stream's checks pending: no device wait
        with c.stream(s):
            F.cross_entropy(x, good)
            S.clear()
            assert np.isfinite(ok.item())
        assert "sync" not in S and S["d2h"] == 2, dict(S)

        # 4. a read inside the block reports the default stream's wrong call
        F.cross_entropy(x, bad); where = line()
        with c.stream(s):
            y = F.cross_entropy(x, good)
            with pytest.raises(IndexError, match=rf"target 7.*<string>:{where}"):
                y.item()
        assert checks.pending() == 0

        # 5. indices too (embedding -> index_select), and set_sync_checks still checks at once
        with c.stream(s):
            pt.nn.functional.embedding(pt.tensor([1, 5], device="cuda"), x); where = line()
        with pytest.raises(IndexError, match=rf"<string>:{where}"):
            x.sum().item()
        c.set_sync_checks(True)
        with c.stream(s):
            with pytest.raises(IndexError, match="target 7"):
                F.cross_entropy(x, bad)
        c.set_sync_checks(False)
        print("ok")
    """)
    _ok(r)


# --- two devices -----------------------------------------------------------------------------
@needs_cxx
def test_two_devices():
    r = _run(_PRELUDE, """
        assert c.device_count() == 2 and c.current_device() == 0
        s0 = c.Stream()
        s1 = c.Stream(1)
        assert s0.device == "cuda:0" and s1.device == "cuda:1" and c.current_device() == 0
        assert c.Stream("cuda:1").device == c.Stream(pt.device("cuda:1")).device == "cuda:1"
        assert c.default_stream(0) != c.default_stream(1)  # the same handle, two devices
        assert c.default_stream(0).cuda_stream == c.default_stream(1).cuda_stream == 0

        a = np.random.default_rng(0).standard_normal((8, 8))
        x1 = pt.tensor(a, device="cuda:1")
        Q.clear()
        with c.stream(s1):  # switches to s1's device for the block, as torch
            assert c.current_device() == 1
            assert c.current_stream() == s1 and c.current_stream(1) == s1
            assert c.current_stream(0) == c.default_stream(0)
            t = pt.ones(3, device="cuda")
            assert t.device == "cuda:1"
            y1 = (x1 @ x1).exp()
            with c.stream(s0):  # nested, on the other device
                assert c.current_device() == 0 and c.current_stream() == s0
                assert c.current_stream(1) == s1
                y0 = pt.tensor(a, device="cuda") * 2
            assert c.current_device() == 1 and c.current_stream() == s1
        assert c.current_device() == 0
        assert c.current_stream(1) == c.default_stream(1)
        assert Q[(1, s1.cuda_stream)]["launch"] >= 2 and Q[(0, s0.cuda_stream)]["launch"] >= 1
        assert not Q[(1, 0)] and not Q[(0, 0)], dict(Q)

        # the device is restored even when the block raises
        try:
            with s1:
                raise KeyError
        except KeyError:
            pass
        assert c.current_device() == 0 and c.current_stream(1) == c.default_stream(1)

        # joins across devices: no host wait
        S.clear()
        s0.wait_stream(s1)
        c.current_stream().wait_stream(s1)
        e1 = s1.record_event()
        assert e1.device == "cuda:1"
        s0.wait_event(e1)
        e1.wait(c.current_stream())
        assert traffic() == {}, traffic()
        np.testing.assert_allclose(y1.cpu().numpy(), np.exp(a @ a), rtol=1e-12)
        np.testing.assert_allclose(y0.cpu().numpy(), a * 2)

        # an event belongs to the device it was first recorded on
        with pytest.raises(RuntimeError, match=r"Event.record: the event belongs to cuda:1 "
                                               r"\\(first recorded there\\) but the stream is on "
                                               r"cuda:0; record it on a stream of cuda:1"):
            e1.record(s0)
        with pytest.raises(RuntimeError, match="belongs to cuda:1"):
            e1.record()  # the current stream of the current device, cuda:0
        start0, end1 = c.Event(enable_timing=True), c.Event(enable_timing=True)
        start0.record(s0)
        end1.record(s1)
        with pytest.raises(ValueError, match="start event was recorded on cuda:0 and the end "
                                             "event on cuda:1; time the work of one device"):
            start0.elapsed_time(end1)
        end0 = c.Event(enable_timing=True)
        with c.stream(s1):
            end0.record(s0)  # a stream of another device than the current one
        end0.synchronize()
        assert start0.elapsed_time(end0) >= 0

        # deferred checks on device 1's side stream
        bad = pt.tensor([0, 9], device="cuda:1")
        with c.stream(s1):
            loss = F.cross_entropy(pt.randn(2, 3, device="cuda"), bad); where = line()
        c.current_stream(1).wait_stream(s1)
        with pytest.raises(IndexError, match=rf"target 9.*<string>:{where}"):
            loss.item()
        print("ok")
    """, devices=2)
    _ok(r)
