"""Judge prompts: the paper's verifier template (PAPER.md §2) and a small registry of others.

A template is a user message with three slots, ``{question}``, ``{reference}`` and
``{response}``, a system message, and the two judgment words the judge is told to emit. The
built-in templates are data files in ``verifiers/templates/`` (byte for byte; the paper's puts two
spaces at the end of every non-blank line except ``---``); a path to a user file works too:

- ``*.txt``: the user message; system "You are a helpful assistant.", judgment words YES/NO;
- ``*.json`` / ``*.yaml`` / ``*.yml``: a mapping with ``user`` and optionally ``system``,
  ``yes``, ``no``.

The file's final newline is not part of the message. Slots are filled in one pass, so text in a
question that looks like a slot (``{response}``) is left alone; braces elsewhere (LaTeX) are fine.

Slots as in the paper: the question is the user question only (never the policy's system
prompt), the response is the final step (last non-empty line) unless ``response_slot="full"``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rewardbridge.verifiers.text import ResponseSlot, response_slot_text

PAPER_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_TEMPLATE = "paper"

_SLOT = re.compile(r"\{(question|reference|response)\}")
_REQUIRED_SLOTS = ("reference", "response")


@dataclass(frozen=True, slots=True)
class JudgeTemplate:
    """A judge prompt: ``user`` holds the slots; ``yes``/``no`` are the words the judge emits."""

    name: str
    user: str
    system: str | None = PAPER_SYSTEM_PROMPT
    yes: str = "YES"
    no: str = "NO"
    description: str = ""

    def __post_init__(self) -> None:
        present = set(_SLOT.findall(self.user))
        missing = [s for s in _REQUIRED_SLOTS if s not in present]
        if missing:
            raise ValueError(
                f"judge template {self.name!r} lacks the slot(s) "
                + ", ".join("{" + s + "}" for s in missing)
            )
        if not self.yes.strip() or not self.no.strip() or self.yes.casefold() == self.no.casefold():
            raise ValueError(
                f"judge template {self.name!r}: judgment words must be two different non-empty "
                f"words (yes={self.yes!r}, no={self.no!r})"
            )

    def render(self, question: str, reference: str, response: str) -> list[dict[str, str]]:
        """Chat messages [system?, user] with the slots filled as given (no final-step cut)."""
        values = {"question": question, "reference": reference, "response": response}
        user = _SLOT.sub(lambda m: values[m.group(1)], self.user)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": user})
        return messages


# name -> (data file, yes word, no word, one-line description)
_BUILTIN: dict[str, tuple[str, str, str, str]] = {
    "paper": (
        "paper.txt",
        "YES",
        "NO",
        "Su et al. 2025, the exact verifier prompt (judges the final step, answers YES/NO)",
    ),
    "general-verifier": (
        "general-verifier.txt",
        "Yes",
        "No",
        "in the style of TIGER-Lab General-Verifier, the decision asked as one word (Yes/No)",
    ),
}


def available_templates() -> dict[str, str]:
    """Built-in template names and one-line descriptions."""
    return {name: desc for name, (_, _, _, desc) in _BUILTIN.items()}


def _strip_final_newline(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


@functools.cache
def _builtin_template(name: str) -> JudgeTemplate:
    filename, yes, no, desc = _BUILTIN[name]
    text = resources.files(__package__).joinpath("templates", filename).read_text("utf-8")
    return JudgeTemplate(name, _strip_final_newline(text), yes=yes, no=no, description=desc)


def load_template(spec: str | os.PathLike[str] | JudgeTemplate = DEFAULT_TEMPLATE) -> JudgeTemplate:
    """A built-in name, a template file path, or a template (returned as is)."""
    if isinstance(spec, JudgeTemplate):
        return spec
    if isinstance(spec, str) and spec in _BUILTIN:
        return _builtin_template(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(
            f"unknown judge template {str(spec)!r}: not a file, and not one of "
            + ", ".join(_BUILTIN)
        )
    text = path.read_text("utf-8")
    if path.suffix.lower() not in {".json", ".yaml", ".yml"}:
        return JudgeTemplate(path.name, _strip_final_newline(text))
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
        if isinstance(data, dict):  # YAML 1.1 reads the bare keys yes/no as booleans
            data = {
                ({True: "yes", False: "no"}.get(k, k) if isinstance(k, bool) else k): v
                for k, v in data.items()
            }
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        raise ValueError(f"{path}: a template file must be a mapping with a 'user' string")
    unknown = sorted(set(data) - {"user", "system", "yes", "no", "description"})
    if unknown:
        raise ValueError(f"{path}: unknown template field(s) {', '.join(unknown)}")
    return JudgeTemplate(
        name=path.name,
        user=data["user"],
        system=data.get("system", PAPER_SYSTEM_PROMPT),
        yes=str(data.get("yes", "YES")),
        no=str(data.get("no", "NO")),
        description=str(data.get("description", "")),
    )


def render_judge_messages(
    question: str,
    reference: str,
    response: str,
    template: str | os.PathLike[str] | JudgeTemplate = DEFAULT_TEMPLATE,
    response_slot: ResponseSlot = "final_step",
) -> list[dict[str, str]]:
    """The judge conversation for one item: [system, user] chat messages.

    The chat template (with the generation prompt) is applied by the backend or its server.
    """
    return load_template(template).render(
        question, reference, response_slot_text(response, response_slot)
    )
