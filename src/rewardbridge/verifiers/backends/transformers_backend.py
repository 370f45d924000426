"""The local judge: any Hugging Face causal LM folder, first-token distributions from one forward.

The chat template is applied with the generation prompt; prompts are batched with left padding,
and only the last position's logits are computed (``logits_to_keep=1``), so a judgment costs one
prompt forward and no generation. The result carries the exact log-probability of every
judgment variant in the vocabulary plus the top-k tokens (``FirstToken``).

Token resolution: for each judgment word ("YES"/"NO" or the template's), its case and leading-space
variants ("YES", "Yes", "yes", " YES", ...) are tokenised. A variant that is one token counts with
that token. A variant the tokenizer splits (SmolLM2: "YES" -> "Y" + "ES") counts with its first
token: the probability of starting the word at the first position. That is only meaningful if no
variant of the other word starts with the same token; such a collision is an error when it hits
the template's own words, and otherwise drops the colliding variants (e.g. a tokenizer that puts
the space of " YES" and " NO" in a token of its own).

Prefix sharing (on by default where items share at least ``MIN_SHARED_TOKENS`` prompt tokens):
the judge prompts of one call share long token prefixes: the instruction block for every item,
and the question for the n responses of one prompt. The prompts are arranged in a prefix tree over
token ids; each shared segment is run once, its KV cache is handed on to the segments below it
(rows gathered per child), and each item runs only its own remaining tokens. Segments of one tree
level are batched with left padding: the padding stays in the cache as masked slots, the 2D
attention mask covers the whole cache, and explicit ``position_ids`` count real tokens only, so
every item sees exactly the positions and keys of its plain prompt. The log-probabilities equal
those of the plain path to float rounding (checked in the tests). Models whose cache is not a
plain per-layer KV cache (sliding-window, recurrent layers) use the plain path.

Batches are formed by tokens (``prefix_tree.token_batches``): rows sorted by length, at most
``max_batch_tokens`` padded tokens (cached prefix included) and ``batch_size`` rows per forward,
so long and short prompts are not padded together. A prompt longer than the model's context
(``max_position_embeddings``) is not truncated: it comes back ``TOO_LONG``, unjudged.
``dtype`` "auto" loads the model in bfloat16 where the hardware computes it natively
(``models.resolve_dtype``); log-probabilities are always computed in float32 from the logits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardbridge.verifiers.backends.base import Conversation, FirstToken
from rewardbridge.verifiers.backends.prefix_tree import (
    MIN_SHARED_TOKENS,
    Past,
    Segment,
    plan_prefix_tree,
    rows_of,
    token_batches,
)
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.judgment import (
    PAPER_WORDS,
    JudgmentWords,
    all_judgment_variants,
    resolve_first_pieces,
)
from rewardbridge.verifiers.judgment import judgment_variants as judgment_variants  # re-export

log = logging.getLogger(__name__)

TOP_K = 20
MAX_BATCH_TOKENS = 8192
__all__ = ["MIN_SHARED_TOKENS", "TransformersBackend", "plan_prefix_tree"]


def resolve_judgment_tokens(tokenizer: Any, words: JudgmentWords = PAPER_WORDS) -> dict[int, str]:
    """Token id -> "YES"/"NO": the first token of every variant of the two judgment words
    (``judgment.resolve_first_pieces``, the rule every backend shares)."""
    first_piece: dict[str, int] = {}
    for variant in all_judgment_variants(words):
        ids = tokenizer.encode(variant, add_special_tokens=False)
        if ids:
            first_piece[variant] = int(ids[0])
    return resolve_first_pieces(first_piece, words, lambda t: repr(tokenizer.decode([t])))


class TransformersBackend:
    """First-token distributions from a local causal LM (CPU or GPU).

    ``model``: a model folder, a hub id, ``None`` for the embedded SmolLM2-135M-Instruct, or a
    loaded ``(model, tokenizer)`` pair. ``batch_size``: at most this many prompt rows per
    forward; ``max_batch_tokens``: at most this many padded tokens per forward (a longer prompt
    runs alone). ``dtype``: "auto", "float32", "bfloat16" (a loaded pair keeps its own).
    ``prefix_sharing``: ``None`` (auto: on where prompts share a prefix), ``True``, ``False``
    (always the plain batched path). ``sample``: draw the emitted token from the softmax (seeded
    with ``seed``) instead of taking the argmax. ``words``: the template's judgment words.
    """

    name = "transformers"

    def __init__(
        self,
        model: str | os.PathLike[str] | tuple[Any, Any] | None = None,
        device: str | None = None,
        batch_size: int = 16,
        prefix_sharing: bool | None = None,
        sample: bool = False,
        seed: int = 0,
        words: JudgmentWords = PAPER_WORDS,
        top_k: int = TOP_K,
        dtype: Any = "auto",
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            from rewardbridge.models import load_causal_lm

            self.model, self.tokenizer = load_causal_lm(model, device=device, dtype=dtype)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.context_length: int | None = getattr(
            self.model.config, "max_position_embeddings", None
        )
        self.sample = sample
        self.top_k = top_k
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.token_sides = resolve_judgment_tokens(self.tokenizer, words)
        self._variant_ids = torch.tensor(sorted(self.token_sides), device=self.device)
        self._texts: dict[int, str] = {}
        self._judgment_texts = {self._text(t): side for t, side in self.token_sides.items()}
        self.prefix_sharing = prefix_sharing is not False and self._plain_kv_cache()
        if prefix_sharing and not self.prefix_sharing:
            log.warning("prefix sharing needs a plain KV cache; this model uses the plain path")
        self.tokens_computed = 0  # prompt tokens run through the model (for throughput reports)
        self.tokens_padded = 0  # the same plus the padding slots of their forwards
        self._lock = threading.Lock()

    # -- public API ---------------------------------------------------------------------

    def first_tokens(
        self, conversations: Sequence[Conversation]
    ) -> list[FirstToken | VerifierResult]:
        """One ``FirstToken`` per conversation; one the chat template rejects: INVALID_INPUT."""
        out: list[FirstToken | VerifierResult | None] = [None] * len(conversations)
        unique: dict[tuple[int, ...], list[int]] = {}
        for i, conversation in enumerate(conversations):
            try:
                ids = self.encode(conversation)
            except Exception as exc:  # a template that rejects these messages
                out[i] = VerifierResult.failed(Status.INVALID_INPUT, f"chat template failed: {exc}")
                continue
            if self.context_length is not None and len(ids) > self.context_length:
                out[i] = VerifierResult.failed(
                    Status.TOO_LONG,
                    f"the judge prompt has {len(ids)} tokens, the model's context is "
                    f"{self.context_length}; not judged (not truncated)",
                )
                continue
            unique.setdefault(tuple(ids), []).append(i)
        prompts = [list(p) for p in unique]
        if prompts:
            with self._lock:  # one forward at a time: safe to call from server threads
                logprobs = self.last_logprobs(prompts)
                for row, indices in zip(logprobs, unique.values(), strict=True):
                    if self.sample:  # an independent draw for each copy of a prompt
                        for i in indices:
                            out[i] = self._first_token(row)
                    else:
                        first = self._first_token(row)
                        for i in indices:
                            out[i] = first
        return [r for r in out if r is not None]

    def encode(self, conversation: Conversation) -> list[int]:
        """Token ids of the chat-templated conversation with the generation prompt."""
        encoded = self.tokenizer.apply_chat_template(
            [dict(m) for m in conversation], add_generation_prompt=True, tokenize=True
        )
        ids = (
            encoded["input_ids"]
            if isinstance(encoded, dict) or hasattr(encoded, "keys")
            else encoded
        )
        return [int(t) for t in ids]

    def last_logprobs(
        self, prompts: Sequence[Sequence[int]], prefix_sharing: bool | None = None
    ) -> Any:
        """Log-softmax at the last position of each prompt, a float32 tensor [N, vocab]."""
        import torch

        if self.model is None:
            raise RuntimeError("TransformersBackend is closed")
        share = self.prefix_sharing if prefix_sharing is None else prefix_sharing
        with torch.inference_mode():
            if share and len(prompts) > 1:
                levels = plan_prefix_tree(prompts)
                if len(levels) > 1:
                    return self._tree_logprobs(levels, len(prompts))
            return self._plain_logprobs(prompts)

    def close(self) -> None:
        self.model = None

    # -- forward passes -------------------------------------------------------------------

    def _plain_kv_cache(self) -> bool:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        try:
            layers = DynamicCache(config=self.model.config).layers
        except Exception:
            return False
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    def _pad_left(self, rows: Sequence[Sequence[int]], width: int = 0) -> tuple[Any, Any]:
        """Left-padded ids and 0/1 mask, [len(rows), max(width, longest row)]."""
        import torch

        width = max(width, *(len(r) for r in rows))
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _batches(self, lengths: Sequence[int], cached: int = 0) -> list[list[int]]:
        return token_batches(lengths, self.max_batch_tokens, self.batch_size, cached)

    def _plain_logprobs(self, prompts: Sequence[Sequence[int]]) -> Any:
        import torch

        out: list[Any] = [None] * len(prompts)
        for chunk in self._batches([len(p) for p in prompts]):
            ids, mask = self._pad_left([prompts[i] for i in chunk])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,
            ).logits[:, -1, :]
            self.tokens_computed += int(mask.sum())
            self.tokens_padded += int(mask.numel())
            for i, row in zip(chunk, torch.log_softmax(logits.float(), dim=-1), strict=True):
                out[i] = row
        return torch.stack(out)

    def _tree_logprobs(self, levels: list[list[Segment]], n_items: int) -> Any:
        """Run the prefix tree level by level; leaves give the last-position log-probs.

        The inner segments of a level run in forwards of their own (``Past`` parts, each padded
        to its own width); the next level's segments are grouped by the part holding their
        parent, and each group is cut into forwards by tokens, cached prefix included.
        """
        import torch

        out: list[Any] = [None] * n_items
        parts: list[Past] = []
        where: dict[int, tuple[int, int]] = {}  # inner row of the last level -> (part, row)
        for level in levels:
            groups: dict[int | None, list[Segment]] = {}
            for s in level:
                groups.setdefault(None if s.parent is None else where[s.parent][0], []).append(s)
            next_parts: list[Past] = []
            next_where: dict[int, tuple[int, int]] = {}
            for part_id, members in groups.items():
                past = None if part_id is None else parts[part_id]
                cached = 0 if past is None else past.length
                inner = [s for s in members if s.item is None]
                leaves = [s for s in members if s.item is not None]
                for batch in self._batches([len(s.tokens) for s in inner], cached):
                    chunk = [inner[i] for i in batch]
                    cache, mask, positions, _ = self._run_segments(chunk, past, where)
                    for r, segment in enumerate(chunk):
                        next_where[segment.row] = (len(next_parts), r)  # type: ignore[index]
                    next_parts.append(
                        Past(
                            [layer.keys for layer in cache.layers],
                            [layer.values for layer in cache.layers],
                            mask,
                            positions[:, -1] + 1,
                        )
                    )
                for batch in self._batches([len(s.tokens) for s in leaves], cached):
                    chunk = [leaves[i] for i in batch]
                    *_, logprobs = self._run_segments(chunk, past, where)
                    for segment, row in zip(chunk, logprobs, strict=True):
                        out[segment.item] = row  # type: ignore[index]
            parts, where = next_parts, next_where
        return torch.stack(out)

    def _run_segments(
        self, chunk: Sequence[Segment], past: Past | None, where: dict[int, tuple[int, int]]
    ) -> tuple[Any, Any, Any, Any]:
        """One forward of segments on their parents' rows of ``past``:
        (cache, mask, positions, logprobs)."""
        import torch
        from transformers import DynamicCache

        ids, seg_mask = self._pad_left([s.tokens for s in chunk])
        seg_positions = (seg_mask.cumsum(-1) - 1).clamp(min=0)
        if past is None:
            cache = DynamicCache(config=self.model.config)
            mask, positions = seg_mask, seg_positions
        else:
            parents = [where[s.parent][1] for s in chunk if s.parent is not None]
            cache = DynamicCache(
                ddp_cache_data=[
                    (rows_of(k, parents), rows_of(v, parents))
                    for k, v in zip(past.keys, past.values, strict=True)
                ],
                config=self.model.config,
            )
            mask = torch.cat([rows_of(past.mask, parents), seg_mask], dim=1)
            positions = rows_of(past.next_position, parents)[:, None] + seg_positions
        result = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.tokens_computed += int(seg_mask.sum())
        self.tokens_padded += int(seg_mask.numel())
        logprobs = torch.log_softmax(result.logits[:, -1, :].float(), dim=-1)
        return result.cache, mask, positions, logprobs

    # -- reading out ----------------------------------------------------------------------

    def _text(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.tokenizer.decode([token])
        return text

    def _first_token(self, logprobs: Any) -> FirstToken:
        import torch

        if self.sample:
            chosen = int(torch.multinomial(logprobs.exp(), 1, generator=self.generator))
        else:
            chosen = int(torch.argmax(logprobs))
        top = torch.topk(logprobs, self.top_k).indices
        ids = torch.unique(
            torch.cat([top, self._variant_ids, torch.tensor([chosen], device=self.device)])
        )
        texts: dict[str, float] = {}
        for token, value in zip(ids.tolist(), logprobs[ids].tolist(), strict=True):
            text = self._text(token)
            # two ids that decode alike (rare) share one entry: log(p1 + p2)
            texts[text] = value if text not in texts else float(np.logaddexp(texts[text], value))
        return FirstToken(
            chosen=self._text(chosen), logprobs=texts, judgment_tokens=self._judgment_texts
        )
