"""``polyten.fft``: discrete Fourier transforms, as ``torch.fft``.

``fft`` / ``ifft``, ``fft2`` / ``ifft2``, ``fftn`` / ``ifftn`` (complex), ``rfft`` / ``irfft``,
``rfft2`` / ``irfft2``, ``rfftn`` / ``irfftn`` (real signals, half spectra), ``hfft`` /
``ihfft``, ``hfft2`` / ``ihfft2``, ``hfftn`` / ``ihfftn`` (Hermitian signals), and the helpers
``fftfreq``, ``rfftfreq``, ``fftshift``, ``ifftshift``; arguments and defaults as PyTorch's.
The transforms are differentiable and run on every backend that provides the optional ``fft``
tier of the op table (the cpu backend on NumPy's pocketfft, the cuda backend on cuFFT);
elsewhere they raise ``polyten.KernelNotFoundError`` naming the tier.

This module is imported on first use (``polyten.fft`` is resolved by ``polyten.__getattr__``), so
``import polyten`` does not pay for it.
"""

from .api.fft import (fft, fft2, fftfreq, fftn, fftshift, hfft, hfft2, hfftn, ifft, ifft2, ifftn,
                      ifftshift, ihfft, ihfft2, ihfftn, irfft, irfft2, irfftn, rfft, rfft2,
                      rfftfreq, rfftn)

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq",
           "rfftfreq", "fftshift", "ifftshift"]
