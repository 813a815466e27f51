"""Helpers shared by the tests that check polyten against references (PyTorch in float64,
NumPy).  Imported as ``from _reference import ...`` (tests/ is on sys.path, as for conftest)."""

from __future__ import annotations

import numpy as np
import pytest

import polyten as pt

RTOL = 1e-6


def torch_or_skip():
    """The ``torch`` module; the calling test is skipped where PyTorch is not installed."""
    return pytest.importorskip("torch")


def rand(*shape, seed=0):
    """Standard-normal float64 values of ``shape``, reproducible by ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape)


def close(a, b, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def to_numpy(t):
    """A host NumPy array of a tensor's values (polyten on any backend, or torch)."""
    return np.asarray(t.detach().to("cpu").numpy())


def copy_weights(pm, tm):
    """Load torch module ``tm``'s state (parameters and buffers) into polyten module ``pm``."""
    pm.load_state_dict({k: pt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


def same_param_grads(pm, tm, atol=1e-12):
    """``pm`` and ``tm`` have the same parameter names, in the same order, and the same
    gradients."""
    tparams = dict(tm.named_parameters())
    assert [n for n, _ in pm.named_parameters()] == list(tparams)
    for n, p in pm.named_parameters():
        close(p.grad.numpy(), tparams[n].grad.numpy(), atol=atol)


def against_torch(devices, pfn, tfn, arrays, seed, atol=1e-12):
    """``pfn(*polyten tensors)`` and ``tfn(*torch tensors)`` on the same float64 ``arrays``
    (``None`` entries pass through): same shape and values (and the same int64 indices when
    the result is a (values, indices) pair) and the same gradient of every input, on every
    device of ``devices``, for an incoming gradient drawn with ``seed``."""
    torch = torch_or_skip()
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    tout = tfn(*ts)
    tv = tout[0] if isinstance(tout, tuple) else tout
    g = rand(*tv.shape, seed=seed)
    tv.backward(torch.tensor(g))
    for dev in devices:
        ps = [None if a is None else pt.tensor(a, device=dev, requires_grad=True)
              for a in arrays]
        pout = pfn(*ps)
        pv = pout[0] if isinstance(pout, tuple) else pout
        assert tuple(pv.shape) == tuple(tv.shape), dev
        close(to_numpy(pv), tv.detach().numpy(), atol=atol)
        if isinstance(tout, tuple):
            assert pout[1].dtype == pt.int64
            np.testing.assert_array_equal(to_numpy(pout[1]), tout[1].numpy())
        pv.backward(pt.tensor(g, device=dev))
        for p, t in zip(ps, ts):
            if p is not None:
                close(to_numpy(p.grad), t.grad.numpy(), atol=atol)


def module_step(pm, tm, x, seed, atol=1e-12):
    """One forward and backward of float64 ``x`` through polyten module ``pm`` and torch
    module ``tm``: same output, same input gradient and same gradient of every parameter
    (which are then cleared, ready for the next step).  Returns both outputs."""
    torch = torch_or_skip()
    px, tx = pt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    po, to = pm(px), tm(tx)
    close(to_numpy(po), to.detach().numpy(), atol=atol)
    g = rand(*to.shape, seed=seed)
    po.backward(pt.tensor(g))
    to.backward(torch.tensor(g))
    close(px.grad.numpy(), tx.grad.numpy(), atol=atol)
    for p, tp in zip(pm.parameters(), tm.parameters()):
        close(p.grad.numpy(), tp.grad.numpy(), atol=atol)
        p.grad = None
        tp.grad = None
    return po, to


def batchnorm_running_reference(x64, rm0, rv0, momentum):
    """BatchNorm's running statistics after one training step, in float64 from the same
    input (unbiased variance): what a single rounding into the buffers' dtype should give."""
    axes = (0,) + tuple(range(2, x64.ndim))
    n = x64.size // x64.shape[1]
    return ((1 - momentum) * rm0 + momentum * x64.mean(axis=axes),
            (1 - momentum) * rv0 + momentum * x64.var(axis=axes) * n / (n - 1))


def ulps(got, want, dtype: str):
    """|got - want| in units of ``dtype``'s spacing at ``want`` (float16 / bfloat16 / ...)."""
    if dtype == "bfloat16":
        import ml_dtypes
        info = ml_dtypes.finfo(dtype)
    else:
        info = np.finfo(dtype)
    exp = np.floor(np.log2(np.maximum(np.abs(want), float(info.tiny))))
    return np.abs(got - want) / 2.0 ** (exp - info.nmant)
