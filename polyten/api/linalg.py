"""Linear algebra (being written)."""

__all__ = []
TENSOR_METHODS = {}
LINALG_NAMESPACE = {}
