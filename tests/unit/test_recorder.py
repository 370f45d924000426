"""Judgments recorded where they are made (judging/recorder.py): one record per distinct
judgment, crash-safe, readable by ``distill train``; the server and framework hooks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fakes.loopback import loopback_server as serve_app
from rewardbridge.data.example import JudgeItem
from rewardbridge.judging.recorder import RECORD_ENV, JudgmentRecorder, judgment_key
from rewardbridge.verifiers.base import Status, VerifierResult


def item(i: int, response: str = "", prompt: str = "p") -> JudgeItem:
    return JudgeItem(
        id=f"{prompt}#{i}",
        question=f"What is {i}+{i}?",
        reference=str(2 * i),
        response=response or f"Let me think.\nTherefore, the answer is {2 * i}",
        metadata={"prompt_id": prompt},
    )


YES = VerifierResult.ok(1.0, judgment="YES", p_yes=0.9, p_no=0.05)
NO = VerifierResult.ok(0.0, judgment="NO", p_yes=0.1, p_no=0.8)
TIMEOUT = VerifierResult.failed(Status.TIMEOUT, "slow")


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_one_record_per_distinct_judgment_across_calls_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "judgments.jsonl"
    with JudgmentRecorder(path) as rec:
        rec.record([item(1), item(2), item(3)], [YES, NO, TIMEOUT], verifier="generative", step=0)
        # the same final step again (other reasoning before it): a duplicate
        again = item(1, response="Other reasoning.\nTherefore, the answer is 2")
        rec.record([again, item(4)], [YES, YES], verifier="generative", step=1)
        rec.record([item(1)], [YES], verifier="other-judge", step=1)  # another verifier: kept
    rows = lines(path)
    assert len(rows) == 4 and len({r["id"] for r in rows}) == 4
    assert rec.stats.written == 4 and rec.stats.duplicates == 1
    assert rec.stats.unjudged == {"timeout": 1}  # not judged: not a record, never a NO
    first = rows[0]
    assert first["question"] == "What is 1+1?" and first["reference"] == "2"
    assert first["final_step"] == "Therefore, the answer is 2"
    assert (first["judgment"], first["p_yes"], first["p_no"]) == ("YES", 0.9, 0.05)
    assert (first["status"], first["reward"], first["verifier"]) == ("judged", 1.0, "generative")
    assert (first["prompt_id"], first["step"]) == ("p", 0)
    key = judgment_key("What is 1+1?", "2", "Therefore, the answer is 2", "generative")
    assert first["id"] == f"j{key:016x}"

    with JudgmentRecorder(path) as rerun:  # a second run over the same file
        rerun.record([item(1), item(5)], [YES, NO], verifier="generative", step=0)
    assert rerun.stats.already_in_file == 4 and rerun.stats.duplicates == 1
    assert len(lines(path)) == 5


def test_a_torn_last_line_is_repaired_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "judgments.jsonl"
    with JudgmentRecorder(path) as rec:
        rec.record([item(1)], [YES], verifier="v")
    with path.open("a") as fh:
        fh.write('{"id": "j00ff", "reward": 1.0, "sta')  # a crash mid-write
    with JudgmentRecorder(path) as rec:
        rec.record([item(2)], [NO], verifier="v")
    rows = lines(path)  # every line parses
    assert [r["reference"] for r in rows] == ["2", "4"]


def test_distill_train_reads_the_file_as_it_is(tmp_path: Path) -> None:
    from rewardbridge.training.distill import read_records

    path = tmp_path / "judgments.jsonl"
    rule = VerifierResult.ok(1.0)  # a rule verifier: a score, no YES/NO token
    with JudgmentRecorder(path) as rec:
        rec.record([item(1), item(2)], [YES, NO], verifier="generative", step=3)
        rec.record([item(3)], [rule], verifier="contains", step=3)
    records = read_records(path)
    assert [(r.final_step, r.judgment) for r in records] == [
        ("Therefore, the answer is 2", "YES"),
        ("Therefore, the answer is 4", "NO"),
        ("Therefore, the answer is 6", "YES"),
    ]
    assert records[0].prompt_id == "p" and records[0].question == "What is 1+1?"


def test_record_returns_at_once_and_a_writer_error_surfaces(tmp_path: Path) -> None:
    rec = JudgmentRecorder(tmp_path / "j.jsonl", max_pending=2)

    def broken(records: object) -> int:
        raise OSError("disk full")

    rec._store.append = broken  # type: ignore[method-assign]
    rec.record([item(1)], [YES], verifier="v")
    with pytest.raises(RuntimeError, match="recording judgments"):
        rec.close()
    with pytest.raises(ValueError, match="2 items but 1 results"):
        JudgmentRecorder(tmp_path / "k.jsonl").record([item(1), item(2)], [YES], verifier="v")


def test_framework_adapters_record_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verl's compute_score_batch and OpenRLHF's reward_func build their verifier with
    shared_verifier: REWARDBRIDGE_RECORD=FILE records what it judges."""
    from rewardbridge.integrations.common import close_shared_verifiers
    from rewardbridge.integrations.verl import compute_score_batch

    path = tmp_path / "verl.jsonl"
    monkeypatch.setenv(RECORD_ENV, str(path))
    out = compute_score_batch(
        ["d", "d"],
        ["Therefore, the answer is 4", "Therefore, the answer is 5"],
        ["4", "4"],
        [{"question": "2+2?"}, {"question": "2+2?"}],
        verifier="contains",
    )
    close_shared_verifiers()
    assert [o["score"] for o in out] == [1.0, 0.0]
    rows = lines(path)
    assert [(r["question"], r["reward"], r["verifier"]) for r in rows] == [
        ("2+2?", 1.0, "contains"),
        ("2+2?", 0.0, "contains"),
    ]


# --- the server -------------------------------------------------------------------------------


class Judge:
    """YES when the reference is in the response; a small delay so requests pile up."""

    name = "judge-double"

    def __init__(self) -> None:
        self.calls = 0

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.calls += 1
        time.sleep(0.002)
        return [YES if it.reference in it.response else NO for it in items]

    def close(self) -> None:
        pass


@contextmanager
def loopback_server(verifier: Judge, **config: object) -> Iterator[str]:
    from rewardbridge.serving.app import create_app
    from rewardbridge.serving.config import ServerConfig

    with serve_app(create_app(verifier, ServerConfig(**config))) as url:  # type: ignore[arg-type]
        yield url


def test_serve_record_under_a_burst_writes_one_record_per_judgment(tmp_path: Path) -> None:
    """120 concurrent requests of 3 items, a third of them repeating an earlier item: one
    record per distinct judgment, no duplicate, and the clients' answers are unchanged."""
    path = tmp_path / "served.jsonl"
    n_requests = 120

    def body(k: int) -> dict[str, object]:
        ids = [k, k + 1000, (k % 40) + 2000]  # the last one repeats across requests
        return {
            "items": [
                {"id": str(i), "question": f"q{i}?", "reference": str(i), "response": f"It is {i}"}
                for i in ids
            ]
        }

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/v1/judge", json=body(k)) for k in range(n_requests))
            )

    judge = Judge()
    with loopback_server(judge, max_batch_size=32, record_path=str(path)) as url:
        responses = asyncio.run(burst(url))
        health = httpx.get(f"{url}/health").json()
    assert [r.status_code for r in responses] == [200] * n_requests
    assert all(len(r.json()["results"]) == 3 for r in responses)
    assert judge.calls < n_requests  # the burst was batched
    rows = lines(path)
    distinct = 2 * n_requests + 40
    assert len(rows) == distinct
    assert len({r["id"] for r in rows}) == distinct
    asked = {i for k in range(n_requests) for i in (k, k + 1000, (k % 40) + 2000)}
    assert {r["question"] for r in rows} == {f"q{i}?" for i in asked}
    assert health["recorded"] <= distinct


def test_each_training_process_records_to_a_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rewardbridge.training.config import load_config
    from rewardbridge.training.rl import _recorder

    config = load_config(None, ["--logging.record_judgments", str(tmp_path / "j.jsonl")])
    single = _recorder(config)
    assert single is not None and single.path == tmp_path / "j.jsonl"
    single.close()
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "3")
    ranked = _recorder(config)
    assert ranked is not None and ranked.path == tmp_path / "j.rank3.jsonl"
    ranked.close()
