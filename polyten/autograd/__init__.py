"""polyten.autograd: reverse-mode differentiation written once above the dispatcher.

Today this package holds the per-tensor autograd state (:class:`AutogradMeta`) and
``requires_grad_``; graph recording, ``backward`` and the derivative table arrive with the
autograd issue.
"""

from .meta import AutogradMeta, requires_grad_

__all__ = ["AutogradMeta", "requires_grad_"]
