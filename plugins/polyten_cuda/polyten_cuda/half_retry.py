"""Half-precision calls that CuPy refuses, run again in float32.

CuPy's float16 and bfloat16 support has gaps: functions with no loop for the dtype (for
bfloat16, which CuPy calls experimental, cupy/cupy#9630 names rounding and ``divmod``;
``cupyx`` has almost none; for float16, a few ``cupyx`` and library routines).  Such a call
raises TypeError when CuPy resolves the kernel's types, before anything runs.  So
:func:`float32_retry` wraps every kernel of the cuda backend's table: a call holding float16 or
bfloat16 arrays that raises TypeError runs again on float32 copies of them, and its float32
results are rounded back to the half dtype -- as PyTorch computes half precision in float32
("opmath") and as the cpu backend computes what NumPy cannot.  The kernel's name is then
remembered (:func:`retried`), and its later half-precision calls go to float32 at once.

The in-place optimizer hooks that compute in bfloat16 use :func:`decline_on_gap` instead: on
such a refusal they return ``NotImplemented`` and the core runs its generic path (on the
retried kernels).
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

_FLOAT32 = np.dtype("float32")  # CuPy takes NumPy dtypes

# kernels the retry leaves alone: they return views of their operands or write into them (a
# rerun on float32 copies would view or write the copies), they take no array operand, or
# their result is a property of the dtype itself (float32's next value is not float16's or
# bfloat16's: CuPy's own tests cover its half nextafter loops)
_NO_RETRY = frozenset({"setitem", "reshape", "permute", "expand", "getitem", "diagonal", "real",
                       "imag", "is_contiguous", "is_pinned", "pin_memory", "to_host",
                       "from_host", "from_pinned", "from_dlpack", "asarray", "astype",
                       "nextafter"})

# kernel table ("forward" / "backward") -> names whose half calls go to float32 at once
_RETRIED: Dict[str, set] = {}


# (exception type, make): an error of that type raised by a kernel is raised as
# make(kernel name, error), from it
Translate = Tuple[type, Callable[[str, BaseException], BaseException]]


def float32_retry(kernels: Mapping[str, Callable], halves: Sequence, backward: bool = False,
                  translate: Optional[Translate] = None) -> Dict[str, Callable]:
    """``kernels`` with each one (but views and writers, :data:`_NO_RETRY`) run again in
    float32 when a call holding arrays of a dtype in ``halves`` raises TypeError: CuPy has no
    loop of that dtype for some function it calls.  ``inplace`` computes its op that way and
    writes the rounded result into its operand.  When the float32 run fails too, the first
    error is raised.  ``backward``: the kernels take ``(grads, inputs, outputs, params)``.

    ``translate`` turns another error of every kernel, ``_NO_RETRY``'s included, into the
    caller's (the cuda backend: CuPy's out-of-memory error into polyten's), in the same
    wrapper: one frame per kernel call, not two."""
    halves = tuple(halves)
    errors, make = translate if translate is not None else ((), None)
    out: Dict[str, Callable] = {}
    learned = _RETRIED.setdefault("backward" if backward else "forward", set())
    for name, kernel in kernels.items():
        if name in _NO_RETRY:
            out[name] = kernel if translate is None else translating(name, kernel, translate)
        elif name == "inplace" and not backward:
            out[name] = _inplace_retry(kernel, out, halves, errors, make)
        else:
            out[name] = _retrying(name, kernel, halves, learned, errors, make)
    return out


def translating(name: str, fn: Callable, translate: Translate) -> Callable:
    """``fn`` raising ``translate``'s error in place of the one it names (see
    :func:`float32_retry`); no cost until that error happens."""
    errors, make = translate

    def kernel(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except errors as e:
            raise make(name, e) from e
    return named_like(kernel, fn)


def retried() -> Dict[str, list]:
    """The kernels whose half-precision calls CuPy refused at least once in this process
    (and that now run in float32), per table: ``{"forward": [...], "backward": [...]}``.
    With ``POLYTEN_CUDA_REPORT_RETRIES=1`` they are printed at exit (``scripts/gpu_check.sh``
    records which functions this CuPy has no half-precision loop for)."""
    return {table: sorted(names) for table, names in _RETRIED.items()}


def _report_at_exit() -> None:
    import atexit
    import sys

    def report():
        print(f"polyten_cuda: half-precision kernels retried in float32: {retried()}",
              file=sys.stderr)
    atexit.register(report)


if os.environ.get("POLYTEN_CUDA_REPORT_RETRIES") == "1":
    _report_at_exit()


def _retrying(name: str, kernel: Callable, halves: tuple, learned: set, errors, make
              ) -> Callable:
    def retrying(*args, **kwargs):
        try:
            if name in learned and holds(args, halves):
                return _in_float32(kernel, args, kwargs, halves)
            return kernel(*args, **kwargs)
        except TypeError as first:
            if not holds(args, halves):
                raise
            try:
                result = _in_float32(kernel, args, kwargs, halves)
            except errors as e:
                raise make(name, e) from e
            except Exception:
                raise first from None
            learned.add(name)
            return result
        except errors as e:
            raise make(name, e) from e
    return named_like(retrying, kernel)


def _inplace_retry(kernel: Callable, table: Mapping[str, Callable], halves: tuple, errors,
                   make) -> Callable:
    def inplace(op, x, y):
        try:
            return kernel(op, x, y)
        except TypeError as first:
            if op is None or getattr(x, "dtype", None) not in halves:
                raise
            try:  # the op's own kernel (itself retried and translated), then a rounded copy
                r = table[op](x) if y is None else table[op](x, y)
            except TypeError:
                raise first from None
            x[...] = r
            return x
        except errors as e:
            raise make("inplace", e) from e
    return named_like(inplace, kernel)


def decline_on_gap(hooks: Mapping[str, Callable], names: Sequence[str], halves: Sequence
                   ) -> Dict[str, Callable]:
    """``hooks`` (``Backend.fused_optimizers``) with those named in ``names`` returning
    ``NotImplemented`` -- the core then runs its generic path, on the retried kernels -- when a
    call holding arrays of a dtype in ``halves`` raises TypeError.  Only for hooks whose
    first call CuPy could refuse comes before their first write: a refusal must leave
    everything unwritten."""
    halves = tuple(halves)
    out = dict(hooks)
    for name in names:
        if name in out:
            out[name] = _declining(out[name], halves)
    return out


def _declining(hook: Callable, halves: tuple) -> Callable:
    def declining(*args, **kwargs):
        try:
            return hook(*args, **kwargs)
        except TypeError:
            if not holds(args, halves):
                raise
            return NotImplemented
    return named_like(declining, hook)


def holds(obj, dtypes: tuple) -> bool:
    """Whether ``obj`` -- an array, or a list / tuple of arrays, Nones and such lists -- holds
    an array of a dtype in ``dtypes``."""
    d = getattr(obj, "dtype", None)
    if d is not None:
        return d in dtypes
    if isinstance(obj, (list, tuple)):
        for a in obj:
            if holds(a, dtypes):
                return True
    return False


def _in_float32(kernel: Callable, args, kwargs, halves: tuple):
    """``kernel`` on float32 copies of the half arrays of ``args`` (through lists and tuples),
    its float32 results rounded to that half dtype -- unless a float32 result is what the
    call asks for: another floating operand, or a dtype argument naming float32."""
    low = None
    back = True
    for a in _flat(args, kwargs):
        d = getattr(a, "dtype", None)
        if d is None:
            if a.__class__ is str and a == "float32":
                back = False
        elif d in halves:
            if low is not None and d != low:
                back = False  # two half dtypes (the core promotes them first): keep float32
            low = d
        elif d.kind in "fc":
            back = False
    result = kernel(*_mapped(args, halves, _FLOAT32), **kwargs)
    return _mapped(result, (_FLOAT32,), low) if back and low is not None else result


def _flat(args, kwargs):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a, {})
        elif not isinstance(a, dict):
            yield a
    yield from kwargs.values()


def _mapped(obj, srcs: tuple, dst):
    """``obj`` with each array of a dtype in ``srcs`` cast to ``dst``, through lists and
    tuples."""
    d = getattr(obj, "dtype", None)
    if d is not None:
        return obj.astype(dst) if d in srcs and hasattr(obj, "astype") else obj
    if obj.__class__ is tuple or obj.__class__ is list:
        return obj.__class__(_mapped(a, srcs, dst) for a in obj)
    return obj


def named_like(wrapper: Callable, kernel: Callable) -> Callable:
    """``wrapper`` with ``kernel``'s name and the attributes the core reads off a kernel."""
    wrapper.__name__ = getattr(kernel, "__name__", "kernel")
    # the core reads these off a backward kernel and an optimizer step
    for attr in ("wants_output", "takes_found_inf"):
        if hasattr(kernel, attr):
            setattr(wrapper, attr, getattr(kernel, attr))
    return wrapper
