"""The one record format and the one resumable store: the damage rule (torn last line repaired,
a bad line elsewhere an error naming file:line or skipped and counted), resume without
duplicates, the meta check, and records read back as results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError
from rewardbridge.judging import RecordStore, StoreMismatch, judge_items
from rewardbridge.judging.records import (
    item_from_record,
    result_from_record,
    result_record,
    soft_p_yes,
)
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult


class Echo(BaseVerifier):
    """YES when the response equals the reference; records the ids it judged."""

    name = "echo"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.seen.extend(i.id for i in items)
        return [
            VerifierResult.ok(float(i.response == i.reference), judgment="YES", p_yes=0.6, p_no=0.2)
            for i in items
        ]


ITEMS = [
    JudgeItem(id=f"i{k}", question="q", reference="4", response="4" if k % 2 else "5")
    for k in range(7)
]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_record_round_trip_and_passthrough() -> None:
    item = JudgeItem(
        id="a", question="q", reference="r", response="x", label=True, domain="law",
        metadata={"prompt_id": "p1"},
    )  # fmt: skip
    result = VerifierResult.ok(1.0, judgment="YES", p_yes=0.75, p_no=0.25, stage="generative")
    record = result_record(item, result, "gen", text=True, extra={"step": 3})
    assert record["reward"] == 1.0 and record["label"] is True and record["domain"] == "law"
    assert (record["prompt_id"], record["response"], record["step"]) == ("p1", "x", 3)
    back = result_from_record(json.loads(json.dumps(record)))
    assert (back.status, back.score, back.p_yes, back.stage) == (
        Status.JUDGED,
        1.0,
        0.75,
        "generative",
    )
    again = item_from_record(record)
    assert (again.label, again.domain, again.question, again.metadata) == (
        True,
        "law",
        "q",
        {"prompt_id": "p1"},
    )
    unjudged = result_record(item, VerifierResult.failed(Status.TIMEOUT, "slow"), "gen")
    assert unjudged["reward"] is None and "response" not in unjudged  # never a 0
    assert soft_p_yes(back) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"id": "a", "status": "judged", "verifier": "v"}, "'reward' missing"),
        ({"id": "a", "reward": 1, "status": "great", "verifier": "v"}, "'status'"),
        ({"id": "a", "reward": None, "status": "judged", "verifier": "v"}, "'reward'"),
        ({"id": "a", "reward": 0.0, "status": "timeout", "verifier": "v"}, "'reward'"),
        ({"id": "a", "reward": "1", "status": "judged", "verifier": "v"}, "'reward'"),
        ({"id": "a", "reward": 1, "status": "judged", "verifier": "v", "p_yes": "x"}, "'p_yes'"),
    ],
)
def test_bad_record_errors_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(DataError, match=rf"f\.jsonl:3: field {field}"):
        result_from_record(raw, "f.jsonl:3")


def test_torn_last_line_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    judge_items(Echo(), ITEMS[:4], path)
    text = path.read_text()
    path.write_text(text[:-20])  # a crash cut the 4th record mid-write
    store = RecordStore(path)
    assert store.done_ids() == {"i0", "i1", "i2"}
    assert path.read_text() == "".join(text.splitlines(keepends=True)[:3])


def test_bad_line_mid_file_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    judge_items(Echo(), ITEMS[:3], path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{garbage\n" + "".join(lines[1:]))
    with pytest.raises(DataError, match=r"out\.jsonl:2: not a record"):
        judge_items(Echo(), ITEMS[:3], path)
    assert path.read_text().count("\n") == 4  # nothing cut, nothing appended

    verifier = Echo()
    results = judge_items(verifier, ITEMS[:4], path, skip_invalid=True)
    assert verifier.seen == ["i3"] and len(results) == 4
    store = RecordStore(path, skip_invalid=True)
    assert len(store.done_ids()) == 4 and store.skipped == 1


def test_resume_judges_only_what_is_missing_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = Echo()
    judge_items(first, ITEMS[:5], path, batch_size=2)
    assert first.seen == [f"i{k}" for k in range(5)]
    second = Echo()
    progress: list[int] = []
    results = judge_items(second, ITEMS, path, batch_size=2, progress=progress.append)
    assert second.seen == ["i5", "i6"] and progress == [5, 2]
    assert [r["id"] for r in _lines(path)] == [f"i{k}" for k in range(7)]
    assert [r.score for r in results] == [float(k % 2) for k in range(7)]
    assert judge_items(Echo(), list(reversed(ITEMS)), path)[0].score == 0.0  # ITEMS[6]


def test_another_verifier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    judge_items(Echo(), ITEMS[:2], path, meta={"verifier": "echo", "options": {"x": 1}})
    with pytest.raises(StoreMismatch, match="written with"):
        judge_items(Echo(), ITEMS[:2], path, meta={"verifier": "echo", "options": {"x": 2}})


def test_append_is_per_batch_and_counted(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "s.jsonl") as store:
        assert store.append([]) == 0
        assert store.append([{"id": "a"}, {"id": "b"}]) == 2
        assert store.append([{"id": "a"}]) == 1  # the store keeps the first per id
    assert [r["id"] for r in RecordStore(tmp_path / "s.jsonl").records()] == ["a", "b"]


def test_speed_options_do_not_block_a_resume(tmp_path: Path) -> None:
    from rewardbridge.judging.run import judgment_meta

    path = tmp_path / "out.jsonl"
    judge_items(Echo(), ITEMS[:2], path, meta=judgment_meta("g", {"model": "m", "batch_size": 8}))
    resumed = Echo()
    judge_items(resumed, ITEMS[:3], path, meta=judgment_meta("g", {"model": "m", "device": "cpu"}))
    assert resumed.seen == ["i2"]
    with pytest.raises(StoreMismatch):
        judge_items(Echo(), ITEMS[:3], path, meta=judgment_meta("g", {"model": "other"}))
