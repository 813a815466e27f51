"""bfloat16: the dtype's facts, ops against float64 NumPy references and against PyTorch's own
bfloat16, training and autocast in bfloat16, checkpoints, conversions and the error paths.

The cpu backend stores bfloat16 through ml_dtypes and computes it in float32, rounding once
(PyTorch's rule), so each result is the float64 reference rounded to bfloat16 up to one
rounding of the float32 computation: the tolerance is two bfloat16 ulps (2 ** -7 relative).
"""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
EPS = 2.0 ** -7  # bfloat16's machine epsilon


def _bf16(rng, shape, scale=1.0):
    """Random values that are exact in bfloat16, as float64 (the references' input)."""
    return (rng.standard_normal(shape) * scale).astype(BF16).astype(np.float64)


def _close(got, ref, rel=2 * EPS, abs_=1e-30):
    got = got.detach().float().numpy().astype(np.float64) if isinstance(got, pt.Tensor) \
        else np.asarray(got, dtype=np.float64)
    np.testing.assert_allclose(got, ref, rtol=rel, atol=abs_)


# --------------------------------------------------------------------------- the dtype ----
def test_dtype_facts_match_torch():
    torch = pytest.importorskip("torch")
    fi, tf = pt.finfo(pt.bfloat16), torch.finfo(torch.bfloat16)
    for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(fi, name) == getattr(tf, name), name
    assert pt.bfloat16.itemsize == 2 and pt.bfloat16.is_floating_point
    assert pt.bfloat16.to_complex() is pt.complex64
    assert pt.promote_types(pt.bfloat16, pt.float16) is pt.float32
    assert repr(pt.bfloat16) == "polyten.bfloat16"


def test_finfo_matches_ml_dtypes():
    fi, mf = pt.finfo(pt.bfloat16), ml_dtypes.finfo(ml_dtypes.bfloat16)
    assert fi.max == float(mf.max) and fi.eps == float(mf.eps)
    assert fi.tiny == float(mf.smallest_normal)
    assert fi.smallest_subnormal == float(mf.smallest_subnormal)


def test_weak_scalars_keep_bfloat16():
    x = pt.tensor([1.0, 2.0], dtype=pt.bfloat16)
    assert (x * 2.5).dtype is pt.bfloat16 and (x + 3).dtype is pt.bfloat16
    assert (x * 1j).dtype is pt.complex64
    assert (x + pt.tensor([1.0], dtype=pt.float16)).dtype is pt.float32
    assert (pt.tensor([1, 2]) + x).dtype is pt.bfloat16


def test_rounding_is_to_nearest_even_and_overflows_to_inf():
    # 1 + 2**-8 is halfway between 1 and 1 + 2**-7: ties go to the even significand (1)
    vals = [1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.5e38, -3.5e38, 1e-45, float("nan")]
    got = pt.tensor(vals, dtype=pt.float64).to(pt.bfloat16).float().numpy()
    with np.errstate(over="ignore"):
        want = np.array(vals).astype(BF16).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    assert got[0] == 1.0 and got[1] == 1.0 + 2.0 ** -6 and np.isinf(got[2:4]).all()


# ------------------------------------------------------------- ops vs float64 NumPy ----
@pytest.mark.parametrize("name, fn, ref", [
    ("exp", pt.exp, np.exp), ("log1p", lambda t: pt.log1p(t.abs()), lambda a: np.log1p(abs(a))),
    ("tanh", pt.tanh, np.tanh), ("sigmoid", pt.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    ("sqrt", lambda t: t.abs().sqrt(), lambda a: np.sqrt(abs(a))),
    ("erf", pt.erf, None), ("gelu", F.gelu, None),
])
def test_unary_ops_round_the_float64_result(name, fn, ref):
    rng = np.random.default_rng(0)
    a = _bf16(rng, (64,), 2.0)
    x = pt.tensor(a, dtype=pt.bfloat16)
    out = fn(x)
    assert out.dtype is pt.bfloat16
    if ref is None:
        import math
        erf = np.vectorize(math.erf)
        ref = erf if name == "erf" else (lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2))))
    _close(out, ref(a), abs_=EPS * 1e-3)


def test_sums_accumulate_in_float32():
    # 4096 ones summed in bfloat16 would stop at 256 (256 + 1 rounds back to 256)
    x = pt.ones(4096, dtype=pt.bfloat16)
    assert x.sum().item() == 4096.0 and x.sum().dtype is pt.bfloat16
    assert x.mean().item() == 1.0 and x.cumsum(0)[-1].item() == 4096.0
    rng = np.random.default_rng(1)
    a = _bf16(rng, (37, 300))
    t = pt.tensor(a, dtype=pt.bfloat16)
    _close(t.sum(dim=1), a.sum(axis=1), abs_=2 * EPS * np.abs(a).sum(axis=1).max() * 1e-2)
    _close(t.var(dim=1), a.var(axis=1, ddof=1))
    _close(pt.logsumexp(t, dim=1), np.log(np.exp(a).sum(axis=1)))


def test_matmul_linear_and_einsum_accumulate_in_float32():
    rng = np.random.default_rng(2)
    a, b, bias = _bf16(rng, (8, 512)), _bf16(rng, (512, 6)), _bf16(rng, (6,))
    x, w = pt.tensor(a, dtype=pt.bfloat16), pt.tensor(b, dtype=pt.bfloat16)
    scale = np.abs(a) @ np.abs(b)  # the error bound of a product scales with it
    for out in (x @ w, pt.einsum("ij,jk->ik", x, w)):
        assert out.dtype is pt.bfloat16
        np.testing.assert_allclose(out.float().numpy(), a @ b, atol=(2 * EPS * scale).max())
    lin = F.linear(x.reshape(2, 4, 512), w.T, pt.tensor(bias, dtype=pt.bfloat16))
    assert lin.dtype is pt.bfloat16 and tuple(lin.shape) == (2, 4, 6)
    np.testing.assert_allclose(lin.reshape(8, 6).float().numpy(), a @ b + bias,
                               atol=(2 * EPS * (scale + np.abs(bias))).max())


def test_softmax_cross_entropy_and_layer_norm():
    rng = np.random.default_rng(3)
    a = _bf16(rng, (16, 10), 3.0)
    x = pt.tensor(a, dtype=pt.bfloat16)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    _close(F.softmax(x, dim=1), p, abs_=EPS * 1e-2)
    _close(F.log_softmax(x, dim=1), np.log(p), abs_=2 * EPS * np.abs(np.log(p)).max())
    y = rng.integers(0, 10, 16)
    ce = F.cross_entropy(x, pt.tensor(y))
    assert ce.dtype is pt.bfloat16
    _close(ce, -np.log(p[np.arange(16), y]).mean())
    ln = F.layer_norm(x, (10,))
    ref = (a - a.mean(axis=1, keepdims=True)) / np.sqrt(a.var(axis=1, keepdims=True) + 1e-5)
    _close(ln, ref, abs_=2 * EPS * np.abs(ref).max())


def test_conv2d_and_max_pool():
    rng = np.random.default_rng(4)
    a, k = _bf16(rng, (2, 3, 8, 8)), _bf16(rng, (4, 3, 3, 3))
    x, w = pt.tensor(a, dtype=pt.bfloat16), pt.tensor(k, dtype=pt.bfloat16)
    out = F.conv2d(x, w, padding=1)
    ref = F.conv2d(pt.tensor(a), pt.tensor(k), padding=1).numpy().astype(np.float64)
    assert out.dtype is pt.bfloat16
    np.testing.assert_allclose(out.float().numpy(), ref, atol=2 * EPS * np.abs(ref).max())
    mp = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(mp.float().numpy(),
                                  a.reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))


def test_gradients_match_float64_gradients_of_the_same_inputs():
    rng = np.random.default_rng(5)
    a, b = _bf16(rng, (4, 16)), _bf16(rng, (16, 3))
    x = pt.tensor(a, dtype=pt.bfloat16, requires_grad=True)
    w = pt.tensor(b, dtype=pt.bfloat16, requires_grad=True)
    F.gelu(x @ w).sum().backward()
    x64 = pt.tensor(a, requires_grad=True, dtype=pt.float64)
    w64 = pt.tensor(b, requires_grad=True, dtype=pt.float64)
    F.gelu(x64 @ w64).sum().backward()
    assert x.grad.dtype is pt.bfloat16 and w.grad.dtype is pt.bfloat16
    for g, g64 in ((x.grad, x64.grad), (w.grad, w64.grad)):
        ref = g64.numpy()
        np.testing.assert_allclose(g.float().numpy(), ref, atol=4 * EPS * np.abs(ref).max())


# ----------------------------------------------------------------------- vs PyTorch -------
def _torch_pair(torch, rng, shape, scale=1.0):
    a = _bf16(rng, shape, scale).astype(np.float32)
    return pt.tensor(a).to(pt.bfloat16), torch.tensor(a).to(torch.bfloat16)


def _agree(ours, theirs, ulps=2):
    """Within ``ulps`` bfloat16 ulps of PyTorch's bfloat16 result (both round a float32
    computation once; summation orders differ)."""
    o = ours.float().detach().numpy().astype(np.float64)
    t = theirs.float().detach().numpy().astype(np.float64)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(o, t, rtol=ulps * EPS, atol=ulps * EPS * 1e-2 * (np.abs(t).max()
                                                                                + 1))


def test_ops_agree_with_torch_bfloat16():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x, tx = _torch_pair(torch, rng, (32, 64), 2.0)
    w, tw = _torch_pair(torch, rng, (64, 16))
    cases = [
        (x.exp(), tx.exp()), (x.tanh(), tx.tanh()), (F.silu(x), torch.nn.functional.silu(tx)),
        (x * 1.5 + 2, tx * 1.5 + 2), (x.sum(1), tx.sum(1)), (x.mean(), tx.mean()),
        (x.amax(0), tx.amax(0)), (x @ w, tx @ tw), (F.softmax(x, 1), tx.softmax(1)),
        (F.layer_norm(x, (64,)), torch.nn.functional.layer_norm(tx, (64,))),
        (x.cumsum(1), tx.cumsum(1)),
    ]
    for i, (ours, theirs) in enumerate(cases):
        try:
            _agree(ours, theirs)
        except AssertionError as exc:
            raise AssertionError(f"case {i}") from exc


def test_training_in_bfloat16_follows_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    xs = _bf16(rng, (64, 10)).astype(np.float32)
    ys = rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    tmodel = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
                                 torch.nn.Linear(32, 3))
    with torch.no_grad():
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            tp.copy_(torch.tensor(p.detach().numpy()))
    model.bfloat16()
    tmodel.to(torch.bfloat16)
    opt = pt.optim.AdamW(model.parameters(), lr=1e-2)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-2, foreach=False)
    x, tx = pt.tensor(xs).bfloat16(), torch.tensor(xs).bfloat16()
    y, ty = pt.tensor(ys), torch.tensor(ys)
    losses, tlosses = [], []
    for _ in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        tloss.backward()
        topt.step()
        losses.append(loss.item())
        tlosses.append(tloss.item())
    assert all(p.dtype is pt.bfloat16 for p in model.parameters())
    assert losses[-1] < 0.8 * losses[0]  # it learns
    np.testing.assert_allclose(losses, tlosses, rtol=0.05)


def test_autocast_bfloat16_on_the_cpu_follows_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    xs = rng.standard_normal((4, 8)).astype(np.float32)
    lin = nn.Linear(8, 5).to("cpu")  # a cpu region: cpu tensors whatever the default device
    tlin = torch.nn.Linear(8, 5)
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.detach().numpy()))
        tlin.bias.copy_(torch.tensor(lin.bias.detach().numpy()))
    assert pt.get_autocast_dtype("cpu") is pt.bfloat16  # PyTorch's cpu default
    # mse_loss is a float32 op in both of PyTorch's lists (polyten applies its CUDA lists on
    # every backend: log_softmax, say, is float32 there but not in PyTorch's cpu list)
    target = rng.standard_normal((4, 5)).astype(np.float32)
    with pt.autocast("cpu"):
        h = lin(pt.tensor(xs, device="cpu"))
        s = F.mse_loss(h, pt.tensor(target, device="cpu"), reduction="none")
    with torch.autocast("cpu"):
        th = tlin(torch.tensor(xs))
        ts = torch.nn.functional.mse_loss(th, torch.tensor(target), reduction="none")
    assert h.dtype is pt.bfloat16 and str(th.dtype) == "torch.bfloat16"
    assert s.dtype is pt.float32 and ts.dtype == torch.float32
    _agree(h, th)
    np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), rtol=1e-5, atol=1e-5)
    h.float().sum().backward()  # float32 parameters get float32 gradients
    assert lin.weight.grad.dtype is pt.float32


# ------------------------------------------------------------------ conversions, files ----
def test_numpy_round_trip_and_python_values():
    a = np.array([1.5, -2.25, 3.0], dtype=BF16)
    t = pt.tensor(a)
    assert t.dtype is pt.bfloat16
    assert t.numpy().dtype == BF16 and (t.numpy() == a).all()
    assert t.tolist() == [1.5, -2.25, 3.0] and t[0].item() == 1.5
    assert t.type() == "polyten.BFloat16Tensor" and t.float().dtype is pt.float32
    assert repr(pt.tensor([1.0, 2.5, 3.14159], dtype=pt.bfloat16)) == \
        "tensor([1.0000, 2.5000, 3.1406], dtype=polyten.bfloat16)"


def test_torch_bfloat16_tensors_get_a_clear_error():
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.5], dtype=torch.bfloat16)
    with pytest.raises(TypeError, match=r"bfloat16 Tensor cannot be read through NumPy.*"
                                        r"polyten.asarray\(t.float\(\)\).to\(polyten.bfloat16\)"):
        pt.asarray(t)
    assert pt.asarray(t.float()).to(pt.bfloat16).item() == 1.5


def test_checkpoint_round_trip(tmp_path):
    m = nn.Linear(3, 2).bfloat16()
    x = pt.tensor([1e30, -2.5, 2.0 ** -130], dtype=pt.bfloat16)
    pt.save({"m": m.state_dict(), "x": x}, tmp_path / "a.pt")
    back = pt.load(tmp_path / "a.pt")
    assert back["x"].dtype is pt.bfloat16 and bool((back["x"] == x).all())
    for k, v in m.state_dict().items():
        assert back["m"][k].dtype is pt.bfloat16 and bool((back["m"][k] == v).all())


def test_random_bfloat16_is_on_the_grid_and_below_one():
    pt.manual_seed(0)
    u = pt.rand(10000, dtype=pt.bfloat16).float().numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    assert np.all(u * 256 == np.round(u * 256))  # multiples of 2**-8: never rounded up to 1
    n = pt.randn(10000, dtype=pt.bfloat16)
    assert n.dtype is pt.bfloat16 and abs(n.float().std().item() - 1) < 0.05


def test_a_backend_without_bfloat16_refuses_it_by_name():
    from polyten.dispatch import DtypeNotStoredError, backends
    if "template" not in {b.name for b in backends()}:
        pytest.skip("the template backend (examples/polyten_template) is not installed")
    with pytest.raises(DtypeNotStoredError, match="template.*does not store bfloat16"):
        pt.zeros(2, dtype=pt.bfloat16, device="template")
    with pytest.raises(TypeError, match="autocast: backend 'template' does not store bfloat16"):
        pt.autocast("template", dtype=pt.bfloat16)


def test_cuda_is_bf16_supported_is_false_without_cuda():
    if pt.cuda.is_available():
        pytest.skip("a GPU is present")
    assert pt.cuda.is_bf16_supported() is False


def test_default_collate_stacks_bfloat16_arrays():
    from polyten.utils.data import DataLoader
    data = [np.full(3, i, dtype=BF16) for i in range(4)]
    batches = list(DataLoader(data, batch_size=2))
    assert [b.dtype for b in batches] == [pt.bfloat16, pt.bfloat16]
    assert batches[1].float().tolist() == [[2.0] * 3, [3.0] * 3]


def test_array_modules_with_a_bfloat16_gemm_multiply_natively():
    """``upcast_products``: NumPy multiplies float16 and bfloat16 in float32; another array
    module (CuPy) keeps float16 on its BLAS, and bfloat16 too when one small product, tried
    once, gives a right bfloat16 result (else bfloat16 goes through float32)."""
    import types

    from polyten_cpu.kernels import _util

    assert _util.upcast_products(np) == {np.dtype("float16"), BF16}

    def module(name, matmul_result):
        class Arr:
            def __init__(self, dtype):
                self.dtype = dtype

            def __matmul__(self, other):
                return matmul_result(self)

            def __getitem__(self, key):
                return self

            def astype(self, dtype):
                return self

            def __float__(self):
                return 2.0
        mod = types.ModuleType(name)  # an array module: hashable, named
        mod.dtype = np.dtype
        mod.ones = lambda shape, dtype: Arr(np.dtype(dtype))
        return mod

    native = module("gpu_a", lambda a: a)
    wrong_dtype = module("gpu_b", lambda a: type(a)(np.dtype("float32")))

    def raising(a):
        raise TypeError("no bfloat16 GEMM")
    missing = module("gpu_c", raising)
    assert _util.upcast_products(native) == frozenset()
    assert _util.upcast_products(wrong_dtype) == {BF16}
    assert _util.upcast_products(missing) == {BF16}
