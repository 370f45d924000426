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


def test_judge_output_gives_the_same_metrics_as_eval_verifier_judging(tmp_path: Path) -> None:
    labeled = _input(tmp_path)
    judged = tmp_path / "judged.jsonl"
    assert main(["judge", str(labeled), "-o", str(judged), "--verifier", "contains"]) == 0
    assert main(["judge", str(labeled), "-o", str(tmp_path / "t.jsonl"), "--with-text"]) == 0
    reports = {}
    for name, source, extra in [
        ("direct", labeled, ["--verifier", "contains"]),
        ("from-judge", judged, []),
        ("from-judge-text", tmp_path / "t.jsonl", ["--against-verifier", "exact"]),
    ]:
        argv = ["eval-verifier", "--input", str(source), "--report", str(tmp_path / name)]
        assert main(argv + extra) == 0
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    assert not (tmp_path / "from-judge" / "judgments.jsonl").exists()  # nothing judged again
    direct, from_judge = reports["direct"], reports["from-judge"]
    for report in (direct, from_judge):
        report.pop("input")
    assert from_judge["verifier"] == "contains"
    assert {k: v for k, v in from_judge.items() if k != "verifier"} == {
        k: v for k, v in direct.items() if k != "verifier"
    }
    assert reports["from-judge-text"]["kappa"] == direct["kappa"]
    assert reports["from-judge-text"]["against"]["kappa"] is not None


def test_against_verifier_on_judgments_without_texts_is_refused(tmp_path: Path) -> None:
    judged = tmp_path / "judged.jsonl"
    assert main(["judge", str(_input(tmp_path)), "-o", str(judged)]) == 0
    argv = ["eval-verifier", "--input", str(judged), "--report", str(tmp_path / "r")]
    assert main([*argv, "--against-verifier", "exact"]) == 2
