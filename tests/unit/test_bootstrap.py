"""Paired bootstrap of a gain: pairing, determinism, intervals that can exclude zero or not."""

from __future__ import annotations

import pytest

from rewardbridge.evaluation.bootstrap import paired_bootstrap


def test_all_pairs_improve_gives_a_point_interval() -> None:
    d = paired_bootstrap([0.0] * 50, [1.0] * 50)
    assert (d.gain, d.low, d.high) == (1.0, 1.0, 1.0)
    assert d.n == 50 and d.mean_before == 0.0 and d.mean_after == 1.0 and d.excludes_zero


def test_no_change_is_zero_with_zero_width() -> None:
    scores = [1.0, 0.0] * 30
    d = paired_bootstrap(scores, scores)
    assert (d.gain, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.excludes_zero


def test_pairing_matters() -> None:
    """20 of 100 questions flip 0 -> 1, none back: the paired interval is well above zero,
    although the two accuracies alone (0.3 vs 0.5) would overlap much more if unpaired."""
    before = [1.0] * 30 + [0.0] * 70
    after = [1.0] * 30 + [1.0] * 20 + [0.0] * 50
    d = paired_bootstrap(before, after, seed=1)
    assert d.gain == pytest.approx(0.2)
    # The number of flips among 100 draws is Binomial(100, 0.2): sd 0.04, so the 95% interval
    # is about 0.2 +- 0.08.
    assert 0.10 < d.low < 0.15 and 0.25 < d.high < 0.30


def test_balanced_flips_straddle_zero() -> None:
    before = [1.0] * 10 + [0.0] * 10 + [0.0] * 80
    after = [0.0] * 10 + [1.0] * 10 + [0.0] * 80
    d = paired_bootstrap(before, after)
    assert d.gain == 0.0 and d.low < 0 < d.high


def test_deterministic_per_seed() -> None:
    before = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    after = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert paired_bootstrap(before, after, seed=3) == paired_bootstrap(before, after, seed=3)


@pytest.mark.parametrize(
    ("before", "after", "kwargs"),
    [
        ([1.0], [1.0, 0.0], {}),
        ([], [], {}),
        ([1.0], [float("nan")], {}),
        ([1.0], [1.0], {"level": 1.0}),
        ([1.0], [1.0], {"resamples": 0}),
    ],
)
def test_bad_input_fails(before: list[float], after: list[float], kwargs: dict) -> None:
    with pytest.raises(ValueError):
        paired_bootstrap(before, after, **kwargs)
