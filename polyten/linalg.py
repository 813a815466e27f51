"""``polyten.linalg``: linear algebra (``norm``, ``vector_norm``, ``matrix_norm``, ``inv``,
``solve``, ``det``, ...), as ``torch.linalg`` and the Array API ``linalg`` extension."""

from .api import linalg as _api_linalg

from .api import linalg_more as _more  # noqa: E402

globals().update(_api_linalg.LINALG_NAMESPACE)
globals().update(_more.LINALG_MORE)
__all__ = sorted(list(_api_linalg.LINALG_NAMESPACE) + list(_more.LINALG_MORE))
