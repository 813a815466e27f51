"""polyten.utils: PyTorch's ``torch.utils`` spellings.  ``polyten.utils.data`` is
``polyten.data`` (the same module objects), imported on first use."""


def __getattr__(name):
    if name == "data":
        import importlib
        return importlib.import_module(f"{__name__}.data")
    raise AttributeError(f"module 'polyten.utils' has no attribute {name!r}")
