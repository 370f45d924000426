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
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardbridge.verifiers.backends.base import Conversation, FirstToken
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.judgment import NO, PAPER_WORDS, YES, JudgmentWords

log = logging.getLogger(__name__)

TOP_K = 20
MIN_SHARED_TOKENS = 16


def judgment_variants(word: str) -> list[str]:
    """Case and leading-space variants of a judgment word, the word itself first."""
    forms = [word, word.upper(), word.capitalize(), word.lower()]
    out: list[str] = []
    for form in forms + [" " + f for f in forms]:
        if form not in out:
            out.append(form)
    return out


def resolve_judgment_tokens(tokenizer: Any, words: JudgmentWords = PAPER_WORDS) -> dict[int, str]:
    """Token id -> "YES"/"NO": the first token of every variant of the two judgment words.

    Raises ``ValueError`` if the first token of the template's own word (as written) is also the
    first token of a variant of the other word; other colliding variants are left out.
    """
    first: dict[str, dict[int, str]] = {YES: {}, NO: {}}
    for side, word in ((YES, words.yes), (NO, words.no)):
        for variant in judgment_variants(word):
            ids = tokenizer.encode(variant, add_special_tokens=False)
            if ids:
                first[side].setdefault(int(ids[0]), variant)
    shared = set(first[YES]) & set(first[NO])
    for side, word in ((YES, words.yes), (NO, words.no)):
        own = tokenizer.encode(word, add_special_tokens=False)
        if own and int(own[0]) in shared:
            other = NO if side == YES else YES
            raise ValueError(
                f"the tokenizer starts {word!r} and {first[other][int(own[0])]!r} with the same "
                f"token {tokenizer.decode([own[0]])!r}: their first-position probabilities cannot "
                "be told apart; use a template with other judgment words"
            )
    if shared:
        log.debug("judgment variants left out (shared first token): %s", sorted(shared))
    return {token: side for side in (YES, NO) for token in first[side] if token not in shared}


@dataclass
class _Segment:
    """A run of prompt tokens computed in one forward, on top of its parent's KV cache."""

    tokens: list[int]
    parent: int | None  # the parent's row among the previous level's inner segments; None at 0
    item: int | None = None  # leaf: the unique prompt whose last token this segment ends with


def plan_prefix_tree(
    prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED_TOKENS
) -> list[list[_Segment]]:
    """Arrange distinct token sequences into levels of segments sharing their common prefixes.

    A segment shared by two or more prompts is made only where it is at least ``min_shared``
    tokens long; a leaf segment always keeps at least one token (the position read out). A
    segment of level ``d`` names its parent by its row among the inner (non-leaf) segments of
    level ``d - 1``: the rows of the KV cache that level hands on.
    """
    levels: list[list[_Segment]] = []

    def add(depth: int, segment: _Segment) -> int:
        """Append; return the segment's row among the inner segments of its level."""
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append(segment)
        return sum(s.item is None for s in levels[depth]) - 1

    def leaf(m: int, start: int, parent: int | None, depth: int) -> None:
        add(depth, _Segment(list(prompts[m][start:]), parent, item=m))

    def split(members: list[int], start: int, scan: int, parent: int | None, depth: int) -> None:
        # All members share prompts[:scan]; ancestors computed prompts[:start].
        groups: dict[int, list[int]] = {}
        for m in members:
            groups.setdefault(prompts[m][scan], []).append(m)
        for group in groups.values():
            if len(group) == 1:
                leaf(group[0], start, parent, depth)
                continue
            shortest = min(len(prompts[m]) for m in group)
            end = scan
            while end < shortest and len({prompts[m][end] for m in group}) == 1:
                end += 1
            if end == shortest:  # one prompt is a prefix of another: no sharing here
                for m in group:
                    leaf(m, start, parent, depth)
            elif end - start >= min_shared:
                node = add(depth, _Segment(list(prompts[group[0]][start:end]), parent))
                split(group, end, end, node, depth + 1)
            else:
                split(group, start, end, parent, depth)

    if prompts:
        split(list(range(len(prompts))), 0, 0, None, 0)
    return levels


def _rows(tensor: Any, parents: list[int]) -> Any:
    """The parents' rows of a per-row tensor: a broadcast view when all share one (the KV concat
    then reads it without a copy), else a gathered copy."""
    if len(set(parents)) == 1:
        return tensor[parents[0] : parents[0] + 1].expand(len(parents), *tensor.shape[1:])
    return tensor[parents]


@dataclass
class _Past:
    """KV caches of the inner segments of one level, one row per segment, plus their 2D mask
    and the position the next token of each row takes."""

    keys: list[Any]  # per layer [rows, kv_heads, length, head_dim]
    values: list[Any]
    mask: Any  # [rows, length], 0 on padding slots
    next_position: Any  # [rows]

    @classmethod
    def stack(cls, parts: Sequence[_Past]) -> _Past:
        import torch

        return cls(
            [torch.cat(layer) for layer in zip(*(p.keys for p in parts), strict=True)],
            [torch.cat(layer) for layer in zip(*(p.values for p in parts), strict=True)],
            torch.cat([p.mask for p in parts]),
            torch.cat([p.next_position for p in parts]),
        )


class TransformersBackend:
    """First-token distributions from a local causal LM (CPU or GPU).

    ``model``: a model folder, a hub id, ``None`` for the embedded SmolLM2-135M-Instruct, or a
    loaded ``(model, tokenizer)`` pair. ``batch_size``: prompt rows per forward.
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
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            from rewardbridge.models import load_causal_lm

            self.model, self.tokenizer = load_causal_lm(model, device=device)
        self.device = next(self.model.parameters()).device
        self.batch_size = batch_size
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

    def _plain_logprobs(self, prompts: Sequence[Sequence[int]]) -> Any:
        import torch

        out: list[Any] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
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
            for i, row in zip(chunk, torch.log_softmax(logits.float(), dim=-1), strict=True):
                out[i] = row
        return torch.stack(out)

    def _tree_logprobs(self, levels: list[list[_Segment]], n_items: int) -> Any:
        """Run the prefix tree level by level; leaves give the last-position log-probs.

        Per level, the inner segments run first, padded to one width so that their cache rows
        stack into the next level's ``past``; then the leaves, sorted by length (less padding).
        """
        import torch

        out: list[Any] = [None] * n_items
        past: _Past | None = None
        for level in levels:
            inner = [s for s in level if s.item is None]
            leaves = sorted((s for s in level if s.item is not None), key=lambda s: len(s.tokens))
            width = max((len(s.tokens) for s in inner), default=0)
            kept: list[_Past] = []
            for start in range(0, len(inner), self.batch_size):
                chunk = inner[start : start + self.batch_size]
                cache, mask, positions, _ = self._run_segments(chunk, past, width)
                kept.append(
                    _Past(
                        [layer.keys for layer in cache.layers],
                        [layer.values for layer in cache.layers],
                        mask,
                        positions[:, -1] + 1,
                    )
                )
            for start in range(0, len(leaves), self.batch_size):
                chunk = leaves[start : start + self.batch_size]
                *_, logprobs = self._run_segments(chunk, past, 0)
                for segment, row in zip(chunk, logprobs, strict=True):
                    out[segment.item] = row  # type: ignore[index]
            past = _Past.stack(kept) if kept else None
        return torch.stack(out)

    def _run_segments(
        self, chunk: Sequence[_Segment], past: _Past | None, width: int
    ) -> tuple[Any, Any, Any, Any]:
        """One forward of segments on their parents' caches: (cache, mask, positions, logprobs)."""
        import torch
        from transformers import DynamicCache

        ids, seg_mask = self._pad_left([s.tokens for s in chunk], width)
        seg_positions = (seg_mask.cumsum(-1) - 1).clamp(min=0)
        if past is None:
            cache = DynamicCache(config=self.model.config)
            mask, positions = seg_mask, seg_positions
        else:
            parents = [s.parent if s.parent is not None else 0 for s in chunk]
            cache = DynamicCache(
                ddp_cache_data=[
                    (_rows(k, parents), _rows(v, parents))
                    for k, v in zip(past.keys, past.values, strict=True)
                ],
                config=self.model.config,
            )
            mask = torch.cat([_rows(past.mask, parents), seg_mask], dim=1)
            positions = _rows(past.next_position, parents)[:, None] + seg_positions
        result = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.tokens_computed += int(seg_mask.sum())
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
