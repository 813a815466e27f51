"""Variable-length sequences: :class:`PackedSequence` and the functions that make and undo it
(``torch.nn.utils.rnn``: ``pack_padded_sequence``, ``pad_packed_sequence``, ``pad_sequence``,
``pack_sequence``, ``unpad_sequence``, ``unpack_sequence``, ``invert_permutation``).

A packed sequence stores the time steps of a batch of sequences one after another, the
longest sequence first within each step: ``data`` (sum of lengths, *) holds step 0 of every
sequence, then step 1 of every sequence still running, ...; ``batch_sizes[t]`` (a cpu int64
tensor) is how many sequences are still running at step ``t``.

Written above the dispatcher: the index arithmetic runs on the cpu backend over the lengths
(which PyTorch also keeps on the host), and the data moves with one ``index_select`` (plus a
``cat``) on the data's own backend, so packing and padding differentiate through those ops
and run on every backend, cuda included.
"""

from __future__ import annotations

from collections import namedtuple

from ...api._core import Tensor, describe
from ...api.creation import arange, asarray, empty_like, full, zeros
from ...api.dtypes import int64
from ...api.elementwise import where
from ...api.indexing import index_select, sort
from ...api.reduction import cumsum
from ...api.shape import cat, stack, unbind
from ...dispatch.errors import fmt_shape

__all__ = ["PackedSequence", "PackedSequenceError", "invert_permutation", "pack_padded_sequence",
           "pad_packed_sequence", "pad_sequence", "unpad_sequence", "pack_sequence",
           "unpack_sequence"]


class PackedSequenceError(ValueError, RuntimeError):
    """A bad length, shape or option for packing or padding sequences.

    Both a ``ValueError`` (Python's convention for bad argument values) and a
    ``RuntimeError`` (what PyTorch raises for the same mistakes), so handlers written for
    either keep working.
    """


_CPU = "cpu"


def _host_ints(t: Tensor) -> list:
    return t.tolist()


def invert_permutation(permutation):
    """The inverse of a 1-D permutation tensor (``None`` for ``None``), on its device:
    ``inv[permutation[i]] = i``."""
    if permutation is None:
        return None
    if not isinstance(permutation, Tensor) or permutation.ndim != 1:
        raise TypeError(f"invert_permutation: expected a 1-D int64 tensor, got "
                        f"{describe(permutation)}")
    out = empty_like(permutation)
    out.scatter_(0, permutation, arange(permutation.numel(), dtype=permutation.dtype,
                                        device=permutation.device))
    return out


_PackedSequenceBase = namedtuple("PackedSequence_", ["data", "batch_sizes", "sorted_indices",
                                                     "unsorted_indices"])


class PackedSequence(_PackedSequenceBase):
    """A batch of variable-length sequences packed for the recurrent layers
    (``torch.nn.utils.rnn.PackedSequence``).

    Make one with :func:`pack_padded_sequence` or :func:`pack_sequence`, not by hand.

    Attributes
    ----------
    data : Tensor
        (sum of lengths, *): the steps of all sequences, time-major, longest sequence first
        within a step.
    batch_sizes : Tensor
        1-D int64 tensor on the cpu: the number of sequences still running at each step
        (non-increasing, the first entry is the batch size).
    sorted_indices : Tensor or None
        On ``data``'s device: position ``j`` of the packed batch holds sequence
        ``sorted_indices[j]`` of the caller's batch (None: the batch was already sorted).
    unsorted_indices : Tensor or None
        The inverse permutation (computed from ``sorted_indices`` when not given).

    It is a named tuple, so ``data, batch_sizes, *_ = packed`` unpacks it.  ``to()``,
    ``cpu()``, ``cuda()``, ``double()``, ... convert ``data`` (and move the index tensors
    with it); ``batch_sizes`` always stays on the cpu.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            # PyTorch's legacy form PackedSequence((data, batch_sizes))
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise TypeError("PackedSequence: pass data and batch_sizes (or one "
                                "(data, batch_sizes) pair); make packed sequences with "
                                "pack_padded_sequence or pack_sequence")
            data, batch_sizes = data
        if not isinstance(data, Tensor):
            raise TypeError(f"PackedSequence: data must be a tensor, got {describe(data)}")
        if not isinstance(batch_sizes, Tensor):
            raise TypeError(f"PackedSequence: batch_sizes must be a 1-D int64 cpu tensor, got "
                            f"{describe(batch_sizes)}")
        if batch_sizes.device.type != _CPU:
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence "
                             "should never be created manually. They should be instantiated "
                             "by functions like pack_sequence and pack_padded_sequences in "
                             f"nn.utils.rnn (got batch_sizes on {batch_sizes.device})")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> "PackedSequence":
        """``data.to(*args, **kwargs)``; the index tensors follow ``data`` to its device
        (they keep their int64 dtype) and ``batch_sizes`` stays on the cpu.  Returns ``self``
        when ``data`` does not change."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        kw = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}
        idx = [None if t is None else t.to(data.device, **kw)
               for t in (self.sorted_indices, self.unsorted_indices)]
        return type(self)(data, self.batch_sizes, idx[0], idx[1])

    def cpu(self, *args, **kwargs) -> "PackedSequence":
        """The packed sequence with ``data`` on the cpu."""
        return self.to(_CPU, *args, **kwargs)

    def cuda(self, device=None, *args, **kwargs) -> "PackedSequence":
        """The packed sequence with ``data`` on ``cuda`` (or ``cuda:device``)."""
        return self.to("cuda" if device is None else f"cuda:{int(device)}", *args, **kwargs)

    def pin_memory(self) -> "PackedSequence":
        """``data`` and the index tensors in page-locked memory (see
        :meth:`Tensor.pin_memory`)."""
        idx = [None if t is None else t.pin_memory()
               for t in (self.sorted_indices, self.unsorted_indices)]
        return type(self)(self.data.pin_memory(), self.batch_sizes, idx[0], idx[1])

    def is_pinned(self) -> bool:
        """Whether ``data`` is in page-locked memory."""
        return self.data.is_pinned()

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a cuda device."""
        return self.data.is_cuda

    def _cast(self, name: str) -> "PackedSequence":
        from ...api import dtypes
        return self.to(dtype=getattr(dtypes, name))

    def double(self) -> "PackedSequence":
        return self._cast("float64")

    def float(self) -> "PackedSequence":
        return self._cast("float32")

    def half(self) -> "PackedSequence":
        return self._cast("float16")

    def long(self) -> "PackedSequence":
        return self._cast("int64")

    def int(self) -> "PackedSequence":
        return self._cast("int32")

    def short(self) -> "PackedSequence":
        return self._cast("int16")

    def char(self) -> "PackedSequence":
        return self._cast("int8")

    def byte(self) -> "PackedSequence":
        return self._cast("uint8")


# ----------------------------------------------------------------------------- helpers -----
def _check_tensor(op: str, name: str, x, min_dim: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {describe(x)}")
    if x.ndim < min_dim:
        raise ValueError(f"{op}: {name} must have at least {min_dim} dimension"
                         f"{'s' if min_dim > 1 else ''}, got shape {fmt_shape(x.shape)}")


def _lengths(op: str, lengths) -> Tensor:
    """``lengths`` as a 1-D int64 cpu tensor (from a list, tuple or cpu tensor)."""
    if isinstance(lengths, Tensor):
        if lengths.device.type != _CPU or lengths.ndim != 1:
            raise PackedSequenceError(
                f"{op}: 'lengths' argument should be a 1D CPU int64 tensor (or a list of "
                f"ints), but got a {lengths.ndim}D {lengths.dtype.name} tensor on "
                f"{lengths.device}; pass lengths.cpu() (PyTorch keeps lengths on the host too)"
                if lengths.ndim == 1 else
                f"{op}: 'lengths' argument should be a 1D CPU int64 tensor (or a list of "
                f"ints), but got {describe(lengths)}")
        return lengths if lengths.dtype is int64 else lengths.to(int64)
    try:
        t = asarray(lengths, device=_CPU)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: lengths must be a list of ints or a 1-D cpu int64 tensor, got "
                        f"{type(lengths).__name__} {lengths!r} ({e})") from None
    if t.ndim != 1:
        raise PackedSequenceError(f"{op}: 'lengths' should be 1-D (one length per sequence), "
                                  f"got values of shape {fmt_shape(t.shape)}")
    return t if t.dtype is int64 else t.to(int64)


def _batch_sizes_of(sorted_lengths: Tensor, steps: int) -> Tensor:
    """batch_sizes[t] = how many of the (descending) lengths exceed t."""
    t = arange(steps, device=_CPU)
    return (sorted_lengths[None, :] > t[:, None]).sum(1)


def _order(op: str, lengths: Tensor, enforce_sorted: bool):
    """``(sorted lengths, permutation or None, sorted lengths as ints)``, after PyTorch's
    checks: sorted when ``enforce_sorted``, every length at least 1."""
    perm = None
    if enforce_sorted:
        lens = _host_ints(lengths)
        for i in range(len(lens) - 1):
            if lens[i + 1] > lens[i]:
                raise PackedSequenceError(
                    f"{op}: `lengths` array must be sorted in decreasing order when "
                    f"`enforce_sorted` is True (got {lens}). You can pass "
                    f"`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                    f"sidestep this requirement if you do not need ONNX exportability.")
        sorted_lengths = lengths
    else:
        sorted_lengths, perm = sort(lengths, descending=True, stable=True)
        lens = _host_ints(sorted_lengths)
    if lens[-1] <= 0:
        raise PackedSequenceError(
            f"{op}: Length of all samples has to be greater than 0, but found an element in "
            f"'lengths' that is <= 0 ({min(lens)}); drop empty sequences before packing")
    return sorted_lengths, perm, lens


def _packed(data, batch_sizes, perm, device) -> PackedSequence:
    if perm is None:
        return PackedSequence(data, batch_sizes, None, None)
    return PackedSequence(data, batch_sizes, perm.to(device), invert_permutation(perm).to(device))


def _sequences(op: str, sequences) -> list:
    """``sequences`` as a non-empty list of tensors (L_i, *) with equal trailing dims, on one
    device, cast to the first one's dtype (as PyTorch's pad_sequence)."""
    if isinstance(sequences, Tensor):
        seqs = list(unbind(sequences, 0)) if sequences.ndim > 0 else []
    else:
        try:
            seqs = list(sequences)
        except TypeError:
            raise TypeError(f"{op}: sequences must be a list of tensors, got "
                            f"{describe(sequences)}") from None
    if not seqs:
        raise PackedSequenceError(f"{op}: received an empty list of sequences; pass at least "
                                  f"one tensor")
    first = seqs[0]
    for i, s in enumerate(seqs):
        _check_tensor(op, f"sequences[{i}]", s, 1)
        if tuple(s.shape[1:]) != tuple(first.shape[1:]):
            raise PackedSequenceError(
                f"{op}: every sequence must have the same trailing dimensions, but "
                f"sequences[0] has shape {fmt_shape(first.shape)} and sequences[{i}] "
                f"{fmt_shape(s.shape)}")
        if s.device != first.device:
            raise PackedSequenceError(
                f"{op}: every sequence must be on one device, but sequences[0] is on "
                f"{first.device} and sequences[{i}] on {s.device}; move them first")
    return [s if s.dtype is first.dtype else s.to(first.dtype) for s in seqs]


def _pack(op, input, lengths, batch_first, enforce_sorted):
    """pack_padded_sequence's body (``op`` names the call in errors)."""
    _check_tensor(op, "input", input, 2)
    shape = tuple(input.shape)
    lengths = _lengths(op, lengths)
    steps, batch = (shape[1], shape[0]) if batch_first else (shape[0], shape[1])
    layout = "(B, T, *)" if batch_first else "(T, B, *)"
    if input.numel() == 0:
        raise PackedSequenceError(f"{op}: Cannot pack empty tensors (input of shape "
                                  f"{fmt_shape(shape)}, read as {layout})")
    if lengths.shape[0] != batch:
        raise PackedSequenceError(
            f"{op}: Expected `len(lengths)` to be equal to batch_size, but got "
            f"{lengths.shape[0]} (batch_size={batch}; input of shape {fmt_shape(shape)} read "
            f"as {layout}{'' if batch_first else '; pass batch_first=True for (B, T, *)'})")
    sorted_lengths, perm, lens = _order(op, lengths, enforce_sorted)
    if lens[0] > steps:
        # PyTorch accepts this and returns batch_sizes that do not match its data
        raise PackedSequenceError(
            f"{op}: lengths can be at most the input's {steps} time steps, got a length of "
            f"{lens[0]} (input of shape {fmt_shape(shape)} read as {layout}"
            f"{'' if batch_first else '; pass batch_first=True for (B, T, *)'})")
    batch_sizes = _batch_sizes_of(sorted_lengths, lens[0])
    rest = shape[2:]
    if perm is None and not batch_first and lens[-1] == steps:
        data = input.reshape((steps * batch,) + rest)  # nothing to drop: a view
    else:
        t = arange(lens[0], device=_CPU)[:, None]
        j = (arange(batch, device=_CPU) if perm is None else perm)[None, :]
        src = j * steps + t if batch_first else t * batch + j
        src = src[sorted_lengths[None, :] > t]  # row-major: step by step, longest first
        data = index_select(input.reshape((steps * batch,) + rest), 0, src.to(input.device))
    return _packed(data, batch_sizes, perm, input.device)


# ------------------------------------------------------------------------------ public -----
def pack_padded_sequence(input, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch of variable-length sequences.

    Parameters
    ----------
    input : Tensor
        (T, B, *) padded sequences (``batch_first``: (B, T, *)); what lies beyond each
        sequence's length is ignored.
    lengths : list of int or Tensor
        The length of each sequence (a 1-D cpu tensor or a list; every length in 1..T).
    batch_first : bool
        Whether ``input`` is (B, T, *).
    enforce_sorted : bool
        ``True``: the sequences must come sorted by decreasing length (an error otherwise).
        ``False``: they are sorted here (stably) and ``sorted_indices`` records the order.

    Returns
    -------
    PackedSequence
        Gradients flow from ``data`` back to ``input``.

    Raises
    ------
    PackedSequenceError
        (a ``ValueError`` and a ``RuntimeError``) for unsorted lengths with
        ``enforce_sorted=True``, a length of 0 or below, a length longer than T (PyTorch
        builds an inconsistent PackedSequence there), a number of lengths other than B, or
        an empty input.
    """
    return _pack("pack_padded_sequence", input, lengths, batch_first, enforce_sorted)


def pad_packed_sequence(sequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length=None):
    """Undo :func:`pack_padded_sequence`: the padded batch and the lengths.

    Parameters
    ----------
    sequence : PackedSequence
    batch_first : bool
        Return (B, T, *) instead of (T, B, *).
    padding_value : float
        The value of the positions past each sequence's end.
    total_length : int, optional
        Pad to this many steps (at least the longest length), e.g. to get back the T of the
        input that was packed.

    Returns
    -------
    (Tensor, Tensor)
        The padded batch in the caller's original order (the packing's ``sorted_indices``
        undone) and the lengths as a 1-D int64 cpu tensor.  Gradients flow back to
        ``sequence.data``.
    """
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence (from pack_padded_sequence or "
                        f"pack_sequence), got {describe(sequence)}")
    data, batch_sizes, _, unsorted_indices = sequence
    bs = _host_ints(batch_sizes)
    steps = len(bs)
    if total_length is not None:
        if isinstance(total_length, bool) or not isinstance(total_length, int):
            raise TypeError(f"{op}: total_length must be an int or None, got "
                            f"{type(total_length).__name__} {total_length!r}")
        if total_length < steps:
            raise ValueError(
                f"{op}: Expected total_length to be at least the length of the longest "
                f"sequence in input, but got total_length={total_length} and max sequence "
                f"length being {steps}")
    out_steps = steps if total_length is None else total_length
    total = data.shape[0]
    if steps == 0 or sum(bs) != total:
        raise PackedSequenceError(
            f"{op}: the PackedSequence is inconsistent: batch_sizes {bs} add up to {sum(bs)} "
            f"but data has {total} rows (shape {fmt_shape(data.shape)}); make it with "
            f"pack_padded_sequence or pack_sequence")
    batch = bs[0]
    rest = tuple(data.shape[1:])
    sizes = batch_sizes.to(int64)
    sorted_lengths = (sizes[None, :] > arange(batch, device=_CPU)[:, None]).sum(1)
    order = None if unsorted_indices is None else unsorted_indices.to(_CPU)
    lengths = sorted_lengths if order is None else sorted_lengths[order]
    if order is None and out_steps == steps and bs[-1] == batch and not batch_first:
        return data.reshape((steps, batch) + rest), lengths  # all full length: a view
    if out_steps > steps:
        sizes = cat([sizes, zeros(out_steps - steps, dtype=int64, device=_CPU)])
    offsets = cumsum(sizes, 0) - sizes
    j = (arange(batch, device=_CPU) if order is None else order)[None, :]
    idx = where(j < sizes[:, None], offsets[:, None] + j, total)  # (T, B); total: padding
    if batch_first:
        idx = idx.mT
    pad = full((1,) + rest, padding_value, dtype=data.dtype, device=data.device)
    out = index_select(cat([data, pad]), 0, idx.reshape(-1).to(data.device))
    return out.reshape(tuple(idx.shape) + rest), lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack variable-length sequences into one padded tensor.

    Parameters
    ----------
    sequences : sequence of Tensor
        Tensors of shape (L_i, *) with the same trailing dimensions (a tensor is read as
        the sequence of its slices along dim 0).  The result has the first one's dtype
        and device.
    batch_first : bool
        Return (B, T, *) instead of (T, B, *), where T is the longest length.
    padding_value : float
    padding_side : {'right', 'left'}
        Where the padding goes.

    Returns
    -------
    Tensor
        Gradients flow back to every sequence.
    """
    op = "pad_sequence"
    if padding_side not in ("left", "right"):
        raise PackedSequenceError(f"{op}: Expected padding_side to be one of left or right, "
                                  f"but got {padding_side!r}.")
    seqs = _sequences(op, sequences)
    first = seqs[0]
    lens = [s.shape[0] for s in seqs]
    longest = max(lens)
    rest = tuple(first.shape[1:])
    if min(lens) == longest:
        return stack(seqs, 0 if batch_first else 1)
    lens_t = asarray(lens, device=_CPU).to(int64)[:, None]
    offsets = cumsum(lens_t, 0) - lens_t
    t = arange(longest, device=_CPU)[None, :]
    shift = 0 if padding_side == "right" else longest - lens_t
    src = offsets + t - shift  # (B, T)
    total = sum(lens)
    idx = where((t >= shift) & (t < shift + lens_t), src, total)
    if not batch_first:
        idx = idx.mT
    pad = full((1,) + rest, padding_value, dtype=first.dtype, device=first.device)
    out = index_select(cat(seqs + [pad]), 0, idx.reshape(-1).to(first.device))
    return out.reshape(tuple(idx.shape) + rest)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """Split a padded batch back into its sequences (the inverse of :func:`pad_sequence`
    with right padding).

    Parameters
    ----------
    padded_sequences : Tensor
        (T, B, *) (``batch_first``: (B, T, *)).
    lengths : list of int or Tensor
        The length of each sequence (at most T).
    batch_first : bool

    Returns
    -------
    list of Tensor
        New tensors of shape (L_i, *) (copies; gradients flow back).  Unlike PyTorch, the
        input is not transposed in place.
    """
    op = "unpad_sequence"
    _check_tensor(op, "padded_sequences", padded_sequences, 2)
    shape = tuple(padded_sequences.shape)
    steps, batch = (shape[1], shape[0]) if batch_first else (shape[0], shape[1])
    lens = _host_ints(lengths) if isinstance(lengths, Tensor) else [int(v) for v in lengths]
    if not isinstance(lens, list) or len(lens) != batch:
        raise PackedSequenceError(
            f"{op}: expected one length per sequence ({batch} for padded_sequences of shape "
            f"{fmt_shape(shape)}{', batch_first' if batch_first else ''}), got {lens}")
    if lens and (max(lens) > steps or min(lens) < 0):
        raise PackedSequenceError(
            f"{op}: lengths must be between 0 and the {steps} padded steps (padded_sequences "
            f"of shape {fmt_shape(shape)}{', batch_first' if batch_first else ''}), got {lens}")
    if batch_first:
        return [padded_sequences[b, :n].clone() for b, n in enumerate(lens)]
    return [padded_sequences[:n, b].clone() for b, n in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of variable-length sequences (each (L_i, *)).

    Equivalent to ``pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=
    enforce_sorted)`` without building the padded tensor.  With ``enforce_sorted=True`` the
    sequences must be sorted by decreasing length; every length must be at least 1.
    """
    op = "pack_sequence"
    seqs = _sequences(op, sequences)
    lengths = asarray([q.shape[0] for q in seqs], device=_CPU).to(int64)
    sorted_lengths, perm, lens = _order(op, lengths, enforce_sorted)
    batch_sizes = _batch_sizes_of(sorted_lengths, lens[0])
    offsets = cumsum(lengths, 0) - lengths
    if perm is not None:
        offsets = offsets[perm]
    t = arange(lens[0], device=_CPU)[:, None]
    src = (offsets[None, :] + t)[sorted_lengths[None, :] > t]  # step by step, longest first
    dev = seqs[0].device
    data = index_select(cat(seqs), 0, src.to(dev))
    return _packed(data, batch_sizes, perm, dev)


def unpack_sequence(packed_sequences) -> list:
    """The list of sequences (each (L_i, *), in the original order) of a
    :class:`PackedSequence`: the inverse of :func:`pack_sequence`."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
