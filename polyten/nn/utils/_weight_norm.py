"""The hook-based weight normalisation of older PyTorch (``torch.nn.utils.weight_norm`` /
``remove_weight_norm``), kept for code and checkpoints written against it; new code uses
:func:`polyten.nn.utils.parametrizations.weight_norm`."""

from __future__ import annotations

import warnings

from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _check_dim, _names, _norm_except_dim, _weight_norm

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook behind :func:`weight_norm`: recomputes ``module.<name>`` from
    ``<name>_g`` and ``<name>_v`` before every forward."""

    def __init__(self, name: str, dim) -> None:
        self.name = name
        self.dim = _check_dim("weight_norm", dim)

    def compute_weight(self, module: Module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim) -> "WeightNorm":
        warnings.warn("`polyten.nn.utils.weight_norm` is deprecated in favor of "
                      "`polyten.nn.utils.parametrizations.weight_norm`.", FutureWarning,
                      stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"weight_norm: Cannot register two weight_norm hooks on the "
                                   f"same parameter {name}; call remove_weight_norm(module, "
                                   f"{name!r}) first")
        weight = module._parameters.get(name) if isinstance(name, str) else None
        if weight is None:
            raise ValueError(f"weight_norm: Module '{type(module).__name__}' has no parameter "
                             f"named {name!r} (parameters: {_names(module._parameters)})")
        fn = WeightNorm(name, dim)
        del module._parameters[name]
        module.register_parameter(name + "_g",
                                  Parameter(_norm_except_dim(weight, fn.dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim=0) -> Module:
    r"""Weight normalisation by a forward pre-hook (deprecated: FutureWarning).

    Replaces the parameter ``<name>`` by ``<name>_g`` (its norms over every dim but ``dim``,
    size-1 dims kept; ``dim=None``: one norm) and ``<name>_v`` (its direction); before every
    forward ``module.<name> = <name>_g * <name>_v / ||<name>_v||`` is recomputed as a plain
    attribute.  State dict keys: ``<name>_g``, ``<name>_v`` (PyTorch's).

    Returns
    -------
    Module
        ``module``.
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``<name>`` becomes a parameter again holding the current
    normalised weight."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in "
                     f"{type(module).__name__}; was weight_norm(module, {name!r}) applied to "
                     f"this module (not a parent or child)?")
