"""``rewardbridge evaluate`` end to end on the embedded 135M policy: rows written per sample,
a summary JSON/Markdown, and a rerun that resumes instead of generating again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.cli import main


@pytest.mark.smoke
def test_evaluate_writes_rows_summary_and_resumes(real_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "test.jsonl"
    rows_in = [
        {"id": "q1", "question": "What is 2 + 3?", "reference": "5", "domain": "math"},
        {"id": "q2", "question": "What is the chemical symbol of gold?", "reference": "Au",
         "domain": "chemistry"},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows_in))
    out, report = tmp_path / "rows.jsonl", tmp_path / "report"
    args = ["evaluate", "--data", str(data), "--max-new-tokens", "16", "--verifier", "exact",
            "--output", str(out), "--report", str(report)]  # fmt: skip
    assert main(args) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert all(r["response"] and r["status"] and r["verifier"] == "exact" for r in rows)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["domains"]["all"]["n"] == 2
    assert set(summary["domains"]) == {"all", "math", "chemistry"}
    assert "| chemistry | 1 |" in (report / "summary.md").read_text()
    before = out.read_text()
    assert main(args) == 0  # resumes: nothing new to generate, same rows
    assert out.read_text() == before
