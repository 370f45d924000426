"""Sampling with the LoRA adapter merged into copies of the base weights.

Each LoRA layer adds, on every call, two small matmuls (A, B), a scale and an add to its base
layer's matmul. Sampling calls the model once per new token at a batch of a few dozen rows,
where that work is almost all per-call overhead: on the 2-core CPU quickstart (24 rows, 32 new
tokens, 210 adapted layers) it is a quarter of the sampling time in bfloat16. TRL merges the
adapter before handing the weights to vLLM; ``merged_adapter`` does the same for
``transformers.generate``, into copies (peft's ``safe_merge``), and puts the original tensors
back afterwards. peft's own ``unmerge`` subtracts the update again in the weights' dtype, which
in bfloat16 does not give the base weights back: they would drift a little every step.

The merged layer computes ``x (W + s B A)`` instead of ``x W + s (x A) B``: the same function,
rounded differently (float32: ~1e-7 relative; bfloat16: the merged weight is rounded once to
bfloat16, as in the vLLM path). Where merging would change what is sampled, or cannot be
undone by putting tensors back, it steps aside: active LoRA dropout (TRL samples in train mode),
layers other than peft's LoRA ``Linear`` over a plain ``torch.nn.Linear`` (quantised bases,
embeddings, convolutions), sharded weights (FSDP, ZeRO-3), an adapter already merged or
disabled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

log = logging.getLogger(__name__)


def mergeable_layers(model: Any) -> list[Any] | None:
    """The model's LoRA layers if every one can be merged into a copy and put back; ``None``
    where the adapter should stay as it is (see the module's docstring); ``[]`` without LoRA."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora.layer import Linear as LoraLinear

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for layer in layers:
        base = layer.get_base_layer()
        if type(layer) is not LoraLinear or type(base) is not torch.nn.Linear:
            return None
        if type(base.weight.data) is not torch.Tensor or base.weight.numel() == 0:
            return None  # sharded (FSDP's DTensor, DeepSpeed ZeRO-3's empty placeholder)
        if layer.merged or layer.disable_adapters or not layer.active_adapters:
            return None
        for name in layer.active_adapters:
            dropouts = layer.lora_dropout  # a ModuleDict: no .get
            dropout = dropouts[name] if name in dropouts else None  # noqa: SIM401
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0 and dropout.training:
                return None
    return layers


@contextlib.contextmanager
def merged_adapter(model: Any) -> Iterator[bool]:
    """While inside, the model's LoRA layers run merged (one matmul each); yields whether they
    do. On exit every base layer holds its original weight and bias tensors again, unchanged,
    and the adapter runs unmerged as before."""
    layers = mergeable_layers(model)
    if not layers:
        yield False
        return
    saved: list[tuple[Any, torch.Tensor, torch.Tensor | None]] = []
    try:
        with torch.no_grad():
            for layer in layers:
                base = layer.get_base_layer()
                bias = None if base.bias is None else base.bias.data
                saved.append((layer, base.weight.data, bias))
                layer.merge(safe_merge=True)  # a merged copy in base.weight.data
        log.debug("sampling with the LoRA adapter merged into %d layers", len(layers))
        yield True
    finally:
        for layer, weight, bias in saved:
            base = layer.get_base_layer()
            base.weight.data = weight
            if bias is not None:
                base.bias.data = bias
            layer.merged_adapters.clear()
