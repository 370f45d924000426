"""Verifier metrics on hand-made labels: exact values computed by hand in the comments."""

from __future__ import annotations

import json

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.evaluation.agreement import (
    binary_metrics,
    cohen_kappa,
    coverage,
    judged_pairs,
    verifier_report,
)
from rewardbridge.evaluation.calibration import expected_calibration_error, reliability_bins
from rewardbridge.judging.records import soft_p_yes
from rewardbridge.verifiers.base import Status, VerifierResult

# tp = 4 (0, 1, 2, 8), fn = 1 (3), fp = 2 (6, 9), tn = 3 (4, 5, 7)
LABELS = [True, True, True, True, False, False, False, False, True, False]
PREDS = [True, True, True, False, False, False, True, False, True, True]


def test_binary_metrics_hand_computed() -> None:
    m = binary_metrics(LABELS, PREDS)
    assert (m.tn, m.fp, m.fn, m.tp) == (3, 2, 1, 4)
    assert m.accuracy == pytest.approx(0.7)
    assert m.precision == pytest.approx(4 / 6)
    assert m.recall == pytest.approx(4 / 5)
    assert m.f1 == pytest.approx(8 / 11)  # 2tp / (2tp + fp + fn)
    # p_o = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5)
    assert m.kappa == pytest.approx(0.4)


def test_kappa_extremes_and_undefined() -> None:
    assert cohen_kappa(LABELS, LABELS) == pytest.approx(1.0)
    assert cohen_kappa(LABELS, [not x for x in LABELS]) == pytest.approx(-1.0)
    assert cohen_kappa([True, True], [True, True]) is None  # one class everywhere: 0/0
    # precision with no predicted YES is undefined, not 0
    m = binary_metrics([True, False], [False, False])
    assert m.precision is None and m.recall == 0.0
    assert binary_metrics([], []).accuracy is None


def test_judged_pairs_drops_unknowns() -> None:
    ref, pred, dropped = judged_pairs([True, None, False, True], [True, False, None, False])
    assert (ref, pred, dropped) == ([True, True], [True, False], 2)


def test_ece_hand_computed() -> None:
    # 2 bins: [0, .5) holds (.2, .2) with labels (1, 0): |0.5 - 0.2| = 0.3
    #         [.5, 1] holds (.9, .9) with labels (1, 0): |0.5 - 0.9| = 0.4
    assert expected_calibration_error(
        [True, False, True, False], [0.9, 0.9, 0.2, 0.2], n_bins=2
    ) == pytest.approx(0.5 * 0.3 + 0.5 * 0.4)
    # 10 bins, one item each: (0.05 + 0.85 + 0.85 + 0.95) / 4
    assert expected_calibration_error(
        [True, False, True, True], [0.95, 0.85, 0.15, 0.05]
    ) == pytest.approx(0.675)
    assert expected_calibration_error([True], [1.0]) == 0.0  # 1.0 lands in the last bin
    assert expected_calibration_error([], []) is None


def test_reliability_bins_edges() -> None:
    bins = reliability_bins([True, False, True], [0.0, 0.5, 1.0], n_bins=2)
    assert [b.count for b in bins] == [1, 2]
    assert bins[1].confidence == pytest.approx(0.75) and bins[1].frequency == pytest.approx(0.5)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        reliability_bins([True], [1.5])


def _item(i: int, label: bool | None, domain: str = "math") -> JudgeItem:
    return JudgeItem(
        id=str(i), question="q", reference="r", response="x", label=label, domain=domain
    )


def test_soft_score_prefers_normalised_probability() -> None:
    r = VerifierResult.ok(1.0, judgment="YES", p_yes=0.3, p_no=0.1)
    assert soft_p_yes(r) == pytest.approx(0.75)
    assert soft_p_yes(VerifierResult.ok(0.0)) == 0.0
    assert soft_p_yes(VerifierResult.failed(Status.TIMEOUT, "t")) is None


def test_verifier_report_excludes_unjudged_and_compares_verifiers() -> None:
    items = [_item(i, lab, "math" if i < 5 else "law") for i, lab in enumerate(LABELS)]
    results = [VerifierResult.ok(1.0 if p else 0.0) for p in PREDS]
    results[0] = VerifierResult.failed(Status.BACKEND_ERROR, "down")  # a TP becomes unjudged
    other = [VerifierResult.ok(1.0 if lab else 0.0) for lab in LABELS]  # a perfect second judge
    report = verifier_report(items, results, against=other)
    assert report["coverage"]["unjudged"] == 1
    assert report["coverage"]["unjudged_by_status"] == {"backend_error": 1}
    assert report["n"] == 9 and report["tp"] == 3  # excluded, not counted as NO
    assert set(report["per_domain"]) == {"law", "math"}
    assert report["per_domain"]["math"]["excluded"] == 1
    assert report["against"]["both_judged"] == 9
    assert report["against"]["vs_labels"]["kappa"] == pytest.approx(1.0)
    assert report["against"]["kappa"] == pytest.approx(report["kappa"])  # other == labels
    json.dumps(report)  # JSON-ready
    assert coverage([])["fraction_judged"] is None
