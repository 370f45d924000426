"""Math answer equivalence with math-verify, in a process pool with a wall-clock limit per item.

This is the rule baseline that the paper's §3 calls "the standard rule baseline elsewhere": the
reference and the response are parsed by ``math_verify.parse`` and compared by
``math_verify.verify`` (numeric, symbolic, set, interval, matrix and relation equivalence). The
score is 1.0 (equivalent) or 0.0 (not). It is not the paper's own rule (see ``rules.py``).

Outcomes:

- reference unparsable (math-verify extracts nothing from it): ``INVALID_INPUT``, not judged;
- response unparsable: judged, score 0.0, reason "unparsable answer" (a response whose answer
  cannot be read is wrong, exactly as the paper's judge answers NO to an unclear solution);
- no verdict within ``timeout`` seconds: ``TIMEOUT``, never 0.0;
- a worker process that died twice on the item, or an exception: ``BACKEND_ERROR``.

Timeouts. math-verify's own timeouts use ``signal.alarm``, which only works in the main thread
and silently scores 0 elsewhere. We never use it: every call passes ``parsing_timeout=None`` and
``timeout_seconds=None``. With ``workers >= 1`` items run in ``process_pool.TimedProcessPool``:
processes with a wall-clock limit per item, items sent in chunks to cut round trips, a stuck
item's worker killed with its pool (the item ``TIMEOUT``, the others in flight run again).
``workers=0`` judges in the calling thread, for comparison and debugging, with no time limit.
The pool is created on first use, reused across batches and closed by ``close()`` (or ``with``).

Where we depart from plain ``parse``/``verify``:

- A reference without math delimiters (``$``, ``\\(``, ``\\[``, ``\\boxed``) is read as one LaTeX
  expression (wrapped in ``$...$``) when LaTeX extraction is on: dataset references are bare
  ("7\\pi", "1\\frac{1}{4}", "10{,}000") and math-verify's expression extractor would read only a
  piece of them ("7", "\\frac{1}{4}", "10"). ``MathVerifyConfig.wrap_reference=False`` turns it off.
  A response's answer without delimiters is tried both as written and wrapped the same way
  (equivalent if either reading is): HardVerify-Math's bare answers ("f(x)=2x") need it.
- ``\\mathrm{e}`` (upright Euler's number) is rewritten to ``e`` before parsing: math-verify 0.9
  drops it as a unit and then reads ``1 - \\frac{1}{\\mathrm{e}}`` as ``1``, which makes it equal
  to ``1 + \\frac{1}{\\mathrm{e}}`` (its own test table records that false equivalence).
- ``LatexExtractionConfig(boxed_match_priority=0)``: a ``\\boxed{}`` answer is preferred over
  other matches, as in math-verify's own regression tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult
from rewardbridge.verifiers.process_pool import TimedProcessPool
from rewardbridge.verifiers.text import ResponseSlot, check_response_slot, response_slot_text

MatchType = Literal["latex", "expr"]

#: Key of ``JudgeItem.metadata`` that overrides the verifier's config for one item.
ITEM_CONFIG_KEY = "math_verify"

_MATH_DELIMITERS = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")
_UPRIGHT_E = re.compile(r"\\mathrm\s*\{\s*e\s*\}")


@dataclass(frozen=True, slots=True)
class MathVerifyConfig:
    """How answers are read and compared (the options of ``math_verify.parse`` / ``verify``)."""

    match_types: tuple[MatchType, ...] = ("latex", "expr")
    """Extractors, in priority order: "latex" (``$..$``, ``\\boxed{}``...), "expr" (plain 1/2)."""
    precision: int = 6
    """Decimal places floats are rounded to before comparing (``verify(float_rounding=)``)."""
    strict: bool = True
    """False: variables are matched by position and sets compare equal to tuples."""
    allow_set_relation_comp: bool = False
    """True: a set and a relation can be equal (``(1, 2)`` and ``1 < x < 2``)."""
    wrap_reference: bool = True
    """Read a reference without math delimiters as one LaTeX expression (needs "latex")."""

    def __post_init__(self) -> None:
        if isinstance(self.match_types, str) or not self.match_types:
            raise ValueError(
                f"match_types must be a non-empty sequence of {get_args(MatchType)}; "
                f"got {self.match_types!r}"
            )
        object.__setattr__(self, "match_types", tuple(self.match_types))
        for kind in self.match_types:
            if kind not in get_args(MatchType):
                raise ValueError(
                    f"match_types: unknown extractor {kind!r}; choose from {get_args(MatchType)}"
                )
        if isinstance(self.precision, bool) or not isinstance(self.precision, int):
            raise ValueError(f"precision must be an int; got {self.precision!r}")
        if self.precision < 0:
            raise ValueError(f"precision must be >= 0; got {self.precision}")
        for name in ("strict", "allow_set_relation_comp", "wrap_reference"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false; got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MathVerifyConfig:
        """Build from a dict (YAML, JSONL metadata); an unknown key is an error that names it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown math-verify option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**dict(data))

    @classmethod
    def coerce(cls, value: MathVerifyConfig | Mapping[str, Any] | None) -> MathVerifyConfig:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise ValueError(f"math-verify config must be a mapping; got {type(value).__name__}")


def _extraction_targets(config: MathVerifyConfig) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    make: dict[str, Callable[[], Any]] = {
        "latex": lambda: LatexExtractionConfig(boxed_match_priority=0),
        "expr": ExprExtractionConfig,
    }
    return [make[kind]() for kind in config.match_types]


def _prepare(text: str) -> str:
    return _UPRIGHT_E.sub("e", text)


def judge_answer(reference: str, answer: str, config: MathVerifyConfig) -> VerifierResult:
    """math-verify equivalence of ``answer`` to ``reference``, with math-verify's own (signal)
    timeouts off. Runs anywhere (worker process or any thread); it may run for a long time on a
    pathological input, so callers that need a bound run it in ``MathVerifier``'s pool."""
    from math_verify import parse, verify

    targets = _extraction_targets(config)
    reference = _prepare(reference)
    wrap = config.wrap_reference and "latex" in config.match_types
    if wrap and not _MATH_DELIMITERS.search(reference):
        reference = f"${reference}$"
    gold = parse(reference, targets, parsing_timeout=None)
    if not gold:
        return VerifierResult.failed(Status.INVALID_INPUT, "unparsable reference")
    answer = _prepare(answer)
    candidates = [answer]
    # A bare answer ("f(x)=2x", "7\\pi") is also read as one LaTeX expression, as the reference is.
    if wrap and not _MATH_DELIMITERS.search(answer):
        candidates.append(f"${answer}$")
    parsed_any = False
    for candidate in candidates:
        pred = parse(candidate, targets, parsing_timeout=None)
        if not pred:
            continue
        parsed_any = True
        equal = verify(
            gold,
            pred,
            float_rounding=config.precision,
            strict=config.strict,
            allow_set_relation_comp=config.allow_set_relation_comp,
            timeout_seconds=None,
        )
        if equal:
            return VerifierResult.ok(1.0, reason="equivalent")
    return VerifierResult.ok(0.0, reason="different" if parsed_any else "unparsable answer")


def _safe_judge(reference: str, answer: str, config: MathVerifyConfig) -> VerifierResult:
    try:
        return judge_answer(reference, answer, config)
    except Exception as exc:  # math-verify catches its own errors; anything else is ours
        return VerifierResult.failed(Status.BACKEND_ERROR, f"{type(exc).__name__}: {exc}")


class MathVerifier(BaseVerifier):
    """math-verify answer equivalence; 1.0 equivalent, 0.0 not (see the module docstring).

    ``config``: a ``MathVerifyConfig`` or a mapping of its fields. An item may override it with
    ``item.metadata["math_verify"]`` (same form), e.g. a per-row precision in a dataset.
    ``response_slot``: "full" (default: math-verify finds the answer itself, preferring the last
    ``\\boxed{}``), "final_step" (the paper's final line only) or "answer" (after "the answer
    is"). ``workers``: processes in the pool (default: all cores); 0 judges in the calling
    thread without a time limit.
    ``timeout``: wall-clock seconds per item.
    """

    name = "math"

    def __init__(
        self,
        *,
        config: MathVerifyConfig | Mapping[str, Any] | None = None,
        response_slot: ResponseSlot = "full",
        workers: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        check_response_slot(response_slot)
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 0:
            raise ValueError(f"workers must be >= 0 (0 = in the calling thread); got {workers}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds; got {timeout}")
        if importlib.util.find_spec("math_verify") is None:
            raise ValueError(
                "verifier 'math' needs the math-verify package: pip install 'rewardbridge[math]'"
            )
        self.config = MathVerifyConfig.coerce(config)
        self.response_slot: ResponseSlot = response_slot
        self.workers = workers
        self.timeout = float(timeout)
        self._pool = (
            TimedProcessPool(
                workers, self.timeout, _init_math_worker, preload=["math_verify", __name__]
            )
            if workers
            else None
        )

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        results: list[VerifierResult | None] = [None] * len(items)
        tasks: list[tuple[str, str, MathVerifyConfig]] = []
        positions: list[int] = []
        for i, item in enumerate(items):
            try:
                config = self._item_config(item)
            except ValueError as exc:
                results[i] = VerifierResult.failed(
                    Status.INVALID_INPUT, f"item {item.id!r}: metadata.{ITEM_CONFIG_KEY}: {exc}"
                )
                continue
            answer = response_slot_text(item.response, self.response_slot)
            tasks.append((item.reference, answer, config))
            positions.append(i)
        if self._pool is None:
            judged = [_safe_judge(*task) for task in tasks]
        else:
            judged = self._pool.run(_judge_task, tasks, "math-verify")
        for i, res in zip(positions, judged, strict=True):
            results[i] = res
        return [r for r in results if r is not None]

    def _item_config(self, item: JudgeItem) -> MathVerifyConfig:
        override = item.metadata.get(ITEM_CONFIG_KEY) if item.metadata else None
        return self.config if override is None else MathVerifyConfig.coerce(override)

    # -- the pool ---------------------------------------------------------------------------

    @property
    def _executor(self) -> Any:  # the live ProcessPoolExecutor (tests kill its workers)
        return self._pool.executor if self._pool is not None else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def _init_math_worker() -> None:
    """Pool worker set-up: import math-verify once; silence its "timeout is disabled" warning
    (the parent enforces the wall clock)."""
    import math_verify  # noqa: F401

    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _judge_task(task: tuple[str, str, MathVerifyConfig]) -> VerifierResult:
    return _safe_judge(*task)
