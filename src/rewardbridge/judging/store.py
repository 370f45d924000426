"""THE resumable JSONL store of records (one JSON object with a string ``id`` per line).

Every command that judges appends its records (``judging/records.py``) through this store, so
a damaged file means the same thing everywhere. The one damage rule:

- a torn last line (a crash mid-write: not JSON, or no string ``id``) is cut off when the store
  is opened, and the item is judged again; a whole last line missing only its newline gets one;
- a bad line anywhere else is real damage: a ``DataError`` naming ``file:line``, or, with
  ``skip_invalid=True``, logged, skipped and counted (``store.skipped``);
- a repeated id keeps its first record (later ones are logged and ignored).

``append`` writes a batch, flushes and fsyncs: a crash loses at most the batch in flight.
``meta`` (e.g. the verifier's name and options) is kept in ``<path>.meta.json``: reopening a
non-empty store with other meta raises ``StoreMismatch`` (``ValueError``), since one file
holding two verifiers' judgments would make any report silent nonsense.

API::

    store = RecordStore(path, skip_invalid=False, meta=None, read_only=False)
    store.records()        # iterate the valid records (first per id), streaming
    store.done_ids()       # set of ids already written
    store.done_results()   # {id: VerifierResult}
    store.append(records)  # write + flush + fsync one batch
    store.drop(statuses)   # rewrite without the records of these statuses (to judge them again)
    store.close()          # or `with RecordStore(...) as store:`
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from rewardbridge.data.loaders import DataError
from rewardbridge.verifiers.base import VerifierResult

log = logging.getLogger(__name__)


class StoreMismatch(ValueError):
    """The store was written with other meta (another verifier)."""


def meta_path(path: str | os.PathLike[str]) -> Path:
    """Where the meta of a store lives: ``<path>.meta.json``."""
    p = Path(path)
    return p.with_name(p.name + ".meta.json")


def _parse(line: bytes) -> dict[str, Any]:
    """One line as a record; ``ValueError`` saying why it is not one."""
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    if not isinstance(raw.get("id"), str):
        raise ValueError("no string 'id'")
    return raw


def repair_tail(path: Path) -> int:
    """Apply the torn-last-line rule to ``path``; returns the bytes cut (0 if none)."""
    if not path.exists():
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        ends_with_newline = fh.read(1) == b"\n"
        body_end = size - 1 if ends_with_newline else size
        start, block = body_end, 1 << 16  # find the start of the last line
        while start > 0:
            lo = max(0, start - block)
            fh.seek(lo)
            nl = fh.read(start - lo).rfind(b"\n")
            if nl >= 0:
                start = lo + nl + 1
                break
            start = lo
        fh.seek(start)
        last = fh.read(body_end - start)
        if not last.strip():
            return 0
        try:
            _parse(last)
        except ValueError as exc:
            log.warning("%s: cutting a torn last line (%s)", path, exc)
            fh.truncate(start)
            os.fsync(fh.fileno())
            return size - start
        if not ends_with_newline:
            fh.write(b"\n")
            os.fsync(fh.fileno())
        return 0


class RecordStore:
    """A resumable JSONL file of records (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        skip_invalid: bool = False,
        meta: Mapping[str, Any] | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.skip_invalid = skip_invalid
        self.read_only = read_only
        """Only read (another command's output as input): a torn last line is ignored, not cut."""
        self.skipped = 0
        """Bad lines skipped by the last full read (``skip_invalid=True``)."""
        self._fh: IO[str] | None = None
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"no such file: {self.path}")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if meta is not None:
            self._check_meta(meta)
        repair_tail(self.path)
        self.path.touch()  # an opened store exists, even before its first record

    def _check_meta(self, meta: Mapping[str, Any]) -> None:
        wanted = json.loads(json.dumps(meta, default=str))
        mpath = meta_path(self.path)
        if mpath.exists() and self.path.exists() and self.path.stat().st_size > 0:
            previous = json.loads(mpath.read_text(encoding="utf-8"))
            if previous != wanted:
                raise StoreMismatch(
                    f"{self.path} holds records written with {previous}, not {wanted}; "
                    "use another output or delete it"
                )
        tmp = mpath.with_name(mpath.name + ".tmp")
        tmp.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, mpath)

    def records(self) -> Iterator[dict[str, Any]]:
        """The valid records, first per id, in file order (streamed; applies the damage rule)."""
        self.skipped = 0
        if not self.path.exists():
            return
        seen: set[str] = set()
        size = self.path.stat().st_size
        offset = 0
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    record = _parse(line)
                except ValueError as exc:
                    where = f"{self.path}:{lineno}"
                    if self.read_only and offset >= size:
                        log.warning("%s: ignoring a torn last line (%s)", where, exc)
                        return
                    if not self.skip_invalid:
                        raise DataError(
                            f"{where}: not a record ({exc}); fix or move the file "
                            "(or skip bad lines with skip_invalid / --skip-invalid)"
                        ) from None
                    log.warning("%s: skipping a bad line (%s)", where, exc)
                    self.skipped += 1
                    continue
                if record["id"] in seen:
                    log.warning("%s:%d: id %r appears twice", self.path, lineno, record["id"])
                    continue
                seen.add(record["id"])
                yield record

    def done_ids(self) -> set[str]:
        """Ids already in the store."""
        return {r["id"] for r in self.records()}

    def done_results(self) -> dict[str, VerifierResult]:
        """``{id: VerifierResult}`` of the records in the store (bad fields: ``DataError``)."""
        from rewardbridge.judging.records import result_from_record

        return {
            r["id"]: result_from_record(r, f"{self.path} (id {r['id']!r})") for r in self.records()
        }

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write one batch, flush and fsync; returns the number of records written."""
        if self.read_only:
            raise RuntimeError(f"RecordStore({self.path}) is read-only")
        lines = [json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records]
        if not lines:
            return 0
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write("".join(lines))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return len(lines)

    def drop(self, statuses: Collection[str]) -> int:
        """Rewrite the file without the records whose status is in ``statuses`` (atomically:
        a temporary file, fsynced, then renamed over it); returns how many were dropped."""
        if self.read_only:
            raise RuntimeError(f"RecordStore({self.path}) is read-only")
        kept, dropped = [], 0
        for record in self.records():
            if record.get("status") in statuses:
                dropped += 1
            else:
                kept.append(json.dumps(record, ensure_ascii=False) + "\n")
        if not dropped:
            return 0
        self.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("".join(kept))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return dropped

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["RecordStore", "StoreMismatch", "meta_path", "repair_tail"]
