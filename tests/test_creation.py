"""Creation functions against NumPy (float64 references) and, where installed, PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt


def host(t):
    return np.asarray(t.numpy())


@pytest.fixture
def default_float64():
    pt.set_default_dtype(pt.float64)
    try:
        yield
    finally:
        pt.set_default_dtype(pt.float32)


# ------------------------------------------------------------------------------ tensor() ---
@pytest.mark.parametrize("data, dtype", [
    (3.0, pt.float32), (3, pt.int64), (True, pt.bool), (1 + 2j, pt.complex64),
    ([1.0, 2.0], pt.float32), ([1, 2], pt.int64), ([True, False], pt.bool),
    ([1, 2.5, True], pt.float32), ([1, 1j], pt.complex64), ([[1, 2], [3, 4]], pt.int64),
    ((1, 2), pt.int64), ([(1, 2), (3, 4)], pt.int64), (range(3), pt.int64),
    ([], pt.float32), ([[]], pt.float32),
])
def test_tensor_infers_dtype_and_values(data, dtype):
    t = pt.tensor(data)
    assert t.dtype is dtype
    ref = np.array(list(data) if isinstance(data, range) else data)
    assert t.shape == ref.shape
    np.testing.assert_array_equal(host(t), ref.astype(host(t).dtype))


def test_tensor_numpy_scalars_keep_their_dtype():
    assert pt.tensor(np.float64(1.5)).dtype is pt.float64
    assert pt.tensor(np.int32(5)).dtype is pt.int32
    assert pt.tensor(np.float32(1.5)).dtype is pt.float32
    # in lists they promote with Python numbers (Python floats count as the default dtype)
    assert pt.tensor([np.float64(1.0), 2.0]).dtype is pt.float64
    assert pt.tensor([np.float16(1.0), 2.0]).dtype is pt.float32
    assert pt.tensor([np.int32(1), 2]).dtype is pt.int64
    assert pt.tensor([np.bool_(True), False]).dtype is pt.bool
    t = pt.tensor([[np.float64(1)], [2.0]])
    assert t.shape == (2, 1) and t.dtype is pt.float64


def test_tensor_of_tensors_promotes_their_dtypes():
    a = pt.tensor(1, dtype=pt.int8)
    assert pt.tensor([a, pt.tensor(2, dtype=pt.int8)]).dtype is pt.int8
    assert pt.tensor([a, 2]).dtype is pt.int64
    mixed = pt.tensor([a, 2.5])
    assert mixed.dtype is pt.float32
    np.testing.assert_array_equal(host(mixed), [1.0, 2.5])
    rows = pt.tensor([pt.tensor([1.0, 2.0]), pt.tensor([3.0, 4.0])])
    assert rows.shape == (2, 2)
    np.testing.assert_array_equal(host(rows), [[1, 2], [3, 4]])


def test_tensor_of_numpy_arrays():
    t = pt.tensor([np.array([1, 2]), np.array([3, 4])])
    assert t.dtype is pt.int64 and t.shape == (2, 2)
    np.testing.assert_array_equal(host(t), [[1, 2], [3, 4]])
    assert pt.tensor(np.array([1, 2], dtype=np.uint16)).dtype is pt.int32  # widened


def test_tensor_copies_and_asarray_shares():
    a = np.arange(4.0)
    t = pt.tensor(a)
    s = pt.asarray(a)
    a[0] = 100.0
    assert host(t)[0] == 0.0
    assert host(s)[0] == 100.0
    f = pt.from_numpy(a)
    assert f.dtype is pt.float64 and np.shares_memory(host(f), a)
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        pt.from_numpy([1.0])


def test_tensor_explicit_dtype_converts():
    t = pt.tensor([1.5, 2.7, -1.9], dtype=pt.int64)
    np.testing.assert_array_equal(host(t), [1, 2, -1])  # truncation toward zero
    assert pt.tensor(3.5, dtype=pt.int64).item() == 3
    assert pt.tensor([2.5, 0.0], dtype=pt.bool).tolist() == [True, False]
    assert pt.tensor([1, 2], dtype=pt.float16).dtype is pt.float16


def test_tensor_from_tensor_copies():
    a = pt.tensor([1.0, 2.0])
    b = pt.tensor(a)
    assert not np.shares_memory(host(a), host(b))
    assert b.tolist() == [1.0, 2.0]
    c = pt.tensor(a, dtype=pt.float64)
    assert c.dtype is pt.float64


@pytest.mark.parametrize("bad, exc, words", [
    ({"a": 1}, TypeError, ["tensor", "dict"]),
    ("abc", TypeError, ["tensor", "str"]),
    (b"ab", TypeError, ["tensor", "bytes"]),
    (object(), TypeError, ["tensor", "object"]),
    ([1, None], TypeError, ["tensor", "NoneType", "[1]"]),
    ([1, "a"], TypeError, ["tensor", "str"]),
    ([[1, 2], [3]], ValueError, ["tensor", "length 2", "dim 1", "got 1"]),
    ([[1, 2], 3], ValueError, ["tensor", "sequence", "dim 1"]),
    ([3, [1, 2]], ValueError, ["tensor", "number", "dim 1"]),
    ([[[]], [1]], ValueError, ["tensor", "dim 2"]),
    (np.array(["a"]), TypeError, ["tensor", "str", "only bool, integer"]),
    (np.array([object()]), TypeError, ["tensor", "object"]),
])
def test_tensor_rejects_unconvertible_objects(bad, exc, words):
    with pytest.raises(exc) as info:
        pt.tensor(bad)
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize("data, dtype, exc, words", [
    ([1, 2 ** 63], None, OverflowError, ["int64", "9223372036854775808"]),
    ([300], pt.uint8, OverflowError, ["uint8", "300", "0 to 255"]),
    ([-1], pt.uint8, OverflowError, ["uint8", "-1"]),
    ([1.5, float("nan")], pt.int64, ValueError, ["nan", "int64"]),
    ([1e30], pt.int32, OverflowError, ["int32"]),
    ([1 + 2j], pt.float32, TypeError, ["complex", "float32"]),
    ([1 + 2j], pt.int64, TypeError, ["complex", "int64"]),
    (2 ** 70, None, OverflowError, ["int64"]),
])
def test_tensor_values_that_do_not_fit(data, dtype, exc, words):
    with pytest.raises(exc) as info:
        pt.tensor(data, dtype=dtype)
    assert "tensor" in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_asarray_copy_semantics():
    a = np.arange(3.0)
    assert np.shares_memory(host(pt.asarray(a, copy=False)), a)
    assert not np.shares_memory(host(pt.asarray(a, copy=True)), a)
    with pytest.raises(ValueError, match="asarray: copy=False.*float64 to float32"):
        pt.asarray(a, dtype=pt.float32, copy=False)
    with pytest.raises(ValueError, match="asarray: copy=False.*list"):
        pt.asarray([1, 2], copy=False)
    t = pt.tensor([1.0, 2.0])
    assert pt.asarray(t) is t
    assert pt.asarray(t, copy=True) is not t
    with pytest.raises(ValueError, match="asarray: copy=False.*float32 to int64"):
        pt.asarray(t, dtype=pt.int64, copy=False)


def test_default_dtype_governs_python_floats(default_float64):
    assert pt.tensor(1.0).dtype is pt.float64
    assert pt.tensor([1, 2.5]).dtype is pt.float64
    assert pt.tensor(1j).dtype is pt.complex128
    assert pt.zeros(2).dtype is pt.float64
    assert pt.arange(0.0, 1.0, 0.5).dtype is pt.float64
    assert pt.arange(3).dtype is pt.int64
    assert pt.linspace(0, 1, 3).dtype is pt.float64
    assert pt.full((2,), 1.5).dtype is pt.float64


# ------------------------------------------------------------------- zeros/ones/full/empty --
@pytest.mark.parametrize("fn, value", [(pt.zeros, 0), (pt.ones, 1)])
def test_zeros_ones_shapes(fn, value):
    for args, shape in [((2, 3), (2, 3)), (((2, 3),), (2, 3)), (([2, 3],), (2, 3)),
                        ((4,), (4,)), (((),), ()), ((0, 3), (0, 3)),
                        ((pt.Size([2, 1]),), (2, 1))]:
        t = fn(*args)
        assert t.shape == shape and t.dtype is pt.float32
        np.testing.assert_array_equal(host(t), np.full(shape, value, np.float32))
    assert fn(size=(2, 2)).shape == (2, 2)
    assert fn((2,), dtype=pt.int8).dtype is pt.int8
    assert fn(2, dtype="float64").dtype is pt.float64


@pytest.mark.parametrize("fn", [pt.zeros, pt.ones, pt.empty])
def test_shape_errors(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=f"{name}: negative dimension -1"):
        fn(-1)
    with pytest.raises(ValueError, match=f"{name}: negative dimension -2"):
        fn(3, -2)
    with pytest.raises(TypeError, match=f"{name}: shape entries must be ints.*float"):
        fn((2, 3.0))
    with pytest.raises(TypeError, match=f"{name}: a shape is required"):
        fn()
    with pytest.raises(TypeError, match=f"{name}: pass the shape once"):
        fn(2, size=(3,))


def test_empty_has_shape_and_dtype():
    t = pt.empty(2, 3, dtype=pt.int32)
    assert t.shape == (2, 3) and t.dtype is pt.int32


@pytest.mark.parametrize("value, dtype, expected", [
    (1.5, None, pt.float32), (2, None, pt.int64), (True, None, pt.bool),
    (1 + 2j, None, pt.complex64), (1.5, pt.int64, pt.int64), (-1.5, pt.float64, pt.float64),
    (np.float64(2.0), None, pt.float32), (pt.tensor(3), None, pt.int64),
])
def test_full(value, dtype, expected):
    t = pt.full((2, 3), value, dtype=dtype)
    assert t.dtype is expected and t.shape == (2, 3)
    v = value.item() if isinstance(value, pt.Tensor) else value
    ref = np.full((2, 3), v).astype(host(t).dtype)
    np.testing.assert_array_equal(host(t), ref)


@pytest.mark.parametrize("value, dtype, exc, words", [
    (300, pt.uint8, OverflowError, ["300", "uint8", "0 to 255"]),
    (-1, pt.uint8, OverflowError, ["-1", "uint8"]),
    (2 ** 63, None, OverflowError, ["int64"]),
    (float("nan"), pt.int64, ValueError, ["nan", "int64"]),
    (float("inf"), pt.int32, ValueError, ["inf", "int32"]),
    (1e300, pt.float32, OverflowError, ["float32"]),
    (1e5, pt.float16, OverflowError, ["float16"]),
    (1 + 2j, pt.float32, TypeError, ["complex", "float32"]),
    ("a", None, TypeError, ["fill_value", "str"]),
    (pt.tensor([1, 2]), None, ValueError, ["one-element"]),
])
def test_full_rejects_values_the_dtype_cannot_hold(value, dtype, exc, words):
    with pytest.raises(exc) as info:
        pt.full((2,), value, dtype=dtype)
    assert str(info.value).startswith("full:")
    for w in words:
        assert w in str(info.value)


def test_full_accepts_complex_with_zero_imaginary_part_and_inf():
    assert pt.full((2,), 1 + 0j, dtype=pt.float32).tolist() == [1.0, 1.0]
    assert pt.full((1,), float("inf"), dtype=pt.float16).tolist() == [math.inf]
    assert pt.full((2,), 1.5, dtype=pt.bool).tolist() == [True, True]


def test_like_functions():
    x = pt.tensor([[1, 2, 3]], dtype=pt.int32)
    for fn, v in [(pt.zeros_like, 0), (pt.ones_like, 1)]:
        t = fn(x)
        assert t.shape == (1, 3) and t.dtype is pt.int32
        np.testing.assert_array_equal(host(t), np.full((1, 3), v))
        assert fn(x, dtype=pt.float64).dtype is pt.float64
    f = pt.full_like(x, 7)
    np.testing.assert_array_equal(host(f), [[7, 7, 7]])
    assert pt.full_like(x, 2.9).tolist() == [[2, 2, 2]]
    assert pt.empty_like(x).shape == (1, 3)
    with pytest.raises(OverflowError, match="full_like.*300.*uint8"):
        pt.full_like(pt.zeros(2, dtype=pt.uint8), 300)
    with pytest.raises(TypeError, match="zeros_like: expected a tensor"):
        pt.zeros_like([1, 2])


def test_new_methods():
    x = pt.ones(3, dtype=pt.int32)
    assert x.new_zeros(2, 2).dtype is pt.int32 and x.new_zeros((2, 2)).shape == (2, 2)
    assert x.new_ones(2).tolist() == [1, 1]
    assert x.new_full((2,), 7).tolist() == [7, 7]
    assert x.new_empty(4).shape == (4,)
    t = x.new_tensor([1.7, 2.2])
    assert t.dtype is pt.int32 and t.tolist() == [1, 2]
    assert x.new_tensor([1.5], dtype=pt.float64).dtype is pt.float64


# ------------------------------------------------------------------------------- arange ----
@pytest.mark.parametrize("args, kwargs", [
    ((5,), {}), ((2, 7), {}), ((0, 10, 3), {}), ((5, 0, -1), {}), ((10, -10, -3), {}),
    ((0, 1, 0.1), {}), ((-1.5, 2.5, 0.5), {}), ((0.5, 3), {"dtype": pt.int64}),
    ((0, 5), {"dtype": pt.float64}), ((0, 5, 2), {"dtype": pt.float16}),
    ((0, 200, 7), {"dtype": pt.uint8}), ((5, 5), {}), ((1.0, 0.0, -0.25), {}),
    ((2,), {"stop": 6}), ((0,), {"stop": 1, "step": 0.25}),
])
def test_arange_matches_float64_reference(args, kwargs):
    t = pt.arange(*args, **kwargs)
    a = list(args)
    if "stop" in kwargs:
        a.append(kwargs["stop"])
    if "step" in kwargs:
        a.append(kwargs["step"])
    if len(a) == 1:
        a = [0, a[0]]
    start, end = a[0], a[1]
    step = a[2] if len(a) > 2 else 1
    dt = kwargs.get("dtype")
    if dt is None:
        dt = pt.int64 if all(isinstance(v, int) for v in (start, end, step)) else pt.float32
    assert t.dtype is dt
    if dt.kind in "ui":
        start, end, step = int(start), int(end), int(step)
    n = max(0, math.ceil((end - start) / step))
    ref = start + np.arange(n, dtype=np.float64) * step
    assert t.shape == (n,)
    np.testing.assert_allclose(host(t).astype(np.float64), ref, rtol=1e-3 if dt is pt.float16
                               else 1e-6)


def test_arange_accepts_one_element_tensors_and_numpy_scalars():
    assert pt.arange(pt.tensor(3)).tolist() == [0, 1, 2]
    assert pt.arange(np.int64(2), np.int64(4)).tolist() == [2, 3]


@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((0, 5, 0), {}, ValueError, ["arange", "step must be nonzero"]),
    ((1, 2.5, 0.5), {"dtype": pt.int64}, ValueError, ["arange", "nonzero", "int64"]),
    ((5, 0), {}, ValueError, ["arange", "inconsistent with step sign", "step=-1"]),
    ((0, 5, -1), {}, ValueError, ["arange", "inconsistent"]),
    ((0, float("inf")), {}, ValueError, ["arange", "inf", "finite"]),
    ((0, float("nan")), {}, ValueError, ["arange", "finite"]),
    ((5,), {"dtype": pt.bool}, TypeError, ["arange", "bool"]),
    ((5,), {"dtype": pt.complex64}, TypeError, ["arange", "complex64"]),
    ((0, 300), {"dtype": pt.uint8}, OverflowError, ["arange", "299", "uint8"]),
    ((0, 1j), {}, TypeError, ["arange", "complex"]),
    (("a",), {}, TypeError, ["arange", "str"]),
    ((pt.tensor([1, 2]),), {}, ValueError, ["arange", "one-element"]),
    ((0, 5), {"end": 3, "stop": 4}, TypeError, ["arange", "stop"]),
])
def test_arange_errors(args, kwargs, exc, words):
    if "end" in kwargs:
        args = args[:1]
    with pytest.raises(exc) as info:
        pt.arange(*args, **kwargs)
    for w in words:
        assert w in str(info.value)


# ----------------------------------------------------------------------------- linspace ----
@pytest.mark.parametrize("start, end, steps, dtype", [
    (0, 10, 5, None), (0, 1, 1, None), (0, 1, 0, None), (-3.5, 2.25, 7, pt.float64),
    (1, -1, 4, None), (0, 10, 5, pt.int64), (-5, 10, 4, pt.int64), (0, 1, 11, pt.float16),
    (0, 1 + 1j, 3, None), (2, 3, 6, pt.complex128),
])
def test_linspace_matches_numpy(start, end, steps, dtype):
    t = pt.linspace(start, end, steps, dtype=dtype)
    expected = dtype or (pt.complex64 if isinstance(end, complex) else pt.float32)
    assert t.dtype is expected and t.shape == (steps,)
    ref = np.linspace(start, end, steps)
    if expected.kind in "ui":
        ref = np.trunc(ref)
    tol = 1e-3 if expected is pt.float16 else 1e-6
    np.testing.assert_allclose(host(t).astype(np.complex128), ref, rtol=tol, atol=tol)


def test_linspace_array_api_spelling():
    t = pt.linspace(0.0, 1.0, num=4, endpoint=False)
    np.testing.assert_allclose(host(t), np.linspace(0, 1, 4, endpoint=False), rtol=1e-6)
    np.testing.assert_allclose(host(pt.linspace(2.0, stop=3.0, num=3)), [2.0, 2.5, 3.0])
    assert pt.linspace(0, 1, 1, endpoint=False).tolist() == [0.0]


@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((0, 10, -1), {}, ValueError, ["linspace", "non-negative"]),
    ((0, 10), {}, TypeError, ["linspace", "steps", "required"]),
    ((0, 10, 2.5), {}, TypeError, ["linspace", "steps must be an int"]),
    ((0, 10, 5), {"dtype": pt.bool}, TypeError, ["linspace", "bool"]),
    ((0, 1j, 5), {"dtype": pt.float32}, TypeError, ["linspace", "complex", "float32"]),
    ((0, float("nan"), 3), {"dtype": pt.int64}, ValueError, ["linspace", "nan"]),
    ((0, 10, 5), {"num": 5}, TypeError, ["linspace", "num"]),
    ((0,), {}, TypeError, ["linspace", "end"]),
])
def test_linspace_errors(args, kwargs, exc, words):
    with pytest.raises(exc) as info:
        pt.linspace(*args, **kwargs)
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize("start, end, steps, base, dtype", [
    (0, 3, 4, 10.0, None), (0, 3, 4, 2, None), (-2, 2, 5, 10.0, pt.float64),
    (0, 3, 4, 10.0, pt.int64), (0, 1, 0, 10.0, None), (1, 0, 3, 0.5, pt.float16),
])
def test_logspace_matches_numpy(start, end, steps, base, dtype):
    t = pt.logspace(start, end, steps, base=base, dtype=dtype)
    expected = dtype or pt.float32
    assert t.dtype is expected and t.shape == (steps,)
    ref = np.logspace(start, end, steps, base=base)
    tol = 1e-3 if expected is pt.float16 else 1e-6
    np.testing.assert_allclose(host(t).astype(np.float64), ref, rtol=tol)


# ---------------------------------------------------------------------------------- eye ----
@pytest.mark.parametrize("args, kwargs", [
    ((3,), {}), ((2, 3), {}), ((3, 2), {}), ((0,), {}), ((4,), {"k": 1}), ((3, 5), {"k": -1}),
    ((3,), {"dtype": pt.bool}), ((3,), {"dtype": pt.int32}), ((2,), {"dtype": pt.complex64}),
])
def test_eye(args, kwargs):
    t = pt.eye(*args, **kwargs)
    dt = kwargs.get("dtype", pt.float32)
    assert t.dtype is dt
    ref = np.eye(*args, k=kwargs.get("k", 0))
    np.testing.assert_array_equal(host(t), ref.astype(host(t).dtype))


@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((-1,), {}, ValueError, ["eye", "n", "-1"]),
    ((2, -3), {}, ValueError, ["eye", "m", "-3"]),
    ((2.5,), {}, TypeError, ["eye", "int", "float"]),
    ((2,), {"k": 0.5}, TypeError, ["eye", "k"]),
])
def test_eye_errors(args, kwargs, exc, words):
    with pytest.raises(exc) as info:
        pt.eye(*args, **kwargs)
    for w in words:
        assert w in str(info.value)


# ----------------------------------------------------------------------- against PyTorch ---
@pytest.mark.parametrize("expr", [
    "arange(5)", "arange(2, 9, 2)", "arange(0, 1, 0.1)", "arange(-0.5, 3, 1, dtype={m}.int64)",
    "arange(5, 0, -1)", "arange(0, 1, 0.3, dtype={m}.float64)", "arange(0, 2.5, 0.5)",
    "linspace(0, 10, 5)", "linspace(-5, 10, 4, dtype={m}.int64)", "linspace(0, 1, 7)",
    "linspace(0, 10, 5, dtype={m}.int64)", "logspace(0, 3, 4)", "logspace(0, 3, 4, base=2)",
    "logspace(0, 3, 4, dtype={m}.int64)", "eye(3)", "eye(2, 4)", "eye(3, dtype={m}.bool)",
    "full((2, 2), 1.5, dtype={m}.int64)", "full((2,), True)", "full((2,), 7)",
    "tensor([1, 2.5, True])", "tensor([[1, 2], [3, 4]], dtype={m}.float16)",
    "tensor([])", "tensor([[]])", "tensor(range(4))", "zeros(2, 3, dtype={m}.int8)",
])
def test_against_torch(expr):
    torch = pytest.importorskip("torch")
    t = eval("torch." + expr.format(m="torch"))
    p = eval("pt." + expr.format(m="pt"))
    assert p.dtype.name == str(t.dtype).replace("torch.", "")
    assert tuple(p.shape) == tuple(t.shape)
    np.testing.assert_allclose(host(p).astype(np.float64), t.numpy().astype(np.float64),
                               rtol=1e-6, atol=1e-7)


def test_tensor_of_mixed_numpy_and_tensor_elements_against_torch():
    torch = pytest.importorskip("torch")
    cases = [[np.float64(1.0), 2.0], [np.float32(1.0), 2.0], [np.int32(1), 2]]
    for c in cases:
        assert pt.tensor(c).dtype.name == str(torch.tensor(c).dtype).replace("torch.", "")
    assert pt.tensor([pt.tensor(1.5, dtype=pt.float64), 2.0]).dtype.name == \
        str(torch.tensor([torch.tensor(1.5, dtype=torch.float64), 2.0]).dtype)[6:]


def test_asarray_buffer_protocol_objects():
    import array
    a = array.array("d", [1.0, 2.0])
    t = pt.asarray(a)
    assert t.dtype is pt.float64
    a[0] = 5.0  # shared, as numpy.asarray shares
    assert t.tolist() == [5.0, 2.0]
    assert pt.tensor(memoryview(array.array("i", [1, 2]))).dtype is pt.int32
    with pytest.raises(TypeError, match="tensor: cannot convert bytearray"):
        pt.tensor(bytearray(b"ab"))
