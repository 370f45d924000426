"""``rewardbridge train`` end to end: the quickstart recipe for 2 steps (tiny policy, short
completions) writes metrics for 2 steps and checkpoints; ``--resume`` continues to step 3."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from rewardbridge.cli import main
from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, VerifierResult

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


class VaryingVerifier(BaseVerifier):
    """Scores that differ within a group (a hash of the text), so every step has a gradient."""

    name = "varying"

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [VerifierResult.ok((zlib.crc32(it.response.encode()) % 5) / 4) for it in items]


@pytest.mark.smoke
def test_two_steps_change_every_trained_parameter(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The recipe through ``train()``: after step 1 every LoRA B is non-zero (it starts at 0),
    and step 2 changes every trained tensor again (A only moves once B is non-zero)."""
    from safetensors.torch import load_file

    from rewardbridge.training.config import load_config
    from rewardbridge.training.rl import train

    config = load_config(
        REPO / "recipes" / "quickstart-cpu.yaml",
        ["--training.output_dir", str(tmp_path / "run"), "--model.policy", str(tiny_model_dir),
         "--generation.max_completion_length", "6", "--training.max_steps", "2",
         "--training.save_steps", "1", "--training.save_total_limit", "null",
         "--logging.report_to", "[]", "--data.limit", "8"],
    )  # fmt: skip
    train(config, verifier=VaryingVerifier())
    step1 = load_file(tmp_path / "run" / "checkpoint-1" / "adapter_model.safetensors")
    step2 = load_file(tmp_path / "run" / "checkpoint-2" / "adapter_model.safetensors")
    assert step1 and set(step1) == set(step2)
    zero_b = [k for k, v in step1.items() if "lora_B" in k and not v.abs().sum() > 0]
    assert not zero_b, zero_b
    unchanged = [k for k in step1 if torch.equal(step1[k], step2[k])]
    assert not unchanged, unchanged
