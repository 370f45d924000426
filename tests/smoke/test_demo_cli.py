"""``rewardbridge demo`` end to end on a tiny policy: the recipe with overrides runs the held-out
evaluation before and after one RL step and writes the summary fields, report and curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.smoke
def test_demo_writes_summary_report_and_curves(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the recipe's data path is relative to the repository
    out = tmp_path / "demo"
    code = main([
        "demo", "--seed", "2", "--output-dir", str(out),
        "--model.policy", str(tiny_model_dir), "--data.holdout", "3",
        "--training.max_steps", "1", "--training.prompts_per_step", "2",
        "--training.per_device_batch_size", "8", "--training.gradient_accumulation_steps", "1",
        "--generation.max_completion_length", "4",
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "demo_summary.json").read_text())
    h = summary["heldout"]
    assert summary["seed"] == 2 and summary["steps"] == 1 and h["n"] == 3
    for key in ("accuracy", "verifier_accuracy", "rule_accuracy", "format_rate"):
        assert 0 <= h["before"][key] <= 1 and 0 <= h["after"][key] <= 1, key
    low, high = h["gain_ci95"]
    assert low <= h["gain"] <= high
    assert len(summary["reward_curve"]) == 1 and summary["wall_s"] > 0
    assert len((out / "heldout_after.jsonl").read_text().splitlines()) == 3
    assert (out / "curves.png").stat().st_size > 0
    assert "paired bootstrap" in (out / "demo_report.md").read_text()
