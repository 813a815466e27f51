"""``default_collate`` and ``default_convert``: samples -> batches (``torch.utils.data``).

The structure rules are PyTorch's: tensors, NumPy arrays and numbers are stacked into tensors
with a new leading batch dimension (Python floats give float64, ints int64, bools bool); strings
are kept as a list; dicts, namedtuples and sequences are collated element by element (a plain
tuple becomes a list, as PyTorch does).  Every tensor of the result is on the delivery device:
the current backend (see ``_convert``), so a batch needs no ``.to(device)``.
"""

from __future__ import annotations

import collections.abc
import copy

from ..api._core import Tensor
from ..api.shape import stack as _stack
from ._convert import batch_indices, host_to_tensor, to_target
from ._host import np

__all__ = ["default_collate", "default_convert"]

_UNSUPPORTED_KINDS = frozenset("SUOV")   # strings, objects, void: not numbers


def _unsupported(dtype) -> bool:
    """Whether NumPy ``dtype`` holds no numbers (ml_dtypes' bfloat16 is kind "V" but is)."""
    return dtype.kind in _UNSUPPORTED_KINDS and dtype.name != "bfloat16"
_MAX_LISTED = 6


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt_path(path) -> str:
    if not path:
        return ""
    return " at " + "".join(f"[{p!r}]" for p in path) + " of each sample"


def _who(j: int) -> str:
    idx = batch_indices()
    if idx is not None and j < len(idx):
        return f"sample {j} (dataset index {idx[j]})"
    return f"sample {j}"


def _group(positions) -> str:
    idx = batch_indices()
    shown = positions[:_MAX_LISTED]
    more = f", ... ({len(positions)} samples)" if len(positions) > _MAX_LISTED else ""
    word = "sample" if len(positions) == 1 else "samples"
    text = f"{word} {', '.join(str(j) for j in shown)}{more}"
    if idx is not None and positions[-1] < len(idx):
        iw = "dataset index" if len(positions) == 1 else "dataset indices"
        text += f" ({iw} {', '.join(str(idx[j]) for j in shown)}{'...' if more else ''})"
    return text


def _check_same_shape(shapes, path) -> None:
    first = shapes[0]
    if all(s == first for s in shapes):
        return
    groups = {}
    for j, s in enumerate(shapes):
        groups.setdefault(s, []).append(j)
    detail = "; ".join(f"shape {_fmt_shape(s)} for {_group(pos)}" for s, pos in groups.items())
    raise RuntimeError(
        f"default_collate: cannot stack the samples of a batch{_fmt_path(path)}: they have "
        f"different shapes: {detail}. Make every sample the same shape in the dataset (crop, "
        f"pad or resize), or pass a collate_fn that pads them or keeps them as a list (e.g. "
        f"collate_fn=lambda batch: batch), or use batch_size=1.")


def _type_error(batch, path, expected) -> TypeError:
    for j, b in enumerate(batch):
        if not isinstance(b, expected):
            return TypeError(f"default_collate: {_who(j)} is {type(b).__name__}{_fmt_path(path)} "
                             f"but sample 0 is {type(batch[0]).__name__}: the samples of a batch "
                             f"must have the same structure")
    return TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                     f"dicts or lists; found {type(batch[0]).__name__}{_fmt_path(path)}. Pass a "
                     f"collate_fn that handles it")


def _collate_tensors(batch, path):
    for j, b in enumerate(batch):
        if not isinstance(b, Tensor):
            raise _type_error(batch, path, Tensor)
    _check_same_shape([tuple(b._data.shape) for b in batch], path)
    return to_target(_stack(batch, 0))


def _collate_arrays(batch, path):
    nd = np.ndarray
    arrays = batch if all(type(b) is nd for b in batch) else \
        [b if isinstance(b, nd) else np.asarray(b) for b in batch]
    for j, a in enumerate(arrays):
        if _unsupported(a.dtype):
            raise TypeError(f"default_collate: {_who(j)} is an array of dtype {a.dtype}"
                            f"{_fmt_path(path)}; only numeric and bool arrays are collated. "
                            f"Convert it in the dataset, or pass a collate_fn that handles it")
    _check_same_shape([a.shape for a in arrays], path)
    return host_to_tensor(np.stack(arrays))


def _collate_numbers(batch, path, dtype):
    try:
        arr = np.array(batch, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        for j, b in enumerate(batch):
            if not isinstance(b, (int, float, complex, np.generic)):
                raise _type_error(batch, path, (int, float, complex, np.generic)) from exc
        raise TypeError(f"default_collate: the numbers{_fmt_path(path)} do not fit one dtype: "
                        f"{exc}") from None
    if _unsupported(arr.dtype):
        raise _type_error(batch, path, type(batch[0]))
    return host_to_tensor(arr)


def _same_mapping_type(like, values: dict):
    """``values`` as a mapping of ``like``'s type: a copy of a mutable ``like`` updated with
    them (which keeps e.g. a defaultdict's factory), else ``type(like)(values)``, else a dict."""
    if isinstance(like, collections.abc.MutableMapping):
        clone = copy.copy(like)
        clone.update(values)
        return clone
    try:
        return type(like)(values)
    except TypeError:
        return values


def _collate_mapping(batch, path):
    elem = batch[0]
    for j, d in enumerate(batch):
        if not isinstance(d, collections.abc.Mapping):
            raise _type_error(batch, path, collections.abc.Mapping)
    out = {}
    for key in elem:
        values = []
        for j, d in enumerate(batch):
            try:
                values.append(d[key])
            except KeyError:
                raise KeyError(f"default_collate: {_who(j)} has no key {key!r}{_fmt_path(path)}, "
                               f"which sample 0 has; every sample must have the same keys") \
                    from None
        out[key] = _collate(values, path + (key,))
    return _same_mapping_type(elem, out)


def _transpose(batch, path):
    t, n = type(batch[0]), len(batch[0])
    if all(type(b) is t and len(b) == n for b in batch):
        return list(zip(*batch))
    for j, b in enumerate(batch):
        if not isinstance(b, collections.abc.Sequence) or isinstance(b, (str, bytes)):
            raise _type_error(batch, path, collections.abc.Sequence)
        if len(b) != n:
            raise RuntimeError(f"default_collate: each element in list of batch should be of "
                               f"equal size, but sample 0 has {n} elements and {_who(j)} has "
                               f"{len(b)}{_fmt_path(path)}; give every sample the same number "
                               f"of fields, or pass a collate_fn that handles ragged samples")
    return list(zip(*batch))


def _collate(batch, path):
    elem = batch[0]
    exact = _EXACT.get(type(elem))         # the common types without isinstance chains
    if exact is not None:
        return exact(batch, path)
    if isinstance(elem, Tensor):
        return _collate_tensors(batch, path)
    if isinstance(elem, np.ndarray):
        return _collate_arrays(batch, path)
    if isinstance(elem, np.generic):
        return _collate_arrays(batch, path) if not _unsupported(elem.dtype) \
            else _collate_strings(batch, path)
    if isinstance(elem, bool):
        return _collate_numbers(batch, path, None)
    if isinstance(elem, int):
        return _collate_numbers(batch, path, np.int64)
    if isinstance(elem, float):
        return _collate_numbers(batch, path, np.float64)
    if isinstance(elem, complex):
        return _collate_numbers(batch, path, np.complex128)
    if isinstance(elem, (str, bytes)):
        return _collate_strings(batch, path)
    if isinstance(elem, collections.abc.Mapping):
        return _collate_mapping(batch, path)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):   # namedtuple
        cols = _transpose(batch, path)
        return type(elem)(*(_collate(list(c), path + (f,)) for f, c in zip(elem._fields, cols)))
    if isinstance(elem, collections.abc.Sequence):
        cols = _transpose(batch, path)
        out = [_collate(list(c), path + (i,)) for i, c in enumerate(cols)]
        if isinstance(elem, tuple):
            return out      # PyTorch returns a list for tuples (backwards compatibility)
        try:
            return type(elem)(out)
        except TypeError:
            return out
    raise _type_error(batch, path, type(elem))


def _collate_strings(batch, path):
    return list(batch)


def _collate_sequence(batch, path):
    out = [_collate(list(c), path + (i,)) for i, c in enumerate(_transpose(batch, path))]
    return out if type(batch[0]) in (tuple, list) else type(batch[0])(out)


# (NumPy arrays take the isinstance branch of _collate: the table is built before NumPy loads)
_EXACT = {
    Tensor: _collate_tensors, str: _collate_strings,
    bytes: _collate_strings, dict: _collate_mapping, tuple: _collate_sequence,
    list: _collate_sequence,
    bool: lambda b, p: _collate_numbers(b, p, None),
    int: lambda b, p: _collate_numbers(b, p, np.int64),
    float: lambda b, p: _collate_numbers(b, p, np.float64),
}


def default_collate(batch):
    """Collate a list of samples into a batch (``torch.utils.data.default_collate``).

    Parameters
    ----------
    batch : list
        Samples of the same structure: tensors, NumPy arrays, numbers, strings, and dicts,
        namedtuples, tuples or lists of these (nested).

    Returns
    -------
    The batch: tensors, arrays and numbers are stacked along a new first dimension into
    polyten tensors on the current backend; strings give a list; dicts keep their keys,
    namedtuples their type, tuples and lists become lists of collated fields.

    Raises
    ------
    RuntimeError
        Samples cannot be stacked; the message names their shapes and sample indices (and the
        dataset indices when called by a DataLoader).
    TypeError
        An element is of a type that is not collated (``None``, an object), or samples differ
        in structure.

    Examples
    --------
    >>> default_collate([(1.0, "a"), (2.0, "b")])
    [tensor([1., 2.], dtype=polyten.float64), ['a', 'b']]
    """
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)):
        batch = list(batch)
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty; a batch needs at least one "
                         "sample")
    return _collate(batch, ())


def default_convert(data):
    """Convert one sample without batching (``torch.utils.data.default_convert``; used when
    ``batch_size=None``): NumPy arrays and NumPy scalars become polyten tensors on the current
    backend, tensors move there, containers are converted element by element (a tuple becomes a
    list, as PyTorch does), and everything else (Python numbers, strings) is returned as is.
    """
    if isinstance(data, Tensor):
        return to_target(data)
    if isinstance(data, np.ndarray):
        return data if _unsupported(data.dtype) else host_to_tensor(data)
    if isinstance(data, np.generic):
        return data if _unsupported(data.dtype) else \
            host_to_tensor(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping_type(data, {k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        out = [default_convert(d) for d in data]
        try:
            return type(data)(out)
        except TypeError:
            return out
    return data
