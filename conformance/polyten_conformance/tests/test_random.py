"""Random numbers: reproducible per seed, right dtype / shape / range, sane statistics.

The values differ between backends (each has its own generator); what every backend must do is
give the same numbers after the same ``polyten.manual_seed``, keep them in range, and honour the
dtype.  The statistics checks use thousands of samples and bounds many standard deviations wide,
and with a fixed seed they are deterministic on a given backend.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure

from .conftest import mark


def _m(op, kernel):
    return mark(op=op, area="random", tier="random", kernel=kernel)


# name -> (kernel, call, dtype without dtype=)
GENERATORS = {
    "rand": ("random_uniform", lambda pt: pt.rand(3, 5), "float32"),
    "randn": ("random_normal", lambda pt: pt.randn(3, 5), "float32"),
    "randint": ("random_integers", lambda pt: pt.randint(0, 10, (3, 5)), "int64"),
    "randperm": ("random_permutation", lambda pt: pt.randperm(12), "int64"),
    "normal": ("random_normal", lambda pt: pt.normal(2.0, 3.0, (3, 5)), "float32"),
    "bernoulli": ("bernoulli", lambda pt: pt.bernoulli(pt.full((3, 5), 0.5)), "float32"),
    "multinomial": ("multinomial",
                    lambda pt: pt.multinomial(pt.ones(8), 4, replacement=False), "int64"),
    "rand_like": ("random_uniform", lambda pt: pt.rand_like(pt.zeros(3, 5)), "float32"),
    "randn_like": ("random_normal", lambda pt: pt.randn_like(pt.zeros(3, 5)), "float32"),
    "nn.functional.dropout": ("dropout",
                lambda pt: pt.nn.functional.dropout(pt.ones(3, 5), 0.5), "float32"),
}


def _params():
    return [pytest.param(n, id=n, marks=_m(n, k)) for n, (k, _, _) in GENERATORS.items()]


@contextlib.contextmanager
def _missing_as(what):
    """Report "not implemented here" (a missing kernel, function or hook) raised in the block
    as missing ``what``; other errors propagate."""
    try:
        yield
    except Exception as exc:
        why = H.is_missing_error(exc)
        if why:
            H.missing(f"{what}: {why}")
        raise


def _call(conf, name):
    conf.need("manual_seed")
    conf.need(name)
    fn = GENERATORS[name][1]

    def draw():
        with _missing_as(name):
            return fn(conf.pt)
    return draw


@pytest.mark.parametrize("name", _params())
def test_manual_seed_reproduces(name, conf):
    """Same seed -> the same sequence; the next draw differs; another seed differs."""
    draw = _call(conf, name)
    pt = conf.pt
    pt.manual_seed(1234)
    a, b = draw(), draw()
    pt.manual_seed(1234)
    a2, b2 = draw(), draw()
    pt.manual_seed(99)
    c = draw()
    ha, hb, ha2, hb2, hc = (H.to_host(t) for t in (a, b, a2, b2, c))
    problems = []
    if not (np.array_equal(ha, ha2) and np.array_equal(hb, hb2)):
        problems.append("manual_seed(1234) twice gave different numbers:\n"
                        f"    first:  {H.fmt_array(ha)}\n    second: {H.fmt_array(ha2)}")
    if np.array_equal(ha, hb):
        problems.append(f"two draws after one seed are equal: {H.fmt_array(ha)}")
    if np.array_equal(ha, hc):
        problems.append(f"seeds 1234 and 99 gave the same numbers: {H.fmt_array(ha)}")
    want = GENERATORS[name][2]
    if a.dtype.name != want:
        problems.append(f"dtype is {a.dtype.name}, expected {want}")
    if a.device.type != conf.backend.split(":")[0]:
        problems.append(f"created on {a.device}, expected backend {conf.backend!r}")
    if problems:
        raise ConformanceFailure(
            f"{name} (kernel {GENERATORS[name][0]!r}; backend {conf.backend!r}):\n  "
            + "\n  ".join(problems) + f"\n  reproducer:\n    import polyten\n"
            f"    polyten.set_backend({conf.backend!r}); polyten.manual_seed(1234)\n"
            f"    # then call {name} twice, reseed, call twice again")


def _fail(name, problems, conf):
    if problems:
        raise ConformanceFailure(f"{name} (backend {conf.backend!r}):\n  "
                                 + "\n  ".join(problems))


@_m("rand", "random_uniform")
def test_rand(float_dtype, conf):
    """Uniform on [0, 1) in each floating dtype the backend stores, mean near 1/2."""
    dtype = float_dtype
    pt = conf.pt
    conf.need("manual_seed")
    rand = conf.need("rand")
    pt.manual_seed(0)
    x = rand(40, 50, dtype=getattr(pt, dtype))
    h = H.to_host(x).astype(np.float64)
    problems = []
    if x.dtype.name != dtype or tuple(x.shape) != (40, 50):
        problems.append(f"rand(40, 50, dtype={dtype}) gave {x.dtype.name} {tuple(x.shape)}")
    if h.min() < 0 or h.max() >= 1:
        problems.append(f"values outside [0, 1): min {h.min()}, max {h.max()}")
    if abs(h.mean() - 0.5) > 0.05 or abs(h.var() - 1 / 12) > 0.02:
        problems.append(f"mean {h.mean():.4f} / variance {h.var():.4f} far from 1/2, 1/12")
    e = rand(0, 3)
    if tuple(e.shape) != (0, 3):
        problems.append(f"rand(0, 3) has shape {tuple(e.shape)}")
    _fail("rand", problems, conf)


@_m("randn", "random_normal")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_randn_and_normal(dtype, conf):
    pt = conf.pt
    conf.need("manual_seed")
    randn, normal = conf.need("randn"), conf.need("normal")
    pt.manual_seed(0)
    x = H.to_host(randn(4000, dtype=getattr(pt, dtype))).astype(np.float64)
    y = normal(2.0, 3.0, (4000,))
    hy = H.to_host(y).astype(np.float64)
    problems = []
    if abs(x.mean()) > 0.1 or abs(x.std() - 1) > 0.1:
        problems.append(f"randn: mean {x.mean():.3f}, std {x.std():.3f} (expected 0, 1)")
    if abs(hy.mean() - 2) > 0.3 or abs(hy.std() - 3) > 0.3:
        problems.append(f"normal(2, 3): mean {hy.mean():.3f}, std {hy.std():.3f}")
    if y.dtype.name != "float32":
        problems.append(f"normal(2.0, 3.0, size) is {y.dtype.name}, expected float32")
    _fail("randn / normal", problems, conf)


@_m("randint", "random_integers")
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "float32"])
def test_randint(dtype, conf):
    """Integers in [low, high): every value reached, none outside."""
    pt = conf.pt
    conf.need("manual_seed")
    randint = conf.need("randint")
    pt.manual_seed(0)
    low = 0 if dtype == "uint8" else -3
    x = randint(low, 5, (2000,), dtype=getattr(pt, dtype))
    h = H.to_host(x)
    problems = []
    if x.dtype.name != dtype:
        problems.append(f"randint(..., dtype={dtype}) is {x.dtype.name}")
    if set(np.unique(h).tolist()) != set(range(low, 5)):
        problems.append(f"values {sorted(set(np.unique(h).tolist()))}, expected all of "
                        f"[{low}, 5)")
    d = randint(7, (3,))
    if d.dtype.name != "int64" or H.to_host(d).min() < 0 or H.to_host(d).max() >= 7:
        problems.append(f"randint(7, (3,)) gave {d.dtype.name} {H.to_host(d)}")
    _fail("randint", problems, conf)


@_m("randperm", "random_permutation")
def test_randperm(conf):
    pt = conf.pt
    conf.need("manual_seed")
    randperm = conf.need("randperm")
    pt.manual_seed(0)
    problems = []
    for n in (0, 1, 10):
        p = randperm(n)
        h = H.to_host(p)
        if p.dtype.name != "int64" or sorted(h.tolist()) != list(range(n)):
            problems.append(f"randperm({n}) = {h!r} ({p.dtype.name}) is not a permutation")
    p = randperm(6, dtype=pt.int32)
    if p.dtype.name != "int32":
        problems.append(f"randperm(6, dtype=int32) is {p.dtype.name}")
    _fail("randperm", problems, conf)


@_m("bernoulli", "bernoulli")
def test_bernoulli(float_dtype, conf):
    """0/1 in p's dtype (each floating dtype the backend stores); p=0 never, p=1 always,
    p=0.3 about 30%; bad p raises."""
    dtype = float_dtype
    pt = conf.pt
    conf.need("manual_seed")
    bern = conf.need("bernoulli")
    pt.manual_seed(0)
    p = pt.asarray(np.array([0.0, 1.0] * 5 + [0.3] * 3990, dtype=dtype), device=conf.backend)
    x = bern(p)
    h = H.to_host(x).astype(np.float64)
    problems = []
    if x.dtype.name != dtype or tuple(x.shape) != (4000,):
        problems.append(f"bernoulli(p) gave {x.dtype.name} {tuple(x.shape)}, expected {dtype} "
                        f"(4000,)")
    if not set(np.unique(h).tolist()) <= {0.0, 1.0}:
        problems.append(f"values other than 0 and 1: {np.unique(h)}")
    if np.any(h[:10:2] != 0) or np.any(h[1:10:2] != 1):
        problems.append(f"p=0 / p=1 not respected: {h[:10]}")
    if abs(h[10:].mean() - 0.3) > 0.05:
        problems.append(f"p=0.3 gave a mean of {h[10:].mean():.3f}")
    try:
        # read on the host: a backend may check values asynchronously (at the next read)
        H.to_host(bern(pt.asarray(np.array([1.5], dtype=dtype), device=conf.backend)))
        problems.append(f"bernoulli(p=1.5) did not raise\n    reproducer: polyten.bernoulli("
                        f"polyten.tensor([1.5], dtype=polyten.{dtype}, device={conf.backend!r}))")
    except ValueError as exc:
        if "bernoulli" not in str(exc):
            problems.append(f"bernoulli(p=1.5): ValueError does not name bernoulli: {exc}")
    except Exception as exc:
        problems.append(f"bernoulli(p=1.5) raised {type(exc).__name__} (expected ValueError): "
                        f"{exc}")
    _fail("bernoulli", problems, conf)


@_m("dropout", "dropout_mask")
def test_dropout(float_dtype, conf):
    """Each element zeroed with probability p, the others scaled by exactly 1 / (1 - p) (in
    the dtype), in each floating dtype; whole channels for dropout2d."""
    dtype = float_dtype
    pt = conf.pt
    conf.need("manual_seed")
    F = conf.need("nn.functional")
    pt.manual_seed(0)
    problems = []
    for p in (0.3, 0.75):
        x = pt.ones(80, 50, dtype=getattr(pt, dtype))
        y = F.dropout(x, p)
        h = H.to_host(y).astype(np.float64)
        scale = float(H.to_host(pt.full((), 1.0 / (1.0 - p), dtype=getattr(pt, dtype))))
        if y.dtype.name != dtype or tuple(y.shape) != (80, 50):
            problems.append(f"dropout(p={p}) gave {y.dtype.name} {tuple(y.shape)}")
            continue
        bad = ~((h == 0) | (h == scale))
        if bad.any():
            problems.append(f"dropout(p={p}): values other than 0 and {scale}: "
                            f"{np.unique(h[bad])[:5]}")
        dropped = float((h == 0).mean())
        if abs(dropped - p) > 0.05:  # 4000 samples: ~7 standard errors
            problems.append(f"dropout(p={p}) zeroed a fraction {dropped:.3f}")
    z = H.to_host(F.dropout2d(pt.ones(40, 30, 4, 4, dtype=getattr(pt, dtype)), 0.5))
    per_channel = z.reshape(40, 30, 16)
    if not (per_channel == per_channel[..., :1]).all():
        problems.append("dropout2d did not zero whole channels")
    _fail("dropout", problems, conf)


# a float product rounded once to the dtype is within this relative distance of the exact one
_HALF_ULP = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "float32": 2.0 ** -24,
             "float64": 2.0 ** -53}


@_m("dropout", "dropout")
def test_dropout_is_x_times_the_mask_in_place_dropout_draws(float_dtype, conf):
    """``F.dropout(x, p)`` (the op table's ``dropout``) gives exactly what in-place dropout
    (``dropout_mask``, then ``mul_``) gives after the same seed -- on a transposed input too --
    which is ``x`` times that mask rounded once, and its gradient is the upstream gradient
    times the same mask."""
    dtype = float_dtype
    pt = conf.pt
    conf.need("manual_seed")
    F = conf.need("nn.functional")
    dt = getattr(pt, dtype)
    rng = np.random.default_rng(0)
    problems = []
    for transposed in (False, True):
        for p in (0.25, 0.6):
            leaf = pt.tensor(rng.standard_normal((30, 40)), dtype=dt, requires_grad=True)
            x = leaf.t() if transposed else leaf
            what = f"dropout(p={p}{', transposed' if transposed else ''})"
            pt.manual_seed(7)
            y = F.dropout(x, p)
            pt.manual_seed(7)
            z = F.dropout(x.detach().clone(), p, inplace=True)
            pt.manual_seed(7)
            m = H.to_host(F.dropout(pt.ones(tuple(x.shape), dtype=dt), p, inplace=True))
            if y.dtype != dt or tuple(y.shape) != tuple(x.shape):
                problems.append(f"{what} gave {y.dtype.name} {tuple(y.shape)}")
                continue
            yh, zh = H.to_host(y.detach()), H.to_host(z)
            if not np.array_equal(yh, zh):
                problems.append(f"{what} differs from in-place dropout after the same seed at "
                                f"{int((yh != zh).sum())} of {yh.size} elements")
            m64 = m.astype(np.float64)
            x64 = H.to_host(x.detach()).astype(np.float64)
            if not np.allclose(yh.astype(np.float64), x64 * m64, rtol=_HALF_ULP[dtype], atol=0):
                problems.append(f"{what} is not x times its mask")
            g = pt.tensor(rng.standard_normal(tuple(x.shape)), dtype=dt)
            y.backward(g)
            gx = H.to_host(leaf.grad).astype(np.float64)
            want = H.to_host(g).astype(np.float64) * m64
            if transposed:
                want = want.T
            if not np.allclose(gx, want, rtol=_HALF_ULP[dtype], atol=0):
                problems.append(f"{what}: the gradient is not the upstream gradient times the "
                                f"mask (max error {np.abs(gx - want).max():.3g})")
    _fail("dropout", problems, conf)


@_m("multinomial", "multinomial")
def test_multinomial(conf):
    pt = conf.pt
    conf.need("manual_seed")
    mult = conf.need("multinomial")
    pt.manual_seed(0)
    w = pt.asarray(np.array([1.0, 0.0, 3.0, 2.0, 0.0, 1.0], dtype="float32"), device=conf.backend)
    problems = []
    x = mult(w, 4)
    h = H.to_host(x)
    if x.dtype.name != "int64" or tuple(x.shape) != (4,):
        problems.append(f"multinomial(w, 4) gave {x.dtype.name} {tuple(x.shape)}")
    elif len(set(h.tolist())) != 4 or {1, 4} & set(h.tolist()):
        problems.append(f"without replacement: repeated or zero-weight indices {h}")
    y = H.to_host(mult(w, 3000, replacement=True))
    freq = np.bincount(y, minlength=6) / 3000
    if freq[1] or freq[4] or abs(freq[2] - 3 / 7) > 0.05:
        problems.append(f"with replacement: frequencies {np.round(freq, 3)}, expected "
                        f"{np.round(np.array([1, 0, 3, 2, 0, 1]) / 7, 3)}")
    b = mult(pt.asarray(np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32"),
                        device=conf.backend), 1)
    if H.to_host(b).tolist() != [[1], [0]]:
        problems.append(f"batched: {H.to_host(b).tolist()}, expected [[1], [0]]")
    try:
        got = H.to_host(mult(w, 5))
        problems.append(
            f"5 samples without replacement from 4 non-zero weights did not raise (returned "
            f"{got.tolist()}, which repeats or picks a zero-weight category); PyTorch raises\n"
            f"    reproducer: polyten.multinomial(polyten.tensor([1.0, 0.0, 3.0, 2.0, 0.0, 1.0], "
            f"device={conf.backend!r}), 5)")
    except (ValueError, RuntimeError) as exc:
        if "multinomial" not in str(exc):
            problems.append(f"the error does not name multinomial: {exc}")
    _fail("multinomial", problems, conf)


@_m("get_rng_state", None)
def test_generator_state_round_trip(conf):
    """``polyten.get_rng_state(device=...)`` / ``set_rng_state``: the backend's hooks save its
    generator and bring back every sampler's stream; a state of the wrong size is refused with
    a ValueError that names the call."""
    pt = conf.pt
    conf.need("manual_seed")
    get, put = conf.need("get_rng_state"), conf.need("set_rng_state")
    dev = conf.backend

    def draws():
        return [H.to_host(x) for x in (
            pt.rand(6, device=dev), pt.randn(2, 3, device=dev),
            pt.randint(0, 100, (8,), device=dev), pt.randperm(9, device=dev),
            pt.bernoulli(pt.full((8,), 0.5, device=dev)))]

    pt.manual_seed(321)
    with _missing_as("get_rng_state"):
        pt.rand(3, device=dev)  # a backend without the random tier is reported for that
        state = get(device=dev)
    problems = []
    if state.dtype.name != "uint8" or state.ndim != 1 or state.device.type != "cpu":
        problems.append(f"get_rng_state gave a {state.dtype.name} tensor of shape "
                        f"{tuple(state.shape)} on {state.device}, expected 1-D uint8 on cpu")
    first = draws()
    put(state, device=dev)
    again = draws()
    for name, a, b in zip(("rand", "randn", "randint", "randperm", "bernoulli"), first, again):
        if not np.array_equal(a, b):
            problems.append(f"{name} after set_rng_state differs:\n    first: "
                            f"{H.fmt_array(a)}\n    again: {H.fmt_array(b)}")
    bad = pt.zeros(int(state.shape[0]) + 1, dtype=pt.uint8)
    try:
        put(bad, device=dev)
        problems.append(f"set_rng_state accepted {int(bad.shape[0])} bytes, one more than "
                        f"get_rng_state returns; it must raise ValueError")
    except ValueError as exc:
        if "set_rng_state" not in str(exc):
            problems.append(f"the error does not name set_rng_state: {exc}")
    if problems:
        raise ConformanceFailure(
            f"generator state (backend {conf.backend!r}):\n  " + "\n  ".join(problems)
            + f"\n  reproducer:\n    import polyten\n    s = polyten.get_rng_state(device="
            f"{dev!r}); a = polyten.rand(6, device={dev!r})\n    polyten.set_rng_state(s, "
            f"device={dev!r}); assert (polyten.rand(6, device={dev!r}) == a).all()")


@_m("Generator", None)
def test_generator_argument(conf):
    """``generator=polyten.Generator(device=...)``: a stream of its own on the backend (built
    on its state hooks), reproducible from its seed, leaving the default generator alone."""
    pt = conf.pt
    conf.need("manual_seed")
    Gen = conf.need("Generator")
    dev = conf.backend
    with _missing_as("generator="):
        pt.rand(3, device=dev)  # a backend without the random tier is reported for that
        g = Gen(device=dev).manual_seed(7)
        a = H.to_host(pt.randn(20, device=dev, generator=g))
    problems = []
    b = H.to_host(pt.randn(20, device=dev, generator=g))
    g.manual_seed(7)
    if not np.array_equal(H.to_host(pt.randn(20, device=dev, generator=g)), a):
        problems.append("reseeding the generator with 7 did not repeat its first draw")
    if np.array_equal(a, b):
        problems.append("two draws from one generator are equal")
    pt.manual_seed(3)
    x = H.to_host(pt.rand(10, device=dev))
    pt.manual_seed(3)
    pt.rand(10, device=dev, generator=Gen(device=dev).manual_seed(11))
    if not np.array_equal(H.to_host(pt.rand(10, device=dev)), x):
        problems.append("drawing from a generator moved the default generator's stream")
    _fail("generator=", problems, conf)
