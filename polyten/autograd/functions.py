"""``backward`` and ``grad``: the user-facing entry points of the engine, and the autograd
methods of :class:`~polyten.Tensor`."""

from __future__ import annotations

import weakref
from typing import Optional, Sequence

from ..api._core import share_version
from ..api.creation import ones_like as _ones_like
from ..api.tensor import wrap
from ..dispatch.errors import fmt_shape
from .engine import run_backward
from .meta import AutogradMeta

__all__ = ["backward", "grad"]


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _default_grads(outputs, grad_outputs, op):
    from ..api.creation import ones_like
    if grad_outputs is None and len(outputs) == 1 and outputs[0]._data.shape == ():
        return [ones_like(outputs[0])]  # loss.backward(): the common case, checked cheaply
    grads = _as_list(grad_outputs)
    if not grads:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise ValueError(f"{op}: got {len(outputs)} outputs but {len(grads)} gradients")
    out = []
    for t, g in zip(outputs, grads):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs, but the "
                    f"output has shape {fmt_shape(t._data.shape)}; pass gradient= (a tensor of "
                    f"that shape), or reduce the output first, e.g. out.sum().backward()")
            g = ones_like(t)
        else:
            if not hasattr(g, "_data"):
                from ..api.creation import full_like
                g = full_like(t, g)
            if tuple(g._data.shape) != tuple(t._data.shape):
                raise RuntimeError(f"{op}: gradient has shape {fmt_shape(g._data.shape)} but the "
                                   f"output has shape {fmt_shape(t._data.shape)}")
            if g._device is not t._device:
                raise RuntimeError(f"{op}: gradient is on {g._device} but the output is on "
                                   f"{t._device}; move it there first, e.g. "
                                   f"gradient.to('{t._device}')")
            if g._dtype is not t._dtype:
                if g._dtype.is_complex != t._dtype.is_complex:
                    raise RuntimeError(f"{op}: gradient is {g._dtype.name} but the output is "
                                       f"{t._dtype.name}; a complex output needs a complex "
                                       f"gradient and a real one a real gradient")
                # as torch: the backward kernels take the output's dtype (the fused cuda
                # ones refused or misread another)
                g = g.to(dtype=t._dtype)
        out.append(g)
    return out


def _check_roots(outputs, op):
    for t in outputs:
        ag = t._ag
        if ag is None or not ag.requires_grad:
            raise RuntimeError(
                f"{op}: element 0 of tensors does not require grad and does not have a "
                f"grad_fn: nothing was recorded. Set requires_grad=True on the inputs (e.g. "
                f"polyten.tensor(..., requires_grad=True)) and make sure the computation is not "
                f"inside polyten.no_grad()")


def backward(tensors, grad_tensors=None, retain_graph: Optional[bool] = None,
             create_graph: bool = False, inputs=None) -> None:
    """Accumulate into ``.grad`` of the leaves the gradients of ``tensors`` (``torch.autograd.backward``)."""
    outputs = _as_list(tensors)
    _check_roots(outputs, "backward")
    grads = _default_grads(outputs, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    only = None
    capture = None
    needed = None
    targets = _as_list(inputs)
    if inputs is not None:
        if not targets:
            raise RuntimeError("backward: inputs= was given but is empty")
        only = {id(t) for t in targets}
        capture = {}
        needed = set()
        for i, t in enumerate(targets):
            ag = t._ag
            if ag is None or not ag.requires_grad:
                raise RuntimeError(f"backward: input {i} of inputs= does not require grad")
            if ag.grad_fn is not None:
                capture[(ag.grad_fn, ag.output_nr)] = i
            else:
                if ag.accumulator is None:
                    from .graph import AccumulateGrad
                    ag.accumulator = AccumulateGrad(t)
                needed.add(ag.accumulator)
        needed.update(node for node, _ in capture)
    got = run_backward(outputs, grads, retain_graph, create_graph, capture=capture, only=only,
                       targets=needed)
    for i, t in enumerate(targets):  # non-leaf tensors named in inputs= get .grad too
        if t._ag.grad_fn is not None and i in got:
            g = got[i] if create_graph else got[i].detach()
            t._ag.grad = g if t._ag.grad is None else t._ag.grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: Optional[bool] = None,
         materialize_grads: bool = False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    Returns a tuple with one entry per input; an input the outputs do not depend on raises
    unless ``allow_unused=True`` (then its entry is ``None``, or zeros with
    ``materialize_grads=True``).
    """
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    _check_roots(outs, "grad")
    grads = _default_grads(outs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    capture = {}
    for i, t in enumerate(ins):
        ag = t._ag
        if ag is None or not ag.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
        if ag.grad_fn is not None:
            capture[(ag.grad_fn, ag.output_nr)] = i
        else:
            from .graph import AccumulateGrad
            if ag.accumulator is None:
                ag.accumulator = AccumulateGrad(t)
            capture[(ag.accumulator, 0)] = i
    got = run_backward(outs, grads, retain_graph, create_graph, capture=capture,
                       accumulate=False, targets={node for node, _ in capture})
    result = []
    for i, t in enumerate(ins):
        g = got.get(i)
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {fmt_shape(t._data.shape)}) was not used in the "
                    f"graph of the outputs; pass allow_unused=True to get None for it")
            if materialize_grads:
                from ..api.creation import zeros_like
                g = zeros_like(t)
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


# ------------------------------------------------------------------- Tensor methods ------
def _backward_method(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of this tensor w.r.t. graph leaves (``torch.Tensor.backward``)."""
    ag = self._ag
    if (gradient is None and inputs is None and not create_graph and ag is not None
            and ag.grad_fn is not None and self._data.shape == ()):
        # loss.backward(): the one call of every training step, without the general
        # argument handling of backward()
        run_backward((self,), (_ones_like(self),), bool(retain_graph), False)
        return
    backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
             inputs)



def _get_grad(self):
    ag = self._ag
    return None if ag is None else ag.grad


def _set_grad(self, value):
    if value is not None:
        if tuple(value._data.shape) != tuple(self._data.shape):
            raise RuntimeError(f"assigned grad has shape {fmt_shape(value._data.shape)} but "
                               f"the tensor has shape {fmt_shape(self._data.shape)}")
    if self._ag is None:
        self._ag = AutogradMeta(False)
    self._ag.grad = value


def _detach(self):
    """A tensor sharing this one's data, outside the graph (``requires_grad=False``)."""
    return share_version(self, wrap(self._data, self._device, self._dtype))


def _detach_(self):
    """Detach this tensor from the graph in place."""
    ag = self._ag
    if ag is not None:
        ag.grad_fn = None
        ag.requires_grad = False
    return self


def _retain_grad(self):
    """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
    ag = self._ag
    if ag is None or not ag.requires_grad:
        raise RuntimeError("retain_grad: can't retain_grad on a tensor that does not require "
                           "grad")
    if ag.grad_fn is None or ag.retains_grad:
        return
    ag.retains_grad = True
    ref = weakref.ref(self)

    def keep(g):
        t = ref()
        if t is not None:
            g2 = g.detach()
            t._ag.grad = g2 if t._ag.grad is None else t._ag.grad + g2
    node = ag.grad_fn
    if node.pre_hooks is None:
        node.pre_hooks = {}
    node.pre_hooks.setdefault(ag.output_nr, []).append(keep)


def _register_hook(self, hook):
    """Run ``hook(grad)`` when this tensor's gradient is computed; it may return a
    replacement gradient.  Returns a handle with ``.remove()``."""
    from .graph import _Handle
    ag = self._ag
    if ag is None or not ag.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't "
                           "require gradient")
    if ag.grad_fn is None:
        if ag.hooks is None:
            ag.hooks = []
        ag.hooks.append(hook)
        return _Handle(ag.hooks, hook)
    node = ag.grad_fn
    if node.pre_hooks is None:
        node.pre_hooks = {}
    lst = node.pre_hooks.setdefault(ag.output_nr, [])
    lst.append(hook)
    return _Handle(lst, hook)


def _register_post_accumulate_grad_hook(self, hook):
    """Run ``hook(tensor)`` after backward has accumulated this leaf's ``.grad``
    (``torch.Tensor.register_post_accumulate_grad_hook``).

    The hook gets the tensor itself (read ``tensor.grad``) and must return ``None``; it runs
    once per backward that accumulates into this leaf (not for ``polyten.autograd.grad``,
    which accumulates nothing).  Returns a handle with ``.remove()``.

    Raises
    ------
    RuntimeError
        For a tensor that does not require grad, or a non-leaf tensor (whose gradient is never
        accumulated), as PyTorch.

    Examples
    --------
    Optimizer in backward: each parameter is updated, and its gradient freed, as soon as
    backward has accumulated it.

    >>> opts = {p: polyten.optim.SGD([p], lr=0.1) for p in model.parameters()}
    >>> def step(p):
    ...     opts[p].step()
    ...     opts[p].zero_grad()
    >>> for p in model.parameters():
    ...     p.register_post_accumulate_grad_hook(step)
    >>> loss_fn(model(x), y).backward()    # the parameters are updated here
    """
    from .graph import AccumulateGrad, _Handle
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                        f"{type(hook).__name__}")
    ag = self._ag
    if ag is None or not ag.requires_grad:
        raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a "
                           "tensor that doesn't require gradient; call requires_grad_() on "
                           "the leaf first")
    if ag.grad_fn is not None:
        raise RuntimeError(f"register_post_accumulate_grad_hook: post accumulate grad hooks "
                           f"cannot be registered on non-leaf tensors (this one has grad_fn "
                           f"{ag.grad_fn.name()}); register it on the leaf, or use "
                           f"register_hook for a non-leaf's gradient")
    acc = ag.accumulator
    if acc is None:
        acc = ag.accumulator = AccumulateGrad(self)
    if acc.post_hooks is None:
        acc.post_hooks = []
    acc.post_hooks.append(hook)
    return _Handle(acc.post_hooks, hook)


def _get_requires_grad(self):
    ag = self._ag
    return ag is not None and ag.requires_grad


def _set_requires_grad(self, value):
    from .meta import requires_grad_
    requires_grad_(self, bool(value))


def _is_leaf(self):
    ag = self._ag
    return ag is None or ag.grad_fn is None


def _grad_fn(self):
    ag = self._ag
    return None if ag is None else ag.grad_fn


def _retains_grad(self):
    ag = self._ag
    return ag is not None and ag.retains_grad


TENSOR_METHODS = {
    "backward": _backward_method,
    "grad": property(_get_grad, _set_grad),
    "detach": _detach,
    "detach_": _detach_,
    "retain_grad": _retain_grad,
    "retains_grad": property(_retains_grad),
    "register_hook": _register_hook,
    "register_post_accumulate_grad_hook": _register_post_accumulate_grad_hook,
    "requires_grad": property(_get_requires_grad, _set_requires_grad),
    "is_leaf": property(_is_leaf),
    "grad_fn": property(_grad_fn),
}
