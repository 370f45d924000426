"""Prefix-shared judgment-token SFT: same loss and gradients as the full sequences."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rewardbridge.training.distill.prefix_sft import (  # noqa: E402
    judgment_loss,
    shared_prefix_length,
    train_prefix_shared,
)


def tiny_model() -> object:
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


PREFIX = [5, 6, 7, 8, 9, 10, 11]
EXAMPLES = [[*PREFIX, 20, 21, 3], [*PREFIX, 22, 4], [*PREFIX, 23, 24, 25, 26, 3]]


def full_sequence_loss(model: object, examples: list[list[int]]) -> object:
    losses = []
    for ex in examples:
        logits = model(input_ids=torch.tensor([ex[:-1]])).logits[0, -1]
        losses.append(torch.nn.functional.cross_entropy(logits[None], torch.tensor([ex[-1]])))
    return torch.stack(losses).mean()


def test_shared_prefix_length() -> None:
    assert shared_prefix_length(EXAMPLES) == len(PREFIX)
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 1  # leaves an input and a target
    assert shared_prefix_length([]) == 0


def test_loss_and_gradients_equal_the_full_sequences() -> None:
    model = tiny_model()
    prefix = torch.tensor([PREFIX])
    shared = judgment_loss(model, prefix, EXAMPLES, pad_id=0)
    shared.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    full = full_sequence_loss(model, EXAMPLES)
    full.backward()
    assert float(shared.detach()) == pytest.approx(float(full), abs=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-5), name


def test_training_lowers_the_loss() -> None:
    model = tiny_model()
    before = float(full_sequence_loss(model, EXAMPLES))
    result = train_prefix_shared(
        model, EXAMPLES, pad_id=0, learning_rate=1e-2, batch_size=2, epochs=10, seed=0
    )
    assert result.steps == 20 and result.prefix_tokens == len(PREFIX)
    assert float(full_sequence_loss(model, EXAMPLES)) < before / 2


@pytest.mark.parametrize("trainer", ["prefix", "trl"])
def test_train_verifier_with_either_trainer(tiny_model_dir, tmp_path, trainer: str) -> None:
    from rewardbridge.training.distill import DistillRecord, DistillTrainConfig, train_verifier

    records = [
        DistillRecord(
            id=str(i),
            prompt_id=str(i),
            question=f"What is {i} + 1?",
            reference=str(i + 1),
            final_step=f"Therefore, the answer is {i + 1 if i % 2 else i}",
            judgment="YES" if i % 2 else "NO",
            teacher_p_yes=None,
        )
        for i in range(4)
    ]
    config = DistillTrainConfig(batch_size=2, max_steps=2, learning_rate=1e-3, trainer=trainer)
    summary = train_verifier(records, str(tiny_model_dir), tmp_path / "m", config)
    assert summary.steps == 2 and summary.examples == 4
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_bootstrap_kappa_matches_sklearn_and_brackets_it() -> None:
    import random

    from sklearn.metrics import cohen_kappa_score

    from rewardbridge.evaluation.bootstrap import bootstrap_kappa

    rng = random.Random(0)
    labels = [rng.random() < 0.5 for _ in range(300)]
    preds = [lab if rng.random() < 0.8 else not lab for lab in labels]
    ci = bootstrap_kappa(labels, preds, resamples=500)
    assert ci.kappa == pytest.approx(cohen_kappa_score(labels, preds))
    assert ci.low < ci.kappa < ci.high and ci.high - ci.low < 0.25
    assert bootstrap_kappa([True, False], [True, True]).kappa == pytest.approx(0.0)
    assert bootstrap_kappa([True, True], [True, True]).kappa is None  # undefined, not 0
