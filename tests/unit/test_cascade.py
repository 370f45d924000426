"""CascadeVerifier: rule first, the judge only where the rule does not say yes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult
from rewardbridge.verifiers.cascade import CascadeVerifier, accepted_by_rule
from rewardbridge.verifiers.registry import build_verifier


class Stub(BaseVerifier):
    """A verifier whose result per item is ``decide(item)``; records what it was asked."""

    def __init__(self, name: str, decide: Callable[[JudgeItem], VerifierResult]) -> None:
        self.name = name
        self.decide = decide
        self.seen: list[str] = []
        self.closed = False

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.seen += [item.id for item in items]
        return [self.decide(item) for item in items]

    def close(self) -> None:
        self.closed = True


def item(id: str, response: str, reference: str = "42") -> JudgeItem:
    return JudgeItem(id=id, question="q", reference=reference, response=response)


def exact_rule(it: JudgeItem) -> VerifierResult:
    if it.reference == "?":
        return VerifierResult.failed(Status.INVALID_INPUT, "reference unparsable")
    return VerifierResult.ok(1.0 if it.response == it.reference else 0.0)


def yes_judge(it: JudgeItem) -> VerifierResult:
    return VerifierResult.ok(1.0, judgment="YES", p_yes=0.9, p_no=0.05)


def failing_judge(it: JudgeItem) -> VerifierResult:
    return VerifierResult.failed(Status.TIMEOUT, "no answer within 1 s")


def test_rule_yes_is_kept_and_the_judge_is_not_asked() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", yes_judge)
    out = CascadeVerifier(rule, judge=judge).verify([item("a", "42"), item("b", "42")])
    assert [r.score for r in out] == [1.0, 1.0]
    assert [r.stage for r in out] == ["math", "math"]
    assert judge.seen == []


def test_rule_no_and_unjudged_go_to_the_judge() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", yes_judge)
    items = [item("right", "42"), item("rewritten", "forty-two"), item("bad-ref", "x", "?")]
    out = CascadeVerifier(rule, judge=judge).verify(items)
    assert judge.seen == ["rewritten", "bad-ref"]
    assert [r.score for r in out] == [1.0, 1.0, 1.0]
    assert [r.stage for r in out] == ["math", "generative", "generative"]
    assert out[1].judgment == "YES" and out[1].p_yes == 0.9
    assert out[1].reason is not None and out[1].reason.startswith("math: score 0")
    assert "invalid_input (reference unparsable)" in (out[2].reason or "")


def test_judge_failure_after_a_rule_no_is_not_judged() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", failing_judge)
    out = CascadeVerifier(rule, judge=judge).verify([item("no", "41"), item("yes", "42")])
    assert out[0].status is Status.TIMEOUT and out[0].score is None
    assert out[0].stage == "generative"
    assert out[0].reason == (
        "math: score 0; generative could not judge (timeout (no answer within 1 s))"
    )
    assert out[1].judged and out[1].score == 1.0 and out[1].stage == "math"


def test_judge_failure_after_an_unjudged_rule_is_not_judged() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", failing_judge)
    for policy in ("unjudged", "rule"):
        cascade = CascadeVerifier(rule, judge=judge, on_judge_failure=policy)
        out = cascade.verify([item("bad-ref", "x", "?")])
        assert out[0].status is Status.TIMEOUT and out[0].score is None
        assert out[0].stage == "generative"
        assert "math: invalid_input (reference unparsable)" in (out[0].reason or "")


def test_on_judge_failure_rule_keeps_the_rules_verdict() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", failing_judge)
    cascade = CascadeVerifier(rule, judge=judge, on_judge_failure="rule")
    out = cascade.verify([item("no", "41")])
    assert out[0].judged and out[0].score == 0.0 and out[0].stage == "math"
    assert "generative could not judge (timeout" in (out[0].reason or "")


def test_on_judge_failure_must_be_known() -> None:
    with pytest.raises(ValueError, match="on_judge_failure"):
        CascadeVerifier(Stub("math", exact_rule), on_judge_failure="zero")  # type: ignore[arg-type]


# Port 9 (discard): nothing listens there, so every request is refused at once.
DEAD_JUDGE = "http://127.0.0.1:9/v1"


def test_a_dead_judge_server_judges_none_of_the_rule_rejected_items() -> None:
    cascade = build_verifier(
        "cascade", rule="contains", base_url=DEAD_JUDGE, served_model="m", max_retries=1
    )
    items = [item("yes", "the answer is 42"), item("no-1", "41"), item("no-2", "forty")]
    with cascade:  # type: ignore[attr-defined]
        out = cascade.verify(items)
    assert out[0].judged and out[0].score == 1.0
    assert [r.status for r in out[1:]] == [Status.BACKEND_ERROR, Status.BACKEND_ERROR]
    assert all(r.score is None and r.stage == "generative" for r in out[1:])


def test_judge_cli_with_a_dead_judge_server_writes_no_rule_zeros(tmp_path: Path) -> None:
    from rewardbridge.cli import main

    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [("yes", "the answer is 42"), ("no-1", "41"), ("no-2", "forty")]
    src.write_text(
        "".join(
            json.dumps({"id": i, "question": "q", "reference": "42", "response": r}) + "\n"
            for i, r in rows
        )
    )
    argv = ["judge", str(src), "-o", str(dst), "--no-progress", "--verifier", "cascade"]
    argv += ["--rule", "contains", "--base-url", DEAD_JUDGE, "--timeout", "2", "--max-retries", "1"]
    assert main(argv) == 0
    records = {r["id"]: r for r in map(json.loads, dst.read_text().splitlines())}
    assert records["yes"]["status"] == "judged" and records["yes"]["reward"] == 1.0
    for ident in ("no-1", "no-2"):
        assert records[ident]["status"] == "backend_error"
        assert records[ident]["reward"] is None


def test_empty_response_is_not_judged_by_either_stage() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", yes_judge)
    out = CascadeVerifier(rule, judge=judge).verify([item("e", "  \n")])
    assert out[0].status is Status.EMPTY_RESPONSE and rule.seen == [] and judge.seen == []


def test_soft_rule_accepts_only_at_its_maximum() -> None:
    assert accepted_by_rule(VerifierResult.ok(1.0))
    assert not accepted_by_rule(VerifierResult.ok(0.99))
    assert not accepted_by_rule(VerifierResult.failed(Status.TIMEOUT, "t"))


def test_generative_options_are_forwarded_and_the_judge_is_built_lazily() -> None:
    cascade = build_verifier(
        "cascade",
        rule="contains",
        base_url=["http://127.0.0.1:9"],
        served_model="m",
        timeout=2.0,
        max_concurrency=4,
        reward="soft",
        response_slot="full",
    )
    assert isinstance(cascade, CascadeVerifier)
    assert cascade.rule.name == "contains"
    assert cascade.judge_options == {
        "base_url": ("http://127.0.0.1:9",),
        "served_model": "m",
        "timeout": 2.0,
        "max_concurrency": 4,
        "reward": "soft",
        "response_slot": "full",
    }
    assert cascade._judge is None  # nothing built, nothing connected yet
    out = cascade.verify([item("a", "the answer is 42")])
    assert out[0].stage == "contains" and cascade._judge is None
    cascade.close()


def test_rule_must_be_a_rule() -> None:
    with pytest.raises(ValueError, match="rule verifier"):
        CascadeVerifier("generative")
    with pytest.raises(ValueError, match="unknown verifier"):
        CascadeVerifier("nope")


def test_close_closes_both_stages() -> None:
    rule, judge = Stub("math", exact_rule), Stub("generative", yes_judge)
    CascadeVerifier(rule, judge=judge).close()
    assert rule.closed and judge.closed


def test_with_the_math_rule_in_process() -> None:
    judge = Stub("generative", yes_judge)
    cascade = CascadeVerifier("math", workers=0, judge=judge)
    out = cascade.verify(
        [item("a", "so $x = \\frac{1}{2}$", "0.5"), item("b", "f(x)=2x", "$f(x)=3x$")]
    )
    cascade.close()
    assert out[0].stage == "math" and out[0].score == 1.0
    assert judge.seen == ["b"] and out[1].stage == "generative"
