"""Run INSIDE the OpenRLHF side environment (``test_openrlhf.py`` starts it): OpenRLHF 0.11.2's
own rollout-side reward client, ``openrlhf.utils.agent.SingleTurnAgentExecutor``, the class its
vLLM engines use for ``--reward.remote_url``. Not collected by the main run (no ``test_``).

- HTTP: ``remote_rm_url`` = our server's ``/get_reward``; ``execute`` generates (a stand-in for
  the vLLM engine that returns a fixed response), decodes prompt + response with special tokens
  as OpenRLHF does, posts it with ``_fetch_rewards_via_http`` and keeps the reward;
- file: ``remote_rm_url`` = ``examples/openrlhf/reward_func.py``: OpenRLHF imports it with its
  own loader and calls our ``reward_func(queries, prompts, labels)``.

The last case is an empty response, which cannot be judged: it must reach OpenRLHF as a NaN
score (its dynamic filter, ``not (lo < mean score < hi)`` in ``SamplesGenerator._generate_vllm``,
then drops the group; that module needs vLLM, not installed here) and, with no fallback reward
chosen, a NaN reward: over HTTP that is the JSON constant NaN, read by OpenRLHF's aiohttp client.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
REWARD_FILE = REPO / "examples" / "openrlhf" / "reward_func.py"

NAN = float("nan")
CASES = [  # question, reference, response, expected reward (math verifier; NaN: unjudged)
    ("What is 6 * 7?", "42", "6 * 7 = 42. Therefore, the answer is $42$.", 1.0),
    ("What is 2 + 2?", "4", "2 + 2 = 5. Therefore, the answer is $5$.", 0.0),
    ("What is 10 / 4?", "\\frac{5}{2}", "10 / 4 = 2.5. Therefore, the answer is $2.5$.", 1.0),
    ("What is 3 - 5?", "-2", "Therefore, the answer is $2$.", 0.0),
    ("What is 1 + 1?", "2", "", NAN),
]
EXPECTED = [case[3] for case in CASES]
UNJUDGED = [1.0 if case[3] != case[3] else 0.0 for case in CASES]


class FixedEngine:
    """Stands in for OpenRLHF's vLLM engine: ``generate`` returns the case's response tokens."""

    def __init__(self, tokenizer: Any, response: str) -> None:
        self.ids = [*tokenizer.encode(response, add_special_tokens=False), tokenizer.eos_token_id]

    async def generate(self, prompt_token_ids: list[int], params: Any, **kwargs: Any) -> Any:
        out = SimpleNamespace(token_ids=self.ids, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.environ["RB_MODEL_DIR"])


async def rollouts(remote: str, tokenizer: Any) -> list[Any]:
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote)
    params = SimpleNamespace(max_tokens=64, logprobs=None)

    async def one(question: str, reference: str, response: str) -> Any:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        engine = FixedEngine(tokenizer, response)
        return await executor.execute(prompt, reference, params, 1024, tokenizer, engine)

    return await asyncio.gather(*(one(q, ref, resp) for q, ref, resp, _ in CASES))


def one_value(value: Any) -> float:
    """A sample's reward as OpenRLHF keeps it: a one-element list (HTTP) or tensor (file)."""
    import torch

    (number,) = torch.as_tensor(value, dtype=torch.float32).flatten().tolist()
    return float(number)


def same(values: list[float], expected: list[float]) -> bool:
    """Equal, NaN matching NaN."""
    if len(values) != len(expected):
        return False
    return all((v != v and e != e) or v == e for v, e in zip(values, expected, strict=True))


def test_openrlhf_http_client_gets_our_rewards(tokenizer: Any) -> None:
    outputs = asyncio.run(rollouts(os.environ["RB_REWARD_URL"] + "/get_reward", tokenizer))
    assert same([one_value(o["reward"]) for o in outputs], EXPECTED), outputs
    assert same([one_value(o["scores"]) for o in outputs], EXPECTED), outputs
    assert [one_value(o["extra_logs"]["unjudged"]) for o in outputs] == UNJUDGED


def test_openrlhf_loads_our_reward_func_file(tokenizer: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("REWARDBRIDGE_VERIFIER", "math")
    monkeypatch.delenv("REWARDBRIDGE_FALLBACK_REWARD", raising=False)
    outputs = asyncio.run(rollouts(str(REWARD_FILE), tokenizer))
    assert same([one_value(o["reward"]) for o in outputs], EXPECTED), outputs
    assert same([one_value(o["scores"]) for o in outputs], EXPECTED), outputs
    assert [one_value(o["extra_logs"]["unjudged"]) for o in outputs] == UNJUDGED
