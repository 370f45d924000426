"""Verifier options shared by every command that judges (judge, serve, eval-verifier, audit,
evaluate, distill). Only options the user set are passed on, so a verifier that does not take
one says so by name."""

from __future__ import annotations

import argparse
from typing import Any

from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.registry import available_verifiers, build_verifier

# CLI flag dest -> verifier constructor keyword
_OPTION_FLAGS: dict[str, str] = {
    "model": "model",
    "base_url": "base_url",
    "api_key": "api_key",
    "served_model": "served_model",
    "reward": "reward",
    "template": "template",
    "response_slot": "response_slot",
    "device": "device",
    "verifier_batch_size": "batch_size",
    "prefix_sharing": "prefix_sharing",
    "constrained": "constrained",
    "rule": "rule",
    "timeout": "timeout",
    "workers": "workers",
    "max_concurrency": "max_concurrency",
    "url": "url",
}


def add_verifier_arguments(
    parser: argparse.ArgumentParser, *, prefix: str = "", default: str | None = "contains"
) -> None:
    """Add --verifier and its options. ``prefix`` (e.g. "against-") makes a second set."""
    dest = prefix.replace("-", "_")
    g = parser.add_argument_group(f"{prefix}verifier" if prefix else "verifier")
    names = ", ".join(available_verifiers())
    g.add_argument(
        f"--{prefix}verifier",
        dest=f"{dest}verifier",
        default=default,
        help=f"verifier name ({names}); default: %(default)s",
    )
    g.add_argument(
        f"--{prefix}model",
        dest=f"{dest}model",
        help="generative: local model folder or hub id (default: embedded SmolLM2-135M)",
    )
    g.add_argument(
        f"--{prefix}base-url",
        dest=f"{dest}base_url",
        action="append",
        help="generative: OpenAI-compatible server URL (vLLM, SGLang); repeatable",
    )
    g.add_argument(f"--{prefix}api-key", dest=f"{dest}api_key", help="generative: API key")
    g.add_argument(
        f"--{prefix}served-model",
        dest=f"{dest}served_model",
        help="generative: model name on the server",
    )
    g.add_argument(
        f"--{prefix}reward",
        dest=f"{dest}reward",
        choices=["binary", "soft", "soft-normalized"],
        help="generative: reward read from the judgment (paper Eq. 3 / Eq. 4)",
    )
    g.add_argument(
        f"--{prefix}template",
        dest=f"{dest}template",
        help="generative: judge template name or file",
    )
    g.add_argument(
        f"--{prefix}response-slot",
        dest=f"{dest}response_slot",
        choices=["final_step", "full"],
        help="generative: what goes in the response slot",
    )
    g.add_argument(f"--{prefix}device", dest=f"{dest}device", help="generative: cpu, cuda, cuda:1")
    g.add_argument(
        f"--{prefix}verifier-batch-size",
        dest=f"{dest}verifier_batch_size",
        type=int,
        help="generative: items per model batch",
    )
    g.add_argument(
        f"--{prefix}prefix-sharing",
        dest=f"{dest}prefix_sharing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="generative (local): share the KV cache of the common prompt prefix",
    )
    g.add_argument(
        f"--{prefix}constrained",
        dest=f"{dest}constrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="generative: restrict the judgment to YES/NO (default on); --no-constrained "
        "leaves a first token that is neither unjudged",
    )
    g.add_argument(
        f"--{prefix}rule",
        dest=f"{dest}rule",
        help="cascade: the rule verifier to run first (default: math)",
    )
    g.add_argument(
        f"--{prefix}timeout",
        dest=f"{dest}timeout",
        type=float,
        help="seconds per item (math) or per request (openai, remote)",
    )
    g.add_argument(
        f"--{prefix}workers",
        dest=f"{dest}workers",
        type=int,
        help="math: processes in the pool (default: all cores)",
    )
    g.add_argument(
        f"--{prefix}max-concurrency",
        dest=f"{dest}max_concurrency",
        type=int,
        help="openai/remote: concurrent requests",
    )
    g.add_argument(f"--{prefix}url", dest=f"{dest}url", help="remote: reward server URL")


def verifier_options(args: argparse.Namespace, *, prefix: str = "") -> tuple[str, dict[str, Any]]:
    dest = prefix.replace("-", "_")
    name = getattr(args, f"{dest}verifier")
    options = {
        kw: getattr(args, f"{dest}{flag}")
        for flag, kw in _OPTION_FLAGS.items()
        if getattr(args, f"{dest}{flag}", None) is not None
    }
    return name, options


def verifier_from_args(args: argparse.Namespace, *, prefix: str = "") -> Verifier:
    name, options = verifier_options(args, prefix=prefix)
    return build_verifier(name, **options)
