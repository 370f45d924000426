"""Judge items with a verifier, appending each result to a JSONL file so a rerun resumes.

Used by ``eval-verifier`` and ``audit``: each line is ``{"id": ..., **VerifierResult.to_dict()}``.
A meta file beside it records which verifier wrote the judgments; resuming with another
verifier is refused (mixing two verifiers' judgments in one report would be silent nonsense).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Status, Verifier, VerifierResult


def result_from_dict(raw: Mapping[str, Any]) -> VerifierResult:
    fields = {k: raw.get(k) for k in ("score", "reason", "judgment", "p_yes", "p_no", "stage")}
    return VerifierResult(
        status=Status(raw["status"]), latency_s=float(raw.get("latency_s") or 0.0), **fields
    )


def _read_done(path: Path) -> dict[str, VerifierResult]:
    done: dict[str, VerifierResult] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                raw = json.loads(line)
                done[str(raw["id"])] = result_from_dict(raw)
            except (json.JSONDecodeError, KeyError, ValueError):
                continue  # a torn last line from an interrupted run: judged again
    return done


def _chunks(items: Sequence[JudgeItem], size: int) -> Iterator[Sequence[JudgeItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def judge_to_file(
    verifier: Verifier,
    items: Sequence[JudgeItem],
    path: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[VerifierResult]:
    """One result per item, in order; items already in ``path`` are not judged again.

    ``meta`` (e.g. the verifier name and options) is written to ``<path>.meta.json`` on the first
    run and must match on a resume.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique to resume judgments")
    meta_path = out.with_name(out.name + ".meta.json")
    if meta is not None:
        meta_json = json.loads(json.dumps(meta, default=str))
        if meta_path.exists() and out.exists():
            previous = json.loads(meta_path.read_text())
            if previous != meta_json:
                raise ValueError(
                    f"{out} holds judgments of another verifier ({previous}); "
                    "use another report folder or delete it"
                )
        meta_path.write_text(json.dumps(meta_json, indent=2))
    done = _read_done(out)
    todo = [item for item in items if item.id not in done]
    if progress and len(items) > len(todo):
        progress(len(items) - len(todo))
    with open(out, "a", encoding="utf-8") as fh:
        for batch in _chunks(todo, batch_size):
            for item, result in zip(batch, verifier.verify(batch), strict=True):
                done[item.id] = result
                fh.write(json.dumps({"id": item.id, **result.to_dict()}, ensure_ascii=False) + "\n")
            fh.flush()
            if progress:
                progress(len(batch))
    return [done[i] for i in ids]
