"""metrics.jsonl rows, truncation on resume, the console line and the PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.training.metrics import (
    console_line,
    metrics_row,
    read_metrics,
    truncate_metrics,
)
from rewardbridge.training.plot import plot_metrics

LOGS = {
    "rb/reward_mean": 0.5, "rb/reward_std": 0.1, "rb/unjudged": 1.0, "rb/frac_groups_std0": 0.25,
    "kl": 0.002, "completions/mean_length": 30.0, "step_time": 10.0,
    "rb/time_generation_s": 6.0, "rb/time_verification_s": 1.5, "loss": 0.1,
}  # fmt: skip


def test_row_has_step_and_update_time() -> None:
    row = metrics_row(3, LOGS)
    assert row is not None
    assert row["step"] == 3 and row["reward_mean"] == 0.5 and row["unjudged"] == 1.0
    assert row["time_update_s"] == pytest.approx(2.5)
    assert metrics_row(3, {"train_runtime": 12.0}) is None  # the end-of-training summary
    assert "step 3/30 reward 0.500" in console_line(row, 30)


def test_canary_fpr_is_in_the_row_and_the_console_line_when_canaries_ran() -> None:
    row = metrics_row(2, {**LOGS, "rb/canary_fpr": 0.5, "rb/canary_probes": 2.0})
    assert row is not None and row["canary_fpr"] == 0.5 and row["canary_probes"] == 2.0
    assert console_line(row).endswith("| canary fpr 0.50")
    plain = metrics_row(2, LOGS)
    assert plain is not None and "canary" not in console_line(plain)


def test_truncate_keeps_rows_up_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)) + '{"step": 4')
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]  # torn line ignored
    truncate_metrics(path, 2)
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_plot_writes_png(tmp_path: Path) -> None:
    rows = [metrics_row(s, LOGS) for s in (1, 2, 3)]
    out = plot_metrics([r for r in rows if r], tmp_path / "c.png", extra_lines={"before": 0.1})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no metrics"):
        plot_metrics([], tmp_path / "d.png")
