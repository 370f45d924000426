"""Verifier distillation (paper §7), step 2: fine-tune a compact judge on the teacher's records.

``train_verifier``: SFT of the student on those records with the exact judge prompt and the
loss on the judgment token only (``rewardbridge.training.sft_data``), on TRL's SFTTrainer;
full fine-tuning or LoRA (merged before saving). The output folder is a plain Hugging Face
model (weights, tokenizer, chat template) that ``GenerativeVerifier(model=DIR)`` loads.

Departure from the paper: the paper's SFT uses batch 128, 1 epoch, lr ~5e-6 on 160k records;
defaults here are for small students and small sets (lr 1e-5).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardbridge.models import resolve_dtype
from rewardbridge.training.distill.collect import DistillRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillTrainConfig:
    """SFT settings of the student verifier."""

    epochs: float = 1.0
    """passes over the records (the paper: 1)"""
    learning_rate: float = 1e-5
    """peak learning rate (the paper: ~5e-6 for a 7B student)"""
    batch_size: int = 8
    """sequences per optimizer step (before gradient accumulation)"""
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    """longest judge prompt + 1 token kept; longer records are skipped and counted"""
    max_steps: int = -1
    """stop after this many optimizer steps (-1: run the epochs)"""
    lora: bool = False
    """train LoRA adapters (merged into the weights before saving) instead of all weights"""
    lora_r: int = 16
    lora_alpha: int = 32
    warmup_ratio: float = 0.0
    balance: bool = False
    """down-sample the majority judgment so YES and NO are equally frequent"""
    seed: int = 0
    dtype: str = "auto"
    """compute dtype: auto (bf16 mixed precision where the CPU/GPU has native bf16), float32,
    bfloat16; the weights stay float32 (models.resolve_dtype)"""
    trainer: str = "prefix"
    """"prefix": the judge template's shared prefix run once per batch and the LM head only at
    the judgment token (``prefix_sft.py``; same loss, far less compute); "trl": TRL's
    SFTTrainer on the full sequences (uses ``gradient_accumulation_steps``)"""
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs > 0,
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "gradient_accumulation_steps": self.gradient_accumulation_steps >= 1,
            "max_length": self.max_length >= 16,
            "max_steps": self.max_steps == -1 or self.max_steps >= 1,
            "lora_r": self.lora_r >= 1,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "trainer": self.trainer in ("prefix", "trl"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"DistillTrainConfig.{name}: invalid value {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class TrainSummary:
    output_dir: str
    examples: int
    yes: int
    no: int
    skipped_too_long: int
    steps: int
    train_loss: float | None
    eval_loss: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Prepared:
    """What both trainers start from: the tokenizer, the SFT examples and their counts."""

    source: Any
    tokenizer: Any
    examples: list[dict[str, Any]]
    eval_examples: list[dict[str, Any]]
    counts: dict[str, int]


def _prepare(
    records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]],
    base_model: str | os.PathLike[str] | None,
    config: DistillTrainConfig,
    eval_records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]] | None,
) -> _Prepared:
    """Class-balance ``records``, tokenize them (and ``eval_records``) into judge-prompt +
    judgment-token examples; records longer than ``max_length`` are skipped and counted."""
    from transformers import AutoTokenizer

    from rewardbridge.models import resolve_model
    from rewardbridge.training.sft_data import balance_classes, build_sft_examples

    def as_rows(rs: Sequence[DistillRecord] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [r.to_dict() if isinstance(r, DistillRecord) else dict(r) for r in rs]

    rows = as_rows(records)
    if config.balance:
        rows = [dict(r) for r in balance_classes(rows, seed=config.seed)]
    if not rows:
        raise ValueError("no training records (after class balancing)")
    yes = sum(r["judgment"] == "YES" for r in rows)
    source = resolve_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    built = build_sft_examples(rows, tokenizer, max_length=config.max_length)
    if not built.examples:
        raise ValueError(f"every record is longer than max_length={config.max_length} tokens")
    if built.too_long:
        log.warning("skipped %d records longer than %d tokens", built.too_long, config.max_length)
    eval_examples = (
        build_sft_examples(as_rows(eval_records), tokenizer, max_length=config.max_length).examples
        if eval_records
        else []
    )
    counts = {
        "examples": len(built.examples),
        "yes": yes,
        "no": len(rows) - yes,
        "skipped_too_long": built.too_long,
    }
    return _Prepared(source, tokenizer, list(built.examples), list(eval_examples), counts)


def _lora_config(config: DistillTrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def build_trainer(
    records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]],
    base_model: str | os.PathLike[str] | None,
    work_dir: str | Path,
    config: DistillTrainConfig | None = None,
    *,
    eval_records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]] | None = None,
) -> tuple[Any, Any, dict[str, int]]:
    """TRL's SFTTrainer on the judgment-token examples of ``records``: (trainer, tokenizer, counts).

    The dataset is pre-tokenized (``input_ids`` + ``completion_mask``); with
    ``completion_only_loss=True`` TRL sets the label of every other position to -100.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    config = config or DistillTrainConfig()
    prep = _prepare(records, base_model, config, eval_records)
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(prep.source, dtype=torch.float32)
    peft_config = _lora_config(config) if config.lora else None
    args = SFTConfig(
        output_dir=str(Path(work_dir) / "trainer"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        completion_only_loss=True,
        bf16=resolve_dtype(config.dtype) is torch.bfloat16,  # autocast; fp32 master weights
        fp16=False,
        use_cpu=not torch.cuda.is_available(),  # bf16 autocast on a CPU needs it said
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=config.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(prep.examples),
        eval_dataset=Dataset.from_list(prep.eval_examples) if prep.eval_examples else None,
        processing_class=prep.tokenizer,
        peft_config=peft_config,
    )
    return trainer, prep.tokenizer, prep.counts


def _train_prefix(
    records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]],
    base_model: str | os.PathLike[str] | None,
    config: DistillTrainConfig,
    eval_records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]] | None,
    progress: Callable[[str], None] | None,
    on_examples: Callable[[int, Any], None] | None = None,
) -> tuple[Any, Any, dict[str, int], Any]:
    """The prefix-shared SFT loop: (model, tokenizer, counts, PrefixSFTResult)."""
    import torch
    from transformers import AutoModelForCausalLM

    from rewardbridge.models import resolve_dtype
    from rewardbridge.training.distill.prefix_sft import train_prefix_shared

    prep = _prepare(records, base_model, config, eval_records)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(config.seed)
    model: Any = AutoModelForCausalLM.from_pretrained(prep.source, dtype=torch.float32)
    model = model.to(device)
    if config.lora:
        from peft import get_peft_model

        model = get_peft_model(model, _lora_config(config))
    run = train_prefix_shared(
        model,
        [e["input_ids"] for e in prep.examples],
        pad_id=int(prep.tokenizer.pad_token_id),
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        bf16=resolve_dtype(config.dtype, device) is torch.bfloat16,
        seed=config.seed,
        eval_examples=[e["input_ids"] for e in prep.eval_examples] or None,
        progress=progress,
        on_examples=None if on_examples is None else (lambda n: on_examples(n, model)),
    )
    model.eval()
    return model, prep.tokenizer, prep.counts, run


def train_verifier(
    records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]],
    base_model: str | os.PathLike[str] | None,
    output_dir: str | Path,
    config: DistillTrainConfig | None = None,
    *,
    eval_records: Sequence[DistillRecord] | Sequence[Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    on_examples: Callable[[int, Any], None] | None = None,
) -> TrainSummary:
    """Fine-tune ``base_model`` on the judgment token of ``records``; save a plain HF folder
    (atomically: built beside ``output_dir``, then renamed over it). With the prefix trainer,
    ``on_examples(n, model)`` is called after each step (n: examples trained on so far)."""
    import time

    from rewardbridge.models import resolve_model

    config = config or DistillTrainConfig()
    output = Path(output_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        if config.trainer == "prefix":
            trained, tokenizer, counts, run = _train_prefix(
                records, base_model, config, eval_records, progress, on_examples
            )
            steps, train_loss, eval_loss = run.steps, run.train_loss, run.eval_loss
            seconds = run.seconds
        else:
            trainer, tokenizer, counts = build_trainer(
                records, base_model, work, config, eval_records=eval_records
            )
            start = time.perf_counter()
            result = trainer.train()
            eval_loss = (
                trainer.evaluate()["eval_loss"] if trainer.eval_dataset is not None else None
            )
            seconds = round(time.perf_counter() - start, 1)
            trained, steps, train_loss = (
                trainer.model,
                int(result.global_step),
                result.training_loss,
            )

        if config.lora:
            trained = trained.merge_and_unload()
        final = work / "model"
        trained.save_pretrained(final, safe_serialization=True)
        tokenizer.save_pretrained(final)
        summary = TrainSummary(
            output_dir=str(output),
            steps=steps,
            train_loss=None if train_loss is None else float(train_loss),
            eval_loss=None if eval_loss is None else float(eval_loss),
            seconds=seconds,
            **counts,
        )
        (final / "distill.json").write_text(
            json.dumps(
                {
                    "base_model": resolve_model(base_model),
                    "config": asdict(config),
                    "summary": summary.to_dict(),
                },
                indent=2,
            )
        )
        if output.exists():
            shutil.rmtree(output)
        os.replace(final, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary
