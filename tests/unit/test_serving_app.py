"""The reward server over HTTP: both protocols, limits, auth, metrics, failures.

TestClient where no real concurrency is needed; a loopback uvicorn + httpx.AsyncClient for
the concurrent burst.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from fakes.loopback import loopback_server as serve_app
from rewardbridge.data.example import JudgeItem
from rewardbridge.serving.app import create_app
from rewardbridge.serving.config import ServerConfig
from rewardbridge.serving.schema import (
    parse_label,
    question_from_prompt,
    response_from_query,
)
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.remote import RemoteVerifier


class ContainsDouble:
    """1.0 when the reference occurs in the response, 0.0 otherwise; empty -> unjudged."""

    name = "contains-double"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.fail = False
        self.seen: list[JudgeItem] = []
        self.batches: list[int] = []

    def verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.batches.append(len(items))
        self.seen.extend(items)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("judge model crashed")
        return [
            VerifierResult.failed(Status.EMPTY_RESPONSE, "empty response")
            if not it.response.strip()
            else VerifierResult.ok(
                1.0 if it.reference in it.response else 0.0,
                judgment="YES" if it.reference in it.response else "NO",
                p_yes=0.9 if it.reference in it.response else 0.1,
                p_no=0.1 if it.reference in it.response else 0.9,
            )
            for it in items
        ]

    def close(self) -> None:
        pass


CHATML = (
    "<|im_start|>system\nBe brief.<|im_end|>\n"
    "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
)


def openrlhf_body(n: int, start: int = 0) -> dict[str, list[str]]:
    prompts = [CHATML.format(q=f"What is {i}+{i}?") for i in range(start, start + n)]
    answers = [f"{2 * i}" if i % 3 else "no idea" for i in range(start, start + n)]
    return {
        "query": [
            p + f"The answer is {a}<|im_end|>" for p, a in zip(prompts, answers, strict=True)
        ],
        "prompts": prompts,
        "labels": [str(2 * i) for i in range(start, start + n)],
    }


def expected_rewards(n: int, start: int = 0) -> list[float]:
    return [1.0 if i % 3 else 0.0 for i in range(start, start + n)]


@contextmanager
def client(verifier: ContainsDouble, **config: object) -> Iterator[TestClient]:
    with TestClient(create_app(verifier, ServerConfig(**config))) as c:  # type: ignore[arg-type]
        yield c


# --- protocol translation -------------------------------------------------------------------


def test_response_is_query_minus_prompt_without_special_tokens() -> None:
    prompt = CHATML.format(q="Capital of France?")
    assert response_from_query(prompt + "It is Paris.<|im_end|>", prompt) == "It is Paris."
    assert response_from_query("Q: x A: 4</s>", "Q: x") == "A: 4"
    assert question_from_prompt(prompt) == "Capital of France?"
    llama = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert question_from_prompt(llama) == "Why?"


def test_label_is_plain_reference_or_json_object() -> None:
    assert parse_label("42", 0) == ("42", None)
    assert parse_label('{"question": "q?", "reference": "r"}', 0) == ("r", "q?")
    assert parse_label({"answer": "a"}, 0) == ("a", None)
    assert parse_label("{not json}", 0) == ("{not json}", None)
    assert parse_label(18, 0) == ("18", None)
    with pytest.raises(ValueError, match=r"labels\[3\]"):
        parse_label('{"question": "q"}', 3)


# --- endpoints --------------------------------------------------------------------------------


def test_get_reward_scores_each_query() -> None:
    verifier = ContainsDouble()
    with client(verifier) as c:
        r = c.post("/get_reward", json=openrlhf_body(6))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rewards"] == expected_rewards(6)
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["unjudged"] == [0.0] * 6
    assert verifier.seen[1].question == "What is 1+1?"
    assert verifier.seen[1].response == "The answer is 2"


@pytest.mark.parametrize("fallback", [None, -1.0])
def test_get_reward_unjudged_gets_nan_score_and_a_flag(
    fallback: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Unjudged: score NaN (written as the JSON constant NaN, which Python's json reads), reward
    NaN unless --fallback-reward chose one; the advice is logged once per process."""
    import rewardbridge.serving.schema as schema

    schema._warned_nan_reward = False
    body = {
        "query": ["P1 The answer is 3", "P2<|im_end|>"],
        "prompts": ["P1", "P2"],
        "labels": ['{"question": "1+2?", "reference": "3"}', "4"],
    }
    options = {} if fallback is None else {"fallback_reward": fallback}
    with client(ContainsDouble(), **options) as c:
        first = c.post("/get_reward", json=body)
        c.post("/get_reward", json=body)
    assert first.status_code == 200 and "NaN" in first.text
    out = json.loads(first.text)
    assert out["rewards"][0] == out["scores"][0] == 1.0
    assert math.isnan(out["scores"][1])
    assert math.isnan(out["rewards"][1]) if fallback is None else out["rewards"][1] == -1.0
    assert out["extra_logs"]["unjudged"] == [0.0, 1.0]
    advice = [r for r in caplog.records if "dynamic_filtering_enable" in r.getMessage()]
    assert len(advice) == (1 if fallback is None else 0)


def test_native_judge_reports_status_and_probabilities() -> None:
    items = [
        {"id": "a", "question": "q", "reference": "Paris", "response": "Paris."},
        {"question": "q", "reference": "Paris", "response": "Lyon"},
        {"question": "q", "reference": "Paris", "response": "  "},
    ]
    with client(ContainsDouble()) as c:
        out = c.post("/v1/judge", json={"items": items}).json()
    assert [r["id"] for r in out["results"]] == ["a", "1", "2"]
    assert [r["reward"] for r in out["results"]] == [1.0, 0.0, None]
    assert [r["status"] for r in out["results"]] == ["judged", "judged", "empty_response"]
    assert out["results"][0]["p_yes"] == 0.9 and out["results"][1]["judgment"] == "NO"
    assert (out["judged"], out["unjudged"]) == (2, 1)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/judge", {"items": [{"question": "q", "reference": "r"}]}, "response"),
        ("/v1/judge", {"items": []}, "items"),
        ("/v1/judge", {"itms": []}, "items"),
        ("/get_reward", {"query": ["a"], "prompts": ["a"]}, "labels"),
        ("/get_reward", {"query": ["a", "b"], "prompts": ["a"], "labels": ["x", "y"]}, "prompts"),
        ("/get_reward", {"query": "abc", "labels": ["x"]}, "query"),
        ("/get_reward", {"query": ["a"], "labels": ['{"question": "q"}']}, "labels"),
    ],
)
def test_malformed_bodies_get_422_naming_the_field(path: str, body: object, field: str) -> None:
    with client(ContainsDouble()) as c:
        r = c.post(path, json=body)
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])


def test_not_json_gets_422() -> None:
    with client(ContainsDouble()) as c:
        r = c.post("/get_reward", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_body_over_the_limit_gets_413() -> None:
    with client(ContainsDouble(), max_body_bytes=200) as c:
        r = c.post("/get_reward", json=openrlhf_body(5))
        small = c.post(
            "/v1/judge", json={"items": [{"question": "q", "reference": "r", "response": "r"}]}
        )
    assert r.status_code == 413
    assert small.status_code == 200


def test_bearer_token_is_required_when_configured() -> None:
    with client(ContainsDouble(), auth_token="s3cret") as c:
        assert c.post("/get_reward", json=openrlhf_body(1)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/get_reward", json=openrlhf_body(1), headers=wrong).status_code == 401
        assert c.get("/metrics").status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.post("/get_reward", json=openrlhf_body(1), headers=ok).status_code == 200
        assert c.get("/health").status_code == 200


def test_failing_backend_gives_per_item_errors_and_server_continues() -> None:
    verifier = ContainsDouble()
    with client(verifier) as c:
        verifier.fail = True
        bad = c.post(
            "/v1/judge", json={"items": [{"question": "q", "reference": "r", "response": "r"}]}
        ).json()
        bad_rlhf = c.post("/get_reward", json=openrlhf_body(2)).json()
        verifier.fail = False
        good = c.post("/get_reward", json=openrlhf_body(3)).json()
    assert bad["results"][0]["status"] == "backend_error"
    assert bad["results"][0]["reward"] is None and "crashed" in bad["results"][0]["reason"]
    assert bad_rlhf["extra_logs"]["unjudged"] == [1.0, 1.0]
    assert good["rewards"] == expected_rewards(3)


def test_request_timeout_answers_timeout_per_item() -> None:
    with client(ContainsDouble(delay_s=0.5), request_timeout_s=0.05) as c:
        out = c.post(
            "/v1/judge", json={"items": [{"question": "q", "reference": "r", "response": "r"}]}
        ).json()
    assert out["results"][0]["status"] == "timeout"
    assert out["results"][0]["reward"] is None


def test_health_and_metrics() -> None:
    with client(ContainsDouble()) as c:
        c.post("/get_reward", json=openrlhf_body(4))
        c.get("/no/such/path")
        health = c.get("/health").json()
        text = c.get("/metrics").text
    assert health["status"] == "ok" and health["verifier"] == "contains-double"
    assert 'rewardbridge_requests_total{code="200",endpoint="/get_reward"} 1.0' in text
    assert 'rewardbridge_items_total{status="judged"} 4.0' in text
    assert "rewardbridge_batch_size_count" in text
    assert "rewardbridge_queue_depth 0.0" in text
    assert 'rewardbridge_requests_total{code="404",endpoint="other"} 1.0' in text


def test_default_bind_is_loopback() -> None:
    from rewardbridge.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_serve_flags_are_the_server_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ServerConfig field has a flag whose default is the field's; a flag's value
    reaches its field; a bad value is an error naming the field."""
    from rewardbridge.cli import build_parser
    from rewardbridge.cli.serve_cmd import server_config

    monkeypatch.delenv("REWARDBRIDGE_AUTH_TOKEN", raising=False)
    default = server_config(build_parser().parse_args(["serve"]))
    assert repr(default) == repr(ServerConfig())  # repr: NaN != NaN
    flags = ["--max-batch-size", "8", "--request-timeout", "9", "--record", "r.jsonl",
             "--canaries", "0.1", "--canary-max-fpr", "0.3", "--fallback-reward", "-1",
             "--auth-token", "t"]  # fmt: skip
    config = server_config(build_parser().parse_args(["serve", *flags]))
    assert (config.max_batch_size, config.request_timeout_s, config.record_path) == (
        8,
        9,
        "r.jsonl",
    )
    assert (config.canary_share, config.canary_max_fpr, config.fallback_reward) == (0.1, 0.3, -1)
    assert config.auth_token == "t"
    with pytest.raises(ValueError, match="max_queue must be >= 1"):
        server_config(build_parser().parse_args(["serve", "--max-queue", "0"]))
    with pytest.raises(ValueError, match=r"canary_max_fpr must be in \[0, 1\]"):
        server_config(build_parser().parse_args(["serve", "--canary-max-fpr", "2"]))


# --- real concurrency on a loopback server ----------------------------------------------------


@contextmanager
def loopback_server(verifier: ContainsDouble, **config: object) -> Iterator[str]:
    with serve_app(create_app(verifier, ServerConfig(**config))) as url:  # type: ignore[arg-type]
        yield url


def test_burst_of_concurrent_openrlhf_requests_gets_one_answer_each_in_order() -> None:
    verifier = ContainsDouble(delay_s=0.005)
    n_requests, per_request = 200, 2

    async def burst(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n_requests)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
            return await asyncio.gather(
                *(
                    c.post("/get_reward", json=openrlhf_body(per_request, start=k * per_request))
                    for k in range(n_requests)
                )
            )

    with loopback_server(verifier, max_batch_size=64) as url:
        responses = asyncio.run(burst(url))
    assert [r.status_code for r in responses] == [200] * n_requests
    for k, r in enumerate(responses):
        assert r.json()["rewards"] == expected_rewards(per_request, start=k * per_request)
    assert len(verifier.seen) == n_requests * per_request  # none lost, none judged twice
    assert max(verifier.batches) > 1  # requests were merged


def test_full_queue_answers_503_with_retry_after() -> None:
    verifier = ContainsDouble(delay_s=0.3)

    async def flood(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            return await asyncio.gather(
                *(c.post("/get_reward", json=openrlhf_body(2, start=2 * k)) for k in range(12))
            )

    with loopback_server(verifier, max_batch_size=2, max_queue=4, max_wait_ms=0) as url:
        responses = asyncio.run(flood(url))
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    busy = next(r for r in responses if r.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1


def test_remote_verifier_round_trip() -> None:
    items = [
        JudgeItem(id=str(i), question="q", reference=str(i), response=f"it is {i % 4}")
        for i in range(10)
    ]
    with loopback_server(ContainsDouble(), auth_token="tok") as url:
        with RemoteVerifier(url, api_key="tok", chunk_size=3) as remote:
            results = remote.verify(items)
        async_results = asyncio.run(RemoteVerifier(url, api_key="tok").averify(items))
        refused = RemoteVerifier(url, max_retries=0).verify(items[:2])
    assert [r.score for r in results] == [1.0 if i < 4 else 0.0 for i in range(10)]
    assert [r.score for r in async_results] == [r.score for r in results]
    assert results[0].p_yes == 0.9 and results[0].stage == "remote"
    assert [r.status for r in refused] == [Status.BACKEND_ERROR] * 2


def test_remote_verifier_unreachable_server_is_backend_error() -> None:
    remote = RemoteVerifier("http://127.0.0.1:9", max_retries=1, timeout=2)
    results = remote.verify([JudgeItem(id="0", question="q", reference="r", response="r")])
    assert results[0].status is Status.BACKEND_ERROR and results[0].score is None


def test_health_answers_while_the_verifier_is_busy() -> None:
    verifier = ContainsDouble(delay_s=1.0)

    async def probe(url: str) -> tuple[float, int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            busy = asyncio.create_task(c.post("/get_reward", json=openrlhf_body(1)))
            await asyncio.sleep(0.2)  # the batch is in the worker thread now
            start = time.perf_counter()
            health = await c.get("/health")
            seconds = time.perf_counter() - start
            await busy
            return seconds, health.json()["queue_depth"]

    with loopback_server(verifier, max_wait_ms=0) as url:
        seconds, depth = asyncio.run(probe(url))
    assert seconds < 0.5 and depth == 0
