"""``rewardbridge judge --verifier generative`` on the real embedded SmolLM2-135M judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewardbridge.data.loaders import load_sample_examples

pytestmark = pytest.mark.smoke


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("rewardbridge")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from rewardbridge.cli import main; raise SystemExit(main())"]
    )


@pytest.fixture(scope="module")
def judge_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 sample questions x (the reference, another question's reference) + 1 empty response."""
    examples = load_sample_examples(limit=6)
    path = tmp_path_factory.mktemp("generative") / "items.jsonl"
    with path.open("w") as f:
        for i, ex in enumerate(examples):
            wrong = examples[(i + 1) % len(examples)].reference
            for tag, answer, label in (("right", ex.reference, True), ("wrong", wrong, False)):
                f.write(
                    json.dumps(
                        {
                            "id": f"{ex.id}-{tag}",
                            "question": ex.question,
                            "reference": ex.reference,
                            "response": f"Let me recall.\nTherefore, the answer is {answer}.",
                            "label": label,
                        }
                    )
                    + "\n"
                )
        f.write(json.dumps({"id": "empty", "question": "q", "reference": "r", "response": " "}))
    return path


def judge(judge_input: Path, out: Path, *extra: str) -> list[dict[str, object]]:
    cmd = [
        *cli(),
        "judge",
        str(judge_input),
        "-o",
        str(out),
        "--no-progress",
        "--verifier",
        "generative",
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_soft_normalized_judges_every_nonempty_response(judge_input: Path, tmp_path: Path) -> None:
    records = judge(judge_input, tmp_path / "soft.jsonl", "--reward", "soft-normalized")
    assert len(records) == 13
    for r in records:
        if r["id"] == "empty":
            assert r["status"] == "empty_response" and r["reward"] is None
            continue
        assert r["status"] == "judged", r
        p_yes, p_no = float(r["p_yes"]), float(r["p_no"])  # type: ignore[arg-type]
        assert 0.0 < p_yes <= 1.0 and 0.0 < p_no <= 1.0 and p_yes + p_no <= 1.0
        assert r["reward"] == pytest.approx(p_yes / (p_yes + p_no), abs=1e-9)
        assert r["judgment"] == ("YES" if p_yes >= p_no else "NO")


def test_binary_reward_is_the_judgment(judge_input: Path, tmp_path: Path) -> None:
    # constrained judgment (the default): every non-empty response gets a YES/NO verdict
    records = judge(judge_input, tmp_path / "binary.jsonl")
    assert len(records) == 13
    for r in records:
        if r["id"] == "empty":
            assert r["status"] == "empty_response" and r["reward"] is None
            continue
        assert r["status"] == "judged", r
        assert all(0.0 <= float(r[p]) <= 1.0 for p in ("p_yes", "p_no"))  # type: ignore[arg-type]
        assert r["reward"] == (1.0 if r["judgment"] == "YES" else 0.0)
