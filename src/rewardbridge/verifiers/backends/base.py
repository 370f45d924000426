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

    ``chosen``: the token emitted there (greedy, or sampled when the backend samples), as text,
    exactly as the tokenizer decodes it alone (a leading space kept: ``" Yes"``). An OpenAI
    server's ``logprobs.content[0].token`` is this.

    ``logprobs``: token text -> natural-log probability under the full-vocabulary softmax
    (temperature 1), for at least the top tokens (an OpenAI server's ``top_logprobs``) and, for
    local backends, every YES/NO variant of the vocabulary. It should contain ``chosen``. Texts
    are keys; if two token ids decode to the same text, their probabilities are summed.

    ``judgment_tokens`` (optional, default empty): token text -> ``"YES"`` or ``"NO"`` for
    tokens the backend resolved against its tokenizer, chiefly the first piece of a judgment word
    that the tokenizer splits (SmolLM2 splits ``"YES"`` into ``"Y"`` + ``"ES"``, so ``"Y"`` ->
    ``"YES"``). A text not in it is classified by ``judgment.classify_token``: whitespace
    stripped, compared case-insensitively with the template's judgment words. Remote backends
    that cannot see the tokenizer leave it empty.
    """

    chosen: str
    logprobs: Mapping[str, float] = field(default_factory=dict)
    judgment_tokens: Mapping[str, str] = field(default_factory=dict)


class JudgeBackend(Protocol):
    """Where first-token distributions come from (a local model, an OpenAI-compatible server).

    ``first_tokens`` returns one entry per conversation, in order: a ``FirstToken``, or a failed
    ``VerifierResult`` (status TIMEOUT or BACKEND_ERROR with a reason) for an item it could not
    judge. It raises only for errors that concern the whole call (bad configuration). ``close``
    releases sessions or models and is idempotent.
    """

    name: str

    def first_tokens(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        """One entry per conversation, in order."""
        ...

    def close(self) -> None: ...
