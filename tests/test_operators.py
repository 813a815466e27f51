"""Python operators on tensors: arithmetic, reflected, in-place, comparisons, unary, and the
operands they accept (tensors, Python and NumPy scalars, NumPy arrays, lists, anything else)."""

from __future__ import annotations

import builtins
import operator
import re

import numpy as np
import pytest

import polyten as pt
from polyten.dispatch import DeviceMismatchError

BINARY_OPERATORS = [
    ("+", operator.add, np.add), ("-", operator.sub, np.subtract),
    ("*", operator.mul, np.multiply), ("/", operator.truediv, np.true_divide),
    ("//", operator.floordiv, np.floor_divide), ("%", operator.mod, np.remainder),
    ("**", operator.pow, np.power),
]
BITWISE_OPERATORS = [
    ("&", operator.and_, np.bitwise_and), ("|", operator.or_, np.bitwise_or),
    ("^", operator.xor, np.bitwise_xor), ("<<", operator.lshift, np.left_shift),
    (">>", operator.rshift, np.right_shift),
]
COMPARISONS = [
    ("==", operator.eq, np.equal), ("!=", operator.ne, np.not_equal),
    ("<", operator.lt, np.less), ("<=", operator.le, np.less_equal),
    (">", operator.gt, np.greater), (">=", operator.ge, np.greater_equal),
]
INPLACE = {"+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv,
           "//": operator.ifloordiv, "%": operator.imod, "**": operator.ipow,
           "&": operator.iand, "|": operator.ior, "^": operator.ixor, "<<": operator.ilshift,
           ">>": operator.irshift}

XF = np.array([[1.5, -2.0, 3.25], [0.5, 4.0, -1.0]])
YF = np.array([[2.0, 0.5, -1.5], [3.0, -2.0, 0.75]])
XI = np.array([[7, -8, 3], [12, 5, -1]])
YI = np.array([[2, 3, -4], [5, 1, 2]])


def assert_tensor(got, ref, dtype):
    assert isinstance(got, pt.Tensor)
    assert got.dtype is dtype, (got.dtype, dtype)
    if dtype.is_floating_point or dtype.is_complex:
        np.testing.assert_allclose(got.numpy(), np.asarray(ref, dtype=np.float64)
                                   if not dtype.is_complex else ref, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(got.numpy(), ref)


@pytest.mark.parametrize("sym,op,ref", BINARY_OPERATORS, ids=[s for s, *_ in BINARY_OPERATORS])
def test_arithmetic_operators_on_tensors(sym, op, ref):
    x, y = pt.from_numpy(XF.astype(np.float32)), pt.from_numpy(YF.astype(np.float32))
    xa, ya = XF.astype(np.float32).astype(np.float64), YF.astype(np.float32).astype(np.float64)
    if sym == "**":
        xa, x = np.abs(xa), pt.from_numpy(np.abs(XF).astype(np.float32))
    assert_tensor(op(x, y), ref(xa, ya), pt.float32)
    # tensor op Python scalar, and the reflected scalar op tensor
    assert_tensor(op(x, 2), ref(xa, 2.0), pt.float32)
    assert_tensor(op(x, 0.5), ref(xa, 0.5), pt.float32)
    assert_tensor(op(2, y if sym != "**" else y), ref(2.0, ya), pt.float32)
    assert_tensor(op(2.5, y), ref(2.5, ya), pt.float32)
    # integers
    xi, yi = pt.from_numpy(XI), pt.from_numpy(YI)
    if sym == "**":
        yi = pt.from_numpy(np.abs(YI))
        assert_tensor(op(xi, yi), ref(XI, np.abs(YI)), pt.int64)
    elif sym == "/":
        assert_tensor(op(xi, yi), XI / YI, pt.float32)  # true division, as torch
        assert_tensor(op(7, yi), 7 / YI, pt.float32)
    else:
        assert_tensor(op(xi, yi), ref(XI, YI), pt.int64)
        assert_tensor(op(7, yi), ref(7, YI), pt.int64)
        assert_tensor(op(xi, 3), ref(XI, 3), pt.int64)


def test_reflected_operators():
    t = pt.tensor([1.0, 2.0, 4.0])
    assert (2 - t).tolist() == [1.0, 0.0, -2.0]
    assert (2 ** t).tolist() == [2.0, 4.0, 16.0]
    assert (1 / t).tolist() == [1.0, 0.5, 0.25]
    assert (7 // t).tolist() == [7.0, 3.0, 1.0]
    assert (7 % t).tolist() == [0.0, 1.0, 3.0]
    assert (3 * t).tolist() == [3.0, 6.0, 12.0]
    assert (True + t).tolist() == [2.0, 3.0, 5.0]
    i = pt.tensor([1, 2, 3], dtype=pt.int16)
    for got, ref in ((5 - i, [4, 3, 2]), (2 ** i, [2, 4, 8]), (6 & i, [0, 2, 2]),
                     (1 << i, [2, 4, 8]), (8 >> i, [4, 2, 1]), (5 | i, [5, 7, 7]),
                     (5 ^ i, [4, 7, 6])):
        assert got.dtype is pt.int16 and got.tolist() == ref
    assert (1.5 - i).dtype is pt.float32
    z = (1j - t)
    assert z.dtype is pt.complex64 and z.tolist() == [-1 + 1j, -2 + 1j, -4 + 1j]


@pytest.mark.parametrize("sym,op,ref", BITWISE_OPERATORS, ids=[s for s, *_ in BITWISE_OPERATORS])
def test_bitwise_operators(sym, op, ref):
    shifts = sym in ("<<", ">>")
    yi = np.abs(YI) if shifts else YI
    for dt in (np.int8, np.int32, np.int64, np.uint8):
        xa, ya = XI.astype(dt), yi.astype(dt)
        got = op(pt.from_numpy(xa), pt.from_numpy(ya))
        assert got.dtype.name == np.dtype(dt).name
        np.testing.assert_array_equal(got.numpy(), ref(xa, ya))
    if not shifts:
        b = pt.tensor([True, False, True])
        c = pt.tensor([True, True, False])
        assert op(b, c).dtype is pt.bool
        assert op(b, c).tolist() == ref(np.array([True, False, True]),
                                        np.array([True, True, False])).tolist()
        assert op(b, True).dtype is pt.bool
    with pytest.raises(TypeError) as ei:
        op(pt.ones(2), pt.ones(2))
    assert "float32" in str(ei.value) and "bitwise" in str(ei.value)


@pytest.mark.parametrize("sym,op,ref", COMPARISONS, ids=[s for s, *_ in COMPARISONS])
def test_comparison_operators(sym, op, ref):
    x, y = pt.from_numpy(XF), pt.from_numpy(YF)
    yy = YF.copy()
    yy[0, 0] = XF[0, 0]
    got = op(x, pt.from_numpy(yy))
    assert got.dtype is pt.bool
    np.testing.assert_array_equal(got.numpy(), ref(XF, yy))
    np.testing.assert_array_equal(op(x, 1.5).numpy(), ref(XF, 1.5))
    np.testing.assert_array_equal(op(1.5, x).numpy(), ref(1.5, XF))  # Python reflects it
    np.testing.assert_array_equal(op(pt.from_numpy(XI), y).numpy(), ref(XI, YF))
    np.testing.assert_array_equal(op(pt.from_numpy(XI), 3).numpy(), ref(XI, 3))
    # broadcasting (2, 3) with (3,)
    np.testing.assert_array_equal(op(x, pt.from_numpy(YF[0])).numpy(), ref(XF, YF[0]))


def test_comparisons_with_none_and_hashing():
    t = pt.tensor([1.0, 2.0])
    assert (t == None) is False  # noqa: E711  (Python's fallback, as torch)
    assert (t != None) is True  # noqa: E711
    assert (t == "a") is False
    assert isinstance(hash(t), int) and t in {t}
    with pytest.raises(TypeError):
        t < "a"
    with pytest.raises(TypeError, match="lt: not supported for complex64"):
        pt.tensor([1j]) < 1


def test_unary_operators():
    f = pt.tensor([1.5, -2.0, 0.0])
    assert (-f).tolist() == [-1.5, 2.0, -0.0]
    assert (+f).tolist() == [1.5, -2.0, 0.0]
    assert abs(f).tolist() == [1.5, 2.0, 0.0]
    assert abs(pt.tensor([3 + 4j])).dtype is pt.float32 and abs(pt.tensor([3 + 4j])).item() == 5
    i = pt.tensor([0, 5, -3], dtype=pt.int8)
    assert (~i).dtype is pt.int8 and (~i).tolist() == [-1, -6, 2]
    assert (~pt.tensor([0, 255], dtype=pt.uint8)).tolist() == [255, 0]
    assert (~pt.tensor([True, False])).tolist() == [False, True]
    assert (-i).tolist() == [0, -5, 3] and abs(i).tolist() == [0, 5, 3]
    r = builtins.round(pt.tensor([1.25, 2.5], dtype=pt.float64), 1)
    assert isinstance(r, pt.Tensor) and r.tolist() == [1.2, 2.5]
    assert builtins.round(pt.tensor([2.5, 3.5])).tolist() == [2.0, 4.0]  # half to even
    with pytest.raises(TypeError, match="bitwise_not: not supported for float32"):
        ~f
    with pytest.raises(TypeError, match="neg: not supported for bool"):
        -pt.tensor([True])
    with pytest.raises(TypeError, match="positive"):
        +pt.tensor([True])


# ----------------------------------------------------------------------- in place ---
def test_inplace_keeps_identity_and_writes_through_views():
    base = np.arange(6, dtype=np.float32)
    t = pt.from_numpy(base)
    ident = id(t)
    t += 1
    assert id(t) == ident
    np.testing.assert_array_equal(base, np.arange(6) + 1)  # shares memory with NumPy
    view = pt.from_numpy(base[::2])  # a strided view of the same memory
    view *= 10
    np.testing.assert_array_equal(base, [10, 2, 30, 4, 50, 6])
    np.testing.assert_array_equal(t.numpy(), [10, 2, 30, 4, 50, 6])
    tt = pt.from_numpy(base.reshape(2, 3).T)  # transposed view
    tt -= pt.tensor([1.0, 2.0])  # broadcast (2,) into (3, 2)
    np.testing.assert_array_equal(base, [9, 1, 29, 2, 48, 4])
    t2 = pt.tensor([1.0, 2.0])
    same = t2
    t2 **= 2
    assert same is t2 and t2.tolist() == [1.0, 4.0]


@pytest.mark.parametrize("sym", list(INPLACE))
def test_every_inplace_operator_matches_the_out_of_place_one(sym):
    iop = INPLACE[sym]
    op = {s: f for s, f, _ in BINARY_OPERATORS + BITWISE_OPERATORS}[sym]
    if sym in ("&", "|", "^", "<<", ">>"):
        a, b = XI.astype(np.int32), np.abs(YI).astype(np.int32)
        dt = pt.int32
    else:
        a, b = np.abs(XF).astype(np.float32), YF.astype(np.float32)
        dt = pt.float32
    expected = op(pt.from_numpy(a.copy()), pt.from_numpy(b)).numpy()
    arr = a.copy()
    t = pt.from_numpy(arr)
    keep = t
    t = iop(t, pt.from_numpy(b))
    assert t is keep and t.dtype is dt
    np.testing.assert_array_equal(arr, expected)
    # with a Python scalar on the right
    arr = a.copy()
    t = iop(pt.from_numpy(arr), 2)
    np.testing.assert_array_equal(arr, op(pt.from_numpy(a.copy()), 2).numpy())


def test_inplace_result_type_rules():
    i = pt.tensor([1, 2], dtype=pt.int64)
    with pytest.raises(TypeError, match=r"add_: result type float32 can't be cast to the "
                                        r"desired output type int64"):
        i += 1.5
    with pytest.raises(TypeError, match=r"div_: result type float32 can't be cast to the "
                                        r"desired output type int64"):
        i /= 2
    with pytest.raises(TypeError, match="mul_: result type float32"):
        i *= pt.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="exp_: result type float32 can't be cast"):
        i.exp_()
    assert i.tolist() == [1, 2]  # untouched by the failed attempts
    # a wider result of the same kind (or a lower kind) is cast back, as torch
    f = pt.tensor([1.0, 2.0])
    f += pt.tensor([0.1, 0.2], dtype=pt.float64)
    assert f.dtype is pt.float32
    np.testing.assert_array_equal(f.numpy(), (np.array([1.0, 2.0]) + [0.1, 0.2])
                                  .astype(np.float32))
    j = pt.tensor([1, 2], dtype=pt.int32)
    j += pt.tensor([10, 20])  # int64 operand
    assert j.dtype is pt.int32 and j.tolist() == [11, 22]
    f *= pt.tensor([2, 3])  # int operand into float
    assert f.dtype is pt.float32
    h = pt.tensor([1.0], dtype=pt.float16)
    h += 1e5  # overflows float16, like torch
    assert h.tolist() == [np.inf]
    u = pt.tensor([250], dtype=pt.uint8)
    u += 10  # wraps, like torch
    assert u.tolist() == [4]
    b = pt.tensor([True, False])
    b |= True
    assert b.dtype is pt.bool and b.tolist() == [True, True]
    with pytest.raises(TypeError, match="add_: result type int64 can't be cast"):
        b += pt.tensor([1, 2])
    with pytest.raises(TypeError, match="add_: result type complex64"):
        f += 1j
    with pytest.raises(ValueError, match="pow_: integers to negative integer powers"):
        j **= -1


def test_inplace_shape_rules():
    t = pt.ones(3)
    with pytest.raises(ValueError, match=r"add_: output with shape \(3,\) doesn't match the "
                                         r"broadcast shape \(2, 3\)"):
        t += pt.ones(2, 3)
    with pytest.raises(ValueError, match=r"sub_: cannot broadcast shapes \(3,\) and \(4,\)"):
        t -= pt.ones(4)
    assert t.tolist() == [1.0, 1.0, 1.0]
    z = pt.tensor(2.0)
    z += 1
    assert z.shape == () and z.item() == 3.0


def test_inplace_with_overlapping_operands_reads_before_writing():
    base = np.arange(5, dtype=np.float64)
    x = pt.from_numpy(base[1:])
    y = pt.from_numpy(base[:-1])
    x += y
    np.testing.assert_array_equal(base, [0, 1, 3, 5, 7])
    t = pt.tensor([1.0, 2.0])
    t += t
    assert t.tolist() == [2.0, 4.0]


def test_inplace_into_read_only_memory_is_a_clear_error():
    arr = np.arange(3.0)
    arr.flags.writeable = False
    t = pt.from_numpy(arr)
    with pytest.raises(RuntimeError, match=r"add_: can't write into this float64 tensor of "
                                           r"shape \(3,\).*clone\(\) first"):
        t += 1
    with pytest.raises(RuntimeError, match="exp_: can't write"):
        t.exp_()


def test_inplace_methods():
    x = pt.tensor([1.0, 2.0, 4.0])
    keep = x
    assert x.add_(1) is keep and x.tolist() == [2.0, 3.0, 5.0]
    x.add_(pt.tensor([1.0, 1.0, 1.0]), alpha=2)
    assert x.tolist() == [4.0, 5.0, 7.0]
    x.sub_(1, alpha=2)
    assert x.tolist() == [2.0, 3.0, 5.0]
    x.mul_(2).div_(4)
    assert x.tolist() == [1.0, 1.5, 2.5]
    x.pow_(2)
    assert x.tolist() == [1.0, 2.25, 6.25]
    x.sqrt_()
    assert x.tolist() == [1.0, 1.5, 2.5]
    x.clamp_(1.2, 2.0)
    assert x.tolist() == [1.2000000476837158, 1.5, 2.0]
    x.neg_().abs_()
    assert x.tolist() == [1.2000000476837158, 1.5, 2.0]
    x.round_(decimals=0)
    assert x.tolist() == [1.0, 2.0, 2.0]
    x.sigmoid_()  # not a ufunc on NumPy: computed, then written
    np.testing.assert_allclose(x.numpy(), 1 / (1 + np.exp(-np.array([1.0, 2.0, 2.0]))),
                               rtol=1e-6)
    y = pt.tensor([np.nan, np.inf, -1.0])
    y.nan_to_num_(posinf=5.0).relu_()
    assert y.tolist() == [0.0, 5.0, 0.0]
    y.exp_().log_()
    np.testing.assert_allclose(y.numpy(), [0.0, 5.0, 0.0], atol=1e-6)
    i = pt.tensor([-3, 4])
    i.abs_().floor_divide_(2).remainder_(2)
    assert i.tolist() == [1, 0] and i.dtype is pt.int64
    i.bitwise_or_(2).bitwise_left_shift_(1)
    assert i.tolist() == [6, 4]
    m = pt.tensor([1.0, 5.0])
    m.maximum_(pt.tensor([3.0, 3.0]))
    assert m.tolist() == [3.0, 5.0]
    m.multiply_(2).subtract_(1).true_divide_(5)
    assert m.tolist() == [1.0, 1.7999999523162842]
    with pytest.raises(TypeError, match=r"clamp_: result type float32 can't be cast"):
        pt.tensor([1, 2]).clamp_(0.5, 1.5)
    with pytest.raises(TypeError, match="add_: alpha must be a number"):
        x.add_(x, alpha="2")


def test_inplace_device_mismatch_and_unsupported_operands(cpu2):
    a = pt.ones(2)
    b = pt.ones(2, device=cpu2)
    with pytest.raises(DeviceMismatchError) as ei:
        a += b
    assert "add_" in str(ei.value) and "cpu2" in str(ei.value) and ".to(" in str(ei.value)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+=: 'Tensor' and "
                                        r"'str'"):
        a += "x"
    a += [1.0, 2.0]  # lists and arrays are converted, as for a + [...]
    assert a.tolist() == [2.0, 3.0]
    a += np.array([1.0, 1.0], dtype=np.float32)
    assert a.tolist() == [3.0, 4.0]


# -------------------------------------------------------------- foreign operands ---
def test_numpy_scalars_are_weak_and_numpy_arrays_strong():
    t = pt.tensor([1.0, 2.0])
    for got in (np.float32(2) * t, t * np.float64(2), np.float64(2) * t, t * np.int64(2)):
        assert isinstance(got, pt.Tensor) and got.dtype is pt.float32
        assert got.tolist() == [2.0, 4.0]
    u = pt.tensor([1, 2], dtype=pt.uint8)
    assert (np.int64(3) + u).dtype is pt.uint8 and (u * np.bool_(True)).dtype is pt.uint8
    assert (u + np.float16(0.5)).dtype is pt.float32
    # arrays are operands with their own dtype (0-d arrays too, as the Array API)
    got = t + np.array([1.0, 1.0])
    assert got.dtype is pt.float64 and got.tolist() == [2.0, 3.0]
    got = np.array([1.0, 1.0], dtype=np.float32) + t  # NumPy defers to the tensor
    assert isinstance(got, pt.Tensor) and got.dtype is pt.float32
    got = np.array(2.0) * t
    assert isinstance(got, pt.Tensor) and got.dtype is pt.float64
    got = np.arange(2, dtype=np.int8) < t
    assert isinstance(got, pt.Tensor) and got.tolist() == [True, True]


def test_lists_and_tuples_as_operands():
    t = pt.tensor([1.0, 2.0])
    assert (t + [1, 2]).tolist() == [2.0, 4.0] and (t + [1, 2]).dtype is pt.float32
    assert ([1, 2] + t).tolist() == [2.0, 4.0]
    assert (t * (2, 3)).tolist() == [2.0, 6.0]
    assert ((3, 4) - t).tolist() == [2.0, 2.0]
    assert (t == [1.0, 5.0]).tolist() == [True, False]
    i = pt.tensor([1, 2])
    assert (i + [1.5, 2.5]).dtype is pt.float32


def test_unsupported_operands_raise_type_error():
    t = pt.tensor([1.0, 2.0])
    for fn, sym in ((lambda: t + "a", "+"), (lambda: t - None, "-"), (lambda: t * object(), "*"),
                    (lambda: {1: 2} / t, "/"), (lambda: t ** "2", "**")):
        with pytest.raises(TypeError, match=f"unsupported operand type.*{re.escape(sym)}"):
            fn()
    with pytest.raises(TypeError):  # str's own concatenation error, as with torch
        "a" + t
    with pytest.raises(TypeError, match="add: unsupported operand str 'a'"):
        pt.add(t, "a")
    with pytest.raises(TypeError, match="mul: unsupported operand"):
        pt.mul(object(), t)
    with pytest.raises(ValueError, match=r"add: cannot broadcast shapes \(2,\) and \(3,\)"):
        t + [1, 2, 3]


def test_operator_shape_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"mul: cannot broadcast shapes \(2, 3\) and \(2,\)"):
        pt.ones(2, 3) * pt.ones(2)
    with pytest.raises(ValueError, match=r"eq: cannot broadcast shapes \(4,\) and \(5,\)"):
        pt.ones(4) == pt.ones(5)
    with pytest.raises(ValueError, match=r"floor_divide: cannot broadcast"):
        pt.ones(4) // pt.ones(5)


def test_operators_across_devices_raise_device_mismatch(cpu2):
    a, b = pt.ones(2), pt.ones(2, device=cpu2)
    for fn, name in ((lambda: a * b, "mul"), (lambda: b - a, "sub"), (lambda: a < b, "lt"),
                     (lambda: a ** b, "pow")):
        with pytest.raises(DeviceMismatchError) as ei:
            fn()
        msg = str(ei.value)
        assert msg.startswith(name + ":") and "cpu" in msg and "cpu2" in msg and ".to(" in msg


# ---------------------------------------------------------------------- PyTorch ---
def test_inplace_dtype_rules_match_torch():
    torch = pytest.importorskip("torch")
    names = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64",
             "complex64"]
    checked = 0
    for sym in ("+", "*", "/", "-"):
        iop = INPLACE[sym]
        for a in names:
            for b in names:
                ta = torch.ones(3, dtype=getattr(torch, a))
                tb = torch.full((3,), 2, dtype=getattr(torch, b))
                pa = pt.ones(3, dtype=getattr(pt, a))
                pb = pt.full((3,), 2, dtype=getattr(pt, b))
                try:
                    ta = iop(ta, tb)
                    theirs = ta
                except RuntimeError:
                    theirs = None
                try:
                    pa = iop(pa, pb)
                    ours = pa
                except TypeError:
                    ours = None
                if sym == "-" and "bool" in (a, b):
                    continue  # torch refuses `-` on any bool tensor (see test_elementwise)
                assert (ours is None) == (theirs is None), (sym, a, b)
                if ours is not None:
                    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
                    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
                    checked += 1
    assert checked > 100


def test_operator_results_match_torch():
    torch = pytest.importorskip("torch")
    cases = [lambda m, t: 2 - t, lambda m, t: 2 ** t, lambda m, t: t ** 2, lambda m, t: -t,
             lambda m, t: 1 / t, lambda m, t: 7 // t, lambda m, t: -7 % t, lambda m, t: t > 2,
             lambda m, t: 2.5 * t, lambda m, t: t // 2.5, lambda m, t: abs(t - 3)]
    for dt in ("int32", "float32", "float64", "int8"):
        data = [1, 2, 3, -4]
        for i, case in enumerate(cases):
            ours = case(pt, pt.tensor(data, dtype=getattr(pt, dt)))
            theirs = case(torch, torch.tensor(data, dtype=getattr(torch, dt)))
            assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (dt, i)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6,
                                       err_msg=f"{dt} case {i}")


# ----------------------------------------------- backends without the fused kernels ---
@pytest.fixture
def plain_backend():
    """A cpu clone without the composite kernels of this area: the defaults run instead."""
    from conftest import _ClonePlugin
    from polyten.dispatch import register_plugin, unregister_plugin
    pname = register_plugin(_ClonePlugin("cpuplain", drop=("inplace", "isclose", "relu")),
                            name="test-cpuplain")
    try:
        yield pt.device("cpuplain")
    finally:
        unregister_plugin(pname)


def test_inplace_default_computes_then_writes_with_setitem(plain_backend):
    t = pt.tensor([[1.0, 2.0], [3.0, 4.0]], device=plain_backend)
    keep = t
    t += 1
    t *= pt.tensor([1.0, 2.0], device=plain_backend)
    assert t is keep and t.device == plain_backend
    assert t.tolist() == [[2.0, 6.0], [4.0, 10.0]]
    v = t.T  # a view: writes reach t
    v -= 1
    assert t.tolist() == [[1.0, 5.0], [3.0, 9.0]]
    t.sqrt_().sigmoid_()
    np.testing.assert_allclose(t.numpy(), 1 / (1 + np.exp(-np.sqrt([[1.0, 5.0], [3.0, 9.0]]))),
                               rtol=1e-6)
    f = pt.tensor([1.0], device=plain_backend)
    f += pt.tensor([0.5], dtype=pt.float64, device=plain_backend)
    assert f.dtype is pt.float32 and f.tolist() == [1.5]
    i = pt.tensor([1, 2], device=plain_backend)
    with pytest.raises(TypeError, match="add_: result type float32"):
        i += 1.5
    i.clamp_(max=1)
    assert i.tolist() == [1, 1]


def test_isclose_and_relu_defaults_match_the_kernels(plain_backend):
    a = [1.0, np.inf, np.nan, -np.inf, 1.0, 2.0]
    b = [1.0 + 1e-7, np.inf, np.nan, np.inf, 1.1, 2.0 + 1e-9]
    for equal_nan in (False, True):
        for rtol, atol in ((1e-5, 1e-8), (0.2, 0.0), (0.0, 0.0)):
            ours = pt.isclose(pt.tensor(a, device=plain_backend),
                              pt.tensor(b, device=plain_backend), rtol, atol, equal_nan)
            assert ours.device == plain_backend
            ref = np.isclose(np.float32(a), np.float32(b), rtol, atol, equal_nan)
            assert ours.tolist() == ref.tolist(), (rtol, atol, equal_nan)
    x = pt.tensor([-1.5, 0.0, 2.0], device=plain_backend)
    assert pt.relu(x).tolist() == [0.0, 0.0, 2.0] and pt.relu(x).device == plain_backend
    assert pt.relu(pt.tensor([-3, 4], dtype=pt.int8, device=plain_backend)).dtype is pt.int8
