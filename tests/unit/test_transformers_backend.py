"""The local judge backend on a tiny random Llama with SmolLM2's real tokenizer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fakes.fake_vllm import SMOLLM2_SIDES
from rewardbridge.verifiers.backends.prefix_tree import token_batches
from rewardbridge.verifiers.backends.transformers_backend import (
    TransformersBackend,
    judgment_variants,
    plan_prefix_tree,
    resolve_judgment_tokens,
)
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.judgment import JudgmentWords
from rewardbridge.verifiers.prompts import render_judge_messages

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(tiny_model_dir, device="cpu", batch_size=3, dtype="float32")


@pytest.fixture(scope="module")
def bf16_backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(tiny_model_dir, device="cpu", batch_size=3, dtype="bfloat16")


def conversations() -> list[list[dict[str, str]]]:
    """Leaves before inner segments on two tree levels (a prompt sharing nothing, a lone
    question), then 3 questions x 3 responses, then an exact duplicate."""
    out = [
        [{"role": "user", "content": "Hello there"}],  # SmolLM2's own system prompt
        render_judge_messages("2+2?", "4", "4"),
    ]
    for q, ref in [
        ("What is the capital of France?", "Paris"),
        ("Which organ pumps blood through the body?", "The heart"),
        ("Name the process plants use to make sugar from light.", "Photosynthesis"),
    ]:
        for resp in [f"Therefore, the answer is {ref}.", "Therefore, the answer is 42.", "Unsure"]:
            out.append(render_judge_messages(q, ref, resp))
    out.append(out[2])
    return out


def test_judgment_variants() -> None:
    assert judgment_variants("Yes") == ["Yes", "YES", "yes", " Yes", " YES", " yes"]


def test_resolve_judgment_tokens_smollm2(backend: TransformersBackend) -> None:
    tok = backend.tokenizer
    sides = {tok.decode([t]): side for t, side in resolve_judgment_tokens(tok).items()}
    # "YES" and " YES" are split by this tokenizer: their first pieces stand for them.
    assert sides == SMOLLM2_SIDES


class _CharTokenizer:
    """Encodes each character as its code point: every word starting alike collides."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


def test_colliding_first_tokens() -> None:
    # " Yes" and " No" both start with " ": left out; the words themselves are fine.
    sides = resolve_judgment_tokens(_CharTokenizer())
    assert sorted(chr(t) for t in sides) == ["N", "Y", "n", "y"]
    with pytest.raises(ValueError, match="same token 'N'"):
        resolve_judgment_tokens(_CharTokenizer(), JudgmentWords("Nice", "No"))


def test_plan_prefix_tree() -> None:
    head = list(range(100, 120))  # 20 shared tokens
    q1, q2 = [*head, *range(200, 220)], [*head, *range(300, 320)]
    prompts = [[*q1, 1, 2], [*q1, 3], [*q2, 4], [*q2, 5, 6], [7, 8], [*head, 9]]
    levels = plan_prefix_tree(prompts, min_shared=16)
    assert [[len(s.tokens) for s in level] for level in levels] == [
        [20, 2],
        [20, 20, 1],
        [2, 1, 1, 2],
    ]
    shared, lone = levels[0]
    assert shared.tokens == head and shared.item is None and lone.item == 4
    assert [(s.item, s.parent) for s in levels[1]] == [(None, 0), (None, 0), (5, 0)]
    assert [(s.item, s.parent) for s in levels[2]] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    # parents are rows among the previous level's inner segments, leaves not counted
    leaf_first = plan_prefix_tree([[7, 8], [*head, 9], [*q1, 1], [*q1, 2]], min_shared=16)
    assert [(s.item, s.parent) for s in leaf_first[1]] == [(1, 0), (None, 0)]
    assert [(s.item, s.parent) for s in leaf_first[2]] == [(2, 0), (3, 0)]
    # a run shorter than min_shared is not shared; a prompt that prefixes another is not either
    assert len(plan_prefix_tree([[1, 2, 3], [1, 2, 4]], min_shared=16)) == 1
    assert len(plan_prefix_tree([[*head], [*head, 1]], min_shared=16)) == 1


def test_prefix_sharing_matches_plain_path(backend: TransformersBackend) -> None:
    prompts = [backend.encode(c) for c in conversations()[:-1]]
    backend.tokens_computed = 0
    plain = backend.last_logprobs(prompts, prefix_sharing=False)
    plain_tokens = backend.tokens_computed
    backend.tokens_computed = 0
    shared = backend.last_logprobs(prompts, prefix_sharing=True)
    assert backend.tokens_computed < plain_tokens / 2
    assert not torch.isnan(shared).any()
    assert torch.allclose(shared.exp(), plain.exp(), atol=1e-4, rtol=0)
    assert torch.allclose(shared, plain, atol=1e-3, rtol=0)


@pytest.mark.parametrize("max_batch_tokens", [1, 40, 100_000])
def test_token_budgets_do_not_change_results(
    backend: TransformersBackend, max_batch_tokens: int
) -> None:
    prompts = [backend.encode(c) for c in conversations()[:-1]]
    reference = backend.last_logprobs(prompts, prefix_sharing=False)
    small = TransformersBackend(
        (backend.model, backend.tokenizer), batch_size=16, max_batch_tokens=max_batch_tokens
    )
    for share in (False, True):
        got = small.last_logprobs(prompts, prefix_sharing=share)
        assert torch.allclose(got.exp(), reference.exp(), atol=1e-4, rtol=0)


def test_bf16_prefix_sharing_within_bf16_tolerance(bf16_backend: TransformersBackend) -> None:
    assert bf16_backend.dtype is torch.bfloat16
    prompts = [bf16_backend.encode(c) for c in conversations()[:-1]]
    plain = bf16_backend.last_logprobs(prompts, prefix_sharing=False)
    shared = bf16_backend.last_logprobs(prompts, prefix_sharing=True)
    assert plain.dtype is torch.float32 and not torch.isnan(shared).any()
    # bf16 keeps 8 mantissa bits: cached keys and a different padding change the last digits
    assert torch.allclose(shared.exp(), plain.exp(), atol=2e-2, rtol=0)


def test_token_batches() -> None:
    lengths = [300, 10, 12, 11, 2000, 13, 290]
    batches = token_batches(lengths, max_tokens=1000, max_rows=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches == [[1, 3, 2], [5], [6, 0], [4]]  # shortest first; 2000 alone, over budget
    # a cached prefix counts: 2 rows of 10 on 495 cached slots exceed 1000 tokens
    assert token_batches([10, 10], max_tokens=1000, max_rows=8, cached=495) == [[0], [1]]
    # padding: 100 joins 10s only while the forward is small
    assert token_batches([10] * 3 + [100], 10_000, 8) == [[0, 1, 2, 3]]
    assert token_batches([10] * 3 + [400], 10_000, 8) == [[0, 1, 2], [3]]


def test_too_long_prompt_is_not_judged(backend: TransformersBackend) -> None:
    short = conversations()[0]
    long = [{"role": "user", "content": "word " * 3000}]
    answers = backend.first_tokens([long, short])
    assert isinstance(answers[0], VerifierResult) and answers[0].status is Status.TOO_LONG
    assert answers[0].score is None and "context is 2048" in (answers[0].reason or "")
    assert not isinstance(answers[1], VerifierResult)


def test_first_tokens(backend: TransformersBackend) -> None:
    convs = conversations()
    answers = backend.first_tokens(convs)
    assert len(answers) == len(convs)
    assert answers[-1] == answers[2]  # the duplicate is computed once and copied
    prompts = [backend.encode(c) for c in convs]
    plain = backend.last_logprobs(prompts, prefix_sharing=False)
    for answer, row in zip(answers, plain, strict=True):
        assert not isinstance(answer, VerifierResult)
        assert answer.chosen == backend.tokenizer.decode([int(row.argmax())])
        variants = {"Y", "Yes", "yes", " Y", " Yes", " yes", "NO", "No", "no", " NO", " No", " no"}
        assert variants <= set(answer.logprobs)
        for text in variants:
            token = backend.tokenizer.encode(text, add_special_tokens=False)[0]
            assert math.isclose(answer.logprobs[text], float(row[token]), abs_tol=1e-3)
        assert answer.judgment_tokens["Y"] == "YES"
        assert sum(math.exp(v) for v in answer.logprobs.values()) <= 1.0 + 1e-5


def test_sampling_is_seeded(tiny_model_dir: Path, backend: TransformersBackend) -> None:
    model = (backend.model, backend.tokenizer)
    convs = conversations()[:4] * 4
    draws = [
        [
            a.chosen
            for a in TransformersBackend(model, sample=True, seed=s).first_tokens(convs)
            if not isinstance(a, VerifierResult)
        ]
        for s in (1, 1, 2)
    ]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]  # a random tiny model's first token is close to uniform


def test_bad_conversation_is_invalid_input(backend: TransformersBackend) -> None:
    bad: Any = [{"role": "user"}]  # no content: the chat template fails
    answers = backend.first_tokens([bad, conversations()[0]])
    assert isinstance(answers[0], VerifierResult) and answers[0].status is Status.INVALID_INPUT
    assert not isinstance(answers[1], VerifierResult)
