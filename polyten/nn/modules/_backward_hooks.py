"""Module backward hooks (``register_full_backward_hook`` / ``register_full_backward_pre_hook``).

As in PyTorch, ``Module.__call__`` passes the module's positional tensor inputs, and then its
tensor outputs, through an identity node each (``BackwardHookFunctionBackward``).  The output
node's backward sees the gradients w.r.t. the outputs (the pre-hooks run there and may replace
them); the input node's backward sees the gradients w.r.t. the inputs (the full hooks run there
and may replace them).  One :class:`BackwardHook` is made per call, so a module called twice in
one graph fires its hooks once per call.  Modules without such hooks never reach this file.
"""

from __future__ import annotations

import warnings

from ...api.tensor import Tensor
from ...autograd import grad_mode
from ...autograd.graph import record
from ...autograd.rules import Rule

__all__ = ["BackwardHook"]


def _identity_rule(name: str, none_grads: bool) -> Rule:
    rule = Rule(name)
    # the name PyTorch's identity nodes show (grad_fn.name())
    rule.cls.__name__ = rule.cls.__qualname__ = "BackwardHookFunctionBackward"
    rule.save_inputs = False
    rule.save_output = False
    rule.holomorphic = False  # hooks see the gradients as they arrive (no conjugation)
    rule.none_grads = none_grads
    rule.variadic = _formula
    rule.formulas = ()
    return rule


def _formula(node, g, i):
    # the engine asks for one input gradient at a time, from the first input that needs one:
    # the callback runs at that first request and its result serves the others
    p = node.params
    if i == node.needs.index(True):
        grads = g if isinstance(g, tuple) else (g,)
        p["result"] = p["callback"](grads)
    return p["result"][i]


# inputs: output gradients that never arrived reach the hooks as zeros (PyTorch materialises
# them for the identity Function's backward); outputs: as None (the hooks see what arrived)
_INPUT_RULE = _identity_rule("_module_backward_hook_inputs", none_grads=False)
_OUTPUT_RULE = _identity_rule("_module_backward_hook_outputs", none_grads=True)


def _identity(tensors, rule, callback):
    """``tensors`` aliased (no copy) and recorded as one node of ``rule`` whose backward is
    ``callback(grads) -> grads``.  Outputs whose input does not require grad stay out of the
    graph (PyTorch's ``mark_non_differentiable``)."""
    with grad_mode.no_grad():
        outs = tuple(t.detach() for t in tensors)
    record(rule, outs, tuple(tensors), {"callback": callback})
    for t, o in zip(tensors, outs):
        if not (t._ag is not None and t._ag.requires_grad) and o._ag is not None:
            o._ag.requires_grad = False
            o._ag.grad_fn = None
    node = next((o._ag.grad_fn for o in outs if o._ag is not None and
                 o._ag.grad_fn is not None), None)
    return outs, node


def _check_replacement(what: str, module, old, new) -> None:
    if new is None or old is None:
        return
    if not isinstance(new, Tensor):
        raise TypeError(f"{what} of {type(module).__name__} returned a {type(new).__name__} "
                        f"as a gradient; return tensors (or None) only")
    if tuple(new.shape) != tuple(old.shape) or new.dtype != old.dtype or \
            new.device != old.device:
        raise RuntimeError(f"{what} of {type(module).__name__} replaced a gradient of shape "
                           f"{tuple(old.shape)} ({old.dtype}, {old.device}) by one of shape "
                           f"{tuple(new.shape)} ({new.dtype}, {new.device}); keep the shape, "
                           f"dtype and device")


class BackwardHook:
    """The backward-hook state of one module call: set up around the inputs before
    ``forward`` (:meth:`setup_input_hook`) and around the outputs after it
    (:meth:`setup_output_hook`)."""

    __slots__ = ("module", "user_hooks", "user_pre_hooks", "grad_outputs", "n_outputs",
                 "output_index", "n_inputs", "input_index")

    def __init__(self, module, user_hooks, user_pre_hooks) -> None:
        self.module = module
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.grad_outputs = None
        self.n_outputs = -1
        self.output_index = None
        self.n_inputs = -1
        self.input_index = None

    @staticmethod
    def _wrap(args, rule, callback):
        """Pass the tensors among ``args`` through one identity node; ``(new args, indices
        of the tensors)``, or ``(args, None)`` when none of them requires grad."""
        index = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        if not grad_mode.is_grad_enabled() or not any(args[i].requires_grad for i in index):
            return args, None
        outs, _ = _identity([args[i] for i in index], rule, callback)
        new = list(args)
        for i, o in zip(index, outs):
            new[i] = o
        return tuple(new), index

    @staticmethod
    def _pack(index, values, size):
        res = [None] * size
        for i, v in zip(index, values):
            res[i] = v
        return tuple(res)

    # --------------------------------------------------------------------- inputs -----
    def setup_input_hook(self, args: tuple) -> tuple:
        args, self.input_index = self._wrap(args, _INPUT_RULE, self._on_input_grads)
        self.n_inputs = len(args)
        return args

    def _on_input_grads(self, grads):
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs (e.g. a
            # double backward): nothing to report
            return grads
        res = self._pack(self.input_index, grads, self.n_inputs)
        for hook in list(self.user_hooks):
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, (tuple, list)):
                out = (out,)
            if len(out) != len(res):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(out)}, but expected {len(res)}")
            for old, new in zip(res, out):
                _check_replacement("full backward hook", self.module, old, new)
            res = tuple(out)
        self.grad_outputs = None
        return tuple(res[i] for i in self.input_index)

    # -------------------------------------------------------------------- outputs -----
    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        outs, self.output_index = self._wrap(outs, _OUTPUT_RULE, self._on_output_grads)
        self.n_outputs = len(outs)
        return outs if is_tuple else outs[0]

    def _on_output_grads(self, grads):
        self.grad_outputs = self._pack(self.output_index, grads, self.n_outputs)
        expected = len(self.grad_outputs)
        for hook in list(self.user_pre_hooks):
            out = hook(self.module, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, (tuple, list)):
                out = (out,)
            if len(out) != expected:
                raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                   f"grad_output, got {len(out)}, but expected {expected}")
            for old, new in zip(self.grad_outputs, out):
                _check_replacement("full backward pre hook", self.module, old, new)
            self.grad_outputs = tuple(out)
        grad_outputs = self.grad_outputs
        if self.input_index is None:
            # no input requires grad: the input node does not exist, so the full hooks run
            # here, with every grad_input None (as PyTorch, which warns)
            if self.user_hooks:
                warnings.warn("Full backward hook is firing when gradients are computed with "
                              "respect to module outputs since no inputs require gradients. "
                              "See Module.register_full_backward_hook for more details.",
                              stacklevel=2)
            none = (None,) * self.n_inputs
            for hook in list(self.user_hooks):
                res = hook(self.module, none, grad_outputs)
                if res is not None and not (isinstance(res, tuple) and
                                            all(r is None for r in res)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
            self.grad_outputs = None
        return tuple(grad_outputs[i] for i in self.output_index)
