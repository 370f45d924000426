"""`rewardbridge distill demo --quick` end to end on the embedded model (slow: minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.slow]


def test_quick_demo_writes_every_report(tmp_path: Path, real_model_dir: Path) -> None:
    out = tmp_path / "demo"
    code = (
        "from rewardbridge.experiments.distill_demo import QUICK, run_demo; "
        f"run_demo({str(out)!r}, QUICK)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=3600)
    summary = json.loads((out / "summary.json").read_text())
    for tag in ("zero_shot", "distilled"):
        assert summary[tag]["test"]["judged"] == summary["data"]["test"]
        assert summary[tag]["heldout"]["judged"] == summary["data"]["heldout"]
        assert summary[tag]["audit"]["fpr"] is not None
    assert summary["data"]["heldout_domains"] == ["law", "physics"]
    assert summary["learning_curve"][0]["examples"] == 0
    assert (out / "model" / "model.safetensors").exists()
    assert (out / "learning_curve.png").exists() and (out / "distilled/reliability.png").exists()
