"""``rewardbridge models prepare|list``."""

from __future__ import annotations

import argparse

from rewardbridge import models


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="prepare and list local models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    prep = msub.add_parser("prepare", help="convert the embedded SmolLM2-135M-Instruct GGUF once")
    prep.add_argument("--force", action="store_true", help="rebuild even if prepared")
    prep.set_defaults(func=_prepare)
    lst = msub.add_parser("list", help="show prepared models")
    lst.set_defaults(func=_list)


def _prepare(args: argparse.Namespace) -> int:
    path = models.prepare_default_model(force=args.force)
    print(path)
    return 0


def _list(args: argparse.Namespace) -> int:
    prepared = models.list_prepared()
    if not prepared:
        print(f"no prepared models in {models.models_dir()} (run: rewardbridge models prepare)")
        return 0
    for m in prepared:
        print(f"{m.name}\t{m.size_mb:.0f} MB\t{m.path}")
    return 0
