"""polyten.optim: optimizers and learning-rate schedulers (``torch.optim``'s names, arguments,
update formulas and ``state_dict`` format), written once in polyten ops so they run on every
backend.

>>> opt = polyten.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from . import lr_scheduler  # noqa: F401
from .adadelta_rprop import Adadelta, Rprop
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adam_variants import Adamax, NAdam, RAdam
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam",
           "RAdam", "Adadelta", "Rprop", "ASGD", "LBFGS", "Adafactor", "Muon", "lr_scheduler",
           "required"]
