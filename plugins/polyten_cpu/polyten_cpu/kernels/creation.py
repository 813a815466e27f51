"""Creation kernels."""


def kernels(xp, **ctx) -> dict:
    def full(shape, value, dtype, device_index):
        return xp.full(shape, value, dtype=dtype)

    def empty(shape, dtype, device_index):
        return xp.empty(shape, dtype=dtype)

    def asarray(obj, dtype, copy, device_index):
        return xp.array(obj, dtype=dtype, copy=copy) if copy is not None else \
            xp.asarray(obj, dtype=dtype)

    return {"full": full, "empty": empty, "asarray": asarray}
