"""Adapters that plug rewardbridge verifiers and estimators into RL trainers.

- ``trl``: reward functions for ``GRPOTrainer`` (sync and async; ``None`` = unjudged).
- ``verl``: ``compute_score`` / ``compute_score_batch`` and ``register_verl_estimators``.
- ``openrlhf``: the ``reward_func(queries, prompts, labels)`` file convention.

Each module imports its framework lazily (or not at all): none is a dependency of rewardbridge.
"""
