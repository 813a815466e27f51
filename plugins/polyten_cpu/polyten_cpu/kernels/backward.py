"""Fused backward kernels of the hottest primitive ops (``Backend.backward_kernels``).

The derivative rules of ``polyten.autograd.derivatives`` are written in polyten ops, so they
run on every backend and can themselves be differentiated.  When no graph of the backward is
needed (``create_graph=False``, every ordinary ``loss.backward()``) the engine calls these
instead: the same formulas on native arrays, without a dispatch, a wrap and a recorded check
per intermediate (a training step's backward is dozens of small ops, each of which would
otherwise cost more in Python than in NumPy).

Contract (see ``polyten.dispatch.Backend``): ``kernel(grads, inputs, outputs, params)`` with
native arrays; ``params`` holds the op's recorded parameters plus ``needs`` (which inputs
want a gradient) and ``shapes`` (each input's (shape, dtype), ``None`` for non-tensors).  A
kernel returns one gradient per input (``None`` where none is needed) -- possibly of the
broadcast output's shape: the engine reduces and casts as it does for the formulas -- or
``NotImplemented`` for a case it leaves to the formulas (batched matmul, a tensor exponent).
Complex gradients never reach these kernels (the engine keeps PyTorch's conjugate convention
in one place, the formulas).
"""

from __future__ import annotations

from ._util import low_precision, upcast_products

_SCALARS = (int, float)


def kernels(xp, **ctx) -> dict:
    return {}  # this module only adds backward kernels


def backward_kernels(xp, **ctx) -> dict:
    nd = xp.ndarray
    asarray = xp.asarray
    broadcast_to = xp.broadcast_to
    greater = xp.greater
    products, f32 = upcast_products(xp), xp.dtype("float32")

    def arr(r):
        return r if r.__class__ is nd else asarray(r)

    host = xp.__name__ == "numpy"

    # --- elementwise: inputs may be Python scalars (they get no gradient) ----------------
    def add(grads, inputs, outputs, params):
        g = grads[0]
        return (g, g)

    def sub(grads, inputs, outputs, params):
        g = grads[0]
        return (g, arr(-g) if params["needs"][1] else None)

    def mul(grads, inputs, outputs, params):
        g = grads[0]
        x, y = inputs
        needs = params["needs"]
        return (arr(g * y) if needs[0] else None, arr(g * x) if needs[1] else None)

    def div(grads, inputs, outputs, params):
        g = grads[0]
        x, y = inputs
        needs = params["needs"]
        gx = arr(g / y) if needs[0] else None
        gy = arr(-g * outputs[0] / y) if needs[1] else None
        return (gx, gy)

    def neg(grads, inputs, outputs, params):
        return (arr(-grads[0]),)

    def pow_(grads, inputs, outputs, params):
        x, y = inputs
        if y.__class__ not in _SCALARS:
            return NotImplemented  # tensor exponent: d/dy needs the log, left to the formula
        g = grads[0]
        if y == 2:
            return (arr(g * (2 * x)), None)
        if y == 1:
            return (g, None)
        if y == 0:  # x ** 0 is constant: 0, never 0 * 0 ** -1 (as PyTorch)
            return (xp.zeros_like(g), None)
        return (arr(g * y * x ** (y - 1)), None)

    def exp(grads, inputs, outputs, params):
        return (arr(grads[0] * outputs[0]),)

    def log(grads, inputs, outputs, params):
        return (arr(grads[0] / inputs[0]),)

    def sqrt(grads, inputs, outputs, params):
        return (arr(grads[0] / (2 * outputs[0])),)

    def tanh(grads, inputs, outputs, params):
        y = outputs[0]
        return (arr(grads[0] * (1 - y * y)),)

    def sigmoid(grads, inputs, outputs, params):
        y = outputs[0]
        return (arr(grads[0] * y * (1 - y)),)

    def relu(grads, inputs, outputs, params):
        g = grads[0]
        keep = greater(inputs[0], 0)
        bits = _BITS.get(g.dtype.itemsize) if g.__class__ is nd else None
        if bits is None:
            return (arr(xp.where(keep, g, xp.zeros((), g.dtype))),)
        # where(x > 0, g, 0) as g AND an all-ones / all-zeros integer mask: exact (an inf or
        # NaN gradient at x <= 0 gives 0, as PyTorch's threshold_backward), and 1.4x a mask
        # multiply's time where NumPy's where on a random mask takes about 10x
        m = keep.astype(bits)
        xp.negative(m, out=m)
        xp.bitwise_and(m, g.view(bits), out=m)
        return (m.view(g.dtype),)

    _BITS = {2: xp.int16, 4: xp.int32, 8: xp.int64}

    # --- reductions: broadcast the reduced gradient back ---------------------------------
    def _expand_back(g, shape, dims, keepdim):
        if g.shape == shape:
            return g  # nothing reduced (0-d input, or a dim of size 1): no read-only view
        if dims is None:
            g = g.reshape((1,) * len(shape))
        elif not keepdim:
            g = g.reshape(tuple(1 if i in dims else s for i, s in enumerate(shape)))
        return g if g.shape == shape else broadcast_to(g, shape)

    LOW, F32 = low_precision(xp), xp.dtype("float32")

    def mean_share(g, count):
        """``g / count`` in ``g``'s dtype, computed in float32 for float16 / bfloat16 (as
        torch): a count past 65504 is inf in float16, and the gradient was 0."""
        if g.dtype in LOW:
            return arr(g.astype(F32) / max(count, 1)).astype(g.dtype)
        return arr(g / max(count, 1))

    def sum_(grads, inputs, outputs, params):
        shape = params["shapes"][0][0]
        return (_expand_back(grads[0], shape, params["dims"], params["keepdim"]),)

    def mean(grads, inputs, outputs, params):
        shape = params["shapes"][0][0]
        dims = params["dims"]
        count = 1
        for d in (range(len(shape)) if dims is None else dims):
            count *= shape[d]
        g = mean_share(grads[0], count)
        if host and dims is None and count <= 4096:
            # the mean of a small loss: a filled array costs less than NumPy's broadcast_to
            # (not on other array modules: CuPy's full would read the 0-d g on the host)
            return (xp.full(shape, g, dtype=g.dtype),)
        return (_expand_back(g, shape, dims, params["keepdim"]),)

    # --- linear algebra and shape ----------------------------------------------------------
    def matmul(grads, inputs, outputs, params):
        x, y = inputs
        if x.ndim != 2 or y.ndim != 2:
            return NotImplemented  # vectors and batches: the formula's reshapes and sum_to
        g = grads[0]
        needs = params["needs"]
        dt = g.dtype
        if dt in products:  # accumulated in float32 (no half BLAS), rounded once
            g, x, y = g.astype(f32), x.astype(f32), y.astype(f32)
            return (arr(g @ y.T).astype(dt) if needs[0] else None,
                    arr(x.T @ g).astype(dt) if needs[1] else None)
        return (arr(g @ y.T) if needs[0] else None, arr(x.T @ g) if needs[1] else None)

    def reshape(grads, inputs, outputs, params):
        return (grads[0].reshape(params["shapes"][0][0]),)

    def permute(grads, inputs, outputs, params):
        dims = params["dims"]
        inv = [0] * len(dims)
        for i, d in enumerate(dims):
            inv[d] = i
        return (grads[0].transpose(inv),)

    def identity(grads, inputs, outputs, params):
        return (grads[0],)  # expand: the engine sums back to the input's shape

    return {"add": add, "sub": sub, "mul": mul, "div": div, "neg": neg, "pow": pow_,
            "exp": exp, "log": log, "sqrt": sqrt, "tanh": tanh, "sigmoid": sigmoid,
            "relu": relu, "sum": sum_, "mean": mean, "matmul": matmul, "reshape": reshape,
            "permute": permute, "expand": identity}
