"""polyten.nn.utils (``torch.nn.utils``): gradient clipping, parameter/vector conversion,
packed sequences (:mod:`.rnn`), parametrizations (:mod:`.parametrize`,
:mod:`.parametrizations`), the older hook-based ``weight_norm`` / ``spectral_norm``, conv /
linear + batch-norm fusion (:mod:`.fusion`) and ``skip_init``."""

import inspect as _inspect

from .clip_grad import *  # noqa: F401,F403
from .convert_parameters import *  # noqa: F401,F403
from .fusion import *  # noqa: F401,F403


_NO_INIT_CLASSES: dict = {}


def skip_init(module_cls, *args, **kwargs):
    """Build ``module_cls(*args, **kwargs)`` without running its parameter initialisation.

    As ``torch.nn.utils.skip_init``: for layers whose default initialisation is wasted work
    (custom initialisation follows, or a state dict is loaded); the values of the parameters
    and buffers the initialisation would have set are unspecified.  ``module_cls`` must
    accept a ``device`` argument (``device=`` in ``kwargs`` is honoured).

    polyten has no storage-less ``meta`` device, so the module's tensors are allocated
    directly on the target device and the class's own ``reset_parameters`` /
    ``_reset_parameters`` are skipped (submodules that the constructor builds still
    initialise themselves).

    Raises
    ------
    RuntimeError
        ``module_cls`` is not a Module subclass, or takes no ``device`` argument.
    """
    from ..modules.module import Module
    if not isinstance(module_cls, type) or not issubclass(module_cls, Module):
        raise RuntimeError(f"skip_init: expected a Module subclass, got {module_cls!r}")
    if "device" not in _inspect.signature(module_cls).parameters:
        raise RuntimeError(f"skip_init: {module_cls.__name__} must support a 'device' "
                           "argument to skip initialization")
    # a subclass whose reset methods do nothing builds the object; the instance then gets
    # the requested class back, so isinstance checks, reprs and pickling see module_cls
    shell = _NO_INIT_CLASSES.get(module_cls)
    if shell is None:
        attrs = {name: (lambda self, *a, **k: None)
                 for name in ("reset_parameters", "_reset_parameters")
                 if callable(getattr(module_cls, name, None))}
        attrs["__module__"] = module_cls.__module__
        shell = _NO_INIT_CLASSES[module_cls] = type(module_cls.__name__, (module_cls,), attrs)
    module = shell(*args, **kwargs)
    module.__class__ = module_cls
    return module

# loaded on first use, so that `import polyten` does not pay for them
_LAZY = {"rnn": ("rnn", None), "parametrize": ("parametrize", None),
         "parametrizations": ("parametrizations", None),
         "spectral_norm": ("_spectral_norm", "spectral_norm"),
         "remove_spectral_norm": ("_spectral_norm", "remove_spectral_norm"),
         "weight_norm": ("_weight_norm", "weight_norm"),
         "remove_weight_norm": ("_weight_norm", "remove_weight_norm")}


def __getattr__(name):
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    module = importlib.import_module(f"{__name__}.{entry[0]}")
    value = module if entry[1] is None else getattr(module, entry[1])
    globals()[name] = value
    return value
