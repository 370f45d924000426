"""A verifier as a TRL reward function (trl >= 1.16, < 2; ``GRPOTrainer``).

The adapter lives in ``rewardbridge.training.reward_fn`` so that ``rewardbridge train`` uses the
very same one (training sits below integrations); this module is its public address:

    from rewardbridge.integrations.trl import VerifierReward, AsyncVerifierReward
    GRPOTrainer(..., reward_funcs=VerifierReward(build_verifier("generative")))

``None`` for every unjudged completion (never 0); the judged text is the completion (the last
assistant message), the question the prompt's last user turn unless ``question_column`` names
one, the reference the ``reference_column``. Pass ``recorder=JudgmentRecorder(path)`` to keep
every judgment as distillation data, ``canaries=CanaryMonitor()`` for live master-key probes.
See docs/integrations/trl.md.
"""

from __future__ import annotations

from rewardbridge.training.reward_fn import (
    AsyncVerifierReward,
    VerifierReward,
    combine_rewards,
    completion_text,
    prompt_question,
)

__all__ = [
    "AsyncVerifierReward",
    "VerifierReward",
    "combine_rewards",
    "completion_text",
    "prompt_question",
]
