"""training/fused_head.py: TRL's fused LM head made cheap on a CPU, with the same scores."""

from __future__ import annotations

from typing import Any

import pytest


def fused_head_run(
    monkeypatch: pytest.MonkeyPatch, labels_from: int = 0
) -> tuple[Any, list[tuple[Any, ...]]]:
    """A 1-layer Llama (vocab 96) with TRL's fused LM head, and a ``run()`` giving its log-probs
    and head-weight gradient on fixed ids, labels from position ``labels_from`` on. The list
    collects the arguments of each call to TRL's chunked log-prob kernel."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    trl_utils.add_fused_lm_head(model)
    ids = torch.randint(0, 96, (3, 9))
    labels = ids.clone()
    labels[:, :labels_from] = -100
    calls: list[tuple[Any, ...]] = []
    kernel = trl_utils._ChunkedLogProbFunction

    class Recording:
        @staticmethod
        def apply(*args: Any) -> Any:
            calls.append(args)
            return kernel.apply(*args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Recording)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        out.log_probs.sum().backward()
        grad = model.get_output_embeddings().weight.grad
        return out.log_probs.detach(), grad.detach().clone()

    return run, calls


def test_fused_head_scores_only_labelled_positions_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from rewardbridge.training.fused_head import labelled_positions_only

    # only the last 3 tokens are scored, as TRL's completion positions
    run, calls = fused_head_run(monkeypatch, labels_from=6)
    plain_lp, plain_grad = run()
    with labelled_positions_only():
        compact_lp, compact_grad = run()
    rows = [hidden.shape[0] for hidden, *_ in calls]
    assert rows == [3 * 8, 3 * 3]  # every shifted position, then only the labelled ones
    torch.testing.assert_close(compact_lp, plain_lp, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compact_grad, plain_grad, rtol=1e-5, atol=1e-6)


def test_cpu_head_tiles_are_small_on_a_cpu_only_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    import trl.trainer.utils as trl_utils

    from rewardbridge.training import fused_head

    run, calls = fused_head_run(monkeypatch)
    monkeypatch.setattr(fused_head, "CPU_HEAD_TILE_COLUMNS", 40)  # 96 columns: 40, 40, 16
    plain_lp, plain_grad = run()
    with fused_head.cpu_head_tiles(torch.device("cpu")):
        small_lp, small_grad = run()
    with fused_head.cpu_head_tiles(torch.device("cuda")):  # only the device's type is read
        run()
    tiles = [args[5] for args in calls]  # the kernel's chunk size
    assert tiles == [32768, 40, 32768]  # TRL's tile, ours on a CPU, TRL's again elsewhere
    assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == 32768  # put back
    torch.testing.assert_close(small_lp, plain_lp, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(small_grad, plain_grad, rtol=1e-5, atol=1e-6)
