"""Prefix sharing on the real SmolLM2-135M judge gives the plain path's probabilities: to float
rounding in float32, within bfloat16 rounding in bfloat16."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardbridge.data.loaders import load_sample_examples
from rewardbridge.verifiers.backends.transformers_backend import TransformersBackend
from rewardbridge.verifiers.prompts import render_judge_messages

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(("dtype", "atol"), [("float32", 1e-4), ("bfloat16", 3e-2)])
def test_prefix_sharing_equals_plain_on_the_real_model(
    real_model_dir: Path, dtype: str, atol: float
) -> None:
    torch = pytest.importorskip("torch")
    backend = TransformersBackend(real_model_dir, device="cpu", batch_size=4, dtype=dtype)
    examples = load_sample_examples(limit=2)
    prompts = [
        backend.encode(render_judge_messages(ex.question, ex.reference, response))
        for ex in examples
        for response in (f"Therefore, the answer is {ex.reference}.", "The answer is 42.", "No")
    ]
    backend.tokens_computed = 0
    plain = backend.last_logprobs(prompts, prefix_sharing=False)
    plain_tokens, backend.tokens_computed = backend.tokens_computed, 0
    shared = backend.last_logprobs(prompts, prefix_sharing=True)
    assert backend.tokens_computed < plain_tokens / 2
    assert torch.allclose(shared.exp(), plain.exp(), atol=atol, rtol=0)
    if dtype == "float32":
        assert torch.equal(shared.argmax(-1), plain.argmax(-1))
