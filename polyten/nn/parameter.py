"""``Parameter``: a tensor that a :class:`~polyten.nn.Module` registers as a learnable weight."""

from __future__ import annotations

from ..api.tensor import Tensor
from ..autograd.meta import AutogradMeta

__all__ = ["Parameter", "Buffer", "is_lazy"]


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning it to a module attribute registers it,
    and it requires grad by default (``torch.nn.Parameter``).

    ``Parameter(data)`` shares ``data``'s memory (no copy) and is a leaf of the graph.
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            from ..api.creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a tensor, got {type(data).__name__}; wrap "
                            f"values with polyten.tensor(...) first")
        p = object.__new__(cls)
        p._data = data._data
        p._device = data._device
        p._dtype = data._dtype
        p._version = data._version
        p._ag = None
        if requires_grad:
            if not (data._dtype.is_floating_point or data._dtype.is_complex):
                raise RuntimeError(f"Parameter: only floating point and complex tensors can "
                                   f"require gradients, got {data._dtype.name}; pass "
                                   f"requires_grad=False for an integer parameter")
            p._ag = AutogradMeta(True)
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ refuses direct construction)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce__(self):
        from ..api.interop import to_numpy
        return (_rebuild_parameter, (to_numpy(self, force=True), str(self._device),
                                     self._dtype.name, self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        from ..api.shape import clone
        from ..autograd.grad_mode import no_grad
        with no_grad():
            result = Parameter(clone(self), self.requires_grad)
        memo[id(self)] = result
        return result


def _rebuild_parameter(host, device, dtype_name, requires_grad):
    from ..api.creation import asarray
    from ..api.dtypes import DTYPES
    return Parameter(asarray(host, dtype=DTYPES[dtype_name], device=device), requires_grad)


class Buffer:
    """Marker for ``module.name = Buffer(tensor, persistent=True)`` (registers a buffer)."""

    __slots__ = ("data", "persistent")

    def __init__(self, data, persistent: bool = True):
        self.data, self.persistent = data, persistent


def is_lazy(obj) -> bool:
    return False
