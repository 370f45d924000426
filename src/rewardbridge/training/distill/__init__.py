"""Verifier distillation (paper §7): ``collect`` a teacher's judgments (``collect.py``), then
fine-tune a compact judge on them (``train.py``)."""

from rewardbridge.training.distill.collect import (
    LABELS_TEACHER,
    CollectStats,
    DistillRecord,
    LabelsTeacher,
    collect,
    done_ids,
    prompt_id_of,
    prompt_ids_path,
    read_records,
    rollout_items,
    sample_items,
)
from rewardbridge.training.distill.train import (
    DistillTrainConfig,
    TrainSummary,
    build_trainer,
    train_verifier,
)

__all__ = [
    "LABELS_TEACHER",
    "CollectStats",
    "DistillRecord",
    "DistillTrainConfig",
    "LabelsTeacher",
    "TrainSummary",
    "build_trainer",
    "collect",
    "done_ids",
    "prompt_id_of",
    "prompt_ids_path",
    "read_records",
    "rollout_items",
    "sample_items",
    "train_verifier",
]
