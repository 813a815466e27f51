"""The hooks a polyten plugin may implement.

A plugin is any module (or object) registered with polyten's pluggy plugin manager, usually
through an entry point in the ``polyten`` group of its distribution::

    [project.entry-points.polyten]
    mybackend = "polyten_mybackend"

and implements hooks with ``@polyten.dispatch.hookimpl``.  Entry-point modules should be light:
they are imported when polyten first needs a backend, so heavy array libraries belong in the
loader of the :class:`~polyten.dispatch.BackendSpec`, which runs only when the backend is used.
"""

import pluggy

hookspec = pluggy.HookspecMarker("polyten")
hookimpl = pluggy.HookimplMarker("polyten")


@hookspec
def polyten_register_backends(register):
    """Register the backends this plugin provides.

    Call ``register(spec)`` once per backend, where ``spec`` is a
    :class:`polyten.dispatch.BackendSpec` (name, a cheap availability probe and a lazy loader)
    or an already-built :class:`polyten.dispatch.Backend`.  The hook must not import heavy
    libraries: the spec's ``probe`` says whether the backend can run here (and why not) and its
    ``load`` builds the :class:`~polyten.dispatch.Backend` on first use.

    A hook that raises, or registers something that is not a backend, a name that is already
    taken, or kernels for ops that do not exist, is reported by ``polyten.backends()`` and in
    one warning, naming the plugin's distribution; the other plugins keep working.
    """
