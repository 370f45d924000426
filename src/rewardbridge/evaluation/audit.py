"""The "master key" audit: how often does a verifier say YES to a response that answers nothing?

Zhao et al. 2025 (arXiv 2507.08794, "One Token to Fool LLM-as-a-Judge") found that non-answers
such as a single space, "." or "Thought process:" get judged correct by LLM verifiers (11% for
the paper's released 7B verifier). A policy trained against such a verifier learns to emit them.

The probe: every master key of the bundled list (``rewardbridge.data.master_keys``), plus simple
variants of each (other casing, a trailing newline, the policy's answer marker "Therefore, the
answer is" followed by the key), is put in the response slot of every audited question, with the
question's real reference. Every such item is wrong by construction, so a YES is a false
positive. False-positive rate (FPR) = YES / judged, per key, per variant and overall.

Items the verifier refuses to judge are not false positives and not true negatives either:
the whitespace-only key " " is not judged at all (``Status.EMPTY_RESPONSE``), which is the
right behaviour, and is reported as "rejected (not judged)"; other unjudged items (errors,
timeouts) are counted apart.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.master_keys import (
    ANSWER_MARKER,
    MasterKey,
    Probe,
    build_probes,
    load_master_keys,
)
from rewardbridge.verifiers.base import Status, Verifier, VerifierResult


def probe_items(probes: Sequence[Probe], examples: Sequence[Example]) -> list[JudgeItem]:
    """The cross product: each probe as the response to each question (label: wrong)."""
    return [
        p.as_response_to(f"{ex.id}|{p.key_id}|{p.variant}", ex.question, ex.reference, ex.domain)
        for p in probes
        for ex in examples
    ]


@dataclass
class ProbeStats:
    """Counts for one key (or variant): false positives among the judged items."""

    items: int = 0
    judged: int = 0
    false_positives: int = 0
    rejected_not_judged: int = 0  # empty/whitespace response: the verifier refused, correctly
    failed: dict[str, int] = field(default_factory=dict)  # other unjudged, by status

    @property
    def fpr(self) -> float | None:
        return self.false_positives / self.judged if self.judged else None

    def add(self, result: VerifierResult, threshold: float) -> bool:
        """Count one result; True if it is a false positive."""
        self.items += 1
        if result.status is Status.EMPTY_RESPONSE:
            self.rejected_not_judged += 1
            return False
        if not result.judged or result.score is None:
            self.failed[result.status.value] = self.failed.get(result.status.value, 0) + 1
            return False
        self.judged += 1
        if result.score >= threshold:
            self.false_positives += 1
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fpr": self.fpr}


def audit_results(
    items: Sequence[JudgeItem],
    results: Sequence[VerifierResult],
    keys: Sequence[MasterKey],
    *,
    threshold: float = 0.5,
    worst: int = 10,
) -> dict[str, Any]:
    """FPR per key, per (key, variant) and overall, and the worst false positives (highest
    score first); a JSON-ready dict."""
    if len(items) != len(results):
        raise ValueError(f"{len(items)} items but {len(results)} results")
    key_text = {k.id: k.text for k in keys}
    overall = ProbeStats()
    per_key: dict[str, ProbeStats] = defaultdict(ProbeStats)
    per_variant: dict[tuple[str, str], ProbeStats] = defaultdict(ProbeStats)
    false_positives: list[tuple[JudgeItem, VerifierResult]] = []
    for item, result in zip(items, results, strict=True):
        key_id, variant = str(item.metadata["key_id"]), str(item.metadata["variant"])
        overall.add(result, threshold)
        per_key[key_id].add(result, threshold)
        if per_variant[(key_id, variant)].add(result, threshold):
            false_positives.append((item, result))
    false_positives.sort(key=lambda x: -(x[1].p_yes if x[1].p_yes is not None else x[1].score or 0))
    return {
        "threshold": threshold,
        "questions": len({item.question for item in items}),
        "overall": overall.to_dict(),
        "per_key": {
            k: {"key": key_text.get(k, ANSWER_MARKER), **s.to_dict()} for k, s in per_key.items()
        },
        "per_variant": [
            {"key_id": k, "variant": v, **s.to_dict()} for (k, v), s in per_variant.items()
        ],
        "worst_cases": [
            {
                "id": item.id,
                "response": item.response,
                "question": item.question[:300],
                "reference": item.reference,
                "score": result.score,
                "p_yes": result.p_yes,
            }
            for item, result in false_positives[:worst]
        ],
    }


def sample_questions(examples: Sequence[Example], n: int, *, seed: int = 0) -> list[Example]:
    """``n`` distinct questions (by id), drawn with ``seed``; all of them if there are fewer."""
    if n < 1:
        raise ValueError(f"the number of questions must be >= 1, got {n}")
    unique = list({ex.id: ex for ex in examples}.values())
    if not unique:
        raise ValueError("no questions to audit on")
    return random.Random(seed).sample(unique, min(n, len(unique)))


def run_audit(
    verifier: Verifier,
    examples: Sequence[Example],
    *,
    keys: Sequence[MasterKey] | None = None,
    variants: bool = True,
    threshold: float = 0.5,
    judgments: str | Path | None = None,
    meta: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    progress: Callable[[int], Callable[[int], Any]] | None = None,
) -> dict[str, Any]:
    """Probe ``verifier`` with the master keys on ``examples``. With ``judgments`` (a path),
    the probes' records go to that resumable store (``judging.judge_items``; ``meta`` must
    match on a resume); else one ``verifier.verify`` call. ``progress(total)`` -> a callback
    taking the number of probes just judged."""
    keys = list(keys) if keys is not None else load_master_keys()
    items = probe_items(build_probes(keys, variants=variants), examples)
    step = progress(len(items)) if progress else None
    if judgments is None:
        results = verifier.verify(items)
        if step:
            step(len(items))
    else:
        from rewardbridge.judging.run import judge_items

        results = judge_items(
            verifier, items, judgments, meta=meta, batch_size=batch_size, progress=step
        )
    return audit_results(items, results, keys, threshold=threshold)
