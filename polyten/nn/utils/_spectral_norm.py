"""The hook-based spectral normalisation of older PyTorch (``torch.nn.utils.spectral_norm`` /
``remove_spectral_norm``); new code uses
:func:`polyten.nn.utils.parametrizations.spectral_norm`."""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from .. import functional as F
from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _names

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook behind :func:`spectral_norm`: sets ``module.<name>`` to
    ``<name>_orig / sigma`` before every forward, running the power iteration on the buffers
    ``<name>_u`` / ``<name>_v`` in training mode."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        self.name = name
        self.dim = dim
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) \
                or n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations!r}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool):
        from ...api.linalg import dot, mv
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    # v first, then u (the order of this older API), in place in the buffers
                    F.normalize(mv(weight_mat.mT, u), dim=0, eps=self.eps, out=v)
                    F.normalize(mv(weight_mat, v), dim=0, eps=self.eps, out=u)
                # copies: the next training forward writes the buffers again, and this
                # forward's graph must keep the values it used
                u = u.clone()
                v = v.clone()
        sigma = dot(u, mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name,
                self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> "SpectralNorm":
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"spectral_norm: Cannot register two spectral_norm hooks on "
                                   f"the same parameter {name}; call remove_spectral_norm("
                                   f"module, {name!r}) first")
        weight = module._parameters.get(name) if isinstance(name, str) else None
        if weight is None:
            raise ValueError(f"spectral_norm: Module '{type(module).__name__}' has no parameter "
                             f"named {name!r} (parameters: {_names(module._parameters)})")
        if weight.ndim < 1 or not -weight.ndim <= dim < weight.ndim:
            raise IndexError(f"spectral_norm: dim {dim} is out of range for {name} of shape "
                             f"{tuple(weight.shape)}")
        fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
        with no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        # module.<name> stays readable before the first forward (init code reads it); a
        # plain attribute, not a parameter
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim=None) -> Module:
    r"""Spectral normalisation by a forward pre-hook.

    Replaces the parameter ``<name>`` by ``<name>_orig`` and the buffers ``<name>_u`` /
    ``<name>_v`` (random unit vectors); before every forward, ``module.<name>`` is set to
    ``<name>_orig / sigma`` with ``sigma = u^T W v``, after ``n_power_iterations`` power
    steps (v then u, in place) in training mode.  ``dim``: the output dim (default 1 for
    ``ConvTranspose*``, else 0).  State dict keys: ``<name>_orig``, ``<name>_u``,
    ``<name>_v`` (PyTorch's; PyTorch loads them without its version metadata).

    Returns
    -------
    Module
        ``module``.
    """
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) \
            else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``<name>`` becomes a parameter again holding the current
    normalised weight (no power step)."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"remove_spectral_norm: spectral_norm of {name!r} not found in "
                     f"{type(module).__name__}; was spectral_norm(module, {name!r}) applied to "
                     f"this module?")
