"""Dynamic batching: concurrent requests merge into verifier batches.

OpenRLHF and verl ask for one sample at a time; a generative judge is efficient only on batches.
``DynamicBatcher.judge(items)`` queues the items and awaits their results; one worker task takes
up to ``max_batch_size`` queued items (waiting at most ``max_wait_s`` for a batch to fill) and
runs the blocking ``verify`` in a single worker thread, so the event loop never blocks and the
verifier never runs concurrently with itself.

Failure is per item, never silent: a verifier exception gives every item of that batch a
``backend_error`` result, a request not answered within its timeout gets ``timeout`` results
(its items are dropped from the queue if not yet started), and the batcher keeps serving.
A full queue raises ``QueueFullError`` (the server answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Status, VerifierResult

logger = logging.getLogger(__name__)

VerifyFn = Callable[[Sequence[JudgeItem]], list[VerifierResult]]
BatchObserver = Callable[[int, float], None]


class QueueFullError(RuntimeError):
    """The queue cannot take the request now; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTooLargeError(ValueError):
    """The request alone holds more items than the queue can ever take."""


@dataclass(slots=True)
class _Entry:
    item: JudgeItem
    future: asyncio.Future[VerifierResult]


class DynamicBatcher:
    """Merge concurrent ``judge`` calls into batches of at most ``max_batch_size`` items.

    ``max_queue`` bounds the items waiting for a batch (not those being judged). ``on_batch``
    is called with (batch size, seconds) after each batch, e.g. to feed metrics.
    Use ``async with DynamicBatcher(...)`` or ``start()``/``stop()`` inside a running loop.
    """

    def __init__(
        self,
        verify: VerifyFn,
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        max_queue: int = 4096,
        on_batch: BatchObserver | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self._verify = verify
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._pending: collections.deque[_Entry] = collections.deque()
        self._arrived = asyncio.Event()  # replaced in start(): bound to the serving loop
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batch_seconds = 0.0  # moving average, for Retry-After

    @property
    def queue_depth(self) -> int:
        """Items queued and not yet in a batch (including abandoned ones not yet dropped)."""
        return len(self._pending)

    async def start(self) -> None:
        if self._worker is not None:
            return
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardbridge-judge")
        self._worker = asyncio.create_task(self._run(), name="rewardbridge-batcher")

    async def stop(self) -> None:
        """Stop taking batches; queued items get a backend_error result. A batch already in
        the worker thread finishes in the background (a thread cannot be interrupted)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._pending:
            entry = self._pending.popleft()
            if not entry.future.done():
                entry.future.set_result(
                    VerifierResult.failed(Status.BACKEND_ERROR, "reward server shutting down")
                )
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> DynamicBatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def judge(
        self, items: Sequence[JudgeItem], *, timeout_s: float | None = None
    ) -> list[VerifierResult]:
        """One result per item, in order. Raises ``QueueFullError`` / ``RequestTooLargeError``."""
        if self._worker is None:
            raise RuntimeError("DynamicBatcher.judge called before start()")
        if not items:
            return []
        if len(items) > self.max_queue:
            raise RequestTooLargeError(
                f"request has {len(items)} items; the server takes at most {self.max_queue} "
                f"per request (--max-queue)"
            )
        if len(self._pending) + len(items) > self.max_queue:
            raise QueueFullError(
                f"queue full ({len(self._pending)} of {self.max_queue} items waiting)",
                retry_after_s=self._retry_after_s(),
            )
        loop = asyncio.get_running_loop()
        entries = [_Entry(item, loop.create_future()) for item in items]
        self._pending.extend(entries)
        self._arrived.set()
        futures = [entry.future for entry in entries]
        try:
            await asyncio.wait(futures, timeout=timeout_s)
        finally:
            for fut in futures:  # timed out or the caller went away: drop what is not done
                if not fut.done():
                    fut.cancel()
        return [
            fut.result()
            if not fut.cancelled()
            else VerifierResult.failed(Status.TIMEOUT, f"no verdict within {timeout_s:g} s")
            for fut in futures
        ]

    def _retry_after_s(self) -> int:
        batches_ahead = math.ceil(len(self._pending) / self.max_batch_size)
        return max(1, math.ceil(batches_ahead * self._batch_seconds))

    def _take_batch(self) -> list[_Entry]:
        batch: list[_Entry] = []
        while self._pending and len(batch) < self.max_batch_size:
            entry = self._pending.popleft()
            if not entry.future.done():  # skip items whose request timed out or went away
                batch.append(entry)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            deadline = loop.time() + self.max_wait_s
            while len(self._pending) < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:  # builtin TimeoutError only from 3.11
                    break
            batch = self._take_batch()
            if not self._pending:
                self._arrived.clear()
            if batch:
                await self._judge_batch(batch)

    async def _judge_batch(self, batch: list[_Entry]) -> None:
        items = [entry.item for entry in batch]
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._verify, items
            )
            if len(results) != len(items):
                raise RuntimeError(f"verifier returned {len(results)} results for {len(items)}")
        except Exception as exc:  # any backend failure becomes per-item errors
            logger.warning("verifier failed on a batch of %d: %r", len(items), exc)
            reason = f"verifier failed: {type(exc).__name__}: {exc}"
            results = [VerifierResult.failed(Status.BACKEND_ERROR, reason) for _ in items]
        seconds = time.perf_counter() - start
        self._batch_seconds = (
            seconds if not self._batch_seconds else (0.8 * self._batch_seconds + 0.2 * seconds)
        )
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)
        if self._on_batch is not None:
            self._on_batch(len(batch), seconds)
