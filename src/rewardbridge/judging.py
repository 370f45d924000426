"""Judge a whole file of responses: stream, verify in batches, write as you go, resume.

No paper equation lives here; this is the batch driver around any ``Verifier`` (the paper's
generative judge, Eq. 3/4 rewards, or a rule verifier). Each input record gives one JSON line:

    {"id", "reward" (score or null), "status", "verifier", "latency_s",
     "judgment", "p_yes", "p_no", "stage", "reason" (each only when set),
     "label" (only when the input has one)}

Lines are written, flushed and fsynced after every batch, so a crash loses at most the batch in
flight. Rerunning with the same output reads the ids already there (dropping a last line cut off
mid-write) and judges only the rest: never a duplicate, never a gap. ``reward`` is ``null`` for an
unjudged item (empty response, timeout, ...), never 0.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError, FieldMap, count_records, iter_judge_items
from rewardbridge.verifiers.base import Verifier, VerifierResult

logger = logging.getLogger(__name__)

_OPTIONAL_RESULT_FIELDS = ("judgment", "p_yes", "p_no", "stage", "reason")


@dataclass
class JudgeRunSummary:
    """What a ``judge_file`` run left in the output (resumed lines included)."""

    input: str
    output: str
    verifier: str
    total: int = 0
    """Result lines in the output after the run."""
    new: int = 0
    """Lines written by this run."""
    resumed: int = 0
    """Lines already in the output when the run started."""
    by_status: dict[str, int] = field(default_factory=dict)
    mean_reward: float | None = None
    """Mean reward over judged lines; ``None`` if none was judged."""
    skipped_invalid: int = 0
    """Input rows skipped by ``skip_invalid`` (bad rows and duplicate ids)."""
    elapsed_s: float = 0.0
    items_per_s: float = 0.0
    """Throughput of this run (new lines per second)."""
    complete: bool = False
    """The run reached the end of the input (or ``limit``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        reward = "n/a" if self.mean_reward is None else f"{self.mean_reward:.4f}"
        rows = [
            ("input", self.input),
            ("output", f"{self.output} (summary: {summary_path(self.output)})"),
            ("verifier", self.verifier),
            ("records", f"{self.total} ({self.new} new, {self.resumed} resumed)"),
            *((f"  {status}", str(n)) for status, n in sorted(self.by_status.items())),
            ("mean reward (judged)", reward),
            ("skipped invalid", str(self.skipped_invalid)),
            ("throughput", f"{self.items_per_s:.1f} items/s ({self.elapsed_s:.1f} s)"),
            ("complete", "yes" if self.complete else "no (rerun to resume)"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@dataclass
class _Tally:
    by_status: Counter[str] = field(default_factory=Counter)
    reward_sum: float = 0.0
    rewards: int = 0

    def add(self, status: str, reward: float | None) -> None:
        self.by_status[status] += 1
        if reward is not None:
            self.reward_sum += reward
            self.rewards += 1


def summary_path(output: str | Path) -> Path:
    return Path(f"{output}.summary.json")


def result_record(item: JudgeItem, result: VerifierResult, verifier: str) -> dict[str, Any]:
    """One output line for ``item``."""
    record: dict[str, Any] = {
        "id": item.id,
        "reward": result.score,
        "status": result.status.value,
        "verifier": verifier,
        "latency_s": round(result.latency_s, 6),
    }
    for name in _OPTIONAL_RESULT_FIELDS:
        value = getattr(result, name)
        if value is not None:
            record[name] = value
    if item.label is not None:
        record["label"] = item.label
    return record


def read_done(output: Path, tally: _Tally | None = None) -> set[str]:
    """Ids already in ``output``. A last line cut off mid-write is dropped from the file;
    any other unreadable line is an error naming it."""
    done: set[str] = set()
    if not output.exists():
        return done
    size = output.stat().st_size
    good_end = 0
    line = b"\n"
    with output.open("rb+") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                record = json.loads(line) if line.strip() else None
                if record is not None and not isinstance(record.get("id"), str):
                    raise ValueError("no string 'id'")
            except (ValueError, AttributeError) as exc:
                if good_end + len(line) < size:  # not the last line: real corruption
                    raise DataError(
                        f"{output}:{lineno}: not a result line ({exc}); fix or move the file"
                    ) from None
                logger.warning("%s:%d: dropping a truncated last line", output, lineno)
                f.truncate(good_end)
                return done
            good_end += len(line)
            if record is None:
                continue
            if record["id"] in done:
                logger.warning("%s:%d: id %r appears twice", output, lineno, record["id"])
                continue
            done.add(record["id"])
            if tally is not None:
                tally.add(str(record.get("status")), record.get("reward"))
        if not line.endswith(b"\n"):  # a complete last line cut off just before its newline
            f.write(b"\n")
    return done


def judge_file(
    input: str | Path,
    output: str | Path,
    verifier: Verifier,
    *,
    batch_size: int = 64,
    fields: FieldMap | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> JudgeRunSummary:
    """Judge every item of ``input`` not yet in ``output``; append one JSON line per item.

    ``limit`` caps the input items considered (resumed ones included), so a rerun with the same
    limit finishes the same set. Duplicate ids in the input are a ``DataError`` naming both
    places (skipped and counted with ``skip_invalid``).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    in_path, out_path = Path(input), Path(output)
    if out_path.exists() and in_path.resolve() == out_path.resolve():
        raise ValueError(f"--output {out_path} is the input file")
    name = str(getattr(verifier, "name", type(verifier).__name__))
    records = iter_judge_items(in_path, fields=fields, skip_invalid=skip_invalid)
    summary = JudgeRunSummary(input=str(in_path), output=str(out_path), verifier=name)
    tally = _Tally()
    done = read_done(out_path, tally)
    summary.resumed = len(done)

    total = count_records(in_path)
    if limit is not None:
        total = limit if total is None else min(total, limit)
    bar = tqdm(total=total, disable=not progress, unit="item", desc="judging", dynamic_ncols=True)
    seen: dict[str, int] = {}  # input id -> position, for duplicate errors
    duplicates = 0
    start = time.perf_counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def flush(batch: list[JudgeItem], out: Any) -> None:
        results = verifier.verify(batch)
        if len(results) != len(batch):
            raise RuntimeError(
                f"verifier {name!r} returned {len(results)} results for {len(batch)}"
            )
        lines = []
        for item, result in zip(batch, results, strict=True):
            record = result_record(item, result, name)
            tally.add(record["status"], record["reward"])
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        out.write("".join(lines))
        out.flush()
        os.fsync(out.fileno())
        summary.new += len(batch)
        bar.update(len(batch))

    try:
        with out_path.open("a", encoding="utf-8") as out, bar:
            batch: list[JudgeItem] = []
            try:
                for item in records if limit != 0 else ():
                    if item.id in seen:
                        message = (
                            f"{records.where()}: field 'id': duplicate id {item.id!r} "
                            f"(first at {records.where(seen[item.id])})"
                        )
                        if not skip_invalid:
                            raise DataError(message)
                        logger.warning("skipping invalid row: %s", message)
                        duplicates += 1
                        continue
                    seen[item.id] = records.position
                    if item.id in done:
                        bar.update(1)
                    else:
                        batch.append(item)
                        if len(batch) >= batch_size:
                            flush(batch, out)
                            batch = []
                    if limit is not None and len(seen) >= limit:
                        break
            except DataError:
                if batch:  # keep the work before the bad row; the rerun resumes after it
                    flush(batch, out)
                raise
            if batch:
                flush(batch, out)
        summary.complete = True
    finally:
        if not summary.complete:
            # interrupted, possibly between a write and its count: count what the file holds
            tally = _Tally()
            read_done(out_path, tally)
        summary.skipped_invalid = records.skipped + duplicates
        summary.elapsed_s = time.perf_counter() - start
        summary.items_per_s = summary.new / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
        summary.total = sum(tally.by_status.values())
        summary.by_status = dict(tally.by_status)
        summary.mean_reward = tally.reward_sum / tally.rewards if tally.rewards else None
        _write_json(summary_path(out_path), summary.to_dict())
    return summary


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__: Sequence[str] = ["JudgeRunSummary", "judge_file", "read_done", "result_record"]
