"""``rewardbridge demo``: the quickstart on the embedded defaults. Held-out accuracy of the
embedded SmolLM2-135M policy, a short RLOO run (LoRA) against the verifier, held-out accuracy
again (training verifier and an independent rule check), and the reward curve as PNG.
About 10 minutes on a 2-core CPU."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="quickstart: a short RL run with before/after accuracy", description=__doc__
    )
    p.add_argument("--output-dir", type=Path, default=Path("runs/demo"))
    p.add_argument("--steps", type=int, default=20, help="RL steps (default: %(default)s)")
    p.add_argument("--holdout", type=int, default=16, help="held-out questions evaluated")
    p.add_argument("--eval-tokens", type=int, default=48, help="max new tokens when evaluating")
    p.add_argument(
        "--verifier",
        default="jaccard",
        help="training verifier (default: jaccard, the paper's rule-based soft reward; "
        "generative or cascade use the embedded 135M judge)",
    )
    p.add_argument("--policy", default="default", help="policy model (default: embedded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewardbridge.training.demo import demo_config, format_summary, run_demo

    if args.steps < 1 or args.holdout < 1:
        raise ValueError("--steps and --holdout must be >= 1")
    config = demo_config(
        args.output_dir,
        steps=args.steps,
        verifier=args.verifier,
        holdout=args.holdout,
        policy=args.policy,
    )
    demo = run_demo(config, eval_tokens=args.eval_tokens)
    print(format_summary(demo, args.verifier))
    return 0
