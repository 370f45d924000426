"""``rewardbridge judge`` end to end: killed mid-run, then resumed; every good id exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

N_LINES = 10_000
BAD_LINES = {  # 1-based line number -> the malformed content
    37: "{this is not json",
    2_500: json.dumps({"id": "no-reference", "question": "q", "response": "r"}),
    5_001: json.dumps({"id": "empty-question", "question": " ", "reference": "r", "response": "r"}),
    9_999: "[1, 2, 3]",
}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("rewardbridge")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from rewardbridge.cli import main; raise SystemExit(main())"]
    )


def make_input(path: Path) -> set[str]:
    good: set[str] = set()
    with path.open("w") as f:
        for lineno in range(1, N_LINES + 1):
            if lineno in BAD_LINES:
                f.write(BAD_LINES[lineno] + "\n")
                continue
            ident = f"q{lineno}"
            good.add(ident)
            answer = lineno % 97
            response = (
                f"Some work.\nTherefore, the answer is {answer if lineno % 3 else answer + 1}"
            )
            row = {"id": ident, "question": f"What is {lineno} mod 97?", "reference": str(answer)}
            f.write(json.dumps({**row, "response": response}) + "\n")
    return good


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = make_input(src)
    args = [*cli(), "judge", str(src), "-o", str(out), "--verifier", "contains", "--skip-invalid"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # 1. a slow run (one fsync per item) killed with SIGKILL once results are on disk
    with (tmp_path / "run1.err").open("w") as err:
        proc = subprocess.Popen([*args, "--batch-size", "1"], stderr=err, env=env)
        deadline = time.monotonic() + 60
        while count_lines(out) < 50 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the first run ended before it could be killed"
    written = count_lines(out)
    assert 50 <= written < len(good)

    # 2. a torn write: the kill cut the last line in the middle
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 30])

    # 3. the rerun resumes and finishes
    rerun = subprocess.run(
        [*args, "--batch-size", "500", "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == len(good)
    assert set(ids) == good
    for lineno in BAD_LINES:
        assert f"{src}:{lineno}:" in rerun.stderr
    assert "a torn last line" in rerun.stderr
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["resumed"] == written - 1 and summary["new"] == len(good) - written + 1
    assert summary["skipped_invalid"] == len(BAD_LINES) and summary["complete"] is True
    assert summary["by_status"] == {"judged": len(good)}
    assert 0.6 < summary["mean_reward"] < 0.7  # two in three responses carry the right answer
    assert "records" in rerun.stdout and f"{len(good)} (" in rerun.stdout


def test_sigterm_stops_cleanly_with_a_summary(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = make_input(src)
    args = [*cli(), "judge", str(src), "-o", str(out), "--skip-invalid", "--batch-size", "1"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while count_lines(out) < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "a rerun resumes" in err
    lines = out.read_text().splitlines()
    assert 20 <= len(lines) < len(good) and all(json.loads(line)["id"] for line in lines)
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["complete"] is False and summary["total"] == len(lines)


def test_generative_judge_on_the_sample(tmp_path: Path, real_model_dir: Path) -> None:
    """The paper's judge (embedded 135M model) through the CLI on a few sample questions."""
    pytest.importorskip("rewardbridge.verifiers.generative")
    from rewardbridge.data.loaders import load_sample_examples

    src = tmp_path / "in.jsonl"
    with src.open("w") as f:
        for ex in load_sample_examples(limit=3):
            for response in (
                f"Therefore, the answer is {ex.reference}",
                "Therefore, the answer is 7",
            ):
                row = {"id": f"{ex.id}-{len(response)}", "question": ex.question}
                f.write(json.dumps({**row, "reference": ex.reference, "response": response}) + "\n")
    out = tmp_path / "out.jsonl"
    args = [*cli(), "judge", str(src), "-o", str(out), "--verifier", "generative"]
    args += ["--model", str(real_model_dir), "--reward", "soft", "--no-progress"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    for r in records:
        assert r["verifier"] == "generative"
        if r["status"] == "judged":
            assert 0.0 <= r["reward"] <= 1.0 and r["judgment"] in ("YES", "NO")
            assert r["p_yes"] is not None
        else:
            assert r["reward"] is None
