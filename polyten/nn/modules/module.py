"""``Module``: the base class of layers and models (``torch.nn.Module`` semantics).

Parameters, buffers and submodules are registered by attribute assignment; everything that
walks them (``parameters()``, ``state_dict()``, ``to()``...) is written here once and works on
every backend because it only moves tensors through the public API.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Dict, Iterator, Optional, Set, Tuple

from ...api.tensor import Tensor
from ...dispatch.errors import fmt_shape
from ..parameter import Buffer, Parameter, is_lazy

__all__ = ["Module", "RemovableHandle"]

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
_hook_ids = itertools.count()


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

    forward: Callable[..., Any]

    def forward(self, *args, **kwargs):  # noqa: F811
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" method")

    # ----------------------------------------------------------------------- calling -----
    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
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
        out = self.forward(*args, **kwargs)
        for hid, hook in list(self._forward_hooks.items()):
            if hid in self._forward_hooks_with_kwargs:
                res = hook(self, args, kwargs, out)
            else:
                res = hook(self, args, out)
            if res is not None:
                out = res
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
    def state_dict(self, *args, destination=None, prefix: str = "",
                   keep_vars: bool = False) -> Dict[str, Tensor]:
        """An ordered dict of every parameter and persistent buffer by dotted name (detached
        tensors sharing memory with the module, as PyTorch)."""
        if args:
            raise TypeError("state_dict(): pass destination/prefix/keep_vars by keyword")
        if destination is None:
            destination = OrderedDict()
        # uninitialised (lazy) entries are kept as they are, as PyTorch
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars or is_lazy(p) else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars or is_lazy(b) else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=f"{prefix}{name}.",
                             keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` (names as ``state_dict()`` gives).

        With ``strict=True`` (default) missing and unexpected keys raise one error listing
        them all; a shape mismatch always raises, naming the key and both shapes.  Values from
        another backend or dtype are converted.  Returns ``(missing_keys, unexpected_keys)``.
        """
        from ...autograd.grad_mode import no_grad
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict: expected a dict of tensors, got "
                            f"{type(state_dict).__name__}")
        for prefix, mod in self.named_modules():
            hook = getattr(mod, "_lazy_load_hook", None)  # lazy modules take the shapes
            if hook is not None:
                hook(state_dict, prefix + "." if prefix else "")
        own = self.state_dict(keep_vars=True)
        # keys a module may do without (BatchNorm's num_batches_tracked, which PyTorch's old
        # checkpoints lack): absent, they keep their present value, as PyTorch
        optional = {prefix + ("." if prefix else "") + name
                    for prefix, mod in self.named_modules()
                    for name in getattr(mod, "_optional_state", ())}
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                errors.append(f"for {key!r}: expected a tensor, got {type(value).__name__}")
                continue
            if is_lazy(value) or is_lazy(target):
                if not is_lazy(target):
                    errors.append(f"for {key}: the checkpoint holds an uninitialized "
                                  f"parameter, the current model a {fmt_shape(target.shape)} "
                                  f"one; run a forward through the lazy source module first")
                continue
            if tuple(value.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{fmt_shape(value.shape)} from checkpoint, the shape in current "
                              f"model is {fmt_shape(target.shape)}")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for key, target in own.items():
                if key not in state_dict:
                    continue
                value = state_dict[key]
                if is_lazy(value) or is_lazy(target):  # nothing to copy (as PyTorch)
                    continue
                if assign:
                    mod_path, _, name = key.rpartition(".")
                    mod = self.get_submodule(mod_path)
                    if name in mod._parameters:
                        mod._parameters[name] = Parameter(
                            value.detach(), requires_grad=target.requires_grad)
                    else:
                        mod._buffers[name] = value.detach()
                else:
                    target.copy_(value)
        return _IncompatibleKeys(missing, unexpected)

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
