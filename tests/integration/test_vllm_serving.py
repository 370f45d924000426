"""(b) ``rewardbridge serve --base-url <vLLM>`` under 64 concurrent single-sample OpenRLHF-style
clients, and (c) the same server while vLLM is killed in the middle of a burst and restarted.

Each client posts one rollout (``query`` = the chat-templated prompt + response, as OpenRLHF's
``SingleTurnAgentExecutor`` sends it) to ``/get_reward``; the server batches them into the
judge. Every answer must be the reward of its own request: equal (to float rounding of batched
vs single forwards) to the reward the same item gets from vLLM directly, and no request may be
lost or answered twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from items import multi_domain_items
from servers import ServerProcess, reward_server

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.generative import GenerativeVerifier

CLIENTS = 64
TOLERANCE = 0.01  # soft-normalized reward, batched vs single forwards in vLLM (fp32)


@pytest.fixture(scope="module")
def items() -> list[JudgeItem]:
    return multi_domain_items()[:CLIENTS]


@pytest.fixture(scope="module")
def direct(vllm: ServerProcess, items: list[JudgeItem]) -> list[float]:
    """The soft-normalized reward of each item from vLLM directly (no reward server)."""
    verifier = GenerativeVerifier(
        base_url=vllm.url, served_model="judge", reward="soft-normalized", timeout=120
    )
    try:
        results = verifier.verify(items)
    finally:
        verifier.close()
    assert all(r.score is not None for r in results)
    return [float(r.score) for r in results if r.score is not None]


@pytest.fixture(scope="module")
def served(vllm: ServerProcess, logs_dir: Path) -> Iterator[ServerProcess]:
    args = [
        "--verifier",
        "generative",
        "--base-url",
        vllm.url,
        "--served-model",
        "judge",
        "--reward",
        "soft-normalized",
        "--timeout",
        "60",
        "--max-batch-size",
        "32",
        "--max-wait-ms",
        "20",
    ]
    server = reward_server(args, logs_dir / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


def openrlhf_payload(tokenizer: Any, item: JudgeItem) -> dict[str, Any]:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": item.question}], add_generation_prompt=True, tokenize=False
    )
    query = prompt + item.response + tokenizer.eos_token
    return {"query": [query], "prompts": [prompt], "labels": [item.reference]}


@pytest.fixture(scope="module")
def tokenizer(real_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_model_dir)


async def _burst(url: str, payloads: list[dict[str, Any]], path: str) -> list[Any]:
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def one(payload: dict[str, Any]) -> Any:
            response = await client.post(path, json=payload)
            return response.status_code, response.json()

        return await asyncio.gather(*(one(p) for p in payloads))


def test_64_concurrent_openrlhf_clients_each_get_their_own_reward(
    served: ServerProcess, items: list[JudgeItem], direct: list[float], tokenizer: Any
) -> None:
    payloads = [openrlhf_payload(tokenizer, item) for item in items]
    start = time.monotonic()
    answers = asyncio.run(_burst(served.url, payloads, "/get_reward"))
    elapsed = time.monotonic() - start
    assert len(answers) == CLIENTS
    assert all(code == 200 for code, _ in answers), answers[:3]
    assert all(len(body["rewards"]) == 1 for _, body in answers)
    assert all(body["extra_logs"]["unjudged"] == [0.0] for _, body in answers)
    rewards = [body["rewards"][0] for _, body in answers]
    wrong = [
        (item.id, got, want)
        for item, got, want in zip(items, rewards, direct, strict=True)
        if abs(got - want) > TOLERANCE
    ]
    assert not wrong, wrong
    # the answers tell the requests apart: most rewards are distinct
    assert len({round(r, 3) for r in rewards}) >= CLIENTS // 2
    print(json.dumps({"clients": CLIENTS, "elapsed_s": round(elapsed, 1)}))


def test_vllm_killed_mid_burst_fails_items_then_recovers(
    served: ServerProcess, vllm: ServerProcess, items: list[JudgeItem], direct: list[float]
) -> None:
    """Waves of single-item ``/v1/judge`` requests; vLLM is SIGKILLed after the first answers."""
    expected = {item.id: want for item, want in zip(items, direct, strict=True)}
    waves = 3

    def payload(item: JudgeItem, wave: int) -> dict[str, Any]:
        fields = {"question": item.question, "reference": item.reference}
        return {"items": [{"id": f"{item.id}#{wave}", **fields, "response": item.response}]}

    async def client(http: httpx.AsyncClient, item: JudgeItem, log: list[Any]) -> None:
        for wave in range(waves):
            response = await http.post("/v1/judge", json=payload(item, wave))
            log.append((item.id, wave, response.status_code, response.json()))

    async def burst_with_kill() -> tuple[list[Any], list[int]]:
        log: list[Any] = []
        health: list[int] = []
        limits = httpx.Limits(max_connections=CLIENTS + 4)
        async with httpx.AsyncClient(base_url=served.url, timeout=300, limits=limits) as http:
            tasks = [asyncio.create_task(client(http, item, log)) for item in items]
            while len(log) < CLIENTS // 2:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(vllm.kill)
            while not all(t.done() for t in tasks):
                health.append((await http.get("/health")).status_code)
                await asyncio.sleep(0.5)
            await asyncio.gather(*tasks)
        return log, health

    log, health = asyncio.run(burst_with_kill())
    assert len(log) == CLIENTS * waves  # none lost
    keys = [(item_id, wave) for item_id, wave, _, _ in log]
    assert len(set(keys)) == len(keys)  # none answered twice
    assert all(code == 200 for _, _, code, _ in log)
    assert health and all(code == 200 for code in health)
    failed = judged = 0
    for item_id, wave, _, body in log:
        (result,) = body["results"]
        assert result["id"] == f"{item_id}#{wave}"
        if result["status"] == "judged":
            judged += 1
            assert abs(result["reward"] - expected[item_id]) <= TOLERANCE, result
        else:
            failed += 1
            assert result["status"] in ("backend_error", "timeout"), result
            assert result["reward"] is None
    assert failed > 0, "vLLM was killed during the burst: some items must have failed"
    assert judged >= CLIENTS // 2

    # an OpenRLHF client during the outage: the sample is flagged unjudged
    item = items[0]
    down = httpx.post(
        served.url + "/get_reward",
        json={"query": [item.response], "labels": [item.reference]},
        timeout=120,
    ).json()
    assert down["extra_logs"]["unjudged"] == [1.0]

    # vLLM back on the same port: the same reward server judges again, no restart
    vllm.start()
    log2: list[Any] = []

    async def after() -> None:
        async with httpx.AsyncClient(base_url=served.url, timeout=300) as http:
            await asyncio.gather(*(client(http, item, log2) for item in items[:16]))

    waves = 1
    asyncio.run(after())
    assert len(log2) == 16
    for item_id, _, code, body in log2:
        (result,) = body["results"]
        assert code == 200 and result["status"] == "judged", result
        assert abs(result["reward"] - expected[item_id]) <= TOLERANCE
    print(json.dumps({"burst": len(log), "failed": failed, "judged": judged}))
