"""``RemoteVerifier``: a running ``rewardbridge serve`` used as a verifier (registry name
``remote``).

Items go to the server's native ``POST /v1/judge`` endpoint in chunks (``chunk_size`` items, at
most ``max_concurrency`` chunks in flight), through the package's one retry helper
(``backends/http.py``): a 503 is retried after its Retry-After, a connection error or 5xx with
exponential backoff; what still fails comes back as per-item ``backend_error`` or ``timeout``
results, never as a score. The request and result JSON is built here (the server's pydantic
schema stays in ``serving/``: verifiers do not import the server).

``averify`` is the implementation; ``verify`` runs it on a fresh event loop in a worker thread,
so it works from plain code, server threads and inside a running event loop alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.backends.http import (
    AttemptError,
    RetryPolicy,
    request_json,
    with_retries,
)
from rewardbridge.verifiers.base import Status, VerifierResult


def judge_request(items: Sequence[JudgeItem]) -> dict[str, Any]:
    """The ``/v1/judge`` request body."""
    fields = ("id", "question", "reference", "response")
    return {"items": [{name: getattr(it, name) for name in fields} for it in items]}


def judge_results(body: Any, n: int) -> list[VerifierResult]:
    """``VerifierResult`` per row of a ``/v1/judge`` answer; ``ValueError`` if it is not one."""
    rows = body.get("results") if isinstance(body, dict) else None
    if not isinstance(rows, list) or len(rows) != n:
        got = len(rows) if isinstance(rows, list) else "no"
        raise ValueError(f"server answered {got} results for {n} items")
    out = []
    for row in rows:
        fields = {k: row.get(k) for k in ("reason", "judgment", "p_yes", "p_no")}
        status = Status(row["status"])
        if status is Status.JUDGED:
            out.append(VerifierResult.ok(row["reward"], stage="remote", **fields))
        else:
            fields["reason"] = fields["reason"] or status.value
            out.append(VerifierResult.failed(status, stage="remote", **fields))
    return out


class RemoteVerifier:
    """Judge through a reward server at ``url`` (e.g. ``http://127.0.0.1:8000``).

    ``timeout``: seconds per request attempt. ``max_retries``: attempts after the first.
    """

    name = "remote"

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        max_concurrency: int | None = None,
        api_key: str | None = None,
        *,
        chunk_size: int = 256,
        max_retries: int = 3,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.max_concurrency = max(1, max_concurrency or 4)
        self.chunk_size = chunk_size
        self.retry = RetryPolicy(max_retries=max_retries, backoff_s=0.5)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardbridge-remote") as pool:
            return pool.submit(asyncio.run, self.averify(items)).result()

    async def averify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        """Judge ``items`` (one short-lived client per call; chunks sent concurrently)."""
        import httpx

        if not items:
            return []
        limit = asyncio.Semaphore(self.max_concurrency)
        url = f"{self.url}/v1/judge"
        async with httpx.AsyncClient(timeout=self.timeout, headers=self._headers) as client:

            async def post(chunk: Sequence[JudgeItem]) -> list[VerifierResult]:
                async def attempt() -> list[VerifierResult]:
                    async with limit:
                        body = await request_json(
                            client, "POST", url, json=judge_request(chunk), timeout=self.timeout
                        )
                    try:
                        return judge_results(body, len(chunk))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise AttemptError(f"{url}: bad answer: {exc}", retryable=False) from None

                try:
                    return await with_retries(attempt, self.retry)
                except AttemptError as exc:
                    reason = f"reward server: {exc.reason}"
                    return [
                        VerifierResult.failed(exc.status, reason, stage="remote") for _ in chunk
                    ]

            size = self.chunk_size
            chunks = [items[i : i + size] for i in range(0, len(items), size)]
            parts = await asyncio.gather(*(post(c) for c in chunks))
        return [res for part in parts for res in part]

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own client."""

    def __enter__(self) -> RemoteVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
