"""The RL run's prompts: examples from ``config.data`` and TRL's conversational dataset."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example
from rewardbridge.policy.generation import PAPER_POLICY_SYSTEM_PROMPT
from rewardbridge.training.config import RunConfig


def load_training_examples(config: RunConfig) -> tuple[list[Example], list[Example]]:
    """(training examples, held-out examples) from ``config.data``."""
    from rewardbridge.data.loaders import FieldMap, load_examples, load_sample_examples

    data = config.data
    if data.path is None:
        examples = load_sample_examples()
    else:
        fields = FieldMap.parse(data.fields) if data.fields else None
        examples = load_examples(data.path, fields=fields)
    if data.exclude_ids:
        excluded = set(Path(data.exclude_ids).read_text().split())
        examples = [ex for ex in examples if ex.id not in excluded]
    if data.shuffle:
        random.Random(config.training.seed).shuffle(examples)
    heldout = examples[len(examples) - data.holdout :] if data.holdout else []
    examples = examples[: len(examples) - data.holdout]
    if data.limit is not None:
        examples = examples[: data.limit]
    if not examples:
        raise ValueError("data: no training examples left (check data.path, limit, holdout)")
    return examples, heldout


def write_heldout(path: Path, heldout: Sequence[Example]) -> None:
    """The held-out prompts as JSONL (id, question, reference, domain)."""
    with path.open("w") as fh:
        for ex in heldout:
            row = {"id": ex.id, "question": ex.question, "reference": ex.reference}
            fh.write(json.dumps({**row, "domain": ex.domain}) + "\n")


def to_dataset(examples: Sequence[Example], system_prompt: str | None) -> Any:
    """A ``datasets.Dataset`` in TRL's conversational format with the columns our reward reads
    (``reference``, ``example_id``; the question is the prompt's user turn)."""
    from datasets import Dataset

    system = system_prompt if system_prompt is not None else PAPER_POLICY_SYSTEM_PROMPT
    return Dataset.from_list(
        [
            {
                "prompt": ex.messages(system),
                "reference": ex.reference,
                "example_id": ex.id,
                "domain": ex.domain or "",
            }
            for ex in examples
        ]
    )
