"""Datasets, task detection, the split and the feature-selection strategies."""

from mlfleet.data._dataset import Dataset, detect_task, load_dataset
from mlfleet.data._features import STRATEGIES, build_preprocessor, build_selector
from mlfleet.data._sources import BUILTINS
from mlfleet.data._split import Split, split_dataset

__all__ = [
    "BUILTINS",
    "Dataset",
    "STRATEGIES",
    "Split",
    "build_preprocessor",
    "build_selector",
    "detect_task",
    "load_dataset",
    "split_dataset",
]
