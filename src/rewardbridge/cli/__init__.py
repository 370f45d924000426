"""The ``rewardbridge`` command. Each subcommand lives in its own module of this package and
exposes ``register(subparsers)``; handlers take the parsed args and return an exit code.
The CLI only parses, calls the library, and turns known errors into one-line messages.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence


def _command_modules() -> list[str]:
    """Every ``*_cmd`` module of this package, in name order. Modules import heavy extras lazily
    (inside handlers), so --help works on a core install."""
    import pkgutil

    here = __path__
    return sorted(
        f"{__name__}.{m.name}" for m in pkgutil.iter_modules(here) if m.name.endswith("_cmd")
    )


class CLIError(Exception):
    """An error with a message for the user; exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from rewardbridge import __version__

    parser = argparse.ArgumentParser(
        prog="rewardbridge",
        description="Generative verifiers and RL with verifiable rewards beyond math and code.",
    )
    parser.add_argument("--version", action="version", version=f"rewardbridge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _command_modules():
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # only commands that take free-form overrides (train: --section.key VALUE)
        if not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = unknown
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("rewardbridge").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from rewardbridge.data.loaders import DataError
    from rewardbridge.models import ModelError

    try:
        return int(args.func(args) or 0)
    except (CLIError, DataError, ModelError, ValueError, FileNotFoundError) as exc:
        print(f"rewardbridge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; partial results are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
