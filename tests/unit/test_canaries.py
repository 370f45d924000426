"""Live master-key canaries (judging/canaries.py): probes mixed into judge calls, their FPR per
call, a warning or a stop above the threshold; never in the policy's rewards."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rewardbridge.data.example import JudgeItem
from rewardbridge.judging.canaries import CanaryMonitor, is_model_based
from rewardbridge.training.config import ConfigError, load_config
from rewardbridge.training.reward_fn import VerifierReward
from rewardbridge.verifiers.base import BaseVerifier, VerifierResult


class SaysYes(BaseVerifier):
    """A stand-in judge that accepts everything (the worst master-key victim)."""

    name = "generative"

    def __init__(self) -> None:
        self.seen: list[JudgeItem] = []

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        self.seen.extend(items)
        return [VerifierResult.ok(1.0, judgment="YES") for _ in items]


class SaysNo(SaysYes):
    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [VerifierResult.ok(0.0, judgment="NO") for _ in items]


ITEMS = [
    JudgeItem(id=str(i), question=f"Q{i}?", reference=f"r{i}", response=f"r{i}") for i in range(8)
]


def test_probes_are_master_keys_on_this_calls_questions() -> None:
    monitor = CanaryMonitor(share=0.25, seed=1)
    probes = monitor.probes(ITEMS)
    assert len(probes) == 2  # ceil(0.25 * 8)
    assert {(p.question, p.reference) for p in probes} <= {(i.question, i.reference) for i in ITEMS}
    assert all(p.response.strip() and p.label is False and p.metadata["canary"] for p in probes)
    assert len(CanaryMonitor(share=0.01).probes(ITEMS)) == 1  # at least one per training step
    assert CanaryMonitor(share=0.0).probes(ITEMS) == []
    server = CanaryMonitor(share=0.1, min_per_call=0)  # one sample per call: the share holds
    counts = [len(server.probes(ITEMS[:1])) for _ in range(30)]
    assert sum(counts) == 3 and max(counts) == 1


def test_a_judge_that_says_yes_to_everything_has_canary_fpr_1_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = CanaryMonitor(share=0.25, max_fpr=0.2, min_probes=2)
    judge, logged = SaysYes(), {}
    with caplog.at_level(logging.WARNING, logger="rewardbridge.judging.canaries"):
        for step in range(3):
            probes = monitor.probes(ITEMS)
            entry = monitor.observe(judge.verify(probes), step=step, log_metric=logged.__setitem__)
            assert entry is not None and entry.fpr == 1.0
    assert logged == {"rb/canary_fpr": 1.0, "rb/canary_probes": 2.0}
    warnings = [r for r in caplog.records if "master-key canaries" in r.getMessage()]
    assert len(warnings) == 1  # the first crossing; then every warn_every crossings
    assert monitor.exceeded == 3 and not monitor.should_stop
    assert monitor.summary()["fpr"] == 1.0


def test_on_exceed_stop_waits_for_min_probes_then_stops() -> None:
    monitor = CanaryMonitor(share=0.125, on_exceed="stop", min_probes=3)
    for _ in range(2):
        monitor.observe(SaysYes().verify(monitor.probes(ITEMS)))
        assert not monitor.should_stop  # 1, then 2 judged probes: too few to decide
    monitor.observe(SaysYes().verify(monitor.probes(ITEMS)))
    assert monitor.should_stop


def test_an_honest_judge_passes() -> None:
    monitor = CanaryMonitor(share=0.5, on_exceed="stop", min_probes=1)
    entry = monitor.observe(SaysNo().verify(monitor.probes(ITEMS)))
    assert entry is not None and entry.fpr == 0.0 and not monitor.should_stop


def test_reward_function_mixes_canaries_into_the_judge_call_not_the_rewards() -> None:
    judge, logged = SaysYes(), {}
    monitor = CanaryMonitor(share=0.25, min_probes=1)
    reward = VerifierReward(judge, canaries=monitor)
    prompts = [[{"role": "user", "content": it.question}] for it in ITEMS]
    out = reward(
        prompts=prompts,
        completions=[it.response for it in ITEMS],
        reference=[it.reference for it in ITEMS],
        log_metric=logged.__setitem__,
    )
    assert out == [1.0] * 8  # one reward per completion: the 2 canaries are not among them
    assert len(judge.seen) == 10  # ... but they were in the same judge call
    assert logged["rb/canary_fpr"] == 1.0 and logged["rb/canary_probes"] == 2.0


def test_canaries_default_on_for_model_judges_only() -> None:
    class Rule:
        name = "contains"

    assert is_model_based(SaysYes()) and not is_model_based(Rule())
    config = load_config(None, ["--canaries.share", "0.1", "--canaries.on_exceed", "stop"])
    assert config.canaries.share == 0.1 and config.canaries.enabled is None
    with pytest.raises(ConfigError, match=r"canaries\.on_exceed"):
        load_config(None, ["--canaries.on_exceed", "explode"])
    with pytest.raises(ConfigError, match=r"canaries\.share"):
        load_config(None, ["--canaries.share", "2"])


def test_server_canaries_are_reported_by_health_and_invisible_to_clients() -> None:
    from rewardbridge.serving.app import create_app
    from rewardbridge.serving.config import ServerConfig

    judge = SaysYes()
    body: dict[str, Any] = {
        "items": [{"question": it.question, "reference": it.reference, "response": it.response}
                  for it in ITEMS]
    }  # fmt: skip
    with TestClient(create_app(judge, ServerConfig(canary_share=0.25))) as client:
        response = client.post("/v1/judge", json=body).json()
        health = client.get("/health").json()
    assert len(response["results"]) == 8
    assert health["canaries"]["probes"] == 2 and health["canaries"]["fpr"] == 1.0


def test_stop_callback_stops_the_trainer_also_under_torch_distributed(tmp_path: Any) -> None:
    import torch
    import torch.distributed as dist
    from transformers import TrainerControl

    from rewardbridge.training.trainer import CanaryStopCallback

    class Args:
        device = torch.device("cpu")

    monitor = CanaryMonitor(share=0.5, on_exceed="stop", min_probes=1)
    callback = CanaryStopCallback(monitor)
    control = TrainerControl()
    callback.on_step_end(Args(), None, control)
    assert not control.should_training_stop
    monitor.observe(SaysYes().verify(monitor.probes(ITEMS)))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        callback.on_step_end(Args(), None, control)  # the all-reduce path (a group of one)
    finally:
        dist.destroy_process_group()
    assert control.should_training_stop
