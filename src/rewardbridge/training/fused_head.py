"""TRL's fused LM head (``trl.trainer.utils._fused_forward``) made cheap on a CPU.

Both fixes patch a module global of TRL 1.16 for the duration of a ``with`` and put it back;
on another TRL (the global gone) they do nothing. The scores are the same either way (unit
tests); only the cost differs. ``RewardBridgeGRPOTrainer`` applies both around its log-prob
forwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["CPU_HEAD_TILE_COLUMNS", "cpu_head_tiles", "labelled_positions_only"]


@contextlib.contextmanager
def labelled_positions_only() -> Iterator[None]:
    """Make TRL's fused LM head score only the completion positions on every device.

    TRL 1.16 (``trl.trainer.utils._fused_forward``) projects only the positions with a label
    on CUDA/XPU and every position elsewhere (to keep tile shapes fixed for compilers such as
    Neuron's). Off those devices that runs the 49k-row head over the prompt as well, forward and
    backward: on the CPU quickstart (8 x ~230 tokens per micro-batch, 33 scored) about 7x the
    head's work. The scores are the same either way (unit test); only the cost differs.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:  # another TRL: leave its head as it is
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


CPU_HEAD_TILE_COLUMNS = 4096


@contextlib.contextmanager
def cpu_head_tiles(device: torch.device) -> Iterator[None]:
    """On a CPU, TRL's fused LM head in tiles of ``CPU_HEAD_TILE_COLUMNS`` vocabulary columns.

    TRL 1.16 projects the head in tiles of 32,768 columns (``_CHUNKED_LOGPROB_CHUNK_SIZE``, sized
    for its Triton kernel). Its CPU fallback folds each tile with torch ops, whose temporaries
    (the float32 copy, the scaled logits, ``exp``...) are N x 32,768 float32: 32 MiB for 256
    scored tokens, above glibc's mmap threshold, so each is a fresh mapping whose pages fault in
    on first touch (``x * 1.0`` over one: 9 ms, against 0.8 ms in place). At 4,096 columns they
    are 4 MiB, reused from the heap and cache-resident: forward + backward over 256 tokens x
    49,152 x 576 alone, 408 -> 145 ms in bf16 and 317 -> 224 ms in fp32 on the 2-core CPU; inside
    the quickstart's step less (a profile: 8.24 -> 8.03 s in bf16, within the step benchmark's
    noise). The same log-probs and gradients but for summation order (unit test). GPUs keep
    TRL's tiles.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", None)
    if original is None or device.type != "cpu":  # another TRL, or a Triton device
        yield
        return
    trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = min(original, CPU_HEAD_TILE_COLUMNS)
    try:
        yield
    finally:
        trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = original
