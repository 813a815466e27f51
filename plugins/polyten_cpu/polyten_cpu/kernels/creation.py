"""Creation kernels: filled arrays, ranges, identity matrices and conversion from Python data.

The core has validated every argument (shapes non-negative, ranges consistent with the step,
values representable in the dtype), so these are thin calls into the array module.  Ranges are
computed in float64 and cast once, so every float dtype gets ``start + i * step`` rounded once
(as PyTorch does), whatever the array module's own ``arange`` accumulation would give.
"""

from __future__ import annotations

import math

from ._util import full_signed, negative_zero


_INEXACT = frozenset(("float16", "bfloat16", "float32", "float64", "complex64", "complex128"))


def kernels(xp, **ctx) -> dict:
    # NumPy: np.full is a Python function around empty + copyto that costs ~0.3 us more than
    # empty + fill (the seed of every loss.backward() is one); for floating dtypes the two
    # convert every value alike (for integers they differ only on values the core rejects)
    fill_fast = xp.__name__ == "numpy"

    def full(shape, value, dtype, device_index):
        if value == 0 and not negative_zero(value):
            return xp.zeros(shape, dtype=dtype)  # calloc: several times faster than full
        if fill_fast and dtype in _INEXACT:
            a = xp.empty(shape, dtype=dtype)
            a.fill(value)
            return a
        return full_signed(xp, shape, value, dtype)

    def empty(shape, dtype, device_index):
        return xp.empty(shape, dtype=dtype)

    def asarray(obj, dtype, copy, device_index):
        if not fill_fast and obj.__class__ is not xp.ndarray:  # host data (no device read)
            v = obj.item() if getattr(obj, "ndim", None) == 0 else obj
            if negative_zero(v):  # CuPy makes a 0-d array with fill(): a memset for a zero
                return full_signed(xp, (), v, dtype if dtype is not None else obj.dtype)
        if copy:
            return xp.array(obj, dtype=dtype, copy=True)
        return xp.asarray(obj, dtype=dtype)

    def arange(start, stop, step, dtype, device_index):
        if dtype in ("float16", "bfloat16", "float32", "float64"):
            n = max(0, math.ceil((stop - start) / step))
            out = xp.arange(n, dtype="float64")
            if step != 1:
                out *= step
            if start != 0:
                out += start
            return out if dtype == "float64" else out.astype(dtype)
        # integers: exact in int64, then narrowed (the core checked the values fit)
        out = xp.arange(start, stop, step, dtype="int64")
        return out if dtype == "int64" else out.astype(dtype)

    def linspace(start, stop, num, dtype, device_index):
        work = "complex128" if dtype in ("complex64", "complex128") else "float64"
        if num <= 1:
            out = full_signed(xp, num, start, work)
        else:
            # symmetric, as PyTorch: the first half counts up from start, the second half
            # down from stop, so both ends are exact and errors do not pile up at one end
            step = (stop - start) / (num - 1)
            i = xp.arange(num, dtype=work)
            out = i * step
            out += start
            half = num // 2
            out[half:] = stop - (num - 1 - i[half:]) * step
        return out if dtype == work else out.astype(dtype)

    def eye(n, m, k, dtype, device_index):
        return xp.eye(n, m, k, dtype=dtype)

    return {"full": full, "empty": empty, "asarray": asarray, "arange": arange,
            "linspace": linspace, "eye": eye}
