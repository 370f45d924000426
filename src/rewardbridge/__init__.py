"""rewardbridge: generative verifiers and RL with verifiable rewards beyond math and code.

Implements "Crossing the Reward Bridge" (Su et al. 2025): an LLM judges the final step of a
response against a reference answer (binary and soft rewards), z-score normalised rewards and
REINFORCE / RLOO / REINFORCE++ / GRPO advantages, RL training on TRL, verifier distillation,
and evaluation. The core imports fast; heavy pieces live in optional extras.
"""

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.verifiers.base import Status, Verifier, VerifierResult

__version__ = "0.1.0"

__all__ = ["Example", "JudgeItem", "Status", "Verifier", "VerifierResult", "__version__"]
