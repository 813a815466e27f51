"""The type-promotion lattice the suite expects, written down independently of polyten.

This is PyTorch's lattice (which agrees with the Python Array API standard wherever the standard
speaks): ``bool < integers < floating < complex`` across kinds; within integers the smallest
signed type holding both (``uint8`` with ``int8`` is ``int16``); a real float with a complex
keeps the larger precision (``float64`` with ``complex64`` is ``complex128``).  Python scalars
are *weak*: they take the tensor's dtype unless their kind is higher.  Zero-dimensional tensors
are *not* weak (the Array API rule polyten documents), unlike PyTorch, where they are.

The table below is spelled out row by row rather than computed, so that a mistake in polyten's
rules cannot be mirrored by the same mistake here.  The suite's own tests check it against
``torch.promote_types`` where PyTorch is installed.
"""

from __future__ import annotations

from typing import Dict, Iterable, Tuple

__all__ = ["DTYPE_NAMES", "PROMOTION", "promote", "result_dtype", "scalar_result",
           "DEFAULT_FLOAT", "DEFAULT_COMPLEX", "kind", "wide"]

DTYPE_NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
               "float32", "float64", "complex64", "complex128")
DEFAULT_FLOAT = "float32"
DEFAULT_COMPLEX = "complex64"

_B, _U8, _I8, _I16, _I32, _I64 = "bool", "uint8", "int8", "int16", "int32", "int64"
_F16, _BF16, _F32, _F64 = "float16", "bfloat16", "float32", "float64"
_C64, _C128 = "complex64", "complex128"

# row: first operand; columns in DTYPE_NAMES order.  float16 with bfloat16 is float32: neither
# holds the other's range and precision.
_ROWS = {
    _B:    (_B,    _U8,  _I8,  _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _U8:   (_U8,   _U8,  _I16, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _I8:   (_I8,   _I16, _I8,  _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _I16:  (_I16,  _I16, _I16, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _I32:  (_I32,  _I32, _I32, _I32, _I32, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _I64:  (_I64,  _I64, _I64, _I64, _I64, _I64, _F16, _BF16, _F32, _F64, _C64,  _C128),
    _F16:  (_F16,  _F16, _F16, _F16, _F16, _F16, _F16, _F32,  _F32, _F64, _C64,  _C128),
    _BF16: (_BF16, _BF16, _BF16, _BF16, _BF16, _BF16, _F32, _BF16, _F32, _F64, _C64, _C128),
    _F32:  (_F32,  _F32, _F32, _F32, _F32, _F32, _F32, _F32,  _F32, _F64, _C64,  _C128),
    _F64:  (_F64,  _F64, _F64, _F64, _F64, _F64, _F64, _F64,  _F64, _F64, _C128, _C128),
    _C64:  (_C64,  _C64, _C64, _C64, _C64, _C64, _C64, _C64,  _C64, _C128, _C64, _C128),
    _C128: (_C128, _C128, _C128, _C128, _C128, _C128, _C128, _C128, _C128, _C128, _C128,
            _C128),
}

PROMOTION: Dict[Tuple[str, str], str] = {
    (a, b): _ROWS[a][j] for a in DTYPE_NAMES for j, b in enumerate(DTYPE_NAMES)}

# (tensor dtype, Python scalar type) -> result dtype, PyTorch's weak-scalar rule
_SCALAR = {
    bool: {d: d for d in DTYPE_NAMES},
    int: {**{d: d for d in DTYPE_NAMES}, _B: _I64},
    float: {_B: _F32, _U8: _F32, _I8: _F32, _I16: _F32, _I32: _F32, _I64: _F32,
            _F16: _F16, _BF16: _BF16, _F32: _F32, _F64: _F64, _C64: _C64, _C128: _C128},
    # there is no complex32 in polyten: a float16 (bfloat16) tensor with a complex scalar is
    # complex64
    complex: {_B: _C64, _U8: _C64, _I8: _C64, _I16: _C64, _I32: _C64, _I64: _C64,
              _F16: _C64, _BF16: _C64, _F32: _C64, _F64: _C128, _C64: _C64, _C128: _C128},
}


def kind(name: str) -> str:
    """'b', 'u', 'i', 'f' or 'c'."""
    if name == "bool":
        return "b"
    if name == "bfloat16":
        return "f"
    return name[0] if name[0] in "uif" else "c"


def wide(name: str) -> str:
    """The widest dtype of ``name``'s kind: where the suite computes its references."""
    return {"b": "bool", "u": "int64", "i": "int64", "f": "float64",
            "c": "complex128"}[kind(name)]


def promote(a: str, b: str) -> str:
    return PROMOTION[(a, b)]


def scalar_result(tensor_dtype: str, scalar) -> str:
    """Result dtype of a tensor of ``tensor_dtype`` combined with a weak Python scalar."""
    t = type(scalar)
    if t not in _SCALAR:  # numpy scalars: by their Python kind
        for py in (bool, int, float, complex):
            if isinstance(scalar, py):
                t = py
                break
        else:
            import numpy as np
            kinds = {"b": bool, "u": int, "i": int, "f": float, "c": complex}
            t = kinds[np.asarray(scalar).dtype.kind]
    return _SCALAR[t][tensor_dtype]


def result_dtype(dtypes: Iterable[str], scalars: Iterable = ()) -> str:
    """Promote tensor dtypes along the lattice, then apply the weak scalars."""
    out = None
    for d in dtypes:
        out = d if out is None else PROMOTION[(out, d)]
    scalars = list(scalars)
    if out is None:
        if not scalars:
            raise ValueError("result_dtype of nothing")
        s = scalars.pop(0)
        out = {bool: _B, int: _I64, float: DEFAULT_FLOAT, complex: DEFAULT_COMPLEX}[type(s)]
    for s in scalars:
        out = scalar_result(out, s)
    return out
