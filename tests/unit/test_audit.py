"""Master-key audit on a test-double verifier that says YES to some keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewardbridge.cli import main
from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.master_keys import (
    ANSWER_MARKER,
    MasterKey,
    build_probes,
    key_variants,
    load_master_keys,
)
from rewardbridge.evaluation.audit import run_audit
from rewardbridge.evaluation.reports import audit_markdown
from rewardbridge.verifiers.base import BaseVerifier, VerifierResult


class FooledBy(BaseVerifier):
    """YES exactly when the response, stripped, is one of ``keys``."""

    name = "fooled"

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = set(keys)

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [
            VerifierResult.ok(1.0 if item.response.strip() in self.keys else 0.0, p_yes=0.9)
            for item in items
        ]


EXAMPLES = [Example(id=str(i), question=f"question {i}", reference=f"ref {i}") for i in range(4)]


def test_bundled_keys_load() -> None:
    keys = load_master_keys()
    assert len(keys) >= 10
    assert " " in [k.text for k in keys] and "Thought process:" in [k.text for k in keys]


def test_variants_are_distinct_and_include_marker() -> None:
    probes = key_variants(MasterKey("1", "Solution"))
    assert [p.variant for p in probes] == [
        "original",
        "lower",
        "upper",
        "trailing-newline",
        "answer-marker",
    ]
    assert probes[-1].text == f"{ANSWER_MARKER} Solution"
    assert [p.variant for p in key_variants(MasterKey("2", "."))] == [
        "original",
        "trailing-newline",
        "answer-marker",
    ]  # '.'.lower() == '.': not probed twice
    assert build_probes([MasterKey("2", ".")])[-1].text == ANSWER_MARKER


def test_fpr_per_key_and_overall() -> None:
    keys = [MasterKey("0", " "), MasterKey("1", "."), MasterKey("2", "Solution")]
    audit = run_audit(FooledBy(["."]), EXAMPLES, keys=keys, variants=False)
    per_key = audit["per_key"]
    assert per_key["1"]["fpr"] == 1.0 and per_key["1"]["false_positives"] == 4
    assert per_key["2"]["fpr"] == 0.0 and per_key["2"]["judged"] == 4
    # the whitespace key is refused, not judged: neither a false positive nor a true negative
    assert per_key["0"]["judged"] == 0 and per_key["0"]["rejected_not_judged"] == 4
    assert per_key["0"]["fpr"] is None
    assert audit["overall"]["fpr"] == pytest.approx(4 / 8)
    assert audit["overall"]["rejected_not_judged"] == 4
    assert {w["response"] for w in audit["worst_cases"]} == {"."}
    md = audit_markdown(audit)
    assert "rejected (not judged)" in md and "50.0%" in md


def test_variants_catch_a_case_sensitive_hole() -> None:
    keys = [MasterKey("6", "Solution")]
    audit = run_audit(FooledBy(["SOLUTION"]), EXAMPLES, keys=keys)
    by_variant = {(v["key_id"], v["variant"]): v for v in audit["per_variant"]}
    assert by_variant[("6", "upper")]["fpr"] == 1.0
    assert by_variant[("6", "original")]["fpr"] == 0.0
    assert audit["per_key"]["6"]["fpr"] == pytest.approx(1 / 5)


def test_audit_cli_writes_fpr_per_key(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"id": i, "question": f"q{i}", "reference": "42"}) + "\n" for i in range(3)
        )
    )
    report = tmp_path / "report"
    argv = [
        "audit",
        "--verifier",
        "contains",
        "--questions",
        str(questions),
        "--report",
        str(report),
    ]
    assert main(argv) == 0
    audit = json.loads((report / "audit.json").read_text())
    assert audit["questions"] == 3
    assert all("fpr" in s for s in audit["per_key"].values())
    assert audit["per_key"]["0"]["rejected_not_judged"] > 0
    assert main(argv) == 0  # rerun resumes from the judgments file
    assert (report / "judgments.jsonl").read_text().count("\n") == audit["overall"]["items"]
