"""The recurrences behind ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells (private).

One layer and direction runs over all time steps at once, from ``xw``, the input projections
of every step (``x @ W_ih^T`` plus the biases that fold into it, computed by the caller in one
matmul).  Two implementations give the same values:

* the *step functions* (``lstm_step``, ...), plain polyten ops: every op is recorded, so any
  order of derivatives works.  The cells use them directly.
* ``run_layer``: a :class:`~polyten.autograd.Function` per layer and direction whose forward
  runs the loop without recording and whose backward is hand-written backpropagation through
  time, also in polyten ops (so it runs on every backend): one graph node instead of about a
  dozen per step, and the hidden-to-hidden weight gradient as one matmul over all steps.
  When the backward itself is being recorded (``create_graph=True``), it recomputes the layer
  with the step functions and differentiates that graph, so higher derivatives stay exact.
"""

from __future__ import annotations

from ...api import elementwise as _ew
from ...api.linalg import matmul
from ...api.shape import cat, stack, unbind
from ...autograd.function import Function
from ...autograd.grad_mode import enable_grad, is_grad_enabled
from ._misc import linear

_sigmoid = _ew.sigmoid
_tanh = _ew.tanh


# ---------------------------------------------------------------- step functions (graph) ---
# ``xw`` is the input's projection for this step, ``h``/``c`` the previous state.
def tanh_step(xw, h, w_hh, b_hh):
    """One Elman step with tanh: the new hidden state."""
    return _tanh(xw + linear(h, w_hh, b_hh))


def relu_step(xw, h, w_hh, b_hh):
    """One Elman step with ReLU: the new hidden state."""
    return _ew.relu(xw + linear(h, w_hh, b_hh))


def lstm_step(xw, h, c, w_hh, b_hh, w_hr, hidden):
    """One LSTM step (gate order input, forget, cell, output): ``(h, c)``."""
    gates = xw + linear(h, w_hh, b_hh)
    i, f, g, o = gates.split(hidden, 1)
    c = _sigmoid(f) * c + _sigmoid(i) * _tanh(g)
    h = _sigmoid(o) * _tanh(c)
    if w_hr is not None:
        h = linear(h, w_hr)
    return h, c


def gru_step(xw_rz, xw_n, h, w_hh, b_hh, hidden):
    """One GRU step (gate order reset, update, new): the new hidden state."""
    hh = linear(h, w_hh, b_hh)
    hh_rz, hh_n = hh.split((2 * hidden, hidden), 1)
    r, z = _sigmoid(xw_rz + hh_rz).split(hidden, 1)
    # the reset gate multiplies (W_hn h + b_hn), not h (PyTorch's and cuDNN's definition)
    n = _tanh(xw_n + r * hh_n)
    return n + z * (h - n)  # (1 - z) * n + z * h


def _graph_layer(mode, xw, h0, c0, w_hh, b_hh, w_hr, hidden, reverse):
    """The layer with the step functions: ``(ys, h_n, c_n)`` (``c_n`` None but for LSTM)."""
    steps = xw.shape[0]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    ys = [None] * steps
    h, c = h0, c0
    if mode == "GRU":
        xs_rz = unbind(xw[..., :2 * hidden], 0)
        xs_n = unbind(xw[..., 2 * hidden:], 0)
        for t in order:
            h = gru_step(xs_rz[t], xs_n[t], h, w_hh, b_hh, hidden)
            ys[t] = h
    else:
        xs = unbind(xw, 0)
        for t in order:
            if mode == "LSTM":
                h, c = lstm_step(xs[t], h, c, w_hh, b_hh, w_hr, hidden)
            elif mode == "RNN_TANH":
                h = tanh_step(xs[t], h, w_hh, b_hh)
            else:
                h = relu_step(xs[t], h, w_hh, b_hh)
            ys[t] = h
    return stack(ys, 0), h, c


# ------------------------------------------------------------------- fused recurrence -----
def _weight_grad(g, x):
    """``sum_t g_t^T @ x_t`` over all steps as one matmul (``g`` (L, N, G), ``x`` (L, N, K))."""
    return matmul(g.reshape(-1, g.shape[-1]).mT, x.reshape(-1, x.shape[-1]))


class _Layer(Function):
    """``(ys, h_n[, c_n]) = layer(xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse,
    keep)``; ``keep``: save what the backward needs (only when a graph is being recorded)."""

    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse, keep):
        ctx.args = (xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse)
        steps = xw.shape[0]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        xs = unbind(xw, 0)
        ys = [None] * steps
        saved = [None] * steps  # per time step: what the backward needs
        h, c = h0, c0
        h2 = 2 * hidden
        # h @ W^T with W^T made contiguous once: BLAS is up to 2x slower on the transposed
        # view for the few rows of a time step
        w_t = w_hh.mT.contiguous()
        wr_t = None if w_hr is None else w_hr.mT.contiguous()
        if mode == "LSTM":
            for t in order:
                gates = xs[t] + matmul(h, w_t)
                a = _sigmoid(gates)
                g = _tanh(gates[:, h2:h2 + hidden])
                i, f, o = a[:, :hidden], a[:, hidden:h2], a[:, h2 + hidden:]
                c_prev = c
                c = f * c_prev + i * g
                tc = _tanh(c)
                m = o * tc
                h = m if wr_t is None else matmul(m, wr_t)
                ys[t] = h
                if keep:
                    # d gate / d pre-activation, times the value each gate multiplies
                    da = a - a * a
                    da[:, h2:h2 + hidden] = 1.0 - g * g
                    z = cat([g, c_prev, i, tc], 1) * da
                    # m is kept only with a projection: else it is the output h itself, and
                    # saving an output would tie the node to itself in a reference cycle
                    saved[t] = (z, f, o - m * tc, None if w_hr is None else m)
        elif mode == "GRU":
            for t in order:
                x_t = xs[t]
                hh = matmul(h, w_t) if b_hh is None else matmul(h, w_t) + b_hh
                rz = _sigmoid(x_t[:, :h2] + hh[:, :h2])
                r, z = rz[:, :hidden], rz[:, hidden:]
                hn = hh[:, h2:]
                n = _tanh(x_t[:, h2:] + r * hn)
                diff = h - n
                h = n + z * diff
                ys[t] = h
                if keep:
                    saved[t] = (rz - rz * rz, z, diff, (1.0 - z) * (1.0 - n * n), hn, r)
        else:
            act = _tanh if mode == "RNN_TANH" else _ew.relu
            for t in order:
                h = act(xs[t] + matmul(h, w_t))
                ys[t] = h
                if keep:
                    saved[t] = 1.0 - h * h if mode == "RNN_TANH" else (h > 0).to(h.dtype)
        out = stack(ys, 0)
        ctx.saved = saved
        ctx.ys = out.detach() if keep else None  # the previous states, for weight gradients
        # no None output for the cell state of RNN/GRU: every output of a node gets a gradient
        return (out, h, c) if mode == "LSTM" else (out, h)

    @staticmethod
    def backward(ctx, gys, gh, gc=None):
        xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse = ctx.args
        if is_grad_enabled():  # create_graph=True: differentiate a recorded recomputation
            return _Layer._recorded_backward(ctx, gys, gh, gc)
        needs = ctx.needs_input_grad
        steps = xw.shape[0]
        saved = ctx.saved
        gy = unbind(gys, 0)
        dxw = [None] * steps  # gradient of the pre-activations = of xw, per step
        dhh = [None] * steps  # GRU: gradient of W_hh h + b_hh (differs from dxw)
        proj = []  # LSTM with projection: (dh, m) per step
        dh, dc = gh, gc
        for t in (range(steps) if reverse else range(steps - 1, -1, -1)):
            dh = dh + gy[t]
            if mode == "LSTM":
                z, f, o_dtanh, m = saved[t]
                dm = dh
                if w_hr is not None:
                    proj.append((dh, m))
                    dm = matmul(dh, w_hr)
                dc = dc + dm * o_dtanh
                dg = cat([dc, dc, dc, dm], 1) * z
                dc = dc * f
                dh = matmul(dg, w_hh)
                dxw[t] = dg
            elif mode == "GRU":
                drz_fac, zg, diff, dn_fac, hn, r = saved[t]
                dpre_n = dh * dn_fac  # through n = tanh(x_n + r * hn)
                dpre_rz = cat([dpre_n * hn, dh * diff], 1) * drz_fac
                dg = cat([dpre_rz, dpre_n * r], 1)
                dh = dh * zg + matmul(dg, w_hh)
                dxw[t] = cat([dpre_rz, dpre_n], 1)
                dhh[t] = dg
            else:
                dg = dh * saved[t]
                dh = matmul(dg, w_hh)
                dxw[t] = dg
        g_xw = stack(dxw, 0)
        g_hh = stack(dhh, 0) if mode == "GRU" else g_xw
        g_whh = g_bhh = g_whr = None
        if needs[3]:
            ys, h0u = ctx.ys, h0.unsqueeze(0)
            prev = cat([ys[1:], h0u], 0) if reverse else cat([h0u, ys[:-1]], 0)
            g_whh = _weight_grad(g_hh, prev)
        if b_hh is not None and needs[4]:
            g_bhh = g_hh.sum((0, 1))
        if w_hr is not None and needs[5]:
            g_whr = _weight_grad(stack([p[0] for p in proj], 0), stack([p[1] for p in proj], 0))
        return (g_xw if needs[0] else None, dh if needs[1] else None,
                dc if (mode == "LSTM" and needs[2]) else None, g_whh, g_bhh, g_whr,
                None, None, None, None)

    @staticmethod
    def _recorded_backward(ctx, gys, gh, gc):
        from ...autograd.functions import grad
        xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse = ctx.args
        needs = ctx.needs_input_grad
        with enable_grad():
            ys, h, c = _graph_layer(mode, xw, h0, c0, w_hh, b_hh, w_hr, hidden, reverse)
        outs, grads = [ys, h], [gys, gh]
        if mode == "LSTM":
            outs.append(c)
            grads.append(gc)
        wanted = [i for i in range(6) if needs[i]]
        res = grad(outs, [ctx.args[i] for i in wanted], grads, create_graph=True,
                   allow_unused=True, materialize_grads=True)
        out = [None] * 10
        for i, g in zip(wanted, res):
            out[i] = g
        return tuple(out)


def run_layer(mode, xw, h0, c0, w_hh, b_hh, w_hr, hidden, reverse):
    """One layer and direction over all steps: ``(ys, h_n, c_n)`` (``c_n`` None but for
    LSTM); ``xw`` (L, N, G * H).

    For LSTM and the Elman RNN ``b_hh`` must already be folded into ``xw`` (pass None);
    GRU needs it separately (the reset gate multiplies ``W_hn h + b_hn``).
    """
    keep = is_grad_enabled() and any(t is not None and t.requires_grad
                                     for t in (xw, h0, c0, w_hh, b_hh, w_hr))
    out = _Layer.apply(xw, h0, c0, w_hh, b_hh, w_hr, mode, hidden, reverse, keep)
    return out if mode == "LSTM" else (out[0], out[1], None)
