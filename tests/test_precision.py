"""polyten.set_float32_matmul_precision, polyten.backends.cudnn.allow_tf32 (the convolutions'
precision) and polyten.backends' other torch flags: the settings, their errors, and their
delivery to backends (loaded before and after they are set)."""

from __future__ import annotations

import pytest

import polyten as pt
from polyten.dispatch import register_plugin, unregister_plugin

from _plugins import recording_plugin


@pytest.fixture(autouse=True)
def _restore():
    yield
    pt.set_float32_matmul_precision("highest")
    pt.backends.cudnn.allow_tf32 = True


def _recording_plugin(name, seen, conv_seen=None):
    return recording_plugin(name, float32_matmul_precision=seen.append,
                            float32_conv_precision=None if conv_seen is None else
                            conv_seen.append)


def test_default_and_torch_names():
    assert pt.get_float32_matmul_precision() == "highest"
    assert pt.backends.cuda.matmul.allow_tf32 is False
    pt.backends.cuda.matmul.allow_tf32 = True
    assert pt.get_float32_matmul_precision() == "high"
    pt.set_float32_matmul_precision("medium")
    assert pt.backends.cuda.matmul.allow_tf32 is True
    pt.backends.cuda.matmul.allow_tf32 = False
    assert pt.get_float32_matmul_precision() == "highest"


def test_torch_2_9_fp32_precision_names_and_inert_reduction_flags():
    m = pt.backends.cuda.matmul
    assert m.fp32_precision == "ieee"
    m.fp32_precision = "tf32"
    assert pt.get_float32_matmul_precision() == "high" and m.allow_tf32
    assert pt.backends.cudnn.allow_tf32  # the convolutions' flag is its own
    m.fp32_precision = "none"  # torch: inherit the default, IEEE float32
    assert pt.get_float32_matmul_precision() == "highest"
    with pytest.raises(ValueError, match=r"polyten.backends.cuda.matmul.fp32_precision: "
                                         r"expected 'tf32'.*got 'bf16'"):
        m.fp32_precision = "bf16"
    # cuBLAS's reduced-precision split-K reductions: polyten keeps cuBLAS's default math
    # mode (what torch's default True asks for), so the flags are kept and change nothing
    assert m.allow_fp16_reduced_precision_reduction is True
    assert m.allow_bf16_reduced_precision_reduction is True
    assert "fp32_precision='ieee'" in repr(m)


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
    assert pt.backends.cudnn.deterministic is False
    pt.backends.cudnn.benchmark = True  # accepted, as by a PyTorch build without cuDNN
    pt.backends.cudnn.benchmark = False


def test_convolutions_default_to_tf32_as_in_pytorch_and_have_both_torch_names():
    from polyten.dispatch.precision import get_float32_conv_precision
    assert pt.backends.cudnn.allow_tf32 is True  # torch.backends.cudnn.allow_tf32's default
    assert pt.backends.cudnn.conv.fp32_precision == "tf32"
    assert get_float32_conv_precision() == "high"
    pt.backends.cudnn.allow_tf32 = False
    assert pt.backends.cudnn.conv.fp32_precision == "ieee"
    assert get_float32_conv_precision() == "highest"
    assert pt.get_float32_matmul_precision() == "highest"  # the products' own, untouched
    pt.backends.cudnn.conv.fp32_precision = "tf32"
    assert pt.backends.cudnn.allow_tf32 is True
    pt.backends.cuda.matmul.allow_tf32 = True  # and the products' flag leaves convolutions
    pt.backends.cudnn.conv.fp32_precision = "ieee"
    assert pt.get_float32_matmul_precision() == "high" and not pt.backends.cudnn.allow_tf32
    assert "fp32_precision='ieee'" in repr(pt.backends.cudnn.conv)
    # recurrent layers: torch's flag is accepted (and checked) but polyten's RNNs are built
    # from linear ops, on the products' setting
    rnn = pt.backends.cudnn.rnn
    assert rnn.fp32_precision == "tf32"
    rnn.fp32_precision = "ieee"
    assert rnn.fp32_precision == "ieee" and pt.backends.cudnn.conv.fp32_precision == "ieee"
    with pytest.raises(ValueError, match=r"cudnn.rnn.fp32_precision: expected 'tf32'"):
        rnn.fp32_precision = "fast"
    rnn.fp32_precision = "tf32"


def test_bad_convolution_precisions_name_the_choices():
    with pytest.raises(ValueError, match=r"polyten.backends.cudnn.conv.fp32_precision: expected "
                                         r"'tf32' .*, 'ieee' .* or 'none' .*, got 'fp16'"):
        pt.backends.cudnn.conv.fp32_precision = "fp16"
    from polyten.dispatch.precision import set_float32_conv_precision
    with pytest.raises(ValueError, match=r"set_float32_conv_precision: precision must be one of "
                                         r"'highest', 'high', 'medium', got 'tf32'"):
        set_float32_conv_precision("tf32")
    assert pt.backends.cudnn.allow_tf32 is True


def test_backends_get_the_convolution_default_at_load_and_each_change():
    """A backend starts at "highest": PyTorch's default for convolutions, "high", reaches it
    at load (and "highest" does not, where the user turned TF32 off first)."""
    seen, conv_a, conv_b = [], [], []
    pa = register_plugin(_recording_plugin("convpa", seen, conv_a), name="test-convpa")
    pb = register_plugin(_recording_plugin("convpb", seen, conv_b), name="test-convpb")
    try:
        pt.zeros(1, device="convpa")
        assert conv_a == ["high"] and seen == []  # matmul precision: still the default
        pt.backends.cudnn.allow_tf32 = False
        assert conv_a == ["high", "highest"] and seen == []
        pt.zeros(1, device="convpb")
        assert conv_b == []  # loaded with "highest": nothing to hand over
        pt.backends.cudnn.conv.fp32_precision = "tf32"
        assert conv_a[-1] == conv_b[-1] == "high"
    finally:
        unregister_plugin(pa)
        unregister_plugin(pb)
