"""The backend contract: what a plugin hands to polyten.

A plugin registers a :class:`BackendSpec` (cheap: a name, an availability probe and a lazy
loader).  When a backend is first used, polyten calls the loader, which returns a
:class:`Backend`: the kernels (op name -> callable on native arrays, see
``polyten.dispatch.optable`` for each kernel's signature) plus a handful of facts about the
backend's arrays and devices.

Kernels receive native arrays (and plain Python parameters already normalised by the core:
dims are non-negative ints, shapes are tuples, dtypes are names such as ``"float32"``) and
return native arrays of exactly the dtype and shape the core expects.  Everything else --
promotion, broadcasting checks, error messages, autograd -- lives in the core.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

__all__ = ["Backend", "BackendSpec"]


def _always_available() -> Tuple[bool, str]:
    return True, ""


class BackendSpec:
    """A backend as registered by a plugin, before it is loaded.

    Parameters
    ----------
    name : str
        The device type users write: ``"cpu"``, ``"cuda"``, ``"mybackend"``.  Lower case,
        letters, digits and underscores.
    load : callable
        ``load() -> Backend``; imports the array library and builds the kernels.  Called once,
        on first use.
    probe : callable, optional
        ``probe() -> (available: bool, reason: str)``; must be cheap and must not import the
        array library (use ``importlib.util.find_spec`` and the like).  ``reason`` is a
        sentence for humans, e.g. ``"cupy is not installed"``.  Default: always available.
    description : str, optional
        One line shown by ``polyten backends``.
    """

    __slots__ = ("name", "load", "probe", "description")

    def __init__(self, name: str, load: Callable[[], "Backend"],
                 probe: Optional[Callable[[], Tuple[bool, str]]] = None,
                 description: str = ""):
        self.name = name
        self.load = load
        self.probe = probe or _always_available
        self.description = description

    def __repr__(self) -> str:
        return f"BackendSpec(name={self.name!r})"


class Backend:
    """A loaded backend: kernels plus the facts polyten needs about its arrays and devices.

    Parameters
    ----------
    name : str
        The backend (and device type) name.
    kernels : mapping of str to callable
        Op name -> kernel.  Names must be ops of ``polyten.dispatch.optable.OPS``; the
        signatures are documented there.  Composite ops may be omitted (polyten then runs the
        op's backend-agnostic default, built from primitives).
    dtypes : iterable of str
        Names of the polyten dtypes this backend stores natively (``"float32"``, ...).
    native_dtype : callable
        ``native_dtype(name) -> native dtype object`` for each name in ``dtypes``.
    dtype_name : callable
        ``dtype_name(array) -> str or None``: the polyten dtype name of a native array, ``None``
        when the array's dtype has no polyten counterpart (e.g. NumPy ``object``).
    is_native : callable
        ``is_native(obj) -> bool``: whether ``obj`` is one of this backend's arrays.
    indexed : bool
        ``True`` when the backend has numbered devices (``cuda:0``, ``cuda:1``); ``False`` for a
        single unnamed device such as ``cpu``.
    device_count, current_device : callable, optional
        For indexed backends: how many devices there are and which one is current.
    device_of : callable, optional
        ``device_of(array) -> int``, for indexed backends.
    device_guard : callable, optional
        ``device_guard(index)`` -> context manager making ``index`` the current device; polyten
        enters it around creation kernels and transfers on indexed backends.
    synchronize : callable, optional
        ``synchronize(index)``: wait for all work queued on the device.
    seed : callable
        ``seed(int)``: reseed the backend's random generator(s); ``polyten.manual_seed`` calls it.
    get_rng_state, set_rng_state : callable, optional
        ``get_rng_state(index) -> bytes``: the state of device ``index``'s generator (0 on an
        unindexed backend), in a layout of the backend's choosing; ``set_rng_state(index,
        raw)`` restores such bytes, so that the generator then draws what it would have drawn
        after ``get_rng_state``, and raises ``ValueError`` for bytes it did not produce.
        Behind ``polyten.get_rng_state``, ``polyten.cuda.get_rng_state`` and
        ``polyten.random.fork_rng`` (checkpoints that resume a random stream); without them
        those raise ``NotImplementedError`` naming the backend.
    version : str, optional
        Version of the array library, for reports.
    backward_kernels : mapping of str to callable, optional
        Fused backward of ops (usually composites the backend also fuses forward):
        ``backward_kernels[op](grads, inputs, outputs, params) -> tuple`` with native arrays
        (``grads``: one per output, ``None`` where no gradient flows; ``inputs``/``outputs``:
        what the op's derivative rule saves, else ``None``) returning one native gradient per
        input (``None`` for inputs without one), already reduced to each input's shape and
        dtype.  Used when no graph of the backward is needed (``create_graph=False``); the
        polyten-op formulas of ``polyten.autograd.derivatives`` run otherwise.  A kernel may
        also return ``NotImplemented`` (the formulas run) or gradients of the broadcast shape
        or another dtype (the engine reduces and casts them).  The backward of a pointwise
        activation (``gelu``, ``silu``, ...) whose kernel has the attribute
        ``wants_output = True`` also gets ``params["output"] = (native output, its version
        counter, the version it had)``: it may reuse the output while the counter still has
        that version (the output was not modified in place), and must recompute otherwise.
    fused_optimizers : mapping of str to callable, optional
        Whole optimizer steps on native arrays, updating parameters and state in place:
        ``fused_optimizers["sgd"](params, grads, momentum_buffers, *, lr, weight_decay,
        momentum, dampening, nesterov, maximize)`` and ``fused_optimizers["adam"]`` /
        ``["adamw"]``: ``(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
        amsgrad, beta1, beta2, lr, weight_decay, eps, maximize)`` -- lists of native arrays
        (real floating, one dtype per parameter) and ints, the same arithmetic as
        ``polyten.optim._functional`` (PyTorch's algorithms).  The core creates the state,
        takes the generic path for cases a kernel does not cover (a step may also return
        ``NotImplemented``, before writing anything, to decline a call), and counts the
        writes.
        A step with the attribute ``takes_found_inf = True`` also takes the keyword
        ``found_inf`` (GradScaler's flag, a 0-d float32 native array: nonzero means skip the
        step, writing nothing) -- PyTorch's fused-optimizer protocol; the ``steps`` of the
        algorithms that take them are then 0-d float32 native arrays (the device step
        counters, already advanced unless the flag is set) -- all without a host read.
        ``fused_optimizers["amp_step_count"](counters, found_inf)`` advances such counters by
        one in place unless ``found_inf`` is nonzero (without it, two polyten ops each).
        ``fused_optimizers["amp_unscale"](grads, inv_scale, found)`` is GradScaler's unscale:
        each gradient (real floating) multiplied in place by ``inv_scale`` (a 0-d float32
        native array on their device), and ``found`` (a 0-d float32 array, zero on entry, on
        the gradients' device) set to 1 if any result is inf or NaN -- without a host read.
        ``fused_optimizers["amp_update_scale"](scale, inv_scale, growth_tracker, found_inf,
        growth_factor, backoff_factor, growth_interval)`` is GradScaler.update in place on 0-d
        arrays (float32 scale and reciprocal, int32 tracker; PyTorch's
        ``_amp_update_scale_``).
        ``clip_grad_norm_`` uses two more: ``fused_optimizers["total_norm"](grads,
        norm_type)`` returns the ``norm_type``-norm of all the arrays together (as if
        concatenated; one real floating dtype, one device) as a 0-d native array of their
        dtype, or ``None`` to leave it to the core; ``fused_optimizers["clip_grads"](grads,
        max_norm, total)`` multiplies each array in place by ``min(max_norm / (total +
        1e-6), 1)`` computed in their dtype from ``total`` (a 0-d native array of that dtype
        on that device), without a host read.  ``fused_optimizers["batch_norm_running"]
        (running_mean, running_var, mean, var, momentum, var_factor)`` updates batch_norm's
        running statistics in place: ``running = running * (1 - momentum) + stat * (momentum
        * factor)``, factor 1 for the mean and ``var_factor`` (``n / (n - 1)``) for the
        variance, in the statistics' dtype (float32 statistics may come with float16 /
        bfloat16 buffers: computed in float32, rounded once into them).
        ``fused_optimizers["clamp_grads"](grads, lo,
        hi)`` is ``clip_grad_value_``: each array clamped to ``[lo, hi]`` in place (NaN stays
        NaN).  Each of these in-place hooks may also return ``NotImplemented``, before writing
        anything, to decline a call; the core then takes its generic path.
    deferred_checks : bool
        ``True`` when reading a device value on the host waits for the work queued on the
        device (a GPU): the core then queues its value checks (class targets and indices out
        of range) and raises a failing one at the backend's next host read or
        ``synchronize``, instead of synchronising at the op (see
        :mod:`polyten.dispatch.checks`).  The backend's kernels must then stay memory-safe on
        the values those checks reject (CuPy wraps out-of-range indices around).
    current_stream : callable, optional
        ``current_stream(index)``: a hashable identity of the stream this thread queues work
        on for device ``index`` (a backend with several streams per device).  Deferred checks
        keep one running flag per stream -- flags computed on streams that do not wait for
        each other must not be OR-ed -- and a flush synchronises the device before reading a
        flag from a stream other than the current one.
    float32_matmul_precision : callable, optional
        ``float32_matmul_precision(precision)`` with ``"highest"``, ``"high"`` (TensorFloat-32
        allowed) or ``"medium"`` (bfloat16 products allowed): the internal precision of the
        backend's float32 matrix products (``matmul``, ``linear``; convolutions too where
        the backend has no ``float32_conv_precision``), as
        ``polyten.set_float32_matmul_precision`` sets it for the process.  Called when the
        setting changes, and at load when it is not ``"highest"``.  Backends without such
        modes omit it.
    float32_conv_precision : callable, optional
        ``float32_conv_precision(precision)``, the same for the matrix products of float32
        convolutions (forward and backward), as ``polyten.backends.cudnn.allow_tf32`` sets it.
        A backend starts at ``"highest"``; PyTorch's default is ``"high"``, so a backend with
        this hook gets ``"high"`` at load unless the user turned it off before.
    deterministic_algorithms : callable, optional
        ``deterministic_algorithms(enabled, warn_only)``: ``polyten.use_deterministic_algorithms``
        switched on or off.  On, the backend must give the same bits on every run: switch
        to deterministic kernels, and in a kernel that has none call
        ``polyten.dispatch.determinism.alert_not_deterministic(op, backend_name)`` (it raises,
        or warns with ``warn_only``).  Called when the setting changes, and at load when it
        is on.  Backends whose kernels are all deterministic omit it.
    """

    def __init__(self, name: str, kernels: Mapping[str, Callable], *,
                 dtypes: Iterable[str],
                 native_dtype: Callable[[str], Any],
                 dtype_name: Callable[[Any], Optional[str]],
                 is_native: Callable[[Any], bool],
                 seed: Callable[[int], None],
                 get_rng_state: Optional[Callable[[int], bytes]] = None,
                 set_rng_state: Optional[Callable[[int, bytes], None]] = None,
                 indexed: bool = False,
                 device_count: Optional[Callable[[], int]] = None,
                 current_device: Optional[Callable[[], int]] = None,
                 device_of: Optional[Callable[[Any], int]] = None,
                 device_guard: Optional[Callable[[int], Any]] = None,
                 synchronize: Optional[Callable[[Optional[int]], None]] = None,
                 version: str = "",
                 backward_kernels: Optional[Mapping[str, Callable]] = None,
                 fused_optimizers: Optional[Mapping[str, Callable]] = None,
                 deferred_checks: bool = False,
                 current_stream: Optional[Callable[[Optional[int]], Any]] = None,
                 float32_matmul_precision: Optional[Callable[[str], None]] = None,
                 float32_conv_precision: Optional[Callable[[str], None]] = None,
                 deterministic_algorithms: Optional[Callable[[bool, bool], None]] = None):
        self.name = name
        self.kernels = dict(kernels)
        self.dtypes = frozenset(dtypes)
        self.native_dtype = native_dtype
        self.dtype_name = dtype_name
        self.is_native = is_native
        self.seed = seed
        self.get_rng_state = get_rng_state
        self.set_rng_state = set_rng_state
        self.indexed = indexed
        self.device_count = device_count or (lambda: 1)
        self.current_device = current_device or (lambda: 0)
        self.device_of = device_of or (lambda a: 0)
        self.device_guard = device_guard or (lambda index: contextlib.nullcontext())
        self.synchronize = synchronize or (lambda index=None: None)
        self.version = version
        self.backward_kernels = dict(backward_kernels or {})
        self.fused_optimizers = dict(fused_optimizers or {})
        self.deferred_checks = bool(deferred_checks)
        self.current_stream = current_stream
        self.float32_matmul_precision = float32_matmul_precision
        self.float32_conv_precision = float32_conv_precision
        self.deterministic_algorithms = deterministic_algorithms
        if self.deferred_checks:
            from .checks import wrap_host_reads
            wrap_host_reads(self)
        # filled in by the registry
        self.distribution = ""
        self.distribution_version = ""

    def __repr__(self) -> str:
        return f"<polyten backend {self.name!r} ({len(self.kernels)} kernels)>"
