import pytest

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult
from rewardbridge.verifiers.registry import build_verifier
from rewardbridge.verifiers.text import final_step


def test_result_requires_score_iff_judged() -> None:
    assert VerifierResult.ok(1.0).judged
    with pytest.raises(ValueError):
        VerifierResult(status=Status.JUDGED, score=None)
    with pytest.raises(ValueError):
        VerifierResult(status=Status.TIMEOUT, score=0.0)
    failed = VerifierResult.failed(Status.TIMEOUT, "slow")
    assert failed.score is None and not failed.judged
    assert failed.to_dict()["status"] == "timeout"


class _Echo(BaseVerifier):
    name = "echo"

    def _verify(self, items):  # type: ignore[no-untyped-def]
        return [VerifierResult.ok(float(len(i.response))) for i in items]


def test_base_verifier_does_not_judge_empty_responses() -> None:
    items = [
        JudgeItem("a", "q", "r", "xy"),
        JudgeItem("b", "q", "r", "  \n "),
        JudgeItem("c", "q", "r", "xyz"),
    ]
    out = _Echo().verify(items)
    assert [r.status for r in out] == [Status.JUDGED, Status.EMPTY_RESPONSE, Status.JUDGED]
    assert [r.score for r in out] == [2.0, None, 3.0]
    assert all(r.stage == "echo" for r in out)


def test_final_step() -> None:
    assert final_step("a\nb\n\n  c  \n\n") == "c"
    assert final_step(" \n\t") == ""


def test_unknown_verifier_and_option_are_named() -> None:
    with pytest.raises(ValueError, match="unknown verifier 'nope'"):
        build_verifier("nope")


def test_final_step_takes_a_closing_display_math_block_whole() -> None:
    response = "We compute.\n\\[\n\\boxed{420}\n\\]\n"
    assert final_step(response) == "\\[ \\boxed{420} \\]"
    assert final_step("x\n$$\n7\\pi\n$$") == "$$ 7\\pi $$"
    assert final_step("no opener\n\\]") == "\\]"


def test_extract_answer_markers() -> None:
    from rewardbridge.verifiers.text import extract_answer

    assert extract_answer("work\nTherefore, the answer is Western blot.") == "Western blot."
    assert extract_answer("She makes $18\nA: 18") == "18"
    assert extract_answer("A paper: no marker here") == "A paper: no marker here"
