"""Sample-input generators shared by the op database.

Values are drawn from small ranges ("domains") so that integer results never overflow and
floating results stay well inside float16's range; shapes are small (the whole suite runs in
seconds) but cover 0-d, empty, broadcast and non-contiguous (transposed, strided) inputs.
"""

from __future__ import annotations

from typing import List

import numpy as np

from . import promotion as P
from .harness import Arr, Sample

# domain -> (float low, float high, int low, int high, uint low, uint high); ranges inclusive
DOMAINS = {
    "any": (-3.0, 3.0, -9, 9, 0, 9),
    "small": (-2.0, 2.0, -3, 3, 0, 3),
    "pos": (0.1, 3.0, 1, 9, 1, 9),
    "nonneg": (0.0, 3.0, 0, 9, 0, 9),
    "unit": (-0.95, 0.95, -1, 1, 0, 1),
    "ge1": (1.05, 3.0, 1, 9, 1, 9),
    "nonzero": (0.5, 3.0, 1, 9, 1, 9),   # magnitude; sign random
    "shift": (0.0, 3.0, 0, 3, 0, 3),
    "pow_exp": (-2.0, 2.0, 0, 3, 0, 3),
    "prod": (0.5, 1.5, -2, 2, 0, 2),
    "grid": (-3.0, 3.0, -9, 9, 0, 9),    # floats on a 1/4 grid: exact in every float dtype
    "gridnz": (0.25, 3.0, 1, 9, 1, 9),   # nonzero, 1/4 grid, sign random
}


def make(rng, shape, dtype: str, domain: str = "any") -> np.ndarray:
    """Random values of ``dtype`` and ``shape`` from ``domain``."""
    flo, fhi, ilo, ihi, ulo, uhi = DOMAINS[domain]
    k = P.kind(dtype)
    shape = tuple(shape)
    signed = domain in ("nonzero", "gridnz")
    if k == "b":
        if domain in ("nonzero", "gridnz", "pos", "ge1"):
            return np.ones(shape, dtype=bool)
        return rng.random(shape) < 0.5
    if k in "ui":
        lo, hi = (ulo, uhi) if k == "u" else (ilo, ihi)
        v = rng.integers(lo, hi + 1, size=shape)
        if signed and k == "i":
            v = v * rng.choice([-1, 1], size=shape)
        return v.astype(dtype)
    if domain in ("grid", "gridnz"):
        v = rng.integers(int(flo * 4), int(fhi * 4) + 1, size=shape) / 4.0
    else:
        v = rng.uniform(flo, fhi, size=shape)
    if signed:
        v = v * rng.choice([-1.0, 1.0], size=shape)
    if k == "c":
        im = rng.uniform(-1.0, 1.0, size=shape)
        if domain in ("grid", "gridnz"):
            im = np.round(im * 4) / 4
        v = v + 1j * im
    return np.asarray(v).astype(dtype)


def scalar(rng, dtype: str, domain: str = "any"):
    """A Python number of ``dtype``'s kind (a weak operand that does not change the dtype)."""
    v = make(rng, (), dtype, domain)[()]
    k = P.kind(dtype)
    if k == "b":
        return bool(v)
    if k in "ui":
        return int(v)
    if k == "f":
        return float(v)
    return complex(v)


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5]


def special(dtype: str) -> np.ndarray:
    v = np.array(SPECIAL)
    if P.kind(dtype) == "c":
        v = v + 1j * np.array([0.0, 1.0, np.nan, -1.0, 0.0, np.inf, 2.0])
    return v.astype(dtype)


# ----------------------------------------------------------------------------- unary -----
def unary(dtype: str, rng, domain: str = "any", special_values: bool = False,
          **kwargs) -> List[Sample]:
    m = lambda shape: make(rng, shape, dtype, domain)  # noqa: E731
    out = [
        Sample(Arr(m(())), desc="0-d", **kwargs),
        Sample(Arr(m((0,))), desc="empty", **kwargs),
        Sample(Arr(m((5,))), desc="1-d", **kwargs),
        Sample(Arr(m((2, 3))), desc="2-d", **kwargs),
        Sample(Arr(m((2, 1, 4))), desc="3-d", **kwargs),
        Sample(Arr(m((3, 4)), "transposed"), desc="transposed", **kwargs),
        Sample(Arr(m((2, 3)), "strided"), desc="strided", **kwargs),
    ]
    if special_values and P.kind(dtype) in "fc":
        out.append(Sample(Arr(special(dtype)), desc="nan/inf/-0", **kwargs))
    return out


# ---------------------------------------------------------------------------- binary -----
BINARY_SHAPES = [
    ("0-d", (), ()),
    ("same shape", (5,), (5,)),
    ("2-d", (2, 3), (2, 3)),
    ("broadcast row", (2, 3), (3,)),
    ("broadcast outer", (2, 1), (1, 3)),
    ("0-d with 2-d", (), (2, 3)),
    ("empty", (0, 3), (3,)),
]


def binary(dtype: str, rng, dx: str = "any", dy: str = "any", scalars: bool = True,
           reflected: bool = True, special_values: bool = False, **kwargs) -> List[Sample]:
    mx = lambda shape: make(rng, shape, dtype, dx)  # noqa: E731
    my = lambda shape: make(rng, shape, dtype, dy)  # noqa: E731
    out = []
    for desc, sx, sy in BINARY_SHAPES:
        out.append(Sample(Arr(mx(sx)), Arr(my(sy)), desc=desc, **kwargs))
    out.append(Sample(Arr(mx((2, 3)), "transposed"), Arr(my((2, 3))),
                      desc="transposed x", **kwargs))
    out.append(Sample(Arr(mx((2, 3))), Arr(my((2, 3)), "strided"), desc="strided y",
                      **kwargs))
    if scalars:
        out.append(Sample(Arr(mx((2, 3))), scalar(rng, dtype, dy), desc="tensor, scalar",
                          **kwargs))
        if reflected:
            out.append(Sample(scalar(rng, dtype, dx), Arr(my((3,))), desc="scalar, tensor",
                              **kwargs))
    if special_values and P.kind(dtype) in "fc":
        s = special(dtype)
        out.append(Sample(Arr(s), Arr(s[::-1].copy()), desc="nan/inf", **kwargs))
    return out


# ------------------------------------------------------------------------- reductions -----
def reduction(dtype: str, rng, domain: str = "any", empty_all: bool = True,
              multi_dim: bool = True, axis_alias: bool = True, **kw) -> List[Sample]:
    m = lambda shape: make(rng, shape, dtype, domain)  # noqa: E731
    out = [
        Sample(Arr(m(())), desc="0-d", **kw),
        Sample(Arr(m((5,))), desc="all", **kw),
        Sample(Arr(m((5,))), dim=0, desc="dim=0", **kw),
        Sample(Arr(m((2, 3, 4))), desc="all of 3-d", **kw),
        Sample(Arr(m((2, 3, 4))), dim=1, desc="dim=1", **kw),
        Sample(Arr(m((2, 3, 4))), dim=-1, keepdim=True, desc="dim=-1 keepdim", **kw),
        Sample(Arr(m((3, 4)), "transposed"), dim=0, desc="transposed", **kw),
        Sample(Arr(m((2, 4)), "strided"), dim=1, desc="strided", **kw),
        Sample(Arr(m((0, 3))), dim=1, desc="empty, non-empty dim", **kw),
    ]
    if multi_dim:
        out.append(Sample(Arr(m((2, 3, 4))), dim=(0, 2), keepdim=True,
                          desc="dims (0, 2) keepdim", **kw))
    if axis_alias:
        out.append(Sample(Arr(m((2, 3))), axis=1, desc="axis= alias", **kw))
    if empty_all:
        out.append(Sample(Arr(m((0, 3))), dim=0, desc="reduce an empty dim", **kw))
        out.append(Sample(Arr(m((0,))), desc="all of empty", **kw))
    return out


def np_axis(dim=None, axis=None):
    d = axis if dim is None else dim
    if isinstance(d, list):
        d = tuple(d)
    return d
