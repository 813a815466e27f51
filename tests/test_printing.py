"""Tensor repr/str in PyTorch's format, and the print options."""

from __future__ import annotations

import re

import numpy as np
import pytest

import polyten as pt
from polyten.api import printing
from polyten.api.printing import get_printoptions, printoptions, set_printoptions


@pytest.fixture(autouse=True)
def _restore_printoptions():
    yield
    set_printoptions(profile="default")
    pt.set_default_dtype(pt.float32)


@pytest.mark.parametrize("make, expected", [
    (lambda: pt.tensor([1.0, 2.0, 3.0]), "tensor([1., 2., 3.])"),
    (lambda: pt.tensor([2.7183, 7.3891, 20.0855]), "tensor([ 2.7183,  7.3891, 20.0855])"),
    (lambda: pt.tensor([[1, 2], [3, 40]]), "tensor([[ 1,  2],\n        [ 3, 40]])"),
    (lambda: pt.tensor([True, False]), "tensor([ True, False])"),
    (lambda: pt.tensor([1 + 2j, -3.5 - 0.5j]), "tensor([ 1.0000+2.0000j, -3.5000-0.5000j])"),
    (lambda: pt.tensor(3.0), "tensor(3.)"),
    (lambda: pt.tensor(3), "tensor(3)"),
    (lambda: pt.tensor(-0.0), "tensor(-0.)"),
    (lambda: pt.tensor(True), "tensor(True)"),
    (lambda: pt.tensor([]), "tensor([])"),
    (lambda: pt.zeros(0, 3), "tensor([], size=(0, 3))"),
    (lambda: pt.zeros(0, dtype=pt.int64), "tensor([], dtype=polyten.int64)"),
    (lambda: pt.zeros(2, 0, dtype=pt.bool), "tensor([], size=(2, 0), dtype=polyten.bool)"),
    (lambda: pt.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
    (lambda: pt.tensor([1e10, 1.0]), "tensor([1.0000e+10, 1.0000e+00])"),
    (lambda: pt.tensor([1.0, float("nan"), float("inf")]), "tensor([1., nan, inf])"),
    (lambda: pt.tensor([1, 2], dtype=pt.uint8), "tensor([1, 2], dtype=polyten.uint8)"),
    (lambda: pt.tensor([0.5], dtype=pt.float16), "tensor([0.5000], dtype=polyten.float16)"),
    (lambda: pt.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (lambda: pt.tensor(np.arange(12.0).reshape(3, 4)),
     "tensor([[ 0.,  1.,  2.,  3.],\n        [ 4.,  5.,  6.,  7.],\n"
     "        [ 8.,  9., 10., 11.]], dtype=polyten.float64)"),
    (lambda: pt.ones(2, requires_grad=True), "tensor([1., 1.], requires_grad=True)"),
])
def test_repr_matches_pytorch_format(make, expected):
    t = make()
    assert repr(t) == expected
    assert str(t) == expected


def test_summarised_2d_in_sci_mode():
    t = pt.tensor(np.arange(1200.0, dtype=np.float32).reshape(30, 40))
    lines = repr(t).split("\n")
    assert lines[0] == ("tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 3.7000e+01, "
                        "3.8000e+01,")
    assert lines[1] == "         3.9000e+01],"
    assert "        ...," in lines
    assert lines[-1] == "         1.1990e+03]])"


def test_default_dtype_changes_which_dtype_is_shown():
    pt.set_default_dtype(pt.float64)
    assert repr(pt.tensor([1.5])) == "tensor([1.5000])"
    assert repr(pt.tensor([1.5], dtype=pt.float32)) == "tensor([1.5000], dtype=polyten.float32)"
    assert repr(pt.tensor([1j])) == "tensor([0.+1.j])"
    assert repr(pt.tensor([1j], dtype=pt.complex64)) == \
        "tensor([0.+1.j], dtype=polyten.complex64)"


def test_device_is_shown_when_not_the_default(cpu2):
    t = pt.tensor([1.0, 2.0], device="cpu2")
    assert repr(t) == "tensor([1., 2.], device='cpu2')"
    e = pt.zeros(0, dtype=pt.int32, device="cpu2")
    assert repr(e) == "tensor([], device='cpu2', dtype=polyten.int32)"
    c = pt.tensor([1.0])
    with pt.backend("cpu2"):
        assert repr(c) == "tensor([1.], device='cpu')"
        assert repr(pt.tensor([1.0])) == "tensor([1.])"


def test_non_contiguous_input():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3).T
    t = pt.from_numpy(a)
    assert repr(t) == "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])"


def test_set_printoptions():
    set_printoptions(precision=2)
    assert repr(pt.tensor([1.12345])) == "tensor([1.12])"
    set_printoptions(threshold=5)
    assert repr(pt.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    set_printoptions(profile="default")
    assert repr(pt.tensor([1.12345])) == "tensor([1.1235])"
    assert repr(pt.arange(10)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    set_printoptions(sci_mode=True)
    assert repr(pt.tensor([1.5, 2.0])) == "tensor([1.5000e+00, 2.0000e+00])"
    set_printoptions(sci_mode=False)
    assert repr(pt.tensor([1e-5, 1.0])) == "tensor([0.0000, 1.0000])"
    set_printoptions(linewidth=20)
    assert repr(pt.arange(8)) == "tensor([0, 1, 2, 3,\n        4, 5, 6, 7])"
    set_printoptions(profile="default", edgeitems=1, threshold=3)
    assert repr(pt.arange(6)) == "tensor([0,  ..., 5])"
    set_printoptions(profile="full")
    assert "..." not in repr(pt.arange(5000))


def test_get_printoptions_and_context_manager():
    before = get_printoptions()
    assert before == {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80,
                      "sci_mode": None}
    with printoptions(precision=1, sci_mode=False):
        assert repr(pt.tensor([0.25])) == "tensor([0.2])"
        assert get_printoptions()["precision"] == 1
    assert get_printoptions() == before


@pytest.mark.parametrize("kwargs, words", [
    ({"precision": -1}, ["precision", "non-negative"]),
    ({"linewidth": 2.5}, ["linewidth"]),
    ({"threshold": "many"}, ["threshold"]),
    ({"profile": "tiny"}, ["profile", "tiny", "short"]),
    ({"sci_mode": "yes"}, ["sci_mode"]),
])
def test_set_printoptions_errors(kwargs, words):
    with pytest.raises(ValueError) as info:
        set_printoptions(**kwargs)
    assert str(info.value).startswith("set_printoptions:")
    for w in words:
        assert w in str(info.value)


def test_printing_is_exported_at_top_level():
    assert pt.set_printoptions is printing.set_printoptions


# ----------------------------------------------------------------------- against PyTorch ---
_CASES = [
    "[1., 2., 3.]", "[2.7183, 7.3891, 20.0855]", "[1, 2, 3]", "[True, False]", "3.", "3",
    "True", "[]", "np.zeros((0, 3), np.float32)", "np.zeros((0, 3), np.int64)",
    "np.zeros((2, 0, 3), np.float64)", "np.arange(2000, dtype=np.float32)",
    "np.arange(2000).reshape(40, 50)",
    "np.linspace(0, 1, 1200, dtype=np.float32).reshape(3, 20, 20)",
    "[1e-5, 1.0]", "[1e10, 1.]", "[1e9]", "[123456789.]", "[0.1, 0.2]",
    "[1., float('nan'), float('inf')]", "[float('nan')]", "[0., -0.]", "[-1.5, 2.25]",
    "np.array([1+2j, -3.5-0.5j], np.complex64)", "np.array([1+1j], np.complex128)",
    "np.array(2-3j, np.complex64)", "np.array([0j, -0j])",
    "np.random.default_rng(0).standard_normal((4, 30)).astype(np.float32)",
    "np.random.default_rng(0).standard_normal((3, 4, 5))",
    "np.arange(24, dtype=np.int32).reshape(2, 3, 4)", "np.array([1, 2], np.uint8)",
    "np.array([1.5, 2], np.float16)", "np.array([100000., 1.], np.float32)",
    "np.array([[1e-10, 1], [2, 3]], np.float32)", "np.array([12345.678], np.float32)",
    "np.array([-1, 10, -100])", "np.full((3, 400), 7, np.int64)",
    "np.random.default_rng(1).random((50, 50)).astype(np.float32) * 1e5",
    "np.array([[True, False], [False, True]])", "np.array(1e20)", "np.array(-0.0)",
    "np.array([1e-3, 1e-2])", "np.arange(5000.0).reshape(10, 10, 50)",
    "np.random.default_rng(2).standard_normal((2000,)).astype(np.complex64)",
]
_OPTIONS = [{}, {"precision": 2}, {"threshold": 5}, {"edgeitems": 1, "threshold": 10},
            {"linewidth": 40}, {"sci_mode": True}, {"sci_mode": False},
            {"profile": "short"}, {"edgeitems": 0, "threshold": 3}]


def _normalise(s: str) -> str:
    # "dtype=polyten.float64" is two characters longer than "dtype=torch.float64", so a
    # suffix may wrap onto its own line in one and not the other
    return re.sub(r",\s*\n\s*(dtype|device|size)=", r", \1=", s)


@pytest.mark.parametrize("opts", _OPTIONS, ids=[str(o) for o in _OPTIONS])
def test_against_torch(opts):
    torch = pytest.importorskip("torch")
    torch.set_printoptions(**opts)
    set_printoptions(**opts)
    try:
        for case in _CASES:
            obj = eval(case)
            if isinstance(obj, np.ndarray):
                t, p = torch.from_numpy(obj.copy()), pt.tensor(obj)
            else:
                t, p = torch.tensor(obj), pt.tensor(obj)
            expected = _normalise(repr(t).replace("torch.", "polyten."))
            assert _normalise(repr(p)) == expected, case
    finally:
        torch.set_printoptions(profile="default")
