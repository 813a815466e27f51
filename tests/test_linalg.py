"""Linear algebra against NumPy float64 references (and PyTorch where installed).

matmul and friends (shapes, 1-D rules, batching, broadcasting, promotion, errors), einsum
(equations and their validation), tensordot, diagonals, and ``polyten.linalg``; the composite
ops' defaults are checked directly and through a backend without fused kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import cpu_clone

import polyten as pt
from polyten.dispatch import dispatcher

RNG = np.random.default_rng(99)


def rand(shape, dtype="float64"):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind in "iu":
        return RNG.integers(0 if dtype.kind == "u" else -4, 5, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def ref64(a):
    a = np.asarray(a)
    if a.dtype.kind == "c":
        return a.astype(np.complex128)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    return a.astype(np.int64)


def check(t, expected, dtype=None, rtol=None):
    assert isinstance(t, pt.Tensor)
    got = t.numpy()
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    if rtol is None:
        rtol = {"float16": 1e-2, "float32": 2e-5, "complex64": 2e-5}.get(str(got.dtype), 1e-9)
    if got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


def spd(n, batch=(), dtype="float64"):
    m = rand(batch + (n, n), dtype)
    mh = np.swapaxes(m, -1, -2).conj()
    return (m @ mh + n * np.eye(n)).astype(dtype)


# ------------------------------------------------------------------------------- matmul ---
MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 5)), ((2, 3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (6, 4, 2)),
    ((0, 4), (4, 3)), ((3, 0), (0, 2)), ((2, 0, 3), (3, 4)), ((0,), (0,)),
]


@pytest.mark.parametrize("sx,sy", MATMUL_SHAPES)
def test_matmul_shapes_match_numpy(sx, sy):
    a, b = rand(sx), rand(sy)
    out = pt.matmul(pt.asarray(a), pt.asarray(b))
    check(out, np.matmul(a, b), pt.float64)
    check(pt.asarray(a) @ pt.asarray(b), np.matmul(a, b))


@pytest.mark.parametrize("dx,dy,want", [
    ("float32", "float32", "float32"), ("float16", "float16", "float16"),
    ("float64", "float64", "float64"), ("int32", "int32", "int32"),
    ("int64", "int64", "int64"), ("uint8", "int8", "int16"),
    ("int32", "float32", "float32"), ("float32", "float64", "float64"),
    ("complex64", "complex64", "complex64"), ("float32", "complex64", "complex64"),
])
def test_matmul_dtypes(dx, dy, want):
    a, b = rand((2, 3, 4), dx), rand((4, 5), dy)
    out = pt.matmul(pt.asarray(a), pt.asarray(b))
    exp = np.matmul(ref64(a), ref64(b))
    check(out, exp, getattr(pt, want), rtol=2e-2 if want == "float16" else None)


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"^matmul: cannot multiply \(3, 4\) by \(5, 2\): "
                                         r"inner dimensions 4 and 5 differ$"):
        pt.matmul(pt.ones(3, 4), pt.ones(5, 2))
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(3,\) by \(4,\)"):
        pt.ones(3) @ pt.ones(4)
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(2, 3\) by \(4,\): inner "
                                         r"dimensions 3 and 4"):
        pt.ones(2, 3) @ pt.ones(4)
    with pytest.raises(ValueError, match=r"matmul: .*at least 1-D.*\(\) and \(5, 2\)"):
        pt.matmul(pt.tensor(1.0), pt.ones(5, 2))
    with pytest.raises(ValueError, match=r"matmul: the batch dimensions of \(2, 3, 4\) and "
                                         r"\(3, 4, 5\) do not broadcast"):
        pt.ones(2, 3, 4) @ pt.ones(3, 4, 5)
    with pytest.raises(TypeError, match="matmul: not supported for bool"):
        pt.matmul(pt.ones(2, 2, dtype=pt.bool), pt.ones(2, 2, dtype=pt.bool))
    with pytest.raises(TypeError, match="unsupported operand"):
        pt.ones(2, 2) @ 3


def test_matmul_non_contiguous_and_foreign_operands():
    a, b = rand((5, 3)), rand((4, 5))
    x = pt.from_numpy(a.T)  # (3, 5), transposed view
    y = pt.from_numpy(b.T)  # (5, 4)
    assert not x.is_contiguous()
    check(x @ y, a.T @ b.T)
    base = np.arange(36.0).reshape(6, 6)
    sliced = pt.asarray(base)[::2, 1::2]
    assert not sliced.is_contiguous()
    check(sliced @ pt.ones(3, 2, dtype=pt.float64), base[::2, 1::2] @ np.ones((3, 2)))
    # NumPy arrays and lists are converted; NumPy defers to our reflected operator
    c = rand((3, 5))
    out = c @ x.T
    assert isinstance(out, pt.Tensor)
    check(out, c @ a)
    check(pt.matmul(x, b.T), a.T @ b.T)
    check(pt.matmul([[1.0, 2.0]], pt.tensor([[3.0], [4.0]])), np.array([[11.0]]))


def test_imatmul_in_place():
    a, b = rand((3, 3)), rand((3, 3))
    x = pt.asarray(a.copy())
    x_id = id(x)
    x @= pt.asarray(b)
    assert id(x) == x_id
    check(x, a @ b)
    y = pt.ones(3, 4)
    with pytest.raises(ValueError, match=r"matmul \(@=\).*\(3, 5\).*\(3, 4\)"):
        y @= pt.ones(4, 5)
    z = pt.ones(2, 2, dtype=pt.int32)
    with pytest.raises(TypeError, match=r"matmul \(@=\).*float32.*int32"):
        z @= pt.ones(2, 2)


def test_mm_bmm_mv_dot_vdot():
    a, b = rand((3, 4), "float32"), rand((4, 2), "float32")
    check(pt.mm(pt.asarray(a), pt.asarray(b)), ref64(a) @ ref64(b), pt.float32)
    check(pt.asarray(a).mm(pt.asarray(b)), ref64(a) @ ref64(b))
    c, d = rand((2, 3, 4)), rand((2, 4, 5))
    check(pt.bmm(pt.asarray(c), pt.asarray(d)), c @ d)
    v = rand((4,))
    check(pt.mv(pt.asarray(a).double(), pt.asarray(v)), ref64(a) @ v)
    check(pt.dot(pt.asarray(v), pt.asarray(v)), v @ v)
    check(pt.asarray(v).dot(pt.tensor([1.0, 1.0, 1.0, 1.0])), v.sum(), pt.float64)
    z = rand((3,), "complex128")
    w = rand((3,), "complex128")
    check(pt.vdot(pt.asarray(z), pt.asarray(w)), np.vdot(z, w))
    check(pt.dot(pt.tensor([1, 2]), pt.tensor([3, 4])), np.array(11), pt.int64)
    check(pt.dot(pt.empty(0), pt.empty(0)), np.array(0.0))


def test_mm_bmm_mv_dot_errors():
    with pytest.raises(ValueError, match=r"mm: expected two 2-D.*\(3,\) and \(3, 4\)"):
        pt.mm(pt.ones(3), pt.ones(3, 4))
    with pytest.raises(ValueError, match=r"mm: cannot multiply \(3, 4\) by \(5, 2\)"):
        pt.mm(pt.ones(3, 4), pt.ones(5, 2))
    with pytest.raises(ValueError, match=r"bmm: expected two 3-D.*\(3, 4\)"):
        pt.bmm(pt.ones(3, 4), pt.ones(2, 4, 5))
    with pytest.raises(ValueError, match=r"bmm: batch sizes differ: 2.*3"):
        pt.bmm(pt.ones(2, 3, 4), pt.ones(3, 4, 5))
    with pytest.raises(ValueError, match=r"bmm: cannot multiply \(2, 3, 4\) by \(2, 5, 5\)"):
        pt.bmm(pt.ones(2, 3, 4), pt.ones(2, 5, 5))
    with pytest.raises(ValueError, match=r"mv: cannot multiply \(2, 3\) by \(4,\)"):
        pt.mv(pt.ones(2, 3), pt.ones(4))
    with pytest.raises(ValueError, match=r"mv: expected a 2-D matrix and a 1-D vector"):
        pt.mv(pt.ones(2, 3), pt.ones(3, 1))
    with pytest.raises(ValueError, match=r"dot: expected two 1-D.*\(3, 1\) and \(3,\)"):
        pt.dot(pt.ones(3, 1), pt.ones(3))
    with pytest.raises(ValueError, match=r"dot: .*different lengths: 3 and 4"):
        pt.dot(pt.ones(3), pt.ones(4))
    with pytest.raises(ValueError, match=r"vdot: .*different lengths"):
        pt.vdot(pt.ones(3), pt.ones(4))
    with pytest.raises(TypeError, match="dot: not supported for bool"):
        pt.dot(pt.ones(2, dtype=pt.bool), pt.ones(2, dtype=pt.bool))


def test_outer_inner_kron():
    a, b = rand((3,)), rand((4,))
    check(pt.outer(pt.asarray(a), pt.asarray(b)), np.outer(a, b))
    check(pt.ger(pt.tensor([1, 2]), pt.tensor([3, 4, 5])), np.outer([1, 2], [3, 4, 5]),
          pt.int64)
    with pytest.raises(ValueError, match=r"outer: expected two 1-D.*\(2, 2\)"):
        pt.outer(pt.ones(2, 2), pt.ones(3))
    m, n = rand((2, 3)), rand((4, 3))
    check(pt.inner(pt.asarray(m), pt.asarray(n)), np.inner(m, n))
    check(pt.inner(pt.tensor(2.0), pt.asarray(n)), 2 * n, pt.float64)
    with pytest.raises(ValueError, match=r"inner: the last dimensions must match.*\(2, 3\).*"
                                         r"\(4,\)"):
        pt.inner(pt.ones(2, 3), pt.ones(4))
    p, q = rand((2, 3)), rand((3, 2, 2))
    check(pt.kron(pt.asarray(p), pt.asarray(q)), np.kron(p, q))
    check(pt.kron(pt.asarray(m), pt.asarray(a)), np.kron(m, a))
    check(pt.asarray(a).kron(pt.asarray(b)), np.kron(a, b))


# ------------------------------------------------------------------------------- einsum ---
EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ba", [(3, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("i...->...", [(3, 2, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    ("ijk,ikl->jl", [(0, 2, 3), (0, 3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum_matches_numpy(eq, shapes):
    ops = [rand(s) for s in shapes]
    out = pt.einsum(eq, *[pt.asarray(o) for o in ops])
    check(out, np.einsum(eq.replace(" ", ""), *ops), pt.float64)


def test_einsum_forms_dtypes_and_torch_ellipsis_sum():
    a, b = rand((3, 4), "float32"), rand((4, 5), "float32")
    out = pt.einsum("ij,jk->ik", [pt.asarray(a), pt.asarray(b)])  # operands as a list
    check(out, ref64(a) @ ref64(b), pt.float32)
    check(pt.einsum("ij,jk", pt.asarray(a), pt.asarray(b).double()), ref64(a) @ ref64(b),
          pt.float64)
    check(pt.einsum("ij,j", pt.asarray(a).half(), pt.ones(4, dtype=pt.float16)),
          ref64(a.astype(np.float16)).sum(1), pt.float16, rtol=1e-2)
    check(pt.einsum("ii", pt.tensor([[1, 2], [3, 4]])), np.array(5), pt.int64)
    # an ellipsis missing from the output is summed over (as PyTorch; NumPy refuses)
    c = rand((4, 2, 3))
    check(pt.einsum("...ij->ij", pt.asarray(c)), c.sum(0))
    # non-contiguous operands
    check(pt.einsum("ij,jk", pt.from_numpy(a.T), pt.from_numpy(a)), ref64(a).T @ ref64(a))


@pytest.mark.parametrize("eq,shapes,match", [
    ("ij,jk->ik", [(2, 2)], r"einsum: equation 'ij,jk->ik' has subscripts for 2 operand\(s\) "
                            r"but 1 operand\(s\) were given"),
    ("ij->i", [(2, 2), (2,)], r"subscripts for 1 operand.*2 operand"),
    ("ijk->i", [(2, 2)], r"einsum: operand 0 has 2 dimension\(s\) \(shape \(2, 2\)\) but its "
                         r"subscripts 'ijk' name 3"),
    ("i...jkl", [(2, 2)], r"operand 0 has 2 dimension.*name 4 besides the ellipsis"),
    ("ij->ii", [(2, 2)], r"output subscript 'i' appears more than once"),
    ("ij->k", [(2, 2)], r"output subscript 'k' .*does not appear"),
    ("ij,jk", [(2, 3), (4, 5)], r"subscript 'j' has size 4 in operand 1.*size 3"),
    ("ii->i", [(2, 3)], r"subscript 'i' is repeated in operand 0.*sizes differ: 2 and 3"),
    ("i1->i", [(2,)], r"invalid subscript '1'"),
    ("i.->i", [(2,)], r"ellipsis"),
    ("...i...->i", [(2, 2)], r"more than one ellipsis"),
    ("i->i->i", [(2,)], r"more than one '->'"),
    ("...i,...i->i", [(2, 3), (4, 3)], r"'\.\.\.' do not broadcast"),
])
def test_einsum_validation_errors(eq, shapes, match):
    with pytest.raises(ValueError, match=match):
        pt.einsum(eq, *[pt.ones(*s) for s in shapes])


def test_einsum_other_errors():
    with pytest.raises(ValueError, match="einsum: at least one operand"):
        pt.einsum("i")
    with pytest.raises(TypeError, match="einsum: the equation must be a string"):
        pt.einsum(3, pt.ones(2))
    with pytest.raises(TypeError, match="einsum.*bool"):
        pt.einsum("i", pt.ones(2, dtype=pt.bool))


# ---------------------------------------------------------------------------- tensordot ---
@pytest.mark.parametrize("sx,sy,dims", [
    ((3, 4, 5), (4, 5, 2), 2), ((3, 4), (4, 2), 1), ((3, 4), (5, 6), 0),
    ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0])), ((2, 3), (4, 2), ([0], [1])),
    ((2, 3), (3, 2), ((1, 0), (0, 1))), ((2, 3), (2,), (0, 0)), ((0, 3), (3, 0), 1),
])
def test_tensordot(sx, sy, dims):
    a, b = rand(sx, "float32"), rand(sy, "float32")
    exp = np.tensordot(ref64(a), ref64(b), axes=dims)
    check(pt.tensordot(pt.asarray(a), pt.asarray(b), dims), exp, pt.float32)
    check(pt.tensordot(pt.asarray(a), pt.asarray(b), axes=dims), exp)
    check(pt.linalg.tensordot(pt.asarray(a), pt.asarray(b), axes=dims), exp)
    d = tuple(tuple(x) if isinstance(x, list) else x for x in dims) \
        if isinstance(dims, tuple) else dims
    da = d if isinstance(d, int) else (tuple([d[0]]) if isinstance(d[0], int) else d[0])
    db = None if isinstance(d, int) else (tuple([d[1]]) if isinstance(d[1], int) else d[1])
    if db is not None:
        out = dispatcher.default("tensordot")(pt.asarray(a), pt.asarray(b),
                                              tuple(x % len(sx) for x in da),
                                              tuple(x % len(sy) for x in db))
        check(out, exp, pt.float32)


def test_tensordot_errors():
    with pytest.raises(ValueError, match=r"tensordot: contracted dimensions must match, but "
                                         r"dimension 0 of the first tensor \(shape \(2, 3\)\) "
                                         r"has size 2 and dimension 0 of the second \(shape "
                                         r"\(4, 2\)\) has size 4"):
        pt.tensordot(pt.ones(2, 3), pt.ones(4, 2), dims=([0], [0]))
    with pytest.raises(ValueError, match=r"tensordot: dims=3.*at most.*2"):
        pt.tensordot(pt.ones(2, 3), pt.ones(3, 2), dims=3)
    with pytest.raises(ValueError, match=r"tensordot: dims must be non-negative"):
        pt.tensordot(pt.ones(2, 3), pt.ones(3, 2), dims=-1)
    with pytest.raises(ValueError, match=r"tensordot: the two dim lists must have the same"):
        pt.tensordot(pt.ones(2, 3), pt.ones(3, 2), dims=([0, 1], [1]))
    with pytest.raises(IndexError, match=r"tensordot: dimension out of range"):
        pt.tensordot(pt.ones(2, 3), pt.ones(3, 2), dims=([2], [0]))
    with pytest.raises(ValueError, match=r"tensordot: .*name a dimension twice"):
        pt.tensordot(pt.ones(2, 2), pt.ones(2, 2), dims=([0, 0], [0, 1]))
    with pytest.raises(TypeError, match=r"tensordot: dims must be an int or a pair"):
        pt.tensordot(pt.ones(2, 3), pt.ones(3, 2), dims="x")


# ---------------------------------------------------------------------- diagonals, trace ---
@pytest.mark.parametrize("offset", [0, 1, -1, 3, -5])
def test_diagonal_and_diag(offset):
    a = rand((4, 5))
    x = pt.asarray(a)
    check(pt.diagonal(x, offset), np.diagonal(a, offset))
    check(x.diagonal(offset=offset, dim1=1, dim2=0), np.diagonal(a, offset, 1, 0))
    check(pt.diag(x, offset), np.diag(a, offset))
    v = rand((3,), "float32")
    check(pt.diag(pt.asarray(v), offset), np.diag(v, offset), pt.float32)
    b = rand((2, 3, 4))
    check(pt.diagonal(pt.asarray(b), offset, -1, 0), np.diagonal(b, offset, -1, 0))


def test_diagonal_is_a_view():
    a = np.arange(9.0).reshape(3, 3)
    x = pt.from_numpy(a)
    d = pt.diagonal(x)
    a[1, 1] = 100.0
    check(d, np.array([0.0, 100.0, 8.0]))
    # writes through, as torch.diagonal
    d[0] = -1.0
    assert a[0, 0] == -1.0


def test_diagonal_trace_errors_and_values():
    with pytest.raises(ValueError, match=r"diagonal: expected a tensor of at least 2 "
                                         r"dimensions, got shape \(3,\)"):
        pt.diagonal(pt.ones(3))
    with pytest.raises(ValueError, match=r"diagonal: dim1 and dim2 cannot be the same"):
        pt.diagonal(pt.ones(3, 3), 0, 1, -1)
    with pytest.raises(IndexError, match=r"diagonal: dimension out of range"):
        pt.diagonal(pt.ones(3, 3), 0, 0, 2)
    with pytest.raises(ValueError, match=r"diag: expected a 1-D or 2-D tensor.*\(2, 2, 2\)"):
        pt.diag(pt.ones(2, 2, 2))
    a = rand((3, 4), "float32")
    check(pt.trace(pt.asarray(a)), np.trace(ref64(a)), pt.float32)
    check(pt.asarray(a).trace(), np.trace(ref64(a)))
    check(pt.trace(pt.tensor([[1, 2], [3, 4]], dtype=pt.int32)), np.array(5), pt.int64)
    check(pt.trace(pt.empty(0, 0)), np.array(0.0))
    with pytest.raises(ValueError, match=r"trace: expected a matrix.*\(2, 2, 2\)"):
        pt.trace(pt.ones(2, 2, 2))
    b = rand((2, 3, 3))
    check(pt.linalg.trace(pt.asarray(b)), np.trace(b, axis1=-2, axis2=-1))
    check(pt.linalg.trace(pt.asarray(b), offset=1), np.trace(b, 1, axis1=-2, axis2=-1))
    check(pt.linalg.diagonal(pt.asarray(b), offset=-1), np.diagonal(b, -1, -2, -1))


# --------------------------------------------------------------------------------- cross ---
def test_cross():
    a, b = rand((4, 3)), rand((4, 3))
    check(pt.cross(pt.asarray(a), pt.asarray(b)), np.cross(a, b))
    check(pt.linalg.cross(pt.asarray(a), pt.asarray(b)), np.cross(a, b))
    c, d = rand((3, 5)), rand((1, 5))
    c = np.concatenate([c, c[:1]])[:3]
    d3 = np.broadcast_to(rand((3, 1)), (3, 5))
    check(pt.cross(pt.asarray(c), pt.asarray(d3), dim=0), np.cross(c, d3, axis=0))
    # broadcasting
    e = rand((2, 1, 3))
    f = rand((4, 3))
    check(pt.linalg.cross(pt.asarray(e), pt.asarray(f)), np.cross(e, f))
    check(pt.cross(pt.tensor([1, 0, 0]), pt.tensor([0, 1, 0])), np.array([0, 0, 1]),
          pt.int64)
    out = dispatcher.default("cross")(pt.asarray(a), pt.asarray(b), 1)
    check(out, np.cross(a, b))
    with pytest.raises(ValueError, match=r"linalg.cross: dimension -1 must have size 3.*"
                                         r"\(3, 2\)"):
        pt.linalg.cross(pt.ones(3, 2), pt.ones(3, 2))
    with pytest.raises(ValueError, match=r"cross: no dimension of size 3"):
        pt.cross(pt.ones(2, 2), pt.ones(2, 2))
    with pytest.raises(ValueError, match=r"cross: the shapes \(2, 3\) and \(4, 3\) do not"):
        pt.cross(pt.ones(2, 3), pt.ones(4, 3))


# ----------------------------------------------------------------------- linalg: inverse ---
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_inv_det_slogdet(dtype, batch):
    a = spd(4, batch, dtype) + rand(batch + (4, 4), dtype) * 0.5
    x = pt.asarray(a)
    check(pt.linalg.inv(x), np.linalg.inv(ref64(a)), getattr(pt, dtype), rtol=1e-4)
    check(pt.inverse(x), np.linalg.inv(ref64(a)), rtol=1e-4)
    check(pt.linalg.det(x), np.linalg.det(ref64(a)), getattr(pt, dtype), rtol=1e-4)
    s, la = pt.linalg.slogdet(x)
    es, ela = np.linalg.slogdet(ref64(a))
    check(s, es, getattr(pt, dtype), rtol=1e-4)
    check(la, ela, getattr(pt, dtype).to_real(), rtol=1e-4)


def test_inv_float16_and_non_contiguous():
    a = spd(3, dtype="float64")
    check(pt.linalg.inv(pt.asarray(a).half()),
          np.linalg.inv(a.astype(np.float16).astype(np.float64)),
          pt.float16, rtol=2e-2)
    b = rand((3, 3)) + 3 * np.eye(3)
    check(pt.linalg.inv(pt.from_numpy(b.T)), np.linalg.inv(b.T))
    check(pt.det(pt.from_numpy(b.T)), np.linalg.det(b))
    check(pt.asarray(b).det(), np.linalg.det(b))
    check(pt.linalg.inv(pt.empty(0, 0)), np.zeros((0, 0)))
    check(pt.linalg.det(pt.empty(2, 0, 0)), np.ones(2))


def test_singular_values_of_non_finite_input_raise_naming_the_matrix():
    """``svd`` / ``svdvals`` / ``pinv`` / ``matrix_rank`` / the 2 and nuclear matrix norms of
    a matrix with inf or NaN raise LinAlgError naming the call and the matrix, as torch
    (LAPACK does not converge on one; NumPy's own error named neither)."""
    a = np.stack([np.eye(2), [[np.nan, 1.0], [2.0, 3.0]], [[np.inf, 0.0], [0.0, 1.0]]])
    t = pt.asarray(a)
    for fn, op in ((pt.linalg.svd, "linalg.svd"), (pt.linalg.svdvals, "linalg.svdvals"),
                   (pt.linalg.pinv, "linalg.svd"), (pt.linalg.matrix_rank, "linalg.svdvals"),
                   (lambda x: pt.linalg.matrix_norm(x, 2), "linalg.matrix_norm"),
                   (lambda x: pt.linalg.matrix_norm(x, "nuc"), "linalg.matrix_norm")):
        with pytest.raises(pt.linalg.LinAlgError, match=rf"{op}: matrix \(1,\) of the batch "
                           r"\(input shape \(3, 2, 2\)\) contains non-finite values"):
            fn(t)
    with pytest.raises(pt.linalg.LinAlgError, match="the input matrix of shape"):
        pt.linalg.svdvals(t[2])
    np.testing.assert_allclose(pt.linalg.svdvals(t[0]).numpy(), [1.0, 1.0])
    assert pt.isnan(pt.linalg.matrix_norm(t, "fro")[1])  # no SVD: NaN, as torch
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.linalg.svdvals(torch.tensor(a))


def test_inv_errors():
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.inv: the input matrix of shape "
                                                    r"\(2, 2\) is singular"):
        pt.linalg.inv(pt.zeros(2, 2))
    batch = np.stack([np.eye(2), np.eye(2), np.ones((2, 2))]).reshape(3, 2, 2)
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.inv: matrix \(2,\) of the batch "
                                                    r"\(input shape \(3, 2, 2\)\) is singular"):
        pt.linalg.inv(pt.asarray(batch))
    assert issubclass(pt.linalg.LinAlgError, RuntimeError)
    with pytest.raises(ValueError, match=r"linalg.inv: A must be batches of square matrices, "
                                         r"but they are 2 by 3 matrices"):
        pt.linalg.inv(pt.ones(2, 3))
    with pytest.raises(ValueError, match=r"linalg.inv: A must have at least 2 dimensions.*"
                                         r"\(3,\)"):
        pt.linalg.inv(pt.ones(3))
    with pytest.raises(TypeError, match=r"linalg.inv: expected a floating point or complex "
                                        r"tensor.*int64"):
        pt.linalg.inv(pt.tensor([[1, 0], [0, 1]]))
    with pytest.raises(ValueError, match=r"linalg.det: .*square.*3 by 2"):
        pt.linalg.det(pt.ones(3, 2))


def test_logdet():
    a = spd(3)
    check(pt.logdet(pt.asarray(a)), np.log(np.linalg.det(a)))
    check(pt.logdet(pt.tensor([[-1.0, 0], [0, 1]])), np.array(np.nan))
    check(pt.logdet(pt.zeros(2, 2)), np.array(-np.inf))


# ------------------------------------------------------------------------- linalg: solve ---
def test_solve_shapes():
    a = spd(3) + rand((3, 3))
    b = rand((3,))
    check(pt.linalg.solve(pt.asarray(a), pt.asarray(b)), np.linalg.solve(a, b))
    bm = rand((3, 2))
    check(pt.linalg.solve(pt.asarray(a), pt.asarray(bm)), np.linalg.solve(a, bm))
    ab = spd(3, (4,)) + rand((4, 3, 3))
    bv = rand((4, 3))  # a batch of vectors (torch's rule)
    check(pt.linalg.solve(pt.asarray(ab), pt.asarray(bv)),
          np.linalg.solve(ab, bv[..., None])[..., 0])
    check(pt.linalg.solve(pt.asarray(ab), pt.asarray(b)),
          np.linalg.solve(ab, np.broadcast_to(b[:, None], (4, 3, 1)))[..., 0])
    bb = rand((2, 1, 3, 5))  # broadcast batch
    check(pt.linalg.solve(pt.asarray(ab), pt.asarray(bb)),
          np.linalg.solve(np.broadcast_to(ab, (2, 4, 3, 3)), np.broadcast_to(bb, (2, 4, 3, 5))))
    # X A = B
    br = rand((2, 3))
    check(pt.linalg.solve(pt.asarray(a), pt.asarray(br), left=False), br @ np.linalg.inv(a))
    # promotion: float32 A, float64 B
    check(pt.linalg.solve(pt.asarray(a.astype(np.float32)), pt.asarray(b)),
          np.linalg.solve(a.astype(np.float32).astype(np.float64), b), pt.float64, rtol=1e-6)


def test_solve_errors():
    with pytest.raises(ValueError, match=r"linalg.solve: incompatible shapes of A \(3, 3\) and "
                                         r"B \(2,\) for the equation AX = B: A is 3 by 3 but B "
                                         r"has 2 rows"):
        pt.linalg.solve(pt.eye(3), pt.ones(2))
    with pytest.raises(ValueError, match=r"linalg.solve: incompatible shapes.*\(4, 3, 3\).*"
                                         r"\(2, 3\)"):
        pt.linalg.solve(pt.ones(4, 3, 3), pt.ones(2, 3))
    with pytest.raises(ValueError, match=r"linalg.solve: the batch dimensions.*do not "
                                         r"broadcast"):
        pt.linalg.solve(pt.ones(4, 3, 3), pt.ones(2, 3, 1))
    with pytest.raises(ValueError, match=r"linalg.solve: A must be batches of square"):
        pt.linalg.solve(pt.ones(2, 3), pt.ones(2))
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.solve: .*\(2, 2\) is singular"):
        pt.linalg.solve(pt.zeros(2, 2), pt.ones(2))
    with pytest.raises(TypeError, match=r"linalg.solve: expected a floating point"):
        pt.linalg.solve(pt.tensor([[1, 0], [0, 1]]), pt.ones(2))


# ------------------------------------------------------------------ linalg: factorisations ---
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
def test_cholesky(dtype):
    a = spd(4, (2,), dtype)
    L = pt.linalg.cholesky(pt.asarray(a))
    check(L, np.linalg.cholesky(ref64(a)), getattr(pt, dtype), rtol=1e-4)
    U = pt.linalg.cholesky(pt.asarray(a), upper=True)
    check(U, np.swapaxes(np.linalg.cholesky(ref64(a)), -1, -2).conj(), rtol=1e-4)
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.cholesky: .*not "
                                                    r"positive-definite"):
        pt.linalg.cholesky(-pt.eye(2))
    with pytest.raises(ValueError, match=r"linalg.cholesky: A must be batches of square"):
        pt.linalg.cholesky(pt.ones(2, 3))


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 5, 3)])
def test_qr(shape):
    a = rand(shape, "float32")
    Q, R = pt.linalg.qr(pt.asarray(a))
    assert Q.dtype == pt.float32 and R.dtype == pt.float32
    check(Q @ R, ref64(a), rtol=1e-4)
    k = min(shape[-2:])
    assert Q.shape == shape[:-2] + (shape[-2], k)
    check(pt.triu(R), R.numpy())
    Qc, Rc = pt.linalg.qr(pt.asarray(a), mode="complete")
    assert Qc.shape == shape[:-2] + (shape[-2], shape[-2])
    check(Qc @ Rc, ref64(a), rtol=1e-4)
    Q0, R0 = pt.linalg.qr(pt.asarray(a), mode="r")
    assert Q0.numel() == 0
    check(pt.abs(R0), np.abs(R.numpy()), rtol=1e-4)
    with pytest.raises(ValueError, match="linalg.qr: mode must be"):
        pt.linalg.qr(pt.asarray(a), mode="full")


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
def test_eigh(dtype):
    a = spd(4, (3,), dtype)
    w, v = pt.linalg.eigh(pt.asarray(a))
    ew = np.linalg.eigvalsh(ref64(a))
    check(w, ew, getattr(pt, dtype).to_real(), rtol=1e-4)
    assert v.dtype == getattr(pt, dtype)
    recon = v.numpy() @ (ew[..., None] * np.swapaxes(v.numpy(), -1, -2).conj())
    np.testing.assert_allclose(recon, ref64(a), rtol=1e-4, atol=1e-4)
    check(pt.linalg.eigvalsh(pt.asarray(a), UPLO="U"), np.linalg.eigvalsh(ref64(a), "U"),
          rtol=1e-4)
    with pytest.raises(ValueError, match="linalg.eigh: UPLO must be"):
        pt.linalg.eigh(pt.asarray(a), UPLO="X")


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3), (0, 3), (2, 0)])
def test_svd_svdvals(shape):
    a = rand(shape, "float32")
    U, S, Vh = pt.linalg.svd(pt.asarray(a), full_matrices=False)
    k = min(shape[-2:])
    assert S.shape == shape[:-2] + (k,) and S.dtype == pt.float32
    check(S, np.linalg.svd(ref64(a), compute_uv=False) if k else np.zeros(shape[:-2] + (0,)),
          rtol=1e-4)
    check((U * S.unsqueeze(-2)) @ Vh, ref64(a), rtol=1e-4)
    Uf, Sf, Vhf = pt.linalg.svd(pt.asarray(a))
    assert Uf.shape == shape[:-2] + (shape[-2], shape[-2])
    assert Vhf.shape == shape[:-2] + (shape[-1], shape[-1])
    check(pt.linalg.svdvals(pt.asarray(a)), S.numpy())


def test_pinv_matrix_rank_matrix_power_multi_dot():
    a = rand((4, 3))
    check(pt.linalg.pinv(pt.asarray(a)), np.linalg.pinv(a))
    low = rand((4, 2)) @ rand((2, 5))
    check(pt.linalg.pinv(pt.asarray(low)), np.linalg.pinv(low), rtol=1e-7)
    check(pt.linalg.matrix_rank(pt.asarray(low)), np.array(2), pt.int64)
    check(pt.linalg.matrix_rank(pt.asarray(np.stack([low, np.eye(4, 5)]))), np.array([2, 4]))
    check(pt.linalg.matrix_rank(pt.asarray(a), atol=10.0), np.array(0))
    check(pt.linalg.pinv(pt.empty(0, 3)), np.zeros((3, 0)))
    m = rand((2, 3, 3))
    for n in (0, 1, 2, 5, -1, -3):
        check(pt.linalg.matrix_power(pt.asarray(m), n), np.linalg.matrix_power(m, n),
              rtol=1e-7)
    check(pt.asarray(m[0]).matrix_power(3), np.linalg.matrix_power(m[0], 3))
    with pytest.raises(ValueError, match=r"linalg.matrix_power: A must be batches of square"):
        pt.linalg.matrix_power(pt.ones(2, 3), 2)
    with pytest.raises(TypeError, match=r"linalg.matrix_power: n must be an int"):
        pt.linalg.matrix_power(pt.ones(2, 2), 1.5)
    p, q, r = rand((3,)), rand((3, 4)), rand((4,))
    check(pt.linalg.multi_dot([pt.asarray(p), pt.asarray(q), pt.asarray(r)]),
          np.linalg.multi_dot([p, q, r]))
    with pytest.raises(ValueError, match=r"linalg.multi_dot: tensor 1 must be 2-D"):
        pt.linalg.multi_dot([pt.ones(2, 2), pt.ones(2), pt.ones(2, 2)])
    with pytest.raises(ValueError, match=r"linalg.multi_dot: cannot multiply"):
        pt.linalg.multi_dot([pt.ones(2, 2), pt.ones(3, 2)])


# ---------------------------------------------------------------------------- norms ---
ORDS = ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("dim", [(-2, -1), (0, 2), (2, 0)])
def test_matrix_norm(ord, dtype, dim):
    a = rand((3, 2, 4), dtype)
    exp = np.linalg.norm(ref64(a), ord=ord, axis=dim)
    real = getattr(pt, dtype).to_real()
    check(pt.linalg.matrix_norm(pt.asarray(a), ord, dim), exp, real, rtol=1e-4)
    check(pt.linalg.matrix_norm(pt.asarray(a), ord, dim, keepdim=True),
          np.linalg.norm(ref64(a), ord=ord, axis=dim, keepdims=True), real, rtol=1e-4)
    d = tuple(x % 3 for x in dim)
    check(dispatcher.default("matrix_norm")(pt.asarray(a), ord, d, False), exp, real,
          rtol=1e-4)


def test_matrix_norm_empty_and_errors():
    for ord in ("fro", "nuc", 1, 2, math.inf):
        check(pt.linalg.matrix_norm(pt.empty(0, 3), ord), np.array(0.0))
        check(pt.linalg.matrix_norm(pt.empty(3, 0), ord), np.array(0.0))
    check(pt.linalg.matrix_norm(pt.empty(0, 3), -1), np.array(0.0))
    with pytest.raises(IndexError, match=r"matrix_norm: cannot compute the -1 norm.*3 by 0"):
        pt.linalg.matrix_norm(pt.empty(3, 0), -1)
    with pytest.raises(IndexError, match=r"matrix_norm: .*-2 norm"):
        pt.linalg.matrix_norm(pt.empty(3, 0), -2)
    with pytest.raises(ValueError, match=r"linalg.matrix_norm: order 3 is not supported"):
        pt.linalg.matrix_norm(pt.ones(3, 3), 3)
    with pytest.raises(ValueError, match=r"linalg.matrix_norm: the input must have at least 2 "
                                         r"dimensions, got shape \(3,\)"):
        pt.linalg.matrix_norm(pt.ones(3))
    with pytest.raises(ValueError, match=r"matrix_norm: the two dims must differ"):
        pt.linalg.matrix_norm(pt.ones(3, 3), dim=(0, -2))
    with pytest.raises(TypeError, match=r"matrix_norm: Expected a floating point.*int64"):
        pt.linalg.matrix_norm(pt.tensor([[1, 2]]))


def test_linalg_norm_rules():
    a = rand((3, 4), "float32")
    x = pt.asarray(a)
    check(pt.linalg.norm(x), np.linalg.norm(ref64(a)), pt.float32)
    check(pt.linalg.norm(x, 2), np.linalg.norm(ref64(a), 2))  # 2-D with ord: matrix norm
    check(pt.linalg.norm(x, -math.inf), np.linalg.norm(ref64(a), -np.inf))
    check(pt.linalg.norm(x, 3, dim=1), np.linalg.norm(ref64(a), 3, axis=1), rtol=1e-5)
    check(pt.linalg.norm(x, "nuc", dim=(1, 0), keepdim=True),
          np.linalg.norm(ref64(a), "nuc", axis=(1, 0), keepdims=True), rtol=1e-5)
    check(pt.linalg.norm(pt.asarray(a[0]), 1), np.abs(ref64(a[0])).sum())
    b = rand((2, 3, 4))
    check(pt.linalg.norm(pt.asarray(b)), np.linalg.norm(b.ravel()))
    with pytest.raises(ValueError, match=r"linalg.norm: if dim is not given but ord is.*"
                                         r"\(2, 3, 4\)"):
        pt.linalg.norm(pt.asarray(b), 2)
    with pytest.raises(ValueError, match=r"linalg.norm: ord 'fro' is a matrix norm"):
        pt.linalg.norm(x, "fro", dim=0)
    with pytest.raises(ValueError, match=r"linalg.norm: order 5 is not supported"):
        pt.linalg.norm(x, 5)


# ------------------------------------------------------------------ Array API extras ---
def test_matrix_transpose_vecdot():
    a = rand((2, 3, 4))
    t = pt.linalg.matrix_transpose(pt.asarray(a))
    check(t, np.swapaxes(a, -1, -2))
    with pytest.raises(ValueError, match=r"matrix_transpose: expected .*at least 2.*\(3,\)"):
        pt.linalg.matrix_transpose(pt.ones(3))
    z1, z2 = rand((2, 3), "complex128"), rand((3,), "complex128")
    check(pt.linalg.vecdot(pt.asarray(z1), pt.asarray(z2)), (z1.conj() * z2).sum(-1))
    check(pt.vecdot(pt.asarray(a), pt.asarray(a), axis=1), (a * a).sum(1))
    check(pt.linalg.vecdot(pt.asarray(a), pt.asarray(a[0, 0]), dim=-1), (a * a[0, 0]).sum(-1))
    with pytest.raises(ValueError, match=r"vecdot: the vectors along dim -1 have different "
                                         r"lengths: 3 and 4"):
        pt.vecdot(pt.ones(2, 3), pt.ones(4))
    with pytest.raises(ValueError, match=r"vecdot: the shapes \(2, 3\) and \(4, 3\) do not"):
        pt.vecdot(pt.ones(2, 3), pt.ones(4, 3))


def test_linalg_namespace_has_the_array_api_names():
    names = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
             "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv",
             "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
             "vector_norm", "norm"]
    for n in names:
        assert callable(getattr(pt.linalg, n)), n
    a, b = rand((2, 3)), rand((3,))
    check(pt.linalg.matmul(pt.asarray(a), pt.asarray(b)), a @ b)
    check(pt.linalg.outer(pt.asarray(b), pt.asarray(b)), np.outer(b, b))


# ------------------------------------------------------- backend without fused kernels ---
_FUSED = ("tensordot", "matrix_norm", "cross", "max_dim", "min_dim", "std", "logsumexp")


@pytest.fixture
def unfused():
    """A cpu clone without the fused kernels of the composite ops: their defaults run."""
    with cpu_clone("unfusedla", drop=_FUSED) as dev:
        yield dev


def test_composites_through_their_defaults(unfused):
    a, b = rand((3, 4, 5)), rand((5, 4, 2))
    x, y = pt.asarray(a, device=unfused), pt.asarray(b, device=unfused)
    from polyten.dispatch.dispatcher import kernel_for
    assert kernel_for("tensordot", unfused.backend) is None
    out = pt.tensordot(x, y, ([1, 2], [1, 0]))
    assert out.device == unfused
    check(out, np.tensordot(a, b, ([1, 2], [1, 0])))
    check(pt.inner(x, y.permute(2, 1, 0)), np.inner(a, np.transpose(b, (2, 1, 0))))
    for ord in ORDS:
        check(pt.linalg.matrix_norm(x, ord, (0, 2)), np.linalg.norm(a, ord, axis=(0, 2)))
    c, d = rand((2, 3)), rand((2, 3))
    check(pt.linalg.cross(pt.asarray(c, device=unfused), pt.asarray(d, device=unfused)),
          np.cross(c, d))


# ------------------------------------------------------------------------------ PyTorch ---
def test_against_torch():
    torch = pytest.importorskip("torch")
    a, b = rand((2, 3, 4), "float32"), rand((4, 5), "float32")
    T = lambda v: torch.from_numpy(np.ascontiguousarray(v))  # noqa: E731
    P = pt.asarray
    cases = [
        (pt.matmul(P(a), P(b)), torch.matmul(T(a), T(b))),
        (pt.matmul(P(a[0, 0]), P(b)), torch.matmul(T(a[0, 0]), T(b))),
        (pt.einsum("bij,jk->bki", P(a), P(b)), torch.einsum("bij,jk->bki", T(a), T(b))),
        (pt.einsum("...ij->ij", P(a)), torch.einsum("...ij->ij", T(a))),
        (pt.tensordot(P(a), P(b), 1), torch.tensordot(T(a), T(b), 1)),
        (pt.diagonal(P(a), 1, 0, 2), torch.diagonal(T(a), 1, 0, 2)),
        (pt.diag(P(b), -1), torch.diag(T(b), -1)),
        (pt.kron(P(b), P(a[0])), torch.kron(T(b), T(a[0]))),
        (pt.outer(P(b[0]), P(b[1])), torch.outer(T(b[0]), T(b[1]))),
        (pt.inner(P(a), P(b.T)), torch.inner(T(a), T(b.T))),
        (pt.trace(P(b)), torch.trace(T(b))),
    ]
    sq = spd(3, (2,), "float64")
    cases += [
        (pt.linalg.inv(P(sq)), torch.linalg.inv(T(sq))),
        (pt.linalg.det(P(sq)), torch.linalg.det(T(sq))),
        (pt.linalg.slogdet(P(sq)).logabsdet, torch.linalg.slogdet(T(sq)).logabsdet),
        (pt.linalg.solve(P(sq), P(sq[:, 0])), torch.linalg.solve(T(sq), T(sq[:, 0]))),
        (pt.linalg.cholesky(P(sq)), torch.linalg.cholesky(T(sq))),
        (pt.linalg.eigvalsh(P(sq)), torch.linalg.eigvalsh(T(sq))),
        (pt.linalg.svdvals(P(a)), torch.linalg.svdvals(T(a))),
        (pt.linalg.pinv(P(a)), torch.linalg.pinv(T(a))),
        (pt.linalg.matrix_rank(P(a)), torch.linalg.matrix_rank(T(a))),
        (pt.linalg.matrix_power(P(sq), -2), torch.linalg.matrix_power(T(sq), -2)),
        (pt.linalg.norm(P(b)), torch.linalg.norm(T(b))),
        (pt.linalg.norm(P(b), -2), torch.linalg.norm(T(b), -2)),
        (pt.linalg.vector_norm(P(a), 3, (0, 2)), torch.linalg.vector_norm(T(a), 3, (0, 2))),
        (pt.linalg.matrix_norm(P(a), "nuc", (2, 0)),
         torch.linalg.matrix_norm(T(a), "nuc", (2, 0))),
        (pt.linalg.cross(P(a[..., :3]), P(a[..., 1:])),
         torch.linalg.cross(T(a[..., :3]), T(a[..., 1:]))),
        (pt.linalg.vecdot(P(a), P(b[:, 0])), torch.linalg.vecdot(T(a), T(b[:, 0]))),
    ]
    for i, (ours, theirs) in enumerate(cases):
        assert ours.dtype.name == str(theirs.dtype).split(".")[-1], i
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=str(i))


def test_matmul_dtypes_against_torch():
    torch = pytest.importorskip("torch")
    for dt in ("int32", "int64", "float64", "complex64"):
        a, b = rand((2, 3), dt), rand((3, 4), dt)
        ours = pt.asarray(a) @ pt.asarray(b)
        theirs = torch.from_numpy(a) @ torch.from_numpy(b)
        assert ours.dtype.name == str(theirs.dtype).split(".")[-1]
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)


def test_remaining_error_paths(cpu2):
    with pytest.raises(TypeError, match=r"matmul\(\): expected tensors, got list"):
        pt.matmul([1.0], [2.0])
    x = pt.ones(2, 2)
    y = pt.ones(2, 2, device=cpu2)
    with pytest.raises(pt.DeviceMismatchError, match=r"matmul: .*same device.*cpu.*cpu2"):
        pt.matmul(x, y)
    with pytest.raises(pt.DeviceMismatchError, match=r"einsum: "):
        pt.einsum("ij,jk", x, y)
    with pytest.raises(pt.DeviceMismatchError, match=r"linalg.solve: "):
        pt.linalg.solve(x, y)
    with pytest.raises(TypeError, match=r"einsum: expected tensor operands"):
        pt.einsum("i", [1.0, 2.0])
    many = pt.ones(*([1] * 53))
    with pytest.raises(ValueError, match=r"einsum: .*more than 52 distinct subscripts"):
        pt.einsum("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ...", many)
    with pytest.raises(ValueError, match=r"linalg.solve: with left=False, B must be a matrix"):
        pt.linalg.solve(pt.eye(2), pt.ones(2), left=False)
    with pytest.raises(ValueError, match=r"linalg.solve: B must have at least 1 dimension"):
        pt.linalg.solve(pt.eye(2), pt.tensor(1.0))
    with pytest.raises(ValueError, match=r"linalg.multi_dot: expected at least 2 tensors"):
        pt.linalg.multi_dot([pt.ones(2, 2)])
    with pytest.raises(ValueError, match=r"linalg.matrix_norm: dim must be a pair"):
        pt.linalg.matrix_norm(pt.ones(2, 2), dim=0)
    with pytest.raises(ValueError, match=r"linalg.norm: dim must be an int or a pair"):
        pt.linalg.norm(pt.ones(2, 2, 2), dim=(0, 1, 2))
    with pytest.raises(ValueError, match=r"vecdot: expected tensors of at least 1 dimension"):
        pt.vecdot(pt.tensor(1.0), pt.ones(2))
    with pytest.raises(ValueError, match=r"linalg.trace: expected a tensor of at least 2 "
                                         r"dimensions, got shape \(2,\)"):
        pt.linalg.trace(pt.ones(2))


def test_det_gradient_of_singular_matrices_is_the_adjugate():
    """d det / dA = adj(A)^T also where A is singular (the inverse does not exist): for a
    rank n-1 matrix it is not zero (PyTorch 2.13 gives zeros there), for rank <= n-2 it is."""
    from polyten.autograd import gradcheck
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x = pt.tensor(a, requires_grad=True)
    pt.linalg.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[4.0, -2.0], [-2.0, 1.0]], atol=1e-12)
    b = np.outer([1.0, 2.0, 3.0], [1.0, 0.0, 2.0])  # rank 1 of 3
    y = pt.tensor(b, requires_grad=True)
    pt.linalg.det(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), np.zeros((3, 3)), atol=1e-12)
    c = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, -1.0, 2.0]])  # rank 2 of 3
    cof = np.array([[np.linalg.det(np.delete(np.delete(c, i, 0), j, 1)) * (-1) ** (i + j)
                     for j in range(3)] for i in range(3)])
    z = pt.tensor(c, requires_grad=True)
    pt.linalg.det(z).backward()
    np.testing.assert_allclose(z.grad.numpy(), cof, atol=1e-12)  # adj^T = the cofactors
    assert gradcheck(pt.linalg.det, (pt.tensor(c, requires_grad=True),))
