"""Activation checkpointing (``torch.utils.checkpoint``): trade compute for memory.

:func:`checkpoint` runs a function without keeping the graph of its intermediates (the
activations that its backward would read); backward recomputes them from the saved inputs,
with the random generators and autocast state the forward had, and backpropagates through the
recomputed graph.

How it works here.  polyten has no saved-tensor hooks, so both variants (``use_reentrant``
True or False) share one mechanism, an autograd node built as follows.  The forward runs
``function`` with gradients recorded, then walks the recorded graph from the outputs to its
*boundary*: the leaves (parameters, inputs that require grad) and the nodes made before the
call (inputs computed outside).  The outputs are re-rooted on one ``CheckpointBackward0`` node
whose inputs are those boundary edges, and the graph inside is dropped, so its saved tensors
are freed as soon as ``checkpoint`` returns.  In backward the node re-runs ``function``,
backpropagates the recomputed graph up to the boundary edges (the engine stops there, see
``run_backward(stop=)``) and hands their gradients to the enclosing backward, which
accumulates them, runs the leaves' hooks, or returns them from ``polyten.autograd.grad`` once.
So gradients reach closure parameters as well as tensor arguments, ``autograd.grad`` and
``backward(inputs=)`` work, checkpoints nest, and ``create_graph=True`` gives a
differentiable gradient (double backward).

Peak memory: within one checkpointed call the graph of that call is alive (as when backward
recomputes it); between calls only the inputs and outputs are kept.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, ContextManager, Tuple

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "noop_context_fn"]


class CheckpointError(RuntimeError):
    """The recomputation in backward did not reproduce the forward (as
    ``torch.utils.checkpoint.CheckpointError``)."""


def noop_context_fn() -> Tuple[ContextManager, ContextManager]:
    """The default ``context_fn``: no context around the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


_DETERMINISM = ("default", "none")


def _rule():
    from ..autograd.rules import Rule
    r = _RULE[0]
    if r is None:
        r = Rule("checkpoint")
        r.save_inputs = False
        r.save_output = False
        r.holomorphic = False  # a pass-through: the recomputed graph's nodes conjugate
        r.none_grads = True    # outputs without a gradient are skipped, not zero-filled
        r.formulas = ()
        r.variadic = _formula
        _RULE[0] = r
    return r


_RULE = [None]


class _Edge:
    """Stands for a boundary edge ``(node, index)`` as an input of the checkpoint node:
    ``graph.record`` reads only ``_ag`` (its edge), ``_data.shape`` and ``_dtype``."""

    __slots__ = ("_ag", "_data", "_dtype")

    def __init__(self, node, index, shape, dtype):
        from ..autograd.graph import AccumulateGrad
        from ..autograd.meta import AutogradMeta
        if node.__class__ is AccumulateGrad:
            ag = AutogradMeta(True)
            ag.accumulator = node
        else:
            ag = AutogradMeta(True, node, index)
        self._ag = ag
        self._data = _Shape(shape)
        self._dtype = dtype


class _Shape:
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


def _walk(roots, start: int, names: bool):
    """The boundary of the graph recorded since sequence number ``start``, reached from the
    tensors ``roots``: ``({edge: (shape, dtype)}, [node names])``, both in a fixed order."""
    from ..autograd.graph import AccumulateGrad, _edge_of
    boundary = {}
    order = []
    seen = set()
    stack = []
    for t in roots:
        edge = _edge_of(t, t._ag)
        node = edge[0]
        if node.__class__ is AccumulateGrad or node.seq < start:
            boundary.setdefault(edge, (tuple(t._data.shape), t._dtype))
        elif node not in seen:
            seen.add(node)
            stack.append(node)
    while stack:
        node = stack.pop()
        if names:
            order.append(node.name())
        shapes = node.shapes
        for i, (m, idx) in enumerate(node.next_functions):
            if m is None:
                continue
            if m.__class__ is AccumulateGrad:
                v = m.variable
                boundary.setdefault((m, idx), (tuple(v._data.shape), v._dtype))
            elif m.seq < start:
                shape, dtype = shapes[i]
                boundary.setdefault((m, idx), (tuple(shape), dtype))
            elif m not in seen:
                seen.add(m)
                stack.append(m)
    return boundary, order


def _differentiable(leaves):
    from ..api.tensor import Tensor
    return [i for i, t in enumerate(leaves)
            if isinstance(t, Tensor) and t._ag is not None and t._ag.requires_grad]


def _meta(t):
    return (tuple(t._data.shape), t._dtype, t._device)


class _State:
    """What the recomputation must reproduce: generator states, autocast regions and the
    default device of the forward."""

    def __init__(self, args, preserve: bool):
        from ..api import autocast as _ac
        from ..api.context import get_default_device
        from ..api.random import device_rng_state
        from ..api.tensor import Tensor
        from ..func import _tree_flatten
        self.preserve = preserve
        self.devices = []
        self.states = []
        if preserve:
            seen = set()
            for t in _tree_flatten(args)[0]:
                if isinstance(t, Tensor) and t._device.type != "cpu" and t._device not in seen:
                    seen.add(t._device)
                    self.devices.append(t._device)
            self.cpu_state = self._get("cpu", device_rng_state)
            self.states = [self._get(d, device_rng_state) for d in self.devices]
        self.autocast = {k: (s[-1].dtype, s[-1].enabled, s[-1].cache_enabled)
                         for k, s in _ac._regions().items() if s}
        self.device = get_default_device()

    @staticmethod
    def _get(dev, device_rng_state):
        from ..dispatch.device import device
        try:
            return device_rng_state("checkpoint", device(dev) if isinstance(dev, str) else dev)
        except NotImplementedError as exc:
            raise NotImplementedError(f"{exc}; or pass preserve_rng_state=False to checkpoint "
                                      f"(the recomputation then draws new random "
                                      f"numbers)") from None

    @contextlib.contextmanager
    def restored(self):
        from ..amp import autocast
        from ..api import autocast as _ac
        from ..api.random import device_rng_state, set_device_rng_state
        from ..dispatch.device import device
        cpu = device("cpu")
        if self.preserve:
            now_cpu = device_rng_state("checkpoint", cpu)
            now = [device_rng_state("checkpoint", d) for d in self.devices]
            set_device_rng_state("checkpoint", cpu, self.cpu_state)
            for d, s in zip(self.devices, self.states):
                set_device_rng_state("checkpoint", d, s)
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(self.device)
                active = [k for k, s in _ac._regions().items() if s]
                for k in dict.fromkeys(list(self.autocast) + active):
                    if k in self.autocast:
                        dtype, enabled, cache = self.autocast[k]
                        stack.enter_context(autocast(k, dtype=dtype, enabled=enabled,
                                                     cache_enabled=cache))
                    else:
                        stack.enter_context(autocast(k, enabled=False))
                yield
        finally:
            if self.preserve:
                set_device_rng_state("checkpoint", cpu, now_cpu)
                for d, s in zip(self.devices, now):
                    set_device_rng_state("checkpoint", d, s)


def _formula(node, g, i):
    p = node.params
    # the engine asks for the inputs' gradients one at a time with the same g: recompute and
    # backpropagate once per (node, g)
    if p["g"] is not g:
        p["result"] = _recompute_backward(p, g if isinstance(g, tuple) else (g,))
        p["g"] = g
    return p["result"][i]


def _recompute_backward(p, grads):
    from ..autograd import grad_mode, graph
    from ..autograd.engine import run_backward
    from ..func import _tree_flatten
    for i, (counter, version) in p["versions"]:
        if counter[0] != version:
            raise RuntimeError(
                f"checkpoint: tensor argument {i} of the checkpointed function was modified in "
                f"place after the forward (version {counter[0]}, expected {version}); the "
                f"recomputation would read the new values. Clone it before modifying it")
    create_graph = grad_mode.is_grad_enabled()  # the engine sets it to create_graph
    with p["state"].restored(), grad_mode.enable_grad(), p["recompute_ctx"]:
        start = next(graph._seq)
        out = p["fn"](*p["args"], **p["kwargs"])
    leaves = _tree_flatten(out)[0]
    diff = [leaves[i] for i in _differentiable(leaves)]
    expected = p["out_meta"]
    check = p["check"]
    if check and [_meta(t) for t in diff] != expected:
        raise CheckpointError(
            f"checkpoint: the recomputation in backward returned differentiable outputs "
            f"{_describe([_meta(t) for t in diff])}, but the forward returned "
            f"{_describe(expected)}. The function must compute the same thing both times "
            f"(depend on no global state that changed in between); pass "
            f"determinism_check='none' to skip this check")
    if len(diff) != len(expected):
        raise CheckpointError(
            f"checkpoint: the recomputation returned {len(diff)} outputs that require grad, "
            f"the forward {len(expected)}; the function must compute the same thing both times")
    boundary, names = _walk(diff, start, p["names"] is not None)
    edges = p["edges"]
    index = {e: k for k, e in enumerate(edges)}
    extra = [e for e in boundary if e not in index]
    if extra:
        raise CheckpointError(
            f"checkpoint: the recomputation in backward used {len(extra)} tensor(s) that "
            f"require grad which the forward did not use (e.g. one of shape "
            f"{list(boundary[extra[0]][0])}), so their gradients could not be passed on; the "
            f"function must compute the same thing both times")
    if check and p["names"] is not None and names != p["names"]:
        raise CheckpointError(
            f"checkpoint: the recomputation recorded other operations than the forward.\n"
            f"forward:       {p['names']}\nrecomputation: {names}")
    roots, root_grads = [], []
    for t, gr in zip(diff, grads):
        if gr is not None:
            roots.append(t)
            root_grads.append(gr)
    if not roots:
        return [None] * len(edges)
    got = run_backward(roots, root_grads, create_graph, create_graph, capture=index,
                       accumulate=False, stop={e[0] for e in edges})
    return [got.get(k) for k in range(len(edges))]


def _describe(metas):
    return "[" + ", ".join(f"{dt.name}{list(s)} on {d}" for s, dt, d in metas) + "]"


def checkpoint(function: Callable, *args: Any, use_reentrant=None,
               context_fn: Callable[[], Tuple[ContextManager, ContextManager]] = noop_context_fn,
               determinism_check: str = "default", debug: bool = False,
               early_stop: bool = True, **kwargs: Any):
    """Run ``function(*args, **kwargs)`` without keeping its intermediate activations; backward
    recomputes them (``torch.utils.checkpoint.checkpoint``).

    Parameters
    ----------
    function : callable
        The part of the model to checkpoint.  It may use tensors it closes over (a module's
        parameters): they get their gradients too.  It should compute the same thing when
        called again in backward (random draws are replayed, see ``preserve_rng_state``).
    *args
        Its positional arguments; tensors among them (also inside tuples, lists and dicts)
        are kept for the recomputation, other values are passed as they are.
    use_reentrant : bool
        Which torch variant's rules to follow.  Pass it explicitly: ``None`` warns and means
        ``True``, as in PyTorch 2.13.  ``True``: keyword arguments, ``context_fn`` and
        ``debug`` are refused, the determinism check is off, and when no tensor argument
        requires grad the function runs without recording (a warning says gradients will be
        None), as torch's reentrant variant.  ``False`` (recommended): keyword arguments are
        passed to ``function``, and the outputs require grad whenever they depend on
        something that does (a closure's parameters included).
    context_fn : callable, optional
        Returns two context managers: the forward runs in the first, the recomputation in the
        second (``use_reentrant=False`` only).
    determinism_check : {"default", "none"}
        ``"default"`` raises :class:`CheckpointError` when the recomputation's outputs that
        require grad differ in number, shape, dtype or device from the forward's (with
        ``debug=True``, also when it records other operations).  ``"none"`` skips this.
        Either way, a recomputation that uses a tensor requiring grad which the forward did
        not use raises (its gradient would have nowhere to go).
    debug : bool
        Record the forward's operation names and compare the recomputation's with them.
    early_stop : bool
        Accepted for PyTorch compatibility; the recomputation always runs the whole function.
    preserve_rng_state : bool, keyword, default True
        Save the cpu generator and those of the devices of the tensor arguments before the
        forward, and replay them for the recomputation (so dropout keeps its mask); the
        generators are put back afterwards.  Random draws on other devices are not replayed,
        as in PyTorch.
    **kwargs
        Passed to ``function`` (``use_reentrant=False`` only).

    Returns
    -------
    The output of ``function``, any nesting of tuples, lists and dicts; its tensors that
    depend on something requiring grad are attached to one ``CheckpointBackward0`` node.

    Notes
    -----
    polyten has no saved-tensor hooks, so both variants are one autograd node whose backward
    recomputes and backpropagates the function (see the module docstring).  Differences from
    PyTorch: with ``use_reentrant=True``, ``polyten.autograd.grad`` and
    ``backward(inputs=)`` work and tensors nested in tuples / lists / dicts of the output get
    gradients (torch's reentrant variant raises for the first two and leaves nested tensors
    without ``grad_fn``); leaf hooks and ``register_post_accumulate_grad_hook`` run in the
    enclosing backward, not in a nested one.  In both variants the outputs' ``grad_fn`` is
    ``CheckpointBackward0`` (torch's non-reentrant outputs show the function's last
    operation), and while one checkpointed call runs its whole graph is alive (torch's
    non-reentrant variant drops each saved tensor as it is made), so the saving is between
    calls.  The autocast regions and the default device (``with polyten.device(...)``) of the
    forward are restored for the recomputation, as in PyTorch.

    Examples
    --------
    >>> from polyten.utils.checkpoint import checkpoint
    >>> h = checkpoint(block, x, use_reentrant=False)   # block's activations are not kept
    >>> loss_fn(head(h), y).backward()                  # block runs again here
    """
    if use_reentrant is None:
        warnings.warn(
            "polyten.utils.checkpoint: the use_reentrant parameter should be passed "
            "explicitly (PyTorch warns the same); use_reentrant=False is recommended. "
            "Defaulting to use_reentrant=True, PyTorch's current default.", UserWarning,
            stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got {type(function).__name__}")
    if use_reentrant:
        if kwargs:
            raise ValueError(f"checkpoint: unexpected keyword arguments: {', '.join(kwargs)} "
                             f"(use_reentrant=True passes none to the function; pass "
                             f"use_reentrant=False)")
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("checkpoint: passing context_fn or debug is only supported when "
                             "use_reentrant=False")
    elif determinism_check not in _DETERMINISM:
        raise ValueError(f"checkpoint: determinism_check should be one of "
                         f"{list(_DETERMINISM)}, but got {determinism_check!r}")
    from ..autograd import grad_mode, graph
    from ..autograd.graph import _counter, record
    from ..api.tensor import Tensor
    from ..func import _tree_flatten, _tree_unflatten
    if not grad_mode.is_grad_enabled():
        return function(*args, **kwargs)  # nothing would be kept: no need to recompute
    arg_leaves = _tree_flatten(args)[0]
    if use_reentrant and not any(isinstance(t, Tensor) and t.requires_grad
                                 for t in arg_leaves):
        warnings.warn("checkpoint: none of the inputs have requires_grad=True. Gradients will "
                      "be None (use_reentrant=True, as in PyTorch; use_reentrant=False "
                      "differentiates closure parameters too)", UserWarning, stacklevel=2)
        with grad_mode.no_grad():
            return function(*args)
    state = _State(args, bool(preserve))
    if use_reentrant:
        forward_ctx, recompute_ctx = contextlib.nullcontext(), contextlib.nullcontext()
    else:
        forward_ctx, recompute_ctx = context_fn()
    with forward_ctx:
        start = next(graph._seq)
        out = function(*args, **kwargs)
    leaves, spec = _tree_flatten(out)
    where = _differentiable(leaves)
    if not where:
        return out
    diff = [leaves[i] for i in where]
    names_wanted = debug and not use_reentrant
    boundary, names = _walk(diff, start, names_wanted)
    edges = list(boundary)
    refs = tuple(_Edge(n, idx, shape, dtype) for (n, idx), (shape, dtype) in boundary.items())
    versions = [(i, _counter(t)) for i, t in enumerate(arg_leaves) if isinstance(t, Tensor)]
    params = {
        "fn": function, "args": args, "kwargs": kwargs, "state": state,
        "recompute_ctx": recompute_ctx, "edges": edges, "versions": versions,
        "out_meta": [_meta(t) for t in diff],
        "check": not use_reentrant and determinism_check == "default",
        "names": names if names_wanted else None, "g": None, "result": None,
    }
    fresh = tuple(t.detach() for t in diff)
    del diff, boundary  # the recorded graph of the call goes with the last references to it
    record(_rule(), fresh, refs, params)
    for i, t in zip(where, fresh):
        leaves[i] = t
    return _tree_unflatten(leaves, spec)


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules / callables) one after the
    other, checkpointing all but the last of ``segments`` equal chunks
    (``torch.utils.checkpoint.checkpoint_sequential``).

    Parameters
    ----------
    functions : nn.Sequential or list of callables
        Each takes the previous one's single output.
    segments : int
        How many chunks to make (``1 <= segments <= len(functions)``); each chunk but the last
        has ``len(functions) // segments`` functions, the last one the rest, and it is not
        checkpointed (its activations are needed at once by backward).
    input : Tensor
        The input of the first function.
    use_reentrant : bool
        As for :func:`checkpoint` (``None`` warns and means ``True``).
    preserve_rng_state : bool, keyword, default True
        As for :func:`checkpoint`.

    Returns
    -------
    The output of the last function.
    """
    if use_reentrant is None:
        warnings.warn(
            "polyten.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter "
            "should be passed explicitly (PyTorch warns the same); use_reentrant=False is "
            "recommended. Defaulting to use_reentrant=True, PyTorch's current default.",
            UserWarning, stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError(f"checkpoint_sequential: unexpected keyword arguments: "
                         f"{', '.join(kwargs)}")
    from ..nn import Sequential
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    else:
        functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int):
        raise TypeError(f"checkpoint_sequential: segments must be an int, got "
                        f"{type(segments).__name__}")
    if not 1 <= segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and the number "
                         f"of functions ({len(functions)}), got {segments}")

    def run(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)
