"""``polyten.linalg``: linear algebra (``norm``, ``vector_norm``, ``matrix_norm``, ``inv``,
``solve``, ``det``, ...), as ``torch.linalg`` and the Array API ``linalg`` extension."""

from .api import linalg as _api_linalg

globals().update(_api_linalg.LINALG_NAMESPACE)
__all__ = sorted(_api_linalg.LINALG_NAMESPACE)
