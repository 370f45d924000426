"""The TRL hook: our estimators' advantages reach the trainer's batch; training moves every
trained parameter. Tiny random model with the real tokenizer, a fake verifier."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.rewards import compute_advantages
from rewardbridge.training.config import load_config
from rewardbridge.training.rl import build_trainer, to_dataset
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult

EXAMPLES = [Example(id=str(i), question=f"Question {i}?", reference=f"r{i}") for i in range(4)]


class HashVerifier(BaseVerifier):
    """A deterministic score from the response text; every 7th response is not judged."""

    name = "hash"

    def __init__(self) -> None:
        self.scores: list[float | None] = []

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        out = super().verify(items)
        self.scores.extend(r.score for r in out)
        return out

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        out = []
        for it in items:
            h = zlib.crc32(it.response.encode())
            if h % 7 == 0:
                out.append(VerifierResult.failed(Status.BACKEND_ERROR, "flaky"))
            else:
                out.append(VerifierResult.ok((h % 5) / 4))
        return out


def tiny_config(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_config(
        None,
        [
            "--training.output_dir", str(tmp_path / "run"),
            "--training.prompts_per_step", "2",
            "--generation.num_generations", "4",
            "--generation.max_completion_length", "6",
            "--training.max_steps", "2",
            "--training.learning_rate", "1e-3",
            "--logging.report_to", "none",
            "--training.use_cpu", "true",
            *extra,
        ],
    )  # fmt: skip


def fp32_trainer(tiny_model_dir: Path, tmp_path: Path, *extra: str) -> Any:
    """A trainer on the tiny model in float32, no autocast (bf16 would round the compared
    paths apart), with ``extra`` recipe flags."""
    import torch

    from rewardbridge.models import load_causal_lm

    config = tiny_config(
        tmp_path, "--model.policy", str(tiny_model_dir), "--training.bf16", "false", *extra
    )
    policy = load_causal_lm(tiny_model_dir, dtype=torch.float32)
    return build_trainer(config, EXAMPLES, HashVerifier(), policy=policy)


@pytest.mark.parametrize(
    ("estimator", "extra"),
    [
        ("rloo", ()),
        ("reinforce_pp_baseline", ("--algorithm.token_weighted_whitening", "true")),
        ("grpo", ("--algorithm.kl_in", "reward")),
    ],
)
def test_hook_puts_our_advantages_in_the_batch(
    tiny_model_dir: Path, tmp_path: Path, estimator: str, extra: tuple[str, ...]
) -> None:
    from rewardbridge.models import load_causal_lm

    config = tiny_config(
        tmp_path, "--algorithm.estimator", estimator, "--model.policy", str(tiny_model_dir), *extra
    )
    verifier = HashVerifier()
    trainer = build_trainer(config, EXAMPLES, verifier, policy=load_causal_lm(tiny_model_dir))
    rows = list(to_dataset(EXAMPLES[:2], None))
    inputs = [rows[0]] * 4 + [rows[1]] * 4
    batch = trainer._generate_and_score_completions(inputs)
    counts = batch["completion_mask"].sum(dim=1) if "token" in " ".join(extra) else None
    # kl_in=reward: at step 0 the LoRA adapter is a no-op, so the KL to the reference is 0
    expected = compute_advantages(
        verifier.scores, 4, estimator, token_counts=counts.tolist() if counts is not None else None
    )
    assert batch["advantages"].tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    assert len(verifier.scores) == 8
    logged = trainer._metrics["train"]
    judged = [s for s in verifier.scores if s is not None]
    assert logged["rb/unjudged"][-1] == 8 - len(judged)
    assert logged["rb/reward_mean"][-1] == pytest.approx(sum(judged) / len(judged), abs=1e-6)
    if "reward" in extra:
        assert logged["rb/kl_reward"][-1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bf16", [True, False])
def test_adapter_inputs_stay_bf16_only_under_autocast(
    tiny_model_dir: Path, tmp_path: Path, bf16: bool
) -> None:
    """Under bf16 autocast peft's float32 cast of each LoRA input is off during the log-prob
    forward (autocast computes the adapter in bf16 anyway); without autocast it stays on."""
    import torch
    from peft.tuners.lora import LoraLayer

    from rewardbridge.models import load_causal_lm

    dtype = torch.bfloat16 if bf16 else torch.float32
    config = tiny_config(
        tmp_path, "--model.policy", str(tiny_model_dir), "--training.bf16", str(bf16).lower()
    )
    trainer = build_trainer(
        config, EXAMPLES, HashVerifier(), policy=load_causal_lm(tiny_model_dir, dtype=dtype)
    )
    layers = [m for m in trainer.model.modules() if isinstance(m, LoraLayer)]
    assert layers
    seen: list[bool] = []
    layers[0].register_forward_pre_hook(lambda m, args: seen.append(m.cast_input_dtype_enabled))
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones_like(ids)

    def logps() -> torch.Tensor:
        out, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 3)
        return out

    fast = logps()
    assert seen == [not bf16]
    assert all(m.cast_input_dtype_enabled for m in layers)  # restored after the call
    if bf16:  # the same log-probs as with peft's casts, to bf16 precision
        trainer._adapter_inputs_uncast = contextlib.nullcontext  # type: ignore[method-assign]
        cast = logps()
        assert seen[-1] is True
        torch.testing.assert_close(fast, cast, rtol=0, atol=2e-2)


def test_sampling_computes_each_group_prompt_once_with_the_same_completions(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import rewardbridge.training.shared_prompts as shared_prompts

    calls: list[int] = []
    real = shared_prompts.prefill_shared_prompts

    def spy(
        model: object, ids: torch.Tensor, mask: torch.Tensor, group: int, gen: object
    ) -> object:
        cache = real(model, ids, mask, group, gen)
        calls.append(0 if cache is None else ids.shape[0] // group)
        return cache

    monkeypatch.setattr(shared_prompts, "prefill_shared_prompts", spy)
    rows = list(to_dataset(EXAMPLES[:2], None))
    inputs = [rows[0]] * 4 + [rows[1]] * 4

    def completions(shared: bool) -> tuple[Any, torch.Tensor]:
        trainer = fp32_trainer(
            tiny_model_dir, tmp_path, "--generation.shared_prefill", str(shared).lower()
        )
        torch.manual_seed(1)
        return trainer, trainer._generate_and_score_completions(inputs)["completion_ids"]

    _, plain = completions(False)
    assert calls == []
    trainer, shared = completions(True)
    assert calls == [2]  # one prompt forward for each of the 2 groups
    assert torch.equal(shared, plain)
    policy = trainer.accelerator.unwrap_model(trainer.model_wrapped)
    assert "generate" not in vars(policy)  # TRL's generate is back once sampling is done


def test_sampling_with_the_adapter_merged_gives_the_same_completions(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """With ``generation.merge_adapter`` TRL's sampling runs on merged copies of the weights:
    the same sampled tokens in float32, the LoRA layers merged only while sampling, and the
    base weights the update trains against the very same tensors afterwards."""
    import torch
    from peft.tuners.lora import LoraLayer

    rows = list(to_dataset(EXAMPLES[:2], None))
    inputs = [rows[0]] * 4 + [rows[1]] * 4

    def completions(merge: bool) -> tuple[torch.Tensor, list[bool], dict[str, int], Any]:
        trainer = fp32_trainer(
            tiny_model_dir, tmp_path, "--generation.merge_adapter", str(merge).lower()
        )
        torch.manual_seed(0)
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:  # peft starts B at 0, where merging changes nothing
                torch.nn.init.normal_(param, std=0.5)
        layer = next(m for m in trainer.model.modules() if isinstance(m, LoraLayer))
        merged: list[bool] = []
        layer.register_forward_pre_hook(lambda m, args: merged.append(m.merged))
        base = {n: p.data_ptr() for n, p in trainer.model.named_parameters() if "lora_" not in n}
        torch.manual_seed(1)
        ids = trainer._generate_and_score_completions(inputs)["completion_ids"]
        return ids, merged, base, trainer

    plain, unmerged, _, _ = completions(False)
    fast, merged, base, trainer = completions(True)
    # the shared prompt forward and 6 new tokens ran merged; TRL's log-prob forwards after not
    assert merged[:7] == [True] * 7 and merged[7:] and not any(merged[7:])
    assert len(unmerged) == len(merged) and not any(unmerged)
    assert torch.equal(fast, plain)
    after = {n: p.data_ptr() for n, p in trainer.model.named_parameters() if "lora_" not in n}
    assert after == base
    assert not any(m.merged for m in trainer.model.modules() if isinstance(m, LoraLayer))


@pytest.mark.parametrize("batch_size", [None, 4])
def test_loss_forward_runs_each_prompt_once_with_the_same_logps_and_gradients(
    tiny_model_dir: Path, tmp_path: Path, batch_size: int | None
) -> None:
    """``training.shared_prompt_forward``: each distinct prompt of a chunk runs once and its
    rows continue from its cache; log-probs, entropies and LoRA gradients are the plain
    forward's (float32), with fewer prompt rows through the model."""
    import torch

    def run(shared: bool) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[int]]:
        trainer = fp32_trainer(
            tiny_model_dir, tmp_path, "--training.shared_prompt_forward", str(shared).lower()
        )
        torch.manual_seed(0)
        params = [p for n, p in trainer.model.named_parameters() if "lora_" in n]
        for p in params:
            torch.nn.init.normal_(p, std=0.3)
        rows: list[int] = []
        embed = trainer.model.get_input_embeddings()
        embed.register_forward_hook(lambda m, args, out: rows.append(args[0].numel()))
        gen = torch.Generator().manual_seed(3)
        prompts = [torch.randint(5, 90, (n,), generator=gen) for n in (7, 4, 6)]
        ids, mask = [], []
        for prompt, copies in zip(prompts, (2, 3, 1), strict=True):  # left-padded to 7
            for _ in range(copies):
                completion = torch.randint(5, 90, (5,), generator=gen)
                ids.append(torch.cat([torch.zeros(7 - len(prompt), dtype=torch.long), prompt,
                                      completion]))  # fmt: skip
                mask.append(torch.cat([torch.zeros(7 - len(prompt)), torch.ones(len(prompt)),
                                       torch.tensor([1.0, 1, 1, 0, 0])]).long())  # fmt: skip
        lp, ent, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, torch.stack(ids), torch.stack(mask), 5, batch_size,
            compute_entropy=True,
        )  # fmt: skip
        (lp * torch.stack(mask)[:, -5:]).sum().backward()
        return lp, ent, [p.grad.clone() for p in params], rows

    plain_lp, plain_ent, plain_grads, plain_rows = run(False)
    lp, ent, grads, rows = run(True)
    torch.testing.assert_close(lp, plain_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent, plain_ent, rtol=1e-5, atol=1e-5)
    for grad, plain in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(grad, plain, rtol=1e-4, atol=1e-6)
    if batch_size is None:  # 3 prompts of 6 tokens once, then 6 rows of 1 + 5 tokens
        assert plain_rows == [6 * 12] and rows == [3 * 6, 6 * 6]
    else:  # chunks of 4 rows (prompts 2 + 2 copies of the second) and of 2 rows (2 prompts)
        assert plain_rows == [4 * 12, 2 * 12] and rows == [2 * 6, 4 * 6, 2 * 12]


@pytest.mark.parametrize(("loss_type", "whole"), [("dr_grpo", True), ("bnpo", False)])
def test_micro_batches_hold_whole_groups_for_the_shared_prompt_forward(
    tiny_model_dir: Path, tmp_path: Path, loss_type: str, whole: bool
) -> None:
    """TRL shuffles a generation batch's rows before cutting micro-batches; with the shared
    prompt forward whole groups move instead (but under bnpo, whose normaliser is the
    micro-batch's own token count), so each micro-batch holds 1 prompt's 4 samples here."""
    import torch

    trainer = fp32_trainer(
        tiny_model_dir, tmp_path, "--training.per_device_batch_size", "4",
        "--training.gradient_accumulation_steps", "2", "--algorithm.loss_type", loss_type,
    )  # fmt: skip
    rows = list(to_dataset(EXAMPLES[:2], None))
    torch.manual_seed(0)
    trainer._prepare_inputs([rows[0]] * 4 + [rows[1]] * 4)
    prompts = [
        {tuple(r.tolist()) for r in batch["prompt_ids"]} for batch in trainer._buffered_inputs
    ]
    assert len(prompts) == 2
    if whole:
        assert [len(p) for p in prompts] == [1, 1]
    else:  # TRL's row shuffle: with this seed the two prompts' samples are mixed
        assert [len(p) for p in prompts] == [2, 2]


def test_shared_prompt_forward_steps_aside_under_activation_checkpointing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A checkpointed layer reruns its forward in the backward, which would append the prompt
    cache's keys twice: with checkpointing on, the loss forward is TRL's own."""

    def trainer_with(checkpointing: bool) -> Any:
        return fp32_trainer(
            tiny_model_dir, tmp_path, "--model.gradient_checkpointing", str(checkpointing).lower()
        )

    assert trainer_with(False)._one_plain_process()
    assert not trainer_with(True)._one_plain_process()


@pytest.mark.parametrize("on", [True, False])
def test_sampler_and_attention_switches_follow_the_recipe(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on: bool
) -> None:
    """``generation.inverse_cdf_sampling`` routes TRL's token draws through
    ``policy.sampler``; ``training.float32_grad_attention`` picks the attention of the policy,
    even one loaded before (``load_causal_lm`` switches every SDPA model)."""
    import torch

    from rewardbridge import models
    from rewardbridge.policy import sampler

    drawn: list[int] = []
    draw = sampler.inverse_cdf_draw

    def counted(probs: torch.Tensor) -> torch.Tensor | None:
        drawn.append(probs.shape[0])
        return draw(probs)

    monkeypatch.setattr(sampler, "inverse_cdf_draw", counted)
    flag = str(on).lower()
    trainer = fp32_trainer(
        tiny_model_dir, tmp_path,
        "--generation.inverse_cdf_sampling", flag, "--training.float32_grad_attention", flag,
    )  # fmt: skip
    rows = list(to_dataset(EXAMPLES[:2], None))
    trainer._generate_and_score_completions([rows[0]] * 4 + [rows[1]] * 4)
    assert (len(drawn) > 0 and set(drawn) == {8}) if on else drawn == []
    policy = trainer.accelerator.unwrap_model(trainer.model)
    expected = models.FLOAT32_GRAD_SDPA if on else "sdpa"
    assert policy.config._attn_implementation == expected
    assert torch.multinomial is sampler._torch_multinomial  # put back after sampling
