"""Wire formats of the reward server and their translation to ``JudgeItem``.

Two protocols:

* the native batch endpoint ``POST /v1/judge``: ``{"items": [{id?, question, reference,
  response}]}`` in, one result per item out (reward, p_yes, p_no, judgment, status, reason);
* OpenRLHF's remote reward protocol ``POST /get_reward``: ``{"query": [...], "prompts": [...],
  "labels": [...]}`` in, ``{"rewards": [...], "scores": [...], "extra_logs": {...}}`` out.
  ``query`` is prompt + response as the policy saw it (chat template included); the response is
  the query minus its prompt with chat special tokens removed. A label is either the plain
  reference answer or a JSON object string carrying ``reference`` (and optionally ``question``).

An unjudged item is never given a made-up reward: it gets NaN in ``scores`` (OpenRLHF's
dynamic filtering tests ``lo < mean < hi``, which fails on NaN, so the sample's group is
dropped and its prompt redrawn; it also logs scores as a metric), ``fallback_reward`` in
``rewards`` (NaN unless the user chose a number), and a 1 in ``extra_logs["unjudged"]``
(OpenRLHF logs its mean as the unjudged rate). Over HTTP NaN is written as the JSON constant
``NaN``, which Python's ``json`` (and so OpenRLHF's aiohttp client) reads back. The native
endpoint reports ``reward: null``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import VerifierResult

log = logging.getLogger(__name__)
_warned_nan_reward = False  # openrlhf_response's advice is logged once per process


class JudgeRequestItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=512)
    question: str
    reference: str
    response: str


class JudgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[JudgeRequestItem] = Field(min_length=1)


class JudgeResultItem(BaseModel):
    id: str
    reward: float | None
    p_yes: float | None
    p_no: float | None
    judgment: str | None
    status: str
    reason: str | None


class JudgeResponse(BaseModel):
    results: list[JudgeResultItem]
    judged: int
    unjudged: int


class OpenRLHFRequest(BaseModel):
    """OpenRLHF ``remote_rm_fn`` body. Extra keys some versions send (``datasources``,
    token ids) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None
    labels: list[str | int | float | dict[str, Any] | None] | None = None

    @model_validator(mode="after")
    def _same_lengths(self) -> OpenRLHFRequest:
        n = len(self.query)
        for name in ("prompts", "labels"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries but query has {n}")
        if self.labels is None:
            raise ValueError("labels is required: the reference answer of each query")
        return self


class OpenRLHFResponse(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="constants")  # NaN stays NaN, not null

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


# Special tokens of the common chat templates: <|im_start|>, <|eot_id|>, <|endoftext|>, ...
_SPECIAL_TOKEN = re.compile(r"<\|[^|<>\s]{1,64}\|>|</?s>|<(?:bos|eos|pad)>|\[/?INST\]")
# The last user turn of ChatML (Qwen, SmolLM) and Llama-3 prompts.
_USER_TURNS = (
    re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.DOTALL),
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.DOTALL),
)


def strip_special_tokens(text: str) -> str:
    """Remove chat-template special tokens (``<|im_end|>``, ``</s>``, ...) and outer space."""
    return _SPECIAL_TOKEN.sub("", text).strip()


def response_from_query(query: str, prompt: str | None) -> str:
    """The policy's response: ``query`` minus its ``prompt``, special tokens removed.

    OpenRLHF's query is prompt + response; when the prompt is not a prefix (a tokenizer round
    trip changed spacing) it is removed at its last occurrence, else the whole query is used.
    """
    if prompt:
        if query.startswith(prompt):
            query = query[len(prompt) :]
        elif (at := query.rfind(prompt)) >= 0:
            query = query[at + len(prompt) :]
    # An assistant header left after the prompt (templates that add it at generation time).
    query = re.sub(
        r"^\s*(?:<\|im_start\|>assistant\n|<\|start_header_id\|>assistant"
        r"<\|end_header_id\|>\n\n)",
        "",
        query,
    )
    return strip_special_tokens(query)


def question_from_prompt(prompt: str) -> str:
    """The last user turn of a chat-templated prompt, else the prompt without special tokens."""
    for pattern in _USER_TURNS:
        turns = pattern.findall(prompt)
        if turns:
            return str(turns[-1]).strip()
    return strip_special_tokens(prompt)


def parse_label(
    label: str | int | float | dict[str, Any] | None, index: int
) -> tuple[str, str | None]:
    """(reference, question or None) from an OpenRLHF label.

    A label is the reference itself, or a JSON object (or dict) with ``reference`` (aliases:
    ``answer``, ``ground_truth``) and optionally ``question``.
    """
    if label is None:
        raise ValueError(f"labels[{index}] is null; it must carry the reference answer")
    if isinstance(label, (int, float)):  # a numeric answer column
        return str(label), None
    obj: Any = label
    if isinstance(label, str):
        stripped = label.strip()
        if not (stripped.startswith("{") and stripped.endswith("}")):
            return label, None
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            return label, None  # a reference that merely looks like JSON
    if not isinstance(obj, dict):
        return str(label), None
    for key in ("reference", "answer", "ground_truth"):
        value = obj.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            question = obj.get("question")
            return str(value), question if isinstance(question, str) else None
    raise ValueError(
        f"labels[{index}] is a JSON object without a 'reference' (or 'answer', "
        f"'ground_truth') field"
    )


def items_from_openrlhf(request: OpenRLHFRequest) -> list[JudgeItem]:
    """One ``JudgeItem`` per query; raises ValueError naming the offending label."""
    prompts: list[str | None] = [None] * len(request.query)
    if request.prompts is not None:
        prompts = list(request.prompts)
    labels = request.labels or []
    items = []
    for i, (query, prompt, label) in enumerate(zip(request.query, prompts, labels, strict=True)):
        reference, question = parse_label(label, i)
        if question is None:
            question = question_from_prompt(prompt) if prompt else ""
        items.append(
            JudgeItem(
                id=str(i),
                question=question,
                reference=reference,
                response=response_from_query(query, prompt),
            )
        )
    return items


def items_from_judge_request(request: JudgeRequest) -> list[JudgeItem]:
    return [
        JudgeItem(
            id=item.id if item.id is not None else str(i),
            question=item.question,
            reference=item.reference,
            response=item.response,
        )
        for i, item in enumerate(request.items)
    ]


def judge_response(items: Sequence[JudgeItem], results: Sequence[VerifierResult]) -> JudgeResponse:
    out = [
        JudgeResultItem(
            id=item.id,
            reward=res.score,
            p_yes=res.p_yes,
            p_no=res.p_no,
            judgment=res.judgment,
            status=res.status.value,
            reason=res.reason,
        )
        for item, res in zip(items, results, strict=True)
    ]
    judged = sum(res.judged for res in results)
    return JudgeResponse(results=out, judged=judged, unjudged=len(results) - judged)


def openrlhf_response(
    results: Sequence[VerifierResult], *, fallback_reward: float = math.nan
) -> OpenRLHFResponse:
    """Judged items: their reward in ``rewards`` and ``scores``. Unjudged: NaN in ``scores``,
    ``fallback_reward`` in ``rewards``, a 1 in ``extra_logs["unjudged"]``."""
    rewards = [res.score if res.score is not None else fallback_reward for res in results]
    scores = [res.score if res.score is not None else math.nan for res in results]
    unjudged = [0.0 if res.judged else 1.0 for res in results]
    global _warned_nan_reward
    if math.isnan(fallback_reward) and any(unjudged) and not _warned_nan_reward:
        _warned_nan_reward = True
        log.warning(
            "an unjudged sample got reward NaN (%s): run OpenRLHF with "
            "--algo.dynamic_filtering_enable (and a --algo.dynamic_filtering_range that holds "
            "your rewards, e.g. -1 2) so its group is redrawn, or choose a reward for unjudged "
            "samples (rewardbridge serve --fallback-reward R / REWARDBRIDGE_FALLBACK_REWARD=R); "
            "logged once",
            next(f"{r.status.value}: {r.reason}" for r in results if not r.judged),
        )
    return OpenRLHFResponse(rewards=rewards, scores=scores, extra_logs={"unjudged": unjudged})
