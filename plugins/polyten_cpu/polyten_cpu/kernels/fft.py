"""Kernels of the ``fft`` tier: ``fft_c2c``, ``fft_r2c``, ``fft_c2r`` on ``xp.fft``.

NumPy's ``numpy.fft`` (pocketfft) and CuPy's ``cupy.fft`` (cuFFT) share the function names and
the ``norm`` keyword, so the same code serves both.  The core has promoted the input (float32
/ float64 for ``fft_r2c``, complex64 / complex128 otherwise), padded or trimmed it to the signal
sizes and normalised ``dims``, so each kernel is one library call.  A one-dim transform calls
the 1-D function: NumPy's n-dim wrappers add about a microsecond of argument handling per call
(``_cook_nd_args``) before they call it anyway.
"""

from __future__ import annotations

# the complex dtype of a transform of each real dtype (the core sends no float16)
_COMPLEX_OF = {"float32": "complex64", "float64": "complex128"}
_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def kernels(xp, **ctx) -> dict:
    f = xp.fft
    fft, ifft, fftn, ifftn = f.fft, f.ifft, f.fftn, f.ifftn
    rfft, rfftn, irfft, irfftn = f.rfft, f.rfftn, f.irfft, f.irfftn
    complex_of = {xp.dtype(k): xp.dtype(v) for k, v in _COMPLEX_OF.items()}
    real_of = {xp.dtype(k): xp.dtype(v) for k, v in _REAL_OF.items()}

    def fit(r, dt):
        # NumPy >= 2 and CuPy keep single precision; an older NumPy returns complex128 /
        # float64 for single-precision input, and the kernel contract is the exact dtype
        return r if r.dtype == dt else r.astype(dt)

    def empty(shape, dt):
        # nothing to transform (a batch dim of size 0): cuFFT cannot plan a batch of 0
        return xp.zeros(shape, dtype=dt)

    def fft_c2c(x, dims, norm, forward):
        if x.size == 0:
            return empty(x.shape, x.dtype)
        if len(dims) == 1:
            r = (fft if forward else ifft)(x, axis=dims[0], norm=norm)
        else:
            r = (fftn if forward else ifftn)(x, axes=dims, norm=norm)
        return fit(r, x.dtype)

    def fft_r2c(x, dims, norm, onesided):
        cd = complex_of[x.dtype]
        if onesided:
            if x.size == 0:
                shape = list(x.shape)
                shape[dims[-1]] = shape[dims[-1]] // 2 + 1
                return empty(tuple(shape), cd)
            if len(dims) == 1:
                r = rfft(x, axis=dims[0], norm=norm)
            else:
                r = rfftn(x, axes=dims, norm=norm)
        else:
            if x.size == 0:
                return empty(x.shape, cd)
            if len(dims) == 1:
                r = fft(x, axis=dims[0], norm=norm)
            else:
                r = fftn(x, axes=dims, norm=norm)
        return fit(r, cd)

    def fft_c2r(x, dims, norm, last_dim_size):
        rd = real_of[x.dtype]
        if x.size == 0:
            shape = list(x.shape)
            shape[dims[-1]] = last_dim_size
            return empty(tuple(shape), rd)
        if len(dims) == 1:
            r = irfft(x, n=last_dim_size, axis=dims[0], norm=norm)
        else:
            s = tuple(x.shape[d] for d in dims[:-1]) + (last_dim_size,)
            r = irfftn(x, s=s, axes=dims, norm=norm)
        return fit(r, rd)

    return {"fft_c2c": fft_c2c, "fft_r2c": fft_r2c, "fft_c2r": fft_c2r}
