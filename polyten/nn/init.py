"""polyten.nn.init: parameter initialisation (``torch.nn.init`` names, signatures and
defaults).

Every function fills its tensor in place under :func:`polyten.no_grad` and returns it.  Samples
come from the tensor's backend generator, so :func:`polyten.manual_seed` makes them
reproducible (a backend draws its own stream: the same seed gives other numbers than PyTorch),
or from ``generator=`` (a :class:`polyten.Generator` of the tensor's device) when given.
"""

from __future__ import annotations

import math
import warnings

from ..api._core import Tensor, describe
from ..autograd.grad_mode import no_grad

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
           "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "sparse_"]

_LINEAR_GAIN_1 = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid")


def _tensor(op: str, t) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"nn.init.{op}: expected a tensor, got {describe(t)}")


def calculate_gain(nonlinearity, param=None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table): 1 for linear / conv /
    sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope**2)) for leaky_relu (slope
    ``param``, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR_GAIN_1:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one "
                     f"of {', '.join(_LINEAR_GAIN_1)}, tanh, relu, leaky_relu, selu")


def _fans(op: str, tensor):
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"nn.init.{op}: fan in and fan out can not be computed for a tensor "
                         f"with fewer than 2 dimensions (got shape {shape})")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def _fan(op: str, tensor, mode: str) -> int:
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{op}: mode {mode!r} not supported, please use one of "
                         f"'fan_in', 'fan_out'")
    fan_in, fan_out = _fans(op, tensor)
    return fan_in if mode == "fan_in" else fan_out


# ------------------------------------------------------------------------------ basics -----
def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with samples of U(a, b)."""
    _tensor("uniform_", tensor)
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with samples of N(mean, std**2)."""
    _tensor("normal_", tensor)
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor, val: float):
    """Fill with ``val``."""
    _tensor("constant_", tensor)
    with no_grad():
        return tensor.fill_(val)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1.0 if tensor.dtype.is_floating_point else 1)


def zeros_(tensor):
    """Fill with 0."""
    _tensor("zeros_", tensor)
    with no_grad():
        return tensor.zero_()


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal of a non-square
    matrix too)."""
    from ..api.creation import eye
    _tensor("eye_", tensor)
    if tensor.ndim != 2:
        raise ValueError(f"nn.init.eye_: only tensors with 2 dimensions are supported, got "
                         f"shape {tuple(tensor.shape)}")
    with no_grad():
        n, m = tensor.shape
        return tensor.copy_(eye(n, m, dtype=tensor.dtype, device=tensor.device))


def dirac_(tensor, groups: int = 1):
    """Fill a 3-, 4- or 5-D convolution weight with the Dirac delta (the identity map: each
    input channel passed to one output channel), in ``groups`` groups."""
    _tensor("dirac_", tensor)
    shape = tuple(tensor.shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"nn.init.dirac_: only tensors with 3, 4, or 5 dimensions are "
                         f"supported, got shape {shape}")
    if shape[0] % groups:
        raise ValueError(f"nn.init.dirac_: dim 0 ({shape[0]}) must be divisible by groups "
                         f"({groups})")
    out_per = shape[0] // groups
    n = min(out_per, shape[1])
    centre = tuple(s // 2 for s in shape[2:])
    with no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(n):
                tensor[(g * out_per + d, d) + centre] = 1
    return tensor


# ---------------------------------------------------------------- scaled by the fans -------
def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    _tensor("xavier_uniform_", tensor)
    fan_in, fan_out = _fans("xavier_uniform_", tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    _tensor("xavier_normal_", tensor)
    fan_in, fan_out = _fans("xavier_normal_", tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(op, tensor, a, mode, nonlinearity):
    fan = _fan(op, tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)`` (``fan`` per
    ``mode``, ``gain = calculate_gain(nonlinearity, a)``)."""
    _tensor("kaiming_uniform_", tensor)
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``."""
    _tensor("kaiming_normal_", tensor)
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, generator)


# ------------------------------------------------------------------ truncated normal -------
def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None):
    """Fill with samples of N(mean, std**2) truncated to ``[a, b]`` (inverse-CDF sampling, as
    PyTorch; ``a`` and ``b`` are absolute bounds, not multiples of ``std``)."""
    from ..api import dtypes as _dt
    from ..api.creation import empty
    _tensor("trunc_normal_", tensor)
    if not a < b:
        raise ValueError(f"nn.init.trunc_normal_: expected a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"nn.init.trunc_normal_: std must be positive, got {std}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)
    lo, hi = _norm_cdf((a - mean) / std), _norm_cdf((b - mean) / std)
    with no_grad():
        u = empty(tuple(tensor.shape), dtype=_dt.float64, device=tensor.device)
        u.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
        # keep away from +-1, where erfinv is infinite
        eps = 1e-15
        u = u.clamp(-1 + eps, 1 - eps)
        from ..api.derived_more import erfinv
        x = erfinv(u) * (std * math.sqrt(2.0)) + mean
        tensor.copy_(x.clamp(a, b))
    return tensor


# ------------------------------------------------------------------------- structured -----
def orthogonal_(tensor, gain: float = 1, generator=None):
    """Fill with a (semi-)orthogonal matrix (the Q of the QR decomposition of a normal sample,
    signs fixed by R's diagonal), scaled by ``gain``; dims after the first are flattened."""
    from ..api.creation import empty
    from ..api.linalg import qr
    _tensor("orthogonal_", tensor)
    if tensor.ndim < 2:
        raise ValueError(f"nn.init.orthogonal_: only tensors with 2 or more dimensions are "
                         f"supported, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    with no_grad():
        flat = empty((rows, cols), dtype=tensor.dtype, device=tensor.device)
        flat.normal_(0.0, 1.0, generator=generator)
        if rows < cols:
            flat = flat.mT
        q, r = qr(flat)
        q = q * r.diagonal(0, -2, -1).sign()
        if rows < cols:
            q = q.mT
        tensor.copy_(q.reshape(tuple(tensor.shape)))
        if gain != 1:
            tensor.mul_(gain)
    return tensor


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """Fill a 2-D tensor with N(0, std**2) samples and zero a fraction ``sparsity`` of the
    entries of each column (``ceil(sparsity * rows)`` of them, at random rows)."""
    from ..api.random import randperm
    _tensor("sparse_", tensor)
    if tensor.ndim != 2:
        raise ValueError(f"nn.init.sparse_: only tensors with 2 dimensions are supported, got "
                         f"shape {tuple(tensor.shape)}")
    rows, cols = tensor.shape
    zeros = int(math.ceil(sparsity * rows))
    with no_grad():
        tensor.normal_(0.0, std, generator=generator)
        for c in range(cols):
            idx = randperm(rows, device=tensor.device)[:zeros]
            if zeros:
                tensor[idx, c] = 0
    return tensor
