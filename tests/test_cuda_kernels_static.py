"""The cuda backend without a GPU: the ``polyten.cuda`` API without CuPy, ``import polyten``
never importing CuPy, the kernel table against the op table, and the fused CUDA kernels *run*
on the host.

The fused kernels are checked with a NumPy-backed stand-in for CuPy: ``cupy.ElementwiseKernel`` /
``cupy.ReductionKernel`` are emulated by compiling the very same CUDA C bodies
(``polyten_cuda.fused_src``) with the host C++ compiler into a loop over the broadcast elements,
loaded with ctypes (``float16`` is a struct around GCC's ``_Float16`` with the explicit
conversions of CuPy's half type).  Results are compared with PyTorch / NumPy in float64.  This
checks the kernels' arithmetic, parameter lists, broadcasting and in-place outputs; it does not
check NVRTC compilation, launch configuration or CuPy's reduction machinery, which only the GPU
tests (``tests/test_cuda.py``) do.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import polyten as pt
from _nvcc import compile_only
from cupy_standin import CXX, NVCC_PRELUDE, cupy_in_sys_modules, fake_cupy
from polyten.dispatch import optable
from polyten_cuda import fused_src

HAVE_CUPY = importlib.util.find_spec("cupy") is not None
needs_cxx = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) to run the "
                                                   "fused CUDA kernel bodies on the CPU")


def _torch():
    return pytest.importorskip("torch")


def _close(a, b, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b), rtol=rtol,
                               atol=atol)


# --- import hygiene and polyten.cuda without CuPy --------------------------------------------
def test_import_polyten_never_imports_cupy():
    code = ("import sys, polyten, polyten.cuda\n"
            "assert 'cupy' not in sys.modules, 'import polyten imported cupy'\n"
            "polyten.ones(2) + 1\n"
            "assert 'cupy' not in sys.modules, 'a cpu op imported cupy'\n"
            "import polyten_cuda, polyten_cuda.kernels, polyten_cuda.fused_src\n"
            "assert 'cupy' not in sys.modules, 'the plugin module imported cupy'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cuda_is_a_lazy_attribute():
    import polyten.cuda as cuda_mod
    assert pt.cuda is cuda_mod
    assert set(cuda_mod.__all__) >= {"is_available", "device_count", "current_device",
                                     "synchronize", "memory_allocated", "max_memory_allocated",
                                     "empty_cache", "set_device", "get_device_name",
                                     "manual_seed_all", "reset_peak_memory_stats"}


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed: the no-CuPy behaviour is not "
                                      "observable here")
def test_polyten_cuda_without_cupy():
    c = pt.cuda
    assert c.is_available() is False
    assert c.device_count() == 0
    assert c.memory_allocated() == 0 and c.max_memory_allocated() == 0
    assert c.memory_reserved() == 0
    c.empty_cache()
    c.reset_peak_memory_stats()
    c.manual_seed_all(3)
    for fn in (c.current_device, c.synchronize, c.get_device_name):
        with pytest.raises(RuntimeError, match=rf"polyten\.cuda\.{fn.__name__}: CUDA is not "
                                               r"available: cupy is not installed"):
            fn()
    with pytest.raises(RuntimeError, match="set_device: CUDA is not available"):
        c.set_device(0)
    with pytest.raises(TypeError):
        c.manual_seed_all(1.5)
    # torch.cuda's other names: the same rules (nothing to report, or why CUDA is missing)
    c.manual_seed(3)
    assert c.is_bf16_supported() is False and c.is_initialized() is False
    assert c.memory_stats()["allocated_bytes.all.current"] == 0
    assert c.max_memory_reserved() == 0
    for fn in (c.get_device_properties, c.get_device_capability, c.mem_get_info, c.init):
        with pytest.raises(RuntimeError, match=rf"polyten\.cuda\.{fn.__name__}: CUDA is not "
                                               r"available"):
            fn()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        with c.device(0):
            pass
    with c.device(None):  # None / -1: nothing to do, as torch.cuda.device
        pass
    c.seed(), c.seed_all()  # lazy, as torch's: nothing to seed
    for fn in (c.initial_seed, c.memory_summary):
        with pytest.raises(RuntimeError, match=rf"polyten\.cuda\.{fn.__name__}: CUDA is not "
                                               r"available"):
            fn()
    with pytest.warns(FutureWarning, match="reset_peak_memory_stats"):
        c.reset_max_memory_allocated()
    # NVTX annotations never change what a program does: nothing recorded, no error
    assert c.nvtx.range_push("x") == -1 and c.nvtx.range_pop() == -1
    c.nvtx.mark("x")
    with c.nvtx.range("r{}", 1):
        pass
    assert issubclass(c.OutOfMemoryError, MemoryError) and c.OutOfMemoryError is \
        pt.OutOfMemoryError

def test_backends_line_names_the_extra():
    if HAVE_CUPY:
        pytest.skip("CuPy is installed")
    info = {b.name: b for b in pt.backends()}["cuda"]
    assert not info.available
    assert "cupy is not installed" in info.reason and "polyten-cuda[cuda1" in info.reason
    with pytest.raises(pt.BackendUnavailableError, match="cupy is not installed"):
        pt.ones(2, device="cuda")


def test_install_hint_follows_the_driver(monkeypatch):
    import polyten_cuda
    monkeypatch.setattr(polyten_cuda, "_driver_cuda_version", lambda: (12, 4))
    assert "polyten-cuda[cuda12]" in polyten_cuda.install_hint()
    monkeypatch.setattr(polyten_cuda, "_driver_cuda_version", lambda: (13, 0))
    assert "polyten-cuda[cuda13]" in polyten_cuda.install_hint()
    monkeypatch.setattr(polyten_cuda, "_driver_cuda_version", lambda: None)
    assert "no NVIDIA driver" in polyten_cuda.install_hint()


# --- the kernel table --------------------------------------------------------------------------
class _RNG:
    def __init__(self):
        self.gen = np.random.default_rng(0)

    def seed(self, s):
        self.gen = np.random.default_rng(s)


def _build(device_count=1):
    from polyten_cuda import kernels as ck
    fake = fake_cupy(device_count)
    return ck.build(fake, _RNG(), np.dtype, device_count), fake


@pytest.mark.parametrize("device_count", [1, 2])
def test_kernel_table_covers_the_op_table(device_count):
    (kernels, backward, ew), _ = _build(device_count)
    missing = [o.name for o in optable.primitives() if o.name not in kernels]
    assert missing == []
    assert [n for n in kernels if n not in optable.OPS] == []
    assert all(callable(k) for k in kernels.values())
    bad = [n for n in backward if n not in optable.OPS or not optable.OPS[n].differentiable]
    assert bad == []
    # the fused composites and transfers the CUDA backend provides
    for name in ("softmax", "log_softmax", "nll_loss", "linear", "relu", "layer_norm",
                 "batch_norm", "conv", "max_pool", "pin_memory", "from_pinned", "is_pinned",
                 "gelu", "silu", "leaky_relu", "elu", "softplus"):
        assert name in kernels, name
    for name in ("sigmoid", "tanh", "relu", "softmax", "log_softmax", "nll_loss",
                 "cross_entropy", "mean", "gelu", "silu", "leaky_relu", "elu", "softplus"):
        assert name in backward, name
    # the activation composites are fused CUDA kernels (which replace the shared NumPy-API
    # ones in the table), forward and backward
    from polyten_cuda import fused as fused_mod
    fwd, bwd, _ = fused_mod.build(fake_cupy(device_count), {}, {})
    for name in ("gelu", "silu", "leaky_relu", "elu", "softplus"):
        assert name in fwd and name in bwd, name
    assert set(ew) == set(fused_src.ELEMENTWISE)


def test_fused_sources_are_well_formed():
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
    for key, k in fused_src.ELEMENTWISE.items():
        ins, outs = fused_src.params(k.in_params), fused_src.params(k.out_params)
        names = [n for _, n, _ in ins + outs]
        assert len(set(names)) == len(names), key
        assert all(ident.match(n) for n in names) and k.name.startswith("polyten_")
        for ty, n, raw in outs:  # every output is written by the body
            pat = rf"\b{n}\s*=[^=]" if not raw else rf"\b{n}\[[^\]]+\]\s*=[^=]"
            assert re.search(pat, k.operation), (key, n)
        assert k.operation.count("{") == k.operation.count("}")
    for key, r in fused_src.REDUCTION.items():
        outs = fused_src.params(r.out_params)
        assert len(outs) == 1 and r.post_map_expr.startswith(f"{outs[0][1]} =")
    with pytest.raises(ValueError, match="bad kernel parameter"):
        fused_src.params("T")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the CUDA sources "
                    "are only compiled for the host")
def test_fused_sources_compile_with_nvcc(tmp_path):
    """Each elementwise body, and each reduction's map / reduce / post-map expressions,
    inside a __global__ kernel shaped like CuPy's, with __half and __nv_bfloat16 as the half
    types (explicit conversions only): a
    compile-only check of the device code (no GPU needed)."""
    parts = [NVCC_PRELUDE, fused_src.PREAMBLE]
    n = 0
    for key, k in fused_src.ELEMENTWISE.items():
        for t in ("float16", "bfloat16", "float32", "float64"):
            s = "float" if t != "float64" else "double"
            sig, pro = [], []
            for ty, name, raw in fused_src.params(k.in_params) + fused_src.params(k.out_params):
                is_out = (ty, name, raw) in fused_src.params(k.out_params)
                if raw:
                    sig.append(f"{ty}* {name}")
                elif ty in ("T", "S", "R", "U", "I"):
                    sig.append(f"{ty}* _p_{name}")
                    pro.append(f"{ty}& {name} = _p_{name}[i];" if is_out else
                               f"const {ty} {name} = _p_{name}[i];")
                else:
                    sig.append(f"{ty} {name}")
            n += 1
            # R: batch_norm_running's buffers, of the input's (storage) type; U / I: the
            # unsigned / signed integers of a float's width (kernels on the bits)
            w = "long long" if t == "float64" else "int"
            parts.append(f"namespace k{n} {{ typedef {t} T; typedef {s} S; typedef {t} R;\n"
                         f"typedef unsigned {w} U; typedef {w} I;\n"
                         f"__global__ void {k.name}(long long _n, {', '.join(sig)}) {{\n"
                         f"for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < _n; "
                         f"i += (long long)blockDim.x * gridDim.x) {{\n" + "\n".join(pro) +
                         "\n{\n" + k.operation + "}\n}\n}\n}\n")
    for key, r in fused_src.REDUCTION.items():  # the map and reduce expressions
        types = ("int32", "int64") if key == "index_check" else (
            "float16", "bfloat16", "float32", "float64")
        for t in types:
            s = "double" if t == "float64" else "float"
            (oty, _, _), = fused_src.params(r.out_params)
            sig, pro = [], []
            for ty, name, raw in fused_src.params(r.in_params):
                ct = {"T": "T", "S": "S"}.get(ty, ty)
                if ty not in ("T", "S") and not raw:  # a scalar: a parameter, as in CuPy
                    sig.append(f"{ct} {name}")
                    continue
                sig.append(f"{ct}* {name}" if raw else f"{ct}* _p_{name}")
                if not raw:
                    pro.append(f"const {ct} {name} = _p_{name}[i];")
            n += 1
            parts.append(f"namespace k{n} {{ typedef {t} T; typedef {s} S;\n"
                         f"__global__ void {r.name}(long long _n, {', '.join(sig)}, "
                         f"{oty}* _out) {{\n{oty} a = {r.identity};\n"
                         f"for (long long i = threadIdx.x; i < _n; i += blockDim.x) {{\n"
                         + "\n".join(pro) + f"\n{oty} b = ({r.map_expr});\na = {r.reduce_expr};"
                         f"\n}}\n{oty} y;\n{r.post_map_expr.replace(r.post_map_expr.split('=')[0].strip(), 'y', 1)};\n"
                         "*_out = y;\n}\n}\n")
    compile_only(tmp_path, parts[2:], prelude="".join(parts[:2]), stem="fused")


# --- fused kernels run on the host --------------------------------------------------------------
@pytest.fixture(scope="module")
def cuda_kernels():
    if CXX is None:
        pytest.skip("no host C++ compiler (g++) to run the fused CUDA kernel bodies")
    (kernels, backward, ew), fake = _build(1)
    return kernels, backward, ew, fake


def _x(shape, dtype="float64", seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


TOL = {"float64": 1e-12, "float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_fused_sigmoid(cuda_kernels, dtype):
    kernels = cuda_kernels[0]
    x = _x((5, 7), dtype)
    x.flat[:3] = [-800, 800, 0] if dtype != "float16" else [-60000, 60000, 0]
    y = kernels["sigmoid"](x)
    assert y.dtype == x.dtype and y.shape == x.shape
    with np.errstate(over="ignore"):
        ref = 1 / (1 + np.exp(-x.astype(np.float64)))
    _close(y, ref, rtol=TOL[dtype], atol=TOL[dtype] * 1e-3)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_fused_softmax_and_log_softmax(cuda_kernels, dtype, dim):
    torch = _torch()
    kernels = cuda_kernels[0]
    x = _x((3, 4, 5), dtype, seed=dim)
    t = torch.tensor(x.astype(np.float64))
    for name, ref in (("softmax", torch.softmax(t, dim)),
                      ("log_softmax", torch.log_softmax(t, dim))):
        y = kernels[name](x, dim)
        assert y.dtype == x.dtype and y.shape == x.shape
        _close(y, ref.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_activation_backward(cuda_kernels, dtype):
    torch = _torch()
    backward = cuda_kernels[1]
    x = _x((4, 6), dtype, seed=1)
    x[0, :2] = 0.0
    g = _x((4, 6), dtype, seed=2)
    for name, fn in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)):
        t = torch.tensor(x.astype(np.float64), requires_grad=True)
        y = fn(t)
        y.backward(torch.tensor(g.astype(np.float64)))
        params = {"needs": (True,), "shapes": ((x.shape, dtype),)}
        out = y.detach().numpy().astype(dtype)
        (gx,) = backward[name]((g,), (x,), (out,), params)
        assert gx.dtype == x.dtype
        _close(gx, t.grad.numpy(), rtol=TOL[dtype] * 10, atol=TOL[dtype])


# (torch.nn.functional name, kwargs, op-table op, kernel arguments after x, backward params)
_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
ACTIVATIONS = [
    ("gelu", {}, "gelu", ("none",), {"approximate": "none"}),
    ("gelu", {"approximate": "tanh"}, "gelu", ("tanh",), {"approximate": "tanh"}),
    ("silu", {}, "silu", (), {}),
    ("leaky_relu", {"negative_slope": 0.2}, "leaky_relu", (0.2,), {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}, "elu", (0.5, 1.0, 1.0),
     {"alpha": 0.5, "scale": 1.0, "input_scale": 1.0}),
    ("selu", {}, "elu", (_SELU[0], _SELU[1], 1.0),
     {"alpha": _SELU[0], "scale": _SELU[1], "input_scale": 1.0}),
    ("celu", {"alpha": 2.0}, "elu", (2.0, 1.0, 0.5),
     {"alpha": 2.0, "scale": 1.0, "input_scale": 0.5}),
    ("softplus", {}, "softplus", (1.0, 20.0), {"beta": 1.0, "threshold": 20.0}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, "softplus", (2.0, 5.0),
     {"beta": 2.0, "threshold": 5.0}),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name,kw,op,args,params", ACTIVATIONS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(ACTIVATIONS)])
def test_fused_activations_forward_backward(cuda_kernels, dtype, name, kw, op, args, params):
    """The CUDA bodies of gelu (both forms), silu, leaky_relu, elu (selu, celu) and softplus,
    forward and backward, against PyTorch in float64 at the (rounded) inputs -- large |x|,
    infinities, NaN and the softplus threshold included -- and against the cpu kernels, whose
    formulas they follow."""
    torch = _torch()
    kernels, backward = cuda_kernels[:2]
    x = _x((6, 7), dtype, seed=8)
    special = [1e4, -1e4, np.inf, -np.inf, np.nan, 0.0, -0.0, 20.0, 21.0, 2.5, -40.0, 40.0]
    x.flat[:len(special)] = special
    g = _x((6, 7), dtype, seed=9, scale=1.0)
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    y_ref = getattr(torch.nn.functional, name)(t, **kw)
    y_ref.backward(torch.tensor(g.astype(np.float64)))
    y = kernels[op](x, *args)
    assert y.dtype == x.dtype and y.shape == x.shape
    full = dict(params, needs=(True,), shapes=((x.shape, dtype),))
    (gx,) = backward[op]((g,), (x,), (y,), full)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    rtol = {"float64": 1e-10, "float32": 2e-5, "float16": 2e-3, "bfloat16": 8e-3}[dtype]
    # float64 atol: the tanh form's gradient cancels (terms of ~0.5 sum to ~1e-6 at x = -4), and
    # the order of PyTorch's vectorised operations differs from ours in the last bits
    atol = {"float64": 1e-13, "float32": 1e-6, "float16": 1e-4, "bfloat16": 8e-4}[dtype]
    for ours, ref in ((y, y_ref.detach().numpy()), (gx, t.grad.numpy())):
        np.testing.assert_allclose(ours.astype(np.float64), ref, rtol=rtol, atol=atol,
                                   equal_nan=True)
    # the cpu kernels compute the same formulas in the same order
    from polyten_cpu.kernels import activation as cpu_act
    cpu_y = cpu_act.kernels(np)[op](x, *args)
    (cpu_gx,) = cpu_act.backward_kernels(np)[op]((g,), (x,), (None,), full)
    np.testing.assert_allclose(y.astype(np.float64), cpu_y.astype(np.float64), rtol=rtol,
                               atol=atol, equal_nan=True)
    np.testing.assert_allclose(gx.astype(np.float64), cpu_gx.astype(np.float64), rtol=rtol,
                               atol=atol, equal_nan=True)


def test_fused_activations_zero_d_and_gradient_dtype(cuda_kernels):
    kernels, backward = cuda_kernels[:2]
    x = np.asarray(-0.75, dtype=np.float32)
    y = kernels["silu"](x)
    assert y.shape == () and y.dtype == np.float32
    np.testing.assert_allclose(y, -0.75 / (1 + np.exp(0.75)), rtol=1e-6)
    # a float64 incoming gradient for a float32 input: computed and returned in float32
    (gx,) = backward["leaky_relu"]((np.ones(3),), (np.array([-1.0, 0.0, 2.0], np.float32),),
                                   (None,), {"negative_slope": 0.1, "needs": (True,)})
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx, [0.1, 0.1, 1.0], rtol=1e-7)


@pytest.mark.parametrize("dim", [0, 1])
def test_fused_softmax_backward(cuda_kernels, dim):
    torch = _torch()
    kernels, backward = cuda_kernels[:2]
    x = _x((4, 5), seed=3)
    g = _x((4, 5), seed=4)
    for name in ("softmax", "log_softmax"):
        t = torch.tensor(x, requires_grad=True)
        y = getattr(torch, name)(t, dim)
        y.backward(torch.tensor(g))
        out = kernels[name](x, dim)
        (gx,) = backward[name]((g,), (x,), (out,), {"dim": dim, "needs": (True,)})
        _close(gx, t.grad.numpy())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 3, 4, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_nll_loss_forward_backward(cuda_kernels, reduction, shape, weighted):
    torch = _torch()
    kernels, backward = cuda_kernels[:2]
    C = shape[1] if len(shape) > 1 else shape[0]
    x = _x(shape, seed=5)
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    target = np.random.default_rng(6).integers(0, C, size=tshape).astype(np.int64)
    if target.ndim:
        target.flat[0] = -100  # ignored
    w = np.abs(_x((C,), seed=7)) + 0.1 if weighted else None
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.nll_loss(
        t.unsqueeze(0) if len(shape) == 1 else t, torch.tensor(target).reshape(
            (1,) if len(shape) == 1 else tshape), weight=None if w is None else torch.tensor(w),
        ignore_index=-100, reduction=reduction)
    if len(shape) == 1 and reduction == "none":
        ref = ref.reshape(())
    out = kernels["nll_loss"](x, target, w, -100, reduction)
    assert out.dtype == x.dtype and out.shape == tuple(ref.shape)
    _close(out, ref.detach().numpy())
    g = _x(tuple(ref.shape), seed=8)
    ref.backward(torch.tensor(g))
    params = {"target": target, "weight": w, "ignore_index": -100, "reduction": reduction,
              "cdim": 1 if len(shape) > 1 else 0, "shape": shape, "needs": (True,)}
    (gx,) = backward["nll_loss"]((g,), (x,), (out,), params)
    assert gx.shape == shape
    _close(gx, t.grad.numpy())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 3, 4, 2), (5, 64), (3, 65)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_cross_entropy_forward_backward(cuda_kernels, reduction, shape, weighted,
                                              dtype):
    """The fused cross_entropy (one thread per row up to 64 classes, else log_softmax +
    nll_loss; the one-kernel softmax - one_hot backward) against PyTorch's, with an ignored
    target; also the all-ignored mean."""
    torch = _torch()
    kernels, backward = cuda_kernels[:2]
    C = shape[1] if len(shape) > 1 else shape[0]
    x = _x(shape, dtype, seed=5)
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    target = np.random.default_rng(6).integers(0, C, size=tshape).astype(np.int64)
    if target.ndim:
        target.flat[0] = -100  # ignored
    w = (np.abs(_x((C,), seed=7)) + 0.1).astype(dtype) if weighted else None
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    ref = torch.nn.functional.cross_entropy(
        t, torch.tensor(target), weight=None if w is None else torch.tensor(w, dtype=t.dtype),
        ignore_index=-100, reduction=reduction)
    out, logp = kernels["cross_entropy"](x, target, w, -100, reduction)
    assert out.dtype == x.dtype and out.shape == tuple(ref.shape)
    assert logp.dtype == x.dtype and logp.shape == x.shape
    _close(out, ref.detach().numpy(), rtol=TOL[dtype] * 10, atol=TOL[dtype])
    g = _x(tuple(ref.shape), dtype, seed=8)
    ref.backward(torch.tensor(g.astype(np.float64)))
    params = {"target": target, "weight": w, "ignore_index": -100, "reduction": reduction,
              "cdim": 1 if len(shape) > 1 else 0, "shape": shape, "needs": (True,)}
    (gx,) = backward["cross_entropy"]((g, None), (None,), (out, logp), params)
    assert gx.shape == shape and gx.dtype == x.dtype
    _close(gx, t.grad.numpy(), rtol=TOL[dtype] * 10, atol=TOL[dtype])
    assert backward["cross_entropy"]((g, g), (None,), (out, logp), params) is NotImplemented


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_fused_cross_entropy_rows_nan_inf_and_half(cuda_kernels, dtype):
    """The one-thread-per-row cross_entropy: a NaN logit makes its row's log-probabilities and
    loss NaN (as PyTorch), a -inf logit gets -inf, and float16 is computed in float32 and
    matches PyTorch's float32 result rounded."""
    torch = _torch()
    kernels = cuda_kernels[0]
    x = _x((4, 10), dtype, seed=3)
    x[1, 3] = np.nan
    x[2, 5] = -np.inf
    target = np.array([1, 2, 5, 9])
    with np.errstate(invalid="ignore"):
        out, logp = kernels["cross_entropy"](x, target, None, -100, "none")
    ref_logp = torch.log_softmax(torch.tensor(x.astype(np.float32)), 1).numpy()
    ref = torch.nn.functional.cross_entropy(torch.tensor(x.astype(np.float32)),
                                            torch.tensor(target), reduction="none").numpy()
    assert logp.dtype == x.dtype and out.dtype == x.dtype
    assert np.isnan(logp[1]).all() and np.isnan(out[1]) and logp[2, 5] == -np.inf
    assert out[2] == np.inf
    ok = [0, 3]
    tol = 2e-3 if dtype == "float16" else 1e-6
    _close(logp[ok].astype(np.float64), ref_logp[ok], rtol=tol, atol=tol)
    _close(out[ok].astype(np.float64), ref[ok], rtol=tol, atol=tol)


def test_fused_cross_entropy_all_ignored_mean(cuda_kernels):
    kernels, backward = cuda_kernels[:2]
    x = _x((3, 4), seed=9)
    target = np.full(3, -100, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        out, logp = kernels["cross_entropy"](x, target, None, -100, "mean")
    assert math.isnan(float(out))
    params = {"target": target, "weight": None, "ignore_index": -100, "reduction": "mean",
              "cdim": 1, "shape": (3, 4), "needs": (True,)}
    (gx,) = backward["cross_entropy"]((np.asarray(1.0), None), (None,), (out, logp), params)
    assert np.array_equal(gx, np.zeros((3, 4)))


def test_fused_losses_read_nothing_for_out_of_range_targets(cuda_kernels):
    """cuda checks targets asynchronously (polyten.dispatch.checks), so its kernels run on
    targets outside [0, C) before the error is raised: the loss is nan, nothing is read or
    written outside the arrays, and such a row gets no gradient."""
    kernels, backward = cuda_kernels[:2]
    x = _x((3, 4), seed=10)
    target = np.array([0, 9, -3], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        per_row = kernels["nll_loss"](x, target, None, -100, "none")
        assert not np.isnan(per_row[0]) and np.isnan(per_row[1:]).all()
        out, logp = kernels["cross_entropy"](x, target, None, -100, "sum")
    assert np.isnan(float(out))
    params = {"target": target, "weight": None, "ignore_index": -100, "reduction": "sum",
              "cdim": 1, "shape": (3, 4), "needs": (True,)}
    (gx,) = backward["cross_entropy"]((np.asarray(1.0), None), (None,), (out, logp), params)
    assert np.isfinite(gx).all() and not gx[1:].any() and gx[0].any()
    (gn,) = backward["nll_loss"]((np.asarray(1.0),), (x,), (out,), params)
    assert not gn[1:].any() and gn[0, 0] == -1.0


def test_fused_nll_loss_all_ignored_mean_is_nan_without_host_read(cuda_kernels):
    kernels, backward = cuda_kernels[:2]
    x = _x((3, 4), seed=9)
    target = np.full(3, -100, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(kernels["nll_loss"](x, target, None, -100, "mean")))
    params = {"target": target, "weight": None, "ignore_index": -100, "reduction": "mean",
              "cdim": 1, "shape": (3, 4), "needs": (True,)}
    (gx,) = backward["nll_loss"]((np.asarray(1.0),), (x,), (None,), params)
    assert np.array_equal(gx, np.zeros((3, 4)))  # zeros, as the cpu kernel and PyTorch


def test_sync_free_pow_and_mean_backward(cuda_kernels):
    kernels, backward = cuda_kernels[:2]
    x = np.array([-3, -1, 0, 1, 2, 5], dtype=np.int64)
    y = np.array([-2, -3, 2, -1, 3, -4], dtype=np.int64)
    # PyTorch's integer powers: 1 and -1 keep their magnitude, others truncate to 0
    assert kernels["pow"](x, y).tolist() == [0, -1, 0, 1, 8, 0]
    assert kernels["pow"](2, y).tolist() == [0, 0, 4, 0, 8, 0]
    f = _x((3,), "float32")
    r = kernels["pow"](f, 2)
    assert r.dtype == np.float32
    _close(r, f.astype(np.float64) ** 2, rtol=1e-6)
    g = np.asarray(6.0)
    (gm,) = backward["mean"]((g,), (None,), (None,),
                             {"dims": None, "keepdim": False, "shapes": (((2, 3), "f"),)})
    assert gm.shape == (2, 3) and np.all(gm == 1.0)


# --- fused optimizer steps vs torch.optim -------------------------------------------------------
def _opt_fns(cuda_kernels):
    """The fused steps behind the core's adapter (as ``polyten.optim`` calls them): tensors
    in, the first SGD step generic, writes counted."""
    from polyten.optim import _functional as F
    from polyten_cuda import optim as copt
    native = copt.make(cuda_kernels[3], cuda_kernels[2])
    return {name: F._native_step(name, fn) for name, fn in native.items() if name in F._GENERIC}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_fused_amp_unscale(cuda_kernels, dtype):
    """GradScaler's unscale kernel: gradients scaled in place (float16 / bfloat16 computed in
    float32, rounded once), the flag set by an inf or a NaN in any gradient as stored -- also
    a half product finite in float32 that rounds to inf -- and left alone otherwise."""
    from polyten_cuda import optim as copt
    unscale = copt.make(cuda_kernels[3], cuda_kernels[2])["amp_unscale"]
    grads = [_x((3, 4), dtype, seed=1) * 1024, _x((5,), dtype, seed=2) * 1024]
    want = [g.astype(np.float64) / 1024 for g in grads]
    found = np.zeros(1, np.float32)
    unscale(grads, np.array(1.0 / 1024, np.float32), found)
    assert found[0] == 0.0
    for g, w in zip(grads, want):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g.astype(np.float64), w, rtol={
            "float16": 1e-3, "bfloat16": 8e-3}.get(dtype, 1e-12))
    for bad in (np.inf, -np.inf, np.nan):
        g2 = [_x((4,), dtype, seed=3), _x((2, 2), dtype, seed=4)]
        g2[1][1, 0] = bad
        found = np.zeros((), np.float32)  # GradScaler's flags are 0-d
        unscale(g2, np.array(0.5, np.float32), found)
        assert found == 1.0, bad
    big = [np.full(3, 60000.0, dtype)]  # a finite float16 that stays finite when unscaled
    found = np.zeros(1, np.float32)
    unscale(big, np.array(2.0 if dtype != "float16" else 0.5, np.float32), found)
    assert found[0] == 0.0
    # the dtype's largest value times 1.002: inf once stored (in float32 and float64 the
    # product itself overflows; in float16 / bfloat16 only its rounding does)
    import ml_dtypes
    top = float(ml_dtypes.finfo(dtype).max) if dtype == "bfloat16" else float(
        np.finfo(dtype).max)
    over = [_x((4,), dtype, seed=5), np.full(2, top, dtype)]
    found = np.zeros(1, np.float32)
    with np.errstate(over="ignore"):
        unscale(over, np.array(1.002 if dtype != "float64" else 2.0, np.float32), found)
    assert found[0] == 1.0 and np.isinf(over[1].astype(np.float64)).all()


def _params(dtype="float64"):
    return [_x((3, 4), dtype, seed=11), _x((4,), dtype, seed=12)]


def _grads(step, dtype="float64"):
    return [_x((3, 4), dtype, seed=100 + step), _x((4,), dtype, seed=200 + step)]


@pytest.mark.parametrize("cfg", [
    dict(algo="adam", weight_decay=0.0, amsgrad=False, maximize=False),
    dict(algo="adam", weight_decay=0.1, amsgrad=True, maximize=False),
    dict(algo="adam", weight_decay=0.1, amsgrad=False, maximize=True),
    dict(algo="adamw", weight_decay=0.05, amsgrad=False, maximize=False),
    dict(algo="adamw", weight_decay=0.05, amsgrad=True, maximize=True),
])
def test_fused_adam_matches_torch(cuda_kernels, cfg):
    torch = _torch()
    fns = _opt_fns(cuda_kernels)
    algo = cfg["algo"]
    kw = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=cfg["weight_decay"],
              amsgrad=cfg["amsgrad"], maximize=cfg["maximize"])
    tp = [torch.tensor(p, requires_grad=True) for p in _params()]
    topt = (torch.optim.AdamW if algo == "adamw" else torch.optim.Adam)(tp, **kw)
    pp = [pt.tensor(p) for p in _params()]
    for p in pp:
        p._version = [0]  # as once a view exists: in-place writes must count
    m = [pt.zeros_like(p) for p in pp]
    v = [pt.zeros_like(p) for p in pp]
    vmax = [pt.zeros_like(p) for p in pp]
    for step in range(1, 6):
        gs = _grads(step)
        for t, g in zip(tp, gs):
            t.grad = torch.tensor(g)
        topt.step()
        versions = [p._version[0] for p in pp]
        fns[algo](pp, [pt.tensor(g) for g in gs], m, v, vmax if cfg["amsgrad"] else [],
                  [step, step], amsgrad=cfg["amsgrad"], beta1=0.8, beta2=0.95, lr=0.01,
                  weight_decay=cfg["weight_decay"], eps=1e-6, maximize=cfg["maximize"])
        assert all(p._version[0] == old + 1 for p, old in zip(pp, versions))
    for p, t in zip(pp, tp):
        _close(p.numpy(), t.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("cfg", [
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False),
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.1, maximize=True),
    dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False),
    dict(momentum=0.9, dampening=0.3, nesterov=False, weight_decay=0.1, maximize=True),
    dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.1, maximize=False),
])
def test_fused_sgd_matches_torch(cuda_kernels, cfg):
    torch = _torch()
    fns = _opt_fns(cuda_kernels)
    tp = [torch.tensor(p, requires_grad=True) for p in _params()]
    topt = torch.optim.SGD(tp, lr=0.05, **cfg)
    pp = [pt.tensor(p) for p in _params()]
    bufs = [None, None]
    for step in range(1, 5):
        gs = _grads(step)
        for t, g in zip(tp, gs):
            t.grad = torch.tensor(g)
        topt.step()
        fns["sgd"](pp, [pt.tensor(g) for g in gs], bufs, lr=0.05, **cfg)
        if cfg["momentum"]:
            assert all(isinstance(b, pt.Tensor) for b in bufs)
    for p, t in zip(pp, tp):
        _close(p.numpy(), t.detach().numpy(), rtol=1e-10)


def test_fused_adam_float16_computes_in_float32(cuda_kernels):
    fns = _opt_fns(cuda_kernels)
    p16 = [pt.tensor(p.astype(np.float16)) for p in _params()]
    p64 = [pt.tensor(p.astype(np.float16).astype(np.float64)) for p in _params()]
    states = {id(ps): ([pt.zeros_like(p) for p in ps], [pt.zeros_like(p) for p in ps])
              for ps in (p16, p64)}
    for step in range(1, 4):
        gs = [g.astype(np.float16) for g in _grads(step)]
        for ps in (p16, p64):
            m, v = states[id(ps)]
            fns["adam"](ps, [pt.tensor(g.astype(ps[0].numpy().dtype)) for g in gs], m, v, [],
                        [step, step], amsgrad=False, beta1=0.9, beta2=0.999, lr=0.01,
                        weight_decay=0.0, eps=1e-3, maximize=False)
    for a, b in zip(p16, p64):
        assert a.dtype == pt.float16
        _close(a.numpy(), b.numpy(), rtol=2e-3, atol=2e-3)


def test_fused_optimizer_falls_back_for_complex():
    # the core keeps complex parameters on the generic step (fused kernels are real-only)
    from polyten.optim import _functional as F
    p = pt.tensor(np.array([1 + 1j, 2 - 1j], dtype=np.complex128))
    assert F.resolve("sgd", [p]) is F.sgd
    assert F.resolve("adam", [p]) is F.adam


# --- the whole backend through polyten's dispatch, on the host stand-in ------------------------
@pytest.fixture
def emulated_cuda():
    """The cuda backend's kernel table on the stand-in, registered as backend "fakecuda" (with
    the fused optimizer steps registered for it), so that polyten's dispatch, autograd, nn and
    optim run through the CUDA kernels exactly as on a GPU."""
    if CXX is None:
        pytest.skip("no host C++ compiler (g++) to run the fused CUDA kernel bodies")
    from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, \
        unregister_plugin
    from polyten_cpu.backend import DTYPE_NAMES
    from polyten_cuda import optim as copt
    fake = fake_cupy(1)
    rng = _RNG()

    def load():
        from polyten_cuda import kernels as ck
        kernels, backward, ew = ck.build(fake, rng, np.dtype, 1)
        return Backend("fakecuda", kernels, dtypes=DTYPE_NAMES, native_dtype=np.dtype,
                       dtype_name=lambda a: getattr(a, "dtype", None) is not None and
                       a.dtype.name or None,
                       is_native=lambda o: isinstance(o, (np.ndarray, np.generic)),
                       seed=rng.seed, backward_kernels=backward,
                       fused_optimizers=copt.make(fake, ew))

    class Plugin:
        @hookimpl
        def polyten_register_backends(self, register):
            register(BackendSpec("fakecuda", load=load))

    with cupy_in_sys_modules(fake):
        pname = register_plugin(Plugin(), name="test-fakecuda")
        try:
            yield pt.device("fakecuda")
        finally:
            unregister_plugin(pname)


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_training_steps_through_dispatch_match_cpu(emulated_cuda, opt):
    """An MLP (linear, tanh, relu, cross-entropy) trained for a few steps on the emulated cuda
    backend (fused log_softmax / nll_loss / activation backward / optimizer step) and on the
    cpu backend, in float64: same losses and parameters."""
    import polyten.nn as nn
    import polyten.nn.functional as Fn

    def run(device):
        pt.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(),
                              nn.Linear(8, 3)).to(device=device, dtype=pt.float64)
        if opt == "adam":
            o = pt.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.01, amsgrad=True)
        else:
            o = pt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        x = pt.tensor(_x((10, 6), seed=1), device=device)
        y = pt.tensor(np.arange(10) % 3, device=device)
        losses = []
        for _ in range(4):
            o.zero_grad()
            loss = Fn.cross_entropy(model(x), y)
            loss.backward()
            o.step()
            losses.append(loss.item())
        return losses, [p.detach().cpu().numpy() for p in model.parameters()]

    l_cpu, p_cpu = run("cpu")
    l_cuda, p_cuda = run(emulated_cuda)
    _close(l_cuda, l_cpu, rtol=1e-10)
    for a, b in zip(p_cuda, p_cpu):
        _close(a, b, rtol=1e-9, atol=1e-12)


def test_softmax_and_sigmoid_autograd_through_dispatch(emulated_cuda):
    torch = _torch()
    x = _x((3, 5), seed=4)
    t = torch.tensor(x, requires_grad=True)
    (torch.softmax(t, 1) * torch.sigmoid(t)).sum().backward()
    p = pt.tensor(x, device=emulated_cuda, requires_grad=True)
    (pt.nn.functional.softmax(p, 1) * pt.sigmoid(p)).sum().backward()
    _close(p.grad.cpu().numpy(), t.grad.numpy())


def test_conformance_nn_area_on_the_emulated_backend(emulated_cuda):
    """The conformance suite's nn area (softmax, log_softmax, cross-entropy/nll_loss, linear,
    norms, conv, pooling: values, dtypes and gradients against NumPy references) through the
    CUDA kernel table.  The whole suite passes there too except two error-input cases that
    NumPy's LAPACK raises on where CuPy returns non-finite values (about 30 s: not run here)."""
    conf = pytest.importorskip("polyten_conformance")
    assert conf.run("fakecuda", area="nn", extra_args=("-q", "-p", "no:cacheprovider")) == 0


def test_make_backend_on_the_stand_in(monkeypatch):
    """``polyten_cuda.backend.make_backend`` with the stand-in as ``cupy``: the Backend's
    facts, its fused optimizer steps (``Backend.fused_optimizers``), and the peak-memory
    bookkeeping of
    the allocator it installs (a stand-in pool)."""
    from polyten.optim import _functional as F

    class Pool:
        def __init__(self):
            self.used = 0

        def malloc(self, size):
            self.used += size
            return types.SimpleNamespace(device_id=0, size=size)

        def free(self, size):
            self.used -= size

        def used_bytes(self):
            return self.used

        def total_bytes(self):
            return self.used + 100

        def free_all_blocks(self):
            self.freed = True

    fake = fake_cupy(1)
    pool = Pool()
    installed = []
    fake.get_default_memory_pool = lambda: pool
    fake.get_default_pinned_memory_pool = lambda: Pool()
    fake.__version__ = "stand-in"
    fake.cuda.set_allocator = installed.append
    fake.cuda.runtime.getDeviceProperties = lambda i: {"name": b"Stand-in GPU"}
    saved_fused = {k: dict(v) for k, v in F._FUSED.items()}
    monkeypatch.delitem(sys.modules, "polyten_cuda.backend", raising=False)
    with cupy_in_sys_modules(fake):
        try:
            from polyten_cuda import backend as cb
            b = cb.make_backend()
            assert b.name == "cuda" and b.indexed and b.device_count() == 1
            assert b.version == "cupy stand-in"
            assert {"softmax", "nll_loss", "from_pinned"} <= set(b.kernels)
            assert {"softmax", "sigmoid", "relu"} <= set(b.backward_kernels)
            # every optimizer is fused, and GradScaler's unscale and update
            assert set(b.fused_optimizers) == set(F._GENERIC) | {
                "amp_unscale", "amp_update_scale", "amp_step_count", "total_norm", "clip_grads",
                "batch_norm_running", "clamp_grads"}
            assert not F._FUSED.get("adam") and not F._FUSED.get("sgd")  # nothing global
            rt = b.runtime
            assert rt.device_name(0) == "Stand-in GPU"
            (malloc,) = installed
            malloc(1000)
            malloc(500)
            assert rt.memory_allocated() == 1500 and rt.max_memory_allocated() == 1500
            pool.free(1200)
            assert rt.memory_allocated() == 300 and rt.max_memory_allocated() == 1500
            rt.reset_peak_memory_stats()
            assert rt.max_memory_allocated() == 300
            assert rt.memory_reserved() == 400
            rt.empty_cache()
            assert pool.freed
        finally:
            sys.modules.pop("polyten_cuda.backend", None)
            F._FUSED.clear()
            F._FUSED.update(saved_fused)


def test_writes_into_broadcast_views_are_refused(cuda_kernels):
    """CuPy arrays have no read-only flag: the CUDA setitem/inplace kernels refuse broadcast
    views themselves, with the wording the core maps to its own message."""
    kernels = cuda_kernels[0]
    x = np.broadcast_to(np.arange(3.0), (2, 3))
    fake_view = np.lib.stride_tricks.as_strided(np.zeros(3), (2, 3), (0, 8))  # writable view
    for v in (x, fake_view):
        with pytest.raises(ValueError, match="read-only"):
            kernels["setitem"](v, (Ellipsis,), 1.0)
        with pytest.raises(ValueError, match="read-only"):
            kernels["inplace"]("add", v, 1.0)
    ok = np.zeros((2, 3))
    kernels["inplace"]("add", ok, 1.0)
    kernels["setitem"](ok[:, :1], (Ellipsis,), 5.0)
    assert ok.tolist() == [[5.0, 1.0, 1.0], [5.0, 1.0, 1.0]]


def test_writes_into_empty_arrays_are_allowed(cuda_kernels):
    kernels = cuda_kernels[0]
    z = np.lib.stride_tricks.as_strided(np.zeros(1), (0, 3), (0, 0))
    kernels["setitem"](z, (Ellipsis,), 1.0)  # nothing to write, nothing to refuse


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64"])
def test_fused_index_check(cuda_kernels, dtype, monkeypatch):
    """``index_check`` of the deferred index and target checks, against NumPy: the running
    flag, the ignored value, the bounds -- one block (``polyten_cuda.index_check``) for a
    small contiguous int32 / int64 array, the one-launch reduction for the rest (another
    dtype, a strided view, more than ``MAX_ELEMENTS`` elements)."""
    import cupy_standin
    from polyten_cuda import index_check as block
    kernels = cuda_kernels[0]
    ran = []
    for cls in (cupy_standin.RawKernel, cupy_standin.ReductionKernel):
        call = cls.__call__

        def recording(self, *args, _call=call, **kw):
            ran.append(self.name)
            return _call(self, *args, **kw)
        monkeypatch.setattr(cls, "__call__", recording)
    monkeypatch.setattr(block, "MAX_ELEMENTS", 40)  # the large case stays small to run
    rng = np.random.default_rng(5)
    for trial in range(36):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        if trial % 6 == 5:
            shape = (7, 8)  # past MAX_ELEMENTS
        x = rng.integers(0, 12, size=shape).astype(dtype)
        strided = trial % 6 == 4
        if strided:
            x = np.ascontiguousarray(np.repeat(x, 2, axis=1))[:, ::2]
        low, high = int(rng.integers(0, 3)), int(rng.integers(5, 13))
        ignore = None if rng.random() < 0.5 else int(x.flat[0])
        for acc in (None, np.array(False), np.array(True)):
            bad = (x < low) | (x >= high)
            if ignore is not None:
                bad &= x != ignore
            ran.clear()
            got = kernels["index_check"](x, low, high, ignore, acc)
            assert got.dtype == np.bool_ and got.shape == ()
            assert bool(got) == (bool(acc) or bool(bad.any())), (x, low, high, ignore, acc)
            one_block = dtype != "uint8" and not strided and x.size <= 40
            want = f"polyten_index_check_block_{dtype}" if one_block else "polyten_index_check"
            assert ran == [want], ran


_POOL_CASES = [  # (spatial shape, kernel, stride, (lo, hi) padding, dilation)
    ((9, 8), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ((9, 8), (3, 3), (2, 1), ((1, 1), (1, 2)), (1, 1)),   # overlapping, ceil_mode-like hi pad
    ((10, 7), (3, 2), (1, 2), ((1, 0), (0, 1)), (2, 1)),  # dilation
    ((11,), (4,), (3,), ((2, 2),), (1,)),                 # 1-d
    ((4, 5, 6), (2, 3, 2), (2, 1, 2), ((1, 0), (1, 1), (0, 1)), (1, 1, 2)),  # 3-d
]


@pytest.mark.parametrize("index", ["int32", "int64"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("case", range(len(_POOL_CASES)))
def test_fused_max_pool_matches_the_cpu_kernels(cuda_kernels, dtype, case, index,
                                                monkeypatch):
    """The one-kernel CUDA max_pool (a thread per output) and its backward (a thread per
    input element, summing the windows that picked it) against the cpu backend's kernels:
    values, flat indices (first maximum, last NaN, first inside element when every value is
    -inf) and gradients, for 1-3 spatial dims, padding, dilation and overlapping windows;
    with 32-bit index arithmetic (below ``polyten_cuda.conv.I32_LIMIT``: every launch here)
    and 64-bit (the limit lowered to 0)."""
    from polyten_cpu.kernels import all_backward_kernels, all_kernels
    from polyten_cuda import conv as cuda_conv
    import cupy_standin
    if index == "int64":
        monkeypatch.setattr(cuda_conv, "I32_LIMIT", 0)
    ran = []
    call = cupy_standin.ElementwiseKernel.__call__

    def recording(self, *args):
        ran.append(self.name)
        return call(self, *args)
    monkeypatch.setattr(cupy_standin.ElementwiseKernel, "__call__", recording)
    kernels, backward = cuda_kernels[0], cuda_kernels[1]
    cpu, cpu_bw = all_kernels(np, rng=_RNG(), native_dtype=np.dtype), all_backward_kernels(np)
    S, k, s, pad, d = _POOL_CASES[case]
    x = _x((2, 3) + S, dtype, seed=case)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties
    x.reshape(-1)[5::11] = np.nan
    x[1, 2] = -np.inf  # a plane where nothing beats the padding
    val, idx = kernels["max_pool"](x, k, s, pad, d)
    cval, cidx = cpu["max_pool"](x, k, s, pad, d)
    assert val.dtype == x.dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, cidx)
    np.testing.assert_array_equal(val, cval)
    g = _x(val.shape, dtype, seed=9)
    overlap = any(st < dd * (kk - 1) + 1 for st, dd, kk in zip(s, d, k))
    params = {"indices": idx, "shape": x.shape, "overlap": overlap,
              "pool": {"kernel_size": k, "stride": s, "lo": tuple(lo for lo, _ in pad),
                       "dilation": d}}
    (gx,), (cgx,) = backward["max_pool"]([g], [x], [val], params), \
        cpu_bw["max_pool"]([g], [x], [val], params)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    np.testing.assert_allclose(gx.astype(np.float64), cgx.astype(np.float64),
                               rtol=TOL[dtype], atol=TOL[dtype])
    suffix = "_i32" if index == "int32" else ""
    pools = [n for n in ran if "max_pool" in n]
    assert pools == [f"polyten_max_pool{suffix}", f"polyten_max_pool_backward{suffix}"], ran



@pytest.mark.parametrize("name", ["max_pool_i32", "max_pool"])
def test_max_pool_index_past_the_plane_does_not_wrap_at_2_31(cuda_kernels, name):
    """A window wholly in the padding gets the flat index of its first position past the
    padding, which lies past the plane: below 2**31 the input's every index is, that one may
    not be (32-bit arithmetic wrapped it negative).  The kernel runs on sizes alone here:
    W = 2**31 - 2 with a (2, 1) window, dilation 2, padding 1 over H = 1 reads no element, so
    a one-element x stands in for the 8 GB plane."""
    from polyten_cuda import conv as cuda_conv
    index = "int32" if name.endswith("_i32") else "int64"
    ix = np.int32 if index == "int32" else np.int64
    W, OW = 2 ** 31 - 2, 5

    def div(*v):
        return tuple(cuda_conv.divisor(d, index) for d in v)
    dims = (div(1, 1, W) + div(1, 1, OW) + tuple(ix(k) for k in (1, 2, 1)) + div(1, 1, 1)
            + tuple(ix(p) for p in (0, 1, 0)) + div(1, 2, 1))
    x = np.zeros(1, np.float32)
    val, idx = np.empty((1, 1, 1, OW), np.float32), np.empty((1, 1, 1, OW), np.int64)
    cuda_kernels[2][name](x, *dims, val, idx)
    # row -1 + 2 = 1 is the first one past the padding: index (0 * 1 + 1) * W + ow
    np.testing.assert_array_equal(idx.reshape(-1), W + np.arange(OW))
    assert np.all(np.isneginf(val))

_MORE_OPTIMIZERS = [
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.0,
                     centered=False, maximize=False)),
    ("rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.5,
                     centered=True, maximize=True)),
    ("rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.5,
                     centered=False, maximize=False)),
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.05, momentum=0.0,
                     centered=True, maximize=False)),
    ("adagrad", dict(lr=0.1, weight_decay=0.1, lr_decay=0.05, eps=1e-10, maximize=True)),
    ("adamax", dict(beta1=0.8, beta2=0.99, lr=0.05, weight_decay=0.1, eps=1e-8,
                    maximize=False)),
    ("nadam", dict(beta1=0.9, beta2=0.999, lr=0.05, weight_decay=0.1, eps=1e-8,
                   momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)),
    ("nadam", dict(beta1=0.9, beta2=0.99, lr=0.05, weight_decay=0.1, eps=1e-8,
                   momentum_decay=1e-2, decoupled_weight_decay=True, maximize=True)),
    ("radam", dict(beta1=0.9, beta2=0.999, lr=0.05, weight_decay=0.1, eps=1e-8,
                   decoupled_weight_decay=False, maximize=False)),
    ("radam", dict(beta1=0.9, beta2=0.9, lr=0.05, weight_decay=0.1, eps=1e-8,
                   decoupled_weight_decay=True, maximize=True)),
    ("adadelta", dict(lr=0.5, rho=0.8, eps=1e-6, weight_decay=0.1, maximize=True)),
    ("rprop", dict(etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50,
                   maximize=False)),
    ("rprop", dict(etaminus=0.3, etaplus=1.5, step_size_min=1e-3, step_size_max=0.1,
                   maximize=True)),
]


def _opt_states(algo, params, kw):
    """The state lists the generic function of ``algo`` takes, fresh."""
    z = [pt.zeros_like(p) for p in params]
    z2 = [pt.zeros_like(p) for p in params]
    z3 = [pt.zeros_like(p) for p in params]
    if algo == "rmsprop":
        return [z, z2 if kw["centered"] else [None] * len(params),
                z3 if kw["momentum"] > 0 else [None] * len(params)]
    if algo == "adagrad":
        return [z, "steps"]
    if algo == "adamax":
        return [z, z2, "steps"]
    if algo == "nadam":
        return [z, z2, [1.0] * len(params), "steps"]
    if algo == "radam":
        return [z, z2, "steps"]
    if algo == "adadelta":
        return [z, z2]
    return [z, [pt.full_like(p, 0.01) for p in params]]  # rprop: prev, step sizes (lr)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", range(len(_MORE_OPTIMIZERS)))
def test_fused_optimizer_steps_match_the_generic_ones(cuda_kernels, case, dtype):
    """Every fused CUDA step (one kernel per parameter) against polyten's generic function of
    the same algorithm (itself checked against torch.optim in tests/test_optim.py), over
    several steps, with the state carried between them."""
    from polyten.optim import _functional as F
    algo, kw = _MORE_OPTIMIZERS[case]
    fused = _opt_fns(cuda_kernels)[algo]
    generic = F._GENERIC[algo]
    runs = []
    for fn in (fused, generic):
        ps = [pt.tensor(p) for p in _params(dtype)]
        states = _opt_states(algo, ps, kw)
        for step in range(1, 7):
            gs = [pt.tensor(g) for g in _grads(step, dtype)]
            if algo == "rprop" and step == 3:
                gs = [-g for g in gs]  # sign flips: the shrink-and-skip branch
            args = [[step] * len(ps) if s == "steps" else s for s in states]
            fn(ps, gs, *args, **kw)
        runs.append([p.numpy() for p in ps])
    tol = 1e-12 if dtype == "float64" else 2e-5
    for a, b in zip(*runs):
        _close(a, b, rtol=tol, atol=tol)


_BF16_OPTIMIZERS = [
    ("adam", dict(beta1=0.9, beta2=0.999, lr=0.05, weight_decay=0.1, eps=1e-8, amsgrad=False,
                  maximize=False)),
    ("adam", dict(beta1=0.9, beta2=0.99, lr=0.05, weight_decay=0.0, eps=1e-8, amsgrad=True,
                  maximize=True)),
    ("adamw", dict(beta1=0.9, beta2=0.999, lr=0.05, weight_decay=0.1, eps=1e-8, amsgrad=False,
                   maximize=False)),
    ("sgd", dict(lr=0.05, weight_decay=0.1, momentum=0.9, dampening=0.1, nesterov=False,
                 maximize=False)),
    ("sgd", dict(lr=0.05, weight_decay=0.0, momentum=0.9, dampening=0.0, nesterov=True,
                 maximize=True)),
] + _MORE_OPTIMIZERS


def _bf16_ulps(got, want):
    """|got - want| in units of the bfloat16 spacing at ``want`` (both bfloat16)."""
    g, w = got.astype(np.float64), want.astype(np.float64)
    spacing = np.spacing(np.abs(want.astype(np.float32))).astype(np.float64) * 2.0 ** 16
    both_nan = np.isnan(g) & np.isnan(w)
    return np.where(both_nan | (g == w), 0.0, np.abs(g - w) / spacing)


@pytest.mark.parametrize("case", range(len(_BF16_OPTIMIZERS)))
def test_fused_optimizer_steps_on_bfloat16_round_once(cuda_kernels, case):
    """bfloat16 parameters and states take the fused steps themselves (one multi-tensor
    launch for all of them, not the shared kernels' dozen array operations per parameter):
    each step computed in float32 from the stored values and rounded once into each stored
    value, so every parameter and state is within one bfloat16 ulp of polyten's generic
    float64 step from the same values, rounded.  Six steps, the state carried; the reference
    restarts from the fused state each step."""
    import ml_dtypes
    from polyten.optim import _functional as F
    bf = np.dtype(ml_dtypes.bfloat16)
    algo, kw = _BF16_OPTIMIZERS[case]
    fused = _opt_fns(cuda_kernels)[algo]
    generic = F._GENERIC[algo]
    ps = [pt.tensor(p.astype(bf)) for p in _params()]
    if algo == "sgd":
        states = [[None] * len(ps)]  # the momentum buffers, made by the (generic) first step
    elif algo in ("adam", "adamw"):
        states = [[pt.zeros_like(p) for p in ps] for _ in range(3 if kw["amsgrad"] else 2)]
        states += [[]] * (not kw["amsgrad"]) + ["steps"]
    else:
        states = _opt_states(algo, ps, kw)

    def copy64(s):
        if isinstance(s, list):
            return [copy64(v) for v in s]
        return pt.tensor(s.numpy().astype(np.float64)) if isinstance(s, pt.Tensor) else s

    def tensors(group):
        return [t for s in group if isinstance(s, list) for t in s if isinstance(t, pt.Tensor)]

    for step in range(1, 7):
        gs = [pt.tensor(g.astype(bf)) for g in _grads(step)]
        if algo == "rprop" and step == 3:
            gs = [-g for g in gs]
        ps64, states64, gs64 = copy64(ps), copy64(states), copy64(gs)
        args = [[step] * len(ps) if s == "steps" else s for s in states]
        args64 = [[step] * len(ps) if s == "steps" else s for s in states64]
        fused(ps, gs, *args, **kw)
        generic(ps64, gs64, *args64, **kw)
        if algo == "sgd" and step == 1:
            continue  # the core's generic first step: no fused kernel ran
        for got, want in zip(ps + tensors(states), ps64 + tensors(states64)):
            assert got.dtype is pt.bfloat16
            ulps = _bf16_ulps(got.numpy(), want.numpy().astype(bf))
            assert ulps.max() <= 1.0, (step, ulps.max())


# --- fused layer_norm / batch_norm (polyten_cuda.norm) ------------------------------------------
_NORM_CASES = [  # kind, x shape, ndim (layer_norm), weight, bias
    ("layer", (4, 6, 10), 1, True, True),
    ("layer", (3, 5, 4), 2, False, False),
    ("layer", (7, 3), 1, True, False),
    ("batch", (6, 4, 5, 3), None, True, True),
    ("batch", (8, 5), None, False, False),
    ("batch", (3, 2, 7), None, True, False),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("case", range(len(_NORM_CASES)))
def test_fused_norms_match_the_cpu_kernels_and_torch(cuda_kernels, case, dtype):
    """layer_norm / batch_norm forward (output, mean, biased variance) and backward (input,
    weight and bias gradients, each alone too) of the CUDA kernels against the cpu kernels
    and, in float64, against PyTorch."""
    from polyten_cpu.kernels import norm as cpu_norm
    kernels, backward = cuda_kernels[:2]
    kind, shape, ndim, has_w, has_b = _NORM_CASES[case]
    cpu, cpu_bw = cpu_norm.kernels(np), cpu_norm.backward_kernels(np)
    x = _x(shape, dtype, seed=case)
    pshape = shape[-ndim:] if kind == "layer" else (shape[1],)
    w = (_x(pshape, dtype, seed=20) if has_w else None)
    b = (_x(pshape, dtype, seed=21) if has_b else None)
    eps = 1e-5
    args = (x, w, b, ndim, eps) if kind == "layer" else (x, w, b, eps)
    op = f"{kind}_norm"
    got, want = kernels[op](*args), cpu[op](*args)
    tol = TOL[dtype] * (10 if dtype != "float64" else 1)
    for a, e in zip(got, want):
        assert a.dtype == e.dtype and a.shape == e.shape
        _close(a, e.astype(np.float64), rtol=tol, atol=tol)
    g = _x(shape, dtype, seed=30 + case)
    for needs in ((True, has_w, has_b), (False, has_w, False), (True, False, False)):
        params = {"needs": needs, "eps": eps, "mean": got[1], "var": got[2], "ndim": ndim}
        cparams = dict(params, mean=want[1], var=want[2])
        gb, cb = (backward[op]([g], [x, w, b], [got[0]], params),
                  cpu_bw[op]([g], [x, w, b], [want[0]], cparams))
        for a, e, need in zip(gb, cb, needs):
            assert (a is None) == (not need) and (e is None) == (not need)
            if need:
                assert a.dtype == e.dtype and a.shape == e.shape
                _close(a, e.astype(np.float64), rtol=tol * 10, atol=tol * 10)
    if dtype == "float64":
        torch = _torch()
        tx = torch.tensor(x, requires_grad=True)
        tw = None if w is None else torch.tensor(w, requires_grad=True)
        tb = None if b is None else torch.tensor(b, requires_grad=True)
        if kind == "layer":
            ty = torch.nn.functional.layer_norm(tx, pshape, tw, tb, eps)
        else:
            ty = torch.nn.functional.batch_norm(tx, None, None, tw, tb, True, 0.1, eps)
        ty.backward(torch.tensor(g))
        _close(got[0], ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        params = {"needs": (True, has_w, has_b), "eps": eps, "mean": got[1], "var": got[2],
                  "ndim": ndim}
        gx, gw, gbias = backward[op]([g], [x, w, b], [got[0]], params)
        _close(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        if has_w:
            _close(gw, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
        if has_b:
            _close(gbias, tb.grad.numpy(), rtol=1e-10, atol=1e-12)
