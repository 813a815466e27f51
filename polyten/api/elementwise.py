"""Elementwise functions, generated from the op table with one set of boundary checks.

Each public function (``polyten.add``, ``polyten.exp``, ...) and each operator
(``a + b``, ``a += b``, ``-a``) is made here by :func:`_unary` or :func:`_binary` from its
``OpDef``: device check, weak-scalar promotion, dtype-category check, broadcast check, one
cached kernel lookup, one kernel call, one wrap.  The hot path has no ``*args`` plumbing.

Python scalars are *weak* (``int_tensor * 1.5`` is the default float dtype, ``float16_tensor *
2.0`` stays float16) and the core makes them fit the computation dtype before a kernel sees
them: an integer scalar outside an integer dtype's range wraps around for the modular ops
(``+ - * & | ^``, as PyTorch), is compared exactly by the comparisons (in int64), and is
refused, naming the op, everywhere else.

In-place forms (``a += b``, ``a.add_(b)``, ``a.exp_()``) go through the ``inplace`` op, which a
backend implements as a direct write (NumPy's ``out=``) and whose default computes out of place
and writes with ``setitem``.  Like PyTorch, the result may be computed in a wider dtype and cast
back when the kinds allow (``float32 += float64``), but never to a lower kind (``int += 1.5``).
"""

from __future__ import annotations

import builtins

from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.defaults import KERNEL_DEFAULTS as _KERNEL_DEFAULTS
from ..dispatch.errors import dtype_error, fmt_shape
from ..dispatch.optable import OPS
from . import dtypes as _dt
from ..autograd.views import (check_view_write as _check_view_write,
                             rebase_root as _rebase_root, refresh_views as _refresh_views,
                             view_of as _view_of)
from ..autograd.graph import record as _record
from ..autograd.graph import record_binary as _record2
from ..autograd.graph import record_unary as _record1
from ..autograd.grad_mode import grad_enabled as _grad_on
from ..autograd.rules import rule as _rule
from . import autocast as _amp
from ._core import (bump_version, check_inplace, Tensor, as_operand, cast, check_broadcast, describe, device_mismatch,
                    is_scalar, scalar_value, wrap)

_PROMOTE = _dt._PROMOTE
_DEFAULT = _dt._default_float
_LOW = _dt.LOW_PRECISION
_AMP = _amp.ACTIVE  # > 0 while an autocast region is open somewhere
_scalar_dtype = _dt.scalar_dtype_for
_int64, _float64 = _dt.int64, _dt.float64
_float, _int = builtins.float, builtins.int
_KIND_NAMES = {"any": "any dtype", "numeric": "numeric (non-bool) dtypes",
               "real": "real (non-complex) dtypes", "real_numeric": "real numeric dtypes",
               "floating": "floating-point dtypes", "real_floating": "real floating dtypes",
               "integer": "integer dtypes", "integer_or_bool": "integer or bool dtypes",
               "bool": "bool"}
_IRANGE = {d: (_dt.iinfo(d).min, _dt.iinfo(d).max) for d in _dt.DTYPES.values()
           if d.kind in "iu"}
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
# modular arithmetic: an out-of-range int scalar wraps around, as PyTorch casts it
_WRAPPING = frozenset(("add", "sub", "mul", "bitwise_and", "bitwise_or", "bitwise_xor"))
_COMPARISONS = frozenset(("eq", "ne", "lt", "le", "gt", "ge"))
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floor_divide": "//",
            "remainder": "%", "pow": "**", "bitwise_and": "&", "bitwise_or": "|",
            "bitwise_xor": "^", "bitwise_left_shift": "<<", "bitwise_right_shift": ">>"}


def _accepted(opdef):
    return frozenset(_dt.DTYPES[n] for n in opdef.accepted)


def unsupported(op: str, opdef, *dts) -> TypeError:
    names = " and ".join(dict.fromkeys(d.name for d in dts))
    hint = {"integer_or_bool": " Cast first, e.g. x.to(polyten.int32).",
            "integer": " Cast first, e.g. x.to(polyten.int32).",
            "floating": " Cast first, e.g. x.to(polyten.float32).",
            "real_floating": " Cast first, e.g. x.to(polyten.float32).",
            "real": " Use x.real / x.abs() for complex inputs.",
            "real_numeric": " Cast first, e.g. x.to(polyten.float32).",
            "numeric": " For bool tensors use the logical_* ops or cast first, e.g. "
                       "x.to(polyten.int64)."}.get(opdef.dtypes, "")
    return dtype_error(op, f"not supported for {names}; {op} takes "
                           f"{_KIND_NAMES[opdef.dtypes]}.{hint}")


def _int_scalar_out_of_range(op: str, s: int, cd, label: str = None):
    """``(scalar, dtype)`` to compute ``op`` with the Python int ``s``, which ``cd`` can't hold.

    ``label`` is the user's call in messages (``add_`` for ``+=``), default ``op``.
    """
    lo, hi = _IRANGE[cd]
    fits64 = -2 ** 63 <= s < 2 ** 63
    if op in _COMPARISONS and fits64:
        return s, _int64  # compare exactly
    if op in _WRAPPING and fits64:
        bits = cd.itemsize * 8
        return (s - lo) % (1 << bits) + lo, cd
    raise OverflowError(f"{label or op}: the Python int {s} is out of range for {cd.name} "
                        f"({lo} to {hi}); cast the tensor to a wider dtype first, e.g. "
                        f"x.to(polyten.int64)")


def _scalar_overflow(op: str, s, cd) -> OverflowError:
    return OverflowError(f"{op}: the Python number {s!r} is too large for {cd.name}")


def _kind_castable(src, dst) -> builtins.bool:
    return _KIND_RANK[src.kind] <= _KIND_RANK[dst.kind]


def _unary(name: str, doc: str = ""):
    opdef = OPS[name]
    cache = kernels(name)
    accepted = _accepted(opdef)
    rule = opdef.result
    diff = opdef.differentiable
    grad_rule = _rule(name)

    amp = name in _amp.FP32  # autocast runs it in float32
    if rule == "float":
        check = accepted != _accepted(OPS["add"])  # erf refuses complex

        def fn(input):
            try:
                dt = input._dtype
                dev = input._device
            except AttributeError:
                raise TypeError(f"{name}(): expected a tensor, got {describe(input)}") from None
            data = input._data
            if dt.kind in "biu":
                dt = _DEFAULT[0]
                data = cast(input, dt)
            elif check and dt not in accepted:
                raise unsupported(name, opdef, dt)
            elif amp and dt in _LOW and _AMP[0]:
                up = _amp.fp32(input)
                if up is not input:
                    return fn(up)
            out = wrap(cache[dev.backend](data), dev, dt)
            if input._ag is not None and diff and _grad_on():
                _record1(grad_rule, out, input)
            return out
    else:
        fixed = {"bool": _dt.bool, "int64": _dt.int64}.get(rule)
        to_real = rule == "real"

        def fn(input):
            try:
                dt = input._dtype
                dev = input._device
            except AttributeError:
                raise TypeError(f"{name}(): expected a tensor, got {describe(input)}") from None
            if dt not in accepted:
                raise unsupported(name, opdef, dt)
            out = cache[dev.backend](input._data)
            if fixed is not None:
                return wrap(out, dev, fixed)
            out = wrap(out, dev, dt.to_real() if to_real else dt)
            if input._ag is not None and diff and _grad_on():
                _record1(grad_rule, out, input)
            return out

    if amp and rule != "float":  # the autocast check lives in the "float" branch only
        raise AssertionError(f"{name}: an autocast float32 op needs the 'float' result rule")
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise ``{opdef.signature}``. {opdef.doc}".strip()
    return fn


_INT_DIVISIONS = frozenset(("floor_divide", "remainder", "fmod"))


def _has_zero(data, dev, dt) -> builtins.bool:
    """Whether an integer divisor has a zero -- checked on a host backend only: a GPU's
    kernels give their own values there (as PyTorch's CUDA ones), with no host read."""
    if dev.backend.deferred_checks:
        return False
    return builtins.bool((wrap(data, dev, dt) == 0).any().item())


def _zero_division(name: str, dt) -> RuntimeError:
    return RuntimeError(f"ZeroDivisionError: {name}: integer division by zero ({dt.name}); "
                        f"mask the zero divisors first, or divide in a floating dtype")


def _binary(name: str, doc: str = "", *, dunder: bool = False, reflected: bool = False):
    """Build ``fn(input, other)``; scalars are weak; both operands may be tensors or one a number.

    ``dunder=True`` builds the operator form: it returns ``NotImplemented`` for operands it does
    not know, so Python can try the other operand's reflected method.  ``reflected=True`` builds
    the reflected operator (``__rsub__(self, other)`` computes ``other - self``).
    """
    opdef = OPS[name]
    cache = kernels(name)
    accepted = _accepted(opdef)
    rule = opdef.result
    fixed = _dt.bool if rule == "bool" else None
    to_float = rule == "promote_float"
    is_pow = name == "pow"
    amp = name in _amp.FP32  # pow: float32 under autocast (a float16 power overflows early)
    # float16 / bfloat16 leave the scalar hot path of an autocast op, for scalar_op's check
    hot = frozenset(d for d in accepted if d.kind in "fc" and not (amp and d in _LOW))
    diff = opdef.differentiable and fixed is None
    grad_rule = _rule(name)
    int_div = name in _INT_DIVISIONS

    def scalar_op(t, s, refl):
        """``t op s`` (``s op t`` when ``refl``) for a Python bool/int/float/complex ``s``."""
        if amp and _AMP[0]:
            t = _amp.fp32(t)
        dt = t._dtype
        cd = _scalar_dtype(s, dt)
        if cd not in accepted:
            raise unsupported(name, opdef, dt, cd)
        if to_float and cd.kind in "biu":
            cd = _DEFAULT[0]
        elif cd.kind in "iu" and s.__class__ is _int:
            lo, hi = _IRANGE[cd]
            if not lo <= s <= hi:
                s, cd = _int_scalar_out_of_range(name, s, cd)
            if is_pow and not refl and s < 0:
                raise ValueError(f"pow: integers to negative integer powers are not allowed "
                                 f"({dt.name} tensor ** {s}); use a floating exponent or "
                                 f"tensor, e.g. x.to(polyten.float32) ** {s}")
        dev = t._device
        td = t._data if cd is dt else cast(t, cd)
        if int_div and cd.kind in "iu" and (_has_zero(td, dev, cd) if refl else s == 0):
            raise _zero_division(name, cd)
        k = cache[dev.backend]
        try:
            out = k(s, td) if refl else k(td, s)
        except OverflowError:
            raise _scalar_overflow(name, s, cd) from None
        out = wrap(out, dev, fixed or cd)
        if t._ag is not None and diff and _grad_on():
            _record(grad_rule, out, (s, t) if refl else (t, s))
        return out

    def slow(input, other):
        # scalars other than int/float, NumPy scalars, foreign arrays, device mismatch
        if isinstance(input, Tensor):
            if isinstance(other, Tensor):
                raise device_mismatch(name, (input, other))
            if is_scalar(other):
                return scalar_op(input, scalar_value(other), False)
            if dunder and not (hasattr(other, "__array__") or hasattr(other, "__dlpack__")
                               or isinstance(other, (list, tuple))):
                return NotImplemented
            return fn(input, as_operand(other, input, name))
        if isinstance(other, Tensor):
            if is_scalar(input):
                return scalar_op(other, scalar_value(input), True)
            if dunder and not (hasattr(input, "__array__") or hasattr(input, "__dlpack__")
                               or isinstance(input, (list, tuple))):
                return NotImplemented
            return fn(as_operand(input, other, name), other)
        raise TypeError(f"{name}(): expected at least one tensor operand, got "
                        f"{describe(input)} and {describe(other)}")

    def fn(input, other):
        if input.__class__ is Tensor:
            oc = other.__class__
            if oc is not Tensor:
                if oc is float or oc is int:
                    dt = input._dtype
                    if dt in hot:
                        # hot path: a float tensor with a Python number keeps its dtype
                        dev = input._device
                        try:
                            out = wrap(cache[dev.backend](input._data, other), dev,
                                       fixed or dt)
                            if input._ag is not None and diff and _grad_on():
                                _record(grad_rule, out, (input, other))
                            return out
                        except OverflowError:
                            raise _scalar_overflow(name, other, dt) from None
                    return scalar_op(input, other, False)
                if not isinstance(other, Tensor):
                    return slow(input, other)
        elif not (isinstance(input, Tensor) and isinstance(other, Tensor)):
            return slow(input, other)  # (subclasses such as nn.Parameter pass)
        if amp and _AMP[0]:
            input, other = _amp.fp32(input, other)
        dev = input._device
        if other._device is not dev:
            return slow(input, other)
        dx = input._dtype
        dy = other._dtype
        xd = input._data
        yd = other._data
        if dx is dy:
            cd = dx
            if cd not in accepted:
                raise unsupported(name, opdef, dx)
            if to_float and cd.kind in "biu":
                cd = _DEFAULT[0]
                xd, yd = cast(input, cd), cast(other, cd)
        else:
            cd = _PROMOTE[(dx, dy)]
            if cd not in accepted:
                raise unsupported(name, opdef, dx, dy)
            if to_float and cd.kind in "biu":
                cd = _DEFAULT[0]
            if dx is not cd:
                xd = cast(input, cd)
            if dy is not cd:
                yd = cast(other, cd)
        # the core owns broadcasting: checked before any kernel runs, so every backend
        # accepts and rejects the same shapes (a cached dict lookup when shapes differ)
        sx = xd.shape
        if sx != yd.shape:
            check_broadcast(name, sx, yd.shape)
        if int_div and cd.kind in "iu" and _has_zero(yd, dev, cd):
            raise _zero_division(name, cd)
        out = wrap(cache[dev.backend](xd, yd), dev, fixed or cd)
        if (input._ag is not None or other._ag is not None) and diff and _grad_on():
            _record2(grad_rule, out, (input, other))
        return out

    if not reflected:
        result = fn
    else:
        def result(self, other):
            oc = other.__class__
            if oc is float or oc is int:
                dt = self._dtype
                if dt in hot:
                    dev = self._device
                    try:
                        out = wrap(cache[dev.backend](other, self._data), dev, fixed or dt)
                        if self._ag is not None and diff and _grad_on():
                            _record(grad_rule, out, (other, self))
                        return out
                    except OverflowError:
                        raise _scalar_overflow(name, other, dt) from None
                return scalar_op(self, other, True)
            if oc is builtins.bool or oc is builtins.complex:
                return scalar_op(self, other, True)
            return fn(other, self)

    result.__name__ = result.__qualname__ = name
    result.__doc__ = doc or (f"Elementwise ``{opdef.signature}`` with broadcasting and type "
                             f"promotion (Python scalars are weak). {opdef.doc}").strip()
    return result


# ---------------------------------------------------------------------------- generation ---
# the table's elementwise section: from "neg" up to the casting section ("astype")
_NAMES = list(OPS)
_ELEMENTWISE = _NAMES[_NAMES.index("neg"):_NAMES.index("astype")]
# composites with a polyten-op default (relu) have their own function below; those with a
# kernel-level default (polyten.dispatch.defaults) are called like primitives
_UNARY = [n for n in _ELEMENTWISE if OPS[n].signature == f"{n}(x)"
          and (OPS[n].kind == "primitive" or n in _KERNEL_DEFAULTS)]
_BINARY = [n for n in _ELEMENTWISE if OPS[n].signature == f"{n}(x, y)"]
del _NAMES

_g = globals()
for _n in _UNARY:
    _g[_n] = _unary(_n)
for _n in _BINARY:
    _g[_n] = _binary(_n)
del _g, _n

_plain_add, _plain_sub = add, sub  # noqa: F821
_true_div = div  # noqa: F821


def div(input, other, *, rounding_mode=None):
    """``input / other`` (``torch.div``): true division (integers give the default float
    dtype) without ``rounding_mode``; ``"floor"`` rounds the quotient down (as
    :func:`floor_divide`), ``"trunc"`` towards zero -- exactly, in integer arithmetic, for
    integer operands (``trunc(-7 / 2) == -3``).  The rounded forms have a zero gradient."""
    if rounding_mode is None:
        return _true_div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)  # noqa: F821
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                         f"{rounding_mode!r}")
    q = floor_divide(input, other)  # noqa: F821  (its dtype: the rounded quotient's)
    if q._dtype.kind in "iu":
        # fmod's remainder has the dividend's sign: what remains divides exactly
        return floor_divide(sub(input, fmod(input, other)), other)  # noqa: F821
    return trunc(_true_div(input, other))  # noqa: F821


def _div_method(self, other, *, rounding_mode=None):
    return div(self, other, rounding_mode=rounding_mode)


_div_method.__name__ = "div"
_div_method.__doc__ = div.__doc__


def _scaled(op, input, other, alpha):
    """``alpha * other`` for ``add``/``sub``'s ``alpha`` (PyTorch's rules for it)."""
    if isinstance(alpha, builtins.bool) or not is_scalar(alpha):
        raise TypeError(f"{op}: alpha must be a number, got {describe(alpha)}")
    alpha = scalar_value(alpha)
    if not isinstance(other, Tensor) and not is_scalar(other):
        if not isinstance(input, Tensor):
            raise TypeError(f"{op}(): expected at least one tensor operand, got "
                            f"{describe(input)} and {describe(other)}")
        other = as_operand(other, input, op)
    if not isinstance(alpha, _int):
        kinds = [v._dtype.kind if isinstance(v, Tensor) else
                 ("f" if isinstance(scalar_value(v), (float, complex)) else "i")
                 for v in (input, other)]
        if all(k in "biu" for k in kinds):
            raise TypeError(f"{op}: alpha={alpha!r} is not an integer, but both operands are "
                            f"integral; cast them to a floating dtype first")
    if isinstance(other, Tensor):
        return mul(other, alpha)  # noqa: F821
    return scalar_value(other) * alpha


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting and type promotion (``torch.add``;
    Python scalars are weak)."""
    if alpha.__class__ is int and alpha == 1:
        return _plain_add(input, other)
    return _plain_add(input, _scaled("add", input, other, alpha))


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting and type promotion (``torch.sub``)."""
    if alpha.__class__ is int and alpha == 1:
        return _plain_sub(input, other)
    return _plain_sub(input, _scaled("sub", input, other, alpha))


def rsub(input, other, *, alpha=1):
    """``other - alpha * input`` (``torch.rsub``)."""
    return sub(other, input, alpha=alpha)


def _rec(name, out, inputs):
    """Record ``out`` for autograd when gradients are on (``record`` skips inputs without grad)."""
    for t in inputs:  # the common case, no input in a graph, costs one attribute read each
        if getattr(t, "_ag", None) is not None:
            if _grad_on():
                _record(_rule(name), out, inputs)
            break
    return out


def relu(input):
    """``max(x, 0)`` elementwise."""
    if input.__class__ is Tensor:  # the hot path: one dtype check, one kernel, one wrap
        dt = input._dtype
        dev = input._device
        k = _relu_cache[dev.backend]
        if k is not None and dt in _relu_ok:
            out = wrap(k(input._data), dev, dt)
            if input._ag is not None and _grad_on():
                _record1(_RELU_RULE, out, input)
            return out
    _check_tensor("relu", input)
    k = _relu_cache[input._device.backend]
    if input._dtype not in _relu_ok:
        raise unsupported("relu", OPS["relu"], input._dtype)
    if k is None:
        return _relu_default(input)
    return _rec("relu", wrap(k(input._data), input._device, input._dtype), (input,))


def _relu_default(x):
    if x._dtype is _dt.bool:  # max(x, False) is x; maximum(x, 0) would promote to int64
        return x.clone()
    return maximum(x, 0)  # noqa: F821


_relu_cache = kernels("relu")
_relu_ok = _accepted(OPS["relu"])
_RELU_RULE = _rule("relu")
register_default("relu", _relu_default)

_round_k = kernels("round")
_round_ok = _accepted(OPS["round"])


def _check_tensor(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a tensor, got {describe(x)}")


def round(input, decimals=0):
    """Round half to even to ``decimals`` decimal places (``torch.round``; Array API ``round``).

    Negative ``decimals`` round to tens, hundreds, ...; integer tensors are returned as a copy
    for ``decimals >= 0``.
    """
    _check_tensor("round", input)
    if input._dtype not in _round_ok:
        raise unsupported("round", OPS["round"], input._dtype)
    if isinstance(decimals, builtins.bool) or not isinstance(decimals, _int):
        try:
            import operator
            decimals = operator.index(decimals)
        except TypeError:
            raise TypeError(f"round: decimals must be an int, got {describe(decimals)}") \
                from None
    return _rec("round", wrap(_round_k[input._device.backend](input._data, _int(decimals)), input._device,
                input._dtype), (input,))


_polygamma_k = kernels("polygamma")
_gamma_ok = _accepted(OPS["polygamma"])


def _float_input(op, x):
    """x as a floating tensor for the gamma family (integers and bool: the default float)."""
    _check_tensor(op, x)
    if x._dtype.kind in "biu":
        return x.to(_DEFAULT[0])
    if x._dtype not in _gamma_ok:
        raise unsupported(op, OPS["polygamma"], x._dtype)
    return x


def polygamma(n, input):
    """The ``n``-th derivative of :func:`digamma` (``torch.polygamma(n, input)``): ``n`` an
    int >= 0, ``n = 0`` is digamma; integer inputs give the default float dtype."""
    if isinstance(n, builtins.bool) or not isinstance(n, _int):
        try:
            import operator
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"polygamma(n, input): n must be an int, got {describe(n)}") \
                from None
    if n < 0:
        raise ValueError(f"polygamma(n, input): n must be a non-negative integer, got n={n}")
    x = _float_input("polygamma", input)
    out = wrap(_polygamma_k[x._device.backend](x._data, _int(n)), x._device, x._dtype)
    if x._ag is not None and _grad_on():
        _record1(_POLYGAMMA_RULE, out, x, {"n": _int(n)})
    return out


_POLYGAMMA_RULE = _rule("polygamma")


def mvlgamma(input, p):
    """The multivariate log-gamma function of dimension ``p`` (``torch.mvlgamma``):
    ``p (p - 1) / 4 log(pi) + sum_{j<p} lgamma(x - j / 2)``; every element must be greater
    than ``(p - 1) / 2``, as PyTorch requires."""
    import math
    if isinstance(p, builtins.bool) or not isinstance(p, _int):
        raise TypeError(f"mvlgamma(input, p): p must be an int, got {describe(p)}")
    if p < 1:
        raise ValueError(f"mvlgamma(input, p): p must be >= 1, got p={p}")
    x = _float_input("mvlgamma", input)
    bound = (p - 1) / 2
    if x.numel():
        import polyten as pt
        low = pt.amin(x.detach()).item()
        if not low > bound:  # NaN fails too, as PyTorch's check
            raise ValueError(f"mvlgamma(input, p={p}): all elements must be greater than "
                             f"(p - 1) / 2 = {bound}, got an element {low}")
    out = lgamma(x)  # noqa: F821
    for j in range(1, p):
        out = out + lgamma(x - j / 2)  # noqa: F821
    return out + p * (p - 1) / 4 * math.log(math.pi)


def _fit_scalar(op: str, s, cd):
    """``(value, dtype)`` for a Python scalar that must be stored in ``cd`` (no wrapping)."""
    if cd.kind in "iu" and s.__class__ is _int:
        lo, hi = _IRANGE[cd]
        if not lo <= s <= hi:
            raise OverflowError(f"{op}: the Python int {s} is out of range for {cd.name} "
                                f"({lo} to {hi}); cast the tensor to a wider dtype first, e.g. "
                                f"x.to(polyten.int64)")
    return s


_where_k = kernels("where")


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` is true, else of ``other`` (broadcasting).

    ``input`` and ``other`` may be tensors or Python numbers (weak, as in any binary op).
    With only ``condition``, returns ``nonzero(condition, as_tuple=True)`` as PyTorch does.
    """
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other (or neither, for nonzero)")
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool tensor, got {describe(condition)}")
    if condition._dtype is not _dt.bool:
        raise TypeError(f"where: condition must be a bool tensor, got {condition._dtype.name}; "
                        f"use a comparison (x > 0) or condition.to(polyten.bool)")
    dev = condition._device
    xs = [input, other]
    for i, v in enumerate(xs):
        if isinstance(v, Tensor):
            if v._device is not dev:
                raise device_mismatch("where", [condition] + [t for t in xs
                                                              if isinstance(t, Tensor)])
        elif is_scalar(v):
            xs[i] = scalar_value(v)
        else:
            xs[i] = as_operand(v, condition, "where")
    input, other = xs
    tx, ty = isinstance(input, Tensor), isinstance(other, Tensor)
    if tx and ty:
        cd = _PROMOTE[(input._dtype, other._dtype)]
    elif tx:
        cd = _scalar_dtype(other, input._dtype)
    elif ty:
        cd = _scalar_dtype(input, other._dtype)
    else:
        cd = _dt.result_type(input, other)
    shape = condition._data.shape
    for v in (input, other):
        if isinstance(v, Tensor):
            shape = check_broadcast("where", shape, v._data.shape)
    a = cast(input, cd) if tx else _fit_scalar("where", input, cd)
    b = cast(other, cd) if ty else _fit_scalar("where", other, cd)
    if not tx and not ty:
        from .creation import full
        a = full((), input, dtype=cd, device=dev)._data
    return _rec("where", wrap(_where_k[dev.backend](condition._data, a, b), dev, cd),
                (condition, input, other))


_clamp_k = kernels("clamp")
_clamp_ok = _accepted(OPS["clamp"])
_copy_k = kernels("copy")


def clamp(input, min=None, max=None):
    """Clamp ``input`` into ``[min, max]`` (``torch.clamp``; Array API ``clip``).

    ``min``/``max`` may be numbers (weak: ``int_tensor.clamp(0.5, 1.5)`` is float) or tensors
    (broadcast with ``input``); NaN propagates; where ``min > max`` the result is ``max``.
    """
    _check_tensor("clamp", input)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    dev = input._device
    cd = input._dtype
    for b in (min, max):
        if isinstance(b, Tensor):
            if b._device is not dev:
                raise device_mismatch("clamp", (input, b))
            check_broadcast("clamp", input._data.shape, b._data.shape)
            cd = _PROMOTE[(cd, b._dtype)]
        elif b is not None:
            if not is_scalar(b):
                raise TypeError(f"clamp: min/max must be numbers or tensors, got {describe(b)}")
            cd = _scalar_dtype(scalar_value(b), cd)
    if cd not in _clamp_ok:
        raise unsupported("clamp", OPS["clamp"], input._dtype, cd)
    bounds = []
    for i, b in enumerate((min, max)):
        if isinstance(b, Tensor):
            bounds.append(cast(b, cd))
        elif b is None:
            bounds.append(None)
        else:
            v = scalar_value(b)
            if cd.kind in "iu" and v.__class__ is _int:
                lo, hi = _IRANGE[cd]
                # a bound beyond the dtype's range either never binds or can't be met
                if (i == 0 and v < lo) or (i == 1 and v > hi):
                    v = None
                elif not lo <= v <= hi:
                    raise OverflowError(f"clamp: {'min' if i == 0 else 'max'}={v} is out of "
                                        f"range for {cd.name} ({lo} to {hi})")
            bounds.append(v)
    x = cast(input, cd)
    if bounds[0] is None and bounds[1] is None:
        return wrap(_copy_k[dev.backend](x), dev, cd)
    return _rec("clamp", wrap(_clamp_k[dev.backend](x, bounds[0], bounds[1]), dev, cd),
                (input, min, max))


def clip(x, /, min=None, max=None):
    """Array API ``clip`` (same as :func:`clamp`, except that with neither bound it returns a
    copy of ``x``, as the standard specifies, where ``clamp`` raises as PyTorch's does)."""
    if min is None and max is None:
        _check_tensor("clip", x)
        return x.clone()
    return clamp(x, min, max)


def clamp_min(input, min):
    """``clamp(input, min=min)``."""
    return clamp(input, min, None)


def clamp_max(input, max):
    """``clamp(input, max=max)``."""
    return clamp(input, None, max)


_nan_k = kernels("nan_to_num")


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """Replace NaN with ``nan`` and infinities with ``posinf``/``neginf`` (default: the dtype's
    largest / smallest finite value). Non-floating tensors are returned as a copy."""
    _check_tensor("nan_to_num", input)
    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        return wrap(_copy_k[input._device.backend](input._data), input._device, input._dtype)
    for label, v in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if v is not None and (not is_scalar(v) or isinstance(scalar_value(v), complex)):
            raise TypeError(f"nan_to_num: {label} must be a real number, got {describe(v)}")
    fi = _dt.finfo(input._dtype)
    posinf = fi.max if posinf is None else _float(posinf)
    neginf = fi.min if neginf is None else _float(neginf)
    return _rec("nan_to_num", wrap(_nan_k[input._device.backend](input._data, _float(nan), posinf, neginf),
                input._device, input._dtype), (input,))


_isclose_k = kernels("isclose")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (``torch.isclose``).

    Infinities are close to themselves; NaN is close to NaN only with ``equal_nan``.  Integer
    and bool inputs are compared in float64; ``other`` may be a Python number.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"isclose(): expected a tensor, got {describe(input)}")
    for label, v in (("rtol", rtol), ("atol", atol)):
        if not is_scalar(v) or isinstance(scalar_value(v), complex) or not v >= 0:
            raise ValueError(f"isclose: {label} must be a non-negative number, got {v!r}")
    dev = input._device
    if isinstance(other, Tensor):
        if other._device is not dev:
            raise device_mismatch("isclose", (input, other))
        cd = _PROMOTE[(input._dtype, other._dtype)]
        check_broadcast("isclose", input._data.shape, other._data.shape)
    elif is_scalar(other):
        other = scalar_value(other)
        cd = _scalar_dtype(other, input._dtype)
    else:
        other = as_operand(other, input, "isclose")
        cd = _PROMOTE[(input._dtype, other._dtype)]
        check_broadcast("isclose", input._data.shape, other._data.shape)
    if cd.kind in "biu":
        cd = _float64  # exact for every int that float64 holds
    if not isinstance(other, Tensor):
        from .creation import full
        other = full((), other, dtype=cd, device=dev)
    x, y = wrap(cast(input, cd), dev, cd), wrap(cast(other, cd), dev, cd)
    k = _isclose_k[dev.backend]
    if k is None:
        return _isclose_default(x, y, _float(rtol), _float(atol), builtins.bool(equal_nan))
    return wrap(k(x._data, y._data, _float(rtol), _float(atol), builtins.bool(equal_nan)), dev,
                _dt.bool)


def _isclose_default(input, other, rtol, atol, equal_nan):
    # infinities are close only to themselves: the tolerance test is for finite pairs
    finite = logical_and(isfinite(input), isfinite(other))  # noqa: F821
    diff = abs(sub(input, other))  # noqa: F821
    close = logical_and(finite, le(diff, add(mul(abs(other), rtol), atol)))  # noqa: F821
    close = logical_or(close, eq(input, other))  # noqa: F821
    if equal_nan:
        close = logical_or(close, logical_and(isnan(input), isnan(other)))  # noqa: F821
    return close


register_default("isclose", _isclose_default)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> builtins.bool:
    """Whether every element of ``input`` is close to ``other`` (see :func:`isclose`)."""
    from .reduction import all as _all
    return builtins.bool(_all(isclose(input, other, rtol, atol, equal_nan)).item())


def float_power(input, exponent):
    """``input ** exponent`` computed in float64 (complex128 for complex inputs)."""
    t = input if isinstance(input, Tensor) else exponent
    if not isinstance(t, Tensor):
        raise TypeError(f"float_power(): expected at least one tensor operand, got "
                        f"{describe(input)} and {describe(exponent)}")
    cplx = any(isinstance(v, Tensor) and v._dtype.is_complex or
               (not isinstance(v, Tensor) and isinstance(v, builtins.complex))
               for v in (input, exponent))
    target = _dt.complex128 if cplx else _dt.float64
    # to(): a recorded cast, so the gradient reaches both operands (as torch's float_power)
    a = input.to(target) if isinstance(input, Tensor) else input
    b = exponent.to(target) if isinstance(exponent, Tensor) else exponent
    return pow(a, b)  # noqa: F821


# -- aliases: PyTorch and Array API names ---------------------------------------------------
subtract = sub
multiply = mul  # noqa: F821
divide = div
true_divide = _true_div
negative = neg  # noqa: F821
absolute = abs  # noqa: F821
arcsin, arccos, arctan = asin, acos, atan  # noqa: F821
arcsinh, arccosh, arctanh = asinh, acosh, atanh  # noqa: F821
arctan2 = atan2  # noqa: F821
greater, greater_equal, less, less_equal = gt, ge, lt, le  # noqa: F821
equal = eq  # noqa: F821  (Array API `equal` is elementwise)
not_equal = ne  # noqa: F821
bitwise_invert = bitwise_not  # noqa: F821
mod = remainder  # noqa: F821
fix = trunc  # noqa: F821

__all__ = sorted(set(_UNARY + _BINARY + [
    "add", "sub", "rsub", "relu", "round", "where", "clamp", "clip", "clamp_min", "clamp_max",
    "nan_to_num", "isclose", "allclose", "float_power", "subtract", "multiply", "divide",
    "true_divide", "negative", "absolute", "arcsin", "arccos", "arctan", "arcsinh", "arccosh",
    "arctanh", "arctan2", "greater", "greater_equal", "less", "less_equal", "equal",
    "not_equal", "bitwise_invert", "mod", "fix", "polygamma", "mvlgamma"]))


# ------------------------------------------------------------------------- in place ---
_inplace_k = kernels("inplace")
_setitem_k = kernels("setitem")


def _inplace_default(op, x, y, backend):
    """Default of the composite ``inplace`` op on native arrays: compute, then ``setitem``."""
    if op is None:
        src = y
    else:
        k = kernels(op)[backend]
        src = k(x) if y is None else k(x, y)
    _setitem_k[backend](x, (Ellipsis,), src)
    return x


register_default("inplace", _inplace_default)


def _write(iname: str, t: Tensor, op, y) -> Tensor:
    """Store ``op(t, y)`` (``op`` None: ``y``) into ``t``'s memory; y native/scalar of t's dtype."""
    b = t._device.backend
    k = _inplace_k[b]
    try:
        if k is not None:
            k(op, t._data, y)
        else:
            _inplace_default(op, t._data, y, b)
    except ValueError as exc:  # e.g. NumPy: "output array is read-only"
        raise RuntimeError(
            f"{iname}: can't write into this {describe(t)}: {exc}. Tensors made by expand() / "
            f"broadcast_to() or from read-only arrays can't be modified in place; clone() "
            f"first.") from None
    return t


def _cast_error(iname: str, res, dt, hint: str = "") -> TypeError:
    return TypeError(f"{iname}: result type {res.name} can't be cast to the desired output "
                     f"type {dt.name}; compute out of place{hint} or cast first, e.g. "
                     f"x = x.to(polyten.{res.name})")


def _shape_error(iname: str, shape, bshape) -> ValueError:
    return ValueError(f"{iname}: output with shape {fmt_shape(shape)} doesn't match the "
                      f"broadcast shape {fmt_shape(bshape)}; in-place ops can't grow the "
                      f"tensor, compute out of place instead")


def _assign_result(iname: str, t: Tensor, res: Tensor) -> Tensor:
    """Write the out-of-place result ``res`` of an in-place method into ``t``."""
    dt = t._dtype
    if res._dtype is not dt:
        if not _kind_castable(res._dtype, dt):
            raise _cast_error(iname, res._dtype, dt)
        data = cast(res, dt)
    else:
        data = res._data
    if data.shape != t._data.shape:
        raise _shape_error(iname, t._data.shape, data.shape)
    return _write(iname, t, None, data)


def _graph_inplace(iname: str, t: Tensor, fn, args: tuple, kwargs=None):
    """An in-place op where autograd is involved: compute out of place (recorded), write the
    result into ``t``'s memory and make ``t`` the result in the graph (PyTorch's rebase).

    Returns ``None`` when no operand requires grad (the caller's fast path applies).
    """
    t_req = t._ag is not None and t._ag.requires_grad
    o_req = any(getattr(a, "_ag", None) is not None and a._ag.requires_grad for a in args)
    if not (t_req or o_req):
        return None
    if t_req and t._ag.grad_fn is None:
        check_inplace(iname, t)  # raises: a leaf that requires grad
    view = _view_of(t)
    if view is not None:
        _check_view_write(iname, t, view)  # raises: a view of a leaf that requires grad
    f = globals()[fn] if isinstance(fn, str) else fn
    # a rule that saves its inputs would see t's new contents (and the version check would
    # refuse it): give it a recorded copy of the old value instead
    saves = _rule(fn).save_inputs if isinstance(fn, str) else True
    src = t.clone() if saves and t_req else t
    res = f(src, *args, **(kwargs or {}))
    if res._data.shape != t._data.shape:
        raise _shape_error(iname, t._data.shape, res._data.shape)
    if res._dtype is not t._dtype:
        if not _kind_castable(res._dtype, t._dtype):
            raise _cast_error(iname, res._dtype, t._dtype)
        res = res.to(t._dtype)
    if res._ag is None or not res._ag.requires_grad:
        # fn recorded nothing (an op without a derivative): there is no node for t to take
        raise RuntimeError(f"{iname}: this op has no derivative, so it cannot write into a "
                           f"tensor that is part of an autograd graph (shape "
                           f"{fmt_shape(t._data.shape)}, {t._dtype.name}); apply it to "
                           f"x.detach() or under polyten.no_grad()")
    _write(iname, t, None, res._data)
    bump_version(t)
    ag = t._ag
    if ag is None:
        from ..autograd.meta import AutogradMeta
        ag = t._ag = AutogradMeta(True)
    ag.requires_grad = True
    ag.grad_fn = res._ag.grad_fn
    ag.output_nr = res._ag.output_nr
    if view is not None:
        _rebase_root(t, view)  # the root's graph sees the write (PyTorch's CopySlices)
    elif getattr(t, "_views", None):
        _refresh_views(t)  # views made before the write see the new grad_fn
    return t


def _inplace_binary(name: str, *, dunder: bool = False):
    """``t.add_(other)`` / ``t += other``: compute ``name`` and write it into ``t``."""
    opdef = OPS[name]
    cache = kernels(name)
    accepted = _accepted(opdef)
    to_float = opdef.result == "promote_float"
    iname = f"{name}_"
    sym = _SYMBOLS.get(name)
    hint = f" (x = x {sym} y)" if sym else f" (x = polyten.{name}(x, y))"
    is_pow = name == "pow"
    hot = frozenset(d for d in accepted if d.kind in "fc")
    fused = frozenset(d for d in accepted if not (to_float and d.kind in "biu"))

    def method(self, other):
        if (self._ag is not None or getattr(other, "_ag", None) is not None) and _grad_on():
            r = _graph_inplace(iname, self, name, (other,))
            if r is not None:
                return r
        check_inplace(iname, self)
        dt = self._dtype
        oc = other.__class__
        # hot paths (same dtype, or a float tensor with a Python number): write directly; any
        # failure is redone below, where the message is made
        if oc is Tensor:
            if other._dtype is dt and dt in fused and other._device is self._device:
                k = _inplace_k[self._device.backend]
                if k is not None:
                    try:
                        k(name, self._data, other._data)
                        return self
                    except Exception:
                        pass
        elif oc is float or oc is int:
            if dt in hot:
                k = _inplace_k[self._device.backend]
                if k is not None:
                    try:
                        k(name, self._data, other)
                        return self
                    except Exception:
                        pass
        if oc is Tensor or isinstance(other, Tensor):
            dev = self._device
            if other._device is not dev:
                raise device_mismatch(iname, (self, other))
            od = other._dtype
            cd = dt if od is dt else _PROMOTE[(dt, od)]
            if cd not in accepted:
                raise unsupported(iname, opdef, dt, od)
            if to_float and cd.kind in "biu":
                cd = _DEFAULT[0]
            yd = other._data
            shape = self._data.shape
            if yd.shape != shape:
                bshape = check_broadcast(iname, shape, yd.shape)
                if bshape != shape:
                    raise _shape_error(iname, shape, bshape)
            if cd is dt:
                return _write(iname, self, name, yd if od is dt else cast(other, dt))
            if not _kind_castable(cd, dt):
                raise _cast_error(iname, cd, dt, hint)
            # computed in the wider dtype, then rounded into self (PyTorch's semantics)
            out = cache[dev.backend](cast(self, cd), cast(other, cd))
            return _write(iname, self, None, _dt_cast(out, cd, dt, dev))
        if oc is float or oc is int or is_scalar(other):
            s = other if (oc is float or oc is int) else scalar_value(other)
            cd = _scalar_dtype(s, dt)
            if cd not in accepted:
                raise unsupported(iname, opdef, dt, cd)
            if to_float and cd.kind in "biu":
                cd = _DEFAULT[0]
            if cd is not dt:
                raise _cast_error(iname, cd, dt, hint)
            if cd.kind in "iu" and s.__class__ is _int:
                lo, hi = _IRANGE[cd]
                if not lo <= s <= hi:
                    s, _ = _int_scalar_out_of_range(name, s, cd, iname)
                if is_pow and s < 0:
                    raise ValueError(f"pow_: integers to negative integer powers are not "
                                     f"allowed ({dt.name} tensor ** {s})")
            try:
                return _write(iname, self, name, s)
            except OverflowError:
                raise _scalar_overflow(iname, s, cd) from None
        if dunder and not (hasattr(other, "__array__") or hasattr(other, "__dlpack__")
                           or isinstance(other, (list, tuple))):
            return NotImplemented
        return method(self, as_operand(other, self, iname))

    method.__name__ = method.__qualname__ = f"__i{name}__" if dunder else iname
    method.__doc__ = f"In-place :func:`{name}`: writes the result into this tensor."
    return method


def _dt_cast(data, src, dst, dev):
    return cast(wrap(data, dev, src), dst)


def _inplace_unary(name: str):
    """``t.exp_()``: a unary op written into ``t`` (directly when the dtype is kept)."""
    fn = globals()[name]
    opdef = OPS[name]
    accepted = _accepted(opdef)
    rule = opdef.result
    iname = f"{name}_"

    def method(self):
        if self._ag is not None and _grad_on():
            r = _graph_inplace(iname, self, name, ())
            if r is not None:
                return r
        check_inplace(iname, self)
        dt = self._dtype
        if dt in accepted and (rule == "same" or (rule == "float" and dt.kind in "fc")
                               or (rule == "real" and dt.kind != "c")):
            return _write(iname, self, name, None)
        return _assign_result(iname, self, fn(self))

    method.__name__ = method.__qualname__ = iname
    method.__doc__ = f"In-place :func:`{name}`: writes the result into this tensor."
    return method


def _inplace_generic(name: str, fn):
    iname = f"{name}_"

    def method(self, *args, **kwargs):
        if _grad_on() and (self._ag is not None or any(
                getattr(a, "_ag", None) is not None for a in args)):
            r = _graph_inplace(iname, self, fn, args, kwargs)
            if r is not None:
                return r
        check_inplace(iname, self)
        return _assign_result(iname, self, fn(self, *args, **kwargs))

    method.__name__ = method.__qualname__ = iname
    method.__doc__ = f"In-place :func:`{name}`: writes the result into this tensor."
    return method


def _with_alpha(op, imethod):
    def method(self, other, *, alpha=1):
        if not (alpha.__class__ is int and alpha == 1):
            other = _scaled(f"{op}_", self, other, alpha)
        return imethod(self, other)

    method.__name__ = method.__qualname__ = f"{op}_"
    method.__doc__ = f"In-place :func:`{op}` (``alpha`` scales ``other``)."
    return method


# ------------------------------------------------------------------------ Tensor methods ---
TENSOR_METHODS = {}
_OPERATORS = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "div",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "pow",
              "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
              "lshift": "bitwise_left_shift", "rshift": "bitwise_right_shift"}
for _k, _op in _OPERATORS.items():
    TENSOR_METHODS[f"__{_k}__"] = _binary(_op, dunder=True)
    TENSOR_METHODS[f"__r{_k}__"] = _binary(_op, dunder=True, reflected=True)
    TENSOR_METHODS[f"__i{_k}__"] = _inplace_binary(_op, dunder=True)
for _k in ("eq", "ne", "lt", "le", "gt", "ge"):
    TENSOR_METHODS[f"__{_k}__"] = _binary(_k, dunder=True)
TENSOR_METHODS.update({
    "__neg__": neg, "__pos__": positive, "__abs__": abs, "__invert__": bitwise_not,  # noqa
    "__hash__": builtins.object.__hash__,
    # builtins.round(t) / round(t, 2): a tensor, as torch
    "__round__": lambda self, ndigits=None: round(self, 0 if ndigits is None else ndigits),
})
for _n in __all__:
    if _n not in ("where", "clip", "real", "imag", "allclose", "isclose"):
        TENSOR_METHODS[_n] = globals()[_n]
TENSOR_METHODS.update({
    # torch's x.where(condition, y) is where(condition, x, y)
    "where": lambda self, condition, other: where(condition, self, other),
    "clip": clamp, "isclose": isclose, "allclose": allclose,
    # torch's x.polygamma(n) is polygamma(n, x)
    "polygamma": lambda self, n: polygamma(n, self),
    "real": property(real), "imag": property(imag),  # noqa: F821  (attributes, as torch)
})

for _n in _BINARY:
    if OPS[_n].result != "bool":
        TENSOR_METHODS[f"{_n}_"] = _inplace_binary(_n)
TENSOR_METHODS["add_"] = _with_alpha("add", TENSOR_METHODS["add_"])
TENSOR_METHODS["sub_"] = _with_alpha("sub", TENSOR_METHODS["sub_"])
for _n in _UNARY:
    if OPS[_n].result not in ("bool", "int64") and _n not in ("real", "imag"):
        TENSOR_METHODS[f"{_n}_"] = _inplace_unary(_n)
for _n, _f in (("clamp", clamp), ("clip", clamp), ("clamp_min", clamp_min),
               ("clamp_max", clamp_max), ("round", round), ("nan_to_num", nan_to_num),
               ("relu", relu), ("float_power", float_power), ("mvlgamma", mvlgamma),
               ("polygamma", lambda self, n: polygamma(n, self))):
    TENSOR_METHODS[f"{_n}_"] = _inplace_generic(_n, _f)
for _alias, _n in (("multiply", "mul"), ("subtract", "sub"), ("divide", "div"),
                   ("true_divide", "div"), ("negative", "neg"), ("absolute", "abs"),
                   ("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"),
                   ("arcsinh", "asinh"), ("arccosh", "acosh"), ("arctanh", "atanh"),
                   ("arctan2", "atan2"), ("fix", "trunc")):
    TENSOR_METHODS[f"{_alias}_"] = TENSOR_METHODS[f"{_n}_"]
# div / divide take torch's rounding_mode (in place too)
TENSOR_METHODS["div"] = TENSOR_METHODS["divide"] = _div_method
_plain_div_ = TENSOR_METHODS["div_"]


def _div_(self, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _plain_div_(self, other)
    return _inplace_generic("div", lambda t, o: div(t, o, rounding_mode=rounding_mode))(
        self, other)


_div_.__name__ = "div_"
TENSOR_METHODS["div_"] = TENSOR_METHODS["divide_"] = _div_
del _k, _op, _n, _f, _alias
