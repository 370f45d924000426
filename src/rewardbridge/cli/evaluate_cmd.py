"""``rewardbridge evaluate``: a policy's accuracy per domain on a test set, judged as in the paper
(final step, one judgment each) with a rule check beside it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rewardbridge.cli.verifier_args import add_verifier_arguments, verifier_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="policy accuracy per domain on a test set (verifier + rule check)",
        description=__doc__,
    )
    p.add_argument(
        "--policy",
        default=None,
        help="policy model folder, hub id or checkpoint (default: embedded SmolLM2-135M)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="test set (.jsonl/.json/.parquet/HF folder); default: the bundled sample",
    )
    p.add_argument(
        "--fields", default=None, help="field map, e.g. question=prompt,reference=answer"
    )
    p.add_argument("--limit", type=int, default=None, help="first N examples only")
    p.add_argument(
        "--rule-verifier",
        default="contains",
        help="independent rule check reported beside the verifier (default: contains)",
    )
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="per-sample judged-item records (JSONL), written as they come; a rerun resumes",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip and count bad lines of --output instead of stopping at the first",
    )
    p.add_argument(
        "--report", type=Path, default=None, help="folder for summary.json and summary.md"
    )
    add_verifier_arguments(p, default="contains")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewardbridge.data.loaders import FieldMap, load_examples, load_sample_examples
    from rewardbridge.evaluation.policy import evaluate_policy, write_report

    fields = FieldMap.parse(args.fields) if args.fields else None
    if args.data is None:
        examples = load_sample_examples(limit=args.limit)
    else:
        examples = load_examples(args.data, fields=fields, limit=args.limit)
    verifier = verifier_from_args(args)
    try:
        report = evaluate_policy(
            args.policy,
            examples,
            verifier,
            rule_verifier=args.rule_verifier,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            temperature=args.temperature,
            output=args.output,
            skip_invalid=args.skip_invalid,
            progress=True,
        )
    finally:
        verifier.close()
    if args.report is not None:
        write_report(report, args.report, title=str(args.policy or "embedded default"))
    print(report.to_markdown())
    print(json.dumps(report.to_dict()["domains"]["all"]))
    return 0
