"""``polyten.func``: composable function transforms (``torch.func``'s names).

:func:`grad`, :func:`grad_and_value`, :func:`vjp`, :func:`jvp`, :func:`jacrev`,
:func:`jacfwd`, :func:`hessian`, :func:`vmap`, :func:`functional_call` and
:func:`stack_module_state`.  Inputs and outputs may be nested tuples, lists and dicts of
tensors, and the transforms compose (``vmap(grad(f))`` for per-sample gradients,
``jacfwd(jacrev(f))`` for Hessians).

How they are built: on polyten's reverse-mode autograd, not on torch's functorch levels.  A
transform runs ``func`` with gradients recorded on fresh copies of the differentiated inputs
and backpropagates only through what it recorded: the backward stops at the tensors made
before (``run_backward(stop=)``), so an enclosing graph is neither run nor freed.  When the
inputs or tensors ``func`` closes over require grad in the enclosing computation (an outer
transform, or a model's parameters), the backward is itself recorded, so the results stay
differentiable there; otherwise the results are plain tensors.  Forward-mode products
(:func:`jvp`, :func:`jacfwd`) use the double-vjp identity ``J v = d/du <J^T u, v>``: one
recorded backward and one backward through it.  :func:`vmap` calls ``func`` once per batch
entry and stacks the results: correct for every polyten function, with the cost of a Python
loop (one call per entry), not of a batched kernel.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
           "hessian", "vmap", "stack_module_state"]


# ------------------------------------------------------------------------------ pytrees --
def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _tree_flatten(tree) -> Tuple[list, Any]:
    """``(leaves, spec)``: the non-container values of a nest of tuples, lists and dicts, in
    order (dicts in insertion order), and what :func:`_tree_unflatten` needs to rebuild it."""
    leaves: list = []
    return leaves, _flatten_into(tree, leaves)


def _flatten_into(tree, leaves):
    if isinstance(tree, (tuple, list)):
        return (type(tree), None, tuple(_flatten_into(x, leaves) for x in tree))
    if isinstance(tree, dict):
        return (type(tree), tuple(tree), tuple(_flatten_into(v, leaves) for v in tree.values()))
    leaves.append(tree)
    return None


def _tree_unflatten(leaves, spec):
    it = iter(leaves)
    return _build(spec, it)


def _build(spec, it):
    if spec is None:
        return next(it)
    kind, keys, children = spec
    values = [_build(c, it) for c in children]
    if keys is not None:
        return kind(zip(keys, values)) if kind is not dict else dict(zip(keys, values))
    if kind is tuple or kind is list:
        return kind(values)
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return kind(*values)
    return kind(values)


def _spec_leaves(spec) -> int:
    if spec is None:
        return 1
    return sum(_spec_leaves(c) for c in spec[2])


def _broadcast_prefix(prefix, spec, is_leaf_value, what: str) -> list:
    """One value per leaf of ``spec`` from ``prefix``, a tree whose structure is a prefix of
    ``spec``'s (a value that ``is_leaf_value`` accepts stands for a whole subtree)."""
    out: list = []

    def go(p, s):
        if is_leaf_value(p):
            out.extend([p] * _spec_leaves(s))
            return
        if s is None or not isinstance(p, (tuple, list, dict)):
            raise ValueError(what)
        kind, keys, children = s
        if isinstance(p, dict):
            if keys is None or set(p) != set(keys):
                raise ValueError(what)
            for k, c in zip(keys, children):
                go(p[k], c)
            return
        if keys is not None or len(p) != len(children):
            raise ValueError(what)
        for x, c in zip(p, children):
            go(x, c)

    go(prefix, spec)
    return out


# --------------------------------------------------------------------- the common core --
def _fname(func) -> str:
    return getattr(func, "__name__", type(func).__name__)


def _check_argnums(argnums, nargs: int, where: str):
    """``(list of normalised argnums, is_tuple)``, checked as torch.func."""
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"{where}: argnums must be int or Tuple[int, ...], got: "
                           f"{type(argnums)}")
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums:
        raise RuntimeError(f"{where}: argnums must be non-empty")
    out = []
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, int):
            raise RuntimeError(f"{where}: argnums must be int or Tuple[int, ...], got an "
                               f"element of {type(a)}")
        if not -nargs <= a < nargs:
            raise RuntimeError(f"{where}: got argnum={a}, but only {nargs} positional inputs; "
                               f"argnums index the positional arguments of the call")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{where}: argnums elements must be unique, got {argnums}")
    return out, isinstance(argnums, tuple)


class _Lin:
    """``func`` run once with gradients recorded on fresh copies of the differentiated
    inputs: what the pullbacks below need."""

    def __init__(self, func, args, kwargs, argnums, where):
        from .api.tensor import Tensor
        from .autograd import grad_mode, graph
        self.outer = grad_mode.is_grad_enabled()
        new_args = list(args)
        self.wrt: List = []
        self.specs = []
        self.tracked = False
        with grad_mode.enable_grad():
            for a in argnums:
                leaves, spec = _tree_flatten(args[a])
                fresh = []
                for t in leaves:
                    if not isinstance(t, Tensor):
                        raise ValueError(f"{where}: thing passed to transform API must be "
                                         f"Tensor, got {type(t)} (argument {a}); pass it "
                                         f"as a tensor or leave it out of argnums")
                    if not (t._dtype.is_floating_point or t._dtype.is_complex):
                        raise RuntimeError(f"{where}: only tensors of floating point dtype "
                                           f"can be differentiated, argument {a} is "
                                           f"{t._dtype.name}; cast it, e.g. x.float()")
                    if self.outer and t.requires_grad:
                        # tracked by an enclosing transform or graph: a recorded alias keeps
                        # the link, and the backward stops at it
                        f = t.view_as(t)
                        self.tracked = True
                    else:
                        f = t.detach().requires_grad_(True)
                    fresh.append(f)
                self.wrt.extend(fresh)
                self.specs.append((spec, len(fresh)))
                new_args[a] = _tree_unflatten(fresh, spec)
            self.start = next(graph._seq)
            self.out = func(*new_args, **kwargs)
        self._boundary = None

    def boundary(self, roots):
        """The edges where the backward of ``roots`` stops, and whether any of them lies
        outside this transform (then the results must stay differentiable)."""
        from .autograd.graph import _edge_of
        from .utils.checkpoint import _walk
        own = {_edge_of(w, w._ag) for w in self.wrt}
        b, _ = _walk(roots, self.start, False)
        outside = any(e not in own for e in b)
        return set(b) | own, outside

    def create_graph(self, roots) -> bool:
        if self._boundary is None:
            self._boundary = self.boundary(roots)
        return self.outer and (self.tracked or self._boundary[1])

    def per_arg(self, flat):
        """``flat`` (one value per fresh input) regrouped as the arguments' trees."""
        out, k = [], 0
        for spec, n in self.specs:
            out.append(_tree_unflatten(flat[k:k + n], spec))
            k += n
        return out


def _pullback(roots, cotangents, wrt, create_graph: bool, retain: bool, start: int):
    """``sum_i cotangent_i^T d root_i / d w`` for each ``w`` in ``wrt`` (zeros where unused),
    backpropagating only the graph recorded since ``start``."""
    from .api.creation import zeros_like
    from .autograd.engine import run_backward
    from .autograd.graph import _edge_of
    from .utils.checkpoint import _walk
    pairs = [(r, c) for r, c in zip(roots, cotangents)
             if c is not None and r._ag is not None and r._ag.requires_grad]
    if not pairs:
        return [zeros_like(w).detach() for w in wrt]
    rs = [r for r, _ in pairs]
    boundary, _ = _walk(rs, start, False)
    capture = {}
    for k, w in enumerate(wrt):
        capture.setdefault(_edge_of(w, w._ag), k)
    stop = {e[0] for e in boundary} | {e[0] for e in capture}
    got = run_backward(rs, [c for _, c in pairs], retain, create_graph, capture=capture,
                       accumulate=False, stop=stop)
    out = []
    for k, w in enumerate(wrt):
        g = got.get(k)
        if g is None:
            g = zeros_like(w).detach()
        elif not create_graph:
            g = g.detach()
        out.append(g)
    return out


def _check_cotangent(c, o, where):
    from .api.tensor import Tensor
    if not isinstance(c, Tensor):
        raise TypeError(f"{where}: expected a tensor cotangent for an output of shape "
                        f"{list(o.shape)}, got {type(c).__name__}")
    if tuple(c.shape) != tuple(o.shape):
        raise RuntimeError(f"{where}: mismatch in shape: a cotangent has shape "
                           f"{list(c.shape)} and its output has shape {list(o.shape)}; pass "
                           f"cotangents with the structure and shapes of the outputs")
    if c._device is not o._device:
        raise RuntimeError(f"{where}: a cotangent is on {c._device} but its output is on "
                           f"{o._device}")
    return c.to(o._dtype) if c._dtype is not o._dtype else c


def _plain(tree, keep: bool):
    """``tree`` with its tensors detached unless ``keep`` (results that depend on nothing
    outside a transform are plain tensors, as torch.func's)."""
    from .api.tensor import Tensor
    if keep:
        return tree
    leaves, spec = _tree_flatten(tree)
    return _tree_unflatten([t.detach() if isinstance(t, Tensor) else t for t in leaves], spec)


def _split_aux(out, has_aux, where):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{where}: output of function f should be a tuple: (output, aux) "
                           f"if has_aux is True")
    return out


# ------------------------------------------------------------------------ grad / vjp --
def grad_and_value(func: Callable, argnums: Union[int, Tuple[int, ...]] = 0,
                   has_aux: bool = False) -> Callable:
    """``func`` transformed to return ``(gradient, value)`` (``torch.func.grad_and_value``).

    Parameters
    ----------
    func : callable
        Returns a scalar (0-d) tensor, or ``(scalar, aux)`` with ``has_aux=True``.
    argnums : int or tuple of int
        The positional arguments to differentiate; each may be a tree (tuples, lists, dicts)
        of floating tensors.
    has_aux : bool
        ``func`` returns ``(output, aux)``; ``aux`` is returned as it is, not differentiated.

    Returns
    -------
    callable
        Taking ``func``'s arguments, returning ``(grad, value)`` or ``(grad, (value, aux))``;
        ``grad`` has the structure of ``args[argnums]`` (a tuple of those for a tuple
        ``argnums``), zeros where ``func`` does not depend on an input.
    """
    where = "grad_and_value(f)(*args)"

    def wrapper(*args, **kwargs):
        from .api.tensor import Tensor
        nums, is_tuple = _check_argnums(argnums, len(args), where)
        lin = _Lin(func, args, kwargs, nums, where)
        out, aux = _split_aux(lin.out, has_aux, where)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{where}: expected f(*args) to return a Tensor, got "
                               f"{type(out)}")
        if out.ndim != 0:
            raise RuntimeError(f"{where}: expected f(*args) to return a scalar Tensor, got "
                               f"tensor with {out.ndim} dims. Maybe you wanted to use the vjp "
                               f"or jacrev APIs instead?")
        from .api.creation import ones_like
        roots = [out] if out._ag is not None and out._ag.requires_grad else []
        create = lin.create_graph(roots) if roots else False
        # a recorded backward may refer to the forward's nodes (saved outputs): keep them
        flat = _pullback(roots, [ones_like(out)] if roots else [], lin.wrt, create, create,
                         lin.start)
        per = lin.per_arg(flat)
        g = tuple(per) if is_tuple else per[0]
        value = _plain(out, create)
        if has_aux:
            return g, (value, _plain(aux, create))
        return g, value

    return wrapper


def grad(func: Callable, argnums: Union[int, Tuple[int, ...]] = 0,
         has_aux: bool = False) -> Callable:
    """``func`` transformed to return its gradient (``torch.func.grad``).

    Parameters as :func:`grad_and_value`; the transformed function returns ``grad`` (or
    ``(grad, aux)`` with ``has_aux=True``).  It differentiates also inside ``no_grad`` (it is
    a transform), and composes: ``grad(grad(f))`` is the second derivative of a scalar
    function, ``vmap(grad(f))`` gives per-sample gradients.

    Examples
    --------
    >>> polyten.func.grad(lambda x: (x ** 3).sum())(polyten.tensor([1.0, 2.0]))
    tensor([ 3., 12.])
    """
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``, where ``vjp_fn(cotangents)`` returns the
    vector-Jacobian products, one per primal (``torch.func.vjp``).

    ``cotangents`` has the structure and shapes of ``func``'s output (a tree of tensors).
    ``vjp_fn`` may be called several times: the recorded graph is kept while it lives.  With
    ``has_aux=True``, ``func`` returns ``(output, aux)`` and ``vjp`` returns
    ``(output, vjp_fn, aux)``.
    """
    from .api.tensor import Tensor
    where = "vjp(f, *primals)"
    lin = _Lin(func, primals, {}, list(range(len(primals))), where)
    out, aux = _split_aux(lin.out, has_aux, where)
    leaves, spec = _tree_flatten(out)
    for o in leaves:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{where}: expected f(*primals) to return only tensors, got "
                               f"{type(o)}")
    roots = [o for o in leaves if o._ag is not None and o._ag.requires_grad]
    create = lin.create_graph(roots) if roots else False

    def vjp_fn(cotangents):
        cs, cspec = _tree_flatten(cotangents)
        if len(cs) != len(leaves) or (cspec != spec and len(leaves) > 1):
            raise RuntimeError(f"vjp_fn: expected cotangents with the structure of the "
                               f"output ({len(leaves)} tensors), got {len(cs)}")
        cs = [_check_cotangent(c, o, "vjp_fn") for c, o in zip(cs, leaves)]
        flat = _pullback(leaves, cs, lin.wrt, create, True, lin.start)
        return tuple(lin.per_arg(flat))

    res = _plain(out, create)
    if has_aux:
        return res, vjp_fn, _plain(aux, create)
    return res, vjp_fn


# ---------------------------------------------------------------------- forward mode --
def _dummies(outs):
    from .api.creation import zeros_like
    return [zeros_like(o).detach().requires_grad_(True) for o in outs]


def _is_diff(t) -> bool:
    return t._dtype.is_floating_point or t._dtype.is_complex


def jvp(func: Callable, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J tangents)``: the Jacobian-vector product (``torch.func.jvp``).

    Parameters
    ----------
    func : callable
        Returns a tree of tensors (or ``(output, aux)`` with ``has_aux=True``).
    primals : tuple
        The arguments, each a tree of floating tensors.
    tangents : tuple
        One tangent per primal, with its structure, shapes and device.
    strict : bool
        Accepted for torch's signature (torch raises NotImplementedError for True).
    has_aux : bool
        Return ``(output, jvp_out, aux)``.

    Notes
    -----
    Computed in reverse mode by the double-vjp identity ``J v = d/du <J^T u, v>``: a
    recorded backward with a dummy cotangent ``u``, then a backward of that, so it costs
    about three times a forward and backward (torch's forward mode costs about one).
    """
    from .api.tensor import Tensor
    where = "jvp(f, primals, tangents)"
    if strict:
        raise NotImplementedError(f"{where}: strict=True is not implemented (as in torch)")
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{where}: expected primals to be a tuple. E.g. it should be valid "
                           f"to call f(*primals).")
    if not isinstance(tangents, tuple) or len(tangents) != len(primals):
        raise RuntimeError(f"{where}: expected tangents to be a tuple with one tangent per "
                           f"primal ({len(primals)}), got "
                           f"{type(tangents).__name__}")
    p_leaves = _tree_flatten(primals)[0]
    t_leaves, t_spec = _tree_flatten(tangents)
    if len(t_leaves) != len(p_leaves) or t_spec != _tree_flatten(primals)[1]:
        raise RuntimeError(f"{where}: expected primals and tangents to have the same "
                           f"structure")
    for p, t in zip(p_leaves, t_leaves):
        if not isinstance(t, Tensor) or not isinstance(p, Tensor):
            raise ValueError(f"{where}: thing passed to transform API must be Tensor, got "
                             f"{type(t if isinstance(p, Tensor) else p)}")
        if tuple(t.shape) != tuple(p.shape):
            raise RuntimeError(f"{where}: a tangent of shape {list(t.shape)} was given for a "
                               f"primal of shape {list(p.shape)}; they must have the same "
                               f"shape")
    lin = _Lin(func, primals, {}, list(range(len(primals))), where)
    out, aux = _split_aux(lin.out, has_aux, where)
    leaves, spec = _tree_flatten(out)
    for o in leaves:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{where}: expected f(*primals) to return only tensors, got "
                               f"{type(o)}")
    jv, create = _forward_products(lin, leaves, [t_leaves])
    res = _plain(out, create)
    tangent_out = _tree_unflatten(jv[0], spec)
    if has_aux:
        return res, tangent_out, _plain(aux, create)
    return res, tangent_out


def _forward_products(lin, leaves, tangent_sets):
    """``J v`` for each ``v`` in ``tangent_sets`` (one tangent per fresh input): a list, per
    set, of one tensor per output leaf."""
    from .api.creation import zeros_like
    from .autograd import graph
    roots = [o for o in leaves if o._ag is not None and o._ag.requires_grad and _is_diff(o)]
    create = lin.create_graph(roots) if roots else False
    if not roots:
        zero = [zeros_like(o).detach() for o in leaves]
        return [list(zero) for _ in tangent_sets], create
    us = _dummies(roots)
    start = next(graph._seq)
    # J^T u, recorded: linear in u, so differentiating <J^T u, v> by u gives J v
    jtu = _pullback(roots, us, lin.wrt, True, True, lin.start)
    pairs = [k for k, g in enumerate(jtu) if g._ag is not None and g._ag.requires_grad]
    results = []
    for vs in tangent_sets:
        if pairs:
            vs = [v.to(lin.wrt[k]._dtype) if v._dtype is not lin.wrt[k]._dtype else v
                  for k, v in enumerate(vs)]
            per_root = _pullback([jtu[k] for k in pairs], [vs[k] for k in pairs], us, create,
                                 True, start)
        else:
            per_root = [zeros_like(u).detach() for u in us]
        it = iter(per_root)
        results.append([next(it) if (o._ag is not None and o._ag.requires_grad
                                     and _is_diff(o)) else zeros_like(o).detach()
                        for o in leaves])
    return results, create


# ------------------------------------------------------------------------- Jacobians --
def _check_chunk(chunk_size, where):
    if chunk_size is not None and (isinstance(chunk_size, bool) or
                                   not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"{where}: chunk_size should be None or greater than 0, got "
                         f"{chunk_size!r}")


def _check_randomness(randomness, where):
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"{where}: only allowed values for randomness are 'error', "
                           f"'different', or 'same'. Got {randomness!r}")


def _assemble(lin, leaves, out_spec, is_tuple, cols):
    """Jacobian blocks ``cols[o][w]`` (shape ``out.shape + in.shape``) arranged as torch.func:
    the output's tree, each leaf holding the argnums' trees."""
    per_out = []
    for i in range(len(leaves)):
        per = lin.per_arg(cols[i])
        per_out.append(tuple(per) if is_tuple else per[0])
    return _tree_unflatten(per_out, out_spec)


def jacrev(func: Callable, argnums: Union[int, Tuple[int, ...]] = 0, *,
           has_aux: bool = False, chunk_size: Optional[int] = None,
           _preallocate_and_copy: bool = False) -> Callable:
    """``func`` transformed to return its Jacobian, by reverse mode (``torch.func.jacrev``).

    The Jacobian of an output leaf of shape ``S`` with respect to an input leaf of shape
    ``T`` has shape ``S + T``; they are arranged as the output's tree, each leaf holding the
    tree of ``args[argnums]`` (a tuple of such trees for a tuple ``argnums``).  One forward,
    then one backward per output element (``chunk_size`` is accepted; the rows are always
    computed one at a time).  With ``has_aux=True`` returns ``(jacobian, aux)``.
    """
    where = "jacrev"
    _check_chunk(chunk_size, where)

    def wrapper(*args, **kwargs):
        from .api.creation import zeros
        from .api.shape import stack
        from .api.tensor import Tensor
        nums, is_tuple = _check_argnums(argnums, len(args), where)
        lin = _Lin(func, args, kwargs, nums, where)
        out, aux = _split_aux(lin.out, has_aux, where)
        leaves, spec = _tree_flatten(out)
        for o in leaves:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{where}: expected f(*args) to return only tensors, got "
                                   f"{type(o)}")
        roots = [o for o in leaves if o._ag is not None and o._ag.requires_grad]
        create = lin.create_graph(roots) if roots else False
        cols = []
        for o in leaves:
            n = o.numel()
            rows = []
            if o._ag is not None and o._ag.requires_grad:
                for j in range(n):
                    e = zeros(n, dtype=o._dtype, device=o._device)
                    e[j] = 1
                    rows.append(_pullback([o], [e.reshape(tuple(o.shape))], lin.wrt, create,
                                          True, lin.start))
            blocks = []
            for k, w in enumerate(lin.wrt):
                shape = tuple(o.shape) + tuple(w.shape)
                if rows:
                    blocks.append(stack([r[k] for r in rows]).reshape(shape))
                else:
                    blocks.append(zeros(shape, dtype=w._dtype, device=w._device))
            cols.append(blocks)
        jac = _assemble(lin, leaves, spec, is_tuple, cols)
        if has_aux:
            return jac, _plain(aux, create)
        return jac

    return wrapper


def jacfwd(func: Callable, argnums: Union[int, Tuple[int, ...]] = 0, has_aux: bool = False,
           *, randomness: str = "error") -> Callable:
    """``func`` transformed to return its Jacobian, column by column with forward products
    (``torch.func.jacfwd``).

    The result is arranged as :func:`jacrev`'s.  One forward, one recorded backward, then one
    backward per input element (see :func:`jvp`).  ``randomness`` as :func:`vmap`'s:
    ``"error"`` raises if ``func`` draws random numbers.  With ``has_aux=True`` returns
    ``(jacobian, aux)``.
    """
    where = "jacfwd"
    _check_randomness(randomness, where)

    def wrapper(*args, **kwargs):
        from .api.creation import zeros
        from .api.shape import stack
        from .api.tensor import Tensor
        nums, is_tuple = _check_argnums(argnums, len(args), where)
        rng = _Rng([a for a in _tree_flatten(args)[0] if isinstance(a, Tensor)])
        lin = _Lin(func, args, kwargs, nums, where)
        if randomness == "error":
            rng.check("jacfwd")
        out, aux = _split_aux(lin.out, has_aux, where)
        leaves, spec = _tree_flatten(out)
        for o in leaves:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{where}: expected f(*args) to return only tensors, got "
                                   f"{type(o)}")
        sets = []
        owner = []
        for k, w in enumerate(lin.wrt):
            n = w.numel()
            for j in range(n):
                e = zeros(n, dtype=w._dtype, device=w._device)
                e[j] = 1
                vs = [e.reshape(tuple(w.shape)) if i == k else zeros(tuple(x.shape),
                                                                    dtype=x._dtype,
                                                                    device=x._device)
                      for i, x in enumerate(lin.wrt)]
                sets.append(vs)
                owner.append(k)
        jv, create = _forward_products(lin, leaves, sets) if sets else ([], False)
        cols = []
        for i, o in enumerate(leaves):
            blocks = []
            for k, w in enumerate(lin.wrt):
                shape = tuple(o.shape) + tuple(w.shape)
                cs = [jv[s][i] for s in range(len(sets)) if owner[s] == k]
                if cs:
                    # columns stacked last: out.shape + (n,), then the input's shape
                    blocks.append(stack(cs, dim=-1).reshape(shape))
                else:
                    blocks.append(zeros(shape, dtype=o._dtype, device=o._device))
            cols.append(blocks)
        jac = _assemble(lin, leaves, spec, is_tuple, cols)
        if has_aux:
            return jac, _plain(aux, create)
        return jac

    return wrapper


def hessian(func: Callable, argnums: Union[int, Tuple[int, ...]] = 0) -> Callable:
    """``func`` transformed to return its Hessian: ``jacfwd(jacrev(func, argnums), argnums)``
    (``torch.func.hessian``); for an input of shape ``T`` and a scalar output the result has
    shape ``T + T``."""
    return jacfwd(jacrev(func, argnums), argnums)


# ------------------------------------------------------------------------------ vmap --
class _Rng:
    """The cpu generator's state and those of the devices of ``tensors``, to detect, repeat
    or undo random draws."""

    def __init__(self, tensors):
        from .api.random import device_rng_state
        from .dispatch.device import device
        devs = [device("cpu")]
        for t in tensors:
            if t._device not in devs:
                devs.append(t._device)
        self.devices = devs
        self.states = []
        for d in devs:
            try:
                self.states.append(device_rng_state("vmap", d))
            except NotImplementedError:
                self.states.append(None)  # this backend's draws cannot be detected

    def _now(self):
        from .api.random import device_rng_state
        return [None if s is None else device_rng_state("vmap", d)
                for d, s in zip(self.devices, self.states)]

    def restore(self):
        from .api.random import set_device_rng_state
        for d, s in zip(self.devices, self.states):
            if s is not None:
                set_device_rng_state("vmap", d, s)

    def check(self, where):
        for s, n in zip(self.states, self._now()):
            if s is not None and s.tolist() != n.tolist():
                self.restore()
                raise RuntimeError(f"{where}: called random operation while in randomness "
                                   f"error mode. Please either use the 'same' or 'different' "
                                   f"randomness flags on vmap or perform the randomness "
                                   f"operation out of vmap")


def _is_dim(x) -> bool:
    return x is None or (isinstance(x, int) and not isinstance(x, bool))


def vmap(func: Callable, in_dims=0, out_dims=0, randomness: str = "error", *,
         chunk_size: Optional[int] = None) -> Callable:
    """``func`` mapped over a dimension of its inputs (``torch.func.vmap``).

    Parameters
    ----------
    func : callable
        Takes the arguments of one batch entry and returns a tree of tensors (values with an
        ``out_dims`` entry of ``None`` may be anything).
    in_dims : int or tuple
        The mapped dimension of each positional argument: an int for all, or a tuple with one
        entry per argument, each an int, ``None`` (not mapped: passed whole to every call) or
        a tree matching that argument's.  Keyword arguments are not mapped.
    out_dims : int or tuple
        Where the batch dimension goes in each output (a tree prefix of the output); ``None``
        for an output that is the same for every entry.
    randomness : {"error", "same", "different"}
        ``"error"``: raise if ``func`` draws random numbers; ``"same"``: every entry draws the
        same numbers (the generators advance once); ``"different"``: each entry draws its own.
    chunk_size : int, optional
        Accepted (``None`` or > 0) for torch's signature; entries always run one at a time.

    Notes
    -----
    Cost: ``func`` is called once per batch entry, on slices of the inputs, and the results
    are stacked: a Python loop, not a batched kernel, so it costs what the loop costs.  It is
    correct for any polyten function, transforms included (``vmap(grad(f))`` computes
    per-sample gradients).  Unlike torch, data-dependent Python control flow and ``.item()``
    work inside ``func``.  A batch of size 0 calls ``func`` once on zeros of one entry's shape
    to learn the output shapes.  An ``out_dims`` of ``None`` requires equal results for every
    entry (torch requires them not to depend on the mapped inputs).

    Examples
    --------
    >>> per_sample = polyten.func.vmap(polyten.func.grad(loss), in_dims=(None, 0, 0))
    >>> grads = per_sample(params, xs, ys)   # one gradient per sample, stacked
    """
    name = _fname(func)
    _check_randomness(randomness, "vmap")
    _check_chunk(chunk_size, "vmap")
    if not (isinstance(in_dims, (int, tuple)) and not isinstance(in_dims, bool)):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` "
                         f"to be int or a (potentially nested) tuple matching the structure "
                         f"of inputs, got: {type(in_dims)}.")

    def wrapper(*args, **kwargs):
        from .api.creation import zeros
        from .api.tensor import Tensor
        prefix = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
        leaves, spec = _tree_flatten(tuple(args))
        if isinstance(in_dims, tuple) and len(in_dims) != len(args):
            raise ValueError(f"{prefix}: in_dims is not compatible with the structure of "
                             f"`inputs`: in_dims has {len(in_dims)} entries but there are "
                             f"{len(args)} positional inputs")
        dims = _broadcast_prefix(in_dims, spec, _is_dim,
                                 f"{prefix}: in_dims is not compatible with the structure of "
                                 f"`inputs`")
        size = None
        sizes = []
        norm = []
        for x, d in zip(leaves, dims):
            if d is None:
                norm.append(None)
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"{prefix}: Got in_dim={d} for an input but the input is of "
                                 f"type {type(x)}. We cannot vmap over non-Tensor arguments, "
                                 f"please use None as the respective in_dim")
            if not -x.ndim <= d < max(x.ndim, 0) or x.ndim == 0:
                raise ValueError(f"{prefix}: Got in_dim={d} for some input, but that input is "
                                 f"a Tensor of dimensionality {x.ndim} so expected in_dim to "
                                 f"satisfy {-x.ndim} <= in_dim < {x.ndim}.")
            d = d % x.ndim
            norm.append(d)
            sizes.append(x.shape[d])
        if not sizes:
            raise ValueError(f"vmap({name}, ...): expected at least one Tensor to vmap over "
                             f"(an in_dim that is not None for a tensor input)")
        if len(set(sizes)) != 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                             f"dimension, got sizes {sizes} for the mapped dimension")
        size = sizes[0]
        rng = _Rng([x for x, d in zip(leaves, norm) if d is not None])

        def call(slices):
            a = _tree_unflatten(slices, spec)
            return func(*a, **kwargs)

        results = []
        if size == 0:
            slices = [x if d is None else
                      zeros(tuple(s for i, s in enumerate(x.shape) if i != d),
                            dtype=x._dtype, device=x._device)
                      for x, d in zip(leaves, norm)]
            results.append(call(slices))
            if randomness == "error":
                rng.check("vmap")
        for b in range(size):
            if randomness == "same":
                rng.restore()
            slices = [x if d is None else x.select(d, b) for x, d in zip(leaves, norm)]
            results.append(call(slices))
            if randomness == "error":
                rng.check("vmap")
        return _stack_results(results, size, out_dims, name)

    return wrapper


def _stack_results(results, size, out_dims, name):
    from .api.creation import zeros
    from .api.shape import stack
    from .api.tensor import Tensor
    flat0, spec = _tree_flatten(results[0])
    flats = [flat0]
    for r in results[1:]:
        f, s = _tree_flatten(r)
        if s != spec:
            raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different "
                             f"structures for different batch entries")
        flats.append(f)
    if not (_is_dim(out_dims) or isinstance(out_dims, (tuple, list))):
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims}): out_dims must be an int, "
                         f"None, or a tuple matching the structure of the outputs")
    try:
        odims = _broadcast_prefix(out_dims, spec, _is_dim, "")
    except ValueError:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not "
                         f"compatible with the structure of `outputs`") from None
    out = []
    for k, od in enumerate(odims):
        vals = [f[k] for f in flats]
        v0 = vals[0]
        if od is None:
            same = all(_same(v, v0) for v in vals[1:])
            if not same:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                                 f"when out_dim is None (output {k} differs between batch "
                                 f"entries)")
            out.append(v0)
            continue
        if not isinstance(v0, Tensor) or not all(isinstance(v, Tensor) for v in vals):
            bad = next(v for v in vals if not isinstance(v, Tensor))
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(bad)}. Did you mean to set out_dims= to None for "
                             f"output?")
        nd = v0.ndim + 1
        if not -nd <= od < nd:
            raise IndexError(f"vmap: dimension out of range for out_dims (expected to be in "
                             f"range of [{-nd}, {nd - 1}], but got {od})")
        od %= nd
        if size == 0:
            shape = list(v0.shape)
            shape.insert(od, 0)
            out.append(zeros(tuple(shape), dtype=v0._dtype, device=v0._device))
        else:
            out.append(stack(vals, dim=od))
    return _tree_unflatten(out, spec)


def _same(a, b) -> bool:
    from .api.tensor import Tensor
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a is b:
            return True
        return (tuple(a.shape) == tuple(b.shape) and a._dtype is b._dtype and
                a._device is b._device and bool((a == b).all()))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return False
    return a == b


# ----------------------------------------------------------------------- modules --
def _tied_names(module) -> Dict[int, List[str]]:
    groups: Dict[int, List[str]] = {}
    for n, t in module.named_parameters(remove_duplicate=False):
        groups.setdefault(id(t), []).append(n)
    for n, t in module.named_buffers(remove_duplicate=False):
        groups.setdefault(id(t), []).append(n)
    return {k: v for k, v in groups.items() if len(v) > 1}


_MISSING = object()


def _owner(module, name):
    mod_path, _, leaf = name.rpartition(".")
    return (module.get_submodule(mod_path) if mod_path else module), leaf


def _swap(module, name, value):
    """Put ``value`` at the dotted ``name`` (a parameter, a buffer, else an attribute) without
    the checks of ``Module.__setattr__``; return ``(store, what was there)`` for
    :func:`_restore` (``_MISSING`` for an attribute the module did not have)."""
    mod, leaf = _owner(module, name)
    for store in ("_parameters", "_buffers"):
        d = getattr(mod, store)
        if leaf in d:
            old = d[leaf]
            d[leaf] = value
            return store, old
    old = mod.__dict__.get(leaf, _MISSING)
    object.__setattr__(mod, leaf, value)
    return None, old


def _restore(module, name, store, old):
    """Put ``old`` back; return what the call left at ``name``."""
    mod, leaf = _owner(module, name)
    if store is not None:
        d = getattr(mod, store)
        current = d.get(leaf)
        d[leaf] = old
        return current
    current = mod.__dict__.get(leaf)
    if old is _MISSING:
        mod.__dict__.pop(leaf, None)
    else:
        object.__setattr__(mod, leaf, old)
    return current


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Call ``module`` with some of its parameters and buffers replaced by the given tensors
    (``torch.func.functional_call``); the module is unchanged afterwards.

    Parameters
    ----------
    module : polyten.nn.Module
    parameter_and_buffer_dicts : dict or sequence of dicts
        ``{dotted name: tensor}`` as in ``named_parameters()`` / ``named_buffers()``; several
        dicts must not share keys.  Names the module does not have are set as attributes for
        the call.  Parameters and buffers not named keep the module's.
    args : tuple or value, optional
        The positional arguments (a non-tuple is the single argument).
    kwargs : dict, optional
        The keyword arguments.
    tie_weights : bool
        A tensor given for one of several names of a shared (tied) parameter or buffer
        replaces it under all of them; different tensors for names of one tied tensor raise.
    strict : bool
        Raise unless exactly the module's parameters and buffers are given.

    Returns
    -------
    What ``module(*args, **kwargs)`` returns.  When one dict is given, tensors that the call
    reassigns (e.g. a buffer) are written back into it, as torch does.

    Examples
    --------
    >>> params = {k: v.detach() for k, v in model.named_parameters()}
    >>> out = polyten.func.functional_call(model, params, (x,))
    """
    from .nn import Module
    if not isinstance(module, Module):
        raise TypeError(f"functional_call: module must be a polyten.nn.Module, got "
                        f"{type(module).__name__}")
    if isinstance(parameter_and_buffer_dicts, dict):
        given = parameter_and_buffer_dicts
        sources = [given]
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)):
        sources = list(parameter_and_buffer_dicts)
        if not all(isinstance(d, dict) for d in sources):
            raise ValueError("functional_call: expected all elements of "
                             "parameter_and_buffer_dicts to be dictionaries")
        seen: Dict[str, int] = {}
        for d in sources:
            for k in d:
                seen[k] = seen.get(k, 0) + 1
        repeated = [k for k, n in seen.items() if n > 1]
        if repeated:
            raise ValueError(f"functional_call: {repeated} appeared in multiple dictionaries; "
                             f"behavior of functional call is ambiguous")
        given = {k: v for d in sources for k, v in d.items()}
    else:
        raise ValueError(f"functional_call: expected parameter_and_buffer_dicts to be a dict, "
                         f"or a list/tuple of dicts, but got {type(parameter_and_buffer_dicts)}")
    values = dict(given)
    if tie_weights:
        for names in _tied_names(module).values():
            named = [n for n in names if n in given]
            if len(named) > 1 and len({id(given[n]) for n in named}) > 1:
                raise ValueError(f"functional_call got multiple values for keys "
                                 f"{sorted(names)}, which are tied. Consider using "
                                 f"tie_weights=False")
            if named:
                for n in names:
                    values[n] = given[named[0]]
    if strict:
        known = [n for n, _ in module.named_parameters(remove_duplicate=False)] + \
            [n for n, _ in module.named_buffers(remove_duplicate=False)]
        unexpected = [k for k in values if k not in set(known)]
        missing = [k for k in dict.fromkeys(known) if k not in values]
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError(f"functional_call: error(s) in reparametrizing for "
                               f"{module._get_name()}:\n\t" + "\n\t".join(msgs))
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    kwargs = {} if kwargs is None else kwargs
    swapped = []
    try:
        for name, value in values.items():
            swapped.append((name,) + _swap(module, name, value))
        out = module(*args, **kwargs)
    finally:
        after = {name: _restore(module, name, store, old)
                 for name, store, old in reversed(swapped)}
    if len(sources) == 1 and isinstance(parameter_and_buffer_dicts, dict):
        # as torch: what the call reassigned (a buffer) goes back into the caller's dict
        for k in given:
            if after.get(k) is not None:
                given[k] = after[k]
    return out


def stack_module_state(models: Sequence) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Stack the parameters and buffers of models of one class into ``(params, buffers)``
    dicts of tensors with a leading model dimension (``torch.func.stack_module_state``), for
    ``vmap`` over an ensemble with :func:`functional_call`.

    Stacked parameters are new leaves that require grad when the originals do; buffers are
    stacked as they are.

    Examples
    --------
    >>> params, buffers = polyten.func.stack_module_state(models)
    >>> def run(p, b, x):
    ...     return polyten.func.functional_call(base, (p, b), (x,))
    >>> outs = polyten.func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    """
    from .api.shape import stack
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    cls = type(models[0])
    if not all(type(m) is cls for m in models):
        raise RuntimeError(f"stack_module_state: Expected all models to be of the same class "
                           f"({cls.__name__}), got "
                           f"{sorted({type(m).__name__ for m in models})}")

    def stacked(tensors, name):
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) != 1:
            raise RuntimeError(f"stack_module_state: {name} has shapes "
                               f"{sorted(list(s) for s in shapes)} in different models; "
                               f"they must be equal")
        flags = {bool(t.requires_grad) for t in tensors}
        if len(flags) != 1:
            raise RuntimeError(f"stack_module_state: Expected {name} from each model to have "
                               f"the same .requires_grad")
        r = stack([t.detach() for t in tensors])
        return r.requires_grad_(True) if True in flags else r

    all_params = [dict(m.named_parameters()) for m in models]
    all_buffers = [dict(m.named_buffers()) for m in models]
    params = {k: stacked([p[k] for p in all_params], k) for k in all_params[0]}
    buffers = {k: stacked([b[k] for b in all_buffers], k) for k in all_buffers[0]}
    return params, buffers
