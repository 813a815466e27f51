"""The backward pass: topological traversal of the recorded graph.

Nodes run in reverse creation order (``Node.seq``; leaf accumulators last).  A node is created
after the nodes of its inputs, so every node that can send it a gradient has a larger ``seq``
and has run before it: no dependency counting is needed, only a max-heap of the nodes reached
so far.  Each runs its rule's formulas (under grad mode = ``create_graph``, so the backward itself is recorded
for higher-order gradients), undoes broadcasting (:func:`sum_to`) and casts to the input's dtype
in one place, then hands the gradients to ``next_functions``.
"""

from __future__ import annotations

import heapq
from heapq import heappop, heappush
from typing import Dict, Optional, Sequence

from ..api import dtypes as _dt
from ..api.tensor import wrap
from . import grad_mode
from .graph import ANOMALY, AccumulateGrad, Node, check_versions

__all__ = ["run_backward", "sum_to"]

_grad_enabled = grad_mode.grad_enabled


def sum_to(g, shape):
    """Reduce ``g`` (a broadcast result) to ``shape``: the one helper that undoes broadcasting."""
    gshape = g._data.shape
    if tuple(gshape) == tuple(shape):
        return g
    lead = len(gshape) - len(shape)
    dims = list(range(lead))
    for i, s in enumerate(shape):
        if s == 1 and gshape[lead + i] != 1:
            dims.append(lead + i)
    if dims:
        g = g.sum(dim=tuple(dims), keepdim=True)
    if lead:
        g = g.reshape(tuple(shape))
    elif tuple(g._data.shape) != tuple(shape):
        g = g.reshape(tuple(shape))
    return g


def _released_error(node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time (or to read saved tensors after "
        f"they were freed) at {node.name()}: the saved values were released by the first "
        f"backward(). Pass retain_graph=True to the first backward() or autograd.grad() if "
        f"you need to backward through the graph twice.")


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _call_rule(node: Node, grads: list):
    rule = node.rule
    if rule.formulas is None:
        raise RuntimeError(f"the derivative for '{rule.name}' is not implemented yet; the op "
                           f"ran on a tensor that requires grad. Compute it under "
                           f"polyten.no_grad() or on detached tensors")
    if node.released:
        raise _released_error(node)
    for saved in (node.saved_versions, node.out_versions):
        if saved:
            for item in saved:
                if item is not None and item[0][0] != item[1]:
                    check_versions(node)  # raises, naming the tensor
    if not rule.holomorphic:
        conj = False
    elif len(grads) == 1:
        conj = grads[0] is not None and grads[0]._dtype.kind == "c"
    else:
        conj = any(x is not None and x._dtype.kind == "c" for x in grads)
    dev = node.device
    if dev is not None and not conj and not _grad_enabled():
        fused = dev.backend.backward_kernels.get(rule.name)
        if fused is not None:
            out = _call_fused(node, fused, grads)
            if out is not NotImplemented:
                return out
    if conj:  # PyTorch's convention for complex values: g * conj(f'(z)) = conj(conj(g) f'(z))
        grads = [None if x is None else (x.conj() if x._dtype.kind == "c" else x)
                 for x in grads]
    if node.n_outputs == 1:
        g = grads[0]
    else:
        g = tuple(grads)
    out = []
    shapes = node.shapes
    for i, need in enumerate(node.needs):
        if not need:
            out.append(None)
            continue
        if rule.variadic is not None:
            r = rule.variadic(node, g, i)
        else:
            f = rule.formulas[i] if i < len(rule.formulas) else None
            if f is None:
                raise RuntimeError(f"{rule.name}: the gradient with respect to input {i} is "
                                   f"not implemented")
            r = f(node, g)
        if conj and r is not None and r._dtype.kind == "c":
            r = r.conj()
        if r is not None:
            out.append(_fit(r, shapes[i]))
        else:
            out.append(None)
    return out


def _fit(r, shape_dtype):
    """``r`` reduced to an input's shape (undoing broadcasting) and cast to its dtype."""
    shape, dtype = shape_dtype
    if r._data.shape != shape:
        r = sum_to(r, shape)
    if r._dtype is not dtype:
        if r._dtype.kind == "c" and dtype.kind != "c":
            # a real input promoted to complex gets the real part (PyTorch's convention); the
            # cast alone would drop the imaginary part too, but with NumPy's ComplexWarning
            r = r.real
        if r._dtype is not dtype:
            r = r.to(dtype)
    return r


def _call_fused(node, fused, grads):
    """A backend's fused backward kernel: native arrays in and out, no graph recorded.

    The kernel may return ``NotImplemented`` (the formulas run instead) and gradients of the
    broadcast shape or another dtype (reduced and cast here, as for the formulas).
    """
    # once per node of every backward(): the common one-gradient, one/two-input shapes are
    # spelled out instead of generator expressions
    if len(grads) == 1:
        g = grads[0]
        natives = (None if g is None else g._data,)
    else:
        natives = tuple(None if g is None else g._data for g in grads)
    saved = node.inputs
    if saved is None:
        inputs = None
    elif len(saved) == 2:
        a, b = saved
        inputs = (getattr(a, "_data", a), getattr(b, "_data", b))
    else:
        inputs = tuple(getattr(t, "_data", t) for t in saved)
    saved = node.outputs
    if saved is None:
        outputs = None
    elif len(saved) == 1:
        outputs = (saved[0][0],)
    else:
        outputs = tuple(None if o is None else o[0] for o in saved)
    params = node.params
    if params:
        params = dict(params)
        params["needs"] = node.needs
        params["shapes"] = node.shapes
    else:
        params = {"needs": node.needs, "shapes": node.shapes}
    res = fused(natives, inputs, outputs, params)
    if res is NotImplemented:
        return res
    dev = node.device
    shapes = node.shapes
    needs = node.needs
    if len(needs) == 1:  # unary ops: no loop
        r = res[0]
        return [None if r is None or not needs[0] else _wrap_fitted(r, dev, shapes[0])]
    out = []
    for i, need in enumerate(needs):
        r = res[i] if i < len(res) else None
        out.append(None if not need or r is None else _wrap_fitted(r, dev, shapes[i]))
    return out


def _wrap_fitted(r, dev, shape_dtype):
    """A fused kernel's native gradient as a tensor of the input's shape and dtype."""
    shape, dtype = shape_dtype
    if r.shape == shape:
        nd = dev.backend.native_dtype(dtype.name)
        rd = r.dtype
        if rd is nd or rd == nd:
            return wrap(r, dev, dtype)
    return _fit(wrap(r, dev, _dt._by_name(dev.backend.dtype_name(r))), shape_dtype)


def _check_anomaly(node, grads):
    import math
    for i, g in enumerate(grads):
        if g is None:
            continue
        bad = not bool((g.to("cpu") if g._device.type != "cpu" else g).isfinite().all())
        if bad:
            where = "".join(node.stack[-6:]) if node.stack else "(stack not recorded)"
            raise RuntimeError(f"Function '{node.name()}' returned nan/inf values in its "
                               f"gradient for input {i}. The forward op was created at:\n"
                               f"{where}")
    return math


def run_backward(roots: Sequence, root_grads: Sequence, retain_graph: bool,
                 create_graph: bool, capture: Optional[Dict] = None,
                 accumulate: bool = True, only: Optional[set] = None,
                 stop: Optional[set] = None, targets: Optional[set] = None):
    """Propagate ``root_grads`` from ``roots`` (tensors).

    ``capture``: {(node, index): slot} -- gradients arriving there are stored in the returned
    dict instead of (or, for ``only``, besides) being accumulated.  ``only``: if given, leaves
    not in it (by id) are not accumulated into.  ``stop``: nodes (or leaf accumulators) at
    which propagation ends: the gradients reaching them are captured (when ``capture`` names
    them) and they neither run, nor run hooks, nor accumulate -- activation checkpointing
    backpropagates a recomputed segment this way up to the edges of the enclosing graph,
    which the enclosing backward then runs once.  ``targets``: if given, the nodes (or leaf
    accumulators) whose gradients are wanted; only nodes from which one of them can be reached
    run (``autograd.grad``, ``backward(inputs=)``: as PyTorch, the rest of the graph is neither
    computed, nor hooked, nor freed).
    """
    buffers: Dict = {}
    starts = []
    for t, g in zip(roots, root_grads):
        ag = t._ag
        if ag.grad_fn is not None:
            node, idx = ag.grad_fn, ag.output_nr
        else:
            acc = ag.accumulator
            if acc is None:
                acc = ag.accumulator = AccumulateGrad(t)
            node, idx = acc, 0
        buf = buffers.setdefault(node, [None] * node.n_outputs)
        buf[idx] = _add(buf[idx], g)
        starts.append(node)
    captured = {}
    heap = []
    pushed = set()
    if targets is not None:
        # every node that cannot reach a target counts as pushed already: it never runs
        pushed = _unneeded(starts, targets)
    for n in starts:
        if n not in pushed:
            pushed.add(n)
            heapq.heappush(heap, (-n.seq, id(n), n))
    stored = _STORED[0]  # a backward run from inside a node's backward must not reset it
    _STORED[0] = set()
    token = grad_mode._ENABLED.set(create_graph)
    try:
        while heap:
            node = heappop(heap)[2]
            grads = buffers.pop(node, None)
            if stop is not None and node in stop:
                if capture and grads:
                    for idx, g in enumerate(grads):
                        slot = capture.get((node, idx))
                        if slot is not None and g is not None:
                            captured[slot] = _add(captured.get(slot), g)
                continue
            if node.__class__ is AccumulateGrad:
                g = grads[0] if grads else None
                if g is not None:
                    _accumulate(node.variable, g, create_graph, capture, captured, only,
                                accumulate)
                continue
            if grads is None:
                grads = [None] * node.n_outputs
            if node.pre_hooks or capture:
                grads = _pre_hooks(node, grads, capture, captured)
            if (grads[0] is None) if node.n_outputs == 1 else all(g is None for g in grads):
                in_grads = [None] * len(node.next_functions)
            else:
                if node.n_outputs > 1 and not node.rule.none_grads and \
                        any(g is None for g in grads):
                    grads = [g if g is not None else _zeros_for(node, i)
                             for i, g in enumerate(grads)]
                in_grads = _call_rule(node, grads)
                if ANOMALY[0]:
                    _check_anomaly(node, in_grads)
                if node.hooks:
                    for h in node.hooks:
                        h(tuple(in_grads), tuple(grads))
            if not retain_graph and (node.inputs is not None or node.outputs is not None
                                     or not _plain(node.params)):
                # as torch, only a node that holds data is spent by a backward: one that saved
                # nothing but numbers (add, reshape, sum) may run again
                node.released = True
                node.inputs = None
                node.outputs = None
                node.params = None
            for (m, idx), g in zip(node.next_functions, in_grads):
                if m is None:
                    continue
                if g is not None:
                    buf = buffers.get(m)
                    if buf is None:
                        buf = buffers[m] = [None] * m.n_outputs
                    old = buf[idx]
                    buf[idx] = g if old is None else old + g
                if m not in pushed:  # it runs once every larger seq has run (see above)
                    pushed.add(m)
                    heappush(heap, (-m.seq, id(m), m))
    finally:
        grad_mode._ENABLED.reset(token)
        _STORED[0] = stored
    return captured


def _zeros_for(node, i):
    from ..api.creation import zeros
    meta = node.out_meta[i] if hasattr(node, "out_meta") else None
    if meta is None:
        raise RuntimeError(f"{node.name()}: missing gradient for output {i}")
    return zeros(meta[0], dtype=meta[1], device=meta[2])


def _hooked(hook, old, new):
    """A tensor hook's replacement gradient, which must keep the gradient's shape, dtype and
    device (as torch checks): the backward kernels read it as the output's."""
    if not hasattr(new, "_data") or new._dtype is not old._dtype or \
            new._device is not old._device or tuple(new._data.shape) != tuple(old._data.shape):
        from ..api._core import describe
        raise RuntimeError(f"backward: hook {getattr(hook, '__name__', hook)!r} replaced the "
                           f"gradient, {describe(old)}, by {describe(new)}; return a tensor of "
                           f"the same shape, dtype and device (or None to keep it)")
    return new


def _pre_hooks(node, grads, capture, captured):
    hooks = node.pre_hooks
    if hooks:
        grads = list(grads)
        for idx, fns in hooks.items():
            if idx < 0:
                for h in fns:
                    r = h(tuple(grads))
                    if r is not None:
                        grads = list(r)
                continue
            for h in fns:
                if grads[idx] is None:
                    continue
                r = h(grads[idx])
                if r is not None:
                    grads[idx] = _hooked(h, grads[idx], r)
    if capture:
        for idx in range(len(grads)):
            key = (node, idx)
            if key in capture and grads[idx] is not None:
                captured[capture[key]] = _add(captured.get(capture[key]), grads[idx])
    return grads


def _accumulate(leaf, g, create_graph, capture, captured, only, accumulate):
    ag = leaf._ag
    if ag.hooks:
        for h in ag.hooks:
            r = h(g)
            if r is not None:
                g = _hooked(h, g, r)
    if capture is not None:
        key = (ag.accumulator, 0)
        if key in capture:
            captured[capture[key]] = _add(captured.get(capture[key]), g)
    if not accumulate or (only is not None and id(leaf) not in only):
        return
    if not create_graph and g._ag is not None:
        g = g.detach()
    if ag.grad is None:
        # each .grad owns writable, contiguous memory (as PyTorch's AccumulateGrad): one
        # gradient may reach several leaves (x + y), and a reduction's backward is a
        # read-only broadcast view (x.sum()), which an in-place grad.zero_() could not write
        key = id(g._data)
        if key in _STORED[0] or g._data is leaf._data or not g.is_contiguous():
            g = g.clone()
        _STORED[0].add(id(g._data))
        ag.grad = g
    else:
        ag.grad = ag.grad + g  # out of place: a .grad the user holds is never changed
    acc = ag.accumulator
    post = None if acc is None else acc.post_hooks
    if post:
        for h in tuple(post):  # a hook may remove itself
            if h(leaf) is not None:
                raise TypeError(f"backward: post accumulate grad hook "
                                f"{getattr(h, '__name__', h)!r} returned a value; it must "
                                f"return None (update the tensor or its .grad in place)")


def _plain(value) -> bool:
    """Whether ``value`` (a node's params) holds only numbers, strings and ``None``."""
    if value is None or value.__class__ in (int, float, bool, str):
        return True
    if value.__class__ in (tuple, list):
        return all(_plain(v) for v in value)
    if value.__class__ is dict:
        return all(_plain(v) for v in value.values())
    return False


def _unneeded(starts, targets: set) -> set:
    """The nodes reachable from ``starts`` from which no node of ``targets`` can be reached
    (an iterative post-order walk: graphs are deeper than Python's recursion limit)."""
    needed = {}
    for start in starts:
        if start in needed:
            continue
        stack = [(start, iter(start.next_functions))]
        needed[start] = start in targets
        while stack:
            node, children = stack[-1]
            for m, _ in children:
                if m is None:
                    continue
                if m not in needed:
                    needed[m] = m in targets
                    stack.append((m, iter(m.next_functions)))
                    break
                if needed[m]:
                    needed[node] = True
            else:
                stack.pop()
                if needed[node] and stack:
                    needed[stack[-1][0]] = True
    return {n for n, keep in needed.items() if not keep}


_STORED = [set()]
