"""Policy evaluation: per-domain counts, unjudged apart, incremental rows and resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.evaluation.policy import PolicyReport, evaluate_policy, judge_rows, write_report
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult


class FirstWordVerifier(BaseVerifier):
    """YES when the response starts with the reference; 'skip' is not judged."""

    name = "fake"

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        out = []
        for it in items:
            if it.response == "skip":
                out.append(VerifierResult.failed(Status.BACKEND_ERROR, "down"))
            else:
                out.append(VerifierResult.ok(float(it.response.startswith(it.reference))))
        return out


EXAMPLES = [
    Example(id="1", question="q1", reference="a", domain="math"),
    Example(id="2", question="q2", reference="b", domain="math"),
    Example(id="3", question="q3", reference="c", domain="law"),
    Example(id="4", question="q4", reference="d", domain="law"),
]


def test_report_counts_unjudged_apart() -> None:
    from rewardbridge.verifiers.registry import build_verifier

    rows = judge_rows(
        EXAMPLES, ["a", "x", "skip", "d"], FirstWordVerifier(), build_verifier("contains")
    )
    report = PolicyReport("fake", "contains")
    for row in rows:
        report.add(row)
    d = report.to_dict()["domains"]
    assert d["all"] == {
        "n": 4,
        "judged": 3,
        "unjudged": 1,
        "accuracy": 2 / 3,
        "accuracy_all": 0.5,
        "mean_score": 2 / 3,
        "rule_accuracy": 0.5,
        "rule_unjudged": 0,
    }
    assert d["law"]["accuracy"] == 1.0 and d["law"]["unjudged"] == 1
    assert d["math"]["accuracy"] == 0.5
    assert "| law | 2 | 1 | 1 | 100.0 |" in report.to_markdown()
    # one judged-item record per response: the judge's reward (null when not judged) and the
    # rule check's beside it
    assert [r["reward"] for r in rows] == [1.0, 0.0, None, 1.0]
    assert rows[2]["status"] == "backend_error" and rows[2]["rule_reward"] == 0.0
    assert rows[0]["final_step"] == "a" and rows[0]["verifier"] == "fake"


def test_evaluate_writes_rows_and_resumes(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rewardbridge.models import load_causal_lm

    pair = load_causal_lm(tiny_model_dir, device="cpu")
    out = tmp_path / "rows.jsonl"
    first = evaluate_policy(
        pair, EXAMPLES[:2], FirstWordVerifier(), max_new_tokens=4, batch_size=2, output=out
    )
    assert first.overall.n == 2
    lines = out.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["1", "2"]
    second = evaluate_policy(
        pair, EXAMPLES, FirstWordVerifier(), max_new_tokens=4, batch_size=2, output=out
    )
    assert second.overall.n == 4
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["1", "2", "3", "4"]
    folder = write_report(second, tmp_path / "rep")
    assert json.loads((folder / "summary.json").read_text())["domains"]["all"]["n"] == 4
