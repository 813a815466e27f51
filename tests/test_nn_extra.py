"""affine_grid / grid_sample, channel_shuffle, fractional and adaptive max pooling with
indices, conv/linear + batch-norm fusion, skip_init, StackDataset, AdaptiveLogSoftmaxWithLoss
and torch's top-level pooling / padding / embedding_bag aliases, against PyTorch."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F
from polyten.autograd import gradcheck


def _P(t, requires_grad=False):
    """A polyten copy of a torch tensor."""
    return pt.tensor(t.detach().numpy(), requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy()


def _close(a, b, atol=1e-12, rtol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), atol=atol, rtol=rtol)


# ------------------------------------------------------------------------- grid_sample ---
_GRID_CASES = ([(2, md, pm, ac) for md in ("bilinear", "nearest", "bicubic")
                for pm in ("zeros", "border", "reflection") for ac in (True, False)] +
               [(3, md, pm, ac) for md in ("bilinear", "nearest")
                for pm in ("zeros", "border", "reflection") for ac in (True, False)])


@pytest.mark.parametrize("m,mode,padding_mode,align", _GRID_CASES)
def test_grid_sample_matches_torch_values_and_both_gradients(m, mode, padding_mode, align):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(_GRID_CASES.index((m, mode, padding_mode, align)))
    spatial, out = ((4, 5), (3, 6)) if m == 2 else ((3, 4, 5), (2, 3, 3))
    x = torch.randn((2, 3) + spatial, dtype=torch.float64, generator=gen)
    # positions well outside [-1, 1]: several reflections, clipping and zero padding
    g = torch.rand((2,) + out + (m,), dtype=torch.float64, generator=gen) * 5 - 2.5
    xt, gt = x.clone().requires_grad_(), g.clone().requires_grad_()
    ref = torch.nn.functional.grid_sample(xt, gt, mode=mode, padding_mode=padding_mode,
                                          align_corners=align)
    w = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (ref * w).sum().backward()
    xp, gp = _P(x, True), _P(g, True)
    got = F.grid_sample(xp, gp, mode=mode, padding_mode=padding_mode, align_corners=align)
    assert tuple(got.shape) == tuple(ref.shape)
    (got * _P(w)).sum().backward()
    _close(got, ref)
    _close(xp.grad, xt.grad)
    _close(gp.grad, gt.grad, atol=1e-11)


@pytest.mark.parametrize("mode,padding_mode,align", [
    ("bilinear", "zeros", False), ("bilinear", "reflection", True),
    ("bilinear", "border", False), ("bicubic", "zeros", True),
    ("bicubic", "reflection", False), ("nearest", "border", True)])
def test_grid_sample_gradcheck_float64(mode, padding_mode, align):
    pt.manual_seed(3)
    x = pt.randn(1, 2, 3, 4, dtype=pt.float64, requires_grad=True)
    g = (pt.rand(1, 2, 3, 2, dtype=pt.float64) * 2.4 - 1.2).requires_grad_()
    assert gradcheck(lambda a, b: F.grid_sample(a, b, mode, padding_mode, align), (x, g))


def test_grid_sample_3d_gradcheck_float64():
    pt.manual_seed(4)
    x = pt.randn(1, 2, 2, 3, 3, dtype=pt.float64, requires_grad=True)
    g = (pt.rand(1, 2, 2, 1, 3, dtype=pt.float64) * 2.4 - 1.2).requires_grad_()
    assert gradcheck(lambda a, b: F.grid_sample(a, b, "bilinear", "reflection", False), (x, g))


def test_grid_sample_float32_and_non_finite_positions_match_torch():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=gen)
    g = torch.rand(2, 6, 7, 2, generator=gen) * 8 - 4
    g[0, 0, 0] = float("nan")
    g[0, 0, 1, 0] = float("inf")
    g[0, 0, 2, 1] = -float("inf")
    for md, pm, ac in itertools.product(("bilinear", "nearest", "bicubic"),
                                        ("zeros", "border", "reflection"), (True, False)):
        ref = torch.nn.functional.grid_sample(x, g, md, pm, ac).numpy()
        got = F.grid_sample(_P(x), _P(g), md, pm, ac).numpy()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, atol=1e-5, equal_nan=True)


def test_grid_sample_nearest_grid_gradient_is_zeros_not_absent():
    x = pt.randn(1, 1, 3, 3, dtype=pt.float64)
    g = (pt.rand(1, 2, 2, 2, dtype=pt.float64) - 0.5).requires_grad_()
    F.grid_sample(x, g, "nearest", align_corners=False).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), np.zeros((1, 2, 2, 2)))


def test_grid_sample_empty_batch_channels_and_output():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 4, 5)
    g = torch.rand(2, 6, 7, 2) * 2 - 1
    for xs, gs in ((x[:0], g[:0]), (x[:, :0], g), (x, g[:, :0])):
        ref = torch.nn.functional.grid_sample(xs, gs, align_corners=False)
        assert tuple(F.grid_sample(_P(xs), _P(gs), align_corners=False).shape) == \
            tuple(ref.shape)


def test_align_corners_none_warns_and_means_false():
    x = pt.randn(1, 2, 3, 4)
    theta = pt.randn(1, 2, 3)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        grid = F.affine_grid(theta, (1, 2, 5, 4))
    np.testing.assert_array_equal(grid.numpy(),
                                  F.affine_grid(theta, (1, 2, 5, 4), False).numpy())
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        out = F.grid_sample(x, grid)
    np.testing.assert_array_equal(out.numpy(), F.grid_sample(x, grid, align_corners=False)
                                  .numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.grid_sample(x, grid, align_corners=True)


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (2, 3, 5, 4, 3), (2, 1, 1, 1, 2)])
@pytest.mark.parametrize("align", [True, False])
def test_affine_grid_matches_torch_with_theta_gradient(size, align):
    torch = pytest.importorskip("torch")
    m = len(size) - 2
    theta = torch.randn(2, m, m + 1, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's unit-size warning, checked below
        ref = torch.nn.functional.affine_grid(theta, size, align)
        tp = _P(theta, True)
        got = F.affine_grid(tp, size, align)
    w = torch.randn(ref.shape, dtype=torch.float64)
    (ref * w).sum().backward()
    (got * _P(w)).sum().backward()
    assert tuple(got.shape) == tuple(ref.shape)
    _close(got, ref)
    _close(tp.grad, theta.grad)


def test_affine_grid_gradcheck_and_unit_size_warning():
    theta = pt.randn(2, 2, 3, dtype=pt.float64, requires_grad=True)
    assert gradcheck(lambda t: F.affine_grid(t, (2, 1, 3, 4), False), (theta,))
    with pytest.warns(UserWarning, match="unit-size grids"):
        F.affine_grid(theta, (2, 1, 1, 4), True)


def test_affine_grid_then_grid_sample_identity():
    x = pt.randn(2, 3, 5, 6, dtype=pt.float64)
    eye = pt.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=pt.float64).expand(2, 2, 3)
    for align in (True, False):
        grid = F.affine_grid(eye, (2, 3, 5, 6), align)
        np.testing.assert_allclose(F.grid_sample(x, grid, align_corners=align).numpy(),
                                   x.numpy(), atol=1e-12)


def test_grid_errors_name_the_call():
    x = pt.randn(2, 3, 4, 5)
    g = pt.rand(2, 6, 7, 2)
    with pytest.raises(ValueError, match="grid_sample: expected mode"):
        F.grid_sample(x, g, mode="area", align_corners=False)
    with pytest.raises(ValueError, match="grid_sample: expected padding_mode"):
        F.grid_sample(x, g, padding_mode="circular", align_corners=False)
    with pytest.raises(ValueError, match="grid_sample: bicubic .* 4-D"):
        F.grid_sample(x.unsqueeze(2), pt.rand(2, 1, 6, 7, 3), mode="bicubic",
                      align_corners=False)
    with pytest.raises(ValueError, match="same batch size"):
        F.grid_sample(x, g[:1], align_corners=False)
    with pytest.raises(ValueError, match="size 2 in its last dim"):
        F.grid_sample(x, g[..., :1], align_corners=False)
    with pytest.raises(ValueError, match="4-D .* or 5-D"):
        F.grid_sample(x[0], g[0], align_corners=False)
    with pytest.raises(TypeError, match="same floating-point dtype"):
        F.grid_sample(x, g.double(), align_corners=False)
    with pytest.raises(TypeError, match="same floating-point dtype"):
        F.grid_sample(x.int(), g.int(), align_corners=False)
    with pytest.raises(ValueError, match="non-empty spatial dims"):
        F.grid_sample(x[:, :, :0], g, align_corners=False)
    with pytest.raises(TypeError, match="grid_sample: grid must be a tensor"):
        F.grid_sample(x, [[0.0, 0.0]], align_corners=False)
    theta = pt.randn(2, 2, 3)
    with pytest.raises(ValueError, match="affine_grid: expected theta to have a floating"):
        F.affine_grid(theta.int(), (2, 1, 4, 4), False)
    with pytest.raises(NotImplementedError, match="affine_grid: only 4-D and 5-D"):
        F.affine_grid(theta, (2, 1, 4), False)
    with pytest.raises(ValueError, match=r"affine_grid: .*\(N, 2, 3\)"):
        F.affine_grid(pt.randn(2, 3, 4), (2, 1, 4, 4), False)
    with pytest.raises(ValueError, match="affine_grid: expected a positive output size"):
        F.affine_grid(theta, (2, 1, 0, 4), False)
    with pytest.raises(ValueError, match="affine_grid: theta holds 2 matrices"):
        F.affine_grid(theta, (3, 1, 4, 4), False)


# --------------------------------------------------------------------- channel_shuffle ---
def test_channel_shuffle_matches_torch():
    torch = pytest.importorskip("torch")
    for shape, groups in (((2, 6, 3), 3), ((2, 6, 3, 4), 2), ((1, 12, 2, 2, 2), 4),
                          ((0, 6, 3), 3), ((2, 0, 3), 3), ((2, 6, 3), 6)):
        x = torch.randn(shape, dtype=torch.float64)
        ref = torch.nn.functional.channel_shuffle(x, groups)
        np.testing.assert_array_equal(F.channel_shuffle(_P(x), groups).numpy(), ref.numpy())
        np.testing.assert_array_equal(pt.channel_shuffle(_P(x), groups).numpy(), ref.numpy())
        np.testing.assert_array_equal(pt.native_channel_shuffle(_P(x), groups).numpy(),
                                      torch.native_channel_shuffle(x, groups).numpy())
    xi = torch.arange(24).reshape(2, 6, 2)
    np.testing.assert_array_equal(F.channel_shuffle(_P(xi), 2).numpy(),
                                  torch.nn.functional.channel_shuffle(xi, 2).numpy())
    layer = pt.nn.ChannelShuffle(3)
    assert repr(layer) == repr(torch.nn.ChannelShuffle(3)) == "ChannelShuffle(groups=3)"
    x = pt.randn(2, 6, 4, dtype=pt.float64, requires_grad=True)
    np.testing.assert_array_equal(layer(x).detach().numpy(),
                                  torch.nn.ChannelShuffle(3)(torch.tensor(x.detach().numpy()))
                                  .numpy())
    # a permutation: the gradient is the inverse permutation of the upstream one
    assert gradcheck(lambda t: F.channel_shuffle(t, 3), (x,))


def test_channel_shuffle_errors():
    x = pt.randn(2, 6, 3)
    with pytest.raises(ValueError, match="channel_shuffle: .*divisible by groups.*6 channels"):
        F.channel_shuffle(x, 4)
    with pytest.raises(ValueError, match="channel_shuffle: .*positive"):
        F.channel_shuffle(x, 0)
    with pytest.raises(ValueError, match="more than 2 dims"):
        F.channel_shuffle(x[0], 2)
    with pytest.raises(TypeError, match="groups must be an int"):
        F.channel_shuffle(x, 2.0)
    with pytest.raises(ValueError, match=r"ChannelShuffle\(groups=4\)"):
        pt.nn.ChannelShuffle(4)(x)


# ---------------------------------------------------------------- adaptive max pooling ---
@pytest.mark.parametrize("m,shape,out", [(1, (2, 3, 10), 4), (1, (3, 7), 3),
                                         (2, (2, 3, 7, 9), (3, 4)), (3, (1, 2, 5, 6, 7), 2)])
def test_adaptive_max_pool_with_indices_matches_torch(m, shape, out):
    torch = pytest.importorskip("torch")
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    name = f"adaptive_max_pool{m}d_with_indices"
    ref = getattr(torch.nn.functional, name)(x, out)
    xp = _P(x, True)
    got = getattr(F, name)(xp, out)
    assert isinstance(got, tuple) and len(got) == 2
    _close(got[0], ref[0])
    np.testing.assert_array_equal(got[1].numpy(), ref[1].numpy())
    ref[0].sum().backward()
    got[0].sum().backward()
    _close(xp.grad, x.grad)


# ---------------------------------------------------------------- fractional max pool ---
@pytest.mark.parametrize("m,shape,kernel,out", [
    (2, (4, 8, 10, 9), (3, 2), (5, 4)), (2, (2, 3, 11, 13), 2, (7, 12)),
    (2, (1, 2, 7, 7), (3, 3), (1, 5)), (2, (3, 10, 9), 3, (5, 4)),
    (3, (2, 2, 7, 8, 9), (2, 3, 2), (4, 5, 6)), (3, (2, 5, 6, 7), 2, (3, 4, 5))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fractional_max_pool_matches_torch_given_samples(m, shape, kernel, out, dtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(shape, dtype=tdt, generator=gen, requires_grad=True)
    n = shape[0] if len(shape) == m + 2 else 1
    samples = torch.rand(n, shape[-m - 1], m, dtype=tdt, generator=gen)
    name = f"fractional_max_pool{m}d"
    values, indices = getattr(torch.nn.functional, name)(
        x, kernel, output_size=out, return_indices=True, _random_samples=samples)
    w = torch.randn(values.shape, dtype=tdt, generator=gen)
    (values * w).sum().backward()
    xp = _P(x, True)
    got, idx = getattr(F, name)(xp, kernel, output_size=out, return_indices=True,
                                _random_samples=_P(samples))
    (got * _P(w)).sum().backward()
    np.testing.assert_array_equal(got.detach().numpy(), _np(values))
    np.testing.assert_array_equal(idx.numpy(), indices.numpy())
    np.testing.assert_array_equal(xp.grad.numpy(), x.grad.numpy())
    vals2, idx2 = getattr(F, name + "_with_indices")(xp, kernel, out,
                                                     _random_samples=_P(samples))
    np.testing.assert_array_equal(idx2.numpy(), indices.numpy())


def test_fractional_max_pool_output_ratio_and_modules_match_torch():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64)
    samples = torch.rand(2, 3, 2, dtype=torch.float64)
    ref = torch.nn.FractionalMaxPool2d(3, output_ratio=0.5, return_indices=True,
                                       _random_samples=samples)
    layer = pt.nn.FractionalMaxPool2d(3, output_ratio=0.5, return_indices=True,
                                      _random_samples=_P(samples))
    assert "_random_samples" in dict(layer.named_buffers())
    assert layer.kernel_size == (3, 3) and layer.output_ratio == (0.5, 0.5)
    (v, i), (rv, ri) = layer(_P(x)), ref(x)
    np.testing.assert_array_equal(v.numpy(), rv.numpy())
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    got = F.fractional_max_pool2d(_P(x), 3, output_ratio=(0.5, 0.5),
                                  _random_samples=_P(samples))
    np.testing.assert_array_equal(got.numpy(), rv.numpy())
    x3 = torch.randn(1, 2, 6, 7, 8, dtype=torch.float64)
    s3 = torch.rand(1, 2, 3, dtype=torch.float64)
    ref3 = torch.nn.FractionalMaxPool3d(2, output_size=(3, 4, 5), _random_samples=s3)(x3)
    got3 = pt.nn.FractionalMaxPool3d(2, output_size=(3, 4, 5), _random_samples=_P(s3))(_P(x3))
    np.testing.assert_array_equal(got3.numpy(), ref3.numpy())


def test_fractional_max_pool_draws_from_polyten_generator():
    x = pt.randn(2, 3, 12, 11)
    pt.manual_seed(5)
    a, ia = F.fractional_max_pool2d(x, 2, output_size=(6, 5), return_indices=True)
    pt.manual_seed(5)
    b = F.fractional_max_pool2d(x, 2, output_size=(6, 5))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # each value is the maximum of its 2 x 2 window at the returned position
    flat = x.reshape(2, 3, -1).numpy()
    idx = ia.reshape(2, 3, -1).numpy()
    np.testing.assert_array_equal(np.take_along_axis(flat, idx, 2), a.reshape(2, 3, -1).numpy())
    # the samples are polyten.rand(N, C, 2) in the input's dtype, drawn from the global
    # generator
    pt.manual_seed(5)
    samples = pt.rand(2, 3, 2)
    c = F.fractional_max_pool2d(x, 2, output_size=(6, 5), _random_samples=samples)
    np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_fractional_max_pool_errors():
    x = pt.randn(2, 3, 10, 9)
    with pytest.raises(ValueError, match="either an output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 3)
    with pytest.raises(ValueError, match="pool height 3 too large relative to input height 10"):
        F.fractional_max_pool2d(x, 3, output_size=9)
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        F.fractional_max_pool2d(x, 3, output_size=(5, 4), _random_samples=pt.rand(2, 3, 3))
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        F.fractional_max_pool2d(x, 3, output_size=(5, 4), _random_samples=pt.rand(1, 3, 2))
    with pytest.raises(TypeError, match="_random_samples must have the input's dtype"):
        F.fractional_max_pool2d(x, 3, output_size=(5, 4),
                                _random_samples=pt.rand(2, 3, 2, dtype=pt.float64))
    with pytest.raises(TypeError, match="floating-point input"):
        F.fractional_max_pool2d(x.int(), 3, output_size=(5, 4))
    with pytest.raises(ValueError, match="fractional_max_pool3d: expected a 4-D"):
        F.fractional_max_pool3d(x[0, 0], 2, output_size=2)
    with pytest.raises(ValueError, match="either an output size, or a pooling ratio"):
        pt.nn.FractionalMaxPool2d(3)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        pt.nn.FractionalMaxPool2d(3, output_ratio=1.5)
    with pytest.raises(ValueError, match="only one of output_size and output_ratio"):
        pt.nn.FractionalMaxPool2d(3, output_size=3, output_ratio=0.5)


# -------------------------------------------------------------------------- fusion ---
def _bn_pair(torch, cls, n):
    ref = getattr(torch.nn, cls)(n).double()
    with torch.no_grad():
        ref.running_mean.copy_(torch.randn(n, dtype=torch.float64))
        ref.running_var.copy_(torch.rand(n, dtype=torch.float64) + 0.5)
        ref.weight.copy_(torch.randn(n, dtype=torch.float64))
        ref.bias.copy_(torch.randn(n, dtype=torch.float64))
    mine = getattr(pt.nn, cls)(n, dtype=pt.float64)
    mine.load_state_dict({k: _P(v) for k, v in ref.state_dict().items()})
    return ref.eval(), mine.eval()


@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_matches_torch(transpose):
    torch = pytest.importorskip("torch")
    cls = "ConvTranspose2d" if transpose else "Conv2d"
    groups = 1 if transpose else 2  # torch's fusion of grouped transposed convs fails
    ref_conv = getattr(torch.nn, cls)(4, 6, 3, groups=groups).double().eval()
    conv = getattr(pt.nn, cls)(4, 6, 3, groups=groups, dtype=pt.float64)
    conv.load_state_dict({k: _P(v) for k, v in ref_conv.state_dict().items()})
    conv.eval()
    ref_bn, bn = _bn_pair(torch, "BatchNorm2d", 6)
    ref = torch.nn.utils.fuse_conv_bn_eval(ref_conv, ref_bn, transpose)
    fused = pt.nn.utils.fuse_conv_bn_eval(conv, bn, transpose)
    assert type(fused) is type(conv) and fused is not conv
    assert isinstance(fused.weight, pt.nn.Parameter) and fused.weight.requires_grad
    _close(fused.weight, ref.weight)
    _close(fused.bias, ref.bias)
    x = pt.randn(2, 4, 5, 5, dtype=pt.float64)
    _close(fused(x), bn(conv(x)), atol=1e-10)
    # the inputs are untouched
    _close(conv.weight, ref_conv.weight)


def test_fuse_weights_defaults_and_linear_match_torch():
    torch = pytest.importorskip("torch")
    w = torch.randn(5, 3, 2, dtype=torch.float64, requires_grad=True)
    rm, rv = torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.1
    ref = torch.nn.utils.fuse_conv_bn_weights(w, None, rm, rv, 1e-3, None, None)
    got = pt.nn.utils.fuse_conv_bn_weights(_P(w, True), None, _P(rm), _P(rv), 1e-3, None, None)
    for a, b in zip(got, ref):
        _close(a, b)
        assert a.requires_grad == b.requires_grad
    ref_lin = torch.nn.Linear(4, 5).double().eval()
    lin = pt.nn.Linear(4, 5, dtype=pt.float64)
    lin.load_state_dict({k: _P(v) for k, v in ref_lin.state_dict().items()})
    lin.eval()
    ref_bn, bn = _bn_pair(torch, "BatchNorm1d", 5)
    ref = torch.nn.utils.fuse_linear_bn_eval(ref_lin, ref_bn)
    fused = pt.nn.utils.fuse_linear_bn_eval(lin, bn)
    _close(fused.weight, ref.weight)
    _close(fused.bias, ref.bias)
    x = pt.randn(3, 4, dtype=pt.float64)
    _close(fused(x), bn(lin(x)), atol=1e-10)
    lw, lb = pt.nn.utils.fuse_linear_bn_weights(_P(ref_lin.weight), None, _P(rm), _P(rv), 1e-5,
                                                _P(ref_bn.weight), _P(ref_bn.bias))
    rw, rb = torch.nn.utils.fuse_linear_bn_weights(ref_lin.weight, None, rm, rv, 1e-5,
                                                   ref_bn.weight, ref_bn.bias)
    _close(lw, rw)
    _close(lb, rb)


def test_fuse_errors():
    conv, bn = pt.nn.Conv2d(2, 3, 1), pt.nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="fuse_conv_bn_eval: fusion is only for eval mode"):
        pt.nn.utils.fuse_conv_bn_eval(conv, bn)
    with pytest.raises(ValueError, match="fuse_linear_bn_eval: to fuse"):
        pt.nn.utils.fuse_linear_bn_eval(pt.nn.Linear(2, 3).eval(), pt.nn.BatchNorm1d(4).eval())
    with pytest.raises(ValueError, match="no running statistics"):
        pt.nn.utils.fuse_conv_bn_eval(conv.eval(),
                                      pt.nn.BatchNorm2d(3, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="fuse_conv_bn_weights: the batch norm has 4"):
        pt.nn.utils.fuse_conv_bn_weights(conv.weight, None, pt.zeros(4), pt.ones(4), 1e-5,
                                         None, None)
    grouped = pt.nn.ConvTranspose2d(4, 6, 3, groups=2)
    with pytest.raises(ValueError, match="grouped transposed convolution"):
        pt.nn.utils.fuse_conv_bn_weights(grouped.weight, grouped.bias, pt.zeros(6),
                                         pt.ones(6), 1e-5, None, None, transpose=True)


def test_skip_init():
    m = pt.nn.utils.skip_init(pt.nn.Linear, 3, 4, dtype=pt.float64)
    assert type(m) is pt.nn.Linear
    assert tuple(m.weight.shape) == (4, 3) and m.weight.dtype == pt.float64
    assert m.bias is not None and m.weight.requires_grad
    m.weight.data = pt.ones(4, 3, dtype=pt.float64)
    np.testing.assert_array_equal(m(pt.ones(1, 3, dtype=pt.float64)).detach().numpy() -
                                  m.bias.detach().numpy(), np.full((1, 4), 3.0))
    conv = pt.nn.utils.skip_init(pt.nn.Conv2d, 2, 3, kernel_size=3, device="cpu")
    assert tuple(conv.weight.shape) == (3, 2, 3, 3) and repr(conv).startswith("Conv2d(")
    with pytest.raises(RuntimeError, match="skip_init: ReLU must support a 'device'"):
        pt.nn.utils.skip_init(pt.nn.ReLU)
    with pytest.raises(RuntimeError, match="skip_init: expected a Module subclass"):
        pt.nn.utils.skip_init(int)


# ----------------------------------------------------------------------- StackDataset ---
def test_stack_dataset_tuple_dict_and_batches():
    from polyten.utils.data import DataLoader, StackDataset, TensorDataset

    class Batched(TensorDataset):
        calls = 0

        def __getitems__(self, indices):
            Batched.calls += 1
            return [self[i] for i in indices]

    a = TensorDataset(pt.arange(5))
    b = list("abcde")
    ds = StackDataset(a, b)
    assert len(ds) == 5 and ds[2] == (a[2], "c")
    dd = StackDataset(x=a, y=b)
    assert dd[4] == {"x": a[4], "y": "e"}
    batched = StackDataset(Batched(pt.arange(5)), b)
    got = batched.__getitems__([0, 3])
    assert Batched.calls == 1 and [g[1] for g in got] == ["a", "d"]
    assert int(got[1][0][0]) == 3
    assert dd.__getitems__([1, 2])[1]["y"] == "c"
    batch = next(iter(DataLoader(StackDataset(x=pt.arange(4), y=pt.arange(4) * 2),
                                 batch_size=4)))
    np.testing.assert_array_equal(batch["y"].numpy(), [0, 2, 4, 6])
    with pytest.raises(ValueError, match="size mismatch"):
        StackDataset(a, b[:3])
    with pytest.raises(ValueError, match="size mismatch"):
        StackDataset(x=a, y=b[:3])
    with pytest.raises(ValueError, match="not both"):
        StackDataset(a, y=b)
    with pytest.raises(ValueError, match="at least one dataset"):
        StackDataset()

    class Short(TensorDataset):
        def __getitems__(self, indices):
            return [self[i] for i in indices[:-1]]
    with pytest.raises(ValueError, match="returned 1 samples for 2 indices"):
        StackDataset(Short(pt.arange(5)), b).__getitems__([0, 1])


# ------------------------------------------------------- AdaptiveLogSoftmaxWithLoss ---
def _asm_pair(torch, head_bias):
    ref = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 6, 9], div_value=2.0,
                                              head_bias=head_bias).double()
    mine = pt.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 6, 9], div_value=2.0,
                                            head_bias=head_bias, dtype=pt.float64)
    assert repr(mine) == repr(ref)
    mine.load_state_dict({k: _P(v) for k, v in ref.state_dict().items()})
    return ref, mine


@pytest.mark.parametrize("head_bias", [False, True])
def test_adaptive_log_softmax_matches_torch(head_bias):
    torch = pytest.importorskip("torch")
    ref, mine = _asm_pair(torch, head_bias)
    x = torch.randn(9, 8, dtype=torch.float64)
    t = torch.tensor([0, 4, 11, 2, 7, 5, 1, 10, 0])  # cluster 2 gets two rows, 1 gets one
    r = ref(x, t)
    r.loss.backward()
    got = mine(_P(x), _P(t))
    assert type(got).__name__ == "_ASMoutput" and got._fields == ("output", "loss")
    got.loss.backward()
    _close(got.output, r.output)
    _close(got.loss, r.loss)
    mine_params = dict(mine.named_parameters())
    for name, p in ref.named_parameters():
        _close(mine_params[name].grad, p.grad)
    _close(mine.log_prob(_P(x)), ref.log_prob(x))
    _close(mine.log_prob(_P(x[0])), ref.log_prob(x[:1])[0])
    one = mine(_P(x[3]), _P(t[3]))
    assert tuple(one.output.shape) == ()
    _close(one.output, ref(x[3], t[3]).output)
    # a head that prefers the clusters for some rows: predict's mixed path
    with torch.no_grad():
        ref.head.weight[3:] *= 6
    mine.load_state_dict({k: _P(v) for k, v in ref.state_dict().items()})
    xs = torch.randn(40, 8, dtype=torch.float64)
    pred = ref.predict(xs)
    assert 0 < int((pred >= 3).sum()) < 40
    np.testing.assert_array_equal(mine.predict(_P(xs)).numpy(), pred.numpy())
    assert int(mine.predict(_P(xs[5]))) == int(pred[5])


def test_adaptive_log_softmax_errors():
    m = pt.nn.AdaptiveLogSoftmaxWithLoss(16, 10, [3, 6])
    x = pt.randn(5, 16)
    with pytest.raises(RuntimeError, match=r"target values should be in \[0, 9\].*\[0, 10\]"):
        m(x, pt.tensor([0, 1, 2, 3, 10]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        m(x, pt.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="0-D or 1-D target"):
        m(x, pt.tensor([[0, 1, 2, 3, 4]]))
    with pytest.raises(RuntimeError, match="0-D target expects a 1-D input"):
        m(x, pt.tensor(1))
    with pytest.raises(RuntimeError, match="1-D target expects a 2-D input"):
        m(x[0], pt.tensor([1]))
    with pytest.raises(ValueError, match="length larger than 0"):
        pt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [])
    with pytest.raises(ValueError, match="unique, positive integers sorted"):
        pt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [6, 3])
    with pytest.raises(ValueError, match="unique, positive integers sorted"):
        pt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 10])


# ------------------------------------------------------------------ top-level aliases ---
def test_top_level_pooling_and_padding_aliases_match_torch():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 9, dtype=torch.float64)
    x2 = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    x3 = torch.randn(1, 2, 4, 6, 5, dtype=torch.float64)
    xp, xp2, xp3 = _P(x), _P(x2), _P(x3)
    _close(pt.adaptive_avg_pool1d(xp, 4), torch.adaptive_avg_pool1d(x, 4))
    v, i = pt.adaptive_max_pool1d(xp, 4)
    rv, ri = torch.adaptive_max_pool1d(x, 4)
    _close(v, rv)
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    _close(pt.avg_pool1d(xp, 3, 2, 1, True, False), torch.avg_pool1d(x, 3, 2, 1, True, False))
    _close(pt.max_pool1d(xp, 3), torch.max_pool1d(x, 3))
    _close(pt.max_pool1d(xp, 3, 2, 1, 2, True), torch.max_pool1d(x, 3, 2, 1, 2, True))
    _close(pt.max_pool2d(xp2, 2), torch.max_pool2d(x2, 2))
    _close(pt.max_pool2d(xp2, (2, 3), (1, 2), 1), torch.max_pool2d(x2, (2, 3), (1, 2), 1))
    _close(pt.max_pool3d(xp3, 2), torch.max_pool3d(x3, 2))
    v, i = pt.max_pool1d_with_indices(xp, 2, 1)
    rv, ri = torch.max_pool1d_with_indices(x, 2, 1)
    _close(v, rv)
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    _close(pt.constant_pad_nd(xp2, [1, 2, 0, 3], 1.5), torch.constant_pad_nd(x2, [1, 2, 0, 3],
                                                                             1.5))
    _close(pt.constant_pad_nd(xp, (-1, 2)), torch.constant_pad_nd(x, (-1, 2)))
    with pytest.raises(ValueError, match="constant_pad_nd: the length of pad must be even"):
        pt.constant_pad_nd(xp, [1, 2, 3])
    # gradients through an alias
    a = _P(x, True)
    pt.max_pool1d(a, 3).sum().backward()
    ta = x.clone().requires_grad_()
    torch.max_pool1d(ta, 3).sum().backward()
    _close(a.grad, ta.grad)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_top_level_embedding_bag_matches_torch(mode, padding_idx):
    torch = pytest.importorskip("torch")
    w = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = torch.tensor([0, 4, 4])
    ref = torch.embedding_bag(w, idx, offsets, False, mode, False, None, False, padding_idx)
    wp = _P(w, True)
    got = pt.embedding_bag(wp, _P(idx), _P(offsets), False, mode, False, None, False,
                           padding_idx)
    assert len(got) == 4
    _close(got[0], ref[0])
    g = torch.randn(ref[0].shape, dtype=torch.float64)
    (ref[0] * g).sum().backward()
    (got[0] * _P(g)).sum().backward()
    _close(wp.grad, w.grad)
    if mode != 0:  # torch's 'sum' path leaves these empty / zero (documented)
        for a, b in zip(got[1:], ref[1:]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the string modes of the functional are accepted too
    name = ("sum", "mean", "max")[mode]
    _close(pt.embedding_bag(wp, _P(idx), _P(offsets), mode=name, padding_idx=padding_idx)[0],
           ref[0])


def test_top_level_embedding_bag_include_last_offset_and_errors():
    torch = pytest.importorskip("torch")
    w = torch.randn(10, 3, dtype=torch.float64)
    idx = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
    ref = torch.embedding_bag(w, idx, torch.tensor([0, 4, 8]), False, 1, False, None, True)
    got = pt.embedding_bag(_P(w), _P(idx), pt.tensor([0, 4, 8]), False, 1, False, None, True)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-12)
    with pytest.raises(ValueError, match="embedding_bag: mode must be 0"):
        pt.embedding_bag(_P(w), _P(idx), pt.tensor([0]), mode=3)
