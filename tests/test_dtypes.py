"""dtypes: promotion (vs a fixed table and PyTorch), weak scalars, result_type, can_cast,
finfo/iinfo (vs NumPy), the default dtype, and the Array API inspection namespace."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
from polyten.api.dtypes import DTYPES
from polyten.api.namespace_info import __array_namespace_info__ as namespace_info

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
         "float64", "complex64", "complex128"]
_ABBREV = {"b": "bool", "u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32",
           "i64": "int64", "f16": "float16", "bf16": "bfloat16", "f32": "float32",
           "f64": "float64", "c64": "complex64", "c128": "complex128"}
# promote_types(row, column), columns in NAMES order (PyTorch's table, frozen here)
PROMOTION = {
    "bool": "b u8 i8 i16 i32 i64 f16 bf16 f32 f64 c64 c128",
    "uint8": "u8 u8 i16 i16 i32 i64 f16 bf16 f32 f64 c64 c128",
    "int8": "i8 i16 i8 i16 i32 i64 f16 bf16 f32 f64 c64 c128",
    "int16": "i16 i16 i16 i16 i32 i64 f16 bf16 f32 f64 c64 c128",
    "int32": "i32 i32 i32 i32 i32 i64 f16 bf16 f32 f64 c64 c128",
    "int64": "i64 i64 i64 i64 i64 i64 f16 bf16 f32 f64 c64 c128",
    "float16": "f16 f16 f16 f16 f16 f16 f16 f32 f32 f64 c64 c128",
    "bfloat16": "bf16 bf16 bf16 bf16 bf16 bf16 f32 bf16 f32 f64 c64 c128",
    "float32": "f32 f32 f32 f32 f32 f32 f32 f32 f32 f64 c64 c128",
    "float64": "f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 c128 c128",
    "complex64": "c64 c64 c64 c64 c64 c64 c64 c64 c64 c128 c64 c128",
    "complex128": "c128 c128 c128 c128 c128 c128 c128 c128 c128 c128 c128 c128",
}


@pytest.fixture
def default_float64():
    pt.set_default_dtype(pt.float64)
    try:
        yield
    finally:
        pt.set_default_dtype(pt.float32)


@pytest.mark.parametrize("a", NAMES)
def test_promotion_table(a):
    row = [_ABBREV[x] for x in PROMOTION[a].split()]
    for b, expected in zip(NAMES, row):
        assert pt.promote_types(a, b).name == expected, (a, b)
        assert pt.promote_types(DTYPES[a], DTYPES[b]) is DTYPES[expected]
        assert pt.promote_types(b, a).name == expected  # symmetric


def test_promotion_against_torch():
    torch = pytest.importorskip("torch")
    for a in NAMES:
        for b in NAMES:
            t = torch.promote_types(getattr(torch, a), getattr(torch, b))
            assert pt.promote_types(a, b).name == str(t).replace("torch.", ""), (a, b)


def test_can_cast_against_torch():
    torch = pytest.importorskip("torch")
    for a in NAMES:
        for b in NAMES:
            assert pt.can_cast(DTYPES[a], DTYPES[b]) == torch.can_cast(
                getattr(torch, a), getattr(torch, b)), (a, b)


def test_can_cast_rules():
    assert pt.can_cast(pt.int64, pt.float16)
    assert pt.can_cast(pt.float64, pt.float16)  # same kind: allowed (PyTorch's rule)
    assert not pt.can_cast(pt.float32, pt.int64)
    assert not pt.can_cast(pt.complex64, pt.float64)
    assert not pt.can_cast(pt.int8, pt.bool)
    assert pt.can_cast(pt.bool, pt.uint8)
    assert pt.can_cast(pt.tensor([1.0]), pt.complex64)  # a tensor stands for its dtype


@pytest.mark.parametrize("make, scalar, expected", [
    (lambda: pt.tensor([1, 2]), 1.5, pt.float32),            # int tensor * float -> default
    (lambda: pt.tensor([1, 2], dtype=pt.int8), 2, pt.int8),   # int scalar keeps int8
    (lambda: pt.tensor([1.0], dtype=pt.float16), 2.0, pt.float16),
    (lambda: pt.tensor([1.0], dtype=pt.float16), 2, pt.float16),
    (lambda: pt.tensor([True]), 1, pt.int64),
    (lambda: pt.tensor([True]), True, pt.bool),
    (lambda: pt.tensor([True]), 1.0, pt.float32),
    (lambda: pt.tensor([1], dtype=pt.uint8), 5, pt.uint8),
    (lambda: pt.tensor([1.0], dtype=pt.float64), 2, pt.float64),
    (lambda: pt.tensor([1.0]), 1j, pt.complex64),
    (lambda: pt.tensor([1.0], dtype=pt.float64), 1j, pt.complex128),
    (lambda: pt.tensor([1], dtype=pt.int32), 1j, pt.complex64),
    (lambda: pt.tensor([1j], dtype=pt.complex64), 2.0, pt.complex64),
])
def test_weak_python_scalars(make, scalar, expected):
    t = make()
    assert pt.result_type(t, scalar) is expected
    assert (t * scalar).dtype is expected
    assert (scalar * t).dtype is expected


def test_weak_scalars_values_against_torch():
    torch = pytest.importorskip("torch")
    cases = [([1, 2], None, 1.5), ([1.0, 2.0], "float16", 2.0), ([True, False], None, 1),
             ([3, 4], "int8", 2), ([1.5], "float64", 2), ([1, 2], "int32", 0.5)]
    for data, dt, s in cases:
        p = pt.tensor(data, dtype=dt and getattr(pt, dt))
        t = torch.tensor(data, dtype=dt and getattr(torch, dt))
        assert (p * s).dtype.name == str((t * s).dtype)[6:]
        np.testing.assert_allclose(host(p * s), (t * s).numpy())
        assert (p + s).dtype.name == str((t + s).dtype)[6:]


def host(t):
    return np.asarray(t.numpy())


def test_int8_plus_out_of_range_python_int():
    """``int8_tensor + 1000``: the scalar is weak, so the result dtype is int8.

    PyTorch wraps the value modulo 256 (1 + 1000 -> -23).  polyten must either do the same or
    refuse with an OverflowError that names the op and the dtype -- never a raw NumPy error.
    """
    t = pt.tensor([1], dtype=pt.int8)
    assert pt.result_type(t, 1000) is pt.int8
    try:
        out = t + 1000
    except OverflowError as exc:
        assert "add" in str(exc) and "int8" in str(exc), str(exc)
    else:
        assert out.dtype is pt.int8 and out.tolist() == [-23]


def test_zero_dim_tensors_are_not_weak():
    # the Array API rule (polyten) -- PyTorch would give float32 here
    a = pt.tensor([1.0, 2.0])
    b = pt.tensor(1.0, dtype=pt.float64)
    assert pt.result_type(a, b) is pt.float64
    assert (a + b).dtype is pt.float64


def test_result_type():
    assert pt.result_type(pt.int8, pt.uint8) is pt.int16
    assert pt.result_type(pt.tensor([1], dtype=pt.int32), pt.float16) is pt.float16
    assert pt.result_type("float32", "complex64") is pt.complex64
    assert pt.result_type(pt.int64, 1.0) is pt.float32
    assert pt.result_type(1, 2.0) is pt.float32  # scalars alone: promote as Python numbers
    assert pt.result_type(True) is pt.bool
    assert pt.result_type(pt.tensor([1.0]), pt.tensor([1], dtype=pt.int64), 1j) is pt.complex64
    with pytest.raises(ValueError, match="result_type: at least one"):
        pt.result_type()


def test_result_type_against_torch():
    torch = pytest.importorskip("torch")
    for dt in NAMES:
        for s in (1, 1.5, True, 1j):
            if dt == "float16" and isinstance(s, complex):
                continue  # torch has complex32, polyten does not (float16 + 1j -> complex64)
            t = torch.zeros(1, dtype=getattr(torch, dt))
            p = pt.zeros(1, dtype=getattr(pt, dt))
            assert pt.result_type(p, s).name == str(torch.result_type(t, s))[6:], (dt, s)


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_numpy(name):
    f, n = pt.finfo(getattr(pt, name)), np.finfo(name)
    assert f.bits == n.bits
    assert f.eps == float(n.eps)
    assert f.max == float(n.max) and f.min == float(n.min)
    assert f.tiny == float(n.tiny) and f.smallest_normal == float(n.smallest_normal)
    assert f.smallest_subnormal == float(n.smallest_subnormal)
    # NumPy stores resolution in the dtype itself; polyten (like torch) as a Python float
    assert f.resolution == 10.0 ** -n.precision
    assert f.resolution == pytest.approx(float(n.resolution), rel=1e-3)
    assert f.dtype is getattr(pt, name)
    assert name in repr(f)


def test_finfo_of_complex_and_default():
    assert pt.finfo(pt.complex64).dtype is pt.float32
    assert pt.finfo(pt.complex128).eps == float(np.finfo(np.float64).eps)
    assert pt.finfo().dtype is pt.float32
    assert pt.finfo(pt.tensor([1.0]).dtype).bits == 32
    with pytest.raises(TypeError, match="finfo.*not a floating dtype.*iinfo"):
        pt.finfo(pt.int32)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_numpy(name):
    i, n = pt.iinfo(getattr(pt, name)), np.iinfo(name)
    assert (i.min, i.max, i.bits) == (int(n.min), int(n.max), n.bits)
    assert i.dtype is getattr(pt, name)


def test_iinfo_errors():
    with pytest.raises(TypeError, match="iinfo.*not an integer dtype.*finfo"):
        pt.iinfo(pt.float32)


def test_set_default_dtype(default_float64):
    assert pt.get_default_dtype() is pt.float64
    assert pt.tensor(1.0).dtype is pt.float64
    assert pt.tensor([1, 2]).dtype is pt.int64
    assert pt.arange(0.0, 2.0).dtype is pt.float64
    assert pt.zeros(2).dtype is pt.float64
    assert pt.ones(1).dtype is pt.float64
    assert (pt.tensor([1, 2]) * 0.5).dtype is pt.float64
    assert (pt.tensor([1, 2]) / 2).dtype is pt.float64
    assert pt.finfo().dtype is pt.float64


def test_default_dtype_is_restored_by_fixture():
    assert pt.get_default_dtype() is pt.float32
    assert pt.tensor(1.0).dtype is pt.float32


def test_set_default_dtype_errors():
    with pytest.raises(TypeError, match="set_default_dtype: only floating dtypes.*int64"):
        pt.set_default_dtype(pt.int64)
    with pytest.raises(TypeError, match="not a polyten dtype"):
        pt.set_default_dtype("float8")
    assert pt.get_default_dtype() is pt.float32


def test_dtype_spellings():
    from polyten.api.dtypes import to_dtype
    assert to_dtype("float32") is pt.float32
    assert to_dtype("polyten.int64") is pt.int64
    assert to_dtype(np.float16) is pt.float16
    assert to_dtype(np.dtype("complex128")) is pt.complex128
    assert to_dtype(float) is pt.float32 and to_dtype(int) is pt.int64
    assert to_dtype(bool) is pt.bool and to_dtype(complex) is pt.complex64
    assert to_dtype("double") is pt.float64 and to_dtype("long") is pt.int64
    with pytest.raises(TypeError, match="is not a polyten dtype"):
        to_dtype("uint16")


def test_dtype_spellings_from_torch():
    torch = pytest.importorskip("torch")
    from polyten.api.dtypes import to_dtype
    for name in NAMES:
        assert to_dtype(getattr(torch, name)) is DTYPES[name]


def test_dtype_attributes():
    assert pt.float32.itemsize == 4 and pt.complex128.itemsize == 16
    assert pt.float16.is_floating_point and not pt.int8.is_floating_point
    assert pt.complex64.is_complex and pt.int8.is_signed and not pt.uint8.is_signed
    assert repr(pt.float64) == "polyten.float64"
    assert pt.half is pt.float16 and pt.double is pt.float64 and pt.long is pt.int64
    assert pt.float32.to_complex() is pt.complex64 and pt.complex128.to_real() is pt.float64


@pytest.mark.parametrize("kind, members", [
    ("bool", {"bool"}), ("signed integer", {"int8", "int16", "int32", "int64"}),
    ("unsigned integer", {"uint8"}), ("integral", {"uint8", "int8", "int16", "int32", "int64"}),
    ("real floating", {"float16", "bfloat16", "float32", "float64"}),
    ("complex floating", {"complex64", "complex128"}),
    ("numeric", set(NAMES) - {"bool"}),
    (("bool", "complex floating"), {"bool", "complex64", "complex128"}),
])
def test_isdtype(kind, members):
    assert {n for n in NAMES if pt.isdtype(DTYPES[n], kind)} == members


def test_isdtype_errors():
    with pytest.raises(ValueError, match="isdtype: unknown kind 'floats'"):
        pt.isdtype(pt.float32, "floats")


# ---------------------------------------------------------- Array API inspection namespace --
def test_namespace_info_capabilities_and_devices():
    info = namespace_info()
    caps = info.capabilities()
    assert caps == {"boolean indexing": True, "data-dependent shapes": True,
                    "max dimensions": 64}
    assert info.default_device() == pt.get_default_device()
    devices = info.devices()
    assert pt.device("cpu") in devices
    assert all(isinstance(d, pt.Device) for d in devices)


def test_namespace_info_lists_loaded_extra_backends(cpu2):
    assert cpu2 in namespace_info().devices()
    assert namespace_info().dtypes(device=cpu2)["float32"] is pt.float32


def test_namespace_info_dtypes():
    info = namespace_info()
    all_ = info.dtypes()
    assert list(all_) == ["bool", "int8", "int16", "int32", "int64", "uint8", "float32",
                          "float64", "complex64", "complex128"]
    assert all(all_[n] is DTYPES[n] for n in all_)
    assert set(info.dtypes(kind="real floating")) == {"float32", "float64"}
    assert set(info.dtypes(kind="integral")) == {"int8", "int16", "int32", "int64", "uint8"}
    assert set(info.dtypes(kind=("bool", "complex floating"))) == {"bool", "complex64",
                                                                   "complex128"}
    assert set(info.dtypes(device="cpu", kind="unsigned integer")) == {"uint8"}
    with pytest.raises(ValueError, match="isdtype: unknown kind"):
        info.dtypes(kind="floats")
    with pytest.raises(ValueError, match="invalid device string"):
        info.dtypes(device="cpu:x:1")


def test_namespace_info_default_dtypes(default_float64):
    d = namespace_info().default_dtypes()
    assert d == {"real floating": pt.float64, "complex floating": pt.complex128,
                 "integral": pt.int64, "indexing": pt.int64}
    assert namespace_info().default_dtypes(device="cpu")["integral"] is pt.int64


def test_namespace_info_is_exported_at_top_level():
    info = pt.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] is pt.float32


def test_float64_kernels_without_ml_dtypes():
    """Without ml_dtypes (no bfloat16), float64 takes the float64 paths: NumPy reads
    ``dtype == None`` as ``dtype == float64``, which once sent float64 ``where`` / ``tril`` /
    ``triu`` / sorts / ``nan_to_num`` down the bfloat16 ones (bit views, float32 copies)."""
    import subprocess
    import sys
    code = """
import sys
sys.modules["ml_dtypes"] = None  # import ml_dtypes raises ImportError
import numpy as np
import polyten as pt
import polyten.nn.functional as F
a = np.array([[1 + 1e-12, -2.5, np.nan], [3.0, 1.0, np.inf]])
t = pt.tensor(a)
assert t.dtype is pt.float64
assert np.array_equal(pt.where(t > 0, t, t * 2).numpy(), np.where(a > 0, a, a * 2),
                      equal_nan=True)
assert np.array_equal(pt.tril(t).numpy(), np.tril(a), equal_nan=True)
assert np.array_equal(pt.triu(t, 1).numpy(), np.triu(a, 1), equal_nan=True)
v, i = pt.sort(pt.tensor([1 + 1e-12, 1.0, 1 + 2e-12], dtype=pt.float64))
assert i.tolist() == [1, 0, 2] and v.tolist() == [1.0, 1 + 1e-12, 1 + 2e-12]
assert np.array_equal(pt.nan_to_num(t).numpy(), np.nan_to_num(a))
x = pt.tensor([-4.0, -1.0, 0.5, 3.5], dtype=pt.float64, requires_grad=True)
F.logsigmoid(x).sum().backward()
np.testing.assert_allclose(x.grad.numpy(), 1 / (1 + np.exp([-4.0, -1.0, 0.5, 3.5])), rtol=1e-12)
np.testing.assert_allclose(F.hardswish(x).detach().numpy(),
                           [0.0, -1 / 3, 0.5 * 3.5 / 6, 3.5], rtol=1e-12)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout + r.stderr)[-3000:]
