"""``Optimizer``: parameter groups, per-parameter state, ``state_dict`` and step hooks, with
PyTorch's semantics and ``state_dict`` format.

Each optimizer keeps its state as plain dicts of tensors and Python numbers (the step count is
a Python ``int``), so ``optimizer.state_dict()`` goes through ``polyten.save`` /
``polyten.load`` unchanged.  The update arithmetic lives in :mod:`polyten.optim._functional`,
one function per algorithm over lists of tensors.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import OrderedDict, defaultdict
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from ..api._core import Tensor, describe
from ..autograd.grad_mode import enable_grad, no_grad
from ..dispatch.errors import fmt_shape

if TYPE_CHECKING:
    from ..nn.modules.module import RemovableHandle

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyper-parameter that has no default: every group must give it."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def _wrap_step(step: Callable) -> Callable:
    """Run the optimizer's step hooks around ``step`` and note that it ran (schedulers warn
    when they are stepped before the optimizer)."""
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self.__dict__.get("_in_step"):  # a subclass's step calling super().step()
            return step(self, *args, **kwargs)
        for hook in tuple(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{type(self).__name__}.step: a step pre-hook must "
                                       f"return None or a tuple (args, kwargs), got "
                                       f"{describe(result)}")
                args, kwargs = result
        self._opt_called = True
        self._in_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._in_step = False
        for hook in tuple(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper._polyten_step_wrapped = True
    return wrapper


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer``).

    Parameters
    ----------
    params : iterable
        Tensors to optimize, ``(name, tensor)`` pairs, or dicts defining parameter groups
        (``{"params": [...], "lr": 0.1}``); options missing from a group take the optimizer's
        defaults.
    defaults : dict
        Default hyper-parameters of every group.

    Subclasses implement ``step(closure=None)`` and may override ``_check_group(group,
    index)`` to validate a group's hyper-parameters; each parameter's state lives in
    ``self.state[param]`` (a dict).

    The optimizers take PyTorch's implementation options where torch's do: ``foreach`` and
    ``fused`` (polyten runs the backend's fused step -- one multi-tensor launch per 64
    parameters on CUDA -- whenever it offers one; ``foreach=False`` asks for the
    per-parameter polyten ops), ``capturable`` and ``differentiable`` (only False: CUDA graph
    capture and autograd through the step are not offered).
    """

    # the step() of this class that handles GradScaler's ``found_inf`` (every optimizer's)
    _amp_step: Optional[Callable] = None

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """PyTorch's flag for GradScaler: ``step`` reads ``self.found_inf`` (set by the
        scaler for the call; nonzero after an inf/NaN gradient) and skips itself -- on the
        device, with the backend's fused steps, so that the scaler need not read the flag
        on the host.  True only while the class keeps the step that does so (a subclass
        that overrides ``step`` gets the host read); a subclass may set it to True itself
        if its step follows the protocol."""
        cls = type(self)
        return cls._amp_step is not None and cls.step is cls._amp_step

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_polyten_step_wrapped", False):
            cls.step = _wrap_step(step)
            if cls.__dict__.get("_amp_step") is step:
                cls._amp_step = cls.step

    def __init__(self, params, defaults: Dict[str, Any]) -> None:
        name = type(self).__name__
        self.defaults = defaults
        self._step_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
        self._step_post_hooks: "OrderedDict[int, Callable]" = OrderedDict()
        self._opt_called = False
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of tensors or of dicts "
                            f"(parameter groups), got a single {describe(params)}; pass "
                            f"[tensor] or model.parameters()")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE.format(name))
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of tensors or of dicts "
                            f"(parameter groups), got {describe(params)}") from None
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list; pass the parameters to "
                             f"optimize, e.g. {name}(model.parameters(), ...) (check that "
                             f"the model has parameters and that the generator was not "
                             f"already consumed)")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------- groups ---
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters (with its own options; missing ones take the
        defaults), e.g. to train layers that were frozen so far."""
        name = type(self).__name__
        index = len(self.param_groups)
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{describe(param_group)}")
        if "params" not in param_group:
            raise ValueError(f"{name}: parameter group {index} has no 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE.format(name))
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
                names.append(p[0])
                p = p[1]
            tensors.append(p)
        if names and len(names) != len(tensors):
            raise ValueError(f"{name}: parameter group {index} mixes named (name, tensor) "
                             f"pairs and plain tensors; give names for all or none")
        if not tensors:
            raise ValueError(f"{name}: parameter group {index} is empty")
        for i, p in enumerate(tensors):
            self._check_param(p, index, i)
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group {index} didn't specify a value of "
                                 f"the required option {key!r}")
            group.setdefault(key, default)
        seen = set()
        for i, p in enumerate(tensors):
            if id(p) in seen:
                raise ValueError(f"{name}: parameter group {index} contains the same tensor "
                                 f"twice (position {i}, {describe(p)}); pass each parameter "
                                 f"once")
            seen.add(id(p))
        for j, other in enumerate(self.param_groups):
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{name}: all parameter groups must be given with names or "
                                 f"all without; group {j} and group {index} differ")
            for p in other["params"]:
                if id(p) in seen:
                    raise ValueError(f"{name}: a parameter ({describe(p)}) appears in "
                                     f"parameter group {j} and in group {index}; each "
                                     f"parameter may belong to one group only")
        self._check_group(group, index)
        self.param_groups.append(group)

    def _check_param(self, p, group: int, i: int) -> None:
        name = type(self).__name__
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: can only optimize tensors, but parameter {i} of group "
                            f"{group} is {describe(p)}")
        if not p.is_leaf:
            raise ValueError(f"{name}: can't optimize a non-leaf tensor (parameter {i} of "
                             f"group {group}: {describe(p)}, computed by "
                             f"{p.grad_fn.name()}); optimize the leaf tensors it was computed "
                             f"from, or make a new leaf with x.detach().requires_grad_()")
        if p._dtype.kind != "f":
            raise TypeError(f"{name}: parameters must be real floating-point tensors, but "
                            f"parameter {i} of group {group} is a {describe(p)}"
                            + ("; complex parameters are not supported by polyten.optim yet"
                               if p._dtype.kind == "c" else ""))

    def _check_group(self, group: Dict[str, Any], index: int) -> None:
        """Validate a group's hyper-parameters (subclasses call the helpers below)."""
        if "lr" in group:
            self._check_number(group, index, "lr", "learning rate", minimum=0.0)
        self._check_implementation(group, index)

    def _check_implementation(self, group: Dict[str, Any], index: int) -> None:
        """PyTorch's implementation options, kept in the groups (and state dicts) as torch
        keeps them.  ``foreach`` / ``fused``: polyten runs the backend's fused step (one
        multi-tensor launch per 64 parameters on CUDA) whenever it offers one, and
        ``foreach=False`` (with ``fused`` not True) asks for the per-parameter polyten ops
        instead.  ``capturable`` (CUDA graph capture) and ``differentiable`` (autograd
        through the step) are not offered."""
        name = type(self).__name__
        foreach, fused = group.get("foreach"), group.get("fused")
        for key in ("foreach", "fused"):
            v = group.get(key)
            if v is not None and not isinstance(v, bool):
                raise TypeError(f"{name}: {key} must be None, True or False, got "
                                f"{describe(v)}{self._where(index)}")
        if foreach and fused:
            raise RuntimeError(f"{name}: `fused` and `foreach` cannot be `True` together"
                               f"{self._where(index)}; polyten picks the backend's fused "
                               f"step itself, so leave both None")
        if group.get("capturable"):
            raise ValueError(f"{name}: capturable=True prepares the step for CUDA graph "
                             f"capture, which polyten does not offer{self._where(index)}; "
                             f"leave capturable=False (the step never waits for the GPU)")
        if group.get("differentiable"):
            raise ValueError(f"{name}: differentiable=True (autograd through the optimizer "
                             f"step) is not supported: polyten's steps run under no_grad"
                             f"{self._where(index)}; leave differentiable=False")

    def _where(self, index: int) -> str:
        return "" if index == 0 and not self.param_groups else f" (parameter group {index})"

    def _check_number(self, group, index: int, key: str, what: str, *, minimum=None,
                      below=None) -> float:
        name = type(self).__name__
        v = group[key]
        if isinstance(v, Tensor) and v.numel() == 1 and v._ag is None:
            v = group[key] = v.item()
        if not _is_number(v) or math.isnan(v):
            raise TypeError(f"{name}: {key} ({what}) must be a number, got {describe(v)}"
                            f"{self._where(index)}")
        if minimum is not None and v < minimum:
            raise ValueError(f"{name}: invalid {what}: {key}={v!r}{self._where(index)}; it "
                             f"must be >= {minimum:g}")
        if below is not None and not v < below:
            raise ValueError(f"{name}: invalid {what}: {key}={v!r}{self._where(index)}; it "
                             f"must be < {below:g}")
        return v

    def _check_betas(self, group, index: int) -> None:
        name = type(self).__name__
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"{name}: betas must be a pair of numbers (beta1, beta2), got "
                            f"{describe(betas)}{self._where(index)}")
        for i, b in enumerate(betas):
            if not _is_number(b):
                raise TypeError(f"{name}: betas[{i}] must be a number, got {describe(b)}"
                                f"{self._where(index)}")
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b!r}"
                                 f"{self._where(index)}; betas must be in [0, 1)")
        group["betas"] = tuple(betas)

    # --------------------------------------------------------------------- step ---
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the
        loss (it runs with gradients enabled).  Returns the closure's loss, else ``None``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    @staticmethod
    def _closure_loss(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grads(self, group, op: str):
        """The parameters of ``group`` that have a gradient, and those gradients."""
        params, grads = [], []
        for p in group["params"]:
            ag = p._ag
            g = None if ag is None else ag.grad
            if g is not None:
                if g._data.shape != p._data.shape:
                    raise RuntimeError(f"{op}: the gradient of a parameter has shape "
                                       f"{fmt_shape(g._data.shape)} but the parameter has "
                                       f"shape {fmt_shape(p._data.shape)}")
                params.append(p)
                grads.append(g)
        return params, grads

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to ``None`` (the default, which frees their
        memory) or, with ``set_to_none=False``, to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                ag = p._ag
                if ag is None or ag.grad is None:
                    continue
                if set_to_none:
                    ag.grad = None
                else:
                    g = ag.grad
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    with no_grad():
                        g.zero_()

    # ---------------------------------------------------------------- hooks ---
    def register_step_pre_hook(self, hook: Callable) -> "RemovableHandle":
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; it may return new
        ``(args, kwargs)``."""
        from ..nn.modules.module import RemovableHandle
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> "RemovableHandle":
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        from ..nn.modules.module import RemovableHandle
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    # ----------------------------------------------------------------- state ---
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state in PyTorch's format: ``{"state": {index: {...}},
        "param_groups": [{...options, "params": [index, ...]}]}``, parameters referred to by
        their position across all groups.  Tensors are the live state (as PyTorch's);
        :func:`polyten.save` writes them out."""
        index: Dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items()
                 if isinstance(p, Tensor) and id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict` (here or in another process: integer keys
        that came back as strings, tuples that came back as lists and tensors on another
        backend or dtype are converted).  Tensors are copied, so the source's state is never
        shared."""
        name = type(self).__name__
        if not (isinstance(state_dict, dict) and "state" in state_dict
                and "param_groups" in state_dict):
            got = (f"a dict with keys {sorted(map(str, state_dict))}"
                   if isinstance(state_dict, dict) else describe(state_dict))
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and "
                             f"'param_groups' (from optimizer.state_dict()), got {got}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the loaded state has "
                             f"{len(saved_groups)} parameter group(s), this optimizer has "
                             f"{len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(s['params'])} parameter(s) in the loaded state but "
                                 f"{len(g['params'])} in this optimizer")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], s["params"]):
                id_map[int(k)] = p
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
            if key in id_map:
                p = id_map[key]
                state[p] = {sk: self._cast_state(p, key, sk, sv) for sk, sv in v.items()}
            else:
                state[key] = copy.deepcopy(v)
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in s.items() if k != "params"}
            for k, v in ng.items():
                if isinstance(self.defaults.get(k), tuple) and isinstance(v, list):
                    ng[k] = tuple(v)
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            new_groups.append(ng)
        self.state = state
        self.param_groups = new_groups

    def _state_shape(self, p: Tensor, key):
        """The shape that state tensor ``key`` of parameter ``p`` must have when loaded (one
        element always passes); ``None``: any shape.  Optimizers whose state is not shaped
        like the parameter (LBFGS's flat vectors, Adafactor's factors) override it."""
        return tuple(p.shape)

    def _cast_state(self, p: Tensor, index, key, value):
        name = type(self).__name__
        if key == "step":
            if isinstance(value, Tensor):
                value = value.item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return value
        if isinstance(value, Tensor):
            want = self._state_shape(p, key)
            if want is not None and value.numel() != 1 and tuple(value.shape) != want:
                raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {index} "
                                 f"has shape {fmt_shape(value.shape)} but a parameter of "
                                 f"shape {fmt_shape(p.shape)} needs {fmt_shape(want)}; was "
                                 f"the state saved for another model?")
            with no_grad():
                out = value if value._device is p._device else value.to(p._device)
                if p._dtype.kind in "fc" and out._dtype is not p._dtype:
                    out = out.to(p._dtype)
                return out.clone() if out is value else out
        if isinstance(value, dict):
            return {k: self._cast_state(p, index, k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._cast_state(p, index, None, v) for v in value)
        return value

    # ----------------------------------------------------------------- misc ---
    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        self._opt_called = False


_SET_MESSAGE = ("{}: parameters must be given in an ordered collection (a list), not a set: "
                "the order of a set changes between runs, and the state_dict refers to "
                "parameters by position")
