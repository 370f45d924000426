"""Verifier distillation: collect (resume, unjudged items), the SFT data (loss mask on the
judgment token only, checked on TRL's collated batch) and a 2-step training run that produces
a folder the generative verifier loads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.data.loaders import DataError
from rewardbridge.training.distill import (
    DistillRecord,
    DistillTrainConfig,
    build_trainer,
    collect,
    prompt_ids_path,
    read_records,
    rollout_items,
    train_verifier,
)
from rewardbridge.training.sft_data import balance_classes, build_sft_examples, judgment_token_ids
from rewardbridge.verifiers.base import BaseVerifier, Status, VerifierResult


class CountingTeacher(BaseVerifier):
    """YES when the response contains the reference; errors on responses containing 'ERR'."""

    name = "counting"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        out = []
        for item in items:
            self.seen.append(item.id)
            if "ERR" in item.response:
                out.append(VerifierResult.failed(Status.BACKEND_ERROR, "boom"))
            else:
                yes = item.reference in item.response
                out.append(
                    VerifierResult.ok(
                        1.0 if yes else 0.0,
                        judgment="YES" if yes else "NO",
                        p_yes=0.6 if yes else 0.1,
                        p_no=0.15 if yes else 0.4,
                    )
                )
        return out


def _rollouts() -> list[JudgeItem]:
    examples = [
        Example(id=f"p{i}", question=f"What is {i}+1?", reference=str(i + 1)) for i in range(3)
    ]
    responses = [[f"work\nThe answer is {i + 1}", "nope", "ERR", "  "] for i in range(3)]
    return rollout_items(examples, responses)


def test_collect_writes_records_skips_unjudged_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "teacher.jsonl"
    items = _rollouts()
    teacher = CountingTeacher()
    stats = collect(items[:6], teacher, out, batch_size=4)
    assert stats.written == 4  # p0: YES, NO; p1: YES, NO (p0#2 errors, p0#3 is empty)
    assert stats.unjudged == {"backend_error": 1, "empty_response": 1}
    records = read_records(out)
    assert [r.judgment for r in records] == ["YES", "NO", "YES", "NO"]
    assert records[0].final_step == "The answer is 1" and records[0].prompt_id == "p0"
    assert records[0].teacher_p_yes == pytest.approx(0.8)  # normalised: .6 / (.6 + .15)

    teacher.seen.clear()
    stats = collect(items, teacher, out, batch_size=4)  # resume over all 12
    assert stats.already_done == 4
    assert not {"p0#0", "p0#1", "p1#0", "p1#1"} & set(teacher.seen)  # judged once only
    assert "p0#2" in teacher.seen  # a failed judgment is retried on resume
    assert len(read_records(out)) == 6  # unjudged items are never written as NO
    assert prompt_ids_path(out).read_text().split() == ["p0", "p1", "p2"]


def test_collect_with_gold_labels(tmp_path: Path) -> None:
    items = [
        JudgeItem(id="a", question="q", reference="r", response="x", label=True),
        JudgeItem(id="a", question="q", reference="r", response="y", label=False),  # repeated id
        JudgeItem(id="b", question="q", reference="r", response="z", label=None),
    ]
    stats = collect(items, "labels", tmp_path / "o.jsonl")
    assert stats.unjudged == {"invalid_input": 1}  # no gold label: not judged
    records = read_records(tmp_path / "o.jsonl")
    assert [(r.id, r.judgment, r.teacher_p_yes) for r in records] == [
        ("a", "YES", 1.0),
        ("a~1", "NO", 0.0),
    ]
    with pytest.raises(ValueError, match="teacher"):
        collect(items, "gpt", tmp_path / "p.jsonl")


def test_collect_output_is_judged_item_records(tmp_path: Path) -> None:
    out = tmp_path / "teacher.jsonl"
    collect(_rollouts()[:2], CountingTeacher(), out)
    first = json.loads(out.read_text().splitlines()[0])
    assert (first["reward"], first["status"], first["verifier"]) == (1.0, "judged", "counting")
    assert first["response"] == "work\nThe answer is 1" and first["final_step"] == "The answer is 1"
    with pytest.raises(ValueError, match="written with"):  # another teacher: refused
        collect(_rollouts()[:2], "labels", out)


def test_train_reads_a_judge_output_with_texts(tmp_path: Path) -> None:
    from rewardbridge.cli import main

    src = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "question": "2+2?", "reference": "4", "response": "so\nit is 4"},
        {"id": "b", "question": "2+3?", "reference": "5", "response": "it is 6"},
        {"id": "c", "question": "2+5?", "reference": "7", "response": " "},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judged = tmp_path / "judged.jsonl"
    assert main(["judge", str(src), "-o", str(judged), "--with-text", "--no-progress"]) == 0
    skipped: dict[str, int] = {}
    records = read_records(judged, skipped=skipped)
    assert [(r.id, r.judgment, r.final_step) for r in records] == [
        ("a", "YES", "it is 4"),
        ("b", "NO", "it is 6"),
    ]
    assert skipped == {"empty_response": 1}
    bare = tmp_path / "bare.jsonl"
    assert main(["judge", str(src), "-o", str(bare), "--no-progress"]) == 0
    with pytest.raises(DataError, match=r"bare\.jsonl \(id 'a'\): field 'question' missing"):
        read_records(bare)


def _records(n: int) -> list[DistillRecord]:
    return [
        DistillRecord(
            id=str(i),
            prompt_id=str(i),
            question=f"What is {i} + 1?",
            reference=str(i + 1),
            final_step=f"Therefore, the answer is {i + 1 if i % 2 else i}",
            judgment="YES" if i % 2 else "NO",
            teacher_p_yes=None,
        )
        for i in range(n)
    ]


def test_balance_classes() -> None:
    rows = [r.to_dict() for r in _records(6)] + [{**_records(1)[0].to_dict(), "id": "x"}]
    balanced = balance_classes(rows, seed=1)
    assert sorted(r["judgment"] for r in balanced) == ["NO"] * 3 + ["YES"] * 3


def test_sft_examples_end_with_the_judgment_token(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    targets = judgment_token_ids(tokenizer)
    assert len(set(targets.values())) == 2
    built = build_sft_examples([r.to_dict() for r in _records(2)], tokenizer, max_length=2048)
    for example, judgment in zip(built.examples, ["NO", "YES"], strict=True):
        assert example["input_ids"][-1] == targets[judgment]
        assert sum(example["completion_mask"]) == 1 and example["completion_mask"][-1] == 1
        text = tokenizer.decode(example["input_ids"][:-1])
        assert text.endswith("<|im_start|>assistant\n")  # the generation prompt, as judged
        assert "**Solution Process (Final Step Only):**" in text
    assert (
        build_sft_examples([r.to_dict() for r in _records(2)], tokenizer, max_length=50).too_long
        == 2
    )


def test_collated_batch_has_loss_on_the_judgment_token_only(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    trainer, _, counts = build_trainer(
        _records(4), str(tiny_model_dir), tmp_path, DistillTrainConfig(batch_size=4)
    )
    assert counts["examples"] == 4
    batch = next(iter(trainer.get_train_dataloader()))
    labels, input_ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    targets = set(judgment_token_ids(AutoTokenizer.from_pretrained(tiny_model_dir)).values())
    for row in range(labels.shape[0]):
        supervised = (labels[row] != -100).nonzero().flatten().tolist()
        last_real = int(mask[row].nonzero().max())
        assert supervised == [last_real]  # one position: the last real token
        assert int(labels[row, last_real]) == int(input_ids[row, last_real])
        assert int(labels[row, last_real]) in targets


def test_train_two_steps_saves_a_loadable_verifier(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    summary = train_verifier(
        _records(4),
        str(tiny_model_dir),
        out,
        DistillTrainConfig(batch_size=2, max_steps=2, lora=True, learning_rate=1e-3),
        eval_records=_records(2),
    )
    assert summary.steps == 2 and summary.eval_loss is not None
    assert (out / "model.safetensors").exists() and (out / "chat_template.jinja").exists()
    assert json.loads((out / "distill.json").read_text())["summary"]["examples"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".student-")]  # no leftovers
    # merged LoRA: a plain model, no adapter files
    assert not (out / "adapter_config.json").exists()

    from rewardbridge.verifiers.generative import GenerativeVerifier

    verifier = GenerativeVerifier(model=str(out), device="cpu")
    try:
        [result] = verifier.verify(
            [JudgeItem(id="0", question="What is 1+1?", reference="2", response="2")]
        )
    finally:
        verifier.close()
    assert result.p_yes is not None and result.p_no is not None  # the judge reads the student


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        DistillTrainConfig(learning_rate=0)


def test_collect_from_a_policy_samples_only_what_is_missing(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rewardbridge.policy import generation
    from rewardbridge.training.distill import done_ids, sample_items

    examples = [
        Example(id=f"p{i}", question=f"What is {i}+1?", reference=str(i + 1)) for i in range(2)
    ]
    sampled: list[str] = []
    real = generation.generate_responses

    def counting(policy, part, **kw):  # type: ignore[no-untyped-def]
        sampled.extend(ex.id for ex in part)
        return real(policy, part, **kw)

    monkeypatch.setattr(generation, "generate_responses", counting)
    out = tmp_path / "policy.jsonl"
    # p0's two responses were judged in an earlier run
    collect(rollout_items(examples[:1], [["so 1", "so 7"]]), CountingTeacher(), out)

    items = sample_items(
        str(tiny_model_dir), examples, n=2, skip_ids=done_ids(out), max_new_tokens=4
    )
    stats = collect(items, CountingTeacher(), out)  # one teacher per file
    assert sampled == ["p1"]  # p0 is not sampled again
    assert stats.already_done == 2
    assert stats.written + stats.unjudged_total == 2  # p1's two sampled responses
    assert prompt_ids_path(out).read_text().split() == ["p0", "p1"]


def test_train_reads_judgments_recorded_during_training(tmp_path: Path) -> None:
    from rewardbridge.judging.recorder import JudgmentRecorder

    items = _rollouts()[:4]
    path = tmp_path / "recorded.jsonl"
    with JudgmentRecorder(path) as recorder:
        recorder.record(items, CountingTeacher().verify(items), verifier="counting", step=1)
    records = read_records(path)
    assert [(r.judgment, r.final_step) for r in records] == [
        ("YES", "The answer is 1"),
        ("NO", "nope"),
    ]
