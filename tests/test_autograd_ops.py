"""Autograd rules of the shape, indexing, reduction and linear-algebra ops: every rule checked
with gradcheck and gradgradcheck (float64, small shapes) against finite differences, a
representative set against PyTorch, and the ops without a formula raise a clear error at
backward instead of dropping the gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(20240611)
F64 = pt.float64


def leaf(a):
    return pt.tensor(np.asarray(a, dtype=np.float64), dtype=F64, requires_grad=True)


def rnd(*shape, lo=-2.0, hi=2.0):
    return leaf(RNG.uniform(lo, hi, size=shape))


def distinct(*shape):
    """Values at least 0.3 apart (so sort / max / median are smooth under gradcheck's eps)."""
    n = math.prod(shape)
    return leaf((RNG.permutation(n) * 0.3 - 0.45 * n * 0.3 + 0.11).reshape(shape))


def idx(v):
    return pt.tensor(v, dtype=pt.int64)


def mask(v):
    return pt.tensor(v, dtype=pt.bool)


def spd(n, batch=()):
    a = RNG.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


# (name, builder) where builder() -> (fn, inputs); every case runs gradcheck and gradgradcheck
CASES = [
    # --- indexing -------------------------------------------------------------------------
    ("getitem_int", lambda: (lambda t: t[1], (rnd(3, 2),))),
    ("getitem_neg_int", lambda: (lambda t: t[-1], (rnd(3, 2),))),
    ("getitem_slice_step", lambda: (lambda t: t[::2], (rnd(5, 2),))),
    ("getitem_tuple_none_ellipsis", lambda: (lambda t: t[None, ..., 1:], (rnd(2, 3),))),
    ("getitem_0d_result", lambda: (lambda t: t[1, 2], (rnd(2, 3),))),
    ("getitem_list_repeats", lambda: (lambda t: t[[0, 2, 0, 0]], (rnd(3, 2),))),
    ("getitem_tensor_idx_2d", lambda: (lambda t: t[:, idx([[1, 1], [0, 2]])], (rnd(2, 3),))),
    ("getitem_mask", lambda: (lambda t: t[mask([[True, False, True], [False, True, True]])],
                              (rnd(2, 3),))),
    ("getitem_int_and_index", lambda: (lambda t: t[1, :, idx([0, 0, 1])], (rnd(2, 3, 2),))),
    ("getitem_two_indices", lambda: (lambda t: t[idx([0, 1, 1]), idx([2, 2, 0])],
                                     (rnd(2, 3),))),
    ("gather_repeats", lambda: (lambda t: pt.gather(t, 1, idx([[0, 0, 2], [1, 0, 1]])),
                                (rnd(2, 3),))),
    ("scatter_add_both", lambda: (lambda x, s: pt.scatter_add(x, 1, idx([[0, 0], [2, 1]]), s),
                                  (rnd(2, 3), rnd(2, 3)))),
    ("scatter_both", lambda: (lambda x, s: pt.scatter(x, 0, idx([[1, 0, 1]]), s),
                              (rnd(2, 3), rnd(2, 3)))),
    ("scatter_value", lambda: (lambda x: pt.scatter(x, 1, idx([[0], [2]]), value=1.5),
                               (rnd(2, 3),))),
    ("index_select_repeats", lambda: (lambda t: pt.index_select(t, 1, idx([2, 0, 2])),
                                      (rnd(2, 3),))),
    ("index_add_alpha", lambda: (lambda x, s: pt.index_add(x, 0, idx([1, 1]), s, alpha=2.0),
                                 (rnd(2, 3), rnd(2, 3)))),
    ("masked_fill", lambda: (lambda t: pt.masked_fill(t, mask([True, False, True]), 0.5),
                             (rnd(2, 3),))),
    ("masked_fill_value_tensor", lambda: (lambda t, v: pt.masked_fill(
        t, mask([[True, False, True], [False, False, True]]), v), (rnd(2, 3), rnd()))),
    ("masked_select_broadcast", lambda: (lambda t: pt.masked_select(
        t, mask([[True, False, True], [True, True, False]])), (rnd(3),))),
    ("take_flat_negative", lambda: (lambda t: pt.take(t, idx([[0, -1], [5, 0]])),
                                    (rnd(2, 3),))),
    ("take_axis", lambda: (lambda t: pt.take(t, idx([1, -1, 1]), axis=1), (rnd(2, 3),))),
    ("take_along_dim", lambda: (lambda t: pt.take_along_dim(t, idx([[0, 2, 2]]), 1),
                                (rnd(2, 3),))),
    ("take_along_dim_flat", lambda: (lambda t: pt.take_along_dim(t, idx([4, 0, 4])),
                                     (rnd(2, 3),))),
    ("sort_desc", lambda: (lambda t: pt.sort(t, 1, descending=True).values, (distinct(2, 3),))),
    ("topk", lambda: (lambda t: pt.topk(t, 2, dim=0).values, (distinct(3, 2),))),
    ("max_dim", lambda: (lambda t: pt.max(t, 1).values, (distinct(2, 3),))),
    ("min_dim_keepdim", lambda: (lambda t: pt.min(t, 0, keepdim=True).values,
                                 (distinct(3, 2),))),
    ("median_dim", lambda: (lambda t: pt.median(t, 1).values, (distinct(2, 4),))),
    ("median_all", lambda: (lambda t: pt.median(t), (distinct(2, 3),))),
    # --- shape ----------------------------------------------------------------------------
    ("cat_dim1", lambda: (lambda a, b: pt.cat([a, b, a], 1), (rnd(2, 1), rnd(2, 3)))),
    ("cat_axis_none", lambda: (lambda a, b: pt.concat([a, b], axis=None),
                               (rnd(2, 2), rnd(3)))),
    ("cat_legacy_empty", lambda: (lambda a, e: pt.cat([a, e], 0), (rnd(2, 2), rnd(0)))),
    ("stack", lambda: (lambda a, b: pt.stack([a, b], 1), (rnd(2, 3), rnd(2, 3)))),
    ("split_sizes_partial_use", lambda: (lambda t: pt.split(t, [1, 3], 1)[1] * 2,
                                         (rnd(2, 4),))),
    ("split_all", lambda: (lambda t: pt.split(t, 2, 0), (rnd(5, 2),))),
    ("chunk", lambda: (lambda t: pt.chunk(t, 2, 1)[0], (rnd(2, 3),))),
    ("tensor_split_overlap", lambda: (lambda t: pt.tensor_split(t, [3, 1], 0), (rnd(4, 2),))),
    ("unbind", lambda: (lambda t: pt.unbind(t, 1)[2] * pt.unbind(t, 1)[0], (rnd(2, 3),))),
    ("narrow", lambda: (lambda t: pt.narrow(t, 1, -2, 2), (rnd(2, 4),))),
    ("flip", lambda: (lambda t: pt.flip(t, (0, 2)), (rnd(2, 2, 2),))),
    ("fliplr", lambda: (lambda t: pt.fliplr(t), (rnd(2, 3),))),
    ("roll_dims", lambda: (lambda t: pt.roll(t, (1, -1), (0, 1)), (rnd(2, 3),))),
    ("roll_flat", lambda: (lambda t: pt.roll(t, 2), (rnd(2, 3),))),
    ("tile_more_reps", lambda: (lambda t: pt.tile(t, (2, 1, 2)), (rnd(2, 2),))),
    ("repeat_method", lambda: (lambda t: t.repeat(2, 3), (rnd(3),))),
    ("repeat_interleave_int", lambda: (lambda t: pt.repeat_interleave(t, 2, dim=1),
                                       (rnd(2, 2),))),
    ("repeat_interleave_list", lambda: (lambda t: pt.repeat_interleave(t, [2, 0, 1]),
                                        (rnd(3),))),
    ("squeeze_unsqueeze", lambda: (lambda t: pt.unsqueeze(pt.squeeze(t), 0), (rnd(2, 1, 3),))),
    ("flatten_unflatten", lambda: (lambda t: pt.unflatten(pt.flatten(t), 0, (3, 4)),
                                   (rnd(2, 3, 2),))),
    ("movedim", lambda: (lambda t: pt.movedim(t, (0, 1), (2, 0)), (rnd(2, 3, 2),))),
    ("tril", lambda: (lambda t: pt.tril(t, -1), (rnd(3, 3),))),
    ("triu", lambda: (lambda t: pt.triu(t, 1), (rnd(2, 3, 3),))),
    ("diagonal_offset", lambda: (lambda t: pt.diagonal(t, 1, 0, 2), (rnd(3, 2, 3),))),
    ("broadcast_to", lambda: (lambda t: pt.broadcast_to(t, (2, 3, 2)), (rnd(3, 1),))),
    ("expand_same_shape", lambda: (lambda t: t.expand(2, 3), (rnd(2, 3),))),
    ("transpose_same_dim", lambda: (lambda t: t.transpose(1, 1), (rnd(2, 3),))),
    ("T_1d", lambda: (lambda t: t.T, (rnd(3),))),
    ("T_2d", lambda: (lambda t: t.T, (rnd(2, 3),))),
    ("t_method", lambda: (lambda t: t.t(), (rnd(2, 3),))),
    ("view_same_shape", lambda: (lambda t: t.view(2, 3), (rnd(2, 3),))),
    ("meshgrid_xy", lambda: (lambda a, b: pt.meshgrid(a, b, indexing="xy"), (rnd(2), rnd(3)))),
    ("atleast_2d_hstack", lambda: (lambda a, b: pt.hstack([pt.atleast_2d(a), b]),
                                   (rnd(1, 2), rnd(1, 3)))),
    ("unstack", lambda: (lambda t: pt.unstack(t, axis=0)[1], (rnd(2, 3),))),
    # --- reductions -----------------------------------------------------------------------
    ("prod_all", lambda: (lambda t: pt.prod(t), (rnd(2, 3, lo=0.5, hi=1.5),))),
    ("prod_dim", lambda: (lambda t: pt.prod(t, 1), (rnd(2, 3, lo=0.5, hi=1.5),))),
    ("prod_one_zero", lambda: (lambda t: pt.prod(t, 1, keepdim=True),
                               (leaf([[0.0, 1.5, -0.7], [1.2, 0.9, 2.0]]),))),
    ("amax_dims", lambda: (lambda t: pt.amax(t, (0, 2)), (distinct(2, 2, 2),))),
    ("amin_keepdim", lambda: (lambda t: pt.amin(t, 1, keepdim=True), (distinct(2, 3),))),
    ("max_all", lambda: (lambda t: pt.max(t), (distinct(2, 3),))),
    ("min_all", lambda: (lambda t: pt.min(t), (distinct(4),))),
    ("max_axis_tuple", lambda: (lambda t: pt.max(t, axis=(0, 1)), (distinct(2, 2, 2),))),
    ("var_dim", lambda: (lambda t: pt.var(t, 1), (rnd(2, 4),))),
    ("var_all_correction0", lambda: (lambda t: pt.var(t, correction=0), (rnd(2, 3),))),
    ("std_keepdim", lambda: (lambda t: pt.std(t, 0, keepdim=True), (rnd(3, 2),))),
    ("var_mean", lambda: (lambda t: pt.var_mean(t, 1), (rnd(2, 3),))),
    ("logsumexp", lambda: (lambda t: pt.logsumexp(t, 1), (rnd(2, 3),))),
    ("logsumexp_all", lambda: (lambda t: pt.logsumexp(t, (0, 1), keepdim=True),
                               (rnd(2, 3),))),
    ("vector_norm_2", lambda: (lambda t: pt.linalg.vector_norm(t, 2, 1), (rnd(2, 3),))),
    ("vector_norm_1", lambda: (lambda t: pt.linalg.vector_norm(t, 1), (distinct(2, 3),))),
    ("vector_norm_3", lambda: (lambda t: pt.linalg.vector_norm(t, 3, 0), (distinct(2, 3),))),
    ("vector_norm_half", lambda: (lambda t: pt.linalg.vector_norm(t, 0.5), (distinct(4),))),
    ("vector_norm_inf", lambda: (lambda t: pt.linalg.vector_norm(t, math.inf, 1),
                                 (distinct(2, 3),))),
    ("vector_norm_neg_inf", lambda: (lambda t: pt.linalg.vector_norm(t, -math.inf),
                                     (distinct(2, 3),))),
    ("norm_fro", lambda: (lambda t: pt.norm(t), (rnd(2, 3),))),
    ("cumsum", lambda: (lambda t: pt.cumsum(t, 1), (rnd(2, 3),))),
    ("cumulative_sum_initial", lambda: (lambda t: pt.cumulative_sum(t, include_initial=True),
                                        (rnd(3),))),
    ("cumprod", lambda: (lambda t: pt.cumprod(t, 0), (rnd(3, 2, lo=0.5, hi=1.5),))),
    ("cumprod_one_zero", lambda: (lambda t: pt.cumprod(t, 1),
                                  (leaf([[0.7, 0.0, 1.3, -0.8], [1.1, -0.6, 0.9, 0.0]]),))),
    ("nansum_nanmean", lambda: (lambda t: pt.nansum(t, 1) + pt.nanmean(t, 1), (rnd(2, 3),))),
    # --- linear algebra -------------------------------------------------------------------
    ("dot", lambda: (pt.dot, (rnd(3), rnd(3)))),
    ("mm", lambda: (pt.mm, (rnd(2, 3), rnd(3, 2)))),
    ("bmm", lambda: (pt.bmm, (rnd(2, 2, 3), rnd(2, 3, 2)))),
    ("mv", lambda: (pt.mv, (rnd(2, 3), rnd(3)))),
    ("outer", lambda: (pt.outer, (rnd(2), rnd(3)))),
    ("inner", lambda: (pt.inner, (rnd(2, 3), rnd(2, 3)))),
    ("vecdot", lambda: (lambda a, b: pt.vecdot(a, b), (rnd(2, 3), rnd(3)))),
    ("kron", lambda: (pt.kron, (rnd(2, 2), rnd(2, 1)))),
    ("tensordot_int", lambda: (lambda a, b: pt.tensordot(a, b, 1), (rnd(2, 3), rnd(3, 2)))),
    ("tensordot_pairs", lambda: (lambda a, b: pt.tensordot(a, b, ([0, 2], [2, 0])),
                                 (rnd(2, 3, 2), rnd(2, 2, 2)))),
    ("einsum_matmul", lambda: (lambda a, b: pt.einsum("ij,jk->ik", a, b),
                               (rnd(2, 3), rnd(3, 2)))),
    ("einsum_batch_ellipsis", lambda: (lambda a, b: pt.einsum("...ij,...jk", a, b),
                                       (rnd(2, 2, 2), rnd(2, 2, 2)))),
    ("einsum_diag", lambda: (lambda a: pt.einsum("ii->i", a), (rnd(3, 3),))),
    ("einsum_trace_summed_label", lambda: (lambda a, b: pt.einsum("iij,k->k", a, b),
                                           (rnd(2, 2, 2), rnd(3)))),
    ("einsum_three_operands", lambda: (lambda a, b, c: pt.einsum("i,ij,j->", a, b, c),
                                       (rnd(2), rnd(2, 3), rnd(3)))),
    ("einsum_transpose_implicit", lambda: (lambda a: pt.einsum("ji", a), (rnd(2, 3),))),
    ("trace", lambda: (pt.trace, (rnd(3, 3),))),
    ("diag_embed_1d", lambda: (lambda t: pt.diag(t, 1), (rnd(3),))),
    ("diag_extract_2d", lambda: (lambda t: pt.diag(t, -1), (rnd(3, 2),))),
    ("cross", lambda: (lambda a, b: pt.linalg.cross(a, b), (rnd(2, 3), rnd(3)))),
    ("inv", lambda: (pt.linalg.inv, (leaf(spd(3)),))),
    ("det_batch", lambda: (pt.linalg.det, (leaf(RNG.standard_normal((2, 2, 2)) +
                                                 2 * np.eye(2)),))),
    ("slogdet", lambda: (lambda a: pt.linalg.slogdet(a).logabsdet,
                         (leaf(RNG.standard_normal((3, 3)) + 3 * np.eye(3)),))),
    ("logdet", lambda: (pt.logdet, (leaf(spd(2)),))),
    ("solve_matrix_broadcast", lambda: (pt.linalg.solve, (leaf(spd(2)), rnd(2, 2, 1)))),
    ("solve_vector", lambda: (pt.linalg.solve, (leaf(spd(3)), rnd(3)))),
    ("solve_left_false", lambda: (lambda a, b: pt.linalg.solve(a, b, left=False),
                                  (leaf(spd(2)), rnd(3, 2)))),
    ("matrix_power_neg", lambda: (lambda a: pt.linalg.matrix_power(a, -2), (leaf(spd(2)),))),
    ("matrix_norm_fro_inf", lambda: (lambda a: pt.linalg.matrix_norm(a) +
                                     pt.linalg.matrix_norm(a, math.inf), (distinct(2, 3),))),
    ("multi_dot", lambda: (lambda a, b, c: pt.linalg.multi_dot([a, b, c]),
                           (rnd(2), rnd(2, 3), rnd(3)))),
    ("cholesky_of_gram", lambda: (lambda x: pt.linalg.cholesky(x @ x.mT + 2 * pt.eye(
        2, dtype=F64)), (rnd(2, 2),))),
    ("cholesky_upper", lambda: (lambda x: pt.linalg.cholesky(x @ x.mT + 2 * pt.eye(
        2, dtype=F64), upper=True), (rnd(2, 2),))),
]

# the double backward of these goes through an SVD / eigendecomposition, which has no
# derivative yet: first order only
FIRST_ORDER = [
    ("eigvalsh_of_sym", lambda: (lambda x: pt.linalg.eigvalsh(x + x.mT),
                                 (leaf([[2.0, 0.3, 0.1], [0.1, -1.0, 0.4], [0.5, 0.2, 0.7]]),))),
    ("svdvals", lambda: (pt.linalg.svdvals, (leaf([[3.0, 0.5, 0.1], [0.2, -1.0, 0.3]]),))),
    ("matrix_norm_nuc", lambda: (lambda a: pt.linalg.matrix_norm(a, "nuc"),
                                 (leaf([[3.0, 0.5], [0.2, -1.0]]),))),
]


@pytest.mark.parametrize("name, build", CASES, ids=[c[0] for c in CASES])
def test_gradcheck_and_gradgradcheck(name, build):
    fn, inputs = build()
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("name, build", FIRST_ORDER, ids=[c[0] for c in FIRST_ORDER])
def test_gradcheck_first_order(name, build):
    fn, inputs = build()
    assert gradcheck(fn, inputs)


def test_ties_share_the_gradient_of_amax_but_not_of_max_with_dim():
    x = leaf([[1.0, 3.0, 3.0], [3.0, 0.5, 3.0]])
    pt.amax(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.25, 0.25], [0.25, 0, 0.25]])
    x.grad = None
    pt.amin(x, 1).sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    x.grad = None
    res = pt.max(x, 1)
    res.values.sum().backward()  # only the element the index names (as PyTorch)
    expected = np.zeros((2, 3))
    expected[[0, 1], res.indices.tolist()] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_casting_reductions_send_the_gradient_back_in_the_input_dtype():
    x = pt.tensor([1.0, 2.0, 4.0], requires_grad=True)  # float32
    (pt.mean(x, dtype=F64) + pt.sum(x, dtype=F64) + pt.linalg.vector_norm(x, dtype=F64) +
     pt.cumsum(x, 0, dtype=F64).sum() + pt.prod(x, dtype=F64)).backward()
    assert x.grad.dtype is pt.float32
    expected = 1 / 3 + 1 + np.array([1, 2, 4]) / math.sqrt(21) + np.array([3, 2, 1]) + \
        np.array([8, 4, 2])
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_scatter_src_larger_than_index_gets_zero_outside():
    src = rnd(2, 3)
    x = rnd(2, 3)
    pt.scatter(x, 0, idx([[1, 0]]), src).sum().backward()
    assert src.grad.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert x.grad.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]  # (1, 0), (0, 1) overwritten


def test_prod_and_cumprod_with_several_zeros_first_order():
    x = leaf([[0.0, 1.5, 0.0], [1.2, 0.0, 2.0]])
    assert gradcheck(lambda t: pt.prod(t, 1), (x,))
    assert gradcheck(lambda t: pt.prod(t), (x,))
    assert gradcheck(lambda t: pt.cumprod(t, 1), (x,))


# --- every differentiable op records a node (no silent stop of the gradient) ---------------
def test_identity_views_record_a_node():
    x = rnd(2, 3)
    for y in (x.expand(2, 3), x.transpose(0, 0), x.view(2, 3), x[...], pt.atleast_1d(x),
              pt.broadcast_to(x, (2, 3)), x.reshape(2, 3), x.mT.mT):
        assert y.grad_fn is not None and y.requires_grad
    v = rnd(3)
    assert v.T.grad_fn is not None and v.t().grad_fn is not None


def test_split_outputs_share_one_node_and_unused_pieces_get_zero():
    x = rnd(2, 5)
    a, b, c = pt.split(x, 2, 1)
    assert a.grad_fn is b.grad_fn is c.grad_fn and type(a.grad_fn).__name__ == "SplitBackward0"
    (b * 3).sum().backward()
    expected = np.zeros((2, 5))
    expected[:, 2:4] = 3
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_repeated_indices_accumulate():
    x = rnd(4)
    y = x[[1, 1, 3, 1]]
    y.backward(pt.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    assert x.grad.tolist() == [0.0, 7.0, 0.0, 3.0]
    x.grad = None
    pt.index_select(x, 0, idx([0, 0, 0])).sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 0.0, 0.0]


def test_non_differentiable_outputs_do_not_require_grad():
    x = distinct(2, 3)
    assert not pt.argmax(x).requires_grad and not pt.argsort(x).requires_grad
    assert not pt.nonzero(x).requires_grad and not (x > 0).requires_grad
    assert not pt.sort(x).indices.requires_grad and not pt.max(x, 1).indices.requires_grad
    assert not pt.topk(x, 1).indices.requires_grad
    assert not pt.unique(x).requires_grad and not pt.count_nonzero(x).requires_grad
    assert pt.sort(x).values.requires_grad and pt.max(x, 1).values.requires_grad
    s = pt.linalg.slogdet(leaf(spd(2)))
    assert s.logabsdet.requires_grad and not s.sign.requires_grad


def test_no_grad_records_nothing():
    x = rnd(2, 3)
    with pt.no_grad():
        outs = [x[0], x[[0, 1]], pt.cat([x, x]), pt.split(x, 1)[0], pt.prod(x), pt.amax(x),
                pt.linalg.inv(x[:, :2] + 3 * pt.eye(2, dtype=F64)), pt.einsum("ij->j", x)]
    assert all(o.grad_fn is None and not o.requires_grad for o in outs)


@pytest.mark.parametrize("name, fn", [
    ("qr", lambda a: pt.linalg.qr(a).R),
    ("eigh", lambda a: pt.linalg.eigh(a + a.mT).eigenvalues),
    ("svd", lambda a: pt.linalg.svd(a).S),
    ("pinv", lambda a: pt.linalg.pinv(a)),
])
def test_factorisations_record_and_differentiate(name, fn):
    # their formulas are checked against torch in tests/test_linalg_grad.py
    a = leaf(spd(2))
    out = fn(a)
    assert out.requires_grad  # recorded, not silently detached
    out.sum().backward()
    assert a.grad is not None and a.grad.shape == a.shape


def test_double_backward_through_svdvals():
    a = leaf([[3.0, 0.5], [0.2, -1.0]])
    (g,) = pt.autograd.grad(pt.linalg.svdvals(a).sum(), [a], create_graph=True)
    g.sum().backward()
    assert a.grad is not None


def test_singular_det_backward_is_the_adjugate():
    a = leaf([[1.0, 2.0], [2.0, 4.0]])
    pt.linalg.det(a).backward()  # no inverse needed: adj(A)^T (tests/test_linalg.py)
    np.testing.assert_allclose(a.grad.numpy(), [[4.0, -2.0], [-2.0, 1.0]], atol=1e-12)


# --- against PyTorch -----------------------------------------------------------------------
def _torch_cases():
    t_idx = [[0, 0, 2], [1, 0, 1]]
    return [
        ("getitem_adv", (3, 2), lambda L, t, I: t[[0, 2, 0, 0]]),
        ("getitem_mixed", (2, 3, 2), lambda L, t, I: t[1, :, I([0, 0, 1])]),
        ("gather", (2, 3), lambda L, t, I: L.gather(t, 1, I(t_idx))),
        ("scatter", (2, 3), lambda L, t, I: L.scatter(t, 0, I([[1, 0, 1]]), t[:1] * 2)),
        ("scatter_add", (2, 3), lambda L, t, I: L.scatter_add(t, 1, I(t_idx), t[:, :3] ** 2)),
        ("index_select", (2, 3), lambda L, t, I: L.index_select(t, 1, I([2, 0, 2]))),
        ("masked_select", (2, 3), lambda L, t, I: L.masked_select(t, t > 0)),
        ("take", (2, 3), lambda L, t, I: L.take(t, I([[0, 5], [5, 1]]))),
        ("sort", (2, 4), lambda L, t, I: L.sort(t, 1, descending=True).values),
        ("topk", (4, 2), lambda L, t, I: L.topk(t, 3, dim=0).values),
        ("max_dim", (2, 3), lambda L, t, I: L.max(t, 1).values),
        ("median", (2, 3), lambda L, t, I: L.median(t, 1).values),
        ("amax_ties", (2, 3), lambda L, t, I: L.amax(L.round(t), 1)),
        ("max_all_ties", (2, 3), lambda L, t, I: L.max(L.round(t))),
        ("prod_zeros", (2, 3), lambda L, t, I: L.prod(t * (t.abs() > 0.7), 1)),
        ("cumprod_zeros", (2, 4), lambda L, t, I: L.cumprod(t * (t.abs() > 0.5), 1)),
        ("cumsum", (2, 3), lambda L, t, I: L.cumsum(t, 0)),
        ("var", (2, 3), lambda L, t, I: L.var(t, 1)),
        ("std_all", (2, 3), lambda L, t, I: L.std(t)),
        ("logsumexp", (2, 3), lambda L, t, I: L.logsumexp(t, 1)),
        ("norm_3", (2, 3), lambda L, t, I: L.linalg.vector_norm(t, 3, 1)),
        ("norm_inf", (2, 3), lambda L, t, I: L.linalg.vector_norm(t, float("inf"))),
        ("cat_split", (2, 3), lambda L, t, I: L.cat(L.split(t, [1, 2], 1)[::-1], 1)),
        ("stack_unbind", (2, 3), lambda L, t, I: L.stack(L.unbind(t, 1)[:2], 0)),
        ("tile_roll_flip", (2, 3), lambda L, t, I: L.flip(L.roll(L.tile(t, (2, 1)), 1, 0), (1,))),
        ("tril_diagonal", (3, 3), lambda L, t, I: L.diagonal(L.tril(t), -1)),
        ("einsum", (2, 3), lambda L, t, I: L.einsum("ij,kj->ik", t, t * t)),
        ("tensordot", (2, 3), lambda L, t, I: L.tensordot(t, t, ([0], [0]))),
        ("det", (3, 3), lambda L, t, I: L.linalg.det(t + 3 * L.eye(3, dtype=t.dtype))),
        ("inv", (3, 3), lambda L, t, I: L.linalg.inv(t + 3 * L.eye(3, dtype=t.dtype))),
        ("solve", (3, 3), lambda L, t, I: L.linalg.solve(t + 3 * L.eye(3, dtype=t.dtype),
                                                         t[:, :2])),
        ("cholesky", (3, 3), lambda L, t, I: L.linalg.cholesky(
            t @ t.mT + L.eye(3, dtype=t.dtype))),
        ("eigvalsh", (3, 3), lambda L, t, I: L.linalg.eigvalsh(t + t.mT)),
        ("svdvals", (2, 3), lambda L, t, I: L.linalg.svdvals(t)),
    ]


@pytest.mark.parametrize("name, shape, fn", _torch_cases(), ids=[c[0] for c in _torch_cases()])
def test_gradients_equal_torch(name, shape, fn):
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal(shape)
    x = leaf(a)
    out = fn(pt, x, lambda v: pt.tensor(v, dtype=pt.int64))
    w = RNG.standard_normal(tuple(out.shape))
    (out * pt.tensor(w, dtype=F64)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    tout = fn(torch, tx, lambda v: torch.tensor(v, dtype=torch.int64))
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-7, atol=1e-10)


def test_double_backward_equals_torch():
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((3, 3)) + 3 * np.eye(3)

    def run(L, x):
        y = L.cumprod(x, 1).sum() + L.linalg.det(x) + L.logsumexp(x, 0).sum() + \
            L.prod(x[0]) + L.linalg.vector_norm(x, 3)
        (g,) = (pt.autograd.grad if L is pt else torch.autograd.grad)(y, [x], create_graph=True)
        (g ** 2).sum().backward()
        return g.detach().numpy(), x.grad.numpy()

    mine = run(pt, leaf(a))
    theirs = run(torch, torch.tensor(a, requires_grad=True))
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m, t, rtol=1e-7, atol=1e-10)


# --- in-place ops of these modules on graph tensors (rebased, as PyTorch) ------------------
def test_setitem_into_a_buffer_keeps_the_gradient():
    def f(x, h):
        buf = pt.zeros(3, 2, dtype=F64)  # does not require grad: becomes part of the graph
        buf[1] = h * 2
        y = x * 1
        y[idx([0, 2]), 1] = h[0]
        y[:, 0] += h[1]
        y[mask([[False, True], [True, False], [False, False]])] = 0.0
        return buf + y
    x, h = rnd(3, 2), rnd(2)
    assert gradcheck(f, (x, h))
    assert gradgradcheck(f, (x, h))


def test_inplace_index_ops_and_tril_on_graph_tensors():
    def f(x, s):
        z = pt.zeros(3, 2, dtype=F64)
        z.scatter_(0, idx([[2, 0]]), s)
        z.scatter_add_(1, idx([[0], [1], [1]]), s[:, :1])
        z.index_add_(0, idx([1]), s[:1], alpha=3)
        z.masked_fill_(mask([True, False]), 7.0)
        y = x * 2
        y.tril_()
        return z + y
    assert gradcheck(f, (rnd(3, 2), rnd(3, 2)))
    assert gradgradcheck(f, (rnd(3, 2), rnd(3, 2)))


def test_inplace_view_ops_rebase_and_matmul_inplace():
    x = rnd(3, 2)
    y = x * 2
    y.t_()
    y.unsqueeze_(0)
    assert tuple(y.shape) == (1, 2, 3) and y.grad_fn is not None
    w = x * 1
    w @= pt.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=F64)
    (y.sum() + w.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 2), 2.0 + 2.0))  # M row sums: 2


def test_inplace_on_a_leaf_that_requires_grad_raises():
    x = rnd(3, 2)
    for fn in (lambda: x.__setitem__(0, 1.0), lambda: x.tril_(), lambda: x.squeeze_(),
               lambda: x.masked_fill_(mask([True, False]), 0.0),
               lambda: x.scatter_(0, idx([[0, 1]]), 0.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            fn()
    with pt.no_grad():
        x[0] = 1.0  # allowed: e.g. an initialisation
    assert x[0].tolist() == [1.0, 1.0]


def test_torch_setitem_gradients_match():
    torch = pytest.importorskip("torch")
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4))

    def run(L, x, v):
        y = x * 1
        y[1:] = v * v
        y[0, [1, 3]] = v[0, :2]
        return (y * y).sum()

    px, pv = leaf(a), leaf(b)
    run(pt, px, pv).backward()
    tx, tv = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    run(torch, tx, tv).backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(pv.grad.numpy(), tv.grad.numpy(), rtol=1e-10)
