"""Attention: scaled_dot_product_attention, MultiheadAttention, TransformerEncoderLayer and
TransformerEncoder.

Values and gradients (inputs and every parameter) against PyTorch with the same weights
(float64, dropout 0 so both are deterministic), finite-difference gradchecks without PyTorch,
PyTorch's parameter names and initialisation, reprs and errors naming the call and shapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck

from conftest import cpu_clone
from _reference import close, copy_weights, rand, same_param_grads, to_numpy, torch_or_skip


def _mask_pair(kind, shape, seed):
    """A (torch, polyten) pair of masks: bool with about a third excluded, or float."""
    torch = torch_or_skip()
    if kind is None:
        return None, None
    if kind == "bool":
        m = np.random.default_rng(seed).random(shape) < 0.3
        return torch.tensor(m), pt.tensor(m)
    m = rand(*shape, seed=seed)
    return torch.tensor(m), pt.tensor(m)


# ------------------------------------------------------------------------------- sdpa -----
SDPA_CASES = {
    "plain": dict(q=(2, 3, 4, 5), k=(2, 3, 6, 5), v=(2, 3, 6, 7)),
    "bool_mask_2d": dict(q=(2, 3, 4, 5), k=(2, 3, 6, 5), v=(2, 3, 6, 7), mask="bool",
                         mshape=(4, 6)),
    "float_mask_bcast": dict(q=(2, 3, 4, 5), k=(2, 3, 6, 5), v=(2, 3, 6, 7), mask="float",
                             mshape=(2, 1, 4, 6)),
    "causal_short_q": dict(q=(2, 4, 5), k=(2, 6, 5), v=(2, 6, 3), causal=True),
    "causal_long_q": dict(q=(1, 2, 6, 5), k=(1, 2, 4, 5), v=(1, 2, 4, 5), causal=True),
    "scale": dict(q=(3, 4, 5), k=(3, 6, 5), v=(3, 6, 2), scale=0.3),
    "gqa": dict(q=(2, 4, 3, 5), k=(2, 2, 6, 5), v=(2, 2, 6, 5), gqa=True),
    "broadcast_batch": dict(q=(2, 3, 4, 5), k=(1, 3, 6, 5), v=(1, 3, 6, 5)),
}


@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_sdpa_matches_torch(case):
    torch = torch_or_skip()
    c = SDPA_CASES[case]
    arrays = [rand(*c[n], seed=i) for i, n in enumerate("qkv")]
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)
    pq, pk, pv = (pt.tensor(a, requires_grad=True) for a in arrays)
    tm, pm = _mask_pair(c.get("mask"), c.get("mshape"), 7)
    kw = dict(is_causal=c.get("causal", False), scale=c.get("scale"))
    if c.get("gqa"):
        kw["enable_gqa"] = True
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kw)
    pout = F.scaled_dot_product_attention(pq, pk, pv, attn_mask=pm, **kw)
    assert tuple(pout.shape) == tuple(tout.shape)
    close(to_numpy(pout), to_numpy(tout))
    g = rand(*tout.shape, seed=9)
    tout.backward(torch.tensor(g))
    pout.backward(pt.tensor(g))
    for p_, t_ in ((pq, tq), (pk, tk), (pv, tv)):
        close(p_.grad.numpy(), t_.grad.numpy())


def test_sdpa_fully_masked_rows_are_zero_with_finite_grads():
    torch = torch_or_skip()
    q, k, v = rand(1, 3, 4, seed=1), rand(1, 5, 4, seed=2), rand(1, 5, 4, seed=3)
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    fmask = np.where(mask, 0.0, -np.inf)
    for m in (mask, fmask):
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        pq, pk, pv = (pt.tensor(a, requires_grad=True) for a in (q, k, v))
        tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, torch.tensor(m))
        pout = F.scaled_dot_product_attention(pq, pk, pv, pt.tensor(m))
        assert np.all(to_numpy(pout)[0, 1] == 0)
        close(to_numpy(pout), to_numpy(tout))
        tout.sum().backward()
        pout.sum().backward()
        for p_, t_ in ((pq, tq), (pk, tk), (pv, tv)):
            assert np.isfinite(p_.grad.numpy()).all()
            close(p_.grad.numpy(), t_.grad.numpy())


def test_sdpa_float_mask_gradient_and_gradcheck():
    torch = torch_or_skip()
    q, k, v, m = rand(2, 3, 4, seed=1), rand(2, 5, 4, seed=2), rand(2, 5, 3, seed=3), \
        rand(3, 5, seed=4)
    tm, pm = torch.tensor(m, requires_grad=True), pt.tensor(m, requires_grad=True)
    tout = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=tm)
    pout = F.scaled_dot_product_attention(pt.tensor(q), pt.tensor(k), pt.tensor(v),
                                          attn_mask=pm)
    (tout ** 2).sum().backward()
    (pout ** 2).sum().backward()
    close(pm.grad.numpy(), tm.grad.numpy())
    args = [pt.tensor(a[:1, :2], requires_grad=True) for a in (q, k, v)]
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), args)
    bm = pt.tensor([[True, False], [True, True]])
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, bm), args)


def test_sdpa_dropout():
    q = pt.tensor(rand(2, 4, 3, seed=1))
    plain = F.scaled_dot_product_attention(q, q, q)
    pt.manual_seed(0)
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    pt.manual_seed(0)
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), plain.numpy())
    assert np.all(F.scaled_dot_product_attention(q, q, q, dropout_p=1.0).numpy() == 0)


def test_sdpa_errors():
    q, k = pt.zeros(2, 4, 5), pt.zeros(2, 6, 5)
    with pytest.raises(ValueError, match="scaled_dot_product_attention: explicit attn_mask "
                                         "should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=pt.ones(4, 6, dtype=pt.bool),
                                       is_causal=True)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 5\) does not broadcast to "
                                         r"the attention weights' shape \(2, 4, 6\)"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=pt.zeros(4, 5))
    with pytest.raises(ValueError, match=r"query \(2, 4, 5\) and key \(2, 6, 3\) must have the "
                                         r"same embedding size"):
        F.scaled_dot_product_attention(q, pt.zeros(2, 6, 3), pt.zeros(2, 6, 3))
    with pytest.raises(ValueError, match=r"key \(2, 6, 5\) and value \(2, 7, 5\) must have the "
                                         r"same sequence length"):
        F.scaled_dot_product_attention(q, k, pt.zeros(2, 7, 5))
    with pytest.raises(TypeError, match="only bool and floating-point attn_mask"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=pt.zeros(4, 6, dtype=pt.int64))
    with pytest.raises(ValueError, match="query heads \\(3\\) must be a multiple"):
        F.scaled_dot_product_attention(pt.zeros(1, 3, 4, 5), pt.zeros(1, 2, 6, 5),
                                       pt.zeros(1, 2, 6, 5), enable_gqa=True)
    with pytest.raises(ValueError, match="do not broadcast"):
        F.scaled_dot_product_attention(pt.zeros(2, 4, 5), pt.zeros(3, 6, 5), pt.zeros(3, 6, 5))


# --------------------------------------------------------------------------- MHA ---------
def _mha_pair(E=4, H=2, **kw):
    torch = torch_or_skip()
    tm = torch.nn.MultiheadAttention(E, H, **kw).double()
    pm = nn.MultiheadAttention(E, H, dtype=pt.float64, **kw)
    copy_weights(pm, tm)
    return pm, tm


# name: (module kwargs, call kwargs, masks, layout)
MHA_CASES = {
    "self": ({}, {}, {}, "self"),
    "self_no_weights": ({}, {"need_weights": False}, {}, "self"),
    "per_head_weights": ({}, {"average_attn_weights": False}, {}, "cross"),
    "batch_first": ({"batch_first": True}, {}, {}, "self"),
    "batch_first_kv": ({"batch_first": True}, {"need_weights": False}, {}, "kv"),
    "kdim_vdim": ({"kdim": 3, "vdim": 5}, {}, {}, "cross"),
    "bias_kv_zero_attn": ({"add_bias_kv": True, "add_zero_attn": True}, {},
                          {"attn_mask": ("bool", "2d"), "key_padding_mask": "bool"}, "cross"),
    "no_bias": ({"bias": False}, {"need_weights": False}, {}, "kv"),
    "bool_mask_2d": ({}, {}, {"attn_mask": ("bool", "2d")}, "cross"),
    "float_mask_3d": ({}, {}, {"attn_mask": ("float", "3d")}, "cross"),
    "float_mask_3d_sdpa": ({}, {"need_weights": False}, {"attn_mask": ("float", "3d")},
                           "cross"),
    "kpm_bool": ({}, {}, {"key_padding_mask": "bool"}, "self"),
    "kpm_float_and_mask": ({}, {"need_weights": False},
                           {"attn_mask": ("float", "2d"), "key_padding_mask": "float"}, "kv"),
    "causal_hint": ({}, {"need_weights": False, "is_causal": True},
                    {"attn_mask": ("causal", "2d")}, "self"),
    "causal_hint_weights": ({}, {"is_causal": True}, {"attn_mask": ("causal", "2d")}, "self"),
    "unbatched": ({}, {}, {"attn_mask": ("float", "2d"), "key_padding_mask": "float"},
                  "unbatched"),
    "unbatched_no_weights": ({}, {"need_weights": False}, {"attn_mask": ("bool", "3d")},
                             "unbatched"),
}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_mha_matches_torch(case):
    torch = torch_or_skip()
    mkw, ckw, masks, layout = MHA_CASES[case]
    E, H, L, S, N = 4, 2, 3, 5, 2
    pm, tm = _mha_pair(E, H, **mkw)
    kd, vd = mkw.get("kdim", E), mkw.get("vdim", E)
    bf = mkw.get("batch_first", False)
    if layout == "self":
        S = L

    def shape(seq, feat):
        if layout == "unbatched":
            return (seq, feat)
        return (N, seq, feat) if bf else (seq, N, feat)
    arrays = {"q": rand(*shape(L, E), seed=1)}
    if layout in ("cross", "unbatched"):
        arrays["k"] = rand(*shape(S, kd), seed=2)
        arrays["v"] = rand(*shape(S, vd), seed=3)
    elif layout == "kv":
        arrays["k"] = rand(*shape(S, kd), seed=2)
    tt = {n: torch.tensor(a, requires_grad=True) for n, a in arrays.items()}
    pp = {n: pt.tensor(a, requires_grad=True) for n, a in arrays.items()}

    def qkv(d):
        q = d["q"]
        k = d.get("k", q)
        v = d.get("v", k)
        return q, k, v
    targs, pargs = {}, {}
    if "attn_mask" in masks:
        kind, dims = masks["attn_mask"]
        mshape = (L, S) if dims == "2d" else ((H, L, S) if layout == "unbatched"
                                              else (N * H, L, S))
        if kind == "causal":
            m = np.triu(np.full((L, S), -np.inf), 1)
            targs["attn_mask"], pargs["attn_mask"] = torch.tensor(m), pt.tensor(m)
        else:
            targs["attn_mask"], pargs["attn_mask"] = _mask_pair(kind, mshape, 11)
    if "key_padding_mask" in masks:
        kshape = (S,) if layout == "unbatched" else (N, S)
        if masks["key_padding_mask"] == "bool":
            m = np.zeros(kshape, dtype=bool)
            m[..., -2:] = True  # pad the last two keys
            targs["key_padding_mask"], pargs["key_padding_mask"] = torch.tensor(m), pt.tensor(m)
        else:
            targs["key_padding_mask"], pargs["key_padding_mask"] = _mask_pair("float", kshape, 12)
    tout, tw = tm(*qkv(tt), **targs, **ckw)
    pout, pw = pm(*qkv(pp), **pargs, **ckw)
    assert tuple(pout.shape) == tuple(tout.shape)
    close(to_numpy(pout), to_numpy(tout))
    if tw is None:
        assert pw is None
    else:
        assert tuple(pw.shape) == tuple(tw.shape)
        close(to_numpy(pw), to_numpy(tw))
    g = rand(*tout.shape, seed=20)
    loss_t = (tout * torch.tensor(g)).sum() + (0 if tw is None else (tw ** 2).sum())
    loss_p = (pout * pt.tensor(g)).sum() + (0 if pw is None else (pw ** 2).sum())
    loss_t.backward()
    loss_p.backward()
    for n in arrays:
        close(pp[n].grad.numpy(), tt[n].grad.numpy())
    same_param_grads(pm, tm)


def test_mha_functional_matches_torch():
    torch = torch_or_skip()
    pm, tm = _mha_pair(4, 2)
    q, k = rand(3, 2, 4, seed=1), rand(5, 2, 4, seed=2)
    targs = (torch.tensor(q), torch.tensor(k), torch.tensor(k), 4, 2, tm.in_proj_weight,
             tm.in_proj_bias, None, None, False, 0.0, tm.out_proj.weight, tm.out_proj.bias)
    pargs = (pt.tensor(q), pt.tensor(k), pt.tensor(k), 4, 2, pm.in_proj_weight,
             pm.in_proj_bias, None, None, False, 0.0, pm.out_proj.weight, pm.out_proj.bias)
    to, tw = torch.nn.functional.multi_head_attention_forward(*targs)
    po, pw = F.multi_head_attention_forward(*pargs)
    close(to_numpy(po), to_numpy(to))
    close(to_numpy(pw), to_numpy(tw))
    # precomputed (static) keys and values, per head: (N * num_heads, S, head_dim)
    sk, sv = rand(4, 6, 2, seed=3), rand(4, 6, 2, seed=4)
    to, tw = torch.nn.functional.multi_head_attention_forward(
        *targs, static_k=torch.tensor(sk), static_v=torch.tensor(sv),
        average_attn_weights=False)
    po, pw = F.multi_head_attention_forward(*pargs, static_k=pt.tensor(sk),
                                            static_v=pt.tensor(sv), average_attn_weights=False)
    close(to_numpy(po), to_numpy(to))
    close(to_numpy(pw), to_numpy(tw))
    with pytest.raises(ValueError, match=r"multi_head_attention_forward: expected static_k of "
                                         r"shape \(N \* num_heads, S, head_dim\)"):
        F.multi_head_attention_forward(*pargs, static_k=pt.tensor(sk[:2]),
                                       static_v=pt.tensor(sv))


def test_mha_init_and_state_dict_names():
    torch = torch_or_skip()
    for kw in ({}, {"kdim": 3, "vdim": 5, "add_bias_kv": True}, {"bias": False}):
        tm = torch.nn.MultiheadAttention(8, 2, **kw)
        pm = nn.MultiheadAttention(8, 2, **kw)
        assert [(k, tuple(v.shape)) for k, v in pm.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
        assert repr(pm) == repr(tm)
    pt.manual_seed(0)
    m = nn.MultiheadAttention(16, 4)
    w = m.in_proj_weight.detach().numpy()
    bound = math.sqrt(6 / (16 + 48))  # Xavier-uniform of the packed (3E, E) weight
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    assert np.all(m.in_proj_bias.detach().numpy() == 0)
    assert np.all(m.out_proj.bias.detach().numpy() == 0)
    assert m.head_dim == 4 and m._qkv_same_embed_dim


def test_mha_dropout_only_in_training():
    m = nn.MultiheadAttention(4, 2, dropout=0.5, dtype=pt.float64)
    x = pt.tensor(rand(3, 2, 4, seed=1))
    m.eval()
    a, wa = m(x, x, x)
    b, _ = m(x, x, x)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    close(to_numpy(wa).sum(-1), np.ones((2, 3)), rtol=1e-12)
    m.train()
    pt.manual_seed(0)
    c, wc = m(x, x, x)
    assert not np.allclose(to_numpy(c), to_numpy(a))


def test_mha_gradcheck():
    pt.manual_seed(0)
    m = nn.MultiheadAttention(4, 2, add_bias_kv=True, dtype=pt.float64)
    q = pt.tensor(rand(2, 1, 4, seed=1), requires_grad=True)
    kv = pt.tensor(rand(3, 1, 4, seed=2), requires_grad=True)
    w = m.in_proj_weight.detach().clone().requires_grad_(True)
    mask = pt.tensor([[False, True, False], [False, False, False]])

    def run(q, kv, w):
        saved = m._parameters["in_proj_weight"]
        m._parameters["in_proj_weight"] = w
        try:
            out, weights = m(q, kv, kv, attn_mask=mask)
            return out, weights
        finally:
            m._parameters["in_proj_weight"] = saved
    assert gradcheck(run, (q, kv, w))


def test_mha_errors():
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim \(5\) must be "
                                         r"divisible by num_heads \(2\)"):
        nn.MultiheadAttention(5, 2)
    m = nn.MultiheadAttention(4, 2)
    x = pt.zeros(3, 2, 4)
    me = r"MultiheadAttention\(embed_dim=4, num_heads=2\): "
    with pytest.raises(ValueError, match=me + r"expected query with embed_dim=4 features in "
                                              r"its last dimension, got query of shape "
                                              r"\(3, 2, 5\)"):
        m(pt.zeros(3, 2, 5), x, x)
    with pytest.raises(ValueError, match=me + r"the 2-D attn_mask has shape \(3, 4\), but "
                                              r"should be \(L, S\) = \(3, 3\)"):
        m(x, x, x, attn_mask=pt.zeros(3, 4))
    with pytest.raises(ValueError, match=me + r"the 3-D attn_mask has shape \(2, 3, 3\), but "
                                              r"should be \(N \* num_heads, L, S\) = "
                                              r"\(4, 3, 3\)"):
        m(x, x, x, attn_mask=pt.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=me + r"expected key_padding_mask of shape \(N, S\) = "
                                              r"\(2, 3\), got \(2, 4\)"):
        m(x, x, x, key_padding_mask=pt.zeros(2, 4, dtype=pt.bool))
    with pytest.raises(ValueError, match=me + "for batched \\(3-D\\) query, expected "
                                              "key_padding_mask to be None or 2-D"):
        m(x, x, x, key_padding_mask=pt.zeros(3, dtype=pt.bool))
    with pytest.raises(TypeError, match=me + "only bool and floating-point attn_mask are "
                                             "supported, got int64"):
        m(x, x, x, attn_mask=pt.zeros(3, 3, dtype=pt.int64))
    with pytest.raises(TypeError, match=me + "key_padding_mask must be a tensor or None, got "
                                             "list"):
        m(x, x, x, key_padding_mask=[[True, False, False]])
    with pytest.raises(ValueError, match=me + "is_causal=True is a hint .* attn_mask is "
                                              "required"):
        m(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=me + "for batched \\(3-D\\) query, expected key and "
                                              "value to be 3-D"):
        m(x, pt.zeros(3, 4), pt.zeros(3, 4))
    with pytest.raises(ValueError, match=me + r"query \(3, 2, 4\) and key \(3, 1, 4\) must "
                                              r"have the same batch size"):
        m(x, pt.zeros(3, 1, 4), pt.zeros(3, 1, 4))
    with pytest.raises(ValueError, match=r"multi_head_attention_forward: embed_dim \(4\) must "
                                         r"be divisible by num_heads \(3\)"):
        F.multi_head_attention_forward(x, x, x, 4, 3, m.in_proj_weight, m.in_proj_bias, None,
                                       None, False, 0.0, m.out_proj.weight, m.out_proj.bias)


# ----------------------------------------------------------------------- transformer -----
def _tel_pair(**kw):
    torch = torch_or_skip()
    tkw = dict(kw)
    pkw = dict(kw)
    act = kw.get("activation")
    if act == "silu":  # a callable activation: each framework's own silu
        tkw["activation"] = torch.nn.functional.silu
        pkw["activation"] = F.silu
    tm = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, **tkw).double()
    pm = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, dtype=pt.float64,
                                    **pkw)
    copy_weights(pm, tm)
    return pm, tm


TEL_CASES = {
    "post_norm_relu": ({}, {}),
    "pre_norm_gelu": ({"norm_first": True, "activation": "gelu"}, {}),
    "callable_activation": ({"activation": "silu", "norm_first": True}, {}),
    "batch_first_masks": ({"batch_first": True}, {"src_mask": "bool", "kpm": True}),
    "float_mask": ({}, {"src_mask": "float"}),
    "causal": ({"norm_first": True}, {"src_mask": "causal", "is_causal": True}),
    "no_bias": ({"bias": False, "layer_norm_eps": 1e-3}, {"kpm": True}),
    "unbatched": ({}, {"src_mask": "float", "unbatched": True}),
}


@pytest.mark.parametrize("case", list(TEL_CASES))
def test_transformer_encoder_layer_matches_torch(case):
    torch = torch_or_skip()
    mkw, ckw = TEL_CASES[case]
    pm, tm = _tel_pair(**mkw)
    L, N = 4, 2
    if ckw.get("unbatched"):
        shape = (L, 4)
    else:
        shape = (N, L, 4) if mkw.get("batch_first") else (L, N, 4)
    x = rand(*shape, seed=1)
    tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
    targs, pargs = {}, {}
    sm = ckw.get("src_mask")
    if sm == "causal":
        m = np.triu(np.full((L, L), -np.inf), 1)
        targs["src_mask"], pargs["src_mask"] = torch.tensor(m), pt.tensor(m)
        targs["is_causal"] = pargs["is_causal"] = True
    elif sm is not None:
        targs["src_mask"], pargs["src_mask"] = _mask_pair(sm, (L, L), 5)
        if sm == "bool":  # keep every query able to see itself
            eye = np.eye(L, dtype=bool)
            targs["src_mask"] = targs["src_mask"] & torch.tensor(~eye)
            pargs["src_mask"] = pt.tensor(targs["src_mask"].numpy())
    if ckw.get("kpm"):
        m = np.zeros((N, L), dtype=bool)
        m[1, -1] = True
        targs["src_key_padding_mask"] = torch.tensor(m)
        pargs["src_key_padding_mask"] = pt.tensor(m)
    tout = tm(tx, **targs)
    pout = pm(px, **pargs)
    assert tuple(pout.shape) == tuple(tout.shape)
    close(to_numpy(pout), to_numpy(tout))
    g = rand(*tout.shape, seed=3)
    tout.backward(torch.tensor(g))
    pout.backward(pt.tensor(g))
    close(px.grad.numpy(), tx.grad.numpy())
    same_param_grads(pm, tm)


def test_transformer_encoder_layer_eval_matches_torch():
    torch = torch_or_skip()
    torch_m = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, batch_first=True)
    pm = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, batch_first=True,
                                    dtype=pt.float64)
    tm = torch_m.double().eval()
    copy_weights(pm, tm)
    pm.eval()
    x = rand(2, 3, 4, seed=1)
    with torch.no_grad():  # PyTorch's inference fast path
        tout = tm(torch.tensor(x))
    close(to_numpy(pm(pt.tensor(x))), tout.numpy())
    assert repr(pm) == repr(tm)


def test_transformer_encoder_matches_torch():
    torch = torch_or_skip()
    tl = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0)
    tm = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(4),
                                     enable_nested_tensor=False).double()
    pl = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, dtype=pt.float64)
    pm = nn.TransformerEncoder(pl, 2, norm=nn.LayerNorm(4, dtype=pt.float64),
                               enable_nested_tensor=False)
    assert repr(pm) == repr(tm)
    copy_weights(pm, tm)
    x = rand(3, 2, 4, seed=1)
    causal = np.triu(np.full((3, 3), -np.inf), 1)
    kpm = np.where([[False, False, True], [False, False, False]], -np.inf, 0.0)
    for kw in ({}, {"mask": causal}, {"mask": causal, "src_key_padding_mask": kpm}):
        tx, px = torch.tensor(x, requires_grad=True), pt.tensor(x, requires_grad=True)
        tout = tm(tx, **{k: torch.tensor(v) for k, v in kw.items()})
        pout = pm(px, **{k: pt.tensor(v) for k, v in kw.items()})
        close(to_numpy(pout), to_numpy(tout))
        tout.sum().backward()
        pout.sum().backward()
        close(px.grad.numpy(), tx.grad.numpy())
    # the layers are independent copies
    assert pm.layers[0].linear1.weight is not pm.layers[1].linear1.weight
    assert pm.layers[0].linear1.weight is not pl.linear1.weight


def test_transformer_runs_on_a_backend_without_fused_kernels():
    # only the composite defaults (no fused linear, softmax, layer_norm): same values, grads
    x = rand(3, 2, 4, seed=1)
    mask = np.triu(np.full((3, 3), -np.inf), 1)
    pt.manual_seed(0)
    m = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, dtype=pt.float64)
    results = []
    with cpu_clone("nofusedattn", drop=("linear", "softmax", "layer_norm")) as dev:
        for device in ("cpu", dev):
            m.to(device)
            m.zero_grad()
            px = pt.tensor(x, device=device, requires_grad=True)
            out = m(px, src_mask=pt.tensor(mask, device=device), is_causal=True)
            (out ** 2).sum().backward()
            results.append([t.detach().to("cpu").numpy() for t in
                            (out, px.grad, m.self_attn.in_proj_weight.grad)])
        m.to("cpu")
    for a, b in zip(*results):
        close(a, b, rtol=1e-10)


def test_transformer_gradcheck():
    pt.manual_seed(0)
    m = nn.TransformerEncoderLayer(4, 2, dim_feedforward=3, dropout=0.0, activation="gelu",
                                   dtype=pt.float64)
    x = pt.tensor(rand(2, 1, 4, seed=1), requires_grad=True)
    w = m.linear1.weight.detach().clone().requires_grad_(True)
    mask = pt.tensor([[0.0, -1.0], [0.5, 0.0]], dtype=pt.float64)

    def run(x, w):
        saved = m.linear1._parameters["weight"]
        m.linear1._parameters["weight"] = w
        try:
            return m(x, src_mask=mask)
        finally:
            m.linear1._parameters["weight"] = saved
    assert gradcheck(run, (x, w))


def test_transformer_errors_and_reprs():
    torch = torch_or_skip()
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer\(d_model=4, nhead=2\): "
                                         r"expected src of shape \(L, N, E\) .* E = d_model = 4, "
                                         r"got shape \(3, 2, 5\)"):
        nn.TransformerEncoderLayer(4, 2, 8)(pt.zeros(3, 2, 5))
    with pytest.raises(ValueError, match="activation should be 'relu' or 'gelu'"):
        nn.TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"embed_dim \(4\) must be divisible by num_heads "
                                         r"\(3\)"):
        nn.TransformerEncoderLayer(4, 3)
    m = nn.TransformerEncoderLayer(4, 2, 8)
    with pytest.raises(ValueError, match=r"the 2-D attn_mask has shape \(2, 2\), but should "
                                         r"be \(L, S\) = \(3, 3\)"):
        m(pt.zeros(3, 2, 4), src_mask=pt.zeros(2, 2))
    for kw in ({}, {"norm_first": True, "activation": "gelu", "bias": False,
                    "batch_first": True, "dropout": 0.2}):
        assert repr(nn.TransformerEncoderLayer(8, 2, 16, **kw)) == \
            repr(torch.nn.TransformerEncoderLayer(8, 2, 16, **kw))
    act = nn.GELU()
    layer = nn.TransformerEncoderLayer(4, 2, 8, activation=act)
    assert layer.activation is act and "(activation): GELU" in repr(layer)


# --- the decoder and the full Transformer -------------------------------------------------
TDL_CASES = {
    "post_norm": ({}, {}),
    "pre_norm_gelu_masks": ({"norm_first": True, "activation": "gelu"},
                            {"tgt_mask": "causal", "memory_mask": True, "kpm": True}),
    "batch_first": ({"batch_first": True}, {"tgt_mask": "causal", "kpm": True}),
    "no_bias": ({"bias": False}, {}),
}


@pytest.mark.parametrize("case", list(TDL_CASES))
def test_transformer_decoder_layer_matches_torch(case):
    torch = torch_or_skip()
    mkw, ckw = TDL_CASES[case]
    tm = torch.nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0, **mkw).double()
    pm = nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0, dtype=pt.float64,
                                    **mkw)
    copy_weights(pm, tm)
    assert repr(pm) == repr(tm)
    T, S, N = 3, 5, 2
    bf = mkw.get("batch_first", False)
    tgt = rand(*((N, T, 4) if bf else (T, N, 4)), seed=1)
    mem = rand(*((N, S, 4) if bf else (S, N, 4)), seed=2)
    targs, pargs = {}, {}
    if ckw.get("tgt_mask") == "causal":
        m = np.triu(np.full((T, T), -np.inf), 1)
        targs["tgt_mask"], pargs["tgt_mask"] = torch.tensor(m), pt.tensor(m)
        targs["tgt_is_causal"] = pargs["tgt_is_causal"] = True
    if ckw.get("memory_mask"):
        m = np.zeros((T, S))
        m[0, -1] = -np.inf
        targs["memory_mask"], pargs["memory_mask"] = torch.tensor(m), pt.tensor(m)
    if ckw.get("kpm"):
        m = np.zeros((N, S), dtype=bool)
        m[1, -2:] = True
        targs["memory_key_padding_mask"] = torch.tensor(m)
        pargs["memory_key_padding_mask"] = pt.tensor(m)
    tt, pt_ = torch.tensor(tgt, requires_grad=True), pt.tensor(tgt, requires_grad=True)
    tmem, pmem = torch.tensor(mem, requires_grad=True), pt.tensor(mem, requires_grad=True)
    tout, pout = tm(tt, tmem, **targs), pm(pt_, pmem, **pargs)
    close(to_numpy(pout), to_numpy(tout))
    g = rand(*tout.shape, seed=3)
    tout.backward(torch.tensor(g))
    pout.backward(pt.tensor(g))
    close(pt_.grad.numpy(), tt.grad.numpy())
    close(pmem.grad.numpy(), tmem.grad.numpy())
    same_param_grads(pm, tm)


def test_transformer_matches_torch():
    torch = torch_or_skip()
    tm = torch.nn.Transformer(4, 2, num_encoder_layers=2, num_decoder_layers=2,
                              dim_feedforward=6, dropout=0.0).double()
    pm = nn.Transformer(4, 2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=6,
                        dropout=0.0, dtype=pt.float64)
    assert repr(pm) == repr(tm)
    assert sorted(n for n, _ in pm.named_parameters()) == \
        sorted(n for n, _ in tm.named_parameters())
    copy_weights(pm, tm)
    src, tgt = rand(5, 2, 4, seed=1), rand(3, 2, 4, seed=2)
    tmask = tm.generate_square_subsequent_mask(3, dtype=torch.float64)
    pmask = nn.Transformer.generate_square_subsequent_mask(3, dtype=pt.float64)
    np.testing.assert_array_equal(pmask.numpy(), tmask.numpy())
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt)
    ps, ptg = pt.tensor(src, requires_grad=True), pt.tensor(tgt)
    tout = tm(ts, tt, tgt_mask=tmask)
    pout = pm(ps, ptg, tgt_mask=pmask)
    close(to_numpy(pout), to_numpy(tout))
    tout.sum().backward()
    pout.sum().backward()
    close(ps.grad.numpy(), ts.grad.numpy())
    same_param_grads(pm, tm)
    with pytest.raises(ValueError, match="batch size of src"):
        pm(pt.zeros(5, 2, 4, dtype=pt.float64), pt.zeros(3, 3, 4, dtype=pt.float64))
    with pytest.raises(ValueError, match="must equal d_model"):
        pm(pt.zeros(5, 2, 3, dtype=pt.float64), pt.zeros(3, 2, 3, dtype=pt.float64))


def test_transformer_initialises_matrices_xavier_uniform():
    pt.manual_seed(0)
    m = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    w = m.encoder.layers[0].linear1.weight  # (16, 8): bound sqrt(6 / (16 + 8)) = 0.5
    assert float(w.abs().max()) <= 0.5 and float(w.abs().max()) > 0.4
    assert (m.decoder.norm.weight == 1).all()  # 1-D parameters keep their own init
