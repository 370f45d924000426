"""The readers of the labeled verifier sets bundled in the package (data/corpora/)."""

from __future__ import annotations

from collections import Counter

import pytest

from rewardbridge.data.labeled_sets import LABELED_SETS, gsm8k_reference


def test_gsm8k_reference_is_the_final_answer() -> None:
    assert gsm8k_reference("She makes 9 * 2 = $18 every day.\nA: 18") == "18"
    with pytest.raises(ValueError, match="no 'A:' line"):
        gsm8k_reference("no answer line")


@pytest.mark.parametrize(
    ("name", "n", "yes"),
    [
        ("hardverify_math", 500, 250),
        ("gsm8k", 5276, 286 + 515 + 458 + 742),
        ("qwen25_math", 800, 728),
    ],
)
def test_sets_load_with_their_documented_sizes_and_labels(name: str, n: int, yes: int) -> None:
    items = LABELED_SETS[name](None)
    assert len(items) == n
    assert Counter(item.label for item in items)[True] == yes
    assert len({item.id for item in items}) == n
    assert all(item.domain == name and item.question and item.reference for item in items)
