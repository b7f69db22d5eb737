"""Datasets, task detection, column roles, the split and the feature-selection strategies."""

from mlfleet.data._columns import ROLES, ColumnPlan, plan_columns
from mlfleet.data._dataset import Dataset, detect_task, load_dataset
from mlfleet.data._features import SPARSE_STRATEGIES, STRATEGIES, build_preprocessor, build_selector
from mlfleet.data._parts import (
    PartPlan,
    Reader,
    check_csv_size,
    csv_conversion,
    plan_parts,
    read_holdout,
    read_part,
    read_sample,
    table_bytes,
)
from mlfleet.data._sources import BUILTINS
from mlfleet.data._split import Split, split_dataset, split_key

__all__ = [
    "BUILTINS",
    "ROLES",
    "SPARSE_STRATEGIES",
    "ColumnPlan",
    "Dataset",
    "PartPlan",
    "Reader",
    "STRATEGIES",
    "Split",
    "build_preprocessor",
    "build_selector",
    "check_csv_size",
    "csv_conversion",
    "detect_task",
    "load_dataset",
    "plan_columns",
    "plan_parts",
    "read_holdout",
    "read_part",
    "read_sample",
    "split_dataset",
    "split_key",
    "table_bytes",
]
