"""(c) ``rewardbridge judge`` through vLLM while vLLM is SIGKILLed and restarted mid-run.

The items judged while vLLM is down are written as ``backend_error`` / ``timeout`` with no
reward; the same run (not restarted) judges again once vLLM is back; a rerun with the same
output writes nothing new, and every id is in the output exactly once; ``--retry-failed``
judges the failed ones again (all judged, still once each).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from items import multi_domain_items
from servers import VENV_BIN, ServerProcess

N_COPIES = 2  # 140 items: long enough to span vLLM's restart


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(path: Path, predicate: Any, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate(_lines(path)):
        assert proc.poll() is None or predicate(_lines(path)), "judge run ended early"
        assert time.monotonic() < deadline, f"timed out waiting on {path}"
        time.sleep(0.2)


def test_judge_run_survives_vllm_kill_and_restart(
    vllm_up: ServerProcess, tmp_path: Path, logs_dir: Path
) -> None:
    items = [
        {
            "id": f"{item.id}~{copy}",
            "question": item.question,
            "reference": item.reference,
            "response": item.response,
        }
        for copy in range(N_COPIES)
        for item in multi_domain_items()
    ]
    source, output = tmp_path / "items.jsonl", tmp_path / "judged.jsonl"
    source.write_text("".join(json.dumps(i) + "\n" for i in items))
    command = [
        str(VENV_BIN / "rewardbridge"),
        "judge",
        str(source),
        "-o",
        str(output),
        "--verifier",
        "generative",
        "--base-url",
        vllm_up.url,
        "--served-model",
        "judge",
        "--batch-size",
        "2",
        "--timeout",
        "30",
        "--no-progress",
    ]
    with open(logs_dir / "judge-run.log", "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(output, lambda lines: len(lines) >= 6, 300, proc)
            vllm_up.kill()
            _wait_for(
                output,
                lambda lines: sum(r["status"] != "judged" for r in lines) >= 4,
                120,
                proc,
            )
            vllm_up.start()
            assert proc.wait(timeout=900) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = _lines(output)
    statuses = Counter(r["status"] for r in lines)
    failed = [r for r in lines if r["status"] != "judged"]
    assert failed and all(r["status"] in ("backend_error", "timeout") for r in failed)
    assert all(r["reward"] is None for r in failed)
    # the run itself recovered: items after the failed ones were judged again
    last_failed = max(i for i, r in enumerate(lines) if r["status"] != "judged")
    assert any(r["status"] == "judged" for r in lines[last_failed + 1 :]), statuses
    assert Counter(r["id"] for r in lines) == Counter(i["id"] for i in items)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    again = _lines(output)
    assert Counter(r["id"] for r in again) == Counter(i["id"] for i in items)  # once each
    assert again == lines

    # --retry-failed judges the failed items again now that vLLM is back: all judged, once each
    retry = subprocess.run(
        [*command, "--retry-failed"], capture_output=True, text=True, timeout=600
    )
    assert retry.returncode == 0, retry.stderr[-2000:]
    retried = _lines(output)
    assert Counter(r["id"] for r in retried) == Counter(i["id"] for i in items)
    assert all(r["status"] == "judged" for r in retried), Counter(r["status"] for r in retried)
    print(json.dumps({"items": len(items), "by_status": dict(statuses)}))
