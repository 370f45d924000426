"""Rule verifiers: the paper's rule-based reward baselines (§3) and a normalised exact match.

- ``contains`` (paper §3, "rule-based binary reward"): 1 if the normalised reference occurs in the
  normalised final step of the response, else 0.
- ``jaccard`` (paper §3, "rule-based soft reward"): Jaccard similarity |R ∩ A| / |R ∪ A| of the
  token sets of the final step and the reference, in [0, 1].
- ``exact``: the extracted answer ("Therefore, the answer is X" -> "X", else the final step)
  equals the reference after normalisation.

Where we depart from the paper, and why:

- The paper does not say which part of the response the rules look at. We default to the final
  step (the last non-empty line), the same text the paper's LLM verifier judges, so the rule and
  the generative rewards see the same evidence. ``response_slot="full"`` uses the whole response;
  ``response_slot="answer"`` uses the extracted answer.
- ``contains`` matches whole tokens by default (``match="token"``): the reference must not be glued
  to a letter or digit on either side, so the reference "A" does not occur in "answer" and "5"
  does not occur in "15" or "2.5". ``match="substring"`` is the literal reading of the paper.
- Normalisation (``rewardbridge.verifiers.text.normalize_text``): NFKC, casefold, collapsed
  whitespace, edge punctuation stripped. Jaccard tokens are the whitespace-separated words with
  their edge punctuation stripped.

An empty response is not judged (``BaseVerifier``); an empty reference is ``INVALID_INPUT``.

Each check takes microseconds, far less than handing an item to another process costs (pickling
and a pipe round trip are ~0.1 ms), so these verifiers judge a batch in the calling thread; they
hold no state and are safe to call from any thread. ``math`` is the rule verifier that needs a
process pool.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import Literal, get_args

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult
from rewardbridge.verifiers.text import (
    ResponseSlot,
    check_response_slot,
    extract_answer,
    normalize_text,
    response_slot_text,
)

ContainsMatch = Literal["token", "substring"]


def contains_reference(text: str, reference: str, *, match: ContainsMatch = "token") -> bool:
    """Whether normalised ``reference`` occurs in normalised ``text``.

    ``match="token"``: the occurrence must not continue a word or number on either side (no letter,
    digit or underscore next to it, and no "1." / ",5" continuation of a number).
    """
    needle = normalize_text(reference)
    haystack = normalize_text(text)
    if match == "substring":
        return needle in haystack
    before = r"(?<!\w)(?<!\d[.,])" if re.match(r"\w", needle[:1]) else ""
    after = r"(?!\w)(?![.,]\d)" if re.match(r"\w", needle[-1:]) else ""
    return re.search(before + re.escape(needle) + after, haystack) is not None


def token_set(text: str) -> frozenset[str]:
    """Normalised whitespace-separated tokens with edge punctuation stripped; empty ones dropped."""
    return frozenset(t for t in (normalize_text(w) for w in normalize_text(text).split()) if t)


def jaccard_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0.0 when both are empty."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


class _RuleVerifier(BaseVerifier):
    """A rule judged per item in the calling thread; an empty reference is ``INVALID_INPUT``."""

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [
            self._judge(item)
            if normalize_text(item.reference)
            else VerifierResult.failed(Status.INVALID_INPUT, f"item {item.id!r}: empty reference")
            for item in items
        ]

    @abstractmethod
    def _judge(self, item: JudgeItem) -> VerifierResult: ...


class ContainsVerifier(_RuleVerifier):
    """Paper's rule-based binary reward: 1.0 if the reference occurs in the final step, else 0.0."""

    name = "contains"

    def __init__(
        self, *, response_slot: ResponseSlot = "final_step", match: ContainsMatch = "token"
    ) -> None:
        if match not in get_args(ContainsMatch):
            raise ValueError(f"match must be one of token, substring; got {match!r}")
        self.response_slot = check_response_slot(response_slot)
        self.match: ContainsMatch = match

    def _judge(self, item: JudgeItem) -> VerifierResult:
        text = response_slot_text(item.response, self.response_slot)
        found = contains_reference(text, item.reference, match=self.match)
        return VerifierResult.ok(
            1.0 if found else 0.0,
            reason="reference found" if found else "reference not found",
        )


class JaccardVerifier(_RuleVerifier):
    """Paper's rule-based soft reward: Jaccard similarity of final-step and reference tokens."""

    name = "jaccard"

    def __init__(self, *, response_slot: ResponseSlot = "final_step") -> None:
        self.response_slot = check_response_slot(response_slot)

    def _judge(self, item: JudgeItem) -> VerifierResult:
        text = response_slot_text(item.response, self.response_slot)
        return VerifierResult.ok(jaccard_similarity(token_set(text), token_set(item.reference)))


class ExactVerifier(_RuleVerifier):
    """1.0 if the extracted answer equals the reference after normalisation, else 0.0."""

    name = "exact"

    def _judge(self, item: JudgeItem) -> VerifierResult:
        equal = normalize_text(extract_answer(item.response)) == normalize_text(item.reference)
        return VerifierResult.ok(1.0 if equal else 0.0)
