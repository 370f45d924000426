"""``eval-verifier`` as a library call: judge a labeled file (or read a ``judge`` output), then
report agreement with the labels (and with a second verifier), calibration and coverage.

The input is either labeled items (question, reference, response, label) that the verifier
judges into ``<report>/judgments.jsonl`` (resumable, ``judging.judge_items``), or a file of
judged-item records (``judging/records.py``, e.g. the output of ``rewardbridge judge`` on a
labeled file, whose labels and domains pass through): then nothing is judged and the metrics
are the same as judging the items here. Metrics: ``evaluation/agreement.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError, FieldMap, detect_format, load_judge_items
from rewardbridge.judging.records import is_judged_record, item_from_record, result_from_record
from rewardbridge.judging.run import judge_items, judgment_meta
from rewardbridge.judging.store import RecordStore
from rewardbridge.verifiers.base import Verifier, VerifierResult

Progress = Callable[[str, int], Callable[[int], Any]]
"""``progress(description, total)`` -> a callback taking the number of items just done."""


@dataclass(frozen=True)
class VerifierSpec:
    """A verifier to judge with: its name and options (for the report and the store's meta; no
    secrets) and how to build it (called only when there is something to judge)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    build: Callable[[], Verifier] | None = None

    def describe(self) -> str:
        return " ".join([self.name, *(f"{k}={v}" for k, v in self.options.items())])


def is_judged_file(path: str | Path) -> bool:
    """Whether ``path`` is a JSONL file of judged-item records (its first record says so)."""
    path = Path(path)
    if not path.is_file() or detect_format(path) != "jsonl":
        return False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    return is_judged_record(json.loads(line))
                except json.JSONDecodeError:
                    return False
    return False


def read_judged_file(
    path: str | Path, *, limit: int | None = None, skip_invalid: bool = False
) -> tuple[list[JudgeItem], list[VerifierResult], str]:
    """(items, results, verifier name) of a judged-item file, in file order; one verifier."""
    store = RecordStore(path, skip_invalid=skip_invalid, read_only=True)
    items: list[JudgeItem] = []
    results: list[VerifierResult] = []
    names: set[str] = set()
    for record in store.records():
        if limit is not None and len(items) >= limit:
            break
        results.append(result_from_record(record, f"{path} (id {record['id']!r})"))
        items.append(item_from_record(record))
        names.add(str(record["verifier"]))
    if len(names) > 1:
        raise DataError(f"{path}: records of several verifiers ({sorted(names)}); one per file")
    return items, results, names.pop() if names else "unknown"


def _unique_ids(items: list[JudgeItem]) -> list[JudgeItem]:
    """Ids key the resumable judgments: a file with repeated ids gets ``<row>:<id>``."""
    ids = [item.id for item in items]
    if len(set(ids)) == len(ids):
        return items
    return [replace(item, id=f"{i}:{item.id}") for i, item in enumerate(items)]


@dataclass
class VerifierEvaluation:
    """What ``evaluate_verifier`` produced: the report dict and the files written."""

    report: dict[str, Any]
    paths: dict[str, Path]
    judged_input: bool
    """The input was already judged (a ``judge`` output); nothing was judged here."""


def evaluate_verifier(
    input: str | Path,
    report_dir: str | Path,
    verifier: VerifierSpec | None,
    *,
    against: VerifierSpec | None = None,
    fields: FieldMap | None = None,
    limit: int | None = None,
    threshold: float = 0.5,
    n_bins: int = 10,
    batch_size: int = 32,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> VerifierEvaluation:
    """Judge (or read) ``input``, write ``report.json``/``report.md``/``reliability.png`` to
    ``report_dir``. ``verifier`` is ignored for an already judged input (may be ``None``);
    ``against`` judges the same items with a second verifier (needs the items' texts)."""
    from rewardbridge.evaluation.agreement import verifier_report
    from rewardbridge.evaluation.reports import write_eval_report

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    folder = Path(report_dir)
    judged_input = is_judged_file(input)
    if judged_input:
        items, results, name = read_judged_file(input, limit=limit, skip_invalid=skip_invalid)
        described = name
        if against is not None and not all(i.question and i.response for i in items):
            raise ValueError(
                f"{input} holds judgments without the texts; a second verifier needs them "
                "(write them with `rewardbridge judge --with-text`)"
            )
    else:
        if verifier is None:
            raise ValueError("a verifier is needed to judge labeled items")
        items = _unique_ids(load_judge_items(input, fields=fields, limit=limit))
        described = verifier.describe()
    if not items:
        raise DataError(f"{input}: no records")

    def run(spec: VerifierSpec, filename: str) -> list[VerifierResult]:
        if spec.build is None:
            raise ValueError(f"verifier {spec.name!r} cannot be built")
        built = spec.build()
        step = progress(f"judging ({spec.name})", len(items)) if progress else None
        try:
            return judge_items(
                built,
                items,
                folder / filename,
                meta={**judgment_meta(spec.name, spec.options), "input": str(input)},
                batch_size=batch_size,
                progress=step,
                skip_invalid=skip_invalid,
            )
        finally:
            built.close()

    if not judged_input:
        assert verifier is not None
        results = run(verifier, "judgments.jsonl")
    against_results = run(against, "judgments.against.jsonl") if against else None
    report = verifier_report(
        items, results, threshold=threshold, n_bins=n_bins, against=against_results
    )
    report["verifier"] = described
    report["input"] = str(input)
    if against is not None:
        report["against_verifier"] = against.describe()
    paths = write_eval_report(report, folder)
    return VerifierEvaluation(report=report, paths=paths, judged_input=judged_input)


def headline(report: Mapping[str, Any]) -> str:
    """The one-line summary ``eval-verifier`` prints."""

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    cov = report["coverage"]
    line = (
        f"judged {cov['judged']}/{cov['items']}; accuracy {show(report['accuracy'])}, "
        f"F1 {show(report['f1'])}, kappa {show(report['kappa'])}, ECE {show(report['ece'])}"
    )
    if "against" in report:
        line += f"; kappa vs second verifier {show(report['against']['kappa'])}"
    return line


__all__: Sequence[str] = [
    "VerifierEvaluation",
    "VerifierSpec",
    "evaluate_verifier",
    "headline",
    "is_judged_file",
    "read_judged_file",
]
