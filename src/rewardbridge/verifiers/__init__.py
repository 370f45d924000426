"""Verifiers: the result type, rule verifiers, the generative judge, and the cascade."""

from rewardbridge.verifiers.base import BaseVerifier, Status, Verifier, VerifierResult
from rewardbridge.verifiers.registry import available_verifiers, build_verifier

__all__ = [
    "BaseVerifier",
    "Status",
    "Verifier",
    "VerifierResult",
    "available_verifiers",
    "build_verifier",
]
