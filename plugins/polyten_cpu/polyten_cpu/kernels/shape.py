"""Shape kernels: views where the array module can make them, copies otherwise.

The core has resolved every shape (no ``-1``), checked every dim and cast every input, so
these are thin calls into ``xp``.  Which results are views is part of the op table's contract
(``reshape``/``permute``/``expand``), and PyTorch's copies stay copies here (NumPy's
``flip`` is a view, ``torch.flip`` is not).
"""

from __future__ import annotations

from ._util import bfloat16_or_void


def kernels(xp, **ctx) -> dict:
    BF16, U16 = bfloat16_or_void(xp), xp.dtype("uint16")

    def reshape(x, shape):
        # a view whenever the strides allow one, else a C-order copy; the method skips the
        # array-function dispatch of xp.reshape
        return x.reshape(shape)

    def permute(x, dims):
        return x.transpose(dims)

    def expand(x, shape):
        # read-only in NumPy: writing through a broadcast view would alias elements (PyTorch
        # refuses that too); the core turns the library's error into its own message
        return xp.broadcast_to(x, shape)

    def concat(xs, dim):
        return xp.concatenate(xs, axis=dim)

    def stack(xs, dim):
        # a reshape per input + one concatenate: cheaper than xp.stack's generic checks
        return xp.concatenate([x.reshape(x.shape[:dim] + (1,) + x.shape[dim:]) for x in xs],
                              axis=dim)

    def flip(x, dims):
        if x.ndim == 0:  # CuPy's flip refuses 0-d arrays; there is nothing to reverse
            return x.copy()
        return xp.flip(x, axis=dims).copy()

    def roll(x, shifts, dims):
        if dims is None:
            return xp.roll(x, shifts[0])
        return xp.roll(x, shifts, axis=dims)

    def tile(x, reps):
        return xp.tile(x, reps)

    # bfloat16 by its bits: CuPy's tril / triu are its where, which has no bfloat16 loop and
    # returns float32 (the zero bits are +0.0)
    def _diagonal(x, k):
        # past the matrix the offset changes nothing; CuPy's tri kernels take it as int32
        return max(-x.shape[-2], min(k, x.shape[-1]))

    def tril(x, k):
        k = _diagonal(x, k)
        if x.dtype == BF16:
            return xp.tril(x.view(U16), k).view(BF16)
        return xp.tril(x, k)

    def triu(x, k):
        k = _diagonal(x, k)
        if x.dtype == BF16:
            return xp.triu(x.view(U16), k).view(BF16)
        return xp.triu(x, k)

    return {"reshape": reshape, "permute": permute, "expand": expand, "concat": concat,
            "stack": stack, "flip": flip, "roll": roll, "tile": tile, "tril": tril,
            "triu": triu}
