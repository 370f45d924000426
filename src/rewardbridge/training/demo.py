"""The quickstart demo: held-out accuracy of the embedded policy, a short RL run against the
verifier, held-out accuracy again, and the reward curve as PNG.

Held-out questions are the last ``holdout`` prompts of the shuffled sample (never trained on).
Each is answered once, greedily, and judged by the training verifier and by an independent
rule check (``contains``, the paper's rule baseline).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardbridge.training.config import RunConfig, config_from_dict

log = logging.getLogger(__name__)


def demo_config(
    output_dir: str | Path,
    *,
    steps: int = 20,
    verifier: str = "jaccard",
    verifier_options: dict[str, Any] | None = None,
    holdout: int = 16,
    policy: str = "default",
) -> RunConfig:
    """The quickstart recipe, sized for about 10 minutes on a 2-core CPU."""
    return config_from_dict(
        {
            "model": {"policy": policy, "lora": True, "lora_r": 16, "lora_alpha": 32},
            "data": {"holdout": holdout},
            "verifier": {"name": verifier, "options": dict(verifier_options or {})},
            "algorithm": {"estimator": "rloo", "normalize": "group", "beta": 0.01},
            "generation": {"num_generations": 4, "max_completion_length": 32},
            "training": {
                "output_dir": str(output_dir),
                "prompts_per_step": 2,
                "learning_rate": 5e-5,
                "max_steps": steps,
                "save_steps": max(steps, 1),
                "save_total_limit": 1,
                "torch_threads": 1,
            },
            "logging": {"report_to": ["tensorboard"]},
        }
    )


@dataclass(frozen=True)
class DemoResult:
    before: dict[str, Any]
    after: dict[str, Any]
    reward_first: float | None
    reward_last: float | None
    steps: int
    seconds: float
    plot: Path
    summary: Path


def _window_mean(rows: list[dict[str, Any]], first: bool, k: int = 5) -> float | None:
    vals = [r["reward_mean"] for r in rows if r.get("reward_mean") is not None]
    part = vals[:k] if first else vals[-k:]
    return sum(part) / len(part) if part else None


def run_demo(config: RunConfig, *, eval_tokens: int = 48) -> DemoResult:
    from rewardbridge.evaluation.policy import evaluate_policy, write_report
    from rewardbridge.training.metrics import read_metrics
    from rewardbridge.training.plot import plot_metrics
    from rewardbridge.training.rl import load_training_examples, train
    from rewardbridge.verifiers.registry import build_verifier

    start = time.perf_counter()
    out = Path(config.training.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.training.torch_threads:
        import torch

        torch.set_num_threads(config.training.torch_threads)
    _, heldout = load_training_examples(config)
    verifier = build_verifier(config.verifier.name, **config.verifier.options)
    try:
        log.info("held-out accuracy before training (%d questions)", len(heldout))
        before = evaluate_policy(
            config.model.policy,
            heldout,
            verifier,
            max_new_tokens=eval_tokens,
            output=out / "eval_before.jsonl",
            progress=True,
        )
        write_report(before, out / "eval_before", title="before training")
        result = train(config, verifier=verifier)
        log.info("held-out accuracy after training")
        after = evaluate_policy(
            result.final_model,
            heldout,
            verifier,
            max_new_tokens=eval_tokens,
            output=out / "eval_after.jsonl",
            progress=True,
        )
        write_report(after, out / "eval_after", title="after training")
    finally:
        verifier.close()
    rows = read_metrics(result.metrics_path)
    b, a = before.overall.as_dict(), after.overall.as_dict()
    lines = {}
    if b["mean_score"] is not None and a["mean_score"] is not None:
        lines = {
            f"held-out score before {b['mean_score']:.3f}": b["mean_score"],
            f"after {a['mean_score']:.3f}": a["mean_score"],
        }
    plot = plot_metrics(
        rows,
        out / "curves.png",
        title=f"quickstart demo: RLOO + {verifier.name}",
        extra_lines=lines,
    )
    demo = DemoResult(
        before=b,
        after=a,
        reward_first=_window_mean(rows, True),
        reward_last=_window_mean(rows, False),
        steps=result.global_step,
        seconds=time.perf_counter() - start,
        plot=plot,
        summary=out / "demo_summary.json",
    )
    summary = {
        "verifier": verifier.name,
        "rule_check": before.rule_verifier,
        "heldout_questions": len(heldout),
        "steps": demo.steps,
        "reward_first5": demo.reward_first,
        "reward_last5": demo.reward_last,
        "before": b,
        "after": a,
        "seconds": round(demo.seconds, 1),
        "plot": str(plot),
    }
    demo.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return demo


def format_summary(demo: DemoResult, verifier: str) -> str:
    def pct(x: float | None) -> str:
        return "  -  " if x is None else f"{100 * x:5.1f}"

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    b, a = demo.before, demo.after
    return "\n".join(
        [
            f"quickstart demo: {demo.steps} RL steps in {demo.seconds / 60:.1f} min",
            f"training reward ({verifier}), mean of first 5 steps {num(demo.reward_first)} "
            f"-> last 5 steps {num(demo.reward_last)}",
            f"held-out ({b['n']} questions)        before   after",
            f"  {verifier} accuracy %        {pct(b['accuracy'])}   {pct(a['accuracy'])}",
            f"  {verifier} mean score        {num(b['mean_score']):>6}   {num(a['mean_score']):>6}",
            f"  rule check (contains) %  {pct(b['rule_accuracy'])}   {pct(a['rule_accuracy'])}",
            f"  unjudged                 {b['unjudged']:5d}   {a['unjudged']:5d}",
            f"curves: {demo.plot}",
            f"summary: {demo.summary}",
        ]
    )
