"""Random kernels, drawing from the backend's generator ``ctx["rng"].gen``.

``rng.gen`` is read on every call (never cached): ``polyten.manual_seed`` replaces the
generator, and on CuPy ``gen`` is the current device's generator.  Only the Generator methods
NumPy and CuPy share are used (``random``, ``standard_normal``, ``standard_exponential``,
``integers``).  float32 samples are drawn as float32 (no float64 round trip); float16 and
bfloat16 have no native sampler, so they are drawn in float32 and rounded (uniform samples are
drawn on the dtype's grid so that they stay below ``high``).
"""

from __future__ import annotations

_INT64_MAX = 2 ** 63 - 1


def kernels(xp, **ctx) -> dict:
    rng = ctx["rng"]
    _NATIVE_FLOAT = ("float32", "float64")
    _GRID = {"float16": 2048, "bfloat16": 256}  # 2 ** significand bits

    def _unit(shape, dtype):
        gen = rng.gen
        if dtype in _NATIVE_FLOAT:
            return gen.random(shape, dtype=dtype)
        # float16 (bfloat16): multiples of 2**-11 (2**-8) in [0, 1), exactly representable, so
        # never rounded to 1
        n = _GRID[dtype]
        return (gen.integers(0, n, size=shape, dtype="int64").astype("float32")
                * (1.0 / n)).astype(dtype)

    def random_uniform(shape, low, high, dtype, device_index):
        out = _unit(shape, dtype)
        if low != 0 or high != 1:
            if dtype in _GRID:
                out = (out.astype("float32") * (high - low) + low).astype(dtype)
            else:
                out *= high - low
                out += low
        return out

    def random_normal(shape, mean, std, dtype, device_index):
        gen = rng.gen
        work = dtype if dtype in _NATIVE_FLOAT else "float32"
        out = gen.standard_normal(shape, dtype=work)
        if std != 1:
            out *= std
        if mean != 0:
            out += mean
        return out if work == dtype else out.astype(dtype)

    def random_integers(shape, low, high, dtype, device_index):
        gen = rng.gen
        if high > _INT64_MAX:  # [low, 2**63) written inclusively: high itself is not an int64
            out = gen.integers(low, high - 1, size=shape, dtype="int64", endpoint=True)
        else:
            out = gen.integers(low, high, size=shape, dtype="int64")
        return out if dtype == "int64" else out.astype(dtype)

    def random_permutation(n, dtype, device_index):
        gen = rng.gen
        perm = getattr(gen, "permutation", None)
        if perm is not None:
            out = perm(n)
        else:  # CuPy's Generator has no permutation: sort random keys instead
            out = xp.argsort(gen.random(n))
        return out.astype(dtype, copy=False)

    def bernoulli(p):
        work = p.dtype if p.dtype.name in _NATIVE_FLOAT else xp.float32
        u = rng.gen.random(p.shape, dtype=work)
        # u < p: p == 0 never fires, p == 1 always does (u is in [0, 1))
        return (u < p).astype(p.dtype)

    def multinomial(x, num_samples, replacement):
        gen = rng.gen
        w = x.astype("float64")
        squeeze = w.ndim == 1
        if squeeze:
            w = w[None, :]
        rows, n = w.shape
        if replacement:
            cdf = xp.cumsum(w, axis=1)
            total = cdf[:, -1:]
            u = gen.random((rows, num_samples)) * total
            out = xp.empty((rows, num_samples), dtype="int64")
            # the last category with positive weight: u * total can round up to total
            last = n - 1 - xp.argmax((w > 0)[:, ::-1], axis=1)
            for r in range(rows):
                out[r] = xp.searchsorted(cdf[r], u[r], side="right")
            out = xp.minimum(out, last[:, None])
        else:
            # exponential races: category i finishes at E_i / w_i; the first num_samples to
            # finish are a weighted sample without replacement (zero weights finish last)
            e = gen.standard_exponential((rows, n))
            pos = w > 0
            keys = xp.where(pos, e / xp.where(pos, w, 1.0), xp.inf)
            out = xp.argsort(keys, axis=1, kind="stable")[:, :num_samples].astype("int64")
        return out[0] if squeeze else out

    return {"random_uniform": random_uniform, "random_normal": random_normal,
            "random_integers": random_integers, "random_permutation": random_permutation,
            "bernoulli": bernoulli, "multinomial": multinomial}
