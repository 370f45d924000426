"""One judgment rule on every backend: a server's judgment tokens come from its own tokenizer.

The fake vLLM server splits "YES" into "Y" + "ES" (as SmolLM2's tokenizer does) and emits "Y";
the OpenAI backend asks its ``/tokenize`` and counts "Y" as YES, exactly as the in-process
backend counts the first piece of a split word.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import pytest

from fakes.fake_vllm import SMOLLM2_SIDES, SMOLLM2_SPLITS, FakeVLLM
from rewardbridge.verifiers.backends.base import FirstToken
from rewardbridge.verifiers.backends.openai_backend import OpenAIBackend
from rewardbridge.verifiers.backends.server_tokens import SPACE_MARKER, judgment_texts
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.judgment import (
    JudgmentWords,
    first_token_result,
    judgment_variants,
    resolve_first_pieces,
)


def conversation(response: str, reference: str) -> list[dict[str, str]]:
    user = (
        "Given a problem ...\n\n**Question:**  \nq  \n\n"
        f"**Solution Process (Final Step Only):**  \n{response}  \n\n"
        f"**Reference Answer:**  \n{reference}  \n\n**Output:**  \n"
    )
    return [{"role": "user", "content": user}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLM]:
    with FakeVLLM() as srv:
        yield srv


@pytest.fixture()
def fake(server: FakeVLLM) -> FakeVLLM:
    server.vocab.clear()
    return server.reset(splits=SMOLLM2_SPLITS, verdict_tokens=("Y", "No"))


def backend(url: str | list[str], **kw: object) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(url, **kw)  # type: ignore[arg-type]


# -- pure parts ------------------------------------------------------------------------------


def test_resolve_first_pieces_by_text() -> None:
    pieces = {v: (SMOLLM2_SPLITS.get(v) or [v])[0] for v in judgment_variants("YES")}
    pieces |= {v: v for v in judgment_variants("NO")}
    assert resolve_first_pieces(pieces) == SMOLLM2_SIDES


def test_resolve_first_pieces_collision() -> None:
    # a character tokenizer starts " Yes" and " No" alike: left out; "Nice"/"No" is an error
    pieces = {v: v[0] for v in judgment_variants("Yes") + judgment_variants("No")}
    assert sorted(resolve_first_pieces(pieces, JudgmentWords("Yes", "No"))) == list("NYny")
    nice = {v: v[0] for v in judgment_variants("Nice") + judgment_variants("No")}
    with pytest.raises(ValueError, match="same token 'N'"):
        resolve_first_pieces(nice, JudgmentWords("Nice", "No"))


def test_judgment_texts_restores_sentencepiece_space() -> None:
    # Llama-style pieces: "▁Yes" decodes alone to "Yes"; vLLM's logprobs spell it " Yes"
    first_ids = {"Yes": 1, " Yes": 2, "No": 3, " No": 4}
    decoded = {1: "Yes", 2: "Yes", 3: "No", 4: "No"}
    raw = {"Yes": "Yes", " Yes": SPACE_MARKER + "Yes", "No": "No", " No": SPACE_MARKER + "No"}
    words = JudgmentWords("Yes", "No")
    assert judgment_texts(first_ids, decoded, raw, words) == {
        "Yes": "YES",
        " Yes": "YES",
        "No": "NO",
        " No": "NO",
    }


# -- against the fake server -----------------------------------------------------------------


def test_server_first_piece_counts_like_in_process(fake: FakeVLLM) -> None:
    with backend(fake.url) as b:
        out = b.first_tokens([conversation("7", "7"), conversation("7", "8")])
        again = b.first_tokens([conversation("1", "1")])
        assert b.judgment_tokens == SMOLLM2_SIDES
    assert all(isinstance(o, FirstToken) for o in out + again)
    yes, no = out
    assert isinstance(yes, FirstToken) and isinstance(no, FirstToken)
    assert yes.chosen == "Y" and no.chosen == "No"
    # the same distribution with the in-process backend's resolution gives the same result
    local = FirstToken(yes.chosen, yes.logprobs, judgment_tokens=SMOLLM2_SIDES)
    for reward in ("binary", "soft", "soft-normalized"):
        server_result = first_token_result(yes, reward, constrained=True)
        assert server_result == first_token_result(local, reward, constrained=True)
    result = first_token_result(yes, "binary")
    assert result.status is Status.JUDGED and result.judgment == "YES" and result.score == 1.0
    # p_yes sums "Y" (0.9), the filler's first pieces ("Yes", "yes") and its whole word " YES"
    yes_texts = {t for t, side in SMOLLM2_SIDES.items() if side == "YES"} | {" YES"}
    expected = sum(math.exp(lp) for t, lp in yes.logprobs.items() if t in yes_texts)
    assert result.p_yes == pytest.approx(expected) and result.p_yes > 0.9
    assert first_token_result(no, "binary").score == 0.0
    assert fake.tokenize_calls == len(judgment_variants("YES") + judgment_variants("NO"))


def test_server_without_tokenize_matches_whole_words(
    fake: FakeVLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reset(splits=SMOLLM2_SPLITS, verdict_tokens=("Y", "No"), no_tokenize=True)
    with caplog.at_level(logging.WARNING), backend(fake.url) as b:
        (first,) = b.first_tokens([conversation("7", "7")])
        assert b.judgment_tokens == {}
    assert "no tokenizer endpoint" in caplog.text
    assert isinstance(first, FirstToken)
    assert first_token_result(first, "binary").status is Status.NO_JUDGMENT


def test_tokenize_failure_fails_items_then_recovers(fake: FakeVLLM) -> None:
    fake.reset(splits=SMOLLM2_SPLITS, verdict_tokens=("Y", "No"), down=True)
    with backend(fake.url, served_model="fake-judge", max_retries=1) as b:
        (failed,) = b.first_tokens([conversation("7", "7")])
        assert isinstance(failed, VerifierResult)
        assert failed.status is Status.BACKEND_ERROR and failed.score is None
        assert "judgment tokens" in (failed.reason or "")
        assert b.judgment_tokens is None  # not cached: asked again next time
        fake.behaviour.down = False
        (first,) = b.first_tokens([conversation("7", "7")])
        assert b.judgment_tokens == SMOLLM2_SIDES
    assert isinstance(first, FirstToken)
    assert first_token_result(first, "binary").score == 1.0
