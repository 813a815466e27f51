"""``polyten/api/derived_extra.py``: in-place Tensor methods, torch's top-level in-place
spellings, small Tensor methods, the legacy linear algebra and binomial / poisson /
histogramdd / empty_strided / frombuffer, against PyTorch, NumPy / SciPy (float64) and
``polyten.autograd.gradcheck``."""

from __future__ import annotations

import array

import numpy as np
import pytest

import polyten as pt
from polyten.api import derived_extra as dx
from polyten.autograd import gradcheck

torch = pytest.importorskip("torch")


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np(x):
    if isinstance(x, torch.Tensor) and x._is_zerotensor():
        return np.zeros(tuple(x.shape))
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _version(t):
    """``t``'s version counter (counters are made lazily: a view makes one)."""
    t[...]
    return t._version_value


def _close(a, b, rtol=1e-10, atol=1e-12):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# =============================================================================================
# 1. in-place Tensor methods
# =============================================================================================
_CMP = ["eq", "ne", "not_equal", "lt", "le", "gt", "ge", "less", "less_equal", "greater",
        "greater_equal"]


@pytest.mark.parametrize("name", _CMP)
@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_comparison_inplace_matches_torch(name, dtype):
    a = np.array([[0, 1, 2], [2, 1, 0]]).astype(dtype)
    o = np.array([1, 1, 0]).astype(dtype)
    for other_p, other_t in ((pt.tensor(o), torch.tensor(o)), (1, 1)):
        p, t = pt.tensor(a), torch.tensor(a)
        v = _version(p)
        r = getattr(p, f"{name}_")(other_p)
        getattr(t, f"{name}_")(other_t)
        assert r is p and p.dtype.name == dtype
        assert p._version_value == v + 1
        np.testing.assert_array_equal(_np(p), t.numpy())


def test_comparison_inplace_float_scalar_into_int_and_views():
    p = pt.tensor([1, 2, 3])
    view = p[1:]
    p.lt_(2.5)
    np.testing.assert_array_equal(_np(p), [1, 1, 0])
    np.testing.assert_array_equal(_np(view), [1, 0])  # written through the memory


def test_comparison_inplace_autograd_zero_gradient_as_torch():
    x = pt.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    xt = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y, yt = x * 2, xt * 2
    y.gt_(0.0)
    yt.gt_(0.0)
    assert y.requires_grad and yt.requires_grad
    _close(y, yt)
    (y * 3).sum().backward()
    (yt * 3).sum().backward()
    _close(x.grad, xt.grad)
    with pytest.raises(RuntimeError, match="eq_.*leaf"):
        pt.tensor([1.0], requires_grad=True).eq_(1.0)


def test_comparison_inplace_errors():
    with pytest.raises(ValueError, match="lt_"):
        pt.zeros(3).lt_(pt.zeros(2, 3))  # would grow self
    with pytest.raises(TypeError, match="lt_"):
        pt.zeros(2, dtype=pt.complex128).lt_(0)
    with pytest.raises(TypeError, match="eq_"):
        pt.zeros(2).eq_()


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "logical_not"])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_logical_inplace_matches_torch(name, dtype):
    a = np.array([0, 1, 2, 0]).astype(dtype)
    o = np.array([0, 0, 3, 1]).astype("float64")
    p, t = pt.tensor(a), torch.tensor(a)
    args_p, args_t = ((), ()) if name == "logical_not" else ((pt.tensor(o),), (torch.tensor(o),))
    assert getattr(p, f"{name}_")(*args_p) is p
    getattr(t, f"{name}_")(*args_t)
    assert p.dtype.name == dtype
    np.testing.assert_array_equal(_np(p), t.numpy())


# (name, args(polyten module or torch) -> tuple, kwargs, self shape, self maker)
_GEN = {
    "cumsum": (lambda m: (1,), {}, (3, 4)),
    "cumprod": (lambda m: (0,), {}, (3, 4)),
    "addmm": (lambda m: (m.tensor(_r(3, 2, seed=1)), m.tensor(_r(2, 4, seed=2))),
              {"beta": 0.5, "alpha": 2.0}, (3, 4)),
    "addmv": (lambda m: (m.tensor(_r(3, 4, seed=1)), m.tensor(_r(4, seed=2))),
              {"beta": 2.0, "alpha": -1.0}, (3,)),
    "addbmm": (lambda m: (m.tensor(_r(2, 3, 5, seed=1)), m.tensor(_r(2, 5, 4, seed=2))), {},
               (3, 4)),
    "baddbmm": (lambda m: (m.tensor(_r(2, 3, 5, seed=1)), m.tensor(_r(2, 5, 4, seed=2))),
                {"alpha": 0.5}, (2, 3, 4)),
    "xlogy": (lambda m: (m.tensor(np.abs(_r(3, 4, seed=1)) + 0.1),), {}, (3, 4)),
    "sinc": (lambda m: (), {}, (3, 4)),
    "frac": (lambda m: (), {}, (3, 4)),
    "deg2rad": (lambda m: (), {}, (3, 4)),
    "rad2deg": (lambda m: (), {}, (3, 4)),
    "heaviside": (lambda m: (m.tensor(np.array([0.5, 1.0, 0.0, 2.0])),), {}, (3, 4)),
    "logit": (lambda m: (1e-3,), {}, (3, 4)),
    "sgn": (lambda m: (), {}, (3, 4)),
    "renorm": (lambda m: (2, 0, 1.0), {}, (3, 4)),
    "index_fill": (lambda m: (1, m.tensor([0, 2]), -1.5), {}, (3, 4)),
    "masked_scatter": (lambda m: (m.tensor(_r(3, 4, seed=3) > 0),
                                  m.tensor(_r(12, seed=4))), {}, (3, 4)),
}


def _self_values(name, shape):
    x = _r(*shape, seed=7) * 2
    if name == "logit":
        x = 1 / (1 + np.exp(-x))
    if name == "heaviside":
        x[0, :2] = 0.0
    return x


@pytest.mark.parametrize("name", sorted(_GEN))
def test_generic_inplace_values_identity_version(name):
    args, kwargs, shape = _GEN[name]
    x = _self_values(name, shape)
    p, t = pt.tensor(x), torch.tensor(x)
    v = _version(p)
    r = getattr(p, f"{name}_")(*args(pt), **kwargs)
    getattr(t, f"{name}_")(*args(torch), **kwargs)
    assert r is p
    assert p._version_value > v
    _close(p, t, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(_GEN))
def test_generic_inplace_autograd_matches_torch(name):
    args, kwargs, shape = _GEN[name]
    x = _self_values(name, shape)
    xp = pt.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yp, yt = xp * 1.5, xt * 1.5
    if name == "logit":
        yp, yt = xp * 1.0, xt * 1.0
    getattr(yp, f"{name}_")(*args(pt), **kwargs)
    getattr(yt, f"{name}_")(*args(torch), **kwargs)
    _close(yp, yt, rtol=1e-12)
    w = _r(*shape, seed=11)
    (yp * pt.tensor(w)).sum().backward()
    if name == "heaviside":  # torch: "derivative not implemented"; polyten: zero, as sign's
        np.testing.assert_array_equal(_np(xp.grad), np.zeros(shape))
    else:
        (yt * torch.tensor(w)).sum().backward()
        _close(xp.grad, xt.grad, rtol=1e-9, atol=1e-11)
    with pytest.raises(RuntimeError, match=f"{name}_"):
        getattr(pt.tensor(x, requires_grad=True), f"{name}_")(*args(pt), **kwargs)


def test_generic_inplace_operand_gradient_and_dtype_errors():
    # gradients reach the other operands too (addmm_'s mat1)
    m1 = _r(3, 2, seed=1)
    a, b = pt.tensor(m1, requires_grad=True), torch.tensor(m1, requires_grad=True)
    yp, yt = pt.zeros(3, 4, dtype=pt.float64), torch.zeros(3, 4, dtype=torch.float64)
    yp.addmm_(a, pt.tensor(_r(2, 4, seed=2)))
    yt.addmm_(b, torch.tensor(_r(2, 4, seed=2)))
    assert yp.requires_grad
    yp.sum().backward()
    yt.sum().backward()
    _close(a.grad, b.grad)
    with pytest.raises(TypeError, match="sinc_.*float"):
        pt.tensor([1, 2]).sinc_()
    with pytest.raises(IndexError, match="cumsum_.*dimension out of range"):
        pt.zeros(2, 3).cumsum_(4)


def test_swapaxes_inplace_changes_the_view():
    for name in ("swapdims_", "swapaxes_"):
        base = pt.arange(6.0).reshape(2, 3)
        row = base[0]
        v = _version(base)
        r = getattr(base, name)(0, 1)
        assert r is base and tuple(base.shape) == (3, 2)
        tb = torch.arange(6.0).reshape(2, 3)
        getattr(tb, name)(0, 1)
        _close(base, tb)
        assert base._version_value == v + 1
    row[0] = 100.0  # the same memory: the swapped tensor sees writes through older views
    assert base[0, 0].item() == 100.0
    base[2, 0] = -1.0  # (0, 2) before the swap
    assert row[2].item() == -1.0
    with pytest.raises((ValueError, IndexError), match="swapaxes"):
        pt.zeros(2, 3).swapaxes_(0, 5)


def test_swapaxes_inplace_autograd():
    x = _r(2, 3)
    xp, xt = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yp, yt = xp * 2, xt * 2
    yp.swapaxes_(0, 1)
    yt.swapaxes_(0, 1)
    w = _r(3, 2, seed=3)
    (yp * pt.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(xp.grad, xt.grad)
    with pytest.raises(RuntimeError, match="swapaxes_.*leaf"):
        pt.tensor(x, requires_grad=True).swapaxes_(0, 1)


@pytest.mark.parametrize("shape,wrap", [((3, 3), False), ((3, 5), False), ((5, 3), False),
                                        ((5, 3), True), ((7, 3), True), ((4, 3), True),
                                        ((2, 2, 2), False), ((3, 3, 3), True)])
def test_fill_diagonal_matches_torch(shape, wrap):
    x = _r(*shape)
    p, t = pt.tensor(x), torch.tensor(x)
    assert p.fill_diagonal_(2.5, wrap=wrap) is p
    t.fill_diagonal_(2.5, wrap=wrap)
    _close(p, t)
    a = np.zeros(shape)
    np.fill_diagonal(a, 2.5, wrap=wrap)
    np.testing.assert_array_equal(_np(p) == 2.5, a == 2.5)


def test_fill_diagonal_int_autograd_errors():
    p = pt.zeros(2, 3, dtype=pt.int64)
    p.fill_diagonal_(1.7)
    np.testing.assert_array_equal(_np(p), torch.zeros(2, 3, dtype=torch.int64)
                                  .fill_diagonal_(1.7).numpy())
    x = pt.tensor(_r(3, 3), requires_grad=True)
    y = x * 1
    y.fill_diagonal_(0.0)
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), 1 - np.eye(3))
    with pytest.raises(ValueError, match="fill_diagonal_.*at least 2"):
        pt.zeros(3).fill_diagonal_(1)
    with pytest.raises(ValueError, match="fill_diagonal_.*same length"):
        pt.zeros(2, 3, 2).fill_diagonal_(1)


def test_put_matches_torch():
    x = _r(2, 3)
    idx = np.array([0, -1, 2])
    src = np.array([1.0, 2.0, 3.0])
    _close(pt.put(pt.tensor(x), pt.tensor(idx), pt.tensor(src)),
           torch.put(torch.tensor(x), torch.tensor(idx), torch.tensor(src)))
    for acc in (False, True):
        p, t = pt.tensor(x), torch.tensor(x)
        i2, s2 = np.array([[0, 4], [4, 1]]), np.array([[1.0, 2.0], [3.0, 4.0]])
        if not acc:
            i2 = np.array([[0, 4], [5, 1]])
        assert p.put_(pt.tensor(i2), pt.tensor(s2), accumulate=acc) is p
        t.put_(torch.tensor(i2), torch.tensor(s2), accumulate=acc)
        _close(p, t)
        _close(pt.tensor(x).put(pt.tensor(i2), pt.tensor(s2), acc),
               torch.tensor(x).put(torch.tensor(i2), torch.tensor(s2), acc))
    # a non-contiguous tensor: positions are its logical row-major ones
    p, t = pt.zeros(2, 3).t(), torch.zeros(2, 3).t()
    p.put_(pt.tensor([1]), pt.tensor([5.0]))
    t.put_(torch.tensor([1]), torch.tensor([5.0]))
    _close(p, t)


def test_put_gradients_and_errors():
    x, s = _r(2, 3), _r(3, seed=1)
    xp, sp = pt.tensor(x, requires_grad=True), pt.tensor(s, requires_grad=True)
    xt, st = torch.tensor(x, requires_grad=True), torch.tensor(s, requires_grad=True)
    idx = [0, 4, 4]
    w = _r(2, 3, seed=5)
    (pt.put(xp, pt.tensor(idx), sp, accumulate=True) * pt.tensor(w)).sum().backward()
    (torch.put(xt, torch.tensor(idx), st, accumulate=True) * torch.tensor(w)).sum().backward()
    _close(xp.grad, xt.grad)
    _close(sp.grad, st.grad)
    assert gradcheck(lambda a, b: pt.put(a, pt.tensor([1, 5, 3]), b),
                     (pt.tensor(x, requires_grad=True), pt.tensor(s, requires_grad=True)))
    with pytest.raises(IndexError, match="put.*index 6.*6 elements"):
        pt.zeros(2, 3).put_(pt.tensor([6]), pt.tensor([5.0]))
    with pytest.raises(ValueError, match="put.*same number of elements"):
        pt.zeros(2, 3).put_(pt.tensor([1, 2]), pt.tensor([5.0]))
    with pytest.raises(TypeError, match="put.*int64"):
        pt.zeros(2, 3).put_(pt.tensor([1.0]), pt.tensor([5.0]))
    with pytest.raises(TypeError, match="put.*dtype"):
        pt.zeros(2, 3).put_(pt.tensor([1]), pt.tensor([5]))


def test_random_fills_distribution_seed_and_generator():
    from scipy import stats
    pt.manual_seed(5)
    c = pt.empty(20000, dtype=pt.float64)
    assert c.cauchy_(1.0, 2.0) is c
    assert stats.kstest(_np(c), stats.cauchy(1.0, 2.0).cdf).pvalue > 1e-4
    g = pt.empty(20000, dtype=pt.float64).geometric_(0.3)
    vals, counts = np.unique(_np(g), return_counts=True)
    assert vals.min() >= 1 and np.all(vals == np.round(vals))
    for k in (1, 2, 3, 5):
        np.testing.assert_allclose(counts[vals == k][0] / 20000, stats.geom(0.3).pmf(k),
                                   atol=0.015)
    ln = pt.empty(20000, dtype=pt.float32).log_normal_(0.5, 0.25)
    assert ln.dtype is pt.float32
    assert stats.kstest(_np(ln).astype(np.float64),
                        stats.lognorm(0.25, scale=np.exp(0.5)).cdf).pvalue > 1e-4
    gi = pt.empty(1000, dtype=pt.int64).geometric_(0.5)
    assert gi.dtype is pt.int64 and int(gi.min()) >= 1
    # manual_seed reproduces; generator= draws from its own stream and leaves the global one
    for name, args in (("cauchy_", ()), ("geometric_", (0.4,)), ("log_normal_", ())):
        pt.manual_seed(11)
        a = getattr(pt.empty(5, dtype=pt.float64), name)(*args)
        pt.manual_seed(11)
        b = getattr(pt.empty(5, dtype=pt.float64), name)(*args)
        np.testing.assert_array_equal(_np(a), _np(b))
        gen = pt.Generator().manual_seed(3)
        pt.manual_seed(11)
        c1 = getattr(pt.empty(5, dtype=pt.float64), name)(*args, generator=gen)
        after = pt.rand(3)
        gen.manual_seed(3)
        c2 = getattr(pt.empty(5, dtype=pt.float64), name)(*args, generator=gen)
        np.testing.assert_array_equal(_np(c1), _np(c2))
        pt.manual_seed(11)
        np.testing.assert_array_equal(_np(after), _np(pt.rand(3)))


def test_random_fills_errors():
    with pytest.raises(TypeError, match="cauchy_"):
        pt.empty(3, dtype=pt.int64).cauchy_()
    with pytest.raises(ValueError, match="cauchy_.*sigma"):
        pt.empty(3).cauchy_(sigma=0)
    with pytest.raises(ValueError, match=r"geometric_.*\(0, 1\)"):
        pt.empty(3).geometric_(1.0)
    with pytest.raises(TypeError, match="geometric_"):
        pt.empty(3, dtype=pt.bool).geometric_(0.5)
    with pytest.raises(TypeError, match="log_normal_"):
        pt.empty(3, dtype=pt.int64).log_normal_()
    with pytest.raises(ValueError, match="log_normal_.*std"):
        pt.empty(3).log_normal_(std=0)
    with pytest.raises(RuntimeError, match="leaf"):
        pt.empty(3, requires_grad=True).cauchy_()


# =============================================================================================
# 2. torch.<name>_ spellings
# =============================================================================================
_KNOWN_GAPS = {"as_strided_", "resize_as_sparse_"}  # no strided views / sparse tensors


def test_every_torch_inplace_spelling_exists():
    names = {n for n in dir(torch) if n.endswith("_") and not n.startswith("_")}
    missing = sorted(n for n in names if not hasattr(pt, n))
    assert set(missing) <= _KNOWN_GAPS, missing
    for n in dx._TOP_INPLACE:
        assert hasattr(pt.Tensor, n), n


_DOMAIN = {"acos_": (-0.9, 0.9), "arccos_": (-0.9, 0.9), "asin_": (-0.9, 0.9),
           "arcsin_": (-0.9, 0.9), "atanh_": (-0.9, 0.9), "arctanh_": (-0.9, 0.9),
           "logit_": (0.1, 0.9), "acosh_": (1.1, 3.0), "arccosh_": (1.1, 3.0)}
_EXTRA = {"clamp_": (-0.5, 0.5), "clip_": (-0.5, 0.5), "clamp_max_": (0.3,),
          "clamp_min_": (0.3,), "fill_": (2.0,), "round_": (), "nan_to_num_": (0.0,)}


@pytest.mark.parametrize("name", [n for n in dx._TOP_INPLACE
                                  if n not in ("addmv_", "gcd_", "lcm_", "ldexp_", "xlogy_",
                                               "detach_")])
def test_top_level_inplace_float(name):
    lo, hi = _DOMAIN.get(name, (0.1, 0.9))
    x = np.linspace(lo, hi, 7)
    args = _EXTRA.get(name, ())
    p, t = pt.tensor(x), torch.tensor(x)
    assert getattr(pt, name)(p, *args) is p
    getattr(torch, name)(t, *args)
    _close(p, t, rtol=1e-12)


def test_top_level_inplace_binary_and_detach():
    a, b = np.array([4, 6, 9]), np.array([6, 4, 3])
    for name in ("gcd_", "lcm_"):
        p, t = pt.tensor(a), torch.tensor(a)
        getattr(pt, name)(p, pt.tensor(b))
        getattr(torch, name)(t, torch.tensor(b))
        _close(p, t)
    p, t = pt.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
    pt.ldexp_(p, pt.tensor([2, 3]))
    torch.ldexp_(t, torch.tensor([2, 3]))
    _close(p, t)
    p, t = pt.tensor([0.0, 2.0]), torch.tensor([0.0, 2.0])
    pt.xlogy_(p, pt.tensor([0.0, 3.0]))
    torch.xlogy_(t, torch.tensor([0.0, 3.0]))
    _close(p, t)
    m, v = _r(3, 4), _r(4, seed=1)
    p, t = pt.zeros(3, dtype=pt.float64), torch.zeros(3, dtype=torch.float64)
    pt.addmv_(p, pt.tensor(m), pt.tensor(v), alpha=2.0)
    torch.addmv_(t, torch.tensor(m), torch.tensor(v), alpha=2.0)
    _close(p, t)
    y = pt.tensor([1.0], requires_grad=True) * 2
    assert pt.detach_(y) is y and not y.requires_grad
    with pytest.raises(TypeError, match="exp_: input must be a tensor"):
        pt.exp_([1.0])


def test_embedding_renorm_matches_torch():
    w = _r(5, 3)
    p, t = pt.tensor(w), torch.tensor(w)
    assert pt.embedding_renorm_(p, pt.tensor([0, 2, 2]), 1.0, 2.0) is p
    torch.embedding_renorm_(t, torch.tensor([0, 2, 2]), 1.0, 2.0)
    _close(p, t)
    with pytest.raises(IndexError, match="embedding_renorm_"):
        pt.embedding_renorm_(p, pt.tensor([5]), 1.0, 2.0)
    with pytest.raises(TypeError, match="embedding_renorm_"):
        pt.embedding_renorm_(p, pt.tensor([0.0]), 1.0, 2.0)


# =============================================================================================
# 3. small methods and functions
# =============================================================================================
def test_cov_corrcoef_methods():
    x = _r(3, 6)
    fw = np.array([1, 2, 1, 3, 1, 1])
    _close(pt.tensor(x).cov(correction=0, fweights=pt.tensor(fw)),
           torch.tensor(x).cov(correction=0, fweights=torch.tensor(fw)))
    _close(pt.tensor(x).corrcoef(), torch.tensor(x).corrcoef())
    _close(pt.tensor(x).cov(), np.cov(x))


def test_angle():
    x = np.array([-1.5, np.nan, -0.0, 0.0, 2.0, -np.inf])
    _close(pt.angle(pt.tensor(x)), torch.angle(torch.tensor(x)))
    r = pt.tensor([1, -2, 0]).angle()
    assert r.dtype is pt.float32
    _close(r, torch.angle(torch.tensor([1, -2, 0])))
    z = _r(4) + 1j * _r(4, seed=1)
    zp, zt = pt.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    a = pt.angle(zp)
    assert a.dtype is pt.float64
    _close(a, np.angle(z))
    w = _r(4, seed=2)
    (a * pt.tensor(w)).sum().backward()
    (torch.angle(zt) * torch.tensor(w)).sum().backward()
    _close(zp.grad, zt.grad)
    xp = pt.tensor([-1.0, 2.0], requires_grad=True)
    y = pt.angle(xp)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(_np(xp.grad), [0.0, 0.0])


def test_conj_resolve_and_predicates():
    z = pt.tensor([1 + 2j, 3 - 1j])
    _close(pt.conj_physical(z), np.conj(_np(z)))
    x = pt.tensor([1.0, 2.0])
    assert pt.conj_physical(x) is x and x.conj_physical() is x
    v = _version(z)
    assert pt.conj_physical_(z) is z and z._version_value == v + 1
    _close(z, np.array([1 - 2j, 3 + 1j]))
    assert x.conj_physical_() is x
    for f in ("resolve_conj", "resolve_neg"):
        assert getattr(pt, f)(z) is z and getattr(z, f)() is z
    assert not pt.is_conj(pt.conj(z)) and not z.is_neg()
    assert pt.is_same_size(x, pt.zeros(2)) and not x.is_same_size(pt.zeros(2, 1))
    y = pt.tensor([1.0], requires_grad=True)
    d = pt.detach(y)
    assert not d.requires_grad
    d[0] = 5.0
    assert y.item() == 5.0
    with pytest.raises(TypeError, match="is_same_size"):
        pt.is_same_size(x, [1, 2])


def test_narrow_copy_and_splits():
    x = pt.arange(12.0).reshape(3, 4)
    c = x.narrow_copy(1, 1, 2)
    _close(c, torch.arange(12.0).reshape(3, 4).narrow_copy(1, 1, 2))
    c[0, 0] = -1.0
    assert x[0, 1].item() == 1.0  # a copy
    t = torch.arange(12.0).reshape(3, 4)
    for fp, ft in ((lambda m, a: m.split_with_sizes(a, [1, 3], 1),) * 2,
                   (lambda m, a: m.unsafe_split_with_sizes(a, [2, 1]),) * 2,
                   (lambda m, a: m.unsafe_split(a, 2, 1),) * 2,
                   (lambda m, a: m.unsafe_chunk(a, 2),) * 2):
        rp, rt = fp(pt, x), ft(torch, t)
        assert isinstance(rp, tuple) and len(rp) == len(rt)
        for a, b in zip(rp, rt):
            _close(a, b)
    assert len(x.split_with_sizes([3, 0, 1], dim=1)) == 3
    assert len(x.unsafe_chunk(3, 1)) == 2
    with pytest.raises(ValueError, match="split_with_sizes.*sum exactly to 4"):
        x.split_with_sizes([2, 1], dim=1)
    with pytest.raises(ValueError, match="split_with_sizes"):
        x.split_with_sizes([5, -1], dim=1)


def test_sum_to_size():
    x = _r(2, 3, 4)
    for size in [(3, 4), (1, 4), (2, 1, 4), (1, 1, 1), (4,), (2, 3, 4), ()]:
        if size == ():
            continue
        _close(pt.tensor(x).sum_to_size(size), torch.tensor(x).sum_to_size(size))
        _close(pt.tensor(x).sum_to_size(*size), torch.tensor(x).sum_to_size(*size))
    assert gradcheck(lambda a: a.sum_to_size(1, 4), (pt.tensor(x, requires_grad=True),))
    with pytest.raises(ValueError, match="sum_to_size.*not expandable"):
        pt.tensor(x).sum_to_size(2)
    with pytest.raises(ValueError, match="sum_to_size"):
        pt.tensor(x).sum_to_size(5, 2, 3, 4)


def test_resize_and_resize_as():
    x = pt.arange(6.0).reshape(2, 3)
    v = _version(x)
    assert x.resize_(4) is x and tuple(x.shape) == (4,)
    assert x._version_value == v + 1
    t = torch.arange(6.0).reshape(2, 3).resize_(4)
    _close(x, t)
    x.resize_(2, 3)
    np.testing.assert_array_equal(_np(x)[0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(_np(x)[1], [3.0, 0.0, 0.0])  # new elements: zeros
    x = pt.arange(6.0).reshape(2, 3)
    view = x[0]
    x.resize_((3,))  # shrinking a contiguous tensor keeps its memory
    x[0] = 50.0
    assert view[0].item() == 50.0
    y = pt.zeros(2, 2)
    assert pt.resize_as_(y, pt.zeros(3, 1)) is y and tuple(y.shape) == (3, 1)
    assert y.resize_as_(pt.zeros(4)).shape == (4,)
    with pytest.raises(RuntimeError, match="resize_.*requires grad"):
        pt.zeros(3, requires_grad=True).resize_(3)
    with pytest.raises(RuntimeError, match="resize_.*requires grad"):
        (pt.zeros(3, requires_grad=True) * 2).resize_(2)
    with pytest.raises(ValueError, match="resize_"):
        pt.zeros(3).resize_(-1)


def test_matrix_exp():
    a = _r(2, 3, 3) * 0.5
    _close(pt.matrix_exp(pt.tensor(a)), torch.matrix_exp(torch.tensor(a)), rtol=1e-9)
    _close(pt.tensor(a).matrix_exp(), torch.tensor(a).matrix_exp(), rtol=1e-9)
    with pytest.raises(TypeError, match="matrix_exp"):
        pt.matrix_exp(a)


# =============================================================================================
# 4. legacy linear algebra
# =============================================================================================
def _sign_fix(Q, R):
    """Make R's diagonal non-negative (QR is unique up to the signs of Q's columns)."""
    s = np.sign(np.diagonal(R, axis1=-2, axis2=-1))
    s[s == 0] = 1
    sq = np.ones(Q.shape[:-2] + (Q.shape[-1],))
    sq[..., :s.shape[-1]] = s
    sr = np.ones(R.shape[:-1])
    sr[..., :s.shape[-1]] = s
    return Q * sq[..., None, :], R * sr[..., :, None]


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4)])
@pytest.mark.parametrize("some", [True, False])
def test_qr(shape, some):
    a = _r(*shape)
    rp, rt = pt.qr(pt.tensor(a), some=some), torch.qr(torch.tensor(a), some=some)
    assert rp._fields == ("Q", "R")
    for x, y in zip(_sign_fix(_np(rp.Q), _np(rp.R)), _sign_fix(rt.Q.numpy(), rt.R.numpy())):
        _close(x, y, rtol=1e-9, atol=1e-10)
    q2, r2 = pt.tensor(a).qr(some)
    _close(q2, rp.Q)
    if some or shape[-2] <= shape[-1]:
        assert gradcheck(lambda m: pt.qr(m, some), (pt.tensor(a, requires_grad=True),))


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3)])
@pytest.mark.parametrize("some", [True, False])
def test_svd(shape, some):
    a = _r(*shape)
    rp, rt = pt.svd(pt.tensor(a), some=some), torch.svd(torch.tensor(a), some=some)
    assert rp._fields == ("U", "S", "V")
    _close(rp.S, rt.S, rtol=1e-10)
    assert rp.U.shape == rt.U.shape and rp.V.shape == rt.V.shape
    k = min(shape[-2:])
    # singular vectors are unique up to a sign per pair
    s = np.sign(np.sum(_np(rp.U)[..., :k] * rt.U.numpy()[..., :k], axis=-2))
    _close(_np(rp.U)[..., :k] * s[..., None, :], rt.U.numpy()[..., :k], atol=1e-9)
    _close(_np(rp.V)[..., :k] * s[..., None, :], rt.V.numpy()[..., :k], atol=1e-9)
    recon = _np(rp.U)[..., :k] * _np(rp.S)[..., None, :] @ np.swapaxes(_np(rp.V)[..., :k],
                                                                       -1, -2)
    _close(recon, a, atol=1e-12)
    nu = pt.svd(pt.tensor(a), compute_uv=False)
    tu = torch.svd(torch.tensor(a), compute_uv=False)
    for x, y in zip(nu, tu):
        _close(x, y, rtol=1e-10)
    assert pt.tensor(a).svd(some).S.shape == rt.S.shape


def test_svd_gradients():
    a = _r(4, 3)

    def f(m):
        U, S, V = pt.svd(m)
        return (U * S.unsqueeze(-2)) @ V.mT, S, (U @ U.mT)
    assert gradcheck(f, (pt.tensor(a, requires_grad=True),))
    ap, at = pt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w = _r(4, 4, seed=3)
    up, sp, vp = pt.svd(ap)
    ut, st, vt = torch.svd(at)
    ((up @ pt.diag(sp) @ vp.mT) * pt.tensor(_r(4, 3, seed=4))).sum().backward(retain_graph=True)
    ((ut @ torch.diag(st) @ vt.mT) * torch.tensor(_r(4, 3, seed=4))).sum().backward(
        retain_graph=True)
    _close(ap.grad, at.grad, rtol=1e-8, atol=1e-10)
    ap.grad, at.grad = None, None
    ((up @ up.mT) * pt.tensor(w)).sum().backward()
    ((ut @ ut.mT) * torch.tensor(w)).sum().backward()
    _close(ap.grad, at.grad, rtol=1e-8, atol=1e-10)
    s_only = pt.tensor(a, requires_grad=True)
    pt.svd(s_only, compute_uv=False).S.sum().backward()
    s_t = torch.tensor(a, requires_grad=True)
    torch.svd(s_t, compute_uv=False).S.sum().backward()
    _close(s_only.grad, s_t.grad, rtol=1e-9)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(upper):
    m = _r(2, 4, 4)
    a = m @ np.swapaxes(m, -1, -2) + 4 * np.eye(4)
    _close(pt.cholesky(pt.tensor(a), upper=upper), torch.cholesky(torch.tensor(a), upper=upper))
    _close(pt.tensor(a).cholesky(upper), torch.tensor(a).cholesky(upper))
    assert gradcheck(lambda x: pt.cholesky((x + x.mT) / 2, upper=upper),
                     (pt.tensor(a, requires_grad=True),))
    with pytest.raises(ValueError, match="cholesky.*square"):
        pt.cholesky(pt.zeros(3, 2))
    with pytest.raises(pt.linalg.LinAlgError):
        pt.cholesky(pt.tensor(-np.eye(2)))


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (4, 3), (3, 5)])
def test_lu_and_unpack(shape):
    a = _r(*shape)
    LU, piv = pt.lu(pt.tensor(a))
    LUt, pivt = torch.lu(torch.tensor(a))
    assert piv.dtype is pt.int32
    _close(LU, LUt, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(_np(piv), pivt.numpy())
    r = pt.lu(pt.tensor(a), get_infos=True)
    assert r._fields == ("LU", "pivots", "info") and r.info.dtype is pt.int32
    assert tuple(r.info.shape) == shape[:-2] and not _np(r.info).any()
    up, ut = pt.lu_unpack(LU, piv), torch.lu_unpack(LUt, pivt)
    assert up._fields == ("P", "L", "U")
    for x, y in zip(up, ut):
        _close(x, y, rtol=1e-10, atol=1e-12)
    _close(up.P @ up.L @ up.U, a, atol=1e-12)
    e1 = pt.lu_unpack(LU, piv, unpack_data=False)
    assert e1.L.numel() == 0 and e1.U.numel() == 0
    _close(e1.P, ut.P)
    e2 = pt.lu_unpack(LU, piv, unpack_pivots=False)
    assert e2.P.numel() == 0
    _close(e2.L, ut.L)
    LU2, piv2 = pt.tensor(a).lu()
    _close(LU2, LU)


def test_lu_singular_infos_and_gradients():
    LU, piv, info = pt.lu(pt.zeros(2, 2, dtype=pt.float64), get_infos=True)
    ref = torch.lu(torch.zeros(2, 2, dtype=torch.float64), get_infos=True)
    np.testing.assert_array_equal(_np(info), ref.info.numpy())
    np.testing.assert_array_equal(_np(piv), ref.pivots.numpy())
    a = _r(3, 3)
    assert gradcheck(lambda x: pt.lu(x)[0], (pt.tensor(a, requires_grad=True),))

    def unpacked(x):
        LU, piv = pt.lu(x)
        P, L, U = pt.lu_unpack(LU, piv)
        return L, U
    assert gradcheck(unpacked, (pt.tensor(a, requires_grad=True),))
    ap, at = pt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    _, Lp, Up = pt.lu_unpack(*pt.lu(ap))
    _, Lt, Ut = torch.lu_unpack(*torch.lu(at))
    w1, w2 = _r(3, 3, seed=1), _r(3, 3, seed=2)
    ((Lp * pt.tensor(w1)).sum() + (Up * pt.tensor(w2)).sum()).backward()
    ((Lt * torch.tensor(w1)).sum() + (Ut * torch.tensor(w2)).sum()).backward()
    _close(ap.grad, at.grad, rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="lu_unpack.*LU_pivots"):
        pt.lu_unpack(pt.zeros(3, 3), pt.ones(3, dtype=pt.int64))
    with pytest.raises(ValueError, match=r"lu_unpack.*\[1, 3\]"):
        pt.lu_unpack(pt.zeros(3, 3), pt.tensor([0, 2, 3], dtype=pt.int32))
    with pytest.raises(TypeError, match="lu.*floating"):
        pt.lu(pt.zeros(3, 3, dtype=pt.int64))


def test_lu_solve():
    a, b = _r(2, 3, 3), _r(2, 3, 2, seed=1)
    LU, piv = pt.lu(pt.tensor(a))
    LUt, pivt = torch.lu(torch.tensor(a))
    _close(pt.lu_solve(pt.tensor(b), LU, piv), torch.lu_solve(torch.tensor(b), LUt, pivt),
           rtol=1e-9)
    _close(pt.tensor(b).lu_solve(LU, piv), np.linalg.solve(a, b), rtol=1e-9)

    def f(x, y):
        LU, piv = pt.lu(x)
        return pt.lu_solve(y, LU, piv)
    assert gradcheck(f, (pt.tensor(a, requires_grad=True), pt.tensor(b, requires_grad=True)))
    with pytest.raises(ValueError, match="lu_solve.*rows"):
        pt.lu_solve(pt.zeros(2, 4, 1, dtype=pt.float64), LU, piv)
    with pytest.raises(ValueError, match="lu_solve.*LU_pivots"):
        pt.lu_solve(pt.tensor(b), LU, piv[..., :2])


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_triangular_solve(upper, transpose, unit):
    a = _r(3, 3) + 3 * np.eye(3)  # a full matrix: only one triangle must be read
    b = _r(2, 3, 2, seed=1)
    rp = pt.triangular_solve(pt.tensor(b), pt.tensor(a), upper, transpose, unit)
    rt = torch.triangular_solve(torch.tensor(b), torch.tensor(a), upper, transpose, unit)
    assert rp._fields == ("solution", "cloned_coefficient")
    _close(rp.solution, rt.solution, rtol=1e-10)
    _close(rp.cloned_coefficient, rt.cloned_coefficient)
    _close(pt.tensor(b).triangular_solve(pt.tensor(a), upper, transpose, unit).solution,
           rt.solution, rtol=1e-10)
    ap, at = pt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    bp, bt = pt.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    w = _r(2, 3, 2, seed=2)
    (pt.triangular_solve(bp, ap, upper, transpose, unit)[0] * pt.tensor(w)).sum().backward()
    (torch.triangular_solve(bt, at, upper, transpose, unit)[0] * torch.tensor(w)).sum() \
        .backward()
    _close(bp.grad, bt.grad, rtol=1e-9, atol=1e-12)
    _close(ap.grad, at.grad, rtol=1e-9, atol=1e-12)
    assert gradcheck(lambda x, y: pt.triangular_solve(x, y, upper, transpose, unit),
                     (pt.tensor(b, requires_grad=True), pt.tensor(a, requires_grad=True)))


def test_triangular_solve_errors():
    with pytest.raises(ValueError, match="triangular_solve.*square"):
        pt.triangular_solve(pt.zeros(3, 1), pt.zeros(3, 2))
    with pytest.raises(ValueError, match="triangular_solve.*rows"):
        pt.triangular_solve(pt.zeros(2, 1), pt.eye(3))
    with pytest.raises(TypeError, match="triangular_solve.*dtype"):
        pt.triangular_solve(pt.zeros(3, 1, dtype=pt.float64), pt.eye(3))


def test_nuclear_and_frobenius_norms():
    x = _r(2, 3, 4)
    _close(pt.nuclear_norm(pt.tensor(x)), torch.nuclear_norm(torch.tensor(x)), rtol=1e-10)
    _close(pt.nuclear_norm(pt.tensor(x), (0, 2), True),
           torch.nuclear_norm(torch.tensor(x), (0, 2), True), rtol=1e-10)
    _close(pt.nuclear_norm(pt.tensor(x[0]), True), torch.nuclear_norm(torch.tensor(x[0]), True),
           rtol=1e-10)
    for dim, keep in (((0, 1), False), ((2,), True), (1, False), ((-1, 0), True)):
        _close(pt.frobenius_norm(pt.tensor(x), dim, keep),
               torch.frobenius_norm(torch.tensor(x), dim, keep), rtol=1e-12)
    _close(pt.frobenius_norm(pt.tensor(x), (1, 2)),
           np.sqrt((x ** 2).sum(axis=(1, 2))), rtol=1e-12)
    assert gradcheck(lambda m: pt.nuclear_norm(m), (pt.tensor(x, requires_grad=True),))
    assert gradcheck(lambda m: pt.frobenius_norm(m, (0, 2)), (pt.tensor(x, requires_grad=True),))
    with pytest.raises(ValueError, match="nuclear_norm.*at least 2"):
        pt.nuclear_norm(pt.zeros(3))
    with pytest.raises(ValueError, match="frobenius_norm.*one or two"):
        pt.frobenius_norm(pt.tensor(x), (0, 1, 2))
    with pytest.raises(TypeError, match="frobenius_norm.*int64"):
        pt.frobenius_norm(pt.zeros(2, 2, dtype=pt.int64), (0, 1))


# =============================================================================================
# 5. binomial, poisson, histogramdd, empty_strided, frombuffer
# =============================================================================================
def _freq_close(samples, pmf, ks, atol):
    for k in ks:
        np.testing.assert_allclose(np.mean(samples == k), pmf(k), atol=atol)


@pytest.mark.parametrize("n,p", [(5.0, 0.3), (100.0, 0.6), (1000.0, 0.02), (300.0, 0.5),
                                 (40.0, 0.97)])
def test_binomial_distribution(n, p):
    from scipy import stats
    pt.manual_seed(1)
    N = 20000
    s = _np(pt.binomial(pt.full((N,), n, dtype=pt.float64), pt.full((N,), p, dtype=pt.float64)))
    assert np.all(s == np.round(s)) and s.min() >= 0 and s.max() <= n
    d = stats.binom(n, p)
    np.testing.assert_allclose(s.mean(), d.mean(), atol=4 * d.std() / np.sqrt(N))
    np.testing.assert_allclose(s.var(), d.var(), rtol=0.06)
    mode = int(np.floor((n + 1) * p))
    _freq_close(s, d.pmf, [mode - 2, mode, mode + 1], atol=0.012)


def test_binomial_edges_dtype_broadcast_generator_errors():
    c = pt.tensor([0.0, 7.0, 7.0, 3.0])
    p = pt.tensor([0.5, 0.0, 1.0, 0.5])
    r = pt.binomial(c, p)
    assert r.dtype is pt.float32
    np.testing.assert_array_equal(_np(r)[:3], [0.0, 0.0, 7.0])
    assert tuple(pt.binomial(pt.tensor([5.0]), pt.tensor([[0.5], [0.2]])).shape) == (2, 1)
    g = pt.Generator().manual_seed(9)
    a = pt.binomial(pt.full((50,), 30.0), pt.full((50,), 0.4), generator=g)
    g.manual_seed(9)
    b = pt.binomial(pt.full((50,), 30.0), pt.full((50,), 0.4), generator=g)
    np.testing.assert_array_equal(_np(a), _np(b))
    with pytest.raises(TypeError, match="binomial.*count.*int64"):
        pt.binomial(pt.tensor([5, 3]), pt.tensor([0.5, 0.5]))
    with pytest.raises(TypeError, match="binomial.*dtype"):
        pt.binomial(pt.tensor([5.0], dtype=pt.float64), pt.tensor([0.5]))
    with pytest.raises(ValueError, match=r"binomial.*\[0, 1\]"):
        pt.binomial(pt.tensor([5.0]), pt.tensor([1.5]))
    with pytest.raises(ValueError, match="binomial.*>= 0"):
        pt.binomial(pt.tensor([-1.0]), pt.tensor([0.5]))


def test_poisson():
    from scipy import stats
    pt.manual_seed(2)
    rates = np.array([0.0, 0.5, 4.0, 30.0])
    s = _np(pt.poisson(pt.tensor(np.repeat(rates[None], 20000, 0))))
    np.testing.assert_array_equal(s[:, 0], 0.0)
    for j, lam in enumerate(rates[1:], 1):
        np.testing.assert_allclose(s[:, j].mean(), lam, atol=4 * np.sqrt(lam / 20000))
        _freq_close(s[:, j], stats.poisson(lam).pmf, [int(lam)], atol=0.012)
    assert pt.poisson(pt.tensor([1.0], dtype=pt.float16)).dtype is pt.float16
    x = pt.tensor([1.0, 3.0], requires_grad=True)
    y = pt.poisson(x)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [0.0, 0.0])
    g = pt.Generator().manual_seed(4)
    a = pt.poisson(pt.full((20,), 12.0), generator=g)
    g.manual_seed(4)
    np.testing.assert_array_equal(_np(a), _np(pt.poisson(pt.full((20,), 12.0), generator=g)))
    with pytest.raises(ValueError, match="poisson.*rate"):
        pt.poisson(pt.tensor([-1.0]))
    with pytest.raises(ValueError, match="poisson.*rate"):
        pt.poisson(pt.tensor([float("nan")]))
    with pytest.raises(TypeError, match="poisson.*int64"):
        pt.poisson(pt.tensor([1, 2]))


_PTS = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 2.0], [0.2, 0.7], [0.9, 1.9], [-1.0, 0.5]])


@pytest.mark.parametrize("kwargs", [
    {"bins": 2}, {"bins": [3, 4]}, {"bins": 2, "range": [0.0, 1.0, 0.0, 1.0]},
    {"bins": [2, 3], "density": True}, {"bins": 3, "weight": True},
    {"bins": "edges"}, {"bins": "edges", "weight": True, "density": True}])
def test_histogramdd_matches_torch(kwargs):
    kw_p, kw_t = dict(kwargs), dict(kwargs)
    if kwargs["bins"] == "edges":
        e = [np.array([-1.0, 0.0, 0.5, 1.0]), np.array([0.0, 3.0])]
        kw_p["bins"] = [pt.tensor(v) for v in e]
        kw_t["bins"] = [torch.tensor(v) for v in e]
    if kwargs.get("weight"):
        w = np.arange(1.0, 7.0)
        kw_p["weight"], kw_t["weight"] = pt.tensor(w), torch.tensor(w)
    rp = pt.histogramdd(pt.tensor(_PTS), **kw_p)
    rt = torch.histogramdd(torch.tensor(_PTS), **kw_t)
    assert rp._fields == ("hist", "bin_edges") and isinstance(rp.bin_edges, tuple)
    _close(rp.hist, rt.hist, rtol=1e-12)
    assert len(rp.bin_edges) == len(rt.bin_edges)
    for a, b in zip(rp.bin_edges, rt.bin_edges):
        _close(a, b, rtol=1e-12)
    if not kwargs.get("density") and kwargs["bins"] != "edges":
        ref, _ = np.histogramdd(_PTS, bins=[len(e) - 1 for e in rt.bin_edges],
                                range=[(e[0].item(), e[-1].item()) for e in rt.bin_edges],
                                weights=np.arange(1.0, 7.0) if kwargs.get("weight") else None)
        _close(rp.hist, ref)


def test_histogramdd_shapes_and_errors():
    x = _r(3, 4, 2)
    rp = pt.histogramdd(pt.tensor(x), bins=2)
    rt = torch.histogramdd(torch.tensor(x), bins=2)
    _close(rp.hist, rt.hist)
    assert rp.hist.sum().item() == 12
    e = pt.histogramdd(pt.zeros(0, 2), bins=2)
    _close(e.hist, torch.histogramdd(torch.zeros(0, 2), bins=2).hist)
    _close(e.bin_edges[0], torch.histogramdd(torch.zeros(0, 2), bins=2).bin_edges[0])
    one = pt.histogramdd(pt.tensor([[1.0, 1.0]]), bins=2)
    _close(one.bin_edges[1], torch.histogramdd(torch.tensor([[1.0, 1.0]]), bins=2).bin_edges[1])
    with pytest.raises(TypeError, match="histogramdd.*floating"):
        pt.histogramdd(pt.zeros(3, 2, dtype=pt.int64), bins=2)
    with pytest.raises(ValueError, match="histogramdd.*3 bin counts.*2-dimensional"):
        pt.histogramdd(pt.zeros(3, 2), bins=[1, 2, 3])
    with pytest.raises(ValueError, match="histogramdd.*range must have 2"):
        pt.histogramdd(pt.zeros(3, 2), bins=2, range=[0.0, 1.0])
    with pytest.raises(ValueError, match="histogramdd.*weight"):
        pt.histogramdd(pt.zeros(3, 2), bins=2, weight=pt.ones(2))
    with pytest.raises(ValueError, match="histogramdd.*increasing"):
        pt.histogramdd(pt.zeros(3, 1), bins=[pt.tensor([1.0, 0.0])])


def test_empty_strided():
    t = pt.empty_strided((2, 3), (1, 2), dtype=pt.float64)
    assert tuple(t.shape) == (2, 3) and t.dtype is pt.float64
    assert pt.empty_strided((2,), (1,), requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="empty_strided.*one entry per dim"):
        pt.empty_strided((2, 3), (1,))
    with pytest.raises(ValueError, match="empty_strided.*non-negative"):
        pt.empty_strided((2, 3), (1, -1))


def test_frombuffer():
    buf = bytearray(np.arange(6, dtype=np.int32).tobytes())
    for kw in ({}, {"offset": 4}, {"count": 2, "offset": 8}):
        p = pt.frombuffer(buf, dtype=pt.int32, **kw)
        t = torch.frombuffer(buf, dtype=torch.int32, **kw)
        assert p.dtype is pt.int32 and p.device.type == "cpu"
        np.testing.assert_array_equal(_np(p), t.numpy())
    p = pt.frombuffer(buf, dtype=pt.int32)
    p[0] = 42  # shares the buffer's memory
    assert np.frombuffer(buf, dtype=np.int32)[0] == 42
    buf[4] = 7
    assert p[1].item() == 7
    a = array.array("d", [1.5, 2.5])
    _close(pt.frombuffer(a, dtype=pt.float64), np.array([1.5, 2.5]))
    assert pt.frombuffer(a, dtype=pt.float64, requires_grad=True).requires_grad
    _close(pt.frombuffer(b"\x00\x3c\x00\x40", dtype=pt.float16), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="frombuffer.*multiple"):
        pt.frombuffer(bytearray(5), dtype=pt.int32)
    with pytest.raises(ValueError, match="frombuffer.*bytes"):
        pt.frombuffer(bytearray(8), dtype=pt.int32, count=3)
    with pytest.raises(ValueError, match="frombuffer.*offset"):
        pt.frombuffer(bytearray(8), dtype=pt.int32, offset=8)
    with pytest.raises(ValueError, match="frombuffer.*empty"):
        pt.frombuffer(bytearray(0), dtype=pt.int32)
    with pytest.raises(TypeError, match="frombuffer.*buffer protocol"):
        pt.frombuffer([1, 2], dtype=pt.int32)
