"""Sampling responses from a policy (a local causal LM) for evaluation and distillation.

Prompts are the examples' chat messages with the paper's policy system prompt (PAPER.md §6) when
an example has none, rendered with the model's chat template and left-padded into batches. This
is plain ``transformers`` generation; RL training generates inside TRL instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from rewardbridge.data.example import Example

PAPER_POLICY_SYSTEM_PROMPT = (
    "You are a chatbot who can solve problems. Please solve the following problem and give your "
    'thought process. Before giving the final result, you should output "Therefore, the answer '
    'is", and then give your final answer.'
)

PolicySpec = str | os.PathLike[str] | tuple[Any, Any] | None


def load_policy(policy: PolicySpec) -> tuple[Any, Any]:
    """A model spec (folder, hub id, None = embedded default, a LoRA adapter folder) or a ready
    (model, tokenizer) pair."""
    if isinstance(policy, tuple):
        return policy
    from pathlib import Path

    from rewardbridge.models import load_causal_lm

    if policy is not None and (Path(policy) / "adapter_config.json").exists():
        return load_adapter_policy(Path(policy))
    return load_causal_lm(policy)


def load_adapter_policy(folder: os.PathLike[str]) -> tuple[Any, Any]:
    """A LoRA adapter folder (``rewardbridge train`` with ``model.lora``): its base model with
    the adapter merged in, and the tokenizer saved beside the adapter."""
    import json
    from pathlib import Path

    from peft import PeftModel
    from transformers import AutoTokenizer

    from rewardbridge.models import load_causal_lm

    folder = Path(folder)
    base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    model, tokenizer = load_causal_lm(base)
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    model.eval()
    if (folder / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def render_prompts(
    tokenizer: Any, examples: Sequence[Example], system_prompt: str | None = None
) -> list[str]:
    """Chat-template text of each example's [system, user] turn with the generation prompt."""
    system = PAPER_POLICY_SYSTEM_PROMPT if system_prompt is None else system_prompt
    return [
        tokenizer.apply_chat_template(
            ex.messages(system), tokenize=False, add_generation_prompt=True
        )
        for ex in examples
    ]


def generate_responses(
    policy: PolicySpec,
    examples: Sequence[Example],
    *,
    n: int = 1,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    batch_size: int = 8,
    system_prompt: str | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``n`` responses per example (``temperature=0`` is greedy), in example order.

    ``system_prompt`` replaces the default (the paper's policy prompt) for examples that carry
    none; ``progress`` is called with the number of examples finished after each batch.
    """
    import torch
    from transformers import GenerationConfig

    from rewardbridge.policy.sampler import inverse_cdf_sampling

    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("n, batch_size and max_new_tokens must be >= 1")
    model, tokenizer = load_policy(policy)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    texts = render_prompts(tokenizer, examples, system_prompt)
    sample = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **({"temperature": temperature, "top_p": 1.0, "top_k": 0} if sample else {}),
    )
    out: list[list[str]] = []
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad(), inverse_cdf_sampling():
                generated = model.generate(**batch, generation_config=config)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i in range(0, len(decoded), n):
                out.append([text.strip() for text in decoded[i : i + n]])
            if progress is not None:
                progress(min(start + batch_size, len(texts)))
    finally:
        model.train(was_training)
    return out
