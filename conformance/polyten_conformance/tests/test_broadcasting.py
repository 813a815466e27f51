"""Broadcasting, property-based: random broadcastable shapes (Hypothesis, derandomised so every
run and every backend sees the same cases) against NumPy, and non-broadcastable shapes must
raise ValueError naming the op and both shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

SETTINGS = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)

OPS = {"add": np.add, "mul": np.multiply, "maximum": np.maximum, "atan2": np.arctan2,
       "eq": np.equal}


def _shape_code(s):
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


@pytest.mark.parametrize("name", [pytest.param(n, id=n, marks=mark(
    op=n, area="elementwise", tier="core", kernel=n)) for n in OPS])
def test_broadcast_shapes_property(name, conf):
    pt = conf.pt
    fn = conf.need(name)
    ref = OPS[name]
    failures, missing = [], []

    @SETTINGS
    @given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                     min_side=0, max_side=3),
           seed=st.integers(0, 2 ** 16))
    def prop(shapes, seed):
        rng = np.random.default_rng(seed)
        sa, sb = shapes.input_shapes
        a = rng.uniform(-2, 2, sa).astype(np.float32)
        b = rng.uniform(-2, 2, sb).astype(np.float32)
        try:
            out = fn(pt.asarray(a, device=conf.backend), pt.asarray(b, device=conf.backend))
        except Exception as exc:
            why = H.is_missing_error(exc)
            if not why:
                raise
            missing.append(why)
            return
        want = ref(a.astype(np.float64), b.astype(np.float64))
        problems = H.compare(out, want, "bool" if name == "eq" else "float32", conf.device_type)
        if problems and len(failures) < 3:
            failures.append(f"shapes {_shape_code(sa)} and {_shape_code(sb)} (seed {seed}): "
                            + "; ".join(problems))

    prop()
    if missing and not failures:
        H.missing(f"{name}: {missing[0]}")
    if failures:
        raise ConformanceFailure(f"{name}: broadcasting differs from NumPy "
                                 f"(backend {conf.backend!r}):\n  " + "\n  ".join(failures))


@pytest.mark.parametrize("name", [pytest.param(n, id=n, marks=mark(
    op=n, area="elementwise", tier="core", kernel=n)) for n in OPS])
def test_broadcast_errors_property(name, conf):
    pt = conf.pt
    fn = conf.need(name)
    failures, missing = [], []

    @SETTINGS
    @given(sa=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4),
           extra=st.integers(1, 3), where=st.integers(0, 2))
    def prop(sa, extra, where):
        i = where % len(sa)
        sb = list(sa)
        sb[i] = sa[i] + extra  # the sizes differ and neither is 1
        sb = tuple(sb)
        a = pt.asarray(np.ones(sa, np.float32), device=conf.backend)
        b = pt.asarray(np.ones(sb, np.float32), device=conf.backend)
        try:
            fn(a, b)
            msg = "did not raise"
        except ValueError as exc:
            text = str(exc)
            lacking = [w for w in (name, _shape_code(sa), _shape_code(sb)) if w not in text]
            msg = f"message lacks {lacking}: {text}" if lacking else ""
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(why)
                return
            msg = f"raised {type(exc).__name__} instead of ValueError: {exc}"
        if msg and len(failures) < 3:
            failures.append(f"polyten.{name}(ones({_shape_code(sa)}), ones({_shape_code(sb)})): "
                            f"{msg}")

    prop()
    if missing and not failures:
        H.missing(f"{name}: {missing[0]}")
    if failures:
        raise ConformanceFailure(f"{name}: shapes that do not broadcast "
                                 f"(backend {conf.backend!r}):\n  " + "\n  ".join(failures))
