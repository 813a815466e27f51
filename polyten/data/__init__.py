"""polyten.data: datasets, samplers and the DataLoader (also ``polyten.utils.data``).

Written once above the dispatcher, so it feeds every backend: batches are polyten tensors on
the current backend.  Worker processes build batches in parallel on the host and never touch
an accelerator; see ``DataLoader`` and docs/architecture.md ("Data loading").
"""

from ..api.generator import Generator
from ._worker import WorkerInfo, get_worker_info
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset,
                      Subset, TensorDataset, random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "Subset",
           "ConcatDataset", "ChainDataset", "random_split", "Sampler", "SequentialSampler",
           "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
           "DataLoader", "default_collate", "default_convert", "get_worker_info",
           "WorkerInfo", "Generator"]
