"""``ServerConfig``: the reward server's limits, without the web stack (the CLI reads its
defaults when it builds ``rewardbridge serve``'s flags)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerConfig:
    """Serving limits. ``fallback_reward`` is the reward OpenRLHF gets for an unjudged item:
    NaN unless chosen (its score is NaN either way, so OpenRLHF's dynamic filtering drops its
    group; it is also flagged in ``extra_logs["unjudged"]``; see ``schema.openrlhf_response``)."""

    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 4096
    request_timeout_s: float = 120.0
    auth_token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    fallback_reward: float = math.nan
    record_path: str | None = None  # append every judgment here (distillation records)
    canary_share: float = 0.0  # master-key probes per judged item, mixed into each batch
    canary_max_fpr: float = 0.2  # warn when the canaries' false-positive rate is above it

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        for name in ("canary_share", "canary_max_fpr"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
