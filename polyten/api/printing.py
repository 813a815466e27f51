"""``repr``/``str`` of tensors in PyTorch 2.x's format, and the print options.

``tensor([ 2.7183,  7.3891, 20.0855])``: numbers right-aligned to a common width, ``int mode``
for floats that are all integral (``tensor([1., 2.])``), scientific notation when the values
span more than three orders of magnitude (or exceed 1e8, or go below 1e-4), summaries with
``...`` past ``threshold`` elements, and suffixes for what is not the default: ``device=``,
``size=`` (empty tensors), ``dtype=``, ``grad_fn=`` / ``requires_grad=True``.

The algorithm follows ``torch._tensor_str`` step by step so that outputs match character for
character.  Values are read on the host (NumPy, imported lazily); a summarised tensor is first
cut down on its own device to the rows and columns that are shown.
"""

from __future__ import annotations

import contextlib
import math

from ..dispatch.dispatcher import kernels
from . import dtypes as _dt
from .context import default_device

__all__ = ["set_printoptions", "get_printoptions", "printoptions"]

_to_host = kernels("to_host")
_getitem = kernels("getitem")
_asarray = kernels("asarray")


class _PrintOptions:
    __slots__ = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")

    def __init__(self):
        self.precision = 4
        self.threshold = 1000
        self.edgeitems = 3
        self.linewidth = 80
        self.sci_mode = None


PRINT_OPTS = _PrintOptions()
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80),
             "full": (4, math.inf, 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """Set how tensors print (``torch.set_printoptions``).

    Parameters
    ----------
    precision : int
        Digits after the decimal point (default 4).
    threshold : int
        Tensors with more elements are summarised with ``...`` (default 1000).
    edgeitems : int
        Items shown at each end of a summarised dimension (default 3).
    linewidth : int
        Characters per line before wrapping (default 80).
    profile : {"default", "short", "full"}
        Presets; the other arguments override them.
    sci_mode : bool or None
        Force (True) or forbid (False) scientific notation; None (the default, and what every
        call without it restores) lets the values decide.
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; use one of "
                             f"{', '.join(map(repr, _PROFILES))}")
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = _PROFILES[profile]
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                (name != "threshold" and not float(value).is_integer()):
            raise ValueError(f"set_printoptions: {name} must be a non-negative "
                             f"{'number' if name == 'threshold' else 'int'}, got {value!r}")
        setattr(PRINT_OPTS, name, value if name == "threshold" else int(value))
    if sci_mode is not None and not isinstance(sci_mode, bool):
        raise ValueError(f"set_printoptions: sci_mode must be True, False or None, got "
                         f"{sci_mode!r}")
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict:
    """The current print options, as keyword arguments for :func:`set_printoptions`."""
    return {name: getattr(PRINT_OPTS, name) for name in _PrintOptions.__slots__}


@contextlib.contextmanager
def printoptions(**kwargs):
    """Context manager: print options of :func:`set_printoptions` inside the block only."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


# ----------------------------------------------------------------------------- formatting --
class _Formatter:
    """Width and style (int mode / fixed / scientific) of one real component of a tensor."""

    def __init__(self, values, floating: bool):
        import numpy as np
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        p = PRINT_OPTS.precision
        if not floating:
            if values.size:
                self.max_width = max(1, max(len(f"{v}") for v in values.tolist()))
            return
        values = values.astype(np.float64, copy=False)
        nz = values[np.isfinite(values) & (values != 0)]
        if nz.size == 0:
            return
        absv = np.abs(nz)
        lo, hi = float(absv.min()), float(absv.max())
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        self.sci_mode = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) \
            if PRINT_OPTS.sci_mode is None else PRINT_OPTS.sci_mode
        vals = nz.tolist()
        if self.sci_mode:
            self.max_width = max(len(f"{v:.{p}e}") for v in vals)
        elif self.int_mode:
            self.max_width = max(len(f"{v:.0f}") + 1 for v in vals)
        else:
            self.max_width = max(len(f"{v:.{p}f}") for v in vals)

    def width(self) -> int:
        return self.max_width

    def format(self, value) -> str:
        if self.floating:
            p = PRINT_OPTS.precision
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{p}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{p}f}"
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _complex_str(val, f1, f2) -> str:
    real = f1.format(val.real)
    imag = (f2.format(val.imag) + "j").lstrip()
    # a sign of its own (negative numbers, -0.0) needs no "+"
    if imag[0] in "+-":
        return real + imag
    return real + "+" + imag


def _vector_str(a, indent, summarize, f1, f2) -> str:
    element_length = f1.width() + 2
    if f2 is not None:
        element_length += f2.width() + 1
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / element_length))
    fmt = f1.format if f2 is None else (lambda v: _complex_str(v, f1, f2))
    edge = PRINT_OPTS.edgeitems
    if summarize and not edge:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * edge:
        data = ([fmt(v) for v in a[:edge].tolist()] + [" ..."]
                + [fmt(v) for v in a[-edge:].tolist()])
    else:
        data = [fmt(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a, indent, summarize, f1, f2) -> str:
    dim = a.ndim
    if dim == 0:
        v = a.item()
        return f1.format(v) if f2 is None else _complex_str(v, f1, f2)
    if dim == 1:
        return _vector_str(a, indent, summarize, f1, f2)
    edge = PRINT_OPTS.edgeitems
    n = a.shape[0]
    if summarize and n > 2 * edge:
        slices = ([_tensor_str_with_formatter(a[i], indent + 1, summarize, f1, f2)
                   for i in range(edge)] + ["..."]
                  + [_tensor_str_with_formatter(a[i], indent + 1, summarize, f1, f2)
                     for i in range(n - edge, n)])
    else:
        slices = [_tensor_str_with_formatter(a[i], indent + 1, summarize, f1, f2)
                  for i in range(n)]
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _summarized_data(a):
    """The elements a summary shows (``torch._tensor_str.get_summarized_data``)."""
    import numpy as np
    edge = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate((a[:edge], a[-edge:])) if a.shape[0] > 2 * edge else a
    if not edge:
        return np.empty((0,) * a.ndim, a.dtype)
    n = a.shape[0]
    rows = list(range(edge)) + list(range(n - edge, n)) if n > 2 * edge else range(n)
    return np.stack([_summarized_data(a[i]) for i in rows])


def _tensor_str(host, indent, summarize) -> str:
    if host.dtype.kind == "c":
        data = _summarized_data(host) if summarize else host
        f1 = _Formatter(data.real.reshape(-1), True)
        f2 = _Formatter(data.imag.reshape(-1), True)
        return _tensor_str_with_formatter(host, indent, summarize, f1, f2)
    data = _summarized_data(host) if summarize else host
    f = _Formatter(data.reshape(-1), host.dtype.kind == "f")
    return _tensor_str_with_formatter(host, indent, summarize, f, None)


def _shown_host(t, summarize):
    """The tensor's values on the host; for a summary only the shown edges (plus one hidden
    middle element per long dimension, so that the layout still sees it as long)."""
    import numpy as np
    x = t._data
    dev = t._device
    b = dev.backend
    if summarize:
        edge = PRINT_OPTS.edgeitems
        shape = tuple(x.shape)
        for d in sorted(range(len(shape)), key=lambda i: -shape[i]):
            n = shape[d]
            if n > 2 * edge + 1:
                idx = list(range(edge + 1)) + list(range(n - edge, n))
                key = (slice(None),) * d + (_asarray[b](idx, "int64", True, dev.index),)
                x = _getitem[b](x, key)
    host = np.asarray(_to_host[b](x))
    if host.dtype.name == "bfloat16":  # ml_dtypes' scalars print in full; float32 is exact
        host = host.astype(np.float32)
    return host


def _add_suffixes(tensor_str, suffixes, indent) -> str:
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        n = len(suffix)
        if last_line_len + n + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + n
        else:
            parts.append(", " + suffix)
            last_line_len += n + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(t) -> str:
    """``repr(t)``: PyTorch's format with ``polyten.`` dtype names."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if t._device != default_device():
        suffixes.append(f"device='{t._device}'")
    dt = t._dtype
    default = _dt.get_default_dtype()
    default_complex = _dt.complex128 if default is _dt.float64 else _dt.complex64
    shape = tuple(t._data.shape)
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:
        if len(shape) != 1:
            suffixes.append(f"size={shape}")
        if dt is not default:
            suffixes.append(f"dtype=polyten.{dt.name}")
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={shape}")
        if dt not in (default, default_complex, _dt.int64, _dt.bool):
            suffixes.append(f"dtype=polyten.{dt.name}")
        summarize = numel > PRINT_OPTS.threshold
        body = _tensor_str(_shown_host(t, summarize), indent, summarize)
    ag = t._ag
    grad_fn = None if ag is None else ag.grad_fn
    if grad_fn is not None:
        name = getattr(grad_fn, "name", None)
        name = name() if callable(name) else type(grad_fn).__name__
        suffixes.append(f"grad_fn=<{name}>")
    elif ag is not None and ag.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
