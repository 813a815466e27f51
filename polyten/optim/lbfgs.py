"""``LBFGS`` (``torch.optim.LBFGS``): limited-memory BFGS with an optional strong-Wolfe line
search, taking the same decisions as PyTorch's so that the iterates are the same."""

from __future__ import annotations

import math
from typing import Optional

from ..api._core import Tensor, describe
from ..autograd.grad_mode import enable_grad, no_grad
from .optimizer import Optimizer, _is_number

__all__ = ["LBFGS"]


def _sqrt(x):
    return x.sqrt() if isinstance(x, Tensor) else math.sqrt(x)


def _cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through ``(x1, f1)`` and ``(x2, f2)`` with slopes ``g1``
    and ``g2``, clamped to ``bounds`` (default: between the two points); the middle of the
    bounds when the cubic has no real minimizer (Nocedal & Wright, eq. 3.59)."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if not disc >= 0:  # no real critical point (or NaN): bisect the interval
        return (lo + hi) / 2.0
    d2 = _sqrt(disc)
    # written from the point farther along the line, which keeps the formula stable
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


class _Point:
    """One evaluation of the line search: step ``t``, loss ``f``, flat gradient ``g`` and the
    directional derivative ``gtd = g . d``."""

    __slots__ = ("t", "f", "g", "gtd")

    def __init__(self, t, f, g, gtd):
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Find a step ``t`` along ``d`` satisfying the strong Wolfe conditions (sufficient
    decrease ``f(t) <= f + c1 t gtd`` and curvature ``|g(t).d| <= -c2 gtd``): first widen
    the step until an interval brackets such a point, then shrink the bracket by cubic
    interpolation ("zoom"; Nocedal & Wright, algorithms 3.5 and 3.6, as in minFunc).  At
    most ``max_ls`` evaluations after the first.  Returns ``(f, g, t, evaluations)``."""
    d_norm = d.abs().max()
    start = _Point(0, f, g.clone(), gtd)
    f_new, g_new = evaluate(t, d)
    evals = 1
    new = _Point(t, f_new, g_new, g_new.dot(d))

    def armijo_fails(p):
        return p.f > f + c1 * p.t * gtd

    def curvature_holds(p):
        return abs(p.gtd) <= -c2 * gtd

    prev = start
    bracket = None
    found = False
    it = 0
    while it < max_ls:
        if armijo_fails(new) or (it > 1 and new.f >= prev.f):
            bracket = [prev, _Point(new.t, new.f, new.g.clone(), new.gtd)]
            break
        if curvature_holds(new):
            bracket = [new]
            found = True
            break
        if new.gtd >= 0:  # the slope turned: the minimum lies between prev and new
            bracket = [prev, _Point(new.t, new.f, new.g.clone(), new.gtd)]
            break
        # extrapolate: a cubic step, at least 1% and at most 10x beyond the current one
        t_next = _cubic_minimizer(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                                  bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
        prev = _Point(new.t, new.f, new.g.clone(), new.gtd)
        f_new, g_new = evaluate(t_next, d)
        evals += 1
        new = _Point(t_next, f_new, g_new, g_new.dot(d))
        it += 1
    if it == max_ls:  # out of evaluations: choose between the start and the last point
        bracket = [_Point(0, f, start.g, None), _Point(new.t, new.f, new.g, None)]

    lo, hi = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    stalled = False
    while not found and it < max_ls:
        a, b = bracket[0].t, bracket[1].t
        if abs(b - a) * d_norm < tolerance_change:
            break
        t = _cubic_minimizer(a, bracket[0].f, bracket[0].gtd, b, bracket[1].f, bracket[1].gtd)
        # keep the trial away from the ends of the bracket: after a second trial in a row
        # within 10% of an end (or one outside), move it to 10% inside the nearer end
        top, bottom = max(a, b), min(a, b)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:
            if stalled or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t, d)
        evals += 1
        new = _Point(t, f_new, g_new.clone(), g_new.dot(d))
        it += 1
        if armijo_fails(new) or new.f >= bracket[lo].f:
            bracket[hi] = new  # not lower than the best point: it closes the bracket
            lo, hi = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if curvature_holds(new):
                found = True
            elif new.gtd * (bracket[hi].t - bracket[lo].t) >= 0:
                bracket[hi] = bracket[lo]  # the old best point becomes the far end
            bracket[lo] = new
    best = bracket[lo]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    """Limited-memory BFGS (``torch.optim.LBFGS``), after minFunc.

    Each :meth:`step` runs up to ``max_iter`` iterations on the closure's loss.  The search
    direction is ``-H g``, ``H`` the inverse Hessian approximated from the last
    ``history_size`` pairs ``(s, y)`` (parameter and gradient changes, kept when
    ``y . s > 1e-10``) by the two-loop recursion, scaled by ``H_diag = y.s / y.y``.  The very
    first step has length ``min(1, 1 / |g|_1) * lr`` along ``-g``; later steps ``lr``, or the
    step found by a strong-Wolfe line search (``line_search_fn="strong_wolfe"``, cubic
    interpolation and zoom).  A step stops early when ``max |g| <= tolerance_grad``, when the
    directional derivative is above ``-tolerance_change``, when the parameter or loss change
    drops to ``tolerance_change``, or after ``max_eval`` closure evaluations.  The state
    (direction, step, history, evaluation counts) carries over to the next ``step``.

    Parameters
    ----------
    params : iterable of tensors
        Parameters to optimize: a single parameter group (per-group options are not
        supported).
    lr : float, default 1
    max_iter : int, default 20
        Iterations per :meth:`step`.
    max_eval : int, optional
        Closure evaluations per :meth:`step` (default ``max_iter * 5 // 4``).
    tolerance_grad : float, default 1e-7
        Stop when the largest absolute gradient entry is at most this.
    tolerance_change : float, default 1e-9
        Stop when the loss or the parameters change by less than this.
    history_size : int, default 100
        Number of ``(s, y)`` pairs kept.
    line_search_fn : None or "strong_wolfe", default None

    Notes
    -----
    All parameters are flattened into one vector, so they should live on one device.  The
    state is kept under the first parameter, as PyTorch's.  As PyTorch, the step reads
    scalars on the host (the loss, the termination tests, the line search's comparisons).

    Examples
    --------
    >>> opt = polyten.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = loss_fn(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> opt.step(closure)
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20,
                 max_eval: Optional[int] = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None):
        if max_eval is None and _is_number(max_iter):
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)

    def add_param_group(self, param_group) -> None:
        """LBFGS optimizes one group only; adding a second raises ``ValueError``."""
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): "
                             "it optimizes all parameters as one vector; pass a single list "
                             "of parameters")
        super().add_param_group(param_group)

    def _check_group(self, group, index):
        super()._check_group(group, index)
        for key, minimum in (("max_iter", 1), ("max_eval", 1), ("history_size", 1)):
            v = group[key]
            if not (isinstance(v, int) and not isinstance(v, bool)):
                raise TypeError(f"LBFGS: {key} must be an int, got {describe(v)}")
            if v < minimum:
                raise ValueError(f"LBFGS: invalid {key}={v}; it must be >= {minimum}")
        self._check_number(group, index, "tolerance_grad", "gradient tolerance")
        self._check_number(group, index, "tolerance_change", "change tolerance")
        self._check_line_search(group["line_search_fn"], "LBFGS")

    @staticmethod
    def _check_line_search(fn, where):
        if fn is not None and fn != "strong_wolfe":
            raise ValueError(f"{where}: line_search_fn must be None or 'strong_wolfe' (the "
                             f"only line search offered), got {fn!r}")

    @property
    def _params(self):
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        """All gradients as one new vector (zeros for parameters without a gradient)."""
        from ..api.creation import zeros
        from ..api.shape import cat
        parts = []
        for p in self._params:
            g = None if p._ag is None else p._ag.grad
            if g is None:
                parts.append(zeros(p.numel(), dtype=p.dtype, device=p.device))
            else:
                if tuple(g.shape) != tuple(p.shape):
                    raise RuntimeError(f"LBFGS.step: a parameter of shape {tuple(p.shape)} "
                                       f"has a gradient of shape {tuple(g.shape)}")
                parts.append(g.reshape(-1))
        return cat(parts)  # always a copy: a closure zeroing grads in place can't change it

    def _move(self, t, d: Tensor) -> None:
        """``params += t * d`` (``d`` flat, ``t`` a number or a 0-d tensor)."""
        at = 0
        for p in self._params:
            n = p.numel()
            p.add_(d[at:at + n].reshape(p.shape) * t)
            at += n

    @staticmethod
    def _loss(closure) -> Tensor:
        with enable_grad():
            return closure()

    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations (see the class docstring).

        Parameters
        ----------
        closure : callable
            Required: clears the gradients, computes the loss, calls ``backward()`` on it and
            returns it (it runs with gradients enabled).

        Returns
        -------
        The closure's loss at the parameters the step started from.
        """
        if closure is None or not callable(closure):
            raise TypeError(f"LBFGS.step: a closure is required (got {describe(closure)}): "
                            "L-BFGS re-evaluates the loss several times per step; pass a "
                            "function that zeroes the gradients, computes the loss, calls "
                            "loss.backward() and returns the loss")
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS.step: expected exactly one parameter group, got "
                             f"{len(self.param_groups)}")
        group = self.param_groups[0]
        self._check_line_search(group["line_search_fn"], "LBFGS.step")
        with no_grad():
            return self._run(closure, group)

    def _run(self, closure, group):
        lr = group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        line_search = group["line_search_fn"]
        history_size = group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._loss(closure)
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= tol_grad:  # already optimal
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n = 0
        while n < max_iter:
            n += 1
            state["n_iter"] += 1
            first = state["n_iter"] == 1
            if first:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:  # curvature condition: keep the pair
                    if len(old_dirs) >= history_size:
                        del old_dirs[:len(old_dirs) - history_size + 1]
                        del old_stps[:len(old_stps) - history_size + 1]
                        del ro[:len(ro) - history_size + 1]
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                d = self._two_loop(state, flat_grad, old_dirs, old_stps, ro, H_diag,
                                   history_size)
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone()
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            t = (min(1.0, 1.0 / flat_grad.abs().sum()) * lr) if first else lr
            gtd = flat_grad.dot(d)
            if gtd > -tol_change:  # not a descent direction (to tolerance)
                break

            ls_evals = 0
            opt_cond = False
            if line_search is not None:
                x0 = [p.clone() for p in self._params]

                def evaluate(step, direction):
                    self._move(step, direction)
                    f = float(self._loss(closure))
                    g = self._flat_grad()
                    for p, x in zip(self._params, x0):
                        p.copy_(x)
                    return f, g

                loss, flat_grad, t, ls_evals = _strong_wolfe(
                    evaluate, t, d, loss, flat_grad, gtd, max_ls=max_eval - evals)
                self._move(t, d)
                opt_cond = flat_grad.abs().max() <= tol_grad
            else:
                self._move(t, d)
                if n != max_iter:  # the last iteration's loss would go unused
                    loss = float(self._loss(closure))
                    flat_grad = self._flat_grad()
                    opt_cond = flat_grad.abs().max() <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if n == max_iter or evals >= max_eval or opt_cond:
                break
            if (d * t).abs().max() <= tol_change:  # the parameters stopped moving
                break
            if abs(loss - prev_loss) < tol_change:  # the loss stopped moving
                break

        state["d"], state["t"] = d, t
        state["old_dirs"], state["old_stps"], state["ro"] = old_dirs, old_stps, ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"], state["prev_loss"] = prev_flat_grad, prev_loss
        return orig_loss

    @staticmethod
    def _two_loop(state, flat_grad, old_dirs, old_stps, ro, H_diag, history_size):
        """``-H g`` by the L-BFGS two-loop recursion (Nocedal & Wright, algorithm 7.4).  The
        coefficients stay 0-d tensors (no host reads)."""
        k = len(old_dirs)
        al = state.get("al")
        if al is None or len(al) < max(history_size, k):
            al = state["al"] = [None] * max(history_size, k)
        q = -flat_grad
        for i in range(k - 1, -1, -1):
            al[i] = old_stps[i].dot(q) * ro[i]
            q.sub_(old_dirs[i] * al[i])
        r = q * H_diag
        for i in range(k):
            beta = old_dirs[i].dot(r) * ro[i]
            r.add_(old_stps[i] * (al[i] - beta))
        return r

    def _state_shape(self, p: Tensor, key):
        return None  # flat vectors of all parameters and 0-d scalars, not ``p``'s shape
