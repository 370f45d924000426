"""Z-score normalisation of rewards (paper Eq. 5) and whitening (REINFORCE++).

Rewards are a 2-D tensor ``rewards_BG`` (B prompt groups x G samples), NaN where the verifier
did not judge. Unjudged samples never enter a mean or a standard deviation and come out as NaN;
the caller turns them into advantage 0.

Eq. 5: ``r~ = (r - mean) / std`` over "the batch containing y_i", and ``r~ = 0`` when std = 0.
The std = 0 rule only makes sense per prompt group, so ``scope="group"`` is the default;
``"batch"`` uses one mean and std over every judged sample; ``"none"`` returns the rewards.
The standard deviation is the unbiased one (``n - 1``), as in verl and TRL; a group with fewer
than two judged samples has no spread and gets 0, like a group with std 0.
"""

from __future__ import annotations

from typing import Literal

import torch

Scope = Literal["group", "batch", "none"]
SCOPES: tuple[str, ...] = ("group", "batch", "none")
_STD_ZERO = 1e-8  # std below this counts as 0 (all rewards equal)


def masked_mean_std(
    values: torch.Tensor, weights: torch.Tensor, dim: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and unbiased std of ``values`` (weights: 0 = excluded, k = counted k times,
    e.g. k tokens). The unbiased correction uses the total weight: ``var * W / (W - 1)``.
    Where the total weight is below 2 the std is 0."""
    values = torch.nan_to_num(values, nan=0.0)
    if dim is None:
        total = weights.sum()
        mean = (values * weights).sum() / total.clamp(min=1e-12)
        var = ((values - mean) ** 2 * weights).sum() / total.clamp(min=1e-12)
    else:
        total = weights.sum(dim=dim, keepdim=True)
        mean = (values * weights).sum(dim=dim, keepdim=True) / total.clamp(min=1e-12)
        var = ((values - mean) ** 2 * weights).sum(dim=dim, keepdim=True) / total.clamp(min=1e-12)
    unbiased = torch.where(total > 1, var * total / (total - 1).clamp(min=1e-12), 0.0)
    return mean, unbiased.sqrt()


def zscore(
    rewards_BG: torch.Tensor, scope: Scope | str = "group", *, eps: float = 1e-6
) -> torch.Tensor:
    """Paper Eq. 5 per group (``scope="group"``) or over the batch; std 0 -> 0; NaN stays NaN."""
    if scope not in SCOPES:
        raise ValueError(f"normalize must be one of {', '.join(SCOPES)}; got {scope!r}")
    judged = ~torch.isnan(rewards_BG)
    if scope == "none":
        return rewards_BG.clone()
    weights = judged.to(rewards_BG.dtype)
    mean, std = masked_mean_std(rewards_BG, weights, dim=1 if scope == "group" else None)
    out = torch.where(std > _STD_ZERO, (rewards_BG - mean) / (std + eps), 0.0)
    return torch.where(judged, out, torch.nan)


def whiten(
    values_BG: torch.Tensor, token_counts_BG: torch.Tensor | None = None, *, eps: float = 1e-8
) -> torch.Tensor:
    """Whiten over the whole batch: ``(x - mean) / sqrt(var + eps)`` with the unbiased variance.

    Sequence level by default (each judged sample counts once). With ``token_counts_BG`` each
    sample counts once per token, which is what verl/OpenRLHF do when they whiten a per-token
    advantage that is constant along the response (the paper's golden values use 3 tokens each).
    """
    judged = ~torch.isnan(values_BG)
    weights = judged.to(values_BG.dtype)
    if token_counts_BG is not None:
        weights = weights * token_counts_BG.to(values_BG.dtype)
    mean, std = masked_mean_std(values_BG, weights)
    out = (values_BG - mean) / torch.sqrt(std**2 + eps)
    return torch.where(judged, out, torch.nan)
