"""TRL, verl and OpenRLHF adapters, each against its framework's calling convention
(TRL's own helpers where installed; stand-ins for verl's registry and OpenRLHF's file loader)."""

from __future__ import annotations

import asyncio
import importlib.util
import math
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rewardbridge.data.example import JudgeItem
from rewardbridge.integrations.common import close_shared_verifiers
from rewardbridge.integrations.trl import AsyncVerifierReward, VerifierReward
from rewardbridge.integrations.verl import (
    compute_score,
    compute_score_batch,
    make_verl_estimator,
    register_verl_estimators,
)
from rewardbridge.rewards.advantages import compute_advantages, estimator_names
from rewardbridge.verifiers.base import Status, VerifierResult

REPO = Path(__file__).resolve().parents[2]


class Double:
    """1.0 if the reference occurs in the response; 'UNSURE' responses are not judged."""

    name = "double"

    def __init__(self) -> None:
        self.seen: list[JudgeItem] = []

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.seen.extend(items)
        return [
            VerifierResult.failed(Status.NO_JUDGMENT, "no verdict")
            if "UNSURE" in it.response
            else VerifierResult.ok(1.0 if it.reference in it.response else 0.0)
            for it in items
        ]

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _fresh_shared_verifiers() -> Iterator[None]:
    yield
    close_shared_verifiers()


# --- TRL ----------------------------------------------------------------------------------


def trl_batch() -> tuple[list[Any], list[Any], dict[str, Any]]:
    prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
        [{"role": "user", "content": "Capital of France?"}],
        [{"role": "user", "content": "Colour of the sky?"}],
    ]
    completions = [
        [{"role": "assistant", "content": "It is 4"}],
        [{"role": "assistant", "content": "Lyon"}],
        [{"role": "assistant", "content": "UNSURE"}],
    ]
    logged: dict[str, Any] = {}
    columns = {
        "reference": ["4", "Paris", "blue"],
        "trainer_state": object(),
        "log_metric": lambda name, value: logged.__setitem__(name, value),
        "log_extra": lambda name, values: logged.__setitem__(name, values),
        "logged": logged,
    }
    return prompts, completions, columns


def test_trl_reward_reads_reference_column_and_returns_none_for_unjudged() -> None:
    verifier = Double()
    reward = VerifierReward(verifier, name="judge")
    prompts, completions, columns = trl_batch()
    out = reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 3, **columns)
    assert out == [1.0, 0.0, None]
    assert [it.question for it in verifier.seen] == [
        "2+2?",
        "Capital of France?",
        "Colour of the sky?",
    ]
    assert columns["logged"]["judge/unjudged"] == pytest.approx(1 / 3)
    assert columns["logged"]["judge_status"] == ["judged", "judged", "no_judgment"]


def test_trl_reward_plain_text_prompts_and_named_columns() -> None:
    verifier = Double()
    reward = VerifierReward(verifier, reference_column="answer", question_column="problem")
    out = reward(
        prompts=["p1", "p2"],
        completions=["x = 3", "x = 5"],
        answer=["3", "4"],
        problem=["Solve x", "Solve y"],
    )
    assert out == [1.0, 0.0]
    assert verifier.seen[1].question == "Solve y"
    with pytest.raises(ValueError, match=r"no 'reference' column.*answer"):
        VerifierReward(verifier)(prompts=["p"], completions=["c"], answer=["a"])


def test_trl_async_reward_is_detected_as_async_by_trl_and_agrees_with_sync() -> None:
    trl_utils = pytest.importorskip("trl.trainer.utils")
    sync_reward, async_reward = VerifierReward(Double()), AsyncVerifierReward(Double())
    assert not trl_utils.is_async_callable(sync_reward)
    assert trl_utils.is_async_callable(async_reward)
    assert trl_utils.get_callable_name(async_reward) == "rewardbridge"
    prompts, completions, columns = trl_batch()
    out = asyncio.run(async_reward(prompts=prompts, completions=completions, **columns))
    assert out == sync_reward(prompts=prompts, completions=completions, **columns)


# --- verl ---------------------------------------------------------------------------------


def test_verl_compute_score_takes_question_from_extra_info() -> None:
    out = compute_score(
        "multi_subject",
        "Therefore, the answer is Western blot",
        "Western blot",
        extra_info={"question": "Confirmation tests should use", "index": 3},
        verifier="contains",
    )
    assert out == {"score": 1.0, "judged": 1.0}
    questions = [{"question": "q"}, {"prompt": "q"}, {"problem": "q"}]
    batch = compute_score_batch(
        ["a", "a", "a"],
        ["it is 7", "it is 8", ""],
        ["7", "7", "7"],
        questions,
        verifier="contains",
        unjudged_score=-1.0,
    )
    assert batch == [
        {"score": 1.0, "judged": 1.0},
        {"score": 0.0, "judged": 1.0},
        {"score": -1.0, "judged": 0.0},
    ]


def test_verl_unjudged_is_nan_by_default_never_zero() -> None:
    (out,) = compute_score_batch(["a"], [""], ["7"], [{"question": "q"}], verifier="contains")
    assert math.isnan(out["score"]) and out["judged"] == 0.0


def test_verl_missing_question_is_an_error() -> None:
    with pytest.raises(ValueError, match="sample 1: extra_info has no question"):
        compute_score_batch(
            ["a", "a"],
            ["7", "7"],
            ["7", "7"],
            [{"question": "q"}, {"index": 1}],
            verifier="contains",
        )
    with pytest.raises(ValueError, match="no question"):
        compute_score("a", "7", "7", None, verifier="contains")


def stand_in_registry() -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """The semantics of verl.trainer.ppo.core_algos.register_adv_est."""
    registry: dict[str, Any] = {}

    def register_adv_est(name_or_enum: Any) -> Callable[[Any], Any]:
        def decorator(fn: Any) -> Any:
            name = name_or_enum.value if isinstance(name_or_enum, Enum) else name_or_enum
            if name in registry and registry[name] != fn:
                raise ValueError(f"Adv estimator {name} has already been registered")
            registry[name] = fn
            return fn

        return decorator

    return registry, register_adv_est


def test_register_verl_estimators_into_a_stand_in_registry_twice() -> None:
    registry, register = stand_in_registry()
    names = register_verl_estimators(register)
    assert names == [f"rewardbridge_{n}" for n in estimator_names()]
    assert register_verl_estimators(register) == names  # idempotent, verl would raise otherwise
    assert set(registry) == set(names)


def test_register_without_verl_says_what_to_install() -> None:
    if importlib.util.find_spec("verl") is not None:
        pytest.skip("verl is installed")
    with pytest.raises(ImportError, match="pip install verl"):
        register_verl_estimators()


@pytest.mark.parametrize("estimator", ["rloo", "grpo", "reinforce_pp"])
def test_verl_estimator_matches_compute_advantages_on_shuffled_groups(estimator: str) -> None:
    # 2 prompts x 3 samples, interleaved in the batch; 4 response tokens, variable lengths.
    uids = np.array(["b", "a", "b", "a", "a", "b"], dtype=object)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    lengths = torch.tensor([4, 2, 3, 4, 1, 2])
    mask = (torch.arange(4)[None, :] < lengths[:, None]).float()
    token_rewards = torch.zeros(6, 4)
    token_rewards[torch.arange(6), lengths - 1] = rewards  # verl: reward on the last token

    advantages, returns = make_verl_estimator(estimator)(
        token_level_rewards=token_rewards, response_mask=mask, index=uids, config=None
    )

    order = [0, 2, 5, 1, 3, 4]  # group "b" then group "a", as first seen
    expected_grouped = compute_advantages(
        rewards[order].double(), 3, estimator, token_counts=lengths[order].double()
    )
    expected = torch.empty(6, dtype=torch.float64)
    expected[order] = expected_grouped
    assert advantages.shape == (6, 4) and torch.equal(advantages, returns)
    torch.testing.assert_close(advantages[:, 0].double(), expected.to(advantages.dtype).double())
    assert torch.all(advantages[mask == 0] == 0)
    # per-sample advantage is constant over the response tokens
    for i in range(6):
        assert torch.allclose(advantages[i, : lengths[i]], advantages[i, 0].expand(int(lengths[i])))


def test_verl_estimator_nan_reward_means_left_out_and_unequal_groups_fail() -> None:
    fn = make_verl_estimator("rloo")
    mask = torch.ones(4, 1)
    adv, _ = fn(torch.tensor([[1.0], [float("nan")], [0.0], [1.0]]), mask, np.array([0, 0, 1, 1]))
    assert adv[1, 0] == 0.0 and not torch.isnan(adv).any()
    with pytest.raises(ValueError, match="same number of samples"):
        fn(torch.zeros(3, 1), torch.ones(3, 1), np.array([0, 0, 1]))


# --- OpenRLHF and the example files, loaded the way the frameworks load them --------------


def load_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("reward_func", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fallback", [None, "-0.5"])
def test_openrlhf_reward_func_file(monkeypatch: pytest.MonkeyPatch, fallback: str | None) -> None:
    """An unjudged sample (the empty response): score NaN (OpenRLHF's dynamic filtering drops
    its group), reward NaN unless the user chose one: never a made-up 0."""
    monkeypatch.setenv("REWARDBRIDGE_VERIFIER", "contains")
    if fallback is None:
        monkeypatch.delenv("REWARDBRIDGE_FALLBACK_REWARD", raising=False)
    else:
        monkeypatch.setenv("REWARDBRIDGE_FALLBACK_REWARD", fallback)
    module = load_file(REPO / "examples" / "openrlhf" / "reward_func.py")
    prompts = ["<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n"] * 3
    queries = [prompts[0] + r + "<|im_end|>" for r in ("It is Paris", "It is Lyon", "")]
    labels = ["Paris", '{"question": "Capital?", "reference": "Paris"}', "Paris"]
    out = module.reward_func(queries, prompts, labels)
    rewards, scores = out["rewards"].tolist(), out["scores"].tolist()
    assert rewards[:2] == scores[:2] == [1.0, 0.0]
    assert math.isnan(scores[2])
    assert math.isnan(rewards[2]) if fallback is None else rewards[2] == -0.5
    assert out["extra_logs"]["unjudged"].tolist() == [0.0, 0.0, 1.0]


def test_openrlhf_fallback_reward_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardbridge.integrations.openrlhf import fallback_reward

    monkeypatch.setenv("REWARDBRIDGE_FALLBACK_REWARD", "zero")
    with pytest.raises(ValueError, match="REWARDBRIDGE_FALLBACK_REWARD='zero'"):
        fallback_reward()


def test_verl_reward_file_exposes_compute_score() -> None:
    module = load_file(REPO / "examples" / "verl" / "reward_fn.py")
    out = module.compute_score("src", "Answer: 12", "12", {"question": "6+6?"}, verifier="exact")
    assert out == {"score": 1.0, "judged": 1.0}
