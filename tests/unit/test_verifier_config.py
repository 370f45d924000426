"""Typed verifier configs (verifiers/config.py) and what is generated from them: the registry's
validation, the CLI flags of every judging command."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import MISSING, fields

import pytest

from rewardbridge.cli.verifier_args import add_verifier_arguments, verifier_from_args
from rewardbridge.verifiers.config import (
    CascadeConfig,
    ContainsConfig,
    GenerativeConfig,
    OptionError,
    RemoteConfig,
)
from rewardbridge.verifiers.registry import (
    build_verifier,
    verifier_class,
    verifier_config,
    verifier_configs,
)

# Constructor defaults that say "the backend's default" where the config names it.
BACKEND_DEFAULTS = {("generative", "dtype"): None, ("cascade", "dtype"): None}


@pytest.mark.parametrize("name", list(verifier_configs()))
def test_config_fields_are_the_constructor_keywords_with_the_same_defaults(name: str) -> None:
    params = dict(inspect.signature(verifier_class(name)).parameters)
    params.pop("judge", None)  # cascade: a ready verifier, not an option
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):  # cascade
        params = {k: p for k, p in params.items() if p.kind is not p.VAR_KEYWORD}
        params |= dict(inspect.signature(verifier_class("generative")).parameters)
    for f in fields(verifier_config(name)):
        assert f.name in params, f"{name}.{f.name} is not a constructor keyword"
        expected = BACKEND_DEFAULTS.get((name, f.name), f.default)
        default = params[f.name].default
        assert (default is inspect.Parameter.empty) == (f.default is MISSING), f.name
        if f.default is not MISSING:
            assert default == expected, f"{name}.{f.name}: {default!r} != {expected!r}"
    assert set(params) == {f.name for f in fields(verifier_config(name))}


def test_every_field_has_help() -> None:
    for config in verifier_configs().values():
        assert config.__doc__
        for f in fields(config):
            assert f.metadata.get("help"), f"{config.__name__}.{f.name}"


def test_values_are_checked_and_errors_name_the_field() -> None:
    with pytest.raises(OptionError, match=r"generative\.batch_size=0: must be >= 1"):
        GenerativeConfig(batch_size=0)
    with pytest.raises(OptionError, match=r"contains\.match='word'"):
        ContainsConfig(match="word")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=r"generative\.sample='yes': expected bool"):
        GenerativeConfig(sample="yes")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=r"remote\.url"):
        RemoteConfig(url="localhost:8000")
    with pytest.raises(OptionError, match=r"cascade\.workers.*math rule only"):
        CascadeConfig(rule="contains", workers=2)
    assert GenerativeConfig(timeout=3).timeout == 3.0  # int -> float
    assert GenerativeConfig(base_url=["a", "b"]).base_url == ("a", "b")  # type: ignore[arg-type]


def test_build_verifier_validates_through_the_config() -> None:
    with pytest.raises(OptionError, match=r"does not take option.*nope"):
        build_verifier("contains", nope=1)
    with pytest.raises(OptionError, match=r"math\.timeout=-1"):
        build_verifier("math", timeout=-1)
    with pytest.raises(OptionError, match=r"remote\.url=None: required"):
        build_verifier("remote")
    assert build_verifier("contains", response_slot="answer").response_slot == "answer"  # type: ignore[attr-defined]


def parse(argv: list[str], **kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int)  # a command's own flag, like judge's
    add_verifier_arguments(parser, **kw)  # type: ignore[arg-type]
    add_verifier_arguments(parser, prefix="against-", default=None)
    return parser.parse_args(argv)


def test_response_slot_flag_selects_the_rules_answer_slot() -> None:
    verifier = verifier_from_args(parse(["--verifier", "jaccard", "--response-slot", "answer"]))
    assert verifier.response_slot == "answer"  # type: ignore[attr-defined]


def test_flags_keep_apart_from_the_commands_own_and_from_a_prefixed_set() -> None:
    args = parse(
        ["--batch-size", "64", "--verifier", "math", "--workers", "0", "--timeout", "2",
         "--against-verifier", "contains", "--against-match", "substring"]
    )  # fmt: skip
    assert args.batch_size == 64
    ours, theirs = verifier_from_args(args), verifier_from_args(args, prefix="against-")
    assert (ours.workers, ours.timeout) == (0, 2.0)  # type: ignore[attr-defined]
    assert theirs.match == "substring"  # type: ignore[attr-defined]
    ours.close()


def test_a_flag_the_verifier_does_not_take_is_named() -> None:
    with pytest.raises(ValueError, match=r"--workers do\(es\) not apply to verifier 'contains'"):
        verifier_from_args(parse(["--workers", "2"]))
    with pytest.raises(ValueError, match=r"--verifier-batch-size 0: must be >= 1"):
        verifier_from_args(parse(["--verifier", "generative", "--verifier-batch-size", "0"]))


def test_booleans_and_repeatable_urls() -> None:
    args = parse(
        ["--verifier", "cascade", "--rule", "contains", "--no-constrained", "--base-url", "http://a",
         "--base-url", "http://b", "--on-judge-failure", "rule"]
    )  # fmt: skip
    cascade = verifier_from_args(args)
    assert cascade.judge_options == {  # type: ignore[attr-defined]
        "constrained": False,
        "base_url": ("http://a", "http://b"),
    }
    assert cascade.on_judge_failure == "rule"  # type: ignore[attr-defined]
