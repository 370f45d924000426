from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardbridge.policy import sampler


def test_draws_follow_the_weights_and_never_a_zero_weight() -> None:
    torch.manual_seed(0)
    weights = torch.tensor([2.0, 0.0, 0.8, 1.2, 0.0])  # not normalised: sums to 4
    drawn = sampler.inverse_cdf_draw(weights.expand(200_000, 5))
    assert drawn is not None and drawn.shape == (200_000, 1) and drawn.dtype == torch.int64
    counts = torch.bincount(drawn.flatten(), minlength=5).double() / 200_000
    assert counts[1] == 0 and counts[4] == 0
    torch.testing.assert_close(counts, (weights / 4).double(), atol=4e-3, rtol=0)


def test_each_row_has_its_own_distribution() -> None:
    torch.manual_seed(1)
    probs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert sampler.inverse_cdf_draw(probs).flatten().tolist() == [2, 0, 1]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "row", [[0.5, -0.1, 0.6], [0.5, float("nan"), 0.5], [0.0, 0.0, 0.0], [1.0, float("inf"), 0.0]]
)
def test_invalid_probabilities_get_torchs_own_error(row: list[float]) -> None:
    probs = torch.tensor([row, [0.2, 0.3, 0.5]])
    assert sampler.inverse_cdf_draw(probs) is None
    with sampler.inverse_cdf_sampling(), pytest.raises(RuntimeError):
        torch.multinomial(probs, 1)


def test_other_calls_go_to_torch_and_the_patch_is_undone() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 3)
    original = torch.multinomial
    with sampler.inverse_cdf_sampling(enabled=False):
        assert torch.multinomial is original
    with sampler.inverse_cdf_sampling():
        assert torch.multinomial is not original
        # several samples, or a generator of one's own: torch's draw, exactly
        two = torch.multinomial(probs, 2, generator=torch.Generator().manual_seed(3))
        one = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3))
    assert torch.multinomial is original
    assert torch.equal(two, original(probs, 2, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(one, original(probs, 1, generator=torch.Generator().manual_seed(3)))


def test_generate_samples_through_it(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    calls: list[tuple[int, ...]] = []
    draw = sampler.inverse_cdf_draw

    def counted(probs: torch.Tensor) -> torch.Tensor | None:
        calls.append(tuple(probs.shape))
        return draw(probs)

    monkeypatch.setattr(sampler, "inverse_cdf_draw", counted)
    config = GenerationConfig(max_new_tokens=5, min_new_tokens=5, do_sample=True, top_k=0)
    ids = torch.randint(0, 100, (3, 4))
    torch.manual_seed(0)
    with torch.no_grad(), sampler.inverse_cdf_sampling():
        first = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    torch.manual_seed(0)
    with torch.no_grad(), sampler.inverse_cdf_sampling():
        again = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    assert len(calls) == 10 and calls[0] == (3, model.config.vocab_size)
    assert torch.equal(first, again)  # seeded: reproducible
