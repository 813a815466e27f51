"""The ``scaled_dot_product_attention`` composite of the op table: attention without an
explicit mask as one kernel and one node (``ScaledDotProductAttentionBackward0``).

Values against a float64 NumPy reference computed here, gradients against finite differences
(first and second order, the latter through the node's internal outputs), dropout against
the composed ops under the same seed (the keep mask is what ``dropout`` of the weights
draws), the backend kernel against the op's default in polyten ops, half precision and
autocast, and the cases that keep the composed ops (masks, broadcast batches, mixed dtypes,
empty inputs).  The cuda kernels: ``tests/test_cuda_attention.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck
from polyten.nn.functional import _attention

from _reference import rand, to_numpy, torch_or_skip

NODE = "ScaledDotProductAttentionBackward0"


def ref(q, k, v, scale=None, causal=False, keep=None):
    """float64 attention: softmax(q @ k^T * scale) (keys j <= i when causal) [* keep] @ v."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        L, S = s.shape[-2:]
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    if keep is not None:
        w = w * keep
    return w @ v


SHAPES = {  # q, k, v: E = 7, so the default scale is not a power of two
    "4d": ((2, 3, 5, 7), (2, 3, 6, 7), (2, 3, 6, 4)),
    "3d, L > S": ((3, 6, 7), (3, 4, 7), (3, 4, 5)),
    "2d": ((5, 7), (5, 7), (5, 3)),
    "long rows": ((1, 3, 7), (1, 70, 7), (1, 70, 2)),
}


def _tensors(shapes, dtype=pt.float64, seed=0, grad=True):
    return [pt.tensor(rand(*s, seed=seed + i), dtype=dtype, requires_grad=grad)
            for i, s in enumerate(shapes)]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", list(SHAPES))
def test_one_node_matching_float64_and_finite_differences(case, causal):
    q, k, v = _tensors(SHAPES[case])
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert out.grad_fn.name() == NODE
    np.testing.assert_allclose(to_numpy(out), ref(*(to_numpy(t) for t in (q, k, v)),
                                                  causal=causal), rtol=1e-12, atol=1e-13)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=causal),
                     (q, k, v))


def test_explicit_scale_and_float32():
    q, k, v = _tensors(SHAPES["4d"], dtype=pt.float32)
    out = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    expect = ref(*(to_numpy(t) for t in (q, k, v)), scale=0.3)
    assert out.dtype == pt.float32
    np.testing.assert_allclose(to_numpy(out), expect, rtol=2e-6, atol=2e-6)


def test_double_backward_through_the_internal_outputs():
    """The weights are the node's own outputs: a double backward differentiates through
    them again (with dropout too: the seed fixes the keep mask of every call)."""
    q, k, v = _tensors(((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    assert gradgradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), (q, k, v))
    assert gradgradcheck(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), (q, k, v))

    def dropped(a, b, c):
        pt.manual_seed(5)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3)
    assert gradcheck(dropped, (q, k, v))
    assert gradgradcheck(dropped, (q, k, v))


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_draws_what_the_composed_ops_draw(causal):
    """Same seed: the fused op and the composed ops (forced by an all-True mask) draw the
    same keep mask, so values and gradients agree; the dropped fraction is about p."""
    shapes = ((2, 3, 8, 7), (2, 3, 9, 7), (2, 3, 9, 4))
    results = []
    for fused in (True, False):
        q, k, v = _tensors(shapes)
        mask = None
        if not fused:
            mask = pt.ones((8, 9), dtype=pt.bool)
            mask = pt.tril(mask) if causal else mask
        pt.manual_seed(11)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.4,
                                             is_causal=causal and fused)
        assert (out.grad_fn.name() == NODE) == fused
        out.backward(pt.tensor(rand(*out.shape, seed=3)))
        results.append([to_numpy(out)] + [t.grad.numpy() for t in (q, k, v)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # the keep mask itself: recomputed from the same seed, against the float64 reference
    q, k, v = _tensors(shapes, grad=False)
    pt.manual_seed(11)
    keep = to_numpy(pt.nn.functional.dropout(pt.ones(2, 3, 8, 9, dtype=pt.float64), 0.4))
    np.testing.assert_allclose(results[0][0], ref(*(to_numpy(t) for t in (q, k, v)),
                                                  causal=causal, keep=keep), rtol=1e-12,
                               atol=1e-12)
    assert 0.25 < np.mean(keep == 0) < 0.55


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_backend_kernel_matches_the_default(dtype):
    """The cpu kernel against the op's default in polyten ops, with a keep mask, forward
    and fused backward (to the dtype's rounding)."""
    dt = getattr(pt, dtype)
    tol = {"float32": 2e-6, "float16": 4e-3, "bfloat16": 3e-2}[dtype]
    q, k, v = _tensors(SHAPES["4d"], dtype=dt, grad=False)
    pt.manual_seed(2)
    keep = pt.nn.functional.dropout(pt.ones(2, 3, 5, 6, dtype=dt), 0.25)
    kern = _attention._sdpa_k[q.device.backend]
    assert kern is not None
    out, w, dropped = kern(q._data, k._data, v._data, keep._data, 0.4, True)
    d_out, d_w, d_dropped = _attention._sdpa_default(q, k, v, keep, 0.4, True)
    for a, b in ((out, d_out), (w, d_w), (dropped, d_dropped)):
        assert a.dtype == b._data.dtype
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), to_numpy(b).astype(float),
                                   rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [("float16", 4e-3), ("bfloat16", 3e-2)])
def test_half_precision_against_float64(dtype, tol):
    dt = getattr(pt, dtype)
    q, k, v = _tensors(SHAPES["4d"], dtype=dt)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == dt and out.grad_fn.name() == NODE
    host = [to_numpy(t).astype(np.float64) for t in (q, k, v)]
    np.testing.assert_allclose(to_numpy(out).astype(float), ref(*host, causal=True),
                               rtol=tol, atol=tol)
    g = rand(*out.shape, seed=4)
    out.backward(pt.tensor(g, dtype=dt))
    q64, k64, v64 = (pt.tensor(a, requires_grad=True) for a in host)
    F.scaled_dot_product_attention(q64, k64, v64, is_causal=True).backward(pt.tensor(g))
    for t, r in ((q, q64), (k, k64), (v, v64)):
        assert t.grad.dtype == dt
        np.testing.assert_allclose(t.grad.numpy().astype(float), r.grad.numpy(),
                                   rtol=4 * tol, atol=4 * tol)


def test_autocast_runs_in_the_region_dtype_as_torch():
    torch = torch_or_skip()
    arrays = [rand(*s, seed=i) for i, s in enumerate(SHAPES["4d"])]
    with pt.autocast("cpu", dtype=pt.bfloat16):
        out = F.scaled_dot_product_attention(*(pt.tensor(a, dtype=pt.float32)
                                               for a in arrays))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tout = torch.nn.functional.scaled_dot_product_attention(
            *(torch.tensor(a, dtype=torch.float32) for a in arrays))
    assert str(tout.dtype) == "torch.bfloat16" and out.dtype == pt.bfloat16
    np.testing.assert_allclose(to_numpy(out).astype(float), tout.float().numpy(),
                               rtol=3e-2, atol=3e-2)


def test_only_the_needed_gradients():
    q, k, v = _tensors(SHAPES["4d"])
    q.requires_grad_(False)
    out = F.scaled_dot_product_attention(q, k, v)
    out.sum().backward()
    assert q.grad is None and k.grad is not None and v.grad is not None
    k2, v2 = (pt.tensor(t.detach().numpy(), requires_grad=True) for t in (k, v))
    F.scaled_dot_product_attention(q, k2, v2).sum().backward()
    np.testing.assert_array_equal(k.grad.numpy(), k2.grad.numpy())


def test_non_contiguous_operands():
    q, k, v = _tensors(((2, 5, 7), (2, 7, 6), (2, 6, 4)))
    kt = k.mT  # (2, 6, 7), a transposed view
    out = F.scaled_dot_product_attention(q, kt, v)
    assert out.grad_fn.name() == NODE
    np.testing.assert_allclose(to_numpy(out), ref(to_numpy(q), to_numpy(kt), to_numpy(v)),
                               rtol=1e-12, atol=1e-13)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b.mT, c), (q, k, v))


def test_other_cases_keep_the_composed_ops():
    """An explicit mask, batch dims that only broadcast, mixed dtypes and empty inputs are
    the composed ops' (with their promotion and shapes), as before."""
    q, k, v = _tensors(SHAPES["4d"])
    mask = pt.ones((5, 6), dtype=pt.bool)
    assert F.scaled_dot_product_attention(q, k, v, mask).grad_fn.name() != NODE
    k1, v1 = k[:1], v[:1]  # batch 1 against 2: broadcast
    out = F.scaled_dot_product_attention(q, k1, v1)
    assert out.grad_fn.name() != NODE and tuple(out.shape) == (2, 3, 5, 4)
    np.testing.assert_allclose(to_numpy(out), ref(to_numpy(q), to_numpy(k1), to_numpy(v1)),
                               rtol=1e-12, atol=1e-13)
    mixed = F.scaled_dot_product_attention(q.float(), k, v)
    assert mixed.dtype == pt.float64 and mixed.grad_fn.name() != NODE
    empty = F.scaled_dot_product_attention(pt.zeros(2, 0, 7), pt.zeros(2, 3, 7),
                                           pt.zeros(2, 3, 4))
    assert tuple(empty.shape) == (2, 0, 4)


def test_matches_torch_with_and_without_causality():
    torch = torch_or_skip()
    arrays = [rand(*s, seed=i) for i, s in enumerate(SHAPES["3d, L > S"])]
    for causal in (False, True):
        tt = [torch.tensor(a, requires_grad=True) for a in arrays]
        pp = [pt.tensor(a, requires_grad=True) for a in arrays]
        tout = torch.nn.functional.scaled_dot_product_attention(*tt, is_causal=causal)
        pout = F.scaled_dot_product_attention(*pp, is_causal=causal)
        np.testing.assert_allclose(to_numpy(pout), tout.detach().numpy(), rtol=1e-12,
                                   atol=1e-13)
        g = rand(*tout.shape, seed=8)
        tout.backward(torch.tensor(g))
        pout.backward(pt.tensor(g))
        for p_, t_ in zip(pp, tt):
            np.testing.assert_allclose(p_.grad.numpy(), t_.grad.numpy(), rtol=1e-11,
                                       atol=1e-12)


def test_errors_name_the_call():
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*\(2, 4, 5\).*"
                                         r"\(2, 6, 3\)"):
        F.scaled_dot_product_attention(pt.zeros(2, 4, 5), pt.zeros(2, 6, 3), pt.zeros(2, 6, 3))
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*dropout_p"):
        F.scaled_dot_product_attention(pt.zeros(2, 4, 5), pt.zeros(2, 6, 5),
                                       pt.zeros(2, 6, 3), dropout_p=1.5)
