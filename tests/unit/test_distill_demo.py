"""The distillation demo's pieces: class balance, the report's markdown, a quick run."""

from __future__ import annotations

from collections import Counter

from rewardbridge.data.example import JudgeItem
from rewardbridge.experiments.distill_demo import balanced_sample


def _item(i: int, label: bool, domain: str) -> JudgeItem:
    return JudgeItem(
        id=f"{domain}{i}", question=f"q{i}", reference="r", response="x", label=label, domain=domain
    )


def test_balanced_sample_equal_yes_no_per_domain() -> None:
    items = [_item(i, i % 5 != 0, "a") for i in range(50)] + [
        _item(i, i % 2 == 0, "b") for i in range(10)
    ]
    picked = balanced_sample(items, 30, seed=0)
    counts = Counter((x.domain, x.label) for x in picked)
    assert len(picked) == 30
    assert (
        counts[("a", True)] == counts[("a", False)] and counts[("b", True)] == counts[("b", False)]
    )
    assert counts[("b", True)] == 5  # the small domain is used up, the rest comes from "a"


def test_summary_from_judgments(tmp_path) -> None:
    """The report's numbers from made-up judgments: kappa, interval, per domain, goals."""
    import json
    import random

    from rewardbridge.data.example import Example
    from rewardbridge.data.master_keys import build_probes, load_master_keys
    from rewardbridge.evaluation.audit import probe_items
    from rewardbridge.experiments.distill_report import write_summary
    from rewardbridge.verifiers.base import VerifierResult

    rng = random.Random(0)

    def items(name: str, domains: list[str]) -> list[JudgeItem]:
        return [
            JudgeItem(
                id=f"{name}-{i}" + ("-master_key-1" if i % 20 == 1 else ""),
                question=f"{name} q{i}",
                reference="r",
                response="x",
                label=i % 2 == 0,
                domain=domains[(i // 2) % len(domains)],
            )
            for i in range(80)
        ]

    def judge(its: list[JudgeItem], accuracy: float) -> list[VerifierResult]:
        out = []
        for it in its:
            right = rng.random() < accuracy
            p = 0.9 if (bool(it.label) == right) else 0.1
            out.append(VerifierResult.ok(float(p >= 0.5), p_yes=p, p_no=1 - p))
        return out

    sets = {"test": items("t", ["a", "b"]), "heldout": items("h", ["law", "physics"])}
    audit = probe_items(
        build_probes(load_master_keys()), [Example(id="e", question="q", reference="r")]
    )
    sets["audit"] = audit
    zero = {"test": [VerifierResult.ok(1.0, p_yes=0.8, p_no=0.2)] * 80, "audit": []}
    zero["heldout"] = zero["test"]
    zero["audit"] = [VerifierResult.ok(1.0, p_yes=0.8, p_no=0.2)] * len(audit)
    distilled = {
        "test": judge(sets["test"], 0.9),
        "heldout": judge(sets["heldout"], 0.85),
        "audit": [VerifierResult.ok(0.0, p_yes=0.1, p_no=0.9)] * len(audit),
    }
    s = write_summary(
        tmp_path,
        config={"curve_items": 40},
        base_model="base",
        data={
            "train": 100,
            "train_yes": 50,
            "test": 80,
            "test_questions": 80,
            "heldout": 80,
            "heldout_domains": ["law", "physics"],
        },
        sets=sets,
        zero=zero,
        distilled=distilled,
        training={"steps": 1, "seconds": 1.0, "train_loss": 0.5, "eval_loss": 0.6},
        curve=[{"examples": 50, "test_kappa": 0.3, "heldout_kappa": 0.2}],
    )
    assert s["zero_shot"]["test"]["kappa"] == 0.0 and s["zero_shot"]["audit"]["fpr"] == 1.0
    d = s["distilled"]
    assert d["test"]["kappa"] > 0.6 and d["test"]["kappa_ci95"][0] < d["test"]["kappa"]
    assert set(d["heldout"]["per_domain"]) == {"law", "physics"}
    assert d["audit"]["fpr"] == 0.0 and d["test"]["master_key_items"] == 4
    assert d["test"]["per_kind"]["master_key"]["judged"] == 4
    assert [p["examples"] for p in s["learning_curve"]] == [0, 50, 100]
    assert s["goals"]["master_key_fpr<5%"] and s["goals"]["heldout_gain>=0.2"]
    assert json.loads((tmp_path / "summary.json").read_text())["goals"] == s["goals"]
    assert (tmp_path / "learning_curve.png").exists()
    assert (tmp_path / "distilled" / "reliability.png").exists()
    assert "Goals (issue 13)" in (tmp_path / "summary.md").read_text()
