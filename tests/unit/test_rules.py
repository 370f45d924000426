"""Rule verifiers: the paper's contains / Jaccard baselines and the exact match."""

from __future__ import annotations

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Status
from rewardbridge.verifiers.registry import build_verifier
from rewardbridge.verifiers.rules import (
    ContainsVerifier,
    ExactVerifier,
    JaccardVerifier,
    contains_reference,
    jaccard_similarity,
    token_set,
)

RESPONSE = "Blotting separates proteins by size.\nTherefore, the answer is Western blot."


def _item(response: str, reference: str, id: str = "x") -> JudgeItem:
    return JudgeItem(id=id, question="q", reference=reference, response=response)


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        ("Therefore, the answer is Western Blot.", "western blot", True),
        ("Therefore, the answer is B.", "B", True),
        ("Therefore, the answer is C.", "A", False),  # "a" inside "answer" is not the reference
        ("the answer is 15", "5", False),
        ("the answer is 2.5", "5", False),
        ("the answer is 2.5", "2", False),
        ("the answer is -5.", "-5", True),
        ("x = 2.67; 1.73", "2.67; 1.73", True),
        ("ＡＮＳＷＥＲ:\u00a0Paris", "paris", True),  # NFKC + non-breaking space
    ],
)
def test_contains_reference_token_boundaries(text: str, reference: str, expected: bool) -> None:
    assert contains_reference(text, reference) is expected


def test_contains_substring_mode_is_the_literal_paper_rule() -> None:
    assert contains_reference("Therefore, the answer is C.", "A", match="substring")
    assert contains_reference("the answer is 15", "5", match="substring")


def test_contains_verifier_looks_at_final_step_by_default() -> None:
    early = "The answer is Western blot.\nActually, it is ELISA."
    final, full = ContainsVerifier(), ContainsVerifier(response_slot="full")
    assert final.verify([_item(early, "western blot")])[0].score == 0.0
    assert full.verify([_item(early, "western blot")])[0].score == 1.0
    res = final.verify([_item(RESPONSE, "Western blot")])[0]
    assert res.status is Status.JUDGED and res.score == 1.0 and res.stage == "contains"


def test_jaccard_is_the_token_set_ratio() -> None:
    assert token_set("Therefore, the answer is Western blot.") == frozenset(
        {"therefore", "the", "answer", "is", "western", "blot"}
    )
    assert jaccard_similarity(frozenset("ab"), frozenset("bc")) == pytest.approx(1 / 3)
    assert jaccard_similarity(frozenset(), frozenset()) == 0.0
    # final step has 6 tokens, reference 2, both shared: 2 / 6
    res = JaccardVerifier().verify([_item(RESPONSE, "Western blot")])[0]
    assert res.score == pytest.approx(2 / 6)
    answer_only = JaccardVerifier(response_slot="answer").verify([_item(RESPONSE, "western BLOT")])
    assert answer_only[0].score == 1.0


def test_exact_compares_the_extracted_answer() -> None:
    v = ExactVerifier()
    out = v.verify([_item(RESPONSE, "western blot"), _item(RESPONSE, "blot"), _item("42", "42")])
    assert [r.score for r in out] == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("name", ["contains", "jaccard", "exact"])
def test_unjudged_items_are_not_zero(name: str) -> None:
    v = build_verifier(name)
    out = v.verify([_item("  ", "x"), _item("an answer", " . "), _item("x", "x")])
    assert [r.status for r in out] == [Status.EMPTY_RESPONSE, Status.INVALID_INPUT, Status.JUDGED]
    assert out[0].score is None and out[1].score is None
    assert "empty reference" in (out[1].reason or "")


def test_options_are_validated_by_name() -> None:
    with pytest.raises(ValueError, match="response_slot"):
        ContainsVerifier(response_slot="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match"):
        ContainsVerifier(match="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not take option"):
        build_verifier("exact", response_slot="full")
    assert isinstance(build_verifier("contains", response_slot="full"), ContainsVerifier)
