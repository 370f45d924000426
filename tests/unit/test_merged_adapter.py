"""Sampling with the LoRA adapter merged into copies: the same function while inside, the very
same base tensors afterwards, and no merge where it would change what is sampled."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from rewardbridge.training.merged_adapter import mergeable_layers, merged_adapter


def lora_model(dtype: torch.dtype = torch.float32, dropout: float = 0.0):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    base = LlamaForCausalLM(config).to(dtype)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear")
    model = get_peft_model(base, lora, autocast_adapter_dtype=True)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at 0: the adapter would be a no-op
            torch.nn.init.normal_(param, std=0.2)
    return model.eval()


def base_tensors(model) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {n: p.data for n, p in model.named_parameters() if "lora_" not in n}


def storages(model) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Where each base weight's memory is (``.data`` is a new view object on every access)."""
    return {n: t.data_ptr() for n, t in base_tensors(model).items()}


IDS = torch.tensor([[5, 9, 12, 7, 30, 2], [8, 3, 4, 40, 41, 42]])


def test_merged_sampling_is_the_same_function_and_puts_the_base_back() -> None:
    model = lora_model()
    before = storages(model)
    copies = {n: t.clone() for n, t in base_tensors(model).items()}
    options = {"max_new_tokens": 10, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.no_grad():
        logits = model(input_ids=IDS).logits
        tokens = model.generate(input_ids=IDS, **options)
        with merged_adapter(model) as merged:
            assert merged
            assert all(layer.merged for layer in mergeable_layers(model) or [])
            merged_logits = model(input_ids=IDS).logits
            merged_tokens = model.generate(input_ids=IDS, **options)
        after = model(input_ids=IDS).logits
    torch.testing.assert_close(merged_logits, logits, rtol=1e-5, atol=1e-5)
    assert not torch.equal(merged_logits, logits)  # merged: computed another way
    assert torch.equal(merged_tokens, tokens)
    assert torch.equal(after, logits)  # unmerged again, exactly as before
    assert storages(model) == before  # the same tensors, not copies
    for name, tensor in base_tensors(model).items():
        assert torch.equal(tensor, copies[name]), name


def test_bf16_base_comes_back_bit_for_bit_where_peft_unmerge_drifts() -> None:
    model = lora_model(torch.bfloat16)
    copies = {n: t.clone() for n, t in base_tensors(model).items()}
    with merged_adapter(model):
        pass
    assert all(torch.equal(base_tensors(model)[n], t) for n, t in copies.items())
    model.merge_adapter()  # peft's own round trip: W + d - d, each rounded to bfloat16
    model.unmerge_adapter()
    assert any(not torch.equal(base_tensors(model)[n], t) for n, t in copies.items())


def test_base_is_put_back_when_sampling_fails() -> None:
    model = lora_model()
    before = storages(model)
    with pytest.raises(RuntimeError, match="boom"), merged_adapter(model):
        raise RuntimeError("boom")
    assert storages(model) == before
    assert not any(layer.merged for layer in mergeable_layers(model) or [])


def test_no_merge_where_it_would_change_the_samples() -> None:
    dropping = lora_model(dropout=0.1).train()  # TRL samples in train mode
    with merged_adapter(dropping) as merged:
        assert not merged and not any(m.merged for m in dropping.modules() if hasattr(m, "merged"))
    with merged_adapter(dropping.eval()) as merged:
        assert merged  # dropout inactive in eval mode
    model = lora_model()
    with model.disable_adapter(), merged_adapter(model) as merged:
        assert not merged
    plain = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1))
    assert mergeable_layers(plain) == []
    with merged_adapter(plain) as merged:
        assert not merged
