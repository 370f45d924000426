"""The backend contract of the generative verifier.

A backend takes rendered judge conversations (chat messages; the chat template with the
generation prompt is applied by the backend or its server) and returns, per conversation, what
the judge put at the first generated position: the emitted token and the log-probabilities of
the tokens it can see. Rewards are pure functions of that (``rewardbridge.verifiers.judgment``).
A call that fails returns a failed ``VerifierResult`` for that item (timeout, backend error):
never a made-up distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rewardbridge.verifiers.base import VerifierResult

Message = Mapping[str, str]
Conversation = Sequence[Message]


@dataclass(frozen=True, slots=True)
class FirstToken:
    """The judge's first generated position.

    ``chosen``: the token emitted there (greedy, or sampled when the backend samples), as text.
    ``logprobs``: token text -> log-probability under the full-vocabulary softmax, for at least
    the top tokens and every YES/NO variant the backend can see (local backends see all).
    """

    chosen: str
    logprobs: Mapping[str, float] = field(default_factory=dict)


class JudgeBackend(Protocol):
    name: str

    def first_tokens(self, conversations: Sequence[Conversation]) -> list[FirstToken | VerifierResult]:
        """One entry per conversation, in order."""
        ...

    def close(self) -> None: ...
