"""Text helpers shared by verifiers: the paper's "final step" and answer normalisation."""

from __future__ import annotations

import re
import unicodedata


def final_step(response: str) -> str:
    """The last non-empty line of a response (the paper's "final step"), stripped.

    Returns "" for an empty or whitespace-only response (which is then not judged).
    """
    for line in reversed(response.splitlines()):
        if line.strip():
            return line.strip()
    return ""


_ANSWER_MARKERS = re.compile(
    r"(?:therefore,?\s+the\s+(?:final\s+)?answer\s+is|the\s+(?:final\s+)?answer\s+is|answer\s*:)",
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
