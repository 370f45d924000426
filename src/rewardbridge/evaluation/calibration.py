"""Calibration of a verifier's soft score (paper Eq. 4 / the normalised soft reward).

A soft reward is only useful if it means what it says: among items scored about 0.8, about
80% should be correct. We measure that with a reliability table and the expected calibration
error (ECE), binning as follows (the usual equal-width scheme, Guo et al. 2017):

- ``n_bins`` equal-width bins over [0, 1]; bin ``b`` holds scores in ``[b/n, (b+1)/n)``, and the
  last bin also holds exactly 1.0;
- per bin: ``confidence`` = mean score, ``frequency`` = fraction of items labeled YES;
- ``ECE = sum_b (n_b / N) * |frequency_b - confidence_b|`` over non-empty bins.

The score is the probability of YES (not the confidence of the predicted class), so the table
is the reliability diagram of P(YES). Unjudged items have no score and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float | None  # mean score in the bin
    frequency: float | None  # fraction labeled YES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reliability_bins(
    labels: Sequence[bool], scores: Sequence[float], n_bins: int = 10
) -> list[ReliabilityBin]:
    """The reliability table: one entry per equal-width bin, empty bins included."""
    import numpy as np

    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("scores must lie in [0, 1]")
    index = np.minimum((p * n_bins).astype(int), n_bins - 1)  # 1.0 goes to the last bin
    out = []
    for b in range(n_bins):
        in_bin = index == b
        count = int(in_bin.sum())
        out.append(
            ReliabilityBin(
                low=b / n_bins,
                high=(b + 1) / n_bins,
                count=count,
                confidence=float(p[in_bin].mean()) if count else None,
                frequency=float(y[in_bin].mean()) if count else None,
            )
        )
    return out


def expected_calibration_error(
    labels: Sequence[bool], scores: Sequence[float], n_bins: int = 10
) -> float | None:
    """ECE of P(YES) scores against labels; ``None`` for no items."""
    if not labels:
        return None
    bins = reliability_bins(labels, scores, n_bins)
    total = len(labels)
    return float(
        sum(
            b.count / total * abs(b.frequency - b.confidence)
            for b in bins
            if b.count and b.frequency is not None and b.confidence is not None
        )
    )


def plot_reliability_diagram(
    bins: Sequence[ReliabilityBin], path: str, *, title: str = "Reliability of P(YES)"
) -> None:
    """Save a reliability diagram (bar per bin: fraction labeled YES; diagonal = perfect)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_hist) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = bins[0].high - bins[0].low if bins else 0.1
    lows = [b.low for b in bins]
    ax.bar(
        lows,
        [b.frequency or 0.0 for b in bins],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="fraction labeled YES",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_ylabel("fraction labeled YES")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax_hist.bar(lows, [b.count for b in bins], width=width, align="edge", edgecolor="black")
    ax_hist.set_xlabel("verifier P(YES)")
    ax_hist.set_ylabel("items")
    ax_hist.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
