"""``Flatten`` and ``Unflatten``."""

from __future__ import annotations

from ...api.tensor import Tensor
from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        if not isinstance(input, Tensor):
            raise TypeError(f"Flatten: expected a tensor, got {type(input).__name__}")
        try:
            return input.flatten(self.start_dim, self.end_dim)
        except IndexError as exc:
            raise IndexError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): "
                             f"input of shape {tuple(input.shape)}: {exc}") from None

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Unflatten: dim must be an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got "
                            f"{unflattened_size!r}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input):
        try:
            return input.unflatten(self.dim, tuple(self.unflattened_size))
        except (ValueError, RuntimeError, IndexError) as exc:
            raise type(exc)(f"Unflatten(dim={self.dim}, unflattened_size="
                            f"{self.unflattened_size}): input of shape {tuple(input.shape)}: "
                            f"{exc}") from None

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
