"""Per-tensor autograd state, kept out of the tensor until a tensor needs it."""

from __future__ import annotations


class AutogradMeta:
    """``requires_grad``, the accumulated ``grad`` and the ``grad_fn`` that produced the tensor."""

    __slots__ = ("requires_grad", "grad", "grad_fn", "retains_grad", "hooks", "output_nr",
                 "accumulator", "name")

    def __init__(self, requires_grad: bool = False, grad_fn=None, output_nr: int = 0):
        self.requires_grad = requires_grad
        self.grad = None
        self.grad_fn = grad_fn
        self.retains_grad = False
        self.hooks = None
        self.output_nr = output_nr
        self.accumulator = None
        self.name = None


def requires_grad_(self, requires_grad: bool = True):
    """Set whether autograd records operations on this tensor (in place); returns ``self``.

    Only floating-point and complex tensors can require gradients.
    """
    if requires_grad and not (self._dtype.is_floating_point or self._dtype.is_complex):
        raise RuntimeError(f"requires_grad_: only floating point and complex tensors can "
                           f"require gradients, got {self._dtype.name}; cast first, e.g. "
                           f"x.to(polyten.float32)")
    if self._ag is None:
        if not requires_grad:
            return self
        self._ag = AutogradMeta(True)
    else:
        if not requires_grad and self._ag.grad_fn is not None:
            raise RuntimeError("requires_grad_(False): only leaf tensors can change "
                               "requires_grad; use .detach() for a non-leaf")
        self._ag.requires_grad = bool(requires_grad)
    return self
