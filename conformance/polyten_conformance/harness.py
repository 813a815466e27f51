"""The machinery behind every conformance test: samples, tensors, comparison, reproducers.

A :class:`Sample` holds an op's arguments as NumPy data (:class:`Arr`) plus plain Python values.
The test turns each :class:`Arr` into a tensor of the backend under test (contiguous, transposed
or strided), calls the op, computes the NumPy reference on float64 / complex128 / int64 copies of
the same values, and compares at a tolerance chosen for the result dtype.  Whatever goes wrong is
reported with a reproducer: a snippet that rebuilds the exact inputs and makes the same call.

"Missing" is not "failed": a public function that polyten does not define, a Tensor method that
does not exist, or a kernel the backend lacks (``KernelNotFoundError``) is reported through
:func:`missing` (a skip whose reason starts with ``MISSING_TAG``), which the plugin counts in
its own column.
"""

from __future__ import annotations

import math
import traceback
import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest

from . import promotion as P

__all__ = ["Arr", "DType", "Sample", "ErrorSample", "ConformanceFailure", "missing",
           "MISSING_TAG", "NA_TAG", "seed_for", "Materialized", "compare", "tolerance",
           "literal", "fmt_array"]

MISSING_TAG = "[missing] "
NA_TAG = "[n/a] "


class ConformanceFailure(AssertionError):
    """A conformance check failed; the message is the whole report (reproducer included)."""


def missing(what: str):
    """Report that something polyten or the backend should provide is not there."""
    pytest.skip(MISSING_TAG + what)


def not_applicable(why: str):
    pytest.skip(NA_TAG + why)


def seed_for(*parts) -> int:
    """A stable seed (not Python's salted ``hash``) for a test's random inputs."""
    return zlib.crc32("|".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------- sample data ---
class Arr:
    """A tensor argument of a sample.

    ``value`` is a NumPy array of the dtype the tensor must have and of its *logical* shape.
    ``layout`` says how the tensor is built: ``"contiguous"``, ``"transposed"`` (a view with
    reversed axes of a contiguous array), ``"mT"`` (the last two axes of a contiguous array
    swapped: ``k.mT`` in ``q @ k.mT``) or ``"strided"`` (every other element along the last
    dimension of a twice-as-wide array).  ``role`` is ``"data"`` for operands that take part in
    type promotion (upcast for the reference), ``"index"`` for int64 indices and ``"mask"`` for
    bool masks / conditions (passed to the reference unchanged).
    """

    __slots__ = ("value", "layout", "role")

    def __init__(self, value, layout: str = "contiguous", role: str = "data"):
        assert layout in ("contiguous", "transposed", "mT", "strided"), layout
        assert layout != "mT" or np.ndim(value) >= 2, "mT needs two dims"
        self.value = np.asarray(value)
        self.layout = layout
        self.role = role

    @property
    def dtype(self) -> str:
        return self.value.dtype.name

    def __repr__(self) -> str:
        return f"Arr({self.dtype}{list(self.value.shape)}, {self.layout}, {self.role})"


class DType:
    """A polyten dtype named in a sample's arguments (``dtype=DType("float64")``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"polyten.{self.name}"


class Sample:
    """One call of an op: positional and keyword arguments, and a short description."""

    __slots__ = ("args", "kwargs", "desc", "extra")

    def __init__(self, *args, desc: str = "", extra: Optional[dict] = None, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.desc = desc
        self.extra = extra or {}

    def arrs(self) -> List[Arr]:
        out: List[Arr] = []
        _collect(self.args, out)
        _collect(tuple(self.kwargs.values()), out)
        return out

    def data_dtypes(self) -> List[str]:
        return [a.dtype for a in self.arrs() if a.role == "data"]

    def scalars(self) -> list:
        """Python numbers among the positional arguments (weak operands)."""
        return [a for a in self.args if isinstance(a, (bool, int, float, complex))]

    def shapes(self) -> List[tuple]:
        return [tuple(a.value.shape) for a in self.arrs()]

    def describe(self) -> str:
        parts = []
        for a in self.arrs():
            lay = "" if a.layout == "contiguous" else f" {a.layout}"
            parts.append(f"{a.dtype}{_shape(a.value.shape)}{lay}")
        return (self.desc + ": " if self.desc else "") + ", ".join(parts)


class ErrorSample(Sample):
    """A call that must raise ``exc`` with a message containing every string of ``match``."""

    __slots__ = ("exc", "match")

    def __init__(self, *args, exc, match: Sequence[str] = (), desc: str = "", **kwargs):
        super().__init__(*args, desc=desc, **kwargs)
        self.exc = exc
        self.match = tuple(match)


def _collect(obj, out):
    if isinstance(obj, Arr):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _collect(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _collect(o, out)


def _shape(shape) -> str:
    shape = tuple(shape)
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


# -------------------------------------------------------------------------- materialising ---
class Materialized:
    """A sample turned into polyten arguments, plus the code that rebuilds them."""

    def __init__(self, pt, sample: Sample, device: str):
        self.pt = pt
        self.device = device
        self.lines: List[str] = []
        self._n = 0
        self.args = self._conv(sample.args)
        self.kwargs = {k: self._conv(v) for k, v in sample.kwargs.items()}

    def _conv(self, obj):
        if isinstance(obj, Arr):
            return self._tensor(obj)
        if isinstance(obj, DType):
            return getattr(self.pt, obj.name)
        if isinstance(obj, list):
            return [self._conv(o) for o in obj]
        if isinstance(obj, tuple):
            return tuple(self._conv(o) for o in obj)
        return obj

    def _tensor(self, a: Arr):
        pt, dev = self.pt, self.device
        name = f"x{self._n}"
        self._n += 1
        v = a.value
        dt = repr(v.dtype.name)
        if a.layout == "contiguous" or v.ndim == 0 or (a.layout == "transposed" and v.ndim < 2):
            t = pt.asarray(v.copy(), device=dev)
            code = f"polyten.asarray({_np_code(v, dt)}, device={dev!r})"
        elif a.layout == "transposed":
            base = np.ascontiguousarray(np.transpose(v))
            perm = tuple(range(v.ndim))[::-1]
            t = pt.asarray(base.transpose(), device=dev)
            code = (f"polyten.asarray({_np_code(base, dt)}.transpose(), "
                    f"device={dev!r})")
            if _contiguous(t) and v.size > 1:
                # a backend that copied the host view: make the non-contiguous view in polyten
                try:
                    t2 = pt.asarray(base, device=dev).permute(*perm)
                    t = t2
                    code = (f"polyten.asarray({_np_code(base, dt)}, "
                            f"device={dev!r}).permute{perm}")
                except Exception:
                    pass
        elif a.layout == "mT":
            base = np.ascontiguousarray(np.swapaxes(v, -1, -2))
            t = pt.asarray(base, device=dev).mT
            code = f"polyten.asarray({_np_code(base, dt)}, device={dev!r}).mT"
        else:  # strided
            shape = v.shape[:-1] + (2 * v.shape[-1],)
            base = np.zeros(shape, dtype=v.dtype)
            if P.kind(v.dtype.name) in "fc":  # by name: NumPy calls bfloat16 kind "V"
                base[...] = 777  # garbage that must never show up in a result
            base[..., ::2] = v
            t = pt.asarray(base[..., ::2], device=dev)
            code = (f"polyten.asarray({_np_code(base, dt)}[..., ::2], "
                    f"device={dev!r})")
            if _contiguous(t) and v.size > 1:
                try:
                    t2 = pt.asarray(base, device=dev)[..., ::2]
                    t = t2
                    code = (f"polyten.asarray({_np_code(base, dt)}, "
                            f"device={dev!r})[..., ::2]")
                except Exception:
                    pass
        self.lines.append(f"{name} = {code}  # {v.dtype.name}{_shape(v.shape)}, {a.layout}")
        return _Named(t, name)

    def unwrap(self, obj):
        if isinstance(obj, _Named):
            return obj.t
        if isinstance(obj, list):
            return [self.unwrap(o) for o in obj]
        if isinstance(obj, tuple):
            return tuple(self.unwrap(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self.unwrap(v) for k, v in obj.items()}
        return obj

    @property
    def call_args(self):
        return self.unwrap(self.args), self.unwrap(self.kwargs)


class _Named:
    __slots__ = ("t", "name")

    def __init__(self, t, name):
        self.t, self.name = t, name

    def __repr__(self) -> str:
        return self.name


def _contiguous(t) -> bool:
    try:
        return bool(t.is_contiguous())
    except Exception:
        return True


def code_args(args, kwargs) -> str:
    """``x0, 2, dim=1``: how a call's arguments appear in a reproducer."""
    parts = [_code(a) for a in args] + [f"{k}={_code(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _code(v) -> str:
    if isinstance(v, _Named):
        return v.name
    if isinstance(v, list):
        return "[" + ", ".join(_code(o) for o in v) + "]"
    if isinstance(v, tuple):
        inner = ", ".join(_code(o) for o in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, slice):
        return repr(v)
    if v is Ellipsis:
        return "..."
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    if hasattr(v, "name") and type(v).__name__ == "dtype" and type(v).__module__.startswith(
            "polyten"):
        return f"polyten.{v.name}"
    return repr(v)


def subscript_code(key) -> str:
    """``1:3, ..., None, x1``: a key as it reads between brackets."""
    parts = key if isinstance(key, tuple) else (key,)
    if isinstance(key, tuple) and not key:
        return "()"
    out = []
    for k in parts:
        if isinstance(k, slice):
            a = "" if k.start is None else repr(k.start)
            b = "" if k.stop is None else repr(k.stop)
            out.append(f"{a}:{b}" + ("" if k.step is None else f":{k.step!r}"))
        else:
            out.append(_code(k))
    text = ", ".join(out)
    return text + "," if isinstance(key, tuple) and len(key) == 1 else text


def _np_code(v, dt: str) -> str:
    """``np.array([...], dtype=...)``; an empty array keeps its shape (``[]`` alone would not)."""
    if v.size == 0:
        return f"np.zeros({tuple(v.shape)!r}, dtype={dt})"
    return f"np.array({literal(v)}, dtype={dt})"


def literal(a) -> str:
    """An exact Python literal of an array's values (NaN/inf spelled so the snippet runs)."""
    return _lit(np.asarray(a).tolist())


def _lit(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_lit(o) for o in v) + "]"
    if isinstance(v, float):
        if math.isnan(v):
            return "np.nan"
        if math.isinf(v):
            return "np.inf" if v > 0 else "-np.inf"
        return repr(v)
    if isinstance(v, complex):
        return f"complex({_lit(v.real)}, {_lit(v.imag)})"
    return repr(v)


def fmt_array(a, limit: int = 400, suffix: bool = True) -> str:
    a = np.asarray(a)
    with np.printoptions(precision=8, threshold=60, edgeitems=3, linewidth=100):
        s = np.array2string(a, separator=", ")
    if suffix:
        s = f"{s}  # {a.dtype.name}{_shape(a.shape)}"
    return s if len(s) <= limit else s[:limit] + " ..."


# ---------------------------------------------------------------------------- tolerances ---
# bfloat16: float16's tolerances scaled by the ratio of their epsilons (8)
_TOL = {"float16": (2e-3, 1e-3), "bfloat16": (1.6e-2, 8e-3), "float32": (2e-6, 1e-5),
        "float64": (1e-7, 1e-7), "complex64": (2e-6, 1e-5), "complex128": (1e-7, 1e-7)}
_LOOSE = {"float16": (1e-2, 1e-2), "bfloat16": (8e-2, 8e-2), "float32": (2e-5, 2e-5),
          "float64": (1e-9, 1e-9), "complex64": (2e-5, 2e-5), "complex128": (1e-9, 1e-9)}
_LINALG = {"float16": (3e-2, 3e-2), "bfloat16": (1.2e-1, 1.2e-1), "float32": (1e-4, 1e-4),
           "float64": (1e-8, 1e-8), "complex64": (1e-4, 1e-4), "complex128": (1e-8, 1e-8)}
TOLERANCES = {"default": _TOL, "loose": _LOOSE, "linalg": _LINALG}


def tolerance(result_dtype: str, kind: str = "default") -> Tuple[float, float]:
    return TOLERANCES[kind].get(result_dtype, (0.0, 0.0))


# ---------------------------------------------------------------------------- comparison ---
def to_host(t):
    """A tensor's values as NumPy, through the public API (``.numpy()``)."""
    return np.asarray(t.numpy())


def compare(actual, expected, expected_dtype: Optional[str], device_type: str,
            tol_kind: str = "default", what: str = "result") -> List[str]:
    """Problems with one tensor result (an empty list when it conforms).

    ``expected`` is the NumPy reference (computed in a wide dtype); ``expected_dtype`` the
    dtype polyten must return (None: don't check the dtype, compare in the actual dtype).
    """
    problems: List[str] = []
    Tensor = _tensor_cls()
    if not isinstance(actual, Tensor):
        return [f"{what}: expected a polyten.Tensor, got {type(actual).__name__} {actual!r:.80}"]
    dt = actual.dtype.name
    if expected_dtype is not None and dt != expected_dtype:
        problems.append(f"{what}: dtype is {dt}, expected {expected_dtype}")
    dev = getattr(actual.device, "type", str(actual.device))
    if dev != device_type:
        problems.append(f"{what}: on device {actual.device}, expected the input's backend "
                        f"{device_type!r}")
    expected = np.asarray(expected)
    shape = tuple(actual.shape)
    if shape != tuple(expected.shape):
        problems.append(f"{what}: shape is {_shape(shape)}, expected {_shape(expected.shape)}")
        return problems
    try:
        host = to_host(actual)
    except Exception as exc:
        problems.append(f"{what}: .numpy() failed: {type(exc).__name__}: {exc}")
        return problems
    if tuple(host.shape) != shape:
        problems.append(f"{what}: .numpy() has shape {_shape(host.shape)} but .shape says "
                        f"{_shape(shape)}")
        return problems
    if host.dtype.name != dt:
        problems.append(f"{what}: the kernel returned {host.dtype.name} data for a {dt} result "
                        f"(.numpy() has dtype {host.dtype.name} but .dtype says {dt})")
    problems.extend(values_match(host, expected, expected_dtype or dt, tol_kind, what))
    return problems


def values_match(host, expected, dtype_name: str, tol_kind: str = "default",
                 what: str = "result") -> List[str]:
    k = P.kind(dtype_name)
    if host.size == 0:
        return []
    if k in "biu":
        with np.errstate(all="ignore"):
            exp = np.asarray(expected)
            if exp.dtype.kind in "fc":
                if np.isnan(exp).any():
                    return [f"{what}: the reference has NaN for an {dtype_name} result "
                            f"(suite bug?)"]
                exp = np.round(exp.real).astype(np.int64)
            exp = exp.astype(dtype_name)
        got = host.astype(dtype_name)
        bad = got != exp
        if bad.any():
            return [_mismatch(what, host, exp, bad, "exactly")]
        return []
    rtol, atol = tolerance(dtype_name, tol_kind)
    wide = np.complex128 if k == "c" else np.float64
    got = host.astype(wide)
    exp = np.asarray(expected)
    if k != "c" and exp.dtype.kind == "c":
        exp = exp.real
    exp = exp.astype(wide)
    with np.errstate(all="ignore"):
        close = np.isclose(got, exp, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        return [_mismatch(what, host, exp, ~close, f"within rtol={rtol:g}, atol={atol:g}")]
    return []


def _mismatch(what, got, exp, bad, how) -> str:
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if got.ndim else ()
    n = int(np.count_nonzero(bad))
    g, e = np.asarray(got)[idx], np.asarray(exp)[idx]
    pad = "\n" + " " * 14
    return (f"{what}: {n} of {got.size} values differ ({how}); first at index {idx}: got "
            f"{g.item()!r}, expected {e.item()!r}\n"
            f"    actual:   {fmt_array(got).replace(chr(10), pad)}\n"
            f"    expected: {fmt_array(exp).replace(chr(10), pad)}")


_TENSOR = []


def _tensor_cls():
    if not _TENSOR:
        import polyten
        _TENSOR.append(polyten.Tensor)
    return _TENSOR[0]


# ------------------------------------------------------------------------- error reporting ---
def is_missing_error(exc: BaseException) -> Optional[str]:
    """If ``exc`` means "not implemented here" (a missing kernel, function or import), why."""
    from polyten.dispatch import KernelNotFoundError
    if isinstance(exc, KernelNotFoundError):
        return f"kernel: {exc}"
    if isinstance(exc, NotImplementedError):
        return f"not implemented: {exc}"
    if isinstance(exc, ImportError) and "polyten" in str(exc):
        return f"polyten is incomplete: {exc}"
    return None


def short_traceback(exc: BaseException, limit: int = 6) -> str:
    """The last frames of ``exc``'s traceback, without the suite's own frames."""
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if "polyten_conformance" not in f.filename][-limit:]
    body = "".join(traceback.format_list(frames))
    return ("Traceback (innermost last):\n" + body).rstrip() if frames else ""


def reproducer(header: str, mat: Materialized, call: str, backend: str,
               extra_lines: Sequence[str] = ()) -> str:
    """The snippet a user can paste to see the same result."""
    lines = [f"# {header}", "import numpy as np", "import polyten",
             f"polyten.set_backend({backend!r})"]
    lines += mat.lines
    lines += list(extra_lines)
    lines.append(f"out = {call}")
    return "\n".join(lines)
