"""Judge backend over an OpenAI-compatible chat completions server (vLLM, SGLang).

One request per conversation: ``max_tokens=1``, ``logprobs=true``, ``top_logprobs=N`` and greedy
decoding (``temperature=0``; ``sample=True`` draws the token at temperature 1, the paper's
sampled binary reward, Eq. 3). The server applies the judge's chat template with the generation
prompt, so the answer is the first generated position, as in the paper (Section 2 of PAPER.md).

Where this departs from a local backend: a server reports only the top ``N`` log-probabilities
(vLLM caps N at ``--max-logprobs``, 20 by default), so a YES/NO variant outside the top N is
unseen (probability 0); for a judge trained on the template the two verdicts are the top tokens.
Token ids that decode to the same text are merged by log-sum-exp. YES/NO tokens are resolved
with the server's own tokenizer as in-process (``server_tokens``, docs/backends.md).

Transport: ``httpx.AsyncClient`` on an event loop in a thread owned by the backend, so the sync
``first_tokens`` works from plain code, from inside a running event loop and from server threads
alike. Requests are bounded by a semaphore (``max_concurrency``), each attempt by a wall-clock
``timeout``; connect errors, timeouts, 5xx and 429 are retried with exponential backoff and
jitter (a ``Retry-After`` header wins; the package's one retry helper, ``backends/http.py``),
each retry on the least-loaded other URL when several are given. An item that still fails
becomes a failed ``VerifierResult`` (TIMEOUT or BACKEND_ERROR) and never a score, and never an
exception that loses the rest of the batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from rewardbridge.verifiers.backends.base import Conversation, FirstToken
from rewardbridge.verifiers.backends.http import (
    AttemptError,
    RetryPolicy,
    request_json,
    with_retries,
)
from rewardbridge.verifiers.backends.server_tokens import ask_judgment_tokens, root_post
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.judgment import PAPER_WORDS, JudgmentWords

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")


def api_root(base_url: str) -> str:
    """``http://host:8000``, ``http://host:8000/`` and ``http://host:8000/v1`` -> ``.../v1``."""
    url = base_url.strip().rstrip("/")
    if not url:
        raise ValueError("base_url is empty")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
    return url if url.endswith("/v1") else f"{url}/v1"


def parse_first_token(
    body: Mapping[str, Any], judgment_tokens: Mapping[str, str] | None = None
) -> FirstToken:
    """The first generated position of a chat completion (OpenAI / vLLM / SGLang format).

    ``choices[0].logprobs.content[0]`` is ``{token, logprob, bytes, top_logprobs: [{token,
    logprob, bytes}, ...]}``; ``judgment_tokens`` from ``server_tokens``. Raises ``ValueError``
    naming what is missing.
    """
    choices = body.get("choices")
    if not choices:
        raise ValueError("response has no 'choices'")
    logprobs = choices[0].get("logprobs")
    content = (logprobs or {}).get("content")
    if not content:
        raise ValueError(
            "response has no 'choices[0].logprobs.content' (does the server support logprobs? "
            "vLLM needs --max-logprobs >= top_logprobs)"
        )
    first = content[0]
    chosen = first.get("token")
    if not isinstance(chosen, str):
        raise ValueError("'choices[0].logprobs.content[0].token' is missing")
    merged: dict[str, float] = {}
    for entry in first.get("top_logprobs") or []:
        _merge_logprob(merged, entry.get("token"), entry.get("logprob"))
    if chosen not in merged:
        _merge_logprob(merged, chosen, first.get("logprob"))
    return FirstToken(chosen=chosen, logprobs=merged, judgment_tokens=dict(judgment_tokens or {}))


def _merge_logprob(into: dict[str, float], token: Any, logprob: Any) -> None:
    if not isinstance(token, str) or not isinstance(logprob, int | float):
        return
    value = float(logprob)
    if math.isnan(value):
        return
    previous = into.get(token)
    into[token] = value if previous is None else float(_logaddexp(previous, value))


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))


@dataclass
class _Endpoint:
    root: str
    in_flight: int = 0
    down_until: float = 0.0


@dataclass
class BackendStats:
    """Counters since the backend was made (updated on the backend's loop thread only)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    by_url: dict[str, int] = field(default_factory=dict)


class OpenAIBackend:
    """Judge first tokens from one or more OpenAI-compatible servers.

    ``base_urls``: one URL or several (the same model on each; requests go to the least-loaded
    healthy one, failed ones are skipped for a while). ``served_model``: the model name on the
    server (default: the first entry of ``GET /v1/models``, asked once). ``timeout``: seconds per
    attempt. ``max_retries``: extra attempts after the first. ``words``: the template's judgment
    words (``resolve_tokens=False``: match them as whole words, no ``/tokenize``).
    """

    name = "openai"

    def __init__(
        self,
        base_urls: str | Sequence[str],
        api_key: str | None = None,
        served_model: str | None = None,
        timeout: float = 30.0,
        max_concurrency: int = 32,
        max_retries: int = 3,
        top_logprobs: int = 20,
        sample: bool = False,
        *,
        words: JudgmentWords = PAPER_WORDS,
        resolve_tokens: bool = True,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        down_for_s: float = 5.0,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("base_urls: give at least one server URL")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if not 0 <= top_logprobs <= 20:
            raise ValueError(
                f"top_logprobs must be in [0, 20] (the OpenAI API limit), got {top_logprobs}"
            )
        self._endpoints = [_Endpoint(api_root(u)) for u in urls]
        self.api_key = api_key
        self.served_model = served_model
        self.timeout = float(timeout)
        self.max_concurrency = int(max_concurrency)
        self.retry = RetryPolicy(int(max_retries), backoff_s, max_backoff_s)
        self.top_logprobs = int(top_logprobs)
        self.sample = bool(sample)
        self.words = words
        self.judgment_tokens: dict[str, str] | None = None if resolve_tokens else {}  # text->side
        self._tokens_lock = asyncio.Lock()  # bound to the backend's loop on first use
        self.down_for_s = down_for_s
        self.stats = BackendStats()
        self._tiebreak = itertools.count()
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._model_lock: asyncio.Lock | None = None
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def base_urls(self) -> list[str]:
        return [e.root for e in self._endpoints]

    # -- public API --------------------------------------------------------------------------

    def first_tokens(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        """One entry per conversation, in order. Safe from any thread or running event loop."""
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("OpenAIBackend.first_tokens called from its own event loop thread")
        future = self._submit(loop, self._judge_all(conversations))
        try:
            return future.result()
        except BaseException:  # Ctrl-C in the caller: stop the requests of this call too
            future.cancel()
            raise

    async def afirst_tokens(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        """``first_tokens`` for async callers: awaits the backend's loop from any event loop."""
        loop = self._ensure_loop()
        return await asyncio.wrap_future(self._submit(loop, self._judge_all(conversations)))

    def close(self) -> None:
        """Close the HTTP client and stop the loop thread. Idempotent."""
        with self._start_lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if self._client is not None:
            client, self._client = self._client, None
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
            except Exception as exc:  # closing must not raise on a half-broken connection
                log.debug("closing the HTTP client failed: %s", exc)
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loop thread -------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("OpenAIBackend is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="rewardbridge-openai-backend", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                # a backend dropped without close() still stops its thread
                self._finalizer = weakref.finalize(self, _stop_loop, loop, thread)
            return self._loop

    @staticmethod
    def _submit(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
    ) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _ensure_client(self) -> httpx.AsyncClient:
        """Made on the loop thread, on first use (httpx clients belong to one loop)."""
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            limits = httpx.Limits(
                max_connections=self.max_concurrency,
                max_keepalive_connections=self.max_concurrency,
            )
            self._client = httpx.AsyncClient(
                headers=headers, limits=limits, timeout=httpx.Timeout(self.timeout)
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()
        return self._client

    # -- requests ----------------------------------------------------------------------------

    async def _judge_all(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        self._ensure_client()
        if not conversations:
            return []
        try:
            model = await self._model_name()
            tokens = await self._resolve_judgment_tokens(model)
        except AttemptError as exc:
            failed = VerifierResult.failed(exc.status, exc.reason)
            return [failed] * len(conversations)
        return list(
            await asyncio.gather(*(self._judge_one(model, conv, tokens) for conv in conversations))
        )

    async def _model_name(self) -> str:
        if self.served_model:
            return self.served_model
        assert self._model_lock is not None
        async with self._model_lock:
            if not self.served_model:
                body = await self._call("GET", "/models", None)
                try:
                    self.served_model = str(body["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise AttemptError(
                        "GET /v1/models returned no model; pass served_model", retryable=False
                    ) from None
                log.info("judge server serves %r", self.served_model)
        return self.served_model

    async def _resolve_judgment_tokens(self, model: str) -> dict[str, str]:
        """The server's first pieces of the judgment words, asked once (``server_tokens``)."""
        async with self._tokens_lock:
            if self.judgment_tokens is None:
                healthy_first = sorted(self._endpoints, key=lambda e: e.down_until)
                roots = [e.root.removesuffix("/v1") for e in healthy_first]
                post = partial(root_post, self._ensure_client(), roots, self.retry, self.timeout)
                self.judgment_tokens = await ask_judgment_tokens(post, model, self.words)
        return self.judgment_tokens

    async def _judge_one(
        self, model: str, conversation: Conversation, judgment_tokens: Mapping[str, str]
    ) -> FirstToken | VerifierResult:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in conversation],
            "max_tokens": 1,
            "temperature": 1.0 if self.sample else 0.0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                body = await self._call("POST", "/chat/completions", payload)
                return parse_first_token(body, judgment_tokens)
            except AttemptError as exc:
                self.stats.failures += 1
                return VerifierResult.failed(exc.status, exc.reason)
            except ValueError as exc:
                self.stats.failures += 1
                return VerifierResult.failed(Status.BACKEND_ERROR, f"bad response: {exc}")

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        """One request with retries and failover; raises ``AttemptError`` after the last."""
        previous: _Endpoint | None = None

        async def attempt() -> Any:
            nonlocal previous
            endpoint = previous = self._pick(avoid=previous)
            return await self._attempt(endpoint, method, path, payload)

        return await with_retries(attempt, self.retry, on_retry=self._count_retry)

    def _count_retry(self, error: AttemptError) -> None:
        self.stats.retries += 1

    async def _attempt(
        self, endpoint: _Endpoint, method: str, path: str, payload: dict[str, Any] | None
    ) -> Any:
        client = self._ensure_client()
        endpoint.in_flight += 1
        self.stats.requests += 1
        self.stats.by_url[endpoint.root] = self.stats.by_url.get(endpoint.root, 0) + 1
        try:
            return await request_json(
                client, method, endpoint.root + path, json=payload, timeout=self.timeout
            )
        except AttemptError as exc:
            if exc.server_fault:  # skip this server for a while
                endpoint.down_until = time.monotonic() + self.down_for_s
            raise
        finally:
            endpoint.in_flight -= 1

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        """The least-loaded healthy endpoint; round-robin among ties; ``avoid`` if possible."""
        now = time.monotonic()
        pool = [e for e in self._endpoints if e.down_until <= now] or list(self._endpoints)
        if avoid is not None and len(pool) > 1:
            pool = [e for e in pool if e is not avoid] or pool
        least = min(e.in_flight for e in pool)
        tied = [e for e in pool if e.in_flight == least]
        return tied[next(self._tiebreak) % len(tied)]


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    if threading.current_thread() is not thread:
        thread.join(timeout=5)
        loop.close()
