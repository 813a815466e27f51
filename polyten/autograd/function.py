"""Custom differentiable operations: ``polyten.autograd.Function`` (as ``torch.autograd.Function``).

>>> class Square(Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return 2 * x * g
>>> y = Square.apply(polyten.tensor([3.0], requires_grad=True))
"""

from __future__ import annotations

from typing import Any, Tuple

from . import grad_mode
from .graph import record
from .rules import Rule

__all__ = ["Function", "FunctionCtx"]


class FunctionCtx:
    """The ``ctx`` passed to ``forward`` and ``backward``."""

    def __init__(self, needs_input_grad: Tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self._saved: Tuple = ()
        self._non_diff: set = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (or None) for ``backward``; read them back with ``saved_tensors``."""
        self._saved = tensors

    @property
    def saved_tensors(self) -> Tuple:
        if self._saved is None:
            raise RuntimeError("saved_tensors: the saved tensors were freed by a previous "
                               "backward(); pass retain_graph=True to backward twice")
        return self._saved

    def mark_non_differentiable(self, *outputs) -> None:
        """Outputs that get no gradient (e.g. indices); they will not require grad."""
        self._non_diff.update(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether missing output gradients reach ``backward`` as zeros (default) or None."""
        self.materialize_grads = bool(value)


def _function_rule(cls, n_inputs: int) -> Rule:
    rules = cls.__dict__.get("_polyten_rules")
    if rules is None:
        rules = {}
        setattr(cls, "_polyten_rules", rules)
    rule = rules.get(n_inputs)
    if rule is None:
        rule = Rule(cls.__name__)
        rule.cls.__name__ = rule.cls.__qualname__ = f"{cls.__name__}Backward"
        rule.save_inputs = False
        rule.save_output = False
        rule.formulas = tuple(_formula(cls, i) for i in range(n_inputs))
        rules[n_inputs] = rule
    return rule


def _formula(cls, i):
    def f(node, g):
        p = node.params
        # the engine calls the formulas of one node one after the other with the same g:
        # run the user's backward once per (node, g)
        if p.get("g") is not g:
            ctx = p["ctx"]
            grads = g if isinstance(g, tuple) else (g,)
            res = cls.backward(ctx, *grads)
            if not isinstance(res, tuple):
                res = (res,)
            if len(res) != p["n_inputs"]:
                raise RuntimeError(f"{cls.__name__}.backward returned {len(res)} gradients but "
                                   f"forward took {p['n_inputs']} inputs; return one per input "
                                   f"(None for inputs without a gradient)")
            p["result"] = res
            p["g"] = g
        return p["result"][i]
    return f


class Function:
    """Base class of custom ops: write static ``forward(ctx, *args)`` and
    ``backward(ctx, *grad_outputs)`` and call ``MyFunction.apply(*args)``."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any):
        raise NotImplementedError("Function subclasses must implement backward(ctx, ...) to be "
                                  "differentiated")

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..api.tensor import Tensor
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with grad_mode.no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not (any(needs) and grad_mode.is_grad_enabled()):
            return out
        outs = out if isinstance(out, tuple) else (out,)
        fresh = []
        for o in outs:
            if isinstance(o, Tensor) and o._ag is not None:
                o = o.detach()  # forward returned an input or a recorded tensor: re-root it
            fresh.append(o)
        outs = tuple(fresh)
        rule = _function_rule(cls, len(args))
        params = {"ctx": ctx, "n_inputs": len(args)}
        record(rule, outs if len(outs) > 1 or isinstance(out, tuple) else outs[0], args, params)
        node = None
        for o in outs:
            if isinstance(o, Tensor) and o._ag is not None:
                node = o._ag.grad_fn
                if id(o) in ctx._non_diff or o._dtype.kind not in "fc":
                    o._ag.requires_grad = False
                    o._ag.grad_fn = None
        if node is not None and len(outs) > 1:
            node.out_meta = tuple(None if not isinstance(o, Tensor) else
                                  (tuple(o._data.shape), o._dtype, o._device) for o in outs)
        return outs if isinstance(out, tuple) else outs[0]
