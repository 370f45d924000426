"""The one HTTP retry helper (verifiers/backends/http.py): what an attempt's failure maps to,
how long it waits, when it stops. A mocked transport, no network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from rewardbridge.verifiers.backends.http import (
    AttemptError,
    RetryPolicy,
    request_json,
    retry_after_seconds,
    with_retries,
)
from rewardbridge.verifiers.base import Status


def test_retry_after_seconds_reads_delta_and_http_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("100000") == 60.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:25 GMT", now=now) == pytest.approx(5.0)


def test_backoff_doubles_up_to_its_cap_and_retry_after_wins() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=4.0)
    for retry, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        assert cap / 2 <= policy.delay(retry) <= cap
    assert policy.delay(1, AttemptError("busy", retry_after=7.0)) == 7.0


def test_policy_names_a_bad_field() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff_s"):
        RetryPolicy(backoff_s=-0.1)


def answer(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def attempt_error(handler: Callable[[httpx.Request], httpx.Response]) -> AttemptError:
    async def go() -> AttemptError:
        async with answer(handler) as client:
            try:
                await request_json(client, "GET", "http://s/x", timeout=1.0)
            except AttemptError as exc:
                return exc
        raise AssertionError("no AttemptError")

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("code", "retryable", "server_fault"),
    [(400, False, False), (401, False, False), (408, True, False), (429, True, False),
     (500, True, True), (503, True, True), (501, False, True)],
)  # fmt: skip
def test_http_errors_map_to_retryable_or_final(
    code: int, retryable: bool, server_fault: bool
) -> None:
    exc = attempt_error(lambda r: httpx.Response(code, json={"detail": "nope"}))
    assert exc.status is Status.BACKEND_ERROR
    assert (exc.retryable, exc.server_fault) == (retryable, server_fault)
    assert f"HTTP {code}: nope" in exc.reason


def test_retry_after_header_is_read() -> None:
    exc = attempt_error(lambda r: httpx.Response(503, headers={"Retry-After": "3"}))
    assert exc.retry_after == 3.0


def test_connection_error_timeout_and_bad_json() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    refused = attempt_error(refuse)
    assert refused.retryable and refused.server_fault and "ConnectError" in refused.reason
    timed_out = attempt_error(slow)
    assert timed_out.status is Status.TIMEOUT and "1 s" in timed_out.reason
    assert timed_out.retryable and not timed_out.server_fault
    not_json = attempt_error(lambda r: httpx.Response(200, text="<html>"))
    assert not not_json.retryable and "not JSON" in not_json.reason


def test_ok_body_is_returned() -> None:
    async def go() -> object:
        async with answer(lambda r: httpx.Response(200, json={"ok": 1})) as client:
            return await request_json(client, "POST", "http://s/x", json={}, timeout=1.0)

    assert asyncio.run(go()) == {"ok": 1}


def run_attempts(failures: list[AttemptError], policy: RetryPolicy) -> tuple[object, int, int]:
    calls, retries = 0, 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "done"

    def count(error: AttemptError) -> None:
        nonlocal retries
        retries += 1

    try:
        result: object = asyncio.run(with_retries(attempt, policy, on_retry=count))
    except AttemptError as exc:
        result = exc
    return result, calls, retries


FAST = RetryPolicy(max_retries=2, backoff_s=0.0)


def test_transient_failures_are_retried_until_success() -> None:
    result, calls, retries = run_attempts([AttemptError("a"), AttemptError("b")], FAST)
    assert (result, calls, retries) == ("done", 3, 2)


def test_retries_are_bounded_and_the_last_error_says_how_many() -> None:
    failures = [AttemptError("x", status=Status.TIMEOUT) for _ in range(5)]
    result, calls, retries = run_attempts(failures, FAST)
    assert isinstance(result, AttemptError) and not result.retryable
    assert result.status is Status.TIMEOUT and result.reason == "x (after 3 attempts)"
    assert (calls, retries) == (3, 2)


def test_a_final_error_is_not_retried() -> None:
    result, calls, _ = run_attempts([AttemptError("bad request", retryable=False)], FAST)
    assert isinstance(result, AttemptError) and result.reason == "bad request (after 1 attempt)"
    assert calls == 1
