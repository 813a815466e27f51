"""The cuda backend on a real GPU: ops, devices, transfers, pinned copies, fused kernels against
the cpu backend and PyTorch, fused vs generic optimizer trajectories, memory statistics, float16,
per-device random generators, and a training step that never waits for the GPU.

Every test here skips, with the reason ``polyten backends`` gives, where CuPy or a GPU is
missing.  ``scripts/gpu_check.sh`` runs this file, the conformance suite on ``cuda`` and
``benchmarks/bench_cuda.py`` on a GPU machine.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import polyten as pt


def _reason() -> str:
    info = {b.name: b for b in pt.backends()}.get("cuda")
    if info is None:
        return "the polyten-cuda plugin is not installed"
    return info.reason or info.error


pytestmark = pytest.mark.skipif(not pt.cuda.is_available(),
                                reason=f"cuda backend unavailable: {_reason()}")

needs_two = pytest.mark.skipif(pt.cuda.device_count() < 2, reason="needs two GPUs")


def _close(a, b, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b), rtol=rtol,
                               atol=atol)


def _x(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- devices and transfers ---------------------------------------------------------------
def test_tensors_live_on_cuda_and_compute_there():
    import cupy
    x = pt.tensor(_x((4, 5), "float64"), device="cuda")
    assert x.device == pt.device("cuda:0") or x.device.type == "cuda"
    assert isinstance(x._data, cupy.ndarray)
    y = (x * 2 + 1).exp().sum(dim=1)
    _close(y.cpu().numpy(), np.exp(_x((4, 5), "float64") * 2 + 1).sum(1), rtol=1e-12)
    assert str(pt.ones(2, device="cuda").device).startswith("cuda:")


def test_host_device_round_trip_all_dtypes():
    for dt in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
               "float64", "complex64", "complex128"):
        a = (np.arange(12).reshape(3, 4) % 3).astype(dt)
        t = pt.tensor(a).to("cuda")
        assert t.dtype.name == dt
        back = t.cpu().numpy()
        assert back.dtype == a.dtype and np.array_equal(back, a)


@needs_two
def test_device_to_device_copy_and_ops_on_the_second_gpu():
    import cupy
    a = _x((256, 128))
    t0 = pt.tensor(a, device="cuda:0")
    t1 = t0.to("cuda:1")
    assert t1.device == pt.device("cuda:1") and t1._data.device.id == 1
    # ops on cuda:1 run on GPU 1 whatever the current device is
    with cupy.cuda.Device(0):
        r = (t1 * 3).sum(dim=0)
    assert r.device == pt.device("cuda:1")
    _close(r.cpu().numpy(), (a * 3).sum(0), rtol=1e-5)
    back = t1.to("cuda:0")
    assert np.array_equal(back.cpu().numpy(), a)
    with pytest.raises(Exception, match="cuda:0|cuda:1|device"):
        t0 + t1  # the core refuses mixed devices


def test_pinned_non_blocking_copies():
    from polyten.api.pinning import host_to_native
    dev = pt.device("cuda")
    host = _x((64, 1000))
    b = dev.backend
    pinned = b.kernels["pin_memory"](host)
    assert b.kernels["is_pinned"](pinned) and not b.kernels["is_pinned"](host)
    native = host_to_native(host, dev, pin=True)
    pt.cuda.synchronize()
    import cupy
    assert np.array_equal(cupy.asnumpy(native), host)
    t = pt.tensor(host, device="cpu").pin_memory("cuda")
    assert t.device == pt.device("cpu") and t.is_pinned("cuda")
    assert not pt.tensor(host, device="cpu").is_pinned("cuda")
    # non_blocking from pinned memory: the asynchronous copy, the same values
    assert np.array_equal(t.to("cuda", non_blocking=True).cpu().numpy(), host)
    assert np.array_equal(t.to("cuda").cpu().numpy(), host)


def test_dataloader_pin_memory_batches_arrive_intact():
    from polyten.data import DataLoader, TensorDataset
    x = pt.tensor(_x((40, 3)))
    y = pt.arange(40)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, pin_memory=True)
    seen = []
    for xb, yb in loader:
        xb, yb = xb.to("cuda"), yb.to("cuda")
        seen.append(yb.cpu().numpy())
    assert np.array_equal(np.concatenate(seen), np.arange(40))


# --- fused kernels vs the cpu backend ------------------------------------------------------
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-6),
                                        ("float16", 3e-3)])
def test_fused_forward_and_backward_match_cpu(dtype, rtol):
    import polyten.nn.functional as F
    a = _x((6, 5), dtype, seed=1)
    target = np.arange(6) % 5
    target[0] = -100
    results = {}
    for device in ("cpu", "cuda"):
        x = pt.tensor(a, device=device, requires_grad=True)
        t = pt.tensor(target, device=device)
        out = (F.softmax(x, 1).sum() + F.log_softmax(x, 0).sum() + pt.sigmoid(x).sum()
               + pt.tanh(x).sum() + F.relu(x).sum() + F.cross_entropy(x, t))
        out.backward()
        results[device] = (out.item(), x.grad.cpu().numpy().astype(np.float64))
    _close(results["cuda"][0], results["cpu"][0], rtol=rtol * 10, atol=rtol)
    _close(results["cuda"][1], results["cpu"][1], rtol=rtol * 10, atol=rtol)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_conv_raw_kernels_match_cpu(dtype, rtol):
    """conv1d/2d/3d and conv_transpose2d forward and backward through the one-launch
    im2col / col2im RawKernels (padded, strided, dilated, grouped) against the cpu backend."""
    import polyten.nn.functional as F
    cases = [
        (F.conv2d, (2, 4, 9, 8), (6, 2, 3, 3), dict(stride=(2, 1), padding=(1, 2),
                                                     dilation=(1, 2), groups=2)),
        (F.conv2d, (2, 3, 8, 8), (5, 3, 3, 3), dict(padding=1)),  # the flat layout
        (F.conv1d, (2, 3, 12), (4, 3, 4), dict(stride=3, padding=2, dilation=2)),
        (F.conv3d, (1, 2, 5, 6, 4), (3, 2, 2, 3, 2), dict(padding=(0, 1, 1))),
        (F.conv_transpose2d, (2, 4, 5, 6), (4, 3, 3, 2), dict(stride=2, padding=1,
                                                               output_padding=1)),
    ]
    pt.backends.cudnn.allow_tf32 = False  # float32 throughout: the TF32 default is tested below
    try:
        _conv_cases_match_cpu(cases, dtype, rtol)
    finally:
        pt.backends.cudnn.allow_tf32 = True


def _conv_cases_match_cpu(cases, dtype, rtol):
    for i, (fn, xs, ws, kw) in enumerate(cases):
        a, w = _x(xs, dtype, seed=i), _x(ws, dtype, seed=10 + i)
        res = {}
        for device in ("cpu", "cuda"):
            x = pt.tensor(a, device=device, requires_grad=True)
            wt = pt.tensor(w, device=device, requires_grad=True)
            y = fn(x, wt, **kw)
            (y * y).sum().backward()
            res[device] = [t.detach().cpu().numpy() for t in (y, x.grad, wt.grad)]
        for c, g in zip(res["cuda"], res["cpu"]):
            _close(c, g, rtol=rtol, atol=rtol)


def test_float32_convolutions_take_tf32_by_default_as_in_pytorch():
    """``polyten.backends.cudnn.allow_tf32`` (True by default, as torch's) governs float32
    convolutions, forward and backward: on a GPU with TF32 tensor cores (compute capability 8.0
    on) their products read TensorFloat-32 operands -- errors within TF32's bound and far
    above the same convolution's with the flag off, which is within float32's; ``x @ w`` keeps
    its own setting ("highest") either way.  References in float64 NumPy."""
    import polyten.nn.functional as F
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    win = np.lib.stride_tricks.sliding_window_view(
        np.pad(x64, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    ref = np.einsum("nchwij,ocij->nohw", win, w64)
    scale = np.einsum("nchwij,ocij->nohw", np.abs(win), np.abs(w64))
    # loss = y.sum(): the weight gradient sums each window over the batch and the grid
    gw_ref, gw_scale = (np.einsum("nchwij->cij", v)[None] for v in (win, np.abs(win)))
    k, gw_k = 32 * 9, 8 * 16 * 16  # products per output / per weight-gradient entry

    def errors():
        """(forward, weight gradient) errors relative to sum |a||b|, at their worst."""
        xt = pt.tensor(x, device="cuda")
        wt = pt.tensor(w, device="cuda", requires_grad=True)
        y = F.conv2d(xt, wt, padding=1)
        y.sum().backward()
        return ((np.abs(y.detach().cpu().numpy() - ref) / scale).max(),
                (np.abs(wt.grad.cpu().numpy() - gw_ref) / gw_scale).max())

    assert pt.backends.cudnn.allow_tf32 is True
    tf32 = errors()
    pt.backends.cudnn.allow_tf32 = False
    try:
        ieee = errors()
    finally:
        pt.backends.cudnn.allow_tf32 = True
    assert ieee[0] <= k * 2.0 ** -24 and ieee[1] <= gw_k * 2.0 ** -24
    assert tf32[0] <= 2.0 ** -9 + k * 2.0 ** -24 and tf32[1] <= 2.0 ** -9 + gw_k * 2.0 ** -24
    if pt.cuda.get_device_capability()[0] >= 8:  # TF32's 10-bit significands show
        assert tf32[0] > 16 * ieee[0] and tf32[1] > 16 * ieee[1], (tf32, ieee)
    else:
        assert tf32 == ieee
    a = rng.standard_normal((256, k)).astype(np.float32)
    wm = w64.reshape(64, k).T
    prod = pt.tensor(a, device="cuda") @ pt.tensor(wm.astype(np.float32), device="cuda")
    a64 = a.astype(np.float64)
    p_err = np.abs(prod.cpu().numpy() - a64 @ wm) / (np.abs(a64) @ np.abs(wm))
    assert p_err.max() <= k * 2.0 ** -24  # products: "highest" by default, whatever convs do


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-11), ("float32", 2e-5),
                                        ("float16", 3e-3)])
def test_fused_norms_and_running_statistics_match_cpu(dtype, rtol):
    """LayerNorm and BatchNorm2d (two training steps, then eval) on cuda -- the fused
    statistics / output / backward kernels and the one-launch running-statistics update --
    against the cpu backend."""
    res = {}
    for device in ("cpu", "cuda"):
        pt.manual_seed(0)
        ln = pt.nn.LayerNorm((6,)).to(device=device, dtype=dtype)
        sdt = "float64" if dtype == "float64" else "float32"  # float16: float32 statistics
        bn = pt.nn.BatchNorm2d(4).to(device=device, dtype=sdt)
        out = []
        for s in range(2):
            x = pt.tensor(_x((3, 4, 5, 6), dtype, seed=s) * 2 + 1, device=device,
                          requires_grad=True)
            y = bn(x.to(sdt)) + ln(x).to(sdt)
            (y * y).sum().backward()
            out += [y, x.grad, ln.weight.grad, ln.bias.grad, bn.weight.grad,
                    bn.running_mean, bn.running_var]
        bn.eval()
        out.append(bn(pt.tensor(_x((2, 4, 3, 3), sdt, seed=9), device=device)))
        res[device] = [t.detach().cpu().numpy().astype(np.float64) for t in out]
    for a, b in zip(res["cuda"], res["cpu"]):
        _close(a, b, rtol=rtol, atol=rtol * 10)


def test_fused_cross_entropy_matches_torch_float64():
    torch = pytest.importorskip("torch")
    import polyten.nn.functional as F
    a = _x((5, 7, 3), "float64", seed=2)
    target = np.random.default_rng(3).integers(0, 7, size=(5, 3))
    w = np.abs(_x((7,), "float64", seed=4)) + 0.1
    x = pt.tensor(a, device="cuda", requires_grad=True)
    loss = F.cross_entropy(x, pt.tensor(target, device="cuda"),
                           weight=pt.tensor(w, device="cuda"))
    loss.backward()
    tx = torch.tensor(a, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(target), weight=torch.tensor(w))
    tl.backward()
    _close(loss.item(), tl.item())
    _close(x.grad.cpu().numpy(), tx.grad.numpy())


@pytest.mark.parametrize("d", [64, 1025, 3000], ids=lambda d: f"d{d}")
def test_row_kernels_match_torch_float64(d):
    """softmax, log_softmax, cross-entropy (class weights, an ignored target), LayerNorm and
    BatchNorm1d/2d in training mode -- one launch each way on cuda (a warp per row up to 1024
    elements, a block past it) -- forward and every gradient against torch in float64."""
    torch = pytest.importorskip("torch")
    import polyten.nn.functional as F
    a = _x((6, d), "float64", seed=d) * 3
    gy = _x((6, d), "float64", seed=d + 1)
    target = np.random.default_rng(d).integers(0, d, 6)
    target[2] = -100
    w = np.abs(_x((d,), "float64", seed=5)) + 0.1
    img = _x((3, 4, 5, d // 5), "float64", seed=d + 2) * 2 + 1

    def run(lib, dev, tensor):
        nn = lib.nn
        x = tensor(a, dev, True)
        g = tensor(gy, dev, False)
        out = []
        for fn in (lambda v: lib.softmax(v, -1), lambda v: lib.log_softmax(v, -1)):
            x.grad = None
            y = fn(x)
            (y * g).sum().backward()
            out += [y, x.grad]
        x.grad = None
        ce = (F if lib is pt else torch.nn.functional).cross_entropy(
            x, tensor(target, dev, False), weight=tensor(w, dev, False))
        ce.backward()
        out += [ce, x.grad]
        for layer, inp in ((nn.LayerNorm(d), a), (nn.BatchNorm1d(d), a),
                           (nn.BatchNorm2d(4), img)):
            layer = layer.to(dev).double()
            with (torch.no_grad() if lib is torch else pt.no_grad()):
                layer.weight.copy_(tensor(np.linspace(0.5, 1.5, layer.weight.shape[0]), dev,
                                          False))
            xi = tensor(inp, dev, True)
            y = layer(xi)
            (y * y).sum().backward()
            out += [y, xi.grad, layer.weight.grad, layer.bias.grad]
        return [np.asarray(t.detach().cpu().numpy(), dtype=np.float64) for t in out]

    got = run(pt, "cuda", lambda v, dev, rg: pt.tensor(v, device=dev, requires_grad=rg))
    want = run(torch, "cpu", lambda v, dev, rg: torch.tensor(v, requires_grad=rg))
    for g, t in zip(got, want):  # atol: sums of thousands of O(1) terms that cancel to 0
        _close(g, t, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_attention_op_matches_float64_and_torch(dtype):
    """scaled_dot_product_attention's op (two GEMMs and a row kernel forward, four and one
    backward), causal or not, keys for a warp (6) and for a block (1100): output and gradients
    against torch's float64 (the GPU's GEMMs and NVRTC's build, which the stand-in does not
    run); with dropout, the dropped fraction and the agreement with the composed ops under the
    same seed."""
    torch = pytest.importorskip("torch")
    import polyten.nn.functional as F
    dt = getattr(pt, dtype)
    tol = {"float64": 1e-12, "float32": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}[dtype]
    for causal in (False, True):
        for S in (6, 1100):
            arrays = [_x(s, "float64", seed=i) for i, s in
                      enumerate(((2, 3, 5, 7), (2, 3, S, 7), (2, 3, S, 4), (2, 3, 5, 4)))]
            q, k, v = (pt.tensor(a, dtype=dt, device="cuda", requires_grad=True)
                       for a in arrays[:3])
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            assert out.grad_fn.name() == "ScaledDotProductAttentionBackward0"
            out.backward(pt.tensor(arrays[3], dtype=dt, device="cuda"))
            rounded = [t.detach().cpu().double().numpy().astype(np.float64) for t in (q, k, v)]
            tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in rounded)
            tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv,
                                                                    is_causal=causal)
            tout.backward(torch.tensor(pt.tensor(arrays[3], dtype=dt).double().numpy(),
                                       dtype=torch.float64))
            for got, want in ((out, tout), (q.grad, tq.grad), (k.grad, tk.grad),
                              (v.grad, tv.grad)):
                got = got.detach().cpu().double().numpy().astype(np.float64)
                want = want.detach().numpy()
                assert np.abs(got - want).max() <= tol * 3 * max(1.0, np.abs(want).max())
    if dtype == "float32":
        q = pt.tensor(_x((4, 2, 64, 16), seed=9), device="cuda")
        results = []
        for mask in (None, pt.ones(64, 64, dtype=pt.bool, device="cuda")):
            pt.manual_seed(3)
            results.append(F.scaled_dot_product_attention(q, q, q, attn_mask=mask,
                                                          dropout_p=0.25).cpu().numpy())
        _close(results[0], results[1], rtol=1e-5, atol=1e-6)
        pt.manual_seed(3)
        keep = F.dropout(pt.ones(4, 2, 64, 64, device="cuda"), 0.25).cpu().numpy()
        assert 0.2 < np.mean(keep == 0) < 0.3


# --- optimizers: fused vs generic -------------------------------------------------------
_OPTIMIZERS = {
    "adam": lambda p: pt.optim.Adam(p, lr=0.01, amsgrad=True),
    "adamw": lambda p: pt.optim.AdamW(p, lr=0.01),
    "sgd": lambda p: pt.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda p: pt.optim.RMSprop(p, lr=0.01, centered=True, momentum=0.5),
    "adagrad": lambda p: pt.optim.Adagrad(p, lr=0.1, lr_decay=0.01),
    "adamax": lambda p: pt.optim.Adamax(p, lr=0.01, weight_decay=0.01),
    "nadam": lambda p: pt.optim.NAdam(p, lr=0.01, decoupled_weight_decay=True,
                                      weight_decay=0.01),
    "radam": lambda p: pt.optim.RAdam(p, lr=0.01),
    "adadelta": lambda p: pt.optim.Adadelta(p, lr=0.5),
    "rprop": lambda p: pt.optim.Rprop(p, lr=0.01),
}


@pytest.mark.parametrize("algo", list(_OPTIMIZERS))
def test_fused_optimizer_trajectory_matches_generic(algo):
    """The backend's fused step (``Backend.fused_optimizers``) against the generic one written
    in polyten ops (forced by registering it as the cuda replacement): same trajectory."""
    from polyten.optim import _functional as Fo

    def train(fused: bool):
        if not fused:
            Fo.register_fused(algo, "cuda", Fo._GENERIC[algo])
        try:
            pt.manual_seed(0)
            model = pt.nn.Sequential(pt.nn.Linear(8, 16), pt.nn.Tanh(),
                                     pt.nn.Linear(16, 2)).to(device="cuda", dtype=pt.float64)
            params = list(model.parameters())
            assert (Fo.resolve(algo, params) is Fo._GENERIC[algo]) is not fused
            opt = _OPTIMIZERS[algo](params)
            x = pt.tensor(_x((32, 8), "float64"), device="cuda")
            y = pt.tensor(_x((32, 2), "float64", seed=5), device="cuda")
            for _ in range(5):
                opt.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                opt.step()
            return [p.detach().cpu().numpy() for p in params]
        finally:
            Fo.register_fused(algo, "cuda", None)

    assert algo in pt.device("cuda").backend.fused_optimizers
    for a, b in zip(train(True), train(False)):
        _close(a, b, rtol=1e-10, atol=1e-13)


def test_multi_tensor_kernels_match_the_per_parameter_kernel_on_the_gpu():
    """NVRTC compiles the generated multi-tensor Adam kernel and it gives what the
    per-parameter kernel gives, over 70 float32 tensors (two launches: 64 + 6) of sizes up to
    ~600k (several grid-stride rounds), plus a float16 and a non-contiguous gradient that take
    the per-parameter path (exactly).  The two kernels' code is compiled separately, and NVRTC
    contracts their multiply-adds differently: on an H200 a quarter of the elements came out
    apart, by up to 10 units in the last place, and 2.9e-10 where a value crossed zero."""
    import cupy as cp
    from polyten_cuda import fused_src, multi_tensor
    src = fused_src.ELEMENTWISE["adam_step"]
    ew = cp.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name,
                              preamble=fused_src.PREAMBLE)
    step = multi_tensor.MultiTensorStep(cp, src, ew)
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(1, 3000, 69)] + [600_001]
    shapes = [(s,) for s in sizes] + [(64, 33), (40, 30)]
    dts = ["float32"] * 71 + ["float16"]
    states = [[cp.asarray(np.abs(_x(sh, dt, seed=10 * i + k))) for k in range(4)]
              for i, (sh, dt) in enumerate(zip(shapes, dts))]
    states[70][0] = cp.asarray(_x((33, 64), "float32", 7)).T  # non-contiguous gradient
    copies = [[a.copy() for a in s] for s in states]
    scal = (0.9, 0.1, 0.999, 0.01, 1e-8, -1e-3, 0.01, 0.99, True, False)

    def args(s):
        return (s[0],) + scal + (s[1], s[2], s[3])
    step([args(s) for s in states])
    for s in copies:
        ew(*args(s))
    for i, (s, c) in enumerate(zip(states, copies)):
        for a, b in zip(s, c):
            if i >= 70:  # the per-parameter kernel both ways
                np.testing.assert_array_equal(cp.asnumpy(a), cp.asnumpy(b))
            else:
                # atol: a parameter stepping across zero keeps the absolute error of the
                # terms (an H200: 2.9e-10 at -2.55e-5), far below the step (lr 1e-3)
                np.testing.assert_allclose(cp.asnumpy(a), cp.asnumpy(b), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("norm_type", [2.0, float("inf"), 1.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_grad_norm_matches_cpu(norm_type, dtype):
    """clip_grad_norm_ over 70 gradients on cuda (the fused total norm and the multi-tensor
    scaling for 2 and inf; the generic ops for 1) against the cpu backend, clipping or not."""
    from polyten.nn.utils import clip_grad_norm_
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(int(n)).astype(dtype) for n in rng.integers(1, 2000, 70)]
    for max_norm in (1.0, 1e6):
        res = {}
        for device in ("cpu", "cuda"):
            ps = [pt.zeros(g.shape, dtype=dtype, device=device, requires_grad=True)
                  for g in grads]
            for p, g in zip(ps, grads):
                p.grad = pt.tensor(g, device=device)
            total = clip_grad_norm_(ps, max_norm, norm_type)
            assert total.device.type == device and total.dtype == ps[0].dtype
            res[device] = (total.item(), [p.grad.cpu().numpy() for p in ps])
        tol = 1e-5 if dtype == "float32" else 1e-12
        _close(res["cuda"][0], res["cpu"][0], rtol=tol)
        for a, b in zip(res["cuda"][1], res["cpu"][1]):
            _close(a, b, rtol=tol, atol=tol)
    assert {"total_norm", "clip_grads"} <= set(pt.device("cuda").backend.fused_optimizers)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_clip_grad_value_matches_cpu(dtype):
    """clip_grad_value_ over 70 gradients on cuda (the multi-tensor clamp) against the cpu
    backend, NaN kept."""
    from polyten.nn.utils import clip_grad_value_
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(int(n)).astype(dtype) for n in rng.integers(1, 500, 70)]
    grads[3][0] = np.nan
    res = {}
    for device in ("cpu", "cuda"):
        ps = [pt.zeros(g.shape, dtype=dtype, device=device, requires_grad=True) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = pt.tensor(g, device=device)
        clip_grad_value_(ps, 0.5)
        res[device] = [p.grad.cpu().numpy() for p in ps]
    for a, b in zip(res["cuda"], res["cpu"]):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(res["cuda"][3][0])


# --- float16 ------------------------------------------------------------------------------
def test_float16_tensors_and_matmul():
    a, b = _x((64, 32), "float16", 6), _x((32, 48), "float16", 7)
    r = pt.tensor(a, device="cuda") @ pt.tensor(b, device="cuda")
    assert r.dtype == pt.float16
    _close(r.cpu().numpy(), a.astype(np.float64) @ b.astype(np.float64), rtol=2e-2, atol=5e-2)
    lin = pt.nn.Linear(32, 8).to(device="cuda", dtype=pt.float16)
    out = lin(pt.tensor(a, device="cuda"))
    out.float().sum().backward()
    assert lin.weight.grad.dtype == pt.float16


def _needs_bf16():
    from polyten.dispatch import registry
    if "bfloat16" not in registry.get("cuda").dtypes:
        pytest.skip("this CuPy does not store bfloat16 (CuPy 14 with ml_dtypes does)")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_batched_products_in_every_float_dtype(dtype):
    """Attention-shaped batched products -- ``q @ k.mT`` (a transposed view), ``@ v``, a
    batch times one weight, a row slice of a fused projection -- and their gradients, in
    each float dtype, within the dtype's rounding of NumPy's float64 product (and of torch's,
    where torch has CUDA).  polyten_cuda.gemm sends them to cuBLAS as one strided-batched
    GEMM each: float16 and bfloat16 on tensor cores with float32 accumulation, where
    cupy.matmul before cupy/cupy#10317 casts float16 to float32 and raises on bfloat16."""
    if dtype == "bfloat16":
        _needs_bf16()
    dt = getattr(pt, dtype)
    tol = {"float16": 4e-3, "bfloat16": 3e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
    qkv = _x((2, 4, 64, 3 * 32), "float32", 20)
    w = _x((32, 48), "float32", 21)
    g = _x((2, 4, 64, 48), "float32", 22)

    t = pt.tensor(qkv, device="cuda").to(dt).requires_grad_()
    wt = pt.tensor(w, device="cuda").to(dt).requires_grad_()
    q, k, v = t[..., :32], t[..., 32:64], t[..., 64:]
    y = ((q @ k.mT) / 8.0) @ v @ wt
    y.backward(pt.tensor(g, device="cuda").to(dt))
    # NumPy float64 on the operands rounded to the dtype, gradients by hand
    r64 = t.detach().double().cpu().numpy()
    w64 = wt.detach().double().cpu().numpy()
    g64 = pt.tensor(g).to(dt).double().numpy()
    q6, k6, v6 = r64[..., :32], r64[..., 32:64], r64[..., 64:]
    s = q6 @ k6.swapaxes(-1, -2) / 8.0
    p = s @ v6
    gp = g64 @ w64.T
    gs = gp @ v6.swapaxes(-1, -2)
    want = {"y": p @ w64, "w": p.reshape(-1, 32).T @ g64.reshape(-1, 48),
            "qkv": np.concatenate([gs @ k6 / 8.0, gs.swapaxes(-1, -2) @ q6 / 8.0,
                                   s.swapaxes(-1, -2) @ gp], axis=-1)}
    for name, got in (("y", y), ("w", wt.grad), ("qkv", t.grad)):
        assert got.dtype == dt, name
        ref = want[name]
        _close(got.detach().double().cpu().numpy(), ref, rtol=0,
               atol=8 * tol * np.abs(ref).max())
    tc = _torch_cuda()
    if tc is not None:  # torch's own CUDA products of the same rounded operands
        T = tc.tensor(r64, device="cuda", dtype=getattr(tc, dtype))
        W = tc.tensor(w64, device="cuda", dtype=getattr(tc, dtype))
        Y = ((T[..., :32] @ T[..., 32:64].mT) / 8.0) @ T[..., 64:] @ W
        _close(y.detach().double().cpu().numpy(), Y.double().cpu().numpy(), rtol=0,
               atol=8 * tol * np.abs(want["y"]).max())


@pytest.mark.parametrize("algo", ["adamw", "sgd", "rmsprop"])
def test_bfloat16_training_matches_cpu(algo):
    """A bfloat16 model (conv, BatchNorm, GELU, LayerNorm, linear, cross-entropy, clipping)
    trained on cuda and on the cpu: the same losses and parameters up to bfloat16 rounding.
    On cuda the convolution stays bfloat16 (polyten's im2col and cuBLAS bfloat16 GEMMs) and
    the fused kernels (GELU, LayerNorm, BatchNorm, cross-entropy) and optimizer steps run on
    bfloat16, each stored value rounded once, where the cpu's generic step rounds after
    every operation.  The losses
    agree to 2 % or, once the loss is 1000 times smaller than at the start, to a thousandth
    of the first loss: there the two roundings of RMSprop's normalised step differ by a few
    bfloat16 ulps of a tiny loss."""
    _needs_bf16()

    def train(dev):
        pt.manual_seed(0)
        # no bias before BatchNorm: its exact gradient is zero, so in bfloat16 it is rounding
        # noise (|g| ~ 3e-4 against ~0.1 elsewhere), which RMSprop's normalised step turns
        # into full-size moves that no two correct implementations share
        model = pt.nn.Sequential(
            pt.nn.Conv2d(2, 4, 3, padding=1, bias=False), pt.nn.BatchNorm2d(4), pt.nn.GELU(),
            pt.nn.Flatten(), pt.nn.LayerNorm(64), pt.nn.Linear(64, 3)).to(
                device=dev, dtype=pt.bfloat16)
        opt = _OPTIMIZERS[algo](model.parameters())
        x = pt.tensor(_x((8, 2, 4, 4), "float32", 8), device=dev).bfloat16()
        y = pt.tensor(np.arange(8) % 3, device=dev)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = pt.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            pt.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
        assert all(p.dtype == pt.bfloat16 for p in model.parameters())
        return losses, [p.detach().float().cpu().numpy() for p in model.parameters()]

    (lc, pc), (lg, pg) = train("cpu"), train("cuda")
    np.testing.assert_allclose(lg, lc, rtol=2e-2, atol=1e-3 * lc[0])
    for a, b in zip(pg, pc):
        np.testing.assert_allclose(a, b, rtol=5e-2, atol=5e-2)


def test_bfloat16_autocast_matches_cpu():
    _needs_bf16()
    lin = pt.nn.Linear(32, 8)
    x = pt.tensor(_x((16, 32), "float32", 9))
    with pt.autocast("cpu", dtype=pt.bfloat16):
        c = lin(x)
    lin.to("cuda")
    with pt.autocast("cuda", dtype=pt.bfloat16):
        g = lin(x.to("cuda"))
        s = pt.nn.functional.softmax(g, dim=1)
    assert g.dtype == c.dtype == pt.bfloat16 and s.dtype == pt.float32
    np.testing.assert_allclose(g.float().cpu().detach().numpy(), c.float().detach().numpy(),
                               rtol=2 ** -6, atol=2 ** -6)


# --- memory statistics and devices ----------------------------------------------------------
def test_memory_statistics():
    c = pt.cuda
    pt.ones(1, device="cuda")  # load
    c.synchronize()
    c.empty_cache()
    c.reset_peak_memory_stats()
    before = c.memory_allocated()
    t = pt.empty(4 << 20, dtype=pt.float32, device="cuda")  # 16 MiB
    assert c.memory_allocated() >= before + (16 << 20)
    assert c.max_memory_allocated() >= c.memory_allocated()
    del t
    assert c.memory_allocated() < before + (16 << 20)
    assert c.max_memory_allocated() >= before + (16 << 20)  # the peak remembers
    c.reset_peak_memory_stats()
    assert c.max_memory_allocated() < before + (16 << 20)
    assert c.memory_reserved() >= c.memory_allocated()
    c.empty_cache()


def test_out_of_memory_raises_polytens_error():
    """CuPy's pool past its limit: polyten.cuda.OutOfMemoryError (RuntimeError and
    MemoryError) naming the kernel and the figures; the pool works again once freed."""
    import cupy
    pool = cupy.get_default_memory_pool()
    pt.ones(1, device="cuda")  # load
    pt.cuda.empty_cache()
    pool.set_limit(size=pool.total_bytes() + (4 << 20))  # the limit counts cached blocks
    try:
        with pytest.raises(pt.cuda.OutOfMemoryError, match=r"out of memory on cuda:\d+: "
                           r"tried to allocate 64\.00 MiB") as info:
            pt.empty(16 << 20, dtype=pt.float32, device="cuda")
        assert isinstance(info.value, MemoryError) and isinstance(info.value, RuntimeError)
        assert isinstance(info.value.__cause__, cupy.cuda.memory.OutOfMemoryError)
    finally:
        pool.set_limit(size=0)
    assert pt.empty(16 << 20, dtype=pt.float32, device="cuda").shape == (16 << 20,)


def test_deterministic_algorithms_make_scatter_sums_repeatable():
    """With ``use_deterministic_algorithms(True)`` the sums behind ``index_add``,
    ``scatter_add`` and the embedding gradient are taken in source order, not with atomics,
    and of repeated writes (``x[i] = v``, ``scatter``) the last one wins: the same bits on
    every run, and the cpu backend's.  Without it the sums agree with the cpu within float32
    rounding."""
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 64, size=20000)  # ~300 additions per row
    src = rng.standard_normal((20000, 32)).astype(np.float32)
    tokens = rng.integers(0, 64, size=(50, 40))
    g = rng.standard_normal((50, 40, 32)).astype(np.float32)

    def run(device):
        i, s = pt.tensor(idx, device=device), pt.tensor(src, device=device)
        added = pt.zeros((64, 32), device=device).index_add(0, i, s)
        put = pt.zeros((64, 32), device=device).scatter_add(0, i[:, None].expand(-1, 32), s)
        emb = pt.nn.Embedding(64, 32).to(device)
        (emb(pt.tensor(tokens, device=device)) * pt.tensor(g, device=device)).sum().backward()
        written = pt.zeros((64, 32), device=device)
        written[i] = s  # ~300 writes per row: which one lands?
        scattered = pt.zeros((64, 32), device=device).scatter(0, i[:, None].expand(-1, 32), s)
        return [t.detach().cpu().numpy() for t in (added, put, emb.weight.grad, written,
                                                   scattered)]

    cpu = run("cpu")
    for a, b in zip(run("cuda")[:3], cpu):  # the writes' winners may differ here
        _close(a, b, rtol=1e-4, atol=1e-4)
    pt.use_deterministic_algorithms(True)
    try:
        first, second = run("cuda"), run("cuda")
    finally:
        pt.use_deterministic_algorithms(False)
    for a, b, c in zip(first, second, cpu):
        assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("deterministic", [False, True])
def test_sums_onto_repeated_positions_take_every_dtype(deterministic):
    """``cupy.add.at`` (CuPy's atomics, behind ``index_add`` / ``scatter_add``) takes six
    dtypes; the others go through one of them (:mod:`polyten_cuda.atomic_add`).  Integer
    sums that wrap, complex sums and bfloat16 equal NumPy's ``add.at`` computed here; so do
    ``bincount`` and ``unique``'s counts, which are int64 ``index_add``s."""
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 7, size=300)
    pt.use_deterministic_algorithms(deterministic)
    try:
        for dt in ("int64", "int32", "int16", "int8", "uint8", "float16", "float32",
                   "float64", "complex64", "complex128"):
            src = rng.integers(-120, 120, size=(300, 3))
            if dt.startswith("complex"):
                src = src + 1j * rng.integers(-50, 50, size=(300, 3))
            src = src.astype(dt) if dt != "uint8" else (src % 256).astype(dt)
            want = np.zeros((7, 3), dtype=dt)
            np.add.at(want, idx, src)  # wraps as the dtype does, step by step
            i = pt.tensor(idx, device="cuda")
            got = pt.zeros((7, 3), dtype=getattr(pt, dt), device="cuda").index_add(
                0, i, pt.tensor(src, device="cuda"))
            assert got.dtype.name == dt and np.array_equal(got.cpu().numpy(), want), dt
            put = pt.zeros((7, 3), dtype=getattr(pt, dt), device="cuda").scatter_add(
                0, i[:, None].expand(-1, 3), pt.tensor(src, device="cuda"))
            assert np.array_equal(put.cpu().numpy(), want), dt
        # bfloat16: small integers are exact in it, so every summation order agrees
        src = rng.integers(-8, 8, size=(300, 3)).astype(np.float32)
        want = np.zeros((7, 3), np.float32)
        np.add.at(want, idx, src)
        got = pt.zeros((7, 3), dtype=pt.bfloat16, device="cuda").index_add(
            0, pt.tensor(idx, device="cuda"), pt.tensor(src, device="cuda").bfloat16())
        assert np.array_equal(got.float().cpu().numpy(), want)
        x = pt.tensor(idx, device="cuda")
        assert np.array_equal(pt.bincount(x).cpu().numpy(), np.bincount(idx))
        vals, counts = pt.unique(x, return_counts=True)
        want_vals, want_counts = np.unique(idx, return_counts=True)
        assert np.array_equal(vals.cpu().numpy(), want_vals)
        assert np.array_equal(counts.cpu().numpy(), want_counts)
    finally:
        pt.use_deterministic_algorithms(False)


@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16", "int64", "int32",
                                "int8", "uint8"])
def test_scatter_reduce_and_index_put_match_the_cpu(dt):
    """``scatter_reduce`` runs the op's default on cuda (CuPy's ``ufunc.at`` has no multiply
    and few dtypes for maximum / minimum): a stable sort and a segmented scan for prod / amax /
    amin, ``scatter_add`` for sum / mean.  Small integers (exact in every dtype and every
    summation order) give the cpu backend's values bit for bit, NaN included, and run to run;
    ``index_put(accumulate=True)`` too."""
    rng = np.random.default_rng(9)
    x = rng.integers(1, 4, size=(6, 5))
    src = rng.integers(1, 4, size=(400, 5))
    idx = rng.integers(0, 6, size=(400, 5))
    if dt.startswith("float") or dt == "bfloat16":
        x, src = x.astype(np.float32), src.astype(np.float32)
        src[3, 2] = np.nan
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        s = src[:8] if reduce == "prod" else src  # products of 8 values stay exact
        i = idx[:8] if reduce == "prod" else idx
        for include_self in (True, False):
            got = []
            for device in ("cpu", "cuda", "cuda"):
                xt = pt.tensor(x, device=device).to(getattr(pt, dt))
                st = pt.tensor(s, device=device).to(getattr(pt, dt))
                out = pt.scatter_reduce(xt, 0, pt.tensor(i, device=device), st, reduce,
                                        include_self=include_self)
                assert out.dtype.name == dt and out.device.type == device
                got.append(out.double().cpu().numpy())
            np.testing.assert_array_equal(got[1], got[0], err_msg=f"{reduce} {include_self}")
            np.testing.assert_array_equal(got[2], got[1])
    put = [pt.index_put(pt.tensor(x, device=device).to(getattr(pt, dt)),
                        (pt.tensor(idx[:, 0], device=device),),
                        pt.tensor(src[:, :5], device=device).to(getattr(pt, dt)),
                        accumulate=True).double().cpu().numpy() for device in ("cpu", "cuda")]
    np.testing.assert_array_equal(put[1], put[0])


def test_scatter_reduce_waits_for_nothing_and_its_float_product_can_be_deterministic():
    """prod / amax / amin are one launch of compare-and-swap loops: no host read, so graph
    pooling in a training step does not wait for the GPU (the op's default would: a sort and
    two sizes read).  With use_deterministic_algorithms a float product multiplies in source
    order instead: the cpu backend's bits on every run."""
    rng = np.random.default_rng(14)
    src = pt.tensor(rng.uniform(0.5, 1.5, (3000, 8)).astype(np.float32), device="cuda")
    idx = pt.tensor(rng.integers(0, 50, (3000, 8)), device="cuda")
    x = pt.ones((50, 8), device="cuda")
    for reduce in ("prod", "amax", "amin"):
        ok, info = _runs_without_waiting(lambda: pt.scatter_reduce(x, 0, idx, src, reduce))
        assert ok, (reduce, info)
    want = pt.scatter_reduce(x.cpu(), 0, idx.cpu(), src.cpu(), "prod").numpy()
    pt.use_deterministic_algorithms(True)
    try:
        runs = [pt.scatter_reduce(x, 0, idx, src, "prod").cpu().numpy() for _ in range(2)]
    finally:
        pt.use_deterministic_algorithms(False)
    assert np.array_equal(runs[0], want) and np.array_equal(runs[1], want)


def test_scatter_reduce_gradients_match_the_cpu():
    rng = np.random.default_rng(10)
    x, src = rng.standard_normal((4, 3)), rng.uniform(0.5, 1.5, (9, 3))
    idx = rng.integers(0, 4, size=(9, 3))
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        grads = []
        for device in ("cpu", "cuda"):
            xt = pt.tensor(x, device=device, requires_grad=True)
            st = pt.tensor(src, device=device, requires_grad=True)
            out = pt.scatter_reduce(xt, 0, pt.tensor(idx, device=device), st, reduce,
                                    include_self=False)
            (out * pt.arange(12.0, device=device).reshape(4, 3)).sum().backward()
            grads.append([out.detach().cpu().numpy(), xt.grad.cpu().numpy(),
                          st.grad.cpu().numpy()])
        for a, b in zip(*grads):
            _close(a, b, rtol=1e-12)


def test_distributions_sample_and_score_on_the_gpu():
    """polyten.distributions are polyten ops: on cuda their draws stay there, and densities,
    entropies and KL divergences equal the cpu backend's."""
    D = pt.distributions
    rng = np.random.default_rng(12)
    conc, rate = rng.uniform(0.3, 4.0, 6), rng.uniform(0.5, 2.0, 6)

    def family(device):
        t = lambda a: pt.tensor(a, device=device)  # noqa: E731
        return [D.Normal(t(conc), t(rate)), D.Gamma(t(conc), t(rate)),
                D.Beta(t(conc), t(rate)), D.Poisson(t(conc * 9)),
                D.Dirichlet(t(conc.reshape(2, 3))), D.Categorical(logits=t(conc.reshape(2, 3))),
                D.MultivariateNormal(t(conc[:3]), scale_tril=t(np.diag(rate[:3])))]
    for dc, dg in zip(family("cpu"), family("cuda")):
        pt.manual_seed(0)
        s = dg.sample((500,))
        assert s.device.type == "cuda", type(dg).__name__
        _close(dg.log_prob(s).cpu().numpy(), dc.log_prob(s.cpu()).numpy(), rtol=1e-12)
        if not isinstance(dc, D.Poisson):
            _close(dg.entropy().cpu().numpy(), dc.entropy().numpy(), rtol=1e-12)
            _close(D.kl_divergence(dg, dg).cpu().numpy(), 0.0 * dc.entropy().numpy(),
                   atol=1e-12)


@pytest.mark.parametrize("T, N, C, S, il, tl", [
    (12, 3, 6, 4, (12, 9, 5), (4, 2, 3)),
    (160, 2, 5, 70, (160, 150), (70, 66)),  # 141 extended labels: more than a block's threads
])
def test_ctc_loss_and_its_gradient_match_the_cpu(T, N, C, S, il, tl):
    """ctc_alpha on cuda (one block per sample, a barrier per frame, for the forward and the
    alpha-beta backward) gives the cpu backend's loss and gradients, float64 and float32."""
    rng = np.random.default_rng(13)
    z = rng.standard_normal((T, N, C))
    targets = rng.integers(1, C, (N, S))

    def run(device, dt):
        x = pt.tensor(z, dtype=dt, device=device, requires_grad=True)
        loss = pt.nn.functional.ctc_loss(x.log_softmax(-1), pt.tensor(targets, device=device),
                                         il, tl, reduction="sum")
        loss.backward()
        return loss.item(), x.grad.double().cpu().numpy()
    ref = run("cpu", pt.float64)
    got = run("cuda", pt.float64)
    _close(got[0], ref[0], rtol=1e-12)
    _close(got[1], ref[1], rtol=1e-10, atol=1e-13)
    # float32: log-space sums of a few hundred frames round differently in each order; the
    # gpu's error against float64 is the cpu kernel's, give or take a factor of two
    cpu32, gpu32 = run("cpu", pt.float32), run("cuda", pt.float32)
    for k in (0, 1):
        err_cpu = np.abs(np.asarray(cpu32[k]) - ref[k]).max()
        err_gpu = np.abs(np.asarray(gpu32[k]) - ref[k]).max()
        assert err_gpu <= 2 * err_cpu + 1e-6 * np.abs(ref[k]).max(), (k, err_gpu, err_cpu)


def test_deterministic_writes_read_an_overlapping_value_first_and_follow_c_order():
    """In deterministic mode ``x[i] = x`` reads ``x`` before writing (NumPy's rule), a
    transposed index with repeats keeps the last write in C order on both backends (a loop
    over ``np.ndindex`` here is the reference), and a scatter into a dim of size 0 writes
    nothing and reports the bad index at the next host read."""
    pt.use_deterministic_algorithms(True)
    try:
        base = np.arange(12.0).reshape(4, 3)
        for order in ([1, 0, 0, 2], [3, 2, 1, 0]):
            want = base.copy()
            want[order] = base  # NumPy copies the overlapping value first
            for dev in ("cpu", "cuda"):
                x = pt.tensor(base, device=dev)
                x[pt.tensor(order, device=dev)] = x
                assert np.array_equal(x.cpu().numpy(), want), (dev, order)
        idx = np.array([[2, 0, 1], [1, 2, 2], [2, 2, 1], [0, 1, 0]])
        val = np.arange(12.0).reshape(4, 3)
        want = np.zeros(3)
        for pos in np.ndindex(idx.T.shape):  # C order over the (transposed) index
            want[idx.T[pos]] = val.T[pos]
        for dev in ("cpu", "cuda"):
            x = pt.zeros(3, dtype=pt.float64, device=dev)
            x[pt.tensor(idx, device=dev).T] = pt.tensor(val, device=dev).T
            assert np.array_equal(x.cpu().numpy(), want), dev
        empty = pt.zeros((0, 2), device="cuda").scatter(
            0, pt.tensor([[0, 0], [1, 1]], device="cuda"), pt.ones(2, 2, device="cuda"))
        assert empty.shape == (0, 2)
        with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 0"):
            empty.sum().item()
    finally:
        pt.use_deterministic_algorithms(False)


def test_bfloat16_where_tril_triu_round_keep_bfloat16_and_complex_logic_works():
    """CuPy 14's where (and so tril / triu) and round have no bfloat16 loops, and its type
    resolver takes their float32 loops without an error; its logical ufuncs have no complex
    loops.  polyten's results keep their dtype in storage too and equal NumPy's."""
    pytest.importorskip("ml_dtypes")
    a = np.array([1.5, -2.25, 3.0, 0.1, -0.0], dtype=np.float32)
    b = np.array([0.5, 2.0, -1.0, 4.0, 7.0], dtype=np.float32)
    x = pt.tensor(a, device="cuda").bfloat16()
    y = pt.tensor(b, device="cuda").bfloat16()
    xa, ya = x.float().cpu().numpy(), y.float().cpu().numpy()  # the bfloat16 values

    def stored(t):
        assert t.dtype == pt.bfloat16 and str(t._data.dtype) == "bfloat16", t._data.dtype
        return t.float().cpu().numpy()

    got = stored(pt.where(x > 0, x, y))
    assert np.array_equal(got, np.where(xa > 0, xa, ya))
    assert np.signbit(stored(pt.where(x < 5, x, y))[4])  # -0.0 kept: the bits move
    m = pt.tensor(np.arange(12.0).reshape(3, 4), device="cuda").bfloat16()
    assert np.array_equal(stored(m.tril(1)), np.tril(np.arange(12.0).reshape(3, 4), 1))
    assert np.array_equal(stored(m.triu(-1)), np.triu(np.arange(12.0).reshape(3, 4), -1))
    want = np.round(xa, 1).astype(x.cpu().numpy().dtype).astype(np.float32)
    assert np.array_equal(stored(pt.round(x, decimals=1)), want)
    z = np.array([0, 1j, 2 + 0j, 0j, -3 - 1j], dtype=np.complex64)
    w = np.array([1, 0, 0j, 1j, 0], dtype=np.complex64)
    zt, wt = pt.tensor(z, device="cuda"), pt.tensor(w, device="cuda")
    assert np.array_equal(pt.logical_not(zt).cpu().numpy(), np.logical_not(z))
    for name in ("logical_and", "logical_or", "logical_xor"):
        got = getattr(pt, name)(zt, wt).cpu().numpy()
        assert np.array_equal(got, getattr(np, name)(z, w)), name


def test_floor_divide_and_remainder_of_floats_are_pythons():
    """``//`` and ``%`` of floating tensors as Python's and NumPy's (fmod, then the
    quotient's correction): CuPy's own are floor(x / y)-based, 10 for 1.0 // 0.1 and NaN
    for 5 % inf.  NumPy computes the reference here, each half dtype through float32 as
    torch does; signed zeros and infinities included; a number on either side."""
    x = np.array([1.0, 5.0, -5.0, 7.5, -7.5, 0.0, -0.0, 3.0, 1.0, np.inf, 1e30, -2.5, 0.3])
    y = np.array([0.1, np.inf, np.inf, -2.0, 2.0, -3.0, 3.0, 0.0, -0.0, 2.0, 7.0, 0.5, 0.1])
    with np.errstate(all="ignore"):
        for dt in ("float64", "float32", "float16"):
            xs, ys = x.astype(dt), y.astype(dt)
            xt, yt = pt.tensor(xs, device="cuda"), pt.tensor(ys, device="cuda")
            for got, want in ((xt // yt, np.floor_divide(xs, ys)),
                              (xt % yt, np.remainder(xs, ys)),
                              (pt.floor_divide(xt, 0.1), np.floor_divide(xs, np.array(0.1,
                                                                                      dt))),
                              (pt.remainder(7.5, yt), np.remainder(np.array(7.5, dt), ys))):
                g = got.cpu().numpy()
                assert g.dtype == want.dtype, (dt, g.dtype)
                assert np.array_equal(g, want, equal_nan=True), (dt, g, want)
                finite = ~np.isnan(want)
                assert np.array_equal(np.signbit(g[finite]), np.signbit(want[finite])), dt
    assert (pt.tensor([7, -7], device="cuda") // 2).tolist() == [3, -4]  # integers: CuPy's
    assert (pt.tensor([7, -7], device="cuda") % 3).tolist() == [1, 2]


def test_round_with_decimals_rounds_in_the_dtype():
    """``round(x, decimals)`` as torch and NumPy's around: float32 scaled by 10**decimals in
    float32, float16 computed in float32 and rounded once (torch's opmath; NumPy's float16
    scaling overflows), integers with negative decimals through float64.  CuPy's around
    scales float32 in double (round(2.675, 2) gives 2.67 for 2.68) and splits integers at a
    float32 quotient (250000001 to -8 digits gives 2e8 for 3e8)."""
    x = np.array([2.675, 1.005, 0.125, -2.5, 0.285, 1234.5678, -0.0, np.inf, np.nan, 3e4])
    with np.errstate(all="ignore"):
        for dt in ("float16", "float32", "float64"):
            xs = x.astype(dt)
            t = pt.tensor(xs, device="cuda")
            for d in (-40, -3, -1, 1, 2, 3, 5, 40):
                got = pt.round(t, decimals=d).cpu().numpy()
                want = np.round(xs.astype(np.float32), d).astype(dt) if dt == "float16" \
                    else np.round(xs, d)
                assert np.array_equal(pt.round(pt.tensor(xs), decimals=d).numpy(), want,
                                      equal_nan=True), ("cpu", dt, d)
                assert got.dtype == want.dtype, (dt, d)
                assert np.array_equal(got, want, equal_nan=True), (dt, d, got, want)
        for dt in ("int16", "int32", "int64"):  # (a result past the dtype's range wraps
            i = np.array([149, 150, 250, 12345, 31999, 0, -7, -15], dt)  # or saturates: C's UB)
            if np.dtype(dt).itemsize >= 4:
                i = np.concatenate([i, np.array([250000001, 1499999999, -2**31 + 10], dt)])
            if dt == "int64":
                i = np.concatenate([i, np.array([-250000001, 2**40 + 5, -(2**50) - 3], dt)])
            for d in (-1, -2, -8, 1):
                got = pt.round(pt.tensor(i, device="cuda"), decimals=d).cpu().numpy()
                assert got.dtype == i.dtype and np.array_equal(got, np.round(i, d)), (dt, d)
    f = np.array([2.675, 0.285, 1.005], np.float32)
    assert pt.round(pt.tensor(f, device="cuda"), decimals=2).tolist() == \
        np.round(f, 2).tolist() == pytest.approx([2.68, 0.28, 1.0])
    try:
        import torch
    except ImportError:
        return
    for dt in ("float16", "float32"):
        xs = x.astype(dt)
        for d in (-3, -1, 1, 2, 3, 5):
            got = pt.round(pt.tensor(xs, device="cuda"), decimals=d).cpu().numpy()
            want = torch.round(torch.tensor(xs), decimals=d).numpy()
            assert np.array_equal(got, want, equal_nan=True), (dt, d, got, want)


def test_int64_fmod_is_exact():
    """``fmod`` of int64 is C's truncated remainder, exact past 2**53 (CuPy's goes
    through double); a zero divisor gives 0, as NumPy; -1 gives 0 without overflowing.  The
    reference is Python's integers."""
    def c_fmod(a, b):
        return 0 if b == 0 else (abs(a) % abs(b)) * (1 if a >= 0 else -1)

    a = [2**60 + 7, -(2**60) - 7, 2**53 + 1, -(2**63), 2**63 - 1, 5, -7, 0, 123456789012345678]
    b = [10, 10, 3, -1, -2**62, 0, 3, -5, -1000003]
    got = pt.fmod(pt.tensor(a, device="cuda"), pt.tensor(b, device="cuda")).cpu().numpy()
    assert got.dtype == np.int64 and got.tolist() == [c_fmod(p, q) for p, q in zip(a, b)]
    assert pt.fmod(pt.tensor(a, device="cuda"), 97).tolist() == [c_fmod(p, 97) for p in a]
    assert (pt.tensor(a, device="cuda") % 1000).tolist() == [p % 1000 for p in a]  # Python's
    assert pt.fmod(pt.tensor(a[:3], device="cpu"), pt.tensor(b[:3])).tolist() == \
        [c_fmod(p, q) for p, q in zip(a[:3], b[:3])]  # the cpu backend agrees


def test_float32_nextafter_steps_into_the_subnormals():
    """float32 ``nextafter`` as NumPy, C and torch: from a zero to the smallest subnormal,
    through the subnormals, off infinity to the largest finite value, NaN where either is
    NaN, y where x == y.  CUDA's nextafterf as CuPy builds it flushed subnormal results (an
    H200 stepped 0.0 towards 1 to FLT_MIN)."""
    f = np.float32
    tiny, sub = np.finfo(f).tiny, np.finfo(f).smallest_subnormal
    x = np.array([0.0, -0.0, 0.0, sub, -sub, tiny, -tiny, 2 * sub, np.inf, -np.inf, np.nan,
                  1.5, -2.5, 3.0, 0.0, -0.0, 1.0], f)
    y = np.array([1.0, -np.inf, -1.0, 0.0, 1.0, 0.0, -1.0, np.inf, 0.0, 5.0, 1.0,
                  np.inf, np.nan, 3.0, -0.0, 0.0, -2.0], f)
    want = np.nextafter(x, y)
    for a, b in ((x, y), (x, y[::-1].copy())):
        got = pt.nextafter(pt.tensor(a, device="cuda"), pt.tensor(b, device="cuda"))
        w = np.nextafter(a, b)
        assert np.array_equal(got.cpu().numpy(), w, equal_nan=True), (a, b, got, w)
        assert np.array_equal(np.signbit(got.cpu().numpy()), np.signbit(w))
    got = pt.nextafter(pt.tensor(x, device="cuda"), 1.0).cpu().numpy()
    assert np.array_equal(got, np.nextafter(x, f(1.0)), equal_nan=True)
    assert want[0] == sub and want[1] == -sub
    assert pt.nextafter(pt.tensor(x, device="cuda")[0:1], pt.tensor(y[0:1], device="cuda")
                        ).dtype == pt.float32


def test_bfloat16_with_a_python_float_stays_bfloat16():
    """A bfloat16 tensor beside a Python float computes in bfloat16 on cuda, as on the cpu,
    NumPy (ml_dtypes) and torch: the float is rounded to bfloat16 (NumPy's weak scalar).
    CuPy 14 ran its float32 loop and returned float32 data (an H200: bf16 + 2.5)."""
    import ml_dtypes
    bf = ml_dtypes.bfloat16
    xs = np.array([-2.75, -1.0, -0.0, 0.0, 0.3, 1.5, 3.0, np.inf, np.nan], bf)
    t = pt.tensor(xs, device="cuda")
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "maximum": np.maximum, "minimum": np.minimum, "atan2": np.arctan2,
           "hypot": np.hypot, "logaddexp": np.logaddexp, "copysign": np.copysign,
           "fmod": np.fmod, "nextafter": np.nextafter, "eq": np.equal, "lt": np.less,
           "ge": np.greater_equal}
    with np.errstate(all="ignore"):
        for s in (0.1, -1.3, 2.5, 0.0):
            for name, fn in ops.items():
                for left in (False, True):
                    got = getattr(pt, name)(s, t) if left else getattr(pt, name)(t, s)
                    want = fn(bf(s), xs) if left else fn(xs, bf(s))
                    assert got.dtype == (pt.bool if want.dtype == bool else pt.bfloat16), \
                        (name, s, left, got.dtype)
                    g = got.cpu().numpy()
                    assert np.array_equal(g.astype(np.float32), want.astype(np.float32),
                                          equal_nan=True), (name, s, left, g, want)
            a = abs(s)
            for lo, hi in ((-a, None), (None, a), (-a, a)):
                got = pt.clamp(t, min=lo, max=hi).cpu().numpy()
                want = np.clip(xs.astype(np.float32), None if lo is None else float(bf(lo)),
                               None if hi is None else float(bf(hi)))
                assert got.dtype == bf and np.array_equal(got.astype(np.float32), want,
                                                          equal_nan=True), (lo, hi, got, want)
            u = t.clone()
            u += s
            assert u.dtype == pt.bfloat16 and np.array_equal(
                u.cpu().numpy().astype(np.float32), (xs + bf(s)).astype(np.float32),
                equal_nan=True)


def test_logical_ops_take_a_complex_python_number():
    """``logical_and`` / ``or`` / ``xor`` of a complex tensor and a complex Python number, as
    NumPy: a number's truth is whether it is nonzero (CuPy's logical ufuncs have no complex
    loop, and took the number as complex128)."""
    z = np.array([0j, 1 + 0j, 0.5j, -0.0 + 0j, complex(np.nan, 0)], np.complex64)
    t = pt.tensor(z, device="cuda")
    for name, fn in (("logical_and", np.logical_and), ("logical_or", np.logical_or),
                     ("logical_xor", np.logical_xor)):
        for s in (0j, 2 - 1j, complex(0, -0.0)):
            assert getattr(pt, name)(t, s).tolist() == fn(z, s).tolist(), (name, s)
            assert getattr(pt, name)(s, t).tolist() == fn(s, z).tolist(), (name, s)


def test_half_nextafter_steps_off_infinity():
    """float16 ``nextafter(+-inf, y)`` is the largest finite value towards y, as NumPy, C and
    torch (CuPy's half nextafter gives NaN for any infinite x); x == y gives y."""
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf, 1.0, -0.0, 0.0], np.float16)
    y = np.array([0.0, 0.0, np.inf, np.nan, -np.inf, 2.0, 0.0, -1.0], np.float16)
    got = pt.nextafter(pt.tensor(x, device="cuda"), pt.tensor(y, device="cuda")).cpu().numpy()
    want = np.where(x == y, y, np.nextafter(x, y))
    assert np.array_equal(got, want, equal_nan=True), (got, want)
    assert got[:2].tolist() == [65504.0, -65504.0]
    assert np.array_equal(np.signbit(got), np.signbit(want))


def _bits_nan(dtype):
    """A NaN with the sign bit set, as x86 computes 0 / 0 and as negating a NaN gives."""
    u = {"float32": np.uint32(0xFFC00000), "float64": np.uint64(0xFFF8000000000000)}[dtype]
    return np.frombuffer(u.tobytes(), dtype)[0]


def _python_order(v, descending):
    """The stable order NumPy and torch give: NaN last ascending and first descending, -0.0
    equal to 0.0 -- by Python's sorted(), which is stable."""
    def key(i):
        e = float(v[i])
        if e != e:
            return (1, 0.0) if not descending else (0, 0.0)
        return (0, e) if not descending else (1, -e)
    return sorted(range(len(v)), key=key)


def test_one_dimensional_sorts_put_every_nan_last():
    """1-D float32 / float64 ``sort`` / ``argsort`` / ``topk`` / ``unique`` order NaNs with
    the sign bit set (x86's 0 / 0, a negated NaN) last and keep -0.0 and 0.0 in their order,
    as NumPy and torch.  CuPy sorts these with a radix sort by the bits, which put such a NaN
    before -inf and -0.0 before 0.0."""
    for dt in ("float32", "float64"):
        neg = _bits_nan(dt)
        v = np.array([1.0, neg, 0.0, -0.0, -np.inf, np.nan, 2.5, neg, -1.0], dt)
        t = pt.tensor(v, device="cuda")
        for descending in (False, True):
            order = _python_order(v, descending)
            vals, idx = pt.sort(t, descending=descending, stable=True)
            assert idx.tolist() == order, (dt, descending, idx.tolist(), order)
            assert np.array_equal(vals.cpu().numpy(), v[order], equal_nan=True)
            assert pt.argsort(t, descending=descending, stable=True).tolist() == order
        top = pt.topk(t, 3)
        assert np.isnan(top.values.cpu().numpy()).all()  # NaN is the largest, as torch
        assert sorted(top.indices.tolist()) == [1, 5, 7]
        low = pt.topk(t, 3, largest=False)
        assert low.indices.tolist() == _python_order(v, False)[:3]
        u, inv, counts = pt.unique(t, return_inverse=True, return_counts=True)
        uv = u.cpu().numpy()
        assert np.array_equal(uv[:5], np.array([-np.inf, -1.0, 0.0, 1.0, 2.5], dt))
        assert np.isnan(uv[5:]).all() and len(uv) == 8  # each NaN its own value, as torch
        assert np.array_equal(uv[inv.cpu().numpy()], v, equal_nan=True)
        assert counts.tolist() == [1, 1, 2, 1, 1, 1, 1, 1]
    try:
        import torch
    except ImportError:
        return
    v = np.array([1.0, _bits_nan("float32"), -0.0, 0.0, np.nan, -1.0], np.float32)
    for descending in (False, True):
        got = pt.sort(pt.tensor(v, device="cuda"), descending=descending, stable=True)
        want = torch.sort(torch.tensor(v), descending=descending, stable=True)
        assert got.indices.tolist() == want.indices.tolist(), descending


def test_arg_extremes_of_several_nans_give_the_first():
    """``argmax`` / ``argmin`` / ``max(dim)`` / ``min(dim)`` answer the first NaN's index, as
    NumPy and torch.  CuPy's reduction keeps whichever NaN its tree of threads combines on
    the left, which for two NaNs far apart in a long row can be the later one."""
    w = np.zeros((3, 600))
    w[0, [1, 300, 599]] = np.nan
    w[1, 17] = np.nan
    w[2] = np.linspace(-1, 1, 600)
    for dt in ("float16", "float32", "float64"):
        a = w.astype(dt)
        t = pt.tensor(a, device="cuda")
        for fn in ("argmax", "argmin"):
            assert getattr(pt, fn)(t, dim=1).tolist() == getattr(np, fn)(a, axis=1).tolist()
            assert getattr(pt, fn)(t).item() == getattr(np, fn)(a)
            k = getattr(pt, fn)(t, dim=1, keepdim=True)
            assert k.shape == (3, 1) and k[:, 0].tolist() == getattr(np, fn)(a, 1).tolist()
        assert pt.max(t, dim=1).indices.tolist() == np.argmax(a, 1).tolist() == [1, 17, 599]
        assert pt.min(t, dim=1).indices.tolist() == np.argmin(a, 1).tolist() == [1, 17, 0]
        assert pt.argmax(t.T, dim=0).tolist() == [1, 17, 599]


def test_negative_zero_fills_keep_their_sign():
    """``full`` / ``fill_`` / ``x[...] = -0.0`` / a ``-0.0`` operand keep the sign bit, as
    NumPy and torch: CuPy fills a zero with a memset (``ndarray.fill`` on a C-contiguous
    array), so ``full(-0.0)`` was 0.0 and ``x // -0.0`` gave the other infinity."""
    def signs(t):
        return np.signbit(t.cpu().numpy()).tolist()

    for dt in (pt.float16, pt.bfloat16, pt.float32, pt.float64):
        assert signs(pt.full((3,), -0.0, dtype=dt, device="cuda")) == [True] * 3, dt
        assert signs(pt.zeros(3, dtype=dt, device="cuda").fill_(-0.0)) == [True] * 3, dt
    t = pt.ones(2, 3, device="cuda")
    t[0] = -0.0
    t[:, 2] = -0.0  # a strided view: CuPy's fill kernel, which kept it anyway
    assert signs(t) == [[True, True, True], [False, False, True]]
    z = pt.full((2,), complex(-0.0, 0.0), device="cuda").cpu().numpy()
    assert np.signbit(z.real).all() and not np.signbit(z.imag).any()
    x = np.array([1.0, -1.0, 0.0])
    with np.errstate(all="ignore"):
        want = np.floor_divide(x, -0.0)
        for got in (pt.tensor(x, device="cuda") // -0.0, pt.tensor(x) // -0.0):
            assert np.array_equal(got.cpu().numpy(), want, equal_nan=True)
        assert np.array_equal((pt.tensor(x, device="cuda") % -0.0).cpu().numpy(),
                              np.remainder(x, -0.0), equal_nan=True)
    assert signs(pt.nn.functional.pad(pt.ones(2, device="cuda"), (1, 1), value=-0.0)) == \
        [True, False, False, True]
    # a 0-d value from the host (CuPy fills a 0-d array with it)
    for t in (pt.tensor(-0.0, device="cuda"), pt.tensor(-0.0).cuda(),
              pt.asarray(np.float32(-0.0), device="cuda"), pt.tensor(-0.0).to("cuda")):
        assert signs(t) is True and (1 / t).item() == -np.inf
    assert signs(pt.linspace(-0.0, 1.0, 1, device="cuda")) == [True]
    c = pt.tensor(complex(1.0, -0.0), device="cuda").cpu().numpy()
    assert np.signbit(c.imag) and not np.signbit(c.real)


def test_overlapping_assignment_reads_before_it_writes():
    """``x[1:] = x[:-1]`` and ``x[1:].copy_(x[:-1])`` shift the values, as NumPy and torch
    (which copies through a buffer): CuPy copies a same-layout value with one
    cudaMemcpyAsync, undefined for overlapping memory."""
    a = np.arange(8.0)
    right, left = a.copy(), a.copy()
    right[1:] = a[:-1]
    left[:-1] = a[1:]

    def shift_right(x):
        x[1:] = x[:-1]

    def copy_right(x):
        x[1:].copy_(x[:-1])

    def shift_left(x):
        x[:-1] = x[1:]

    for write, want in ((shift_right, right), (copy_right, right), (shift_left, left)):
        for dev in ("cpu", "cuda"):
            x = pt.tensor(a, device=dev)
            write(x)
            assert x.tolist() == want.tolist(), (write.__name__, dev, x.tolist())
    m = pt.tensor(np.arange(12.0).reshape(3, 4), device="cuda")
    m[1:] = m[:-1]
    assert m.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]]


def test_isin_never_finds_nan():
    """``isin`` as NumPy and torch: NaN is in nothing (``invert``: NaN is in the result).
    CuPy's in1d counts a NaN query between searchsorted's ends on the sorted test values,
    where it finds the trailing NaNs."""
    neg = _bits_nan("float64")
    x = np.array([np.nan, 1.0, 2.0, neg, -0.0, 7.0])
    for y in (np.array([1.0, np.nan, 0.0]), np.array([neg, 2.0, np.nan, 1.0]),
              np.array([np.nan])):
        for dt in ("float32", "float64"):
            xs, ys = x.astype(dt), y.astype(dt)
            for invert in (False, True):
                want = np.isin(xs, ys, invert=invert)
                for dev in ("cuda", "cpu"):
                    got = pt.isin(pt.tensor(xs, device=dev), pt.tensor(ys, device=dev),
                                  invert=invert)
                    assert got.tolist() == want.tolist(), (dev, dt, y, invert, got)


def test_scans_are_contiguous_and_run_in_blocks_past_cupys_index_range():
    """``cumsum`` / ``cumprod`` along any dim return C-contiguous tensors with the cpu's
    strides (CuPy's scan along a non-last axis returns a permuted view, so ``.view(-1)``
    failed), and scans CuPy's 32-bit batch scan would overflow run in row blocks
    (``SCAN_LIMIT``, lowered here so that small tensors take that path)."""
    from polyten_cuda import kernels as K
    a = _x((5, 6, 7), "float64")
    i = (np.arange(210).reshape(5, 6, 7) % 5).astype("int64")
    for dim in (0, 1, 2, -1):
        t = pt.tensor(a, device="cuda").cumsum(dim)
        assert t.is_contiguous() and t.stride() == pt.tensor(a).cumsum(dim).stride()
        _close(t.view(-1).cpu().numpy(), np.cumsum(a, axis=dim).reshape(-1), rtol=1e-12)
    old = K.SCAN_LIMIT[0]
    K.SCAN_LIMIT[0] = 64
    try:
        for dim in (0, 1, 2):
            _close(pt.tensor(a, device="cuda").cumsum(dim).cpu().numpy(),
                   np.cumsum(a, axis=dim), rtol=1e-12)
            _close(pt.tensor(a, device="cuda").cumprod(dim).cpu().numpy(),
                   np.cumprod(a, axis=dim), rtol=1e-12)
            got = pt.tensor(i, device="cuda").cumsum(dim)
            assert got.is_contiguous() and got.tolist() == np.cumsum(i, axis=dim).tolist()
    finally:
        K.SCAN_LIMIT[0] = old


def test_edge_shapes_integer_rounding_and_nan_signs_run_as_on_the_cpu():
    """``flip`` of a 0-d tensor (CuPy's flip refuses it), ``floor`` / ``ceil`` / ``trunc`` of
    integers (the integers, as torch; CuPy 13's loops are float-only), ``searchsorted`` into
    empty sorted rows (CuPy cannot reshape (-1, 0)) and ``tril`` / ``triu`` with an offset
    past the matrix (CuPy's tri kernel takes an int32); and ``sign`` of NaN is NaN (NumPy,
    the Array API; CuPy's float sign is ``(x > 0) - (x < 0)``)."""
    for dev in ("cuda", "cpu"):
        for dt in (pt.float16, pt.float32, pt.float64):
            v = np.array([np.nan, -0.0, 2.0, -np.inf])
            s = pt.sign(pt.tensor(v, dtype=dt, device=dev)).cpu().numpy()
            assert np.array_equal(s, np.sign(v.astype(s.dtype)), equal_nan=True), (dev, dt)
            w = pt.tensor(v, dtype=dt, device=dev)
            w.sign_()
            assert np.array_equal(w.cpu().numpy(), s, equal_nan=True)
        assert pt.flip(pt.tensor(3.0, device=dev), ()).item() == 3.0
        for fn in ("floor", "ceil", "trunc"):
            r = getattr(pt, fn)(pt.tensor([3, -2], dtype=pt.int64, device=dev))
            assert r.dtype == pt.int64 and str(r._data.dtype) == "int64"
            assert r.tolist() == [3, -2]
            v = pt.tensor([5, -7], dtype=pt.int32, device=dev)
            getattr(v, fn + "_")()
            assert v.tolist() == [5, -7] and str(v._data.dtype) == "int32"
        got = pt.searchsorted(pt.zeros((2, 0), device=dev), pt.ones((2, 3), device=dev))
        assert got.tolist() == [[0, 0, 0], [0, 0, 0]]
        m = np.arange(12.0).reshape(3, 4)
        for k in (2**40, -2**40, 3, -3, 2**31):
            assert pt.tril(pt.tensor(m, device=dev), k).tolist() == np.tril(m, k).tolist()
            assert pt.triu(pt.tensor(m, device=dev), k).tolist() == np.triu(m, k).tolist()


def test_singular_values_of_non_finite_input_raise_at_the_next_read():
    """cuSOLVER's SVD returns NaN for a matrix with inf or NaN where LAPACK's fails; polyten
    raises the cpu's LinAlgError, naming the matrix, at the next host read (no wait)."""
    a = np.stack([np.eye(2), [[np.nan, 1.0], [2.0, 3.0]]])
    s = pt.linalg.svdvals(pt.tensor(a, device="cuda"))
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.svdvals: matrix \(1,\) of the "
                       r"batch \(input shape \(2, 2, 2\)\) contains non-finite values"):
        s.tolist()
    _close(pt.linalg.svdvals(pt.tensor(a[0], device="cuda")).cpu().numpy(), [1.0, 1.0])


def test_a_root_gradient_of_another_dtype_runs_the_fused_backward_kernels():
    """``y.backward(float64 gradient)`` on float32 outputs of fused-backward ops (sigmoid,
    tanh, softmax over a non-last dim, cross_entropy, the norms) gives the cpu's gradients:
    the engine casts it to the output's dtype, as torch; CuPy's kernels refused two dtypes for
    one type parameter, and the row RawKernels would have read float64 bytes as float32."""
    F = pt.nn.functional
    a = _x((4, 6), "float32", 3)
    target = np.array([1, 0, 5, 2])

    def run(dev):
        x = pt.tensor(a, device=dev, requires_grad=True)
        w = pt.ones(6, device=dev, requires_grad=True)
        outs = [pt.sigmoid(x), pt.tanh(x), F.softmax(x, dim=0), F.log_softmax(x, dim=0),
                F.layer_norm(x, (6,), weight=w),
                F.batch_norm(x, None, None, weight=w, training=True),
                F.cross_entropy(x, pt.tensor(target, device=dev))]
        for k, o in enumerate(outs):
            g = pt.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)),
                          dtype=pt.float64, device=dev)
            o.backward(g)
        return x.grad.cpu().numpy(), w.grad.cpu().numpy()

    for got, want in zip(run("cuda"), run("cpu")):
        assert got.dtype == np.float32
        _close(got, want, rtol=1e-5, atol=1e-6)


def test_max_pool_windows_wholly_outside_the_input_run_as_on_the_cpu():
    """A window holding no input element (padding, and a dilation past the input's end):
    -inf and the cpu's (torch's) index past the plane, no gradient -- the fused kernel gave
    0.0 and index -1."""
    F = pt.nn.functional
    for shape, d in (((2, 3, 2), "1d"), ((1, 2, 2, 5), "2d")):
        a = _x(shape, "float32", 5)
        res = {}
        for dev in ("cuda", "cpu"):
            x = pt.tensor(a, device=dev, requires_grad=True)
            v, i = getattr(F, f"max_pool{d}")(x, 2, stride=1, padding=1, dilation=3,
                                              return_indices=True)
            v.backward(pt.ones(tuple(v.shape), device=dev))
            res[dev] = (v.detach().cpu().numpy(), i.cpu().numpy(), x.grad.cpu().numpy())
        assert np.isneginf(res["cpu"][0]).any()
        for got, want in zip(res["cuda"], res["cpu"]):
            np.testing.assert_array_equal(got, want)


def test_ignored_targets_contribute_nothing_whatever_class_0_holds():
    """nll_loss / cross_entropy with ignored targets where class 0 has an infinite weight or
    a -inf log-probability: the cpu's values and gradients (both skip them, as torch)."""
    F = pt.nn.functional
    for classes in (3, 70):  # one thread per row; a warp per row (rows.py)
        x = np.log(np.random.default_rng(0).dirichlet(np.ones(classes), 4))
        x[1, 0] = -np.inf
        t = np.array([2, -100, 1, -100])
        w = np.concatenate([[np.inf], np.linspace(1, 2, classes - 1)])
        res = {}
        for dev in ("cuda", "cpu"):
            px = pt.tensor(x, device=dev, requires_grad=True)
            lx = pt.tensor(x, device=dev, requires_grad=True)  # logits with a -inf
            n = F.nll_loss(px, pt.tensor(t, device=dev), weight=pt.tensor(w, device=dev))
            c = F.cross_entropy(lx, pt.tensor(t, device=dev), weight=pt.tensor(w, device=dev))
            c2 = F.cross_entropy(lx, pt.tensor(t, device=dev), reduction="sum")
            (n + c + c2).backward()
            res[dev] = [n.item(), c.item(), c2.item(), px.grad.cpu().numpy(),
                        lx.grad.cpu().numpy()]
        assert all(np.isfinite(v) for v in res["cpu"][:3])
        for got, want in zip(res["cuda"], res["cpu"]):
            _close(got, want, rtol=1e-12)


def test_squares_are_products():
    """``x ** 2`` is ``x * x`` bit for bit (the cpu kernel's and torch's special case): CUDA's
    pow is not correctly rounded and CuPy has no case for the exponent 2."""
    for dt in ("float16", "float32", "float64"):
        t = pt.tensor(_x((1000,), dt, 11) * 37, device="cuda")
        assert np.array_equal((t ** 2).cpu().numpy(), (t * t).cpu().numpy()), dt
        assert np.array_equal(pt.pow(t, 2).cpu().numpy(), (t.cpu() ** 2).numpy()), dt


def test_half_mean_gradient_over_more_elements_than_float16_counts():
    """A float16 mean over 70000 elements has the gradient 1 / 70000 (in float32, rounded
    once), not 0 from a count that is inf in float16."""
    x = pt.ones(70000, dtype=pt.float16, device="cuda", requires_grad=True)
    x.mean().backward()
    assert x.grad[0].item() == float(np.float16(1 / 70000)) > 0


def test_an_explicit_integer_dtype_sum_wraps_as_on_the_cpu():
    """CuPy widens bool / small-integer sums to int64 unless asked: ``dtype=int8`` wraps in
    int8 and is stored as int8, as the cpu backend and torch."""
    a = np.array([[100, 100, 3], [120, 7, 2]], dtype=np.int8)
    t = pt.tensor(a, device="cuda")
    for got, want in ((pt.sum(t, dtype=pt.int8), np.sum(a, dtype=np.int8)),
                      (pt.sum(t, dim=1, dtype=pt.int8), np.sum(a, axis=1, dtype=np.int8)),
                      (pt.prod(t, dim=0, dtype=pt.int8), np.prod(a, axis=0, dtype=np.int8)),
                      (pt.cumsum(t, dim=1, dtype=pt.int8), np.cumsum(a, axis=1, dtype=np.int8))):
        assert str(got._data.dtype) == "int8" and np.array_equal(got.cpu().numpy(), want)


def _release_pool():
    """Free what earlier tests left in reference cycles, then the pool's cached blocks: a
    capped pool serves a request from its cache, and CuPy collects garbage before it refuses
    one (so that an allocation under a cap succeeds wherever memory can be found without
    passing it, as in torch's allocator)."""
    import gc
    gc.collect()
    pt.cuda.empty_cache()


def test_per_process_memory_fraction_caps_the_pool():
    """``set_per_process_memory_fraction`` (torch's): past the cap an allocation raises
    polyten's OutOfMemoryError naming it; the cap is per device, read back by
    ``get_per_process_memory_fraction``, and 1.0 lifts it."""
    c = pt.cuda
    pt.ones(1, device="cuda")  # load
    _release_pool()
    assert c.get_per_process_memory_fraction() == 1.0
    total = c.get_device_properties().total_memory
    fraction = (c.memory_reserved() + (8 << 20)) / total
    c.set_per_process_memory_fraction(fraction)
    try:
        assert c.get_per_process_memory_fraction(c.current_device()) == fraction
        with pytest.raises(c.OutOfMemoryError, match=r"tried to allocate 64\.00 MiB; .*This "
                           r"process may use at most .*set_per_process_memory_fraction"):
            pt.empty(16 << 20, dtype=pt.float32, device="cuda")
        assert pt.empty(1 << 20, dtype=pt.float32, device="cuda").shape == (1 << 20,)
        if c.device_count() > 1:  # the other devices keep theirs
            assert c.get_per_process_memory_fraction(1) == 1.0
            assert pt.empty(16 << 20, dtype=pt.float32, device="cuda:1").shape == (16 << 20,)
        _release_pool()
        c.set_per_process_memory_fraction(0.0)  # nothing new at all (CuPy's 0 is "no limit")
        with pytest.raises(c.OutOfMemoryError, match="This process may use at most"):
            pt.empty(1 << 20, dtype=pt.float32, device="cuda")
    finally:
        c.set_per_process_memory_fraction(1.0)
    assert c.get_per_process_memory_fraction() == 1.0
    assert pt.empty(16 << 20, dtype=pt.float32, device="cuda").shape == (16 << 20,)
    with pytest.raises(TypeError, match=r"set_per_process_memory_fraction: fraction must be a "
                                        r"float in \[0, 1\], got str '0.5'"):
        c.set_per_process_memory_fraction("0.5")
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\] .*got 1.5"):
        c.set_per_process_memory_fraction(1.5)
    with pytest.raises(ValueError, match="does not exist"):
        c.set_per_process_memory_fraction(0.5, c.device_count())


def test_a_capped_pool_releases_its_cache_before_refusing():
    """Under a cap (``set_per_process_memory_fraction``) CuPy counts its cached free blocks
    and refuses at once; polyten releases them and tries again, as torch's allocator does:
    12 MiB fit under a 24 MiB cap although 32 MiB of 4 MiB blocks sit in the cache.  A cap so
    small that CuPy's byte count would truncate to 0 ("no limit") stays a cap."""
    c = pt.cuda
    pt.ones(1, device="cuda")  # load
    _release_pool()
    total = c.get_device_properties().total_memory
    used = c.memory_allocated()
    blocks = [pt.empty(1 << 20, dtype=pt.float32, device="cuda") for _ in range(8)]
    del blocks
    assert c.memory_reserved() >= used + (32 << 20)  # cached, not released
    c.set_per_process_memory_fraction((used + (24 << 20)) / total)
    try:
        y = pt.empty(3 << 20, dtype=pt.float32, device="cuda")
        assert y.shape == (3 << 20,) and c.memory_reserved() < used + (24 << 20)
        del y
        _release_pool()  # y's block would serve the next request from the cache
        c.set_per_process_memory_fraction(0.1 / total)  # a tenth of a byte
        with pytest.raises(c.OutOfMemoryError, match="This process may use at most"):
            pt.empty(1 << 20, dtype=pt.float32, device="cuda")
    finally:
        c.set_per_process_memory_fraction(1.0)


@needs_two
def test_empty_cache_releases_every_devices_cache():
    """``empty_cache`` releases the cached blocks of every device, as torch's does (CuPy's
    ``free_all_blocks`` covers the current device only)."""
    c = pt.cuda
    x = pt.empty(1 << 20, device="cuda:1")
    del x
    assert c.memory_reserved(1) >= 4 << 20
    with c.device(0):
        c.empty_cache()
    assert c.memory_reserved(1) == c.memory_allocated(1)


def test_device_functions():
    c = pt.cuda
    assert c.is_available() and c.device_count() >= 1
    assert 0 <= c.current_device() < c.device_count()
    assert isinstance(c.get_device_name(), str) and c.get_device_name(0)
    c.set_device(0)
    assert c.current_device() == 0
    with pytest.raises(ValueError, match="does not exist"):
        c.set_device(c.device_count())
    with pytest.raises(ValueError, match="expected a cuda device"):
        c.synchronize("cpu")


def test_float32_matmul_precision_sets_cublas_compute_type():
    """polyten.set_float32_matmul_precision / backends.cuda.matmul.allow_tf32 reach CuPy's
    cuBLAS compute type for float32 (TensorFloat-32 from sm_80 on); products stay within
    TF32's error and go back to full float32 with "highest"."""
    import cupy
    linalg = cupy._core._routines_linalg
    a, b = _x((256, 512), "float32", 10), _x((512, 128), "float32", 11)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    x, w = pt.tensor(a, device="cuda"), pt.tensor(b, device="cuda")
    try:
        pt.backends.cuda.matmul.allow_tf32 = True
        assert pt.get_float32_matmul_precision() == "high"
        tf32 = pt.cuda.get_device_capability()[0] >= 8  # CuPy keeps the default below
        assert linalg.get_compute_type(np.float32) == (linalg.COMPUTE_TYPE_TF32 if tf32 else
                                                       linalg.COMPUTE_TYPE_DEFAULT)
        _close((x @ w).cpu().numpy(), ref, rtol=0, atol=2e-2 * np.abs(ref).max())
        # torch's "medium" is "high" without a bfloat16 kernel: CuPy has none for float32
        pt.set_float32_matmul_precision("medium")
        assert linalg.get_compute_type(np.float32) == (linalg.COMPUTE_TYPE_TF32 if tf32 else
                                                       linalg.COMPUTE_TYPE_DEFAULT)
        # batched products (polyten_cuda.gemm) follow the same setting
        xb, wb = x.reshape(2, 128, 512), w.expand(2, 512, 128)
        _close((xb @ wb).cpu().numpy().reshape(256, 128), ref, rtol=0,
               atol=2e-2 * np.abs(ref).max())
    finally:
        pt.set_float32_matmul_precision("highest")
    assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_DEFAULT
    _close((x @ w).cpu().numpy(), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_torch_cuda_device_queries_and_context():
    """get_device_properties / get_device_capability / mem_get_info / memory_stats and the
    ``polyten.cuda.device`` context, with torch.cuda's shapes and rules."""
    c = pt.cuda
    p = c.get_device_properties(0)
    assert p.name == c.get_device_name(0) and p.total_memory > 0
    assert p.multi_processor_count > 0 and (p.major, p.minor) == c.get_device_capability()
    assert "total_memory=" in repr(p)
    free, total = c.mem_get_info()
    assert 0 <= free <= total == p.total_memory
    x = pt.ones((1024, 256), device="cuda")
    stats = c.memory_stats()
    assert stats["allocated_bytes.all.current"] >= x.numel() * 4
    assert stats["reserved_bytes.all.current"] == c.max_memory_reserved() >= \
        stats["allocated_bytes.all.current"]
    assert c.is_initialized()
    # bfloat16: where this CuPy stores it (CuPy 14 with ml_dtypes); natively from sm_80 on
    from polyten.dispatch import registry
    stored = "bfloat16" in registry.get("cuda").dtypes
    assert c.is_bf16_supported() is stored
    assert c.is_bf16_supported(including_emulation=False) is (
        stored and c.get_device_capability()[0] >= 8)
    if stored:
        y = pt.ones(4096, device="cuda", dtype=pt.bfloat16)
        assert (y * 2).sum().item() == 8192.0 and (y @ y).item() == 4096.0
    with pytest.raises(ValueError, match="device 99 does not exist"):
        c.get_device_properties(99)
    before = c.current_device()
    with c.device(c.device_count() - 1):
        assert c.current_device() == c.device_count() - 1
        assert pt.ones(2, device="cuda").device.index == c.device_count() - 1
    assert c.current_device() == before


def test_cuda_manual_seed_reseeds_the_current_device():
    """polyten.cuda.manual_seed(s) reseeds the current GPU only, as manual_seed_all(s) would."""
    pt.cuda.manual_seed_all(7)
    a = pt.randn(5, device="cuda").cpu().numpy()
    pt.cuda.manual_seed(7)
    b = pt.randn(5, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(a, b)
    c = pt.randn(5, device="cuda").cpu().numpy()
    assert not np.array_equal(b, c)


def test_cuda_seed_functions_as_torch():
    """initial_seed is the seed last given (manual_seed, manual_seed_all, polyten.manual_seed,
    seed, seed_all) and reproduces the draws; memory_summary tabulates the pool."""
    c = pt.cuda
    c.manual_seed(1234)
    assert c.initial_seed() == 1234
    a = pt.rand(5, device="cuda")
    c.manual_seed(c.initial_seed())
    assert (pt.rand(5, device="cuda") == a).all().item()
    pt.manual_seed(77)
    assert c.initial_seed() == 77
    c.seed()
    s = c.initial_seed()
    assert s != 77 and 0 <= s < 2 ** 63
    c.seed_all()
    assert c.initial_seed() != s
    t = pt.empty(1 << 20, device="cuda")  # 4 MiB
    text = c.memory_summary()
    assert "Allocated memory (current)" in text and "Device total" in text
    del t


def test_manual_seed_reproduces_and_devices_differ():
    pt.manual_seed(123)
    a = pt.randn(1000, device="cuda").cpu().numpy()
    pt.manual_seed(123)
    b = pt.randn(1000, device="cuda").cpu().numpy()
    assert np.array_equal(a, b)
    pt.cuda.manual_seed_all(123)
    c = pt.randn(1000, device="cuda").cpu().numpy()
    assert np.array_equal(a, c)
    if pt.cuda.device_count() > 1:
        pt.manual_seed(123)
        d = pt.randn(1000, device="cuda:1").cpu().numpy()
        assert not np.array_equal(a, d)


def _cuda_draws(dev="cuda"):
    return [pt.rand(100, device=dev), pt.randn(7, 3, device=dev, dtype=pt.float64),
            pt.randint(-5, 5, (50,), device=dev), pt.randperm(20, device=dev),
            pt.nn.functional.dropout(pt.ones(64, device=dev), 0.5),
            pt.empty(9, device=dev, dtype=pt.float16).uniform_(),
            pt.multinomial(pt.tensor([0.1, 0.6, 0.3], device=dev), 8, replacement=True)]


def _same_draws(a, b):
    for x, y in zip(a, b):
        assert np.array_equal(x.cpu().numpy(), y.cpu().numpy())


def test_rng_state_round_trip_without_waiting_for_the_gpu():
    """torch.cuda.get_rng_state / set_rng_state: a uint8 cpu tensor (the Philox key, offset
    and seed) that brings back every sampler's stream, read and restored without a wait."""
    c = pt.cuda
    pt.manual_seed(5)
    s = c.get_rng_state()
    assert s.dtype == pt.uint8 and s.device.type == "cpu" and tuple(s.shape) == (24,)
    first = _cuda_draws()
    c.set_rng_state(s)
    _same_draws(_cuda_draws(), first)
    pt.manual_seed(5)
    assert (c.get_rng_state() == s).all().item()
    x = pt.randn(1 << 20, device="cuda")
    ok, info = _runs_without_waiting(lambda: c.set_rng_state(c.get_rng_state()))
    assert ok, info
    del x
    with pytest.raises(ValueError, match=r"polyten.cuda.set_rng_state: expected the 24-byte "
                                         r"state .* got 48 bytes"):
        c.set_rng_state(pt.get_rng_state())  # the cpu generator's state


def test_philox_kernels_on_the_gpu_are_the_reference_values():
    """NVRTC's build of the Philox kernels against the pure-Python Philox (``philox_ref.py``,
    itself checked against Random123's known answers): uniforms and integers bit for bit,
    normals and exponentials to the last few bits of the GPU's log / cos."""
    import cupy
    import philox_ref as R
    from polyten_cuda import philox
    g = philox.PhiloxGenerator(cupy, philox.compile_kernels(cupy), key=0xFEEDFACE12345, seed=1,
                               offset=2 ** 32 - 1)  # the offset's high word in use
    o = 2 ** 32 - 1
    assert g.random(300, dtype="float32").get().tolist() == R.uniform32(g.key, o, 300)
    assert g.random(300).get().tolist() == R.uniform64(g.key, o + 1, 300)
    got = g.integers(-7, 2 ** 62, size=300).get().tolist()
    assert got == [R.lemire(g.key, o + 2, i, -7, 2 ** 62 + 7) for i in range(300)]
    np.testing.assert_allclose(g.standard_normal(300).get(), R.normal64(g.key, o + 3, 300),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.standard_normal(300, dtype="float32").get(),
                               R.normal32(g.key, o + 4, 300), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(g.standard_exponential(300).get(),
                               R.exponential64(g.key, o + 5, 300), rtol=1e-12, atol=1e-12)
    m = g.dropout_mask((300,), 0.25, "float16").get()
    keep = np.array(R.uniform32(g.key, o + 6, 300), dtype=np.float32) >= np.float32(0.25)
    np.testing.assert_array_equal(m, np.where(keep, np.float16(np.float32(4 / 3)), 0))
    x = cupy.asarray(np.linspace(-3, 3, 300, dtype=np.float32)).reshape(20, 15).T
    y, m = g.dropout(x, 0.25)  # the same draw, and x times it, in one launch
    keep = np.array(R.uniform32(g.key, o + 7, 300), dtype=np.float32) >= np.float32(0.25)
    np.testing.assert_array_equal(m.get(), np.where(keep, np.float32(4 / 3), 0).reshape(15, 20))
    np.testing.assert_array_equal(y.get(), x.get() * m.get())


def test_multinomial_with_replacement_is_numpys_search_on_the_same_uniforms():
    """One launch searches every row: the samples are exactly NumPy's searchsorted (side
    "right") of the very uniforms the generator draws, with zero-weight categories never
    drawn and a one-category row always giving that category."""
    rng = np.random.default_rng(3)
    w = rng.random((64, 50))
    w[:, 7] = 0
    w[3] = 0
    w[3, 5] = 2.0
    tw = pt.tensor(w, device="cuda", dtype=pt.float32)
    s = pt.cuda.get_rng_state()
    out = pt.multinomial(tw, 5, replacement=True).cpu().numpy()
    pt.cuda.set_rng_state(s)
    u = pt.rand(64, 5, dtype=pt.float64, device="cuda").cpu().numpy()
    w32 = w.astype(np.float32).astype(np.float64)
    cdf = np.cumsum(w32, 1)
    want = np.stack([np.searchsorted(cdf[r], u[r] * cdf[r, -1], side="right")
                     for r in range(64)])
    want = np.minimum(want, 49 - np.argmax((w32 > 0)[:, ::-1], axis=1)[:, None])
    np.testing.assert_array_equal(out, want)
    assert (out[3] == 5).all() and not (out == 7).any()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64", "uint8", "bool"])
@pytest.mark.parametrize("right", [False, True])
def test_batched_searchsorted_matches_numpy(dtype, right):
    """One sorted row per leading index, every row searched in one launch: NumPy's
    insertion points (NaN sorts last; ties by side)."""
    rng = np.random.default_rng(5)
    if dtype == "bool":
        s = np.sort(rng.integers(0, 2, (3, 4, 6)).astype(bool), -1)
        v = rng.integers(0, 2, (3, 4, 5)).astype(bool)
    else:
        s = rng.integers(-3, 4, (3, 4, 6)).astype(dtype)
        v = rng.integers(-4, 5, (3, 4, 5)).astype(dtype)
        if dtype.startswith("float"):
            s[0, 0, -2:] = np.nan
            v[0, 0, 0] = v[1, 1, 1] = np.nan
        s = np.sort(s, -1)
    got = pt.searchsorted(pt.tensor(s, device="cuda"), pt.tensor(v, device="cuda"),
                          right=right).cpu().numpy()
    side = "right" if right else "left"
    want = np.stack([np.searchsorted(a, b, side=side)
                     for a, b in zip(s.reshape(-1, 6), v.reshape(-1, 5))]).reshape(v.shape)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_embedding_bag_max_is_one_search_per_bag_and_column(dtype):
    """'max' over a 1-D input: each (bag, column) walks its bag in one kernel; values and the
    row that gets the gradient (the first maximum) against NumPy, empty bags giving zeros."""
    rng = np.random.default_rng(11)
    n, bags, dim = 300, 40, 24
    idx = rng.integers(0, 50, n)
    offs = np.sort(rng.integers(0, n, bags))
    offs[0] = 0
    w = rng.standard_normal((50, dim)).astype(dtype)
    pw = pt.tensor(w, device="cuda", requires_grad=True)
    out = pt.nn.functional.embedding_bag(pt.tensor(idx, device="cuda"), pw,
                                         pt.tensor(offs, device="cuda"), mode="max")
    out.sum().backward()
    ends = np.append(offs[1:], n)
    want = np.zeros((bags, dim), dtype=np.float64)
    grad = np.zeros((50, dim))
    for b, (s, e) in enumerate(zip(offs, ends)):
        if e > s:
            rows = w[idx[s:e]].astype(np.float64)
            want[b] = rows.max(0)
            first = rows.argmax(0)
            for c in range(dim):
                grad[idx[s + first[c]], c] += 1
    np.testing.assert_array_equal(out.detach().cpu().numpy().astype(np.float64), want)
    np.testing.assert_array_equal(pw.grad.cpu().numpy().astype(np.float64), grad)


def test_fork_rng_restores_cpu_and_gpu_generators():
    pt.manual_seed(3)
    with pt.random.fork_rng(devices=range(pt.cuda.device_count())):
        pt.rand(5)
        _cuda_draws()
    a = [pt.rand(5)] + _cuda_draws()
    pt.manual_seed(3)
    _same_draws([pt.rand(5)] + _cuda_draws(), a)


def test_cuda_generator_draws_its_own_stream_without_waiting():
    """torch.Generator(device="cuda"): its stream is the one polyten.manual_seed(seed) gives
    the GPU, it leaves the GPU's default generator alone, and swapping it in and out is host
    work only."""
    g = pt.Generator(device="cuda").manual_seed(21)
    assert g.device == pt.device(f"cuda:{pt.cuda.current_device()}")
    a = [pt.randn(50, device="cuda", generator=g),
         pt.randint(0, 9, (20,), device="cuda", generator=g)]
    pt.manual_seed(21)
    _same_draws([pt.randn(50, device="cuda"), pt.randint(0, 9, (20,), device="cuda")], a)
    pt.manual_seed(4)
    x = pt.rand(10, device="cuda")
    pt.manual_seed(4)
    st = g.get_state()
    b = pt.rand(10, device="cuda", generator=g)
    _same_draws([pt.rand(10, device="cuda")], [x])
    g.set_state(st)
    _same_draws([pt.rand(10, device="cuda", generator=g)], [b])
    w = pt.empty(64, 64, device="cuda")
    ok, info = _runs_without_waiting(lambda: pt.nn.init.normal_(w, generator=g))
    assert ok, info
    with pytest.raises(ValueError, match="the generator is on cuda:.* drawn on cpu"):
        pt.rand(2, generator=g)


@needs_two
def test_rng_state_of_each_gpu_and_restored_on_another():
    c = pt.cuda
    pt.manual_seed(9)
    states = c.get_rng_state_all()
    assert len(states) == c.device_count()
    on1 = _cuda_draws("cuda:1")
    c.set_rng_state(states[1], device=0)  # cuda:0 now draws cuda:1's stream
    _same_draws(_cuda_draws("cuda:0"), on1)
    c.set_rng_state_all(states)
    _same_draws(_cuda_draws("cuda:1"), on1)
    with pytest.raises(ValueError, match="set_rng_state_all: .* states for"):
        c.set_rng_state_all(states + states)
    g1 = pt.Generator(device="cuda:1").manual_seed(9)  # the second GPU's stream for seed 9
    pt.manual_seed(9)
    _same_draws([pt.rand(5, device="cuda:1", generator=g1)], [pt.rand(5, device="cuda:1")])


# --- no host synchronisation inside a training step ----------------------------------------
_SPIN = r"""
extern "C" __global__ void polyten_spin(long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
"""


def _runs_without_waiting(step, seconds=1.0):
    """Queue a kernel that spins for ``seconds`` on the current stream, then run ``step``: if
    ``step`` returns before the spin is over (host clock, and the spin's event not done), it
    never waited for the GPU -- any host synchronisation (a device-to-host copy, a stream or
    device sync, a pageable host-to-device copy) would have waited for the spin."""
    import cupy
    standin = getattr(cupy, "_polyten_standin", None)
    if standin is not None:
        # the CuPy stand-in (tests/cupy_standin.py) runs kernels at once: it counts every
        # device-to-host read, pageable host-to-device copy and value-dependent shape instead
        standin.STATS.clear()
        step()
        traffic = {k: v for k, v in standin.traffic().items() if k != "h2d_async"}
        return not traffic, traffic
    spin = cupy.RawKernel(_SPIN, "polyten_spin")
    spin((1,), (1,), (np.int64(int(seconds * 1e9)),))
    done = cupy.cuda.Event()
    done.record()
    t0 = time.perf_counter()
    step()
    host = time.perf_counter() - t0
    waited = done.done
    cupy.cuda.get_current_stream().synchronize()
    return host < seconds * 0.5 and not waited, f"{host:.3f} s"


def _mlp_step(loss_fn, opt_name):
    pt.manual_seed(0)
    model = pt.nn.Sequential(pt.nn.Linear(32, 64), pt.nn.ReLU(), pt.nn.Linear(64, 10)).to("cuda")
    opt = (pt.optim.Adam(model.parameters(), lr=1e-3) if opt_name == "adam"
           else pt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    x = pt.randn(128, 32, device="cuda")
    y = pt.randn(128, 10, device="cuda") if loss_fn == "mse" else \
        pt.randint(0, 10, (128,), device="cuda")

    def step():
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean() if loss_fn == "mse" else \
            pt.nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
    # compile every kernel and fill the memory pool first, over two steps: SGD's first step
    # creates its momentum buffers and its second runs another kernel, and the first launch
    # of a kernel loads its module, which waits for the GPU (an H200 waited there)
    step()
    step()
    pt.cuda.synchronize()
    return step


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_training_step_never_waits_for_the_gpu(opt_name):
    ok, host = _runs_without_waiting(_mlp_step("mse", opt_name))
    assert ok, f"the training step waited for the GPU ({host} on the host)"


def test_cross_entropy_step_never_waits_for_the_gpu():
    """The class-target check is deferred to the next host read on cuda
    (polyten.dispatch.checks), so a cross-entropy step queues its kernels and returns."""
    ok, host = _runs_without_waiting(_mlp_step("ce", "adam"))
    assert ok, f"the training step waited for the GPU ({host} on the host)"


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_mixed_precision_step_never_waits_for_the_gpu(opt_name):
    """autocast + GradScaler with Adam / SGD: the unscale, the inf/NaN flag, the skipped-step
    decision, the step counters and the scale's update all stay on the device (PyTorch's
    fused optimizers' protocol), so the step queues its kernels and returns; an overflowing
    step is then skipped on the device and backs the scale off."""
    pt.manual_seed(0)
    model = pt.nn.Sequential(pt.nn.Linear(32, 64), pt.nn.ReLU(), pt.nn.Linear(64, 10)).to("cuda")
    opt = (pt.optim.Adam(model.parameters(), lr=1e-3) if opt_name == "adam"
           else pt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    scaler = pt.amp.GradScaler("cuda", init_scale=1024.0)
    x = pt.randn(128, 32, device="cuda")
    y = pt.randint(0, 10, (128,), device="cuda")

    def step():
        opt.zero_grad()
        with pt.autocast("cuda"):
            loss = pt.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    step()  # compiles every kernel; SGD's first step creates its buffers, so
    step()  # its second runs other kernels (a kernel's first launch loads its module)
    pt.cuda.synchronize()
    ok, host = _runs_without_waiting(step)
    assert ok, f"the mixed-precision step waited for the GPU ({host} on the host)"
    before = [p.detach().clone() for p in model.parameters()]
    x[0, 0] = float("inf")
    step()
    assert scaler.get_scale() == 512.0
    for a, b in zip(model.parameters(), before):
        assert bool((a.detach() == b).all())
    if opt_name == "adam":
        assert opt.state[next(model.parameters())]["step"].item() == 3  # 2 warm-ups + 1


def test_device_step_counters_round_trip_through_state_dict():
    """A step the fused Adam takes under GradScaler keeps its counter on the device (a
    float32 0-d tensor, as PyTorch's fused optimizers); a later step without the scaler, a
    state_dict round trip and the per-parameter path all continue from it."""
    w = pt.nn.Parameter(pt.tensor([1.0, -2.0], device="cuda"))
    opt = pt.optim.Adam([w], lr=0.1)
    scaler = pt.amp.GradScaler("cuda", init_scale=4.0)
    for _ in range(2):
        opt.zero_grad()
        scaler.scale((w * w).sum()).backward()
        scaler.step(opt)
        scaler.update()
    step = opt.state[w]["step"]
    assert isinstance(step, pt.Tensor) and step.device.type == "cuda"
    assert step.dtype == pt.float32 and step.shape == () and step.item() == 2.0
    opt.zero_grad()
    (w * w).sum().backward()
    opt.step()  # no scaler: a host count again
    assert opt.state[w]["step"] == 3
    opt2 = pt.optim.Adam([pt.nn.Parameter(w.detach().clone())], lr=0.1, foreach=False)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[opt2.param_groups[0]["params"][0]]["step"] == 3


@needs_two
def test_grad_scaler_across_two_gpus_matches_the_cpu():
    """A model split over cuda:0 and cuda:1 (one parameter group per device, and one group
    spanning both) under GradScaler with Adam: a flag per device, combined on the scale's
    device for update() and copied to each group's device for its step; an overflow on
    cuda:1 alone skips the step on both.  Parameters, counters and scale equal the cpu's."""
    def train(devs):
        pt.manual_seed(0)
        a = pt.nn.Linear(4, 6).to(devs[0])
        b = pt.nn.Linear(6, 2).to(devs[1])
        mixed = [pt.nn.Parameter(pt.ones(3, device=devs[0])),
                 pt.nn.Parameter(pt.ones(2, device=devs[1]))]
        opt = pt.optim.Adam([{"params": a.parameters()}, {"params": b.parameters()},
                             {"params": mixed}], lr=0.05)
        scaler = pt.amp.GradScaler("cuda", init_scale=256.0, growth_interval=2)
        rng = np.random.default_rng(0)
        for step in range(6):
            x = rng.standard_normal((5, 4)).astype(np.float32)
            opt.zero_grad()
            h = a(pt.tensor(x, device=devs[0]))
            out = b(h.to(devs[1]))
            if step == 2:
                out = out * float("inf")  # only cuda:1's gradients overflow
            loss = ((out ** 2).mean().to(devs[0]) + (mixed[0] ** 2).sum()
                    + (mixed[1] ** 3).sum().to(devs[0]))
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        params = [p for g in opt.param_groups for p in g["params"]]
        return ([p.detach().cpu().numpy() for p in params],
                [int(opt.state[p]["step"]) for p in params], scaler.get_scale())

    got = train(["cuda:0", "cuda:1"])
    want = train(["cpu", "cpu"])
    assert got[1] == want[1] == [5] * 6
    assert got[2] == want[2]
    for g, w in zip(got[0], want[0]):
        _close(g, w, rtol=1e-5, atol=1e-6)


def test_embedding_step_never_waits_for_the_gpu():
    """Index bounds (embedding -> index_select) are deferred checks on cuda too."""
    pt.manual_seed(0)
    model = pt.nn.Sequential(pt.nn.Embedding(100, 32), pt.nn.Flatten(),
                             pt.nn.Linear(8 * 32, 10)).to("cuda")
    opt = pt.optim.Adam(model.parameters(), lr=1e-3)
    x = pt.randint(0, 100, (64, 8), device="cuda")
    y = pt.randint(0, 10, (64,), device="cuda")

    def step():
        opt.zero_grad()
        pt.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    step()
    pt.cuda.synchronize()
    ok, host = _runs_without_waiting(step)
    assert ok, f"the training step waited for the GPU ({host} on the host)"


def test_out_of_range_target_is_reported_at_the_next_host_read():
    x = pt.randn(4, 3, device="cuda", requires_grad=True)
    loss = pt.nn.functional.cross_entropy(x, pt.tensor([0, 7, 1, 2], device="cuda"))
    with pytest.raises(IndexError, match=r"cross_entropy: target 7 is out of bounds.*"
                                         r"test_cuda.py:\d+"):
        loss.item()
    loss = pt.nn.functional.cross_entropy(x, pt.tensor([0, 7, 1, 2], device="cuda"))
    with pytest.raises(IndexError, match="target 7"):
        pt.cuda.synchronize()
    pt.cuda.set_sync_checks(True)
    try:
        with pytest.raises(IndexError, match="target 7"):
            pt.nn.functional.cross_entropy(x, pt.tensor([0, 7, 1, 2], device="cuda"))
    finally:
        pt.cuda.set_sync_checks(False)


def test_conformance_nn_area_on_cuda():
    """The nn area of the conformance suite on cuda (the fused composites); the whole suite
    runs in scripts/gpu_check.sh (polyten conformance cuda)."""
    conf = pytest.importorskip("polyten_conformance")
    assert conf.run("cuda", area="nn", extra_args=("-q", "-p", "no:cacheprovider")) == 0


def test_dlpack_with_torch_cuda_shares_memory():
    """torch CUDA tensors and polyten cuda tensors exchange data through DLPack without a
    copy, in both directions (``polyten.from_dlpack`` / ``torch.from_dlpack``), float32 and
    float16, and a view's strides survive."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    if _standin() is not None:
        pytest.skip("the CuPy stand-in does not emulate DLPack export")
    for tdt, pdt in ((torch.float32, pt.float32), (torch.float16, pt.float16)):
        t = torch.arange(12, dtype=tdt, device="cuda").reshape(3, 4)
        p = pt.from_dlpack(t)
        assert p.device.type == "cuda" and p.dtype == pdt and tuple(p.shape) == (3, 4)
        t[0, 0] = 100  # the same memory
        torch.cuda.synchronize()
        assert p[0, 0].item() == 100
        q = pt.arange(6, dtype=pdt, device="cuda").reshape(2, 3)
        u = torch.from_dlpack(q)
        assert u.is_cuda and u.dtype == tdt
        q[1, 2] = -1.0
        pt.cuda.synchronize()
        assert u[1, 2].item() == -1.0
        col = pt.from_dlpack(t[:, 1])  # a strided view
        np.testing.assert_array_equal(col.cpu().numpy(), t[:, 1].cpu().numpy())


# --- streams and events (polyten.cuda.Stream / Event / stream) ------------------------------
def _standin():
    import cupy
    return getattr(cupy, "_polyten_standin", None)


def _torch_cuda():
    """torch, where it is installed with CUDA; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _spin(seconds):
    """Keep the current stream busy for ``seconds`` (a real GPU only)."""
    import cupy
    cupy.RawKernel(_SPIN, "polyten_spin")((1,), (1,), (np.int64(int(seconds * 1e9)),))


def test_event_timing_of_a_matmul():
    c = pt.cuda
    a = pt.randn(1024, 1024, device="cuda")
    a @ a  # warm: cuBLAS handle, memory pool
    c.synchronize()
    start, end = c.Event(enable_timing=True), c.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        a @ a
    end.record()
    end.synchronize()
    assert end.query()
    ms = start.elapsed_time(end)
    assert isinstance(ms, float) and ms > 0


def test_events_mark_asynchronous_work():
    """An event recorded after queued work completes only when the GPU has run it; timing
    it before then is an error that says what to do, as in PyTorch."""
    c = pt.cuda
    start, end = c.Event(enable_timing=True), c.Event(enable_timing=True)
    gpu = _standin() is None
    start.record()
    if gpu:
        _spin(0.2)
    end.record()
    if gpu:
        assert not end.query()
        with pytest.raises(RuntimeError, match=r"has not finished yet; call "
                                               r"end_event.synchronize\(\)"):
            start.elapsed_time(end)
    end.synchronize()
    assert end.query() and start.query()
    ms = start.elapsed_time(end)
    assert ms > (150 if gpu else 0)


def test_side_stream_joined_with_wait_stream_matches_the_default_stream():
    """Work queued on a side stream after ``wait_stream`` reads the default stream's results
    (the default stream is kept busy, so without the wait it would read unwritten memory),
    the host never waits for it, and after the join its results are the default stream's."""
    c = pt.cuda
    gpu = _standin() is None
    a0 = pt.tensor(_x((512, 256)), device="cuda")
    b = pt.tensor(_x((256, 128), seed=1), device="cuda")
    host = _x((64, 256), seed=2)
    pinned = pt.tensor(host).pin_memory("cuda")
    ref = ((a0 @ b).relu() * 2).sum(dim=0).cpu().numpy()
    c.synchronize()
    side = c.Stream()
    assert side.device == c.current_stream().device and side != c.default_stream()
    if gpu:
        _spin(0.3)  # the default stream is busy for 0.3 s
    a = a0 * 1.0     # written on the default stream after the spin
    t0 = time.perf_counter()
    side.wait_stream(c.current_stream())
    with c.stream(side):
        assert c.current_stream() == side
        out = ((a @ b).relu() * 2).sum(dim=0)
        hb = pinned.to("cuda", non_blocking=True) @ b   # a pinned copy queued on `side`
    done = side.record_event()
    waited = time.perf_counter() - t0
    assert c.current_stream() == c.default_stream()
    if gpu:
        assert waited < 0.15, f"the host waited {waited:.3f} s"
        assert not done.query()  # the side stream waits for the spin, the host does not
    c.current_stream().wait_stream(side)
    _close(out.cpu().numpy(), ref, rtol=1e-6)
    _close(hb.cpu().numpy(), host.astype(np.float64) @ _x((256, 128), seed=1), rtol=1e-4,
           atol=1e-4)
    assert done.query()


def test_nvtx_ranges_and_marks():
    """torch.cuda.nvtx's functions: nested depths, a formatted range, a mark; a pop with
    nothing open is -1, as torch."""
    nvtx = pt.cuda.nvtx
    assert nvtx.range_push("outer") == 0
    assert nvtx.range_push("inner") == 1
    nvtx.mark("here")
    assert nvtx.range_pop() == 1 and nvtx.range_pop() == 0
    assert nvtx.range_pop() == -1
    with nvtx.range("step {}", 3):
        pt.ones(8, device="cuda").sum()
    with pytest.raises(TypeError, match="msg must be a str"):
        nvtx.range_push(3)


def test_set_stream_makes_a_stream_current_until_the_next():
    c = pt.cuda
    default = c.current_stream()
    s = c.Stream()
    try:
        c.set_stream(s)
        assert c.current_stream() == s
        y = pt.ones(1000, device="cuda") * 3  # queued on s
        s.synchronize()
        assert y.sum().item() == 3000.0
        c.set_stream(None)  # nothing changes, as torch
        assert c.current_stream() == s
    finally:
        c.set_stream(default)
    assert c.current_stream() == default
    with pytest.raises(TypeError, match="set_stream: expected a polyten.cuda.Stream"):
        c.set_stream(0)


def test_stream_waits_never_block_the_host():
    c = pt.cuda
    side, ev = c.Stream(), c.Event()

    def step():
        side.wait_stream(c.current_stream())
        ev.record()
        side.wait_event(ev)
        ev.wait(side)
        c.current_stream().wait_stream(side)
        side.query()
    step()
    ok, host = _runs_without_waiting(step)
    assert ok, f"a stream or event wait blocked the host ({host})"


def test_wrong_target_on_a_side_stream_is_reported_at_the_next_read():
    c = pt.cuda
    x = pt.randn(4, 3, device="cuda")
    bad = pt.tensor([0, 7, 1, 2], device="cuda")
    side = c.Stream()
    side.wait_stream(c.current_stream())
    with c.stream(side):
        loss = pt.nn.functional.cross_entropy(x, bad)
    c.current_stream().wait_stream(side)
    with pytest.raises(IndexError, match=r"target 7 is out of bounds.*test_cuda.py:\d+"):
        loss.item()


@needs_two
def test_stream_on_the_second_gpu():
    c = pt.cuda
    a = _x((128, 64))
    t = pt.tensor(a, device="cuda:1")
    before = c.current_device()
    s1 = c.Stream("cuda:1")
    assert s1.device == pt.device("cuda:1")
    s1.wait_stream(c.current_stream(1))
    with c.stream(s1):  # also makes cuda:1 the current device, as torch.cuda.stream
        assert c.current_device() == 1 and c.current_stream() == s1
        y = (t @ t.T).sum(dim=1)
        z = pt.ones(3, device="cuda")
    assert c.current_device() == before and z.device == pt.device("cuda:1")
    c.current_stream(1).wait_stream(s1)
    _close(y.cpu().numpy(), (a.astype(np.float64) @ a.T).sum(1), rtol=1e-4, atol=1e-4)


# --- the gamma family -----------------------------------------------------------------------
def test_gamma_family_fused_kernels_match_the_cpu_backend_and_torch():
    """``lgamma``, ``digamma`` and ``polygamma`` are one fused launch each (float16 / bfloat16
    computed in float32, rounded once): float64 within a few ulps of the cpu backend away from
    the roots, the same special values (poles, +-0, +-inf, NaN) and the torch values."""
    torch = pytest.importorskip("torch")
    inf, nan = float("inf"), float("nan")
    xs = np.array([0.0, -0.0, -1.0, -2.0, -2.5, -0.5, -7.25, 1e-8, 0.5, 1.0, 1.5, 2.0, 2.5,
                   3.7, 9.99, 10.0, 12.5, 100.0, 1e5, 1e10, 1e300, inf, -inf, nan])
    x = pt.tensor(xs, device="cuda")
    cpu = pt.tensor(xs)
    for name in ("lgamma", "digamma"):
        got = getattr(pt, name)(x).cpu().numpy()
        want = getattr(pt, name)(cpu).numpy()
        _close(got, want, rtol=1e-13, atol=1e-14)
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
    tx = torch.tensor(xs)
    keep = ~np.isinf(xs)
    _close(pt.lgamma(x).cpu().numpy(), torch.lgamma(tx).numpy(), rtol=1e-13, atol=1e-14)
    _close(pt.digamma(x).cpu().numpy()[keep], torch.digamma(tx).numpy()[keep], rtol=1e-13,
           atol=1e-14)
    for n in (0, 1, 2, 3, 6):
        got = pt.polygamma(n, x).cpu().numpy()
        _close(got, pt.polygamma(n, cpu).numpy(), rtol=1e-12, atol=1e-300)
        # torch's poles of trigamma are large finite numbers (sin(pi x) rounded), its
        # +-inf are Cephes' artefacts: compared away from them
        ok = np.isfinite(xs) & ~((xs <= 0) & (xs == np.floor(xs)))
        # torch's trigamma (n = 1) is a short series, good to about 1e-9, and its direct sum
        # for x < 0 cancels (polygamma(6, -2.5): 4e-11 off, where these are exact)
        _close(got[ok], torch.polygamma(n, tx).numpy()[ok], rtol=1e-8 if n == 1 else 1e-9,
               atol=1e-300)
    for dt, tol in (("float32", 2e-6), ("float16", 1e-3), ("bfloat16", 8e-3)):
        v = np.array([0.3, 1.5, 2.5, 4.0, 7.5, -1.5, -0.25])
        t = pt.tensor(v, device="cuda").to(getattr(pt, dt))
        ref = torch.tensor(v).to(getattr(torch, dt))
        for name in ("lgamma", "digamma"):
            got = getattr(pt, name)(t)
            assert got.dtype == getattr(pt, dt)
            _close(got.float().cpu().numpy(), getattr(torch, name)(ref).float().numpy(),
                   rtol=tol, atol=tol)
        got = pt.polygamma(2, t)
        assert got.dtype == getattr(pt, dt)
        _close(got.float().cpu().numpy(), torch.polygamma(2, ref).float().numpy(), rtol=tol,
               atol=tol)
    # integers: the default float dtype; in place and autograd on the device
    assert pt.lgamma(pt.tensor([1, 2, 3], device="cuda")).dtype == pt.float32
    y = pt.tensor([1.5, 2.5], device="cuda")
    y.lgamma_()
    _close(y.cpu().numpy(), [math.lgamma(1.5), math.lgamma(2.5)], rtol=1e-6)
    # in place through the fused kernels: no wait for the GPU (the shared kernels would
    # split the elements by branch with boolean masks, reading counts on the host)
    z = pt.tensor([-2.5, 0.5, 12.0], device="cuda")
    ok, info = _runs_without_waiting(lambda: (z.lgamma_(), z.digamma_(), z.erf_()))
    assert ok, info
    w = pt.tensor([0.7, 3.2], dtype=pt.float64, device="cuda", requires_grad=True)
    g, = pt.autograd.grad(pt.lgamma(w).sum(), w)
    _close(g.cpu().numpy(), torch.digamma(torch.tensor([0.7, 3.2], dtype=torch.float64)),
           rtol=1e-13)


def test_lu_factor_takes_cusolver_getrf_for_few_large_matrices():
    """``linalg.lu_factor`` on cuda: cuSOLVER's getrf (one call a matrix) when there are no
    more matrices than columns, the shared column-by-column kernel for many small ones; both
    give LAPACK's factors and pivots (SciPy's getrf in float64 here), getrf's info marks the
    first zero pivot, ``pivot=False`` factors without exchanges, no host read, and the gradient
    matches the cpu's."""
    from scipy.linalg import lapack
    from polyten_cuda import lu as cuda_lu
    assert cuda_lu.use_getrf(1, 4096, 4096) and cuda_lu.use_getrf(8, 64, 40)
    assert not cuda_lu.use_getrf(500, 4, 4) and not cuda_lu.use_getrf(1, 0, 5)
    standin = _standin()
    rng = np.random.default_rng(11)
    for shape, dt, tol in (((48, 48), "float64", 1e-12), ((2, 40, 30), "float32", 2e-5),
                           ((3, 30, 40), "complex128", 1e-12), ((300, 5, 5), "float64", 1e-12)):
        a = rng.standard_normal(shape)
        if dt.startswith("complex"):
            a = a + 1j * rng.standard_normal(shape)
        a = a.astype(dt)
        if standin is not None:
            standin.CUSOLVER_CALLS.clear()
        LU, piv = pt.linalg.lu_factor(pt.tensor(a, device="cuda"))
        batch = int(np.prod(shape[:-2], dtype=np.int64))
        if standin is not None:
            assert len(standin.CUSOLVER_CALLS) == (batch if batch <= min(shape[-2:]) else 0)
        got, gpiv = LU.cpu().numpy(), piv.cpu().numpy()
        for i, m in enumerate(a.reshape((-1,) + shape[-2:]).astype(np.complex128 if
                                                                     dt.startswith("complex")
                                                                     else np.float64)):
            lu_ref, piv_ref, info = lapack.get_lapack_funcs("getrf", dtype=m.dtype)(m)
            assert info == 0
            np.testing.assert_array_equal(gpiv.reshape(-1, gpiv.shape[-1])[i], piv_ref + 1)
            np.testing.assert_allclose(got.reshape((-1,) + shape[-2:])[i], lu_ref, rtol=tol,
                                       atol=tol)
    # a transposed input: its swapped axes are the column-major buffer getrf overwrites, so
    # the kernel must still copy it
    t = pt.tensor(a[0].T.copy(), device="cuda").mT
    LU, _ = pt.linalg.lu_factor(t)
    np.testing.assert_array_equal(t.cpu().numpy(), a[0])
    ones = pt.tensor(np.ones((40, 40)), device="cuda")
    ok, info = _runs_without_waiting(lambda: pt.linalg.lu_factor_ex(ones))
    assert ok, info
    _, _, info = pt.linalg.lu_factor_ex(ones)
    assert int(info.item()) == 2  # U[1, 1] is exactly zero, as LAPACK reports it
    a = rng.standard_normal((40, 40))
    LU, piv, _ = pt.linalg.lu_factor_ex(pt.tensor(a, device="cuda"), pivot=False)
    np.testing.assert_array_equal(piv.cpu().numpy(), np.arange(1, 41))
    L = np.tril(LU.cpu().numpy(), -1) + np.eye(40)
    np.testing.assert_allclose(L @ np.triu(LU.cpu().numpy()), a, atol=1e-9)
    grads = []
    for dev in ("cuda", "cpu"):
        x = pt.tensor(a, device=dev, requires_grad=True)
        P, L, U = pt.linalg.lu(x)
        ((L ** 2).sum() + U.sin().sum()).backward()
        grads.append(x.grad.cpu().numpy())
    _close(grads[0], grads[1], rtol=1e-9, atol=1e-11)


def test_eig_and_eigvals_run_on_cuda_as_on_the_cpu():
    """``linalg.eig`` / ``eigvals`` on cupy.linalg.eig (CuPy 14, cuSOLVER's Xgeev): complex
    results of the cpu's dtype, the eigen-equation, the cpu's eigenvalues (sorted: geev's
    order is not specified) and gradients; inf / NaN raise the cpu's LinAlgError at the next
    host read."""
    rng = np.random.default_rng(5)
    close = np.testing.assert_allclose  # complex values (_close compares real parts)
    for dt, cdt, tol in (("float32", "complex64", 1e-4), ("float64", "complex128", 1e-11),
                         ("complex128", "complex128", 1e-11)):
        a = rng.standard_normal((2, 4, 4))
        if dt.startswith("complex"):
            a = a + 1j * rng.standard_normal((2, 4, 4))
        A = pt.tensor(a, device="cuda").to(getattr(pt, dt))
        L, V = pt.linalg.eig(A)
        assert (L.dtype.name, V.dtype.name, L.device.type) == (cdt, cdt, "cuda")
        Lh, Vh = L.cpu().numpy(), V.cpu().numpy()
        close(a @ Vh, Vh * Lh[..., None, :], rtol=tol, atol=tol * 10)
        close(np.linalg.norm(Vh, axis=-2), np.ones((2, 4)), rtol=tol)
        want = np.sort_complex(pt.linalg.eigvals(A.cpu()).numpy())
        close(np.sort_complex(pt.linalg.eigvals(A).cpu().numpy()), want, rtol=tol,
               atol=tol * 10)
    a = rng.standard_normal((3, 3))
    grads = []
    for dev in ("cuda", "cpu"):
        x = pt.tensor(a, device=dev, requires_grad=True)
        L, V = pt.linalg.eig(x)
        ((L ** 2).real.sum() + (V.abs() ** 3).sum() + pt.linalg.eigvals(x).imag.abs().sum()
         ).backward()
        grads.append(x.grad.cpu().numpy())
    _close(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    bad = np.stack([np.eye(2), [[np.nan, 1.0], [2.0, 3.0]]])
    w = pt.linalg.eigvals(pt.tensor(bad, device="cuda"))
    with pytest.raises(pt.linalg.LinAlgError, match=r"linalg.eigvals: matrix \(1,\) of the "
                       r"batch .* contains non-finite values"):
        w.tolist()
