"""``rewardbridge prompt``: print the judge conversation for one item as JSON."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from rewardbridge.verifiers.prompts import available_templates
    from rewardbridge.verifiers.text import RESPONSE_SLOTS

    names = ", ".join(available_templates())
    parser = subparsers.add_parser(
        "prompt",
        help="show the judge prompt (chat messages) for a question, reference and response",
        description="Print the judge's chat messages for one item as JSON: what the generative "
        "verifier sends to the model before the chat template is applied.",
    )
    parser.add_argument("--question", required=True, help="the user question")
    parser.add_argument("--reference", required=True, help="the reference answer")
    parser.add_argument("--response", required=True, help="the response to judge")
    parser.add_argument(
        "--template", default="paper", help=f"built-in ({names}) or a file; default: %(default)s"
    )
    parser.add_argument(
        "--response-slot",
        choices=RESPONSE_SLOTS,
        default="final_step",
        help="final_step (the last non-empty line, paper) or full; default: %(default)s",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewardbridge.verifiers.prompts import render_judge_messages

    messages = render_judge_messages(
        args.question,
        args.reference,
        args.response,
        template=args.template,
        response_slot=args.response_slot,
    )
    print(json.dumps(messages, ensure_ascii=False, indent=2))
    return 0
