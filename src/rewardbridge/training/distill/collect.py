"""Verifier distillation (paper §7), step 1: collect a teacher's judgments.

``collect``: for prompts (questions with references), take n responses each (sampled from a
policy, or read from a rollouts file), judge every (question, reference, response) with a
teacher verifier (any backend; or the dataset's gold labels), and append one
``DistillRecord`` per judged response to a JSONL file. Reruns skip the ids already written.
Items the teacher did not judge are skipped and counted, never recorded as NO.

Departures from the paper: the paper samples responses from an RLOO run of the improving policy
(realistic noise); ``collect`` samples a fixed policy or reads rollouts you saved from any run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.verifiers.base import Verifier
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


def read_records(path: str | Path) -> list[DistillRecord]:
    """The records of a collect output; a bad line raises ``DataError`` naming it."""
    from rewardbridge.data.loaders import DataError

    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                out.append(DistillRecord(**raw))
            except (json.JSONDecodeError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a distillation record ({exc})") from None
            if raw["judgment"] not in ("YES", "NO"):
                raise DataError(f"{path}:{lineno}: field 'judgment' must be YES or NO")
    return out


def done_ids(path: str | Path) -> set[str]:
    """Ids already written to a collect output (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists():
        return set()
    done = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    done.add(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError):
                    continue  # a torn last line from an interrupted run: judged again
    return done


def _batched(items: Iterable[JudgeItem], size: int) -> Iterator[list[JudgeItem]]:
    batch: list[JudgeItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _judge_with_labels(items: Sequence[JudgeItem]) -> list[tuple[str, float] | str]:
    out: list[tuple[str, float] | str] = []
    for item in items:
        if item.label is None:
            out.append("no_label")
        elif not item.response.strip():
            out.append("empty_response")
        else:
            out.append(("YES", 1.0) if item.label else ("NO", 0.0))
    return out


def _judge_with_verifier(
    verifier: Verifier, items: Sequence[JudgeItem]
) -> list[tuple[str, float] | str]:
    """(judgment, P(YES)) per judged item, else the status; P(YES) is the teacher's normalised
    p_yes / (p_yes + p_no) where it reports both, else its score."""
    from rewardbridge.evaluation.agreement import soft_score

    out: list[tuple[str, float] | str] = []
    for result in verifier.verify(items):
        p_yes = soft_score(result)
        if result.score is None or p_yes is None:
            out.append(result.status.value)
            continue
        judgment = result.judgment or ("YES" if result.score >= 0.5 else "NO")
        out.append((judgment.upper(), float(p_yes)))
    return out


def collect(
    items: Iterable[JudgeItem],
    teacher: Verifier | str,
    output: str | Path,
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> CollectStats:
    """Judge ``items`` with ``teacher`` (a verifier, or ``"labels"``) and append records to
    ``output``; ids already there are skipped (a repeated input id is made unique by its
    occurrence, ``<id>~<k>``). Writes ``OUT.prompt_ids.txt`` at the end."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_ids(out)
    stats = CollectStats()
    if teacher != LABELS_TEACHER and isinstance(teacher, str):
        raise ValueError(f"teacher must be a verifier or {LABELS_TEACHER!r}, got {teacher!r}")

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

    with open(out, "a", encoding="utf-8") as fh:
        for batch in _batched(pending(), batch_size):
            verdicts = (
                _judge_with_labels(batch)
                if isinstance(teacher, str)
                else _judge_with_verifier(teacher, batch)
            )
            for item, verdict in zip(batch, verdicts, strict=True):
                if isinstance(verdict, str):
                    stats.unjudged[verdict] = stats.unjudged.get(verdict, 0) + 1
                    continue
                judgment, p_yes = verdict
                record = DistillRecord(
                    id=item.id,
                    prompt_id=prompt_id_of(item),
                    question=item.question,
                    reference=item.reference,
                    final_step=final_step(item.response),
                    judgment=judgment,
                    teacher_p_yes=p_yes,
                    label=item.label,
                    domain=item.domain,
                )
                fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                stats.written += 1
            fh.flush()
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
