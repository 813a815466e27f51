"""Host transfers and DLPack for a host (NumPy) array module."""


def kernels(xp, **ctx) -> dict:
    def to_host(x):
        return x if isinstance(x, xp.ndarray) else xp.asarray(x)

    def from_host(array, device_index):
        return xp.asarray(array)

    def from_dlpack(obj, device_index):
        return xp.from_dlpack(obj)

    return {"to_host": to_host, "from_host": from_host, "from_dlpack": from_dlpack}
