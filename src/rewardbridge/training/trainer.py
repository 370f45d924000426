"""``RewardBridgeGRPOTrainer``: TRL's ``GRPOTrainer`` with our advantages (imports TRL).

Overrides ``_calculate_rewards`` (to keep the gathered rewards per function and time the
verifier) and ``_generate_and_score_completions`` (to replace TRL's advantages by
``rewardbridge.rewards.compute_advantages`` with our estimator, Eq. 5 normalisation and
optionally the Eq. 6 KL penalty in the reward). Relies on TRL >= 1.16, < 2: both methods and
the ``advantages``, ``prompt_ids``/``completion_ids``/masks keys of the returned batch. For
speed it also wraps ``_generate_single_turn`` (bf16 autocast; each group's prompt computed once,
``shared_prompts``; a LoRA adapter merged, ``merged_adapter``),
``_get_per_token_logps_and_entropies`` (TRL's fused head made cheap on a CPU, ``fused_head``;
LoRA inputs left in bf16 under autocast; each distinct prompt of a chunk run once,
``shared_prompt_forward``) and
``_prepare_inputs`` (micro-batches cut by whole groups for that sharing).

Several reward functions combine with ``combine_rewards`` (NaN where any did not judge), not
TRL's ``nansum``. The callbacks here write ``metrics.jsonl`` and stop a run whose live canaries
(``rewardbridge.judging.canaries``) crossed their threshold with ``on_exceed: stop``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import gather, is_peft_model
from transformers import TrainerCallback
from trl import GRPOTrainer
from trl.trainer.utils import use_adapter

from rewardbridge.rewards.advantages import compute_advantages, get_estimator
from rewardbridge.rewards.kl import sequence_kl
from rewardbridge.rewards.normalize import zscore
from rewardbridge.training.config import RunConfig
from rewardbridge.training.fused_head import cpu_head_tiles, labelled_positions_only
from rewardbridge.training.metrics import console_line, metrics_row
from rewardbridge.training.reward_fn import combine_rewards

if TYPE_CHECKING:
    from rewardbridge.judging.canaries import CanaryMonitor

log = logging.getLogger(__name__)


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


class RewardBridgeGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose advantages come from ``rewardbridge.rewards.compute_advantages``."""

    def __init__(
        self,
        *args: Any,
        advantage: AdvantageSettings,
        shared_prefill: bool = True,
        merge_adapter: bool = True,
        inverse_cdf_sampling: bool = True,
        shared_prompt_forward: bool = True,
        **kwargs: Any,
    ) -> None:
        get_estimator(advantage.estimator)  # fail early on a bad name
        self.advantage_settings = advantage
        self.shared_prefill = shared_prefill
        self.merge_adapter = merge_adapter
        self.inverse_cdf_sampling = inverse_cdf_sampling
        self.shared_prompt_forward = shared_prompt_forward
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

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        """TRL's sampling, under bfloat16 autocast when training uses it (``args.bf16``).

        TRL autocasts the loss's forward but not ``generate``: a bfloat16 base with a float32
        LoRA adapter then runs every adapter matmul in float32 with a cast on each side. With
        autocast (and peft's input casting off) the adapter computes in bfloat16 as in the
        loss: 24 x 32 tokens, 7.0-7.7 s against 8.0-9.2 s on the 2-core CPU. A LoRA adapter is
        merged into copies of the base weights meanwhile (``merged_adapter``), and tokens are
        drawn by ``policy.sampler.inverse_cdf_sampling``."""
        from rewardbridge.policy.sampler import inverse_cdf_sampling
        from rewardbridge.training.merged_adapter import merged_adapter

        with contextlib.ExitStack() as stack:
            stack.enter_context(inverse_cdf_sampling(self.inverse_cdf_sampling))
            if self.args.bf16 and not self.use_vllm:
                stack.enter_context(self.accelerator.autocast())
                stack.enter_context(self._adapter_inputs_uncast())
            if self.merge_adapter and not self.use_vllm:
                stack.enter_context(merged_adapter(self.accelerator.unwrap_model(self.model)))
            batched = getattr(self, "use_transformers_continuous_batching", False)
            if self.shared_prefill and not (self.use_vllm or batched):
                stack.enter_context(self._one_prompt_forward_per_group())
            return super()._generate_single_turn(*args, **kwargs)

    @contextlib.contextmanager
    def _one_prompt_forward_per_group(self) -> Iterator[None]:
        """While TRL samples, its ``generate`` call gets a cache of each group's prompt computed
        once (``shared_prompts.prefill_shared_prompts``); a call with other inputs (images,
        rows not in groups) runs as it is."""
        from rewardbridge.training.shared_prompts import prefill_shared_prompts

        model = self.accelerator.unwrap_model(self.model_wrapped)
        group = self._group_size()[1]
        original = model.generate
        own = "generate" in vars(model)

        def generate(*args: Any, **kwargs: Any) -> Any:
            ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
            plain = set(kwargs) <= {"input_ids", "attention_mask", "generation_config"}
            if args or not plain or ids is None or mask is None:
                return original(*args, **kwargs)
            cache = prefill_shared_prompts(model, ids, mask, group, kwargs.get("generation_config"))
            return original(**kwargs, **({} if cache is None else {"cache": cache}))

        model.generate = generate
        try:
            yield
        finally:
            if own:
                model.generate = original
            else:
                del model.generate

    def _prepare_inputs(self, generation_batch: Any) -> Any:
        """TRL's buffering of a generation batch into micro-batches; with the shared prompt
        forward its shuffle moves whole groups (``shared_prompts.shuffle_groups``), so each
        micro-batch of 8 holds 2 prompts' samples instead of ~5 prompts' (6 groups of 4).
        Only where every micro-batch of a generation batch feeds the same optimizer step
        (``steps_per_generation`` = ``gradient_accumulation_steps``, as our recipes set it) and
        the loss weighs a row the same wherever it falls (every loss type but ``bnpo``, which
        divides by the micro-batch's own token count): there it is the same update."""
        from rewardbridge.training.shared_prompts import trl_shuffles_groups

        mode, group = self._group_size()
        rows = self.args.per_device_train_batch_size
        steps = getattr(self.args, "steps_per_generation", None)  # a GRPOConfig field
        if not (
            self.shared_prompt_forward and mode == "train" and self.loss_type != "bnpo"
            and self._one_plain_process() and rows % group == 0
            and steps == self.args.gradient_accumulation_steps
        ):  # fmt: skip
            return super()._prepare_inputs(generation_batch)
        with trl_shuffles_groups(group):
            return super()._prepare_inputs(generation_batch)

    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **extra: Any,
    ) -> Any:
        """TRL's log-probs with the fused head on completion positions only (in small tiles on
        a CPU, ``cpu_head_tiles``), under bf16 autocast
        the adapter's inputs left in bfloat16 (the model's forward is autocast), and each
        distinct prompt of a chunk computed once (``shared_prompt_forward``; text only, one
        process, no MoE auxiliary loss; otherwise TRL's own loop)."""
        from rewardbridge.training.shared_prompts import logps_each_prompt_once

        trl = super()._get_per_token_logps_and_entropies
        with (
            labelled_positions_only(),
            cpu_head_tiles(input_ids.device),
            self._adapter_inputs_uncast(),
        ):
            text_only = all(v is None for v in extra.values()) and not compute_aux_loss
            if not (self.shared_prompt_forward and text_only and self._one_plain_process()):
                return trl(
                    model, input_ids, attention_mask, logits_to_keep, batch_size,
                    compute_entropy, compute_aux_loss, **extra,
                )  # fmt: skip

            def plain(ids: torch.Tensor, mask: torch.Tensor) -> Any:  # a chunk TRL's way
                return trl(model, ids, mask, logits_to_keep, None, compute_entropy)[:2]

            logps, entropies = logps_each_prompt_once(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                plain=plain, autocast=self.accelerator.autocast,
            )  # fmt: skip
            return logps, entropies, None

    def _one_plain_process(self) -> bool:
        """One process and no activation checkpointing (its recomputed forward would append the
        prompt cache's keys a second time): where the shared prompt forward applies."""
        checkpointing = getattr(self.args, "activation_checkpointing", None)
        if checkpointing is None:
            checkpointing = getattr(self.args, "gradient_checkpointing", False)
        return self.accelerator.num_processes == 1 and not checkpointing

    def _adapter_inputs_uncast(self) -> contextlib.AbstractContextManager[Any]:
        """Under bf16 autocast, stop peft casting each LoRA input to the adapter's float32.

        peft casts the bfloat16 activation to float32 before ``lora_A`` and autocast casts it
        straight back for the matmul: two copies of every adapted layer's input, forward and
        backward. Without them the adapter computes in bfloat16 with float32 weights, as
        autocast intends; only safe where autocast is on (the forward would mix dtypes)."""
        model = self.accelerator.unwrap_model(self.model)
        if not (self.args.bf16 and is_peft_model(model)):
            return contextlib.nullcontext()
        from peft.helpers import disable_input_dtype_casting

        return disable_input_dtype_casting(model)

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

    def _group_size(self) -> tuple[str, int]:
        """("train" or "eval", the samples per prompt TRL draws in that mode)."""
        mode = "train" if getattr(self.model, "training", True) else "eval"
        n_eval = self.num_generations_eval
        group = self.num_generations if mode == "train" or not n_eval else n_eval
        assert group is not None
        return mode, group

    def _generate_and_score_completions(self, inputs):
        start = time.perf_counter()
        batch = super()._generate_and_score_completions(inputs)
        mode, group = self._group_size()
        assert self._gathered_rewards is not None
        rewards = combine_rewards(self._gathered_rewards, self.reward_weights)
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
        m["rb/frac_groups_std0"].append(sum(float(s.item() < 1e-8) for s in spread) / len(spread))
        m["rb/unjudged"].append(float(torch.isnan(rewards).sum().item()))
        m["rb/advantage_abs_mean"].append(advantages.abs().mean().item())
        if kl is not None:
            m["rb/kl_reward"].append(kl.float().mean().item())


class MetricsCallback(TrainerCallback):
    """Appends one row per logged step to metrics.jsonl and prints a one-line summary."""

    def __init__(self, metrics_path: Path, max_steps: int) -> None:
        self.metrics_path = metrics_path
        self.max_steps = max_steps

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row = metrics_row(state.global_step, logs)
        if row is None:
            return
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        log.info(console_line(row, self.max_steps))


class CanaryStopCallback(TrainerCallback):
    """Ends training after the step whose canary FPR crossed ``max_fpr`` (``on_exceed: stop``);
    the final model is still saved, ``train`` reports the stop. With several processes (each
    probes its own judge calls) all stop when any one does, so none waits on the others."""

    def __init__(self, monitor: CanaryMonitor) -> None:
        self.monitor = monitor

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        stop = self.monitor.should_stop
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([float(stop)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item() > 0)
            self.monitor.should_stop = stop
        if stop:
            control.should_training_stop = True
