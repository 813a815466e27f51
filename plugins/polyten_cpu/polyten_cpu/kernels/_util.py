"""Small helpers shared by the kernel modules."""


def array_result(xp, fn):
    """Wrap a NumPy function so 0-d results are arrays, not NumPy scalars (the kernel contract)."""
    nd = xp.ndarray
    asarray = xp.asarray

    def k(*args):
        r = fn(*args)
        return r if r.__class__ is nd else asarray(r)

    k.__name__ = getattr(fn, "__name__", "kernel")
    return k
