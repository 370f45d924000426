"""The quickstart demo (``make demo``): the embedded policy learns, measured on held-out questions.

One run of the recipe ``recipes/quickstart-cpu.yaml`` (every setting is read from it):

1. held-out evaluation before training: the last ``data.holdout`` questions of the shuffled data
   (never trained on), one greedy answer each of at most ``generation.max_completion_length``
   tokens, with the paper's policy system prompt;
2. RL training of the recipe (``rewardbridge.training.rl.train``: the verifier of the recipe as
   the reward, Eq. 5 z-scores, the recipe's estimator);
3. the same held-out evaluation with the trained policy.

Each held-out answer is scored five ways. The headline ``accuracy``: the extracted final answer
(the text after the last "Therefore, the answer is", else the last line) names exactly one of
the question's options, the right one: its text, alone or after an option label ("Chorea", "C.
Chorea"; the questions ask for the text, so the text decides), or its letter alone; listing
several options does not pass (``named_option``). For questions without options it is ``exact``
(the extracted answer equals the reference after normalisation), also reported on its own.
Beside it: the training verifier (correct when its score is >= 0.5), the paper's rule check
``contains`` on the final step, and the answer format (the final step holds "the answer is").
Which option letters the answers name, and the chance level (1 / number of options), are
reported too, so that a policy that learned a position ("always A") is seen as one. The headline
gain gets a paired bootstrap 95% interval (``evaluation.bootstrap``). An unjudged answer (empty)
counts as not correct and is counted apart. Writes ``demo_summary.json``, ``demo_report.md``,
``curves.png`` and the answers before and after (``heldout_before.jsonl``,
``heldout_after.jsonl``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.experiments.demo_report import format_report, format_summary
from rewardbridge.training.config import RunConfig, load_config
from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.text import extract_answer, final_step, normalize_text

__all__ = [
    "DemoResult",
    "HeldoutEval",
    "demo_config",
    "format_report",
    "format_summary",
    "run_demo",
]

log = logging.getLogger(__name__)

DEFAULT_RECIPE = Path("recipes/quickstart-cpu.yaml")
EVAL_BATCH_SIZE = 25  # held-out prompts per greedy generation batch (speed only)
ANSWER_MARKER = re.compile(r"the\s+(?:final\s+)?answer\s+is", re.IGNORECASE)
_LETTER_PREFIX = re.compile(r"^\(?([a-z])\s*[.):]\s*(.*)$")


def named_option(answer: str, options: dict[str, str]) -> str | None:
    """The one option (its letter) that an extracted final answer names: its text, the text
    after an option label ("C. Chorea", "(C) Chorea"), or the letter alone; None when it names
    none or several ("Aspirin or Heparin"). The questions ask for the option's text, so the
    text decides: a label before another option's text ("B. Chorea" when Chorea is C) is read
    as a stray label and the answer names C."""
    a = normalize_text(answer)
    letters = {k.lower(): k for k in options}
    if a in letters:
        return letters[a]
    prefix = _LETTER_PREFIX.match(a)
    if prefix is not None and prefix.group(1) in letters:
        a = normalize_text(prefix.group(2))
    hits = [k for k, text in options.items() if normalize_text(text) == a]
    return hits[0] if len(hits) == 1 else None


def demo_config(
    recipe: str | Path = DEFAULT_RECIPE,
    *,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """The recipe with the demo's own overrides (seed, output folder) applied."""
    extra = list(overrides)
    if seed is not None:
        extra += ["--training.seed", str(seed)]
    if output_dir is not None:
        extra += ["--training.output_dir", str(output_dir)]
    config = load_config(recipe, extra)
    if config.data.holdout < 1:
        raise ValueError(f"{recipe}: the demo needs data.holdout >= 1 held-out questions")
    return config


@dataclass(frozen=True)
class HeldoutEval:
    """Per-question scores of one greedy pass over the held-out questions."""

    exact: list[float]  # 1/0; an unjudged (empty) answer is 0 and counted in ``unjudged``
    verifier: list[float | None]  # the training verifier's score, None = unjudged
    rule: list[float | None]  # the contains rule check, None = unjudged
    formatted: list[bool]  # the final step holds "the answer is"
    choice: list[float | None]  # 1/0: the answer names the right option; None: no options
    lengths: list[int]  # answer length in tokens
    unjudged: int
    named: list[str | None]  # the one option letter the answer names, else None
    n_options: list[int]  # options per question (0: none)

    @property
    def correct(self) -> list[float]:
        """The headline check per question: the right option named (``choice``) where the
        question has options, else the exact final answer."""
        return [e if c is None else c for e, c in zip(self.exact, self.choice, strict=True)]

    def as_dict(self) -> dict[str, Any]:
        n = len(self.exact)
        judged = [s for s in self.verifier if s is not None]
        letters = [x for x in self.named if x is not None]
        with_options = [k for k in self.n_options if k > 0]
        return {
            "n": n,
            "accuracy": sum(self.correct) / n,
            "exact_accuracy": sum(self.exact) / n,
            "verifier_accuracy": sum(s >= 0.5 for s in judged) / n,
            "verifier_mean_score": sum(judged) / len(judged) if judged else None,
            "rule_accuracy": sum(1 for s in self.rule if s is not None and s >= 0.5) / n,
            "format_rate": sum(self.formatted) / n,
            "one_option_rate": len(letters) / n if with_options else None,
            "named_shares": {k: letters.count(k) / n for k in sorted(set(letters))},
            "chance_accuracy": sum(1 / k for k in with_options) / len(with_options)
            if with_options
            else None,
            "mean_answer_tokens": sum(self.lengths) / n,
            "unjudged": self.unjudged,
        }


def score_answers(
    examples: Sequence[Example],
    responses: Sequence[str],
    verifier: Verifier,
    exact: Verifier,
    rule: Verifier,
) -> tuple[list[JudgeItem], dict[str, list[Any]]]:
    """Judge one answer per example by the three verifiers; the format is a regex; ``choice``:
    whether the answer names the right option in any form (examples with ``options`` and
    ``answer_idx`` in their metadata), to tell picking the right option from writing it."""
    items = [
        JudgeItem(id=ex.id, question=ex.question, reference=ex.reference, response=resp)
        for ex, resp in zip(examples, responses, strict=True)
    ]
    choices = [_choice(ex, resp) for ex, resp in zip(examples, responses, strict=True)]
    return items, {
        "exact": [r.score for r in exact.verify(items)],
        "verifier": [r.score for r in verifier.verify(items)],
        "rule": [r.score for r in rule.verify(items)],
        "formatted": [bool(ANSWER_MARKER.search(final_step(resp))) for resp in responses],
        "choice": [c for c, _ in choices],
        "named": [letter for _, letter in choices],
    }


def _choice(example: Example, response: str) -> tuple[float | None, str | None]:
    """(1/0: the answer names the right option, or None without options; the letter named)."""
    options, letter = example.metadata.get("options"), example.metadata.get("answer_idx")
    if not isinstance(options, dict) or not letter:
        return None, None
    named = named_option(extract_answer(response), options)
    return float(named == letter), named


def evaluate_heldout(
    policy: tuple[Any, Any],
    heldout: Sequence[Example],
    verifier: Verifier,
    config: RunConfig,
    output: Path,
) -> HeldoutEval:
    """One greedy answer per held-out question, scored; the answers are written to ``output``."""
    from rewardbridge.policy.generation import generate_responses
    from rewardbridge.verifiers.registry import build_verifier

    tokenizer = policy[1]
    responses = [
        r[0]
        for r in generate_responses(
            policy,
            heldout,
            max_new_tokens=config.generation.max_completion_length,
            temperature=0.0,
            batch_size=EVAL_BATCH_SIZE,
            system_prompt=config.data.system_prompt,
        )
    ]
    exact, rule = build_verifier("exact"), build_verifier("contains")
    items, s = score_answers(heldout, responses, verifier, exact, rule)
    lengths = [len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in responses]
    with output.open("w") as fh:
        for i, item in enumerate(items):
            row = {
                "id": item.id,
                "reference": item.reference,
                "response": item.response,
                "extracted_answer": extract_answer(item.response),
                "exact": s["exact"][i],
                "verifier": s["verifier"][i],
                "rule": s["rule"][i],
                "formatted": s["formatted"][i],
                "choice": s["choice"][i],
                "named_option": s["named"][i],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return HeldoutEval(
        exact=[x if x is not None else 0.0 for x in s["exact"]],
        verifier=s["verifier"],
        rule=s["rule"],
        formatted=s["formatted"],
        choice=s["choice"],
        lengths=lengths,
        unjudged=sum(x is None for x in s["exact"]),
        named=s["named"],
        n_options=[
            len(o) if isinstance(o := ex.metadata.get("options"), dict) else 0 for ex in heldout
        ],
    )


@dataclass(frozen=True)
class DemoResult:
    summary: dict[str, Any]
    summary_path: Path
    report_path: Path
    plot_path: Path


def _load_policy(config: RunConfig, adapter: Path | None = None) -> tuple[Any, Any]:
    """The recipe's policy in the recipe's dtype, with the trained LoRA adapter when given.

    The adapter is not merged: merged into bfloat16 weights, its small deltas would be rounded
    away; unmerged, the policy computes exactly as it did in training.
    """
    from rewardbridge.models import load_causal_lm

    model, tokenizer = load_causal_lm(config.model.policy, device="cpu", dtype=config.model.dtype)
    if adapter is not None and (adapter / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).eval()
    elif adapter is not None:
        model, tokenizer = load_causal_lm(str(adapter), device="cpu", dtype=config.model.dtype)
    return model, tokenizer


def run_demo(config: RunConfig, *, recipe: str | Path = DEFAULT_RECIPE) -> DemoResult:
    """Evaluate, train, evaluate; write the summary, the report and the curves."""
    import torch

    from rewardbridge.evaluation.bootstrap import paired_bootstrap
    from rewardbridge.training.data import load_training_examples
    from rewardbridge.training.metrics import read_metrics
    from rewardbridge.training.plot import plot_metrics
    from rewardbridge.training.rl import train
    from rewardbridge.verifiers.registry import build_verifier

    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = Path(config.training.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.training.torch_threads:
        torch.set_num_threads(config.training.torch_threads)
    train_examples, heldout = load_training_examples(config)
    verifier = build_verifier(config.verifier.name, **config.verifier.options)
    phases: dict[str, float] = {}
    try:
        log.info("held-out evaluation before training: %d questions, greedy", len(heldout))
        t = time.perf_counter()
        torch.manual_seed(config.training.seed)
        before = evaluate_heldout(
            _load_policy(config),
            heldout,
            verifier,
            config,
            out / "heldout_before.jsonl",
        )
        phases["eval_before_s"] = time.perf_counter() - t
        log.info("before: %s", _short(before.as_dict()))
        t = time.perf_counter()
        result = train(config, verifier=verifier)
        phases["train_s"] = time.perf_counter() - t
        t = time.perf_counter()
        after = evaluate_heldout(
            _load_policy(config, result.final_model),
            heldout,
            verifier,
            config,
            out / "heldout_after.jsonl",
        )
        phases["eval_after_s"] = time.perf_counter() - t
        log.info("after: %s", _short(after.as_dict()))
    finally:
        verifier.close()
    seed = config.training.seed
    gain = paired_bootstrap(before.correct, after.correct, seed=seed)
    exact_gain = paired_bootstrap(before.exact, after.exact, seed=seed)
    verifier_gain = paired_bootstrap(
        [float(s is not None and s >= 0.5) for s in before.verifier],
        [float(s is not None and s >= 0.5) for s in after.verifier],
        seed=seed,
    )
    rows = read_metrics(result.metrics_path)
    b, a = before.as_dict(), after.as_dict()
    plot = plot_metrics(
        rows,
        out / "curves.png",
        title=f"quickstart demo: {config.algorithm.estimator} + {verifier.name}, "
        f"seed {config.training.seed}",
        extra_lines={
            f"held-out accuracy before {b['accuracy']:.2f}": b["accuracy"],
            f"after {a['accuracy']:.2f}": a["accuracy"],
        },
    )
    summary = {
        "recipe": str(recipe),
        "seed": config.training.seed,
        "policy": config.model.policy,
        "verifier": verifier.name,
        "verifier_options": config.verifier.options,
        "accuracy_check": "the extracted final answer names exactly one option, the right one: "
        "its text (a leading option label ignored) or its letter alone; exact final answer for "
        "questions without options",
        "rule_check": "contains (reference in the final step)",
        "estimator": config.algorithm.estimator,
        "normalize": config.algorithm.normalize,
        "train_questions": len(train_examples),
        "steps": result.global_step,
        "completions": result.global_step * config.completions_per_step,
        "heldout": {
            "n": len(heldout),
            "before": b,
            "after": a,
            "gain": gain.gain,
            "gain_ci95": [gain.low, gain.high],
            "verifier_gain_ci95": [verifier_gain.low, verifier_gain.high],
            "exact_gain_ci95": [exact_gain.low, exact_gain.high],
            "answer_letter_shares": _shares(heldout),
            "changed_to_correct": sum(
                x < y for x, y in zip(before.correct, after.correct, strict=True)
            ),
            "changed_to_wrong": sum(
                x > y for x, y in zip(before.correct, after.correct, strict=True)
            ),
        },
        "reward_curve": [r.get("reward_mean") for r in rows],
        "groups_std0_curve": [r.get("frac_groups_std0") for r in rows],
        "wall_s": round(time.perf_counter() - wall0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "torch_threads": torch.get_num_threads(),
        "plot": str(plot),
    }
    summary_path = out / "demo_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    report_path = out / "demo_report.md"
    report_path.write_text(format_report(summary))
    return DemoResult(summary, summary_path, report_path, plot)


def _shares(examples: Sequence[Example]) -> dict[str, float]:
    """How often each option letter is the right answer among ``examples``."""
    letters = [str(x) for ex in examples if (x := ex.metadata.get("answer_idx"))]
    return {k: letters.count(k) / len(examples) for k in sorted(set(letters))}


def _short(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items())
