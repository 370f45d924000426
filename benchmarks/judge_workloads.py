"""Judge inputs for the throughput benchmarks, all built from real data shipped with the project.

- ``sample64``: 16 questions x 4 one-line responses (bundled sample questions cut to 60 tokens),
  the historical 64-item benchmark;
- ``rl``: 8 questions x 8 samples of the embedded policy (``benchmarks/data/rl_policy_samples_*``,
  written by ``policy_samples.py``), judged on their final step as in RL;
- ``long``: VerifyBench-shaped long items from the bundled Qwen2.5-Math samples: the reference is
  the whole worked solution and the response slot holds the full chain of thought, for some items
  several of a question's responses in a row (a model that tried again), so prompts run from a few
  hundred tokens past the judge's 8,192-token context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rewardbridge.data.labeled_sets import corpus_path
from rewardbridge.data.loaders import load_sample_examples
from rewardbridge.verifiers.prompts import render_judge_messages
from rewardbridge.verifiers.text import final_step

HERE = Path(__file__).resolve().parent
QUESTION_TOKENS = 60
LONG_REPEATS = (1, 1, 2, 1, 4, 1, 2, 8, 1, 16, 1, 3, 2, 1, 6, 24)  # responses per long item

Conversation = list[dict[str, str]]


def sample64(tokenizer: Any, n_questions: int = 16) -> list[Conversation]:
    """n_questions x 4 judge conversations; questions are sample questions cut to 60 tokens."""
    examples = [
        e
        for e in load_sample_examples(limit=2000)
        if len(tokenizer.encode(e.question, add_special_tokens=False)) >= QUESTION_TOKENS
    ][:n_questions]
    if len(examples) < n_questions:
        raise SystemExit(f"only {len(examples)} sample questions have {QUESTION_TOKENS} tokens")
    conversations = []
    for i, ex in enumerate(examples):
        ids = tokenizer.encode(ex.question, add_special_tokens=False)[:QUESTION_TOKENS]
        question = tokenizer.decode(ids)
        wrong = examples[(i + 1) % len(examples)].reference
        for response in (
            f"Therefore, the answer is {ex.reference}.",
            f"Therefore, the answer is {wrong}.",
            f"The answer is {ex.reference}",
            "I am not sure about this one.",
        ):
            conversations.append(render_judge_messages(question, ex.reference, response))
    return conversations


def rl_rows(max_new_tokens: int = 32) -> list[dict[str, Any]]:
    path = HERE / "data" / f"rl_policy_samples_{max_new_tokens}.jsonl"
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: python benchmarks/policy_samples.py "
            f"--max-new-tokens {max_new_tokens} --out {path}"
        )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rl(max_new_tokens: int = 32) -> list[Conversation]:
    """The policy samples' judge conversations (final step), question by question."""
    return [
        render_judge_messages(row["question"], row["reference"], final_step(response) or ".")
        for row in rl_rows(max_new_tokens)
        for response in row["responses"]
    ]


def long(n_items: int = 48) -> list[Conversation]:
    """Long judge conversations: whole reference solutions, full (repeated) responses."""
    rows = [
        json.loads(line)
        for line in corpus_path("qwen25_math_rm_samples", "math_cot_100.jsonl")
        .read_text()
        .splitlines()
        if line.strip()
    ]
    out = []
    for i in range(n_items):
        row = rows[i % len(rows)]
        k = LONG_REPEATS[i % len(LONG_REPEATS)]
        responses = row["response"]
        response = "\n\n".join(responses[(i + j) % len(responses)] for j in range(k))
        out.append(
            render_judge_messages(row["question"], row["gt_cot"], response, response_slot="full")
        )
    return out
