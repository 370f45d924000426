"""Advantage estimators of the paper (§5) and of its follow-ups, picked by name from ``ESTIMATORS``.

The whole response is one action: one advantage per sample. Rewards come as ``rewards_BG``
(B prompt groups x G samples), NaN where the verifier did not judge. The pipeline of
``compute_advantages`` is the paper's: z-score normalisation (Eq. 5, ``normalize``), then the
KL penalty in the reward (Eq. 6, optional ``kl``/``beta``), then the estimator. Unjudged
samples are left out of every statistic and get advantage 0.

- ``reinforce``: r~ (Eq. 5 is the only baseline); default normalize ``group``.
- ``rloo``: r_i - mean of the other judged rewards of the group; ``group``.
- ``reinforce_pp``: r~ whitened over the batch (OpenRLHF ``reinforce``); ``group``.
- ``reinforce_pp_baseline``: r - group mean, whitened over the batch (OpenRLHF); ``none``.
- ``grpo``: (r - group mean) / (group std + eps); ``none``.
- ``dr_grpo``: r - group mean (Dr. GRPO: no division by the std); ``none``.

Departures: the paper says "REINFORCE++" without a baseline and trains every algorithm on
z-scored rewards, so ``reinforce``, ``rloo`` and ``reinforce_pp`` z-score per group first by
default; the group-centred estimators do not (centring is their baseline). Whitening is
sequence level by default (each response counts once); pass ``token_counts`` for verl's
per-token whitening, which reproduces the golden values of PAPER.md §5 (3 tokens per response).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rewardbridge.rewards.kl import kl_shaped_rewards
from rewardbridge.rewards.normalize import masked_mean_std, whiten, zscore

Estimator = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _group_mean(rewards_BG: torch.Tensor) -> torch.Tensor:
    judged = (~torch.isnan(rewards_BG)).to(rewards_BG.dtype)
    mean, _ = masked_mean_std(rewards_BG, judged, dim=1)
    return mean


def reinforce(
    rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None
) -> torch.Tensor:
    """REINFORCE: the (normalised, KL-shaped) reward is the advantage."""
    return rewards_BG.clone()


def rloo(rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None) -> torch.Tensor:
    """RLOO: ``r_i - sum_{j != i} r_j / (k - 1)`` over the k judged samples of the group;
    0 when fewer than two samples of the group were judged."""
    judged = ~torch.isnan(rewards_BG)
    k = judged.sum(dim=1, keepdim=True).to(rewards_BG.dtype)
    total = torch.nan_to_num(rewards_BG, nan=0.0).sum(dim=1, keepdim=True)
    others = (total - rewards_BG) / (k - 1).clamp(min=1)
    return torch.where(k > 1, rewards_BG - others, 0.0)


def grpo(
    rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None, *, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO: ``(r - group mean) / (group std + eps)`` (unbiased std, as verl)."""
    judged = (~torch.isnan(rewards_BG)).to(rewards_BG.dtype)
    mean, std = masked_mean_std(rewards_BG, judged, dim=1)
    return (rewards_BG - mean) / (std + eps)


def dr_grpo(rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None) -> torch.Tensor:
    """Dr. GRPO: ``r - group mean`` (no division by the std, which biases toward easy prompts)."""
    return rewards_BG - _group_mean(rewards_BG)


def reinforce_pp(
    rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None
) -> torch.Tensor:
    """REINFORCE++ (OpenRLHF ``reinforce``): the reward whitened over the whole batch."""
    return whiten(rewards_BG, token_counts_BG)


def reinforce_pp_baseline(
    rewards_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None
) -> torch.Tensor:
    """REINFORCE++-baseline (OpenRLHF ``reinforce_baseline``): subtract the group mean, then whiten
    over the batch."""
    return whiten(rewards_BG - _group_mean(rewards_BG), token_counts_BG)


@dataclass(frozen=True)
class EstimatorSpec:
    fn: Estimator
    default_normalize: str
    summary: str


ESTIMATORS: dict[str, EstimatorSpec] = {
    "reinforce": EstimatorSpec(reinforce, "group", "z-scored reward (paper REINFORCE)"),
    "rloo": EstimatorSpec(rloo, "group", "leave-one-out group baseline (paper RLOO)"),
    "reinforce_pp": EstimatorSpec(reinforce_pp, "group", "batch-whitened reward (REINFORCE++)"),
    "reinforce_pp_baseline": EstimatorSpec(
        reinforce_pp_baseline, "none", "group mean removed, then batch-whitened"
    ),
    "grpo": EstimatorSpec(grpo, "none", "(r - group mean) / group std"),
    "dr_grpo": EstimatorSpec(dr_grpo, "none", "r - group mean (no std)"),
}


def estimator_names() -> list[str]:
    return list(ESTIMATORS)


def get_estimator(name: str) -> EstimatorSpec:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown advantage estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}"
        ) from None


def _as_tensor(values: Sequence[float | None] | torch.Tensor) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    return torch.tensor(
        [float("nan") if v is None else float(v) for v in values], dtype=torch.float64
    )


def compute_advantages(
    rewards: Sequence[float | None] | torch.Tensor,
    group_size: int,
    estimator: str = "rloo",
    *,
    normalize: str | None = None,
    kl: Sequence[float] | torch.Tensor | None = None,
    beta: float = 0.0,
    token_counts: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """One advantage per sample for a flat sequence of rewards laid out group after group.

    ``rewards``: list (``None`` or NaN = unjudged) or 1-D tensor of length B * ``group_size``.
    ``normalize``: ``"group"`` | ``"batch"`` | ``"none"`` (Eq. 5), default per estimator (see the
    module table). ``kl``/``beta``: per-sample sequence KL subtracted after normalisation (Eq. 6).
    ``token_counts``: per-sample response lengths, for token-weighted whitening (verl).
    Returns a 1-D tensor (float64 for a list input, else the input's dtype and device);
    unjudged samples get exactly 0.
    """
    spec = get_estimator(estimator)
    flat = _as_tensor(rewards)
    if flat.dim() != 1:
        raise ValueError(f"rewards must be 1-D (group after group); got shape {tuple(flat.shape)}")
    if group_size < 1 or flat.numel() % group_size:
        raise ValueError(
            f"group_size={group_size} does not divide the {flat.numel()} rewards "
            "(lay them out group after group)"
        )
    work = flat.to(torch.float64)
    rewards_BG = work.view(-1, group_size)
    shaped = zscore(rewards_BG, normalize or spec.default_normalize)
    if kl is not None and beta:
        kl_BG = _as_tensor(kl).to(torch.float64).view(-1, group_size)
        shaped = kl_shaped_rewards(shaped, kl_BG, beta)
    counts_BG = None
    if token_counts is not None:
        counts_BG = _as_tensor(token_counts).to(torch.float64).view(-1, group_size)
    advantages_BG = spec.fn(shaped, counts_BG)
    advantages_BG = torch.nan_to_num(advantages_BG, nan=0.0)
    out = advantages_BG.reshape(-1)
    return out if not isinstance(rewards, torch.Tensor) else out.to(flat.dtype)
