"""Read examples and judge items from JSONL, JSON, Parquet and saved Hugging Face datasets.

Every reader streams: JSONL line by line, Parquet by record batch, a saved dataset row by row
from its memory-mapped Arrow files (a JSON file is one document and is parsed whole).

Which fields of a row are which (the paper's datasets, ROLL's copy, plain rows, a
``FieldMap``) is decided in ``data/record_shapes.py``. A bad row raises ``DataError`` naming the
file, the line (or row) and the field; with ``skip_invalid=True`` it is logged and counted on the
returned iterator (``.skipped``, ``.errors``) instead.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.record_shapes import (
    DataError,
    FieldMap,
    parse_example,
    parse_judge_item,
    parse_label,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

SAMPLE_DATASET = "multi_subject_rlvr.jsonl"

_MAX_KEPT_ERRORS = 1000


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


__all__ = [
    "DataError",
    "FieldMap",
    "Records",
    "count_records",
    "detect_format",
    "iter_examples",
    "iter_judge_items",
    "load_examples",
    "load_judge_items",
    "load_sample_examples",
    "parse_example",
    "parse_judge_item",
    "parse_label",
    "sample_dataset_path",
]
