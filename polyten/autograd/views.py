"""Views and in-place writes in autograd (PyTorch's view + in-place semantics).

A view shares its base's memory, so an in-place write through a view changes the base, and
one into the base changes every view.  PyTorch keeps the graph right both ways, and so does
this module:

* Every view made by a view op (basic indexing, ``narrow``, ``split``, ``unbind``,
  ``reshape`` / ``view`` when it does not copy, ``permute`` / ``transpose``, ``expand``,
  ``diagonal``)
  remembers its *root* (the tensor that is not a view of another) and the *chain* of view
  steps that makes it from the root (``t._view`` holds its parent and its step).  Steps are
  ``("key", k)`` (``t[k]`` with basic indexing), ``("reshape", shape)``,
  ``("permute", dims)``, ``("diagonal", (offset, dim1, dim2))`` and ``("expand", shape)``;
  :func:`replay` applies them to another tensor of the root's shape.
* An in-place op on a view of a graph tensor first rebases the view (``elementwise.
  _graph_inplace``), then the root: the root's new ``grad_fn`` is a ``CopySlicesBackward0``
  node whose gradient is the incoming one with the view's region zeroed for the root's old
  value, and the incoming one seen through the view (``replay``) for the view's new value --
  PyTorch's ``CopySlices``.
* After the root's ``grad_fn`` changed (an in-place op on the root or on any of its views),
  the views made before are regenerated: each takes the ``grad_fn`` of its chain replayed on
  the root (PyTorch regenerates a view's ``grad_fn`` from its base's version on use; here it
  happens at the write, for the views still alive, which the root tracks by weak reference
  once they take part in a graph).
* An in-place op on a view of a leaf that requires grad is refused, as PyTorch.
"""

from __future__ import annotations

import weakref

from .grad_mode import grad_enabled
from .graph import record
from .meta import AutogradMeta
from .rules import define

def view_of(t):
    """``(root, chain)`` when ``t`` is a view made by a view op, else ``None``."""
    link = getattr(t, "_view", None)
    if link is None:
        return None
    steps = []
    while link is not None:  # t._view is (parent, step): walk up to the root
        parent, step = link
        steps.append(step)
        link = getattr(parent, "_view", None)
    return parent, tuple(reversed(steps))


def note_view(x, out, step) -> None:
    """Record that ``out`` is the view ``step`` of ``x`` (see the module docstring), before
    ``out`` is recorded; a view that takes part in a graph is also registered with its root,
    to be regenerated after an in-place write changes the root's ``grad_fn``.  Only the
    parent and the step are stored (the view keeps its parent alive, as a PyTorch view its
    base): the root and the chain are worked out at a write.  Callers note views only in
    grad mode (a view made under ``no_grad`` and written later is not tracked), so inference
    pays nothing."""
    out._view = (x, step)
    if x._ag is not None:  # out will be recorded: a view in a graph
        root = x
        link = getattr(x, "_view", None)
        while link is not None:
            root = link[0]
            link = getattr(root, "_view", None)
        views = getattr(root, "_views", None)
        if views is None:
            views = root._views = []
        n = len(views)
        if n >= 64 and not n & (n - 1):  # drop the dead ones at powers of two: amortised
            views[:] = [r for r in views if r() is not None]
        views.append(weakref.ref(out))


def replay(t, chain):
    """``t`` seen through the view ``chain`` (recorded when ``t`` takes part in a graph)."""
    for kind, arg in chain:
        if kind == "key":
            t = t[arg]
        elif kind == "reshape":
            t = t.reshape(arg)
        elif kind == "permute":
            t = t.permute(arg)
        elif kind == "diagonal":
            t = t.diagonal(*arg)
        else:  # "expand"
            t = t.expand(arg)
    return t


def check_view_write(op: str, t, view) -> None:
    """Refuse an in-place op on ``t``, a view (``view_of(t)``) of a leaf that requires grad
    (outside ``no_grad``), as PyTorch: the write would change the leaf behind autograd's
    back."""
    if not grad_enabled():
        return
    ag = view[0]._ag
    if ag is not None and ag.requires_grad and ag.grad_fn is None:
        raise RuntimeError(f"{op}: a view of a leaf tensor that requires grad is being used "
                           f"in an in-place operation; write into a clone (x = x.clone()), or "
                           f"do it under polyten.no_grad() (e.g. to initialise a parameter)")


def _alias(root):
    """A tensor object with ``root``'s memory and its present autograd state (the root's
    value before the write, as the graph sees it)."""
    from ..api.tensor import wrap
    a = wrap(root._data, root._device, root._dtype)
    ag = root._ag
    if ag is not None and ag.requires_grad:
        m = a._ag = AutogradMeta(True, ag.grad_fn, ag.output_nr)
        m.accumulator = ag.accumulator
    return a


def _copy_slices_base(n, g):
    return g.masked_fill(n.params["mask"], 0)


def _copy_slices_view(n, g):
    return replay(g, n.params["chain"])


_COPY_SLICES = define("copy_slices", _copy_slices_base, _copy_slices_view, inputs=False)


def rebase_root(t, view) -> None:
    """After the in-place write into ``t`` (already rebased on its new value), a view
    (``view_of(t)``), make the root's ``grad_fn`` a ``CopySlicesBackward0`` of the root's old
    value and ``t``'s new one, and regenerate the root's other live views."""
    root, chain = view
    from ..api import creation
    from ..api.tensor import wrap
    old = _alias(root)
    mask = creation.zeros(tuple(root._data.shape), dtype="bool", device=root._device)
    from .grad_mode import no_grad
    with no_grad():
        replay(mask, chain)[...] = True  # the view's elements, in the root's layout
    out = wrap(root._data, root._device, root._dtype)
    record(_COPY_SLICES, out, (old, t), {"mask": mask, "chain": chain})
    if out._ag is None:
        return
    ag = root._ag
    if ag is None:
        ag = root._ag = AutogradMeta(True)
    ag.requires_grad = True
    ag.grad_fn = out._ag.grad_fn
    ag.output_nr = out._ag.output_nr
    refresh_views(root, skip=t)


def refresh_views(root, skip=None) -> None:
    """Give every live view of ``root`` registered in a graph the ``grad_fn`` of its chain
    replayed on the root as it is now (after an in-place write changed the root's)."""
    views = getattr(root, "_views", None)
    if not views:
        return
    for r in list(views):
        v = r()
        if v is None or v is skip or v._ag is None:
            continue
        fresh = replay(_alias(root), view_of(v)[1])
        fa = fresh._ag
        if fa is not None:
            v._ag.grad_fn = fa.grad_fn
            v._ag.output_nr = fa.output_nr
