"""``AdaptiveLogSoftmaxWithLoss``: the adaptive softmax of Grave et al. (2017), with
``torch.nn``'s signature, submodules (``head``, ``tail``), attributes and results."""

from __future__ import annotations

from collections import namedtuple

from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax: the frequent classes in a head, the rare ones in clusters whose
    log-probabilities are computed only for the rows that need them.

    Parameters
    ----------
    in_features : int
        The size of each input row.
    n_classes : int
        The number of classes.
    cutoffs : sequence of int
        Increasing, unique class boundaries in ``[1, n_classes - 1]``: classes below
        ``cutoffs[0]`` form the head's shortlist, those in ``[cutoffs[i], cutoffs[i + 1])``
        cluster ``i``.
    div_value : float
        Cluster ``i``'s hidden size is ``in_features // div_value ** (i + 1)``.
    head_bias : bool
        Whether the head ``Linear`` has a bias.

    Attributes
    ----------
    head : Linear
        ``in_features -> shortlist_size + n_clusters``.
    tail : ModuleList
        One ``Sequential(Linear(in, hidden, bias=False), Linear(hidden, size, bias=False))``
        per cluster.

    Notes
    -----
    ``forward(input, target)`` returns the named tuple ``(output, loss)``: each row's
    log-probability of its target and the mean negative log-likelihood.  :meth:`log_prob`
    and :meth:`predict` accept one unbatched ``(in_features,)`` row as well (PyTorch's need
    a 2-D input).
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                             "length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError(f"AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                             f"unique, positive integers sorted in an increasing order, where "
                             f"each value is between 1 and n_classes-1 = {n_classes - 1}; got "
                             f"{cutoffs}")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device,
                           dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(
                Linear(in_features, hsz, bias=False, device=device, dtype=dtype),
                Linear(hsz, osz, bias=False, device=device, dtype=dtype)))

    def reset_parameters(self) -> None:
        """Re-initialise the head and every cluster's projections (``Linear``'s rule)."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input, target):
        """``(output, loss)``: ``output[i]`` the log-probability of ``target[i]`` given
        ``input[i]`` (``(N,)``; 0-D for a 1-D input and 0-D target), ``loss`` the mean of
        ``-output``."""
        from ...api.tensor import Tensor
        import polyten as pt
        if not isinstance(input, Tensor) or not isinstance(target, Tensor):
            raise TypeError("AdaptiveLogSoftmaxWithLoss: input and target must be tensors")
        if target.ndim == 1:
            if input.ndim != 2:
                raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: a 1-D target expects a 2-D "
                                   f"input (N, in_features), got input of shape "
                                   f"{tuple(input.shape)}")
            if input.shape[0] != target.shape[0]:
                raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: input and target should have "
                                   f"the same size in the batch dimension, got input "
                                   f"{tuple(input.shape)} and target {tuple(target.shape)}")
        elif target.ndim == 0:
            if input.ndim != 1:
                raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: a 0-D target expects a 1-D "
                                   f"input (in_features,), got input of shape "
                                   f"{tuple(input.shape)}")
        else:
            raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: 0-D or 1-D target expected "
                               f"(multi-target not supported), got shape "
                               f"{tuple(target.shape)}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"AdaptiveLogSoftmaxWithLoss: target must hold integer class "
                            f"indices, got {target.dtype.name}")
        batched = target.ndim > 0
        x = input if batched else input.unsqueeze(0)
        t = (target if batched else target.unsqueeze(0)).to(pt.int64)
        if t.shape[0] and bool(((t < 0) | (t >= self.n_classes)).any()):
            raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: target values should be in "
                               f"[0, {self.n_classes - 1}], but values in range "
                               f"[{int(t.min())}, {int(t.max())}] were found")
        short = self.shortlist_size
        # the head column of each row: its class in the shortlist, else its cluster's entry
        head_col = t
        for i in range(self.n_clusters):
            lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
            head_col = pt.where((t >= lo) & (t < hi), short + i, head_col)
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = head_logprob.gather(1, head_col.unsqueeze(1)).squeeze(1)
        for i in range(self.n_clusters):
            lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
            rows = pt.nonzero((t >= lo) & (t < hi)).reshape(-1)
            if rows.shape[0] == 0:
                continue
            rel = t.index_select(0, rows) - lo
            cluster = F.log_softmax(self.tail[i](x.index_select(0, rows)), dim=1)
            output = output.index_add(0, rows, cluster.gather(1, rel.unsqueeze(1)).squeeze(1))
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _full_log_prob(self, x, head_output):
        import polyten as pt
        head_logprob = F.log_softmax(head_output, dim=1)
        short = self.shortlist_size
        parts = [head_logprob[:, :short]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](x), dim=1)
            parts.append(cluster + head_logprob[:, short + i:short + i + 1])
        return pt.cat(parts, 1)

    def log_prob(self, input):
        """Log-probabilities of every class: ``(N, n_classes)`` for ``(N, in_features)``
        (``(n_classes,)`` for one row)."""
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input):
        """The most likely class of each row, ``argmax(log_prob(input), dim=1)``, computing
        the clusters only for the rows whose head prediction is not in the shortlist."""
        import polyten as pt
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        output = pt.argmax(head_output, dim=1)
        outside = output >= self.shortlist_size
        if bool(outside.any()):
            if bool(outside.all()):
                output = pt.argmax(self._full_log_prob(x, head_output), dim=1)
            else:
                rows = pt.nonzero(outside).reshape(-1)
                best = pt.argmax(self._full_log_prob(x.index_select(0, rows),
                                                     head_output.index_select(0, rows)), dim=1)
                output = output.index_copy(0, rows, best)
        return output if batched else output.squeeze(0)
