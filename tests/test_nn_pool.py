"""Pooling: max_pool1d/2d (the ``max_pool`` composite, fused and default paths), avg_pool1d/2d,
adaptive average / max pooling and their layers.

Values, indices and gradients against PyTorch (float64) over a grid of options, PyTorch's
tie / NaN / -inf rules for the indices, finite-difference gradchecks and gradgradchecks,
reprs and errors naming the call.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import polyten as pt
import polyten.nn as nn
import polyten.nn.functional as F
from polyten.autograd import gradcheck, gradgradcheck

from conftest import cpu_clone
from _reference import against_torch, close, copy_weights, rand, to_numpy, torch_or_skip


@pytest.fixture(scope="module")
def devices():
    """The cpu backend (fused max_pool) and a clone running the polyten-op default."""
    with cpu_clone("nofusedpool", drop=("max_pool", "conv", "conv_transpose")) as dev:
        yield ("cpu", dev)


# ------------------------------------------------------------------------- max_pool ---
@pytest.mark.parametrize("shape,k,s,p,d,ceil", [
    ((2, 3, 6, 6), 2, None, 0, 1, False),
    ((2, 3, 7, 8), 3, 2, 1, 1, False),
    ((1, 2, 7, 8), 3, 2, 1, 1, True),
    ((2, 2, 9, 7), (2, 3), (2, 1), (1, 0), (2, 1), True),
    ((1, 2, 5, 5), 2, 1, 0, 2, False),
    ((3, 7, 5), 2, 3, 1, 1, True),  # unbatched, stride > kernel
])
def test_max_pool2d_matches_torch(devices, shape, k, s, p, d, ceil):
    torch = torch_or_skip()
    against_torch(devices, lambda x: F.max_pool2d(x, k, s, p, d, ceil, True),
                  lambda x: torch.nn.functional.max_pool2d(x, k, s, p, d, ceil, True),
                  [rand(*shape, seed=1)], seed=7)


@pytest.mark.parametrize("shape,k,s,p,d,ceil", [
    ((2, 3, 9), 3, 2, 1, 1, True),
    ((3, 8), 2, None, 1, 2, False),  # unbatched
])
def test_max_pool1d_matches_torch(devices, shape, k, s, p, d, ceil):
    torch = torch_or_skip()
    against_torch(devices, lambda x: F.max_pool1d(x, k, s, p, d, ceil, True),
                  lambda x: torch.nn.functional.max_pool1d(x, k, s, p, d, ceil, True),
                  [rand(*shape, seed=2)], seed=7)


def test_max_pool_indices_follow_torch_on_ties_nan_and_minus_inf(devices):
    torch = torch_or_skip()
    inf, nan = np.inf, np.nan
    cases = [
        (np.array([[[[1.0, 1.0, 0.0], [1.0, 0.5, 1.0], [0.0, 1.0, 1.0]]]]), 2, 1, 0),  # ties
        (np.array([[[[nan, 1.0], [nan, 2.0]]]]), 2, 2, 0),  # the last NaN
        (np.full((1, 1, 3, 3), -inf), 2, 2, 1),  # nothing beats the padding
        (np.array([[[[-inf, 2.0, -inf], [-inf, -inf, 3.0]]]]), 2, 1, 1),
    ]
    for x, k, s, p in cases:
        tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
        for dev in devices:
            pv, pi = F.max_pool2d(pt.tensor(x, device=dev), k, s, p, return_indices=True)
            np.testing.assert_array_equal(to_numpy(pv), tv.numpy())
            np.testing.assert_array_equal(to_numpy(pi), ti.numpy())


def test_max_pool_on_wide_rows_follows_torch_on_ties_and_nan(devices):
    """Unit-stride windows over rows of 16 or more outputs take the fused kernel's other path
    (strided views of the input instead of a copy of the windows): the same values, indices
    and gradients, ties and NaNs included."""
    torch = torch_or_skip()
    x = np.round(rand(2, 3, 5, 40, seed=8) * 2)  # few distinct values: many ties
    against_torch(devices, lambda a: F.max_pool2d(a, 3, 1, 1, return_indices=True),
                  lambda a: torch.nn.functional.max_pool2d(a, 3, 1, 1, return_indices=True),
                  [x], seed=7)
    x[0, 1, 2, 5:9] = np.nan
    x[1, 0, :, 30] = -np.inf
    tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), (2, 3), 1, (1, 0),
                                            return_indices=True)
    for dev in devices:
        pv, pi = F.max_pool2d(pt.tensor(x, device=dev), (2, 3), 1, (1, 0), return_indices=True)
        np.testing.assert_array_equal(to_numpy(pv), tv.numpy())
        np.testing.assert_array_equal(to_numpy(pi), ti.numpy())


def test_max_pool_integers_and_float32(devices):
    torch = torch_or_skip()
    x = np.random.default_rng(3).integers(-50, 50, (2, 3, 5, 6))
    tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True,
                                            return_indices=True)
    for dev in devices:
        pv, pi = F.max_pool2d(pt.tensor(x, device=dev), 3, 2, 1, ceil_mode=True,
                              return_indices=True)
        assert pv.dtype == pt.int64
        np.testing.assert_array_equal(to_numpy(pv), tv.numpy())
        np.testing.assert_array_equal(to_numpy(pi), ti.numpy())
    x32 = pt.tensor(rand(2, 2, 4, 4, seed=4), dtype=pt.float32)
    out = F.max_pool2d(x32, 2)
    assert out.dtype == pt.float32
    close(out.numpy(), rand(2, 2, 4, 4, seed=4).reshape(2, 2, 2, 2, 2, 2).max(axis=(3, 5)),
           rtol=1e-7)
    assert tuple(F.max_pool2d(pt.zeros(0, 3, 4, 4), 2).shape) == (0, 3, 2, 2)


def test_max_pool_fused_and_default_agree_and_record_one_node(devices):
    x = rand(2, 3, 7, 7, seed=5)
    res = []
    for dev in devices:
        px = pt.tensor(x, device=dev, requires_grad=True)
        v, i = F.max_pool2d(px, 3, 2, 1, return_indices=True)
        assert type(v.grad_fn).__name__ == "MaxPoolBackward0"
        v.backward(pt.tensor(rand(*v.shape, seed=6), device=dev))
        res.append((to_numpy(v), to_numpy(i), to_numpy(px.grad)))
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_max_pool_after_other_kernels_reused_the_scratch_buffers(devices):
    """The fused kernels share per-thread buffers that keep the largest size seen: a padded
    max_pool after a convolution (which leaves its padded input and values there) and after
    a larger pooling, and pooling whose batch shrinks, still match PyTorch."""
    torch = torch_or_skip()
    w = rand(3, 3, 3, 3, seed=2)
    for shape, k, s, p in [((4, 3, 9, 9), 3, 2, 1), ((2, 3, 6, 7), 2, 1, 1),
                           ((1, 3, 5, 5), 3, 1, 1), ((3, 3, 8, 8), 2, 2, 0)]:
        F.conv2d(pt.tensor(rand(5, 3, 10, 10, seed=3)), pt.tensor(w), padding=2)
        against_torch(devices, lambda x: F.max_pool2d(x, k, s, p, return_indices=True),
                      lambda x: torch.nn.functional.max_pool2d(x, k, s, p,
                                                               return_indices=True),
                      [rand(*shape, seed=4) * 10 - 5], seed=7)


def test_max_pool_gradcheck_and_gradgradcheck(devices):
    # distinct values: no ties within a window, so the maximum is differentiable
    base = np.random.default_rng(0).permutation(50).reshape(1, 2, 5, 5) / 10.0
    for dev in devices:
        x = pt.tensor(base, device=dev, requires_grad=True)
        for f in (lambda a: F.max_pool2d(a, 3, 2, 1),  # overlapping windows
                  lambda a: F.max_pool2d(a, 2, ceil_mode=True),
                  lambda a: F.max_pool1d(a.reshape(1, 2, 25), 4, 3, 2, dilation=2)):
            assert gradcheck(f, (x,))
            assert gradgradcheck(f, (x,))


# ------------------------------------------------------------------------- avg_pool ---
@pytest.mark.parametrize("shape,k,s,p,ceil,cip,div", [
    ((2, 3, 6, 6), 2, None, 0, False, True, None),
    ((2, 3, 7, 8), 3, 2, 1, False, False, None),
    ((1, 2, 7, 8), 3, 2, 1, True, True, None),
    ((2, 2, 8, 7), (2, 3), (3, 2), (1, 1), True, False, None),
    ((3, 7, 5), 3, 2, 1, False, True, 5),  # unbatched, divisor_override
])
def test_avg_pool2d_matches_torch(shape, k, s, p, ceil, cip, div):
    torch = torch_or_skip()
    against_torch(["cpu"], lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div),
                  lambda x: torch.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div),
                  [rand(*shape, seed=1)], seed=7)


@pytest.mark.parametrize("shape,k,s,p,ceil,cip", [
    ((2, 3, 9), 3, 2, 1, True, False),
    ((3, 8), 2, None, 1, False, True),
])
def test_avg_pool1d_matches_torch(shape, k, s, p, ceil, cip):
    torch = torch_or_skip()
    against_torch(["cpu"], lambda x: F.avg_pool1d(x, k, s, p, ceil, cip),
                  lambda x: torch.nn.functional.avg_pool1d(x, k, s, p, ceil, cip),
                  [rand(*shape, seed=2)], seed=7)


def test_avg_pool_against_numpy_and_gradgradcheck():
    x = rand(2, 3, 6, 4, seed=3)
    out = F.avg_pool2d(pt.tensor(x), 2)
    close(out.numpy(), x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-12)
    px = pt.tensor(rand(1, 2, 5, 5, seed=4), requires_grad=True)
    for f in (lambda a: F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False),
              lambda a: F.avg_pool1d(a.reshape(1, 2, 25), 4, 3, 2)):
        assert gradcheck(f, (px,))
        assert gradgradcheck(f, (px,))


# ------------------------------------------------------------------------- adaptive ---
@pytest.mark.parametrize("shape,out", [
    ((2, 3, 8, 6), (4, 3)),  # divisible
    ((2, 3, 7, 9), (3, 4)),  # overlapping windows of different lengths
    ((3, 5, 7), (None, 3)),  # unbatched, None keeps the height
    ((1, 2, 4, 5), 6),  # larger than the input
])
def test_adaptive_pool2d_matches_torch(shape, out):
    torch = torch_or_skip()
    against_torch(["cpu"], lambda x: F.adaptive_avg_pool2d(x, out),
                  lambda x: torch.nn.functional.adaptive_avg_pool2d(x, out),
                  [rand(*shape, seed=1)], seed=7)
    against_torch(["cpu"], lambda x: F.adaptive_max_pool2d(x, out, True),
                  lambda x: torch.nn.functional.adaptive_max_pool2d(x, out, True),
                  [rand(*shape, seed=2)], seed=7)


@pytest.mark.parametrize("shape,out", [((2, 3, 10), 4), ((3, 7), 3), ((2, 2, 6), 3)])
def test_adaptive_pool1d_matches_torch(shape, out):
    torch = torch_or_skip()
    against_torch(["cpu"], lambda x: F.adaptive_avg_pool1d(x, out),
                  lambda x: torch.nn.functional.adaptive_avg_pool1d(x, out),
                  [rand(*shape, seed=3)], seed=7)
    against_torch(["cpu"], lambda x: F.adaptive_max_pool1d(x, out, True),
                  lambda x: torch.nn.functional.adaptive_max_pool1d(x, out, True),
                  [rand(*shape, seed=4)], seed=7)


def test_adaptive_gradcheck_and_gradgradcheck():
    x = pt.tensor(np.random.default_rng(0).permutation(35).reshape(1, 1, 5, 7) / 10.0,
                  requires_grad=True)
    for f in (lambda a: F.adaptive_avg_pool2d(a, (3, 4)),
              lambda a: F.adaptive_max_pool2d(a, (2, 3)),
              lambda a: F.adaptive_max_pool2d(a, (5, 7))):
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))


# ------------------------------------------------------------------------- modules ---
def test_pool_layers_and_reprs_match_torch():
    torch = torch_or_skip()
    cases = [("MaxPool2d", (2,), {}), ("MaxPool2d", (3, 2, 1), dict(ceil_mode=True)),
             ("MaxPool1d", (3, 2), {}), ("AvgPool2d", (2,), {}),
             ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
             ("AvgPool1d", (3,), {}), ("AdaptiveAvgPool2d", ((2, 3),), {}),
             ("AdaptiveAvgPool1d", (4,), {}), ("AdaptiveMaxPool2d", (2,), {}),
             ("AdaptiveMaxPool1d", (3,), {})]
    for cls, args, kw in cases:
        tm, pm = getattr(torch.nn, cls)(*args, **kw), getattr(nn, cls)(*args, **kw)
        assert repr(pm) == repr(tm)
        shape = (2, 3, 9) if cls.endswith("1d") else (2, 3, 8, 9)
        x = rand(*shape, seed=5)
        close(pm(pt.tensor(x)).numpy(), tm(torch.tensor(x)).numpy())
    pv, pi = nn.MaxPool2d(2, return_indices=True)(pt.tensor(rand(1, 1, 4, 4, seed=6)))
    assert pi.dtype == pt.int64 and tuple(pi.shape) == (1, 1, 2, 2)
    pv, pi = nn.AdaptiveMaxPool2d(3, return_indices=True)(pt.tensor(rand(1, 1, 4, 5)))
    assert tuple(pi.shape) == (1, 1, 3, 3)


def test_small_cnn_matches_torch_end_to_end():
    """conv -> relu -> max_pool -> conv -> adaptive avg -> linear: outputs and every
    parameter gradient equal PyTorch's."""
    torch = torch_or_skip()

    def build(m):
        return m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(4, 6, 3, padding=1), m.ReLU(), m.AdaptiveAvgPool2d(1),
                            m.Flatten(), m.Linear(6, 3))
    tm, pm = build(torch.nn).double(), build(nn).double()
    copy_weights(pm, tm)
    x = rand(5, 1, 8, 8, seed=7)
    to, po = tm(torch.tensor(x)), pm(pt.tensor(x))
    close(po.detach().numpy(), to.detach().numpy())
    to.sum().backward()
    po.sum().backward()
    for (name, p), (_, t) in zip(pm.named_parameters(), tm.named_parameters()):
        close(p.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-10)


# --------------------------------------------------------------------------- errors ---
def test_pool_errors_name_the_call():
    x = pt.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"max_pool2d: pad should be at most half of effective "
                                         r"kernel size, but got padding=\(2, 2\)"):
        F.max_pool2d(x, 3, 1, 2)
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 3-D \(unbatched: C, H, W\) "
                                         r"or 4-D \(batched: N, C, H, W\) input, got shape "
                                         r"\(4, 4\)"):
        F.max_pool2d(pt.ones(4, 4), 2)
    with pytest.raises(ValueError, match=r"max_pool2d: input \(1, 1, 4, 4\) is too small for "
                                         r"kernel_size=\(5, 5\).*output size would be \(0 x 0\)"):
        F.max_pool2d(x, 5)
    with pytest.raises(TypeError, match=r"max_pool2d: expected a real tensor, got bool"):
        F.max_pool2d(x.to(pt.bool), 2)
    with pytest.raises(TypeError, match=r"avg_pool2d: expected a floating-point tensor, got "
                                        r"int64"):
        F.avg_pool2d(pt.ones(1, 1, 4, 4, dtype=pt.int64), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: pad should be at most half of kernel "
                                         r"size"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be a non-zero "
                                         r"int"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match=r"max_pool1d: kernel_size must be an int or a tuple "
                                        r"of 1 ints"):
        F.max_pool1d(pt.ones(1, 4), (2, 2))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must hold positive "
                                         r"ints"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(TypeError, match=r"adaptive_max_pool2d: output_size must be an int or a "
                                        r"tuple of 2 ints"):
        F.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=5, stride=5, padding=0, "
                                         r"dilation=1, ceil_mode=False\): max_pool2d: input"):
        nn.MaxPool2d(5)(x)


_EMPTY_CASES = [
    ("max_pool2d", lambda F, x: F.max_pool2d(x, 2, 1, 1)),
    ("avg_pool2d", lambda F, x: F.avg_pool2d(x, 1)),
    ("lp_pool2d", lambda F, x: F.lp_pool2d(x, 2.0, 1)),
    ("adaptive_max_pool2d", lambda F, x: F.adaptive_max_pool2d(x, 1)),
    ("max_unpool2d", lambda F, x: F.max_unpool2d(x, x.long(), 1)),
]


@pytest.mark.parametrize("shape", [(2, 0, 3, 3), (2, 2, 0, 3), (1, 1, 1, 0), (0, 2, 3, 3)],
                         ids=str)
@pytest.mark.parametrize("name,call", _EMPTY_CASES, ids=[n for n, _ in _EMPTY_CASES])
def test_pooling_takes_an_empty_batch_and_refuses_other_empty_dims_as_torch(name, call, shape):
    """As PyTorch: only the batch dim may be empty (an empty input's output is empty, a
    max_unpool of an empty batch used to fail in a reshape); an empty channel or spatial dim
    is refused naming the call and the shape (a padded max_pool2d over (1, 1, 1, 0) returned
    -inf on cpu and failed inside the cuda kernels' index set-up)."""
    torch = torch_or_skip()
    want = None
    try:
        want = call(torch.nn.functional, torch.zeros(shape))
    except RuntimeError:
        pass
    if want is None:
        with pytest.raises(ValueError, match=rf"^{name}: input of shape "
                                             rf"{re.escape(str(shape))} has an empty "
                                             rf"(channel|spatial) dim; only the batch dim"):
            call(F, pt.zeros(shape))
    else:
        got = call(F, pt.zeros(shape))
        assert tuple(got.shape) == tuple(want.shape) and got.numel() == 0


def test_max_pool_windows_wholly_outside_the_input_follow_torch():
    """With padding and a dilation past the input's end a window can hold no input element:
    -inf and an index past the plane, as torch; such an output depends on no input and
    passes no gradient (polyten's backward added it into the next plane's first elements or
    failed to reshape; torch's adds it into the next plane too).  The gradient's reference is
    the scatter of the other outputs' gradients to torch's indices."""
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    cases = [((2, 3, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3), "1d"),
             ((1, 2, 2, 5), dict(kernel_size=2, stride=1, padding=1, dilation=3), "2d"),
             ((1, 1, 3, 2, 4), dict(kernel_size=2, stride=1, padding=1, dilation=3), "3d")]
    for shape, kw, d in cases:
        a = np.random.default_rng(3).standard_normal(shape)
        x = pt.tensor(a, requires_grad=True)
        v, i = getattr(F, f"max_pool{d}")(x, return_indices=True, **kw)
        tx = torch.tensor(a, requires_grad=True)
        tv, ti = getattr(tF, f"max_pool{d}")(tx, return_indices=True, **kw)
        assert np.isneginf(tv.detach().numpy()).any(), d  # the case is reached
        np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        w = np.random.default_rng(4).standard_normal(tuple(v.shape))
        (v * pt.tensor(w)).sum().backward()
        planes = int(np.prod(shape[:2]))
        size = int(np.prod(shape[2:]))
        ref = np.zeros((planes, size))
        for p, (row, ws) in enumerate(zip(ti.numpy().reshape(planes, -1),
                                          w.reshape(planes, -1))):
            for j, g in zip(row, ws):
                if j < size:
                    ref[p, j] += g
        np.testing.assert_allclose(x.grad.numpy(), ref.reshape(shape), rtol=1e-12)
