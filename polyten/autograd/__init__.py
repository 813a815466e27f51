"""polyten.autograd: reverse-mode differentiation written once above the dispatcher.

Ops record a :class:`~polyten.autograd.graph.Node` when an input requires grad; the derivative
of each op is a formula in polyten ops in ``derivatives.py`` (one table), so gradients, double
backward included, work on every backend.
"""

from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from . import functional
from .function import Function, FunctionCtx
from .functions import backward, grad
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import Node
from .meta import AutogradMeta, requires_grad_

__all__ = ["AutogradMeta", "requires_grad_", "backward", "grad", "no_grad", "enable_grad",
           "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled", "Node", "gradcheck", "gradgradcheck",
           "GradcheckError", "Function", "FunctionCtx", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "functional"]
