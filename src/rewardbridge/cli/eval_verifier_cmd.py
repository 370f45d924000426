"""``rewardbridge eval-verifier --input LABELED --verifier ... --report DIR``: can this verifier
be trusted? Agreement with labels and with a second verifier, calibration, coverage."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rewardbridge.cli import CLIError
from rewardbridge.cli.verifier_args import (
    add_verifier_arguments,
    verifier_from_args,
    verifier_options,
)

if TYPE_CHECKING:
    from rewardbridge.evaluation.verifier_eval import VerifierSpec


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
    p.add_argument(
        "--input",
        required=True,
        help="labeled records (label/is_correct field), or a `rewardbridge judge` output of "
        "labeled records (then nothing is judged again and --verifier is not used)",
    )
    p.add_argument("--report", required=True, help="output folder")
    p.add_argument("--fields", help="source field names, e.g. response=output,label=correct")
    p.add_argument("--limit", type=int, help="use only the first N records")
    p.add_argument("--threshold", type=float, default=0.5, help="YES when score >= this")
    p.add_argument("--bins", type=int, default=10, help="calibration bins (equal width)")
    p.add_argument("--batch-size", type=int, default=32, help="items per verify() call")
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip and count bad lines of a judgments file instead of stopping at the first",
    )
    add_verifier_arguments(p)
    add_verifier_arguments(p, prefix="against-", default=None)
    p.set_defaults(func=_eval_verifier)


def _spec(args: argparse.Namespace, prefix: str = "") -> VerifierSpec:
    from rewardbridge.evaluation.verifier_eval import VerifierSpec

    name, options = verifier_options(args, prefix=prefix)
    return VerifierSpec(
        name=name,
        options={k: v for k, v in options.items() if k != "api_key"},
        build=lambda: verifier_from_args(args, prefix=prefix),
    )


def _progress(description: str, total: int) -> Callable[[int], Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit="item")

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update


def _eval_verifier(args: argparse.Namespace) -> int:
    from rewardbridge.data.loaders import FieldMap
    from rewardbridge.evaluation.verifier_eval import evaluate_verifier, headline

    if not 0.0 <= args.threshold <= 1.0:
        raise CLIError("--threshold must be in [0, 1]")
    outcome = evaluate_verifier(
        args.input,
        args.report,
        _spec(args),
        against=_spec(args, "against-") if args.against_verifier else None,
        fields=FieldMap.parse(args.fields),
        limit=args.limit,
        threshold=args.threshold,
        n_bins=args.bins,
        batch_size=args.batch_size,
        skip_invalid=args.skip_invalid,
        progress=_progress,
    )
    if outcome.judged_input:
        print(f"{args.input}: already judged by {outcome.report['verifier']}; not judged again")
    print(headline(outcome.report))
    print(f"report: {outcome.paths['md']}")
    return 0
