"""3-D convolution and pooling, ``interpolate`` / ``Upsample``, padding layers,
``pixel_shuffle``, distances and the shrink activations: values, gradients and reprs against
PyTorch (float64), and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


def _value_and_grad(fp, ft, x, rtol=1e-10, atol=1e-12):
    px, tx = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    po, to = fp(px), ft(tx)
    assert tuple(po.shape) == tuple(to.shape)
    np.testing.assert_allclose(po.detach().numpy(), to.detach().numpy(), rtol=rtol, atol=atol)
    w = _rng(9).standard_normal(tuple(to.shape))
    (po * pt.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)


_3D = [
    ("Conv3d", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1,
                    stride=(1, 2, 1))),
    ("Conv3d", dict(in_channels=3, out_channels=6, kernel_size=(2, 3, 1), groups=3,
                    dilation=(1, 2, 1), padding=1, padding_mode="reflect")),
    ("ConvTranspose3d", dict(in_channels=3, out_channels=2, kernel_size=3, stride=2,
                             output_padding=1)),
    ("MaxPool3d", dict(kernel_size=2, stride=(1, 2, 2), padding=1, ceil_mode=True)),
    ("AvgPool3d", dict(kernel_size=(2, 3, 2), padding=(1, 1, 0), count_include_pad=False)),
]


@pytest.mark.parametrize("case", range(len(_3D)))
def test_3d_layers_match_torch(case):
    name, kw = _3D[case]
    tm = getattr(torch.nn, name)(**kw).double()
    pm = getattr(pt.nn, name)(**kw).to(dtype=pt.float64)
    if hasattr(tm, "weight"):
        pm.weight.data = pt.tensor(tm.weight.detach().numpy())
        pm.bias.data = pt.tensor(tm.bias.detach().numpy())
    assert repr(pm) == repr(tm)
    _value_and_grad(pm, tm, _rng().standard_normal((2, 3, 5, 6, 4)))


def test_max_pool3d_indices():
    x = _rng().standard_normal((2, 3, 4, 5, 6))
    v, i = F.max_pool3d(pt.tensor(x), 2, return_indices=True)
    tv, ti = TF.max_pool3d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(v.numpy(), tv.numpy())


_INTERP = [
    ((2, 3, 7), dict(size=11, mode="nearest")),
    ((2, 3, 7), dict(scale_factor=2.5, mode="nearest")),
    ((2, 3, 7), dict(size=4, mode="nearest-exact")),
    ((2, 3, 7), dict(size=12, mode="linear")),
    ((2, 3, 7), dict(size=5, mode="linear", align_corners=True)),
    ((2, 3, 7), dict(scale_factor=1.7, mode="linear", recompute_scale_factor=True)),
    ((2, 3, 5, 6), dict(size=(8, 9), mode="bilinear")),
    ((2, 3, 5, 6), dict(scale_factor=(1.5, 0.5), mode="bilinear")),
    ((2, 3, 5, 6), dict(size=(3, 11), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 6), dict(size=(8, 9), mode="bicubic")),
    ((2, 3, 5, 6), dict(size=(8, 4), mode="bicubic", align_corners=True)),
    ((2, 3, 5, 6), dict(scale_factor=2, mode="nearest")),
    ((1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 8, 6), dict(size=(3, 4), mode="area")),
]


@pytest.mark.parametrize("case", range(len(_INTERP)))
def test_interpolate_matches_torch(case):
    shape, kw = _INTERP[case]
    _value_and_grad(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw),
                    _rng(case).standard_normal(shape))


def test_interpolate_errors():
    x = pt.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="mode 'linear' needs a 3-D input"):
        F.interpolate(x, size=3, mode="linear")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, size=3, mode="cubic")
    with pytest.raises(ValueError, match="align_corners applies only"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="size must have 2 entries"):
        F.interpolate(x, size=(1, 2, 3))


_MODULES = [
    ("ZeroPad2d", ((1, 2, 0, 1),)), ("ConstantPad1d", (2, 3.5)), ("ReflectionPad2d", (1,)),
    ("ReplicationPad3d", ((1, 0, 1, 0, 0, 1),)), ("CircularPad2d", (1,)),
    ("ReflectionPad1d", ((2, 1),)), ("ZeroPad3d", (1,)),
    ("PixelShuffle", (2,)), ("PixelUnshuffle", (2,)), ("Hardshrink", (0.2,)),
    ("Softshrink", ()),
]


@pytest.mark.parametrize("name,args", _MODULES)
def test_modules_match_torch(name, args):
    pm, tm = getattr(pt.nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(pm) == repr(tm)
    shape = (2, 8, 4, 6) if name.startswith("Pixel") else {
        "1d": (2, 3, 5), "3d": (2, 3, 4, 5, 6)}.get(name[-2:], (2, 3, 4, 5))
    _value_and_grad(pm, tm, _rng().standard_normal(shape))


def test_upsample_modules():
    x = _rng().standard_normal((2, 3, 4, 5))
    for pm, tm in [(pt.nn.Upsample(scale_factor=2, mode="bilinear"),
                    torch.nn.Upsample(scale_factor=2, mode="bilinear")),
                   (pt.nn.UpsamplingBilinear2d(size=(7, 3)),
                    torch.nn.UpsamplingBilinear2d(size=(7, 3))),
                   (pt.nn.UpsamplingNearest2d(scale_factor=3),
                    torch.nn.UpsamplingNearest2d(scale_factor=3))]:
        assert repr(pm) == repr(tm)
        _value_and_grad(pm, tm, x)


def test_distances():
    a, b = _rng().standard_normal((4, 5)), _rng(1).standard_normal((4, 5))
    a[0] = 1e-9  # a norm below eps: each norm is clamped on its own, as torch
    _value_and_grad(lambda x: F.cosine_similarity(x, pt.tensor(b)),
                    lambda x: TF.cosine_similarity(x, torch.tensor(b)), a)
    _value_and_grad(lambda x: F.cosine_similarity(x, pt.tensor(b[:1]), dim=-1),
                    lambda x: TF.cosine_similarity(x, torch.tensor(b[:1]), dim=-1), a)
    _value_and_grad(lambda x: F.pairwise_distance(x, pt.tensor(b), p=1.5, keepdim=True),
                    lambda x: TF.pairwise_distance(x, torch.tensor(b), p=1.5, keepdim=True), a)
    assert pt.nn.CosineSimilarity(dim=0)(pt.tensor(a), pt.tensor(b)).shape == (5,)
    assert pt.nn.PairwiseDistance(keepdim=True)(pt.tensor(a), pt.tensor(b)).shape == (4, 1)


def test_pixel_shuffle_errors_and_batch_dims():
    x = _rng().standard_normal((2, 2, 8, 3, 4))  # extra leading dims
    np.testing.assert_array_equal(F.pixel_shuffle(pt.tensor(x), 2).numpy(),
                                  TF.pixel_shuffle(torch.tensor(x), 2).numpy())
    with pytest.raises(ValueError, match=r"channels \(8\) must be divisible by "
                                         r"upscale_factor\*\*2 \(3\*\*2 = 9\)"):
        F.pixel_shuffle(pt.tensor(x), 3)
    with pytest.raises(ValueError, match="must be divisible by downscale_factor"):
        F.pixel_unshuffle(pt.tensor(x), 3)
    with pytest.raises(ValueError, match="padding must be an int or a 4-tuple"):
        pt.nn.ZeroPad2d((1, 2))
