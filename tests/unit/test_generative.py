"""GenerativeVerifier: prompts in, FirstToken -> VerifierResult out, backend selection."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.backends.base import Conversation, FirstToken
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.generative import GenerativeVerifier
from rewardbridge.verifiers.registry import build_verifier


class FakeBackend:
    """Answers YES when the response slot holds the reference, NO otherwise; fails on 'boom'."""

    name = "fake"

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []
        self.closed = False

    def first_tokens(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        out: list[FirstToken | VerifierResult] = []
        for conversation in conversations:
            self.seen.append([dict(m) for m in conversation])
            user = conversation[-1]["content"]
            step = user.split("**Solution Process (Final Step Only):**  \n")[1].split("  \n")[0]
            ref = user.split("**Reference Answer:**  \n")[1].split("  \n")[0]
            if step == "boom":
                out.append(VerifierResult.failed(Status.TIMEOUT, "no answer in 1 s"))
            elif step == "ramble":
                out.append(FirstToken("The", {"The": math.log(0.9), "NO": math.log(0.1)}))
            elif step == ref:
                out.append(FirstToken("YES", {"YES": math.log(0.8), "No": math.log(0.2)}))
            else:
                out.append(FirstToken(" NO", {" NO": math.log(0.6), "Yes": math.log(0.3)}))
        return out

    def close(self) -> None:
        self.closed = True


def items() -> list[JudgeItem]:
    return [
        JudgeItem("a", "Q1", "Paris", "Let me think.\nParis"),
        JudgeItem("b", "Q2", "4", "5"),
        JudgeItem("c", "Q1", "Paris", "   "),
        JudgeItem("d", "Q0", "x", "boom"),
        JudgeItem("e", "Q0", "x", "ramble"),
    ]


def test_results_from_first_tokens() -> None:
    backend = FakeBackend()
    verifier = GenerativeVerifier.from_backend(backend, reward="soft", constrained=False)
    results = verifier.verify(items())
    a, b, c, d, e = results
    assert (a.status, a.score, a.judgment) == (Status.JUDGED, pytest.approx(0.8), "YES")
    assert (a.p_yes, a.p_no) == pytest.approx((0.8, 0.2))
    assert (b.score, b.judgment, b.p_yes, b.p_no) == pytest.approx((0.4, "NO", 0.3, 0.6))
    assert c.status is Status.EMPTY_RESPONSE  # never sent to the judge
    assert d.status is Status.TIMEOUT and d.score is None
    assert e.status is Status.NO_JUDGMENT and e.score is None
    assert all(r.stage == "generative" for r in results)
    assert len(backend.seen) == 4
    assert backend.seen[0][0] == {"role": "system", "content": "You are a helpful assistant."}
    verifier.close()
    assert backend.closed
    # constrained (the default): the likeliest visible variant decides, reason names the token
    constrained = GenerativeVerifier.from_backend(FakeBackend(), reward="soft").verify(items())[4]
    assert (constrained.status, constrained.judgment) == (Status.JUDGED, "NO")
    assert constrained.reason is not None and "constrained" in constrained.reason


def test_binary_reward_and_full_response_slot() -> None:
    backend = FakeBackend()
    verifier = GenerativeVerifier.from_backend(backend, response_slot="full")
    item = JudgeItem("a", "Q1", "Paris", "Paris")
    assert verifier.verify([item])[0].score == 1.0
    assert verifier.messages(JudgeItem("b", "Q", "R", "one\ntwo"))[1]["content"].count("one\ntwo")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="reward must be one of"):
        GenerativeVerifier.from_backend(FakeBackend(), reward="hard")
    with pytest.raises(ValueError, match="response_slot"):
        GenerativeVerifier(response_slot="last")
    with pytest.raises(ValueError, match="unknown judge template"):
        GenerativeVerifier(template="nope")


def test_local_model_end_to_end(tiny_model_dir: Path) -> None:
    verifier = build_verifier(
        "generative",
        model=str(tiny_model_dir),
        reward="soft-normalized",
        device="cpu",
        batch_size=2,
    )
    assert isinstance(verifier, GenerativeVerifier)
    results = verifier.verify([JudgeItem(str(i), "Q", "R", f"answer {i}") for i in range(3)])
    for r in results:
        assert r.status is Status.JUDGED and r.judgment in {"YES", "NO"}
        assert r.p_yes is not None and r.p_no is not None
        assert r.score == pytest.approx(r.p_yes / (r.p_yes + r.p_no))
    verifier.close()


def test_base_url_selects_the_openai_backend() -> None:
    pytest.importorskip("httpx")
    from rewardbridge.verifiers.backends.openai_backend import OpenAIBackend

    verifier = GenerativeVerifier(base_url="http://127.0.0.1:9", served_model="judge", timeout=1)
    try:
        assert isinstance(verifier.backend, OpenAIBackend)
    finally:
        verifier.close()


def test_each_distinct_item_is_judged_once() -> None:
    backend = FakeBackend()
    verifier = GenerativeVerifier.from_backend(backend, reward="soft")
    group = [
        JudgeItem("1", "Q1", "Paris", "Step 1.\nParis"),
        JudgeItem("2", "Q1", "Paris", "Other reasoning.\nParis"),  # same final step
        JudgeItem("3", "Q1", "Paris", "Lyon"),
        JudgeItem("4", "Q2", "Paris", "Paris"),  # another question: its own judgment
        JudgeItem("5", "Q1", "Paris", "Lyon"),
    ]
    results = verifier.verify(group)
    assert len(backend.seen) == 3
    assert results[0].score == results[1].score == results[3].score == pytest.approx(0.8)
    assert results[2] == results[4] and results[2].judgment == "NO"
    assert (verifier.items_seen, verifier.distinct_items) == (5, 3)


def test_sampling_judges_every_copy() -> None:
    backend = FakeBackend()
    backend.sample = True  # type: ignore[attr-defined]
    verifier = GenerativeVerifier.from_backend(backend)
    verifier.verify([JudgeItem(str(i), "Q", "R", "R") for i in range(3)])
    assert len(backend.seen) == 3


def test_local_dtype_and_token_budget_reach_the_backend(tiny_model_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    verifier = GenerativeVerifier(
        model=str(tiny_model_dir), device="cpu", dtype="bfloat16", max_batch_tokens=512
    )
    backend = verifier.backend
    assert getattr(backend, "dtype", None) is torch.bfloat16
    assert getattr(backend, "max_batch_tokens", None) == 512
    verifier.close()
