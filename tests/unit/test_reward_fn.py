"""The one TRL reward adapter (training/reward_fn.py, re-exported by integrations/trl.py): what
text it judges, None for unjudged, canaries split off, NaN kept across reward functions."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.integrations import trl as public
from rewardbridge.training import reward_fn
from rewardbridge.training.reward_fn import (
    AsyncVerifierReward,
    VerifierReward,
    combine_rewards,
    completion_text,
    prompt_question,
)
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult


class Contains(BaseVerifier):
    """1 if the reference is in the response, 0 if not; "UNSURE" is not judged."""

    name = "contains-stand-in"

    def __init__(self) -> None:
        self.seen: list[JudgeItem] = []

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.seen.extend(items)
        return [
            VerifierResult.failed(Status.NO_JUDGMENT, "unsure")
            if "UNSURE" in it.response
            else VerifierResult.ok(float(it.reference in it.response))
            for it in items
        ]


def test_integrations_trl_is_the_same_adapter() -> None:
    assert public.VerifierReward is reward_fn.VerifierReward
    assert public.AsyncVerifierReward is reward_fn.AsyncVerifierReward


def test_completion_text_is_the_last_assistant_message() -> None:
    tool_turns = [
        {"role": "assistant", "content": "let me call a tool"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "Therefore, the answer is 42"},
    ]
    assert completion_text(tool_turns) == "Therefore, the answer is 42"
    assert completion_text("plain") == "plain"
    text_parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    parts = [{"role": "assistant", "content": text_parts}]
    assert completion_text(parts) == "ab"
    assert completion_text([{"role": "tool", "content": "x"}]) == ""


def test_question_is_the_last_user_turn_of_the_prompt() -> None:
    prompt = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "?"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert prompt_question(prompt) == "What is 2+2?"
    assert prompt_question("raw prompt") == "raw prompt"
    with pytest.raises(ValueError, match="question_column"):
        prompt_question([{"role": "system", "content": "only"}])


def test_training_dataset_question_is_what_the_prompt_carries() -> None:
    """``rewardbridge train`` builds its prompts from Example.messages: the adapter recovers
    exactly Example.question from them (one way to get the question, everywhere)."""
    from rewardbridge.training.data import to_dataset

    ex = Example(id="e1", question="Capital of France?", reference="Paris", domain="geo")
    row = next(iter(to_dataset([ex], None)))
    verifier = Contains()
    reward = VerifierReward(verifier)
    columns = {k: [v] for k, v in row.items() if k != "prompt"}
    out = reward(prompts=[row["prompt"]], completions=["Paris"], **columns)
    assert out == [1.0]
    assert verifier.seen[0].question == ex.question
    assert verifier.seen[0].metadata["prompt_id"] == "e1"
    assert verifier.seen[0].domain == "geo"


class Monitor:
    """A stand-in CanaryMonitor: one probe per call, results kept."""

    def __init__(self) -> None:
        self.observed: list[VerifierResult] = []

    def probes(self, items: Sequence[JudgeItem]) -> list[JudgeItem]:
        return [JudgeItem(id="canary", question=items[0].question, reference="r", response=".")]

    def observe(self, results: Sequence[VerifierResult], **kw: Any) -> None:
        self.observed.extend(results)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[JudgeItem], list[VerifierResult], str, int | None]] = []

    def record(self, items: Any, results: Any, *, verifier: str, step: int | None) -> None:
        self.calls.append((list(items), list(results), verifier, step))


class State:
    global_step = 7


def columns() -> dict[str, Any]:
    return {"reference": ["4", "Paris", "blue"], "trainer_state": State()}


PROMPTS = [[{"role": "user", "content": q}] for q in ("2+2?", "Capital?", "Sky?")]
COMPLETIONS = [[{"role": "assistant", "content": c}] for c in ("4", "Lyon", "UNSURE")]


@pytest.mark.parametrize("cls", [VerifierReward, AsyncVerifierReward])
def test_canaries_never_reach_the_rewards_and_judgments_are_recorded(cls: type) -> None:
    verifier, monitor, recorder = Contains(), Monitor(), Recorder()
    reward = cls(verifier, canaries=monitor, recorder=recorder)
    out = reward(prompts=PROMPTS, completions=COMPLETIONS, **columns())
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    assert out == [1.0, 0.0, None]  # three completions in, three rewards out
    assert [it.id for it in verifier.seen][-1] == "canary"  # one verifier call with the probe
    assert len(verifier.seen) == 4 and len(monitor.observed) == 1
    items, results, name, step = recorder.calls[0]
    assert [it.response for it in items] == ["4", "Lyon", "UNSURE"]  # the canary not recorded
    assert [r.score for r in results] == [1.0, 0.0, None]
    assert (name, step) == ("contains-stand-in", 7)
    assert reward.seconds > 0


def test_combine_rewards_keeps_nan_where_any_function_did_not_judge() -> None:
    per_func = torch.tensor([[1.0, 0.5], [math.nan, 0.5], [0.0, math.nan], [math.nan, math.nan]])
    out = combine_rewards(per_func, torch.tensor([1.0, 2.0]))
    assert out[0].item() == 2.0
    assert torch.isnan(out[1:]).all()  # TRL's nansum would give 1.0 and 0.0 here
    ignored = combine_rewards(per_func, torch.tensor([1.0, 0.0]))  # weight 0: not used
    assert ignored[2].item() == 0.0 and torch.isnan(ignored[1])


class Bonus(BaseVerifier):
    name = "bonus"

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [VerifierResult.ok(0.25) for _ in items]


def plain_bonus(prompts: Any, completions: Any, **kw: Any) -> list[float]:
    return [0.25] * len(completions)


@pytest.mark.parametrize("second", ["plain", "async"])
def test_trainer_with_two_reward_functions_keeps_unjudged_out(
    tiny_model_dir: Path, tmp_path: Path, second: str
) -> None:
    """A second reward function (a format bonus; a plain function, or our async adapter, which
    TRL awaits on its own loop) must not turn an unjudged sample into its bonus alone: the
    sample stays NaN, gets advantage 0 and counts as unjudged."""
    from rewardbridge.models import load_causal_lm
    from rewardbridge.rewards import compute_advantages
    from rewardbridge.training.config import load_config
    from rewardbridge.training.data import to_dataset
    from rewardbridge.training.rl import build_trainer

    class EveryOther(BaseVerifier):
        name = "every-other"

        def __init__(self) -> None:
            self.n = 0

        def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
            out = []
            for _ in items:
                self.n += 1
                ok = self.n % 2 == 0
                failed = VerifierResult.failed(Status.TIMEOUT, "t")
                out.append(VerifierResult.ok(self.n % 3 / 2) if ok else failed)
            return out

    examples = [Example(id=str(i), question=f"Q{i}?", reference=f"r{i}") for i in range(2)]
    config = load_config(None, [
        "--training.output_dir", str(tmp_path / "run"), "--training.prompts_per_step", "2",
        "--generation.num_generations", "4", "--generation.max_completion_length", "4",
        "--logging.report_to", "none", "--training.use_cpu", "true",
        "--model.policy", str(tiny_model_dir),
    ])  # fmt: skip
    bonus = plain_bonus if second == "plain" else AsyncVerifierReward(Bonus(), name="bonus")
    trainer = build_trainer(config, examples, EveryOther(), policy=load_causal_lm(tiny_model_dir),
                            extra_reward_funcs=[bonus])  # fmt: skip
    rows = list(to_dataset(examples, None))
    batch = trainer._generate_and_score_completions([rows[0]] * 4 + [rows[1]] * 4)
    verifier_scores = [(n % 3 / 2) if n % 2 == 0 else None for n in range(1, 9)]
    combined = [s + 0.25 if s is not None else None for s in verifier_scores]
    expected = compute_advantages(combined, 4, "rloo")
    assert batch["advantages"].tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    advantages = batch["advantages"].tolist()
    assert [a for a, s in zip(advantages, combined, strict=True) if s is None] == [0.0] * 4
    assert trainer._metrics["train"]["rb/unjudged"][-1] == 4
