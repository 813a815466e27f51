"""dtypes, type promotion and dtype introspection -- the one place for promotion rules.

Promotion follows PyTorch and the Python Array API standard: a lattice within each kind
(bool < integers < floating < complex), ``uint8`` with a signed integer goes to the next signed
type that holds both, mixed kinds go to the higher kind, and Python scalars are *weak*: they
take the tensor's dtype unless their kind is higher (``int_tensor * 1.5`` is the default float
dtype, ``float16_tensor * 2.0`` stays float16).  Zero-dimensional tensors are *not* weak (the
Array API rule, which also keeps result dtypes independent of shapes).
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Tuple

__all__ = ["dtype", "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
           "float32",
           "float64", "complex64", "complex128", "half", "float", "double", "short", "int",
           "long", "cfloat", "cdouble", "finfo", "iinfo", "result_type", "promote_types",
           "can_cast", "set_default_dtype", "get_default_dtype", "isdtype", "is_floating_point",
           "is_complex", "DTYPES"]

_KIND_ORDER = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


class dtype:
    """A polyten data type, e.g. ``polyten.float32``.

    Attributes
    ----------
    name : str
        ``"float32"``; backends key their native dtypes by this name.
    itemsize : int
        Bytes per element.
    is_floating_point, is_complex, is_signed : bool
        As ``torch.dtype``.
    """

    __slots__ = ("name", "itemsize", "kind", "is_floating_point", "is_complex", "is_signed",
                 "_bits")

    def __init__(self, name: str, kind: str, itemsize: builtins.int):
        self.name, self.kind, self.itemsize = name, kind, itemsize
        self.is_floating_point = kind == "f"
        self.is_complex = kind == "c"
        self.is_signed = kind in "ifc"
        self._bits = itemsize * 8

    def __repr__(self) -> str:
        return f"polyten.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    def to_real(self) -> "dtype":
        """complex64 -> float32, complex128 -> float64; other dtypes unchanged."""
        return _COMPLEX_TO_REAL.get(self, self)

    def to_complex(self) -> "dtype":
        """float32 -> complex64 (float16 and bfloat16 too), float64 -> complex128."""
        return _REAL_TO_COMPLEX.get(self, self)


bool = dtype("bool", "b", 1)
uint8 = dtype("uint8", "u", 1)
int8 = dtype("int8", "i", 1)
int16 = dtype("int16", "i", 2)
int32 = dtype("int32", "i", 4)
int64 = dtype("int64", "i", 8)
float16 = dtype("float16", "f", 2)
# bfloat16: float32's 8-bit exponent with an 8-bit significand.  A backend stores it only where
# its array library has it (NumPy and CuPy through ml_dtypes); ``Backend.dtypes`` says.
bfloat16 = dtype("bfloat16", "f", 2)
float32 = dtype("float32", "f", 4)
float64 = dtype("float64", "f", 8)
complex64 = dtype("complex64", "c", 8)
complex128 = dtype("complex128", "c", 16)
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
cfloat, cdouble = complex64, complex128

DTYPES: Dict[str, dtype] = {d.name: d for d in (bool, uint8, int8, int16, int32, int64, float16,
                                                 bfloat16, float32, float64, complex64,
                                                 complex128)}
# the floating dtypes computed in float32 and rounded once (accumulations, transcendental
# functions, norms), as PyTorch does, and cast to float32 by autocast's float32 ops
LOW_PRECISION = frozenset((float16, bfloat16))
_COMPLEX_TO_REAL = {complex64: float32, complex128: float64}
_REAL_TO_COMPLEX = {float16: complex64, bfloat16: complex64, float32: complex64,
                    float64: complex128}


def _by_name(name: str) -> dtype:
    return DTYPES[name]


# ----------------------------------------------------------------------------- promotion ----
def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    ka, kb = _KIND_ORDER[a.kind], _KIND_ORDER[b.kind]
    if ka != kb:
        hi, lo = (a, b) if ka > kb else (b, a)
        if hi.kind == "c" and lo.kind == "f" and lo.itemsize * 2 > hi.itemsize:
            return complex128  # float64 + complex64 -> complex128 (keep float64 precision)
        return hi
    if a.kind == "b":
        return bool
    if a.kind in "ui":
        if a.kind == b.kind:
            return a if a.itemsize >= b.itemsize else b
        u, s = (a, b) if a.kind == "u" else (b, a)
        if s.itemsize > u.itemsize:
            return s
        return {1: int16, 2: int32, 4: int64, 8: int64}[u.itemsize]
    if a.itemsize == b.itemsize:  # float16 with bfloat16: neither holds the other (PyTorch)
        return float32
    return a if a.itemsize >= b.itemsize else b


_PROMOTE: Dict[Tuple[dtype, dtype], dtype] = {
    (a, b): _promote_pair(a, b) for a in DTYPES.values() for b in DTYPES.values()}


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """The smallest dtype to which both ``type1`` and ``type2`` can be cast (``torch.promote_types``)."""
    return _PROMOTE[(to_dtype(type1), to_dtype(type2))]


# default float dtype: global, as torch.set_default_dtype
_default_float = [float32]


def set_default_dtype(d) -> None:
    """Set the dtype of new floating tensors made from Python floats (float32 at start).

    Only floating dtypes (``float16``, ``bfloat16``, ``float32``, ``float64``) are allowed, as
    in PyTorch.
    """
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {d!r}; "
                        f"use polyten.float32 or polyten.float64")
    _default_float[0] = d


def get_default_dtype() -> dtype:
    """The current default floating dtype."""
    return _default_float[0]


def scalar_dtype_for(value, tensor_dtype: dtype) -> dtype:
    """Result dtype of ``tensor_dtype`` combined with a *weak* Python scalar ``value``."""
    t = type(value)
    if t is builtins.bool:
        return tensor_dtype
    if t is builtins.int:
        return int64 if tensor_dtype is bool else tensor_dtype
    if t is builtins.float:
        if tensor_dtype.kind in "fc":
            return tensor_dtype
        return _default_float[0]
    if t is builtins.complex:
        if tensor_dtype.kind == "c":
            return tensor_dtype
        if tensor_dtype.kind == "f":
            return tensor_dtype.to_complex()
        return _default_float[0].to_complex()
    # numpy scalars and the like: treat by their Python kind
    if isinstance(value, builtins.bool):
        return tensor_dtype
    if isinstance(value, builtins.int):
        return scalar_dtype_for(builtins.int(value), tensor_dtype)
    if isinstance(value, builtins.float):
        return scalar_dtype_for(builtins.float(value), tensor_dtype)
    if isinstance(value, builtins.complex):
        return scalar_dtype_for(builtins.complex(value), tensor_dtype)
    raise TypeError(f"expected a tensor or a Python number, got {type(value).__name__}")


def python_scalar_dtype(value) -> dtype:
    """dtype of a Python scalar standing alone (``polyten.tensor(3.0)``)."""
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, builtins.int):
        return int64
    if isinstance(value, builtins.float):
        return _default_float[0]
    if isinstance(value, builtins.complex):
        return _default_float[0].to_complex()
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def to_dtype(d) -> dtype:
    """Accept a polyten dtype, its name, a NumPy/PyTorch dtype or a Python type."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return _default_float[0]
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool
    if d is builtins.complex:
        return _default_float[0].to_complex()
    name = d if isinstance(d, str) else getattr(d, "name", None)
    if name is None and d is not None:
        name = str(d).replace("torch.", "").replace("<class 'numpy.", "").rstrip("'>")
    if isinstance(name, str):
        name = name.replace("polyten.", "")
        alias = {"half": "float16", "float": "float32", "double": "float64", "short": "int16",
                 "int": "int32", "long": "int64", "cfloat": "complex64",
                 "cdouble": "complex128", "bool_": "bool"}.get(name, name)
        if alias in DTYPES:
            return DTYPES[alias]
    raise TypeError(f"{d!r} is not a polyten dtype; use one of "
                    f"{', '.join('polyten.' + n for n in DTYPES)}")


def result_type(*arrays_and_dtypes) -> dtype:
    """The dtype that results from combining tensors, dtypes and Python scalars.

    Tensors and dtypes promote along the lattice; Python scalars are weak (see module docs).
    """
    strong: Optional[dtype] = None
    scalars = []
    for a in arrays_and_dtypes:
        d = getattr(a, "dtype", None) if not isinstance(a, (dtype, str)) else to_dtype(a)
        if isinstance(a, (builtins.bool, builtins.int, builtins.float, builtins.complex)):
            scalars.append(a)
            continue
        if not isinstance(d, dtype):
            d = to_dtype(d)
        strong = d if strong is None else _PROMOTE[(strong, d)]
    if strong is None:
        if not scalars:
            raise ValueError("result_type: at least one tensor, dtype or scalar is required")
        strong = python_scalar_dtype(scalars[0])
        scalars = scalars[1:]
    for s in scalars:
        strong = scalar_dtype_for(s, strong)
    return strong


_CAST_KIND = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def can_cast(from_, to) -> builtins.bool:
    """Whether a cast from ``from_`` to ``to`` is allowed by the promotion rules (as torch.can_cast):
    no cast to a lower kind (float -> int, complex -> float, int -> bool)."""
    f = getattr(from_, "dtype", from_)
    f, t = to_dtype(f), to_dtype(to)
    return _CAST_KIND[f.kind] <= _CAST_KIND[t.kind]


def isdtype(dtype, kind) -> builtins.bool:
    """Array API ``isdtype``: ``kind`` is a dtype, a kind name ('bool', 'signed integer',
    'unsigned integer', 'integral', 'real floating', 'complex floating', 'numeric') or a tuple."""
    dt = to_dtype(dtype)
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dt, k) for k in kind)
    if isinstance(kind, type(dt)):
        return dt is kind
    table = {"bool": dt.kind == "b", "signed integer": dt.kind == "i",
             "unsigned integer": dt.kind == "u", "integral": dt.kind in "ui",
             "real floating": dt.kind == "f", "complex floating": dt.kind == "c",
             "numeric": dt.kind in "uifc"}
    if kind not in table:
        raise ValueError(f"isdtype: unknown kind {kind!r}; expected one of {list(table)}")
    return table[kind]


def is_floating_point(x) -> builtins.bool:
    return to_dtype(getattr(x, "dtype", x)).is_floating_point


def is_complex(x) -> builtins.bool:
    return to_dtype(getattr(x, "dtype", x)).is_complex


class finfo:
    """Machine limits of a floating dtype (fields as ``torch.finfo`` / Array API ``finfo``)."""

    _TABLE = {
        "float16": (16, 2.0 ** -10, 65504.0, 2.0 ** -14, 2.0 ** -24, 3),
        "bfloat16": (16, 2.0 ** -7, 3.3895313892515355e38, 2.0 ** -126, 2.0 ** -133, 2),
        "float32": (32, 2.0 ** -23, 3.4028234663852886e38, 2.0 ** -126, 2.0 ** -149, 6),
        "float64": (64, 2.0 ** -52, 1.7976931348623157e308, 2.0 ** -1022, 5e-324, 15),
    }

    def __init__(self, type=None):
        d = to_dtype(type if type is not None else _default_float[0])
        if d.kind == "c":
            d = d.to_real()
        if d.kind != "f":
            raise TypeError(f"finfo: {d!r} is not a floating dtype; use iinfo for integers")
        bits, eps, mx, tiny, smallest_sub, prec = self._TABLE[d.name]
        self.dtype, self.bits, self.eps, self.max, self.min = d, bits, eps, mx, -mx
        self.tiny = self.smallest_normal = tiny
        self.smallest_subnormal, self.precision = smallest_sub, prec
        self.resolution = 10.0 ** -prec

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min:.6g}, max={self.max:.6g}, "
                f"eps={self.eps:.6g}, smallest_normal={self.tiny:.6g}, dtype={self.dtype.name})")


class iinfo:
    """Limits of an integer dtype (``bits``, ``min``, ``max``, ``dtype``)."""

    def __init__(self, type):
        d = to_dtype(type)
        if d.kind not in "uib":
            raise TypeError(f"iinfo: {d!r} is not an integer dtype; use finfo for floats")
        self.dtype, self.bits = d, d.itemsize * 8
        if d.kind == "b":
            self.min, self.max = 0, 1
        elif d.kind == "u":
            self.min, self.max = 0, 2 ** self.bits - 1
        else:
            self.min, self.max = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, bits={self.bits}, dtype={self.dtype.name})"
