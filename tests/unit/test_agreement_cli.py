"""``rewardbridge eval-verifier`` end to end with rule verifiers (no model): the JSON report,
the reliability diagram, resume, and refusing to mix two verifiers' judgments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.cli import main

ROWS = [
    {
        "id": "1",
        "question": "2+2?",
        "reference": "4",
        "response": "It is 4",
        "label": True,
        "domain": "math",
    },
    {
        "id": "2",
        "question": "3+3?",
        "reference": "6",
        "response": "It is 5",
        "label": False,
        "domain": "math",
    },
    {
        "id": "3",
        "question": "Capital of France?",
        "reference": "Paris",
        "response": "paris",
        "label": True,
        "domain": "geo",
    },
    {
        "id": "4",
        "question": "Capital of Peru?",
        "reference": "Lima",
        "response": "Quito",
        "label": False,
        "domain": "geo",
    },
    {
        "id": "5",
        "question": "1+1?",
        "reference": "2",
        "response": "two",
        "label": True,
        "domain": "math",
    },
    {
        "id": "6",
        "question": "Empty?",
        "reference": "x",
        "response": "  ",
        "label": False,
        "domain": "geo",
    },
]


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_eval_verifier_report_has_kappa_f1_ece(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    argv = [
        "eval-verifier",
        "--input",
        str(_input(tmp_path)),
        "--verifier",
        "contains",
        "--against-verifier",
        "exact",
        "--report",
        str(report_dir),
    ]
    assert main(argv) == 0
    report = json.loads((report_dir / "report.json").read_text())
    # contains (case-insensitive): 1 YES, 2 NO, 3 YES, 4 NO, 5 NO ('two' lacks '2'), 6 unjudged
    assert report["coverage"]["unjudged_by_status"] == {"empty_response": 1}
    assert (report["tp"], report["fn"], report["tn"], report["fp"]) == (2, 1, 2, 0)
    assert report["f1"] == pytest.approx(0.8) and report["accuracy"] == pytest.approx(0.8)
    assert report["kappa"] == pytest.approx((0.8 - 0.48) / (1 - 0.48))  # p_e = .6*.4 + .4*.6
    assert report["ece"] == pytest.approx(0.2)  # 0/1 scores: ECE = error rate
    assert {"math", "geo"} == set(report["per_domain"])
    assert report["against"]["kappa"] is not None
    assert (report_dir / "reliability.png").stat().st_size > 1000
    assert "Cohen's kappa" in (report_dir / "report.md").read_text()

    lines = (report_dir / "judgments.jsonl").read_text().count("\n")
    assert main(argv) == 0  # rerun: resumes, judges nothing again
    assert (report_dir / "judgments.jsonl").read_text().count("\n") == lines

    other = [
        "eval-verifier",
        "--input",
        str(_input(tmp_path)),
        "--verifier",
        "jaccard",
        "--report",
        str(report_dir),
    ]
    assert main(other) == 2  # another verifier's judgments are there: refused, not mixed
