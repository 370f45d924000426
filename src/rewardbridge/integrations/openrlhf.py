"""OpenRLHF's reward-function file convention, and the remote-server usage.

OpenRLHF (tested against 0.11.2's ``SingleTurnAgentExecutor`` in the integration tier;
dotted flags since 0.10) takes ``--reward.remote_url`` as either

- an HTTP URL: it POSTs ``{"query", "prompts", "labels"}`` and reads ``rewards``/``scores``/
  ``extra_logs``: point it at ``rewardbridge serve`` (``http://HOST:8000/get_reward``), which
  batches the per-sample requests of all rollout workers;
- a ``.py`` file: it imports the file and calls ``reward_func(queries, prompts, labels,
  **kwargs)`` on each chunk of samples. ``examples/openrlhf/reward_func.py`` re-exports
  ``reward_func`` from here.

Older releases spell the flag ``--remote_rm_url``. The label of a sample (``--data.label_key``)
is the reference answer, or a JSON object with ``question`` and ``reference``. Both paths
return the same thing (``serving.schema.openrlhf_response``): an unjudged sample gets NaN in
``scores``, so OpenRLHF's dynamic filtering (``--algo.dynamic_filtering_enable``) drops its group
and draws a new prompt; ``REWARDBRIDGE_FALLBACK_REWARD`` in ``rewards`` (default NaN: set a
number to train on one instead); and a 1 in ``extra_logs["unjudged"]``, whose mean OpenRLHF
logs as the unjudged rate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rewardbridge.integrations.common import shared_verifier
from rewardbridge.serving.schema import OpenRLHFRequest, items_from_openrlhf, openrlhf_response


def fallback_reward() -> float:
    """``REWARDBRIDGE_FALLBACK_REWARD`` as a number (NaN when unset)."""
    raw = os.environ.get("REWARDBRIDGE_FALLBACK_REWARD", "nan")
    try:
        return float(raw)
    except ValueError:
        raise ValueError(
            f"REWARDBRIDGE_FALLBACK_REWARD={raw!r}: expected a number (the reward of an "
            "unjudged sample), or unset for NaN"
        ) from None


def reward_func(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Sequence[Any],
    **kwargs: Any,
) -> dict[str, Any]:
    """OpenRLHF's ``reward_func``: ``{"rewards", "scores", "extra_logs"}`` as float tensors.

    The verifier comes from the environment (``REWARDBRIDGE_VERIFIER``, ``REWARDBRIDGE_URL``;
    see ``rewardbridge.integrations.common``), built once per process.
    """
    import torch

    request = OpenRLHFRequest(query=list(queries), prompts=list(prompts), labels=list(labels))
    results = shared_verifier().verify(items_from_openrlhf(request))
    fallback = fallback_reward()
    out = openrlhf_response(results, fallback_reward=fallback)
    return {
        "rewards": torch.tensor(out.rewards, dtype=torch.float32),
        "scores": torch.tensor(out.scores, dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in out.extra_logs.items()},
    }
