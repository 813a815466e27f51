"""scatter_reduce (every reduction, include_self both ways) and index_put (accumulate both
ways): values against float64 references written here with Python loops, gradients against
finite differences and PyTorch, the kernel-level default (what the cuda backend and
third-party backends run) against the same references, and the error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

from _reference import close, to_numpy, torch_or_skip
from conftest import cpu_clone

REDUCES = ("sum", "prod", "mean", "amax", "amin")


@pytest.fixture(params=["cpu", "default"])
def dev(request):
    """The cpu backend's kernel, and a cpu clone without it: the op's default runs (a sort
    and a segmented scan for prod / amax / amin)."""
    if request.param == "cpu":
        yield pt.device("cpu")
    else:
        with cpu_clone("nofused_sr", drop=("scatter_reduce",)) as d:
            yield d


def reference(x, dim, index, src, reduce, include_self=True):
    """scatter_reduce in Python: each target collects its values, then reduces them."""
    dim %= x.ndim
    groups = {}
    for pos in np.ndindex(*index.shape):
        tgt = list(pos)
        tgt[dim] = index[pos]
        groups.setdefault(tuple(tgt), []).append(src[pos].item())
    out = x.copy()
    integer = x.dtype.kind in "iu"
    for tgt, vals in groups.items():
        if include_self:
            vals = [x[tgt].item()] + vals
        if reduce == "sum":
            r = sum(vals)
        elif reduce == "prod":
            r = math.prod(vals)
        elif reduce == "mean":
            r = sum(vals) // len(vals) if integer else sum(vals) / len(vals)
        elif any(v != v for v in vals):
            r = math.nan
        else:
            r = max(vals) if reduce == "amax" else min(vals)
        out[tgt] = r
    return out


def _case(rng, dtype, dim, reduce):
    """x (3, 4, 5), src (3, 4, 5) larger than the index (2, 3, 4) along every dim; values
    where every dtype's sums and products are exact."""
    lo, hi = (1, 3) if reduce == "prod" else (-6, 7)
    x = rng.integers(lo, hi, size=(3, 4, 5)).astype(dtype)
    src = rng.integers(lo, hi, size=(3, 4, 5)).astype(dtype)
    shape = [2, 3, 4]
    index = rng.integers(0, x.shape[dim], size=shape)
    return x, index, src


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32", "int8"])
def test_values_match_the_reference(dev, reduce, include_self, dim, dtype):
    rng = np.random.default_rng(hash((reduce, include_self, dim, dtype)) % 2**32)
    x, index, src = _case(rng, dtype, dim, reduce)
    out = pt.scatter_reduce(pt.tensor(x, device=dev), dim, pt.tensor(index, device=dev),
                            pt.tensor(src, device=dev), reduce, include_self=include_self)
    assert out.dtype == getattr(pt, dtype) and out.device == dev
    ref = reference(x.astype(np.float64) if dtype.startswith("float") else x.astype(np.int64),
                    dim, index, src.astype(np.float64) if dtype.startswith("float")
                    else src.astype(np.int64), reduce, include_self)
    np.testing.assert_allclose(to_numpy(out).astype(np.float64), ref.astype(np.float64),
                               rtol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_accumulates_in_float32(dev, reduce, dtype):
    """float16 / bfloat16 are reduced in float32 and rounded once: the result is the float64
    reference rounded to the dtype (exact for amax / amin), not a chain of roundings."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.5, size=(4, 6))
    src = rng.uniform(0.5, 1.5, size=(40, 6))
    index = rng.integers(0, 4, size=(40, 6))
    xt = pt.tensor(x, device=dev).to(getattr(pt, dtype))
    st = pt.tensor(src, device=dev).to(getattr(pt, dtype))
    out = pt.scatter_reduce(xt, 0, pt.tensor(index, device=dev), st, reduce)
    ref = reference(to_numpy(xt.double()), 0, index, to_numpy(st.double()), reduce)
    want = to_numpy(pt.tensor(ref).to(getattr(pt, dtype)).double())
    got = to_numpy(out.double())
    if reduce in ("amax", "amin"):
        np.testing.assert_array_equal(got, want)
    else:  # float32 accumulation of 10 values: within one ulp of the dtype
        ulp = 2.0 ** (-10 if dtype == "float16" else -7)
        np.testing.assert_allclose(got, want, rtol=ulp)


def test_integer_products_wrap_and_means_round_down(dev):
    x = pt.tensor([100, -7, 5], dtype=pt.int8, device=dev)
    idx = pt.tensor([0, 0, 1, 1, 2], device=dev)
    src = pt.tensor([3, 1, 2, 2, -2], dtype=pt.int8, device=dev)
    # 100 * 3 * 1 = 300 wraps to 44 in int8; -7 * 2 * 2 = -28; 5 * -2 = -10
    assert pt.scatter_reduce(x, 0, idx, src, "prod").tolist() == [44, -28, -10]
    # (100 + 3 + 1) // 3 = 34, (-7 + 2 + 2) // 3 = -1, (5 - 2) // 2 = 1 (floor, as PyTorch)
    assert pt.scatter_reduce(x, 0, idx, src, "mean").tolist() == [34, -1, 1]
    assert pt.scatter_reduce(x, 0, idx, src, "mean", include_self=False).tolist() == [2, 2, -2]


def test_nan_propagates_through_amax_and_amin(dev):
    x = pt.tensor([1.0, math.nan, 3.0, 4.0], device=dev)
    idx = pt.tensor([0, 0, 1, 2, 2], device=dev)
    src = pt.tensor([math.nan, 5.0, 2.0, 9.0, -1.0], device=dev)
    for reduce, want in (("amax", [math.nan, math.nan, 9.0, 4.0]),
                         ("amin", [math.nan, math.nan, -1.0, 4.0])):
        got = pt.scatter_reduce(x, 0, idx, src, reduce).tolist()
        np.testing.assert_array_equal(got, want)
    got = pt.scatter_reduce(x, 0, idx, src, "amax", include_self=False).tolist()
    np.testing.assert_array_equal(got, [math.nan, 2.0, 9.0, 4.0])


def test_edge_shapes(dev):
    x = pt.tensor(2.0, device=dev)
    out = pt.scatter_reduce(x, 0, pt.tensor(0, device=dev), pt.tensor(5.0, device=dev), "prod")
    assert out.shape == () and out.item() == 10.0
    y = pt.arange(6.0, device=dev).reshape(2, 3)
    empty = pt.scatter_reduce(y, 1, pt.zeros((2, 0), dtype=pt.int64, device=dev),
                              pt.zeros((2, 0), device=dev), "amax", include_self=False)
    assert empty.tolist() == y.tolist()
    # one target for every value: the default's scan runs log2(n) steps
    n = 1000
    src = np.random.default_rng(2).uniform(0.99, 1.01, n)
    out = pt.scatter_reduce(pt.ones(1, dtype=pt.float64, device=dev), 0,
                            pt.zeros(n, dtype=pt.int64, device=dev),
                            pt.tensor(src, device=dev), "prod")
    close(out.item(), np.prod(src), rtol=1e-12)


def test_inplace_methods_and_the_multiply_spelling(dev):
    x = pt.ones(2, 3, device=dev)
    idx = pt.tensor([[0, 0, 2]], device=dev)
    src = pt.tensor([[2.0, 3.0, 4.0]], device=dev)
    view = x[1:]
    assert view.scatter_reduce_(1, idx, src, "sum", include_self=False) is view
    assert x.tolist() == [[1, 1, 1], [5, 1, 4]]
    assert x.scatter_reduce(1, idx, src, "amax").tolist() == [[3, 1, 4], [5, 1, 4]]
    # PyTorch's older spelling: scatter(..., reduce='multiply'), with a tensor or a number
    assert x.scatter(1, idx, src, reduce="multiply").tolist() == [[6, 1, 4], [5, 1, 4]]
    assert x.scatter(1, idx, value=2.0, reduce="multiply").tolist() == [[4, 1, 2], [5, 1, 4]]
    x.scatter_(1, idx, src, reduce="multiply")
    assert x.tolist() == [[6, 1, 4], [5, 1, 4]]


# ------------------------------------------------------------------------------ gradients ---
def _grad_case(seed, reduce, zeros=False):
    rng = np.random.default_rng(seed)
    lo, hi = (0.5, 1.5) if reduce == "prod" else (-2.0, 2.0)
    x = rng.uniform(lo, hi, (3, 4))
    src = rng.uniform(lo, hi, (6, 5))  # larger than the index: its last column gets zeros
    index = rng.integers(0, 3, (5, 4))
    if zeros:  # prod: one zero at some targets, two at another, one in x
        src[0, 0] = src[1, 1] = 0.0
        index[0, 0] = index[1, 0] = index[2, 0] = 0
        index[1, 1] = 1
        x[2, 2] = 0.0
    return x, index, src


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_gradcheck(dev, reduce, include_self):
    x, index, src = _grad_case(3, reduce)
    xt = pt.tensor(x, device=dev, requires_grad=True)
    st = pt.tensor(src, device=dev, requires_grad=True)
    it = pt.tensor(index, device=dev)

    def fn(a, b):
        return pt.scatter_reduce(a, 0, it, b, reduce, include_self=include_self)
    assert gradcheck(fn, (xt, st))
    assert gradgradcheck(fn, (xt, st))


def test_prod_gradient_is_exact_with_zeros():
    x, index, src = _grad_case(4, "prod", zeros=True)
    it = pt.tensor(index)
    for include_self in (True, False):
        xt = pt.tensor(x, requires_grad=True)
        st = pt.tensor(src, requires_grad=True)
        assert gradcheck(lambda a, b: pt.scatter_reduce(a, 0, it, b, "prod",
                                                        include_self=include_self), (xt, st))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_values_and_gradients_match_torch(reduce, include_self):
    """Against torch.scatter_reduce, also where PyTorch's conventions matter: amax / amin
    ties (the gradient is shared evenly) and prod over zeros."""
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x, index, src = _grad_case(6, reduce, zeros=reduce == "prod")
    src = src[:5, :4]  # torch's backward needs src of the index's shape
    if reduce in ("amax", "amin"):  # ties: equal values at a target
        # (x off the integers without include_self: see the next test for why)
        x = np.round(x) + (0 if include_self else 0.5)
        src = np.round(src)
    g = rng.standard_normal(x.shape)
    xt = pt.tensor(x, requires_grad=True)
    st = pt.tensor(src, requires_grad=True)
    out = pt.scatter_reduce(xt, 0, pt.tensor(index), st, reduce, include_self=include_self)
    out.backward(pt.tensor(g))
    tx = torch.tensor(x, requires_grad=True)
    ts = torch.tensor(src, requires_grad=True)
    tout = torch.scatter_reduce(tx, 0, torch.tensor(index), ts, reduce,
                                include_self=include_self)
    tout.backward(torch.tensor(g))
    close(to_numpy(out), tout.detach().numpy(), rtol=1e-13)
    close(to_numpy(xt.grad), tx.grad.numpy(), rtol=1e-12)
    close(to_numpy(st.grad), ts.grad.numpy(), rtol=1e-12)


def test_excluded_self_takes_no_share_of_a_tied_maximum():
    """amax without include_self: a tie among the values shares the whole gradient between
    them (0.5 each here), so the gradients sum to the incoming one.  PyTorch 2.x also counts
    the excluded x[p] in the tie when it equals the result, and gives each value 1/3."""
    x = pt.tensor([5.0, 1.0], requires_grad=True)
    src = pt.tensor([5.0, 5.0, 2.0], requires_grad=True)
    out = pt.scatter_reduce(x, 0, pt.tensor([0, 0, 1]), src, "amax", include_self=False)
    out.backward(pt.ones(2))
    assert out.tolist() == [5.0, 2.0]
    assert x.grad.tolist() == [0.0, 0.0] and src.grad.tolist() == [0.5, 0.5, 1.0]


# ---------------------------------------------------------------------------------- errors ---
def test_errors_name_the_call_and_the_fix():
    x = pt.zeros(3, 4)
    idx = pt.tensor([[0, 1, 2, 1]])
    src = pt.ones(1, 4)
    with pytest.raises(ValueError, match="scatter_reduce: reduce must be one of 'sum', 'prod', "
                                         "'mean', 'amax', 'amin', got 'max'"):
        x.scatter_reduce(0, idx, src, "max")
    with pytest.raises(TypeError, match=r"scatter_reduce: src must be a tensor.*polyten\.full"):
        pt.scatter_reduce(x, 0, idx, 1.0, "sum")
    with pytest.raises(TypeError, match=r"scatter_reduce: src dtype float64 must match the "
                                        r"input's dtype float32.*src\.to"):
        pt.scatter_reduce(x, 0, idx, src.double(), "sum")
    with pytest.raises(TypeError, match=r"scatter_reduce: not supported for bool.*cast first"):
        pt.scatter_reduce(x.bool(), 0, idx, src.bool(), "amax")
    with pytest.raises(IndexError, match="scatter_reduce: index 3 is out of bounds for "
                                         "dimension 0"):
        pt.scatter_reduce(x, 0, pt.tensor([[0, 3, 0, 0]]), src, "mean")
    with pytest.raises(ValueError, match=r"scatter_reduce: index of shape \(1, 5\) must be no "
                                         r"larger than the input \(3, 4\)"):
        pt.scatter_reduce(x, 0, pt.tensor([[0, 0, 0, 0, 0]]), pt.ones(1, 5), "sum")
    with pytest.raises(ValueError, match="scatter: reduce must be None, 'add' or 'multiply', "
                                         "got 'mean'"):
        x.scatter(0, idx, src, reduce="mean")
    leaf = pt.zeros(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="scatter_reduce_"):
        leaf.scatter_reduce_(0, idx, src, "sum")


# ------------------------------------------------------------------------------- index_put ---
def test_index_put_writes_or_accumulates(dev):
    a = np.arange(12.0).reshape(3, 4)
    x = pt.tensor(a, device=dev)
    rows = pt.tensor([0, 2, 0], device=dev)
    cols = pt.tensor([1, 3, 1], device=dev)
    v = pt.tensor([10.0, 20.0, 30.0], dtype=pt.float64, device=dev)
    acc = pt.index_put(x, (rows, cols), v, accumulate=True)
    ref = a.copy()
    np.add.at(ref, ([0, 2, 0], [1, 3, 1]), [10.0, 20.0, 30.0])  # the repeat accumulates
    np.testing.assert_array_equal(to_numpy(acc), ref)
    assert x.tolist() == a.tolist()  # out of place
    put = pt.index_put(x, (pt.tensor([1, 2], device=dev),),
                       pt.tensor([-1.0], dtype=pt.float64, device=dev))
    ref = a.copy()
    ref[[1, 2]] = -1.0
    np.testing.assert_array_equal(to_numpy(put), ref)
    # a bool mask, a None (whole dim), a broadcast value and a number
    mask = pt.tensor([True, False, True], device=dev)
    got = x.index_put((mask,), pt.tensor([1.0, 2.0, 3.0, 4.0], dtype=pt.float64, device=dev),
                      accumulate=True)
    ref = a.copy()
    ref[[True, False, True]] += [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(to_numpy(got), ref)
    got = x.index_put((None, pt.tensor([0, 0], device=dev)), 1.5, accumulate=True)
    ref = a.copy()
    ref[:, 0] += 3.0
    np.testing.assert_array_equal(to_numpy(got), ref)
    # in place, through a view
    y = pt.zeros(2, 3, dtype=pt.int64, device=dev)
    row = y[1]
    assert row.index_put_((pt.tensor([2, 2, 0], device=dev),),
                          pt.tensor([1, 1, 5], device=dev), accumulate=True) is row
    assert y.tolist() == [[0, 0, 0], [5, 0, 2]]
    assert row.index_put_([pt.tensor([1], device=dev)], pt.tensor(7, device=dev)) is row
    assert y.tolist() == [[0, 0, 0], [5, 7, 2]]


def test_index_put_gradients_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    a, v = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    rows = np.array([0, 3, 0, 1, 0])
    g = rng.standard_normal((4, 3))
    for accumulate in (True, False):
        if not accumulate:
            rows = np.array([0, 3, 2, 1, 2])[:2]
            v = v[:2]
        x, vt = pt.tensor(a, requires_grad=True), pt.tensor(v, requires_grad=True)
        out = pt.index_put(x * 1, (pt.tensor(rows),), vt, accumulate=accumulate)
        out.backward(pt.tensor(g))
        tx, tv = torch.tensor(a, requires_grad=True), torch.tensor(v, requires_grad=True)
        tout = torch.index_put(tx * 1, (torch.tensor(rows),), tv, accumulate=accumulate)
        tout.backward(torch.tensor(g))
        close(to_numpy(out), tout.detach().numpy(), rtol=1e-14)
        close(to_numpy(x.grad), tx.grad.numpy())
        close(to_numpy(vt.grad), tv.grad.numpy())
        assert gradcheck(lambda p, q: pt.index_put(p, (pt.tensor(rows),), q,
                                                   accumulate=accumulate), (x, vt))


def test_index_put_inplace_on_a_graph_tensor():
    w = pt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = pt.tensor([4.0, 5.0], requires_grad=True)
    y = w * 2
    y.index_put_((pt.tensor([0, 0]),), v, accumulate=True)
    (y * pt.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert y.tolist() == [11.0, 4.0, 6.0]
    assert w.grad.tolist() == [2.0, 20.0, 200.0] and v.grad.tolist() == [1.0, 1.0]


def test_index_put_errors():
    x = pt.zeros(3, 4)
    idx = pt.tensor([0, 1])
    with pytest.raises(TypeError, match=r"index_put: indices must be a tuple of tensors.*"
                                        r"pass \(index,\)"):
        pt.index_put(x, idx, pt.ones(2, 4))
    with pytest.raises(TypeError, match=r"index_put_: indices\[1\] must be a tensor or None, "
                                        r"got int"):
        x.index_put_((idx, 1), pt.ones(2))
    with pytest.raises(TypeError, match=r"index_put: values dtype float64 must match the "
                                        r"input's dtype float32.*values\.to"):
        pt.index_put(x, (idx,), pt.ones(2, 4, dtype=pt.float64), accumulate=True)
    with pytest.raises(ValueError, match=r"index_put: values of shape \(3,\) cannot be "
                                         r"broadcast to the indexed shape \(2, 4\)"):
        pt.index_put(x, (idx,), pt.ones(3), accumulate=True)
    with pytest.raises(IndexError, match="out of bounds"):
        pt.index_put(x, (pt.tensor([5]),), pt.ones(4), accumulate=True)
    leaf = pt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="index_put_"):
        leaf.index_put_((pt.tensor([0]),), pt.ones(1), accumulate=True)
