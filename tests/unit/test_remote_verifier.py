"""RemoteVerifier against a mocked transport: retries through the shared helper, failures as
unjudged results, sync calls from inside an event loop. The real server round trip is in
test_serving_app.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import Status
from rewardbridge.verifiers.registry import build_verifier
from rewardbridge.verifiers.remote import RemoteVerifier, judge_request

ITEMS = [JudgeItem(id=str(i), question="q", reference="r", response=f"r{i}") for i in range(5)]


def answer_ok(request: httpx.Request) -> httpx.Response:
    rows = json.loads(request.content)["items"]
    results = [
        {"id": r["id"], "reward": 1.0, "status": "judged", "judgment": "YES", "p_yes": 0.9}
        for r in rows
    ]
    return httpx.Response(200, json={"results": results})


@pytest.fixture()
def mock_server(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[httpx.Request]]:
    """Route every AsyncClient of the test to ``handler``; returns the requests seen."""

    def install(handler: Callable[[httpx.Request], httpx.Response]) -> list[httpx.Request]:
        seen: list[httpx.Request] = []
        real = httpx.AsyncClient

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        def client(**kw: object) -> httpx.AsyncClient:
            return real(transport=httpx.MockTransport(record), **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(httpx, "AsyncClient", client)
        return seen

    return install


def test_request_body_is_the_native_protocol() -> None:
    body = judge_request(ITEMS[:1])
    assert body == {"items": [{"id": "0", "question": "q", "reference": "r", "response": "r0"}]}


def test_chunks_and_results(mock_server: Callable[..., list[httpx.Request]]) -> None:
    seen = mock_server(answer_ok)
    out = RemoteVerifier("http://s", chunk_size=2, api_key="k").verify(ITEMS)
    assert [r.score for r in out] == [1.0] * 5 and out[0].stage == "remote"
    assert len(seen) == 3 and seen[0].headers["authorization"] == "Bearer k"


def test_busy_server_is_retried_after_retry_after(
    mock_server: Callable[..., list[httpx.Request]],
) -> None:
    calls = 0

    def busy_once(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "full"})
        return answer_ok(request)

    mock_server(busy_once)
    out = RemoteVerifier("http://s").verify(ITEMS[:2])
    assert calls == 2 and all(r.judged for r in out)


def test_persistent_failure_is_unjudged_and_says_why(
    mock_server: Callable[..., list[httpx.Request]],
) -> None:
    mock_server(lambda r: httpx.Response(503, headers={"Retry-After": "0"}))
    out = RemoteVerifier("http://s", max_retries=2).verify(ITEMS[:2])
    assert [r.status for r in out] == [Status.BACKEND_ERROR] * 2
    assert all(r.score is None for r in out)
    assert "HTTP 503" in (out[0].reason or "") and "after 3 attempts" in (out[0].reason or "")


def test_a_malformed_answer_is_not_retried(mock_server: Callable[..., list[httpx.Request]]) -> None:
    seen = mock_server(lambda r: httpx.Response(200, json={"results": []}))
    out = RemoteVerifier("http://s").verify(ITEMS[:2])
    assert len(seen) == 1 and out[0].status is Status.BACKEND_ERROR
    assert "2 items" in (out[0].reason or "")


def test_sync_verify_inside_a_running_event_loop(
    mock_server: Callable[..., list[httpx.Request]],
) -> None:
    mock_server(answer_ok)

    async def caller() -> list[float | None]:
        return [r.score for r in RemoteVerifier("http://s").verify(ITEMS[:2])]

    assert asyncio.run(caller()) == [1.0, 1.0]


def test_registry_builds_it() -> None:
    remote = build_verifier("remote", url="http://127.0.0.1:8000", timeout=5.0)
    assert isinstance(remote, RemoteVerifier) and remote.timeout == 5.0
    with pytest.raises(ValueError, match="http"):
        RemoteVerifier("127.0.0.1:8000")
