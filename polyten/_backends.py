"""``polyten.backends``: the installed backends when called, and ``torch.backends``' flags as
attributes, so that GPU scripts' ``torch.backends.cuda.matmul.allow_tf32 = True`` and
``torch.backends.cudnn.benchmark = True`` run unchanged."""

from __future__ import annotations

from typing import List

from .dispatch import backends as _backends
from .dispatch.precision import (get_float32_conv_precision, get_float32_matmul_precision,
                                 set_float32_conv_precision, set_float32_matmul_precision)


class _Matmul:
    """``polyten.backends.cuda.matmul``."""

    def __init__(self):
        # whether cuBLAS may reduce split-K partial sums of half products in half precision
        # (torch's defaults, True): kept without effect -- polyten leaves cuBLAS's handle in
        # its default math mode, which allows it (torch's True); False does not forbid it
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        """Whether float32 matrix products may use TensorFloat-32: the same setting as
        ``polyten.set_float32_matmul_precision`` (True is ``"high"``, False ``"highest"``)."""
        return get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        set_float32_matmul_precision("high" if value else "highest")

    @property
    def fp32_precision(self) -> str:
        """PyTorch 2.9's name for the same setting: ``"tf32"`` or ``"ieee"`` (setting
        ``"none"``, torch's "inherit the default", is ``"ieee"``)."""
        return "ieee" if get_float32_matmul_precision() == "highest" else "tf32"

    @fp32_precision.setter
    def fp32_precision(self, value: str) -> None:
        set_float32_matmul_precision(_fp32_precision("polyten.backends.cuda.matmul", value))

    def __repr__(self) -> str:
        return (f"polyten.backends.cuda.matmul(allow_tf32={self.allow_tf32}, "
                f"fp32_precision={self.fp32_precision!r})")


def _fp32_precision(where: str, value: str) -> str:
    """torch's ``fp32_precision`` names -> polyten's precisions ("none" inherits torch's
    default, "ieee")."""
    if value not in ("tf32", "ieee", "none"):
        raise ValueError(f"{where}.fp32_precision: expected 'tf32' (TensorFloat-32 allowed), "
                         f"'ieee' (float32 throughout) or 'none' (the default, 'ieee'), got "
                         f"{value!r}")
    return "high" if value == "tf32" else "highest"


class _Cuda:
    """``polyten.backends.cuda``."""

    def __init__(self):
        self.matmul = _Matmul()

    @staticmethod
    def is_built() -> bool:
        """Whether the ``cuda`` backend (polyten-cuda) is installed, available or not."""
        return any(info.name == "cuda" for info in _backends())


class _CudnnConv:
    """``polyten.backends.cudnn.conv``: PyTorch 2.9's name for the convolution flag."""

    @property
    def fp32_precision(self) -> str:
        """``"tf32"`` (the default) or ``"ieee"``: the same setting as
        ``polyten.backends.cudnn.allow_tf32``."""
        return "ieee" if get_float32_conv_precision() == "highest" else "tf32"

    @fp32_precision.setter
    def fp32_precision(self, value: str) -> None:
        set_float32_conv_precision(_fp32_precision("polyten.backends.cudnn.conv", value))

    def __repr__(self) -> str:
        return f"polyten.backends.cudnn.conv(fp32_precision={self.fp32_precision!r})"


class _CudnnRnn:
    """``polyten.backends.cudnn.rnn``: torch's flag for cuDNN's recurrent layers, kept without
    effect.  polyten's RNN / LSTM / GRU are built from ``linear`` and elementwise ops, so their
    float32 products follow ``polyten.backends.cuda.matmul`` ("ieee" by default, where
    torch's cuDNN RNNs take TF32)."""

    def __init__(self):
        self._value = "tf32"

    @property
    def fp32_precision(self) -> str:
        return self._value

    @fp32_precision.setter
    def fp32_precision(self, value: str) -> None:
        _fp32_precision("polyten.backends.cudnn.rnn", value)  # the same names and checks
        self._value = value


class _Cudnn:
    """``polyten.backends.cudnn``.  polyten has no cuDNN (its convolutions are im2col and
    cuBLAS products), so ``is_available()`` is False; but ``allow_tf32`` governs those
    convolutions as it governs cuDNN's in PyTorch -- True by default: float32 convolutions
    take TensorFloat-32 on a GPU that has it, and setting it to False makes them float32
    throughout.  ``benchmark`` and ``deterministic`` are kept and change nothing (polyten's
    convolutions have one algorithm each, and it is deterministic), and so is
    ``rnn.fp32_precision`` (polyten's recurrent layers are ``linear`` ops: see
    :class:`_CudnnRnn`)."""

    def __init__(self):
        self.enabled = True
        self.benchmark = False
        self.deterministic = False
        self.conv = _CudnnConv()
        self.rnn = _CudnnRnn()

    @property
    def allow_tf32(self) -> bool:
        """Whether float32 convolutions may use TensorFloat-32 (default True, as in PyTorch):
        :func:`polyten.dispatch.precision.set_float32_conv_precision` ``"high"`` or
        ``"highest"``."""
        return get_float32_conv_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        set_float32_conv_precision("high" if value else "highest")

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def version():
        return None


class BackendsNamespace:
    """``polyten.backends()`` lists the discovered backends (:func:`polyten.dispatch.backends`);
    ``polyten.backends.cuda.matmul.allow_tf32`` and ``polyten.backends.cudnn`` are PyTorch's
    flags."""

    def __init__(self):
        self.cuda = _Cuda()
        self.cudnn = _Cudnn()

    def __call__(self) -> List:
        return _backends()

    def __repr__(self) -> str:
        return "<polyten.backends: call it for the installed backends>"


backends = BackendsNamespace()
