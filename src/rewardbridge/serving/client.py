"""``RemoteVerifier``: a running ``rewardbridge serve`` used as a verifier (registry name
``remote``).

Items go to the native ``POST /v1/judge`` endpoint in chunks (``chunk_size`` items, at most
``max_concurrency`` chunks in flight). A 503 is retried after its Retry-After, a connection
error with exponential backoff; what still fails comes back as per-item ``backend_error`` or
``timeout`` results, never as a score. ``averify`` is the asyncio twin for async callers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Status, VerifierResult


def _payload(items: Sequence[JudgeItem]) -> dict[str, Any]:
    return {
        "items": [
            {
                "id": it.id,
                "question": it.question,
                "reference": it.reference,
                "response": it.response,
            }
            for it in items
        ]
    }


def _results(body: dict[str, Any], n: int) -> list[VerifierResult]:
    rows = body.get("results")
    if not isinstance(rows, list) or len(rows) != n:
        raise ValueError(
            f"server answered {len(rows) if isinstance(rows, list) else 'no'} results for {n} items"
        )
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


def _failed(n: int, exc: BaseException) -> list[VerifierResult]:
    status = Status.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Status.BACKEND_ERROR
    reason = f"reward server: {type(exc).__name__}: {exc}"
    return [VerifierResult.failed(status, reason, stage="remote") for _ in range(n)]


class RemoteVerifier:
    """Judge through a reward server at ``url`` (e.g. ``http://127.0.0.1:8000``)."""

    name = "remote"

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        max_concurrency: int | None = None,
        api_key: str | None = None,
        *,
        chunk_size: int = 256,
        retries: int = 3,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if chunk_size < 1 or retries < 0:
            raise ValueError("chunk_size must be >= 1 and retries >= 0")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_concurrency = max(1, max_concurrency or 4)
        self.chunk_size = chunk_size
        self.retries = retries
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.Client | None = None

    def _chunks(self, items: Sequence[JudgeItem]) -> list[Sequence[JudgeItem]]:
        return [items[i : i + self.chunk_size] for i in range(0, len(items), self.chunk_size)]

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and response.headers.get("retry-after", "").isdigit():
            return float(response.headers["retry-after"])
        return min(8.0, 0.25 * 2**attempt)

    def _post(self, chunk: Sequence[JudgeItem]) -> list[VerifierResult]:
        assert self._client is not None
        last: BaseException = RuntimeError("no attempt")
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self._client.post(f"{self.url}/v1/judge", json=_payload(chunk))
                if response.status_code != 503:
                    response.raise_for_status()
                    return _results(response.json(), len(chunk))
                last = RuntimeError(f"server busy (503) after {attempt + 1} tries")
            except httpx.HTTPStatusError as exc:  # 4xx/5xx other than 503: retrying won't help
                return _failed(len(chunk), exc)
            except (httpx.TransportError, ValueError) as exc:
                last = exc
            if attempt < self.retries:
                time.sleep(self._delay(attempt, response))
        return _failed(len(chunk), last)

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        if not items:
            return []
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self._headers)
        chunks = self._chunks(items)
        if len(chunks) == 1:
            return self._post(chunks[0])
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks))) as pool:
            return [res for part in pool.map(self._post, chunks) for res in part]

    async def averify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        """Async ``verify`` (one short-lived client per call; chunks sent concurrently)."""
        if not items:
            return []
        limit = asyncio.Semaphore(self.max_concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, headers=self._headers) as client:

            async def post(chunk: Sequence[JudgeItem]) -> list[VerifierResult]:
                last: BaseException = RuntimeError("no attempt")
                for attempt in range(self.retries + 1):
                    response = None
                    try:
                        async with limit:
                            response = await client.post(
                                f"{self.url}/v1/judge", json=_payload(chunk)
                            )
                        if response.status_code != 503:
                            response.raise_for_status()
                            return _results(response.json(), len(chunk))
                        last = RuntimeError(f"server busy (503) after {attempt + 1} tries")
                    except httpx.HTTPStatusError as exc:
                        return _failed(len(chunk), exc)
                    except (httpx.TransportError, ValueError) as exc:
                        last = exc
                    if attempt < self.retries:
                        await asyncio.sleep(self._delay(attempt, response))
                return _failed(len(chunk), last)

            parts = await asyncio.gather(*(post(c) for c in self._chunks(items)))
        return [res for part in parts for res in part]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> RemoteVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
