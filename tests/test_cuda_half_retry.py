"""``polyten_cuda.half_retry``: where CuPy has no float16 or bfloat16 loop for a function a
kernel calls (CuPy raises TypeError while it resolves the kernel's types), the kernel runs
again on float32 copies and its float32 results are rounded to the half dtype; in-place
optimizer hooks decline such a call; GradScaler's bfloat16 unscale needs no bfloat16 loop.

These tests drive the wrapper with plain NumPy kernels that refuse bfloat16 as CuPy would; the
whole cuda backend under the same gaps is in ``tests/test_cuda_standin.py``
(``set_bfloat16_gaps``)."""

from __future__ import annotations

import numpy as np
import pytest

ml_dtypes = pytest.importorskip("ml_dtypes")

from polyten_cuda import half_retry as H  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype("float32")


def _refusing(fn, calls=None):
    """``fn`` refusing bfloat16 operands as CuPy refuses a dtype it has no loop for."""
    def kernel(*args):
        if calls is not None:
            calls.append(tuple(getattr(a, "dtype", None) for a in args))
        for a in args:
            if getattr(a, "dtype", None) == BF16:
                raise TypeError("Wrong type ((dtype(bfloat16),)) of arguments for cupy_fn")
        return fn(*args)
    kernel.__name__ = fn.__name__
    return kernel


def test_a_refused_call_runs_in_float32_and_rounds_once():
    def around(x, decimals):
        return np.round(x, decimals)
    calls = []
    k = H.float32_retry({"round": _refusing(around, calls)}, (BF16,))["round"]
    x64 = np.array([1.2578125, -2.5, 3.75, 1000.5])
    x = x64.astype(BF16)
    r = k(x, 1)
    assert r.dtype == BF16
    np.testing.assert_array_equal(r, np.round(x64, 1).astype(BF16))  # float64 reference
    assert calls == [(BF16, None), (F32, None)]
    # learned: the next bfloat16 call goes to float32 at once, float32 calls stay as they are
    calls.clear()
    k(x, 0)
    k(x64.astype(F32), 0)
    assert calls == [(F32, None), (F32, None)]


def test_float16_and_bfloat16_round_back_to_their_own_dtype():
    """Both half dtypes retried by one table: each call's float32 result goes back to the
    half dtype it came in (float16: a refused loop, as in some cupyx functions)."""
    F16 = np.dtype("float16")
    calls = []

    def no_half(x):
        calls.append(x.dtype)
        if x.dtype in (F16, BF16):
            raise TypeError(f"Wrong type ((dtype('{x.dtype}'),)) of arguments")
        return np.exp(x)
    k = H.float32_retry({"exp": no_half}, (F16, BF16))["exp"]
    x64 = np.array([0.5, -1.25, 3.0])
    r16, rbf = k(x64.astype(F16)), k(x64.astype(BF16))
    assert r16.dtype == F16 and rbf.dtype == BF16
    np.testing.assert_array_equal(r16, np.exp(x64.astype(F16).astype(np.float64)).astype(F16))
    np.testing.assert_array_equal(rbf, np.exp(x64.astype(BF16).astype(np.float64)).astype(BF16))
    assert calls == [F16, F32, F32]  # learned after the first refusal
    assert k(x64.astype(F32)).dtype == F32 and k(x64).dtype == np.float64


def test_other_errors_and_other_dtypes_are_left_alone():
    def bad(x):
        raise TypeError("bad argument (the user's)")
    k = H.float32_retry({"f": bad}, (BF16,))["f"]
    with pytest.raises(TypeError, match="the user's"):
        k(np.ones(2, F32))  # no bfloat16 operand: no retry
    # a bfloat16 call whose float32 run fails too raises the first error, not the retry's
    seen = []

    def refuses_everything(x):
        seen.append(x.dtype)
        raise TypeError(f"no loop for {x.dtype}")
    k = H.float32_retry({"g": refuses_everything}, (BF16,))["g"]
    with pytest.raises(TypeError, match="no loop for bfloat16") as info:
        k(np.ones(2, BF16))
    assert info.value.__cause__ is None and seen == [BF16, F32]
    # a ValueError is not a missing loop
    k = H.float32_retry({"h": lambda x: (_ for _ in ()).throw(ValueError("v"))}, (BF16,))["h"]
    with pytest.raises(ValueError):
        k(np.ones(2, BF16))


def test_float32_results_stay_float32_where_the_call_asks_for_them():
    def total(x, dims, keepdim, dtype):
        return np.sum(x, axis=dims, keepdims=keepdim).astype(dtype or x.dtype)
    k = H.float32_retry({"sum": _refusing(total)}, (BF16,))["sum"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3).astype(BF16)
    assert k(x, (1,), False, None).dtype == BF16
    assert k(x, (1,), False, "float32").dtype == F32  # dtype="float32" asked
    # another floating operand: the kernel's float32 result is the promoted one
    k = H.float32_retry({"add": _refusing(np.add)}, (BF16,))["add"]
    assert k(x, np.ones(3, F32)).dtype == F32
    assert k(x, x).dtype == BF16
    # integer and bool results are never cast
    k = H.float32_retry({"argmax": _refusing(lambda x: np.argmax(x, axis=1))},
                        (BF16,))["argmax"]
    assert k(x).dtype == np.int64
    k = H.float32_retry({"lt": _refusing(np.less)}, (BF16,))["lt"]
    assert k(x, x).dtype == np.bool_


def test_tuples_lists_and_backward_kernels():
    def sort(x, dim, descending, stable):
        i = np.argsort(x, axis=dim, kind="stable")
        return np.take_along_axis(x, i, dim), i
    k = H.float32_retry({"sort": _refusing(sort)}, (BF16,))["sort"]
    x = np.array([3.0, -1.0, 2.0], dtype=BF16)
    v, i = k(x, 0, False, True)
    assert v.dtype == BF16 and i.dtype == np.int64
    np.testing.assert_array_equal(v.astype(np.float64), [-1.0, 2.0, 3.0])

    def concat(xs, dim):
        for a in xs:
            if a.dtype == BF16:
                raise TypeError("no loop")
        return np.concatenate(xs, dim)
    k = H.float32_retry({"concat": concat}, (BF16,))["concat"]
    assert k([x, x], 0).dtype == BF16

    def mul_bw(grads, inputs, outputs, params):
        (g,), (a, b) = grads, inputs
        if g.dtype == BF16:
            raise TypeError("no loop")
        return (g * b if params["needs"][0] else None, g * a)
    mul_bw.wants_output = False
    k = H.float32_retry({"mul": mul_bw}, (BF16,), backward=True)["mul"]
    assert k.wants_output is False and k.__name__ == "mul_bw"
    g = np.array([1.0, 2.0, 4.0], dtype=BF16)
    ga, gb = k((g,), (x, x), (x,), {"needs": (False, True)})
    assert ga is None and gb.dtype == BF16
    np.testing.assert_array_equal(gb.astype(np.float64), [3.0, -2.0, 8.0])


def test_inplace_writes_the_rounded_result_into_its_operand():
    def inplace(op, x, y):
        if x.dtype == BF16:
            raise TypeError("no loop")
        np.add(x, y, out=x)
        return x
    table = H.float32_retry({"inplace": inplace, "add": _refusing(np.add)}, (BF16,))
    x = np.array([1.0, 2.0, 3.0], dtype=BF16)
    view = x[1:]
    out = table["inplace"]("add", view, np.array([0.5, 0.25], dtype=BF16))
    assert out is view and x.dtype == BF16
    np.testing.assert_array_equal(x.astype(np.float64), [1.0, 2.5, 3.25])
    with pytest.raises(TypeError, match="no loop"):  # an assignment has nothing to compute
        table["inplace"](None, x, x)


def test_views_writers_and_dtype_dependent_kernels_are_not_wrapped():
    kernels = {name: (lambda *a: a) for name in ("getitem", "reshape", "setitem", "nextafter",
                                                  "astype", "to_host")}
    out = H.float32_retry(kernels, (BF16,))
    assert all(out[n] is kernels[n] for n in kernels)


def test_declinable_hooks_return_not_implemented_on_a_refusal():
    written = []

    def clip_grads(grads, max_norm, total):
        for g in grads:
            if g.dtype == BF16:
                raise TypeError("Wrong type ((dtype(bfloat16),)) of arguments for cupy_minimum")
            written.append(g)

    def sgd(params, grads, bufs, **hyper):
        raise TypeError("a step is never declined by the wrapper")
    hooks = H.decline_on_gap({"clip_grads": clip_grads, "sgd": sgd}, ["clip_grads"], (BF16,))
    assert hooks["sgd"] is sgd and hooks["clip_grads"].__name__ == "clip_grads"
    assert hooks["clip_grads"]([np.ones(2, BF16)], 1.0, np.ones((), BF16)) is NotImplemented
    assert hooks["clip_grads"]([np.ones(2, F32)], 1.0, np.ones((), F32)) is None
    assert len(written) == 1

    def broken(grads, max_norm, total):
        raise TypeError("not a dtype gap")
    with pytest.raises(TypeError, match="not a dtype gap"):  # no bfloat16 operand
        H.decline_on_gap({"clip_grads": broken}, ["clip_grads"], (BF16,))["clip_grads"](
            [np.ones(2, F32)], 1, 1)


def test_retried_kernels_are_reported():
    """``retried()`` lists, per table, the kernels whose bfloat16 calls were refused (the GPU
    check prints it at exit with ``POLYTEN_CUDA_REPORT_RETRIES=1``)."""
    k = H.float32_retry({"polyten_test_only": _refusing(np.negative)}, (BF16,))
    k["polyten_test_only"](np.ones(2, BF16))
    assert "polyten_test_only" in H.retried()["forward"]
    H._RETRIED["forward"].discard("polyten_test_only")
