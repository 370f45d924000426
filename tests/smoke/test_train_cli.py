"""``rewardbridge train`` end to end: the quickstart recipe for 2 steps (tiny policy, short
completions) writes metrics for 2 steps and checkpoints; ``--resume`` continues to step 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.smoke
def test_train_two_steps_then_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = [
        "train", "--config", str(REPO / "recipes" / "quickstart-cpu.yaml"),
        "--output-dir", str(out),
        "--model.policy", str(tiny_model_dir),
        "--generation.max_completion_length", "8",
        "--training.save_steps", "1",
        "--logging.report_to", "[]",
        "--data.limit", "8",
    ]  # fmt: skip
    assert main([*common, "--max-steps", "2"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("reward_mean", "frac_groups_std0", "unjudged", "response_length",
                "time_generation_s", "time_verification_s", "time_update_s"):  # fmt: skip
        assert key in rows[0], key
    assert (out / "checkpoint-2" / "adapter_model.safetensors").exists()
    assert (out / "final" / "adapter_config.json").exists()
    assert json.loads((out / "config.json").read_text())["algorithm"]["estimator"] == "rloo"

    assert main([*common, "--max-steps", "3", "--resume"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


@pytest.mark.smoke
def test_invalid_config_fails_at_start_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--config", str(REPO / "recipes" / "quickstart-cpu.yaml"),
                 "--algorithm.estimator", "ppo"])  # fmt: skip
    assert code == 2
    assert "algorithm.estimator" in capsys.readouterr().err
