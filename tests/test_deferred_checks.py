"""Deferred value checks (``polyten.dispatch.checks``) on a backend that declares
``deferred_checks`` -- a cpu clone standing in for a GPU, whose host reads would wait for the
device: the class-target check of cross_entropy / nll_loss is queued and raised at the next
host read or synchronize, with the op's message and the line of the user's call.

Such a backend's kernels must stay memory-safe on values the queued check will reject (the
CUDA loss kernels read nothing for such targets and give nan; CuPy wraps out-of-range indices
around); NumPy's fancy indexing raises instead, so the stand-in's loss kernels treat such
targets as ignored and its indexing kernels wrap indices as CuPy does."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F
from polyten.dispatch import Backend, BackendSpec, checks, hookimpl, register_plugin, \
    unregister_plugin


class _DeferredPlugin:
    @hookimpl
    def polyten_register_backends(self, register):
        def load():
            from polyten_cpu.backend import make_backend
            base = make_backend()
            kernels = dict(base.kernels)
            for op in ("nll_loss", "cross_entropy"):
                kernels[op] = _tolerant(base.kernels[op])
            kernels["getitem"] = _wrapping_getitem(base.kernels["getitem"])
            kernels["gather"] = _wrapping_gather(base.kernels["gather"])
            kernels["scatter"] = _wrapping_scatter(base.kernels["scatter"])
            return Backend("lazycpu", kernels, dtypes=base.dtypes,
                           native_dtype=base.native_dtype, dtype_name=base.dtype_name,
                           is_native=base.is_native, seed=base.seed, deferred_checks=True)
        register(BackendSpec("lazycpu", load=load))


def _tolerant(kernel):
    def k(x, target, weight, ignore_index, reduction):
        C = x.shape[1 if x.ndim > 1 else 0]
        ok = ((target >= 0) & (target < C)) | (target == ignore_index)
        return kernel(x, np.where(ok, target, ignore_index), weight, ignore_index, reduction)
    return k


def _wrapping_getitem(kernel):
    def k(x, key):
        key = key if isinstance(key, tuple) else (key,)
        out, dim = [], 0
        for j, e in enumerate(key):
            if e is Ellipsis:  # the entries after it count from the last dim
                dim = x.ndim - sum(1 for f in key[j + 1:] if f is not None)
            elif isinstance(e, np.ndarray) and e.dtype.kind in "iu":
                e = np.mod(e, x.shape[dim])  # CuPy's wrap-around
            if e is not Ellipsis and e is not None:
                dim += 1
            out.append(e)
        return kernel(x, tuple(out))
    return k


def _wrapping_gather(kernel):
    def k(x, dim, index):
        return kernel(x, dim, np.mod(index, x.shape[dim]) if x.ndim else index)
    return k


def _wrapping_scatter(kernel):
    def k(x, dim, index, src):
        return kernel(x, dim, np.mod(index, x.shape[dim]) if x.ndim else index, src)
    return k


@pytest.fixture
def lazy():
    name = register_plugin(_DeferredPlugin(), name="test-lazycpu")
    try:
        yield pt.device("lazycpu")
    finally:
        with contextlib.suppress(IndexError):
            checks.flush()  # nothing a test queued leaks into the next one
        unregister_plugin(name)


def _logits(dev):
    x = np.random.default_rng(0).standard_normal((4, 3))
    return pt.tensor(x, device=dev, requires_grad=True)


def test_an_out_of_range_target_raises_at_the_next_host_read(lazy):
    x = _logits(lazy)
    loss = F.cross_entropy(x, pt.tensor([0, 7, 1, 2], device=lazy))  # line of the call
    line = _line_of("loss = F.cross_entropy(x, pt.tensor([0, 7, 1, 2], device=lazy))")
    assert checks.pending(lazy.backend) == 1
    with pytest.raises(IndexError) as info:
        loss.item()
    msg = str(info.value)
    assert "cross_entropy: target 7 is out of bounds" in msg
    assert f"test_deferred_checks.py:{line}" in msg and "POLYTEN_SYNC_CHECKS" in msg
    assert checks.pending() == 0
    assert np.isfinite(F.cross_entropy(x, pt.tensor([0, 2, 1, 2], device=lazy)).item())


def test_synchronize_raises_too_and_nll_loss_is_checked(lazy):
    x = _logits(lazy)
    F.nll_loss(F.log_softmax(x, 1), pt.tensor([-1, 0, 1, 2], device=lazy))
    with pytest.raises(IndexError, match="nll_loss: target -1 is out of bounds"):
        lazy.backend.synchronize()
    F.nll_loss(F.log_softmax(x, 1), pt.tensor([-100, 0, 1, 2], device=lazy))  # ignored: fine
    lazy.backend.synchronize()


def test_valid_targets_give_the_cpu_results_and_gradients(lazy):
    x_np = np.random.default_rng(1).standard_normal((5, 4))
    t_np = np.array([3, 0, -100, 1, 2])
    out = []
    for dev in ("cpu", lazy):
        x = pt.tensor(x_np, device=dev, requires_grad=True)
        loss = F.cross_entropy(x, pt.tensor(t_np, device=dev))
        loss.backward()
        out.append((loss.item(), x.grad.to("cpu").numpy()))
    # the stand-in has no fused backward: the derivative formulas against the cpu's kernel
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-14)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-12, atol=1e-15)


def test_sync_checks_raise_at_the_call(lazy):
    checks.set_sync_checks(True)
    try:
        with pytest.raises(IndexError, match="target 9"):
            F.cross_entropy(_logits(lazy), pt.tensor([0, 9, 1, 2], device=lazy))
        assert checks.pending() == 0
    finally:
        checks.set_sync_checks(False)


def test_the_queue_is_bounded(lazy):
    x = _logits(lazy)
    t = pt.tensor([0, 1, 2, 0], device=lazy)
    for _ in range(checks.MAX_PENDING * 2 + 3):
        F.cross_entropy(x, t)
        assert checks.pending(lazy.backend) < checks.MAX_PENDING
    assert checks.pending(lazy.backend) == 3


def test_host_read_backends_check_at_once():
    assert pt.device("cpu").backend.deferred_checks is False
    with pytest.raises(IndexError, match="cross_entropy: target 5 is out of bounds"):
        F.cross_entropy(pt.randn(2, 3), pt.tensor([0, 5]))
    assert checks.pending() == 0


def _line_of(text: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if text in line and not line.lstrip().startswith("line ="):
                return i
    raise AssertionError(text)



def test_out_of_range_indices_raise_at_the_next_host_read(lazy):
    x = pt.tensor(np.arange(10.0).reshape(5, 2), device=lazy)
    out = pt.index_select(x, 0, pt.tensor([1, 12], device=lazy))
    assert checks.pending(lazy.backend) == 1
    with pytest.raises(IndexError, match=r"index_select: index 12 is out of bounds for "
                                         r"dimension 0 with size 5 \(detected at .*"
                                         r"test_deferred_checks.py:\d+"):
        out.numpy()
    g = pt.gather(x, 1, pt.tensor([[0], [3], [1], [0], [1]], device=lazy))
    g2 = pt.gather(x, 1, pt.tensor([[0], [9], [1], [0], [1]], device=lazy))
    # the first failing check is raised; the queue is emptied either way (as CUDA reports
    # the first asynchronous error)
    with pytest.raises(IndexError, match="gather: index 3 is out of bounds for dimension 1"):
        print(g)
    assert checks.pending() == 0
    g2.tolist()
    emb = pt.nn.functional.embedding(pt.tensor([0, 7], device=lazy), x)
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 0 with size 5"):
        emb.tolist()


def test_valid_and_negative_indices_give_the_cpu_results(lazy):
    """The deferred path cannot read the smallest index, so it always normalises negative
    ones (take_along_dim, x[idx], take): the same values and gradients as on the cpu."""
    x_np = np.random.default_rng(2).standard_normal((4, 5))
    res = []
    for dev in ("cpu", lazy):
        x = pt.tensor(x_np, device=dev, requires_grad=True)
        i = pt.tensor([[0, 4], [1, 3], [2, 2], [4, 0]], device=dev)
        neg = pt.tensor([-1, 0, -4], device=dev)
        outs = [pt.take_along_dim(x, i, 1), x[neg], pt.take(x, neg), x[:, neg],
                pt.gather(x, 1, i), pt.index_select(x, 1, pt.tensor([4, 0], device=dev)),
                pt.nn.functional.embedding(pt.tensor([3, 0], device=dev), x)]
        sum(o.sum() for o in outs).backward()
        res.append([o.detach().to("cpu").numpy() for o in outs] + [x.grad.to("cpu").numpy()])
    assert checks.pending() == 0  # the host reads above checked them
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_checks_are_raised_in_the_thread_that_made_the_call(lazy):
    """A pinning thread or another user thread reading values never raises a check queued
    by this one; this thread's next host read does."""
    import threading
    x = _logits(lazy)
    loss = F.cross_entropy(x, pt.tensor([0, 7, 1, 2], device=lazy))
    seen = []

    def other():
        try:
            seen.append(pt.tensor([1.0, 2.0], device=lazy).sum().item())
            seen.append(checks.pending())
        except Exception as exc:  # would be the other thread's error
            seen.append(exc)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [3.0, 0]
    assert checks.pending(lazy.backend) == 1
    with pytest.raises(IndexError, match="target 7"):
        loss.item()


def _count_flag_reads(monkeypatch, backend):
    reads = []
    raw = backend.raw_to_host

    def counting(a):
        reads.append(a)
        return raw(a)
    monkeypatch.setattr(backend, "raw_to_host", counting)
    return reads


def test_a_host_read_reads_one_flag_however_many_checks_are_queued(lazy, monkeypatch):
    """The queued flags are OR-ed on the device as they are queued: a clean flush costs one
    read; only a failing one reads the flags one by one, to name the first failing call."""
    reads = _count_flag_reads(monkeypatch, lazy.backend)
    x = _logits(lazy)
    ok = pt.tensor([0, 1, 2, 0], device=lazy)
    for _ in range(10):
        loss = F.cross_entropy(x, ok)
    assert checks.pending(lazy.backend) == 10
    loss.item()
    assert len(reads) == 1 and checks.pending() == 0
    reads.clear()
    for t in ([0, 1, 2, 0], [0, 1, 2, 0], [5, 1, 2, 0], [0, 6, 2, 0], [0, 1, 2, 0]):
        loss = F.cross_entropy(x, pt.tensor(t, device=lazy))
    with pytest.raises(IndexError, match="target 5 is out of bounds"):
        loss.item()
    assert len(reads) == 1 + 3  # the combined flag, then the first three flags
    assert checks.pending() == 0


def test_discard_drops_queued_checks_unread(lazy):
    F.cross_entropy(_logits(lazy), pt.tensor([0, 9, 1, 2], device=lazy))
    assert checks.discard(pt.device("cpu").backend) == 0
    assert checks.discard(lazy.backend) == 1 and checks.pending() == 0
    _logits(lazy).sum().item()  # nothing left to raise


def test_backward_does_not_check_the_forward_indices_again(lazy):
    """gather, index_select, embedding, x[idx], take_along_dim and a cross-entropy with label
    smoothing: one check per index or target tensor the user passed, none in the backward
    (``checks.indices_checked``); the gradients are the cpu's."""
    x_np = np.random.default_rng(3).standard_normal((4, 5))
    res = []
    for dev in ("cpu", lazy):
        x = pt.tensor(x_np, device=dev, requires_grad=True)
        i = pt.tensor([[0, 4], [1, 3], [2, 2], [4, 0]], device=dev)
        t = pt.tensor([4, 0, 2, 1], device=dev)
        outs = [pt.gather(x, 1, i), pt.index_select(x, 1, t), x[t[1:3]],
                pt.take_along_dim(x, i, 1), pt.nn.functional.embedding(t, x.T),
                F.cross_entropy(x, t, label_smoothing=0.2)]
        n = checks.pending()
        if dev is lazy:
            assert n == 6, n  # five index checks, one target check
        sum(o.sum() for o in outs).backward()
        assert checks.pending() == n
        res.append(x.grad.to("cpu").numpy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-12)


def _index_check_reference(x, low, high, ignore, acc):
    bad = (x < low) | (x >= high)
    if ignore is not None:
        bad &= x != ignore
    return bool(acc) or bool(bad.any())


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64"])
def test_index_check_default_kernel_against_numpy(dtype):
    """The op-table default of ``index_check`` (lt, ge, ne, any, logical_or) that a backend
    without its own kernel gets, against NumPy."""
    from polyten.dispatch.dispatcher import kernels
    k = kernels("index_check")[pt.device("cpu").backend]
    rng = np.random.default_rng(4)
    for _ in range(40):
        x = rng.integers(0, 12, size=rng.integers(1, 9)).astype(dtype)
        low, high = int(rng.integers(0, 3)), int(rng.integers(5, 13))
        ignore = None if rng.random() < 0.5 else int(x[rng.integers(0, x.size)])
        for acc in (None, np.array(False), np.array(True)):
            got = k(x, low, high, ignore, acc)
            assert got.dtype == np.bool_ and got.shape == ()
            assert bool(got) == _index_check_reference(x, low, high, ignore, acc)


def test_one_hot_with_num_classes_checks_at_the_next_read(lazy):
    """With ``num_classes`` given, one_hot needs no value on the host: the class check is
    deferred (ValueError, as on the cpu); without it the largest class must be read."""
    t = pt.tensor([0, 4, 1], device=lazy)
    out = F.one_hot(t, 3)
    assert checks.pending(lazy.backend) == 1
    with pytest.raises(ValueError, match=r"one_hot: class values must be smaller than "
                                         r"num_classes \(3\), got 4 \(detected at"):
        out.tolist()
    neg = F.one_hot(pt.tensor([0, -2], device=lazy), 3)
    with pytest.raises(ValueError, match="must be non-negative, got -2"):
        neg.tolist()
    good = F.one_hot(pt.tensor([2, 0], device=lazy), 3)
    assert good.tolist() == [[0, 0, 1], [1, 0, 0]] and checks.pending() == 0
    assert F.one_hot(t).shape == (3, 5) and checks.pending() == 0  # read at the call


def test_random_parameter_checks_wait_for_the_next_read(lazy):
    """bernoulli's probabilities, normal's std and multinomial's weights are checked without
    a host read at the call on a deferred-checks backend (the samplers stay memory-safe on
    such values), and raise the cpu's ValueError at the next read."""
    cases = [
        (lambda d: pt.bernoulli(pt.tensor([0.5, 1.5], device=d)),
         "bernoulli: probabilities must be in"),
        (lambda d: pt.normal(pt.zeros(3, device=d), pt.tensor([1.0, -1.0, 1.0], device=d)),
         "normal: expects all elements of std >= 0.0"),
        (lambda d: pt.multinomial(pt.tensor([1.0, -1.0, 2.0], device=d), 1),
         "weights must be finite and non-negative"),
        (lambda d: pt.multinomial(pt.tensor([[1.0, 0.0], [0.0, 0.0]], device=d), 1),
         "the weights of a row sum to 0"),
        (lambda d: pt.multinomial(pt.tensor([1.0, 0.0, 2.0], device=d), 3),
         "with only 2 categories of non-zero weight"),
    ]
    for make, message in cases:
        out = make(lazy)
        assert checks.pending(lazy.backend) >= 1
        with pytest.raises(ValueError, match=message):
            out.tolist()
        assert checks.pending() == 0
        with pytest.raises(ValueError, match=message):
            make("cpu")  # the same error on the cpu, at the call
    ok = pt.multinomial(pt.tensor([1.0, 0.0, 2.0], device=lazy), 2)
    assert sorted(ok.tolist()) == [0, 2]


def test_linalg_errors_wait_for_the_next_read(lazy):
    """A singular or indefinite matrix: the kernel's ``info`` is checked at the next read on
    a deferred-checks backend, naming the matrix of the batch, as on the cpu at the call."""
    a = np.stack([np.eye(2), np.zeros((2, 2))])
    inv = pt.linalg.inv(pt.tensor(a, device=lazy))
    assert checks.pending(lazy.backend) == 1
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.inv: matrix \(1,\) of the batch"):
        inv.tolist()
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.inv: matrix \(1,\) of the batch"):
        pt.linalg.inv(pt.tensor(a))
    chol = pt.linalg.cholesky(pt.tensor(-np.eye(2), device=lazy))
    with pytest.raises(pt.linalg.LinAlgError, match="not positive-definite"):
        chol.sum().item()
    np.testing.assert_allclose(pt.linalg.inv(pt.tensor(2 * np.eye(2), device=lazy)).tolist(),
                               0.5 * np.eye(2))
