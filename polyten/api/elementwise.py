"""Elementwise functions, generated from the op table with one set of boundary checks.

Each public function (``polyten.add``, ``polyten.exp``, ...) and each operator
(``a + b``, ``a += b``, ``-a``) is made here by :func:`_unary` or :func:`_binary` from its
``OpDef``: device check, weak-scalar promotion, dtype-category check, broadcast check, one
cached kernel lookup, one kernel call, one wrap.  The hot path has no ``*args`` plumbing.
"""

from __future__ import annotations

import builtins

from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import dtype_error, fmt_shape
from ..dispatch.optable import OPS
from . import dtypes as _dt
from ._core import (Tensor, as_operand, cast, check_broadcast, describe, device_mismatch,
                    is_scalar, scalar_value, wrap)

_PROMOTE = _dt._PROMOTE
_DEFAULT = _dt._default_float
_scalar_dtype = _dt.scalar_dtype_for
_KIND_NAMES = {"any": "any dtype", "numeric": "numeric (non-bool) dtypes",
               "real": "real (non-complex) dtypes", "real_numeric": "real numeric dtypes",
               "floating": "floating-point dtypes", "real_floating": "real floating dtypes",
               "integer": "integer dtypes", "integer_or_bool": "integer or bool dtypes",
               "bool": "bool"}


def _accepted(opdef):
    return frozenset(_dt.DTYPES[n] for n in opdef.accepted)


def unsupported(op: str, opdef, *dts) -> TypeError:
    names = " and ".join(dict.fromkeys(d.name for d in dts))
    hint = {"integer_or_bool": " Cast first, e.g. x.to(polyten.int32).",
            "integer": " Cast first, e.g. x.to(polyten.int32).",
            "floating": " Cast first, e.g. x.to(polyten.float32).",
            "real_floating": " Cast first, e.g. x.to(polyten.float32).",
            "real": " Use x.real / x.abs() for complex inputs.",
            "real_numeric": " Cast first, e.g. x.to(polyten.float32)."}.get(opdef.dtypes, "")
    return dtype_error(op, f"not supported for {names}; {op} takes "
                           f"{_KIND_NAMES[opdef.dtypes]}.{hint}")


def _unary(name: str, doc: str = ""):
    opdef = OPS[name]
    cache = kernels(name)
    accepted = _accepted(opdef)
    rule = opdef.result

    if rule == "float":
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
            return wrap(cache[dev.backend](data), dev, dt)
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
            return wrap(out, dev, dt.to_real() if to_real else dt)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise ``{opdef.signature}``. {opdef.doc}".strip()
    return fn


def _binary(name: str, doc: str = "", *, dunder: bool = False, alpha: bool = False):
    """Build ``fn(input, other)``; scalars are weak; both operands may be tensors or one a number.

    ``dunder=True`` builds the operator form: it returns ``NotImplemented`` for operands it does
    not know, so Python can try the other operand's reflected method.  ``alpha=True`` adds
    ``add``/``sub``'s keyword ``alpha`` (``input + alpha * other``).
    """
    opdef = OPS[name]
    cache = kernels(name)
    accepted = _accepted(opdef)
    rule = opdef.result
    fixed = _dt.bool if rule == "bool" else None
    to_float = rule == "promote_float"

    def slow(input, other):
        # scalars, NumPy scalars, foreign arrays, device mismatch
        if isinstance(input, Tensor):
            if isinstance(other, Tensor):
                raise device_mismatch(name, (input, other))
            if is_scalar(other):
                other = scalar_value(other)
                return _scalar_op(input, other, _scalar_dtype(other, input._dtype), False)
            if dunder and not (hasattr(other, "__array__") or hasattr(other, "__dlpack__")
                               or isinstance(other, (list, tuple))):
                return NotImplemented
            return fn(input, as_operand(other, input, name))
        if isinstance(other, Tensor):
            if is_scalar(input):
                input = scalar_value(input)
                return _scalar_op(other, input, _scalar_dtype(input, other._dtype), True)
            return fn(as_operand(input, other, name), other)
        raise TypeError(f"{name}(): expected at least one tensor operand, got "
                        f"{describe(input)} and {describe(other)}")

    def _scalar_op(t, s, cd, reflected):
        if cd not in accepted:
            raise unsupported(name, opdef, t._dtype, cd)
        if to_float and cd.kind in "biu":
            cd = _DEFAULT[0]
        dev = t._device
        td = cast(t, cd)
        if cd.kind == "b" and type(s) is not builtins.bool:
            s = builtins.bool(s)
        out = cache[dev.backend](s, td) if reflected else cache[dev.backend](td, s)
        return wrap(out, dev, fixed or cd)

    def fn(input, other):
        if input.__class__ is Tensor and other.__class__ is Tensor:
            dev = input._device
            if other._device is not dev:
                return slow(input, other)
        elif isinstance(input, Tensor) and isinstance(other, Tensor):
            dev = input._device  # subclasses (nn.Parameter)
            if other._device is not dev:
                return slow(input, other)
        else:
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
        if xd.shape != yd.shape:
            check_broadcast(name, xd.shape, yd.shape)
        return wrap(cache[dev.backend](xd, yd), dev, fixed or cd)

    if alpha:
        plain = fn

        def fn_alpha(input, other, *, alpha=1):
            if alpha != 1:
                other = _binary_mul(other, alpha)
            return plain(input, other)
        result = fn_alpha
    else:
        result = fn
    result.__name__ = result.__qualname__ = name
    result.__doc__ = doc or (f"Elementwise ``{opdef.signature}`` with broadcasting and type "
                             f"promotion (Python scalars are weak). {opdef.doc}").strip()
    return result


def _binary_mul(a, b):
    return mul(a, b)  # noqa: F821


# ---------------------------------------------------------------------------- generation ---
_UNARY = [n for n, o in OPS.items() if o.arity == 1 and o.signature == f"{n}(x)"
          and o.kind == "primitive"]
_BINARY = [n for n, o in OPS.items() if o.signature == f"{n}(x, y)"]

_g = globals()
for _n in _UNARY:
    _g[_n] = _unary(_n)
for _n in _BINARY:
    _g[_n] = _binary(_n)
del _g, _n

add = _binary("add", "``input + alpha * other`` with broadcasting and type promotion "
                     "(``torch.add``; Python scalars are weak).", alpha=True)
sub = _binary("sub", "``input - alpha * other`` with broadcasting and type promotion "
                     "(``torch.sub``).", alpha=True)


def relu(input):
    """``max(x, 0)`` elementwise."""
    k = _relu_cache[input._device.backend]
    if k is None:
        return maximum(input, 0)  # noqa: F821
    if input._dtype not in _relu_ok:
        raise unsupported("relu", OPS["relu"], input._dtype)
    return wrap(k(input._data), input._device, input._dtype)


_relu_cache = kernels("relu")
_relu_ok = _accepted(OPS["relu"])
register_default("relu", lambda x: maximum(x, 0))  # noqa: F821

_round_k = kernels("round")
_round_ok = _accepted(OPS["round"])


def round(input, decimals=0):
    """Round half to even to ``decimals`` decimal places (``torch.round``)."""
    if input._dtype not in _round_ok:
        raise unsupported("round", OPS["round"], input._dtype)
    return wrap(_round_k[input._device.backend](input._data, int(decimals)), input._device,
                input._dtype)


_where_k = kernels("where")


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` is true, else of ``other`` (broadcasting).

    With only ``condition``, returns ``nonzero(condition, as_tuple=True)`` as PyTorch does.
    """
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool tensor, got {describe(condition)}")
    if condition._dtype is not _dt.bool:
        raise TypeError(f"where: condition must be a bool tensor, got {condition._dtype.name}; "
                        f"use a comparison (x > 0) or condition.to(polyten.bool)")
    tensors = [t for t in (condition, input, other) if isinstance(t, Tensor)]
    dev = condition._device
    for t in tensors:
        if t._device is not dev:
            raise device_mismatch("where", tensors)
    xs = [input, other]
    for i, v in enumerate(xs):
        if not isinstance(v, Tensor) and not is_scalar(v):
            xs[i] = as_operand(v, condition, "where")
        elif not isinstance(v, Tensor):
            xs[i] = scalar_value(v)
    input, other = xs
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        cd = _PROMOTE[(input._dtype, other._dtype)]
    elif isinstance(input, Tensor):
        cd = _scalar_dtype(other, input._dtype)
    elif isinstance(other, Tensor):
        cd = _scalar_dtype(input, other._dtype)
    else:
        cd = _dt.result_type(input, other)
    shape = condition._data.shape
    for v in (input, other):
        if isinstance(v, Tensor):
            shape = check_broadcast("where", shape, v._data.shape)
    a = cast(input, cd) if isinstance(input, Tensor) else input
    b = cast(other, cd) if isinstance(other, Tensor) else other
    if not isinstance(a, Tensor) and not isinstance(b, Tensor) and not \
            isinstance(input, Tensor) and not isinstance(other, Tensor):
        from .creation import full
        a = full((), input, dtype=cd, device=dev)._data
    return wrap(_where_k[dev.backend](condition._data, a, b), dev, cd)


_clamp_k = kernels("clamp")
_clamp_ok = _accepted(OPS["clamp"])


def clamp(input, min=None, max=None):
    """Clamp ``input`` into ``[min, max]``; ``min``/``max`` may be numbers or tensors (``torch.clamp``)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    dev = input._device
    cd = input._dtype
    bounds = []
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
        raise unsupported("clamp", OPS["clamp"], cd)
    for b in (min, max):
        bounds.append(cast(b, cd) if isinstance(b, Tensor) else
                      (None if b is None else scalar_value(b)))
    out = _clamp_k[dev.backend](cast(input, cd), bounds[0], bounds[1])
    return wrap(out, dev, cd)


clip = clamp

_nan_k = kernels("nan_to_num")


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """Replace NaN with ``nan`` and infinities with ``posinf``/``neginf`` (default: the dtype's
    largest / smallest finite value). Non-floating tensors are returned as a copy."""
    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        from .shape import clone
        return clone(input)
    fi = _dt.finfo(input._dtype)
    posinf = fi.max if posinf is None else builtins.float(posinf)
    neginf = fi.min if neginf is None else builtins.float(neginf)
    return wrap(_nan_k[input._device.backend](input._data, builtins.float(nan), posinf, neginf),
                input._device, input._dtype)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (``torch.isclose``)."""
    k = kernels("isclose")[input._device.backend]
    if k is not None:
        cd = _PROMOTE[(input._dtype, other._dtype)]
        return wrap(k(cast(input, cd), cast(other, cd), rtol, atol, equal_nan),
                    input._device, _dt.bool)
    return _isclose_default(input, other, rtol, atol, equal_nan)


def _isclose_default(input, other, rtol, atol, equal_nan):
    diff = abs(sub(input, other))  # noqa: F821
    close = le(diff, add(mul(abs(other), rtol), atol))  # noqa: F821
    close = logical_or(close, eq(input, other))  # noqa: F821  (equal infinities)
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
    target = _dt.complex128 if (t._dtype.is_complex or isinstance(exponent, complex)) \
        else _dt.float64
    a = input.to(target) if isinstance(input, Tensor) else input
    b = exponent.to(target) if isinstance(exponent, Tensor) else exponent
    return pow(a, b)  # noqa: F821


# -- aliases: PyTorch and Array API names ---------------------------------------------------
subtract = sub
multiply = mul
divide = true_divide = div  # noqa: F821
negative = neg  # noqa: F821
absolute = abs  # noqa: F821
arcsin, arccos, arctan = asin, acos, atan  # noqa: F821
arcsinh, arccosh, arctanh = asinh, acosh, atanh  # noqa: F821
arctan2 = atan2  # noqa: F821
greater, greater_equal, less, less_equal = gt, ge, lt, le  # noqa: F821
equal = eq  # noqa: F821  (Array API `equal` is elementwise)
not_equal = ne  # noqa: F821
pow_ = pow  # noqa: F821
bitwise_invert = bitwise_not  # noqa: F821
bitwise_left_shift_ = bitwise_left_shift  # noqa: F821
mod = remainder  # noqa: F821


def _sigmoid_alias(input):
    return sigmoid(input)  # noqa: F821


__all__ = sorted(set(_UNARY + _BINARY + [
    "add", "sub", "relu", "round", "where", "clamp", "clip", "nan_to_num", "isclose",
    "allclose", "float_power", "subtract", "multiply", "divide", "true_divide", "negative",
    "absolute", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "arctan2",
    "greater", "greater_equal", "less", "less_equal", "not_equal", "bitwise_invert", "mod"]))


# ------------------------------------------------------------------------ Tensor methods ---
def _reflect(f):
    def r(self, other):
        return f(other, self)
    r.__name__ = f"__r{f.__name__}__"
    return r


def _inplace(f, name):
    def method(self, other):
        res = f(self, other)
        if res._dtype is not self._dtype:
            raise TypeError(f"{name}_: result type {res._dtype.name} can't be cast to the "
                            f"desired output type {self._dtype.name}; use an out-of-place "
                            f"op (x = x {name} y) or cast first")
        if res._data.shape != self._data.shape:
            raise ValueError(f"{name}_: output with shape {fmt_shape(self._data.shape)} doesn't "
                             f"match the broadcast shape {fmt_shape(res._data.shape)}")
        from .indexing import _assign_all
        _assign_all(self, res)
        return self
    method.__name__ = f"{name}_"
    return method


TENSOR_METHODS = {}
_OPERATORS = {"add": add, "sub": sub, "mul": mul, "truediv": div, "floordiv": floor_divide,  # noqa
              "mod": remainder, "pow": pow, "and": bitwise_and, "or": bitwise_or,  # noqa
              "xor": bitwise_xor, "lshift": bitwise_left_shift,  # noqa
              "rshift": bitwise_right_shift}  # noqa
for _k, _f in _OPERATORS.items():
    TENSOR_METHODS[f"__{_k}__"] = _binary(_f.__name__, dunder=True)
    TENSOR_METHODS[f"__r{_k}__"] = _reflect(_f)
    TENSOR_METHODS[f"__i{_k}__"] = _inplace(_f, _k)
for _k in ("eq", "ne", "lt", "le", "gt", "ge"):
    TENSOR_METHODS[f"__{_k}__"] = _binary(_k, dunder=True)
TENSOR_METHODS.update({
    "__neg__": neg, "__pos__": positive, "__abs__": abs, "__invert__": bitwise_not,  # noqa
    "__hash__": builtins.object.__hash__,
})
_METHOD_NAMES = [n for n in __all__ if n not in ("where",)]
for _n in _METHOD_NAMES:
    TENSOR_METHODS[_n] = globals()[_n]
TENSOR_METHODS["where"] = lambda self, condition, other: where(condition, self, other)
for _n in ("add", "sub", "mul", "div", "pow", "neg", "abs", "clamp", "exp", "log", "sqrt",
           "sigmoid", "tanh", "relu", "floor_divide", "remainder", "maximum", "minimum",
           "sin", "cos", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc",
           "rsqrt", "erf", "log1p", "expm1", "nan_to_num", "clip", "fmod", "logical_not",
           "bitwise_not", "atan2", "hypot", "exp2", "log2", "log10", "tan", "asin", "acos",
           "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "copysign", "logaddexp",
           "multiply", "subtract", "divide", "true_divide", "negative"):
    TENSOR_METHODS[f"{_n}_"] = (lambda f, n: (lambda self, *a, **k: _inplace(
        lambda s, _o: f(s, *a, **k), n)(self, None)))(globals()[_n], _n)
