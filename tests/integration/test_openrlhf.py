"""OpenRLHF 0.11.2's own reward client (``SingleTurnAgentExecutor``) against ``rewardbridge
serve`` over HTTP and with our ``reward_func`` file, inside the pinned OpenRLHF side
environment (``in_env/openrlhf_checks.py``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from servers import REPO, reward_server
from side_envs import ensure


def test_openrlhf_calls_our_server_and_reward_file(real_model_dir: Path, logs_dir: Path) -> None:
    env = ensure("openrlhf")
    checks = REPO / "tests" / "integration" / "in_env" / "openrlhf_checks.py"
    server = reward_server(["--verifier", "math"], logs_dir / "serve-openrlhf.log").start()
    try:
        result = subprocess.run(
            [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(checks)],
            cwd=REPO,
            env={**os.environ, "RB_MODEL_DIR": str(real_model_dir), "RB_REWARD_URL": server.url},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout, result.stdout[-3000:]
