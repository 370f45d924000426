"""The one HTTP retry helper: every client here that calls a server (the OpenAI-compatible judge
backend, the remote verifier) sends its requests through it.

An attempt (``request_json``) is one request under a wall-clock timeout. It returns the parsed
JSON body or raises ``AttemptError``, which says whether a retry may help and which status the
failure maps to: a timeout is TIMEOUT; a connection error, HTTP 408, 429 and 5xx are retryable
BACKEND_ERRORs; any other 4xx and a body that is not JSON are final. ``with_retries`` repeats an
attempt up to ``RetryPolicy.max_retries`` more times, waiting exponential backoff with jitter,
or what the server's ``Retry-After`` says (capped at 60 s) when it says it. The error after the
last attempt names the last failure and the number of attempts; callers turn it into failed
``VerifierResult`` objects, never into a score.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rewardbridge.verifiers.base import Status

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class AttemptError(Exception):
    """A failed attempt: why, the status it maps to, whether a retry may help.

    ``server_fault``: the server itself failed (connection error or 5xx), so a client with
    several servers may avoid this one for a while.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: Status = Status.BACKEND_ERROR,
        retryable: bool = True,
        retry_after: float | None = None,
        server_fault: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.server_fault = server_fault


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed attempt."""

    max_retries: int = 3
    """Attempts after the first."""
    backoff_s: float = 0.5
    """Upper bound of the first wait; doubles per retry."""
    max_backoff_s: float = 8.0
    """Upper bound of any wait (a server's Retry-After may ask for more, up to 60 s)."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(
                f"backoff_s and max_backoff_s must be >= 0, got {self.backoff_s}, "
                f"{self.max_backoff_s}"
            )

    def delay(self, retry: int, error: AttemptError | None = None) -> float:
        """Seconds before retry number ``retry`` (1 is the first): half fixed, half random;
        the server's Retry-After wins."""
        if error is not None and error.retry_after is not None:
            return error.retry_after
        cap = min(self.max_backoff_s, self.backoff_s * 2 ** (retry - 1))
        return cap / 2 + random.uniform(0, cap / 2)


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    json: Any = None,
    timeout: float,
) -> Any:
    """One attempt: the JSON body of a 2xx/3xx answer, else ``AttemptError``."""
    import httpx

    try:
        response = await asyncio.wait_for(client.request(method, url, json=json), timeout=timeout)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        reason = f"{url}: no answer within {timeout:g} s"
        raise AttemptError(reason, status=Status.TIMEOUT) from None
    except httpx.TransportError as exc:
        raise AttemptError(f"{url}: {type(exc).__name__}: {exc}", server_fault=True) from None
    code = response.status_code
    if code >= 400:
        raise AttemptError(
            f"{url}: HTTP {code}: {error_message(response)}",
            retryable=code in RETRYABLE_STATUS,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            server_fault=code >= 500,
        )
    try:
        return response.json()
    except ValueError:
        raise AttemptError(f"{url}: response is not JSON", retryable=False) from None


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[AttemptError], None] | None = None,
) -> T:
    """``await attempt()`` until it succeeds, fails for good, or the retries are spent.

    ``on_retry`` is called with the failure before each retry (counters). Raises the last
    ``AttemptError``, its reason ending in "(after N attempts)" and no longer retryable.
    """
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except AttemptError as exc:
            log.debug("attempt %d failed: %s", tries, exc.reason)
            if not exc.retryable or tries > policy.max_retries:
                raise AttemptError(
                    f"{exc.reason} (after {tries} attempt{'s' if tries > 1 else ''})",
                    status=exc.status,
                    retryable=False,
                ) from None
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(policy.delay(tries, exc))


def error_message(response: httpx.Response) -> str:
    """The server's error text (OpenAI format ``{"error": {"message"}}``, vLLM's ``message``,
    FastAPI's ``detail``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:200]
