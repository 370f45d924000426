"""``rewardbridge serve`` end to end: the real CLI in a subprocess on loopback, OpenRLHF and
native requests, the default bind address, a clean shutdown."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.smoke

CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(*args: str, log: Path) -> Iterator[str]:
    port = free_port()
    entry = [sys.executable, "-c", "from rewardbridge.cli import main; raise SystemExit(main())"]
    cmd = [*entry, "serve", "--port", str(port), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, log.read_text()


def openrlhf_body() -> dict[str, list[str]]:
    questions = ["What is the capital of France?", "What is 2+2?", "Name a primary colour."]
    answers = ["The capital of France is Paris.", "2+2 = 5", ""]
    prompts = [CHATML.format(q=q) for q in questions]
    return {
        "query": [p + a + "<|im_end|>" for p, a in zip(prompts, answers, strict=True)],
        "prompts": prompts,
        "labels": ["Paris", json.dumps({"question": "What is 2+2?", "reference": "4"}), "red"],
    }


def test_serve_rule_verifier_on_loopback(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serve("--verifier", "contains", log=log) as url:
        out = httpx.post(f"{url}/get_reward", json=openrlhf_body(), timeout=30).json()
        metrics = httpx.get(f"{url}/metrics").text
    assert out["rewards"][:2] == out["scores"][:2] == [1.0, 0.0]
    assert math.isnan(out["rewards"][2]) and math.isnan(out["scores"][2])  # never a made-up 0
    assert out["extra_logs"]["unjudged"] == [0.0, 0.0, 1.0]  # the empty response
    assert 'rewardbridge_items_total{status="empty_response"} 1.0' in metrics
    assert "http://127.0.0.1:" in log.read_text()  # the default bind is loopback


def test_serve_generative_judge_on_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("rewardbridge.verifiers.generative")
    log = tmp_path / "serve.log"
    with serve("--verifier", "generative", "--max-batch-size", "8", log=log) as url:
        rlhf = httpx.post(f"{url}/get_reward", json=openrlhf_body(), timeout=120).json()
        native = httpx.post(
            f"{url}/v1/judge",
            timeout=120,
            json={
                "items": [
                    {
                        "question": "What is the capital of France?",
                        "reference": "Paris",
                        "response": "Therefore, the answer is Paris.",
                    },
                ]
            },
        ).json()
    assert len(rlhf["rewards"]) == 3 and all(0.0 <= r <= 1.0 for r in rlhf["rewards"][:2])
    assert math.isnan(rlhf["rewards"][2])  # empty response: not judged, NaN, flagged
    assert rlhf["extra_logs"]["unjudged"][2] == 1.0
    result = native["results"][0]
    assert result["status"] == "judged" and result["judgment"] in ("YES", "NO")
    assert result["p_yes"] is not None and 0.0 <= result["p_yes"] <= 1.0
