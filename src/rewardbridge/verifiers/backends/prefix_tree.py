"""Planning for the local judge: a prefix tree over the prompts' token ids, and token budgets.

``plan_prefix_tree`` arranges the prompts of one call into levels of segments: a segment shared
by several prompts is computed once and its KV cache handed on to the segments below it.
``token_batches`` cuts a list of rows into forwards by tokens, not by rows: rows sorted by
length, a forward holds at most ``max_tokens`` padded tokens (each row counted at the batch's
width plus the cached prefix it attends over) and at most ``max_rows`` rows, and a row joins a
forward only if padding stays under ``MAX_PADDING`` of it, so a long prompt is never padded
together with many short ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_SHARED_TOKENS = 16
MAX_PADDING = 0.25  # largest share of padding slots in one forward (beyond SMALL_FORWARD)
SMALL_FORWARD = 512  # padded tokens below which padding is not worth another forward


@dataclass
class Segment:
    """A run of prompt tokens computed in one forward, on top of its parent's KV cache."""

    tokens: list[int]
    parent: int | None  # the parent's row among the previous level's inner segments; None at 0
    item: int | None = None  # leaf: the unique prompt whose last token this segment ends with
    row: int | None = None  # inner segment: its row among its level's inner segments


def plan_prefix_tree(
    prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED_TOKENS
) -> list[list[Segment]]:
    """Arrange distinct token sequences into levels of segments sharing their common prefixes.

    A segment shared by two or more prompts is made only where it is at least ``min_shared``
    tokens long; a leaf segment always keeps at least one token (the position read out). A
    segment of level ``d`` names its parent by its row among the inner (non-leaf) segments of
    level ``d - 1``: the rows of the KV cache that level hands on.
    """
    levels: list[list[Segment]] = []

    def add(depth: int, segment: Segment) -> int:
        """Append; return the segment's row among the inner segments of its level."""
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append(segment)
        row = sum(s.item is None for s in levels[depth]) - 1
        if segment.item is None:
            segment.row = row
        return row

    def leaf(m: int, start: int, parent: int | None, depth: int) -> None:
        add(depth, Segment(list(prompts[m][start:]), parent, item=m))

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
                node = add(depth, Segment(list(prompts[group[0]][start:end]), parent))
                split(group, end, end, node, depth + 1)
            else:
                split(group, start, end, parent, depth)

    if prompts:
        split(list(range(len(prompts))), 0, 0, None, 0)
    return levels


def token_batches(
    lengths: Sequence[int], max_tokens: int, max_rows: int, cached: int = 0
) -> list[list[int]]:
    """Indices into ``lengths`` grouped into forwards, shortest rows first.

    A forward of ``r`` rows padded to width ``w`` on a cached prefix of ``cached`` slots costs
    ``r * (cached + w)`` tokens; it stays within ``max_tokens`` and ``max_rows`` (one row alone
    always makes a forward), and within ``MAX_PADDING`` padding unless it is smaller than
    ``SMALL_FORWARD`` tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    real = 0
    for i in order:
        width = lengths[i]  # the longest so far: rows are sorted
        rows = len(batch) + 1
        padded = rows * width
        fits = (
            rows <= max_rows
            and rows * (cached + width) <= max_tokens
            and (padded - real - width <= MAX_PADDING * padded or padded <= SMALL_FORWARD)
        )
        if batch and not fits:
            batches.append(batch)
            batch, real = [], 0
        batch.append(i)
        real += width
    if batch:
        batches.append(batch)
    return batches


def rows_of(tensor: Any, parents: list[int]) -> Any:
    """The parents' rows of a per-row tensor: a broadcast view when all share one (the KV concat
    then reads it without a copy), else a gathered copy."""
    if len(set(parents)) == 1:
        return tensor[parents[0] : parents[0] + 1].expand(len(parents), *tensor.shape[1:])
    return tensor[parents]


@dataclass
class Past:
    """KV caches of inner segments run in one forward, one row per segment, plus their 2D mask
    and the position the next token of each row takes."""

    keys: list[Any]  # per layer [rows, kv_heads, length, head_dim]
    values: list[Any]
    mask: Any  # [rows, length], 0 on padding slots
    next_position: Any  # [rows]

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])
