"""Verifier distillation (paper §7), step 1: collect a teacher's judgments.

``collect``: for prompts (questions with references), take n responses each (sampled from a
policy, or read from a rollouts file), judge every (question, reference, response) with a
teacher verifier (any backend; or the dataset's gold labels), and append one judged-item
record (``judging/records.py``, with the texts and ``final_step``) per judged response to the
one resumable store (``judging/store.py``). Reruns skip the ids already written. Items the
teacher did not judge are skipped and counted (and judged again on a rerun), never recorded
as NO.

``read_records``: the training view (``DistillRecord``) of any file of judged-item records
that holds the texts: a ``collect`` output, ``rewardbridge judge --with-text`` output, or the
judgments recorded during RL (``judging/recorder.py``).

Departures from the paper: the paper samples responses from an RLOO run of the improving policy
(realistic noise); ``collect`` samples a fixed policy or reads rollouts you saved from any run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.loaders import DataError
from rewardbridge.judging.records import (
    item_from_record,
    result_from_record,
    result_record,
    soft_p_yes,
)
from rewardbridge.judging.run import verifier_name, verify_batch
from rewardbridge.judging.store import RecordStore
from rewardbridge.verifiers.base import BaseVerifier, Status, Verifier, VerifierResult
from rewardbridge.verifiers.text import final_step

log = logging.getLogger(__name__)

LABELS_TEACHER = "labels"


@dataclass(frozen=True, slots=True)
class DistillRecord:
    """One teacher judgment: the student's training example."""

    id: str
    prompt_id: str
    question: str
    reference: str
    final_step: str
    judgment: str  # "YES" or "NO"
    teacher_p_yes: float | None
    label: bool | None = None
    domain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CollectStats:
    """What a collect run did; ``unjudged`` counts items the teacher could not judge, by status."""

    written: int = 0
    already_done: int = 0
    unjudged: dict[str, int] = field(default_factory=dict)
    prompt_ids: set[str] = field(default_factory=set)

    @property
    def unjudged_total(self) -> int:
        return sum(self.unjudged.values())


def prompt_ids_path(output: str | Path) -> Path:
    """Where the prompt ids of a collect run go: ``OUT.prompt_ids.txt`` beside ``OUT.jsonl``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.prompt_ids.txt")


def prompt_id_of(item: JudgeItem) -> str:
    """The prompt an item answers: ``metadata["prompt_id"]``, else a hash of question+reference."""
    explicit = item.metadata.get("prompt_id")
    if explicit is not None:
        return str(explicit)
    digest = hashlib.sha1(f"{item.question}\x00{item.reference}".encode()).hexdigest()
    return f"q{digest[:12]}"


def rollout_items(
    examples: Sequence[Example], responses: Sequence[Sequence[str]]
) -> list[JudgeItem]:
    """JudgeItems ``<example id>#<k>`` for the k-th response to each example."""
    if len(examples) != len(responses):
        raise ValueError(f"{len(examples)} examples but {len(responses)} response lists")
    return [
        JudgeItem(
            id=f"{ex.id}#{k}",
            question=ex.question,
            reference=ex.reference,
            response=response,
            domain=ex.domain,
            metadata={"prompt_id": ex.id},
        )
        for ex, group in zip(examples, responses, strict=True)
        for k, response in enumerate(group)
    ]


class LabelsTeacher(BaseVerifier):
    """The dataset's gold label as the teacher: YES (1.0) / NO (0.0); no label: not judged."""

    name = LABELS_TEACHER

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [
            VerifierResult.failed(Status.INVALID_INPUT, "no gold label")
            if item.label is None
            else VerifierResult.ok(float(item.label), judgment="YES" if item.label else "NO")
            for item in items
        ]


def _judgment(record: Mapping[str, Any], result: VerifierResult) -> str:
    judgment = str(record.get("judgment") or "").upper()
    if judgment in ("YES", "NO"):
        return judgment
    assert result.score is not None
    return "YES" if result.score >= 0.5 else "NO"


def read_records(
    path: str | Path, *, skip_invalid: bool = False, skipped: dict[str, int] | None = None
) -> list[DistillRecord]:
    """The judged records of ``path`` as training examples; records not judged are left out
    (counted by status in ``skipped``); a record without the texts is a ``DataError`` naming
    it and the field."""
    out = []
    for raw in RecordStore(path, skip_invalid=skip_invalid, read_only=True).records():
        where = f"{path} (id {raw['id']!r})"
        result = result_from_record(raw, where)
        if not result.judged:
            if skipped is not None:
                skipped[result.status.value] = skipped.get(result.status.value, 0) + 1
            continue
        step = raw.get("final_step")
        if step is None and isinstance(raw.get("response"), str):
            step = final_step(raw["response"])
        for name, value in (("question", raw.get("question")), ("reference", raw.get("reference")),
                            ("final_step", step)):  # fmt: skip
            if not isinstance(value, str):
                raise DataError(
                    f"{where}: field {name!r} missing: distillation needs the texts "
                    "(`rewardbridge judge --with-text` writes them)"
                )
        item = item_from_record(raw)
        out.append(
            DistillRecord(
                id=item.id,
                prompt_id=str(raw.get("prompt_id") or item.id),
                question=str(raw["question"]),
                reference=str(raw["reference"]),
                final_step=str(step),
                judgment=_judgment(raw, result),
                teacher_p_yes=soft_p_yes(result),
                label=item.label,
                domain=item.domain,
            )
        )
    return out


def done_ids(path: str | Path) -> set[str]:
    """Ids already written to a collect output."""
    if not Path(path).exists():
        return set()
    return RecordStore(path, read_only=True).done_ids()


def _batched(items: Iterable[JudgeItem], size: int) -> Iterator[list[JudgeItem]]:
    batch: list[JudgeItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def collect(
    items: Iterable[JudgeItem],
    teacher: Verifier | str,
    output: str | Path,
    *,
    batch_size: int = 32,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CollectStats:
    """Judge ``items`` with ``teacher`` (a verifier, or ``"labels"``) and append the judged
    records to ``output``; ids already there are skipped (a repeated input id is made unique
    by its occurrence, ``<id>~<k>``). Writes ``OUT.prompt_ids.txt`` at the end."""
    if isinstance(teacher, str):
        if teacher != LABELS_TEACHER:
            raise ValueError(f"teacher must be a verifier or {LABELS_TEACHER!r}, got {teacher!r}")
        teacher = LabelsTeacher()
    name = verifier_name(teacher)
    out = Path(output)
    store = RecordStore(out, skip_invalid=skip_invalid, meta={"teacher": name})
    done = store.done_ids()
    stats = CollectStats()
    seen: dict[str, int] = {}

    def pending() -> Iterator[JudgeItem]:
        for item in items:
            stats.prompt_ids.add(prompt_id_of(item))
            repeat = seen.get(item.id, 0)
            seen[item.id] = repeat + 1
            if repeat:  # a repeated input id: the k-th repeat is <id>~<k>, stable across runs
                item = replace(item, id=f"{item.id}~{repeat}")
            if item.id in done:
                stats.already_done += 1
                if progress:
                    progress(1)
                continue
            yield item

    with store:
        for batch in _batched(pending(), batch_size):
            records = []
            for item, result in zip(batch, verify_batch(teacher, batch), strict=True):
                if not result.judged:
                    status = result.status.value
                    stats.unjudged[status] = stats.unjudged.get(status, 0) + 1
                    continue
                extra = {"prompt_id": prompt_id_of(item), "final_step": final_step(item.response)}
                records.append(result_record(item, result, name, text=True, extra=extra))
            stats.written += store.append(records)
            if progress:
                progress(len(batch))
    ids_file = prompt_ids_path(out)
    previous = set(ids_file.read_text().split()) if ids_file.exists() else set()
    ids_file.write_text("".join(f"{p}\n" for p in sorted(previous | stats.prompt_ids)))
    return stats


def sample_items(
    policy: Any,
    examples: Sequence[Example],
    *,
    n: int,
    skip_ids: set[str] | None = None,
    chunk: int = 8,
    **generation: Any,
) -> Iterator[JudgeItem]:
    """Sample ``n`` responses per example from ``policy``, ``chunk`` prompts at a time; prompts
    whose n items are all in ``skip_ids`` are not sampled again (resume)."""
    from rewardbridge.policy.generation import generate_responses, load_policy

    skip_ids = skip_ids or set()
    todo = [ex for ex in examples if any(f"{ex.id}#{k}" not in skip_ids for k in range(n))]
    todo_ids = {ex.id for ex in todo}
    for ex in examples:
        if ex.id not in todo_ids:
            for k in range(n):  # judged in an earlier run: passed on (and skipped), not sampled
                yield JudgeItem(
                    id=f"{ex.id}#{k}",
                    question=ex.question,
                    reference=ex.reference,
                    response="",
                    metadata={"prompt_id": ex.id},
                )
    if not todo:
        return
    loaded = load_policy(policy)  # once, not per chunk
    seed = int(generation.pop("seed", 0))
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        responses = generate_responses(loaded, part, n=n, seed=seed + start, **generation)
        yield from rollout_items(part, responses)
