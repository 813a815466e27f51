"""Grad modes: whether operations are recorded for differentiation.

The state is a :class:`contextvars.ContextVar`, so it is local to the thread / asyncio task (a
new thread starts with gradients enabled, as in PyTorch).  Every class here is both a context
manager and a decorator.
"""

from __future__ import annotations

import contextvars
import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]

_ENABLED = contextvars.ContextVar("polyten_grad_enabled", default=True)
_INFERENCE = contextvars.ContextVar("polyten_inference_mode", default=False)
grad_enabled = _ENABLED.get  # the hot-path check used by the API layer


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded for autograd."""
    return _ENABLED.get()


def is_inference_mode_enabled() -> bool:
    return _INFERENCE.get()


class _Mode:
    """Base: sets the grad-enabled flag for a block or a decorated function."""

    _value = True

    def _enter(self):
        return (_ENABLED.set(self._value),)

    def _exit(self, tokens):
        _ENABLED.reset(tokens[0])

    def __enter__(self):
        stack = self.__dict__.setdefault("_tokens", [])
        stack.append(self._enter())
        return self

    def __exit__(self, *exc):
        self._exit(self._tokens.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__.__new__(self.__class__)._clone(self):
                return fn(*args, **kwargs)
        return wrapper

    def _clone(self, other):
        self.__dict__.update({k: v for k, v in other.__dict__.items() if k != "_tokens"})
        return self


class no_grad(_Mode):
    """Disable gradient recording in a block or function (``torch.no_grad``)."""

    _value = False


class enable_grad(_Mode):
    """Enable gradient recording in a block or function, e.g. inside ``no_grad``."""

    _value = True


class set_grad_enabled(_Mode):
    """Set gradient recording on or off: ``set_grad_enabled(False)`` works as a call (it sets
    the mode right away, as PyTorch), a context manager (restored at exit) or a decorator."""

    def __init__(self, mode: bool):
        self._value = bool(mode)
        self._prev = _ENABLED.set(self._value)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _ENABLED.reset(self._prev)
        return False

    def __call__(self, fn):
        _ENABLED.reset(self._prev)  # used as a decorator: do not change the mode now
        value = self._value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            token = _ENABLED.set(value)
            try:
                return fn(*args, **kwargs)
            finally:
                _ENABLED.reset(token)
        return wrapper


class inference_mode(_Mode):
    """Like :class:`no_grad`, for code that will never need gradients (``torch.inference_mode``);
    ``inference_mode(False)`` leaves the mode unchanged."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def _enter(self):
        if not self.mode:
            return ()
        return (_ENABLED.set(False), _INFERENCE.set(True))

    def _exit(self, tokens):
        if tokens:
            _INFERENCE.reset(tokens[1])
            _ENABLED.reset(tokens[0])
