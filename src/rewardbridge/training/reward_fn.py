"""The one TRL reward adapter: a verifier as a ``GRPOTrainer`` reward function.

Used by ``rewardbridge train`` and by TRL users (re-exported as ``rewardbridge.integrations.
trl``). Checked against trl 1.16 ``GRPOTrainer._calculate_rewards``: TRL calls
``reward_func(prompts=..., completions=..., completion_ids=..., **columns)`` where ``columns``
holds every dataset column (one value per completion) plus ``trainer_state``, ``log_extra``,
``log_metric``; a coroutine function (``trl.trainer.utils.is_async_callable``) is awaited on
TRL's async loop, concurrently with the other async reward functions; ``None`` becomes NaN.

What is judged, the same for both classes:

- the response: a plain completion string, or the content of the last assistant message of a
  conversational completion (the text parts of multimodal content, joined);
- the question: the ``question_column`` when given, else the last user turn of the prompt (a
  plain-string prompt is the question);
- the reference: the ``reference_column`` (default ``reference``); a missing column is an error;
- the prompt id and domain (for records): the ``prompt_id_column`` (default ``example_id``)
  and ``domain`` columns when present.

An unjudged completion is ``None`` (TRL: NaN, left out), never 0. Optional hooks: a
``JudgmentRecorder`` gets every (item, result) with the trainer's global step (issue 13: the
teacher's judgments during RL are the distillation data); a ``CanaryMonitor`` adds a few
master-key probes to each verifier call and takes their results back, so they never reach the
policy's rewards, and logs their false-positive rate with ``log_metric``.

``combine_rewards`` sums several reward functions' columns and keeps NaN: where any weighted
function did not judge, the sample is unjudged. Departure from TRL, whose ``nansum`` reads
``None`` as "does not apply" and would turn a verifier that could not judge into a 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Verifier, VerifierResult

if TYPE_CHECKING:
    import torch

    from rewardbridge.judging.canaries import CanaryMonitor
    from rewardbridge.judging.recorder import JudgmentRecorder

TRAINER_KWARGS = frozenset(
    {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, ...]
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return "" if content is None else str(content)


def completion_text(completion: Any) -> str:
    """A plain completion, or the content of the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                return _content(message.get("content"))
        return ""
    raise ValueError(
        f"expected a completion string or a list of chat messages, got {type(completion).__name__}"
    )


def prompt_question(prompt: Any) -> str:
    """The last user turn of a conversational prompt; a plain-string prompt as it is."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content(message.get("content"))
        raise ValueError("a conversational prompt without a user turn: pass question_column=")
    raise ValueError(f"expected a prompt string or chat messages, got {type(prompt).__name__}")


class VerifierReward:
    """``GRPOTrainer(reward_funcs=VerifierReward(verifier))``: one reward per completion,
    ``None`` where the verifier did not judge. ``seconds`` accumulates the time judging."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        reference_column: str = "reference",
        question_column: str | None = None,
        prompt_id_column: str = "example_id",
        name: str = "rewardbridge",
        recorder: JudgmentRecorder | None = None,
        canaries: CanaryMonitor | None = None,
    ) -> None:
        self.verifier = verifier
        self.reference_column = reference_column
        self.question_column = question_column
        self.prompt_id_column = prompt_id_column
        self.__name__ = name  # TRL logs rewards/<__name__>/mean
        self.recorder = recorder
        self.canaries = canaries
        self.seconds = 0.0

    def _column(self, columns: dict[str, Any], name: str, option: str) -> list[Any]:
        if name not in columns:
            available = sorted(k for k in columns if k not in TRAINER_KWARGS)
            raise ValueError(
                f"{self.__name__}: the dataset has no {name!r} column "
                f"(columns: {', '.join(available) or 'none'}); pass {option}="
            )
        return list(columns[name])

    def items(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
    ) -> list[JudgeItem]:
        """The JudgeItems of one TRL call (metadata: ``prompt_id`` when known)."""
        references = self._column(columns, self.reference_column, "reference_column")
        if self.question_column is not None:
            questions = self._column(columns, self.question_column, "question_column")
        else:
            questions = [prompt_question(p) for p in prompts]
        prompt_ids = columns.get(self.prompt_id_column) or [None] * len(completions)
        domains = columns.get("domain") or [None] * len(completions)
        return [
            JudgeItem(
                id=f"{pid}#{i}" if pid is not None else str(i),
                question=str(q),
                reference=str(ref),
                response=completion_text(c),
                domain=str(domain) if domain else None,
                metadata={"prompt_id": str(pid)} if pid is not None else {},
            )
            for i, (q, ref, c, pid, domain) in enumerate(
                zip(questions, references, completions, prompt_ids, domains, strict=True)
            )
        ]

    def _with_canaries(self, items: list[JudgeItem]) -> list[JudgeItem]:
        return items + self.canaries.probes(items) if self.canaries is not None else items

    def rewards(
        self,
        items: Sequence[JudgeItem],
        results: Sequence[VerifierResult],
        columns: dict[str, Any],
    ) -> list[float | None]:
        """Split off the canaries, record, log; one reward (or None) per item."""
        state = columns.get("trainer_state")
        step = getattr(state, "global_step", None)
        log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = columns.get("log_extra")
        results, canary_results = list(results[: len(items)]), results[len(items) :]
        if self.canaries is not None:
            self.canaries.observe(canary_results, step=step, log_metric=log_metric)
        if self.recorder is not None:
            self.recorder.record(items, results, verifier=self.verifier.name, step=step)
        if log_metric is not None and results:
            unjudged = sum(not r.judged for r in results)
            log_metric(f"{self.__name__}/unjudged", unjudged / len(results))
        if log_extra is not None:
            log_extra(f"{self.__name__}_status", [r.status.value for r in results])
        return [r.score for r in results]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        start = time.perf_counter()
        items = self.items(prompts, completions, columns)
        results = self.verifier.verify(self._with_canaries(items))
        self.seconds += time.perf_counter() - start
        return self.rewards(items, results, columns)


class AsyncVerifierReward(VerifierReward):
    """The coroutine twin of ``VerifierReward``: awaits ``verifier.averify`` when the verifier
    has one (``RemoteVerifier``), else runs ``verify`` in a worker thread."""

    async def __call__(  # type: ignore[override]
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        start = time.perf_counter()
        items = self.items(prompts, completions, columns)
        batch = self._with_canaries(items)
        averify = getattr(self.verifier, "averify", None)
        if averify is not None:
            results = await averify(batch)
        else:
            results = await asyncio.to_thread(self.verifier.verify, batch)
        self.seconds += time.perf_counter() - start
        return self.rewards(items, results, columns)


def combine_rewards(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, F) rewards of F reward functions -> (N,) weighted sum; NaN where any function with
    a non-zero weight did not judge (a function weighted 0 is ignored, NaN or not)."""
    used = weights.to(rewards_per_func.device) != 0
    weighted = rewards_per_func[:, used] * weights.to(rewards_per_func)[used].unsqueeze(0)
    return weighted.sum(dim=1)
