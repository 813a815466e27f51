"""Activation functions (``torch.nn.functional`` names, signatures and defaults).

Everything is written with polyten ops, so it differentiates and runs on every backend.
``softmax``, ``log_softmax``, ``gelu``, ``silu``, ``leaky_relu``, ``elu`` (also behind ``selu``
and ``celu``) and ``softplus`` are composite ops of the op table: a backend may fuse them (the
cpu and cuda backends do, forward and backward), otherwise the default below runs; either way
one node with the op's own derivative rule is recorded.

Formulas are chosen so that their gradients are right everywhere, overflow included: a branch
that ``where`` discards never holds an inf whose backward would turn ``0 * inf`` into NaN
(``elu`` takes ``expm1`` of ``min(x, 0)``; ``softplus`` clamps before ``exp``).
"""

from __future__ import annotations

import math

from ...api import autocast as _amp
from ...api import elementwise as _ew
from ...api import reduction as _red
from ...api._core import Tensor, describe, normalize_dim, wrap
from ...api.dtypes import LOW_PRECISION as _LOW
from ...api.dtypes import float32 as _float32
from ...api.dtypes import to_dtype
from ...autograd.grad_mode import grad_enabled as _grad_on
from ...autograd.graph import record as _record
from ...autograd.rules import rule as _rule
from ...dispatch.dispatcher import kernels, register_default

__all__ = ["relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "gelu", "silu", "elu", "elu_",
           "selu", "celu", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "softplus",
           "hardtanh", "hardtanh_", "logsigmoid", "softsign", "mish", "hardsigmoid",
           "hardswish", "tanhshrink", "threshold", "glu", "prelu", "hardshrink", "softshrink",
           "rrelu", "gumbel_softmax", "selu_", "celu_", "rrelu_", "threshold_"]

_where = _ew.where
_exp = _ew.exp


# ----------------------------------------------------------------------------- helpers ---
def _tensor(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a tensor as input, got {describe(x)}")


def _floating(op: str, x) -> None:
    """Activations that PyTorch defines for real floating tensors only."""
    _tensor(op, x)
    if x._dtype.kind != "f":
        raise TypeError(f"{op}: expected a real floating-point tensor, got {x._dtype.name} "
                        f"(shape {tuple(x.shape)}); cast first, e.g. x.to(polyten.float32)")


def _number(op: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, Tensor) and v.numel() == 1:
            return float(v.item())
        raise TypeError(f"{op}: {name} must be a number, got {describe(v)}")
    return v


def _inplace(input: Tensor, fn, *args) -> Tensor:
    """``fn(input, *args)`` written into ``input`` (the ``inplace=True`` form).

    When ``input`` takes part in a graph the result is computed from a recorded copy, so the
    nodes of ``fn`` never see the overwritten values (the rebase then makes ``input`` the
    result in the graph, as PyTorch's in-place activations do).
    """
    src = input.clone() if (input._ag is not None and input._ag.requires_grad and _grad_on()) \
        else input
    return input.copy_(fn(src, *args))


# ------------------------------------------------------------------- pointwise --------------
def relu(input, inplace: bool = False) -> Tensor:
    """``max(x, 0)`` elementwise (``torch.nn.functional.relu``)."""
    _tensor("relu", input)
    return input.relu_() if inplace else _ew.relu(input)


def relu_(input) -> Tensor:
    """In-place :func:`relu`."""
    return relu(input, inplace=True)


def relu6(input, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)`` (``hardtanh(x, 0, 6)``)."""
    return hardtanh(input, 0.0, 6.0, inplace)


# --------------------------------------------------- pointwise composites of the op table ---
def _pointwise_op(cache, grad_rule, input, params: dict) -> Tensor:
    """One pointwise composite: the backend's fused kernel (``cache[backend]``) or, where it
    has none, the polyten-op default on a plain alias (no nodes of its own); then one node with
    the op's rule.  ``params`` are the kernel's scalar arguments, in the signature's order."""
    data = input._data
    dev = input._device
    dt = input._dtype
    k = cache[dev.backend]
    if k is None:
        if dt in _LOW:  # computed in float32 and rounded once, as the fused kernels do
            out = _DEFAULTS[grad_rule.name](wrap(data, dev, dt).to(_float32),
                                            *params.values()).to(dt)
        else:
            out = _DEFAULTS[grad_rule.name](wrap(data, dev, dt), *params.values())
    else:
        out = wrap(k(data, *params.values()), dev, dt)
    if input._ag is not None and _grad_on():
        bk = dev.backend.backward_kernels.get(grad_rule.name)
        if bk is not None and getattr(bk, "wants_output", False):
            # the backend's fused backward may reuse the output (the cpu gelu derives Phi(x)
            # from it instead of a second erf): handed over with the version it has now, so
            # that the kernel can tell whether it was modified in place since; the rule itself
            # saves only the input, so modifying the output stays allowed, as in PyTorch
            v = out._version
            if v is None:
                v = out._version = [0]
            params = dict(params, output=(out._data, v, v[0]))
        _record(grad_rule, out, (input,), params)
    return out


def _leaky_default(x, negative_slope):
    return _where(x > 0, x, x * negative_slope)


def _leaky(x, slope):
    return _pointwise_op(_leaky_k, _leaky_rule, x, {"negative_slope": slope})


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    _floating("leaky_relu", input)
    negative_slope = float(_number("leaky_relu", "negative_slope", negative_slope))
    if inplace:
        return _inplace(input, _leaky, negative_slope)
    return _leaky(input, negative_slope)


def leaky_relu_(input, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, True)


_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _gelu_default(x, approximate):
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_PI
        return x * (_ew.tanh(inner) + 1.0) * 0.5
    return x * (_ew.erf(x * _SQRT1_2) + 1.0) * 0.5


def gelu(input, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: ``x * Phi(x)``; ``approximate='tanh'`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    _floating("gelu", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _pointwise_op(_gelu_k, _gelu_rule, input, {"approximate": approximate})


def _silu_default(x):
    return x * _ew.sigmoid(x)


def _silu(x):
    return _pointwise_op(_silu_k, _silu_rule, x, {})


def silu(input, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    _floating("silu", input)
    return _inplace(input, _silu) if inplace else _silu(input)


def _elu_default(x, alpha, scale, input_scale):
    # expm1 of min(x, 0): the discarded branch stays finite for large x (no 0 * inf in backward)
    neg = _ew.expm1(_ew.clamp(x, None, 0.0) * input_scale if input_scale != 1.0
                    else _ew.clamp(x, None, 0.0)) * alpha
    out = _where(x > 0, x, neg)
    return out * scale if scale != 1.0 else out


def _elu(x, alpha, scale=1.0, input_scale=1.0):
    return _pointwise_op(_elu_k, _elu_rule, x, {"alpha": float(alpha), "scale": float(scale),
                                                "input_scale": float(input_scale)})


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    _floating("elu", input)
    alpha = _number("elu", "alpha", alpha)
    if inplace:
        return _inplace(input, _elu, alpha)
    return _elu(input, alpha)


def elu_(input, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    _floating("selu", input)
    if inplace:
        return _inplace(input, _elu, _SELU_ALPHA, _SELU_SCALE)
    return _elu(input, _SELU_ALPHA, _SELU_SCALE)


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``."""
    _floating("celu", input)
    alpha = _number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    if inplace:
        return _inplace(input, _elu, alpha, 1.0, 1.0 / alpha)
    return _elu(input, alpha, 1.0, 1.0 / alpha)


def sigmoid(input) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    _tensor("sigmoid", input)
    return _ew.sigmoid(input)


def tanh(input) -> Tensor:
    """Hyperbolic tangent."""
    _tensor("tanh", input)
    return _ew.tanh(input)


def _softplus_default(x, beta, threshold):
    bx = x * beta if beta != 1 else x
    # exp of min(bx, threshold): the linear branch's exp never overflows
    soft = _ew.log1p(_exp(_ew.clamp(bx, None, threshold)))
    if beta != 1:
        soft = soft / beta
    return _where(bx > threshold, x, soft)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``; linear (``x``) where ``beta * x > threshold``."""
    if _amp.ACTIVE[0]:  # autocast: float32 (polyten.api.autocast.FP32)
        input = _amp.fp32(input)
    _floating("softplus", input)
    beta = _number("softplus", "beta", beta)
    threshold = _number("softplus", "threshold", threshold)
    return _pointwise_op(_softplus_k, _softplus_rule, input,
                         {"beta": float(beta), "threshold": float(threshold)})


def _hardtanh(x, lo, hi):
    # nested where, not clamp: the gradient is 0 at the bounds themselves, as PyTorch's
    return _where(x <= lo, lo, _where(x >= hi, hi, x))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """``x`` clamped to ``[min_val, max_val]``."""
    _floating("hardtanh", input)
    min_val = _number("hardtanh", "min_val", min_val)
    max_val = _number("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val "
                         f"({max_val})")
    if inplace:
        return _inplace(input, _hardtanh, min_val, max_val)
    return _hardtanh(input, min_val, max_val)


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, True)


def _stable_softplus(x):
    # max(x, 0) + log1p(exp(-|x|)): exact gradient 1/2 at 0 (maximum splits ties evenly)
    return _ew.maximum(x, 0.0) + _ew.log1p(_exp(-_ew.abs(x)))


def logsigmoid(input) -> Tensor:
    """``log(sigmoid(x))``, computed without overflow."""
    _floating("logsigmoid", input)
    return -_stable_softplus(-input)


def softsign(input) -> Tensor:
    """``x / (1 + |x|)``."""
    _floating("softsign", input)
    return input / (_ew.abs(input) + 1.0)


def mish(input, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    _floating("mish", input)

    def f(x):
        return x * _ew.tanh(softplus(x))
    return _inplace(input, f) if inplace else f(input)


def _hardsigmoid(x):
    return _where(x <= -3.0, 0.0, _where(x >= 3.0, 1.0, x / 6.0 + 0.5))


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """``0`` below -3, ``1`` above 3, ``x / 6 + 1/2`` between."""
    _floating("hardsigmoid", input)
    return _inplace(input, _hardsigmoid) if inplace else _hardsigmoid(input)


def _hardswish(x):
    return _where(x <= -3.0, 0.0, _where(x >= 3.0, x, x * (x + 3.0) / 6.0))


def hardswish(input, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)``."""
    _floating("hardswish", input)
    return _inplace(input, _hardswish) if inplace else _hardswish(input)


def tanhshrink(input) -> Tensor:
    """``x - tanh(x)``."""
    _floating("tanhshrink", input)
    return input - _ew.tanh(input)


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    _floating("hardshrink", input)
    return _where(_ew.abs(input) > lambd, input, 0.0)


def softshrink(input, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    _floating("softshrink", input)
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be non-negative, got {lambd}")
    return _where(input > lambd, input - lambd, _where(input < -lambd, input + lambd, 0.0))


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: in training each negative element is scaled by a slope drawn
    uniformly from ``[lower, upper]``; in evaluation by ``(lower + upper) / 2``."""
    _floating("rrelu", input)
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: expected 0 <= lower <= upper, got lower={lower} and "
                         f"upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    from ...api.random import rand_like
    slope = rand_like(input) * (upper - lower) + lower
    out = _where(input >= 0, input, input * slope)
    if inplace:
        from ...api.inplace import copy_
        return copy_(input, out)
    return out


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """A sample of the Gumbel-softmax distribution: ``softmax((logits + g) / tau)`` with
    Gumbel(0, 1) noise ``g``; ``hard=True`` returns the one-hot argmax in the forward pass and
    the soft sample's gradient in the backward (straight-through)."""
    _floating("gumbel_softmax", logits)
    from ...api.random import rand_like
    # -log(E) with E ~ Exp(1) = -log(-log(U)): Gumbel(0, 1)
    u = rand_like(logits)
    gumbels = -_ew.log(-_ew.log(u.clamp(min=1e-300 if logits.dtype.itemsize == 8 else 1e-38)))
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    from ...api.creation import zeros_like
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = zeros_like(logits).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``."""
    _tensor("threshold", input)
    threshold = _number("threshold", "threshold", threshold)
    value = _number("threshold", "value", value)

    def f(x):
        return _where(x > threshold, x, value)
    return _inplace(input, f) if inplace else f(input)


def glu(input, dim: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``dim``."""
    _floating("glu", input)
    if input.ndim == 0:
        raise ValueError("glu: does not support 0-d (scalar) tensors")
    d = normalize_dim(dim, input.ndim, "glu")
    n = input.shape[d]
    if n % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {dim} of input "
                         f"of shape {tuple(input.shape)} is size {n}")
    a = input.narrow(d, 0, n // 2)
    b = input.narrow(d, n // 2, n // 2)
    return a * _ew.sigmoid(b)


def prelu(input, weight) -> Tensor:
    """``x`` where ``x > 0``, else ``weight * x``; ``weight`` has 1 element or one per channel
    (dim 1 of the input)."""
    if _amp.ACTIVE[0]:
        input, weight = _amp.lower(input, weight)
    _floating("prelu", input)
    _tensor("prelu", weight)
    n = weight.numel()
    w = weight
    if n != 1:
        if input.ndim < 2 or input.shape[1] != n:
            raise ValueError(f"prelu: weight of {n} elements must have 1 element or one per "
                             f"channel (dim 1) of the input, got input of shape "
                             f"{tuple(input.shape)}")
        w = weight.reshape((n,) + (1,) * (input.ndim - 2))
    elif weight.ndim:
        w = weight.reshape(())
    return _where(input > 0, input, input * w)


# ------------------------------------------------------------------ softmax family ---------
def _softmax_default(x, dim):
    m = _red.amax(x, dim, True)
    e = _exp(x - m)
    return e / _red.sum(e, dim, True)


def _log_softmax_default(x, dim):
    z = x - _red.amax(x, dim, True)
    return z - _ew.log(_red.sum(_exp(z), dim, True))


register_default("softmax", _softmax_default)
register_default("log_softmax", _log_softmax_default)
_softmax_k = kernels("softmax")
_log_softmax_k = kernels("log_softmax")
_softmax_rule = _rule("softmax")
_log_softmax_rule = _rule("log_softmax")


def _softmax_op(name, cache, default, grad_rule, input, dim, dtype):
    _tensor(name, input)
    if dim is None:
        raise TypeError(f"{name}: dim is required (PyTorch's implicit choice of dim is "
                        f"deprecated); pass the dimension to normalise over, e.g. "
                        f"{name}(x, dim=-1)")
    if dtype is not None:
        input = input.to(to_dtype(dtype))
    elif _amp.ACTIVE[0] and input._dtype in _LOW:
        input = _amp.fp32(input)  # softmax and log_softmax run in float32 under autocast
    dt = input._dtype
    if dt.kind != "f":
        raise TypeError(f"{name}: expected a real floating-point tensor, got {dt.name}; pass "
                        f"dtype=polyten.float32 or cast first, e.g. x.to(polyten.float32)")
    data = input._data
    shape = data.shape
    d = normalize_dim(dim, len(shape), name)
    if not shape:  # a 0-d tensor is a single class: computed as shape (1,)
        return _softmax_op(name, cache, default, grad_rule, input.reshape(1), 0,
                           None).reshape(())
    dev = input._device
    if 0 in shape:
        from ...api.creation import zeros
        out = zeros(tuple(shape), dtype=dt, device=dev)
    else:
        k = cache[dev.backend]
        if k is None:
            # the default on a plain alias: no nodes of its own, the op's rule is recorded below
            out = default(wrap(data, dev, dt), d)
        else:
            out = wrap(k(data, d), dev, dt)
    if input._ag is not None and _grad_on():
        _record(grad_rule, out, (input,), {"dim": d})
    return out


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (computed shifted by the maximum).

    ``dtype``: cast the input to this dtype first (e.g. to compute a float16 input in
    float32).  ``dim`` is required.
    """
    return _softmax_op("softmax", _softmax_k, _softmax_default, _softmax_rule, input, dim,
                       dtype)


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably as ``x - max - log(sum(exp(x -
    max)))``.  ``dim`` is required."""
    return _softmax_op("log_softmax", _log_softmax_k, _log_softmax_default, _log_softmax_rule,
                       input, dim, dtype)


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    _tensor("softmin", input)
    if dtype is None and _amp.ACTIVE[0]:
        input = _amp.fp32(input)
    if dtype is not None:
        input = input.to(to_dtype(dtype))
    return _softmax_op("softmin", _softmax_k, _softmax_default, _softmax_rule, -input, dim,
                       None)


# ------------------------------------------------------ pointwise composites: registration ---
_DEFAULTS = {"gelu": _gelu_default, "silu": _silu_default, "leaky_relu": _leaky_default,
             "elu": _elu_default, "softplus": _softplus_default}
for _name, _fn in _DEFAULTS.items():
    register_default(_name, _fn)
_gelu_k, _silu_k, _leaky_k, _elu_k, _softplus_k = (
    kernels(n) for n in ("gelu", "silu", "leaky_relu", "elu", "softplus"))
_gelu_rule, _silu_rule, _leaky_rule, _elu_rule, _softplus_rule = (
    _rule(n) for n in ("gelu", "silu", "leaky_relu", "elu", "softplus"))


def _softmax_method(self, dim=None, dtype=None) -> Tensor:
    """``softmax(self, dim)`` (``torch.Tensor.softmax``)."""
    return softmax(self, dim, dtype=dtype)


def _log_softmax_method(self, dim=None, dtype=None) -> Tensor:
    """``log_softmax(self, dim)`` (``torch.Tensor.log_softmax``)."""
    return log_softmax(self, dim, dtype=dtype)


# installed on Tensor by polyten/__init__.py (nn loads after the api layer)
TENSOR_METHODS = {"softmax": _softmax_method, "log_softmax": _log_softmax_method}


def selu_(input) -> Tensor:
    """In-place :func:`selu`."""
    return selu(input, True)


def celu_(input, alpha: float = 1.0) -> Tensor:
    """In-place :func:`celu`."""
    return celu(input, alpha, True)


def rrelu_(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, True)


def threshold_(input, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    # (the parameter keeps torch's name and hides the function: reached through the module)
    return globals()["threshold"](input, threshold, value, True)
