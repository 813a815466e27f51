"""Indexing ops against NumPy (float64 references computed here) and PyTorch where installed.

Basic indexing must return views (written through, read from the base); in-place writes must
be visible through every view; every error path is checked for class and message words.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cpu_clone

import polyten as pt


def P(a, dtype=None):
    return pt.tensor(np.asarray(a), dtype=dtype)


def N(t):
    return np.asarray(t.numpy())


def same(t, ref, dtype=None):
    ref = np.asarray(ref)
    assert tuple(t.shape) == ref.shape, (tuple(t.shape), ref.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    np.testing.assert_array_equal(N(t).astype(ref.dtype), ref)


A = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
I = np.array  # noqa: E741


@pytest.fixture
def nofused():
    """A cpu clone without the fused kernels of composite ops: their defaults run."""
    with cpu_clone("nofused_ix", drop=("masked_fill",)) as dev:
        yield dev


# ---------------------------------------------------------------------------- __getitem__ ---
BASIC_KEYS = [
    0, -1, (1, 2), (1, 2, 3), (-1, -2, -4), slice(None), slice(1, None), (slice(None), 1),
    (Ellipsis, 2), (Ellipsis,), (None,), (0, None, slice(None, None, 2)),
    (slice(None), slice(0, 3, 2), slice(1, 3)), (None, Ellipsis, None), (slice(5, 10),),
    (slice(-10, 1),), (1, Ellipsis, None), (slice(None), None, 1), (),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_indexing_matches_numpy_and_is_a_view(key):
    x = P(A)
    r = x[key]
    same(r, A[key], pt.float64)
    if r.numel():
        r[...] = -1.0  # write through the view ...
        ref = A.copy()
        ref[key] = -1.0
        same(x, ref)  # ... and read the base


def test_int_index_gives_0d_view():
    x = P(np.arange(3.0))
    e = x[1]
    assert e.shape == () and e.item() == 1.0
    e[...] = 7.0
    assert x[1].item() == 7.0
    n = x[np.int64(2)]  # NumPy integers select like Python ints: a view
    n[...] = 9.0
    assert x[2].item() == 9.0
    z = pt.tensor(5.0)
    same(z[()], np.array(5.0))
    same(z[None], np.array([5.0]))
    same(z[...], np.array(5.0))


ADV_KEYS = [
    (I([0, 1, 1]),), (I([[0, 1], [1, 0]]),), (slice(None), I([2, 0])), (Ellipsis, I([3, -1])),
    (I([0, 1]), I([2, 1])), (I([0, 1]), slice(None), I([3, 3])), (I([-1, -2]),),
    (A[:, :, 0] > 5,), (A > 10,), (slice(None), A[0, :, 0] > 2), (A[:, 0, 0] >= 0, 1),
    (I([1, 0]), 2), (slice(0, 1), I([0, 2])), (I([], dtype=np.int64),), (None, I([0, 1])),
]


@pytest.mark.parametrize("key", ADV_KEYS, ids=lambda k: repr(k)[:40])
def test_advanced_indexing_matches_numpy(key):
    x = P(A)
    pkey = tuple(pt.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    r = x[pkey]
    same(r, A[key], pt.float64)
    r[...] = -5.0 if r.numel() else 0.0  # a copy: the base is unchanged
    same(x, A)


def test_lists_and_int32_indices():
    x = P(A)
    same(x[[1, 0]], A[[1, 0]])
    same(x[[[0, 1], [1, 1]]], A[np.array([[0, 1], [1, 1]])])
    same(x[[True, False]], A[np.array([True, False])])
    same(x[0, [2, 0], 1:], A[0][[2, 0], 1:])
    same(x[pt.tensor([1, 0], dtype=pt.int32)], A[[1, 0]])
    same(x[np.array([1, 1])], A[[1, 1]])
    same(x[[]], A[np.array([], dtype=np.int64)])
    same(x[True], A[None])
    same(x[False], A[None][:0])
    same(x[pt.tensor(1)], A[1])


def test_ints_apply_first_like_torch():
    # torch applies ints as select() before the index tensors: x[0, :, idx] has shape (3, k),
    # where NumPy would give (k, 3)
    x = P(A)
    idx = np.array([3, 0, 1, 1, 2])
    r = x[0, :, pt.tensor(idx)]
    same(r, A[0][:, idx])
    r2 = x[pt.tensor([1, 0]), 1:, 0]
    same(r2, A[:, :, 0][[1, 0], 1:])


def test_indexing_non_contiguous_and_empty():
    x = P(A).permute(2, 0, 1)
    ref = A.transpose(2, 0, 1)
    same(x[1:3, pt.tensor([1, 0])], ref[1:3, [1, 0]])
    same(x[x > 12], ref[ref > 12])
    same(x[::2, :, 1], ref[::2, :, 1])
    e = pt.zeros(0, 3)
    same(e[:, 1], np.zeros((0,)))
    same(e[pt.tensor([], dtype=pt.int64)], np.zeros((0, 3)))
    same(e[e > 0], np.zeros((0,)))


def test_getitem_errors():
    x = P(np.arange(3.0))
    with pytest.raises(IndexError) as ei:
        x[5]
    assert "index 5 is out of bounds for dimension 0 with size 3" in str(ei.value)
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 0 with size 3"):
        x[-4]
    y = P(A)
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 2 with size 4"):
        y[0, 0, 4]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        y[:, pt.tensor([0, 3])]
    with pytest.raises(IndexError, match="index -3 is out of bounds for dimension 0 with size 2"):
        y[pt.tensor([-3])]
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        y[[0, 2]]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::0]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 1"):
        x[0, 0]
    with pytest.raises(IndexError, match="invalid index of a 0-dim tensor"):
        pt.tensor(1.0)[0]
    with pytest.raises(IndexError, match="single ellipsis"):
        y[..., 0, ...]
    with pytest.raises(IndexError) as ei:
        y[pt.tensor([True, False, True])]
    msg = str(ei.value)
    assert "shape of the mask (3,)" in msg and "(2, 3, 4)" in msg and "dimension 0" in msg
    with pytest.raises(IndexError, match="tensors used as indices must be integer"):
        x[pt.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="uint8 index tensors are ambiguous"):
        x[pt.tensor([0, 1], dtype=pt.uint8)]
    with pytest.raises(IndexError, match="shape mismatch: indexing tensors could not be "
                                         r"broadcast together with shapes \(2,\), \(3,\)"):
        y[pt.tensor([0, 1]), pt.tensor([0, 1, 2])]
    with pytest.raises(TypeError, match="only integers, slices"):
        x["a"]
    with pytest.raises(TypeError, match="only integers, slices"):
        x[1.5]
    with pytest.raises(TypeError, match="slice indices must be integers or None"):
        x[0.5:2]


def test_getitem_device_mismatch(cpu2):
    x = pt.ones(3)
    with pytest.raises(pt.DeviceMismatchError):
        x[pt.tensor([0], device=cpu2)]


# ---------------------------------------------------------------------------- __setitem__ ---
def test_setitem_scalars_and_tensors_match_numpy():
    ref = A.copy()
    x = P(A)
    x[0] = 1.5
    ref[0] = 1.5
    x[1, :, 2] = P(np.array([7.0, 8.0, 9.0]))
    ref[1, :, 2] = [7.0, 8.0, 9.0]
    x[:, 1:] = P(np.array([[-1.0], [-2.0]])[:, :, None].repeat(4, 2)[:, :1])  # broadcast
    ref[:, 1:] = np.array([[-1.0], [-2.0]])[:, :, None]
    x[x > 20] = 0.0
    ref[ref > 20] = 0.0
    x[pt.tensor([1, 0]), 0, pt.tensor([3, 3])] = P(np.array([100.0, 200.0]))
    ref[[1, 0], 0, [3, 3]] = [100.0, 200.0]
    x[..., 0] = P(np.ones((1, 1, 3)))  # leading 1s of the value are dropped
    ref[..., 0] = 1.0
    same(x, ref)


def test_setitem_casts_to_target_dtype():
    x = pt.zeros(3, dtype=pt.float32)
    x[0] = P(np.array(2.5))  # float64 value into float32
    x[1:] = pt.tensor([1, 2])
    assert x.dtype == pt.float32
    same(x, np.array([2.5, 1.0, 2.0]))
    i = pt.zeros(3, dtype=pt.int64)
    i[0] = 2.7
    i[1] = True
    i[2:] = pt.tensor([3.9])
    same(i, np.array([2, 1, 3]), pt.int64)
    b = pt.zeros(2, dtype=pt.bool)
    b[0] = 5
    same(b, np.array([True, False]))
    c = pt.zeros(2, dtype=pt.complex64)
    c[1] = 1 + 2j
    same(c, np.array([0, 1 + 2j]))


def test_setitem_with_ints_and_tensors_follows_torch():
    x = P(A)
    x[0, :, pt.tensor([0, 2])] = P(np.arange(6.0).reshape(3, 2))  # region (3, 2), as torch
    ref = A.copy()
    ref[0][:, [0, 2]] = np.arange(6.0).reshape(3, 2)
    same(x, ref)


def test_setitem_through_views_and_in_place_ops_alias():
    base = P(A)
    v = base[1]
    v[0, 0] = -3.0
    v += 1.0  # in-place op on a view writes into the base
    sub = base[:, 1:, ::2]
    sub.mul_(0.0)
    base[0, 0] += 10.0  # Python: tmp = base[0, 0]; tmp += 10; base[0, 0] = tmp
    ref = A.copy()
    ref[1, 0, 0] = -3.0
    ref[1] += 1.0
    ref[:, 1:, ::2] = 0.0
    ref[0, 0] += 10.0
    same(base, ref)
    t = P(A).transpose(0, 2)  # non-contiguous target
    t[1] = 0.0
    r2 = A.copy()
    r2[:, :, 1] = 0.0
    same(t.transpose(0, 2), r2)


def test_setitem_errors():
    x = P(np.zeros((2, 3)))
    with pytest.raises(ValueError) as ei:
        x[0] = P(np.ones(2))
    msg = str(ei.value)
    assert "shape mismatch: value tensor of shape (2,) cannot be broadcast to indexing " \
           "result of shape (3,)" in msg
    with pytest.raises(ValueError, match=r"value tensor of shape \(3,\) .* \(2,\)"):
        x[x >= 0][:0]  # (reading is fine)
        x[pt.tensor([[True, False, False], [False, True, False]])] = P(np.ones(3))
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        x[2] = 1.0
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, pt.tensor([5])] = 1.0
    with pytest.raises(TypeError, match="complex value"):
        x[0, 0] = 1 + 2j
    with pytest.raises(TypeError, match="complex tensor"):
        x[0] = pt.tensor([1j, 2j, 3j])
    with pytest.raises(OverflowError, match="value 300 cannot be converted to type int8"):
        pt.zeros(2, dtype=pt.int8)[0] = 300
    with pytest.raises(ValueError, match="nan"):
        pt.zeros(2, dtype=pt.int32)[0] = float("nan")
    with pytest.raises(RuntimeError, match="clone"):
        pt.ones(3).expand(2, 3)[0] = 5.0
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1] = 0.0


def test_setitem_device_mismatch(cpu2):
    x = pt.ones(3)
    with pytest.raises(pt.DeviceMismatchError):
        x[0:2] = pt.zeros(2, device=cpu2)


# ------------------------------------------------------------------------- gather/scatter ---
def _rng():
    return np.random.default_rng(1)


def test_gather_matches_numpy():
    a = _rng().standard_normal((3, 4))
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    same(pt.gather(P(a), 1, P(idx)), np.take_along_axis(a, idx, 1))
    idx0 = np.array([[2, 0, 1, 1]])
    same(P(a).gather(0, P(idx0)), np.take_along_axis(a, idx0, 0))
    # index smaller than the input in the other dim (torch allows it)
    small = np.array([[1], [0]])
    same(P(a).gather(1, P(small)), np.take_along_axis(a[:2], small, 1))
    same(P(a).T.gather(0, P(idx.T)), np.take_along_axis(a.T, idx.T, 0))
    same(P(a).gather(1, pt.tensor(idx, dtype=pt.int32)), np.take_along_axis(a, idx, 1))
    same(pt.gather(pt.tensor(3.0), 0, pt.tensor(0)), np.array(3.0))
    same(P(a).gather(1, pt.zeros(3, 0, dtype=pt.int64)), np.zeros((3, 0)))


def test_gather_errors():
    x = P(np.ones((2, 3)))
    with pytest.raises(IndexError, match="gather: index 3 is out of bounds for dimension 1 "
                                         "with size 3"):
        x.gather(1, pt.tensor([[3]]))
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds"):
        x.gather(1, pt.tensor([[-1]]))
    with pytest.raises(TypeError, match="gather: index must be an integer tensor"):
        x.gather(1, pt.tensor([[0.0]]))
    with pytest.raises(ValueError, match="gather: index tensor must have the same number of "
                                         "dimensions"):
        x.gather(1, pt.tensor([0]))
    with pytest.raises(ValueError, match=r"gather: index of shape \(3, 1\) must be no larger "
                                         r"than the input \(2, 3\)"):
        x.gather(1, pt.zeros(3, 1, dtype=pt.int64))
    with pytest.raises(IndexError, match="gather: dimension out of range"):
        x.gather(2, pt.zeros(1, 1, dtype=pt.int64))


def test_scatter_and_scatter_():
    x = np.zeros((3, 4))
    idx = np.array([[1, 3], [0, 0], [2, 1]])
    src = np.arange(1.0, 7.0).reshape(3, 2)
    ref = x.copy()
    for i in range(3):
        for j in range(2):
            ref[i, idx[i, j]] = src[i, j]
    same(pt.scatter(P(x), 1, P(idx), P(src)), ref)
    t = P(x)
    out = t.scatter(1, P(idx), 9.0)
    ref9 = x.copy()
    np.put_along_axis(ref9, idx, 9.0, 1)
    same(out, ref9)
    same(t, x)  # out of place
    base = P(np.zeros((2, 3, 4)))
    view = base[1]
    assert view.scatter_(1, P(idx), P(src)) is view  # in place, through a view
    same(base[1], ref)
    same(base[0], x)
    r = P(x).scatter(0, pt.tensor([[2, 1, 0, 0]]), value=5.0)
    refr = x.copy()
    refr[[2, 1, 0, 0], [0, 1, 2, 3]] = 5.0
    same(r, refr)


def test_scatter_add_accumulates_duplicates():
    x = np.ones((2, 5))
    idx = np.array([[0, 1, 0, 4], [2, 2, 2, 2]])
    src = np.arange(8.0).reshape(2, 4)
    ref = x.copy()
    for i in range(2):
        for j in range(4):
            ref[i, idx[i, j]] += src[i, j]
    same(pt.scatter_add(P(x), 1, P(idx), P(src)), ref)
    same(P(x).scatter(1, P(idx), P(src), reduce="add"), ref)
    t = P(x)
    t.scatter_add_(1, P(idx), P(src))
    same(t, ref)
    ti = pt.zeros(4, dtype=pt.int32)
    ti.scatter_add_(0, pt.tensor([1, 1, 3]), pt.tensor([5, 6, 7], dtype=pt.int32))
    same(ti, np.array([0, 11, 0, 7]), pt.int32)


def test_scatter_errors():
    x = P(np.ones((2, 3)))
    with pytest.raises(IndexError, match="scatter: index 3 is out of bounds for dimension 1"):
        x.scatter(1, pt.tensor([[3]]), 1.0)
    with pytest.raises(TypeError, match="scatter: index must be an integer tensor"):
        x.scatter(1, pt.tensor([[1.0]]), 1.0)
    with pytest.raises(TypeError, match="scatter: src dtype float32 must match"):
        x.scatter(1, pt.tensor([[0]]), pt.ones(1, 1))
    with pytest.raises(ValueError, match="scatter: index of shape .* no larger than src"):
        x.scatter(1, pt.tensor([[0, 1]]), P(np.ones((1, 1))))
    with pytest.raises(TypeError, match="scatter: missing src"):
        x.scatter(1, pt.tensor([[0]]))
    with pytest.raises(ValueError, match="scatter: reduce must be None, 'add' or 'multiply'"):
        x.scatter(1, pt.tensor([[0]]), 1.0, reduce="max")
    with pytest.raises(TypeError, match="scatter_add: not supported for bool"):
        pt.zeros(2, dtype=pt.bool).scatter_add(0, pt.tensor([0]), pt.ones(1, dtype=pt.bool))
    with pytest.raises(IndexError, match="scatter_add: index -1 is out of bounds"):
        x.scatter_add(0, pt.tensor([[-1]]), P(np.ones((1, 1))))


def test_index_select_and_index_add():
    a = _rng().standard_normal((3, 4))
    same(pt.index_select(P(a), 1, pt.tensor([3, 0, 0])), a[:, [3, 0, 0]])
    same(P(a).index_select(0, pt.tensor(2)), a[[2]])
    same(P(a).T.index_select(0, pt.tensor([1], dtype=pt.int32)), a.T[[1]])
    with pytest.raises(IndexError, match="index_select: index 4 is out of bounds for dimension "
                                         "1 with size 4"):
        P(a).index_select(1, pt.tensor([4]))
    with pytest.raises(IndexError, match="index_select: index -1 is out of bounds"):
        P(a).index_select(1, pt.tensor([-1]))
    with pytest.raises(ValueError, match="index_select: index must be 0-d or 1-D"):
        P(a).index_select(1, pt.tensor([[1]]))
    with pytest.raises(TypeError, match="index_select: index must be an integer tensor"):
        P(a).index_select(1, pt.tensor([1.0]))
    src = np.arange(9.0).reshape(3, 3)
    ref = a.copy()
    np.add.at(ref, (slice(None), [1, 3, 1]), 2 * src)
    same(pt.index_add(P(a), 1, pt.tensor([1, 3, 1]), P(src), alpha=2), ref)
    t = P(a)
    t.index_add_(1, pt.tensor([1, 3, 1]), P(src), alpha=2)
    np.testing.assert_allclose(N(t), ref)
    with pytest.raises(ValueError, match="index_add: source of shape"):
        P(a).index_add(1, pt.tensor([1, 2]), P(src))


# ------------------------------------------------------------------------------- masking ---
def test_masked_fill_and_masked_fill_():
    a = np.arange(6.0).reshape(2, 3)
    m = np.array([True, False, True])
    ref = np.where(m, -1.0, a)
    same(pt.masked_fill(P(a), P(m), -1.0), ref, pt.float64)
    same(P(a).masked_fill(P(m), pt.tensor(-1.0)), ref)
    same(P(a).T.masked_fill(P(a.T > 2), 0.0), np.where(a.T > 2, 0.0, a.T))
    i = P(np.arange(6)).masked_fill(P(np.arange(6) > 3), 2.7)
    same(i, np.array([0, 1, 2, 3, 2, 2]), pt.int64)
    f32 = pt.ones(3, dtype=pt.float32).masked_fill(pt.tensor([True, False, False]), 5)
    assert f32.dtype == pt.float32
    base = P(a)
    view = base[:, 1:]
    assert view.masked_fill_(P(np.array([True, False])), 9.0) is view
    same(base, np.array([[0.0, 9.0, 2.0], [3.0, 9.0, 5.0]]))


def test_masked_fill_default_without_fused_kernel(nofused):
    a = np.arange(6.0).reshape(2, 3)
    x = pt.tensor(a, device=nofused)
    r = x.masked_fill(pt.tensor([True, False, True], device=nofused), 4)
    assert r.device == nofused and r.dtype == pt.float64
    same(r, np.where([True, False, True], 4.0, a))
    ri = pt.tensor([1, 2], device=nofused).masked_fill(pt.tensor([False, True], device=nofused),
                                                     7.9)
    same(ri, np.array([1, 7]), pt.int64)


def test_masked_errors():
    x = P(np.ones((2, 3)))
    with pytest.raises(TypeError, match="masked_fill: mask must be a bool tensor, got float32"):
        x.masked_fill(pt.ones(3), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(4,\) cannot be broadcast "
                                         r"to the input's shape \(2, 3\)"):
        x.masked_fill(pt.ones(4, dtype=pt.bool), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2, 2, 3\)"):
        x.masked_fill(pt.ones(2, 2, 3, dtype=pt.bool), 0.0)
    with pytest.raises(ValueError, match="only supports a 0-dimensional value tensor"):
        x.masked_fill(pt.ones(3, dtype=pt.bool), pt.ones(2))
    with pytest.raises(TypeError, match="masked_fill_: mask must be a bool tensor"):
        x.masked_fill_(pt.tensor([1, 0, 1]), 0.0)
    with pytest.raises(RuntimeError, match="clone"):
        pt.ones(3).expand(2, 3).masked_fill_(pt.ones(3, dtype=pt.bool), 0.0)
    with pytest.raises(ValueError, match="masked_select: cannot broadcast"):
        pt.masked_select(x, pt.ones(4, dtype=pt.bool))


def test_masked_select():
    a = np.arange(6.0).reshape(2, 3)
    m = a % 2 == 0
    same(pt.masked_select(P(a), P(m)), a[m])
    mrow = np.array([True, False, True])
    same(P(a).masked_select(P(mrow)), a[np.broadcast_to(mrow, a.shape)])
    same(P(np.arange(3.0)).masked_select(P(np.ones((2, 3), bool))),
         np.broadcast_to(np.arange(3.0), (2, 3)).ravel())
    same(pt.tensor(2.0).masked_select(pt.tensor(True)), np.array([2.0]))


def test_take_and_take_along():
    a = np.arange(12.0).reshape(3, 4)
    same(pt.take(P(a), pt.tensor([[0, 11], [-1, 5]])), np.take(a, [[0, 11], [-1, 5]]))
    same(P(a).T.take(pt.tensor([1, 2])), np.take(a.T, [1, 2]))
    same(pt.take(P(a), pt.tensor([2, -1]), axis=1), np.take(a, [2, -1], axis=1))
    with pytest.raises(IndexError, match="take: index 12 is out of bounds"):
        pt.take(P(a), pt.tensor([12]))
    idx = np.array([[3], [0], [1]])
    same(pt.take_along_dim(P(a), P(idx), 1), np.take_along_axis(a, idx, 1))
    same(P(a).take_along_dim(P(np.array([[2], [0]])), 0),
         _tad_ref(a, np.array([[2], [0]]), 0))
    same(pt.take_along_dim(P(a), P(np.array([[1, 0, 2, 2]])), 1),
         _tad_ref(a, np.array([[1, 0, 2, 2]]), 1))
    same(pt.take_along_dim(P(a), pt.tensor([11, 0])), a.ravel()[[11, 0]])
    same(pt.take_along_axis(P(a), P(np.array([[-1], [0], [-4]])), axis=1),
         np.take_along_axis(a, np.array([[-1], [0], [-4]]), 1))
    with pytest.raises(IndexError, match="take_along_dim: index -1 is out of bounds"):
        pt.take_along_dim(P(a), P(np.array([[-1]])), 1)
    with pytest.raises(ValueError, match="take_along_dim: input and indices should have the same "
                                         "number of dimensions"):
        pt.take_along_dim(P(a), pt.tensor([0]), 1)
    with pytest.raises(TypeError, match="take_along_dim: indices must be an integer tensor"):
        pt.take_along_dim(P(a), pt.tensor([[0.0]]), 1)


def _tad_ref(a, idx, dim):
    """torch.take_along_dim reference: broadcast a and idx apart from dim, then pick."""
    s = list(a.shape)
    s[dim] = idx.shape[dim]
    b = np.broadcast_shapes(tuple(s), idx.shape)
    ib = np.broadcast_to(idx, b)
    xs = list(b)
    xs[dim] = a.shape[dim]
    return np.take_along_axis(np.broadcast_to(a, tuple(xs)), ib, dim)


# --------------------------------------------------------------------------------- search ---
def test_nonzero_argwhere_and_where():
    a = np.array([[0, 1, 0], [2, 0, 3]])
    same(pt.nonzero(P(a)), np.argwhere(a), pt.int64)
    same(P(a).argwhere(), np.argwhere(a))
    rows, cols = P(a).nonzero(as_tuple=True)
    same(rows, np.nonzero(a)[0])
    same(cols, np.nonzero(a)[1])
    w = pt.where(P(a > 0))
    assert isinstance(w, tuple) and len(w) == 2
    same(P(a)[w], a[a > 0])
    same(pt.nonzero(pt.tensor(5)), np.zeros((1, 0)))
    (z,) = pt.nonzero(pt.tensor(5), as_tuple=True)
    same(z, np.array([0]))
    same(pt.nonzero(pt.zeros(0, 2)), np.zeros((0, 2)))
    same(pt.nonzero(P(a).T), np.argwhere(a.T))
    same(pt.nonzero(P(np.array([0.0, -0.5, np.nan]))), np.array([[1], [2]]))


def test_one_hot():
    same(pt.one_hot(pt.tensor([0, 2, 1])), np.eye(3, dtype=np.int64)[[0, 2, 1]], pt.int64)
    same(pt.one_hot(pt.tensor([[1], [0]]), 4), np.eye(4, dtype=np.int64)[[[1], [0]]])
    same(pt.one_hot(pt.tensor([], dtype=pt.int64), 3), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"one_hot: class values must be smaller than "
                                         r"num_classes \(3\)"):
        pt.one_hot(pt.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="one_hot: class values must be non-negative"):
        pt.one_hot(pt.tensor([0, -1]), 3)
    with pytest.raises(TypeError, match="one_hot: expects an integer tensor"):
        pt.one_hot(pt.tensor([0.0]))
    with pytest.raises(ValueError, match="one_hot: can not infer the number of classes"):
        pt.one_hot(pt.tensor([], dtype=pt.int64))


@pytest.mark.parametrize("dt", [pt.float32, pt.float64, pt.int32, pt.int64, pt.uint8])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_matches_numpy(dt, dim):
    a = _rng().integers(0, 5, size=(4, 6)).astype(np.float64)
    x = pt.tensor(a, dtype=dt)
    res = pt.sort(x, dim)
    same(res.values, np.sort(a, dim), dt)
    assert res.indices.dtype == pt.int64  # any order of ties, but they index the values
    same(x.gather(dim % 2, res.indices), np.sort(a, dim))
    same(pt.sort(x, dim, stable=True).indices, np.argsort(a, dim, kind="stable"))
    v, i = x.sort(dim, descending=True, stable=True)
    same(v, -np.sort(-a, dim), dt)
    # stability: equal values keep their original order, descending too
    ref_desc = np.argsort(-a, dim, kind="stable")
    same(i, ref_desc)
    same(pt.argsort(x, dim, descending=True, stable=True), ref_desc)
    same(pt.argsort(x, axis=dim, stable=True), np.argsort(a, dim, kind="stable"))
    same(x.gather(dim % 2, pt.argsort(x, dim, descending=True)), -np.sort(-a, dim))


def test_sort_nan_bool_0d_and_errors():
    a = np.array([3.0, np.nan, -1.0, 2.0])
    v, i = pt.sort(P(a))
    np.testing.assert_array_equal(N(v), np.sort(a))
    v, i = pt.sort(P(a), descending=True)
    np.testing.assert_array_equal(N(v), np.array([np.nan, 3.0, 2.0, -1.0]))
    same(i, np.array([1, 0, 3, 2]))
    b = np.array([True, False, True, False])
    same(pt.sort(P(b)).values, np.sort(b), pt.bool)
    same(pt.sort(pt.tensor(2.0)).values, np.array(2.0))
    same(pt.sort(P(A).transpose(0, 2), 1).values, np.sort(A.transpose(2, 1, 0), 1))
    with pytest.raises(TypeError, match="sort: complex tensors have no order"):
        pt.sort(pt.tensor([1j]))
    with pytest.raises(TypeError, match="argsort: complex tensors have no order"):
        pt.argsort(pt.tensor([1j]))
    with pytest.raises(IndexError, match="sort: dimension out of range"):
        pt.sort(P(a), 1)


@pytest.mark.parametrize("k", [0, 1, 3, 10])
@pytest.mark.parametrize("largest", [True, False])
def test_topk(k, largest):
    a = _rng().permutation(40).astype(np.float64).reshape(4, 10)
    v, i = pt.topk(P(a), k, largest=largest)
    order = np.argsort(-a if largest else a, 1, kind="stable")[:, :k]
    same(i, order, pt.int64)
    same(v, np.take_along_axis(a, order, 1))
    v0, i0 = P(a).topk(min(k, 4), dim=0, largest=largest)
    order0 = np.argsort(-a if largest else a, 0, kind="stable")[:min(k, 4)]
    same(v0, np.take_along_axis(a, order0, 0))


def test_topk_errors():
    with pytest.raises(ValueError, match=r"topk: k \(4\) is out of range for dimension 1 with "
                                         r"size 3"):
        pt.ones(2, 3).topk(4)
    with pytest.raises(ValueError, match=r"topk: k \(-1\)"):
        pt.ones(2, 3).topk(-1)


def test_unique_and_array_api_variants():
    a = np.array([[3, 1, 2], [1, 3, 3]])
    same(pt.unique(P(a)), np.unique(a), pt.int64)
    u, inv, cnt = P(a).unique(return_inverse=True, return_counts=True)
    ru, rinv, rcnt = np.unique(a.ravel(), return_inverse=True, return_counts=True)
    same(u, ru)
    same(inv, rinv.reshape(a.shape), pt.int64)
    same(cnt, rcnt, pt.int64)
    u2, c2 = pt.unique(P(a), return_counts=True)
    same(c2, rcnt)
    same(pt.unique_values(P(a)), ru)
    r = pt.unique_counts(P(a))
    same(r.values, ru)
    same(r.counts, rcnt)
    r = pt.unique_inverse(P(a))
    same(r.inverse_indices, rinv.reshape(a.shape))
    r = pt.unique_all(P(a))
    _, first = np.unique(a.ravel(), return_index=True)
    same(r.indices, first)
    same(r.counts, rcnt)
    same(pt.unique(pt.tensor([True, False, True])), np.array([False, True]))
    same(pt.unique(pt.zeros(0)), np.zeros(0))
    same(pt.unique(P(a).T), np.unique(a))
    with pytest.raises(NotImplementedError, match="unique: dim= is not supported"):
        pt.unique(P(a), dim=0)
    with pytest.raises(TypeError, match="unique: complex tensors"):
        pt.unique(pt.tensor([1j]))


def test_assign_all_used_by_in_place_ops():
    base = P(A)
    v = base[0].T
    v.add_(1.0)
    same(base[0], A[0] + 1)
    with pytest.raises(RuntimeError, match="clone"):
        pt.ones(3).expand(2, 3).mul_(2.0)
    with pytest.raises(RuntimeError, match="tril_: unsupported operation.*clone"):
        pt.ones(3, 3).expand(2, 3, 3).tril_()
    with pytest.raises(RuntimeError, match="scatter_: unsupported operation.*clone"):
        pt.ones(3).expand(2, 3).scatter_(1, pt.tensor([[0]]), 2.0)


# --------------------------------------------------------------------------- vs PyTorch ----
def test_indexing_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(2).standard_normal((3, 4, 5))
    x, tx = P(a), torch.from_numpy(a.copy())
    idx = [2, 0, 1, 1]
    keys = [
        (0, slice(None), torch.tensor(idx)),
        (torch.tensor([0, 2]), 1, torch.tensor([4, 3])),
        (slice(None), None, torch.tensor([1, 0])),
        (torch.tensor([0, 1]), None, torch.tensor([1, 0])),
        (1, torch.tensor([[0, 1], [2, 3]])),
        (tx[:, 0, 0] > 0,),
        (Ellipsis, torch.tensor([0, -1])),
        (torch.tensor([True, False, True]), slice(1, 3), 0),
        (None, 1, Ellipsis, torch.tensor([3])),
    ]

    def conv(k):
        return tuple(pt.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v for v in k)

    for key in keys:
        ref = tx[key].numpy()
        got = x[conv(key)]
        assert tuple(got.shape) == ref.shape, key
        np.testing.assert_array_equal(N(got), ref)
        # setitem with a value of the region's shape, as torch
        val = np.arange(ref.size, dtype=np.float64).reshape(ref.shape)
        t2, x2 = tx.clone(), P(a)
        t2[key] = torch.from_numpy(val)
        x2[conv(key)] = P(val)
        np.testing.assert_array_equal(N(x2), t2.numpy())

    i = np.array([[0, 2, 1], [1, 1, 0]])
    np.testing.assert_array_equal(N(x[0].gather(0, P(i))), tx[0].gather(0, torch.tensor(i))
                                  .numpy())
    s = torch.zeros(3, 4, dtype=torch.float64).scatter_add(0, torch.tensor(i),
                                                           tx[0, :2, :3].contiguous())
    np.testing.assert_array_equal(N(pt.zeros(3, 4, dtype=pt.float64).scatter_add(
        0, P(i), x[0, :2, :3])), s.numpy())
    np.testing.assert_array_equal(N(x.masked_fill(x > 0, 1.5)), tx.masked_fill(tx > 0, 1.5)
                                  .numpy())
    tv, ti = tx.topk(2, dim=1)
    pv, pi = x.topk(2, dim=1)
    np.testing.assert_array_equal(N(pv), tv.numpy())
    np.testing.assert_array_equal(N(pi), ti.numpy())
    tv, ti = tx.sort(-1, descending=True)
    np.testing.assert_array_equal(N(x.sort(-1, descending=True).values), tv.numpy())
    np.testing.assert_array_equal(N((x > 0).nonzero()), (tx > 0).nonzero().numpy())
    np.testing.assert_array_equal(N(pt.one_hot(pt.tensor([1, 3]), 5)),
                                  torch.nn.functional.one_hot(torch.tensor([1, 3]), 5).numpy())
    np.testing.assert_array_equal(N(x.take(pt.tensor([0, -1, 7]))),
                                  tx.take(torch.tensor([0, -1, 7])).numpy())
    ta = torch.tensor([[3, 1], [1, 2]])
    tu, tinv, tc = torch.unique(ta, return_inverse=True, return_counts=True)
    pu, pinv, pc = pt.unique(pt.tensor([[3, 1], [1, 2]]), return_inverse=True,
                             return_counts=True)
    for g, r in ((pu, tu), (pinv, tinv), (pc, tc)):
        np.testing.assert_array_equal(N(g), r.numpy())
