"""bfloat16 on CUDA: which CuPy stores it, and which kernels hand it to the shared ones.

CuPy 14 and later store ``ml_dtypes.bfloat16`` arrays (when ml_dtypes is installed) and run
their casts, ufuncs, reductions and matrix products on them.  polyten's own CUDA C sources --
the fused activations, softmax, losses and norms, max_pool, im2col / col2im and the optimizer
steps -- are written for float16, float32 and float64 only.  Rather than instantiate them for a
type they were never run with, each of those kernels hands a bfloat16 call to the shared
array-module kernel of the same name (``polyten_cpu.kernels`` with ``xp=cupy``), which computes
bfloat16 in float32 and rounds once, as the cpu backend does.  ``matmul`` and ``erf`` go the
same way (``cupyx.scipy.special`` has no bfloat16 loops).  The shared products (``matmul``,
``linear`` and their backward) use cuBLAS's bfloat16 GEMM when one small product, tried when
the kernels are built, gives a right bfloat16 result, and multiply in float32 otherwise
(``polyten_cpu.kernels._util.upcast_products``).

CuPy calls its own bfloat16 support experimental, and some functions have no bfloat16 loop
(cupy/cupy#9630 names rounding and ``divmod``; ``cupyx`` has almost none).  Such a call raises
TypeError when CuPy resolves the kernel's types, before anything runs, so
:func:`float32_retry` wraps every kernel of the table: a bfloat16 call that raises TypeError
is run again on float32 copies of its bfloat16 operands and its float32 results are rounded
back to bfloat16, as the cpu backend computes every half-precision op that NumPy cannot.  The
kernel's name is then remembered, and its later bfloat16 calls go to float32 at once.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from polyten_cpu.kernels._util import bfloat16_dtype

from .cupy_internals import core_module


def supported(cp) -> Optional[Any]:
    """``cp``'s bfloat16 dtype when this CuPy stores it (ml_dtypes installed and a CuPy that
    knows its C type), else None."""
    bf = bfloat16_dtype(cp)
    if bf is None:
        return None
    scalar = core_module(cp, "_scalar")
    if scalar is None:
        return None
    try:
        scalar.get_typename(bf)  # CuPy 13 and older: no C type for it (a KeyError)
    except Exception:
        return None
    return bf


def _holds(arg, dt) -> bool:
    """Whether ``arg`` (an array, or a list / tuple of arrays and Nones) holds a ``dt``
    array."""
    d = getattr(arg, "dtype", None)
    if d is not None:
        return d == dt
    if isinstance(arg, (list, tuple)):
        for a in arg:
            if getattr(a, "dtype", None) == dt:
                return True
    return False


def route(own: Mapping[str, Callable], shared: Mapping[str, Callable], dt) -> Dict[str, Callable]:
    """``own``'s kernels, each handing a call whose first argument holds ``dt`` arrays to the
    kernel of the same name in ``shared``; where ``shared`` has none, the call returns
    ``NotImplemented`` (the core then takes its generic path, as for a backward kernel)."""
    out = {}
    for name, kernel in own.items():
        out[name] = _routed(kernel, shared.get(name), dt)
    return out


_FLOAT32 = np.dtype("float32")  # CuPy takes NumPy dtypes

# kernels the retry leaves alone: they return views of their operands or write into them (a
# rerun on float32 copies would view or write the copies), they take no array operand, or
# their result is a property of the dtype itself (float32's next value is not bfloat16's:
# CuPy's own bfloat16 tests cover its nextafter loop)
_NO_RETRY = frozenset({"setitem", "reshape", "permute", "expand", "getitem", "diagonal", "real",
                       "imag", "is_contiguous", "is_pinned", "pin_memory", "to_host",
                       "from_host", "from_pinned", "from_dlpack", "asarray", "astype",
                       "nextafter"})


def float32_retry(kernels: Mapping[str, Callable], dt, backward: bool = False
                  ) -> Dict[str, Callable]:
    """``kernels`` with each one (but views and writers, :data:`_NO_RETRY`) run again in
    float32 when a call holding ``dt`` (bfloat16) arrays raises TypeError: CuPy has no
    bfloat16 loop for some function it calls.  ``inplace`` computes its op that way and writes
    the bfloat16 result into its operand.  When the float32 run fails too, the first error is
    raised.  ``backward``: the kernels take ``(grads, inputs, outputs, params)``."""
    out: Dict[str, Callable] = {}
    learned = _RETRIED.setdefault("backward" if backward else "forward", set())
    for name, kernel in kernels.items():
        if name in _NO_RETRY:
            out[name] = kernel
        elif name == "inplace" and not backward:
            out[name] = _inplace_retry(kernel, out, dt)
        else:
            out[name] = _retrying(name, kernel, dt, learned)
    return out


# kernel table ("forward" / "backward") -> names whose bfloat16 calls go to float32 at once
_RETRIED: Dict[str, set] = {}


def retried() -> Dict[str, list]:
    """The kernels whose bfloat16 calls CuPy refused at least once in this process (and that
    now run in float32), per table: ``{"forward": [...], "backward": [...]}``.  With
    ``POLYTEN_CUDA_REPORT_RETRIES=1`` they are printed at exit (``scripts/gpu_check.sh``
    records which functions this CuPy has no bfloat16 loop for)."""
    return {table: sorted(names) for table, names in _RETRIED.items()}


def _report_at_exit() -> None:
    import atexit
    import sys

    def report():
        print(f"polyten_cuda: bfloat16 kernels retried in float32: {retried()}",
              file=sys.stderr)
    atexit.register(report)


if os.environ.get("POLYTEN_CUDA_REPORT_RETRIES") == "1":
    _report_at_exit()


def _retrying(name: str, kernel: Callable, dt, learned: set) -> Callable:
    def retrying(*args, **kwargs):
        if name in learned and _holds_any(args, dt):
            return _in_float32(kernel, args, kwargs, dt)
        try:
            return kernel(*args, **kwargs)
        except TypeError as first:
            if not _holds_any(args, dt):
                raise
            try:
                result = _in_float32(kernel, args, kwargs, dt)
            except Exception:
                raise first from None
            learned.add(name)
            return result
    return _named_like(retrying, kernel)


def _inplace_retry(kernel: Callable, table: Mapping[str, Callable], dt) -> Callable:
    def inplace(op, x, y):
        try:
            return kernel(op, x, y)
        except TypeError as first:
            if op is None or getattr(x, "dtype", None) != dt:
                raise
            try:  # the op's own kernel, retried in float32 if need be, then a bfloat16 copy
                r = table[op](x) if y is None else table[op](x, y)
            except Exception:
                raise first from None
            x[...] = r
            return x
    return _named_like(inplace, kernel)


# fused_optimizers hooks of the shared kernels that compute in bfloat16, and whose first call
# CuPy could refuse comes before their first write: a refusal leaves everything unwritten
DECLINABLE = ("total_norm", "clip_grads", "clamp_grads", "batch_norm_running")


def decline_on_gap(hooks: Mapping[str, Callable], dt) -> Dict[str, Callable]:
    """``hooks`` (``Backend.fused_optimizers``) with those of :data:`DECLINABLE` returning
    ``NotImplemented`` -- the core then runs its generic path, on the retried kernels -- when a
    call holding ``dt`` arrays raises TypeError (CuPy has no bfloat16 loop for a function the
    hook calls).  The optimizer steps need no such guard: they step bfloat16 in float32."""
    out = dict(hooks)
    for name in DECLINABLE:
        if name in out:
            out[name] = _declining(out[name], dt)
    return out


def _declining(hook: Callable, dt) -> Callable:
    def declining(*args, **kwargs):
        try:
            return hook(*args, **kwargs)
        except TypeError:
            if not _holds_any(args, dt):
                raise
            return NotImplemented
    return _named_like(declining, hook)


def amp_unscale_float32(cp, dt) -> Callable:
    """GradScaler's unscale for ``dt`` (bfloat16) gradients, written with casts, float32
    arithmetic and copies only (no bfloat16 loop needed): each gradient times ``inv_scale`` in
    float32, rounded once into the gradient, and ``found[0]`` set from the rounded values
    (a product that overflows bfloat16 only when rounded is caught), on the device."""
    f32 = _FLOAT32
    isfinite, maximum = cp.isfinite, cp.maximum

    def amp_unscale(grads, inv_scale, found):
        for g in grads:
            if g.dtype != dt:
                t = g
                t *= inv_scale
            else:
                t = g.astype(f32)
                t *= inv_scale
                g[...] = t
                t = g.astype(f32)
            bad = (~isfinite(t).all()).astype(found.dtype)
            maximum(found, bad, out=found)
    return amp_unscale


def _holds_any(args, dt) -> bool:
    for a in args:
        if getattr(a, "dtype", None) == dt:
            return True
        if isinstance(a, (list, tuple)) and _holds_any(a, dt):
            return True
    return False


def _in_float32(kernel: Callable, args, kwargs, dt):
    """``kernel`` on float32 copies of the ``dt`` arrays of ``args`` (through lists and
    tuples), its float32 results rounded to ``dt`` -- unless a float32 result is what the call
    asks for: another floating operand, or a dtype argument naming float32."""
    back = True
    for a in _flat(args, kwargs):
        d = getattr(a, "dtype", None)
        if d is None:
            if a.__class__ is str and a == "float32":
                back = False
        elif d != dt and d.kind in "fc":
            back = False
    result = kernel(*_mapped(args, dt, _FLOAT32), **kwargs)
    return _mapped(result, _FLOAT32, dt) if back else result


def _flat(args, kwargs):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a, {})
        elif not isinstance(a, dict):
            yield a
    yield from kwargs.values()


def _mapped(obj, src, dst):
    """``obj`` with each ``src`` array cast to ``dst``, through lists and tuples."""
    d = getattr(obj, "dtype", None)
    if d is not None:
        return obj.astype(dst) if d == src and hasattr(obj, "astype") else obj
    if obj.__class__ is tuple or obj.__class__ is list:
        return obj.__class__(_mapped(a, src, dst) for a in obj)
    return obj


def _named_like(wrapper: Callable, kernel: Callable) -> Callable:
    wrapper.__name__ = getattr(kernel, "__name__", "kernel")
    for attr in ("wants_output",):  # the core reads these off a backward kernel
        if hasattr(kernel, attr):
            setattr(wrapper, attr, getattr(kernel, attr))
    return wrapper


def _routed(kernel: Callable, alternative: Optional[Callable], dt) -> Callable:
    def routed(*args, **kwargs):
        if args and _holds(args[0], dt):
            if alternative is None:
                return NotImplemented
            return alternative(*args, **kwargs)
        return kernel(*args, **kwargs)
    return _named_like(routed, kernel)
