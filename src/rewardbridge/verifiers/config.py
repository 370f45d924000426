"""Typed verifier configs: one frozen, validated dataclass per verifier.

Every way of setting a verifier's options goes through these classes: ``build_verifier(name,
**options)`` (``registry.py``), the CLI flags (generated from the fields by
``cli/verifier_args.py``, so ``rewardbridge serve`` and every judging command have them), and the
``verifier.options`` of a training recipe (``training/config.py``). A field's ``help`` metadata
is its documentation and its ``--help`` text; a wrong value fails at start with
``OptionError`` naming the verifier and the field (``generative.batch_size=0: must be >= 1``).

A config's fields are its verifier's constructor keywords with the same defaults (a unit test
holds the two together). ``changed()`` gives the fields that differ from their defaults: the
keywords passed on, so a verifier sees exactly what the user set (an option that does not apply
to the chosen backend is warned about only when someone set it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar, get_type_hints

from rewardbridge.config_values import convert
from rewardbridge.verifiers.text import ResponseSlot

C = TypeVar("C", bound="VerifierOptions")

RuleName = Literal["contains", "jaccard", "exact", "math"]
Reward = Literal["binary", "soft", "soft-normalized"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
OnJudgeFailure = Literal["unjudged", "rule"]


class OptionError(ValueError):
    """An invalid verifier option. ``option`` is the field name, ``what`` what is wrong."""

    def __init__(self, verifier: str, option: str, value: Any, what: str) -> None:
        super().__init__(f"{verifier}.{option}={value!r}: {what}")
        self.verifier, self.option, self.value, self.what = verifier, option, value, what


def meta(
    help: str,
    *,
    flag: str | None = None,
    cli: bool = True,
    ge: float | None = None,
    gt: float | None = None,
) -> dict[str, Any]:
    """A config field's metadata. ``help``: its documentation and ``--help`` text. ``flag``: the
    CLI flag when it is not the field name with dashes. ``cli=False``: YAML/Python only.
    ``ge`` / ``gt``: the value must be >= / > this."""
    return {"help": help, "flag": flag, "cli": cli, "ge": ge, "gt": gt}


@dataclass(frozen=True)
class VerifierOptions:
    """Base of the per-verifier configs: type and range checks from the field declarations."""

    verifier: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            value = _checked(self.verifier, f, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)
        self._validate()

    def _validate(self) -> None:
        """Checks across fields, or beyond the type (subclasses)."""

    def fail(self, option: str, what: str) -> OptionError:
        return OptionError(self.verifier, option, getattr(self, option), what)

    @classmethod
    def from_options(cls: type[C], options: Mapping[str, Any]) -> C:
        """A config from keyword options; ``None`` means not given; an unknown name is an
        error that names it and lists the options this verifier takes."""
        given = {k: v for k, v in options.items() if v is not None}
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise OptionError(
                cls.verifier,
                unknown[0],
                options[unknown[0]],
                f"verifier {cls.verifier!r} does not take option(s) {', '.join(unknown)} "
                f"(it takes: {', '.join(known) or 'none'})",
            )
        missing = [f.name for f in fields(cls) if _default(f) is MISSING and f.name not in given]
        if missing:
            raise OptionError(cls.verifier, missing[0], None, "required")
        return cls(**given)

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults (required fields always)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if _default(f) is MISSING or getattr(self, f.name) != _default(f)
        }


def _default(f: Field[Any]) -> Any:
    return f.default if f.default_factory is MISSING else f.default_factory()


def _checked(verifier: str, f: Field[Any], value: Any, hint: Any) -> Any:
    """``value`` as the field's type (int -> float, path -> str, list -> tuple), or OptionError."""

    def fail(what: str) -> OptionError:
        return OptionError(verifier, f.name, value, what)

    try:
        converted = convert(value, hint)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if converted is None:
        return None
    least, above = f.metadata.get("ge"), f.metadata.get("gt")
    if least is not None and converted < least:
        raise fail(f"must be >= {least:g}")
    if above is not None and not converted > above:
        raise fail(f"must be > {above:g}")
    return converted


SLOT_HELP = "the part of the response it reads: final_step (the last non-empty line), full, answer"


@dataclass(frozen=True)
class ContainsConfig(VerifierOptions):
    """paper's rule-based binary reward: the reference occurs in the final step"""

    verifier: ClassVar[str] = "contains"
    response_slot: ResponseSlot = field(default="final_step", metadata=meta(help=SLOT_HELP))
    match: Literal["token", "substring"] = field(
        default="token",
        metadata=meta(help="token: whole tokens only ('5' is not in '15'); substring: the paper's"),
    )


@dataclass(frozen=True)
class JaccardConfig(VerifierOptions):
    """paper's rule-based soft reward: token Jaccard similarity of final step and reference"""

    verifier: ClassVar[str] = "jaccard"
    response_slot: ResponseSlot = field(default="final_step", metadata=meta(help=SLOT_HELP))


@dataclass(frozen=True)
class ExactConfig(VerifierOptions):
    """normalised exact match of the final answer and the reference"""

    verifier: ClassVar[str] = "exact"


@dataclass(frozen=True)
class MathConfig(VerifierOptions):
    """math-verify equivalence in a process pool with a wall-clock timeout per item"""

    verifier: ClassVar[str] = "math"
    response_slot: ResponseSlot = field(default="full", metadata=meta(help=SLOT_HELP))
    workers: int | None = field(
        default=None,
        metadata=meta(
            ge=0, help="processes in the pool (none: all cores; 0: in the calling thread)"
        ),
    )
    timeout: float = field(default=5.0, metadata=meta(gt=0, help="wall-clock seconds per item"))
    config: dict[str, Any] | None = field(
        default=None,
        metadata=meta(cli=False, help="math-verify settings: a mapping of MathVerifyConfig fields"),
    )

    def _validate(self) -> None:
        if self.config is not None:
            from rewardbridge.verifiers.math import MathVerifyConfig

            try:
                MathVerifyConfig.coerce(self.config)
            except (TypeError, ValueError) as exc:
                raise self.fail("config", str(exc)) from None


@dataclass(frozen=True)
class GenerativeConfig(VerifierOptions):
    """the paper's LLM judge (local model or OpenAI-compatible server)"""

    verifier: ClassVar[str] = "generative"
    model: str | None = field(
        default=None,
        metadata=meta(
            help="local model folder or hub id (none: the embedded SmolLM2-135M-Instruct); "
            "with --base-url, the served model name"
        ),
    )
    base_url: str | tuple[str, ...] | None = field(
        default=None,
        metadata=meta(help="OpenAI-compatible server URL (vLLM, SGLang); several for failover"),
    )
    api_key: str | None = field(default=None, metadata=meta(help="API key of the server"))
    served_model: str | None = field(
        default=None,
        metadata=meta(help="model name on the server (none: the first of GET /v1/models)"),
    )
    reward: Reward = field(
        default="binary",
        metadata=meta(help="read from the judgment: binary (Eq. 3), soft (Eq. 4), soft-normalized"),
    )
    template: str = field(
        default="paper", metadata=meta(help="judge template: a built-in name or a template file")
    )
    response_slot: ResponseSlot = field(default="final_step", metadata=meta(help=SLOT_HELP))
    device: str | None = field(
        default=None, metadata=meta(help="local model: cpu, cuda, cuda:1 (none: automatic)")
    )
    batch_size: int = field(
        default=16, metadata=meta(ge=1, flag="verifier-batch-size", help="prompts per forward")
    )
    prefix_sharing: bool | None = field(
        default=None,
        metadata=meta(
            help="local model: share the KV cache of a common prompt prefix (none: automatic)"
        ),
    )
    timeout: float | None = field(
        default=None, metadata=meta(gt=0, help="server: seconds per request (none: 30)")
    )
    max_concurrency: int | None = field(
        default=None, metadata=meta(ge=1, help="server: requests in flight (none: 32)")
    )
    max_retries: int | None = field(
        default=None, metadata=meta(ge=0, help="server: attempts after the first (none: 3)")
    )
    sample: bool = field(
        default=False,
        metadata=meta(help="draw the first token instead of the argmax (the paper's)"),
    )
    constrained: bool = field(
        default=True,
        metadata=meta(
            help="restrict the judgment to YES/NO; off: a first token that is neither is not judged"
        ),
    )
    dtype: Dtype = field(
        default="auto",
        metadata=meta(help="local model: auto (bfloat16 where the hardware computes it natively)"),
    )
    max_batch_tokens: int | None = field(
        default=None,
        metadata=meta(
            ge=1, help="local model: padded tokens per forward (none: the backend's budget)"
        ),
    )


@dataclass(frozen=True)
class CascadeConfig(GenerativeConfig):
    """a rule verifier first, the generative judge only where the rule says no (TinyV)"""

    verifier: ClassVar[str] = "cascade"
    rule: RuleName = field(default="math", metadata=meta(help="the rule verifier that runs first"))
    on_judge_failure: OnJudgeFailure = field(
        default="unjudged",
        metadata=meta(
            help="when the judge cannot judge an item the rule rejected: unjudged, or keep the "
            "rule's verdict"
        ),
    )
    workers: int | None = field(
        default=None, metadata=meta(ge=0, help="math rule: processes in the pool")
    )
    rule_timeout: float | None = field(
        default=None, metadata=meta(gt=0, help="math rule: seconds per item")
    )

    def _validate(self) -> None:
        for name in ("workers", "rule_timeout"):
            if getattr(self, name) is not None and self.rule != "math":
                raise self.fail(name, f"applies to the math rule only (rule is {self.rule})")


@dataclass(frozen=True)
class RemoteConfig(VerifierOptions):
    """a running 'rewardbridge serve' reward server"""

    verifier: ClassVar[str] = "remote"
    url: str = field(metadata=meta(help="reward server URL, e.g. http://127.0.0.1:8000"))
    timeout: float = field(default=30.0, metadata=meta(gt=0, help="seconds per request attempt"))
    max_concurrency: int | None = field(
        default=None, metadata=meta(ge=1, help="requests in flight (none: 4)")
    )
    api_key: str | None = field(
        default=None, metadata=meta(help="bearer token of the server (its --auth-token)")
    )
    chunk_size: int = field(default=256, metadata=meta(ge=1, help="items per request"))
    max_retries: int = field(
        default=3, metadata=meta(ge=0, help="attempts after the first (503, lost connection)")
    )

    def _validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise self.fail("url", "must start with http:// or https://")
