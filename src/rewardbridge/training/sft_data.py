"""Supervised data for verifier distillation (paper §7): the exact judge prompt, then one token.

Each teacher record (question, reference, final step, YES/NO) becomes one training sequence:
the judge conversation rendered by ``rewardbridge.verifiers.prompts.render_judge_messages``
(the paper's template, system message "You are a helpful assistant."), passed through the
student's chat template with the generation prompt, followed by the single judgment token.
That token is the one the judge reads at the first generated position, so training and judging
see the same context; the loss mask (``completion_mask``) covers that token only.

Departure from the paper: the paper trains on the word YES/NO. Where a tokenizer splits "YES"
into several pieces (SmolLM2: "Y" + "ES"), the first generated position cannot hold the word,
so we train on the first spelling of the verdict that is one token ("YES", else "Yes", else
"yes"), which the judge reads as the same verdict (it is case-insensitive, as the authors'
normalised soft reward is).

The sequences are pre-tokenized (``input_ids`` + ``completion_mask``) and handed to TRL's
SFTTrainer with ``completion_only_loss=True``, which turns the mask into labels.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JUDGE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "YES": ("YES", "Yes", "yes"),
    "NO": ("NO", "No", "no"),
}

RenderFn = Callable[[str, str, str], list[dict[str, str]]]


def judgment_token_ids(tokenizer: Any) -> dict[str, int]:
    """The one-token spelling of each verdict: {"YES": id, "NO": id}.

    Prefers a matching pair (YES/NO, then Yes/No, then yes/no) so both verdicts share a case.
    """
    for yes, no in zip(JUDGE_SPELLINGS["YES"], JUDGE_SPELLINGS["NO"], strict=True):
        yes_ids = tokenizer.encode(yes, add_special_tokens=False)
        no_ids = tokenizer.encode(no, add_special_tokens=False)
        if len(yes_ids) == 1 and len(no_ids) == 1:
            return {"YES": yes_ids[0], "NO": no_ids[0]}
    raise ValueError(
        "the tokenizer has no one-token spelling of YES/NO (tried YES/NO, Yes/No, yes/no); "
        "the judgment token cannot be trained"
    )


def default_render() -> RenderFn:
    """The paper's judge prompt from the generative verifier's prompt module."""
    from rewardbridge.verifiers.prompts import render_judge_messages

    def render(question: str, reference: str, final_step: str) -> list[dict[str, str]]:
        return [
            dict(m)
            for m in render_judge_messages(
                question=question, reference=reference, response=final_step
            )
        ]

    return render


def judge_prompt_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Token ids of the judge conversation with the generation prompt (what the judge reads)."""
    encoded = tokenizer.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


@dataclass(frozen=True, slots=True)
class SFTBuild:
    """Tokenized examples and what was left out (and why)."""

    examples: list[dict[str, list[int]]]
    too_long: int
    no_judgment: int


def build_sft_examples(
    records: Iterable[Mapping[str, Any]],
    tokenizer: Any,
    *,
    max_length: int,
    render: RenderFn | None = None,
) -> SFTBuild:
    """One ``{"input_ids", "completion_mask"}`` per record with a YES/NO judgment.

    A record whose prompt + judgment token exceeds ``max_length`` is skipped (truncating it
    would cut the context the judgment depends on) and counted.
    """
    render = render or default_render()
    targets = judgment_token_ids(tokenizer)
    examples: list[dict[str, list[int]]] = []
    too_long = no_judgment = 0
    for record in records:
        judgment = record.get("judgment")
        if judgment not in targets:
            no_judgment += 1
            continue
        messages = render(record["question"], record["reference"], record["final_step"])
        prompt_ids = judge_prompt_ids(tokenizer, messages)
        if len(prompt_ids) + 1 > max_length:
            too_long += 1
            continue
        examples.append(
            {
                "input_ids": [*prompt_ids, targets[judgment]],
                "completion_mask": [0] * len(prompt_ids) + [1],
            }
        )
    return SFTBuild(examples, too_long, no_judgment)


def balance_classes(
    records: Sequence[Mapping[str, Any]], *, seed: int = 0
) -> list[Mapping[str, Any]]:
    """Down-sample the majority judgment so YES and NO are equally frequent (shuffled)."""
    rng = random.Random(seed)
    yes = [r for r in records if r.get("judgment") == "YES"]
    no = [r for r in records if r.get("judgment") == "NO"]
    k = min(len(yes), len(no))
    out = rng.sample(yes, k) + rng.sample(no, k)
    rng.shuffle(out)
    return out
