"""The recorded graph: nodes (``grad_fn``), leaf accumulators, and how ops record themselves.

An op that ran with gradients enabled on an input that requires grad calls :func:`record`.
That creates one :class:`Node` holding the op's derivative rule (from ``derivatives.RULES``),
what the rule needs (inputs, output, parameters) and ``next_functions``: for each input, the
node that produced it (or the leaf's :class:`AccumulateGrad`, or ``None``), as in PyTorch.
"""

from __future__ import annotations

import itertools
import traceback
from typing import Any, Dict, Optional, Tuple

from .meta import AutogradMeta

__all__ = ["Node", "AccumulateGrad", "record", "needs_grad", "node_class"]

_seq = itertools.count()
_CLASSES: Dict[str, type] = {}
ANOMALY = [False]  # set by detect_anomaly(); read when a node is created


class Node:
    """A backward function in the graph: ``tensor.grad_fn``.

    Attributes
    ----------
    next_functions : tuple of (Node or None, int)
        For each input of the op, the node its gradient flows to and that node's output index.
    """

    # the rarely set fields are class attributes: record() does not write them, and a node
    # that gets a hook or an anomaly stack stores it in its (lazily created) __dict__
    __slots__ = ("rule", "inputs", "outputs", "params", "shapes", "next_functions", "needs",
                 "seq", "saved_versions", "released", "n_outputs", "out_versions", "device",
                 "__weakref__", "__dict__")
    pre_hooks = None
    hooks = None
    stack = None
    out_meta = None

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` runs after this node computed its input grads."""
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(hook)
        return _Handle(self.hooks, hook)

    def register_prehook(self, hook):
        """``hook(grad_outputs)`` runs before this node; it may return replacement grads."""
        if self.pre_hooks is None:
            self.pre_hooks = {}
        self.pre_hooks.setdefault(-1, []).append(hook)
        return _Handle(self.pre_hooks[-1], hook)

    @property
    def metadata(self) -> dict:
        return {}

    def output(self, i: int = 0):
        """Saved output ``i`` as a tensor whose ``grad_fn`` is this node (for double backward).

        Outputs are saved as (native data, device, dtype), not as tensors: a tensor would hold
        this node through its ``grad_fn`` and make a reference cycle, so every step's
        activations would wait for the garbage collector instead of being freed at once.
        """
        saved = self.outputs
        if saved is None:
            from .engine import _released_error
            raise _released_error(self)
        data, device, dtype = saved[i]
        from ..api.tensor import wrap
        t = wrap(data, device, dtype)
        ag = t._ag = AutogradMeta(True)
        ag.grad_fn = self
        ag.output_nr = i
        return t


class AccumulateGrad:
    """The sink of a leaf tensor: adds incoming gradients into ``leaf.grad``."""

    __slots__ = ("variable", "edge", "post_hooks", "__weakref__")

    def __init__(self, variable):
        self.variable = variable
        self.edge = (self, 0)  # the edge every consumer of the leaf records (made once)
        self.post_hooks = None  # register_post_accumulate_grad_hook's, run after .grad is set

    next_functions = ()
    seq = -1  # runs after every node that feeds it
    n_outputs = 1

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


class _Handle:
    __slots__ = ("lst", "item")

    def __init__(self, lst, item):
        self.lst, self.item = lst, item

    def remove(self) -> None:
        try:
            self.lst.remove(self.item)
        except ValueError:
            pass


def node_class(name: str) -> type:
    """``AddBackward0``-style class for the rule called ``name`` (one per rule, cached)."""
    cls = _CLASSES.get(name)
    if cls is None:
        camel = "".join(p[:1].upper() + p[1:] for p in name.split("_"))
        cls = _CLASSES[name] = type(f"{camel}Backward0", (Node,), {"__slots__": ()})
    return cls


def needs_grad(t) -> bool:
    ag = getattr(t, "_ag", None)
    return ag is not None and ag.requires_grad


def record(rule, out, inputs: tuple, params: Optional[dict] = None):
    """Attach a node for ``rule`` (a ``derivatives.Rule``) to ``out`` (a tensor or tuple).

    ``inputs`` are the op's inputs in the rule's order: tensors, or plain values (Python
    scalars, None) which get no gradient.  Returns ``out``.
    """
    # This runs once per recorded op, usually cold (between kernels that evict the caches),
    # so the one-, two- and three-input cases avoid the generic loop and its temporary lists.
    n_in = len(inputs)
    if n_in == 1:
        x = inputs[0]
        if out.__class__ is not tuple and hasattr(x, "_ag"):
            return record_unary(rule, out, x, params, inputs)
        xa = getattr(x, "_ag", None)
        if xa is None or not xa.requires_grad:
            return out
        edges = (_edge_of(x, xa),)
        needs = _NEED1
        xd = x._data
        shapes = ((xd.shape, x._dtype),)
        versions = (_counter(x),) if rule.save_inputs else None
    elif n_in == 2:
        x, y = inputs
        if out.__class__ is not tuple and hasattr(x, "_ag") and hasattr(y, "_ag"):
            return record_binary(rule, out, inputs, params)
        xa = getattr(x, "_ag", None)
        ya = getattr(y, "_ag", None)
        nx = xa is not None and xa.requires_grad
        ny = ya is not None and ya.requires_grad
        if not (nx or ny):
            return out
        # a tensor and a Python scalar (x * 2.0), or a multi-output op
        edges = (_edge_of(x, xa) if nx else _NO_EDGE, _edge_of(y, ya) if ny else _NO_EDGE)
        needs = (nx, ny)
        xd = getattr(x, "_data", None)
        yd = getattr(y, "_data", None)
        shapes = (None if xd is None else (xd.shape, x._dtype),
                  None if yd is None else (yd.shape, y._dtype))
        if rule.save_inputs:
            vx = vy = None
            reads = rule.reads
            if reads is not None:  # an input that no formula to run reads: no version check
                if not ((nx and 0 in reads[0]) or (ny and 0 in reads[1])):
                    xd = None
                if not ((nx and 1 in reads[0]) or (ny and 1 in reads[1])):
                    yd = None
            if xd is not None:
                vx = x._version
                if vx is None:
                    vx = x._version = [0]
                vx = (vx, vx[0])
            if yd is not None:
                vy = y._version
                if vy is None:
                    vy = y._version = [0]
                vy = (vy, vy[0])
            versions = (vx, vy)
        else:
            versions = None
    elif n_in == 3:  # linear (x, weight, bias), where, clamp with tensor bounds, ...
        x, y, z = inputs
        xa = getattr(x, "_ag", None)
        ya = getattr(y, "_ag", None)
        za = getattr(z, "_ag", None)
        nx = xa is not None and xa.requires_grad
        ny = ya is not None and ya.requires_grad
        nz = za is not None and za.requires_grad
        if not (nx or ny or nz):
            return out
        edges = (_edge_of(x, xa) if nx else _NO_EDGE, _edge_of(y, ya) if ny else _NO_EDGE,
                 _edge_of(z, za) if nz else _NO_EDGE)
        needs = (nx, ny, nz)
        xd = getattr(x, "_data", None)
        yd = getattr(y, "_data", None)
        zd = getattr(z, "_data", None)
        shapes = (None if xd is None else (xd.shape, x._dtype),
                  None if yd is None else (yd.shape, y._dtype),
                  None if zd is None else (zd.shape, z._dtype))
        if rule.save_inputs:
            versions = (None if xd is None else _counter(x), None if yd is None else _counter(y),
                        None if zd is None else _counter(z))
        else:
            versions = None
    else:
        edges = []
        needs = []
        shapes = []
        for t in inputs:
            ag = getattr(t, "_ag", None)
            need = ag is not None and ag.requires_grad
            needs.append(need)
            edges.append(_edge_of(t, ag) if need else _NO_EDGE)
            data = getattr(t, "_data", None)
            shapes.append(None if data is None else (data.shape, t._dtype))
        if True not in needs:
            return out  # no input requires grad: nothing to record
        edges, needs, shapes = tuple(edges), tuple(needs), tuple(shapes)
        versions = tuple(_counter(t) if hasattr(t, "_version") else None
                         for t in inputs) if rule.save_inputs else None
    node = _new(rule.cls)
    node.next_functions = edges
    node.needs = needs
    node.shapes = shapes
    node.inputs = (inputs if inputs.__class__ is tuple else tuple(inputs)) \
        if rule.save_inputs else None
    node.saved_versions = versions
    if out.__class__ is not tuple:
        return _single(rule, node, out, params)
    node.rule = rule
    node.params = params
    node.seq = next(_seq)
    node.released = False
    if ANOMALY[0]:
        node.stack = traceback.format_stack()[:-2]
    node.device = next((o._device for o in out if o is not None), None)
    node.n_outputs = len(out)
    node.out_meta = tuple(None if o is None else (tuple(o._data.shape), o._dtype, o._device)
                          for o in out)
    node.outputs = tuple(None if o is None else (o._data, o._device, o._dtype)
                         for o in out) if rule.save_output else None
    node.out_versions = tuple(None if o is None else _counter(o)
                              for o in out) if rule.save_output else None
    for i, o in enumerate(out):
        if o is not None and o._dtype.kind in "fc":
            _attach(o, node, i)
    return out


# record_unary / record_binary: the hottest cases (unary elementwise ops and reductions;
# tensor-tensor arithmetic) with one tensor output, without record()'s generic branches: an
# op with grad then costs about what PyTorch's does.
def record_unary(rule, out, x, params: Optional[dict] = None, inputs: Optional[tuple] = None):
    """:func:`record` for one tensor input ``x`` (``inputs`` is ``(x,)`` when the caller has
    it) and one tensor output."""
    xa = x._ag
    if xa is None or not xa.requires_grad:
        return out
    node = _new(rule.cls)
    node.next_functions = (_edge_of(x, xa),)
    node.needs = _NEED1
    xd = x._data
    node.shapes = ((xd.shape, x._dtype),)
    if rule.save_inputs:
        node.inputs = inputs or (x,)
        node.saved_versions = (_counter(x),)
    else:
        node.inputs = node.saved_versions = None
    return _single(rule, node, out, params)


def record_binary(rule, out, inputs: tuple, params: Optional[dict] = None):
    """:func:`record` for two tensor inputs and one tensor output."""
    x, y = inputs
    xa = x._ag
    ya = y._ag
    nx = xa is not None and xa.requires_grad
    ny = ya is not None and ya.requires_grad
    if not (nx or ny):
        return out
    node = _new(rule.cls)
    node.next_functions = (_edge_of(x, xa) if nx else _NO_EDGE,
                           _edge_of(y, ya) if ny else _NO_EDGE)
    node.needs = (nx, ny)
    xd = x._data
    yd = y._data
    node.shapes = ((xd.shape, x._dtype), (yd.shape, y._dtype))
    if rule.save_inputs:
        node.inputs = inputs
        reads = rule.reads
        if reads is None:
            node.saved_versions = (_counter(x), _counter(y))
        else:  # only the inputs the formulas to run read must keep their version
            node.saved_versions = (
                _counter(x) if (nx and 0 in reads[0]) or (ny and 0 in reads[1]) else None,
                _counter(y) if (nx and 1 in reads[0]) or (ny and 1 in reads[1]) else None)
    else:
        node.inputs = node.saved_versions = None
    return _single(rule, node, out, params)


def _single(rule, node, out, params):
    """The rest of a node with one tensor output ``out``, which it becomes the grad_fn of."""
    node.rule = rule
    node.params = params
    node.seq = next(_seq)
    node.released = False
    if ANOMALY[0]:
        node.stack = traceback.format_stack()[:-3]
    dev = node.device = out._device
    node.n_outputs = 1
    if rule.save_output:
        node.outputs = ((out._data, dev, out._dtype),)
        node.out_versions = (_counter(out),)
    else:
        node.outputs = node.out_versions = None
    ag = out._ag
    if ag is None:
        out._ag = AutogradMeta(True, node)
    else:
        ag.requires_grad = True
        ag.grad_fn = node
        ag.output_nr = 0
    return out


_new = object.__new__
_NO_EDGE = (None, 0)
_NEED1 = (True,)


def _edge_of(t, ag) -> Tuple[Any, int]:
    """The edge to ``t`` (whose autograd state ``ag`` requires grad)."""
    fn = ag.grad_fn
    if fn is not None:
        return (fn, ag.output_nr)
    acc = ag.accumulator
    if acc is None:
        acc = ag.accumulator = AccumulateGrad(t)
    return acc.edge


def _counter(t):
    v = t._version
    if v is None:
        v = t._version = [0]
    return (v, v[0])


def check_versions(node) -> None:
    """Raise if a tensor this node saved was modified in place since it was saved."""
    for kind, saved in (("input", node.saved_versions), ("output", node.out_versions)):
        if not saved:
            continue
        for i, item in enumerate(saved):
            if item is not None and item[0][0] != item[1]:
                raise RuntimeError(
                    f"one of the tensors needed for gradient computation has been modified by "
                    f"an in-place operation: {kind} {i} of {node.name()} is at version "
                    f"{item[0][0]}; expected version {item[1]}. Use an out-of-place op (x = x + "
                    f"y instead of x += y) or clone() the tensor before modifying it")


def _attach(t, node, index) -> None:
    ag = t._ag
    if ag is None:
        ag = t._ag = AutogradMeta(True)
    ag.requires_grad = True
    ag.grad_fn = node
    ag.output_nr = index
