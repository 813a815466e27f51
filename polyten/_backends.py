"""``polyten.backends``: the installed backends when called, and ``torch.backends``' flags as
attributes, so that GPU scripts' ``torch.backends.cuda.matmul.allow_tf32 = True`` and
``torch.backends.cudnn.benchmark = True`` run unchanged."""

from __future__ import annotations

from typing import List

from .dispatch import backends as _backends
from .dispatch.precision import get_float32_matmul_precision, set_float32_matmul_precision


class _Matmul:
    """``polyten.backends.cuda.matmul``."""

    @property
    def allow_tf32(self) -> bool:
        """Whether float32 matrix products may use TensorFloat-32: the same setting as
        ``polyten.set_float32_matmul_precision`` (True is ``"high"``, False ``"highest"``)."""
        return get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        set_float32_matmul_precision("high" if value else "highest")

    def __repr__(self) -> str:
        return f"polyten.backends.cuda.matmul(allow_tf32={self.allow_tf32})"


class _Cuda:
    """``polyten.backends.cuda``."""

    def __init__(self):
        self.matmul = _Matmul()

    @staticmethod
    def is_built() -> bool:
        """Whether the ``cuda`` backend (polyten-cuda) is installed, available or not."""
        return any(info.name == "cuda" for info in _backends())


class _Cudnn:
    """``polyten.backends.cudnn``: polyten has no cuDNN (convolutions are im2col and cuBLAS
    products, which follow ``cuda.matmul.allow_tf32``), so ``is_available()`` is False and the
    flags are kept but change nothing, as in a PyTorch build without cuDNN."""

    def __init__(self):
        self.enabled = True
        self.benchmark = False
        self.deterministic = False
        self.allow_tf32 = True

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
