"""(d) ``rewardbridge distill collect`` with the vLLM-served teacher, and (e) TRL's
``GRPOTrainer`` for 2 steps with our async reward function judging through vLLM."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from items import multi_domain_items
from servers import VENV_BIN, ServerProcess

from rewardbridge.integrations.trl import AsyncVerifierReward
from rewardbridge.verifiers.base import VerifierResult
from rewardbridge.verifiers.generative import GenerativeVerifier


def test_distill_collect_with_vllm_teacher(vllm_up: ServerProcess, tmp_path: Path) -> None:
    items = multi_domain_items()[:12]
    rollouts, output = tmp_path / "rollouts.jsonl", tmp_path / "teacher.jsonl"
    fields = ("id", "question", "reference", "response")
    lines = [json.dumps({f: getattr(i, f) for f in fields}) + "\n" for i in items]
    rollouts.write_text("".join(lines))
    command = [
        str(VENV_BIN / "rewardbridge"),
        "distill",
        "collect",
        "--rollouts",
        str(rollouts),
        "--teacher-verifier",
        "generative",
        "--teacher-base-url",
        vllm_up.url,
        "--teacher-served-model",
        "judge",
        "-o",
        str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == len(items), result.stderr[-2000:]
    # the teacher's verdicts are vLLM's judgments of the same items
    direct = GenerativeVerifier(base_url=vllm_up.url, served_model="judge", timeout=120)
    try:
        expected = direct.verify(items)
    finally:
        direct.close()
    by_id = {r["id"]: r for r in records}
    assert set(by_id) == {i.id for i in items}
    for item, want in zip(items, expected, strict=True):
        record = by_id[item.id]
        assert want.judged and record["judgment"] == want.judgment, (record, want)
        assert record["question"] == item.question and record["reference"] == item.reference


def rows_of(item: Any) -> list[dict[str, Any]]:
    return [{"prompt": [{"role": "user", "content": item.question}], "reference": item.reference}]


class CountingVerifier:
    """The vLLM-backed generative verifier, keeping every result it returns."""

    def __init__(self, inner: GenerativeVerifier) -> None:
        self.inner = inner
        self.name = inner.name
        self.results: list[VerifierResult] = []

    def verify(self, items: Any) -> list[VerifierResult]:
        results = self.inner.verify(items)
        self.results.extend(results)
        return results

    def close(self) -> None:
        self.inner.close()


def test_trl_grpo_two_steps_with_async_reward_through_vllm(
    vllm_up: ServerProcess, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    items = multi_domain_items()[:8:2]
    dataset = Dataset.from_list([row for i in items for row in rows_of(i)])
    verifier = CountingVerifier(
        GenerativeVerifier(base_url=vllm_up.url, served_model="judge", timeout=120)
    )
    reward = AsyncVerifierReward(verifier)  # type: ignore[arg-type]
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=4,
        generation_batch_size=4,
        max_completion_length=12,
        max_steps=2,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=[reward], args=args, train_dataset=dataset
    )
    try:
        trainer.train()
    finally:
        verifier.close()
    assert trainer.state.global_step == 2
    assert len(verifier.results) == 8 and all(r.judged for r in verifier.results)
    logged = [h for h in trainer.state.log_history if "rewards/rewardbridge/mean" in h]
    assert len(logged) == 2
    assert all(h.get("rewardbridge/unjudged", 0.0) == 0.0 for h in logged)
