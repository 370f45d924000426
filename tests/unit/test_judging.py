"""judge_file: output records, batching, incremental writes, resume after a crash, duplicates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rewardbridge.cli import main
from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError, FieldMap
from rewardbridge.judging import RecordStore, judge_file, summary_path
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult


class EqualsVerifier(BaseVerifier):
    """Test double: 1.0 if the response equals the reference, 0.0 otherwise; "?" is a timeout.
    Records every batch it sees and can fail on a given call, like a crash mid-run."""

    name = "equals"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.batches.append([i.id for i in items])
        if self.fail_on_call is not None and len(self.batches) == self.fail_on_call:
            raise RuntimeError("simulated crash")
        return [
            VerifierResult.failed(Status.TIMEOUT, "took too long")
            if i.response == "?"
            else VerifierResult.ok(float(i.response == i.reference), judgment="YES", p_yes=0.9)
            for i in items
        ]


def make_input(path: Path, n: int, *, label: bool = True) -> Path:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "id": f"item-{i}",
            "question": f"q{i}",
            "reference": str(i),
            "response": str(i) if i % 2 == 0 else "nope",
        }
        if label:
            row["label"] = i % 2 == 0
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_records_and_summary(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "question": "q", "reference": "4", "response": "4", "label": True},
                {"id": "b", "question": "q", "reference": "4", "response": "5"},
                {"id": "c", "question": "q", "reference": "4", "response": "   "},
                {"id": "d", "question": "q", "reference": "4", "response": "?"},
            ]
        )
    )
    out = tmp_path / "res" / "out.jsonl"
    summary = judge_file(src, out, EqualsVerifier(), batch_size=3, progress=False)
    records = read_lines(out)
    assert records[0] == {
        "id": "a",
        "reward": 1.0,
        "status": "judged",
        "verifier": "equals",
        "latency_s": records[0]["latency_s"],
        "judgment": "YES",
        "p_yes": 0.9,
        "stage": "equals",
        "label": True,
    }
    assert records[1]["reward"] == 0.0 and "label" not in records[1]
    # unjudged items have a null reward and say why; never a 0
    assert (records[2]["reward"], records[2]["status"]) == (None, "empty_response")
    assert (records[3]["reward"], records[3]["status"], records[3]["reason"]) == (
        None,
        "timeout",
        "took too long",
    )
    assert summary.by_status == {"judged": 2, "empty_response": 1, "timeout": 1}
    assert summary.mean_reward == 0.5
    assert (summary.total, summary.new, summary.resumed, summary.complete) == (4, 4, 0, True)
    saved = json.loads(summary_path(out).read_text())
    assert saved["by_status"] == summary.by_status and saved["complete"] is True
    assert "mean reward (judged)  0.5000" in summary.table()


def test_batches_and_limit(tmp_path: Path) -> None:
    verifier = EqualsVerifier()
    src = make_input(tmp_path / "in.jsonl", 10)
    summary = judge_file(
        src, tmp_path / "out.jsonl", verifier, batch_size=4, limit=7, progress=False
    )
    assert [len(b) for b in verifier.batches] == [4, 3]
    assert summary.total == 7
    # the same limit again has nothing left to do; a larger one continues
    again = judge_file(src, tmp_path / "out.jsonl", verifier, limit=7, progress=False)
    assert (again.new, again.resumed) == (0, 7)
    judge_file(src, tmp_path / "out.jsonl", verifier, progress=False)
    assert [r["id"] for r in read_lines(tmp_path / "out.jsonl")] == [f"item-{i}" for i in range(10)]


def test_limit_stops_before_reading_further_rows(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 3)
    with src.open("a") as f:
        f.write("{broken\n")
    summary = judge_file(src, tmp_path / "out.jsonl", EqualsVerifier(), limit=3, progress=False)
    assert (summary.total, summary.complete) == (3, True)
    empty = judge_file(src, tmp_path / "none.jsonl", EqualsVerifier(), limit=0, progress=False)
    assert empty.total == 0 and (tmp_path / "none.jsonl").read_text() == ""


def test_each_batch_is_written_before_the_next_is_judged(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError, match="simulated crash"):
        judge_file(src, out, EqualsVerifier(fail_on_call=3), batch_size=3, progress=False)
    assert [r["id"] for r in read_lines(out)] == [f"item-{i}" for i in range(6)]
    assert json.loads(summary_path(out).read_text())["complete"] is False

    verifier = EqualsVerifier()
    summary = judge_file(src, out, verifier, batch_size=3, progress=False)
    assert verifier.batches == [["item-6", "item-7", "item-8"], ["item-9"]]
    assert (summary.resumed, summary.new, summary.total) == (6, 4, 10)


def test_resume_after_a_line_cut_mid_write(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 50)
    clean = tmp_path / "clean.jsonl"
    judge_file(src, clean, EqualsVerifier(), batch_size=7, progress=False)

    out = tmp_path / "out.jsonl"
    judge_file(src, out, EqualsVerifier(), batch_size=7, limit=20, progress=False)
    text = out.read_text()
    out.write_text(text[: len(text) - 25])  # the crash cut the 20th line in the middle
    summary = judge_file(src, out, EqualsVerifier(), batch_size=7, progress=False)

    ids = [r["id"] for r in read_lines(out)]
    assert ids == [f"item-{i}" for i in range(50)]  # each exactly once, in order
    strip = [{k: v for k, v in r.items() if k != "latency_s"} for r in read_lines(out)]
    assert strip == [{k: v for k, v in r.items() if k != "latency_s"} for r in read_lines(clean)]
    assert (summary.resumed, summary.new) == (19, 31)
    assert summary.mean_reward == 0.5


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a", "reward": 1.0, "status": "judged"}')
    assert RecordStore(out).done_ids() == {"a"}
    assert out.read_text().endswith("}\n")


def test_corrupt_line_inside_output_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a", "status": "judged"}\n{garbage\n{"id": "b", "status": "judged"}\n')
    with pytest.raises(DataError, match=r"out\.jsonl:2: not a record"):
        RecordStore(out).done_ids()


def test_bad_output_line_skipped_and_counted_with_skip_invalid(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out.jsonl"
    judge_file(src, out, EqualsVerifier(), limit=2, progress=False)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + "{garbage\n" + lines[1])
    with pytest.raises(DataError, match=r"out\.jsonl:2: not a record"):
        judge_file(src, out, EqualsVerifier(), progress=False)
    verifier = EqualsVerifier()
    summary = judge_file(src, out, verifier, skip_invalid=True, progress=False)
    assert verifier.batches == [["item-2", "item-3"]]  # no duplicate of item-0 or item-1
    assert (summary.total, summary.resumed, summary.skipped_invalid) == (4, 2, 1)


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 5)
    with src.open("a") as f:
        f.write(json.dumps({"id": "item-1", "question": "q", "reference": "r", "response": "r"}))
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=r"in\.jsonl:6: field 'id': duplicate id 'item-1' "):
        judge_file(src, out, EqualsVerifier(), batch_size=100, progress=False)
    assert len(read_lines(out)) == 5  # the work before the bad row is kept
    with pytest.raises(DataError, match=r"first at .*in\.jsonl:2\)"):
        judge_file(src, out, EqualsVerifier(), progress=False)
    summary = judge_file(src, out, EqualsVerifier(), skip_invalid=True, progress=False)
    assert (summary.total, summary.skipped_invalid, summary.complete) == (5, 1, True)


def test_bad_rows_skipped_and_counted(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 6)
    lines = src.read_text().splitlines()
    lines[2] = "{broken"
    lines[4] = json.dumps({"id": "x", "question": "q", "response": "r"})
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=r"in\.jsonl:3: not valid JSON"):
        judge_file(src, out, EqualsVerifier(), progress=False)
    summary = judge_file(src, out, EqualsVerifier(), skip_invalid=True, progress=False)
    assert [r["id"] for r in read_lines(out)] == ["item-0", "item-1", "item-3", "item-5"]
    assert summary.skipped_invalid == 2


def test_field_mapping_reaches_the_verifier(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"key": "k", "prompt": "q", "answer": "7", "completion": "7"}) + "\n")
    out = tmp_path / "out.jsonl"
    summary = judge_file(
        src, out, EqualsVerifier(), fields=FieldMap.parse("id=key"), progress=False
    )
    assert read_lines(out)[0]["id"] == "k" and summary.mean_reward == 1.0


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in.jsonl", 2)
    with pytest.raises(ValueError, match="batch_size"):
        judge_file(src, tmp_path / "o.jsonl", EqualsVerifier(), batch_size=0)
    with pytest.raises(ValueError, match="is the input file"):
        judge_file(src, src, EqualsVerifier())


# --- the CLI in-process (the contains rule verifier) ------------------------------------------


def test_cli_judges_with_contains_and_prints_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rewardbridge.verifiers.rules")
    src = tmp_path / "in.jsonl"
    rows = [
        {"id": "1", "question": "Capital of France?", "answer": "Paris", "output": "It is Paris."},
        {"id": "2", "question": "Capital of Spain?", "answer": "Madrid", "output": "Lisbon"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    code = main(["judge", str(src), "-o", str(out), "--verifier", "contains", "--no-progress"])
    assert code == 0
    assert [r["reward"] for r in read_lines(out)] == [1.0, 0.0]
    printed = capsys.readouterr().out
    assert "records               2 (2 new, 0 resumed)" in printed
    assert "mean reward (judged)  0.5000" in printed


def test_cli_bad_input_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "q", "reference": "r", "response": "r"}\n{"question": "q"}\n')
    code = main(["judge", str(src), "-o", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert code == 2
    assert f"{src}:2: field 'reference': missing" in capsys.readouterr().err
    code = main(["judge", str(src), "-o", str(tmp_path / "o.jsonl"), "--fields", "quest=x"])
    assert code == 2
    assert "unknown target field 'quest'" in capsys.readouterr().err


def test_retry_failed_judges_timeouts_again_and_keeps_each_id_once(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    rows = [{"id": f"i{k}", "question": "q", "reference": "a", "response": "?"} for k in range(3)]
    rows += [{"id": "ok", "question": "q", "reference": "a", "response": "a"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    judge_file(src, out, EqualsVerifier(), progress=False)
    assert [r["status"] for r in read_lines(out)] == ["timeout"] * 3 + ["judged"]

    plain = judge_file(src, out, EqualsVerifier(), progress=False)  # a rerun keeps failures
    assert (plain.new, plain.retried) == (0, 0)

    src.write_text(src.read_text().replace('"?"', '"a"'))  # the judge works again
    verifier = EqualsVerifier()
    summary = judge_file(src, out, verifier, progress=False, retry_failed=True)
    assert (summary.retried, summary.new, summary.resumed) == (3, 3, 1)
    assert verifier.batches == [["i0", "i1", "i2"]]  # only the failed ones
    records = read_lines(out)
    assert sorted(r["id"] for r in records) == ["i0", "i1", "i2", "ok"]
    assert all(r["status"] == "judged" and r["reward"] == 1.0 for r in records)


def test_store_drop_keeps_other_records_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    with RecordStore(path) as store:
        store.append([{"id": "a", "status": "timeout"}, {"id": "b", "status": "judged"}])
        assert store.drop({"timeout"}) == 1
        store.append([{"id": "c", "status": "judged"}])  # appends after a drop still land
    assert [r["id"] for r in read_lines(path)] == ["b", "c"]
    assert not path.with_name("s.jsonl.tmp").exists()
