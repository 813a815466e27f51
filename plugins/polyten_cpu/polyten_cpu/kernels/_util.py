"""Small helpers shared by the kernel modules."""


def array_result(xp, fn, nargs=None):
    """Wrap a NumPy function so 0-d results are arrays, not NumPy scalars (the kernel contract).

    Fixed-arity wrappers avoid ``*args`` packing on the hot path of unary and binary ufuncs.
    """
    nd = xp.ndarray
    asarray = xp.asarray
    if nargs is None:
        nargs = getattr(fn, "nin", None)
    if nargs == 1:
        def k(x):
            r = fn(x)
            return r if r.__class__ is nd else asarray(r)
    elif nargs == 2:
        def k(x, y):
            r = fn(x, y)
            return r if r.__class__ is nd else asarray(r)
    else:
        def k(*args):
            r = fn(*args)
            return r if r.__class__ is nd else asarray(r)
    k.__name__ = getattr(fn, "__name__", "kernel")
    return k
