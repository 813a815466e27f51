"""polyten.nn.utils (``torch.nn.utils``): gradient clipping, parameter/vector conversion,
packed sequences (:mod:`.rnn`), parametrizations (:mod:`.parametrize`,
:mod:`.parametrizations`) and the older hook-based ``weight_norm`` / ``spectral_norm``."""

from .clip_grad import *  # noqa: F401,F403
from .convert_parameters import *  # noqa: F401,F403

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
