"""The :class:`Tensor` class: a native array of some backend, its device and its dtype.

A tensor owns no numerics.  Its methods are installed from the API modules (each module's
``TENSOR_METHODS`` table, see ``polyten/api/__init__.py``), so every method and operator goes
through the same dispatching function as its ``polyten.xxx`` counterpart.
"""

from __future__ import annotations

from .dtypes import dtype as _dtype_cls

__all__ = ["Tensor", "Size", "wrap"]


class Size(tuple):
    """The shape of a tensor: a tuple of ints (``torch.Size``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"polyten.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    """A multi-dimensional array on one device of one backend.

    Create tensors with :func:`polyten.tensor`, :func:`polyten.asarray`, :func:`polyten.zeros`
    and friends, not with the constructor.

    Attributes
    ----------
    shape : Size
    dtype : polyten.dtype
    device : polyten.device -- the backend (``device.type``) and device index.
    """

    # _version: None, or a one-element list shared by a tensor and its views, bumped by every
    # in-place write; autograd compares it with the value saved at record time.  _view (a
    # view's root and chain of view steps) and _views (a root's live views in a graph, weak
    # references) are set only when needed: see polyten/autograd/views.py
    __slots__ = ("_data", "_device", "_dtype", "_ag", "_version", "_view", "_views",
                 "__weakref__")

    # numpy must defer to our reflected operators instead of broadcasting over us
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, *args, **kwargs):
        raise TypeError("polyten.Tensor is not constructed directly; use polyten.tensor(data), "
                        "polyten.asarray(obj) or polyten.empty(shape)")

    # --- basic facts -------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        """The tensor's shape, a :class:`Size`."""
        return Size(self._data.shape)

    @property
    def dtype(self) -> _dtype_cls:
        return self._dtype

    @property
    def device(self):
        """The :class:`polyten.device` the tensor lives on, e.g. ``device(type='cpu')``."""
        return self._device

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    def dim(self) -> int:
        """Number of dimensions (``ndim``)."""
        return len(self._data.shape)

    ndimension = dim

    def size(self, dim=None):
        """The shape, or the length of dimension ``dim`` (negative counts from the end)."""
        shape = self._data.shape
        if dim is None:
            return Size(shape)
        from ._core import normalize_dim
        return shape[normalize_dim(dim, len(shape), "size")]

    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for s in self._data.shape:
            n *= s
        return n

    nelement = numel

    @property
    def size_bytes(self) -> int:
        return self.numel() * self._dtype.itemsize

    def element_size(self) -> int:
        return self._dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.numel() * self._dtype.itemsize

    def stride(self, dim=None):
        """Steps in elements between neighbours along each dimension (a tuple), or along
        ``dim``; a backend whose arrays report no strides is taken as C-contiguous."""
        shape = self._data.shape
        strides = getattr(self._data, "strides", None)
        if strides is not None:
            st = tuple(s // self._dtype.itemsize for s in strides)
        else:
            acc, out = 1, []
            for n in reversed(shape):
                out.append(acc)
                acc *= n
            st = tuple(reversed(out))
        if dim is None:
            return st
        from ._core import normalize_dim
        return st[normalize_dim(dim, len(shape), "stride")]

    @property
    def data(self):
        """The values outside the autograd graph (``torch.Tensor.data``): a tensor sharing this
        one's memory, ``requires_grad=False``.  Unlike :meth:`detach`, writes through it are
        not seen by autograd's in-place checks (the old idiom for parameter updates; prefer
        ``with polyten.no_grad():``).  ``t.data = other`` makes ``t`` hold ``other``'s values,
        dtype and device, keeping its autograd identity."""
        from ._core import wrap
        return wrap(self._data, self._device, self._dtype)

    @data.setter
    def data(self, value) -> None:
        if not isinstance(value, Tensor):
            from ._core import describe
            raise TypeError(f"data: expected a tensor to assign, got {describe(value)}")
        self._data, self._device, self._dtype = value._data, value._device, value._dtype

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self._device.type == "cpu"

    def is_floating_point(self) -> bool:
        return self._dtype.is_floating_point

    def is_complex(self) -> bool:
        return self._dtype.is_complex

    def get_device(self) -> int:
        """Device index (``-1`` for single-device backends such as cpu, as PyTorch)."""
        idx = self._device.index
        return -1 if idx is None else idx

    # autograd fields exist from the start so that later layers can rely on them
    @property
    def _version_value(self) -> int:
        v = self._version
        return 0 if v is None else v[0]

    @property
    def requires_grad(self) -> bool:
        ag = self._ag
        return ag is not None and ag.requires_grad

    @property
    def is_leaf(self) -> bool:
        ag = self._ag
        return ag is None or ag.grad_fn is None

    @property
    def grad_fn(self):
        ag = self._ag
        return None if ag is None else ag.grad_fn


_new = object.__new__


def wrap(data, device, dtype) -> Tensor:
    """Make a Tensor around a native array (no copy, no checks): the API layer's constructor."""
    t = _new(Tensor)
    t._data = data
    t._device = device
    t._dtype = dtype
    t._ag = None
    t._version = None
    t._view = None
    t._views = None
    return t
