"""Shape ops against NumPy (float64 references computed here) and PyTorch where installed.

Views must share memory where PyTorch's do: checked by writing through the view and reading
the base.  Every error path is checked for its class and the words of its message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import cpu_clone

import polyten as pt


def P(a, dtype=None):
    """A polyten tensor from a NumPy array (or nested lists)."""
    return pt.tensor(np.asarray(a), dtype=dtype)


def N(t):
    return np.asarray(t.numpy())


def same(t, ref, dtype=None):
    """``t`` equals the NumPy reference ``ref`` in shape, values and (polyten) dtype."""
    ref = np.asarray(ref)
    assert tuple(t.shape) == ref.shape, (tuple(t.shape), ref.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    np.testing.assert_array_equal(N(t).astype(ref.dtype), ref)


A23 = np.arange(6, dtype=np.float64).reshape(2, 3)
A234 = np.arange(24, dtype=np.float64).reshape(2, 3, 4)


@pytest.fixture
def nofused():
    """A cpu clone without the fused kernels of composite ops: their defaults run."""
    with cpu_clone("nofused", drop=("stack", "masked_fill")) as dev:
        yield dev


# ------------------------------------------------------------------------------- reshape ---
@pytest.mark.parametrize("shape", [(6,), (3, 2), (-1,), (1, -1), (3, 1, 2), (-1, 2, 1)])
def test_reshape_matches_numpy_and_is_a_view(shape):
    x = P(A23)
    r = x.reshape(*shape)
    same(r, A23.reshape(shape), pt.float64)
    same(pt.reshape(x, shape), A23.reshape(shape))
    r.view(-1)[0] = 100.0
    assert x[0, 0].item() == 100.0  # shares memory with the base


def test_reshape_of_non_contiguous_copies_values_correctly():
    x = P(A234).permute(2, 0, 1)
    same(x.reshape(4, 6), A234.transpose(2, 0, 1).reshape(4, 6))
    same(x.flatten(), A234.transpose(2, 0, 1).ravel())
    s = P(A234)[:, ::2]
    same(s.reshape(-1), A234[:, ::2].reshape(-1))


def test_reshape_0d_and_empty():
    z = pt.tensor(3.5)
    same(z.reshape(1, 1), np.array([[3.5]]))
    same(z.reshape(-1), np.array([3.5]))
    same(P(np.array([[3.5]])).reshape(()), np.array(3.5))
    e = pt.zeros(0, 3)
    assert e.reshape(3, 0).shape == (3, 0) and e.reshape(-1).shape == (0,)
    assert e.reshape(2, 0, 5).shape == (2, 0, 5)


def test_reshape_errors():
    x = P(A23)
    with pytest.raises(ValueError) as ei:
        x.reshape(4)
    assert str(ei.value) == ("reshape: cannot reshape tensor of 6 elements (shape (2, 3)) into "
                             "shape (4,)")
    with pytest.raises(ValueError, match=r"reshape: .*shape \(4, -1\)"):
        x.reshape(4, -1)
    with pytest.raises(ValueError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match="invalid size -2"):
        x.reshape(-2, 3)
    with pytest.raises(TypeError, match="reshape: shape entries must be ints"):
        x.reshape(2.0, 3)
    with pytest.raises(ValueError, match="ambiguous"):
        pt.zeros(0, 3).reshape(0, -1)
    with pytest.raises(TypeError, match="reshape: expected a tensor"):
        pt.reshape([1, 2], (2,))


def test_reshape_copy_argument():
    x = P(A23)
    c = pt.reshape(x, (3, 2), copy=True)
    c[0, 0] = 50.0
    assert x[0, 0].item() == 0.0
    v = pt.reshape(x, (3, 2), copy=False)
    v[0, 0] = 50.0
    assert x[0, 0].item() == 50.0
    with pytest.raises(ValueError, match="copy=False"):
        pt.reshape(x.T, (6,), copy=False)


def test_view_shares_memory_and_refuses_incompatible_layouts():
    x = P(A234)
    v = x.view(6, 4)
    v[1, 1] = -7.0
    assert N(x)[0, 1, 1] == -7.0
    same(x.view(-1, 12), N(x).reshape(-1, 12))
    with pytest.raises(RuntimeError) as ei:
        x.transpose(0, 2).view(24)
    assert "view" in str(ei.value) and ".reshape(" in str(ei.value)
    # inserting/removing size-1 dims is always a view, even of non-contiguous tensors
    t = x.transpose(0, 2)
    w = t.view(4, 1, 3, 2)
    w[0, 0, 0, 0] = 99.0
    assert N(x)[0, 0, 0] == 99.0
    with pytest.raises(TypeError, match="view"):
        x.view(pt.int32)
    with pytest.raises(ValueError, match="view: cannot reshape tensor of 24 elements"):
        x.view(5, 5)
    y = P(np.ones(4))
    same(y.view_as(P(np.ones((2, 2)))), np.ones((2, 2)))
    same(y.reshape_as(P(np.ones((4, 1)))), np.ones((4, 1)))


def test_flatten_unflatten_ravel():
    x = P(A234)
    same(x.flatten(), A234.ravel())
    same(x.flatten(1), A234.reshape(2, 12))
    same(pt.flatten(x, 0, 1), A234.reshape(6, 4))
    same(x.flatten(-2, -1), A234.reshape(2, 12))
    same(pt.tensor(2.0).flatten(), np.array([2.0]))
    same(x.unflatten(2, (2, 2)), A234.reshape(2, 3, 2, 2))
    same(pt.unflatten(x, -1, (-1, 2)), A234.reshape(2, 3, 2, 2))
    same(pt.ravel(x.mT), np.swapaxes(A234, -1, -2).ravel())
    with pytest.raises(ValueError, match="flatten: start_dim"):
        x.flatten(2, 0)
    with pytest.raises(ValueError, match=r"unflatten: sizes \(3, 2\).*size of dim 2 \(4\)"):
        x.unflatten(2, (3, 2))
    with pytest.raises(IndexError, match="flatten: dimension out of range"):
        x.flatten(5)
    f = x.flatten()
    f[3] = -1.0
    assert N(x)[0, 0, 3] == -1.0


# ------------------------------------------------------------------------------ permuting ---
def test_permute_transpose_and_views():
    x = P(A234)
    same(x.permute(2, 0, 1), A234.transpose(2, 0, 1))
    same(pt.permute(x, (1, 2, 0)), A234.transpose(1, 2, 0))
    same(pt.permute_dims(x, (0, -1, 1)), A234.transpose(0, 2, 1))
    same(x.transpose(0, 2), A234.swapaxes(0, 2))
    same(pt.swapaxes(x, 1, -1), A234.swapaxes(1, 2))
    same(pt.swapdims(x, 0, 0), A234)
    same(P(A23).t(), A23.T)
    same(pt.t(P(np.arange(3.0))), np.arange(3.0))
    same(x.mT, np.swapaxes(A234, -1, -2))
    p = x.permute(2, 1, 0)
    p[3, 2, 1] = 1000.0
    assert N(x)[1, 2, 3] == 1000.0
    tr = x.transpose(1, 2)
    tr[0, 0, 1] = -5.0
    assert N(x)[0, 1, 0] == -5.0
    mt = x.mT
    mt[1, 3, 2] = -6.0
    assert N(x)[1, 2, 3] == -6.0


def test_T_reverses_dims_and_warns_for_more_than_2_dims():
    x = P(A23)
    same(x.T, A23.T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same(P(np.arange(3.0)).T, np.arange(3.0))
    with pytest.warns(UserWarning, match="deprecated"):
        y = P(A234).T
    same(y, A234.transpose(2, 1, 0))


def test_mH_and_H_conjugate():
    c = np.array([[1 + 2j, 3 - 1j], [0.5j, 2]], dtype=np.complex128)
    same(P(c).mH, c.conj().T)
    same(P(c).H, c.conj().T)
    same(P(A23).mH, A23.T)


def test_permute_errors():
    x = P(A23)
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0\) names a dimension more"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"permute: dims \(0,\) has 1 entries but the tensor "
                                         r"has 2 dimensions"):
        x.permute(0)
    with pytest.raises(IndexError, match="permute: dimension out of range"):
        x.permute(0, 2)
    with pytest.raises(IndexError, match="transpose: dimension out of range"):
        x.transpose(0, 3)
    with pytest.raises(ValueError, match=r"t: expects a tensor with <= 2 dimensions.*\(2, 3, 4\)"):
        P(A234).t()
    with pytest.raises(ValueError, match=r"mT: tensor must have at least 2 dimensions"):
        P(np.ones(3)).mT


def test_movedim():
    x = P(A234)
    same(pt.movedim(x, 0, -1), np.moveaxis(A234, 0, -1))
    same(x.movedim((0, 1), (2, 0)), np.moveaxis(A234, (0, 1), (2, 0)))
    same(pt.moveaxis(x, -1, 0), np.moveaxis(A234, -1, 0))
    with pytest.raises(ValueError, match="movedim: source"):
        x.movedim((0, 1), 2)
    with pytest.raises(ValueError, match="movedim: repeated dim"):
        x.movedim((0, 0), (1, 2))


# ----------------------------------------------------------------------- squeeze & friends ---
def test_squeeze_unsqueeze_expand_dims():
    a = np.zeros((1, 3, 1, 2))
    x = P(a)
    same(x.squeeze(), a.squeeze())
    same(x.squeeze(0), a.squeeze(0))
    same(x.squeeze((0, 2)), a.squeeze((0, 2)))
    same(x.squeeze(1), a)  # PyTorch: a named dim of size != 1 is left alone
    same(pt.squeeze(x, axis=2), a.squeeze(2))
    with pytest.raises(ValueError, match="squeeze: axis 1 has size 3"):
        pt.squeeze(x, axis=1)  # Array API: an error
    same(pt.tensor(1.0).squeeze(0), np.array(1.0))
    same(x.unsqueeze(0), a[None])
    same(pt.unsqueeze(x, -1), a[..., None])
    same(pt.expand_dims(x, axis=1), np.expand_dims(a, 1))
    same(pt.expand_dims(x, axis=(0, -1)), np.expand_dims(a, (0, -1)))
    with pytest.raises(IndexError, match="unsqueeze: dimension out of range"):
        x.unsqueeze(6)
    s = x.squeeze()
    s[2, 1] = 4.0
    assert N(x)[0, 2, 0, 1] == 4.0
    u = P(A23).t().unsqueeze(1)  # non-contiguous input: still a view
    base = u
    u[2, 0, 1] = 8.0
    assert N(base)[2, 0, 1] == 8.0


def test_in_place_shape_methods():
    x = P(np.zeros((1, 3)))
    assert x.squeeze_() is x and x.shape == (3,)
    x.unsqueeze_(1)
    assert x.shape == (3, 1)
    x.t_()
    assert x.shape == (1, 3)
    x.transpose_(0, 1)
    assert x.shape == (3, 1)
    m = P(np.ones((3, 3)))
    v = m[:, :]
    v.tril_()
    same(m, np.tril(np.ones((3, 3))))
    m.triu_(1)
    same(m, np.zeros((3, 3)))


# -------------------------------------------------------------------------- broadcasting ---
def test_expand_and_broadcast_to():
    a = np.arange(3.0)
    x = P(a)
    same(x.expand(2, 3), np.broadcast_to(a, (2, 3)))
    same(x.expand(2, -1), np.broadcast_to(a, (2, 3)))
    same(P(a[:, None]).expand(-1, 4), np.broadcast_to(a[:, None], (3, 4)))
    same(x.expand_as(P(np.zeros((4, 3)))), np.broadcast_to(a, (4, 3)))
    same(pt.broadcast_to(x, (2, 2, 3)), np.broadcast_to(a, (2, 2, 3)))
    e = x.expand(2, 3)
    x[1] = 50.0  # the expanded view sees writes to its base
    assert N(e)[1, 1] == 50.0 and N(e)[0, 1] == 50.0
    with pytest.raises(RuntimeError, match="clone"):
        e[0, 0] = 1.0
    with pytest.raises(RuntimeError, match="clone"):
        e.add_(1)


def test_expand_errors():
    x = P(np.arange(3.0))
    with pytest.raises(ValueError) as ei:
        x.expand(2, 4)
    msg = str(ei.value)
    assert msg.startswith("expand: the expanded size of the tensor (4) must match the existing "
                          "size (3) at non-singleton dimension 1")
    assert "(2, 4)" in msg and "(3,)" in msg
    with pytest.raises(ValueError, match="leading, non-existing dimension 0"):
        x.expand(-1, 3)
    with pytest.raises(ValueError, match=r"number of sizes provided \(1\)"):
        P(A23).expand(3)
    with pytest.raises(ValueError, match="broadcast_to: the expanded size"):
        pt.broadcast_to(x, (2,))


def test_broadcast_tensors_shapes_arrays():
    a, b = np.arange(3.0), np.arange(2.0)[:, None]
    x, y = pt.broadcast_tensors(P(a), P(b))
    ra, rb = np.broadcast_arrays(a, b)
    same(x, ra)
    same(y, rb)
    lst = pt.broadcast_arrays(P(a), P(b))
    assert isinstance(lst, list) and len(lst) == 2
    assert pt.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert pt.broadcast_shapes(3, (2, 1)) == (2, 3)
    assert isinstance(pt.broadcast_shapes((1,), ()), pt.Size)
    with pytest.raises(ValueError, match=r"broadcast_shapes: cannot broadcast shapes \(2,\) "
                                         r"and \(3,\)"):
        pt.broadcast_shapes((2,), (3,))
    with pytest.raises(ValueError, match="broadcast_tensors: cannot broadcast"):
        pt.broadcast_tensors(P(np.ones(2)), P(np.ones(3)))


# -------------------------------------------------------------------------------- joining ---
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_numpy(dim):
    a, b = A23, np.arange(6.0, 12.0).reshape(2, 3)
    same(pt.cat([P(a), P(b)], dim), np.concatenate([a, b], dim))
    same(pt.concat([P(a), P(b)], axis=dim), np.concatenate([a, b], dim))
    same(pt.concatenate((P(a), P(b)), dim=dim), np.concatenate([a, b], dim))


def test_cat_promotes_dtypes_and_handles_non_contiguous_inputs():
    a = pt.tensor([[1, 2], [3, 4]], dtype=pt.int32)
    b = pt.tensor([[0.5, 1.5]], dtype=pt.float32)
    r = pt.cat([a, b])
    same(r, np.array([[1, 2], [3, 4], [0.5, 1.5]]), pt.float32)
    assert pt.cat([a, a.to(pt.int64)]).dtype == pt.int64
    assert pt.cat([pt.tensor([True]), pt.tensor([False])]).dtype == pt.bool
    c = pt.cat([pt.tensor([1 + 1j]), pt.tensor([2.0])])
    same(c, np.array([1 + 1j, 2.0]), pt.complex64)
    t = P(A234).transpose(0, 2)
    same(pt.cat([t, t], 1), np.concatenate([A234.T, A234.T], 1))


def test_cat_array_api_axis_none_and_legacy_empty():
    same(pt.concat([P(A23), P(np.arange(2.0))], axis=None),
         np.concatenate([A23.ravel(), np.arange(2.0)]))
    same(pt.cat([P(A23), pt.zeros(0, dtype=pt.float64)]), A23)  # 1-D empties are skipped
    same(pt.cat([pt.zeros(0, 3), P(A23)]), A23)


def test_cat_errors_name_the_offending_tensor():
    a, b = P(np.ones((2, 3))), P(np.ones((2, 4)))
    with pytest.raises(ValueError) as ei:
        pt.cat([a, a, b])
    msg = str(ei.value)
    assert msg.startswith("cat: sizes of tensors must match except in dimension 0")
    assert "tensor 2 has shape (2, 4)" in msg and "(2, 3)" in msg
    with pytest.raises(ValueError, match=r"cat: tensors must have the same number of "
                                         r"dimensions: tensor 0 has shape \(2, 3\) but tensor 1 "
                                         r"has shape \(3,\)"):
        pt.cat([a, P(np.ones(3))])
    with pytest.raises(ValueError, match=r"zero-dimensional tensor \(at position 0\)"):
        pt.cat([pt.tensor(1.0), pt.tensor(2.0)])
    with pytest.raises(ValueError, match="cat: expected a non-empty list"):
        pt.cat([])
    with pytest.raises(TypeError, match="cat: expected a sequence of tensors, got a single"):
        pt.cat(a)
    with pytest.raises(TypeError, match="cat: expected tensors, but element 1"):
        pt.cat([a, np.ones((2, 3))])
    with pytest.raises(IndexError, match="cat: dimension out of range"):
        pt.cat([a, a], 2)


def test_cat_device_mismatch(cpu2):
    a = pt.ones(2)
    b = pt.ones(2, device=cpu2)
    with pytest.raises(pt.DeviceMismatchError, match="cat: expected all tensors on the same"):
        pt.cat([a, b])
    with pytest.raises(pt.DeviceMismatchError, match="stack"):
        pt.stack([a, b])


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim):
    a, b = A23, -A23
    same(pt.stack([P(a), P(b)], dim), np.stack([a, b], dim))
    same(pt.stack([P(a), P(b)], axis=dim), np.stack([a, b], dim))


def test_stack_promotes_and_errors():
    r = pt.stack([pt.tensor([1, 2], dtype=pt.int32), pt.tensor([1.5, 2.5], dtype=pt.float64)])
    same(r, np.array([[1, 2], [1.5, 2.5]]), pt.float64)
    same(pt.stack([pt.tensor(1.0), pt.tensor(2.0)]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError) as ei:
        pt.stack([P(np.ones((2, 3))), P(np.ones((2, 4)))])
    assert str(ei.value) == ("stack: expects each tensor to be equal size, but got (2, 3) at "
                             "entry 0 and (2, 4) at entry 1")
    with pytest.raises(IndexError, match="stack: dimension out of range"):
        pt.stack([pt.ones(2)], 2)


def test_stack_default_without_fused_kernel(nofused):
    a = pt.tensor(A23, device=nofused)
    r = pt.stack([a, a * 2], 1)
    assert r.device == nofused
    same(r, np.stack([A23, 2 * A23], 1), pt.float64)
    r2 = pt.stack([a.to(pt.float32), pt.tensor(A23, dtype=pt.int64, device=nofused)])
    same(r2, np.stack([A23, A23]), pt.float32)


def test_hstack_vstack_dstack_atleast():
    a, b = np.arange(3.0), np.arange(3.0, 6.0)
    same(pt.hstack([P(a), P(b)]), np.hstack([a, b]))
    same(pt.vstack([P(a), P(b)]), np.vstack([a, b]))
    same(pt.dstack([P(a), P(b)]), np.dstack([a, b]))
    same(pt.hstack([P(A23), P(A23)]), np.hstack([A23, A23]))
    same(pt.atleast_1d(pt.tensor(1.0)), np.atleast_1d(1.0))
    same(pt.atleast_2d(P(a)), np.atleast_2d(a))
    same(pt.atleast_3d(P(A23)), np.atleast_3d(A23))
    same(pt.atleast_3d(P(a)), np.atleast_3d(a))
    r = pt.atleast_2d(P(a), pt.tensor(2.0))
    assert isinstance(r, tuple) and [tuple(t.shape) for t in r] == [(1, 3), (1, 1)]


# ------------------------------------------------------------------------------ splitting ---
def test_split_sizes_and_views():
    x = P(np.arange(10.0))
    parts = x.split(3)
    assert [tuple(p.shape) for p in parts] == [(3,), (3,), (3,), (1,)]
    for p, r in zip(parts, np.split(np.arange(10.0), [3, 6, 9])):
        same(p, r)
    parts = pt.split(x, [2, 5, 3])
    for p, r in zip(parts, np.split(np.arange(10.0), [2, 7])):
        same(p, r)
    parts[1][0] = -1.0  # pieces are views
    assert x[2].item() == -1.0
    y = P(A234)
    cols = y.split(2, dim=-1)
    same(cols[1], A234[..., 2:])
    with pytest.raises(ValueError) as ei:
        x.split([2, 2])
    assert "split sizes [2, 2]" in str(ei.value) and "sum exactly to 10" in str(ei.value)
    with pytest.raises(ValueError, match="split: split_size must be positive"):
        x.split(0)
    assert [tuple(p.shape) for p in pt.zeros(0).split(0)] == [(0,)]
    with pytest.raises(ValueError, match="split: expects a tensor with at least 1 dimension"):
        pt.tensor(1.0).split(1)


def test_chunk_tensor_split_unbind():
    x = P(np.arange(5.0))
    assert [tuple(p.shape) for p in x.chunk(3)] == [(2,), (2,), (1,)]
    assert [tuple(p.shape) for p in pt.chunk(P(np.arange(6.0)), 4)] == [(2,), (2,), (2,)]
    assert [tuple(p.shape) for p in pt.zeros(0).chunk(3)] == [(0,), (0,), (0,)]
    with pytest.raises(ValueError, match="chunk: chunks must be greater than 0"):
        x.chunk(0)
    a = np.arange(7.0)
    for p, r in zip(pt.tensor_split(P(a), 3), np.array_split(a, 3)):
        same(p, r)
    for p, r in zip(P(a).tensor_split([1, 4, 10]), np.split(a, [1, 4, 10])):
        same(p, r)
    rows = P(A234).unbind(1)
    assert len(rows) == 3
    for i, r in enumerate(rows):
        same(r, A234[:, i])
    base = P(A23)
    same(pt.unstack(base, axis=1)[2], A23[:, 2])
    us = pt.unbind(base)
    us[1][2] = 77.0
    assert N(base)[1, 2] == 77.0
    with pytest.raises(ValueError, match="unbind: expects a tensor with at least 1 dimension"):
        pt.tensor(1.0).unbind()


def test_narrow():
    x = P(A234)
    same(x.narrow(2, 1, 2), A234[:, :, 1:3])
    same(pt.narrow(x, 1, -2, 2), A234[:, 1:3])
    n = x.narrow(0, 1, 1)
    n[0, 0, 0] = -9.0
    assert N(x)[1, 0, 0] == -9.0
    with pytest.raises(IndexError) as ei:
        P(np.ones(6)).narrow(0, 5, 2)
    assert "narrow: start (5) + length (2) exceeds dimension size (6)" in str(ei.value)
    with pytest.raises(IndexError, match="narrow: start 7 is out of range"):
        P(np.ones(6)).narrow(0, 7, 0)
    with pytest.raises(ValueError, match="narrow: length must be non-negative"):
        P(np.ones(6)).narrow(0, 0, -1)


# ------------------------------------------------------------------ reordering and tiling ---
def test_flip_is_a_copy_and_matches_numpy():
    x = P(A234)
    same(x.flip(0), np.flip(A234, 0))
    same(x.flip(0, 2), np.flip(A234, (0, 2)))
    same(pt.flip(x, (1,)), np.flip(A234, 1))
    same(pt.flip(x), np.flip(A234))
    same(pt.flip(x, axis=-1), np.flip(A234, -1))
    same(x.flip(dims=(1,)), np.flip(A234, 1))
    f = x.flip(0)
    f[0, 0, 0] = 1e6  # torch.flip copies: the base is unchanged
    assert N(x)[1, 0, 0] == 12.0
    same(pt.fliplr(P(A23)), np.fliplr(A23))
    same(pt.flipud(P(A23)), np.flipud(A23))
    same(P(A234).transpose(0, 2).flip(1), np.flip(A234.T, 1))
    same(pt.tensor(3).flip(()), np.array(3))
    with pytest.raises(ValueError, match="flip: dim .* more than once"):
        x.flip(0, 0)
    with pytest.raises(ValueError, match=r"fliplr: input must be at least 2-D, got shape \(3,\)"):
        pt.fliplr(P(np.ones(3)))
    with pytest.raises(ValueError, match="flipud: input must be at least 1-D"):
        pt.flipud(pt.tensor(1.0))


def test_roll():
    x = P(A234)
    same(x.roll(1), np.roll(A234, 1))
    same(pt.roll(x, 2, 1), np.roll(A234, 2, 1))
    same(pt.roll(x, (1, -1), (0, 2)), np.roll(A234, (1, -1), (0, 2)))
    same(pt.roll(x, shift=-3, axis=-1), np.roll(A234, -3, -1))
    same(x.mT.roll(1, 0), np.roll(np.swapaxes(A234, -1, -2), 1, 0))
    same(pt.roll(pt.tensor(5.0), 3), np.array(5.0))
    with pytest.raises(ValueError, match=r"roll: shifts and dims must align"):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError, match="roll: shifts .* needs dims"):
        x.roll((1, 2))


def test_tile_repeat_and_repeat_interleave():
    a = np.arange(6).reshape(2, 3)
    x = P(a)
    same(x.repeat(2, 1), np.tile(a, (2, 1)), pt.int64)
    same(x.repeat(2, 1, 2), np.tile(a, (2, 1, 2)))
    same(x.repeat((1, 1)), a)
    same(pt.tile(x, (2,)), np.tile(a, 2))
    same(x.tile((3, 1, 1)), np.tile(a, (3, 1, 1)))
    with pytest.raises(ValueError, match=r"repeat: the number of repeat dims \(1\) can not be "
                                         r"smaller than the number of dimensions"):
        x.repeat(2)
    with pytest.raises(ValueError, match="tile: repeats must be non-negative"):
        pt.tile(x, (-1, 1))
    # element repetition: torch.repeat_interleave and the Array API's repeat
    same(pt.repeat_interleave(x, 2), np.repeat(a, 2))
    same(x.repeat_interleave(2, dim=1), np.repeat(a, 2, axis=1))
    same(pt.repeat_interleave(x, [1, 2], dim=0), np.repeat(a, [1, 2], axis=0))
    same(pt.repeat_interleave(x, pt.tensor([0, 1, 3]), dim=1), np.repeat(a, [0, 1, 3], 1))
    same(pt.repeat(x, 3, axis=0), np.repeat(a, 3, axis=0))
    same(pt.repeat(x.T, 2), np.repeat(a.T, 2))
    r = pt.repeat_interleave(P(np.arange(3.0)), 1)
    r[0] = 5.0  # never a read-only alias
    with pytest.raises(ValueError, match="repeat_interleave: repeats has 2 entries"):
        pt.repeat_interleave(x, [1, 2], dim=1)
    with pytest.raises(ValueError, match="repeat_interleave: repeats must be non-negative"):
        pt.repeat_interleave(x, -1)
    with pytest.raises(TypeError, match="repeat_interleave: repeats must be an integer tensor"):
        pt.repeat_interleave(x, pt.tensor([1.0, 2.0]), dim=0)


@pytest.mark.parametrize("k", [-1, 0, 1, 2])
def test_tril_triu(k):
    a = np.arange(1.0, 25.0).reshape(2, 3, 4)
    same(pt.tril(P(a), k), np.tril(a, k))
    same(P(a).triu(diagonal=k), np.triu(a, k))
    same(pt.triu(P(a).mT, k=k), np.triu(np.swapaxes(a, -1, -2), k))
    same(pt.tril(P(a > 10), k), np.tril(a > 10, k), pt.bool)


def test_tril_error():
    with pytest.raises(ValueError, match=r"tril: input tensor must have at least 2 dimensions, "
                                         r"got shape \(3,\)"):
        pt.tril(P(np.ones(3)))


def test_meshgrid():
    a, b, c = np.arange(3.0), np.arange(4.0), np.arange(2.0)
    for got, ref in zip(pt.meshgrid(P(a), P(b)), np.meshgrid(a, b, indexing="ij")):
        same(got, ref)
    for got, ref in zip(pt.meshgrid(P(a), P(b), P(c), indexing="xy"),
                        np.meshgrid(a, b, c, indexing="xy")):
        same(got, ref)
    for got, ref in zip(pt.meshgrid([P(a), P(c)], indexing="ij"), np.meshgrid(a, c,
                                                                             indexing="ij")):
        same(got, ref)
    with pytest.raises(ValueError, match="meshgrid: indexing must be"):
        pt.meshgrid(P(a), indexing="ji")
    with pytest.raises(ValueError, match=r"meshgrid: expects 0-d or 1-d tensors, but tensor 1"):
        pt.meshgrid(P(a), P(A23))
    with pytest.raises(TypeError, match="meshgrid: expects all tensors to have the same dtype"):
        pt.meshgrid(P(a), pt.tensor([1, 2]))


def test_clone_is_independent():
    x = P(A23)
    c = x.clone()
    c[0, 0] = 10.0
    assert x[0, 0].item() == 0.0
    tc = x.T.clone()
    assert tc.is_contiguous()
    same(tc, A23.T)


def test_dtypes_are_kept():
    for dt in (pt.float32, pt.int32, pt.bool, pt.complex64, pt.uint8, pt.float16):
        x = pt.ones(2, 3, dtype=dt)
        for r in (x.reshape(3, 2), x.T, x.flip(0), x.roll(1, 1), x.repeat(1, 2),
                  pt.cat([x, x]), pt.stack([x, x]), x.expand(2, 2, 3), x.unsqueeze(0),
                  pt.tril(x), x.split(1)[0], x.narrow(1, 0, 2)):
            assert r.dtype == dt


# --------------------------------------------------------------------------- vs PyTorch ----
def test_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    x, tx = P(a), torch.from_numpy(a.copy())

    def chk(got, ref):
        ref = ref.numpy()
        assert tuple(got.shape) == ref.shape
        np.testing.assert_array_equal(N(got), ref)

    chk(x.reshape(4, -1), tx.reshape(4, -1))
    chk(x.permute(1, 2, 0), tx.permute(1, 2, 0))
    chk(x.transpose(0, 1).flatten(1), tx.transpose(0, 1).flatten(1))
    chk(x.unflatten(2, (2, -1)), tx.unflatten(2, (2, -1)))
    chk(x[:, :1].squeeze(), tx[:, :1].squeeze())
    chk(x.unsqueeze(-2), tx.unsqueeze(-2))
    chk(x[:, :1].expand(-1, 5, -1), tx[:, :1].expand(-1, 5, -1))
    chk(pt.cat([x, x.flip(1)], 1), torch.cat([tx, tx.flip(1)], 1))
    chk(pt.stack([x, x], -1), torch.stack([tx, tx], -1))
    for g, r in zip(x.split([1, 2], 1), tx.split([1, 2], 1)):
        chk(g, r)
    for g, r in zip(x.chunk(3, -1), tx.chunk(3, -1)):
        chk(g, r)
    for g, r in zip(x.tensor_split(3, 2), tx.tensor_split(3, 2)):
        chk(g, r)
    chk(x.roll((1, 2), (0, 2)), tx.roll((1, 2), (0, 2)))
    chk(x.roll(5), tx.roll(5))
    chk(x.repeat(2, 1, 1, 2), tx.repeat(2, 1, 1, 2))
    chk(pt.tile(x, (2,)), torch.tile(tx, (2,)))
    chk(x.repeat_interleave(2, 1), tx.repeat_interleave(2, 1))
    chk(pt.movedim(x, (0, 2), (1, 0)), torch.movedim(tx, (0, 2), (1, 0)))
    chk(x.narrow(1, 1, 2), tx.narrow(1, 1, 2))
    chk(pt.tril(x, -1), torch.tril(tx, -1))
    chk(pt.triu(x.mT, 1), torch.triu(tx.mT, 1))
    chk(pt.hstack([x, x]), torch.hstack([tx, tx]))
    chk(pt.vstack([x, x]), torch.vstack([tx, tx]))
    for g, r in zip(pt.meshgrid(x[0, 0], x[1, 1]), torch.meshgrid(tx[0, 0], tx[1, 1],
                                                                  indexing="ij")):
        chk(g, r)
    assert pt.cat([pt.ones(2, dtype=pt.int32), pt.ones(2, dtype=pt.float16)]).dtype.name == \
        str(torch.cat([torch.ones(2, dtype=torch.int32),
                       torch.ones(2, dtype=torch.float16)]).dtype).split(".")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chk(x.T, tx.T)
