"""polyten.utils: PyTorch's ``torch.utils`` spellings.  ``polyten.utils.data`` is
``polyten.data`` (the same module objects), imported on first use; ``polyten.utils.checkpoint``
is activation checkpointing."""


def __getattr__(name):
    if name in ("data", "checkpoint"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'polyten.utils' has no attribute {name!r}")
