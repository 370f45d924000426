"""``rewardbridge plot RUN_DIR``: training curves (reward, std-0 groups, KL, length, time split)
from RUN_DIR/metrics.jsonl as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot", help="draw a training run's curves as PNG", description=__doc__
    )
    p.add_argument("run_dir", type=Path, help="a training output folder (holds metrics.jsonl)")
    p.add_argument(
        "--output", type=Path, default=None, help="PNG path (default: RUN_DIR/curves.png)"
    )
    p.add_argument("--window", type=int, default=5, help="moving-average window for the reward")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewardbridge.training.plot import plot_run

    if not (args.run_dir / "metrics.jsonl").exists():
        raise FileNotFoundError(
            f"{args.run_dir / 'metrics.jsonl'}: no such file (not a run folder?)"
        )
    print(plot_run(args.run_dir, args.output, window=args.window))
    return 0
