"""``rewardbridge distill collect`` + ``distill train`` end to end on the real 135M model: the
student folder loads with ``--model`` and judges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

ROWS = [
    {
        "id": "a",
        "question": "What is 2+2?",
        "reference": "4",
        "response": "So it is 4",
        "label": True,
    },
    {
        "id": "b",
        "question": "What is 3+3?",
        "reference": "6",
        "response": "So it is 5",
        "label": False,
    },
    {
        "id": "c",
        "question": "Capital of Peru?",
        "reference": "Lima",
        "response": "Lima",
        "label": True,
    },
    {
        "id": "d",
        "question": "Capital of Peru?",
        "reference": "Lima",
        "response": " ",
        "label": False,
    },
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from rewardbridge.cli import main; raise SystemExit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collect_train_and_judge_with_the_student(tmp_path: Path, real_model_dir: Path) -> None:
    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    records = tmp_path / "teacher.jsonl"
    done = run(
        "distill", "collect", "--rollouts", str(rollouts), "--teacher", "labels", "-o", str(records)
    )
    assert done.returncode == 0, done.stderr
    assert "skipped unjudged: 1" in done.stdout  # the empty response: skipped, not a NO
    assert len(records.read_text().splitlines()) == 3
    assert (tmp_path / "teacher.prompt_ids.txt").exists()

    student = tmp_path / "student"
    done = run(
        "distill",
        "train",
        "--data",
        str(records),
        "--base-model",
        str(real_model_dir),
        "--output-dir",
        str(student),
        "--max-steps",
        "1",
        "--batch-size",
        "3",
        "--lr",
        "1e-5",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((student / "distill.json").read_text())["summary"]["steps"] == 1

    report = tmp_path / "report"
    done = run(
        "eval-verifier",
        "--input",
        str(rollouts),
        "--verifier",
        "generative",
        "--model",
        str(student),
        "--report",
        str(report),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((report / "report.json").read_text())
    assert result["coverage"]["items"] == 4
    assert result["coverage"]["unjudged_by_status"].get("empty_response") == 1
    judgments = [json.loads(line) for line in (report / "judgments.jsonl").read_text().splitlines()]
    assert any(j.get("p_yes") is not None for j in judgments)  # the student's P(YES)
