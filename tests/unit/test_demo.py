"""The quickstart demo's pieces: the recipe it reads, how a held-out answer is scored (exact
final answer, training verifier, rule check, format), and the summary's fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardbridge.data.example import Example
from rewardbridge.data.loaders import load_examples
from rewardbridge.experiments.demo import (
    HeldoutEval,
    demo_config,
    format_report,
    format_summary,
    named_option,
    score_answers,
)
from rewardbridge.verifiers.registry import build_verifier

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "quickstart-cpu.yaml"


def test_the_recipe_is_the_demo_config() -> None:
    config = demo_config(RECIPE, seed=3, output_dir="runs/x")
    assert config.training.seed == 3 and config.training.output_dir == "runs/x"
    assert config.data.holdout >= 100
    assert config.data.system_prompt is None  # the paper's policy system prompt
    assert config.algorithm.normalize == "group"  # Eq. 5
    assert config.algorithm.estimator in ("rloo", "reinforce_pp", "reinforce_pp_baseline")
    build_verifier(config.verifier.name, **config.verifier.options).close()


def test_the_bundled_data_has_a_license_and_enough_questions() -> None:
    config = demo_config(RECIPE)
    path = REPO / str(config.data.path)
    assert (path.parent / "LICENSE").exists() and (path.parent / "PROVENANCE.md").exists()
    examples = load_examples(path)
    assert len(examples) >= config.data.holdout + 100
    assert all("\nA. " in ex.question and ex.reference for ex in examples)


def test_an_answer_is_scored_four_ways() -> None:
    ex = Example(
        id="q", question="Which? A. Aspirin B. Heparin", reference="Heparin",
        metadata={"options": {"A": "Aspirin", "B": "Heparin"}, "answer_idx": "B"},
    )  # fmt: skip
    answers = [
        "Heparin thins the blood.\nTherefore, the answer is Heparin.",  # right, formatted
        "Therefore, the answer is Aspirin or Heparin",  # a list: not exact, contains says yes
        "B. Heparin",  # right option, no format, not exact
        "",  # unjudged
    ]
    verifier = build_verifier("jaccard", response_slot="answer")
    _, s = score_answers(
        [ex] * 4, answers, verifier, build_verifier("exact"), build_verifier("contains")
    )
    assert s["exact"] == [1.0, 0.0, 0.0, None]
    assert s["rule"] == [1.0, 1.0, 1.0, None]
    assert s["verifier"][0] == 1.0 and s["verifier"][3] is None
    assert s["formatted"] == [True, True, False, False]
    assert s["choice"] == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("answer", "named"),
    [("Heparin", "B"), ("B", "B"), ("b. heparin", "B"), ("(B) Heparin.", "B"), ("A: Aspirin", "A"),
     ("B. Aspirin", "A"), ("Aspirin or Heparin", None), ("A. Aspirin B. Heparin", None),
     ("", None), ("C", None), ("A. Heparin", "B"), ("B.", "B"), ("Heparin sodium", None)],
)  # fmt: skip
def test_named_option(answer: str, named: str | None) -> None:
    assert named_option(answer, {"A": "Aspirin", "B": "Heparin"}) == named


def test_summary_and_report_show_the_gain_and_its_interval() -> None:
    ev = HeldoutEval(
        exact=[1.0, 0.0, 0.0], verifier=[1.0, None, 0.0], rule=[1.0, 0.0, 0.0],
        formatted=[True, False, False], choice=[1.0, 1.0, 0.0], lengths=[10, 20, 30],
        unjudged=1, named=["B", "A", None], n_options=[4, 4, 2],
    )  # fmt: skip
    d = ev.as_dict()
    # the headline is the right option named; "exact" (the option text alone) beside it
    assert d["accuracy"] == 2 / 3 and d["exact_accuracy"] == 1 / 3 and d["unjudged"] == 1
    assert d["verifier_accuracy"] == 1 / 3 and d["one_option_rate"] == 2 / 3
    assert d["named_shares"] == {"A": 1 / 3, "B": 1 / 3}
    assert d["chance_accuracy"] == pytest.approx((0.25 + 0.25 + 0.5) / 3)
    no_options = HeldoutEval(
        exact=[1.0, 0.0], verifier=[1.0, 0.0], rule=[1.0, 0.0], formatted=[True, True],
        choice=[None, None], lengths=[1, 1], unjudged=0, named=[None, None], n_options=[0, 0],
    ).as_dict()  # fmt: skip
    assert no_options["accuracy"] == 0.5 and no_options["chance_accuracy"] is None
    summary = {
        "recipe": "r.yaml", "seed": 1, "verifier": "jaccard", "verifier_options": {},
        "estimator": "rloo", "steps": 2, "completions": 8, "train_questions": 5,
        "wall_s": 60.0, "cpu_s": 100.0, "plot": "runs/demo/curves.png",
        "reward_curve": [0.1, None, 0.3],
        "heldout": {"n": 3, "before": d, "after": d, "gain": 0.25, "gain_ci95": [0.05, 0.45],
                    "changed_to_correct": 1, "changed_to_wrong": 0,
                    "answer_letter_shares": {"A": 0.5, "B": 0.5}},
    }  # fmt: skip
    text = format_summary(summary)
    assert "[+5.0, +45.0]" in text and "seed 1" in text and "0.200 -> 0.200" in text
    assert "options named after training: A 33%, B 33%; right answers: A 50%, B 50%" in text
    report = format_report(summary)
    assert "[+0.050, +0.450]" in report and "![curves](curves.png)" in report
