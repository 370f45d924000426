"""Run INSIDE the verl side environment (``test_verl.py`` starts it): verl 0.9.1's own code
calling our reward file and our estimators. Not collected by the main test run (no ``test_``
prefix); its path is given to pytest explicitly.

- verl's ``get_custom_reward_fn`` loads ``examples/verl/reward_fn.py`` from a config, as
  ``custom_reward_function.path`` does; importing it registers our estimators in verl's
  ``ADV_ESTIMATOR_REGISTRY``;
- verl's ``NaiveRewardManager`` and ``BatchRewardManager`` (``verl.workers.reward_manager``) and
  the reward loop's ``naive`` manager (``load_reward_manager``) score a real ``DataProto``;
- verl's ``compute_advantage`` runs ``rewardbridge_grpo`` / ``_rloo`` /
  ``_reinforce_pp_baseline``, which equal verl's GRPO, RLOO and REINFORCE++-baseline.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
REWARD_FILE = REPO / "examples" / "verl" / "reward_fn.py"

QUESTIONS = ["What is 6 * 7?", "What is 2 + 2?", "What is 10 / 4?"]
REFERENCES = ["42", "4", "\\frac{5}{2}"]
RESPONSES = [
    "6 * 7 = 42. Therefore, the answer is $42$.",
    "2 + 2 = 5. Therefore, the answer is $5$.",
    "10 / 4 = 2.5. Therefore, the answer is $2.5$.",
]
EXPECTED = [1.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.environ["RB_MODEL_DIR"])


def make_data(tokenizer: Any, questions: list[dict[str, Any]] | None = None) -> Any:
    """A DataProto laid out as verl's rollout leaves it: left-padded prompts, right-padded
    responses, one attention mask over both, dataset fields as non-tensor columns."""
    from verl import DataProto

    prompt_ids = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        for q in QUESTIONS
    ]
    prompt_ids = [p["input_ids"] if hasattr(p, "keys") else p for p in prompt_ids]
    response_ids = [tokenizer.encode(r, add_special_tokens=False) for r in RESPONSES]
    width_p, width_r = max(map(len, prompt_ids)), max(map(len, response_ids)) + 3
    pad = tokenizer.pad_token_id or 0
    prompts = torch.full((3, width_p), pad)
    responses = torch.full((3, width_r), pad)
    mask = torch.zeros((3, width_p + width_r), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        prompts[i, width_p - len(p) :] = torch.tensor(p)
        responses[i, : len(r)] = torch.tensor(r)
        mask[i, width_p - len(p) : width_p + len(r)] = 1
    default = [{"question": q, "index": i} for i, q in enumerate(QUESTIONS)]
    infos = questions if questions is not None else default
    return DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array(["math"] * 3, dtype=object),
            "reward_model": np.array([{"ground_truth": g} for g in REFERENCES], dtype=object),
            "extra_info": np.array(infos, dtype=object),
        },
    )


def reward_config(name: str, **reward_kwargs: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": str(REWARD_FILE),
                    "name": name,
                    "reward_kwargs": {"verifier": "math", **reward_kwargs},
                },
                "reward_manager": {"source": "register", "name": "naive"},
            }
        }
    )


def last_token_rewards(data: Any, reward_tensor: torch.Tensor) -> list[float]:
    width_p = data.batch["prompts"].shape[1]
    lengths = data.batch["attention_mask"][:, width_p:].sum(dim=1)
    return [float(reward_tensor[i, lengths[i] - 1]) for i in range(len(lengths))]


def test_naive_reward_manager_calls_compute_score(tokenizer: Any) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.naive import NaiveRewardManager

    fn = get_custom_reward_fn(reward_config("compute_score"))
    data = make_data(tokenizer)
    out = NaiveRewardManager(tokenizer, num_examine=0, compute_score=fn)(data, return_dict=True)
    assert last_token_rewards(data, out["reward_tensor"]) == EXPECTED
    assert float(out["reward_tensor"].sum()) == sum(EXPECTED)  # nothing elsewhere
    assert out["reward_extra_info"]["judged"] == [1.0, 1.0, 1.0]


def test_batch_reward_manager_calls_compute_score_batch(tokenizer: Any) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.batch import BatchRewardManager

    fn = get_custom_reward_fn(reward_config("compute_score_batch"))
    data = make_data(tokenizer)
    out = BatchRewardManager(tokenizer, num_examine=0, compute_score=fn)(data, return_dict=True)
    assert last_token_rewards(data, out["reward_tensor"]) == EXPECTED


def test_reward_loop_manager_from_config(tokenizer: Any) -> None:
    from verl.trainer.ppo.reward import load_reward_manager

    manager = load_reward_manager(reward_config("compute_score"), tokenizer)
    data = make_data(tokenizer)
    scores = [
        manager.loop.run_until_complete(manager.run_single(data[i : i + 1]))["reward_score"]
        for i in range(len(data))
    ]
    assert scores == EXPECTED


def test_unjudged_is_nan_and_flagged_not_zero(tokenizer: Any) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.naive import NaiveRewardManager

    # a remote judge nobody serves: every sample unjudged
    config = reward_config("compute_score", verifier="remote", url="http://127.0.0.1:9", timeout=2)
    fn = get_custom_reward_fn(config)
    data = make_data(tokenizer)
    out = NaiveRewardManager(tokenizer, num_examine=0, compute_score=fn)(data, return_dict=True)
    assert all(math.isnan(r) for r in last_token_rewards(data, out["reward_tensor"]))
    assert out["reward_extra_info"]["judged"] == [0.0, 0.0, 0.0]


def test_missing_question_is_an_error(tokenizer: Any) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.naive import NaiveRewardManager

    fn = get_custom_reward_fn(reward_config("compute_score"))
    data = make_data(tokenizer, questions=[{"index": 0}, {"index": 1}, {"index": 2}])
    with pytest.raises(ValueError, match="no question"):
        NaiveRewardManager(tokenizer, num_examine=0, compute_score=fn)(data)


def advantage_batch() -> Any:
    """3 prompts x 4 samples, shuffled, varied lengths, reward on each response's last token."""
    from verl import DataProto

    gen = torch.Generator().manual_seed(0)
    n, width = 12, 9
    uid = np.array([f"p{i % 3}" for i in range(n)], dtype=object)
    scores = torch.tensor([1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.0, 0.25, 1.0, 0.0, 1.0, 0.75])
    lengths = torch.randint(2, width + 1, (n,), generator=gen)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    rewards = torch.zeros((n, width))
    rewards[torch.arange(n), lengths - 1] = scores
    return DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": uid},
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("grpo", "grpo"), ("rloo", "rloo"), ("reinforce_pp_baseline", "reinforce_plus_plus_baseline")],
)
def test_our_estimators_in_verls_registry_equal_verls_own(ours: str, theirs: str) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo import core_algos
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.utils.import_utils import load_extern_object

    load_extern_object(str(REWARD_FILE), "compute_score")  # the reward file registers them
    assert f"rewardbridge_{ours}" in core_algos.ADV_ESTIMATOR_REGISTRY
    config = OmegaConf.create({"rewardbridge_normalize": "none", "norm_adv_by_std_in_grpo": True})
    mine = compute_advantage(advantage_batch(), f"rewardbridge_{ours}", config=config)
    estimator = core_algos.AdvantageEstimator(theirs)
    verl = compute_advantage(advantage_batch(), estimator, config=config)
    torch.testing.assert_close(
        mine.batch["advantages"], verl.batch["advantages"], atol=1e-5, rtol=1e-5
    )
    assert mine.batch["advantages"].abs().sum() > 0
