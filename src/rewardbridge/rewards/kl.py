"""KL shaping in the reward (paper Eq. 6): ``r~ <- r~ - beta * log(pi_theta(y|x) / pi_ref(y|x))``.

The paper applies the penalty after normalisation, per response, with beta = 0.01 and the
initial policy as reference. Per-token estimators of KL(pi_theta || pi_ref) from sampled tokens
(Schulman's notation):

- ``k1``: ``log pi_theta - log pi_ref`` (unbiased, can be negative; Eq. 6 as written);
- ``k3``: ``exp(log pi_ref - log pi_theta) - (log pi_ref - log pi_theta) - 1`` (unbiased,
  always >= 0, lower variance; what TRL, verl's ``low_var_kl`` and OpenRLHF use).

The sequence KL is the sum over response tokens (the whole response is one action).
"""

from __future__ import annotations

from typing import Literal

import torch

KLEstimator = Literal["k1", "k3"]


def per_token_kl(
    logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor, estimator: KLEstimator | str = "k1"
) -> torch.Tensor:
    """Per-token KL estimate from the sampled tokens' log-probabilities."""
    if estimator == "k1":
        return logp_BT - ref_logp_BT
    if estimator == "k3":
        log_ratio = ref_logp_BT - logp_BT
        return torch.exp(log_ratio) - log_ratio - 1
    raise ValueError(f"kl estimator must be 'k1' or 'k3'; got {estimator!r}")


def sequence_kl(
    logp_BT: torch.Tensor,
    ref_logp_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    estimator: KLEstimator | str = "k1",
) -> torch.Tensor:
    """KL of each response: the per-token estimate summed over its (unmasked) tokens -> (B,)."""
    return (per_token_kl(logp_BT, ref_logp_BT, estimator) * mask_BT).sum(dim=-1)


def kl_shaped_rewards(rewards: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 6: subtract ``beta * kl`` from the (normalised) rewards; NaN rewards stay NaN."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0; got {beta}")
    return rewards - beta * kl.to(rewards.dtype)
