"""Verifier flags shared by every command that judges (judge, serve, eval-verifier, audit,
evaluate, distill), generated from the typed verifier configs (``verifiers/config.py``).

One flag per option name over all verifiers (``--response-slot`` serves contains, jaccard, math,
generative and cascade); its help lists which verifiers take it and their defaults. Every flag
defaults to "not given", so only what the user set reaches the verifier, and a flag the chosen
verifier does not take is an error that names it.

Why not ``transformers.HfArgumentParser``: it makes one flag per field of each dataclass, so the
seven configs' shared names (``timeout``, ``response_slot``...) would collide; it has no flag
prefix (``--against-*``, ``--teacher-*``); and it imports transformers, seconds before any
``--help``. The configs keep its conventions (frozen dataclasses, ``metadata={"help": ...}``).
"""

from __future__ import annotations

import argparse
import types
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.config import OptionError
from rewardbridge.verifiers.registry import build_verifier, verifier_config, verifier_configs


@dataclass
class _Flag:
    """A CLI flag for one option name, with what each verifier that takes it says."""

    name: str
    flag: str
    hint: tuple[Any, ...]
    uses: dict[str, tuple[str, Any]] = field(default_factory=dict)  # verifier -> (help, default)

    def help(self) -> str:
        by_text: dict[str, dict[str, Any]] = {}  # help text -> verifier -> default
        for verifier, (text, default) in self.uses.items():
            by_text.setdefault(text, {})[verifier] = default
        return "; ".join(
            f"{', '.join(defaults)}: {text}{_defaults_text(defaults)}"
            for text, defaults in by_text.items()
        )


def _defaults_text(defaults: dict[str, Any]) -> str:
    """ " (default: X)", or " (default: X; math: Y)" where the verifiers differ."""
    shown = {v: "required" if d is MISSING else d for v, d in defaults.items() if d is not None}
    if not shown:
        return ""
    values = list(dict.fromkeys(shown.values()))
    if len(values) == 1 and len(shown) == len(defaults):
        return f" (default: {values[0]})"
    first, *others = values
    parts = [f"{first}"] + [
        f"{', '.join(v for v, d in shown.items() if d == value)}: {value}" for value in others
    ]
    return f" (default: {'; '.join(parts)})"


def _flags() -> dict[str, _Flag]:
    """Option name -> flag, over every verifier's config, in registry and field order."""
    table: dict[str, _Flag] = {}
    for verifier, config in verifier_configs().items():
        hints = get_type_hints(config)
        for f in fields(config):
            if not f.metadata.get("cli", True):
                continue
            hint = _not_none(hints[f.name])
            flag = table.setdefault(
                f.name, _Flag(f.name, f.metadata.get("flag") or f.name.replace("_", "-"), hint)
            )
            if flag.hint != hint:
                raise TypeError(
                    f"option {f.name!r} has type {hint} in {verifier} but {flag.hint} "
                    f"in {', '.join(flag.uses)}: one flag cannot serve both"
                )
            flag.uses[verifier] = (f.metadata["help"], f.default)
    return table


def _not_none(hint: Any) -> tuple[Any, ...]:
    """The types of a field other than None (a flag that is not given is None)."""
    union = get_origin(hint) in (Union, types.UnionType)
    return tuple(t for t in (get_args(hint) if union else (hint,)) if t is not type(None))


def _argparse_kwargs(types_: tuple[Any, ...], *, metavar: str) -> dict[str, Any]:
    """How argparse reads a value of a field of these types."""
    if any(get_origin(t) is tuple for t in types_):  # str | tuple[str, ...]: repeatable
        return {"action": "append", "metavar": metavar}
    (target,) = types_
    if get_origin(target) is Literal:
        return {"choices": list(get_args(target))}
    if target is bool:
        return {"action": argparse.BooleanOptionalAction}
    if target in (int, float, str):
        return {"type": target, "metavar": metavar}
    raise TypeError(f"no CLI flag for type {target}")


def add_verifier_arguments(
    parser: argparse.ArgumentParser, *, prefix: str = "", default: str | None = "contains"
) -> None:
    """Add --verifier and its options. ``prefix`` (e.g. "against-") makes a second set."""
    dest = prefix.replace("-", "_")
    group = parser.add_argument_group(f"{prefix}verifier" if prefix else "verifier")
    names = ", ".join(verifier_configs())
    group.add_argument(
        f"--{prefix}verifier",
        dest=f"{dest}verifier",
        default=default,
        help=f"verifier name ({names}); default: %(default)s",
    )
    for flag in _flags().values():
        group.add_argument(
            f"--{prefix}{flag.flag}",
            dest=f"{dest}verifier_{flag.name}",  # apart from the command's own dests
            default=None,
            help=flag.help().replace("%", "%%"),
            **_argparse_kwargs(flag.hint, metavar=flag.name.upper()),
        )


def verifier_options(args: argparse.Namespace, *, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """The chosen verifier's name and the options the user set (config field names)."""
    dest = prefix.replace("-", "_")
    name = getattr(args, f"{dest}verifier")
    options = {
        option: getattr(args, f"{dest}verifier_{option}")
        for option in _flags()
        if getattr(args, f"{dest}verifier_{option}", None) is not None
    }
    return name, options


def verifier_from_args(args: argparse.Namespace, *, prefix: str = "") -> Verifier:
    """Build the verifier the flags describe; a wrong or foreign flag names itself."""
    name, options = verifier_options(args, prefix=prefix)
    flags = _flags()
    taken = {f.name for f in fields(verifier_config(name))}
    foreign = [f"--{prefix}{flags[o].flag}" for o in options if o not in taken]
    if foreign:
        takes = [f"--{prefix}{flags[o].flag}" for o in flags if o in taken]
        raise ValueError(
            f"{', '.join(foreign)} do(es) not apply to verifier {name!r} "
            f"(it takes: {', '.join(takes) or 'no options'})"
        )
    try:
        return build_verifier(name, **options)
    except OptionError as exc:
        flag = f"--{prefix}{flags[exc.option].flag}" if exc.option in flags else exc.option
        raise ValueError(f"{flag} {exc.value!r}: {exc.what}") from None
