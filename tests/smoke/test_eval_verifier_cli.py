"""``rewardbridge eval-verifier`` and ``rewardbridge audit`` end to end with the real 135M judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[2]
HARDVERIFY = REPO / "src/rewardbridge/data/corpora/hardverify_math/HardVerify-Math_pairs.jsonl"


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


def test_eval_verifier_generative_against_rule(tmp_path: Path, real_model_dir: Path) -> None:
    report = tmp_path / "report"
    done = run(
        "eval-verifier",
        "--input",
        str(HARDVERIFY),
        "--limit",
        "12",
        "--verifier",
        "generative",
        "--against-verifier",
        "math",
        "--report",
        str(report),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((report / "report.json").read_text())
    assert {"kappa", "f1", "ece", "accuracy", "coverage", "against"} <= set(result)
    assert result["coverage"]["items"] == 12
    assert result["evaluated"] + result["excluded_unjudged_or_unlabeled"] == 12
    assert result["against"]["coverage"]["items"] == 12
    assert (report / "reliability.png").stat().st_size > 1000


def test_audit_generative_reports_fpr_per_key(tmp_path: Path, real_model_dir: Path) -> None:
    report = tmp_path / "audit"
    done = run(
        "audit",
        "--verifier",
        "generative",
        "--n-questions",
        "2",
        "--no-variants",
        "--report",
        str(report),
    )
    assert done.returncode == 0, done.stderr
    audit = json.loads((report / "audit.json").read_text())
    assert audit["questions"] == 2
    assert len(audit["per_key"]) >= 10
    assert audit["per_key"]["0"]["rejected_not_judged"] == 2  # " " is refused, not judged
    assert (
        audit["overall"]["judged"]
        + audit["overall"]["rejected_not_judged"]
        + sum(audit["overall"]["failed"].values())
        == audit["overall"]["items"]
    )
    assert "false-positive rate" in done.stdout
