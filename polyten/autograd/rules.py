"""The registry of derivative rules, keyed by op name (filled by ``derivatives.py``).

The API layer looks rules up here when it records a node; this module imports nothing from
the API, so the API can import it.  A rule holds one formula per input, each
``formula(node, grad) -> grad_input`` written in polyten ops (so double backward and every
backend come for free); the engine undoes broadcasting and casts to the input's dtype.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

from .graph import node_class

__all__ = ["Rule", "rule", "RULES", "define"]


class Rule:
    """Derivative rule of one op: ``formulas[i](node, grad)`` gives the gradient of input ``i``.

    ``save_inputs`` / ``save_output``: whether the formulas read ``node.inputs`` /
    ``node.outputs`` (otherwise only shapes and dtypes are kept, and nothing big stays alive).
    ``formulas`` is ``None`` for a rule not written yet: backward then raises, naming the op.
    ``none_grads``: the formulas of a multi-output op take ``None`` for an output that got no
    gradient (otherwise the engine passes zeros of that output's shape).
    """

    __slots__ = ("name", "formulas", "save_inputs", "save_output", "cls", "holomorphic",
                 "variadic", "none_grads", "reads")

    def __init__(self, name: str):
        self.name = name
        self.formulas: Optional[Sequence[Optional[Callable]]] = None
        self.save_inputs = True
        self.save_output = True
        self.holomorphic = True
        self.variadic = None
        self.none_grads = False
        # per input, the inputs its formula reads (None: all of them): an input no formula
        # that runs reads may change in place without failing the version check (x * 2 never
        # reads x), as PyTorch saves only what each derivative uses
        self.reads = None
        self.cls = node_class(name)

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {'defined' if self.formulas else 'not defined'})"


RULES: Dict[str, Rule] = {}


def rule(name: str) -> Rule:
    """The rule object for ``name`` (created empty if no formulas are registered yet)."""
    r = RULES.get(name)
    if r is None:
        r = RULES[name] = Rule(name)
    return r


def define(name: str, *formulas, inputs: bool = True, output: bool = False,
           holomorphic: bool = True, none_grads: bool = False) -> Rule:
    """Register the formulas of ``name`` (one per input; ``None`` = no gradient).

    Formulas are written as plain derivatives (``g * f'(z)``).  For complex values polyten
    follows PyTorch's convention (the conjugate Wirtinger derivative, ``g * conj(f'(z))``): the
    engine conjugates the incoming and outgoing gradients of ``holomorphic`` rules.  Rules of
    non-holomorphic ops (``abs``, ``real``, ``imag``, ``conj``) pass ``holomorphic=False`` and
    are written in PyTorch's convention directly.
    """
    r = rule(name)
    r.formulas = tuple(formulas)
    r.save_inputs = inputs
    r.save_output = output
    r.holomorphic = holomorphic
    r.none_grads = none_grads
    return r


def define_variadic(name: str, formula, inputs: bool = True, output: bool = False,
                    holomorphic: bool = True) -> Rule:
    """Register one formula ``formula(node, grad, i)`` for an op with any number of tensor
    inputs (``cat``, ``stack``, ``einsum``)."""
    r = define(name, inputs=inputs, output=output, holomorphic=holomorphic)
    r.variadic = formula
    return r
