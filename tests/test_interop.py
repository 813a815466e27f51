"""Interoperability: NumPy, DLPack (NumPy and PyTorch), Python protocols, pickling, .to()."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import polyten as pt


def host(t):
    return np.asarray(t.numpy())


# ---------------------------------------------------------------------------------- NumPy --
def test_numpy_shares_memory_on_cpu():
    t = pt.tensor([1.0, 2.0, 3.0])
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0] = 10.0
    assert t.tolist() == [10.0, 2.0, 3.0]
    assert np.shares_memory(a, t.numpy())


@pytest.mark.parametrize("dtype, npdtype", [
    (pt.bool, np.bool_), (pt.uint8, np.uint8), (pt.int8, np.int8), (pt.int16, np.int16),
    (pt.int32, np.int32), (pt.int64, np.int64), (pt.float16, np.float16),
    (pt.float32, np.float32), (pt.float64, np.float64), (pt.complex64, np.complex64),
    (pt.complex128, np.complex128),
])
def test_numpy_round_trip_every_dtype(dtype, npdtype):
    ref = np.array([[0, 1], [1, 0]]).astype(npdtype)
    t = pt.tensor(ref)
    assert t.dtype is dtype
    out = t.numpy()
    assert out.dtype == npdtype
    np.testing.assert_array_equal(out, ref)
    back = pt.from_numpy(out)
    assert back.dtype is dtype and np.shares_memory(host(back), out)


def test_numpy_of_tensor_requiring_grad():
    t = pt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="numpy.*requires grad.*detach"):
        t.numpy()
    np.testing.assert_array_equal(t.numpy(force=True), [1.0, 1.0])


def test_array_protocol():
    t = pt.tensor([[1, 2], [3, 4]], dtype=pt.int32)
    a = np.asarray(t)
    assert a.dtype == np.int32 and a.shape == (2, 2)
    assert np.shares_memory(a, t.numpy())
    f = np.asarray(t, dtype=np.float64)
    assert f.dtype == np.float64
    np.testing.assert_array_equal(f, [[1, 2], [3, 4]])
    c = np.array(t, copy=True)
    c[0, 0] = 99
    assert t.tolist()[0][0] == 1
    # NumPy ufuncs defer to polyten's operators instead of turning tensors into arrays
    assert isinstance(np.float64(2.0) * t, pt.Tensor)


def test_item_and_tolist():
    assert pt.tensor([2.5]).item() == 2.5 and type(pt.tensor([2.5]).item()) is float
    assert type(pt.tensor(3).item()) is int
    assert pt.tensor(True).item() is True
    assert pt.tensor(1 + 2j).item() == 1 + 2j
    assert pt.tensor([[7]], dtype=pt.uint8).item() == 7
    assert pt.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert pt.tensor(5).tolist() == 5
    assert pt.tensor([0.5], dtype=pt.float16).tolist() == [0.5]
    assert pt.zeros(0, 2).tolist() == []
    with pytest.raises(ValueError, match=r"item\(\): a tensor with 3 elements.*\(3,\)"):
        pt.tensor([1.0, 2.0, 3.0]).item()
    with pytest.raises(ValueError, match="0 elements"):
        pt.zeros(0).item()


def test_python_number_protocols():
    assert float(pt.tensor([2.5])) == 2.5
    assert int(pt.tensor(3.7)) == 3
    assert complex(pt.tensor(1 + 2j)) == 1 + 2j
    assert [10, 20, 30][pt.tensor(1)] == 20  # __index__
    assert f"{pt.tensor(2.5):.2f}" == "2.50"
    with pytest.raises(TypeError, match="integer tensors of a single element"):
        [1, 2][pt.tensor(1.0)]
    with pytest.raises(TypeError, match="integer tensors of a single element"):
        [1, 2][pt.tensor([0, 1])]


# --------------------------------------------------------------------------------- DLPack --
def test_numpy_from_dlpack_shares_memory():
    t = pt.tensor([1.0, 2.0, 3.0], dtype=pt.float64)
    a = np.from_dlpack(t)
    assert a.dtype == np.float64
    a[1] = -5.0
    assert t.tolist() == [1.0, -5.0, 3.0]
    assert t.__dlpack_device__() == (1, 0)


def test_polyten_from_dlpack_of_numpy_shares_memory():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = pt.from_dlpack(a)
    assert t.dtype is pt.int32 and t.shape == (2, 3) and t.device == "cpu"
    a[0, 0] = 42
    assert t.tolist()[0][0] == 42
    c = pt.from_dlpack(a, copy=True)
    a[0, 1] = 43
    assert c.tolist()[0][1] == 1
    assert pt.from_dlpack(t) is t
    with pytest.raises(TypeError, match="from_dlpack: list does not implement __dlpack__"):
        pt.from_dlpack([1, 2])


def test_torch_from_dlpack_shares_memory():
    torch = pytest.importorskip("torch")
    t = pt.tensor([[1.0, 2.0], [3.0, 4.0]])
    tt = torch.from_dlpack(t)
    assert tt.dtype == torch.float32 and tuple(tt.shape) == (2, 2)
    tt[0, 0] = 100.0
    assert t.tolist()[0][0] == 100.0
    b = torch.from_dlpack(pt.tensor([True, False]))
    assert b.dtype == torch.bool and b.tolist() == [True, False]


def test_polyten_from_dlpack_of_torch_shares_memory():
    torch = pytest.importorskip("torch")
    for tdtype, pdtype in [(torch.float32, pt.float32), (torch.int64, pt.int64),
                           (torch.float16, pt.float16), (torch.complex64, pt.complex64),
                           (torch.uint8, pt.uint8)]:
        src = torch.arange(4).to(tdtype)
        t = pt.from_dlpack(src)
        assert t.dtype is pdtype
        np.testing.assert_array_equal(host(t), src.numpy())
    src = torch.zeros(3)
    t = pt.from_dlpack(src)
    src[1] = 7.0
    assert t.tolist() == [0.0, 7.0, 0.0]
    # asarray accepts any DLPack/array-protocol object too
    assert pt.asarray(torch.ones(2, dtype=torch.float64)).dtype is pt.float64


def test_torch_round_trip_non_contiguous():
    torch = pytest.importorskip("torch")
    src = torch.arange(12.0).reshape(3, 4).t()
    t = pt.from_dlpack(src)
    assert t.shape == (4, 3)
    np.testing.assert_array_equal(host(t), src.numpy())
    np.testing.assert_array_equal(torch.from_dlpack(t).numpy(), src.numpy())


# ---------------------------------------------------------------- Python protocols / API ---
def test_array_namespace():
    t = pt.tensor([1.0])
    assert t.__array_namespace__() is pt
    assert t.__array_namespace__(api_version="2024.12") is pt
    assert pt.__array_api_version__ == "2024.12"
    with pytest.raises(ValueError, match="__array_namespace__: unsupported api_version"):
        t.__array_namespace__(api_version="2019.01")


def test_len_iter_bool():
    t = pt.tensor([[1, 2], [3, 4], [5, 6]])
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3 and all(isinstance(r, pt.Tensor) for r in rows)
    assert [r.tolist() for r in rows] == [[1, 2], [3, 4], [5, 6]]
    scalars = list(pt.tensor([1.5, 2.5]))
    assert all(s.shape == () for s in scalars) and [s.item() for s in scalars] == [1.5, 2.5]
    assert list(pt.zeros(0, 2)) == []
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(pt.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(pt.tensor(1.0))
    assert bool(pt.tensor([0.0])) is False and bool(pt.tensor(2)) is True
    assert bool(pt.tensor([[True]])) is True
    with pytest.raises(RuntimeError, match="Boolean value of a tensor with 3 elements is "
                                           "ambiguous.*any\\(\\).*all\\(\\)"):
        bool(pt.tensor([1, 2, 3]))
    with pytest.raises(RuntimeError, match="0 elements"):
        bool(pt.tensor([]))


@pytest.mark.parametrize("dtype", [pt.float32, pt.float64, pt.int8, pt.bool, pt.complex64,
                                   pt.float16, pt.uint8])
def test_pickle_round_trip(dtype):
    t = pt.tensor([[1, 0], [0, 1]], dtype=dtype)
    u = pickle.loads(pickle.dumps(t))
    assert isinstance(u, pt.Tensor)
    assert u.dtype is dtype and u.device == t.device and u.shape == (2, 2)
    np.testing.assert_array_equal(host(u), host(t))
    assert not np.shares_memory(host(u), host(t))


def test_pickle_keeps_device(cpu2):
    t = pt.tensor([1.5, 2.5], device="cpu2")
    u = pickle.loads(pickle.dumps(t))
    assert u.device == cpu2 and u.dtype is pt.float32 and u.tolist() == [1.5, 2.5]


def test_pickle_non_contiguous_and_0d():
    a = np.arange(6.0).reshape(2, 3).T
    u = pickle.loads(pickle.dumps(pt.from_numpy(a)))
    np.testing.assert_array_equal(host(u), a)
    z = pickle.loads(pickle.dumps(pt.tensor(3)))
    assert z.shape == () and z.item() == 3 and z.dtype is pt.int64


# ------------------------------------------------------------------------------- .to() ----
def test_to_dtype_variants():
    t = pt.tensor([1.7, -2.5])
    assert t.to(pt.float64).dtype is pt.float64
    assert t.to(dtype=pt.int32).tolist() == [1, -2]
    assert t.to("float64").dtype is pt.float64
    assert t.to(np.float16).dtype is pt.float16
    assert t.to(pt.tensor([1], dtype=pt.int8)).dtype is pt.int8
    assert t.to("cpu", pt.int64).dtype is pt.int64
    assert t.to(device="cpu", dtype=pt.float16).dtype is pt.float16
    assert t.to(pt.float32, non_blocking=True) is t


def test_to_returns_self_unless_something_changes():
    t = pt.tensor([1.0, 2.0])
    assert t.to() is t
    assert t.to("cpu") is t
    assert t.to(pt.float32) is t
    c = t.to(copy=True)
    assert c is not t and not np.shares_memory(host(c), host(t))
    assert c.tolist() == t.tolist()
    c2 = t.to(pt.float32, copy=True)
    assert c2 is not t


def test_to_other_backend(cpu2):
    t = pt.tensor([[1, 2], [3, 4]], dtype=pt.int16)
    u = t.to("cpu2")
    assert u.device == cpu2 and u.dtype is pt.int16 and u.tolist() == t.tolist()
    assert not np.shares_memory(host(u), host(t))
    v = t.to(pt.zeros(1, device="cpu2"))
    assert v.device == cpu2 and v.dtype is pt.float32
    assert u.to("cpu").device == "cpu"
    assert t.cpu() is t


def test_to_errors():
    t = pt.tensor([1.0])
    with pytest.raises(TypeError, match="to\\(\\): unexpected keyword"):
        t.to(devcie="cpu")
    with pytest.raises(TypeError, match="to\\(\\): expected a device, a dtype or a tensor"):
        t.to(3.5)
    with pytest.raises(ValueError, match="invalid device string"):
        t.to("cpu:x")


def test_type_and_conversion_methods():
    t = pt.tensor([1.5, 2.5])
    assert t.type() == "polyten.FloatTensor"
    assert pt.tensor([1]).type() == "polyten.LongTensor"
    assert pt.tensor([True]).type() == "polyten.BoolTensor"
    assert t.type(pt.int32).dtype is pt.int32
    assert t.type("polyten.DoubleTensor").dtype is pt.float64
    assert t.type("torch.IntTensor").tolist() == [1, 2]
    with pytest.raises(TypeError, match="type\\(\\): unknown tensor type"):
        t.type("polyten.FooTensor")
    for name, dt in [("float", pt.float32), ("double", pt.float64), ("half", pt.float16),
                     ("long", pt.int64), ("int", pt.int32), ("short", pt.int16),
                     ("char", pt.int8), ("byte", pt.uint8), ("bool", pt.bool),
                     ("cfloat", pt.complex64), ("cdouble", pt.complex128)]:
        assert getattr(t, name)().dtype is dt
