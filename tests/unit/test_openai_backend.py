"""OpenAIBackend against a loopback fake vLLM server: parsing, concurrency, retries, failover."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator

import pytest

from fakes.fake_vllm import FakeVLLM, unused_port_url
from rewardbridge.verifiers.backends.base import FirstToken
from rewardbridge.verifiers.backends.openai_backend import (
    OpenAIBackend,
    api_root,
    parse_first_token,
)
from rewardbridge.verifiers.base import Status, VerifierResult


def judge_conversation(response: str, reference: str) -> list[dict[str, str]]:
    """The paper's layout, enough for the fake server to find the two slots."""
    user = (
        "Given a problem, ...  \n\n---\n\n**Question:**  \nq  \n\n"
        f"**Solution Process (Final Step Only):**  \n{response}  \n\n"
        f"**Reference Answer:**  \n{reference}  \n\n**Output:**  \n"
    )
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": user},
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLM]:
    with FakeVLLM() as srv:
        yield srv


@pytest.fixture()
def fake(server: FakeVLLM) -> FakeVLLM:
    return server.reset()


def backend(urls: str | list[str], **kw: object) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(urls, **kw)  # type: ignore[arg-type]


# -- pure parts ------------------------------------------------------------------------------


VLLM_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "judge",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "YES"},
            "logprobs": {
                "content": [
                    {
                        "token": "YES",
                        "logprob": -0.1,
                        "bytes": [89, 69, 83],
                        "top_logprobs": [
                            {"token": "YES", "logprob": -0.1, "bytes": [89, 69, 83]},
                            {"token": "NO", "logprob": -2.5, "bytes": [78, 79]},
                            {"token": "NO", "logprob": -2.5, "bytes": [78, 79]},
                            {"token": "Yes", "logprob": -6.0, "bytes": [89, 101, 115]},
                        ],
                    }
                ]
            },
            "finish_reason": "length",
        }
    ],
}


def test_parse_first_token_reads_vllm_format_and_merges_duplicate_texts() -> None:
    first = parse_first_token(VLLM_BODY)
    assert first.chosen == "YES"
    assert first.logprobs["YES"] == pytest.approx(-0.1)
    assert first.logprobs["Yes"] == pytest.approx(-6.0)
    # two token ids that decode to "NO": probabilities add
    assert first.logprobs["NO"] == pytest.approx(math.log(2 * math.exp(-2.5)))


def test_parse_first_token_keeps_a_chosen_token_outside_the_top_list() -> None:
    body = {
        "choices": [
            {
                "logprobs": {
                    "content": [
                        {
                            "token": "NO",
                            "logprob": -3.0,
                            "top_logprobs": [{"token": "YES", "logprob": -0.06}],
                        }
                    ]
                }
            }
        ]
    }
    first = parse_first_token(body)
    assert first.chosen == "NO"
    assert dict(first.logprobs) == {"YES": -0.06, "NO": -3.0}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"choices": []},
        {"choices": [{"logprobs": None}]},
        {"choices": [{"logprobs": {"content": []}}]},
        {"choices": [{"logprobs": {"content": [{}]}}]},
    ],
)
def test_parse_first_token_names_what_is_missing(body: dict) -> None:
    with pytest.raises(ValueError, match=r"choices|token"):
        parse_first_token(body)


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/", "http://h:8000/v1"),
        ("http://h:8000/v1", "http://h:8000/v1"),
        ("https://h/v1/", "https://h/v1"),
    ],
)
def test_api_root_accepts_base_with_or_without_v1(url: str, root: str) -> None:
    assert api_root(url) == root


def test_api_root_rejects_a_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="http"):
        api_root("localhost:8000")


def test_constructor_validates_options() -> None:
    with pytest.raises(ValueError, match="top_logprobs"):
        OpenAIBackend("http://h", top_logprobs=50)
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAIBackend("http://h", max_concurrency=0)
    with pytest.raises(ValueError, match="base_urls"):
        OpenAIBackend([])
    with pytest.raises(ValueError, match="max_retries"):
        OpenAIBackend("http://h", max_retries=-1)


# -- against the fake server -------------------------------------------------------------------


def test_first_tokens_yes_and_no_with_logprobs(fake: FakeVLLM) -> None:
    convs = [judge_conversation("42", "42"), judge_conversation("41", "42")]
    with backend(fake.url + "/v1", api_key="sk-test") as b:
        out = b.first_tokens(convs)
        b.first_tokens(convs[:1])
    assert all(isinstance(o, FirstToken) for o in out)
    yes, no = out
    assert isinstance(yes, FirstToken) and isinstance(no, FirstToken)
    assert yes.chosen == "YES" and no.chosen == "NO"
    assert math.exp(yes.logprobs["YES"]) == pytest.approx(0.9)
    assert math.exp(yes.logprobs["NO"]) == pytest.approx(0.06)
    assert len(yes.logprobs) == 20
    # the request is the paper's: one greedy token with the top-20 log-probabilities
    req = fake.requests[0]
    assert req["max_tokens"] == 1 and req["temperature"] == 0.0
    assert req["logprobs"] is True and req["top_logprobs"] == 20
    assert req["model"] == "fake-judge" and req["messages"] == convs[0]
    assert fake.headers[0]["authorization"] == "Bearer sk-test"
    assert fake.model_calls == 1  # the served model name is asked once and cached


def test_sample_mode_sends_temperature_one(fake: FakeVLLM) -> None:
    with backend(fake.url, sample=True, served_model="fake-judge") as b:
        b.first_tokens([judge_conversation("1", "1")])
    assert fake.requests[0]["temperature"] == 1.0
    assert fake.model_calls == 0


def test_concurrency_is_bounded(fake: FakeVLLM) -> None:
    fake.reset(latency_s=0.05)
    with backend(fake.url, max_concurrency=3) as b:
        out = b.first_tokens([judge_conversation(str(i), "3") for i in range(12)])
    assert [o.chosen for o in out if isinstance(o, FirstToken)].count("YES") == 1
    assert fake.max_in_flight == 3


def test_transient_500s_are_retried(fake: FakeVLLM) -> None:
    fake.reset(fail_first=2)
    with backend(fake.url, max_concurrency=1, max_retries=3) as b:
        out = b.first_tokens([judge_conversation("a", "a")])
        assert b.stats.retries == 2
    assert isinstance(out[0], FirstToken) and out[0].chosen == "YES"
    assert fake.calls == 3


def test_429_honours_retry_after(fake: FakeVLLM) -> None:
    fake.reset(fail_first=1, fail_status=429, retry_after="0.3")
    with backend(fake.url, max_retries=1) as b:
        start = time.perf_counter()
        out = b.first_tokens([judge_conversation("a", "a")])
        elapsed = time.perf_counter() - start
    assert isinstance(out[0], FirstToken)
    assert elapsed >= 0.3


def test_persistent_failure_fails_only_its_items(fake: FakeVLLM) -> None:
    fake.reset(fail_first=2)
    with backend(fake.url, max_concurrency=1, max_retries=0) as b:
        out = b.first_tokens([judge_conversation(str(i), "0") for i in range(5)])
    failed = [o for o in out if isinstance(o, VerifierResult)]
    assert len(failed) == 2 and len(out) == 5
    for res in failed:
        assert res.status is Status.BACKEND_ERROR and res.score is None
        assert "HTTP 500" in (res.reason or "") and "1 attempt" in (res.reason or "")
    assert all(isinstance(o, FirstToken) for o in out if not isinstance(o, VerifierResult))


def test_timeout_gives_timeout_status(fake: FakeVLLM) -> None:
    fake.reset(hang_first=1, hang_s=2.0)
    with backend(fake.url, timeout=0.2, max_retries=0, served_model="fake-judge") as b:
        out = b.first_tokens([judge_conversation("a", "a")])
    assert isinstance(out[0], VerifierResult)
    assert out[0].status is Status.TIMEOUT
    assert "0.2 s" in (out[0].reason or "")


def test_client_error_is_not_retried(fake: FakeVLLM) -> None:
    fake.reset(max_logprobs=5)
    with backend(fake.url, max_retries=3) as b:
        out = b.first_tokens([judge_conversation("a", "a")])
    assert isinstance(out[0], VerifierResult) and out[0].status is Status.BACKEND_ERROR
    assert "HTTP 400" in (out[0].reason or "") and "exceeds max of 5" in (out[0].reason or "")
    assert fake.calls == 1


def test_server_without_logprobs_is_a_backend_error(fake: FakeVLLM) -> None:
    fake.reset(no_logprobs=True)
    with backend(fake.url) as b:
        out = b.first_tokens([judge_conversation("a", "a")])
    assert isinstance(out[0], VerifierResult) and out[0].status is Status.BACKEND_ERROR
    assert "logprobs" in (out[0].reason or "")


def test_failover_to_the_second_url(fake: FakeVLLM) -> None:
    dead = unused_port_url()
    with backend([dead, fake.url], max_retries=2, served_model="fake-judge") as b:
        out = b.first_tokens([judge_conversation(str(i), "1") for i in range(6)])
        by_url = dict(b.stats.by_url)
    assert all(isinstance(o, FirstToken) for o in out)
    assert fake.calls == 6
    # the dead server is tried, marked down, then skipped
    assert 1 <= by_url.get(dead + "/v1", 0) < 6


def test_model_listing_fails_over_too(fake: FakeVLLM) -> None:
    with FakeVLLM() as down:
        down.reset(down=True)
        with backend([down.url, fake.url], max_retries=1) as b:
            out = b.first_tokens([judge_conversation("x", "x")] * 3)
    assert all(isinstance(o, FirstToken) and o.chosen == "YES" for o in out)


def test_all_servers_down_fails_every_item_without_raising(fake: FakeVLLM) -> None:
    fake.reset(down=True)
    with backend([fake.url, unused_port_url()], max_retries=1) as b:
        out = b.first_tokens([judge_conversation("x", "x")] * 3)
    assert len(out) == 3
    assert all(isinstance(o, VerifierResult) and o.status is Status.BACKEND_ERROR for o in out)


def test_sync_call_from_inside_a_running_event_loop(fake: FakeVLLM) -> None:
    b = backend(fake.url)

    async def main() -> tuple[list, list]:
        sync_out = b.first_tokens([judge_conversation("a", "a")])  # blocks, must not deadlock
        async_out = await b.afirst_tokens([judge_conversation("a", "b")])
        return sync_out, async_out

    try:
        sync_out, async_out = asyncio.run(main())
    finally:
        b.close()
    assert isinstance(sync_out[0], FirstToken) and sync_out[0].chosen == "YES"
    assert isinstance(async_out[0], FirstToken) and async_out[0].chosen == "NO"


def test_calls_from_many_threads_share_one_backend(fake: FakeVLLM) -> None:
    results: dict[int, list] = {}
    with backend(fake.url, max_concurrency=4) as b:

        def work(i: int) -> None:
            results[i] = b.first_tokens([judge_conversation(str(i), "2")] * 3)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert fake.calls == 12 and fake.max_in_flight <= 4
    assert [r[0].chosen for r in (results[i] for i in range(4))] == ["NO", "NO", "YES", "NO"]


def test_close_is_idempotent_and_final(fake: FakeVLLM) -> None:
    b = backend(fake.url)
    assert b.first_tokens([]) == []
    b.close()
    b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.first_tokens([judge_conversation("a", "a")])


def test_a_dropped_backend_stops_its_thread(fake: FakeVLLM) -> None:
    import gc

    b = backend(fake.url)
    b.first_tokens([judge_conversation("a", "a")])
    thread = b._thread
    assert thread is not None and thread.is_alive()
    del b
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
