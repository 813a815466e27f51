"""``parameters_to_vector`` / ``vector_to_parameters`` (``torch.nn.utils``)."""

from __future__ import annotations

from ...api._core import Tensor, describe, share_version

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_devices(params, op: str) -> None:
    dev = None
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors, got {describe(p)}")
        if dev is None:
            dev = p.device
        elif p.device != dev:
            raise TypeError(f"{op}: found two parameters on different devices ({dev} and "
                            f"{p.device}), this is not supported; move them to one device "
                            f"first")


def parameters_to_vector(parameters) -> Tensor:
    """All ``parameters`` flattened and concatenated into one 1-D tensor (differentiable)."""
    from ...api.shape import cat
    params = list(parameters)
    _check_devices(params, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Set the ``parameters``' values from the 1-D tensor ``vec`` (as made by
    :func:`parameters_to_vector`); each parameter then holds a slice of ``vec``'s memory (as
    PyTorch's ``param.data = ...``), keeping its identity, shape and dtype."""
    op = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{op}: expected a tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    _check_devices(params, op)
    if vec.ndim != 1:
        raise ValueError(f"{op}: vec must be 1-D, got shape {tuple(vec.shape)}")
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(f"{op}: vec has {vec.numel()} elements but the parameters have "
                         f"{total} in all")
    if params and vec.device != params[0].device:
        raise TypeError(f"{op}: vec is on {vec.device} but the parameters on "
                        f"{params[0].device}; move it first, e.g. vec.to('{params[0].device}')")
    pos = 0
    for p in params:
        n = p.numel()
        piece = vec.detach()[pos:pos + n].reshape(tuple(p.shape))
        if piece.dtype is not p.dtype:
            piece = piece.to(p.dtype)
        p._data = piece._data
        share_version(vec, p)  # writes to vec count as writes to p
        pos += n
