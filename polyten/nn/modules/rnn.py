"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their single-step cells
(``torch.nn`` signatures, parameter names, gate orders, defaults and initialisation).

Written in polyten ops, so they differentiate (to any order) and run on every backend.  A
layer computes the input projections of all time steps with one matmul per layer and
direction; only the hidden-state part (one ``(N, H) @ (H, G*H)`` matmul and a few elementwise
ops) runs inside the loop over time, in one graph node per layer and direction with a
hand-written backward (see :mod:`polyten.nn.functional._rnn`).  For LSTM and the Elman RNN the
two biases are folded into that one projection (``b_ih + b_hh``); GRU keeps ``b_hn`` inside the
reset gate's product, as PyTorch defines it.

A :class:`~polyten.nn.utils.rnn.PackedSequence` input runs on the packed rows directly: the
input projection is one matmul over ``data``, and the recurrence runs once per stretch of time
steps with the same batch size (the same node as the padded path, over fewer rows), so each
sequence's final state is taken at its own last step, as PyTorch's packed RNNs do.
"""

from __future__ import annotations

import math
import numbers
import warnings

from ...api import autocast as _amp
from ...api._core import Tensor, describe, device_mismatch
from ...api.shape import cat, stack, unbind
from .. import functional as F
from .. import init
from ..functional._rnn import gru_step, lstm_step, relu_step, run_layer, tanh_step
from ..parameter import Parameter
from .linear import _empty
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _zeros(shape, like):
    from ...api.creation import zeros
    return zeros(shape, dtype=like._dtype, device=like._device)


def _shape(t) -> tuple:
    return tuple(t.shape)


def _packed_sequence():
    # nn.utils.rnn is loaded on first use: `import polyten` stays cheap
    from ..utils.rnn import PackedSequence
    return PackedSequence


def _folded_bias(b_ih, b_hh):
    if b_ih is None:
        return None
    return b_ih + b_hh


class _Recurrent(Module):
    """What the recurrent layers and cells share: PyTorch's initialisation and the repr
    their errors start with."""

    def reset_parameters(self) -> None:
        """U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) for every weight and bias."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _describe(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _check_like_weights(self, input, w) -> None:
        """``input`` on the device and of the dtype of the layer's parameters (``w``)."""
        if input._device is not w._device:
            raise device_mismatch(type(self).__name__, (input, w))
        if input._dtype is not w._dtype:
            raise TypeError(f"{self._describe()}: input dtype {input._dtype.name} does not "
                            f"match the layer's parameters ({w._dtype.name}); convert one of "
                            f"them, e.g. input.to(polyten.{w._dtype.name}) or module.to("
                            f"polyten.{input._dtype.name})")


# ------------------------------------------------------------------------- recurrent base --
class RNNBase(_Recurrent):
    """Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Parameters are registered per layer ``k`` and direction (suffix ``_reverse`` for the
    backward direction) under PyTorch's names: ``weight_ih_l{k}`` (G*H, H_in),
    ``weight_hh_l{k}`` (G*H, H_out), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,) and, for an
    LSTM with ``proj_size > 0``, ``weight_hr_l{k}`` (proj_size, H), where G is the number of
    gates (1, 4 or 3).  All start from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        cls = type(self).__name__
        if mode not in _GATES:
            raise ValueError(f"{cls}: unrecognized RNN mode {mode!r}; expected one of "
                             f"{sorted(_GATES)}")
        if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Number)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{cls}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        for name, v in (("bias", bias), ("batch_first", batch_first),
                        ("bidirectional", bidirectional)):
            if not isinstance(v, bool):
                raise TypeError(f"{cls}: {name} should be of type bool, got "
                                f"{type(v).__name__}")
        for name, v, lo in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                            ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{cls}: {name} should be of type int, got {type(v).__name__}")
            if v < lo:
                raise ValueError(f"{cls}: {name} must be "
                                 f"{'greater than zero' if lo else 'zero or positive'}, got {v}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{cls}: proj_size argument is only supported for LSTM, not RNN "
                             f"or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"{cls}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        num_directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for stem, shape in shapes:
                    name = f"{stem}_l{layer}{suffix}"
                    setattr(self, name, Parameter(_empty(shape, device, dtype)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """Does nothing: polyten keeps no fused (cuDNN-style) weight buffer to compact."""

    @property
    def all_weights(self) -> list:
        """The parameters as a list per layer and direction, in registration order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    # ------------------------------------------------------------------ checks -----------
    def _check_input(self, input) -> bool:
        """Validate ``input``; returns whether it is batched (3-D)."""
        me = self._describe()
        if not isinstance(input, Tensor):
            raise TypeError(f"{me}: expected a tensor as input, got {describe(input)}")
        shape = _shape(input)
        if len(shape) not in (2, 3):
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ValueError(f"{me}: expected input to be 2-D (L, H_in) (unbatched) or 3-D "
                             f"{layout} (batched), got a {len(shape)}-D tensor of shape {shape}")
        if shape[-1] != self.input_size:
            raise ValueError(f"{me}: expected an input with input_size={self.input_size} "
                             f"features in its last dimension, got input of shape {shape}; "
                             f"input.size(-1) must be equal to input_size")
        if shape[1 if self.batch_first and len(shape) == 3 else 0] == 0:
            raise ValueError(f"{me}: expected a sequence of at least one time step, got input "
                             f"of shape {shape}")
        self._check_like_weights(input, self.weight_ih_l0)
        return len(shape) == 3

    def _state(self, hx, name, size, batched, batch, like, packed=False):
        """``hx`` checked against (D * num_layers, [N,] size), batched; zeros if None."""
        d = 2 if self.bidirectional else 1
        expected = (d * self.num_layers, batch, size) if batched else (d * self.num_layers, size)
        if hx is None:
            return _zeros((d * self.num_layers, batch, size), like)
        me = self._describe()
        if not isinstance(hx, Tensor):
            raise TypeError(f"{me}: {name} must be a tensor or None, got {describe(hx)}")
        shape = _shape(hx)
        if shape != expected:
            what = ("packed" if packed else "batched 3-D") if batched else "unbatched 2-D"
            raise ValueError(f"{me}: expected {name} of shape {expected} (num_layers * "
                             f"num_directions, {'batch, ' if batched else ''}hidden size) for "
                             f"the {what} input, got {shape}")
        if hx._device is not like._device:
            raise device_mismatch(type(self).__name__, (like, hx))
        if hx._dtype is not like._dtype:
            raise TypeError(f"{me}: {name} dtype {hx._dtype.name} does not match the input's "
                            f"({like._dtype.name}); convert it, e.g. "
                            f"{name}.to(polyten.{like._dtype.name})")
        return hx if batched else hx.unsqueeze(1)

    # ------------------------------------------------------------------- forward -----------
    def _run(self, input, hx_list):
        """Run every layer over ``input`` (time-major, batched). ``hx_list``: the initial
        states (each (D * num_layers, N, size)). Returns the output and the final states."""
        mode = self.mode
        hidden = self.hidden_size
        d = 2 if self.bidirectional else 1
        p = self.dropout if self.training else 0.0
        if _amp.ACTIVE[0]:  # autocast runs the recurrent layers in float16, as cuDNN's
            hx_list = [_amp.lower(h) for h in hx_list]
        states = [[] for _ in hx_list]
        inits = [unbind(h, 0) for h in hx_list]
        x = input
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer * d + direction)
                idx = layer * d + direction
                h0 = inits[0][idx]
                c0 = inits[1][idx] if mode == "LSTM" else None
                if mode == "GRU":  # b_hn stays inside the reset gate's product
                    xw = F.linear(x, w_ih, b_ih)
                else:
                    xw, b_hh = F.linear(x, w_ih, _folded_bias(b_ih, b_hh)), None
                ys, h, c = run_layer(mode, xw, h0, c0, w_hh, b_hh, w_hr, hidden,
                                     bool(direction))
                final = (h, c) if mode == "LSTM" else (h,)
                for s, v in zip(states, final):
                    s.append(v)
                outs.append(ys)
            x = outs[0] if d == 1 else cat(outs, 2)
            if p > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, p, True)
        return x, tuple(stack(s, 0) for s in states)

    def _layer_weights(self, k):
        """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of layer-and-direction ``k`` (None where absent;
        cast under autocast)."""
        params = {n.rsplit("_l", 1)[0]: getattr(self, n) for n in self._all_weights[k]}
        if _amp.ACTIVE[0]:
            params = {key: _amp.lower(v) for key, v in params.items()}
        return (params["weight_ih"], params["weight_hh"], params.get("bias_ih"),
                params.get("bias_hh"), params.get("weight_hr"))

    def _forward(self, input, hx_list, names, sizes):
        if not isinstance(input, Tensor) and isinstance(input, _packed_sequence()):
            return self._forward_packed(input, hx_list, names, sizes)
        batched = self._check_input(input)
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        batch = input.shape[1]
        if hx_list is None:
            hx_list = (None,) * len(names)
        states = [self._state(h, n, s, batched, batch, input)
                  for h, n, s in zip(hx_list, names, sizes)]
        out, finals = self._run(input, states)
        if not batched:
            out = out.squeeze(1)
            finals = tuple(f.squeeze(1) for f in finals)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, finals

    # ------------------------------------------------------------- packed sequences ------
    def _forward_packed(self, input, hx_list, names, sizes):
        """``input`` a PackedSequence: returns a PackedSequence (same batch_sizes and
        indices) and the final states in the caller's batch order."""
        me = self._describe()
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if not isinstance(data, Tensor):
            raise TypeError(f"{me}: a PackedSequence's data must be a tensor, got "
                            f"{describe(data)}")
        shape = _shape(data)
        if len(shape) != 2:
            raise ValueError(f"{me}: a PackedSequence's data must be 2-D (sum of lengths, "
                             f"H_in) for a recurrent layer, got shape {shape}")
        if shape[1] != self.input_size:
            raise ValueError(f"{me}: expected an input with input_size={self.input_size} "
                             f"features in its last dimension, got packed data of shape "
                             f"{shape}; input.size(-1) must be equal to input_size")
        self._check_like_weights(data, self.weight_ih_l0)
        bs = batch_sizes.tolist() if isinstance(batch_sizes, Tensor) else None
        if (not bs or not isinstance(bs, list) or bs[-1] < 1 or sum(bs) != shape[0]
                or any(a < b for a, b in zip(bs, bs[1:]))):
            raise ValueError(f"{me}: the PackedSequence's batch_sizes {bs} must be positive, "
                             f"non-increasing and add up to the {shape[0]} rows of its data; "
                             f"make it with pack_padded_sequence or pack_sequence")
        if hx_list is None:
            hx_list = (None,) * len(names)
        states = []
        for h, n, s in zip(hx_list, names, sizes):
            st = self._state(h, n, s, True, bs[0], data, packed=True)
            if h is not None and sorted_indices is not None:
                st = st.index_select(1, sorted_indices)  # into the packed (sorted) order
            states.append(st)
        out, finals = self._run_packed(data, bs, states)
        if unsorted_indices is not None:
            finals = tuple(f.index_select(1, unsorted_indices) for f in finals)
        return (_packed_sequence()(out, batch_sizes, sorted_indices, unsorted_indices),
                finals)

    def _run_packed(self, x, bs, hx_list):
        """:meth:`_run` over packed rows ``x`` (sum(bs), H_in) with batch sizes ``bs``.

        The steps split into *segments*, maximal runs of steps with one batch size ``b``;
        within one, the packed rows are a (steps, b, G) block of ``x @ W_ih^T``, so the
        padded path's fused layer runs on it unchanged.  A forward direction starts a segment
        from the first ``b`` rows of the previous segment's final state (the other rows have
        ended: those are their final states); a reverse direction walks the segments
        backwards and adds the rows of the sequences that start there, from ``h0``.
        """
        mode = self.mode
        hidden = self.hidden_size
        d = 2 if self.bidirectional else 1
        p = self.dropout if self.training else 0.0
        segs = []  # [batch size, steps]
        for b in bs:
            if segs and segs[-1][0] == b:
                segs[-1][1] += 1
            else:
                segs.append([b, 1])
        k_last = len(segs) - 1
        rows = [b * n for b, n in segs]
        # widths of the rows that end (forward) / start (reverse) at each segment boundary,
        # from the smallest batch up: rows [0, b_K), [b_K, b_{K-1}), ...
        widths = [segs[-1][0]] + [segs[k][0] - segs[k + 1][0] for k in range(k_last - 1, -1, -1)]
        if _amp.ACTIVE[0]:  # autocast runs the recurrent layers in float16, as cuDNN's
            hx_list = [_amp.lower(h) for h in hx_list]
        states = [[] for _ in hx_list]
        inits = [unbind(h, 0) for h in hx_list]
        lstm = mode == "LSTM"
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer * d + direction)
                idx = layer * d + direction
                if mode == "GRU":
                    xw = F.linear(x, w_ih, b_ih)
                else:
                    xw, b_hh = F.linear(x, w_ih, _folded_bias(b_ih, b_hh)), None
                g = xw.shape[1]
                blocks = xw.split(rows, 0) if k_last else (xw,)
                blocks = [blk.reshape(n, b, g) for blk, (b, n) in zip(blocks, segs)]
                h0 = inits[0][idx]
                c0 = inits[1][idx] if lstm else None
                ys = [None] * len(segs)
                if direction == 0:
                    h, c = h0, c0
                    done_h, done_c = [], []  # final states, largest rows first
                    for k, (b, n) in enumerate(segs):
                        y, h, c = run_layer(mode, blocks[k], h, c, w_hh, b_hh, w_hr, hidden,
                                            False)
                        ys[k] = y.reshape(b * n, y.shape[2])
                        nb = segs[k + 1][0] if k < k_last else 0
                        if nb:
                            h, h_done = h.split((nb, b - nb), 0)
                            done_h.append(h_done)
                            if lstm:
                                c, c_done = c.split((nb, b - nb), 0)
                                done_c.append(c_done)
                    done_h.append(h)
                    done_c.append(c)
                    h = cat(done_h[::-1], 0) if k_last else h
                    c = (cat(done_c[::-1], 0) if k_last else c) if lstm else None
                else:
                    h_parts = h0.split(widths, 0) if k_last else (h0,)
                    c_parts = (c0.split(widths, 0) if k_last else (c0,)) if lstm else None
                    h = h_parts[0]
                    c = c_parts[0] if lstm else None
                    for k in range(k_last, -1, -1):
                        b, n = segs[k]
                        if k < k_last:
                            h = cat([h, h_parts[k_last - k]], 0)
                            if lstm:
                                c = cat([c, c_parts[k_last - k]], 0)
                        y, h, c = run_layer(mode, blocks[k], h, c, w_hh, b_hh, w_hr, hidden,
                                            True)
                        ys[k] = y.reshape(b * n, y.shape[2])
                final = (h, c) if lstm else (h,)
                for s, v in zip(states, final):
                    s.append(v)
                outs.append(cat(ys, 0) if k_last else ys[0])
            x = outs[0] if d == 1 else cat(outs, 1)
            if p > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, p, True)
        return x, tuple(stack(s, 0) for s in states)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    r"""Multi-layer Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (``nonlinearity='relu'`` uses ReLU instead of tanh).

    Parameters
    ----------
    input_size, hidden_size : int
        Features of the input ``x`` and of the hidden state ``h``.
    num_layers : int
        Stacked recurrent layers (each takes the previous one's output sequence).
    nonlinearity : {'tanh', 'relu'}
    bias : bool
        Whether the layers have ``b_ih`` and ``b_hh``.
    batch_first : bool
        Batched input and output are (N, L, H) instead of (L, N, H); ``h0``/``h_n`` are
        always (D * num_layers, N, H).
    dropout : float
        Dropout probability on the outputs of every layer but the last (training mode only).
    bidirectional : bool
        Also run each layer backwards in time; outputs concatenate both directions (D = 2).

    Call ``rnn(input, h0=None)`` with ``input`` (L, N, H_in) (or (N, L, H_in) with
    ``batch_first``) or unbatched (L, H_in); returns ``(output, h_n)`` with ``output``
    (L, N, D * H_out) and ``h_n`` (D * num_layers, N, H_out) (unbatched: no N).

    ``input`` may also be a :class:`~polyten.nn.utils.rnn.PackedSequence` (from
    ``pack_padded_sequence`` / ``pack_sequence``): ``output`` is then a PackedSequence with
    the same ``batch_sizes`` and indices, and ``h_n`` holds each sequence's state at its own
    last step, in the caller's batch order (``h0`` too is in that order, N = the batch size).
    The same holds for :class:`LSTM` and :class:`GRU`.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("RNN: proj_size argument is only supported for LSTM, not RNN or "
                             "GRU")
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from 'tanh' "
                             f"or 'relu'")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(mode, *args, **kwargs)

    def forward(self, input, hx=None):
        out, (h,) = self._forward(input, None if hx is None else (hx,), ("h0",),
                                  (self.hidden_size,))
        return out, h


class LSTM(RNNBase):
    r"""Multi-layer long short-term memory RNN (PyTorch's gate order ``i, f, g, o``)::

        i, f, o = sigmoid(x W_i* + h W_h* + b),  g = tanh(x W_ig + h W_hg + b)
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (then h_t @ W_hr^T with proj_size)

    Parameters are as :class:`RNN`'s (no ``nonlinearity``), plus ``proj_size``: when > 0 the
    hidden state is projected to ``proj_size`` features by ``weight_hr_l{k}``.

    Call ``lstm(input, (h0, c0)=None)``; returns ``(output, (h_n, c_n))``, with ``h0``/``h_n``
    (D * num_layers, N, H_out) and ``c0``/``c_n`` (D * num_layers, N, hidden_size), where
    ``H_out = proj_size or hidden_size`` (unbatched: no N).
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input, hx=None):
        real = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{self._describe()}: hx must be a tuple (h0, c0) of two tensors "
                            f"or None, got {describe(hx)}")
        out, (h, c) = self._forward(input, hx, ("h0", "c0"), (real, self.hidden_size))
        return out, (h, c)


class GRU(RNNBase):
    r"""Multi-layer gated recurrent unit (PyTorch's gate order ``r, z, n``)::

        r = sigmoid(x W_ir + b_ir + h W_hr + b_hr),  z = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}

    Parameters and call as :class:`RNN` (without ``nonlinearity``).
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("GRU: proj_size argument is only supported for LSTM, not RNN or "
                             "GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input, hx=None):
        out, (h,) = self._forward(input, None if hx is None else (hx,), ("h0",),
                                  (self.hidden_size,))
        return out, h


# --------------------------------------------------------------------------------- cells ---
class RNNCellBase(_Recurrent):
    """Base class of the single-step cells: ``weight_ih`` (G*H, input_size), ``weight_hh``
    (G*H, hidden_size), ``bias_ih``/``bias_hh`` (G*H,), all U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        cls = type(self).__name__
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{cls}: {name} should be of type int, got {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{cls}: {name} must be greater than zero, got {v}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(_empty((g, input_size), device, dtype))
        self.weight_hh = Parameter(_empty((g, hidden_size), device, dtype))
        if bias:
            self.bias_ih = Parameter(_empty((g,), device, dtype))
            self.bias_hh = Parameter(_empty((g,), device, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = self.__dict__.get("nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def _check(self, input, states):
        """Validate ``input`` and the states (name, tensor or None); returns whether batched
        and the states as 2-D tensors (zeros where None)."""
        me = self._describe()
        if not isinstance(input, Tensor):
            raise TypeError(f"{me}: expected a tensor as input, got {describe(input)}")
        shape = _shape(input)
        if len(shape) not in (1, 2):
            raise ValueError(f"{me}: expected input to be 1-D (input_size,) or 2-D (N, "
                             f"input_size), got a {len(shape)}-D tensor of shape {shape}")
        if shape[-1] != self.input_size:
            raise ValueError(f"{me}: expected an input with input_size={self.input_size} "
                             f"features in its last dimension, got input of shape {shape}")
        self._check_like_weights(input, self.weight_ih)
        batched = len(shape) == 2
        if not batched:
            input = input.unsqueeze(0)
        n = input.shape[0]
        out = []
        for name, h in states:
            if h is None:
                out.append(_zeros((n, self.hidden_size), input))
                continue
            if not isinstance(h, Tensor):
                raise TypeError(f"{me}: {name} must be a tensor or None, got {describe(h)}")
            expected = (n, self.hidden_size) if batched else (self.hidden_size,)
            if _shape(h) != expected:
                raise ValueError(f"{me}: expected {name} of shape {expected} for input of "
                                 f"shape {shape}, got {_shape(h)}")
            if h._device is not input._device:
                raise device_mismatch(type(self).__name__, (input, h))
            if h._dtype is not input._dtype:
                raise TypeError(f"{me}: {name} dtype {h._dtype.name} does not match the "
                                f"input's ({input._dtype.name})")
            out.append(h if batched else h.unsqueeze(0))
        return batched, input, out


def _cell_args(cell, x, states):
    """A cell's input, states and weights, cast under autocast (the cells are float16 ops
    there, as PyTorch's)."""
    w = (cell.weight_ih, cell.bias_ih, cell.weight_hh, cell.bias_hh)
    if _amp.ACTIVE[0]:
        lowered = _amp.lower(x, *states, *w)
        n = len(states)
        return lowered[0], list(lowered[1:1 + n]), lowered[1 + n:]
    return x, states, w


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU).

    Call ``cell(input, hx=None)`` with ``input`` (N, input_size) or (input_size,) and ``hx``
    (N, hidden_size) / (hidden_size,) (zeros if None); returns ``h'`` of ``hx``'s shape.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; select from "
                             f"'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched, x, (h,) = self._check(input, (("hx", hx),))
        x, (h,), (w_ih, b_ih, w_hh, b_hh) = _cell_args(self, x, [h])
        step = tanh_step if self.nonlinearity == "tanh" else relu_step
        out = step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gate order ``i, f, g, o``, as :class:`LSTM`).

    Call ``cell(input, (h, c)=None)``; returns ``(h', c')``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{self._describe()}: hx must be a tuple (h, c) of two tensors or "
                            f"None, got {describe(hx)}")
        h0, c0 = (None, None) if hx is None else hx
        batched, x, (h, c) = self._check(input, (("hx[0]", h0), ("hx[1]", c0)))
        x, (h, c), (w_ih, b_ih, w_hh, b_hh) = _cell_args(self, x, [h, c])
        h, c = lstm_step(F.linear(x, w_ih, b_ih), h, c, w_hh, b_hh, None, self.hidden_size)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gate order ``r, z, n``, as :class:`GRU`).

    Call ``cell(input, hx=None)``; returns ``h'``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        batched, x, (h,) = self._check(input, (("hx", hx),))
        x, (h,), (w_ih, b_ih, w_hh, b_hh) = _cell_args(self, x, [h])
        hid = self.hidden_size
        xw_rz, xw_n = F.linear(x, w_ih, b_ih).split((2 * hid, hid), 1)
        out = gru_step(xw_rz, xw_n, h, w_hh, b_hh, hid)
        return out if batched else out.squeeze(0)
