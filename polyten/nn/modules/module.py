"""``Module``: the base class of layers and models (``torch.nn.Module`` semantics).

Parameters, buffers and submodules are registered by attribute assignment; everything that
walks them (``parameters()``, ``state_dict()``, ``to()``...) is written here once and works on
every backend because it only moves tensors through the public API.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Dict, Iterator, Optional, Set, Tuple

from ...api.tensor import Tensor
from ...dispatch.errors import fmt_shape
from ..parameter import Buffer, Parameter, is_lazy

__all__ = ["Module", "RemovableHandle"]

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
_hook_ids = itertools.count()
_EXTRA_STATE = "_extra_state"  # the state-dict key of get_extra_state()'s value

# the per-module hook stores (empty OrderedDicts made in __init__ and by __setstate__ for
# modules pickled before they existed)
_HOOK_STORES = ("_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
                "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                "_load_state_dict_post_hooks")


class RemovableHandle:
    """Returned by ``register_*_hook``: ``handle.remove()`` unregisters the hook."""

    __slots__ = ("_dict", "id")

    def __init__(self, hooks: dict):
        self._dict = hooks
        self.id = next(_hook_ids)

    def remove(self) -> None:
        self._dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(text: str, n: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of all neural-network modules.

    Subclasses call ``super().__init__()`` first, assign parameters / submodules / buffers as
    attributes, and define ``forward``.  Calling the module runs forward pre-hooks,
    ``forward`` and forward hooks.
    """

    training: bool

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; "
                            f"Module.__init__ takes none")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", OrderedDict())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", set())
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", set())
        for store in _HOOK_STORES:
            setattr_(self, store, OrderedDict())
        # None: no backward hook yet; True: full backward hooks; False: the deprecated
        # register_backward_hook's (a module takes one kind only, as PyTorch)
        setattr_(self, "_is_full_backward_hook", None)

    forward: Callable[..., Any]

    def forward(self, *args, **kwargs):  # noqa: F811
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" method")

    # ----------------------------------------------------------------------- calling -----
    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        for hid, hook in list(self._forward_pre_hooks.items()):
            if hid in self._forward_pre_hooks_with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        full = self._backward_hooks if self._is_full_backward_hook else None
        bw_hook = None
        if full or self._backward_pre_hooks:
            from ._backward_hooks import BackwardHook
            bw_hook = BackwardHook(self, list((full or {}).values()),
                                   list(self._backward_pre_hooks.values()))
            args = bw_hook.setup_input_hook(args)
        out = self.forward(*args, **kwargs)
        for hid, hook in list(self._forward_hooks.items()):
            if hid in self._forward_hooks_with_kwargs:
                res = hook(self, args, kwargs, out)
            else:
                res = hook(self, args, out)
            if res is not None:
                out = res
        if bw_hook is not None:
            if not isinstance(out, (Tensor, tuple)):
                warnings.warn(f"For backward hooks to be called, module output should be a "
                              f"Tensor or a tuple of Tensors but received {type(out)}",
                              stacklevel=2)
            out = bw_hook.setup_output_hook(out)
        if self._backward_hooks and self._is_full_backward_hook is False:
            self._setup_non_full_backward_hooks(args, out)
        return out

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` (or ``(module, args, kwargs)``) before ``forward``; it may
        return replacement args."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` after ``forward``; it may return a replacement output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Register ``hook(module, grad_output) -> tuple or None``, called each time the
        gradients w.r.t. the module's outputs have arrived, before those w.r.t. its inputs are
        computed.

        Parameters
        ----------
        hook : callable
            Gets ``grad_output``, a tuple with one entry per output of ``forward`` (``None``
            for non-tensor outputs and for outputs that got no gradient).  A returned tuple
            (of the same length) replaces ``grad_output`` for the rest of the backward.
        prepend : bool
            Run ``hook`` before the pre-hooks already registered (default: after them).

        Returns
        -------
        RemovableHandle
            ``handle.remove()`` unregisters the hook.

        Notes
        -----
        As in PyTorch, ``forward`` then receives aliases of its tensor arguments and the caller
        aliases of its tensor results (identity autograd nodes named
        ``BackwardHookFunctionBackward``); modifying them in place is not supported.
        """
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Register ``hook(module, grad_input, grad_output) -> tuple or None``, called each
        time the gradients w.r.t. the module's inputs have been computed.

        Parameters
        ----------
        hook : callable
            ``grad_input`` has one entry per positional argument of the call (``None`` for
            non-tensors; keyword arguments are not included); ``grad_output`` one per output.
            A returned tuple (of the same length) replaces ``grad_input``.  When no input
            requires grad, the hook runs once the output gradients are known, with every
            ``grad_input`` entry ``None`` (PyTorch's rule, with its warning), and must then
            return ``None``.  When no output requires grad, it does not run.
        prepend : bool
            Run ``hook`` before the hooks already registered (default: after them).

        Returns
        -------
        RemovableHandle
            ``handle.remove()`` unregisters the hook.

        Raises
        ------
        RuntimeError
            If the module already has a hook from the deprecated ``register_backward_hook``.
        """
        if self._is_full_backward_hook is False:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks "
                               "on a single Module. Please use only one of them.")
        self._is_full_backward_hook = True
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_backward_hook(self, hook) -> RemovableHandle:
        """Deprecated (as in PyTorch): use :meth:`register_full_backward_hook`.

        ``hook(module, grad_input, grad_output)`` is attached to the autograd node that made
        the module's first tensor output, so ``grad_input`` holds the gradients w.r.t. *that
        node's* inputs, which are the module's inputs only for a module made of one op; a
        ``FutureWarning`` says so, as PyTorch's, when the forward does not fit that pattern.
        Unlike PyTorch, a value returned by the hook cannot replace the gradients here: it
        raises a ``RuntimeError`` pointing to :meth:`register_full_backward_hook`.
        """
        if self._is_full_backward_hook is True:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks "
                               "on a single Module. Please use only one of them.")
        self._is_full_backward_hook = False
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def _setup_non_full_backward_hooks(self, args, result) -> None:
        var = result
        while not isinstance(var, Tensor):
            if isinstance(var, dict):
                var = next(v for v in var.values() if isinstance(v, Tensor))
            else:
                var = var[0]
        node = var.grad_fn
        if node is None:
            return
        module = self
        for hook in list(self._backward_hooks.values()):
            def wrapped(grad_input, grad_output, hook=hook):
                if hook(module, grad_input, grad_output) is not None:
                    raise RuntimeError(
                        f"backward hook of {type(module).__name__} (register_backward_hook) "
                        f"returned replacement gradients, which polyten supports only for "
                        f"register_full_backward_hook; register it that way instead")
            node.register_hook(wrapped)
        self._warn_non_full_backward_hook(args, result, node)

    @staticmethod
    def _warn_non_full_backward_hook(inputs, result, node) -> None:
        def warn(msg):
            warnings.warn(msg, FutureWarning, stacklevel=3)
        if isinstance(result, Tensor):
            result = (result,)
        elif not (isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result)):
            return warn("Using non-full backward hooks on a Module that does not return a "
                        "single Tensor or a tuple of Tensors is deprecated and will be removed "
                        "in future versions. This hook will be missing some of the "
                        "grad_output. Please use register_full_backward_hook to get the "
                        "documented behavior.")
        if isinstance(inputs, Tensor):
            inputs = (inputs,)
        elif not (isinstance(inputs, tuple) and all(isinstance(i, Tensor) for i in inputs)):
            return warn("Using non-full backward hooks on a Module that does not take as input "
                        "a single Tensor or a tuple of Tensors is deprecated and will be "
                        "removed in future versions. This hook will be missing some of the "
                        "grad_input. Please use register_full_backward_hook to get the "
                        "documented behavior.")
        out_nodes = {r.grad_fn for r in result if r.grad_fn is not None}
        if not out_nodes or (len(out_nodes) == 1 and node not in out_nodes):
            warn("Using a non-full backward hook when outputs are nested in python data "
                 "structure is deprecated and will be removed in future versions. This hook "
                 "will be missing some grad_output.")
        elif len(out_nodes) > 1:
            warn("Using a non-full backward hook when outputs are generated by different "
                 "autograd Nodes is deprecated and will be removed in future versions. This "
                 "hook will be missing some grad_output. Please use "
                 "register_full_backward_hook to get the documented behavior.")
        else:
            in_nodes = {i.grad_fn for i in inputs if i.grad_fn is not None}
            if in_nodes != {m for m, _ in node.next_functions}:
                warn("Using a non-full backward hook when the forward contains multiple "
                     "autograd Nodes is deprecated and will be removed in future versions. "
                     "This hook will be missing some grad_input. Please use "
                     "register_full_backward_hook to get the documented behavior.")

    # ------------------------------------------------------------------ registration -----
    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(polyten.nn.Parameter or None expected)")
            self.register_parameter(name, value)
            return
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers)
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                f"(polyten.nn.Module or None expected)")
            modules[name] = value
            return
        if isinstance(value, Buffer):
            self.register_buffer(name, value.data, persistent=value.persistent)
            return
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                f"(polyten.Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *dicts) -> None:
        for d in dicts:
            if name in d:
                if isinstance(d, dict):
                    del d[name]

    def __getattr__(self, name: str):
        # reached for every parameter, buffer and submodule read (self.weight in forward):
        # the three stores spelled out, parameters first
        d = self.__dict__
        s = d.get("_parameters")
        if s is not None and name in s:
            return s[name]
        s = d.get("_buffers")
        if s is not None and name in s:
            return s[name]
        s = d.get("_modules")
        if s is not None and name in s:
            return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, kind: str, name) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain \".\", got {name!r}")
        if name in self.__dict__ and name not in getattr(self, f"_{kind}s", {}):
            raise KeyError(f"attribute {name!r} already exists")

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Add a parameter (or ``None``) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} object to parameter "
                            f"{name!r} (polyten.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"cannot assign non-leaf tensor to parameter {name!r}; use a leaf "
                             f"(e.g. Parameter(t.detach()))")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Optional[Tensor],
                        persistent: bool = True) -> None:
        """Add a buffer: state that is not a parameter (e.g. BatchNorm's running mean).
        ``persistent=False`` keeps it out of ``state_dict()``."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} object to buffer {name!r} "
                            f"(polyten.Tensor or None required)")
        self._remove_from(name, self._parameters, self._modules)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Add a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path ``target`` (``""`` is this module)."""
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {item!r} "
                                     f"(looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r}")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer {name!r}")
        return mod._buffers[name]

    # ----------------------------------------------------------------------- walking -----
    def named_modules(self, memo: Optional[Set] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, "Module"]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            yield from mod.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                         remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, get, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in get(mod):
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[Tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a parameter shared by two modules appears once."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                       remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        # the order and de-duplication of named_parameters(), without building names: this
        # runs every training step (zero_grad, optimizers built per step, clip_grad_norm_)
        seen = set()
        for m in (self._module_list() if recurse else (self,)):
            for p in m._parameters.values():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def _module_list(self) -> list:
        """This module and its descendants in named_modules()'s order (pre-order, each once)."""
        out, seen, stack = [], set(), [self]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            out.append(m)
            kids = [c for c in m._modules.values() if c is not None]
            if kids:
                kids.reverse()
                stack.extend(kids)
        return out

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, Tensor]]:
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -------------------------------------------------------------------- modes etc. -----
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``True``) or evaluation mode on this module and its children."""
        if not isinstance(mode, bool):
            raise ValueError("train(): mode is expected to be a bool")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (``train(False)``): dropout off, batch norm uses running stats."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to ``None`` by default, as PyTorch)."""
        from ...autograd.grad_mode import no_grad
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                with no_grad():
                    g = p.grad.detach()
                    g.zero_()
                    p.grad = g

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every submodule (children first) and on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Replace every parameter's / buffer's data by ``fn(tensor)`` in place: Parameter
        objects keep their identity (optimizers stay valid), as in PyTorch."""
        from ...autograd.grad_mode import no_grad
        for m in self.children():
            m._apply(fn)
        with no_grad():
            for name, p in self._parameters.items():
                if p is None:
                    continue
                new = fn(p)
                if new is not p:
                    p._data, p._device, p._dtype = new._data, new._device, new._dtype
                    p._version = None
                if p.grad is not None:
                    g = fn(p.grad)
                    p.grad = g
            for name, b in self._buffers.items():
                if is_lazy(b):  # stays uninitialised, with fn's device / dtype
                    new = fn(b)
                    b._data, b._device, b._dtype = new._data, new._device, new._dtype
                elif b is not None:
                    self._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast parameters and buffers: ``to("cuda")``, ``to(polyten.float64)``,
        ``to(device, dtype)``.  Only floating parameters change dtype (as PyTorch)."""
        from ...api.interop import _parse_to_args
        device, dtype, _, _ = _parse_to_args(list(args), dict(kwargs))
        if dtype is not None:
            from ...api.dtypes import to_dtype
            dtype = to_dtype(dtype)
            if not (dtype.is_floating_point or dtype.is_complex):
                raise TypeError(f"Module.to only accepts floating point or complex dtypes, but "
                                f"got desired dtype={dtype!r}")

        def convert(t):
            d = dtype if (dtype is not None and (t._dtype.is_floating_point or
                                                 t._dtype.is_complex)) else None
            if device is None and d is None:
                return t
            return t.to(*(a for a in (device, d) if a is not None))
        return self._apply(convert)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self) -> "Module":
        from ...api import dtypes
        return self.to(dtypes.float32)

    def double(self) -> "Module":
        from ...api import dtypes
        return self.to(dtypes.float64)

    def half(self) -> "Module":
        from ...api import dtypes
        return self.to(dtypes.float16)

    def bfloat16(self) -> "Module":
        from ...api import dtypes
        return self.to(dtypes.bfloat16)

    def type(self, dst_type) -> "Module":
        return self.to(dst_type)

    # -------------------------------------------------------------------- state dict -----
    _version: int = 1  # the state-dict format version, in each module's local metadata

    def register_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """Register ``hook(module, prefix, keep_vars) -> None``, called by :meth:`state_dict`
        on this module before it saves anything (e.g. to bring state up to date)."""
        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook) -> RemovableHandle:
        """Register ``hook(module, state_dict, prefix, local_metadata) -> None``, called by
        :meth:`state_dict` after this module and its children saved their entries (under
        ``prefix``); it may change ``state_dict`` in place and must return ``None``."""
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_load_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """Register ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs) -> None``, called by :meth:`load_state_dict` before this
        module reads its entries.

        ``state_dict`` holds the entries under ``prefix`` (this module's and its
        descendants'); changes to it (e.g. renaming the keys of an old checkpoint) are what
        this module and its descendants then load.  ``missing_keys`` / ``unexpected_keys`` /
        ``error_msgs`` are the lists :meth:`load_state_dict` reports from.
        """
        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_load_state_dict_post_hook(self, hook) -> RemovableHandle:
        """Register ``hook(module, incompatible_keys) -> None``, called by
        :meth:`load_state_dict` after this module and its descendants were loaded.

        ``incompatible_keys`` has the lists ``missing_keys`` and ``unexpected_keys``; the hook
        may change them in place, and ``strict=True`` raises on what they hold afterwards
        (clearing both avoids the error).  The hook must return ``None``.
        """
        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    def get_extra_state(self) -> Any:
        """Extra (non-tensor) state to save: a module that overrides this gets an
        ``"_extra_state"`` entry in :meth:`state_dict`, which :meth:`load_state_dict` hands to
        :meth:`set_extra_state`.  Override both; the base class has none."""
        raise RuntimeError(f"{type(self).__name__}.get_extra_state: the Module base class has "
                           f"no extra state; override get_extra_state and set_extra_state")

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` returned (called by :meth:`load_state_dict`
        with the ``"_extra_state"`` entry).  Override together with ``get_extra_state``."""
        raise RuntimeError(f"{type(self).__name__}.set_extra_state: the Module base class has "
                           f"no extra state; override get_extra_state and set_extra_state")

    def _has_extra_state(self, method: str) -> bool:
        return getattr(type(self), method) is not getattr(Module, method)

    def state_dict(self, *args, destination=None, prefix: str = "",
                   keep_vars: bool = False) -> Dict[str, Tensor]:
        """An ordered dict of every parameter and persistent buffer by dotted name (detached
        tensors sharing memory with the module, as PyTorch), plus ``"<prefix>_extra_state"``
        for modules that override :meth:`get_extra_state`.  State-dict pre- and post-hooks
        run on each module before and after it saves (see ``register_state_dict_*_hook``)."""
        if args:
            raise TypeError("state_dict(): pass destination/prefix/keep_vars by keyword")
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self, prefix, keep_vars)
        # uninitialised (lazy) entries are kept as they are, as PyTorch
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars or is_lazy(p) else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars or is_lazy(b) else b.detach()
        if self._has_extra_state("get_extra_state"):
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=f"{prefix}{name}.",
                             keep_vars=keep_vars)
        for hook in list(self._state_dict_hooks.values()):
            if hook(self, destination, prefix, local_metadata) is not None:
                raise RuntimeError(f"state_dict post-hook {getattr(hook, '__name__', hook)!r} "
                                   f"of {type(self).__name__} must return None; change the "
                                   f"state_dict it receives in place")
        return destination

    def _own_state(self) -> Dict[str, Tensor]:
        """This module's parameters and persistent buffers (not its children's)."""
        own = OrderedDict((n, p) for n, p in self._parameters.items() if p is not None)
        for n, b in self._buffers.items():
            if b is not None and n not in self._non_persistent_buffers_set:
                own[n] = b
        return own

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` (names as ``state_dict()`` gives).

        With ``strict=True`` (default) missing and unexpected keys raise one error listing
        them all; a shape mismatch always raises, naming the key and both shapes.  Values from
        another backend or dtype are converted.  Load-state-dict pre-hooks run on each module
        (parents first) before it reads its entries; post-hooks after it and its children
        loaded (children first), and may edit the missing / unexpected key lists that
        ``strict`` then checks.  An ``"_extra_state"`` entry goes to the module's
        :meth:`set_extra_state`.  Returns ``(missing_keys, unexpected_keys)``.
        """
        from ...autograd.grad_mode import no_grad
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict: expected a dict of tensors, got "
                            f"{type(state_dict).__name__}")
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        for prefix, mod in self.named_modules():
            hook = getattr(mod, "_lazy_load_hook", None)  # lazy modules take the shapes
            if hook is not None:
                hook(state_dict, prefix + "." if prefix else "")
        missing, unexpected, errors = [], [], []
        copies = []  # (module, name, target, value), not written yet
        extras = []  # (module, value), not handed to set_extra_state yet
        keys = _IncompatibleKeys(missing, unexpected)

        def flush():
            with no_grad():
                for mod, name, target, value in copies:
                    if assign:
                        if name in mod._parameters:
                            mod._parameters[name] = Parameter(
                                value.detach(), requires_grad=target.requires_grad)
                        else:
                            mod._buffers[name] = value.detach()
                    else:
                        target.copy_(value)
            for mod, value in extras:
                mod.set_extra_state(value)
            copies.clear()
            extras.clear()

        def visit(mod, local, prefix):
            meta = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                meta["assign_to_params_buffers"] = True
            for hook in list(mod._load_state_dict_pre_hooks.values()):
                # strict=True, as PyTorch passes (the key lists are always collected)
                hook(mod, local, prefix, meta, True, missing, unexpected, errors)
            own = mod._own_state()
            optional = getattr(mod, "_optional_state", ())
            for name, target in own.items():
                key = prefix + name
                if key not in local:
                    # keys a module may do without (BatchNorm's num_batches_tracked, which
                    # PyTorch's old checkpoints lack) keep their present value, as PyTorch
                    if name not in optional:
                        missing.append(key)
                    continue
                value = local[key]
                if not isinstance(value, Tensor):
                    errors.append(f"for {key!r}: expected a tensor, got {type(value).__name__}")
                    continue
                if is_lazy(value) or is_lazy(target):
                    if not is_lazy(target):
                        errors.append(f"for {key}: the checkpoint holds an uninitialized "
                                      f"parameter, the current model a "
                                      f"{fmt_shape(target.shape)} one; run a forward through "
                                      f"the lazy source module first")
                    continue  # nothing to copy (as PyTorch)
                if tuple(value.shape) != tuple(target.shape):
                    errors.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{fmt_shape(value.shape)} from checkpoint, the shape in "
                                  f"current model is {fmt_shape(target.shape)}")
                    continue
                copies.append((mod, name, target, value))
            extra_key = prefix + _EXTRA_STATE
            if mod._has_extra_state("set_extra_state"):
                if extra_key in local:
                    extras.append((mod, local[extra_key]))
                else:
                    missing.append(extra_key)
            elif extra_key in local:
                unexpected.append(extra_key)
            for key in local:
                if not key.startswith(prefix) or key == extra_key:
                    continue
                head, dot, _ = key[len(prefix):].partition(".")
                if (head not in mod._modules) if dot else (head not in own):
                    unexpected.append(key)
            for name, child in mod._modules.items():
                if child is not None:
                    cp = f"{prefix}{name}."
                    visit(child, {k: v for k, v in local.items() if k.startswith(cp)}, cp)
            if mod._load_state_dict_post_hooks:
                # the hooks see this module and its descendants loaded (as PyTorch, which
                # loads module by module); without post-hooks nothing is written before the
                # whole state dict has been checked
                if not errors:
                    flush()
                for hook in list(mod._load_state_dict_post_hooks.values()):
                    if hook(mod, keys) is not None:
                        raise AssertionError(
                            "Hooks registered with ``register_load_state_dict_post_hook`` are "
                            "not expected to return new values, if incompatible_keys need to "
                            "be modified, it should be done inplace.")

        visit(self, state_dict, "")
        if errors or (strict and (missing or unexpected)):
            self._load_error(strict, missing, unexpected, errors)
        flush()
        return keys

    def _load_error(self, strict, missing, unexpected, errors):
        errors = list(errors)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ".")
        raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                           + "\n\t".join(errors))

    # --------------------------------------------------------------------------- repr ----
    def extra_repr(self) -> str:
        """One line of this module's settings, shown in ``repr`` (override in subclasses)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for key, mod in self._modules.items():
            lines.append(f"({key}): " + _addindent(repr(mod), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self):
        keys = list(object.__dir__(self)) + list(self._parameters) + list(self._modules) + \
            list(self._buffers)
        return sorted(k for k in set(keys) if not k[0].isdigit())

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)
        for store in _HOOK_STORES:  # modules pickled before these existed
            if store not in self.__dict__:
                object.__setattr__(self, store, OrderedDict())
        self.__dict__.setdefault("_is_full_backward_hook", None)
