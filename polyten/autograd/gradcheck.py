"""``gradcheck`` / ``gradgradcheck``: analytical gradients against finite differences.

Both run through the tensors' own backend (so the conformance suite checks gradients on every
backend).  Use float64 inputs: the central differences have an error of about ``eps**2``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..api.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Analytical and numerical gradients differ (the message shows where and by how much)."""


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    return [o for o in _tuple(fn(*inputs)) if isinstance(o, Tensor) and o._dtype.kind in "fc"]


def _numerical(fn, inputs, i, eps):
    """Jacobian columns of every output w.r.t. input ``i``: list over inputs' elements of lists
    over outputs of flattened central differences."""
    import polyten as pt
    x = inputs[i]
    with pt.no_grad():
        base = x.detach().clone()
        flat = base.reshape(-1)
    # the perturbed input is a leaf like the original, so fn may itself differentiate
    probe = base.detach().requires_grad_(x.requires_grad)
    args = _replace(inputs, i, probe)
    cols = []
    for k in range(flat.numel()):
        with pt.no_grad():
            orig = flat[k].item()
            flat[k] = orig + eps
        plus = [o.detach().reshape(-1).clone() for o in _outputs(fn, args)]
        with pt.no_grad():
            flat[k] = orig - eps
        minus = [o.detach().reshape(-1).clone() for o in _outputs(fn, args)]
        with pt.no_grad():
            flat[k] = orig
        cols.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
    return cols


def _replace(inputs, i, value):
    return tuple(value if j == i else v for j, v in enumerate(inputs))


def _analytical(fn, inputs, i):
    import polyten as pt
    from .functions import grad
    outs = _outputs(fn, inputs)
    rows = []  # rows[o][j] = gradient of output element j of output o w.r.t. inputs[i]
    for o in outs:
        per = []
        n = o.numel()
        for j in range(n):
            onehot = pt.zeros(n, dtype=o.dtype, device=o.device)
            onehot[j] = 1.0
            if not o.requires_grad:
                per.append(pt.zeros_like(inputs[i]).reshape(-1))
                continue
            (g,) = grad([o], [inputs[i]], [onehot.reshape(o.shape)], retain_graph=True,
                        allow_unused=True, materialize_grads=True)
            per.append(g.reshape(-1))
        rows.append(per)
    return rows


def gradcheck(fn: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Check ``fn``'s gradients w.r.t. ``inputs`` that require grad against central differences.

    Parameters
    ----------
    fn : callable
        Takes the inputs, returns a tensor or a tuple of tensors.
    inputs : tensor or tuple
        Floating inputs (float64 recommended); those with ``requires_grad=True`` are checked.

    Returns ``True``, or raises :class:`GradcheckError` naming the input, the output element and
    both values (``raise_exception=False`` returns ``False`` instead).
    """
    inputs = _tuple(inputs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        if x._dtype.name != "float64":
            import warnings
            warnings.warn(f"gradcheck: input {i} is {x._dtype.name}; use float64 for a "
                          f"reliable check", stacklevel=2)
        numeric = _numerical(fn, inputs, i, eps)
        analytic = _analytical(fn, inputs, i)
        for o, per in enumerate(analytic):
            for j, row in enumerate(per):
                for k in range(row.numel()):
                    a = row[k].item()
                    nmr = numeric[k][o][j].item()
                    if abs(a - nmr) > atol + rtol * abs(nmr):
                        msg = (f"gradcheck: Jacobian mismatch for output {o} element {j} with "
                               f"respect to input {i} element {k}: analytical {a!r}, "
                               f"numerical {nmr!r} (atol={atol}, rtol={rtol})")
                        if raise_exception:
                            raise GradcheckError(msg)
                        return False
    return True


def gradgradcheck(fn: Callable, inputs, grad_outputs: Sequence = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of the function ``inputs -> vjp(fn, grad_outputs)``.

    ``grad_outputs`` default to fixed pseudo-random tensors (reproducible) that also require
    grad, so the check covers the backward's dependence on the incoming gradient too.
    """
    import polyten as pt
    from .functions import grad
    inputs = _tuple(inputs)
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        gen = []
        for k, o in enumerate(outs):
            vals = [((j * 7919 + k * 104729) % 97) / 97.0 - 0.5 for j in range(o.numel())]
            gen.append(pt.tensor(vals, dtype=o.dtype, device=o.device).reshape(o.shape)
                       .requires_grad_())
        grad_outputs = gen
    grad_outputs = tuple(grad_outputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    n_in = len(inputs)

    def first_derivative(*args):
        xs, gos = args[:n_in], args[n_in:]
        ys = _outputs(fn, xs)
        used = [(y, g) for y, g in zip(ys, gos) if y.requires_grad]
        gs = grad([y for y, _ in used], [xs[i] for i in diff_idx], [g for _, g in used],
                  create_graph=True, allow_unused=True, materialize_grads=True)
        return tuple(gs)

    return gradcheck(first_derivative, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
