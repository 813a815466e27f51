"""polyten.optim: optimizers and learning-rate schedulers (``torch.optim``'s names, arguments,
update formulas and ``state_dict`` format), written once in polyten ops so they run on every
backend.

>>> opt = polyten.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler",
           "required"]
