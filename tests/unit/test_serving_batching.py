"""DynamicBatcher: merging, order, per-item failures, timeouts, queue bound. No HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.serving.batching import DynamicBatcher, QueueFullError, RequestTooLargeError
from rewardbridge.verifiers.base import Status, VerifierResult


class RecordingVerifier:
    """Scores 1.0 when the reference occurs in the response; records batch sizes and threads."""

    name = "recording"

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.batches.append(len(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("backend exploded")
        return [VerifierResult.ok(1.0 if it.reference in it.response else 0.0) for it in items]

    def close(self) -> None:
        pass


def item(i: int, correct: bool = True) -> JudgeItem:
    return JudgeItem(
        id=str(i),
        question="q",
        reference=f"ans{i}",
        response=f"so ans{i}" if correct else "no idea",
    )


def test_concurrent_requests_merge_into_batches_and_keep_order() -> None:
    verifier = RecordingVerifier(delay_s=0.02)

    async def main() -> list[list[VerifierResult]]:
        async with DynamicBatcher(verifier.verify, max_batch_size=8, max_wait_s=0.01) as b:
            return await asyncio.gather(
                *(b.judge([item(i, correct=i % 2 == 0), item(i + 1000)]) for i in range(40))
            )

    answers = asyncio.run(main())
    assert [[r.score for r in a] for a in answers] == [
        [1.0 if i % 2 == 0 else 0.0, 1.0] for i in range(40)
    ]
    assert sum(verifier.batches) == 80
    assert max(verifier.batches) == 8
    assert len(verifier.batches) <= 12  # merged: 80 items in ~10 batches, not 40 calls
    assert verifier.threads and all(t.startswith("rewardbridge-judge") for t in verifier.threads)


def test_event_loop_is_not_blocked_while_verifying() -> None:
    verifier = RecordingVerifier(delay_s=0.3)

    async def main() -> int:
        ticks = 0
        async with DynamicBatcher(verifier.verify, max_wait_s=0) as b:
            task = asyncio.create_task(b.judge([item(0)]))
            while not task.done():
                ticks += 1
                await asyncio.sleep(0.01)
        return ticks

    assert asyncio.run(main()) >= 10


def test_backend_exception_gives_per_item_errors_and_batcher_keeps_serving() -> None:
    verifier = RecordingVerifier(fail=True)

    async def main() -> tuple[list[VerifierResult], list[VerifierResult]]:
        async with DynamicBatcher(verifier.verify, max_wait_s=0) as b:
            first = await b.judge([item(0), item(1)])
            verifier.fail = False
            second = await b.judge([item(2)])
        return first, second

    first, second = asyncio.run(main())
    assert [r.status for r in first] == [Status.BACKEND_ERROR] * 2
    assert all(r.score is None and "backend exploded" in (r.reason or "") for r in first)
    assert second[0].judged and second[0].score == 1.0


def test_wrong_result_count_is_a_backend_error() -> None:
    def short(items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [VerifierResult.ok(1.0)]

    async def main() -> list[VerifierResult]:
        async with DynamicBatcher(short, max_wait_s=0) as b:
            return await b.judge([item(0), item(1)])

    assert [r.status for r in asyncio.run(main())] == [Status.BACKEND_ERROR] * 2


def test_timeout_answers_timeout_and_drops_queued_items() -> None:
    verifier = RecordingVerifier(delay_s=0.3)

    async def main() -> tuple[list[VerifierResult], list[VerifierResult]]:
        async with DynamicBatcher(verifier.verify, max_batch_size=1, max_wait_s=0) as b:
            slow = asyncio.create_task(b.judge([item(0)]))
            await asyncio.sleep(0.05)  # item 0 is in the worker thread now
            timed_out = await b.judge([item(1), item(2)], timeout_s=0.05)
            return timed_out, await slow

    timed_out, slow = asyncio.run(main())
    assert [r.status for r in timed_out] == [Status.TIMEOUT] * 2
    assert all(r.score is None for r in timed_out)
    assert slow[0].score == 1.0
    assert verifier.batches == [1]  # the abandoned items never reached the verifier


def test_full_queue_raises_with_retry_after_and_oversized_request_is_rejected() -> None:
    verifier = RecordingVerifier(delay_s=0.2)

    async def main() -> None:
        async with DynamicBatcher(
            verifier.verify, max_batch_size=1, max_queue=3, max_wait_s=0
        ) as b:
            with pytest.raises(RequestTooLargeError, match="at most 3"):
                await b.judge([item(i) for i in range(4)])
            busy = asyncio.create_task(b.judge([item(0)]))
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(b.judge([item(1), item(2), item(3)]))
            await asyncio.sleep(0)
            with pytest.raises(QueueFullError) as info:
                await b.judge([item(4)])
            assert info.value.retry_after_s >= 1
            await asyncio.gather(busy, waiting)

    asyncio.run(main())


def test_invalid_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        DynamicBatcher(RecordingVerifier().verify, max_batch_size=0)
