"""polyten.stft / istft against PyTorch and a NumPy float64 reference; round trips,
gradients and the error paths."""

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck

RNG = np.random.default_rng(7)


def _np_stft(x, n_fft, hop, window, center, onesided, normalized):
    """A direct NumPy reference: reflect-pad, frame, window, DFT by matrix product."""
    if center:
        x = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    count = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[t * hop:t * hop + n_fft] * window for t in range(count)])
    k = np.arange(n_fft)
    dft = np.exp(-2j * np.pi * np.outer(k, k) / n_fft)
    spec = frames @ dft.T
    if normalized:
        spec = spec / np.sqrt(n_fft)
    if onesided:
        spec = spec[:, :n_fft // 2 + 1]
    return spec.T


CONFIGS = [
    dict(n_fft=16),
    dict(n_fft=16, hop_length=5, win_length=10, window="hann"),
    dict(n_fft=15, center=False, window="hamming", normalized=True),
    dict(n_fft=16, onesided=False, window="hann", pad_mode="constant"),
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("batch", [None, 3])
def test_stft_istft_match_torch(cfg, batch):
    torch = pytest.importorskip("torch")
    cfg = dict(cfg)
    wname = cfg.pop("window", None)
    wl = cfg.get("win_length", cfg["n_fft"])
    wt = getattr(torch, wname + "_window")(wl, dtype=torch.float64) if wname else \
        torch.ones(wl, dtype=torch.float64)
    wp = getattr(pt, wname + "_window")(wl, dtype=pt.float64) if wname else None
    length = 70
    xn = RNG.standard_normal((batch, length) if batch else (length,))
    got = pt.stft(pt.asarray(xn), window=wp, return_complex=True, **cfg)
    ref = torch.stft(torch.tensor(xn), window=wt, return_complex=True, **cfg).numpy()
    assert tuple(got.shape) == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    inv = {k: v for k, v in cfg.items() if k != "pad_mode"}
    back = pt.istft(got, window=wp, length=length, **inv).numpy()
    tback = torch.istft(torch.tensor(ref), window=wt, length=length, **inv).numpy()
    np.testing.assert_allclose(back, tback, atol=1e-12)
    if cfg.get("center", True):
        np.testing.assert_allclose(back, xn, atol=1e-12)  # the round trip


def test_stft_numpy_reference_and_real_output():
    x = RNG.standard_normal(50)
    w = np.hanning(12)
    for onesided, normalized in [(True, False), (False, True)]:
        got = pt.stft(pt.asarray(x), 12, 3, window=pt.asarray(w), onesided=onesided,
                      normalized=normalized, return_complex=True).numpy()
        np.testing.assert_allclose(got, _np_stft(x, 12, 3, w, True, onesided, normalized),
                                   atol=1e-12)
    real = pt.stft(pt.asarray(x), 12, return_complex=False)
    cplx = pt.stft(pt.asarray(x), 12, return_complex=True)
    assert tuple(real.shape) == tuple(cplx.shape) + (2,)
    np.testing.assert_allclose(real.numpy()[..., 1], cplx.numpy().imag)
    # Tensor methods
    np.testing.assert_allclose(pt.asarray(x).stft(12, return_complex=True).numpy(),
                               cplx.numpy())
    np.testing.assert_allclose(cplx.istft(12, length=50).numpy(), x, atol=1e-12)


def test_stft_istft_gradients():
    x = pt.asarray(RNG.standard_normal(24)).requires_grad_()
    w = pt.hann_window(8, dtype=pt.float64).requires_grad_()
    assert gradcheck(lambda a, b: pt.view_as_real(
        pt.stft(a, 8, 2, window=b, return_complex=True)), (x, w))
    spec = pt.stft(x.detach(), 8, 2, window=w.detach(), return_complex=True)
    sr = pt.asarray(pt.view_as_real(spec).numpy().copy()).requires_grad_()
    assert gradcheck(lambda s: pt.istft(pt.view_as_complex(s), 8, 2,
                                        window=w.detach()), (sr,))


def test_stft_istft_errors():
    x = pt.asarray(RNG.standard_normal(40))
    with pytest.raises(RuntimeError, match="return_complex"):
        pt.stft(x, 8)
    with pytest.raises(RuntimeError, match="window"):
        pt.stft(x, 8, window=pt.ones(5), return_complex=True)
    with pytest.raises(ValueError, match="win_length"):
        pt.stft(x, 8, win_length=9, return_complex=True)
    with pytest.raises(RuntimeError, match="n_fft"):
        pt.stft(x, 64, center=False, return_complex=True)
    with pytest.raises(RuntimeError, match="complex input"):
        pt.istft(x.reshape(5, 8), 8)
    spec = pt.stft(x, 8, 2, window=pt.hann_window(8, periodic=False, dtype=pt.float64),
                   center=False, return_complex=True)
    with pytest.raises(RuntimeError, match="NOLA"):
        pt.istft(spec, 8, 2, window=pt.hann_window(8, periodic=False, dtype=pt.float64),
                 center=False)
    with pytest.raises(RuntimeError, match="frequencies"):
        pt.istft(spec[:3], 8, 2)
