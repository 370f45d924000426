"""GenerativeVerifier, CascadeVerifier and `rewardbridge judge` over the fake vLLM server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.fake_vllm import FakeVLLM, top_logprobs
from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.backends.base import FirstToken
from rewardbridge.verifiers.backends.http import RetryPolicy
from rewardbridge.verifiers.base import Status
from rewardbridge.verifiers.cascade import CascadeVerifier
from rewardbridge.verifiers.generative import GenerativeVerifier
from rewardbridge.verifiers.judgment import YES, judgment_probabilities


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLM]:
    with FakeVLLM() as srv:
        yield srv


@pytest.fixture()
def fake(server: FakeVLLM) -> FakeVLLM:
    return server.reset()


def item(id: str, response: str, reference: str = "42") -> JudgeItem:
    return JudgeItem(id=id, question="What is 6 x 7?", reference=reference, response=response)


ITEMS = [
    item("right", "6 x 7 = 42\n42"),  # final step "42" equals the reference
    item("wrong", "6 x 7 = 41\n41"),
    item("empty", "   "),
]


def expected_p_yes() -> float:
    """p(YES) summed over its variants in the fake's top-20 for a YES verdict."""
    first = FirstToken("YES", dict(top_logprobs("YES", 0.9, 20)))
    return judgment_probabilities(first)[0]


def test_binary_judgments_through_the_server(fake: FakeVLLM) -> None:
    with GenerativeVerifier(base_url=fake.url, reward="binary") as judge:
        right, wrong, empty = judge.verify(ITEMS)
    assert right.score == 1.0 and right.judgment == "YES" and right.stage == "generative"
    assert wrong.score == 0.0 and wrong.judgment == "NO"
    assert right.p_yes == pytest.approx(expected_p_yes()) and right.p_yes > 0.9
    assert empty.status is Status.EMPTY_RESPONSE and empty.score is None
    assert fake.calls == 2  # the empty response never reached the server
    # the judge saw the paper's conversation with the final step in the response slot
    user = fake.requests[0]["messages"][-1]["content"]
    assert fake.requests[0]["messages"][0]["content"] == "You are a helpful assistant."
    assert "6 x 7 = 4" not in user


def test_soft_rewards_through_the_server(fake: FakeVLLM) -> None:
    with GenerativeVerifier(base_url=fake.url + "/v1", reward="soft") as judge:
        right, wrong = judge.verify(ITEMS[:2])
    assert right.score == pytest.approx(0.9)  # Eq. 4: p(YES)
    assert wrong.score == pytest.approx(0.1)  # Eq. 4: 1 - p(NO)
    with GenerativeVerifier(base_url=fake.url, reward="soft-normalized") as judge:
        (right,) = judge.verify(ITEMS[:1])
    p_yes = expected_p_yes()
    p_no = right.p_no or 0.0
    assert right.score == pytest.approx(p_yes / (p_yes + p_no))


def test_full_response_slot_changes_the_verdict(fake: FakeVLLM) -> None:
    with GenerativeVerifier(base_url=fake.url, response_slot="full") as judge:
        (right,) = judge.verify(ITEMS[:1])
    assert right.judgment == "NO"  # the whole response is not "42"


def test_server_failure_is_unjudged_not_zero(fake: FakeVLLM) -> None:
    fake.reset(down=True)
    with GenerativeVerifier(base_url=fake.url, timeout=2.0) as judge:
        judge.backend.retry = RetryPolicy(backoff_s=0.0)  # type: ignore[attr-defined]
        results = judge.verify(ITEMS[:2])
    assert [r.status for r in results] == [Status.BACKEND_ERROR] * 2
    assert all(r.score is None and "503" in (r.reason or "") for r in results)


def test_cascade_asks_the_server_only_where_the_rule_says_no(fake: FakeVLLM) -> None:
    fake.reset(judge=lambda messages: "forty-two" in messages[-1]["content"])
    items = [item("rule-yes", "so 42"), item("rewritten", "forty-two"), item("wrong", "41")]
    with CascadeVerifier("contains", base_url=fake.url) as cascade:
        out = cascade.verify(items)
    assert [r.stage for r in out] == ["contains", "generative", "generative"]
    assert [r.score for r in out] == [1.0, 1.0, 0.0]
    assert out[1].judgment == "YES" and (out[1].reason or "").startswith("contains: score 0")
    assert fake.calls == 2


def test_judge_command_with_base_url(fake: FakeVLLM, tmp_path: Path) -> None:
    from rewardbridge.cli import main

    src = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "question": "q", "reference": "Paris", "response": "It is\nParis"},
        {"id": "b", "question": "q", "reference": "Paris", "response": "It is\nLyon"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "judged.jsonl"
    code = main(
        [
            "judge",
            str(src),
            "-o",
            str(out),
            "--no-progress",
            "--verifier",
            "generative",
            "--base-url",
            fake.url,
            "--reward",
            "soft",
        ]
    )
    assert code == 0
    lines = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert lines["a"]["reward"] == pytest.approx(0.9) and lines["a"]["judgment"] == YES
    assert lines["b"]["reward"] == pytest.approx(0.1)
    assert fake.requests[0]["top_logprobs"] == 20
