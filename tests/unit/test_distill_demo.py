"""The demo's data preparation: split by question, class balance, synthetic items."""

from __future__ import annotations

from collections import Counter

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.training.distill_demo import (
    balanced_sample,
    master_key_items,
    split_of,
    synthetic_items,
)


def test_split_is_by_question_and_stable() -> None:
    fractions = (0.7, 0.1, 0.2)
    splits = [split_of(f"question {i}", fractions) for i in range(2000)]
    assert splits == [split_of(f"question {i}", fractions) for i in range(2000)]
    counts = Counter(splits)
    assert 1300 < counts["train"] < 1500 and 100 < counts["dev"] < 300
    assert split_of("q", fractions, seed=0) == split_of("q", fractions, seed=0)


def _item(i: int, label: bool, domain: str) -> JudgeItem:
    return JudgeItem(
        id=f"{domain}{i}", question=f"q{i}", reference="r", response="x", label=label, domain=domain
    )


def test_balanced_sample_equal_yes_no_per_source() -> None:
    items = [_item(i, i % 5 != 0, "a") for i in range(50)] + [
        _item(i, i % 2 == 0, "b") for i in range(10)
    ]
    picked = balanced_sample(items, 30, seed=0)
    counts = Counter((x.domain, x.label) for x in picked)
    assert len(picked) == 30
    assert (
        counts[("a", True)] == counts[("a", False)] and counts[("b", True)] == counts[("b", False)]
    )
    assert counts[("b", True)] == 5  # the small source is used up, the rest comes from "a"


def test_synthetic_items_and_master_keys() -> None:
    examples = [Example(id=str(i), question=f"q{i}", reference=f"ref{i}") for i in range(3)]
    items = synthetic_items(examples, seed=0)
    assert [x.label for x in items] == [True, False] * 3
    right, wrong = items[0], items[1]
    assert right.response.endswith("ref0") and not wrong.response.endswith("ref0")
    keys = master_key_items(items, [".", "Solution"], per_key=2)
    assert len(keys) == 4 and all(k.label is False and k.domain == "master_key" for k in keys)
    assert {k.response for k in keys} == {".", "Solution"}
