"""``Parameter``: a tensor that a :class:`~polyten.nn.Module` registers as a learnable weight."""

from __future__ import annotations

from ..api.tensor import Tensor
from ..autograd.meta import AutogradMeta

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]


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


class UninitializedTensorMixin:
    """What uninitialised parameters and buffers share (``torch.nn.parameter``'s mixin).

    They hold an empty ``(0,)`` array only to carry a device and a dtype, which ``.to()``,
    ``.double()`` and ``Module.to`` change as for any tensor; :meth:`materialize` gives them a
    shape (lazy modules call it on their first forward) and turns them into the regular class,
    in place, so references held elsewhere (an optimizer's parameter list) stay valid.
    """

    __slots__ = ()
    cls_to_become: type = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Allocate ``shape`` (uninitialised values) on ``device`` with ``dtype`` (default:
        this tensor's) and become :attr:`cls_to_become` (``Parameter`` / ``Tensor``)."""
        from ..api.creation import empty
        new = empty(tuple(shape), dtype=self._dtype if dtype is None else dtype,
                    device=self._device if device is None else device)
        self._data, self._device, self._dtype = new._data, new._device, new._dtype
        self._version = None
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This usually "
            "happens in load_state_dict when loading an uninitialized parameter into an "
            "initialized one; call the lazy module's forward (a dry run with an example "
            "input) to initialize its parameters before reading their attributes")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__

    def __reduce__(self):
        return (_rebuild_uninitialized, (type(self), self.requires_grad, str(self._device),
                                         self._dtype.name))

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = _rebuild_uninitialized(type(self), self.requires_grad,
                                                    self._device, self._dtype)
        return memo[id(self)]


def _uninitialized(cls, requires_grad: bool, device, dtype):
    from ..api.creation import empty
    data = empty(0, dtype=dtype, device=device)
    t = object.__new__(cls)
    t._data, t._device, t._dtype, t._version = data._data, data._device, data._dtype, None
    t._ag = AutogradMeta(True) if requires_grad else None
    return t


def _rebuild_uninitialized(cls, requires_grad, device, dtype):
    if isinstance(dtype, str):
        from ..api.dtypes import DTYPES
        dtype = DTYPES[dtype]
    return cls(requires_grad, device, dtype)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (``torch.nn.UninitializedParameter``).

    Lazy modules (:class:`polyten.nn.LazyLinear`, ...) hold these until their first forward
    infers the shapes from the input; :meth:`materialize` then turns each into a regular
    :class:`Parameter` (the same object).  Until then only ``.to()`` (device, dtype),
    ``requires_grad`` and ``materialize`` are meaningful; ``shape`` raises.

    Parameters
    ----------
    requires_grad : bool, default True
    device, dtype : optional
        Where and in what dtype the parameter will be materialised (defaults: the default
        device and dtype).
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return _uninitialized(cls, requires_grad, device, dtype)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (``torch.nn.UninitializedBuffer``); lazy modules
    materialise it into a plain tensor on their first forward.

    Parameters
    ----------
    requires_grad : bool, default False
    device, dtype : optional
        Where and in what dtype the buffer will be materialised.
    """

    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None):
        return _uninitialized(cls, requires_grad, device, dtype)

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        pass


def is_lazy(obj) -> bool:
    """Whether ``obj`` is an :class:`UninitializedParameter` or :class:`UninitializedBuffer`
    (its shape is inferred later by a lazy module)."""
    return isinstance(obj, UninitializedTensorMixin)
