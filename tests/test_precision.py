"""polyten.set_float32_matmul_precision and polyten.backends' torch flags: the setting, its
errors, and its delivery to backends (loaded before and after it is set)."""

from __future__ import annotations

import pytest

import polyten as pt
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin, unregister_plugin


@pytest.fixture(autouse=True)
def _restore():
    yield
    pt.set_float32_matmul_precision("highest")


def _recording_plugin(name, seen):
    from polyten_cpu.backend import make_backend
    base = make_backend()

    class Plugin:
        @hookimpl
        def polyten_register_backends(self, register):
            register(BackendSpec(name, load=lambda: Backend(
                name, base.kernels, dtypes=base.dtypes, native_dtype=base.native_dtype,
                dtype_name=base.dtype_name, is_native=base.is_native, seed=base.seed,
                float32_matmul_precision=seen.append)))
    return Plugin()


def test_default_and_torch_names():
    assert pt.get_float32_matmul_precision() == "highest"
    assert pt.backends.cuda.matmul.allow_tf32 is False
    pt.backends.cuda.matmul.allow_tf32 = True
    assert pt.get_float32_matmul_precision() == "high"
    pt.set_float32_matmul_precision("medium")
    assert pt.backends.cuda.matmul.allow_tf32 is True
    pt.backends.cuda.matmul.allow_tf32 = False
    assert pt.get_float32_matmul_precision() == "highest"


def test_a_bad_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"set_float32_matmul_precision: precision must be one "
                                         r"of 'highest', 'high', 'medium', got 'low'"):
        pt.set_float32_matmul_precision("low")
    assert pt.get_float32_matmul_precision() == "highest"


def test_loaded_backends_get_each_change_and_later_ones_get_it_at_load():
    seen_a, seen_b = [], []
    pa = register_plugin(_recording_plugin("preca", seen_a), name="test-preca")
    pb = register_plugin(_recording_plugin("precb", seen_b), name="test-precb")
    try:
        pt.zeros(1, device="preca")  # loads preca with the default: no call needed
        assert seen_a == []
        pt.set_float32_matmul_precision("high")
        assert seen_a == ["high"]
        pt.zeros(1, device="precb")  # loads precb now: it gets the current setting
        assert seen_b == ["high"]
        pt.backends.cuda.matmul.allow_tf32 = False
        assert seen_a == ["high", "highest"] and seen_b == ["high", "highest"]
    finally:
        unregister_plugin(pa)
        unregister_plugin(pb)


def test_cpu_products_are_unchanged():
    # NumPy has no reduced-precision float32 products: the cpu backend has no hook
    x = pt.randn(16, 16)
    before = (x @ x).numpy()
    pt.set_float32_matmul_precision("high")
    assert ((x @ x).numpy() == before).all()


def test_backends_is_still_the_listing_and_cudnn_flags_exist():
    names = [b.name for b in pt.backends()]
    assert "cpu" in names
    assert pt.backends.cuda.is_built() == ("cuda" in names)
    assert pt.backends.cudnn.is_available() is False  # polyten has no cuDNN
    pt.backends.cudnn.benchmark = True  # accepted, as by a PyTorch build without cuDNN
    pt.backends.cudnn.benchmark = False
