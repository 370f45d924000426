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
``timeout_seconds=None``. With ``workers >= 1`` each item runs in a ``ProcessPoolExecutor``
(forkserver, or spawn where there is none) and the parent enforces the wall clock per item
(at most ``workers`` items are in flight, so an item's clock starts when a worker is free to take
it). A worker that overruns is killed together with its pool, a fresh pool is started, and the
other items that were in flight on it are run again. ``workers=0`` judges in the calling thread,
for comparison and debugging, with no time limit.

The pool is created on first use, reused across batches and closed by ``close()`` (or ``with``).
Batches from several threads are run one at a time (each batch already uses every worker).

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
import multiprocessing
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult
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


def _init_worker() -> None:
    """Pool worker set-up: import math-verify once; silence its "timeout is disabled" warning
    (the parent enforces the wall clock)."""
    import math_verify  # noqa: F401

    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _warm_up() -> int:
    return os.getpid()


def _mp_context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Takes effect only if no forkserver runs yet; "__main__" is multiprocessing's default.
        ctx.set_forkserver_preload(["__main__", "math_verify", __name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop an executor now, running items included (ProcessPoolExecutor cannot cancel them;
    before Python 3.14 its processes are reachable only through the private ``_processes``)."""
    kill_workers = getattr(executor, "kill_workers", None)  # Python >= 3.14
    processes = list((getattr(executor, "_processes", None) or {}).values())
    if kill_workers is not None:
        kill_workers()
    else:
        for proc in processes:
            proc.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.join(timeout=5)


Task = tuple[str, str, MathVerifyConfig]


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
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        results: list[VerifierResult | None] = [None] * len(items)
        tasks: list[Task] = []
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
        if self.workers == 0:
            judged = [_safe_judge(*task) for task in tasks]
        else:
            judged = self._run_in_pool(tasks)
        for i, res in zip(positions, judged, strict=True):
            results[i] = res
        return [r for r in results if r is not None]

    def _item_config(self, item: JudgeItem) -> MathVerifyConfig:
        override = item.metadata.get(ITEM_CONFIG_KEY) if item.metadata else None
        return self.config if override is None else MathVerifyConfig.coerce(override)

    # -- the pool ---------------------------------------------------------------------------

    def _start_executor(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=_mp_context(), initializer=_init_worker
        )
        # Start every worker (and its math-verify import) before any item's clock runs.
        try:
            for fut in [executor.submit(_warm_up) for _ in range(self.workers)]:
                fut.result()
        except BrokenProcessPool as exc:
            _kill(executor)
            raise RuntimeError(
                "math verifier: worker processes failed to start. A script that judges with "
                "workers >= 1 must guard its entry point with `if __name__ == '__main__':` "
                "(multiprocessing re-imports it in each worker), or use workers=0"
            ) from exc
        return executor

    def _run_in_pool(self, tasks: Sequence[Task]) -> list[VerifierResult]:
        """Judge ``tasks`` with at most ``workers`` in flight, each with its own deadline.

        A worker that dies breaks the whole pool, so every item in flight fails with it; those
        items run again one at a time (so a crashing item cannot take others down twice), and an
        item that breaks the pool twice is a ``BACKEND_ERROR``.
        """
        with self._lock:
            results: list[VerifierResult | None] = [None] * len(tasks)
            queue = deque(range(len(tasks)))
            crashes = [0] * len(tasks)
            running: dict[Future[VerifierResult], tuple[int, float]] = {}
            while queue or running:
                pool_lost = self._submit(tasks, queue, running, crashes)
                if running:
                    next_deadline = min(deadline for _, deadline in running.values())
                    done, _ = wait(
                        running,
                        timeout=max(0.0, next_deadline - time.monotonic()),
                        return_when=FIRST_COMPLETED,
                    )
                    for fut in done:
                        i, _ = running.pop(fut)
                        try:
                            results[i] = fut.result()
                        except BrokenProcessPool:
                            pool_lost = True
                            crashes[i] += 1
                            if crashes[i] < 2:
                                queue.appendleft(i)
                            else:
                                results[i] = VerifierResult.failed(
                                    Status.BACKEND_ERROR, "math-verify worker process died twice"
                                )
                    now = time.monotonic()
                    for fut, (i, deadline) in list(running.items()):
                        if deadline <= now and not fut.done():
                            del running[fut]
                            results[i] = VerifierResult.failed(
                                Status.TIMEOUT, f"math-verify took longer than {self.timeout:g} s"
                            )
                            pool_lost = True
                if pool_lost:
                    # A stuck worker can only be stopped with its pool; the items still in
                    # flight on it run again on a fresh one (their clocks restart).
                    queue.extendleft(i for i, _ in running.values())
                    running.clear()
                    self._replace_executor()
            return [r for r in results if r is not None]

    def _submit(
        self,
        tasks: Sequence[Task],
        queue: deque[int],
        running: dict[Future[VerifierResult], tuple[int, float]],
        crashes: list[int],
    ) -> bool:
        """Fill the free workers from ``queue``; an item that was in a crash runs alone.
        Returns True if the pool turned out to be broken."""
        if self._executor is None:
            self._executor = self._start_executor()
        if any(crashes[i] > 0 for i, _ in running.values()):
            return False  # a suspect is running alone
        while queue and len(running) < self.workers:
            i = queue[0]
            solo = crashes[i] > 0
            if solo and running:
                break
            try:
                fut = self._executor.submit(_safe_judge, *tasks[i])
            except BrokenProcessPool:
                return True
            queue.popleft()
            running[fut] = (i, time.monotonic() + self.timeout)
            if solo:
                break
        return False

    def _replace_executor(self) -> None:
        if self._executor is not None:
            _kill(self._executor)
            self._executor = None
        self._executor = self._start_executor()

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
