"""THE record of one judged item: what every command that judges writes, one JSON line each.

    {"id", "reward" (the score, or null when not judged), "status", "verifier", "latency_s",
     "judgment", "p_yes", "p_no", "stage", "reason"    (each only when the verifier set it),
     "label", "domain", "prompt_id"                    (passed through when the item has them),
     "question", "reference", "response"               (passed through with ``text=True``),
     ...extra                                          (the caller's own fields, e.g. "step")}

``reward`` is ``null`` exactly when ``status`` is not ``"judged"``: a failure is never a 0.
``judge``, ``eval-verifier``, ``audit``, ``evaluate`` and ``distill collect`` all write this
record, so any of their files can be read by the others: ``result_from_record`` gives the
``VerifierResult`` back (``eval-verifier`` on a ``judge`` output), ``distill train`` reads the
texts and the judgment of a record written with ``text=True``.

API: ``result_record(item, result, verifier, text=False, extra=None) -> dict``;
``result_from_record(record, where="") -> VerifierResult`` (a ``DataError`` naming the field);
``item_from_record(record) -> JudgeItem``; ``is_judged_record(record)``; ``soft_p_yes(result)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import DataError
from rewardbridge.verifiers.base import Status, VerifierResult

RESULT_FIELDS = ("judgment", "p_yes", "p_no", "stage", "reason")
"""Fields of a ``VerifierResult`` written only when set."""
TEXT_FIELDS = ("question", "reference", "response")
"""The item's texts, written with ``text=True``."""
REQUIRED_FIELDS = ("id", "reward", "status", "verifier")
"""What makes a line a judged-item record."""


def result_record(
    item: JudgeItem,
    result: VerifierResult,
    verifier: str,
    *,
    text: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of ``item`` judged by ``verifier`` (see the module docstring)."""
    record: dict[str, Any] = {
        "id": item.id,
        "reward": result.score,
        "status": result.status.value,
        "verifier": verifier,
        "latency_s": round(result.latency_s, 6),
    }
    for name in RESULT_FIELDS:
        value = getattr(result, name)
        if value is not None:
            record[name] = value
    if item.label is not None:
        record["label"] = item.label
    if item.domain is not None:
        record["domain"] = item.domain
    if "prompt_id" in item.metadata:
        record["prompt_id"] = str(item.metadata["prompt_id"])
    if text:
        record.update(question=item.question, reference=item.reference, response=item.response)
    if extra:
        clash = set(extra) & set(REQUIRED_FIELDS)
        if clash:
            raise ValueError(f"extra fields may not replace {sorted(clash)}")
        record.update(extra)
    return record


def is_judged_record(raw: Any) -> bool:
    """Whether ``raw`` (one parsed line) has the shape of a judged-item record."""
    return isinstance(raw, Mapping) and all(name in raw for name in REQUIRED_FIELDS)


def _number(raw: Mapping[str, Any], name: str, where: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise DataError(f"{where}: field {name!r}: expected a number or null, got {value!r}")
    return float(value)


def result_from_record(raw: Mapping[str, Any], where: str = "record") -> VerifierResult:
    """The ``VerifierResult`` a record holds; a missing or bad field is a ``DataError`` naming
    ``where`` (e.g. ``file:line``) and the field."""
    for name in REQUIRED_FIELDS:
        if name not in raw:
            raise DataError(f"{where}: field {name!r} missing: not a judged-item record")
    try:
        status = Status(raw["status"])
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise DataError(
            f"{where}: field 'status': {raw['status']!r} is not one of {known}"
        ) from None
    reward = _number(raw, "reward", where)
    if (status is Status.JUDGED) != (reward is not None):
        raise DataError(
            f"{where}: field 'reward': must be a number when status is 'judged' and null "
            f"otherwise (status={status.value!r}, reward={raw['reward']!r})"
        )
    texts: dict[str, str | None] = {}
    for name in ("judgment", "stage", "reason"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: field {name!r}: expected a string, got {value!r}")
        texts[name] = value
    return VerifierResult(
        status=status,
        score=reward,
        p_yes=_number(raw, "p_yes", where),
        p_no=_number(raw, "p_no", where),
        latency_s=_number(raw, "latency_s", where) or 0.0,
        **texts,
    )


def item_from_record(raw: Mapping[str, Any]) -> JudgeItem:
    """The item a record was judged on, as far as the record holds it (texts are "" unless it
    was written with ``text=True``)."""
    label = raw.get("label")
    metadata = {"prompt_id": raw["prompt_id"]} if raw.get("prompt_id") is not None else {}
    return JudgeItem(
        id=str(raw["id"]),
        question=str(raw.get("question") or ""),
        reference=str(raw.get("reference") or ""),
        response=str(raw.get("response") or ""),
        label=None if label is None else bool(label),
        domain=raw.get("domain"),
        metadata=metadata,
    )


def soft_p_yes(result: VerifierResult) -> float | None:
    """The verifier's P(YES): p_yes / (p_yes + p_no) when the judge gave both (the normalised
    soft reward), else its score (a rule verifier's 0/1 or a soft reward); ``None`` when not
    judged. Calibration and distillation both read it."""
    if not result.judged:
        return None
    if result.p_yes is not None and result.p_no is not None and result.p_yes + result.p_no > 0:
        return result.p_yes / (result.p_yes + result.p_no)
    return result.score


__all__ = [
    "REQUIRED_FIELDS",
    "RESULT_FIELDS",
    "TEXT_FIELDS",
    "is_judged_record",
    "item_from_record",
    "result_from_record",
    "result_record",
    "soft_p_yes",
]
