"""``polyten.fft``: every function against NumPy (float64 / complex128, computed here) and
PyTorch; dtype rules, norm modes, n / s padding and trimming, negative dims, gradients
(gradcheck, gradgradcheck, PyTorch's first and second derivatives) and error messages."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import zlib

import numpy as np
import pytest

import polyten as pt
from polyten.autograd import gradcheck, gradgradcheck

ROOT = pathlib.Path(__file__).resolve().parent.parent
NORMS = [None, "backward", "ortho", "forward"]
ONE_D = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_D = ["fftn", "ifftn", "fft2", "ifft2", "rfftn", "irfftn", "rfft2", "irfft2"]
REAL_INPUT = {"rfft", "ihfft", "rfftn", "rfft2"}
C2R = {"irfft", "hfft", "irfftn", "irfft2"}
TWO_D = {"fft2", "ifft2", "rfft2", "irfft2"}


def _rng(*parts):
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def _data(name, shape, *key):
    """The input of ``name``: real for the real-input transforms, else complex128."""
    rng = _rng(name, shape, *key)
    x = rng.standard_normal(shape)
    if name in REAL_INPUT:
        return x
    return x + 1j * rng.standard_normal(shape)


def _close(got, want, rtol=1e-10, atol=1e-10):
    got = got.numpy() if isinstance(got, pt.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * max(1.0, np.abs(want).max(
        initial=0.0)))


def _torch():
    return pytest.importorskip("torch")


# ----------------------------------------------------------------------- the module ---
def test_polyten_fft_is_imported_on_first_use_without_numpy():
    code = ("import sys, polyten\n"
            "assert 'polyten.fft' not in sys.modules and 'polyten.api.fft' not in sys.modules\n"
            "assert 'numpy' not in sys.modules\n"
            "m = polyten.fft\n"
            "assert sys.modules['polyten.fft'] is m, m\n"
            "assert 'numpy' not in sys.modules, 'polyten.fft imported numpy'\n"
            "from polyten import fft\n"
            "import polyten.fft as f2\n"
            "assert fft is m and f2 is m and callable(m.rfft)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_namespace_has_torch_fft_functions():
    # the Hermitian n-dim transforms (NumPy has none) are tested in test_fft_linalg_gaps.py
    names = set(ONE_D + N_D + ["fftfreq", "rfftfreq", "fftshift", "ifftshift", "hfftn",
                               "ihfftn", "hfft2", "ihfft2"])
    assert set(pt.fft.__all__) == names
    for n in names:
        fn = getattr(pt.fft, n)
        assert fn.__doc__ and "torch.fft." + n in fn.__doc__, n


def test_signatures_and_defaults_are_torch_s():
    # torch.fft's documented signatures (its builtins have no inspectable one)
    import inspect
    for n in ONE_D + N_D:
        mine = inspect.signature(getattr(pt.fft, n))
        assert list(mine.parameters) == ["input", "n" if n in ONE_D else "s", "dim", "norm"]
        p = mine.parameters
        assert p["dim"].default == (-1 if n in ONE_D else (-2, -1) if n in TWO_D else None), n
        assert p["n" if n in ONE_D else "s"].default is None and p["norm"].default is None
    for n in ("fftfreq", "rfftfreq"):
        p = inspect.signature(getattr(pt.fft, n)).parameters
        assert list(p) == ["n", "d", "dtype", "device", "requires_grad"] and p["d"].default == 1
    for n in ("fftshift", "ifftshift"):
        assert list(inspect.signature(getattr(pt.fft, n)).parameters) == ["input", "dim"]


# ------------------------------------------------------------------ values: NumPy ---
ONE_D_CASES = [((8,), None, -1), ((3, 5), None, -1), ((3, 5), 8, -1), ((4, 6), 3, 0),
               ((2, 3, 4), None, -2), ((2, 3, 4), 5, 1), ((5,), 1, 0), ((3, 4), 7, -1)]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, n, dim", ONE_D_CASES)
@pytest.mark.parametrize("name", ONE_D)
def test_one_dim_matches_numpy(name, shape, n, dim, norm):
    x = _data(name, shape, n, dim)
    want = getattr(np.fft, name)(x, n=n, axis=dim, norm=norm)
    got = getattr(pt.fft, name)(pt.tensor(x), n=n, dim=dim, norm=norm)
    assert got.dtype == (pt.float64 if name in C2R else pt.complex128)
    _close(got, want)


def _np_nd(name, x, s, dim):
    """numpy's ``(s, axes)`` for a torch n-dim call: -1 in s resolved, an int dim a tuple."""
    axes = None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    if s is not None:
        s = (s,) if isinstance(s, int) else tuple(s)
        axes = axes if axes is not None else tuple(range(x.ndim - len(s), x.ndim))
        last = len(s) - 1
        s = tuple(v if v != -1 else (2 * (x.shape[a] - 1) if name in C2R and i == last
                                      else x.shape[a]) for i, (a, v) in enumerate(zip(axes, s)))
    if axes is None and name in TWO_D:
        axes = (-2, -1)
    return s, axes


N_D_CASES = [((3, 4), None, "default"), ((2, 3, 4), (4, 2), "default"),
             ((2, 3, 4), None, (0, 2)), ((2, 3, 4), (3, -1), (2, 0)),
             ((2, 3, 4), (5, 3), (-1, -3)), ((2, 3, 5), (6,), (1,)), ((2, 3, 4), None, 1),
             ((2, 3, 4), (3, 5, 6), None)]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, s, dim", N_D_CASES)
@pytest.mark.parametrize("name", N_D)
def test_n_dim_matches_numpy(name, shape, s, dim, norm):
    if name in TWO_D and dim != "default" and (dim is None or isinstance(dim, int) or
                                               len(dim) != 2):
        dim = (0, -1)  # fft2 and friends take two dims; keep the case meaningful
        s = None if s is None or len(s) != 2 else s
    x = _data(name, shape, s, dim)
    kw = {} if dim == "default" else {"dim": dim}
    ns, axes = _np_nd(name, x, s, None if dim == "default" else dim)
    want = getattr(np.fft, name)(x, s=ns, axes=axes, norm=norm)
    got = getattr(pt.fft, name)(pt.tensor(x), s=s, norm=norm, **kw)
    assert got.dtype == (pt.float64 if name in C2R else pt.complex128)
    _close(got, want)


@pytest.mark.parametrize("name", ["fft", "ifft", "irfft", "hfft"])
def test_real_input_is_transformed_as_complex(name):
    x = _rng(name).standard_normal((3, 6))
    got = getattr(pt.fft, name)(pt.tensor(x), n=5 if name in C2R else None)
    _close(got, getattr(np.fft, name)(x.astype(complex), n=5 if name in C2R else None))
    for n in ("fftn", "ifftn", "irfftn"):
        _close(getattr(pt.fft, n)(pt.tensor(x)), getattr(np.fft, n)(x.astype(complex)))


def test_non_contiguous_inputs():
    x = _rng("nc").standard_normal((6, 5)) + 1j * _rng("nc2").standard_normal((6, 5))
    t = pt.tensor(x)
    _close(pt.fft.fft(t.mT), np.fft.fft(x.T))
    _close(pt.fft.fftn(t[::2, 1:], dim=(0, 1)), np.fft.fftn(x[::2, 1:]))
    _close(pt.fft.rfft(t.real.mT, dim=0), np.fft.rfft(x.real.T, axis=0))
    _close(pt.fft.irfftn(t[:, ::2]), np.fft.irfftn(x[:, ::2]))


def test_empty_batch_and_zero_dims():
    x = np.zeros((0, 4))
    assert pt.fft.fft(pt.tensor(x)).shape == (0, 4)
    assert pt.fft.rfft(pt.tensor(x)).shape == (0, 3)
    assert pt.fft.irfft(pt.tensor(x)).shape == (0, 6)
    assert pt.fft.irfftn(pt.tensor(np.zeros((0, 3, 4))), dim=(1, 2)).shape == (0, 3, 6)
    # nothing to transform: the input as complex (torch.fft.fftn of a 0-d tensor)
    z = pt.fft.fftn(pt.tensor(3.0))
    assert z.dtype == pt.complex64 and z.item() == 3 + 0j
    c = pt.tensor([1 + 2j, 3j])
    y = pt.fft.fftn(c, dim=())
    assert y is not c and y.tolist() == c.tolist()


# --------------------------------------------------------------- values: PyTorch ---
@pytest.mark.parametrize("name, dtype", [
    (n, d) for n in ONE_D + N_D for d in ("float32", "float64", "complex64", "complex128")
    if not (n in REAL_INPUT and d.startswith("complex"))])
def test_matches_torch(name, dtype):
    torch = _torch()
    rng = _rng("torch", name, dtype)
    x = rng.standard_normal((3, 4, 6))
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(x.shape)
    x = x.astype(dtype)
    calls = [{}, {"norm": "ortho"}, {"norm": "forward"}]
    if name in ONE_D:
        calls += [{"n": 5}, {"n": 9, "dim": 0}, {"dim": -2, "norm": "backward"}]
    else:
        calls += [{"s": (5, 4)}, {"dim": (2, 0), "s": (3, -1)}, {"dim": (-3, -1)}]
    for kw in calls:
        got = getattr(pt.fft, name)(pt.tensor(x), **kw)
        want = getattr(torch.fft, name)(torch.tensor(x), **kw)
        assert got.dtype.name == str(want.dtype).replace("torch.", ""), (kw, got.dtype)
        tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
        _close(got, want.resolve_conj().numpy(), rtol=tol, atol=tol)


def test_hermitian_pairs_invert_each_other():
    x = _rng("herm").standard_normal((2, 9))
    for norm in NORMS:
        t = pt.tensor(x)
        _close(pt.fft.hfft(pt.fft.ihfft(t, norm=norm), n=9, norm=norm), x)
        _close(pt.fft.irfft(pt.fft.rfft(t, norm=norm), n=9, norm=norm), x)
        _close(pt.fft.ifft(pt.fft.fft(t, norm=norm), norm=norm).real, x)
        _close(pt.fft.irfftn(pt.fft.rfftn(t, norm=norm), s=(2, 9), norm=norm), x)


def test_ortho_is_unitary():
    x = _rng("ortho").standard_normal((16,)) + 1j * _rng("ortho2").standard_normal((16,))
    y = pt.fft.fft(pt.tensor(x), norm="ortho").numpy()
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    _close(pt.fft.fft(pt.tensor(x), norm="forward"), np.fft.fft(x) / 16)
    _close(pt.fft.ifft(pt.tensor(x), norm="forward"), np.fft.ifft(x) * 16)


def test_padding_and_trimming():
    x = _rng("pad").standard_normal((3, 5))
    t = pt.tensor(x)
    padded = np.concatenate([x, np.zeros((3, 3))], axis=1)
    _close(pt.fft.fft(t, n=8), np.fft.fft(padded))
    _close(pt.fft.fft(t, n=2), np.fft.fft(x[:, :2]))
    _close(pt.fft.rfft(t, n=4, dim=0), np.fft.rfft(np.concatenate([x, np.zeros((1, 5))]),
                                                   axis=0))
    _close(pt.fft.fftn(t, s=(2, 7)), np.fft.fftn(np.pad(x[:2], ((0, 0), (0, 2)))))
    h = np.fft.rfft(x)  # 3 entries of a 5-point signal: n=4 uses 3 of them, n=9 pads to 5
    _close(pt.fft.irfft(pt.tensor(h), n=4), np.fft.irfft(h, n=4))
    _close(pt.fft.irfft(pt.tensor(h), n=9), np.fft.irfft(h, n=9))
    _close(pt.fft.hfft(pt.tensor(h), n=3), np.fft.hfft(h, n=3))


@pytest.mark.parametrize("dim", [-1, -2, -3, 0, 1, 2])
def test_negative_dims_are_the_same_dims(dim):
    x = _rng("neg").standard_normal((3, 4, 5))
    t = pt.tensor(x)
    _close(pt.fft.rfft(t, dim=dim), np.fft.rfft(x, axis=dim))
    _close(pt.fft.fftshift(t, dim=dim), np.fft.fftshift(x, axes=dim))
    _close(pt.fft.fftn(t, dim=(dim,)), np.fft.fftn(x, axes=(dim,)))


# ------------------------------------------------------------------------- dtypes ---
@pytest.mark.parametrize("src, fwd, back", [
    ("float32", "complex64", "float32"), ("float64", "complex128", "float64"),
    ("float16", "complex64", "float32"), ("int32", "complex64", "float32"),
    ("int64", "complex64", "float32"), ("uint8", "complex64", "float32"),
    ("bool", "complex64", "float32"), ("complex64", "complex64", "float32"),
    ("complex128", "complex128", "float64")])
def test_result_dtypes(src, fwd, back):
    x = pt.tensor(np.arange(1, 7).reshape(2, 3) % 2 if src == "bool" else
                  np.arange(1, 7).reshape(2, 3)).to(getattr(pt, src))
    for name in ("fft", "ifft", "fftn", "ifft2"):
        r = getattr(pt.fft, name)(x)
        assert r.dtype.name == fwd and r.numpy().dtype.name == fwd, (name, r.dtype)
    for name in ("irfft", "hfft", "irfftn"):
        r = getattr(pt.fft, name)(x)
        assert r.dtype.name == back and r.numpy().dtype.name == back, (name, r.dtype)
    if not src.startswith("complex"):
        for name in ("rfft", "ihfft", "rfftn", "rfft2"):
            r = getattr(pt.fft, name)(x)
            assert r.dtype.name == fwd and r.numpy().dtype.name == fwd, (name, r.dtype)
    # the values: computed from the same numbers in float64
    ref = np.fft.fft(x.to(pt.complex128).numpy() if src != "bool" else
                     x.numpy().astype(complex))
    _close(pt.fft.fft(x), ref, rtol=1e-3 if src == "float16" else 1e-5, atol=1e-5)


def test_integers_follow_the_default_float_dtype():
    old = pt.get_default_dtype()
    try:
        pt.set_default_dtype(pt.float64)
        x = pt.tensor([1, 2, 3, 4])
        assert pt.fft.fft(x).dtype == pt.complex128
        assert pt.fft.rfft(x).dtype == pt.complex128
        assert pt.fft.irfft(x).dtype == pt.float64
        assert pt.fft.fftfreq(4).dtype == pt.float64
    finally:
        pt.set_default_dtype(old)


def test_dtypes_match_torch():
    torch = _torch()
    for src in ("float32", "float64", "int32", "int64", "bool", "complex64", "complex128"):
        x = np.array([1, 0, 1, 1]).astype(src)
        for name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fftn", "rfftn"):
            if name in REAL_INPUT and src.startswith("complex"):
                continue
            want = getattr(torch.fft, name)(torch.tensor(x)).dtype
            got = getattr(pt.fft, name)(pt.tensor(x)).dtype
            assert got.name == str(want).replace("torch.", ""), (src, name)


def test_single_precision_stays_single():
    x = pt.tensor(_rng("single").standard_normal((4, 8)), dtype=pt.float32)
    c = x.to(pt.complex64)
    for r in (pt.fft.fft(c), pt.fft.ifftn(c), pt.fft.rfft(x), pt.fft.fft(x)):
        assert r.numpy().dtype == np.complex64
    for r in (pt.fft.irfft(c), pt.fft.hfft(c), pt.fft.irfft2(c)):
        assert r.numpy().dtype == np.float32


# ------------------------------------------------------------------------ helpers ---
@pytest.mark.parametrize("n", [1, 4, 5])
@pytest.mark.parametrize("d", [1.0, 0.1, 2])
def test_fftfreq_and_rfftfreq_match_numpy_and_torch(n, d):
    _close(pt.fft.fftfreq(n, d, dtype=pt.float64), np.fft.fftfreq(n, d), atol=0)
    _close(pt.fft.rfftfreq(n, d, dtype=pt.float64), np.fft.rfftfreq(n, d), atol=0)
    f = pt.fft.fftfreq(n, d)
    assert f.dtype == pt.float32 and f.device == pt.get_default_device()
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(f.cpu().numpy(), torch.fft.fftfreq(n, d).numpy())
    np.testing.assert_array_equal(pt.fft.rfftfreq(n, d).numpy(),
                                  torch.fft.rfftfreq(n, d).numpy())


def test_fftfreq_options():
    assert pt.fft.fftfreq(0).shape == (0,)
    f = pt.fft.fftfreq(4, dtype=pt.float64, device="cpu", requires_grad=True)
    assert f.requires_grad and f.is_leaf and f.dtype == pt.float64
    assert pt.fft.rfftfreq(6, d=0.5, dtype=pt.float16).dtype == pt.float16


@pytest.mark.parametrize("shape, dim", [((5,), None), ((4, 5), None), ((4, 5), 1),
                                        ((4, 5), (0,)), ((2, 3, 4), (0, -1)), ((3, 6), -2)])
def test_fftshift_and_ifftshift(shape, dim):
    x = np.arange(np.prod(shape)).reshape(shape)
    axes = None if dim is None else dim
    s = pt.fft.fftshift(pt.tensor(x), dim=dim)
    _close(s, np.fft.fftshift(x, axes=axes), atol=0)
    _close(pt.fft.ifftshift(pt.tensor(x), dim=dim), np.fft.ifftshift(x, axes=axes), atol=0)
    _close(pt.fft.ifftshift(s, dim=dim), x, atol=0)
    assert s.dtype == pt.int64
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(s.numpy(), torch.fft.fftshift(torch.tensor(x), dim=dim))


# ---------------------------------------------------------------------- gradients ---
def _parts(out):
    return (out.real, out.imag) if out.dtype.is_complex else (out,)


def _cplx_fn(f):
    """``f`` of a complex input given by its real and imaginary parts, as real outputs: a full
    check of PyTorch's convention (the gradient is dL/dRe + i dL/dIm) with real gradchecks."""
    return lambda re, im: _parts(f(pt.complex(re, im)))


GRAD_CASES = [
    ("fft", dict(), (6,)), ("fft", dict(n=8, norm="ortho"), (2, 5)),
    ("ifft", dict(n=3, dim=0), (4, 3)), ("ifft", dict(norm="forward"), (5,)),
    ("fftn", dict(s=(3, 4)), (2, 3)), ("ifftn", dict(dim=(0, 2), norm="ortho"), (2, 2, 3)),
    ("fft2", dict(), (3, 4)), ("ifft2", dict(s=(2, 5)), (3, 3)),
    ("rfft", dict(), (6,)), ("rfft", dict(n=7, norm="forward"), (2, 5)),
    ("ihfft", dict(n=5), (2, 4)), ("rfftn", dict(dim=(1, 0)), (4, 3)),
    ("rfft2", dict(s=(3, 5), norm="ortho"), (2, 4)),
    ("irfft", dict(), (5,)), ("irfft", dict(n=7, norm="ortho"), (2, 4)),
    ("irfft", dict(n=10, dim=0), (4, 2)), ("hfft", dict(), (4,)),
    ("hfft", dict(n=5, norm="forward"), (2, 4)),
    ("irfftn", dict(s=(3, 6)), (3, 4)), ("irfft2", dict(), (2, 3)),
    ("irfftn", dict(dim=(1, 0), norm="forward"), (3, 2)),
]


def _case_id(c):
    return f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'defaults'}"


@pytest.mark.parametrize("name, kw, shape", GRAD_CASES, ids=[_case_id(c) for c in GRAD_CASES])
def test_gradcheck_float64(name, kw, shape):
    f = getattr(pt.fft, name)
    rng = _rng("grad", name, shape)
    x = pt.tensor(rng.standard_normal(shape), requires_grad=True)
    fn = lambda t: _parts(f(t, **kw))  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name, kw, shape", [c for c in GRAD_CASES if c[0] not in REAL_INPUT],
                         ids=[_case_id(c) for c in GRAD_CASES if c[0] not in REAL_INPUT])
def test_gradcheck_complex128(name, kw, shape):
    f = getattr(pt.fft, name)
    rng = _rng("gradc", name, shape)
    re = pt.tensor(rng.standard_normal(shape), requires_grad=True)
    im = pt.tensor(rng.standard_normal(shape), requires_grad=True)
    fn = _cplx_fn(lambda z: f(z, **kw))
    assert gradcheck(fn, (re, im))
    assert gradgradcheck(fn, (re, im))


def _torch_derivatives(L, fn, arrays, second_weights):
    xs = [L.tensor(a, requires_grad=True) for a in arrays]
    y = fn(L, *xs)
    gs = L.autograd.grad(y, xs, create_graph=True)
    z = sum((g * L.tensor(v)).sum() + (g ** 2).sum() for g, v in zip(gs, second_weights))
    hs = L.autograd.grad(z, xs)

    def host(t):
        t = t.detach()
        return t.numpy() if L is pt else t.resolve_neg().resolve_conj().numpy()
    return host(y), [host(g) for g in gs], [host(h) for h in hs]


W = _rng("w").standard_normal((3, 5)) + 1j * _rng("w2").standard_normal((3, 5))
PIPELINES = {
    "irfft(rfft(x) * w)": (lambda L, x: (L.fft.irfft(L.fft.rfft(x) * L.tensor(W)) ** 2).sum(),
                           [(3, 8)]),
    "irfft(rfft(x) * w).sum()": (lambda L, x: L.fft.irfft(L.fft.rfft(x) * L.tensor(W)).sum()
                                 + (x ** 3).sum(), [(3, 8)]),
    "fft(x).abs().sum()": (lambda L, x: L.fft.fft(x).abs().sum(), [(3, 7)]),
    "rfft odd n, forward": (lambda L, x: (L.fft.rfft(x, n=5, norm="forward").abs() ** 2).sum(),
                            [(2, 7)]),
    "irfft of complex, n=10, dim=0": (
        lambda L, a, b: (L.fft.irfft(L.complex(a, b), n=10, dim=0, norm="ortho") ** 3).sum(),
        [(4, 5), (4, 5)]),
    "hfft": (lambda L, a, b: (L.fft.hfft(L.complex(a, b), norm="forward") ** 2).sum(),
             [(4, 5), (4, 5)]),
    "ihfft": (lambda L, x: (L.fft.ihfft(x, n=9).abs() ** 2).sum(), [(3, 7)]),
    "fftn / ifftn / ifft2": (
        lambda L, a, b: (L.fft.fftn(L.complex(a, b), s=(5, 3)).abs() ** 2).sum()
        + (L.fft.ifftn(L.complex(a, b), norm="ortho").imag ** 3).sum()
        + (L.fft.ifft2(L.complex(a, b) * a).real ** 2).sum(), [(4, 5), (4, 5)]),
    "rfftn, halved dim first": (lambda L, x: (L.fft.rfftn(x, dim=(1, 0)).abs() ** 2).sum(),
                                [(3, 7)]),
    "irfftn with s": (lambda L, a, b: (L.fft.irfftn(L.complex(a, b), s=(3, 6)) ** 2).sum(),
                      [(4, 5), (4, 5)]),
    "irfft2 odd": (lambda L, a, b: (L.fft.irfft2(L.complex(a, b), s=(4, 5)) ** 3).sum(),
                   [(4, 5), (4, 5)]),
    "fft of real, then real": (lambda L, x: (L.fft.fft(x, n=6).real * x[:, :1]).sum(),
                               [(2, 5)]),
}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_first_and_second_derivatives_match_torch(name):
    torch = _torch()
    fn, shapes = PIPELINES[name]
    rng = _rng("pipe", name)
    arrays = [rng.standard_normal(s) for s in shapes]
    v = [rng.standard_normal(s) for s in shapes]
    mine = _torch_derivatives(pt, fn, arrays, v)
    theirs = _torch_derivatives(torch, fn, arrays, v)
    for what, m, t in zip(("value", "gradient", "second derivative"), mine, theirs):
        for a, b in zip(m if isinstance(m, list) else [m], t if isinstance(t, list) else [t]):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=f"{name}: {what}")


def test_backward_records_fft_nodes_and_takes_real_parts_quietly():
    import warnings
    x = pt.tensor([1.0, 2.0, -1.0, 0.5], requires_grad=True)
    y = pt.fft.rfft(x)
    assert "r2c" in y.grad_fn.name().lower(), y.grad_fn.name()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning from real inputs of complex ops
        pt.fft.ifft(x).abs().sum().backward()
        pt.fft.irfft(x, n=6).sum().backward()
    assert x.grad.dtype == pt.float32


# ------------------------------------------------------------------------- errors ---
_x34 = pt.tensor(np.ones((3, 4), dtype=np.float32))
ERRORS = [
    ("norm", lambda: pt.fft.rfft(_x34, norm="bad"), ValueError, ["fft.rfft", "'bad'", "ortho"]),
    ("norm type", lambda: pt.fft.fftn(_x34, norm=1), ValueError, ["fft.fftn", "norm"]),
    ("dim", lambda: pt.fft.fft(_x34, dim=2), IndexError, ["fft.fft", "dim 2", "(3, 4)",
                                                         "[-2, 1]"]),
    ("dim type", lambda: pt.fft.fft(_x34, dim=1.0), TypeError, ["fft.fft", "dim"]),
    ("nd dim", lambda: pt.fft.fft2(pt.tensor([1.0, 2.0])), IndexError, ["fft.fft2", "(2,)"]),
    ("n=0", lambda: pt.fft.fft(_x34, n=0), ValueError, ["fft.fft", "(0)", "n=0"]),
    ("n<0", lambda: pt.fft.irfft(_x34, n=-3), ValueError, ["fft.irfft", "(-3)"]),
    ("n type", lambda: pt.fft.fft(_x34, n=2.5), TypeError, ["fft.fft", "n must be an int"]),
    ("n bool", lambda: pt.fft.fft(_x34, n=True), TypeError, ["fft.fft", "bool"]),
    ("empty dim", lambda: pt.fft.fft(pt.zeros(3, 0)), ValueError,
     ["fft.fft", "(3, 0)", "empty", "n >= 1"]),
    ("irfft m=1", lambda: pt.fft.irfft(pt.zeros(3, 1)), ValueError,
     ["fft.irfft", "2 * (m - 1)", "m = 1"]),
    ("list", lambda: pt.fft.rfft([1.0, 2.0]), TypeError, ["fft.rfft", "list", "asarray"]),
    ("numpy", lambda: pt.fft.fftn(np.ones(3)), TypeError, ["fft.fftn", "ndarray"]),
    ("0-d", lambda: pt.fft.fft(pt.tensor(1.0)), IndexError, ["fft.fft", "at least one"]),
    ("rfft complex", lambda: pt.fft.rfft(_x34.to(pt.complex64)), TypeError,
     ["fft.rfft", "real input", "complex64", "(3, 4)", "fft.fft"]),
    ("ihfft complex", lambda: pt.fft.ihfft(_x34.to(pt.complex128)), TypeError,
     ["fft.ihfft", "complex128"]),
    ("rfftn complex", lambda: pt.fft.rfftn(_x34.to(pt.complex64)), TypeError, ["fft.rfftn"]),
    ("repeated dim", lambda: pt.fft.fftn(_x34, dim=(1, -1)), ValueError,
     ["fft.fftn", "more than once"]),
    ("s and dim", lambda: pt.fft.fftn(_x34, s=(2,), dim=(0, 1)), ValueError,
     ["fft.fftn", "same length", "(3, 4)"]),
    ("s too long", lambda: pt.fft.ifftn(_x34, s=(2, 2, 2)), ValueError,
     ["fft.ifftn", "3 values", "(3, 4)"]),
    ("s zero", lambda: pt.fft.rfftn(_x34, s=(0, 2)), ValueError, ["fft.rfftn", "(0)"]),
    ("s type", lambda: pt.fft.fftn(_x34, s=(2.0, 2)), TypeError, ["fft.fftn", "s"]),
    ("rfftn no dims", lambda: pt.fft.rfftn(_x34, dim=()), ValueError,
     ["fft.rfftn", "at least one dimension"]),
    ("irfftn no dims", lambda: pt.fft.irfftn(_x34, dim=()), ValueError, ["fft.irfftn"]),
    ("fftshift dim", lambda: pt.fft.fftshift(_x34, dim=3), IndexError, ["fft.fftshift"]),
    ("fftshift list", lambda: pt.fft.ifftshift([1, 2]), TypeError, ["fft.ifftshift"]),
    ("fftfreq n", lambda: pt.fft.fftfreq(-1), ValueError, ["fft.fftfreq", "-1"]),
    ("fftfreq n type", lambda: pt.fft.fftfreq(2.0), TypeError, ["fft.fftfreq", "n"]),
    ("fftfreq d", lambda: pt.fft.rfftfreq(4, 0), ValueError, ["fft.rfftfreq", "d"]),
    ("fftfreq d type", lambda: pt.fft.fftfreq(4, "1"), TypeError, ["fft.fftfreq", "d"]),
    ("fftfreq dtype", lambda: pt.fft.fftfreq(4, dtype=pt.int64), TypeError,
     ["fft.fftfreq", "int64", "floating"]),
    ("rfftfreq 0", lambda: pt.fft.rfftfreq(0), ValueError, ["fft.rfftfreq", "at least 1"]),
]


@pytest.mark.parametrize("case", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_call_and_the_fix(case):
    _, call, exc, words = case
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_a_backend_without_the_fft_tier_reports_missing_capability():
    from conftest import cpu_clone
    from polyten.dispatch import manifest, get_backend_object
    with cpu_clone("nofft", drop=("fft_c2c", "fft_r2c", "fft_c2r")) as dev:
        x = pt.ones(4, device=dev)
        for call in (lambda: pt.fft.rfft(x), lambda: pt.fft.fft(x.to(pt.complex64)),
                     lambda: pt.fft.irfft(x)):
            with pytest.raises(pt.KernelNotFoundError, match="'fft' tier is optional"):
                call()
        m = manifest(get_backend_object("nofft"))
        assert {m[n].source for n in ("fft_c2c", "fft_r2c", "fft_c2r")} == {"missing"}
        assert pt.fft.fftshift(x).tolist() == [1.0] * 4  # no transform: still works


def test_cli_lists_the_fft_tier():
    r = subprocess.run([sys.executable, "-m", "polyten.cli", "backends", "--verbose"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cpu = r.stdout.split("\ncpu:")[1].split("\n\n")[0]
    assert any(line.split()[:2] == ["fft", "3"] for line in cpu.splitlines()), cpu


# -------------------------------------------------------------- the CuPy kernels ---
def test_kernels_use_only_cupy_fft_functions_and_keywords_cupy_has():
    """The cuda backend runs the same kernels with xp=cupy: every ``xp.fft`` function they call
    and every keyword they pass exists in CuPy 14 (tests/data/cupy_api.json, recorded from a
    real CuPy)."""
    import ast
    api = json.loads((ROOT / "tests" / "data" / "cupy_api.json").read_text())["modules"]
    fft_api = api["cupy.fft"]
    assert api["cupy"]["fft"]["kind"] == "module"
    src = (ROOT / "plugins" / "polyten_cpu" / "polyten_cpu" / "kernels" / "fft.py").read_text()
    tree = ast.parse(src)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "f"}
    assert used == {"fft", "ifft", "fftn", "ifftn", "rfft", "rfftn", "irfft", "irfftn"}
    for name in used:
        assert fft_api[name]["kind"] == "function", name
    params = {name: {p[0] for p in fft_api[name]["params"]} for name in used}
    # the keywords the kernels pass, per function
    calls = {"fft": {"axis", "norm"}, "ifft": {"axis", "norm"}, "rfft": {"axis", "norm"},
             "irfft": {"n", "axis", "norm"}, "fftn": {"axes", "norm"},
             "ifftn": {"axes", "norm"}, "rfftn": {"axes", "norm"},
             "irfftn": {"s", "axes", "norm"}}
    for name, kws in calls.items():
        assert kws <= params[name], (name, kws - params[name])
    assert {p[0] for p in api["cupy"]["zeros"]["params"]} >= {"shape", "dtype"}


def test_cuda_kernel_table_picks_up_the_fft_kernels():
    from cupy_standin import fake_cupy
    from polyten_cuda import kernels as ck

    class _RNG:
        gen = np.random.default_rng(0)

        def seed(self, s):
            pass

    fake = fake_cupy(1)
    table, _, _ = ck.build(fake, _RNG(), np.dtype, 1)
    x = np.arange(6.0).reshape(2, 3).astype(np.float32)
    r = table["fft_r2c"](x, (1,), "backward", True)
    assert r.dtype == np.complex64
    np.testing.assert_allclose(r, np.fft.rfft(x), rtol=1e-6)
    assert table["fft_c2r"](r, (1,), "backward", 3).dtype == np.float32
    assert table["fft_c2c"](r, (0, 1), "ortho", False).dtype == np.complex64
