"""``rewardbridge train``: RL training of a policy against a verifier (TRL GRPOTrainer + our
reward and advantage estimator). Any recipe field can be overridden: ``--training.max_steps 2``.
Exit code 3: the live canaries stopped the run (``canaries.on_exceed: stop``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="RL training against a verifier (REINFORCE, RLOO, REINFORCE++, GRPO on TRL)",
        description=__doc__,
        epilog="Example: rewardbridge train --config recipes/quickstart-cpu.yaml --max-steps 2 "
        "--generation.max_completion_length 16",
    )
    p.add_argument("--config", type=Path, default=None, help="YAML recipe (default: all defaults)")
    p.add_argument("--output-dir", default=None, help="= --training.output_dir")
    p.add_argument("--max-steps", type=int, default=None, help="= --training.max_steps")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--record-judgments",
        metavar="FILE",
        default=None,
        help="append every judgment to FILE as distillation records (= --logging.record_judgments)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace, overrides: list[str] | None = None) -> int:
    from rewardbridge.training.config import load_config

    extra = list(overrides if overrides is not None else getattr(args, "overrides", []))
    if args.output_dir is not None:
        extra += ["--training.output_dir", args.output_dir]
    if args.max_steps is not None:
        extra += ["--training.max_steps", str(args.max_steps)]
    if args.record_judgments is not None:
        extra += ["--logging.record_judgments", args.record_judgments]
    config = load_config(args.config, extra)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from rewardbridge.training.rl import train

    result = train(config, resume=args.resume)
    print(
        json.dumps(
            {
                "output_dir": str(result.output_dir),
                "final_model": str(result.final_model),
                "metrics": str(result.metrics_path),
                "steps": result.global_step,
                "stopped_by_canaries": result.stopped_by_canaries,
            }
        )
    )
    return 3 if result.stopped_by_canaries else 0
