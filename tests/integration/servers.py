"""Real server processes for the integration tier: vLLM (its own venv) and ``rewardbridge serve``.

Each runs in its own process group on 127.0.0.1, with its log in a file, so a test can kill it
(SIGKILL to the whole group: vLLM's engine core is a child process) and start it again on the
same port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A command serving HTTP on 127.0.0.1:``port``, ready when ``GET health_path`` is 200."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        health_path: str = "/health",
        start_timeout_s: float = 600.0,
    ) -> None:
        self.command = list(command)
        self.port = port
        self.log_path = log_path
        self.env = env
        self.health_path = health_path
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + self.health_path, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, wait: bool = True) -> ServerProcess:
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        log.write(f"\n=== start {self.starts}: {' '.join(self.command)}\n".encode())
        log.flush()
        env = {**os.environ, **(self.env or {})}
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not self.healthy():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.command[:3]} exited: see {self.log_path}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready in {self.start_timeout_s:g} s: {self.log_path}")
            time.sleep(1.0)

    def kill(self) -> None:
        """SIGKILL the whole process group (no graceful shutdown: a crash)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def vllm_server(
    python: Path, model_dir: Path, log_path: Path, port: int | None = None, dtype: str = "float32"
) -> ServerProcess:
    """``python -m vllm.entrypoints.openai.api_server`` serving ``model_dir`` as ``judge``.

    float32 by default: the agreement test compares it with the in-process judge in float32,
    so the comparison measures the judgment rule, not bf16 rounding (docs/backends.md gives
    the bf16 figures). ``--enforce-eager``: no inductor compile, so a start takes ~1 min here.
    """
    command = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        "judge",
        "--host",
        "127.0.0.1",
        "--port",
        str(port or free_port()),
        "--max-logprobs",
        "20",
        "--dtype",
        dtype,
        "--enforce-eager",
        "--max-model-len",
        "4096",
        "--disable-log-stats",
    ]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    return ServerProcess(command, int(command[command.index("--port") + 1]), log_path, env=env)


def reward_server(args: Sequence[str], log_path: Path) -> ServerProcess:
    """``rewardbridge serve ARGS`` on a free port."""
    port = free_port()
    command = [str(VENV_BIN / "rewardbridge"), "serve", "--port", str(port), *args]
    return ServerProcess(command, port, log_path, start_timeout_s=120.0)
