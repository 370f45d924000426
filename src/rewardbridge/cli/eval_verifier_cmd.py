"""``rewardbridge eval-verifier --input LABELED --verifier ... --report DIR``: can this verifier
be trusted? Agreement with labels and with a second verifier, calibration, coverage."""

from __future__ import annotations

import argparse

from rewardbridge.cli import CLIError
from rewardbridge.cli.verifier_args import (
    add_verifier_arguments,
    verifier_from_args,
    verifier_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-verifier",
        help="accuracy, F1, Cohen's kappa, calibration (ECE) of a verifier on labeled data",
        description=(
            "Judge every labeled (question, reference, response) record of --input and report "
            "accuracy, precision, recall, F1, Cohen's kappa, the confusion matrix, ECE with a "
            "reliability diagram, per-domain metrics and coverage (unjudged items are counted "
            "and left out of the metrics). With --against-verifier, also Cohen's kappa between "
            "the two verifiers. Writes report.json, report.md and reliability.png to --report; "
            "judgments are appended to DIR/judgments*.jsonl, so a rerun resumes."
        ),
    )
    p.add_argument("--input", required=True, help="labeled records (label/is_correct field)")
    p.add_argument("--report", required=True, help="output folder")
    p.add_argument("--fields", help="source field names, e.g. response=output,label=correct")
    p.add_argument("--limit", type=int, help="use only the first N records")
    p.add_argument("--threshold", type=float, default=0.5, help="YES when score >= this")
    p.add_argument("--bins", type=int, default=10, help="calibration bins (equal width)")
    p.add_argument("--batch-size", type=int, default=32, help="items per verify() call")
    add_verifier_arguments(p)
    add_verifier_arguments(p, prefix="against-", default=None)
    p.set_defaults(func=_eval_verifier)


def _describe(args: argparse.Namespace, prefix: str = "") -> tuple[str, dict[str, object]]:
    name, options = verifier_options(args, prefix=prefix)
    return name, {k: v for k, v in options.items() if k != "api_key"}


def _eval_verifier(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from rewardbridge.data.loaders import FieldMap, load_judge_items
    from rewardbridge.evaluation.agreement import verifier_report
    from rewardbridge.evaluation.judging import judge_to_file
    from rewardbridge.evaluation.reports import write_eval_report
    from rewardbridge.verifiers.base import VerifierResult

    if not 0.0 <= args.threshold <= 1.0:
        raise CLIError("--threshold must be in [0, 1]")
    items = load_judge_items(args.input, fields=FieldMap.parse(args.fields), limit=args.limit)
    if not items:
        raise CLIError(f"{args.input}: no records")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):  # ids key the resumable judgments: make repeats unique
        from dataclasses import replace

        items = [replace(item, id=f"{i}:{item.id}") for i, item in enumerate(items)]
    report_dir = Path(args.report)

    def run(prefix: str, filename: str) -> list[VerifierResult]:
        name, options = _describe(args, prefix)
        verifier = verifier_from_args(args, prefix=prefix)
        bar = tqdm(total=len(items), desc=f"judging ({name})", unit="item")
        try:
            return judge_to_file(
                verifier,
                items,
                report_dir / filename,
                meta={"verifier": name, "options": options, "input": str(args.input)},
                batch_size=args.batch_size,
                progress=bar.update,
            )
        finally:
            bar.close()
            verifier.close()

    results = run("", "judgments.jsonl")
    against = run("against-", "judgments.against.jsonl") if args.against_verifier else None
    report = verifier_report(
        items, results, threshold=args.threshold, n_bins=args.bins, against=against
    )
    name, options = _describe(args)
    report["verifier"] = " ".join([name, *(f"{k}={v}" for k, v in options.items())])
    report["input"] = str(args.input)
    if against is not None:
        a_name, a_options = _describe(args, "against-")
        report["against_verifier"] = " ".join([a_name, *(f"{k}={v}" for k, v in a_options.items())])
    paths = write_eval_report(report, report_dir)
    cov = report["coverage"]

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(
        f"judged {cov['judged']}/{cov['items']}; accuracy {show(report['accuracy'])}, "
        f"F1 {show(report['f1'])}, kappa {show(report['kappa'])}, ECE {show(report['ece'])}"
        + (f"; kappa vs second verifier {show(report['against']['kappa'])}" if against else "")
    )
    print(f"report: {paths['md']}")
    return 0
