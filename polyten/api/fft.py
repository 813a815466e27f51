"""Discrete Fourier transforms: the functions of :mod:`polyten.fft` (``torch.fft``'s).

Three op-table primitives of the optional ``fft`` tier do the transforms, as PyTorch's internal
``_fft_c2c`` / ``_fft_r2c`` / ``_fft_c2r``: ``fft_c2c(x, dims, norm, forward)``,
``fft_r2c(x, dims, norm, onesided)`` and ``fft_c2r(x, dims, norm, last_dim_size)``.  Everything
else is done here, in the core, so that every backend behaves and reports errors the same way:

* promotion: complex inputs keep their dtype; float32 / float64 are transformed as they are
  (to complex64 / complex128); float16 is computed in float32 (PyTorch refuses it on the CPU);
  integers and bool in the default float dtype (complex64 with the default float32);
* dims and signal sizes (``n`` / ``s``, ``-1`` in ``s`` keeping a dim's size), checked and
  worded after the user's call (``fft.rfft: ...``);
* zero-padding and trimming to the signal sizes with ``cat`` and ``narrow``, which record
  themselves, so gradients flow through them and a kernel only transforms;
* ``hfft`` / ``ihfft``: ``fft_c2r`` of the conjugate and the conjugate of ``fft_r2c``, with the
  normalisation of the other direction (as ``numpy.fft``).

``norm`` reaches the kernels as ``numpy.fft``'s string for the direction the kernel computes
(``cupy.fft`` takes the same), so the backward of a transform is the transform in the other
direction with ``backward`` and ``forward`` swapped (``polyten/autograd/derivatives.py``).
"""

from __future__ import annotations

import builtins
import numbers
import operator

from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from ..dispatch.dispatcher import kernels
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from ._core import Tensor, describe, wrap
from .creation import arange, zeros
from .elementwise import conj
from .shape import cat, clone, narrow, roll

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq",
           "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")
# the normalisation of the adjoint transform (and of hfft / ihfft, numpy's _swap_direction)
SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}
_LOW, _f32 = _dt.LOW_PRECISION, _dt.float32
_SEQ = (builtins.list, builtins.tuple)

_c2c_k = kernels("fft_c2c")
_r2c_k = kernels("fft_r2c")
_c2r_k = kernels("fft_c2r")
_C2C = _rule("fft_c2c")
_R2C = _rule("fft_r2c")
_C2R = _rule("fft_c2r")


# ------------------------------------------------------------------------- primitives ---
# Also called by the derivative rules, on gradients: each records its own node, so double
# backward differentiates the backward.
def c2c(x: Tensor, dims: tuple, norm: str, forward: bool) -> Tensor:
    """``fft_c2c`` on a complex tensor; ``dims`` sorted, each of size >= 1."""
    dev = x._device
    out = wrap(_c2c_k[dev.backend](x._data, dims, norm, forward), dev, x._dtype)
    if x._ag is not None and _grad_on():
        _record(_C2C, out, (x,), {"dims": dims, "norm": norm, "forward": forward})
    return out


def r2c(x: Tensor, dims: tuple, norm: str, onesided: bool) -> Tensor:
    """``fft_r2c`` on a float32 / float64 tensor; the last of ``dims`` is the halved one."""
    dev = x._device
    out = wrap(_r2c_k[dev.backend](x._data, dims, norm, onesided), dev, x._dtype.to_complex())
    if x._ag is not None and _grad_on():
        _record(_R2C, out, (x,), {"dims": dims, "norm": norm, "onesided": onesided})
    return out


def c2r(x: Tensor, dims: tuple, norm: str, last_dim_size: int) -> Tensor:
    """``fft_c2r`` on a complex half-spectrum with ``last_dim_size // 2 + 1`` entries along the
    last of ``dims``."""
    dev = x._device
    out = wrap(_c2r_k[dev.backend](x._data, dims, norm, last_dim_size), dev, x._dtype.to_real())
    if x._ag is not None and _grad_on():
        _record(_C2R, out, (x,), {"dims": dims, "norm": norm, "last_dim_size": last_dim_size})
    return out


# ---------------------------------------------------------------------------- checks ---
def _input(op: str, input) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a polyten tensor as input, got {describe(input)}; "
                        f"make one first, e.g. polyten.asarray(x)")
    return input


def _norm(op: str, norm) -> str:
    if norm is None:
        return "backward"
    if norm.__class__ is str and norm in _NORMS:
        return norm
    raise ValueError(f"{op}: invalid normalization mode {norm!r}; norm must be None or "
                     f"'backward' (the default: no scaling of the forward transform, 1/n on the "
                     f"inverse), 'ortho' (1/sqrt(n) both ways) or 'forward' (1/n on the forward "
                     f"transform, none on the inverse)")


def _real_compute(x: Tensor):
    """The real dtype a real input is transformed in (float16 and integers are promoted)."""
    dt = x._dtype
    if dt.kind != "f":
        dt = _dt.get_default_dtype()
    return _f32 if dt in _LOW else dt


def _as_real(op: str, x: Tensor, fix: str) -> Tensor:
    """A real input in its computation dtype; complex inputs are refused."""
    if x._dtype.kind == "c":
        raise TypeError(f"{op}: expects a real input tensor, but got {describe(x)}; {fix}")
    dt = _real_compute(x)
    return x if x._dtype is dt else x.to(dt)


def _as_complex(x: Tensor) -> Tensor:
    if x._dtype.kind == "c":
        return x
    return x.to(_real_compute(x).to_complex())


def _dim(op: str, x: Tensor, dim) -> int:
    shape = x._data.shape
    nd = len(shape)
    if nd == 0:
        raise IndexError(f"{op}: expected a tensor with at least one dimension, got "
                         f"{describe(x)}; reshape it first, e.g. x.reshape(1)")
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__} {dim!r}") from None
    if not -nd <= d < nd:
        raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape "
                         f"{fmt_shape(shape)} (expected a dim in [{-nd}, {nd - 1}])")
    return d + nd if d < 0 else d


def _int(op: str, v, what: str) -> int:
    if v.__class__ is builtins.int:
        return v
    if isinstance(v, builtins.bool):
        raise TypeError(f"{op}: {what} must be an int, got bool {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{op}: {what} must be an int, got {type(v).__name__} {v!r}") from None


def _points(op: str, n: int, what: str) -> int:
    if n < 1:
        raise ValueError(f"{op}: invalid number of data points ({n}) specified: {what}; a "
                         f"transform needs at least 1")
    return n


def _signal(op: str, x: Tensor, d: int, n) -> int:
    """The signal size along ``d``: ``n``, or the input's size there."""
    if n is None:
        size = x._data.shape[d]
        if size < 1:
            _points(op, size, f"dim {d} of the input (shape {fmt_shape(x._data.shape)}) is "
                              f"empty; pass n >= 1 to transform a zero-padded signal")
        return size
    n = _int(op, n, "n")
    return _points(op, n, f"n={n}")


def _half_signal(op: str, x: Tensor, d: int, n) -> int:
    """The output size of a c2r transform along ``d``: ``n``, or ``2 * (m - 1)`` for an input
    of ``m`` entries there."""
    if n is None:
        m = x._data.shape[d]
        return _points(op, 2 * (m - 1), f"the default output size 2 * (m - 1) for the m = {m} "
                       f"entries of dim {d} of the input (shape {fmt_shape(x._data.shape)}); "
                       f"pass n >= 1")
    n = _int(op, n, "n")
    return _points(op, n, f"n={n}")


def _nd(op: str, x: Tensor, s, dim):
    """``(dims, sizes, s)`` as torch canonicalises them: ``dims`` in the caller's order
    (non-negative), ``sizes`` the requested size per dim (``None``: keep the input's)."""
    shape = x._data.shape
    nd = len(shape)
    dims_in = None
    if dim is not None:
        dims_in = tuple(dim) if isinstance(dim, _SEQ) else (dim,)
        dims = tuple(_dim(op, x, d) for d in dims_in)
        if len(set(dims)) != len(dims):
            raise ValueError(f"{op}: dim {dims_in} names a dimension more than once (input "
                             f"shape {fmt_shape(shape)}); the transformed dims must be "
                             f"distinct")
    if s is None:
        if dim is None:
            dims = tuple(range(nd))
        return dims, [None] * len(dims), None
    s_in = tuple(s) if isinstance(s, _SEQ) else (s,)
    if dims_in is not None:
        if len(s_in) != len(dims):
            raise ValueError(f"{op}: s and dim must have the same length when both are given, "
                             f"got s={s_in} and dim={dims_in} for an input of shape "
                             f"{fmt_shape(shape)}")
    else:
        if len(s_in) > nd:
            raise ValueError(f"{op}: s={s_in} has {len(s_in)} values but the input has only "
                             f"{nd} dimensions (shape {fmt_shape(shape)})")
        dims = tuple(range(nd - len(s_in), nd))
    sizes = []
    for v in s_in:
        v = _int(op, v, "each entry of s")
        sizes.append(None if v == -1 else _points(op, v, f"s={s_in}"))
    return dims, sizes, s_in


def _filled(op: str, x: Tensor, dims, sizes) -> list:
    """``sizes`` with the input's size where none was asked, each checked."""
    shape = x._data.shape
    out = []
    for d, n in zip(dims, sizes):
        if n is None:
            n = shape[d]
            if n < 1:
                _points(op, n, f"dim {d} of the input (shape {fmt_shape(shape)}) is empty; "
                               f"pass s to transform a zero-padded signal")
        out.append(n)
    return out


def _resize(x: Tensor, d: int, n: int) -> Tensor:
    """``x`` trimmed or zero-padded to ``n`` entries along ``d`` (recorded for autograd)."""
    size = x._data.shape[d]
    if n == size:
        return x
    if n < size:
        return narrow(x, d, 0, n)
    shape = list(x._data.shape)
    shape[d] = n - size
    return cat([x, zeros(tuple(shape), dtype=x._dtype, device=x._device)], d)


def _resize_all(x: Tensor, dims, sizes) -> Tensor:
    for d, n in zip(dims, sizes):
        x = _resize(x, d, n)
    return x


def _halved_last(dims) -> tuple:
    """Kernel dims of r2c / c2r: the others sorted, the halved (user's last) dim last."""
    return tuple(sorted(dims[:-1])) + (dims[-1],)


# ------------------------------------------------------------------ the transforms ---
def _c2c_1d(op, input, n, dim, norm, forward):
    x = _input(op, input)
    norm = _norm(op, norm)
    d = _dim(op, x, dim)
    n = _signal(op, x, d, n)
    if x._dtype.kind == "c":
        return c2c(_resize(x, d, n), (d,), norm, forward)
    x = _resize(_as_real(op, x, ""), d, n)
    if forward:  # a real signal: the full spectrum straight from the real data (as PyTorch)
        return r2c(x, (d,), norm, False)
    return c2c(_as_complex(x), (d,), norm, False)


def _c2c_nd(op, input, s, dim, norm, forward):
    x = _input(op, input)
    norm = _norm(op, norm)
    dims, sizes, _ = _nd(op, x, s, dim)
    sizes = _filled(op, x, dims, sizes)
    if not dims:  # nothing to transform (a 0-d input, or dim=()): the input as complex
        return clone(_as_complex(x))
    real = x._dtype.kind != "c"
    if real:
        x = _as_real(op, x, "")
    x = _resize_all(x, dims, sizes)
    order = tuple(sorted(dims))
    if real and forward:
        return r2c(x, order, norm, False)
    return c2c(_as_complex(x), order, norm, forward)


_RFFT_FIX = "use fft.fft / fft.fftn for complex input (or transform x.real)"


def _r2c_1d(op, input, n, dim, norm, hermitian):
    x = _input(op, input)
    norm = _norm(op, norm)
    x = _as_real(op, x, _RFFT_FIX)
    d = _dim(op, x, dim)
    x = _resize(x, d, _signal(op, x, d, n))
    if hermitian:  # ihfft = conj(rfft) with the inverse's normalisation
        return conj(r2c(x, (d,), SWAP[norm], True))
    return r2c(x, (d,), norm, True)


def _r2c_nd(op, input, s, dim, norm, hermitian=False):
    x = _input(op, input)
    norm = _norm(op, norm)
    x = _as_real(op, x, _RFFT_FIX)
    dims, sizes, _ = _nd(op, x, s, dim)
    if not dims:
        raise ValueError(f"{op}: must transform at least one dimension, got dim=() for an "
                         f"input of shape {fmt_shape(x._data.shape)}")
    sizes = _filled(op, x, dims, sizes)
    x = _resize_all(x, dims, sizes)
    if hermitian:  # ihfftn = conj(rfftn) with the inverse's normalisation, as ihfft
        return conj(r2c(x, _halved_last(dims), SWAP[norm], True))
    return r2c(x, _halved_last(dims), norm, True)


def _c2r_1d(op, input, n, dim, norm, hermitian):
    x = _as_complex(_input(op, input))
    norm = _norm(op, norm)
    d = _dim(op, x, dim)
    last = _half_signal(op, x, d, n)
    x = _resize(x, d, last // 2 + 1)
    if hermitian:  # hfft = irfft of the conjugate with the forward's normalisation
        return c2r(conj(x), (d,), SWAP[norm], last)
    return c2r(x, (d,), norm, last)


def _c2r_nd(op, input, s, dim, norm, hermitian=False):
    x = _as_complex(_input(op, input))
    norm = _norm(op, norm)
    dims, sizes, _ = _nd(op, x, s, dim)
    if not dims:
        raise ValueError(f"{op}: must transform at least one dimension, got dim=() for an "
                         f"input of shape {fmt_shape(x._data.shape)}")
    last = sizes[-1] if sizes[-1] is not None else _half_signal(op, x, dims[-1], None)
    sizes = _filled(op, x, dims[:-1], sizes[:-1]) + [last // 2 + 1]
    x = _resize_all(x, dims, sizes)
    if hermitian:  # hfftn = irfftn of the conjugate with the forward's normalisation, as hfft
        return c2r(conj(x), _halved_last(dims), SWAP[norm], last)
    return c2r(x, _halved_last(dims), norm, last)


_DTYPES_DOC = """
    Complex inputs keep their dtype; real inputs are promoted to complex: float32 to
    complex64, float64 to complex128, float16 to complex64 (computed in float32; PyTorch
    refuses float16 on the CPU), integers and bool to the complex dtype of the default float
    dtype (complex64 with float32), as ``torch.fft``."""

_NORM_DOC = """norm : {None, "backward", "ortho", "forward"}, optional
        Normalisation: ``"backward"`` (the default, also for None) scales only the inverse
        transform by ``1/n``, ``"forward"`` only the forward one, ``"ortho"`` both by
        ``1/sqrt(n)``, ``n`` being the number of points transformed (their product for several
        dims)."""


def _doc(text: str) -> str:
    return text.replace("{dtypes}", _DTYPES_DOC.strip("\n")).replace("{norm}", _NORM_DOC)


def fft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _c2c_1d("fft.fft", input, n, dim, norm, True)


def ifft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _c2c_1d("fft.ifft", input, n, dim, norm, False)


def fftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2c_nd("fft.fftn", input, s, dim, norm, True)


def ifftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2c_nd("fft.ifftn", input, s, dim, norm, False)


def fft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2c_nd("fft.fft2", input, s, dim, norm, True)


def ifft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2c_nd("fft.ifft2", input, s, dim, norm, False)


def rfft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _r2c_1d("fft.rfft", input, n, dim, norm, False)


def ihfft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _r2c_1d("fft.ihfft", input, n, dim, norm, True)


def rfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _r2c_nd("fft.rfftn", input, s, dim, norm)


def rfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _r2c_nd("fft.rfft2", input, s, dim, norm)


def irfft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _c2r_1d("fft.irfft", input, n, dim, norm, False)


def hfft(input, n=None, dim=-1, norm=None) -> Tensor:
    return _c2r_1d("fft.hfft", input, n, dim, norm, True)


def irfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2r_nd("fft.irfftn", input, s, dim, norm)


def irfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2r_nd("fft.irfft2", input, s, dim, norm)


def hfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2r_nd("fft.hfftn", input, s, dim, norm, True)


def hfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2r_nd("fft.hfft2", input, s, dim, norm, True)


def ihfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _r2c_nd("fft.ihfftn", input, s, dim, norm, True)


def ihfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _r2c_nd("fft.ihfft2", input, s, dim, norm, True)


_ONE_D = """
    Parameters
    ----------
    input : Tensor
        The signal.
    n : int, optional
        The signal length: ``input`` is zero-padded or trimmed to ``n`` points along ``dim``
        first.  Default: its size there.
    dim : int, optional
        The dimension transformed (default: the last).
    {norm}
"""

fft.__doc__ = _doc("""The one-dimensional discrete Fourier transform of ``input`` along ``dim``
    (``torch.fft.fft``): ``X[k] = sum_j x[j] exp(-2 pi i j k / n)``.
""" + _ONE_D + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with ``n`` points along ``dim``.

    Notes
    -----
{dtypes}
    """)
ifft.__doc__ = _doc("""The one-dimensional inverse discrete Fourier transform along ``dim``
    (``torch.fft.ifft``): ``x[j] = 1/n sum_k X[k] exp(2 pi i j k / n)`` with the default norm.
""" + _ONE_D + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with ``n`` points along ``dim``.

    Notes
    -----
{dtypes}
    """)

_N_D = """
    Parameters
    ----------
    input : Tensor
        The signal.
    s : sequence of int, optional
        The signal size in each transformed dim: ``input`` is zero-padded or trimmed to it;
        ``-1`` keeps a dim's size.  Without ``dim``, ``s`` applies to the last ``len(s)``
        dims.
    dim : int or sequence of int, optional
        The dims transformed (default: {default}).
    {norm}
"""

fftn.__doc__ = _doc("""The n-dimensional discrete Fourier transform (``torch.fft.fftn``): the
    one-dimensional transform along each of ``dim``.
""" + _N_D.replace("{default}", "all of them, or the last ``len(s)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``.  With no dim to transform (a 0-d
        input, ``dim=()``) the input converted to complex.

    Notes
    -----
{dtypes}
    """)
ifftn.__doc__ = _doc("""The n-dimensional inverse discrete Fourier transform
    (``torch.fft.ifftn``).
""" + _N_D.replace("{default}", "all of them, or the last ``len(s)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``.

    Notes
    -----
{dtypes}
    """)
fft2.__doc__ = _doc("""The two-dimensional discrete Fourier transform (``torch.fft.fft2``):
    :func:`fftn` over the last two dims by default.
""" + _N_D.replace("{default}", "``(-2, -1)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``.

    Notes
    -----
{dtypes}
    """)
ifft2.__doc__ = _doc("""The two-dimensional inverse discrete Fourier transform
    (``torch.fft.ifft2``): :func:`ifftn` over the last two dims by default.
""" + _N_D.replace("{default}", "``(-2, -1)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``.

    Notes
    -----
{dtypes}
    """)

_REAL_IN = """
    Notes
    -----
    ``input`` must be real (a complex one raises ``TypeError``): float32 gives complex64,
    float64 complex128, float16 complex64 (computed in float32), integers and bool the complex
    dtype of the default float dtype.
    """

rfft.__doc__ = _doc("""The discrete Fourier transform of a real signal along ``dim``
    (``torch.fft.rfft``): the ``n // 2 + 1`` non-negative frequencies of :func:`fft` (the
    others are their complex conjugates).
""" + _ONE_D + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with ``n // 2 + 1`` entries along ``dim``.
""" + _REAL_IN)
ihfft.__doc__ = _doc("""The inverse of :func:`hfft` (``torch.fft.ihfft``): the ``n // 2 + 1``
    non-negative frequencies of the inverse transform :func:`ifft` of a real signal.
""" + _ONE_D + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with ``n // 2 + 1`` entries along ``dim``.
""" + _REAL_IN)
rfftn.__doc__ = _doc("""The n-dimensional discrete Fourier transform of a real signal
    (``torch.fft.rfftn``): :func:`fftn` with only the non-negative frequencies of the last
    transformed dim (the last of ``dim``).
""" + _N_D.replace("{default}", "all of them, or the last ``len(s)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``, except ``s[-1] // 2 + 1``
        entries along the last of ``dim``.
""" + _REAL_IN)
rfft2.__doc__ = _doc("""The two-dimensional discrete Fourier transform of a real signal
    (``torch.fft.rfft2``): :func:`rfftn` over the last two dims by default.
""" + _N_D.replace("{default}", "``(-2, -1)``") + """
    Returns
    -------
    Tensor
        Complex, with ``s[-1] // 2 + 1`` entries along the last of ``dim``.
""" + _REAL_IN)

_C2R_1D = """
    Parameters
    ----------
    input : Tensor
        The half-spectrum.
    n : int, optional
        The output length along ``dim``; ``input`` is zero-padded or trimmed to ``n // 2 + 1``
        entries there first.  Default: ``2 * (m - 1)`` for ``m`` input entries (an even
        length: pass ``n`` for an odd one).
    dim : int, optional
        The dimension transformed (default: the last).
    {norm}

    Returns
    -------
    Tensor
        Real, of ``input``'s shape with ``n`` entries along ``dim``: float32 for complex64 and
        float16 input, float64 for complex128, the default float dtype for integers and bool.
        Real inputs are treated as complex ones.  The imaginary parts of the zero-frequency
        entry (and the Nyquist one for even ``n``) are ignored: a real result cannot hold them.
    """

irfft.__doc__ = _doc("""The inverse of :func:`rfft` (``torch.fft.irfft``): the real signal
    whose non-negative frequencies ``input`` holds.
""" + _C2R_1D)
hfft.__doc__ = _doc("""The discrete Fourier transform of a Hermitian-symmetric signal given by
    its first half (``torch.fft.hfft``): a real spectrum, the inverse of :func:`ihfft`.
""" + _C2R_1D.replace("The half-spectrum", "The first half of the Hermitian signal"))

_C2R_ND = """
    Parameters
    ----------
    input : Tensor
        The half-spectrum: its last transformed dim holds the non-negative frequencies.
    s : sequence of int, optional
        The output size in each transformed dim; ``input`` is zero-padded or trimmed to it
        (to ``s[-1] // 2 + 1`` along the last dim); ``-1`` keeps a dim's size (the default
        size ``2 * (m - 1)`` along the last dim).  Without ``dim``, ``s`` applies to the last
        ``len(s)`` dims.
    dim : int or sequence of int, optional
        The dims transformed (default: {default}).
    {norm}

    Returns
    -------
    Tensor
        Real: float32 for complex64 and float16 input, float64 for complex128, the default
        float dtype for integers and bool (real inputs are treated as complex ones).
    """

irfftn.__doc__ = _doc("""The inverse of :func:`rfftn` (``torch.fft.irfftn``).
""" + _C2R_ND.replace("{default}", "all of them, or the last ``len(s)``"))
irfft2.__doc__ = _doc("""The inverse of :func:`rfft2` (``torch.fft.irfft2``): :func:`irfftn`
    over the last two dims by default.
""" + _C2R_ND.replace("{default}", "``(-2, -1)``"))

_HERM_IN = "The first half of the Hermitian signal: its last transformed dim holds the " \
           "non-negative\n        indices, the others all of them"
hfftn.__doc__ = _doc("""The n-dimensional discrete Fourier transform of a Hermitian-symmetric
    signal given by its first half along the last transformed dim (``torch.fft.hfftn``): a
    real spectrum, the inverse of :func:`ihfftn`; :func:`irfftn` of the conjugate with the
    normalisation of the forward transform.
""" + _C2R_ND.replace("{default}", "all of them, or the last ``len(s)``").replace(
    "The half-spectrum: its last transformed dim holds the non-negative frequencies", _HERM_IN))
hfft2.__doc__ = _doc("""The two-dimensional discrete Fourier transform of a Hermitian-symmetric
    signal (``torch.fft.hfft2``): :func:`hfftn` over the last two dims by default.
""" + _C2R_ND.replace("{default}", "``(-2, -1)``").replace(
    "The half-spectrum: its last transformed dim holds the non-negative frequencies", _HERM_IN))
ihfftn.__doc__ = _doc("""The inverse of :func:`hfftn` (``torch.fft.ihfftn``): the n-dimensional
    inverse discrete Fourier transform of a real signal, keeping the ``s[-1] // 2 + 1``
    non-negative frequencies of the last transformed dim (``conj(rfftn(x)) / n`` with the
    default norm).
""" + _N_D.replace("{default}", "all of them, or the last ``len(s)``") + """
    Returns
    -------
    Tensor
        Complex, of ``input``'s shape with the sizes of ``s``, except ``s[-1] // 2 + 1``
        entries along the last of ``dim``.
""" + _REAL_IN)
ihfft2.__doc__ = _doc("""The inverse of :func:`hfft2` (``torch.fft.ihfft2``): :func:`ihfftn`
    over the last two dims by default.
""" + _N_D.replace("{default}", "``(-2, -1)``") + """
    Returns
    -------
    Tensor
        Complex, with ``s[-1] // 2 + 1`` entries along the last of ``dim``.
""" + _REAL_IN)


# --------------------------------------------------------------------- helpers ---
def _shift_dims(op: str, x: Tensor, dim) -> tuple:
    if dim is None:
        return tuple(range(len(x._data.shape)))
    return tuple(_dim(op, x, d) for d in (dim if isinstance(dim, _SEQ) else (dim,)))


def fftshift(input, dim=None) -> Tensor:
    """Move the zero-frequency entry to the centre (``torch.fft.fftshift``): a roll by
    ``size // 2`` along each of ``dim``.

    Parameters
    ----------
    input : Tensor
        A spectrum in the order of :func:`fft` (any dtype).
    dim : int or sequence of int, optional
        The dims to shift (default: all).

    Returns
    -------
    Tensor
        ``input`` rolled; :func:`ifftshift` undoes it.
    """
    x = _input("fft.fftshift", input)
    dims = _shift_dims("fft.fftshift", x, dim)
    if not dims:
        return clone(x)
    shape = x._data.shape
    return roll(x, tuple(shape[d] // 2 for d in dims), dims)


def ifftshift(input, dim=None) -> Tensor:
    """The inverse of :func:`fftshift` (``torch.fft.ifftshift``): a roll by ``-(size // 2)``
    along each of ``dim`` (the same as fftshift for even sizes).

    Parameters
    ----------
    input : Tensor
        A spectrum with its zero frequency in the centre (any dtype).
    dim : int or sequence of int, optional
        The dims to shift (default: all).

    Returns
    -------
    Tensor
        ``input`` rolled back to the order of :func:`fft`.
    """
    x = _input("fft.ifftshift", input)
    dims = _shift_dims("fft.ifftshift", x, dim)
    if not dims:
        return clone(x)
    shape = x._data.shape
    return roll(x, tuple(-(shape[d] // 2) for d in dims), dims)


def _freq_args(op: str, n, d, dtype):
    n = _int(op, n, "n")
    if n < 0:
        raise ValueError(f"{op}: n must be non-negative (the number of samples), got {n}")
    if isinstance(d, builtins.bool) or not isinstance(d, numbers.Real):
        raise TypeError(f"{op}: d must be a real number (the sample spacing), got "
                        f"{type(d).__name__} {d!r}")
    if d == 0:
        raise ValueError(f"{op}: the sample spacing d must be nonzero, got {d!r}")
    dt = _dt.get_default_dtype() if dtype is None else _dt.to_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{op}: dtype must be a floating-point dtype, got {dt.name}; e.g. "
                        f"dtype=polyten.float32")
    return n, builtins.float(d), dt


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of :func:`fft` for a signal of ``n`` samples spaced ``d`` apart
    (``torch.fft.fftfreq``): ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``.

    Parameters
    ----------
    n : int
        The signal length (``0`` gives an empty tensor).
    d : float, optional
        The sample spacing (the inverse of the sampling rate), nonzero; default 1.
    dtype : polyten.dtype, optional
        A floating-point dtype (default: the default float dtype).
    device : str or polyten.device, optional
        Default: the current backend.
    requires_grad : bool, optional
        Whether the result is a leaf that requires grad.

    Returns
    -------
    Tensor
        The ``n`` frequencies, in cycles per unit of ``d``, in the order of :func:`fft`'s
        output.
    """
    op = "fft.fftfreq"
    n, d, dt = _freq_args(op, n, d, dtype)
    pos = arange(0, (n + 1) // 2, dtype=dt, device=device)
    neg = arange(-(n // 2), 0, dtype=dt, device=device)
    # the reciprocal times the integers, as torch and numpy compute it (the same roundings)
    out = cat([pos, neg]) * (1.0 / (n * d)) if n else cat([pos, neg])
    if requires_grad:
        out.requires_grad_(True)
    return out


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of :func:`rfft` for a signal of ``n`` samples spaced ``d``
    apart (``torch.fft.rfftfreq``): ``[0, 1, ..., n // 2] / (d * n)``.

    Parameters
    ----------
    n : int
        The signal length, at least 1.
    d : float, optional
        The sample spacing (the inverse of the sampling rate), nonzero; default 1.
    dtype : polyten.dtype, optional
        A floating-point dtype (default: the default float dtype).
    device : str or polyten.device, optional
        Default: the current backend.
    requires_grad : bool, optional
        Whether the result is a leaf that requires grad.

    Returns
    -------
    Tensor
        The ``n // 2 + 1`` non-negative frequencies, in cycles per unit of ``d``.
    """
    op = "fft.rfftfreq"
    n, d, dt = _freq_args(op, n, d, dtype)
    if n < 1:
        raise ValueError(f"{op}: n must be at least 1 (a signal of no samples has no "
                         f"frequencies), got {n}")
    out = arange(0, n // 2 + 1, dtype=dt, device=device) * (1.0 / (n * d))
    if requires_grad:
        out.requires_grad_(True)
    return out
