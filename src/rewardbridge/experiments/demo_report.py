"""The quickstart demo's console summary and Markdown report (from ``demo_summary.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _window(values: Sequence[float | None], first: bool, k: int = 5) -> float | None:
    vals = [v for v in values if v is not None]
    part = vals[:k] if first else vals[-k:]
    return sum(part) / len(part) if part else None


def _shares(shares: dict[str, float] | None) -> str:
    return ", ".join(f"{k} {100 * v:.0f}%" for k, v in (shares or {}).items()) or "-"


def format_summary(summary: dict[str, Any]) -> str:
    """The console table: held-out before/after with the gain's interval, the reward curve."""

    def pct(x: float | None) -> str:
        return "    -" if x is None else f"{100 * x:5.1f}"

    h = summary["heldout"]
    b, a = h["before"], h["after"]
    low, high = h["gain_ci95"]
    curve = summary["reward_curve"]
    first, last = _window(curve, True), _window(curve, False)
    reward = "-" if first is None or last is None else f"{first:.3f} -> {last:.3f}"
    return "\n".join(
        [
            f"quickstart demo, seed {summary['seed']}: {summary['steps']} {summary['estimator']} "
            f"steps ({summary['completions']} completions) in {summary['wall_s'] / 60:.1f} min",
            f"training reward ({summary['verifier']}), mean of first 5 -> last 5 steps: {reward}",
            f"held-out ({h['n']} questions, greedy)         before   after",
            f"  accuracy % (right option, only one)  {pct(b['accuracy'])}   {pct(a['accuracy'])}"
            f"   (chance {pct(a.get('chance_accuracy'))})",
            f"  exact final answer %                 {pct(b['exact_accuracy'])}   "
            f"{pct(a['exact_accuracy'])}",
            f"  training verifier accuracy %         {pct(b['verifier_accuracy'])}   "
            f"{pct(a['verifier_accuracy'])}",
            f"  rule check (contains) accuracy %     {pct(b['rule_accuracy'])}   "
            f"{pct(a['rule_accuracy'])}",
            f"  one option named %                   {pct(b['one_option_rate'])}   "
            f"{pct(a['one_option_rate'])}",
            f"  answer format %                      {pct(b['format_rate'])}   "
            f"{pct(a['format_rate'])}",
            f"  mean answer length (tokens)          {b['mean_answer_tokens']:5.1f}   "
            f"{a['mean_answer_tokens']:5.1f}",
            f"gain in accuracy {100 * h['gain']:+.1f} points, paired bootstrap 95% interval "
            f"[{100 * low:+.1f}, {100 * high:+.1f}]",
            f"options named after training: {_shares(a.get('named_shares'))}; right answers: "
            f"{_shares(h.get('answer_letter_shares'))}",
        ]
    )


def format_report(summary: dict[str, Any]) -> str:
    """The Markdown report of one demo run."""
    h = summary["heldout"]
    rows = [
        ("**accuracy**: one option named, the right one", "accuracy"),
        ("chance level (1 / options)", "chance_accuracy"),
        ("exact final answer (the option text alone)", "exact_accuracy"),
        (f"training verifier ({summary['verifier']}) accuracy", "verifier_accuracy"),
        ("training verifier mean score", "verifier_mean_score"),
        ("rule check (contains) accuracy", "rule_accuracy"),
        ("one option named (letter, text or both)", "one_option_rate"),
        ('answer format ("the answer is" in the final step)', "format_rate"),
        ("mean answer length (tokens)", "mean_answer_tokens"),
        ("unjudged answers", "unjudged"),
    ]

    def cell(x: Any) -> str:
        return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))

    low, high = h["gain_ci95"]
    lines = [
        f"# Quickstart demo, seed {summary['seed']}",
        "",
        f"Recipe `{summary['recipe']}`: {summary['steps']} {summary['estimator']} steps "
        f"({summary['completions']} completions) on {summary['train_questions']} training "
        f"questions, reward `{summary['verifier']}` {summary['verifier_options'] or ''}; "
        f"{summary['wall_s'] / 60:.1f} min wall, {summary['cpu_s'] / 60:.1f} min CPU.",
        "",
        f"Held-out: {h['n']} questions never trained on, one greedy answer each.",
        "",
        "| | before | after |",
        "|---|---:|---:|",
        *(f"| {label} | {cell(h['before'][k])} | {cell(h['after'][k])} |" for label, k in rows),
        "",
        f"Gain in accuracy: {h['gain']:+.3f}, paired bootstrap 95% interval "
        f"[{low:+.3f}, {high:+.3f}]; {h['changed_to_correct']} answers became correct, "
        f"{h['changed_to_wrong']} became wrong.",
        "",
        f"Options the answers name, before: {_shares(h['before'].get('named_shares'))}; after: "
        f"{_shares(h['after'].get('named_shares'))}; the right answers' letters: "
        f"{_shares(h.get('answer_letter_shares'))}.",
        "",
        f"Training reward per step: {', '.join(cell(x) for x in summary['reward_curve'])}",
        "",
        f"![curves]({Path(summary['plot']).name})",
        "",
    ]
    return "\n".join(lines)
