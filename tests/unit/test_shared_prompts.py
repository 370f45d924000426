"""One prompt forward per group: the same completions as ``generate`` on every copy."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rewardbridge.training.shared_prompts import group_rows, prefill_shared_prompts


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def left_padded(prompts: list[list[int]], group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each prompt ``group`` times in a row, left-padded with 0 as TRL pads them."""
    width = max(map(len, prompts))
    rows = [[0] * (width - len(p)) + p for p in prompts for _ in range(group)]
    mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts for _ in range(group)]
    return torch.tensor(rows), torch.tensor(mask)


def test_completions_are_the_same_tokens(model: LlamaForCausalLM) -> None:
    ids, mask = left_padded([[5, 9, 12, 7, 30, 2], [8, 3], [40, 41, 42, 43]], group=3)
    options = {"max_new_tokens": 12, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    plain = model.generate(input_ids=ids, attention_mask=mask, **options)
    cache = prefill_shared_prompts(model, ids, mask, 3)
    assert cache is not None and cache.get_seq_length() == ids.shape[1] - 1
    shared = model.generate(input_ids=ids, attention_mask=mask, cache=cache, **options)
    assert torch.equal(shared, plain)
    # and the first new token's scores agree, not just their argmax
    scores = {"output_logits": True, "return_dict_in_generate": True, **options}
    scores["max_new_tokens"] = 1
    first = model.generate(input_ids=ids, attention_mask=mask, **scores).logits[0]
    cache = prefill_shared_prompts(model, ids, mask, 3)
    again = model.generate(input_ids=ids, attention_mask=mask, cache=cache, **scores).logits[0]
    torch.testing.assert_close(again, first, rtol=1e-4, atol=1e-5)


def test_rows_not_in_groups_get_no_cache(model: LlamaForCausalLM) -> None:
    ids, mask = left_padded([[5, 9, 12], [8, 3, 4]], group=2)
    assert group_rows(ids, mask, 2) and not group_rows(ids, mask, 4)
    assert not group_rows(ids, mask, 1)
    mixed = ids.clone()
    mixed[1, -1] = 11  # the second copy of the first prompt differs
    assert prefill_shared_prompts(model, mixed, mask, 2) is None
    assert prefill_shared_prompts(model, ids[:3], mask[:3], 2) is None  # 3 rows, groups of 2


def test_no_sharing_where_it_would_change_or_break_generate(model: LlamaForCausalLM) -> None:
    from transformers import GenerationConfig

    ids, mask = left_padded([[5, 9, 12], [8, 3, 4]], group=2)
    assert prefill_shared_prompts(model, ids, mask, 2) is not None
    # a cache implementation of its own: generate refuses a cache beside it
    static = GenerationConfig(cache_implementation="static")
    assert prefill_shared_prompts(model, ids, mask, 2, static) is None
    # active dropout (TRL samples in train mode): each copy must draw its own mask
    model.model.layers[0].add_module("extra_dropout", torch.nn.Dropout(0.1))
    try:
        model.train()
        assert prefill_shared_prompts(model, ids, mask, 2) is None
        model.eval()  # dropout off: sharing again
        assert prefill_shared_prompts(model, ids, mask, 2) is not None
    finally:
        del model.model.layers[0].extra_dropout
        model.eval()
    model.config.attention_dropout = 0.1  # applied inside the attention call, no module
    try:
        assert prefill_shared_prompts(model.train(), ids, mask, 2) is None
    finally:
        model.config.attention_dropout = 0.0
        model.eval()


def test_no_sharing_for_linear_attention_caches() -> None:
    """Hybrid models (here Qwen3.5's layout: linear-attention layers and full attention) keep
    recurrent states that a repeat of the key/value cache would not copy."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "qwen3_5_text", vocab_size=64, hidden_size=32, intermediate_size=64,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=8,
        linear_value_head_dim=8,
    )  # fmt: skip
    hybrid = AutoModelForCausalLM.from_config(config).eval()
    ids, mask = left_padded([[5, 9, 12], [8, 3, 4]], group=2)
    assert prefill_shared_prompts(hybrid, ids, mask, 2) is None


def test_shuffle_groups_moves_whole_groups_like_trl_shuffles_rows() -> None:
    from rewardbridge.training.shared_prompts import shuffle_groups

    torch.manual_seed(0)
    batch = {
        "ids": torch.arange(12).repeat_interleave(2).view(12, 2),  # row r holds [r, r]
        "texts": [f"t{r}" for r in range(12)],
        "num_items": torch.tensor(7),
        "images": None,
    }
    out = shuffle_groups(batch, 3)
    rows = out["ids"][:, 0].tolist()
    assert sorted(rows) == list(range(12)) and rows != list(range(12))
    groups = [rows[i : i + 3] for i in range(0, 12, 3)]
    assert all(g == list(range(g[0], g[0] + 3)) and g[0] % 3 == 0 for g in groups)
    assert out["texts"] == [f"t{r}" for r in rows]
    assert out["num_items"] is batch["num_items"] and out["images"] is None
    with pytest.raises(ValueError, match="whole groups of 5"):
        shuffle_groups(batch, 5)
