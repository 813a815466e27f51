"""Random sampling: seeding, ``rand``/``randn``/``randint``/``randperm``/``normal``/
``bernoulli``/``multinomial``, their ``*_like`` forms and the in-place ``Tensor.uniform_`` family.

Every backend owns its generator (``Backend.seed``).  :func:`manual_seed` reseeds every loaded
backend at once, and a backend loaded later is seeded with the same seed before its first
sample, so a seed gives the same numbers on a backend whatever else the program did before.
Different backends draw different streams (NumPy's PCG64 on cpu, Philox kernels on cuda).
Generator states (``get_rng_state`` / ``set_rng_state``) and ``generator=`` go through the
backends' ``get_rng_state`` / ``set_rng_state`` hooks.

Samples are drawn in the requested dtype (float32 stays float32).  In-place methods write
through the tensor's memory, so views of it see the new values.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
import os
import threading

from ..dispatch import registry as _registry
from ..dispatch.checks import check as _value_check
from ..dispatch.dispatcher import kernels, register_default
from ..dispatch.errors import fmt_shape
from . import dtypes as _dt
from ._core import Tensor, cast, check_broadcast, describe, same_device, wrap
from .context import resolve_device
from .creation import _finish, _number, _shape, _size_kw

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "rand",
           "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like",
           "randn_like", "randint_like"]

_uniform_k = kernels("random_uniform")
_normal_k = kernels("random_normal")
_integers_k = kernels("random_integers")
_perm_k = kernels("random_permutation")
_bernoulli_k = kernels("bernoulli")
_multinomial_k = kernels("multinomial")
_dropout_mask_k = kernels("dropout_mask")
_dropout_k = kernels("dropout")
_astype_k = kernels("astype")
_add_k = kernels("add")
_mul_k = kernels("mul")
_neg_k = kernels("neg")
_log1p_k = kernels("log1p")
_ge_k = kernels("ge")
_le_k = kernels("le")
_eq_k = kernels("eq")
_isfinite_k = kernels("isfinite")
_and_k = kernels("logical_and")
_all_k = kernels("all")
_sum_k = kernels("sum")
_amin_k = kernels("amin")
_ne_k = kernels("ne")
_any_k = kernels("any")
_not_k = kernels("logical_not")
_lt_k = kernels("lt")
_full_k = kernels("full")
_expand_k = kernels("expand")
_setitem_k = kernels("setitem")
_to_host_k = kernels("to_host")

_SEED = [None]      # the seed given to every backend; drawn from os.urandom when first needed
_SEEDED = set()     # backends already seeded with _SEED[0]
_UINT64 = 2 ** 64


# -------------------------------------------------------------------------------- seeding --
def _seed_backend(backend) -> None:
    s = _SEED[0]
    if s is None:
        s = _SEED[0] = builtins.int.from_bytes(os.urandom(8), "little") >> 1
    backend.seed(s)
    _SEEDED.add(backend)


def _loaded_backends():
    return [info.backend for info in list(_registry.REGISTRY.infos.values())
            if info.backend is not None]


def manual_seed(seed) -> None:
    """Seed the random generators of every backend (``torch.manual_seed``).

    Backends loaded now are reseeded at once; a backend loaded later is seeded with the same
    seed before it draws its first sample.  ``seed`` is an int in ``[-2**63, 2**64)``
    (negative seeds are taken modulo ``2**64``, as PyTorch).
    """
    if isinstance(seed, Tensor):
        seed = seed.item()
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__} "
                        f"{seed!r}") from None
    if not -2 ** 63 <= s < _UINT64:
        raise ValueError(f"manual_seed: seed must be in [-2**63, 2**64), got {s}")
    with _LOCK:  # not while another thread's generator= state is in a backend
        _SEED[0] = s % _UINT64
        _SEEDED.clear()
        for b in _loaded_backends():
            _seed_backend(b)


def seed() -> builtins.int:
    """Seed every backend with a fresh non-deterministic seed and return it (``torch.seed``)."""
    s = builtins.int.from_bytes(os.urandom(8), "little") >> 1
    manual_seed(s)
    return s


def initial_seed() -> builtins.int:
    """The seed the backends' generators were seeded with (``torch.initial_seed``)."""
    if _SEED[0] is None:
        for b in _loaded_backends():
            _seed_backend(b)
        if _SEED[0] is None:
            _SEED[0] = builtins.int.from_bytes(os.urandom(8), "little") >> 1
    return _SEED[0]


def ensure_seeded(backend) -> None:
    """Give ``backend`` the pending :func:`manual_seed` seed if it has not taken it yet (a
    backend-specific seeding such as ``polyten.cuda.manual_seed_all`` must come after)."""
    if backend not in _SEEDED:
        _seed_backend(backend)


def _seeded(dev):
    b = dev.backend
    ensure_seeded(b)
    return b


def _backend(dev):
    """The backend a sampling function draws on, seeded, and with the ``generator=`` of the
    call (if any) swapped in for ``dev``."""
    b = _seeded(dev)
    swap = _SWAP[0]
    if swap is not None:
        swap.enter(b, dev)
    return b


# ---------------------------------------------------------------- generator= (a Generator) --
# A call given ``generator=g`` draws from g's stream on the backend's own kernels: at its first
# draw the backend's state for the device is saved and g's state put in its place; at the end
# of the call g keeps the advanced state and the backend gets its own back.  Any backend with
# the get_rng_state / set_rng_state hooks supports it; states are host bytes (a Philox key and
# offset on cuda), so the swaps never wait for a device.  While a generator's state is in a
# backend, no other thread may draw there: every sampling call holds _LOCK (re-entrant, for
# sampling functions calling each other), as NumPy's generators hold theirs per draw.
_SWAP = [None]
_LOCK = threading.RLock()


class _Swap:
    __slots__ = ("op", "gen", "backend", "index", "own")

    def __init__(self, op, gen):
        from .generator import Generator
        if not isinstance(gen, Generator):
            raise TypeError(f"{op}: generator must be a polyten.Generator or None, got "
                            f"{describe(gen)}")
        self.op, self.gen, self.backend, self.index, self.own = op, gen, None, None, None

    def enter(self, b, dev) -> None:
        gdev = self.gen.device
        if gdev.type != dev.type or (gdev.index or 0) != (dev.index or 0):
            raise ValueError(f"{self.op}: the generator is on {gdev} but the samples are drawn "
                             f"on {dev}; pass a polyten.Generator(device='{dev}') (a generator "
                             f"draws on one device)")
        if self.backend is not None:
            return
        index = dev.index or 0
        if b.get_rng_state is None or b.set_rng_state is None:
            raise NotImplementedError(
                f"{self.op}: generator= needs the {b.name!r} backend to save and restore its "
                f"generator's state, and its plugin {b.distribution or b.name!r} gives no "
                f"get_rng_state / set_rng_state; seed with polyten.manual_seed() instead")
        self.own = b.get_rng_state(index)
        b.set_rng_state(index, self.gen._state_bytes())
        self.backend, self.index = b, index

    def leave(self) -> None:
        b = self.backend
        if b is not None:
            try:
                self.gen._store(b.get_rng_state(self.index))
            finally:
                b.set_rng_state(self.index, self.own)


def _takes_generator(fn):
    """Give ``fn``'s ``generator=`` keyword meaning: its draws come from that Generator."""
    op = fn.__name__

    @functools.wraps(fn)
    def call(*args, **kwargs):
        gen = kwargs.get("generator")
        with _LOCK:
            if gen is None:
                return fn(*args, **kwargs)
            kwargs["generator"] = None
            swap, outer = _Swap(op, gen), _SWAP[0]
            if outer is not None:  # a sampling function calling another: the outer stream
                return fn(*args, **kwargs)
            _SWAP[0] = swap
            try:
                return fn(*args, **kwargs)
            finally:
                _SWAP[0] = None
                swap.leave()
    return call


def seeded_state(dev, seed: int) -> bytes:
    """The state bytes device ``dev``'s generator would hold right after being seeded with
    ``seed`` (what a fresh ``Generator(device=dev).manual_seed(seed)`` starts from), leaving
    every generator of the backend as it was."""
    b = _seeded(dev)
    if b.get_rng_state is None or b.set_rng_state is None:
        raise NotImplementedError(
            f"Generator(device='{dev}'): the {b.name!r} backend cannot save and restore its "
            f"generator's state (its plugin {b.distribution or b.name!r} gives no "
            f"get_rng_state / set_rng_state), so it cannot draw from a separate generator")
    count = b.device_count() if b.indexed else 1
    with _LOCK:
        saved = [b.get_rng_state(i) for i in range(count)]
        try:
            b.seed(seed)  # the backend's own seeding, for the one device's state below
            return b.get_rng_state(dev.index or 0)
        finally:
            for i, raw in enumerate(saved):
                b.set_rng_state(i, raw)


# -------------------------------------------------------------------- generator states --
def device_rng_state(op: str, dev) -> Tensor:
    """The state of device ``dev``'s generator as a 1-D uint8 cpu tensor (``op`` names the
    user's call in errors)."""
    from .creation import asarray
    b = _seeded(dev)  # a pending manual_seed is taken first: the state is the one draws use
    if b.get_rng_state is None:
        raise NotImplementedError(
            f"{op}: the {b.name!r} backend cannot save its random generator's state (its plugin "
            f"{b.distribution or b.name!r} gives no get_rng_state); reseed with "
            f"polyten.manual_seed() to reproduce a stream instead")
    with _LOCK:
        raw = b.get_rng_state(dev.index or 0)
    return asarray(list(raw), dtype="uint8", device="cpu")


def set_device_rng_state(op: str, dev, new_state) -> None:
    """Restore a state of :func:`device_rng_state` on device ``dev``."""
    if not isinstance(new_state, Tensor) or new_state._dtype.name != "uint8" or \
            new_state.ndim != 1:
        got = (f"a {new_state._dtype.name} tensor of shape {fmt_shape(new_state.shape)}"
               if isinstance(new_state, Tensor) else describe(new_state))
        raise TypeError(f"{op}: expected the 1-D uint8 tensor returned by the matching "
                        f"get_rng_state(), got {got}")
    b = _seeded(dev)  # take a pending manual_seed now, so it cannot overwrite this state
    if b.set_rng_state is None:
        raise NotImplementedError(
            f"{op}: the {b.name!r} backend cannot restore a random generator state (its "
            f"plugin {b.distribution or b.name!r} gives no set_rng_state)")
    raw = bytes(new_state.cpu().tolist())
    try:
        with _LOCK:
            b.set_rng_state(dev.index or 0, raw)
    except ValueError as exc:
        raise ValueError(f"{op}: {exc}, for {dev}'s generator; pass a state that "
                         f"get_rng_state() returned for a {b.name} device") from None


def _state_device(device):
    # torch.get_rng_state() is the cpu generator's, whatever the default device
    return resolve_device("cpu" if device is None else device)


def get_rng_state(device=None) -> Tensor:
    """The state of a random generator as a uint8 cpu tensor (``torch.get_rng_state``);
    :func:`set_rng_state` restores it.

    Parameters
    ----------
    device : str or polyten.device, optional
        Whose generator: the cpu backend's by default, as in PyTorch (not the default
        device's); ``"cuda:1"`` or a third-party backend's device for theirs
        (``polyten.cuda.get_rng_state`` is the same for GPUs).

    Examples
    --------
    >>> state = polyten.get_rng_state()
    >>> a = polyten.rand(3)
    >>> polyten.set_rng_state(state)
    >>> bool((polyten.rand(3) == a).all())
    True
    """
    return device_rng_state("get_rng_state", _state_device(device))


def set_rng_state(new_state, device=None) -> None:
    """Restore a state saved by :func:`get_rng_state` (``torch.set_rng_state``): the
    generator then draws again what it drew after the state was taken.  ``device`` as in
    :func:`get_rng_state` (the cpu generator by default)."""
    set_device_rng_state("set_rng_state", _state_device(device), new_state)




# ------------------------------------------------------------------------------- helpers --
def _float_dtype(op, dtype):
    dt = _dt.get_default_dtype() if dtype is None else _dt.to_dtype(dtype)
    if dt.kind not in "fc":
        raise TypeError(f"{op}: dtype {dt.name} is not supported; {op} samples floating-point "
                        f"values (use polyten.randint for integers)")
    return dt


def _complex(b, re, im, dt):
    return _add_k[b](_astype_k[b](re, dt.name), _mul_k[b](_astype_k[b](im, dt.name), 1j))


def dropout_mask(shape, p: float, dt, dev) -> Tensor:
    """Dropout's scaled keep mask (no graph): ``1 / (1 - p)`` with probability ``1 - p``, else
    0, of the real floating dtype ``dt`` on ``dev``; ``0 < p < 1`` (checked by the caller).
    One kernel on backends that fuse it (the cuda backend's Philox)."""
    with _LOCK:
        b = _backend(dev)
        return wrap(_dropout_mask_k[b](tuple(shape), p, dt.name, dev.index), dev, dt)


def dropout(x: Tensor, p: float) -> tuple:
    """``(x * mask, mask)`` (no graph), ``mask`` being what :func:`dropout_mask` of ``x``'s
    shape, dtype and device would draw next; ``x`` real floating, ``0 < p < 1`` (checked by
    the caller).  One kernel on backends that fuse it (the cuda backend's Philox), instead of
    the mask's and the product's two passes over memory."""
    dev, dt = x._device, x._dtype
    with _LOCK:
        b = _backend(dev)
        k = _dropout_k[b]
        if k is None:
            y, m = _mask_product(b, x, p)
        else:
            y, m = k(x._data, p)
        return wrap(y, dev, dt), wrap(m, dev, dt)


def _mask_product(b, x: Tensor, p: float) -> tuple:
    """``(x * mask, mask)`` as native arrays of backend ``b``: ``dropout_mask``, then ``mul``."""
    m = _dropout_mask_k[b](tuple(x._data.shape), p, x._dtype.name, x._device.index)
    return _mul_k[b](x._data, m), m


def _dropout_default(x: Tensor, p: float) -> tuple:
    """Default of the ``dropout`` composite: ``dropout_mask``, then ``mul`` (no graph)."""
    dev, dt = x._device, x._dtype
    with _LOCK:
        y, m = _mask_product(_backend(dev), x, p)
        return wrap(y, dev, dt), wrap(m, dev, dt)


register_default("dropout", _dropout_default, uses=("dropout_mask", "mul"))


def _uniform(shape, low, high, dt, dev):
    b = _backend(dev)
    if dt.kind == "c":
        r = dt.to_real().name
        re = _uniform_k[b](shape, low, high, r, dev.index)
        im = _uniform_k[b](shape, low, high, r, dev.index)
        return _complex(b, re, im, dt)
    return _uniform_k[b](shape, low, high, dt.name, dev.index)


def _normal(shape, mean, std, dt, dev):
    b = _backend(dev)
    if dt.kind == "c":
        # real and imaginary parts each N(0, 1/2): E|z|^2 = 1, as torch.randn
        r = dt.to_real().name
        s = std * math.sqrt(0.5)
        re = _normal_k[b](shape, 0.0, s, r, dev.index)
        im = _normal_k[b](shape, 0.0, s, r, dev.index)
        out = _complex(b, re, im, dt)
        return out if mean == 0 else _add_k[b](out, mean)
    return _normal_k[b](shape, mean, std, dt.name, dev.index)


def _refuse(b, bad, message) -> None:
    """ValueError(``message``) if the 0-d bool native ``bad`` is true: at once, or on a backend
    with deferred checks (a GPU) at the next host read (``polyten.dispatch.checks``): the
    sampling kernels stay memory-safe on such values, so they need not wait."""
    _value_check(b, bad, message if callable(message) else lambda: ValueError(message))


def _fails(b, ok, message) -> None:
    """:func:`_refuse` unless the 0-d bool native ``ok`` is true."""
    _refuse(b, _not_k[b](ok), message)


def _check_unit_interval(x: Tensor, message: str) -> None:
    """All values of ``x`` are in [0, 1] (NaN is not)."""
    b = x._device.backend
    d = x._data
    _fails(b, _all_k[b](_and_k[b](_ge_k[b](d, 0.0), _le_k[b](d, 1.0)), None, False), message)


def _write(self: Tensor, native) -> Tensor:
    """Fill ``self`` in place with ``native`` (same shape and dtype)."""
    from ._core import check_inplace
    check_inplace("in-place random fill", self)  # leaves that require grad: under no_grad()
    _setitem_k[self._device.backend](self._data, (Ellipsis,), native)
    return self


# --------------------------------------------------------------------------- functions ----
@_takes_generator
def rand(*shape, size=None, generator=None, dtype=None, device=None,
         requires_grad=False) -> Tensor:
    """Uniform samples on ``[0, 1)`` of shape ``size`` (``torch.rand``).

    ``dtype`` is a floating dtype (default: the default float dtype); complex dtypes draw the
    real and imaginary parts independently.
    """
    shape = _shape(shape if size is None else _size_kw(shape, size, "rand"), "rand")
    dt = _float_dtype("rand", dtype)
    dev = resolve_device(device)
    return _finish(wrap(_uniform(shape, 0.0, 1.0, dt, dev), dev, dt), requires_grad)


@_takes_generator
def randn(*shape, size=None, generator=None, dtype=None, device=None,
          requires_grad=False) -> Tensor:
    """Standard normal samples of shape ``size`` (``torch.randn``).

    Complex dtypes have real and imaginary parts of variance 1/2 each (``E|z|^2 = 1``).
    """
    shape = _shape(shape if size is None else _size_kw(shape, size, "randn"), "randn")
    dt = _float_dtype("randn", dtype)
    dev = resolve_device(device)
    return _finish(wrap(_normal(shape, 0.0, 1.0, dt, dev), dev, dt), requires_grad)


def _int_bound(op, name, v):
    v = _number(op, name, v)
    if type(v) is builtins.float:
        if not v.is_integer():
            raise TypeError(f"{op}: {name} must be an integer, got {v!r}")
        v = builtins.int(v)
    return v


def _integers(op, shape, low, high, dt, dev):
    if dt.kind == "c":
        raise TypeError(f"{op}: dtype {dt.name} is not supported; use an integer, bool or "
                        f"real floating dtype")
    if dt.kind in "uib":
        info = _dt.iinfo(dt)
        if low < info.min:
            raise OverflowError(f"{op}: low={low} is out of range for {dt.name} "
                                f"({info.min} to {info.max})")
        if high - 1 > info.max:
            raise OverflowError(f"{op}: high - 1 = {high - 1} is out of range for {dt.name} "
                                f"({info.min} to {info.max})")
    b = _backend(dev)
    kdt = dt if dt.kind in "uif" else _dt.int64
    data = _integers_k[b](shape, low, high, kdt.name, dev.index)
    if kdt is not dt:
        data = _astype_k[b](data, dt.name)
    return data


@_takes_generator
def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers drawn uniformly from ``[low, high)`` (``torch.randint``).

    ``randint(high, size)`` and ``randint(low, high, size)``; ``size`` is a tuple (or an int).
    ``dtype`` defaults to int64; bool and floating dtypes are allowed, as in PyTorch.
    """
    if size is None:
        if not isinstance(high, (tuple, list)):  # randint(high, size): size is a sequence
            raise TypeError("randint: size is required, e.g. randint(0, 10, (3,)) or "
                            "randint(10, (3,))")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    low = _int_bound("randint", "low", low)
    high = _int_bound("randint", "high", high)
    if low >= high:
        raise ValueError(f"randint: low must be less than high, but got low={low} >= "
                         f"high={high}")
    shape = _shape((size,), "randint")
    dt = _dt.int64 if dtype is None else _dt.to_dtype(dtype)
    dev = resolve_device(device)
    data = _integers("randint", shape, low, high, dt, dev)
    return _finish(wrap(data, dev, dt), requires_grad)


@_takes_generator
def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (``torch.randperm``; dtype int64 by default)."""
    if isinstance(n, Tensor):
        n = n.item()
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"randperm: n must be an int, got {type(n).__name__} {n!r}") from None
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    dt = _dt.int64 if dtype is None else _dt.to_dtype(dtype)
    if dt.kind in "bc":
        raise TypeError(f"randperm: dtype {dt.name} is not supported; use an integer or real "
                        f"floating dtype")
    if dt.kind in "ui" and n - 1 > _dt.iinfo(dt).max:
        raise OverflowError(f"randperm: n={n} values do not fit {dt.name} (max "
                            f"{_dt.iinfo(dt).max}); use a wider dtype")
    dev = resolve_device(device)
    b = _backend(dev)
    kdt = dt if dt.kind in "ui" else _dt.int64
    data = _perm_k[b](n, kdt.name, dev.index)
    if kdt is not dt:
        data = _astype_k[b](data, dt.name)
    return _finish(wrap(data, dev, dt), requires_grad)


@_takes_generator
def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Normal samples with the given mean and standard deviation (``torch.normal``).

    Forms: ``normal(mean_tensor, std_tensor)`` (shapes broadcast), ``normal(mean_tensor,
    std=1.0)``, ``normal(mean_float, std_tensor)``, and ``normal(mean_float, std_float, size)``
    (``dtype``/``device`` apply to this last form only).

    Raises
    ------
    ValueError
        A standard deviation is negative.
    TypeError
        Tensors are not floating point, or ``size`` is missing for float mean and std.
    """
    mt, st = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not (mt or st):
        if size is None:
            raise TypeError("normal: with float mean and std, size is required, e.g. "
                            "normal(0.0, 1.0, size=(3,))")
        m = _number("normal", "mean", mean)
        s = _number("normal", "std", std)
        if s < 0:
            raise ValueError(f"normal: expects std >= 0.0, but found std={s}")
        shape = _shape((size,), "normal")
        dt = _float_dtype("normal", dtype)
        dev = resolve_device(device)
        return _finish(wrap(_normal(shape, builtins.float(m), builtins.float(s), dt, dev),
                            dev, dt), requires_grad)
    if size is not None or dtype is not None or device is not None:
        raise TypeError("normal: size=, dtype= and device= are only for float mean and std; "
                        "with tensor arguments the result has their (broadcast) shape, dtype "
                        "and device")
    dev = same_device("normal", mean, std)
    dts = [t._dtype for t in (mean, std) if isinstance(t, Tensor)]
    dt = dts[0] if len(dts) == 1 else _dt.promote_types(dts[0], dts[1])
    if dt.kind not in "fc":
        raise TypeError(f"normal: mean and std tensors must be floating point, got "
                        f"{' and '.join(d.name for d in dts)}; convert them first, e.g. "
                        f"mean.to(polyten.float32)")
    b = _backend(dev)
    if st:
        _fails(b, _all_k[b](_ge_k[b](std._data, 0.0), None, False),
               "normal: expects all elements of std >= 0.0")
        s = cast(std, dt)
    else:
        s = builtins.float(_number("normal", "std", std))
        if s < 0:
            raise ValueError(f"normal: expects std >= 0.0, but found std={s}")
    if mt:
        m = cast(mean, dt)
    else:
        m = _number("normal", "mean", mean, dt.kind == "c")
    if mt and st:
        shape = check_broadcast("normal", tuple(mean._data.shape), tuple(std._data.shape))
    else:
        shape = tuple((mean if mt else std)._data.shape)
    z = _normal(shape, 0.0, 1.0, dt, dev)
    out = _add_k[b](_mul_k[b](z, s), m)
    return _finish(wrap(out, dev, dt), requires_grad)


@_takes_generator
def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 samples, 1 with probability ``input`` (elementwise), or with probability ``p``.

    ``bernoulli(probs)`` draws with the probabilities in the floating tensor ``probs`` (all in
    [0, 1]); ``bernoulli(x, p)`` draws with probability ``p`` in the shape and dtype of ``x``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli: expected a tensor, got {describe(input)}")
    dev = input._device
    dt = input._dtype
    b = _backend(dev)
    if p is None:
        if dt.kind != "f":
            raise TypeError(f"bernoulli: input holds probabilities and must be a real floating "
                            f"tensor, got {dt.name}; convert it (input.to(polyten.float32)) or "
                            f"pass p=, e.g. bernoulli(input, p=0.5)")
        _check_unit_interval(input, "bernoulli: probabilities must be in [0, 1], but input has "
                                    "values outside it (or nan)")
        return wrap(_bernoulli_k[b](input._data), dev, dt)
    return wrap(_bernoulli_scalar("bernoulli", input, p), dev, dt)


def _check_p(op, p):
    if isinstance(p, Tensor):
        return p
    p = _number(op, "p", p)
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: expects p to be in [0, 1], but got p={p}")
    return builtins.float(p)


def _bernoulli_scalar(op, like: Tensor, p):
    """Samples of shape and dtype ``like`` with probability ``p`` (a number)."""
    p = _check_p(op, p)
    dev = like._device
    b = _backend(dev)
    dt = like._dtype
    work = dt if dt.name in ("float32", "float64") else _dt.float32
    probs = _full_k[b](tuple(like._data.shape), p, work.name, dev.index)
    out = _bernoulli_k[b](probs)
    return out if work is dt else _astype_k[b](out, dt.name)


@_takes_generator
def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Indices drawn from the categorical distributions in the rows of ``input``.

    ``input`` holds non-negative weights (need not sum to 1), shape ``(n,)`` or ``(b, n)``;
    the result is int64 of shape ``(num_samples,)`` or ``(b, num_samples)``.  Without
    replacement each row yields distinct indices (so ``num_samples <= n``).
    """
    op = "multinomial"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a tensor of weights, got {describe(input)}")
    dt = input._dtype
    if dt.kind != "f":
        raise TypeError(f"{op}: input must be a real floating tensor of weights, got "
                        f"{dt.name}; convert it first, e.g. input.to(polyten.float32)")
    shape = tuple(input._data.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"{op}: input must be 1-D or 2-D (weights of the categories, per "
                         f"row), got shape {fmt_shape(shape)}")
    try:
        k = operator.index(num_samples)
    except TypeError:
        raise TypeError(f"{op}: num_samples must be an int, got "
                        f"{type(num_samples).__name__} {num_samples!r}") from None
    if k <= 0:
        raise ValueError(f"{op}: cannot sample num_samples={k} <= 0 samples")
    n = shape[-1]
    if not replacement and k > n:
        raise ValueError(f"{op}: cannot sample {k} samples from {n} categories without "
                         f"replacement; pass replacement=True or num_samples <= {n}")
    if n == 0:
        raise ValueError(f"{op}: input has no categories (shape {fmt_shape(shape)})")
    dev = input._device
    b = _backend(dev)
    x = input._data
    if shape[0] == 0 and len(shape) == 2:
        return wrap(_full_k[b]((0, k), 0, "int64", dev.index), dev, _dt.int64)
    # the kernel is memory-safe on weights these checks reject (deferred on a GPU)
    ok = _and_k[b](_isfinite_k[b](x), _ge_k[b](x, 0.0))
    _fails(b, _all_k[b](ok, None, False),
           f"{op}: weights must be finite and non-negative, but the input contains inf, nan "
           f"or a negative value")
    rows = "a row" if len(shape) == 2 else "the input"
    zero_rows = _all_k[b](_eq_k[b](x, 0.0), (len(shape) - 1,), False)
    _refuse(b, _any_k[b](zero_rows, None, False),
            f"{op}: invalid distribution: the weights of {rows} sum to 0")
    if not replacement:
        # each row must have at least k categories of non-zero weight to draw k distinct ones
        nonzero = _sum_k[b](_ne_k[b](x, 0.0), (len(shape) - 1,), False, "int64")
        fewest = _amin_k[b](nonzero, None, False)

        def too_few():
            n = int(_to_host_k[b](fewest).reshape(()).item())
            return ValueError(f"{op}: cannot sample {k} samples without replacement from "
                              f"{rows} with only {n} categories of non-zero weight; pass "
                              f"replacement=True or num_samples <= {n}")
        _refuse(b, _lt_k[b](fewest, k), too_few)
    out = _multinomial_k[b](x, k, builtins.bool(replacement))
    return wrap(out, dev, _dt.int64)


# ------------------------------------------------------------------------------ *_like ----
def _like(op, input, dtype, device):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(input)}")
    dev = input._device if device is None else resolve_device(device)
    dt = input._dtype if dtype is None else _dt.to_dtype(dtype)
    return tuple(input._data.shape), dt, dev


@_takes_generator
def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False):
    """:func:`rand` with the shape (and by default dtype and device) of ``input``."""
    shape, dt, dev = _like("rand_like", input, dtype, device)
    dt = _float_dtype("rand_like", dt)
    return _finish(wrap(_uniform(shape, 0.0, 1.0, dt, dev), dev, dt), requires_grad)


@_takes_generator
def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False):
    """:func:`randn` with the shape (and by default dtype and device) of ``input``."""
    shape, dt, dev = _like("randn_like", input, dtype, device)
    dt = _float_dtype("randn_like", dt)
    return _finish(wrap(_normal(shape, 0.0, 1.0, dt, dev), dev, dt), requires_grad)


@_takes_generator
def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False):
    """:func:`randint` with the shape (and by default dtype and device) of ``input``:
    ``randint_like(x, high)`` or ``randint_like(x, low, high)``."""
    if high is None:
        low, high = 0, low
    low = _int_bound("randint_like", "low", low)
    high = _int_bound("randint_like", "high", high)
    if low >= high:
        raise ValueError(f"randint_like: low must be less than high, but got low={low} >= "
                         f"high={high}")
    shape, dt, dev = _like("randint_like", input, dtype, device)
    return _finish(wrap(_integers("randint_like", shape, low, high, dt, dev), dev, dt),
                   requires_grad)


# ------------------------------------------------------------------- in-place methods -----
def _floating_self(op, self):
    if not isinstance(self, Tensor):
        raise TypeError(f"{op}: expected a tensor, got {describe(self)}")
    if self._dtype.kind not in "fc":
        raise TypeError(f"{op}: not supported for {self._dtype.name} tensors; {op} fills "
                        f"floating-point tensors (use random_ for integers)")


@_takes_generator
def uniform_(self, from_=0.0, to=1.0, *, generator=None) -> Tensor:
    """Fill in place with uniform samples on ``[from_, to)``."""
    _floating_self("uniform_", self)
    lo = builtins.float(_number("uniform_", "from", from_))
    hi = builtins.float(_number("uniform_", "to", to))
    if lo > hi:
        raise ValueError(f"uniform_: expects a [from, to) range, but found from={lo} > to={hi}")
    return _write(self, _uniform(tuple(self._data.shape), lo, hi, self._dtype, self._device))


@_takes_generator
def normal_(self, mean=0.0, std=1.0, *, generator=None) -> Tensor:
    """Fill in place with normal samples of mean ``mean`` and standard deviation ``std``."""
    _floating_self("normal_", self)
    m = builtins.float(_number("normal_", "mean", mean))
    s = builtins.float(_number("normal_", "std", std))
    if s < 0:
        raise ValueError(f"normal_: expects std >= 0.0, but found std={s}")
    return _write(self, _normal(tuple(self._data.shape), m, s, self._dtype, self._device))


@_takes_generator
def bernoulli_(self, p=0.5, *, generator=None) -> Tensor:
    """Fill in place with 0/1 samples, 1 with probability ``p`` (a number, or a floating tensor
    of probabilities broadcastable to this tensor's shape).  Any dtype."""
    if not isinstance(p, Tensor):
        return _write(self, _bernoulli_scalar("bernoulli_", self, p))
    same_device("bernoulli_", self, p)
    if p._dtype.kind != "f":
        raise TypeError(f"bernoulli_: p must be a real floating tensor of probabilities, got "
                        f"{p._dtype.name}")
    shape = tuple(self._data.shape)
    if check_broadcast("bernoulli_", tuple(p._data.shape), shape) != shape:
        raise ValueError(f"bernoulli_: p of shape {fmt_shape(p._data.shape)} does not "
                         f"broadcast to the tensor's shape {fmt_shape(shape)}")
    _check_unit_interval(p, "bernoulli_: probabilities must be in [0, 1], but p has values "
                            "outside it (or nan)")
    b = _backend(self._device)
    probs = p._data if tuple(p._data.shape) == shape else _expand_k[b](p._data, shape)
    out = _bernoulli_k[b](probs)
    if p._dtype is not self._dtype:
        out = _astype_k[b](out, self._dtype.name)
    return _write(self, out)


_RANDOM_TOP = {"float16": 2 ** 11 + 1, "bfloat16": 2 ** 8 + 1, "float32": 2 ** 24 + 1,
               "float64": 2 ** 53 + 1}


@_takes_generator
def random_(self, from_=None, to=None, *, generator=None) -> Tensor:
    """Fill in place with integers drawn uniformly from ``[from_, to)``.

    ``random_()`` uses ``[0, max]`` (integer dtypes: the dtype's maximum; floats: ``2**mantissa``
    so every value is exact), ``random_(to)`` uses ``[0, to)``.
    """
    dt = self._dtype
    if dt.kind == "c":
        raise TypeError("random_: not supported for complex tensors")
    if to is None and from_ is not None:
        from_, to = 0, from_
    lo = 0 if from_ is None else _int_bound("random_", "from", from_)
    if to is None:
        hi = 2 if dt.kind == "b" else _RANDOM_TOP.get(dt.name) or _dt.iinfo(dt).max + 1
    else:
        hi = _int_bound("random_", "to", to)
    if lo >= hi:
        raise ValueError(f"random_: expects 'from' to be less than 'to', but got from={lo} >= "
                         f"to={hi}")
    return _write(self, _integers("random_", tuple(self._data.shape), lo, hi, dt,
                                  self._device))


@_takes_generator
def exponential_(self, lambd=1.0, *, generator=None) -> Tensor:
    """Fill in place with exponential samples of rate ``lambd`` (mean ``1 / lambd``)."""
    if self._dtype.kind != "f":
        raise TypeError(f"exponential_: the exponential distribution is continuous; the "
                        f"tensor must be real floating point, got {self._dtype.name}")
    lam = builtins.float(_number("exponential_", "lambd", lambd))
    if not lam > 0:
        raise ValueError(f"exponential_: expects lambda > 0.0, but found lambda={lam}")
    dev = self._device
    b = _backend(dev)
    u = _uniform(tuple(self._data.shape), 0.0, 1.0, self._dtype, dev)
    # -log(1 - u) / lambd, with u in [0, 1): finite, and exact near 0 thanks to log1p
    return _write(self, _mul_k[b](_log1p_k[b](_neg_k[b](u)), -1.0 / lam))


def _bernoulli_method(self, p=None, *, generator=None):
    return bernoulli(self, p, generator=generator)


def _multinomial_method(self, num_samples, replacement=False, *, generator=None):
    return multinomial(self, num_samples, replacement, generator=generator)


TENSOR_METHODS = {"uniform_": uniform_, "normal_": normal_, "bernoulli_": bernoulli_,
                  "random_": random_, "exponential_": exponential_,
                  "bernoulli": _bernoulli_method, "multinomial": _multinomial_method}
