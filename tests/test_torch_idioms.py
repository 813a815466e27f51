"""PyTorch idioms that everyday code relies on: ``p.data``, ``t.stride()``, ``x.select``,
``x.type_as``, ``x.softmax`` / ``torch.softmax``.  Checked against NumPy and, where installed,
PyTorch itself."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt


def _torch():
    return pytest.importorskip("torch")


def test_select_is_a_view_of_one_index():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = pt.tensor(a)
    for dim, i in [(0, 1), (1, -1), (2, 0), (-1, 3)]:
        np.testing.assert_array_equal(x.select(dim, i).numpy(), np.take(a, i, axis=dim))
    v = pt.select(x, 1, 2)
    v.fill_(-1.0)
    assert (x[:, 2] == -1).all()  # a view: writes reach x
    with pytest.raises(IndexError, match=r"select: index 3 is out of range for dimension 1 "
                                         r"with size 3 \(shape \(2, 3, 4\)\)"):
        x.select(1, 3)
    with pytest.raises(IndexError, match="0-d"):
        pt.tensor(1.0).select(0, 0)


def test_select_gradient():
    torch = _torch()
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = pt.tensor(a, requires_grad=True)
    (x.select(1, 2) * pt.tensor([1.0, 2.0, 3.0])).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    (t.select(1, 2) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_stride_in_elements():
    torch = _torch()
    a = np.arange(60.0, dtype=np.float32).reshape(3, 4, 5)
    x, t = pt.tensor(a), torch.tensor(a)
    assert x.stride() == t.stride() == (20, 5, 1)
    assert x.transpose(0, 2).stride() == t.transpose(0, 2).stride()
    assert x[:, ::2].stride() == t[:, ::2].stride()
    assert x.stride(0) == 20 and x.stride(-1) == 1
    assert pt.tensor(3.0).stride() == ()


def test_data_shares_memory_outside_the_graph():
    p = pt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = p.data
    assert not d.requires_grad and d.grad_fn is None
    d.mul_(2.0)  # an update that autograd does not see (the old parameter-update idiom)
    assert p.tolist() == [2.0, 4.0, 6.0] and p.requires_grad
    y = p * p
    p.data.add_(1.0)  # not counted as an in-place change of a saved tensor
    y.sum().backward()
    p.data = pt.zeros(2, dtype=pt.float64)
    assert p.shape == (2,) and p.dtype == pt.float64 and p.requires_grad
    with pytest.raises(TypeError, match="data: expected a tensor"):
        p.data = [1.0, 2.0]


def test_type_as_takes_dtype_and_device():
    x = pt.tensor([1.5, 2.5])
    y = x.type_as(pt.tensor([1, 2]))
    assert y.dtype == pt.int64 and y.tolist() == [1, 2]
    assert x.type_as(x) is x
    with pytest.raises(TypeError, match="type_as: expected a tensor"):
        x.type_as(pt.int64)


def test_softmax_functions_and_methods():
    torch = _torch()
    a = np.random.default_rng(1).standard_normal((3, 5))
    x, t = pt.tensor(a), torch.tensor(a)
    for got, want in [(x.softmax(1), t.softmax(1)), (pt.softmax(x, 0), torch.softmax(t, 0)),
                      (x.log_softmax(dim=-1), t.log_softmax(dim=-1)),
                      (pt.log_softmax(x, 1), torch.log_softmax(t, 1)),
                      (x.float().softmax(1, dtype=pt.float64),
                       t.float().softmax(1, dtype=torch.float64))]:
        assert got.dtype.name == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
