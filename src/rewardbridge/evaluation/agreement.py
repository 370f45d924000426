"""Agreement of a verifier with gold labels or with another verifier (paper §1, §8).

The paper's headline agreement number is Cohen's kappa between two judges (0.86 on math, 0.88
on multi-subject, Qwen2.5-72B vs GPT-4o); verifier papers also report accuracy, precision,
recall and F1 against labels. All of them come from scikit-learn here; this module only decides
which items count.

Coverage: an item a verifier did not judge (``score is None``: empty response, timeout, backend
error, no judgment token) is excluded from every metric and counted in ``unjudged``. It is
never turned into a NO. Positive class = YES = the response matches the reference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.judging.records import soft_p_yes
from rewardbridge.verifiers.base import VerifierResult


@dataclass(frozen=True, slots=True)
class BinaryMetrics:
    """Metrics of predictions against references on the judged items (positive = YES)."""

    n: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    kappa: float | None
    tn: int
    fp: int
    fn: int
    tp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nan_to_none(value: float) -> float | None:
    return None if value != value else float(value)  # NaN != NaN


def binary_metrics(references: Sequence[bool], predictions: Sequence[bool]) -> BinaryMetrics:
    """Accuracy, precision, recall, F1, Cohen's kappa and the confusion matrix.

    Undefined values (precision with no predicted YES, kappa when both raters use one class
    only, anything on zero items) are ``None`` rather than a made-up 0.
    """
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    n = len(references)
    if n == 0:
        return BinaryMetrics(0, None, None, None, None, None, 0, 0, 0, 0)
    y_true = [bool(x) for x in references]
    y_pred = [bool(x) for x in predictions]
    tn, fp, fn, tp = (
        int(v) for v in confusion_matrix(y_true, y_pred, labels=[False, True]).ravel()
    )
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[True], average=None, zero_division=float("nan")
    )
    kappa = (
        float(cohen_kappa_score(y_true, y_pred))
        if len(set(y_true) | set(y_pred)) > 1
        else None  # one class everywhere: kappa is 0/0
    )
    return BinaryMetrics(
        n=n,
        accuracy=float(accuracy_score(y_true, y_pred)),
        precision=_nan_to_none(float(precision[0])),
        recall=_nan_to_none(float(recall[0])),
        f1=_nan_to_none(float(f1[0])),
        kappa=None if kappa is None else _nan_to_none(kappa),
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
    )


def judged_pairs(
    references: Sequence[bool | None], predictions: Sequence[bool | None]
) -> tuple[list[bool], list[bool], int]:
    """Keep the positions where both sides are known; return them and how many were dropped."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    ref: list[bool] = []
    pred: list[bool] = []
    for r, p in zip(references, predictions, strict=True):
        if r is not None and p is not None:
            ref.append(bool(r))
            pred.append(bool(p))
    return ref, pred, len(references) - len(ref)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa between two raters; ``None`` where it is undefined (one class only)."""
    return binary_metrics(a, b).kappa


# --- a verifier's report on labeled items -----------------------------------------------------


def predicted_yes(result: VerifierResult, threshold: float = 0.5) -> bool | None:
    """YES when the score reaches ``threshold``; ``None`` when not judged."""
    if not result.judged or result.score is None:
        return None
    return result.score >= threshold


def coverage(results: Sequence[VerifierResult]) -> dict[str, Any]:
    """How many items were judged, and why the others were not (by status)."""
    by_status = Counter(r.status.value for r in results if not r.judged)
    judged = sum(r.judged for r in results)
    return {
        "items": len(results),
        "judged": judged,
        "unjudged": len(results) - judged,
        "unjudged_by_status": dict(sorted(by_status.items())),
        "fraction_judged": judged / len(results) if results else None,
    }


def verifier_report(
    items: Sequence[JudgeItem],
    results: Sequence[VerifierResult],
    *,
    threshold: float = 0.5,
    n_bins: int = 10,
    against: Sequence[VerifierResult] | None = None,
) -> dict[str, Any]:
    """Everything ``eval-verifier`` reports, as a JSON-ready dict.

    Against labels (items with a label): metrics overall and per domain, calibration of the
    soft score. Against a second verifier (``against``, same items): Cohen's kappa and raw
    agreement on the items both judged, and that verifier's own metrics vs labels.
    """
    from rewardbridge.evaluation.calibration import (
        expected_calibration_error,
        reliability_bins,
    )

    if len(items) != len(results):
        raise ValueError(f"{len(items)} items but {len(results)} results")
    labels = [item.label for item in items]
    preds = [predicted_yes(r, threshold) for r in results]
    ref, pred, dropped = judged_pairs(labels, preds)
    overall = binary_metrics(ref, pred)

    per_domain: dict[str, Any] = {}
    domains = sorted({item.domain or "(none)" for item in items})
    if len(domains) > 1:
        for domain in domains:
            idx = [i for i, item in enumerate(items) if (item.domain or "(none)") == domain]
            d_ref, d_pred, d_dropped = judged_pairs(
                [labels[i] for i in idx], [preds[i] for i in idx]
            )
            per_domain[domain] = {
                **binary_metrics(d_ref, d_pred).to_dict(),
                "items": len(idx),
                "excluded": d_dropped,
            }

    scored = [
        (bool(label), score)
        for label, r in zip(labels, results, strict=True)
        if label is not None and (score := soft_p_yes(r)) is not None
    ]
    cal_labels = [x[0] for x in scored]
    cal_scores = [x[1] for x in scored]
    bins = reliability_bins(cal_labels, cal_scores, n_bins)

    report: dict[str, Any] = {
        "threshold": threshold,
        "coverage": coverage(results),
        "labeled": sum(label is not None for label in labels),
        "evaluated": overall.n,
        "excluded_unjudged_or_unlabeled": dropped,
        **overall.to_dict(),
        "ece": expected_calibration_error(cal_labels, cal_scores, n_bins),
        "calibration": {"n": len(scored), "n_bins": n_bins, "bins": [b.to_dict() for b in bins]},
        "per_domain": per_domain,
    }
    if against is not None:
        if len(against) != len(items):
            raise ValueError(f"{len(items)} items but {len(against)} results of --against")
        other = [predicted_yes(r, threshold) for r in against]
        a, b, not_both = judged_pairs(preds, other)
        pair = binary_metrics(a, b)
        o_ref, o_pred, o_dropped = judged_pairs(labels, other)
        report["against"] = {
            "coverage": coverage(against),
            "both_judged": len(a),
            "not_both_judged": not_both,
            "kappa": pair.kappa,
            "agreement": pair.accuracy,
            "vs_labels": {**binary_metrics(o_ref, o_pred).to_dict(), "excluded": o_dropped},
        }
    return report
