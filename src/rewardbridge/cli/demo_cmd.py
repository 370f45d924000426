"""``rewardbridge demo``: the quickstart. The recipe recipes/quickstart-cpu.yaml on the embedded
SmolLM2-135M policy: held-out accuracy before (greedy), a short RLOO run (LoRA) against the
recipe's verifier, held-out accuracy after, with a paired bootstrap 95% interval of the gain,
the training verifier's and the rule check's accuracy, the answer-format rate and the reward
curve. Writes demo_summary.json, demo_report.md and curves.png. 2-3 minutes on a 2-core CPU
with bf16 (AMX), longer in fp32; run from the repository root (the recipe and its data path
are relative to it)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="quickstart: a short RL run with held-out accuracy before/after",
        description=__doc__,
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("recipes/quickstart-cpu.yaml"),
        help="the recipe (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="training seed and held-out split (default: the recipe's)",
    )
    p.add_argument(
        "--output-dir", type=Path, default=None, help="default: the recipe's training.output_dir"
    )
    p.set_defaults(func=run, accepts_overrides=True)  # --section.key VALUE


def run(args: argparse.Namespace) -> int:
    from rewardbridge.experiments.demo import demo_config, format_summary, run_demo

    if not args.config.exists():
        raise FileNotFoundError(
            f"{args.config}: no such recipe; run from the repository root (make demo) or pass "
            "--config"
        )
    config = demo_config(
        args.config,
        seed=args.seed,
        output_dir=args.output_dir,
        overrides=getattr(args, "overrides", []),
    )
    demo = run_demo(config, recipe=args.config)
    print(format_summary(demo.summary))
    print(f"summary: {demo.summary_path}\nreport: {demo.report_path}\ncurves: {demo.plot_path}")
    return 0
