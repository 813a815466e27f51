"""Type promotion: the suite's own lattice (polyten_conformance.promotion) vs polyten."""

from __future__ import annotations

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance import promotion as P
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

pytestmark = mark(op="promotion", area="promotion", tier="core")

_ACCEPTS = {  # which dtypes each op of the check accepts (the op table's categories)
    "add": lambda d: True,
    "mul": lambda d: True,
    "maximum": lambda d: P.kind(d) != "c",
    "where": lambda d: True,
}


def _ones(pt, dtype, shape, device):
    return pt.asarray(np.ones(shape, dtype=dtype), device=device)


def _check(problems, what, got, want, code):
    if got != want:
        problems.append(f"{what}: {got}, expected {want}\n    reproducer: {code}")


def test_promote_types(dtype_pair, conf):
    """promote_types / result_type and the result dtype of binary ops follow the lattice."""
    a, b = dtype_pair
    pt, dev = conf.pt, conf.backend
    want = P.promote(a, b)
    problems = []
    for fname in ("promote_types", "result_type"):
        f = conf.need(fname)
        try:
            got = f(getattr(pt, a), getattr(pt, b)).name
        except Exception as exc:
            got = f"raised {type(exc).__name__}: {exc}"
        _check(problems, f"polyten.{fname}({a}, {b})", got, want,
               f"polyten.{fname}(polyten.{a}, polyten.{b})")
    x, y = _ones(pt, a, (2, 3), dev), _ones(pt, b, (3,), dev)
    setup = (f"x = polyten.ones((2, 3), dtype=polyten.{a}, device={dev!r}); "
             f"y = polyten.ones(3, dtype=polyten.{b}, device={dev!r}); ")
    for op, ok in _ACCEPTS.items():
        if not (ok(a) and ok(b)):
            continue
        fn = conf.need(op)
        try:
            if op == "where":
                out = fn(_ones(pt, "bool", (2, 3), dev), x, y)
                code = setup + "polyten.where(x > 0, x, y)"
            else:
                out = fn(x, y)
                code = setup + f"polyten.{op}(x, y)"
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                continue
            problems.append(f"{op}({a}, {b}) raised {type(exc).__name__}: {exc}\n"
                            f"    reproducer: {code}")
            continue
        _check(problems, f"{op}({a}, {b}).dtype", out.dtype.name, want, code)
        ref = {"add": 2, "mul": 1, "maximum": 1, "where": 1}[op]
        if out.dtype.name == want:
            problems += H.values_match(H.to_host(out), np.full((2, 3), ref), want,
                                       what=f"{op}({a}, {b}) values")
    cat = getattr(pt, "cat", None)
    if cat is not None:
        try:
            out = cat([x.reshape(-1) if hasattr(x, "reshape") else x, y])
            _check(problems, f"cat([{a}, {b}]).dtype", out.dtype.name, want,
                   setup + "polyten.cat([x.reshape(-1), y])")
        except Exception as exc:
            if not H.is_missing_error(exc):
                problems.append(f"cat([{a}, {b}]) raised {type(exc).__name__}: {exc}")
    eq = conf.need("eq")
    _check(problems, f"eq({a}, {b}).dtype", eq(x, y).dtype.name, "bool", setup + "x == y")
    if problems:
        raise ConformanceFailure(f"promotion of {a} with {b} (backend {conf.backend!r}):\n"
                                 + "\n".join(problems))


def test_weak_python_scalars(scalar_case, conf):
    """Python scalars are weak: ``int8 tensor + 3`` is int8, ``int tensor * 2.5`` float32."""
    dtype, s = scalar_case
    pt, dev = conf.pt, conf.backend
    want = P.scalar_result(dtype, s)
    x = _ones(pt, dtype, (3,), dev)
    setup = f"x = polyten.ones(3, dtype=polyten.{dtype}, device={dev!r}); "
    problems = []
    for label, fn, code in (("x + s", lambda: x + s, f"x + {s!r}"),
                            ("s + x", lambda: s + x, f"{s!r} + x"),
                            ("polyten.mul(x, s)", lambda: pt.mul(x, s), f"polyten.mul(x, {s!r})")):
        try:
            out = fn()
        except Exception as exc:
            why = H.is_missing_error(exc)  # e.g. a complex result on a backend without complex
            if why:
                H.missing(f"{label} with {dtype} x and {type(s).__name__} s: {why}")
            problems.append(f"{label} raised {type(exc).__name__}: {exc}\n"
                            f"    reproducer: {setup}{code}")
            continue
        _check(problems, f"{label} with {dtype} x and {type(s).__name__} s: dtype",
               out.dtype.name, want, setup + code)
        if out.dtype.name == want:
            base = np.ones(3, dtype=np.complex128 if P.kind(want) == "c" else np.float64)
            ref = base + s if "+" in label else base * s
            if P.kind(want) == "b":
                ref = np.ones(3, dtype=bool)
            problems += H.values_match(H.to_host(out), ref, want, what=f"{label} values")
    if problems:
        raise ConformanceFailure(f"weak scalar {s!r} with a {dtype} tensor "
                                 f"(backend {conf.backend!r}):\n" + "\n".join(problems))


def test_zero_dim_tensors_are_not_weak(conf):
    """A 0-d tensor takes part in promotion like any tensor (the Array API rule polyten
    documents; PyTorch treats it as weak)."""
    pt, dev = conf.pt, conf.backend
    problems = []
    for a, b in (("int64", "int8"), ("float64", "float32"), ("float32", "float16"),
                 ("int32", "uint8"), ("complex128", "float32")):
        x, y = _ones(pt, a, (), dev), _ones(pt, b, (3,), dev)
        out = pt.add(x, y)
        _check(problems, f"0-d {a} + (3,) {b}", out.dtype.name, P.promote(a, b),
               f"polyten.ones((), dtype=polyten.{a}) + polyten.ones(3, dtype=polyten.{b})")
    if problems:
        raise ConformanceFailure("\n".join(problems))


_PRESERVING = [
    ("x + 1.5", lambda pt, x: x + 1.5), ("x * 2", lambda pt, x: x * 2),
    ("x / 3", lambda pt, x: x / 3), ("x ** 2", lambda pt, x: x ** 2),
    ("x - x", lambda pt, x: x - x), ("-x", lambda pt, x: -x),
    ("polyten.exp(x)", lambda pt, x: pt.exp(x)), ("polyten.sqrt(x)", lambda pt, x: pt.sqrt(x)),
    ("polyten.sigmoid(x)", lambda pt, x: pt.sigmoid(x)), ("x.abs()", lambda pt, x: x.abs()),
    ("polyten.where(x > 0, x, 0.0)", lambda pt, x: pt.where(x > 0, x, 0.0)),
    ("polyten.clamp(x, 0, 1)", lambda pt, x: pt.clamp(x, 0, 1)),
    ("polyten.sum(x)", lambda pt, x: pt.sum(x)),
    ("polyten.sum(x, dim=1)", lambda pt, x: pt.sum(x, dim=1)),
    ("polyten.mean(x, dim=0)", lambda pt, x: pt.mean(x, dim=0)),
    ("polyten.var(x)", lambda pt, x: pt.var(x)), ("polyten.std(x, dim=1)",
                                                  lambda pt, x: pt.std(x, dim=1)),
    ("polyten.prod(x)", lambda pt, x: pt.prod(x)),
    ("polyten.amax(x, dim=1)", lambda pt, x: pt.amax(x, dim=1)),
    ("polyten.logsumexp(x, dim=1)", lambda pt, x: pt.logsumexp(x, dim=1)),
    ("polyten.cumsum(x, dim=1)", lambda pt, x: pt.cumsum(x, dim=1)),
    ("polyten.linalg.vector_norm(x)", lambda pt, x: pt.linalg.vector_norm(x)),
    ("x @ x.T", lambda pt, x: x @ x.T),
    ("polyten.matmul(x, x.T)", lambda pt, x: pt.matmul(x, x.T)),
    ("polyten.einsum('ij,kj->ik', x, x)", lambda pt, x: pt.einsum("ij,kj->ik", x, x)),
    ("polyten.cat([x, x])", lambda pt, x: pt.cat([x, x])),
    ("x.reshape(-1)", lambda pt, x: x.reshape(-1)), ("x[0]", lambda pt, x: x[0]),
    ("polyten.zeros_like(x)", lambda pt, x: pt.zeros_like(x)),
    ("polyten.linalg.inv(x @ x.T + 3 * I)",
     lambda pt, x: pt.linalg.inv(x @ x.T + 3 * pt.eye(2, dtype=x.dtype))),
]


@mark(op="dtype preservation", area="promotion", tier="core")
def test_float_dtypes_are_preserved(float_dtype, conf):
    """float32 stays float32 (and float16 / float64 stay themselves) through common ops:
    no hidden upcast to float64 in a kernel."""
    dtype_name = float_dtype
    pt, dev = conf.pt, conf.backend
    x = pt.asarray(np.array([[0.5, 1.0, 2.0], [0.25, 1.5, 0.75]], dtype=dtype_name), device=dev)
    bad, missing = [], []
    for code, fn in _PRESERVING:
        try:
            out = fn(pt, x)
        except AttributeError as exc:
            missing.append(f"{code}: {exc}")
            continue
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(f"{code}: {why}")
                continue
            bad.append(f"{code} raised {type(exc).__name__}: {exc}")
            continue
        if out.dtype.name != dtype_name:
            bad.append(f"{code} is {out.dtype.name}")
    if bad:
        raise ConformanceFailure(
            f"{dtype_name} is not preserved (backend {conf.backend!r}); with\n"
            f"    x = polyten.asarray(np.array([[0.5, 1.0, 2.0], [0.25, 1.5, 0.75]], "
            f"dtype={dtype_name!r}), device={dev!r})\n  " + "\n  ".join(bad))
    if missing:
        H.missing("; ".join(missing))
