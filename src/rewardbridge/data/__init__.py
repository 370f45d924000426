"""Examples (prompts with references), judge items, and their loaders."""

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.loaders import (
    DataError,
    FieldMap,
    iter_examples,
    iter_judge_items,
    load_examples,
    load_judge_items,
    load_sample_examples,
    sample_dataset_path,
)

__all__ = [
    "DataError",
    "Example",
    "FieldMap",
    "JudgeItem",
    "iter_examples",
    "iter_judge_items",
    "load_examples",
    "load_judge_items",
    "load_sample_examples",
    "sample_dataset_path",
]
