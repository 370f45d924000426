"""Paired bootstrap confidence interval of a difference of means (after - before).

The same questions are answered before and after training, so the two scores of a question are
paired: resampling questions (not the two runs separately) keeps that pairing, and the interval
is that of the mean per-question difference. Percentile interval over ``resamples`` draws with
replacement of the n questions; deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``after - before`` over n paired items and its bootstrap interval."""

    n: int
    mean_before: float
    mean_after: float
    gain: float
    low: float
    high: float
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """The gain ``mean(after) - mean(before)`` with a ``level`` percentile interval.

    ``before[i]`` and ``after[i]`` score the same item (1/0 for accuracy, or any float).
    """
    if len(before) != len(after):
        raise ValueError(f"paired scores differ in length: {len(before)} vs {len(after)}")
    if not before:
        raise ValueError("paired_bootstrap needs at least one pair")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired scores must be finite (drop unjudged pairs first)")
    diff_N = a - b
    n = diff_N.size
    idx_RN = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means_R = diff_N[idx_RN].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means_R, [tail, 1 - tail])
    return PairedDifference(
        n=n,
        mean_before=float(b.mean()),
        mean_after=float(a.mean()),
        gain=float(diff_N.mean()),
        low=float(low),
        high=float(high),
        level=level,
    )


@dataclass(frozen=True)
class KappaInterval:
    """Cohen's kappa of predictions against labels with a percentile bootstrap interval."""

    n: int
    kappa: float | None
    low: float | None
    high: float | None
    level: float


def _kappa(ref: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa of two boolean arrays; NaN where undefined (chance agreement 1)."""
    po = float((ref == pred).mean())
    p_ref, p_pred = float(ref.mean()), float(pred.mean())
    pe = p_ref * p_pred + (1 - p_ref) * (1 - p_pred)
    return float("nan") if pe >= 1 else (po - pe) / (1 - pe)


def bootstrap_kappa(
    labels: Sequence[bool],
    predictions: Sequence[bool],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> KappaInterval:
    """Kappa of ``predictions`` against ``labels`` (judged items only) and its interval over
    ``resamples`` draws of the items with replacement; resamples where kappa is undefined
    (one class only) are left out; ``None`` where the point estimate is undefined."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ref = np.asarray(labels, dtype=bool)
    pred = np.asarray(predictions, dtype=bool)
    if ref.size == 0:
        return KappaInterval(0, None, None, None, level)
    point = _kappa(ref, pred)
    if point != point:  # NaN
        return KappaInterval(int(ref.size), None, None, None, level)
    idx_RN = np.random.default_rng(seed).integers(0, ref.size, size=(resamples, ref.size))
    draws = np.array([_kappa(ref[i], pred[i]) for i in idx_RN])
    draws = draws[np.isfinite(draws)]
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail]) if draws.size else (np.nan, np.nan)
    return KappaInterval(int(ref.size), point, float(low), float(high), level)
