"""More PyTorch functions composed from polyten ops (``polyten/api/derived_more.py``,
``polyten/api/derived_nn.py``, ``polyten.special``): values against PyTorch on several
shapes and dtypes with the edge cases, gradients (against torch's and by ``gradcheck`` in
float64), an error path per group, and that every name lives where torch has it."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F
import polyten.special as ps

torch = pytest.importorskip("torch")


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np(x):
    if isinstance(x, (tuple, list)):
        return [_np(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.detach().resolve_conj().numpy()
    if hasattr(x, "detach"):
        return x.detach().numpy()
    return np.asarray(x)


def _check(fn_pt, fn_t, arrays, grad=True, rtol=1e-10, atol=1e-12, grad_rtol=1e-8):
    """Values, and the gradients of ``sum(out * w)`` for every float input, against torch."""
    def req(a):
        return grad and np.asarray(a).dtype.kind == "f"
    p = [pt.tensor(a, requires_grad=req(a)) for a in arrays]
    t = [torch.tensor(a, requires_grad=req(a)) for a in arrays]
    op, ot = fn_pt(*p), fn_t(*t)
    outs_p = list(op) if isinstance(op, (tuple, list)) else [op]
    outs_t = list(ot) if isinstance(ot, (tuple, list)) else [ot]
    assert len(outs_p) == len(outs_t)
    for a, b in zip(outs_p, outs_t):
        a, b = _np(a), _np(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if not grad:
        return
    w = _r(*outs_p[0].shape, seed=9) if outs_p[0].ndim else np.array(0.7)
    (outs_p[0] * pt.tensor(w)).sum().backward()
    (outs_t[0] * torch.tensor(w)).sum().backward()
    for a, b in zip(p, t):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=grad_rtol,
                                       atol=1e-10)


def _gradcheck(fn, *arrays):
    ins = [pt.tensor(a, dtype=pt.float64, requires_grad=True) for a in arrays]
    assert pt.autograd.gradcheck(fn, ins)


# --- 1. elementwise / special -------------------------------------------------------------
_X = np.concatenate([np.linspace(-30, 30, 601), [0.0, -0.0, 1.0, 1.999, 2.0, 2.001, 5.0,
                                                  26.0, 27.5, np.inf, -np.inf, np.nan]])
_Y = np.concatenate([np.linspace(-1, 1, 4001), [1 - 1e-10, -1 + 1e-12, 1 - 2 ** -53,
                                                 1 - 2 ** -52, 1e-300, 1.5, -2.0, np.nan]])


@pytest.mark.parametrize("name,ref,x", [
    ("erfc", torch.erfc, _X), ("erfinv", torch.erfinv, _Y), ("i0", torch.i0, _X * 25),
    ("i0e", torch.special.i0e, _X * 25), ("i1", torch.special.i1, _X * 25),
    ("i1e", torch.special.i1e, _X * 25)])
def test_special_float64(name, ref, x):
    f = getattr(ps, name)
    a = f(pt.tensor(x)).numpy()
    b = ref(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    fin = np.isfinite(b)
    np.testing.assert_array_equal(a[~fin & ~np.isnan(b)], b[~fin & ~np.isnan(b)])
    np.testing.assert_allclose(a[fin], b[fin], rtol=1e-13 if name != "erfc" else 1e-12,
                               atol=1e-300)


@pytest.mark.parametrize("name", ["erfc", "erfinv", "i0", "i0e", "i1", "i1e"])
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_special_low_precision(name, dt):
    x = (_Y[np.abs(_Y) <= 1] if name == "erfinv" else np.linspace(-9, 9, 181))
    f = getattr(ps, name)
    a = f(pt.tensor(x, dtype=getattr(pt, dt)))
    assert a.dtype is getattr(pt, dt)
    # torch's float64 values at the rounded inputs: within an ulp or two of the dtype
    xr = torch.tensor(x).to(getattr(torch, dt)).double()
    exact = getattr(torch.special, name)(xr).numpy()
    rtol = {"float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}[dt]
    if name == "erfc" and dt == "float32":
        rtol = 1e-5  # exp(-x^2) at x = 9 in float32: x^2 = 81 carries 81 * 6e-8
    fin = np.isfinite(exact) & (np.abs(exact) > pt.finfo(getattr(pt, dt)).tiny)
    np.testing.assert_allclose(a.to(pt.float64).numpy()[fin], exact[fin], rtol=rtol)


def test_special_aliases_and_int_inputs():
    assert pt.erfc is ps.erfc and pt.erfinv is ps.erfinv and pt.i0 is ps.i0
    i = np.array([-3, 0, 1, 2])
    for f, g in ((pt.erfc, torch.erfc), (pt.i0, torch.i0), (ps.i1, torch.special.i1)):
        _check(f, g, (i,), grad=False, rtol=1e-6)
    x = pt.tensor([0.5, -0.25])
    np.testing.assert_allclose(x.erfinv().numpy(), torch.erfinv(torch.tensor([0.5, -0.25])))
    y = x.clone()
    assert y.erfinv_() is y and np.allclose(y.numpy(), x.erfinv().numpy())
    y = x.clone()
    y.erfc_(), y.i0_()
    np.testing.assert_allclose(y.numpy(), torch.tensor([0.5, -0.25]).erfc().i0().numpy(),
                               rtol=1e-6)


def test_special_gradients():
    y = np.array([-0.999, -0.5, 0.0, 0.3, 0.9, 0.99999])
    _check(pt.erfinv, torch.erfinv, (y,), grad_rtol=1e-9)
    _check(pt.erfc, torch.erfc, (np.array([-3.0, -0.5, 0.0, 1.0, 1.99, 2.5, 6.0]),))
    _check(pt.i0, torch.i0, (np.array([-12.0, -3.0, 0.1, 7.9, 8.1, 40.0]),))
    for f in (pt.erfinv, pt.erfc, pt.i0, ps.i0e, ps.i1, ps.i1e):
        _gradcheck(f, np.array([-0.7, -0.2, 0.1, 0.6]) * (1 if f is pt.erfinv else 5))
    # erfinv's backward is written with erfinv: second derivatives too
    t = pt.tensor([0.3, -0.8], dtype=pt.float64, requires_grad=True)
    assert pt.autograd.gradgradcheck(pt.erfinv, [t])


def test_logaddexp2():
    a, b = _r(3, 4) * 20, _r(4, seed=1) * 20
    _check(pt.logaddexp2, torch.logaddexp2, (a, b))
    inf = np.array([np.inf, -np.inf, np.inf, 1.0, np.nan])
    _check(pt.logaddexp2, torch.logaddexp2, (inf, np.array([np.inf, -np.inf, -np.inf, 2.0,
                                                             1.0])), grad=False)
    _check(pt.logaddexp2, torch.logaddexp2,
           (_r(5).astype(np.float32), _r(5, seed=2).astype(np.float32)), grad=False,
           rtol=1e-6)
    _gradcheck(pt.logaddexp2, _r(4), _r(4, seed=3))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8])
def test_gcd_lcm(dtype):
    rng = np.random.default_rng(0)
    lo = 0 if dtype is np.uint8 else -60
    a = rng.integers(lo, 60, (5, 6)).astype(dtype)
    b = rng.integers(lo, 60, (6,)).astype(dtype)
    a[0, :3] = 0
    b[:2] = 0
    _check(pt.gcd, torch.gcd, (a, b), grad=False)
    _check(pt.lcm, torch.lcm, (a // 6, b // 6), grad=False)  # in range: at most 90
    big = np.array([2 ** 40 * 3, 1346269, -7], dtype=np.int64)
    _check(pt.gcd, torch.gcd, (big, np.array([2 ** 35 * 9, 832040, 0])), grad=False)
    x = pt.tensor([12, -18])
    assert x.gcd_(pt.tensor([8, 12])) is x and x.tolist() == [4, 6]
    assert pt.tensor([4, 6]).lcm(pt.tensor([6, -4])).tolist() == [12, 12]


def test_frexp_ldexp():
    x = np.concatenate([_r(20) * 1e3, [0.0, -0.0, 1.0, 0.5, -2.0, 1e-310, 5e-324,
                                       1.7976931348623157e308, 2.0 ** -1022]])
    _check(pt.frexp, torch.frexp, (x,), grad=False, rtol=0, atol=0)
    x32 = np.concatenate([_r(20), [0.0, 1e-40, 3e38, 1.0, 0.75]]).astype(np.float32)
    _check(pt.frexp, torch.frexp, (x32,), grad=False, rtol=0, atol=0)
    m, e = pt.tensor([np.inf, -np.inf, np.nan]).frexp()
    assert e.tolist() == [0, 0, 0] and np.isinf(m.numpy()[:2]).all()
    _check(lambda v: pt.frexp(v).mantissa, lambda v: torch.frexp(v).mantissa, (_r(6),))
    y = pt.tensor([1.0, 3.0])
    assert y.ldexp_(pt.tensor([2, -1])) is y and y.tolist() == [4.0, 1.5]


def test_isposinf_isneginf_isreal():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, 1e308])
    for f, g in ((pt.isposinf, torch.isposinf), (pt.isneginf, torch.isneginf),
                 (pt.isreal, torch.isreal)):
        _check(f, g, (x,), grad=False)
        _check(f, g, (np.array([1, -2, 3]),), grad=False)
    _check(pt.isreal, torch.isreal, (np.array([1 + 0j, 1j, -0j, np.nan + 0j]),), grad=False)
    assert pt.tensor([np.inf]).isposinf().tolist() == [True]


def test_group1_errors():
    with pytest.raises(TypeError, match=r"gcd: expected integer tensors, got float32"):
        pt.gcd(pt.tensor([1.0]), pt.tensor([2.0]))
    with pytest.raises(TypeError, match=r"frexp: expected a floating-point tensor, got int64"):
        pt.frexp(pt.tensor([1]))
    with pytest.raises(TypeError, match=r"erfinv: complex tensors are not supported"):
        pt.erfinv(pt.tensor([1j]))
    with pytest.raises(TypeError, match=r"erfc: expected a tensor, got"):
        pt.erfc(0.5)


# --- 2. predicates and creation -----------------------------------------------------------
def test_predicates():
    x = pt.tensor([[1.0, 2.0]])
    assert pt.is_tensor(x) and not pt.is_tensor([1.0]) and pt.numel(x) == 2
    assert pt.is_nonzero(pt.tensor([0.5])) and not pt.is_nonzero(pt.tensor(0))
    assert pt.tensor([[3]]).is_nonzero()
    for dt in ("bool", "uint8", "int8", "int64", "float16", "float64", "complex64"):
        assert pt.is_signed(pt.zeros(1, dtype=getattr(pt, dt))) == \
            torch.is_signed(torch.zeros(1, dtype=getattr(torch, dt))), dt
    assert not pt.tensor([1], dtype=pt.uint8).is_signed()
    with pytest.raises(RuntimeError, match=r"is_nonzero: Boolean value of Tensor with more "
                                           r"than one value is ambiguous \(shape \(1, 2\)\)"):
        pt.is_nonzero(x)
    with pytest.raises(RuntimeError, match="with no values"):
        pt.is_nonzero(pt.zeros(0))


def test_scalar_tensor():
    for v in (3, 2.5, True):
        a, b = pt.scalar_tensor(v), torch.scalar_tensor(v)
        assert a.shape == () and a.dtype.name == str(b.dtype).split(".")[-1]
        assert a.item() == b.item()
    assert pt.scalar_tensor(3, dtype=pt.int32).dtype is pt.int32
    assert pt.scalar_tensor(1.0, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match=r"scalar_tensor: expected a Python number"):
        pt.scalar_tensor([1.0])


def test_unravel_index():
    for idx, shape in ((np.array([0, 5, 11, -1, -12]), (3, 4)), (np.array([[7, 3], [0, 23]]),
                                                                (2, 3, 4)), (np.array(4), (5,))):
        a = pt.unravel_index(pt.tensor(idx), shape)
        b = torch.unravel_index(torch.tensor(idx), shape)
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert u.tolist() == v.tolist() and u.dtype is pt.int64
    with pytest.raises(IndexError, match=r"unravel_index: an index is out of bounds for shape "
                                         r"\(3, 4\)"):
        pt.unravel_index(pt.tensor([12]), (3, 4))
    with pytest.raises(TypeError, match="unravel_index: expected integer indices, got float32"):
        pt.unravel_index(pt.tensor([1.0]), (3, 4))


def test_column_row_stack():
    a, b, c = _r(3), _r(3, 2, seed=1), _r(3, seed=2)
    _check(lambda *t: pt.column_stack(t), lambda *t: torch.column_stack(t), (a, b, c))
    _check(lambda *t: pt.row_stack(t), lambda *t: torch.row_stack(t), (_r(2, 3), _r(3)))
    _check(lambda s: pt.column_stack([s, s]), lambda s: torch.column_stack([s, s]),
           (np.array(2.0),))


def test_view_as_real_complex():
    z = _r(2, 3) + 1j * _r(2, 3, seed=1)
    _check(pt.view_as_real, torch.view_as_real, (z,), grad=False)
    _check(pt.view_as_real, torch.view_as_real, (z.astype(np.complex64),), grad=False)
    _check(pt.view_as_complex, torch.view_as_complex, (_r(4, 2),), grad=False)
    _check(lambda x: pt.view_as_real(pt.view_as_complex(x)) * 2,
           lambda x: torch.view_as_real(torch.view_as_complex(x)) * 2, (_r(3, 2),))
    with pytest.raises(ValueError, match=r"view_as_complex: the last dimension must have size "
                                         r"2 \(real, imag\), got shape \(4, 3\)"):
        pt.view_as_complex(pt.zeros((4, 3)))
    with pytest.raises(TypeError, match="view_as_real: expected a complex tensor, got float32"):
        pt.view_as_real(pt.zeros(2))


@pytest.mark.parametrize("name,kw", [("hann_window", {}), ("hamming_window", {}),
                                     ("hamming_window", {"alpha": 0.5, "beta": 0.3}),
                                     ("blackman_window", {}), ("bartlett_window", {}),
                                     ("kaiser_window", {}), ("kaiser_window", {"beta": 3.5})])
def test_windows(name, kw):
    for n in (0, 1, 2, 5, 16):
        for periodic in (True, False):
            for dt in ("float32", "float64"):
                a = getattr(pt, name)(n, periodic, dtype=getattr(pt, dt), **kw)
                b = getattr(torch, name)(n, periodic, dtype=getattr(torch, dt), **kw)
                assert a.dtype is getattr(pt, dt) and tuple(a.shape) == tuple(b.shape)
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-6, atol=1e-6)
    assert getattr(pt, name)(4).dtype is pt.get_default_dtype()
    with pytest.raises(TypeError, match=rf"{name}: expected a floating-point dtype, got int64"):
        getattr(pt, name)(4, dtype=pt.int64)


# --- 3. indexing / scatter ----------------------------------------------------------------
def test_index_copy():
    x, s = _r(5, 3), _r(2, 3, seed=1)
    idx = np.array([4, 1])
    _check(lambda a, b, i: pt.index_copy(a, 0, i, b), lambda a, b, i: torch.index_copy(
        a, 0, i, b), (x, s, idx))
    _check(lambda a, b, i: a.index_copy(1, i, b), lambda a, b, i: a.index_copy(1, i, b),
           (_r(4, 3), _r(4, 2, seed=2), np.array([2, 0])))
    y = pt.tensor(x)
    assert y.index_copy_(0, pt.tensor(idx), pt.tensor(s)) is y
    np.testing.assert_allclose(y.numpy(), torch.tensor(x).index_copy_(
        0, torch.tensor(idx), torch.tensor(s)).numpy())
    with pytest.raises(ValueError, match=r"index_copy: source of shape \(3, 3\) must have the "
                                         r"input's shape \(5, 3\) except along dimension 0"):
        pt.index_copy(pt.tensor(x), 0, pt.tensor([0, 1]), pt.zeros((3, 3), dtype=pt.float64))


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce(reduce, include_self):
    x, s = _r(4, 3), _r(5, 3, seed=1)
    idx = np.array([0, 2, 0, 3, 2])
    _check(lambda a, b, i: pt.index_reduce(a, 0, i, b, reduce, include_self=include_self),
           lambda a, b, i: torch.index_reduce(a, 0, i, b, reduce, include_self=include_self),
           (x, s, idx), grad=reduce in ("prod", "mean"))
    _check(lambda a, b, i: a.index_reduce(1, i, b, reduce, include_self=include_self),
           lambda a, b, i: a.index_reduce(1, i, b, reduce, include_self=include_self),
           (_r(2, 3), _r(2, 4, seed=3), np.array([1, 1, 0, 1])), grad=False)
    xi = np.random.default_rng(1).integers(-5, 5, (4, 3))
    si = np.random.default_rng(2).integers(-5, 5, (5, 3))
    _check(lambda a, b, i: pt.index_reduce(a, 0, i, b, reduce, include_self=include_self),
           lambda a, b, i: torch.index_reduce(a, 0, i, b, reduce, include_self=include_self),
           (xi, si, idx), grad=False)
    y = pt.tensor(x)
    assert y.index_reduce_(0, pt.tensor(idx), pt.tensor(s), reduce) is y


def test_index_reduce_errors():
    with pytest.raises(ValueError, match=r"index_reduce: reduce must be one of 'prod', 'mean', "
                                         r"'amax', 'amin', got 'sum'"):
        pt.index_reduce(pt.zeros(3), 0, pt.tensor([0]), pt.ones(1), "sum")
    _gradcheck(lambda a, b: pt.index_reduce(a, 0, pt.tensor([1, 1, 0]), b, "prod"),
               _r(2, 2) + 2, _r(3, 2, seed=1) + 2)


def test_scatter_family():
    x = _r(3, 4, 5)
    _check(lambda a, s: pt.diagonal_scatter(a, s, 1, 0, 2),
           lambda a, s: torch.diagonal_scatter(a, s, 1, 0, 2),
           (x, _r(4, 3, seed=1)))
    _check(lambda a, s: pt.diagonal_scatter(a, s, -1, 1, 2),
           lambda a, s: torch.diagonal_scatter(a, s, -1, 1, 2), (x, _r(3, 3, seed=2)))
    _check(lambda a, s: a.diagonal_scatter(s), lambda a, s: a.diagonal_scatter(s),
           (_r(3, 3), _r(3, seed=3)))
    _check(lambda a, s: pt.select_scatter(a, s, 1, -2),
           lambda a, s: torch.select_scatter(a, s, 1, -2), (x, _r(3, 5, seed=4)))
    _check(lambda a, s: pt.slice_scatter(a, s, 2, 1, None, 2),
           lambda a, s: torch.slice_scatter(a, s, 2, 1, None, 2), (x, _r(3, 4, 2, seed=5)))
    _check(lambda a, s: a.slice_scatter(s, start=-2),
           lambda a, s: a.slice_scatter(s, start=-2), (x, _r(2, 4, 5, seed=6)))
    with pytest.raises(ValueError, match=r"select_scatter: src must have shape \(3, 5\) \(that "
                                         r"of the slice it replaces\), got \(3, 4\)"):
        pt.select_scatter(pt.tensor(x), pt.zeros((3, 4)), 1, 0)
    with pytest.raises(IndexError, match="select_scatter: index 4 is out of range"):
        pt.select_scatter(pt.tensor(x), pt.zeros((3, 5)), 1, 4)


def test_index_put_top_level():
    x = pt.zeros(4)
    assert pt.index_put_(x, (pt.tensor([1, 1, 3]),), pt.tensor([1.0, 2.0, 3.0]),
                         accumulate=True) is x
    assert x.tolist() == [0.0, 3.0, 0.0, 3.0]


# --- 4. distances and reductions -----------------------------------------------------------
def test_distances():
    a, b = _r(4, 5), _r(4, 5, seed=1)
    _check(pt.cosine_similarity, torch.cosine_similarity, (a, b))
    _check(lambda u, v: pt.pairwise_distance(u, v, 1.5), lambda u, v: torch.pairwise_distance(
        u, v, 1.5), (a, b))
    for p in (2.0, 1.0, 3.0, 0.0, math.inf):
        _check(lambda u: pt.pdist(u, p), lambda u: torch.pdist(u, p), (_r(5, 3),),
               grad=p != 0.0)
    for p in (2, 1, 0.5, math.inf, -math.inf, 0):
        _check(lambda u, v: pt.dist(u, v, p), lambda u, v: torch.dist(u, v, p),
               (a, _r(5, seed=2)), grad=p != 0)
    _check(lambda u, v: u.dist(v), lambda u, v: u.dist(v), (a, b))
    _gradcheck(lambda u: pt.pdist(u), _r(4, 3))
    with pytest.raises(ValueError, match=r"pdist: expected a 2-D input \(N, M\), got shape "
                                         r"\(2, 3, 4\)"):
        pt.pdist(pt.zeros((2, 3, 4)))


def test_nanquantile():
    x = _r(4, 7)
    x[0, 2] = x[1, 0] = x[1, 5] = np.nan
    x[3, :] = np.nan
    for interp in ("linear", "lower", "higher", "midpoint", "nearest"):
        for q in (0.3, np.array([0.0, 0.25, 0.5, 1.0])):
            for dim, keep in ((1, False), (0, True), (None, False), (None, True)):
                _check(lambda v, q=q: pt.nanquantile(
                    v, q if np.isscalar(q) else pt.tensor(q), dim, keep,
                    interpolation=interp),
                    lambda v, q=q: torch.nanquantile(
                        v, q if np.isscalar(q) else torch.tensor(q), dim, keep,
                        interpolation=interp), (x,), grad=False)
    _check(lambda v: v.nanquantile(0.4, dim=1), lambda v: v.nanquantile(0.4, dim=1),
           (np.where(np.isnan(x), 0.0, x),))
    with pytest.raises(ValueError, match=r"nanquantile: q must be in the range \[0, 1\], got "
                                         r"1.5"):
        pt.nanquantile(pt.tensor(x), 1.5)


def test_mode():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (5, 9)).astype(np.float64)
    for dim, keep in ((1, False), (0, True), (-1, True)):
        _check(lambda v: pt.mode(v, dim, keep), lambda v: torch.mode(v, dim, keep), (x,))
    _check(lambda v: pt.mode(v), lambda v: torch.mode(v),
           (np.array([[1.0, 2, 2, 3, 3, 1], [5, 5, 4, 4, 0, 0]]),))
    _check(lambda v: v.mode(), lambda v: v.mode(), (rng.integers(-3, 3, (3, 4, 6)),),
           grad=False)
    _check(lambda v: pt.mode(v), lambda v: torch.mode(v), (np.array(2.5),))
    r = pt.mode(pt.tensor([1, 1, 2]))
    assert r.values.item() == 1 and r.indices.item() == 1
    with pytest.raises(ValueError, match="mode: the dimension 1 of the input of shape"):
        pt.mode(pt.zeros((2, 0)), 1)


def test_trapz_alias():
    y, x = _r(3, 6), np.sort(_r(6, seed=1))
    _check(lambda a, b: pt.trapz(a, b), lambda a, b: torch.trapz(a, b), (y, x))
    _check(lambda a: pt.trapz(a, dx=0.5, dim=0), lambda a: torch.trapz(a, dx=0.5, dim=0),
           (y,))


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient(edge_order):
    f = _r(5, 6)
    _check(lambda a: pt.gradient(a, edge_order=edge_order),
           lambda a: torch.gradient(a, edge_order=edge_order), (f,))
    _check(lambda a: pt.gradient(a, spacing=0.5, dim=1, edge_order=edge_order),
           lambda a: torch.gradient(a, spacing=0.5, dim=1, edge_order=edge_order), (f,))
    _check(lambda a: pt.gradient(a, spacing=[2.0, 0.25], edge_order=edge_order),
           lambda a: torch.gradient(a, spacing=[2.0, 0.25], edge_order=edge_order), (f,))
    c0, c1 = np.cumsum(np.abs(_r(5, seed=1)) + 0.2), np.cumsum(np.abs(_r(6, seed=2)) + 0.2)
    _check(lambda a, u, v: pt.gradient(a, spacing=(u, v), edge_order=edge_order),
           lambda a, u, v: torch.gradient(a, spacing=(u, v), edge_order=edge_order),
           (f, c0, c1))
    _check(lambda a: pt.gradient(a, dim=[-1]), lambda a: torch.gradient(a, dim=[-1]),
           (np.arange(12).reshape(3, 4) ** 2,), grad=False)
    _gradcheck(lambda a: pt.gradient(a, edge_order=edge_order)[1], _r(3, 4))


def test_gradient_errors():
    with pytest.raises(ValueError, match=r"gradient: each differentiated dimension needs at "
                                         r"least edge_order \+ 1 = 3 samples; dimension 0"):
        pt.gradient(pt.zeros((2, 5)), edge_order=2)
    with pytest.raises(ValueError, match="gradient: edge_order must be 1 or 2, got 3"):
        pt.gradient(pt.zeros(5), edge_order=3)


def test_histogram():
    x = _r(50) * 2
    for kw in ({}, {"range": (-1.0, 2.0)}, {"density": True}):
        for bins in (7, 1):
            _check(lambda v: pt.histogram(v, bins, **kw), lambda v: torch.histogram(
                v, bins, **kw), (x,), grad=False, rtol=1e-12)
    edges = np.array([-3.0, -1.0, 0.0, 0.5, 4.0])
    _check(lambda v, e: pt.histogram(v, e), lambda v, e: torch.histogram(v, e),
           (x, edges), grad=False)
    w = np.abs(_r(50, seed=3))
    _check(lambda v, e, ww: pt.histogram(v, e, weight=ww, density=True),
           lambda v, e, ww: torch.histogram(v, e, weight=ww, density=True),
           (x, edges, w), grad=False)
    _check(lambda v: v.histogram(3), lambda v: v.histogram(3),
           (np.array([1.0, 1.0, 1.0]),), grad=False)
    xe = np.array([0.0, 1.0, 2.0, 3.0, 3.0])  # the last edge falls in the last bin
    _check(lambda v: pt.histogram(v, 3), lambda v: torch.histogram(v, 3), (xe,), grad=False)
    _check(lambda v: pt.histogram(v, 4), lambda v: torch.histogram(v, 4),
           (x.astype(np.float32),), grad=False, rtol=1e-6)
    with pytest.raises(TypeError, match="histogram: expected a floating-point input, got int64"):
        pt.histogram(pt.tensor([1, 2]), 2)


# --- 5. nn.functional at the top level ------------------------------------------------------
def test_nn_aliases_same_signature():
    x, w = _r(2, 3, 9), _r(4, 3, 3, seed=1)
    _check(lambda a, b: pt.conv1d(a, b, None, 2, 1), lambda a, b: torch.conv1d(a, b, None, 2, 1),
           (x, w))
    _check(lambda a, b: pt.conv2d(a, b, padding=1), lambda a, b: torch.conv2d(a, b, padding=1),
           (_r(1, 3, 5, 5), _r(2, 3, 3, 3, seed=1)))
    _check(pt.conv3d, torch.conv3d, (_r(1, 2, 4, 4, 4), _r(3, 2, 2, 2, 2, seed=1)))
    _check(pt.conv_transpose1d, torch.conv_transpose1d, (_r(1, 3, 5), _r(3, 2, 3, seed=1)))
    _check(lambda a, b: pt.conv_transpose2d(a, b, stride=2),
           lambda a, b: torch.conv_transpose2d(a, b, stride=2),
           (_r(1, 3, 4, 4), _r(3, 2, 3, 3, seed=1)))
    _check(pt.conv_transpose3d, torch.conv_transpose3d,
           (_r(1, 2, 3, 3, 3), _r(2, 2, 2, 2, 2, seed=1)))
    _check(lambda a: pt.pixel_shuffle(a, 2), lambda a: torch.pixel_shuffle(a, 2),
           (_r(1, 8, 2, 3),))
    _check(lambda a: pt.pixel_unshuffle(a, 2), lambda a: torch.pixel_unshuffle(a, 2),
           (_r(1, 2, 4, 6),))
    _check(pt.prelu, torch.prelu, (_r(2, 3, 4), np.array([0.1, 0.2, 0.3])))
    _check(lambda a: a.prelu(pt.tensor([0.25], dtype=pt.float64)),
           lambda a: a.prelu(torch.tensor([0.25], dtype=torch.float64)),
           (_r(2, 3),))
    _check(lambda a: pt.hardshrink(a, 0.3), lambda a: torch.hardshrink(a, 0.3), (_r(5),))
    _check(lambda a: a.hardshrink(), lambda a: a.hardshrink(), (_r(5),))
    _check(pt.bilinear, torch.bilinear, (_r(3, 2), _r(3, 4, seed=1), _r(5, 2, 4, seed=2),
                                         _r(5, seed=3)))
    _check(lambda a, b: pt.rms_norm(a, (4,), b), lambda a, b: torch.rms_norm(a, (4,), b),
           (_r(3, 4), _r(4, seed=1)))


def test_nn_aliases_torch_signatures():
    x = _r(4, 3, 5)
    _check(lambda a: pt.dropout(a, 0.0, True), lambda a: torch.dropout(a, 0.0, True), (x,))
    _check(lambda a: pt.dropout(a, 0.7, False), lambda a: torch.dropout(a, 0.7, False), (x,))
    _check(lambda w, i: pt.embedding(w, i), lambda w, i: torch.embedding(w, i),
           (_r(6, 3), np.array([[0, 5], [2, 2]])))
    _check(lambda w, i: pt.embedding(w, i, 2), lambda w, i: torch.embedding(w, i, 2),
           (_r(6, 3), np.array([0, 2, 2, 1])))
    _check(lambda a, w, b: pt.layer_norm(a, (5,), w, b, 1e-3, False),
           lambda a, w, b: torch.layer_norm(a, (5,), w, b, 1e-3, False),
           (x, _r(5, seed=1), _r(5, seed=2)))
    _check(lambda a: pt.group_norm(a, 3), lambda a: torch.group_norm(a, 3), (x,))
    w, b = _r(3, seed=1), _r(3, seed=2)
    _check(lambda a, w, b: pt.batch_norm(a, w, b, None, None, True, 0.1, 1e-5, False),
           lambda a, w, b: torch.batch_norm(a, w, b, None, None, True, 0.1, 1e-5, False),
           (x, w, b))
    rm, rv = np.zeros(3), np.ones(3)
    pm, pv, tm, tv = pt.tensor(rm), pt.tensor(rv), torch.tensor(rm), torch.tensor(rv)
    _check(lambda a: pt.batch_norm(a, None, None, pm, pv, True, 0.3, 1e-5, True),
           lambda a: torch.batch_norm(a, None, None, tm, tv, True, 0.3, 1e-5, True), (x,))
    np.testing.assert_allclose(pm.numpy(), tm.numpy())
    np.testing.assert_allclose(pv.numpy(), tv.numpy())
    _check(lambda a, w, b: pt.instance_norm(a, w, b, None, None, True, 0.1, 1e-5, False),
           lambda a, w, b: torch.instance_norm(a, w, b, None, None, True, 0.1, 1e-5, False),
           (x, w, b))
    _check(pt.selu, torch.selu, (x,))
    _check(lambda a: pt.celu(a, 0.5), lambda a: torch.celu(a, 0.5), (x,))
    _check(lambda a: pt.rrelu(a), lambda a: torch.rrelu(a), (x,))
    _check(lambda a: pt.threshold(a, 0.1, -2.0), lambda a: torch.threshold(a, 0.1, -2.0), (x,))


@pytest.mark.parametrize("red", [0, 1, 2])
def test_loss_aliases(red):
    a, b = _r(4, 5), _r(4, 5, seed=1)
    t = np.array([1.0, -1.0, 1.0, -1.0])
    _check(lambda u, v, y: pt.cosine_embedding_loss(u, v, y, 0.1, red),
           lambda u, v, y: torch.cosine_embedding_loss(u, v, y, 0.1, red), (a, b, t))
    _check(lambda u, v, y: pt.margin_ranking_loss(u, v, y, 0.2, red),
           lambda u, v, y: torch.margin_ranking_loss(u, v, y, 0.2, red),
           (_r(4), _r(4, seed=1), t))
    _check(lambda u, y: pt.hinge_embedding_loss(u, y, 0.5, red),
           lambda u, y: torch.hinge_embedding_loss(u, y, 0.5, red), (_r(4), t))
    _check(lambda u, v, w: pt.triplet_margin_loss(u, v, w, 1.0, 2, 1e-6, True, red),
           lambda u, v, w: torch.triplet_margin_loss(u, v, w, 1.0, 2, 1e-6, True, red),
           (a, b, _r(4, 5, seed=2)))
    lp = torch.tensor(a).log_softmax(1).numpy()
    pr = torch.tensor(b).softmax(1).numpy()
    _check(lambda u, v: pt.kl_div(u, v, red), lambda u, v: torch.kl_div(u, v, red), (lp, pr))
    _check(lambda u, v: pt.kl_div(u, v, red, log_target=True),
           lambda u, v: torch.kl_div(u, v, red, log_target=True), (lp, np.log(pr)))
    _check(lambda u, v: pt.poisson_nll_loss(u, v, True, True, 1e-8, red),
           lambda u, v: torch.poisson_nll_loss(u, v, True, True, 1e-8, red),
           (a, np.abs(b) * 3))
    w, pw = np.abs(_r(5, seed=3)), np.abs(_r(5, seed=4))  # torch: no gradient for these
    _check(lambda u, v: pt.binary_cross_entropy_with_logits(u, v, pt.tensor(w), pt.tensor(pw),
                                                             red),
           lambda u, v: torch.binary_cross_entropy_with_logits(u, v, torch.tensor(w),
                                                                torch.tensor(pw), red),
           (a, (b > 0).astype(np.float64)))
    T, N, C = 6, 2, 4
    targets = np.array([[1, 2, 1], [3, 3, 0]])
    # through log_softmax: torch's own ctc gradient assumes it (and is exact only through it)
    _check(lambda u, tg: pt.ctc_loss(u.log_softmax(2), tg, [6, 5], [3, 2], 0, red),
           lambda u, tg: torch.ctc_loss(u.log_softmax(2), tg, [6, 5], [3, 2], 0, red),
           (_r(T, N, C), targets), rtol=1e-9, grad_rtol=1e-7)


def test_nn_alias_errors():
    with pytest.raises(ValueError, match=r"kl_div: reduction must be 0 \('none'\), 1 "
                                         r"\('mean'\) or 2 \('sum'\), got 3"):
        pt.kl_div(pt.zeros(2), pt.zeros(2), 3)
    assert pt.kl_div(pt.zeros(2), pt.ones(2), "sum").item() == 0.0  # strings are kept too
    assert pt.conv2d is F.conv2d


# --- 6. linear algebra ------------------------------------------------------------------------
def _spd(n, batch=(), seed=0):
    a = _r(*batch, n, n, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_inverse(upper):
    a = _spd(4, (2,))
    f = np.linalg.cholesky(a)
    f = np.swapaxes(f, -1, -2) if upper else f
    b = _r(2, 4, 3, seed=1)
    _check(lambda u, v: pt.cholesky_solve(u, v.detach(), upper),
           lambda u, v: torch.cholesky_solve(u, v.detach(), upper), (b, f), rtol=1e-9,
           atol=1e-11, grad_rtol=1e-6)
    _check(lambda v: pt.cholesky_inverse(v[0], upper),
           lambda v: torch.cholesky_inverse(v[0], upper), (f,), rtol=1e-9, atol=1e-11,
           grad=False)
    # the factor's gradient: torch's also fills the unused triangle; on the used one they agree
    tri = np.triu if upper else np.tril
    for fn_p, fn_t in ((lambda v: pt.cholesky_solve(pt.tensor(b), v, upper),
                        lambda v: torch.cholesky_solve(torch.tensor(b), v, upper)),
                       (lambda v: pt.cholesky_inverse(v, upper),
                        lambda v: torch.cholesky_inverse(v, upper))):
        fp, ft = pt.tensor(f, requires_grad=True), torch.tensor(f, requires_grad=True)
        (fn_p(fp) ** 2).sum().backward()
        (fn_t(ft) ** 2).sum().backward()
        np.testing.assert_allclose(fp.grad.numpy(), tri(ft.grad.numpy()), rtol=1e-7,
                                   atol=1e-10)
    _gradcheck(lambda v: pt.cholesky_solve(pt.tensor(b[0]), v, upper), f[0])
    _check(lambda v: v.cholesky_solve(v.mT @ v if upper else v @ v.mT, upper),
           lambda v: v.cholesky_solve(v.mT @ v if upper else v @ v.mT, upper), (f[0],),
           grad=False, rtol=1e-8)


def test_linalg_conveniences():
    a = _r(4, 3)
    _check(pt.pinverse, torch.pinverse, (a,), rtol=1e-9, atol=1e-11, grad_rtol=1e-6)
    _check(lambda x: x.pinverse(rcond=0.5), lambda x: x.pinverse(rcond=0.5), (a,), grad=False,
           rtol=1e-9)
    _check(lambda *m: pt.chain_matmul(*m), lambda *m: torch.chain_matmul(*m),
           (_r(2, 3), _r(3, 4, seed=1), _r(4, 2, seed=2)))
    _check(lambda i, u, v: pt.addr(i, u, v, beta=0.5, alpha=2),
           lambda i, u, v: torch.addr(i, u, v, beta=0.5, alpha=2), (_r(3, 4), _r(3), _r(4)))
    _check(lambda i, u, v: i.addr(u, v), lambda i, u, v: i.addr(u, v), (_r(4), _r(3), _r(4)))
    z = _r(2, 3, 4) + 1j * _r(2, 3, 4, seed=1)
    _check(pt.adjoint, torch.adjoint, (z,), grad=False)
    _check(lambda x: x.adjoint(), lambda x: x.adjoint(), (_r(3, 4),))
    x = pt.ones((2, 2))
    assert x.addr_(pt.tensor([1.0, 2.0]), pt.tensor([1.0, 1.0])) is x
    with pytest.raises(ValueError, match=r"addr: vec1 must be a vector, got shape \(2, 2\)"):
        pt.addr(x, x, pt.ones(2))
    with pytest.raises(ValueError, match=r"cholesky_solve: the factor must be square"):
        pt.cholesky_solve(pt.ones((3, 1)), pt.ones((3, 2)))


# --- names at torch's places ----------------------------------------------------------------
TOP = """erfc erfinv i0 logaddexp2 gcd lcm frexp ldexp isposinf isneginf isreal signbit
is_tensor numel is_nonzero is_signed is_floating_point is_complex scalar_tensor unravel_index
column_stack row_stack view_as_real view_as_complex hann_window hamming_window blackman_window
bartlett_window kaiser_window index_copy index_reduce diagonal_scatter select_scatter
slice_scatter index_put_ cosine_similarity pairwise_distance pdist cdist dist nanquantile mode
trapezoid trapz cumulative_trapezoid gradient histc histogram conv1d conv2d conv3d
conv_transpose1d conv_transpose2d conv_transpose3d dropout embedding layer_norm group_norm
batch_norm instance_norm pixel_shuffle pixel_unshuffle prelu selu celu rrelu hardshrink
threshold bilinear cosine_embedding_loss margin_ranking_loss hinge_embedding_loss
triplet_margin_loss kl_div poisson_nll_loss binary_cross_entropy_with_logits ctc_loss rms_norm
cholesky_solve cholesky_inverse pinverse chain_matmul addr adjoint""".split()
METHODS = """erfc erfc_ erfinv erfinv_ i0 i0_ logaddexp2 gcd gcd_ lcm lcm_ frexp ldexp_
isposinf isneginf isreal is_nonzero is_signed index_copy index_copy_ index_reduce
index_reduce_ diagonal_scatter select_scatter slice_scatter index_put_ dist nanquantile mode
histogram prelu hardshrink cholesky_solve cholesky_inverse pinverse addr addr_ adjoint""".split()
SPECIAL = "erfc erfinv i0 i0e i1 i1e".split()


def test_names_where_torch_has_them():
    for n in TOP:
        assert hasattr(torch, n), n
        assert hasattr(pt, n), n
    for n in METHODS:
        assert hasattr(torch.Tensor, n), n
        assert hasattr(pt.Tensor, n), n
    for n in SPECIAL:
        assert hasattr(torch.special, n), n
        assert n in ps.__all__ and hasattr(ps, n), n


# --------------------------------------------------------- in-place nn forms, F.pdist ---
@pytest.mark.parametrize("name, args", [
    ("relu_", ()), ("selu_", ()), ("celu_", (0.7,)), ("threshold_", (0.1, -2.0)),
    ("rrelu_", (0.1, 0.3, False)),
])
def test_top_level_and_functional_inplace_activations_match_torch(name, args):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(8).standard_normal((3, 4))
    for mod_pt, mod_t in ((pt, torch), (pt.nn.functional, torch.nn.functional)):
        x, tx = pt.tensor(a), torch.tensor(a)
        assert getattr(mod_pt, name)(x, *args) is x  # in place, returns its input
        getattr(mod_t, name)(tx, *args)
        np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-12)


def test_top_level_dropout_forms():
    torch = pytest.importorskip("torch")
    x = pt.ones(4, 6, 5, 3, dtype=pt.float64)
    assert pt.dropout_(x, 0.5, False) is x and bool((x == 1).all())
    pt.manual_seed(0)
    y = pt.feature_dropout(pt.ones(8, 16, 5, dtype=pt.float64), 0.5, True)
    # whole channels: each (n, c) row is all 0 or all 2
    rows = y.numpy().reshape(8 * 16, 5)
    assert set(np.unique(rows)) <= {0.0, 2.0} and (rows.min(1) == rows.max(1)).all()
    z = pt.ones(2, 3, dtype=pt.float64)
    assert pt.feature_dropout_(z, 0.3, False) is z
    a = np.random.default_rng(9).standard_normal((3, 4))
    for name in ("alpha_dropout", "feature_alpha_dropout"):
        got = getattr(pt, name)(pt.tensor(a), 0.2, False)
        want = getattr(torch, name)(torch.tensor(a), 0.2, False)
        np.testing.assert_allclose(got.numpy(), want.numpy())
    w = pt.tensor(a)
    assert pt.alpha_dropout_(w, 0.2, False) is w
    with pytest.raises(ValueError, match=r"feature_dropout: expected an input of at least 2 "
                                         r"dims \(N, C, \*\), got shape \(5,\)"):
        pt.feature_dropout(pt.ones(5), 0.5, True)


def test_functional_pdist_is_polytens():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(10).standard_normal((5, 3))
    np.testing.assert_allclose(pt.nn.functional.pdist(pt.tensor(a), 1.5).numpy(),
                               torch.nn.functional.pdist(torch.tensor(a), 1.5).numpy(),
                               rtol=1e-12)
