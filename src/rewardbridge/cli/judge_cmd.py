"""``rewardbridge judge INPUT --output OUT``: judge a file of responses, resumably."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from rewardbridge.cli.verifier_args import (
    add_verifier_arguments,
    verifier_from_args,
    verifier_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a file of (question, reference, response) records; streams and resumes",
        description=(
            "Judge every record of INPUT (.jsonl, .json, .parquet or a saved Hugging Face "
            "dataset folder) and append one JSON line per record to OUT. Rerunning with the "
            "same OUT judges only what is missing."
        ),
    )
    p.add_argument("input", help="records with question, reference and response fields")
    p.add_argument("-o", "--output", required=True, help="JSONL results (appended; resumed)")
    p.add_argument(
        "--batch-size", type=int, default=64, help="items per verify() call and per write"
    )
    p.add_argument(
        "--fields",
        help="source field names, e.g. question=prompt,reference=answer,response=output "
        "(targets: id, question, reference, response, label, domain, system_prompt)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="log and skip bad rows, duplicate ids and bad lines of OUT instead of stopping at "
        "the first",
    )
    p.add_argument(
        "--with-text",
        action="store_true",
        help="also write each record's question, reference and response (what `distill train` "
        "and `eval-verifier --against-verifier` read)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="judge again the records of OUT that failed with timeout or backend_error (a "
        "judge server that was down); each id still appears once",
    )
    p.add_argument("--limit", type=int, help="consider only the first N input records")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verifier_arguments(p)
    p.set_defaults(func=_judge)


def _judge(args: argparse.Namespace) -> int:
    from rewardbridge.data.loaders import FieldMap
    from rewardbridge.judging.run import judge_file, judgment_meta

    fields = FieldMap.parse(args.fields)
    name, options = verifier_options(args)
    meta = judgment_meta(name, options)
    verifier = verifier_from_args(args)
    # `kill` stops like Ctrl-C: the summary is written (complete: false) and the rerun resumes.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = judge_file(
            args.input,
            args.output,
            verifier,
            batch_size=args.batch_size,
            fields=fields,
            skip_invalid=args.skip_invalid,
            limit=args.limit,
            progress=not args.no_progress,
            text=args.with_text,
            meta=meta,
            retry_failed=args.retry_failed,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        verifier.close()
    print(summary.table())
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
