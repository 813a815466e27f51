"""Functions of the ``torch`` namespace built on :mod:`polyten.special` and :mod:`polyten.fft`:
``igamma`` / ``igammac`` (the regularized incomplete gamma functions) and the short-time
Fourier transform ``stft`` / ``istft``, with their Tensor methods.

Everything is composed from public polyten ops, so it runs on every backend and
differentiates through autograd.
"""

from __future__ import annotations

from ._core import Tensor, describe
from .elementwise import _inplace_generic

__all__ = ["igamma", "igammac", "stft", "istft"]


def _pt():
    import polyten
    return polyten


def igamma(input, other) -> Tensor:
    """The regularized lower incomplete gamma function ``P(input, other)``, as
    ``torch.igamma`` (the same function as :func:`polyten.special.gammainc`)."""
    from .. import special
    return special.gammainc(input, other)


def igammac(input, other) -> Tensor:
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P``, as
    ``torch.igammac`` (:func:`polyten.special.gammaincc`; accurate where P is near 1)."""
    from .. import special
    return special.gammaincc(input, other)


# --- short-time Fourier transform ----------------------------------------------------------------
def _stft_sizes(op: str, n_fft, hop_length, win_length):
    if isinstance(n_fft, bool) or not isinstance(n_fft, int) or n_fft <= 0:
        raise ValueError(f"{op}: expected a positive int n_fft, got {n_fft!r}")
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if isinstance(hop, bool) or not isinstance(hop, int) or hop <= 0:
        raise ValueError(f"{op}: expected 0 < hop_length, got hop_length={hop!r}")
    if isinstance(win, bool) or not isinstance(win, int) or not 0 < win <= n_fft:
        raise ValueError(f"{op}: expected 0 < win_length <= n_fft, got win_length={win!r} "
                         f"and n_fft={n_fft}")
    return hop, win


def _stft_window(op: str, window, win: int, n_fft: int, like: Tensor) -> Tensor:
    """The window, centre-padded with zeros to ``n_fft`` (a rectangular one if None)."""
    pt = _pt()
    if window is None:
        real = like.dtype.to_real() if like.dtype.is_complex else like.dtype
        window = pt.ones(win, dtype=real, device=like.device)
    elif not isinstance(window, Tensor):
        raise TypeError(f"{op}: expected window to be a tensor or None, got {describe(window)}")
    elif window.ndim != 1 or window.shape[0] != win:
        raise RuntimeError(f"{op}: expected a 1-D window of size win_length={win}, got shape "
                           f"{tuple(window.shape)}; build it with e.g. "
                           f"polyten.hann_window({win})")
    left = (n_fft - win) // 2
    if left or n_fft - win - left:
        window = pt.nn.functional.pad(window, (left, n_fft - win - left))
    return window


def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", normalized=False, onesided=None, return_complex=None) -> Tensor:
    """The short-time Fourier transform, as ``torch.stft``.

    Frames of ``n_fft`` samples every ``hop_length`` (default ``n_fft // 4``), multiplied by
    ``window`` (length ``win_length``, default ``n_fft``, zero-padded on both sides to
    ``n_fft``; all ones when None) and Fourier transformed.

    Parameters
    ----------
    input : Tensor
        ``(L,)`` or ``(B, L)``, real or complex.
    center : bool
        Pad ``n_fft // 2`` samples on both sides first (``pad_mode``: ``"reflect"``,
        ``"constant"``, ``"replicate"`` or ``"circular"``), so frame t is centred on
        ``t * hop_length``.
    normalized : bool
        Multiply by ``n_fft ** -0.5``.
    onesided : bool, optional
        Keep the ``n_fft // 2 + 1`` non-negative frequencies; the default for a real input
        and window.
    return_complex : bool
        Required for real input (as PyTorch): True gives a complex ``(B?, N, T)`` tensor,
        False the same as ``(B?, N, T, 2)`` real.

    Differentiable in ``input`` and ``window``.
    """
    pt = _pt()
    op = "stft"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(input)}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"{op}: expected a 1-D (L) or 2-D (B, L) input, got shape "
                           f"{tuple(input.shape)}")
    hop, win = _stft_sizes(op, n_fft, hop_length, win_length)
    cplx = input.dtype.is_complex or (isinstance(window, Tensor) and window.dtype.is_complex)
    if return_complex is None:
        if not cplx:
            raise RuntimeError("stft: the return_complex parameter is required for real "
                               "inputs: pass return_complex=True (a complex result) or "
                               "return_complex=False (real and imaginary parts stacked in a "
                               "last dimension of size 2)")
        return_complex = True
    x = input if input.dtype.is_floating_point or input.dtype.is_complex else \
        input.to(pt.get_default_dtype())
    batched = x.ndim == 2
    if not batched:
        x = x.unsqueeze(0)
    if center:
        pad = n_fft // 2
        if pad_mode not in ("reflect", "constant", "replicate", "circular"):
            raise ValueError(f"stft: pad_mode must be 'reflect', 'constant', 'replicate' or "
                             f"'circular', got {pad_mode!r}")
        if pad_mode == "reflect" and pad >= x.shape[-1]:
            raise RuntimeError(f"stft: reflect padding of {pad} samples needs a signal longer "
                               f"than that, got length {x.shape[-1]}; use center=False or "
                               f"pad_mode='constant'")
        x = pt.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)
    if n_fft > x.shape[-1]:
        raise RuntimeError(f"stft: expected 0 < n_fft <= the (padded) signal length "
                           f"{x.shape[-1]}, got n_fft={n_fft}")
    w = _stft_window(op, window, win, n_fft, x)
    frames = x.unfold(-1, n_fft, hop) * w  # (B, T, n_fft)
    if onesided is None:
        onesided = not cplx
    if onesided and cplx:
        raise RuntimeError("stft: onesided=True needs a real input and window; pass "
                           "onesided=False for complex ones")
    norm = "ortho" if normalized else "backward"
    spec = pt.fft.rfft(frames, dim=-1, norm=norm) if onesided else \
        pt.fft.fft(frames, dim=-1, norm=norm)
    spec = spec.transpose(-1, -2)
    if not batched:
        spec = spec.squeeze(0)
    return spec if return_complex else pt.view_as_real(spec)


def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
          normalized=False, onesided=None, length=None, return_complex=False) -> Tensor:
    """The inverse short-time Fourier transform, as ``torch.istft``: the least-squares
    overlap-add inverse of :func:`stft` (``istft(stft(x, ...), ...) == x`` for the same
    arguments).

    Parameters
    ----------
    input : Tensor
        Complex ``(B?, N, T)``: ``N = n_fft // 2 + 1`` if ``onesided`` (the default when the
        sizes say so), else ``n_fft``.
    length : int, optional
        The length of the result (trimmed or zero-padded); by default what the frames cover,
        less the ``center`` padding.
    return_complex : bool
        A complex result (needs ``onesided=False``).

    Raises ``RuntimeError`` where the window envelope ``sum_t w(n - t hop)^2`` vanishes
    inside the result (the NOLA condition fails).  Differentiable in ``input`` and
    ``window``.
    """
    pt = _pt()
    op = "istft"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(input)}")
    if not input.dtype.is_complex:
        raise RuntimeError(f"istft: expected a complex input (as stft(..., "
                           f"return_complex=True) gives), got {input.dtype.name}; use "
                           f"polyten.view_as_complex on a (..., 2) real tensor")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a 2-D (N, T) or 3-D (B, N, T) input, got shape "
                           f"{tuple(input.shape)}")
    hop, win = _stft_sizes(op, n_fft, hop_length, win_length)
    batched = input.ndim == 3
    spec = input if batched else input.unsqueeze(0)
    n_freq, n_frames = spec.shape[-2], spec.shape[-1]
    if onesided is None:
        onesided = n_freq != n_fft
    want = n_fft // 2 + 1 if onesided else n_fft
    if n_freq != want:
        raise RuntimeError(f"istft: expected {want} frequencies for n_fft={n_fft} "
                           f"(onesided={onesided}), got {n_freq}")
    if onesided and return_complex:
        raise RuntimeError("istft: return_complex=True needs onesided=False (a one-sided "
                           "spectrum describes a real signal)")
    w = _stft_window(op, window, win, n_fft, spec.real)
    norm = "ortho" if normalized else "backward"
    spec = spec.transpose(-1, -2)  # (B, T, N)
    frames = pt.fft.irfft(spec, n=n_fft, dim=-1, norm=norm) if onesided else \
        pt.fft.ifft(spec, dim=-1, norm=norm)
    if not onesided and not return_complex:
        frames = frames.real
    frames = frames * w
    total = n_fft + hop * (n_frames - 1)
    fold = pt.nn.functional.fold
    y = fold(frames.transpose(-1, -2).contiguous(), (1, total), (1, n_fft),
             stride=(1, hop)).reshape(spec.shape[0], total)
    wsq = (w * w).reshape(1, n_fft, 1).expand(1, n_fft, n_frames).contiguous()
    env = fold(wsq, (1, total), (1, n_fft), stride=(1, hop)).reshape(total)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    else:
        end = total - n_fft // 2 if center else total
    end = min(end, total)
    y = y[:, start:end]
    env = env[start:end]
    if bool((env.abs() < 1e-11).any()):
        raise RuntimeError(f"istft: the window overlap-add envelope vanishes inside the "
                           f"result (NOLA fails for window length {win}, hop_length={hop}); "
                           f"use a smaller hop_length or a window without zeros")
    y = y / env
    if length is not None and y.shape[-1] < length:
        y = pt.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y if batched else y.squeeze(0)


def _stft_method(self, n_fft, hop_length=None, win_length=None, window=None, center=True,
                 pad_mode="reflect", normalized=False, onesided=None, return_complex=None):
    return stft(self, n_fft, hop_length, win_length, window, center, pad_mode, normalized,
                onesided, return_complex)


def _istft_method(self, n_fft, hop_length=None, win_length=None, window=None, center=True,
                  normalized=False, onesided=None, length=None, return_complex=False):
    return istft(self, n_fft, hop_length, win_length, window, center, normalized, onesided,
                 length, return_complex)


_stft_method.__doc__ = stft.__doc__
_istft_method.__doc__ = istft.__doc__

TENSOR_METHODS: dict = {
    "igamma": igamma,
    "igammac": igammac,
    "igamma_": _inplace_generic("igamma", igamma),
    "igammac_": _inplace_generic("igammac", igammac),
    "stft": _stft_method,
    "istft": _istft_method,
}
