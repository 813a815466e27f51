"""Reductions against NumPy float64 references (and PyTorch where installed).

Covers dtypes (float32 stays float32, bool/int accumulate in int64), dim/axis/keepdim(s)
variants, 0-d, empty, non-contiguous inputs, every error path, and the composite ops' defaults
(called directly and through a backend without the fused kernels).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import cpu_clone

import polyten as pt
from polyten.dispatch import dispatcher

RNG = np.random.default_rng(1234)


def rand(shape, dtype="float64"):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind in "iu":
        return RNG.integers(0 if dtype.kind == "u" else -5, 6, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def ref64(a):
    """The NumPy reference input in float64 / complex128 / int64."""
    if a.dtype.kind == "c":
        return a.astype(np.complex128)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    return a.astype(np.int64)


def tol(dtype):
    return {"float16": 2e-2, "float32": 1e-5, "complex64": 1e-5}.get(str(dtype), 1e-10)


def check(t, expected, dtype=None, rtol=None):
    """``t`` is a polyten tensor holding ``expected`` (a float64 reference), of ``dtype``."""
    assert isinstance(t, pt.Tensor)
    got = t.numpy()
    assert isinstance(got, np.ndarray)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    r = tol(got.dtype) if rtol is None else rtol
    if got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got.astype(expected.dtype if expected.dtype.kind in "fc"
                                              else np.float64), expected, rtol=r,
                                   atol=r, equal_nan=True)


SHAPE = (2, 3, 4)
DIMS = [None, 0, 1, -1, (0, 2), (2, 0), [1, 2], (0, 1, 2)]
ALL_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64",
              "complex64", "complex128"]


def np_axis(dim):
    return tuple(dim) if isinstance(dim, list) else dim


# ------------------------------------------------------------------------------ sum/prod ---
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_matches_numpy(dtype, dim, keepdim):
    a = rand(SHAPE, dtype)
    out = pt.sum(pt.asarray(a), dim, keepdim)
    exp = np.sum(ref64(a), axis=np_axis(dim), keepdims=keepdim)
    want = pt.int64 if dtype in ("bool", "uint8", "int8", "int32", "int64") else \
        getattr(pt, dtype)
    check(out, exp, want)


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32", "float64", "complex64"])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_prod_matches_numpy(dtype, dim):
    a = rand(SHAPE, dtype)
    if a.dtype.kind == "f":
        a = (a / 2 + 1).astype(dtype)
    out = pt.prod(pt.asarray(a), dim=dim, keepdim=True)
    check(out, np.prod(ref64(a), axis=dim, keepdims=True),
          pt.int64 if dtype in ("bool", "int32") else getattr(pt, dtype))


def test_sum_method_axis_keepdims_and_dtype():
    a = rand((3, 4), "float32")
    x = pt.asarray(a)
    check(x.sum(axis=1, keepdims=True), ref64(a).sum(1, keepdims=True), pt.float32)
    check(x.sum(1, dtype=pt.float64), ref64(a).sum(1), pt.float64)
    i = pt.asarray(np.array([1, 2, 250], dtype=np.uint8))
    check(pt.sum(i, dtype=pt.uint8), np.array(253), pt.uint8)
    check(pt.sum(i), np.array(253), pt.int64)
    # float input summed as an integer dtype casts first (as PyTorch)
    check(pt.sum(pt.tensor([1.5, 2.5]), dtype=pt.int64), np.array(3), pt.int64)
    check(pt.prod(pt.tensor([1, 2, 3], dtype=pt.int8), dtype=pt.float32), np.array(6.0),
          pt.float32)


def test_dim_empty_tuple_torch_vs_axis_empty_tuple_array_api():
    a = rand((2, 3), "float64")
    x = pt.asarray(a)
    check(pt.sum(x, dim=()), a.sum())  # PyTorch: all dims
    check(pt.sum(x, axis=()), a)  # Array API: no dims
    check(pt.amax(x, axis=()), a)


def test_empty_sum_prod_and_empty_dims():
    check(pt.sum(pt.empty(0)), np.array(0.0), pt.float32)
    check(pt.prod(pt.empty(0)), np.array(1.0), pt.float32)
    check(pt.sum(pt.zeros(0, 3), 0), np.zeros(3))
    check(pt.prod(pt.zeros(0, 3), 0), np.ones(3))
    check(pt.sum(pt.zeros(0, 3), 1), np.zeros(0))
    check(pt.sum(pt.empty(0, dtype=pt.int32)), np.array(0), pt.int64)
    check(pt.all(pt.empty(0)), np.array(True), pt.bool)
    check(pt.any(pt.empty(0)), np.array(False), pt.bool)


def test_zero_dim_inputs():
    x = pt.tensor(3.5)
    check(pt.sum(x), np.array(3.5))
    check(pt.sum(x, 0), np.array(3.5))
    check(pt.sum(x, -1, keepdim=True), np.array(3.5))
    check(pt.mean(x, 0), np.array(3.5))
    check(pt.amax(x, 0), np.array(3.5))
    v, i = pt.max(x, 0)
    check(v, np.array(3.5))
    check(i, np.array(0), pt.int64)
    check(pt.argmax(x), np.array(0), pt.int64)
    check(pt.argmin(x, 0), np.array(0), pt.int64)
    check(pt.cumsum(x, 0), np.array(3.5))
    check(pt.cumsum(pt.tensor(3), 0), np.array(3), pt.int64)
    check(pt.var(x, correction=0), np.array(0.0))
    with pytest.raises(IndexError, match="sum.*out of range"):
        pt.sum(x, 1)


def test_results_are_arrays_not_numpy_scalars():
    x = pt.asarray(rand((3, 4), "float32"))
    for t in (pt.sum(x), pt.mean(x), pt.amax(x), pt.argmax(x), pt.var(x), pt.std(x),
              pt.logsumexp(x), pt.norm(x), pt.all(x), pt.any(x), pt.prod(x),
              pt.count_nonzero(x), pt.median(x)):
        assert t._data.__class__ is np.ndarray, type(t._data)
        assert t.shape == ()


def test_non_contiguous_inputs():
    a = rand((4, 6), "float32")
    xt = pt.from_numpy(a.T)  # a transposed view
    assert not xt.is_contiguous()
    check(pt.sum(xt, 0), ref64(a.T).sum(0), pt.float32)
    check(pt.mean(xt, 1, keepdim=True), ref64(a.T).mean(1, keepdims=True), pt.float32)
    check(pt.amax(xt, 1), ref64(a.T).max(1))
    check(pt.max(xt, 0).indices, np.argmax(a.T, 0))
    check(pt.var(xt, 0), np.var(ref64(a.T), 0, ddof=1))
    check(pt.cumsum(xt, 1), np.cumsum(ref64(a.T), 1))
    xs = pt.asarray(a)[:, ::2]
    assert not xs.is_contiguous()
    check(pt.sum(xs, 1), ref64(a)[:, ::2].sum(1))
    check(pt.logsumexp(xs, 0), np.log(np.exp(ref64(a)[:, ::2]).sum(0)))
    check(pt.argmin(xs), np.argmin(a[:, ::2]))


def test_broadcast_view_inputs():
    base = pt.asarray(rand((1, 4), "float64"))
    x = base.expand(3, 4)
    check(pt.sum(x, 0), np.broadcast_to(base.numpy(), (3, 4)).sum(0))
    check(pt.std(x, 0), np.zeros(4))


@pytest.mark.parametrize("fn", ["sum", "prod", "mean", "amax", "all", "any", "var",
                                "logsumexp", "count_nonzero"])
def test_bad_dims_raise(fn):
    x = pt.ones(2, 3)
    f = getattr(pt, fn)
    with pytest.raises(IndexError, match=rf"{fn}.*range.*\[-2, 1\].*got 2"):
        f(x, 2)
    with pytest.raises(ValueError, match=rf"{fn}.*more than once"):
        f(x, (0, -2))
    with pytest.raises(TypeError, match=rf"{fn}.*dim"):
        f(x, "a")
    with pytest.raises(TypeError, match=rf"{fn}.*both dim.*and axis"):
        f(x, 0, axis=1)


def test_non_tensor_input_raises():
    with pytest.raises(TypeError, match="sum.*expected a tensor"):
        pt.sum([1, 2])
    with pytest.raises(TypeError, match="amax.*expected a tensor"):
        pt.amax(3.0)


# --------------------------------------------------------------------------------- mean ---
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64"])
@pytest.mark.parametrize("dim", [None, 0, (1, 2)])
def test_mean_matches_numpy_and_keeps_dtype(dtype, dim):
    a = rand(SHAPE, dtype)
    out = pt.mean(pt.asarray(a), dim)
    check(out, np.mean(ref64(a), axis=dim), getattr(pt, dtype))


def test_mean_of_integers_is_an_error_like_torch():
    with pytest.raises(TypeError, match=r"mean\(\).*floating point or complex.*int64.*"
                                        r"dtype=polyten.float32"):
        pt.mean(pt.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="mean.*bool"):
        pt.tensor([True]).mean()
    check(pt.mean(pt.tensor([1, 2, 4]), dtype=pt.float64), np.array(7 / 3), pt.float64)
    with pytest.raises(TypeError, match="mean.*dtype must be a floating"):
        pt.mean(pt.tensor([1.0]), dtype=pt.int32)


def test_mean_of_empty_is_nan():
    check(pt.mean(pt.empty(0)), np.array(np.nan), pt.float32)
    check(pt.mean(pt.zeros(0, 2), 0), np.array([np.nan, np.nan]))
    check(pt.mean(pt.zeros(0, 2), 1), np.zeros(0))


def test_nansum_nanmean():
    a = rand((3, 4), "float32")
    a[0, 1] = a[2, 3] = np.nan
    a[1, :] = np.nan
    x = pt.asarray(a)
    check(pt.nansum(x), np.nansum(ref64(a)), pt.float32)
    check(pt.nansum(x, 1), np.nansum(ref64(a), 1))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmean(ref64(a), 1)
    check(pt.nanmean(x, 1), ref, pt.float32)
    check(x.nanmean(), np.nanmean(ref64(a)))
    check(pt.nansum(pt.tensor([1, 2], dtype=pt.int32)), np.array(3), pt.int64)


# ------------------------------------------------------------------------------- extrema ---
@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "int64", "float16", "float32",
                                   "float64"])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)])
def test_amax_amin(dtype, dim):
    a = rand(SHAPE, dtype)
    x = pt.asarray(a)
    check(pt.amax(x, dim, keepdim=True), np.amax(a, axis=dim, keepdims=True),
          getattr(pt, dtype))
    check(pt.amin(x, dim=dim), np.amin(a, axis=dim), getattr(pt, dtype))


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32", "float64"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_give_values_and_indices(dtype, dim, keepdim):
    a = rand(SHAPE, dtype)
    x = pt.asarray(a)
    r = pt.max(x, dim, keepdim)
    assert isinstance(r, tuple) and r._fields == ("values", "indices")
    check(r.values, np.max(a, axis=dim, keepdims=keepdim), getattr(pt, dtype))
    check(r.indices, np.argmax(a, axis=dim, keepdims=keepdim), pt.int64)
    values, indices = x.min(dim=dim, keepdim=keepdim)
    check(values, np.min(a, axis=dim, keepdims=keepdim))
    check(indices, np.argmin(a, axis=dim, keepdims=keepdim))


def test_max_forms():
    a = rand((3, 4), "float32")
    b = rand((3, 4), "float32")
    x, y = pt.asarray(a), pt.asarray(b)
    check(pt.max(x), a.max(), pt.float32)
    check(x.max(), a.max())
    check(pt.max(x, y), np.maximum(a, b))  # the elementwise form
    check(x.min(y), np.minimum(a, b))
    check(pt.max(x, axis=(0, 1)), a.max())  # Array API: values only, tuple axis
    check(pt.min(x, axis=1, keepdims=True), a.min(1, keepdims=True))
    with pytest.raises(TypeError, match=r"max\(\).*dim must be an int.*amax"):
        pt.max(x, (0, 1))


def test_max_nan_propagates_with_its_index():
    a = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    x = pt.asarray(a)
    check(pt.max(x), np.array(np.nan))
    check(pt.amin(x, 1), np.array([np.nan, 4.0]))
    v, i = pt.max(x, 1)
    check(v, np.array([np.nan, 6.0]))
    check(i, np.array([1, 2]))
    check(pt.argmin(x, 1), np.array([1, 0]))


def test_argmax_argmin():
    a = rand(SHAPE, "float64")
    x = pt.asarray(a)
    check(pt.argmax(x), np.argmax(a), pt.int64)
    check(pt.argmax(x, keepdim=True), np.argmax(a, keepdims=True))
    check(pt.argmin(x, 1), np.argmin(a, 1))
    check(pt.argmax(x, axis=-1, keepdims=True), np.argmax(a, -1, keepdims=True))
    # ties: the first occurrence
    check(pt.argmax(pt.tensor([1, 3, 3, 0])), np.array(1))
    check(pt.argmin(pt.tensor([[2, 0, 0]]), 1), np.array([1]))
    # bool: the first True (the op table's "real" dtypes, as NumPy; torch refuses bool)
    check(pt.argmax(pt.tensor([False, True, True])), np.array(1))
    with pytest.raises(TypeError, match="argmax.*single int"):
        pt.argmax(x, (0, 1))
    with pytest.raises(TypeError, match="argmax.*complex"):
        pt.argmax(pt.tensor([1j]))


def test_extrema_of_empty_raise_naming_op_and_shape():
    e = pt.zeros(0, 3)
    with pytest.raises(RuntimeError, match=r"max\(\).*no elements.*\(0, 3\).*dim="):
        pt.max(e)
    with pytest.raises(RuntimeError, match=r"amin\(\).*\(0, 3\)"):
        pt.amin(e)
    with pytest.raises(IndexError, match=r"max\(\).*dim 0.*non-zero size.*\(0, 3\)"):
        pt.max(e, 0)
    with pytest.raises(IndexError, match=r"amax\(\).*dim 0.*\(0, 3\)"):
        pt.amax(e, 0)
    with pytest.raises(RuntimeError, match=r"argmax\(\).*\(0, 3\)"):
        pt.argmax(e)
    with pytest.raises(IndexError, match=r"argmin\(\).*dim 0"):
        pt.argmin(e, 0)
    with pytest.raises(IndexError, match=r"median\(\).*dim 0"):
        pt.median(e, 0)
    # reducing a non-empty dim of an empty tensor is fine
    v, i = pt.max(e, 1)
    assert v.shape == (0,) and i.shape == (0,) and i.dtype == pt.int64
    assert pt.amax(e, 1).shape == (0,)


def test_extrema_reject_complex():
    z = pt.tensor([1 + 1j, 2j])
    for f in (pt.amax, pt.amin, pt.max, pt.min):
        with pytest.raises(TypeError, match="complex"):
            f(z)
    with pytest.raises(TypeError, match="max.*complex"):
        pt.max(z, 0)


def test_median():
    a = rand((5, 4), "float32")
    x = pt.asarray(a)
    check(pt.median(x), np.sort(a.ravel())[(a.size - 1) // 2], pt.float32)
    v, i = pt.median(x, 0)
    srt = np.sort(a, 0)
    check(v, srt[2])
    np.testing.assert_array_equal(np.take_along_axis(a, i.numpy()[None], 0)[0], v.numpy())
    v, i = x.median(1, keepdim=True)
    check(v, np.sort(a, 1)[:, 1:2])  # even count: the lower of the middle two
    n = pt.tensor([[1.0, np.nan, 0.0], [3.0, 2.0, 1.0]])
    v, i = pt.median(n, 1)
    check(v, np.array([np.nan, 2.0]))
    check(i, np.array([1, 1]))
    check(pt.median(pt.tensor([4, 1, 3, 2])), np.array(2), pt.int64)


# ------------------------------------------------------------------------------ var/std ---
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64"])
@pytest.mark.parametrize("dim", [None, 0, (1, 2), -1])
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_std_match_numpy(dtype, dim, correction):
    a = rand(SHAPE, dtype)
    x = pt.asarray(a)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy warns on ddof >= N; the reference is inf
        ev = np.var(ref64(a), axis=dim, ddof=correction)
        es = np.sqrt(np.var(ref64(a), axis=dim, ddof=correction, keepdims=True))
    real = getattr(pt, dtype).to_real()
    check(pt.var(x, dim, correction=correction), ev, real)
    check(pt.std(x, dim, correction=correction, keepdim=True), es, real)


def test_var_default_correction_and_unbiased_spellings():
    a = rand((4, 5), "float64")
    x = pt.asarray(a)
    check(pt.var(x), np.var(a, ddof=1))
    check(pt.var(x, unbiased=False), np.var(a))
    check(pt.var(x, False), np.var(a))  # legacy var(input, unbiased)
    check(pt.var(x, 1, True), np.var(a, 1, ddof=1))
    check(x.std(axis=0, correction=0, keepdims=True), np.std(a, 0, keepdims=True))
    check(pt.std(x, correction=1.5), np.std(a, ddof=1.5))
    v, m = pt.var_mean(x, 0)
    check(v, np.var(a, 0, ddof=1))
    check(m, a.mean(0))
    s, m = pt.std_mean(x, correction=0)
    check(s, a.std())
    check(m, a.mean())
    with pytest.raises(TypeError, match="var.*unbiased= or correction="):
        pt.var(x, unbiased=True, correction=0)
    check(pt.std(x, correction=-1), a.std(ddof=-1))  # a negative correction, as torch
    with pytest.raises(ValueError, match="std.*correction must be a number"):
        pt.std(x, correction="1")


def test_var_with_too_few_elements_is_inf_or_nan_like_torch():
    check(pt.var(pt.tensor([1.0])), np.array(np.nan))
    check(pt.var(pt.tensor([1.0, 2.0]), correction=2), np.array(np.inf))
    check(pt.std(pt.empty(0)), np.array(np.nan))


def test_var_std_reject_integers():
    with pytest.raises(TypeError, match=r"var\(\).*floating point and complex.*int64"):
        pt.var(pt.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"std\(\).*bool"):
        pt.std(pt.tensor([True, False]))


# --------------------------------------------------------------------------- logsumexp ---
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dim", [None, 0, (0, 2), -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp(dtype, dim, keepdim):
    a = (rand(SHAPE, dtype) * 3).astype(dtype)
    out = pt.logsumexp(pt.asarray(a), dim, keepdim)
    exp = np.log(np.sum(np.exp(ref64(a)), axis=dim, keepdims=keepdim))
    check(out, exp, getattr(pt, dtype))


def test_logsumexp_is_stable_and_handles_infinities():
    x = pt.tensor([1000.0, 1000.0])
    check(pt.logsumexp(x, 0), np.array(1000.0 + math.log(2)))
    check(pt.logsumexp(pt.tensor([-np.inf, -np.inf]), 0), np.array(-np.inf))
    check(pt.logsumexp(pt.tensor([np.inf, 1.0]), 0), np.array(np.inf))
    check(pt.logsumexp(pt.empty(0), 0), np.array(-np.inf))
    check(pt.logsumexp(pt.tensor([0, 1, 2]), 0), np.log(np.exp([0.0, 1, 2]).sum()),
          pt.float32)
    with pytest.raises(TypeError, match="logsumexp.*complex"):
        pt.logsumexp(pt.tensor([1j]), 0)


# ------------------------------------------------------------------------------- norms ---
@pytest.mark.parametrize("ord", [2, 1, 0, 3, 0.5, -1, math.inf, -math.inf])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_vector_norm(ord, dim, dtype):
    a = rand(SHAPE, dtype)
    out = pt.linalg.vector_norm(pt.asarray(a), ord, dim)
    absa = np.abs(ref64(a))
    if ord == math.inf:
        exp = absa.max(axis=dim)
    elif ord == -math.inf:
        exp = absa.min(axis=dim)
    elif ord == 0:
        exp = (absa != 0).sum(axis=dim).astype(float)
    else:
        exp = (absa ** ord).sum(axis=dim) ** (1 / ord)
    check(out, exp, getattr(pt, dtype).to_real(), rtol=1e-4)


def test_torch_norm_forms():
    a = rand((3, 4), "float32")
    x = pt.asarray(a)
    check(pt.norm(x), np.linalg.norm(ref64(a)), pt.float32)
    check(x.norm(), np.linalg.norm(ref64(a)))
    check(pt.norm(x, 1, dim=1), np.abs(ref64(a)).sum(1))
    check(pt.norm(x, p="fro", dim=(0, 1), keepdim=True),
          np.linalg.norm(ref64(a), keepdims=True))
    check(pt.norm(x, "nuc"), np.linalg.norm(ref64(a), "nuc"))
    check(pt.norm(x, math.inf), np.abs(a).max())
    check(pt.norm(x, dtype=pt.float64), np.linalg.norm(ref64(a)), pt.float64)
    with pytest.raises(TypeError, match=r"^norm: .*floating point.*int64"):
        pt.norm(pt.tensor([1, 2]))
    with pytest.raises(ValueError, match="norm: p must be"):
        pt.norm(x, "bogus")
    with pytest.raises(ValueError, match="vector_norm: ord must be a number"):
        pt.linalg.vector_norm(x, "fro")


def test_vector_norm_of_empty():
    check(pt.linalg.vector_norm(pt.empty(0)), np.array(0.0))
    check(pt.linalg.vector_norm(pt.empty(0), 0), np.array(0.0))
    with pytest.raises(RuntimeError, match=r"vector_norm.*inf norm on an empty tensor.*\(0,\)"):
        pt.linalg.vector_norm(pt.empty(0), math.inf)
    with pytest.raises(RuntimeError, match="vector_norm.*-1 norm"):
        pt.linalg.vector_norm(pt.zeros(0, 2), -1, 0)
    check(pt.linalg.vector_norm(pt.zeros(0, 2), math.inf, 1), np.zeros(0))


# ------------------------------------------------------------------------------ all/any ---
@pytest.mark.parametrize("dtype", ["bool", "int32", "float32", "complex64"])
@pytest.mark.parametrize("dim", [None, 0, (1, 2)])
def test_all_any(dtype, dim):
    a = rand(SHAPE, dtype)
    if dtype != "bool":
        a = a * (RNG.random(SHAPE) > 0.3)
    x = pt.asarray(a)
    check(pt.all(x, dim), np.all(a, axis=dim), pt.bool)
    check(x.any(dim=dim, keepdim=True), np.any(a, axis=dim, keepdims=True), pt.bool)


def test_count_nonzero():
    a = np.array([[0, 1, 2], [0, 0, 3]])
    x = pt.asarray(a)
    check(pt.count_nonzero(x), np.array(3), pt.int64)
    check(pt.count_nonzero(x, 0), np.array([0, 1, 2]))
    check(pt.count_nonzero(x, dim=(0, 1)), np.array(3))
    check(pt.count_nonzero(x, axis=1, keepdims=True), np.array([[2], [1]]))
    check(pt.count_nonzero(pt.tensor([True, False, True])), np.array(2))
    check(pt.count_nonzero(pt.tensor([0j, 1j])), np.array(1))


# ------------------------------------------------------------------------------- scans ---
@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "float16", "float32", "float64",
                                   "complex64"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_cumprod(dtype, dim):
    a = rand((3, 4), dtype)
    x = pt.asarray(a)
    want = pt.int64 if dtype in ("bool", "int8", "int32") else getattr(pt, dtype)
    check(pt.cumsum(x, dim), np.cumsum(ref64(a), dim), want, rtol=3e-2 if dtype == "float16"
          else None)
    check(x.cumprod(dim), np.cumprod(ref64(a), dim), want,
          rtol=3e-2 if dtype == "float16" else None)


def test_cumsum_dtype_and_errors():
    x = pt.tensor([1, 2, 3], dtype=pt.int32)
    check(pt.cumsum(x, 0, dtype=pt.float32), np.array([1.0, 3, 6]), pt.float32)
    check(pt.cumsum(x, axis=0), np.array([1, 3, 6]), pt.int64)
    check(pt.cumsum(pt.empty(0), 0), np.zeros(0))
    with pytest.raises(TypeError, match=r"cumsum\(\).*required.*dim"):
        pt.cumsum(x)
    with pytest.raises(IndexError, match=r"cumprod.*range"):
        pt.cumprod(x, 1)


def test_cumulative_sum_prod_array_api():
    x = pt.tensor([1.0, 2.0, 3.0])
    check(pt.cumulative_sum(x), np.array([1.0, 3, 6]))
    check(pt.cumulative_sum(x, include_initial=True), np.array([0.0, 1, 3, 6]))
    check(pt.cumulative_prod(x, include_initial=True), np.array([1.0, 1, 2, 6]))
    m = pt.asarray(np.arange(6).reshape(2, 3))
    check(pt.cumulative_sum(m, axis=1, include_initial=True),
          np.array([[0, 0, 1, 3], [0, 3, 7, 12]]), pt.int64)
    with pytest.raises(ValueError, match="cumulative_sum.*axis is required.*2-d"):
        pt.cumulative_sum(m)
    with pytest.raises(ValueError, match="cumulative_prod.*0-d"):
        pt.cumulative_prod(pt.tensor(1.0))


# ------------------------------------------------------------- composite op defaults ---
def test_composite_defaults_called_directly():
    a = rand((3, 5), "float32")
    x = pt.asarray(a)
    v, i = dispatcher.default("max_dim")(x, 1, False)
    check(v, a.max(1))
    check(i, a.argmax(1))
    v, i = dispatcher.default("min_dim")(x, 0, True)
    check(v, a.min(0, keepdims=True))
    check(i, a.argmin(0, keepdims=True))
    s = dispatcher.default("std")(x, (0, 1), 1, False)
    check(s, np.std(ref64(a), ddof=1), pt.float32)
    lse = dispatcher.default("logsumexp")(x, (1,), True)
    check(lse, np.log(np.exp(ref64(a)).sum(1, keepdims=True)), pt.float32)
    lse = dispatcher.default("logsumexp")(pt.tensor([[np.inf, 0.0], [-np.inf, -np.inf]]),
                                          (1,), False)
    check(lse, np.array([np.inf, -np.inf]))
    check(dispatcher.default("logsumexp")(pt.empty(0), None, False), np.array(-np.inf))


_FUSED = ("max_dim", "min_dim", "std", "logsumexp", "tensordot", "matrix_norm", "cross")


@pytest.fixture
def unfused():
    """A cpu clone with no fused kernels for the composite ops: the defaults run."""
    with cpu_clone("unfused", drop=_FUSED) as dev:
        yield dev


def test_public_ops_on_a_backend_without_fused_kernels(unfused):
    a = rand((4, 3), "float64")
    x = pt.asarray(a, device=unfused)
    from polyten.dispatch.dispatcher import kernel_for
    assert kernel_for("std", unfused.backend) is None
    r = pt.max(x, 0)
    assert r.values.device == unfused
    check(r.values, a.max(0))
    check(r.indices, a.argmax(0))
    check(pt.min(x, 1, keepdim=True).indices, a.argmin(1)[:, None])
    check(pt.std(x, 1), np.std(a, 1, ddof=1))
    check(pt.logsumexp(x, (0, 1)), np.log(np.exp(a).sum()))


# ------------------------------------------------------------------------------ PyTorch ---
def _torch_cases():
    return [
        ("sum", (1,), {}), ("sum", ((0, 2),), {"keepdim": True}), ("sum", (), {}),
        ("prod", (2,), {}), ("mean", (-1,), {"keepdim": True}), ("amax", ((0, 1),), {}),
        ("amin", (1,), {}), ("argmax", (), {}), ("argmax", (2,), {"keepdim": True}),
        ("argmin", (0,), {}), ("var", (1,), {}), ("var", ((0, 2),), {"correction": 0}),
        ("std", (None,), {"unbiased": False}), ("logsumexp", (1,), {}),
        ("norm", (), {}), ("norm", (1, 2), {}), ("all", (1,), {}), ("any", (), {}),
        ("cumsum", (1,), {}), ("cumprod", (0,), {}), ("count_nonzero", (1,), {}),
        ("nansum", (0,), {}), ("median", (), {}), ("max", (), {}), ("min", (), {}),
    ]


@pytest.mark.parametrize("name,args,kwargs", _torch_cases())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_against_torch(name, args, kwargs, dtype):
    torch = pytest.importorskip("torch")
    a = rand(SHAPE, dtype)
    a[a < -1.5] = 0
    ours = getattr(pt, name)(pt.asarray(a), *args, **kwargs)
    theirs = getattr(torch, name)(torch.from_numpy(a.copy()), *args, **kwargs)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_min_dim_against_torch(name, dim):
    torch = pytest.importorskip("torch")
    a = rand(SHAPE, "float32")
    a[0, 0, 0] = a[0, 0, 1]  # a tie
    ours = getattr(pt, name)(pt.asarray(a), dim, keepdim=True)
    theirs = getattr(torch, name)(torch.from_numpy(a), dim, keepdim=True)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "int32", "int64"])
def test_integer_accumulation_dtypes_against_torch(dtype):
    torch = pytest.importorskip("torch")
    a = rand((3, 4), dtype)
    for name in ("sum", "prod", "cumsum", "cumprod"):
        args = (1,)
        ours = getattr(pt, name)(pt.asarray(a), *args)
        theirs = getattr(torch, name)(torch.from_numpy(a), *args)
        assert ours.dtype.name == str(theirs.dtype).split(".")[-1], name
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_remaining_error_paths():
    x = pt.ones(2, 3)
    with pytest.raises(TypeError, match=r"sum\(\): dim must be an int or a tuple.*tensor"):
        pt.sum(x, pt.tensor(0))
    with pytest.raises(TypeError, match=r"sum\(\): cannot accumulate a complex64 tensor in "
                                        r"float32.*imaginary"):
        pt.sum(pt.tensor([1j]), dtype=pt.float32)
    with pytest.raises(TypeError, match=r"argmax\(\): got both dim=0 and axis=1"):
        pt.argmax(x, 0, axis=1)
    with pytest.raises(TypeError, match=r"max\(input, other\): keepdim"):
        pt.max(x, x, True)
    with pytest.raises(TypeError, match=r"median\(\): dim must be a single int"):
        pt.median(x, (0, 1))
    with pytest.raises(TypeError, match=r"median.*complex"):
        pt.median(pt.tensor([1j]))
    with pytest.raises(TypeError, match=r"var\(\): got unbiased twice"):
        pt.var(x, True, unbiased=False)
    with pytest.raises(TypeError, match=r"linalg.vector_norm: dtype must be a floating"):
        pt.linalg.vector_norm(x, dtype=pt.int32)
    with pytest.raises(ValueError, match=r"norm: p='fro' takes at most two dims"):
        pt.norm(pt.ones(2, 2, 2), "fro", dim=(0, 1, 2))
    with pytest.raises(TypeError, match=r"cumsum\(\): got both dim=0 and axis=0"):
        pt.cumsum(x, 0, axis=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [0, 1, 7, 16, 127, 128, 129, 1000])
def test_sum_of_short_vectors(dtype, n):
    """The cpu backend sums float vectors of up to 128 elements with BLAS dot (cheaper than
    ufunc.reduce to set up): the same values as the float64 reference at every length
    around the switch, strided views and non-finite values included."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal(2 * n).astype(dtype)
    for a in (x[:n], x[::2]):
        ref = a.astype(np.float64).sum()
        for got in (pt.tensor(a).sum(), pt.sum(pt.tensor(a), dim=0), pt.tensor(a).sum(0, True)):
            assert got.dtype == getattr(pt, dtype)
            np.testing.assert_allclose(got.numpy().reshape(()), ref, rtol=1e-6, atol=1e-6)
    if n:
        y = x[:n].copy()
        y[n // 2] = np.inf
        assert pt.tensor(y).sum().item() == np.inf
        y[0] = -np.inf if n > 1 else np.nan
        assert np.isnan(pt.tensor(y).sum().item())
        y[-1] = np.nan
        assert np.isnan(pt.tensor(y).sum().item())


@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "int32"])
def test_an_explicit_integer_dtype_wraps_in_that_dtype(dt):
    """``sum`` / ``prod`` / ``cumsum`` with ``dtype=`` an integer type accumulate in it (NumPy
    with that dtype, and torch, wrap); the default stays int64.  The stored data has the
    tensor's dtype (it was int64 under an int8 label)."""
    info = np.iinfo(dt)
    a = np.array([[info.max, info.max, 3], [info.max - 1, 7, 2]], dtype=dt)
    t = pt.tensor(a)
    want = {"sum": np.sum(a, dtype=dt), "sum1": np.sum(a, axis=1, dtype=dt),
            "prod": np.prod(a, axis=0, dtype=dt), "cumsum": np.cumsum(a, axis=1, dtype=dt)}
    got = {"sum": pt.sum(t, dtype=getattr(pt, dt)),
           "sum1": pt.sum(t, dim=1, dtype=getattr(pt, dt)),
           "prod": pt.prod(t, dim=0, dtype=getattr(pt, dt)),
           "cumsum": pt.cumsum(t, dim=1, dtype=getattr(pt, dt))}
    for k in want:
        assert got[k].dtype.name == dt and str(got[k]._data.dtype) == dt, k
        assert np.array_equal(got[k].numpy(), want[k]), k
    assert pt.sum(t).dtype == pt.int64
    assert pt.sum(t).item() == int(a.astype(np.int64).sum())
