"""The paper's generative verifier (Su et al. 2025, §2-3 of PAPER.md).

Each item becomes the judge conversation of the template (the paper's by default: system "You
are a helpful assistant.", the question, the response's final step, the reference); a backend
returns the judge's first generated token and its probabilities; the reward is read from them
(``judgment.py``: binary Eq. 3, soft Eq. 4, or the normalised soft reward). Results carry
``judgment`` ("YES"/"NO"), ``p_yes``, ``p_no`` and ``score``; a first token that is neither word
is restricted to YES/NO by default (``constrained``), else ``NO_JUDGMENT`` (not 0); a failed
request is TIMEOUT/BACKEND_ERROR.

Backends: a local causal LM (``TransformersBackend``: the embedded SmolLM2-135M by default, any
model folder, e.g. a distilled verifier) or, when ``base_url`` is given, an OpenAI-compatible
server (``OpenAIBackend``: vLLM, SGLang).

Each distinct judge conversation of a call is judged once: items whose question, reference and
response slot (the final step by default) render the same conversation share one result (an RL
group often repeats a final answer). Not with ``sample``: each copy then gets its own draw.
``distinct_items`` / ``items_seen`` count how much this saved.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.backends.base import FirstToken, JudgeBackend
from rewardbridge.verifiers.base import BaseVerifier, VerifierResult
from rewardbridge.verifiers.judgment import JudgmentWords, check_reward, first_token_result
from rewardbridge.verifiers.prompts import JudgeTemplate, load_template
from rewardbridge.verifiers.text import ResponseSlot, check_response_slot, response_slot_text

log = logging.getLogger(__name__)

# Items handed to the backend per call: large enough for prefix sharing to see every response of
# a question, small enough to bound the shared KV caches the local backend holds at once.
CALL_SIZE_PER_BATCH = 8


class GenerativeVerifier(BaseVerifier):
    """LLM judge on the final step of a response against the reference.

    ``model``: local model folder or hub id (default: embedded SmolLM2-135M-Instruct); with
    ``base_url`` (one URL or a list) it is the served model name unless ``served_model`` is set.
    ``reward``: "binary" (Eq. 3), "soft" (Eq. 4) or "soft-normalized". ``template``: a built-in
    name ("paper", "general-verifier") or a template file. ``response_slot``: "final_step"
    (paper), "full" or "answer". ``device``, ``prefix_sharing``: local backend. ``batch_size``:
    prompts per forward (local). ``timeout``, ``max_concurrency``, ``max_retries``: server
    backend. ``sample``: draw the first token instead of taking the argmax (the paper samples;
    greedy is deterministic).
    ``constrained`` (default): the judgment is restricted to YES/NO, as a guided choice would
    do (``judgment.constrain_to_judgment``); ``False`` leaves a non-judgment first token
    unjudged (``NO_JUDGMENT``). ``dtype`` ("auto": bfloat16 where the hardware computes it
    natively, else float32) and ``max_batch_tokens`` (padded tokens per forward): local backend.
    """

    name = "generative"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        base_url: str | Sequence[str] | None = None,
        api_key: str | None = None,
        served_model: str | None = None,
        reward: str = "binary",
        template: str | os.PathLike[str] | JudgeTemplate = "paper",
        response_slot: ResponseSlot = "final_step",
        device: str | None = None,
        batch_size: int = 16,
        prefix_sharing: bool | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        max_retries: int | None = None,
        sample: bool = False,
        constrained: bool = True,
        dtype: str | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.reward = check_reward(reward)
        self.constrained = constrained
        self.template = load_template(template)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.response_slot = check_response_slot(response_slot)
        self.batch_size = batch_size
        self.words = JudgmentWords(self.template.yes, self.template.no)
        self.sample = sample
        self.items_seen = self.distinct_items = 0
        self.backend: JudgeBackend
        if base_url:
            _ignored(
                device=device,
                prefix_sharing=prefix_sharing,
                dtype=dtype,
                max_batch_tokens=max_batch_tokens,
            )
            from rewardbridge.verifiers.backends.openai_backend import OpenAIBackend

            options: dict[str, Any] = {
                "timeout": timeout,
                "max_concurrency": max_concurrency,
                "max_retries": max_retries,
            }
            self.backend = OpenAIBackend(
                [base_url] if isinstance(base_url, str) else list(base_url),
                api_key=api_key,
                served_model=served_model or (str(model) if model is not None else None),
                sample=sample,
                words=self.words,
                **{k: v for k, v in options.items() if v is not None},
            )
        else:
            _ignored(
                api_key=api_key,
                served_model=served_model,
                timeout=timeout,
                max_concurrency=max_concurrency,
                max_retries=max_retries,
            )
            from rewardbridge.verifiers.backends.transformers_backend import TransformersBackend

            local: dict[str, Any] = {"dtype": dtype, "max_batch_tokens": max_batch_tokens}
            self.backend = TransformersBackend(
                model,
                device=device,
                batch_size=batch_size,
                prefix_sharing=prefix_sharing,
                sample=sample,
                words=self.words,
                **{k: v for k, v in local.items() if v is not None},
            )

    @classmethod
    def from_backend(
        cls,
        backend: JudgeBackend,
        reward: str = "binary",
        template: str | os.PathLike[str] | JudgeTemplate = "paper",
        response_slot: ResponseSlot = "final_step",
        batch_size: int = 16,
        constrained: bool = True,
    ) -> GenerativeVerifier:
        """A verifier on a ready backend (a loaded model, a fake in tests)."""
        verifier = cls.__new__(cls)
        verifier.reward = check_reward(reward)
        verifier.constrained = constrained
        verifier.template = load_template(template)
        verifier.response_slot = check_response_slot(response_slot)
        verifier.batch_size = batch_size
        verifier.words = JudgmentWords(verifier.template.yes, verifier.template.no)
        verifier.backend = backend
        verifier.sample = bool(getattr(backend, "sample", False))
        verifier.items_seen = verifier.distinct_items = 0
        return verifier

    def messages(self, item: JudgeItem) -> list[dict[str, str]]:
        """The judge conversation for one item."""
        return self.template.render(
            item.question, item.reference, response_slot_text(item.response, self.response_slot)
        )

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        conversations = [self.messages(item) for item in items]
        # One representative per distinct conversation (every copy when sampling).
        copies: dict[Any, list[int]] = {}
        for i, conversation in enumerate(conversations):
            key = i if self.sample else tuple((m["role"], m["content"]) for m in conversation)
            copies.setdefault(key, []).append(i)
        firsts = [group[0] for group in copies.values()]
        self.items_seen += len(items)
        self.distinct_items += len(firsts)
        # Items of one question side by side, so one backend call sees all of its responses.
        order = sorted(firsts, key=lambda i: items[i].question)
        results: list[VerifierResult | None] = [None] * len(items)
        call_size = self.batch_size * CALL_SIZE_PER_BATCH
        for start in range(0, len(order), call_size):
            chunk = order[start : start + call_size]
            answers = self.backend.first_tokens([conversations[i] for i in chunk])
            if len(answers) != len(chunk):
                raise RuntimeError(
                    f"{type(self.backend).__name__} returned {len(answers)} answers "
                    f"for {len(chunk)} conversations"
                )
            for i, answer in zip(chunk, answers, strict=True):
                results[i] = (
                    first_token_result(answer, self.reward, self.words, self.constrained)
                    if isinstance(answer, FirstToken)
                    else answer
                )
        for group in copies.values():
            for i in group[1:]:
                results[i] = results[group[0]]
        return [r for r in results if r is not None]

    def close(self) -> None:
        self.backend.close()


def _ignored(**options: Any) -> None:
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        log.warning("generative verifier: option(s) %s do not apply to this backend", given)
