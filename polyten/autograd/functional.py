"""Higher-level derivatives of functions: ``vjp``, ``jvp``, ``jacobian``, ``hessian``
(as ``torch.autograd.functional``), built on :func:`polyten.autograd.grad`."""

from __future__ import annotations

from typing import Callable

from .functions import grad as _grad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _tup(x):
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _prepare(inputs, create_graph):
    ins, is_tuple = _tup(inputs)
    prepared = []
    for t in ins:
        p = t if create_graph and t.requires_grad else t.detach()
        prepared.append(p.requires_grad_(True) if not p.requires_grad else p)
    return tuple(prepared), is_tuple


def _out(x, is_tuple):
    return x if is_tuple else x[0]


def _check_outputs(outs, fname):
    from ..api.tensor import Tensor
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"{fname}: the function must return tensors, got "
                            f"{type(o).__name__}")


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product at ``inputs``."""
    with enable_grad():
        ins, in_tuple = _prepare(inputs, create_graph)
        outs, out_tuple = _tup(func(*ins))
        _check_outputs(outs, "vjp")
        if v is None:
            for o in outs:
                if o.numel() != 1:
                    raise RuntimeError("vjp: v can only be omitted when the function returns a "
                                       "single-element tensor")
        vs = _tup(v)[0] if v is not None else None
        diff = [o for o in outs if o.requires_grad]
        if not diff:
            grads = tuple(i.detach() * 0 for i in ins)
        else:
            gouts = [vs[k] for k, o in enumerate(outs) if o.requires_grad] if vs else None
            grads = _grad(diff, ins, gouts, create_graph=create_graph, allow_unused=True,
                          materialize_grads=True)
    res = tuple(o if create_graph else o.detach() for o in outs)
    return _out(res, out_tuple), _out(tuple(grads), in_tuple)


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``: the Jacobian-vector product, by the double-vjp trick (a vjp of
    a vjp with a dummy cotangent), so only reverse mode is needed."""
    from ..api.creation import zeros_like
    with enable_grad():
        ins, in_tuple = _prepare(inputs, True)
        outs, out_tuple = _tup(func(*ins))
        _check_outputs(outs, "jvp")
        vs = _tup(v)[0] if v is not None else None
        if vs is None:
            for i in ins:
                if i.numel() != 1:
                    raise RuntimeError("jvp: v can only be omitted for single-element inputs")
            from ..api.creation import ones_like
            vs = tuple(ones_like(i) for i in ins)
        dummies = tuple(zeros_like(o).requires_grad_(True) for o in outs)
        diff = [(o, d) for o, d in zip(outs, dummies) if o.requires_grad]
        if not diff:
            jv = tuple(zeros_like(o) for o in outs)
        else:
            g = _grad([o for o, _ in diff], ins, [d for _, d in diff], create_graph=True,
                      allow_unused=True, materialize_grads=True)
            pairs = [(gi, vi) for gi, vi in zip(g, vs) if gi.requires_grad]
            if not pairs:
                jv = tuple(zeros_like(o) for o in outs)
            else:
                jv = _grad([p for p, _ in pairs], list(dummies), [q for _, q in pairs],
                           create_graph=create_graph, allow_unused=True,
                           materialize_grads=True)
    res = tuple(o if create_graph else o.detach() for o in outs)
    jv = tuple(j if create_graph else j.detach() for j in jv)
    return _out(res, out_tuple), _out(jv, out_tuple)


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False):
    """The Jacobian of ``func`` at ``inputs``: shape ``out.shape + in.shape`` (nested tuples
    for several outputs / inputs, as PyTorch)."""
    from ..api.creation import zeros
    from ..api.shape import stack
    with enable_grad():
        ins, in_tuple = _prepare(inputs, create_graph)
        outs, out_tuple = _tup(func(*ins))
        _check_outputs(outs, "jacobian")
        result = []
        for o in outs:
            rows = [[] for _ in ins]
            flat_n = o.numel()
            for j in range(flat_n):
                if o.requires_grad:
                    onehot = zeros(flat_n, dtype=o.dtype, device=o.device)
                    onehot[j] = 1.0
                    gs = _grad([o], ins, [onehot.reshape(o.shape)], retain_graph=True,
                               create_graph=create_graph, allow_unused=True,
                               materialize_grads=True)
                else:
                    gs = tuple(i.detach() * 0 for i in ins)
                for k, g in enumerate(gs):
                    rows[k].append(g if create_graph else g.detach())
            per_input = []
            for k, i in enumerate(ins):
                if rows[k]:
                    jac = stack(rows[k]).reshape(tuple(o.shape) + tuple(i.shape))
                else:
                    jac = zeros(tuple(o.shape) + tuple(i.shape), dtype=i.dtype,
                                device=i.device)
                per_input.append(jac)
            result.append(_out(tuple(per_input), in_tuple))
    return _out(tuple(result), out_tuple)


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False):
    """The Hessian of a scalar ``func`` at ``inputs`` (``in.shape + in.shape``)."""
    ins, in_tuple = _tup(inputs)

    def grad_fn(*xs):
        with enable_grad():
            out = func(*xs)
            if out.numel() != 1:
                raise RuntimeError("hessian: the function must return a single-element tensor")
            g = _grad([out], list(xs), create_graph=True, allow_unused=True,
                      materialize_grads=True)
        return g if in_tuple else g[0]

    return jacobian(grad_fn, inputs, create_graph=create_graph)


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)``."""
    ins, in_tuple = _tup(inputs)

    def grad_fn(*xs):
        out = func(*xs)
        g = _grad([out], list(xs), create_graph=True, allow_unused=True,
                  materialize_grads=True)
        return g if in_tuple else g[0]
    with enable_grad():
        xs, _ = _prepare(inputs, True)
        value = func(*xs)
    _, r = vjp(grad_fn, inputs, v, create_graph=create_graph)
    return (value if create_graph else value.detach()), r


hvp = vhp  # the Hessian is symmetric for twice continuously differentiable functions
