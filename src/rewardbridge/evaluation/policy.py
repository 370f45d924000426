"""Policy evaluation as in the paper (§8): one response per test question (greedy by default),
its final step judged once by the verifier against the reference, accuracy per domain; a rule
check (``contains`` by default, the paper's rule baseline) is reported beside it.

A response is correct when the verifier judged it with score >= 0.5 (YES for a binary judge).
Unjudged responses (empty, backend error, no judgment token) are counted apart and are not
in the accuracy's denominator; ``accuracy_all`` counts them as wrong, for comparison.

Each judged response is one judged-item record (``judging/records.py``: the verifier's
reward and status, the texts, ``final_step``, and the rule check's ``rule_reward`` and
``rule_status``), appended batch by batch to the one resumable store (``judging/store.py``);
a rerun skips the ids already there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.judging.records import result_record
from rewardbridge.judging.run import verifier_name, verify_batch
from rewardbridge.judging.store import RecordStore
from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.text import final_step

ALL = "all"


@dataclass
class DomainStats:
    """Counts for one domain (or ``all``)."""

    n: int = 0
    judged: int = 0
    correct: int = 0
    rule_judged: int = 0
    rule_correct: int = 0
    score_sum: float = 0.0

    @property
    def unjudged(self) -> int:
        return self.n - self.judged

    def as_dict(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        return {
            "n": self.n,
            "judged": self.judged,
            "unjudged": self.unjudged,
            "accuracy": ratio(self.correct, self.judged),
            "accuracy_all": ratio(self.correct, self.n),
            "mean_score": self.score_sum / self.judged if self.judged else None,
            "rule_accuracy": ratio(self.rule_correct, self.rule_judged),
            "rule_unjudged": self.n - self.rule_judged,
        }


@dataclass
class PolicyReport:
    """Per-domain accuracy of a policy; ``domains[ALL]`` is the whole test set."""

    verifier: str
    rule_verifier: str
    domains: dict[str, DomainStats] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        """Count one record (``judge_rows``)."""
        reward, rule_reward = row["reward"], row.get("rule_reward")
        for name in (ALL, row.get("domain") or "unknown"):
            stats = self.domains.setdefault(name, DomainStats())
            stats.n += 1
            if reward is not None:
                stats.judged += 1
                stats.score_sum += reward
                stats.correct += int(reward >= 0.5)
            if rule_reward is not None:
                stats.rule_judged += 1
                stats.rule_correct += int(rule_reward >= 0.5)

    @property
    def overall(self) -> DomainStats:
        return self.domains.get(ALL, DomainStats())

    def to_dict(self) -> dict[str, Any]:
        return {
            "verifier": self.verifier,
            "rule_verifier": self.rule_verifier,
            "domains": {k: v.as_dict() for k, v in sorted(self.domains.items())},
        }

    def to_markdown(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.1f}"

        lines = [
            f"Verifier: `{self.verifier}`; rule check: `{self.rule_verifier}`.",
            "",
            "| domain | n | judged | unjudged | accuracy % | rule accuracy % |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, stats in sorted(self.domains.items(), key=lambda kv: (kv[0] != ALL, kv[0])):
            d = stats.as_dict()
            lines.append(
                f"| {name} | {d['n']} | {d['judged']} | {d['unjudged']} | "
                f"{pct(d['accuracy'])} | {pct(d['rule_accuracy'])} |"
            )
        return "\n".join(lines) + "\n"


def judge_rows(
    examples: Sequence[Example],
    responses: Sequence[str],
    verifier: Verifier,
    rule: Verifier,
) -> list[dict[str, Any]]:
    """Judge one response per example with the verifier and the rule check -> one record each
    (the verifier's result, with the texts, ``final_step`` and the rule's verdict beside it)."""
    items = [
        JudgeItem(
            id=ex.id, question=ex.question, reference=ex.reference, response=resp, domain=ex.domain
        )
        for ex, resp in zip(examples, responses, strict=True)
    ]
    judged = verify_batch(verifier, items)
    ruled = verify_batch(rule, items)
    return [
        result_record(
            item,
            v,
            verifier_name(verifier),
            text=True,
            extra={
                "final_step": final_step(item.response),
                "rule_reward": r.score,
                "rule_status": r.status.value,
            },
        )
        for item, v, r in zip(items, judged, ruled, strict=True)
    ]


def evaluate_policy(
    policy: Any,
    examples: Sequence[Example],
    verifier: Verifier,
    *,
    rule_verifier: str | Verifier = "contains",
    max_new_tokens: int = 256,
    batch_size: int = 8,
    temperature: float = 0.0,
    system_prompt: str | None = None,
    output: str | Path | None = None,
    skip_invalid: bool = False,
    progress: bool = False,
) -> PolicyReport:
    """Generate one response per example, judge it, and return per-domain accuracy.

    ``policy``: a model spec or a (model, tokenizer) pair (see ``generate_responses``).
    ``output``: the record store of the judged responses, appended batch by batch; ids already
    in it are not generated again (resume) and count in the report; it must have been written
    with the same verifier and rule (``skip_invalid``: skip and count its bad lines).
    """
    from rewardbridge.policy.generation import generate_responses, load_policy
    from rewardbridge.verifiers.registry import build_verifier

    rule = build_verifier(rule_verifier) if isinstance(rule_verifier, str) else rule_verifier
    report = PolicyReport(verifier=verifier.name, rule_verifier=rule.name)
    store = None
    done: set[str] = set()
    if output is not None:
        store = RecordStore(
            output,
            skip_invalid=skip_invalid,
            meta={"verifier": report.verifier, "rule_verifier": report.rule_verifier},
        )
        for row in store.records():
            done.add(row["id"])
            report.add(row)
    todo = [ex for ex in examples if ex.id not in done]
    if not todo:
        return report
    pair = load_policy(policy)
    bar = _progress_bar(len(todo)) if progress else None
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            responses = generate_responses(
                pair,
                batch,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                batch_size=batch_size,
                system_prompt=system_prompt,
            )
            rows = judge_rows(batch, [r[0] for r in responses], verifier, rule)
            if store is not None:
                store.append(rows)
            for row in rows:
                report.add(row)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    return report


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluate", unit="q")


def write_report(report: PolicyReport, directory: str | Path, *, title: str = "") -> Path:
    """``summary.json`` and ``summary.md`` in ``directory``; returns the folder."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    heading = f"# Policy evaluation{': ' + title if title else ''}\n\n"
    (folder / "summary.md").write_text(heading + report.to_markdown())
    return folder


__all__ = [
    "ALL",
    "DomainStats",
    "PolicyReport",
    "evaluate_policy",
    "judge_rows",
    "write_report",
]
