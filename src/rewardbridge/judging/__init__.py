"""Judging many items: the one record of a judged item (``records.py``), the one resumable
JSONL store (``store.py``), and the drivers that judge files and lists through them
(``run.py``)."""

from rewardbridge.judging.records import result_from_record, result_record
from rewardbridge.judging.run import JudgeRunSummary, judge_file, judge_items, summary_path
from rewardbridge.judging.store import RecordStore, StoreMismatch

__all__ = [
    "JudgeRunSummary",
    "RecordStore",
    "StoreMismatch",
    "judge_file",
    "judge_items",
    "result_from_record",
    "result_record",
    "summary_path",
]
