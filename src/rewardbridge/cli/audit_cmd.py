"""``rewardbridge audit --verifier ... --report DIR``: the master-key probe of reward hacking."""

from __future__ import annotations

import argparse
from typing import Any

from rewardbridge.cli import CLIError
from rewardbridge.cli.verifier_args import (
    add_verifier_arguments,
    verifier_from_args,
    verifier_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="master-key audit: how often the verifier says YES to non-answers",
        description=(
            "Put each master key (' ', '.', 'Thought process:', ...) and its variants (other "
            "casing, a trailing newline, after 'Therefore, the answer is') in the response slot "
            "of each question and report the false-positive rate per key and overall, and the "
            "worst cases. The whitespace-only key is not judged by our verifiers and is reported "
            "as 'rejected (not judged)'. Writes audit.json and audit.md to --report."
        ),
    )
    p.add_argument("--questions", help="questions with references (default: the bundled sample)")
    p.add_argument("--fields", help="source field names, e.g. question=prompt,reference=answer")
    p.add_argument("--n-questions", type=int, default=50, help="questions sampled (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="which questions are sampled")
    p.add_argument("--no-variants", action="store_true", help="only the keys as listed")
    p.add_argument("--threshold", type=float, default=0.5, help="YES when score >= this")
    p.add_argument("--batch-size", type=int, default=32, help="items per verify() call")
    p.add_argument("--report", default="audit-report", help="output folder")
    add_verifier_arguments(p)
    p.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from rewardbridge.data.loaders import FieldMap, load_examples, load_sample_examples
    from rewardbridge.evaluation.audit import run_audit, sample_questions
    from rewardbridge.evaluation.reports import write_audit_report
    from rewardbridge.judging.run import judgment_meta

    if args.n_questions < 1:
        raise CLIError("--n-questions must be >= 1")
    examples = (
        load_examples(args.questions, fields=FieldMap.parse(args.fields))
        if args.questions
        else load_sample_examples()
    )
    examples = sample_questions(examples, args.n_questions, seed=args.seed)
    name, options = verifier_options(args)
    options = {k: v for k, v in options.items() if k != "api_key"}
    bars: list[Any] = []

    def progress(total: int) -> Any:
        bars.append(tqdm(total=total, desc=f"audit ({name})", unit="item"))
        return bars[-1].update

    verifier = verifier_from_args(args)
    try:
        audit = run_audit(
            verifier,
            examples,
            variants=not args.no_variants,
            threshold=args.threshold,
            judgments=Path(args.report) / "judgments.jsonl",
            meta={**judgment_meta(name, options), "questions": args.questions},
            batch_size=args.batch_size,
            progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
        verifier.close()
    audit["verifier"] = " ".join([name, *(f"{k}={v}" for k, v in options.items())])
    paths = write_audit_report(audit, args.report)
    o = audit["overall"]
    fpr = "n/a" if o["fpr"] is None else f"{100 * o['fpr']:.1f}%"
    print(
        f"false-positive rate {fpr} ({o['false_positives']}/{o['judged']} judged; "
        f"{o['rejected_not_judged']} rejected as empty, not judged) over {len(examples)} questions"
    )
    print(f"report: {paths['md']}")
    return 0
