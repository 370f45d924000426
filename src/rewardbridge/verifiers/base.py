"""The verifier contract: a batch of ``JudgeItem`` in, one typed ``VerifierResult`` per item out.

A result says whether the verifier judged. ``score`` is ``None`` exactly when it did not; an
unjudged item (empty response, timeout, backend error, no judgment token) is never a reward of 0.
Training skips such samples (advantage 0); reports count them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from rewardbridge.data.example import JudgeItem


class Status(str, Enum):
    """Why a result has (or lacks) a score."""

    JUDGED = "judged"
    EMPTY_RESPONSE = "empty_response"
    NO_JUDGMENT = "no_judgment"
    TIMEOUT = "timeout"
    BACKEND_ERROR = "backend_error"
    INVALID_INPUT = "invalid_input"
    TOO_LONG = "too_long"  # the prompt exceeds the judge model's context; not truncated


@dataclass(frozen=True, slots=True)
class VerifierResult:
    """Outcome of judging one item.

    ``score`` is the reward in [0, 1] when ``status`` is JUDGED, else ``None``. Generative
    verifiers also fill ``judgment`` ("YES"/"NO"), ``p_yes`` and ``p_no``. ``stage`` names the
    verifier that decided (the cascade sets it), ``latency_s`` is the item's share of wall time.
    """

    status: Status
    score: float | None = None
    reason: str | None = None
    judgment: str | None = None
    p_yes: float | None = None
    p_no: float | None = None
    stage: str | None = None
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if (self.status is Status.JUDGED) != (self.score is not None):
            raise ValueError(
                f"VerifierResult: score must be set iff status is JUDGED "
                f"(status={self.status.value}, score={self.score})"
            )

    @property
    def judged(self) -> bool:
        return self.status is Status.JUDGED

    @classmethod
    def ok(cls, score: float, **fields: Any) -> VerifierResult:
        return cls(status=Status.JUDGED, score=float(score), **fields)

    @classmethod
    def failed(cls, status: Status, reason: str, **fields: Any) -> VerifierResult:
        if status is Status.JUDGED:
            raise ValueError("failed() needs a non-JUDGED status")
        return cls(status=status, score=None, reason=reason, **fields)

    def with_(self, **changes: Any) -> VerifierResult:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@runtime_checkable
class Verifier(Protocol):
    """Anything that judges a batch. Implementations must be safe to call from any thread."""

    name: str

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]: ...

    def close(self) -> None: ...


def is_empty_response(response: str) -> bool:
    return not response.strip()


class BaseVerifier(ABC):
    """Shared plumbing: empty responses are not judged, latency is filled in, ``stage`` is set.

    Subclasses implement ``_verify`` on the non-empty items only.
    """

    name: str = "base"

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        results: list[VerifierResult | None] = [None] * len(items)
        todo: list[int] = []
        for i, item in enumerate(items):
            if is_empty_response(item.response):
                results[i] = VerifierResult.failed(
                    Status.EMPTY_RESPONSE, "empty response", stage=self.name
                )
            else:
                todo.append(i)
        if todo:
            start = time.perf_counter()
            judged = self._verify([items[i] for i in todo])
            if len(judged) != len(todo):
                raise RuntimeError(
                    f"{type(self).__name__}._verify returned {len(judged)} results "
                    f"for {len(todo)} items"
                )
            share = (time.perf_counter() - start) / len(todo)
            for i, res in zip(todo, judged, strict=True):
                results[i] = res.with_(
                    stage=res.stage or self.name,
                    latency_s=res.latency_s or share,
                )
        return [r for r in results if r is not None]

    @abstractmethod
    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pools, sessions or models. Idempotent."""

    def __enter__(self) -> BaseVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
