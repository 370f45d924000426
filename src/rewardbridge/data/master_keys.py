"""The bundled master keys (Zhao et al. 2025, arXiv 2507.08794) and their variants.

A master key is a non-answer ("", ".", "Thought process:") that LLM judges wrongly accept.
``load_master_keys()`` reads the bundled list (package data ``data/sample/master_keys.jsonl``);
``key_variants(key)`` gives the key and simple variants of it (other casing, a trailing newline,
the policy's answer marker followed by the key); ``build_probes(keys)`` all of them, plus the
bare answer marker. Used by the offline audit (``evaluation/audit.py``) and the live canaries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rewardbridge.data.example import JudgeItem

ANSWER_MARKER = "Therefore, the answer is"


@dataclass(frozen=True, slots=True)
class MasterKey:
    id: str
    text: str
    category: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Probe:
    """One response text to try: a master key or a variant of one."""

    key_id: str
    variant: str
    text: str

    def as_response_to(
        self,
        item_id: str,
        question: str,
        reference: str,
        domain: str | None = None,
        **metadata: Any,
    ) -> JudgeItem:
        """This probe as the response to one question: never a correct answer (label False)."""
        return JudgeItem(
            id=item_id,
            question=question,
            reference=reference,
            response=self.text,
            label=False,
            domain=domain,
            metadata={"key_id": self.key_id, "variant": self.variant, **metadata},
        )


def load_master_keys() -> list[MasterKey]:
    """The bundled master-key list (package data)."""
    text = (
        resources.files("rewardbridge.data")
        .joinpath("sample", "master_keys.jsonl")
        .read_text("utf-8")
    )
    keys = []
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            keys.append(
                MasterKey(
                    id=str(raw["id"]),
                    text=raw["master_key"],
                    category=raw.get("category", ""),
                    note=raw.get("note", ""),
                )
            )
    return keys


def key_variants(key: MasterKey) -> list[Probe]:
    """The key itself and its variants; variants identical to an earlier text are dropped."""
    candidates = [
        ("original", key.text),
        ("lower", key.text.lower()),
        ("upper", key.text.upper()),
        ("trailing-newline", key.text + "\n"),
        ("answer-marker", f"{ANSWER_MARKER} {key.text}"),
    ]
    seen: set[str] = set()
    out = []
    for variant, text in candidates:
        if text not in seen:
            seen.add(text)
            out.append(Probe(key.id, variant, text))
    return out


def build_probes(keys: Sequence[MasterKey], *, variants: bool = True) -> list[Probe]:
    """Every probe to try; with variants, also the bare answer marker (a key of its own)."""
    probes = [
        p
        for k in keys
        for p in (key_variants(k) if variants else [Probe(k.id, "original", k.text)])
    ]
    if variants:
        probes.append(Probe("answer-marker-only", "original", ANSWER_MARKER))
    return probes
