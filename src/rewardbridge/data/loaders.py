"""Read examples and judge items from JSONL, JSON, Parquet and saved Hugging Face datasets.

Every reader streams: JSONL line by line, Parquet by record batch, a saved dataset row by row
from its memory-mapped Arrow files (a JSON file is one document and is parsed whole).

Record shapes are detected per row:

- the paper's released datasets (``virtuoussy/Multi-subject-RLVR``, ``Math-RLVR``): ``query`` =
  chat messages [system, user], ``label`` = the reference string, optional ``subject``;
- ROLL's copy of them (the bundled sample): ``messages`` = the same chat as a JSON *string*,
  ``ground_truth``, ``id`` (its ``prompt`` field repeats the system prompt and is not used);
- plain rows: ``question``/``problem``/``prompt``/..., ``reference``/``ground_truth``/``answer``/...

Chat messages give ``system_prompt`` (the system turn) and ``question`` (the last user turn).
A ``FieldMap`` names the fields of any other shape. A bad row raises ``DataError`` naming the
file, the line (or row) and the field; with ``skip_invalid=True`` it is logged and counted on the
returned iterator (``.skipped``, ``.errors``) instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from rewardbridge.data.example import Example, JudgeItem

logger = logging.getLogger(__name__)

T = TypeVar("T")

SAMPLE_DATASET = "multi_subject_rlvr.jsonl"

# Candidate source fields per target field, in the order they are tried.
QUESTION_FIELDS = ("query", "messages", "question", "problem", "prompt", "input", "instruction")
REFERENCE_FIELDS = ("reference", "ground_truth", "answer", "gt", "gold", "target", "label")
RESPONSE_FIELDS = ("response", "output", "completion", "model_output", "generation", "prediction")
LABEL_FIELDS = ("label", "is_correct", "correct", "verdict")
DOMAIN_FIELDS = ("domain", "subject")
SYSTEM_FIELDS = ("system_prompt", "system")

_TRUE = frozenset({"true", "yes", "y", "correct", "1"})
_FALSE = frozenset({"false", "no", "n", "incorrect", "wrong", "0"})
_MAX_KEPT_ERRORS = 1000


class DataError(ValueError):
    """Bad input data; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which source field holds each target field; ``None`` means auto-detect.

    A source name may be a dotted path into nested objects (``response=model_a.solution``).
    """

    id: str | None = None
    question: str | None = None
    reference: str | None = None
    response: str | None = None
    label: str | None = None
    domain: str | None = None
    system_prompt: str | None = None

    @classmethod
    def parse(cls, spec: str | None) -> FieldMap:
        """Parse ``"question=prompt,reference=answer"`` (the CLI's ``--fields``)."""
        if not spec:
            return cls()
        targets = [f.name for f in dataclasses.fields(cls)]
        mapping: dict[str, str] = {}
        for part in spec.split(","):
            target, sep, source = (s.strip() for s in part.partition("="))
            if not part.strip():
                continue
            if not sep or not target or not source:
                raise ValueError(f"--fields: {part.strip()!r} is not TARGET=SOURCE")
            if target not in targets:
                raise ValueError(
                    f"--fields: unknown target field {target!r}; choose from {', '.join(targets)}"
                )
            mapping[target] = source
        return cls(**mapping)


class Records(Iterator[T], Generic[T]):
    """An iterator over parsed records that counts the rows it skipped.

    ``skipped``: rows skipped as invalid so far; ``errors``: their messages (the first 1,000);
    ``position``: 1-based line (JSONL) or 0-based row of the record last yielded;
    ``where()``: "file:line" of that record.
    """

    def __init__(
        self,
        path: Path,
        parse: Callable[[Mapping[str, Any], int, str], T],
        *,
        skip_invalid: bool = False,
    ) -> None:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        self.path = path
        self.format = detect_format(path)
        self.skip_invalid = skip_invalid
        self.skipped = 0
        self.errors: list[str] = []
        self.position = -1
        self._parse = parse
        self._it = self._generate()

    def __next__(self) -> T:
        return next(self._it)

    def __iter__(self) -> Records[T]:
        return self

    def where(self, position: int | None = None) -> str:
        pos = self.position if position is None else position
        return _where(self.path, self.format, pos)

    def _generate(self) -> Iterator[T]:
        for index, (pos, raw) in enumerate(_raw_records(self.path, self.format)):
            where = _where(self.path, self.format, pos)
            try:
                if isinstance(raw, DataError):
                    raise raw
                if not isinstance(raw, Mapping):
                    raise DataError(f"{where}: expected an object, got {type(raw).__name__}")
                item = self._parse(raw, index, where)
            except DataError as exc:
                if not self.skip_invalid:
                    raise
                self.skipped += 1
                if len(self.errors) < _MAX_KEPT_ERRORS:
                    self.errors.append(str(exc))
                logger.warning("skipping invalid row: %s", exc)
                continue
            self.position = pos
            yield item


def detect_format(path: Path) -> str:
    """``jsonl``, ``json``, ``parquet`` or ``hf`` (a folder written by ``Dataset.save_to_disk``)."""
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    raise DataError(
        f"{path}: unknown data format {suffix!r} "
        "(expected .jsonl, .json, .parquet or a saved Hugging Face dataset folder)"
    )


def count_records(path: str | Path) -> int | None:
    """A cheap upper bound on the number of records (for progress bars); ``None`` if unknown."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "jsonl":
        n, last = 0, b"\n"
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
                last = chunk[-1:]
        return n + (last != b"\n")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt == "hf":
        return len(_load_hf_dataset(path))
    return None


def _where(path: Path, fmt: str, position: int) -> str:
    if fmt == "jsonl":
        return f"{path}:{position}"
    return f"{path}: row {position}"


def _raw_records(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """(position, raw record or the DataError that replaced it) for every record of the file."""
    if fmt == "jsonl":
        yield from _jsonl_records(path)
    elif fmt == "json":
        yield from enumerate(_json_rows(path))
    elif fmt == "parquet":
        yield from enumerate(_parquet_rows(path))
    else:
        yield from enumerate(_load_hf_dataset(path))


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})")


def _json_rows(path: Path) -> list[Any]:
    try:
        with path.open(encoding="utf-8-sig") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(doc, Mapping) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise DataError(f'{path}: expected a JSON array of objects or {{"data": [...]}}')
    return doc


def _parquet_rows(path: Path, batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        yield from batch.to_pylist()


def _load_hf_dataset(path: Path) -> Any:
    from datasets.dataset_dict import DatasetDict
    from datasets.load import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: a folder, but not one written by Dataset.save_to_disk ({exc})"
        ) from None
    if isinstance(ds, DatasetDict):
        if len(ds) != 1:
            raise DataError(
                f"{path}: a dataset with splits {', '.join(ds)}; pass one split's folder "
                f"(e.g. {path / next(iter(ds))})"
            )
        ds = next(iter(ds.values()))
    return ds


# --- field extraction ---------------------------------------------------------------------


def _lookup(raw: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """(found, value) for a field name or a dotted path into nested objects."""
    if name in raw:
        return True, raw[name]
    node: Any = raw
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _pick(
    raw: Mapping[str, Any], mapped: str | None, candidates: tuple[str, ...], exclude: str = ""
) -> tuple[str | None, Any]:
    """The first present, non-null field: the mapped one only, else the candidates in order."""
    if mapped is not None:
        found, value = _lookup(raw, mapped)
        return (mapped, value) if found else (None, None)
    for name in candidates:
        if name != exclude and raw.get(name) is not None:
            return name, raw[name]
    return None, None


def _missing(where: str, target: str, mapped: str | None, candidates: tuple[str, ...]) -> DataError:
    looked = repr(mapped) if mapped else ", ".join(candidates)
    return DataError(f"{where}: field {target!r}: missing or null (looked for {looked})")


def _as_messages(value: Any) -> list[Mapping[str, Any]] | None:
    """Chat messages from a list of {role, content} or its JSON string; ``None`` if not a chat."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value)
    ):
        return value
    return None


def _split_chat(
    messages: list[Mapping[str, Any]], where: str, field: str
) -> tuple[str | None, str]:
    """(system prompt, last user turn) of a chat."""
    system: str | None = None
    question: str | None = None
    for m in messages:
        content = m["content"]
        if m["role"] not in ("system", "user"):
            continue
        if not isinstance(content, str):
            raise DataError(
                f"{where}: field {field!r}: {m['role']} message content is "
                f"{type(content).__name__}, expected a string"
            )
        if m["role"] == "system" and system is None:
            system = content
        elif m["role"] == "user":
            question = content
    if question is None:
        raise DataError(f"{where}: field {field!r}: the chat has no user message")
    return system, question


def _text(value: Any, where: str, field: str, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(f"{where}: field {field!r}: expected a string, got {type(value).__name__}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise DataError(f"{where}: field {field!r}: empty")
    return text


def parse_label(value: Any, where: str = "", field: str = "label") -> bool | None:
    """A gold verdict from bool, 0/1 or "true"/"yes"/"correct" (and their negatives)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise DataError(
        f"{where}: field {field!r}: cannot read {value!r} as a verdict "
        "(use true/false, 1/0, yes/no, correct/incorrect)"
    )


def _common(
    raw: Mapping[str, Any], index: int, where: str, fields: FieldMap
) -> tuple[dict[str, Any], set[str], str]:
    """id, question, system_prompt, reference, domain; the source fields used; the reference's."""
    used: set[str] = set()

    id_name = fields.id or "id"
    found, raw_id = _lookup(raw, id_name)
    if found and raw_id is not None:
        ident = _text(raw_id, where, id_name)
        used.add(id_name)
    elif fields.id is not None:
        raise _missing(where, "id", fields.id, ())
    else:
        ident = str(index)

    q_name, q_value = _pick(raw, fields.question, QUESTION_FIELDS)
    if q_name is None:
        raise _missing(where, "question", fields.question, QUESTION_FIELDS)
    used.add(q_name)
    system: str | None = None
    chat = _as_messages(q_value)
    if chat is not None:
        system, question = _split_chat(chat, where, q_name)
        if not question.strip():
            raise DataError(f"{where}: field {q_name!r}: the user message is empty")
    else:
        question = _text(q_value, where, q_name)

    s_name, s_value = _pick(raw, fields.system_prompt, SYSTEM_FIELDS)
    if s_name is not None and s_value is not None:
        system = _text(s_value, where, s_name, allow_empty=True)
        used.add(s_name)

    r_name, r_value = _pick(raw, fields.reference, REFERENCE_FIELDS)
    if r_name is None or r_value is None:
        raise _missing(where, "reference", fields.reference, REFERENCE_FIELDS)
    reference = _text(r_value, where, r_name)
    used.add(r_name)

    d_name, d_value = _pick(raw, fields.domain, DOMAIN_FIELDS)
    domain = None if d_name is None or d_value is None else _text(d_value, where, d_name)
    if d_name is not None:
        used.add(d_name)

    return (
        {
            "id": ident,
            "question": question,
            "system_prompt": system,
            "reference": reference,
            "domain": domain,
        },
        used,
        r_name,
    )


def _metadata(raw: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in used}


def parse_example(
    raw: Mapping[str, Any], index: int, where: str, fields: FieldMap | None = None
) -> Example:
    """One row -> ``Example``; ``index`` (0-based) is the id when the row has none."""
    common, used, _ = _common(raw, index, where, fields or FieldMap())
    return Example(**common, metadata=_metadata(raw, used))


def parse_judge_item(
    raw: Mapping[str, Any], index: int, where: str, fields: FieldMap | None = None
) -> JudgeItem:
    """One row -> ``JudgeItem``. The response may be empty (the verifier reports that)."""
    fields = fields or FieldMap()
    common, used, reference_field = _common(raw, index, where, fields)
    common.pop("system_prompt")

    resp_name, resp_value = _pick(raw, fields.response, RESPONSE_FIELDS)
    if resp_name is None or resp_value is None:
        raise _missing(where, "response", fields.response, RESPONSE_FIELDS)
    response = _text(resp_value, where, resp_name, allow_empty=True)
    used.add(resp_name)

    # The paper's datasets use ``label`` for the reference; then it is not a verdict.
    l_name, l_value = _pick(raw, fields.label, LABEL_FIELDS, exclude=reference_field)
    label = None if l_name is None else parse_label(l_value, where, l_name)
    if l_name is not None:
        used.add(l_name)

    return JudgeItem(**common, response=response, label=label, metadata=_metadata(raw, used))


# --- public API ---------------------------------------------------------------------------


def iter_examples(
    path: str | Path, *, fields: FieldMap | None = None, skip_invalid: bool = False
) -> Records[Example]:
    """Stream ``Example`` records from a file or saved dataset folder."""
    fmap = fields or FieldMap()
    return Records(
        Path(path),
        lambda raw, i, where: parse_example(raw, i, where, fmap),
        skip_invalid=skip_invalid,
    )


def load_examples(
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> list[Example]:
    """The first ``limit`` (default: all) valid examples as a list."""
    return _take(iter_examples(path, fields=fields, skip_invalid=skip_invalid), limit)


def iter_judge_items(
    path: str | Path, *, fields: FieldMap | None = None, skip_invalid: bool = False
) -> Records[JudgeItem]:
    """Stream ``JudgeItem`` records (id, question, reference, response[, label, domain])."""
    fmap = fields or FieldMap()
    return Records(
        Path(path),
        lambda raw, i, where: parse_judge_item(raw, i, where, fmap),
        skip_invalid=skip_invalid,
    )


def load_judge_items(
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> list[JudgeItem]:
    """The first ``limit`` (default: all) valid judge items as a list."""
    return _take(iter_judge_items(path, fields=fields, skip_invalid=skip_invalid), limit)


def sample_dataset_path() -> Path:
    """The bundled 2,058-row Multi-subject-RLVR slice (ROLL's JSONL format)."""
    return Path(__file__).resolve().parent / "sample" / SAMPLE_DATASET


def load_sample_examples(limit: int | None = None) -> list[Example]:
    """Examples of the bundled Multi-subject-RLVR slice, each with the paper's system prompt."""
    return load_examples(sample_dataset_path(), limit=limit)


def _take(records: Iterator[T], limit: int | None) -> list[T]:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return list(itertools.islice(records, limit))
