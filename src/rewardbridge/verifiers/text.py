"""Text helpers shared by verifiers: the paper's "final step", the response slot, answer
normalisation."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, cast, get_args

ResponseSlot = Literal["final_step", "full", "answer"]
"""The part of a response a verifier reads: the final step (the last non-empty line, the
paper's), the full response, or the extracted answer (``extract_answer``)."""
RESPONSE_SLOTS: tuple[str, ...] = get_args(ResponseSlot)

# A line that only closes a display-math block carries no answer on its own.
_CLOSERS = {"\\]": "\\[", "$$": "$$"}


def final_step(response: str) -> str:
    """The last non-empty line of a response (the paper's "final step"), stripped.

    One departure: when that line only closes a display-math block (a bare ``\\]`` or ``$$``),
    the whole block is the final step, joined on spaces (``\\[ \\boxed{5} \\]``); otherwise
    a response ending in display math would be judged on ``\\]`` alone.
    Returns "" for an empty or whitespace-only response (which is then not judged).
    """
    lines = [line.strip() for line in response.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    opener = _CLOSERS.get(last)
    if opener is not None:
        for start in range(len(lines) - 2, -1, -1):
            if lines[start].startswith(opener):
                return " ".join(lines[start:])
    return last


_ANSWER_MARKERS = re.compile(
    r"(?:therefore,?\s+the\s+(?:final\s+)?answer\s+is|the\s+(?:final\s+)?answer\s+is|answer\s*:"
    r"|^\s*a\s*:)",  # "A: 18" (GSM8K's answer line)
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n.,;:!?\"'`*()[]{}"


def extract_answer(text: str) -> str:
    """The text after the last answer marker ("Therefore, the answer is", "Answer:") if any,
    else the final step."""
    step = final_step(text)
    matches = list(_ANSWER_MARKERS.finditer(step))
    if matches:
        return step[matches[-1].end() :].strip()
    return step


def normalize_text(text: str) -> str:
    """NFKC, casefold, collapse whitespace (incl. non-breaking spaces), strip edge punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACES.sub(" ", text).strip()
    return text.strip(_EDGE_PUNCT)


def check_response_slot(slot: str) -> ResponseSlot:
    """``slot`` if it is a response slot, else ``ValueError`` naming the option."""
    if slot not in RESPONSE_SLOTS:
        raise ValueError(f"response_slot must be one of {', '.join(RESPONSE_SLOTS)}; got {slot!r}")
    return cast(ResponseSlot, slot)


def response_slot_text(response: str, slot: ResponseSlot = "final_step") -> str:
    """The part of ``response`` that ``slot`` names."""
    if slot == "final_step":
        return final_step(response)
    if slot == "answer":
        return extract_answer(response)
    check_response_slot(slot)
    return response
