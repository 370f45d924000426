"""Judge backends: where the first-token distribution of the judge comes from."""

from rewardbridge.verifiers.backends.base import FirstToken, JudgeBackend

__all__ = ["FirstToken", "JudgeBackend"]
