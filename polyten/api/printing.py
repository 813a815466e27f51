"""``repr`` of tensors, in PyTorch's format: ``tensor([1., 2.], dtype=polyten.float64)``."""

from __future__ import annotations

from . import dtypes as _dt
from .context import default_device

_THRESHOLD = 1000
_EDGE = 3


def tensor_repr(t) -> str:
    import numpy as np  # printing needs host values; imported lazily
    host = np.asarray(t._device.backend.kernels["to_host"](t._data))
    dt = t._dtype
    if dt.kind == "f" or dt.kind == "c":
        finite = host[np.isfinite(host)] if host.size else host
        amax = float(np.abs(finite).max()) if finite.size else 0.0
        amin = float(np.abs(finite[finite != 0]).min()) if (finite != 0).any() else 0.0
        sci = amax >= 1e8 or (amin and amin < 1e-4) or (amax and amin and amax / amin > 1e3)
        ints = finite.size and np.all(np.equal(np.mod(finite.real if dt.kind == "c"
                                                      else finite, 1), 0))

        def ffmt(v):
            if np.isnan(v):
                return "nan"
            if np.isinf(v):
                return "inf" if v > 0 else "-inf"
            if sci:
                return f"{v:.4e}"
            if ints:
                return f"{v:.0f}."
            return f"{v:.4f}"

        if dt.kind == "c":
            formatter = {"complex_kind": lambda v: f"{ffmt(v.real)}{'+' if v.imag >= 0 else '-'}"
                                                   f"{ffmt(abs(v.imag))}j"}
        else:
            formatter = {"float_kind": ffmt}
    elif dt.kind == "b":
        formatter = {"bool": lambda v: "True" if v else "False"}
    else:
        formatter = {"int": str}
    body = np.array2string(host, separator=", ", prefix="tensor(", formatter=formatter,
                           threshold=_THRESHOLD, edgeitems=_EDGE, max_line_width=80)
    extras = []
    if host.size == 0 and host.ndim > 1:
        extras.append(f"size={tuple(host.shape)}")
    default_for_kind = {"f": _dt.get_default_dtype(), "i": _dt.int64, "b": _dt.bool,
                        "c": _dt.get_default_dtype().to_complex()}.get(dt.kind)
    if t._device is not default_device():
        extras.insert(0, f"device='{t._device}'")
    if dt is not default_for_kind:
        extras.append(f"dtype=polyten.{dt.name}")
    ag = t._ag
    if ag is not None and ag.grad_fn is not None:
        extras.append(f"grad_fn=<{type(ag.grad_fn).__name__}>")
    elif ag is not None and ag.requires_grad:
        extras.append("requires_grad=True")
    suffix = "".join(", " + e for e in extras)
    return f"tensor({body}{suffix})"
