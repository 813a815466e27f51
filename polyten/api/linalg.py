"""Linear algebra: ``matmul``/``@`` and its relatives, ``einsum``, ``tensordot``, diagonals, and
the ``polyten.linalg`` namespace (``torch.linalg`` and the Array API ``linalg`` extension).

The core checks every shape and dtype here and words the errors after the user's call
(``matmul: cannot multiply (3, 4) by (5, 2): inner dimensions 4 and 5 differ``).  Operands of
different dtypes are promoted to a common dtype first (PyTorch's ``matmul`` would refuse); bool
is refused (``matmul`` needs numeric operands).  Failures that depend on the values -- a
singular matrix for ``linalg.inv``/``linalg.solve``, a matrix that is not positive-definite for
``linalg.cholesky`` -- come back from the kernel as an ``info`` array, and the core raises
:class:`LinAlgError` naming the call, the shape and the matrix of the batch.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections import namedtuple

from ..dispatch.checks import check as _value_check
from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import PolytenError, fmt_shape
from ..dispatch.optable import OPS
from . import dtypes as _dt
from ..autograd.views import note_view as _note_view
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.graph import record as _record
from ..autograd.rules import rule as _rule
from . import autocast as _amp
from ._core import (Tensor, as_operand, cast, check_inplace, describe, device_mismatch,
                    normalize_dim, wrap, _broadcast_pair)
from .elementwise import unsupported
from .reduction import (_tensor, amax as _amax, amin as _amin, any as _any, argmax as _argmax,
                        count_nonzero as _count_nonzero, return_types, sum as _sum,
                        vector_norm)

__all__ = ["matmul", "dot", "vdot", "mm", "bmm", "mv", "outer", "ger", "inner", "einsum",
           "tensordot", "trace", "diagonal", "diag", "kron", "cross", "det", "logdet",
           "slogdet", "inverse", "matrix_power", "vecdot", "LinAlgError"]

_PROMOTE = _dt._PROMOTE
_int64 = _dt.int64


class LinAlgError(PolytenError, RuntimeError):
    """A linear-algebra routine failed on the values it was given (a singular matrix, one that
    is not positive-definite); as ``torch.linalg.LinAlgError``."""


# the named tuples of the linalg routines join polyten.return_types (as torch.return_types)
_ret = return_types
_ret.slogdet = namedtuple("slogdet", ["sign", "logabsdet"])
_ret.qr = namedtuple("qr", ["Q", "R"])
_ret.eigh = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
_ret.svd = namedtuple("svd", ["U", "S", "Vh"])
for _c in (_ret.slogdet, _ret.qr, _ret.eigh, _ret.svd):
    _c.__module__ = "polyten.return_types"


def _accepted(name):
    return frozenset(_dt.DTYPES[n] for n in OPS[name].accepted)


_numeric = _accepted("matmul")

# ----------------------------------------------------------------- internal view helpers ---
_reshape_k = kernels("reshape")
_permute_k = kernels("permute")
_full_k = kernels("full")
_copy_k = kernels("copy")
_setitem_k = kernels("setitem")
_getitem_k = kernels("getitem")
_concat_k = kernels("concat")
_to_host_k = kernels("to_host")


def _grad(name, out, inputs, params=None):
    """Record ``out`` for autograd when one of ``inputs`` takes part in a graph."""
    if _grad_on():
        for t in inputs:
            if getattr(t, "_ag", None) is not None:
                _record(_rule(name), out, tuple(inputs), params)
                break
    return out


def _reshape(t, shape):
    out = wrap(_reshape_k[t._device.backend](t._data, tuple(shape)), t._device, t._dtype)
    if t._ag is not None and _grad_on():
        _record(_rule("reshape"), out, (t,))
    return out


def _permute(t, perm):
    out = wrap(_permute_k[t._device.backend](t._data, perm), t._device, t._dtype)
    if t._ag is not None and _grad_on():
        _record(_rule("permute"), out, (t,), {"dims": perm})
    return out


def _mT(t):
    """Swap the last two dims (a view)."""
    n = len(t._data.shape)
    return _permute(t, tuple(range(n - 2)) + (n - 1, n - 2))


def _zeros(shape, dt, dev):
    return wrap(_full_k[dev.backend](tuple(shape), 0, dt.name, dev.index), dev, dt)


def _eye(batch, n, dt, dev):
    """Identity matrices of shape batch + (n, n), written through a diagonal view."""
    out = _zeros(tuple(batch) + (n, n), dt, dev)
    nd = len(batch) + 2
    view = _diagonal_k[dev.backend](out._data, 0, nd - 2, nd - 1)
    _setitem_k[dev.backend](view, (Ellipsis,), 1)
    return out


# ---------------------------------------------------------------------------- operands ---
def _two(op, input, other):
    """Both operands as tensors on one device (lists / NumPy arrays are converted)."""
    if not isinstance(input, Tensor):
        if not isinstance(other, Tensor):
            raise TypeError(f"{op}(): expected tensors, got {describe(input)} and "
                            f"{describe(other)}")
        input = as_operand(input, other, op)
    elif not isinstance(other, Tensor):
        other = as_operand(other, input, op)
    if input._device is not other._device:
        raise device_mismatch(op, (input, other))
    return input, other


def _common(op, input, other, accepted=_numeric, opname="matmul"):
    """The operands' data cast to their promoted dtype, and that dtype."""
    dx, dy = input._dtype, other._dtype
    cd = dx if dx is dy else _PROMOTE[(dx, dy)]
    if cd not in accepted:
        if cd is _dt.bool and accepted is _numeric:
            raise TypeError(f"{op}: not supported for bool tensors; {op} takes numeric dtypes. "
                            f"Cast first, e.g. x.to(polyten.int64) (or x.float())")
        raise unsupported(op, OPS[opname], dx, dy)
    return (input._data if dx is cd else cast(input, cd),
            other._data if dy is cd else cast(other, cd), cd)


def _inner_error(op, sx, sy, kx, ky):
    return ValueError(f"{op}: cannot multiply {fmt_shape(sx)} by {fmt_shape(sy)}: inner "
                      f"dimensions {kx} and {ky} differ")


def _batch_shape(op, sx, sy):
    bx, by = tuple(sx[:-2]), tuple(sy[:-2])
    try:
        return _broadcast_pair(bx, by, op)
    except ValueError:
        raise ValueError(f"{op}: the batch dimensions of {fmt_shape(sx)} and {fmt_shape(sy)} "
                         f"do not broadcast: {fmt_shape(bx)} vs {fmt_shape(by)} (sizes must "
                         f"be equal, or one of them 1)") from None


# ------------------------------------------------------------------------------ matmul ---
_matmul_k = kernels("matmul")
_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere
_MATMUL_RULE = _rule("matmul")


def matmul(input, other):
    """Matrix product with NumPy/PyTorch rules: 1-D operands are vectors (a 1 is prepended
    to / appended to their shape and removed from the result), and the dims before the last
    two are batch dims that broadcast.

    Operands of different dtypes are promoted to a common dtype; integer operands are allowed;
    bool is not.  Raises ``ValueError`` naming both shapes when the inner dimensions differ or
    the batch dims do not broadcast.
    """
    if input.__class__ is not Tensor or other.__class__ is not Tensor:
        input, other = _two("matmul", input, other)
    if _AMP[0]:
        input, other = _amp.lower(input, other)
    dev = input._device
    if other._device is not dev:
        raise device_mismatch("matmul", (input, other))
    sx = input._data.shape
    sy = other._data.shape
    nx = len(sx)
    ny = len(sy)
    if nx == 0 or ny == 0:
        raise ValueError(f"matmul: both arguments need to be at least 1-D, but got shapes "
                         f"{fmt_shape(sx)} and {fmt_shape(sy)}; use * (mul) to multiply by a "
                         f"0-d tensor")
    kx = sx[-1]
    ky = sy[-2] if ny > 1 else sy[0]
    if kx != ky:
        raise _inner_error("matmul", sx, sy, kx, ky)
    if nx > 2 or ny > 2:
        _batch_shape("matmul", sx, sy)
    dx = input._dtype
    if dx is other._dtype and dx in _numeric:
        out = wrap(_matmul_k[dev.backend](input._data, other._data), dev, dx)
    else:
        xd, yd, cd = _common("matmul", input, other)
        out = wrap(_matmul_k[dev.backend](xd, yd), dev, cd)
    if (input._ag is not None or other._ag is not None) and _grad_on():
        _record(_MATMUL_RULE, out, (input, other))
    return out


def _matmul_checked(op, input, other):
    """matmul after the caller's own shape checks (mm, bmm, mv, dot)."""
    xd, yd, cd = _common(op, input, other)
    out = wrap(_matmul_k[input._device.backend](xd, yd), input._device, cd)
    if (input._ag is not None or other._ag is not None) and _grad_on():
        _record(_MATMUL_RULE, out, (input, other))
    return out


def _ndim_error(op, want, *tensors):
    got = " and ".join(fmt_shape(t._data.shape) for t in tensors)
    return ValueError(f"{op}: expected {want}, got tensors of shape {got}")


def mm(input, mat2):
    """Product of two matrices (2-D tensors only; see :func:`matmul` for batches/vectors)."""
    input, mat2 = _two("mm", input, mat2)
    if _AMP[0]:
        input, mat2 = _amp.lower(input, mat2)
    sx, sy = input._data.shape, mat2._data.shape
    if len(sx) != 2 or len(sy) != 2:
        raise _ndim_error("mm", "two 2-D tensors (matrices)", input, mat2)
    if sx[1] != sy[0]:
        raise _inner_error("mm", sx, sy, sx[1], sy[0])
    return _matmul_checked("mm", input, mat2)


def bmm(input, mat2):
    """Batched product of 3-D tensors ``(b, n, m) @ (b, m, p)``; the batch sizes must be
    equal (no broadcasting, as ``torch.bmm``)."""
    input, mat2 = _two("bmm", input, mat2)
    if _AMP[0]:
        input, mat2 = _amp.lower(input, mat2)
    sx, sy = input._data.shape, mat2._data.shape
    if len(sx) != 3 or len(sy) != 3:
        raise _ndim_error("bmm", "two 3-D tensors (batches of matrices)", input, mat2)
    if sx[0] != sy[0]:
        raise ValueError(f"bmm: batch sizes differ: {sx[0]} in {fmt_shape(sx)} and {sy[0]} in "
                         f"{fmt_shape(sy)} (bmm does not broadcast; use matmul)")
    if sx[2] != sy[1]:
        raise _inner_error("bmm", sx, sy, sx[2], sy[1])
    return _matmul_checked("bmm", input, mat2)


def mv(input, vec):
    """Matrix-vector product: a 2-D tensor times a 1-D tensor."""
    input, vec = _two("mv", input, vec)
    if _AMP[0]:
        input, vec = _amp.lower(input, vec)
    sx, sy = input._data.shape, vec._data.shape
    if len(sx) != 2 or len(sy) != 1:
        raise _ndim_error("mv", "a 2-D matrix and a 1-D vector", input, vec)
    if sx[1] != sy[0]:
        raise _inner_error("mv", sx, sy, sx[1], sy[0])
    return _matmul_checked("mv", input, vec)


def dot(input, other):
    """Inner product of two 1-D tensors of the same length (a 0-d tensor)."""
    input, other = _two("dot", input, other)
    sx, sy = input._data.shape, other._data.shape
    if len(sx) != 1 or len(sy) != 1:
        raise _ndim_error("dot", "two 1-D tensors", input, other)
    if sx[0] != sy[0]:
        raise ValueError(f"dot: the vectors have different lengths: {sx[0]} and {sy[0]} "
                         f"(shapes {fmt_shape(sx)} and {fmt_shape(sy)})")
    return _matmul_checked("dot", input, other)


def vdot(input, other):
    """``dot(conj(input), other)`` for 1-D tensors."""
    input, other = _two("vdot", input, other)
    if len(input._data.shape) != 1 or len(other._data.shape) != 1:
        raise _ndim_error("vdot", "two 1-D tensors", input, other)
    if input._dtype.is_complex:
        from .elementwise import conj
        input = conj(input)
    try:
        return dot(input, other)
    except ValueError as exc:
        raise ValueError(str(exc).replace("dot:", "vdot:", 1)) from None


def outer(input, vec2):
    """Outer product of two 1-D tensors: ``out[i, j] = input[i] * vec2[j]``."""
    input, vec2 = _two("outer", input, vec2)
    sx, sy = input._data.shape, vec2._data.shape
    if len(sx) != 1 or len(sy) != 1:
        raise _ndim_error("outer", "two 1-D tensors", input, vec2)
    from .elementwise import mul
    return mul(_reshape(input, (sx[0], 1)), _reshape(vec2, (1, sy[0])))


ger = outer


def inner(input, other):
    """Sum of products over the last dims (``torch.inner``); a 0-d operand multiplies."""
    input, other = _two("inner", input, other)
    sx, sy = input._data.shape, other._data.shape
    if not sx or not sy:
        from .elementwise import mul
        return mul(input, other)
    if sx[-1] != sy[-1]:
        raise ValueError(f"inner: the last dimensions must match, but got shapes "
                         f"{fmt_shape(sx)} and {fmt_shape(sy)} ({sx[-1]} vs {sy[-1]})")
    return tensordot(input, other, ([len(sx) - 1], [len(sy) - 1]))


# ------------------------------------------------------------------------------- einsum ---
_einsum_k = kernels("einsum")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _einsum_labels(term, where, equation):
    """The labels of one term: letters and at most one '...'."""
    labels = []
    i = 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i:i + 3] != "...":
                raise ValueError(f"einsum: invalid subscripts {term!r} in {where} of "
                                 f"{equation!r}: '.' must be part of an ellipsis '...'")
            labels.append("...")
            i += 3
            continue
        if c not in _LETTERS:
            raise ValueError(f"einsum: invalid subscript {c!r} in {where} of {equation!r}: "
                             f"subscripts are letters a-z, A-Z (and '...')")
        labels.append(c)
        i += 1
    if labels.count("...") > 1:
        raise ValueError(f"einsum: {where} of {equation!r} has more than one ellipsis '...'")
    return labels


def _einsum_plan(equation, shapes):
    """Validate ``equation`` against the operand shapes; return an explicit equation with no
    ellipsis (spelled out as spare letters) for the kernel."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {describe(equation)}")
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ValueError(f"einsum: equation {equation!r} has more than one '->'")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} has subscripts for {len(terms)} "
                         f"operand(s) but {len(shapes)} operand(s) were given")
    parsed = []
    sizes = {}
    counts = {}
    ell_shapes = []
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        labels = _einsum_labels(term, f"operand {i}", equation)
        letters = [c for c in labels if c != "..."]
        nd = len(shape)
        has_ell = len(letters) != len(labels)
        if (not has_ell and len(letters) != nd) or (has_ell and len(letters) > nd):
            raise ValueError(
                f"einsum: operand {i} has {nd} dimension(s) (shape {fmt_shape(shape)}) but its "
                f"subscripts {term!r} name {len(letters)}"
                f"{' besides the ellipsis' if has_ell else ' and no ellipsis was given'}")
        own = {}
        pos = 0
        for c in labels:
            if c == "...":
                k = nd - len(letters)
                ell_shapes.append(tuple(shape[pos:pos + k]))
                pos += k
                continue
            s = shape[pos]
            pos += 1
            if c in own and own[c] != s:
                raise ValueError(f"einsum: subscript {c!r} is repeated in operand {i} "
                                 f"({term!r}, shape {fmt_shape(shape)}) but the sizes differ: "
                                 f"{own[c]} and {s}")
            own[c] = s
            counts[c] = counts.get(c, 0) + 1
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = s
            elif s != prev and s != 1:
                raise ValueError(f"einsum: subscript {c!r} has size {s} in operand {i} (shape "
                                 f"{fmt_shape(shape)}) but size {prev} in an earlier operand "
                                 f"(sizes must be equal, or 1)")
        parsed.append(labels)
    ell = ()
    for es in ell_shapes:
        try:
            ell = _broadcast_pair(ell, es, "einsum")
        except ValueError:
            raise ValueError(f"einsum: the dimensions covered by '...' do not broadcast: "
                             f"{' vs '.join(fmt_shape(e) for e in ell_shapes)}") from None
    if arrow:
        out = _einsum_labels(rhs, "the output", equation)
        seen = set()
        for c in out:
            if c == "...":
                continue
            if c in seen:
                raise ValueError(f"einsum: output subscript {c!r} appears more than once in "
                                 f"{equation!r}")
            if c not in counts:
                raise ValueError(f"einsum: output subscript {c!r} of {equation!r} does not "
                                 f"appear in the subscripts of any operand")
            seen.add(c)
    else:
        # implicit output: the labels seen once, in alphabetical order (uppercase first),
        # after the broadcast dims of the ellipsis
        out = (["..."] if ell_shapes else []) + sorted(c for c, n in counts.items() if n == 1)
    # spell the ellipsis out with letters that no subscript uses
    spare = [c for c in _LETTERS if c not in counts]
    if len(ell) > len(spare):
        raise ValueError(f"einsum: {equation!r} needs more than 52 distinct subscripts")
    ell_letters = "".join(spare[:len(ell)])

    def spell(labels, n_ell):
        return "".join(ell_letters[len(ell) - n_ell:] if c == "..." else c for c in labels)

    ins = []
    for labels, shape in zip(parsed, shapes):
        n_letters = sum(1 for c in labels if c != "...")
        ins.append(spell(labels, len(shape) - n_letters))
    return ",".join(ins) + "->" + spell(out, len(ell))


def einsum(equation, *operands):
    """Einstein summation (``torch.einsum`` / ``numpy.einsum``).

    ``einsum("ij,jk->ik", a, b)``; the operands may also be given as one list.  Supports
    ``...`` for broadcast dims, repeated subscripts in one operand (diagonals) and the implicit
    output (no ``->``: the subscripts that appear once, in alphabetical order).  Subscripts
    of the ellipsis missing from an explicit output are summed over (as PyTorch).  The
    equation is checked against the operands first, with errors that say which operand and
    subscript is wrong.  Operands are promoted to a common dtype.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: at least one operand is required")
    if _AMP[0]:
        operands = _amp.lower(*operands)
        if operands.__class__ is not tuple:
            operands = (operands,)
    ts = []
    first = next((o for o in operands if isinstance(o, Tensor)), None)
    if first is None:
        raise TypeError("einsum: expected tensor operands, got "
                        f"{', '.join(describe(o) for o in operands)}")
    for o in operands:
        ts.append(o if isinstance(o, Tensor) else as_operand(o, first, "einsum"))
    dev = first._device
    cd = ts[0]._dtype
    for t in ts:
        if t._device is not dev:
            raise device_mismatch("einsum", ts)
        cd = _PROMOTE[(cd, t._dtype)]
    if cd not in _numeric:
        raise unsupported("einsum", OPS["einsum"], *(t._dtype for t in ts))
    plan = _einsum_plan(equation, [t._data.shape for t in ts])
    xs = [t._data if t._dtype is cd else cast(t, cd) for t in ts]
    return _grad("einsum", wrap(_einsum_k[dev.backend](plan, xs), dev, cd), ts, {"plan": plan})


# ---------------------------------------------------------------------------- tensordot ---
_tensordot_k = kernels("tensordot")


def _dim_list(op, d, nd, which):
    if isinstance(d, Tensor):
        d = d.tolist()
    if isinstance(d, (builtins.int,)) or hasattr(d, "__index__"):
        d = [d]
    out = [normalize_dim(x, nd, op) for x in d]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dims {list(d)} of the {which} tensor name a dimension twice")
    return out


def _tensordot_default(x, y, dims_x, dims_y):
    sx, sy = x._data.shape, y._data.shape
    free_x = [d for d in range(len(sx)) if d not in dims_x]
    free_y = [d for d in range(len(sy)) if d not in dims_y]
    k = 1
    for d in dims_x:
        k *= sx[d]
    m = 1
    for d in free_x:
        m *= sx[d]
    n = 1
    for d in free_y:
        n *= sy[d]
    b = x._device.backend
    xp = wrap(_permute_k[b](x._data, tuple(free_x) + tuple(dims_x)), x._device, x._dtype)
    yp = wrap(_permute_k[b](y._data, tuple(dims_y) + tuple(free_y)), y._device, y._dtype)
    r = matmul(_reshape(xp, (m, k)), _reshape(yp, (k, n)))
    return _reshape(r, tuple(sx[d] for d in free_x) + tuple(sy[d] for d in free_y))


register_default("tensordot", _tensordot_default)


def tensordot(a, b, dims=2, *, axes=None):
    """Contract ``a`` and ``b`` over dims: ``dims=n`` pairs the last ``n`` dims of ``a`` with
    the first ``n`` of ``b``; ``dims=([0, 1], [2, 0])`` pairs them explicitly.  ``axes`` is the
    Array API spelling."""
    op = "tensordot"
    a, b = _two(op, a, b)
    if axes is not None:
        dims = axes
    sx, sy = a._data.shape, b._data.shape
    if isinstance(dims, Tensor) and dims.ndim == 0:
        dims = dims.item()
    if isinstance(dims, builtins.int) or (hasattr(dims, "__index__") and
                                          not isinstance(dims, (list, tuple, Tensor))):
        n = operator.index(dims)
        if n < 0:
            raise ValueError(f"{op}: dims must be non-negative, got {n}")
        if n > len(sx) or n > len(sy):
            raise ValueError(f"{op}: dims={n} but the tensors have shapes {fmt_shape(sx)} and "
                             f"{fmt_shape(sy)}; dims can be at most the smaller ndim "
                             f"({builtins.min(len(sx), len(sy))})")
        dx = list(range(len(sx) - n, len(sx)))
        dy = list(range(n))
    else:
        try:
            da, db = dims
        except (TypeError, ValueError):
            raise TypeError(f"{op}: dims must be an int or a pair of lists of dims, got "
                            f"{dims!r}") from None
        dx = _dim_list(op, da, len(sx), "first")
        dy = _dim_list(op, db, len(sy), "second")
        if len(dx) != len(dy):
            raise ValueError(f"{op}: the two dim lists must have the same length, got {da!r} "
                             f"and {db!r}")
    for i, j in zip(dx, dy):
        if sx[i] != sy[j]:
            raise ValueError(f"{op}: contracted dimensions must match, but dimension {i} of "
                             f"the first tensor (shape {fmt_shape(sx)}) has size {sx[i]} and "
                             f"dimension {j} of the second (shape {fmt_shape(sy)}) has size "
                             f"{sy[j]}")
    xd, yd, cd = _common(op, a, b, opname="tensordot")
    dev = a._device
    k = _tensordot_k[dev.backend]
    if k is None:  # on fresh tensors (no graph): the node is recorded below
        out = _tensordot_default(wrap(xd, dev, cd), wrap(yd, dev, cd), tuple(dx), tuple(dy))
    else:
        out = wrap(k(xd, yd, tuple(dx), tuple(dy)), dev, cd)
    return _grad("tensordot", out, (a, b), {"dims_x": list(dx), "dims_y": list(dy)})


# ------------------------------------------------------------------------------ diagonal ---
_diagonal_k = kernels("diagonal")


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of ``input`` w.r.t. ``dim1`` and ``dim2``, as a view appended as the last
    dim (``torch.diagonal``); ``offset > 0`` is above the main diagonal."""
    _tensor(input, "diagonal")
    shape = input._data.shape
    if len(shape) < 2:
        raise ValueError(f"diagonal: expected a tensor of at least 2 dimensions, got shape "
                         f"{fmt_shape(shape)}")
    d1 = normalize_dim(dim1, len(shape), "diagonal")
    d2 = normalize_dim(dim2, len(shape), "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 cannot be the same dimension (both are "
                         f"{d1})")
    off = operator.index(offset)
    out = wrap(_diagonal_k[input._device.backend](input._data, off, d1, d2), input._device,
               input._dtype)
    # a view: writes through it count for the input and reach its graph (autograd/views.py)
    v = input._version
    if v is None:
        v = input._version = [0]
    out._version = v
    if _grad_on():
        _note_view(input, out, ("diagonal", (off, d1, d2)))
    return _grad("diagonal", out, (input,), {"offset": off, "dim1": d1, "dim2": d2})


def diag(input, diagonal=0):
    """``torch.diag``: for a 1-D tensor, the square matrix with it on diagonal ``diagonal``;
    for a 2-D tensor, a copy of that diagonal as a 1-D tensor."""
    _tensor(input, "diag")
    shape = input._data.shape
    k = operator.index(diagonal)
    dev = input._device
    if len(shape) == 1:
        m = shape[0] + builtins.abs(k)
        out = _zeros((m, m), input._dtype, dev)
        view = _diagonal_k[dev.backend](out._data, k, 0, 1)
        _setitem_k[dev.backend](view, (Ellipsis,), input._data)
        return _grad("diag", out, (input,), {"k": k})
    if len(shape) == 2:
        view = _diagonal_k[dev.backend](input._data, k, 0, 1)
        return _grad("diag", wrap(_copy_k[dev.backend](view), dev, input._dtype), (input,),
                     {"k": k})
    raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {fmt_shape(shape)}; use "
                     f"diagonal() for higher dimensions")


def trace(input):
    """Sum of the main diagonal of a 2-D tensor (bool/int sum in int64, as PyTorch)."""
    _tensor(input, "trace")
    if len(input._data.shape) != 2:
        raise ValueError(f"trace: expected a matrix (2-D tensor), but got a tensor of shape "
                         f"{fmt_shape(input._data.shape)}")
    return _sum(diagonal(input, 0, 0, 1))


def kron(input, other):
    """Kronecker product (``torch.kron``): for 2-D, the block matrix ``input[i, j] * other``."""
    input, other = _two("kron", input, other)
    sa, sb = input._data.shape, other._data.shape
    nd = builtins.max(len(sa), len(sb))
    sa = (1,) * (nd - len(sa)) + tuple(sa)
    sb = (1,) * (nd - len(sb)) + tuple(sb)
    from .elementwise import mul
    a = _reshape(input, [v for s in sa for v in (s, 1)])
    b = _reshape(other, [v for s in sb for v in (1, s)])
    return _reshape(mul(a, b), [x * y for x, y in zip(sa, sb)])


# --------------------------------------------------------------------------------- cross ---
_cross_k = kernels("cross")


def _cross_default(x, y, dim):
    from .elementwise import mul, sub
    b = x._device.backend

    def c(t, i):
        key = (slice(None),) * dim + (slice(i, i + 1),)
        return wrap(_getitem_k[b](t._data, key), t._device, t._dtype)

    x0, x1, x2 = c(x, 0), c(x, 1), c(x, 2)
    y0, y1, y2 = c(y, 0), c(y, 1), c(y, 2)
    parts = [sub(mul(x1, y2), mul(x2, y1)), sub(mul(x2, y0), mul(x0, y2)),
             sub(mul(x0, y1), mul(x1, y0))]
    return wrap(_concat_k[b]([p._data for p in parts], dim), x._device, parts[0]._dtype)


register_default("cross", _cross_default)


def _cross(op, input, other, dim):
    input, other = _two(op, input, other)
    sx, sy = input._data.shape, other._data.shape
    try:
        shape = _broadcast_pair(tuple(sx), tuple(sy), op)
    except ValueError:
        raise ValueError(f"{op}: the shapes {fmt_shape(sx)} and {fmt_shape(sy)} do not "
                         f"broadcast") from None
    if dim is None:  # torch.cross's (deprecated) default: the first dim of size 3
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise ValueError(f"{op}: no dimension of size 3 in the shapes {fmt_shape(sx)} and "
                             f"{fmt_shape(sy)}; the cross product needs 3-vectors")
    d = normalize_dim(dim, builtins.max(len(shape), 1), op)
    if not shape or shape[d] != 3:
        raise ValueError(f"{op}: dimension {dim} must have size 3 (3-vectors), but the inputs "
                         f"have shapes {fmt_shape(sx)} and {fmt_shape(sy)}")
    xd, yd, cd = _common(op, input, other, opname="cross")
    dev = input._device
    b = dev.backend
    if tuple(sx) != shape:
        xd = kernels("expand")[b](xd, shape)
    if tuple(sy) != shape:
        yd = kernels("expand")[b](yd, shape)
    k = _cross_k[b]
    if k is None:  # on fresh tensors (no graph): the node is recorded below
        out = _cross_default(wrap(xd, dev, cd), wrap(yd, dev, cd), d)
    else:
        out = wrap(k(xd, yd, d), dev, cd)
    return _grad("cross", out, (input, other), {"dim": d})


def cross(input, other, dim=None):
    """Cross product of 3-vectors along ``dim`` (``torch.cross``); the inputs broadcast.  With
    ``dim=None`` the first dim of size 3 is used (PyTorch's legacy default; prefer
    ``linalg.cross``, whose default is the last dim)."""
    return _cross("cross", input, other, dim)


def _linalg_cross(input, other, *, dim=-1, axis=None):
    """Cross product of 3-vectors along ``dim``/``axis`` (default the last dim)."""
    return _cross("linalg.cross", input, other, dim if axis is None else axis)


# ------------------------------------------------------------ checks for linalg routines ---
def _float_matrix(op, A, square=True, name="A"):
    _tensor(A, op)
    shape = A._data.shape
    if len(shape) < 2:
        raise ValueError(f"{op}: {name} must have at least 2 dimensions (a matrix or a batch "
                         f"of matrices), got shape {fmt_shape(shape)}")
    if square and shape[-1] != shape[-2]:
        raise ValueError(f"{op}: {name} must be batches of square matrices, but they are "
                         f"{shape[-2]} by {shape[-1]} matrices (shape {fmt_shape(shape)})")
    dt = A._dtype
    if not (dt.is_floating_point or dt.is_complex):
        raise TypeError(f"{op}: expected a floating point or complex tensor as input, got "
                        f"{dt.name}; cast first, e.g. {name}.to(polyten.float32)")
    return A


def _raise_info(op, info, A, what, hint):
    """Raise LinAlgError if the kernel's ``info`` (int32, one entry per matrix of the batch)
    marks a matrix: at once, or on a backend with deferred checks (a GPU) at the next host
    read (``polyten.dispatch.checks``), so a factorisation never waits for the device."""
    from .elementwise import ne
    bad = ne(wrap(info, A._device, _dt.int32), 0)
    shape = A._data.shape

    def error():
        batch = bad._data.shape
        if not batch:
            where = f"the input matrix of shape {fmt_shape(shape)}"
        else:
            flat = builtins.int(_argmax(bad.to(_dt.uint8)).item())
            idx = []
            for s in reversed(batch):
                idx.append(flat % s)
                flat //= s
            where = (f"matrix {tuple(reversed(idx))} of the batch (input shape "
                     f"{fmt_shape(shape)})")
        return LinAlgError(f"{op}: {where} {what}. {hint}")
    _value_check(A._device.backend, _any(bad)._data, error)


_inv_k = kernels("linalg_inv")
_solve_k = kernels("linalg_solve")
_det_k = kernels("linalg_det")
_slogdet_k = kernels("linalg_slogdet")
_cholesky_k = kernels("linalg_cholesky")
_qr_k = kernels("linalg_qr")
_eigh_k = kernels("linalg_eigh")
_svd_k = kernels("linalg_svd")
_mnorm_k = kernels("matrix_norm")


def inv(A):
    """The inverse of a square matrix (or of each matrix of a batch ``(..., n, n)``).

    Raises :class:`LinAlgError` naming the matrix when one is singular.
    """
    return _inv(A, True)[0]


def _inv(A, check: bool):
    """``(inverse, info)``; ``check`` raises (at once, or deferred on a GPU) for a singular
    matrix, else ``info`` (int32, nonzero per failed matrix) reports it."""
    _float_matrix("linalg.inv", A)
    r, info = _inv_k[A._device.backend](A._data)
    if check:
        _raise_info("linalg.inv", info, A, "is singular (its determinant is 0), so it has no "
                    "inverse", "Check the input, or use linalg.pinv for a pseudo-inverse.")
    return _grad("linalg_inv", wrap(r, A._device, A._dtype), (A,)), info


def inverse(input):
    """``torch.inverse``: :func:`polyten.linalg.inv`."""
    return inv(input)


def solve(A, B, *, left=True):
    """Solve ``A X = B`` for ``X`` (``left=False``: ``X A = B``).

    ``A`` is ``(..., n, n)``; ``B`` is ``(..., n, k)``, or a vector ``(n,)`` / a batch of vectors
    ``(..., n)`` with the batch of ``A`` (as ``torch.linalg.solve``); batch dims broadcast.
    Raises :class:`LinAlgError` when ``A`` is singular.
    """
    return _solve(A, B, left, True)[0]


def _solve(A, B, left, check: bool):
    """``(X, info)``; see :func:`_inv` for ``check``."""
    op = "linalg.solve"
    A, B = _two(op, A, B)
    _float_matrix(op, A)
    sa, sb = A._data.shape, B._data.shape
    n = sa[-1]
    if not left:
        if len(sb) < 2:
            raise ValueError(f"{op}: with left=False, B must be a matrix (..., k, n), got shape "
                             f"{fmt_shape(sb)}")
        x, info = _solve(_mT(A), _mT(B), True, check)
        return _mT(x), info
    vector = len(sb) == 1 or (len(sb) == len(sa) - 1 and tuple(sb) == tuple(sa[:-1]))
    if len(sb) == 0:
        raise ValueError(f"{op}: B must have at least 1 dimension, got a 0-d tensor")
    rows = sb[-1] if vector else sb[-2]
    if rows != n:
        raise ValueError(f"{op}: incompatible shapes of A {fmt_shape(sa)} and B "
                         f"{fmt_shape(sb)} for the equation AX = B: A is {n} by {n} but B "
                         f"has {rows} rows")
    b2 = _reshape(B, tuple(sb) + (1,)) if vector else B
    _batch_shape(op, sa, b2._data.shape)
    ad, bd, cd = _common(op, A, b2, accepted=_accepted("linalg_solve"), opname="linalg_solve")
    r, info = _solve_k[A._device.backend](ad, bd)
    if check:
        _raise_info(op, info, A, "is singular (its determinant is 0), so the system has no "
                    "unique solution", "Check the input, or use linalg.pinv(A) @ B for a "
                    "least-squares solution.")
    out = _grad("linalg_solve", wrap(r, A._device, cd), (A, b2))
    if vector:
        out = _reshape(out, out._data.shape[:-1])
    return out, info


def det(A):
    """Determinant of a square matrix, or of each matrix of a batch."""
    _float_matrix("linalg.det", A)
    return _grad("linalg_det", wrap(_det_k[A._device.backend](A._data), A._device, A._dtype),
                 (A,))


def slogdet(A):
    """``(sign, logabsdet)`` with ``det(A) = sign * exp(logabsdet)``, without overflow.

    For a singular matrix ``sign`` is 0 and ``logabsdet`` is ``-inf``.  ``sign`` has ``A``'s
    dtype (a unit complex number for complex ``A``); ``logabsdet`` is real.
    """
    _float_matrix("linalg.slogdet", A)
    s, la = _slogdet_k[A._device.backend](A._data)
    # sign is piecewise constant: only logabsdet is differentiable (as PyTorch)
    return _ret.slogdet(wrap(s, A._device, A._dtype),
                        _grad("linalg_slogdet", wrap(la, A._device, A._dtype.to_real()), (A,)))


def logdet(input):
    """``log(det(input))``: NaN for a negative determinant, ``-inf`` for a singular matrix
    (``torch.logdet``)."""
    sign, la = slogdet(input)
    from .elementwise import add, log, lt, where
    if input._dtype.is_complex:
        return add(log(sign), la)
    return where(lt(sign, 0), float("nan"), la)


def cholesky(A, *, upper=False):
    """The Cholesky factor ``L`` (lower) with ``A = L L^H`` (``upper=True``: ``U`` with
    ``A = U^H U``).  Raises :class:`LinAlgError` when a matrix is not positive-definite."""
    return _cholesky(A, upper, True)[0]


def _cholesky(A, upper, check: bool):
    """``(factor, info)``; see :func:`_inv` for ``check``."""
    _float_matrix("linalg.cholesky", A)
    r, info = _cholesky_k[A._device.backend](A._data, builtins.bool(upper))
    if check:
        _raise_info("linalg.cholesky", info, A, "is not positive-definite, so the "
                    "factorization could not be completed", "Check that the input is "
                    "symmetric (Hermitian) positive-definite.")
    return _grad("linalg_cholesky", wrap(r, A._device, A._dtype), (A,),
                 {"upper": builtins.bool(upper)}), info


def qr(A, mode="reduced"):
    """QR decomposition ``A = Q R``; ``mode`` 'reduced' (default), 'complete' or 'r' (then
    ``Q`` is an empty tensor, as PyTorch)."""
    _float_matrix("linalg.qr", A, square=False)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    q, r = _qr_k[A._device.backend](A._data, mode)
    R = wrap(r, A._device, A._dtype)
    Q = _zeros((0,), A._dtype, A._device) if q is None else wrap(q, A._device, A._dtype)
    # mode='r' records too: its backward raises, naming the fix (as PyTorch)
    _grad("linalg_qr", (None if q is None else Q, R), (A,), {"mode": mode})
    return _ret.qr(Q, R)


def _uplo(op, UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError(f"{op}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return UPLO == "U"


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending, real) and eigenvectors (the columns) of symmetric / Hermitian
    matrices; only the triangle ``UPLO`` ('L' or 'U') is read."""
    _float_matrix("linalg.eigh", A)
    w, v = _eigh_k[A._device.backend](A._data, _uplo("linalg.eigh", UPLO))
    out = (wrap(w, A._device, A._dtype.to_real()), wrap(v, A._device, A._dtype))
    _grad("linalg_eigh", out, (A,))
    return _ret.eigh(*out)


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of symmetric / Hermitian matrices, ascending (see :func:`eigh`)."""
    _float_matrix("linalg.eigvalsh", A)
    w, v = _eigh_k[A._device.backend](A._data, _uplo("linalg.eigvalsh", UPLO))
    out = wrap(w, A._device, A._dtype.to_real())
    if A._ag is not None and _grad_on():
        # eigh's node, eigenvectors included: its backward reads them as outputs of the node,
        # so a double backward sees how they move with A (as torch's eigvalsh)
        _grad("linalg_eigh", (out, wrap(v, A._device, A._dtype)), (A,))
    return out


def _finite_input(op, A, dims=(-2, -1)):
    """LinAlgError for a matrix with inf or NaN (as torch's SVD): LAPACK's SVD does not
    converge on one (NumPy raises its own error), cuSOLVER returns NaN without a word.  On a
    GPU the check is deferred to the next host read."""
    from .elementwise import isfinite
    from .reduction import all as _all
    bad = _all(isfinite(A.detach()), dim=dims).logical_not().to(_dt.int32)
    _raise_info(op, bad._data, A, "contains non-finite values (inf or NaN)",
                "The algorithm needs finite input: find where the inf or NaN came from "
                f"(polyten.isfinite(A).all(dim={tuple(dims)}) marks the good matrices)")


def svd(A, full_matrices=True, *, driver=None):
    """Singular value decomposition ``A = U diag(S) Vh``; ``S`` real and descending.

    ``full_matrices=False`` gives the reduced factors (``U`` is ``(..., m, k)``, ``Vh``
    ``(..., k, n)`` with ``k = min(m, n)``).
    """
    _float_matrix("linalg.svd", A, square=False)
    _finite_input("linalg.svd", A)
    u, s, vh = _svd_k[A._device.backend](A._data, builtins.bool(full_matrices), True)
    dev, dt = A._device, A._dtype
    out = (wrap(u, dev, dt), wrap(s, dev, dt.to_real()), wrap(vh, dev, dt))
    _grad("linalg_svd", out, (A,), {"full_matrices": builtins.bool(full_matrices)})
    return _ret.svd(*out)


def svdvals(A, *, driver=None):
    """The singular values of ``A`` (real, descending)."""
    _float_matrix("linalg.svdvals", A, square=False)
    _finite_input("linalg.svdvals", A)
    if A._ag is not None and _grad_on():
        # the singular vectors are needed for the gradient (as torch's svdvals); recorded as
        # svd's node so a double backward sees how they move with A
        u, s, vh = _svd_k[A._device.backend](A._data, False, True)
        dev, dt = A._device, A._dtype
        out = (wrap(u, dev, dt), wrap(s, dev, dt.to_real()), wrap(vh, dev, dt))
        return _grad("linalg_svd", out, (A,), {"full_matrices": False})[1]
    _, s, _ = _svd_k[A._device.backend](A._data, False, False)
    return wrap(s, A._device, A._dtype.to_real())


def _tolerance(op, S, A, atol, rtol):
    """The cut-off below which singular values count as zero (shape: batch + (1,))."""
    from .elementwise import maximum, mul
    m, n = A._data.shape[-2:]
    smax = _amax(S, -1, True)
    if rtol is None:
        rtol = 0.0 if (atol is not None and atol > 0) else \
            builtins.max(m, n) * _dt.finfo(S._dtype).eps
    tol = mul(smax, rtol)
    if atol is not None:
        tol = maximum(tol, atol)
    return tol


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """Moore-Penrose pseudo-inverse, via the SVD: singular values below
    ``max(atol, rtol * largest)`` count as zero (default ``rtol = max(m, n) * eps``)."""
    op = "linalg.pinv"
    _float_matrix(op, A, square=False)
    from .elementwise import div, gt, where
    shape = A._data.shape
    m, n = shape[-2:]
    if m == 0 or n == 0:
        return _zeros(tuple(shape[:-2]) + (n, m), A._dtype, A._device)
    U, S, Vh = svd(A, full_matrices=False)
    tol = _tolerance(op, S, A, atol, rtol)
    s_inv = where(gt(S, tol), div(1, S), 0)
    k = S._data.shape[-1]
    s_inv = _reshape(s_inv, tuple(S._data.shape[:-1]) + (1, k)).to(A._dtype)
    from .elementwise import conj, mul
    V = _mT(Vh)
    Uh = _mT(U)
    if A._dtype.is_complex:
        V, Uh = conj(V), conj(Uh)
    return matmul(mul(V, s_inv), Uh)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """Number of singular values above ``max(atol, rtol * largest)`` (default ``rtol =
    max(m, n) * eps``), int64."""
    op = "linalg.matrix_rank"
    _float_matrix(op, A, square=False)
    shape = A._data.shape
    if 0 in shape[-2:]:
        return wrap(_full_k[A._device.backend](tuple(shape[:-2]), 0, "int64",
                                               A._device.index), A._device, _int64)
    S = svdvals(A)
    from .elementwise import gt
    return _count_nonzero(gt(S, _tolerance(op, S, A, atol, rtol)), -1)


def matrix_power(A, n):
    """``A`` to the integer power ``n`` (``n < 0`` inverts first; ``n = 0`` gives identities)."""
    op = "linalg.matrix_power"
    _tensor(A, op)
    shape = A._data.shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{op}: A must be batches of square matrices, got shape "
                         f"{fmt_shape(shape)}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{op}: n must be an int, got {describe(n)}") from None
    if n == 0:
        eye = _eye(shape[:-2], shape[-1], A._dtype, A._device)
        if A._ag is not None and _grad_on():
            # a constant, but in A's graph with a zero gradient, as PyTorch
            _record(_rule("matrix_power_zero"), eye, (A,))
        return eye
    if n < 0:
        A = inv(A)
        n = -n
    result = None
    base = A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def multi_dot(tensors):
    """The product of several matrices, ``A @ B @ C ...``; the first may be a 1-D row vector
    and the last a 1-D column vector (``torch.linalg.multi_dot``)."""
    op = "linalg.multi_dot"
    ts = list(tensors)
    if len(ts) < 2:
        raise ValueError(f"{op}: expected at least 2 tensors, got {len(ts)}")
    for i, t in enumerate(ts):
        _tensor(t, op)
        nd = len(t._data.shape)
        ok = nd == 2 or (nd == 1 and i in (0, len(ts) - 1))
        if not ok:
            raise ValueError(f"{op}: tensor {i} must be 2-D (only the first and last may be "
                             f"1-D), got shape {fmt_shape(t._data.shape)}")
    out = ts[0]
    for t in ts[1:]:
        try:
            out = matmul(out, t)
        except ValueError as exc:
            raise ValueError(str(exc).replace("matmul:", f"{op}:", 1)) from None
    return out


# ---------------------------------------------------------------------------- matrix norms ---
_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _mnorm_default(x, ord, dims, keepdim):
    from .elementwise import abs as _abs
    r, c = dims
    if ord == "fro":
        return vector_norm(x, 2, dims, keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        red, fin = (r, c) if ord in (1, -1) else (c, r)
        s = _sum(_abs(x), red, True)
        f = _amax if ord > 0 else _amin
        return f(s, dims, keepdim)
    # 2, -2, 'nuc': from the singular values of the matrices moved to the last two dims
    nd = len(x._data.shape)
    rest = [d for d in range(nd) if d not in dims]
    xm = _permute(x, tuple(rest) + (r, c))
    S = svdvals(xm)
    out = _sum(S, -1) if ord == "nuc" else (_amax(S, -1) if ord == 2 else _amin(S, -1))
    if keepdim:
        shape = list(x._data.shape)
        shape[r] = shape[c] = 1
        out = _reshape(out, shape)
    return out


register_default("matrix_norm", _mnorm_default)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, keepdims=None):
    """Matrix norm over the two dims ``dim`` (default the last two): ``ord`` is 'fro'
    (default), 'nuc', ``1``/``-1`` (max/min column sum), ``inf``/``-inf`` (max/min row sum) or
    ``2``/``-2`` (largest/smallest singular value).  The result is real."""
    op = "linalg.matrix_norm"
    _tensor(A, op)
    if keepdims is not None:
        keepdim = keepdims
    shape = A._data.shape
    if len(shape) < 2:
        raise ValueError(f"{op}: the input must have at least 2 dimensions, got shape "
                         f"{fmt_shape(shape)}")
    if isinstance(ord, str):
        ok = ord in ("fro", "nuc")
    else:
        ok = not isinstance(ord, builtins.bool) and ord in _MATRIX_ORDS
    if not ok:
        raise ValueError(f"{op}: order {ord!r} is not supported; use 'fro', 'nuc', 1, -1, 2, "
                         f"-2, inf or -inf")
    if not isinstance(ord, str):
        ord = builtins.int(ord) if ord in (1, -1, 2, -2) else builtins.float(ord)
    try:
        d0, d1 = dim
    except (TypeError, ValueError):
        raise ValueError(f"{op}: dim must be a pair of dims, got {dim!r}") from None
    d0 = normalize_dim(d0, len(shape), op)
    d1 = normalize_dim(d1, len(shape), op)
    if d0 == d1:
        raise ValueError(f"{op}: the two dims must differ, got {dim!r}")
    from .reduction import _norm_float_input
    A = _norm_float_input(op, A, dtype)
    rd = A._dtype.to_real()
    dev = A._device
    m, n = shape[d0], shape[d1]
    if m == 0 or n == 0:
        # min-type norms of an empty set have no value; the others are 0 (as PyTorch)
        empty_min = {-1: n == 0, -math.inf: m == 0, -2: True}.get(ord, False)
        if empty_min:
            raise IndexError(f"{op}: cannot compute the {ord} norm of matrices of shape "
                             f"{m} by {n} (input shape {fmt_shape(shape)}): it is a minimum "
                             f"over an empty set")
        out = [s for i, s in enumerate(shape) if i not in (d0, d1)] if not keepdim else \
            [1 if i in (d0, d1) else s for i, s in enumerate(shape)]
        return _zeros(out, rd, dev)
    if ord in (2, -2, "nuc"):  # through the singular values
        _finite_input(op, A, (d0, d1))
    k = _mnorm_k[dev.backend]
    if k is None or (A._ag is not None and _grad_on()):  # the default records its steps
        return _mnorm_default(A, ord, (d0, d1), builtins.bool(keepdim))
    return wrap(k(A._data, ord, (d0, d1), builtins.bool(keepdim)), dev, rd)


def _linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int (or when ``ord`` and ``dim``
    are both ``None``: the 2-norm of all elements), a matrix norm when ``dim`` is a pair; with
    ``dim=None`` and an ``ord``, ``A`` must be 1-D (vector norm) or 2-D (matrix norm)."""
    op = "linalg.norm"
    _tensor(A, op)
    if axis is not None:
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    nd = len(A._data.shape)
    if isinstance(dim, (tuple, list)) and len(dim) == 2:
        return _renamed(op, matrix_norm, A, "fro" if ord is None else ord, tuple(dim), keepdim,
                        dtype=dtype)
    if dim is None:
        if ord is None:
            return _renamed(op, vector_norm, A, 2, None, keepdim, dtype=dtype)
        if nd == 1:
            return _renamed(op, vector_norm, A, ord, None, keepdim, dtype=dtype)
        if nd == 2:
            return _renamed(op, matrix_norm, A, ord, (0, 1), keepdim, dtype=dtype)
        raise ValueError(f"{op}: if dim is not given but ord is, the input must be 1-D or "
                         f"2-D, got shape {fmt_shape(A._data.shape)}")
    if isinstance(dim, (tuple, list)) and len(dim) != 1:
        raise ValueError(f"{op}: dim must be an int or a pair of ints, got {dim!r}")
    if isinstance(ord, str):
        raise ValueError(f"{op}: ord {ord!r} is a matrix norm, which needs dim to be a pair "
                         f"of dims")
    return _renamed(op, vector_norm, A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def _renamed(op, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        msg = str(exc)
        for name in ("linalg.vector_norm", "linalg.matrix_norm"):
            msg = msg.replace(name, op)
        raise type(exc)(msg) from None


# ----------------------------------------------------------------- Array API extras ---
def matrix_transpose(x, /):
    """Swap the last two dims (a view); Array API ``matrix_transpose``, ``x.mT``."""
    _tensor(x, "matrix_transpose")
    if len(x._data.shape) < 2:
        raise ValueError(f"matrix_transpose: expected a tensor of at least 2 dimensions, got "
                         f"shape {fmt_shape(x._data.shape)}")
    return _mT(x)


def vecdot(x1, x2, /, *, axis=None, dim=None):
    """``sum(conj(x1) * x2)`` along ``axis`` (default the last dim), with broadcasting
    (Array API ``vecdot``, ``torch.linalg.vecdot``)."""
    op = "vecdot"
    x1, x2 = _two(op, x1, x2)
    if axis is None:
        axis = -1 if dim is None else dim
    s1, s2 = x1._data.shape, x2._data.shape
    if not s1 or not s2:
        raise ValueError(f"{op}: expected tensors of at least 1 dimension, got shapes "
                         f"{fmt_shape(s1)} and {fmt_shape(s2)}")
    nd = builtins.max(len(s1), len(s2))
    d = normalize_dim(axis, nd, op)
    off1, off2 = nd - len(s1), nd - len(s2)
    n1 = s1[d - off1] if d >= off1 else 1
    n2 = s2[d - off2] if d >= off2 else 1
    if n1 != n2:
        raise ValueError(f"{op}: the vectors along dim {axis} have different lengths: {n1} "
                         f"and {n2} (shapes {fmt_shape(s1)} and {fmt_shape(s2)})")
    try:
        _broadcast_pair(tuple(s1), tuple(s2), op)
    except ValueError:
        raise ValueError(f"{op}: the shapes {fmt_shape(s1)} and {fmt_shape(s2)} do not "
                         f"broadcast") from None
    from .elementwise import conj, mul
    if x1._dtype.is_complex:
        x1 = conj(x1)
    _common(op, x1, x2)  # checks the dtypes
    return _sum(mul(x1, x2), d)


def _linalg_diagonal(x, /, *, offset=0, dim1=-2, dim2=-1):
    """Diagonals of the matrices in the last two dims (Array API ``linalg.diagonal``)."""
    return diagonal(x, offset, dim1, dim2)


def _linalg_trace(x, /, *, offset=0, dtype=None):
    """Sums of the diagonals of the matrices in the last two dims (Array API
    ``linalg.trace``); bool/int sum in int64."""
    _tensor(x, "linalg.trace")
    if len(x._data.shape) < 2:
        raise ValueError(f"linalg.trace: expected a tensor of at least 2 dimensions, got shape "
                         f"{fmt_shape(x._data.shape)}")
    return _sum(diagonal(x, offset, -2, -1), -1, dtype=dtype)


def _linalg_tensordot(x1, x2, /, *, axes=2):
    return tensordot(x1, x2, axes)


def _linalg_outer(x1, x2, /):
    return outer(x1, x2)


def _linalg_matmul(x1, x2, /):
    return matmul(x1, x2)


for _f, _n in ((_linalg_cross, "cross"), (_linalg_norm, "norm"),
               (_linalg_diagonal, "diagonal"), (_linalg_trace, "trace"),
               (_linalg_tensordot, "tensordot"), (_linalg_outer, "outer"),
               (_linalg_matmul, "matmul")):
    _f.__name__ = _n
    _f.__qualname__ = _n
_linalg_tensordot.__doc__ = tensordot.__doc__
_linalg_outer.__doc__ = outer.__doc__
_linalg_matmul.__doc__ = matmul.__doc__

LINALG_NAMESPACE = {
    "matmul": _linalg_matmul, "tensordot": _linalg_tensordot, "outer": _linalg_outer,
    "cross": _linalg_cross, "diagonal": _linalg_diagonal, "trace": _linalg_trace,
    "vecdot": vecdot, "matrix_transpose": matrix_transpose, "norm": _linalg_norm,
    "vector_norm": vector_norm, "matrix_norm": matrix_norm, "inv": inv, "solve": solve,
    "det": det, "slogdet": slogdet, "cholesky": cholesky, "qr": qr, "eigh": eigh,
    "eigvalsh": eigvalsh, "svd": svd, "svdvals": svdvals, "pinv": pinv,
    "matrix_rank": matrix_rank, "matrix_power": matrix_power, "multi_dot": multi_dot,
    "LinAlgError": LinAlgError,
}


# ------------------------------------------------------------------------ Tensor methods ---
def __matmul__(self, other):
    if other.__class__ is Tensor:
        # the hot case -- two matrices of one dtype on one device -- checked first, cheaply
        # (x @ y is how products are written, in user code and in the derivative rules)
        dev = self._device
        xd = self._data
        yd = other._data
        dx = self._dtype
        sx = xd.shape
        sy = yd.shape
        if (len(sx) == 2 and len(sy) == 2 and sx[1] == sy[0] and other._device is dev
                and dx is other._dtype and dx in _numeric and not _AMP[0]):
            out = wrap(_matmul_k[dev.backend](xd, yd), dev, dx)
            if (self._ag is not None or other._ag is not None) and _grad_on():
                _record(_MATMUL_RULE, out, (self, other))
            return out
        return matmul(self, other)
    if not isinstance(other, Tensor) and not (hasattr(other, "__array__") or
                                              hasattr(other, "__dlpack__") or
                                              isinstance(other, (list, tuple))):
        return NotImplemented
    return matmul(self, other)


def __rmatmul__(self, other):
    if not (hasattr(other, "__array__") or hasattr(other, "__dlpack__") or
            isinstance(other, (list, tuple))):
        return NotImplemented
    return matmul(other, self)


def __imatmul__(self, other):
    """``x @= y`` in place (NumPy / Array API): the product must keep ``x``'s shape and dtype."""
    if (self._ag is not None or getattr(other, "_ag", None) is not None) and _grad_on():
        from .indexing import _graph_inplace
        # matmul saves its inputs: multiply a copy, not the tensor about to be overwritten
        if _graph_inplace("matmul (@=)", self, lambda t, o: matmul(t.clone(), o),
                          (other,)) is not None:
            return self
    check_inplace("matmul (@=)", self)
    res = matmul(self, other)
    if res._data.shape != self._data.shape:
        raise ValueError(f"matmul (@=): the product has shape {fmt_shape(res._data.shape)}, "
                         f"which does not fit in place into the left operand of shape "
                         f"{fmt_shape(self._data.shape)}; write x = x @ y instead")
    if res._dtype is not self._dtype:
        raise TypeError(f"matmul (@=): the product has dtype {res._dtype.name}, which can't be "
                        f"written in place into the left operand of dtype {self._dtype.name}; "
                        f"write x = x @ y instead")
    from .indexing import _assign_all
    _assign_all(self, res)
    return self


def _matrix_power_method(self, n):
    return matrix_power(self, n)


TENSOR_METHODS = {
    "matmul": matmul, "__matmul__": __matmul__, "__rmatmul__": __rmatmul__,
    "__imatmul__": __imatmul__, "dot": dot, "vdot": vdot, "mm": mm, "bmm": bmm, "mv": mv,
    "outer": outer, "ger": ger, "inner": inner, "trace": trace, "diagonal": diagonal,
    "diag": diag, "kron": kron, "cross": cross, "det": det, "logdet": logdet,
    "slogdet": slogdet, "inverse": inverse, "matrix_power": _matrix_power_method,
}
