"""The two record types every part of the library exchanges.

``Example``: a prompt for a policy with its reference answer (training and evaluation data).
``JudgeItem``: one response to judge against a reference (verifier input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Example:
    """A question with its reference answer.

    ``system_prompt`` is the policy's system prompt when the dataset carries one (the paper's
    datasets do); ``question`` is the user turn only, which is what the verifier sees.
    """

    id: str
    question: str
    reference: str
    domain: str | None = None
    system_prompt: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def messages(self, default_system_prompt: str | None = None) -> list[dict[str, str]]:
        """Chat messages for the policy: [system?, user]."""
        system = self.system_prompt if self.system_prompt is not None else default_system_prompt
        out: list[dict[str, str]] = []
        if system:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": self.question})
        return out


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One (question, reference, response) triple to judge; ``label`` is the gold verdict."""

    id: str
    question: str
    reference: str
    response: str
    label: bool | None = None
    domain: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
