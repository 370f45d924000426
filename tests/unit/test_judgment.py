"""Rewards from hand-made first-token distributions (exact numbers)."""

from __future__ import annotations

import math

import pytest

from rewardbridge.verifiers.backends.base import FirstToken
from rewardbridge.verifiers.base import Status
from rewardbridge.verifiers.judgment import (
    JudgmentWords,
    binary_reward,
    check_reward,
    classify_token,
    first_token_result,
    judgment_probabilities,
    soft_normalized_reward,
    soft_reward,
)


def dist(
    chosen: str, probs: dict[str, float], judgment_tokens: dict[str, str] | None = None
) -> FirstToken:
    return FirstToken(chosen, {t: math.log(p) for t, p in probs.items()}, judgment_tokens or {})


YES_FIRST = dist("YES", {"YES": 0.7, "NO": 0.2, "Yes": 0.05, " no": 0.01, "The": 0.04})
NO_FIRST = dist("No", {"No": 0.6, " yes": 0.3, "YES": 0.02, "The": 0.08})
NEITHER = dist("The", {"The": 0.5, "YES": 0.1, "NO": 0.3, "**": 0.1})


def test_binary_reward_eq3() -> None:
    assert binary_reward(YES_FIRST) == 1.0
    assert binary_reward(NO_FIRST) == 0.0
    assert binary_reward(NEITHER) is None


def test_soft_reward_eq4() -> None:
    assert soft_reward(YES_FIRST) == pytest.approx(0.7, abs=1e-12)
    assert soft_reward(NO_FIRST) == pytest.approx(0.4, abs=1e-12)
    assert soft_reward(NEITHER) is None
    assert soft_reward(FirstToken("YES", {"NO": math.log(0.5)})) is None  # p(c) not given


def test_soft_normalized_sums_variants() -> None:
    assert judgment_probabilities(YES_FIRST) == pytest.approx((0.75, 0.21), abs=1e-12)
    assert soft_normalized_reward(YES_FIRST) == pytest.approx(0.75 / 0.96, abs=1e-12)
    assert soft_normalized_reward(NO_FIRST) == pytest.approx(0.32 / 0.92, abs=1e-12)
    assert soft_normalized_reward(NEITHER) == pytest.approx(0.25, abs=1e-12)
    assert soft_normalized_reward(dist("The", {"The": 0.9})) is None


def test_split_word_first_piece_counts_through_judgment_tokens() -> None:
    # SmolLM2 splits "YES" into "Y" + "ES": the backend marks "Y" as the start of YES.
    first = dist("Y", {"Y": 0.4, "No": 0.1, "The": 0.5}, judgment_tokens={"Y": "YES"})
    assert classify_token("Y", first) == "YES"
    assert classify_token("Y", dist("Y", {"Y": 1.0})) is None  # not without the backend's word
    assert binary_reward(first) == 1.0
    assert soft_reward(first) == pytest.approx(0.4, abs=1e-12)
    assert soft_normalized_reward(first) == pytest.approx(0.8, abs=1e-12)


def test_template_words() -> None:
    words = JudgmentWords("Correct", "Incorrect")
    first = dist(" correct", {" correct": 0.3, "Incorrect": 0.6, "YES": 0.1})
    assert binary_reward(first, words) == 1.0
    assert judgment_probabilities(first, words) == pytest.approx((0.3, 0.6), abs=1e-12)


def test_first_token_result_fields() -> None:
    result = first_token_result(NO_FIRST, "soft")
    assert result.status is Status.JUDGED
    assert result.score == pytest.approx(0.4, abs=1e-12)
    assert result.judgment == "NO"
    assert (result.p_yes, result.p_no) == pytest.approx((0.32, 0.6), abs=1e-12)


def test_no_judgment_is_not_zero() -> None:
    result = first_token_result(NEITHER, "binary")
    assert result.status is Status.NO_JUDGMENT
    assert result.score is None
    assert "'The'" in (result.reason or "")
    assert (result.p_yes, result.p_no) == pytest.approx((0.1, 0.3), abs=1e-12)
    # the normalised reward needs no judgment token; its judgment is the likelier word
    normalized = first_token_result(NEITHER, "soft_normalized")
    assert normalized.score == pytest.approx(0.25, abs=1e-12)
    assert normalized.judgment == "NO"


def test_check_reward() -> None:
    assert check_reward("soft_normalized") == "soft-normalized"
    with pytest.raises(ValueError, match="binary, soft, soft-normalized"):
        check_reward("hard")


def test_constrained_judgment_takes_the_likeliest_variant() -> None:
    from rewardbridge.verifiers.judgment import constrain_to_judgment, first_token_result

    first = FirstToken(
        "The",
        {"The": math.log(0.6), "NO": math.log(0.1), " no": math.log(0.05), "YES": math.log(0.2)},
    )
    assert constrain_to_judgment(first).chosen == "YES"
    res = first_token_result(first, "binary", constrained=True)
    assert res.judged and res.score == 1.0 and res.judgment == "YES"
    assert res.reason is not None and "'The'" in res.reason
    soft = first_token_result(first, "soft", constrained=True)
    assert soft.score == pytest.approx(0.2)
    # the literal reading leaves it unjudged
    assert first_token_result(first, "binary", constrained=False).status is Status.NO_JUDGMENT
    # an emitted judgment token is kept as is
    no_first = FirstToken(" no", {" no": math.log(0.5), "YES": math.log(0.4)})
    assert constrain_to_judgment(no_first) is no_first
    # nothing visible: still unjudged, never 0
    blind = FirstToken("The", {"The": 0.0})
    assert first_token_result(blind, "binary", constrained=True).status is Status.NO_JUDGMENT
