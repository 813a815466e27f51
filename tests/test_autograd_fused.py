"""The cpu backend's fused backward kernels of primitives agree with the polyten-op formulas.

``loss.backward()`` (no ``create_graph``) runs the backend's fused kernels where it has them;
a cpu clone without backward kernels runs the formulas of ``polyten.autograd.derivatives``.
Both are compared with each other and with NumPy float64 references, over broadcasting,
Python-scalar operands, reductions with and without ``keepdim``, and dtypes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import polyten as pt

from conftest import cpu_clone


def _grads(fn, arrays, device, dtype):
    ts = [pt.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]
    out = fn(*ts)
    g = np.random.default_rng(7).standard_normal(tuple(out.shape))
    out.backward(pt.tensor(g, dtype=dtype, device=device))
    return [t.grad for t in ts], g


def _erf(x):
    return np.vectorize(math.erf)(x)


def _gelu_tanh_grad(x):
    b, k = np.sqrt(2 / np.pi), 0.044715
    t = np.tanh(b * (x + k * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * b * (1 + 3 * k * x * x)


R = np.random.default_rng(0)
A = R.uniform(0.5, 2.0, (3, 4))
B = R.uniform(0.5, 2.0, (4,))
M = R.standard_normal((4, 5))

# name, fn, inputs, reference: (upstream g, *inputs) -> tuple of input gradients
CASES = [
    ("add bcast", lambda x, y: x + y, (A, B), lambda g, x, y: (g, g.sum(0))),
    ("sub bcast", lambda x, y: x - y, (A, B), lambda g, x, y: (g, -g.sum(0))),
    ("mul bcast", lambda x, y: x * y, (A, B), lambda g, x, y: (g * y, (g * x).sum(0))),
    ("div bcast", lambda x, y: x / y, (A, B),
     lambda g, x, y: (g / y, (-g * x / y ** 2).sum(0))),
    ("mul scalar", lambda x: x * 3.0, (A,), lambda g, x: (3 * g,)),
    ("rsub scalar", lambda x: 2.0 - x, (A,), lambda g, x: (-g,)),
    ("rdiv scalar", lambda x: 2.0 / x, (A,), lambda g, x: (-2 * g / x ** 2,)),
    ("neg", lambda x: -x, (A,), lambda g, x: (-g,)),
    ("pow 2", lambda x: x ** 2, (A,), lambda g, x: (2 * g * x,)),
    ("pow 3.5", lambda x: x ** 3.5, (A,), lambda g, x: (3.5 * g * x ** 2.5,)),
    ("pow tensor", lambda x, y: x ** y, (A, B),
     lambda g, x, y: (g * y * x ** (y - 1), (g * x ** y * np.log(x)).sum(0))),
    ("exp", pt.exp, (A,), lambda g, x: (g * np.exp(x),)),
    ("log", pt.log, (A,), lambda g, x: (g / x,)),
    ("sqrt", pt.sqrt, (A,), lambda g, x: (g / (2 * np.sqrt(x)),)),
    ("tanh", pt.tanh, (A,), lambda g, x: (g * (1 - np.tanh(x) ** 2),)),
    ("sigmoid", pt.sigmoid, (A,),
     lambda g, x: (g * (s := 1 / (1 + np.exp(-x))) * (1 - s),)),
    ("relu", pt.relu, (A - 1.2,), lambda g, x: (g * (x > 0),)),
    # the activation composites' fused backward (polyten_cpu.kernels.activation)
    ("gelu", pt.nn.functional.gelu, (M,),
     lambda g, x: (g * (0.5 * (1 + _erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2)
                        / np.sqrt(2 * np.pi)),)),
    ("gelu tanh", lambda x: pt.nn.functional.gelu(x, approximate="tanh"), (M,),
     lambda g, x: (g * _gelu_tanh_grad(x),)),
    ("silu", pt.nn.functional.silu, (M,),
     lambda g, x: (g * (s := 1 / (1 + np.exp(-x))) * (1 + x * (1 - s)),)),
    ("leaky_relu", lambda x: pt.nn.functional.leaky_relu(x, 0.3), (M,),
     lambda g, x: (np.where(x > 0, g, 0.3 * g),)),
    ("elu", lambda x: pt.nn.functional.elu(x, 0.7), (M,),
     lambda g, x: (g * np.where(x > 0, 1.0, 0.7 * np.exp(np.minimum(x, 0))),)),
    ("celu", lambda x: pt.nn.functional.celu(x, 2.0), (M,),
     lambda g, x: (g * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / 2.0)),)),
    ("softplus", lambda x: pt.nn.functional.softplus(x, 2.0, 1.5), (M,),
     lambda g, x: (np.where(2 * x > 1.5, g, g / (1 + np.exp(-2 * x))),)),
    ("matmul 2d", lambda x, y: x @ y, (A, M), lambda g, x, y: (g @ y.T, x.T @ g)),
    ("matmul vec", lambda x, y: x @ y, (A, B), lambda g, x, y: (np.outer(g, y), x.T @ g)),
    ("reshape", lambda x: x.reshape(2, 6), (A,), lambda g, x: (g.reshape(3, 4),)),
    ("permute", lambda x: x.T, (A,), lambda g, x: (g.T,)),
    ("expand", lambda x: x.expand(3, 4), (B,), lambda g, x: (g.sum(0),)),
]


def _sum_cases():
    for dims, keep in ((None, False), (0, False), (1, True), ((0, 1), False)):
        def f(x, d=dims, k=keep):
            return x.sum() if d is None else x.sum(dim=d, keepdim=k)

        def m(x, d=dims, k=keep):
            return x.mean() if d is None else x.mean(dim=d, keepdim=k)
        ax = None if dims is None else dims
        n = A.size if dims is None else np.prod([A.shape[i] for i in np.atleast_1d(dims)])

        def ref_sum(g, x, ax=ax, k=keep):
            g = np.asarray(g)
            if ax is not None and not k:
                g = np.expand_dims(g, ax)
            return (np.broadcast_to(g, x.shape),)

        def ref_mean(g, x, ax=ax, k=keep, n=n):
            return (ref_sum(g, x, ax, k)[0] / n,)
        yield (f"sum {dims} {keep}", f, (A,), ref_sum)
        yield (f"mean {dims} {keep}", m, (A,), ref_mean)


ALL = CASES + list(_sum_cases())


@pytest.mark.parametrize("name,fn,inputs,ref", ALL, ids=[c[0] for c in ALL])
def test_fused_backward_matches_formulas_and_numpy(name, fn, inputs, ref):
    fused, g = _grads(fn, inputs, "cpu", pt.float64)
    with cpu_clone("noback") as dev:
        assert not dev.backend.backward_kernels  # the clone runs the polyten-op formulas
        formula, _ = _grads(fn, inputs, dev, pt.float64)
    expected = ref(g, *inputs)
    for f, h, e in zip(fused, formula, expected):
        np.testing.assert_allclose(f.numpy(), e, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h.to("cpu").numpy(), e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [pt.float16, pt.float32])
def test_fused_backward_keeps_the_input_dtype(dtype):
    x = pt.tensor(A, dtype=dtype, requires_grad=True)
    y = pt.tensor(B, dtype=pt.float64, requires_grad=True)
    ((x * 2.0 + 1).mean() + (x.to(pt.float64) * y).sum()).backward()
    assert x.grad.dtype is dtype and y.grad.dtype is pt.float64
    ref = 2.0 / A.size + np.broadcast_to(B, A.shape)
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), ref,
                               rtol=1e-2 if dtype is pt.float16 else 1e-6)


def test_leaf_grad_from_a_reduction_is_writable():
    # a reduction's backward is a broadcast (read-only) view; .grad must own its memory
    x = pt.ones(3, requires_grad=True)
    x.sum().backward()
    x.grad.zero_()
    x.grad += 1
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    w = pt.ones(2, 3, requires_grad=True)
    w.T.sum().backward()
    assert w.grad.is_contiguous()
    w.grad.mul_(2)
    assert w.grad.tolist() == [[2.0] * 3] * 2


def test_create_graph_uses_the_formulas():
    # double backward needs a graph of the backward: the fused kernels must not run
    x = pt.tensor([0.5, 1.5], dtype=pt.float64, requires_grad=True)
    (g,) = pt.autograd.grad(pt.tanh(x).sum(), x, create_graph=True)
    (gg,) = pt.autograd.grad(g.sum(), x)
    t = np.tanh([0.5, 1.5])
    np.testing.assert_allclose(gg.numpy(), -2 * t * (1 - t ** 2), rtol=1e-12)
