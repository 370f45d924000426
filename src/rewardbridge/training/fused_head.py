"""TRL's fused LM head (``trl.trainer.utils._fused_forward``) made cheap on a CPU.

Both fixes patch a module global of TRL 1.16 for the duration of a ``with`` and put it back;
on another TRL (the global gone) they do nothing. The scores are the same either way (unit
tests); only the cost differs. ``RewardBridgeGRPOTrainer`` applies both around its log-prob
forwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["CPU_HEAD_TILE_COLUMNS", "cpu_head_tiles", "labelled_positions_only"]


@contextlib.contextmanager
def _trl_global(name: str, replace: Callable[[Any], Any] | None) -> Iterator[None]:
    """``trl.trainer.utils.<name>`` set to ``replace(original)`` inside the ``with``, then put
    back; left alone when ``replace`` is None or this TRL has no such global."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, name, None)
    if original is None or replace is None:
        yield
        return
    setattr(trl_utils, name, replace(original))
    try:
        yield
    finally:
        setattr(trl_utils, name, original)


@contextlib.contextmanager
def labelled_positions_only() -> Iterator[None]:
    """Make TRL's fused LM head score only the completion positions on every device.

    TRL 1.16 (``trl.trainer.utils._fused_forward``) projects only the positions with a label
    on CUDA/XPU and every position elsewhere (to keep tile shapes fixed for compilers such as
    Neuron's). Off those devices that runs the 49k-row head over the prompt as well, forward and
    backward: on the CPU quickstart (8 x ~230 tokens per micro-batch, 33 scored) about 7x the
    head's work. The scores are the same either way (unit test); only the cost differs.
    """

    def compact_on_cpu(use_triton: Callable[[torch.device], bool]) -> Callable[..., bool]:
        return lambda device: device.type == "cpu" or use_triton(device)

    with _trl_global("_use_triton", compact_on_cpu):
        yield


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

    def smaller(columns: int) -> int:
        return min(columns, CPU_HEAD_TILE_COLUMNS)

    with _trl_global("_CHUNKED_LOGPROB_CHUNK_SIZE", smaller if device.type == "cpu" else None):
        yield
