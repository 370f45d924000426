"""Judge prompts: the paper's template byte for byte, slots, the registry, user files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardbridge.cli import main
from rewardbridge.verifiers.prompts import (
    JudgeTemplate,
    available_templates,
    load_template,
    render_judge_messages,
)

# PAPER.md §2, with the line endings spelled out: two spaces on every non-blank line but "---".
PAPER_USER_MESSAGE = (
    "Given a problem, determine whether the final answer in the provided (incomplete) solution "
    "process matches the reference answer.  \n"
    "The reference answer may be one single option character (e.g., A, B, C, D), a numerical "
    "value, an expression, or a list of answers if multiple questions are involved.  \n"
    "**The reference answer may be in Chinese or another language, but your evaluation should "
    "be language-agnostic.**  \n"
    "\n"
    "Your task:  \n"
    "- Compare the final output of the solution process with the reference answer.  \n"
    "- If they **match exactly**, output **YES**.  \n"
    "- If they **do not match**, output **NO**.  \n"
    "- If the solution process is unclear, incomplete, or ambiguous, assume it is incorrect and "
    "output **NO**.  \n"
    "\n"
    "Your output must be strictly **'YES'** or **'NO'**, with no additional words, punctuation, "
    "or explanation.  \n"
    "\n"
    "---\n"
    "\n"
    "**Question:**  \n"
    "What is the capital of France?  \n"
    "\n"
    "**Solution Process (Final Step Only):**  \n"
    "Therefore, the answer is Paris.  \n"
    "\n"
    "**Reference Answer:**  \n"
    "Paris  \n"
    "\n"
    "**Output:**  "
)

RESPONSE = "France's capital city is well known.\n\nTherefore, the answer is Paris.\n  \n"


def test_paper_template_renders_byte_for_byte() -> None:
    messages = render_judge_messages("What is the capital of France?", "Paris", RESPONSE)
    assert messages == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": PAPER_USER_MESSAGE},
    ]


def test_response_slot_full_keeps_the_whole_response() -> None:
    user = render_judge_messages("Q", "R", "line one\nline two", response_slot="full")[1]["content"]
    assert "line one\nline two  \n" in user
    with pytest.raises(ValueError, match="response_slot"):
        render_judge_messages("Q", "R", "A", response_slot="last")


def test_slots_are_filled_in_one_pass() -> None:
    user = render_judge_messages("Is {response} a slot? $\\frac{1}{2}$", "{question}", "x")[1][
        "content"
    ]
    assert "Is {response} a slot? $\\frac{1}{2}$  \n" in user
    assert "**Reference Answer:**  \n{question}  \n" in user


def test_general_verifier_template() -> None:
    template = load_template("general-verifier")
    assert (template.yes, template.no) == ("Yes", "No")
    assert set(available_templates()) >= {"paper", "general-verifier"}
    user = template.render("What is 1+1?", "2", "It is 2.")[1]["content"]
    assert user.startswith("### Question: What is 1+1?\n\n### Ground Truth Answer: 2\n\n")
    assert "### Student Answer: It is 2.\n" in user
    assert user.endswith("Final Decision: Yes/No")


def test_user_template_files(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("Q={question} R={reference} A={response}\n")
    assert render_judge_messages("q", "r", "a\nb", template=txt)[1]["content"] == "Q=q R=r A=b"
    yml = tmp_path / "mine.yaml"
    yml.write_text(
        "user: 'Ref {reference} / {response}? Say True or False.'\nsystem: Judge.\n"
        "yes: 'True'\nno: 'False'\n"
    )
    template = load_template(str(yml))
    assert (template.system, template.yes, template.no) == ("Judge.", "True", "False")
    bad = tmp_path / "bad.txt"
    bad.write_text("only {question}")
    with pytest.raises(ValueError, match=r"lacks the slot\(s\) \{reference\}, \{response\}"):
        load_template(bad)
    with pytest.raises(ValueError, match="unknown judge template 'nope'"):
        load_template("nope")
    with pytest.raises(ValueError, match="different"):
        JudgeTemplate("x", "{reference}{response}", yes="Yes", no="YES")


def test_prompt_cli_prints_the_messages(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "prompt",
        "--question",
        "What is the capital of France?",
        "--reference",
        "Paris",
        "--response",
        RESPONSE,
    ]
    assert main(argv) == 0
    messages = json.loads(capsys.readouterr().out)
    assert messages[1]["content"] == PAPER_USER_MESSAGE
    assert main([*argv, "--template", "nope"]) == 2
