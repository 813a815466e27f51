"""Generator states as bytes, for backends built on NumPy's PCG64 (and ``polyten.Generator``).

``polyten.get_rng_state`` and friends hand states around as uint8 tensors; a backend's
``get_rng_state`` hook returns the bytes.  Backends with another generator define their own
layout (the cuda backend's Philox state is its key, offset and seed).  NumPy is imported only
when a state is decoded, so ``import polyten`` stays NumPy-free.
"""

from __future__ import annotations

PCG64_STATE_BYTES = 8 + 16 + 16 + 4 + 4   # seed, PCG64 state, increment, has_uint32, uinteger
_MASK128 = 2 ** 128 - 1


def pcg64_to_bytes(seed: int, bit_generator) -> bytes:
    """``seed`` (the one the stream started from) and a ``numpy.random.PCG64``'s state."""
    st = bit_generator.state
    return (int(seed).to_bytes(8, "little")
            + st["state"]["state"].to_bytes(16, "little")
            + st["state"]["inc"].to_bytes(16, "little")
            + int(st["has_uint32"]).to_bytes(4, "little")
            + int(st["uinteger"]).to_bytes(4, "little"))


def pcg64_decode(raw: bytes):
    """``(seed, state)`` from :func:`pcg64_to_bytes`'s bytes, ``state`` the dict that
    ``numpy.random.PCG64.state`` takes (set it on an existing bit generator: a new one costs a
    seed-sequence hash); ``ValueError`` for bytes of another length."""
    if len(raw) != PCG64_STATE_BYTES:
        raise ValueError(f"expected the {PCG64_STATE_BYTES}-byte state of a PCG64 generator "
                         f"(seed, state, increment, buffered draw), got {len(raw)} bytes")
    seed = int.from_bytes(raw[0:8], "little")
    return seed, {"bit_generator": "PCG64",
                  "state": {"state": int.from_bytes(raw[8:24], "little") & _MASK128,
                            "inc": int.from_bytes(raw[24:40], "little") & _MASK128},
                  "has_uint32": int.from_bytes(raw[40:44], "little"),
                  "uinteger": int.from_bytes(raw[44:48], "little")}


def pcg64_from_bytes(raw: bytes):
    """``(seed, numpy.random.PCG64)`` from :func:`pcg64_to_bytes`'s bytes."""
    import numpy as np
    seed, state = pcg64_decode(raw)
    bitgen = np.random.PCG64(seed)
    bitgen.state = state
    return seed, bitgen
