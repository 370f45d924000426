"""verl 0.9.1's own reward managers, reward loop and ``compute_advantage`` calling our reward
file and estimators, run inside the pinned verl side environment (``in_env/verl_checks.py``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from servers import REPO
from side_envs import ensure


def test_verl_calls_our_reward_and_estimators(real_model_dir: Path) -> None:
    env = ensure("verl")
    checks = REPO / "tests" / "integration" / "in_env" / "verl_checks.py"
    result = subprocess.run(
        [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(checks)],
        cwd=REPO,
        env={**os.environ, "RB_MODEL_DIR": str(real_model_dir)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "8 passed" in result.stdout, result.stdout[-3000:]
