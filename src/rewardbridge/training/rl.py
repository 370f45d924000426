"""RL training of a policy against any verifier, on TRL's ``GRPOTrainer``.

TRL does the generation (transformers or vLLM), the clipped policy-gradient loss, PEFT/LoRA,
accelerate/DeepSpeed/FSDP, checkpoints and logging. We plug in two things:

1. ``VerifierReward``: a TRL reward function that judges each completion with a verifier of
   ours (question and reference come from dataset columns); an unjudged completion returns
   ``None``, which TRL turns into NaN and excludes.
2. ``RewardBridgeGRPOTrainer``: overrides ``_calculate_rewards`` (to keep the gathered rewards)
   and ``_generate_and_score_completions`` (to replace TRL's advantages by
   ``rewardbridge.rewards.compute_advantages`` with our estimator, Eq. 5 normalisation and
   optionally the Eq. 6 KL penalty in the reward). Relies on TRL >= 1.16, < 2: both methods and
   the ``advantages``, ``prompt_ids``/``completion_ids``/masks keys of the returned batch.

Departures from the paper (see docs/paper_index.md): by default the KL term is TRL's per-token
k3 penalty in the loss (``algorithm.kl_in: loss``); ``kl_in: reward`` applies Eq. 6 to the
normalised reward with a sequence-level k1 (or k3) estimate. The policy loss is PPO-clipped
with one update per batch (ratio 1), which is the paper's REINFORCE-style gradient.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.rewards.advantages import compute_advantages, get_estimator
from rewardbridge.rewards.kl import sequence_kl
from rewardbridge.rewards.normalize import zscore
from rewardbridge.training.config import RunConfig
from rewardbridge.policy.generation import PAPER_POLICY_SYSTEM_PROMPT
from rewardbridge.training.metrics import console_line, metrics_row, truncate_metrics
from rewardbridge.verifiers.base import Verifier

log = logging.getLogger(__name__)

TRL_VERSION_RANGE = ">=1.16,<2"


def completion_text(completion: Any) -> str:
    """TRL passes a conversational completion as a list of messages, a plain one as a string."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")


class VerifierReward:
    """A TRL reward function judging each completion with ``verifier``; None = unjudged.

    Needs the dataset columns ``question`` and ``reference`` (``example_id``, ``domain`` are
    passed on when present). ``seconds`` accumulates the time spent judging.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.__name__ = f"verifier_{verifier.name}"
        self.seconds = 0.0

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        question: Sequence[str],
        reference: Sequence[str],
        example_id: Sequence[str] | None = None,
        domain: Sequence[str | None] | None = None,
        **_: Any,
    ) -> list[float | None]:
        start = time.perf_counter()
        items = [
            JudgeItem(
                id=example_id[i] if example_id else str(i),
                question=question[i],
                reference=reference[i],
                response=completion_text(completions[i]),
                domain=domain[i] if domain else None,
            )
            for i in range(len(completions))
        ]
        results = self.verifier.verify(items)
        self.seconds += time.perf_counter() - start
        return [r.score for r in results]


@dataclass(frozen=True)
class AdvantageSettings:
    """What our hook computes in place of TRL's advantages."""

    estimator: str = "rloo"
    normalize: str | None = None
    beta: float = 0.0  # KL in the reward (Eq. 6); 0 when the KL is in TRL's loss
    kl_estimator: str = "k1"
    token_weighted_whitening: bool = False

    @classmethod
    def from_config(cls, config: RunConfig) -> AdvantageSettings:
        algo = config.algorithm
        return cls(
            estimator=algo.estimator,
            normalize=algo.normalize,
            beta=algo.beta if algo.kl_in == "reward" else 0.0,
            kl_estimator=algo.kl_estimator,
            token_weighted_whitening=algo.token_weighted_whitening,
        )


def _trainer_class() -> type[Any]:
    """Defined lazily so that importing this module does not import TRL."""
    import torch
    from accelerate.utils import gather, is_peft_model
    from trl import GRPOTrainer
    from trl.trainer.utils import use_adapter

    class RewardBridgeGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose advantages come from ``rewardbridge.rewards.compute_advantages``."""

        def __init__(self, *args: Any, advantage: AdvantageSettings, **kwargs: Any) -> None:
            get_estimator(advantage.estimator)  # fail early on a bad name
            self.advantage_settings = advantage
            self._gathered_rewards: torch.Tensor | None = None
            self._verify_seconds = 0.0
            super().__init__(*args, **kwargs)
            self._kl_ref_model = None
            if advantage.beta > 0 and not is_peft_model(self.model):
                # Eq. 6 needs pi_ref = the initial policy (with LoRA: the adapter disabled).
                self._kl_ref_model = copy.deepcopy(self.accelerator.unwrap_model(self.model))
                self._kl_ref_model.eval().requires_grad_(False)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            start = time.perf_counter()
            rewards_per_func = super()._calculate_rewards(
                inputs, prompts, completions, completion_ids_list
            )
            self._verify_seconds = time.perf_counter() - start
            self._gathered_rewards = rewards_per_func
            return rewards_per_func

        def _sequence_kl(self, batch: dict[str, Any]) -> torch.Tensor:
            ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
            mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
            keep = batch["completion_ids"].size(1)
            size = self.args.per_device_train_batch_size
            with torch.no_grad():
                logp, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, ids, mask, keep, batch_size=size
                )
                if self._kl_ref_model is not None:
                    ref, _, _ = self._get_per_token_logps_and_entropies(
                        self._kl_ref_model, ids, mask, keep, batch_size=size
                    )
                else:
                    with use_adapter(self.accelerator.unwrap_model(self.model), adapter_name=None):
                        ref, _, _ = self._get_per_token_logps_and_entropies(
                            self.model, ids, mask, keep, batch_size=size
                        )
            return sequence_kl(
                logp, ref, batch["completion_mask"], self.advantage_settings.kl_estimator
            )

        def _generate_and_score_completions(self, inputs):
            start = time.perf_counter()
            batch = super()._generate_and_score_completions(inputs)
            mode = "train" if getattr(self.model, "training", True) else "eval"
            n_eval = self.num_generations_eval
            group = self.num_generations if mode == "train" or not n_eval else n_eval
            assert group is not None
            assert self._gathered_rewards is not None
            per_func = self._gathered_rewards
            weights = self.reward_weights.to(per_func.device).unsqueeze(0)
            rewards = (per_func * weights).nansum(dim=1)
            rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
            settings = self.advantage_settings
            kl = gather(self._sequence_kl(batch)) if settings.beta > 0 else None
            counts = None
            if settings.token_weighted_whitening:
                counts = gather(batch["completion_mask"].sum(dim=1))
            advantages = compute_advantages(
                rewards,
                group,
                settings.estimator,
                normalize=settings.normalize,
                kl=kl,
                beta=settings.beta,
                token_counts=counts,
            )
            local = slice(
                self.accelerator.process_index * len(inputs),
                (self.accelerator.process_index + 1) * len(inputs),
            )
            batch["advantages"] = advantages[local].to(batch["advantages"].dtype)
            self._log_reward_metrics(mode, rewards, advantages, group, kl)
            rollout = time.perf_counter() - start
            self._metrics[mode]["rb/time_verification_s"].append(self._verify_seconds)
            self._metrics[mode]["rb/time_generation_s"].append(rollout - self._verify_seconds)
            return batch

        def _log_reward_metrics(
            self,
            mode: str,
            rewards: torch.Tensor,
            advantages: torch.Tensor,
            group: int,
            kl: torch.Tensor | None,
        ) -> None:
            judged = rewards[~torch.isnan(rewards)]
            rewards_BG = rewards.view(-1, group).double()
            scope = (
                self.advantage_settings.normalize
                or get_estimator(self.advantage_settings.estimator).default_normalize
            )
            normed = zscore(rewards_BG, scope)
            normed = normed[~torch.isnan(normed)]
            judged_BG = ~torch.isnan(rewards_BG)
            spread = [
                row[ok].max() - row[ok].min() if ok.sum() > 1 else torch.tensor(0.0)
                for row, ok in zip(rewards_BG, judged_BG, strict=True)
            ]
            m = self._metrics[mode]
            nan = float("nan")
            m["rb/reward_mean"].append(judged.mean().item() if judged.numel() else nan)
            m["rb/reward_std"].append(judged.std().item() if judged.numel() > 1 else nan)
            m["rb/reward_norm_mean"].append(normed.mean().item() if normed.numel() else nan)
            m["rb/reward_norm_std"].append(normed.std().item() if normed.numel() > 1 else nan)
            m["rb/frac_groups_std0"].append(
                sum(float(s.item() < 1e-8) for s in spread) / len(spread)
            )
            m["rb/unjudged"].append(float((~torch.isnan(rewards)).logical_not().sum().item()))
            m["rb/advantage_abs_mean"].append(advantages.abs().mean().item())
            if kl is not None:
                m["rb/kl_reward"].append(kl.float().mean().item())

    return RewardBridgeGRPOTrainer


def trainer_class() -> type[Any]:
    """``RewardBridgeGRPOTrainer`` (imports TRL)."""
    return _trainer_class()


# ---- data ------------------------------------------------------------------------------------


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


def to_dataset(examples: Sequence[Example], system_prompt: str | None) -> Any:
    """A ``datasets.Dataset`` in TRL's conversational format, with the columns our reward reads."""
    from datasets import Dataset

    system = system_prompt if system_prompt is not None else PAPER_POLICY_SYSTEM_PROMPT
    return Dataset.from_list(
        [
            {
                "prompt": ex.messages(system),
                "question": ex.question,
                "reference": ex.reference,
                "example_id": ex.id,
                "domain": ex.domain or "",
            }
            for ex in examples
        ]
    )


# ---- the run ---------------------------------------------------------------------------------


def grpo_arguments(config: RunConfig) -> dict[str, Any]:
    """Our config -> ``trl.GRPOConfig`` keyword arguments."""
    import torch

    t, g, a = config.training, config.generation, config.algorithm
    use_cpu = t.use_cpu if t.use_cpu is not None else not torch.cuda.is_available()
    completions = config.completions_per_step
    extra: dict[str, Any] = {}
    if config.model.gradient_checkpointing:  # passed only when on: the name is changing in v6
        extra["gradient_checkpointing"] = True
    return extra | {
        "output_dir": t.output_dir,
        "per_device_train_batch_size": t.per_device_batch_size or completions,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "generation_batch_size": completions,
        "num_generations": g.num_generations,
        "max_completion_length": g.max_completion_length,
        "temperature": g.temperature,
        "top_p": g.top_p,
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
        "bf16": t.bf16,
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


def last_checkpoint(output_dir: str | Path) -> Path | None:
    folders = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir()]
    numbered = [(int(p.name.split("-")[-1]), p) for p in folders if p.name.split("-")[-1].isdigit()]
    return max(numbered)[1] if numbered else None


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    final_model: Path
    metrics_path: Path
    heldout: list[Example]
    global_step: int


def build_trainer(
    config: RunConfig,
    train_examples: Sequence[Example],
    verifier: Verifier,
    *,
    policy: tuple[Any, Any] | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> Any:
    """A ready ``RewardBridgeGRPOTrainer`` for ``config`` (the model is loaded unless given)."""
    from trl import GRPOConfig

    from rewardbridge.models import load_causal_lm

    if policy is None:
        # dtype "auto": bfloat16 weights where the CPU/GPU computes bf16 natively (LoRA adapters
        # stay float32: peft upcasts them), else float32; see models.resolve_dtype.
        model, tokenizer = load_causal_lm(
            config.model.policy, device="cpu", dtype=config.model.dtype
        )
    else:
        model, tokenizer = policy
    model.train()
    args = GRPOConfig(**grpo_arguments(config))
    trainer = trainer_class()(
        model=model,
        reward_funcs=[VerifierReward(verifier)],
        args=args,
        train_dataset=to_dataset(train_examples, config.data.system_prompt),
        processing_class=tokenizer,
        peft_config=peft_config(config),
        callbacks=list(extra_callbacks),
        advantage=AdvantageSettings.from_config(config),
    )
    return trainer


def metrics_callback(metrics_path: Path, max_steps: int) -> Any:
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """Appends one row per logged step to metrics.jsonl and prints a one-line summary."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            row = metrics_row(state.global_step, logs)
            if row is None:
                return
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            log.info(console_line(row, max_steps))

    return MetricsCallback()


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    verifier: Verifier | None = None,
    policy: tuple[Any, Any] | None = None,
) -> TrainResult:
    """Run RL training as configured; ``resume`` continues from the last checkpoint."""
    from transformers.trainer_callback import ProgressCallback

    from rewardbridge.verifiers.registry import build_verifier

    config.check_paths()
    if config.training.torch_threads:
        import torch

        torch.set_num_threads(config.training.torch_threads)
    out = Path(config.training.output_dir)
    checkpoint = last_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise ValueError(f"--resume: no checkpoint-* folder in {out}; start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics_path = out / "metrics.jsonl"
    if checkpoint is not None:
        truncate_metrics(metrics_path, int(checkpoint.name.split("-")[-1]))
    elif metrics_path.exists():
        metrics_path.unlink()
    train_examples, heldout = load_training_examples(config)
    if heldout:
        with (out / "heldout.jsonl").open("w") as fh:
            for ex in heldout:
                fh.write(
                    json.dumps(
                        {
                            "id": ex.id,
                            "question": ex.question,
                            "reference": ex.reference,
                            "domain": ex.domain,
                        }
                    )
                    + "\n"
                )
    own_verifier = verifier is None
    judge = verifier or build_verifier(config.verifier.name, **config.verifier.options)
    try:
        trainer = build_trainer(
            config,
            train_examples,
            judge,
            policy=policy,
            extra_callbacks=[metrics_callback(metrics_path, config.training.max_steps)],
        )
        trainer.remove_callback(ProgressCallback)  # its per-log dict dump; we print one line
        log.info(
            "training %s: %d prompts, %d x %d completions per step, estimator %s, verifier %s",
            out,
            len(train_examples),
            config.training.prompts_per_step,
            config.generation.num_generations,
            config.algorithm.estimator,
            judge.name,
        )
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = out / "final"
        trainer.save_model(str(final))
        trainer.processing_class.save_pretrained(str(final))
        step = int(trainer.state.global_step)
    finally:
        if own_verifier:
            judge.close()
    return TrainResult(out, final, metrics_path, heldout, step)
