"""Parametrizations of module tensors (``torch.nn.utils.parametrize``).

``register_parametrization(module, "weight", P)`` moves ``module.weight`` into
``module.parametrizations.weight`` (a :class:`ParametrizationList` holding the unconstrained
tensor as ``original``, or ``original0``, ``original1``, ... when ``P.right_inverse`` returns
several) and makes ``module.weight`` compute ``P(original)`` on every read.

How it fits polyten's :class:`~polyten.nn.Module`: a parameter is read through
``Module.__getattr__``, which Python calls only when normal lookup fails.  As PyTorch does, the
module's class is swapped for a one-off subclass (``ParametrizedLinear``, ...) that carries a
``property`` per parametrized name: a data descriptor on the class wins over ``__getattr__``,
so the read runs the parametrization while every other attribute keeps ``__getattr__``'s
fast path, and assigning a tensor to the name reaches the property's setter (the
parametrizations' ``right_inverse``) because ``Module.__setattr__`` hands plain tensors to
``object.__setattr__``.  The originals are ordinary parameters of ordinary submodules, so
``parameters()``, ``state_dict()`` (``parametrizations.weight.original``), ``to()`` and the
optimizers need nothing special.
"""

from __future__ import annotations

import collections.abc
import copy
import copyreg
from contextlib import contextmanager

from ...api._core import Tensor, describe, share_version
from ...autograd.grad_mode import no_grad
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations",
           "transfer_parametrizations_and_params"]

_cache_enabled = 0
_cache: dict = {}


@contextmanager
def cached():
    """Compute each parametrized tensor at most once inside the block.

    The first read of ``module.weight`` computes it and later reads return the same tensor
    until the outermost ``cached()`` block exits.  Useful when a parametrized tensor is read
    several times in one forward (a recurrent weight read every step, shared weights).
    """
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _register_parameter_or_buffer(module, name, value) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """``dest.set_(src)``: ``dest`` keeps its identity (so optimizers holding it stay valid)
    and takes ``src``'s memory, shape, device and dtype."""
    if dest is src:
        return
    v = dest._version
    if v is not None:
        v[0] += 1  # graphs that saved dest's old values must notice it changed
    dest._data, dest._device, dest._dtype = src._data, src._device, src._dtype
    share_version(src, dest)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and its unconstrained original(s).

    ``module.parametrizations[name]`` after :func:`register_parametrization`; not meant to be
    built by hand.  Holds the original as ``original`` (a parameter or buffer, like the tensor
    it replaced), or ``original0``, ``original1``, ... when the first parametrization's
    ``right_inverse`` returns several tensors.  Calling it runs the parametrizations in
    registration order.

    Parameters
    ----------
    modules : sequence of Module
        The parametrizations (at least one).
    original : Tensor
        The parameter or buffer being parametrized.
    unsafe : bool
        Skip the checks that the parametrization keeps the tensor's shape and dtype.
    """

    def __init__(self, modules, original, unsafe: bool = False) -> None:
        modules = list(modules)
        if not modules:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape = tuple(original.shape)
        original_dtype = original.dtype
        with no_grad():
            new = original
            for module in reversed(modules):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not isinstance(new, (Tensor, collections.abc.Sequence)):
            raise ValueError(f"register_parametrization: 'right_inverse' must return a tensor "
                             f"or a sequence of tensors (list, tuple...), got "
                             f"{type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError(f"register_parametrization: when `right_inverse` outputs one "
                                 f"tensor, it may not change the dtype (original.dtype: "
                                 f"{original.dtype.name}, right_inverse(original).dtype: "
                                 f"{new.dtype.name})")
            if original.device != new.device:
                raise ValueError(f"register_parametrization: when `right_inverse` outputs one "
                                 f"tensor, it may not change the device (original.device: "
                                 f"{original.device}, right_inverse(original).device: "
                                 f"{new.device})")
            with no_grad():
                _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, orig_i in enumerate(new):
                if not isinstance(orig_i, Tensor):
                    raise ValueError(f"register_parametrization: 'right_inverse' must return a "
                                     f"tensor or a sequence of tensors, got element {i} of "
                                     f"type {type(orig_i).__name__}")
                # a parameter's pieces become parameters (to add to an optimizer made before
                # registering, as in PyTorch); a buffer's pieces stay buffers
                if isinstance(original, Parameter):
                    orig_i = Parameter(orig_i.detach(), original.requires_grad)
                else:
                    orig_i = orig_i.detach()
                    if original.requires_grad:
                        orig_i.requires_grad_(True)
                _register_parameter_or_buffer(self, f"original{i}", orig_i)
        if not self.unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"register_parametrization: a parametrization must return a "
                                 f"tensor, got {type(z).__name__}")
            if z.dtype != original_dtype:
                raise ValueError(f"register_parametrization: registering a parametrization may "
                                 f"not change the dtype of the tensor (unparametrized: "
                                 f"{original_dtype.name}, parametrized: {z.dtype.name}); pass "
                                 f"unsafe=True if that is intended")
            if tuple(z.shape) != original_shape:
                raise ValueError(f"register_parametrization: registering a parametrization may "
                                 f"not change the shape of the tensor (unparametrized: "
                                 f"{original_shape}, parametrized: {tuple(z.shape)}); pass "
                                 f"unsafe=True if that is intended")

    def right_inverse(self, value) -> None:
        """Set the original(s) so that the parametrized tensor becomes ``value``: the
        parametrizations' ``right_inverse`` in reverse registration order (each must have
        one), stored into ``original`` (or ``original0``, ...) in place."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       f"implement right_inverse, so the parametrized tensor "
                                       f"cannot be assigned; set the original(s) in "
                                       f"module.parametrizations instead")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor, got "
                                     f"{type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype "
                                     f"{value.dtype.name} while `original` has dtype "
                                     f"{self.original.dtype.name}")
                _maybe_set(self.original, value)
            else:
                if not isinstance(value, collections.abc.Sequence):
                    raise ValueError(f"'right_inverse' must return a sequence of tensors, got "
                                     f"{type(value).__name__}")
                if len(value) != self.ntensors:
                    raise ValueError(f"'right_inverse' must return a sequence of tensors of "
                                     f"length {self.ntensors}, got one of length {len(value)}")
                for i, t in enumerate(value):
                    orig_i = getattr(self, f"original{i}")
                    if not isinstance(t, Tensor):
                        raise ValueError(f"'right_inverse' must return a sequence of tensors, "
                                         f"got element {i} of type {type(t).__name__}")
                    if orig_i.dtype != t.dtype:
                        raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype "
                                         f"{t.dtype.name} while `original{i}` has dtype "
                                         f"{orig_i.dtype.name}")
                    _maybe_set(orig_i, t)

    def forward(self):
        mods = iter(self._modules.values())
        first = next(mods)
        if self.is_tensor:
            x = first(self.original)
        else:
            x = first(*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods:
            x = m(x)
        return x


def _inject_new_class(module: Module) -> None:
    """Give ``module`` a class of its own (a subclass of its class) to hold the properties."""
    cls = module.__class__

    def default_deepcopy(self, memo):
        obj = memo.get(id(self))
        if obj is not None:
            return obj
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
        for slot in copyreg._slotnames(self.__class__):
            if hasattr(self, slot):
                setattr(replica, slot, copy.deepcopy(getattr(self, slot), memo))
        return replica

    def getstate(self):
        raise RuntimeError("Serialization of parametrized modules is only supported through "
                           "state_dict(): save module.state_dict() and load it into a module "
                           "parametrized the same way")

    def setattr_(self, name, value):
        # Module.__setattr__ would register a Parameter under the name, where the property
        # hides it for good; PyTorch refuses it the same way
        if isinstance(value, Parameter) and name in self.__dict__.get("_modules", {}).get(
                "parametrizations", ()):
            raise KeyError(f"attribute '{name}' already exists: it is parametrized. Assign a "
                           f"plain tensor to set it through right_inverse, or call "
                           f"remove_parametrizations(module, {name!r}) first")
        cls.__setattr__(self, name, value)

    dct = {"__getstate__": getstate, "__setattr__": setattr_}
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), dct)


def _inject_property(module: Module, tensor_name: str) -> None:
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if _cache_enabled:
            key = (id(self), tensor_name)
            t = _cache.get(key)
            if t is None:
                t = _cache[key] = parametrization()
            return t
        return parametrization()

    def set_original(self, value) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def _names(module, store: str) -> str:
    names = [n for n, v in getattr(module, store).items() if v is not None]
    return ", ".join(names) if names else "none"


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Parametrize ``module.<tensor_name>`` by ``parametrization``.

    Afterwards reading ``module.<tensor_name>`` returns ``parametrization(original)``, where
    ``original`` (``module.parametrizations.<tensor_name>.original``) is the parameter or
    buffer that was there, still the same object (so an optimizer built before keeps
    working) and still what the optimizer updates; gradients flow through the
    parametrization to it.  Registering again on the same name chains parametrizations.

    Parameters
    ----------
    module : Module
    tensor_name : str
        A parameter, a buffer, or an already parametrized name of ``module``.
    parametrization : Module
        Its ``forward`` maps the original(s) to the tensor.  An optional
        ``right_inverse(X)`` maps a value to original(s) (a tensor, or a sequence of tensors
        for a parametrization of several inputs, stored as ``original0``, ``original1``, ...
        -- these are new parameters, to be added to an existing optimizer); it initialises
        the original(s) when registering and lets ``module.<tensor_name> = X`` assign.
    unsafe : bool
        Skip the checks that the parametrization keeps the tensor's shape and dtype.

    Returns
    -------
    Module
        ``module``, whose class is now ``Parametrized<Class>`` (pickling it is refused;
        ``state_dict()`` carries its state, under ``parametrizations.<name>.original``).

    Raises
    ------
    ValueError
        ``tensor_name`` is neither a parameter, a buffer nor parametrized, or (without
        ``unsafe``) the parametrization changes the tensor's shape or dtype.
    """
    if not isinstance(module, Module):
        raise TypeError(f"register_parametrization: module must be a polyten.nn.Module, got "
                        f"{describe(module)}")
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be a "
                        f"polyten.nn.Module (with a forward), got {describe(parametrization)}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor):
                raise ValueError(f"register_parametrization: a parametrization must return a "
                                 f"tensor, got {type(x).__name__}")
            if x.dtype != y.dtype or tuple(x.shape) != tuple(y.shape):
                raise ValueError(
                    f"register_parametrization: registering a parametrization may not change "
                    f"the dtype or shape of the tensor, unless the `unsafe` flag is enabled "
                    f"(module.{tensor_name}: {y.dtype.name} {tuple(y.shape)}, "
                    f"parametrization(module.{tensor_name}): {x.dtype.name} "
                    f"{tuple(x.shape)})")
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(z, Tensor):
                        raise ValueError(f"register_parametrization: parametrization."
                                         f"right_inverse must return a tensor, got "
                                         f"{type(z).__name__}")
                    if z.dtype != y.dtype or tuple(z.shape) != tuple(y.shape):
                        raise ValueError(
                            f"register_parametrization: the tensor returned by "
                            f"parametrization.right_inverse must have the dtype and shape of "
                            f"module.{tensor_name} ({y.dtype.name} {tuple(y.shape)}), unless "
                            f"the `unsafe` flag is enabled; got {z.dtype.name} "
                            f"{tuple(z.shape)}")
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ValueError(f"register_parametrization: {type(module).__name__}."
                             f"{tensor_name} is None; there is no tensor to parametrize")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(
            f"register_parametrization: Module '{type(module).__name__}' does not have a "
            f"parameter, a buffer, or a parametrized element with name {tensor_name!r} "
            f"(parameters: {_names(module, '_parameters')}; buffers: "
            f"{_names(module, '_buffers')}); parametrize a submodule's tensor on the submodule, "
            f"e.g. register_parametrization(model.fc, 'weight', ...)")
    return module


def is_parametrized(module: Module, tensor_name=None) -> bool:
    """Whether ``module`` has a parametrization on ``tensor_name`` (on any tensor when
    ``tensor_name`` is None)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Remove the parametrizations of ``module.<tensor_name>``.

    Parameters
    ----------
    module : Module
    tensor_name : str
    leave_parametrized : bool
        ``True``: the tensor keeps its current (parametrized) value, stored into the
        original parameter object (same identity, so optimizers stay valid; for a
        parametrization of several originals a new parameter).  ``False``: it goes back to
        the unparametrized original (only for a single original).

    Returns
    -------
    Module
        ``module``, back to its own class once nothing on it is parametrized.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: Module {type(module).__name__} does not "
                         f"have a parametrization on {tensor_name!r}"
                         + (f" (parametrized: {', '.join(module.parametrizations.keys())})"
                            if is_parametrized(module) else ""))
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
                _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ValueError("remove_parametrizations: Cannot leave unparametrized "
                             "(`leave_parametrized=False`) a tensor that is parametrized in "
                             "terms of a sequence of tensors.")
        t = getattr(module, tensor_name)
        original = Parameter(t.detach(), True) if t.requires_grad else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """``module``'s class before parametrizations were registered on it."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name=None) -> Module:
    """Register ``from_module``'s parametrizations (of ``tensor_name``, or all) on
    ``to_module`` too, sharing the parametrization modules and the original tensors
    (creating the parameter on ``to_module`` first where it has none)."""
    if is_parametrized(from_module):
        names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
        for name in names:
            if not hasattr(to_module, name):
                setattr(to_module, name, Parameter(getattr(from_module, name).detach()))
            for p in from_module.parametrizations[name]:
                register_parametrization(to_module, name, p)
            src, dst = from_module.parametrizations[name], to_module.parametrizations[name]
            if src.is_tensor:
                dst.original = src.original
            else:
                for i in range(src.ntensors):
                    setattr(dst, f"original{i}", getattr(src, f"original{i}"))
    return to_module
