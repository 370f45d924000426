"""RL training of a policy against any verifier, on TRL's ``GRPOTrainer``.

TRL does the generation (transformers or vLLM), the clipped policy-gradient loss, PEFT/LoRA,
accelerate/DeepSpeed/FSDP, checkpoints and logging. We plug in two things:

1. ``VerifierReward`` (``training/reward_fn.py``, the one TRL reward adapter): judges each
   completion with a verifier of ours; an unjudged completion returns ``None``, which TRL turns
   into NaN and excludes. It also records every judgment (``logging.record_judgments``) and
   mixes live master-key canaries into each judge call (``canaries``), never into the rewards.
2. ``RewardBridgeGRPOTrainer`` (``training/trainer.py``): replaces TRL's advantages by
   ``rewardbridge.rewards.compute_advantages`` with our estimator, Eq. 5 normalisation and
   optionally the Eq. 6 KL penalty in the reward.

Departures from the paper (see docs/paper_index.md): by default the KL term is TRL's per-token
k3 penalty in the loss (``algorithm.kl_in: loss``); ``kl_in: reward`` applies Eq. 6 to the
normalised reward with a sequence-level k1 (or k3) estimate. The policy loss is PPO-clipped
with one update per batch (ratio 1), which is the paper's REINFORCE-style gradient.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardbridge.data.example import Example
from rewardbridge.training.config import RunConfig
from rewardbridge.training.data import load_training_examples, to_dataset, write_heldout
from rewardbridge.training.metrics import truncate_metrics
from rewardbridge.training.reward_fn import VerifierReward
from rewardbridge.verifiers.base import Verifier

if TYPE_CHECKING:
    from rewardbridge.judging.canaries import CanaryMonitor
    from rewardbridge.judging.recorder import JudgmentRecorder

__all__ = [
    "TrainResult",
    "build_trainer",
    "grpo_arguments",
    "load_training_examples",
    "peft_config",
    "to_dataset",
    "train",
]

log = logging.getLogger(__name__)


# ---- the run ---------------------------------------------------------------------------------


def grpo_arguments(config: RunConfig) -> dict[str, Any]:
    """Our config -> ``trl.GRPOConfig`` keyword arguments."""
    import torch

    t, g, a = config.training, config.generation, config.algorithm
    use_cpu = t.use_cpu if t.use_cpu is not None else not torch.cuda.is_available()
    completions = config.completions_per_step
    return {
        # Always passed: TRL's GRPOConfig turns it on by default, which recomputes every
        # forward in the backward (about a third of the update on a CPU) when ours says off.
        _checkpointing_name(): config.model.gradient_checkpointing,
        "output_dir": t.output_dir,
        "per_device_train_batch_size": t.per_device_batch_size or completions,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "generation_batch_size": completions,
        "num_generations": g.num_generations,
        "max_completion_length": g.max_completion_length,
        "temperature": g.temperature,
        "top_p": g.top_p,
        # vLLM's SamplingParams and transformers' generate name the floor differently
        "generation_kwargs": (
            {("min_tokens" if g.use_vllm else "min_new_tokens"): g.min_completion_length}
            if g.min_completion_length
            else None
        ),
        "use_vllm": g.use_vllm,
        "vllm_mode": g.vllm_mode,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_steps": t.warmup_steps,
        "max_steps": t.max_steps,
        "max_grad_norm": t.max_grad_norm,
        "seed": t.seed,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "use_cpu": use_cpu,
        "bf16": policy_precision(config)[1],
        "beta": a.beta if a.kl_in == "loss" else 0.0,
        "epsilon": a.clip_epsilon,
        "num_iterations": a.num_iterations,
        "loss_type": a.loss_type,
        # TRL's own advantages are replaced; this only keeps its logged zero-std fraction honest.
        "scale_rewards": "group",
        "shuffle_dataset": config.data.shuffle,
        "logging_steps": config.logging.logging_steps,
        "report_to": config.logging.report_to,
        "log_completions": config.logging.log_completions,
        "disable_dropout": True,
    }


def policy_precision(config: RunConfig, device: str | None = None) -> tuple[Any, bool]:
    """(the policy's weight dtype, bfloat16 autocast on) for a run.

    ``model.dtype`` resolves as everywhere (``models.resolve_dtype``). Autocast
    (``training.bf16``, default: on when that dtype is bfloat16) runs the forward and backward
    in bfloat16 while the trained weights stay float32: measured on the 2-core AMX CPU, one LoRA
    micro-batch (8 x 232 tokens) takes 3.3-3.5 s against 4.6 s with bf16 base weights and the
    float32 adapter computed in float32, and 6.0 s in float32. With LoRA the frozen base is
    loaded in the resolved dtype; full fine-tuning under "auto" keeps float32 weights (Adam
    updates to bfloat16 weights would be rounded away) and gets its speed from autocast.
    """
    import torch

    from rewardbridge.models import resolve_dtype

    m = config.model
    if device is None:
        on_cpu = config.training.use_cpu or not torch.cuda.is_available()
        device = "cpu" if on_cpu else "cuda"
    resolved = resolve_dtype(m.dtype, device)
    bf16 = config.training.bf16 if config.training.bf16 is not None else resolved is torch.bfloat16
    weights = torch.float32 if not m.lora and m.dtype == "auto" and bf16 else resolved
    return weights, bf16


def _checkpointing_name() -> str:
    """transformers >= 5.2x renamed ``gradient_checkpointing`` (now a deprecated alias)."""
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}
    new = "activation_checkpointing"
    return new if new in names else "gradient_checkpointing"


def peft_config(config: RunConfig) -> Any:
    if not config.model.lora:
        return None
    from peft import LoraConfig

    m = config.model
    return LoraConfig(
        r=m.lora_r,
        lora_alpha=m.lora_alpha,
        lora_dropout=m.lora_dropout,
        target_modules=m.lora_target_modules,
        task_type="CAUSAL_LM",
    )


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    final_model: Path
    metrics_path: Path
    heldout: list[Example]
    global_step: int
    stopped_by_canaries: bool = False


def build_trainer(
    config: RunConfig,
    train_examples: Sequence[Example],
    verifier: Verifier,
    *,
    policy: tuple[Any, Any] | None = None,
    extra_callbacks: Sequence[Any] = (),
    extra_reward_funcs: Sequence[Any] = (),
    recorder: JudgmentRecorder | None = None,
    canaries: CanaryMonitor | None = None,
) -> Any:
    """A ready ``RewardBridgeGRPOTrainer`` for ``config`` (the model is loaded unless given).

    ``extra_reward_funcs`` (TRL reward functions, weight 1 each) are added to the verifier's
    reward; a sample any of them did not score is unjudged (``combine_rewards``)."""
    from trl import GRPOConfig

    from rewardbridge.models import float32_grad_attention, load_causal_lm
    from rewardbridge.training.trainer import AdvantageSettings, RewardBridgeGRPOTrainer

    if policy is None:
        # dtype "auto": bfloat16 where the CPU/GPU computes it natively; see policy_precision.
        model, tokenizer = load_causal_lm(
            config.model.policy, device="cpu", dtype=policy_precision(config)[0]
        )
    else:
        model, tokenizer = policy
    float32_grad_attention(model, config.training.float32_grad_attention)
    model.train()
    reward = VerifierReward(
        verifier, name=f"verifier_{verifier.name}", recorder=recorder, canaries=canaries
    )
    return RewardBridgeGRPOTrainer(
        model=model,
        reward_funcs=[reward, *extra_reward_funcs],
        args=GRPOConfig(**grpo_arguments(config)),
        train_dataset=to_dataset(train_examples, config.data.system_prompt),
        processing_class=tokenizer,
        peft_config=peft_config(config),
        callbacks=list(extra_callbacks),
        advantage=AdvantageSettings.from_config(config),
        shared_prefill=config.generation.shared_prefill,
        merge_adapter=config.generation.merge_adapter,
        inverse_cdf_sampling=config.generation.inverse_cdf_sampling,
        shared_prompt_forward=config.training.shared_prompt_forward,
    )


def _checkpoint_step(checkpoint: str) -> int:
    return int(Path(checkpoint).name.split("-")[-1])


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    verifier: Verifier | None = None,
    policy: tuple[Any, Any] | None = None,
) -> TrainResult:
    """Run RL training as configured; ``resume`` continues from the last checkpoint."""
    from transformers.trainer_callback import ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint

    from rewardbridge.training.trainer import CanaryStopCallback, MetricsCallback
    from rewardbridge.verifiers.registry import build_verifier

    config.check_paths()
    if config.training.torch_threads:
        import torch

        torch.set_num_threads(config.training.torch_threads)
    out = Path(config.training.output_dir)
    checkpoint = get_last_checkpoint(str(out)) if resume and out.is_dir() else None
    if resume and checkpoint is None:
        raise ValueError(f"--resume: no checkpoint-* folder in {out}; start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics_path = out / "metrics.jsonl"
    if checkpoint is not None:
        truncate_metrics(metrics_path, _checkpoint_step(checkpoint))
    elif metrics_path.exists():
        metrics_path.unlink()
    train_examples, heldout = load_training_examples(config)
    if heldout:
        write_heldout(out / "heldout.jsonl", heldout)
    own_verifier = verifier is None
    judge = verifier or build_verifier(config.verifier.name, **config.verifier.options)
    recorder = _recorder(config)
    canaries = _canaries(config, judge)
    callbacks: list[Any] = [MetricsCallback(metrics_path, config.training.max_steps)]
    if canaries is not None:
        callbacks.append(CanaryStopCallback(canaries))
    try:
        trainer = build_trainer(
            config,
            train_examples,
            judge,
            policy=policy,
            extra_callbacks=callbacks,
            recorder=recorder,
            canaries=canaries,
        )
        trainer.remove_callback(ProgressCallback)  # its per-log dict dump; we print one line
        log.info(
            "training %s: %d prompts, %d x %d completions per step, estimator %s, verifier %s%s",
            out,
            len(train_examples),
            config.training.prompts_per_step,
            config.generation.num_generations,
            config.algorithm.estimator,
            judge.name,
            f", canaries {canaries.share:.0%} of judge calls" if canaries else "",
        )
        trainer.train(resume_from_checkpoint=checkpoint)
        final = out / "final"
        trainer.save_model(str(final))
        trainer.processing_class.save_pretrained(str(final))
        step = int(trainer.state.global_step)
    finally:
        if recorder is not None:
            recorder.close()
        if own_verifier:
            judge.close()
    stopped = canaries is not None and canaries.should_stop
    if canaries is not None:
        canaries.log_summary()
    return TrainResult(out, final, metrics_path, heldout, step, stopped_by_canaries=stopped)


def _recorder(config: RunConfig) -> JudgmentRecorder | None:
    """Each process judges its own completions; with several (accelerate, torchrun) each writes
    ``FILE.rank<N>.jsonl`` of its own, since concurrent appends of long lines may interleave.
    (``cat`` them into one file: the store keeps the first record of a repeated id.)"""
    if config.logging.record_judgments is None:
        return None
    from rewardbridge.judging.recorder import JudgmentRecorder

    path = Path(config.logging.record_judgments)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        rank = int(os.environ.get("RANK", "0"))
        path = path.with_name(f"{path.stem}.rank{rank}{path.suffix or '.jsonl'}")
    return JudgmentRecorder(path)


def _canaries(config: RunConfig, verifier: Verifier) -> CanaryMonitor | None:
    from rewardbridge.judging.canaries import CanaryMonitor, is_model_based

    c = config.canaries
    enabled = c.enabled if c.enabled is not None else is_model_based(verifier)
    if not enabled or c.share == 0:
        return None
    return CanaryMonitor(
        share=c.share,
        max_fpr=c.max_fpr,
        on_exceed=c.on_exceed,
        min_probes=c.min_probes,
        seed=c.seed,
    )
