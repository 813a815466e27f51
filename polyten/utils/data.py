"""``polyten.utils.data`` is ``polyten.data``: the same module object (and submodules), so
``from polyten.utils.data import DataLoader`` gives the very same class."""

import sys

from .. import data as _data

for _name, _mod in list(sys.modules.items()):
    if _name.startswith("polyten.data."):
        sys.modules["polyten.utils.data." + _name[len("polyten.data."):]] = _mod
sys.modules[__name__] = _data
