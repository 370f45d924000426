"""Reward math against hand-computed examples and the golden values of PAPER.md §5 (verl)."""

from __future__ import annotations

import math

import pytest
import torch

from rewardbridge.rewards import (
    compute_advantages,
    estimator_names,
    kl_shaped_rewards,
    per_token_kl,
    sequence_kl,
    whiten,
    zscore,
)

GOLDEN_REWARDS = [1, 0, 0, 0, 1, 1, 0, 1]


def close(actual: torch.Tensor, expected: list[float], tol: float = 1e-5) -> None:
    assert actual.tolist() == pytest.approx(expected, abs=tol)


def test_grpo_golden() -> None:
    adv = compute_advantages(GOLDEN_REWARDS, 4, "grpo")
    close(adv, [1.5, -0.5, -0.5, -0.5, 0.5, 0.5, -1.5, 0.5])


def test_rloo_golden() -> None:
    adv = compute_advantages(GOLDEN_REWARDS, 4, "rloo", normalize="none")
    third = 1 / 3
    close(adv, [1, -third, -third, -third, third, third, -1, third], tol=1e-12)


def test_reinforce_pp_baseline_golden_token_weighted() -> None:
    adv = compute_advantages(GOLDEN_REWARDS, 4, "reinforce_pp_baseline", token_counts=[3] * 8)
    close(adv, [1.696, -0.565, -0.565, -0.565, 0.565, 0.565, -1.696, 0.565], tol=1e-3)
    # exact: 0.75 / sqrt(4.5 / 23)
    assert adv[0].item() == pytest.approx(0.75 / math.sqrt(4.5 / 23), rel=1e-7)


def test_reinforce_pp_baseline_sequence_level_differs_from_golden() -> None:
    adv = compute_advantages(GOLDEN_REWARDS, 4, "reinforce_pp_baseline")
    # 8 responses: unbiased variance 1.5 / 7
    assert adv[0].item() == pytest.approx(0.75 / math.sqrt(1.5 / 7), rel=1e-7)


def test_reinforce_is_group_zscore_by_default() -> None:
    adv = compute_advantages([1, 0, 0, 0, 1, 1, 1, 1], 4, "reinforce")
    close(adv, [1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0])


def test_std_zero_group_gives_zero_for_every_estimator() -> None:
    for name in estimator_names():
        adv = compute_advantages([1, 1, 1, 1, 0, 0, 0, 0], 4, name)
        close(adv, [0.0] * 8), name


def test_nan_is_zero_and_excluded_from_group_statistics() -> None:
    nan = float("nan")
    # group 1: judged [1, 0, 0] -> mean 1/3, unbiased std sqrt(1/3)
    adv = compute_advantages([1, nan, 0, 0, None, 1, 0, 1], 4, "grpo")  # type: ignore[list-item]
    std = math.sqrt(1 / 3)
    assert adv[1].item() == 0.0 and adv[4].item() == 0.0
    assert adv[0].item() == pytest.approx((1 - 1 / 3) / std, rel=1e-5)
    rl = compute_advantages([1, nan, 0, 0], 4, "rloo", normalize="none")
    close(rl, [1.0, 0.0, -0.5, -0.5], tol=1e-12)


def test_group_with_one_judged_sample_has_zero_advantage() -> None:
    nan = float("nan")
    for name in estimator_names():
        adv = compute_advantages([1, nan, nan, nan, 1, 0, 1, 0], 4, name)
        assert adv[:4].tolist() == [0.0, 0.0, 0.0, 0.0], name
        assert not torch.isnan(adv).any()


def test_all_unjudged_batch_is_all_zero() -> None:
    for name in estimator_names():
        assert compute_advantages([None] * 4, 2, name).tolist() == [0.0] * 4  # type: ignore[list-item]


def test_dr_grpo_is_centred_without_std() -> None:
    close(compute_advantages([1, 0, 0, 0], 4, "dr_grpo"), [0.75, -0.25, -0.25, -0.25], 1e-12)


def test_reinforce_pp_whitens_over_batch() -> None:
    adv = compute_advantages([2, 0, 1, 1], 2, "reinforce_pp", normalize="none")
    # mean 1, unbiased var 2/3
    close(adv, [1 / math.sqrt(2 / 3), -1 / math.sqrt(2 / 3), 0, 0], tol=1e-6)


def test_batch_normalisation() -> None:
    out = zscore(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), "batch")
    # mean .25, unbiased std .5
    close(out.reshape(-1), [1.5, -0.5, -0.5, -0.5], tol=1e-5)


def test_tensor_input_keeps_dtype() -> None:
    adv = compute_advantages(torch.tensor(GOLDEN_REWARDS, dtype=torch.float32), 4, "grpo")
    assert adv.dtype == torch.float32 and adv.shape == (8,)


def test_kl_shaping_after_normalisation() -> None:
    adv = compute_advantages([1, 0], 2, "reinforce", kl=[1.0, -2.0], beta=0.5)
    # z-score: [0.7071, -0.7071] then - 0.5 * kl
    s = 1 / math.sqrt(2)
    close(adv, [s - 0.5, -s + 1.0], tol=1e-5)


def test_kl_estimators() -> None:
    logp = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -1.0]])
    close(per_token_kl(logp, ref, "k1").reshape(-1), [0.5, -1.0], 1e-7)
    k3 = per_token_kl(logp, ref, "k3").reshape(-1)
    close(k3, [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1.0 - 1], 1e-6)
    assert (k3 >= 0).all()
    mask = torch.tensor([[1.0, 0.0]])
    close(sequence_kl(logp, ref, mask, "k1"), [0.5], 1e-7)
    close(kl_shaped_rewards(torch.tensor([1.0]), torch.tensor([2.0]), 0.01), [0.98], 1e-7)


def test_whiten_token_weights() -> None:
    out = whiten(torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, 3.0]]))
    # weighted mean -0.5, weighted unbiased var (1*2.25 + 3*.25)/3 = 1
    close(out.reshape(-1), [1.5, -0.5], 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"estimator": "ppo"}, "estimator"),
        ({"normalize": "global"}, "normalize"),
        ({"group_size": 3}, "group_size"),
    ],
)
def test_errors_name_the_option(kwargs: dict, field: str) -> None:
    args = {"rewards": GOLDEN_REWARDS, "group_size": 4, "estimator": "grpo", **kwargs}
    with pytest.raises(ValueError, match=field):
        compute_advantages(**args)
