"""Views share memory where PyTorch's do: a write to the base shows through the view, and a
write through the view shows in the base.

Writes go through polyten's own in-place API (``x.add_``), so the check is the same on every
backend.  Each case pairs a polyten call with the NumPy view that has the same elements.
"""

from __future__ import annotations

import numpy as np
import pytest

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

# name, op-table kernel, polyten call, NumPy view, writable through the view
VIEWS = [
    ("reshape", "reshape", lambda x: x.reshape(6, 4), lambda a: a.reshape(6, 4), True),
    ("Tensor.view", "reshape", lambda x: x.view(4, 6), lambda a: a.reshape(4, 6), True),
    ("flatten", "reshape", lambda x: x.flatten(), lambda a: a.reshape(-1), True),
    ("permute", "permute", lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), True),
    ("transpose", "permute", lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2), True),
    ("movedim", "permute", lambda x: x.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1), True),
    ("Tensor.mT", "permute", lambda x: x.mT, lambda a: a.swapaxes(-1, -2), True),
    ("unsqueeze", "reshape", lambda x: x.unsqueeze(1), lambda a: a[:, None], True),
    ("squeeze", "reshape", lambda x: x[:, :1].squeeze(1), lambda a: a[:, 0], True),
    ("Tensor.expand", "expand", lambda x: x[:1].expand(3, 3, 4), lambda a: np.broadcast_to(
        a[:1], (3, 3, 4)), False),
    ("narrow", "getitem", lambda x: x.narrow(2, 1, 2), lambda a: a[:, :, 1:3], True),
    ("getitem slice", "getitem", lambda x: x[1, ::2], lambda a: a[1, ::2], True),
    ("getitem int", "getitem", lambda x: x[0], lambda a: a[0], True),
    ("split", "getitem", lambda x: x.split(2, dim=2)[1], lambda a: a[:, :, 2:4], True),
    ("chunk", "getitem", lambda x: x.chunk(3, dim=1)[2], lambda a: a[:, 2:3], True),
    ("unbind", "getitem", lambda x: x.unbind(0)[1], lambda a: a[1], True),
    ("diagonal", "diagonal", lambda x: x.diagonal(0, 1, 2), lambda a: np.diagonal(
        a, 0, 1, 2), False),
]


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c[0], marks=mark(op=c[0], area="views", tier="core", kernel=c[1]))
    for c in VIEWS])
def test_view_shares_memory(case, conf):
    name, _, call, np_view, writable = case
    pt = conf.pt
    conf.need("Tensor.add_")
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = pt.asarray(base.copy(), device=conf.backend)
    try:
        v = call(x)
    except AttributeError as exc:
        H.missing(f"{name}: {exc}")
    except Exception as exc:
        if H.is_missing_error(exc):
            H.missing(f"{name}: {H.is_missing_error(exc)}")
        raise
    problems = []
    want = np_view(base)
    if tuple(v.shape) != want.shape:
        problems.append(f"shape {tuple(v.shape)}, expected {want.shape}")
    else:
        x.add_(100)
        after = np_view(base + 100)
        if not np.array_equal(H.to_host(v), after):
            problems.append("x.add_(100) does not show through the view: it is a copy, "
                            "where PyTorch returns a view")
        elif writable:
            v.add_(1000)
            expect = base + 100
            np_view(expect)[...] += 1000
            if not np.array_equal(H.to_host(x), expect):
                problems.append("v.add_(1000) on the view does not show in the base")
    if problems:
        raise ConformanceFailure(
            f"{name} must return a view (backend {conf.backend!r}):\n  "
            + "\n  ".join(problems) + "\n  reproducer:\n    import numpy as np, polyten\n"
            f"    x = polyten.asarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4), "
            f"device={conf.backend!r})\n    v = <{name} of x>; x.add_(100); print(v)")
