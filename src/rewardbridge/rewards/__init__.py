"""Reward math, pure functions: normalisation (Eq. 5), KL shaping (Eq. 6), advantage
estimators (§5)."""

from rewardbridge.rewards.advantages import (
    ESTIMATORS,
    compute_advantages,
    estimator_names,
    get_estimator,
)
from rewardbridge.rewards.kl import kl_shaped_rewards, per_token_kl, sequence_kl
from rewardbridge.rewards.normalize import SCOPES, whiten, zscore

__all__ = [
    "ESTIMATORS",
    "SCOPES",
    "compute_advantages",
    "estimator_names",
    "get_estimator",
    "kl_shaped_rewards",
    "per_token_kl",
    "sequence_kl",
    "whiten",
    "zscore",
]
