"""An independent Philox4x32-10 in plain Python integers, written from the paper (Salmon et
al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and checked against Random123's
known-answer vectors, with the value formulas of ``polyten_cuda.philox``: the reference the
stand-in tests (``test_cuda_philox.py``) and the GPU tests (``test_cuda.py``) compare with."""

from __future__ import annotations

import math

M32 = 0xFFFFFFFF


def philox_ref(ctr, key):
    """Philox4x32-10 in plain Python integers."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


# Random123's tests/kat_vectors for philox4x32 10: (counter, key, output)
KAT = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
       ((M32,) * 4, (M32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
       ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]


def blocks(key, offset, n, attempt=0):
    return [philox_ref((i & M32, (i >> 32) | (attempt << 24), offset & M32, offset >> 32),
                       (key & M32, key >> 32)) for i in range(n)]


def lemire(key, offset, i, low, span):
    """Lemire's unbiased multiply-and-reject, two 64-bit candidates per block."""
    for attempt in range(256):
        b = philox_ref((i & M32, (i >> 32) | (attempt << 24), offset & M32, offset >> 32),
                       (key & M32, key >> 32))
        for c in ((b[0] << 32) | b[1], (b[2] << 32) | b[3]):
            if span == 0:
                v = c
            else:
                m = c * span
                lo, v = m & (2 ** 64 - 1), m >> 64
                if lo < span and lo < (2 ** 64 - span) % span:
                    continue
            out = (low + v) % 2 ** 64
            return out - 2 ** 64 if out >= 2 ** 63 else out
    raise AssertionError("no candidate accepted")


def uniform32(key, offset, n):
    return [(b[0] >> 8) * 2.0 ** -24 for b in blocks(key, offset, n)]


def uniform64(key, offset, n):
    return [((b[0] << 32 | b[1]) >> 11) * 2.0 ** -53 for b in blocks(key, offset, n)]


def normal64(key, offset, n):
    out = []
    for b in blocks(key, offset, n):
        u1 = ((b[0] << 32 | b[1]) >> 11) * 2.0 ** -53 + 2.0 ** -53
        u2 = ((b[2] << 32 | b[3]) >> 11) * 2.0 ** -53
        out.append(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))
    return out


def normal32(key, offset, n):
    out = []
    for b in blocks(key, offset, n):
        u1 = (b[0] >> 8) * 2.0 ** -24 + 2.0 ** -24
        u2 = (b[1] >> 8) * 2.0 ** -24
        out.append(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))
    return out


def exponential64(key, offset, n):
    return [-math.log(((b[0] << 32 | b[1]) >> 11) * 2.0 ** -53 + 2.0 ** -53)
            for b in blocks(key, offset, n)]
