"""Functions that polyten has for the Python Array API standard (2024.12) alone.

polyten's top-level namespace is an Array API namespace (``x.__array_namespace__()`` is
``polyten``, ``polyten.__array_api_version__ == "2024.12"``) alongside the PyTorch names: most
functions serve both spellings and live in their area's module (``polyten.sum(x, axis=0,
keepdims=True)``, ``polyten.concat``, ``polyten.unique_values``, ``polyten.searchsorted``,
``polyten.isin``, ``polyten.nextafter`` ...).  This module holds the few with no better home:
:func:`astype`, :func:`diff`, the top-level :func:`matrix_transpose` and ``Tensor.to_device``.

Where the two standards disagree polyten keeps PyTorch's behaviour and the Array API spelling
still works (each function's docstring says so):

* ``sort`` returns ``(values, indices)``: use ``sort(x).values`` (``argsort`` as the standard);
* ``nonzero(x)`` is a 2-D ``(n, ndim)`` tensor: ``nonzero(x, as_tuple=True)`` is the
  standard's tuple of index tensors;
* ``var`` / ``std`` default to ``correction=1``: pass ``correction=0`` for the standard's
  default;
* ``unique`` returns the values only by default: ``unique_values`` / ``unique_counts`` /
  ``unique_inverse`` / ``unique_all`` are the standard's;
* ``meshgrid`` defaults to ``indexing='ij'``: pass ``indexing='xy'``;
* ``sort`` / ``argsort`` default to ``stable=False`` (PyTorch; polyten's cpu sort is stable
  anyway): pass ``stable=True`` to be sure;
* ``x.size`` is PyTorch's method (``x.size()``), not the standard's attribute: ``x.numel()``;
* ``can_cast`` and ``result_type`` follow PyTorch across kinds (``int64 -> float64`` can be
  cast, ``int8`` and ``float32`` promote to ``float32``), where the standard leaves mixed
  kinds unspecified;
* integer reductions accumulate in int64 (PyTorch), also for ``uint8``.

**Unsigned integers wider than 8 bits** (``uint16``, ``uint32``, ``uint64``) are not supported,
as in PyTorch's tensor API: polyten has ``uint8`` only, and ``polyten.uint16`` & co. do not
exist (``__array_namespace_info__().dtypes()`` lists what there is).  Use a wider signed dtype
(``int32`` for ``uint16``, ``int64`` for ``uint32``).
"""

from __future__ import annotations

import builtins
import operator

from . import dtypes as _dt
from ._core import (Tensor, as_operand, describe, device_mismatch, dim_or_axis, is_scalar,
                    normalize_dim, scalar_value)
from .linalg import matrix_transpose

__all__ = ["astype", "diff", "matrix_transpose"]

_FULL = slice(None)


# ---------------------------------------------------------------------------------- astype ---
def astype(x, dtype, /, *, copy=True, device=None) -> Tensor:
    """``x`` cast to ``dtype`` (Array API ``astype``).

    Parameters
    ----------
    x : Tensor
    dtype : polyten.dtype (or its name)
    copy : bool
        ``True`` (default): always a new tensor.  ``False``: ``x`` itself when it already has
        ``dtype`` (and is on ``device``), else a new tensor.
    device : device, optional
        Also move the result to this device (``x.to(device, dtype)``).

    Casting rules are PyTorch's (float -> int truncates toward zero, -> bool tests for
    non-zero); casting a complex tensor to a real dtype is refused, as the standard asks
    (take ``x.real``, ``x.imag`` or ``x.abs()`` first).
    """
    op = "astype"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")
    try:
        dt = _dt.to_dtype(dtype)
    except TypeError:
        hint = (" (unsigned integers wider than 8 bits are not supported, as in PyTorch: use "
                "a wider signed dtype)") if str(dtype).rsplit(".", 1)[-1] in (
                    "uint16", "uint32", "uint64") else ""
        raise TypeError(f"{op}: {dtype!r} is not a polyten dtype{hint}; use one of "
                        f"{', '.join('polyten.' + n for n in _dt.DTYPES)}") from None
    if x._dtype.is_complex and not dt.is_complex:
        raise TypeError(f"{op}: casting {x._dtype.name} to {dt.name} is not allowed (the Array "
                        f"API forbids dropping the imaginary part implicitly); use x.real, "
                        f"x.imag or x.abs() first")
    if not isinstance(copy, builtins.bool):
        raise TypeError(f"{op}: copy must be True or False, got {describe(copy)}")
    # Tensor.to is the one cast-and-move path (it records the cast for autograd); it returns
    # x itself when nothing changes and copy is False
    if device is None:
        return x.to(dt, copy=copy)
    return x.to(device, dt, copy=copy)


# ------------------------------------------------------------------------------------ diff ---
def diff(x, /, n=1, dim=None, prepend=None, append=None, *, axis=None) -> Tensor:
    """The ``n``-th forward difference along a dim: ``out[i] = x[i+1] - x[i]``, ``n`` times.

    Both the Array API form ``diff(x, axis=-1, n=1, prepend=None, append=None)`` and
    PyTorch's ``diff(input, n=1, dim=-1, prepend=None, append=None)`` work.

    Parameters
    ----------
    x : Tensor
        At least 1-D.  For bool tensors the difference is ``!=`` (``logical_xor``), as in
        PyTorch and NumPy.
    n : int
        Non-negative; ``n = 0`` returns a copy of the (prepended / appended) input.  The
        size along the dim shrinks by ``n`` (to no less than 0).
    dim, axis : int
        The dim (default the last).
    prepend, append : Tensor or number, optional
        Values joined to ``x`` along the dim before differencing: tensors of ``x``'s shape
        except along the dim, or numbers (one slice).  Inputs are promoted to a common dtype.
    """
    op = "diff"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(x)}")
    shape = tuple(x._data.shape)
    if not shape:
        raise ValueError(f"{op}: expected a tensor of at least 1 dimension, got a 0-d tensor; "
                         f"use x.reshape(-1)")
    d = dim_or_axis(dim, axis, op)
    d = normalize_dim(-1 if d is None else d, len(shape), op)
    if isinstance(n, builtins.bool):
        raise TypeError(f"{op}: n must be an int, got {describe(n)}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{op}: n must be an int, got {describe(n)}") from None
    if n < 0:
        raise ValueError(f"{op}: n must be non-negative, got {n}")
    dev = x._device
    extra = []
    for label, p in (("prepend", prepend), ("append", append)):
        if p is None:
            continue
        if isinstance(p, Tensor):
            if p._device is not dev:
                raise device_mismatch(op, (x, p))
        elif is_scalar(p):
            p = scalar_value(p)
        else:
            p = as_operand(p, x, op)
        if isinstance(p, Tensor):
            ps = tuple(p._data.shape)
            if len(ps) != len(shape) or ps[:d] + ps[d + 1:] != shape[:d] + shape[d + 1:]:
                raise ValueError(f"{op}: {label} must have the shape of x {_fmt(shape)} except "
                                 f"along dim {d}, got {_fmt(ps)}")
        extra.append((label, p))
    cd = _dt.result_type(x, *(p for _, p in extra))
    parts = {"prepend": None, "append": None}
    for label, p in extra:
        if isinstance(p, Tensor):
            parts[label] = p.to(cd)
        else:
            from .creation import full
            parts[label] = full(shape[:d] + (1,) + shape[d + 1:], p, dtype=cd, device=dev)
    out = x.to(cd)
    if extra:
        from .shape import cat
        out = cat([t for t in (parts["prepend"], out, parts["append"]) if t is not None], d)
    if n == 0:
        return out.clone() if out is x else out
    from .elementwise import ne, sub
    step = ne if cd is _dt.bool else sub
    head = (_FULL,) * d
    hi, lo = head + (slice(1, None),), head + (slice(None, -1),)
    size = out._data.shape[d]
    for _ in range(n):
        out = step(out[hi], out[lo])
        if size <= 1:
            break  # empty along the dim: further differences change nothing
        size -= 1
    return out


def _fmt(shape) -> str:
    from ..dispatch.errors import fmt_shape
    return fmt_shape(shape)


# --------------------------------------------------------------------------- Tensor methods ---
def to_device(self, device, /, *, stream=None) -> Tensor:
    """This tensor on ``device`` (Array API ``to_device``; ``self`` when already there).

    ``stream`` is accepted for the standard's signature; polyten's transfers are synchronous.
    """
    return self.to(device)


TENSOR_METHODS = {"diff": diff, "to_device": to_device}
