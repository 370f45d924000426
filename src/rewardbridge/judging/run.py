"""Judge many items with one verifier, writing records as you go, resumably.

No paper equation lives here; these are the batch drivers around any ``Verifier`` (the paper's
generative judge, Eq. 3/4 rewards, or a rule verifier). Both write the one record format
(``judging/records.py``) through the one store (``judging/store.py``): each batch is appended,
flushed and fsynced before the next is judged; a rerun with the same output judges only the
ids not yet there (never a duplicate, never a gap); a torn last line is repaired, any other bad
line is an error naming ``file:line`` (skipped and counted with ``skip_invalid``); the store's
meta (the verifier and its options) must match on a resume.

- ``judge_file(input, output, verifier)``: stream a file of items to a file of records
  (``rewardbridge judge``); the summary goes to ``<output>.summary.json``.
- ``judge_items(verifier, items, path)``: a list of items -> their results, in order
  (``eval-verifier``, ``audit``, ``evaluate``, the distillation demo).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError, FieldMap, count_records, iter_judge_items
from rewardbridge.judging.records import result_record
from rewardbridge.judging.store import RecordStore
from rewardbridge.verifiers.base import Status, Verifier, VerifierResult

logger = logging.getLogger(__name__)

ExtraFields = Callable[[JudgeItem, VerifierResult], Mapping[str, Any]]
"""Per-record fields a caller adds (e.g. the rule check's verdict beside the judge's)."""


SPEED_OPTIONS = frozenset(
    {"api_key", "batch_size", "device", "prefix_sharing", "timeout", "workers",
     "max_concurrency", "base_url", "url"}
)  # fmt: skip
"""Verifier options that change how fast or where it judges, not what: left out of the meta
a store is checked against, so a resume may change them."""


def judgment_meta(verifier: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The store meta of judgments by ``verifier`` with ``options`` (speed options left out)."""
    kept = {k: v for k, v in (options or {}).items() if k not in SPEED_OPTIONS}
    return {"verifier": verifier, "options": kept}


def verifier_name(verifier: Verifier) -> str:
    return str(getattr(verifier, "name", type(verifier).__name__))


def verify_batch(verifier: Verifier, batch: Sequence[JudgeItem]) -> list[VerifierResult]:
    """``verifier.verify(batch)``, checked to give one result per item."""
    results = verifier.verify(batch)
    if len(results) != len(batch):
        raise RuntimeError(
            f"verifier {verifier_name(verifier)!r} returned {len(results)} results "
            f"for {len(batch)} items"
        )
    return list(results)


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
    retried: int = 0
    """Failed lines (timeout, backend error) dropped to be judged again (``retry_failed``)."""
    by_status: dict[str, int] = field(default_factory=dict)
    mean_reward: float | None = None
    """Mean reward over judged lines; ``None`` if none was judged."""
    skipped_invalid: int = 0
    """Skipped by ``skip_invalid``: bad input rows, duplicate ids, bad lines of the output."""
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
            *([("retried", str(self.retried))] if self.retried else []),
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

    @classmethod
    def of(cls, store: RecordStore) -> _Tally:
        tally = cls()
        for record in store.records():
            tally.add(str(record.get("status")), record.get("reward"))
        return tally


RETRYABLE = frozenset({Status.TIMEOUT.value, Status.BACKEND_ERROR.value})
"""Statuses of a failure that may pass on another try (a server down, a slow request); the
others (empty response, no judgment, too long, invalid input) would fail the same way again."""


def summary_path(output: str | Path) -> Path:
    return Path(f"{output}.summary.json")


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
    text: bool = False,
    meta: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
) -> JudgeRunSummary:
    """Judge every item of ``input`` not yet in ``output``; append one JSON line per item.

    ``limit`` caps the input items considered (resumed ones included), so a rerun with the same
    limit finishes the same set. Duplicate ids in the input are a ``DataError`` naming both
    places (skipped and counted with ``skip_invalid``, as are bad lines inside ``output``).
    ``text`` also writes each item's question, reference and response (what ``distill train``
    reads). ``meta`` (default: ``judgment_meta(name)``) must match the output's on a resume.
    ``retry_failed`` first drops the output's ``RETRYABLE`` failures, so they are judged again
    (each id still appears once).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    in_path, out_path = Path(input), Path(output)
    if out_path.exists() and in_path.resolve() == out_path.resolve():
        raise ValueError(f"--output {out_path} is the input file")
    name = verifier_name(verifier)
    records = iter_judge_items(in_path, fields=fields, skip_invalid=skip_invalid)
    summary = JudgeRunSummary(input=str(in_path), output=str(out_path), verifier=name)
    store = RecordStore(
        out_path, skip_invalid=skip_invalid, meta=judgment_meta(name) if meta is None else meta
    )
    if retry_failed:
        summary.retried = store.drop(RETRYABLE)
    tally = _Tally()
    done: set[str] = set()
    for record in store.records():
        done.add(record["id"])
        tally.add(str(record.get("status")), record.get("reward"))
    summary.resumed = len(done)
    bad_output_lines = store.skipped

    total = count_records(in_path)
    if limit is not None:
        total = limit if total is None else min(total, limit)
    bar = tqdm(total=total, disable=not progress, unit="item", desc="judging", dynamic_ncols=True)
    seen: dict[str, int] = {}  # input id -> position, for duplicate errors
    duplicates = 0
    start = time.perf_counter()

    def flush(batch: list[JudgeItem], out: RecordStore) -> None:
        results = verify_batch(verifier, batch)
        written = [
            result_record(item, result, name, text=text)
            for item, result in zip(batch, results, strict=True)
        ]
        out.append(written)
        for record in written:
            tally.add(record["status"], record["reward"])
        summary.new += len(batch)
        bar.update(len(batch))

    try:
        with store as out, bar:
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
            tally = _Tally.of(store)
        summary.skipped_invalid = records.skipped + duplicates + bad_output_lines
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


def judge_items(
    verifier: Verifier,
    items: Sequence[JudgeItem],
    path: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    progress: Callable[[int], Any] | None = None,
    skip_invalid: bool = False,
    text: bool = False,
    extra: ExtraFields | None = None,
) -> list[VerifierResult]:
    """One result per item, in order; items already in the store at ``path`` are not judged
    again. ``meta`` (default: ``judgment_meta(name)``) must match the store's on a resume;
    ``extra(item, result)`` adds fields to each record; ``progress(n)`` is called as items
    are done (resumed ones first)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique to resume judgments")
    name = verifier_name(verifier)
    with RecordStore(
        path, skip_invalid=skip_invalid, meta=judgment_meta(name) if meta is None else meta
    ) as store:
        wanted = set(ids)
        done = {i: r for i, r in store.done_results().items() if i in wanted}
        todo = [item for item in items if item.id not in done]
        if progress and len(items) > len(todo):
            progress(len(items) - len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            results = verify_batch(verifier, batch)
            store.append(
                result_record(
                    item, result, name, text=text, extra=extra(item, result) if extra else None
                )
                for item, result in zip(batch, results, strict=True)
            )
            done.update((item.id, result) for item, result in zip(batch, results, strict=True))
            if progress:
                progress(len(batch))
    return [done[i] for i in ids]


__all__ = [
    "ExtraFields",
    "JudgeRunSummary",
    "judge_file",
    "judge_items",
    "judgment_meta",
    "summary_path",
    "verifier_name",
    "verify_batch",
]
