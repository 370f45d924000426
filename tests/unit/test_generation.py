"""Policy generation on a tiny random model with the real tokenizer."""

from __future__ import annotations

from pathlib import Path

from rewardbridge.data.example import Example
from rewardbridge.policy.generation import (
    PAPER_POLICY_SYSTEM_PROMPT,
    generate_responses,
    render_prompts,
)

EXAMPLES = [
    Example(id="a", question="What is 2+2?", reference="4"),
    Example(id="b", question="Name a noble gas, please, in one word.", reference="Neon"),
    Example(id="c", question="Hi", reference="x", system_prompt="Be brief."),
]


def test_paper_system_prompt_is_the_default(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = render_prompts(tok, EXAMPLES)
    assert PAPER_POLICY_SYSTEM_PROMPT in texts[0]
    assert "Be brief." in texts[2] and PAPER_POLICY_SYSTEM_PROMPT not in texts[2]
    assert texts[0].rstrip().endswith("assistant")


def test_shapes_and_greedy_matches_unbatched(tiny_model_dir: Path) -> None:
    from rewardbridge.models import load_causal_lm

    pair = load_causal_lm(tiny_model_dir, device="cpu")
    out = generate_responses(pair, EXAMPLES, n=3, max_new_tokens=6, batch_size=2, seed=1)
    assert [len(r) for r in out] == [3, 3, 3]
    batched = generate_responses(pair, EXAMPLES, max_new_tokens=6, temperature=0, batch_size=3)
    single = [generate_responses(pair, [ex], max_new_tokens=6, temperature=0)[0] for ex in EXAMPLES]
    assert batched == single  # left padding does not change greedy outputs
    again = generate_responses(pair, EXAMPLES, n=3, max_new_tokens=6, batch_size=2, seed=1)
    assert again == out  # seeded sampling is reproducible
