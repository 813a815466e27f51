"""Gradients through the backend under test (area "gradients"; see polyten_conformance.gradients).

``test_gradcheck[op]`` / ``test_gradgradcheck[op]``: first and second derivatives of every
differentiable op on small float64 samples against central differences of the backend's own
forward kernels.  ``test_no_grad[op]``: a non-differentiable op records nothing.
"""

from __future__ import annotations

from polyten_conformance.gradients import check_gradients, check_no_grad


def test_gradcheck(grad_op, conf):
    """Analytical first derivatives equal numerical ones; gradients have the inputs' shape,
    dtype (float64) and device; integer / bool outputs do not require grad."""
    check_gradients(conf, grad_op, order=1)


def test_gradgradcheck(grad_op, conf):
    """Second derivatives (the backward of the backward, ``create_graph=True``) equal numerical
    derivatives of the first."""
    check_gradients(conf, grad_op, order=2)


def test_no_grad(nograd_op, conf):
    """A non-differentiable op given inputs that require grad returns outputs that do not
    require grad; asking for their gradient raises RuntimeError."""
    check_no_grad(conf, nograd_op)
