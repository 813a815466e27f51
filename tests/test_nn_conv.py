"""Convolutions: conv1d/2d, conv_transpose1d/2d, unfold/fold, pad and their layers.

Values and gradients (input, weight, bias) against PyTorch in float64 over a grid of options,
on both paths of the ``conv`` / ``conv_transpose`` composites (the cpu backend's fused kernels
and the polyten-op defaults, on a cpu clone without them); finite-difference gradchecks and
gradgradchecks without PyTorch; PyTorch's default initialisation (statistics), reprs and
errors naming the call, the shapes and the fix.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import (against_torch, close, copy_weights, module_step, rand, to_numpy,
                        torch_or_skip)

# PyTorch's own notice about 'same' with even kernels
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

UNFUSED = ("conv", "conv_transpose", "max_pool")
ATOL = 1e-10  # sums of many products: a looser absolute tolerance than the shared default
_close = functools.partial(close, atol=ATOL)


def _against_torch(devices, pfn, tfn, arrays):
    against_torch(devices, pfn, tfn, arrays, seed=9, atol=ATOL)


@pytest.fixture(scope="module")
def devices():
    """The cpu backend (fused kernels) and a clone running the polyten-op defaults."""
    with cpu_clone("nofusedconv", drop=UNFUSED) as dev:
        yield ("cpu", dev)


# -------------------------------------------------------------------- conv2d / conv1d ---
CONV2D_CASES = [
    # input shape, weight shape, stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ((2, 3, 8, 7), (4, 3, 3, 2), 2, 1, 1, 1),
    ((1, 2, 9, 8), (3, 2, 2, 3), (2, 3), (1, 2), (2, 1), 1),
    ((2, 4, 6, 5), (6, 2, 3, 3), 1, "same", 1, 2),
    ((1, 3, 6, 7), (3, 1, 2, 4), 1, "same", (2, 1), 3),
    ((2, 4, 5, 5), (4, 4, 3, 3), 1, "valid", 1, 1),
    ((3, 5, 5), (2, 3, 3, 3), 1, 1, 1, 1),  # unbatched (C, H, W)
    ((1, 2, 7, 7), (2, 2, 2, 2), 3, 0, 1, 1),  # stride larger than the kernel: gaps
    ((1, 2, 6, 6), (2, 2, 4, 4), 1, 0, 1, 1),  # stride 1, but too wasteful for the flat layout
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV2D_CASES)
def test_conv2d_matches_torch(devices, xs, ws, stride, padding, dilation, groups):
    torch = torch_or_skip()
    args = (stride, padding, dilation, groups)
    _against_torch(devices, lambda x, w, b: F.conv2d(x, w, b, *args),
                   lambda x, w, b: torch.nn.functional.conv2d(x, w, b, *args),
                   [rand(*xs, seed=1), rand(*ws, seed=2), rand(ws[0], seed=3)])


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", [
    ((2, 3, 9), (4, 3, 3), 2, 1, 1, 1),
    ((4, 7), (2, 2, 2), 1, "same", 3, 2),  # unbatched, even kernel
    ((1, 2, 6), (4, 1, 3), 1, "valid", 2, 2),
])
def test_conv1d_matches_torch(devices, xs, ws, stride, padding, dilation, groups):
    torch = torch_or_skip()
    args = (stride, padding, dilation, groups)
    _against_torch(devices, lambda x, w, b: F.conv1d(x, w, b, *args),
                   lambda x, w, b: torch.nn.functional.conv1d(x, w, b, *args),
                   [rand(*xs, seed=4), rand(*ws, seed=5), rand(ws[0], seed=6)])


def test_conv2d_without_bias_and_partial_gradients():
    torch = torch_or_skip()
    x, w = rand(2, 3, 6, 6, seed=1), rand(4, 3, 3, 3, seed=2)
    px, pw = pt.tensor(x), pt.tensor(w, requires_grad=True)  # a first layer: no input grad
    tw = torch.tensor(w, requires_grad=True)
    po, to = F.conv2d(px, pw, padding=1), torch.nn.functional.conv2d(torch.tensor(x), tw,
                                                                      padding=1)
    _close(to_numpy(po), to.detach().numpy())
    po.sum().backward()
    to.sum().backward()
    _close(to_numpy(pw.grad), tw.grad.numpy())
    assert px.grad is None


# --------------------------------------------------------------------- transposed ---
@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,groups,dilation", [
    ((2, 3, 4, 3), (3, 2, 3, 3), 1, 0, 0, 1, 1),
    ((1, 4, 3, 4), (4, 1, 3, 2), 2, 1, 1, 2, 1),
    ((2, 2, 3, 3), (2, 3, 2, 3), (2, 3), (0, 1), (1, 2), 1, (1, 2)),
    ((3, 4, 4), (3, 2, 3, 3), 2, 2, 0, 1, 2),  # unbatched; cropping more than the stride
])
def test_conv_transpose2d_matches_torch(devices, xs, ws, stride, padding, output_padding,
                                        groups, dilation):
    torch = torch_or_skip()
    args = (stride, padding, output_padding, groups, dilation)
    cout = ws[1] * groups
    _against_torch(devices, lambda x, w, b: F.conv_transpose2d(x, w, b, *args),
                   lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, *args),
                   [rand(*xs, seed=7), rand(*ws, seed=8), rand(cout, seed=9)])


@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,groups,dilation", [
    ((2, 3, 5), (3, 2, 3), 3, 1, 2, 1, 1),
    ((4, 4), (4, 1, 2), 1, 0, 1, 2, 2),  # unbatched; output_padding < dilation
])
def test_conv_transpose1d_matches_torch(devices, xs, ws, stride, padding, output_padding,
                                        groups, dilation):
    torch = torch_or_skip()
    args = (stride, padding, output_padding, groups, dilation)
    _against_torch(devices, lambda x, w, b: F.conv_transpose1d(x, w, b, *args),
                   lambda x, w, b: torch.nn.functional.conv_transpose1d(x, w, b, *args),
                   [rand(*xs, seed=1), rand(*ws, seed=2), None])


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight (no PyTorch needed)."""
    x, w, y = rand(2, 3, 7, 6, seed=1), rand(4, 3, 3, 2, seed=2), None
    px, pw = pt.tensor(x), pt.tensor(w)
    out = F.conv2d(px, pw, stride=2, padding=1, dilation=(1, 2))
    y = rand(*out.shape, seed=3)
    back = F.conv_transpose2d(pt.tensor(y), pw, stride=2, padding=1, output_padding=(0, 1),
                              dilation=(1, 2))
    assert tuple(back.shape) == x.shape
    _close(float((out.numpy() * y).sum()), float((x * back.numpy()).sum()), rtol=1e-12)


# ------------------------------------------------------------ against NumPy, no torch ---
def _np_conv2d(x, w, b, stride, pad):
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    kh, kw = w.shape[2:]
    oh = (xp.shape[2] - kh) // stride + 1
    ow = (xp.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += np.einsum("nchw,oc->nohw", win, w[:, :, i, j])
    return out + b[:, None, None]


def test_conv2d_against_numpy_and_fused_equals_default(devices):
    x, w, b = rand(2, 3, 8, 7, seed=1), rand(5, 3, 3, 3, seed=2), rand(5, seed=3)
    ref = _np_conv2d(x, w, b, 2, 1)
    results = []
    for dev in devices:
        px, pw, pb = (pt.tensor(a, device=dev, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(px, pw, pb, stride=2, padding=1)
        assert type(out.grad_fn).__name__ == "ConvBackward0"
        out.backward(pt.tensor(rand(*ref.shape, seed=4), device=dev))
        results.append([to_numpy(t) for t in (out, px.grad, pw.grad, pb.grad)])
    _close(results[0][0], ref, rtol=1e-12)
    for a, c in zip(*results):
        _close(a, c, rtol=1e-12)


def _in_threads(work, n=4):
    """Run ``work(i)`` in ``n`` threads at once and re-raise the first failure here (pytest
    does not see other threads' exceptions)."""
    import threading
    errors = []

    def run(i):
        try:
            work(i)
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_threads_computing_convolutions_at_once_get_their_own_results():
    """The cpu kernels reuse per-thread scratch arrays: concurrent calls stay independent."""
    w = pt.tensor(rand(4, 3, 3, 3, seed=2))
    inputs = [rand(2, 3, 6, 6, seed=10 + i) for i in range(4)]
    refs = [_np_conv2d(a, w.numpy(), np.zeros(4), 1, 1) for a in inputs]

    def work(i):
        for _ in range(20):
            x = pt.tensor(inputs[i], requires_grad=True)
            out = F.conv2d(x, w, padding=1)
            out.backward(pt.ones(*out.shape, dtype=pt.float64))
            _close(out.detach().numpy(), refs[i], rtol=1e-12)
    _in_threads(work)


def test_threads_with_different_shapes_and_pooling_get_their_own_results():
    """Each thread's scratch buffers grow to its own largest call: threads alternating
    between shapes (a batch that shrinks, as an epoch's last one) stay independent, through
    conv, conv_transpose and max_pool, forward and backward."""
    w = rand(4, 3, 3, 3, seed=2)
    shapes = [(5, 3, 9, 9), (1, 3, 5, 5), (3, 3, 7, 6), (2, 3, 8, 8)]
    inputs = [rand(*s, seed=20 + i) for i, s in enumerate(shapes)]

    def run(a):
        x = pt.tensor(a, requires_grad=True)
        pw = pt.tensor(w, requires_grad=True)
        h = F.max_pool2d(F.conv2d(x, pw, padding=1), 2, 1, 1)
        out = F.conv_transpose2d(h, pw, stride=2, padding=1)
        out.backward(pt.tensor(rand(*out.shape, seed=3)))
        return [to_numpy(t) for t in (out, x.grad, pw.grad)]
    refs = [run(a) for a in inputs]

    def work(i):
        for r in range(12):
            j = (i + r) % len(inputs)  # each thread cycles through every shape
            for a, b in zip(run(inputs[j]), refs[j]):
                np.testing.assert_array_equal(a, b)
    _in_threads(work)


def test_results_never_share_the_scratch_buffers():
    """Outputs and gradients outlive the scratch buffers the next call reuses, also where a
    contiguous view of one would do: one output channel or one sample (the product's layout
    is the result's), no padding (the col2im sums are the input gradient), and conv_transpose
    without cropping."""
    calls = [
        (lambda a, c: F.conv2d(a, c), (1, 3, 6, 6), (1, 3, 3, 3)),
        (lambda a, c: F.conv2d(a, c, stride=2), (2, 3, 7, 7), (1, 3, 3, 3)),
        (lambda a, c: F.conv2d(a, c, padding=1), (1, 2, 5, 5), (3, 2, 3, 3)),
        (lambda a, c: F.conv1d(a, c), (1, 2, 9), (1, 2, 3)),
        (lambda a, c: F.conv_transpose2d(a, c), (1, 1, 4, 4), (1, 2, 3, 3)),
        (lambda a, c: F.conv_transpose2d(a, c, stride=2), (2, 1, 3, 3), (1, 1, 2, 2)),
        (lambda a, c: F.max_pool2d(F.conv2d(a, c), 2), (1, 1, 6, 6), (1, 1, 1, 1)),
    ]
    kept = []
    for f, xs, ws in calls:
        x = pt.tensor(rand(*xs, seed=1), requires_grad=True)
        w = pt.tensor(rand(*ws, seed=2), requires_grad=True)
        out = f(x, w)
        out.backward(pt.tensor(rand(*out.shape, seed=3)))
        arrays = [out.detach().numpy(), x.grad.numpy(), w.grad.numpy()]
        kept.append((arrays, [a.copy() for a in arrays]))
        # the same call again, and a larger one, overwrite every scratch buffer
        for scale in (1, 3):
            xs2 = (xs[0] * scale,) + xs[1:]
            x2 = pt.tensor(rand(*xs2, seed=4), requires_grad=True)
            o2 = f(x2, w)
            o2.backward(pt.ones(*o2.shape, dtype=pt.float64))
    for arrays, copies in kept:
        for a, c in zip(arrays, copies):
            np.testing.assert_array_equal(a, c)


def test_a_smaller_batch_reuses_the_scratch_buffers():
    """The cpu kernels' per-thread buffers only grow: the short last batch of an epoch (or a
    smaller layer) takes views of them, so the next full batch allocates nothing and the heap
    is not trimmed and regrown once per epoch."""
    from polyten_cpu.kernels import conv as kconv
    pt.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.Flatten(), nn.Linear(256, 3))

    def step(n):
        x = pt.tensor(rand(n, 1, 8, 8, seed=n), dtype=pt.float32)
        model(x).sum().backward()
    step(16)
    held = {role: (id(a), a.nbytes) for role, a in kconv._scratch.arrays.items()}
    assert {"image", "cols", "grid", "index"} <= set(held)
    for n in (3, 16, 1, 16):
        step(n)
        assert {role: (id(a), a.nbytes) for role, a in kconv._scratch.arrays.items()} == held


def test_gradcheck_and_gradgradcheck_every_layer():
    x = pt.tensor(rand(1, 2, 5, 4, seed=1), requires_grad=True)
    x1 = pt.tensor(rand(1, 2, 6, seed=2), requires_grad=True)
    pt.manual_seed(0)
    layers = [
        (nn.Conv2d(2, 2, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2), x),
        (nn.Conv2d(2, 1, 3, padding="same", padding_mode="reflect"), x),
        (nn.Conv1d(2, 3, 2, stride=2, padding=1), x1),
        (nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, groups=2), x),
        (nn.ConvTranspose1d(2, 1, 3, stride=2, dilation=2), x1),
    ]
    for layer, inp in layers:
        layer.double()
        params = [inp] + list(layer.parameters())

        saved = dict(layer.named_parameters())

        def f(a, *ps, layer=layer, names=tuple(saved)):
            for name, p in zip(names, ps):
                layer._parameters[name] = p  # gradcheck's probes in place of the parameters
            return layer(a)
        try:
            assert gradcheck(f, tuple(params)), layer
            assert gradgradcheck(f, tuple(params)), layer
        finally:
            for name, p in saved.items():
                layer._parameters[name] = p


def test_gradgradcheck_on_the_polyten_op_defaults(devices):
    dev = devices[1]
    x = pt.tensor(rand(1, 2, 4, 4, seed=1), device=dev, requires_grad=True)
    w = pt.tensor(rand(2, 1, 2, 3, seed=2), device=dev, requires_grad=True)
    b = pt.tensor(rand(2, seed=3), device=dev, requires_grad=True)
    assert gradgradcheck(lambda a, c, d: F.conv2d(a, c, d, stride=2, padding=1, groups=2),
                         (x, w, b))
    assert gradgradcheck(lambda a, c: F.conv_transpose2d(a, c, stride=2, output_padding=1,
                                                         groups=2), (x, w))


# ------------------------------------------------------------------------- modules ---
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv_layers_match_torch_in_every_padding_mode(mode):
    torch = torch_or_skip()
    for cls, shape, kw in [("Conv2d", (2, 3, 6, 5), dict(padding=(1, 2), stride=(1, 2))),
                           ("Conv2d", (3, 6, 5), dict(padding="same", dilation=2)),
                           ("Conv1d", (2, 3, 7), dict(padding=2, groups=3))]:
        tm = getattr(torch.nn, cls)(3, 6, 3 if "groups" in kw else (3, 2)[:int(cls[-2])],
                                    padding_mode=mode, **kw).double()
        pm = getattr(nn, cls)(3, 6, 3 if "groups" in kw else (3, 2)[:int(cls[-2])],
                              padding_mode=mode, **kw).double()
        copy_weights(pm, tm)
        assert len(list(pm.parameters())) == len(list(tm.parameters())) == 2  # weight, bias
        module_step(pm, tm, rand(*shape, seed=5), seed=6, atol=ATOL)


def test_conv_transpose_layer_output_size_matches_torch():
    torch = torch_or_skip()
    tm = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    pm = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    copy_weights(pm, tm)
    x = rand(1, 2, 4, 4, seed=1)
    for size in [(7, 7), (8, 7), [1, 3, 8, 8]]:
        to = tm(torch.tensor(x), output_size=size)
        po = pm(pt.tensor(x), output_size=size)
        _close(po.detach().numpy(), to.detach().numpy())
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3.*valid sizes.*7 to 8"):
        pm(pt.tensor(x), output_size=(9, 9))


def test_default_init_statistics():
    pt.manual_seed(0)
    for m, fan_in in [(nn.Conv2d(16, 32, 3), 16 * 9), (nn.Conv1d(8, 64, 5), 8 * 5),
                      (nn.ConvTranspose2d(6, 40, 3, groups=2), 20 * 9),
                      (nn.Conv2d(8, 64, (3, 2), groups=4), 2 * 6)]:
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and the bias rule
        w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
        assert m.weight.dtype == pt.float32 and m.weight.requires_grad
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        # U(-bound, bound): variance bound^2 / 3
        assert abs(w.var() - bound ** 2 / 3) < 0.15 * bound ** 2 / 3, type(m).__name__
        assert np.abs(w).max() > 0.9 * bound
    assert nn.Conv2d(1, 2, 3, bias=False).bias is None
    assert nn.Conv2d(1, 2, 3, dtype=pt.float64).weight.dtype == pt.float64


def test_reprs_match_torch():
    torch = torch_or_skip()
    cases = [("Conv2d", (3, 8, 3), {}),
             ("Conv2d", (3, 8, (3, 5)), dict(stride=2, padding=(1, 2), dilation=2, bias=False,
                                             padding_mode="reflect")),
             ("Conv2d", (4, 8, 3), dict(padding="same", groups=2)),
             ("Conv2d", (4, 8, 3), dict(padding="valid")),
             ("Conv1d", (2, 3, 4), {}),
             ("ConvTranspose2d", (4, 8, 3), dict(stride=2, output_padding=1)),
             ("ConvTranspose1d", (4, 8, 3), dict(padding=1, groups=4, dilation=2))]
    for cls, args, kw in cases:
        assert repr(getattr(nn, cls)(*args, **kw)) == repr(getattr(torch.nn, cls)(*args, **kw))
    assert repr(nn.Conv2d(3, 8, 3)) == "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"
    for cls, args in [("Unfold", (3,)), ("Fold", ((4, 4), 2))]:
        assert repr(getattr(nn, cls)(*args)) == repr(getattr(torch.nn, cls)(*args))


# --------------------------------------------------------------------- dtypes / layout ---
def test_dtypes_layouts_and_empty_batches():
    x32 = pt.tensor(rand(2, 3, 6, 6, seed=1), dtype=pt.float32)
    w32 = pt.tensor(rand(4, 3, 3, 3, seed=2), dtype=pt.float32)
    ref = _np_conv2d(rand(2, 3, 6, 6, seed=1), rand(4, 3, 3, 3, seed=2), np.zeros(4), 1, 1)
    out = F.conv2d(x32, w32, padding=1)
    assert out.dtype == pt.float32
    _close(out.numpy(), ref, rtol=1e-4, atol=1e-4)
    half = F.conv2d(x32.to(pt.float16), w32.to(pt.float16), padding=1)
    assert half.dtype == pt.float16
    _close(half.numpy().astype(np.float64), ref, rtol=2e-2, atol=2e-2)
    assert F.conv2d(x32, w32.double()).dtype == pt.float64  # promoted
    xi = pt.tensor(np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4))
    wi = pt.tensor(np.ones((2, 3, 2, 2), dtype=np.int64))
    outi = F.conv2d(xi, wi)
    assert outi.dtype == pt.int64
    _close(outi.numpy(), _np_conv2d(xi.numpy().astype(float), wi.numpy().astype(float),
                                    np.zeros(2), 1, 0), rtol=0, atol=0)
    # a non-contiguous input (a transposed view) and an empty batch
    xt = pt.tensor(rand(2, 3, 6, 5, seed=3)).transpose(2, 3)
    _close(F.conv2d(xt, w32.double(), padding=1).numpy(),
           _np_conv2d(xt.numpy(), w32.double().numpy(), np.zeros(4), 1, 1))
    empty = F.conv2d(pt.zeros(0, 3, 6, 6), w32, pt.zeros(4), padding=1)
    assert tuple(empty.shape) == (0, 4, 6, 6)
    assert tuple(F.conv_transpose2d(pt.zeros(0, 4, 3, 3), w32, stride=2).shape) == (0, 3, 7, 7)


# --------------------------------------------------------------------------- errors ---
def test_conv_errors_name_the_call_the_shapes_and_the_fix():
    x, w = pt.ones(1, 4, 5, 5), pt.ones(2, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels but weight expects 3 "
                                         r"\(groups=1\): input \(1, 4, 5, 5\), weight "
                                         r"\(2, 3, 3, 3\).*give the input 3 channels"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-D \(unbatched: C, H, W\) or "
                                         r"4-D \(batched: N, C, H, W\) input, got shape "
                                         r"\(2, 1, 3, 5, 5\)"):
        F.conv2d(pt.ones(2, 1, 3, 5, 5), w)
    with pytest.raises(ValueError, match=r"conv1d: expected a 2-D.*got shape \(5,\)"):
        F.conv1d(pt.ones(5), pt.ones(1, 1, 2))
    with pytest.raises(ValueError, match=r"conv2d: weight must be 4-D, got shape \(2, 3, 3\)"):
        F.conv2d(pt.ones(1, 3, 5, 5), pt.ones(2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: the padded input \(4 x 4\) is smaller than "
                                         r"the \(dilated\) kernel \(5 x 5\).*pad the input"):
        F.conv2d(pt.ones(1, 3, 2, 2), pt.ones(2, 3, 3, 3), padding=1, dilation=2)
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the input's 3 channels"):
        F.conv2d(pt.ones(1, 3, 5, 5), pt.ones(2, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the weight's 3 output"):
        F.conv2d(pt.ones(1, 4, 5, 5), pt.ones(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: padding must be 'valid', 'same', an int or "
                                         r"a tuple of 2 ints, got 'full'"):
        F.conv2d(pt.ones(1, 3, 5, 5), w, padding="full")
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided "
                                         r"convolutions \(stride=\(2, 1\)\); use stride=1"):
        F.conv2d(pt.ones(1, 3, 5, 5), w, stride=(2, 1), padding="same")
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(2,\)"):
        F.conv2d(pt.ones(1, 3, 5, 5), w, pt.ones(3))
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a tuple of 2 ints"):
        F.conv2d(pt.ones(1, 3, 5, 5), w, stride=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive"):
        F.conv2d(pt.ones(1, 3, 5, 5), w, stride=0)
    with pytest.raises(TypeError, match=r"conv2d: bool tensors are not supported"):
        F.conv2d(pt.ones(1, 3, 5, 5, dtype=pt.bool), w.to(pt.bool))
    with pytest.raises(TypeError, match=r"conv2d: input must be a tensor"):
        F.conv2d([[1.0]], w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be smaller "
                                         r"than either stride or dilation"):
        F.conv_transpose2d(pt.ones(1, 2, 3, 3), pt.ones(2, 3, 3, 3), stride=2,
                           output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels but weight "
                                         r"expects 2"):
        F.conv_transpose2d(pt.ones(1, 3, 3, 3), pt.ones(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv_transpose1d: padding must be an int.*'same'"):
        F.conv_transpose1d(pt.ones(1, 2, 3), pt.ones(2, 3, 3), padding="same")
    with pytest.raises(ValueError, match=r"conv_transpose1d: the output size \(-2\) is too "
                                         r"small.*reduce the padding"):
        F.conv_transpose1d(pt.ones(1, 2, 1), pt.ones(2, 3, 2), padding=2)


def test_layer_errors_name_the_layer():
    m = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 8, kernel_size=\(3, 3\), stride="
                                         r"\(1, 1\)\): conv2d: input has 4 channels but weight "
                                         r"expects 3"):
        m(pt.ones(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(3\) must be divisible by "
                                         r"groups \(2\)"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv1d: out_channels \(3\) must be divisible"):
        nn.Conv1d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: invalid padding string 'full'"):
        nn.Conv2d(3, 8, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' is not supported for strided"):
        nn.Conv2d(3, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of"):
        nn.Conv2d(3, 8, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: only 'zeros' padding mode"):
        nn.ConvTranspose2d(3, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv2d: groups must be a positive integer"):
        nn.Conv2d(3, 9, 3, groups=0)


def test_conv_device_mismatch(cpu2):
    with pytest.raises(pt.DeviceMismatchError, match="conv2d"):
        F.conv2d(pt.ones(1, 3, 5, 5), pt.ones(2, 3, 3, 3, device=cpu2))


# --------------------------------------------------------------------- unfold / fold ---
def test_unfold_fold_match_torch(devices):
    torch = torch_or_skip()
    kw = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
    _against_torch(devices[:1], lambda x: F.unfold(x, **kw),
                   lambda x: torch.nn.functional.unfold(x, **kw), [rand(2, 3, 5, 6, seed=1)])
    _against_torch(devices[:1], lambda x: F.unfold(x, 2), lambda x: torch.nn.functional.unfold(
        x, 2), [rand(3, 4, 4, seed=2)])  # unbatched
    cols = torch.nn.functional.unfold(torch.zeros(2, 3, 5, 6), **kw)
    _against_torch(devices[:1], lambda c: F.fold(c, (5, 6), **kw),
                   lambda c: torch.nn.functional.fold(c, (5, 6), **kw),
                   [rand(*cols.shape, seed=3)])
    _against_torch(devices[:1], lambda c: F.fold(c, 4, 2, stride=2),
                   lambda c: torch.nn.functional.fold(c, 4, 2, stride=2),
                   [rand(8, 4, seed=4)])  # unbatched
    x = pt.tensor(rand(1, 2, 4, 4, seed=5), requires_grad=True)
    assert gradcheck(lambda a: F.unfold(a, 3, padding=1, stride=2), (x,))
    c = pt.tensor(rand(1, 8, 9, seed=6), requires_grad=True)
    assert gradgradcheck(lambda a: F.fold(a, 4, 2, stride=1), (c,))


def test_fold_errors():
    with pytest.raises(ValueError, match=r"fold: expected size of input's dimension 1 to be "
                                         r"divisible by the product of kernel_size"):
        F.fold(pt.ones(1, 7, 9), (4, 4), 2)
    with pytest.raises(ValueError, match=r"fold: expected the input's last dimension to match "
                                         r"the number of sliding blocks 3 \* 3 = 9"):
        F.fold(pt.ones(1, 8, 8), (4, 4), 2)
    with pytest.raises(ValueError, match=r"unfold: expected a 3-D \(C, H, W\) or 4-D"):
        F.unfold(pt.ones(4, 4), 2)
    with pytest.raises(ValueError, match=r"Unfold\(kernel_size=5.*unfold: the padded input "
                                         r"\(4 x 4\) is smaller than the \(dilated\) kernel"):
        nn.Unfold(5)(pt.ones(1, 1, 4, 4))


# ------------------------------------------------------------------------------ pad ---
@pytest.mark.parametrize("mode,pads,shape", [
    ("constant", (1, 2), (2, 3, 4)),
    ("constant", (2, -1, 0, 1, 1, 1), (2, 3, 4)),  # negative crops; a third dim padded too
    ("reflect", (2, 1, 1, 3), (1, 2, 4, 5)),
    ("reflect", (3, 2), (2, 5)),
    ("replicate", (2, 0, 1, 3), (2, 3, 4)),
    ("circular", (1, 3, 2, 0), (1, 2, 3, 4)),
])
def test_pad_matches_torch(mode, pads, shape):
    torch = torch_or_skip()
    value = 1.5 if mode == "constant" else None
    kw = {} if value is None else {"value": value}
    _against_torch(["cpu"], lambda x: F.pad(x, pads, mode, **kw),
                   lambda x: torch.nn.functional.pad(x, pads, mode, **kw),
                   [rand(*shape, seed=3)])


def test_pad_gradgradcheck_and_errors():
    x = pt.tensor(rand(1, 2, 3, 4, seed=1), requires_grad=True)
    for mode in ("reflect", "replicate", "circular"):
        assert gradgradcheck(lambda a, mode=mode: F.pad(a, (2, 1, 1, 2), mode), (x,))
    with pytest.raises(ValueError, match=r"pad: reflect padding must be smaller than the padded "
                                         r"dim: padding \(4, 0\) on dim 3 of size 4"):
        F.pad(x, (4, 0, 0, 0), "reflect")
    with pytest.raises(ValueError, match=r"pad: mode must be one of 'constant', 'reflect'"):
        F.pad(x, (1, 1), "mirror")
    with pytest.raises(TypeError, match=r"pad: pad must be a sequence of ints of even length"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(NotImplementedError, match=r"pad: replicate padding of 1 dims needs a "
                                                  r"2-D \(unbatched\) or 3-D \(batched\) input"):
        F.pad(x, (1, 1), "replicate")
    with pytest.raises(ValueError, match=r"pad: padding mode 'circular' doesn't take in value"):
        F.pad(x, (1, 1, 1, 1), "circular", 2.0)
    with pytest.raises(ValueError, match=r"pad: pad \(1, 1, 1, 1, 1, 1, 1, 1, 1, 1\) has 5 "
                                         r"\(left, right\) pairs but the input has only 4 dims"):
        F.pad(x, (1,) * 10)
