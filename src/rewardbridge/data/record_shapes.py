"""Record shapes: which fields of a row hold the question, reference, response, label, domain.

Detected per row:

- the paper's released datasets (``virtuoussy/Multi-subject-RLVR``, ``Math-RLVR``): ``query`` =
  chat messages [system, user], ``label`` = the reference string, optional ``subject``;
- ROLL's copy of them (the bundled sample): ``messages`` = the same chat as a JSON *string*,
  ``ground_truth``, ``id`` (its ``prompt`` field repeats the system prompt and is not used);
- plain rows: ``question``/``problem``/``prompt``/..., ``reference``/``ground_truth``/``answer``/...

Chat messages give ``system_prompt`` (the system turn) and ``question`` (the last user turn).
A ``FieldMap`` names the fields of any other shape. A bad row raises ``DataError`` naming the
place (``where``: file and line or row) and the field. File formats: ``data/loaders.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rewardbridge.data.example import Example, JudgeItem

# Candidate source fields per target field, in the order they are tried.
QUESTION_FIELDS = ("query", "messages", "question", "problem", "prompt", "input", "instruction")
REFERENCE_FIELDS = ("reference", "ground_truth", "answer", "gt", "gold", "target", "label")
RESPONSE_FIELDS = ("response", "output", "completion", "model_output", "generation", "prediction")
LABEL_FIELDS = ("label", "is_correct", "correct", "verdict")
DOMAIN_FIELDS = ("domain", "subject")
SYSTEM_FIELDS = ("system_prompt", "system")

_TRUE = frozenset({"true", "yes", "y", "correct", "1"})
_FALSE = frozenset({"false", "no", "n", "incorrect", "wrong", "0"})


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
