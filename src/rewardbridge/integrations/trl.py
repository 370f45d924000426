"""A verifier as a TRL reward function (checked against trl 1.16, ``GRPOTrainer``).

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=..., **columns)`` where
``columns`` holds every dataset column (one value per completion) plus ``trainer_state``,
``log_extra`` and ``log_metric``. It accepts ``None`` for a completion it cannot score and
leaves that sample out (NaN), which is what we return for every unjudged item: never 0.

``VerifierReward`` is synchronous; ``AsyncVerifierReward`` is a coroutine, which TRL runs on
its async loop concurrently with other async reward functions (a remote judge then overlaps
with local rule rewards). Both read the reference from the ``reference_column`` (default
``reference``) and the question from ``question_column`` when given, else from the prompt's
last user turn. They log the unjudged fraction as ``<name>/unjudged`` and the verifier status
of each completion as a ``<name>_status`` column of the completions table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Verifier, VerifierResult


def _text(message_or_text: Any) -> str:
    """A plain string, or the content of the last message of a conversation."""
    if isinstance(message_or_text, str):
        return message_or_text
    if isinstance(message_or_text, list) and message_or_text:
        last = message_or_text[-1]
        if isinstance(last, dict):
            return str(last.get("content", ""))
    raise ValueError(
        f"expected a string or a list of chat messages, got {type(message_or_text).__name__}"
    )


def _question(prompt: Any) -> str:
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return str(users[-1].get("content", ""))
    return _text(prompt)


class VerifierReward:
    """``GRPOTrainer(reward_funcs=VerifierReward(verifier))``: one reward per completion,
    ``None`` where the verifier did not judge."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        reference_column: str = "reference",
        question_column: str | None = None,
        name: str = "rewardbridge",
    ) -> None:
        self.verifier = verifier
        self.reference_column = reference_column
        self.question_column = question_column
        self.__name__ = name  # TRL logs rewards/<__name__>

    def items(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
    ) -> list[JudgeItem]:
        if self.reference_column not in columns:
            available = sorted(k for k in columns if k not in _TRAINER_KWARGS)
            raise ValueError(
                f"{self.__name__}: the dataset has no {self.reference_column!r} column "
                f"(columns: {', '.join(available) or 'none'}); pass reference_column="
            )
        references = columns[self.reference_column]
        questions = (
            columns[self.question_column]
            if self.question_column is not None
            else [_question(p) for p in prompts]
        )
        return [
            JudgeItem(id=str(i), question=str(q), reference=str(ref), response=_text(c))
            for i, (q, ref, c) in enumerate(zip(questions, references, completions, strict=True))
        ]

    def rewards(
        self, results: Sequence[VerifierResult], columns: dict[str, Any]
    ) -> list[float | None]:
        log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = columns.get("log_extra")
        if log_metric is not None and results:
            unjudged = sum(not r.judged for r in results)
            log_metric(f"{self.__name__}/unjudged", unjudged / len(results))
        if log_extra is not None:
            log_extra(f"{self.__name__}_status", [r.status.value for r in results])
        return [r.score for r in results]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        items = self.items(prompts, completions, columns)
        return self.rewards(self.verifier.verify(items), columns)


class AsyncVerifierReward(VerifierReward):
    """The coroutine twin of ``VerifierReward``: awaits ``verifier.averify`` when the verifier
    has one (``RemoteVerifier``), else runs ``verify`` in a worker thread."""

    async def __call__(  # type: ignore[override]
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        items = self.items(prompts, completions, columns)
        averify = getattr(self.verifier, "averify", None)
        if averify is not None:
            results = await averify(items)
        else:
            results = await asyncio.to_thread(self.verifier.verify, items)
        return self.rewards(results, columns)


_TRAINER_KWARGS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
