"""Judgment-token SFT with the judge prompt's shared prefix computed once per batch.

Every training sequence is the same judge template (system message and instructions, about 210
tokens with SmolLM2's chat template) followed by the item's question, final step, reference and
the one judgment token. TRL's SFTTrainer runs each full sequence and the vocabulary projection
at every position; here, per optimizer step:

1. the shared prefix runs once (batch 1) with gradients, its key/value cache is repeated over
   the batch (``repeat_interleave`` keeps the autograd graph, so the prefix's weights get the
   gradient of every row);
2. the suffixes (right-padded) run on top of that cache;
3. only the hidden state before each row's judgment token goes through the LM head; the loss is
   the cross-entropy of the judgment token over the full vocabulary, as in SFT.

In exact arithmetic the loss and gradients equal those of the full sequences (a causal model's
prefix does not depend on what follows; the unit test checks it to float32 precision). The
cost per step is P + B * S tokens instead of B * (P + S), with no B x T x vocab logits.
Optionally under bfloat16 autocast (fp32 master weights), where the CPU has native bf16.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common token prefix, leaving at least 2 tokens in each sequence
    (an input token and the target)."""
    if not sequences:
        return 0
    first = sequences[0]
    n = min(len(s) for s in sequences) - 2
    for s in sequences[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return max(0, n)


@dataclass
class PrefixSFTResult:
    steps: int
    train_loss: float | None
    eval_loss: float | None
    seconds: float
    prefix_tokens: int
    losses: list[float]


def _batch_tensors(
    examples: Sequence[Sequence[int]], prefix_len: int, pad_id: int
) -> tuple[Any, Any, Any, Any]:
    """(suffix input ids [B, L], suffix mask [B, L], index of each row's last input, targets)."""
    import torch

    inputs = [list(ex[prefix_len:-1]) for ex in examples]
    targets = torch.tensor([ex[-1] for ex in examples])
    width = max(len(x) for x in inputs)
    ids = torch.full((len(inputs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(inputs), width), dtype=torch.long)
    for i, x in enumerate(inputs):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    last = torch.tensor([len(x) - 1 for x in inputs])
    return ids, mask, last, targets


def judgment_loss(
    model: Any,
    prefix: Any,
    examples: Sequence[Sequence[int]],
    pad_id: int,
    *,
    reduction: str = "mean",
) -> Any:
    """Cross-entropy of each example's last token given the rest, with the shared ``prefix``
    (a [1, P] tensor of the first P tokens of every example) run once."""
    import torch

    logits, targets = judgment_logits(model, prefix, examples, pad_id)
    return torch.nn.functional.cross_entropy(logits, targets, reduction=reduction)


def judgment_logits(
    model: Any, prefix: Any, examples: Sequence[Sequence[int]], pad_id: int
) -> tuple[Any, Any]:
    """(float32 logits [B, vocab] at the position before each example's last token, the last
    tokens [B]), with the shared ``prefix`` run once."""
    import torch

    p = prefix.shape[1]
    device = prefix.device
    ids, mask, last, targets = (t.to(device) for t in _batch_tensors(examples, p, pad_id))
    batch = ids.shape[0]
    out = model(input_ids=prefix, use_cache=True)
    # transformers >= 5.2x names it ``cache`` (``past_key_values`` before, deprecated after)
    new_names = "cache" in inspect.signature(model.forward).parameters
    cache = out.cache if new_names else out.past_key_values
    cache.batch_repeat_interleave(batch)
    attention = torch.cat([torch.ones((batch, p), dtype=torch.long, device=device), mask], dim=1)
    positions = torch.arange(p, p + ids.shape[1], device=device).unsqueeze(0).expand(batch, -1)
    keep = torch.unique(last)  # the positions whose logits are needed (at most B of them)
    out = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **{"cache" if new_names else "past_key_values": cache},
        logits_to_keep=keep,
    )
    column = torch.searchsorted(keep, last)
    return out.logits[torch.arange(batch), column].float(), targets


def train_prefix_shared(
    model: Any,
    examples: Sequence[Sequence[int]],
    *,
    pad_id: int,
    learning_rate: float,
    batch_size: int,
    epochs: float = 1.0,
    max_steps: int = -1,
    warmup_ratio: float = 0.0,
    weight_decay: float = 0.0,
    bf16: bool = False,
    seed: int = 0,
    eval_examples: Sequence[Sequence[int]] | None = None,
    log_every: int = 10,
    progress: Callable[[str], None] | None = None,
    on_examples: Callable[[int], None] | None = None,
    extra_prefix_examples: Sequence[Sequence[int]] = (),
) -> PrefixSFTResult:
    """AdamW on the judgment token of ``examples`` (token id lists: prompt + judgment token),
    linear decay after an optional warm-up; batches grouped by length to bound padding.
    ``on_examples(n)`` is called after each step with the number of examples trained on so far
    (for a learning curve); ``extra_prefix_examples`` are sequences scored later with the same
    prefix (they only shorten the shared prefix if they must)."""
    import torch

    all_seqs = [*examples, *(eval_examples or []), *extra_prefix_examples]
    prefix_len = shared_prefix_length(all_seqs)
    device = next(model.parameters()).device
    prefix = torch.tensor([list(examples[0][:prefix_len])], device=device)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    per_epoch = math.ceil(len(examples) / batch_size)
    total = max_steps if max_steps > 0 else max(1, round(per_epoch * epochs))
    warmup = int(total * warmup_ratio)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)

    def lr_at(step: int) -> float:
        if step < warmup:
            return learning_rate * (step + 1) / warmup
        return learning_rate * max(0.0, (total - step) / max(1, total - warmup))

    def batches() -> list[list[int]]:
        order = list(range(len(examples)))
        rng.shuffle(order)
        # group by suffix length within windows of 8 batches (less padding, still shuffled)
        window = batch_size * 8
        out = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(examples[i]))
            out += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        rng.shuffle(out)
        return out

    model.train()
    losses: list[float] = []
    queue: list[list[int]] = []
    started = time.perf_counter()
    for step in range(total):
        if not queue:
            queue = batches()
        picked = [examples[i] for i in queue.pop()]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast(prefix.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = judgment_loss(model, prefix, picked, pad_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_examples is not None:
            on_examples((step + 1) * batch_size)
        if progress and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            progress(
                f"step {step + 1}/{total} loss {sum(recent) / len(recent):.4f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    eval_loss = None
    if eval_examples:
        eval_loss = evaluate_loss(model, prefix, eval_examples, pad_id, batch_size, bf16)
    return PrefixSFTResult(
        steps=total,
        train_loss=sum(losses) / len(losses) if losses else None,
        eval_loss=eval_loss,
        seconds=round(time.perf_counter() - started, 1),
        prefix_tokens=prefix_len,
        losses=losses,
    )


def evaluate_loss(
    model: Any,
    prefix: Any,
    examples: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    bf16: bool = False,
) -> float:
    """Mean judgment-token cross-entropy of ``examples`` (no gradients)."""
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad(), torch.autocast(prefix.device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(examples), batch_size):
            part = examples[start : start + batch_size]
            total += float(judgment_loss(model, prefix, part, pad_id, reduction="sum"))
            n += len(part)
    model.train()
    return total / max(1, n)


def p_yes_scores(
    model: Any,
    prefix: Any,
    prompts: Sequence[Sequence[int]],
    pad_id: int,
    yes_id: int,
    no_id: int,
    *,
    batch_size: int = 16,
    bf16: bool = False,
) -> list[float]:
    """P(YES) / (P(YES) + P(NO)) at the first generated position of each prompt (token ids of
    the judge prompt with the generation prompt), as the constrained judge reads it."""
    import torch

    was_training = model.training
    model.eval()
    out: list[float] = []
    with torch.no_grad(), torch.autocast(prefix.device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(prompts), batch_size):
            part = [[*p, yes_id] for p in prompts[start : start + batch_size]]
            logits, _ = judgment_logits(model, prefix, part, pad_id)
            pair = torch.log_softmax(logits[:, [yes_id, no_id]], dim=-1)
            out += pair[:, 0].exp().tolist()
    if was_training:
        model.train()
    return out
