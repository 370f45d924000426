"""``rewardbridge train`` for 2 steps with live canaries and ``--record-judgments``: the canary
FPR is logged per step, every judgment is recorded once (``distill train`` reads the file), and
``canaries.on_exceed: stop`` ends a run whose judge accepts master keys."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewardbridge.cli import main
from rewardbridge.data.example import JudgeItem
from rewardbridge.data.master_keys import build_probes, load_master_keys
from rewardbridge.judging.canaries import CanaryMonitor
from rewardbridge.verifiers.base import BaseVerifier, VerifierResult
from rewardbridge.verifiers.text import final_step

REPO = Path(__file__).resolve().parents[2]


class GullibleJudge(BaseVerifier):
    """Varying scores for the policy's completions, YES to every master key."""

    name = "gullible"
    model_based = True  # canaries on by default, as for any model judge

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.judged: list[JudgeItem] = []  # the policy's completions (not the canaries)

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.calls.append(len(items))
        self.judged.extend(it for it in items if not it.metadata.get("canary"))
        return [
            VerifierResult.ok(1.0, judgment="YES")
            if it.metadata.get("canary")
            else VerifierResult.ok((zlib.crc32(it.response.encode()) % 5) / 4)
            for it in items
        ]


def config(tmp_path: Path, tiny_model_dir: Path, *extra: str):  # type: ignore[no-untyped-def]
    from rewardbridge.training.config import load_config

    return load_config(
        REPO / "recipes" / "quickstart-cpu.yaml",
        ["--training.output_dir", str(tmp_path / "run"), "--model.policy", str(tiny_model_dir),
         "--generation.max_completion_length", "6", "--training.max_steps", "2",
         "--training.save_steps", "10", "--logging.report_to", "[]", "--data.limit", "8",
         "--training.prompts_per_step", "2", "--training.per_device_batch_size", "null",
         "--training.gradient_accumulation_steps", "1",
         "--canaries.share", "0.1", "--canaries.min_probes", "1", *extra],
    )  # fmt: skip


@pytest.mark.smoke
def test_two_steps_log_canary_fpr_and_record_every_judgment(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from rewardbridge.training.distill import read_records
    from rewardbridge.training.rl import train

    record = tmp_path / "judgments.jsonl"
    judge = GullibleJudge()
    cfg = config(tmp_path, tiny_model_dir, "--logging.record_judgments", str(record))
    result = train(cfg, verifier=judge)
    completions = cfg.completions_per_step
    dummy = [JudgeItem(id="x", question="q", reference="r", response="a")] * completions
    same_rule = CanaryMonitor(share=0.1)
    probes = [len(same_rule.probes(dummy)) for _ in range(2)]  # canaries per judge call
    assert min(probes) >= 1 and judge.calls == [completions + n for n in probes]
    rows = [json.loads(x) for x in result.metrics_path.read_text().splitlines()]
    assert [(r["step"], r["canary_fpr"], r["canary_probes"]) for r in rows] == [
        (1, 1.0, probes[0]),
        (2, 1.0, probes[1]),
    ]
    assert not result.stopped_by_canaries  # on_exceed: warn
    records = [json.loads(x) for x in record.read_text().splitlines()]
    distinct = {(it.question, it.reference, final_step(it.response)) for it in judge.judged}
    assert len(records) == len(distinct)  # one record per distinct judgment (empty: not judged)
    assert len({r["id"] for r in records}) == len(records)
    assert {r["step"] for r in records} <= {0, 1} and 0 in {r["step"] for r in records}
    keys = {p.text for p in build_probes(load_master_keys())}
    assert not any(r["response"] in keys for r in records)  # canaries are not distillation data
    assert len(read_records(record)) == len(records)  # distill train takes it as it is


@pytest.mark.smoke
def test_on_exceed_stop_ends_the_run_after_the_first_step(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from rewardbridge.training.rl import train

    result = train(
        config(tmp_path, tiny_model_dir, "--canaries.on_exceed", "stop"), verifier=GullibleJudge()
    )
    assert result.stopped_by_canaries and result.global_step == 1
    assert (result.final_model / "adapter_config.json").exists()


def test_record_judgments_flag_sets_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--record-judgments", "j.jsonl", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["logging"]["record_judgments"] == "j.jsonl"
    assert printed["canaries"] == {
        "enabled": None, "share": 0.05, "max_fpr": 0.2, "on_exceed": "warn", "min_probes": 8,
        "seed": 0,
    }  # fmt: skip
